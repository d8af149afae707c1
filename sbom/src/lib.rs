//! Everything about what is installed in a root filesystem: reading it safely, the packages
//! in it (catalogers), package URLs, and the executables' loaders. Knows nothing of eBPF or
//! Kubernetes.

pub mod calls;
pub mod catalog;
pub mod codesource;
pub mod distro;
pub mod elf;
pub mod formats;
pub mod gofunc;
pub mod index;
pub mod model;
pub mod path_text;
pub mod purl;
pub mod rootfs;
pub mod scan;
pub mod text;
pub mod time;

pub use catalog::Budgets;
pub use model::{Ecosystem, Package, Sbom};
pub use scan::{Progress, ScanError, scan, scan_with_progress, scan_within};
