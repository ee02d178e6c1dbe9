//! A blocking frame connection to a hub, shared by the caller library and the worker side.
//!
//! It owns the socket (TCP or Unix), an input buffer that frames are decoded from in place, and
//! an output buffer that frames are encoded into and written in one call. Read deadlines are
//! kept with `SO_RCVTIMEO`, set only when the wanted timeout moves far from the current one, so
//! a loop of calls with the same timeout costs no extra system call.

use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::{decode, Frame, WireError};

/// Where a hub listens: `host:port` or `unix:/path/to/socket`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HubAddr {
    /// A TCP address, as written (resolved at connect time).
    Tcp(String),
    /// A Unix socket path.
    Unix(String),
}

impl HubAddr {
    /// Parses one address. `unix:` prefixes a socket path; anything else must be `host:port`.
    pub fn parse(s: &str) -> Result<HubAddr, String> {
        let s = s.trim();
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("empty unix socket path".into());
            }
            return Ok(HubAddr::Unix(path.to_string()));
        }
        match s.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                Ok(HubAddr::Tcp(s.to_string()))
            }
            _ => Err(format!("'{s}' is neither host:port nor unix:/path")),
        }
    }

    /// Parses a comma-separated failover list such as `DCO_HUB`.
    pub fn parse_list(s: &str) -> Result<Vec<HubAddr>, String> {
        let list: Vec<HubAddr> = s
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(HubAddr::parse)
            .collect::<Result<_, _>>()?;
        if list.is_empty() {
            return Err("empty hub list".into());
        }
        Ok(list)
    }
}

impl std::fmt::Display for HubAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HubAddr::Tcp(a) => f.write_str(a),
            HubAddr::Unix(p) => write!(f, "unix:{p}"),
        }
    }
}

/// The default hub address when neither `--hub` nor `DCO_HUB` says otherwise.
pub const DEFAULT_HUB: &str = "127.0.0.1:7790";

/// The hub list from `DCO_HUB`, or the default.
pub fn hubs_from_env() -> Result<Vec<HubAddr>, String> {
    match std::env::var("DCO_HUB") {
        Ok(v) if !v.trim().is_empty() => HubAddr::parse_list(&v),
        _ => HubAddr::parse_list(DEFAULT_HUB),
    }
}

/// A connection's socket.
pub(crate) enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// Why a connection stopped being usable.
#[derive(Debug)]
pub enum ConnError {
    /// The socket failed or the peer closed it.
    Io(io::Error),
    /// The peer sent bytes that are not a valid frame.
    Wire(WireError),
}

impl std::fmt::Display for ConnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnError::Io(e) => write!(f, "{e}"),
            ConnError::Wire(e) => write!(f, "{e}"),
        }
    }
}

impl From<io::Error> for ConnError {
    fn from(e: io::Error) -> Self {
        ConnError::Io(e)
    }
}

/// A blocking, buffered frame connection.
pub struct Conn {
    stream: Stream,
    inbuf: Vec<u8>,
    /// Start of unread bytes in `inbuf`.
    start: usize,
    /// Encoded frames waiting to be written.
    pub out: Vec<u8>,
    /// Largest frame payload accepted from the peer.
    pub max_frame: u32,
    read_timeout: Option<Duration>,
    /// When bytes last arrived.
    pub last_rx: Instant,
    /// Most unread input `flush` takes in while its write waits (None: no limit; a caller's
    /// hub stops reading it until it reads, so a caller must not limit itself).
    pub read_ahead_limit: Option<usize>,
}

const READ_CHUNK: usize = 64 * 1024;

/// How long `flush` waits for a peer that neither takes nor sends a byte.
const FLUSH_STALL: Duration = Duration::from_secs(60);

impl Conn {
    /// Connects to `addr`, waiting at most `timeout`. TCP connections get `TCP_NODELAY` and
    /// kernel keep-alive, so a silently dropped link is noticed even when idle.
    pub fn connect(addr: &HubAddr, timeout: Duration) -> io::Result<Conn> {
        let stream = match addr {
            HubAddr::Tcp(a) => {
                let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
                let mut found = None;
                for sa in a.to_socket_addrs()? {
                    match TcpStream::connect_timeout(&sa, timeout) {
                        Ok(s) => {
                            found = Some(s);
                            break;
                        }
                        Err(e) => last = e,
                    }
                }
                let s = found.ok_or(last)?;
                s.set_nodelay(true)?;
                crate::sys::set_keepalive(s.as_raw_fd(), 10);
                Stream::Tcp(s)
            }
            HubAddr::Unix(p) => Stream::Unix(UnixStream::connect(p)?),
        };
        Ok(Conn {
            stream,
            inbuf: Vec::with_capacity(READ_CHUNK),
            start: 0,
            out: Vec::with_capacity(READ_CHUNK),
            max_frame: super::DEFAULT_MAX_FRAME,
            read_timeout: None,
            last_rx: Instant::now(),
            read_ahead_limit: None,
        })
    }

    /// The socket and the input read but not yet consumed, for a caller that goes on with the
    /// connection in another way (the asynchronous worker loop).
    pub(crate) fn into_parts(mut self) -> (Stream, Vec<u8>) {
        self.inbuf.drain(..self.start);
        (self.stream, self.inbuf)
    }

    fn fd(&self) -> i32 {
        match &self.stream {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }

    /// Writes everything in `out` and empties it. While the peer takes no more bytes, what it
    /// sends meanwhile is read into the input buffer (not decoded): a hub that stops reading
    /// a peer until that peer reads its output (it does, above 8 MiB) must never find the peer
    /// stuck in a write. Fails if the peer neither takes nor sends a byte for a minute.
    pub fn flush(&mut self) -> io::Result<()> {
        let mut at = 0;
        let r = loop {
            if at == self.out.len() {
                break Ok(());
            }
            // MSG_NOSIGNAL: a hub that went away must give an error, never a SIGPIPE that
            // would kill the C program (or Oracle's extproc agent) we are loaded in.
            match crate::sys::send_nowait(self.fd(), &self.out[at..]) {
                Ok(n) => at += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Read ahead only up to the limit, if any (a worker's: the hub always
                    // reads a worker, so a worker need not read to be read).
                    let unread = self.inbuf.len() - self.start;
                    let read_ok = self.read_ahead_limit.is_none_or(|l| unread < l);
                    match crate::sys::poll_rw(self.fd(), read_ok, FLUSH_STALL) {
                        Ok((false, false)) => {
                            break Err(io::Error::new(
                                io::ErrorKind::TimedOut,
                                "the hub took nothing and sent nothing for a minute",
                            ))
                        }
                        Ok((true, _)) => {
                            // Read what is there now, without waiting.
                            if let Err(e) = self.fill(Some(Instant::now())) {
                                break Err(e);
                            }
                        }
                        Ok(_) => {}
                        Err(e) => break Err(e),
                    }
                }
                Err(e) => break Err(e),
            }
        };
        self.out.clear();
        r
    }

    /// Whether a whole frame (or bytes that can never become one) is already in the input
    /// buffer, so decoding can go on without reading.
    pub fn has_frame(&self) -> bool {
        !matches!(self.next_frame(), Ok(None))
    }

    /// Decodes the next whole frame already read, if any. The frame borrows the input buffer;
    /// call [`Conn::consume`] with its length once done with it.
    pub fn next_frame(&self) -> Result<Option<(Frame<'_>, usize)>, WireError> {
        decode(&self.inbuf[self.start..], self.max_frame)
    }

    /// The input read and not yet consumed (whole frames and the start of the next).
    pub fn pending_input(&self) -> &[u8] {
        &self.inbuf[self.start..]
    }

    /// Marks `n` bytes of input as used.
    pub fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.inbuf.len() {
            self.inbuf.clear();
            self.start = 0;
        }
    }

    /// Reads more bytes, waiting until `deadline` (None: without limit). Returns `Ok(false)` when
    /// the deadline passed with nothing read; an error when the peer closed or the socket failed.
    pub fn fill(&mut self, deadline: Option<Instant>) -> io::Result<bool> {
        if self.start > 0 && self.start * 2 >= self.inbuf.len() {
            self.inbuf.drain(..self.start);
            self.start = 0;
        }
        match self.read_until(deadline) {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the hub closed the connection",
            )),
            Ok(_) => {
                self.last_rx = Instant::now();
                Ok(true)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Like [`Conn::fill`], but also returns when `wake` becomes readable (another thread has
    /// something for the caller): `Ok((read, woke))`. Does not drain `wake`.
    pub fn fill_or_wake(
        &mut self,
        deadline: Option<Instant>,
        wake: std::os::fd::RawFd,
    ) -> io::Result<(bool, bool)> {
        if self.start > 0 && self.start * 2 >= self.inbuf.len() {
            self.inbuf.drain(..self.start);
            self.start = 0;
        }
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let (readable, woke) = crate::sys::poll_in2(self.fd(), wake, timeout)?;
        if !readable {
            return Ok((false, woke));
        }
        let fd = self.fd();
        match crate::sys::recv_append(fd, &mut self.inbuf, READ_CHUNK, libc::MSG_DONTWAIT) {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the hub closed the connection",
            )),
            Ok(_) => {
                self.last_rx = Instant::now();
                Ok((true, woke))
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                Ok((false, woke))
            }
            Err(e) => Err(e),
        }
    }

    /// Appends what arrives before `deadline` to the input buffer (a blocking `recv` bounded by
    /// `SO_RCVTIMEO`; a deadline already passed only looks).
    fn read_until(&mut self, deadline: Option<Instant>) -> io::Result<usize> {
        let fd = self.fd();
        loop {
            let remaining = match deadline {
                None => None,
                Some(d) => {
                    let now = Instant::now();
                    if d <= now {
                        return crate::sys::recv_append(
                            fd,
                            &mut self.inbuf,
                            READ_CHUNK,
                            libc::MSG_DONTWAIT,
                        );
                    }
                    Some(d - now)
                }
            };
            self.set_timeout(remaining)?;
            match crate::sys::recv_append(fd, &mut self.inbuf, READ_CHUNK, 0) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    match deadline {
                        Some(d) if Instant::now() < d => continue,
                        _ => return Err(e),
                    }
                }
                other => return other,
            }
        }
    }

    /// Keeps `SO_RCVTIMEO` close to `want` without a system call on every read: the socket's
    /// timeout may be shorter than `want` (the read loop goes round again) but never longer.
    fn set_timeout(&mut self, want: Option<Duration>) -> io::Result<()> {
        let ok = match (self.read_timeout, want) {
            (None, None) => true,
            (Some(cur), Some(w)) => cur <= w && cur * 4 >= w,
            _ => false,
        };
        if ok {
            return Ok(());
        }
        let t = want.map(|w| {
            if w < Duration::from_millis(2) {
                w.max(Duration::from_micros(1))
            } else {
                w / 2
            }
        });
        match &self.stream {
            Stream::Tcp(s) => s.set_read_timeout(t)?,
            Stream::Unix(s) => s.set_read_timeout(t)?,
        }
        self.read_timeout = t;
        Ok(())
    }

    /// Waits for the next frame until `deadline` and hands it to `f`. Returns `Ok(None)` when the
    /// deadline passed first.
    pub fn with_next_frame<T>(
        &mut self,
        deadline: Option<Instant>,
        f: impl FnOnce(Frame<'_>) -> T,
    ) -> Result<Option<T>, ConnError> {
        loop {
            match self.next_frame() {
                Err(e) => return Err(ConnError::Wire(e)),
                Ok(Some((frame, n))) => {
                    let out = f(frame);
                    self.consume(n);
                    return Ok(Some(out));
                }
                Ok(None) => {
                    if !self.fill(deadline)? {
                        return Ok(None);
                    }
                }
            }
        }
    }
}
