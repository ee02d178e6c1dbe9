//! Serving one request at a time on the worker loop's thread: the [`Handler`] trait, the
//! [`Delivery`] it is handed and the [`ReplyBuf`] it writes its answer into.

use std::time::{Duration, Instant};

/// One request handed to a worker.
#[derive(Clone, Copy, Debug)]
pub struct Delivery<'a> {
    /// A tag of the caller's session: the same for every request of the session, also after
    /// a restart of the hub, but not the session id itself (which would let its holder resume
    /// the session).
    pub session: u64,
    /// The caller's request id; with `session` it names the request across redeliveries.
    pub request: u64,
    /// The proxy id the request was sent to.
    pub proxy: i32,
    /// Delivery attempt, 1 for the first: above 1 the request may have run before.
    pub attempt: u32,
    /// When the hub stops waiting for the answer (the request's deadline or the proxy's
    /// service-time limit, whichever comes first); None: no limit. An answer after it is
    /// dropped, so a handler should give up (or answer [`Outcome::RetryLater`]) before.
    pub deadline: Option<Instant>,
    /// The request body.
    pub body: &'a [u8],
}

impl Delivery<'_> {
    /// The time left before [`Delivery::deadline`] (zero once passed); None: no limit.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }
}

/// What a handler says of a request it ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done; the reply buffer holds the reply.
    Success,
    /// Application failure with this return code (Tuxedo's TPFAIL + tpurcode); the reply buffer
    /// may say why. Not retried.
    Failure(i32),
    /// Could not run it now for a passing reason (the far side is down, busy, timed out): the
    /// hub tries it again later, per the proxy's retry policy; the reply buffer may say why.
    /// After the last attempt the caller gets DCO_E_SYSTEM with those words.
    RetryLater,
    /// Finish the request by handing it to this proxy (Tuxedo's tpforward); the reply buffer
    /// holds the new body. The final answer goes straight to the original caller.
    Forward(i32),
    /// Not run: the hub cancelled the request before it started (see
    /// [`super::Request::is_cancelled`]). The hub has dropped it already; nothing is retried.
    Cancelled,
    /// Not run, or given up: the request's deadline passed. The caller gets DCO_E_TIMEOUT
    /// (unless the hub timed it out first); nothing is retried.
    TimedOut,
}

/// The reply being built for one delivery. It writes straight into the connection's output
/// buffer, so a reply is never copied on its way out.
pub struct ReplyBuf<'a> {
    pub(crate) buf: &'a mut Vec<u8>,
    pub(crate) start: usize,
    /// An outcome set on the buffer (the C API's dco_reply_retry and dco_reply_forward),
    /// which overrides the handler's return.
    pub(crate) verdict: Option<Outcome>,
    /// The return code sent beside a success or a retry (see [`ReplyBuf::set_rcode`]).
    pub(crate) rcode: i32,
}

impl ReplyBuf<'_> {
    /// Appends bytes to the reply.
    pub fn write(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sets the return code the caller sees beside a success (an HTTP status, say); a
    /// [`Outcome::Failure`] carries its own.
    pub fn set_rcode(&mut self, rcode: i32) {
        self.rcode = rcode;
    }

    /// Drops what was written.
    pub fn clear(&mut self) {
        self.buf.truncate(self.start);
    }
}

/// Serves deliveries one at a time, on the thread that runs [`super::run`]. For many at once,
/// see [`super::Service`] and [`super::Pool`].
pub trait Handler {
    /// Runs once before the worker connects and announces its proxies (Tuxedo's tpsvrinit).
    /// An error stops the worker before it serves anything.
    fn init(&mut self) -> Result<(), String> {
        Ok(())
    }

    /// Runs once on a graceful stop, after the last answer was written (Tuxedo's tpsvrdone).
    fn done(&mut self) {}

    /// Runs one request and writes its reply into `reply`.
    fn handle(&mut self, d: &Delivery<'_>, reply: &mut ReplyBuf<'_>) -> Outcome;

    /// The hub cancelled a delivery before it ran (its caller cancelled it, or its time ran
    /// out): it is not run. The default does nothing.
    fn cancelled(&mut self, d: &Delivery<'_>) {
        let _ = d;
    }
}

impl<F> Handler for F
where
    F: FnMut(&Delivery<'_>, &mut ReplyBuf<'_>) -> Outcome,
{
    fn handle(&mut self, d: &Delivery<'_>, reply: &mut ReplyBuf<'_>) -> Outcome {
        self(d, reply)
    }
}
