//! The worker loop for a [`Service`] that runs on a single-threaded tokio runtime of its own
//! (see [`Service::runtime`]): the connection is read and written by a task of that runtime, so
//! a delivery, the request's task and its answer all stay on one thread.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::serve::{drained, encode_answer, start_frame, CancelOnDrop, STOP_POLL};
use super::service::{Response, Service, Sink, Tag};
use crate::status::{Error, Result, Status};
use crate::wire::{self, Conn, Stream};

/// Serves one connection (greeted already) until `stop`, as the blocking loop does.
pub(super) async fn serve(
    conn: Conn,
    keepalive: Duration,
    service: &dyn Service,
    stop: &AtomicBool,
    drain: Duration,
) -> Result<()> {
    let max_frame = conn.max_frame;
    let (stream, inbuf) = conn.into_parts();
    let sys = |e: std::io::Error| Error::new(Status::NotConnected, e.to_string());
    match stream {
        Stream::Tcp(s) => {
            s.set_nonblocking(true).map_err(sys)?;
            let s = tokio::net::TcpStream::from_std(s).map_err(sys)?;
            run(s, inbuf, max_frame, keepalive, service, stop, drain).await
        }
        Stream::Unix(s) => {
            s.set_nonblocking(true).map_err(sys)?;
            let s = tokio::net::UnixStream::from_std(s).map_err(sys)?;
            run(s, inbuf, max_frame, keepalive, service, stop, drain).await
        }
    }
}

async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    mut sock: S,
    mut inbuf: Vec<u8>,
    max_frame: u32,
    keepalive: Duration,
    service: &dyn Service,
    stop: &AtomicBool,
    drain: Duration,
) -> Result<()> {
    let lost = |msg: String| Error::new(Status::NotConnected, msg);
    let max_body = (max_frame.saturating_sub(64) as usize).saturating_sub(16);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Tag, Response)>();
    let sink = || Sink::Channel(tx.clone());
    let mut guard = CancelOnDrop(HashMap::new());
    let inflight = &mut guard.0;
    let mut out: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut stopping: Option<Instant> = None;
    let mut last_rx = Instant::now();
    loop {
        // Whole frames read so far.
        let mut used = 0;
        loop {
            match wire::decode(&inbuf[used..], max_frame) {
                Err(e) => {
                    return Err(Error::new(
                        Status::Protocol,
                        format!("bad frame from the hub: {e}"),
                    ))
                }
                Ok(None) => break,
                Ok(Some((frame, n))) => {
                    let accept = stopping.is_none();
                    start_frame(frame, &mut out, service, &sink, inflight, accept)?;
                    used += n;
                }
            }
        }
        inbuf.drain(..used);
        // Answers ready now, all in one write.
        while let Ok((tag, r)) = rx.try_recv() {
            encode_answer(&mut out, inflight, tag, r, max_body);
        }
        if !out.is_empty() {
            sock.write_all(&out)
                .await
                .map_err(|e| lost(e.to_string()))?;
            out.clear();
        }
        if drained(&mut stopping, stop, drain, inflight.len()) {
            return Ok(());
        }
        let dead_at = last_rx + keepalive * 3;
        let now = Instant::now();
        if now >= dead_at {
            return Err(lost(
                "the hub stopped answering (keep-alive expired)".into(),
            ));
        }
        let wake = tokio::time::Instant::from_std((now + STOP_POLL).min(dead_at));
        inbuf.reserve(64 * 1024);
        tokio::select! {
            r = sock.read_buf(&mut inbuf) => match r {
                Ok(0) => return Err(lost("the hub closed the connection".into())),
                Ok(_) => last_rx = Instant::now(),
                Err(e) => return Err(lost(e.to_string())),
            },
            Some((tag, r)) = rx.recv() => encode_answer(&mut out, inflight, tag, r, max_body),
            () = tokio::time::sleep_until(wake) => {}
        }
    }
}
