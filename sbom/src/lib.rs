//! Everything about what is installed in a root filesystem: reading it safely, the
//! executables' loaders, and (in a later change) catalogers, SBOM formats, the file
//! ownership index and the SBOM' filter. Knows nothing of eBPF or Kubernetes.

pub mod elf;
pub mod rootfs;
