//! One segment file: created preallocated and pre-faulted, memory-mapped, named by its
//! zero-padded sequence number.
//!
//! ```text
//! offset size field
//! 0      8    magic      "DCOJRNL\0"
//! 8      4    version    1 (little-endian)
//! 12     4    reserved   0
//! 16     8    seq        sequence number of this segment
//! 24     8    size       file size in bytes
//! 32     28   reserved   0
//! 60     4    crc        CRC-32C of bytes 0..60
//! 64     ...  records    (see record.rs)
//! ```

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::MmapMut;

/// Bytes of the segment header; records start here.
pub const SEGMENT_HEADER: usize = 64;
const MAGIC: &[u8; 8] = b"DCOJRNL\0";
const VERSION: u32 = 1;

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
    let crc = crc32c::crc32c(&h[0..60]);
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
    pub fn create(dir: &Path, seq: u64, size: usize) -> io::Result<Segment> {
        Segment::create_at(dir, &file_name(seq), seq, size)
    }

    /// Creates a spare segment (named `spare-N.prep`, header for sequence 0) to be put in place
    /// later with [`Segment::recycle`].
    pub fn create_spare(dir: &Path, name: &str, size: usize) -> io::Result<Segment> {
        Segment::create_at(dir, &format!("spare-{name}.prep"), 0, size)
    }

    fn create_at(dir: &Path, name: &str, seq: u64, size: usize) -> io::Result<Segment> {
        let tmp = dir.join(format!("{name}.tmp"));
        let path = dir.join(name);
        let made = (|| {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            crate::sys::allocate(&file, size as u64)?;
            let mut map = map(&file)?;
            crate::sys::prefault(&mut map[..]);
            map[..SEGMENT_HEADER].copy_from_slice(&header(seq, size as u64));
            map.flush_range(0, SEGMENT_HEADER)?;
            std::fs::rename(&tmp, &path)?;
            crate::sys::sync_dir(dir)?;
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
    pub fn retire(mut self, dir: &Path) -> io::Result<Segment> {
        let path = dir.join(format!("spare-r{}.prep", self.seq));
        std::fs::rename(&self.path, &path)?;
        crate::sys::sync_dir(dir)?;
        self.path = path;
        Ok(self)
    }

    /// Puts a spare or reclaimed segment in place as segment `seq`: writes its new header
    /// first, then renames it, so a file with a segment's name always has a valid header. Its old
    /// records stay but can never verify again (their checksums are seeded with the old
    /// sequence number); the first record slot is zeroed so a scan ends at once.
    pub fn recycle(mut self, dir: &Path, seq: u64) -> io::Result<Segment> {
        let path = dir.join(file_name(seq));
        let size = self.map.len() as u64;
        self.map[..SEGMENT_HEADER].copy_from_slice(&header(seq, size));
        let end = (SEGMENT_HEADER + 16).min(self.map.len());
        self.map[SEGMENT_HEADER..end].fill(0);
        self.map.flush_range(0, end)?;
        std::fs::rename(&self.path, &path)?;
        crate::sys::sync_dir(dir)?;
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
        let crc = u32::from_le_bytes([h[60], h[61], h[62], h[63]]);
        if crc32c::crc32c(&h[0..60]) != crc {
            return Err(bad(path, "segment header checksum mismatch"));
        }
        let version = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
        if version != VERSION {
            return Err(bad(path, "unsupported segment version"));
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
