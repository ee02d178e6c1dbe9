//! Which workers serve which proxy id, and each proxy's queue of requests waiting for a
//! worker with room (one queue, many servers).

use ahash::AHashSet as HashSet;

use ahash::AHashMap as HashMap;
use std::io;
use std::path::{Path, PathBuf};

use super::queue::FairQueue;
use super::{ConnId, Token};
use crate::hub::stats::ProxyStats;

/// A worker connection as the router knows it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct WorkerRef {
    /// Its token.
    pub token: Token,
    /// Its connection id.
    pub conn: ConnId,
}

/// One proxy id.
#[derive(Default)]
pub struct Proxy {
    /// Workers serving it, in the order they connected.
    pub workers: Vec<WorkerRef>,
    /// Requests waiting for a worker with room, a lane per caller session served in turn.
    /// Bodies stay in the journal.
    pub queue: FairQueue,
    /// Requests waiting in `queue` (stale entries not counted).
    pub queued: usize,
    /// Requests waiting in the redo queue for their next attempt.
    pub redo: usize,
    /// Suspect requests waiting for a worker that holds nothing else (counted in `queued`).
    pub solo: std::collections::VecDeque<(super::SessionId, u64)>,
    /// Counters.
    pub stats: ProxyStats,
}

/// The routing table.
#[derive(Default)]
pub struct Router {
    /// Proxies by id; a proxy stays once seen, for its statistics.
    pub proxies: HashMap<i32, Proxy>,
    /// Proxy ids known to the hub: declared with `--proxy-ids` or served by a worker at some
    /// time. A request for a known proxy with no worker now waits for one; a request for an
    /// unknown proxy fails at once with DCO_E_NO_ROUTE.
    known: HashSet<i32>,
    /// Where the known ids are kept across restarts (None: not kept).
    known_file: Option<PathBuf>,
}

impl Router {
    /// A router that keeps its known proxy ids in `file` (read now if it exists).
    pub fn with_known_file(file: Option<PathBuf>, declared: &[i32]) -> io::Result<Router> {
        let mut known: HashSet<i32> = declared.iter().copied().collect();
        if let Some(f) = &file {
            match std::fs::read_to_string(f) {
                Ok(text) => {
                    for line in text.lines() {
                        let line = line.trim();
                        if line.is_empty() || line.starts_with('#') {
                            continue;
                        }
                        let id = line.parse::<i32>().map_err(|_| {
                            io::Error::new(
                                io::ErrorKind::InvalidData,
                                format!("{}: '{line}' is not a proxy id", f.display()),
                            )
                        })?;
                        known.insert(id);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        let r = Router {
            proxies: HashMap::new(),
            known,
            known_file: file,
        };
        r.save_known()?;
        Ok(r)
    }

    /// Whether requests for `id` are accepted (served now, or known and waiting for a worker).
    pub fn is_known(&self, id: i32) -> bool {
        self.known.contains(&id)
    }

    fn save_known(&self) -> io::Result<()> {
        let Some(f) = &self.known_file else {
            return Ok(());
        };
        let mut ids: Vec<i32> = self.known.iter().copied().collect();
        ids.sort_unstable();
        let mut text = String::from("# proxy ids this hub accepts requests for (one per line)\n");
        for id in ids {
            text.push_str(&format!("{id}\n"));
        }
        write_atomically(f, text.as_bytes())
    }

    /// Adds a worker to each proxy it serves (those proxies become known).
    pub fn add_worker(&mut self, w: WorkerRef, proxies: &[i32]) {
        let before = self.known.len();
        self.known.extend(proxies.iter().copied());
        if self.known.len() != before {
            if let Err(e) = self.save_known() {
                tracing::warn!("cannot save the known proxy ids: {e}");
            }
        }
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
}

fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path)
}
