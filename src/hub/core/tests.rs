//! Unit tests of the core: no sockets, a fake clock, the memory store.

use std::time::Duration;

use super::*;
use crate::hub::store::MemStore;
use crate::wire::{Frame, Role as WireRole};

const T0: Micros = 1_700_000_000_000_000;
const MS: Micros = 1000;

/// A frame the core wrote, owned.
#[derive(Debug, Clone, PartialEq)]
enum Out {
    Welcome,
    Ack(u64),
    Reply {
        id: u64,
        status: Status,
        body: String,
    },
    Queued(u64, u32),
    Deliver {
        tag: u64,
        request: u64,
        attempt: u32,
        remaining_ms: u32,
        body: String,
    },
    Cancel(u64),
    Ping,
    Other(String),
}

struct H {
    core: Core,
    /// The store's durability mark (see MemStore::durable_mark).
    durable: std::sync::Arc<std::sync::atomic::AtomicU64>,
    now: Micros,
    /// Frames read off a connection by a helper and not yet looked at by the test.
    saved: Vec<(Token, Out)>,
}

fn policies(spec: &[&str]) -> Policies {
    let mut p = Policies::default();
    for s in spec {
        p.add(s).unwrap();
    }
    p
}

impl H {
    fn new(policies: Policies) -> H {
        let cfg = CoreConfig {
            max_frame: wire::DEFAULT_MAX_FRAME,
            quota: 1 << 20,
            keepalive: Duration::from_secs(5),
            secret: Vec::new(),
            reply_ttl: Duration::from_secs(3600),
            policies,
            overdue_grace: Duration::from_millis(500),
            greeting_timeout: Duration::from_secs(10),
            hub_id: 42,
            answer_reserve: 4096,
            delivery_key: [1, 2],
        };
        let router = Router::with_known_file(None, &[5, 6]).unwrap();
        let store = MemStore::default();
        let durable = store.durable_mark();
        let core = Core::new(cfg, Box::new(store), router, Recovered::default(), T0);
        H {
            core,
            durable,
            now: T0,
            saved: Vec::new(),
        }
    }

    fn feed(&mut self, t: Token, bytes: &[u8]) -> Result<(), Fatal> {
        let mut at = 0;
        while at < bytes.len() {
            let (f, n) = wire::decode(&bytes[at..], wire::DEFAULT_MAX_FRAME)
                .unwrap()
                .unwrap();
            at += n;
            self.core.on_frame(t, f, self.now)?;
        }
        self.core.durable(self.now);
        Ok(())
    }

    fn caller(&mut self, t: Token, session: u64) {
        self.core.open(t, format!("caller{t}"), self.now);
        let mut b = Vec::new();
        wire::encode_hello(&mut b, WireRole::Caller, session, 0, b"c", b"", &[]);
        self.feed(t, &b).unwrap();
        let out = self.out(t);
        assert_eq!(out.first(), Some(&Out::Welcome), "{out:?}");
        // Answers held for the session follow; the test reads them later.
        let rest: Vec<Out> = out.into_iter().skip(1).collect();
        self.pushback(t, rest);
    }

    fn worker(&mut self, t: Token, proxies: &[i32], capacity: u32) {
        self.core.open(t, format!("worker{t}"), self.now);
        let mut b = Vec::new();
        wire::encode_hello(&mut b, WireRole::Worker, 1, capacity, b"w", b"", proxies);
        self.feed(t, &b).unwrap();
        let out = self.out(t);
        assert_eq!(out.first(), Some(&Out::Welcome), "{out:?}");
        // Deliveries made at once stay readable for the test.
        let rest: Vec<Out> = out.into_iter().skip(1).collect();
        self.pushback(t, rest);
    }

    fn pushback(&mut self, t: Token, frames: Vec<Out>) {
        self.saved.extend(frames.into_iter().map(|f| (t, f)));
    }

    fn request(&mut self, t: Token, id: u64, proxy: i32, flags: u32, timeout_ms: u32, body: &str) {
        let mut b = Vec::new();
        wire::encode_request(&mut b, id, proxy, flags, timeout_ms, body.as_bytes());
        self.feed(t, &b).unwrap();
    }

    fn result(&mut self, t: Token, tag: u64, status: Status, body: &str) -> Result<(), Fatal> {
        let mut b = Vec::new();
        wire::encode_result(&mut b, tag, status.code(), 0, body.as_bytes());
        self.feed(t, &b)
    }

    fn advance(&mut self, ms: u64) {
        self.now += ms * MS;
        self.core.advance(self.now);
        self.core.durable(self.now);
    }

    /// Everything written to `t` since the last look (saved deliveries first).
    fn out(&mut self, t: Token) -> Vec<Out> {
        let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.saved)
            .into_iter()
            .partition(|(x, _)| *x == t);
        self.saved = rest;
        let mut got: Vec<Out> = mine.into_iter().map(|(_, f)| f).collect();
        let Some(c) = self.core.conn_mut(t) else {
            return got;
        };
        let bytes = std::mem::take(&mut c.out);
        c.out_pos = 0;
        let mut at = 0;
        while at < bytes.len() {
            let (f, n) = wire::decode(&bytes[at..], u32::MAX).unwrap().unwrap();
            at += n;
            got.push(match f {
                Frame::Welcome(_) => Out::Welcome,
                Frame::Ack { upto } => Out::Ack(upto),
                Frame::Reply {
                    id, status, body, ..
                } => Out::Reply {
                    id,
                    status: Status::from_code(status),
                    body: String::from_utf8_lossy(body).into_owned(),
                },
                Frame::Queued { id, mode } => Out::Queued(id, mode),
                Frame::Deliver {
                    tag,
                    request,
                    attempt,
                    remaining_ms,
                    body,
                    ..
                } => Out::Deliver {
                    tag,
                    request,
                    attempt,
                    remaining_ms,
                    body: String::from_utf8_lossy(body).into_owned(),
                },
                Frame::Cancel { id } => Out::Cancel(id),
                Frame::Ping { .. } => Out::Ping,
                other => Out::Other(format!("{other:?}")),
            });
        }
        self.core.take_dirty();
        got
    }

    fn replies(&mut self, t: Token) -> Vec<(u64, Status, String)> {
        self.out(t)
            .into_iter()
            .filter_map(|f| match f {
                Out::Reply { id, status, body } => Some((id, status, body)),
                _ => None,
            })
            .collect()
    }

    fn deliveries(&mut self, t: Token) -> Vec<(u64, u64, u32, u32, String)> {
        self.out(t)
            .into_iter()
            .filter_map(|f| match f {
                Out::Deliver {
                    tag,
                    request,
                    attempt,
                    remaining_ms,
                    body,
                } => Some((tag, request, attempt, remaining_ms, body)),
                _ => None,
            })
            .collect()
    }

    fn proxy_stats(&self, id: i32) -> serde_json::Value {
        let v = serde_json::to_value(self.core.snapshot(self.now)).unwrap();
        v["proxies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == id)
            .cloned()
            .unwrap_or_default()
    }
}

// --- the tests ---------------------------------------------------------------------------------

#[test]
fn a_request_expired_in_the_queue_is_never_delivered() {
    let mut h = H::new(Policies::default());
    h.caller(1, 100);
    h.request(1, 1, 5, 0, 200, "late");
    // The acknowledgement goes out after 100 ms; the deadline is the next timer then.
    h.advance(100);
    assert_eq!(h.core.next_due(), Some(T0 + 200 * MS));
    h.advance(99);
    assert!(h.replies(1).is_empty());
    h.advance(1);
    let r = h.replies(1);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].1, Status::Timeout);
    assert!(r[0].2.contains("expired in the queue"), "{}", r[0].2);
    h.worker(2, &[5], 10);
    assert!(
        h.deliveries(2).is_empty(),
        "an expired request reached a worker"
    );
    assert_eq!(h.proxy_stats(5)["outcomes"]["expired"], 1);
}

#[test]
fn a_request_expired_before_its_timer_is_not_delivered_either() {
    // The deadline passes and a worker arrives in the same round, before the timer runs.
    let mut h = H::new(Policies::default());
    h.caller(1, 100);
    h.request(1, 1, 5, 0, 50, "late");
    h.now += 60 * MS;
    h.worker(2, &[5], 10);
    assert!(h.deliveries(2).is_empty());
    assert_eq!(h.replies(1)[0].1, Status::Timeout);
}

#[test]
fn a_delivery_gets_the_time_left_and_a_late_answer_is_dropped() {
    let mut h = H::new(Policies::default());
    h.caller(1, 100);
    h.worker(2, &[5], 10);
    h.advance(0);
    h.request(1, 1, 5, 0, 300, "slow");
    h.advance(0);
    let d = h.deliveries(2);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].3, 300, "the worker is told its time left");
    h.advance(300);
    let r = h.replies(1);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].1, Status::Timeout);
    assert!(
        r[0].2.contains("no answer within the deadline"),
        "{}",
        r[0].2
    );
    assert!(
        h.out(2).contains(&Out::Cancel(d[0].0)),
        "the worker is told"
    );
    h.result(2, d[0].0, Status::Ok, "too late").unwrap();
    assert!(h.replies(1).is_empty(), "a late answer reached the caller");
    let s = h.proxy_stats(5);
    assert_eq!(s["outcomes"]["timeout"], 1);
    assert_eq!(s["outcomes"]["late"], 1);
}

#[test]
fn under_a_millisecond_left_is_one_millisecond_not_no_limit() {
    let mut h = H::new(Policies::default());
    h.caller(1, 100);
    h.worker(2, &[5], 1);
    h.advance(0);
    h.request(1, 1, 5, 0, 0, "busy");
    h.request(1, 2, 5, 0, 2, "short");
    h.advance(0);
    let first = h.deliveries(2);
    assert_eq!(first.len(), 1);
    // 1.5 ms later the worker has room: the second request has 0.5 ms left.
    h.now += 1500;
    h.core.advance(h.now);
    h.result(2, first[0].0, Status::Ok, "done").unwrap();
    h.core.advance(h.now);
    let d = h.deliveries(2);
    assert_eq!(d.len(), 1);
    assert_eq!(
        d[0].3, 1,
        "0.5 ms left is sent as 1 ms (0 would mean no limit)"
    );
}

#[test]
fn a_request_reaches_a_worker_only_once_its_accept_is_durable() {
    use std::sync::atomic::Ordering;
    let mut h = H::new(Policies::default());
    h.caller(1, 100);
    h.worker(2, &[5], 10);
    h.advance(0);
    // The fdatasync covering what is appended now has not completed.
    h.durable.store(0, Ordering::SeqCst);
    h.request(1, 1, 5, 0, 0, "a");
    h.request(1, 2, 5, 0, 0, "b");
    h.advance(5);
    assert!(
        h.deliveries(2).is_empty(),
        "a request went out before it was durable"
    );
    assert!(
        !h.out(1).iter().any(|o| matches!(o, Out::Ack(_))),
        "a request was acknowledged before it was durable"
    );
    // The sync completes: both go out, and both are acknowledged.
    h.durable.store(Pos::MAX, Ordering::SeqCst);
    h.core.durable(h.now);
    let d = h.deliveries(2);
    assert_eq!(d.len(), 2);
    assert_eq!((d[0].4.as_str(), d[1].4.as_str()), ("a", "b"));
}

#[test]
fn a_poison_request_gives_up_after_its_attempts_while_others_flow() {
    let mut h = H::new(policies(&[
        "5:attempts=3,backoff-ms=100,backoff-cap-ms=1000",
    ]));
    h.caller(1, 100);
    h.request(1, 1, 5, 0, 0, "poison");
    for i in 2..=51 {
        h.request(1, i, 5, 0, 0, "ok");
    }
    let mut answered = 0;
    let mut token = 10;
    let mut crashes = 0;
    // A worker process that takes one request at a time, dies on the poison and is restarted
    // at once.
    h.worker(token, &[5], 1);
    for _ in 0..1000 {
        if crashes == 3 {
            break;
        }
        let d = h.deliveries(token);
        let Some((tag, _id, att, _, body)) = d.into_iter().next() else {
            h.advance(50);
            continue;
        };
        if body == "poison" {
            crashes += 1;
            assert_eq!(att, crashes);
            h.core.closed(token, "crashed", h.now);
            token += 1;
            h.worker(token, &[5], 1);
        } else {
            h.result(token, tag, Status::Ok, "fine").unwrap();
            answered += 1;
        }
    }
    assert_eq!(crashes, 3);
    let r = h.replies(1);
    let poison: Vec<_> = r.iter().filter(|x| x.0 == 1).collect();
    assert_eq!(poison.len(), 1, "{r:?}");
    assert_eq!(poison[0].1, Status::System);
    assert!(
        poison[0].2.contains("gave up after 3 attempts"),
        "{}",
        poison[0].2
    );
    assert!(
        poison[0].2.contains("left while it held"),
        "{}",
        poison[0].2
    );
    assert_eq!(
        answered, 50,
        "the other requests of the proxy were answered"
    );
    let s = h.proxy_stats(5);
    assert_eq!(s["outcomes"]["retried"], 2);
    assert_eq!(s["outcomes"]["system"], 1);
}

#[test]
fn retry_later_goes_to_the_redo_queue_with_backoff() {
    let mut h = H::new(policies(&["5:attempts=2,backoff-ms=250"]));
    h.caller(1, 100);
    h.worker(2, &[5], 10);
    h.request(1, 1, 5, 0, 0, "x");
    let d = h.deliveries(2);
    h.result(2, d[0].0, Status::Retry, "far side down").unwrap();
    assert!(h.deliveries(2).is_empty(), "retried at once");
    h.advance(249);
    assert!(h.deliveries(2).is_empty());
    h.advance(1);
    let d = h.deliveries(2);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].2, 2, "attempt 2");
    h.result(2, d[0].0, Status::Retry, "still down").unwrap();
    let r = h.replies(1);
    assert_eq!(r[0].1, Status::System);
    assert!(
        r[0].2.contains("asked to retry later: still down"),
        "{}",
        r[0].2
    );
}

#[test]
fn an_overdue_worker_loses_its_request_and_then_its_connection() {
    let mut h = H::new(policies(&["5:service-ms=1000,backoff-ms=10"]));
    h.caller(1, 100);
    h.worker(2, &[5], 10);
    h.request(1, 1, 5, 0, 0, "x");
    let stuck = h.deliveries(2);
    assert_eq!(stuck[0].3, 1000, "the service-time limit is the time left");
    h.worker(3, &[5], 10);
    h.advance(1000);
    assert!(h.out(2).contains(&Out::Cancel(stuck[0].0)));
    h.advance(10);
    let d = h.deliveries(3);
    assert_eq!(d.len(), 1, "the request went to the other worker");
    assert_eq!(d[0].2, 2);
    // The overdue worker gets no new work.
    h.request(1, 2, 5, 0, 0, "y");
    assert!(h.deliveries(2).is_empty());
    assert_eq!(h.deliveries(3).len(), 1);
    h.advance(500);
    let closes = h.core.take_closes();
    assert_eq!(closes.len(), 1);
    assert_eq!(closes[0].0, 2);
}

#[test]
fn a_cancelled_request_is_never_delivered_and_frees_its_record() {
    let mut h = H::new(Policies::default());
    h.caller(1, 100);
    h.request(1, 1, 5, 0, 0, "x");
    let mut b = Vec::new();
    wire::encode_cancel(&mut b, 1);
    h.feed(1, &b).unwrap();
    h.worker(2, &[5], 10);
    assert!(h.deliveries(2).is_empty());
    assert_eq!(h.proxy_stats(5)["outcomes"]["cancelled"], 1);
    assert_eq!(h.proxy_stats(5)["queued"], 0);
}

#[test]
fn a_cancelled_delivery_tells_the_worker_and_drops_its_answer() {
    let mut h = H::new(Policies::default());
    h.caller(1, 100);
    h.worker(2, &[5], 10);
    h.request(1, 1, 5, 0, 0, "x");
    let d = h.deliveries(2);
    let mut b = Vec::new();
    wire::encode_cancel(&mut b, 1);
    h.feed(1, &b).unwrap();
    assert!(h.out(2).contains(&Out::Cancel(d[0].0)));
    h.result(2, d[0].0, Status::Ok, "done anyway").unwrap();
    assert!(h.replies(1).is_empty());
}

#[test]
fn one_callers_burst_does_not_starve_another() {
    let mut h = H::new(Policies::default());
    h.caller(1, 100);
    h.caller(2, 200);
    for i in 1..=1000 {
        h.request(1, i, 5, 0, 0, "burst");
    }
    h.request(2, 1, 5, 0, 0, "single");
    h.worker(3, &[5], 1);
    let mut order = Vec::new();
    for _ in 0..3 {
        let d = h.deliveries(3);
        order.push(d[0].4.clone());
        h.result(3, d[0].0, Status::Ok, "").unwrap();
    }
    assert_eq!(order, ["burst", "single", "burst"]);
}

#[test]
fn queue_on_timeout_keeps_the_request_past_its_timeout() {
    let mut h = H::new(policies(&["5:mode=queue-on-timeout"]));
    h.caller(1, 100);
    h.request(1, 1, 5, 0, 100, "x");
    assert!(h.out(1).contains(&Out::Queued(1, 1)), "the caller is told");
    h.advance(1000);
    assert!(
        h.replies(1).is_empty(),
        "no deadline in queue-on-timeout mode"
    );
    h.worker(2, &[5], 10);
    let d = h.deliveries(2);
    assert_eq!(d[0].3, 60_000, "only the service-time limit bounds it");
    h.result(2, d[0].0, Status::Ok, "later").unwrap();
    assert_eq!(h.replies(1), vec![(1, Status::Ok, "later".into())]);
    // A request that chooses sync is sync whatever the default.
    h.request(1, 2, 5, wire::REQ_SYNC, 100, "y");
    assert!(!h.out(1).contains(&Out::Queued(2, 1)));
}

#[test]
fn a_forward_reaches_the_original_caller_and_loops_are_stopped() {
    let mut h = H::new(Policies::default());
    h.caller(1, 100);
    h.worker(2, &[5], 10);
    h.worker(3, &[6], 10);
    h.request(1, 1, 5, 0, 0, "first");
    let d = h.deliveries(2);
    let mut b = Vec::new();
    wire::encode_forward(&mut b, d[0].0, 6, b"second");
    h.feed(2, &b).unwrap();
    let d6 = h.deliveries(3);
    assert_eq!(d6[0].1, 1, "same request id");
    assert_eq!(d6[0].4, "second");
    h.result(3, d6[0].0, Status::Ok, "final").unwrap();
    assert_eq!(h.replies(1), vec![(1, Status::Ok, "final".into())]);
    assert_eq!(h.proxy_stats(5)["outcomes"]["forwarded"], 1);
    // A worker that forwards to its own proxy forever is stopped.
    h.request(1, 2, 5, 0, 0, "loop");
    for _ in 0..=wire::MAX_HOPS {
        let d = h.deliveries(2);
        if d.is_empty() {
            break;
        }
        let mut b = Vec::new();
        wire::encode_forward(&mut b, d[0].0, 5, b"loop");
        h.feed(2, &b).unwrap();
    }
    let r = h.replies(1);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].1, Status::System);
    assert!(r[0].2.contains("forwarding loop"), "{}", r[0].2);
    // To an unknown proxy: no route.
    h.request(1, 3, 5, 0, 0, "x");
    let d = h.deliveries(2);
    let mut b = Vec::new();
    wire::encode_forward(&mut b, d[0].0, 77, b"x");
    h.feed(2, &b).unwrap();
    assert_eq!(h.replies(1)[0].1, Status::NoRoute);
}

#[test]
fn a_result_for_a_tag_the_worker_does_not_hold_is_refused() {
    let mut h = H::new(Policies::default());
    h.worker(2, &[5], 10);
    assert!(h.result(2, 12345, Status::Ok, "").is_err());
}

#[test]
fn deadlines_hold_across_a_restart() {
    // A journal's records, replayed into a new core: the deadline is absolute.
    let mut store = MemStore::default();
    let head = records::accept_head(&records::AcceptHead {
        session: 100,
        request: 1,
        proxy: 5,
        flags: Mode::Sync.flag(),
        accepted_us: T0,
        deadline_us: T0 + 500 * MS,
        hops: 0,
    });
    let pos = store
        .append(
            records::ACCEPT,
            &[&head, b"x"],
            true,
            crate::journal::Draw::New(0),
        )
        .unwrap();
    store.pin(pos);
    let mut rec = Recovered::default();
    let (kind, payload) = store.read(pos).unwrap();
    rec.record(pos, kind, payload);
    let cfg = H::new(Policies::default()).core.cfg.clone();
    let router = Router::with_known_file(None, &[5]).unwrap();
    let durable = store.durable_mark();
    let mut h = H {
        core: Core::new(cfg, Box::new(store), router, rec, T0 + 100 * MS),
        durable,
        now: T0 + 100 * MS,
        saved: Vec::new(),
    };
    h.advance(400);
    h.caller(1, 100);
    let r = h.replies(1);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].1, Status::Timeout);
    h.worker(2, &[5], 10);
    assert!(h.deliveries(2).is_empty());
}

#[test]
fn an_idle_core_sets_no_timer_per_request() {
    let mut h = H::new(Policies::default());
    h.caller(1, 100);
    let before = h.core.timers.len();
    for i in 1..=100 {
        h.request(1, i, 5, wire::REQ_ASYNC, 0, "x");
    }
    // One acknowledgement timer at most, nothing per request.
    assert!(
        h.core.timers.len() <= before + 1,
        "async requests need no timer"
    );
}

#[test]
fn timers_of_answered_requests_do_not_pile_up() {
    let mut h = H::new(Policies::default());
    h.caller(1, 100);
    h.worker(2, &[5], 100_000);
    for i in 1..=20_000 {
        // Sync calls with a 60 s deadline, each answered at once.
        h.request(1, i, 5, 0, 60_000, "x");
        let d = h.deliveries(2);
        h.result(2, d[0].0, Status::Ok, "y").unwrap();
    }
    assert!(
        h.core.timers.len() < 8192,
        "{} timers held for no live request",
        h.core.timers.len()
    );
    assert_eq!(h.replies(1).len(), 20_000);
}

#[test]
fn a_newer_peer_is_answered_with_this_hubs_version_and_an_older_one_with_its_own() {
    let mut h = H::new(Policies::default());
    for (t, asked, got) in [(1, 3u16, wire::VERSION), (2, 1, 1)] {
        h.core.open(t, "peer".into(), h.now);
        let mut b = Vec::new();
        wire::encode_hello(&mut b, WireRole::Caller, 7 + t as u64, 0, b"c", b"", &[]);
        // The version follows the 8-byte header and the 4-byte magic.
        b[12..14].copy_from_slice(&asked.to_be_bytes());
        h.feed(t, &b).unwrap();
        assert_eq!(h.core.conn(t).unwrap().version, got);
    }
    // A version-1 worker gets DELIVER without the time left (type 0x20).
    h.core.open(3, "old worker".into(), h.now);
    let mut b = Vec::new();
    wire::encode_hello(&mut b, WireRole::Worker, 1, 10, b"w", b"", &[5]);
    b[12..14].copy_from_slice(&1u16.to_be_bytes());
    h.feed(3, &b).unwrap();
    h.out(3);
    h.request(1, 1, 5, 0, 1000, "x");
    let out = &h.core.conn(3).unwrap().out;
    let first_deliver = out[4];
    assert_eq!(first_deliver, wire::FrameType::Deliver as u8);
}

#[test]
fn a_short_service_limit_behind_a_long_one_is_kept() {
    // One worker serves two proxies with different limits; the later, shorter one must not
    // wait for the earlier, longer one.
    let mut h = H::new(policies(&["5:service-ms=10000", "6:service-ms=500"]));
    h.caller(1, 100);
    h.worker(2, &[5, 6], 10);
    h.request(1, 1, 5, 0, 0, "long");
    h.request(1, 2, 6, 0, 0, "short");
    let d = h.deliveries(2);
    assert_eq!(d.len(), 2);
    assert_eq!(d[1].4, "short");
    h.advance(500);
    assert!(
        h.out(2).contains(&Out::Cancel(d[1].0)),
        "the 500 ms limit was not kept"
    );
    assert_eq!(h.proxy_stats(6)["outcomes"]["retried"], 1);
    assert_eq!(h.proxy_stats(5)["outcomes"]["retried"], 0);
}

#[test]
fn the_hubs_own_shutdown_is_not_a_failed_attempt() {
    let mut h = H::new(policies(&["5:attempts=1"]));
    h.caller(1, 100);
    h.worker(2, &[5], 10);
    h.request(1, 1, 5, 0, 0, "x");
    assert_eq!(h.deliveries(2).len(), 1);
    h.core.quit();
    h.core.closed(2, "closed by the hub", h.now);
    let r = h.replies(1);
    assert!(
        !r.iter().any(|x| x.1 == Status::System),
        "a request on its last attempt failed because the hub stopped: {r:?}"
    );
    assert_eq!(h.proxy_stats(5)["outcomes"]["retried"], 0);
}
