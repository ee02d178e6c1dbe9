//! Where the hub keeps requests and replies: the journal, or (with `--no-journal`) memory.
//!
//! Both hand out positions ([`Pos`]) and keep a record while it is pinned, so the rest of the
//! hub is the same either way.

use std::io;

use crate::journal::{AppendError, Draw, Journal, JournalIo, Pos};

/// Records kept in memory, for a hub running without a journal (nothing survives a restart).
/// A slab: a position is a slot number plus one (0 names a record that was not kept).
pub struct MemStore {
    slots: Vec<Option<(u8, Vec<u8>, u32)>>,
    free: Vec<usize>,
    /// What `durable` says: everything (`Pos::MAX`) unless a test holds it back.
    durable: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Default for MemStore {
    fn default() -> MemStore {
        MemStore {
            slots: Vec::new(),
            free: Vec::new(),
            durable: std::sync::Arc::new(std::sync::atomic::AtomicU64::new(Pos::MAX)),
        }
    }
}

impl MemStore {
    fn slot(&mut self, p: Pos) -> Option<&mut (u8, Vec<u8>, u32)> {
        let i = (p as usize).checked_sub(1)?;
        self.slots.get_mut(i)?.as_mut()
    }
}

/// Where the hub core keeps requests and replies. Positions name records; a record stays
/// readable while it is pinned. The core appends and pins; the I/O shell commits.
pub trait Store {
    /// Appends a record, drawing on the store's space as `draw` says (the journal keeps a
    /// reserve for what accepted work still needs to write). Stores that keep nothing durable
    /// may keep only the records that are pinned later (`keep`), and answer position 0 for the
    /// others.
    fn append(
        &mut self,
        kind: u8,
        parts: &[&[u8]],
        keep: bool,
        draw: Draw,
    ) -> Result<Pos, AppendError>;
    /// Counts `n` more bytes as owed to accepted work (recovery).
    fn owe(&mut self, n: u64);
    /// `n` bytes are owed no more (work that finished without writing its records).
    fn release(&mut self, n: u64);
    /// Bytes owed to accepted work (0 in memory).
    fn owed(&self) -> u64;
    /// Called when the hub is idle (the journal makes its last durability mark durable).
    fn idle(&mut self);
    /// What the store wrote: bytes and syncs (zeros in memory).
    fn io(&self) -> JournalIo;
    /// The record at `p`: its kind and payload.
    fn read(&self, p: Pos) -> Option<(u8, &[u8])>;
    /// Keeps the record at `p` (pins count).
    fn pin(&mut self, p: Pos);
    /// Releases one pin of the record at `p`.
    fn unpin(&mut self, p: Pos);
    /// Ends a round of appends (starts or does the sync the policy asks for); `urgent`:
    /// something waits for this round's records to be durable.
    fn commit(&mut self, urgent: bool);
    /// Whether written records wait for a sync nobody asked for yet: commit again soon.
    fn has_deferred(&self) -> bool;
    /// Records before this position are durable.
    fn durable(&self) -> Pos;
    /// A position that is durable once everything written so far is (for acknowledging
    /// resends: their originals were written earlier).
    fn written(&self) -> Pos;
    /// Segments in use (0 in memory).
    fn segments(&self) -> usize;
    /// Whether the store could not grow at its last attempt.
    fn is_full(&self) -> bool;
}

impl Store for Journal {
    fn append(
        &mut self,
        kind: u8,
        parts: &[&[u8]],
        _keep: bool,
        draw: Draw,
    ) -> Result<Pos, AppendError> {
        Journal::append_draw(self, kind, parts, draw)
    }
    fn owe(&mut self, n: u64) {
        Journal::owe(self, n)
    }
    fn release(&mut self, n: u64) {
        Journal::release(self, n)
    }
    fn owed(&self) -> u64 {
        Journal::owed(self)
    }
    fn idle(&mut self) {
        Journal::idle(self)
    }
    fn io(&self) -> JournalIo {
        self.io_stats()
    }
    fn read(&self, p: Pos) -> Option<(u8, &[u8])> {
        Journal::read(self, p)
    }
    fn pin(&mut self, p: Pos) {
        Journal::pin(self, p)
    }
    fn unpin(&mut self, p: Pos) {
        Journal::unpin(self, p)
    }
    fn commit(&mut self, urgent: bool) {
        Journal::commit_with(self, urgent)
    }
    fn has_deferred(&self) -> bool {
        Journal::has_deferred(self)
    }
    fn durable(&self) -> Pos {
        Journal::durable(self)
    }
    fn written(&self) -> Pos {
        Journal::written(self).saturating_sub(1)
    }
    fn segments(&self) -> usize {
        self.segment_count()
    }
    fn is_full(&self) -> bool {
        Journal::is_full(self)
    }
}

impl Store for MemStore {
    fn owe(&mut self, _n: u64) {}
    fn release(&mut self, _n: u64) {}
    fn owed(&self) -> u64 {
        0
    }
    fn idle(&mut self) {}
    fn io(&self) -> JournalIo {
        JournalIo::default()
    }
    fn append(
        &mut self,
        kind: u8,
        parts: &[&[u8]],
        keep: bool,
        _draw: Draw,
    ) -> Result<Pos, AppendError> {
        if !keep {
            return Ok(0);
        }
        let rec = Some((kind, parts.concat(), 0));
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i] = rec;
                i
            }
            None => {
                self.slots.push(rec);
                self.slots.len() - 1
            }
        };
        Ok(i as Pos + 1)
    }
    fn read(&self, p: Pos) -> Option<(u8, &[u8])> {
        let i = (p as usize).checked_sub(1)?;
        self.slots.get(i)?.as_ref().map(|(k, b, _)| (*k, &b[..]))
    }
    fn pin(&mut self, p: Pos) {
        if let Some(r) = self.slot(p) {
            r.2 += 1;
        }
    }
    fn unpin(&mut self, p: Pos) {
        if let Some(r) = self.slot(p) {
            r.2 = r.2.saturating_sub(1);
            if r.2 == 0 {
                let i = p as usize - 1;
                self.slots[i] = None;
                self.free.push(i);
            }
        }
    }
    fn commit(&mut self, _urgent: bool) {}
    fn has_deferred(&self) -> bool {
        false
    }
    fn durable(&self) -> Pos {
        self.durable.load(std::sync::atomic::Ordering::Acquire)
    }
    fn written(&self) -> Pos {
        0
    }
    fn segments(&self) -> usize {
        0
    }
    fn is_full(&self) -> bool {
        false
    }
}

impl MemStore {
    /// The durability mark, for tests that play a journal whose fdatasync has not completed:
    /// store 0 and nothing is durable, `Pos::MAX` and everything is.
    pub fn durable_mark(&self) -> std::sync::Arc<std::sync::atomic::AtomicU64> {
        self.durable.clone()
    }

    /// Records held now (for tests).
    pub fn live(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
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
