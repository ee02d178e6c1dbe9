//! A [`Service`] made of N threads that each run a blocking handler: requests run N at a
//! time, each on its own thread, for handlers that block (a database call, a C library).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use super::{Request, Responder, Response, Service};

/// A blocking handler that may run on several threads at once.
pub trait PoolHandler: Send + Sync + 'static {
    /// Runs once before the pool's threads start and the worker announces its proxies.
    fn init(&self) -> Result<(), String> {
        Ok(())
    }

    /// Runs one request and returns its answer. Called from the pool's threads, up to N at
    /// once. [`Request::is_cancelled`] turns true if the hub cancels it meanwhile.
    fn handle(&self, req: &Request) -> Response;

    /// Called instead of `handle` for a request cancelled before a thread took it.
    fn cancelled(&self, req: &Request) {
        let _ = req;
    }

    /// Runs once on a graceful stop, after the pool's threads finished.
    fn done(&self) {}
}

type Job = (Request, Responder);

/// Runs a [`PoolHandler`] on `threads` threads.
pub struct Pool<H: PoolHandler> {
    handler: Arc<H>,
    threads: usize,
    tx: Mutex<Option<Sender<Job>>>,
    joins: Mutex<Vec<JoinHandle<()>>>,
}

impl<H: PoolHandler> Pool<H> {
    /// A pool of `threads` threads (at least 1) for `handler`; the threads start in `init`.
    pub fn new(threads: usize, handler: H) -> Pool<H> {
        Pool {
            handler: Arc::new(handler),
            threads: threads.max(1),
            tx: Mutex::new(None),
            joins: Mutex::new(Vec::new()),
        }
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }
}

impl<H: PoolHandler> Service for Pool<H> {
    fn init(&self) -> Result<(), String> {
        self.handler.init()?;
        let (tx, rx) = crossbeam_channel::unbounded::<Job>();
        let mut joins = self.joins.lock();
        for i in 0..self.threads {
            let rx = rx.clone();
            let h = self.handler.clone();
            let t = std::thread::Builder::new()
                .name(format!("dco-pool-{i}"))
                .spawn(move || serve_jobs(&*h, &rx))
                .map_err(|e| format!("cannot start a pool thread: {e}"))?;
            joins.push(t);
        }
        *self.tx.lock() = Some(tx);
        Ok(())
    }

    fn start(&self, req: Request, responder: Responder) {
        match &*self.tx.lock() {
            Some(tx) => {
                // The receivers live as long as the threads, which outlive the sender.
                if let Err(e) = tx.send((req, responder)) {
                    let (_, r) = e.into_inner();
                    r.send(Response::retry_later("the worker's pool has stopped"));
                }
            }
            None => responder.send(Response::retry_later("the worker's pool is not running")),
        }
    }

    fn done(&self) {
        // Closing the channel ends each thread once the queue is empty.
        drop(self.tx.lock().take());
        for t in self.joins.lock().drain(..) {
            let _ = t.join();
        }
        self.handler.done();
    }
}

fn serve_jobs<H: PoolHandler>(h: &H, rx: &Receiver<Job>) {
    while let Ok((req, responder)) = rx.recv() {
        if req.is_cancelled() {
            h.cancelled(&req);
            responder.send(Response::cancelled("cancelled before it started"));
            continue;
        }
        if req.deadline.is_some_and(|d| d <= Instant::now()) {
            responder.send(Response::timed_out("its time ran out before it started"));
            continue;
        }
        let answer = catch_unwind(AssertUnwindSafe(|| h.handle(&req)))
            .unwrap_or_else(|_| Response::retry_later("the worker's handler panicked"));
        responder.send(answer);
    }
}
