//! Where the hub keeps requests and replies: the journal, or (with `--no-journal`) memory.
//!
//! Both hand out positions ([`Pos`]) and keep a record while it is pinned, so the rest of the
//! hub is the same either way.

use std::io;

use crate::journal::{AppendError, Journal, Pos};

/// Records kept in memory, for a hub running without a journal (nothing survives a restart).
/// A slab: a position is a slot number plus one (0 names a record that was not kept).
#[derive(Default)]
pub struct MemStore {
    slots: Vec<Option<(u8, Vec<u8>, u32)>>,
    free: Vec<usize>,
}

impl MemStore {
    fn slot(&mut self, p: Pos) -> Option<&mut (u8, Vec<u8>, u32)> {
        let i = (p as usize).checked_sub(1)?;
        self.slots.get_mut(i)?.as_mut()
    }
}

/// The hub's store.
pub enum Store {
    /// Durable: the mmap-backed journal.
    Journal(Journal),
    /// Volatile: records on the heap.
    Memory(MemStore),
}

impl Store {
    /// Appends a record. In memory, only kinds that are pinned later are kept (`keep`).
    pub fn append(&mut self, kind: u8, parts: &[&[u8]], keep: bool) -> Result<Pos, AppendError> {
        match self {
            Store::Journal(j) => j.append(kind, parts),
            Store::Memory(m) => {
                if !keep {
                    return Ok(0);
                }
                let rec = Some((kind, parts.concat(), 0));
                let i = match m.free.pop() {
                    Some(i) => {
                        m.slots[i] = rec;
                        i
                    }
                    None => {
                        m.slots.push(rec);
                        m.slots.len() - 1
                    }
                };
                Ok(i as Pos + 1)
            }
        }
    }

    /// The record at `p`.
    pub fn read(&self, p: Pos) -> Option<(u8, &[u8])> {
        match self {
            Store::Journal(j) => j.read(p),
            Store::Memory(m) => {
                let i = (p as usize).checked_sub(1)?;
                m.slots.get(i)?.as_ref().map(|(k, b, _)| (*k, &b[..]))
            }
        }
    }

    /// Keeps the record at `p`.
    pub fn pin(&mut self, p: Pos) {
        match self {
            Store::Journal(j) => j.pin(p),
            Store::Memory(m) => {
                if let Some(r) = m.slot(p) {
                    r.2 += 1;
                }
            }
        }
    }

    /// Releases the record at `p`.
    pub fn unpin(&mut self, p: Pos) {
        match self {
            Store::Journal(j) => j.unpin(p),
            Store::Memory(m) => {
                if let Some(r) = m.slot(p) {
                    r.2 = r.2.saturating_sub(1);
                    if r.2 == 0 {
                        let i = p as usize - 1;
                        m.slots[i] = None;
                        m.free.push(i);
                    }
                }
            }
        }
    }

    /// Ends a round of appends (starts or does the sync the policy asks for).
    pub fn commit(&mut self) {
        if let Store::Journal(j) = self {
            j.commit();
        }
    }

    /// Records before this position are durable (memory: everything, at once).
    pub fn durable(&self) -> Pos {
        match self {
            Store::Journal(j) => j.durable(),
            Store::Memory(_) => Pos::MAX,
        }
    }

    /// A position that is durable once everything written so far is (for acknowledging
    /// resends: their originals were written earlier).
    pub fn written(&self) -> Pos {
        match self {
            Store::Journal(j) => j.written().saturating_sub(1),
            Store::Memory(_) => 0,
        }
    }

    /// Segments in use (0 in memory).
    pub fn segments(&self) -> usize {
        match self {
            Store::Journal(j) => j.segment_count(),
            Store::Memory(_) => 0,
        }
    }

    /// Whether the journal could not grow at its last attempt.
    pub fn is_full(&self) -> bool {
        match self {
            Store::Journal(j) => j.is_full(),
            Store::Memory(_) => false,
        }
    }
}

/// Kept for symmetry with the journal's error type in messages.
pub fn describe(e: &AppendError) -> String {
    match e {
        AppendError::TooLarge => "the request is larger than a journal segment".into(),
        AppendError::Empty => "an empty journal record".into(),
        AppendError::Full(err) if err.kind() == io::ErrorKind::StorageFull => {
            "the hub's journal is full (no space left on its disk)".into()
        }
        AppendError::Full(err) => format!("the hub's journal cannot grow: {err}"),
    }
}
