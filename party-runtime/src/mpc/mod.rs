//! The MPC device (`spu_config`): two-party SEMI2K over `Z_2^64` / `Z_2^128` with products computed between
//! the parties (OT, and RLWE for plaintext-matrix and long elementwise products), so no single party can
//! decrypt anything (SPU's default "trusted first party" is available only as an explicitly insecure option).
//! See docs/SECURITY.md for what each task reveals.

mod dealer;
pub mod engine;
mod he;
mod he_mul;
mod millionaire;
mod modular;
mod nonlinear;
pub mod ot;
mod plain;
mod prg;
pub mod ring;
mod rlwe;
mod slots;
pub mod softspoken;
mod triples;

pub use engine::Mpc;
pub use ring::Ring;
pub use rlwe::signed;

#[cfg(test)]
mod tests;
