//! Calls of vulnerable functions: user space attaches [`func_entry`] as a uprobe at the entry
//! of each vulnerable function linked into a binary a watched container runs, with the
//! probe's id as its cookie. The first call per (cgroup, probe) is sent; later ones are
//! dropped here, and user space removes the probe once every container learning that binary
//! has called it, so a hot function costs at most one trap per instance.

use aya_ebpf::{
    EbpfContext,
    bindings::BPF_RB_FORCE_WAKEUP,
    helpers::generated::{bpf_get_attach_cookie, bpf_get_current_cgroup_id},
    macros::{map, uprobe},
    maps::LruHashMap,
    programs::ProbeContext,
};
use sniffer_common::{CallEvent, KIND_CALL, STAT_SENT, SeenKey};

use crate::{EVENTS, count, header, lose, watched};

/// (cgroup, probe) pairs already sent.
#[map]
static CALLS_SEEN: LruHashMap<SeenKey, u8> = LruHashMap::with_max_entries(16384, 0);

#[uprobe]
pub fn func_entry(ctx: ProbeContext) -> u32 {
    // SAFETY: the helper takes no argument.
    let cgroup_id = unsafe { bpf_get_current_cgroup_id() };
    let Some(state) = watched(cgroup_id) else {
        return 0;
    };
    // SAFETY: the program's own context, as the helper wants it.
    let cookie = unsafe { bpf_get_attach_cookie(ctx.as_ptr()) };
    let key = SeenKey { cgroup_id, path_hash: cookie };
    // SAFETY: a lookup; the value is not kept.
    if unsafe { CALLS_SEEN.get(key) }.is_some() {
        return 0;
    }
    let event = CallEvent { header: header(cgroup_id, 0, KIND_CALL, 0, 8), probe: cookie };
    // Rare and wanted at once: wake the reader.
    if EVENTS.output::<CallEvent>(&event, BPF_RB_FORCE_WAKEUP as u64).is_err() {
        lose(state);
        return 0;
    }
    let _ = CALLS_SEEN.insert(key, 1, 0);
    count(STAT_SENT);
    0
}
