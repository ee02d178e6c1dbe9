//! A monitor connection: asks a hub for its statistics document, or to move the requests
//! waiting for one proxy to another.

use std::time::{Duration, Instant};

use crate::status::{Error, Result, Status};
use crate::wire::{self, Conn, Frame, HubAddr, Role};

/// Fetches the statistics JSON from the first hub of `hubs` that answers.
pub fn fetch_stats(hubs: &[HubAddr], timeout: Duration) -> Result<String> {
    let mut errors = Vec::new();
    for addr in hubs {
        match fetch_one(addr, timeout) {
            Ok(json) => return Ok(json),
            Err(e) => errors.push(format!("{addr}: {}", e.message)),
        }
    }
    Err(Error::new(
        Status::NotConnected,
        format!("no hub answered ({})", errors.join("; ")),
    ))
}

fn fetch_one(addr: &HubAddr, timeout: Duration) -> Result<String> {
    let secret = std::env::var("DCO_SECRET").unwrap_or_default();
    fetch_one_as(addr, secret.as_bytes(), timeout)
}

/// The statistics document of the hub at `addr`, presenting `secret`.
pub fn fetch_stats_as(addr: &HubAddr, secret: &[u8], timeout: Duration) -> Result<String> {
    fetch_one_as(addr, secret, timeout)
}

/// Asks the first hub of `hubs` that answers to move the requests waiting for proxy `from` to
/// proxy `to` (journaled); returns how many moved. The hub's refusal (an unknown proxy, a full
/// journal) is `Invalid` with its words.
pub fn reroute(hubs: &[HubAddr], from: i32, to: i32, timeout: Duration) -> Result<u64> {
    let secret = std::env::var("DCO_SECRET").unwrap_or_default();
    let mut errors = Vec::new();
    for addr in hubs {
        match ask(addr, secret.as_bytes(), timeout, |out| {
            wire::encode_reroute(out, from, to)
        }) {
            Ok(json) => {
                let doc: serde_json::Value = serde_json::from_str(&json)
                    .map_err(|e| Error::new(Status::Protocol, format!("the hub's answer: {e}")))?;
                if let Some(n) = doc["rerouted"].as_u64() {
                    return Ok(n);
                }
                let why = doc["error"].as_str().unwrap_or("no reason given");
                return Err(Error::new(Status::Invalid, why.to_string()));
            }
            Err(e) => errors.push(format!("{addr}: {}", e.message)),
        }
    }
    Err(Error::new(
        Status::NotConnected,
        format!("no hub answered ({})", errors.join("; ")),
    ))
}

fn fetch_one_as(addr: &HubAddr, secret: &[u8], timeout: Duration) -> Result<String> {
    ask(addr, secret, timeout, wire::encode_stats_request)
}

/// Connects to `addr` as a monitor, sends what `request` encodes, and returns the JSON of the
/// STATS frame that answers it.
fn ask(
    addr: &HubAddr,
    secret: &[u8],
    timeout: Duration,
    request: impl Fn(&mut Vec<u8>),
) -> Result<String> {
    let io = |e: std::io::Error| Error::new(Status::NotConnected, e.to_string());
    let mut conn = Conn::connect(addr, timeout).map_err(io)?;
    wire::encode_hello(
        &mut conn.out,
        Role::Monitor,
        crate::sys::random_u64(),
        0,
        b"monitor",
        secret,
        &[],
    );
    request(&mut conn.out);
    conn.flush().map_err(io)?;
    let deadline = Instant::now() + timeout;
    loop {
        let step = conn
            .with_next_frame(Some(deadline), |f| match f {
                Frame::Welcome(_) | Frame::Ping { .. } | Frame::Pong { .. } => Ok(None),
                Frame::Stats { json } => Ok(Some(String::from_utf8_lossy(json).into_owned())),
                Frame::Refuse { code, message } => Err(Error::new(
                    Status::from_code(code),
                    String::from_utf8_lossy(message).into_owned(),
                )),
                other => Err(Error::new(
                    Status::Protocol,
                    format!("unexpected frame {other:?}"),
                )),
            })
            .map_err(|e| Error::new(Status::NotConnected, e.to_string()))?;
        match step {
            None => return Err(Error::new(Status::Timeout, "no statistics in time")),
            Some(Ok(Some(json))) => return Ok(json),
            Some(Ok(None)) => {}
            Some(Err(e)) => return Err(e),
        }
    }
}
