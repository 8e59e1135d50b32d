//! The evaluator's side of an RLWE product: sums of plaintext-times-ciphertext products, re-randomized with
//! a public-key encryption of zero, masked, flooded (before or after the switch down to the kept primes) and
//! cut to the coefficients the protocol returns.

use super::{Params, PublicKey, STAT_SEC, cbd, ternary, words};
use crate::crypto::prg::Prg;
use crate::mpc::modular::{add_mod, small_mod};
use crate::ring::Ring;

/// The evaluator's side: sums of `a_j * Enc(m_j)` for its plaintexts `a_j`, re-randomized and returned.
pub struct Product {
    c0: Vec<u64>,
    c1: Vec<u64>,
    norm: u128,
}

/// A fresh public-key encryption of zero in NTT form, `(pk0 u, pk1 u + e2)` for a ternary `u` and an error
/// `e2`: what re-randomizes a product (every sum starts from one). It does not depend on the data, so it can be
/// made ahead, off the path that waits for the peer's ciphertext.
pub struct ZeroEnc {
    c0: Vec<u64>,
    c1: Vec<u64>,
}

impl ZeroEnc {
    /// A fresh encryption of zero under `pk`, from private randomness `rng`.
    pub fn new(params: &Params, pk: &PublicKey, rng: &mut Prg) -> ZeroEnc {
        let u = params.ntt_of(&ternary(rng, params.n));
        let mut c1 = params.ntt_of(&cbd(rng, params.n));
        let mut c0 = vec![0; params.limbs() * params.n];
        for (i, plan) in params.plans.iter().enumerate() {
            let r = params.limb(i);
            plan.mul_accumulate(&mut c0[r.clone()], &pk.p0[r.clone()], &u[r.clone()]);
            plan.mul_accumulate(&mut c1[r.clone()], &pk.p1[r.clone()], &u[r]);
        }
        ZeroEnc { c0, c1 }
    }
}

impl Product {
    /// A sum that starts from the fresh encryption of zero `zero`, which re-randomizes the result.
    pub fn new(zero: ZeroEnc) -> Product {
        Product { c0: zero.c0, c1: zero.c1, norm: 0 }
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
        self.finish_with(params, (positions, Flood::Before(params.flood)), &scaled, rng)
    }

    /// [`Product::finish`] with the given flooding and an encoded mask: `scaled` holds `round(q mask_k / t)`
    /// for each position, prime by prime.
    pub fn finish_with(
        mut self,
        params: &Params,
        (positions, flood): (&[usize], Flood),
        scaled: &[u64],
        rng: &mut Prg,
    ) -> Result<(Vec<u64>, Vec<u64>), String> {
        let (fits, limit) = match flood {
            Flood::Before(bits) => (self.norm <= params.max_norm_at(bits), params.max_norm_at(bits)),
            Flood::After(bits) => {
                let budget = 1u128 << (bits - STAT_SEC);
                (params.switched_noise(self.norm) <= budget, params.max_norm_after(budget))
            }
        };
        if !fits {
            return Err(format!(
                "plaintext norm 2^{:.1} exceeds the lattice parameters' 2^{:.1}",
                (self.norm as f64).log2(),
                (limit as f64).log2()
            ));
        }
        let n = positions.len();
        let mut out0 = vec![0u64; params.limbs() * n];
        let before = match flood {
            Flood::Before(bits) => Wide::uniform_n(rng, bits, n),
            Flood::After(_) => Vec::new(),
        };
        let e1 = cbd(rng, n);
        for (i, plan) in params.plans.iter().enumerate() {
            let r = params.limb(i);
            let p = params.primes[i];
            let c0 = &mut self.c0[r];
            plan.normalize(c0);
            plan.inv(c0);
            let out = &mut out0[i * n..(i + 1) * n];
            for (k, &j) in positions.iter().enumerate() {
                let e = small_mod(e1[k], p);
                let noise = before.get(k).map_or(e, |&w| add_mod(params.wide_residue(w, i), e, p));
                out[k] = add_mod(add_mod(c0[j], noise, p), scaled[i * n + k], p);
            }
        }
        params.switch_down(&mut self.c1, &mut out0, n);
        if let Flood::After(bits) = flood {
            params.flood_kept(&mut out0, n, bits, rng);
        }
        Ok((self.c1, out0))
    }
}

/// Where the evaluator floods a result's noise.
#[derive(Clone, Copy)]
pub enum Flood {
    /// Noise of this many bits at the full modulus, before the switch divides it (and the switch's rounding
    /// with it): needed when the kept modulus leaves little room above `t`, as for `t = 2^k`.
    Before(u32),
    /// Noise of this many bits added after the switch, over the kept primes: it must hide (smudge) the switched
    /// noise and the switch's rounding, and is cheaper when the kept modulus has room (a small prime `t`).
    After(u32),
}

/// A signed integer of up to 127 bits as `hi 2^64 + lo`: flooding noise, reduced mod each prime without
/// 128-bit divisions.
#[derive(Clone, Copy)]
pub(in crate::mpc) struct Wide {
    hi: i64,
    lo: u64,
}

impl Wide {
    /// Uniform in `[-2^bits, 2^bits)`, for `64 <= bits <= 125`.
    #[cfg(test)]
    pub(in crate::mpc) fn uniform(rng: &mut impl crate::crypto::prg::Words, bits: u32) -> Wide {
        Wide::from_words(rng.word(), rng.word(), bits)
    }

    fn from_words(a: u64, b: u64, bits: u32) -> Wide {
        debug_assert!((64..=125).contains(&bits));
        let top = 1i64 << (bits - 64);
        Wide { hi: (a & (2 * top as u64 - 1)) as i64 - top, lo: b }
    }

    /// `n` values uniform in `[-2^bits, 2^bits)`, from the stream in bulk.
    fn uniform_n(rng: &mut Prg, bits: u32, n: usize) -> Vec<Wide> {
        words(rng, 2 * n).chunks_exact(2).map(|w| Wide::from_words(w[0], w[1], bits)).collect()
    }

    #[cfg(test)]
    pub(in crate::mpc) fn value(self) -> i128 {
        (self.hi as i128) << 64 | self.lo as i128
    }
}

impl Params {
    /// `v mod p_i` as `[hi]_p (2^64 mod p) + [lo]_p` with Shoup multiplications.
    #[inline]
    pub(super) fn wide_residue(&self, v: Wide, i: usize) -> u64 {
        self.moduli[i].reduce_signed(v.hi, v.lo)
    }
}
