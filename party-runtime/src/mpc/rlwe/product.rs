//! The evaluator's side of an RLWE product: sums of plaintext-times-ciphertext products, re-randomized with
//! a public-key encryption of zero, masked, flooded (at the full modulus, before the switch down to the kept
//! primes divides the flood with everything else) and cut to the coefficients the protocol returns.

use super::{Params, PublicKey, cbd, ternary, words};
use crate::crypto::prg::Prg;
use crate::mpc::modular::{add_mod, small_mod};
use crate::ring::Ring;

/// The evaluator's side: sums of `a_j * Enc(m_j)` for its plaintexts `a_j`, re-randomized and returned.
pub struct Product {
    c0: Vec<u64>,
    c1: Vec<u64>,
    /// The encryption of zero's error on `c1`, coefficient form.
    e2: Vec<i64>,
    norm: u128,
}

/// A fresh public-key encryption of zero, `(pk0 u + e1, pk1 u + e2)` for a ternary `u` and errors `e1`, `e2`:
/// what re-randomizes a product (every sum starts from one). It does not depend on the data, so it can be made
/// ahead, off the path that waits for the peer's ciphertext. The products are in NTT form and the errors in
/// coefficient form: [`Product::finish_with`] adds `e1` to the coefficients it returns and `e2` within the
/// switch down, which transforms `c1`'s coefficients anyway.
pub struct ZeroEnc {
    c0: Vec<u64>,
    c1: Vec<u64>,
    e2: Vec<i64>,
}

impl ZeroEnc {
    /// A fresh encryption of zero under `pk`, from private randomness `rng`.
    pub fn new(params: &Params, pk: &PublicKey, rng: &mut Prg) -> ZeroEnc {
        let u = params.ntt_of(&ternary(rng, params.n));
        let e2 = cbd(rng, params.n);
        let mut c0 = vec![0; params.limbs() * params.n];
        let mut c1 = vec![0; params.limbs() * params.n];
        for (i, plan) in params.plans.iter().enumerate() {
            let r = params.limb(i);
            plan.mul_accumulate(&mut c0[r.clone()], &pk.p0[r.clone()], &u[r.clone()]);
            plan.mul_accumulate(&mut c1[r.clone()], &pk.p1[r.clone()], &u[r]);
        }
        ZeroEnc { c0, c1, e2 }
    }
}

impl Product {
    /// A sum that starts from the fresh encryption of zero `zero`, which re-randomizes the result.
    pub fn new(zero: ZeroEnc) -> Product {
        Product { c0: zero.c0, c1: zero.c1, e2: zero.e2, norm: 0 }
    }

    /// Add `a * Enc(m)` for the plaintext `a` (NTT form, `||a||_1 = norm`) and the ciphertext `(c0, c1)`
    /// (NTT form).
    pub fn add(&mut self, params: &Params, (a, norm): (&[u64], u128), c0: &[u64], c1: &[u64]) {
        for (i, plan) in params.plans.iter().enumerate() {
            let r = params.limb(i);
            plan.mul_accumulate(&mut self.c0[r.clone()], &a[r.clone()], &c0[r.clone()]);
            plan.mul_accumulate(&mut self.c1[r.clone()], &a[r.clone()], &c1[r]);
        }
        self.norm = self.norm.saturating_add(norm);
    }

    /// Add `round(q mask / t)` and flooding noise at `positions` (the sum is already re-randomized by the
    /// encryption of zero it started from), switch down to the kept primes and return `(c1 in NTT form, c0 at
    /// positions)` (prime by prime). Fails if the summed plaintexts' norm exceeds [`Params::max_norm`].
    pub fn finish<R: Ring>(
        self,
        params: &Params,
        positions: &[usize],
        mask: &[R],
        rng: &mut Prg,
    ) -> Result<(Vec<u64>, Vec<u64>), String> {
        let scaled = params.scaled_all(mask, positions.len());
        self.finish_with(params, (positions, params.flood), &scaled, rng)
    }

    /// [`Product::finish`] with flooding noise of `bits` bits and an encoded mask: `scaled` holds
    /// `round(q mask_k / t)` for each position, prime by prime.
    pub fn finish_with(
        mut self,
        params: &Params,
        (positions, bits): (&[usize], u32),
        scaled: &[u64],
        rng: &mut Prg,
    ) -> Result<(Vec<u64>, Vec<u64>), String> {
        let limit = params.max_norm_at(bits);
        if self.norm > limit {
            return Err(format!(
                "plaintext norm 2^{:.1} exceeds the lattice parameters' 2^{:.1}",
                (self.norm as f64).log2(),
                (limit as f64).log2()
            ));
        }
        let n = positions.len();
        let mut out0 = vec![0u64; params.limbs() * n];
        let flood = Wide::uniform_n(rng, bits, n);
        let e1 = cbd(rng, n);
        for (i, plan) in params.plans.iter().enumerate() {
            let r = params.limb(i);
            let p = params.primes[i];
            let c0 = &mut self.c0[r];
            plan.normalize(c0);
            plan.inv(c0);
            let out = &mut out0[i * n..(i + 1) * n];
            for (k, &j) in positions.iter().enumerate() {
                let noise = add_mod(params.wide_residue(flood[k], i), small_mod(e1[k], p), p);
                out[k] = add_mod(add_mod(c0[j], noise, p), scaled[i * n + k], p);
            }
        }
        params.switch_down((&mut self.c1, &self.e2), &mut out0, n);
        Ok((self.c1, out0))
    }
}

/// A signed integer of up to 191 bits as `hi 2^64 + lo`: flooding noise, reduced mod each prime without
/// wide divisions.
#[derive(Clone, Copy)]
pub(in crate::mpc) struct Wide {
    hi: i128,
    lo: u64,
}

impl Wide {
    /// The widest flood it draws: `2^MAX_BITS`.
    pub(in crate::mpc) const MAX_BITS: u32 = 190;

    /// Uniform in `[-2^bits, 2^bits)`, for `64 <= bits <= MAX_BITS`.
    #[cfg(test)]
    pub(in crate::mpc) fn uniform(rng: &mut impl crate::crypto::prg::Words, bits: u32) -> Wide {
        Wide::from_words([rng.word(), rng.word(), rng.word()], bits)
    }

    fn from_words([a, b, lo]: [u64; 3], bits: u32) -> Wide {
        debug_assert!((64..=Wide::MAX_BITS).contains(&bits));
        let top = 1u128 << (bits - 64);
        let high = (a as u128 | (b as u128) << 64) & (2 * top - 1);
        Wide { hi: high as i128 - top as i128, lo }
    }

    /// `n` values uniform in `[-2^bits, 2^bits)`, from the stream in bulk.
    fn uniform_n(rng: &mut Prg, bits: u32, n: usize) -> Vec<Wide> {
        words(rng, 3 * n).chunks_exact(3).map(|w| Wide::from_words([w[0], w[1], w[2]], bits)).collect()
    }

    /// `hi 2^64 + lo`.
    #[cfg(test)]
    pub(in crate::mpc) fn new(hi: i128, lo: u64) -> Wide {
        Wide { hi, lo }
    }

    /// The value mod `p`, by plain remainders (what [`Params::wide_residue`] computes without divisions).
    #[cfg(test)]
    pub(in crate::mpc) fn rem(self, p: u64) -> u64 {
        let r64 = ((1u128 << 64) % p as u128) as u64;
        let hi = self.hi.rem_euclid(p as i128) as u128;
        ((hi * r64 as u128 + self.lo as u128) % p as u128) as u64
    }
}

impl Params {
    /// `v mod p_i` as `[hi]_p (2^64 mod p) + [lo]_p` with Shoup multiplications.
    #[inline]
    pub(super) fn wide_residue(&self, v: Wide, i: usize) -> u64 {
        self.moduli[i].reduce_signed(v.hi, v.lo)
    }
}
