//! The worker side: a process that connects to hubs, announces the proxy ids it serves and
//! answers the requests delivered to it.
//!
//! Workers connect to the hub (never the other way), so they may live behind NAT and restart
//! freely: [`run`] reconnects with backoff until it is told to stop. A handler is any
//! [`Handler`] (one request at a time: a closure in Rust, or a C callback through `crate::ffi`),
//! or a [`Service`] that runs many at once ([`Pool`] makes one of a blocking handler).

mod echo;
mod handler;
pub mod http;
mod pool;
mod serve;
mod serve_async;
mod service;

pub use echo::Echo;
pub use handler::{Delivery, Handler, Outcome, ReplyBuf};
pub use pool::{Pool, PoolHandler};
pub use serve::{run, run_service, WorkerConfig};
pub use service::{CancelSignal, Cancelled, Request, Responder, Response, Service};
