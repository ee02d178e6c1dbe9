//! [`Session`]: the six calls of the caller's API, in Rust.

use std::collections::HashMap;
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
}

impl SessionConfig {
    /// The configuration from the environment: `DCO_HUB` (default 127.0.0.1:7790),
    /// `DCO_SECRET`, `DCO_CONNECT_TIMEOUT_MS` (default 2000).
    pub fn from_env() -> Result<SessionConfig> {
        let hubs = wire::hubs_from_env().map_err(|e| Error::new(Status::Invalid, e))?;
        let connect_timeout = std::env::var("DCO_CONNECT_TIMEOUT_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_millis)
            .unwrap_or(Duration::from_secs(2));
        Ok(SessionConfig {
            hubs,
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

enum Pending {
    /// Sent (or buffered); no outcome yet.
    Waiting,
    /// The outcome arrived and waits to be read.
    Done {
        status: i32,
        rcode: i32,
        body: Vec<u8>,
    },
}

/// One caller session. Not thread-safe: each thread has its own (the C ABI keeps one per thread).
pub struct Session {
    cfg: SessionConfig,
    conn: Option<Conn>,
    welcome: Option<Welcome>,
    session_id: u64,
    hub_index: usize,
    next_id: u64,
    body: Vec<u8>,
    /// Frames of buffered requests, not yet written.
    buffered: Vec<u8>,
    /// Highest id written to the connection.
    sent_upto: u64,
    /// Highest id the hub acknowledged.
    acked: u64,
    pending: HashMap<u64, Pending>,
}

impl Session {
    /// A session that will connect on first use.
    pub fn new(cfg: SessionConfig) -> Session {
        Session {
            cfg,
            conn: None,
            welcome: None,
            session_id: crate::sys::random_u64(),
            hub_index: 0,
            next_id: 1,
            body: Vec::new(),
            buffered: Vec::new(),
            sent_upto: 0,
            acked: 0,
            pending: HashMap::new(),
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

    /// Whether the session holds a live connection.
    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    /// The hub this session is connected to, if any.
    pub fn hub(&self) -> Option<&HubAddr> {
        self.conn.as_ref().map(|_| &self.cfg.hubs[self.hub_index])
    }

    /// Finishes the body and sends it to `proxy`. With `buffered`, the request only joins the
    /// session's batch until [`Session::flush`]; with `oneway`, no reply is kept. Returns the
    /// request id. On error the body is kept, so the call can be retried.
    pub fn send(&mut self, proxy: i32, buffered: bool, oneway: bool) -> Result<u64> {
        if proxy < 0 {
            return Err(Error::new(Status::Invalid, "proxy id must not be negative"));
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
        let flags = if oneway { wire::REQ_ONEWAY } else { 0 };
        wire::encode_request(&mut self.buffered, id, proxy, flags, 0, &self.body);
        self.body.clear();
        if !oneway {
            self.pending.insert(id, Pending::Waiting);
        }
        if !buffered {
            self.write_buffered()?;
        }
        Ok(id)
    }

    /// Writes every buffered request in one write, without waiting for the hub's acceptance
    /// (for pipelines that keep many requests in flight; [`Session::flush`] also waits).
    pub fn submit(&mut self) -> Result<()> {
        self.write_buffered()
    }

    /// Sends every buffered request in one write and waits until the hub has accepted them.
    pub fn flush(&mut self) -> Result<()> {
        let target = self.next_id - 1;
        if self.acked >= target {
            return Ok(());
        }
        // A PING after the batch makes the hub send its ACK at once (see docs/PROTOCOL.md).
        wire::encode_ping(&mut self.buffered, target);
        self.write_buffered()?;
        while self.acked < target {
            let deadline = Instant::now() + self.cfg.connect_timeout.max(Duration::from_secs(5));
            if !self.pump(Some(deadline))? {
                return Err(self.lose_connection(
                    Status::NotConnected,
                    "the hub did not acknowledge the batch in time",
                ));
            }
        }
        Ok(())
    }

    /// Waits up to `timeout` (None: without limit; zero: only look) for the reply of `id` and
    /// returns it whole, releasing it. A failure outcome is returned as the error.
    pub fn read(&mut self, id: u64, timeout: Option<Duration>) -> Result<Reply> {
        self.await_reply(id, timeout)?;
        match self.pending.remove(&id) {
            Some(Pending::Done { body, rcode, .. }) => Ok(Reply { body, rcode }),
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
        self.await_reply(id, timeout)?;
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
        }
        Ok((len, rcode))
    }

    /// Sends the body to `proxy` now and waits up to `timeout` for its reply. On timeout the
    /// request is forgotten: its reply, if it comes, is dropped.
    pub fn call(&mut self, proxy: i32, timeout: Option<Duration>) -> Result<Reply> {
        let id = self.send(proxy, false, false)?;
        match self.read(id, timeout) {
            Err(e) if e.status == Status::Timeout => {
                let _ = self.cancel(id);
                Err(e)
            }
            other => other,
        }
    }

    /// Like [`Session::call`] but copies the reply into `buf`, snprintf-style (see
    /// [`Session::read_into`]). Returns the request id with the length, so a reply larger than
    /// `buf` can be read whole later with [`Session::read_into`].
    pub fn call_into(
        &mut self,
        proxy: i32,
        timeout: Option<Duration>,
        buf: &mut [u8],
    ) -> Result<(u64, usize, i32)> {
        let id = self.send(proxy, false, false)?;
        match self.read_into(id, timeout, buf) {
            Ok((n, rc)) => Ok((id, n, rc)),
            Err(e) => {
                if e.status == Status::Timeout {
                    let _ = self.cancel(id);
                }
                Err(e)
            }
        }
    }

    /// Drops interest in request `id`: its reply, parked or still to come, is discarded and the
    /// hub is told so. `UnknownId` if it is not outstanding.
    pub fn cancel(&mut self, id: u64) -> Result<()> {
        if self.pending.remove(&id).is_none() {
            return Err(Error::new(
                Status::UnknownId,
                format!("request {id} is not outstanding in this session"),
            ));
        }
        if let Some(conn) = self.conn.as_mut() {
            wire::encode_cancel(&mut conn.out, id);
        }
        Ok(())
    }

    /// Closes the connection. Outstanding requests fail with `NotConnected`; buffered ones are
    /// dropped. The session connects again on next use.
    pub fn close(&mut self) {
        if self.conn.is_some() {
            let _ = self.lose_connection(Status::NotConnected, "session closed");
        }
    }

    fn await_reply(&mut self, id: u64, timeout: Option<Duration>) -> Result<()> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            match self.pending.get(&id) {
                None => {
                    return Err(Error::new(
                        Status::UnknownId,
                        format!(
                            "request {id} is not outstanding in this session \
                             (never sent, one-way, already read or forgotten)"
                        ),
                    ))
                }
                Some(Pending::Done { status, rcode, body }) => {
                    if *status == 0 {
                        return Ok(());
                    }
                    let err = Error {
                        status: Status::from_code(*status),
                        rcode: *rcode,
                        message: String::from_utf8_lossy(body).into_owned(),
                    };
                    self.pending.remove(&id);
                    return Err(err);
                }
                Some(Pending::Waiting) => {}
            }
            if id > self.sent_upto {
                self.write_buffered()?;
            } else if let Some(conn) = self.conn.as_mut() {
                if !conn.out.is_empty() {
                    let r = conn.flush();
                    if let Err(e) = r {
                        return Err(self.lose_connection(Status::NotConnected, &e.to_string()));
                    }
                }
            }
            if !self.pump(deadline)? {
                return Err(Error::new(
                    Status::Timeout,
                    format!("no reply to request {id} within the timeout"),
                ));
            }
        }
    }

    /// Writes the buffered frames, connecting first if needed.
    fn write_buffered(&mut self) -> Result<()> {
        if self.buffered.is_empty() {
            return Ok(());
        }
        self.connect()?;
        let last = self.next_id - 1;
        let conn = self.conn.as_mut().ok_or_else(not_connected)?;
        if conn.out.is_empty() {
            std::mem::swap(&mut conn.out, &mut self.buffered);
        } else {
            conn.out.extend_from_slice(&self.buffered);
            self.buffered.clear();
        }
        if let Err(e) = conn.flush() {
            return Err(self.lose_connection(
                Status::NotConnected,
                &format!("sending to the hub failed: {e}"),
            ));
        }
        self.sent_upto = last;
        Ok(())
    }

    /// Reads and handles frames until `deadline`. Returns `Ok(false)` if the deadline passed
    /// with nothing read, `Ok(true)` after handling at least one read's worth of frames.
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
            Some(d) if d < dead_at => Some(d),
            _ => Some(dead_at),
        };
        match conn.fill(wait_until) {
            Err(e) => return Err(self.lose_connection(Status::NotConnected, &e.to_string())),
            Ok(false) => {
                if Instant::now() >= dead_at {
                    return Err(self.lose_connection(
                        Status::NotConnected,
                        "the hub stopped answering (keep-alive expired)",
                    ));
                }
                return Ok(false);
            }
            Ok(true) => {}
        }
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return Err(not_connected());
            };
            let (n, quit) = match conn.next_frame() {
                Err(e) => {
                    let msg = format!("bad frame from the hub: {e}");
                    return Err(self.lose_connection(Status::Protocol, &msg));
                }
                Ok(None) => break,
                Ok(Some((frame, n))) => {
                    let mut quit = None;
                    match frame {
                        Frame::Reply {
                            id,
                            status,
                            rcode,
                            body,
                        } => {
                            if let Some(p) = self.pending.get_mut(&id) {
                                if matches!(p, Pending::Waiting) {
                                    *p = Pending::Done {
                                        status,
                                        rcode,
                                        body: body.to_vec(),
                                    };
                                }
                            }
                        }
                        Frame::Ack { upto } => {
                            if upto > self.acked {
                                self.acked = upto;
                            }
                        }
                        Frame::Ping { nonce } => {
                            let mut pong = Vec::with_capacity(16);
                            wire::encode_pong(&mut pong, nonce);
                            quit = Some(Err(pong));
                        }
                        Frame::Pong { .. } => {}
                        Frame::Refuse { code, message } => {
                            quit = Some(Ok((
                                Status::from_code(code),
                                String::from_utf8_lossy(message).into_owned(),
                            )));
                        }
                        Frame::Quit { message } => {
                            quit = Some(Ok((
                                Status::NotConnected,
                                format!("hub quit: {}", String::from_utf8_lossy(message)),
                            )));
                        }
                        other => {
                            quit = Some(Ok((
                                Status::Protocol,
                                format!("unexpected frame from the hub: {other:?}"),
                            )));
                        }
                    }
                    (n, quit)
                }
            };
            let conn = self.conn.as_mut().ok_or_else(not_connected)?;
            conn.consume(n);
            match quit {
                None => {}
                Some(Err(pong)) => conn.out.extend_from_slice(&pong),
                Some(Ok((status, msg))) => return Err(self.lose_connection(status, &msg)),
            }
        }
        Ok(true)
    }

    /// Drops the connection; every request waiting for a reply gets `status` as its outcome.
    fn lose_connection(&mut self, status: Status, why: &str) -> Error {
        self.conn = None;
        self.buffered.clear();
        for p in self.pending.values_mut() {
            if matches!(p, Pending::Waiting) {
                *p = Pending::Done {
                    status: Status::System.code(),
                    rcode: 0,
                    body: format!("connection to the hub lost: {why}").into_bytes(),
                };
            }
        }
        Error::new(status, why.to_string())
    }

    /// Connects to the first hub of the list that answers, starting with the last one used.
    pub fn connect(&mut self) -> Result<()> {
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
            match self.greet(&addr) {
                Ok((conn, welcome)) => {
                    self.conn = Some(conn);
                    self.welcome = Some(welcome);
                    self.hub_index = i;
                    self.acked = self.sent_upto;
                    return Ok(());
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

    fn greet(&self, addr: &HubAddr) -> Result<(Conn, Welcome)> {
        let t = self.cfg.connect_timeout;
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
                    if code == Status::Refused.code() {
                        Status::Refused
                    } else {
                        Status::from_code(code)
                    },
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

fn not_connected() -> Error {
    Error::new(Status::NotConnected, "not connected to a hub")
}
