//! The outcome vocabulary shared by the wire protocol, the Rust API and the C ABI.
//!
//! Every outcome a caller can tell apart has one fixed negative number. The same numbers
//! travel in REPLY frames (`status` field) and are returned by the C functions as
//! `DCO_E_*`. Numbers are never reused: a retired outcome stays reserved.

use std::fmt;

/// One outcome of a dco operation. `Ok` is 0, every failure is negative.
#[repr(i32)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// Success.
    Ok = 0,
    /// An argument was invalid: NULL pointer, negative proxy id, unknown flag, bad hub list.
    Invalid = -1,
    /// The timeout passed before the reply arrived.
    Timeout = -2,
    /// No worker can serve this proxy id.
    NoRoute = -3,
    /// No hub of the list could be reached, or the connection to it was lost.
    NotConnected = -4,
    /// Over quota: too many requests sent and not yet read. Read some replies, then retry.
    Busy = -5,
    /// No request with this id is outstanding in this session (never issued, one-way, already
    /// read whole, or abandoned after a timeout of dco_call_sync).
    UnknownId = -6,
    /// The body is larger than the hub's frame limit.
    TooLarge = -7,
    /// The worker reported an application failure; its return code comes with it
    /// (dco_last_rcode() in C).
    AppFail = -8,
    /// System failure: the worker died and no other could take the request, the attempts ran
    /// out, or a peer broke the protocol.
    System = -9,
    /// The request was cancelled.
    Cancelled = -10,
    /// The hub refused this peer or request (wrong secret, not allowed).
    Refused = -11,
    /// A peer sent bytes that are not the dco protocol.
    Protocol = -12,
    /// An internal error was caught at the library boundary (a bug; please report it).
    Panic = -13,
    /// The request was accepted, its reply is not there yet: it goes on, and its answer is
    /// parked for dco_read_request (queue-on-timeout and async modes).
    Queued = -14,
    /// A worker's outcome (dco_reply_retry): try the request again later, per the proxy's retry
    /// policy. Callers never get it: after the last attempt they get DCO_E_SYSTEM.
    Retry = -15,
}

impl Status {
    /// All outcomes, in numeric order from `Ok` downwards.
    pub const ALL: [Status; 16] = [
        Status::Ok,
        Status::Invalid,
        Status::Timeout,
        Status::NoRoute,
        Status::NotConnected,
        Status::Busy,
        Status::UnknownId,
        Status::TooLarge,
        Status::AppFail,
        Status::System,
        Status::Cancelled,
        Status::Refused,
        Status::Protocol,
        Status::Panic,
        Status::Queued,
        Status::Retry,
    ];

    /// The number of this outcome, as on the wire and in the C ABI.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The outcome for a number; unknown numbers (from a newer peer) map to `System`.
    pub fn from_code(code: i32) -> Status {
        Status::ALL
            .iter()
            .copied()
            .find(|s| s.code() == code)
            .unwrap_or(Status::System)
    }

    /// A short constant name, as in the C header (`DCO_E_TIMEOUT`).
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "DCO_OK",
            Status::Invalid => "DCO_E_INVALID",
            Status::Timeout => "DCO_E_TIMEOUT",
            Status::NoRoute => "DCO_E_NO_ROUTE",
            Status::NotConnected => "DCO_E_NOT_CONNECTED",
            Status::Busy => "DCO_E_BUSY",
            Status::UnknownId => "DCO_E_UNKNOWN_ID",
            Status::TooLarge => "DCO_E_TOO_LARGE",
            Status::AppFail => "DCO_E_APP_FAIL",
            Status::System => "DCO_E_SYSTEM",
            Status::Cancelled => "DCO_E_CANCELLED",
            Status::Refused => "DCO_E_REFUSED",
            Status::Protocol => "DCO_E_PROTOCOL",
            Status::Panic => "DCO_E_PANIC",
            Status::Queued => "DCO_E_QUEUED",
            Status::Retry => "DCO_E_RETRY",
        }
    }

    /// One line describing the outcome in words.
    pub fn describe(self) -> &'static str {
        match self {
            Status::Ok => "success",
            Status::Invalid => "invalid argument",
            Status::Timeout => "timed out waiting for the reply",
            Status::NoRoute => "no worker can serve this proxy",
            Status::NotConnected => "not connected to any hub",
            Status::Busy => "over quota: too many requests outstanding",
            Status::UnknownId => "no such request outstanding in this session",
            Status::TooLarge => "body larger than the hub's frame limit",
            Status::AppFail => "the worker reported an application failure",
            Status::System => "system failure (worker died or protocol error)",
            Status::Cancelled => "cancelled",
            Status::Refused => "refused by the hub",
            Status::Protocol => "protocol error",
            Status::Panic => "internal error caught at the library boundary",
            Status::Queued => "accepted; the reply is not there yet",
            Status::Retry => "the worker asks to try the request again later",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.describe(), self.name())
    }
}

/// An error: an outcome plus words saying what happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// The outcome.
    pub status: Status,
    /// The worker's return code for `AppFail`, else 0.
    pub rcode: i32,
    /// What happened, in words.
    pub message: String,
}

impl Error {
    /// An error with an outcome and a message.
    pub fn new(status: Status, message: impl Into<String>) -> Error {
        Error {
            status,
            rcode: 0,
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status.name(), self.message)
    }
}

impl std::error::Error for Error {}

/// Result of a dco operation.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for s in Status::ALL {
            assert!(seen.insert(s.code()), "{s:?} reuses a number");
            assert_eq!(Status::from_code(s.code()), s);
            assert!(s.name().starts_with("DCO_"));
        }
        assert_eq!(Status::from_code(-999), Status::System);
    }
}
