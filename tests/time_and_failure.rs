//! Time and failure, with real processes: callers that ride through hub restarts, deadlines the
//! hub keeps, poison requests, stopped workers, cancels that cancel, queue-on-timeout, forward.

mod common;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{echo_worker, slow_echo_worker, Hub, InProc, Proc};
use dco::client::{CallFlags, Session, SessionConfig};
use dco::wire::HubAddr;
use dco::worker::{self, Delivery, Outcome, ReplyBuf, WorkerConfig};
use dco::Status;

fn session(addr: &str) -> Session {
    let mut cfg = SessionConfig::with_hubs(HubAddr::parse_list(addr).unwrap());
    cfg.connect_timeout = Duration::from_secs(2);
    Session::new(cfg)
}

fn body_of(i: u64) -> Vec<u8> {
    format!("request {i}").into_bytes()
}

/// Sends `n` requests to `proxy` in one batch and waits until the hub has them all.
fn send_batch(s: &mut Session, proxy: i32, n: u64) -> Vec<u64> {
    let ids: Vec<u64> = (0..n)
        .map(|i| {
            s.write(&body_of(i)).unwrap();
            s.send(proxy, true, false).unwrap()
        })
        .collect();
    s.flush().unwrap();
    ids
}

fn ride_through(restart: fn(&mut Hub)) {
    let mut hub = Hub::start(&["--proxy-ids", "1"]);
    let addr = hub.addr.clone();
    let mut s = session(&addr);
    let ids = send_batch(&mut s, 1, 1000);
    // The caller waits on its first answer (60 s deadline) while the hub goes down and comes
    // back; the answers come once a worker serves the proxy after the restart.
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let r = s.read(*id, Some(Duration::from_secs(60)));
            let r = r.unwrap_or_else(|e| panic!("request {id} ({i}): {e}"));
            assert_eq!(r.body, body_of(i as u64));
            got.push(*id);
        }
        // Every answer once: nothing more is outstanding.
        assert_eq!(s.outstanding(), 0);
        got.len()
    });
    std::thread::sleep(Duration::from_millis(300));
    restart(&mut hub);
    std::thread::sleep(Duration::from_millis(300));
    let _w = echo_worker(&addr, 1);
    assert_eq!(reader.join().unwrap(), 1000);
}

#[test]
fn a_read_with_a_60s_deadline_rides_through_a_hub_kill() {
    ride_through(Hub::kill_and_restart);
}

#[test]
fn a_read_with_a_60s_deadline_rides_through_a_sigterm_restart() {
    ride_through(Hub::terminate_and_restart);
}

#[test]
fn a_call_rides_through_a_hub_restart() {
    let mut hub = Hub::start(&["--proxy-ids", "1"]);
    let addr = hub.addr.clone();
    let mut s = session(&addr);
    hub.proc.kill();
    let restarter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        hub.kill_and_restart();
        hub
    });
    let _w = InProc::start(&addr, vec![1], |d, r| {
        r.write(d.body);
        Outcome::Success
    });
    s.write(b"through").unwrap();
    let r = s.call(1, Some(Duration::from_secs(30))).unwrap();
    assert_eq!(r.body, b"through");
    let _hub = restarter.join().unwrap();
}

/// Run as a process by `a_poison_request_gives_up_while_others_are_answered`: an echo worker
/// that dies on the body "poison". Does nothing when run as an ordinary test.
#[test]
fn poison_worker_process() {
    let Ok(hub) = std::env::var("DCO_TEST_POISON_WORKER_HUB") else {
        return;
    };
    let mut cfg = WorkerConfig::new(HubAddr::parse_list(&hub).unwrap(), vec![1]);
    cfg.capacity = 4;
    let stop = AtomicBool::new(false);
    let mut h = |d: &Delivery<'_>, r: &mut ReplyBuf<'_>| {
        if d.body == b"poison" {
            std::process::abort();
        }
        r.write(d.body);
        Outcome::Success
    };
    let _ = worker::run(&cfg, &mut h, &stop);
}

#[test]
fn a_poison_request_gives_up_while_others_are_answered() {
    let hub = Hub::start(&["--proxy", "1:attempts=3,backoff-ms=100"]);
    let addr = hub.addr.clone();
    // A supervisor restarts the worker process whenever it dies.
    let stop = Arc::new(AtomicBool::new(false));
    let starts = Arc::new(AtomicU64::new(0));
    let supervisor = {
        let (stop, starts, addr) = (stop.clone(), starts.clone(), addr.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let child = Command::new(std::env::current_exe().unwrap())
                    .args(["poison_worker_process", "--exact", "--nocapture"])
                    .env("DCO_TEST_POISON_WORKER_HUB", &addr)
                    .env("DCO_LOG", "off")
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                starts.fetch_add(1, Ordering::SeqCst);
                let mut p = Proc(child);
                while !stop.load(Ordering::SeqCst) {
                    if let Ok(Some(_)) = p.0.try_wait() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        })
    };
    hub.wait_workers(1, 1);
    let mut s = session(&addr);
    s.write(b"poison").unwrap();
    let poison = s.send(1, true, false).unwrap();
    let others = send_batch(&mut s, 1, 50);
    for (i, id) in others.iter().enumerate() {
        let r = s.read(*id, Some(Duration::from_secs(30))).unwrap();
        assert_eq!(r.body, body_of(i as u64));
    }
    let e = s.read(poison, Some(Duration::from_secs(30))).unwrap_err();
    assert_eq!(e.status, Status::System, "{e}");
    assert!(e.message.contains("gave up after 3 attempts"), "{e}");
    stop.store(true, Ordering::SeqCst);
    supervisor.join().unwrap();
    assert!(starts.load(Ordering::SeqCst) >= 3);
    let v = hub.stats();
    let p = &v["proxies"][0];
    // The poison was retried twice; requests that shared its worker at the first crash were
    // retried once each (alone, so they were not charged again).
    assert!(p["outcomes"]["retried"].as_u64().unwrap() >= 2, "{p}");
    assert_eq!(p["outcomes"]["system"], 1, "{p}");
    assert_eq!(p["outcomes"]["ok"], 50, "{p}");
}

#[test]
fn a_stopped_workers_requests_go_to_the_other_worker() {
    let hub = Hub::start(&[
        "--proxy",
        "1:service-ms=1000,backoff-ms=50",
        "--overdue-grace-ms",
        "1000",
    ]);
    let addr = hub.addr.clone();
    // The first worker takes the requests and is stopped (SIGSTOP) while it holds them.
    let mut stuck = slow_echo_worker(&addr, 1, 60_000);
    hub.wait_workers(1, 1);
    let mut s = session(&addr);
    let ids = send_batch(&mut s, 1, 5);
    hub.wait_worker_inflight(5);
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(stuck.pid() as i32, libc::SIGSTOP);
    }
    let _good = echo_worker(&addr, 1);
    for (i, id) in ids.iter().enumerate() {
        let r = s.read(*id, Some(Duration::from_secs(20))).unwrap();
        assert_eq!(r.body, body_of(i as u64));
    }
    // The stopped worker is dropped after the grace period.
    hub.wait_workers(1, 1);
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let v = hub.stats();
        let overdue = v["workers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["overdue"].as_u64().unwrap_or(0) > 0);
        if !overdue {
            break;
        }
        assert!(
            Instant::now() < until,
            "the stopped worker was not dropped: {v}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(stuck.pid() as i32, libc::SIGCONT);
    }
    stuck.kill();
}

#[test]
fn an_expired_request_is_never_seen_by_any_worker_even_across_a_restart() {
    let mut hub = Hub::start(&["--proxy-ids", "1"]);
    let addr = hub.addr.clone();
    let mut s = session(&addr);
    s.write(b"expires").unwrap();
    let a = s.send_sync(1, Duration::from_millis(300)).unwrap();
    s.write(b"expires after a restart").unwrap();
    let b = s.send_sync(1, Duration::from_millis(600)).unwrap();
    s.flush().unwrap();
    std::thread::sleep(Duration::from_millis(400));
    hub.kill_and_restart();
    std::thread::sleep(Duration::from_millis(400));
    let seen = Arc::new(AtomicU64::new(0));
    let counter = seen.clone();
    let _w = InProc::start(&addr, vec![1], move |d, r| {
        if d.body.starts_with(b"expires") {
            counter.fetch_add(1, Ordering::SeqCst);
        }
        r.write(d.body);
        Outcome::Success
    });
    for id in [a, b] {
        let e = s.read(id, Some(Duration::from_secs(10))).unwrap_err();
        assert_eq!(e.status, Status::Timeout, "{e}");
        assert!(e.message.contains("expired in the queue"), "{e}");
    }
    // The worker works: a fresh request is answered.
    s.write(b"fresh").unwrap();
    assert_eq!(
        s.call(1, Some(Duration::from_secs(10))).unwrap().body,
        b"fresh"
    );
    assert_eq!(
        seen.load(Ordering::SeqCst),
        0,
        "a worker saw an expired request"
    );
    // (Whether each expired before or after the restart depends on this machine's speed; the
    // counter itself is checked by the core's unit tests.)
}

#[test]
fn a_cancelled_request_stays_cancelled_across_a_restart() {
    let mut hub = Hub::start(&["--proxy-ids", "1"]);
    let addr = hub.addr.clone();
    let mut s = session(&addr);
    s.write(b"cancel me").unwrap();
    let a = s.send(1, false, false).unwrap();
    s.flush().unwrap();
    s.cancel(a).unwrap();
    // A buffered request cancelled before it is written: its CANCEL follows it.
    s.write(b"cancel me").unwrap();
    let buffered = s.send(1, true, false).unwrap();
    s.cancel(buffered).unwrap();
    s.write(b"keep me").unwrap();
    let b = s.send(1, false, false).unwrap();
    s.flush().unwrap();
    hub.kill_and_restart();
    let seen = Arc::new(AtomicU64::new(0));
    let counter = seen.clone();
    let _w = InProc::start(&addr, vec![1], move |d, r| {
        if d.body == b"cancel me" {
            counter.fetch_add(1, Ordering::SeqCst);
        }
        r.write(d.body);
        Outcome::Success
    });
    assert_eq!(
        s.read(b, Some(Duration::from_secs(20))).unwrap().body,
        b"keep me"
    );
    for id in [a, buffered] {
        let e = s.read(id, Some(Duration::ZERO)).unwrap_err();
        assert_eq!(e.status, Status::Cancelled);
    }
    assert_eq!(seen.load(Ordering::SeqCst), 0, "a cancelled request ran");
}

#[test]
fn queue_on_timeout_parks_the_answer_across_a_restart() {
    let mut hub = Hub::start(&["--proxy-ids", "1"]);
    let addr = hub.addr.clone();
    let _w = slow_echo_worker(&addr, 1, 1500);
    hub.wait_workers(1, 1);
    let mut s = session(&addr);
    s.write(b"parked").unwrap();
    let e = s
        .call_with(
            1,
            CallFlags::QUEUE_ON_TIMEOUT,
            Some(Duration::from_millis(200)),
        )
        .unwrap_err();
    assert_eq!(e.status, Status::Queued, "{e}");
    let id = s.last_request_id();
    hub.kill_and_restart();
    let r = s.read(id, Some(Duration::from_secs(30))).unwrap();
    assert_eq!(r.body, b"parked");
    // Without the flag, the same call is sync: the timeout gives the request up.
    s.write(b"given up").unwrap();
    let e = s.call(1, Some(Duration::from_millis(200))).unwrap_err();
    assert_eq!(e.status, Status::Timeout, "{e}");
    let e = s
        .read(s.last_request_id(), Some(Duration::ZERO))
        .unwrap_err();
    assert_eq!(e.status, Status::UnknownId);
}

#[test]
fn a_proxy_default_of_queue_on_timeout_applies_to_plain_calls() {
    let hub = Hub::start(&["--proxy", "1:mode=queue-on-timeout"]);
    let addr = hub.addr.clone();
    let _w = slow_echo_worker(&addr, 1, 2000);
    hub.wait_workers(1, 1);
    let mut s = session(&addr);
    s.write(b"by default").unwrap();
    // The hub's QUEUED notice must reach the library before the timeout.
    let e = s.call(1, Some(Duration::from_millis(500))).unwrap_err();
    assert_eq!(e.status, Status::Queued, "{e}");
    let r = s
        .read(s.last_request_id(), Some(Duration::from_secs(20)))
        .unwrap();
    assert_eq!(r.body, b"by default");
    let v = hub.stats();
    assert_eq!(v["proxies"][0]["outcomes"]["queued"], 1, "{v}");
}

#[test]
fn a_forwarded_request_is_answered_to_its_caller_and_the_worker_learns_its_time() {
    let hub = Hub::start(&["--proxy-ids", "1,2"]);
    let addr = hub.addr.clone();
    let _front = InProc::start(&addr, vec![1], |d, r| {
        r.write(b"via 1: ");
        r.write(d.body);
        Outcome::Forward(2)
    });
    let _back = InProc::start(&addr, vec![2], |d, r| {
        let left = d.remaining().map(|t| t.as_millis()).unwrap_or(0);
        assert!(left > 0 && left <= 10_000, "time left {left} ms");
        r.write(d.body);
        r.write(b", answered by 2");
        Outcome::Success
    });
    hub.wait_workers(1, 1);
    hub.wait_workers(2, 1);
    let mut s = session(&addr);
    s.write(b"hello").unwrap();
    let r = s.call(1, Some(Duration::from_secs(10))).unwrap();
    assert_eq!(r.body, b"via 1: hello, answered by 2");
}

#[test]
fn retry_later_from_a_worker_is_retried_then_answered() {
    let hub = Hub::start(&["--proxy", "1:attempts=3,backoff-ms=50"]);
    let addr = hub.addr.clone();
    let _w = InProc::start(&addr, vec![1], |d, r| {
        if d.attempt < 3 {
            r.write(b"far side down");
            return Outcome::RetryLater;
        }
        r.write(format!("attempt {}", d.attempt).as_bytes());
        Outcome::Success
    });
    hub.wait_workers(1, 1);
    let mut s = session(&addr);
    s.write(b"x").unwrap();
    let r = s.call(1, Some(Duration::from_secs(10))).unwrap();
    assert_eq!(r.body, b"attempt 3");
}

#[test]
fn dco_call_exit_status_tells_the_outcomes_apart() {
    let hub = Hub::start(&["--proxy-ids", "1"]);
    let addr = hub.addr.clone();
    let _w = slow_echo_worker(&addr, 1, 1000);
    hub.wait_workers(1, 1);
    let run = |extra: &[&str]| {
        let mut c = Command::new(common::dco_bin());
        c.args([
            "call",
            "--proxy",
            "1",
            "--hub",
            &addr,
            "--timeout-ms",
            "200",
        ])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        drop(child.stdin.take());
        child.wait_with_output().unwrap()
    };
    let o = run(&[]);
    assert_eq!(o.status.code(), Some(2), "timeout");
    let o = run(&["--queue-on-timeout"]);
    assert_eq!(o.status.code(), Some(14), "queued");
    // Another process picks the parked answer up with the words it was given.
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let hint = err
        .lines()
        .find_map(|l| l.split("read it later with: dco call ").nth(1))
        .unwrap_or_else(|| panic!("no hint in: {err}"))
        .to_string();
    let args: Vec<&str> = hint.split_whitespace().collect();
    let o = Command::new(common::dco_bin())
        .args(["call", "--hub", &addr, "--timeout-ms", "20000"])
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn a_delivery_cancelled_while_its_worker_is_busy_is_not_run() {
    let hub = Hub::start(&["--proxy-ids", "1"]);
    let addr = hub.addr.clone();
    let handled = Arc::new(std::sync::Mutex::new(Vec::<Vec<u8>>::new()));
    let skipped = Arc::new(std::sync::Mutex::new(Vec::<Vec<u8>>::new()));
    struct Busy {
        handled: Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
        skipped: Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
    }
    impl worker::Handler for Busy {
        fn handle(&mut self, d: &Delivery<'_>, r: &mut ReplyBuf<'_>) -> Outcome {
            if d.body == b"slow" {
                std::thread::sleep(Duration::from_millis(800));
            }
            self.handled.lock().unwrap().push(d.body.to_vec());
            r.write(d.body);
            Outcome::Success
        }
        fn cancelled(&mut self, d: &Delivery<'_>) {
            self.skipped.lock().unwrap().push(d.body.to_vec());
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut h = Busy {
        handled: handled.clone(),
        skipped: skipped.clone(),
    };
    let cfg = WorkerConfig::new(HubAddr::parse_list(&addr).unwrap(), vec![1]);
    let s2 = stop.clone();
    let w = std::thread::spawn(move || worker::run(&cfg, &mut h, &s2));
    hub.wait_workers(1, 1);
    let mut s = session(&addr);
    // Both in one write, so the worker holds both while it runs the first.
    s.write(b"slow").unwrap();
    let slow = s.send(1, true, false).unwrap();
    s.write(b"victim").unwrap();
    let victim = s.send(1, true, false).unwrap();
    s.flush().unwrap();
    hub.wait_worker_inflight(2);
    s.cancel(victim).unwrap();
    assert_eq!(
        s.read(slow, Some(Duration::from_secs(10))).unwrap().body,
        b"slow"
    );
    assert_eq!(
        s.read(victim, Some(Duration::ZERO)).unwrap_err().status,
        Status::Cancelled
    );
    // The worker answers the skipped delivery (so the hub frees its place) without running it.
    hub.wait_worker_inflight(0);
    stop.store(true, Ordering::SeqCst);
    let _ = w.join();
    assert_eq!(*handled.lock().unwrap(), vec![b"slow".to_vec()]);
    assert_eq!(*skipped.lock().unwrap(), vec![b"victim".to_vec()]);
}

#[test]
fn one_callers_burst_does_not_hold_another_callers_call() {
    let hub = Hub::start(&["--proxy-ids", "1"]);
    let addr = hub.addr.clone();
    let bursts = Arc::new(AtomicU64::new(0));
    let counter = bursts.clone();
    // One request at a time, 5 ms each: 1,000 of them take 5 s or more.
    let mut cfg = WorkerConfig::new(HubAddr::parse_list(&addr).unwrap(), vec![1]);
    cfg.capacity = 1;
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let w = std::thread::spawn(move || {
        let mut h = move |d: &Delivery<'_>, r: &mut ReplyBuf<'_>| {
            std::thread::sleep(Duration::from_millis(5));
            if d.body == b"burst" {
                counter.fetch_add(1, Ordering::SeqCst);
            }
            r.write(d.body);
            Outcome::Success
        };
        worker::run(&cfg, &mut h, &s2)
    });
    hub.wait_workers(1, 1);
    let mut b = session(&addr);
    b.connect().unwrap();
    let mut a = session(&addr);
    for _ in 0..1000 {
        a.write(b"burst").unwrap();
        a.send(1, true, false).unwrap();
    }
    a.flush().unwrap();
    b.write(b"single").unwrap();
    assert_eq!(
        b.call(1, Some(Duration::from_secs(30))).unwrap().body,
        b"single"
    );
    // Served in turn: the single call did not wait for the burst.
    let before = bursts.load(Ordering::SeqCst);
    assert!(
        before < 200,
        "{before} of the burst ran before the single call"
    );
    stop.store(true, Ordering::SeqCst);
    drop(a);
    let _ = w.join();
}
