//! The MPC device (`spu_config`): two-party SEMI2K over `Z_2^64` / `Z_2^128` with products computed between
//! the parties (OT, and RLWE for plaintext-matrix and long elementwise products), so no single party can
//! decrypt anything (SPU's default "trusted first party" is available only as an explicitly insecure option).
//! See docs/SECURITY.md for what each task reveals.

mod backend;
pub mod cost;
mod dealer;
pub mod engine;
mod he;
mod he_mul;
pub mod local;
mod millionaire;
mod modular;
mod nonlinear;
mod peer;
mod plain;
mod rlwe;
mod slots;
mod triples;

pub use crate::ring::Ring;
pub use engine::Mpc;
pub use rlwe::signed;

#[cfg(test)]
mod tests;
