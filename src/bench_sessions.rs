//! `dco bench --sessions N,...`: many sessions at once against one hub, each its own connection
//! doing call_sync in a loop (the shape of many database sessions calling out), then windowed
//! clients (each keeps a window of requests in flight). Prints calls per second, p50 and p99,
//! and how many cores the hub's process used meanwhile.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use dco::client::{Session, SessionConfig};
use dco::journal::Durability;
use dco::wire::HubAddr;

use crate::bench::{percentiles, pipelined, ready_session, us, EchoWorker, LocalHub};

/// CPU seconds (user + system) process `pid` has used, from /proc/PID/stat.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count from the closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of the file (utime, stime) are the 12th and 13th after the name.
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Some(ticks / if hz > 0 { hz as f64 } else { 100.0 })
}

/// Raises this process's soft limit on open files to its hard limit (thousands of sessions).
fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the struct we pass, nothing else.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Runs the mode and prints its table.
pub fn run(
    counts: &[usize],
    seconds: u64,
    clients: usize,
    window: usize,
    durability: Durability,
    proxy: i32,
) -> Result<ExitCode, String> {
    raise_nofile();
    let hub = LocalHub::start("sessions", Some(durability))?;
    let hubs = HubAddr::parse_list(&hub.addr())?;
    let most = counts.iter().copied().max().unwrap_or(1).max(window);
    let _echo = EchoWorker::start(hubs.clone(), proxy, most as u32);
    ready_session(&hubs, proxy)?.close();
    let pid = hub.pid().ok_or("the hub is not running")?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "dco bench --sessions: hub {} (journal {durability:?}), {cores} cores here, echo \
         worker on proxy {proxy}, {seconds} s per measurement, 64 B bodies",
        hub.addr()
    );
    println!();
    println!(
        "{:<40} {:>10} {:>10} {:>14} {:>9}",
        "measurement", "p50 us", "p99 us", "calls/s", "hub cores"
    );
    let body = vec![0x5au8; 64];
    for &n in counts {
        let n = n.max(1);
        let stop = Arc::new(AtomicBool::new(false));
        let ready = Arc::new(Barrier::new(n + 1));
        let threads: Vec<_> = (0..n)
            .map(|_| {
                let (hubs, body, stop, ready) =
                    (hubs.clone(), body.clone(), stop.clone(), ready.clone());
                std::thread::Builder::new()
                    .stack_size(256 << 10)
                    .spawn(move || -> Result<Vec<Duration>, String> {
                        // At the barrier whatever happened: the main thread waits there.
                        let s = ready_session(&hubs, proxy);
                        ready.wait();
                        let mut s = s?;
                        let mut lat = Vec::new();
                        while !stop.load(Ordering::Relaxed) {
                            s.write(&body).map_err(|e| e.to_string())?;
                            let t = Instant::now();
                            s.call(proxy, Some(Duration::from_secs(30)))
                                .map_err(|e| e.to_string())?;
                            lat.push(t.elapsed());
                        }
                        s.close();
                        Ok(lat)
                    })
                    .map_err(|e| format!("cannot start a session thread: {e}"))
            })
            .collect::<Result<_, _>>()?;
        ready.wait();
        let (t0, c0) = (Instant::now(), cpu_seconds(pid));
        std::thread::sleep(Duration::from_secs(seconds));
        stop.store(true, Ordering::Relaxed);
        let (secs, c1) = (t0.elapsed().as_secs_f64(), cpu_seconds(pid));
        let mut all = Vec::new();
        for t in threads {
            all.extend(
                t.join()
                    .map_err(|_| "a session thread panicked".to_string())??,
            );
        }
        let calls = all.len();
        let l = percentiles(all);
        let hub_cores = match (c0, c1) {
            (Some(a), Some(b)) => format!("{:.2}", (b - a) / secs),
            _ => "?".into(),
        };
        println!(
            "{:<40} {:>10.1} {:>10.1} {:>14.0} {:>9}",
            format!("{n} sessions, call_sync"),
            us(l.p50),
            us(l.p99),
            calls as f64 / secs,
            hub_cores
        );
    }
    if clients > 0 {
        let ready = Arc::new(Barrier::new(clients + 1));
        let threads: Vec<_> = (0..clients)
            .map(|_| {
                let (hubs, body, ready) = (hubs.clone(), body.clone(), ready.clone());
                std::thread::spawn(move || -> Result<(usize, f64), String> {
                    let mut s = Session::new(SessionConfig::with_hubs(hubs));
                    // Sized to take about `seconds` at a few hundred thousand per second.
                    let total = 200_000 * seconds as usize;
                    let warm = pipelined(&mut s, proxy, &body, 1000, window);
                    // At the barrier whatever happened: the main thread waits there.
                    ready.wait();
                    warm?;
                    let rate = pipelined(&mut s, proxy, &body, total, window)?;
                    s.close();
                    Ok((total, rate))
                })
            })
            .collect();
        ready.wait();
        let (t0, c0) = (Instant::now(), cpu_seconds(pid));
        let mut total = 0;
        for t in threads {
            let (n, _) = t
                .join()
                .map_err(|_| "a client thread panicked".to_string())??;
            total += n;
        }
        let (secs, c1) = (t0.elapsed().as_secs_f64(), cpu_seconds(pid));
        let hub_cores = match (c0, c1) {
            (Some(a), Some(b)) => format!("{:.2}", (b - a) / secs),
            _ => "?".into(),
        };
        println!(
            "{:<40} {:>10} {:>10} {:>14.0} {:>9}",
            format!("{clients} clients, window of {window}"),
            "",
            "",
            total as f64 / secs,
            hub_cores
        );
    }
    Ok(ExitCode::SUCCESS)
}
