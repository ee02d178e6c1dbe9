//! The hub: accepts callers, workers and monitors on one port, routes each request to a worker
//! serving its proxy id, and brings the reply back to the caller by request id.
//!
//! Rooms:
//! - `listener`: binding TCP and Unix sockets (port reuse, stale socket files);
//! - `peer`: one connection: its socket, buffers and role;
//! - `flights`: requests handed to workers and not yet answered, by tag;
//! - `router`: which workers serve which proxy, the known proxy ids, the per-proxy queue;
//! - `sessions`: what the hub keeps of each caller across connections and restarts;
//! - `store` and `records`: the journal (or memory) and what the hub writes to it;
//! - `handle`: what each frame does, by role;
//! - `server`: the event loop, keep-alive and shutdown;
//! - `stats`: counters and latency histograms for `dco stats`.
//!
//! The hub is one thread running a `mio` event loop: every frame read in one wake-up is
//! handled, then every connection that has output is written once, so replies to a batch of
//! requests leave in one system call.

mod flights;
mod handle;
mod listener;
mod peer;
mod records;
mod router;
mod server;
mod sessions;
mod stats;
mod store;

pub use listener::Listeners;
pub use server::{run, spawn, HubHandle, Shutdown};

use std::path::PathBuf;
use std::time::Duration;

use crate::journal::JournalConfig;

/// Settings of a hub. `Default` gives the embedded defaults.
#[derive(Clone, Debug)]
pub struct HubConfig {
    /// TCP address to listen on (`None`: no TCP).
    pub listen: Option<String>,
    /// Unix socket path (`None`: no Unix socket).
    pub unix: Option<PathBuf>,
    /// Data directory.
    pub data: PathBuf,
    /// Largest frame payload accepted.
    pub max_frame: u32,
    /// Most requests one caller may have accepted and unanswered.
    pub quota: u32,
    /// Idle time after which the hub pings a connection; a worker silent for three times this
    /// long is dropped.
    pub keepalive: Duration,
    /// Shared secret every peer must present (empty: none).
    pub secret: Vec<u8>,
    /// The journal (None: requests are kept in memory only and lost if the hub stops).
    pub journal: Option<JournalConfig>,
    /// How long a session that left keeps its unread answers.
    pub reply_ttl: Duration,
    /// Proxy ids accepted before any worker has served them.
    pub proxy_ids: Vec<i32>,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            listen: Some("127.0.0.1:7790".into()),
            unix: Some(PathBuf::from("dco-data/dco.sock")),
            data: PathBuf::from("dco-data"),
            max_frame: crate::wire::DEFAULT_MAX_FRAME,
            quota: 1 << 20,
            keepalive: Duration::from_secs(5),
            secret: Vec::new(),
            journal: Some(JournalConfig::new("dco-data/journal")),
            reply_ttl: Duration::from_secs(3600),
            proxy_ids: Vec::new(),
        }
    }
}
