//! Reading one segment back at recovery, and telling its kinds of damage apart.
//!
//! - A **torn tail**: the last segment's records end in bytes that are not a record, past its
//!   durability mark. Nothing there was ever durable (so never acknowledged, never delivered):
//!   it is cut.
//! - **Lost durable records**: damage (a bad record, zeros, a file cut short) before the last
//!   segment's mark, or anywhere in an older, sealed segment. Never silent: the default mode
//!   refuses to start and says where and how much; salvage reads on past the damage (at the next
//!   record that verifies), puts the damaged bytes aside and repairs the segment.

use std::path::{Path, PathBuf};

use super::record::{self, Scan, KIND_MARK, KIND_PAD, KIND_SEAL, RECORD_HEADER};
use super::segment::{Mark, Segment, SEGMENT_HEADER};
use super::{pos, Pos, RecoveryReport};

/// A stretch of a segment that holds no readable record.
#[derive(Clone, Debug)]
pub struct Region {
    /// Offset of its first byte.
    pub from: u64,
    /// Offset just past it: where the next record that verifies starts, or the end of the data.
    pub to: u64,
    /// What the scanner found at `from`.
    pub why: &'static str,
    /// The kind and the first (at most 16) payload bytes of what was at `from`, read without
    /// verification: for the hub's records, the session and request ids.
    pub first: Option<(u8, Vec<u8>)>,
}

/// Durable records that recovery found damaged or missing in one segment.
#[derive(Clone, Debug)]
pub struct Lost {
    /// The segment file.
    pub segment: PathBuf,
    /// The damaged stretches.
    pub regions: Vec<Region>,
    /// How many records are gone, when the segment's mark says (`None`: not known, e.g. a
    /// damaged older segment, or a file cut inside its header).
    pub records: Option<u64>,
    /// The file was cut to this many bytes.
    pub cut_to: Option<u64>,
    /// Where salvage put the damaged bytes.
    pub kept: Vec<PathBuf>,
    /// Says what a damaged record's kind and first payload bytes look like (the journal's
    /// user knows its records).
    pub describe: Option<fn(u8, &[u8]) -> String>,
}

impl std::fmt::Display for Lost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: ", self.segment.display())?;
        match self.records {
            Some(n) => write!(f, "{n} durable record(s) lost")?,
            None => write!(f, "durable records lost (how many is not known)")?,
        }
        if let Some(n) = self.cut_to {
            write!(f, "; the file was cut to {n} bytes")?;
        }
        for r in &self.regions {
            write!(f, "; offsets {}..{}: {}", r.from, r.to, r.why)?;
            if let Some((kind, bytes)) = &r.first {
                match self.describe {
                    Some(d) => write!(f, " (it looks like {}, unverified)", d(*kind, bytes))?,
                    None => write!(f, " (a record of kind {kind}, unverified)")?,
                }
            }
        }
        Ok(())
    }
}

/// What reading one segment gave.
pub struct Scanned {
    /// Where its records end (after the SEAL, if sealed).
    pub end: usize,
    /// Whether it ends with a SEAL.
    pub sealed: bool,
    /// Records read (SEAL not counted, PAD counted).
    pub records: u32,
    /// Durable records lost, if any.
    pub lost: Option<Lost>,
    /// A torn tail that was never durable: `(from, to, why)`, cut.
    pub torn: Option<(usize, usize, &'static str)>,
}

/// One past the last non-zero byte at or after `from`.
pub fn dirty_end(data: &[u8], from: usize) -> usize {
    data.get(from..)
        .and_then(|t| t.iter().rposition(|b| *b != 0))
        .map(|p| from + p + 1)
        .unwrap_or(from)
}

/// Bytes of checksums resync may compute in one segment: bounds the time a start takes over
/// a damaged segment, whatever its bytes (a 64 MiB segment is about 30 ms of it per pass).
const RESYNC_BUDGET: u64 = 256 << 20;

/// The next offset after the damage at `from` where a record verifies (records are at least
/// 10 bytes, so none starts closer); `None` past `limit`, or once `budget` bytes of checksums
/// were spent.
fn resync(data: &[u8], seed: u32, from: usize, limit: usize, budget: &mut u64) -> Option<usize> {
    let mut y = from + RECORD_HEADER + 1;
    while y + RECORD_HEADER <= limit {
        let len = u32::from_le_bytes([data[y], data[y + 1], data[y + 2], data[y + 3]]) as u64;
        // Only a candidate inside the data with a kind is worth its checksum.
        if len > 0 && data[y + 8] != 0 && y as u64 + RECORD_HEADER as u64 + len <= limit as u64 {
            if *budget < len {
                return None;
            }
            *budget -= len;
            if let Scan::Record { .. } = record::scan_seeded(data, seed, y) {
                return Some(y);
            }
        }
        y += 1;
    }
    None
}

fn first_bytes(data: &[u8], at: usize) -> Option<(u8, Vec<u8>)> {
    let kind = *data.get(at + 8)?;
    let start = at + RECORD_HEADER;
    let end = (start + 16).min(data.len());
    let bytes = data.get(start..end)?;
    (kind != 0 || bytes.iter().any(|b| *b != 0)).then(|| (kind, bytes.to_vec()))
}

fn mark_of(payload: &[u8]) -> Option<Mark> {
    let b: &[u8; 8] = payload.try_into().ok()?;
    Some(Mark {
        end: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        records: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
    })
}

/// The furthest durability mark among the records that verify after `from` (reading on past
/// any further damage), if any.
fn mark_after(data: &[u8], seed: u32, from: usize, limit: usize, budget: &mut u64) -> Option<Mark> {
    let mut best: Option<Mark> = None;
    let mut at = from;
    while let Some(y) = resync(data, seed, at, limit, budget) {
        at = y;
        while let Scan::Record {
            kind,
            payload,
            next,
        } = record::scan_seeded(data, seed, at)
        {
            if kind == KIND_MARK {
                if let Some(m) = mark_of(payload).filter(|m| m.end as usize <= at) {
                    best = best.filter(|b| b.end >= m.end).or(Some(m));
                }
            }
            if kind == KIND_SEAL {
                return best;
            }
            at = next;
        }
    }
    best
}

/// Records (SEAL aside) in the chain before offset `end`, stepping over `regions`.
fn count_before(data: &[u8], seed: u32, regions: &[Region], end: usize) -> u32 {
    let mut at = SEGMENT_HEADER;
    let mut n = 0;
    while at < end {
        if let Some(r) = regions.iter().find(|r| r.from as usize == at) {
            if r.to as usize <= at {
                break;
            }
            at = r.to as usize;
            continue;
        }
        match record::scan_seeded(data, seed, at) {
            Scan::Record { kind, next, .. } if kind != KIND_SEAL => {
                n += 1;
                at = next;
            }
            _ => break,
        }
    }
    n
}

/// Reads segment `seq` from its first record, handing every record that verifies to `each`
/// (PAD, MARK and SEAL excepted). `orig_len` is the file's length before recovery extended
/// it. Past damage in what was durable it reads on at the next record that verifies, so the
/// report is complete (the default mode then refuses to start, salvage keeps what was read).
pub fn scan_segment(
    seg: &Segment,
    is_last: bool,
    orig_len: u64,
    report: &mut RecoveryReport,
    each: &mut dyn FnMut(Pos, u8, &[u8]),
) -> Scanned {
    let seq = seg.seq;
    let data = seg.data();
    let seed = record::seed(seq);
    let cut_to = (orig_len < seg.made_size()).then_some(orig_len);
    // What was durable: all of an older segment (sealed and synced before the next segment was
    // named); in the last one, what its marks say (the header's, and the MARK records read).
    let mut best = if is_last { seg.mark() } else { None };
    let mut durable_end = match (is_last, best) {
        (false, _) => usize::MAX,
        (true, Some(m)) => m.end as usize,
        (true, None) => SEGMENT_HEADER,
    };
    let mut at = SEGMENT_HEADER;
    let mut records = 0u32;
    let mut sealed = false;
    let mut regions = Vec::new();
    let mut torn = None;
    let mut budget = RESYNC_BUDGET;
    // Where the data really ends: needed only at the end or past damage (a scan of the rest
    // of the segment).
    let mut limit = None;
    loop {
        let why = match record::scan_seeded(data, seed, at) {
            Scan::Record {
                kind,
                payload,
                next,
            } => {
                report.records += 1;
                report.bytes += (next - at) as u64;
                if kind == KIND_SEAL {
                    sealed = true;
                    at = next;
                    break;
                }
                if kind == KIND_MARK {
                    if let Some(m) = mark_of(payload).filter(|m| m.end as usize <= at) {
                        if is_last && m.end as usize > durable_end {
                            durable_end = m.end as usize;
                            best = Some(m);
                        }
                    }
                } else if kind != KIND_PAD {
                    each(pos(seq, at), kind, payload);
                }
                records += 1;
                at = next;
                continue;
            }
            Scan::End if at >= durable_end => {
                // The end of the data, unless records that verify follow the zeros and a mark
                // among them says they were durable (a page lost to zeros).
                let limit = *limit.get_or_insert_with(|| dirty_end(data, SEGMENT_HEADER));
                if !is_last || limit <= at {
                    break;
                }
                match mark_after(data, seed, at, limit, &mut budget).filter(|m| m.end as usize > at)
                {
                    Some(m) => {
                        durable_end = m.end as usize;
                        best = Some(m);
                        "zeros where records should be"
                    }
                    None => break,
                }
            }
            Scan::End => "zeros where records should be",
            Scan::Invalid(why) => why,
        };
        let limit = *limit.get_or_insert_with(|| dirty_end(data, SEGMENT_HEADER));
        if at >= durable_end {
            // Past every mark read so far. A torn tail, never durable, unless a mark further
            // on says otherwise.
            match mark_after(data, seed, at, limit, &mut budget).filter(|m| m.end as usize > at) {
                Some(m) => {
                    durable_end = m.end as usize;
                    best = Some(m);
                }
                None => {
                    torn = Some((at, dirty_end(data, at), why));
                    break;
                }
            }
        }
        let next = resync(data, seed, at, limit, &mut budget);
        regions.push(Region {
            from: at as u64,
            to: next.unwrap_or_else(|| dirty_end(data, at).max(durable_end.min(data.len()))) as u64,
            why,
            first: first_bytes(data, at),
        });
        match next {
            Some(y) => at = y,
            None => break,
        }
    }
    let mut lost_records = None;
    let mut loss = !regions.is_empty();
    if let Some(m) = best {
        let read = count_before(data, seed, &regions, m.end as usize);
        let n = m.records.saturating_sub(read) as u64;
        if n > 0 {
            loss = true;
            lost_records = Some(n);
        }
        if at < m.end as usize && regions.is_empty() {
            // The records end before the mark with nothing to show for it: zeroed.
            regions.push(Region {
                from: at as u64,
                to: m.end as u64,
                why: "the records end before the durability mark",
                first: None,
            });
        }
    }
    if let Some(n) = cut_to {
        // A segment's file is made whole and never shortened: a cut file lost what followed
        // the cut, which may have been durable (the marks that would tell went with it).
        loss = true;
        regions.retain(|r| r.from < n);
        regions.push(Region {
            from: n,
            to: seg.made_size(),
            why: "the file was cut here: what followed may have been durable",
            first: None,
        });
    }
    if !is_last && !sealed {
        loss = true;
        if regions.is_empty() {
            regions.push(Region {
                from: at as u64,
                to: at as u64,
                why: "the segment ends without its seal record",
                first: None,
            });
        }
    }
    Scanned {
        end: at,
        sealed,
        records,
        lost: loss.then(|| Lost {
            segment: seg.path.clone(),
            regions,
            records: lost_records,
            cut_to,
            kept: Vec::new(),
            describe: None,
        }),
        torn,
    }
}

/// Copies `data[from..to]` of `segment` (at most `cap` bytes of it) to
/// `DIR/damaged/NAME-at-FROM-TAG.bin` (synced), so nothing recovery cuts or repairs is
/// destroyed. `Ok(None)` when those bytes are all zeros (nothing to keep).
pub fn keep_aside(
    dir: &Path,
    segment: &Path,
    data: &[u8],
    from: usize,
    to: usize,
    cap: usize,
) -> std::io::Result<Option<PathBuf>> {
    let end = to.min(data.len()).min(from.saturating_add(cap));
    let Some(bytes) = data.get(from..end) else {
        return Ok(None);
    };
    if bytes.iter().all(|b| *b == 0) {
        return Ok(None);
    }
    let aside = dir.join("damaged");
    let name = segment
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let path = aside.join(format!(
        "{name}-at-{from}-{:08x}.bin",
        crate::sys::random_u64() as u32
    ));
    std::fs::create_dir_all(&aside)?;
    std::fs::write(&path, bytes)?;
    std::fs::File::open(&path)?.sync_all()?;
    crate::sys::sync_dir(&aside)?;
    Ok(Some(path))
}

/// Repairs a damaged stretch that the records go on after: one PAD record fills it, so the
/// segment reads whole again (its bytes were kept aside first).
pub fn pad(data: &mut [u8], seq: u64, from: usize, to: usize) {
    if to < from + RECORD_HEADER + 1 || to > data.len() {
        return;
    }
    data[from..to].fill(0);
    let filler = vec![0u8; to - from - RECORD_HEADER];
    record::encode(&mut data[from..to], seq, KIND_PAD, &[&filler]);
}

/// After salvage repaired a segment, makes each MARK record's count say what is there now (the
/// records a PAD replaced no longer count), so the next start finds nothing missing.
pub fn recount_marks(data: &mut [u8], seq: u64) -> u32 {
    let seed = record::seed(seq);
    let mut bounds: Vec<(usize, u32)> = Vec::new();
    let mut at = SEGMENT_HEADER;
    let mut n = 0u32;
    let mut fixes = Vec::new();
    while let Scan::Record {
        kind,
        payload,
        next,
    } = record::scan_seeded(data, seed, at)
    {
        if kind == KIND_SEAL {
            break;
        }
        bounds.push((at, n));
        if kind == KIND_MARK {
            if let Some(m) = mark_of(payload) {
                let i = bounds.partition_point(|(o, _)| *o < m.end as usize);
                let have = bounds.get(i).map(|b| b.1).unwrap_or(n);
                if have != m.records {
                    fixes.push((at, m.end, have));
                }
            }
        }
        n += 1;
        at = next;
    }
    for (at, end, records) in fixes {
        let mut b = [0u8; 8];
        b[0..4].copy_from_slice(&end.to_le_bytes());
        b[4..8].copy_from_slice(&records.to_le_bytes());
        record::encode(&mut data[at..], seq, KIND_MARK, &[&b]);
    }
    n
}
