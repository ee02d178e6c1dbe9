//! Shared test harness: real `dco` processes on free ports, killed when dropped. They log
//! errors only: the warnings the tests provoke on purpose would fill the screen of a passing
//! run (set DCO_LOG in a process's environment here to see them).
#![allow(dead_code)]

pub mod cbuild;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `dco` binary built for this test run.
pub fn dco_bin() -> &'static str {
    env!("CARGO_BIN_EXE_dco")
}

/// A fresh temporary directory, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        TempDir::new_in(&std::env::temp_dir(), tag)
    }

    /// A fresh directory in `parent`.
    #[allow(dead_code)]
    pub fn new_in(parent: &Path, tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = parent.join(format!("dco-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed (SIGKILL) and reaped when dropped.
pub struct Proc(pub Child);

impl Proc {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Sends SIGTERM and waits up to `wait` for the exit; returns the exit status if it exited.
    pub fn terminate(&mut self, wait: Duration) -> Option<std::process::ExitStatus> {
        // SAFETY: kill(2) on our own child's pid; it has not been reaped yet.
        unsafe {
            libc::kill(self.0.id() as i32, libc::SIGTERM);
        }
        let until = Instant::now() + wait;
        while Instant::now() < until {
            if let Ok(Some(st)) = self.0.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A hub process on a free TCP port and a Unix socket in its own data directory.
pub struct Hub {
    pub proc: Proc,
    pub addr: String,
    pub unix: PathBuf,
    pub dir: TempDir,
    pub extra: Vec<String>,
    /// Environment variables set for the hub (and its restarts).
    pub env: Vec<(String, String)>,
}

/// Where a test hub's log goes: a file named after its data directory in the system's
/// temporary directory (not beside the data, which may sit on a small test file system),
/// appended to across restarts.
fn hub_log(dir: &Path) -> PathBuf {
    let name: String = dir
        .to_string_lossy()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    std::env::temp_dir().join(format!("dco-test-log{name}.log"))
}

fn spawn_hub(
    listen: &str,
    dir: &Path,
    extra: &[String],
    env: &[(String, String)],
) -> (Proc, String) {
    let addr_file = dir.join("hub.addr");
    let _ = std::fs::remove_file(&addr_file);
    // The log goes to a file, shown only if the test fails (see Hub's Drop).
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(hub_log(dir))
        .expect("open the hub's log file");
    let child = Command::new(dco_bin())
        .arg("hub")
        .arg("--listen")
        .arg(listen)
        .arg("--data")
        .arg(dir)
        .args(extra)
        .env("DCO_LOG", "info")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn dco hub");
    let mut proc = Proc(child);
    let until = Instant::now() + Duration::from_secs(20);
    let addr = loop {
        if let Ok(s) = std::fs::read_to_string(&addr_file) {
            if s.ends_with('\n') {
                break s.trim().to_string();
            }
        }
        if let Ok(Some(st)) = proc.0.try_wait() {
            panic!("the hub exited at start: {st}");
        }
        assert!(Instant::now() < until, "the hub did not start");
        std::thread::sleep(Duration::from_millis(10));
    };
    (proc, addr)
}

impl Drop for Hub {
    fn drop(&mut self) {
        // A failing test shows what its hub said (a passing one stays quiet).
        if std::thread::panicking() {
            let log = hub_log(self.dir.path());
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(200).collect();
            eprintln!("--- the hub's log ({}), last lines ---", log.display());
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
        let _ = std::fs::remove_file(hub_log(self.dir.path()));
    }
}

impl Hub {
    /// Starts `dco hub` with extra arguments and waits until it listens.
    pub fn start(extra: &[&str]) -> Hub {
        let dir = TempDir::new("hub");
        Hub::start_in(dir, extra)
    }

    /// Starts `dco hub` on the data directory `dir`.
    pub fn start_in(dir: TempDir, extra: &[&str]) -> Hub {
        Hub::start_env(dir, extra, &[])
    }

    /// Starts `dco hub` listening on `listen` (such as 0.0.0.0:0).
    #[allow(dead_code)]
    pub fn start_on(listen: &str, extra: &[&str]) -> Hub {
        Hub::launch(listen, TempDir::new("hub"), extra, &[])
    }

    /// Starts `dco hub` on the data directory `dir` with environment variables `env`.
    pub fn start_env(dir: TempDir, extra: &[&str], env: &[(&str, &str)]) -> Hub {
        Hub::launch("127.0.0.1:0", dir, extra, env)
    }

    fn launch(listen: &str, dir: TempDir, extra: &[&str], env: &[(&str, &str)]) -> Hub {
        let unix = dir.path().join("dco.sock");
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let (proc, addr) = spawn_hub(listen, dir.path(), &extra, &env);
        Hub {
            proc,
            addr,
            unix,
            dir,
            extra,
            env,
        }
    }

    /// Kills the hub with SIGKILL and starts it again on the same address and data directory.
    pub fn kill_and_restart(&mut self) {
        self.proc.kill();
        let (proc, addr) = spawn_hub(&self.addr, self.dir.path(), &self.extra, &self.env);
        assert_eq!(addr, self.addr);
        self.proc = proc;
    }

    /// Stops the hub with SIGTERM (it quits gracefully) and starts it again on the same address
    /// and data directory.
    pub fn terminate_and_restart(&mut self) {
        assert!(self.proc.terminate(Duration::from_secs(10)).is_some());
        let (proc, addr) = spawn_hub(&self.addr, self.dir.path(), &self.extra, &self.env);
        assert_eq!(addr, self.addr);
        self.proc = proc;
    }

    /// `unix:/path` for this hub.
    pub fn unix_addr(&self) -> String {
        format!("unix:{}", self.unix.display())
    }

    /// The statistics JSON, fetched with `dco stats --json`.
    pub fn stats(&self) -> serde_json::Value {
        let out = Command::new(dco_bin())
            .args(["stats", "--json", "--hub", &self.addr])
            .output()
            .expect("run dco stats");
        assert!(
            out.status.success(),
            "dco stats failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("stats JSON")
    }

    /// Waits until the first worker holds `n` requests (per the hub's statistics).
    pub fn wait_worker_inflight(&self, n: u64) {
        let until = Instant::now() + Duration::from_secs(10);
        while self.stats()["workers"][0]["inflight"] != n {
            assert!(Instant::now() < until, "the worker never held {n} requests");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `n` workers serve `proxy` (per the hub's statistics).
    pub fn wait_workers(&self, proxy: i32, n: u64) {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let v = self.stats();
            let have = v["proxies"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["id"] == proxy)
                .and_then(|p| p["workers"].as_u64())
                .unwrap_or(0);
            if have == n {
                return;
            }
            assert!(
                Instant::now() < until,
                "proxy {proxy} has {have} workers, want {n}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Starts `dco worker echo --proxy P --delay-ms D` against `hub`: a worker that holds each
/// request `delay_ms` before answering.
pub fn slow_echo_worker(hub: &str, proxy: i32, delay_ms: u64) -> Proc {
    let child = Command::new(dco_bin())
        .args(["worker", "echo", "--proxy", &proxy.to_string()])
        .args(["--delay-ms", &delay_ms.to_string(), "--hub", hub])
        .env("DCO_LOG", "error")
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn dco worker");
    Proc(child)
}

/// Starts `dco worker echo --proxy P` against `hub`.
pub fn echo_worker(hub: &str, proxy: i32) -> Proc {
    let child = Command::new(dco_bin())
        .args([
            "worker",
            "echo",
            "--proxy",
            &proxy.to_string(),
            "--hub",
            hub,
        ])
        .env("DCO_LOG", "error")
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn dco worker");
    Proc(child)
}

/// A TCP port on 127.0.0.1 that is bound but not listening: connecting to it is refused, and no
/// other process (a hub of a parallel test, say) can take it while this lives.
pub struct ClosedPort {
    fd: i32,
    pub addr: String,
}

impl ClosedPort {
    pub fn new() -> ClosedPort {
        // SAFETY: plain socket calls on a socket we own; `sa` is a properly sized sockaddr_in.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
            let mut sa: libc::sockaddr_in = std::mem::zeroed();
            sa.sin_family = libc::AF_INET as libc::sa_family_t;
            sa.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
            let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            let p = &mut sa as *mut libc::sockaddr_in as *mut libc::sockaddr;
            assert_eq!(
                libc::bind(fd, p, len),
                0,
                "bind: {}",
                std::io::Error::last_os_error()
            );
            assert_eq!(libc::getsockname(fd, p, &mut len), 0, "getsockname");
            let port = u16::from_be(sa.sin_port);
            ClosedPort {
                fd,
                addr: format!("127.0.0.1:{port}"),
            }
        }
    }
}

impl Drop for ClosedPort {
    fn drop(&mut self) {
        // SAFETY: our own descriptor, closed once.
        unsafe {
            libc::close(self.fd);
        }
    }
}

/// A worker thread in this process running `handler` on `proxies`; stopped when dropped.
pub struct InProc {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<dco::Result<()>>>,
}

impl InProc {
    pub fn start<H>(hub: &str, proxies: Vec<i32>, mut handler: H) -> InProc
    where
        H: FnMut(
                &dco::worker::Delivery<'_>,
                &mut dco::worker::ReplyBuf<'_>,
            ) -> dco::worker::Outcome
            + Send
            + 'static,
    {
        let hubs = dco::wire::HubAddr::parse_list(hub).unwrap();
        let cfg = dco::worker::WorkerConfig::new(hubs, proxies);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || dco::worker::run(&cfg, &mut handler, &s));
        InProc {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for InProc {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Sends requests of `body` to `proxy` (up to `most`) until one is refused with
/// `DCO_E_BUSY`, which comes back at once as its answer: the ids accepted (still waiting), and
/// the refusal if one came.
pub fn send_until_busy(
    s: &mut dco::client::Session,
    proxy: i32,
    body: &[u8],
    most: usize,
) -> (Vec<u64>, Option<dco::Error>) {
    let mut accepted = Vec::new();
    for _ in 0..most {
        s.write(body).unwrap();
        let id = s.send(proxy, false, false).unwrap();
        // Once the hub has acknowledged the request, a refusal has already arrived (the hub
        // writes it before the acknowledgement): look without waiting.
        s.flush().unwrap();
        match s.read(id, Some(Duration::ZERO)) {
            Err(e) if e.status == dco::Status::Busy => return (accepted, Some(e)),
            Err(e) if e.status == dco::Status::Timeout => accepted.push(id),
            other => panic!("unexpected {other:?}"),
        }
    }
    (accepted, None)
}

/// Calls `proxy` with `body` until the hub takes it (a refusal with `DCO_E_BUSY` is tried again
/// for up to `within`), and checks the echo.
pub fn call_until_taken(s: &mut dco::client::Session, proxy: i32, body: &[u8], within: Duration) {
    let until = Instant::now() + within;
    loop {
        s.write(body).unwrap();
        match s.call(proxy, Some(Duration::from_secs(5))) {
            Ok(r) => {
                assert_eq!(r.body, body);
                return;
            }
            Err(e) if e.status == dco::Status::Busy && Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("{e}"),
        }
    }
}
