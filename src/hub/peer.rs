//! One connection to the hub: its socket, its buffers and what kind of peer it is.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::time::Instant;

use mio::event::Source;
use mio::{Interest, Registry, Token};

use crate::journal::Pos;

/// A TCP or Unix stream.
pub enum Stream {
    /// TCP.
    Tcp(mio::net::TcpStream),
    /// Unix socket.
    Unix(mio::net::UnixStream),
}

impl Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }

    fn source(&mut self) -> &mut dyn Source {
        match self {
            Stream::Tcp(s) => s,
            Stream::Unix(s) => s,
        }
    }
}

/// A caller connection's state (the session's own state lives in `sessions`).
pub struct Caller {
    /// Session id from HELLO.
    pub session: u64,
    /// Requests accepted on this connection and not yet acknowledged: (journal position,
    /// request id), oldest first. Released once the journal is durable past the position.
    pub unacked: VecDeque<(Pos, u64)>,
    /// Highest request id released for acknowledgement.
    pub ack_upto: u64,
    /// Highest request id acknowledged on the wire.
    pub ack_sent: u64,
    /// The caller asked (with a PING) to be acknowledged as soon as possible.
    pub ack_wanted: bool,
    /// Highest request id received on this connection: ids must rise on a connection (a
    /// resend after a reconnect starts a new connection).
    pub last_id: u64,
}

/// A worker's state.
pub struct Worker {
    /// Proxy ids it serves.
    pub proxies: Vec<i32>,
    /// Most deliveries it takes at once.
    pub capacity: u32,
    /// Deliveries handed out and not yet answered.
    pub inflight: u32,
    /// Counters.
    pub delivered: u64,
    /// Results received.
    pub results: u64,
    /// Results that were failures.
    pub failures: u64,
}

/// What a connection turned out to be.
pub enum Role {
    /// HELLO not received yet.
    Greeting,
    /// See [`Caller`].
    Caller(Caller),
    /// See [`Worker`].
    Worker(Worker),
    /// Reads statistics.
    Monitor,
}

/// One connection.
pub struct Peer {
    /// Unique id of this connection for the hub's life (tokens are reused, ids are not).
    pub id: u64,
    /// The socket.
    pub stream: Stream,
    /// Where it came from, for logs and statistics.
    pub addr: String,
    /// Name from HELLO.
    pub name: String,
    /// The role.
    pub role: Role,
    /// Bytes read and not yet decoded.
    pub inbuf: Vec<u8>,
    /// Encoded frames not yet written; `out_pos` bytes of it are already written.
    pub out: Vec<u8>,
    /// See `out`.
    pub out_pos: usize,
    /// Whether WRITABLE interest is registered (the kernel buffer was full).
    pub want_write: bool,
    /// Whether it is already in the hub's list of connections to write.
    pub dirty: bool,
    /// Close once `out` is written (after a REFUSE).
    pub closing: bool,
    /// Not read until its output drains (it does not read what the hub writes).
    pub paused: bool,
    /// When bytes last arrived.
    pub last_rx: Instant,
    /// When bytes were last queued for it.
    pub last_tx: Instant,
    /// When it connected.
    pub since: Instant,
}

/// Bytes asked of the kernel per read.
const READ_CHUNK: usize = 64 * 1024;

/// What a read found.
pub enum ReadOutcome {
    /// A full chunk was read; decode it and read again.
    Data,
    /// A short read: decode it; the socket is probably drained.
    Drained,
    /// Nothing to read now.
    Empty,
    /// The peer closed its side.
    Closed,
}

impl Peer {
    /// A new connection in the greeting state.
    pub fn new(id: u64, stream: Stream, addr: String) -> Peer {
        let now = Instant::now();
        Peer {
            id,
            stream,
            addr,
            name: String::new(),
            role: Role::Greeting,
            inbuf: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            want_write: false,
            dirty: false,
            closing: false,
            paused: false,
            last_rx: now,
            last_tx: now,
            since: now,
        }
    }

    /// Registers the socket for readability.
    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(self.stream.source(), token, Interest::READABLE)
    }

    /// Removes the socket from the poll set.
    pub fn deregister(&mut self, registry: &Registry) {
        let _ = registry.deregister(self.stream.source());
    }

    /// Reads one chunk into `inbuf`, growing it by at most [`READ_CHUNK`].
    pub fn read_some(&mut self) -> io::Result<ReadOutcome> {
        let fd = self.stream.raw_fd();
        loop {
            match crate::sys::recv_append(fd, &mut self.inbuf, READ_CHUNK, 0) {
                Ok(0) => return Ok(ReadOutcome::Closed),
                Ok(n) => {
                    self.last_rx = Instant::now();
                    // A short read drained the socket (stream sockets, see epoll(7)): the next
                    // bytes raise a new edge, so there is no need to read until WouldBlock.
                    return Ok(if n < READ_CHUNK {
                        ReadOutcome::Drained
                    } else {
                        ReadOutcome::Data
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(ReadOutcome::Empty),
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes as much of `out` as the kernel takes. Returns `Ok(true)` when all is written,
    /// `Ok(false)` when the kernel buffer is full (wait for WRITABLE).
    pub fn write_out(&mut self) -> io::Result<bool> {
        while self.out_pos < self.out.len() {
            match self.stream.write(&self.out[self.out_pos..]) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "wrote nothing")),
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.out_pos > 0 && self.out_pos * 2 >= self.out.len() {
                        self.out.drain(..self.out_pos);
                        self.out_pos = 0;
                    }
                    return Ok(false);
                }
                Err(e) => return Err(e),
            }
        }
        self.out.clear();
        self.out_pos = 0;
        if self.out.capacity() > 4 * 1024 * 1024 {
            self.out.shrink_to(READ_CHUNK);
        }
        Ok(true)
    }

    /// Changes interest between READABLE and READABLE|WRITABLE.
    pub fn set_want_write(&mut self, registry: &Registry, token: Token, on: bool) {
        if self.want_write == on {
            return;
        }
        let interest = if on {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        if registry
            .reregister(self.stream.source(), token, interest)
            .is_ok()
        {
            self.want_write = on;
        }
    }

    /// Bytes queued and not yet written.
    pub fn pending_out(&self) -> usize {
        self.out.len() - self.out_pos
    }

    /// Short description for logs.
    pub fn describe(&self) -> String {
        let kind = match self.role {
            Role::Greeting => "peer",
            Role::Caller(_) => "caller",
            Role::Worker(_) => "worker",
            Role::Monitor => "monitor",
        };
        if self.name.is_empty() {
            format!("{kind} {}", self.addr)
        } else {
            format!("{kind} {} ({})", self.name, self.addr)
        }
    }
}
