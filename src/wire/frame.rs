//! Frame encoding and decoding.
//!
//! `decode` is written for hostile input: it checks the declared length against the limit
//! before waiting for the payload (so a 4 GiB length fails at once), never reads past the
//! payload, and reports every malformed field as a [`WireError`] instead of panicking.

use std::fmt;

use super::{HEADER_LEN, MAGIC, MAX_NAME, MAX_PROXIES};

/// The kind of a frame (the byte at offset 4 of its header).
#[repr(u8)]
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FrameType {
    /// Peer -> hub, first frame of a connection.
    Hello = 0x01,
    /// Hub -> peer, answer to HELLO.
    Welcome = 0x02,
    /// Hub -> peer, the connection is refused or closed for a reason; the hub closes it next.
    Refuse = 0x03,
    /// Hub -> peer, the hub is quitting: move to the next hub of the list.
    Quit = 0x04,
    /// Caller -> hub, a request.
    Request = 0x10,
    /// Hub -> caller, every request up to this id has been accepted.
    Ack = 0x11,
    /// Hub -> caller, the reply (or failure) of one request.
    Reply = 0x12,
    /// Caller -> hub, the caller no longer wants this reply.
    Cancel = 0x13,
    /// Caller -> hub, the caller has these replies: the hub may forget them.
    Done = 0x14,
    /// Hub -> caller (version 2), this request's mode parks its answer (the proxy's default).
    Queued = 0x15,
    /// Hub -> worker, run this request (version 1 layout, no time limit).
    Deliver = 0x20,
    /// Worker -> hub, the outcome of a delivered request.
    Result = 0x21,
    /// Worker -> hub (version 2), finish a delivered request by handing it to another proxy.
    Forward = 0x22,
    /// Hub -> worker (version 2), run this request within the time it is given.
    DeliverTimed = 0x23,
    /// Either way, are you there?
    Ping = 0x30,
    /// Either way, answer to PING.
    Pong = 0x31,
    /// Monitor -> hub, send me the statistics.
    StatsRequest = 0x40,
    /// Hub -> monitor, the statistics as JSON.
    Stats = 0x41,
    /// Monitor -> hub, move the requests waiting for one proxy to another (answered by STATS).
    Reroute = 0x42,
}

impl FrameType {
    fn from_u8(b: u8) -> Option<FrameType> {
        Some(match b {
            0x01 => FrameType::Hello,
            0x02 => FrameType::Welcome,
            0x03 => FrameType::Refuse,
            0x04 => FrameType::Quit,
            0x10 => FrameType::Request,
            0x11 => FrameType::Ack,
            0x12 => FrameType::Reply,
            0x13 => FrameType::Cancel,
            0x14 => FrameType::Done,
            0x15 => FrameType::Queued,
            0x20 => FrameType::Deliver,
            0x21 => FrameType::Result,
            0x22 => FrameType::Forward,
            0x23 => FrameType::DeliverTimed,
            0x30 => FrameType::Ping,
            0x31 => FrameType::Pong,
            0x40 => FrameType::StatsRequest,
            0x41 => FrameType::Stats,
            0x42 => FrameType::Reroute,
            _ => return None,
        })
    }
}

/// What a peer is, as declared in HELLO.
#[repr(u8)]
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Sends requests and reads replies.
    Caller = 1,
    /// Serves proxy ids: receives DELIVER, answers RESULT.
    Worker = 2,
    /// Reads statistics.
    Monitor = 3,
}

/// The HELLO frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello<'a> {
    /// Protocol version the peer speaks.
    pub version: u16,
    /// What the peer is.
    pub role: Role,
    /// Session id chosen by the peer (random, non-zero), kept across reconnects.
    pub session: u64,
    /// Worker: how many deliveries it accepts at once. Callers and monitors send 0.
    pub capacity: u32,
    /// A name for statistics and logs (at most 255 bytes).
    pub name: &'a [u8],
    /// Shared secret, empty if none.
    pub secret: &'a [u8],
    /// Worker: the proxy ids it serves. Empty for the other roles.
    pub proxies: Vec<i32>,
}

/// The WELCOME frame.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Welcome {
    /// Protocol version the hub will speak on this connection.
    pub version: u16,
    /// Largest payload the hub accepts.
    pub max_frame: u32,
    /// Caller: most requests it may have sent and not yet read. Worker: 0.
    pub quota: u32,
    /// The hub pings a connection idle this long; a worker silent 3x this long is dropped.
    pub keepalive_ms: u32,
    /// The session id the hub registered (the one from HELLO).
    pub session: u64,
    /// Random id of this hub run.
    pub hub_id: u64,
}

/// One decoded frame, borrowing its variable parts from the input buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// See [`Hello`].
    Hello(Hello<'a>),
    /// See [`Welcome`].
    Welcome(Welcome),
    /// Refused or closed: a status code and words.
    Refuse {
        /// Why, as a `Status` code.
        code: i32,
        /// Why, in words.
        message: &'a [u8],
    },
    /// The hub is quitting.
    Quit {
        /// Why, in words.
        message: &'a [u8],
    },
    /// A request from a caller.
    Request {
        /// Request id, unique within the caller's session, increasing.
        id: u64,
        /// Target proxy id.
        proxy: i32,
        /// `REQ_*` flags.
        flags: u32,
        /// Deadline in milliseconds, 0 for none.
        timeout_ms: u32,
        /// Opaque body.
        body: &'a [u8],
    },
    /// Every request with an id up to `upto` is accepted.
    Ack {
        /// Highest accepted request id.
        upto: u64,
    },
    /// The outcome of one request.
    Reply {
        /// Request id.
        id: u64,
        /// `Status` code, 0 for success.
        status: i32,
        /// The worker's return code.
        rcode: i32,
        /// Reply body (for failures: words saying what went wrong).
        body: &'a [u8],
    },
    /// Caller -> hub: the caller cancels a request. Hub -> worker (version 2): the caller
    /// cancelled the delivery under this tag; its answer will be dropped.
    Cancel {
        /// Request id (to a worker: the delivery's tag).
        id: u64,
    },
    /// This request's answer is parked when the caller's wait ends (or at once).
    Queued {
        /// Request id.
        id: u64,
        /// 1: queue-on-timeout (the wait may end with DCO_E_QUEUED); 2: async (the call
        /// returns DCO_E_QUEUED once the request is accepted).
        mode: u32,
    },
    /// A worker hands a delivered request on to another proxy, with a new body.
    Forward {
        /// The tag from DELIVER.
        tag: u64,
        /// The proxy that finishes it.
        proxy: i32,
        /// The new body.
        body: &'a [u8],
    },
    /// The caller has the replies of these requests.
    Done {
        /// Request ids, 8 bytes each, big-endian (the payload length is a multiple of 8).
        ids: &'a [u8],
    },
    /// A request handed to a worker.
    Deliver {
        /// Hub's handle for this delivery, echoed in RESULT.
        tag: u64,
        /// Session of the caller.
        session: u64,
        /// The caller's request id: with `session`, the request's identity.
        request: u64,
        /// Proxy id the request was sent to.
        proxy: i32,
        /// Delivery attempt, 1 for the first.
        attempt: u32,
        /// Milliseconds the worker has left to answer (0: no limit); version 2 only.
        remaining_ms: u32,
        /// Opaque body.
        body: &'a [u8],
    },
    /// A worker's outcome for a delivery.
    Result {
        /// The tag from DELIVER.
        tag: u64,
        /// 0 success, `AppFail` with `rcode`, or `System`.
        status: i32,
        /// Application return code.
        rcode: i32,
        /// Reply body.
        body: &'a [u8],
    },
    /// Keep-alive probe.
    Ping {
        /// Echoed in PONG.
        nonce: u64,
    },
    /// Keep-alive answer.
    Pong {
        /// From the PING.
        nonce: u64,
    },
    /// A monitor asks for the statistics.
    StatsRequest,
    /// The statistics, as JSON.
    Stats {
        /// JSON document.
        json: &'a [u8],
    },
    /// A monitor moves the requests waiting for proxy `from` to proxy `to`.
    Reroute {
        /// The proxy whose waiting requests move.
        from: i32,
        /// Where they go.
        to: i32,
    },
}

/// Why bytes could not be decoded as a frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WireError {
    /// The declared payload length is over the limit.
    TooLarge {
        /// Declared length.
        len: u32,
        /// The limit.
        max: u32,
    },
    /// The frame type byte is not one this build knows.
    UnknownType(u8),
    /// The reserved header bytes are not zero.
    BadHeader,
    /// HELLO does not start with the magic bytes.
    BadMagic,
    /// A field is missing, too long or out of range.
    Malformed {
        /// The frame type.
        frame: FrameType,
        /// What is wrong.
        what: &'static str,
    },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::TooLarge { len, max } => {
                write!(f, "frame of {len} bytes is over the limit of {max} bytes")
            }
            WireError::UnknownType(t) => write!(f, "unknown frame type 0x{t:02x}"),
            WireError::BadHeader => write!(f, "reserved header bytes are not zero"),
            WireError::BadMagic => write!(f, "not a dco peer (bad magic in HELLO)"),
            WireError::Malformed { frame, what } => write!(f, "malformed {frame:?} frame: {what}"),
        }
    }
}

impl std::error::Error for WireError {}

/// A cursor over a payload that never reads past its end.
struct Reader<'a> {
    buf: &'a [u8],
    frame: FrameType,
}

impl<'a> Reader<'a> {
    fn bad(&self, what: &'static str) -> WireError {
        WireError::Malformed {
            frame: self.frame,
            what,
        }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        if self.buf.len() < n {
            return Err(self.bad(what));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, WireError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, WireError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, WireError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i32(&mut self, what: &'static str) -> Result<i32, WireError> {
        Ok(self.u32(what)? as i32)
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, WireError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    fn end(&self) -> Result<(), WireError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(self.bad("trailing bytes"))
        }
    }
}

/// Decodes the first frame of `buf`.
///
/// Returns `Ok(None)` when `buf` does not yet hold a whole frame (read more and call again),
/// `Ok(Some((frame, n)))` with the number of bytes the frame used, or an error when the bytes
/// can never become a valid frame (the connection should then be closed). `max_frame` bounds
/// the declared payload length and is checked as soon as the header is in.
pub fn decode(buf: &[u8], max_frame: u32) -> Result<Option<(Frame<'_>, usize)>, WireError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let kind = FrameType::from_u8(buf[4]).ok_or(WireError::UnknownType(buf[4]))?;
    if buf[5] != 0 || buf[6] != 0 || buf[7] != 0 {
        return Err(WireError::BadHeader);
    }
    if len > max_frame {
        return Err(WireError::TooLarge {
            len,
            max: max_frame,
        });
    }
    // On a 32-bit target a length near 4 GiB (allowed by a huge `max_frame`) would overflow
    // `usize`: such a frame can never fit in memory there, so it is too large.
    let Some(total) = HEADER_LEN.checked_add(len as usize) else {
        return Err(WireError::TooLarge {
            len,
            max: max_frame,
        });
    };
    if buf.len() < total {
        return Ok(None);
    }
    let mut r = Reader {
        buf: &buf[HEADER_LEN..total],
        frame: kind,
    };
    let frame = match kind {
        FrameType::Hello => {
            if r.take(4, "magic")? != MAGIC {
                return Err(WireError::BadMagic);
            }
            let version = r.u16("version")?;
            let role = match r.u8("role")? {
                1 => Role::Caller,
                2 => Role::Worker,
                3 => Role::Monitor,
                _ => return Err(r.bad("unknown role")),
            };
            let _flags = r.u8("flags")?;
            let session = r.u64("session")?;
            let capacity = r.u32("capacity")?;
            let name_len = r.u16("name length")? as usize;
            if name_len > MAX_NAME {
                return Err(r.bad("name longer than 255 bytes"));
            }
            let name = r.take(name_len, "name")?;
            let secret_len = r.u16("secret length")? as usize;
            let secret = r.take(secret_len, "secret")?;
            let count = r.u16("proxy count")? as usize;
            if count > MAX_PROXIES {
                return Err(r.bad("more than 4096 proxy ids"));
            }
            let mut proxies = Vec::with_capacity(count);
            for _ in 0..count {
                proxies.push(r.i32("proxy id")?);
            }
            r.end()?;
            Frame::Hello(Hello {
                version,
                role,
                session,
                capacity,
                name,
                secret,
                proxies,
            })
        }
        FrameType::Welcome => {
            let version = r.u16("version")?;
            let _reserved = r.u16("reserved")?;
            let w = Welcome {
                version,
                max_frame: r.u32("max frame")?,
                quota: r.u32("quota")?,
                keepalive_ms: r.u32("keepalive")?,
                session: r.u64("session")?,
                hub_id: r.u64("hub id")?,
            };
            r.end()?;
            Frame::Welcome(w)
        }
        FrameType::Refuse => Frame::Refuse {
            code: r.i32("code")?,
            message: r.rest(),
        },
        FrameType::Quit => Frame::Quit { message: r.rest() },
        FrameType::Request => Frame::Request {
            id: r.u64("id")?,
            proxy: r.i32("proxy")?,
            flags: r.u32("flags")?,
            timeout_ms: r.u32("timeout")?,
            body: r.rest(),
        },
        FrameType::Ack => {
            let upto = r.u64("upto")?;
            r.end()?;
            Frame::Ack { upto }
        }
        FrameType::Reply => Frame::Reply {
            id: r.u64("id")?,
            status: r.i32("status")?,
            rcode: r.i32("rcode")?,
            body: r.rest(),
        },
        FrameType::Cancel => {
            let id = r.u64("id")?;
            r.end()?;
            Frame::Cancel { id }
        }
        FrameType::Done => {
            let ids = r.rest();
            if ids.len() % 8 != 0 {
                return Err(WireError::Malformed {
                    frame: FrameType::Done,
                    what: "length is not a multiple of 8",
                });
            }
            Frame::Done { ids }
        }
        FrameType::Deliver => Frame::Deliver {
            tag: r.u64("tag")?,
            session: r.u64("session")?,
            request: r.u64("request")?,
            proxy: r.i32("proxy")?,
            attempt: r.u32("attempt")?,
            remaining_ms: 0,
            body: r.rest(),
        },
        FrameType::DeliverTimed => Frame::Deliver {
            tag: r.u64("tag")?,
            session: r.u64("session")?,
            request: r.u64("request")?,
            proxy: r.i32("proxy")?,
            attempt: r.u32("attempt")?,
            remaining_ms: r.u32("remaining")?,
            body: r.rest(),
        },
        FrameType::Queued => {
            let id = r.u64("id")?;
            let mode = r.u32("mode")?;
            r.end()?;
            Frame::Queued { id, mode }
        }
        FrameType::Forward => {
            let tag = r.u64("tag")?;
            let proxy = r.i32("proxy")?;
            if r.u32("flags")? != 0 {
                return Err(r.bad("reserved flags are not zero"));
            }
            Frame::Forward {
                tag,
                proxy,
                body: r.rest(),
            }
        }
        FrameType::Result => Frame::Result {
            tag: r.u64("tag")?,
            status: r.i32("status")?,
            rcode: r.i32("rcode")?,
            body: r.rest(),
        },
        FrameType::Ping => {
            let nonce = r.u64("nonce")?;
            r.end()?;
            Frame::Ping { nonce }
        }
        FrameType::Pong => {
            let nonce = r.u64("nonce")?;
            r.end()?;
            Frame::Pong { nonce }
        }
        FrameType::StatsRequest => {
            r.end()?;
            Frame::StatsRequest
        }
        FrameType::Stats => Frame::Stats { json: r.rest() },
        FrameType::Reroute => {
            let from = r.u32("from")? as i32;
            let to = r.u32("to")? as i32;
            r.end()?;
            Frame::Reroute { from, to }
        }
    };
    Ok(Some((frame, total)))
}

fn header(out: &mut Vec<u8>, kind: FrameType, payload_len: usize) {
    debug_assert!(payload_len <= u32::MAX as usize);
    out.extend_from_slice(&(payload_len as u32).to_be_bytes());
    out.extend_from_slice(&[kind as u8, 0, 0, 0]);
}

/// Appends a HELLO frame to `out`. `name` is cut to 255 bytes and `proxies` to 4096 ids.
pub fn encode_hello(
    out: &mut Vec<u8>,
    role: Role,
    session: u64,
    capacity: u32,
    name: &[u8],
    secret: &[u8],
    proxies: &[i32],
) {
    let name = &name[..name.len().min(MAX_NAME)];
    let secret = &secret[..secret.len().min(u16::MAX as usize)];
    let proxies = &proxies[..proxies.len().min(MAX_PROXIES)];
    let len = 4 + 2 + 1 + 1 + 8 + 4 + 2 + name.len() + 2 + secret.len() + 2 + 4 * proxies.len();
    header(out, FrameType::Hello, len);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&super::VERSION.to_be_bytes());
    out.push(role as u8);
    out.push(0);
    out.extend_from_slice(&session.to_be_bytes());
    out.extend_from_slice(&capacity.to_be_bytes());
    out.extend_from_slice(&(name.len() as u16).to_be_bytes());
    out.extend_from_slice(name);
    out.extend_from_slice(&(secret.len() as u16).to_be_bytes());
    out.extend_from_slice(secret);
    out.extend_from_slice(&(proxies.len() as u16).to_be_bytes());
    for p in proxies {
        out.extend_from_slice(&p.to_be_bytes());
    }
}

/// Appends a WELCOME frame to `out`.
pub fn encode_welcome(out: &mut Vec<u8>, w: &Welcome) {
    header(out, FrameType::Welcome, 32);
    out.extend_from_slice(&w.version.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&w.max_frame.to_be_bytes());
    out.extend_from_slice(&w.quota.to_be_bytes());
    out.extend_from_slice(&w.keepalive_ms.to_be_bytes());
    out.extend_from_slice(&w.session.to_be_bytes());
    out.extend_from_slice(&w.hub_id.to_be_bytes());
}

/// Appends a REFUSE frame to `out`.
pub fn encode_refuse(out: &mut Vec<u8>, code: i32, message: &str) {
    header(out, FrameType::Refuse, 4 + message.len());
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(message.as_bytes());
}

/// Appends a QUIT frame to `out`.
pub fn encode_quit(out: &mut Vec<u8>, message: &str) {
    header(out, FrameType::Quit, message.len());
    out.extend_from_slice(message.as_bytes());
}

/// Appends a REQUEST frame to `out`.
pub fn encode_request(
    out: &mut Vec<u8>,
    id: u64,
    proxy: i32,
    flags: u32,
    timeout_ms: u32,
    body: &[u8],
) {
    header(out, FrameType::Request, 20 + body.len());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&proxy.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&timeout_ms.to_be_bytes());
    out.extend_from_slice(body);
}

/// Appends a REQUEST frame for service `service` (see [`super::REQ_SERVICE`]; the name must be
/// valid, see [`super::valid_service`]) to `out`.
pub fn encode_service_request(
    out: &mut Vec<u8>,
    id: u64,
    service: &str,
    flags: u32,
    timeout_ms: u32,
    body: &[u8],
) {
    debug_assert!(super::valid_service(service));
    header(out, FrameType::Request, 20 + 1 + service.len() + body.len());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&(-1i32).to_be_bytes());
    out.extend_from_slice(&(flags | super::REQ_SERVICE).to_be_bytes());
    out.extend_from_slice(&timeout_ms.to_be_bytes());
    out.push(service.len() as u8);
    out.extend_from_slice(service.as_bytes());
    out.extend_from_slice(body);
}

/// Appends an ACK frame to `out`.
pub fn encode_ack(out: &mut Vec<u8>, upto: u64) {
    header(out, FrameType::Ack, 8);
    out.extend_from_slice(&upto.to_be_bytes());
}

/// Appends a REPLY frame to `out`.
pub fn encode_reply(out: &mut Vec<u8>, id: u64, status: i32, rcode: i32, body: &[u8]) {
    header(out, FrameType::Reply, 16 + body.len());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&status.to_be_bytes());
    out.extend_from_slice(&rcode.to_be_bytes());
    out.extend_from_slice(body);
}

/// Appends a CANCEL frame to `out`.
pub fn encode_cancel(out: &mut Vec<u8>, id: u64) {
    header(out, FrameType::Cancel, 8);
    out.extend_from_slice(&id.to_be_bytes());
}

/// Appends a DONE frame for `ids` to `out`.
pub fn encode_done(out: &mut Vec<u8>, ids: &[u64]) {
    header(out, FrameType::Done, 8 * ids.len());
    for id in ids {
        out.extend_from_slice(&id.to_be_bytes());
    }
}

/// What a DELIVER carries besides its body.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct DeliverHead {
    /// Hub's handle for this delivery.
    pub tag: u64,
    /// Session of the caller.
    pub session: u64,
    /// The caller's request id.
    pub request: u64,
    /// Proxy id.
    pub proxy: i32,
    /// Delivery attempt, 1 for the first.
    pub attempt: u32,
    /// Milliseconds left (0: no limit). `None` writes the version 1 frame, without it.
    pub remaining_ms: Option<u32>,
}

/// Appends a DELIVER frame to `out` (type 0x23 with the time left, or 0x20 without).
pub fn encode_deliver(out: &mut Vec<u8>, d: &DeliverHead, body: &[u8]) {
    match d.remaining_ms {
        Some(_) => header(out, FrameType::DeliverTimed, 36 + body.len()),
        None => header(out, FrameType::Deliver, 32 + body.len()),
    }
    out.extend_from_slice(&d.tag.to_be_bytes());
    out.extend_from_slice(&d.session.to_be_bytes());
    out.extend_from_slice(&d.request.to_be_bytes());
    out.extend_from_slice(&d.proxy.to_be_bytes());
    out.extend_from_slice(&d.attempt.to_be_bytes());
    if let Some(ms) = d.remaining_ms {
        out.extend_from_slice(&ms.to_be_bytes());
    }
    out.extend_from_slice(body);
}

/// Appends a QUEUED frame to `out`.
pub fn encode_queued(out: &mut Vec<u8>, id: u64, mode: u32) {
    header(out, FrameType::Queued, 12);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&mode.to_be_bytes());
}

/// Appends a FORWARD frame to `out`.
pub fn encode_forward(out: &mut Vec<u8>, tag: u64, proxy: i32, body: &[u8]) {
    header(out, FrameType::Forward, 16 + body.len());
    out.extend_from_slice(&tag.to_be_bytes());
    out.extend_from_slice(&proxy.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(body);
}

/// Appends a RESULT frame to `out`.
pub fn encode_result(out: &mut Vec<u8>, tag: u64, status: i32, rcode: i32, body: &[u8]) {
    header(out, FrameType::Result, 16 + body.len());
    out.extend_from_slice(&tag.to_be_bytes());
    out.extend_from_slice(&status.to_be_bytes());
    out.extend_from_slice(&rcode.to_be_bytes());
    out.extend_from_slice(body);
}

/// Appends a PING frame to `out`.
pub fn encode_ping(out: &mut Vec<u8>, nonce: u64) {
    header(out, FrameType::Ping, 8);
    out.extend_from_slice(&nonce.to_be_bytes());
}

/// Appends a PONG frame to `out`.
pub fn encode_pong(out: &mut Vec<u8>, nonce: u64) {
    header(out, FrameType::Pong, 8);
    out.extend_from_slice(&nonce.to_be_bytes());
}

/// Appends a STATS_REQUEST frame to `out`.
pub fn encode_stats_request(out: &mut Vec<u8>) {
    header(out, FrameType::StatsRequest, 0);
}

/// Appends a REROUTE frame to `out`.
pub fn encode_reroute(out: &mut Vec<u8>, from: i32, to: i32) {
    header(out, FrameType::Reroute, 8);
    out.extend_from_slice(&from.to_be_bytes());
    out.extend_from_slice(&to.to_be_bytes());
}

/// Appends a STATS frame to `out`.
pub fn encode_stats(out: &mut Vec<u8>, json: &[u8]) {
    header(out, FrameType::Stats, json.len());
    out.extend_from_slice(json);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::DEFAULT_MAX_FRAME;

    fn one(buf: &[u8]) -> Frame<'_> {
        let (f, n) = decode(buf, DEFAULT_MAX_FRAME).unwrap().unwrap();
        assert_eq!(n, buf.len());
        f
    }

    #[test]
    fn round_trips() {
        let mut b = Vec::new();
        encode_hello(&mut b, Role::Worker, 7, 64, b"w1", b"s", &[1, -2, 3]);
        match one(&b) {
            Frame::Hello(h) => {
                assert_eq!(h.role, Role::Worker);
                assert_eq!(h.session, 7);
                assert_eq!(h.capacity, 64);
                assert_eq!(h.name, b"w1");
                assert_eq!(h.secret, b"s");
                assert_eq!(h.proxies, vec![1, -2, 3]);
            }
            f => panic!("{f:?}"),
        }
        b.clear();
        encode_request(&mut b, 9, 5, 1, 100, b"body");
        assert_eq!(
            one(&b),
            Frame::Request {
                id: 9,
                proxy: 5,
                flags: 1,
                timeout_ms: 100,
                body: b"body"
            }
        );
        for remaining in [None, Some(250)] {
            b.clear();
            let d = DeliverHead {
                tag: 1,
                session: 2,
                request: 3,
                proxy: 4,
                attempt: 5,
                remaining_ms: remaining,
            };
            encode_deliver(&mut b, &d, b"x");
            assert_eq!(
                one(&b),
                Frame::Deliver {
                    tag: 1,
                    session: 2,
                    request: 3,
                    proxy: 4,
                    attempt: 5,
                    remaining_ms: remaining.unwrap_or(0),
                    body: b"x"
                }
            );
        }
        b.clear();
        encode_queued(&mut b, 9, 1);
        assert_eq!(one(&b), Frame::Queued { id: 9, mode: 1 });
        b.clear();
        encode_forward(&mut b, 3, 8, b"next");
        assert_eq!(
            one(&b),
            Frame::Forward {
                tag: 3,
                proxy: 8,
                body: b"next"
            }
        );
        b.clear();
        let w = Welcome {
            version: 1,
            max_frame: 10,
            quota: 20,
            keepalive_ms: 30,
            session: 40,
            hub_id: 50,
        };
        encode_welcome(&mut b, &w);
        assert_eq!(one(&b), Frame::Welcome(w));
    }

    #[test]
    fn deliver_with_time_matches_the_protocol_example() {
        // docs/PROTOCOL.md §13.
        let mut b = Vec::new();
        let d = DeliverHead {
            tag: 1 << 32,
            session: 0x0123_4567_89ab_cdef,
            request: 1,
            proxy: 7,
            attempt: 1,
            remaining_ms: Some(60_000),
        };
        encode_deliver(&mut b, &d, b"ping\n");
        let want: [u8; 49] = [
            0, 0, 0, 0x29, 0x23, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0x01, 0x23, 0x45, 0x67, 0x89,
            0xab, 0xcd, 0xef, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0xea, 0x60,
            b'p', b'i', b'n', b'g', b'\n',
        ];
        assert_eq!(b, want);
    }

    #[test]
    fn partial_frames_wait_for_more() {
        let mut b = Vec::new();
        encode_reply(&mut b, 1, 0, 0, b"hello");
        for cut in 0..b.len() {
            assert_eq!(decode(&b[..cut], DEFAULT_MAX_FRAME), Ok(None));
        }
    }

    #[test]
    fn huge_length_fails_before_the_payload_arrives() {
        let mut b = vec![0xff, 0xff, 0xff, 0xff, FrameType::Request as u8, 0, 0, 0];
        assert!(matches!(
            decode(&b, DEFAULT_MAX_FRAME),
            Err(WireError::TooLarge { .. })
        ));
        b[4] = 0x99;
        assert_eq!(
            decode(&b, DEFAULT_MAX_FRAME),
            Err(WireError::UnknownType(0x99))
        );
    }

    #[test]
    fn short_fields_are_malformed() {
        let b = [0, 0, 0, 3, FrameType::Request as u8, 0, 0, 0, 1, 2, 3];
        assert!(matches!(
            decode(&b, DEFAULT_MAX_FRAME),
            Err(WireError::Malformed { .. })
        ));
    }
}
