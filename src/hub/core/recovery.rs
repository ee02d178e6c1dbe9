//! Rebuilding the core's state from what the journal holds after a restart.

use ahash::AHashMap as HashMap;

use super::records;
use super::sessions::SessionState;
use super::timers::Timer;
use super::{micros, Core, Micros, Mode, Req, ReqState, SessionId, Tag};
use crate::journal::Pos;

/// What recovery collects from the journal before the core rebuilds its state.
#[derive(Default)]
pub struct Recovered {
    /// Requests accepted and not answered: (session, request) -> ACCEPT position (the last
    /// one: a forward replaces the earlier).
    accepts: HashMap<(u64, u64), Pos>,
    /// Deliveries made: (session, request) -> (attempt, failures before it).
    attempts: HashMap<(u64, u64), (u32, u32)>,
    /// Answers not confirmed: (session, request) -> REPLY position.
    replies: HashMap<(u64, u64), Pos>,
    /// Highest request id seen per session.
    upto: HashMap<u64, u64>,
}

impl Recovered {
    /// Takes one record, in journal order.
    pub fn record(&mut self, pos: Pos, kind: u8, payload: &[u8]) {
        match kind {
            records::ACCEPT | records::ACCEPT_V1 => {
                if let Some((a, _)) = records::accept(kind, payload) {
                    let key = (a.session, a.request);
                    self.accepts.insert(key, pos);
                    // A forward starts the count again.
                    self.attempts.remove(&key);
                    let u = self.upto.entry(a.session).or_default();
                    *u = (*u).max(a.request);
                }
            }
            records::DELIVER => {
                if let Some((s, r, n, failed)) = records::deliver_of(payload) {
                    self.attempts.insert((s, r), (n, failed));
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

    /// Requests waiting to be run.
    pub fn pending(&self) -> usize {
        self.accepts.len()
    }

    /// Answers waiting to be read.
    pub fn unread(&self) -> usize {
        self.replies.len()
    }
}

impl Core {
    /// Rebuilds sessions, requests and queues from what the journal held. A request that was
    /// delivered when the hub stopped is delivered again (its attempt number says so); the
    /// hub's own stop does not count against its retries.
    pub(super) fn restore(&mut self, rec: Recovered, now: Micros) {
        let mut pending: Vec<(Pos, u64, u64)> = rec
            .accepts
            .into_iter()
            .map(|((s, r), pos)| (pos, s, r))
            .collect();
        pending.sort_unstable();
        let owed = self.owed_per_request() as u64;
        for (pos, session, request) in pending {
            let Some((proxy, deadline_us, hops, flags)) = self
                .store
                .read(pos)
                .and_then(|(k, p)| records::accept(k, p))
                .map(|(a, _)| (a.proxy, a.deadline_us, a.hops, a.flags))
            else {
                continue;
            };
            self.store.pin(pos);
            self.store.owe(owed);
            let sid = SessionId(session);
            let mode = Mode::of_flags(flags).unwrap_or(Mode::Sync);
            let (attempt, failures) = rec
                .attempts
                .get(&(session, request))
                .copied()
                .unwrap_or((0, 0));
            self.sessions
                .entry(sid)
                .or_insert_with(|| SessionState::new(now))
                .inflight += 1;
            self.reqs.insert(
                (sid, request),
                Req {
                    pos,
                    deadline_us,
                    proxy,
                    attempt: attempt.min(u16::MAX as u32) as u16,
                    failures: failures.min(u16::MAX as u32) as u16,
                    hops: hops.min(u8::MAX as u32) as u8,
                    mode,
                    state: ReqState::Queued,
                    suspect: false,
                    tag: Tag(0),
                },
            );
            if deadline_us != 0 {
                self.timers.at(deadline_us, Timer::Deadline(sid, request));
            }
            let p = self.router.proxy(proxy);
            p.queue.push_back(sid, request);
            p.queued += 1;
        }
        for ((session, request), rpos) in rec.replies {
            self.store.pin(rpos);
            self.store.owe(records::DONE_BYTES as u64);
            self.sessions
                .entry(SessionId(session))
                .or_insert_with(|| SessionState::new(now))
                .replies
                .insert(request, rpos);
        }
        for (session, upto) in rec.upto {
            let ss = self
                .sessions
                .entry(SessionId(session))
                .or_insert_with(|| SessionState::new(now));
            ss.accepted_upto = ss.accepted_upto.max(upto);
        }
        // Every session the journal still names is kept (until its time to live runs out):
        // its highest accepted id is what makes a late resend a duplicate rather than new work.
        let ttl = micros(self.cfg.reply_ttl);
        let ids: Vec<SessionId> = self.sessions.keys().copied().collect();
        for s in ids {
            self.timers.at(now + ttl, Timer::SessionTtl(s));
        }
    }
}
