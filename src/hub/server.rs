//! The hub's event loop: accepting, reading, writing, keep-alive and shutdown.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};

use ahash::AHashMap as HashMap;

use super::flights::Flights;
use super::listener::Listeners;
use super::peer::{Peer, ReadOutcome, Role, Stream};
use super::records;
use super::router::Router;
use super::sessions::SessionState;
use super::store::{MemStore, Store};
use super::HubConfig;
use crate::journal::{Journal, Pos};
use crate::status::Status;
use crate::wire;

const TCP_LISTENER: Token = Token(usize::MAX - 1);
const UNIX_LISTENER: Token = Token(usize::MAX - 2);
const WAKER: Token = Token(usize::MAX - 3);

/// How often the loop wakes when idle, to ping, expire and look at the shutdown flag.
const TICK: Duration = Duration::from_millis(100);

/// Stop reading a peer whose unwritten output is over this; resume below half of it.
pub(super) const OUT_PAUSE: usize = 8 * 1024 * 1024;

/// A connection that has not said HELLO within this time is dropped.
const GREETING_TIMEOUT: Duration = Duration::from_secs(10);

/// Asks a running hub to quit gracefully; cheap to clone.
#[derive(Clone, Default)]
pub struct Shutdown(Arc<AtomicBool>);

impl Shutdown {
    /// A shutdown switch, not triggered.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Asks the hub to quit: it tells every peer (QUIT), writes what it can and returns.
    pub fn trigger(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// The flag itself, for signal handlers.
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.0.clone()
    }

    fn is_triggered(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// A hub running on a thread of this process (for tests and embedding).
pub struct HubHandle {
    /// The TCP address it listens on, if any.
    pub tcp_addr: Option<std::net::SocketAddr>,
    /// The Unix socket path, if any.
    pub unix_path: Option<PathBuf>,
    shutdown: Shutdown,
    thread: Option<std::thread::JoinHandle<io::Result<()>>>,
}

impl HubHandle {
    /// The address to give callers and workers (`host:port`, else `unix:/path`).
    pub fn addr(&self) -> String {
        match (&self.tcp_addr, &self.unix_path) {
            (Some(a), _) => a.to_string(),
            (None, Some(p)) => format!("unix:{}", p.display()),
            (None, None) => String::new(),
        }
    }

    /// Stops the hub and waits for its thread.
    pub fn stop(mut self) -> io::Result<()> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> io::Result<()> {
        self.shutdown.trigger();
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("hub thread panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for HubHandle {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}

/// Binds per `cfg` and runs a hub on a new thread.
pub fn spawn(cfg: HubConfig) -> io::Result<HubHandle> {
    let listeners = Listeners::bind(&cfg)?;
    let tcp_addr = listeners.tcp_addr();
    let unix_path = listeners.unix.as_ref().map(|(_, p)| p.clone());
    let shutdown = Shutdown::new();
    let s = shutdown.clone();
    let thread = std::thread::Builder::new()
        .name("dco-hub".into())
        .spawn(move || run(cfg, listeners, s))?;
    Ok(HubHandle {
        tcp_addr,
        unix_path,
        shutdown,
        thread: Some(thread),
    })
}

/// Runs the hub on the bound `listeners` until `shutdown` is triggered.
pub fn run(cfg: HubConfig, listeners: Listeners, shutdown: Shutdown) -> io::Result<()> {
    let mut hub = Hub::new(cfg, listeners)?;
    let mut events = Events::with_capacity(1024);
    let mut last_tick = Instant::now();
    loop {
        if shutdown.is_triggered() {
            hub.quit();
            return Ok(());
        }
        match hub.poll.poll(&mut events, Some(TICK)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        // One clock reading per wake-up: every frame of the round shares it.
        hub.now = Instant::now();
        hub.now_us = super::handle::now_us();
        for event in events.iter() {
            match event.token() {
                TCP_LISTENER => hub.accept_tcp(),
                UNIX_LISTENER => hub.accept_unix(),
                // The journal's syncer made more durable: acknowledgements below.
                WAKER => {}
                Token(t) => {
                    if event.is_readable() || event.is_read_closed() || event.is_error() {
                        // After a hang-up, read on to the end: a short read is not the end then.
                        hub.read_peer(t, event.is_read_closed() || event.is_error());
                    }
                    if event.is_writable() {
                        hub.mark_dirty(t);
                    }
                }
            }
        }
        hub.store.commit();
        hub.release_acks();
        hub.flush_dirty();
        let now = Instant::now();
        if now.duration_since(last_tick) >= TICK {
            last_tick = now;
            hub.tick(now);
            hub.store.commit();
            hub.flush_dirty();
        }
    }
}

/// The hub's state, owned by its one thread.
pub(super) struct Hub {
    pub(super) cfg: HubConfig,
    pub(super) poll: Poll,
    listeners: Listeners,
    pub(super) peers: Vec<Option<Peer>>,
    free_tokens: Vec<usize>,
    next_conn_id: u64,
    pub(super) flights: Flights,
    pub(super) router: Router,
    pub(super) store: Store,
    pub(super) sessions: HashMap<u64, SessionState>,
    /// Attempts made so far for queued requests that were delivered before (by ACCEPT pos).
    pub(super) attempts: HashMap<Pos, u32>,
    /// Callers with requests waiting for their ACK.
    pub(super) ack_waiters: Vec<usize>,
    /// Requests held aside while their caller does not read its replies: session -> (proxy,
    /// ACCEPT position), in queue order.
    pub(super) held: HashMap<u64, std::collections::VecDeque<(i32, Pos)>>,
    _waker: Arc<mio::Waker>,
    /// The time of this round (read once per wake-up).
    pub(super) now: Instant,
    /// The same, in microseconds since the epoch (journal timestamps, latency).
    pub(super) now_us: u64,
    /// Keys the session tags shown in statistics.
    stats_key: ahash::RandomState,
    /// Peers with output to write this round (each with its `dirty` flag set).
    pub(super) dirty: Vec<usize>,
    pub(super) hub_id: u64,
    pub(super) started: Instant,
    pub(super) busy: u64,
    pub(super) protocol_errors: u64,
}

impl Hub {
    fn new(cfg: HubConfig, mut listeners: Listeners) -> io::Result<Hub> {
        let poll = Poll::new()?;
        if let Some(l) = listeners.tcp.as_mut() {
            poll.registry()
                .register(l, TCP_LISTENER, mio::Interest::READABLE)?;
        }
        if let Some((l, _)) = listeners.unix.as_mut() {
            poll.registry()
                .register(l, UNIX_LISTENER, mio::Interest::READABLE)?;
        }
        let waker = Arc::new(mio::Waker::new(poll.registry(), WAKER)?);
        // A hub with a journal keeps its identity across restarts (callers can tell a restart
        // of the same hub, which still holds their requests, from another hub).
        let hub_id = match cfg.journal {
            Some(_) => persistent_id(&cfg.data.join("hub.id"))?,
            None => crate::sys::random_u64(),
        };
        let known_file = cfg.journal.as_ref().map(|_| cfg.data.join("proxies"));
        let router = Router::with_known_file(known_file, &cfg.proxy_ids)?;
        let (store, recovered) = match cfg.journal.clone() {
            None => (Store::Memory(MemStore::default()), Recovered::default()),
            Some(jcfg) => {
                let w = waker.clone();
                let mut rec = Recovered::default();
                let started = Instant::now();
                let (journal, report) = Journal::open(
                    jcfg,
                    Box::new(move || {
                        let _ = w.wake();
                    }),
                    |pos, kind, payload| rec.record(pos, kind, payload),
                )?;
                let secs = started.elapsed().as_secs_f64();
                tracing::info!(
                    segments = report.segments,
                    records = report.records,
                    mb_per_s = (report.bytes as f64 / 1e6 / secs.max(1e-9)) as u64,
                    pending = rec.accepts.len(),
                    unread = rec.replies.len(),
                    "journal recovered"
                );
                (Store::Journal(journal), rec)
            }
        };
        tracing::info!(
            tcp = ?listeners.tcp_addr(),
            unix = ?listeners.unix.as_ref().map(|(_, p)| p.clone()),
            "hub listening"
        );
        let mut hub = Hub {
            cfg,
            poll,
            listeners,
            peers: Vec::new(),
            free_tokens: Vec::new(),
            next_conn_id: 1,
            flights: Flights::default(),
            router,
            store,
            sessions: HashMap::new(),
            attempts: HashMap::new(),
            ack_waiters: Vec::new(),
            held: HashMap::new(),
            _waker: waker,
            stats_key: ahash::RandomState::new(),
            now: Instant::now(),
            now_us: super::handle::now_us(),
            dirty: Vec::new(),
            hub_id,
            started: Instant::now(),
            busy: 0,
            protocol_errors: 0,
        };
        hub.restore(recovered);
        Ok(hub)
    }

    /// Rebuilds sessions and queues from what the journal held.
    fn restore(&mut self, rec: Recovered) {
        let mut pending: Vec<(Pos, u64, u64)> = rec
            .accepts
            .into_iter()
            .map(|((s, r), pos)| (pos, s, r))
            .collect();
        pending.sort_unstable();
        for (pos, session, _request) in pending {
            self.store.pin(pos);
            let Some(a) = self.store.read(pos).and_then(|(_, p)| records::accept(p)) else {
                continue;
            };
            let proxy = a.proxy;
            let ss = self
                .sessions
                .entry(session)
                .or_insert_with(SessionState::new);
            ss.inflight += 1;
            if let Some(n) = rec.attempts.get(&(session, a.request)) {
                self.attempts.insert(pos, *n);
            }
            self.router.proxy(proxy).queue.push_back(pos);
        }
        for ((session, request), rpos) in rec.replies {
            self.store.pin(rpos);
            let ss = self
                .sessions
                .entry(session)
                .or_insert_with(SessionState::new);
            ss.replies.insert(request, rpos);
        }
        for (session, upto) in rec.upto {
            let ss = self
                .sessions
                .entry(session)
                .or_insert_with(SessionState::new);
            ss.accepted_upto = ss.accepted_upto.max(upto);
        }
        // Every session the journal still names is kept (until its time to live runs out):
        // its highest accepted id is what makes a late resend a duplicate rather than new work.
    }

    fn add_peer(&mut self, stream: Stream, addr: String) {
        let token = self.free_tokens.pop().unwrap_or_else(|| {
            self.peers.push(None);
            self.peers.len() - 1
        });
        let id = self.next_conn_id;
        self.next_conn_id += 1;
        let mut peer = Peer::new(id, stream, addr);
        if let Err(e) = peer.register(self.poll.registry(), Token(token)) {
            tracing::warn!("cannot register a connection: {e}");
            self.free_tokens.push(token);
            return;
        }
        self.peers[token] = Some(peer);
    }

    fn accept_tcp(&mut self) {
        loop {
            let Some(l) = self.listeners.tcp.as_ref() else {
                return;
            };
            match l.accept() {
                Ok((s, addr)) => {
                    let _ = s.set_nodelay(true);
                    crate::sys::set_keepalive(
                        std::os::fd::AsRawFd::as_raw_fd(&s),
                        self.cfg.keepalive.as_secs().max(1) as i32 * 2,
                    );
                    self.add_peer(Stream::Tcp(s), addr.to_string());
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    // Out of descriptors and the like: keep serving those we have.
                    tracing::warn!("accept failed: {e}");
                    return;
                }
            }
        }
    }

    fn accept_unix(&mut self) {
        loop {
            let Some((l, path)) = self.listeners.unix.as_ref() else {
                return;
            };
            match l.accept() {
                Ok((s, _)) => {
                    let addr = format!("unix:{}", path.display());
                    self.add_peer(Stream::Unix(s), addr);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    return;
                }
            }
        }
    }

    /// Reads from peer `t` until the socket is drained, handling frames as they complete. With
    /// `to_end`, reads until the peer's end of stream instead of stopping at a short read.
    fn read_peer(&mut self, t: usize, to_end: bool) {
        loop {
            let Some(peer) = self.peers.get_mut(t).and_then(|p| p.as_mut()) else {
                return;
            };
            if peer.closing {
                return;
            }
            // A peer that does not read what the hub writes is not read either, until its
            // output drains: the hub's memory stays bounded whatever a peer does.
            // A caller must keep reading while it writes (the library does, see Conn::flush),
            // or this and its blocked write wait for each other. Workers are never paused: the
            // hub's output to a worker is bounded by dispatch, and their RESULTs must always
            // flow (a worker may stop reading while it writes).
            if peer.pending_out() > OUT_PAUSE && !matches!(peer.role, Role::Worker(_)) {
                peer.paused = true;
                return;
            }
            match peer.read_some() {
                Ok(ReadOutcome::Data) => {
                    self.process_input(t);
                }
                Ok(ReadOutcome::Drained) => {
                    self.process_input(t);
                    if !to_end {
                        return;
                    }
                }
                Ok(ReadOutcome::Empty) => {
                    self.process_input(t);
                    return;
                }
                Ok(ReadOutcome::Closed) => {
                    self.process_input(t);
                    self.close_peer(t, "closed by peer");
                    return;
                }
                Err(e) => {
                    self.close_peer(t, &format!("read failed: {e}"));
                    return;
                }
            }
        }
    }

    /// Decodes and handles every whole frame in peer `t`'s input.
    fn process_input(&mut self, t: usize) {
        let Some(peer) = self.peers.get_mut(t).and_then(|p| p.as_mut()) else {
            return;
        };
        let inbuf = std::mem::take(&mut peer.inbuf);
        let max = self.cfg.max_frame;
        let mut pos = 0;
        let mut failure = None;
        while pos < inbuf.len() {
            match wire::decode(&inbuf[pos..], max) {
                Ok(None) => break,
                Ok(Some((frame, n))) => {
                    pos += n;
                    if let Err(e) = self.on_frame(t, frame) {
                        failure = Some(e);
                        break;
                    }
                }
                Err(e) => {
                    failure = Some((Status::Protocol, e.to_string()));
                    break;
                }
            }
        }
        let Some(peer) = self.peers.get_mut(t).and_then(|p| p.as_mut()) else {
            return;
        };
        if failure.is_none() {
            let mut inbuf = inbuf;
            inbuf.drain(..pos);
            peer.inbuf = inbuf;
        }
        if let Some((status, msg)) = failure {
            self.refuse(t, status, &msg);
        }
    }

    /// Queues a REFUSE for peer `t` and closes it once written.
    pub(super) fn refuse(&mut self, t: usize, status: Status, msg: &str) {
        let Some(peer) = self.peers.get_mut(t).and_then(|p| p.as_mut()) else {
            return;
        };
        if status == Status::Protocol {
            self.protocol_errors += 1;
        }
        tracing::warn!("closing {}: {msg}", peer.describe());
        wire::encode_refuse(&mut peer.out, status.code(), msg);
        peer.closing = true;
        peer.inbuf = Vec::new();
        self.mark_dirty(t);
    }

    /// Notes that peer `t` has output to write at the end of this round.
    pub(super) fn mark_dirty(&mut self, t: usize) {
        if let Some(peer) = self.peers.get_mut(t).and_then(|p| p.as_mut()) {
            if !peer.dirty {
                peer.dirty = true;
                self.dirty.push(t);
            }
        }
    }

    /// Writes every peer that has output.
    fn flush_dirty(&mut self) {
        let mut resume = Vec::new();
        let mut release = Vec::new();
        while !self.dirty.is_empty() {
            let dirty = std::mem::take(&mut self.dirty);
            for t in dirty {
                let registry = self.poll.registry();
                let Some(peer) = self.peers.get_mut(t).and_then(|p| p.as_mut()) else {
                    continue;
                };
                peer.dirty = false;
                match peer.write_out() {
                    Ok(true) => {
                        peer.set_want_write(registry, Token(t), false);
                        if peer.closing {
                            self.close_peer(t, "closed by the hub");
                            continue;
                        }
                    }
                    Ok(false) => peer.set_want_write(registry, Token(t), true),
                    Err(e) => {
                        self.close_peer(t, &format!("write failed: {e}"));
                        continue;
                    }
                }
                if peer.pending_out() <= OUT_PAUSE / 2 {
                    if peer.paused {
                        peer.paused = false;
                        resume.push(t);
                    }
                    if let Role::Caller(c) = &peer.role {
                        if self.held.contains_key(&c.session) {
                            release.push(c.session);
                        }
                    }
                }
            }
        }
        // Paused readers whose output drained: read what waited (edge-triggered polling will
        // not report it again).
        for session in release {
            self.release_held(session);
        }
        for t in resume {
            self.read_peer(t, false);
        }
        if !self.dirty.is_empty() {
            self.flush_dirty();
        }
    }

    /// Pings idle connections and drops those that stopped answering.
    fn tick(&mut self, now: Instant) {
        let keepalive = self.cfg.keepalive;
        let mut drop = Vec::new();
        let mut mute = Vec::new();
        for t in 0..self.peers.len() {
            let Some(peer) = self.peers[t].as_mut() else {
                continue;
            };
            let silent = now.duration_since(peer.last_rx);
            match peer.role {
                Role::Greeting if now.duration_since(peer.since) > GREETING_TIMEOUT => {
                    if !peer.closing {
                        mute.push(t);
                    }
                    continue;
                }
                // A worker busy with requests may be silent while its handler runs; an idle one
                // that does not answer the hub's pings is gone.
                Role::Worker(ref w) if w.inflight == 0 && silent > keepalive * 3 => {
                    drop.push((t, "keep-alive expired"));
                    continue;
                }
                _ => {}
            }
            if peer.closing {
                continue;
            }
            let mut wrote = Hub::send_ack(peer);
            if !wrote
                && !matches!(peer.role, Role::Greeting)
                && now.duration_since(peer.last_tx) >= keepalive
            {
                let nonce = now.duration_since(self.started).as_millis() as u64;
                wire::encode_ping(&mut peer.out, nonce);
                wrote = true;
            }
            if wrote {
                peer.last_tx = now;
                self.mark_dirty(t);
            }
        }
        for (t, why) in drop {
            self.close_peer(t, why);
        }
        for t in mute {
            let msg = format!("no HELLO within {} s", GREETING_TIMEOUT.as_secs());
            self.refuse(t, Status::Protocol, &msg);
        }
        self.expire_sessions(now);
    }

    /// Drops the unread answers of sessions gone for longer than the reply time to live, and
    /// forgets sessions with nothing left.
    fn expire_sessions(&mut self, now: Instant) {
        let ttl = self.cfg.reply_ttl;
        let expired: Vec<u64> = self
            .sessions
            .iter()
            .filter(|(_, ss)| ss.detached_at.is_some_and(|d| now.duration_since(d) >= ttl))
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            let ids: Vec<u64> = self
                .sessions
                .get(&id)
                .map(|ss| ss.replies.keys().copied().collect())
                .unwrap_or_default();
            if !ids.is_empty() {
                let tag = self.session_tag(id);
                tracing::info!("session {tag:08x}: {} unread answers expired", ids.len());
            }
            for r in ids {
                self.finish_reply(id, r);
            }
            if self.sessions.get(&id).is_some_and(|ss| ss.inflight == 0) {
                self.sessions.remove(&id);
            }
        }
    }

    /// Tells every peer the hub is quitting, writes what the kernel takes, and closes all.
    fn quit(&mut self) {
        tracing::info!(
            "hub quitting: telling {} peers",
            self.peers.iter().flatten().count()
        );
        for t in 0..self.peers.len() {
            if let Some(peer) = self.peers[t].as_mut() {
                wire::encode_quit(&mut peer.out, "the hub is shutting down");
                peer.closing = true;
                self.mark_dirty(t);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut events = Events::with_capacity(256);
        loop {
            self.flush_dirty();
            let waiting: Vec<usize> = (0..self.peers.len())
                .filter(|t| self.peers[*t].is_some())
                .collect();
            if waiting.is_empty() || Instant::now() >= deadline {
                break;
            }
            let _ = self.poll.poll(&mut events, Some(Duration::from_millis(20)));
            for event in events.iter() {
                if event.is_writable() {
                    self.mark_dirty(event.token().0);
                }
            }
        }
        for t in 0..self.peers.len() {
            if self.peers[t].is_some() {
                self.close_peer(t, "hub shut down");
            }
        }
        if let Some((_, path)) = &self.listeners.unix {
            let _ = std::fs::remove_file(path);
        }
        self.store.commit();
    }

    /// A short tag for a session id in statistics, keyed by a secret of this hub run so it
    /// tells nothing about the id.
    pub(super) fn session_tag(&self, id: u64) -> u32 {
        (self.stats_key.hash_one(id) >> 32) as u32
    }

    /// Removes peer `t` and settles what it had in flight.
    pub(super) fn close_peer(&mut self, t: usize, why: &str) {
        let Some(mut peer) = self.peers.get_mut(t).and_then(|p| p.take()) else {
            return;
        };
        peer.deregister(self.poll.registry());
        self.free_tokens.push(t);
        tracing::debug!("{} closed: {why}", peer.describe());
        self.settle_closed(t, peer);
    }
}

/// What recovery collects from the journal before the hub rebuilds its state.
#[derive(Default)]
struct Recovered {
    /// Requests accepted and not answered: (session, request) -> ACCEPT position.
    accepts: HashMap<(u64, u64), Pos>,
    /// Deliveries made: (session, request) -> attempts.
    attempts: HashMap<(u64, u64), u32>,
    /// Answers not confirmed: (session, request) -> REPLY position.
    replies: HashMap<(u64, u64), Pos>,
    /// Highest request id seen per session.
    upto: HashMap<u64, u64>,
}

impl Recovered {
    fn record(&mut self, pos: Pos, kind: u8, payload: &[u8]) {
        match kind {
            records::ACCEPT => {
                if let Some(a) = records::accept(payload) {
                    self.accepts.insert((a.session, a.request), pos);
                    let u = self.upto.entry(a.session).or_default();
                    *u = (*u).max(a.request);
                }
            }
            records::DELIVER => {
                if let Some((s, r, n)) = records::deliver_of(payload) {
                    self.attempts.insert((s, r), n);
                }
            }
            records::REPLY => {
                if let Some(r) = records::reply(payload) {
                    let key = (r.session, r.request);
                    self.accepts.remove(&key);
                    self.attempts.remove(&key);
                    self.replies.insert(key, pos);
                    let u = self.upto.entry(r.session).or_default();
                    *u = (*u).max(r.request);
                }
            }
            records::DONE => {
                if let Some(key) = records::done_of(payload) {
                    self.accepts.remove(&key);
                    self.attempts.remove(&key);
                    self.replies.remove(&key);
                }
            }
            other => tracing::warn!("journal record of unknown kind {other} at {pos:#x} ignored"),
        }
    }
}

/// The id stored in `path`, made (and stored) on first use.
fn persistent_id(path: &std::path::Path) -> io::Result<u64> {
    if let Ok(text) = std::fs::read_to_string(path) {
        if let Ok(id) = u64::from_str_radix(text.trim(), 16) {
            return Ok(id);
        }
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let id = crate::sys::random_u64();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{id:016x}\n"))?;
    std::fs::rename(&tmp, path)?;
    Ok(id)
}
