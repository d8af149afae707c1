//! Catalogers, SBOM formats and the SBOM' filter (filled by a later issue).
