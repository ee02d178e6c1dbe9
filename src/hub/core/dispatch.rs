//! Workers' side of the core: handing requests out, taking results and forwards, and what
//! happens when a delivery fails, runs late or outlives its deadline (retries from the redo
//! queue with backoff, expiry, overdue workers).

use super::conn::{Conn, Role, Token};
use super::flights::{Fate, Flight};
use super::records::{self, AcceptHead};
use super::router::{Proxy, WorkerRef};
use super::timers::Timer;
use super::OUT_PAUSE;
use super::{micros, protocol, ConnId, Core, Fatal, Micros, ReqState, SessionId, Tag};
use crate::hub::store;
use crate::journal::{Draw, Pos};
use crate::status::Status;
use crate::wire::{self, DeliverHead};

/// A worker whose unwritten output is over this is treated as full.
const WORKER_OUT_LIMIT: usize = 8 * 1024 * 1024;

impl Core {
    /// Hands waiting requests of `proxy` to its least busy workers while any has room.
    pub(super) fn dispatch(&mut self, proxy: i32, now: Micros) {
        loop {
            // One lookup of the proxy per request handed out; the borrows below are of
            // disjoint fields of the core.
            let Some(p) = self.router.proxies.get_mut(&proxy) else {
                return;
            };
            if p.queued == 0 {
                return;
            }
            // Suspects first, each to a worker holding nothing else.
            if !p.solo.is_empty() {
                if let Some(w) = free_worker(p, &self.conns, true) {
                    if let Some((session, id)) = p.solo.pop_front() {
                        let live = self.reqs.get(&(session, id)).is_some_and(|r| {
                            r.state == ReqState::Queued && r.proxy == proxy && r.suspect
                        });
                        if live {
                            p.queued -= 1;
                            self.deliver(w, session, id, now);
                        }
                        continue;
                    }
                }
            }
            let Some(w) = free_worker(p, &self.conns, false) else {
                return;
            };
            let Some((session, id)) = p.queue.pop() else {
                // Only parked lanes are left.
                return;
            };
            // An entry whose request was cancelled, expired or moved on is stale.
            let Some(req) = self.reqs.get(&(session, id)) else {
                continue;
            };
            if req.state != ReqState::Queued || req.proxy != proxy {
                continue;
            }
            if req.deadline_us != 0 && now >= req.deadline_us {
                self.expire(session, id, now);
                continue;
            }
            if req.suspect {
                p.solo.push_back((session, id));
                continue;
            }
            // Only what is durable goes out: under `batch` a request waits for the fdatasync
            // that covers its ACCEPT, so no worker runs a request a power loss could erase.
            // (Under `none` an appended record counts as durable at once.)
            if req.pos >= self.store.durable() {
                p.queue.push_front(session, id);
                if !self.await_durable.contains(&proxy) {
                    self.await_durable.push(proxy);
                }
                return;
            }
            // A caller that does not read its replies gets no more until it does: its lane is
            // parked (the queue goes on for the others) until its output drains, so the hub's
            // memory stays bounded.
            let conns = &self.conns;
            let backlogged = self
                .sessions
                .get(&session)
                .and_then(|ss| ss.conn)
                .and_then(|(t, cid)| conns.get(t)?.as_ref().filter(|c| c.id == cid))
                .is_some_and(|c| c.pending_out() > OUT_PAUSE);
            if backlogged {
                p.queue.push_front(session, id);
                p.queue.park(session);
                self.park(session);
                continue;
            }
            p.queued -= 1;
            self.deliver(w, session, id, now);
        }
    }

    fn deliver(&mut self, w: WorkerRef, session: SessionId, id: u64, now: Micros) {
        let key = (session, id);
        let Some(version) = self
            .conn(w.token)
            .filter(|c| c.id == w.conn)
            .map(|c| c.version)
        else {
            return;
        };
        let Some(req) = self.reqs.get_mut(&key) else {
            return;
        };
        let Some((a, body)) = self
            .store
            .read(req.pos)
            .and_then(|(k, payload)| records::accept(k, payload))
        else {
            // Damage the journal's checksums did not catch: the caller is told, not left
            // waiting.
            tracing::error!("journal record at {:#x} is not a request", req.pos);
            let Some(req) = self.reqs.remove(&key) else {
                return;
            };
            self.router.proxy(req.proxy).stats.outcomes.system += 1;
            let msg = "the hub's record of this request is damaged; it was not run";
            self.answer(session, id, &req, Status::System, 0, msg.as_bytes(), now);
            return;
        };
        req.attempt = req.attempt.saturating_add(1);
        req.state = ReqState::Delivered;
        let suspect = req.suspect;
        let (attempt, failures, proxy) = (req.attempt as u32, req.failures as u32, req.proxy);
        let service = micros(self.cfg.policies.of(proxy).service_limit);
        // The time the worker has: to the deadline, within the service-time limit.
        let mut left = if req.deadline_us != 0 {
            req.deadline_us.saturating_sub(now).max(1000)
        } else {
            0
        };
        if service != 0 && (left == 0 || service < left) {
            left = service;
        }
        let tag = self.flights.insert(Flight {
            session,
            request: id,
            proxy,
            worker: w,
            accepted_us: a.accepted_us,
            fate: Fate::Live,
            accept_pos: req.pos,
        });
        req.tag = tag;
        let worker_session = self.session_tag_for_workers(session);
        let Some(c) = self.conns.get_mut(w.token).and_then(|x| x.as_mut()) else {
            return;
        };
        let head = DeliverHead {
            tag: tag.0,
            session: worker_session,
            request: id,
            proxy,
            attempt,
            // Rounded up: under a millisecond left is 1, never 0 (which means "no limit").
            remaining_ms: (version >= 2).then(|| left.div_ceil(1000).min(u32::MAX as u64) as u32),
        };
        wire::encode_deliver(&mut c.out, &head, body);
        c.last_tx = now;
        let mut arm = false;
        if let Role::Worker(wk) = &mut c.role {
            wk.inflight += 1;
            wk.delivered += 1;
            wk.solo |= suspect;
            if service != 0 {
                let at = now + service;
                wk.watch.push_back((at, tag));
                // Limits differ between proxies: a later delivery may be due first.
                if wk.watch_due.is_none_or(|d| at < d) {
                    wk.watch_due = Some(at);
                    arm = true;
                }
            }
        }
        if !c.dirty {
            c.dirty = true;
            self.dirty.push(w.token);
        }
        if arm {
            self.timers
                .at(now + service, Timer::Service(w.token, w.conn));
        }
        let rec = records::deliver(session.0, id, attempt, failures);
        if let Err(e) = self
            .store
            .append(records::DELIVER, &[&rec], false, Draw::Spare(0))
        {
            tracing::debug!("delivery not journaled: {e}");
        }
    }

    /// Takes the flight under `tag` from worker `t`, which must hold it.
    fn take_flight(&mut self, t: Token, tag: Tag, what: &str) -> Result<Flight, Fatal> {
        let conn = self.conn(t).map(|c| c.id);
        let f = match self.flights.get(tag) {
            Some(f) if Some(f.worker.conn) == conn => self.flights.remove(tag),
            _ => None,
        };
        let Some(f) = f else {
            return Err(protocol(format!(
                "{what} for tag {:#x}, which was not delivered to this worker",
                tag.0
            )));
        };
        let flights = &self.flights;
        if let Some(Conn {
            role: Role::Worker(w),
            ..
        }) = self.conns.get_mut(t).and_then(|c| c.as_mut())
        {
            w.inflight = w.inflight.saturating_sub(1);
            w.results += 1;
            if w.inflight == 0 {
                w.solo = false;
            }
            if f.fate == Fate::Overdue {
                w.overdue = w.overdue.saturating_sub(1);
            }
            // Answered deliveries leave the front of the watch list. Those answered while an
            // older one is still held wait behind it, up to a bound.
            while w
                .watch
                .front()
                .is_some_and(|(_, t)| flights.get(*t).is_none())
            {
                w.watch.pop_front();
            }
            if w.watch.len() > 2 * w.inflight as usize + 64 {
                w.watch.retain(|(_, t)| flights.get(*t).is_some());
            }
        }
        Ok(f)
    }

    pub(super) fn on_result(
        &mut self,
        t: Token,
        tag: Tag,
        status: i32,
        rcode: i32,
        body: &[u8],
        now: Micros,
    ) -> Result<(), Fatal> {
        let f = self.take_flight(t, tag, "RESULT")?;
        let status = match Status::from_code(status) {
            Status::Ok if status == 0 => Status::Ok,
            Status::Ok => Status::System,
            s => s,
        };
        if status != Status::Ok {
            if let Some(Conn {
                role: Role::Worker(w),
                ..
            }) = self.conn_mut(t)
            {
                w.failures += 1;
            }
        }
        let p = self.router.proxy(f.proxy);
        // What the far side said, counted whatever became of the request.
        if matches!(status, Status::Ok | Status::AppFail | Status::Retry) {
            p.stats.rcodes.record(rcode);
        }
        if f.fate != Fate::Live {
            // Answered already (timeout), cancelled, or retried elsewhere: dropped.
            p.stats.outcomes.late += 1;
            self.dispatch(f.proxy, now);
            return Ok(());
        }
        p.stats.latency.record(now.saturating_sub(f.accepted_us));
        if status == Status::Retry {
            let name = self.worker_name(t);
            let why = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            let cause = if why.is_empty() {
                format!("worker {name} asked to retry later")
            } else {
                format!("worker {name} asked to retry later: {why}")
            };
            self.delivery_failed(f.session, f.request, &cause, now);
        } else if let Some(req) = self.reqs.remove(&(f.session, f.request)) {
            match status {
                Status::Ok => p.stats.outcomes.ok += 1,
                Status::AppFail => p.stats.outcomes.app_fail += 1,
                Status::Timeout => p.stats.outcomes.timeout += 1,
                _ => p.stats.outcomes.system += 1,
            }
            self.answer(f.session, f.request, &req, status, rcode, body, now);
        }
        self.dispatch(f.proxy, now);
        Ok(())
    }

    /// A worker hands a delivered request on to `proxy` with a new body: journaled as a new
    /// ACCEPT of the same request, so a crash loses nothing and the final answer goes to the
    /// original caller.
    pub(super) fn on_forward(
        &mut self,
        t: Token,
        tag: Tag,
        proxy: i32,
        body: &[u8],
        now: Micros,
    ) -> Result<(), Fatal> {
        let f = self.take_flight(t, tag, "FORWARD")?;
        let key = (f.session, f.request);
        let live = f.fate == Fate::Live;
        let Some(req) = self.reqs.get(&key).copied().filter(|_| live) else {
            self.router.proxy(f.proxy).stats.outcomes.late += 1;
            self.dispatch(f.proxy, now);
            return Ok(());
        };
        let refuse = if req.hops as u32 >= wire::MAX_HOPS {
            Some((
                Status::System,
                format!(
                    "forwarded more than {} times (a forwarding loop?); last to proxy {proxy}",
                    wire::MAX_HOPS
                ),
            ))
        } else if proxy < 0 || !self.router.is_known(proxy) {
            Some((
                Status::NoRoute,
                format!("forwarded to proxy {proxy}, which no worker serves"),
            ))
        } else {
            None
        };
        let appended = match refuse {
            Some(r) => Err(r),
            None => {
                let head = records::accept_head(&AcceptHead {
                    session: f.session.0,
                    request: f.request,
                    proxy,
                    flags: req.mode.flag(),
                    accepted_us: f.accepted_us,
                    deadline_us: req.deadline_us,
                    hops: req.hops as u32 + 1,
                });
                self.store
                    .append(records::ACCEPT, &[&head, body], true, Draw::Spare(0))
                    .map_err(|e| {
                        (
                            Status::System,
                            format!("cannot forward: {}", store::describe(&e)),
                        )
                    })
            }
        };
        match appended {
            Err((status, msg)) => {
                self.reqs.remove(&key);
                self.router.proxy(f.proxy).stats.outcomes.system += 1;
                self.answer(f.session, f.request, &req, status, 0, msg.as_bytes(), now);
            }
            Ok(pos) => {
                self.store.pin(pos);
                self.store.unpin(req.pos);
                if let Some(r) = self.reqs.get_mut(&key) {
                    r.pos = pos;
                    r.proxy = proxy;
                    r.attempt = 0;
                    r.failures = 0;
                    r.hops += 1;
                    r.state = ReqState::Queued;
                }
                self.router.proxy(f.proxy).stats.outcomes.forwarded += 1;
                let p = self.router.proxy(proxy);
                p.stats.requests += 1;
                p.queue.push_back(f.session, f.request);
                p.queued += 1;
                self.dispatch(proxy, now);
            }
        }
        self.dispatch(f.proxy, now);
        Ok(())
    }

    /// An operator moves the requests waiting for proxy `from` (queued, or waiting for a
    /// retry) to proxy `to`, oldest first, each journaled as a new ACCEPT for `to` (as a
    /// forward is, so a restart finds them there). Requests held by a worker, and suspects
    /// waiting to go alone, stay. Returns how many moved; stops at the first that cannot be
    /// journaled (a full disk), saying how many moved before it.
    pub(crate) fn reroute(&mut self, from: i32, to: i32, now: Micros) -> Result<u64, String> {
        if from < 0 || to < 0 {
            return Err("proxy ids must not be negative".into());
        }
        if from == to {
            return Err(format!("from and to are the same proxy ({from})"));
        }
        // Known: served before, in proxy-ids, or the proxy of a route.
        if !self.router.is_known(to) && !self.cfg.policies.routes.values().any(|&p| p == to) {
            return Err(format!(
                "proxy {to} is not known to the hub (no worker has served it, and it is in \
                 neither proxy-ids nor a route)"
            ));
        }
        let mut keys: Vec<((SessionId, u64), Pos)> = self
            .reqs
            .iter()
            .filter(|(_, r)| {
                r.proxy == from
                    && !r.suspect
                    && matches!(r.state, ReqState::Queued | ReqState::Redo)
            })
            .map(|(k, r)| (*k, r.pos))
            .collect();
        // Journal order is arrival order.
        keys.sort_unstable_by_key(|&(_, pos)| pos);
        let mut moved = 0u64;
        for (key, pos) in keys {
            let Some((head, body)) = self
                .store
                .read(pos)
                .and_then(|(kind, payload)| records::accept(kind, payload))
                .map(|(h, b)| (h, b.to_vec()))
            else {
                continue;
            };
            let head = records::accept_head(&AcceptHead { proxy: to, ..head });
            let new =
                match self
                    .store
                    .append(records::ACCEPT, &[&head, &body], true, Draw::Spare(0))
                {
                    Ok(p) => p,
                    Err(e) => {
                        self.dispatch(to, now);
                        return Err(format!(
                            "{moved} requests moved, then: {}",
                            store::describe(&e)
                        ));
                    }
                };
            self.store.pin(new);
            self.store.unpin(pos);
            let Some(r) = self.reqs.get_mut(&key) else {
                continue;
            };
            let redo = r.state == ReqState::Redo;
            r.pos = new;
            r.proxy = to;
            r.attempt = 0;
            r.failures = 0;
            // The entry left in `from`'s queue is stale now (dispatch skips it).
            let old = self.router.proxy(from);
            if redo {
                old.redo = old.redo.saturating_sub(1);
            } else {
                old.queued = old.queued.saturating_sub(1);
            }
            let parked = self.sessions.get(&key.0).is_some_and(|s| s.parked);
            let p = self.router.proxy(to);
            if redo {
                // Its Redo timer puts it in `to`'s queue.
                p.redo += 1;
            } else {
                p.queue.push_back(key.0, key.1);
                p.queued += 1;
                if parked {
                    p.queue.park(key.0);
                }
            }
            moved += 1;
        }
        self.dispatch(to, now);
        Ok(moved)
    }

    /// A delivery failed for a system reason: the request goes to the redo queue with
    /// backoff, or, with its attempts used up, the caller gets DCO_E_SYSTEM.
    pub(super) fn delivery_failed(
        &mut self,
        session: SessionId,
        request: u64,
        cause: &str,
        now: Micros,
    ) {
        let key = (session, request);
        let Some(req) = self.reqs.get_mut(&key) else {
            return;
        };
        req.failures = req.failures.saturating_add(1);
        let (failures, proxy) = (req.failures as u32, req.proxy);
        let policy = self.cfg.policies.of(proxy).clone();
        if failures >= policy.attempts {
            let Some(req) = self.reqs.remove(&key) else {
                return;
            };
            self.router.proxy(proxy).stats.outcomes.system += 1;
            let msg = format!(
                "gave up after {} attempt{}; last: {cause}",
                req.attempt,
                if req.attempt == 1 { "" } else { "s" }
            );
            tracing::warn!("request {request} of proxy {proxy}: {msg}");
            self.answer(
                session,
                request,
                &req,
                Status::System,
                0,
                msg.as_bytes(),
                now,
            );
            return;
        }
        req.state = ReqState::Redo;
        let p = self.router.proxy(proxy);
        p.redo += 1;
        p.stats.outcomes.retried += 1;
        let at = now + micros(policy.backoff_after(failures));
        tracing::debug!("request {request} of proxy {proxy} retried: {cause}");
        self.timers.at(at, Timer::Redo(session, request));
    }

    /// A request in the redo queue is due: back to the head of its lane.
    pub(super) fn redo_due(&mut self, session: SessionId, request: u64, now: Micros) {
        let Some(req) = self.reqs.get_mut(&(session, request)) else {
            return;
        };
        if req.state != ReqState::Redo {
            return;
        }
        req.state = ReqState::Queued;
        let proxy = req.proxy;
        let p = self.router.proxy(proxy);
        p.redo = p.redo.saturating_sub(1);
        p.queue.push_front(session, request);
        p.queued += 1;
        if self.sessions.get(&session).is_some_and(|s| s.parked) {
            p.queue.park(session);
        }
        self.dispatch(proxy, now);
    }

    /// A request's deadline: waiting, it expires; held by a worker, the caller gets its
    /// timeout and the late answer will be dropped.
    pub(super) fn deadline_due(&mut self, session: SessionId, request: u64, now: Micros) {
        let Some(req) = self.reqs.get(&(session, request)).copied() else {
            return;
        };
        if req.deadline_us == 0 || now < req.deadline_us {
            return;
        }
        match req.state {
            ReqState::Queued | ReqState::Redo => self.expire(session, request, now),
            ReqState::Delivered => {
                self.reqs.remove(&(session, request));
                let name = self.abandon_delivery(req.tag, Fate::Late);
                self.router.proxy(req.proxy).stats.outcomes.timeout += 1;
                let msg = format!(
                    "no answer within the deadline: worker {} still held it; a late answer \
                     will be dropped",
                    name.unwrap_or_else(|| "?".into())
                );
                self.answer(
                    session,
                    request,
                    &req,
                    Status::Timeout,
                    0,
                    msg.as_bytes(),
                    now,
                );
            }
        }
    }

    /// A waiting request whose deadline passed: never delivered; the caller gets its timeout.
    pub(super) fn expire(&mut self, session: SessionId, request: u64, now: Micros) {
        let Some(req) = self.reqs.remove(&(session, request)) else {
            return;
        };
        self.unqueue(&req);
        self.router.proxy(req.proxy).stats.outcomes.expired += 1;
        let msg = if req.attempt == 0 {
            format!(
                "expired in the queue of proxy {}: its deadline passed before any worker took \
                 it (never delivered)",
                req.proxy
            )
        } else {
            format!(
                "expired in the redo queue of proxy {} after {} failed attempt{}",
                req.proxy,
                req.attempt,
                if req.attempt == 1 { "" } else { "s" }
            )
        };
        self.answer(
            session,
            request,
            &req,
            Status::Timeout,
            0,
            msg.as_bytes(),
            now,
        );
    }

    /// Marks the live delivery under `tag` with `fate` and tells its worker (version 2) that
    /// it is cancelled. Returns the worker's name.
    pub(super) fn abandon_delivery(&mut self, tag: Tag, fate: Fate) -> Option<String> {
        let f = self.flights.get_mut(tag).filter(|f| f.fate == Fate::Live)?;
        f.fate = fate;
        let w = f.worker;
        let c = self
            .conns
            .get_mut(w.token)
            .and_then(|x| x.as_mut())
            .filter(|c| c.id == w.conn)?;
        let name = if c.name.is_empty() {
            c.addr.clone()
        } else {
            c.name.clone()
        };
        if c.version >= 2 && !c.closing {
            wire::encode_cancel(&mut c.out, tag.0);
            if !c.dirty {
                c.dirty = true;
                self.dirty.push(w.token);
            }
        }
        Some(name)
    }

    /// A worker's Service timer: each delivery it has held past its service-time limit makes
    /// it overdue (see [`Core::delivery_overdue`]); the timer is set again for the next limit.
    pub(super) fn service_due(&mut self, t: Token, id: ConnId, now: Micros) {
        let Some(Conn {
            role: Role::Worker(wk),
            ..
        }) = self
            .conns
            .get_mut(t)
            .and_then(|c| c.as_mut())
            .filter(|c| c.id == id)
        else {
            return;
        };
        let flights = &self.flights;
        let mut due = Vec::new();
        wk.watch.retain(|(at, tag)| {
            let live = flights.get(*tag).is_some_and(|f| f.fate == Fate::Live);
            if live && *at <= now {
                due.push(*tag);
                return false;
            }
            live
        });
        // One timer for the earliest limit left, unless one set earlier already covers it.
        let next = wk.watch.iter().map(|(at, _)| *at).min();
        let covered = wk
            .watch_due
            .is_some_and(|d| d > now && next.is_some_and(|n| d <= n));
        if !covered {
            wk.watch_due = next;
            if let Some(at) = next {
                self.timers.at(at, Timer::Service(t, id));
            }
        }
        for tag in due {
            self.delivery_overdue(tag, now);
        }
    }

    /// A delivery's service-time limit passed with no answer: the worker is overdue. The
    /// request goes to the redo queue, the worker gets no new work and is dropped if it has
    /// not answered within the grace period.
    fn delivery_overdue(&mut self, tag: Tag, now: Micros) {
        let Some(f) = self.flights.get_mut(tag) else {
            return;
        };
        if f.fate != Fate::Live {
            return;
        }
        f.fate = Fate::Overdue;
        let (session, request, proxy, w) = (f.session, f.request, f.proxy, f.worker);
        let limit = self.cfg.policies.of(proxy).service_limit;
        let name = self.worker_name(w.token);
        if let Some(c) = self
            .conns
            .get_mut(w.token)
            .and_then(|x| x.as_mut())
            .filter(|c| c.id == w.conn)
        {
            if let Role::Worker(wk) = &mut c.role {
                wk.overdue += 1;
            }
            if c.version >= 2 && !c.closing {
                wire::encode_cancel(&mut c.out, tag.0);
                if !c.dirty {
                    c.dirty = true;
                    self.dirty.push(w.token);
                }
            }
        }
        tracing::warn!(
            "worker {name} held request {request} of proxy {proxy} past the service-time limit \
             of {} ms: no new work for it",
            limit.as_millis()
        );
        self.timers.at(
            now + micros(self.cfg.overdue_grace),
            Timer::Overdue(w.token, w.conn),
        );
        let cause = format!(
            "worker {name} held it past the service-time limit of {} ms",
            limit.as_millis()
        );
        self.delivery_failed(session, request, &cause, now);
    }

    /// The grace period of an overdue worker ended: dropped if still overdue.
    pub(super) fn overdue_due(&mut self, t: Token, id: ConnId, now: Micros) {
        let still = self
            .conn(t)
            .is_some_and(|c| c.id == id && matches!(&c.role, Role::Worker(w) if w.overdue > 0));
        if still {
            self.close(
                t,
                "held a request past the service-time limit and did not answer within the \
                 grace period",
                now,
            );
        }
    }

    /// A worker's connection ended: what it held fails for a system reason (and is retried).
    pub(super) fn worker_gone(&mut self, me: WorkerRef, name: &str, proxies: &[i32], now: Micros) {
        self.router.remove_worker(me, proxies);
        let mut flights = self.flights.take_delivered_to(me);
        if self.quitting {
            return;
        }
        flights.sort_by_key(|f| f.accept_pos);
        let live = flights.iter().filter(|f| f.fate == Fate::Live).count();
        for f in flights {
            if f.fate == Fate::Live {
                if live > 1 {
                    if let Some(r) = self.reqs.get_mut(&(f.session, f.request)) {
                        r.suspect = true;
                    }
                }
                let cause = format!("worker {name} left while it held the request");
                self.delivery_failed(f.session, f.request, &cause, now);
            }
        }
        for proxy in proxies {
            self.dispatch(*proxy, now);
        }
    }

    fn worker_name(&self, t: Token) -> String {
        self.conn(t)
            .map(|c| {
                if c.name.is_empty() {
                    c.addr.clone()
                } else {
                    c.name.clone()
                }
            })
            .unwrap_or_else(|| "?".into())
    }
}

/// The least busy worker of `p` with room (with `idle`, holding nothing), if any. While
/// suspects wait for an idle worker, the least busy worker takes no other work, so that one
/// drains for them.
fn free_worker(p: &Proxy, conns: &[Option<Conn>], idle: bool) -> Option<WorkerRef> {
    let worker = |w: &WorkerRef| {
        let c = conns.get(w.token)?.as_ref().filter(|c| c.id == w.conn)?;
        match &c.role {
            Role::Worker(wk) => Some((c, wk)),
            _ => None,
        }
    };
    let reserved = if !idle && !p.solo.is_empty() {
        p.workers
            .iter()
            .filter_map(|w| worker(w).map(|(_, wk)| (w, wk)))
            .filter(|(_, wk)| !wk.solo && wk.overdue == 0)
            .min_by_key(|(_, wk)| wk.inflight)
            .map(|(w, _)| *w)
    } else {
        None
    };
    let mut best: Option<(WorkerRef, u32)> = None;
    for w in p.workers.iter().filter(|w| Some(**w) != reserved) {
        let Some((c, wk)) = worker(w) else {
            continue;
        };
        if !c.closing
            && wk.overdue == 0
            && !wk.solo
            && (!idle || wk.inflight == 0)
            && wk.inflight < wk.capacity
            && c.pending_out() < WORKER_OUT_LIMIT
            && best.is_none_or(|(_, n)| wk.inflight < n)
        {
            best = Some((*w, wk.inflight));
        }
    }
    best.map(|(w, _)| w)
}
