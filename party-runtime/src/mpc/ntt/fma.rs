//! Negacyclic NTTs in `f64` lanes with AVX2 and FMA, for CPUs without AVX-512 IFMA (where tfhe-ntt's AVX2
//! code emulates 64-bit products with 32-bit ones and takes about twice as long).
//!
//! Exactness: residues below `p < 2^50` are integers an `f64` holds exactly. `y w mod p` is `y w - q p` with
//! `q = round(y * fl(w / p))`: for `|y| < 2p < 2^51` the computed quotient errs from `y w / p` by less than
//! 1/2, so `|q - y w / p| < 1` and the remainder lies in `(-p, p)`. One FMA splits `y w` exactly into
//! `hi + lo`, another computes `hi - q p` exactly (an integer below 2^53), so the remainder is exact.
//!
//! The butterflies are lazy (Harvey's): the forward transform keeps values in `[0, 4p)` (its `x` brought below
//! `2p`, its `y` shifted to `[-2p, 2p)`, outputs `x + p ± T`), the inverse in `[0, 2p)` (multiplying the
//! signed `x - y`); the pass that converts back to integers reduces below `p`. Stages whose blocks exceed [`CHUNK`] run over the whole array, then each chunk takes every
//! smaller stage while it is in cache; the last two stages pair vectors with lane shuffles.

use core::arch::x86_64::{__m256d, __m256i};

use pulp::x86::V3;

use super::super::modular::{inv_mod, mul_mod};

/// Elements a chunk takes through its small stages at once (16 KB).
const CHUNK: usize = 2048;
/// `2^52` as the bits of an `f64`: OR-ed into an integer below `2^52`, it gives `2^52 + x`.
const MAGIC_BITS: u64 = 0x4330_0000_0000_0000;
const MAGIC: f64 = 4_503_599_627_370_496.0;

type Lanes = [u64; 4];

/// One twiddle per block (stages whose half-blocks span whole vectors): `w` and `fl(w / p)`.
struct Twiddles {
    w: Vec<f64>,
    q: Vec<f64>,
}

/// Twiddles of the last two stages, laid out per pair of vectors in the lanes the shuffles produce.
struct Paired {
    w: Vec<[f64; 4]>,
    q: Vec<[f64; 4]>,
}

/// The FMA path's plan for one size and prime.
pub(super) struct FmaPlan {
    simd: V3,
    n: usize,
    p: f64,
    fwd: Twiddles,
    inv: Twiddles,
    /// Forward stages with half-blocks of 2 and 1, inverse likewise.
    fwd2: Paired,
    fwd1: Paired,
    inv2: Paired,
    inv1: Paired,
    /// `n^-1 mod p` and its quotient by `p`.
    n_inv: (f64, f64),
}

impl FmaPlan {
    /// The plan with tfhe-ntt's root of unity (so both paths give the same evaluations), `None` if the CPU
    /// lacks AVX2 or FMA, `p >= 2^50` or `n < 16`.
    pub(super) fn new(tfhe: &tfhe_ntt::prime64::Plan, n: usize, p: u64) -> Option<FmaPlan> {
        let simd = V3::try_new()?;
        if p >= 1 << super::FMA_PRIME_BITS || n < 16 || !n.is_power_of_two() {
            return None;
        }
        // tfhe-ntt's first output (bit-reversed index 0) of the polynomial X is its root psi.
        let mut x = vec![0u64; n];
        x[1] = 1;
        tfhe.fwd(&mut x);
        let psi = x[0];
        // psi^k for k < n, then psi^-k = -psi^(n-k) (psi^n = -1).
        let mut pow = Vec::with_capacity(n);
        let mut acc = 1u64;
        for _ in 0..n {
            pow.push(acc);
            acc = mul_mod(acc, psi, p);
        }
        if acc != p - 1 {
            return None;
        }
        let inv_pow: Vec<u64> = (0..n).map(|k| if k == 0 { 1 } else { p - pow[n - k] }).collect();
        let bits = n.trailing_zeros();
        let rev = |j: usize| j.reverse_bits() >> (usize::BITS - bits);
        let pf = p as f64;
        let table = |pow: &[u64]| {
            let w: Vec<f64> = (0..n).map(|j| pow[rev(j)] as f64).collect();
            let q = w.iter().map(|w| w / pf).collect();
            Twiddles { w, q }
        };
        let (fwd, inv) = (table(&pow), table(&inv_pow));
        let n_inv = inv_mod(n as u64 % p, p) as f64;
        Some(FmaPlan {
            simd,
            n,
            p: pf,
            fwd2: paired2(&fwd, n),
            fwd1: paired1(&fwd, n),
            inv2: paired2(&inv, n),
            inv1: paired1(&inv, n),
            fwd,
            inv,
            n_inv: (n_inv, n_inv / pf),
        })
    }

    pub(super) fn fwd(&self, data: &mut [u64]) {
        assert_eq!(data.len(), self.n, "NTT size");
        self.simd.vectorize(Transform { plan: self, data, forward: true });
    }

    pub(super) fn inv(&self, data: &mut [u64]) {
        assert_eq!(data.len(), self.n, "NTT size");
        self.simd.vectorize(Transform { plan: self, data, forward: false });
    }

    pub(super) fn normalize(&self, data: &mut [u64]) {
        self.simd.vectorize(Normalize { plan: self, data });
    }

    pub(super) fn mul_accumulate(&self, acc: &mut [u64], a: &[u64], b: &[u64]) {
        assert!(acc.len() == a.len() && a.len() == b.len(), "operand lengths");
        self.simd.vectorize(MulAcc { plan: self, acc, a, b });
    }

    fn consts(&self) -> Consts {
        let avx = self.simd.avx;
        Consts {
            s: self.simd,
            p: avx._mm256_set1_pd(self.p),
            two_p: avx._mm256_set1_pd(2.0 * self.p),
            zero: avx._mm256_setzero_pd(),
            magic: avx._mm256_set1_pd(MAGIC),
            magic_bits: avx._mm256_set1_epi64x(MAGIC_BITS as i64),
        }
    }
}

/// Stage `t = 2` (`m = n / 4` blocks): a vector pair covers blocks `2k, 2k + 1`, lanes `[a a b b]`.
fn paired2(t: &Twiddles, n: usize) -> Paired {
    let m = n / 4;
    let lanes = |v: &[f64]| -> Vec<[f64; 4]> {
        (0..m / 2).map(|k| [v[m + 2 * k], v[m + 2 * k], v[m + 2 * k + 1], v[m + 2 * k + 1]]).collect()
    };
    Paired { w: lanes(&t.w), q: lanes(&t.q) }
}

/// Stage `t = 1` (`m = n / 2` blocks): a vector pair covers blocks `4k..4k + 4`, lanes in the order
/// `unpacklo` / `unpackhi` leave them: `[4k, 4k + 2, 4k + 1, 4k + 3]`.
fn paired1(t: &Twiddles, n: usize) -> Paired {
    let m = n / 2;
    let lanes = |v: &[f64]| -> Vec<[f64; 4]> {
        (0..m / 4).map(|k| m + 4 * k).map(|b| [v[b], v[b + 2], v[b + 1], v[b + 3]]).collect()
    };
    Paired { w: lanes(&t.w), q: lanes(&t.q) }
}

/// Broadcast constants of one call.
#[derive(Clone, Copy)]
struct Consts {
    s: V3,
    p: __m256d,
    two_p: __m256d,
    zero: __m256d,
    magic: __m256d,
    magic_bits: __m256i,
}

impl Consts {
    /// Integers below `2^52` to `f64` (exact).
    #[inline(always)]
    fn float(&self, x: Lanes) -> __m256d {
        let bits = self.s.avx2._mm256_or_si256(pulp::cast(x), self.magic_bits);
        self.s.avx._mm256_sub_pd(self.s.avx._mm256_castsi256_pd(bits), self.magic)
    }

    /// Integral `f64` values in `[0, 2^52)` back to integers.
    #[inline(always)]
    fn int(&self, v: __m256d) -> Lanes {
        let bits = self.s.avx._mm256_castpd_si256(self.s.avx._mm256_add_pd(v, self.magic));
        pulp::cast(self.s.avx2._mm256_xor_si256(bits, self.magic_bits))
    }

    /// `v - m` where `v >= m`.
    #[inline(always)]
    fn sub_if_ge(&self, v: __m256d, m: __m256d) -> __m256d {
        let ge = self.s.avx._mm256_cmp_pd::<13>(v, m); // _CMP_GE_OS
        self.s.avx._mm256_sub_pd(v, self.s.avx._mm256_and_pd(ge, m))
    }

    /// `v + p` where `v < 0`.
    #[inline(always)]
    fn add_p_if_neg(&self, v: __m256d) -> __m256d {
        let neg = self.s.avx._mm256_cmp_pd::<1>(v, self.zero); // _CMP_LT_OS
        self.s.avx._mm256_add_pd(v, self.s.avx._mm256_and_pd(neg, self.p))
    }

    /// `[0, 4p)` to `[0, p)`.
    #[inline(always)]
    fn reduce(&self, v: __m256d) -> __m256d {
        self.sub_if_ge(self.sub_if_ge(v, self.two_p), self.p)
    }

    /// `y w mod p` in `(-p, p)` for `|y| < 2p`, with `q = fl(w / p)` (see the module documentation).
    #[inline(always)]
    fn mul_lazy(&self, y: __m256d, w: __m256d, q: __m256d) -> __m256d {
        let (avx, fma) = (self.s.avx, self.s.fma);
        let quot = avx._mm256_round_pd::<0x08>(avx._mm256_mul_pd(y, q)); // nearest, no exceptions
        let hi = avx._mm256_mul_pd(y, w);
        let lo = fma._mm256_fmsub_pd(y, w, hi);
        avx._mm256_add_pd(fma._mm256_fnmadd_pd(quot, self.p, hi), lo)
    }

    /// Cooley-Tukey: `(x, y)` in `[0, 4p)` to `(x + y w, x - y w)` in `(0, 4p)`.
    #[inline(always)]
    fn fwd_bf(&self, x: __m256d, y: __m256d, w: __m256d, q: __m256d) -> (__m256d, __m256d) {
        let t = self.mul_lazy(self.s.avx._mm256_sub_pd(y, self.two_p), w, q);
        let xp = self.s.avx._mm256_add_pd(self.sub_if_ge(x, self.two_p), self.p);
        (self.s.avx._mm256_add_pd(xp, t), self.s.avx._mm256_sub_pd(xp, t))
    }

    /// Gentleman-Sande: `(x, y)` in `[0, 2p)` to `(x + y, (x - y) w)` in `[0, 2p)`.
    #[inline(always)]
    fn inv_bf(&self, x: __m256d, y: __m256d, w: __m256d, q: __m256d) -> (__m256d, __m256d) {
        let avx = self.s.avx;
        let s = self.sub_if_ge(avx._mm256_add_pd(x, y), self.two_p);
        (s, avx._mm256_add_pd(self.mul_lazy(avx._mm256_sub_pd(x, y), w, q), self.p))
    }
}

/// One stage with half-blocks of `t >= 4` elements over `v`, whose first block uses twiddle `first`.
#[inline(always)]
fn stage(c: &Consts, v: &mut [Lanes], t: usize, tw: &Twiddles, first: usize, forward: bool) {
    let half = t / 4;
    for (i, block) in v.chunks_exact_mut(2 * half).enumerate() {
        let w = c.s.avx._mm256_set1_pd(tw.w[first + i]);
        let q = c.s.avx._mm256_set1_pd(tw.q[first + i]);
        let (z0, z1) = block.split_at_mut(half);
        for (a, b) in z0.iter_mut().zip(z1) {
            let (x, y) = (pulp::cast(*a), pulp::cast(*b));
            let (x, y) = if forward { c.fwd_bf(x, y, w, q) } else { c.inv_bf(x, y, w, q) };
            (*a, *b) = (pulp::cast(x), pulp::cast(y));
        }
    }
}

/// The stage with half-blocks of 2 (`wide`) or 1 over `v`, whose first vector pair is `first` of `tw`.
#[inline(always)]
fn paired_stage(c: &Consts, v: &mut [Lanes], tw: &Paired, first: usize, wide: bool, forward: bool) {
    let avx = c.s.avx;
    for (k, pair) in v.chunks_exact_mut(2).enumerate() {
        let (x, y): (__m256d, __m256d) = (pulp::cast(pair[0]), pulp::cast(pair[1]));
        let (z0, z1) = if wide {
            (avx._mm256_permute2f128_pd::<0x20>(x, y), avx._mm256_permute2f128_pd::<0x31>(x, y))
        } else {
            (avx._mm256_unpacklo_pd(x, y), avx._mm256_unpackhi_pd(x, y))
        };
        let (w, q) = (pulp::cast(tw.w[first + k]), pulp::cast(tw.q[first + k]));
        let (z0, z1) = if forward { c.fwd_bf(z0, z1, w, q) } else { c.inv_bf(z0, z1, w, q) };
        let (x, y) = if wide {
            (avx._mm256_permute2f128_pd::<0x20>(z0, z1), avx._mm256_permute2f128_pd::<0x31>(z0, z1))
        } else {
            (avx._mm256_unpacklo_pd(z0, z1), avx._mm256_unpackhi_pd(z0, z1))
        };
        (pair[0], pair[1]) = (pulp::cast(x), pulp::cast(y));
    }
}

/// One transform in place: to `f64`, the stages, back to integers below `p`.
struct Transform<'a> {
    plan: &'a FmaPlan,
    data: &'a mut [u64],
    forward: bool,
}

impl pulp::NullaryFnOnce for Transform<'_> {
    type Output = ();

    #[inline(always)]
    fn call(self) {
        let (plan, c) = (self.plan, self.plan.consts());
        let v = pulp::as_arrays_mut::<4, _>(self.data).0;
        for x in v.iter_mut() {
            *x = pulp::cast(c.float(*x));
        }
        if self.forward {
            forward(plan, &c, v)
        } else {
            inverse(plan, &c, v)
        }
        for x in v.iter_mut() {
            *x = c.int(c.reduce(pulp::cast(*x)));
        }
    }
}

/// Cooley-Tukey stages: the large ones over the whole array, then each chunk through the rest.
#[inline(always)]
fn forward(plan: &FmaPlan, c: &Consts, v: &mut [Lanes]) {
    let n = plan.n;
    let (mut t, mut m) = (n / 2, 1);
    while 2 * t > CHUNK {
        stage(c, v, t, &plan.fwd, m, true);
        (t, m) = (t / 2, m * 2);
    }
    let len = CHUNK.min(n);
    for (ci, chunk) in v.chunks_exact_mut(len / 4).enumerate() {
        let (mut t, mut m) = (t, m);
        while t >= 4 {
            stage(c, chunk, t, &plan.fwd, m + ci * (len / (2 * t)), true);
            (t, m) = (t / 2, m * 2);
        }
        paired_stage(c, chunk, &plan.fwd2, ci * len / 8, true, true);
        paired_stage(c, chunk, &plan.fwd1, ci * len / 8, false, true);
    }
}

/// Gentleman-Sande stages in the reverse order: each chunk through the small ones, then the large ones.
#[inline(always)]
fn inverse(plan: &FmaPlan, c: &Consts, v: &mut [Lanes]) {
    let n = plan.n;
    let len = CHUNK.min(n);
    for (ci, chunk) in v.chunks_exact_mut(len / 4).enumerate() {
        paired_stage(c, chunk, &plan.inv1, ci * len / 8, false, false);
        paired_stage(c, chunk, &plan.inv2, ci * len / 8, true, false);
        let (mut t, mut m) = (4, n / 8);
        while 2 * t <= len {
            stage(c, chunk, t, &plan.inv, m + ci * (len / (2 * t)), false);
            (t, m) = (t * 2, m / 2);
        }
    }
    let (mut t, mut m) = (len, n / (2 * len));
    while t < n {
        stage(c, v, t, &plan.inv, m, false);
        (t, m) = (t * 2, m / 2);
    }
}

struct Normalize<'a> {
    plan: &'a FmaPlan,
    data: &'a mut [u64],
}

impl pulp::NullaryFnOnce for Normalize<'_> {
    type Output = ();

    #[inline(always)]
    fn call(self) {
        let (plan, c) = (self.plan, self.plan.consts());
        let (w, q) = (c.s.avx._mm256_set1_pd(plan.n_inv.0), c.s.avx._mm256_set1_pd(plan.n_inv.1));
        let (v, tail) = pulp::as_arrays_mut::<4, _>(self.data);
        for x in v.iter_mut() {
            *x = c.int(c.add_p_if_neg(c.mul_lazy(c.float(*x), w, q)));
        }
        let (p, n_inv) = (plan.p as u64, plan.n_inv.0 as u64);
        for x in tail {
            *x = mul_mod(*x, n_inv, p);
        }
    }
}

struct MulAcc<'a> {
    plan: &'a FmaPlan,
    acc: &'a mut [u64],
    a: &'a [u64],
    b: &'a [u64],
}

impl pulp::NullaryFnOnce for MulAcc<'_> {
    type Output = ();

    /// `acc + a b mod p` with `q = round(fl(a b) fl(1 / p))`: `a b / p < p < 2^50` errs by under 3/8, so the
    /// remainder is in `(-p, p)` and the sum in `(-p, 2p)`.
    #[inline(always)]
    fn call(self) {
        let (plan, c) = (self.plan, self.plan.consts());
        let (avx, fma) = (c.s.avx, c.s.fma);
        let p_inv = avx._mm256_set1_pd(1.0 / plan.p);
        let (acc, acc_tail) = pulp::as_arrays_mut::<4, _>(self.acc);
        let (a, a_tail) = pulp::as_arrays::<4, _>(self.a);
        let (b, b_tail) = pulp::as_arrays::<4, _>(self.b);
        for ((r, a), b) in acc.iter_mut().zip(a).zip(b) {
            let (x, y) = (c.float(*a), c.float(*b));
            let hi = avx._mm256_mul_pd(x, y);
            let lo = fma._mm256_fmsub_pd(x, y, hi);
            let quot = avx._mm256_round_pd::<0x08>(avx._mm256_mul_pd(hi, p_inv));
            let t = avx._mm256_add_pd(fma._mm256_fnmadd_pd(quot, c.p, hi), lo);
            let sum = avx._mm256_add_pd(c.float(*r), t);
            *r = c.int(c.sub_if_ge(c.add_p_if_neg(sum), c.p));
        }
        let p = plan.p as u64;
        for ((r, a), b) in acc_tail.iter_mut().zip(a_tail).zip(b_tail) {
            *r = (*r + mul_mod(*a, *b, p)) % p;
        }
    }
}
