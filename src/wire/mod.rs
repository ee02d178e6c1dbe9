//! The wire protocol: how callers, workers and monitors talk to a hub.
//!
//! Every connection carries length-prefixed frames (docs/PROTOCOL.md has them byte by byte).
//! Integers are big-endian. The first frame a peer sends is HELLO, which says whether it is a
//! caller, a worker or a monitor; the hub answers WELCOME or REFUSE.
//!
//! `frame` only turns bytes into [`Frame`]s and back, with no I/O and no state, so it can be
//! fuzzed on its own. `conn` is the blocking, buffered connection the caller library and the
//! worker side use to talk frames to a hub.

pub mod conn;
mod frame;

pub(crate) use conn::Stream;
pub use conn::{hubs_from_env, Conn, ConnError, HubAddr, DEFAULT_HUB};

pub use frame::{
    decode, encode_ack, encode_cancel, encode_deliver, encode_done, encode_forward, encode_hello,
    encode_ping, encode_pong, encode_queued, encode_quit, encode_refuse, encode_reply,
    encode_request, encode_reroute, encode_result, encode_service_request, encode_stats,
    encode_stats_request, encode_welcome, DeliverHead, Frame, FrameType, Hello, Role, Welcome,
    WireError,
};

/// The four bytes that open every HELLO payload.
pub const MAGIC: [u8; 4] = *b"DCO!";

/// The protocol version this build speaks. Version 2 adds the time left in DELIVER (0x23),
/// CANCEL to workers, FORWARD, QUEUED and the mode flags; a hub speaks both 1 and 2.
pub const VERSION: u16 = 2;

/// The oldest protocol version a hub of this build accepts.
pub const MIN_VERSION: u16 = 1;

/// Bytes of the fixed frame header: `u32 len | u8 type | u8 flags | u16 reserved`.
pub const HEADER_LEN: usize = 8;

/// Default upper bound for a frame's payload (16 MiB). The hub's `--max-frame` overrides it
/// and tells every peer its value in WELCOME.
pub const DEFAULT_MAX_FRAME: u32 = 16 * 1024 * 1024;

/// Request flag: no reply is wanted.
pub const REQ_ONEWAY: u32 = 1;

/// Request flag: queue-on-timeout (the caller's wait may end with DCO_E_QUEUED; the request
/// goes on and its answer is parked). Same value as the C flag DCO_QUEUE_ON_TIMEOUT.
pub const REQ_QUEUE_ON_TIMEOUT: u32 = 4;

/// Request flag: async (sent by `dco_send_request`: accepted at once, answer parked until read,
/// no deadline).
pub const REQ_ASYNC: u32 = 8;

/// Request flag: sync whatever the proxy's default (the timeout is a deadline the hub keeps).
pub const REQ_SYNC: u32 = 16;

/// Request flag: the request names a service instead of a proxy. Its body starts with the
/// name (one byte of length, 1 to [`MAX_SERVICE`], then the name), and its proxy id is -1 (so
/// a hub that does not know the flag refuses it as an invalid proxy). The hub resolves the
/// name through its routes when it accepts the request and journals the proxy it found.
pub const REQ_SERVICE: u32 = 32;

/// Longest service name.
pub const MAX_SERVICE: usize = 255;

/// Whether `name` can be a service name: 1 to [`MAX_SERVICE`] bytes of printable ASCII, no
/// spaces.
pub fn valid_service(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_SERVICE && name.bytes().all(|b| b.is_ascii_graphic())
}

/// Splits a [`REQ_SERVICE`] request's body into the service name and the request's own body.
pub fn split_service(body: &[u8]) -> Option<(&str, &[u8])> {
    let (&n, rest) = body.split_first()?;
    let n = n as usize;
    let name = std::str::from_utf8(rest.get(..n)?).ok()?;
    valid_service(name).then(|| (name, &rest[n..]))
}

/// Longest chain of forwards one request may take.
pub const MAX_HOPS: u32 = 8;

/// Result status a worker sends to ask for the request to be tried again later (a system
/// reason: the hub's retry policy applies). Callers never see it.
pub const RESULT_RETRY: i32 = crate::status::Status::Retry as i32;

/// Longest peer name accepted in HELLO.
pub const MAX_NAME: usize = 255;

/// Most proxy ids one worker may announce.
pub const MAX_PROXIES: usize = 4096;

/// The largest HELLO payload there can be (longest name, secret and proxy list): what a peer
/// may send before it is known, so an unknown peer cannot make the hub buffer more.
pub(crate) const MAX_HELLO: u32 =
    (4 + 2 + 1 + 1 + 8 + 4 + 2 + MAX_NAME + 2 + u16::MAX as usize + 2 + 4 * MAX_PROXIES) as u32;

#[cfg(test)]
mod service_tests {
    use super::*;

    #[test]
    fn service_names_split_only_when_whole_and_valid() {
        let mut out = Vec::new();
        encode_service_request(&mut out, 1, "a.svc", 0, 0, b"body");
        let (frame, _) = decode(&out, DEFAULT_MAX_FRAME).unwrap().unwrap();
        let Frame::Request {
            proxy, flags, body, ..
        } = frame
        else {
            panic!("not a request");
        };
        assert_eq!((proxy, flags & REQ_SERVICE), (-1, REQ_SERVICE));
        assert_eq!(split_service(body), Some(("a.svc", &b"body"[..])));
        // Hostile bodies: empty, a length past the end, a zero length, bytes that are not a
        // name.
        for bad in [
            &b""[..],
            b"\x09a.svc",
            b"\x00body",
            b"\x03a b",
            b"\x02\xff\xfe",
            b"\x01\n",
        ] {
            assert_eq!(split_service(bad), None, "{bad:?}");
        }
        assert!(valid_service(&"x".repeat(MAX_SERVICE)));
        assert!(!valid_service(&"x".repeat(MAX_SERVICE + 1)));
    }
}
