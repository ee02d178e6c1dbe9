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
    encode_request, encode_result, encode_stats, encode_stats_request, encode_welcome, DeliverHead,
    Frame, FrameType, Hello, Role, Welcome, WireError,
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
