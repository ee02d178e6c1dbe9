//! Which workers serve which proxy id, and each proxy's queue of requests waiting for a
//! worker with room (one queue, many servers).

use std::collections::{HashMap, VecDeque};

use super::stats::ProxyStats;

/// A worker connection as the router knows it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct WorkerRef {
    /// Its token.
    pub token: usize,
    /// Its connection id.
    pub conn: u64,
}

/// One proxy id.
#[derive(Default)]
pub struct Proxy {
    /// Workers serving it, in the order they connected.
    pub workers: Vec<WorkerRef>,
    /// Tags of requests waiting for a worker with room, oldest first.
    pub queue: VecDeque<u64>,
    /// Counters.
    pub stats: ProxyStats,
}

/// The routing table.
#[derive(Default)]
pub struct Router {
    /// Proxies by id; a proxy stays once seen, for its statistics.
    pub proxies: HashMap<i32, Proxy>,
}

impl Router {
    /// Adds a worker to each proxy it serves.
    pub fn add_worker(&mut self, w: WorkerRef, proxies: &[i32]) {
        for p in proxies {
            let proxy = self.proxies.entry(*p).or_default();
            if !proxy.workers.contains(&w) {
                proxy.workers.push(w);
            }
        }
    }

    /// Removes a worker from each proxy it served.
    pub fn remove_worker(&mut self, w: WorkerRef, proxies: &[i32]) {
        for p in proxies {
            if let Some(proxy) = self.proxies.get_mut(p) {
                proxy.workers.retain(|x| *x != w);
            }
        }
    }

    /// The proxy entry, created on first use.
    pub fn proxy(&mut self, id: i32) -> &mut Proxy {
        self.proxies.entry(id).or_default()
    }

    /// Whether any worker serves `id` now.
    pub fn is_served(&self, id: i32) -> bool {
        self.proxies.get(&id).is_some_and(|p| !p.workers.is_empty())
    }
}
