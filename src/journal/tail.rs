//! The active segment's newest bytes, staged in memory and written to the file once a round.
//!
//! Records are not copied into the segment's mapping: a store through a shared mapping dirties
//! the whole page-cache folio it lands in, and the kernel caches a segment in folios of up to
//! 2 MiB, so every fdatasync would write megabytes for a few hundred bytes appended. A
//! `pwrite` marks only the blocks it covers dirty, so a sync writes what was appended since the
//! last one. The mapping stays for reading; records not yet written out are read from here.
//!
//! What the stage holds: the bytes of segment `seq` from offset `from`, i.e. the records
//! appended since the last write-out and, after the last of them, zeros over where the next
//! record's header will go (a recycled segment holds old bytes there, which must read as the
//! end of the data).

use std::fs::File;
use std::io;

use super::disk::Disk;
use super::record;

/// Bytes of buffer a stage keeps between rounds.
const KEEP: usize = 1 << 20;

pub struct Tail {
    seq: u64,
    from: usize,
    /// Where the records end (`from + buf.len()` less the trailing zeros).
    end: usize,
    buf: Vec<u8>,
}

impl Tail {
    /// An empty stage for segment `seq`, whose records end at `at`.
    pub fn new(seq: u64, at: usize) -> Tail {
        Tail {
            seq,
            from: at,
            end: at,
            buf: Vec::new(),
        }
    }

    /// Room for a record of `n` bytes at offset `at` of segment `seq` (which must be where the
    /// records end) in a segment of `seg_len` bytes, zeroed up to the next record's header.
    pub fn reserve(&mut self, seq: u64, at: usize, n: usize, seg_len: usize) -> &mut [u8] {
        debug_assert!(self.seq == seq && at == self.end, "appends are in order");
        if self.seq != seq || at < self.from {
            // Not reached (the journal writes a stage out before it moves to another
            // segment); start afresh rather than write bytes at the wrong place.
            *self = Tail::new(seq, at);
        }
        let zeros = record::RECORD_HEADER.min(seg_len.saturating_sub(at + n));
        let rel = at - self.from;
        self.buf.truncate(rel);
        self.buf.resize(rel + n + zeros, 0);
        self.end = at + n;
        &mut self.buf[rel..rel + n]
    }

    /// The bytes of segment `seq` from offset `at`, if they are staged here.
    pub fn bytes_at(&self, seq: u64, at: usize) -> Option<&[u8]> {
        if seq != self.seq || at < self.from {
            return None;
        }
        self.buf.get(at - self.from..)
    }

    /// Writes the stage to `file` (segment `seq`'s) and empties it; the records go on at the
    /// same place.
    pub fn write_out(&mut self, disk: &dyn Disk, file: &File) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        disk.append_at(file, &self.buf, self.from as u64)?;
        self.from = self.end;
        self.clear();
        Ok(())
    }

    /// Copies the stage into `data`, the segment's mapping, and empties it. The first
    /// record's length goes last: a process that dies meanwhile leaves a record whose header
    /// reads as the end of the data, never a torn one.
    pub fn copy_out(&mut self, data: &mut [u8]) {
        let (from, n) = (self.from, self.buf.len());
        debug_assert!(
            from + n <= data.len(),
            "a stage never passes its segment's end"
        );
        if n == 0 || from + n > data.len() {
            return;
        }
        let head = 4.min(n);
        data[from + head..from + n].copy_from_slice(&self.buf[head..]);
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::Release);
        data[from..from + head].copy_from_slice(&self.buf[..head]);
        self.from = self.end;
        self.clear();
    }

    /// Empties the stage; one large round does not keep its buffer for the life of the hub.
    fn clear(&mut self) {
        self.buf.clear();
        if self.buf.capacity() > KEEP {
            self.buf.shrink_to(KEEP);
        }
    }

    /// The segment the stage belongs to.
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_keeps_records_in_order_and_zeroes_the_next_header() {
        let mut t = Tail::new(3, 100);
        t.reserve(3, 100, 20, 1000).fill(1);
        assert_eq!(t.buf.len(), 20 + record::RECORD_HEADER);
        t.reserve(3, 120, 10, 1000).fill(2);
        assert_eq!(t.buf.len(), 30 + record::RECORD_HEADER);
        assert_eq!(t.bytes_at(3, 120).map(|b| b[0]), Some(2));
        assert_eq!(t.bytes_at(3, 99), None);
        assert_eq!(t.bytes_at(4, 120), None);
        assert!(t.buf[30..].iter().all(|&b| b == 0));
        // Near the end of the segment, only the room there is zeroed.
        let mut u = Tail::new(1, 990);
        u.reserve(1, 990, 6, 1000);
        assert_eq!(u.buf.len(), 10);
    }
}
