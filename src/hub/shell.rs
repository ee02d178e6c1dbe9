//! The hub's I/O shell: the `mio` loop around the core. It accepts, reads and decodes
//! frames into core events, writes the core's outboxes, commits the store, reads the clock,
//! wakes the core when its next timer is due, and shuts down. It makes no decision of its own
//! beyond not reading a peer that does not read what the hub writes.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};

use super::core::{Core, CoreConfig, Micros, Recovered, Role, Router, OUT_PAUSE};
use super::listener::Listeners;
use super::socket::{ReadOutcome, Socket, Stream};
use super::store::{MemStore, Store};
use super::HubConfig;
use crate::journal::Journal;
use crate::status::Status;
use crate::wire;

const TCP_LISTENER: Token = Token(usize::MAX - 1);
const UNIX_LISTENER: Token = Token(usize::MAX - 2);
const WAKER: Token = Token(usize::MAX - 3);

/// Longest sleep of the loop: how soon it sees the shutdown flag.
const MAX_SLEEP: Duration = Duration::from_millis(100);

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

/// The core's clock: microseconds since the epoch at start, monotonic from there.
struct Clock {
    base: Instant,
    base_us: Micros,
}

impl Clock {
    fn new() -> Clock {
        let base_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        Clock {
            base: Instant::now(),
            base_us,
        }
    }

    fn now(&self) -> Micros {
        self.base_us + self.base.elapsed().as_micros() as u64
    }
}

/// Runs the hub on the bound `listeners` until `shutdown` is triggered.
/// Re-reads the per-proxy policies when asked (SIGHUP, `dco reload`): `asked` is set by the
/// signal handler; `load` reads the configuration again, or says why it cannot be used.
pub struct Reload {
    /// Set to ask for a reload.
    pub asked: Arc<AtomicBool>,
    /// Reads the policies anew; an error leaves the ones in force.
    pub load: Box<dyn Fn() -> Result<crate::hub::Policies, String> + Send>,
}

/// Runs a hub until `shutdown` is triggered (see [`run_with`]).
pub fn run(cfg: HubConfig, listeners: Listeners, shutdown: Shutdown) -> io::Result<()> {
    run_with(cfg, listeners, shutdown, None)
}

/// Runs a hub until `shutdown` is triggered; `reload`, if given, applies new per-proxy
/// policies while it runs, without dropping a connection or a request (requests already
/// accepted keep the mode they were accepted with).
pub fn run_with(
    cfg: HubConfig,
    listeners: Listeners,
    shutdown: Shutdown,
    reload: Option<Reload>,
) -> io::Result<()> {
    match crate::sys::raise_nofile_limit() {
        Ok((old, new)) if new > old => {
            tracing::info!("open-file limit raised from {old} to {new}")
        }
        Ok((_, now)) => tracing::info!("open-file limit {now}"),
        Err(e) => tracing::warn!("cannot read or raise the open-file limit: {e}"),
    }
    let mut shell = Shell::new(cfg, listeners)?;
    let mut events = Events::with_capacity(1024);
    loop {
        if shutdown.is_triggered() {
            shell.quit();
            return Ok(());
        }
        if let Some(r) = reload
            .as_ref()
            .filter(|r| r.asked.swap(false, Ordering::SeqCst))
        {
            match (r.load)() {
                Ok(p) => {
                    tracing::info!(
                        "configuration reloaded: every proxy's policy is now {}",
                        p.default
                    );
                    shell.core.set_policies(p);
                }
                Err(e) => {
                    tracing::error!("reload refused, the configuration in force stays: {e}")
                }
            }
        }
        let now = shell.clock.now();
        let sleep = shell
            .core
            .next_due()
            .map(|due| Duration::from_micros(due.saturating_sub(now)))
            .unwrap_or(MAX_SLEEP)
            .min(MAX_SLEEP)
            // Records waiting for a sync nobody asked for go out within the journal's limit.
            .min(if shell.core.store_mut().has_deferred() {
                crate::journal::DEFER_LIMIT
            } else {
                MAX_SLEEP
            });
        match shell.poll.poll(&mut events, Some(sleep)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        if events.is_empty() {
            // A quiet moment: the journal may make its last durability mark durable.
            shell.core.store_mut().idle();
        }
        // One clock reading per wake-up: every frame of the round shares it.
        shell.now = shell.clock.now();
        for event in events.iter() {
            match event.token() {
                TCP_LISTENER => shell.accept_tcp(),
                UNIX_LISTENER => shell.accept_unix(),
                // The journal's syncer made more durable: acknowledgements below.
                WAKER => {}
                Token(t) => {
                    if event.is_readable() || event.is_read_closed() || event.is_error() {
                        // After a hang-up, read on to the end: a short read is not the end then.
                        shell.read_peer(t, event.is_read_closed() || event.is_error());
                    }
                    if event.is_writable() {
                        shell.writable.push(t);
                    }
                }
            }
        }
        shell.round();
    }
}

/// The shell's state, owned by its one thread.
struct Shell {
    poll: Poll,
    listeners: Listeners,
    socks: Vec<Option<Socket>>,
    free_tokens: Vec<usize>,
    core: Core,
    clock: Clock,
    /// The time of this round.
    now: Micros,
    /// Sockets that became writable this round.
    writable: Vec<usize>,
    /// The read buffer lent to a socket for a read (see `read_peer`).
    scratch: Vec<u8>,
    max_frame: u32,
    keepalive: Duration,
    /// Most connections at once (0: no limit).
    max_connections: usize,
    /// Which TCP peers are taken.
    peers: super::allow::PeerRule,
    /// An accept failed for lack of descriptors: try again every round until it works (the
    /// listener's readiness was consumed, and a full listen queue would never signal again).
    accept_retry: bool,
    /// A failed accept was logged and none has succeeded since (one line, not one a round).
    accept_warned: bool,
    _waker: Arc<mio::Waker>,
}

impl Shell {
    fn new(cfg: HubConfig, mut listeners: Listeners) -> io::Result<Shell> {
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
        // The key of the session tags workers see instead of session ids: kept with the
        // journal, so a request redelivered after a restart shows the same tag.
        let delivery_key = match cfg.journal {
            Some(_) => persistent_key(&cfg.data.join("delivery.key"))?,
            None => [crate::sys::random_u64(), crate::sys::random_u64()],
        };
        let known_file = cfg.journal.as_ref().map(|_| cfg.data.join("proxies"));
        let router = Router::with_known_file(known_file, &cfg.proxy_ids)?;
        let mut rec = Recovered::default();
        let mut lost = Vec::new();
        let store: Box<dyn Store> = match cfg.journal.clone() {
            None => Box::new(MemStore::default()),
            Some(jcfg) => {
                let w = waker.clone();
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
                    pending = rec.pending(),
                    unread = rec.unread(),
                    "journal recovered"
                );
                lost = report.lost.iter().map(|l| l.to_string()).collect();
                Box::new(journal)
            }
        };
        tracing::info!(
            tcp = ?listeners.tcp_addr(),
            unix = ?listeners.unix.as_ref().map(|(_, p)| p.clone()),
            "hub listening"
        );
        let clock = Clock::new();
        let now = clock.now();
        let core_cfg = CoreConfig {
            max_frame: cfg.max_frame,
            quota: cfg.quota,
            keepalive: cfg.keepalive,
            secret: cfg.secret.clone(),
            reply_ttl: cfg.reply_ttl,
            policies: cfg.policies.clone(),
            overdue_grace: cfg.overdue_grace,
            greeting_timeout: cfg.greeting_timeout,
            hub_id,
            answer_reserve: cfg.answer_reserve,
            delivery_key,
        };
        let mut core = Core::new(core_cfg, store, router, rec, now);
        core.note_journal_lost(lost);
        Ok(Shell {
            poll,
            listeners,
            socks: Vec::new(),
            free_tokens: Vec::new(),
            core,
            clock,
            now,
            writable: Vec::new(),
            scratch: Vec::new(),
            max_frame: cfg.max_frame,
            keepalive: cfg.keepalive,
            max_connections: cfg.max_connections,
            peers: super::allow::PeerRule {
                allow_from: cfg.allow_from.clone(),
                loopback_only: cfg.secret.is_empty() && !cfg.allow_remote,
            },
            accept_retry: false,
            accept_warned: false,
            _waker: waker,
        })
    }

    /// The end of a round: timers, the store's commit, acknowledgements, closes and writes.
    fn round(&mut self) {
        if std::mem::take(&mut self.accept_retry) {
            self.accept_tcp();
            self.accept_unix();
        }
        let now = self.now;
        self.core.advance(now);
        let urgent = self.core.awaits_durability();
        self.core.store_mut().commit(urgent);
        self.core.durable(now);
        for t in std::mem::take(&mut self.writable) {
            self.write_peer(t);
        }
        self.flush();
    }

    fn add_peer(&mut self, stream: Stream, addr: String) {
        self.add_peer_refused(stream, addr, None)
    }

    /// Adds a peer; with `refuse`, it is told why and closed once that is written.
    fn add_peer_refused(&mut self, stream: Stream, addr: String, refuse: Option<String>) {
        if std::mem::take(&mut self.accept_warned) {
            tracing::info!("accepting connections again");
        }
        let token = self.free_tokens.pop().unwrap_or_else(|| {
            self.socks.push(None);
            self.socks.len() - 1
        });
        let id = self.core.open(token, addr, self.now);
        let open = self.socks.len() - self.free_tokens.len();
        if let Some(why) = refuse {
            self.core.refuse(token, Status::Refused, &why);
        } else if self.max_connections > 0 && open > self.max_connections {
            // Told why, then closed once that is written.
            self.core.refuse(
                token,
                Status::Busy,
                &format!(
                    "the hub is at its limit of {} connections (--max-connections)",
                    self.max_connections
                ),
            );
        }
        let mut sock = Socket::new(id, stream);
        if let Err(e) = sock.register(self.poll.registry(), Token(token)) {
            tracing::warn!("cannot register a connection: {e}");
            self.core.closed(token, "cannot register", self.now);
            self.free_tokens.push(token);
            return;
        }
        self.socks[token] = Some(sock);
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
                        self.keepalive.as_secs().max(1) as i32 * 2,
                    );
                    // The allow-list; without one and without a secret, a hub is open to
                    // whoever reaches it: loopback only, unless the operator says otherwise.
                    let refuse = self.peers.refuse(addr.ip());
                    self.add_peer_refused(Stream::Tcp(s), addr.to_string(), refuse);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    self.accept_failed(&e);
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
                    self.accept_failed(&e);
                    return;
                }
            }
        }
    }

    /// An accept failed. Out of descriptors: the connections that never said HELLO are dropped,
    /// oldest first, to make room, and accepting is tried again next round (not only when the
    /// listener signals, which it may never do again). Other errors: keep serving those we
    /// have, and try again next round too.
    fn accept_failed(&mut self, e: &io::Error) {
        let out_of_fds = matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE));
        let shed = if out_of_fds {
            let n = self.core.shed_greetings(64, self.now);
            self.apply_closes();
            n
        } else {
            0
        };
        if shed > 0 || !self.accept_warned {
            tracing::warn!(
                "accept failed: {e}; dropped {shed} connections that had not said HELLO; \
                 retrying every round until it works"
            );
            self.accept_warned = true;
        }
        self.accept_retry = true;
    }

    /// Reads from peer `t` until the socket is drained, handling frames as they complete. With
    /// `to_end`, reads until the peer's end of stream instead of stopping at a short read.
    fn read_peer(&mut self, t: usize, to_end: bool) {
        loop {
            let Some(sock) = self.socks.get_mut(t).and_then(|p| p.as_mut()) else {
                return;
            };
            let Some(conn) = self.core.conn(t).filter(|c| c.id == sock.id) else {
                return;
            };
            if conn.closing {
                return;
            }
            // A peer that does not read what the hub writes is not read either, until its
            // output drains: the hub's memory stays bounded whatever a peer does.
            // A caller must keep reading while it writes (the library does, see Conn::flush),
            // or this and its blocked write wait for each other. Workers are never paused: the
            // hub's output to a worker is bounded by dispatch, and their RESULTs must always
            // flow (a worker may stop reading while it writes).
            if conn.pending_out() > OUT_PAUSE && !matches!(conn.role, Role::Worker(_)) {
                sock.paused = true;
                return;
            }
            if sock.inbuf.capacity() == 0 {
                // Read into the shell's buffer; it stays with the socket only while a frame
                // is partly read.
                sock.inbuf = std::mem::take(&mut self.scratch);
            }
            let outcome = sock.read_some();
            if matches!(
                outcome,
                Ok(ReadOutcome::Data | ReadOutcome::Drained | ReadOutcome::Closed)
            ) {
                self.core.received(t, self.now);
            }
            match outcome {
                Ok(ReadOutcome::Data) => self.process_input(t),
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
                    self.drop_socket(t, "closed by peer");
                    return;
                }
                Err(e) => {
                    self.drop_socket(t, &format!("read failed: {e}"));
                    return;
                }
            }
        }
    }

    /// Decodes and hands the core every whole frame in peer `t`'s input.
    fn process_input(&mut self, t: usize) {
        let Some(sock) = self.socks.get_mut(t).and_then(|p| p.as_mut()) else {
            return;
        };
        let id = sock.id;
        let inbuf = std::mem::take(&mut sock.inbuf);
        let mut pos = 0;
        let mut failure = None;
        while pos < inbuf.len() {
            // Before its HELLO a peer is unknown: its first frame may be no larger than a HELLO
            // can be, so it cannot make the hub buffer up to the frame limit.
            let greeting = self
                .core
                .conn(t)
                .is_some_and(|c| matches!(c.role, Role::Greeting));
            let limit = if greeting {
                self.max_frame.min(wire::MAX_HELLO)
            } else {
                self.max_frame
            };
            match wire::decode(&inbuf[pos..], limit) {
                Ok(None) => break,
                Ok(Some((frame, n))) => {
                    pos += n;
                    if let Err(e) = self.core.on_frame(t, frame, self.now) {
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
        self.apply_closes();
        let Some(sock) = self
            .socks
            .get_mut(t)
            .and_then(|p| p.as_mut())
            .filter(|s| s.id == id)
        else {
            return;
        };
        if failure.is_none() && pos < inbuf.len() {
            // A partial frame waits for the rest.
            let mut inbuf = inbuf;
            inbuf.drain(..pos);
            sock.inbuf = inbuf;
        } else if inbuf.capacity() > self.scratch.capacity() {
            // Else the buffer goes back to the shell: an idle connection holds none.
            let mut inbuf = inbuf;
            inbuf.clear();
            self.scratch = inbuf;
        }
        if let Some((status, msg)) = failure {
            self.core.refuse(t, status, &msg);
        }
    }

    /// Drops the sockets of connections the core closed.
    fn apply_closes(&mut self) {
        for (t, id, _why) in self.core.take_closes() {
            if self.socks.get(t).and_then(|s| s.as_ref()).map(|s| s.id) == Some(id) {
                if let Some(mut sock) = self.socks[t].take() {
                    sock.deregister(self.poll.registry());
                    self.free_tokens.push(t);
                }
            }
        }
    }

    /// The socket of `t` is gone: drops it and tells the core.
    fn drop_socket(&mut self, t: usize, why: &str) {
        let Some(mut sock) = self.socks.get_mut(t).and_then(|p| p.take()) else {
            return;
        };
        sock.deregister(self.poll.registry());
        self.free_tokens.push(t);
        if self.core.conn(t).is_some_and(|c| c.id == sock.id) {
            self.core.closed(t, why, self.now);
        }
    }

    /// Writes the core's outbox of `t` as far as the kernel takes it.
    fn write_peer(&mut self, t: usize) {
        let registry = self.poll.registry();
        let Some(sock) = self.socks.get_mut(t).and_then(|p| p.as_mut()) else {
            return;
        };
        let Some(conn) = self.core.conn_mut(t).filter(|c| c.id == sock.id) else {
            return;
        };
        let was = conn.pending_out();
        match sock.write_out(&mut conn.out, &mut conn.out_pos) {
            Ok(true) => {
                sock.set_want_write(registry, Token(t), false);
                if conn.closing {
                    self.drop_socket(t, "closed by the hub");
                    return;
                }
            }
            Ok(false) => sock.set_want_write(registry, Token(t), true),
            Err(e) => {
                self.drop_socket(t, &format!("write failed: {e}"));
                return;
            }
        }
        let left = conn.pending_out();
        if left <= OUT_PAUSE / 2 {
            let resume = std::mem::replace(&mut sock.paused, false);
            if was > OUT_PAUSE / 2 || resume {
                self.core.drained(t, self.now);
            }
            if resume {
                // Read what waited (edge-triggered polling will not report it again).
                self.read_peer(t, false);
            }
        }
    }

    /// Writes every connection with output, until the core has nothing more to say.
    fn flush(&mut self) {
        loop {
            self.apply_closes();
            let dirty = self.core.take_dirty();
            if dirty.is_empty() {
                return;
            }
            for t in dirty {
                self.write_peer(t);
            }
        }
    }

    /// Tells every peer the hub is quitting, writes what the kernel takes, and closes all.
    fn quit(&mut self) {
        tracing::info!(
            "hub quitting: telling {} peers",
            self.socks.iter().flatten().count()
        );
        self.core.quit();
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut events = Events::with_capacity(256);
        loop {
            self.flush();
            if self.socks.iter().all(|s| s.is_none()) || Instant::now() >= deadline {
                break;
            }
            let _ = self.poll.poll(&mut events, Some(Duration::from_millis(20)));
            for event in events.iter() {
                if event.is_writable() {
                    self.write_peer(event.token().0);
                }
            }
        }
        for t in 0..self.socks.len() {
            self.drop_socket(t, "hub shut down");
        }
        if let Some((_, path)) = &self.listeners.unix {
            let _ = std::fs::remove_file(path);
        }
        self.core.store_mut().commit(true);
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

/// The 128-bit key stored in `path` (two words of 16 hex digits), made (and stored, readable by
/// the owner only) on first use.
fn persistent_key(path: &std::path::Path) -> io::Result<[u64; 2]> {
    if let Ok(text) = std::fs::read_to_string(path) {
        let mut words = text.split_whitespace().map(|w| u64::from_str_radix(w, 16));
        if let (Some(Ok(a)), Some(Ok(b))) = (words.next(), words.next()) {
            return Ok([a, b]);
        }
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let key = [crate::sys::random_u64(), crate::sys::random_u64()];
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        writeln!(f, "{:016x} {:016x}", key[0], key[1])?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(key)
}
