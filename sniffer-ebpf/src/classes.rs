//! Classes a JVM defines: user space attaches [`class_define`] as a uprobe at HotSpot's
//! `JVM_DefineClassWithSource` (every class a class loader defines from bytes passes there:
//! `ClassLoader.defineClass1/2`), in each `libjvm.so` a watched container may run. The event
//! carries the class name (argument 2) and its code source (argument 7, the URL of the jar
//! or directory the class came from), each cut to a fixed size.

use aya_ebpf::{
    bindings::BPF_RB_NO_WAKEUP,
    helpers::{bpf_probe_read_user, bpf_probe_read_user_str_bytes, generated::bpf_get_current_cgroup_id},
    macros::uprobe,
    programs::ProbeContext,
};
use sniffer_common::{CLASS_NAME_MAX, CLASS_SOURCE_MAX, Event, EventHeader, KIND_CLASS, STAT_SENT};

use crate::{EVENTS, SCRATCH, count, header, lose, watched};

/// The seventh argument of a function at its entry: on x86-64 the first one on the stack,
/// above the return address.
#[inline(always)]
fn seventh(ctx: &ProbeContext) -> *const u8 {
    // SAFETY: `regs` is the probe's own register frame; `rsp` is read from it, and the user
    // stack word is a probe read (a bad address fails the read, nothing more).
    unsafe {
        let sp = (*ctx.regs).rsp;
        bpf_probe_read_user((sp + 8) as *const u64).map(|p| p as *const u8).unwrap_or(core::ptr::null())
    }
}

#[uprobe]
pub fn class_define(ctx: ProbeContext) -> u32 {
    // SAFETY: the helper takes no argument.
    let cgroup_id = unsafe { bpf_get_current_cgroup_id() };
    let Some(state) = watched(cgroup_id) else {
        return 0;
    };
    let Some(event) = SCRATCH.get_ptr_mut(0) else {
        return 0;
    };
    // SAFETY: this CPU's own scratch slot; programs do not nest here.
    let event: &mut Event = unsafe { &mut *event };
    let name: *const u8 = ctx.arg(1).unwrap_or(core::ptr::null());
    let source = seventh(&ctx);
    // Each field NUL-terminated within its fixed size; an unreadable one is empty.
    event.path[0] = 0;
    event.path[CLASS_NAME_MAX] = 0;
    // SAFETY: probe reads of user memory into this CPU's scratch buffer, bounded by the slices.
    unsafe {
        let _ = bpf_probe_read_user_str_bytes(name, &mut event.path[..CLASS_NAME_MAX]);
        let _ =
            bpf_probe_read_user_str_bytes(source, &mut event.path[CLASS_NAME_MAX..CLASS_NAME_MAX + CLASS_SOURCE_MAX]);
    }
    event.header = header(cgroup_id, 0, KIND_CLASS, 0, (CLASS_NAME_MAX + CLASS_SOURCE_MAX) as u32);
    let size = core::mem::size_of::<EventHeader>() + CLASS_NAME_MAX + CLASS_SOURCE_MAX;
    // SAFETY: `size` is within `*event` (its path buffer is larger than both fields).
    let bytes = unsafe { core::slice::from_raw_parts(event as *const Event as *const u8, size) };
    // Classes come in bursts at start-up: the reader's timer or the pending-bytes wakeup
    // collects them.
    if EVENTS.output::<[u8]>(bytes, BPF_RB_NO_WAKEUP as u64).is_err() {
        lose(state);
        return 0;
    }
    count(STAT_SENT);
    0
}
