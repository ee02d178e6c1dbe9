//! Counters and latency histograms kept by the hub for `dco stats`.

use serde::Serialize;

/// A latency histogram (HdrHistogram, two significant digits: a quantile is within 1% of the
/// true value) from 1 us to one hour; longer durations count as one hour.
#[derive(Clone)]
pub struct Histogram {
    h: hdrhistogram::Histogram<u64>,
    count: u64,
    sum_us: u64,
}

/// The longest duration told apart, in microseconds.
const HIST_MAX_US: u64 = 3_600_000_000;

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            // Valid bounds (1 <= low, high >= 2 * low, 2 significant digits): cannot fail.
            h: hdrhistogram::Histogram::new_with_bounds(1, HIST_MAX_US, 2)
                .unwrap_or_else(|_| unreachable!("valid histogram bounds")),
            count: 0,
            sum_us: 0,
        }
    }
}

impl Histogram {
    /// Records one duration in microseconds.
    pub fn record(&mut self, us: u64) {
        self.h.saturating_record(us.clamp(1, HIST_MAX_US));
        self.count += 1;
        self.sum_us = self.sum_us.saturating_add(us);
    }

    /// Quantile `q` (0..=1) in microseconds, within 1%; 0 if empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        self.h.value_at_quantile(q)
    }

    /// Mean in microseconds.
    pub fn mean(&self) -> u64 {
        self.sum_us.checked_div(self.count).unwrap_or(0)
    }
}

/// Counters of one proxy id.
#[derive(Clone, Default)]
pub struct ProxyStats {
    /// Requests accepted for it (forwards to it included).
    pub requests: u64,
    /// Requests refused because no worker served it.
    pub no_route: u64,
    /// Every outcome, counted apart.
    pub outcomes: Outcomes,
    /// Workers' results by their non-zero return code (an HTTP worker's status codes).
    pub rcodes: RCodes,
    /// Accept-to-result latency.
    pub latency: Histogram,
}

/// Results counted by return code: at most 64 distinct codes, the rest together under
/// `other`, so a worker cannot grow the hub's memory with made-up codes.
#[derive(Serialize, Debug, Default, Clone)]
pub struct RCodes {
    /// Count per return code.
    pub by_code: std::collections::BTreeMap<i32, u64>,
    /// Results whose code did not fit in the map.
    pub other: u64,
}

/// Most distinct return codes kept apart.
const MAX_RCODES: usize = 64;

impl RCodes {
    /// Counts one result with return code `rc` (0 is not counted).
    pub fn record(&mut self, rc: i32) {
        if rc == 0 {
            return;
        }
        if let Some(n) = self.by_code.get_mut(&rc) {
            *n += 1;
        } else if self.by_code.len() < MAX_RCODES {
            self.by_code.insert(rc, 1);
        } else {
            self.other += 1;
        }
    }
}

/// The statistics document sent to monitors.
#[derive(Serialize, Debug)]
pub struct Snapshot {
    /// The hub itself.
    pub hub: HubSnapshot,
    /// One entry per caller connection.
    pub callers: Vec<CallerSnapshot>,
    /// One entry per worker connection.
    pub workers: Vec<WorkerSnapshot>,
    /// One entry per proxy id seen.
    pub proxies: Vec<ProxySnapshot>,
}

/// Hub-wide figures.
#[derive(Serialize, Debug)]
pub struct HubSnapshot {
    /// This hub's id (kept across restarts when it has a journal).
    pub id: String,
    /// Seconds since start.
    pub uptime_s: u64,
    /// Open connections.
    pub connections: usize,
    /// Requests handed to workers and not yet answered.
    pub inflight: usize,
    /// Requests waiting for a worker.
    pub queued: usize,
    /// Requests refused for being over quota (or for a full journal).
    pub busy: u64,
    /// Connections closed for protocol errors.
    pub protocol_errors: u64,
    /// Open connections by role: `caller`, `worker`, `monitor`, `greeting` (no HELLO yet).
    pub connections_by_role: std::collections::BTreeMap<String, u64>,
    /// Connections refused or closed with a REFUSE since the start, by its status name
    /// (`DCO_E_REFUSED` for a wrong secret, `DCO_E_PROTOCOL`, `DCO_E_BUSY` at the connection
    /// limit, ...).
    pub refused: std::collections::BTreeMap<String, u64>,
    /// Journal segment files in use (0 without a journal).
    pub journal_segments: usize,
    /// Whether the journal could not grow at its last attempt (disk full): new requests are
    /// refused until the work already accepted has drained or space is freed.
    pub journal_full: bool,
    /// Bytes the journal keeps in reserve for the answers and confirmations that accepted
    /// requests still need to write.
    pub journal_owed: u64,
    /// Record bytes the journal wrote since the hub started.
    pub journal_bytes: u64,
    /// fdatasyncs of the journal since the hub started.
    pub journal_syncs: u64,
    /// Median fdatasync time, microseconds (within 1%).
    pub journal_sync_p50_us: u64,
    /// 99th percentile fdatasync time, microseconds.
    pub journal_sync_p99_us: u64,
    /// Longest fdatasync, microseconds.
    pub journal_sync_max_us: u64,
    /// Durable records that recovery found damaged or missing at this start (only with
    /// `--recovery salvage`; the default mode refuses to start): where, how many, and the
    /// session and request ids of the damaged records it could read.
    pub journal_lost: Vec<String>,
    /// Timers set (deadlines, retries, keep-alives; stale ones included).
    pub timers: usize,
}

/// One caller session.
#[derive(Serialize, Debug)]
pub struct CallerSnapshot {
    /// Name from HELLO.
    pub name: String,
    /// A tag for the session (keyed hash, 8 hex digits; not the session id).
    pub session: String,
    /// Remote address ("-" when not connected).
    pub addr: String,
    /// Whether it is connected now.
    pub connected: bool,
    /// Requests accepted.
    pub requests: u64,
    /// Replies sent.
    pub replies: u64,
    /// Error replies sent.
    pub errors: u64,
    /// Accepted, not yet answered.
    pub inflight: u32,
    /// Answers the caller has not confirmed reading.
    pub unread: usize,
}

/// One worker.
#[derive(Serialize, Debug)]
pub struct WorkerSnapshot {
    /// Name from HELLO.
    pub name: String,
    /// Remote address.
    pub addr: String,
    /// Proxy ids served.
    pub proxies: Vec<i32>,
    /// Deliveries it takes at once.
    pub capacity: u32,
    /// Deliveries outstanding.
    pub inflight: u32,
    /// Deliveries held past the service-time limit (no new work while any).
    pub overdue: u32,
    /// Deliveries made.
    pub delivered: u64,
    /// Results received.
    pub results: u64,
    /// Results that were failures.
    pub failures: u64,
}

/// One proxy.
#[derive(Serialize, Debug)]
pub struct ProxySnapshot {
    /// Proxy id.
    pub id: i32,
    /// Its policy (`mode=...,attempts=...,...`).
    pub policy: String,
    /// Workers serving it now.
    pub workers: usize,
    /// Requests waiting for a worker with room.
    pub queued: usize,
    /// Requests waiting in the redo queue for their next attempt.
    pub redo: usize,
    /// Requests accepted.
    pub requests: u64,
    /// Successful replies.
    pub replies: u64,
    /// Failed outcomes (app_fail + system + timeout + expired).
    pub errors: u64,
    /// Refused for lack of a worker.
    pub no_route: u64,
    /// Delivered again after a delivery failed.
    pub redelivered: u64,
    /// Every outcome, counted apart.
    pub outcomes: Outcomes,
    /// Workers' results by return code (an HTTP worker's status codes), retries included.
    pub rcodes: RCodes,
    /// Median accept-to-result latency, microseconds (bucket upper bound).
    pub p50_us: u64,
    /// 99th percentile, microseconds (bucket upper bound).
    pub p99_us: u64,
    /// Mean, microseconds.
    pub mean_us: u64,
}

/// A proxy's outcomes, each counted apart.
#[derive(Serialize, Debug, Default, Clone)]
pub struct Outcomes {
    /// Successful replies.
    pub ok: u64,
    /// Application failures (the worker's DCO_E_APP_FAIL).
    pub app_fail: u64,
    /// System failures: attempts used up, a worker's system error, a failed forward.
    pub system: u64,
    /// Delivered requests whose deadline passed before the answer (DCO_E_TIMEOUT).
    pub timeout: u64,
    /// Requests whose deadline passed while they waited (never delivered).
    pub expired: u64,
    /// Requests cancelled by their caller before their answer.
    pub cancelled: u64,
    /// Deliveries that failed for a system reason and went to the redo queue.
    pub retried: u64,
    /// Requests whose answer is parked (queue-on-timeout or async).
    pub queued: u64,
    /// Late answers dropped (after a timeout, cancel or overdue retry).
    pub late: u64,
    /// Requests forwarded from this proxy to another.
    pub forwarded: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_codes_are_counted_in_bounded_memory() {
        let mut r = RCodes::default();
        r.record(0);
        for code in 1..=100 {
            r.record(code);
            r.record(1);
        }
        assert_eq!(r.by_code.len(), MAX_RCODES);
        assert_eq!(r.by_code[&1], 101);
        assert_eq!(r.other, 100 - MAX_RCODES as u64);
    }

    #[test]
    fn quantiles_are_within_one_percent() {
        let mut h = Histogram::default();
        for _ in 0..99 {
            h.record(70);
        }
        h.record(5000);
        let near = |got: u64, want: u64| got.abs_diff(want) * 100 <= want;
        assert!(near(h.quantile(0.5), 70), "{}", h.quantile(0.5));
        assert!(near(h.quantile(0.99), 70), "{}", h.quantile(0.99));
        assert!(near(h.quantile(1.0), 5000), "{}", h.quantile(1.0));
        assert_eq!(Histogram::default().quantile(0.5), 0);
        // Out of range on both sides: counted, at the ends.
        h.record(0);
        h.record(u64::MAX);
        assert!(near(h.quantile(1.0), HIST_MAX_US));
    }
}
