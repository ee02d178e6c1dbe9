//! `dco bench http`: calls per second and latency through caller -> hub -> `dco worker http`
//! -> a local HTTP server, beside a plain keep-alive HTTP client hitting the same server with
//! the same number of requests in flight, measured in the same run, interleaved.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dco::client::{Session, SessionConfig};
use dco::wire::HubAddr;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};

/// What one measurement gave.
struct Run {
    rate: f64,
    p50: Duration,
    p99: Duration,
}

fn summarize(mut lat: Vec<Duration>, elapsed: Duration) -> Run {
    lat.sort_unstable();
    let at = |q: f64| {
        lat.get(((lat.len() as f64 * q) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Run {
        rate: lat.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.5),
        p99: at(0.99),
    }
}

/// The HTTP server: POST echoes the body, with HTTP/1.1 keep-alive.
fn start_server(rt: &tokio::runtime::Runtime) -> Result<std::net::SocketAddr, String> {
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .map_err(|e| format!("cannot bind the HTTP server: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    rt.spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    |req: hyper::Request<hyper::body::Incoming>| async move {
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|c| c.to_bytes())
                            .unwrap_or_default();
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(body)))
                    },
                );
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    Ok(addr)
}

/// `total` POSTs with `in_flight` at once from a reqwest client with a keep-alive pool.
fn direct(
    rt: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    url: &str,
    body: &Bytes,
    total: usize,
    in_flight: usize,
) -> Result<Run, String> {
    rt.block_on(async {
        let start = Instant::now();
        let per = total / in_flight;
        let mut tasks = Vec::with_capacity(in_flight);
        for _ in 0..in_flight {
            let (client, url, body) = (client.clone(), url.to_string(), body.clone());
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::with_capacity(per);
                for _ in 0..per {
                    let t = Instant::now();
                    let r = client.post(&url).body(body.clone()).send().await?;
                    let b = r.bytes().await?;
                    debug_assert_eq!(b.len(), body.len());
                    lat.push(t.elapsed());
                }
                Ok::<_, reqwest::Error>(lat)
            }));
        }
        let mut all = Vec::with_capacity(total);
        for t in tasks {
            all.extend(
                t.await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?,
            );
        }
        Ok(summarize(all, start.elapsed()))
    })
}

/// `total` calls through the hub with `in_flight` outstanding: a sliding window on one session.
fn through_dco(
    s: &mut Session,
    proxy: i32,
    msg: &[u8],
    total: usize,
    in_flight: usize,
) -> Result<Run, String> {
    let mut window: VecDeque<(u64, Instant)> = VecDeque::with_capacity(in_flight);
    let mut lat = Vec::with_capacity(total);
    let start = Instant::now();
    let mut sent = 0;
    while lat.len() < total {
        while sent < total && window.len() < in_flight {
            s.write(msg).map_err(|e| e.to_string())?;
            let id = s.send(proxy, true, false).map_err(|e| e.to_string())?;
            window.push_back((id, Instant::now()));
            sent += 1;
        }
        s.flush().map_err(|e| e.to_string())?;
        let Some((id, t)) = window.pop_front() else {
            break;
        };
        let r = s
            .read(id, Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        if r.rcode != 200 {
            return Err(format!("the HTTP worker answered rcode {}", r.rcode));
        }
        lat.push(t.elapsed());
    }
    Ok(summarize(lat, start.elapsed()))
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the HTTP benchmark: `total` requests per measurement, `in_flight` at once, `reps`
/// interleaved repetitions of each side; prints medians.
pub fn run(total: usize, in_flight: usize, reps: usize) -> Result<ExitCode, String> {
    let in_flight = in_flight.max(1);
    let total = (total / in_flight).max(1) * in_flight;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let srv = start_server(&rt)?;
    // The direct client runs on threads of its own, as a separate program's would, not on the
    // server's (where client and server tasks would hand off without a thread switch).
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let url = format!("http://{srv}/echo");
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;

    let dir = std::env::temp_dir().join(format!("dco-bench-http-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let hub = Kill(
        Command::new(&exe)
            .args(["hub", "--listen", "127.0.0.1:0", "--unix", "none", "--data"])
            .arg(&dir)
            .args(["--durability", "none"])
            .env("DCO_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start a hub: {e}"))?,
    );
    let until = Instant::now() + Duration::from_secs(20);
    let hub_addr = loop {
        if let Ok(a) = std::fs::read_to_string(dir.join("hub.addr")) {
            if a.ends_with('\n') {
                break a.trim().to_string();
            }
        }
        if Instant::now() > until {
            return Err("the hub did not start".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let proxy = 80;
    let _worker = Kill(
        Command::new(&exe)
            .args([
                "worker",
                "http",
                "--proxy",
                &proxy.to_string(),
                "--hub",
                &hub_addr,
            ])
            .args(["--base-url", &format!("http://{srv}")])
            .args(["--concurrency", &in_flight.to_string()])
            .env("DCO_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the HTTP worker: {e}"))?,
    );
    let body = Bytes::from(vec![b'x'; 64]);
    let mut msg = b"POST /echo HTTP/1.1\r\nContent-Type: application/octet-stream\r\n\r\n".to_vec();
    msg.extend_from_slice(&body);

    let mut s = Session::new(SessionConfig::with_hubs(HubAddr::parse_list(&hub_addr)?));
    let ready = Instant::now() + Duration::from_secs(10);
    loop {
        s.clear_body();
        s.write(&msg).map_err(|e| e.to_string())?;
        match s.call(proxy, Some(Duration::from_secs(2))) {
            Ok(_) => break,
            Err(e) if Instant::now() < ready => {
                tracing::debug!("waiting for the HTTP worker: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(format!("the HTTP worker did not come up: {e}")),
        }
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(in_flight)
        .tcp_nodelay(true)
        .build()
        .map_err(|e| e.to_string())?;

    println!(
        "dco bench http: hub {hub_addr} (journal none), dco worker http on proxy {proxy}, \
         HTTP server {srv}"
    );
    println!(
        "{total} POSTs of 64 B per measurement, {in_flight} in flight, {reps} interleaved \
         repetitions, medians"
    );
    println!();
    // Warm both paths (connections, pools).
    direct(&client_rt, &client, &url, &body, in_flight * 20, in_flight)?;
    through_dco(&mut s, proxy, &msg, in_flight * 20, in_flight)?;
    let (mut d_runs, mut h_runs) = (Vec::new(), Vec::new());
    for _ in 0..reps.max(1) {
        d_runs.push(direct(&client_rt, &client, &url, &body, total, in_flight)?);
        h_runs.push(through_dco(&mut s, proxy, &msg, total, in_flight)?);
    }
    let med = |runs: &[Run], f: &dyn Fn(&Run) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let (dr, hr) = (med(&d_runs, &|r| r.rate), med(&h_runs, &|r| r.rate));
    println!(
        "{:<44} {:>10} {:>10} {:>10} {:>7}",
        "measurement", "calls/s", "p50 us", "p99 us", "ratio"
    );
    println!(
        "{:<44} {:>10.0} {:>10.0} {:>10.0} {:>7}",
        "direct: reqwest keep-alive client -> server",
        dr,
        med(&d_runs, &|r| us(r.p50)),
        med(&d_runs, &|r| us(r.p99)),
        "1.00x"
    );
    println!(
        "{:<44} {:>10.0} {:>10.0} {:>10.0} {:>6.2}x",
        "dco: caller -> hub -> http worker -> server",
        hr,
        med(&h_runs, &|r| us(r.p50)),
        med(&h_runs, &|r| us(r.p99)),
        hr / dr
    );
    s.close();
    // The worker first, so that it does not report the hub going away.
    drop(_worker);
    drop(hub);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(ExitCode::SUCCESS)
}
