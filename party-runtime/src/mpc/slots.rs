//! Ring-LWE with SIMD slots (BFV batching) for elementwise products of shared vectors, the approach of SPU's
//! CHEETAH multiplication. A ring element does not fit one slot: slots hold values mod a prime `t_j`
//! (`t_j = 1 mod 2N`, so `Z_tj[X]/(X^N + 1)` splits into `N` slots), and a product's cross terms
//! `x_0 y_1 + y_0 x_1 + r` (below `2^(2k+1)` plus a mask of `2k + 1 + FLOOD_SEC` bits) are computed mod
//! several `t_j` whose product `P` exceeds them, then rebuilt by CRT as an integer and reduced mod `2^k`.
//!
//! Ciphertexts are [`super::rlwe`]'s for FM64 (`N = 8192`, four 50-bit primes, returned ciphertexts switched
//! down to two): the plaintext primes are below 2^51, so a plaintext polynomial has `||a||_1 <= N t / 2` and
//! the noise it shapes stays under 2^69. The evaluator floods with `FLOOD_SEC` bits more (2^141) at the full
//! modulus, below `q / 2t` (2^147); the switch divides the flood by the dropped primes (to 2^41) and adds its
//! rounding (under 2^13), below `q' / 2t` (2^48). The masks `r` have `FLOOD_SEC` bits over the cross terms, so
//! over a whole task the masked sums are within `2^-STAT_SEC` of uniform. 51-bit primes are the widest these
//! bounds allow: four of them hold FM64's `2k + 75` bits (five were needed below 2^43), seven FM128's.

use std::sync::OnceLock;

use super::modular::{Modulus, inv_mod, mul_mod, mul_shoup, ntt_primes, reduce_once, shoup};
use super::ntt::Ntt;
use super::rlwe::{self, FLOOD_SEC, Hps, Params};
use crate::crypto::prg::Prg;
use crate::ring::Ring;

/// Plaintext primes are the largest below `2^T_BITS` that are `1 mod 2N` (above our AVX2 NTT's 50 bits: their
/// few NTTs per block take tfhe-ntt's, which the fewer primes more than pay for).
const T_BITS: u32 = 51;

/// One plaintext prime's constants.
struct Slot {
    t: Modulus,
    plan: Ntt,
    /// Rounding `round(t x / q')` over the returned ciphertexts' primes.
    hps: Hps,
    /// `q mod t` (Shoup constant mod `t`), for the encoding `round(q m / t)`.
    q_mod_t: (u64, u64),
    /// Per ciphertext prime `p_i`: `t^-1 mod p_i` with its Shoup constant.
    t_inv: Vec<(u64, u64)>,
}

/// The slot scheme for ring `Z_2^k`.
pub struct SlotParams {
    /// The ciphertext parameters.
    pub ct: &'static Params,
    slots: Vec<Slot>,
    /// Flooding noise bits (added at the full modulus, before the switch) for a sum of two plaintext products.
    pub flood: u32,
    /// Bits of the evaluator's mask `r` (uniform below `2^mask_bits`).
    pub mask_bits: u32,
    /// CRT constants: `(P / t_j)^-1 mod t_j` (Shoup), `(P / t_j) mod 2^k`, and `P mod 2^k`.
    crt: Vec<((u64, u64), u128, f64)>,
    p_mod: u128,
}

/// The slot parameters for `R`'s ring (built once per ring).
pub fn params<R: Ring>() -> &'static SlotParams {
    static CELLS: [OnceLock<SlotParams>; 2] = [const { OnceLock::new() }; 2];
    rlwe::per_ring::<R, _>(&CELLS, SlotParams::new)
}

impl SlotParams {
    fn new(k: u32) -> SlotParams {
        let ct = rlwe::params::<u64>();
        let n = ct.n;
        let mask_bits = 2 * k + 1 + FLOOD_SEC;
        // P must exceed the cross terms plus the mask, 2^(2k+1) + 2^mask_bits, with a bit to spare for the CRT
        // rounding.
        let mut primes = Vec::new();
        let mut log_p = 0.0;
        for t in ntt_primes(T_BITS, 16, n) {
            if log_p >= (mask_bits + 2) as f64 {
                break;
            }
            log_p += (t as f64).log2();
            primes.push(t);
        }
        let kept = &ct.primes[..ct.returned_limbs()];
        let q_all = &ct.primes;
        let slots = primes
            .iter()
            .map(|&t| {
                let q_mod_t = q_all.iter().fold(1u64, |acc, &p| mul_mod(acc, p % t, t));
                Slot {
                    t: Modulus::new(t),
                    plan: Ntt::new(n, t).expect("NTT-friendly plaintext prime"),
                    hps: Hps::new(kept, t as u128 - 1),
                    q_mod_t: shoup(q_mod_t, t),
                    t_inv: q_all.iter().map(|&p| shoup(inv_mod(t % p, p), p)).collect(),
                }
            })
            .collect();
        // Two plaintexts of ||a||_1 <= N t / 2 each; the flood, at the full modulus, smudges their noise with
        // FLOOD_SEC bits to spare.
        let t_max = *primes.iter().max().unwrap_or(&1) as u128;
        let flood = FLOOD_SEC + (128 - ct.noise(n as u128 * t_max).leading_zeros());
        let modk = |v: u128| if k >= 128 { v } else { v & ((1u128 << k) - 1) };
        let crt = primes
            .iter()
            .enumerate()
            .map(|(j, &t)| {
                let others = primes.iter().enumerate().filter(|&(i, _)| i != j);
                let hat_mod_t = others.clone().fold(1u64, |acc, (_, &o)| mul_mod(acc, o % t, t));
                let hat = others.fold(1u128, |acc, (_, &o)| acc.wrapping_mul(o as u128));
                (shoup(inv_mod(hat_mod_t, t), t), modk(hat), 1.0 / t as f64)
            })
            .collect();
        let p_mod = modk(primes.iter().fold(1u128, |acc, &t| acc.wrapping_mul(t as u128)));
        SlotParams { ct, slots, flood, mask_bits, crt, p_mod }
    }

    /// The number of plaintext primes.
    pub fn count(&self) -> usize {
        self.slots.len()
    }

    /// Slot values (ring elements or wider integers, reduced mod `t_j`) to the message polynomial's
    /// coefficients mod `t_j` (`N` of them; missing slots are zero).
    pub fn encode(&self, j: usize, values: impl Iterator<Item = u128>) -> Vec<u64> {
        let s = &self.slots[j];
        let mut poly = vec![0u64; self.ct.n];
        for (o, v) in poly.iter_mut().zip(values) {
            *o = s.t.reduce(v);
        }
        s.plan.normalize(&mut poly);
        s.plan.inv(&mut poly);
        poly
    }

    /// `round(q m / t_j) mod p_i` for each coefficient `m < t_j` of `poly`, prime by prime: with
    /// `q m = t_j a + b`, it is `a + [2b >= t_j]` and `a = -b t_j^-1 mod p_i`.
    pub fn scaled(&self, j: usize, poly: &[u64]) -> Vec<u64> {
        let s = &self.slots[j];
        let t = s.t.p;
        let b: Vec<u64> = poly.iter().map(|&m| mul_shoup(m, s.q_mod_t.0, s.q_mod_t.1, t)).collect();
        let mut out = Vec::with_capacity(self.ct.limbs() * poly.len());
        for (&p, &(w, ws)) in self.ct.primes.iter().zip(&s.t_inv) {
            out.extend(b.iter().map(|&b| {
                // -b t^-1 mod p, plus one when 2b >= t (branch-free).
                let a = reduce_once(p - mul_shoup(b, w, ws, p), p);
                reduce_once(a + (2 * b >= t) as u64, p)
            }));
        }
        out
    }

    /// An evaluator's plaintext: the message polynomial centred (`|a_i| <= t_j / 2`) as the ciphertext
    /// primes' plaintext in NTT form, with its `||a||_1`.
    pub fn plaintext(&self, j: usize, values: impl Iterator<Item = u128>) -> (Vec<u64>, u128) {
        let t = self.slots[j].t.p as i64;
        let coeffs: Vec<i64> =
            self.encode(j, values).into_iter().map(|c| c as i64 - (c as i64 > t / 2) as i64 * t).collect();
        let norm = coeffs.iter().map(|c| c.unsigned_abs() as u128).sum();
        (self.ct.ntt_of(&coeffs), norm)
    }

    /// A returned ciphertext's phase (coefficient form, kept primes) to its slot values mod `t_j`.
    pub fn decode(&self, j: usize, phase: &[u64]) -> Vec<u64> {
        let (s, n) = (&self.slots[j], self.ct.n);
        let limbs = self.ct.returned_limbs();
        let mut poly: Vec<u64> =
            (0..n).map(|c| s.hps.round_small((0..limbs).map(|i| phase[i * n + c]), s.t.p)).collect();
        s.plan.fwd(&mut poly);
        poly
    }

    /// The mask `r` (uniform below `2^mask_bits`) for `n` slots: its residues mod each `t_j` (slot-major per
    /// prime) and `-r mod 2^k` (the evaluator's share of the cross terms).
    pub fn mask<R: Ring>(&self, rng: &mut Prg, n: usize) -> (Vec<Vec<u64>>, Vec<R>) {
        let words = self.mask_bits.div_ceil(64) as usize;
        let top = self.mask_bits - 64 * (words as u32 - 1);
        let mut raw = vec![0u64; n * words];
        rng.fill(&mut raw);
        let mut residues = vec![Vec::with_capacity(n); self.count()];
        let mut shares = Vec::with_capacity(n);
        for r in raw.chunks_exact_mut(words) {
            if top < 64 {
                r[words - 1] &= (1u64 << top) - 1;
            }
            for (out, s) in residues.iter_mut().zip(&self.slots) {
                out.push(s.t.reduce_words(r));
            }
            shares.push(R::from_u128(r[0] as u128 | (r.get(1).copied().unwrap_or(0) as u128) << 64).neg());
        }
        (residues, shares)
    }

    /// The integer with residues `z_j` (below `P`, and far enough below that the CRT's rounding is exact), mod
    /// `2^k`: `sum_j u_j (P / t_j) - v P` with `u_j = z_j (P / t_j)^-1 mod t_j` and `v = round(sum_j u_j / t_j)`
    /// (the fraction left is the value over `P`, below 2^-2).
    pub fn crt<R: Ring>(&self, z: impl Iterator<Item = u64>) -> R {
        let (mut acc, mut v) = (R::ZERO, 0.0f64);
        for ((zj, ((w, ws), hat, inv)), s) in z.zip(&self.crt).zip(&self.slots) {
            let u = mul_shoup(zj, *w, *ws, s.t.p);
            acc = acc.add(R::from_u128(u as u128).mul(R::from_u128(*hat)));
            v += u as f64 * inv;
        }
        acc.sub(R::from_u128(v.round() as u128).mul(R::from_u128(self.p_mod)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::prg::Words;

    fn check<R: Ring>() {
        let sp = params::<R>();
        let k = R::BITS;
        let log_p: f64 = sp.slots.iter().map(|s| (s.t.p as f64).log2()).sum();
        assert!(log_p >= (sp.mask_bits + 2) as f64, "P is 2^{log_p}, the mask 2^{}", sp.mask_bits);
        // The flood smudges the plaintexts' noise, and decryption stays correct before the switch and after it
        // (the flood and noise over the dropped primes plus the rounding, ||s||_1 / 2 + 1 per prime).
        let ct = sp.ct;
        let dropped: f64 = ct.primes[ct.returned_limbs()..].iter().map(|&p| (p as f64).log2()).sum();
        let kept: f64 = ct.primes[..ct.returned_limbs()].iter().map(|&p| (p as f64).log2()).sum();
        let t_max = sp.slots.iter().map(|s| s.t.p).max().unwrap_or(0);
        let shaped = ct.noise(ct.n as u128 * t_max as u128);
        assert!((shaped as f64).log2() + FLOOD_SEC as f64 <= sp.flood as f64, "the flood smudges the shaped noise");
        let before = 2f64.powi(sp.flood as i32) + shaped as f64;
        let t_max = t_max as f64;
        assert!(before.log2() + 2.0 < kept + dropped - t_max.log2() - 1.0, "noise 2^{} against q/2t", before.log2());
        let rounding = (ct.limbs() - ct.returned_limbs()) as f64 * (ct.n as f64 / 2.0 + 1.0);
        let after = 2f64.powf(before.log2() - dropped) + rounding;
        assert!(after.log2() + 2.0 < kept - t_max.log2() - 1.0, "noise 2^{} against q'/2t", after.log2());
        // Encrypt x, multiply by the plaintext y, add the mask r, flood, switch down, decrypt: x y + r per slot.
        let mut rng = Prg::new([3; 16], 0);
        let mut sk = rlwe::SecretKey::new(ct, Prg::new([4; 16], 0));
        let pk = rlwe::PublicKey::new(ct, sk.public_key([5; 16]), [5; 16]);
        let (r, _) = sp.mask::<R>(&mut rng, ct.n);
        let positions: Vec<usize> = (0..ct.n).collect();
        for (j, rj) in r.iter().enumerate() {
            let t = sp.slots[j].t.p as u128;
            let mut draw =
                |n: usize| -> Vec<u128> { (0..n).map(|_| (rng.word() as u128) << 64 | rng.word() as u128).collect() };
            let (x, y) = (draw(ct.n), draw(ct.n - 3));
            let m = sp.encode(j, x.iter().copied());
            let c0 = sk.encrypt_with(&mut rng.fork(), &sp.scaled(j, &m), [6; 16], j as u64);
            let (c0, c1) = rlwe::received(ct, c0, [6; 16], j as u64);
            let (pt, norm) = sp.plaintext(j, y.iter().copied());
            let mut prod = rlwe::Product::new(rlwe::ZeroEnc::new(ct, &pk, &mut rng));
            prod.add(ct, (&pt, norm), &c0, &c1);
            let mr = sp.encode(j, rj.iter().map(|&v| v as u128));
            let (c1, c0) =
                prod.finish_with(ct, (&positions, sp.flood), &sp.scaled(j, &mr), &mut rng).expect("within the norm");
            let got = sp.decode(j, &sk.phase(&c1, &c0));
            for s in 0..ct.n {
                let want = ((x[s] % t) * (y.get(s).copied().unwrap_or(0) % t) % t + rj[s] as u128) % t;
                assert_eq!(got[s] as u128, want, "prime {j} slot {s}");
            }
        }
        // CRT: integers up to 2^(2k + 42) come back mod 2^k.
        for i in 0..2000u64 {
            let words: Vec<u64> = (0..((2 * k + 42) as usize).div_ceil(64)).map(|_| rng.word()).collect();
            let bits = [2 * k + 42, 2 * k, 64, 1][i as usize % 4];
            let mut w = words.clone();
            for (at, x) in w.iter_mut().enumerate() {
                let lo = 64 * at as u32;
                *x = if bits <= lo {
                    0
                } else if bits - lo >= 64 {
                    *x
                } else {
                    *x & ((1u64 << (bits - lo)) - 1)
                };
            }
            let residues =
                sp.slots.iter().map(|s| w.iter().rev().fold(0u64, |a, &x| s.t.reduce((a as u128) << 64 | x as u128)));
            let want = R::from_u128(w[0] as u128 | (w.get(1).copied().unwrap_or(0) as u128) << 64);
            assert_eq!(sp.crt::<R>(residues), want, "{bits} bits");
        }
    }

    #[test]
    fn slot_parameters_encoding_and_crt_hold_on_both_rings() {
        // 51-bit primes: four hold FM64's cross terms and masks, seven FM128's.
        assert_eq!((params::<u64>().count(), params::<u128>().count()), (4, 7));
        check::<u64>();
        check::<u128>();
    }
}
