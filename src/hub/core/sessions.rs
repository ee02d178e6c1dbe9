//! Caller sessions: what the hub keeps for a caller across its connections and across hub
//! restarts. A session is named by the random id the caller's library picks once; requests are
//! named by (session, request id).

use ahash::AHashMap as HashMap;

use super::{ConnId, Micros, Token};
use crate::journal::Pos;

/// One caller session.
pub struct SessionState {
    /// The connection it is on now (token, connection id), if any.
    pub conn: Option<(Token, ConnId)>,
    /// Name from its last HELLO.
    pub name: String,
    /// Highest request id accepted: requests arrive in order, so any id up to this one is a
    /// resend and is not run again.
    pub accepted_upto: u64,
    /// Requests accepted and not yet answered (counted against the quota).
    pub inflight: u32,
    /// Answers the caller has not confirmed (by DONE): request id -> REPLY record.
    pub replies: HashMap<u64, Pos>,
    /// Since when it has had no connection (None while connected).
    pub detached_at: Option<Micros>,
    /// Its lanes are parked: its connection's output is over the limit (it does not read).
    pub parked: bool,
    /// Requests accepted.
    pub requests: u64,
    /// Successful replies.
    pub ok: u64,
    /// Failed outcomes.
    pub errors: u64,
}

impl SessionState {
    /// A session with no connection yet.
    pub fn new(now: Micros) -> SessionState {
        SessionState {
            conn: None,
            name: String::new(),
            accepted_upto: 0,
            inflight: 0,
            replies: HashMap::new(),
            detached_at: Some(now),
            parked: false,
            requests: 0,
            ok: 0,
            errors: 0,
        }
    }
}
