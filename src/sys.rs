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

/// Receives up to `max` bytes from the socket `fd` and appends them to `buf`, straight into its
/// spare capacity (no zeroing first). `flags` as for recv(2); Ok(0) is the end of the stream.
pub fn recv_append(fd: RawFd, buf: &mut Vec<u8>, max: usize, flags: i32) -> io::Result<usize> {
    buf.reserve(max);
    let spare = buf.spare_capacity_mut();
    let want = spare.len().min(max);
    // SAFETY: `spare` is writable memory owned by `buf`, at least `want` bytes long; recv writes
    // at most `want` bytes into it and `fd` is an open socket owned by the caller.
    let n = unsafe { libc::recv(fd, spare.as_mut_ptr() as *mut libc::c_void, want, flags) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let len = buf.len();
    // SAFETY: recv initialised exactly `n` (<= want <= spare capacity) bytes after `len`.
    unsafe { buf.set_len(len + n as usize) };
    Ok(n as usize)
}

/// Asks the allocator to hand free memory back to the system (glibc keeps freed pages inside
/// its heap otherwise); a no-op elsewhere.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
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

/// Allocates every block of `file` up to `len` bytes (`fallocate`), so that writes through a
/// mapping of it can never fail for lack of space. Returns ENOSPC when the disk is full.
pub fn allocate(file: &std::fs::File, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    loop {
        // SAFETY: the descriptor belongs to `file`, open for writing, for the whole call.
        let r = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len as libc::off_t) };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            // No fallocate on this file system: extend the file and write zeros instead.
            Some(libc::EOPNOTSUPP) => return zero_fill(file, len),
            _ => return Err(e),
        }
    }
}

/// Extends `file` to `len` bytes by writing zeros after its current end (what is there stays).
fn zero_fill(file: &std::fs::File, len: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let zeros = vec![0u8; 1 << 20];
    let mut at = file.metadata()?.len();
    while at < len {
        let n = (len - at).min(zeros.len() as u64) as usize;
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

/// Faults every page of a fresh mapping in, writable, so later writes run at memory speed.
pub fn prefault(map: &mut [u8]) {
    const MADV_POPULATE_WRITE: i32 = 23;
    // SAFETY: `map` is a live mapping we own for the duration of the call; madvise only
    // changes how its pages are backed, not their contents.
    let r = unsafe {
        libc::madvise(
            map.as_mut_ptr() as *mut libc::c_void,
            map.len(),
            MADV_POPULATE_WRITE,
        )
    };
    if r != 0 {
        // Older kernels: touch one byte per page (the file is zero-filled, so writing 0 changes
        // nothing).
        for i in (0..map.len()).step_by(4096) {
            // SAFETY: `i` is in bounds; a volatile write keeps the touch from being optimised out.
            unsafe { std::ptr::write_volatile(map.as_mut_ptr().add(i), 0) };
        }
    }
}

/// Makes the directory entries of `dir` durable (after a create or rename).
pub fn sync_dir(dir: &std::path::Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Takes an exclusive lock on `dir` (a `LOCK` file held with flock) for as long as the returned
/// file is open: one hub per data directory.
pub fn lock_dir(dir: &std::path::Path) -> io::Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("LOCK"))?;
    // SAFETY: the descriptor belongs to `f` for the whole call.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("{} is in use by another hub ({e})", dir.display()),
        ));
    }
    Ok(f)
}

/// Writes what the socket `fd` takes of `buf` now, without waiting (`MSG_DONTWAIT`), and with
/// `MSG_NOSIGNAL`: a closed peer gives EPIPE, not SIGPIPE. WouldBlock when it takes nothing.
pub fn send_nowait(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a valid readable slice for the whole call and `fd` an open socket
    // owned by the caller.
    let n = unsafe {
        libc::send(
            fd,
            buf.as_ptr() as *const libc::c_void,
            buf.len(),
            libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else if n == 0 && !buf.is_empty() {
        Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "the socket took nothing",
        ))
    } else {
        Ok(n as usize)
    }
}

/// Waits up to `timeout` until `fd` is writable, or readable when `read` is set; returns
/// (readable, writable). An error or hang-up counts as both (the next read or write reports it).
pub fn poll_rw(fd: RawFd, read: bool, timeout: std::time::Duration) -> io::Result<(bool, bool)> {
    let mut p = libc::pollfd {
        fd,
        events: if read {
            libc::POLLIN | libc::POLLOUT
        } else {
            libc::POLLOUT
        },
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    loop {
        // SAFETY: `p` is one valid pollfd for the whole call.
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let bad = p.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0;
        return Ok((
            bad || (read && p.revents & libc::POLLIN != 0),
            bad || p.revents & libc::POLLOUT != 0,
        ));
    }
}

/// An eventfd used to wake a thread blocked in [`poll_in2`] from other threads.
pub struct EventFd(std::os::fd::OwnedFd);

impl EventFd {
    /// A new non-blocking, close-on-exec eventfd.
    pub fn new() -> io::Result<EventFd> {
        // SAFETY: eventfd takes no pointers; a non-negative result is a new descriptor we own.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor owned by nobody else.
        Ok(EventFd(unsafe {
            <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd)
        }))
    }

    /// The descriptor, for [`poll_in2`].
    pub fn fd(&self) -> RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.0)
    }

    /// Makes the descriptor readable (wakes the poller). Never blocks; a counter already at
    /// its maximum stays readable, which is all a wake-up needs.
    pub fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our own descriptor.
        unsafe { libc::write(self.fd(), &one as *const u64 as *const libc::c_void, 8) };
    }

    /// Resets the descriptor to not readable.
    pub fn drain(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads at most 8 bytes into a live u64 from our own non-blocking descriptor.
        unsafe { libc::read(self.fd(), &mut v as *mut u64 as *mut libc::c_void, 8) };
    }
}

/// Waits up to `timeout` (None: without limit) until `a` or `b` is readable; returns which.
/// An error or hang-up on a descriptor counts as readable (the next read reports it).
pub fn poll_in2(
    a: RawFd,
    b: RawFd,
    timeout: Option<std::time::Duration>,
) -> io::Result<(bool, bool)> {
    let mut p = [
        libc::pollfd {
            fd: a,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: b,
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    // Round up, so that a wait for 0.4 ms does not spin.
    let ms = match timeout {
        None => -1,
        Some(t) => (t.as_micros().div_ceil(1000)).min(i32::MAX as u128) as i32,
    };
    loop {
        // SAFETY: `p` is an array of two valid pollfds for the whole call.
        let r = unsafe { libc::poll(p.as_mut_ptr(), 2, ms) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let ready = |q: &libc::pollfd| {
            q.revents & (libc::POLLIN | libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0
        };
        return Ok((ready(&p[0]), ready(&p[1])));
    }
}

/// Raises this process's soft limit on open descriptors to its hard limit (a hub serves one
/// descriptor per peer). Returns (old soft limit, new soft limit).
pub fn raise_nofile_limit() -> io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit for getrlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let old = lim.rlim_cur;
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: `lim` is a valid rlimit; raising the soft limit up to the hard one is allowed.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok((old, lim.rlim_cur))
}
