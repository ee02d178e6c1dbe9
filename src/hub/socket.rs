//! The shell's side of one connection: its socket and the bytes read and not yet decoded.
//! What the connection is and what is to be written to it is the core's (`core::Conn`).

use std::io::{self, Write};

use mio::event::Source;
use mio::{Interest, Registry, Token};

use super::core::ConnId;

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

/// One socket.
pub struct Socket {
    /// The core's id of this connection.
    pub id: ConnId,
    /// The stream.
    pub stream: Stream,
    /// Bytes read and not yet decoded.
    pub inbuf: Vec<u8>,
    /// Whether WRITABLE interest is registered (the kernel buffer was full).
    pub want_write: bool,
    /// Not read until its output drains (it does not read what the hub writes).
    pub paused: bool,
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

impl Socket {
    /// A socket for connection `id`.
    pub fn new(id: ConnId, stream: Stream) -> Socket {
        Socket {
            id,
            stream,
            inbuf: Vec::new(),
            want_write: false,
            paused: false,
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
                // A short read drained the socket (stream sockets, see epoll(7)): the next
                // bytes raise a new edge, so there is no need to read until WouldBlock.
                Ok(n) if n < READ_CHUNK => return Ok(ReadOutcome::Drained),
                Ok(_) => return Ok(ReadOutcome::Data),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(ReadOutcome::Empty),
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes as much of `out[*pos..]` as the kernel takes. Returns `Ok(true)` when all is
    /// written (and `out` is cleared), `Ok(false)` when the kernel buffer is full (wait for
    /// WRITABLE).
    pub fn write_out(&mut self, out: &mut Vec<u8>, pos: &mut usize) -> io::Result<bool> {
        while *pos < out.len() {
            match self.stream.write(&out[*pos..]) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "wrote nothing")),
                Ok(n) => *pos += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if *pos > 0 && *pos * 2 >= out.len() {
                        out.drain(..*pos);
                        *pos = 0;
                    }
                    return Ok(false);
                }
                Err(e) => return Err(e),
            }
        }
        out.clear();
        *pos = 0;
        if out.capacity() > 4 * 1024 * 1024 {
            out.shrink_to(READ_CHUNK);
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
}
