//! `dco hub --metrics ADDR`: a real scrape over HTTP, parsed by a Prometheus text parser.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{echo_worker, Hub};
use dco::client::{Session, SessionConfig};
use dco::wire::HubAddr;

/// GET `path` from `addr` over plain HTTP/1.1; the status and the body.
fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head[9..12].parse().unwrap();
    (status, body.to_string())
}

#[test]
fn a_scrape_shows_the_hubs_counters_per_proxy_and_worker() {
    let hub = Hub::start(&["--metrics", "127.0.0.1:0"]);
    let until = Instant::now() + Duration::from_secs(10);
    let metrics = loop {
        if let Ok(s) = std::fs::read_to_string(hub.dir.path().join("metrics.addr")) {
            if s.ends_with('\n') {
                break s.trim().to_string();
            }
        }
        assert!(Instant::now() < until, "no metrics.addr");
        std::thread::sleep(Duration::from_millis(10));
    };
    let _w = echo_worker(&hub.addr, 5);
    hub.wait_workers(5, 1);
    let mut s = Session::new(SessionConfig::with_hubs(
        HubAddr::parse_list(&hub.addr).unwrap(),
    ));
    for _ in 0..3 {
        s.write(b"x").unwrap();
        s.call(5, Some(Duration::from_secs(10))).unwrap();
    }
    let (status, body) = get(&metrics, "/metrics");
    assert_eq!(status, 200, "{body}");
    let scrape = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string())))
        .expect("a Prometheus text parser reads it");
    let find = |name: &str, label: Option<(&str, &str)>| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
    };
    assert_eq!(
        find("dco_proxy_requests_total", Some(("proxy", "5"))),
        Some(3.0),
        "{body}"
    );
    assert_eq!(find("dco_proxy_workers", Some(("proxy", "5"))), Some(1.0));
    let ok = scrape.samples.iter().find(|s| {
        s.metric == "dco_proxy_outcomes_total"
            && s.labels.get("proxy") == Some("5")
            && s.labels.get("outcome") == Some("ok")
    });
    assert!(
        ok.is_some_and(|s| matches!(
            s.value,
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) if v == 3.0
        )),
        "{body}"
    );
    let p50 = find("dco_proxy_latency_seconds", Some(("quantile", "0.5"))).unwrap();
    assert!(p50 > 0.0 && p50 < 10.0, "{p50}");
    assert!(find("dco_hub_connections", None).unwrap() >= 2.0);
    assert_eq!(
        find("dco_hub_connections_by_role", Some(("role", "worker"))),
        Some(1.0),
        "{body}"
    );
    assert!(find("dco_hub_connections_by_role", Some(("role", "caller"))).unwrap() >= 1.0);
    assert_eq!(find("dco_worker_results_total", None), Some(3.0), "{body}");
    // The journal: what it wrote and how long its fdatasyncs took (batch: at least one per
    // call).
    assert!(
        find("dco_journal_bytes_total", None).unwrap() > 0.0,
        "{body}"
    );
    assert!(
        find("dco_journal_syncs_total", None).unwrap() >= 3.0,
        "{body}"
    );
    let sync_p99 = find("dco_journal_sync_seconds", Some(("quantile", "0.99"))).unwrap();
    assert!(sync_p99 > 0.0 && sync_p99 < 60.0, "{sync_p99}");
    // Every metric is in the operations guide.
    let guide = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/OPERATIONS.md"),
    )
    .unwrap();
    for line in body.lines().filter(|l| l.starts_with("# TYPE ")) {
        let name = line.split_whitespace().nth(2).unwrap_or("");
        let counter = line.ends_with(" counter");
        let shown = if counter {
            format!("`{name}_total`")
        } else {
            format!("`{name}`")
        };
        assert!(
            guide.contains(&shown),
            "metric {shown} is not in docs/OPERATIONS.md §4"
        );
    }
    // Anything else is not found.
    assert_eq!(get(&metrics, "/").0, 404);
}
