//! What the hub writes to its journal, and how it reads it back.
//!
//! Payloads are little-endian. Every record names its request by `(session, request)`, the
//! caller's session id and its request id: the identity that makes resends idempotent.
//!
//! | kind | name    | payload                                                              |
//! |------|---------|----------------------------------------------------------------------|
//! | 1    | ACCEPT  | session u64, request u64, proxy i32, flags u32, accepted_us u64, body (read only: journals of earlier builds) |
//! | 2    | DELIVER | session u64, request u64, attempt u32 [, failures u32]               |
//! | 3    | REPLY   | session u64, request u64, status i32, rcode i32, body                |
//! | 4    | DONE    | session u64, request u64 (the caller has the reply, or cancelled)    |
//! | 5    | ACCEPT  | session u64, request u64, proxy i32, flags u32, accepted_us u64, deadline_us u64, hops u32, reserved u32, body |
//!
//! Kind 5 is written for every request: `deadline_us` is the absolute time (microseconds since
//! the epoch, 0 for none) past which the request is not delivered, so a deadline holds across
//! restarts; `hops` counts forwards. A later ACCEPT of the same (session, request) is a forward:
//! it replaces the earlier one. DELIVER's `failures` counts the deliveries that failed for a
//! system reason before this one (the retry budget); 20-byte DELIVERs of earlier builds have 0.

/// Request accepted, format of earlier builds (read, never written).
pub const ACCEPT_V1: u8 = 1;
/// Request accepted or forwarded (journaled before it is acknowledged).
pub const ACCEPT: u8 = 5;
/// Request handed to a worker (attempt n).
pub const DELIVER: u8 = 2;
/// Outcome received (or decided by the hub).
pub const REPLY: u8 = 3;
/// The caller has the reply; nothing more to keep.
pub const DONE: u8 = 4;

/// Fixed bytes of a kind-1 ACCEPT payload before the body.
pub const ACCEPT_V1_FIXED: usize = 32;
/// Fixed bytes of an ACCEPT payload before the body.
pub const ACCEPT_FIXED: usize = 48;
/// Fixed bytes of a REPLY payload before the body.
pub const REPLY_FIXED: usize = 24;

/// Bytes of the durability mark (a MARK record) that may follow a record in its round.
const MARK_BYTES: u32 = (crate::journal::record::RECORD_HEADER + 8) as u32;

/// Bytes the journal keeps in reserve for a DONE record (and the mark after it).
pub const DONE_BYTES: u32 = (crate::journal::record::RECORD_HEADER + 16) as u32 + MARK_BYTES;

/// Bytes the journal keeps in reserve for an accepted request until it finishes: its REPLY
/// (with up to `answer` bytes of body) and its DONE, each with the mark that may follow it.
pub fn reserve_for(answer: u32) -> u32 {
    ((crate::journal::record::RECORD_HEADER + REPLY_FIXED) as u32 + MARK_BYTES)
        .saturating_add(answer)
        .saturating_add(DONE_BYTES)
}

/// A decoded REPLY.
pub struct Reply<'a> {
    pub session: u64,
    pub request: u64,
    pub status: i32,
    pub rcode: i32,
    pub body: &'a [u8],
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The fixed fields of an ACCEPT record.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct AcceptHead {
    pub session: u64,
    pub request: u64,
    pub proxy: i32,
    pub flags: u32,
    pub accepted_us: u64,
    pub deadline_us: u64,
    pub hops: u32,
}

/// The fixed part of an ACCEPT record.
pub fn accept_head(a: &AcceptHead) -> [u8; ACCEPT_FIXED] {
    let mut h = [0u8; ACCEPT_FIXED];
    h[0..8].copy_from_slice(&a.session.to_le_bytes());
    h[8..16].copy_from_slice(&a.request.to_le_bytes());
    h[16..20].copy_from_slice(&a.proxy.to_le_bytes());
    h[20..24].copy_from_slice(&a.flags.to_le_bytes());
    h[24..32].copy_from_slice(&a.accepted_us.to_le_bytes());
    h[32..40].copy_from_slice(&a.deadline_us.to_le_bytes());
    h[40..44].copy_from_slice(&a.hops.to_le_bytes());
    h
}

/// Decodes an ACCEPT payload of `kind` (either format) into its fixed fields and its body;
/// None if it is too short. Kind-1 records have no deadline and no hops.
pub fn accept(kind: u8, p: &[u8]) -> Option<(AcceptHead, &[u8])> {
    let (fixed, v2) = match kind {
        ACCEPT => (ACCEPT_FIXED, true),
        ACCEPT_V1 => (ACCEPT_V1_FIXED, false),
        _ => return None,
    };
    if p.len() < fixed {
        return None;
    }
    let head = AcceptHead {
        session: u64_at(p, 0),
        request: u64_at(p, 8),
        proxy: u32_at(p, 16) as i32,
        flags: u32_at(p, 20),
        accepted_us: u64_at(p, 24),
        deadline_us: if v2 { u64_at(p, 32) } else { 0 },
        hops: if v2 { u32_at(p, 40) } else { 0 },
    };
    Some((head, &p[fixed..]))
}

/// The fixed part of a REPLY record.
pub fn reply_head(session: u64, request: u64, status: i32, rcode: i32) -> [u8; REPLY_FIXED] {
    let mut h = [0u8; REPLY_FIXED];
    h[0..8].copy_from_slice(&session.to_le_bytes());
    h[8..16].copy_from_slice(&request.to_le_bytes());
    h[16..20].copy_from_slice(&status.to_le_bytes());
    h[20..24].copy_from_slice(&rcode.to_le_bytes());
    h
}

/// Decodes a REPLY payload; None if it is too short.
pub fn reply(p: &[u8]) -> Option<Reply<'_>> {
    (p.len() >= REPLY_FIXED).then(|| Reply {
        session: u64_at(p, 0),
        request: u64_at(p, 8),
        status: u32_at(p, 16) as i32,
        rcode: u32_at(p, 20) as i32,
        body: &p[REPLY_FIXED..],
    })
}

/// A DELIVER payload.
pub fn deliver(session: u64, request: u64, attempt: u32, failures: u32) -> [u8; 24] {
    let mut h = [0u8; 24];
    h[0..8].copy_from_slice(&session.to_le_bytes());
    h[8..16].copy_from_slice(&request.to_le_bytes());
    h[16..20].copy_from_slice(&attempt.to_le_bytes());
    h[20..24].copy_from_slice(&failures.to_le_bytes());
    h
}

/// Decodes a DELIVER payload: (session, request, attempt, failures before it).
pub fn deliver_of(p: &[u8]) -> Option<(u64, u64, u32, u32)> {
    match p.len() {
        20 => Some((u64_at(p, 0), u64_at(p, 8), u32_at(p, 16), 0)),
        24 => Some((u64_at(p, 0), u64_at(p, 8), u32_at(p, 16), u32_at(p, 20))),
        _ => None,
    }
}

/// A DONE payload.
pub fn done(session: u64, request: u64) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[0..8].copy_from_slice(&session.to_le_bytes());
    h[8..16].copy_from_slice(&request.to_le_bytes());
    h
}

/// Decodes a DONE payload: (session, request).
pub fn done_of(p: &[u8]) -> Option<(u64, u64)> {
    (p.len() == 16).then(|| (u64_at(p, 0), u64_at(p, 8)))
}

/// What a damaged record of `kind` whose payload starts with `first` looks like, for
/// recovery's reports: every record the hub writes starts with the session and request ids.
pub fn describe(kind: u8, first: &[u8]) -> String {
    let name = match kind {
        ACCEPT | ACCEPT_V1 => "ACCEPT",
        DELIVER => "DELIVER",
        REPLY => "REPLY",
        DONE => "DONE",
        _ => "a record of unknown kind",
    };
    if first.len() >= 16 {
        format!(
            "{name} of session {:016x} request {}",
            u64_at(first, 0),
            u64_at(first, 8)
        )
    } else {
        name.to_string()
    }
}
