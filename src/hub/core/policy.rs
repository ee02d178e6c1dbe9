//! Per-proxy policy: the default decoupling mode of its requests, how often and how soon a
//! failed delivery is tried again, and how long a worker may hold one delivery.

use std::fmt;
use std::time::Duration;

use ahash::AHashMap as HashMap;

/// How a caller is decoupled from the far side of one request (SOSI-DCC's modes).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// The caller waits up to its timeout; past it the request expires: it is never delivered
    /// after its deadline, and a late answer is dropped.
    Sync,
    /// The caller waits up to its timeout; past it the call returns DCO_E_QUEUED, the request
    /// goes on and its answer is parked for a later read.
    QueueOnTimeout,
    /// Accepted at once; the answer is parked until read.
    Async,
    /// No answer is wanted.
    Oneway,
}

impl Mode {
    /// The name used on the command line and in statistics.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Sync => "sync",
            Mode::QueueOnTimeout => "queue-on-timeout",
            Mode::Async => "async",
            Mode::Oneway => "oneway",
        }
    }

    /// The mode of a REQUEST's flags, if they choose one.
    pub fn of_flags(flags: u32) -> Option<Mode> {
        use crate::wire::{REQ_ASYNC, REQ_ONEWAY, REQ_QUEUE_ON_TIMEOUT, REQ_SYNC};
        if flags & REQ_ONEWAY != 0 {
            Some(Mode::Oneway)
        } else if flags & REQ_QUEUE_ON_TIMEOUT != 0 {
            Some(Mode::QueueOnTimeout)
        } else if flags & REQ_ASYNC != 0 {
            Some(Mode::Async)
        } else if flags & REQ_SYNC != 0 {
            Some(Mode::Sync)
        } else {
            None
        }
    }

    /// The flag that says this mode (what the hub journals).
    pub fn flag(self) -> u32 {
        use crate::wire::{REQ_ASYNC, REQ_ONEWAY, REQ_QUEUE_ON_TIMEOUT, REQ_SYNC};
        match self {
            Mode::Sync => REQ_SYNC,
            Mode::QueueOnTimeout => REQ_QUEUE_ON_TIMEOUT,
            Mode::Async => REQ_ASYNC,
            Mode::Oneway => REQ_ONEWAY,
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        match s {
            "sync" => Ok(Mode::Sync),
            "queue-on-timeout" => Ok(Mode::QueueOnTimeout),
            "async" => Ok(Mode::Async),
            other => Err(format!(
                "'{other}' is not a default mode (sync, queue-on-timeout or async)"
            )),
        }
    }
}

/// The policy of one proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyPolicy {
    /// Mode of requests that do not choose one.
    pub mode: Mode,
    /// Deliveries a request gets at most (failures for a system reason use them up).
    pub attempts: u32,
    /// Wait before the first retry; doubled for each further one.
    pub backoff: Duration,
    /// Longest wait between retries.
    pub backoff_cap: Duration,
    /// Longest a worker may hold one delivery (zero: no limit).
    pub service_limit: Duration,
}

impl Default for ProxyPolicy {
    fn default() -> Self {
        ProxyPolicy {
            mode: Mode::Sync,
            attempts: 3,
            backoff: Duration::from_millis(100),
            backoff_cap: Duration::from_secs(10),
            service_limit: Duration::from_secs(60),
        }
    }
}

impl ProxyPolicy {
    /// The wait before retry number `failures` (1 for the first retry).
    pub fn backoff_after(&self, failures: u32) -> Duration {
        let shift = failures.saturating_sub(1).min(20);
        self.backoff
            .saturating_mul(1u32 << shift)
            .min(self.backoff_cap)
    }

    /// Applies `key=value` settings separated by commas: `mode`, `attempts`, `backoff-ms`,
    /// `backoff-cap-ms`, `service-ms`.
    pub fn apply(&mut self, settings: &str) -> Result<(), String> {
        for kv in settings.split(',').filter(|s| !s.trim().is_empty()) {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| format!("'{kv}' is not key=value"))?;
            let (k, v) = (k.trim(), v.trim());
            let ms = || {
                v.parse::<u64>()
                    .map(Duration::from_millis)
                    .map_err(|_| format!("{k}: '{v}' is not a number of milliseconds"))
            };
            match k {
                "mode" => self.mode = v.parse()?,
                "attempts" => {
                    self.attempts = v
                        .parse::<u32>()
                        .ok()
                        .filter(|n| (1..=1000).contains(n))
                        .ok_or_else(|| format!("attempts: '{v}' is not 1..1000"))?
                }
                "backoff-ms" => self.backoff = ms()?,
                "backoff-cap-ms" => self.backoff_cap = ms()?,
                "service-ms" => self.service_limit = ms()?,
                other => {
                    return Err(format!(
                        "unknown proxy setting '{other}' (mode, attempts, backoff-ms, \
                         backoff-cap-ms, service-ms)"
                    ))
                }
            }
        }
        Ok(())
    }
}

impl fmt::Display for ProxyPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "mode={},attempts={},backoff-ms={},backoff-cap-ms={},service-ms={}",
            self.mode.name(),
            self.attempts,
            self.backoff.as_millis(),
            self.backoff_cap.as_millis(),
            self.service_limit.as_millis()
        )
    }
}

/// The policies of all proxies: a default and per-proxy overrides.
#[derive(Clone, Debug, Default)]
pub struct Policies {
    /// For proxies without their own.
    pub default: ProxyPolicy,
    /// Per proxy id.
    pub proxies: HashMap<i32, ProxyPolicy>,
    /// Static routes: service name -> proxy id (a request may name a service instead of a
    /// proxy; the hub resolves it when it accepts the request).
    pub routes: std::collections::BTreeMap<String, i32>,
}

impl Policies {
    /// Adds the route `service` -> `proxy`; a service routed twice, a name that cannot be a
    /// service's or a proxy id out of range is an error.
    pub fn route(&mut self, service: &str, proxy: i32) -> Result<(), String> {
        if !crate::wire::valid_service(service) {
            return Err(format!(
                "\"{service}\" cannot be a service name (1 to {} printable ASCII characters, \
                 no spaces)",
                crate::wire::MAX_SERVICE
            ));
        }
        if proxy < 0 {
            return Err(format!("service {service}: proxy {proxy} is negative"));
        }
        if let Some(old) = self.routes.insert(service.to_string(), proxy) {
            return Err(format!(
                "service {service} is routed twice (to {old} and to {proxy})"
            ));
        }
        Ok(())
    }

    /// The policy of `proxy`.
    pub fn of(&self, proxy: i32) -> &ProxyPolicy {
        self.proxies.get(&proxy).unwrap_or(&self.default)
    }

    /// Parses `ID:key=value,...` (one proxy's overrides, on top of the default).
    pub fn add(&mut self, spec: &str) -> Result<(), String> {
        let (id, settings) = spec
            .split_once(':')
            .ok_or_else(|| format!("'{spec}' is not ID:key=value,..."))?;
        let id: i32 = id
            .trim()
            .parse()
            .ok()
            .filter(|i| *i >= 0)
            .ok_or_else(|| format!("'{id}' is not a proxy id"))?;
        let mut p = self.default.clone();
        p.apply(settings)?;
        self.proxies.insert(id, p);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_and_backoff_doubles_to_its_cap() {
        let mut ps = Policies::default();
        ps.add("5:mode=queue-on-timeout,attempts=4,backoff-ms=50,backoff-cap-ms=120")
            .unwrap();
        let p = ps.of(5);
        assert_eq!(p.mode, Mode::QueueOnTimeout);
        assert_eq!(p.attempts, 4);
        assert_eq!(p.backoff_after(1), Duration::from_millis(50));
        assert_eq!(p.backoff_after(2), Duration::from_millis(100));
        assert_eq!(p.backoff_after(3), Duration::from_millis(120));
        assert_eq!(ps.of(6), &ProxyPolicy::default());
        assert!(ps.add("x:mode=sync").is_err());
        assert!(ps.add("5:attempts=0").is_err());
        assert!(ps.add("5:colour=red").is_err());
        assert!(ps.add("5:mode=oneway").is_err());
    }
}
