//! End to end: real hub and worker processes, real sockets, the Rust caller API and the CLI.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{dco_bin, echo_worker, slow_echo_worker, Hub, InProc, Proc};
use dco::client::{Session, SessionConfig};
use dco::wire::HubAddr;
use dco::worker::Outcome;
use dco::Status;

fn session(addr: &str) -> Session {
    Session::new(SessionConfig::with_hubs(HubAddr::parse_list(addr).unwrap()))
}

const T: Option<Duration> = Some(Duration::from_secs(10));

fn call(s: &mut Session, proxy: i32, body: &[u8]) -> dco::Result<Vec<u8>> {
    s.write(body)?;
    s.call(proxy, T).map(|r| r.body)
}

fn proxy_stats(hub: &Hub, proxy: i32) -> serde_json::Value {
    hub.stats()["proxies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == proxy)
        .cloned()
        .unwrap_or(serde_json::Value::Null)
}

#[test]
fn echo_over_tcp_and_unix_socket() {
    let hub = Hub::start(&[]);
    let _w = echo_worker(&hub.addr, 5);
    hub.wait_workers(5, 1);
    for addr in [hub.addr.clone(), hub.unix_addr()] {
        let mut s = session(&addr);
        assert_eq!(call(&mut s, 5, b"hello").unwrap(), b"hello");
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(call(&mut s, 5, &big).unwrap(), big);
        assert_eq!(call(&mut s, 5, b"").unwrap(), b"");
    }
}

#[test]
fn cli_call_prints_the_reply_and_exits_with_the_outcome() {
    let hub = Hub::start(&[]);
    let _w = echo_worker(&hub.addr, 7);
    hub.wait_workers(7, 1);
    let run = |proxy: &str| {
        let mut child = Command::new(dco_bin())
            .args(["call", "--proxy", proxy, "--hub", &hub.addr])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"line one\nline two\n")
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let ok = run("7");
    assert!(ok.status.success());
    assert_eq!(ok.stdout, b"line one\nline two\n");
    let none = run("8");
    assert_eq!(none.status.code(), Some(-Status::NoRoute.code()));
    assert!(String::from_utf8_lossy(&none.stderr).contains("DCO_E_NO_ROUTE"));
}

#[test]
fn buffered_batch_of_65536_read_back_in_reverse() {
    let hub = Hub::start(&[]);
    let _w = echo_worker(&hub.addr, 1);
    hub.wait_workers(1, 1);
    let mut s = session(&hub.addr);
    let n = 65_536u64;
    let mut ids = Vec::with_capacity(n as usize);
    for i in 0..n {
        s.write(&i.to_be_bytes()).unwrap();
        ids.push(s.send(1, true, false).unwrap());
    }
    s.flush().unwrap();
    assert_eq!(s.outstanding(), n as usize);
    for (i, id) in ids.iter().enumerate().rev() {
        let r = s.read(*id, T).unwrap();
        assert_eq!(r.body, (i as u64).to_be_bytes());
    }
    assert_eq!(s.outstanding(), 0);
    assert_eq!(s.read(ids[0], T).unwrap_err().status, Status::UnknownId);
}

#[test]
fn quota_from_the_hub_gives_busy() {
    let hub = Hub::start(&["--quota", "10"]);
    let _w = echo_worker(&hub.addr, 1);
    hub.wait_workers(1, 1);
    let mut s = session(&hub.addr);
    s.connect().unwrap();
    let ids: Vec<u64> = (0..10).map(|_| s.send(1, false, false).unwrap()).collect();
    let e = s.send(1, false, false).unwrap_err();
    assert_eq!(e.status, Status::Busy);
    // Reading one frees one place.
    s.read(ids[0], T).unwrap();
    let id = s.send(1, false, false).unwrap();
    for id in ids[1..].iter().chain([&id]) {
        s.read(*id, T).unwrap();
    }
}

#[test]
fn requests_spread_over_workers_of_one_proxy() {
    let hub = Hub::start(&[]);
    let _a = echo_worker(&hub.addr, 3);
    let _b = echo_worker(&hub.addr, 3);
    hub.wait_workers(3, 2);
    let mut s = session(&hub.addr);
    let ids: Vec<u64> = (0..2000u32)
        .map(|i| {
            s.write(&i.to_be_bytes()).unwrap();
            s.send(3, true, false).unwrap()
        })
        .collect();
    s.flush().unwrap();
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(s.read(*id, T).unwrap().body, (i as u32).to_be_bytes());
    }
    let stats = hub.stats();
    let workers = stats["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2);
    for w in workers {
        assert!(
            w["delivered"].as_u64().unwrap() > 0,
            "both workers serve: {stats}"
        );
    }
}

#[test]
fn unknown_proxy_is_no_route_and_replies_come_in_any_order() {
    let hub = Hub::start(&[]);
    let _slow = InProc::start(&hub.addr, vec![1], |d, r| {
        std::thread::sleep(Duration::from_millis(300));
        r.write(d.body);
        Outcome::Success
    });
    let _fast = InProc::start(&hub.addr, vec![2], |d, r| {
        r.write(d.body);
        Outcome::Success
    });
    hub.wait_workers(1, 1);
    hub.wait_workers(2, 1);
    let mut s = session(&hub.addr);
    s.write(b"slow").unwrap();
    let slow = s.send(1, false, false).unwrap();
    s.write(b"fast").unwrap();
    let fast = s.send(2, false, false).unwrap();
    let lost = s.send(42, false, false).unwrap();
    // The fast reply is there while the slow one is not.
    assert_eq!(s.read(fast, T).unwrap().body, b"fast");
    assert_eq!(s.read(lost, T).unwrap_err().status, Status::NoRoute);
    assert_eq!(
        s.read(slow, Some(Duration::ZERO)).unwrap_err().status,
        Status::Timeout
    );
    assert_eq!(s.read(slow, T).unwrap().body, b"slow");
}

#[test]
fn application_failure_carries_the_return_code() {
    let hub = Hub::start(&[]);
    let _w = InProc::start(&hub.addr, vec![4], |d, r| {
        if d.body.starts_with(b"fail") {
            r.write(b"card declined");
            Outcome::Failure(42)
        } else {
            r.write(d.body);
            Outcome::Success
        }
    });
    hub.wait_workers(4, 1);
    let mut s = session(&hub.addr);
    let e = call(&mut s, 4, b"fail now").unwrap_err();
    assert_eq!(e.status, Status::AppFail);
    assert_eq!(e.rcode, 42);
    assert_eq!(e.message, "card declined");
    assert_eq!(call(&mut s, 4, b"ok").unwrap(), b"ok");
}

#[test]
fn timeout_then_late_reply_is_dropped() {
    let hub = Hub::start(&[]);
    let _w = InProc::start(&hub.addr, vec![6], |d, r| {
        std::thread::sleep(Duration::from_millis(500));
        r.write(d.body);
        Outcome::Success
    });
    hub.wait_workers(6, 1);
    let mut s = session(&hub.addr);
    s.write(b"late").unwrap();
    let e = s.call(6, Some(Duration::from_millis(50))).unwrap_err();
    assert_eq!(e.status, Status::Timeout);
    // The abandoned request's reply does not leak into the next call.
    assert_eq!(call(&mut s, 6, b"next").unwrap(), b"next");
    assert_eq!(s.outstanding(), 0);
}

#[test]
fn a_dead_workers_requests_go_to_another_worker() {
    let hub = Hub::start(&[]);
    let mut slow = slow_echo_worker(&hub.addr, 9, 60000);
    hub.wait_workers(9, 1);
    let mut s = session(&hub.addr);
    let ids: Vec<u64> = (0..20u32)
        .map(|i| {
            s.write(&i.to_be_bytes()).unwrap();
            s.send(9, true, false).unwrap()
        })
        .collect();
    s.flush().unwrap();
    // All twenty sit with the slow worker (the only one). Wait until it has them.
    let until = Instant::now() + Duration::from_secs(10);
    while hub.stats()["workers"][0]["inflight"] != 20 {
        assert!(
            Instant::now() < until,
            "the slow worker never got the requests"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let _fast = echo_worker(&hub.addr, 9);
    hub.wait_workers(9, 2);
    slow.kill();
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(s.read(*id, T).unwrap().body, (i as u32).to_be_bytes());
    }
    assert_eq!(proxy_stats(&hub, 9)["redelivered"], 20);
}

#[test]
fn the_last_worker_dying_leaves_its_requests_waiting_for_the_next() {
    let hub = Hub::start(&[]);
    let mut slow = slow_echo_worker(&hub.addr, 9, 60000);
    hub.wait_workers(9, 1);
    let mut s = session(&hub.addr);
    s.write(b"still here").unwrap();
    let id = s.send(9, false, false).unwrap();
    hub.wait_worker_inflight(1);
    slow.kill();
    hub.wait_workers(9, 0);
    assert_eq!(
        s.read(id, Some(Duration::from_millis(300)))
            .unwrap_err()
            .status,
        Status::Timeout,
        "no worker: the request waits"
    );
    assert_eq!(proxy_stats(&hub, 9)["queued"], 1);
    // The next worker gets it, as a second attempt.
    let _w = InProc::start(&hub.addr, vec![9], |d, r| {
        r.write(format!("attempt {}: ", d.attempt).as_bytes());
        r.write(d.body);
        Outcome::Success
    });
    assert_eq!(s.read(id, T).unwrap().body, b"attempt 2: still here");
}

#[test]
fn a_silent_worker_is_dropped_by_keepalive() {
    let hub = Hub::start(&["--keepalive-ms", "200"]);
    let w = echo_worker(&hub.addr, 11);
    hub.wait_workers(11, 1);
    // SIGSTOP: the process lives, its socket stays open, but it answers nothing.
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(w.pid() as i32, libc::SIGSTOP) };
    hub.wait_workers(11, 0);
    // SAFETY: as above.
    unsafe { libc::kill(w.pid() as i32, libc::SIGCONT) };
    // Once running again it notices and reconnects.
    hub.wait_workers(11, 1);
}

#[test]
fn a_silent_hub_is_detected_by_the_caller() {
    let hub = Hub::start(&["--keepalive-ms", "200"]);
    let _w = InProc::start(&hub.addr, vec![12], |_, _| {
        std::thread::sleep(Duration::from_secs(3));
        Outcome::Success
    });
    hub.wait_workers(12, 1);
    let mut s = session(&hub.addr);
    let id = s.send(12, false, false).unwrap();
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(hub.proc.pid() as i32, libc::SIGSTOP) };
    // The caller notices the silence (keep-alive), tries to reconnect until its deadline, and
    // then says no hub was reachable.
    let e = s.read(id, Some(Duration::from_secs(3))).unwrap_err();
    // SAFETY: as above.
    unsafe { libc::kill(hub.proc.pid() as i32, libc::SIGCONT) };
    assert_eq!(e.status, Status::NotConnected, "{e}");
}

#[test]
fn graceful_quit_and_failover_to_the_next_hub() {
    let mut a = Hub::start(&[]);
    let b = Hub::start(&[]);
    let _wa = echo_worker(&a.addr, 1);
    let _wb = echo_worker(&b.addr, 1);
    a.wait_workers(1, 1);
    b.wait_workers(1, 1);
    let mut s = session(&format!("{},{}", a.addr, b.addr));
    assert_eq!(call(&mut s, 1, b"one").unwrap(), b"one");
    assert_eq!(s.hub().unwrap().to_string(), a.addr);
    let st = a.proc.terminate(Duration::from_secs(10));
    assert!(
        st.is_some_and(|s| s.success()),
        "the hub exits cleanly on SIGTERM"
    );
    // The session learns of the quit (or the closed socket) and the next call goes to hub b.
    let r = call(&mut s, 1, b"two");
    let r = match r {
        Ok(v) => v,
        Err(e) => {
            assert_eq!(e.status, Status::NotConnected, "{e}");
            call(&mut s, 1, b"two").unwrap()
        }
    };
    assert_eq!(r, b"two");
    assert_eq!(s.hub().unwrap().to_string(), b.addr);
}

#[test]
fn nothing_listening_is_not_connected_and_skipped_in_the_list() {
    let hub = Hub::start(&[]);
    let _w = echo_worker(&hub.addr, 1);
    hub.wait_workers(1, 1);
    // Bound, not listening: no parallel test's hub can take the port meanwhile.
    let port = common::ClosedPort::new();
    let closed = port.addr.clone();
    let mut alone = session(&closed);
    // The call waits out its whole deadline for a hub to come; one second is enough here.
    alone.write(b"x").unwrap();
    let e = alone.call(1, Some(Duration::from_secs(1))).unwrap_err();
    assert_eq!(e.status, Status::NotConnected);
    let mut s = session(&format!("{closed},{}", hub.addr));
    assert_eq!(call(&mut s, 1, b"x").unwrap(), b"x");
}

#[test]
fn a_restarted_hub_gets_its_address_back_at_once() {
    let dir = common::TempDir::new("restart");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let listen = format!("127.0.0.1:{port}");
    let start = || {
        Proc(
            Command::new(dco_bin())
                .args(["hub", "--listen", &listen, "--data"])
                .arg(dir.path())
                .env("DCO_LOG", "error")
                .spawn()
                .unwrap(),
        )
    };
    let unix = format!("unix:{}", dir.path().join("dco.sock").display());
    for round in 0..3 {
        let mut h = start();
        let _w = echo_worker(&listen, 1);
        let mut s = session(&unix);
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            match call(&mut s, 1, b"again") {
                Ok(v) => {
                    assert_eq!(v, b"again");
                    break;
                }
                Err(e) => {
                    assert!(Instant::now() < until, "round {round}: {e}");
                    s.clear_body();
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        // SIGKILL leaves the socket file and the port in TIME_WAIT behind.
        h.kill();
    }
}

#[test]
fn shared_secret_is_required_when_set() {
    let hub = Hub::start(&["--secret", "s3cret"]);
    let mut cfg = SessionConfig::with_hubs(HubAddr::parse_list(&hub.addr).unwrap());
    cfg.secret = b"wrong".to_vec();
    let mut s = Session::new(cfg.clone());
    assert_eq!(s.connect().unwrap_err().status, Status::Refused);
    cfg.secret = b"s3cret".to_vec();
    let mut s = Session::new(cfg);
    s.connect().unwrap();
}

#[test]
fn stats_count_callers_workers_and_proxies() {
    let hub = Hub::start(&[]);
    let _w = echo_worker(&hub.addr, 21);
    hub.wait_workers(21, 1);
    let mut s = session(&hub.addr);
    for _ in 0..5 {
        call(&mut s, 21, b"x").unwrap();
    }
    let _ = call(&mut s, 22, b"x");
    let v = hub.stats();
    let p = proxy_stats(&hub, 21);
    assert_eq!(p["requests"], 5);
    assert_eq!(p["replies"], 5);
    assert_eq!(proxy_stats(&hub, 22)["no_route"], 1);
    let callers = v["callers"].as_array().unwrap();
    assert_eq!(callers.len(), 1, "{v}");
    assert_eq!(callers[0]["requests"], 6);
    assert_eq!(callers[0]["replies"], 5);
    assert_eq!(callers[0]["errors"], 1);
    assert_eq!(v["workers"][0]["results"], 5);
    // The human table prints too.
    let out = Command::new(dco_bin())
        .args(["stats", "--hub", &hub.addr])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("proxy") && text.contains("21"), "{text}");
}

#[test]
fn bench_runs_end_to_end() {
    let out = Command::new(dco_bin())
        .args(["bench", "--quick", "--rounds", "200", "--requests", "5000"])
        .env("DCO_LOG", "error")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "dco call_sync 64 B",
        "dco pipelined 4096 B",
        "relay sequential 64 B",
    ] {
        assert!(text.contains(line), "missing '{line}' in:\n{text}");
    }
}

/// Large bodies both ways, more than the hub buffers for a peer: neither a worker nor a caller
/// may end up stuck in a write while the hub waits for it to read.
#[test]
fn large_bodies_in_bulk_do_not_deadlock() {
    let hub = Hub::start(&[]);
    let _w = echo_worker(&hub.unix_addr(), 7);
    hub.wait_workers(7, 1);
    for addr in [hub.addr.clone(), hub.unix_addr()] {
        let mut s = session(&addr);
        let body: Vec<u8> = (0..512 * 1024u32).map(|i| (i % 253) as u8).collect();
        let ids: Vec<u64> = (0..60)
            .map(|_| {
                s.write(&body).unwrap();
                s.send(7, true, false).unwrap()
            })
            .collect();
        // One 30 MB write; the replies (30 MB more) pile up at the hub meanwhile.
        s.submit().unwrap();
        for id in ids {
            let r = s.read(id, Some(Duration::from_secs(60))).unwrap();
            assert!(r.body == body, "reply {id} differs");
        }
    }
    let v = hub.stats();
    assert_eq!(v["proxies"][0]["redelivered"], 0, "nothing ran twice: {v}");
}

/// `dco stats | head`: a reader that closes early ends the command quietly (SIGPIPE, as for
/// other Unix tools), never with a panic about a broken pipe.
#[test]
fn dco_stats_into_a_closed_pipe_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let hub = Hub::start(&[]);
    let mut child = std::process::Command::new(common::dco_bin())
        .args(["stats", "--hub", &hub.addr])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Close the read end before anything is read.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        out.status.success() || out.status.signal() == Some(libc::SIGPIPE),
        "{:?}: {stderr}",
        out.status
    );
}

/// `--timeout-ms -1` is a number (no limit), not an unknown flag.
#[test]
fn dco_call_takes_a_negative_timeout_as_no_limit() {
    let hub = Hub::start(&[]);
    let _w = echo_worker(&hub.addr, 5);
    hub.wait_workers(5, 1);
    let mut child = Command::new(dco_bin())
        .args([
            "call",
            "--proxy",
            "5",
            "--timeout-ms",
            "-1",
            "--hub",
            &hub.addr,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"no limit").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"no limit");
}

/// `dco stats` folds sessions that left with nothing pending into one line.
#[test]
fn dco_stats_folds_finished_sessions() {
    let hub = Hub::start(&[]);
    let _w = echo_worker(&hub.addr, 5);
    hub.wait_workers(5, 1);
    for _ in 0..3 {
        let mut s = Session::new(SessionConfig::with_hubs(
            HubAddr::parse_list(&hub.addr).unwrap(),
        ));
        s.write(b"x").unwrap();
        s.call(5, Some(Duration::from_secs(10))).unwrap();
        s.close();
    }
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let out = Command::new(dco_bin())
            .args(["stats", "--hub", &hub.addr])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        if text.contains("(3 finished sessions)") {
            break;
        }
        assert!(Instant::now() < until, "{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_worker_given_two_hubs_serves_both_and_reconnects_to_each_on_its_own() {
    let mut a = Hub::start(&["--proxy-ids", "3"]);
    let b = Hub::start(&["--proxy-ids", "3"]);
    let _w = echo_worker(&format!("{},{}", a.addr, b.addr), 3);
    a.wait_workers(3, 1);
    b.wait_workers(3, 1);
    let mut sa = session(&a.addr);
    let mut sb = session(&b.addr);
    assert_eq!(call(&mut sa, 3, b"through a").unwrap(), b"through a");
    assert_eq!(call(&mut sb, 3, b"through b").unwrap(), b"through b");
    // Hub a goes down: b is served all along; a is served again once it is back.
    a.kill_and_restart();
    assert_eq!(call(&mut sb, 3, b"b meanwhile").unwrap(), b"b meanwhile");
    a.wait_workers(3, 1);
    let mut sa = session(&a.addr);
    assert_eq!(call(&mut sa, 3, b"a again").unwrap(), b"a again");
    assert_eq!(call(&mut sb, 3, b"b still").unwrap(), b"b still");
}

#[test]
fn reroute_moves_waiting_requests_for_good_and_refuses_an_unknown_proxy() {
    let mut hub = Hub::start(&["--proxy-ids", "7,8"]);
    let mut s = session(&hub.addr);
    let ids: Vec<u64> = (0..5)
        .map(|i| {
            s.write(format!("waiting {i}").as_bytes()).unwrap();
            s.send(7, true, false).unwrap()
        })
        .collect();
    s.flush().unwrap();
    // kill_and_restart keeps the address.
    let addr = hub.addr.clone();
    let reroute = |args: &[&str]| {
        Command::new(dco_bin())
            .arg("reroute")
            .args(args)
            .args(["--hub", &addr])
            .output()
            .unwrap()
    };
    // Refused: a proxy the hub does not know, the same proxy twice.
    let out = reroute(&["--from", "7", "--to", "9"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("proxy 9 is not known"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = reroute(&["--from", "7", "--to", "7"]);
    assert_eq!(out.status.code(), Some(1));
    // Moved, and journaled: after a crash of the hub they wait for proxy 8, not 7.
    let out = reroute(&["--from", "7", "--to", "8"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "5 requests moved from proxy 7 to proxy 8"
    );
    hub.kill_and_restart();
    let _w7 = echo_worker(&hub.addr, 7);
    hub.wait_workers(7, 1);
    let e = s
        .read(ids[0], Some(Duration::from_millis(300)))
        .unwrap_err();
    assert_eq!(
        e.status,
        Status::Timeout,
        "proxy 7's worker must not get it: {e}"
    );
    assert_eq!(proxy_stats(&hub, 8)["queued"], 5, "{}", hub.stats());
    let _w8 = echo_worker(&hub.addr, 8);
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            s.read(*id, Some(Duration::from_secs(10))).unwrap().body,
            format!("waiting {i}").as_bytes()
        );
    }
    // Nothing waits for 7 now: a second reroute moves nothing.
    let out = reroute(&["--from", "7", "--to", "8"]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("0 requests moved"));
}
