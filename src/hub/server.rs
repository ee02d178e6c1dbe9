//! The hub's event loop: accepting, reading, writing, keep-alive and shutdown.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};

use super::flights::Flights;
use super::listener::Listeners;
use super::peer::{Peer, ReadOutcome, Role, Stream};
use super::router::Router;
use super::HubConfig;
use crate::status::Status;
use crate::wire;

const TCP_LISTENER: Token = Token(usize::MAX - 1);
const UNIX_LISTENER: Token = Token(usize::MAX - 2);

/// How often the loop wakes when idle, to ping, expire and look at the shutdown flag.
const TICK: Duration = Duration::from_millis(100);

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
        for event in events.iter() {
            match event.token() {
                TCP_LISTENER => hub.accept_tcp(),
                UNIX_LISTENER => hub.accept_unix(),
                Token(t) => {
                    if event.is_readable() || event.is_read_closed() || event.is_error() {
                        hub.read_peer(t);
                    }
                    if event.is_writable() {
                        hub.mark_dirty(t);
                    }
                }
            }
        }
        hub.flush_dirty();
        let now = Instant::now();
        if now.duration_since(last_tick) >= TICK {
            last_tick = now;
            hub.tick(now);
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
        tracing::info!(
            tcp = ?listeners.tcp_addr(),
            unix = ?listeners.unix.as_ref().map(|(_, p)| p.clone()),
            "hub listening"
        );
        Ok(Hub {
            cfg,
            poll,
            listeners,
            peers: Vec::new(),
            free_tokens: Vec::new(),
            next_conn_id: 1,
            flights: Flights::default(),
            router: Router::default(),
            dirty: Vec::new(),
            hub_id: crate::sys::random_u64(),
            started: Instant::now(),
            busy: 0,
            protocol_errors: 0,
        })
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

    /// Reads from peer `t` until the socket is drained, handling frames as they complete.
    fn read_peer(&mut self, t: usize) {
        loop {
            let Some(peer) = self.peers.get_mut(t).and_then(|p| p.as_mut()) else {
                return;
            };
            if peer.closing {
                return;
            }
            match peer.read_some() {
                Ok(ReadOutcome::Data) => {
                    self.process_input(t);
                }
                Ok(ReadOutcome::Drained) => {
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
                        }
                    }
                    Ok(false) => peer.set_want_write(registry, Token(t), true),
                    Err(e) => self.close_peer(t, &format!("write failed: {e}")),
                }
            }
        }
    }

    /// Pings idle connections and drops those that stopped answering.
    fn tick(&mut self, now: Instant) {
        let keepalive = self.cfg.keepalive;
        let mut drop = Vec::new();
        for t in 0..self.peers.len() {
            let Some(peer) = self.peers[t].as_mut() else {
                continue;
            };
            let silent = now.duration_since(peer.last_rx);
            match peer.role {
                Role::Greeting if now.duration_since(peer.since) > GREETING_TIMEOUT => {
                    drop.push((t, "no HELLO in time"));
                    continue;
                }
                Role::Worker(_) if silent > keepalive * 3 => {
                    drop.push((t, "keep-alive expired"));
                    continue;
                }
                _ => {}
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
    }

    /// Tells every peer the hub is quitting, writes what the kernel takes, and closes all.
    fn quit(&mut self) {
        tracing::info!("hub quitting: telling {} peers", self.peers.iter().flatten().count());
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
