//! The few raw system calls dco makes, each wrapped once with the reason it is sound.

use std::io;
use std::os::fd::RawFd;

/// Turns on kernel TCP keep-alive on `fd`: probes after `idle_s` seconds of silence, every
/// `idle_s / 3` seconds, 3 probes. Also bounds how long unacknowledged data may stay unacked
/// (`TCP_USER_TIMEOUT`), so a peer that vanished is noticed. Failures are ignored: keep-alive
/// is a safety net, not a requirement.
pub fn set_keepalive(fd: RawFd, idle_s: i32) {
    let interval = (idle_s / 3).max(1);
    let set = |level: i32, opt: i32, val: i32| {
        // SAFETY: `fd` is an open socket owned by the caller for the duration of this call, and
        // `val` is a live i32 whose size we pass; setsockopt only reads it.
        unsafe {
            libc::setsockopt(
                fd,
                level,
                opt,
                &val as *const i32 as *const libc::c_void,
                std::mem::size_of::<i32>() as libc::socklen_t,
            );
        }
    };
    set(libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, idle_s);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, interval);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 3);
    set(
        libc::IPPROTO_TCP,
        libc::TCP_USER_TIMEOUT,
        (idle_s + 3 * interval) * 1000,
    );
}

/// Reads what is already there without waiting (`recv` with `MSG_DONTWAIT`).
pub fn recv_nowait(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a valid, writable slice of `buf.len()` bytes for the whole call, and `fd`
    // is an open socket owned by the caller.
    let n = unsafe {
        libc::recv(
            fd,
            buf.as_mut_ptr() as *mut libc::c_void,
            buf.len(),
            libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// A random non-zero 64-bit number from the kernel (for session and hub ids).
pub fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    loop {
        // SAFETY: `b` is a valid writable buffer of 8 bytes for the duration of the call.
        let n = unsafe { libc::getrandom(b.as_mut_ptr() as *mut libc::c_void, 8, 0) };
        if n == 8 {
            let v = u64::from_ne_bytes(b);
            if v != 0 {
                return v;
            }
        } else if n < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            // No getrandom: fall back to time and address entropy; ids need only be unique.
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1);
            return (t ^ (&b as *const _ as u64).rotate_left(32)) | 1;
        }
    }
}
