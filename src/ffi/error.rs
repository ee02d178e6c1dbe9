//! Result codes and this thread's last error.

use std::cell::{Cell, RefCell};
use std::ffi::{c_char, CString};

use crate::status::{Error, Status};

// DCO_OK and the DCO_E_* codes, one per `Status` variant with its documentation, written by
// build.rs from src/status.rs (which also puts them in include/dco.h): the list exists once.
include!(concat!(env!("OUT_DIR"), "/status_codes.rs"));

/// Flag for dco_send_request: keep the request in the session until dco_flush.
pub const DCO_BUFFERED: i32 = 1;
/// Flag for dco_send_request: no reply is wanted.
pub const DCO_ONEWAY: i32 = 2;
/// Flag for dco_call: on timeout return DCO_E_QUEUED and park the answer (queue-on-timeout).
pub const DCO_QUEUE_ON_TIMEOUT: i32 = 4;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
    static LAST_RCODE: Cell<i32> = const { Cell::new(0) };
}

pub(crate) fn set_last_error(e: &Error) {
    let text = format!("{}: {}", e.status.name(), e.message).replace('\0', " ");
    LAST_ERROR.with(|l| *l.borrow_mut() = CString::new(text).unwrap_or_default());
    LAST_RCODE.with(|r| r.set(e.rcode));
}

pub(crate) fn clear_last_error() {
    LAST_ERROR.with(|l| {
        let mut l = l.borrow_mut();
        if !l.as_bytes().is_empty() {
            *l = CString::default();
        }
    });
}

pub(crate) fn set_last_rcode(rc: i32) {
    LAST_RCODE.with(|r| r.set(rc));
}

/// This thread's last failure, in words ("DCO_E_TIMEOUT: no reply to request 7 within ...").
///
/// Returns an empty string when the last call on this thread succeeded; never NULL. The text is
/// owned by the library and stays valid until the next dco call on the same thread. Thread-safe:
/// each thread has its own.
#[no_mangle]
pub extern "C" fn dco_last_error() -> *const c_char {
    super::boundary_or(c"internal error".as_ptr(), || {
        LAST_ERROR.with(|l| l.borrow().as_ptr())
    })
}

/// The worker's return code for the last reply read on this thread: set by dco_read_request
/// and dco_call_sync on success (usually 0) and on DCO_E_APP_FAIL (the application's code).
#[no_mangle]
pub extern "C" fn dco_last_rcode() -> i32 {
    super::boundary_or(0, || LAST_RCODE.with(|r| r.get()))
}

/// The name of a result code ("DCO_E_TIMEOUT"), as a static string; "DCO_E_UNKNOWN" for a
/// number that is not a dco code. Never NULL; never to be freed.
#[no_mangle]
pub extern "C" fn dco_result_name(code: i32) -> *const c_char {
    super::boundary_or(c"DCO_E_UNKNOWN".as_ptr(), || {
        match Status::ALL.iter().find(|s| s.code() == code) {
            Some(s) => static_cstr(s.name()),
            None => c"DCO_E_UNKNOWN".as_ptr(),
        }
    })
}

/// A one-line description of a result code, as a static string. Never NULL; never to be freed.
#[no_mangle]
pub extern "C" fn dco_result_str(code: i32) -> *const c_char {
    super::boundary_or(c"unknown result code".as_ptr(), || {
        match Status::ALL.iter().find(|s| s.code() == code) {
            Some(s) => static_cstr(s.describe()),
            None => c"unknown result code".as_ptr(),
        }
    })
}

/// NUL-terminated copies of the static names and descriptions, made once.
fn static_cstr(s: &'static str) -> *const c_char {
    use once_cell::sync::Lazy;
    use std::collections::HashMap;
    static TABLE: Lazy<HashMap<&'static str, CString>> = Lazy::new(|| {
        Status::ALL
            .iter()
            .flat_map(|s| [s.name(), s.describe()])
            .map(|t| (t, CString::new(t).unwrap_or_default()))
            .collect()
    });
    TABLE.get(s).map(|c| c.as_ptr()).unwrap_or(c"".as_ptr())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_match_the_status_codes() {
        let pairs = [
            (DCO_OK, Status::Ok),
            (DCO_E_INVALID, Status::Invalid),
            (DCO_E_TIMEOUT, Status::Timeout),
            (DCO_E_NO_ROUTE, Status::NoRoute),
            (DCO_E_NOT_CONNECTED, Status::NotConnected),
            (DCO_E_BUSY, Status::Busy),
            (DCO_E_UNKNOWN_ID, Status::UnknownId),
            (DCO_E_TOO_LARGE, Status::TooLarge),
            (DCO_E_APP_FAIL, Status::AppFail),
            (DCO_E_SYSTEM, Status::System),
            (DCO_E_CANCELLED, Status::Cancelled),
            (DCO_E_REFUSED, Status::Refused),
            (DCO_E_PROTOCOL, Status::Protocol),
            (DCO_E_PANIC, Status::Panic),
            (DCO_E_QUEUED, Status::Queued),
            (DCO_E_RETRY, Status::Retry),
        ];
        assert_eq!(pairs.len(), Status::ALL.len());
        for (c, s) in pairs {
            assert_eq!(c, s.code());
            // SAFETY: dco_result_name returns a static NUL-terminated string.
            let name = unsafe { std::ffi::CStr::from_ptr(dco_result_name(c)) };
            assert_eq!(name.to_str().unwrap(), s.name());
        }
    }
}
