//! One segment file: created preallocated and pre-faulted, memory-mapped, named by its
//! zero-padded sequence number.
//!
//! ```text
//! offset size field
//! 0      8    magic      "DCOJRNL\0"
//! 8      4    version    2 (little-endian; 1 in segments of earlier builds)
//! 12     4    reserved   0
//! 16     8    seq        sequence number of this segment
//! 24     8    size       file size in bytes when it was made
//! 32     12   mark A     \ the durability marks: "records before offset `end` were durable,
//! 44     12   mark B     /  `records` of them"; written after each sync, alternately
//! 56     4    reserved   0
//! 60     4    crc        CRC-32C of bytes 0..32 (version 1: of bytes 0..60, no marks)
//! 64     ...  records    (see record.rs)
//! ```
//!
//! A mark is `end` u32, `records` u32, `crc` u32 (CRC-32C of the 8 bytes before it, seeded with
//! the segment's sequence number, so a mark left in a recycled segment never verifies). Two
//! slots, written in turn: a torn write of one leaves the other.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::MmapMut;

use super::disk::Disk;

/// Bytes of the segment header; records start here.
pub const SEGMENT_HEADER: usize = 64;
const MAGIC: &[u8; 8] = b"DCOJRNL\0";
const VERSION: u32 = 2;
/// Where the two durability marks are in the header.
const MARK_SLOTS: [usize; 2] = [32, 44];

/// A durability mark: the records of a segment before offset `end`, `records` of them, were
/// durable (under the journal's policy) when it was written.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Mark {
    /// Offset just past the last record it covers.
    pub end: u32,
    /// Records before `end`, the SEAL not counted.
    pub records: u32,
}

impl Mark {
    fn encode(self, seq: u64) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[0..4].copy_from_slice(&self.end.to_le_bytes());
        b[4..8].copy_from_slice(&self.records.to_le_bytes());
        let crc = crc32c::crc32c_append(super::record::seed(seq), &b[0..8]);
        b[8..12].copy_from_slice(&crc.to_le_bytes());
        b
    }

    fn decode(b: &[u8], seq: u64) -> Option<Mark> {
        let b: &[u8; 12] = b.try_into().ok()?;
        let crc = u32::from_le_bytes([b[8], b[9], b[10], b[11]]);
        (crc32c::crc32c_append(super::record::seed(seq), &b[0..8]) == crc).then(|| Mark {
            end: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            records: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        })
    }
}

/// Writes `mark` of segment `seq` into header slot `slot` (0 or 1) of `file`, through the page
/// cache (the same pages the mapping shows); the next sync of the file makes it durable.
pub fn write_mark(
    disk: &dyn Disk,
    file: &File,
    seq: u64,
    slot: usize,
    mark: Mark,
) -> io::Result<()> {
    disk.write_at(file, &mark.encode(seq), MARK_SLOTS[slot & 1] as u64)
}

/// A mapped segment file.
pub struct Segment {
    /// Sequence number.
    pub seq: u64,
    /// Path of the file.
    pub path: PathBuf,
    /// The file, shared with the syncer thread.
    pub file: Arc<File>,
    map: MmapMut,
}

/// The file name of segment `seq`.
pub fn file_name(seq: u64) -> String {
    format!("{seq:020}.seg")
}

/// The sequence number in a segment file name, if it is one.
pub fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

fn header(seq: u64, size: u64) -> [u8; SEGMENT_HEADER] {
    let mut h = [0u8; SEGMENT_HEADER];
    h[0..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&seq.to_le_bytes());
    h[24..32].copy_from_slice(&size.to_le_bytes());
    let crc = crc32c::crc32c(&h[0..32]);
    h[60..64].copy_from_slice(&crc.to_le_bytes());
    h
}

fn map(file: &File) -> io::Result<MmapMut> {
    // SAFETY: the journal is the only writer of its files (one hub per data directory, held by
    // the directory lock), and the file is never truncated while mapped, so the mapping stays
    // valid and no other process changes the bytes under us.
    unsafe { MmapMut::map_mut(file) }
}

impl Segment {
    /// Creates segment `seq` of `size` bytes in `dir`: allocates every block (so writes through
    /// the mapping can never hit a full disk), maps it, touches every page once (so the first
    /// real write does not pay for a page fault), writes the header, and moves it into place.
    /// Fails with the allocation's error (ENOSPC when the disk is full) and leaves nothing.
    pub fn create(disk: &dyn Disk, dir: &Path, seq: u64, size: usize) -> io::Result<Segment> {
        Segment::create_at(disk, dir, &file_name(seq), seq, size)
    }

    /// Creates a spare segment (named `spare-N.prep`, header for sequence 0) to be put in place
    /// later with [`Segment::recycle`].
    pub fn create_spare(
        disk: &dyn Disk,
        dir: &Path,
        name: &str,
        size: usize,
    ) -> io::Result<Segment> {
        Segment::create_at(disk, dir, &format!("spare-{name}.prep"), 0, size)
    }

    fn create_at(
        disk: &dyn Disk,
        dir: &Path,
        name: &str,
        seq: u64,
        size: usize,
    ) -> io::Result<Segment> {
        let tmp = dir.join(format!("{name}.tmp"));
        let path = dir.join(name);
        let made = (|| {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            disk.allocate(&file, size as u64)?;
            let mut map = map(&file)?;
            crate::sys::prefault(&mut map[..]);
            map[..SEGMENT_HEADER].copy_from_slice(&header(seq, size as u64));
            disk.flush_head(&map, &file, SEGMENT_HEADER)?;
            disk.rename(&tmp, &path)?;
            disk.sync_dir(dir)?;
            Ok((file, map))
        })();
        match made {
            Ok((file, map)) => Ok(Segment {
                seq,
                path,
                file: Arc::new(file),
                map,
            }),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// Takes a reclaimed segment out of the sequence: renames it to a spare name (recovery
    /// removes spares), to be put in place again with [`Segment::recycle`].
    pub fn retire(mut self, disk: &dyn Disk, dir: &Path) -> io::Result<Segment> {
        let path = dir.join(format!("spare-r{}.prep", self.seq));
        disk.rename(&self.path, &path)?;
        disk.sync_dir(dir)?;
        self.path = path;
        Ok(self)
    }

    /// Puts a spare or reclaimed segment in place as segment `seq`: writes its new header
    /// first, then renames it, so a file with a segment's name always has a valid header. Its old
    /// records stay but can never verify again (their checksums are seeded with the old
    /// sequence number); the first record slot is zeroed so a scan ends at once.
    pub fn recycle(mut self, disk: &dyn Disk, dir: &Path, seq: u64) -> io::Result<Segment> {
        let path = dir.join(file_name(seq));
        let size = self.map.len() as u64;
        self.map[..SEGMENT_HEADER].copy_from_slice(&header(seq, size));
        let end = (SEGMENT_HEADER + 16).min(self.map.len());
        self.map[SEGMENT_HEADER..end].fill(0);
        disk.flush_head(&self.map, &self.file, end)?;
        disk.rename(&self.path, &path)?;
        disk.sync_dir(dir)?;
        self.seq = seq;
        self.path = path;
        Ok(self)
    }

    /// Opens an existing segment for recovery, checking its header.
    pub fn open(path: &Path, seq: u64) -> io::Result<Segment> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let len = file.metadata()?.len();
        if len < SEGMENT_HEADER as u64 {
            return Err(bad(path, "shorter than a segment header"));
        }
        let map = map(&file)?;
        let h = &map[..SEGMENT_HEADER];
        if &h[0..8] != MAGIC {
            return Err(bad(path, "not a dco journal segment (bad magic)"));
        }
        let version = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
        let covered = match version {
            1 => 60,
            VERSION => 32,
            _ => 0,
        };
        let crc = u32::from_le_bytes([h[60], h[61], h[62], h[63]]);
        if covered == 0 || crc32c::crc32c(&h[0..covered]) != crc {
            // An unknown version number is as likely a damaged one.
            return Err(bad(
                path,
                if covered == 0 {
                    "unsupported segment version, or a damaged header"
                } else {
                    "segment header checksum mismatch"
                },
            ));
        }
        let mut s = [0u8; 8];
        s.copy_from_slice(&h[16..24]);
        if u64::from_le_bytes(s) != seq {
            return Err(bad(
                path,
                "sequence number in the header differs from the file name",
            ));
        }
        Ok(Segment {
            seq,
            path: path.to_path_buf(),
            file: Arc::new(file),
            map,
        })
    }

    /// The size the header says the file was made with: a file shorter than this was cut.
    pub fn made_size(&self) -> u64 {
        let mut s = [0u8; 8];
        s.copy_from_slice(&self.map[24..32]);
        u64::from_le_bytes(s)
    }

    /// The newest durability mark that verifies (None: none written yet, a segment of an
    /// earlier build, or both slots damaged).
    pub fn mark(&self) -> Option<Mark> {
        if self.map[8..12] != VERSION.to_le_bytes() {
            return None;
        }
        MARK_SLOTS
            .iter()
            .filter_map(|&at| Mark::decode(&self.map[at..at + 12], self.seq))
            .max_by_key(|m| m.end)
    }

    /// Whether the header has the mark slots (version 2), so a missing mark means nothing was
    /// durable in it yet.
    pub fn has_marks(&self) -> bool {
        self.map[8..12] == VERSION.to_le_bytes()
    }

    /// The whole mapped file.
    pub fn data(&self) -> &[u8] {
        &self.map
    }

    /// The whole mapped file, writable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.map
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.map.len()
    }
}

fn bad(path: &Path, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {what}", path.display()),
    )
}
