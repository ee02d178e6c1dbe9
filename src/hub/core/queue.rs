//! A proxy's queue of requests waiting for a worker: one lane per caller session, served in
//! turn (round-robin over the sessions with work waiting), so one caller's burst cannot starve
//! another caller's single request.
//!
//! Entries are request ids; the request itself (its journal position, deadline, attempts) is
//! in the core's request table. An entry whose request was cancelled or expired meanwhile is
//! stale: whoever pops it looks the request up and skips it.

use std::collections::VecDeque;

use ahash::AHashMap as HashMap;

use super::SessionId;

/// See the module documentation.
#[derive(Default)]
pub struct FairQueue {
    lanes: HashMap<SessionId, Lane>,
    /// Sessions whose lane has entries and is not parked, in serving order.
    ring: VecDeque<SessionId>,
}

#[derive(Default)]
struct Lane {
    ids: VecDeque<u64>,
    /// In `ring` (a lane is out of the ring while parked or empty).
    in_ring: bool,
    /// Not served until unparked (its caller does not read its replies).
    parked: bool,
}

impl FairQueue {
    /// Adds a request at the end of its session's lane.
    pub fn push_back(&mut self, session: SessionId, id: u64) {
        let lane = self.lanes.entry(session).or_default();
        lane.ids.push_back(id);
        if !lane.in_ring && !lane.parked {
            lane.in_ring = true;
            self.ring.push_back(session);
        }
    }

    /// Adds a request at the head of its session's lane (a retry, or a request put back).
    pub fn push_front(&mut self, session: SessionId, id: u64) {
        let lane = self.lanes.entry(session).or_default();
        lane.ids.push_front(id);
        if !lane.in_ring && !lane.parked {
            lane.in_ring = true;
            self.ring.push_back(session);
        }
    }

    /// The next request in turn: the head of the next session's lane.
    pub fn pop(&mut self) -> Option<(SessionId, u64)> {
        while let Some(session) = self.ring.pop_front() {
            let Some(lane) = self.lanes.get_mut(&session) else {
                continue;
            };
            lane.in_ring = false;
            if lane.parked {
                continue;
            }
            // An empty lane stays (with its buffer) until its session is forgotten: a caller
            // that keeps one request waiting at a time does not allocate a lane per request.
            let Some(id) = lane.ids.pop_front() else {
                continue;
            };
            if !lane.ids.is_empty() {
                lane.in_ring = true;
                self.ring.push_back(session);
            }
            return Some((session, id));
        }
        None
    }

    /// Stops serving `session`'s lane until [`FairQueue::unpark`].
    pub fn park(&mut self, session: SessionId) {
        let lane = self.lanes.entry(session).or_default();
        lane.parked = true;
        // Its place in the ring is dropped lazily by `pop`.
    }

    /// Serves `session`'s lane again.
    pub fn unpark(&mut self, session: SessionId) {
        let Some(lane) = self.lanes.get_mut(&session) else {
            return;
        };
        lane.parked = false;
        if !lane.ids.is_empty() && !lane.in_ring {
            lane.in_ring = true;
            self.ring.push_back(session);
        }
    }

    /// Drops `session`'s lane if it is empty (the session is gone).
    pub fn forget(&mut self, session: SessionId) {
        if self.lanes.get(&session).is_some_and(|l| l.ids.is_empty()) {
            self.lanes.remove(&session);
        }
    }

    /// Gives back the memory of drained lanes (see `tidy`): each lane's buffer, and the table.
    pub fn tidy(&mut self) {
        for lane in self.lanes.values_mut() {
            super::tidy::deque(&mut lane.ids);
        }
        super::tidy::map(&mut self.lanes);
        super::tidy::deque(&mut self.ring);
    }

    /// Lanes held, empty ones included.
    pub fn lanes(&self) -> usize {
        self.lanes.len()
    }

    /// Entries held, stale ones included.
    pub fn entries(&self) -> usize {
        self.lanes.values().map(|l| l.ids.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_served_in_turn() {
        let mut q = FairQueue::default();
        for id in 1..=1000 {
            q.push_back(SessionId(1), id);
        }
        q.push_back(SessionId(2), 7);
        assert_eq!(q.pop(), Some((SessionId(1), 1)));
        assert_eq!(
            q.pop(),
            Some((SessionId(2), 7)),
            "the single request comes second"
        );
        assert_eq!(q.pop(), Some((SessionId(1), 2)));
        q.push_front(SessionId(3), 9);
        q.push_front(SessionId(1), 100);
        assert_eq!(q.pop(), Some((SessionId(1), 100)));
        assert_eq!(q.pop(), Some((SessionId(3), 9)));
        assert_eq!(q.entries(), 998);
    }

    #[test]
    fn a_parked_lane_waits() {
        let mut q = FairQueue::default();
        q.push_back(SessionId(1), 1);
        q.push_back(SessionId(2), 2);
        q.park(SessionId(1));
        assert_eq!(q.pop(), Some((SessionId(2), 2)));
        assert_eq!(q.pop(), None);
        q.push_back(SessionId(1), 3);
        assert_eq!(q.pop(), None);
        q.unpark(SessionId(1));
        assert_eq!(q.pop(), Some((SessionId(1), 1)));
        assert_eq!(q.pop(), Some((SessionId(1), 3)));
        assert_eq!(q.pop(), None);
        assert_eq!(q.entries(), 0);
        q.forget(SessionId(1));
        q.forget(SessionId(2));
        assert_eq!(q.lanes(), 0);
    }
}
