//! The caller side: a session that builds request bodies, sends them to a hub and reads the
//! replies back by request id.
//!
//! A [`Session`] is one connection to one hub of a failover list, made lazily on first use.
//! It multiplexes any number of outstanding requests: replies are parked in the session as
//! they arrive, in any order, until read. The C ABI (`crate::ffi`) and the extproc face are
//! thin layers over this type.

pub mod monitor;
mod session;

pub use session::{CallFlags, Reply, Session, SessionConfig, DEFAULT_QUOTA};
