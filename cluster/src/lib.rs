//! Cluster mode: what the agent does when it runs as a DaemonSet in Kubernetes, kept apart
//! from the flow (tetragon's split: the coordinator knows nothing of Kubernetes; this crate
//! implements the coordinator's interfaces with the API server).
//!
//! - [`identity`]: each container's workload, from a watch of this node's pods and their
//!   owner references, cached: no API call per event or per container start.
//! - [`resources`]: the `sniffer.dev/v1alpha1` custom resources, and their CRDs.
//! - [`names`] and [`compact`]: object names, labels and size-bounded contents (plain
//!   functions).
//! - [`store`]: the coordinator's `Storage` for cluster mode: the node's state file as
//!   before, plus a durable queue of objects to write to the API server (server-side apply),
//!   the cluster-wide "has SBOM'" lookup, and the reservation of image SBOMs ([`claim`]),
//!   written within a client-side rate limit ([`limit`]).

pub mod claim;
pub mod compact;
pub mod identity;
pub mod limit;
pub mod names;
pub mod resources;
pub mod store;

/// The field manager of every write (server-side apply).
pub const FIELD_MANAGER: &str = "sniffer";
