//! The node agent: kernel programs loaded with aya, per-container file tracking, the daemon
//! and its CLI.
//!
//! `kernel` loads and attaches the programs and drives their maps; `event` decodes what
//! they send; `tracker` aggregates it per container; `catchup` adds what a container's
//! processes already held when watching began; `discovery` finds containers; `daemon` and
//! `api` serve it all on a Unix socket; `trace` runs one command under watch.

pub mod api;
pub mod btf;
pub mod caps;
pub mod catchup;
pub mod cgroup;
pub mod daemon;
pub mod discovery;
pub mod event;
pub mod image_view;
pub mod kernel;
pub mod loader;
pub mod paths;
pub mod probes;
pub mod secrets;
pub mod trace;
pub mod tracker;
pub mod uprobe;
