//! The journal on real files: appends, reopen, damaged segments, reclamation.

mod common;

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use common::TempDir;
use dco::journal::{Durability, Journal, JournalConfig, Pos, RecoveryMode, SEGMENT_HEADER};

fn cfg(dir: &Path) -> JournalConfig {
    let mut c = JournalConfig::new(dir);
    c.segment_size = 1 << 16;
    c.durability = Durability::None;
    c
}

type Seen = Vec<(Pos, u8, Vec<u8>)>;

fn open(c: JournalConfig) -> std::io::Result<(Journal, Seen)> {
    let mut seen = Vec::new();
    let (j, _report) = Journal::open(c, Box::new(|| {}), |p, k, b| seen.push((p, k, b.to_vec())))?;
    Ok((j, seen))
}

fn segments(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

fn body(i: u32) -> Vec<u8> {
    format!("record number {i}").into_bytes()
}

/// Writes `n` records (rolling over several 64 KiB segments when n is large), returns positions.
fn fill(dir: &Path, n: u32) -> Vec<Pos> {
    let (mut j, seen) = open(cfg(dir)).unwrap();
    assert!(seen.is_empty());
    let pos = (0..n)
        .map(|i| {
            let p = j.append(1, &[&body(i)]).unwrap();
            j.pin(p); // kept: unpinned segments are reclaimed
            p
        })
        .collect();
    j.commit();
    pos
}

#[test]
fn records_survive_reopen_in_order() {
    let d = TempDir::new("j-reopen");
    let pos = fill(d.path(), 5000);
    assert!(segments(d.path()).len() > 1, "the test must cross segments");
    let (j, seen) = open(cfg(d.path())).unwrap();
    assert_eq!(seen.len(), 5000);
    for (i, (p, k, b)) in seen.iter().enumerate() {
        assert_eq!(*p, pos[i]);
        assert_eq!(*k, 1);
        assert_eq!(*b, body(i as u32));
        assert_eq!(j.read(*p).unwrap().1, &body(i as u32)[..]);
    }
}

#[test]
fn appends_continue_after_reopen() {
    let d = TempDir::new("j-continue");
    fill(d.path(), 10);
    {
        let (mut j, seen) = open(cfg(d.path())).unwrap();
        assert_eq!(seen.len(), 10);
        j.append(2, &[b"eleventh"]).unwrap();
    }
    let (_, seen) = open(cfg(d.path())).unwrap();
    assert_eq!(seen.len(), 11);
    assert_eq!(seen[10].2, b"eleventh");
}

fn damage(path: &Path, at: u64, bytes: &[u8]) {
    let mut f = OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(bytes).unwrap();
}

/// Writes `durable` records and commits them (the durability mark covers them), then
/// `torn` more that no commit covers (as a hub killed before its round ended leaves them).
fn fill_with_tail(dir: &Path, durable: u32, torn: u32) -> Vec<Pos> {
    fill_marked(dir, durable, torn, true)
}

/// As [`fill_with_tail`]; `quiet`: the hub goes quiet after the commit, so the header's mark
/// is written too (else only the MARK records in the data say what is durable).
fn fill_marked(dir: &Path, durable: u32, torn: u32, quiet: bool) -> Vec<Pos> {
    let (mut j, _) = open(cfg(dir)).unwrap();
    let mut pos = Vec::new();
    for i in 0..durable + torn {
        let p = j.append(1, &[&body(i)]).unwrap();
        j.pin(p);
        pos.push(p);
        if i + 1 == durable {
            // The round ends (a MARK record says what is durable), and the hub goes quiet
            // (the header's mark says it too).
            j.commit();
            if quiet {
                j.idle();
            }
        }
    }
    pos
}

fn off(p: Pos) -> u64 {
    p & 0xffff_ffff
}

#[test]
fn a_torn_last_record_is_cut() {
    let d = TempDir::new("j-torn");
    let pos = fill_with_tail(d.path(), 2, 1);
    let last = segments(d.path()).last().unwrap().clone();
    // Cut the third record (never durable) in the middle: zero its payload's second half.
    damage(&last, off(pos[2]) + 9 + 5, &[0u8; 8]);
    let (mut j, seen) = open(cfg(d.path())).unwrap();
    assert_eq!(seen.len(), 2);
    // The cut point is where appends go on.
    let p = j.append(1, &[b"after"]).unwrap();
    assert_eq!(p, pos[2]);
    j.commit();
    drop(j);
    let (_, seen) = open(cfg(d.path())).unwrap();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[2].2, b"after");
}

#[test]
fn a_truncated_last_segment_file_is_refused_even_where_nothing_was_durable() {
    // A segment's file is never shortened: a cut one may have lost durable records whose marks
    // went with it, so it is refused; salvage keeps what is there.
    let d = TempDir::new("j-trunc");
    let pos = fill_with_tail(d.path(), 2, 1);
    let last = segments(d.path()).last().unwrap().clone();
    let f = OpenOptions::new().write(true).open(&last).unwrap();
    f.set_len(off(pos[2]) + 4).unwrap();
    drop(f);
    let err = open(cfg(d.path())).err().expect("a cut file is refused");
    assert!(err.to_string().contains("cut"), "{err}");
    let mut c = cfg(d.path());
    c.recovery = RecoveryMode::Salvage;
    let (mut j, seen, _) = open_report(c);
    assert_eq!(seen.len(), 2);
    // Appending into the short file must not crash: the journal rolls to a new segment.
    for i in 0..100 {
        j.append(1, &[&body(i)]).unwrap();
    }
}

#[test]
fn a_truncated_last_segment_that_lost_durable_records_is_refused() {
    let d = TempDir::new("j-trunc-durable");
    let pos = fill_with_tail(d.path(), 10, 0);
    let last = segments(d.path()).last().unwrap().clone();
    let f = OpenOptions::new().write(true).open(&last).unwrap();
    f.set_len(off(pos[7])).unwrap();
    drop(f);
    let err = open(cfg(d.path())).err().expect("a cut below the mark");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    let msg = err.to_string();
    assert!(msg.contains("3 durable record(s) lost"), "{msg}");
    assert!(
        msg.contains(&format!("cut to {} bytes", off(pos[7]))),
        "{msg}"
    );
    // Salvage starts with what is left, and says so.
    let mut c = cfg(d.path());
    c.recovery = RecoveryMode::Salvage;
    let (j, seen, report) = open_report(c.clone());
    assert_eq!(seen.len(), 7);
    assert_eq!(report.lost.len(), 1);
    assert_eq!(report.lost[0].records, Some(3));
    drop(j);
    // Repaired: the next start in the default mode is clean.
    let (_, seen) = open(cfg(d.path())).unwrap();
    assert_eq!(seen.len(), 7);
}

fn open_report(c: JournalConfig) -> (Journal, Seen, dco::journal::RecoveryReport) {
    let mut seen = Vec::new();
    let (j, report) =
        Journal::open(c, Box::new(|| {}), |p, k, b| seen.push((p, k, b.to_vec()))).unwrap();
    (j, seen, report)
}

#[test]
fn flipped_bytes_past_the_mark_cut_the_tail() {
    let d = TempDir::new("j-flip-last");
    let pos = fill_with_tail(d.path(), 4, 6);
    let last = segments(d.path()).last().unwrap().clone();
    damage(&last, off(pos[4]) + 12, b"\xff");
    let (_, seen) = open(cfg(d.path())).unwrap();
    assert_eq!(seen.len(), 4);
    // The cut bytes were kept, not destroyed.
    assert!(d.path().join("damaged").read_dir().unwrap().count() > 0);
}

#[test]
fn the_mark_records_alone_tell_damage_from_a_torn_tail() {
    // No quiet moment after the last round: no header mark, only the MARK record in the data.
    for victim in [0usize, 5, 9] {
        let d = TempDir::new("j-mark-records");
        let pos = fill_marked(d.path(), 10, 3, false);
        let last = segments(d.path()).last().unwrap().clone();
        damage(&last, off(pos[victim]) + 12, b"\xff");
        let err = open(cfg(d.path()))
            .err()
            .unwrap_or_else(|| panic!("damage to durable record {victim} went unnoticed"));
        assert!(
            err.to_string().contains("1 durable record(s) lost"),
            "{err}"
        );
    }
    // Past the last MARK: a torn tail.
    let d = TempDir::new("j-mark-records-tail");
    let pos = fill_marked(d.path(), 10, 3, false);
    let last = segments(d.path()).last().unwrap().clone();
    damage(&last, off(pos[11]) + 12, b"\xff");
    let (_, seen) = open(cfg(d.path())).unwrap();
    assert_eq!(seen.len(), 11);
}

/// The promise of recovery, tried exhaustively on one segment: every single-byte corruption
/// and every cut of the last segment either loses only records that were never durable, or
/// is refused with where and what; salvage then starts, reports exactly what it lost, keeps
/// the damaged bytes, and leaves a journal the default mode opens.
#[test]
fn every_flip_and_every_cut_of_the_last_segment_loses_nothing_durable_silently() {
    let d = TempDir::new("j-every");
    let durable = 12u32;
    let pos = fill_with_tail(d.path(), durable, 6);
    let last = segments(d.path()).last().unwrap().clone();
    let pristine = std::fs::read(&last).unwrap();
    let used = off(*pos.last().unwrap()) as usize + 9 + body(29).len() + 16;
    let reset = |bytes: &[u8]| {
        for e in std::fs::read_dir(d.path()).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                std::fs::remove_dir_all(&p).unwrap();
            } else if p != last {
                std::fs::remove_file(&p).unwrap();
            }
        }
        std::fs::write(&last, bytes).unwrap();
    };
    let check = |what: String, bytes: Vec<u8>| {
        reset(&bytes);
        match open(cfg(d.path())) {
            Ok((_, seen)) => {
                // Accepted: every durable record is there, intact and in order.
                assert!(
                    seen.len() >= durable as usize,
                    "{what}: {} seen",
                    seen.len()
                );
                for (i, (p, _, b)) in seen.iter().take(durable as usize).enumerate() {
                    assert_eq!(*p, pos[i], "{what}");
                    assert_eq!(*b, body(i as u32), "{what}");
                }
            }
            Err(e) => {
                assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{what}: {e}");
                let msg = e.to_string();
                assert!(msg.contains("00000000000000000001.seg"), "{what}: {msg}");
                if msg.contains("header") || msg.contains("bad magic") {
                    return; // the header itself: salvage skips the segment whole
                }
                reset(&bytes);
                let mut c = cfg(d.path());
                c.recovery = RecoveryMode::Salvage;
                let (j, seen, report) = open_report(c);
                assert_eq!(report.lost.len(), 1, "{what}: {msg}");
                let lost = match report.lost[0].records {
                    Some(n) => n,
                    // Only a cut can hide how many: the marks after it went with it.
                    None => {
                        assert!(msg.contains("cut"), "{what}: {msg}");
                        0
                    }
                };
                let kept = seen
                    .iter()
                    .filter(|(p, _, b)| {
                        pos.iter()
                            .position(|q| q == p)
                            .is_some_and(|i| *b == body(i as u32))
                    })
                    .count();
                if report.lost[0].records.is_some() {
                    assert!(
                        kept as u64 + lost >= durable as u64,
                        "{what}: {kept} kept, {lost} lost"
                    );
                }
                drop(j);
                let (_, again) =
                    open(cfg(d.path())).unwrap_or_else(|e| panic!("{what}: after salvage: {e}"));
                assert_eq!(again.len(), seen.len(), "{what}");
            }
        }
    };
    for at in 0..used {
        let mut bytes = pristine.clone();
        bytes[at] ^= 0x5a;
        check(format!("byte {at} flipped"), bytes);
    }
    // Cuts of the file anywhere, and at every byte of the last durable records.
    let near_end = off(pos[durable as usize - 2]) as usize;
    for cut in (0..used).filter(|c| c % 3 == 0 || *c >= near_end) {
        check(format!("cut at {cut}"), pristine[..cut].to_vec());
    }
    // A write torn inside the last durable records: zeros from any byte of them on.
    for from in near_end..used {
        let mut bytes = pristine.clone();
        bytes[from..used].fill(0);
        check(format!("zeros from {from}"), bytes);
    }
}

#[test]
fn flipped_bytes_in_an_older_segment_are_an_error_unless_salvaging() {
    let d = TempDir::new("j-flip-old");
    fill(d.path(), 5000);
    let segs = segments(d.path());
    assert!(segs.len() >= 3);
    damage(&segs[0], SEGMENT_HEADER as u64 + 200, b"\xde\xad");
    let err = open(cfg(d.path()))
        .err()
        .expect("damage in an old segment must be an error");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert!(
        err.to_string().contains("00000000000000000001.seg"),
        "{err}"
    );
    let mut c = cfg(d.path());
    c.recovery = RecoveryMode::Salvage;
    let (_, seen) = open(c).unwrap();
    // Salvage keeps every other segment whole and segment 1 up to the damage.
    assert!(seen.len() > 2000 && seen.len() < 5000, "{}", seen.len());
}

#[test]
fn a_zero_filled_tail_is_just_the_end() {
    let d = TempDir::new("j-zero");
    fill(d.path(), 7);
    let last = segments(d.path()).last().unwrap().clone();
    let len = std::fs::metadata(&last).unwrap().len();
    // Extend with zeros as a crash after preallocation would leave it.
    let f = OpenOptions::new().write(true).open(&last).unwrap();
    f.set_len(len + 4096).unwrap();
    drop(f);
    let (_, seen) = open(cfg(d.path())).unwrap();
    assert_eq!(seen.len(), 7);
}

#[test]
fn a_missing_segment_is_an_error_unless_salvaging() {
    let d = TempDir::new("j-missing");
    fill(d.path(), 5000);
    let segs = segments(d.path());
    assert!(segs.len() >= 3);
    std::fs::remove_file(&segs[1]).unwrap();
    let err = open(cfg(d.path())).err().expect("a gap must be an error");
    assert!(err.to_string().contains("missing"), "{err}");
    let mut c = cfg(d.path());
    c.recovery = RecoveryMode::Salvage;
    let (_, seen) = open(c).unwrap();
    assert!(seen.len() < 5000 && seen.len() > 1000);
}

#[test]
fn garbage_files_do_not_panic() {
    let d = TempDir::new("j-garbage");
    let mut state = 0x1234_5678_9abc_def0u64;
    let mut bytes = vec![0u8; 70_000];
    for b in bytes.iter_mut() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *b = state as u8;
    }
    std::fs::write(d.path().join("00000000000000000001.seg"), &bytes).unwrap();
    std::fs::write(d.path().join("00000000000000000002.seg"), &bytes[..10]).unwrap();
    // The last segment's bad header: dropped; the first one: not a segment, an error.
    let err = open(cfg(d.path()))
        .err()
        .expect("a garbage segment is an error");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
}

#[test]
fn finished_segments_are_reclaimed_oldest_first() {
    let d = TempDir::new("j-reclaim");
    let (mut j, _) = open(cfg(d.path())).unwrap();
    let mut live = Vec::new();
    for i in 0..20_000u32 {
        let p = j.append(1, &[&body(i)]).unwrap();
        j.pin(p);
        live.push(p);
        // Keep at most 100 records pinned: finish the oldest.
        if live.len() > 100 {
            j.unpin(live.remove(0));
        }
    }
    assert!(
        j.segment_count() <= 3,
        "finished segments must go: {} left",
        j.segment_count()
    );
    assert!(segments(d.path()).len() <= 3 + 2);
    // An old pinned record holds its segment and every later one.
    let first = j.append(1, &[b"held"]).unwrap();
    j.pin(first);
    for i in 0..10_000u32 {
        let p = j.append(1, &[&body(i)]).unwrap();
        j.pin(p);
        j.unpin(p);
    }
    assert!(j.segment_count() > 4, "{}", j.segment_count());
    assert_eq!(j.read(first).unwrap().1, b"held");
    j.unpin(first);
    for p in live {
        j.unpin(p);
    }
    j.append(1, &[b"roll"]).unwrap();
    assert!(j.segment_count() <= 2, "{}", j.segment_count());
}

#[test]
fn one_hub_per_directory() {
    let d = TempDir::new("j-lock");
    let (_j, _) = open(cfg(d.path())).unwrap();
    assert!(open(cfg(d.path())).is_err());
}

mod fuzz {
    use dco::journal::record::{encode, encoded_len, scan, Scan};
    use proptest::prelude::*;

    proptest! {
        /// Arbitrary bytes never panic the decoder, and what it accepts lies inside the input.
        #[test]
        fn scan_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512), seq in any::<u64>(), at in 0usize..600) {
            match scan(&data, seq, at) {
                Scan::Record { next, payload, .. } => {
                    prop_assert!(next <= data.len());
                    prop_assert!(payload.len() < data.len());
                }
                Scan::End | Scan::Invalid(_) => {}
            }
        }

        /// Records round-trip; a flipped byte or a cut never yields the same record.
        #[test]
        fn records_round_trip_and_damage_is_caught(
            payload in proptest::collection::vec(any::<u8>(), 1..300),
            seq in any::<u64>(),
            kind in 1u8..255,
            flip in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let mut buf = vec![0u8; encoded_len(payload.len()) + 16];
            let n = encode(&mut buf, seq, kind, &[&payload]);
            let want = Scan::Record { kind, payload: &payload[..], next: n };
            prop_assert_eq!(scan(&buf, seq, 0), want);
            let i = flip.index(n);
            let mut bad = buf.clone();
            bad[i] ^= 1 << bit;
            let same = match scan(&bad, seq, 0) {
                Scan::Record { kind: k, payload: p, .. } => k == kind && p == &payload[..],
                _ => false,
            };
            prop_assert!(!same, "a flipped bit at {} went unnoticed", i);
            let cut_is_record = matches!(scan(&buf[..n - 1], seq, 0), Scan::Record { .. });
            prop_assert!(!cut_is_record);
        }
    }
}

#[test]
fn reclaimed_segments_kept_for_reuse_do_not_break_a_restart() {
    let d = TempDir::new("j-reuse");
    {
        let (mut j, _) = open(cfg(d.path())).unwrap();
        // Many segments come and go; some are kept as spares for reuse.
        for i in 0..30_000u32 {
            let p = j.append(1, &[&body(i)]).unwrap();
            j.pin(p);
            j.unpin(p);
        }
        let p = j.append(2, &[b"last one"]).unwrap();
        j.pin(p);
        j.commit();
    }
    let (_, seen, report) = open_report(cfg(d.path()));
    assert_eq!(seen.last().map(|r| r.2.clone()), Some(b"last one".to_vec()));
    // The old bytes of a recycled segment after the last record are not taken for a torn
    // tail: a clean restart reports nothing.
    assert!(report.damage.is_empty(), "{:?}", report.damage);
}

#[test]
fn salvage_past_a_bad_last_header_keeps_what_came_before() {
    let d = TempDir::new("j-salvage-tail");
    fill(d.path(), 5000);
    let segs = segments(d.path());
    let last = segs.last().unwrap().clone();
    damage(&last, 0, b"XXXX");
    assert!(
        open(cfg(d.path())).is_err(),
        "a bad header is damage, not an unfinished file"
    );
    let mut c = cfg(d.path());
    c.recovery = RecoveryMode::Salvage;
    let before = {
        let (mut j, seen) = open(c.clone()).unwrap();
        for p in seen.iter().map(|r| r.0) {
            j.pin(p);
        }
        let p = j.append(3, &[b"after salvage"]).unwrap();
        j.pin(p);
        seen.len()
    };
    assert!(before > 1000);
    // Appends went after the salvaged records, not over them.
    let (_, seen) = open(c).unwrap();
    assert_eq!(seen.len(), before + 1);
    assert_eq!(seen.last().unwrap().2, b"after salvage");
}

#[test]
fn a_cut_segment_is_refused_at_every_start_until_salvaged() {
    let d = TempDir::new("j-cut-again");
    let pos = fill_marked(d.path(), 10, 0, false);
    let last = segments(d.path()).last().unwrap().clone();
    let f = OpenOptions::new().write(true).open(&last).unwrap();
    f.set_len(off(pos[8])).unwrap();
    drop(f);
    for _ in 0..2 {
        let err = open(cfg(d.path())).err().expect("a cut file is refused");
        assert!(err.to_string().contains("cut"), "{err}");
    }
    assert_eq!(std::fs::metadata(&last).unwrap().len(), off(pos[8]));
}

#[test]
fn a_page_of_zeros_in_durable_records_is_caught_by_the_mark_after_it() {
    let d = TempDir::new("j-zero-page");
    let pos = fill_marked(d.path(), 10, 0, false);
    let last = segments(d.path()).last().unwrap().clone();
    // Records 3 to 5 read as zeros (a lost page); the MARK after record 9 says they were
    // durable.
    let len = (off(pos[6]) - off(pos[3])) as usize;
    damage(&last, off(pos[3]), &vec![0u8; len]);
    let err = open(cfg(d.path())).err().expect("lost durable records");
    assert!(
        err.to_string().contains("3 durable record(s) lost"),
        "{err}"
    );
}

#[test]
fn a_segment_of_an_earlier_build_keeps_working() {
    use dco::journal::record::encode;
    let d = TempDir::new("j-v1");
    // A version-1 segment, as earlier builds wrote it: CRC over bytes 0..60, no marks.
    let size = 1usize << 16;
    let mut seg = vec![0u8; size];
    seg[0..8].copy_from_slice(b"DCOJRNL\0");
    seg[8..12].copy_from_slice(&1u32.to_le_bytes());
    seg[16..24].copy_from_slice(&1u64.to_le_bytes());
    seg[24..32].copy_from_slice(&(size as u64).to_le_bytes());
    let crc = crc32c::crc32c(&seg[0..60]);
    seg[60..64].copy_from_slice(&crc.to_le_bytes());
    let mut at = SEGMENT_HEADER;
    for i in 0..5 {
        at += encode(&mut seg[at..], 1, 1, &[&body(i)]);
    }
    std::fs::write(d.path().join("00000000000000000001.seg"), &seg).unwrap();
    {
        let (mut j, seen) = open(cfg(d.path())).unwrap();
        assert_eq!(seen.len(), 5);
        let p = j.append(1, &[b"new"]).unwrap();
        j.pin(p);
        j.commit();
        j.idle();
    }
    // Its header still verifies: the marks went into the data, not into its header.
    let (_, seen) = open(cfg(d.path())).unwrap();
    assert_eq!(seen.len(), 6);
}

/// A disk that fills up on demand (the journal's `Disk` seam).
struct FillingDisk(std::sync::atomic::AtomicBool);

impl dco::journal::disk::Disk for FillingDisk {
    fn allocate(&self, f: &std::fs::File, len: u64) -> std::io::Result<()> {
        if self.0.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(std::io::Error::from_raw_os_error(libc::ENOSPC));
        }
        dco::journal::disk::OsDisk.allocate(f, len)
    }
    fn sync_data(&self, f: &std::fs::File) -> std::io::Result<()> {
        dco::journal::disk::OsDisk.sync_data(f)
    }
    fn flush_head(
        &self,
        map: &memmap2::MmapMut,
        f: &std::fs::File,
        len: usize,
    ) -> std::io::Result<()> {
        dco::journal::disk::OsDisk.flush_head(map, f, len)
    }
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        dco::journal::disk::OsDisk.sync_dir(dir)
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        dco::journal::disk::OsDisk.rename(from, to)
    }
    fn write_at(&self, f: &std::fs::File, buf: &[u8], off: u64) -> std::io::Result<()> {
        dco::journal::disk::OsDisk.write_at(f, buf, off)
    }
}

#[test]
fn on_a_full_disk_what_is_owed_is_kept_and_nothing_more() {
    use dco::journal::{AppendError, Draw};
    let d = TempDir::new("j-reserve");
    let disk = std::sync::Arc::new(FillingDisk(false.into()));
    let mut c = cfg(d.path());
    c.disk = disk.clone();
    c.owed_record = 600;
    let (mut j, _) = open(c).unwrap();
    // Let the preparer's spare come, then the disk is full.
    std::thread::sleep(std::time::Duration::from_millis(200));
    disk.0.store(true, std::sync::atomic::Ordering::SeqCst);
    let owe = 600u32;
    let mut accepted = 0;
    let err = loop {
        match j.append_draw(1, &[&[1u8; 100]], Draw::New(owe)) {
            Ok(_) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted < 10_000, "the reserve never ran out");
    };
    assert!(matches!(err, AppendError::Full(_)), "{err}");
    assert!(j.is_full());
    assert!(accepted > 50, "{accepted}");
    // An answer larger than what was reserved for it may not take the others' share ...
    assert!(j
        .append_draw(3, &[&vec![2u8; 5000]], Draw::Owed(owe))
        .is_err());
    // ... but every request's answer that fits its share is kept.
    for _ in 0..accepted {
        j.append_draw(3, &[&[3u8; 500]], Draw::Owed(owe)).unwrap();
    }
    assert_eq!(j.owed(), 0);
}

/// Sectors written to the block device holding `dir`, if the system tells
/// (/sys/dev/block/MAJ:MIN/stat, 7th field).
fn device_sectors_written(dir: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(dir).ok()?.dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let stat = std::fs::read_to_string(format!("/sys/dev/block/{major}:{minor}/stat")).ok()?;
    stat.split_whitespace().nth(6)?.parse().ok()
}

#[test]
fn an_fdatasync_deep_in_a_segment_writes_what_was_appended_not_whole_pages() {
    // On the disk the build lives on (the system's temporary directory may be a tmpfs).
    let d = TempDir::new_in(Path::new(env!("CARGO_TARGET_TMPDIR")), "j-sync-bytes");
    let Some(_) = device_sectors_written(d.path()) else {
        eprintln!(
            "SKIPPED an_fdatasync_deep_in_a_segment_writes_what_was_appended_not_whole_pages: \
             {} is on no block device whose statistics can be read",
            d.path().display()
        );
        return;
    };
    let mut c = JournalConfig::new(d.path());
    c.durability = Durability::Always;
    let (mut j, _) = open(c).unwrap();
    // 50 MB into the 64 MiB segment, in 1 MiB records, a sync each.
    let big = vec![0x5au8; 1 << 20];
    for _ in 0..50 {
        j.append(1, &[&big]).unwrap();
        j.commit();
    }
    // Then small records, one sync each: what does each sync write?
    let small = [0x33u8; 200];
    let mut per_sync = Vec::new();
    for _ in 0..15 {
        let p = j.append(1, &[&small]).unwrap();
        // Readable at once, before the round has written it out.
        assert_eq!(
            j.read(p).map(|(k, b)| (k, b.to_vec())),
            Some((1, small.to_vec()))
        );
        let before = device_sectors_written(d.path()).unwrap();
        j.commit();
        let after = device_sectors_written(d.path()).unwrap();
        per_sync.push((after - before) * 512);
        assert_eq!(
            j.read(p).map(|(k, b)| (k, b.to_vec())),
            Some((1, small.to_vec()))
        );
    }
    // Other processes write to the same device now and then; the quietest sync shows what a
    // sync itself writes. About 4 KiB are expected (the page with the new record and a MARK);
    // a mapped segment in 2 MiB page-cache folios made each sync write up to 2 MiB.
    per_sync.sort_unstable();
    assert!(
        per_sync[0] <= 64 << 10,
        "after 50 MB of appends, each fdatasync of a 200-byte record wrote at least {} bytes \
         (all: {per_sync:?})",
        per_sync[0]
    );
}
