//! The worker loop: connect, greet, serve deliveries in batches, reconnect on failure.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::status::{Error, Result, Status};
use crate::wire::{self, Conn, Frame, HubAddr, Role, HEADER_LEN};

/// One request handed to a worker.
#[derive(Clone, Copy, Debug)]
pub struct Delivery<'a> {
    /// The caller's session id.
    pub session: u64,
    /// The caller's request id; with `session` it names the request across redeliveries.
    pub request: u64,
    /// The proxy id the request was sent to.
    pub proxy: i32,
    /// Delivery attempt, 1 for the first: above 1 the request may have run before.
    pub attempt: u32,
    /// When the hub stops waiting for the answer (the request's deadline or the proxy's
    /// service-time limit, whichever comes first); None: no limit. An answer after it is
    /// dropped, so a handler should give up (or answer [`Outcome::RetryLater`]) before.
    pub deadline: Option<Instant>,
    /// The request body.
    pub body: &'a [u8],
}

impl Delivery<'_> {
    /// The time left before [`Delivery::deadline`] (zero once passed); None: no limit.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }
}

/// What a handler says of a request it ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done; the reply buffer holds the reply.
    Success,
    /// Application failure with this return code (Tuxedo's TPFAIL + tpurcode); the reply buffer
    /// may say why. Not retried.
    Failure(i32),
    /// Could not run it now for a passing reason (the far side is down, busy, timed out): the
    /// hub tries it again later, per the proxy's retry policy; the reply buffer may say why.
    /// After the last attempt the caller gets DCO_E_SYSTEM with those words.
    RetryLater,
    /// Finish the request by handing it to this proxy (Tuxedo's tpforward); the reply buffer
    /// holds the new body. The final answer goes straight to the original caller.
    Forward(i32),
}

/// The reply being built for one delivery. It writes straight into the connection's output
/// buffer, so a reply is never copied on its way out.
pub struct ReplyBuf<'a> {
    buf: &'a mut Vec<u8>,
    start: usize,
    /// An outcome set on the buffer (the C API's dco_reply_retry and dco_reply_forward),
    /// which overrides the handler's return.
    pub(crate) verdict: Option<Outcome>,
}

impl ReplyBuf<'_> {
    /// Appends bytes to the reply.
    pub fn write(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops what was written.
    pub fn clear(&mut self) {
        self.buf.truncate(self.start);
    }
}

/// Serves deliveries.
pub trait Handler {
    /// Runs one request and writes its reply into `reply`.
    fn handle(&mut self, d: &Delivery<'_>, reply: &mut ReplyBuf<'_>) -> Outcome;

    /// The hub cancelled a delivery before it ran (its caller cancelled it, or its time ran
    /// out): it is not run. The default does nothing.
    fn cancelled(&mut self, d: &Delivery<'_>) {
        let _ = d;
    }
}

impl<F> Handler for F
where
    F: FnMut(&Delivery<'_>, &mut ReplyBuf<'_>) -> Outcome,
{
    fn handle(&mut self, d: &Delivery<'_>, reply: &mut ReplyBuf<'_>) -> Outcome {
        self(d, reply)
    }
}

/// How a worker finds its hubs and what it serves.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Hubs to serve. The worker serves the first that answers and moves on when it fails.
    pub hubs: Vec<HubAddr>,
    /// Proxy ids served.
    pub proxies: Vec<i32>,
    /// Name in the hub's statistics.
    pub name: String,
    /// Shared secret, if the hub wants one.
    pub secret: Vec<u8>,
    /// Most deliveries the hub may hand this worker before it answers them.
    pub capacity: u32,
    /// Limit for connecting and greeting one hub.
    pub connect_timeout: Duration,
}

impl WorkerConfig {
    /// A configuration for `proxies` on `hubs`, with the secret from `DCO_SECRET`.
    pub fn new(hubs: Vec<HubAddr>, proxies: Vec<i32>) -> WorkerConfig {
        WorkerConfig {
            hubs,
            proxies,
            name: format!("worker[{}]", std::process::id()),
            secret: std::env::var("DCO_SECRET")
                .map(|s| s.into_bytes())
                .unwrap_or_default(),
            capacity: 1024,
            connect_timeout: Duration::from_secs(2),
        }
    }
}

/// How often the loop looks at the stop flag while idle.
const STOP_POLL: Duration = Duration::from_millis(100);

/// Between deliveries of one batch, the loop looks for CANCELs that arrived meanwhile once a
/// handler has run this long (shorter handlers cost no system call).
const CANCEL_LOOK: Duration = Duration::from_millis(5);

/// Serves deliveries with `handler` until `stop` is set, reconnecting (to the same hub or the
/// next of the list) with backoff whenever the connection fails. Returns an error only when
/// the configuration is unusable or a hub refuses the worker.
pub fn run(cfg: &WorkerConfig, handler: &mut dyn Handler, stop: &AtomicBool) -> Result<()> {
    if cfg.hubs.is_empty() {
        return Err(Error::new(Status::Invalid, "no hub address configured"));
    }
    if cfg.proxies.is_empty() {
        return Err(Error::new(
            Status::Invalid,
            "a worker must serve at least one proxy",
        ));
    }
    let mut backoff = Duration::from_millis(50);
    let mut index = 0;
    let session = crate::sys::random_u64();
    while !stop.load(Ordering::Relaxed) {
        let addr = &cfg.hubs[index % cfg.hubs.len()];
        match greet(cfg, addr, session) {
            Ok((mut conn, keepalive)) => {
                tracing::info!(hub = %addr, "worker connected");
                backoff = Duration::from_millis(50);
                let since = Instant::now();
                match serve(&mut conn, keepalive, handler, stop) {
                    Ok(()) => return Ok(()),
                    Err(e) if fatal(&e) => return Err(e),
                    Err(e) => tracing::warn!(hub = %addr, "worker connection lost: {e}"),
                }
                // A hub that drops us at once (a protocol quarrel) is not hammered.
                if since.elapsed() < Duration::from_secs(1) {
                    let until = Instant::now() + Duration::from_millis(200);
                    while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
            }
            Err(e) if fatal(&e) => return Err(e),
            Err(e) => {
                tracing::debug!(hub = %addr, "worker cannot connect: {e}");
                index += 1;
                let until = Instant::now() + backoff;
                while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(10));
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
    Ok(())
}

/// Outcomes a reconnect cannot mend: the hub refuses this worker or its configuration.
fn fatal(e: &Error) -> bool {
    matches!(e.status, Status::Refused | Status::Invalid)
}

fn greet(cfg: &WorkerConfig, addr: &HubAddr, session: u64) -> Result<(Conn, Duration)> {
    let ioerr = |e: std::io::Error| Error::new(Status::NotConnected, e.to_string());
    let mut conn = Conn::connect(addr, cfg.connect_timeout).map_err(ioerr)?;
    wire::encode_hello(
        &mut conn.out,
        Role::Worker,
        session,
        cfg.capacity,
        cfg.name.as_bytes(),
        &cfg.secret,
        &cfg.proxies,
    );
    conn.flush().map_err(ioerr)?;
    let answer = conn
        .with_next_frame(Some(Instant::now() + cfg.connect_timeout), |f| match f {
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
            // Deliveries read ahead while a write waits stay bounded (the hub's memory for a
            // caller that does not read depends on what is in flight at its workers).
            conn.read_ahead_limit = Some(8 * 1024 * 1024);
            Ok((conn, Duration::from_millis(w.keepalive_ms.max(100) as u64)))
        }
    }
}

/// Serves one connection. `Ok(())` means `stop` was set.
fn serve(
    conn: &mut Conn,
    keepalive: Duration,
    handler: &mut dyn Handler,
    stop: &AtomicBool,
) -> Result<()> {
    let lost = |msg: String| Error::new(Status::NotConnected, msg);
    // The hub's limit is the connection's limit less the slack added at greeting, less the
    // RESULT fields.
    let max_body = (conn.max_frame.saturating_sub(64) as usize).saturating_sub(16);
    let mut cancelled: Vec<u64> = Vec::new();
    loop {
        // Deliveries the hub cancelled before they ran are skipped: look ahead for CANCELs.
        cancelled.clear();
        cancels_in(conn.pending_input(), &mut cancelled);
        let mut looked = Instant::now();
        // Handle every whole frame already read, building all replies into one write.
        loop {
            // After a handler that took a while, take in what the hub sent meanwhile (without
            // waiting): a CANCEL for a delivery still to come skips it.
            if looked.elapsed() >= CANCEL_LOOK {
                looked = Instant::now();
                if conn.fill(Some(looked)).map_err(|e| lost(e.to_string()))? {
                    cancelled.clear();
                    cancels_in(conn.pending_input(), &mut cancelled);
                }
            }
            let mut out = std::mem::take(&mut conn.out);
            let step = match conn.next_frame() {
                Err(e) => Err(Error::new(
                    Status::Protocol,
                    format!("bad frame from the hub: {e}"),
                )),
                Ok(None) => Ok(None),
                Ok(Some((frame, n))) => {
                    let r = handle_frame(frame, &mut out, handler, max_body, &cancelled);
                    r.map(|()| Some(n))
                }
            };
            conn.out = out;
            match step? {
                None => break,
                Some(n) => conn.consume(n),
            }
        }
        conn.flush().map_err(|e| lost(e.to_string()))?;
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        // The write may have read frames meanwhile (see Conn::flush): handle them first.
        if conn.has_frame() {
            continue;
        }
        let dead_at = conn.last_rx + keepalive * 3;
        let now = Instant::now();
        if now >= dead_at {
            return Err(lost(
                "the hub stopped answering (keep-alive expired)".into(),
            ));
        }
        conn.fill(Some((now + STOP_POLL).min(dead_at)))
            .map_err(|e| lost(e.to_string()))?;
    }
}

/// The tags of the CANCEL frames among the whole frames of `input`.
fn cancels_in(mut input: &[u8], tags: &mut Vec<u64>) {
    while input.len() >= HEADER_LEN {
        let len = u32::from_be_bytes([input[0], input[1], input[2], input[3]]) as usize;
        let Some(end) = HEADER_LEN.checked_add(len).filter(|e| *e <= input.len()) else {
            return;
        };
        if input[4] == wire::FrameType::Cancel as u8 && len == 8 {
            let mut b = [0u8; 8];
            b.copy_from_slice(&input[HEADER_LEN..end]);
            tags.push(u64::from_be_bytes(b));
        }
        input = &input[end..];
    }
}

fn handle_frame(
    frame: Frame<'_>,
    out: &mut Vec<u8>,
    handler: &mut dyn Handler,
    max_body: usize,
    cancelled: &[u64],
) -> Result<()> {
    match frame {
        Frame::Deliver {
            tag,
            session,
            request,
            proxy,
            attempt,
            remaining_ms,
            body,
        } => {
            let d = Delivery {
                session,
                request,
                proxy,
                attempt,
                deadline: (remaining_ms > 0)
                    .then(|| Instant::now() + Duration::from_millis(remaining_ms as u64)),
                body,
            };
            if cancelled.contains(&tag) {
                handler.cancelled(&d);
                wire::encode_result(out, tag, Status::Cancelled.code(), 0, b"cancelled");
                return Ok(());
            }
            // Reserve the RESULT header and fixed fields, let the handler write the body in
            // place, then fill in the length and the outcome.
            let at = out.len();
            wire::encode_result(out, tag, 0, 0, &[]);
            let start = out.len();
            let outcome = {
                let mut reply = ReplyBuf {
                    buf: out,
                    start,
                    verdict: None,
                };
                let o = handler.handle(&d, &mut reply);
                reply.verdict.unwrap_or(o)
            };
            let (outcome, too_large) = if out.len() - start > max_body {
                out.truncate(start);
                let msg = format!("the reply is over the hub's limit of {max_body} bytes");
                out.extend_from_slice(msg.as_bytes());
                (outcome, true)
            } else {
                (outcome, false)
            };
            let payload = (out.len() - at - HEADER_LEN) as u32;
            out[at..at + 4].copy_from_slice(&payload.to_be_bytes());
            // RESULT and FORWARD have the same fixed layout: tag, then two 32-bit fields
            // (status and rcode; proxy and flags).
            let (status, rcode) = match outcome {
                _ if too_large => (Status::TooLarge.code(), 0),
                Outcome::Success => (0, 0),
                Outcome::Failure(rc) => (Status::AppFail.code(), rc),
                Outcome::RetryLater => (wire::RESULT_RETRY, 0),
                Outcome::Forward(p) => {
                    out[at + 4] = wire::FrameType::Forward as u8;
                    (p, 0)
                }
            };
            out[at + 16..at + 20].copy_from_slice(&status.to_be_bytes());
            out[at + 20..at + 24].copy_from_slice(&rcode.to_be_bytes());
            Ok(())
        }
        // A cancel of a delivery already answered (or skipped above): nothing to do.
        Frame::Cancel { .. } => Ok(()),
        Frame::Ping { nonce } => {
            wire::encode_pong(out, nonce);
            Ok(())
        }
        Frame::Pong { .. } => Ok(()),
        Frame::Refuse { code, message } => Err(Error::new(
            Status::from_code(code),
            format!(
                "hub closed the worker: {}",
                String::from_utf8_lossy(message)
            ),
        )),
        Frame::Quit { message } => Err(Error::new(
            Status::NotConnected,
            format!("hub quit: {}", String::from_utf8_lossy(message)),
        )),
        other => Err(Error::new(
            Status::Protocol,
            format!("unexpected frame for a worker: {other:?}"),
        )),
    }
}
