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

use super::record::{self, Scan, KIND_PAD, KIND_SEAL, RECORD_HEADER};
use super::segment::{Segment, SEGMENT_HEADER};
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

/// The next offset after the damage at `from` where a record verifies (records are at least
/// 10 bytes, so none starts closer).
fn resync(data: &[u8], seed: u32, from: usize, limit: usize) -> Option<usize> {
    let mut y = from + RECORD_HEADER + 1;
    while y + RECORD_HEADER <= limit {
        if let Scan::Record { .. } = record::scan_seeded(data, seed, y) {
            return Some(y);
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

/// Reads segment `seq` from its first record, handing every record that verifies to `each`
/// (PAD and SEAL excepted). `orig_len` is the file's length before recovery extended it.
/// Past damage in what was durable it reads on at the next record that verifies, so the report
/// is complete (the default mode then refuses to start, salvage keeps what was read).
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
    let mark = if is_last { seg.mark() } else { None };
    let cut_to = (orig_len < seg.made_size()).then_some(orig_len);
    // Everything up to here was durable: the mark of the last segment; all of an older one
    // (sealed and synced before the next segment was named).
    let durable_end = match (is_last, mark) {
        (false, _) => usize::MAX,
        (true, Some(m)) => m.end as usize,
        (true, None) => SEGMENT_HEADER,
    };
    let mut at = SEGMENT_HEADER;
    let mut records = 0u32;
    let mut below_mark = 0u32;
    let mut sealed = false;
    let mut regions = Vec::new();
    let mut torn = None;
    let limit = dirty_end(data, SEGMENT_HEADER);
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
                if kind != KIND_PAD {
                    each(pos(seq, at), kind, payload);
                }
                records += 1;
                if at < durable_end {
                    below_mark += 1;
                }
                at = next;
                continue;
            }
            Scan::End if at >= durable_end => break,
            Scan::End => "zeros where records should be",
            Scan::Invalid(why) => why,
        };
        if at >= durable_end {
            // Past the mark: never durable, so never acknowledged. A torn tail.
            torn = Some((at, dirty_end(data, at), why));
            break;
        }
        let next = resync(data, seed, at, limit);
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
    if let Some(m) = mark {
        let n = m.records.saturating_sub(below_mark) as u64;
        if n > 0 {
            loss = true;
            lost_records = Some(n);
        }
        if at < m.end as usize && regions.is_empty() {
            // The records end before the mark with nothing to show for it: cut or zeroed.
            regions.push(Region {
                from: at as u64,
                to: m.end as u64,
                why: "the records end before the durability mark",
                first: None,
            });
        }
    } else if is_last && cut_to.is_some_and(|n| n < 56) && seg.has_marks() {
        // Cut inside the header's marks: what was durable cannot be told.
        loss = true;
        regions.push(Region {
            from: SEGMENT_HEADER as u64,
            to: seg.made_size(),
            why: "the file was cut inside its header: what was durable cannot be told",
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

/// Copies `data[from..to]` of `segment` to `DIR/damaged/NAME-at-FROM.bin` (synced), so
/// nothing recovery cuts or repairs is destroyed.
pub fn keep_aside(
    dir: &Path,
    segment: &Path,
    data: &[u8],
    from: usize,
    to: usize,
) -> Option<PathBuf> {
    let bytes = data.get(from..to.min(data.len()))?;
    if bytes.is_empty() {
        return None;
    }
    let aside = dir.join("damaged");
    let name = segment.file_name()?.to_string_lossy().into_owned();
    let path = aside.join(format!("{name}-at-{from}.bin"));
    let done = (|| -> std::io::Result<()> {
        std::fs::create_dir_all(&aside)?;
        std::fs::write(&path, bytes)?;
        std::fs::File::open(&path)?.sync_all()?;
        crate::sys::sync_dir(&aside)
    })();
    match done {
        Ok(()) => Some(path),
        Err(e) => {
            tracing::error!(
                "journal: cannot keep damaged bytes in {}: {e}",
                path.display()
            );
            None
        }
    }
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
