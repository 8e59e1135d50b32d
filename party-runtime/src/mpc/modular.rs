//! Arithmetic modulo word-sized primes for the lattice code: Shoup's multiplication by constants, branch-free
//! reductions (the operands are random, so branches would mispredict half the time), signed residues,
//! NTT-friendly primes, and [`Modulus`], a prime with the constants to reduce wider integers without
//! division.

/// `w` with its Shoup constant `floor(w 2^64 / p)`.
pub(super) fn shoup(w: u64, p: u64) -> (u64, u64) {
    (w, (((w as u128) << 64) / p as u128) as u64)
}

/// `a + b mod p` for `a, b <= p` (either may be `p` itself, as `p - 0` is). Branch-free (the operands are
/// random, so branches would mispredict half the time): `x.min(x - p)` subtracts `p` exactly when `x >= p`,
/// since `x - p` wraps to above `2^63` otherwise (`p < 2^63`).
#[inline]
pub(super) fn add_mod(a: u64, b: u64, p: u64) -> u64 {
    let s = a + b;
    let s = s.min(s.wrapping_sub(p));
    s.min(s.wrapping_sub(p))
}

/// `x mod p` for `x < 2p`, branch-free (see [`add_mod`]).
#[inline]
pub(super) fn reduce_once(x: u64, p: u64) -> u64 {
    x.min(x.wrapping_sub(p))
}

#[inline]
pub(super) fn mul_mod(a: u64, b: u64, p: u64) -> u64 {
    ((a as u128 * b as u128) % p as u128) as u64
}

/// `x w mod p` for a constant `w` with `ws = floor(w 2^64 / p)` (Shoup's method; `p < 2^63`).
#[inline]
pub(super) fn mul_shoup(x: u64, w: u64, ws: u64, p: u64) -> u64 {
    let q = ((x as u128 * ws as u128) >> 64) as u64;
    reduce_once(x.wrapping_mul(w).wrapping_sub(q.wrapping_mul(p)), p)
}

pub(super) fn pow_mod(mut b: u64, mut e: u64, p: u64) -> u64 {
    let mut r = 1;
    while e > 0 {
        if e & 1 == 1 {
            r = mul_mod(r, b, p);
        }
        b = mul_mod(b, b, p);
        e >>= 1;
    }
    r
}

pub(super) fn pow2_mod(k: u32, p: u64) -> u64 {
    pow_mod(2, k as u64, p)
}

pub(super) fn inv_mod(a: u64, p: u64) -> u64 {
    pow_mod(a, p - 2, p)
}

/// Deterministic Miller-Rabin for 64-bit integers.
pub(super) fn is_prime(n: u64) -> bool {
    const BASES: [u64; 12] = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37];
    if n < 2 {
        return false;
    }
    if let Some(&b) = BASES.iter().find(|&&b| n.is_multiple_of(b)) {
        return n == b;
    }
    let (mut d, mut s) = (n - 1, 0);
    while d.is_multiple_of(2) {
        d /= 2;
        s += 1;
    }
    BASES.iter().all(|&a| {
        let mut x = pow_mod(a, d, n);
        if x == 1 || x == n - 1 {
            return true;
        }
        for _ in 1..s {
            x = mul_mod(x, x, n);
            if x == n - 1 {
                return true;
            }
        }
        false
    })
}

/// The `count` largest primes below `2^bits` that are `1 mod 2N` (so the negacyclic NTT exists).
pub(super) fn ntt_primes(bits: u32, count: usize, n: usize) -> Vec<u64> {
    let step = 2 * n as u64;
    let mut p = ((1u64 << bits) - 1) / step * step + 1;
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        if is_prime(p) {
            out.push(p);
        }
        p -= step;
    }
    out
}

/// A signed integer reduced mod `p`.
#[inline]
pub(super) fn signed_mod(v: i128, p: u64) -> u64 {
    if v.unsigned_abs() < p as u128 {
        return small_mod(v as i64, p);
    }
    if let Ok(small) = i64::try_from(v) {
        let r = small % p as i64;
        (if r < 0 { r + p as i64 } else { r }) as u64
    } else {
        v.rem_euclid(p as i128) as u64
    }
}

/// A small signed integer (`|v| < p`) reduced mod `p`, branch-free (adds `p` when the sign bit is set).
#[inline]
pub(super) fn small_mod(v: i64, p: u64) -> u64 {
    (v + ((v >> 63) & p as i64)) as u64
}

/// A prime with the constants of division-free reduction.
pub(super) struct Modulus {
    /// The prime.
    pub(super) p: u64,
    /// `floor(2^64 / p)`.
    one_s: u64,
    /// `2^(64 i) mod p` with their Shoup constants, for `i < WORDS`.
    powers: [(u64, u64); WORDS],
}

/// The widest integer [`Modulus::reduce_words`] takes, in 64-bit words.
const WORDS: usize = 5;

impl Modulus {
    pub(super) fn new(p: u64) -> Modulus {
        let r64 = ((1u128 << 64) % p as u128) as u64;
        let mut powers = [shoup(1, p); WORDS];
        for i in 1..WORDS {
            powers[i] = shoup(mul_mod(powers[i - 1].0, r64, p), p);
        }
        Modulus { p, one_s: shoup(1, p).1, powers }
    }

    /// `x mod p` for any 64-bit `x` (one Shoup step).
    #[inline]
    pub(super) fn reduce_word(&self, x: u64) -> u64 {
        mul_shoup(x, 1, self.one_s, self.p)
    }

    /// `hi 2^64 + lo` mod `p` for a signed `hi`, without a wide remainder: the value's three words of two's
    /// complement are the value plus `2^192` when it is negative, so that power's residue comes off again.
    #[inline]
    pub(super) fn reduce_signed(&self, hi: i128, lo: u64) -> u64 {
        let p = self.p;
        let r = self.reduce_words(&[lo, hi as u64, (hi >> 64) as u64]);
        let negative = 0u64.wrapping_sub((hi < 0) as u64);
        reduce_once(r + ((p - self.powers[3].0) & negative), p)
    }

    /// The integer `sum_i words_i 2^(64 i)` mod `p` (Shoup's product takes any 64-bit multiplicand).
    #[inline]
    pub(super) fn reduce_words(&self, words: &[u64]) -> u64 {
        let p = self.p;
        words.iter().zip(&self.powers).fold(0u64, |acc, (&w, &(c, cs))| reduce_once(acc + mul_shoup(w, c, cs, p), p))
    }

    /// `x mod p`.
    #[inline]
    pub(super) fn reduce(&self, x: u128) -> u64 {
        let lo = self.reduce_word(x as u64);
        if x >> 64 == 0 {
            return lo;
        }
        let (r64, r64_s) = self.powers[1];
        reduce_once(mul_shoup(self.reduce_word((x >> 64) as u64), r64, r64_s, self.p) + lo, self.p)
    }
}
