//! Serving many requests at once: a [`Service`] is handed each request as an owned [`Request`]
//! with a [`Responder`], and answers whenever it is done, from any thread. The worker loop
//! keeps reading the hub meanwhile, so a CANCEL reaches a request while it runs.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::Outcome;

/// The hub's tag for one delivery on one worker connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Tag(pub u64);

/// One request handed to a [`Service`], owned so that it can travel to another thread or task.
#[derive(Debug)]
pub struct Request {
    /// A tag of the caller's session (see [`crate::worker::Delivery::session`]).
    pub session: u64,
    /// The caller's request id; with `session` it names the request across redeliveries.
    pub request: u64,
    /// The proxy id the request was sent to.
    pub proxy: i32,
    /// Delivery attempt, 1 for the first: above 1 the request may have run before.
    pub attempt: u32,
    /// When the hub stops waiting for the answer; None: no limit. See
    /// [`super::Delivery::deadline`].
    pub deadline: Option<Instant>,
    /// The request body.
    pub body: Vec<u8>,
    cancel: CancelSignal,
}

impl Request {
    pub(crate) fn new(
        session: u64,
        request: u64,
        proxy: i32,
        attempt: u32,
        deadline: Option<Instant>,
        body: Vec<u8>,
        cancel: CancelSignal,
    ) -> Request {
        Request {
            session,
            request,
            proxy,
            attempt,
            deadline,
            body,
            cancel,
        }
    }

    /// The time left before the deadline (zero once passed); None: no limit.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Whether the hub cancelled this request (its caller cancelled it, or its time ran out):
    /// its answer will be dropped, so whatever is still to be done for it can stop.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// The cancel flag as C sees it (`dco_delivery.cancelled`): 0, then 1; valid while the
    /// request lives.
    pub(crate) fn cancel_flag(&self) -> *const i32 {
        self.cancel.flag_ptr()
    }

    /// The request's cancel signal, to wait on (it is a future) or to hand to other code.
    pub fn cancel_signal(&self) -> CancelSignal {
        self.cancel.clone()
    }
}

/// Set when the hub cancels a request. Cheap to clone; awaiting it (see
/// [`CancelSignal::cancelled`]) completes once the request is cancelled.
#[derive(Clone, Debug, Default)]
pub struct CancelSignal(Arc<CancelState>);

#[derive(Debug, Default)]
struct CancelState {
    /// 0, then 1 once cancelled. An i32 so that C handlers can read it (`dco_delivery`).
    flag: AtomicI32,
    wakers: Mutex<Vec<Waker>>,
}

impl CancelSignal {
    /// Whether the request was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.0.flag.load(Ordering::Acquire) != 0
    }

    /// A future that completes when the request is cancelled (at once if it already is).
    pub fn cancelled(&self) -> Cancelled {
        Cancelled(self.clone())
    }

    /// Marks the request cancelled and wakes whoever awaits it.
    pub(crate) fn cancel(&self) {
        self.0.flag.store(1, Ordering::Release);
        for w in self.0.wakers.lock().drain(..) {
            w.wake();
        }
    }

    /// The flag as C sees it: 0, then 1 once cancelled; valid while a clone lives.
    pub(crate) fn flag_ptr(&self) -> *const i32 {
        self.0.flag.as_ptr() as *const i32
    }
}

/// The future returned by [`CancelSignal::cancelled`].
#[derive(Debug)]
pub struct Cancelled(CancelSignal);

impl Future for Cancelled {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.is_cancelled() {
            return Poll::Ready(());
        }
        let mut wakers = self.0 .0.wakers.lock();
        // Checked again under the lock: `cancel` sets the flag before it takes the lock.
        if self.0.is_cancelled() {
            return Poll::Ready(());
        }
        if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
            wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// A service's answer to one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// What happened; see [`Outcome`].
    pub outcome: Outcome,
    /// The return code the caller sees beside a success or a retry (an HTTP status, say);
    /// [`Outcome::Failure`] carries its own.
    pub rcode: i32,
    /// The reply body; for [`Outcome::RetryLater`] the words the caller gets after the last
    /// attempt; for [`Outcome::Forward`] the new request body.
    pub body: Vec<u8>,
}

impl Response {
    /// Done, with this reply.
    pub fn success(body: impl Into<Vec<u8>>) -> Response {
        Response {
            outcome: Outcome::Success,
            rcode: 0,
            body: body.into(),
        }
    }

    /// An application failure with return code `rcode`, not retried.
    pub fn failure(rcode: i32, body: impl Into<Vec<u8>>) -> Response {
        Response {
            outcome: Outcome::Failure(rcode),
            rcode,
            body: body.into(),
        }
    }

    /// Could not run it now; the hub retries per the proxy's policy. `why` is shown to the
    /// caller after the last attempt.
    pub fn retry_later(why: impl Into<Vec<u8>>) -> Response {
        Response {
            outcome: Outcome::RetryLater,
            rcode: 0,
            body: why.into(),
        }
    }

    /// Hands the request on to `proxy` with `body` as its new body.
    pub fn forward(proxy: i32, body: impl Into<Vec<u8>>) -> Response {
        Response {
            outcome: Outcome::Forward(proxy),
            rcode: 0,
            body: body.into(),
        }
    }

    /// Not run: the hub cancelled the request (see [`Request::is_cancelled`]).
    pub fn cancelled(why: impl Into<Vec<u8>>) -> Response {
        Response {
            outcome: Outcome::Cancelled,
            rcode: 0,
            body: why.into(),
        }
    }

    /// Not run, or given up: the request's deadline passed (the caller gets DCO_E_TIMEOUT).
    pub fn timed_out(why: impl Into<Vec<u8>>) -> Response {
        Response {
            outcome: Outcome::TimedOut,
            rcode: 0,
            body: why.into(),
        }
    }

    /// The same answer with return code `rcode`.
    pub fn with_rcode(mut self, rcode: i32) -> Response {
        self.rcode = rcode;
        if let Outcome::Failure(rc) = &mut self.outcome {
            *rc = rcode;
        }
        self
    }
}

/// Answers one request, once, from any thread. A responder dropped without an answer (a
/// handler that panicked, say) answers "retry later", so the request is never stranded.
#[derive(Debug)]
pub struct Responder {
    tag: Tag,
    done: Sink,
    answered: bool,
}

/// Where a responder's answer goes: the blocking loop's queue, or the asynchronous loop's
/// channel. An answer for a connection that is gone goes nowhere.
#[derive(Debug)]
pub(crate) enum Sink {
    Queue(Arc<Completions>),
    Channel(tokio::sync::mpsc::UnboundedSender<(Tag, Response)>),
}

impl Responder {
    pub(crate) fn new(tag: Tag, done: Sink) -> Responder {
        Responder {
            tag,
            done,
            answered: false,
        }
    }

    fn deliver(&self, r: Response) {
        match &self.done {
            Sink::Queue(q) => q.push(self.tag, r),
            Sink::Channel(c) => {
                let _ = c.send((self.tag, r));
            }
        }
    }

    /// Sends the answer.
    pub fn send(mut self, r: Response) {
        self.answered = true;
        self.deliver(r);
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if !self.answered {
            self.deliver(Response::retry_later(
                "the worker dropped the request without an answer",
            ));
        }
    }
}

/// Serves requests concurrently. [`super::run_service`] runs it.
pub trait Service: Send + Sync {
    /// Runs once before the worker connects and announces its proxies (Tuxedo's tpsvrinit).
    /// An error stops the worker before it serves anything.
    fn init(&self) -> Result<(), String> {
        Ok(())
    }

    /// Starts one request. The service answers through `responder` whenever it is done,
    /// from any thread; it must not block for long here (hand the work to a thread or task).
    fn start(&self, req: Request, responder: Responder);

    /// Runs once on a graceful stop, after the requests in flight were answered (Tuxedo's
    /// tpsvrdone).
    fn done(&self) {}

    /// A service whose requests run as tasks of a single-threaded tokio runtime of its own
    /// returns it: the worker loop then runs on it too, on the thread that calls
    /// [`super::run_service`], so a request and its answer never cross threads. `start` is
    /// then called from inside that runtime. None (the default): the loop runs on its own
    /// thread and answers may come from any thread.
    fn runtime(&self) -> Option<&tokio::runtime::Runtime> {
        None
    }
}

/// Answers waiting to be written, and the wake-up of the worker loop that writes them.
#[derive(Debug)]
pub(crate) struct Completions {
    queue: Mutex<Vec<(Tag, Response)>>,
    wake: crate::sys::EventFd,
}

impl Completions {
    pub(crate) fn new() -> std::io::Result<Completions> {
        Ok(Completions {
            queue: Mutex::new(Vec::new()),
            wake: crate::sys::EventFd::new()?,
        })
    }

    fn push(&self, tag: Tag, r: Response) {
        let first = {
            let mut q = self.queue.lock();
            q.push((tag, r));
            q.len() == 1
        };
        // The loop drains the whole queue after each wake-up: one signal per batch suffices.
        if first {
            self.wake.signal();
        }
    }

    /// Takes every waiting answer (and resets the wake-up).
    pub(crate) fn take(&self, into: &mut Vec<(Tag, Response)>) {
        self.wake.drain();
        into.append(&mut self.queue.lock());
    }

    pub(crate) fn wake_fd(&self) -> std::os::fd::RawFd {
        self.wake.fd()
    }
}

impl std::fmt::Debug for crate::sys::EventFd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EventFd({})", self.fd())
    }
}
