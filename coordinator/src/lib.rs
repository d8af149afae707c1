//! The New Workload flow of the node agent (../shared/FLOW.md): per image, has SBOM? else
//! compute, store, scan, submit; per instance, learn what it opens, then SBOM', scan, store,
//! submit. Durable state lives in one file ([`store`]); reports leave through an outbox
//! that survives restarts and backend outages ([`submit`]); every transition is an event on
//! the bus ([`bus`]). Knows nothing of eBPF: the daemon gives it what the sniffer saw.

pub mod bus;
pub mod flow;
pub mod model;
pub mod store;
pub mod submit;
