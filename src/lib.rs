//! dco: call-out middleware for Oracle PL/SQL and C programs.
//!
//! A caller (C program, PL/SQL through extproc, or PL/SQL over UTL_TCP) sends requests to a
//! hub; the hub routes each to a worker serving its proxy id and brings the reply back by
//! request id. The rooms, and the direction of the arrows between them:
//!
//! ```text
//! ffi (C ABI), extproc ──> client, worker ──> wire
//! hub ──> journal, wire
//! ```
//!
//! - [`wire`]: frames, byte for byte, and the blocking frame connection;
//! - [`client`]: the caller's session (the six calls);
//! - [`worker`]: serving proxy ids;
//! - [`hub`]: the router;
//! - [`ffi`]: the C ABI over client and worker (include/dco.h);
//! - [`extproc`]: the entry points Oracle's extproc agent calls for the PL/SQL package;
//! - [`journal`]: the hub's mmap-backed, append-only segment files;
//! - [`status`]: the outcomes every layer shares.
#![deny(missing_docs)]

pub mod client;
pub mod extproc;
pub mod ffi;
pub mod hub;
pub mod journal;
pub mod status;
mod sys;
pub mod wire;
pub mod worker;

pub use status::{Error, Result, Status};

/// The README's Rust examples, compiled (and type-checked) as doc-tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
