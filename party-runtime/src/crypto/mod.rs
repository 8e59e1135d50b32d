//! Cryptographic building blocks, generic over the party link: base OT, the KKRT batched OPRF and the bit
//! matrix transpose they need. One protocol per file, each citing its paper.

pub mod base_ot;
pub mod bits;
pub mod kkrt;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::error::{Error, Result};

/// A ChaCha20 generator seeded from the operating system; protocol randomness comes only from here.
pub fn os_rng() -> Result<ChaCha20Rng> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| Error::Internal(format!("no OS randomness: {e}")))?;
    Ok(ChaCha20Rng::from_seed(seed))
}
