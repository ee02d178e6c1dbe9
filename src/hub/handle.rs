//! What each frame does, by the role of the connection it came on.

use std::time::Instant;

use super::flights::{Flight, Stage};
use super::peer::{Caller, Peer, Role, Worker};
use super::router::WorkerRef;
use super::server::Hub;
use super::stats::{CallerSnapshot, HubSnapshot, ProxySnapshot, Snapshot, WorkerSnapshot};
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

impl Hub {
    fn peer(&mut self, t: usize) -> Option<&mut Peer> {
        self.peers.get_mut(t).and_then(|p| p.as_mut())
    }

    /// Handles one frame from peer `t`.
    pub(super) fn on_frame(&mut self, t: usize, frame: Frame<'_>) -> Result<(), Fatal> {
        let Some(peer) = self.peer(t) else {
            return Ok(());
        };
        if peer.closing {
            return Ok(());
        }
        match (&peer.role, frame) {
            (Role::Greeting, Frame::Hello(h)) => self.on_hello(t, h),
            (Role::Greeting, f) => Err(protocol(format!(
                "the first frame must be HELLO, got {:?}",
                frame_name(&f)
            ))),
            (_, Frame::Ping { nonce }) => {
                let now = Instant::now();
                // A caller's PING asks for its ACK too: everything before the PING is accepted.
                Hub::send_ack(peer);
                wire::encode_pong(&mut peer.out, nonce);
                peer.last_tx = now;
                self.mark_dirty(t);
                Ok(())
            }
            (_, Frame::Pong { .. }) => Ok(()),
            (Role::Caller(_), Frame::Request {
                id,
                proxy,
                flags,
                body,
                ..
            }) => self.on_request(t, id, proxy, flags, body),
            // The library drops a cancelled reply itself; the hub has nothing to free early.
            (Role::Caller(_), Frame::Cancel { .. }) => Ok(()),
            (Role::Worker(_), Frame::Result {
                tag,
                status,
                rcode,
                body,
            }) => self.on_result(t, tag, status, rcode, body),
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
            wire::Role::Caller => Role::Caller(Caller {
                session: h.session,
                inflight: 0,
                accepted_upto: 0,
                ack_due: false,
                requests: 0,
                replies: 0,
                errors: 0,
            }),
            wire::Role::Worker => {
                if h.proxies.is_empty() {
                    return Err((Status::Invalid, "a worker must serve at least one proxy".into()));
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
        let welcome = Welcome {
            version: wire::VERSION,
            max_frame: self.cfg.max_frame,
            quota: if matches!(role, Role::Caller(_)) {
                self.cfg.quota
            } else {
                0
            },
            keepalive_ms: self.cfg.keepalive.as_millis().min(u32::MAX as u128) as u32,
            session: h.session,
            hub_id: self.hub_id,
        };
        let Some(peer) = self.peer(t) else {
            return Ok(());
        };
        peer.name = name;
        peer.role = role;
        let conn = peer.id;
        wire::encode_welcome(&mut peer.out, &welcome);
        peer.last_tx = Instant::now();
        if matches!(peer.role, Role::Worker(_)) {
            tracing::info!("{} joined", peer.describe());
        } else {
            tracing::debug!("{} joined", peer.describe());
        }
        self.mark_dirty(t);
        if let wire::Role::Worker = h.role {
            self.router
                .add_worker(WorkerRef { token: t, conn }, &h.proxies);
            for p in &h.proxies {
                self.dispatch(*p);
            }
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
        let Some(peer) = self.peer(t) else {
            return Ok(());
        };
        let conn = peer.id;
        let Role::Caller(c) = &mut peer.role else {
            return Ok(());
        };
        if id <= c.accepted_upto {
            return Err(protocol(format!(
                "request id {id} is not above the previous one ({})",
                c.accepted_upto
            )));
        }
        c.accepted_upto = id;
        c.ack_due = true;
        c.requests += 1;
        let session = c.session;
        let inflight = c.inflight;
        let oneway = flags & wire::REQ_ONEWAY != 0;
        if proxy < 0 {
            self.reply_error(t, id, oneway, Status::Invalid, "proxy id must not be negative");
            return Ok(());
        }
        if !self.router.is_served(proxy) {
            self.router.proxy(proxy).stats.no_route += 1;
            let msg = format!("no worker serves proxy {proxy}");
            self.reply_error(t, id, oneway, Status::NoRoute, &msg);
            return Ok(());
        }
        if inflight >= quota {
            self.busy += 1;
            let msg = format!("over quota: {quota} requests of this caller are unanswered");
            self.reply_error(t, id, oneway, Status::Busy, &msg);
            return Ok(());
        }
        if let Some(Peer {
            role: Role::Caller(c),
            ..
        }) = self.peer(t)
        {
            c.inflight += 1;
        }
        let tag = self.flights.insert(Flight {
            caller_token: t,
            caller_conn: conn,
            session,
            request: id,
            proxy,
            oneway,
            attempt: 0,
            stage: Stage::Queued,
            body: body.to_vec(),
            accepted: Instant::now(),
        });
        let p = self.router.proxy(proxy);
        p.stats.requests += 1;
        p.queue.push_back(tag);
        self.dispatch(proxy);
        Ok(())
    }

    /// Sends an error REPLY for a request that was not accepted.
    fn reply_error(&mut self, t: usize, id: u64, oneway: bool, status: Status, msg: &str) {
        if oneway {
            tracing::debug!("one-way request {id} dropped: {msg}");
            return;
        }
        let Some(peer) = self.peer(t) else {
            return;
        };
        Hub::send_ack(peer);
        wire::encode_reply(&mut peer.out, id, status.code(), 0, msg.as_bytes());
        peer.last_tx = Instant::now();
        if let Role::Caller(c) = &mut peer.role {
            c.errors += 1;
        }
        self.mark_dirty(t);
    }

    /// Hands queued requests of `proxy` to its least busy workers while any has room.
    fn dispatch(&mut self, proxy: i32) {
        let Some(p) = self.router.proxies.get_mut(&proxy) else {
            return;
        };
        while let Some(&tag) = p.queue.front() {
            // The least busy worker with room.
            let mut best: Option<(WorkerRef, u32)> = None;
            for w in &p.workers {
                let Some(peer) = self.peers.get(w.token).and_then(|x| x.as_ref()) else {
                    continue;
                };
                if let Role::Worker(wk) = &peer.role {
                    if wk.inflight < wk.capacity
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
            let Some(f) = self.flights.get_mut(tag) else {
                continue;
            };
            if f.caller_conn == 0 {
                // The caller left before its request reached a worker: nobody wants it.
                self.flights.remove(tag);
                continue;
            }
            f.attempt += 1;
            f.stage = Stage::Delivered {
                token: w.token,
                conn: w.conn,
            };
            let Some(peer) = self.peers.get_mut(w.token).and_then(|x| x.as_mut()) else {
                continue;
            };
            wire::encode_deliver(
                &mut peer.out,
                tag,
                f.session,
                f.request,
                f.proxy,
                f.attempt,
                &f.body,
            );
            peer.last_tx = Instant::now();
            if let Role::Worker(wk) = &mut peer.role {
                wk.inflight += 1;
                wk.delivered += 1;
            }
            if !peer.dirty {
                peer.dirty = true;
                self.dirty.push(w.token);
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
        let ours = self.flights.get(tag).is_some_and(|f| {
            matches!(f.stage, Stage::Delivered { conn: c, .. } if c == conn)
        });
        if !ours {
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
            .record(f.accepted.elapsed().as_micros() as u64);
        if status == Status::Ok {
            p.stats.replies += 1;
        } else {
            p.stats.errors += 1;
        }
        self.answer(&f, status, rcode, body);
        self.dispatch(f.proxy);
        Ok(())
    }

    /// Sends a flight's outcome to its caller, if the caller is still there.
    fn answer(&mut self, f: &Flight, status: Status, rcode: i32, body: &[u8]) {
        if f.caller_conn == 0 {
            return;
        }
        let Some(peer) = self.peers.get_mut(f.caller_token).and_then(|x| x.as_mut()) else {
            return;
        };
        if peer.id != f.caller_conn {
            return;
        }
        let Role::Caller(c) = &mut peer.role else {
            return;
        };
        c.inflight = c.inflight.saturating_sub(1);
        if f.oneway {
            return;
        }
        if status == Status::Ok {
            c.replies += 1;
        } else {
            c.errors += 1;
        }
        Hub::send_ack(peer);
        wire::encode_reply(&mut peer.out, f.request, status.code(), rcode, body);
        peer.last_tx = Instant::now();
        if !peer.dirty {
            peer.dirty = true;
            self.dirty.push(f.caller_token);
        }
    }

    /// Queues the ACK a caller is owed, if any. ACKs are not sent per request: they ride on the
    /// next REPLY to that caller, answer its PING (which is how `flush` asks for one), or go
    /// out at the next tick, so a synchronous call costs one write each way.
    pub(super) fn send_ack(peer: &mut Peer) -> bool {
        if peer.closing {
            return false;
        }
        if let Role::Caller(c) = &mut peer.role {
            if c.ack_due {
                c.ack_due = false;
                wire::encode_ack(&mut peer.out, c.accepted_upto);
                return true;
            }
        }
        false
    }

    /// Settles what a closed peer leaves behind.
    pub(super) fn settle_closed(&mut self, t: usize, peer: Peer) {
        match peer.role {
            Role::Greeting | Role::Monitor => {}
            Role::Caller(_) => {
                // Replies still to come have nobody to go to; requests not yet delivered are
                // dropped when they reach the head of their queue.
                self.flights.orphan_caller(peer.id);
            }
            Role::Worker(w) => {
                let me = WorkerRef {
                    token: t,
                    conn: peer.id,
                };
                self.router.remove_worker(me, &w.proxies);
                // Its unanswered requests go back to the head of their queues, oldest first.
                let mut tags = self.flights.delivered_to(peer.id);
                tags.sort_by_key(|tag| self.flights.get(*tag).map(|f| f.accepted));
                for tag in tags.into_iter().rev() {
                    let Some(f) = self.flights.get_mut(tag) else {
                        continue;
                    };
                    f.stage = Stage::Queued;
                    let proxy = f.proxy;
                    let p = self.router.proxy(proxy);
                    p.queue.push_front(tag);
                    p.stats.redelivered += 1;
                }
                for proxy in &w.proxies {
                    if self.router.is_served(*proxy) {
                        self.dispatch(*proxy);
                    } else {
                        self.fail_queue(*proxy);
                    }
                }
            }
        }
    }

    /// Fails every request queued for `proxy`: no worker is left to serve it.
    fn fail_queue(&mut self, proxy: i32) {
        let queue = std::mem::take(&mut self.router.proxy(proxy).queue);
        let msg = format!("the last worker serving proxy {proxy} disconnected");
        for tag in queue {
            if let Some(f) = self.flights.remove(tag) {
                self.router.proxy(proxy).stats.errors += 1;
                self.answer(&f, Status::System, 0, msg.as_bytes());
            }
        }
    }

    /// The statistics document.
    pub(super) fn snapshot(&self) -> Snapshot {
        let mut callers = Vec::new();
        let mut workers = Vec::new();
        for peer in self.peers.iter().flatten() {
            match &peer.role {
                Role::Caller(c) => callers.push(CallerSnapshot {
                    name: peer.name.clone(),
                    addr: peer.addr.clone(),
                    requests: c.requests,
                    replies: c.replies,
                    errors: c.errors,
                    inflight: c.inflight,
                }),
                Role::Worker(w) => workers.push(WorkerSnapshot {
                    name: peer.name.clone(),
                    addr: peer.addr.clone(),
                    proxies: w.proxies.clone(),
                    capacity: w.capacity,
                    inflight: w.inflight,
                    delivered: w.delivered,
                    results: w.results,
                    failures: w.failures,
                }),
                _ => {}
            }
        }
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
                busy: self.busy,
                protocol_errors: self.protocol_errors,
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
