//! The journal's helper threads: the group-commit syncer and the segment preparer.

use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_channel::{unbounded, Receiver, Sender};

use super::disk::Disk;
use super::segment::{self, Mark, Segment};
use super::Pos;

/// A durability mark to write after a sync: the segment's file, its number, the mark.
pub type MarkNote = Option<(Arc<File>, u64, Mark)>;

/// How long the syncer waits for more work before it writes the header mark.
const IDLE_MARK_SYNC: std::time::Duration = std::time::Duration::from_millis(50);

/// How long the journal's fdatasyncs take: counted by whichever thread syncs, read for the
/// statistics.
#[derive(Clone)]
pub struct SyncTimes(Arc<parking_lot::Mutex<hdrhistogram::Histogram<u64>>>);

impl Default for SyncTimes {
    fn default() -> Self {
        // Valid bounds (1 us to 10 minutes, 2 significant digits): cannot fail.
        let h = hdrhistogram::Histogram::new_with_bounds(1, 600_000_000, 2)
            .unwrap_or_else(|_| unreachable!("valid histogram bounds"));
        SyncTimes(Arc::new(parking_lot::Mutex::new(h)))
    }
}

impl SyncTimes {
    fn record(&self, us: u64) {
        self.0.lock().saturating_record(us.max(1));
    }

    /// (syncs, p50, p99, max) in microseconds.
    pub fn summary(&self) -> (u64, u64, u64, u64) {
        let h = self.0.lock();
        if h.is_empty() {
            return (0, 0, 0, 0);
        }
        (
            h.len(),
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.max(),
        )
    }
}

/// fdatasync, or exit: after a failed sync the kernel may have dropped the dirty pages, so
/// nothing written since the last good sync can be trusted (and retrying can report success
/// falsely). The hub stops rather than acknowledge what may be lost; a restart recovers.
pub fn sync_or_die(disk: &dyn Disk, times: &SyncTimes, f: &File) {
    let started = std::time::Instant::now();
    let r = disk.sync_data(f);
    times.record(started.elapsed().as_micros() as u64);
    if let Err(e) = r {
        die("fdatasync", &e);
    }
}

/// Stops the process after a failed `what` of the journal (status 70).
pub fn die(what: &str, e: &std::io::Error) -> ! {
    tracing::error!("journal: {what} failed: {e}; stopping the hub");
    eprintln!("dco: journal {what} failed: {e}; stopping");
    std::process::exit(70);
}

/// The group-commit thread: each sync covers everything written before it started.
pub struct Syncer {
    tx: Sender<(Pos, MarkNote, Vec<Arc<File>>)>,
}

impl Syncer {
    /// Starts the thread; it publishes progress in `durable` and calls `wake` after each sync.
    pub fn start(
        disk: Arc<dyn Disk>,
        times: SyncTimes,
        durable: Arc<AtomicU64>,
        wake: Box<dyn Fn() + Send>,
    ) -> Syncer {
        let (tx, rx) = unbounded::<(Pos, MarkNote, Vec<Arc<File>>)>();
        std::thread::Builder::new()
            .name("dco-journal-sync".into())
            .spawn(move || run(&*disk, &times, rx, durable, wake))
            .map(|_| ())
            .unwrap_or_else(|e| {
                eprintln!("dco: cannot start the journal syncer: {e}");
                std::process::exit(70);
            });
        Syncer { tx }
    }

    /// Asks for everything up to `upto`, in `files`, to be synced, and `mark` to be written
    /// after.
    pub fn request(&self, upto: Pos, mark: MarkNote, files: Vec<Arc<File>>) {
        let _ = self.tx.send((upto, mark, files));
    }
}

fn run(
    disk: &dyn Disk,
    times: &SyncTimes,
    rx: Receiver<(Pos, MarkNote, Vec<Arc<File>>)>,
    durable: Arc<AtomicU64>,
    wake: Box<dyn Fn() + Send>,
) {
    let mut slot = 0usize;
    // The header mark of the last sync, written once the journal goes quiet: in the header
    // it survives a cut of the data after it (MARK records say the same in the data, at no
    // cost, but a cut takes them away).
    let mut latest: MarkNote = None;
    let mut header_mark = |latest: &mut MarkNote| {
        if let Some((file, seq, m)) = latest.take() {
            if let Err(e) = segment::write_mark(disk, &file, seq, slot, m) {
                tracing::warn!("journal: cannot write the durability mark of segment {seq}: {e}");
            }
            slot ^= 1;
            sync_or_die(disk, times, &file);
        }
    };
    loop {
        let (mut upto, mut mark, mut files) = match rx.recv_timeout(IDLE_MARK_SYNC) {
            Ok(x) => x,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                header_mark(&mut latest);
                continue;
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        };
        // Everything queued meanwhile joins this sync.
        while let Ok((u, m, f)) = rx.try_recv() {
            if u >= upto {
                upto = u;
                mark = m.or(mark);
            }
            for file in f {
                if !files.iter().any(|x| Arc::ptr_eq(x, &file)) {
                    files.push(file);
                }
            }
        }
        for f in &files {
            sync_or_die(disk, times, f);
        }
        if mark.is_some() {
            latest = mark;
        }
        durable.fetch_max(upto, Ordering::AcqRel);
        wake();
    }
    header_mark(&mut latest);
}

/// Keeps one spare segment ready (allocated and pre-faulted) off the hub's thread.
pub struct Preparer {
    /// None once dropped (the thread then ends).
    tx: Option<Sender<u64>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// A prepared spare, or None when preparing one failed.
    rx: Receiver<Option<Segment>>,
    /// Spares asked for and not yet taken.
    outstanding: std::cell::Cell<usize>,
}

impl Preparer {
    /// Starts the thread for segments of `size` bytes in `dir`.
    pub fn start(disk: Arc<dyn Disk>, dir: PathBuf, size: usize) -> Preparer {
        let (req_tx, req_rx) = unbounded::<u64>();
        let (seg_tx, seg_rx) = unbounded::<Option<Segment>>();
        let spawned = std::thread::Builder::new()
            .name("dco-journal-prep".into())
            .spawn(move || {
                while let Ok(n) = req_rx.recv() {
                    // A name no other writer can be using (another journal's preparer, in
                    // this process or not, may still be finishing a spare in this directory).
                    let name = format!("p{n}-{:016x}", crate::sys::random_u64());
                    match Segment::create_spare(&*disk, &dir, &name, size) {
                        Ok(s) => {
                            if seg_tx.send(Some(s)).is_err() {
                                return;
                            }
                        }
                        // Gone directory: the journal was closed and removed meanwhile.
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
                        Err(e) => {
                            tracing::warn!("journal: cannot prepare a spare segment: {e}");
                            if seg_tx.send(None).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        let thread = match spawned {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!(
                    "journal: no segment preparer thread ({e}); segments made on demand"
                );
                None
            }
        };
        Preparer {
            tx: Some(req_tx),
            thread,
            rx: seg_rx,
            outstanding: std::cell::Cell::new(0),
        }
    }

    /// Asks for a spare; `n` only names its file.
    pub fn request(&self, n: u64) {
        if self.tx.as_ref().is_some_and(|tx| tx.send(n).is_ok()) {
            self.outstanding.set(self.outstanding.get() + 1);
        }
    }

    /// Whether a spare was asked for and not taken yet (ready or in the making).
    pub fn pending(&self) -> bool {
        self.outstanding.get() > 0
    }

    /// A prepared spare, if one is ready.
    pub fn take(&self) -> Option<Segment> {
        // A failed attempt counts as taken, so the next roll asks again.
        while let Ok(s) = self.rx.try_recv() {
            self.outstanding
                .set(self.outstanding.get().saturating_sub(1));
            if s.is_some() {
                return s;
            }
        }
        None
    }
}

impl Drop for Preparer {
    /// Stops the thread and waits for it: no spare is being written once the journal is gone.
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
