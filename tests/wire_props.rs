//! Property tests of the frame codec (`dco::wire::decode` and the `encode_*` functions).
//!
//! (a) `decode` never panics, whatever the bytes and the limit, and agrees with a model of the
//!     header rules; a frame it returns used at most the input, exactly `8 + declared length`
//!     bytes, and re-encodes to the same bytes;
//! (b) every `encode_*` then `decode` gives back the same fields and uses exactly the encoded
//!     length, and the limit is inclusive;
//! (c) every strict prefix of an encoded frame is `Ok(None)` (or, when the limit is below the
//!     payload, `TooLarge` as soon as the header is in);
//! (d) frames written back to back decode one after another, whatever follows them.

use dco::wire::{self, Frame, FrameType, Hello, Role, Welcome, WireError, MAGIC, VERSION};
use proptest::prelude::*;

const HEADER: usize = 8;
const KNOWN_TYPES: [u8; 19] = [
    0x01, 0x02, 0x03, 0x04, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x20, 0x21, 0x22, 0x23, 0x30, 0x31,
    0x40, 0x41, 0x42,
];

/// One frame's fields, owned, for any frame type.
#[derive(Clone, Debug)]
enum Spec {
    Hello {
        role: Role,
        session: u64,
        capacity: u32,
        name: Vec<u8>,
        secret: Vec<u8>,
        proxies: Vec<i32>,
    },
    Welcome(Welcome),
    Refuse {
        code: i32,
        message: String,
    },
    Quit {
        message: String,
    },
    Request {
        id: u64,
        proxy: i32,
        flags: u32,
        timeout_ms: u32,
        body: Vec<u8>,
    },
    Ack {
        upto: u64,
    },
    Reply {
        id: u64,
        status: i32,
        rcode: i32,
        body: Vec<u8>,
    },
    Cancel {
        id: u64,
    },
    Done {
        ids: Vec<u64>,
    },
    Deliver {
        tag: u64,
        session: u64,
        request: u64,
        proxy: i32,
        attempt: u32,
        remaining: Option<u32>,
        body: Vec<u8>,
    },
    Queued {
        id: u64,
        mode: u32,
    },
    Forward {
        tag: u64,
        proxy: i32,
        body: Vec<u8>,
    },
    Result {
        tag: u64,
        status: i32,
        rcode: i32,
        body: Vec<u8>,
    },
    Ping {
        nonce: u64,
    },
    Pong {
        nonce: u64,
    },
    StatsRequest,
    Stats {
        json: Vec<u8>,
    },
    Reroute {
        from: i32,
        to: i32,
    },
}

impl Spec {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Spec::Hello {
                role,
                session,
                capacity,
                name,
                secret,
                proxies,
            } => wire::encode_hello(out, *role, *session, *capacity, name, secret, proxies),
            Spec::Welcome(w) => wire::encode_welcome(out, w),
            Spec::Refuse { code, message } => wire::encode_refuse(out, *code, message),
            Spec::Quit { message } => wire::encode_quit(out, message),
            Spec::Request {
                id,
                proxy,
                flags,
                timeout_ms,
                body,
            } => wire::encode_request(out, *id, *proxy, *flags, *timeout_ms, body),
            Spec::Ack { upto } => wire::encode_ack(out, *upto),
            Spec::Reply {
                id,
                status,
                rcode,
                body,
            } => wire::encode_reply(out, *id, *status, *rcode, body),
            Spec::Cancel { id } => wire::encode_cancel(out, *id),
            Spec::Done { ids } => wire::encode_done(out, ids),
            Spec::Deliver {
                tag,
                session,
                request,
                proxy,
                attempt,
                remaining,
                body,
            } => wire::encode_deliver(
                out,
                &wire::DeliverHead {
                    tag: *tag,
                    session: *session,
                    request: *request,
                    proxy: *proxy,
                    attempt: *attempt,
                    remaining_ms: *remaining,
                },
                body,
            ),
            Spec::Queued { id, mode } => wire::encode_queued(out, *id, *mode),
            Spec::Forward { tag, proxy, body } => wire::encode_forward(out, *tag, *proxy, body),
            Spec::Result {
                tag,
                status,
                rcode,
                body,
            } => wire::encode_result(out, *tag, *status, *rcode, body),
            Spec::Ping { nonce } => wire::encode_ping(out, *nonce),
            Spec::Pong { nonce } => wire::encode_pong(out, *nonce),
            Spec::StatsRequest => wire::encode_stats_request(out),
            Spec::Stats { json } => wire::encode_stats(out, json),
            Spec::Reroute { from, to } => wire::encode_reroute(out, *from, *to),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut b = Vec::new();
        self.encode(&mut b);
        b
    }

    /// Asserts that `f` is this frame (HELLO: as `encode_hello` cuts it to the limits).
    fn check(&self, f: &Frame<'_>) {
        let done_bytes;
        let want = match self {
            Spec::Hello {
                role,
                session,
                capacity,
                name,
                secret,
                proxies,
            } => Frame::Hello(Hello {
                version: VERSION,
                role: *role,
                session: *session,
                capacity: *capacity,
                name: &name[..name.len().min(wire::MAX_NAME)],
                secret: &secret[..secret.len().min(u16::MAX as usize)],
                proxies: proxies[..proxies.len().min(wire::MAX_PROXIES)].to_vec(),
            }),
            Spec::Welcome(w) => Frame::Welcome(*w),
            Spec::Refuse { code, message } => Frame::Refuse {
                code: *code,
                message: message.as_bytes(),
            },
            Spec::Quit { message } => Frame::Quit {
                message: message.as_bytes(),
            },
            Spec::Request {
                id,
                proxy,
                flags,
                timeout_ms,
                body,
            } => Frame::Request {
                id: *id,
                proxy: *proxy,
                flags: *flags,
                timeout_ms: *timeout_ms,
                body,
            },
            Spec::Ack { upto } => Frame::Ack { upto: *upto },
            Spec::Reply {
                id,
                status,
                rcode,
                body,
            } => Frame::Reply {
                id: *id,
                status: *status,
                rcode: *rcode,
                body,
            },
            Spec::Cancel { id } => Frame::Cancel { id: *id },
            Spec::Done { ids } => {
                done_bytes = ids
                    .iter()
                    .flat_map(|i| i.to_be_bytes())
                    .collect::<Vec<u8>>();
                Frame::Done { ids: &done_bytes }
            }
            Spec::Deliver {
                tag,
                session,
                request,
                proxy,
                attempt,
                remaining,
                body,
            } => Frame::Deliver {
                tag: *tag,
                session: *session,
                request: *request,
                proxy: *proxy,
                attempt: *attempt,
                remaining_ms: remaining.unwrap_or(0),
                body,
            },
            Spec::Queued { id, mode } => Frame::Queued {
                id: *id,
                mode: *mode,
            },
            Spec::Forward { tag, proxy, body } => Frame::Forward {
                tag: *tag,
                proxy: *proxy,
                body,
            },
            Spec::Result {
                tag,
                status,
                rcode,
                body,
            } => Frame::Result {
                tag: *tag,
                status: *status,
                rcode: *rcode,
                body,
            },
            Spec::Ping { nonce } => Frame::Ping { nonce: *nonce },
            Spec::Pong { nonce } => Frame::Pong { nonce: *nonce },
            Spec::StatsRequest => Frame::StatsRequest,
            Spec::Stats { json } => Frame::Stats { json },
            Spec::Reroute { from, to } => Frame::Reroute {
                from: *from,
                to: *to,
            },
        };
        assert_eq!(f, &want);
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies.

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..=max)
}

/// Names and proxy lists around the limits `encode_hello` cuts to, now and then.
fn name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => bytes(40),
        1 => prop::collection::vec(any::<u8>(), 250..=300),
    ]
}

fn proxies() -> impl Strategy<Value = Vec<i32>> {
    prop_oneof![
        8 => prop::collection::vec(any::<i32>(), 0..=16),
        1 => prop::collection::vec(any::<i32>(), 4090..=4100),
    ]
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::Caller), Just(Role::Worker), Just(Role::Monitor)]
}

fn welcome() -> impl Strategy<Value = Welcome> {
    (
        any::<u16>(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(
            |(version, max_frame, quota, keepalive_ms, session, hub_id)| Welcome {
                version,
                max_frame,
                quota,
                keepalive_ms,
                session,
                hub_id,
            },
        )
}

fn spec() -> impl Strategy<Value = Spec> {
    prop_oneof![
        (
            role(),
            any::<u64>(),
            any::<u32>(),
            name(),
            bytes(40),
            proxies()
        )
            .prop_map(
                |(role, session, capacity, name, secret, proxies)| Spec::Hello {
                    role,
                    session,
                    capacity,
                    name,
                    secret,
                    proxies,
                }
            ),
        welcome().prop_map(Spec::Welcome),
        (any::<i32>(), ".{0,40}").prop_map(|(code, message)| Spec::Refuse { code, message }),
        ".{0,40}".prop_map(|message| Spec::Quit { message }),
        (
            any::<u64>(),
            any::<i32>(),
            any::<u32>(),
            any::<u32>(),
            bytes(200)
        )
            .prop_map(|(id, proxy, flags, timeout_ms, body)| Spec::Request {
                id,
                proxy,
                flags,
                timeout_ms,
                body,
            }),
        any::<u64>().prop_map(|upto| Spec::Ack { upto }),
        (any::<u64>(), any::<i32>(), any::<i32>(), bytes(200)).prop_map(
            |(id, status, rcode, body)| Spec::Reply {
                id,
                status,
                rcode,
                body,
            }
        ),
        any::<u64>().prop_map(|id| Spec::Cancel { id }),
        prop::collection::vec(any::<u64>(), 0..20).prop_map(|ids| Spec::Done { ids }),
        (
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any::<i32>(),
            any::<u32>(),
            prop::option::of(1..=u32::MAX),
            bytes(200)
        )
            .prop_map(|(tag, session, request, proxy, attempt, remaining, body)| {
                Spec::Deliver {
                    tag,
                    session,
                    request,
                    proxy,
                    attempt,
                    remaining,
                    body,
                }
            }),
        (any::<u64>(), any::<u32>()).prop_map(|(id, mode)| Spec::Queued { id, mode }),
        (any::<u64>(), any::<i32>(), bytes(200)).prop_map(|(tag, proxy, body)| Spec::Forward {
            tag,
            proxy,
            body
        }),
        (any::<u64>(), any::<i32>(), any::<i32>(), bytes(200)).prop_map(
            |(tag, status, rcode, body)| Spec::Result {
                tag,
                status,
                rcode,
                body,
            }
        ),
        any::<u64>().prop_map(|nonce| Spec::Ping { nonce }),
        any::<u64>().prop_map(|nonce| Spec::Pong { nonce }),
        Just(Spec::StatsRequest),
        bytes(200).prop_map(|json| Spec::Stats { json }),
        (any::<i32>(), any::<i32>()).prop_map(|(from, to)| Spec::Reroute { from, to }),
    ]
}

/// A limit: anything, or small, or around typical values.
fn max_frame() -> impl Strategy<Value = u32> {
    prop_oneof![
        any::<u32>(),
        0u32..64,
        0u32..4096,
        Just(u32::MAX),
        Just(wire::DEFAULT_MAX_FRAME),
    ]
}

/// Bytes likely to reach deep into `decode`: pure noise, a known type with a correct length
/// and a noisy payload, or a valid frame with a few bytes changed, cut or extended.
fn hostile_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        bytes(64),
        (
            prop::sample::select(KNOWN_TYPES.to_vec()),
            bytes(120),
            bytes(8)
        )
            .prop_map(|(kind, payload, tail)| {
                let mut b = (payload.len() as u32).to_be_bytes().to_vec();
                b.extend_from_slice(&[kind, 0, 0, 0]);
                b.extend_from_slice(&payload);
                b.extend_from_slice(&tail);
                b
            }),
        // A HELLO payload that starts right, so the fields after the magic get exercised.
        (bytes(60), bytes(4)).prop_map(|(rest, tail)| {
            let mut p = MAGIC.to_vec();
            p.extend_from_slice(&rest);
            let mut b = (p.len() as u32).to_be_bytes().to_vec();
            b.extend_from_slice(&[FrameType::Hello as u8, 0, 0, 0]);
            b.extend_from_slice(&p);
            b.extend_from_slice(&tail);
            b
        }),
        (
            spec(),
            prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
            any::<prop::sample::Index>(),
            bytes(8),
        )
            .prop_map(|(s, flips, cut, tail)| {
                let mut b = s.bytes();
                for (at, v) in flips {
                    let i = at.index(b.len());
                    b[i] = v;
                }
                let keep = cut.index(b.len() + 1);
                b.truncate(keep.max(b.len().saturating_sub(4)));
                b.extend_from_slice(&tail);
                b
            }),
    ]
}

// ---------------------------------------------------------------------------------------------
// Helpers.

fn declared_len(buf: &[u8]) -> usize {
    u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize
}

/// What the header rules say `decode(buf, max)` must do before looking at the payload:
/// `Some(result)` when the header alone decides, `None` when a whole frame is there.
fn header_verdict(
    buf: &[u8],
    max: u32,
) -> Option<Result<Option<(Frame<'static>, usize)>, WireError>> {
    if buf.len() < HEADER {
        return Some(Ok(None));
    }
    if !KNOWN_TYPES.contains(&buf[4]) {
        return Some(Err(WireError::UnknownType(buf[4])));
    }
    if buf[5..8] != [0, 0, 0] {
        return Some(Err(WireError::BadHeader));
    }
    let len = declared_len(buf) as u32;
    // Over the limit, or (32-bit targets) too large to address at all.
    if len > max || HEADER.checked_add(len as usize).is_none() {
        return Some(Err(WireError::TooLarge { len, max }));
    }
    if buf.len() < HEADER + len as usize {
        return Some(Ok(None));
    }
    None
}

/// Encodes a decoded frame again with the crate's encoders.
fn reencode(f: &Frame<'_>) -> Vec<u8> {
    let mut b = Vec::new();
    match f {
        Frame::Hello(h) => wire::encode_hello(
            &mut b, h.role, h.session, h.capacity, h.name, h.secret, &h.proxies,
        ),
        Frame::Welcome(w) => wire::encode_welcome(&mut b, w),
        Frame::Refuse { code, message } => {
            // encode_refuse takes text; build the same layout for arbitrary bytes.
            b.extend_from_slice(&((4 + message.len()) as u32).to_be_bytes());
            b.extend_from_slice(&[FrameType::Refuse as u8, 0, 0, 0]);
            b.extend_from_slice(&code.to_be_bytes());
            b.extend_from_slice(message);
        }
        Frame::Quit { message } => {
            b.extend_from_slice(&(message.len() as u32).to_be_bytes());
            b.extend_from_slice(&[FrameType::Quit as u8, 0, 0, 0]);
            b.extend_from_slice(message);
        }
        Frame::Request {
            id,
            proxy,
            flags,
            timeout_ms,
            body,
        } => wire::encode_request(&mut b, *id, *proxy, *flags, *timeout_ms, body),
        Frame::Ack { upto } => wire::encode_ack(&mut b, *upto),
        Frame::Reply {
            id,
            status,
            rcode,
            body,
        } => wire::encode_reply(&mut b, *id, *status, *rcode, body),
        Frame::Cancel { id } => wire::encode_cancel(&mut b, *id),
        Frame::Done { ids } => {
            let ids: Vec<u64> = ids
                .chunks(8)
                .map(|c| {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(c);
                    u64::from_be_bytes(a)
                })
                .collect();
            wire::encode_done(&mut b, &ids)
        }
        Frame::Deliver {
            tag,
            session,
            request,
            proxy,
            attempt,
            remaining_ms,
            body,
        } => wire::encode_deliver(
            &mut b,
            &wire::DeliverHead {
                tag: *tag,
                session: *session,
                request: *request,
                proxy: *proxy,
                attempt: *attempt,
                remaining_ms: (*remaining_ms != 0).then_some(*remaining_ms),
            },
            body,
        ),
        Frame::Queued { id, mode } => wire::encode_queued(&mut b, *id, *mode),
        Frame::Forward { tag, proxy, body } => wire::encode_forward(&mut b, *tag, *proxy, body),
        Frame::Result {
            tag,
            status,
            rcode,
            body,
        } => wire::encode_result(&mut b, *tag, *status, *rcode, body),
        Frame::Ping { nonce } => wire::encode_ping(&mut b, *nonce),
        Frame::Pong { nonce } => wire::encode_pong(&mut b, *nonce),
        Frame::StatsRequest => wire::encode_stats_request(&mut b),
        Frame::Stats { json } => wire::encode_stats(&mut b, json),
        Frame::Reroute { from, to } => wire::encode_reroute(&mut b, *from, *to),
    }
    b
}

/// `frame_bytes` with the fields `decode` ignores and `encode_*` always writes the same way set
/// as the encoders write them (HELLO version and flags, WELCOME's reserved field).
fn canonical(frame_bytes: &[u8], f: &Frame<'_>) -> Vec<u8> {
    let mut b = frame_bytes.to_vec();
    match f {
        Frame::Hello(_) => {
            b[12..14].copy_from_slice(&VERSION.to_be_bytes());
            b[15] = 0;
        }
        Frame::Welcome(_) => {
            b[10] = 0;
            b[11] = 0;
        }
        _ => {}
    }
    b
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Keep the suite quiet and independent of the working directory.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Properties.

proptest! {
    #![proptest_config(config(4096))]

    /// (a) Never panics; follows the header rules; a frame uses exactly header + declared
    /// length bytes, no more than it was given, depends on nothing after them, and re-encodes
    /// to the same bytes.
    #[test]
    fn decode_is_total_and_follows_the_header_rules(
        buf in hostile_bytes(),
        max in max_frame(),
    ) {
        let got = wire::decode(&buf, max);
        if let Some(verdict) = header_verdict(&buf, max) {
            prop_assert_eq!(&got, &verdict, "header rules");
        }
        match &got {
            Ok(Some((f, n))) => {
                let n = *n;
                prop_assert!(n <= buf.len());
                prop_assert_eq!(n, HEADER + declared_len(&buf));
                prop_assert_eq!(f.clone(), wire::decode(&buf[..n], max).unwrap().unwrap().0);
                // HELLO with over-long fields cannot come back (encode_hello would cut them);
                // decode already refuses those, so every decoded frame re-encodes.
                prop_assert_eq!(reencode(f), canonical(&buf[..n], f), "re-encoding {:?}", f);
            }
            Ok(None) => {
                let need = if buf.len() < HEADER { HEADER } else { HEADER + declared_len(&buf) };
                prop_assert!(buf.len() < need);
            }
            Err(WireError::Malformed { .. }) | Err(WireError::BadMagic) => {
                // Payload errors only once the whole frame is in.
                prop_assert!(buf.len() >= HEADER + declared_len(&buf));
                prop_assert_eq!(
                    wire::decode(&buf[..HEADER + declared_len(&buf)], max),
                    got.clone()
                );
            }
            Err(_) => {}
        }
    }

    /// (a) Pure noise, with any limit: no panic, and a frame never claims more than the input.
    #[test]
    fn decode_never_panics_on_noise(buf in bytes(300), max in any::<u32>()) {
        if let Ok(Some((_, n))) = wire::decode(&buf, max) {
            prop_assert!(n <= buf.len());
        }
    }
}

proptest! {
    #![proptest_config(config(2048))]

    /// (b) Round trip: same fields, exactly the encoded length; the limit is inclusive.
    #[test]
    fn every_frame_round_trips(s in spec()) {
        let b = s.bytes();
        let payload = (b.len() - HEADER) as u32;
        prop_assert_eq!(declared_len(&b) as u32, payload);
        for max in [u32::MAX, payload] {
            let (f, n) = wire::decode(&b, max).unwrap().expect("a whole frame");
            prop_assert_eq!(n, b.len());
            s.check(&f);
        }
        if payload > 0 {
            prop_assert_eq!(
                wire::decode(&b, payload - 1),
                Err(WireError::TooLarge { len: payload, max: payload - 1 })
            );
        }
    }

    /// (c) Every strict prefix waits for more, unless the header is in and already says no.
    #[test]
    fn strict_prefixes_wait_for_more(s in spec(), small in any::<bool>()) {
        let b = s.bytes();
        let payload = (b.len() - HEADER) as u32;
        let max = if small && payload > 0 { payload - 1 } else { payload };
        for k in 0..b.len() {
            let got = wire::decode(&b[..k], max);
            if max < payload && k >= HEADER {
                prop_assert_eq!(got, Err(WireError::TooLarge { len: payload, max }), "prefix {}", k);
            } else {
                prop_assert_eq!(got, Ok(None), "prefix {} of {}", k, b.len());
            }
        }
    }

    /// (d) Frames back to back decode one after another; what follows the last whole frame
    /// (a cut-off frame) waits for more.
    #[test]
    fn concatenated_frames_decode_in_turn(
        specs in prop::collection::vec(spec(), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut stream = Vec::new();
        let mut ends = Vec::new();
        for s in &specs {
            s.encode(&mut stream);
            ends.push(stream.len());
        }
        // A partial copy of the first frame after the last one.
        let first = specs[0].bytes();
        let partial = &first[..cut.index(first.len())];
        stream.extend_from_slice(partial);
        let mut pos = 0;
        for (s, end) in specs.iter().zip(&ends) {
            let (f, n) = wire::decode(&stream[pos..], u32::MAX).unwrap().expect("a whole frame");
            s.check(&f);
            pos += n;
            prop_assert_eq!(pos, *end);
        }
        prop_assert_eq!(wire::decode(&stream[pos..], u32::MAX), Ok(None));
        prop_assert_eq!(stream.len() - pos, partial.len());
    }
}

#[test]
fn hand_checked_cases() {
    // The 4 GiB length is refused from the header alone, whatever the type's payload rules.
    let mut b = vec![0xff, 0xff, 0xff, 0xff, FrameType::Request as u8, 0, 0, 0];
    assert_eq!(
        wire::decode(&b, 1 << 20),
        Err(WireError::TooLarge {
            len: u32::MAX,
            max: 1 << 20
        })
    );
    // With no limit at all it waits for the payload (it never reads past the input), where a
    // 4 GiB frame can exist at all; on a 32-bit target it is too large (and must not overflow).
    #[cfg(target_pointer_width = "64")]
    assert_eq!(wire::decode(&b, u32::MAX), Ok(None));
    #[cfg(not(target_pointer_width = "64"))]
    assert!(matches!(
        wire::decode(&b, u32::MAX),
        Err(WireError::TooLarge { .. })
    ));
    b[4] = 0x99;
    assert_eq!(
        wire::decode(&b, u32::MAX),
        Err(WireError::UnknownType(0x99))
    );
    // DONE payloads are whole ids.
    let done = [
        0,
        0,
        0,
        7,
        FrameType::Done as u8,
        0,
        0,
        0,
        1,
        2,
        3,
        4,
        5,
        6,
        7,
    ];
    assert!(matches!(
        wire::decode(&done, 64),
        Err(WireError::Malformed { .. })
    ));
}

/// The generator of (a) really reaches every outcome of `decode`, so its properties are not
/// vacuously true.
#[test]
fn hostile_bytes_reach_every_outcome() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    let strategy = (hostile_bytes(), max_frame());
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..20_000 {
        let (buf, max) = strategy.new_tree(&mut runner).unwrap().current();
        let kind = match wire::decode(&buf, max) {
            Ok(None) => "wait".to_string(),
            Ok(Some((f, _))) => format!("{f:?}")
                .split(|c: char| !c.is_alphanumeric())
                .next()
                .unwrap_or_default()
                .to_string(),
            Err(WireError::Malformed { frame, .. }) => format!("malformed {frame:?}"),
            Err(WireError::TooLarge { .. }) => "too large".into(),
            Err(WireError::UnknownType(_)) => "unknown type".into(),
            Err(WireError::BadHeader) => "bad header".into(),
            Err(WireError::BadMagic) => "bad magic".into(),
        };
        *seen.entry(kind).or_insert(0u32) += 1;
    }
    eprintln!("outcomes: {seen:?}");
    let frames = [
        "Hello",
        "Welcome",
        "Refuse",
        "Quit",
        "Request",
        "Ack",
        "Reply",
        "Cancel",
        "Done",
        "Deliver",
        "Result",
        "Ping",
        "Pong",
        "StatsRequest",
        "Stats",
    ];
    let others = [
        "wait",
        "too large",
        "unknown type",
        "bad header",
        "bad magic",
    ];
    for k in frames.iter().chain(&others) {
        assert!(
            seen.get(*k).copied().unwrap_or(0) >= 5,
            "{k} too rare: {seen:?}"
        );
    }
    let malformed = seen.keys().filter(|k| k.starts_with("malformed")).count();
    assert!(malformed >= 10, "{seen:?}");
}
