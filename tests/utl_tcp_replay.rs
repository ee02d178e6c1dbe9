//! The UTL_TCP body's byte protocol against the real hub.
//!
//! plsql/protocol_fixture.txt holds the exact bytes plsql/dco_utl_tcp.pkb writes for a session
//! (HELLO with a fixed session id and name, REQUESTs as send_request builds them, the batch
//! with its DONE and PING as flush writes it, the DONE list after a reconnect and at close) and
//! the frames it expects back. This test replays them over a raw TCP connection to a hub with
//! an echo worker, reading the answers the way the PL/SQL does (a frame at a time, PINGs
//! answered, REPLYs parked by id), and checks every answer byte for byte against the fixture:
//! WELCOME's fields at the offsets greet reads, the ACK flush waits for, each REPLY with the
//! echoed body, the no-route failure, and the replies the hub sends again after a reconnect
//! until DONE tells it they were read.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{echo_worker, Hub};

/// How long any one answer may take before the test gives up (a bound, not a measurement).
const PATIENCE: Duration = Duration::from_secs(30);

/// One byte of a pattern: a value or any.
type Pat = Vec<Option<u8>>;

#[derive(Debug)]
enum Step {
    Connect,
    Drop,
    Write(String, Vec<u8>),
    Welcome(String, Pat),
    Ack(String, u64),
    Reply(String, Pat),
    Resent(String, Vec<u64>),
    Unread(String, u64),
}

struct Fixture {
    session: Vec<u8>,
    name: String,
    steps: Vec<Step>,
}

/// Bytes from the fixture's notation: hex digits (spaces anywhere), "text", ?? for any byte.
fn parse_bytes(text: &str, line: usize) -> Pat {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut nibble: Option<Option<u8>> = None;
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                assert!(nibble.is_none(), "line {line}: half a byte before a string");
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some(c) => s.push(c),
                        None => panic!("line {line}: unterminated string"),
                    }
                }
                out.extend(s.bytes().map(Some));
            }
            c if c.is_whitespace() => {
                assert!(nibble.is_none(), "line {line}: odd number of hex digits");
            }
            '?' => match nibble.take() {
                None => nibble = Some(None),
                Some(None) => out.push(None),
                Some(Some(_)) => panic!("line {line}: half a byte then ?"),
            },
            c => {
                let v = c
                    .to_digit(16)
                    .unwrap_or_else(|| panic!("line {line}: {c:?} is not hex"))
                    as u8;
                match nibble.take() {
                    None => nibble = Some(Some(v)),
                    Some(Some(hi)) => out.push(Some(hi << 4 | v)),
                    Some(None) => panic!("line {line}: ? then a hex digit"),
                }
            }
        }
    }
    assert!(nibble.is_none(), "line {line}: odd number of hex digits");
    out
}

fn exact(p: Pat, line: usize) -> Vec<u8> {
    p.into_iter()
        .map(|b| b.unwrap_or_else(|| panic!("line {line}: ?? in bytes the PL/SQL writes")))
        .collect()
}

fn load_fixture() -> Fixture {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/plsql/protocol_fixture.txt");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // Logical lines: a line starting with a blank continues the one before.
    let mut logical: Vec<(usize, String)> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let mut line = String::new();
        let mut in_str = false;
        for c in raw.chars() {
            if c == '"' {
                in_str = !in_str;
            }
            if c == '#' && !in_str {
                break;
            }
            line.push(c);
        }
        if line.trim().is_empty() {
            continue;
        }
        if line.starts_with(char::is_whitespace) {
            let last = logical
                .last_mut()
                .unwrap_or_else(|| panic!("line {}: continuation of nothing", n + 1));
            last.1.push(' ');
            last.1.push_str(line.trim());
        } else {
            logical.push((n + 1, line.trim().to_string()));
        }
    }
    let mut session = None;
    let mut name = None;
    let mut steps = Vec::new();
    for (line, l) in logical {
        let (verb, tail) = l
            .split_once(char::is_whitespace)
            .unwrap_or((l.as_str(), ""));
        let tail = tail.trim_start();
        let (label, rest) = tail.split_once(char::is_whitespace).unwrap_or((tail, ""));
        let (label, rest) = (label.to_string(), rest.trim().to_string());
        match verb {
            "session" => session = Some(exact(parse_bytes(&label, line), line)),
            "name" => name = Some(label),
            "connect" => steps.push(Step::Connect),
            "drop" => steps.push(Step::Drop),
            "write" => steps.push(Step::Write(label, exact(parse_bytes(&rest, line), line))),
            "welcome" => steps.push(Step::Welcome(label, parse_bytes(&rest, line))),
            "reply" => steps.push(Step::Reply(label, parse_bytes(&rest, line))),
            "ack" => steps.push(Step::Ack(
                label,
                rest.parse()
                    .unwrap_or_else(|_| panic!("line {line}: ack N")),
            )),
            "unread" => steps.push(Step::Unread(
                label,
                rest.parse()
                    .unwrap_or_else(|_| panic!("line {line}: unread N")),
            )),
            "resent" => steps.push(Step::Resent(
                label,
                rest.split_whitespace()
                    .map(|x| x.parse().unwrap_or_else(|_| panic!("line {line}: id {x}")))
                    .collect(),
            )),
            v => panic!("line {line}: unknown step {v:?}"),
        }
    }
    Fixture {
        session: session.expect("fixture: session"),
        name: name.expect("fixture: name"),
        steps,
    }
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn show(p: &Pat) -> String {
    p.iter()
        .map(|b| b.map(|x| format!("{x:02x}")).unwrap_or_else(|| "??".into()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn matches(p: &Pat, b: &[u8]) -> bool {
    p.len() == b.len() && p.iter().zip(b).all(|(p, b)| p.is_none_or(|p| p == *b))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}

/// The hub as the PL/SQL body sees it: frames read one at a time, PINGs answered, REPLYs
/// parked by id until awaited.
struct Peer {
    stream: Option<TcpStream>,
    /// REPLY frames received and not awaited yet, by id.
    parked: BTreeMap<u64, Vec<u8>>,
    /// The first copy of every REPLY awaited so far, by id.
    read: BTreeMap<u64, Vec<u8>>,
    /// Copies of replies already read, received since the last connect.
    again: BTreeMap<u64, Vec<u8>>,
    acked: u64,
}

impl Peer {
    fn stream(&mut self) -> &mut TcpStream {
        self.stream
            .as_mut()
            .expect("not connected: the fixture lacks a connect")
    }

    /// Reads one whole frame (header and payload), as read_frame does.
    fn frame(&mut self, step: &str) -> Vec<u8> {
        let s = self.stream();
        let mut head = [0u8; 8];
        s.read_exact(&mut head)
            .unwrap_or_else(|e| panic!("{step}: reading a frame header from the hub: {e}"));
        assert_eq!(
            &head[5..8],
            &[0, 0, 0],
            "{step}: reserved header bytes not zero: {}",
            hex(&head)
        );
        let len = u32_at(&head, 0) as usize;
        assert!(len <= 16 << 20, "{step}: frame of {len} bytes");
        let mut f = head.to_vec();
        f.resize(8 + len, 0);
        s.read_exact(&mut f[8..])
            .unwrap_or_else(|e| panic!("{step}: reading a payload of {len} bytes: {e}"));
        f
    }

    /// Reads one frame and handles it as handle_frame does; returns it.
    fn pump(&mut self, step: &str) -> Vec<u8> {
        let f = self.frame(step);
        match f[4] {
            0x11 => {
                assert_eq!(f.len(), 16, "{step}: ACK of {} bytes", f.len());
                self.acked = self.acked.max(u64_at(&f, 8));
            }
            0x12 => {
                assert!(f.len() >= 24, "{step}: REPLY of {} bytes", f.len());
                let id = u64_at(&f, 8);
                if self.read.contains_key(&id) {
                    assert!(
                        self.again.insert(id, f.clone()).is_none(),
                        "{step}: reply {id} sent again twice on one connection"
                    );
                } else {
                    assert!(
                        self.parked.insert(id, f.clone()).is_none(),
                        "{step}: reply {id} twice before it was read"
                    );
                }
            }
            0x30 => {
                // PING: answered with pong_frame's bytes (the PL/SQL sends them with its next
                // write).
                assert_eq!(f.len(), 16, "{step}: PING of {} bytes", f.len());
                let mut pong = vec![0, 0, 0, 8, 0x31, 0, 0, 0];
                pong.extend_from_slice(&f[8..16]);
                self.stream().write_all(&pong).expect("write PONG");
            }
            0x31 => assert_eq!(f.len(), 16, "{step}: PONG of {} bytes", f.len()),
            0x03 => panic!(
                "{step}: the hub refused: code {} {:?}",
                u32_at(&f, 8) as i32,
                String::from_utf8_lossy(&f[12..])
            ),
            0x04 => panic!(
                "{step}: the hub quit: {:?}",
                String::from_utf8_lossy(&f[8..])
            ),
            t => panic!(
                "{step}: frame type 0x{t:02x}, which the PL/SQL does not expect: {}",
                hex(&f)
            ),
        }
        f
    }
}

/// The hub's count of replies it holds for the caller named `name`.
fn unread(hub: &Hub, name: &str) -> Option<u64> {
    let stats = hub.stats();
    stats["callers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == name)
        .and_then(|c| c["unread"].as_u64())
}

#[test]
fn the_utl_tcp_body_s_bytes_get_the_answers_it_expects() {
    let fx = load_fixture();
    assert_eq!(fx.session.len(), 8, "the session id is 8 bytes");

    // The fixture's own frames are well formed for the hub's decoder, and HELLO carries the
    // fixture's session and name (a typo here would otherwise show as a confusing hub error).
    for step in &fx.steps {
        if let Step::Write(label, bytes) = step {
            let mut at = 0;
            while at < bytes.len() {
                match dco::wire::decode(&bytes[at..], dco::wire::DEFAULT_MAX_FRAME) {
                    Ok(Some((frame, n))) => {
                        if let dco::wire::Frame::Hello(h) = &frame {
                            assert_eq!(h.session.to_be_bytes().to_vec(), fx.session, "{label}");
                            assert_eq!(h.name, fx.name.as_bytes(), "{label}");
                            assert_eq!(h.role, dco::wire::Role::Caller, "{label}");
                        }
                        at += n;
                    }
                    Ok(None) => panic!("{label}: a frame is cut short at byte {at}"),
                    Err(e) => panic!("{label}: not a frame at byte {at}: {e}"),
                }
            }
        }
    }

    // The fixture's dco.call(service => 'echo.svc', ...) goes to the echo worker.
    let hub = Hub::start(&["--route", "echo.svc=5"]);
    let _worker = echo_worker(&hub.addr, 5);
    hub.wait_workers(5, 1);

    let mut peer = Peer {
        stream: None,
        parked: BTreeMap::new(),
        read: BTreeMap::new(),
        again: BTreeMap::new(),
        acked: 0,
    };
    for step in &fx.steps {
        match step {
            Step::Connect => {
                let s = TcpStream::connect(&hub.addr).expect("connect to the hub");
                s.set_read_timeout(Some(PATIENCE)).unwrap();
                s.set_nodelay(true).unwrap();
                peer.stream = Some(s);
                peer.again.clear();
                peer.acked = 0;
            }
            Step::Drop => {
                if let Some(s) = peer.stream.take() {
                    let _ = s.shutdown(std::net::Shutdown::Both);
                }
                assert!(
                    peer.parked.is_empty(),
                    "replies received and never read: {:?}",
                    peer.parked.keys()
                );
            }
            Step::Write(label, bytes) => {
                peer.stream()
                    .write_all(bytes)
                    .unwrap_or_else(|e| panic!("{label}: write: {e}"));
            }
            Step::Welcome(label, pat) => {
                let f = peer.frame(label);
                assert!(
                    matches(pat, &f),
                    "{label}: the hub answered\n  {}\nthe PL/SQL expects\n  {}",
                    hex(&f),
                    show(pat)
                );
                // The fields at the offsets greet reads them (payload byte 1 = frame byte 9).
                assert_eq!(u32_at(&f, 8) >> 16, 1, "{label}: version");
                assert_eq!(&f[24..32], &fx.session[..], "{label}: session");
                assert_ne!(u64_at(&f, 32), 0, "{label}: hub id");
            }
            Step::Ack(label, n) => {
                while peer.acked < *n {
                    peer.pump(label);
                }
            }
            Step::Reply(label, pat) => {
                assert!(pat.len() >= 24, "{label}: pattern shorter than a REPLY");
                let id_bytes: Vec<u8> = pat[8..16]
                    .iter()
                    .map(|b| b.unwrap_or_else(|| panic!("{label}: the id must be given")))
                    .collect();
                let id = u64::from_be_bytes(id_bytes.try_into().unwrap());
                while !peer.parked.contains_key(&id) {
                    peer.pump(label);
                }
                let f = peer.parked.remove(&id).unwrap();
                assert!(
                    matches(pat, &f),
                    "{label}: the hub answered\n  {} ({:?})\nthe PL/SQL expects\n  {}",
                    hex(&f),
                    String::from_utf8_lossy(&f[24..]),
                    show(pat)
                );
                peer.read.insert(id, f);
            }
            Step::Resent(label, ids) => {
                let want: BTreeSet<u64> = ids.iter().copied().collect();
                // They came right behind WELCOME, before anything awaited since: all here.
                let got: BTreeSet<u64> = peer.again.keys().copied().collect();
                assert_eq!(
                    got, want,
                    "{label}: replies the hub sent again after the reconnect"
                );
                for id in ids {
                    assert_eq!(
                        peer.again[id], peer.read[id],
                        "{label}: reply {id} sent again differs from the first copy"
                    );
                }
            }
            Step::Unread(label, n) => {
                // The hub handles DONE when it reads it: wait for it (bounded).
                let until = Instant::now() + PATIENCE;
                loop {
                    let have = unread(&hub, &fx.name);
                    if have == Some(*n) {
                        break;
                    }
                    assert!(
                        Instant::now() < until,
                        "{label}: the hub holds {have:?} replies of {}, the fixture says {n}",
                        fx.name
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
    assert!(
        peer.stream.is_none(),
        "the fixture should end with drop (dco.close)"
    );
    assert!(
        peer.parked.is_empty(),
        "replies never read: {:?}",
        peer.parked.keys()
    );
}

/// A reply larger than one RAW (32767 bytes) comes as one REPLY frame that read_frame reads in
/// parts of at most 32767 bytes: the hub sends it whole, with the length header the PL/SQL
/// trusts.
#[test]
fn a_large_reply_is_one_frame_with_its_length() {
    let hub = Hub::start(&[]);
    let _worker = echo_worker(&hub.addr, 5);
    hub.wait_workers(5, 1);
    let mut s = TcpStream::connect(&hub.addr).expect("connect");
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut peer_bytes = Vec::new();
    dco::wire::encode_hello(
        &mut peer_bytes,
        dco::wire::Role::Caller,
        0x0123_4567_89ab_cdef,
        0,
        b"plsql:APP[42]",
        b"",
        &[],
    );
    s.write_all(&peer_bytes).unwrap();
    let mut peer = Peer {
        stream: Some(s),
        parked: BTreeMap::new(),
        read: BTreeMap::new(),
        again: BTreeMap::new(),
        acked: 0,
    };
    let welcome = peer.frame("welcome");
    assert_eq!(welcome[4], 0x02);
    // 100 000 bytes: what example 4 sends (100 writes of 1000 bytes).
    let body: Vec<u8> = (0..100_000u32).map(|i| b'A' + (i % 26) as u8).collect();
    let mut req = Vec::new();
    dco::wire::encode_request(&mut req, 1, 5, 0, 0, &body);
    // request_head(1, 5, 0, 100000): the header the PL/SQL writes before the body's parts.
    assert_eq!(
        hex(&req[..28]),
        hex(&[
            0, 1, 0x86, 0xb4, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0,
            0, 0
        ])
    );
    peer.stream().write_all(&req).unwrap();
    while !peer.parked.contains_key(&1) {
        peer.pump("large reply");
    }
    let f = &peer.parked[&1];
    assert_eq!(u32_at(f, 0) as usize, 16 + body.len(), "REPLY length");
    assert_eq!(u32_at(f, 16), 0, "status");
    assert_eq!(&f[24..], &body[..], "echoed body");
}
