//! party-runtime: everything one party of a SecretFlow task does.
//!
//! Brief overview: [`data`] reads and writes a party's own files under the path policy, [`jobs`] compute one
//! task type each against a [`context::PartyContext`], [`link`] carries messages between parties, and
//! [`runner`] ties them together for `party-runtime run`, producing the Worker-API execution result.
#![deny(missing_docs)]

pub mod context;
pub mod cpu;
pub mod crypto;
pub mod data;
pub mod error;
pub mod jobs;
pub mod link;
pub mod logging;
pub mod ml;
pub mod mpc;
pub mod numeric;
pub mod progress;
pub mod psi;
pub mod report;
pub mod ring;
pub mod runner;

pub use error::{Error, Result};
pub use runner::{RunOptions, run_request, run_request_with_blame};
