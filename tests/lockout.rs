//! A hub that cannot be locked out: idle connections at the descriptor limit, oversized
//! HELLOs from unknown peers, callers that go silent. Real hub processes, real sockets.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{dco_bin, echo_worker, Hub, Proc, TempDir};
use dco::client::{Session, SessionConfig};
use dco::wire::{self, HubAddr, Role};

/// Raises this test process's soft descriptor limit; returns the new soft limit.
fn raise_own_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid rlimit pointers for the duration of the calls.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    lim.rlim_cur
}

/// `dco hub` with its descriptor limit (soft and hard) at `nofile`.
fn hub_with_fd_limit(dir: &TempDir, nofile: u64, extra: &[&str]) -> (Proc, String) {
    let mut cmd = Command::new(dco_bin());
    cmd.args(["hub", "--listen", "127.0.0.1:0", "--unix", "none", "--data"])
        .arg(dir.path())
        .args(extra)
        .env("DCO_LOG", "error")
        .stdin(Stdio::null());
    // SAFETY: setrlimit is async-signal-safe and touches nothing of the parent.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: nofile,
                rlim_max: nofile,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let proc = Proc(cmd.spawn().expect("spawn dco hub"));
    let addr_file = dir.path().join("hub.addr");
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(s) = std::fs::read_to_string(&addr_file) {
            if s.ends_with('\n') {
                return (proc, s.trim().to_string());
            }
        }
        assert!(Instant::now() < until, "the hub did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn idle_connections_at_the_descriptor_limit_do_not_lock_the_hub_out() {
    let own = raise_own_limit();
    let idle = 3000.min(own.saturating_sub(200) as usize);
    assert!(
        idle > 1100,
        "this test needs a descriptor limit above 1300 for itself (it has {own})"
    );
    let dir = TempDir::new("fdlimit");
    // A long greeting timeout: only shedding can make room within the test.
    let (_hub, addr) = hub_with_fd_limit(&dir, 1024, &["--greeting-timeout-ms", "600000"]);
    let _w = echo_worker(&addr, 5);
    // Wait until the worker is in.
    let mut s = Session::new(SessionConfig::with_hubs(
        HubAddr::parse_list(&addr).unwrap(),
    ));
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        s.write(b"warm").unwrap();
        if s.call(5, Some(Duration::from_secs(2))).is_ok() {
            break;
        }
        assert!(Instant::now() < until, "the echo worker never answered");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(s);
    // Connections that never say anything, three times the hub's descriptor limit.
    let sockaddr: std::net::SocketAddr = addr.parse().unwrap();
    let mut conns = Vec::with_capacity(idle);
    let mut refused_in_a_row = 0;
    while conns.len() < idle && refused_in_a_row < 50 {
        match TcpStream::connect_timeout(&sockaddr, Duration::from_millis(200)) {
            Ok(c) => {
                conns.push(c);
                refused_in_a_row = 0;
            }
            // The listen queue is full: the hub is not accepting (for now).
            Err(_) => refused_in_a_row += 1,
        }
    }
    assert!(
        conns.len() > 1100,
        "only {} connections opened",
        conns.len()
    );
    // A new caller is still served.
    let mut s = Session::new(SessionConfig::with_hubs(
        HubAddr::parse_list(&addr).unwrap(),
    ));
    s.write(b"still here").unwrap();
    let r = s
        .call(5, Some(Duration::from_secs(20)))
        .expect("a caller after the flood");
    assert_eq!(r.body, b"still here");
}

#[test]
fn incomplete_huge_hellos_do_not_grow_the_hub() {
    let hub = Hub::start(&["--greeting-timeout-ms", "600000"]);
    let pid = hub.proc.pid();
    std::thread::sleep(Duration::from_millis(200));
    let before = rss_kb(pid);
    let mut conns = Vec::new();
    for _ in 0..50 {
        let mut c = TcpStream::connect(&hub.addr).unwrap();
        // A HELLO that says it is 16 MiB long, and the first megabyte of it.
        let mut frame = Vec::with_capacity(1 << 20);
        frame.extend_from_slice(&(16u32 << 20).to_be_bytes());
        frame.push(wire::FrameType::Hello as u8);
        frame.extend_from_slice(&[0, 0, 0]);
        frame.resize(1 << 20, 0x41);
        let _ = c.write_all(&frame);
        conns.push(c);
    }
    std::thread::sleep(Duration::from_millis(300));
    let after = rss_kb(pid);
    assert!(
        after < before + 50 * 1024,
        "the hub grew from {before} kB to {after} kB"
    );
    // Each was refused and closed at its header.
    for mut c in conns {
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = Vec::new();
        let _ = c.read_to_end(&mut buf);
        let text = String::from_utf8_lossy(&buf);
        assert!(text.contains("over the limit"), "{text:?}");
    }
    // And a real HELLO still works.
    let _w = echo_worker(&hub.addr, 5);
    hub.wait_workers(5, 1);
}

#[test]
fn a_caller_that_goes_silent_is_dropped() {
    let hub = Hub::start(&["--keepalive-ms", "200"]);
    let mut c = TcpStream::connect(&hub.addr).unwrap();
    let mut hello = Vec::new();
    wire::encode_hello(&mut hello, Role::Caller, 77, 0, b"silent", b"", &[]);
    c.write_all(&hello).unwrap();
    // It reads nothing and answers no PING: within a few intervals the hub closes it.
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(e) => panic!("the hub did not drop the silent caller: {e}"),
        }
    }
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_connection_over_the_limit_is_refused_busy_and_room_is_reused() {
    let hub = Hub::start(&["--max-connections", "3"]);
    let _w = echo_worker(&hub.addr, 5);
    hub.wait_workers(5, 1);
    // The worker and two more fill the limit (dco stats' own connection came and went).
    let a = TcpStream::connect(&hub.addr).unwrap();
    let b = TcpStream::connect(&hub.addr).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let mut over = TcpStream::connect(&hub.addr).unwrap();
    over.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = Vec::new();
    let _ = over.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    assert!(text.contains("limit of 3 connections"), "{text:?}");
    assert_eq!(
        i32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]),
        dco::Status::Busy.code(),
        "a REFUSE with DCO_E_BUSY"
    );
    // Room again: a caller is served.
    drop((a, b));
    std::thread::sleep(Duration::from_millis(100));
    let mut s = Session::new(SessionConfig::with_hubs(
        HubAddr::parse_list(&hub.addr).unwrap(),
    ));
    s.write(b"in").unwrap();
    assert_eq!(
        s.call(5, Some(Duration::from_secs(10))).unwrap().body,
        b"in"
    );
}

/// This machine's address on the interface of its default route, if it has one (a UDP
/// "connect" sends nothing; it only picks the route).
fn non_loopback_ip() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[test]
fn a_hub_without_a_secret_takes_loopback_peers_only_unless_allowed() {
    let Some(ip) = non_loopback_ip() else {
        eprintln!(
            "SKIPPED a_hub_without_a_secret_takes_loopback_peers_only_unless_allowed: this \
             machine has no address but loopback"
        );
        return;
    };
    let call_at = |hub: &Hub, secret: &[u8]| {
        let port = hub.addr.rsplit(':').next().unwrap().to_string();
        let addr = format!("{ip}:{port}");
        let mut cfg = SessionConfig::with_hubs(HubAddr::parse_list(&addr).unwrap());
        cfg.secret = secret.to_vec();
        cfg.connect_timeout = Duration::from_secs(2);
        let mut s = Session::new(cfg);
        s.write(b"from afar").unwrap();
        s.call(3, Some(Duration::from_secs(5)))
    };
    // No secret: refused from the machine's own non-loopback address, taken on loopback.
    let hub = Hub::start_on("0.0.0.0:0", &["--proxy-ids", "3"]);
    let _w = echo_worker(
        &format!("127.0.0.1:{}", hub.addr.rsplit(':').next().unwrap()),
        3,
    );
    let e = call_at(&hub, b"").unwrap_err();
    assert_eq!(e.status, dco::Status::Refused, "{e}");
    assert!(e.message.contains("loopback only"), "{e}");
    // Told to: taken.
    let open = Hub::start_on("0.0.0.0:0", &["--proxy-ids", "3", "--allow-remote"]);
    let port = open.addr.rsplit(':').next().unwrap().to_string();
    let _w2 = echo_worker(&format!("127.0.0.1:{port}"), 3);
    assert_eq!(call_at(&open, b"").unwrap().body, b"from afar");
    // With a secret every address may connect (and must present it).
    let dir = common::TempDir::new("lockout-secret");
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, "s3cret\n").unwrap();
    let guarded = Hub::start_on(
        "0.0.0.0:0",
        &[
            "--proxy-ids",
            "3",
            "--secret-file",
            secret_file.to_str().unwrap(),
        ],
    );
    let port = guarded.addr.rsplit(':').next().unwrap().to_string();
    let worker = std::process::Command::new(common::dco_bin())
        .args([
            "worker",
            "echo",
            "--proxy",
            "3",
            "--hub",
            &format!("127.0.0.1:{port}"),
        ])
        .env("DCO_SECRET", "s3cret")
        .env("DCO_LOG", "error")
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _w3 = common::Proc(worker);
    assert_eq!(call_at(&guarded, b"s3cret").unwrap().body, b"from afar");

    // An allow-list: only the blocks listed, loopback included only if listed.
    let lo_only = Hub::start_on(
        "0.0.0.0:0",
        &[
            "--proxy-ids",
            "3",
            "--allow-remote",
            "--allow-from",
            "127.0.0.0/8",
        ],
    );
    let port = lo_only.addr.rsplit(':').next().unwrap().to_string();
    let _w4 = echo_worker(&format!("127.0.0.1:{port}"), 3);
    let e = call_at(&lo_only, b"").unwrap_err();
    assert_eq!(e.status, dco::Status::Refused, "{e}");
    assert!(
        e.message.contains("not in this hub's allow-from list"),
        "{e}"
    );
    let listed = Hub::start_on(
        "0.0.0.0:0",
        &["--proxy-ids", "3", "--allow-from", &format!("{ip}/32")],
    );
    let port = listed.addr.rsplit(':').next().unwrap().to_string();
    // Its worker must come from the listed address too.
    let _w5 = echo_worker(&format!("{ip}:{port}"), 3);
    assert_eq!(call_at(&listed, b"").unwrap().body, b"from afar");
    let mut s = Session::new(SessionConfig::with_hubs(
        HubAddr::parse_list(&format!("127.0.0.1:{port}")).unwrap(),
    ));
    s.write(b"x").unwrap();
    let e = s.call(3, Some(Duration::from_secs(2))).unwrap_err();
    assert_eq!(
        e.status,
        dco::Status::Refused,
        "loopback is not listed: {e}"
    );
}
