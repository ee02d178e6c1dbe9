//! The worker side: a process that connects to hubs, announces the proxy ids it serves and
//! answers the requests delivered to it.
//!
//! Workers connect to the hub (never the other way), so they may live behind NAT and restart
//! freely: [`run`] reconnects with backoff until it is told to stop. A handler is any
//! [`Handler`]: a closure in Rust, or a C callback through `crate::ffi`.

mod echo;
mod serve;

pub use echo::Echo;
pub use serve::{run, Delivery, Handler, Outcome, ReplyBuf, WorkerConfig};
