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
    if hub["journal_syncs"].as_u64().unwrap_or(0) > 0
        || hub["journal_bytes"].as_u64().unwrap_or(0) > 0
    {
        println!(
            "journal: {} bytes written, {} fdatasyncs (p50 {} us, p99 {} us, max {} us), {} \
             bytes owed to accepted requests",
            t(&hub["journal_bytes"]),
            t(&hub["journal_syncs"]),
            t(&hub["journal_sync_p50_us"]),
            t(&hub["journal_sync_p99_us"]),
            t(&hub["journal_sync_max_us"]),
            t(&hub["journal_owed"]),
        );
    }
    if let Some(lost) = hub["journal_lost"].as_array() {
        for l in lost {
            println!("  JOURNAL LOST at this start: {}", t(l));
        }
    }
    println!();
    // Every outcome apart (docs/ARCHITECTURE.md §4.15): ok, application and system failures,
    // timeouts of delivered requests, requests expired while waiting, cancels, deliveries
    // retried, requests whose answer is parked, late answers dropped, forwards.
    println!(
        "{:>7} {:>7} {:>7} {:>5} {:>10} {:>10} {:>8} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>6} {:>5} {:>8} {:>7} {:>7}",
        "proxy",
        "workers",
        "queued",
        "redo",
        "requests",
        "ok",
        "app-fail",
        "system",
        "timeout",
        "expired",
        "cancel",
        "retried",
        "parked",
        "late",
        "fwd",
        "no-route",
        "p50 us",
        "p99 us"
    );
    for p in v["proxies"].as_array().into_iter().flatten() {
        let o = &p["outcomes"];
        println!(
            "{:>7} {:>7} {:>7} {:>5} {:>10} {:>10} {:>8} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>6} {:>5} {:>8} {:>7} {:>7}",
            t(&p["id"]),
            t(&p["workers"]),
            t(&p["queued"]),
            t(&p["redo"]),
            t(&p["requests"]),
            t(&o["ok"]),
            t(&o["app_fail"]),
            t(&o["system"]),
            t(&o["timeout"]),
            t(&o["expired"]),
            t(&o["cancelled"]),
            t(&o["retried"]),
            t(&o["queued"]),
            t(&o["late"]),
            t(&o["forwarded"]),
            t(&p["no_route"]),
            t(&p["p50_us"]),
            t(&p["p99_us"])
        );
    }
    // Return codes per proxy (an HTTP worker's status codes), where workers sent any.
    for p in v["proxies"].as_array().into_iter().flatten() {
        let codes = &p["rcodes"]["by_code"];
        let Some(map) = codes.as_object().filter(|m| !m.is_empty()) else {
            continue;
        };
        let mut line = format!("proxy {} return codes:", t(&p["id"]));
        for (code, n) in map {
            line.push_str(&format!(" {code}={}", t(n)));
        }
        if p["rcodes"]["other"].as_u64().unwrap_or(0) > 0 {
            line.push_str(&format!(" other={}", t(&p["rcodes"]["other"])));
        }
        println!("{line}");
    }
    println!();
    println!(
        "{:<28} {:<16} {:<22} {:>12} {:>12} {:>9} {:>9} {:>9}",
        "caller", "session", "address", "requests", "replies", "errors", "inflight", "unread"
    );
    // Sessions that left with nothing in flight and nothing unread are history: one line for
    // all of them (the JSON document still lists each).
    let (mut done_n, mut done_req, mut done_rep, mut done_err) = (0u64, 0u64, 0u64, 0u64);
    for c in v["callers"].as_array().into_iter().flatten() {
        let finished = c["connected"] == false
            && c["inflight"].as_u64() == Some(0)
            && c["unread"].as_u64() == Some(0);
        if finished {
            done_n += 1;
            done_req += c["requests"].as_u64().unwrap_or(0);
            done_rep += c["replies"].as_u64().unwrap_or(0);
            done_err += c["errors"].as_u64().unwrap_or(0);
            continue;
        }
        // A session found in the journal at start has no name until its caller says HELLO.
        let name = match c["name"].as_str() {
            Some("") | None => "(recovered)".to_string(),
            Some(n) => n.to_string(),
        };
        println!(
            "{:<28} {:<16} {:<22} {:>12} {:>12} {:>9} {:>9} {:>9}",
            name,
            t(&c["session"]),
            t(&c["addr"]),
            t(&c["requests"]),
            t(&c["replies"]),
            t(&c["errors"]),
            t(&c["inflight"]),
            t(&c["unread"])
        );
    }
    if done_n > 0 {
        println!(
            "{:<28} {:<16} {:<22} {:>12} {:>12} {:>9} {:>9} {:>9}",
            format!("({done_n} finished sessions)"),
            "-",
            "-",
            done_req,
            done_rep,
            done_err,
            0,
            0
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
