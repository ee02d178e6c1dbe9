//! The journal: append-only, memory-mapped segment files that make the hub crash-safe.
//!
//! - Records are framed with length, checksum and kind (`record`) and staged in memory; each
//!   round writes them to the active segment with one `pwrite`, which dirties only the blocks
//!   it covers, so an fdatasync writes what was appended since the last one (`tail`). Reads
//!   go through the segment's mapping, or the stage for what is not written out yet.
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

pub mod disk;
pub mod record;
mod recover;
mod segment;
mod sync;
mod tail;

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use recover::{Lost, Region};
pub use segment::SEGMENT_HEADER;
use segment::{Mark, Segment};
use tail::Tail;

/// The longest that records nothing waits for (answers, confirmations, delivery notes) wait
/// for a sync under `batch` ([`Journal::commit_with`]).
pub const DEFER_LIMIT: std::time::Duration = std::time::Duration::from_millis(2);

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
    /// Most reclaimed segments kept for recycling beyond what the reserve needs; the rest
    /// are deleted.
    pub keep_free: usize,
    /// The largest record drawn from the reserve ([`Draw::Owed`]): room for one is kept per
    /// segment the reserve spans, since a record never straddles two segments.
    pub owed_record: usize,
    /// Says what a damaged record looks like from its kind and first payload bytes, in
    /// recovery's reports (the journal itself does not know what its records mean).
    pub describe: Option<fn(u8, &[u8]) -> String>,
    /// The file operations that can fail (a test puts its own here).
    pub disk: Arc<dyn disk::Disk>,
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
            owed_record: 4096,
            describe: None,
            disk: Arc::new(disk::OsDisk),
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

/// What an append may use of the space the journal has allocated ("on hand": the rest of the
/// active segment and the spare segments ready). The journal keeps on hand what it owes: the
/// records that work it accepted still needs (answers, confirmations), so those can be written
/// when the disk is full.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Draw {
    /// Only what is not owed: fails with [`AppendError::Full`] rather than eat into the
    /// reserve (a delivery note, a forward); on success `n` more bytes are owed (a refusal's
    /// answer owes its confirmation).
    Spare(u32),
    /// New work: like `Spare`, and on success `n` more bytes are owed (the records the work
    /// will need to finish). Its failure makes the journal full ([`Journal::is_full`]), its
    /// success ends that.
    New(u32),
    /// A record the journal owes, `n` bytes of it reserved: may use the reserve (but not more
    /// of it than `n`: a larger record must find the excess beyond what others are owed); on
    /// success `n` bytes are owed no more. A failure leaves the debt: the caller writes
    /// something smaller in its place, or gives it up with [`Journal::release`].
    Owed(u32),
}

struct SegState {
    seg: Segment,
    pins: u64,
    /// The segment's CRC seed.
    seed: u32,
}

/// What the journal wrote since it opened ([`Journal::io_stats`]).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct JournalIo {
    /// Record bytes appended.
    pub bytes: u64,
    /// fdatasyncs made.
    pub syncs: u64,
    /// Median fdatasync time, microseconds (within 1%).
    pub sync_p50_us: u64,
    /// 99th percentile fdatasync time, microseconds.
    pub sync_p99_us: u64,
    /// Longest fdatasync, microseconds.
    pub sync_max_us: u64,
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
    /// Durable records found damaged or missing (salvage only: the default mode refuses to
    /// start instead).
    pub lost: Vec<Lost>,
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
    /// Records in the active segment (SEAL not counted), for the durability marks.
    active_records: u32,
    /// Size of the active segment's file.
    active_len: usize,
    /// What the hub may treat as durable: what the policy made durable, once a MARK record
    /// says so ([`Journal::durable`]).
    ackable: Pos,
    /// The end of the last record that is not a MARK ([`Journal::written`]).
    written_real: Pos,
    /// The position the last MARK record covers.
    last_marked: Pos,
    /// Positions handed to the syncer, with the records before them in their segment.
    commits: std::collections::VecDeque<(Pos, u32)>,
    /// How long fdatasyncs take.
    sync_times: sync::SyncTimes,
    /// Since when written records wait for a sync nothing asked for (`batch`).
    deferred_since: Option<std::time::Instant>,
    /// Bytes of records appended since the journal opened.
    bytes_written: u64,
    /// Header slot of the next header mark written from this thread (`none`, `always`).
    mark_slot: usize,
    /// A header mark not yet written (`none`, `always`: written by [`Journal::idle`]).
    header_note: sync::MarkNote,
    /// Bytes owed to accepted work (see [`Draw`]).
    owed: u64,
    /// While full: no new segment is tried before this.
    retry_at: Option<std::time::Instant>,
    /// The active segment's records not yet written to its file.
    tail: Tail,
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
        let salvage = cfg.recovery == RecoveryMode::Salvage;
        let mut report = RecoveryReport::default();
        let mut seqs = list_segments(&cfg.dir)?;
        seqs.sort_unstable();
        let mut segments = BTreeMap::new();
        let mut refused: Vec<String> = Vec::new();
        // A torn tail of the last segment: (seq, from, to, why); cut once the start goes on.
        let mut torn: Option<(u64, usize, usize, &'static str)> = None;
        // (seq, where its records end, sealed, records) of the last segment read.
        let mut tail: Option<(u64, usize, bool, u32)> = None;
        let last = seqs.last().copied();
        for (i, &seq) in seqs.iter().enumerate() {
            let is_last = Some(seq) == last;
            if i > 0 && seqs[i - 1] + 1 != seq {
                let msg = format!(
                    "segment {} is missing",
                    file_name_range(seqs[i - 1] + 1, seq)
                );
                if !salvage {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("journal in {}: {msg}", cfg.dir.display()),
                    ));
                }
                tracing::error!("journal: {msg}; salvaging what follows");
                report.lost.push(Lost {
                    segment: cfg.dir.join(file_name_range(seqs[i - 1] + 1, seq)),
                    regions: Vec::new(),
                    records: None,
                    cut_to: None,
                    kept: Vec::new(),
                    describe: None,
                });
                report.damage.push(msg);
            }
            let path = cfg.dir.join(segment::file_name(seq));
            let orig_len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            // A file with a segment's name always got its header before its name (see
            // Segment::recycle), so a bad header is damage, never an unfinished creation.
            let mut seg = match Segment::open(&path, seq) {
                Ok(s) => s,
                Err(e) if salvage => {
                    tracing::error!("journal: {e}; skipping it");
                    report.lost.push(Lost {
                        segment: path.clone(),
                        regions: Vec::new(),
                        records: None,
                        cut_to: None,
                        kept: Vec::new(),
                        describe: None,
                    });
                    report.damage.push(e.to_string());
                    continue;
                }
                Err(e) => return Err(e),
            };
            report.segments += 1;
            let scanned = recover::scan_segment(&seg, is_last, orig_len, &mut report, &mut each);
            let mut records = scanned.records;
            if let Some((from, to, why)) = scanned.torn {
                torn = Some((seq, from, to, why));
            }
            if let Some(mut lost) = scanned.lost.clone() {
                lost.describe = cfg.describe;
                if !salvage {
                    refused.push(lost.to_string());
                } else {
                    // Keep the damaged bytes, then repair: a PAD over each stretch the records
                    // go on after, a SEAL after the last record of an older segment.
                    for r in &lost.regions {
                        let (from, to) = (r.from as usize, r.to as usize);
                        match recover::keep_aside(&cfg.dir, &path, seg.data(), from, to, usize::MAX)
                        {
                            Ok(Some(k)) => lost.kept.push(k),
                            Ok(None) => {}
                            Err(e) => {
                                return Err(io::Error::new(
                                    e.kind(),
                                    format!(
                                        "journal: cannot keep the damaged bytes of {} aside: \
                                         {e}; it was not repaired",
                                        path.display()
                                    ),
                                ))
                            }
                        }
                    }
                    for r in &lost.regions {
                        let (from, to) = (r.from as usize, r.to as usize);
                        if to <= scanned.end {
                            recover::pad(seg.data_mut(), seq, from, to);
                        }
                    }
                    // The marks count what is there now (a PAD in place of lost records).
                    records = recover::recount_marks(seg.data_mut(), seq);
                    if !is_last && !scanned.sealed {
                        let end = scanned.end;
                        let dirty = recover::dirty_end(seg.data(), end);
                        seg.data_mut()[end..dirty].fill(0);
                        if end + record::encoded_len(8) <= seg.len() {
                            record::encode(
                                &mut seg.data_mut()[end..],
                                seq,
                                record::KIND_SEAL,
                                &[&(seq + 1).to_le_bytes()],
                            );
                        }
                    }
                    cfg.disk.sync_data(&seg.file)?;
                    tracing::error!(
                        "journal: {lost}; salvaged: the records after the damage are kept{}",
                        if lost.kept.is_empty() {
                            String::new()
                        } else {
                            format!(
                                ", the damaged bytes are in {}",
                                lost.kept
                                    .iter()
                                    .map(|k| k.display().to_string())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        }
                    );
                    report.damage.push(lost.to_string());
                    report.lost.push(lost);
                }
            }
            // The last segment read is where appends go on (whatever was skipped after it).
            tail = Some((seq, scanned.end, scanned.sealed, records));
            segments.insert(
                seq,
                SegState {
                    seed: record::seed(seq),
                    seg,
                    pins: 0,
                },
            );
        }
        if !refused.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "journal in {}: records that were durable (acknowledged) are damaged or \
                     missing: {}. Nothing was changed; to start without them use --recovery \
                     salvage, which keeps the damaged bytes in {} and reports what was lost",
                    cfg.dir.display(),
                    refused.join("; "),
                    cfg.dir.join("damaged").display()
                ),
            ));
        }
        let mut write_off = SEGMENT_HEADER;
        let mut last_sealed = false;
        let mut active_records = 0;
        if let Some((seq, end, sealed, records)) = tail {
            write_off = end;
            last_sealed = sealed;
            active_records = records;
            if let Some(st) = segments.get_mut(&seq) {
                // A last segment shorter than the segment size (a cut one, salvaged, or one
                // made with a smaller size) is extended, so appends can go on in it and it can
                // always be sealed.
                if st.seg.len() < cfg.segment_size {
                    let f = std::fs::OpenOptions::new().write(true).open(&st.seg.path)?;
                    cfg.disk.allocate(&f, cfg.segment_size as u64)?;
                    let path = st.seg.path.clone();
                    st.seg = Segment::open(&path, seq)?;
                }
                if let Some((tseq, from, to, why)) = torn.filter(|t| t.0 == seq) {
                    // Some of it, for whoever wants to know what the crash left.
                    let kept = recover::keep_aside(
                        &cfg.dir,
                        &st.seg.path,
                        st.seg.data(),
                        from,
                        to,
                        64 << 10,
                    );
                    let msg = format!(
                        "{} at offset {from}: {why}; cutting the rest of the segment (it was \
                         never durable){}",
                        segment::file_name(tseq),
                        match kept {
                            Ok(Some(k)) => format!("; its first bytes are kept in {}", k.display()),
                            _ => String::new(),
                        }
                    );
                    tracing::warn!("journal: {msg}");
                    report.damage.push(msg);
                }
                // Zero what follows the last good record, so nothing stale is read after it.
                let dirty_end = recover::dirty_end(st.seg.data(), end);
                let mut changed = dirty_end > end;
                st.seg.data_mut()[end..dirty_end].fill(0);
                // The mark says what is there now (salvage may have cut below the old one).
                let mark = Mark {
                    end: end as u32,
                    records,
                };
                if st.seg.has_marks() && st.seg.mark().is_some_and(|m| m != mark) {
                    for slot in 0..2 {
                        segment::write_mark(&*cfg.disk, &st.seg.file, seq, slot, mark)?;
                    }
                    changed = true;
                }
                if changed {
                    cfg.disk.sync_data(&st.seg.file)?;
                }
            }
        }
        let preparer = sync::Preparer::start(cfg.disk.clone(), cfg.dir.clone(), cfg.segment_size);
        let last_seq = segments.keys().next_back().copied();
        let active = match last_seq {
            Some(s) if !last_sealed => s,
            other => {
                // No segment yet, or the last one was sealed: start a new one. (Appends always
                // leave room for a seal, so an unsealed last segment can take more records.)
                let seq = other.map(|s| s + 1).unwrap_or(1);
                let seg = Segment::create(&*cfg.disk, &cfg.dir, seq, cfg.segment_size)?;
                segments.insert(
                    seq,
                    SegState {
                        seed: record::seed(seq),
                        seg,
                        pins: 0,
                    },
                );
                write_off = SEGMENT_HEADER;
                active_records = 0;
                seq
            }
        };
        let active_len = segments.get(&active).map(|st| st.seg.len()).unwrap_or(0);
        let sync_times = sync::SyncTimes::default();
        let durable = Arc::new(AtomicU64::new(pos(active, write_off)));
        let syncer = (cfg.durability == Durability::Batch).then(|| {
            sync::Syncer::start(cfg.disk.clone(), sync_times.clone(), durable.clone(), wake)
        });
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
                active_records,
                active_len,
                ackable: pos(active, write_off),
                written_real: pos(active, write_off),
                last_marked: pos(active, write_off),
                commits: std::collections::VecDeque::new(),
                mark_slot: 0,
                header_note: None,
                sync_times,
                deferred_since: None,
                bytes_written: 0,
                owed: 0,
                retry_at: None,
                tail: Tail::new(active, write_off),
            },
            report,
        ))
    }

    /// Appends a record that draws on the journal's space as `draw` says (see [`Draw`]).
    pub fn append_draw(
        &mut self,
        kind: u8,
        parts: &[&[u8]],
        draw: Draw,
    ) -> Result<Pos, AppendError> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let need = record::encoded_len(len) as u64;
        match draw {
            Draw::Owed(n) => {
                if need > n as u64 {
                    // Beyond what was reserved for it: the excess may not eat what others are
                    // owed.
                    let others = self.owed.saturating_sub(n as u64);
                    let want = others + self.slack(others);
                    if self.on_hand_after(need) < want {
                        self.top_up(need, want)?;
                    }
                }
                let p = self.append(kind, parts)?;
                self.owed = self.owed.saturating_sub(n as u64);
                Ok(p)
            }
            Draw::Spare(extra) | Draw::New(extra) => {
                let extra = extra as u64;
                let want = self.owed + extra + self.slack(self.owed + extra);
                if self.on_hand_after(need) < want {
                    self.top_up(need, want)?;
                }
                let p = self.append(kind, parts)?;
                self.owed += extra;
                if self.full && matches!(draw, Draw::New(_)) {
                    self.full = false;
                    tracing::info!("journal: room for new work again");
                }
                if !self.preparer.pending() && self.wants_spare() {
                    self.preparer.request(self.active + 1);
                }
                Ok(p)
            }
        }
    }

    /// Counts `n` more bytes as owed (recovery: the work it found unfinished).
    pub fn owe(&mut self, n: u64) {
        self.owed += n;
    }

    /// `n` bytes are owed no more (work that finished without writing what it reserved).
    pub fn release(&mut self, n: u64) {
        self.owed = self.owed.saturating_sub(n);
    }

    /// Bytes owed to accepted work.
    pub fn owed(&self) -> u64 {
        self.owed
    }

    /// What the journal wrote since it opened: record bytes appended, and its fdatasyncs
    /// (count, p50, p99, max in microseconds).
    pub fn io_stats(&self) -> JournalIo {
        let (syncs, p50, p99, max) = self.sync_times.summary();
        JournalIo {
            bytes: self.bytes_written,
            syncs,
            sync_p50_us: p50,
            sync_p99_us: p99,
            sync_max_us: max,
        }
    }

    /// Room for records in a whole segment.
    fn usable(&self) -> u64 {
        (self.cfg.segment_size - SEGMENT_HEADER - 2 * record::encoded_len(8)) as u64
    }

    fn active_room(&self) -> u64 {
        self.active_len
            .saturating_sub(self.write_off + 2 * record::encoded_len(8)) as u64
    }

    /// Space allocated and not written: the rest of the active segment and the spares ready.
    pub fn on_hand(&self) -> u64 {
        self.active_room() + self.free.len() as u64 * self.usable()
    }

    /// What is on hand after appending `need` bytes (a roll loses the rest of the active
    /// segment).
    fn on_hand_after(&self, need: u64) -> u64 {
        let room = self.active_room();
        if need <= room {
            self.on_hand() - need
        } else {
            (self.on_hand() - room).saturating_sub(need)
        }
    }

    /// What `owed` bytes may lose to segment ends: one owed record per segment they span.
    fn slack(&self, owed: u64) -> u64 {
        if owed == 0 {
            return 0;
        }
        (owed / self.usable() + 1) * self.cfg.owed_record as u64
    }

    /// Whether one more spare would keep a segment's worth of room beyond what is owed.
    fn wants_spare(&self) -> bool {
        self.on_hand() < self.owed + self.slack(self.owed) + self.usable()
    }

    /// Gets spares until appending `need` bytes leaves `want` on hand: prepared ones first,
    /// then one made here. Fails with `Full` when no segment can be made (then it tries again
    /// at most every half second).
    fn top_up(&mut self, need: u64, want: u64) -> Result<(), AppendError> {
        while self.on_hand_after(need) < want {
            if let Some(s) = self.preparer.take() {
                self.free.push(s);
                continue;
            }
            let now = std::time::Instant::now();
            if self.retry_at.is_some_and(|t| now < t) {
                return Err(AppendError::Full(io::Error::from(
                    io::ErrorKind::StorageFull,
                )));
            }
            let name = format!("h{}-{:016x}", self.active + 1, crate::sys::random_u64());
            match Segment::create_spare(
                &*self.cfg.disk,
                &self.cfg.dir,
                &name,
                self.cfg.segment_size,
            ) {
                Ok(s) => {
                    self.retry_at = None;
                    self.free.push(s);
                }
                Err(e) => {
                    if !self.full {
                        tracing::error!(
                            "journal full: no space for new work ({} bytes owed to accepted \
                             requests, {} on hand): {e}",
                            self.owed,
                            self.on_hand()
                        );
                    }
                    self.full = true;
                    self.retry_at = Some(now + std::time::Duration::from_millis(500));
                    return Err(AppendError::Full(e));
                }
            }
        }
        Ok(())
    }

    /// Appends a record made of `parts` and returns its position. The bytes are in the stage
    /// when this returns (readable with [`Journal::read`]), in the file after the round's
    /// commit, and durable once [`Journal::durable`] passes the position.
    pub fn append(&mut self, kind: u8, parts: &[&[u8]]) -> Result<Pos, AppendError> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len == 0 {
            // A zero length marks the end of the data in a segment.
            return Err(AppendError::Empty);
        }
        let need = record::encoded_len(len);
        // Room is always left for a MARK and a SEAL after a record.
        let seal = 2 * record::encoded_len(8);
        if SEGMENT_HEADER + need + seal > self.cfg.segment_size {
            return Err(AppendError::TooLarge);
        }
        if self.write_off + need + seal > self.active_len {
            self.roll()?;
        }
        let seq = self.active;
        let at = self.write_off;
        let st = self
            .segments
            .get_mut(&seq)
            .ok_or_else(|| AppendError::Full(io::Error::other("active segment missing")))?;
        let n = record::encoded_len(len);
        // Staged with zeros after it: the next record's header reads as the end of the data
        // (a recycled segment holds old bytes there).
        let out = self.tail.reserve(seq, at, n, st.seg.len());
        record::encode_seeded(out, st.seed, kind, parts);
        self.write_off = at + n;
        self.active_records += 1;
        self.bytes_written += n as u64;
        if self
            .touched
            .last()
            .is_none_or(|f| !Arc::ptr_eq(f, &st.seg.file))
        {
            self.touched.push(st.seg.file.clone());
        }
        self.written_real = pos(seq, self.write_off);
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
                &*self.cfg.disk,
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
        if let Some(st) = self.segments.get(&seq) {
            let out = self
                .tail
                .reserve(seq, at, record::encoded_len(8), st.seg.len());
            sealed_len = record::encode(out, seq, record::KIND_SEAL, &[&next.to_le_bytes()]);
        }
        self.write_out();
        if self.cfg.durability != Durability::None {
            if let Some(st) = self.segments.get(&seq) {
                sync::sync_or_die(&*self.cfg.disk, &self.sync_times, &st.seg.file);
            }
        }
        // 2. Give the next its header, then its name: a file with a segment's name always has
        //    a valid header, whenever the hub dies. If that fails, the seal is taken back and
        //    the active segment stays as it was.
        let seg = match ready.recycle(&*self.cfg.disk, &self.cfg.dir, next) {
            Ok(seg) => seg,
            Err(e) => {
                if let Some(st) = self.segments.get(&seq) {
                    let zeros = vec![0u8; sealed_len];
                    if let Err(e) = self.cfg.disk.append_at(&st.seg.file, &zeros, at as u64) {
                        sync::die("write", &e);
                    }
                }
                self.tail = Tail::new(seq, at);
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
        self.active_len = self.segments.get(&next).map(|st| st.seg.len()).unwrap_or(0);
        self.write_off = SEGMENT_HEADER;
        self.tail = Tail::new(next, SEGMENT_HEADER);
        self.active_records = 0;
        // One spare in the making at most, and none while reclaimed segments are at hand
        // (unless the reserve needs more).
        if (self.free.is_empty() || self.wants_spare()) && !self.preparer.pending() {
            self.preparer.request(next + 1);
        }
        self.reclaim();
        Ok(())
    }

    /// The position just past the last record written (MARK records aside: they need no
    /// sync of their own).
    pub fn written(&self) -> Pos {
        self.written_real
    }

    /// The position just past everything in the active segment.
    fn end(&self) -> Pos {
        pos(self.active, self.write_off)
    }

    /// Every record before this position is as durable as the policy asks, and a durability
    /// mark says so; it moves at [`Journal::commit`].
    pub fn durable(&self) -> Pos {
        self.ackable
    }

    /// Ends a round of appends.
    ///
    /// First, what the policy made durable since the last round is said in the segment, with
    /// a MARK record (in the page cache at once, on disk with the next sync), and only then
    /// may the hub treat it as durable ([`Journal::durable`]): so a mark never says less than
    /// what was acknowledged, and recovery tells damage to acknowledged records from a torn
    /// tail. Then `always` syncs this round's writes here and `batch` hands them to the
    /// syncer. A failed sync is fatal (see the module docs).
    pub fn commit(&mut self) {
        self.commit_with(true)
    }

    /// [`Journal::commit`], saying whether anything waits for this round's records to be
    /// durable (an acknowledgement, a delivery). Under `batch`, a round nothing waits for (an
    /// answer, a confirmation, a delivery note) asks for no sync of its own: its records go
    /// with the next sync something waits for, or after [`DEFER_LIMIT`] at the latest, so a
    /// call costs one fdatasync, not two.
    pub fn commit_with(&mut self, urgent: bool) {
        if self.cfg.durability == Durability::Batch {
            let live = self.durable.load(Ordering::Acquire);
            if live > self.ackable {
                let mut count = None;
                while let Some(&(p, c)) = self.commits.front() {
                    if p > live {
                        break;
                    }
                    if p == live {
                        count = Some(c);
                    }
                    self.commits.pop_front();
                }
                self.mark_durable(live, count);
            }
        }
        // Every round ends with its records in the file (the page cache), whatever the policy:
        // they survive a crash of the process.
        self.write_out();
        if self.touched.is_empty() {
            return;
        }
        if self.cfg.durability == Durability::Batch && !urgent {
            let since = *self
                .deferred_since
                .get_or_insert_with(std::time::Instant::now);
            if since.elapsed() < DEFER_LIMIT {
                return;
            }
        }
        self.deferred_since = None;
        let files = std::mem::take(&mut self.touched);
        match self.cfg.durability {
            Durability::None => {
                // In the page cache is all `none` asks.
                let (upto, count) = (self.end(), self.active_records);
                self.mark_durable(upto, Some(count));
                // The MARK goes to the page cache at once, like the records it covers.
                self.write_out();
                self.header_note = self.note(upto, count);
            }
            Durability::Always => {
                let (upto, count) = (self.end(), self.active_records);
                for f in &files {
                    sync::sync_or_die(&*self.cfg.disk, &self.sync_times, f);
                }
                self.mark_durable(upto, Some(count));
                self.write_out();
                self.header_note = self.note(upto, count);
            }
            Durability::Batch => {
                let (upto, count) = (self.end(), self.active_records);
                self.commits.push_back((upto, count));
                let note = self.note(upto, count);
                if let Some(s) = &self.syncer {
                    s.request(upto, note, files);
                }
            }
        }
    }

    /// Writes the staged records of the active segment to its file. A failed write is fatal,
    /// like a failed sync.
    fn write_out(&mut self) {
        if let Err(e) = self.flush_tail() {
            sync::die("write", &e);
        }
    }

    /// Puts the staged records in the active segment: with a `pwrite` where syncs will
    /// follow (it dirties only the blocks it covers); under `none`, where nothing is synced,
    /// with a copy into the mapping, which costs no system call.
    fn flush_tail(&mut self) -> io::Result<()> {
        let Some(st) = self.segments.get_mut(&self.tail.seq()) else {
            return Ok(());
        };
        if self.cfg.durability == Durability::None {
            self.tail.copy_out(st.seg.data_mut());
            Ok(())
        } else {
            self.tail.write_out(&*self.cfg.disk, &st.seg.file)
        }
    }

    /// The header mark of the active segment for `upto`, `count` records before it.
    fn note(&self, upto: Pos, count: u32) -> sync::MarkNote {
        let st = self.segments.get(&pos_seq(upto))?;
        if !st.seg.has_marks() {
            // A segment of an earlier build: its header's checksum covers the slots.
            return None;
        }
        Some((
            st.seg.file.clone(),
            pos_seq(upto),
            Mark {
                end: (upto & 0xffff_ffff) as u32,
                records: count,
            },
        ))
    }

    /// `upto` is durable (`count` records before it in its segment): appends a MARK record
    /// saying so, if `upto` is in the active segment and the record fits without a roll, and
    /// lets the hub treat it as durable.
    fn mark_durable(&mut self, upto: Pos, count: Option<u32>) {
        let mark_len = record::encoded_len(8);
        let seq = self.active;
        if pos_seq(upto) != seq {
            // An older segment: sealed and synced whole before the next one was named.
            self.ackable = self.ackable.max(upto);
            return;
        }
        if upto <= self.last_marked {
            self.ackable = self.ackable.max(upto);
            return;
        }
        let at = self.write_off;
        let written = match (count, self.segments.get_mut(&seq)) {
            // Every record leaves room for a MARK and a SEAL after it; only a MARK right after
            // another may find none, and then the records it would cover are MARKs.
            (Some(count), Some(st)) if at + mark_len + mark_len <= st.seg.len() => {
                let mut b = [0u8; 8];
                b[0..4].copy_from_slice(&((upto & 0xffff_ffff) as u32).to_le_bytes());
                b[4..8].copy_from_slice(&count.to_le_bytes());
                let out = self.tail.reserve(seq, at, mark_len, st.seg.len());
                record::encode_seeded(out, st.seed, record::KIND_MARK, &[&b]);
                true
            }
            _ => false,
        };
        if written {
            self.write_off = at + mark_len;
            self.active_records += 1;
            self.bytes_written += mark_len as u64;
            self.last_marked = upto;
            self.ackable = self.ackable.max(upto);
        } else {
            // Never further than a mark says.
            self.ackable = self.ackable.max(upto.min(self.last_marked));
        }
    }

    fn put_mark(&mut self, note: sync::MarkNote) {
        if let Some((file, seq, m)) = note {
            if let Err(e) = segment::write_mark(&*self.cfg.disk, &file, seq, self.mark_slot, m) {
                tracing::warn!("journal: cannot write the durability mark of segment {seq}: {e}");
            }
            self.mark_slot ^= 1;
            if self.cfg.durability == Durability::Always {
                sync::sync_or_die(&*self.cfg.disk, &self.sync_times, &file);
            }
        }
    }

    /// Whether written records wait for a sync that nothing has asked for yet (the caller
    /// should commit again within [`DEFER_LIMIT`]).
    pub fn has_deferred(&self) -> bool {
        self.deferred_since.is_some()
    }

    /// Called when the hub has been idle a while: under `none` and `always`, writes the
    /// header's durability mark (and syncs it under `always`); under `batch` the syncer does
    /// it on its own.
    pub fn idle(&mut self) {
        if self.touched.is_empty() {
            let note = self.header_note.take();
            self.put_mark(note);
        }
    }

    /// The record at `p`, if it is there and verifies.
    pub fn read(&self, p: Pos) -> Option<(u8, &[u8])> {
        let (seq, off) = (pos_seq(p), (p & 0xffff_ffff) as usize);
        // Written by this process or verified by recovery: no need to checksum it again.
        if let Some(staged) = self.tail.bytes_at(seq, off) {
            return record::peek(staged, 0);
        }
        let st = self.segments.get(&seq)?;
        record::peek(st.seg.data(), off)
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
            let keep = (self.free.len() < self.cfg.keep_free || self.wants_spare())
                && st.seg.len() == self.cfg.segment_size;
            if keep {
                // Out of the segment sequence at once: a kept file must not look like a live
                // segment to recovery.
                let path = st.seg.path.clone();
                match st.seg.retire(&*self.cfg.disk, &self.cfg.dir) {
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

impl Drop for Journal {
    /// Writes what is staged: a journal dropped between rounds loses nothing it appended.
    fn drop(&mut self) {
        if let Err(e) = self.flush_tail() {
            tracing::error!("journal: cannot write the last records at close: {e}");
        }
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
