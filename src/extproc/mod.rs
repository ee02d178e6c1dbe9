//! The extproc face: entry points for Oracle's external procedure agent (extproc), called from
//! the PL/SQL package `dco` (plsql/dco_extproc.pkb) through `LANGUAGE C` call specifications.
//!
//! Each function's C signature matches its call spec exactly (`WITH CONTEXT`, then the
//! `PARAMETERS` list): RAW as `unsigned char *` plus `LENGTH` (`int`, by reference when OUT)
//! and `MAXLEN` (`int *`), indicators as `short`, VARCHAR2 as a NUL-terminated `char *`.
//!
//! Facts that shape them:
//! - One extproc process serves one database session for its whole life (the dedicated agent),
//!   so the session lives in this library between calls: one per process here.
//! - Errors become PL/SQL exceptions ORA-201nn (nn = the DCO_E_* number without its sign, e.g.
//!   ORA-20102 for DCO_E_TIMEOUT), raised with `OCIExtProcRaiseExcpWithMsg`, which Oracle's
//!   client library exports as `ociepmsg`. It is looked up with `dlsym` at call time, never
//!   linked, so the library loads and works where Oracle is absent (then the functions just
//!   return the negative DCO_E_* code).
//! - RAW parameters carry at most 32767 bytes: a longer reply is read in chunks
//!   (`dco_ext_read_chunk`) and assembled into a BLOB in PL/SQL.
//! - A crash here kills the session's extproc (ORA-28576): every body runs inside the same
//!   panic boundary as the C ABI, and sockets never raise SIGPIPE.

// The entry points take raw pointers from extproc and dereference them under the contract their
// call specs state (checked for NULL first); marking them `unsafe fn` would change nothing for
// their only callers, Oracle's agent and C.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use std::ffi::{c_char, c_int, c_short, c_void, CStr};
use std::time::Duration;

use once_cell::sync::Lazy;
use parking_lot::Mutex;

use crate::client::{CallFlags, Session, SessionConfig};
use crate::ffi::{boundary, boundary_or, set_last_error, DCO_BUFFERED, DCO_ONEWAY};
use crate::status::{Error, Result, Status};

/// Oracle's context for an external procedure call (opaque; declared the same way by Oracle's
/// ociextp.h, so both headers can be included together).
pub struct OCIExtProcContext {
    _private: [u8; 0],
}

/// Indicator value of a NULL argument or result (`OCI_IND_NULL`).
pub const DCO_EXT_IND_NULL: i16 = -1;
/// Indicator value of a non-NULL argument or result (`OCI_IND_NOTNULL`).
pub const DCO_EXT_IND_NOTNULL: i16 = 0;
/// PL/SQL error numbers are this base less the DCO_E_* code: ORA-20102 is DCO_E_TIMEOUT.
pub const DCO_EXT_ERROR_BASE: i32 = 20100;

/// The most bytes a PL/SQL VARCHAR2, and so a `RETURN STRING`, holds.
const VARCHAR2_MAX: usize = 32767;

/// The process's session (one extproc process per database session).
static SESSION: Lazy<Mutex<Option<Session>>> = Lazy::new(|| Mutex::new(None));

type RaiseFn = unsafe extern "C" fn(*mut OCIExtProcContext, c_int, *const c_char, usize) -> c_int;
type AllocFn = unsafe extern "C" fn(*mut OCIExtProcContext, usize) -> *mut c_void;

/// Looks `name` up among the symbols already loaded in the process (Oracle's client library in
/// a real extproc agent, the harness in tests); None where Oracle is absent.
fn lookup(name: &CStr) -> Option<*mut c_void> {
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only reads the loaded symbol
    // tables; a NULL result means absent.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!p.is_null()).then_some(p)
}

/// Raises `e` as ORA-(20100 - code) in the calling PL/SQL, if running under extproc.
fn raise(ctx: *mut OCIExtProcContext, e: &Error) {
    set_last_error(e);
    let Some(sym) = lookup(c"ociepmsg") else {
        return;
    };
    if ctx.is_null() {
        return;
    }
    // SAFETY: `ociepmsg` has the documented signature of OCIExtProcRaiseExcpWithMsg.
    let raise: RaiseFn = unsafe { std::mem::transmute::<*mut c_void, RaiseFn>(sym) };
    let mut msg = format!("{}: {}", e.status.name(), e.message).replace('\0', " ");
    // Oracle keeps at most 512 bytes of an error message.
    if msg.len() > 500 {
        let mut cut = 500;
        while !msg.is_char_boundary(cut) {
            cut -= 1;
        }
        msg.truncate(cut);
    }
    let code = DCO_EXT_ERROR_BASE - e.status.code();
    // SAFETY: `ctx` is the context extproc passed to this call; the message is valid for the
    // call and its length is given.
    unsafe {
        raise(ctx, code, msg.as_ptr() as *const c_char, msg.len());
    }
}

/// Runs `f` on the process's session (made from DCO_HUB on first use); on error raises it and
/// returns the negative code.
fn with_session(ctx: *mut OCIExtProcContext, f: impl FnOnce(&mut Session) -> Result<i64>) -> c_int {
    let mut slot = SESSION.lock();
    let r = (|| {
        if slot.is_none() {
            *slot = Some(Session::new(SessionConfig::from_env()?));
        }
        // A panic in `f` drops the session (see on_session): the next call makes a new one.
        crate::ffi::on_session(&mut slot, f)
            .unwrap_or_else(|| Err(Error::new(Status::Panic, "session missing")))
    })();
    drop(slot);
    match r {
        Ok(v) => {
            crate::ffi::clear_last_error();
            v.clamp(i32::MIN as i64, i32::MAX as i64) as c_int
        }
        Err(e) => {
            raise(ctx, &e);
            e.status.code()
        }
    }
}

fn invalid(what: &str) -> Error {
    Error::new(Status::Invalid, what.to_string())
}

fn timeout(ms: c_int) -> Option<Duration> {
    (ms >= 0).then(|| Duration::from_millis(ms as u64))
}

/// An OUT RAW buffer from extproc's pointer and MAXLEN.
///
/// # Safety
/// `buf` must point to `*maxlen` writable bytes when both are non-NULL (extproc's contract).
unsafe fn out_raw<'a>(buf: *mut u8, maxlen: *const c_int) -> Result<&'a mut [u8]> {
    if buf.is_null() || maxlen.is_null() {
        return Err(invalid("the RAW buffer or its MAXLEN is NULL"));
    }
    // SAFETY: non-NULL per the check; extproc passes MAXLEN by reference.
    let cap = unsafe { *maxlen };
    if cap < 0 {
        return Err(invalid("negative MAXLEN"));
    }
    // SAFETY: `buf` has `cap` writable bytes (extproc's contract, restated above).
    Ok(unsafe { std::slice::from_raw_parts_mut(buf, cap as usize) })
}

/// Sets a RAW OUT parameter's LENGTH and INDICATOR (an empty RAW is NULL in Oracle).
///
/// # Safety
/// Non-NULL pointers must be writable (extproc's contract).
unsafe fn set_out(len: *mut c_int, ind: *mut c_short, n: usize) {
    if !len.is_null() {
        // SAFETY: writable per the contract.
        unsafe { *len = n as c_int };
    }
    if !ind.is_null() {
        // SAFETY: writable per the contract.
        unsafe {
            *ind = if n == 0 {
                DCO_EXT_IND_NULL
            } else {
                DCO_EXT_IND_NOTNULL
            }
        };
    }
}

/// The common end of a read: notes the worker's return code, sets the RAW OUT parameter's
/// LENGTH and INDICATOR for the part copied into a buffer of `cap` bytes, and returns the
/// reply's total length.
///
/// # Safety
/// Non-NULL `len` and `ind` must be writable (extproc's contract).
unsafe fn reply_out(
    r: Result<(usize, i32)>,
    cap: usize,
    len: *mut c_int,
    ind: *mut c_short,
) -> Result<i64> {
    match r {
        Ok((total, rcode)) => {
            crate::ffi::set_last_rcode(rcode);
            // SAFETY: per this function's contract.
            unsafe { set_out(len, ind, total.min(cap)) };
            Ok(total as i64)
        }
        Err(e) => {
            crate::ffi::set_last_rcode(e.rcode);
            Err(e)
        }
    }
}

/// `dco.write(data RAW)`: appends `data` to the body being built.
///
/// Call spec: `PARAMETERS (CONTEXT, data RAW, data LENGTH INT, data INDICATOR SHORT, RETURN INT)`.
/// Returns 0; on failure raises ORA-201nn and returns the negative DCO_E_* code. A NULL RAW
/// appends nothing.
#[no_mangle]
pub extern "C" fn dco_ext_write(
    ctx: *mut OCIExtProcContext,
    data: *const u8,
    data_len: c_int,
    data_ind: c_short,
) -> c_int {
    boundary(|| {
        with_session(ctx, |s| {
            if data_ind == DCO_EXT_IND_NULL || data_len == 0 {
                return Ok(0);
            }
            if data.is_null() || data_len < 0 {
                return Err(invalid("RAW data is NULL or its length negative"));
            }
            // SAFETY: extproc passes `data_len` readable bytes at `data`.
            let bytes = unsafe { std::slice::from_raw_parts(data, data_len as usize) };
            s.write(bytes).map(|_| 0)
        })
    })
}

/// `dco.line(text VARCHAR2)`: appends `text` and a newline.
///
/// Call spec: `PARAMETERS (CONTEXT, text STRING, text INDICATOR SHORT, RETURN INT)`.
/// A NULL text appends just the newline. Returns 0, or raises and returns the negative code.
#[no_mangle]
pub extern "C" fn dco_ext_line(
    ctx: *mut OCIExtProcContext,
    text: *const c_char,
    text_ind: c_short,
) -> c_int {
    boundary(|| {
        with_session(ctx, |s| {
            if text_ind == DCO_EXT_IND_NULL || text.is_null() {
                return s.line_bytes(b"").map(|_| 0);
            }
            // SAFETY: extproc passes STRING as a NUL-terminated C string.
            let bytes = unsafe { CStr::from_ptr(text) }.to_bytes();
            s.line_bytes(bytes).map(|_| 0)
        })
    })
}

/// `dco.send_request(proxy_id, buffered)`: finishes the body and sends it (flags as
/// dco_send_request: 1 buffered, 2 one-way). Returns the request id (> 0).
///
/// Call spec: `PARAMETERS (CONTEXT, proxy_id INT, flags INT, RETURN INT)`.
#[no_mangle]
pub extern "C" fn dco_ext_send_request(
    ctx: *mut OCIExtProcContext,
    proxy_id: c_int,
    flags: c_int,
) -> c_int {
    boundary(|| {
        with_session(ctx, |s| {
            if flags & !(DCO_BUFFERED | DCO_ONEWAY) != 0 {
                return Err(invalid("unknown flags"));
            }
            // Checked before sending: a request PL/SQL cannot name must not go out.
            if s.last_request_id() >= i32::MAX as u64 {
                return Err(Error::new(
                    Status::Invalid,
                    "request ids of this session no longer fit PL/SQL: close the session",
                ));
            }
            let id = s.send(proxy_id, flags & DCO_BUFFERED != 0, flags & DCO_ONEWAY != 0)?;
            Ok(id as i64)
        })
    })
}

/// A service name passed as STRING with its INDICATOR: NULL, not UTF-8 or not a valid name
/// raises DCO_E_INVALID (the session checks the name itself).
///
/// # Safety
/// `service`, unless NULL or its indicator says NULL, is a NUL-terminated string (extproc).
unsafe fn service_arg<'a>(service: *const c_char, ind: c_short) -> Result<&'a str> {
    if ind == DCO_EXT_IND_NULL || service.is_null() {
        return Err(invalid("the service name is NULL"));
    }
    // SAFETY: extproc passes STRING as a NUL-terminated C string.
    unsafe { CStr::from_ptr(service) }
        .to_str()
        .map_err(|_| invalid("the service name is not UTF-8"))
}

/// `dco.send_request(service => ...)`: finishes the body and sends it to the proxy the hub
/// routes `service` to (flags as dco_ext_send_request). Returns the request id (> 0); a
/// service without a route raises ORA-20103 (DCO_E_NO_ROUTE) when the reply is read.
///
/// Call spec: `PARAMETERS (CONTEXT, service STRING, service INDICATOR SHORT, flags INT,
/// RETURN INT)`.
#[no_mangle]
pub extern "C" fn dco_ext_send_request_to(
    ctx: *mut OCIExtProcContext,
    service: *const c_char,
    service_ind: c_short,
    flags: c_int,
) -> c_int {
    boundary(|| {
        with_session(ctx, |s| {
            if flags & !(DCO_BUFFERED | DCO_ONEWAY) != 0 {
                return Err(invalid("unknown flags"));
            }
            // SAFETY: see service_arg.
            let name = unsafe { service_arg(service, service_ind)? };
            if s.last_request_id() >= i32::MAX as u64 {
                return Err(Error::new(
                    Status::Invalid,
                    "request ids of this session no longer fit PL/SQL: close the session",
                ));
            }
            let id = s.send_to(name, flags & DCO_BUFFERED != 0, flags & DCO_ONEWAY != 0)?;
            Ok(id as i64)
        })
    })
}

/// `dco.flush`: sends the buffered requests and returns once the hub holds them.
///
/// Call spec: `PARAMETERS (CONTEXT, RETURN INT)`.
#[no_mangle]
pub extern "C" fn dco_ext_flush(ctx: *mut OCIExtProcContext) -> c_int {
    boundary(|| with_session(ctx, |s| s.flush().map(|_| 0)))
}

/// `dco.read_request`: waits up to `timeout_ms` (< 0: without limit) for the reply of
/// `request_id` and copies its first `MAXLEN` bytes into `buf`. Returns the reply's total
/// length; when it is larger than what was copied, read the rest with dco_ext_read_chunk.
///
/// Call spec: `PARAMETERS (CONTEXT, request_id INT, timeout_ms INT, buf RAW, buf LENGTH INT,
/// buf MAXLEN INT, buf INDICATOR SHORT, RETURN INT)`.
#[no_mangle]
pub extern "C" fn dco_ext_read_request(
    ctx: *mut OCIExtProcContext,
    request_id: c_int,
    timeout_ms: c_int,
    buf: *mut u8,
    buf_len: *mut c_int,
    buf_maxlen: *mut c_int,
    buf_ind: *mut c_short,
) -> c_int {
    boundary(|| {
        with_session(ctx, |s| {
            // SAFETY: extproc passes a buffer of MAXLEN bytes.
            let out = unsafe { out_raw(buf, buf_maxlen)? };
            if request_id <= 0 {
                return Err(Error::new(Status::UnknownId, "request id was never issued"));
            }
            let cap = out.len();
            let r = s.read_into(request_id as u64, timeout(timeout_ms), out);
            // SAFETY: extproc passes LENGTH and INDICATOR by reference for OUT parameters.
            unsafe { reply_out(r, cap, buf_len, buf_ind) }
        })
    })
}

/// `dco.read_request`, the rest of a long reply: copies the bytes of the reply of
/// `request_id` from `offset` (0-based) into `buf`, at most MAXLEN. Returns the reply's total
/// length; the reply is released once a chunk reaches its end.
///
/// Call spec: `PARAMETERS (CONTEXT, request_id INT, offset INT, buf RAW, buf LENGTH INT,
/// buf MAXLEN INT, buf INDICATOR SHORT, RETURN INT)`.
#[no_mangle]
pub extern "C" fn dco_ext_read_chunk(
    ctx: *mut OCIExtProcContext,
    request_id: c_int,
    offset: c_int,
    buf: *mut u8,
    buf_len: *mut c_int,
    buf_maxlen: *mut c_int,
    buf_ind: *mut c_short,
) -> c_int {
    boundary(|| {
        with_session(ctx, |s| {
            // SAFETY: extproc passes a buffer of MAXLEN bytes.
            let out = unsafe { out_raw(buf, buf_maxlen)? };
            if request_id <= 0 || offset < 0 {
                return Err(invalid(
                    "the request id must be positive and the offset not negative",
                ));
            }
            let (total, n) = s.read_chunk(request_id as u64, offset as usize, out)?;
            // SAFETY: extproc passes LENGTH and INDICATOR by reference for OUT parameters.
            unsafe { set_out(buf_len, buf_ind, n) };
            Ok(total as i64)
        })
    })
}

/// `dco.call_sync`: sends the body to `proxy_id` now and waits up to `timeout_ms` for the
/// reply, copied as dco_ext_read_request does (the rest of a long reply with
/// dco_ext_read_chunk and dco_ext_last_request_id). Returns the reply's total length.
///
/// Call spec: `PARAMETERS (CONTEXT, proxy_id INT, timeout_ms INT, buf RAW, buf LENGTH INT,
/// buf MAXLEN INT, buf INDICATOR SHORT, RETURN INT)`.
#[no_mangle]
pub extern "C" fn dco_ext_call_sync(
    ctx: *mut OCIExtProcContext,
    proxy_id: c_int,
    timeout_ms: c_int,
    buf: *mut u8,
    buf_len: *mut c_int,
    buf_maxlen: *mut c_int,
    buf_ind: *mut c_short,
) -> c_int {
    boundary(|| {
        with_session(ctx, |s| {
            // SAFETY: extproc passes a buffer of MAXLEN bytes.
            let out = unsafe { out_raw(buf, buf_maxlen)? };
            let cap = out.len();
            let r = s
                .call_into(proxy_id, timeout(timeout_ms), out)
                .map(|(_, n, rc)| (n, rc));
            // SAFETY: extproc passes LENGTH and INDICATOR by reference for OUT parameters.
            unsafe { reply_out(r, cap, buf_len, buf_ind) }
        })
    })
}

/// `dco.call`: sends the body to `proxy_id` now and waits up to `timeout_ms` for the reply,
/// copied as dco_ext_call_sync does (the rest of a long reply with dco_ext_read_chunk and
/// dco_ext_last_request_id); dco_call of the C API. `queue_on_timeout` 1
/// (DCO_QUEUE_ON_TIMEOUT): when the timeout passes the request goes on, the call raises
/// ORA-20114 (DCO_E_QUEUED) and the answer is parked for dco_ext_read_request with
/// dco_ext_last_request_id. 0: the proxy's default mode, as dco_ext_call_sync (sync unless the
/// hub says otherwise: ORA-20102, DCO_E_TIMEOUT, gives the request up). Any other value raises
/// ORA-20101 (DCO_E_INVALID). Rides through hub restarts until the timeout. Returns the
/// reply's total length.
///
/// Call spec: `PARAMETERS (CONTEXT, proxy_id INT, timeout_ms INT, queue_on_timeout INT,
/// buf RAW, buf LENGTH INT, buf MAXLEN INT, buf INDICATOR SHORT, RETURN INT)`.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn dco_ext_call(
    ctx: *mut OCIExtProcContext,
    proxy_id: c_int,
    timeout_ms: c_int,
    queue_on_timeout: c_int,
    buf: *mut u8,
    buf_len: *mut c_int,
    buf_maxlen: *mut c_int,
    buf_ind: *mut c_short,
) -> c_int {
    boundary(|| {
        with_session(ctx, |s| {
            let flags = call_flags(queue_on_timeout)?;
            // SAFETY: extproc passes the OUT RAW as its call spec says.
            unsafe {
                call_into_raw(buf, buf_len, buf_maxlen, buf_ind, |out| {
                    s.call_into_with(proxy_id, flags, timeout(timeout_ms), out)
                })
            }
        })
    })
}

/// `queue_on_timeout` of `dco.call`: 0 (the proxy's default mode) or 1.
fn call_flags(queue_on_timeout: c_int) -> Result<CallFlags> {
    match queue_on_timeout {
        0 => Ok(CallFlags::NONE),
        1 => Ok(CallFlags::QUEUE_ON_TIMEOUT),
        v => Err(invalid(&format!(
            "queue_on_timeout must be 0 or 1, not {v}"
        ))),
    }
}

/// Runs `call` with the OUT RAW `buf` as its reply buffer and reports the outcome as extproc
/// wants it (LENGTH, INDICATOR, the total length or the raised error).
///
/// # Safety
/// `buf` holds `*buf_maxlen` writable bytes, and `buf_len`, `buf_maxlen` and `buf_ind` are the
/// OUT parameters extproc passes by reference (the call specs of dco_ext_call and
/// dco_ext_call_service).
unsafe fn call_into_raw(
    buf: *mut u8,
    buf_len: *mut c_int,
    buf_maxlen: *mut c_int,
    buf_ind: *mut c_short,
    call: impl FnOnce(&mut [u8]) -> Result<(u64, usize, i32)>,
) -> Result<i64> {
    // SAFETY: extproc passes a buffer of MAXLEN bytes.
    let out = unsafe { out_raw(buf, buf_maxlen)? };
    let cap = out.len();
    let r = call(out).map(|(_, n, rc)| (n, rc));
    // SAFETY: extproc passes LENGTH and INDICATOR by reference for OUT parameters.
    unsafe { reply_out(r, cap, buf_len, buf_ind) }
}

/// `dco.call(service => ...)`: as dco_ext_call, to the proxy the hub routes `service` to; a
/// service without a route raises ORA-20103 (DCO_E_NO_ROUTE).
///
/// Call spec: `PARAMETERS (CONTEXT, service STRING, service INDICATOR SHORT, timeout_ms INT,
/// queue_on_timeout INT, buf RAW, buf LENGTH INT, buf MAXLEN INT, buf INDICATOR SHORT,
/// RETURN INT)`.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn dco_ext_call_service(
    ctx: *mut OCIExtProcContext,
    service: *const c_char,
    service_ind: c_short,
    timeout_ms: c_int,
    queue_on_timeout: c_int,
    buf: *mut u8,
    buf_len: *mut c_int,
    buf_maxlen: *mut c_int,
    buf_ind: *mut c_short,
) -> c_int {
    boundary(|| {
        with_session(ctx, |s| {
            let flags = call_flags(queue_on_timeout)?;
            // SAFETY: see service_arg.
            let name = unsafe { service_arg(service, service_ind)? };
            // SAFETY: extproc passes the OUT RAW as its call spec says.
            unsafe {
                call_into_raw(buf, buf_len, buf_maxlen, buf_ind, |out| {
                    s.call_service_into(name, flags, timeout(timeout_ms), out)
                })
            }
        })
    })
}

/// The id of the last request sent in this session, 0 if none.
///
/// Call spec: `PARAMETERS (CONTEXT, RETURN INT)`.
#[no_mangle]
pub extern "C" fn dco_ext_last_request_id(ctx: *mut OCIExtProcContext) -> c_int {
    boundary(|| with_session(ctx, |s| Ok(s.last_request_id() as i64)))
}

/// The worker's return code for the last reply read (see dco_last_rcode).
///
/// Call spec: `PARAMETERS (CONTEXT, RETURN INT)`.
#[no_mangle]
pub extern "C" fn dco_ext_last_rcode(ctx: *mut OCIExtProcContext) -> c_int {
    let _ = ctx;
    boundary_or(0, || crate::ffi::dco_last_rcode())
}

/// Drops interest in `request_id` (its reply is discarded). Returns 0, or raises
/// ORA-20106 (DCO_E_UNKNOWN_ID).
///
/// Call spec: `PARAMETERS (CONTEXT, request_id INT, RETURN INT)`.
#[no_mangle]
pub extern "C" fn dco_ext_cancel(ctx: *mut OCIExtProcContext, request_id: c_int) -> c_int {
    boundary(|| with_session(ctx, |s| s.cancel(request_id.max(0) as u64).map(|_| 0)))
}

/// Ends the session of this extproc process (the next call starts a new one). Returns 0.
///
/// Call spec: `PARAMETERS (CONTEXT, RETURN INT)`.
#[no_mangle]
pub extern "C" fn dco_ext_close(ctx: *mut OCIExtProcContext) -> c_int {
    let _ = ctx;
    boundary(|| {
        if let Some(mut s) = SESSION.lock().take() {
            s.close();
        }
        0
    })
}

/// The last failure in this process, in words, as a string extproc frees after the call
/// (allocated with `OCIExtProcAllocCallMemory`, exported as `ociepacm`), cut to the 32767
/// bytes a PL/SQL VARCHAR2 holds. NULL (with `*ret_ind` = -1) when there was none or Oracle's
/// allocator is absent.
///
/// Call spec: `PARAMETERS (CONTEXT, RETURN INDICATOR SHORT, RETURN STRING)`.
#[no_mangle]
pub extern "C" fn dco_ext_last_error(
    ctx: *mut OCIExtProcContext,
    ret_ind: *mut c_short,
) -> *mut c_char {
    boundary(|| {
        let set_ind = |v: c_short| {
            if !ret_ind.is_null() {
                // SAFETY: extproc passes the return indicator by reference.
                unsafe { *ret_ind = v };
            }
        };
        // SAFETY: dco_last_error returns a valid NUL-terminated string of this thread.
        let mut text = unsafe { CStr::from_ptr(crate::ffi::dco_last_error()) }
            .to_bytes()
            .to_vec();
        // An application failure's text is the worker's reply, of any length: longer than a
        // VARCHAR2, the RETURN STRING would fail in PL/SQL. Cut on a UTF-8 character boundary.
        if text.len() > VARCHAR2_MAX {
            let mut cut = VARCHAR2_MAX;
            while cut > 0 && text[cut] & 0xC0 == 0x80 {
                cut -= 1;
            }
            text.truncate(cut);
        }
        let Some(sym) = lookup(c"ociepacm").filter(|_| !text.is_empty() && !ctx.is_null()) else {
            set_ind(DCO_EXT_IND_NULL);
            return std::ptr::null_mut();
        };
        // SAFETY: `ociepacm` has the documented signature of OCIExtProcAllocCallMemory.
        let alloc: AllocFn = unsafe { std::mem::transmute::<*mut c_void, AllocFn>(sym) };
        // SAFETY: `ctx` is this call's context; the memory is Oracle's, freed after the call.
        let p = unsafe { alloc(ctx, text.len() + 1) } as *mut u8;
        if p.is_null() {
            set_ind(DCO_EXT_IND_NULL);
            return std::ptr::null_mut();
        }
        // SAFETY: `p` has text.len() + 1 writable bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr(), p, text.len());
            *p.add(text.len()) = 0;
        }
        set_ind(DCO_EXT_IND_NOTNULL);
        p as *mut c_char
    })
}
