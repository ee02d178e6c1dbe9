//! The record format inside a segment, with no I/O (so it can be fuzzed on its own).
//!
//! ```text
//! offset size field
//! 0      4    len    payload length, little-endian u32 (0: no record here, the data ends)
//! 4      4    crc    CRC-32C of (len | kind | payload), seeded with the segment's sequence
//!                    number, so a stale record left in a recycled segment never verifies
//! 8      1    kind   record kind, never 0
//! 9      len  payload
//! ```

/// Bytes of a record header.
pub const RECORD_HEADER: usize = 9;

/// Kind of the record that seals a segment: the writer moved on to the next one.
pub const KIND_SEAL: u8 = 0xff;

/// Kind of the record salvage writes over damaged bytes (kept aside first), so the segment
/// reads whole again; recovery skips it.
pub const KIND_PAD: u8 = 0xfe;

/// Kind of the journal's durability mark: its payload (`end` u32, `records` u32) says the
/// records of this segment before offset `end`, `records` of them, were durable when it was
/// written; recovery skips it after reading what it says.
pub const KIND_MARK: u8 = 0xfd;

/// What is at an offset of a segment.
#[derive(Debug, PartialEq, Eq)]
pub enum Scan<'a> {
    /// A whole record that verifies: its kind, payload, and the offset after it.
    Record {
        /// Record kind.
        kind: u8,
        /// Payload.
        payload: &'a [u8],
        /// Offset of the next record.
        next: usize,
    },
    /// Zeros: nothing was written here.
    End,
    /// Bytes that are not a valid record (torn write, corruption, or stale data).
    Invalid(&'static str),
}

/// The CRC seed of segment `seq` (the same for every record of the segment: compute it once).
pub fn seed(seq: u64) -> u32 {
    crc32c::crc32c(&seq.to_le_bytes())
}

/// The CRC of a record of segment `seq`.
pub fn checksum(seq: u64, len: u32, kind: u8, parts: &[&[u8]]) -> u32 {
    let mut c = crc32c::crc32c_append(seed(seq), &len.to_le_bytes());
    c = crc32c::crc32c_append(c, &[kind]);
    for p in parts {
        c = crc32c::crc32c_append(c, p);
    }
    c
}

/// Bytes a record with this payload length takes.
pub fn encoded_len(payload: usize) -> usize {
    RECORD_HEADER + payload
}

/// Writes a record made of `parts` at the start of `out`, which must be at least
/// `encoded_len(sum of parts)` long. Returns the bytes written.
pub fn encode(out: &mut [u8], seq: u64, kind: u8, parts: &[&[u8]]) -> usize {
    encode_seeded(out, seed(seq), kind, parts)
}

/// [`encode`] with the segment's seed already computed (see [`seed`]).
pub fn encode_seeded(out: &mut [u8], seed: u32, kind: u8, parts: &[&[u8]]) -> usize {
    debug_assert!(kind != 0);
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut at = RECORD_HEADER;
    for p in parts {
        out[at..at + p.len()].copy_from_slice(p);
        at += p.len();
    }
    out[8] = kind;
    // The CRC covers len | kind | payload: the last two lie together in `out` now.
    let len_le = (len as u32).to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c_append(seed, &len_le), &out[8..at]);
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    // The length goes last: a record whose header is torn reads as an end or fails its CRC.
    out[0..4].copy_from_slice(&len_le);
    at
}

/// Reads the record at `at` of a segment numbered `seq` whose bytes are `data`.
pub fn scan(data: &[u8], seq: u64, at: usize) -> Scan<'_> {
    scan_seeded(data, seed(seq), at)
}

/// [`scan`] with the segment's seed already computed (see [`seed`]).
pub fn scan_seeded(data: &[u8], seed: u32, at: usize) -> Scan<'_> {
    let Some(head) = data.get(at..at + RECORD_HEADER) else {
        // Too little room for a header: whatever is there must be zeros.
        return if data.get(at..).is_some_and(|t| t.iter().all(|b| *b == 0)) {
            Scan::End
        } else {
            Scan::Invalid("partial record header at the end of the segment")
        };
    };
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    let kind = head[8];
    if len == 0 {
        return if crc == 0 && kind == 0 {
            Scan::End
        } else {
            Scan::Invalid("record with zero length")
        };
    }
    if kind == 0 {
        return Scan::Invalid("record of kind 0");
    }
    let start = at + RECORD_HEADER;
    let Some(end) = start.checked_add(len as usize).filter(|e| *e <= data.len()) else {
        return Scan::Invalid("record runs past the end of the segment");
    };
    let payload = &data[start..end];
    let c = crc32c::crc32c_append(
        crc32c::crc32c_append(seed, &len.to_le_bytes()),
        &data[at + 8..end],
    );
    if c != crc {
        return Scan::Invalid("checksum mismatch");
    }
    Scan::Record {
        kind,
        payload,
        next: end,
    }
}

/// The record at `at`, trusting its bytes: for records this process wrote or recovery already
/// verified. Checks only that the header describes a record inside `data`.
pub fn peek(data: &[u8], at: usize) -> Option<(u8, &[u8])> {
    let head = data.get(at..at + RECORD_HEADER)?;
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let kind = head[8];
    if len == 0 || kind == 0 {
        return None;
    }
    let start = at + RECORD_HEADER;
    Some((kind, data.get(start..start.checked_add(len)?)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_then_scan() {
        let mut buf = vec![0u8; 64];
        let n = encode(&mut buf, 7, 3, &[b"ab", b"cde"]);
        assert_eq!(n, encoded_len(5));
        assert_eq!(
            scan(&buf, 7, 0),
            Scan::Record {
                kind: 3,
                payload: b"abcde",
                next: n
            }
        );
        assert_eq!(scan(&buf, 7, n), Scan::End);
        // Another segment number: the same bytes do not verify.
        assert!(matches!(scan(&buf, 8, 0), Scan::Invalid(_)));
        // Any flipped bit is caught.
        for i in 0..n {
            let mut b = buf.clone();
            b[i] ^= 0x10;
            assert!(
                !matches!(
                    scan(&b, 7, 0),
                    Scan::Record {
                        payload: b"abcde",
                        ..
                    }
                ),
                "flip at {i}"
            );
        }
        // Cut anywhere: never a record.
        for cut in 0..n {
            assert!(!matches!(scan(&buf[..cut], 7, 0), Scan::Record { .. }));
        }
    }
}
