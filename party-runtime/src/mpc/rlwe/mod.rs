//! Ring-LWE encryption with the plaintext modulus `t = 2^k` of the MPC ring, for products of one party's
//! plaintext matrix with another party's private vector (the linear layers of SPU's CHEETAH). Hand-written over
//! prime NTTs ([`super::ntt`]: tfhe-ntt's with AVX-512 IFMA, ours with AVX2 and FMA): the `fhe` crate's BFV needs a plaintext modulus below 2^62, and ours is 2^64 or
//! 2^128.
//!
//! Ciphertexts live in `Z_q[X]/(X^N + 1)`: for FM64 `N = 8192` and `q` a product of four primes just below
//! 2^50 (`log q` = 200), for FM128 `N = 16384` and six primes (300), within the HE standard's bounds for
//! 128-bit security (218 and 438 bits) with ternary secrets and error of standard deviation 3.2. A message `m`
//! is encoded as `round(q m / t)` (not `floor(q / t) m`), so a plaintext multiple `a * Enc(m)` decrypts to
//! `a m mod t` with noise growing only by `||a||_1 / 2`. The evaluator re-randomizes a result with a
//! public-key encryption of zero and floods its noise with `FLOOD_SEC` bits more than the noise its plaintext
//! shapes (statistical circuit privacy, `2^-STAT_SEC` for a whole task of up to `TASK_FLOODS` flooded
//! coefficients); only the coefficients the protocol needs are returned, switched down to fewer primes (two of
//! four for FM64, three of six for FM128): the flooded noise divided by the dropped primes stays below the kept
//! modulus's `q' / 2t`.

use std::sync::OnceLock;

use rayon::prelude::*;

use super::modular::{
    Modulus, add_mod, inv_mod, mul_mod, mul_shoup, ntt_primes, pow2_mod, reduce_once, shoup, signed_mod, small_mod,
};
use super::ntt::{FMA_PRIME_BITS, Ntt};
use crate::crypto::prg::{Prg, Words};

mod product;
mod switch;
use crate::ring::Ring;
use product::Wide;
pub use product::{Product, ZeroEnc};
use switch::Switch;

/// The primes are the largest below `2^PRIME_BITS` that are `1 mod 2N`.
/// 50 bits: the widest both NTT paths take at full speed (tfhe-ntt's IFMA kernels have a faster variant below
/// 2^50; ours in `f64` lanes are exact below it), so every CPU uses the same parameters.
const PRIME_BITS: u32 = FMA_PRIME_BITS;
/// Bits per residue on the wire (every residue is below its prime).
pub const RESIDUE_BITS: u32 = PRIME_BITS;
/// Centered binomial error, parameter 21 (standard deviation 3.24, `|e| <= 21`).
const ETA: u32 = 21;
/// Statistical security of a task, in bits: how far (in statistical distance, `2^-STAT_SEC`) everything a task's
/// flooded coefficients and slot masks show the key holder may be from what they would show without the
/// evaluator's inputs.
pub const STAT_SEC: u32 = 40;
/// `log2` of the most coefficients one party may flood (as evaluator) in a task, [`TASK_FLOODS`].
pub const TASK_FLOODS_LOG2: u32 = 32;
/// The most coefficients one party may flood in a task: past it the task fails rather than weaken
/// [`STAT_SEC`].
pub const TASK_FLOODS: u64 = 1 << TASK_FLOODS_LOG2;
/// The margin of each flooded coefficient and each slot mask: the statistical distances of a task's
/// coefficients add up, so each gets `STAT_SEC + TASK_FLOODS_LOG2` bits.
pub const FLOOD_SEC: u32 = STAT_SEC + TASK_FLOODS_LOG2;

/// The parameters for plaintext modulus `2^k`, with their precomputed constants.
pub struct Params {
    /// The ring degree `N`.
    pub n: usize,
    pub(super) primes: Vec<u64>,
    pub(super) plans: Vec<Ntt>,
    /// `q mod t`.
    q_mod_t: u128,
    /// `t^-1 mod p_i`.
    t_inv: Vec<u64>,
    /// Primes a returned ciphertext keeps: the evaluator divides out the others (modulus switching) before
    /// sending, so the key holder gets `keep` residues per coefficient instead of all.
    keep: usize,
    /// The constants of dividing out the primes past `keep` ([`switch`]).
    switch: Switch,
    /// HPS rounding over the kept primes (decryption of returned ciphertexts).
    hps: Hps,
    /// Noise flooding width: flooding noise is uniform in `[-2^flood, 2^flood)`.
    pub flood: u32,
    /// The primes with their reduction constants (for [`Wide`] values and the flood after the switch).
    moduli: Vec<Modulus>,
}

/// The parameters for `R`'s ring (built once per ring).
pub fn params<R: Ring>() -> &'static Params {
    static CELLS: [OnceLock<Params>; 2] = [const { OnceLock::new() }; 2];
    per_ring::<R, _>(&CELLS, Params::new)
}

/// The value for `R`'s ring from one of two cells (FM64, FM128), built on first use from the ring's bits.
pub(super) fn per_ring<R: Ring, T>(cells: &'static [OnceLock<T>; 2], init: fn(u32) -> T) -> &'static T {
    cells[(R::BITS != 64) as usize].get_or_init(|| init(R::BITS))
}

impl Params {
    fn new(k: u32) -> Params {
        // log q = 200 at N = 8192 (the HE standard allows 218), 300 at N = 16384 (438): floods of 2^133 and
        // 2^169, budgets of 2^61 and 2^97 for the evaluator's noise under FLOOD_SEC.
        // Returned ciphertexts keep two primes (FM64) or three (FM128): the flooding noise divided by the
        // dropped primes (2^33 or 2^19) plus the rounding stays below q' / 2t (2^34 or 2^20).
        let (n, count, keep) = if k <= 64 { (8192, 4, 2) } else { (16384, 6, 3) };
        let primes = ntt_primes(PRIME_BITS, count, n);
        let plans = primes.iter().map(|&p| Ntt::new(n, p).expect("NTT-friendly prime")).collect();
        let q_mod_t = primes.iter().fold(1u128, |acc, &p| acc.wrapping_mul(p as u128)) & mask(k);
        let t_inv = primes.iter().map(|&p| inv_mod(pow2_mod(k, p), p)).collect();
        let hps = Hps::new(&primes[..keep], mask(k));
        let switch = Switch::new(&primes, keep);
        // floor(log2 q) from below (each prime is just under 2^PRIME_BITS), then room for the noise.
        let log_q = primes.iter().map(|&p| (p as f64).log2()).sum::<f64>().floor() as u32;
        // Decryption is correct while the noise stays below q / 2t, before the switch and (divided by the
        // dropped primes, with the switch's rounding) after it.
        let flood = (log_q - k - 2).min(Wide::MAX_BITS);
        let moduli = primes.iter().map(|&p| Modulus::new(p)).collect();
        Params { n, primes, plans, q_mod_t, t_inv, keep, switch, hps, flood, moduli }
    }

    /// The number of RNS primes.
    pub fn limbs(&self) -> usize {
        self.primes.len()
    }

    /// The number of primes of a returned (modulus-switched) ciphertext.
    pub fn returned_limbs(&self) -> usize {
        self.keep
    }

    /// Modulus switching of a result (`c1` in NTT form plus a small `err` in coefficient form, `c0` at its
    /// `positions` coefficients, both over all primes): divide out the primes past `keep` at once ([`switch`]),
    /// adding at most 1/2 to each coefficient's error. `err` joins `c1` where the switch has its coefficients:
    /// in the dropped residues, and in the kept ones through the remainder's transform (`c1 + err - r =
    /// c1 - (r - err)`), so it needs no transform of its own.
    fn switch_down(&self, (c1, err): (&mut Vec<u64>, &[i64]), c0: &mut Vec<u64>, positions: usize) {
        let (n, keep, sw) = (self.n, self.keep, &self.switch);
        let (kept, dropped) = c1.split_at_mut(keep * n);
        for (j, limb) in dropped.chunks_exact_mut(n).enumerate() {
            self.to_coeffs_at(keep + j, limb);
            let p = self.primes[keep + j];
            limb.iter_mut().zip(err).for_each(|(x, e)| *x = add_mod(*x, small_mod(*e, p), p));
        }
        // Every kept prime's remainder, coefficient by coefficient (each coefficient's digits taken once).
        let mut rem = vec![0u64; keep * n];
        for (c, e) in err.iter().enumerate() {
            let u = sw.digits(|j| dropped[j * n + c]);
            for i in 0..keep {
                let p = self.primes[i];
                rem[i * n + c] = add_mod(sw.remainder(i, &u), p - small_mod(*e, p), p);
            }
        }
        for (i, (limb, rem)) in kept.chunks_exact_mut(n).zip(rem.chunks_exact_mut(n)).enumerate() {
            self.plans[i].fwd(rem);
            for (x, r) in limb.iter_mut().zip(rem.iter()) {
                *x = sw.divide(i, *x, *r);
            }
        }
        c1.truncate(keep * n);
        for k in 0..positions {
            let u = sw.digits(|j| c0[(keep + j) * positions + k]);
            for i in 0..keep {
                let x = &mut c0[i * positions + k];
                *x = sw.divide(i, *x, sw.remainder(i, &u));
            }
        }
        c0.truncate(keep * positions);
    }

    /// Where prime `i`'s residues sit in a flat polynomial.
    fn limb(&self, i: usize) -> std::ops::Range<usize> {
        i * self.n..(i + 1) * self.n
    }

    /// From NTT to coefficient form, prime by prime (as many primes as `poly` holds).
    fn to_coeffs(&self, poly: &mut [u64]) {
        for (i, limb) in poly.chunks_exact_mut(self.n).enumerate() {
            self.to_coeffs_at(i, limb);
        }
    }

    /// Prime `i`'s residues from NTT to coefficient form.
    fn to_coeffs_at(&self, i: usize, limb: &mut [u64]) {
        self.plans[i].normalize(limb);
        self.plans[i].inv(limb);
    }

    /// The largest `||a||_1` of an evaluator's plaintext for which flooding hides its noise: the noise it
    /// shapes, `||a||_1 (eta + 1/2)`, plus the re-randomization's, stays `STAT_SEC` bits below the flood.
    pub fn max_norm(&self) -> u128 {
        self.max_norm_at(self.flood)
    }

    /// A bound on the noise of a sum of plaintext products of summed `||a||_1 = norm`, before flooding: the noise
    /// the plaintexts shape, `||a||_1 (eta + 1/2)`, plus the re-randomization's.
    pub fn noise(&self, norm: u128) -> u128 {
        norm.saturating_mul(ETA as u128 + 1).saturating_add(3 * self.n as u128 * ETA as u128)
    }

    /// [`Params::max_norm`] for flooding noise of `flood` bits.
    pub fn max_norm_at(&self, flood: u32) -> u128 {
        let budget = 1u128 << (flood - FLOOD_SEC).min(127);
        budget.saturating_sub(3 * (self.n as u128) * ETA as u128) / (ETA as u128 + 1)
    }
}

fn mask(k: u32) -> u128 {
    if k >= 128 { u128::MAX } else { (1u128 << k) - 1 }
}

/// Constants of HPS rounding `round(t x / Q) mod t` over a basis of primes with product `Q`.
pub(super) struct Hps {
    primes: Vec<u64>,
    /// `(Q / p_i)^-1 mod p_i` with its Shoup constant.
    qhat_inv: Vec<(u64, u64)>,
    /// `t / p_i` as its integer part and its fraction times `2^64`.
    t_over_p: Vec<(u128, u64)>,
}

impl Hps {
    /// The constants for the plaintext modulus `t = below + 1` (`below` so that `t = 2^128` fits).
    pub(super) fn new(primes: &[u64], below: u128) -> Hps {
        let qhat_inv = (0..primes.len())
            .map(|i| {
                let p = primes[i];
                let others = primes.iter().enumerate().filter(|&(j, _)| j != i);
                shoup(inv_mod(others.fold(1u64, |acc, (_, &q)| mul_mod(acc, q % p, p)), p), p)
            })
            .collect();
        let t_over_p = primes
            .iter()
            .map(|&p| {
                // t = I p + r, computed as (t - 1) = I p + (r - 1).
                let (mut int, mut r) = (below / p as u128, below % p as u128 + 1);
                if r == p as u128 {
                    int += 1;
                    r = 0;
                }
                (int, ((r << 64) / p as u128) as u64)
            })
            .collect();
        Hps { primes: primes.to_vec(), qhat_inv, t_over_p }
    }

    /// `y_i = x_i (Q / p_i)^-1 mod p_i` with `t / p_i`'s parts, for each residue.
    fn terms(&self, residues: impl Iterator<Item = u64>) -> impl Iterator<Item = (u64, (u128, u64))> {
        residues.enumerate().map(|(i, x)| {
            let (w, ws) = self.qhat_inv[i];
            (mul_shoup(x, w, ws, self.primes[i]), self.t_over_p[i])
        })
    }

    /// `round(t x / Q) mod t` from `x`'s residues (`t x / Q = sum_i y_i t / p_i - v t` with
    /// `y_i = x_i (Q / p_i)^-1 mod p_i`, and the `v t` term vanishes mod `t`), for `t = 2^k`.
    fn round<R: Ring>(&self, residues: impl Iterator<Item = u64>) -> R {
        let (mut int, mut frac) = (R::ZERO, 0u128);
        for (y, (ip, fp)) in self.terms(residues) {
            int = int.add(R::from_u128(ip).mul(R::from_u128(y as u128)));
            frac += y as u128 * fp as u128;
        }
        int.add(R::from_u128((frac + (1 << 63)) >> 64))
    }

    /// [`Hps::round`] for a word-sized plaintext modulus `t` below twice every prime (the integer parts are 0
    /// or 1).
    pub(super) fn round_small(&self, residues: impl Iterator<Item = u64>, t: u64) -> u64 {
        let (mut int, mut frac) = (0u64, 0u128);
        for (y, (ip, fp)) in self.terms(residues) {
            int += y * ip as u64;
            frac += y as u128 * fp as u128;
        }
        // Below (number of primes) x 2t: a few subtractions instead of a division.
        let mut v = int + ((frac + (1 << 63)) >> 64) as u64;
        while v >= t {
            v -= t;
        }
        v
    }
}

/// The two's-complement value of a ring element.
#[inline]
pub fn signed<R: Ring>(v: R) -> i128 {
    if R::BITS == 64 { v.to_u128() as u64 as i64 as i128 } else { v.to_u128() as i128 }
}

/// `n` words of `rng`, in bulk.
fn words(rng: &mut Prg, n: usize) -> Vec<u64> {
    let mut w = vec![0u64; n];
    rng.fill(&mut w);
    w
}

/// `n` centered binomial samples in `[-ETA, ETA]`.
fn cbd(rng: &mut Prg, n: usize) -> Vec<i64> {
    let m = (1u64 << ETA) - 1;
    words(rng, n).iter().map(|w| (w & m).count_ones() as i64 - ((w >> ETA) & m).count_ones() as i64).collect()
}

/// `n` uniform elements of `{-1, 0, 1}`: `floor(3 w / 2^64) - 1` of a word each (bias below 2^-63, and no
/// rejection branch to mispredict).
fn ternary(rng: &mut Prg, n: usize) -> Vec<i64> {
    words(rng, n).iter().map(|&w| ((w as u128 * 3) >> 64) as i64 - 1).collect()
}

impl Params {
    /// A polynomial (flat, prime by prime) from `N` small signed coefficients (below 2^50, so below twice
    /// every prime), in NTT form.
    pub(super) fn ntt_of(&self, c: &[i64]) -> Vec<u64> {
        debug_assert!(c.len() == self.n && c.iter().all(|v| v.unsigned_abs() < 1 << 50));
        let mut out = Vec::with_capacity(self.limbs() * self.n);
        for &p in &self.primes {
            // v + 2p lies in [0, 4p): two branch-free subtractions.
            out.extend(c.iter().map(|&v| reduce_once(reduce_once((v + 2 * p as i64) as u64, 2 * p), p)));
        }
        for (limb, plan) in out.chunks_exact_mut(self.n).zip(&self.plans) {
            plan.fwd(limb);
        }
        out
    }

    /// A uniform polynomial in NTT form from a public stream (uniform in either form): `PRIME_BITS`-bit
    /// words, the rare ones not below `p` replaced by further words.
    fn uniform_ntt(&self, rng: &mut Prg) -> Vec<u64> {
        let mut out = words(rng, self.limbs() * self.n);
        for (limb, &p) in out.chunks_exact_mut(self.n).zip(&self.primes) {
            for v in limb.iter_mut() {
                *v &= (1 << PRIME_BITS) - 1;
                while *v >= p {
                    *v = rng.word() & ((1 << PRIME_BITS) - 1);
                }
            }
        }
        out
    }

    /// The plaintext polynomial `a` (ring elements taken as signed integers; `coeffs` as `(index, value)`)
    /// in NTT form, with its `||a||_1`.
    pub fn plaintext<R: Ring>(&self, coeffs: &[(usize, R)]) -> (Vec<u64>, u128) {
        let mut out = vec![0u64; self.limbs() * self.n];
        let mut norm = 0u128;
        for &(j, v) in coeffs {
            let s = signed(v);
            norm = norm.saturating_add(s.unsigned_abs());
            for (i, &p) in self.primes.iter().enumerate() {
                out[i * self.n + j] = signed_mod(s, p);
            }
        }
        for (limb, plan) in out.chunks_exact_mut(self.n).zip(&self.plans) {
            plan.fwd(limb);
        }
        (out, norm)
    }

    /// `round(q m / t) mod p_i`: with `q m = t a + b`, `0 <= b < t`, it is `a + [b >= t/2]`, and
    /// `a = -b t^-1 mod p_i` because `p_i` divides `q`.
    #[inline]
    fn scaled<R: Ring>(&self, m: R, i: usize) -> u64 {
        let p = self.primes[i];
        let b = R::from_u128(self.q_mod_t).mul(m);
        let a = (p - mul_mod((b.to_u128() % p as u128) as u64, self.t_inv[i], p)) % p;
        if b.msb() { (a + 1) % p } else { a }
    }

    /// [`Params::scaled`] of the first `n` of `m`, prime by prime (zero past `m`'s end).
    fn scaled_all<R: Ring>(&self, m: &[R], n: usize) -> Vec<u64> {
        (0..self.limbs()).flat_map(|i| (0..n).map(move |j| m.get(j).map_or(0, |v| self.scaled(*v, i)))).collect()
    }
}

/// A party's secret key and its private randomness.
pub struct SecretKey {
    params: &'static Params,
    s: Vec<u64>,
    rng: Prg,
}

/// The public key `(p0, p1) = (-p1 s + e, p1)`, both in NTT form (`p1` expands from a public seed).
pub struct PublicKey {
    p0: Vec<u64>,
    p1: Vec<u64>,
}

impl SecretKey {
    /// A fresh ternary secret from `rng` (private randomness).
    pub fn new(params: &'static Params, mut rng: Prg) -> SecretKey {
        let s = params.ntt_of(&ternary(&mut rng, params.n));
        SecretKey { params, s, rng }
    }

    /// `a s` in NTT form, for `a` in NTT form (over as many primes as `a` holds).
    fn times_s(&self, a: &[u64]) -> Vec<u64> {
        let par = self.params;
        let mut out = vec![0u64; a.len()];
        for (i, (limb, plan)) in out.chunks_exact_mut(par.n).zip(&par.plans).enumerate() {
            plan.mul_accumulate(limb, &a[par.limb(i)], &self.s[par.limb(i)]);
        }
        out
    }

    /// The public key for `seed`, as `p0`'s residues (the peer expands `p1` from the seed).
    pub fn public_key(&mut self, seed: [u8; 16]) -> Vec<u64> {
        let par = self.params;
        let p1 = par.uniform_ntt(&mut Prg::new(seed, 0));
        let e = cbd(&mut self.rng, par.n);
        let mut p0 = par.ntt_of(&e);
        for (i, (o, x)) in p0.iter_mut().zip(self.times_s(&p1)).enumerate() {
            let p = par.primes[i / par.n];
            *o = add_mod(*o, p - x, p);
        }
        p0
    }

    /// Encrypt `m` (at most `N` coefficients) under this key with `c1` from stream `stream` of `seed`:
    /// returns `c0 = -c1 s + e + round(q m / t)` in NTT form (the evaluator multiplies in that form).
    #[cfg(test)]
    pub fn encrypt<R: Ring>(&mut self, m: &[R], seed: [u8; 16], stream: u64) -> Vec<u64> {
        self.encrypt_many(&[m], seed, stream).pop().unwrap_or_default()
    }

    /// [`SecretKey::encrypt`] of each of `ms` (on streams `first`, `first + 1`, ...), in parallel.
    pub fn encrypt_many<R: Ring>(&mut self, ms: &[&[R]], seed: [u8; 16], first: u64) -> Vec<Vec<u64>> {
        let par = self.params;
        let noises: Vec<Prg> = ms.iter().map(|_| self.rng.fork()).collect();
        ms.par_iter()
            .zip(noises)
            .enumerate()
            .map(|(i, (m, mut noise))| self.encrypt_with(&mut noise, &par.scaled_all(m, par.n), seed, first + i as u64))
            .collect()
    }

    /// [`SecretKey::encrypt`] of an encoded message with the error drawn from `noise` (private randomness):
    /// `scaled` holds the coefficients' `round(q m / t)`, prime by prime. Takes `&self`, so encryptions can run
    /// in parallel.
    pub fn encrypt_with(&self, noise: &mut Prg, scaled: &[u64], seed: [u8; 16], stream: u64) -> Vec<u64> {
        let par = self.params;
        let c1 = par.uniform_ntt(&mut Prg::new(seed, stream));
        let e = cbd(noise, par.n);
        let c1s = self.times_s(&c1);
        let mut c0 = vec![0u64; par.limbs() * par.n];
        for (i, (limb, m)) in c0.chunks_exact_mut(par.n).zip(scaled.chunks_exact(par.n)).enumerate() {
            let p = par.primes[i];
            for ((o, e), m) in limb.iter_mut().zip(&e).zip(m) {
                *o = add_mod(small_mod(*e, p), *m, p);
            }
            par.plans[i].fwd(limb);
            for (o, x) in limb.iter_mut().zip(&c1s[par.limb(i)]) {
                *o = add_mod(*o, p - x, p);
            }
        }
        c0
    }

    /// Decrypt the coefficients `positions` of a returned ciphertext (over the kept primes: `c1` in NTT form,
    /// `c0` only at `positions`, prime by prime).
    pub fn decrypt<R: Ring>(&self, c1: &[u64], c0: &[u64], positions: &[usize]) -> Vec<R> {
        let par = self.params;
        let n = positions.len();
        let mut prod = self.times_s(c1);
        par.to_coeffs(&mut prod);
        let x = |i: usize, k: usize| add_mod(prod[i * par.n + positions[k]], c0[i * n + k], par.primes[i]);
        (0..n).map(|k| par.hps.round((0..par.keep).map(|i| x(i, k)))).collect()
    }

    /// The phase `c0 + c1 s` of a returned ciphertext with every coefficient (`c1` in NTT form, `c0` in
    /// coefficient form, over the kept primes), in coefficient form, prime by prime.
    pub fn phase(&self, c1: &[u64], c0: &[u64]) -> Vec<u64> {
        let par = self.params;
        let mut prod = self.times_s(c1);
        par.to_coeffs(&mut prod);
        for (i, (limb, c0)) in prod.chunks_exact_mut(par.n).zip(c0.chunks_exact(par.n)).enumerate() {
            let p = par.primes[i];
            limb.iter_mut().zip(c0).for_each(|(x, c)| *x = add_mod(*x, *c, p));
        }
        prod
    }
}

impl PublicKey {
    /// The peer's public key from its `p0` residues and the seed of `p1`.
    pub fn new(params: &Params, p0: Vec<u64>, seed: [u8; 16]) -> PublicKey {
        PublicKey { p0, p1: params.uniform_ntt(&mut Prg::new(seed, 0)) }
    }
}

/// A ciphertext's `c0` (NTT form, from [`SecretKey::encrypt`]) with its `c1` expanded from the sender's seed.
pub fn received(params: &Params, c0: Vec<u64>, seed: [u8; 16], stream: u64) -> (Vec<u64>, Vec<u64>) {
    (c0, params.uniform_ntt(&mut Prg::new(seed, stream)))
}

#[cfg(test)]
mod tests {
    use super::super::modular::is_prime;
    use super::*;

    /// Encoding, modulus switching and HPS rounding give the message back, with noise up to twice the flood
    /// either way.
    fn round_trip<R: Ring>() {
        let par = params::<R>();
        for (i, &p) in par.primes.iter().enumerate() {
            assert!(is_prime(p) && p % (2 * par.n as u64) == 1 && p < 1 << PRIME_BITS, "prime {i}: {p}");
            assert!(par.primes[..i].iter().all(|&q| q != p));
        }
        let top = R::ONE.shl(R::BITS - 1);
        let mut rng = Prg::new([9; 16], 0);
        let mut ms = vec![R::ZERO, R::ONE, R::ONE.neg(), top, top.sub(R::ONE), top.add(R::ONE)];
        ms.extend((0..1000).map(|_| R::from_u128((rng.word() as u128) << 64 | rng.word() as u128)));
        // Twice the flood either way: 2^(flood + 1) is 2^(flood + 1 - 64) 2^64.
        let edge = 1i128 << (par.flood + 1 - 64);
        let noises =
            |rng: &mut Prg| [Wide::new(0, 0), Wide::new(edge, 0), Wide::new(-edge, 0), Wide::uniform(rng, par.flood)];
        let cases: Vec<(R, Wide)> = ms.iter().flat_map(|&m| noises(&mut rng).map(|noise| (m, noise))).collect();
        // The flooding noise's reduction without divisions agrees with plain remainders.
        for _ in 0..1000 {
            let v = Wide::uniform(&mut rng, par.flood);
            for (i, &p) in par.primes.iter().enumerate() {
                assert_eq!(par.wide_residue(v, i), v.rem(p));
            }
        }
        // Coefficients of c0 (c1 = 0), switched down to the kept primes as the evaluator returns them.
        let k = cases.len();
        let mut c0 = vec![0u64; par.limbs() * k];
        for (i, &p) in par.primes.iter().enumerate() {
            for (j, (m, noise)) in cases.iter().enumerate() {
                c0[i * k + j] = (par.scaled(*m, i) + noise.rem(p)) % p;
            }
        }
        par.switch_down((&mut vec![0; par.limbs() * par.n], &vec![0; par.n]), &mut c0, k);
        assert_eq!(c0.len(), par.returned_limbs() * k);
        for (j, (m, _)) in cases.iter().enumerate() {
            let res = (0..par.keep).map(|i| c0[i * k + j]);
            assert_eq!(par.hps.round::<R>(res), *m, "m {m:?}, case {j}");
        }
    }

    #[test]
    fn the_encoding_survives_the_flooding_on_both_rings() {
        round_trip::<u64>();
        round_trip::<u128>();
    }

    /// A product starting from an encryption of zero decrypts to the plaintext product plus the mask, whichever
    /// fresh zero it starts from.
    #[test]
    fn a_product_from_an_encryption_of_zero_decrypts_to_the_product() {
        let par = params::<u64>();
        let mut sk = SecretKey::new(par, Prg::new([1; 16], 0));
        let pk = PublicKey::new(par, sk.public_key([2; 16]), [2; 16]);
        let m: Vec<u64> = (0..8).map(|i| u64::MAX - 3 * i).collect();
        let (c0, c1) = received(par, sk.encrypt(&m, [3; 16], 0), [3; 16], 0);
        // The plaintext 2 - X: coefficient j of the product is 2 m_j - m_(j-1).
        let a = par.plaintext(&[(0, 2u64), (1, u64::MAX)]);
        let want: Vec<u64> =
            (0..8).map(|j| 2u64.wrapping_mul(m[j]).wrapping_sub(if j > 0 { m[j - 1] } else { 0 })).collect();
        let mask = vec![5u64; 8];
        let positions: Vec<usize> = (0..8).collect();
        let mut rng = Prg::new([4; 16], 0);
        for _ in 0..2 {
            let mut prod = Product::new(ZeroEnc::new(par, &pk, &mut rng));
            prod.add(par, (&a.0, a.1), &c0, &c1);
            let (r1, r0) = prod.finish(par, &positions, &mask, &mut rng).expect("fits");
            let got: Vec<u64> = sk.decrypt::<u64>(&r1, &r0, &positions).iter().map(|v| v.wrapping_sub(5)).collect();
            assert_eq!(got, want);
        }
    }
}
