//! Arithmetic on this party's shares alone (no message): the additive sharing's linear operations, the local
//! matrix product, the Gilboa item layout, uniform ring elements from a stream, and the ring's wire bytes.
//! Every protocol file builds on these; this file depends on nothing of the device.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::crypto::prg::Words;
use crate::ring::Ring;

/// `m x p` times `p x q`, row-major, mod `2^k`.
pub fn matmul_local<R: Ring>(a: &[R], b: &[R], m: usize, p: usize, q: usize) -> Vec<R> {
    let mut out = vec![R::ZERO; m * q];
    for (i, row) in out.chunks_exact_mut(q).enumerate() {
        for k in 0..p {
            let x = a[i * p + k];
            for (o, y) in row.iter_mut().zip(&b[k * q..(k + 1) * q]) {
                *o = o.add(x.mul(*y));
            }
        }
    }
    out
}

/// `x + y` elementwise.
pub fn add<R: Ring>(x: &[R], y: &[R]) -> Vec<R> {
    x.iter().zip(y).map(|(a, b)| a.add(*b)).collect()
}

/// `x - y` elementwise.
pub fn sub<R: Ring>(x: &[R], y: &[R]) -> Vec<R> {
    x.iter().zip(y).map(|(a, b)| a.sub(*b)).collect()
}

/// `x * c` for a public ring constant (no truncation).
pub fn scale<R: Ring>(x: &[R], c: R) -> Vec<R> {
    x.iter().map(|a| a.mul(c)).collect()
}

/// The Gilboa sender's vectors for `A (m x p)` times a `p x q` chooser matrix: item `(r, c)` of the chooser's
/// matrix (index `r q + c`) carries column `r` of `A`.
pub fn item_vectors<R: Ring>(a: &[R], m: usize, p: usize, q: usize) -> Vec<R> {
    let at = transpose(a, m, p);
    (0..p * q).flat_map(|i| at[(i / q) * m..(i / q + 1) * m].iter().copied()).collect()
}

/// `a` (`rows x cols`, row-major) transposed.
pub fn transpose<R: Ring>(a: &[R], rows: usize, cols: usize) -> Vec<R> {
    let mut out = vec![R::ZERO; a.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = a[r * cols + c];
        }
    }
    out
}

/// `n` ring elements from the ChaCha20 stream of `seed`.
pub fn expand<R: Ring>(seed: [u8; 32], n: usize) -> Vec<R> {
    let mut rng = ChaCha20Rng::from_seed(seed);
    random(&mut rng, n)
}

/// `n` uniform ring elements from `rng`.
pub fn random<R: Ring>(rng: &mut impl Words, n: usize) -> Vec<R> {
    (0..n).map(|_| draw(rng)).collect()
}

/// One uniform ring element.
#[inline]
pub fn draw<R: Ring>(rng: &mut impl Words) -> R {
    let lo = rng.word() as u128;
    if R::BITS > 64 { R::from_u128(lo | (rng.word() as u128) << 64) } else { R::from_u128(lo) }
}

/// The wire bytes of `x` ([`put_ring`] per element).
pub fn ring_bytes<R: Ring>(x: &[R]) -> Vec<u8> {
    let mut out = Vec::with_capacity(x.len() * (R::BITS / 8) as usize);
    for v in x {
        put_ring(&mut out, *v);
    }
    out
}

/// Append `v` as `k / 8` little-endian bytes (the wire form of a ring element).
#[inline]
pub fn put_ring<R: Ring>(out: &mut Vec<u8>, v: R) {
    out.extend_from_slice(&v.to_u128().to_le_bytes()[..(R::BITS / 8) as usize]);
}

/// A ring element from its `k / 8` little-endian bytes.
#[inline]
pub fn ring_from_bytes<R: Ring>(bytes: &[u8]) -> R {
    let mut b = [0u8; 16];
    b[..bytes.len()].copy_from_slice(bytes);
    R::from_u128(u128::from_le_bytes(b))
}

/// Sum per-item product vectors (`m` elements for item `(r, c)`, item index `r * q + c`) into column `c`.
pub fn accumulate<R: Ring>(out: &mut [R], parts: &[R], m: usize, q: usize) {
    for (i, part) in parts.chunks_exact(m).enumerate() {
        let c = i % q;
        for (row, v) in part.iter().enumerate() {
            let o = &mut out[row * q + c];
            *o = o.add(*v);
        }
    }
}
