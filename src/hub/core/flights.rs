//! Requests handed to workers and not yet answered, each under a tag.
//!
//! A tag is `generation << 32 | slot`: slots are reused, generations are not, so a RESULT that
//! names a stale tag (a slot since reused) is recognised and refused. Requests still waiting
//! for a worker are not here: they are in their proxy's queue.

use super::router::WorkerRef;
use super::{Micros, SessionId, Tag};
use crate::journal::Pos;

/// What became of a delivery while the worker held it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Fate {
    /// The worker's answer is awaited.
    Live,
    /// The deadline passed: the caller was told; the answer, if it comes, is dropped.
    Late,
    /// The caller cancelled it: the worker was told; the answer, if it comes, is dropped.
    Cancelled,
    /// The worker held it past the service-time limit: it went to the redo queue; the answer,
    /// if it comes, is dropped.
    Overdue,
}

/// One delivered request.
pub struct Flight {
    /// The caller's session id.
    pub session: SessionId,
    /// The caller's request id.
    pub request: u64,
    /// Proxy id.
    pub proxy: i32,
    /// The worker it was handed to.
    pub worker: WorkerRef,
    /// When it was accepted (statistics: latency).
    pub accepted_us: Micros,
    /// See [`Fate`].
    pub fate: Fate,
    /// Where its ACCEPT record is.
    pub accept_pos: Pos,
}

struct Slot {
    generation: u32,
    flight: Option<Flight>,
}

/// The table of flights.
#[derive(Default)]
pub struct Flights {
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: usize,
}

impl Flights {
    /// Stores a flight and returns its tag.
    pub fn insert(&mut self, f: Flight) -> Tag {
        self.live += 1;
        if let Some(i) = self.free.pop() {
            let s = &mut self.slots[i as usize];
            s.generation = s.generation.wrapping_add(1).max(1);
            s.flight = Some(f);
            return Tag(((s.generation as u64) << 32) | i as u64);
        }
        let i = self.slots.len() as u32;
        self.slots.push(Slot {
            generation: 1,
            flight: Some(f),
        });
        Tag((1u64 << 32) | i as u64)
    }

    fn slot(&self, tag: Tag) -> Option<&Slot> {
        let s = self.slots.get((tag.0 & 0xffff_ffff) as usize)?;
        (s.generation == (tag.0 >> 32) as u32).then_some(s)
    }

    /// The flight under `tag`, if it is live.
    pub fn get(&self, tag: Tag) -> Option<&Flight> {
        self.slot(tag)?.flight.as_ref()
    }

    /// The flight under `tag`, to change.
    pub fn get_mut(&mut self, tag: Tag) -> Option<&mut Flight> {
        let s = self.slots.get_mut((tag.0 & 0xffff_ffff) as usize)?;
        if s.generation != (tag.0 >> 32) as u32 {
            return None;
        }
        s.flight.as_mut()
    }

    /// Removes and returns the flight under `tag`.
    pub fn remove(&mut self, tag: Tag) -> Option<Flight> {
        let i = (tag.0 & 0xffff_ffff) as usize;
        let s = self.slots.get_mut(i)?;
        if s.generation != (tag.0 >> 32) as u32 {
            return None;
        }
        let f = s.flight.take()?;
        self.free.push(i as u32);
        self.live -= 1;
        Some(f)
    }

    /// Removes and returns every flight delivered to worker connection `worker`.
    pub fn take_delivered_to(&mut self, worker: WorkerRef) -> Vec<Flight> {
        let mut out = Vec::new();
        for (i, s) in self.slots.iter_mut().enumerate() {
            if s.flight.as_ref().is_some_and(|f| f.worker == worker) {
                if let Some(f) = s.flight.take() {
                    out.push(f);
                    self.free.push(i as u32);
                    self.live -= 1;
                }
            }
        }
        out
    }

    /// Number of flights.
    pub fn len(&self) -> usize {
        self.live
    }
}

#[cfg(test)]
mod tests {
    use super::super::ConnId;
    use super::*;

    fn flight() -> Flight {
        Flight {
            session: SessionId(1),
            request: 1,
            proxy: 1,
            worker: WorkerRef {
                token: 0,
                conn: ConnId(7),
            },
            accepted_us: 0,
            fate: Fate::Live,
            accept_pos: 0,
        }
    }

    #[test]
    fn stale_tags_are_not_found() {
        let mut f = Flights::default();
        let a = f.insert(flight());
        assert!(f.remove(a).is_some());
        let b = f.insert(flight());
        assert_ne!(a, b, "a reused slot gets a new generation");
        assert!(f.get(a).is_none());
        assert!(f.remove(a).is_none());
        assert!(f.get(b).is_some());
        assert_eq!(f.len(), 1);
        assert!(f.get(Tag(u64::MAX)).is_none());
        let w = WorkerRef {
            token: 0,
            conn: ConnId(7),
        };
        assert_eq!(f.take_delivered_to(w).len(), 1);
        assert_eq!(f.len(), 0);
    }
}
