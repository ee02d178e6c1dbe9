//! The worker loop: run the init hook, connect, greet, serve deliveries in batches, reconnect
//! on failure, and on a graceful stop finish what is in flight and run the done hook.
//!
//! Two ways to serve: a [`Handler`] runs one request at a time on the loop's own thread and
//! writes its reply straight into the output buffer ([`run`]); a [`Service`] gets owned
//! requests and answers later, from any thread, many at once ([`run_service`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::handler::{Delivery, Handler, Outcome, ReplyBuf};
use super::service::{CancelSignal, Completions, Request, Responder, Response, Service, Sink, Tag};
use crate::status::{Error, Result, Status};
use crate::wire::{self, Conn, Frame, HubAddr, Role, HEADER_LEN};

/// How a worker finds its hubs and what it serves.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Hubs to serve: the worker connects to every one of them, serves them all at once and
    /// reconnects to each on its own, so a request reaches it through whichever hub its caller
    /// is on.
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
    /// On a graceful stop, how long to wait for the requests in flight to be answered.
    pub drain_timeout: Duration,
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
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// How often the loop looks at the stop flag while idle.
pub(super) const STOP_POLL: Duration = Duration::from_millis(100);

/// Between deliveries of one batch, the loop looks for CANCELs that arrived meanwhile once a
/// handler has run this long (shorter handlers cost no system call).
const CANCEL_LOOK: Duration = Duration::from_millis(5);

/// Serves deliveries with `handler`, one at a time, until `stop` is set, reconnecting (to the
/// same hub or the next of the list) with backoff whenever the connection fails. Runs the
/// handler's init hook first and its done hook after a graceful stop. Returns an error only
/// when the configuration is unusable, the init hook fails or a hub refuses the worker.
pub fn run(cfg: &WorkerConfig, handler: &mut dyn Handler, stop: &AtomicBool) -> Result<()> {
    check(cfg)?;
    handler.init().map_err(init_failed)?;
    let mut way = Way::Inline(handler);
    connect_loop(cfg, &mut way, stop)?;
    if let Way::Inline(h) = way {
        h.done();
    }
    Ok(())
}

/// Serves deliveries with `service`, many at once, until `stop` is set; otherwise as [`run`].
/// On a graceful stop the requests in flight are answered first (for up to
/// [`WorkerConfig::drain_timeout`]), then the service's done hook runs.
pub fn run_service(cfg: &WorkerConfig, service: &dyn Service, stop: &AtomicBool) -> Result<()> {
    check(cfg)?;
    service.init().map_err(init_failed)?;
    connect_loop(cfg, &mut Way::Concurrent(service), stop)?;
    service.done();
    Ok(())
}

fn init_failed(why: String) -> Error {
    Error::new(
        Status::AppFail,
        format!("the worker's init hook failed: {why}"),
    )
}

fn check(cfg: &WorkerConfig) -> Result<()> {
    if cfg.hubs.is_empty() {
        return Err(Error::new(Status::Invalid, "no hub address configured"));
    }
    if cfg.proxies.is_empty() {
        return Err(Error::new(
            Status::Invalid,
            "a worker must serve at least one proxy",
        ));
    }
    Ok(())
}

/// How deliveries are served.
enum Way<'a> {
    Inline(&'a mut dyn Handler),
    Concurrent(&'a dyn Service),
}

/// Serves every hub of `cfg`: one hub on this thread; several on a thread each, all stopped by
/// `stop` or by a hub that refuses the worker (whose error is returned). A handler that runs
/// one request at a time stays on this thread, and the hubs' threads hand it their deliveries.
fn connect_loop(cfg: &WorkerConfig, way: &mut Way<'_>, stop: &AtomicBool) -> Result<()> {
    if cfg.hubs.len() <= 1 {
        return connect_hub(cfg, 0, way, stop);
    }
    // Set when `stop` is, or when one hub's loop ends for good: every loop then ends.
    let halt = AtomicBool::new(false);
    let ended = std::sync::atomic::AtomicUsize::new(0);
    let (tx, rx) = crossbeam_channel::unbounded::<(Request, Responder)>();
    let bridge = Bridge(tx);
    let shared: &dyn Service = match way {
        Way::Concurrent(s) => *s,
        Way::Inline(_) => &bridge,
    };
    std::thread::scope(|scope| {
        // Whatever happens on this thread (a handler that panics, say), the hubs' loops end.
        let _halt_on_exit = Ended(&halt, None);
        let threads: Vec<_> = (0..cfg.hubs.len())
            .map(|i| {
                let (halt, ended) = (&halt, &ended);
                std::thread::Builder::new()
                    .name(format!("dco-worker-hub{i}"))
                    .spawn_scoped(scope, move || {
                        // Counted as ended however the loop ends, a panic included.
                        let _ended = Ended(halt, Some(ended));
                        let r = connect_hub(cfg, i, &mut Way::Concurrent(shared), halt);
                        if let Err(e) = &r {
                            tracing::error!(hub = %cfg.hubs[i], "worker stops: {e}");
                        }
                        r
                    })
            })
            .collect();
        let started = threads.iter().filter(|t| t.is_ok()).count();
        if started < threads.len() {
            halt.store(true, Ordering::SeqCst);
        }
        // This thread passes `stop` on, and runs a one-at-a-time handler's deliveries.
        let mut inline = match way {
            Way::Inline(h) => Some(&mut **h),
            Way::Concurrent(_) => None,
        };
        while ended.load(Ordering::SeqCst) < started {
            if stop.load(Ordering::Relaxed) {
                halt.store(true, Ordering::SeqCst);
            }
            match rx.recv_timeout(Duration::from_millis(20)) {
                Ok((req, responder)) => match inline.as_mut() {
                    Some(h) => responder.send(run_inline(&mut **h, req)),
                    None => responder.send(Response::retry_later("no handler")),
                },
                Err(_) => continue,
            }
        }
        let mut first_err = None;
        let mut panicked = None;
        for t in threads {
            match t {
                Ok(t) => match t.join() {
                    Ok(Err(e)) => {
                        first_err.get_or_insert(e);
                    }
                    Ok(Ok(())) => {}
                    Err(p) => {
                        panicked.get_or_insert(p);
                    }
                },
                Err(e) => {
                    first_err.get_or_insert(Error::new(
                        Status::System,
                        format!("cannot start a thread for a hub: {e}"),
                    ));
                }
            }
        }
        if let Some(p) = panicked {
            std::panic::resume_unwind(p);
        }
        // A loop that ended because `stop` was set is a graceful stop, not an error.
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    })
}

/// Dropped when a loop of a multi-hub worker ends, however it ends: every other loop is told to
/// end too, and the count of ended loops goes up.
struct Ended<'a>(&'a AtomicBool, Option<&'a std::sync::atomic::AtomicUsize>);

impl Drop for Ended<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
        if let Some(n) = self.1 {
            n.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Hands a multi-hub worker's deliveries to the thread that runs its one-at-a-time handler.
struct Bridge(crossbeam_channel::Sender<(Request, Responder)>);

impl Service for Bridge {
    fn start(&self, req: Request, responder: Responder) {
        if let Err(crossbeam_channel::SendError((_, responder))) = self.0.send((req, responder)) {
            responder.send(Response::retry_later("the worker is stopping"));
        }
    }
}

/// Runs one request through a one-at-a-time handler and turns what it says into a response.
fn run_inline(h: &mut dyn Handler, req: Request) -> Response {
    let d = Delivery {
        session: req.session,
        request: req.request,
        proxy: req.proxy,
        attempt: req.attempt,
        deadline: req.deadline,
        body: &req.body,
    };
    if req.is_cancelled() {
        h.cancelled(&d);
        return Response::cancelled("cancelled before it ran");
    }
    let mut buf = Vec::new();
    let mut reply = ReplyBuf {
        buf: &mut buf,
        start: 0,
        verdict: None,
        rcode: 0,
    };
    let said = h.handle(&d, &mut reply);
    let (outcome, rcode) = (reply.verdict.unwrap_or(said), reply.rcode);
    match outcome {
        Outcome::Success => Response::success(buf).with_rcode(rcode),
        Outcome::Failure(rc) => Response::failure(rc, buf),
        Outcome::RetryLater => Response::retry_later(buf).with_rcode(rcode),
        Outcome::Forward(p) => Response::forward(p, buf),
        Outcome::Cancelled => Response::cancelled(buf),
        Outcome::TimedOut => Response::timed_out(buf),
    }
}

/// Serves hub `index` of `cfg` until `stop` is set, reconnecting with backoff.
fn connect_hub(
    cfg: &WorkerConfig,
    index: usize,
    way: &mut Way<'_>,
    stop: &AtomicBool,
) -> Result<()> {
    let mut backoff = Duration::from_millis(50);
    let session = crate::sys::random_u64();
    while !stop.load(Ordering::Relaxed) {
        let addr = &cfg.hubs[index];
        match greet(cfg, addr, session) {
            Ok((mut conn, keepalive)) => {
                tracing::info!(hub = %addr, "worker connected");
                backoff = Duration::from_millis(50);
                let since = Instant::now();
                let served = match way {
                    Way::Inline(h) => serve(&mut conn, keepalive, &mut **h, stop),
                    Way::Concurrent(s) => match s.runtime() {
                        Some(rt) => rt.block_on(super::serve_async::serve(
                            conn,
                            keepalive,
                            *s,
                            stop,
                            cfg.drain_timeout,
                        )),
                        None => serve_concurrent(&mut conn, keepalive, *s, stop, cfg.drain_timeout),
                    },
                };
                match served {
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

/// Serves one connection with a [`Service`]: deliveries are started as they arrive, answers
/// are written as they come back, and CANCELs reach the requests they name while those run.
/// `Ok(())` means `stop` was set and what was in flight was answered (or `drain` ran out).
fn serve_concurrent(
    conn: &mut Conn,
    keepalive: Duration,
    service: &dyn Service,
    stop: &AtomicBool,
    drain: Duration,
) -> Result<()> {
    let lost = |msg: String| Error::new(Status::NotConnected, msg);
    let max_body = (conn.max_frame.saturating_sub(64) as usize).saturating_sub(16);
    // One completion queue per connection: answers for an earlier connection's deliveries
    // go to a queue nobody reads (the hub has given those to someone else).
    let done = Arc::new(
        Completions::new().map_err(|e| Error::new(Status::System, format!("eventfd: {e}")))?,
    );
    let mut guard = CancelOnDrop(HashMap::new());
    let inflight = &mut guard.0;
    let mut answers: Vec<(Tag, Response)> = Vec::new();
    let mut stopping: Option<Instant> = None;
    loop {
        // Frames read so far: start deliveries (unless stopping), pass on cancels.
        loop {
            let mut out = std::mem::take(&mut conn.out);
            let step = match conn.next_frame() {
                Err(e) => Err(Error::new(
                    Status::Protocol,
                    format!("bad frame from the hub: {e}"),
                )),
                Ok(None) => Ok(None),
                Ok(Some((frame, n))) => {
                    let accept = stopping.is_none();
                    let sink = || Sink::Queue(done.clone());
                    start_frame(frame, &mut out, service, &sink, inflight, accept).map(|()| Some(n))
                }
            };
            conn.out = out;
            match step? {
                None => break,
                Some(n) => conn.consume(n),
            }
        }
        done.take(&mut answers);
        for (tag, r) in answers.drain(..) {
            encode_answer(&mut conn.out, inflight, tag, r, max_body);
        }
        conn.flush().map_err(|e| lost(e.to_string()))?;
        if drained(&mut stopping, stop, drain, inflight.len()) {
            return Ok(());
        }
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
        conn.fill_or_wake(Some((now + STOP_POLL).min(dead_at)), done.wake_fd())
            .map_err(|e| lost(e.to_string()))?;
    }
}

/// The requests in flight on one connection, by tag. However the connection ends, those still
/// running are told to stop: the hub gives them to another worker once it sees it go.
pub(super) struct CancelOnDrop(pub(super) HashMap<Tag, CancelSignal>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        for (_, c) in self.0.drain() {
            c.cancel();
        }
    }
}

/// One frame on a concurrent worker's connection.
pub(super) fn start_frame(
    frame: Frame<'_>,
    out: &mut Vec<u8>,
    service: &dyn Service,
    sink: &dyn Fn() -> Sink,
    inflight: &mut HashMap<Tag, CancelSignal>,
    accept: bool,
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
            // While stopping, new deliveries are left unanswered: the hub gives them to
            // another worker when this connection closes.
            if !accept {
                return Ok(());
            }
            let tag = Tag(tag);
            let cancel = CancelSignal::default();
            let deadline = (remaining_ms > 0)
                .then(|| Instant::now() + Duration::from_millis(remaining_ms as u64));
            let req = Request::new(
                session,
                request,
                proxy,
                attempt,
                deadline,
                body.to_vec(),
                cancel.clone(),
            );
            inflight.insert(tag, cancel);
            service.start(req, Responder::new(tag, sink()));
            Ok(())
        }
        // To a worker, a CANCEL names the delivery's tag.
        Frame::Cancel { id } => {
            if let Some(c) = inflight.get(&Tag(id)) {
                c.cancel();
            }
            Ok(())
        }
        other => control_frame(other, out),
    }
}

/// Encodes the answer for `tag`, unless the connection no longer holds that delivery (the
/// hub gave it to someone else, or it was answered already).
pub(super) fn encode_answer(
    out: &mut Vec<u8>,
    inflight: &mut HashMap<Tag, CancelSignal>,
    tag: Tag,
    r: Response,
    max_body: usize,
) {
    if inflight.remove(&tag).is_none() {
        return;
    }
    let at = out.len();
    wire::encode_result(out, tag.0, 0, 0, &[]);
    out.extend_from_slice(&r.body);
    finish_result(out, at, r.outcome, r.rcode, max_body);
}

/// A graceful stop of a concurrent worker: once `stop` is set, new deliveries are left alone
/// (`stopping` holds when waiting ends) and the connection ends when nothing is in flight or
/// `drain` has passed. True: end the connection now.
pub(super) fn drained(
    stopping: &mut Option<Instant>,
    stop: &AtomicBool,
    drain: Duration,
    inflight: usize,
) -> bool {
    if stopping.is_none() && stop.load(Ordering::Relaxed) {
        *stopping = Some(Instant::now() + drain);
    }
    let Some(until) = *stopping else {
        return false;
    };
    if inflight == 0 {
        return true;
    }
    if Instant::now() >= until {
        tracing::warn!(
            "worker stopping with {inflight} requests unanswered after {} ms",
            drain.as_millis()
        );
        return true;
    }
    false
}

/// Fills in the RESULT (or FORWARD) frame begun at `at` whose body follows its fixed fields:
/// the length and the outcome. A body over `max_body` is replaced by an error.
pub(super) fn finish_result(
    out: &mut Vec<u8>,
    at: usize,
    outcome: Outcome,
    rcode: i32,
    max_body: usize,
) {
    let start = at + HEADER_LEN + 16;
    let too_large = out.len() - start > max_body;
    if too_large {
        out.truncate(start);
        let msg = format!("the reply is over the hub's limit of {max_body} bytes");
        out.extend_from_slice(msg.as_bytes());
    }
    let payload = (out.len() - at - HEADER_LEN) as u32;
    out[at..at + 4].copy_from_slice(&payload.to_be_bytes());
    // RESULT and FORWARD have the same fixed layout: tag, then two 32-bit fields (status and
    // rcode; proxy and flags).
    let (status, rcode) = match outcome {
        _ if too_large => (Status::TooLarge.code(), 0),
        Outcome::Success => (0, rcode),
        Outcome::Failure(rc) => (Status::AppFail.code(), rc),
        Outcome::RetryLater => (wire::RESULT_RETRY, rcode),
        Outcome::Cancelled => (Status::Cancelled.code(), 0),
        Outcome::TimedOut => (Status::Timeout.code(), 0),
        Outcome::Forward(p) => {
            out[at + 4] = wire::FrameType::Forward as u8;
            (p, 0)
        }
    };
    out[at + 16..at + 20].copy_from_slice(&status.to_be_bytes());
    out[at + 20..at + 24].copy_from_slice(&rcode.to_be_bytes());
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
            let (outcome, rcode) = {
                let mut reply = ReplyBuf {
                    buf: out,
                    start,
                    verdict: None,
                    rcode: 0,
                };
                let o = handler.handle(&d, &mut reply);
                (reply.verdict.unwrap_or(o), reply.rcode)
            };
            finish_result(out, at, outcome, rcode, max_body);
            Ok(())
        }
        // A cancel of a delivery already answered (or skipped above): nothing to do.
        Frame::Cancel { .. } => Ok(()),
        other => control_frame(other, out),
    }
}

/// The frames both ways of serving treat alike.
pub(super) fn control_frame(frame: Frame<'_>, out: &mut Vec<u8>) -> Result<()> {
    match frame {
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
