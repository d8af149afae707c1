//! The capabilities the daemon needs, checked at start-up so that a missing one is named
//! with what it is for, instead of surfacing later as a bare EPERM from the kernel. The
//! Helm chart's DaemonSet grants exactly these (`deploy/chart/sniffer`), and a test runs the
//! agent's image with each one dropped in turn.

use std::fmt;

/// A Linux capability, by number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capability(pub u32);

impl Capability {
    /// Bypass file read and directory search permission checks.
    pub const DAC_READ_SEARCH: Capability = Capability(2);
    /// `ptrace_may_access` on other processes: `/proc/PID/root`, `exe`, `maps`.
    pub const SYS_PTRACE: Capability = Capability(19);
    /// Mounts, and much else.
    pub const SYS_ADMIN: Capability = Capability(21);
    /// Performance monitoring: tracepoint attachment, kernel memory reads from BPF.
    pub const PERFMON: Capability = Capability(38);
    /// BPF programs and maps.
    pub const BPF: Capability = Capability(39);

    /// `CAP_…`.
    pub fn name(self) -> &'static str {
        match self.0 {
            2 => "CAP_DAC_READ_SEARCH",
            19 => "CAP_SYS_PTRACE",
            21 => "CAP_SYS_ADMIN",
            38 => "CAP_PERFMON",
            39 => "CAP_BPF",
            _ => "CAP_?",
        }
    }

    fn in_set(self, set: u64) -> bool {
        self.0 < 64 && set & (1 << self.0) != 0
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One capability the daemon needs (or, as the kernel accepts, `CAP_SYS_ADMIN` in its
/// place where it does), and for what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    /// The capability.
    pub cap: Capability,
    /// Also satisfied by `CAP_SYS_ADMIN` (the kernel's `bpf_capable`/`perfmon_capable`).
    pub or_sys_admin: bool,
    /// What it is for.
    pub why: &'static str,
}

/// What `sniffer run` needs; `mounts_views` when image SBOMs are read from views of the
/// image's layers (`--image-source layers`), which are mounts.
pub fn needed(with_flow: bool, mounts_views: bool) -> Vec<Need> {
    let mut needs = vec![
        Need { cap: Capability::BPF, or_sys_admin: true, why: "loading the eBPF programs and their maps" },
        Need {
            cap: Capability::PERFMON,
            or_sys_admin: true,
            why: "attaching the programs to tracepoints and reading kernel memory from them",
        },
    ];
    if with_flow {
        needs.push(Need {
            cap: Capability::SYS_PTRACE,
            or_sys_admin: false,
            why: "reading containers' roots, executables and mappings under /proc/PID",
        });
        needs.push(Need {
            cap: Capability::DAC_READ_SEARCH,
            or_sys_admin: false,
            why: "reading package databases and files in container roots whatever their permissions",
        });
    }
    if with_flow && mounts_views {
        needs.push(Need {
            cap: Capability::SYS_ADMIN,
            or_sys_admin: false,
            why: "mounting read-only views of image layers (--image-source root does without)",
        });
    }
    needs
}

/// The needs `effective` (a CapEff mask) does not meet.
pub fn missing(needs: &[Need], effective: u64) -> Vec<Need> {
    needs
        .iter()
        .filter(|n| !(n.cap.in_set(effective) || (n.or_sys_admin && Capability::SYS_ADMIN.in_set(effective))))
        .copied()
        .collect()
}

/// This process's effective capabilities, from `/proc/self/status`.
pub fn effective() -> std::io::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .ok_or_else(|| std::io::Error::other("no CapEff line in /proc/self/status"))
}

/// Why the daemon cannot start: the capabilities it lacks, each with its use.
#[derive(Debug, thiserror::Error)]
#[error("missing capabilities: {}; grant them (the Helm chart's DaemonSet does), or run as root on the host", list(.0))]
pub struct MissingCapabilities(pub Vec<Need>);

fn list(needs: &[Need]) -> String {
    needs.iter().map(|n| format!("{} ({})", n.cap, n.why)).collect::<Vec<_>>().join(", ")
}

/// Checks this process has what `needs` says.
pub fn check(needs: &[Need]) -> Result<(), MissingCapabilities> {
    // Unreadable (no /proc): the kernel will say what it refuses.
    let Ok(effective) = effective() else { return Ok(()) };
    let gone = missing(needs, effective);
    if gone.is_empty() { Ok(()) } else { Err(MissingCapabilities(gone)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(caps: &[Capability]) -> u64 {
        caps.iter().fold(0, |m, c| m | 1 << c.0)
    }

    #[test]
    fn each_missing_capability_is_named_with_its_use() {
        let all = needed(true, true);
        let full = mask(&[
            Capability::BPF,
            Capability::PERFMON,
            Capability::SYS_PTRACE,
            Capability::DAC_READ_SEARCH,
            Capability::SYS_ADMIN,
        ]);
        assert!(missing(&all, full).is_empty());
        let without_ptrace = full & !mask(&[Capability::SYS_PTRACE]);
        let gone = missing(&all, without_ptrace);
        assert_eq!(gone.len(), 1);
        let text = MissingCapabilities(gone).to_string();
        assert!(text.contains("CAP_SYS_PTRACE (reading containers' roots"), "{text}");
        // CAP_SYS_ADMIN stands in for CAP_BPF and CAP_PERFMON, as in the kernel.
        let admin = mask(&[Capability::SYS_ADMIN, Capability::SYS_PTRACE, Capability::DAC_READ_SEARCH]);
        assert!(missing(&all, admin).is_empty());
        // Reading roots instead of mounting views needs no CAP_SYS_ADMIN.
        assert!(missing(&needed(true, false), full & !mask(&[Capability::SYS_ADMIN])).is_empty());
    }

    #[test]
    fn this_process_has_a_readable_capability_set() {
        effective().unwrap();
    }
}
