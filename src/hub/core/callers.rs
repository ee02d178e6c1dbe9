//! Callers: greeting, requests, cancels, DONE, acknowledgements, and answers going back.

use super::conn::{CallerConn, Conn, Role, Token, WorkerConn};
use super::records::{self, AcceptHead};
use super::router::WorkerRef;
use super::sessions::SessionState;
use super::timers::Timer;
use super::{
    micros, protocol, Core, Fatal, Micros, Mode, Req, ReqState, SessionId, Tag, ACK_DELAY,
};
use crate::hub::store;
use crate::journal::{Draw, Pos};
use crate::status::Status;
use crate::wire::{self, Hello, Welcome};

/// Most deliveries one worker may hold at once, whatever it asks for.
const MAX_WORKER_CAPACITY: u32 = 65_536;

/// Acknowledge at once when this many accepted requests are waiting for an ACK, so a caller's
/// resend buffer stays small even when no reply comes to carry the ACK.
const ACK_EAGER: u64 = 4096;

/// The mode bits of REQUEST flags (the hub journals the mode it resolved).
const MODE_BITS: u32 =
    wire::REQ_ONEWAY | wire::REQ_QUEUE_ON_TIMEOUT | wire::REQ_ASYNC | wire::REQ_SYNC;

impl Core {
    pub(super) fn on_hello(&mut self, t: Token, h: Hello<'_>, now: Micros) -> Result<(), Fatal> {
        if h.version < wire::MIN_VERSION {
            return Err((
                Status::Refused,
                format!(
                    "protocol version {} is not supported (this hub speaks {} to {})",
                    h.version,
                    wire::MIN_VERSION,
                    wire::VERSION
                ),
            ));
        }
        let version = h.version.min(wire::VERSION);
        if !self.cfg.secret.is_empty() && !constant_time_eq(h.secret, &self.cfg.secret) {
            return Err((Status::Refused, "wrong or missing shared secret".into()));
        }
        let name = String::from_utf8_lossy(h.name).into_owned();
        let session = SessionId(h.session);
        let role = match h.role {
            wire::Role::Caller => {
                if h.session == 0 {
                    return Err((
                        Status::Invalid,
                        "a caller's session id must not be 0".into(),
                    ));
                }
                Role::Caller(CallerConn {
                    session,
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
                Role::Worker(WorkerConn {
                    proxies: h.proxies.clone(),
                    capacity: h.capacity.clamp(1, MAX_WORKER_CAPACITY),
                    inflight: 0,
                    overdue: 0,
                    solo: false,
                    watch: Default::default(),
                    watch_due: None,
                    delivered: 0,
                    results: 0,
                    failures: 0,
                })
            }
            wire::Role::Monitor => Role::Monitor,
        };
        let is_caller = matches!(role, Role::Caller(_));
        let welcome = Welcome {
            version,
            max_frame: self.cfg.max_frame,
            quota: if is_caller { self.cfg.quota } else { 0 },
            keepalive_ms: self.cfg.keepalive.as_millis().min(u32::MAX as u128) as u32,
            session: h.session,
            hub_id: self.cfg.hub_id,
        };
        // A session that comes back on a new connection leaves its old one.
        if is_caller {
            let ss = self
                .sessions
                .entry(session)
                .or_insert_with(|| SessionState::new(now));
            if let Some((old_t, old_id)) = ss.conn {
                if old_t != t && self.conn(old_t).is_some_and(|c| c.id == old_id) {
                    self.close(old_t, "replaced by a new connection of its session", now);
                }
            }
        }
        let Some(conn) = self.conn_mut(t) else {
            return Ok(());
        };
        conn.name = name.clone();
        conn.role = role;
        conn.version = version;
        let id = conn.id;
        wire::encode_welcome(&mut conn.out, &welcome);
        conn.last_tx = now;
        if matches!(conn.role, Role::Worker(_)) {
            tracing::info!("{} joined", conn.describe());
        } else {
            tracing::debug!("{} joined", conn.describe());
        }
        self.mark_dirty(t);
        match h.role {
            wire::Role::Worker => {
                self.router
                    .add_worker(WorkerRef { token: t, conn: id }, &h.proxies);
                for p in &h.proxies {
                    self.dispatch(*p, now);
                }
            }
            wire::Role::Caller => {
                if let Some(ss) = self.sessions.get_mut(&session) {
                    ss.conn = Some((t, id));
                    ss.detached_at = None;
                    ss.name = name;
                }
                // Every answer the session has not confirmed goes out again: it may have been
                // lost with the old connection. The library drops what it already has.
                let held: Vec<Pos> = self
                    .sessions
                    .get(&session)
                    .map(|ss| ss.replies.values().copied().collect())
                    .unwrap_or_default();
                for rpos in held {
                    self.send_stored_reply(t, rpos, now);
                }
            }
            wire::Role::Monitor => {}
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_request(
        &mut self,
        t: Token,
        id: u64,
        proxy: i32,
        flags: u32,
        timeout_ms: u32,
        body: &[u8],
        now: Micros,
    ) -> Result<(), Fatal> {
        let quota = self.cfg.quota;
        let Some(Conn {
            role: Role::Caller(c),
            version,
            ..
        }) = self.conn_mut(t)
        else {
            return Ok(());
        };
        let version = *version;
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
                self.send_stored_reply(t, rpos, now);
            }
            self.push_unacked(t, at, id);
            return Ok(());
        }
        ss.accepted_upto = id;
        ss.requests += 1;
        let inflight = ss.inflight;
        let chosen = Mode::of_flags(flags);
        let oneway = chosen == Some(Mode::Oneway);
        // A request that names a service: resolved here, once; the journal keeps the proxy.
        let routed = flags & wire::REQ_SERVICE != 0;
        let (proxy, flags, body) = if routed {
            let Some((service, rest)) = wire::split_service(body) else {
                let msg = "the request's service name is missing or malformed";
                self.reject(t, session, id, oneway, Status::Invalid, msg, now);
                return Ok(());
            };
            match self.cfg.policies.routes.get(service) {
                Some(&p) => (p, flags & !wire::REQ_SERVICE, rest),
                None => {
                    let msg = format!("no route for service \"{service}\"");
                    self.reject(t, session, id, oneway, Status::NoRoute, &msg, now);
                    return Ok(());
                }
            }
        } else {
            (proxy, flags, body)
        };
        if proxy < 0 {
            let msg = "proxy id must not be negative";
            self.reject(t, session, id, oneway, Status::Invalid, msg, now);
            return Ok(());
        }
        // A route declares its proxy: a request for it waits for a worker, as one for a proxy
        // in proxy-ids does.
        if !routed && !self.router.is_known(proxy) {
            self.router.proxy(proxy).stats.no_route += 1;
            let msg = format!("no worker serves proxy {proxy}");
            self.reject(t, session, id, oneway, Status::NoRoute, &msg, now);
            return Ok(());
        }
        if inflight >= quota {
            self.counters.busy += 1;
            let msg = format!("over quota: {quota} requests of this caller are unanswered");
            self.reject(t, session, id, oneway, Status::Busy, &msg, now);
            return Ok(());
        }
        let mode = chosen.unwrap_or(self.cfg.policies.of(proxy).mode);
        let deadline_us = if mode == Mode::Sync && timeout_ms > 0 {
            now + timeout_ms as u64 * 1000
        } else {
            0
        };
        let head = records::accept_head(&AcceptHead {
            session: session.0,
            request: id,
            proxy,
            flags: (flags & !MODE_BITS) | mode.flag(),
            accepted_us: now,
            deadline_us,
            hops: 0,
        });
        let owed = self.owed_per_request();
        let pos = match self
            .store
            .append(records::ACCEPT, &[&head, body], true, Draw::New(owed))
        {
            Ok(p) => p,
            Err(e) => {
                self.counters.busy += 1;
                let msg = store::describe(&e);
                self.reject(t, session, id, oneway, Status::Busy, &msg, now);
                return Ok(());
            }
        };
        self.store.pin(pos);
        if let Some(ss) = self.sessions.get_mut(&session) {
            ss.inflight += 1;
        }
        self.reqs.insert(
            (session, id),
            Req {
                pos,
                deadline_us,
                proxy,
                attempt: 0,
                failures: 0,
                hops: 0,
                mode,
                state: ReqState::Queued,
                suspect: false,
                tag: Tag(0),
            },
        );
        if deadline_us != 0 {
            self.timers.at(deadline_us, Timer::Deadline(session, id));
            self.compact_timers();
        }
        let p = self.router.proxy(proxy);
        p.stats.requests += 1;
        if matches!(mode, Mode::QueueOnTimeout | Mode::Async) {
            p.stats.outcomes.queued += 1;
        }
        p.queue.push_back(session, id);
        p.queued += 1;
        // The caller's library must know when the proxy's default parks the answer.
        if chosen.is_none() && version >= 2 {
            let notice = match mode {
                Mode::QueueOnTimeout => Some(1),
                Mode::Async => Some(2),
                _ => None,
            };
            if let (Some(m), Some(c)) = (notice, self.conn_mut(t)) {
                wire::encode_queued(&mut c.out, id, m);
                self.mark_dirty(t);
            }
        }
        self.push_unacked(t, pos, id);
        self.dispatch(proxy, now);
        Ok(())
    }

    /// The caller cancels request `id`: waiting, it is removed for good (journaled); held by
    /// a worker, the worker is told and its answer will be dropped; answered, the answer is
    /// forgotten.
    pub(super) fn on_cancel(&mut self, session: SessionId, id: u64) {
        let Some(req) = self.reqs.remove(&(session, id)) else {
            self.finish_reply(session, id);
            return;
        };
        self.unqueue(&req);
        self.router.proxy(req.proxy).stats.outcomes.cancelled += 1;
        if req.state == ReqState::Delivered {
            self.abandon_delivery(req.tag, super::flights::Fate::Cancelled);
        }
        let rec = records::done(session.0, id);
        let owed = self.owed_per_request();
        let _ = self.append_owed(records::DONE, &[&rec], false, owed);
        self.store.unpin(req.pos);
        if let Some(ss) = self.sessions.get_mut(&session) {
            ss.inflight = ss.inflight.saturating_sub(1);
            ss.errors += 1;
        }
        tracing::debug!("request {id} cancelled by its caller");
    }

    /// Takes `req` out of its proxy's waiting counts (it leaves the queue or the redo queue).
    pub(super) fn unqueue(&mut self, req: &Req) {
        let p = self.router.proxy(req.proxy);
        match req.state {
            ReqState::Queued => p.queued = p.queued.saturating_sub(1),
            ReqState::Redo => p.redo = p.redo.saturating_sub(1),
            ReqState::Delivered => {}
        }
    }

    /// Notes that request `id`, whose record is at `pos`, awaits its ACK on caller `t`.
    pub(super) fn push_unacked(&mut self, t: Token, pos: Pos, id: u64) {
        if let Some(Conn {
            role: Role::Caller(c),
            ..
        }) = self.conn_mut(t)
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
    #[allow(clippy::too_many_arguments)]
    fn reject(
        &mut self,
        t: Token,
        session: SessionId,
        id: u64,
        oneway: bool,
        status: Status,
        msg: &str,
        now: Micros,
    ) {
        if let Some(ss) = self.sessions.get_mut(&session) {
            ss.errors += 1;
        }
        if oneway {
            tracing::debug!("one-way request {id} dropped: {msg}");
            let at = self.store.written();
            self.push_unacked(t, at, id);
            return;
        }
        let head = records::reply_head(session.0, id, status.code(), 0);
        // Its DONE will be owed.
        let draw = Draw::Spare(records::DONE_BYTES);
        match self
            .store
            .append(records::REPLY, &[&head, msg.as_bytes()], true, draw)
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
                tracing::debug!(
                    "answer to request {id} not journaled: {}",
                    store::describe(&e)
                );
                let at = self.store.written();
                self.push_unacked(t, at, id);
            }
        }
        let Some(c) = self.conn_mut(t) else {
            return;
        };
        wire::encode_reply(&mut c.out, id, status.code(), 0, msg.as_bytes());
        c.last_tx = now;
        self.mark_dirty(t);
    }

    /// Records the final outcome of request (`session`, `request`) and sends it to the caller
    /// if connected. `req` is already out of the request table.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn answer(
        &mut self,
        session: SessionId,
        request: u64,
        req: &Req,
        status: Status,
        rcode: i32,
        body: &[u8],
        now: Micros,
    ) {
        let accept_pos = req.pos;
        let owed = self.owed_per_request();
        let Some(ss) = self.sessions.get_mut(&session) else {
            self.store.release(owed as u64);
            self.store.unpin(accept_pos);
            return;
        };
        ss.inflight = ss.inflight.saturating_sub(1);
        if status == Status::Ok {
            ss.ok += 1;
        } else {
            ss.errors += 1;
        }
        let conn = ss.conn;
        if req.mode == Mode::Oneway {
            let rec = records::done(session.0, request);
            let _ = self.append_owed(records::DONE, &[&rec], false, owed);
            self.store.unpin(accept_pos);
            return;
        }
        let head = records::reply_head(session.0, request, status.code(), rcode);
        let draw = Draw::Owed(owed - records::DONE_BYTES);
        let kept = match self
            .store
            .append(records::REPLY, &[&head, body], true, draw)
        {
            Ok(rpos) => Ok(rpos),
            // No room for the answer itself (the disk is full and it is larger than what the
            // journal reserved for it): what was reserved holds this note instead, so the
            // request is finished for good and never runs again. A caller that is here gets
            // the answer itself below.
            Err(e) => {
                let note = format!(
                    "the answer (status {}, return code {rcode}, {} bytes) could not be kept: {}",
                    status.code(),
                    body.len(),
                    store::describe(&e)
                );
                tracing::warn!("request {request}: {note}");
                let head = records::reply_head(session.0, request, Status::System.code(), rcode);
                self.append_owed(
                    records::REPLY,
                    &[&head, note.as_bytes()],
                    true,
                    owed - records::DONE_BYTES,
                )
            }
        };
        match kept {
            Ok(rpos) => {
                self.store.pin(rpos);
                if let Some(ss) = self.sessions.get_mut(&session) {
                    ss.replies.insert(request, rpos);
                }
                self.store.unpin(accept_pos);
            }
            // Not even the note could be written (the reserve was short): the answer goes to
            // the caller if it is here, and the request stays journaled, so a restart runs it
            // again rather than lose its answer.
            Err(e) => {
                self.store.release(records::DONE_BYTES as u64);
                tracing::warn!(
                    "answer to request {request} not journaled ({}); kept as unanswered",
                    store::describe(&e)
                )
            }
        }
        let Some((t, id)) = conn else {
            return;
        };
        let Some(c) = self.conns.get_mut(t).and_then(|x| x.as_mut()) else {
            return;
        };
        if c.id != id {
            return;
        }
        send_ack(c);
        wire::encode_reply(&mut c.out, request, status.code(), rcode, body);
        c.last_tx = now;
        self.mark_dirty(t);
    }

    /// Appends a record the store owes (`n` bytes of it reserved); if it cannot be written,
    /// the debt is given up all the same (what needed it is finished).
    fn append_owed(
        &mut self,
        kind: u8,
        parts: &[&[u8]],
        keep: bool,
        n: u32,
    ) -> Result<Pos, crate::journal::AppendError> {
        let r = self.store.append(kind, parts, keep, Draw::Owed(n));
        if r.is_err() {
            self.store.release(n as u64);
        }
        r
    }

    /// Sends the answer stored at `rpos` to caller `t`.
    fn send_stored_reply(&mut self, t: Token, rpos: Pos, now: Micros) {
        let Some(r) = self.store.read(rpos).and_then(|(k, payload)| {
            if k == records::REPLY {
                records::reply(payload)
            } else {
                None
            }
        }) else {
            return;
        };
        let Some(c) = self.conns.get_mut(t).and_then(|x| x.as_mut()) else {
            return;
        };
        wire::encode_reply(&mut c.out, r.request, r.status, r.rcode, r.body);
        c.last_tx = now;
        self.mark_dirty(t);
    }

    /// The caller has the answer to `id` (or gave it up): it is finished.
    pub(super) fn finish_reply(&mut self, session: SessionId, id: u64) {
        let Some(rpos) = self
            .sessions
            .get_mut(&session)
            .and_then(|ss| ss.replies.remove(&id))
        else {
            return;
        };
        let rec = records::done(session.0, id);
        let _ = self.append_owed(records::DONE, &[&rec], false, records::DONE_BYTES);
        self.store.unpin(rpos);
    }

    /// Releases the ACKs of requests the store now holds durably, and sends those that are
    /// wanted now (after a PING, or when many are owed). The others go out with the next
    /// REPLY, or after [`ACK_DELAY`].
    pub(super) fn release_acks(&mut self, now: Micros) {
        if self.ack_waiters.is_empty() {
            return;
        }
        let durable = self.store.durable();
        let waiters = std::mem::take(&mut self.ack_waiters);
        let mut owed_later = false;
        for t in waiters {
            let Some(conn) = self.conns.get_mut(t).and_then(|p| p.as_mut()) else {
                continue;
            };
            let Role::Caller(c) = &mut conn.role else {
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
            owed_later |= owed && !send_now;
            if send_now && send_ack(conn) {
                conn.last_tx = now;
                self.mark_dirty(t);
            }
            if still_waiting {
                self.ack_waiters.push(t);
            }
        }
        if owed_later && !self.ack_flush_set {
            self.ack_flush_set = true;
            self.timers.at(now + ACK_DELAY, Timer::AckFlush);
        }
    }

    /// Sends every acknowledgement owed (the AckFlush timer).
    pub(super) fn flush_acks(&mut self, now: Micros) {
        for t in self.ack_waiters.clone() {
            if let Some(c) = self.conns.get_mut(t).and_then(|p| p.as_mut()) {
                if send_ack(c) {
                    c.last_tx = now;
                    self.mark_dirty(t);
                }
            }
        }
        self.release_acks(now);
    }

    /// Remembers that caller `t` has ACKs pending.
    pub(super) fn note_ack_waiter(&mut self, t: Token) {
        if !self.ack_waiters.contains(&t) {
            self.ack_waiters.push(t);
        }
    }

    /// Stops dispatching `session`'s requests until its connection drains.
    pub(super) fn park(&mut self, session: SessionId) {
        if let Some(ss) = self.sessions.get_mut(&session) {
            ss.parked = true;
        }
    }

    /// Dispatches `session`'s requests again.
    pub(super) fn unpark(&mut self, session: SessionId, now: Micros) {
        let Some(ss) = self.sessions.get_mut(&session) else {
            return;
        };
        if !ss.parked {
            return;
        }
        ss.parked = false;
        let ids: Vec<i32> = self.router.proxies.keys().copied().collect();
        for p in &ids {
            if let Some(proxy) = self.router.proxies.get_mut(p) {
                proxy.queue.unpark(session);
            }
        }
        for p in ids {
            self.dispatch(p, now);
        }
    }

    /// Settles what a closed connection leaves behind.
    pub(super) fn settle_closed(&mut self, t: Token, conn: Conn, now: Micros) {
        match conn.role {
            Role::Greeting | Role::Monitor => {}
            Role::Caller(c) => {
                // The session stays: its requests go on, their answers wait for it (in the
                // journal, so nothing needs holding back any more).
                if let Some(ss) = self.sessions.get_mut(&c.session) {
                    if ss.conn.is_some_and(|(tok, id)| tok == t && id == conn.id) {
                        ss.conn = None;
                        ss.detached_at = Some(now);
                        self.timers.at(
                            now + micros(self.cfg.reply_ttl),
                            Timer::SessionTtl(c.session),
                        );
                    }
                }
                self.ack_waiters.retain(|x| *x != t);
                self.unpark(c.session, now);
            }
            Role::Worker(w) => {
                let me = WorkerRef {
                    token: t,
                    conn: conn.id,
                };
                let name = if conn.name.is_empty() {
                    conn.addr.clone()
                } else {
                    conn.name.clone()
                };
                self.worker_gone(me, &name, &w.proxies, now);
            }
        }
    }

    /// A session gone for the reply time to live loses its unread answers, and is forgotten
    /// once nothing of it is left.
    pub(super) fn session_ttl_due(&mut self, session: SessionId, now: Micros) {
        let ttl = micros(self.cfg.reply_ttl);
        let Some(ss) = self.sessions.get(&session) else {
            return;
        };
        let Some(since) = ss.detached_at else {
            return;
        };
        if now.saturating_sub(since) < ttl {
            self.timers.at(since + ttl, Timer::SessionTtl(session));
            return;
        }
        let ids: Vec<u64> = ss.replies.keys().copied().collect();
        if !ids.is_empty() {
            let tag = self.session_tag(session);
            tracing::info!("session {tag:08x}: {} unread answers expired", ids.len());
        }
        for r in ids {
            self.finish_reply(session, r);
        }
        if self
            .sessions
            .get(&session)
            .is_some_and(|ss| ss.inflight == 0)
        {
            self.sessions.remove(&session);
        } else {
            // Requests still running: their answers get the same time to live.
            if let Some(ss) = self.sessions.get_mut(&session) {
                ss.detached_at = Some(now);
            }
            self.timers.at(now + ttl, Timer::SessionTtl(session));
        }
    }
}

/// Queues the ACK a caller is owed, if any. ACKs are not sent per request: they ride on the
/// next REPLY to that caller, answer its PING (which is how `flush` asks for one), go out
/// when many are owed, or after a short delay; so a synchronous call costs one write each way.
fn send_ack(conn: &mut Conn) -> bool {
    if conn.closing {
        return false;
    }
    if let Role::Caller(c) = &mut conn.role {
        if c.ack_upto > c.ack_sent {
            c.ack_sent = c.ack_upto;
            c.ack_wanted = false;
            wire::encode_ack(&mut conn.out, c.ack_upto);
            return true;
        }
    }
    false
}

/// Whether the secret a peer `given` is the hub's `secret`, in a time that depends only on the
/// length of what the peer sent (which it knows), never on the secret's length or content:
/// every given byte is compared with the secret's byte at that place (cycling), and a
/// difference in length counts as a difference.
fn constant_time_eq(given: &[u8], secret: &[u8]) -> bool {
    let mut diff = (given.len() ^ secret.len()) as u64;
    let n = secret.len().max(1);
    for (i, g) in given.iter().enumerate() {
        let s = secret.get(i % n).copied().unwrap_or(0);
        diff |= u64::from(g ^ s);
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod secret_tests {
    use super::constant_time_eq;

    #[test]
    fn secrets_compare_by_content_and_length() {
        assert!(constant_time_eq(b"s3cret", b"s3cret"));
        assert!(!constant_time_eq(b"s3creT", b"s3cret"));
        assert!(!constant_time_eq(b"s3cre", b"s3cret"));
        assert!(!constant_time_eq(b"s3crets3cret", b"s3cret"));
        assert!(!constant_time_eq(b"", b"s3cret"));
        assert!(!constant_time_eq(b"x", b""));
        assert!(constant_time_eq(b"", b""));
    }
}
