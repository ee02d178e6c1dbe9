//! The hub: accepts callers, workers and monitors on one port, routes each request to a worker
//! serving its proxy id, and brings the reply back to the caller by request id.
//!
//! Rooms:
//! - `core`: the state machine: sessions, per-proxy fair queues, flights, attempts, timers.
//!   Events in (a frame from connection c, c closed, the store durable up to p, time is t),
//!   actions out (frames in c's outbox, close c, records in the store). No sockets, no clock.
//! - `shell`: the I/O around it: the `mio` loop, accept/read/write, the store's commit, the
//!   clock, shutdown;
//! - `socket`: the shell's side of one connection;
//! - `listener`: binding TCP and Unix sockets (port reuse, stale socket files);
//! - `store`: the [`store::Store`] trait the core writes to: the journal, or memory;
//! - `stats`: counters, histograms and the statistics document for `dco stats`.
//!
//! The hub is one thread: every frame read in one wake-up is handled, then every connection
//! that has output is written once, so replies to a batch of requests leave in one system call.

pub mod allow;
pub mod core;
mod listener;
mod shell;
mod socket;
pub mod stats;
pub mod store;

pub use self::core::{Mode, Policies, ProxyPolicy};
pub use listener::Listeners;
pub use shell::{run, run_with, spawn, HubHandle, Reload, Shutdown};

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
    /// Per-proxy policies: default mode, retries, service-time limit.
    pub policies: Policies,
    /// How long a worker holding a delivery past its service-time limit is kept, with no new
    /// work, before it is dropped.
    pub overdue_grace: Duration,
    /// How long a new connection may take to send its HELLO before it is dropped.
    pub greeting_timeout: Duration,
    /// Most connections at once (callers, workers, monitors and unknown peers together); a
    /// connection over it is refused with DCO_E_BUSY. 0: no limit but the descriptors.
    pub max_connections: usize,
    /// Take TCP connections from addresses other than loopback when no secret is set (with a
    /// secret, every address may connect and must present it).
    pub allow_remote: bool,
    /// When not empty, only TCP peers in these address blocks are taken (whatever the secret).
    pub allow_from: Vec<allow::Cidr>,
    /// Bytes of answer the journal keeps in reserve per accepted request (the journal's
    /// `owed_record` should be [`answer_record`] of it).
    pub answer_reserve: u32,
}

/// What a damaged journal record looks like (kind, session and request ids), for recovery's
/// reports.
pub fn describe_record(kind: u8, first: &[u8]) -> String {
    core::records::describe(kind, first)
}

/// The largest record the journal writes from its reserve for an answer reserve of `answer`
/// bytes: a REPLY with that much body.
pub fn answer_record(answer: u32) -> usize {
    (core::records::reserve_for(answer.max(256)) - core::records::DONE_BYTES) as usize
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
            answer_reserve: 4096,
            reply_ttl: Duration::from_secs(3600),
            proxy_ids: Vec::new(),
            policies: Policies::default(),
            overdue_grace: Duration::from_secs(5),
            greeting_timeout: Duration::from_secs(10),
            max_connections: 0,
            allow_remote: false,
            allow_from: Vec::new(),
        }
    }
}
