//! Binding the hub's listening sockets.

use std::io;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use super::HubConfig;

/// The hub's bound, listening sockets.
pub struct Listeners {
    /// TCP listener, if configured.
    pub tcp: Option<mio::net::TcpListener>,
    /// Unix listener and its path, if configured.
    pub unix: Option<(mio::net::UnixListener, PathBuf)>,
}

impl Listeners {
    /// Binds what `cfg` asks for. The TCP socket is bound with `SO_REUSEADDR`, so a restarted hub
    /// gets its port back at once. A Unix socket file left by a dead hub is removed; one that
    /// a live hub still answers on is an error.
    pub fn bind(cfg: &HubConfig) -> io::Result<Listeners> {
        let tcp =
            match &cfg.listen {
                None => None,
                Some(a) => {
                    let addr = std::net::ToSocketAddrs::to_socket_addrs(a.as_str())?
                        .next()
                        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address"))?;
                    Some(mio::net::TcpListener::bind(addr).map_err(|e| {
                        io::Error::new(e.kind(), format!("cannot listen on {a}: {e}"))
                    })?)
                }
            };
        let unix = match &cfg.unix {
            None => None,
            Some(p) => {
                if let Some(dir) = p.parent() {
                    if !dir.as_os_str().is_empty() {
                        std::fs::create_dir_all(dir)?;
                    }
                }
                remove_stale_socket(p)?;
                let l = mio::net::UnixListener::bind(p).map_err(|e| {
                    io::Error::new(e.kind(), format!("cannot listen on {}: {e}", p.display()))
                })?;
                Some((l, p.clone()))
            }
        };
        if tcp.is_none() && unix.is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "neither a TCP address nor a Unix socket to listen on",
            ));
        }
        Ok(Listeners { tcp, unix })
    }

    /// The TCP address actually bound (useful with port 0).
    pub fn tcp_addr(&self) -> Option<std::net::SocketAddr> {
        self.tcp.as_ref().and_then(|l| l.local_addr().ok())
    }
}

fn remove_stale_socket(p: &Path) -> io::Result<()> {
    if !p.exists() {
        return Ok(());
    }
    match UnixStream::connect(p) {
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("a hub is already listening on {}", p.display()),
        )),
        Err(_) => std::fs::remove_file(p),
    }
}
