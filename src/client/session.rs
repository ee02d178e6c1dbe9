//! [`Session`]: the six calls of the caller's API, in Rust.

use std::collections::VecDeque;

use ahash::AHashMap as HashMap;
use std::time::{Duration, Instant};

use crate::status::{Error, Result, Status};
use crate::wire::{self, Conn, Frame, HubAddr, Role, Welcome};

/// How many requests a caller may have sent and not yet read before the hub's WELCOME says
/// otherwise.
pub const DEFAULT_QUOTA: u32 = 65_536;

/// How a session finds and greets its hubs.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Ordered failover list; the session tries them in turn.
    pub hubs: Vec<HubAddr>,
    /// Limit for connecting and greeting one hub.
    pub connect_timeout: Duration,
    /// Name shown in the hub's statistics.
    pub name: String,
    /// Shared secret sent in HELLO, if the hub wants one.
    pub secret: Vec<u8>,
    /// How long a flush waits for the hub's acknowledgement, reconnecting meanwhile.
    pub flush_timeout: Duration,
}

impl SessionConfig {
    /// The configuration from the environment: `DCO_HUB` (default 127.0.0.1:7790),
    /// `DCO_SECRET`, `DCO_CONNECT_TIMEOUT_MS` (default 2000), `DCO_FLUSH_TIMEOUT_MS` (default
    /// 10000).
    pub fn from_env() -> Result<SessionConfig> {
        let hubs = wire::hubs_from_env().map_err(|e| Error::new(Status::Invalid, e))?;
        let connect_timeout = std::env::var("DCO_CONNECT_TIMEOUT_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_millis)
            .unwrap_or(Duration::from_secs(2));
        let flush_timeout = std::env::var("DCO_FLUSH_TIMEOUT_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_millis)
            .unwrap_or(Duration::from_secs(10));
        Ok(SessionConfig {
            hubs,
            flush_timeout,
            connect_timeout,
            name: default_name(),
            secret: std::env::var("DCO_SECRET")
                .map(|s| s.into_bytes())
                .unwrap_or_default(),
        })
    }

    /// A configuration for the given hubs with the other settings from the environment.
    pub fn with_hubs(hubs: Vec<HubAddr>) -> SessionConfig {
        let mut c = SessionConfig::from_env().unwrap_or(SessionConfig {
            hubs: Vec::new(),
            connect_timeout: Duration::from_secs(2),
            name: default_name(),
            secret: Vec::new(),
            flush_timeout: Duration::from_secs(10),
        });
        c.hubs = hubs;
        c
    }
}

fn default_name() -> String {
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "caller".into());
    format!("{exe}[{}]", std::process::id())
}

/// A reply read whole: the worker's body and return code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The reply body.
    pub body: Vec<u8>,
    /// The worker's return code (0 on success).
    pub rcode: i32,
}

/// Flags of [`Session::call_with`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct CallFlags(pub u32);

impl CallFlags {
    /// The proxy's default mode (sync unless the hub says otherwise).
    pub const NONE: CallFlags = CallFlags(0);
    /// Queue-on-timeout: past the timeout the call returns `Queued`, the request goes on and
    /// its answer is parked for [`Session::read`] with [`Session::last_request_id`].
    pub const QUEUE_ON_TIMEOUT: CallFlags = CallFlags(crate::wire::REQ_QUEUE_ON_TIMEOUT);
}

/// How the answer of a request waiting in the session is parked.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Park {
    /// Sync: a call that times out gives the request up.
    No,
    /// Queue-on-timeout: a call that times out returns `Queued` and keeps it.
    OnTimeout,
    /// Async: a call returns `Queued` once the hub has the request.
    Now,
}

enum Pending {
    /// Sent (or buffered); no outcome yet.
    Waiting(Park),
    /// The outcome arrived and waits to be read.
    Done {
        status: i32,
        rcode: i32,
        body: Vec<u8>,
    },
}

/// A request kept until the hub acknowledges it: where its REQUEST frame is in the log.
struct LogEntry {
    id: u64,
    /// Absolute offsets of the frame in the log (see `Session::log_base`).
    start: usize,
    end: usize,
    /// Its answer arrived: the hub has it, no need to send it again.
    answered: bool,
}

/// First wait between reconnects within one call; doubled up to [`RECONNECT_CAP`].
const RECONNECT_FIRST: Duration = Duration::from_millis(20);

/// Longest wait between reconnects within one call.
const RECONNECT_CAP: Duration = Duration::from_secs(1);

/// Send the DONE list when it grows this long.
const DONE_BATCH: usize = 256;

/// One caller session. Not thread-safe: each thread has its own (the C ABI keeps one per thread).
///
/// Every request stays in the session's log until the hub acknowledges it (the hub acknowledges
/// once the request is journaled as durably as its policy says); after a reconnect, to the
/// same hub or the next of the list, the unacknowledged ones are sent again. The hub knows the
/// session by its id and each request by its id, so a resend never runs a request twice, and
/// each reply is handed to the application once.
pub struct Session {
    cfg: SessionConfig,
    conn: Option<Conn>,
    welcome: Option<Welcome>,
    /// The hub that acknowledged this session's requests so far.
    hub_id: Option<u64>,
    session_id: u64,
    hub_index: usize,
    next_id: u64,
    body: Vec<u8>,
    /// Encoded REQUEST frames not yet acknowledged, from absolute offset `log_base`.
    log: Vec<u8>,
    log_base: usize,
    entries: VecDeque<LogEntry>,
    /// Highest id written to the current connection (later ones are buffered).
    written_id: u64,
    /// Highest id the hub acknowledged.
    acked: u64,
    pending: HashMap<u64, Pending>,
    /// Replies consumed, to tell the hub (DONE) so it can forget them.
    done_ids: Vec<u64>,
    /// Requests cancelled and not yet told to a hub (sent after the log on every connection
    /// until written).
    cancel_ids: Vec<u64>,
}

impl Session {
    /// A session that will connect on first use.
    pub fn new(cfg: SessionConfig) -> Session {
        Session {
            cfg,
            conn: None,
            welcome: None,
            hub_id: None,
            session_id: crate::sys::random_u64(),
            hub_index: 0,
            next_id: 1,
            body: Vec::new(),
            log: Vec::new(),
            log_base: 0,
            entries: VecDeque::new(),
            written_id: 0,
            acked: 0,
            pending: HashMap::new(),
            done_ids: Vec::new(),
            cancel_ids: Vec::new(),
        }
    }

    /// Appends raw bytes to the body being built.
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        let limit = self.body_limit();
        if self.body.len().saturating_add(data.len()) > limit {
            return Err(Error::new(
                Status::TooLarge,
                format!("body would exceed the limit of {limit} bytes"),
            ));
        }
        self.body.extend_from_slice(data);
        Ok(())
    }

    /// Appends a line of text and a newline to the body being built.
    pub fn line(&mut self, text: &str) -> Result<()> {
        self.line_bytes(text.as_bytes())
    }

    /// Appends bytes and a newline to the body being built.
    pub fn line_bytes(&mut self, text: &[u8]) -> Result<()> {
        let limit = self.body_limit();
        if self.body.len().saturating_add(text.len() + 1) > limit {
            return Err(Error::new(
                Status::TooLarge,
                format!("body would exceed the limit of {limit} bytes"),
            ));
        }
        self.body.extend_from_slice(text);
        self.body.push(b'\n');
        Ok(())
    }

    /// The id of the last request sent, 0 if none.
    pub fn last_request_id(&self) -> u64 {
        self.next_id - 1
    }

    /// The body built so far.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Drops the body being built.
    pub fn clear_body(&mut self) {
        self.body.clear();
    }

    /// Largest body the hub accepts (its frame limit less the request fields).
    pub fn body_limit(&self) -> usize {
        let max_frame = self
            .welcome
            .map(|w| w.max_frame)
            .unwrap_or(wire::DEFAULT_MAX_FRAME);
        (max_frame as usize).saturating_sub(20)
    }

    fn quota(&self) -> usize {
        self.welcome.map(|w| w.quota).unwrap_or(DEFAULT_QUOTA) as usize
    }

    /// Requests sent (or buffered) whose reply has not been read.
    pub fn outstanding(&self) -> usize {
        self.pending.len()
    }

    /// Requests kept for a resend: sent or buffered, not yet acknowledged by the hub.
    pub fn unacknowledged(&self) -> usize {
        self.entries.len()
    }

    /// Whether the session holds a live connection.
    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    /// The hub this session is connected to, if any.
    pub fn hub(&self) -> Option<&HubAddr> {
        self.conn.as_ref().map(|_| &self.cfg.hubs[self.hub_index])
    }

    /// This session's id (how the hub knows it across reconnects).
    pub fn session_id(&self) -> u64 {
        self.session_id
    }

    /// A session that resumes session `id` (from [`Session::session_id`] of another process),
    /// to read answers the hub holds for it: announce each with [`Session::expect`]. Whoever
    /// knows a session id can read its answers; keep it as private as the answers.
    pub fn resume(cfg: SessionConfig, id: u64) -> Result<Session> {
        if id == 0 {
            return Err(Error::new(Status::Invalid, "a session id must not be 0"));
        }
        let mut s = Session::new(cfg);
        s.session_id = id;
        Ok(s)
    }

    /// Announces that this session waits for the answer to `id`, a request sent by an earlier
    /// holder of the session (see [`Session::resume`]), so that [`Session::read`] takes it.
    /// New requests of this session get ids above it.
    pub fn expect(&mut self, id: u64) -> Result<()> {
        if id == 0 || id == u64::MAX {
            return Err(Error::new(Status::Invalid, "request id out of range"));
        }
        self.pending.entry(id).or_insert(Pending::Waiting(Park::No));
        self.next_id = self.next_id.max(id + 1);
        self.written_id = self.written_id.max(id);
        self.acked = self.acked.max(id);
        Ok(())
    }

    /// Finishes the body and sends it to `proxy`. With `buffered`, the request only joins the
    /// session's batch until [`Session::flush`]; with `oneway`, no reply is kept. Returns the
    /// request id. If no hub can be reached the request is not taken (`NotConnected`) and the
    /// body is kept, so the call can be retried. Once taken, a request is kept until the hub
    /// acknowledges it, and sent again after a reconnect if need be.
    pub fn send(&mut self, proxy: i32, buffered: bool, oneway: bool) -> Result<u64> {
        let flags = if oneway {
            wire::REQ_ONEWAY
        } else {
            wire::REQ_ASYNC
        };
        self.send_flags(To::Proxy(proxy), buffered, flags, 0)
    }

    /// Like [`Session::send`], to the proxy the hub routes `service` to (its `[[route]]`
    /// tables). The hub resolves the name when it accepts the request; an unknown service is
    /// answered with `NoRoute`.
    pub fn send_to(&mut self, service: &str, buffered: bool, oneway: bool) -> Result<u64> {
        let flags = if oneway {
            wire::REQ_ONEWAY
        } else {
            wire::REQ_ASYNC
        };
        self.send_flags(To::Service(service), buffered, flags, 0)
    }

    /// Sends the body to `proxy` now as a sync request with a deadline `timeout` from now,
    /// without waiting: the hub never delivers it after the deadline (the answer is then
    /// DCO_E_TIMEOUT, "expired in the queue"). Read the answer with [`Session::read`].
    pub fn send_sync(&mut self, proxy: i32, timeout: Duration) -> Result<u64> {
        let ms = timeout.as_millis().clamp(1, u32::MAX as u128) as u32;
        self.send_flags(To::Proxy(proxy), false, wire::REQ_SYNC, ms)
    }

    /// Like [`Session::send`] with the REQUEST's flags and timeout given.
    fn send_flags(
        &mut self,
        to: To<'_>,
        buffered: bool,
        flags: u32,
        timeout_ms: u32,
    ) -> Result<u64> {
        let oneway = flags & wire::REQ_ONEWAY != 0;
        to.check()?;
        if let To::Service(name) = to {
            // The name rides in the frame's payload, before the body.
            if self.body.len() + 1 + name.len() > self.body_limit() {
                return Err(Error::new(
                    Status::TooLarge,
                    format!(
                        "a body of {} bytes and the service name do not fit in the hub's frame \
                         limit of {} bytes",
                        self.body.len(),
                        self.body_limit() + 20
                    ),
                ));
            }
        }
        if !oneway && self.pending.len() >= self.quota() {
            return Err(Error::new(
                Status::Busy,
                format!(
                    "{} requests outstanding, the quota is {}: read some replies first",
                    self.pending.len(),
                    self.quota()
                ),
            ));
        }
        if !buffered {
            self.connect()?;
        }
        let id = self.next_id;
        self.next_id += 1;
        let start = self.log_base + self.log.len();
        match to {
            To::Proxy(proxy) => {
                wire::encode_request(&mut self.log, id, proxy, flags, timeout_ms, &self.body)
            }
            To::Service(name) => {
                wire::encode_service_request(&mut self.log, id, name, flags, timeout_ms, &self.body)
            }
        }
        self.entries.push_back(LogEntry {
            id,
            start,
            end: self.log_base + self.log.len(),
            answered: false,
        });
        self.body.clear();
        if !oneway {
            let park = if flags & wire::REQ_QUEUE_ON_TIMEOUT != 0 {
                Park::OnTimeout
            } else if flags & wire::REQ_ASYNC != 0 {
                Park::Now
            } else {
                Park::No
            };
            self.pending.insert(id, Pending::Waiting(park));
        }
        if !buffered {
            // Kept in the log whatever happens: a failed write is retried on reconnect.
            let _ = self.write_log();
        }
        Ok(id)
    }

    /// Writes every buffered request in one write, without waiting for the hub's acceptance
    /// (for pipelines that keep many requests in flight; [`Session::flush`] also waits).
    pub fn submit(&mut self) -> Result<()> {
        self.write_log()
    }

    /// Sends every buffered request in one write and waits until the hub has accepted them
    /// (journaled as durably as its policy says).
    pub fn flush(&mut self) -> Result<()> {
        let target = self.next_id - 1;
        let deadline = Instant::now() + self.cfg.flush_timeout;
        let mut asked = false;
        while self.acked < target {
            if !asked {
                if self.conn.is_none() {
                    self.reconnect_until(Some(deadline))?;
                }
                if let Err(e) = self.write_log() {
                    if Instant::now() >= deadline {
                        return Err(e);
                    }
                    continue;
                }
                // A PING after the batch makes the hub send its ACK as soon as it can.
                if let Some(conn) = self.conn.as_mut() {
                    wire::encode_ping(&mut conn.out, target);
                    if conn.flush().is_err() {
                        self.drop_connection();
                        continue;
                    }
                }
                asked = true;
            }
            match self.pump(Some(deadline)) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(Error::new(
                        Status::Timeout,
                        "the hub did not acknowledge the batch in time (it is kept and will \
                         be sent again)",
                    ))
                }
                Err(e) => {
                    if e.status != Status::NotConnected {
                        return Err(e);
                    }
                    self.reconnect_until(Some(deadline))?;
                    asked = false;
                }
            }
        }
        Ok(())
    }

    /// Waits up to `timeout` (None: without limit; zero: only look) for the reply of `id` and
    /// returns it whole, releasing it. A failure outcome is returned as the error.
    pub fn read(&mut self, id: u64, timeout: Option<Duration>) -> Result<Reply> {
        self.await_reply(id, timeout.map(|t| Instant::now() + t), false)?;
        match self.pending.remove(&id) {
            Some(Pending::Done { body, rcode, .. }) => {
                self.consumed(id);
                Ok(Reply { body, rcode })
            }
            _ => Err(Error::new(Status::Panic, "reply vanished")),
        }
    }

    /// Like [`Session::read`] but copies into `buf`, snprintf-style: returns the reply's full
    /// length; when that is larger than `buf`, `buf.len()` bytes are copied and the reply stays
    /// in the session so a later read with a big enough buffer gets it whole.
    pub fn read_into(
        &mut self,
        id: u64,
        timeout: Option<Duration>,
        buf: &mut [u8],
    ) -> Result<(usize, i32)> {
        self.await_reply(id, timeout.map(|t| Instant::now() + t), false)?;
        let (len, rcode) = match self.pending.get(&id) {
            Some(Pending::Done { body, rcode, .. }) => {
                let n = body.len().min(buf.len());
                buf[..n].copy_from_slice(&body[..n]);
                (body.len(), *rcode)
            }
            _ => return Err(Error::new(Status::Panic, "reply vanished")),
        };
        if len <= buf.len() {
            self.pending.remove(&id);
            self.consumed(id);
        }
        Ok((len, rcode))
    }

    /// Copies the part of an arrived reply that starts at `offset` into `buf` and returns the
    /// reply's total length and the bytes copied. The reply is released once a chunk reaches
    /// its end. For callers whose buffers are smaller than a reply (extproc RAW is at most
    /// 32767 bytes): read the first part with [`Session::read_into`], the rest with this.
    /// `UnknownId` if the reply has not arrived (read it first) or is not outstanding.
    pub fn read_chunk(&mut self, id: u64, offset: usize, buf: &mut [u8]) -> Result<(usize, usize)> {
        let (total, n) = match self.pending.get(&id) {
            Some(Pending::Done {
                status: 0, body, ..
            }) => {
                let from = offset.min(body.len());
                let n = (body.len() - from).min(buf.len());
                buf[..n].copy_from_slice(&body[from..from + n]);
                (body.len(), n)
            }
            _ => {
                return Err(Error::new(
                    Status::UnknownId,
                    format!("no reply of request {id} is held: read it before its chunks"),
                ))
            }
        };
        if offset + n >= total {
            self.pending.remove(&id);
            self.consumed(id);
        }
        Ok((total, n))
    }

    /// Sends the body to `proxy` now and waits up to `timeout` for its reply, in the proxy's
    /// default mode (sync unless the hub says otherwise). On timeout a sync request is given
    /// up: the hub never delivers it after its deadline, and drops a late answer.
    pub fn call(&mut self, proxy: i32, timeout: Option<Duration>) -> Result<Reply> {
        self.call_with(proxy, CallFlags::NONE, timeout)
    }

    /// Like [`Session::call`] with flags: [`CallFlags::QUEUE_ON_TIMEOUT`] makes a timeout
    /// return `Queued` (the request goes on; read its answer later with
    /// [`Session::last_request_id`]) whatever the proxy's default.
    ///
    /// Rides through hub restarts: while no hub answers, it reconnects with backoff until the
    /// timeout, and fails with `NotConnected` only if no hub could be reached by then.
    pub fn call_with(
        &mut self,
        proxy: i32,
        flags: CallFlags,
        timeout: Option<Duration>,
    ) -> Result<Reply> {
        // One deadline for the whole call: connecting counts against it too.
        self.call_to(To::Proxy(proxy), flags, timeout)
    }

    /// Like [`Session::call_with`], to the proxy the hub routes `service` to (see
    /// [`Session::send_to`]).
    pub fn call_service(
        &mut self,
        service: &str,
        flags: CallFlags,
        timeout: Option<Duration>,
    ) -> Result<Reply> {
        self.call_to(To::Service(service), flags, timeout)
    }

    fn call_to(
        &mut self,
        to: To<'_>,
        flags: CallFlags,
        timeout: Option<Duration>,
    ) -> Result<Reply> {
        // One deadline for the whole call: connecting counts against it too.
        let deadline = timeout.map(|t| Instant::now() + t);
        let id = self.start_call(to, flags, deadline)?;
        match self.await_reply(id, deadline, true) {
            Ok(()) => self.read(id, Some(Duration::ZERO)),
            Err(e) => Err(self.call_failed(id, e)),
        }
    }

    /// Like [`Session::call_with`] but copies the reply into `buf`, snprintf-style (see
    /// [`Session::read_into`]). Returns the request id with the length, so a reply larger than
    /// `buf` can be read whole later with [`Session::read_into`].
    pub fn call_into_with(
        &mut self,
        proxy: i32,
        flags: CallFlags,
        timeout: Option<Duration>,
        buf: &mut [u8],
    ) -> Result<(u64, usize, i32)> {
        self.call_into_to(To::Proxy(proxy), flags, timeout, buf)
    }

    /// Like [`Session::call_into_with`], to the proxy the hub routes `service` to (see
    /// [`Session::send_to`]).
    pub fn call_service_into(
        &mut self,
        service: &str,
        flags: CallFlags,
        timeout: Option<Duration>,
        buf: &mut [u8],
    ) -> Result<(u64, usize, i32)> {
        self.call_into_to(To::Service(service), flags, timeout, buf)
    }

    fn call_into_to(
        &mut self,
        to: To<'_>,
        flags: CallFlags,
        timeout: Option<Duration>,
        buf: &mut [u8],
    ) -> Result<(u64, usize, i32)> {
        // One deadline for the whole call: connecting counts against it too.
        let deadline = timeout.map(|t| Instant::now() + t);
        let id = self.start_call(to, flags, deadline)?;
        match self.await_reply(id, deadline, true) {
            Ok(()) => {
                let (n, rc) = self.read_into(id, Some(Duration::ZERO), buf)?;
                Ok((id, n, rc))
            }
            Err(e) => Err(self.call_failed(id, e)),
        }
    }

    /// [`Session::call_into_with`] in the proxy's default mode.
    pub fn call_into(
        &mut self,
        proxy: i32,
        timeout: Option<Duration>,
        buf: &mut [u8],
    ) -> Result<(u64, usize, i32)> {
        self.call_into_with(proxy, CallFlags::NONE, timeout, buf)
    }

    /// Connects (riding through a hub restart until `deadline`) and sends the body.
    fn start_call(
        &mut self,
        to: To<'_>,
        flags: CallFlags,
        deadline: Option<Instant>,
    ) -> Result<u64> {
        if flags.0 & !wire::REQ_QUEUE_ON_TIMEOUT != 0 {
            return Err(Error::new(
                Status::Invalid,
                format!("unknown call flags {:#x}", flags.0),
            ));
        }
        to.check()?;
        if self.conn.is_none() {
            self.reconnect_until(deadline)?;
        }
        // The hub keeps what is left of the deadline (at least 1 ms: 0 means none).
        let timeout_ms = match deadline {
            None => 0,
            Some(d) => d
                .saturating_duration_since(Instant::now())
                .as_millis()
                .clamp(1, u32::MAX as u128) as u32,
        };
        self.send_flags(to, false, flags.0, timeout_ms)
    }

    /// What a call returns when its wait failed: a queue-on-timeout request that timed out is
    /// `Queued` (and stays); a sync one is given up (the hub is told).
    fn call_failed(&mut self, id: u64, e: Error) -> Error {
        let park = match self.pending.get(&id) {
            Some(Pending::Waiting(p)) => *p,
            _ => return e,
        };
        match (e.status, park) {
            (Status::Timeout | Status::NotConnected, Park::OnTimeout) | (_, Park::Now)
                if e.status != Status::Refused =>
            {
                Error::new(
                    Status::Queued,
                    format!(
                        "request {id} goes on without the caller ({}); read its answer later \
                         with its id",
                        e.message
                    ),
                )
            }
            // Sync: the call is over, and so is the request (the hub also expires it at its
            // deadline).
            (Status::Timeout | Status::NotConnected, Park::No) => {
                self.give_up(id);
                e
            }
            _ => e,
        }
    }

    /// Forgets request `id` and tells the hub to cancel it.
    fn give_up(&mut self, id: u64) {
        self.pending.remove(&id);
        self.cancel_ids.push(id);
        self.send_cancels();
    }

    /// Writes the pending cancels if connected (they go again on the next connection if not).
    /// A cancel of a request still buffered waits for its request: it follows it in the write
    /// that sends it (a CANCEL before its REQUEST would find nothing to cancel).
    fn send_cancels(&mut self) {
        if self.cancel_ids.is_empty() {
            return;
        }
        let upto = self.written_id;
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        encode_cancels(&mut conn.out, &self.cancel_ids, upto);
        if conn.flush().is_ok() {
            self.cancel_ids.retain(|id| *id > upto);
        } else {
            self.drop_connection();
        }
    }

    /// Cancels request `id`. Not yet delivered, the hub removes it for good (journaled: a
    /// restart does not revive it); held by a worker, the worker is told and its answer will
    /// be dropped. Reading `id` afterwards gives `Cancelled`. An answer that had arrived is
    /// dropped. `UnknownId` if it is not outstanding.
    pub fn cancel(&mut self, id: u64) -> Result<()> {
        match self.pending.get(&id) {
            None => {
                return Err(Error::new(
                    Status::UnknownId,
                    format!("request {id} is not outstanding in this session"),
                ))
            }
            Some(Pending::Done {
                status: s, body, ..
            }) if *s == Status::Cancelled.code() && body.as_slice() == CANCELLED => {
                return Err(Error::new(
                    Status::UnknownId,
                    format!("request {id} is already cancelled"),
                ))
            }
            Some(Pending::Done { .. }) => self.done_ids.push(id),
            Some(Pending::Waiting(_)) => self.cancel_ids.push(id),
        }
        self.pending.insert(
            id,
            Pending::Done {
                status: Status::Cancelled.code(),
                rcode: 0,
                body: CANCELLED.to_vec(),
            },
        );
        self.send_cancels();
        Ok(())
    }

    /// Drops the connection but keeps the session: outstanding requests stay, the hub keeps
    /// their answers, and the next call reconnects and gets them (a program going idle can
    /// let its connection go this way).
    pub fn disconnect(&mut self) {
        if let Some(conn) = self.conn.as_mut() {
            if !self.done_ids.is_empty() {
                wire::encode_done(&mut conn.out, &self.done_ids);
                self.done_ids.clear();
            }
            let _ = conn.flush();
        }
        self.drop_connection();
    }

    /// Ends the session: tells the hub which replies were read, closes the connection, and
    /// drops every outstanding and buffered request. The next call starts a new session.
    pub fn close(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            if !self.done_ids.is_empty() {
                wire::encode_done(&mut conn.out, &self.done_ids);
            }
            let _ = conn.flush();
        }
        let cfg = self.cfg.clone();
        *self = Session::new(cfg);
    }

    /// A reply was handed to the application: the hub may forget it.
    fn consumed(&mut self, id: u64) {
        self.done_ids.push(id);
        if self.done_ids.len() >= DONE_BATCH {
            if let Some(conn) = self.conn.as_mut() {
                wire::encode_done(&mut conn.out, &self.done_ids);
                self.done_ids.clear();
                if conn.flush().is_err() {
                    self.drop_connection();
                }
            }
        }
    }

    /// Waits until the answer of `id` is here or `deadline` passes. A lost connection is made
    /// again (with backoff, to the same hub or the next) until the deadline: the call fails
    /// with `NotConnected` only if no hub could be reached by then. With `async_returns`, a
    /// request the hub parks at once (async mode) ends the wait with `Queued` once acknowledged.
    fn await_reply(
        &mut self,
        id: u64,
        deadline: Option<Instant>,
        async_returns: bool,
    ) -> Result<()> {
        loop {
            match self.pending.get(&id) {
                None => {
                    return Err(Error::new(
                        Status::UnknownId,
                        format!(
                            "request {id} is not outstanding in this session \
                             (never sent, one-way, already read or given up)"
                        ),
                    ))
                }
                Some(Pending::Done {
                    status,
                    rcode,
                    body,
                }) => {
                    if *status == 0 {
                        return Ok(());
                    }
                    let err = Error {
                        status: Status::from_code(*status),
                        rcode: *rcode,
                        message: String::from_utf8_lossy(body).into_owned(),
                    };
                    self.pending.remove(&id);
                    self.consumed(id);
                    return Err(err);
                }
                Some(Pending::Waiting(Park::Now)) if async_returns && self.acked >= id => {
                    return Err(Error::new(
                        Status::Queued,
                        format!("request {id} is accepted in async mode; read its answer later"),
                    ));
                }
                Some(Pending::Waiting(_)) => {}
            }
            if id > self.written_id || self.conn.is_none() {
                // Reading a buffered request sends it; a lost connection is made again.
                if self.conn.is_none() {
                    self.reconnect_until(deadline)?;
                }
                if self.write_log().is_err() {
                    continue;
                }
            } else if let Some(conn) = self.conn.as_mut() {
                if !conn.out.is_empty() && conn.flush().is_err() {
                    self.drop_connection();
                    continue;
                }
            }
            match self.pump(deadline) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(Error::new(
                        Status::Timeout,
                        format!("no reply to request {id} within the timeout"),
                    ))
                }
                Err(e) if e.status == Status::NotConnected => {
                    // Back to the loop: it reconnects and sends again what is unacknowledged.
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Connects, trying the hubs of the list in turn with backoff between rounds, until one
    /// answers or `deadline` passes (None: without limit; a passed deadline tries once).
    fn reconnect_until(&mut self, deadline: Option<Instant>) -> Result<()> {
        let mut wait = RECONNECT_FIRST;
        loop {
            let err = match self.connect_by(deadline) {
                Ok(()) => return Ok(()),
                Err(e) if e.status != Status::NotConnected => return Err(e),
                Err(e) => e,
            };
            let now = Instant::now();
            let pause = match deadline {
                Some(d) if now >= d => return Err(err),
                Some(d) => wait.min(d - now),
                None => wait,
            };
            std::thread::sleep(pause);
            wait = (wait * 2).min(RECONNECT_CAP);
        }
    }

    /// Writes the log's unwritten requests (and the DONE list), connecting first if needed.
    fn write_log(&mut self) -> Result<()> {
        self.connect()?;
        let Some(conn) = self.conn.as_mut() else {
            return Err(not_connected());
        };
        if !self.done_ids.is_empty() {
            wire::encode_done(&mut conn.out, &self.done_ids);
            self.done_ids.clear();
        }
        // Entries are in id order: the unwritten ones are a tail.
        let i = self.entries.partition_point(|e| e.id <= self.written_id);
        if i < self.entries.len() {
            let from = self.entries[i].start - self.log_base;
            conn.out.extend_from_slice(&self.log[from..]);
        }
        let upto = self
            .entries
            .back()
            .map_or(self.written_id, |last| self.written_id.max(last.id));
        encode_cancels(&mut conn.out, &self.cancel_ids, upto);
        if let Err(e) = conn.flush() {
            self.drop_connection();
            return Err(Error::new(
                Status::NotConnected,
                format!("sending to the hub failed: {e}"),
            ));
        }
        self.written_id = upto;
        self.cancel_ids.retain(|id| *id > upto);
        Ok(())
    }

    /// Reads and handles frames until `deadline`. Returns `Ok(false)` if the deadline passed
    /// with nothing read, `Ok(true)` after handling at least one read's worth of frames, and an
    /// error when the connection is lost (requests are kept for a resend).
    fn pump(&mut self, deadline: Option<Instant>) -> Result<bool> {
        let keepalive = self
            .welcome
            .map(|w| Duration::from_millis(w.keepalive_ms as u64 * 3))
            .unwrap_or(Duration::from_secs(30));
        let Some(conn) = self.conn.as_mut() else {
            return Err(not_connected());
        };
        // A live hub sends something (at least a PING) every keep-alive interval.
        let dead_at = conn.last_rx + keepalive;
        let wait_until = match deadline {
            Some(d) if d < dead_at => d,
            _ => dead_at,
        };
        // Frames read while a write waited (see Conn::flush) are handled before waiting.
        let got = if conn.has_frame() {
            Ok(true)
        } else {
            conn.fill(Some(wait_until))
        };
        match got {
            Err(e) => return Err(self.lose(Status::NotConnected, &e.to_string(), false)),
            Ok(false) => {
                if Instant::now() >= dead_at {
                    return Err(self.lose(
                        Status::NotConnected,
                        "the hub stopped answering (keep-alive expired)",
                        false,
                    ));
                }
                return Ok(false);
            }
            Ok(true) => {}
        }
        let mut end: Option<(Status, String, bool)> = None;
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return Err(not_connected());
            };
            let n = match conn.next_frame() {
                Err(e) => {
                    end = Some((
                        Status::Protocol,
                        format!("bad frame from the hub: {e}"),
                        false,
                    ));
                    break;
                }
                Ok(None) => break,
                Ok(Some((frame, n))) => {
                    match frame {
                        Frame::Reply {
                            id,
                            status,
                            rcode,
                            body,
                        } => match self.pending.get_mut(&id) {
                            Some(p @ Pending::Waiting(_)) => {
                                *p = Pending::Done {
                                    status,
                                    rcode,
                                    body: body.to_vec(),
                                };
                                if let Ok(i) = self.entries.binary_search_by_key(&id, |e| e.id) {
                                    self.entries[i].answered = true;
                                }
                            }
                            Some(Pending::Done { .. }) => {}
                            // Read already, given up, or one-way: let the hub forget it.
                            None => self.done_ids.push(id),
                        },
                        Frame::Ack { upto } => {
                            if upto > self.acked {
                                self.acked = upto;
                            }
                        }
                        Frame::Queued { id, mode } => {
                            if let Some(Pending::Waiting(p)) = self.pending.get_mut(&id) {
                                *p = match mode {
                                    2 => Park::Now,
                                    _ => Park::OnTimeout,
                                };
                            }
                        }
                        Frame::Ping { nonce } => wire::encode_pong(&mut conn.out, nonce),
                        Frame::Pong { .. } => {}
                        Frame::Refuse { code, message } => {
                            end = Some((
                                Status::from_code(code),
                                String::from_utf8_lossy(message).into_owned(),
                                false,
                            ));
                        }
                        Frame::Quit { message } => {
                            end = Some((
                                Status::NotConnected,
                                format!("hub quit: {}", String::from_utf8_lossy(message)),
                                true,
                            ));
                        }
                        other => {
                            end = Some((
                                Status::Protocol,
                                format!("unexpected frame from the hub: {other:?}"),
                                false,
                            ));
                        }
                    }
                    n
                }
            };
            if let Some(conn) = self.conn.as_mut() {
                conn.consume(n);
            }
            if end.is_some() {
                break;
            }
        }
        self.trim_log();
        // Answer PINGs and pass on the DONE list now and then, in one write.
        if let Some(conn) = self.conn.as_mut() {
            if self.done_ids.len() >= DONE_BATCH {
                wire::encode_done(&mut conn.out, &self.done_ids);
                self.done_ids.clear();
            }
            if !conn.out.is_empty() && conn.flush().is_err() && end.is_none() {
                end = Some((
                    Status::NotConnected,
                    "sending to the hub failed".into(),
                    false,
                ));
            }
        }
        match end {
            None => Ok(true),
            Some((status, msg, quit)) => Err(self.lose(status, &msg, quit)),
        }
    }

    /// Drops acknowledged requests from the head of the log.
    fn trim_log(&mut self) {
        while self.entries.front().is_some_and(|e| e.id <= self.acked) {
            self.entries.pop_front();
        }
        let keep_from = self
            .entries
            .front()
            .map(|e| e.start)
            .unwrap_or(self.log_base + self.log.len());
        let dead = keep_from - self.log_base;
        if dead > 0 && (dead == self.log.len() || dead >= 64 * 1024) {
            self.log.drain(..dead);
            self.log_base = keep_from;
        }
    }

    /// The connection is gone; everything stays for a resend. After a QUIT the next connect
    /// starts with the next hub of the list.
    fn lose(&mut self, status: Status, why: &str, quit: bool) -> Error {
        self.drop_connection();
        if quit {
            self.hub_index = (self.hub_index + 1) % self.cfg.hubs.len().max(1);
        }
        Error::new(status, why.to_string())
    }

    fn drop_connection(&mut self) {
        // Everything written and not acknowledged goes again on the next connection.
        self.conn = None;
    }

    /// Connects to the first hub of the list that answers, starting with the last one used,
    /// and sends again every request it has not acknowledged.
    pub fn connect(&mut self) -> Result<()> {
        self.connect_by(None)
    }

    /// [`Session::connect`], each attempt limited to the time left before `deadline`.
    fn connect_by(&mut self, deadline: Option<Instant>) -> Result<()> {
        if self.conn.is_some() {
            return Ok(());
        }
        if self.cfg.hubs.is_empty() {
            return Err(Error::new(Status::Invalid, "no hub address configured"));
        }
        let mut errors = Vec::new();
        let mut refused = None;
        let n = self.cfg.hubs.len();
        for k in 0..n {
            let i = (self.hub_index + k) % n;
            let addr = self.cfg.hubs[i].clone();
            match self.greet(&addr, deadline) {
                Ok((conn, welcome)) => {
                    self.conn = Some(conn);
                    self.welcome = Some(welcome);
                    self.hub_index = i;
                    self.adopt_hub(welcome.hub_id);
                    if self.resend().is_ok() {
                        return Ok(());
                    }
                    errors.push(format!("{addr}: connection lost while resending"));
                }
                Err(e) => {
                    if e.status == Status::Refused {
                        refused = Some(e.clone());
                    }
                    errors.push(format!("{addr}: {}", e.message));
                }
            }
        }
        if let Some(mut e) = refused {
            e.message = errors.join("; ");
            return Err(e);
        }
        Err(Error::new(
            Status::NotConnected,
            format!("no hub reachable ({})", errors.join("; ")),
        ))
    }

    /// Connected to hub `id`. If another hub acknowledged requests still waiting for their
    /// answer, those answers are with that hub, not this one: they fail with `System`.
    fn adopt_hub(&mut self, id: u64) {
        if self.hub_id.is_some_and(|old| old != id) {
            let acked = self.acked;
            for (rid, p) in self.pending.iter_mut() {
                if *rid <= acked && matches!(p, Pending::Waiting(_)) {
                    *p = Pending::Done {
                        status: Status::System.code(),
                        rcode: 0,
                        body: b"accepted by a hub that is no longer reachable; its answer \
                                waits there"
                            .to_vec(),
                    };
                }
            }
        }
        self.hub_id = Some(id);
    }

    /// Writes again every request written before and not acknowledged nor answered.
    fn resend(&mut self) -> Result<()> {
        let Some(conn) = self.conn.as_mut() else {
            return Err(not_connected());
        };
        for e in &self.entries {
            if e.id > self.written_id {
                break;
            }
            if !e.answered {
                conn.out
                    .extend_from_slice(&self.log[e.start - self.log_base..e.end - self.log_base]);
            }
        }
        if !self.done_ids.is_empty() {
            wire::encode_done(&mut conn.out, &self.done_ids);
            self.done_ids.clear();
        }
        // Cancels go after the requests they name. The hub may not have had those of requests
        // cancelled and not yet read before the connection was lost: they go again (a CANCEL
        // the hub already had does nothing).
        let upto = self.written_id;
        encode_cancels(&mut conn.out, &self.cancel_ids, upto);
        for (id, p) in &self.pending {
            if matches!(p, Pending::Done { status, body, .. }
                if *status == Status::Cancelled.code() && body.as_slice() == CANCELLED)
                && !self.cancel_ids.contains(id)
            {
                wire::encode_cancel(&mut conn.out, *id);
            }
        }
        if conn.flush().is_err() {
            self.drop_connection();
            return Err(not_connected());
        }
        self.cancel_ids.retain(|id| *id > upto);
        Ok(())
    }

    fn greet(&self, addr: &HubAddr, deadline: Option<Instant>) -> Result<(Conn, Welcome)> {
        let mut t = self.cfg.connect_timeout;
        if let Some(d) = deadline {
            t = t.min(
                d.saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(10)),
            );
        }
        let mut conn =
            Conn::connect(addr, t).map_err(|e| Error::new(Status::NotConnected, e.to_string()))?;
        wire::encode_hello(
            &mut conn.out,
            Role::Caller,
            self.session_id,
            0,
            self.cfg.name.as_bytes(),
            &self.cfg.secret,
            &[],
        );
        conn.flush()
            .map_err(|e| Error::new(Status::NotConnected, e.to_string()))?;
        let answer = conn
            .with_next_frame(Some(Instant::now() + t), |f| match f {
                Frame::Welcome(w) => Ok(w),
                Frame::Refuse { code, message } => Err(Error::new(
                    Status::from_code(code),
                    format!("refused: {}", String::from_utf8_lossy(message)),
                )),
                other => Err(Error::new(
                    Status::Protocol,
                    format!("expected WELCOME, got {other:?}"),
                )),
            })
            .map_err(|e| Error::new(Status::NotConnected, e.to_string()))?;
        match answer {
            None => Err(Error::new(Status::NotConnected, "no WELCOME in time")),
            Some(Err(e)) => Err(e),
            Some(Ok(w)) => {
                conn.max_frame = w.max_frame.saturating_add(64);
                Ok((conn, w))
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Tell the hub which replies were read, so it need not keep them.
        if let Some(conn) = self.conn.as_mut() {
            if !self.done_ids.is_empty() {
                wire::encode_done(&mut conn.out, &self.done_ids);
                let _ = conn.flush();
            }
        }
    }
}

/// Appends a CANCEL for each of `ids` up to `upto` (requests already written).
fn encode_cancels(out: &mut Vec<u8>, ids: &[u64], upto: u64) {
    for id in ids.iter().filter(|id| **id <= upto) {
        wire::encode_cancel(out, *id);
    }
}

/// The words of a cancelled request's outcome.
const CANCELLED: &[u8] = b"cancelled by the caller";

fn not_connected() -> Error {
    Error::new(Status::NotConnected, "not connected to a hub")
}

/// Where a request goes: a proxy id, or a service the hub routes.
#[derive(Clone, Copy, Debug)]
enum To<'a> {
    Proxy(i32),
    Service(&'a str),
}

impl To<'_> {
    fn check(&self) -> Result<()> {
        match self {
            To::Proxy(p) if *p < 0 => {
                Err(Error::new(Status::Invalid, "proxy id must not be negative"))
            }
            To::Service(s) if !wire::valid_service(s) => Err(Error::new(
                Status::Invalid,
                format!(
                    "\"{s}\" cannot be a service name (1 to {} printable ASCII characters, no \
                     spaces)",
                    wire::MAX_SERVICE
                ),
            )),
            _ => Ok(()),
        }
    }
}
