//! `dco stats`: the hub's statistics as tables.

use std::process::ExitCode;
use std::time::Duration;

use dco::client::monitor::fetch_stats;
use dco::wire::HubAddr;
use serde_json::Value;

/// A JSON value as plain text (strings unquoted), so column widths apply.
fn t(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// Fetches and prints the statistics of the first hub that answers.
pub fn print(hubs: &[HubAddr], raw: bool) -> Result<ExitCode, String> {
    let json = fetch_stats(hubs, Duration::from_secs(3)).map_err(|e| e.to_string())?;
    if raw {
        println!("{json}");
        return Ok(ExitCode::SUCCESS);
    }
    let v: Value = serde_json::from_str(&json).map_err(|e| format!("bad statistics: {e}"))?;
    let hub = &v["hub"];
    println!(
        "hub {}  up {}s  connections {}  in flight {}  queued {}  busy {}  protocol errors {}  \
         journal segments {}{}",
        t(&hub["id"]),
        t(&hub["uptime_s"]),
        t(&hub["connections"]),
        t(&hub["inflight"]),
        t(&hub["queued"]),
        t(&hub["busy"]),
        t(&hub["protocol_errors"]),
        t(&hub["journal_segments"]),
        if hub["journal_full"] == true {
            "  JOURNAL FULL"
        } else {
            ""
        }
    );
    println!();
    println!(
        "{:>8} {:>8} {:>7} {:>12} {:>12} {:>9} {:>9} {:>9} {:>8} {:>8}",
        "proxy",
        "workers",
        "queued",
        "requests",
        "replies",
        "errors",
        "no-route",
        "redeliv",
        "p50 us",
        "p99 us"
    );
    for p in v["proxies"].as_array().into_iter().flatten() {
        println!(
            "{:>8} {:>8} {:>7} {:>12} {:>12} {:>9} {:>9} {:>9} {:>8} {:>8}",
            t(&p["id"]),
            t(&p["workers"]),
            t(&p["queued"]),
            t(&p["requests"]),
            t(&p["replies"]),
            t(&p["errors"]),
            t(&p["no_route"]),
            t(&p["redelivered"]),
            t(&p["p50_us"]),
            t(&p["p99_us"])
        );
    }
    println!();
    println!(
        "{:<28} {:<16} {:<22} {:>12} {:>12} {:>9} {:>9} {:>9}",
        "caller", "session", "address", "requests", "replies", "errors", "inflight", "unread"
    );
    for c in v["callers"].as_array().into_iter().flatten() {
        println!(
            "{:<28} {:<16} {:<22} {:>12} {:>12} {:>9} {:>9} {:>9}",
            t(&c["name"]),
            t(&c["session"]),
            t(&c["addr"]),
            t(&c["requests"]),
            t(&c["replies"]),
            t(&c["errors"]),
            t(&c["inflight"]),
            t(&c["unread"])
        );
    }
    println!();
    println!(
        "{:<28} {:<22} {:<12} {:>9} {:>12} {:>12} {:>9}",
        "worker", "address", "proxies", "inflight", "delivered", "results", "failures"
    );
    for w in v["workers"].as_array().into_iter().flatten() {
        let proxies: Vec<String> = w["proxies"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| p.to_string())
            .collect();
        println!(
            "{:<28} {:<22} {:<12} {:>9} {:>12} {:>12} {:>9}",
            t(&w["name"]),
            t(&w["addr"]),
            proxies.join(","),
            t(&w["inflight"]),
            t(&w["delivered"]),
            t(&w["results"]),
            t(&w["failures"])
        );
    }
    Ok(ExitCode::SUCCESS)
}
