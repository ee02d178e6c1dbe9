//! The worker API: serve proxy ids with a C callback.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::atomic::{AtomicBool, Ordering};

use super::{boundary, to_code};
use crate::status::{Error, Status};
use crate::wire::HubAddr;
use crate::worker::{
    self, Delivery, Outcome, Pool, PoolHandler, ReplyBuf, Request, Response, WorkerConfig,
};

/// A worker: the hubs it connects to and the proxy ids it serves. Created by dco_worker_new,
/// run by dco_worker_run, stopped by dco_worker_stop (from any thread), freed by
/// dco_worker_free once dco_worker_run has returned.
pub struct dco_worker {
    cfg: WorkerConfig,
    stop: AtomicBool,
    on_cancel: dco_cancel_handler,
    hooks: Hooks,
    /// Threads calling the handler; 1: the thread running dco_worker_run.
    concurrency: u32,
    /// Whether dco_worker_set_capacity was called (else the capacity follows the concurrency).
    capacity_set: bool,
}

#[derive(Clone, Copy)]
struct Hooks {
    init: dco_init_hook,
    done: dco_done_hook,
    user: *mut c_void,
}

/// The reply being built for one delivery; valid only during the handler call that received
/// it. Write to it with dco_reply_write.
pub struct dco_reply {
    _private: [u8; 0],
}

impl super::Castable for dco_worker {
    type Rust = dco_worker;
}

/// A `dco_reply` is the reply buffer lent to the running handler.
impl super::Castable for dco_reply {
    type Rust = ReplyBuf<'static>;
}

/// One request handed to a worker's handler. Valid only during the handler call.
#[repr(C)]
pub struct dco_delivery {
    /// A tag of the caller's session: the same for every request of the session, also after
    /// a restart of the hub, but not the session id itself.
    pub session: u64,
    /// The caller's request id; with `session` it names the request across redeliveries.
    pub request_id: u64,
    /// The proxy id the request was sent to.
    pub proxy_id: i32,
    /// Delivery attempt, 1 for the first; above 1 the request may have run before.
    pub attempt: u32,
    /// The request body (not NUL-terminated); owned by the library.
    pub body: *const u8,
    /// Length of `body`.
    pub len: usize,
    /// Milliseconds the hub still waits for the answer (the request's deadline or the proxy's
    /// service-time limit, whichever is first), at the moment the handler is called; -1 for
    /// no limit. An answer after it is dropped: give up (or dco_reply_retry) before.
    pub remaining_ms: i64,
    /// Points to 0, which the library sets to 1 (from another thread) when the hub cancels the
    /// delivery while the handler runs (its caller cancelled it, or its time ran out): the
    /// answer will be dropped, so a long handler may stop early. Read it as a volatile or
    /// atomic int (`*d->cancelled`, or `__atomic_load_n(d->cancelled, __ATOMIC_ACQUIRE)`).
    /// It only changes with dco_worker_set_concurrency above 1. Valid during the call.
    pub cancelled: *const i32,
}

/// A worker's handler: runs one request, writes the reply with dco_reply_write, and returns 0
/// for success or any other value for an application failure with that return code (the
/// caller then gets DCO_E_APP_FAIL and dco_last_rcode() == the value). `user` is the pointer
/// given to dco_worker_run. Called on the thread running dco_worker_run, one request at a time;
/// with dco_worker_set_concurrency(w, n > 1), on n threads of the library's pool at once.
pub type dco_handler = Option<
    unsafe extern "C" fn(user: *mut c_void, d: *const dco_delivery, reply: *mut dco_reply) -> i32,
>;

/// Runs once in dco_worker_run before the worker connects to a hub and announces its proxies
/// (Tuxedo's tpsvrinit): open files, connect to databases, read configuration. A value other
/// than 0 stops dco_worker_run at once, without announcing, with DCO_E_APP_FAIL and
/// dco_last_rcode() == the value.
pub type dco_init_hook = Option<unsafe extern "C" fn(user: *mut c_void) -> c_int>;

/// Runs once when dco_worker_run returns after dco_worker_stop, once the requests in flight
/// were answered and the pool's threads finished (Tuxedo's tpsvrdone). Not run when the
/// worker stops on an error.
pub type dco_done_hook = Option<unsafe extern "C" fn(user: *mut c_void)>;

/// Called instead of the handler for a delivery the hub cancelled before it ran (its caller
/// cancelled it, or its time ran out). `user` is the pointer given to dco_worker_run.
pub type dco_cancel_handler =
    Option<unsafe extern "C" fn(user: *mut c_void, d: *const dco_delivery)>;

/// Creates a worker serving the `n` proxy ids at `proxies` on the comma-separated hub list
/// `hubs` (NULL: DCO_HUB, default 127.0.0.1:7790). The ids are copied. The worker serves every
/// hub of the list at once, each over a connection of its own that reconnects on its own; the
/// handler still runs on the dco_worker_run thread, one request at a time, unless
/// dco_worker_set_concurrency asked for more.
///
/// Returns the worker, to be freed with dco_worker_free, or NULL with dco_last_error set
/// (DCO_E_INVALID: NULL `proxies`, `n` 0 or over 4096, a negative id, a malformed hub list).
#[no_mangle]
pub extern "C" fn dco_worker_new(
    hubs: *const c_char,
    proxies: *const i32,
    n: usize,
) -> *mut dco_worker {
    boundary(|| {
        let made = (|| {
            if proxies.is_null() || n == 0 || n > crate::wire::MAX_PROXIES {
                return Err(Error::new(
                    Status::Invalid,
                    "a worker needs 1 to 4096 proxy ids and a non-NULL array",
                ));
            }
            // SAFETY: non-NULL, `n` is at most 4096, and the caller promises `n` readable i32s.
            let ids = unsafe { std::slice::from_raw_parts(proxies, n) }.to_vec();
            if let Some(p) = ids.iter().find(|p| **p < 0) {
                return Err(Error::new(
                    Status::Invalid,
                    format!("proxy id {p} is negative"),
                ));
            }
            let hub_list = if hubs.is_null() {
                crate::wire::hubs_from_env()
            } else {
                // SAFETY: non-NULL, and the caller promises a NUL-terminated string.
                HubAddr::parse_list(&unsafe { CStr::from_ptr(hubs) }.to_string_lossy())
            }
            .map_err(|e| Error::new(Status::Invalid, e))?;
            Ok(WorkerConfig::new(hub_list, ids))
        })();
        match made {
            Ok(cfg) => {
                super::clear_last_error();
                Box::into_raw(Box::new(dco_worker {
                    cfg,
                    stop: AtomicBool::new(false),
                    on_cancel: None,
                    hooks: Hooks {
                        init: None,
                        done: None,
                        user: std::ptr::null_mut(),
                    },
                    concurrency: 1,
                    capacity_set: false,
                }))
            }
            Err(e) => {
                super::set_last_error(&e);
                std::ptr::null_mut()
            }
        }
    })
}

/// Sets how many requests the hub may hand this worker before it answers them (default 1024,
/// at least 1). Call before dco_worker_run. Returns DCO_OK or DCO_E_INVALID (NULL worker).
#[no_mangle]
pub extern "C" fn dco_worker_set_capacity(w: *mut dco_worker, capacity: u32) -> c_int {
    boundary(|| {
        // SAFETY: a non-NULL `w` comes from dco_worker_new, not freed, not running (contract).
        match unsafe { super::try_mut(w) } {
            Some(w) => {
                w.cfg.capacity = capacity.max(1);
                w.capacity_set = true;
                super::clear_last_error();
                0
            }
            None => {
                to_code::<()>(Err(Error::new(Status::Invalid, "worker is NULL")), |_| 0) as c_int
            }
        }
    })
}

/// Sets the function called for deliveries the hub cancels before they run (NULL: none).
/// Call before dco_worker_run. Returns DCO_OK or DCO_E_INVALID (NULL worker).
#[no_mangle]
pub extern "C" fn dco_worker_set_cancel_handler(
    w: *mut dco_worker,
    handler: dco_cancel_handler,
) -> c_int {
    boundary(|| {
        // SAFETY: a non-NULL `w` comes from dco_worker_new, not freed, not running (contract).
        match unsafe { super::try_mut(w) } {
            Some(w) => {
                w.on_cancel = handler;
                super::clear_last_error();
                0
            }
            None => {
                to_code::<()>(Err(Error::new(Status::Invalid, "worker is NULL")), |_| 0) as c_int
            }
        }
    })
}

/// Sets the worker's init and done hooks (either may be NULL) and the `user` pointer they are
/// called with. Call before dco_worker_run. Returns DCO_OK or DCO_E_INVALID (NULL worker).
#[no_mangle]
pub extern "C" fn dco_worker_set_hooks(
    w: *mut dco_worker,
    init: dco_init_hook,
    done: dco_done_hook,
    user: *mut c_void,
) -> c_int {
    boundary(|| {
        // SAFETY: a non-NULL `w` comes from dco_worker_new, not freed, not running (contract).
        match unsafe { super::try_mut(w) } {
            Some(w) => {
                w.hooks = Hooks { init, done, user };
                super::clear_last_error();
                0
            }
            None => {
                to_code::<()>(Err(Error::new(Status::Invalid, "worker is NULL")), |_| 0) as c_int
            }
        }
    })
}

/// Sets how many requests the handler runs at once: `n` threads of a pool the library starts
/// in dco_worker_run each call the handler (1, the default: the thread of dco_worker_run, one
/// request at a time; at most 4096). Unless dco_worker_set_capacity was called, the hub may
/// hand the worker 2 * n requests before it answers them.
///
/// Threads: with n > 1 the handler and the cancel handler are called from several threads at
/// once with the same `user` pointer, so they must be thread-safe. Each call gets its own
/// dco_delivery and dco_reply, valid on that thread during that call only; dco_reply_* may be
/// called only from there. The hooks run on the thread of dco_worker_run. The library's own
/// state is locked inside: nothing else needs a lock.
///
/// Call before dco_worker_run. Returns DCO_OK or DCO_E_INVALID (NULL worker, `n` 0 or over
/// 4096).
#[no_mangle]
pub extern "C" fn dco_worker_set_concurrency(w: *mut dco_worker, n: u32) -> c_int {
    boundary(|| {
        // SAFETY: a non-NULL `w` comes from dco_worker_new, not freed, not running (contract).
        match unsafe { super::try_mut(w) } {
            Some(w) if (1..=4096).contains(&n) => {
                w.concurrency = n;
                super::clear_last_error();
                0
            }
            Some(_) => to_code::<()>(
                Err(Error::new(
                    Status::Invalid,
                    format!("concurrency {n} is not 1 to 4096"),
                )),
                |_| 0,
            ) as c_int,
            None => {
                to_code::<()>(Err(Error::new(Status::Invalid, "worker is NULL")), |_| 0) as c_int
            }
        }
    })
}

/// Serves requests with `handler` until dco_worker_stop is called: connects to the hubs,
/// reconnects with backoff when a connection fails, and calls `handler(user, delivery, reply)`
/// for each request. Blocks the calling thread.
///
/// Returns DCO_OK after dco_worker_stop; DCO_E_INVALID (NULL worker or handler); DCO_E_REFUSED
/// (a hub refused the worker: wrong secret, proxies not allowed). The library keeps no pointer
/// to `user` after it returns.
#[no_mangle]
pub extern "C" fn dco_worker_run(
    w: *const dco_worker,
    handler: dco_handler,
    user: *mut c_void,
) -> c_int {
    boundary(|| {
        // SAFETY: a non-NULL `w` comes from dco_worker_new and is not freed while running
        // (contract); only shared access is taken, so dco_worker_stop may run concurrently.
        let Some(w) = (unsafe { super::try_ref(w) }) else {
            return to_code::<()>(Err(Error::new(Status::Invalid, "worker is NULL")), |_| 0)
                as c_int;
        };
        let Some(h) = handler else {
            return to_code::<()>(Err(Error::new(Status::Invalid, "handler is NULL")), |_| 0)
                as c_int;
        };
        if let Some(init) = w.hooks.init {
            // SAFETY: the C caller's init hook, called with its own pointer.
            let rc = unsafe { init(w.hooks.user) };
            if rc != 0 {
                let mut e = Error::new(
                    Status::AppFail,
                    format!("the worker's init hook returned {rc}"),
                );
                e.rcode = rc;
                return to_code::<()>(Err(e), |_| 0) as c_int;
            }
        }
        let ran = if w.concurrency <= 1 {
            let mut call = CHandler {
                handler: h,
                on_cancel: w.on_cancel,
                user,
            };
            worker::run(&w.cfg, &mut call, &w.stop)
        } else {
            let mut cfg = w.cfg.clone();
            if !w.capacity_set {
                cfg.capacity = w.concurrency.saturating_mul(2);
            }
            let pool = Pool::new(
                w.concurrency as usize,
                CPool {
                    handler: h,
                    on_cancel: w.on_cancel,
                    user: SharedUser(user),
                },
            );
            worker::run_service(&cfg, &pool, &w.stop)
        };
        if ran.is_ok() {
            if let Some(done) = w.hooks.done {
                // SAFETY: the C caller's done hook, called with its own pointer.
                unsafe { done(w.hooks.user) };
            }
        }
        to_code(ran, |_| 0) as c_int
    })
}

/// The `user` pointer of a worker whose handler runs on several threads: the header makes
/// thread safety of what it points to the caller's promise (see dco_worker_set_concurrency).
#[derive(Clone, Copy)]
struct SharedUser(*mut c_void);

// SAFETY: the library never dereferences it; the C caller promises its handler is
// thread-safe when it asks for concurrency above 1 (documented).
unsafe impl Send for SharedUser {}
// SAFETY: as above.
unsafe impl Sync for SharedUser {}

/// The C handlers as a [`PoolHandler`], for concurrency above 1.
struct CPool {
    handler: unsafe extern "C" fn(*mut c_void, *const dco_delivery, *mut dco_reply) -> i32,
    on_cancel: dco_cancel_handler,
    user: SharedUser,
}

fn c_request(r: &Request) -> dco_delivery {
    dco_delivery {
        session: r.session,
        request_id: r.request,
        proxy_id: r.proxy,
        attempt: r.attempt,
        body: r.body.as_ptr(),
        len: r.body.len(),
        remaining_ms: r
            .remaining()
            .map(|d| d.as_millis().min(i64::MAX as u128) as i64)
            .unwrap_or(-1),
        cancelled: r.cancel_flag(),
    }
}

impl PoolHandler for CPool {
    fn handle(&self, r: &Request) -> Response {
        let cd = c_request(r);
        let mut body = Vec::new();
        let mut reply = ReplyBuf {
            buf: &mut body,
            start: 0,
            verdict: None,
            rcode: 0,
        };
        // SAFETY: the C caller's handler, thread-safe by its promise; `cd` (whose pointers
        // point into `r`, alive for the call) and `reply` live for the whole call.
        let rc = unsafe { (self.handler)(self.user.0, &cd, reply_handle(&mut reply)) };
        let outcome = reply.verdict.unwrap_or(if rc == 0 {
            Outcome::Success
        } else {
            Outcome::Failure(rc)
        });
        let rcode = reply.rcode;
        Response {
            outcome,
            rcode: if let Outcome::Failure(rc) = outcome {
                rc
            } else {
                rcode
            },
            body,
        }
    }

    fn cancelled(&self, r: &Request) {
        if let Some(f) = self.on_cancel {
            let cd = c_request(r);
            // SAFETY: the C caller's cancel handler; `cd` lives for the call.
            unsafe { f(self.user.0, &cd) }
        }
    }
}

/// The C handlers as a [`worker::Handler`].
struct CHandler {
    handler: unsafe extern "C" fn(*mut c_void, *const dco_delivery, *mut dco_reply) -> i32,
    on_cancel: dco_cancel_handler,
    user: *mut c_void,
}

/// What `cancelled` points to in a delivery handled on the worker's own thread: nothing can
/// cancel it while the handler runs.
static NEVER_CANCELLED: i32 = 0;

fn c_delivery(d: &Delivery<'_>) -> dco_delivery {
    dco_delivery {
        session: d.session,
        request_id: d.request,
        proxy_id: d.proxy,
        attempt: d.attempt,
        body: d.body.as_ptr(),
        len: d.body.len(),
        remaining_ms: d
            .remaining()
            .map(|r| r.as_millis().min(i64::MAX as u128) as i64)
            .unwrap_or(-1),
        cancelled: &NEVER_CANCELLED,
    }
}

impl worker::Handler for CHandler {
    fn handle(&mut self, d: &Delivery<'_>, reply: &mut ReplyBuf<'_>) -> Outcome {
        let cd = c_delivery(d);
        // SAFETY: `handler` is the C caller's handler; `cd` and `reply` live for the whole
        // call and are only valid during it, as the header documents.
        let rc = unsafe { (self.handler)(self.user, &cd, reply_handle(reply)) };
        if rc == 0 {
            Outcome::Success
        } else {
            Outcome::Failure(rc)
        }
    }

    fn cancelled(&mut self, d: &Delivery<'_>) {
        if let Some(f) = self.on_cancel {
            let cd = c_delivery(d);
            // SAFETY: the C caller's cancel handler; `cd` lives for the call.
            unsafe { f(self.user, &cd) }
        }
    }
}

/// Asks a running dco_worker_run to return after the request in hand (within about 100 ms when
/// idle); a dco_worker_run started afterwards returns at once. Safe to call from any thread,
/// including from the handler, and from a signal handler: on success it only sets an atomic
/// flag, and leaves dco_last_error as it was. Returns DCO_OK or DCO_E_INVALID (NULL).
#[no_mangle]
pub extern "C" fn dco_worker_stop(w: *const dco_worker) -> c_int {
    boundary(|| {
        // SAFETY: a non-NULL `w` comes from dco_worker_new and is not yet freed (contract).
        match unsafe { super::try_ref(w) } {
            Some(w) => {
                // Nothing else here: no lock, no allocation, no thread-local, so that this is
                // async-signal-safe (see the doc comment).
                w.stop.store(true, Ordering::SeqCst);
                0
            }
            None => {
                to_code::<()>(Err(Error::new(Status::Invalid, "worker is NULL")), |_| 0) as c_int
            }
        }
    })
}

/// Frees a worker made by dco_worker_new. NULL does nothing. Must not be called while
/// dco_worker_run is running on it.
#[no_mangle]
pub extern "C" fn dco_worker_free(w: *mut dco_worker) {
    boundary(|| {
        if !w.is_null() {
            // SAFETY: non-NULL, from Box::into_raw in dco_worker_new, freed once (contract).
            drop(unsafe { Box::from_raw(w) });
        }
    })
}

/// Appends `len` bytes at `data` to the reply being built. Call only from inside the handler,
/// with the `reply` it received. Returns DCO_OK, DCO_E_INVALID (NULL `reply`, or NULL `data`
/// with `len` > 0) or DCO_E_TOO_LARGE (`len` larger than any buffer can be). The bytes are
/// copied.
#[no_mangle]
pub extern "C" fn dco_reply_write(reply: *mut dco_reply, data: *const u8, len: usize) -> c_int {
    boundary(|| {
        if reply.is_null() || (data.is_null() && len > 0) {
            return to_code::<()>(
                Err(Error::new(Status::Invalid, "reply or data is NULL")),
                |_| 0,
            ) as c_int;
        }
        if len > isize::MAX as usize {
            return to_code::<()>(Err(Error::new(Status::TooLarge, "len is too large")), |_| 0)
                as c_int;
        }
        if len == 0 {
            return with_reply(reply, |_| {});
        }
        // SAFETY: non-NULL (checked above) and `len` readable bytes per the contract.
        let bytes = unsafe { std::slice::from_raw_parts(data, len) };
        with_reply(reply, |r| r.write(bytes))
    })
}

/// Runs `f` on the reply behind `reply`, or fails with DCO_E_INVALID if it is NULL.
fn with_reply(reply: *mut dco_reply, f: impl FnOnce(&mut ReplyBuf<'_>)) -> c_int {
    // SAFETY: a non-NULL `reply` is the handle lent to the running handler (reply_handle),
    // which points at a live ReplyBuf for the duration of that call, the only time this may be
    // called; the reference does not outlive this function.
    match unsafe { super::try_mut(reply) } {
        Some(r) => {
            f(r);
            super::clear_last_error();
            0
        }
        None => to_code::<()>(Err(Error::new(Status::Invalid, "reply is NULL")), |_| 0) as c_int,
    }
}

/// The handle lent to a handler for the reply it builds: the one conversion of a `ReplyBuf`
/// into a `dco_reply` (the way back is [`super::try_mut`]).
fn reply_handle(r: &mut ReplyBuf<'_>) -> *mut dco_reply {
    r as *mut ReplyBuf<'_> as *mut dco_reply
}

/// Ends the delivery with "retry later" whatever the handler returns: the far side is down,
/// busy or timed out. The hub tries the request again after a backoff, per the proxy's retry
/// policy; after the last attempt the caller gets DCO_E_SYSTEM with the words written to the
/// reply. Call only from inside the handler. Returns DCO_OK or DCO_E_INVALID (NULL `reply`).
#[no_mangle]
pub extern "C" fn dco_reply_retry(reply: *mut dco_reply) -> c_int {
    boundary(|| with_reply(reply, |r| r.verdict = Some(Outcome::RetryLater)))
}

/// Ends the delivery by handing the request to `proxy_id` whatever the handler returns, with
/// the reply written so far as its new body (Tuxedo's tpforward). The final answer goes
/// straight to the original caller; the hand-over is journaled, and a chain longer than 8
/// forwards fails with DCO_E_SYSTEM. Call only from inside the handler. Returns DCO_OK or
/// DCO_E_INVALID (NULL `reply`, negative proxy id).
#[no_mangle]
pub extern "C" fn dco_reply_forward(reply: *mut dco_reply, proxy_id: i32) -> c_int {
    boundary(|| {
        if proxy_id < 0 {
            return to_code::<()>(
                Err(Error::new(Status::Invalid, "proxy id must not be negative")),
                |_| 0,
            ) as c_int;
        }
        with_reply(reply, |r| r.verdict = Some(Outcome::Forward(proxy_id)))
    })
}

/// Sets the return code the caller gets beside a success or a "retry later" (dco_last_rcode(),
/// an HTTP status, say); a failure's return code is the handler's return value. Call only
/// from inside the handler. Returns DCO_OK or DCO_E_INVALID (NULL `reply`).
#[no_mangle]
pub extern "C" fn dco_reply_set_rcode(reply: *mut dco_reply, rcode: i32) -> c_int {
    boundary(|| with_reply(reply, |r| r.rcode = rcode))
}
