//! `dco bench`: round-trip latency and throughput through a hub and an echo worker, measured in
//! the same run as a plain two-hop TCP relay (client -> relay -> echo -> relay -> client) that
//! does nothing but forward bytes: the floor any hub on this machine stands on.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dco::client::{Session, SessionConfig};
use dco::hub::{HubConfig, HubHandle};
use dco::wire::HubAddr;
use dco::worker::{self, Echo, WorkerConfig};

/// Options of `dco bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
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
}

struct Latency {
    p50: Duration,
    p99: Duration,
}

fn percentiles(mut v: Vec<Duration>) -> Latency {
    v.sort_unstable();
    let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
    Latency {
        p50: at(0.50),
        p99: at(0.99),
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Runs the benchmark and prints the results.
pub fn run(mut a: BenchArgs) -> Result<ExitCode, String> {
    if a.quick {
        a.rounds = a.rounds.min(2_000);
        a.requests = a.requests.min(50_000);
    }
    let a = a;
    let window = a.window.max(1);

    // The hub: the one given, or one on a free port of this process.
    let local: Option<HubHandle> = match &a.hub {
        Some(_) => None,
        None => {
            let data = std::env::temp_dir().join(format!("dco-bench-{}", std::process::id()));
            let cfg = HubConfig {
                listen: Some("127.0.0.1:0".into()),
                unix: None,
                journal: None,
                data,
                ..HubConfig::default()
            };
            Some(dco::hub::spawn(cfg).map_err(|e| format!("cannot start a hub: {e}"))?)
        }
    };
    let hub_addr = match (&a.hub, &local) {
        (Some(h), _) => h.clone(),
        (None, Some(h)) => h.addr(),
        (None, None) => unreachable!("a hub is either given or started"),
    };
    let hubs = HubAddr::parse_list(&hub_addr)?;

    // The echo worker.
    let stop = Arc::new(AtomicBool::new(false));
    let mut wcfg = WorkerConfig::new(hubs.clone(), vec![a.proxy]);
    wcfg.name = "bench-echo".into();
    wcfg.capacity = (window as u32).max(1024);
    let wstop = stop.clone();
    let worker = std::thread::spawn(move || worker::run(&wcfg, &mut Echo, &wstop));

    let mut session = Session::new(SessionConfig::with_hubs(hubs));
    // Wait until the worker is registered: a call succeeds.
    let ready = Instant::now() + Duration::from_secs(10);
    loop {
        session.write(b"ping").map_err(|e| e.to_string())?;
        match session.call(a.proxy, Some(Duration::from_secs(2))) {
            Ok(_) => break,
            Err(e) if Instant::now() < ready => {
                session.clear_body();
                tracing::debug!("waiting for the echo worker: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(format!("the echo worker did not come up: {e}")),
        }
    }

    let relay = Relay::start().map_err(|e| format!("cannot start the relay: {e}"))?;
    println!("dco bench: hub {hub_addr}, echo worker on proxy {}, 2-hop TCP relay on {}", a.proxy, relay.addr);
    println!("rounds {} sequential, {} pipelined with {} in flight", a.rounds, a.requests, window);
    println!();
    println!("{:<34} {:>10} {:>10} {:>14} {:>9}", "measurement", "p50 us", "p99 us", "req/s", "vs relay");

    for size in [64usize, 4096] {
        let body = vec![0x5au8; size];
        let relay_lat = relay.sequential(&body, a.rounds).map_err(|e| e.to_string())?;
        let dco_lat = sequential(&mut session, a.proxy, &body, a.rounds)?;
        println!(
            "{:<34} {:>10.1} {:>10.1} {:>14} {:>9}",
            format!("relay sequential {size} B"),
            us(relay_lat.p50),
            us(relay_lat.p99),
            "",
            "1.00x"
        );
        println!(
            "{:<34} {:>10.1} {:>10.1} {:>14} {:>8.2}x",
            format!("dco call_sync {size} B"),
            us(dco_lat.p50),
            us(dco_lat.p99),
            "",
            us(dco_lat.p50) / us(relay_lat.p50)
        );
        let relay_rate = relay.pipelined(&body, a.requests, window).map_err(|e| e.to_string())?;
        let dco_rate = pipelined(&mut session, a.proxy, &body, a.requests, window)?;
        println!(
            "{:<34} {:>10} {:>10} {:>14.0} {:>9}",
            format!("relay pipelined {size} B"),
            "",
            "",
            relay_rate,
            "1.00x"
        );
        println!(
            "{:<34} {:>10} {:>10} {:>14.0} {:>8.2}x",
            format!("dco pipelined {size} B"),
            "",
            "",
            dco_rate,
            dco_rate / relay_rate
        );
    }

    stop.store(true, Ordering::SeqCst);
    session.close();
    let _ = worker.join();
    drop(local);
    Ok(ExitCode::SUCCESS)
}

fn sequential(s: &mut Session, proxy: i32, body: &[u8], rounds: usize) -> Result<Latency, String> {
    let mut v = Vec::with_capacity(rounds);
    for i in 0..rounds + rounds / 10 {
        let t = Instant::now();
        s.write(body).map_err(|e| e.to_string())?;
        let r = s.call(proxy, None).map_err(|e| e.to_string())?;
        if r.body.len() != body.len() {
            return Err(format!("echo returned {} bytes for {}", r.body.len(), body.len()));
        }
        if i >= rounds / 10 {
            v.push(t.elapsed());
        }
    }
    Ok(percentiles(v))
}

/// Keeps `window` requests in flight; returns requests per second.
fn pipelined(
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

    fn sequential(&self, body: &[u8], rounds: usize) -> std::io::Result<Latency> {
        let mut s = self.connect()?;
        let mut back = vec![0u8; body.len()];
        let mut v = Vec::with_capacity(rounds);
        for i in 0..rounds + rounds / 10 {
            let t = Instant::now();
            s.write_all(body)?;
            s.read_exact(&mut back)?;
            if i >= rounds / 10 {
                v.push(t.elapsed());
            }
        }
        Ok(percentiles(v))
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
