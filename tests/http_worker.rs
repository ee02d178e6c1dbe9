//! The HTTP worker with real processes and a real HTTP server: `dco hub`, `dco worker http`,
//! and a hyper server on 127.0.0.1 (plain and TLS with a certificate made by the test).

mod common;
#[path = "http_worker/server.rs"]
mod server;

use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{Hub, Proc, TempDir};
use dco::client::{Reply, Session, SessionConfig};
use dco::wire::HubAddr;
use dco::Status;
use server::{HttpServer, TestPki};

fn session(addr: &str) -> Session {
    let mut cfg = SessionConfig::with_hubs(HubAddr::parse_list(addr).unwrap());
    cfg.connect_timeout = Duration::from_secs(2);
    Session::new(cfg)
}

/// Starts `dco worker http --proxy P --base-url URL ARGS...` and waits until the hub has it.
fn http_worker(hub: &Hub, proxy: i32, base_url: &str, args: &[&str]) -> Proc {
    let child = Command::new(common::dco_bin())
        .args(["worker", "http", "--proxy", &proxy.to_string()])
        .args(["--hub", &hub.addr, "--base-url", base_url])
        .args(args)
        .env("DCO_LOG", "error")
        .env_remove("DCO_HTTP_BEARER_TOKEN")
        .env_remove("DCO_HTTP_BASIC_AUTH")
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn dco worker http");
    let p = Proc(child);
    let threads = args
        .iter()
        .position(|a| *a == "--threads")
        .map(|i| args[i + 1].parse().unwrap())
        .unwrap_or(1);
    hub.wait_workers(proxy, threads);
    p
}

fn call(s: &mut Session, proxy: i32, body: &[u8], timeout_ms: u64) -> dco::Result<Reply> {
    s.write(body).unwrap();
    s.call(proxy, Some(Duration::from_millis(timeout_ms)))
}

/// The status code, the headers (names lower-cased) and the body of a reply message.
fn parse(reply: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let end = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a reply message has an empty line");
    let head = std::str::from_utf8(&reply[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
    let status = status_line[9..12].parse().unwrap();
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(": ").unwrap();
            (n.to_ascii_lowercase(), v.to_string())
        })
        .collect();
    (status, headers, reply[end + 4..].to_vec())
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

#[test]
fn get_and_post_with_headers_and_a_binary_body() {
    let srv = HttpServer::start();
    let hub = Hub::start(&[]);
    let base = format!("{}/echo", srv.url());
    let _w = http_worker(
        &hub,
        1,
        &base,
        &[
            "--header",
            "X-Default: yes",
            "--bearer-token",
            "s3cret",
            "--idempotency-header",
            "X-Idempotency-Key",
        ],
    );
    let mut s = session(&hub.addr);

    // GET with LF line ends (as PL/SQL's dco.line writes them) and a query.
    let r = call(
        &mut s,
        1,
        b"GET /items?id=7 HTTP/1.1\nX-Trace: abc\n\n",
        10_000,
    )
    .unwrap();
    assert_eq!(r.rcode, 200);
    let (status, h, body) = parse(&r.body);
    assert_eq!(status, 200);
    assert_eq!(header(&h, "x-method"), Some("GET"));
    assert_eq!(header(&h, "x-target"), Some("/echo/items?id=7"));
    assert_eq!(header(&h, "x-echo-x-trace"), Some("abc"));
    // The worker's defaults: a header and the credentials, never in the request body.
    assert_eq!(header(&h, "x-echo-x-default"), Some("yes"));
    assert_eq!(header(&h, "x-echo-authorization"), Some("Bearer s3cret"));
    // A key that names the request (session and id), the same on every attempt.
    let key = header(&h, "x-echo-x-idempotency-key").unwrap();
    assert!(
        key.starts_with("dco-") && key.ends_with(&format!("-{}", s.last_request_id())),
        "{key}"
    );
    assert!(body.is_empty());

    // POST with CRLF lines, a binary body (every byte value) and a header that overrides a
    // default; Content-Length is the worker's.
    let payload: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let mut msg =
        b"POST /upload HTTP/1.1\r\nContent-Type: application/octet-stream\r\nX-Default: no\r\n\
          Content-Length: 3\r\n\r\n"
            .to_vec();
    msg.extend_from_slice(&payload);
    let r = call(&mut s, 1, &msg, 10_000).unwrap();
    let (status, h, body) = parse(&r.body);
    assert_eq!(status, 200);
    assert_eq!(header(&h, "x-method"), Some("POST"));
    assert_eq!(header(&h, "x-echo-x-default"), Some("no"));
    assert_eq!(header(&h, "content-length"), Some("70000"));
    assert_eq!(body, payload);
}

#[test]
fn a_4xx_is_an_application_failure_and_not_retried() {
    let srv = HttpServer::start();
    let hub = Hub::start(&["--proxy", "1:attempts=3,backoff-ms=10"]);
    let _w = http_worker(&hub, 1, &srv.url(), &[]);
    let mut s = session(&hub.addr);
    let e = call(&mut s, 1, b"GET /status/404 HTTP/1.1\n\n", 10_000).unwrap_err();
    assert_eq!(e.status, Status::AppFail);
    assert_eq!(e.rcode, 404);
    assert_eq!(srv.state.hits.load(Ordering::SeqCst), 1);
    // The reply body (the 404 response message) is there for the caller to read.
    let (status, _, body) = parse(e.message.as_bytes());
    assert_eq!(status, 404);
    assert_eq!(body, b"status 404");
}

#[test]
fn a_5xx_is_retried_until_it_succeeds_or_the_attempts_run_out() {
    let srv = HttpServer::start();
    let hub = Hub::start(&["--proxy", "1:attempts=3,backoff-ms=10"]);
    let _w = http_worker(&hub, 1, &srv.url(), &[]);
    let mut s = session(&hub.addr);
    // Two 503s, then 200: the third attempt succeeds.
    let r = call(&mut s, 1, b"GET /flaky/a/2 HTTP/1.1\n\n", 10_000).unwrap();
    assert_eq!(r.rcode, 200);
    assert_eq!(parse(&r.body).2, b"ok after 2");
    assert_eq!(srv.state.hits.load(Ordering::SeqCst), 3);
    // Five 503s: after the third attempt the caller gets DCO_E_SYSTEM with the last status.
    let e = call(&mut s, 1, b"GET /flaky/b/5 HTTP/1.1\n\n", 10_000).unwrap_err();
    assert_eq!(e.status, Status::System, "{e}");
    assert!(e.message.contains("503"), "{e}");
    assert_eq!(srv.state.hits.load(Ordering::SeqCst), 6);
    // The hub counts what the service said, per status.
    let v = hub.stats();
    let codes = &v["proxies"][0]["rcodes"]["by_code"];
    assert_eq!(
        (codes["200"].as_u64(), codes["503"].as_u64()),
        (Some(1), Some(5)),
        "{v}"
    );
    let out = Command::new(common::dco_bin())
        .args(["stats", "--hub", &hub.addr])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("proxy 1 return codes: 200=1 503=5"), "{text}");
    // A service that refuses connections is retried the same way.
    let closed = common::ClosedPort::new();
    let hub2 = Hub::start(&["--proxy", "2:attempts=2,backoff-ms=10"]);
    let _w2 = http_worker(&hub2, 2, &format!("http://{}", closed.addr), &[]);
    let mut s2 = session(&hub2.addr);
    let e = call(&mut s2, 2, b"GET / HTTP/1.1\n\n", 10_000).unwrap_err();
    assert_eq!(e.status, Status::System, "{e}");
    assert!(
        e.message.contains("2 attempts") || e.message.contains("attempt"),
        "{e}"
    );
}

#[test]
fn a_server_slower_than_the_deadline_is_abandoned() {
    let srv = HttpServer::start();
    let hub = Hub::start(&[]);
    let _w = http_worker(&hub, 1, &srv.url(), &[]);
    let mut s = session(&hub.addr);
    let e = call(&mut s, 1, b"GET /slow/5000 HTTP/1.1\n\n", 500).unwrap_err();
    assert_eq!(e.status, Status::Timeout, "{e}");
    // The worker gave the HTTP request up with the deadline: the server sees it dropped long
    // before its 5 s were over.
    let until = Instant::now() + Duration::from_secs(4);
    while srv.state.dropped.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < until, "the worker kept the request going");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A request whose time is up is not sent at all.
    let hits = srv.state.hits.load(Ordering::SeqCst);
    let e = call(&mut s, 1, b"GET /echo HTTP/1.1\n\n", 0).unwrap_err();
    assert_eq!(e.status, Status::Timeout, "{e}");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(srv.state.hits.load(Ordering::SeqCst), hits);
}

#[test]
fn two_hundred_requests_at_once_through_one_worker() {
    let srv = HttpServer::start();
    let hub = Hub::start(&[]);
    // Two threads (two connections to the hub) of 100 each.
    let _w = http_worker(
        &hub,
        1,
        &srv.url(),
        &["--concurrency", "200", "--threads", "2"],
    );
    let mut s = session(&hub.addr);
    let ids: Vec<u64> = (0..200)
        .map(|_| {
            s.write(b"GET /slow/300 HTTP/1.1\n\n").unwrap();
            s.send(1, true, false).unwrap()
        })
        .collect();
    s.flush().unwrap();
    for id in ids {
        let r = s.read(id, Some(Duration::from_secs(30))).unwrap();
        assert_eq!(r.rcode, 200);
        assert_eq!(parse(&r.body).2, b"slow");
    }
    // They ran side by side, not one after another.
    let max = srv.state.max_inflight.load(Ordering::SeqCst);
    assert!(max >= 50, "at most {max} requests ran at once");
    assert_eq!(srv.state.dropped.load(Ordering::SeqCst), 0);
}

#[test]
fn sigterm_finishes_the_requests_in_flight_before_the_worker_exits() {
    let srv = HttpServer::start();
    let hub = Hub::start(&[]);
    let mut w = http_worker(&hub, 1, &srv.url(), &[]);
    let mut s = session(&hub.addr);
    let ids: Vec<u64> = (0..5)
        .map(|_| {
            s.write(b"GET /slow/600 HTTP/1.1\n\n").unwrap();
            s.send(1, true, false).unwrap()
        })
        .collect();
    s.flush().unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    while srv.state.inflight.load(Ordering::SeqCst) < 5 {
        assert!(
            Instant::now() < until,
            "the requests never reached the server"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let st = w
        .terminate(Duration::from_secs(10))
        .expect("the worker exits");
    assert!(st.success(), "{st:?}");
    for id in ids {
        let r = s.read(id, Some(Duration::from_secs(1))).unwrap();
        assert_eq!(parse(&r.body).2, b"slow");
    }
    assert_eq!(srv.state.dropped.load(Ordering::SeqCst), 0);
}

#[test]
fn a_response_over_the_limit_fails_clearly() {
    let srv = HttpServer::start();
    let hub = Hub::start(&[]);
    let _w = http_worker(&hub, 1, &srv.url(), &["--max-response", "1048576"]);
    let mut s = session(&hub.addr);
    let e = call(&mut s, 1, b"GET /bytes/10485760 HTTP/1.1\n\n", 10_000).unwrap_err();
    assert_eq!(e.status, Status::AppFail, "{e}");
    assert_eq!(e.rcode, 502);
    let (status, h, body) = parse(e.message.as_bytes());
    assert_eq!(status, 502);
    assert_eq!(header(&h, "x-dco-error"), Some("response-too-large"));
    assert!(String::from_utf8_lossy(&body).contains("1048576"));
    // Under the limit it passes.
    let r = call(&mut s, 1, b"GET /bytes/1000000 HTTP/1.1\n\n", 10_000).unwrap();
    assert_eq!(parse(&r.body).2.len(), 1_000_000);
}

#[test]
fn a_malformed_request_body_is_an_application_failure_and_the_worker_goes_on() {
    let srv = HttpServer::start();
    let hub = Hub::start(&[]);
    let _w = http_worker(&hub, 1, &srv.url(), &[]);
    let mut s = session(&hub.addr);
    for bad in [
        &b"this is not http"[..],
        b"\x00\xff\xfe",
        b"GET /x HTTP/1.1\nNo-Colon-Here\n\n",
        b"GET http://elsewhere.example/ HTTP/1.1\n\n",
        b"GET /../etc/passwd HTTP/1.1\n\n",
    ] {
        let e = call(&mut s, 1, bad, 10_000).unwrap_err();
        assert_eq!(e.status, Status::AppFail, "{e}");
        assert!(e.rcode == 400 || e.rcode == 403, "{e}");
        let (_, h, _) = parse(e.message.as_bytes());
        assert!(header(&h, "x-dco-error").is_some());
    }
    assert_eq!(srv.state.hits.load(Ordering::SeqCst), 0);
    let r = call(&mut s, 1, b"GET /echo HTTP/1.1\n\n", 10_000).unwrap();
    assert_eq!(r.rcode, 200);
}

#[test]
fn tls_with_a_ca_file_and_http2() {
    let pki = TestPki::new();
    let dir = TempDir::new("tls");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let srv = HttpServer::start_tls(&pki);
    let hub = Hub::start(&["--proxy", "1:attempts=1", "--proxy", "2:attempts=1"]);
    let base = format!("https://localhost:{}", srv.addr.port());
    let _w = http_worker(
        &hub,
        1,
        &base,
        &["--ca-file", ca.to_str().unwrap(), "--roots", "none"],
    );
    let mut s = session(&hub.addr);
    let r = call(&mut s, 1, b"GET /echo/tls HTTP/1.1\n\n", 10_000).unwrap();
    let (status, h, _) = parse(&r.body);
    assert_eq!(status, 200);
    // ALPN chose HTTP/2.
    assert_eq!(header(&h, "x-version"), Some("HTTP/2.0"));
    // Without the CA the certificate is not trusted: the request is not answered.
    let _w2 = http_worker(&hub, 2, &base, &["--roots", "webpki"]);
    let e = call(&mut s, 2, b"GET /echo HTTP/1.1\n\n", 10_000).unwrap_err();
    assert_eq!(e.status, Status::System, "{e}");
    assert!(e.message.to_lowercase().contains("certificate"), "{e}");
}

#[test]
fn tls_with_a_client_certificate() {
    let pki = TestPki::new();
    let dir = TempDir::new("mtls");
    let path = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let (ca, cert, key) = (
        path("ca.pem", &pki.ca_pem),
        path("client.pem", &pki.client_cert_pem),
        path("client.key", &pki.client_key_pem),
    );
    let srv = HttpServer::start_tls_client_auth(&pki);
    let hub = Hub::start(&["--proxy", "1:attempts=1", "--proxy", "2:attempts=1"]);
    let base = format!("https://localhost:{}", srv.addr.port());
    let _w = http_worker(
        &hub,
        1,
        &base,
        &[
            "--ca-file",
            &ca,
            "--client-cert",
            &cert,
            "--client-key",
            &key,
        ],
    );
    let mut s = session(&hub.addr);
    let r = call(&mut s, 1, b"GET /echo/mtls HTTP/1.1\n\n", 10_000).unwrap();
    assert_eq!(r.rcode, 200);
    // Without the certificate the server refuses the handshake.
    let _w2 = http_worker(&hub, 2, &base, &["--ca-file", &ca]);
    let e = call(&mut s, 2, b"GET /echo HTTP/1.1\n\n", 10_000).unwrap_err();
    assert_eq!(e.status, Status::System, "{e}");
}

#[test]
fn a_worker_with_an_unusable_configuration_exits_before_it_announces() {
    let hub = Hub::start(&[]);
    let out = Command::new(common::dco_bin())
        .args(["worker", "http", "--proxy", "1", "--hub", &hub.addr])
        .args([
            "--base-url",
            "http://127.0.0.1:1",
            "--ca-file",
            "/nonexistent/ca.pem",
        ])
        .env("DCO_LOG", "error")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--ca-file"));
    let v = hub.stats();
    assert_eq!(v["workers"].as_array().map(|a| a.len()).unwrap_or(0), 0);
}
