//! The statistics document (`dco stats`).

use super::conn::Role;
use super::{Core, Micros};
use crate::hub::stats::{CallerSnapshot, HubSnapshot, ProxySnapshot, Snapshot, WorkerSnapshot};

impl Core {
    /// The statistics document.
    pub fn snapshot(&self, now: Micros) -> Snapshot {
        let mut callers = Vec::new();
        let mut workers = Vec::new();
        for c in self.conns.iter().flatten() {
            if let Role::Worker(w) = &c.role {
                workers.push(WorkerSnapshot {
                    name: c.name.clone(),
                    addr: c.addr.clone(),
                    proxies: w.proxies.clone(),
                    capacity: w.capacity,
                    inflight: w.inflight,
                    overdue: w.overdue,
                    delivered: w.delivered,
                    results: w.results,
                    failures: w.failures,
                });
            }
        }
        for (id, ss) in &self.sessions {
            let addr = ss
                .conn
                .and_then(|(t, _)| self.conn(t))
                .map(|c| c.addr.clone())
                .unwrap_or_else(|| "-".into());
            callers.push(CallerSnapshot {
                name: ss.name.clone(),
                // Not the id itself: whoever knows a session id can resume it.
                session: format!("{:08x}", self.session_tag(*id)),
                addr,
                connected: ss.conn.is_some(),
                requests: ss.requests,
                replies: ss.ok,
                errors: ss.errors,
                inflight: ss.inflight,
                unread: ss.replies.len(),
            });
        }
        callers.sort_by(|a, b| a.name.cmp(&b.name));
        let mut proxies: Vec<ProxySnapshot> = self
            .router
            .proxies
            .iter()
            .map(|(id, p)| {
                let s = &p.stats;
                ProxySnapshot {
                    id: *id,
                    policy: self.cfg.policies.of(*id).to_string(),
                    workers: p.workers.len(),
                    queued: p.queued,
                    redo: p.redo,
                    requests: s.requests,
                    replies: s.outcomes.ok,
                    errors: s.outcomes.app_fail
                        + s.outcomes.system
                        + s.outcomes.timeout
                        + s.outcomes.expired,
                    no_route: s.no_route,
                    redelivered: s.outcomes.retried,
                    outcomes: s.outcomes.clone(),
                    rcodes: s.rcodes.clone(),
                    p50_us: s.latency.quantile(0.5),
                    p99_us: s.latency.quantile(0.99),
                    mean_us: s.latency.mean(),
                }
            })
            .collect();
        proxies.sort_by_key(|p| p.id);
        let io = self.store.io();
        Snapshot {
            hub: HubSnapshot {
                id: format!("{:016x}", self.cfg.hub_id),
                uptime_s: now.saturating_sub(self.started_us) / 1_000_000,
                connections: self.conns.iter().flatten().count(),
                connections_by_role: {
                    let mut by = std::collections::BTreeMap::new();
                    for c in self.conns.iter().flatten() {
                        let role = match c.role {
                            Role::Greeting => "greeting",
                            Role::Caller(_) => "caller",
                            Role::Worker(_) => "worker",
                            Role::Monitor => "monitor",
                        };
                        *by.entry(role.to_string()).or_insert(0) += 1;
                    }
                    by
                },
                refused: self
                    .counters
                    .refused
                    .iter()
                    .map(|(k, v)| (k.to_string(), *v))
                    .collect(),
                inflight: self.flights.len(),
                queued: self
                    .router
                    .proxies
                    .values()
                    .map(|p| p.queued + p.redo)
                    .sum(),
                busy: self.counters.busy,
                protocol_errors: self.counters.protocol_errors,
                journal_segments: self.store.segments(),
                journal_full: self.store.is_full(),
                journal_owed: self.store.owed(),
                journal_bytes: io.bytes,
                journal_syncs: io.syncs,
                journal_sync_p50_us: io.sync_p50_us,
                journal_sync_p99_us: io.sync_p99_us,
                journal_sync_max_us: io.sync_max_us,
                journal_lost: self.journal_lost.clone(),
                timers: self.timers.len(),
            },
            callers,
            workers,
            proxies,
        }
    }
}
