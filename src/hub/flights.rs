//! Requests handed to a worker and not yet answered, each under a tag.
//!
//! A tag is `generation << 32 | slot`: slots are reused, generations are not, so a RESULT that
//! names a stale tag (a slot since reused) is recognised and refused. Requests still waiting
//! for a worker are not here: they are journal positions in their proxy's queue.

use crate::journal::Pos;

use super::router::WorkerRef;

/// One delivered request.
pub struct Flight {
    /// The caller's session id.
    pub session: u64,
    /// The caller's request id.
    pub request: u64,
    /// Proxy id.
    pub proxy: i32,
    /// One-way: no reply wanted.
    pub oneway: bool,
    /// This delivery's attempt number.
    pub attempt: u32,
    /// The worker it was handed to.
    pub worker: WorkerRef,
    /// Where its ACCEPT record is (pinned until it is answered).
    pub accept_pos: Pos,
    /// When it was accepted, in microseconds since the epoch.
    pub accepted_us: u64,
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
    pub fn insert(&mut self, f: Flight) -> u64 {
        self.live += 1;
        if let Some(i) = self.free.pop() {
            let s = &mut self.slots[i as usize];
            s.generation = s.generation.wrapping_add(1);
            s.flight = Some(f);
            return ((s.generation as u64) << 32) | i as u64;
        }
        let i = self.slots.len() as u32;
        self.slots.push(Slot {
            generation: 1,
            flight: Some(f),
        });
        (1u64 << 32) | i as u64
    }

    /// The flight under `tag`, if it is live.
    pub fn get(&self, tag: u64) -> Option<&Flight> {
        let s = self.slots.get((tag & 0xffff_ffff) as usize)?;
        if s.generation != (tag >> 32) as u32 {
            return None;
        }
        s.flight.as_ref()
    }

    /// Removes and returns the flight under `tag`.
    pub fn remove(&mut self, tag: u64) -> Option<Flight> {
        let i = (tag & 0xffff_ffff) as usize;
        let s = self.slots.get_mut(i)?;
        if s.generation != (tag >> 32) as u32 {
            return None;
        }
        let f = s.flight.take()?;
        self.free.push(i as u32);
        self.live -= 1;
        Some(f)
    }

    /// Removes and returns every flight delivered to worker connection `conn`.
    pub fn take_delivered_to(&mut self, conn: u64) -> Vec<Flight> {
        let mut out = Vec::new();
        for (i, s) in self.slots.iter_mut().enumerate() {
            if s.flight.as_ref().is_some_and(|f| f.worker.conn == conn) {
                if let Some(f) = s.flight.take() {
                    out.push(f);
                    self.free.push(i as u32);
                    self.live -= 1;
                }
            }
        }
        out
    }

    /// Number of live flights.
    pub fn len(&self) -> usize {
        self.live
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flight() -> Flight {
        Flight {
            session: 1,
            request: 1,
            proxy: 1,
            oneway: false,
            attempt: 1,
            worker: WorkerRef { token: 0, conn: 7 },
            accept_pos: 0,
            accepted_us: 0,
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
        assert!(f.get(u64::MAX).is_none());
        assert_eq!(f.take_delivered_to(7).len(), 1);
        assert_eq!(f.len(), 0);
    }
}
