//! Requests the hub has accepted and not yet answered, each under a tag.
//!
//! A tag is `generation << 32 | slot`: slots are reused, generations are not, so a RESULT that
//! names a stale tag (a slot since reused) is recognised and refused.

use std::time::Instant;

/// Where a request is.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Waiting in its proxy's queue for a worker with room.
    Queued,
    /// Handed to the worker on this token / connection id.
    Delivered {
        /// The worker's token.
        token: usize,
        /// The worker connection's id.
        conn: u64,
    },
}

/// One accepted request.
pub struct Flight {
    /// Token of the caller's connection.
    pub caller_token: usize,
    /// The caller connection's id (0: the caller is gone, drop the reply).
    pub caller_conn: u64,
    /// The caller's session id.
    pub session: u64,
    /// The caller's request id.
    pub request: u64,
    /// Proxy id.
    pub proxy: i32,
    /// One-way: no reply wanted.
    pub oneway: bool,
    /// Delivery attempts so far.
    pub attempt: u32,
    /// Where it is.
    pub stage: Stage,
    /// The body, kept until answered so it can be delivered again.
    pub body: Vec<u8>,
    /// When it was accepted.
    pub accepted: Instant,
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

    fn slot(&self, tag: u64) -> Option<&Slot> {
        let s = self.slots.get((tag & 0xffff_ffff) as usize)?;
        (s.generation == (tag >> 32) as u32).then_some(s)
    }

    /// The flight under `tag`, if it is live.
    pub fn get(&self, tag: u64) -> Option<&Flight> {
        self.slot(tag)?.flight.as_ref()
    }

    /// The flight under `tag`, mutable.
    pub fn get_mut(&mut self, tag: u64) -> Option<&mut Flight> {
        let s = self.slots.get_mut((tag & 0xffff_ffff) as usize)?;
        if s.generation != (tag >> 32) as u32 {
            return None;
        }
        s.flight.as_mut()
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

    /// Tags of the flights delivered to worker connection `conn`.
    pub fn delivered_to(&self, conn: u64) -> Vec<u64> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match &s.flight {
                Some(f) if matches!(f.stage, Stage::Delivered { conn: c, .. } if c == conn) => {
                    Some(((s.generation as u64) << 32) | i as u64)
                }
                _ => None,
            })
            .collect()
    }

    /// Forgets the caller of every flight from caller connection `conn`: their replies will be
    /// dropped. Returns the tags of those still queued (never delivered), which can be dropped.
    pub fn orphan_caller(&mut self, conn: u64) -> Vec<u64> {
        let mut queued = Vec::new();
        for (i, s) in self.slots.iter_mut().enumerate() {
            if let Some(f) = &mut s.flight {
                if f.caller_conn == conn {
                    f.caller_conn = 0;
                    if f.stage == Stage::Queued {
                        queued.push(((s.generation as u64) << 32) | i as u64);
                    }
                }
            }
        }
        queued
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
            caller_token: 0,
            caller_conn: 1,
            session: 1,
            request: 1,
            proxy: 1,
            oneway: false,
            attempt: 0,
            stage: Stage::Queued,
            body: Vec::new(),
            accepted: Instant::now(),
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
    }
}
