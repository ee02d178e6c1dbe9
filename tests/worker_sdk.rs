//! The Rust worker SDK against a real hub: a Pool running requests at once, the cancel signal
//! a running request sees, a Service answering from other threads, and the init and done hooks.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Hub;
use dco::client::{Session, SessionConfig};
use dco::wire::HubAddr;
use dco::worker::{self, Pool, PoolHandler, Request, Responder, Response, Service, WorkerConfig};
use dco::Status;

fn session(addr: &str) -> Session {
    Session::new(SessionConfig::with_hubs(HubAddr::parse_list(addr).unwrap()))
}

#[derive(Default)]
struct Sleeper {
    running: AtomicU64,
    max_running: AtomicU64,
    cancelled: AtomicU64,
    inits: AtomicU64,
    dones: AtomicU64,
}

impl PoolHandler for Sleeper {
    fn init(&self) -> Result<(), String> {
        self.inits.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn handle(&self, req: &Request) -> Response {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        let ms: u64 = std::str::from_utf8(&req.body)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let until = Instant::now() + Duration::from_millis(ms);
        while Instant::now() < until && !req.is_cancelled() {
            std::thread::sleep(Duration::from_millis(5));
        }
        if req.is_cancelled() {
            self.cancelled.fetch_add(1, Ordering::SeqCst);
        }
        self.running.fetch_sub(1, Ordering::SeqCst);
        Response::success(format!("slept {ms}")).with_rcode(7)
    }

    fn done(&self) {
        // Runs after the threads finished: nothing is running any more.
        assert_eq!(self.running.load(Ordering::SeqCst), 0);
        self.dones.fetch_add(1, Ordering::SeqCst);
    }
}

fn cfg(hub: &Hub, proxy: i32, capacity: u32) -> WorkerConfig {
    let mut c = WorkerConfig::new(HubAddr::parse_list(&hub.addr).unwrap(), vec![proxy]);
    c.capacity = capacity;
    c
}

#[test]
fn a_pool_runs_requests_at_once_sees_cancels_and_drains_before_done() {
    let hub = Hub::start(&[]);
    let pool = Arc::new(Pool::new(6, Sleeper::default()));
    let state = pool.clone();
    let state = state.handler();
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let (pool, stop, c) = (pool.clone(), stop.clone(), cfg(&hub, 1, 12));
        std::thread::spawn(move || worker::run_service(&c, &*pool, &stop))
    };
    hub.wait_workers(1, 1);
    assert_eq!(state.inits.load(Ordering::SeqCst), 1);
    let mut s = session(&hub.addr);
    let ids: Vec<u64> = (0..12)
        .map(|_| {
            s.write(b"200").unwrap();
            s.send(1, true, false).unwrap()
        })
        .collect();
    s.flush().unwrap();
    for id in ids {
        let r = s.read(id, Some(Duration::from_secs(20))).unwrap();
        assert_eq!((r.body.as_slice(), r.rcode), (&b"slept 200"[..], 7));
    }
    assert_eq!(state.max_running.load(Ordering::SeqCst), 6);

    // A running request whose caller cancels it sees its signal.
    s.write(b"10000").unwrap();
    let id = s.send(1, false, false).unwrap();
    hub.wait_worker_inflight(1);
    s.cancel(id).unwrap();
    let until = Instant::now() + Duration::from_secs(5);
    while state.cancelled.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < until, "the handler never saw the cancel");
        std::thread::sleep(Duration::from_millis(10));
    }

    // A stop with requests in flight answers them first, then runs done.
    let ids: Vec<u64> = (0..3)
        .map(|_| {
            s.write(b"300").unwrap();
            s.send(1, true, false).unwrap()
        })
        .collect();
    s.flush().unwrap();
    hub.wait_worker_inflight(3);
    stop.store(true, Ordering::SeqCst);
    worker.join().unwrap().unwrap();
    assert_eq!(state.dones.load(Ordering::SeqCst), 1);
    for id in ids {
        let r = s.read(id, Some(Duration::from_secs(5))).unwrap();
        assert_eq!(r.body, b"slept 300");
    }
}

/// A service that answers from a thread of its own, later.
struct Later;

impl Service for Later {
    fn start(&self, req: Request, responder: Responder) {
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            let r = match req.body.as_slice() {
                b"retry" => Response::retry_later("not now"),
                b"fail" => Response::failure(12, "no"),
                b"forward" => Response::forward(2, "forwarded"),
                b"drop" => return drop(responder),
                other => Response::success(other.to_ascii_uppercase()),
            };
            responder.send(r);
        });
    }
}

#[test]
fn a_service_answers_from_other_threads_with_every_outcome() {
    let hub = Hub::start(&["--proxy", "1:attempts=2,backoff-ms=10"]);
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let (stop, c) = (stop.clone(), cfg(&hub, 1, 64));
        std::thread::spawn(move || worker::run_service(&c, &Later, &stop))
    };
    let echo = common::echo_worker(&hub.addr, 2);
    hub.wait_workers(1, 1);
    hub.wait_workers(2, 1);
    let mut s = session(&hub.addr);
    let call = |s: &mut Session, b: &[u8]| {
        s.write(b).unwrap();
        s.call(1, Some(Duration::from_secs(10)))
    };
    assert_eq!(call(&mut s, b"abc").unwrap().body, b"ABC");
    let e = call(&mut s, b"fail").unwrap_err();
    assert_eq!((e.status, e.rcode), (Status::AppFail, 12));
    assert_eq!(call(&mut s, b"forward").unwrap().body, b"forwarded");
    let e = call(&mut s, b"retry").unwrap_err();
    assert_eq!(e.status, Status::System);
    assert!(e.message.contains("not now"), "{e}");
    // A responder dropped unanswered is a "retry later", never a lost request.
    let e = call(&mut s, b"drop").unwrap_err();
    assert_eq!(e.status, Status::System);
    assert!(e.message.contains("without an answer"), "{e}");
    stop.store(true, Ordering::SeqCst);
    worker.join().unwrap().unwrap();
    drop(echo);
}

struct FailingInit;

impl Service for FailingInit {
    fn init(&self) -> Result<(), String> {
        Err("the database is down".into())
    }
    fn start(&self, _req: Request, _responder: Responder) {
        unreachable!("a service whose init failed is never started")
    }
}

#[test]
fn a_failing_init_hook_stops_the_worker_before_it_announces() {
    let hub = Hub::start(&[]);
    let stop = AtomicBool::new(false);
    let e = worker::run_service(&cfg(&hub, 1, 8), &FailingInit, &stop).unwrap_err();
    assert_eq!(e.status, Status::AppFail);
    assert!(e.message.contains("the database is down"), "{e}");
    let v = hub.stats();
    assert_eq!(v["workers"].as_array().map(|a| a.len()).unwrap_or(0), 0);
}

#[test]
fn a_pool_given_two_hubs_serves_both_and_stops_once() {
    let a = Hub::start(&[]);
    let b = Hub::start(&[]);
    let pool = Arc::new(Pool::new(4, Sleeper::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let both = format!("{},{}", a.addr, b.addr);
        let mut c = WorkerConfig::new(HubAddr::parse_list(&both).unwrap(), vec![4]);
        c.capacity = 8;
        let (pool, stop) = (pool.clone(), stop.clone());
        std::thread::spawn(move || worker::run_service(&c, &*pool, &stop))
    };
    a.wait_workers(4, 1);
    b.wait_workers(4, 1);
    let state = pool.handler();
    assert_eq!(
        state.inits.load(Ordering::SeqCst),
        1,
        "one init for all hubs"
    );
    // Requests through both hubs at once share the one pool.
    let (mut sa, mut sb) = (session(&a.addr), session(&b.addr));
    let mut ids = Vec::new();
    for _ in 0..4 {
        sa.write(b"100").unwrap();
        sb.write(b"100").unwrap();
        ids.push((
            sa.send(4, true, false).unwrap(),
            sb.send(4, true, false).unwrap(),
        ));
    }
    sa.flush().unwrap();
    sb.flush().unwrap();
    for (ia, ib) in ids {
        assert_eq!(
            sa.read(ia, Some(Duration::from_secs(20))).unwrap().body,
            b"slept 100"
        );
        assert_eq!(
            sb.read(ib, Some(Duration::from_secs(20))).unwrap().body,
            b"slept 100"
        );
    }
    assert_eq!(state.max_running.load(Ordering::SeqCst), 4);
    stop.store(true, Ordering::SeqCst);
    worker.join().unwrap().unwrap();
    assert_eq!(
        state.dones.load(Ordering::SeqCst),
        1,
        "one done for all hubs"
    );
}
