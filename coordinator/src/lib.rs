//! The Kubescape-style New Workload flow (filled by a later issue).
