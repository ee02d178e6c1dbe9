//! `dco hub --metrics ADDR`: Prometheus metrics over HTTP (`GET /metrics`). Each scrape asks
//! the hub for its statistics as a monitor does (`dco stats`), so the hub's loop is never
//! shared with the metrics server, and turns the document into the OpenMetrics text format
//! with prometheus-client.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::Value;

use dco::wire::HubAddr;

type Labels = Vec<(String, String)>;

/// Binds `listen`, writes the bound address to `addr_file`, and serves `/metrics` from a
/// thread of its own, asking the hub at `hub` (with `secret`) on each scrape.
pub fn start(
    listen: &str,
    hub: HubAddr,
    secret: Vec<u8>,
    addr_file: PathBuf,
) -> Result<(), String> {
    let listener =
        std::net::TcpListener::bind(listen).map_err(|e| format!("--metrics {listen}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let _ = std::fs::write(&addr_file, format!("{bound}\n"));
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    std::thread::Builder::new()
        .name("dco-metrics".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!("metrics: cannot start: {e}");
                    return;
                }
            };
            rt.block_on(serve(listener, hub, secret));
        })
        .map_err(|e| format!("cannot start the metrics thread: {e}"))?;
    tracing::info!("metrics on http://{bound}/metrics");
    Ok(())
}

async fn serve(listener: std::net::TcpListener, hub: HubAddr, secret: Vec<u8>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("metrics: {e}");
            return;
        }
    };
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let (hub, secret) = (hub.clone(), secret.clone());
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(
                move |req: hyper::Request<hyper::body::Incoming>| {
                    let (hub, secret) = (hub.clone(), secret.clone());
                    async move { Ok::<_, Infallible>(answer(req.uri().path(), &hub, &secret).await) }
                },
            );
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tcp), svc)
                .await;
        });
    }
}

async fn answer(path: &str, hub: &HubAddr, secret: &[u8]) -> hyper::Response<Full<Bytes>> {
    let reply = |status: u16, ctype: &str, body: String| {
        hyper::Response::builder()
            .status(status)
            .header("content-type", ctype)
            .body(Full::new(Bytes::from(body)))
            .unwrap_or_else(|_| hyper::Response::new(Full::new(Bytes::new())))
    };
    if path != "/metrics" {
        return reply(404, "text/plain", "try /metrics\n".into());
    }
    let (hub, secret) = (hub.clone(), secret.to_vec());
    let fetched = tokio::task::spawn_blocking(move || {
        dco::client::monitor::fetch_stats_as(&hub, &secret, Duration::from_secs(3))
    })
    .await;
    let json = match fetched {
        Ok(Ok(j)) => j,
        Ok(Err(e)) => return reply(503, "text/plain", format!("the hub did not answer: {e}\n")),
        Err(e) => return reply(500, "text/plain", format!("{e}\n")),
    };
    match render(&json) {
        Ok(text) => reply(
            200,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            text,
        ),
        Err(e) => reply(500, "text/plain", format!("{e}\n")),
    }
}

fn num(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn labels(pairs: &[(&str, String)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// The statistics document as OpenMetrics text.
pub fn render(json: &str) -> Result<String, String> {
    let v: Value = serde_json::from_str(json).map_err(|e| format!("bad statistics: {e}"))?;
    let mut reg = Registry::with_prefix("dco");
    let gauge = |reg: &mut Registry, name: &str, help: &str, value: u64| {
        let g: Gauge = Gauge::default();
        g.set(value.min(i64::MAX as u64) as i64);
        reg.register(name, help, g);
    };
    let counter = |reg: &mut Registry, name: &str, help: &str, value: u64| {
        let c: Counter = Counter::default();
        c.inc_by(value);
        reg.register(name, help, c);
    };
    let hub = &v["hub"];
    gauge(
        &mut reg,
        "hub_uptime_seconds",
        "Seconds since the hub started",
        num(&hub["uptime_s"]),
    );
    gauge(
        &mut reg,
        "hub_connections",
        "Open connections",
        num(&hub["connections"]),
    );
    let by_role = Family::<Labels, Gauge>::default();
    for role in ["caller", "worker", "monitor", "greeting"] {
        by_role
            .get_or_create(&labels(&[("role", role.into())]))
            .set(num(&hub["connections_by_role"][role]) as i64);
    }
    reg.register(
        "hub_connections_by_role",
        "Open connections by role (greeting: no HELLO yet)",
        by_role,
    );
    let refused = Family::<Labels, Counter>::default();
    for (why, n) in hub["refused"].as_object().into_iter().flatten() {
        refused
            .get_or_create(&labels(&[("status", why.clone())]))
            .inc_by(num(n));
    }
    reg.register(
        "hub_refused_connections",
        "Connections refused or closed with a REFUSE, by its status",
        refused,
    );
    gauge(
        &mut reg,
        "hub_inflight",
        "Requests delivered and not yet answered",
        num(&hub["inflight"]),
    );
    gauge(
        &mut reg,
        "hub_queued",
        "Requests waiting for a worker",
        num(&hub["queued"]),
    );
    counter(
        &mut reg,
        "hub_busy_refusals",
        "Requests refused over quota or a full journal",
        num(&hub["busy"]),
    );
    counter(
        &mut reg,
        "hub_protocol_errors",
        "Peers dropped for breaking the protocol",
        num(&hub["protocol_errors"]),
    );
    gauge(
        &mut reg,
        "journal_segments",
        "Journal segment files in use",
        num(&hub["journal_segments"]),
    );
    gauge(
        &mut reg,
        "journal_full",
        "1 while the journal cannot take more",
        u64::from(hub["journal_full"] == true),
    );
    gauge(
        &mut reg,
        "journal_owed_bytes",
        "Journal space kept in reserve for what accepted requests still need to write",
        num(&hub["journal_owed"]),
    );
    let journal_bytes = Counter::<u64>::default();
    journal_bytes.inc_by(num(&hub["journal_bytes"]));
    reg.register(
        "journal_bytes",
        "Record bytes the journal wrote since the hub started",
        journal_bytes,
    );
    let journal_syncs = Counter::<u64>::default();
    journal_syncs.inc_by(num(&hub["journal_syncs"]));
    reg.register(
        "journal_syncs",
        "fdatasyncs of the journal since the hub started",
        journal_syncs,
    );
    let sync_time = Family::<Labels, Gauge<f64, AtomicU64>>::default();
    for (q, key) in [
        ("0.5", "journal_sync_p50_us"),
        ("0.99", "journal_sync_p99_us"),
        ("1", "journal_sync_max_us"),
    ] {
        sync_time
            .get_or_create(&labels(&[("quantile", q.into())]))
            .set(num(&hub[key]) as f64 / 1e6);
    }
    reg.register(
        "journal_sync_seconds",
        "fdatasync time quantiles of the journal (within 1%; 1 is the longest)",
        sync_time,
    );
    gauge(
        &mut reg,
        "journal_lost_segments",
        "Segments in which recovery found durable records damaged or missing at this start",
        hub["journal_lost"].as_array().map_or(0, |a| a.len() as u64),
    );

    let callers = v["callers"].as_array().map(|a| a.as_slice()).unwrap_or(&[]);
    gauge(
        &mut reg,
        "caller_sessions",
        "Caller sessions the hub holds",
        callers.len() as u64,
    );
    gauge(
        &mut reg,
        "caller_sessions_connected",
        "Caller sessions with a connection",
        callers.iter().filter(|c| c["connected"] == true).count() as u64,
    );

    let p_workers = Family::<Labels, Gauge>::default();
    let p_queued = Family::<Labels, Gauge>::default();
    let p_redo = Family::<Labels, Gauge>::default();
    let p_requests = Family::<Labels, Counter>::default();
    let p_outcomes = Family::<Labels, Counter>::default();
    let p_rcodes = Family::<Labels, Counter>::default();
    let p_latency = Family::<Labels, Gauge<f64, AtomicU64>>::default();
    for p in v["proxies"].as_array().into_iter().flatten() {
        let id = p["id"].to_string();
        let l = labels(&[("proxy", id.clone())]);
        p_workers.get_or_create(&l).set(num(&p["workers"]) as i64);
        p_queued.get_or_create(&l).set(num(&p["queued"]) as i64);
        p_redo.get_or_create(&l).set(num(&p["redo"]) as i64);
        p_requests.get_or_create(&l).inc_by(num(&p["requests"]));
        for (outcome, n) in p["outcomes"].as_object().into_iter().flatten() {
            p_outcomes
                .get_or_create(&labels(&[
                    ("proxy", id.clone()),
                    ("outcome", outcome.clone()),
                ]))
                .inc_by(num(n));
        }
        for (code, n) in p["rcodes"]["by_code"].as_object().into_iter().flatten() {
            p_rcodes
                .get_or_create(&labels(&[("proxy", id.clone()), ("code", code.clone())]))
                .inc_by(num(n));
        }
        for (q, key) in [("0.5", "p50_us"), ("0.99", "p99_us")] {
            p_latency
                .get_or_create(&labels(&[("proxy", id.clone()), ("quantile", q.into())]))
                .set(num(&p[key]) as f64 / 1e6);
        }
    }
    reg.register("proxy_workers", "Workers serving the proxy", p_workers);
    reg.register(
        "proxy_queued",
        "Requests waiting for a worker of the proxy",
        p_queued,
    );
    reg.register(
        "proxy_redo",
        "Requests waiting for their next attempt",
        p_redo,
    );
    reg.register(
        "proxy_requests",
        "Requests accepted for the proxy",
        p_requests,
    );
    reg.register("proxy_outcomes", "Requests by outcome", p_outcomes);
    reg.register(
        "proxy_return_codes",
        "Worker results by return code (an HTTP worker's status codes)",
        p_rcodes,
    );
    reg.register(
        "proxy_latency_seconds",
        "Acceptance-to-answer latency quantiles (within 1%)",
        p_latency,
    );

    let w_inflight = Family::<Labels, Gauge>::default();
    let w_delivered = Family::<Labels, Counter>::default();
    let w_results = Family::<Labels, Counter>::default();
    let w_failures = Family::<Labels, Counter>::default();
    for w in v["workers"].as_array().into_iter().flatten() {
        let l = labels(&[
            ("worker", w["name"].as_str().unwrap_or("").to_string()),
            ("addr", w["addr"].as_str().unwrap_or("").to_string()),
        ]);
        w_inflight.get_or_create(&l).set(num(&w["inflight"]) as i64);
        w_delivered.get_or_create(&l).inc_by(num(&w["delivered"]));
        w_results.get_or_create(&l).inc_by(num(&w["results"]));
        w_failures.get_or_create(&l).inc_by(num(&w["failures"]));
    }
    reg.register("worker_inflight", "Deliveries the worker holds", w_inflight);
    reg.register(
        "worker_delivered",
        "Deliveries handed to the worker",
        w_delivered,
    );
    reg.register("worker_results", "Results from the worker", w_results);
    reg.register(
        "worker_failures",
        "Failed results from the worker",
        w_failures,
    );

    let mut out = String::new();
    encode(&mut out, &reg).map_err(|e| e.to_string())?;
    Ok(out)
}
