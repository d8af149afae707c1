//! Offline OSV database and matching (filled by a later issue).
