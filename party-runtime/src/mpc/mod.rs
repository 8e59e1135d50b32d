//! The MPC device (`spu_config`), in SPU's layers: the link, a protocol's kernels ([`Kernels`], over typed
//! shares [`Share`] / [`Bits`] that say which components a party holds), and the fixed-point and nonlinear
//! functions written once over the kernels ([`Fixed`]). Tasks and learners sit above (`ml/`, `jobs/`).
//!
//! The backend today is two-party SEMI2K over `Z_2^64` / `Z_2^128` ([`Mpc`], what `protocol: SEMI2K` and
//! `CHEETAH` run) with products computed between the parties (OT, and RLWE for plaintext-matrix and long
//! elementwise products), so no single party can decrypt anything (SPU's default "trusted first party" is
//! available only as an explicitly insecure option). See docs/SECURITY.md for what each task reveals.

pub mod aby3;
mod backend;
mod boolean;
pub mod buckets;
pub mod cost;
mod dealer;
mod device;
pub mod engine;
pub mod fixed;
mod he;
mod he_mul;
pub mod kernels;
pub mod local;
mod millionaire;
mod modular;
mod ntt;
mod peer;
mod plain;
mod rlwe;
pub mod share;
mod slots;
mod triples;
mod two_party;

pub use crate::ring::Ring;
pub use aby3::Aby3;
pub use buckets::Bucketing;
pub use device::Device;
pub use engine::Mpc;
pub use fixed::Fixed;
pub use kernels::Kernels;
#[doc(hidden)]
pub use ntt::bench as ntt_bench;
pub use rlwe::signed;
pub use share::{Bits, Holding, Share};

#[cfg(test)]
pub(crate) mod tests;
