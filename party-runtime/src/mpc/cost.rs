//! What a plaintext-matrix product costs by each method, estimated from its shape alone, so that each call
//! takes the cheaper one and a small task pays for its size only. Both nodes know every shape, so both reach the
//! same choice without a message.
//!
//! The estimate is seconds on a link of [`LINK_BYTES_PER_SEC`] plus CPU seconds: the bytes sent, and the work
//! of the OT extension and hashing (per OT and per hashed block) or of the lattice products (per residue of
//! each ciphertext sent and returned). The CPU constants come from the device's benchmarks on a 2-core x86-64
//! machine with AVX-512 IFMA (docs/BENCHMARKS.md, SS-LR's linear layers and `examples/requests/ss_lr.json`); a
//! slower link or CPU moves both methods' costs together, so the choice changes only near the break-even.

use super::he::{Tiling, residue_bytes};
use super::rlwe;
use crate::crypto::base_ot::KAPPA;
use crate::crypto::softspoken::K;
use crate::ring::Ring;

/// The link rate the estimate assumes (1 Gbit/s).
pub const LINK_BYTES_PER_SEC: f64 = 125e6;
/// CPU seconds per extended OT (both ends: extension, transpose, correction).
const OT_SECS: f64 = 40e-9;
/// CPU seconds per 128-bit block of Gilboa message hashed (both ends).
const BLOCK_SECS: f64 = 8e-9;
/// CPU seconds per residue of a ciphertext sent or returned on FM64 (sampling, NTTs, products, masking,
/// flooding, modulus switching, packing, decryption); FM128's wide arithmetic takes twice as long.
const RLWE_SECS_PER_RESIDUE: f64 = 60e-9;

/// One node's plaintext `m x p` matrix times a shared `p`-vector.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Rows of the owner's matrix.
    pub m: usize,
    /// Columns of the owner's matrix (the shared vector's length).
    pub p: usize,
}

/// Estimated seconds of an OT (Gilboa) product: `p * choice_bits` OTs, the one for choice bit `t` carrying `m`
/// elements of `out_bits - t` bits (a message is sent in only the bits its use needs).
pub fn ot_secs(s: Shape, choice_bits: u32, out_bits: u32) -> f64 {
    let (c, o) = (choice_bits as f64, out_bits as f64);
    let ots = s.p as f64 * c;
    let message_bits = s.p as f64 * s.m as f64 * (c * o - c * (c - 1.0) / 2.0);
    let bytes = ots * (KAPPA / K) as f64 / 8.0 + message_bits / 8.0;
    let blocks = message_bits / 128.0 + ots;
    bytes / LINK_BYTES_PER_SEC + ots * OT_SECS + blocks * BLOCK_SECS
}

/// Estimated seconds of an RLWE product (the tiling of [`super::he`]): one ciphertext per vector chunk sent,
/// one switched-down ciphertext per row block returned.
pub fn rlwe_secs<R: Ring>(s: Shape) -> f64 {
    let params = rlwe::params::<R>();
    let n = params.n;
    let (chunks, blocks, rows) = Tiling::new::<R>(s.m, s.p).counts();
    let (sent, kept) = (params.limbs() * n, params.returned_limbs() * n);
    let bytes =
        chunks * residue_bytes(sent) + blocks * (residue_bytes(kept) + residue_bytes(params.returned_limbs() * rows));
    let cpu = (chunks * sent + blocks * kept) as f64 * RLWE_SECS_PER_RESIDUE * (R::BITS / 64) as f64;
    bytes as f64 / LINK_BYTES_PER_SEC + cpu
}

/// Whether RLWE is the cheaper method for both nodes' products at once (`shapes[i]` is node `i`'s), against OT
/// whose choosers use `choice_bits` bits per element and whose messages carry `out_bits`. Empty shapes
/// (`m` or `p` zero) cost nothing either way.
pub fn rlwe_cheaper<R: Ring>(shapes: [Shape; 2], choice_bits: u32, out_bits: u32) -> bool {
    let live = |s: &Shape| s.m > 0 && s.p > 0;
    let rlwe: f64 = shapes.iter().filter(|s| live(s)).map(|s| rlwe_secs::<R>(*s)).sum();
    let ot: f64 = shapes.iter().filter(|s| live(s)).map(|s| ot_secs(*s, choice_bits, out_bits)).sum();
    rlwe < ot
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_batches_take_ot_and_the_benchmark_batches_take_rlwe() {
        // examples/requests/ss_lr.json: FM128, batch 128, blocks of 3 columns; forward mod 2^70, backward with
        // the bounded residual (f + 4 choice bits).
        let small = [Shape { m: 128, p: 3 }; 2];
        assert!(!rlwe_cheaper::<u128>(small, 70, 70));
        assert!(!rlwe_cheaper::<u128>([Shape { m: 3, p: 128 }; 2], 30, 128));
        // The 100,000 x 20 benchmark: FM64, batch 1024, blocks of 10 and 11 columns (measured: RLWE 10 ms and
        // 0.74 MB per batch, OT 46 ms and 3.5 MB).
        assert!(rlwe_cheaper::<u64>([Shape { m: 1024, p: 10 }, Shape { m: 1024, p: 11 }], 54, 54));
        assert!(rlwe_cheaper::<u64>([Shape { m: 10, p: 1024 }, Shape { m: 11, p: 1024 }], 22, 64));
        // The whole training set's loss term (one row of 100,000) takes RLWE; an empty node costs nothing.
        assert!(rlwe_cheaper::<u64>([Shape { m: 1, p: 100_000 }, Shape { m: 0, p: 0 }], 37, 64));
    }

    #[test]
    fn the_ot_estimate_counts_what_gilboa_sends() {
        // One element, one choice bit, a 64-bit message: one OT's correction plus 8 bytes.
        let one = ot_secs(Shape { m: 1, p: 1 }, 1, 64) - OT_SECS - 1.5 * BLOCK_SECS;
        assert!((one * LINK_BYTES_PER_SEC - (4.0 + 8.0)).abs() < 1e-9, "{}", one * LINK_BYTES_PER_SEC);
    }
}
