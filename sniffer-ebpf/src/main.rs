//! Kernel programs: report each distinct file a watched cgroup opens or executes.
//!
//! Opens are seen at the exit of open, openat, openat2 and creat, where the syscall has
//! succeeded and its fd names the very file opened: the path comes from walking that file's
//! dentry chain up to the task's own root, so relative paths, dirfds, `..` and symlinks are
//! already resolved, and a chrooted task or one in another mount namespace sees its own
//! paths. Execs are seen at `sched_process_exec`, from the task's new `mm->exe_file`.
//!
//! Struct field offsets come from user space (read from the running kernel's BTF) through
//! [`CONFIG`]. Fields reached through pointers the verifier knows the type of (the task's,
//! and the opened file's through the kfunc `bpf_rdonly_cast`) are plain loads it checks
//! against the BTF; the rest are probe reads. The gate is a direct-mapped array of watched
//! cgroups; a repeat is recognised by a key hashed from the file's dentry, mount and the
//! task's root, without walking the path. Only a path not sent yet is walked, by
//! [`send_path`], tail-called, so that the walk is verified once. See DESIGN.md for why this
//! and not fentry/LSM with `bpf_d_path`.
#![no_std]
#![no_main]
// Atomic add: the BPF target exposes no `fetch_add`, but LLVM lowers the intrinsic to BPF's
// atomic add.
#![expect(internal_features, reason = "core_intrinsics: the BPF target has no atomic fetch_add")]
#![feature(core_intrinsics)]
// The kfunc call is emitted in assembly (see `rdonly_cast`).
#![feature(asm_experimental_arch)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod calls;
mod classes;

use core::intrinsics::{AtomicOrdering, atomic_xadd};

use aya_ebpf::{
    EbpfContext,
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP, BPF_RB_RING_SIZE},
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_probe_read_kernel,
        generated::{bpf_get_current_task_btf, bpf_probe_read_kernel as read_raw},
    },
    macros::{map, tracepoint},
    maps::{Array, HashMap, LruHashMap, PerCpuArray, ProgramArray, RingBuf},
    programs::TracePointContext,
};
use sniffer_common::{
    Config, Event, EventHeader, FLAG_TRUNCATED, KIND_EXEC, KIND_OPEN, MAX_DEPTH, NAME_MAX, NO_OFFSET, PATH_BUF,
    RDONLY_CAST_CALL, STAT_COUNT, STAT_LOST, STAT_REPEATS, STAT_SENT, SeenKey, WatchState,
};

/// Filled in by user space before load (`EbpfLoader::set_global`).
#[unsafe(no_mangle)]
// SAFETY: `Config` is plain integers, for which all zeroes is a valid value.
static CONFIG: Config = unsafe { core::mem::zeroed() };

/// Watched cgroups, direct-mapped: the gate every program passes first. Cgroup `id` has slot
/// `id & CONFIG.watch_mask`; a slot holds one watched cgroup, and others whose ids map there
/// are in [`WATCHED_SPILL`], with the slot's [`SPILLED`] flag set. So the gate is an array
/// read and a compare, both inlined by the verifier, not a hash-table lookup. User space
/// sizes the three maps.
#[map]
static WATCHED: Array<WatchState> = Array::with_max_entries(1, 0);

/// Non-zero where some watched cgroup mapping to that [`WATCHED`] slot is in [`WATCHED_SPILL`].
/// Apart from `WATCHED` so that user space never rewrites a slot the programs count into.
#[map]
static SPILLED: Array<u32> = Array::with_max_entries(1, 0);

/// Watched cgroups whose [`WATCHED`] slot another one holds.
#[map]
static WATCHED_SPILL: HashMap<u64, WatchState> = HashMap::with_max_entries(1, 0);

/// Paths already sent per cgroup; a repeat is dropped in the kernel.
#[map]
static SEEN: LruHashMap<SeenKey, u8> = LruHashMap::with_max_entries(65536, 0);

/// Slots of [`RECENT`]: a power of two; a key's slot is the top `RECENT_BITS` of its hash.
const RECENT_BITS: u32 = 9;
const RECENT_SLOTS: usize = 1 << RECENT_BITS;

/// Odd random factors of [`path_key`]'s hash, one per word.
const HASH_FACTORS: [u64; 7] = [
    0x1d52490575ffc53d,
    0xe2a214e8bbe9c675,
    0x186c39e8c7bb69f7,
    0x03aa3897fcf4c6b7,
    0x64d4748ca3c77ebf,
    0x5c22c46963e968fd,
    0x8c656018eee38dc1,
];

/// One CPU's direct-mapped cache of `SEEN` keys known to be sent: a repeat found here costs
/// two compares instead of a hash-table lookup. It only ever holds keys that are (or were)
/// in `SEEN`, so a hit means exactly what a `SEEN` hit means; a miss asks `SEEN`.
#[repr(C)]
pub struct Recent {
    slots: [SeenKey; RECENT_SLOTS],
}

#[map]
static RECENT: PerCpuArray<Recent> = PerCpuArray::with_max_entries(1, 0);

/// What a program hands [`send_path`] with a path to send: this CPU's, written just before the
/// tail call.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Handoff {
    /// The `struct file *`, as a number.
    file: u64,
    /// Its key in `SEEN`.
    key: SeenKey,
    /// `KIND_OPEN` or `KIND_EXEC`.
    kind: u64,
}

#[map]
static HANDOFF: PerCpuArray<Handoff> = PerCpuArray::with_max_entries(1, 0);

/// Holds [`send_path`] at index 0; user space puts it there.
#[map]
static SENDER: ProgramArray = ProgramArray::with_max_entries(1, 0);

/// Events to user space. Its size is set by user space at load.
#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(8 << 20, 0);

/// Per-CPU scratch space where an event is assembled (too big for the 512-byte stack).
#[map]
static SCRATCH: PerCpuArray<Event> = PerCpuArray::with_max_entries(1, 0);

/// Per-CPU counters, indexed by `STAT_*`.
#[map]
static STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(STAT_COUNT, 0);

/// Offset of `ret` in the `sys_exit_*` tracepoint records (after the 8-byte common header
/// and the 4-byte syscall number, aligned).
const SYS_EXIT_RET: usize = 16;

/// A field of [`CONFIG`], read so that the compiler cannot fold the zeroes it was declared
/// with: user space fills it in before load, and the verifier then sees the loaded value as a
/// constant (`.rodata` is frozen).
#[inline(always)]
fn config<T: Copy>(field: &T) -> T {
    // SAFETY: a reference to a field of a static: valid, aligned and initialised.
    unsafe { core::ptr::read_volatile(field) }
}

/// A kernel struct field offset from [`CONFIG`].
macro_rules! off {
    ($field:ident) => {
        config(&CONFIG.offsets.$field) as usize
    };
}

#[tracepoint]
pub fn sys_exit_open(ctx: TracePointContext) -> u32 {
    on_open_exit(&ctx)
}

#[tracepoint]
pub fn sys_exit_openat(ctx: TracePointContext) -> u32 {
    on_open_exit(&ctx)
}

#[tracepoint]
pub fn sys_exit_openat2(ctx: TracePointContext) -> u32 {
    on_open_exit(&ctx)
}

#[tracepoint]
pub fn sys_exit_creat(ctx: TracePointContext) -> u32 {
    on_open_exit(&ctx)
}

#[tracepoint]
pub fn sys_exit_open_by_handle_at(ctx: TracePointContext) -> u32 {
    on_open_exit(&ctx)
}

/// Offsets in the `io_uring/io_uring_complete` record (user space checks them against the
/// tracepoint's format before attaching).
const IO_URING_REQ: usize = 16;
const IO_URING_RES: usize = 32;
/// `IORING_OP_OPENAT` and `IORING_OP_OPENAT2` (UAPI).
const IORING_OP_OPENAT: u8 = 18;
const IORING_OP_OPENAT2: u8 = 28;

/// An open done through io_uring: at its completion, in the submitting task or one of its
/// io worker threads (which share its files and cgroup), the result is the fd installed, as
/// at an open syscall's exit. An open into a direct descriptor installs no fd: skipped.
#[tracepoint]
pub fn io_uring_complete(ctx: TracePointContext) -> u32 {
    let base = ctx.as_ptr() as *const u8;
    // SAFETY: `res` is a field of the io_uring_complete record, at IO_URING_RES.
    let res: i32 = unsafe { core::ptr::read_volatile(base.add(IO_URING_RES) as *const i32) };
    if res < 0 {
        return 0;
    }
    let Some((task, cgroup_id, state)) = gate() else {
        return 0;
    };
    // SAFETY: as above, `req` at IO_URING_REQ.
    let req: *const u8 = unsafe { core::ptr::read_volatile(base.add(IO_URING_REQ) as *const *const u8) };
    let (opcode_at, slot_at) = (config(&CONFIG.offsets.io_kiocb_opcode), config(&CONFIG.offsets.io_open_file_slot));
    if opcode_at == NO_OFFSET || slot_at == NO_OFFSET {
        return 0;
    }
    // SAFETY: probe reads of the request (a bad pointer fails the read, nothing more).
    let opcode: u8 = unsafe { bpf_probe_read_kernel(req.add(opcode_at as usize)) }.unwrap_or(0);
    if opcode != IORING_OP_OPENAT && opcode != IORING_OP_OPENAT2 {
        return 0;
    }
    // SAFETY: as above.
    let slot: u32 = unsafe { bpf_probe_read_kernel(req.add(slot_at as usize) as *const u32) }.unwrap_or(1);
    if slot != 0 {
        return 0;
    }
    // SAFETY: `task` is the BTF-typed current task and `state` its cgroup's, from the gate;
    // `res` is the fd the open just installed in the task's table.
    let _ = unsafe { report_fd(&ctx, task, cgroup_id, state, res as u64) };
    0
}

#[tracepoint]
pub fn sched_process_exec(ctx: TracePointContext) -> u32 {
    let Some((task, cgroup_id, state)) = gate() else {
        return 0;
    };
    // SAFETY: `task` is the BTF-typed current task and `state` its cgroup's, from the gate.
    let _ = unsafe { report_exe(&ctx, task, cgroup_id, state) };
    0
}

/// Walks the path of a file another program found not sent yet, and sends it. Attached to
/// nothing: the programs above tail-call it through [`SENDER`], with what it needs in
/// [`HANDOFF`]. Apart, the walk (the costliest code to verify) is verified once, not once
/// per program and per way into it.
#[tracepoint]
pub fn send_path(_ctx: TracePointContext) -> u32 {
    let task = current_task();
    // SAFETY: `task` is BTF-typed, from `current_task`.
    let cgroup_id = unsafe { cgroup_id(task) };
    let Some(handoff) = HANDOFF.get_ptr(0) else {
        return 0;
    };
    // SAFETY: this CPU's own slot, written just before the tail call here.
    let handoff = unsafe { *handoff };
    if handoff.key.cgroup_id != cgroup_id {
        return 0;
    }
    let file = handoff.file as *const u8;
    // SAFETY: `task` is BTF-typed; `file` was read from it by the program that handed off,
    // and every read of it here is a probe read (a bad pointer fails the read, nothing more).
    if unsafe { send(task, cgroup_id, file, handoff.kind as u8, &handoff.key) }.is_err() {
        // Not sent (the ring buffer is full, or the path could not be read), and said so.
        // The gate is asked again only here, so the walk above is verified with one state.
        if let Some(state) = watched(cgroup_id) {
            lose(state);
        }
    }
    0
}

/// Returns at once: attached instead of the real programs, it measures what merely enabling
/// the tracepoints costs (the benchmark's baseline for "unwatched").
#[tracepoint]
pub fn noop(_ctx: TracePointContext) -> u32 {
    0
}

#[inline(always)]
fn on_open_exit(ctx: &TracePointContext) -> u32 {
    // A direct load from the context, not `read_at` (a probe-read helper call): the
    // verifier checks the offset against the tracepoint's record, and every open pays this.
    // SAFETY: `ret` is a field of every sys_exit record, at SYS_EXIT_RET.
    let ret: i64 = unsafe { core::ptr::read_volatile((ctx.as_ptr() as *const u8).add(SYS_EXIT_RET) as *const i64) };
    if ret < 0 {
        return 0;
    }
    let Some((task, cgroup_id, state)) = gate() else {
        return 0;
    };
    // SAFETY: `task` is the BTF-typed current task and `state` its cgroup's, from the gate;
    // `ret` is the fd the syscall just installed.
    let _ = unsafe { report_fd(ctx, task, cgroup_id, state, ret as u64) };
    0
}

#[inline(always)]
unsafe fn read_ptr(base: *const u8, offset: usize) -> Result<*const u8, i32> {
    // SAFETY: a probe read: the helper faults safely on any address, and `add` is plain
    // pointer arithmetic on a kernel address that is never dereferenced here.
    unsafe { bpf_probe_read_kernel(base.add(offset) as *const *const u8) }
}

/// The running task as a BTF-typed pointer: fields reached from it through pointers the
/// verifier knows the type of are read with plain loads (the JIT guards them against faults),
/// not with a probe-read helper call each. Offsets from [`CONFIG`] are constants to the
/// verifier (`.rodata` is frozen before load), so it checks each load against the BTF.
#[inline(always)]
fn current_task() -> *const u8 {
    // SAFETY: the helper takes no argument and returns the running task, never null.
    unsafe { bpf_get_current_task_btf() as *const u8 }
}

/// The gate every reporting program passes first: the running task, its cgroup id, and that
/// cgroup's [`WatchState`]; `None` if the cgroup is not watched.
#[inline(always)]
fn gate() -> Option<(*const u8, u64, *mut WatchState)> {
    let task = current_task();
    // SAFETY: `task` is BTF-typed, from `current_task`.
    let cgroup_id = unsafe { cgroup_id(task) };
    Some((task, cgroup_id, watched(cgroup_id)?))
}

/// This cgroup's [`WatchState`] if it is watched.
#[inline(always)]
fn watched(cgroup_id: u64) -> Option<*mut WatchState> {
    let index = cgroup_id as u32 & config(&CONFIG.watch_mask);
    let slot = WATCHED.get_ptr_mut(index)?;
    // SAFETY: a slot of WATCHED; a torn read during user space's write at most misses one open.
    if unsafe { (*slot).cgroup_id } == cgroup_id {
        return Some(slot);
    }
    if SPILLED.get(index).is_none_or(|&spilled| spilled == 0) {
        return None;
    }
    WATCHED_SPILL.get_ptr_mut(cgroup_id)
}

/// The task's cgroup2 id, `task->cgroups->dfl_cgrp->kn->id`, as
/// `bpf_get_current_cgroup_id` reads it, in four plain loads instead of a helper call.
#[inline(always)]
unsafe fn cgroup_id(task: *const u8) -> u64 {
    // SAFETY: `task` is BTF-typed (the caller's contract) and each pointer loaded is a typed
    // field of the struct whose offset is used next (user space reads them from the BTF).
    unsafe {
        let css_set: *const u8 = load(task, off!(task_cgroups));
        let cgroup: *const u8 = load(css_set, off!(css_set_dfl_cgrp));
        let kn: *const u8 = load(cgroup, off!(cgroup_kn));
        load(kn, off!(kernfs_node_id))
    }
}

/// A plain load of the field `offset` bytes into a BTF-typed pointer.
///
/// SAFETY: `base` must be a BTF-typed pointer (from [`current_task`] or a pointer field read
/// from one with this function) and `offset` a field of its type that holds a `T`.
#[inline(always)]
unsafe fn load<T>(base: *const u8, offset: usize) -> T {
    // SAFETY: the caller's contract above; the verifier checks the load against the BTF and
    // the JIT guards it against faults.
    unsafe { core::ptr::read_volatile(base.add(offset) as *const T) }
}

/// `current->files->fdt->fd[fd]`, then report that file.
#[inline(always)]
unsafe fn report_fd(
    ctx: &TracePointContext,
    task: *const u8,
    cgroup_id: u64,
    state: *mut WatchState,
    fd: u64,
) -> Result<(), i32> {
    // SAFETY: `task` is BTF-typed (the caller's contract), each typed
    // pointer is a typed field of the struct whose offset is used next; `rdonly_cast` is
    // called only when CONFIG says the kfunc call was patched in; the rest are probe reads.
    // SAFETY: as above.
    let files: *const u8 = unsafe { load(task, off!(task_files)) };
    // SAFETY: as above.
    let fdt: *const u8 = unsafe { load(files, off!(files_fdt)) };
    // No check against `fdt->max_fds`: the fd was just installed, and the table never
    // shrinks; a slot read out of bounds would be a fault-safe read of nothing useful.
    // `fd` is `struct file **`: the verifier does not type what it points to as a file. Cast
    // to `void`, it may be read at any offset; else the slot is read with the helper.
    // The CONFIG values are constants to the verifier, which checks only the branch taken.
    // SAFETY: as above.
    let slots: *const u8 = unsafe { load(fdt, off!(fdt_fd)) };
    let file_btf_id = config(&CONFIG.file_btf_id);
    let file: *const u8 = if config(&CONFIG.cast_to_void) != 0 {
        // SAFETY: as above.
        unsafe { load(rdonly_cast(slots, 0), (fd as usize) * 8) }
    } else {
        // SAFETY: as above.
        unsafe { read_ptr(slots, (fd as usize) * 8)? }
    };
    if file.is_null() {
        return Ok(());
    }
    let key = if file_btf_id != 0 {
        // SAFETY: as above.
        unsafe { path_key(task, cgroup_id, Typed(rdonly_cast(file, file_btf_id)), KIND_OPEN)? }
    } else {
        // SAFETY: as above.
        unsafe { path_key(task, cgroup_id, Probed(file), KIND_OPEN)? }
    };
    // SAFETY: as above.
    if unsafe { unsent(&key) } {
        // SAFETY: as above.
        unsafe { hand_off(ctx, state, file, KIND_OPEN, &key) };
    }
    Ok(())
}

/// The kfunc `bpf_rdonly_cast(addr, btf_id)`: `addr` as a read-only pointer to the kernel
/// type `btf_id`, whose fields the verifier then lets the program read with plain loads (the
/// JIT guards them against faults). The verifier replaces the call with a register move, so
/// it costs nothing at run time. aya does not resolve kfuncs: the call is emitted with a
/// placeholder that user space patches before load
/// ([`sniffer_common::RDONLY_CAST_PLACEHOLDER`]).
///
/// SAFETY: only where `CONFIG.file_btf_id` is non-zero, which user space sets only once it
/// has patched the call in.
#[inline(always)]
#[expect(clippy::pointers_in_nomem_asm_block, reason = "the kfunc casts `addr`; it reads no memory")]
unsafe fn rdonly_cast(addr: *const u8, btf_id: u32) -> *const u8 {
    let typed: *const u8;
    // SAFETY: the patched instruction is a kfunc call that reads r1 and r2 and clobbers
    // r0-r5, as declared; it touches no memory (the verifier turns it into a register move).
    unsafe {
        core::arch::asm!(
            ".8byte {call}",
            call = const RDONLY_CAST_CALL,
            in("r1") addr,
            in("r2") btf_id as u64,
            lateout("r0") typed,
            lateout("r1") _,
            lateout("r2") _,
            lateout("r3") _,
            lateout("r4") _,
            lateout("r5") _,
            options(nostack, pure, nomem),
        );
    }
    typed
}

/// `current->mm->exe_file`, then report that file.
#[inline(always)]
unsafe fn report_exe(
    ctx: &TracePointContext,
    task: *const u8,
    cgroup_id: u64,
    state: *mut WatchState,
) -> Result<(), i32> {
    // SAFETY: `task` is BTF-typed (the caller's contract), and `mm` and
    // `file` are typed fields of the structs they are loaded from.
    // SAFETY: as above.
    let mm: *const u8 = unsafe { load(task, off!(task_mm)) };
    if mm.is_null() {
        return Ok(());
    }
    // SAFETY: as above.
    let file: *const u8 = unsafe { load(mm, off!(mm_exe_file)) };
    if file.is_null() {
        return Ok(());
    }
    // SAFETY: as above.
    let key = unsafe { path_key(task, cgroup_id, Typed(file), KIND_EXEC)? };
    // SAFETY: as above.
    if unsafe { unsent(&key) } {
        // SAFETY: as above.
        unsafe { hand_off(ctx, state, file, KIND_EXEC, &key) };
    }
    Ok(())
}

/// An opened file whose fields [`path_key`] reads to recognise a repeat.
trait FileRef: Copy {
    /// What fixes the file's path below the root: its mount, its dentry, the dentry's parent
    /// and its name's `hash_len`, as numbers one-to-one with the pointers.
    unsafe fn key_words(self) -> Result<[u64; 4], i32>;
}

/// A `struct file *` the verifier knows the type of (from the task's `mm`, or through
/// [`rdonly_cast`]): its fields are plain loads.
#[derive(Clone, Copy)]
struct Typed(*const u8);

/// A `struct file *` the verifier sees as a number: its fields are probe reads.
#[derive(Clone, Copy)]
struct Probed(*const u8);

impl FileRef for Typed {
    #[inline(always)]
    unsafe fn key_words(self) -> Result<[u64; 4], i32> {
        let path = off!(file_path);
        // SAFETY: `self.0` is a BTF-typed `struct file *` (the type's
        // contract), and `dentry` a typed field of it.
        // SAFETY: as above.
        let dentry: *const u8 = unsafe { load(self.0, path + off!(path_dentry)) };
        Ok([
            // SAFETY: as above.
            distance(unsafe { load(self.0, path + off!(path_mnt)) }),
            distance(dentry as u64),
            // SAFETY: as above.
            distance(unsafe { load(dentry, off!(dentry_parent)) }),
            // SAFETY: as above.
            unsafe { load(dentry, off!(dentry_name)) },
        ])
    }
}

impl FileRef for Probed {
    #[inline(always)]
    unsafe fn key_words(self) -> Result<[u64; 4], i32> {
        // struct path is { mnt, dentry }; d_name.hash_len follows d_parent (user space checks).
        // SAFETY: probe reads, which fail safely on any address.
        let f_path = unsafe { read_pair(self.0, off!(file_path))? };
        // SAFETY: as above.
        let leaf = unsafe { read_pair(f_path.second as *const u8, off!(dentry_parent))? };
        Ok([f_path.first, f_path.second, leaf.first, leaf.second])
    }
}

/// A typed pointer as a number the verifier lets a program hash: its distance from a fixed
/// address (CONFIG's, in .rodata). The verifier forbids hashing a typed pointer itself but
/// lets a privileged program subtract one pointer from another; the distance is one-to-one
/// with the pointer.
#[inline(always)]
fn distance(typed: u64) -> u64 {
    typed.wrapping_sub(&raw const CONFIG as u64)
}

/// Where a walk up the dentry chain starts and where it must stop.
struct Walk {
    dentry: *const u8,
    vfsmount: *const u8,
    root_dentry: *const u8,
    root_vfsmount: *const u8,
}

/// Two adjacent pointer-sized fields, read in one go.
#[repr(C)]
#[derive(Clone, Copy)]
struct Pair {
    first: u64,
    second: u64,
}

#[inline(always)]
unsafe fn read_pair(base: *const u8, offset: usize) -> Result<Pair, i32> {
    // SAFETY: a probe read, as in `read_ptr`.
    unsafe { bpf_probe_read_kernel(base.add(offset) as *const Pair) }
}

/// Pending bytes in the ring buffer past which the reader is woken at once (or half the
/// ring, if smaller); below it, the reader's own short tick collects events, so a busy
/// container does not pay a wakeup per event.
const WAKEUP_BYTES: u64 = 64 * 1024;

/// The key of `file`'s path in `SEEN`: this cgroup, and a hash of what fixes the path as this
/// task sees it (the file's dentry, its parent and its name hash, the kernel's own, salted by
/// the parent; its mount; the task's root) and of the kind. Same key, same path; a renamed or
/// re-created file gets a new key and is sent again. Typed and probed references hash
/// different words for one file, but one loaded program reads opened files only one way.
#[inline(always)]
unsafe fn path_key<F: FileRef>(task: *const u8, cgroup_id: u64, file: F, kind: u8) -> Result<SeenKey, i32> {
    // SAFETY: `file` is what its type says (the caller's contract);
    // `task` is BTF-typed and `fs` a typed field of it.
    // SAFETY: as above.
    let [mnt, dentry, parent, hash_len] = unsafe { file.key_words()? };
    // SAFETY: as above.
    let fs: *const u8 = unsafe { load(task, off!(task_fs)) };
    let root = off!(fs_root);
    // SAFETY: as above.
    let root_mnt = distance(unsafe { load(fs, root + off!(path_mnt)) });
    // SAFETY: as above.
    let root_dentry = distance(unsafe { load(fs, root + off!(path_dentry)) });
    // Multilinear: the products are independent, so they overlap in the CPU instead of
    // waiting on each other as a chained hash's steps do. The top bits mix every word; the
    // RECENT slot is taken from them.
    let words = [mnt, dentry, parent, hash_len, root_mnt, root_dentry, kind as u64];
    let mut hash: u64 = 0;
    for (word, factor) in words.into_iter().zip(HASH_FACTORS) {
        hash = hash.wrapping_add(word.wrapping_mul(factor));
    }
    Ok(SeenKey { cgroup_id, path_hash: hash })
}

/// This CPU's [`RECENT`] slot for `key`, or null if there is none.
#[inline(always)]
fn recent_slot(key: &SeenKey) -> *mut SeenKey {
    match RECENT.get_ptr_mut(0) {
        // SAFETY: the index is masked below RECENT_SLOTS; the slot is this CPU's own.
        Some(recent) => unsafe {
            &raw mut (*recent).slots[(key.path_hash >> (64 - RECENT_BITS)) as usize & (RECENT_SLOTS - 1)]
        },
        None => core::ptr::null_mut(),
    }
}

/// Whether this cgroup has not sent `key` yet; a repeat is counted (per CPU). This CPU's [`RECENT`]
/// slot is asked before `SEEN`.
#[inline(always)]
unsafe fn unsent(key: &SeenKey) -> bool {
    let slot = recent_slot(key);
    // SAFETY: a non-null slot is this CPU's own in RECENT, and programs do not nest here.
    let cached = !slot.is_null() && unsafe { *slot == *key };
    // SAFETY: the value is copied out at once; an LRU map entry may be evicted, never torn.
    if !cached && unsafe { SEEN.get(key) }.is_none() {
        return true;
    }
    if !cached && !slot.is_null() {
        // SAFETY: as above.
        unsafe { *slot = *key };
    }
    // Per CPU, not in the cgroup's state: an atomic add there cost every repeat about 4 ns
    // (a locked instruction waits for the store buffer), and a plain one would bounce the
    // line between the CPUs a container runs on.
    count(STAT_REPEATS);
    false
}

/// Hands a path not sent yet to [`send_path`] and tail-calls it. Returns only if the tail
/// call failed, which counts as a lost event.
#[inline(always)]
unsafe fn hand_off(ctx: &TracePointContext, state: *mut WatchState, file: *const u8, kind: u8, key: &SeenKey) {
    if let Some(handoff) = HANDOFF.get_ptr_mut(0) {
        // SAFETY: this CPU's own slot; programs do not nest here.
        unsafe { *handoff = Handoff { file: file as u64, key: *key, kind: kind as u64 } };
        // SAFETY: a tail call does not return on success; on failure this program goes on.
        unsafe { SENDER.tail_call(ctx, 0) };
    }
    lose(state);
}

/// Counts an event of this cgroup that could not be sent.
#[inline(always)]
fn lose(state: *mut WatchState) {
    count(STAT_LOST);
    // SAFETY: `state` points to this cgroup's WatchState, in WATCHED or WATCHED_SPILL.
    unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(&raw mut (*state).lost, 1) };
}

/// Walks `file`'s path and sends it; marks `key` sent in `SEEN` and this CPU's [`RECENT`] slot.
#[inline(always)]
unsafe fn send(task: *const u8, cgroup_id: u64, file: *const u8, kind: u8, key: &SeenKey) -> Result<(), i32> {
    let Some(event) = SCRATCH.get_ptr_mut(0) else {
        return Ok(());
    };
    // SAFETY: this CPU's own scratch slot; programs do not nest here.
    let event = unsafe { &mut *event };
    // The walk compares plain numbers it reads, so it reads its start and the root as such.
    // SAFETY: probe reads, and loads from the BTF-typed `task` (the
    // caller's contract) and from `fs`, a typed field of it.
    // SAFETY: as above.
    let f_path = unsafe { read_pair(file, off!(file_path))? };
    // SAFETY: as above.
    let fs: *const u8 = unsafe { load(task, off!(task_fs)) };
    // SAFETY: as above.
    let root = unsafe { read_pair(fs, off!(fs_root))? };
    let walk = Walk {
        dentry: f_path.second as *const u8,
        vfsmount: f_path.first as *const u8,
        root_dentry: root.second as *const u8,
        root_vfsmount: root.first as *const u8,
    };
    // SAFETY: as above.
    let (len, truncated) = unsafe { walk_path(&walk, &mut event.path) };
    // SAFETY: as above.
    let mnt_ns = unsafe { mount_ns(task) };
    event.header = header(cgroup_id, mnt_ns, kind, if truncated { FLAG_TRUNCATED } else { 0 }, len as u32);
    let size = core::mem::size_of::<EventHeader>() + len;
    if size > core::mem::size_of::<Event>() {
        return Ok(());
    }
    // SAFETY: `size` is at most the size of `*event`.
    let bytes = unsafe { core::slice::from_raw_parts(event as *const Event as *const u8, size) };
    let pending = EVENTS.query(BPF_RB_AVAIL_DATA as u64);
    let wakeup = if pending >= WAKEUP_BYTES || pending * 2 >= EVENTS.query(BPF_RB_RING_SIZE as u64) {
        BPF_RB_FORCE_WAKEUP as u64
    } else {
        BPF_RB_NO_WAKEUP as u64
    };
    if EVENTS.output::<[u8]>(bytes, wakeup).is_err() {
        // Not marked seen: a later open of the same path may still get through.
        return Err(-1);
    }
    let _ = SEEN.insert(key, 1, 0);
    let slot = recent_slot(key);
    if !slot.is_null() {
        // SAFETY: a non-null slot is this CPU's own in RECENT, and programs do not nest here.
        unsafe { *slot = *key };
    }
    count(STAT_SENT);
    Ok(())
}

/// An event's fixed part, for the running task: its pid, tgid and command from the helpers.
#[inline(always)]
fn header(cgroup_id: u64, mnt_ns: u64, kind: u8, flags: u8, path_len: u32) -> EventHeader {
    let pid_tgid = bpf_get_current_pid_tgid();
    EventHeader {
        cgroup_id,
        mnt_ns,
        pid: pid_tgid as u32,
        tgid: (pid_tgid >> 32) as u32,
        comm: bpf_get_current_comm().unwrap_or([0; 16]),
        kind,
        flags,
        _pad: 0,
        path_len,
    }
}

#[inline(always)]
fn count(stat: u32) {
    if let Some(counter) = STATS.get_ptr_mut(stat) {
        // SAFETY: per-CPU slot, not shared with another CPU; programs do not nest here.
        unsafe { *counter += 1 };
    }
}

#[inline(always)]
unsafe fn mount_ns(task: *const u8) -> u64 {
    // SAFETY: `task` is BTF-typed (the caller's contract) and each pointer loaded is a typed
    // field of the struct whose offset is used next.
    unsafe {
        let nsproxy: *const u8 = load(task, off!(task_nsproxy));
        let mnt_ns: *const u8 = load(nsproxy, off!(nsproxy_mnt_ns));
        load::<u32>(mnt_ns, off!(mnt_ns_inum)) as u64
    }
}

/// Walks from the file's dentry up to the task's root, crossing mount points, as the
/// kernel's own `d_path` does, writing the components leaf first, each followed by `/`.
/// Returns the bytes written and whether the path was cut short.
#[inline(always)]
unsafe fn walk_path(walk: &Walk, buf: &mut [u8; 2 * PATH_BUF]) -> (usize, bool) {
    let mut dentry = walk.dentry;
    let mut vfsmount = walk.vfsmount;
    let mut len: usize = 0;
    let mut complete = false;
    let mount_mnt = off!(mount_mnt);
    // SAFETY: probe reads, which fail safely on any address, and
    // pointer arithmetic on kernel addresses that are only ever probe-read.
    for _ in 0..MAX_DEPTH {
        if dentry == walk.root_dentry && vfsmount == walk.root_vfsmount {
            complete = true;
            break;
        }
        // SAFETY: as above.
        let Ok(mnt_root) = (unsafe { read_ptr(vfsmount, off!(vfsmount_root)) }) else {
            break;
        };
        if dentry == mnt_root {
            // At the root of this mount: continue from where it is mounted, in its parent.
            // SAFETY: as above.
            let mount = unsafe { vfsmount.sub(mount_mnt) };
            // SAFETY: as above.
            let Ok(parent) = (unsafe { read_ptr(mount, off!(mount_parent)) }) else {
                break;
            };
            if parent == mount {
                // The root of the mount tree: the task's root is not above this file
                // (a file reached from outside a chroot); the path is from this root.
                complete = true;
                break;
            }
            // SAFETY: as above.
            let Ok(mountpoint) = (unsafe { read_ptr(mount, off!(mount_mountpoint)) }) else {
                break;
            };
            dentry = mountpoint;
            // SAFETY: as above.
            vfsmount = unsafe { parent.add(mount_mnt) };
            continue;
        }
        // d_parent, then d_name.hash_len right after it.
        // SAFETY: as above.
        let Ok(pair) = (unsafe { read_pair(dentry, off!(dentry_parent)) }) else {
            break;
        };
        let parent = pair.first as *const u8;
        if parent == dentry {
            // Root of a filesystem that is not mounted here (detached): stop.
            complete = true;
            break;
        }
        let name_len = (pair.second >> 32) as usize;
        if name_len > NAME_MAX || len + name_len + 1 > PATH_BUF {
            break;
        }
        // SAFETY: as above.
        let Ok(name) = (unsafe { read_ptr(dentry, off!(dentry_name) + off!(qstr_name)) }) else {
            break;
        };
        let at = len & (PATH_BUF - 1);
        // SAFETY: at < PATH_BUF and name_len <= NAME_MAX, inside the 2 * PATH_BUF buffer.
        let res = unsafe { read_raw(buf.as_mut_ptr().add(at) as *mut _, name_len as u32, name as *const _) };
        if res != 0 {
            break;
        }
        buf[(at + name_len) & (2 * PATH_BUF - 1)] = b'/';
        len = at + name_len + 1;
        dentry = parent;
    }
    (len, !complete)
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // SAFETY: no code path above can panic; the verifier would reject one that loops.
    unsafe { core::hint::unreachable_unchecked() }
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
