//! What the core knows of one connection: its role, its session or proxies, and the frames
//! waiting to be written (its outbox). The socket itself belongs to the I/O shell.

use std::collections::VecDeque;

use super::{ConnId, Micros, SessionId, Tag};
use crate::journal::Pos;

/// Index of a connection in the core's table (the shell's poll token). Reused once the
/// connection is gone; [`ConnId`] is not.
pub type Token = usize;

/// A caller connection's state (the session's own state lives in `sessions`).
pub struct CallerConn {
    /// Session id from HELLO.
    pub session: SessionId,
    /// Requests accepted on this connection and not yet acknowledged: (journal position,
    /// request id), oldest first. Released once the store is durable past the position.
    pub unacked: VecDeque<(Pos, u64)>,
    /// Highest request id released for acknowledgement.
    pub ack_upto: u64,
    /// Highest request id acknowledged on the wire.
    pub ack_sent: u64,
    /// The caller asked (with a PING) to be acknowledged as soon as possible.
    pub ack_wanted: bool,
    /// Highest request id received on this connection: ids must rise on a connection (a
    /// resend after a reconnect starts a new connection).
    pub last_id: u64,
}

/// A worker connection's state.
pub struct WorkerConn {
    /// Proxy ids it serves.
    pub proxies: Vec<i32>,
    /// Most deliveries it takes at once.
    pub capacity: u32,
    /// Deliveries handed out and not yet answered (abandoned ones included).
    pub inflight: u32,
    /// Deliveries it kept past the service-time limit and has not answered: while any, it
    /// gets no new work, and it is dropped after the grace period.
    pub overdue: u32,
    /// Holds a suspect delivery (see the core's `Req::suspect`): no other work meanwhile.
    pub solo: bool,
    /// Its deliveries that have a service-time limit, oldest first: (limit's end, tag).
    /// Answered ones leave from the front as results come, the rest when the worker's one
    /// Service timer comes due.
    pub watch: VecDeque<(Micros, Tag)>,
    /// When the earliest Service timer set for this worker comes due (None: none set).
    pub watch_due: Option<Micros>,
    /// Deliveries made.
    pub delivered: u64,
    /// Results received.
    pub results: u64,
    /// Results that were failures.
    pub failures: u64,
}

/// What a connection turned out to be.
pub enum Role {
    /// HELLO not received yet.
    Greeting,
    /// See [`CallerConn`].
    Caller(CallerConn),
    /// See [`WorkerConn`].
    Worker(WorkerConn),
    /// Reads statistics.
    Monitor,
}

/// One connection.
pub struct Conn {
    /// Unique for the hub's life.
    pub id: ConnId,
    /// Where it came from, for logs and statistics.
    pub addr: String,
    /// Name from HELLO.
    pub name: String,
    /// Protocol version agreed in WELCOME.
    pub version: u16,
    /// The role.
    pub role: Role,
    /// Encoded frames not yet written; `out_pos` bytes of it are already written.
    pub out: Vec<u8>,
    /// See `out`.
    pub out_pos: usize,
    /// Whether it is already in the core's list of connections to write.
    pub dirty: bool,
    /// Close once `out` is written (after a REFUSE or QUIT); nothing more is read.
    pub closing: bool,
    /// When bytes last arrived.
    pub last_rx: Micros,
    /// When a frame was last queued for it.
    pub last_tx: Micros,
    /// When it connected.
    pub since: Micros,
}

impl Conn {
    /// A new connection in the greeting state.
    pub fn new(id: ConnId, addr: String, now: Micros) -> Conn {
        Conn {
            id,
            addr,
            name: String::new(),
            version: 0,
            role: Role::Greeting,
            out: Vec::new(),
            out_pos: 0,
            dirty: false,
            closing: false,
            last_rx: now,
            last_tx: now,
            since: now,
        }
    }

    /// Bytes queued and not yet written.
    pub fn pending_out(&self) -> usize {
        self.out.len() - self.out_pos
    }

    /// Short description for logs.
    pub fn describe(&self) -> String {
        let kind = match self.role {
            Role::Greeting => "peer",
            Role::Caller(_) => "caller",
            Role::Worker(_) => "worker",
            Role::Monitor => "monitor",
        };
        if self.name.is_empty() {
            format!("{kind} {}", self.addr)
        } else {
            format!("{kind} {} ({})", self.name, self.addr)
        }
    }
}
