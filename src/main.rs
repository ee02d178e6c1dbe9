//! The `dco` command: run a hub or a worker, call a proxy, read statistics, measure.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use dco::client::{Session, SessionConfig};
use dco::hub::{HubConfig, Listeners, Shutdown};
use dco::wire::{self, HubAddr};
use dco::worker::{self, Echo, WorkerConfig};

mod bench;
mod bench_http;
mod bench_sessions;
mod hub_settings;
mod metrics;
mod stats;

#[derive(Parser)]
#[command(
    name = "dco",
    version,
    about = "Call-out middleware for Oracle PL/SQL and C programs"
)]
struct Cli {
    /// Log format on standard error: text (coloured only on a terminal) or json (one object
    /// per line, for log shippers). The level comes from DCO_LOG (default info).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "DCO_LOG_FORMAT"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run a hub (defaults: TCP 127.0.0.1:7790, Unix socket dco-data/dco.sock, data dco-data).
    Hub(Box<hub_settings::HubArgs>),
    /// Run a built-in worker.
    Worker {
        #[command(subcommand)]
        kind: WorkerKind,
    },
    /// Send standard input as one request to a proxy and print the reply.
    Call {
        /// Proxy id.
        #[arg(long, required_unless_present_any = ["read", "service"], conflicts_with = "service")]
        proxy: Option<i32>,
        /// Service name, routed to a proxy by the hub's [[route]] tables (instead of --proxy).
        #[arg(long)]
        service: Option<String>,
        /// Hub list (default: DCO_HUB, else 127.0.0.1:7790).
        #[arg(long)]
        hub: Option<String>,
        /// Timeout in milliseconds (negative, such as -1: wait without limit).
        #[arg(long, default_value_t = 10_000, allow_negative_numbers = true)]
        timeout_ms: i64,
        /// Past the timeout, leave the request running and exit with status 14 (DCO_E_QUEUED),
        /// printing its session and request ids; `dco call --session S --read ID` picks the
        /// answer up later.
        #[arg(long)]
        queue_on_timeout: bool,
        /// With --read: the session (16 hex digits) a queued request was sent in.
        #[arg(long, requires = "read")]
        session: Option<String>,
        /// Read the answer of request ID of --session instead of sending standard input
        /// (the hub holds it for --reply-ttl-s after the sending process left).
        #[arg(long, requires = "session", value_name = "ID")]
        read: Option<u64>,
    },
    /// Move the requests waiting for proxy FROM (queued, or waiting for a retry) to proxy TO,
    /// for the day a service migrates: each is journaled anew for TO, so a restart finds it
    /// there. Requests a worker holds stay. Prints how many moved.
    Reroute {
        /// The proxy whose waiting requests move.
        #[arg(long)]
        from: i32,
        /// The proxy they go to (one the hub knows).
        #[arg(long)]
        to: i32,
        /// Hub list (default: DCO_HUB, else 127.0.0.1:7790); the first that answers.
        #[arg(long)]
        hub: Option<String>,
    },
    /// Make the hub running on a data directory re-read its configuration file (as SIGHUP
    /// does): per-proxy modes and retry policies change without dropping a connection or a
    /// request. Prints what the hub said; exits 1 if it refused the file.
    Reload {
        /// The hub's data directory.
        #[arg(long, default_value = "dco-data")]
        data: PathBuf,
        /// How long to wait for the hub's answer, in milliseconds.
        #[arg(long, default_value_t = 10_000)]
        timeout_ms: u64,
    },
    /// Print the hub's live statistics per caller, worker and proxy.
    Stats {
        /// Hub list (default: DCO_HUB, else 127.0.0.1:7790).
        #[arg(long)]
        hub: Option<String>,
        /// Print the raw JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Measure round-trip latency and throughput against a hub and an echo worker, beside a plain
    /// TCP relay measured in the same run.
    Bench(bench::BenchArgs),
}

#[derive(Subcommand)]
enum WorkerKind {
    /// Reply with the request body, byte for byte.
    Echo {
        /// Proxy id(s) to serve (repeat or comma-separate).
        #[arg(long, value_delimiter = ',', required = true)]
        proxy: Vec<i32>,
        /// Hub list (default: DCO_HUB, else 127.0.0.1:7790).
        #[arg(long)]
        hub: Option<String>,
        /// Worker threads, each with its own connection.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Requests the hub may hand each connection before it answers.
        #[arg(long, default_value_t = 1024)]
        capacity: u32,
        /// Wait this long before each reply (to simulate a slow service).
        #[arg(long, default_value_t = 0)]
        delay_ms: u64,
    },
    /// Serve a proxy by calling HTTP services: the request body is an HTTP/1.1 request
    /// message (path relative to --base-url), the reply the HTTP/1.1 response message.
    Http(Box<HttpArgs>),
}

#[derive(clap::Args)]
struct HttpArgs {
    /// Proxy id(s) to serve (repeat or comma-separate).
    #[arg(long, value_delimiter = ',', required = true)]
    proxy: Vec<i32>,
    /// Hub list (default: DCO_HUB, else 127.0.0.1:7790).
    #[arg(long)]
    hub: Option<String>,
    /// The URL request paths are relative to, such as https://api.example.com/v1.
    #[arg(long)]
    base_url: String,
    /// A host (name or name:port) that absolute URLs in requests may name (repeatable).
    #[arg(long = "allow-host", value_name = "HOST")]
    allow_hosts: Vec<String>,
    /// Requests in flight at once (also what the hub may hand this worker), shared out
    /// among the threads.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Threads, each one worker connection with its own HTTP client and a share of
    /// --concurrency (one thread runs its requests and its connection to the hub).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Time limit of a request that has no deadline of its own, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    timeout_ms: u64,
    /// Time limit for opening a connection, in milliseconds.
    #[arg(long, default_value_t = 5_000)]
    connect_timeout_ms: u64,
    /// Largest response body passed on, in bytes; a larger one fails the request.
    #[arg(long, default_value_t = 8 << 20)]
    max_response: usize,
    /// Built-in roots TLS trusts: both (system and webpki), webpki, system or none.
    #[arg(long, default_value = "both")]
    roots: dco::worker::http::Roots,
    /// Extra trusted CA certificates, PEM.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Client certificate chain (PEM) for services that ask for one; needs --client-key.
    #[arg(long, requires = "client_key")]
    client_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, requires = "client_cert")]
    client_key: Option<PathBuf>,
    /// A header sent with every request that does not set it, as 'Name: value' (repeatable).
    #[arg(long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// A file of 'Name: value' lines sent like --header (for keys kept out of the command line).
    #[arg(long)]
    header_file: Option<PathBuf>,
    /// Bearer token for requests that do not set Authorization.
    #[arg(long, env = "DCO_HTTP_BEARER_TOKEN", hide_env_values = true)]
    bearer_token: Option<String>,
    /// user:password for Basic authentication of requests that do not set Authorization.
    #[arg(long, env = "DCO_HTTP_BASIC_AUTH", hide_env_values = true)]
    basic_auth: Option<String>,
    /// Speak HTTP/2 without TLS (with TLS it is negotiated).
    #[arg(long)]
    http2_prior_knowledge: bool,
    /// Set this header to a key that stays the same across the retries of one request
    /// (Idempotency-Key, for services that deduplicate).
    #[arg(long, value_name = "NAME")]
    idempotency_header: Option<String>,
}

impl HttpArgs {
    fn config(&self) -> Result<dco::worker::http::HttpConfig, String> {
        let mut c = dco::worker::http::HttpConfig::new(self.base_url.clone());
        c.allow_hosts = self.allow_hosts.clone();
        c.concurrency = self.concurrency.max(1);
        c.timeout = Duration::from_millis(self.timeout_ms.max(1));
        c.connect_timeout = Duration::from_millis(self.connect_timeout_ms.max(1));
        c.max_response = self.max_response;
        c.roots = self.roots;
        c.ca_file = self.ca_file.clone();
        c.client_cert = self.client_cert.clone();
        c.client_key = self.client_key.clone();
        let mut lines = self.headers.clone();
        if let Some(f) = &self.header_file {
            let text = std::fs::read_to_string(f)
                .map_err(|e| format!("--header-file {}: {e}", f.display()))?;
            lines.extend(
                text.lines()
                    .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
                    .map(str::to_string),
            );
        }
        for l in lines {
            let (n, v) = l
                .split_once(':')
                .ok_or_else(|| format!("header '{l}': expected 'Name: value'"))?;
            c.headers.push((n.trim().to_string(), v.trim().to_string()));
        }
        c.bearer_token = self.bearer_token.clone().filter(|t| !t.is_empty());
        c.basic_auth = self.basic_auth.clone().filter(|t| !t.is_empty());
        c.http2_prior_knowledge = self.http2_prior_knowledge;
        c.idempotency_header = self.idempotency_header.clone();
        Ok(c)
    }
}

/// Prints a call's reply on standard output, or its failure on standard error, and gives the
/// exit status: 0, or the outcome's number made positive (2 = timeout, 14 = queued, ...).
fn print_outcome(outcome: dco::Result<dco::client::Reply>, session: &Session) -> ExitCode {
    match outcome {
        Ok(reply) => {
            let mut out = std::io::stdout().lock();
            match out.write_all(&reply.body).and_then(|_| out.flush()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("dco call: cannot write the reply: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            eprintln!("dco call: {e}");
            if e.status == dco::Status::Queued {
                eprintln!(
                    "dco call: read it later with: dco call --session {:016x} --read {}",
                    session.session_id(),
                    session.last_request_id()
                );
            }
            if e.rcode != 0 {
                eprintln!("dco call: worker return code {}", e.rcode);
            }
            ExitCode::from((-e.status.code()).clamp(1, 125) as u8)
        }
    }
}

/// A flag set by SIGTERM or SIGINT, for a worker's graceful stop.
/// The per-proxy policies: every proxy's (`policy`), then each proxy's own (`ID:key=value,...`).
fn build_policies(
    policy: &str,
    proxies: &[String],
    routes: &[(String, i32)],
) -> Result<dco::hub::Policies, String> {
    let mut policies = dco::hub::Policies::default();
    for (service, proxy) in routes {
        policies
            .route(service, *proxy)
            .map_err(|e| format!("a route ([[route]], --route): {e}"))?;
    }
    policies
        .default
        .apply(policy)
        .map_err(|e| format!("every proxy's policy ([policy], --policy): {e}"))?;
    for spec in proxies {
        policies
            .add(spec)
            .map_err(|e| format!("a proxy's policy ([proxy.ID], --proxy {spec}): {e}"))?;
    }
    Ok(policies)
}

/// How a running hub reloads: the same flags and configuration file read again. The outcome
/// goes to the log and to `DATA/reload.status`, where `dco reload` reads it.
fn reloader(args: hub_settings::HubArgs, data: PathBuf, restart_only: String) -> dco::hub::Reload {
    let load = move || {
        let r = hub_settings::Settings::resolve(&args).and_then(|set| {
            let changed = hub_settings::changed_lines(&restart_only, &set.restart_only());
            if !changed.is_empty() {
                tracing::warn!(
                    "reload: these settings change only at a restart, they stay as they are: {}",
                    changed.join("; ")
                );
            }
            build_policies(&set.policy, &set.proxies, &set.routes)
        });
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros())
            .unwrap_or(0);
        let line = match &r {
            Ok(_) => format!("reloaded {stamp}\n"),
            Err(e) => format!("refused {stamp}: {e}\n"),
        };
        let tmp = data.join("reload.status.tmp");
        if std::fs::write(&tmp, line).is_ok() {
            let _ = std::fs::rename(&tmp, data.join("reload.status"));
        }
        r
    };
    dco::hub::Reload {
        asked: Arc::new(AtomicBool::new(false)),
        load: Box::new(load),
    }
}

/// `dco reload`: SIGHUP to the hub of `data`, then its answer from `DATA/reload.status`.
fn reload_hub(data: &std::path::Path, timeout_ms: u64) -> Result<ExitCode, String> {
    use std::os::unix::ffi::OsStrExt;
    let pid_file = data.join("hub.pid");
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .map_err(|e| {
            format!(
                "no hub runs on {}: {}: {e}",
                data.display(),
                pid_file.display()
            )
        })?
        .trim()
        .parse()
        .map_err(|_| format!("{} does not hold a process id", pid_file.display()))?;
    // A hub killed without quitting leaves its file behind, and its id may be another
    // process's by now: signal only a dco hub (SIGHUP would end most other programs).
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let is_dco = args.first().is_some_and(|a| {
        std::path::Path::new(std::ffi::OsStr::from_bytes(a))
            .file_name()
            .is_some_and(|n| n.as_bytes().starts_with(b"dco"))
    });
    if !is_dco || !args.contains(&&b"hub"[..]) {
        return Err(format!(
            "process {pid} named in {} is not a running dco hub (a hub that was killed leaves \
             the file behind)",
            pid_file.display()
        ));
    }
    let status = data.join("reload.status");
    let before = std::fs::read_to_string(&status).unwrap_or_default();
    // SAFETY: sending a signal to a process id; no memory is involved.
    if unsafe { libc::kill(pid, libc::SIGHUP) } != 0 {
        return Err(format!(
            "cannot signal the hub (process {pid}): {}",
            std::io::Error::last_os_error()
        ));
    }
    let until = std::time::Instant::now() + Duration::from_millis(timeout_ms);
    loop {
        let now = std::fs::read_to_string(&status).unwrap_or_default();
        if now != before && now.ends_with('\n') {
            let text = now.trim_end();
            return if let Some(rest) = text.strip_prefix("refused ") {
                let why = rest.split_once(": ").map(|(_, w)| w).unwrap_or(rest);
                eprintln!("dco: the hub refused the new configuration, its old one stays: {why}");
                Ok(ExitCode::from(1))
            } else {
                println!("the hub (process {pid}) reloaded its configuration");
                Ok(ExitCode::SUCCESS)
            };
        }
        if std::time::Instant::now() >= until {
            return Err(format!(
                "the hub (process {pid}) did not answer within {timeout_ms} ms"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stop_on_signals() -> Result<Arc<AtomicBool>, String> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone())
            .map_err(|e| format!("cannot install a signal handler: {e}"))?;
    }
    Ok(stop)
}

/// Waits for worker threads; the first error (or panic) is the command's.
fn join_workers(
    handles: Vec<std::thread::JoinHandle<dco::Result<()>>>,
) -> Result<ExitCode, String> {
    for h in handles {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err("a worker thread panicked".into()),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// For commands whose output goes to a pipe (`dco stats | head`): a reader that closes early
/// ends the command quietly, as with other Unix tools, instead of a panic on the failed write.
/// Only where no socket is written afterwards (sockets use MSG_NOSIGNAL anyway).
fn stdout_may_close() {
    // SAFETY: restoring the default action of SIGPIPE; no handler runs Rust code.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// The hub list from `--hub`, else DCO_HUB, else the default.
fn hub_list(arg: &Option<String>) -> Result<Vec<HubAddr>, String> {
    match arg {
        Some(h) => HubAddr::parse_list(h),
        None => wire::hubs_from_env(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("DCO_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => logs.json().init(),
        // Colour codes only for a person at a terminal, never into a file or a pipe.
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("dco: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(command: Command) -> Result<ExitCode, String> {
    match command {
        Command::Hub(args) => {
            let set = hub_settings::Settings::resolve(&args)?;
            if args.print_config {
                print!("{}", set.to_toml());
                return Ok(ExitCode::SUCCESS);
            }
            let restart_only = set.restart_only();
            let hub_settings::Settings {
                listen,
                unix,
                data,
                max_frame,
                quota,
                keepalive_ms,
                secret,
                durability,
                no_journal,
                segment_mb,
                recovery,
                reply_ttl_s,
                answer_reserve,
                proxy_ids,
                policy,
                proxies,
                routes,
                overdue_grace_ms,
                greeting_timeout_ms,
                max_connections,
                allow_remote,
                allow_from,
                metrics,
                ..
            } = set;
            let durability: dco::journal::Durability =
                durability.parse().map_err(|e| format!("durability: {e}"))?;
            let recovery: dco::journal::RecoveryMode =
                recovery.parse().map_err(|e| format!("recovery: {e}"))?;
            let unix = match unix.as_deref() {
                Some("none") => None,
                Some(p) => Some(PathBuf::from(p)),
                None => Some(data.join("dco.sock")),
            };
            std::fs::create_dir_all(&data)
                .map_err(|e| format!("cannot create {}: {e}", data.display()))?;
            let policies = build_policies(&policy, &proxies, &routes)?;
            let reload = reloader(*args, data.clone(), restart_only);
            let cfg = HubConfig {
                policies,
                overdue_grace: Duration::from_millis(overdue_grace_ms),
                greeting_timeout: Duration::from_millis(greeting_timeout_ms.max(100)),
                max_connections,
                allow_remote,
                allow_from,
                listen: (listen != "none").then_some(listen),
                unix,
                max_frame,
                quota: quota.max(1),
                keepalive: Duration::from_millis(keepalive_ms.max(100)),
                secret: secret.unwrap_or_default().into_bytes(),
                journal: (!no_journal).then(|| {
                    let mut j = dco::journal::JournalConfig::new(data.join("journal"));
                    // A segment must hold the largest request with room to spare.
                    j.segment_size =
                        (segment_mb.max(1) << 20).max(2 * max_frame as usize + (1 << 20));
                    j.durability = durability;
                    j.recovery = recovery;
                    j.owed_record = dco::hub::answer_record(answer_reserve.min(max_frame));
                    j.describe = Some(dco::hub::describe_record);
                    j
                }),
                reply_ttl: Duration::from_secs(reply_ttl_s),
                // No answer is larger than a frame.
                answer_reserve: answer_reserve.min(max_frame),
                proxy_ids,
                data,
            };
            // Built with the journal's failpoints (the test build): FAILPOINTS configures them.
            #[cfg(feature = "failpoints")]
            let _failpoints = fail::FailScenario::setup();
            // A file size limit must show as an error from the journal, not kill the hub.
            // SAFETY: setting a signal's disposition to SIG_IGN before any thread is started.
            unsafe {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            }
            let listeners = Listeners::bind(&cfg).map_err(|e| e.to_string())?;
            // Tell scripts (and tests using port 0) where the hub really listens.
            if let Some(addr) = listeners.tcp_addr() {
                let _ = std::fs::write(cfg.data.join("hub.addr"), format!("{addr}\n"));
            }
            if let Some(listen) = &metrics {
                // The metrics server asks this hub like any monitor: over its Unix socket, else
                // its TCP address.
                let own = match (&cfg.unix, listeners.tcp_addr()) {
                    (Some(path), _) => HubAddr::Unix(path.to_string_lossy().into_owned()),
                    (None, Some(addr)) => HubAddr::Tcp(addr.to_string()),
                    (None, None) => return Err("--metrics needs a listener".into()),
                };
                metrics::start(
                    listen,
                    own,
                    cfg.secret.clone(),
                    cfg.data.join("metrics.addr"),
                )?;
            }
            let shutdown = Shutdown::new();
            for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
                signal_hook::flag::register(sig, shutdown.flag())
                    .map_err(|e| format!("cannot install a signal handler: {e}"))?;
            }
            signal_hook::flag::register(signal_hook::consts::SIGHUP, reload.asked.clone())
                .map_err(|e| format!("cannot install a signal handler: {e}"))?;
            // `dco reload` finds the hub by this file.
            let pid_file = cfg.data.join("hub.pid");
            let _ = std::fs::write(&pid_file, format!("{}\n", std::process::id()));
            let ran = dco::hub::run_with(cfg, listeners, shutdown, Some(reload));
            let _ = std::fs::remove_file(&pid_file);
            ran.map_err(|e| e.to_string())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Worker {
            kind:
                WorkerKind::Echo {
                    proxy,
                    hub,
                    threads,
                    capacity,
                    delay_ms,
                },
        } => {
            let mut cfg = WorkerConfig::new(hub_list(&hub)?, proxy);
            cfg.capacity = capacity.max(1);
            cfg.name = format!("echo[{}]", std::process::id());
            let stop = stop_on_signals()?;
            let handles: Vec<_> = (0..threads.max(1))
                .map(|_| {
                    let cfg = cfg.clone();
                    let stop = stop.clone();
                    std::thread::spawn(move || {
                        if delay_ms == 0 {
                            return worker::run(&cfg, &mut Echo, &stop);
                        }
                        let delay = Duration::from_millis(delay_ms);
                        let mut slow = |d: &worker::Delivery<'_>, r: &mut worker::ReplyBuf<'_>| {
                            std::thread::sleep(delay);
                            r.write(d.body);
                            worker::Outcome::Success
                        };
                        worker::run(&cfg, &mut slow, &stop)
                    })
                })
                .collect();
            join_workers(handles)
        }
        Command::Worker {
            kind: WorkerKind::Http(args),
        } => {
            let threads = args.threads.clamp(1, 256);
            let mut http = args.config()?;
            http.concurrency = args.concurrency.max(1).div_ceil(threads);
            // Checked once here, so that a bad configuration fails before any thread starts.
            let services: Vec<_> = (0..threads)
                .map(|_| dco::worker::http::HttpService::new(&http))
                .collect::<Result<_, _>>()?;
            let mut cfg = WorkerConfig::new(hub_list(&args.hub)?, args.proxy.clone());
            cfg.capacity = http.concurrency.clamp(1, u32::MAX as usize) as u32;
            cfg.name = format!("http[{}]", std::process::id());
            let stop = stop_on_signals()?;
            let handles: Vec<_> = services
                .into_iter()
                .map(|service| {
                    let (cfg, stop) = (cfg.clone(), stop.clone());
                    std::thread::spawn(move || worker::run_service(&cfg, &service, &stop))
                })
                .collect();
            join_workers(handles)
        }
        Command::Call {
            proxy,
            service,
            hub,
            timeout_ms,
            queue_on_timeout,
            session,
            read,
        } => {
            let timeout = (timeout_ms >= 0).then(|| Duration::from_millis(timeout_ms as u64));
            if let (Some(sid), Some(id)) = (session, read) {
                let sid = u64::from_str_radix(sid.trim_start_matches("0x"), 16)
                    .map_err(|_| format!("--session: '{sid}' is not a hex session id"))?;
                let cfg = SessionConfig::with_hubs(hub_list(&hub)?);
                let mut s = Session::resume(cfg, sid).map_err(|e| e.to_string())?;
                s.expect(id).map_err(|e| e.to_string())?;
                return Ok(print_outcome(s.read(id, timeout), &s));
            }
            if service.is_none() && proxy.is_none() {
                return Err("--proxy or --service is required".into());
            }
            let mut body = Vec::new();
            std::io::stdin()
                .read_to_end(&mut body)
                .map_err(|e| format!("cannot read standard input: {e}"))?;
            let mut session = Session::new(SessionConfig::with_hubs(hub_list(&hub)?));
            session.write(&body).map_err(|e| e.to_string())?;
            let flags = if queue_on_timeout {
                dco::client::CallFlags::QUEUE_ON_TIMEOUT
            } else {
                dco::client::CallFlags::NONE
            };
            let outcome = match (&service, proxy) {
                (Some(name), _) => session.call_service(name, flags, timeout),
                (None, Some(proxy)) => session.call_with(proxy, flags, timeout),
                (None, None) => return Err("--proxy or --service is required".into()),
            };
            Ok(print_outcome(outcome, &session))
        }
        Command::Reload { data, timeout_ms } => reload_hub(&data, timeout_ms),
        Command::Reroute { from, to, hub } => {
            match dco::client::monitor::reroute(&hub_list(&hub)?, from, to, Duration::from_secs(10))
            {
                Ok(n) => {
                    println!("{n} requests moved from proxy {from} to proxy {to}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => Err(format!("reroute: {}", e.message)),
            }
        }
        Command::Stats { hub, json } => {
            stdout_may_close();
            stats::print(&hub_list(&hub)?, json)
        }
        Command::Bench(args) => bench::run(args),
    }
}
