//! Giving memory back: a table that held many entries keeps its capacity after they are gone
//! (Rust's collections never shrink by themselves). Once a second the core shrinks every table
//! that is mostly empty, so a session whose answers were read holds no per-request memory, and a
//! hub whose backlog drained is as small again as it was before.
//!
//! A table is shrunk when it has room for more than [`KEEP`] entries and is less than a quarter
//! full, to twice what it holds: shrinking costs a pass over the entries, and a table is shrunk
//! again only after it has lost half of them, so the cost per removed entry stays constant.

use std::collections::{BinaryHeap, VecDeque};
use std::hash::Hash;

use ahash::AHashMap as HashMap;

/// Tables with room for this many entries or fewer are left as they are.
pub(crate) const KEEP: usize = 64;

/// How often the core tidies, in microseconds.
pub(crate) const EVERY: super::Micros = 1_000_000;

fn sparse(len: usize, capacity: usize) -> bool {
    capacity > KEEP && len < capacity / 4
}

/// Whether a shrink of a table of this capacity is worth handing the freed pages back to the
/// system for ([`crate::sys::release_free_memory`]).
pub fn big(capacity: usize) -> bool {
    capacity > 64 * 1024
}

/// Shrinks a mostly empty map.
pub fn map<K: Eq + Hash, V>(m: &mut HashMap<K, V>) {
    if sparse(m.len(), m.capacity()) {
        let keep = (m.len() * 2).max(KEEP / 2);
        m.shrink_to(keep);
    }
}

/// Shrinks a mostly empty deque.
pub fn deque<T>(d: &mut VecDeque<T>) {
    if sparse(d.len(), d.capacity()) {
        let keep = (d.len() * 2).max(KEEP / 2);
        d.shrink_to(keep);
    }
}

/// Shrinks a mostly empty vector.
pub fn vec<T>(v: &mut Vec<T>) {
    if sparse(v.len(), v.capacity()) {
        let keep = (v.len() * 2).max(KEEP / 2);
        v.shrink_to(keep);
    }
}

/// Shrinks a mostly empty heap.
pub fn heap<T: Ord>(h: &mut BinaryHeap<T>) {
    if sparse(h.len(), h.capacity()) {
        let keep = (h.len() * 2).max(KEEP / 2);
        h.shrink_to(keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drained_map_is_shrunk_and_a_full_one_is_not() {
        let mut m: HashMap<u64, u64> = (0..100_000).map(|i| (i, i)).collect();
        let big = m.capacity();
        map(&mut m);
        assert_eq!(m.capacity(), big, "a full table stays");
        m.retain(|k, _| *k < 10);
        map(&mut m);
        assert!(m.capacity() < 100, "{}", m.capacity());
        assert_eq!(m.len(), 10);
        let mut d: VecDeque<u64> = (0..10_000).collect();
        d.clear();
        deque(&mut d);
        assert!(d.capacity() <= KEEP, "{}", d.capacity());
    }
}
