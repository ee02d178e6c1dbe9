//! The core's timers: one heap of (due time, what), earliest first. Nothing scans the
//! connections or the requests periodically; each thing that can time out puts its own entry
//! here. Entries are not removed when what they watch ends early: when one comes due, its
//! handler looks the thing up and does nothing if it is gone or has moved on.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::{ConnId, Micros, SessionId, Token};

/// What comes due.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Timer {
    /// Ping the connection if it has been quiet; drop an idle worker that stopped answering.
    Keepalive(Token, ConnId),
    /// Drop the connection if it has not said HELLO.
    Greeting(Token, ConnId),
    /// Expire the unread answers of a session that left.
    SessionTtl(SessionId),
    /// The request's deadline: if still waiting, it expires; if delivered, the caller gets
    /// its timeout.
    Deadline(SessionId, u64),
    /// A request waiting in the redo queue is due for its next attempt.
    Redo(SessionId, u64),
    /// The earliest service-time limit among a worker's deliveries.
    Service(Token, ConnId),
    /// Drop a worker still holding a delivery past its service-time limit.
    Overdue(Token, ConnId),
    /// Send the acknowledgements owed and not yet sent.
    AckFlush,
}

/// See the module documentation.
#[derive(Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Micros, Timer)>>,
}

impl Timers {
    /// Sets `t` to come due at `at`.
    pub fn at(&mut self, at: Micros, t: Timer) {
        self.heap.push(Reverse((at, t)));
    }

    /// Gives back the memory of a heap that held many more timers than now (see `tidy`).
    pub fn tidy(&mut self) {
        super::tidy::heap(&mut self.heap);
    }

    /// The earliest due time, if any.
    pub fn next(&self) -> Option<Micros> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Takes the next timer due at or before `now`.
    pub fn pop_due(&mut self, now: Micros) -> Option<Timer> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse((_, t))| t),
            _ => None,
        }
    }

    /// Keeps only the timers for which `keep` holds.
    pub fn retain(&mut self, mut keep: impl FnMut(&Timer) -> bool) {
        self.heap.retain(|Reverse((_, t))| keep(t));
    }

    /// Entries held (stale ones included).
    pub fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_timers_come_out_earliest_first() {
        let mut t = Timers::default();
        t.at(30, Timer::AckFlush);
        t.at(10, Timer::Deadline(SessionId(1), 2));
        t.at(20, Timer::Redo(SessionId(1), 3));
        assert_eq!(t.next(), Some(10));
        assert_eq!(t.pop_due(5), None);
        assert_eq!(t.pop_due(25), Some(Timer::Deadline(SessionId(1), 2)));
        assert_eq!(t.pop_due(25), Some(Timer::Redo(SessionId(1), 3)));
        assert_eq!(t.pop_due(25), None);
        assert_eq!(t.len(), 1);
    }
}
