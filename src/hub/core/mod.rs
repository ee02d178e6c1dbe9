//! The hub's core: a state machine with no sockets and no clock of its own.
//!
//! Events come in as method calls, each with the time (`now`, microseconds, passed in):
//! a connection opened ([`Core::open`]), bytes arrived ([`Core::received`]), a frame arrived
//! ([`Core::on_frame`]), a connection closed ([`Core::closed`]), the store became durable
//! further ([`Core::durable`]), an output drained ([`Core::drained`]), time passed
//! ([`Core::advance`]). Actions go out through the core's state, for the I/O shell to carry
//! out: frames to send sit in each connection's outbox (listed by [`Core::take_dirty`]),
//! connections to close now are listed by [`Core::take_closes`], records go to the
//! [`Store`], and [`Core::next_due`] says when the core next wants to be woken.
//!
//! Rooms: `conn` (what the core knows of a connection), `sessions` (callers across
//! connections and restarts), `router` (workers per proxy, known proxy ids), `queue` (a
//! proxy's fair queue), `flights` (delivered requests), `timers` (the deadline heap),
//! `policy` (per-proxy mode, retries, service-time limit), `records` (what is journaled),
//! `recovery` (rebuilding from the journal), `callers` (caller frames, acknowledgements,
//! answers), `dispatch` (delivery, results, retries, forwards, expiry), `snapshot`
//! (statistics).

mod callers;
mod conn;
mod dispatch;
mod flights;
pub mod policy;
mod queue;
pub(crate) mod records;
mod recovery;
mod router;
mod sessions;
mod snapshot;
#[cfg(test)]
mod tests;
mod tidy;
mod timers;

use std::time::Duration;

use ahash::AHashMap as HashMap;

pub use conn::{CallerConn, Conn, Role, Token, WorkerConn};
pub use policy::{Mode, Policies, ProxyPolicy};
pub use recovery::Recovered;
pub use router::Router;

use self::flights::Flights;
use self::sessions::SessionState;
use self::timers::{Timer, Timers};
use super::store::Store;
use crate::journal::Pos;
use crate::status::Status;
use crate::wire::{self, Frame};

/// Time in the core: microseconds, on a clock that does not go back within a run and reads
/// as microseconds since the epoch (so deadlines can be journaled as absolute times).
pub type Micros = u64;

/// A connection's id, unique for the hub's life (tokens are reused, ids are not).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// A caller session's id (chosen by the caller's library, kept across reconnects).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

/// A delivery's handle, echoed by the worker in RESULT and FORWARD.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(pub u64);

/// A frame that ends the connection: the outcome to put in REFUSE, and why.
pub type Fatal = (Status, String);

/// Stop reading a caller whose unwritten output is over this; its lanes are parked too.
pub const OUT_PAUSE: usize = 8 * 1024 * 1024;

/// Owed acknowledgements that nothing else carries go out this long after they are owed.
const ACK_DELAY: Micros = 100_000;

/// Settings of the core.
#[derive(Clone, Debug)]
pub struct CoreConfig {
    /// Largest frame payload accepted.
    pub max_frame: u32,
    /// Most requests one caller may have accepted and unanswered.
    pub quota: u32,
    /// Idle time after which the hub pings a connection.
    pub keepalive: Duration,
    /// Shared secret every peer must present (empty: none).
    pub secret: Vec<u8>,
    /// How long a session that left keeps its unread answers.
    pub reply_ttl: Duration,
    /// Per-proxy policies.
    pub policies: Policies,
    /// How long a worker that holds a delivery past its service-time limit is kept (without
    /// new work) before it is dropped.
    pub overdue_grace: Duration,
    /// How long a new connection may take to send its HELLO.
    pub greeting_timeout: Duration,
    /// This hub's id (kept across restarts when it has a journal).
    pub hub_id: u64,
    /// Bytes of answer body the journal keeps in reserve for each accepted request, so its
    /// answer can be journaled when the disk is full (larger answers are then replaced by a
    /// note that says so).
    pub answer_reserve: u32,
    /// Key of the session tags workers see in DELIVER instead of callers' session ids (a
    /// session id would let its holder resume the session); kept across restarts.
    pub delivery_key: [u64; 2],
}

/// A request accepted and not yet answered.
#[derive(Copy, Clone, Debug)]
struct Req {
    /// Its ACCEPT record (pinned while the request lives).
    pos: Pos,
    /// Absolute deadline (0: none); only sync requests have one.
    deadline_us: Micros,
    /// The proxy it is for now (a forward changes it).
    proxy: i32,
    /// Deliveries made.
    attempt: u16,
    /// Deliveries that failed for a system reason.
    failures: u16,
    /// Forwards so far.
    hops: u8,
    mode: Mode,
    state: ReqState,
    /// It was held by a worker that died holding others too: which of them killed it is not
    /// known, so it is delivered alone (to a worker holding nothing else) until answered.
    suspect: bool,
    /// Its delivery's tag while `Delivered`.
    tag: Tag,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum ReqState {
    /// In its proxy's queue.
    Queued,
    /// Waiting in the redo queue for its next attempt.
    Redo,
    /// Held by a worker (its flight says which).
    Delivered,
}

/// Hub-wide counters.
#[derive(Default)]
struct Counters {
    busy: u64,
    protocol_errors: u64,
    /// Connections refused or closed with a REFUSE, by its status name.
    refused: std::collections::BTreeMap<&'static str, u64>,
}

/// See the module documentation.
pub struct Core {
    cfg: CoreConfig,
    conns: Vec<Option<Conn>>,
    next_conn_id: u64,
    store: Box<dyn Store>,
    sessions: HashMap<SessionId, SessionState>,
    reqs: HashMap<(SessionId, u64), Req>,
    flights: Flights,
    router: Router,
    timers: Timers,
    /// Callers with acknowledgements pending.
    ack_waiters: Vec<Token>,
    /// Proxies whose next request waits for its ACCEPT to be durable.
    await_durable: Vec<i32>,
    /// An AckFlush timer is set.
    ack_flush_set: bool,
    /// Connections with output to write (each with its `dirty` flag set).
    dirty: Vec<Token>,
    /// Connections the core closed: the shell drops their sockets.
    closes: Vec<(Token, ConnId, String)>,
    counters: Counters,
    /// The hub is shutting down: connections that close now take nothing down with them.
    quitting: bool,
    /// Keys the session tags shown in statistics.
    stats_key: ahash::RandomState,
    started_us: Micros,
    /// What recovery reported lost at this start (salvage), for the statistics.
    journal_lost: Vec<String>,
    /// When [`Core::tidy`] runs next.
    next_tidy: Micros,
}

/// The least answer reserve: enough for the note that replaces an answer too large to keep.
const MIN_ANSWER_RESERVE: u32 = 256;

impl Core {
    /// A core over `store`, holding what `recovered` found in it.
    pub fn new(
        cfg: CoreConfig,
        store: Box<dyn Store>,
        router: Router,
        recovered: Recovered,
        now: Micros,
    ) -> Core {
        let mut core = Core {
            cfg,
            conns: Vec::new(),
            next_conn_id: 1,
            store,
            sessions: HashMap::new(),
            reqs: HashMap::new(),
            flights: Flights::default(),
            router,
            timers: Timers::default(),
            ack_waiters: Vec::new(),
            await_durable: Vec::new(),
            ack_flush_set: false,
            dirty: Vec::new(),
            closes: Vec::new(),
            counters: Counters::default(),
            quitting: false,
            stats_key: ahash::RandomState::new(),
            started_us: now,
            journal_lost: Vec::new(),
            next_tidy: now + tidy::EVERY,
        };
        core.restore(recovered, now);
        core
    }

    /// New per-proxy policies (a reload): requests accepted from now on get their modes, and
    /// every retry and service-time limit from now on follows them; requests already accepted
    /// keep the mode they were accepted with (it is journaled).
    pub fn set_policies(&mut self, p: Policies) {
        self.cfg.policies = p;
    }

    /// Notes what recovery reported lost (shown in the statistics).
    pub fn note_journal_lost(&mut self, lost: Vec<String>) {
        self.journal_lost = lost;
    }

    /// What a worker sees of `session`: a keyed hash (SipHash-2-4), the same for every
    /// delivery of the session's requests, which tells nothing about the id.
    fn session_tag_for_workers(&self, session: SessionId) -> u64 {
        use std::hash::Hasher;
        let [k0, k1] = self.cfg.delivery_key;
        let mut h = siphasher::sip::SipHasher24::new_with_keys(k0, k1);
        h.write_u64(session.0);
        h.finish()
    }

    /// Bytes the store keeps in reserve for each accepted request until it finishes.
    fn owed_per_request(&self) -> u32 {
        records::reserve_for(self.cfg.answer_reserve.max(MIN_ANSWER_RESERVE))
    }

    // --- events ------------------------------------------------------------------------------

    /// A connection was accepted under token `t`.
    pub fn open(&mut self, t: Token, addr: String, now: Micros) -> ConnId {
        let id = ConnId(self.next_conn_id);
        self.next_conn_id += 1;
        if self.conns.len() <= t {
            self.conns.resize_with(t + 1, || None);
        }
        self.conns[t] = Some(Conn::new(id, addr, now));
        self.timers.at(
            now + micros(self.cfg.greeting_timeout),
            Timer::Greeting(t, id),
        );
        self.timers
            .at(now + micros(self.cfg.keepalive), Timer::Keepalive(t, id));
        id
    }

    /// Bytes arrived on `t`.
    pub fn received(&mut self, t: Token, now: Micros) {
        if let Some(c) = self.conn_mut(t) {
            c.last_rx = now;
        }
    }

    /// Handles one frame from `t`. An error ends the connection: the shell stops decoding and
    /// calls [`Core::refuse`].
    pub fn on_frame(&mut self, t: Token, frame: Frame<'_>, now: Micros) -> Result<(), Fatal> {
        let Some(conn) = self.conn_mut(t) else {
            return Ok(());
        };
        if conn.closing {
            return Ok(());
        }
        match (&mut conn.role, frame) {
            (Role::Greeting, Frame::Hello(h)) => self.on_hello(t, h, now),
            (Role::Greeting, f) => Err(protocol(format!(
                "the first frame must be HELLO, got {}",
                frame_name(&f)
            ))),
            (role, Frame::Ping { nonce }) => {
                // A caller's PING asks for its ACK as soon as what it sent is durable (this
                // is how the library's flush waits for the hub).
                if let Role::Caller(c) = role {
                    c.ack_wanted = true;
                }
                wire::encode_pong(&mut conn.out, nonce);
                conn.last_tx = now;
                self.mark_dirty(t);
                self.note_ack_waiter(t);
                Ok(())
            }
            (_, Frame::Pong { .. }) => Ok(()),
            (
                Role::Caller(_),
                Frame::Request {
                    id,
                    proxy,
                    flags,
                    timeout_ms,
                    body,
                },
            ) => self.on_request(t, id, proxy, flags, timeout_ms, body, now),
            (Role::Caller(c), Frame::Cancel { id }) => {
                let session = c.session;
                self.on_cancel(session, id);
                Ok(())
            }
            (Role::Caller(c), Frame::Done { ids }) => {
                let session = c.session;
                for id in ids.chunks_exact(8) {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(id);
                    self.finish_reply(session, u64::from_be_bytes(b));
                }
                Ok(())
            }
            (
                Role::Worker(_),
                Frame::Result {
                    tag,
                    status,
                    rcode,
                    body,
                },
            ) => self.on_result(t, Tag(tag), status, rcode, body, now),
            (
                Role::Worker(_),
                Frame::Forward {
                    tag, proxy, body, ..
                },
            ) => self.on_forward(t, Tag(tag), proxy, body, now),
            (Role::Monitor, Frame::Reroute { from, to }) => {
                let doc = match self.reroute(from, to, now) {
                    Ok(n) => serde_json::json!({ "rerouted": n, "from": from, "to": to }),
                    Err(e) => serde_json::json!({ "error": e }),
                };
                if let Some(c) = self.conn_mut(t) {
                    wire::encode_stats(&mut c.out, doc.to_string().as_bytes());
                    self.mark_dirty(t);
                }
                Ok(())
            }
            (Role::Monitor, Frame::StatsRequest) => {
                let json = serde_json::to_vec(&self.snapshot(now))
                    .map_err(|e| (Status::System, e.to_string()))?;
                if let Some(c) = self.conn_mut(t) {
                    wire::encode_stats(&mut c.out, &json);
                    self.mark_dirty(t);
                }
                Ok(())
            }
            (_, f) => Err(protocol(format!(
                "{} is not a frame this peer may send",
                frame_name(&f)
            ))),
        }
    }

    /// Queues a REFUSE for `t` and closes it once written.
    pub fn refuse(&mut self, t: Token, status: Status, msg: &str) {
        let Some(c) = self.conn_mut(t) else {
            return;
        };
        if c.closing {
            return;
        }
        tracing::warn!("closing {}: {msg}", c.describe());
        wire::encode_refuse(&mut c.out, status.code(), msg);
        c.closing = true;
        if status == Status::Protocol {
            self.counters.protocol_errors += 1;
        }
        *self.counters.refused.entry(status.name()).or_insert(0) += 1;
        self.mark_dirty(t);
    }

    /// The connection under `t` is gone (the shell saw it close, or closed it).
    pub fn closed(&mut self, t: Token, why: &str, now: Micros) {
        let Some(conn) = self.conns.get_mut(t).and_then(|c| c.take()) else {
            return;
        };
        tracing::debug!("{} closed: {why}", conn.describe());
        self.settle_closed(t, conn, now);
    }

    /// Whether anything waits for what the store wrote to become durable: a caller's
    /// acknowledgement, or a request's delivery.
    pub fn awaits_durability(&self) -> bool {
        !self.await_durable.is_empty()
            || self.ack_waiters.iter().any(|&t| {
                matches!(
                    self.conns.get(t).and_then(|c| c.as_ref()),
                    Some(Conn { role: Role::Caller(c), .. }) if !c.unacked.is_empty()
                )
            })
    }

    /// The store is durable further: acknowledgements may go out.
    pub fn durable(&mut self, now: Micros) {
        self.release_acks(now);
        // Requests that waited for their ACCEPT to be synced may go out now.
        for proxy in std::mem::take(&mut self.await_durable) {
            self.dispatch(proxy, now);
        }
    }

    /// `t`'s outbox drained below half the pause limit: its session is served again.
    pub fn drained(&mut self, t: Token, now: Micros) {
        let Some(Conn {
            role: Role::Caller(c),
            ..
        }) = self.conn(t)
        else {
            return;
        };
        let session = c.session;
        self.unpark(session, now);
    }

    /// Closes up to `n` connections that have not said HELLO, oldest first (the hub ran out of
    /// descriptors). Returns how many.
    pub fn shed_greetings(&mut self, n: usize, now: Micros) -> usize {
        let mut greeting: Vec<(ConnId, Token)> = self
            .conns
            .iter()
            .enumerate()
            .filter_map(|(t, c)| c.as_ref().map(|c| (t, c)))
            .filter(|(_, c)| matches!(c.role, Role::Greeting) && !c.closing)
            .map(|(t, c)| (c.id, t))
            .collect();
        greeting.sort_unstable();
        greeting.truncate(n);
        for &(_, t) in &greeting {
            self.close(
                t,
                "dropped to make room: out of descriptors before its HELLO",
                now,
            );
        }
        greeting.len()
    }

    /// Time passed: handles every timer due by `now`.
    pub fn advance(&mut self, now: Micros) {
        if now >= self.next_tidy {
            self.next_tidy = now + tidy::EVERY;
            self.tidy();
        }
        while let Some(t) = self.timers.pop_due(now) {
            match t {
                Timer::Keepalive(t, id) => self.keepalive_due(t, id, now),
                Timer::Greeting(t, id) => {
                    if self
                        .conn(t)
                        .is_some_and(|c| c.id == id && matches!(c.role, Role::Greeting))
                    {
                        let msg = format!(
                            "no HELLO within {} ms",
                            self.cfg.greeting_timeout.as_millis()
                        );
                        self.refuse(t, Status::Protocol, &msg);
                    }
                }
                Timer::SessionTtl(s) => self.session_ttl_due(s, now),
                Timer::Deadline(s, r) => self.deadline_due(s, r, now),
                Timer::Redo(s, r) => self.redo_due(s, r, now),
                Timer::Service(t, id) => self.service_due(t, id, now),
                Timer::Overdue(t, id) => self.overdue_due(t, id, now),
                Timer::AckFlush => {
                    self.ack_flush_set = false;
                    self.flush_acks(now);
                }
            }
        }
    }

    /// Shrinks every table that is mostly empty (see `tidy.rs`): after its answers are read, a
    /// session holds no per-request memory; after a backlog drains, neither does the hub.
    fn tidy(&mut self) {
        // The allocator keeps what large tables give back unless asked to return it.
        let big = tidy::big(self.reqs.capacity());
        tidy::map(&mut self.reqs);
        let release = big && !tidy::big(self.reqs.capacity());
        tidy::map(&mut self.sessions);
        for s in self.sessions.values_mut() {
            tidy::map(&mut s.replies);
        }
        for c in self.conns.iter_mut().flatten() {
            match &mut c.role {
                Role::Caller(cc) => tidy::deque(&mut cc.unacked),
                Role::Worker(w) => tidy::deque(&mut w.watch),
                _ => {}
            }
            // An idle connection's outbox keeps no buffer.
            if c.out.is_empty() && c.out.capacity() > 64 << 10 {
                c.out = Vec::new();
                c.out_pos = 0;
            }
        }
        for p in self.router.proxies.values_mut() {
            p.queue.tidy();
            tidy::deque(&mut p.solo);
        }
        self.timers.tidy();
        tidy::vec(&mut self.ack_waiters);
        tidy::vec(&mut self.dirty);
        if release {
            crate::sys::release_free_memory();
        }
    }

    /// When the core next wants [`Core::advance`] to be called.
    pub fn next_due(&self) -> Option<Micros> {
        self.timers.next()
    }

    /// The hub is quitting: every connection gets QUIT and is closed once written. What
    /// workers hold stays as it is journaled: the next start delivers it again, and the hub's
    /// own stop is not counted against any request's attempts.
    pub fn quit(&mut self) {
        self.quitting = true;
        for t in 0..self.conns.len() {
            if let Some(c) = self.conns[t].as_mut() {
                if !c.closing {
                    wire::encode_quit(&mut c.out, "the hub is shutting down");
                    c.closing = true;
                }
                self.mark_dirty(t);
            }
        }
    }

    // --- actions -----------------------------------------------------------------------------

    /// Connections with output to write since the last call.
    pub fn take_dirty(&mut self) -> Vec<Token> {
        let d = std::mem::take(&mut self.dirty);
        for t in &d {
            if let Some(c) = self.conns.get_mut(*t).and_then(|c| c.as_mut()) {
                c.dirty = false;
            }
        }
        d
    }

    /// Connections the core closed since the last call: their sockets are to be dropped
    /// (the core has settled them already).
    pub fn take_closes(&mut self) -> Vec<(Token, ConnId, String)> {
        std::mem::take(&mut self.closes)
    }

    /// The connection under `t`.
    pub fn conn(&self, t: Token) -> Option<&Conn> {
        self.conns.get(t).and_then(|c| c.as_ref())
    }

    /// The connection under `t`, to write its outbox.
    pub fn conn_mut(&mut self, t: Token) -> Option<&mut Conn> {
        self.conns.get_mut(t).and_then(|c| c.as_mut())
    }

    /// Tokens of every connection.
    pub fn tokens(&self) -> Vec<Token> {
        (0..self.conns.len())
            .filter(|t| self.conns[*t].is_some())
            .collect()
    }

    /// The store, for the shell's commits.
    pub fn store_mut(&mut self) -> &mut dyn Store {
        self.store.as_mut()
    }

    // --- shared helpers ----------------------------------------------------------------------

    /// Notes that `t` has output to write.
    fn mark_dirty(&mut self, t: Token) {
        if let Some(c) = self.conns.get_mut(t).and_then(|c| c.as_mut()) {
            if !c.dirty {
                c.dirty = true;
                self.dirty.push(t);
            }
        }
    }

    /// Closes `t` now (the core's decision): settles it and tells the shell.
    fn close(&mut self, t: Token, why: &str, now: Micros) {
        let Some(conn) = self.conns.get_mut(t).and_then(|c| c.take()) else {
            return;
        };
        tracing::info!("closing {}: {why}", conn.describe());
        self.closes.push((t, conn.id, why.to_string()));
        self.settle_closed(t, conn, now);
    }

    fn keepalive_due(&mut self, t: Token, id: ConnId, now: Micros) {
        let ka = micros(self.cfg.keepalive);
        let Some(c) = self.conns.get_mut(t).and_then(|c| c.as_mut()) else {
            return;
        };
        if c.id != id || c.closing {
            return;
        }
        // A worker busy with requests may be silent while its handlers run (the service-time
        // limit watches those); an idle one that does not answer the hub's pings is gone.
        if let Role::Worker(w) = &c.role {
            if w.inflight == 0 && now.saturating_sub(c.last_rx) > 3 * ka {
                self.close(t, "keep-alive expired", now);
                return;
            }
        }
        // A caller or monitor that answers nothing, not even the hub's pings, for four
        // intervals holds a descriptor for no one: it is dropped. Its session stays (replies
        // are kept for their time to live) and the library reconnects when it is used again.
        if matches!(c.role, Role::Caller(_) | Role::Monitor)
            && now.saturating_sub(c.last_rx) > 4 * ka
        {
            self.close(t, "silent for four keep-alive intervals", now);
            return;
        }
        if !matches!(c.role, Role::Greeting) && now.saturating_sub(c.last_tx) >= ka {
            let nonce = now.saturating_sub(self.started_us) / 1000;
            wire::encode_ping(&mut c.out, nonce);
            c.last_tx = now;
            self.mark_dirty(t);
        }
        let next = self
            .conn(t)
            .map(|c| (c.last_tx + ka).max(now + ka / 4))
            .unwrap_or(now + ka);
        self.timers.at(next, Timer::Keepalive(t, id));
    }

    /// Drops timers whose subject is gone, once stale ones are the most: a timer is not
    /// removed when what it watches ends early (a request answered long before its
    /// deadline), so without this the heap would hold one entry per request of the last
    /// timeout's worth of traffic. Amortised O(1) per timer set.
    fn compact_timers(&mut self) {
        let live = self.reqs.len() + self.conns.len() + self.sessions.len();
        if self.timers.len() < 4096 || self.timers.len() < 4 * (live + 1) {
            return;
        }
        let (reqs, conns, sessions) = (&self.reqs, &self.conns, &self.sessions);
        let conn_is = |t: Token, id: ConnId| {
            conns
                .get(t)
                .and_then(|c| c.as_ref())
                .is_some_and(|c| c.id == id)
        };
        self.timers.retain(|t| match *t {
            Timer::Keepalive(t, id)
            | Timer::Greeting(t, id)
            | Timer::Overdue(t, id)
            | Timer::Service(t, id) => conn_is(t, id),
            Timer::SessionTtl(s) => sessions.contains_key(&s),
            Timer::Deadline(s, r) => reqs.contains_key(&(s, r)),
            Timer::Redo(s, r) => reqs.get(&(s, r)).is_some_and(|q| q.state == ReqState::Redo),
            Timer::AckFlush => true,
        });
    }

    /// A short tag for a session id in statistics, keyed by a secret of this hub run so it
    /// tells nothing about the id.
    fn session_tag(&self, id: SessionId) -> u32 {
        (self.stats_key.hash_one(id.0) >> 32) as u32
    }
}

/// A duration in the core's unit.
fn micros(d: Duration) -> Micros {
    d.as_micros().min(u64::MAX as u128) as u64
}

fn protocol(msg: impl Into<String>) -> Fatal {
    (Status::Protocol, msg.into())
}

fn frame_name(f: &Frame<'_>) -> &'static str {
    match f {
        Frame::Hello(_) => "HELLO",
        Frame::Welcome(_) => "WELCOME",
        Frame::Refuse { .. } => "REFUSE",
        Frame::Quit { .. } => "QUIT",
        Frame::Request { .. } => "REQUEST",
        Frame::Ack { .. } => "ACK",
        Frame::Reply { .. } => "REPLY",
        Frame::Cancel { .. } => "CANCEL",
        Frame::Done { .. } => "DONE",
        Frame::Queued { .. } => "QUEUED",
        Frame::Deliver { .. } => "DELIVER",
        Frame::Result { .. } => "RESULT",
        Frame::Forward { .. } => "FORWARD",
        Frame::Ping { .. } => "PING",
        Frame::Pong { .. } => "PONG",
        Frame::StatsRequest => "STATS_REQUEST",
        Frame::Stats { .. } => "STATS",
        Frame::Reroute { .. } => "REROUTE",
    }
}
