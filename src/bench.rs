//! `dco bench`: round-trip latency and throughput through a hub and an echo worker, measured in
//! the same run as a plain two-hop TCP relay (client -> relay -> echo -> relay -> client) that
//! does nothing but forward bytes: the floor any hub on this machine stands on.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use dco::client::{Session, SessionConfig};
use dco::journal::{Durability, Journal, JournalConfig};
use dco::wire::HubAddr;

/// Options of `dco bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// What to measure: the hub with an echo worker (default), or `http`: calls through the
    /// HTTP worker to a local HTTP server beside a direct keep-alive HTTP client.
    #[arg(value_enum)]
    mode: Option<Mode>,
    /// With `http`: calls per measurement.
    #[arg(long, default_value_t = 20_000)]
    calls: usize,
    /// With `http`: requests in flight at once, on both sides.
    #[arg(long, default_value_t = 64)]
    in_flight: usize,
    /// With `http`: interleaved repetitions of each side (the medians are printed).
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Use this running hub instead of starting one (an echo worker is still started here).
    #[arg(long)]
    hub: Option<String>,
    /// Proxy id the bench's echo worker serves.
    #[arg(long, default_value_t = 9999)]
    proxy: i32,
    /// Sequential round trips per measurement.
    #[arg(long, default_value_t = 20_000)]
    rounds: usize,
    /// Requests per pipelined measurement.
    #[arg(long, default_value_t = 1_000_000)]
    requests: usize,
    /// Requests kept in flight in the pipelined measurements.
    #[arg(long, default_value_t = 256)]
    window: usize,
    /// A short run (for smoke tests): 2,000 rounds and 50,000 requests.
    #[arg(long)]
    quick: bool,
    /// The many-sessions mode instead: for each count in the list, that many sessions, each
    /// its own connection doing call_sync in a loop, for `--seconds`; then `--clients`
    /// windowed clients. Calls per second, p50, p99 and the hub's CPU.
    #[arg(long, value_delimiter = ',')]
    sessions: Vec<usize>,
    /// With `--sessions`: seconds per measurement.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// With `--sessions`: windowed clients (each keeps `--window` requests in flight) measured
    /// after the sessions; 0 for none.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// With `--sessions`: the hub's durability (`none`, `batch`, `always`).
    #[arg(long, default_value = "batch")]
    durability: Durability,
}

/// A `dco bench` mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// The HTTP worker against a direct HTTP client.
    Http,
}

pub(crate) struct Latency {
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
}

pub(crate) fn percentiles(mut v: Vec<Duration>) -> Latency {
    if v.is_empty() {
        return Latency {
            p50: Duration::ZERO,
            p99: Duration::ZERO,
        };
    }
    v.sort_unstable();
    let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
    Latency {
        p50: at(0.50),
        p99: at(0.99),
    }
}

pub(crate) fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// A `dco hub` process on a free port, with or without a journal, in its own directory: the
/// hub runs as it does in production, in a process of its own.
pub(crate) struct LocalHub {
    child: Option<std::process::Child>,
    addr: String,
    dir: std::path::PathBuf,
}

impl LocalHub {
    pub(crate) fn start(tag: &str, durability: Option<Durability>) -> Result<LocalHub, String> {
        let dir = std::env::temp_dir().join(format!("dco-bench-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut cmd = std::process::Command::new(exe);
        cmd.args(["hub", "--listen", "127.0.0.1:0", "--unix", "none", "--data"])
            .arg(&dir)
            .env("DCO_LOG", "warn");
        match durability {
            None => {
                cmd.arg("--no-journal");
            }
            Some(d) => {
                let name = match d {
                    Durability::None => "none",
                    Durability::Batch => "batch",
                    Durability::Always => "always",
                };
                cmd.args(["--durability", name]);
            }
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start a hub: {e}"))?;
        let mut hub = LocalHub {
            child: Some(child),
            addr: String::new(),
            dir,
        };
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(a) = std::fs::read_to_string(hub.dir.join("hub.addr")) {
                if a.ends_with('\n') {
                    hub.addr = a.trim().to_string();
                    return Ok(hub);
                }
            }
            if Instant::now() > until {
                return Err("the hub did not start".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub(crate) fn addr(&self) -> String {
        self.addr.clone()
    }

    /// The hub process's id.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }
}

impl Drop for LocalHub {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A `dco worker echo` process; killed when dropped.
pub(crate) struct EchoWorker {
    child: Option<std::process::Child>,
}

impl EchoWorker {
    pub(crate) fn start(hubs: Vec<HubAddr>, proxy: i32, capacity: u32) -> EchoWorker {
        let list: Vec<String> = hubs.iter().map(|h| h.to_string()).collect();
        let child = std::env::current_exe().ok().and_then(|exe| {
            std::process::Command::new(exe)
                .args(["worker", "echo", "--proxy", &proxy.to_string(), "--hub"])
                .arg(list.join(","))
                .args(["--capacity", &capacity.max(1024).to_string()])
                .env("DCO_LOG", "warn")
                .spawn()
                .ok()
        });
        EchoWorker { child }
    }
}

impl Drop for EchoWorker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A session to `hubs` once `proxy` answers.
pub(crate) fn ready_session(hubs: &[HubAddr], proxy: i32) -> Result<Session, String> {
    let mut session = Session::new(SessionConfig::with_hubs(hubs.to_vec()));
    let ready = Instant::now() + Duration::from_secs(10);
    loop {
        session.clear_body();
        session.write(b"ping").map_err(|e| e.to_string())?;
        match session.call(proxy, Some(Duration::from_secs(2))) {
            Ok(_) => return Ok(session),
            Err(e) if Instant::now() < ready => {
                tracing::debug!("waiting for the echo worker: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(format!("the echo worker did not come up: {e}")),
        }
    }
}

fn row_latency(name: &str, l: &Latency, base: Option<&Latency>) {
    let ratio = base
        .map(|b| format!("{:.2}x", us(l.p50) / us(b.p50)))
        .unwrap_or_else(|| "1.00x".into());
    println!(
        "{:<40} {:>10.1} {:>10.1} {:>14} {:>9}",
        name,
        us(l.p50),
        us(l.p99),
        "",
        ratio
    );
}

fn row_rate(name: &str, rate: f64, base: Option<f64>) {
    let ratio = base
        .map(|b| format!("{:.2}x", rate / b))
        .unwrap_or_else(|| "1.00x".into());
    println!(
        "{:<40} {:>10} {:>10} {:>14.0} {:>9}",
        name, "", "", rate, ratio
    );
}

/// Runs the benchmark and prints the results.
pub fn run(mut a: BenchArgs) -> Result<ExitCode, String> {
    if a.quick {
        a.rounds = a.rounds.min(2_000);
        a.requests = a.requests.min(50_000);
        a.calls = a.calls.min(2_000);
        a.reps = a.reps.min(1);
    }
    if a.mode == Some(Mode::Http) {
        return crate::bench_http::run(a.calls, a.in_flight, a.reps);
    }
    if !a.sessions.is_empty() {
        return crate::bench_sessions::run(
            &a.sessions,
            a.seconds,
            a.clients,
            a.window,
            a.durability,
            a.proxy,
        );
    }
    let a = a;
    let window = a.window.max(1);

    // The main hub: the one given, or one without a journal (the routing path alone).
    let local = match &a.hub {
        Some(_) => None,
        None => Some(LocalHub::start("off", None)?),
    };
    let hub_addr = match (&a.hub, &local) {
        (Some(h), _) => h.clone(),
        (_, Some(h)) => h.addr(),
        (None, None) => return Err("no hub".into()),
    };
    let hubs = HubAddr::parse_list(&hub_addr)?;
    let echo = EchoWorker::start(hubs.clone(), a.proxy, window as u32);
    let mut session = ready_session(&hubs, a.proxy)?;

    let relay = Relay::start().map_err(|e| format!("cannot start the relay: {e}"))?;
    println!(
        "dco bench: hub {hub_addr}{}, echo worker on proxy {}, 2-hop TCP relay on {}",
        if local.is_some() { " (no journal)" } else { "" },
        a.proxy,
        relay.addr
    );
    println!(
        "rounds {} sequential, {} pipelined with {} in flight",
        a.rounds, a.requests, window
    );
    println!();
    println!(
        "{:<40} {:>10} {:>10} {:>14} {:>9}",
        "measurement", "p50 us", "p99 us", "req/s", "ratio"
    );

    let mut relay_conn = relay.connect().map_err(|e| e.to_string())?;
    for size in [64usize, 4096] {
        let body = vec![0x5au8; size];
        // Interleaved in slices, so both see the same machine.
        let (mut lr, mut ld) = (Vec::new(), Vec::new());
        sequential(&mut session, a.proxy, &body, a.rounds / 10)?;
        Relay::sequential_raw(&mut relay_conn, &body, a.rounds / 10).map_err(|e| e.to_string())?;
        let slice = 500;
        for _ in 0..(a.rounds / slice).max(1) {
            lr.extend(
                Relay::sequential_raw(&mut relay_conn, &body, slice).map_err(|e| e.to_string())?,
            );
            ld.extend(sequential_raw(&mut session, a.proxy, &body, slice)?);
        }
        let (relay_lat, dco_lat) = (percentiles(lr), percentiles(ld));
        row_latency(&format!("relay sequential {size} B"), &relay_lat, None);
        row_latency(
            &format!("dco call_sync {size} B"),
            &dco_lat,
            Some(&relay_lat),
        );
        let relay_rate = relay
            .pipelined(&body, a.requests, window)
            .map_err(|e| e.to_string())?;
        let dco_rate = pipelined(&mut session, a.proxy, &body, a.requests, window)?;
        row_rate(&format!("relay pipelined {size} B"), relay_rate, None);
        row_rate(
            &format!("dco pipelined {size} B"),
            dco_rate,
            Some(relay_rate),
        );
    }
    drop(echo);
    session.close();
    drop(local);
    if a.hub.is_some() {
        return Ok(ExitCode::SUCCESS);
    }

    // The journal: the same call with every request and reply journaled (policy none), against
    // the hub without a journal measured above; then durable throughput with group commit.
    println!();
    let body64 = vec![0x5au8; 64];
    {
        // Interleaved in small slices, so both see the same machine: no journal, journal none.
        let off = LocalHub::start("off2", None)?;
        let none = LocalHub::start("none", Some(Durability::None))?;
        let batch = LocalHub::start("batch-call", Some(Durability::Batch))?;
        let off_hubs = HubAddr::parse_list(&off.addr())?;
        let none_hubs = HubAddr::parse_list(&none.addr())?;
        let batch_hubs = HubAddr::parse_list(&batch.addr())?;
        let _e1 = EchoWorker::start(off_hubs.clone(), a.proxy, window as u32);
        let _e2 = EchoWorker::start(none_hubs.clone(), a.proxy, window as u32);
        let _e3 = EchoWorker::start(batch_hubs.clone(), a.proxy, window as u32);
        let mut s_off = ready_session(&off_hubs, a.proxy)?;
        let mut s_none = ready_session(&none_hubs, a.proxy)?;
        let mut s_batch = ready_session(&batch_hubs, a.proxy)?;
        let (mut l_off, mut l_none, mut l_batch) = (Vec::new(), Vec::new(), Vec::new());
        let (mut l_sync, mut l_relay, mut l_flush) = (Vec::new(), Vec::new(), Vec::new());
        let sync_file = SyncProbe::new(&batch.dir).map_err(|e| format!("fdatasync probe: {e}"))?;
        let slice = 500;
        for _ in 0..(a.rounds / slice).max(1) {
            Relay::sequential_raw(&mut relay_conn, &body64, 20).map_err(|e| e.to_string())?;
            l_relay.extend(
                Relay::sequential_raw(&mut relay_conn, &body64, slice)
                    .map_err(|e| e.to_string())?,
            );
            // A few unrecorded calls after each switch: both sides wake from the same idle.
            sequential_raw(&mut s_off, a.proxy, &body64, 20)?;
            l_off.extend(sequential_raw(&mut s_off, a.proxy, &body64, slice)?);
            sequential_raw(&mut s_none, a.proxy, &body64, 20)?;
            l_none.extend(sequential_raw(&mut s_none, a.proxy, &body64, slice)?);
            // Under batch a request waits for the fdatasync covering it: fewer rounds.
            sequential_raw(&mut s_batch, a.proxy, &body64, 5)?;
            l_batch.extend(sequential_raw(&mut s_batch, a.proxy, &body64, slice / 5)?);
            l_flush.extend(flush_acks(&mut s_batch, a.proxy, &body64, slice / 5)?);
            l_sync.extend(
                sync_file
                    .appends(slice / 5)
                    .map_err(|e| format!("fdatasync probe: {e}"))?,
            );
        }
        let (l_off, l_none) = (percentiles(l_off), percentiles(l_none));
        let (l_batch, l_sync) = (percentiles(l_batch), percentiles(l_sync));
        let (l_relay, l_flush) = (percentiles(l_relay), percentiles(l_flush));
        row_latency("relay sequential 64 B (interleaved)", &l_relay, None);
        row_latency("no journal: call_sync 64 B", &l_off, Some(&l_relay));
        row_latency("journal none: call_sync 64 B", &l_none, Some(&l_relay));
        row_latency("fdatasync of a 4 KiB append (same disk)", &l_sync, None);
        row_latency("journal batch: call_sync 64 B", &l_batch, Some(&l_relay));
        row_latency(
            "journal batch: flush ack, 1 request",
            &l_flush,
            Some(&l_sync),
        );
        let goal = |l: &Latency| us(l.p50) - us(l_relay.p50);
        println!(
            "{:<40} {:>10.1} {:>10} {:>14} {:>9}",
            "  batch call_sync less relay, per fsync",
            goal(&l_batch),
            "",
            "",
            format!("{:.2}x", goal(&l_batch) / us(l_sync.p50))
        );
        // PL/SQL's batch shape: 256 buffered requests, one flush, 256 replies read.
        let relay_rate = relay
            .pipelined(&body64, a.requests, window)
            .map_err(|e| e.to_string())?;
        row_rate("relay pipelined 64 B (same run)", relay_rate, None);
        for (name, sess) in [("none", &mut s_none), ("batch", &mut s_batch)] {
            let rate = batches(sess, a.proxy, &body64, a.requests / 2, 256)?;
            row_rate(
                &format!("journal {name}: 256 buffered+flush+read"),
                rate,
                None,
            );
            let rate = pipelined(sess, a.proxy, &body64, a.requests, window)?;
            row_rate(
                &format!("journal {name}: window of {window} 64 B"),
                rate,
                Some(relay_rate),
            );
        }
        s_batch.close();
        s_off.close();
        s_none.close();
    }
    {
        let hub = LocalHub::start("batch", Some(Durability::Batch))?;
        let hubs = HubAddr::parse_list(&hub.addr())?;
        let _echo = EchoWorker::start(hubs.clone(), a.proxy, 4096);
        ready_session(&hubs, a.proxy)?.close();
        let callers = 16;
        let rate = durable_callers(&hubs, a.proxy, &body64, a.requests, callers)?;
        row_rate(
            &format!("journal batch: {callers} callers, acked 64 B"),
            rate,
            None,
        );
    }
    journal_micro(a.quick)?;
    Ok(ExitCode::SUCCESS)
}

/// `callers` threads, each sending batches of buffered requests and flushing (which waits for
/// the hub's durable acknowledgement), then reading the replies. Returns acknowledged and
/// answered requests per second.
fn durable_callers(
    hubs: &[HubAddr],
    proxy: i32,
    body: &[u8],
    total: usize,
    callers: usize,
) -> Result<f64, String> {
    let per = (total / callers).max(1);
    let start = Instant::now();
    let threads: Vec<_> = (0..callers)
        .map(|_| {
            let hubs = hubs.to_vec();
            let body = body.to_vec();
            std::thread::spawn(move || -> Result<(), String> {
                let mut s = Session::new(SessionConfig::with_hubs(hubs));
                batches(&mut s, proxy, &body, per, 256)?;
                s.close();
                Ok(())
            })
        })
        .collect();
    for t in threads {
        t.join()
            .map_err(|_| "a caller thread panicked".to_string())??;
    }
    Ok((per * callers) as f64 / start.elapsed().as_secs_f64())
}

/// The journal alone: appends of 64 B records (policy none, a commit every 256 as in rounds of
/// the hub's loop) and recovery speed.
fn journal_micro(quick: bool) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("dco-bench-{}-journal", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let err = |e: std::io::Error| e.to_string();
    let records: u64 = if quick { 200_000 } else { 5_000_000 };
    let record = [0x42u8; 64];
    let mut cfg = JournalConfig::new(&dir);
    cfg.durability = Durability::None;
    let (mut j, _) = Journal::open(cfg.clone(), Box::new(|| {}), |_, _, _| {}).map_err(err)?;
    // Wait for the spare segment to be ready, as it is in a running hub.
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    for i in 0..records {
        let p = j.append(1, &[&record]).map_err(|e| e.to_string())?;
        j.pin(p);
        // A round of the hub's loop ends with a commit.
        if i % 256 == 255 {
            j.commit();
        }
    }
    let secs = start.elapsed().as_secs_f64();
    drop(j);
    row_rate(
        "journal append 64 B, policy none",
        records as f64 / secs,
        None,
    );
    let start = Instant::now();
    let mut n = 0u64;
    let (_, report) = Journal::open(cfg, Box::new(|| {}), |_, _, _| n += 1).map_err(err)?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{:<40} {:>10} {:>10} {:>14} {:>9}",
        format!(
            "journal recovery: {} MB, {} records",
            report.bytes / 1_000_000,
            n
        ),
        "",
        "",
        format!("{:.2} GB/s", report.bytes as f64 / 1e9 / secs),
        ""
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// `n` times: one request buffered, then a flush (timed: the hub's durable acknowledgement),
/// then its reply read (not timed).
fn flush_acks(s: &mut Session, proxy: i32, body: &[u8], n: usize) -> Result<Vec<Duration>, String> {
    let e = |e: dco::Error| e.to_string();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        s.write(body).map_err(e)?;
        let id = s.send(proxy, true, false).map_err(e)?;
        let t = Instant::now();
        s.flush().map_err(e)?;
        out.push(t.elapsed());
        s.read(id, Some(Duration::from_secs(30))).map_err(e)?;
    }
    Ok(out)
}

/// PL/SQL's batch shape on one session: `batch` requests buffered, one flush (the durable
/// acknowledgement), then every reply read; `total` requests. Requests per second.
fn batches(
    s: &mut Session,
    proxy: i32,
    body: &[u8],
    total: usize,
    batch: usize,
) -> Result<f64, String> {
    let e = |e: dco::Error| e.to_string();
    let start = Instant::now();
    let mut done = 0;
    while done < total {
        let n = batch.min(total - done);
        let mut first = 0;
        for i in 0..n {
            s.write(body).map_err(e)?;
            let id = s.send(proxy, true, false).map_err(e)?;
            if i == 0 {
                first = id;
            }
        }
        s.flush().map_err(e)?;
        for id in first..first + n as u64 {
            s.read(id, Some(Duration::from_secs(30))).map_err(e)?;
        }
        done += n;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

fn sequential(s: &mut Session, proxy: i32, body: &[u8], rounds: usize) -> Result<Latency, String> {
    // A tenth more, as warm-up, not counted.
    sequential_raw(s, proxy, body, rounds / 10)?;
    Ok(percentiles(sequential_raw(s, proxy, body, rounds)?))
}

/// `rounds` call_sync round trips; their durations.
fn sequential_raw(
    s: &mut Session,
    proxy: i32,
    body: &[u8],
    rounds: usize,
) -> Result<Vec<Duration>, String> {
    let mut v = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        s.write(body).map_err(|e| e.to_string())?;
        let r = s.call(proxy, None).map_err(|e| e.to_string())?;
        if r.body.len() != body.len() {
            return Err(format!(
                "echo returned {} bytes for {}",
                r.body.len(),
                body.len()
            ));
        }
        v.push(t.elapsed());
    }
    Ok(v)
}

/// Keeps `window` requests in flight; returns requests per second.
pub(crate) fn pipelined(
    s: &mut Session,
    proxy: i32,
    body: &[u8],
    total: usize,
    window: usize,
) -> Result<f64, String> {
    let e = |e: dco::Error| e.to_string();
    let start = Instant::now();
    let mut sent = 0usize;
    let mut done = 0usize;
    let mut next_read = 0u64;
    while done < total {
        // Top the window up, in one write.
        let mut batch = 0;
        while sent < total && sent - done < window {
            s.write(body).map_err(e)?;
            let id = s.send(proxy, true, false).map_err(e)?;
            if next_read == 0 {
                next_read = id;
            }
            sent += 1;
            batch += 1;
        }
        if batch > 0 {
            s.submit().map_err(e)?;
        }
        // Wait for the oldest, then take every reply already here.
        let r = s.read(next_read, None).map_err(e)?;
        if r.body.len() != body.len() {
            return Err("echo returned a wrong length".into());
        }
        next_read += 1;
        done += 1;
        while done < sent {
            match s.read(next_read, Some(Duration::ZERO)) {
                Ok(_) => {
                    next_read += 1;
                    done += 1;
                }
                Err(err) if err.status == dco::Status::Timeout => break,
                Err(err) => return Err(err.to_string()),
            }
        }
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

/// A TCP echo server behind a TCP relay, both on threads of this process.
struct Relay {
    addr: std::net::SocketAddr,
}

impl Relay {
    fn start() -> std::io::Result<Relay> {
        let echo = TcpListener::bind("127.0.0.1:0")?;
        let echo_addr = echo.local_addr()?;
        std::thread::spawn(move || {
            for s in echo.incoming().flatten() {
                std::thread::spawn(move || {
                    let _ = s.set_nodelay(true);
                    let mut r = s;
                    let mut w = match r.try_clone() {
                        Ok(w) => w,
                        Err(_) => return,
                    };
                    let _ = std::io::copy(&mut r, &mut w);
                });
            }
        });
        let relay = TcpListener::bind("127.0.0.1:0")?;
        let addr = relay.local_addr()?;
        std::thread::spawn(move || {
            for client in relay.incoming().flatten() {
                let Ok(upstream) = TcpStream::connect(echo_addr) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = upstream.set_nodelay(true);
                let (Ok(c2), Ok(u2)) = (client.try_clone(), upstream.try_clone()) else {
                    continue;
                };
                std::thread::spawn(move || pump(client, upstream));
                std::thread::spawn(move || pump(u2, c2));
            }
        });
        Ok(Relay { addr })
    }

    fn connect(&self) -> std::io::Result<TcpStream> {
        let s = TcpStream::connect(self.addr)?;
        s.set_nodelay(true)?;
        Ok(s)
    }

    /// `rounds` round trips of `body` on `s`; their durations.
    fn sequential_raw(
        s: &mut TcpStream,
        body: &[u8],
        rounds: usize,
    ) -> std::io::Result<Vec<Duration>> {
        let mut back = vec![0u8; body.len()];
        let mut v = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let t = Instant::now();
            s.write_all(body)?;
            s.read_exact(&mut back)?;
            v.push(t.elapsed());
        }
        Ok(v)
    }

    /// Same pattern as the dco pipeline: keep `window` messages in flight, read in bulk.
    fn pipelined(&self, body: &[u8], total: usize, window: usize) -> std::io::Result<f64> {
        let mut s = self.connect()?;
        let mut r = s.try_clone()?;
        let size = body.len();
        let mut out = Vec::with_capacity(window * size);
        let mut inbuf = vec![0u8; 256 * 1024];
        let mut pending_bytes = 0usize;
        let start = Instant::now();
        let (mut sent, mut done) = (0usize, 0usize);
        while done < total {
            out.clear();
            while sent < total && sent - done < window {
                out.extend_from_slice(body);
                sent += 1;
            }
            if !out.is_empty() {
                s.write_all(&out)?;
            }
            let n = r.read(&mut inbuf)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            pending_bytes += n;
            done += pending_bytes / size;
            pending_bytes %= size;
        }
        Ok(total as f64 / start.elapsed().as_secs_f64())
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

/// A file beside a hub's journal, for timing what one fdatasync of a small append costs on
/// that disk in the same run.
struct SyncProbe {
    file: std::fs::File,
    path: std::path::PathBuf,
}

impl SyncProbe {
    fn new(dir: &std::path::Path) -> std::io::Result<SyncProbe> {
        let path = dir.join("fdatasync-probe");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)?;
        Ok(SyncProbe { file, path })
    }

    /// `n` appends of 4 KiB, each followed by fdatasync; their durations.
    fn appends(&self, n: usize) -> std::io::Result<Vec<Duration>> {
        let block = [0x5au8; 4096];
        let mut f = &self.file;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            f.write_all(&block)?;
            self.file.sync_data()?;
            v.push(t.elapsed());
        }
        Ok(v)
    }
}

impl Drop for SyncProbe {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
