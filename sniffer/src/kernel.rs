//! Loading and attaching the kernel programs, and the maps user space drives.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use aya::maps::{MapData, PerCpuArray, ProgramArray, RingBuf};
use aya::programs::TracePoint;
use aya::{Ebpf, EbpfLoader};
use sniffer_common::{Config, RDONLY_CAST_CALL, STAT_COUNT, STAT_LOST, STAT_REPEATS, STAT_SENT, WatchState};
use tokio::io::unix::AsyncFd;

use crate::btf::{Btf, BtfError};
use crate::event::{CallSeen, ClassSeen, FileEvent};

mod watch;
use watch::Watchlist;

/// The kernel object, built by `build.rs` from `sniffer-ebpf` and embedded in the binary.
static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/sniffer-ebpf.o"));

/// A program and the tracepoint it attaches to.
struct Attachment {
    program: &'static str,
    category: &'static str,
    tracepoint: &'static str,
    /// `open` and `creat` do not exist on every architecture, so they are optional.
    required: bool,
}

const fn attachment(program: &'static str, category: &'static str, required: bool) -> Attachment {
    Attachment { program, category, tracepoint: program, required }
}

/// Every program and its tracepoint (each program is named after its tracepoint).
const ATTACHMENTS: &[Attachment] = &[
    attachment("sys_exit_openat", "syscalls", true),
    attachment("sys_exit_openat2", "syscalls", true),
    attachment("sys_exit_open", "syscalls", false),
    attachment("sys_exit_creat", "syscalls", false),
    attachment("sys_exit_open_by_handle_at", "syscalls", false),
    attachment("sched_process_exec", "sched", true),
    // Opens through io_uring, at their completion (no syscall exit sees them).
    attachment("io_uring_complete", "io_uring", false),
];

/// Whether the `io_uring/io_uring_complete` record has `req` at 16 and `res` at 32, where
/// the program reads them (its format is the kernel's to change).
fn io_uring_record_as_expected() -> bool {
    let format = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .iter()
        .find_map(|t| std::fs::read_to_string(format!("{t}/events/io_uring/io_uring_complete/format")).ok());
    let Some(format) = format else { return false };
    let at = |field: &str| {
        format.lines().find(|l| l.contains(&format!(" {field};"))).and_then(|l| {
            let off = l.split("offset:").nth(1)?.split(';').next()?;
            off.trim().parse::<u32>().ok()
        })
    };
    at("req") == Some(16) && at("res") == Some(32)
}

/// Errors loading or driving the kernel programs.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// Loading BPF programs needs root (CAP_BPF and CAP_PERFMON at least).
    #[error("loading eBPF programs needs root (CAP_BPF, CAP_PERFMON); run as root")]
    NotRoot,
    /// The kernel's BTF could not be used.
    #[error(transparent)]
    Btf(#[from] BtfError),
    /// tracefs is not mounted and could not be mounted.
    #[error("tracefs is not mounted at /sys/kernel/tracing and mounting it failed")]
    Tracefs(#[source] std::io::Error),
    /// The object could not be loaded. (Boxed, as the other aya errors here: they are
    /// large, and every `Result` of this module would carry their size.)
    #[error("loading the eBPF object")]
    Load(#[source] Box<aya::EbpfError>),
    /// A program could not be loaded or attached.
    #[error("{what} {program} ({category}/{tracepoint})")]
    Program {
        /// "loading" or "attaching".
        what: &'static str,
        /// Program name.
        program: &'static str,
        /// Tracepoint category.
        category: &'static str,
        /// Tracepoint name.
        tracepoint: &'static str,
        /// The cause.
        source: Box<aya::programs::ProgramError>,
    },
    /// The program that walks and sends new paths could not be loaded.
    #[error("loading {SENDER_PROGRAM} (tail-called to walk and send each new path)")]
    Sender(#[source] Box<aya::programs::ProgramError>),
    /// The kernel's information on a loaded program could not be read.
    #[error("reading the kernel's information on program {program}")]
    Info {
        /// Program name.
        program: &'static str,
        /// The cause.
        source: Box<aya::programs::ProgramError>,
    },
    /// A map operation failed.
    #[error("eBPF map {map}")]
    Map {
        /// Map name.
        map: &'static str,
        /// The cause.
        source: Box<aya::maps::MapError>,
    },
    /// An expected map or program is missing from the object (a build problem).
    #[error("the embedded eBPF object has no {0}")]
    Missing(&'static str),
    /// No cgroup has this id (0 marks a free slot of the watched cgroups).
    #[error("cgroup id {0} names no cgroup")]
    NoCgroup(u64),
    /// The kernel lays out a structure differently from what the programs read in one go.
    #[error("unsupported kernel structure layout: {0}")]
    Layout(&'static str),
    /// Setting up the ring buffer reader failed.
    #[error("setting up the ring buffer reader")]
    Io(#[from] std::io::Error),
}

impl From<aya::EbpfError> for KernelError {
    fn from(error: aya::EbpfError) -> Self {
        KernelError::Load(Box::new(error))
    }
}

/// How to load the programs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Ring buffer size in bytes: a power of two, at least one page.
    pub ring_bytes: u32,
    /// Entries of the in-kernel LRU of paths already sent.
    pub seen_entries: u32,
    /// Most cgroups watched at once: the gate's direct-mapped slots (rounded up to a power of
    /// two), and as many again for cgroups whose slot another holds.
    pub max_watched: u32,
    /// Which programs to attach: the real ones, or a benchmark baseline.
    pub programs: Programs,
    /// How the programs read an opened file: `None` for the fastest way this kernel allows.
    /// Tests force the slower ways, which older kernels take.
    pub file_reads: Option<FileReads>,
    /// Bounds on uprobes at vulnerable functions.
    pub probes: crate::probes::ProbeLimits,
}

/// How the programs read an opened file, fastest first. Each needs more of the kernel than
/// the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileReads {
    /// The fd slot and the file's fields with plain loads: the kfunc `bpf_rdonly_cast`, and
    /// casts to `void` (the kernel's BTF lists `BPF_FEAT_RDONLY_CAST_TO_VOID`).
    Plain,
    /// The file's fields with plain loads (`bpf_rdonly_cast`), the fd slot with the
    /// probe-read helper.
    PlainFields,
    /// Everything with the probe-read helper: kernels without `bpf_rdonly_cast`.
    Probed,
}

impl std::fmt::Display for FileReads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FileReads::Plain => "plain loads (bpf_rdonly_cast, also to void)",
            FileReads::PlainFields => "plain loads of the file (bpf_rdonly_cast), the fd slot by probe read",
            FileReads::Probed => "probe reads",
        })
    }
}

/// The programs [`Kernel::load`] attaches. Only [`Programs::Real`] sniffs anything; the others
/// are the benchmark's baselines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Programs {
    /// The real programs.
    #[default]
    Real,
    /// A program that returns at once, on every tracepoint the real ones use: what enabling
    /// those tracepoints costs.
    DoNothing,
    /// The do-nothing program on `syscalls/sys_exit_reboot` alone, which no open fires: what
    /// switching every syscall of every task to the traced path costs, the floor any syscall
    /// tracepoint program (bpftrace's included) pays before it runs.
    SyscallTracingOnly,
}

/// The tracepoint [`Programs::SyscallTracingOnly`] uses: a syscall no workload makes at a rate.
const IDLE_SYSCALL_TRACEPOINT: Attachment = attachment("sys_exit_reboot", "syscalls", true);

impl Default for Options {
    fn default() -> Self {
        Options {
            ring_bytes: 8 << 20,
            seen_entries: 65536,
            max_watched: 16384,
            programs: Programs::Real,
            file_reads: None,
            probes: crate::probes::ProbeLimits::default(),
        }
    }
}

/// Counters the kernel programs keep, summed over CPUs unless said otherwise.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct KernelStats {
    /// Events sent to user space.
    pub sent: u64,
    /// Events lost because the ring buffer was full.
    pub lost: u64,
    /// Lost events per CPU.
    pub lost_per_cpu: Vec<u64>,
    /// Opens and execs dropped in the kernel as repeats of a path already sent, since load.
    pub repeats: u64,
}

/// The loaded and attached programs.
pub struct Kernel {
    ebpf: Ebpf,
    attached: Vec<String>,
    file_reads: FileReads,
    watchlist: Watchlist,
    /// The call program (`func_entry`), loaded and attached to nothing: the probe manager
    /// attaches it at vulnerable functions. Why it is not there, when it is not.
    call_program: Result<OwnedFd, String>,
    /// The class program (`class_define`), likewise.
    class_program: Result<OwnedFd, String>,
}

/// The program the probe manager attaches at functions' entries.
pub const CALL_PROGRAM: &str = "func_entry";
/// The program the probe manager attaches at HotSpot's class definition.
pub const CLASS_PROGRAM: &str = "class_define";

fn map_err(map: &'static str) -> impl FnOnce(aya::maps::MapError) -> KernelError {
    move |source| KernelError::Map { map, source: Box::new(source) }
}

/// Mounts tracefs where aya looks for it, if nothing is there yet.
fn ensure_tracefs() -> Result<(), KernelError> {
    let tracing = Path::new("/sys/kernel/tracing");
    if tracing.join("events").exists() || Path::new("/sys/kernel/debug/tracing/events").exists() {
        return Ok(());
    }
    nix::mount::mount(Some("tracefs"), tracing, Some("tracefs"), nix::mount::MsFlags::empty(), None::<&str>)
        .map_err(|e| KernelError::Tracefs(e.into()))
}

impl Kernel {
    /// Reads the kernel's BTF, loads the programs with its offsets and attaches them.
    pub fn load(options: &Options) -> Result<Self, KernelError> {
        if !nix::unistd::geteuid().is_root() {
            return Err(KernelError::NotRoot);
        }
        let btf = Btf::from_kernel()?;
        let offsets = btf.kernel_offsets()?;
        check_layout(&offsets)?;
        ensure_tracefs()?;
        let file_reads = options.file_reads.unwrap_or(FileReads::Plain).max(best_file_reads(&btf));
        let (kfunc, file_btf_id) = match (file_reads, btf.func_id("bpf_rdonly_cast"), btf.struct_id("file")) {
            (FileReads::Plain | FileReads::PlainFields, Some(kfunc), Some(file)) => (Some(kfunc), file),
            _ => (None, 0),
        };
        let object = patch_rdonly_cast(EBPF_OBJECT, kfunc)?;
        let slots = options.max_watched.max(1).next_power_of_two();
        let watch_mask = slots - 1;
        let cast_to_void = (file_reads == FileReads::Plain).into();
        let config = Config { offsets, watch_mask, file_btf_id, cast_to_void };
        let mut ebpf = EbpfLoader::new()
            .override_global("CONFIG", &config, true)
            .map_max_entries("EVENTS", options.ring_bytes)
            .map_max_entries("SEEN", options.seen_entries)
            .map_max_entries("WATCHED", slots)
            .map_max_entries("SPILLED", slots)
            .map_max_entries("WATCHED_SPILL", options.max_watched.max(1))
            .load(object.bytes())?;
        // Before any program runs, so no tail call finds the slot empty.
        if options.programs == Programs::Real {
            install_sender(&mut ebpf)?;
        }
        let mut attached = Vec::new();
        let attachments = match options.programs {
            Programs::Real | Programs::DoNothing => ATTACHMENTS,
            Programs::SyscallTracingOnly => std::slice::from_ref(&IDLE_SYSCALL_TRACEPOINT),
        };
        for a in attachments {
            if a.category == "io_uring"
                && (offsets.io_kiocb_opcode == sniffer_common::NO_OFFSET || !io_uring_record_as_expected())
            {
                tracing::warn!(
                    "opens through io_uring are not seen: this kernel's io_uring layout is not the one known"
                );
                continue;
            }
            // The baselines attach one do-nothing program instead.
            let program = if options.programs == Programs::Real { a.program } else { "noop" };
            let tp: &mut TracePoint =
                ebpf.program_mut(program).and_then(|p| p.try_into().ok()).ok_or(KernelError::Missing(program))?;
            let error = |what| {
                move |source| KernelError::Program {
                    what,
                    program,
                    category: a.category,
                    tracepoint: a.tracepoint,
                    source: Box::new(source),
                }
            };
            if tp.fd().is_err() {
                tp.load().map_err(error("loading"))?;
            }
            match tp.attach(a.category, a.tracepoint) {
                Ok(_) => attached.push(format!("{program}@{}/{}", a.category, a.tracepoint)),
                Err(_) if !a.required && !tracepoint_exists(a.category, a.tracepoint) => {}
                Err(source) => return Err(error("attaching")(source)),
            }
        }
        let watchlist = Watchlist::new(&mut ebpf, watch_mask)?;
        let (call_program, class_program) = match options.programs {
            Programs::Real => {
                (load_probe_program(&mut ebpf, CALL_PROGRAM), load_probe_program(&mut ebpf, CLASS_PROGRAM))
            }
            _ => {
                (Err("a benchmark baseline: no probes".to_string()), Err("a benchmark baseline: no probes".to_string()))
            }
        };
        if let Err(why) = &call_program {
            tracing::warn!(%why, "function probes are off: findings of Go binaries stay at file level");
        }
        if let Err(why) = &class_program {
            tracing::warn!(%why, "class probes are off: findings of Java packages stay at file level");
        }
        Ok(Kernel { ebpf, attached, file_reads, watchlist, call_program, class_program })
    }

    /// The loaded class program's descriptor (a copy), or why there is none.
    pub fn class_program(&self) -> Result<OwnedFd, String> {
        match &self.class_program {
            Ok(fd) => fd.try_clone().map_err(|e| format!("copying the class program's descriptor: {e}")),
            Err(why) => Err(why.clone()),
        }
    }

    /// The loaded call program's descriptor (a copy), or why there is none.
    pub fn call_program(&self) -> Result<OwnedFd, String> {
        match &self.call_program {
            Ok(fd) => fd.try_clone().map_err(|e| format!("copying the call program's descriptor: {e}")),
            Err(why) => Err(why.clone()),
        }
    }

    /// Programs attached, as `program@category/tracepoint`.
    pub fn attached(&self) -> &[String] {
        &self.attached
    }

    /// How the programs read an opened file.
    pub fn file_reads(&self) -> FileReads {
        self.file_reads
    }

    /// How long `program` has run in all, and how many times, as the kernel counts while
    /// run-time statistics are on (`aya::sys::enable_stats`); both zero while they are off.
    pub fn run_time(&self, program: &'static str) -> Result<(std::time::Duration, u64), KernelError> {
        let info = self
            .ebpf
            .program(program)
            .ok_or(KernelError::Missing(program))?
            .info()
            .map_err(|source| KernelError::Info { program, source: Box::new(source) })?;
        Ok((info.run_time(), info.run_count()))
    }

    /// Starts reporting opens and execs of tasks in this cgroup.
    pub fn watch(&mut self, cgroup_id: u64) -> Result<(), KernelError> {
        self.watchlist.watch(cgroup_id)
    }

    /// Stops reporting this cgroup; returns how many of its events were lost.
    pub fn unwatch(&mut self, cgroup_id: u64) -> Result<u64, KernelError> {
        self.watchlist.unwatch(cgroup_id)
    }

    /// What the kernel counted for this cgroup: events lost.
    pub fn counts_for(&mut self, cgroup_id: u64) -> Result<WatchState, KernelError> {
        self.watchlist.counts_for(cgroup_id)
    }

    /// The kernel programs' counters.
    pub fn stats(&self) -> Result<KernelStats, KernelError> {
        let map = self.ebpf.map("STATS").ok_or(KernelError::Missing("map STATS"))?;
        let stats: PerCpuArray<&MapData, u64> = PerCpuArray::try_from(map).map_err(map_err("STATS"))?;
        let mut per_stat = Vec::with_capacity(STAT_COUNT as usize);
        for index in 0..STAT_COUNT {
            per_stat.push(stats.get(&index, 0).map_err(map_err("STATS"))?.to_vec());
        }
        let sum = |i: u32| per_stat[i as usize].iter().sum::<u64>();
        Ok(KernelStats {
            sent: sum(STAT_SENT),
            lost: sum(STAT_LOST),
            lost_per_cpu: per_stat[STAT_LOST as usize].clone(),
            repeats: sum(STAT_REPEATS),
        })
    }

    /// Takes the ring buffer out, for a reader task of its own. Only once.
    pub fn events(&mut self) -> Result<EventReader, KernelError> {
        let map = self.ebpf.take_map("EVENTS").ok_or(KernelError::Missing("map EVENTS"))?;
        let ring = RingBuf::try_from(map).map_err(map_err("EVENTS"))?;
        // SAFETY: the ring buffer owns its fd and keeps it open, unchanged, while it lives,
        // and the AsyncFd owns the ring buffer.
        let ring = unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) }
            .map_err(|e| KernelError::Io(std::io::Error::other(e.to_string())))?;
        Ok(EventReader { ring, calls: Vec::new(), classes: Vec::new() })
    }
}

/// Loads a uprobe program the probe manager attaches (not attached here).
fn load_probe_program(ebpf: &mut Ebpf, name: &'static str) -> Result<OwnedFd, String> {
    let program: &mut aya::programs::UProbe = ebpf
        .program_mut(name)
        .and_then(|p| p.try_into().ok())
        .ok_or_else(|| format!("no program {name} in the object"))?;
    program.load().map_err(|e| format!("loading {name}: {}", coordinator::chain(&e)))?;
    let fd = program.fd().map_err(|e| format!("{name}: {e}"))?;
    fd.as_fd().try_clone_to_owned().map_err(|e| format!("{name}: {e}"))
}

/// The fastest way of reading an opened file this kernel allows, from its BTF.
fn best_file_reads(btf: &Btf) -> FileReads {
    if btf.func_id("bpf_rdonly_cast").is_none() || btf.struct_id("file").is_none() {
        FileReads::Probed
    } else if btf.has_enumerator("bpf_features", "BPF_FEAT_RDONLY_CAST_TO_VOID") {
        FileReads::Plain
    } else {
        FileReads::PlainFields
    }
}

/// The program that walks and sends a new path, which the others tail-call.
const SENDER_PROGRAM: &str = "send_path";

/// Loads [`SENDER_PROGRAM`] (attached to nothing) and puts it where the others tail-call it.
fn install_sender(ebpf: &mut Ebpf) -> Result<(), KernelError> {
    let program: &mut TracePoint =
        ebpf.program_mut(SENDER_PROGRAM).and_then(|p| p.try_into().ok()).ok_or(KernelError::Missing(SENDER_PROGRAM))?;
    let failed = |e| KernelError::Sender(Box::new(e));
    program.load().map_err(failed)?;
    let fd = program.fd().map_err(failed)?.try_clone()?;
    let map = ebpf.map_mut("SENDER").ok_or(KernelError::Missing("map SENDER"))?;
    let mut sender = ProgramArray::try_from(map).map_err(map_err("SENDER"))?;
    sender.set(0, &fd, 0).map_err(map_err("SENDER"))
}

/// Writes the kfunc id of `bpf_rdonly_cast` into each placeholder call in the object (see
/// [`sniffer_common::RDONLY_CAST_PLACEHOLDER`]), or, when the kernel has no such kfunc (or
/// the caller wants probe reads), turns each call into `r0 = r1`: the verifier refuses an
/// unknown kfunc even in code it would not walk.
fn patch_rdonly_cast(object: &[u8], kfunc: Option<u32>) -> Result<AlignedObject, KernelError> {
    // Instructions are 8 bytes, 8-aligned in the file; so is the copy, byte for byte.
    let mut words: Vec<u64> = object
        .chunks(8)
        .map(|chunk| {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            u64::from_ne_bytes(word)
        })
        .collect();
    // Instructions are little-endian in a bpfel object, whatever the host.
    let as_stored = |insn: u64| u64::from_ne_bytes(insn.to_le_bytes());
    let replacement = match kfunc {
        Some(id) => (RDONLY_CAST_CALL & 0xffff_ffff) | (u64::from(id) << 32),
        None => MOV_R0_R1,
    };
    let mut patched = 0;
    for word in words.iter_mut().filter(|w| **w == as_stored(RDONLY_CAST_CALL)) {
        *word = as_stored(replacement);
        patched += 1;
    }
    if patched == 0 {
        return Err(KernelError::Missing("bpf_rdonly_cast placeholder call"));
    }
    Ok(AlignedObject { words, len: object.len() })
}

/// `r0 = r1`: BPF_ALU64 | BPF_MOV | BPF_X, source register 1, destination 0.
const MOV_R0_R1: u64 = 0xbf | (0x10 << 8);

/// An object file copied into 8-byte aligned memory, as aya reads it.
struct AlignedObject {
    words: Vec<u64>,
    len: usize,
}

impl AlignedObject {
    fn bytes(&self) -> &[u8] {
        // SAFETY: `words` holds at least `len` initialised bytes; u8 has no alignment needs.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast::<u8>(), self.len) }
    }
}

/// The programs read some field pairs with one 16-byte read; make sure they are adjacent.
fn check_layout(o: &sniffer_common::KernelOffsets) -> Result<(), KernelError> {
    if o.path_dentry != o.path_mnt + 8 {
        return Err(KernelError::Layout("struct path is not { mnt; dentry }"));
    }
    if o.dentry_name != o.dentry_parent + 8 {
        return Err(KernelError::Layout("dentry.d_name does not follow dentry.d_parent"));
    }
    Ok(())
}

fn tracepoint_exists(category: &str, name: &str) -> bool {
    ["/sys/kernel/tracing/events", "/sys/kernel/debug/tracing/events"]
        .iter()
        .any(|root| Path::new(root).join(category).join(name).exists())
}

/// Longest wait for events below the kernel's wakeup threshold.
pub const POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(50);

/// Pending bytes past which the kernel wakes the reader, or half the ring if smaller
/// (mirrors `sniffer-ebpf`).
pub const WAKEUP_BYTES: usize = 64 * 1024;

/// Most call events kept between two [`EventReader::take_calls`]; each is the first call of
/// a probe by one cgroup, so there are never more than probes times instances.
const MAX_PENDING_CALLS: usize = 65_536;

/// Reads events from the ring buffer.
pub struct EventReader {
    ring: AsyncFd<RingBuf<MapData>>,
    calls: Vec<CallSeen>,
    classes: Vec<ClassSeen>,
}

impl EventReader {
    /// Waits until events are ready, or [`POLL_INTERVAL`] at most, then appends every event
    /// ready to `out`. The kernel wakes the reader only once [`WAKEUP_BYTES`] are pending,
    /// so a quiet container's events are collected by the interval.
    pub async fn next_batch(&mut self, out: &mut Vec<FileEvent>) -> std::io::Result<()> {
        match tokio::time::timeout(POLL_INTERVAL, self.ring.readable_mut()).await {
            Ok(guard) => {
                let mut guard = guard?;
                drain_into(guard.get_inner_mut(), out, &mut self.calls, &mut self.classes);
                guard.clear_ready();
            }
            Err(_) => drain_into(self.ring.get_mut(), out, &mut self.calls, &mut self.classes),
        }
        Ok(())
    }

    /// Appends every event ready now, without waiting.
    pub fn drain(&mut self, out: &mut Vec<FileEvent>) {
        drain_into(self.ring.get_mut(), out, &mut self.calls, &mut self.classes);
    }

    /// The classes JVMs defined, read since the last time.
    pub fn take_classes(&mut self) -> Vec<ClassSeen> {
        std::mem::take(&mut self.classes)
    }

    /// The calls of probed functions read since the last time.
    pub fn take_calls(&mut self) -> Vec<CallSeen> {
        std::mem::take(&mut self.calls)
    }
}

fn drain_into(
    ring: &mut RingBuf<MapData>,
    out: &mut Vec<FileEvent>,
    calls: &mut Vec<CallSeen>,
    classes: &mut Vec<ClassSeen>,
) {
    while let Some(item) = ring.next() {
        if let Some(class) = ClassSeen::decode(&item) {
            // Bounded like calls; a class past the bound is lost to the report, which the
            // class probe's coverage then says.
            if classes.len() < MAX_PENDING_CALLS {
                classes.push(class);
            }
            continue;
        }
        if let Some(call) = CallSeen::decode(&item) {
            if calls.len() < MAX_PENDING_CALLS {
                calls.push(call);
            }
            continue;
        }
        match FileEvent::decode(&item) {
            Some(event) => out.push(event),
            None => tracing::warn!(len = item.len(), "malformed event from the kernel"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sniffer_common::RDONLY_CAST_PLACEHOLDER;

    fn words(object: &AlignedObject) -> Vec<u64> {
        object.bytes().chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect()
    }

    #[test]
    fn every_placeholder_call_gets_the_kfunc_id() {
        let placeholders = words(&patch_rdonly_cast(EBPF_OBJECT, Some(RDONLY_CAST_PLACEHOLDER)).unwrap())
            .iter()
            .filter(|&&w| w == RDONLY_CAST_CALL)
            .count();
        assert!(placeholders >= 4, "one call per open program, found {placeholders}");

        let patched = patch_rdonly_cast(EBPF_OBJECT, Some(0x1234)).unwrap();
        assert_eq!(patched.bytes().len(), EBPF_OBJECT.len());
        let words = words(&patched);
        assert!(!words.contains(&RDONLY_CAST_CALL));
        let call = 0x85 | (0x20 << 8) | (0x1234 << 32);
        assert_eq!(words.iter().filter(|&&w| w == call).count(), placeholders);
    }

    #[test]
    fn without_the_kfunc_each_call_becomes_a_move() {
        let before = words(&patch_rdonly_cast(EBPF_OBJECT, Some(RDONLY_CAST_PLACEHOLDER)).unwrap());
        let after = words(&patch_rdonly_cast(EBPF_OBJECT, None).unwrap());
        for (b, a) in before.iter().zip(&after) {
            if *b == RDONLY_CAST_CALL {
                assert_eq!(*a, MOV_R0_R1);
            } else {
                assert_eq!(a, b, "only the placeholder calls change");
            }
        }
    }

    #[test]
    fn an_object_without_the_placeholder_is_refused() {
        let object = vec![0u8; 64];
        let error = patch_rdonly_cast(&object, Some(1)).err().expect("no placeholder in zeroes");
        assert!(error.to_string().contains("bpf_rdonly_cast placeholder"), "{error}");
    }
}
