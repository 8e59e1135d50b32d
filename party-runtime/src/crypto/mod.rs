//! Cryptographic building blocks that run between two parties over a [`crate::context::PartyContext`]: base OT,
//! SoftSpokenOT extension with arithmetic (Gilboa) OT, the KKRT batched OPRF, the AES PRG and the bit-matrix
//! transpose they need, punctured GGM trees (all-but-one OT of seeds), and the batched Curve25519 arithmetic of ECDH-PSI. One protocol per file, each citing its paper; nothing here knows the MPC device.

pub mod base_ot;
pub mod bits;
pub mod kkrt;
pub mod ot;
pub mod prg;
pub mod punctured;
pub mod softspoken;
pub mod x25519;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::error::{Error, Result};

/// A ChaCha20 generator seeded from the operating system; protocol randomness comes only from here.
pub fn os_rng() -> Result<ChaCha20Rng> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| Error::Internal(format!("no OS randomness: {e}")))?;
    Ok(ChaCha20Rng::from_seed(seed))
}
