//! What each frame does, by the role of the connection it came on.

use super::flights::Flight;
use super::peer::{Caller, Peer, Role, Worker};
use super::records;
use super::router::WorkerRef;
use super::server::Hub;
use super::sessions::SessionState;
use super::stats::{CallerSnapshot, HubSnapshot, ProxySnapshot, Snapshot, WorkerSnapshot};
use super::store;
use crate::journal::Pos;
use crate::status::Status;
use crate::wire::{self, Frame, Hello, Welcome};

/// A frame that ends the connection: the outcome to put in REFUSE, and why.
pub(super) type Fatal = (Status, String);

fn protocol(msg: impl Into<String>) -> Fatal {
    (Status::Protocol, msg.into())
}

/// Most deliveries one worker may hold at once, whatever it asks for.
const MAX_WORKER_CAPACITY: u32 = 65_536;

/// A worker whose unwritten output is over this is treated as full.
const WORKER_OUT_LIMIT: usize = 8 * 1024 * 1024;

/// Acknowledge at once when this many accepted requests are waiting for an ACK, so a caller's
/// resend buffer stays small even when no reply comes to carry the ACK.
const ACK_EAGER: u64 = 4096;

/// Microseconds since the epoch (journal timestamps; latency across restarts).
pub(super) fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

impl Hub {
    fn peer(&mut self, t: usize) -> Option<&mut Peer> {
        self.peers.get_mut(t).and_then(|p| p.as_mut())
    }

    /// Handles one frame from peer `t`.
    pub(super) fn on_frame(&mut self, t: usize, frame: Frame<'_>) -> Result<(), Fatal> {
        let now = self.now;
        let Some(peer) = self.peer(t) else {
            return Ok(());
        };
        if peer.closing {
            return Ok(());
        }
        match (&mut peer.role, frame) {
            (Role::Greeting, Frame::Hello(h)) => self.on_hello(t, h),
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
                wire::encode_pong(&mut peer.out, nonce);
                peer.last_tx = now;
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
                    body,
                    ..
                },
            ) => self.on_request(t, id, proxy, flags, body),
            (Role::Caller(c), Frame::Cancel { id }) => {
                // The caller dropped the request: its reply, if it comes, is not kept.
                let session = c.session;
                self.finish_reply(session, id);
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
            ) => self.on_result(t, tag, status, rcode, body),
            (Role::Monitor, Frame::StatsRequest) => {
                let json = serde_json::to_vec(&self.snapshot())
                    .map_err(|e| (Status::System, e.to_string()))?;
                if let Some(peer) = self.peer(t) {
                    wire::encode_stats(&mut peer.out, &json);
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

    fn on_hello(&mut self, t: usize, h: Hello<'_>) -> Result<(), Fatal> {
        let now = self.now;
        if h.version != wire::VERSION {
            return Err((
                Status::Refused,
                format!(
                    "protocol version {} is not supported (this hub speaks {})",
                    h.version,
                    wire::VERSION
                ),
            ));
        }
        if !self.cfg.secret.is_empty() && !constant_time_eq(h.secret, &self.cfg.secret) {
            return Err((Status::Refused, "wrong or missing shared secret".into()));
        }
        let name = String::from_utf8_lossy(h.name).into_owned();
        let role = match h.role {
            wire::Role::Caller => {
                if h.session == 0 {
                    return Err((
                        Status::Invalid,
                        "a caller's session id must not be 0".into(),
                    ));
                }
                Role::Caller(Caller {
                    session: h.session,
                    unacked: Default::default(),
                    ack_upto: 0,
                    ack_sent: 0,
                    ack_wanted: false,
                    last_id: 0,
                })
            }
            wire::Role::Worker => {
                if h.proxies.is_empty() {
                    return Err((
                        Status::Invalid,
                        "a worker must serve at least one proxy".into(),
                    ));
                }
                if let Some(p) = h.proxies.iter().find(|p| **p < 0) {
                    return Err((Status::Invalid, format!("proxy id {p} is negative")));
                }
                Role::Worker(Worker {
                    proxies: h.proxies.clone(),
                    capacity: h.capacity.clamp(1, MAX_WORKER_CAPACITY),
                    inflight: 0,
                    delivered: 0,
                    results: 0,
                    failures: 0,
                })
            }
            wire::Role::Monitor => Role::Monitor,
        };
        let is_caller = matches!(role, Role::Caller(_));
        let welcome = Welcome {
            version: wire::VERSION,
            max_frame: self.cfg.max_frame,
            quota: if is_caller { self.cfg.quota } else { 0 },
            keepalive_ms: self.cfg.keepalive.as_millis().min(u32::MAX as u128) as u32,
            session: h.session,
            hub_id: self.hub_id,
        };
        // A session that comes back on a new connection leaves its old one.
        let mut replaced = None;
        if is_caller {
            let ss = self
                .sessions
                .entry(h.session)
                .or_insert_with(SessionState::new);
            if let Some((old_t, old_id)) = ss.conn {
                if old_t != t {
                    replaced = Some((old_t, old_id));
                }
            }
        }
        if let Some((old_t, old_id)) = replaced {
            if self.peer(old_t).is_some_and(|p| p.id == old_id) {
                self.close_peer(old_t, "replaced by a new connection of its session");
            }
        }
        let Some(peer) = self.peer(t) else {
            return Ok(());
        };
        peer.name = name.clone();
        peer.role = role;
        let conn = peer.id;
        wire::encode_welcome(&mut peer.out, &welcome);
        peer.last_tx = now;
        if matches!(peer.role, Role::Worker(_)) {
            tracing::info!("{} joined", peer.describe());
        } else {
            tracing::debug!("{} joined", peer.describe());
        }
        self.mark_dirty(t);
        match h.role {
            wire::Role::Worker => {
                self.router
                    .add_worker(WorkerRef { token: t, conn }, &h.proxies);
                for p in &h.proxies {
                    self.dispatch(*p);
                }
            }
            wire::Role::Caller => {
                if let Some(ss) = self.sessions.get_mut(&h.session) {
                    ss.conn = Some((t, conn));
                    ss.detached_at = None;
                    ss.name = name;
                }
                // Every answer the session has not confirmed goes out again: it may have been
                // lost with the old connection. The library drops what it already has.
                let held: Vec<Pos> = self
                    .sessions
                    .get(&h.session)
                    .map(|ss| ss.replies.values().copied().collect())
                    .unwrap_or_default();
                for rpos in held {
                    self.send_stored_reply(t, rpos);
                }
            }
            wire::Role::Monitor => {}
        }
        Ok(())
    }

    fn on_request(
        &mut self,
        t: usize,
        id: u64,
        proxy: i32,
        flags: u32,
        body: &[u8],
    ) -> Result<(), Fatal> {
        let quota = self.cfg.quota;
        let Some(Peer {
            role: Role::Caller(c),
            ..
        }) = self.peer(t)
        else {
            return Ok(());
        };
        if id == 0 {
            return Err(protocol("request id 0 is reserved"));
        }
        if id <= c.last_id {
            return Err(protocol(format!(
                "request id {id} is not above the previous one on this connection ({})",
                c.last_id
            )));
        }
        c.last_id = id;
        let session = c.session;
        let Some(ss) = self.sessions.get_mut(&session) else {
            return Ok(());
        };
        if id <= ss.accepted_upto {
            // A resend after a reconnect: the request is already here. Answer again if the
            // answer is held; acknowledge it once what is written now is durable.
            let held = ss.replies.get(&id).copied();
            let at = self.store.written();
            if let Some(rpos) = held {
                self.send_stored_reply(t, rpos);
            }
            self.push_unacked(t, at, id);
            return Ok(());
        }
        ss.accepted_upto = id;
        ss.requests += 1;
        let inflight = ss.inflight;
        let oneway = flags & wire::REQ_ONEWAY != 0;
        if proxy < 0 {
            self.reject(
                t,
                session,
                id,
                oneway,
                Status::Invalid,
                "proxy id must not be negative",
            );
            return Ok(());
        }
        if !self.router.is_known(proxy) {
            self.router.proxy(proxy).stats.no_route += 1;
            let msg = format!("no worker serves proxy {proxy}");
            self.reject(t, session, id, oneway, Status::NoRoute, &msg);
            return Ok(());
        }
        if inflight >= quota {
            self.busy += 1;
            let msg = format!("over quota: {quota} requests of this caller are unanswered");
            self.reject(t, session, id, oneway, Status::Busy, &msg);
            return Ok(());
        }
        let head = records::accept_head(session, id, proxy, flags, self.now_us);
        let pos = match self.store.append(records::ACCEPT, &[&head, body], true) {
            Ok(p) => p,
            Err(e) => {
                self.busy += 1;
                let msg = store::describe(&e);
                self.reject(t, session, id, oneway, Status::Busy, &msg);
                return Ok(());
            }
        };
        self.store.pin(pos);
        if let Some(ss) = self.sessions.get_mut(&session) {
            ss.inflight += 1;
        }
        let p = self.router.proxy(proxy);
        p.stats.requests += 1;
        p.queue.push_back(pos);
        self.push_unacked(t, pos, id);
        self.dispatch(proxy);
        Ok(())
    }

    /// Notes that request `id`, whose record is at `pos`, awaits its ACK on caller `t`.
    fn push_unacked(&mut self, t: usize, pos: Pos, id: u64) {
        if let Some(Peer {
            role: Role::Caller(c),
            ..
        }) = self.peer(t)
        {
            match c.unacked.back_mut() {
                // A resend (at the position written so far) shares the last checkpoint.
                Some(last) if last.0 >= pos => last.1 = last.1.max(id),
                _ => c.unacked.push_back((pos, id)),
            }
            self.note_ack_waiter(t);
        }
    }

    /// Answers a request the hub will not run (no route, over quota, journal full, ...): the
    /// answer is kept like a worker's, so a resend gets it again.
    fn reject(&mut self, t: usize, session: u64, id: u64, oneway: bool, status: Status, msg: &str) {
        let now = self.now;
        if let Some(ss) = self.sessions.get_mut(&session) {
            ss.errors += 1;
        }
        if oneway {
            tracing::debug!("one-way request {id} dropped: {msg}");
            let at = self.store.written();
            self.push_unacked(t, at, id);
            return;
        }
        let head = records::reply_head(session, id, status.code(), 0);
        match self
            .store
            .append(records::REPLY, &[&head, msg.as_bytes()], true)
        {
            Ok(rpos) => {
                self.store.pin(rpos);
                if let Some(ss) = self.sessions.get_mut(&session) {
                    ss.replies.insert(id, rpos);
                }
                self.push_unacked(t, rpos, id);
            }
            Err(e) => {
                // Not held for a resend (the journal is full), but acknowledged all the same,
                // so a flush waiting for it returns.
                tracing::warn!(
                    "answer to request {id} not journaled: {}",
                    store::describe(&e)
                );
                let at = self.store.written();
                self.push_unacked(t, at, id);
            }
        }
        let Some(peer) = self.peer(t) else {
            return;
        };
        wire::encode_reply(&mut peer.out, id, status.code(), 0, msg.as_bytes());
        peer.last_tx = now;
        self.mark_dirty(t);
    }

    /// Hands queued requests of `proxy` to its least busy workers while any has room.
    pub(super) fn dispatch(&mut self, proxy: i32) {
        let now = self.now;
        let Some(p) = self.router.proxies.get_mut(&proxy) else {
            return;
        };
        while let Some(&pos) = p.queue.front() {
            // The least busy worker with room.
            let mut best: Option<(WorkerRef, u32)> = None;
            for w in &p.workers {
                let Some(peer) = self.peers.get(w.token).and_then(|x| x.as_ref()) else {
                    continue;
                };
                if let Role::Worker(wk) = &peer.role {
                    if !peer.closing
                        && wk.inflight < wk.capacity
                        && peer.pending_out() < WORKER_OUT_LIMIT
                        && best.is_none_or(|(_, n)| wk.inflight < n)
                    {
                        best = Some((*w, wk.inflight));
                    }
                }
            }
            let Some((w, _)) = best else {
                return;
            };
            p.queue.pop_front();
            let Some(a) = self.store.read(pos).and_then(|(k, payload)| {
                if k == records::ACCEPT {
                    records::accept(payload)
                } else {
                    None
                }
            }) else {
                tracing::error!("journal record at {pos:#x} is not a request; dropped");
                continue;
            };
            // A caller that does not read its replies gets no more until it does: its request
            // is held aside (the queue goes on for the others) and put back when its output
            // drains, so the hub's memory stays bounded.
            let backlogged = self
                .sessions
                .get(&a.session)
                .and_then(|ss| ss.conn)
                .and_then(|(t, id)| self.peers.get(t)?.as_ref().filter(|c| c.id == id))
                .is_some_and(|c| c.pending_out() > super::server::OUT_PAUSE);
            if backlogged {
                self.held
                    .entry(a.session)
                    .or_default()
                    .push_back((proxy, pos));
                continue;
            }
            let attempt = if self.attempts.is_empty() {
                1
            } else {
                self.attempts.remove(&pos).unwrap_or(0) + 1
            };
            let tag = self.flights.insert(Flight {
                session: a.session,
                request: a.request,
                proxy,
                oneway: a.flags & wire::REQ_ONEWAY != 0,
                attempt,
                worker: w,
                accept_pos: pos,
                accepted_us: a.accepted_us,
            });
            let Some(peer) = self.peers.get_mut(w.token).and_then(|x| x.as_mut()) else {
                continue;
            };
            wire::encode_deliver(
                &mut peer.out,
                tag,
                a.session,
                a.request,
                proxy,
                attempt,
                a.body,
            );
            peer.last_tx = now;
            if let Role::Worker(wk) = &mut peer.role {
                wk.inflight += 1;
                wk.delivered += 1;
            }
            if !peer.dirty {
                peer.dirty = true;
                self.dirty.push(w.token);
            }
            let rec = records::deliver(a.session, a.request, attempt);
            if let Err(e) = self.store.append(records::DELIVER, &[&rec], false) {
                tracing::debug!("delivery not journaled: {e}");
            }
        }
    }

    fn on_result(
        &mut self,
        t: usize,
        tag: u64,
        status: i32,
        rcode: i32,
        body: &[u8],
    ) -> Result<(), Fatal> {
        let Some(peer) = self.peer(t) else {
            return Ok(());
        };
        let conn = peer.id;
        if self.flights.get(tag).is_none_or(|f| f.worker.conn != conn) {
            return Err(protocol(format!(
                "RESULT for tag {tag:#x}, which was not delivered to this worker"
            )));
        }
        let Some(f) = self.flights.remove(tag) else {
            return Ok(());
        };
        let status = match Status::from_code(status) {
            Status::Ok if status == 0 => Status::Ok,
            Status::Ok => Status::System,
            s => s,
        };
        if let Some(Peer {
            role: Role::Worker(w),
            ..
        }) = self.peer(t)
        {
            w.inflight = w.inflight.saturating_sub(1);
            w.results += 1;
            if status != Status::Ok {
                w.failures += 1;
            }
        }
        let p = self.router.proxy(f.proxy);
        p.stats
            .latency
            .record(self.now_us.saturating_sub(f.accepted_us));
        if status == Status::Ok {
            p.stats.replies += 1;
        } else {
            p.stats.errors += 1;
        }
        self.answer(&f, status, rcode, body);
        self.dispatch(f.proxy);
        Ok(())
    }

    /// Puts the requests held aside for `session` (see `dispatch`) back at the head of their
    /// queues, in their order, and dispatches them.
    pub(super) fn release_held(&mut self, session: u64) {
        let Some(held) = self.held.remove(&session) else {
            return;
        };
        let mut proxies = Vec::new();
        for (proxy, pos) in held.into_iter().rev() {
            self.router.proxy(proxy).queue.push_front(pos);
            if !proxies.contains(&proxy) {
                proxies.push(proxy);
            }
        }
        for proxy in proxies {
            self.dispatch(proxy);
        }
    }

    /// Records a delivered request's outcome and sends it to its caller if connected.
    fn answer(&mut self, f: &Flight, status: Status, rcode: i32, body: &[u8]) {
        let now = self.now;
        let Some(ss) = self.sessions.get_mut(&f.session) else {
            self.store.unpin(f.accept_pos);
            return;
        };
        ss.inflight = ss.inflight.saturating_sub(1);
        if status == Status::Ok {
            ss.ok += 1;
        } else {
            ss.errors += 1;
        }
        let conn = ss.conn;
        if f.oneway {
            let rec = records::done(f.session, f.request);
            let _ = self.store.append(records::DONE, &[&rec], false);
            self.store.unpin(f.accept_pos);
            return;
        }
        let head = records::reply_head(f.session, f.request, status.code(), rcode);
        match self.store.append(records::REPLY, &[&head, body], true) {
            Ok(rpos) => {
                self.store.pin(rpos);
                if let Some(ss) = self.sessions.get_mut(&f.session) {
                    ss.replies.insert(f.request, rpos);
                }
                self.store.unpin(f.accept_pos);
            }
            // The journal is full: the answer goes to the caller if it is here, and the request
            // stays journaled, so a restart runs it again rather than lose its answer.
            Err(e) => tracing::warn!(
                "answer to request {} not journaled ({}); kept as unanswered",
                f.request,
                store::describe(&e)
            ),
        }
        let Some((t, id)) = conn else {
            return;
        };
        let Some(peer) = self.peers.get_mut(t).and_then(|x| x.as_mut()) else {
            return;
        };
        if peer.id != id {
            return;
        }
        Hub::send_ack(peer);
        wire::encode_reply(&mut peer.out, f.request, status.code(), rcode, body);
        peer.last_tx = now;
        if !peer.dirty {
            peer.dirty = true;
            self.dirty.push(t);
        }
    }

    /// Sends the answer stored at `rpos` to caller `t`.
    fn send_stored_reply(&mut self, t: usize, rpos: Pos) {
        let now = self.now;
        let Some(r) = self.store.read(rpos).and_then(|(k, payload)| {
            if k == records::REPLY {
                records::reply(payload)
            } else {
                None
            }
        }) else {
            return;
        };
        let Some(peer) = self.peers.get_mut(t).and_then(|x| x.as_mut()) else {
            return;
        };
        wire::encode_reply(&mut peer.out, r.request, r.status, r.rcode, r.body);
        peer.last_tx = now;
        if !peer.dirty {
            peer.dirty = true;
            self.dirty.push(t);
        }
    }

    /// The caller has the answer to `id` (or gave it up): it is finished.
    pub(super) fn finish_reply(&mut self, session: u64, id: u64) {
        let Some(rpos) = self
            .sessions
            .get_mut(&session)
            .and_then(|ss| ss.replies.remove(&id))
        else {
            return;
        };
        let rec = records::done(session, id);
        let _ = self.store.append(records::DONE, &[&rec], false);
        self.store.unpin(rpos);
    }

    /// Queues the ACK a caller is owed, if any. ACKs are not sent per request: they ride on the
    /// next REPLY to that caller, answer its PING (which is how `flush` asks for one), go out
    /// when many are owed, or at the next tick; so a synchronous call costs one write each way.
    pub(super) fn send_ack(peer: &mut Peer) -> bool {
        if peer.closing {
            return false;
        }
        if let Role::Caller(c) = &mut peer.role {
            if c.ack_upto > c.ack_sent {
                c.ack_sent = c.ack_upto;
                c.ack_wanted = false;
                wire::encode_ack(&mut peer.out, c.ack_upto);
                return true;
            }
        }
        false
    }

    /// Releases the ACKs of requests the store now holds durably, and sends those that are
    /// wanted now (after a PING, or when many are owed).
    pub(super) fn release_acks(&mut self) {
        let now = self.now;
        if self.ack_waiters.is_empty() {
            return;
        }
        let durable = self.store.durable();
        let waiters = std::mem::take(&mut self.ack_waiters);
        for t in waiters {
            let Some(peer) = self.peers.get_mut(t).and_then(|p| p.as_mut()) else {
                continue;
            };
            let Role::Caller(c) = &mut peer.role else {
                continue;
            };
            while let Some(&(pos, id)) = c.unacked.front() {
                if pos >= durable {
                    break;
                }
                c.unacked.pop_front();
                c.ack_upto = c.ack_upto.max(id);
            }
            let owed = c.ack_upto > c.ack_sent;
            let send_now = owed && (c.ack_wanted || c.ack_upto - c.ack_sent >= ACK_EAGER);
            let still_waiting = !c.unacked.is_empty() || (owed && !send_now);
            if send_now && Hub::send_ack(peer) {
                peer.last_tx = now;
                if !peer.dirty {
                    peer.dirty = true;
                    self.dirty.push(t);
                }
            }
            if still_waiting {
                self.ack_waiters.push(t);
            }
        }
    }

    /// Remembers that caller `t` has ACKs pending.
    fn note_ack_waiter(&mut self, t: usize) {
        if !self.ack_waiters.contains(&t) {
            self.ack_waiters.push(t);
        }
    }

    /// Settles what a closed peer leaves behind.
    pub(super) fn settle_closed(&mut self, t: usize, peer: Peer) {
        let now = self.now;
        match peer.role {
            Role::Greeting | Role::Monitor => {}
            Role::Caller(c) => {
                // The session stays: its requests go on, their answers wait for it (in the
                // journal, so nothing needs holding aside any more).
                if let Some(ss) = self.sessions.get_mut(&c.session) {
                    if ss.conn.is_some_and(|(tok, id)| tok == t && id == peer.id) {
                        ss.conn = None;
                        ss.detached_at = Some(now);
                    }
                }
                self.ack_waiters.retain(|x| *x != t);
                self.release_held(c.session);
            }
            Role::Worker(w) => {
                let me = WorkerRef {
                    token: t,
                    conn: peer.id,
                };
                self.router.remove_worker(me, &w.proxies);
                // Its unanswered requests go back to the head of their queues, oldest first,
                // and are delivered again (to another worker, or when one connects).
                let mut flights = self.flights.take_delivered_to(peer.id);
                flights.sort_by_key(|f| std::cmp::Reverse(f.accept_pos));
                for f in flights {
                    self.attempts.insert(f.accept_pos, f.attempt);
                    let p = self.router.proxy(f.proxy);
                    p.queue.push_front(f.accept_pos);
                    p.stats.redelivered += 1;
                }
                for proxy in &w.proxies {
                    self.dispatch(*proxy);
                }
            }
        }
    }

    /// The statistics document.
    pub(super) fn snapshot(&self) -> Snapshot {
        let mut callers = Vec::new();
        let mut workers = Vec::new();
        for peer in self.peers.iter().flatten() {
            if let Role::Worker(w) = &peer.role {
                workers.push(WorkerSnapshot {
                    name: peer.name.clone(),
                    addr: peer.addr.clone(),
                    proxies: w.proxies.clone(),
                    capacity: w.capacity,
                    inflight: w.inflight,
                    delivered: w.delivered,
                    results: w.results,
                    failures: w.failures,
                });
            }
        }
        for (id, ss) in &self.sessions {
            let addr = ss
                .conn
                .and_then(|(t, _)| self.peers.get(t).and_then(|p| p.as_ref()))
                .map(|p| p.addr.clone())
                .unwrap_or_else(|| "-".into());
            callers.push(CallerSnapshot {
                name: ss.name.clone(),
                // Not the id itself: whoever knows a session id can resume it.
                session: format!("{:08x}", self.session_tag(*id)),
                addr,
                connected: ss.conn.is_some(),
                requests: ss.requests,
                replies: ss.ok,
                errors: ss.errors,
                inflight: ss.inflight,
                unread: ss.replies.len(),
            });
        }
        callers.sort_by(|a, b| a.name.cmp(&b.name));
        let mut proxies: Vec<ProxySnapshot> = self
            .router
            .proxies
            .iter()
            .map(|(id, p)| ProxySnapshot {
                id: *id,
                workers: p.workers.len(),
                queued: p.queue.len(),
                requests: p.stats.requests,
                replies: p.stats.replies,
                errors: p.stats.errors,
                no_route: p.stats.no_route,
                redelivered: p.stats.redelivered,
                p50_us: p.stats.latency.quantile(0.5),
                p99_us: p.stats.latency.quantile(0.99),
                mean_us: p.stats.latency.mean(),
            })
            .collect();
        proxies.sort_by_key(|p| p.id);
        Snapshot {
            hub: HubSnapshot {
                id: format!("{:016x}", self.hub_id),
                uptime_s: self.started.elapsed().as_secs(),
                connections: self.peers.iter().flatten().count(),
                inflight: self.flights.len(),
                queued: self
                    .router
                    .proxies
                    .values()
                    .map(|p| p.queue.len())
                    .sum::<usize>()
                    + self.held.values().map(|h| h.len()).sum::<usize>(),
                busy: self.busy,
                protocol_errors: self.protocol_errors,
                journal_segments: self.store.segments(),
                journal_full: self.store.is_full(),
            },
            callers,
            workers,
            proxies,
        }
    }
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
        Frame::Deliver { .. } => "DELIVER",
        Frame::Result { .. } => "RESULT",
        Frame::Ping { .. } => "PING",
        Frame::Pong { .. } => "PONG",
        Frame::StatsRequest => "STATS_REQUEST",
        Frame::Stats { .. } => "STATS",
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
