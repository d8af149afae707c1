//! The New Workload flow of the node agent (../shared/FLOW.md): per image, has SBOM? else
//! compute, store, scan, submit; per instance, learn what it opens, then SBOM', scan, store,
//! submit. Durable state lives in one file ([`store`]); reports leave through an outbox
//! that survives restarts and backend outages ([`submit`]); every transition is an event on
//! the bus ([`bus`]). Knows nothing of eBPF: the daemon gives it what the sniffer saw.

pub mod bus;
mod code;
pub mod flow;
pub mod ids;
pub mod model;
pub mod posture;
pub mod store;
pub mod submit;
pub mod timing;

/// An error and its causes on one line (`what failed: why: why`), for logs, events and API
/// answers. Errors in this workspace name what failed in their message and keep the cause in
/// `source()` (see DESIGN.md, "Errors"), so printing only the top would drop the why.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}
