//! Types shared by the kernel programs (`sniffer-ebpf`) and the user side (`sniffer`).
//!
//! Everything here is `#[repr(C)]` and plain old data: the kernel writes these bytes and
//! user space reads them back, so both sides must agree on every field and padding byte.
#![no_std]

/// Bytes of path data an event can carry. A longer path is sent truncated (leaf side kept)
/// with [`FLAG_TRUNCATED`] set.
pub const PATH_BUF: usize = 4096;

/// Longest name of one path component (Linux `NAME_MAX`).
pub const NAME_MAX: usize = 255;

/// Deepest directory chain the kernel walks before giving up and flagging truncation.
pub const MAX_DEPTH: u32 = 96;

/// Length of a task's `comm` (Linux `TASK_COMM_LEN`).
pub const COMM_LEN: usize = 16;

/// The event reports a successful open (open, openat, openat2, creat).
pub const KIND_OPEN: u8 = 1;
/// The event reports a successful exec: the new executable of the task.
pub const KIND_EXEC: u8 = 2;

/// The event reports the first call of a probed function by the cgroup: instead of a path,
/// it carries the probe's id ([`CallEvent`]).
pub const KIND_CALL: u8 = 3;

/// The event reports a class a JVM defined: instead of a path it carries the class name
/// ([`CLASS_NAME_MAX`] bytes, NUL-terminated) then its code source ([`CLASS_SOURCE_MAX`]).
pub const KIND_CLASS: u8 = 4;
/// Bytes of a class event's name field (a longer name is cut).
pub const CLASS_NAME_MAX: usize = 256;
/// Bytes of a class event's code source field (a longer URL is cut).
pub const CLASS_SOURCE_MAX: usize = 512;

/// The path is incomplete: only its leaf-side components are in the event.
pub const FLAG_TRUNCATED: u8 = 1;

/// Index of the per-CPU count of events sent, in the `STATS` array.
pub const STAT_SENT: u32 = 0;
/// Index of the per-CPU count of events lost: the ring buffer was full, or (rarely) the
/// file's path could not be read or the tail call to the program that sends it failed.
pub const STAT_LOST: u32 = 1;
/// Index of the per-CPU count of opens and execs dropped in the kernel as repeats of a path
/// already sent.
pub const STAT_REPEATS: u32 = 2;
/// Number of entries of the `STATS` array.
pub const STAT_COUNT: u32 = 3;

/// Byte offsets of the kernel structure fields the programs follow, read from the running
/// kernel's BTF by user space and written into the programs' read-only data before load.
///
/// Tracepoint programs cannot use CO-RE relocations through aya-ebpf, so offsets are passed
/// in; a kernel whose layout differs then needs no rebuild.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelOffsets {
    /// `task_struct.files`
    pub task_files: u32,
    /// `task_struct.fs`
    pub task_fs: u32,
    /// `task_struct.mm`
    pub task_mm: u32,
    /// `task_struct.nsproxy`
    pub task_nsproxy: u32,
    /// `task_struct.cgroups`
    pub task_cgroups: u32,
    /// `css_set.dfl_cgrp`: the task's cgroup2 cgroup
    pub css_set_dfl_cgrp: u32,
    /// `cgroup.kn`
    pub cgroup_kn: u32,
    /// `kernfs_node.id`: the cgroup id (`bpf_get_current_cgroup_id` reads the same)
    pub kernfs_node_id: u32,
    /// `files_struct.fdt`
    pub files_fdt: u32,
    /// `fdtable.fd`
    pub fdt_fd: u32,
    /// `file.f_path`
    pub file_path: u32,
    /// `path.mnt`
    pub path_mnt: u32,
    /// `path.dentry`
    pub path_dentry: u32,
    /// `fs_struct.root`
    pub fs_root: u32,
    /// `dentry.d_parent`
    pub dentry_parent: u32,
    /// `dentry.d_name` (a `struct qstr`; its first 8 bytes are `hash_len`)
    pub dentry_name: u32,
    /// `qstr.name`
    pub qstr_name: u32,
    /// `vfsmount.mnt_root`
    pub vfsmount_root: u32,
    /// `mount.mnt`: where the public `vfsmount` sits inside the private `struct mount`
    pub mount_mnt: u32,
    /// `mount.mnt_parent`
    pub mount_parent: u32,
    /// `mount.mnt_mountpoint`
    pub mount_mountpoint: u32,
    /// `mm_struct.exe_file`
    pub mm_exe_file: u32,
    /// `nsproxy.mnt_ns`
    pub nsproxy_mnt_ns: u32,
    /// `mnt_namespace.ns.inum`: the id `ls -l /proc/PID/ns/mnt` shows
    pub mnt_ns_inum: u32,
    /// `io_kiocb.opcode` ([`NO_OFFSET`] where the kernel has no io_uring)
    pub io_kiocb_opcode: u32,
    /// `io_kiocb.cmd` + `io_open.file_slot`: non-zero for an open into a direct descriptor,
    /// which no fd names ([`NO_OFFSET`] where unknown)
    pub io_open_file_slot: u32,
}

/// An offset the running kernel's BTF does not have.
pub const NO_OFFSET: u32 = u32::MAX;

/// Configuration the kernel programs read from their `.rodata`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Field offsets of the running kernel.
    pub offsets: KernelOffsets,
    /// `WATCHED` has this plus one slots (a power of two); cgroup `id` has slot `id & watch_mask`.
    pub watch_mask: u32,
    /// BTF id of `struct file` in the kernel's BTF when the kfunc `bpf_rdonly_cast` is
    /// patched into the programs (see [`RDONLY_CAST_PLACEHOLDER`]): the programs then read an
    /// opened file's fields with plain loads. 0 when the kernel lacks the kfunc: they read them
    /// with the probe-read helper.
    pub file_btf_id: u32,
    /// Non-zero when, besides, the kernel lets `bpf_rdonly_cast` cast to `void`
    /// (`BPF_FEAT_RDONLY_CAST_TO_VOID`): memory so cast is read with plain loads at any
    /// offset, and the programs read the fd slot that way too.
    pub cast_to_void: u32,
}

/// The immediate of the kfunc call instruction the kernel programs carry for
/// `bpf_rdonly_cast`. aya does not resolve kfuncs, so user space finds this instruction in
/// the object and writes the kfunc's BTF id over it before load (or, on a kernel without the
/// kfunc, replaces the call with `r0 = r1` and leaves [`Config::file_btf_id`] at 0, so the
/// verifier never walks the code that would use it).
pub const RDONLY_CAST_PLACEHOLDER: u32 = 0x5eed_f11e;

/// The whole placeholder instruction: `call` (0x85), source register 2
/// (`BPF_PSEUDO_KFUNC_CALL`), offset 0 (the kfunc is in the kernel's own BTF), immediate
/// [`RDONLY_CAST_PLACEHOLDER`]; little-endian, as it appears in the object.
pub const RDONLY_CAST_CALL: u64 = 0x85 | (0x20 << 8) | ((RDONLY_CAST_PLACEHOLDER as u64) << 32);

/// Fixed part of an event; `path_len` bytes of path data follow it in the ring buffer.
///
/// The path data holds the components leaf first, each followed by `/`, as the kernel meets
/// them walking from the file up to the task's root: `libc.so.6/x86_64-linux-gnu/lib/usr/`.
/// Walking up and appending keeps the kernel loop simple for the verifier; user space
/// reverses the components (a name cannot contain `/`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EventHeader {
    /// cgroup v2 id of the task (the inode number of its cgroup directory).
    pub cgroup_id: u64,
    /// Mount namespace id of the task.
    pub mnt_ns: u64,
    /// Thread id, as the initial pid namespace sees it.
    pub pid: u32,
    /// Process id, as the initial pid namespace sees it.
    pub tgid: u32,
    /// The task's `comm`, NUL padded.
    pub comm: [u8; COMM_LEN],
    /// [`KIND_OPEN`] or [`KIND_EXEC`].
    pub kind: u8,
    /// [`FLAG_TRUNCATED`] or 0.
    pub flags: u8,
    /// Reserved.
    pub _pad: u16,
    /// Bytes of path data after this header.
    pub path_len: u32,
}

/// An event as the kernel assembles it in per-CPU scratch space before sending the used part.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Event {
    /// The fixed part.
    pub header: EventHeader,
    /// Path data; twice [`PATH_BUF`] so a bounded copy at any offset below `PATH_BUF` stays
    /// inside the buffer, which is what the verifier checks.
    pub path: [u8; 2 * PATH_BUF],
}

/// A call event: the header (kind [`KIND_CALL`], `path_len` 8) and the id user space gave
/// the probe (its cookie).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CallEvent {
    /// The fixed part; `mnt_ns` is 0.
    pub header: EventHeader,
    /// The probe's id.
    pub probe: u64,
}

/// Per watched cgroup state: a slot of the `WATCHED` array, or a value of `WATCHED_SPILL`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WatchState {
    /// The cgroup this slot is for; 0 in a free slot (no cgroup has id 0).
    pub cgroup_id: u64,
    /// Events of this cgroup lost (see [`STAT_LOST`]).
    pub lost: u64,
}

/// Key of the in-kernel LRU of paths already sent.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeenKey {
    /// cgroup the path was sent for.
    pub cgroup_id: u64,
    /// Hash of what fixes the path as the task sees it (the file's mount, dentry, the
    /// dentry's parent and name hash, the task's root) and of the event kind.
    pub path_hash: u64,
}

#[cfg(feature = "user")]
mod user {
    // SAFETY: #[repr(C)], only integers and arrays of integers: every bit pattern is valid.
    unsafe impl aya::Pod for super::Config {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::KernelOffsets {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::WatchState {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::SeenKey {}
}
