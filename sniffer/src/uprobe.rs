//! One uprobe: the loaded call program attached at an offset of a file, with a cookie the
//! program reads (`bpf_get_attach_cookie`). Made with `perf_event_open` (the uprobe PMU) and
//! a BPF link, both owned here, so the probe manager's thread holds its probes without
//! aya's program object (which stays inside the loaded programs, behind their lock).
//! Dropping it removes the probe.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `perf_event_attr`, as far as a uprobe needs it (`PERF_ATTR_SIZE_VER1`, 72 bytes).
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    kind: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    /// For a uprobe: the path of the file.
    config1: u64,
    /// For a uprobe: the offset in it.
    config2: u64,
}

/// `bpf_attr` for `BPF_LINK_CREATE` of a perf event link (with its cookie), padded.
#[repr(C)]
#[derive(Default)]
struct LinkCreate {
    prog_fd: u32,
    target_fd: u32,
    attach_type: u32,
    flags: u32,
    bpf_cookie: u64,
    _rest: [u64; 6],
}

const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_PERF_EVENT: u32 = 41;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;

/// The uprobe PMU's type number (`/sys/bus/event_source/devices/uprobe/type`).
pub fn pmu_type() -> io::Result<u32> {
    let text = std::fs::read_to_string("/sys/bus/event_source/devices/uprobe/type")?;
    text.trim().parse().map_err(|_| io::Error::other(format!("uprobe PMU type {:?} is not a number", text.trim())))
}

/// An attached uprobe.
#[derive(Debug)]
pub struct Uprobe {
    _link: OwnedFd,
    _event: OwnedFd,
}

impl Uprobe {
    /// Attaches `program` (a loaded kprobe-type program) at `offset` of the file `path`
    /// names, for every process, with `cookie`. Give a path that names the very file meant
    /// (`/proc/self/fd/N` of a descriptor opened inside a container's root): the kernel
    /// resolves it in the agent's own mount namespace.
    pub fn attach(program: BorrowedFd<'_>, pmu: u32, path: &Path, offset: u64, cookie: u64) -> io::Result<Uprobe> {
        let name = CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::other("a path with a NUL byte"))?;
        let attr = PerfEventAttr {
            kind: pmu,
            size: std::mem::size_of::<PerfEventAttr>() as u32,
            config1: name.as_ptr() as u64,
            config2: offset,
            ..Default::default()
        };
        // SAFETY: `attr` is a valid, initialised perf_event_attr of the size it says, and
        // `name` outlives the call; pid -1 with cpu 0 is every process (a uprobe fires on any
        // CPU whatever the cpu given).
        let fd = unsafe {
            libc::syscall(libc::SYS_perf_event_open, &attr as *const PerfEventAttr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC)
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new descriptor the kernel just gave us, owned by nothing else.
        let event = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let attr = LinkCreate {
            prog_fd: program.as_raw_fd() as u32,
            target_fd: event.as_raw_fd() as u32,
            attach_type: BPF_PERF_EVENT,
            bpf_cookie: cookie,
            ..Default::default()
        };
        // SAFETY: `attr` is a valid bpf_attr for BPF_LINK_CREATE of its size; both fds are open.
        let link = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_LINK_CREATE,
                &attr as *const LinkCreate,
                std::mem::size_of::<LinkCreate>() as u32,
            )
        };
        if link < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: as above.
        let link = unsafe { OwnedFd::from_raw_fd(link as i32) };
        Ok(Uprobe { _link: link, _event: event })
    }
}
