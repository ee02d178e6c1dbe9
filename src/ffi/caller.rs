//! The caller's six calls, on this thread's session or on an explicit session handle.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr};
use std::time::Duration;

use super::error::{set_last_rcode, DCO_BUFFERED, DCO_ONEWAY, DCO_QUEUE_ON_TIMEOUT};
use super::{boundary, to_code};
use crate::client::{CallFlags, Session, SessionConfig};
use crate::status::{Error, Result, Status};
use crate::wire::HubAddr;

/// A caller session: one connection to one hub of a failover list, any number of outstanding
/// requests. Created by dco_session_new, freed by dco_session_free. A session must not be used
/// by two threads at the same time; it may move between threads.
pub struct dco_session {
    /// None once a panic was caught while the session was in use (it was dropped).
    inner: Option<Session>,
}

impl super::Castable for dco_session {
    type Rust = dco_session;
}

thread_local! {
    static THREAD_SESSION: RefCell<Option<Session>> = const { RefCell::new(None) };
}

/// Runs `f` on this thread's session, creating it (from DCO_HUB) on first use.
fn with_thread_session<T>(f: impl FnOnce(&mut Session) -> Result<T>) -> Result<T> {
    THREAD_SESSION.with(|cell| {
        let mut slot = cell
            .try_borrow_mut()
            .map_err(|_| Error::new(Status::Invalid, "dco called re-entrantly on this thread"))?;
        if slot.is_none() {
            *slot = Some(Session::new(SessionConfig::from_env()?));
        }
        super::on_session(&mut slot, f)
            .unwrap_or_else(|| Err(Error::new(Status::Panic, "thread session missing")))
    })
}

/// Runs `f` on the session behind `s`, or fails with DCO_E_INVALID if it is NULL.
fn with_handle<T>(s: *mut dco_session, f: impl FnOnce(&mut Session) -> Result<T>) -> Result<T> {
    // SAFETY: a non-NULL `s` was returned by dco_session_new and not yet freed (the header's
    // contract), and the caller does not use it from two threads at once, so this is the only
    // reference to it for the duration of the call.
    match unsafe { super::try_mut(s) } {
        Some(h) => super::on_session(&mut h.inner, f).unwrap_or_else(|| {
            Err(Error::new(
                Status::Panic,
                "this session was dropped after an internal error; free it and make a new one",
            ))
        }),
        None => Err(Error::new(Status::Invalid, "session is NULL")),
    }
}

fn timeout(ms: i32) -> Option<Duration> {
    (ms >= 0).then(|| Duration::from_millis(ms as u64))
}

/// Builds a slice from a C pointer and length, refusing NULL with a non-zero length.
///
/// # Safety
/// When `ptr` is not NULL it must point to `len` readable bytes that stay valid and unchanged
/// for the returned lifetime.
unsafe fn input<'a>(ptr: *const u8, len: usize, limit: usize) -> Result<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Error::new(Status::Invalid, "data is NULL but len is not 0"));
    }
    if len > limit {
        return Err(Error::new(
            Status::TooLarge,
            format!("{len} bytes is over the body limit of {limit} bytes"),
        ));
    }
    // SAFETY: non-NULL, `len` readable bytes per this function's contract, and `len` is within
    // the frame limit, far below isize::MAX.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Builds a mutable slice for an output buffer; NULL is allowed only with `cap` 0.
///
/// # Safety
/// When `buf` is not NULL it must point to `cap` writable bytes valid for the returned lifetime.
unsafe fn output<'a>(buf: *mut u8, cap: usize) -> Result<&'a mut [u8]> {
    if cap == 0 {
        return Ok(&mut []);
    }
    if buf.is_null() {
        return Err(Error::new(Status::Invalid, "buf is NULL but cap is not 0"));
    }
    if cap > isize::MAX as usize {
        return Err(Error::new(
            Status::Invalid,
            "cap is larger than any buffer can be",
        ));
    }
    // SAFETY: non-NULL and `cap` writable bytes per this function's contract.
    Ok(unsafe { std::slice::from_raw_parts_mut(buf, cap) })
}

fn op_write(s: &mut Session, data: *const u8, len: usize) -> Result<()> {
    let limit = s.body_limit();
    // SAFETY: the C caller promises `data` points to `len` readable bytes (dco_write contract).
    let bytes = unsafe { input(data, len, limit)? };
    s.write(bytes)
}

fn op_line(s: &mut Session, text: *const c_char) -> Result<()> {
    if text.is_null() {
        return Err(Error::new(Status::Invalid, "text is NULL"));
    }
    // SAFETY: non-NULL, and the C caller promises a NUL-terminated string (dco_line contract).
    let bytes = unsafe { CStr::from_ptr(text) }.to_bytes();
    s.line_bytes(bytes)
}

fn op_send(s: &mut Session, proxy: i32, flags: i32) -> Result<u64> {
    if flags & !(DCO_BUFFERED | DCO_ONEWAY) != 0 {
        return Err(Error::new(
            Status::Invalid,
            format!("unknown flags {flags:#x}"),
        ));
    }
    s.send(proxy, flags & DCO_BUFFERED != 0, flags & DCO_ONEWAY != 0)
}

/// A service name from C: NULL or not UTF-8 is DCO_E_INVALID (the session checks the rest).
///
/// # Safety
/// `service`, if not NULL, must point to a NUL-terminated string (the C contract).
unsafe fn service_name<'a>(service: *const c_char) -> Result<&'a str> {
    if service.is_null() {
        return Err(Error::new(Status::Invalid, "the service name is NULL"));
    }
    // SAFETY: the C caller promises a NUL-terminated string (dco_send_request_to contract).
    unsafe { CStr::from_ptr(service) }
        .to_str()
        .map_err(|_| Error::new(Status::Invalid, "the service name is not UTF-8"))
}

fn op_send_to(s: &mut Session, service: *const c_char, flags: i32) -> Result<u64> {
    if flags & !(DCO_BUFFERED | DCO_ONEWAY) != 0 {
        return Err(Error::new(
            Status::Invalid,
            format!("unknown flags {flags:#x}"),
        ));
    }
    // SAFETY: see service_name.
    let name = unsafe { service_name(service)? };
    s.send_to(name, flags & DCO_BUFFERED != 0, flags & DCO_ONEWAY != 0)
}

fn op_read(s: &mut Session, id: i64, timeout_ms: i32, buf: *mut u8, cap: usize) -> Result<usize> {
    // SAFETY: the C caller promises `buf` has `cap` writable bytes (dco_read_request contract).
    let out = unsafe { output(buf, cap)? };
    if id <= 0 {
        return Err(Error::new(
            Status::UnknownId,
            format!("request id {id} was never issued"),
        ));
    }
    let r = s.read_into(id as u64, timeout(timeout_ms), out);
    match &r {
        Ok((_, rc)) => set_last_rcode(*rc),
        Err(e) => set_last_rcode(e.rcode),
    }
    r.map(|(n, _)| n)
}

fn op_call(
    s: &mut Session,
    to: Result<To<'_>>,
    flags: i32,
    timeout_ms: i32,
    buf: *mut u8,
    cap: usize,
) -> Result<usize> {
    if flags & !DCO_QUEUE_ON_TIMEOUT != 0 {
        return Err(Error::new(
            Status::Invalid,
            format!("unknown flags {flags:#x} (only DCO_QUEUE_ON_TIMEOUT)"),
        ));
    }
    let call_flags = if flags & DCO_QUEUE_ON_TIMEOUT != 0 {
        CallFlags::QUEUE_ON_TIMEOUT
    } else {
        CallFlags::NONE
    };
    // SAFETY: the C caller promises `buf` has `cap` writable bytes (dco_call_sync contract).
    let out = unsafe { output(buf, cap)? };
    let r = match to? {
        To::Proxy(proxy) => s.call_into_with(proxy, call_flags, timeout(timeout_ms), out),
        To::Service(name) => s.call_service_into(name, call_flags, timeout(timeout_ms), out),
    };
    match &r {
        Ok((_, _, rc)) => set_last_rcode(*rc),
        Err(e) => set_last_rcode(e.rcode),
    }
    r.map(|(_, n, _)| n)
}

/// Where a call from C goes.
enum To<'a> {
    Proxy(i32),
    Service(&'a str),
}

fn len_code(n: usize) -> i64 {
    n.min(i64::MAX as usize) as i64
}

/// Appends `len` bytes at `data` to the body being built on this thread's session.
///
/// Returns DCO_OK; DCO_E_INVALID if `data` is NULL while `len` > 0; DCO_E_TOO_LARGE if the body
/// would grow over the hub's frame limit (nothing is appended). `data` is copied; the caller
/// keeps ownership. `len` 0 does nothing.
#[no_mangle]
pub extern "C" fn dco_write(data: *const u8, len: usize) -> c_int {
    boundary(|| to_code(with_thread_session(|s| op_write(s, data, len)), |_| 0) as c_int)
}

/// Appends the NUL-terminated `text` and a newline to the body being built on this thread's
/// session. Returns DCO_OK, DCO_E_INVALID if `text` is NULL, or DCO_E_TOO_LARGE.
#[no_mangle]
pub extern "C" fn dco_line(text: *const c_char) -> c_int {
    boundary(|| to_code(with_thread_session(|s| op_line(s, text)), |_| 0) as c_int)
}

/// Finishes the body and sends it to `proxy_id` on this thread's session.
///
/// `flags`: 0 sends now; DCO_BUFFERED keeps the request in the session until dco_flush (or
/// until its reply is read); DCO_ONEWAY asks for no reply (an id is returned all the same, but
/// reading it gives DCO_E_UNKNOWN_ID). Returns the request id (> 0), or: DCO_E_INVALID (negative
/// proxy id, unknown flag), DCO_E_BUSY (quota of outstanding requests reached),
/// DCO_E_NOT_CONNECTED (no hub reachable: the request is not taken), DCO_E_REFUSED. On error
/// the body is kept, so the call can be retried. Once taken, a request is kept by the session
/// until the hub acknowledges it (journaled), and sent again after a reconnect to the same or
/// the next hub; the hub never runs a resent request twice. A proxy id the hub does not know
/// gives DCO_E_NO_ROUTE when the reply is read; a known proxy with no worker now waits for one.
#[no_mangle]
pub extern "C" fn dco_send_request(proxy_id: i32, flags: i32) -> i64 {
    boundary(|| {
        to_code(with_thread_session(|s| op_send(s, proxy_id, flags)), |id| {
            id as i64
        })
    })
}

/// Finishes the body and sends it to the service `service` on this thread's session: the hub
/// resolves the name through its routes (`[[route]]` in its configuration) when it accepts
/// the request, and journals the proxy it found, so a later change of the route does not move
/// the request. `flags` and the outcomes are those of dco_send_request; a service the hub has
/// no route for gives DCO_E_NO_ROUTE when the reply is read. DCO_E_INVALID: `service` NULL,
/// empty, over 255 bytes, or not printable ASCII without spaces.
#[no_mangle]
pub extern "C" fn dco_send_request_to(service: *const c_char, flags: i32) -> i64 {
    boundary(|| {
        to_code(
            with_thread_session(|s| op_send_to(s, service, flags)),
            |id| id as i64,
        )
    })
}

/// Sends every buffered request of this thread's session in one write and returns once the hub
/// has accepted them all (journaled as durably as its policy says). Returns DCO_OK (also when
/// nothing was waiting), DCO_E_NOT_CONNECTED (no hub reachable: the requests stay in the
/// session and go with the next flush or read), or DCO_E_TIMEOUT (no acknowledgement within
/// 10 s, or the connect timeout if longer: the requests are kept and sent again). Either way nothing is lost or run twice.
#[no_mangle]
pub extern "C" fn dco_flush() -> c_int {
    boundary(|| to_code(with_thread_session(|s| s.flush()), |_| 0) as c_int)
}

/// Waits up to `timeout_ms` for the reply of `request_id` and copies it into `buf`.
///
/// `timeout_ms` < 0 waits without limit; 0 only looks. Returns the reply's full length (>= 0),
/// snprintf-style: if it is larger than `cap`, `cap` bytes are copied and the reply stays in
/// the session, so a second read with a big enough buffer gets it whole; a reply read whole is
/// released. Replies may be read in any order. `buf` may be NULL when `cap` is 0 (to learn the
/// length). A lost connection is made again with backoff (the same hub, else the next of the
/// list) until the timeout, so a read rides through a hub restart. Errors: DCO_E_TIMEOUT, and
/// DCO_E_NOT_CONNECTED (no hub reachable until the timeout), leave the request outstanding:
/// read again later. DCO_E_UNKNOWN_ID, DCO_E_INVALID. The request's own outcome, which
/// releases it: DCO_E_APP_FAIL (see dco_last_rcode), DCO_E_NO_ROUTE, DCO_E_BUSY (the hub
/// refused it: over quota or journal full), DCO_E_TIMEOUT with words from the hub (its
/// deadline passed at the hub: "expired in the queue", or delivered and not answered in
/// time), DCO_E_CANCELLED (cancelled with dco_cancel), DCO_E_SYSTEM (attempts used up, with
/// the last cause; or accepted by a hub that is no longer reachable). `buf` stays the
/// caller's.
#[no_mangle]
pub extern "C" fn dco_read_request(
    request_id: i64,
    timeout_ms: i32,
    buf: *mut u8,
    cap: usize,
) -> i64 {
    boundary(|| {
        to_code(
            with_thread_session(|s| op_read(s, request_id, timeout_ms, buf, cap)),
            len_code,
        )
    })
}

/// Sends the body built so far to `proxy_id` now and waits up to `timeout_ms` for its reply,
/// copied into `buf` as dco_read_request does: dco_call(proxy_id, 0, timeout_ms, buf, cap).
#[no_mangle]
pub extern "C" fn dco_call_sync(proxy_id: i32, timeout_ms: i32, buf: *mut u8, cap: usize) -> i64 {
    boundary(|| {
        to_code(
            with_thread_session(|s| op_call(s, Ok(To::Proxy(proxy_id)), 0, timeout_ms, buf, cap)),
            len_code,
        )
    })
}

/// Sends the body built so far to `proxy_id` now and waits up to `timeout_ms` (< 0: without
/// limit) for its reply, copied into `buf` as dco_read_request does. When the reply is larger
/// than `cap`, read it whole with dco_read_request(dco_last_request_id(), ...).
///
/// `flags` 0: the proxy's default mode, set on the hub (sync unless configured otherwise). In
/// sync mode the timeout is a deadline the hub keeps too: on DCO_E_TIMEOUT the request is
/// cancelled, the hub never delivers it after its deadline and drops a late answer.
/// DCO_QUEUE_ON_TIMEOUT (or a proxy whose default is queue-on-timeout): on timeout the call
/// returns DCO_E_QUEUED, the request goes on, and its answer is parked for
/// dco_read_request(dco_last_request_id(), ...), across reconnects and hub restarts. A proxy
/// whose default is async returns DCO_E_QUEUED as soon as the hub has the request.
///
/// The call rides through hub restarts: while the hub is unreachable it reconnects with backoff
/// (to the same hub or the next of the list) until the timeout; DCO_E_NOT_CONNECTED only if no
/// hub was reachable by then. Other errors as dco_send_request and dco_read_request;
/// DCO_E_INVALID for an unknown flag.
#[no_mangle]
pub extern "C" fn dco_call(
    proxy_id: i32,
    flags: i32,
    timeout_ms: i32,
    buf: *mut u8,
    cap: usize,
) -> i64 {
    boundary(|| {
        to_code(
            with_thread_session(|s| {
                op_call(s, Ok(To::Proxy(proxy_id)), flags, timeout_ms, buf, cap)
            }),
            len_code,
        )
    })
}

/// dco_call to the service `service` (see dco_send_request_to): the hub picks the proxy from
/// its routes; DCO_E_NO_ROUTE if it has none for `service`. Otherwise as dco_call.
#[no_mangle]
pub extern "C" fn dco_call_service(
    service: *const c_char,
    flags: i32,
    timeout_ms: i32,
    buf: *mut u8,
    cap: usize,
) -> i64 {
    boundary(|| {
        to_code(
            with_thread_session(|s| {
                // SAFETY: see service_name.
                let to = unsafe { service_name(service) }.map(To::Service);
                op_call(s, to, flags, timeout_ms, buf, cap)
            }),
            len_code,
        )
    })
}

/// The id of the last request sent on this thread's session (by dco_send_request or
/// dco_call_sync), or 0 if none (DCO_E_PANIC after an internal error, like every function
/// returning a number).
#[no_mangle]
pub extern "C" fn dco_last_request_id() -> i64 {
    boundary(|| with_thread_session(|s| Ok(s.last_request_id() as i64)).unwrap_or(0))
}

/// Cancels `request_id`. Not yet delivered to a worker, the hub removes it for good
/// (journaled: a hub restart does not revive it); held by a worker, the worker is told and its
/// answer is dropped; an answer already here is dropped. Reading the id afterwards gives
/// DCO_E_CANCELLED (once). Returns DCO_OK or DCO_E_UNKNOWN_ID.
#[no_mangle]
pub extern "C" fn dco_cancel(request_id: i64) -> c_int {
    boundary(|| {
        to_code(
            with_thread_session(|s| s.cancel(request_id.max(0) as u64)),
            |_| 0,
        ) as c_int
    })
}

/// Connects this thread's session now (it otherwise connects on first send). Returns DCO_OK,
/// DCO_E_NOT_CONNECTED, DCO_E_REFUSED or DCO_E_INVALID (bad DCO_HUB).
#[no_mangle]
pub extern "C" fn dco_connect() -> c_int {
    boundary(|| to_code(with_thread_session(|s| s.connect()), |_| 0) as c_int)
}

/// Closes this thread's session: the hub is told which replies were read, outstanding requests
/// are dropped (their answers expire at the hub), buffered ones discarded. The next call starts
/// a new session (and reads DCO_HUB again). Always returns DCO_OK.
#[no_mangle]
pub extern "C" fn dco_close() -> c_int {
    boundary(|| {
        THREAD_SESSION.with(|cell| {
            if let Ok(mut slot) = cell.try_borrow_mut() {
                if let Some(mut s) = slot.take() {
                    s.close();
                }
            }
        });
        super::clear_last_error();
        0
    })
}

/// Creates a session for the comma-separated hub list `hubs` (`host:port` or `unix:/path`), or
/// for DCO_HUB when `hubs` is NULL. It connects on first use.
///
/// Returns the session, to be freed with dco_session_free, or NULL with dco_last_error set
/// (DCO_E_INVALID: a malformed hub list).
#[no_mangle]
pub extern "C" fn dco_session_new(hubs: *const c_char) -> *mut dco_session {
    boundary(|| {
        let cfg = if hubs.is_null() {
            SessionConfig::from_env()
        } else {
            // SAFETY: non-NULL, and the caller promises a NUL-terminated string.
            let text = unsafe { CStr::from_ptr(hubs) }.to_string_lossy();
            HubAddr::parse_list(&text)
                .map(SessionConfig::with_hubs)
                .map_err(|e| Error::new(Status::Invalid, e))
        };
        match cfg {
            Ok(cfg) => {
                super::clear_last_error();
                Box::into_raw(Box::new(dco_session {
                    inner: Some(Session::new(cfg)),
                }))
            }
            Err(e) => {
                super::set_last_error(&e);
                std::ptr::null_mut()
            }
        }
    })
}

/// Closes and frees a session made by dco_session_new. NULL does nothing. Outstanding replies
/// are discarded. The pointer must not be used afterwards.
#[no_mangle]
pub extern "C" fn dco_session_free(session: *mut dco_session) {
    boundary(|| {
        if !session.is_null() {
            // SAFETY: non-NULL, made by Box::into_raw in dco_session_new and not yet freed (the
            // contract above); ownership comes back here exactly once.
            drop(unsafe { Box::from_raw(session) });
        }
    })
}

/// dco_write on an explicit session. DCO_E_INVALID if `session` is NULL.
#[no_mangle]
pub extern "C" fn dco_session_write(
    session: *mut dco_session,
    data: *const u8,
    len: usize,
) -> c_int {
    boundary(|| to_code(with_handle(session, |s| op_write(s, data, len)), |_| 0) as c_int)
}

/// dco_line on an explicit session. DCO_E_INVALID if `session` is NULL.
#[no_mangle]
pub extern "C" fn dco_session_line(session: *mut dco_session, text: *const c_char) -> c_int {
    boundary(|| to_code(with_handle(session, |s| op_line(s, text)), |_| 0) as c_int)
}

/// dco_send_request on an explicit session. DCO_E_INVALID if `session` is NULL.
#[no_mangle]
pub extern "C" fn dco_session_send_request(
    session: *mut dco_session,
    proxy_id: i32,
    flags: i32,
) -> i64 {
    boundary(|| {
        to_code(
            with_handle(session, |s| op_send(s, proxy_id, flags)),
            |id| id as i64,
        )
    })
}

/// dco_flush on an explicit session. DCO_E_INVALID if `session` is NULL.
#[no_mangle]
pub extern "C" fn dco_session_flush(session: *mut dco_session) -> c_int {
    boundary(|| to_code(with_handle(session, |s| s.flush()), |_| 0) as c_int)
}

/// dco_read_request on an explicit session. DCO_E_INVALID if `session` is NULL.
#[no_mangle]
pub extern "C" fn dco_session_read_request(
    session: *mut dco_session,
    request_id: i64,
    timeout_ms: i32,
    buf: *mut u8,
    cap: usize,
) -> i64 {
    boundary(|| {
        to_code(
            with_handle(session, |s| op_read(s, request_id, timeout_ms, buf, cap)),
            len_code,
        )
    })
}

/// dco_call_sync on an explicit session. DCO_E_INVALID if `session` is NULL.
#[no_mangle]
pub extern "C" fn dco_session_call_sync(
    session: *mut dco_session,
    proxy_id: i32,
    timeout_ms: i32,
    buf: *mut u8,
    cap: usize,
) -> i64 {
    boundary(|| {
        to_code(
            with_handle(session, |s| {
                op_call(s, Ok(To::Proxy(proxy_id)), 0, timeout_ms, buf, cap)
            }),
            len_code,
        )
    })
}

/// dco_call on an explicit session. DCO_E_INVALID if `session` is NULL.
#[no_mangle]
pub extern "C" fn dco_session_call(
    session: *mut dco_session,
    proxy_id: i32,
    flags: i32,
    timeout_ms: i32,
    buf: *mut u8,
    cap: usize,
) -> i64 {
    boundary(|| {
        to_code(
            with_handle(session, |s| {
                op_call(s, Ok(To::Proxy(proxy_id)), flags, timeout_ms, buf, cap)
            }),
            len_code,
        )
    })
}

/// dco_last_request_id on an explicit session; 0 if `session` is NULL or sent nothing yet.
#[no_mangle]
pub extern "C" fn dco_session_last_request_id(session: *mut dco_session) -> i64 {
    boundary(|| with_handle(session, |s| Ok(s.last_request_id() as i64)).unwrap_or(0))
}

/// dco_cancel on an explicit session. DCO_E_INVALID if `session` is NULL.
#[no_mangle]
pub extern "C" fn dco_session_cancel(session: *mut dco_session, request_id: i64) -> c_int {
    boundary(|| {
        to_code(
            with_handle(session, |s| s.cancel(request_id.max(0) as u64)),
            |_| 0,
        ) as c_int
    })
}
