//! Hostile peers against a real hub process.
//!
//! Every test starts its own `dco hub --max-frame 1048576` and `dco worker echo`, connects a
//! well-behaved caller (`dco::client::Session`) BEFORE the attack, then opens raw TCP sockets
//! that send broken, forbidden or oddly timed bytes. For each offending connection the test
//! checks the raw bytes the hub sends back (a REFUSE frame with the right code and a readable
//! message, then end of stream), and afterwards that the caller still gets correct echo replies
//! on the same connection, that the hub counted the protocol errors in its statistics, and that
//! it holds no leftover connection or request.
//!
//! Valid frames are built with the crate's own `encode_*` functions; broken ones by hand.
//! Every wait on a raw socket has a deadline (`HANG_GUARD`, PINGs from the hub included), so a
//! hub that waits where it should refuse makes the test fail instead of hang. No assertion
//! depends on timing otherwise: "nothing was sent" is checked with a PING barrier (the hub
//! handles a connection's frames in order, so anything an earlier frame causes comes first).
//!

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{echo_worker, Hub, Proc};
use dco::client::{Session, SessionConfig};
use dco::wire::{self, Frame, FrameType, HubAddr, Role, Welcome, MAGIC, VERSION};

/// Proxy id served by the echo worker.
const ECHO: i32 = 7;
/// The hub's `--max-frame`.
const MAX_FRAME: u32 = 1_048_576;
/// Longest wait for any one answer from the hub before a test fails instead of hanging.
const HANG_GUARD: Duration = Duration::from_secs(10);
/// Longest wait for the hub's statistics to settle (a closed connection to be noticed, ...).
const SETTLE_GUARD: Duration = Duration::from_secs(20);

const PROTOCOL: i32 = -12;
const REFUSED: i32 = -11;
const INVALID: i32 = -1;

// ---------------------------------------------------------------------------------------------
// Byte builders.

/// A frame with an arbitrary type byte, reserved bytes and payload; the length is the payload's.
fn raw_frame(kind: u8, reserved: [u8; 3], payload: &[u8]) -> Vec<u8> {
    let mut b = (payload.len() as u32).to_be_bytes().to_vec();
    b.push(kind);
    b.extend_from_slice(&reserved);
    b.extend_from_slice(payload);
    b
}

/// A bare header declaring `len` payload bytes (none follow).
fn header(len: u32, kind: u8) -> Vec<u8> {
    let mut b = len.to_be_bytes().to_vec();
    b.extend_from_slice(&[kind, 0, 0, 0]);
    b
}

fn enc(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut b = Vec::new();
    f(&mut b);
    b
}

/// A session id no other raw caller of this test run uses: the hub keeps sessions across
/// connections, and a new connection of a session replaces the old one.
fn fresh_session() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0x5eed_0000_0001);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn caller_hello_for(session: u64) -> Vec<u8> {
    enc(|b| wire::encode_hello(b, Role::Caller, session, 0, b"raw-caller", b"", &[]))
}

/// A caller HELLO with a fresh session.
fn caller_hello() -> Vec<u8> {
    caller_hello_for(fresh_session())
}

fn worker_hello(proxies: &[i32]) -> Vec<u8> {
    enc(|b| wire::encode_hello(b, Role::Worker, 0xbeef, 4, b"raw-worker", b"", proxies))
}

fn monitor_hello() -> Vec<u8> {
    enc(|b| wire::encode_hello(b, Role::Monitor, 0x0b5e, 0, b"raw-monitor", b"", &[]))
}

fn request(id: u64, proxy: i32, body: &[u8]) -> Vec<u8> {
    enc(|b| wire::encode_request(b, id, proxy, 0, 0, body))
}

/// A HELLO whose every field can be set to a value `encode_hello` would never produce.
#[derive(Clone)]
struct HelloSpec {
    magic: [u8; 4],
    version: u16,
    role: u8,
    session: u64,
    capacity: u32,
    /// Declared name length (defaults to `name.len()`).
    name_len: Option<u16>,
    name: Vec<u8>,
    secret: Vec<u8>,
    /// Declared proxy count (defaults to `proxies.len()`).
    count: Option<u16>,
    proxies: Vec<i32>,
    trailing: Vec<u8>,
}

impl HelloSpec {
    fn caller() -> HelloSpec {
        HelloSpec {
            magic: MAGIC,
            version: VERSION,
            role: Role::Caller as u8,
            session: fresh_session(),
            capacity: 0,
            name_len: None,
            name: b"raw-caller".to_vec(),
            secret: Vec::new(),
            count: None,
            proxies: Vec::new(),
            trailing: Vec::new(),
        }
    }

    fn worker(proxies: &[i32]) -> HelloSpec {
        HelloSpec {
            role: Role::Worker as u8,
            session: 0xbeef,
            capacity: 4,
            name: b"raw-worker".to_vec(),
            proxies: proxies.to_vec(),
            ..HelloSpec::caller()
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&self.magic);
        p.extend_from_slice(&self.version.to_be_bytes());
        p.push(self.role);
        p.push(0);
        p.extend_from_slice(&self.session.to_be_bytes());
        p.extend_from_slice(&self.capacity.to_be_bytes());
        let name_len = self.name_len.unwrap_or(self.name.len() as u16);
        p.extend_from_slice(&name_len.to_be_bytes());
        p.extend_from_slice(&self.name);
        p.extend_from_slice(&(self.secret.len() as u16).to_be_bytes());
        p.extend_from_slice(&self.secret);
        let count = self.count.unwrap_or(self.proxies.len() as u16);
        p.extend_from_slice(&count.to_be_bytes());
        for x in &self.proxies {
            p.extend_from_slice(&x.to_be_bytes());
        }
        p.extend_from_slice(&self.trailing);
        raw_frame(FrameType::Hello as u8, [0; 3], &p)
    }
}

// ---------------------------------------------------------------------------------------------
// A raw connection that reads the hub's frames byte-exactly.

/// One frame from the hub, owned.
#[derive(Debug)]
#[allow(dead_code)] // Some fields are only read through `Debug`, in failure messages.
enum In {
    Welcome(Welcome),
    Refuse {
        code: i32,
        message: String,
    },
    Ack(u64),
    Reply {
        id: u64,
        status: i32,
        rcode: i32,
        body: Vec<u8>,
    },
    Deliver {
        tag: u64,
        request: u64,
        proxy: i32,
        attempt: u32,
        body: Vec<u8>,
    },
    Ping(u64),
    Pong(u64),
    Other(String),
    /// End of stream (or a reset after it).
    Closed,
}

struct Raw {
    s: TcpStream,
    buf: Vec<u8>,
    what: String,
    /// How long one expectation may wait, PINGs from the hub included.
    guard: Duration,
    /// Highest request id sent on this connection.
    sent_upto: u64,
    /// Highest id the hub acknowledged (ACKs come when the hub likes: with a REPLY, a PONG or
    /// at a tick, so they are checked for sense, not for timing).
    acked: u64,
}

impl Raw {
    fn connect(hub: &Hub, what: &str) -> Raw {
        Raw::connect_guarded(hub, what, HANG_GUARD)
    }

    fn connect_guarded(hub: &Hub, what: &str, guard: Duration) -> Raw {
        let s = TcpStream::connect(&hub.addr).expect("connect to the hub");
        s.set_write_timeout(Some(HANG_GUARD)).unwrap();
        s.set_nodelay(true).unwrap();
        Raw {
            s,
            buf: Vec::new(),
            what: what.to_string(),
            guard,
            sent_upto: 0,
            acked: 0,
        }
    }

    /// Writes a REQUEST in one call.
    fn send_request(&mut self, id: u64, proxy: i32, body: &[u8]) {
        self.send(&request(id, proxy, body));
        self.sent_upto = self.sent_upto.max(id);
    }

    /// Writes `bytes` in one call.
    fn send(&mut self, bytes: &[u8]) {
        self.s
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("[{}] write failed: {e}", self.what));
    }

    /// The next frame from the hub, or `Closed`. Panics when `deadline` passes (hang guard) and
    /// on bytes that are not a valid frame.
    fn next(&mut self, deadline: Instant) -> In {
        loop {
            match wire::decode(&self.buf, u32::MAX) {
                Err(e) => panic!("[{}] the hub sent undecodable bytes: {e}", self.what),
                Ok(Some((f, n))) => {
                    let got = match f {
                        Frame::Welcome(w) => In::Welcome(w),
                        Frame::Refuse { code, message } => In::Refuse {
                            code,
                            message: String::from_utf8(message.to_vec())
                                .expect("REFUSE message is UTF-8"),
                        },
                        Frame::Ack { upto } => In::Ack(upto),
                        Frame::Reply {
                            id,
                            status,
                            rcode,
                            body,
                        } => In::Reply {
                            id,
                            status,
                            rcode,
                            body: body.to_vec(),
                        },
                        Frame::Deliver {
                            tag,
                            request,
                            proxy,
                            attempt,
                            body,
                            ..
                        } => In::Deliver {
                            tag,
                            request,
                            proxy,
                            attempt,
                            body: body.to_vec(),
                        },
                        Frame::Ping { nonce } => In::Ping(nonce),
                        Frame::Pong { nonce } => In::Pong(nonce),
                        other => In::Other(format!("{other:?}")),
                    };
                    self.buf.drain(..n);
                    return got;
                }
                Ok(None) => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "[{}] hang guard: no answer from the hub within {:?}",
                self.what,
                self.guard
            );
            self.s.set_read_timeout(Some(left)).unwrap();
            let mut chunk = [0u8; 64 * 1024];
            match self.s.read(&mut chunk) {
                Ok(0) => {
                    assert!(
                        self.buf.is_empty(),
                        "[{}] the hub closed in the middle of a frame ({} bytes)",
                        self.what,
                        self.buf.len()
                    );
                    return In::Closed;
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                    assert!(self.buf.is_empty(), "[{}] reset mid-frame", self.what);
                    return In::Closed;
                }
                Err(e) => panic!("[{}] read failed: {e}", self.what),
            }
        }
    }

    /// The next frame, skipping the hub's keep-alive PINGs and checking and recording its ACKs:
    /// an ACK never goes backwards and never covers an id that was not sent.
    fn next_frame(&mut self) -> In {
        let deadline = Instant::now() + self.guard;
        loop {
            match self.next(deadline) {
                In::Ping(_) => continue,
                In::Ack(upto) => self.note_ack(upto),
                other => return other,
            }
        }
    }

    /// Like `next_frame`, but returns `None` once everything sent is acknowledged.
    fn next_frame_until_acked(&mut self) -> Option<In> {
        let deadline = Instant::now() + self.guard;
        while self.acked < self.sent_upto {
            match self.next(deadline) {
                In::Ping(_) => continue,
                In::Ack(upto) => self.note_ack(upto),
                other => return Some(other),
            }
        }
        None
    }

    fn note_ack(&mut self, upto: u64) {
        assert!(
            upto >= self.acked && upto <= self.sent_upto && upto > 0,
            "[{}] ACK {upto} after ACK {} with ids up to {} sent",
            self.what,
            self.acked,
            self.sent_upto
        );
        self.acked = upto;
    }

    /// Expects the successful REPLY of request `id` with `body`.
    /// Expects a successful REPLY and returns its id.
    fn next_reply_id(&mut self) -> u64 {
        match self.next_frame() {
            In::Reply { id, status: 0, .. } => id,
            other => panic!("[{}] expected a REPLY, got {other:?}", self.what),
        }
    }

    fn expect_reply(&mut self, id: u64, body: &[u8]) {
        match self.next_frame() {
            In::Reply {
                id: got_id,
                status: 0,
                rcode: 0,
                body: got,
            } if got_id == id => assert!(got == body, "[{}] REPLY {id} body differs", self.what),
            other => panic!("[{}] expected REPLY {id}, got {other:?}", self.what),
        }
    }

    /// Expects the error REPLY of request `id` with `status`; returns its message.
    fn expect_error_reply(&mut self, id: u64, status: i32) -> String {
        match self.next_frame() {
            In::Reply {
                id: got_id,
                status: got,
                body,
                ..
            } if got_id == id && got == status => String::from_utf8_lossy(&body).into_owned(),
            other => panic!(
                "[{}] expected REPLY {id} with status {status}, got {other:?}",
                self.what
            ),
        }
    }

    /// A barrier: sends a PING and reads up to its PONG, failing on any other frame (the hub
    /// handles a connection's frames in order, so whatever an earlier frame made it send comes
    /// before the PONG). A caller's PING also asks for its ACK as soon as what it sent is
    /// durable, so then reads on until everything sent is acknowledged.
    fn sync(&mut self, nonce: u64) {
        self.send(&enc(|b| wire::encode_ping(b, nonce)));
        self.expect_pong_and_acks(nonce);
    }

    /// The second half of `sync`, for a PING sent some other way.
    fn expect_pong_and_acks(&mut self, nonce: u64) {
        match self.next_frame() {
            In::Pong(n) => assert_eq!(n, nonce, "[{}] PONG nonce", self.what),
            other => panic!("[{}] expected PONG {nonce}, got {other:?}", self.what),
        }
        while self.acked < self.sent_upto {
            match self.next_frame_until_acked() {
                None => {}
                Some(other) => panic!(
                    "[{}] waiting for the ACK of {} after a PING (have {}), got {other:?}",
                    self.what, self.sent_upto, self.acked
                ),
            }
        }
    }

    /// Expects a DELIVER of `request` for `proxy`, attempt `attempt`, with `body`; returns its tag.
    fn expect_deliver(&mut self, request: u64, proxy: i32, attempt: u32, body: &[u8]) -> u64 {
        match self.next_frame() {
            In::Deliver {
                tag,
                request: r,
                proxy: p,
                attempt: a,
                body: b,
            } => {
                assert_eq!(
                    (r, p, a, b.as_slice()),
                    (request, proxy, attempt, body),
                    "[{}] DELIVER",
                    self.what
                );
                tag
            }
            other => panic!("[{}] expected DELIVER, got {other:?}", self.what),
        }
    }

    fn expect_welcome(&mut self) -> Welcome {
        match self.next_frame() {
            In::Welcome(w) => w,
            other => panic!("[{}] expected WELCOME, got {other:?}", self.what),
        }
    }

    /// Expects a REFUSE with `code` whose message contains `needle`, then the end of the stream.
    fn expect_refuse(&mut self, code: i32, needle: &str) -> String {
        let message = match self.next_frame() {
            In::Refuse { code: c, message } => {
                assert_eq!(
                    c, code,
                    "[{}] REFUSE code {c} ({message:?}), want {code}",
                    self.what
                );
                message
            }
            other => panic!("[{}] expected REFUSE {code}, got {other:?}", self.what),
        };
        assert!(
            message.contains(needle),
            "[{}] REFUSE message {message:?} does not mention {needle:?}",
            self.what
        );
        self.expect_closed();
        message
    }

    /// Expects the hub to end the stream with nothing (but PINGs) before.
    fn expect_closed(&mut self) {
        match self.next_frame() {
            In::Closed => {}
            other => panic!("[{}] expected the hub to close, got {other:?}", self.what),
        }
    }
}

/// Connects, sends `bytes` as the very first thing, expects a REFUSE and the close.
fn refused_first(hub: &Hub, what: &str, bytes: &[u8], code: i32, needle: &str) -> String {
    let mut r = Raw::connect(hub, what);
    r.send(bytes);
    r.expect_refuse(code, needle)
}

/// Connects, greets with `hello` (expecting WELCOME), sends `bytes`, expects a REFUSE and the
/// close.
fn refused_after(
    hub: &Hub,
    what: &str,
    hello: &[u8],
    bytes: &[u8],
    code: i32,
    needle: &str,
) -> String {
    let mut r = Raw::connect(hub, what);
    r.send(hello);
    r.expect_welcome();
    r.send(bytes);
    r.expect_refuse(code, needle)
}

// ---------------------------------------------------------------------------------------------
// The test bed: a hub, an echo worker and a well-behaved caller connected before the attack.

struct Bed {
    hub: Hub,
    _worker: Proc,
    caller: Session,
    /// Open connections with only the worker, the caller and one `dco stats` monitor.
    baseline_connections: u64,
    /// The caller's address as the hub sees it: the same one afterwards means the same
    /// connection.
    caller_addr: String,
    echoes: u64,
}

fn stat_u64(v: &serde_json::Value, section: &str, field: &str) -> u64 {
    v[section][field]
        .as_u64()
        .unwrap_or_else(|| panic!("no {section}.{field} in the hub's statistics: {v}"))
}

impl Bed {
    fn start() -> Bed {
        Bed::start_with(&[])
    }

    fn start_with(extra: &[&str]) -> Bed {
        let max = MAX_FRAME.to_string();
        // Small journal segments: many hubs run at once.
        let mut args = vec!["--max-frame", max.as_str(), "--segment-mb", "4"];
        args.extend_from_slice(extra);
        let hub = Hub::start(&args);
        let worker = echo_worker(&hub.addr, ECHO);
        hub.wait_workers(ECHO, 1);
        let hubs = HubAddr::parse_list(&hub.addr).expect("hub address");
        let mut cfg = SessionConfig::with_hubs(hubs);
        cfg.connect_timeout = HANG_GUARD;
        cfg.name = "good-caller".into();
        let mut caller = Session::new(cfg);
        caller.connect().expect("the good caller connects");
        let mut bed = Bed {
            hub,
            _worker: worker,
            caller,
            baseline_connections: 0,
            caller_addr: String::new(),
            echoes: 0,
        };
        bed.echo(b"before the attack");
        let v = bed.hub.stats();
        assert_eq!(stat_u64(&v, "hub", "protocol_errors"), 0, "{v}");
        bed.baseline_connections = stat_u64(&v, "hub", "connections");
        bed.caller_addr = bed.good_caller_addr(&v);
        bed
    }

    fn good_caller_addr(&self, v: &serde_json::Value) -> String {
        let callers: Vec<_> = v["callers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["name"] == "good-caller")
            .collect();
        assert_eq!(callers.len(), 1, "exactly one good caller in {v}");
        callers[0]["addr"]
            .as_str()
            .expect("caller addr")
            .to_string()
    }

    /// One round trip through the hub and the echo worker.
    fn echo(&mut self, body: &[u8]) {
        self.caller.clear_body();
        self.caller.write(body).expect("write the body");
        let r = self
            .caller
            .call(ECHO, Some(HANG_GUARD))
            .unwrap_or_else(|e| panic!("the good caller's echo failed: {e:?}"));
        assert_eq!(r.body, body, "echo reply differs from the request");
        assert_eq!(r.rcode, 0);
        self.echoes += 1;
    }

    /// Polls the statistics until `ok` holds for them (or fails after `SETTLE_GUARD`).
    fn settle(&self, what: &str, ok: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let until = Instant::now() + SETTLE_GUARD;
        loop {
            let v = self.hub.stats();
            if ok(&v) {
                return v;
            }
            assert!(
                Instant::now() < until,
                "{what}: the hub's statistics are {v}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// After an attack: the caller connected before it still works on the same connection, the
    /// hub counted exactly `protocol_errors` protocol errors since it started, and it is back to
    /// its baseline of connections with no request left in flight.
    fn check_survived(&mut self, protocol_errors: u64) {
        assert!(
            self.caller.is_connected(),
            "the good caller lost its connection"
        );
        self.echo(b"after the attack");
        let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7 + 3) as u8).collect();
        self.echo(&big);
        self.echo(b"");
        assert!(
            self.caller.is_connected(),
            "the good caller had to reconnect"
        );
        let baseline = self.baseline_connections;
        let v = self.settle(
            "back to the baseline connections, nothing queued or in flight",
            |v| {
                stat_u64(v, "hub", "connections") == baseline
                    && stat_u64(v, "hub", "inflight") == 0
                    && stat_u64(v, "hub", "queued") == 0
            },
        );
        assert_eq!(
            stat_u64(&v, "hub", "protocol_errors"),
            protocol_errors,
            "protocol error count: {v}"
        );
        assert_eq!(
            self.good_caller_addr(&v),
            self.caller_addr,
            "same caller connection"
        );
        let requests = v["callers"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["name"] == "good-caller")
            .and_then(|c| c["requests"].as_u64());
        assert_eq!(
            requests,
            Some(self.echoes),
            "the good caller's request count"
        );
    }

    fn pid(&self) -> i32 {
        self.hub.proc.pid() as i32
    }
}

// ---------------------------------------------------------------------------------------------
// The attacks.

#[test]
fn hand_built_hello_matches_the_encoder() {
    // Keeps HelloSpec honest: untouched, it is exactly what encode_hello produces.
    let spec = HelloSpec::caller();
    assert_eq!(spec.bytes(), caller_hello_for(spec.session));
    assert_eq!(HelloSpec::worker(&[3, 4]).bytes(), worker_hello(&[3, 4]));
}

#[test]
fn garbage_as_the_first_bytes_is_refused() {
    let mut bed = Bed::start();
    let hub = &bed.hub;
    // An HTTP client: "GET " is a 1.2 GB length, '/' (0x2f) an unknown type.
    refused_first(
        hub,
        "http",
        b"GET / HTTP/1.1\r\nHost: dco\r\n\r\n",
        PROTOCOL,
        "unknown frame type 0x2f",
    );
    // A TLS ClientHello: type byte 0x00.
    refused_first(
        hub,
        "tls",
        &[
            0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
        ],
        PROTOCOL,
        "unknown frame type 0x00",
    );
    // Binary noise with a known type byte but junk where the reserved bytes are.
    refused_first(
        hub,
        "noise",
        &[
            0x00, 0x00, 0x00, 0x05, 0x01, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x11,
        ],
        PROTOCOL,
        "reserved header bytes are not zero",
    );
    // A plausible header and a HELLO payload that is all noise: bad magic.
    let noise: Vec<u8> = (0..100u32).map(|i| (i * 37 + 11) as u8).collect();
    refused_first(
        hub,
        "noise-hello",
        &raw_frame(FrameType::Hello as u8, [0; 3], &noise),
        PROTOCOL,
        "bad magic",
    );
    bed.check_survived(4);
}

#[test]
fn a_peer_vanishing_mid_frame_leaves_nothing_behind() {
    let mut bed = Bed::start();
    // (a) Before HELLO: five bytes of a HELLO header, then gone.
    {
        let mut r = Raw::connect(&bed.hub, "half-header");
        r.send(&caller_hello()[..5]);
        r.s.shutdown(Shutdown::Both).unwrap();
    }
    // (b) A caller sends half a REQUEST, then half-closes and waits for the hub to close.
    {
        let mut r = Raw::connect(&bed.hub, "half-request");
        r.send(&caller_hello());
        r.expect_welcome();
        let req = request(1, ECHO, &[0xab; 1000]);
        r.send(&req[..req.len() / 2]);
        r.s.shutdown(Shutdown::Write).unwrap();
        r.expect_closed();
    }
    // (c) A caller sends a whole REQUEST and half of the next, then vanishes: its first
    // request is accepted, and its reply, when the worker sends it, has nobody to go to.
    {
        let mut r = Raw::connect(&bed.hub, "request-then-half");
        r.send(&caller_hello());
        r.expect_welcome();
        let mut b = request(1, ECHO, b"orphan");
        let next = request(2, ECHO, b"never finished");
        b.extend_from_slice(&next[..next.len() - 3]);
        r.send(&b);
        drop(r);
    }
    // A peer that vanishes is not a protocol error: nothing is counted, nothing is left.
    bed.check_survived(0);
}

/// The truncated frame and the end of stream reach the hub before it looks at the socket
/// (the hub is stopped while they are sent), so one readiness event carries both. A hub that
/// takes a short read for "drained" never sees that end of stream (fixed in 2979c98; this test
/// failed on the hub before it).
#[test]
fn a_peer_vanishing_mid_frame_is_noticed_even_when_data_and_eof_arrive_together() {
    // A keep-alive far longer than the test: only the EOF itself can end these connections.
    let mut bed = Bed::start_with(&["--keepalive-ms", "600000"]);
    let mut greeted = Raw::connect(&bed.hub, "caller-half-request");
    greeted.send(&caller_hello());
    greeted.expect_welcome();
    let mut fresh = Raw::connect(&bed.hub, "half-hello");
    // Let the hub accept both before it is stopped.
    bed.settle("both raw connections accepted", |v| {
        stat_u64(v, "hub", "connections") >= bed.baseline_connections + 2
    });
    // SAFETY: signals to our own child process.
    unsafe { libc::kill(bed.pid(), libc::SIGSTOP) };
    let req = request(1, ECHO, &[0xcd; 100]);
    greeted.send(&req[..40]);
    fresh.send(&caller_hello()[..20]);
    drop(greeted);
    drop(fresh);
    std::thread::sleep(Duration::from_millis(200));
    unsafe { libc::kill(bed.pid(), libc::SIGCONT) };
    bed.check_survived(0);
}

#[test]
fn a_declared_length_of_4_gib_is_refused_at_once() {
    let mut bed = Bed::start();
    let hub = &bed.hub;
    // Nothing follows the header: a hub waiting for the payload would trip the hang guard.
    refused_first(
        hub,
        "4GiB-hello",
        &header(u32::MAX, FrameType::Hello as u8),
        PROTOCOL,
        // Before its HELLO a peer may send no more than the largest HELLO.
        "frame of 4294967295 bytes is over the limit of 82200 bytes",
    );
    refused_after(
        hub,
        "4GiB-request",
        &caller_hello(),
        &header(u32::MAX, FrameType::Request as u8),
        PROTOCOL,
        "frame of 4294967295 bytes is over the limit of 1048576 bytes",
    );
    refused_after(
        hub,
        "4GiB-result",
        &worker_hello(&[901]),
        &header(u32::MAX, FrameType::Result as u8),
        PROTOCOL,
        "over the limit",
    );
    bed.check_survived(3);
}

#[test]
fn a_length_just_over_max_frame_is_refused_and_the_limit_itself_is_accepted() {
    let mut bed = Bed::start();
    // At the limit: a REQUEST payload of exactly --max-frame bytes goes through and comes back.
    {
        let mut r = Raw::connect(&bed.hub, "at-limit");
        r.send(&caller_hello());
        let w = r.expect_welcome();
        assert_eq!(w.max_frame, MAX_FRAME, "WELCOME announces --max-frame");
        let body: Vec<u8> = (0..MAX_FRAME as usize - 20)
            .map(|i| (i % 251) as u8)
            .collect();
        assert_eq!(request(1, ECHO, &body).len(), 8 + MAX_FRAME as usize);
        r.send_request(1, ECHO, &body);
        r.expect_reply(1, &body);
        r.sync(1);
    }
    // One byte over, header only.
    refused_after(
        &bed.hub,
        "over-limit",
        &caller_hello(),
        &header(MAX_FRAME + 1, FrameType::Request as u8),
        PROTOCOL,
        "frame of 1048577 bytes is over the limit of 1048576 bytes",
    );
    // One byte over, payload and all, in one write.
    let mut whole = header(MAX_FRAME + 1, FrameType::Request as u8);
    whole.resize(8 + MAX_FRAME as usize + 1, 0x5a);
    {
        let mut r = Raw::connect(&bed.hub, "over-limit-whole");
        r.send(&caller_hello());
        r.expect_welcome();
        // The hub may close before it has read all of this: the write may fail, the REFUSE
        // must still come first.
        let _ = r.s.write_all(&whole);
        r.expect_refuse(PROTOCOL, "frame of 1048577 bytes");
    }
    bed.check_survived(2);
}

#[test]
fn unknown_frame_types_are_refused() {
    let mut bed = Bed::start();
    let hub = &bed.hub;
    refused_first(
        hub,
        "type-0x99-first",
        &raw_frame(0x99, [0; 3], &[1, 2, 3]),
        PROTOCOL,
        "unknown frame type 0x99",
    );
    for (i, kind) in [0x00u8, 0x05, 0x16, 0x24, 0x43, 0x7f, 0xff]
        .into_iter()
        .enumerate()
    {
        let needle = format!("unknown frame type 0x{kind:02x}");
        let hello = if i % 2 == 0 {
            caller_hello()
        } else {
            worker_hello(&[902])
        };
        refused_after(
            hub,
            &format!("type-{kind:#04x}"),
            &hello,
            &raw_frame(kind, [0; 3], &[0; 8]),
            PROTOCOL,
            &needle,
        );
    }
    // REROUTE is a monitor's: from a caller or a worker it is refused.
    for (what, hello) in [("caller", caller_hello()), ("worker", worker_hello(&[902]))] {
        refused_after(
            hub,
            &format!("reroute-from-{what}"),
            &hello,
            &raw_frame(0x42, [0; 3], &[0, 0, 0, 1, 0, 0, 0, 2]),
            PROTOCOL,
            "REROUTE is not a frame this peer may send",
        );
    }
    bed.check_survived(10);
}

#[test]
fn nonzero_reserved_header_bytes_are_refused() {
    let mut bed = Bed::start();
    let hub = &bed.hub;
    let ping = enc(|b| wire::encode_ping(b, 42));
    let mut n = 0;
    for at in 5..8 {
        let mut bad = ping.clone();
        bad[at] = 0x80;
        refused_after(
            hub,
            &format!("reserved-{at}"),
            &caller_hello(),
            &bad,
            PROTOCOL,
            "reserved header bytes are not zero",
        );
        n += 1;
    }
    let mut hello = caller_hello();
    hello[7] = 1;
    refused_first(
        hub,
        "reserved-hello",
        &hello,
        PROTOCOL,
        "reserved header bytes are not zero",
    );
    n += 1;
    // The clean PING is answered, so it is the reserved byte that was refused.
    let mut r = Raw::connect(hub, "clean-ping");
    r.send(&caller_hello());
    r.expect_welcome();
    r.sync(42);
    drop(r);
    bed.check_survived(n);
}

#[test]
fn frames_before_hello_are_refused() {
    let mut bed = Bed::start();
    let hub = &bed.hub;
    let firsts = [
        ("request", request(1, ECHO, b"no hello")),
        ("ping", enc(|b| wire::encode_ping(b, 1))),
        ("stats-request", enc(wire::encode_stats_request)),
        (
            "result",
            enc(|b| wire::encode_result(b, 1 << 32, 0, 0, b"x")),
        ),
        ("cancel", enc(|b| wire::encode_cancel(b, 1))),
    ];
    for (what, bytes) in &firsts {
        refused_first(hub, what, bytes, PROTOCOL, "the first frame must be HELLO");
    }
    // A REQUEST and then a HELLO in one write: the order matters, the HELLO is too late.
    let mut both = request(1, ECHO, b"early");
    both.extend_from_slice(&caller_hello());
    refused_first(hub, "request+hello", &both, PROTOCOL, "REQUEST");
    bed.check_survived(firsts.len() as u64 + 1);
}

#[test]
fn bad_hellos_are_refused() {
    let mut bed = Bed::start();
    let hub = &bed.hub;
    let mut protocol_errors = 0;
    let mut expect = |what: &str, spec: HelloSpec, code: i32, needle: &str| {
        refused_first(hub, what, &spec.bytes(), code, needle);
        if code == PROTOCOL {
            protocol_errors += 1;
        }
    };
    let c = HelloSpec::caller;
    expect(
        "bad magic",
        HelloSpec {
            magic: *b"DCO?",
            ..c()
        },
        PROTOCOL,
        "bad magic",
    );
    // An unsupported version is a peer the hub does not admit, not noise: Refused. (A peer
    // newer than the hub is answered with the hub's version, which it may accept or leave.)
    expect(
        "version 0",
        HelloSpec { version: 0, ..c() },
        REFUSED,
        "protocol version 0 is not supported",
    );
    expect(
        "name 256",
        HelloSpec {
            name: vec![b'n'; 256],
            ..c()
        },
        PROTOCOL,
        "name longer than 255 bytes",
    );
    expect(
        "name 65535 declared",
        HelloSpec {
            name_len: Some(u16::MAX),
            ..c()
        },
        PROTOCOL,
        "name longer than 255 bytes",
    );
    expect(
        "4097 proxies",
        HelloSpec::worker(&(1000..5097).collect::<Vec<i32>>()),
        PROTOCOL,
        "more than 4096 proxy ids",
    );
    expect(
        "count 65535, no ids",
        HelloSpec {
            count: Some(u16::MAX),
            ..HelloSpec::worker(&[])
        },
        PROTOCOL,
        "more than 4096 proxy ids",
    );
    for role in [0u8, 4, 0xff] {
        expect(
            &format!("role {role}"),
            HelloSpec { role, ..c() },
            PROTOCOL,
            "unknown role",
        );
    }
    expect(
        "name length past the end",
        HelloSpec {
            name_len: Some(200),
            ..c()
        },
        PROTOCOL,
        "malformed Hello frame",
    );
    expect(
        "proxy count past the end",
        HelloSpec {
            count: Some(3),
            ..HelloSpec::worker(&[903])
        },
        PROTOCOL,
        "malformed Hello frame: proxy id",
    );
    expect(
        "trailing bytes",
        HelloSpec {
            trailing: vec![0; 3],
            ..c()
        },
        PROTOCOL,
        "trailing bytes",
    );
    // Well-formed HELLOs the hub does not admit.
    expect(
        "worker without proxies",
        HelloSpec::worker(&[]),
        INVALID,
        "at least one proxy",
    );
    expect(
        "negative proxy",
        HelloSpec::worker(&[904, -5]),
        INVALID,
        "proxy id -5 is negative",
    );
    // A HELLO cut short: its declared length is a lie and the payload ends early.
    let mut short = caller_hello();
    short.truncate(8 + 6);
    short[..4].copy_from_slice(&6u32.to_be_bytes());
    refused_first(
        hub,
        "short hello",
        &short,
        PROTOCOL,
        "malformed Hello frame",
    );
    protocol_errors += 1;

    // The limits themselves are admitted: a 255-byte name, 4096 proxy ids.
    {
        let mut r = Raw::connect(hub, "name 255");
        r.send(
            &HelloSpec {
                name: vec![b'n'; 255],
                ..c()
            }
            .bytes(),
        );
        r.expect_welcome();
    }
    {
        let mut r = Raw::connect(hub, "4096 proxies");
        let ids: Vec<i32> = (10_000..14_096).collect();
        r.send(&HelloSpec::worker(&ids).bytes());
        let w = r.expect_welcome();
        assert_eq!(w.quota, 0, "a worker has no quota");
    }
    bed.check_survived(protocol_errors);
}

#[test]
fn a_rogue_worker_answering_tags_it_was_never_given_is_refused() {
    let mut bed = Bed::start();
    const ROGUE: i32 = 905;
    // (a) A RESULT before any delivery.
    refused_after(
        &bed.hub,
        "result-out-of-the-blue",
        &worker_hello(&[ROGUE]),
        &enc(|b| wire::encode_result(b, 1 << 32, 0, 0, b"made up")),
        PROTOCOL,
        "RESULT for tag 0x100000000, which was not delivered to this worker",
    );
    // (b) A worker that answers its delivery correctly: the raw worker is a real worker.
    let mut w = Raw::connect(&bed.hub, "honest-worker");
    w.send(&worker_hello(&[ROGUE]));
    w.expect_welcome();
    bed.hub.wait_workers(ROGUE, 1);
    bed.caller.clear_body();
    bed.caller.write(b"for the rogue").unwrap();
    let id = bed.caller.send(ROGUE, false, false).unwrap();
    let tag = w.expect_deliver(id, ROGUE, 1, b"for the rogue");
    w.send(&enc(|b| wire::encode_result(b, tag, 0, 5, b"answered")));
    let r = bed.caller.read(id, Some(HANG_GUARD)).expect("honest reply");
    assert_eq!((r.body.as_slice(), r.rcode), (&b"answered"[..], 5));
    bed.echoes += 1;
    // (c) The same tag again: no longer in flight.
    w.send(&enc(|b| wire::encode_result(b, tag, 0, 0, b"twice")));
    w.expect_refuse(PROTOCOL, "which was not delivered to this worker");
    // (d) A worker answering a stale generation of its own delivery's slot.
    let mut w = Raw::connect(&bed.hub, "stale-generation");
    w.send(&worker_hello(&[ROGUE]));
    w.expect_welcome();
    bed.hub.wait_workers(ROGUE, 1);
    bed.caller.clear_body();
    bed.caller.write(b"second").unwrap();
    let id = bed.caller.send(ROGUE, false, false).unwrap();
    let tag = w.expect_deliver(id, ROGUE, 1, b"second");
    let forged = tag ^ (1 << 32);
    w.send(&enc(|b| wire::encode_result(b, forged, 0, 0, b"forged")));
    w.expect_refuse(PROTOCOL, &format!("RESULT for tag {forged:#x}"));
    // The forged answer did not reach the caller: the request went back to its queue and the
    // next worker gets it again (attempt 2) and answers for real.
    let mut w = Raw::connect(&bed.hub, "rescuer");
    w.send(&worker_hello(&[ROGUE]));
    w.expect_welcome();
    let tag2 = w.expect_deliver(id, ROGUE, 2, b"second");
    // (e) Another worker answering the rescuer's tag.
    let mut thief = Raw::connect(&bed.hub, "thief");
    thief.send(&worker_hello(&[ROGUE]));
    thief.expect_welcome();
    thief.send(&enc(|b| wire::encode_result(b, tag2, 0, 0, b"stolen")));
    thief.expect_refuse(
        PROTOCOL,
        &format!("RESULT for tag {tag2:#x}, which was not delivered"),
    );
    w.send(&enc(|b| wire::encode_result(b, tag2, 0, 0, b"rescued")));
    let r = bed
        .caller
        .read(id, Some(HANG_GUARD))
        .expect("rescued reply");
    assert_eq!(r.body, b"rescued");
    bed.echoes += 1;
    drop(w);
    bed.check_survived(4);
}

#[test]
fn frames_of_the_wrong_role_are_refused() {
    let mut bed = Bed::start();
    let hub = &bed.hub;
    let welcome = Welcome {
        version: 1,
        max_frame: 1,
        quota: 1,
        keepalive_ms: 1,
        session: 1,
        hub_id: 1,
    };
    let mut n = 0;
    let deliver = enc(|b| {
        let d = wire::DeliverHead {
            tag: 1,
            session: 2,
            request: 3,
            proxy: ECHO,
            attempt: 1,
            remaining_ms: None,
        };
        wire::encode_deliver(b, &d, b"x")
    });
    let caller_may_not: Vec<(&str, Vec<u8>)> = vec![
        (
            "RESULT",
            enc(|b| wire::encode_result(b, 1 << 32, 0, 0, b"x")),
        ),
        ("DELIVER", deliver.clone()),
        ("FORWARD", enc(|b| wire::encode_forward(b, 1, ECHO, b"x"))),
        ("QUEUED", enc(|b| wire::encode_queued(b, 1, 1))),
        ("REPLY", enc(|b| wire::encode_reply(b, 1, 0, 0, b"x"))),
        ("ACK", enc(|b| wire::encode_ack(b, 1))),
        ("WELCOME", enc(|b| wire::encode_welcome(b, &welcome))),
        ("REFUSE", enc(|b| wire::encode_refuse(b, -12, "you"))),
        ("QUIT", enc(|b| wire::encode_quit(b, "bye"))),
        ("STATS", enc(|b| wire::encode_stats(b, b"{}"))),
        ("STATS_REQUEST", enc(wire::encode_stats_request)),
        ("HELLO", caller_hello()),
    ];
    for (name, bytes) in &caller_may_not {
        let needle = format!("{name} is not a frame this peer may send");
        refused_after(hub, name, &caller_hello(), bytes, PROTOCOL, &needle);
        n += 1;
    }
    let worker_may_not: Vec<(&str, Vec<u8>)> = vec![
        ("REQUEST", request(1, ECHO, b"x")),
        ("CANCEL", enc(|b| wire::encode_cancel(b, 1))),
        ("REPLY", enc(|b| wire::encode_reply(b, 1, 0, 0, b"x"))),
        ("DELIVER", deliver.clone()),
        ("QUEUED", enc(|b| wire::encode_queued(b, 1, 1))),
        ("STATS_REQUEST", enc(wire::encode_stats_request)),
        ("HELLO", worker_hello(&[906])),
    ];
    for (name, bytes) in &worker_may_not {
        let needle = format!("{name} is not a frame this peer may send");
        refused_after(hub, name, &worker_hello(&[906]), bytes, PROTOCOL, &needle);
        n += 1;
    }
    let monitor_may_not: Vec<(&str, Vec<u8>)> = vec![
        ("REQUEST", request(1, ECHO, b"x")),
        (
            "RESULT",
            enc(|b| wire::encode_result(b, 1 << 32, 0, 0, b"x")),
        ),
    ];
    for (name, bytes) in &monitor_may_not {
        let needle = format!("{name} is not a frame this peer may send");
        refused_after(hub, name, &monitor_hello(), bytes, PROTOCOL, &needle);
        n += 1;
    }
    bed.check_survived(n);
}

/// Request ids: 0 is reserved and refused; an id not above the highest one seen is a resend (as
/// after a reconnect) that is answered from what the hub holds and never run twice.
#[test]
fn request_ids_zero_is_refused_and_repeated_ids_are_never_run_twice() {
    let mut bed = Bed::start();
    let hub = &bed.hub;
    refused_after(
        hub,
        "id-0",
        &caller_hello(),
        &request(0, ECHO, b"zero"),
        PROTOCOL,
        "request id 0 is reserved",
    );
    let session = fresh_session();
    {
        let mut r = Raw::connect(hub, "id-repeat");
        r.send(&caller_hello_for(session));
        r.expect_welcome();
        r.send_request(5, ECHO, b"five");
        r.expect_reply(5, b"five");
        r.sync(1);
        // Ids may skip.
        r.send_request(9, ECHO, b"nine");
        r.expect_reply(9, b"nine");
        r.sync(2);
        // On one connection ids must rise: the same id again is a protocol error (resends
        // only come after a reconnect, on a new connection).
        r.send(&request(5, ECHO, b"five again"));
        r.expect_refuse(PROTOCOL, "not above the previous one");
    }
    {
        // The same session on a new connection: the unconfirmed answers (5, 9) come again at
        // once, in any order.
        let mut r = Raw::connect(hub, "id-repeat-again");
        r.send(&caller_hello_for(session));
        r.expect_welcome();
        let mut got = vec![r.next_reply_id(), r.next_reply_id()];
        got.sort_unstable();
        assert_eq!(got, vec![5, 9]);
        // Once the caller confirms 5 (DONE) it is forgotten: its resend gets nothing (nothing
        // comes before the PONG); the resend of 9 gets the held answer; neither runs again.
        r.send(&enc(|b| wire::encode_done(b, &[5])));
        r.send(&request(5, ECHO, b"five yet again"));
        r.sent_upto = 5;
        r.sync(3);
        r.send(&request(9, ECHO, b"nine again"));
        r.sent_upto = 9;
        r.expect_reply(9, b"nine");
        r.sync(4);
        r.send_request(10, ECHO, b"ten");
        r.expect_reply(10, b"ten");
        r.send_request(11, ECHO, b"eleven");
        r.expect_reply(11, b"eleven");
    }
    // Runs: the good caller's echoes and 5, 9, 10, 11; never a resend.
    let v = bed.hub.stats();
    let runs = v["proxies"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["id"] == ECHO)
        .and_then(|p| p["requests"].as_u64());
    assert_eq!(
        runs,
        Some(bed.echoes + 4),
        "requests run for proxy {ECHO}: {v}"
    );
    bed.check_survived(2);
}

/// A request id below the highest one seen that the hub never had is not a resend: the caller
/// would wait for its answer forever. It should be refused or answered with an error.
#[test]
fn a_lower_request_id_the_hub_never_saw_is_not_silently_swallowed() {
    let mut bed = Bed::start();
    let mut r = Raw::connect(&bed.hub, "id-backwards");
    r.send(&caller_hello());
    r.expect_welcome();
    let mut b = request(10, ECHO, b"ten");
    b.extend_from_slice(&request(7, ECHO, b"seven"));
    r.send(&b);
    r.sent_upto = 10;
    r.send(&enc(|b| wire::encode_ping(b, 1)));
    let mut told = false;
    loop {
        match r.next_frame() {
            In::Reply { id: 10, .. } => {}
            In::Reply { id: 7, status, .. } if status != 0 => told = true,
            In::Refuse { .. } => {
                told = true;
                break;
            }
            In::Pong(1) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        told,
        "request 7 was acknowledged and will never be answered"
    );
    drop(r);
    // Ids must rise on a connection: going back is a protocol error.
    bed.check_survived(1);
}

#[test]
fn a_slowloris_sending_one_byte_at_a_time_still_works() {
    let mut bed = Bed::start();
    let mut r = Raw::connect(&bed.hub, "slowloris");
    let hello = caller_hello();
    let body: Vec<u8> = (0..64u8).collect();
    let req = request(1, ECHO, &body);
    let drip = |r: &mut Raw, bytes: &[u8]| {
        for b in bytes {
            r.send(std::slice::from_ref(b));
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    drip(&mut r, &hello[..hello.len() / 2]);
    // Half a HELLO on one connection does not hold up anyone else.
    bed.echo(b"while the slowloris drips");
    drip(&mut r, &hello[hello.len() / 2..]);
    r.expect_welcome();
    drip(&mut r, &req[..req.len() - 1]);
    bed.echo(b"still while it drips");
    drip(&mut r, &req[req.len() - 1..]);
    r.sent_upto = 1;
    r.expect_reply(1, &body);
    // A PING dripped too is still answered, and brings the ACK.
    let ping = enc(|b| wire::encode_ping(b, 77));
    drip(&mut r, &ping);
    r.expect_pong_and_acks(77);
    drop(r);
    bed.check_survived(0);
}

#[test]
fn a_connection_that_never_says_hello_is_dropped() {
    // A short greeting timeout (the default is 10 s); the guard allows it many times over.
    let mut bed = Bed::start_with(&["--greeting-timeout-ms", "300"]);
    let guard = Duration::from_secs(10);
    let mut silent = Raw::connect_guarded(&bed.hub, "silent", guard);
    let mut partial = Raw::connect_guarded(&bed.hub, "partial-hello", guard);
    partial.send(&caller_hello()[..12]);
    let mut refusals = 0;
    for r in [&mut silent, &mut partial] {
        match r.next_frame() {
            In::Closed => {}
            In::Refuse { code, message } => {
                assert!(message.contains("HELLO"), "{message:?}");
                if code == PROTOCOL {
                    refusals += 1;
                }
                r.expect_closed();
            }
            other => panic!("[{}] expected the hub to drop it, got {other:?}", r.what),
        }
    }
    bed.check_survived(refusals);
}

/// The hub should say why it drops a peer that never greeted, like for every other refusal.
#[test]
fn a_connection_that_never_says_hello_gets_a_refuse() {
    let mut bed = Bed::start_with(&["--greeting-timeout-ms", "300"]);
    let mut silent = Raw::connect_guarded(&bed.hub, "silent", Duration::from_secs(10));
    silent.expect_refuse(PROTOCOL, "HELLO");
    bed.check_survived(1);
}

#[test]
fn requests_for_bad_proxies_get_error_replies_and_the_connection_stays() {
    let mut bed = Bed::start();
    let mut r = Raw::connect(&bed.hub, "bad-proxies");
    r.send(&caller_hello());
    r.expect_welcome();
    r.send_request(1, -1, b"negative");
    let m = r.expect_error_reply(1, INVALID);
    assert!(m.contains("must not be negative"), "{m:?}");
    r.send_request(2, 4242, b"nobody");
    let m = r.expect_error_reply(2, -3);
    assert!(m.contains("no worker serves proxy 4242"), "{m:?}");
    // One-way requests that fail are dropped without a word (nothing before the PONG).
    r.send(&enc(|b| {
        wire::encode_request(b, 3, -1, wire::REQ_ONEWAY, 0, b"x");
        wire::encode_request(b, 4, 4242, wire::REQ_ONEWAY, 0, b"x");
    }));
    r.sent_upto = 4;
    r.sync(1);
    r.send_request(5, ECHO, b"still fine");
    r.expect_reply(5, b"still fine");
    drop(r);
    bed.check_survived(0);
}

/// The hub keeps reading from a caller whose replies it cannot write, so one caller that sends
/// and never reads makes the hub buffer every reply in memory.
#[test]
fn a_caller_that_never_reads_cannot_grow_the_hub_without_bound() {
    let bed = Bed::start();
    let pid = bed.pid();
    let rss_anon_kib = move || -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("RssAnon:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("RssAnon in /proc/PID/status")
    };
    let before = rss_anon_kib();
    // The hub holds at most its output limit for the caller (8 MiB) plus the replies of what
    // was already with the worker when it stopped dispatching for that caller; far less than
    // the N MiB of replies the caller is owed.
    const N: u64 = 128;
    let mut r = Raw::connect(&bed.hub, "never-reads");
    r.send(&caller_hello());
    r.expect_welcome();
    let mut writer = r.s.try_clone().unwrap();
    writer.set_write_timeout(None).unwrap();
    let body = vec![0x42u8; MAX_FRAME as usize - 20];
    let sender = std::thread::spawn(move || {
        for id in 1..=N {
            if writer.write_all(&request(id, ECHO, &body)).is_err() {
                return;
            }
        }
    });
    // Wait (bounded) until the hub has run them all, or has stopped taking them.
    let want = bed.echoes + N;
    let until = Instant::now() + Duration::from_secs(30);
    let mut last = ((0u64, 0u64, 0u64), Instant::now());
    while Instant::now() < until {
        let v = bed.hub.stats();
        let runs = v["proxies"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["id"] == ECHO)
            .and_then(|p| p["requests"].as_u64())
            .unwrap_or(0);
        let inflight = stat_u64(&v, "hub", "inflight");
        if runs >= want && inflight == 0 {
            break;
        }
        // Or the hub stopped taking them (it does not read a caller that does not read).
        let state = (runs, inflight, stat_u64(&v, "hub", "queued"));
        if last.0 == state {
            if last.1.elapsed() > Duration::from_millis(1500) {
                break;
            }
        } else {
            last = (state, Instant::now());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let grown_mib = rss_anon_kib().saturating_sub(before) / 1024;
    // The hub may have closed the connection meanwhile.
    let _ = r.s.shutdown(Shutdown::Both);
    sender.join().unwrap();
    assert!(
        grown_mib < 64,
        "the hub grew by {grown_mib} MiB of anonymous memory for {N} MiB of replies nobody reads"
    );
}

/// Session ids are what a caller reconnects with: a HELLO naming a session takes it over and
/// receives its unread answers. The statistics any monitor can read must not hand them out.
#[test]
fn another_callers_session_cannot_be_taken_over_with_an_id_from_the_statistics() {
    let mut bed = Bed::start();
    // An answer the good caller has not confirmed yet is held for it.
    bed.caller.clear_body();
    bed.caller.write(b"private").unwrap();
    let id = bed.caller.send(ECHO, false, false).unwrap();
    let v = bed.settle("the private answer is held", |v| {
        stat_u64(v, "hub", "inflight") == 0 && stat_u64(v, "hub", "queued") == 0
    });
    let stolen = v["callers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == "good-caller")
        .and_then(|c| c["session"].as_str())
        .and_then(|s| u64::from_str_radix(s, 16).ok())
        .filter(|s| *s == bed.caller.session_id());
    let Some(stolen) = stolen else {
        return; // The statistics do not give the session away.
    };
    let mut r = Raw::connect(&bed.hub, "thief");
    r.send(&caller_hello_for(stolen));
    r.expect_welcome();
    r.send(&enc(|b| wire::encode_ping(b, 1)));
    match r.next_frame() {
        In::Pong(1) => {}
        In::Reply { id: got, body, .. } => {
            panic!("a stranger got request {got}'s answer {body:?} (sent as {id})")
        }
        other => panic!("unexpected {other:?}"),
    }
}
