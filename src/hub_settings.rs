//! `dco hub`'s settings: command-line flags, an optional TOML file (`--config`), and the
//! embedded defaults, in that order of precedence. `--print-config` shows the result. A
//! reload (SIGHUP, `dco reload`) resolves them again and applies the policies.
//!
//! Every flag has a key of the same name in the file (`keepalive-ms = 5000`); the policies are
//! tables:
//!
//! ```toml
//! listen = "0.0.0.0:7790"
//! data = "/var/lib/dco"
//! secret-file = "/etc/dco/secret"
//!
//! [policy]            # every proxy's default (as --policy)
//! attempts = 5
//!
//! [proxy.30]          # one proxy's (as --proxy 30:...)
//! mode = "queue-on-timeout"
//! backoff-ms = 200
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The `dco hub` flags. Those left out come from the file, else from the defaults.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct HubArgs {
    /// A TOML file with any of the settings below (keys are the flags' names without `--`);
    /// flags given here win over it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Print the effective configuration (flags, file and defaults together) as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
    /// TCP address to listen on ("none" for no TCP) [default: 127.0.0.1:7790].
    #[arg(long)]
    pub listen: Option<String>,
    /// Unix socket path ("none" for no Unix socket) [default: DATA/dco.sock].
    #[arg(long)]
    pub unix: Option<String>,
    /// Data directory [default: dco-data].
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Largest frame payload accepted, in bytes [default: 16777216].
    #[arg(long)]
    pub max_frame: Option<u32>,
    /// Most unanswered requests per caller [default: 1048576].
    #[arg(long)]
    pub quota: Option<u32>,
    /// Keep-alive interval in milliseconds [default: 5000].
    #[arg(long)]
    pub keepalive_ms: Option<u64>,
    /// Shared secret every peer must present (better: DCO_SECRET or --secret-file, which do
    /// not show in `ps`).
    #[arg(long, env = "DCO_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// A file holding the shared secret (trailing newline ignored).
    #[arg(long)]
    pub secret_file: Option<PathBuf>,
    /// When a request counts as safe to acknowledge: none (in the page cache: survives a crash
    /// of the hub), batch (group commit: fdatasync shared by all requests of the moment;
    /// survives a crash of the machine), always (fdatasync before every acknowledgement
    /// round, in the hub's thread) [default: batch].
    #[arg(long)]
    pub durability: Option<String>,
    /// Keep requests in memory only (lost when the hub stops). For measurements.
    #[arg(long)]
    pub no_journal: bool,
    /// Size of each journal segment file, in MiB [default: 64].
    #[arg(long)]
    pub segment_mb: Option<usize>,
    /// What recovery does with a damaged journal: tolerate-tail (cut a torn tail of the last
    /// segment, refuse other damage) or salvage (keep going past any damage)
    /// [default: tolerate-tail].
    #[arg(long)]
    pub recovery: Option<String>,
    /// How long a caller session that left keeps its unread answers, in seconds
    /// [default: 3600].
    #[arg(long)]
    pub reply_ttl_s: Option<u64>,
    /// Bytes of answer the journal keeps in reserve for every accepted request, so answers
    /// can still be journaled when the disk is full (new work is refused while the reserve
    /// is short; a larger answer is then kept as a note saying so) [default: 4096].
    #[arg(long)]
    pub answer_reserve: Option<u32>,
    /// Proxy ids to accept requests for before any worker has served them (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub proxy_ids: Vec<i32>,
    /// Policy of every proxy without its own: comma-separated key=value of mode (sync,
    /// queue-on-timeout or async: the mode of requests that do not choose one), attempts
    /// (deliveries at most, default 3), backoff-ms (first retry wait, doubled each time,
    /// default 100), backoff-cap-ms (default 10000), service-ms (longest a worker may hold one
    /// request, 0 for no limit, default 60000).
    #[arg(long)]
    pub policy: Option<String>,
    /// One proxy's policy, on top of --policy: ID:key=value,... (repeatable).
    #[arg(long = "proxy")]
    pub proxies: Vec<String>,
    /// A static route: SERVICE=PROXY, so that requests may name the service instead of the
    /// proxy id (repeatable; it wins over a [[route]] table of the file for the same service).
    #[arg(long = "route", value_name = "SERVICE=PROXY")]
    pub routes: Vec<String>,
    /// How long a worker that holds a request past the service-time limit is kept, with no new
    /// work, before it is dropped, in milliseconds [default: 5000].
    #[arg(long)]
    pub overdue_grace_ms: Option<u64>,
    /// How long a new connection may take to send its HELLO before it is dropped, in
    /// milliseconds (at least 100) [default: 10000].
    #[arg(long)]
    pub greeting_timeout_ms: Option<u64>,
    /// Most connections at once, of every kind; one over it is refused with DCO_E_BUSY
    /// (0: no limit but the open-file limit) [default: 0].
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// Without a secret, take TCP connections from other addresses than loopback too (by
    /// default a hub without a secret refuses them with DCO_E_REFUSED).
    #[arg(long)]
    pub allow_remote: bool,
    /// Take TCP peers from these address blocks only, such as 10.0.0.0/8 or 192.0.2.7
    /// (repeatable; with or without a secret; loopback too only if listed).
    #[arg(long = "allow-from", value_name = "CIDR")]
    pub allow_from: Vec<String>,
    /// Serve Prometheus metrics (OpenMetrics text) at http://ADDR/metrics, such as
    /// 127.0.0.1:9790; the bound address is written to DATA/metrics.addr [default: off].
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
}

/// The file: the same settings, every one optional; unknown keys are refused.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileSettings {
    listen: Option<String>,
    unix: Option<String>,
    data: Option<PathBuf>,
    max_frame: Option<u32>,
    quota: Option<u32>,
    keepalive_ms: Option<u64>,
    secret_file: Option<PathBuf>,
    durability: Option<String>,
    no_journal: Option<bool>,
    segment_mb: Option<usize>,
    recovery: Option<String>,
    reply_ttl_s: Option<u64>,
    answer_reserve: Option<u32>,
    proxy_ids: Option<Vec<i32>>,
    policy: Option<toml::Table>,
    proxy: Option<BTreeMap<String, toml::Table>>,
    route: Option<Vec<RouteEntry>>,
    overdue_grace_ms: Option<u64>,
    greeting_timeout_ms: Option<u64>,
    max_connections: Option<usize>,
    allow_remote: Option<bool>,
    allow_from: Option<Vec<String>>,
    metrics: Option<String>,
}

/// A `[[route]]` table.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RouteEntry {
    service: String,
    proxy: i32,
}

/// The effective settings.
#[derive(Debug)]
pub struct Settings {
    pub listen: String,
    pub unix: Option<String>,
    pub data: PathBuf,
    pub max_frame: u32,
    pub quota: u32,
    pub keepalive_ms: u64,
    pub secret: Option<String>,
    /// Where the secret came from, for --print-config (the secret itself is never printed).
    secret_from: &'static str,
    pub durability: String,
    pub no_journal: bool,
    pub segment_mb: usize,
    pub recovery: String,
    pub reply_ttl_s: u64,
    pub answer_reserve: u32,
    pub proxy_ids: Vec<i32>,
    /// Every proxy's default policy, as --policy takes it.
    pub policy: String,
    /// Per-proxy policies, as --proxy takes them (the file's first, then the flags').
    pub proxies: Vec<String>,
    /// Static routes, service -> proxy (the file's first, then the flags').
    pub routes: Vec<(String, i32)>,
    pub overdue_grace_ms: u64,
    pub greeting_timeout_ms: u64,
    pub max_connections: usize,
    pub allow_remote: bool,
    pub allow_from: Vec<dco::hub::allow::Cidr>,
    pub metrics: Option<String>,
}

/// A policy table as `key=value,...` (strings and integers only).
fn policy_string(t: &toml::Table, what: &str) -> Result<String, String> {
    let mut parts = Vec::new();
    for (k, v) in t {
        let v = match v {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            other => {
                return Err(format!(
                    "{what}: {k} = {other} is neither a string nor a whole number"
                ))
            }
        };
        parts.push(format!("{k}={v}"));
    }
    Ok(parts.join(","))
}

fn read_secret(path: &Path) -> Result<String, String> {
    let s = std::fs::read_to_string(path)
        .map_err(|e| format!("secret file {}: {e}", path.display()))?;
    Ok(s.trim_end_matches(['\r', '\n']).to_string())
}

impl Settings {
    /// Flags over the file over the defaults.
    pub fn resolve(args: &HubArgs) -> Result<Settings, String> {
        let file = match &args.config {
            None => FileSettings::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("--config {}: {e}", path.display()))?;
                toml::from_str::<FileSettings>(&text)
                    .map_err(|e| format!("--config {}: {e}", path.display()))?
            }
        };
        let mut policy = match &file.policy {
            Some(t) => policy_string(t, "[policy]")?,
            None => String::new(),
        };
        if let Some(p) = &args.policy {
            // Flags win: applied after the file's, key by key.
            if !policy.is_empty() && !p.is_empty() {
                policy.push(',');
            }
            policy.push_str(p);
        }
        let mut proxies = Vec::new();
        for (id, t) in file.proxy.iter().flatten() {
            proxies.push(format!(
                "{id}:{}",
                policy_string(t, &format!("[proxy.{id}]"))?
            ));
        }
        proxies.extend(args.proxies.iter().cloned());
        let (secret, secret_from) = if let Some(s) = &args.secret {
            (Some(s.clone()), "--secret or DCO_SECRET")
        } else if let Some(f) = &args.secret_file {
            (Some(read_secret(f)?), "--secret-file")
        } else if let Some(f) = &file.secret_file {
            (Some(read_secret(f)?), "secret-file in the configuration")
        } else {
            (None, "none")
        };
        let mut flag_routes = Vec::new();
        for spec in &args.routes {
            let (service, proxy) = spec
                .split_once('=')
                .and_then(|(s, p)| Some((s.trim(), p.trim().parse::<i32>().ok()?)))
                .ok_or_else(|| format!("--route {spec}: not SERVICE=PROXY"))?;
            flag_routes.push((service.to_string(), proxy));
        }
        // A flag wins over the file's route for the same service.
        let mut routes: Vec<(String, i32)> = file
            .route
            .iter()
            .flatten()
            .filter(|r| !flag_routes.iter().any(|(s, _)| *s == r.service))
            .map(|r| (r.service.clone(), r.proxy))
            .collect();
        routes.extend(flag_routes);
        let mut proxy_ids = file.proxy_ids.clone().unwrap_or_default();
        proxy_ids.extend(&args.proxy_ids);
        Ok(Settings {
            listen: args
                .listen
                .clone()
                .or(file.listen)
                .unwrap_or_else(|| "127.0.0.1:7790".into()),
            unix: args.unix.clone().or(file.unix),
            data: args
                .data
                .clone()
                .or(file.data)
                .unwrap_or_else(|| PathBuf::from("dco-data")),
            max_frame: args
                .max_frame
                .or(file.max_frame)
                .unwrap_or(dco::wire::DEFAULT_MAX_FRAME),
            quota: args.quota.or(file.quota).unwrap_or(1 << 20),
            keepalive_ms: args.keepalive_ms.or(file.keepalive_ms).unwrap_or(5000),
            secret,
            secret_from,
            durability: args
                .durability
                .clone()
                .or(file.durability)
                .unwrap_or_else(|| "batch".into()),
            no_journal: args.no_journal || file.no_journal.unwrap_or(false),
            segment_mb: args.segment_mb.or(file.segment_mb).unwrap_or(64),
            recovery: args
                .recovery
                .clone()
                .or(file.recovery)
                .unwrap_or_else(|| "tolerate-tail".into()),
            reply_ttl_s: args.reply_ttl_s.or(file.reply_ttl_s).unwrap_or(3600),
            answer_reserve: args.answer_reserve.or(file.answer_reserve).unwrap_or(4096),
            proxy_ids,
            policy,
            proxies,
            routes,
            overdue_grace_ms: args
                .overdue_grace_ms
                .or(file.overdue_grace_ms)
                .unwrap_or(5000),
            greeting_timeout_ms: args
                .greeting_timeout_ms
                .or(file.greeting_timeout_ms)
                .unwrap_or(10_000),
            max_connections: args.max_connections.or(file.max_connections).unwrap_or(0),
            allow_remote: args.allow_remote || file.allow_remote.unwrap_or(false),
            // The flags replace the file's list.
            allow_from: if args.allow_from.is_empty() {
                file.allow_from.clone().unwrap_or_default()
            } else {
                args.allow_from.clone()
            }
            .iter()
            .map(|c| c.parse().map_err(|e| format!("allow-from: {e}")))
            .collect::<Result<_, String>>()?,
            metrics: args.metrics.clone().or(file.metrics),
        })
    }

    /// The settings a reload does not change (everything but the policies), as `to_toml`
    /// says them.
    pub fn restart_only(&self) -> String {
        let all = self.to_toml();
        match all.find("\n[policy]") {
            Some(i) => all[..i].to_string(),
            None => all,
        }
    }

    /// The effective settings as a configuration file would say them (the secret is not
    /// printed, only where it comes from).
    pub fn to_toml(&self) -> String {
        let q = |s: &str| toml::Value::String(s.to_string()).to_string();
        let mut out = String::new();
        out.push_str(&format!("listen = {}\n", q(&self.listen)));
        match &self.unix {
            Some(u) => out.push_str(&format!("unix = {}\n", q(u))),
            None => out.push_str("# unix = \"DATA/dco.sock\" (the default)\n"),
        }
        out.push_str(&format!("data = {}\n", q(&self.data.to_string_lossy())));
        out.push_str(&format!("max-frame = {}\n", self.max_frame));
        out.push_str(&format!("quota = {}\n", self.quota));
        out.push_str(&format!("keepalive-ms = {}\n", self.keepalive_ms));
        out.push_str(&format!("# secret: {}\n", self.secret_from));
        out.push_str(&format!("durability = {}\n", q(&self.durability)));
        out.push_str(&format!("no-journal = {}\n", self.no_journal));
        out.push_str(&format!("segment-mb = {}\n", self.segment_mb));
        out.push_str(&format!("recovery = {}\n", q(&self.recovery)));
        out.push_str(&format!("reply-ttl-s = {}\n", self.reply_ttl_s));
        out.push_str(&format!("answer-reserve = {}\n", self.answer_reserve));
        let ids: Vec<String> = self.proxy_ids.iter().map(|i| i.to_string()).collect();
        out.push_str(&format!("proxy-ids = [{}]\n", ids.join(", ")));
        out.push_str(&format!("overdue-grace-ms = {}\n", self.overdue_grace_ms));
        out.push_str(&format!(
            "greeting-timeout-ms = {}\n",
            self.greeting_timeout_ms
        ));
        out.push_str(&format!("max-connections = {}\n", self.max_connections));
        out.push_str(&format!("allow-remote = {}\n", self.allow_remote));
        let blocks: Vec<String> = self.allow_from.iter().map(|c| q(&c.to_string())).collect();
        out.push_str(&format!("allow-from = [{}]\n", blocks.join(", ")));
        match &self.metrics {
            Some(m) => out.push_str(&format!("metrics = {}\n", q(m))),
            None => out.push_str("# metrics = \"127.0.0.1:9790\" (off by default)\n"),
        }
        let table = |out: &mut String, spec: &str| {
            for kv in spec.split(',').filter(|s| !s.trim().is_empty()) {
                if let Some((k, v)) = kv.split_once('=') {
                    let v = v.trim();
                    let v = if v.parse::<i64>().is_ok() {
                        v.to_string()
                    } else {
                        q(v)
                    };
                    out.push_str(&format!("{} = {v}\n", k.trim()));
                }
            }
        };
        // The policies as the hub will apply them: every proxy's, then each proxy's own.
        let mut defaults = dco::hub::Policies::default();
        if defaults.default.apply(&self.policy).is_ok() {
            out.push_str("\n[policy]\n");
            table(&mut out, &defaults.default.to_string());
        }
        for spec in &self.proxies {
            if let Some((id, kv)) = spec.split_once(':') {
                out.push_str(&format!("\n[proxy.{}]\n", id.trim()));
                table(&mut out, kv);
            }
        }
        for (service, proxy) in &self.routes {
            out.push_str(&format!(
                "\n[[route]]\nservice = {}\nproxy = {proxy}\n",
                q(service)
            ));
        }
        out
    }
}

/// The lines of `new` that are not in `old` (settings that changed).
pub fn changed_lines(old: &str, new: &str) -> Vec<String> {
    new.lines()
        .filter(|l| !l.trim().is_empty() && !old.lines().any(|o| o == *l))
        .map(str::to_string)
        .collect()
}
