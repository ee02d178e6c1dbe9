//! `dco stats`: the hub's statistics as tables.

use std::process::ExitCode;
use std::time::Duration;

use dco::client::monitor::fetch_stats;
use dco::wire::HubAddr;
use serde_json::Value;

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
        "hub {}  up {}s  connections {}  in flight {}  busy {}  protocol errors {}",
        hub["id"].as_str().unwrap_or("?"),
        hub["uptime_s"],
        hub["connections"],
        hub["inflight"],
        hub["busy"],
        hub["protocol_errors"]
    );
    println!();
    println!(
        "{:>8} {:>8} {:>7} {:>12} {:>12} {:>9} {:>9} {:>9} {:>8} {:>8}",
        "proxy", "workers", "queued", "requests", "replies", "errors", "no-route", "redeliv", "p50 us", "p99 us"
    );
    for p in v["proxies"].as_array().into_iter().flatten() {
        println!(
            "{:>8} {:>8} {:>7} {:>12} {:>12} {:>9} {:>9} {:>9} {:>8} {:>8}",
            p["id"], p["workers"], p["queued"], p["requests"], p["replies"], p["errors"],
            p["no_route"], p["redelivered"], p["p50_us"], p["p99_us"]
        );
    }
    println!();
    println!(
        "{:<28} {:<22} {:>12} {:>12} {:>9} {:>9}",
        "caller", "address", "requests", "replies", "errors", "inflight"
    );
    for c in v["callers"].as_array().into_iter().flatten() {
        println!(
            "{:<28} {:<22} {:>12} {:>12} {:>9} {:>9}",
            c["name"].as_str().unwrap_or(""),
            c["addr"].as_str().unwrap_or(""),
            c["requests"],
            c["replies"],
            c["errors"],
            c["inflight"]
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
            w["name"].as_str().unwrap_or(""),
            w["addr"].as_str().unwrap_or(""),
            proxies.join(","),
            w["inflight"],
            w["delivered"],
            w["results"],
            w["failures"]
        );
    }
    Ok(ExitCode::SUCCESS)
}
