//! The journal: append-only, memory-mapped segment files that make the hub crash-safe.
//!
//! - Records are appended to the active segment through its mapping (a memory copy); each is
//!   framed with length, checksum and kind (`record`).
//! - Segments are preallocated and pre-faulted ahead of need by a helper thread, so rolling to
//!   the next one does not stall the hub (`segment`).
//! - Durability is a policy ([`Durability`]): `none` leaves writes in the page cache (they
//!   survive a crash of the process, not of the machine), `batch` has a syncer thread
//!   fdatasync everything written since its last sync (group commit: one sync covers every
//!   request that arrived meanwhile), `always` syncs in the hub's thread before anything is
//!   acknowledged. [`Journal::durable`] tells how far the policy is met.
//! - Space: the user of the journal pins the records it still needs; a segment is reclaimed once
//!   it and every older segment hold no pinned record (oldest first, so a record that finishes
//!   another can never outlive it). Reclaimed segments are recycled as new ones.
//! - Recovery ([`Journal::open`]) scans every segment in order, verifies checksums, cuts a torn
//!   or corrupt tail of the last segment, and refuses (in the default mode) corruption elsewhere.
//!
//! One writer: the hub's thread. A failed fdatasync is fatal: the process exits rather than
//! acknowledge what may not be on disk.

pub mod record;
mod segment;
mod sync;

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use segment::Segment;
pub use segment::SEGMENT_HEADER;

/// Where a record is: `segment seq << 32 | offset`. Positions grow with every append, so they
/// double as log sequence numbers.
pub type Pos = u64;

fn pos(seq: u64, off: usize) -> Pos {
    (seq << 32) | off as u64
}

/// The segment of a position.
pub fn pos_seq(p: Pos) -> u64 {
    p >> 32
}

/// When appended records count as durable.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Durability {
    /// In the page cache: survives a crash of the hub process, not of the machine.
    None,
    /// Group commit: a syncer thread fdatasyncs everything written since its last sync.
    Batch,
    /// fdatasync in the hub's thread at the end of each round, before acknowledging.
    Always,
}

impl std::str::FromStr for Durability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Durability::None),
            "batch" => Ok(Durability::Batch),
            "always" => Ok(Durability::Always),
            _ => Err(format!(
                "durability must be none, batch or always, not '{s}'"
            )),
        }
    }
}

/// What recovery does with damaged segments.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RecoveryMode {
    /// Cut a torn or corrupt tail of the last segment; any other damage is an error.
    TolerateTailCorruption,
    /// Keep going past any damage: read each segment up to its first bad record, skip segments
    /// that are missing or unreadable. Loses what is past the damage; for operators only.
    Salvage,
}

impl std::str::FromStr for RecoveryMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "tolerate-tail" => Ok(RecoveryMode::TolerateTailCorruption),
            "salvage" => Ok(RecoveryMode::Salvage),
            _ => Err(format!(
                "recovery must be tolerate-tail or salvage, not '{s}'"
            )),
        }
    }
}

/// Settings of a journal.
#[derive(Clone, Debug)]
pub struct JournalConfig {
    /// Directory of the segment files.
    pub dir: PathBuf,
    /// Size of each segment file.
    pub segment_size: usize,
    /// Durability policy.
    pub durability: Durability,
    /// What recovery does with damage.
    pub recovery: RecoveryMode,
    /// Most reclaimed segments kept for recycling; the rest are deleted.
    pub keep_free: usize,
}

impl JournalConfig {
    /// Defaults for `dir`: 64 MiB segments, batch durability, tolerate a torn tail.
    pub fn new(dir: impl Into<PathBuf>) -> JournalConfig {
        JournalConfig {
            dir: dir.into(),
            segment_size: 64 << 20,
            durability: Durability::Batch,
            recovery: RecoveryMode::TolerateTailCorruption,
            keep_free: 2,
        }
    }
}

/// Why an append failed.
#[derive(Debug)]
pub enum AppendError {
    /// The record is larger than a segment can hold.
    TooLarge,
    /// The record has no payload (every record must carry at least one byte).
    Empty,
    /// No space for a new segment (the disk is full); retry after records finish.
    Full(io::Error),
}

impl std::fmt::Display for AppendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppendError::TooLarge => write!(f, "record larger than a journal segment"),
            AppendError::Empty => write!(f, "record without payload"),
            AppendError::Full(e) => write!(f, "the journal cannot grow: {e}"),
        }
    }
}

struct SegState {
    seg: Segment,
    pins: u64,
    /// The segment's CRC seed.
    seed: u32,
}

/// What [`Journal::open`] found, for logs.
#[derive(Debug, Default, Clone)]
pub struct RecoveryReport {
    /// Segments read.
    pub segments: usize,
    /// Records that verified.
    pub records: u64,
    /// Bytes of records scanned.
    pub bytes: u64,
    /// What was cut or skipped, in words.
    pub damage: Vec<String>,
}

/// The journal. Owned by one thread (the hub's).
pub struct Journal {
    cfg: JournalConfig,
    segments: BTreeMap<u64, SegState>,
    active: u64,
    write_off: usize,
    free: Vec<Segment>,
    durable: Arc<AtomicU64>,
    /// Files written since the last commit, for the syncer.
    touched: Vec<Arc<File>>,
    syncer: Option<sync::Syncer>,
    preparer: sync::Preparer,
    _lock: File,
    full: bool,
}

impl Journal {
    /// Opens (or creates) the journal in `cfg.dir` and hands every record that verifies to
    /// `each(pos, kind, payload)`, oldest first. `wake` is called from the syncer thread when
    /// [`Journal::durable`] moves (batch policy). Fails on I/O errors, on a data directory held
    /// by another hub, and (in the default mode) on damage anywhere but the last segment's tail.
    pub fn open(
        cfg: JournalConfig,
        wake: Box<dyn Fn() + Send>,
        mut each: impl FnMut(Pos, u8, &[u8]),
    ) -> io::Result<(Journal, RecoveryReport)> {
        if cfg.segment_size < 1 << 16 || cfg.segment_size > u32::MAX as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "segment size must be between 64 KiB and 4 GiB",
            ));
        }
        std::fs::create_dir_all(&cfg.dir)?;
        let lock = crate::sys::lock_dir(&cfg.dir)?;
        let mut report = RecoveryReport::default();
        let mut seqs = list_segments(&cfg.dir)?;
        seqs.sort_unstable();
        let mut segments = BTreeMap::new();
        let mut write_off = SEGMENT_HEADER;
        let mut last_sealed = false;
        let mut tail: Option<(u64, usize, bool)> = None;
        let last = seqs.last().copied();
        for (i, &seq) in seqs.iter().enumerate() {
            let is_last = Some(seq) == last;
            if i > 0 && seqs[i - 1] + 1 != seq {
                let msg = format!(
                    "segment {} is missing",
                    file_name_range(seqs[i - 1] + 1, seq)
                );
                if cfg.recovery == RecoveryMode::Salvage {
                    tracing::error!("journal: {msg}; salvaging what follows");
                    report.damage.push(msg);
                } else {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("journal in {}: {msg}", cfg.dir.display()),
                    ));
                }
            }
            let path = cfg.dir.join(segment::file_name(seq));
            if is_last {
                // A last segment cut short (by a crash mid-creation, or by hand) is extended to
                // full size first, so appends can go on in it and it can always be sealed.
                if let Ok(f) = std::fs::OpenOptions::new().write(true).open(&path) {
                    if f.metadata()?.len() < cfg.segment_size as u64 {
                        crate::sys::allocate(&f, cfg.segment_size as u64)?;
                    }
                }
            }
            // A file with a segment's name always got its header before its name (see
            // Segment::recycle), so a bad header is damage, never an unfinished creation.
            let seg = match Segment::open(&path, seq) {
                Ok(s) => s,
                Err(e) if cfg.recovery == RecoveryMode::Salvage => {
                    tracing::error!("journal: {e}; skipping it");
                    report.damage.push(e.to_string());
                    continue;
                }
                Err(e) => return Err(e),
            };
            report.segments += 1;
            let seed = record::seed(seq);
            let mut at = SEGMENT_HEADER;
            let mut sealed = false;
            let end = loop {
                match record::scan_seeded(seg.data(), seed, at) {
                    record::Scan::Record {
                        kind,
                        payload,
                        next,
                    } => {
                        report.records += 1;
                        report.bytes += (next - at) as u64;
                        if kind == record::KIND_SEAL {
                            sealed = true;
                            break next;
                        }
                        each(pos(seq, at), kind, payload);
                        at = next;
                    }
                    record::Scan::End => break at,
                    record::Scan::Invalid(why) => {
                        let msg = format!("{} at offset {at}: {why}", path.display());
                        if is_last || cfg.recovery == RecoveryMode::Salvage {
                            tracing::warn!("journal: {msg}; cutting the rest of the segment");
                            report.damage.push(msg);
                            break at;
                        }
                        return Err(io::Error::new(io::ErrorKind::InvalidData, msg));
                    }
                }
            };
            if !is_last && !sealed {
                let msg = format!("{} ends without its seal record", path.display());
                if cfg.recovery != RecoveryMode::Salvage {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, msg));
                }
                report.damage.push(msg);
            }
            // The last segment read is where appends go on (whatever was skipped after it).
            tail = Some((seq, end, sealed));
            segments.insert(
                seq,
                SegState {
                    seed: record::seed(seq),
                    seg,
                    pins: 0,
                },
            );
        }
        if let Some((seq, end, sealed)) = tail {
            write_off = end;
            last_sealed = sealed;
            if let Some(st) = segments.get_mut(&seq) {
                // Zero what follows the last good record, so nothing stale is read after it.
                let data = st.seg.data_mut();
                let dirty_end = data[end..]
                    .iter()
                    .rposition(|b| *b != 0)
                    .map(|p| end + p + 1)
                    .unwrap_or(end);
                if dirty_end > end {
                    data[end..dirty_end].fill(0);
                    st.seg.file.sync_data()?;
                }
            }
        }
        let preparer = sync::Preparer::start(cfg.dir.clone(), cfg.segment_size);
        let last_seq = segments.keys().next_back().copied();
        let active = match last_seq {
            Some(s) if !last_sealed => s,
            other => {
                // No segment yet, or the last one was sealed: start a new one. (Appends always
                // leave room for a seal, so an unsealed last segment can take more records.)
                let seq = other.map(|s| s + 1).unwrap_or(1);
                let seg = Segment::create(&cfg.dir, seq, cfg.segment_size)?;
                segments.insert(
                    seq,
                    SegState {
                        seed: record::seed(seq),
                        seg,
                        pins: 0,
                    },
                );
                write_off = SEGMENT_HEADER;
                seq
            }
        };
        let durable = Arc::new(AtomicU64::new(pos(active, write_off)));
        let syncer = (cfg.durability == Durability::Batch)
            .then(|| sync::Syncer::start(durable.clone(), wake));
        preparer.request(active + 1);
        Ok((
            Journal {
                cfg,
                segments,
                active,
                write_off,
                free: Vec::new(),
                durable,
                touched: Vec::new(),
                syncer,
                preparer,
                _lock: lock,
                full: false,
            },
            report,
        ))
    }

    /// Appends a record made of `parts` and returns its position. The bytes are in the
    /// mapping when this returns; they are durable once [`Journal::durable`] passes the
    /// position.
    pub fn append(&mut self, kind: u8, parts: &[&[u8]]) -> Result<Pos, AppendError> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len == 0 {
            // A zero length marks the end of the data in a segment.
            return Err(AppendError::Empty);
        }
        let need = record::encoded_len(len);
        let seal = record::encoded_len(8);
        if SEGMENT_HEADER + need + seal > self.cfg.segment_size {
            return Err(AppendError::TooLarge);
        }
        let room = self
            .segments
            .get(&self.active)
            .map(|st| st.seg.len())
            .unwrap_or(0);
        if self.write_off + need + seal > room {
            self.roll()?;
        }
        let seq = self.active;
        let at = self.write_off;
        let st = self
            .segments
            .get_mut(&seq)
            .ok_or_else(|| AppendError::Full(io::Error::other("active segment missing")))?;
        let n = record::encode_seeded(&mut st.seg.data_mut()[at..], st.seed, kind, parts);
        self.write_off = at + n;
        if self
            .touched
            .last()
            .is_none_or(|f| !Arc::ptr_eq(f, &st.seg.file))
        {
            self.touched.push(st.seg.file.clone());
        }
        if self.cfg.durability == Durability::None {
            self.durable.store(self.written(), Ordering::Release);
        }
        Ok(pos(seq, at))
    }

    /// Seals the active segment and moves to the next (recycled, prepared or new).
    fn roll(&mut self) -> Result<(), AppendError> {
        let next = self.active + 1;
        // Get the next segment ready (under a spare name) before touching the active one, so
        // a full disk leaves the active segment as it was.
        // A reclaimed segment first (already allocated and faulted in), then a prepared spare.
        let ready = match self.free.pop().or_else(|| self.preparer.take()) {
            Some(s) => s,
            // Named apart from the preparer's spares, which may be in the making.
            None => match Segment::create_spare(
                &self.cfg.dir,
                &format!("h{next}"),
                self.cfg.segment_size,
            ) {
                Ok(s) => s,
                Err(e) => {
                    if !self.full {
                        tracing::error!("journal full: cannot create a segment: {e}");
                    }
                    self.full = true;
                    return Err(AppendError::Full(e));
                }
            },
        };
        // 1. Seal the active segment: recovery then knows it ended on purpose. Under a durable
        //    policy the seal is on disk before the next segment gets its name (one sync per
        //    segment), so a machine crash cannot leave a named next behind an unsealed one.
        let at = self.write_off;
        let seq = self.active;
        let mut sealed_len = 0;
        if let Some(st) = self.segments.get_mut(&seq) {
            sealed_len = record::encode(
                &mut st.seg.data_mut()[at..],
                seq,
                record::KIND_SEAL,
                &[&next.to_le_bytes()],
            );
            if self.cfg.durability != Durability::None {
                sync::sync_or_die(&st.seg.file);
            }
        }
        // 2. Give the next its header, then its name: a file with a segment's name always has
        //    a valid header, whenever the hub dies. If that fails, the seal is taken back and
        //    the active segment stays as it was.
        let seg = match ready.recycle(&self.cfg.dir, next) {
            Ok(seg) => seg,
            Err(e) => {
                if let Some(st) = self.segments.get_mut(&seq) {
                    st.seg.data_mut()[at..at + sealed_len].fill(0);
                }
                if !self.full {
                    tracing::error!("journal full: cannot install segment {next}: {e}");
                }
                self.full = true;
                return Err(AppendError::Full(e));
            }
        };
        self.full = false;
        self.write_off = at + sealed_len;
        if let Some(st) = self.segments.get(&seq) {
            if self
                .touched
                .last()
                .is_none_or(|f| !Arc::ptr_eq(f, &st.seg.file))
            {
                self.touched.push(st.seg.file.clone());
            }
        }
        self.touched.push(seg.file.clone());
        self.segments.insert(
            next,
            SegState {
                seed: record::seed(next),
                seg,
                pins: 0,
            },
        );
        self.active = next;
        self.write_off = SEGMENT_HEADER;
        // One spare in the making at most, and none while reclaimed segments are at hand.
        if self.free.is_empty() && !self.preparer.pending() {
            self.preparer.request(next + 1);
        }
        self.reclaim();
        Ok(())
    }

    /// The position just past the last record written.
    pub fn written(&self) -> Pos {
        pos(self.active, self.write_off)
    }

    /// Every record before this position is as durable as the policy asks.
    pub fn durable(&self) -> Pos {
        self.durable.load(Ordering::Acquire)
    }

    /// Ends a round of appends: `always` syncs here; `batch` hands the work to the syncer.
    /// A failed sync is fatal (see the module docs).
    pub fn commit(&mut self) {
        if self.touched.is_empty() {
            return;
        }
        let upto = self.written();
        let files = std::mem::take(&mut self.touched);
        match self.cfg.durability {
            Durability::None => {}
            Durability::Always => {
                for f in &files {
                    sync::sync_or_die(f);
                }
                self.durable.store(upto, Ordering::Release);
            }
            Durability::Batch => {
                if let Some(s) = &self.syncer {
                    s.request(upto, files);
                }
            }
        }
    }

    /// The record at `p`, if it is there and verifies.
    pub fn read(&self, p: Pos) -> Option<(u8, &[u8])> {
        let st = self.segments.get(&pos_seq(p))?;
        // Written by this process or verified by recovery: no need to checksum it again.
        record::peek(st.seg.data(), (p & 0xffff_ffff) as usize)
    }

    /// Marks the record at `p` as still needed: its segment is not reclaimed.
    pub fn pin(&mut self, p: Pos) {
        if let Some(st) = self.segments.get_mut(&pos_seq(p)) {
            st.pins += 1;
        }
    }

    /// The record at `p` is no longer needed.
    pub fn unpin(&mut self, p: Pos) {
        let seq = pos_seq(p);
        if let Some(st) = self.segments.get_mut(&seq) {
            st.pins = st.pins.saturating_sub(1);
            if st.pins == 0 && self.segments.keys().next() == Some(&seq) {
                self.reclaim();
            }
        }
    }

    /// Reclaims segments from the oldest while they hold no pinned record.
    fn reclaim(&mut self) {
        while let Some((&seq, st)) = self.segments.iter().next() {
            if seq == self.active || st.pins > 0 {
                return;
            }
            let Some(st) = self.segments.remove(&seq) else {
                return;
            };
            let keep =
                self.free.len() < self.cfg.keep_free && st.seg.len() == self.cfg.segment_size;
            if keep {
                // Out of the segment sequence at once: a kept file must not look like a live
                // segment to recovery.
                let path = st.seg.path.clone();
                match st.seg.retire(&self.cfg.dir) {
                    Ok(seg) => self.free.push(seg),
                    Err(e) => {
                        tracing::warn!("journal: cannot keep segment {seq} for reuse: {e}");
                        if let Err(e) = std::fs::remove_file(&path) {
                            // Left with its name, it would read as a gap at the next start.
                            tracing::error!(
                                "journal: cannot remove finished segment {}: {e}; remove it \
                                 by hand before the hub restarts",
                                path.display()
                            );
                        }
                    }
                }
            } else {
                let path = st.seg.path.clone();
                drop(st);
                if let Err(e) = std::fs::remove_file(&path) {
                    tracing::warn!("journal: cannot remove {}: {e}", path.display());
                }
            }
        }
    }

    /// Segments on disk (live ones; recycled spares not counted).
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Whether the last attempt to grow failed for lack of space.
    pub fn is_full(&self) -> bool {
        self.full
    }

    /// The directory of the segment files.
    pub fn dir(&self) -> &Path {
        &self.cfg.dir
    }
}

fn file_name_range(from: u64, to: u64) -> String {
    if from + 1 == to {
        segment::file_name(from)
    } else {
        format!(
            "{} .. {}",
            segment::file_name(from),
            segment::file_name(to - 1)
        )
    }
}

fn list_segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name();
        let name = name.to_string_lossy();
        if let Some(seq) = segment::parse_name(&name) {
            out.push(seq);
        } else if name.ends_with(".tmp") || name.ends_with(".prep") {
            // A segment whose creation was interrupted, or an unused spare.
            let _ = std::fs::remove_file(e.path());
        }
    }
    Ok(out)
}
