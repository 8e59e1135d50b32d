//! Four field elements at once with AVX2 (`vpmuludq`, 32 x 32 -> 64-bit products): each element in ten limbs of
//! 26 and 25 bits alternately (radix `2^25.5`, as in ref10), one `__m256i` per limb holding the four lanes'
//! limbs in its 64-bit words. A product is the schoolbook 100 limb products with the `2^255 = 19` fold
//! precomputed into the second operand (`19 g_j`) and the odd-odd products doubled (their offsets sum to one
//! more than the product's limb), then ref10's carry chain.
//!
//! Limbs stay below `2^26.1` between operations, so every operand of a 32-bit multiply fits and each 64-bit
//! column stays below `2^61`. Safe code through pulp, as [`super::ifma`]: the [`V3`] token proves AVX2.

// Limb loops index several arrays at once, and the unrolled products compare constant indices.
#![allow(clippy::needless_range_loop, clippy::absurd_extreme_comparisons)]

use core::arch::x86_64::__m256i;

use pulp::x86::V3;

use super::field::{Lanes, MASK, store_columns, unroll};

/// Four field elements, limb-major, radix `2^25.5`, with the token that lets them compute.
#[derive(Clone, Copy)]
pub(super) struct Avx2 {
    s: V3,
    v: [__m256i; 10],
}

type V = [__m256i; 10];

/// Bits of limb `i`.
const fn width(i: usize) -> u32 {
    if i.is_multiple_of(2) { 26 } else { 25 }
}

/// `4p` limb by limb, each limb at least `2^27 - 4`: above any operand's limb, so `a + 4p - b` never borrows.
const FOUR_P: [u64; 10] = {
    let mut l = [0u64; 10];
    let mut i = 0;
    while i < 10 {
        l[i] = 4 * ((1 << width(i)) - 1);
        i += 1;
    }
    l[0] = 4 * ((1 << 26) - 19);
    l
};

impl Avx2 {
    #[inline(always)]
    fn with(&self, v: V) -> Avx2 {
        Avx2 { s: self.s, v }
    }

    #[inline(always)]
    fn splat64(s: V3, x: u64) -> __m256i {
        s.avx._mm256_set1_epi64x(x as i64)
    }

    /// `19 x` as `16x + 2x + x` (x below `2^59`).
    #[inline(always)]
    fn times19(s: V3, x: __m256i) -> __m256i {
        let a = s.avx2;
        a._mm256_add_epi64(a._mm256_add_epi64(a._mm256_slli_epi64::<4>(x), a._mm256_slli_epi64::<1>(x)), x)
    }

    /// Pass limb `i`'s bits above 26 to limb `i + 1` (`i` even).
    #[inline(always)]
    fn carry26(s: V3, h: &mut V, i: usize) {
        let a = s.avx2;
        h[i + 1] = a._mm256_add_epi64(h[i + 1], a._mm256_srli_epi64::<26>(h[i]));
        h[i] = a._mm256_and_si256(h[i], Avx2::splat64(s, (1 << 26) - 1));
    }

    /// Pass limb `i`'s bits above 25 to limb `i + 1` (`i` odd), limb 9's to limb 0 times 19.
    #[inline(always)]
    fn carry25(s: V3, h: &mut V, i: usize) {
        let a = s.avx2;
        let c = a._mm256_srli_epi64::<25>(h[i]);
        h[i] = a._mm256_and_si256(h[i], Avx2::splat64(s, (1 << 25) - 1));
        if i == 9 {
            h[0] = a._mm256_add_epi64(h[0], Avx2::times19(s, c));
        } else {
            h[i + 1] = a._mm256_add_epi64(h[i + 1], c);
        }
    }

    /// ref10's carry chain for columns below `2^63`: two interleaved passes (0-4 and 4-9), then 9 into 0 and 0
    /// into 1; every limb ends within its width plus `2^15`. Written out, so every index is a constant.
    #[inline(always)]
    fn carry_full(s: V3, mut h: V) -> V {
        Avx2::carry26(s, &mut h, 0);
        Avx2::carry26(s, &mut h, 4);
        Avx2::carry25(s, &mut h, 1);
        Avx2::carry25(s, &mut h, 5);
        Avx2::carry26(s, &mut h, 2);
        Avx2::carry26(s, &mut h, 6);
        Avx2::carry25(s, &mut h, 3);
        Avx2::carry25(s, &mut h, 7);
        Avx2::carry26(s, &mut h, 4);
        Avx2::carry26(s, &mut h, 8);
        Avx2::carry25(s, &mut h, 9);
        Avx2::carry26(s, &mut h, 0);
        h
    }

    /// One parallel carry for limbs below `2^30` (sums and differences): each keeps its width and passes the
    /// rest up.
    #[inline(always)]
    fn carry_short(s: V3, h: V) -> V {
        let a = s.avx2;
        let (m26, m25) = (Avx2::splat64(s, (1 << 26) - 1), Avx2::splat64(s, (1 << 25) - 1));
        let mut out = h;
        let mut c = h;
        for i in (0..10).step_by(2) {
            c[i] = a._mm256_srli_epi64::<26>(h[i]);
            out[i] = a._mm256_and_si256(h[i], m26);
        }
        for i in (1..10).step_by(2) {
            c[i] = a._mm256_srli_epi64::<25>(h[i]);
            out[i] = a._mm256_and_si256(h[i], m25);
        }
        out[0] = a._mm256_add_epi64(out[0], Avx2::times19(s, c[9]));
        for i in 0..9 {
            out[i + 1] = a._mm256_add_epi64(out[i + 1], c[i]);
        }
        out
    }

    /// The five radix-2^51 limbs of every lane (limb pairs joined), each below `2^52`.
    #[inline(always)]
    fn join(self) -> [__m256i; 5] {
        let a = self.s.avx2;
        let v = Avx2::carry_short(self.s, self.v);
        let mut r = [v[0]; 5];
        for i in 0..5 {
            r[i] = a._mm256_add_epi64(v[2 * i], a._mm256_slli_epi64::<26>(v[2 * i + 1]));
        }
        r
    }

    /// Canonical radix-2^51 limbs in every lane (as [`super::field::canonical`] does for one).
    #[inline(always)]
    fn freeze(self) -> [__m256i; 5] {
        let (s, a) = (self.s, self.s.avx2);
        let mask = Avx2::splat64(s, MASK);
        let mut l = self.join();
        let mut q = a._mm256_srli_epi64::<51>(a._mm256_add_epi64(l[0], Avx2::splat64(s, 19)));
        for i in 1..5 {
            q = a._mm256_srli_epi64::<51>(a._mm256_add_epi64(l[i], q));
        }
        l[0] = a._mm256_add_epi64(l[0], Avx2::times19(s, q));
        for i in 0..4 {
            l[i + 1] = a._mm256_add_epi64(l[i + 1], a._mm256_srli_epi64::<51>(l[i]));
            l[i] = a._mm256_and_si256(l[i], mask);
        }
        l[4] = a._mm256_and_si256(l[4], mask);
        l
    }

    /// Lane bits of a vector whose words are all-ones or zero.
    #[inline(always)]
    fn lanes_of(s: V3, v: __m256i) -> u8 {
        s.avx._mm256_movemask_pd(s.avx._mm256_castsi256_pd(v)) as u8
    }
}

impl Lanes for Avx2 {
    type Ctx = V3;
    const LANES: usize = 4;

    #[inline(always)]
    fn splat(s: V3, limbs: [u64; 5]) -> Self {
        let mut v = [s.avx._mm256_setzero_si256(); 10];
        for i in 0..5 {
            v[2 * i] = Avx2::splat64(s, limbs[i] & ((1 << 26) - 1));
            v[2 * i + 1] = Avx2::splat64(s, limbs[i] >> 26);
        }
        Avx2 { s, v }
    }

    #[inline(always)]
    fn load(s: V3, lanes: &[[u64; 5]]) -> Self {
        let a = s.avx2;
        let mut v = [s.avx._mm256_setzero_si256(); 10];
        let mut column = [0u64; 4];
        for i in 0..5 {
            for l in 0..4 {
                column[l] = lanes[l][i];
            }
            let c: __m256i = pulp::cast(column);
            v[2 * i] = a._mm256_and_si256(c, Avx2::splat64(s, (1 << 26) - 1));
            v[2 * i + 1] = a._mm256_srli_epi64::<26>(c);
        }
        Avx2 { s, v }
    }

    #[inline(always)]
    fn store(self, out: &mut [[u64; 5]]) {
        let columns: [[u64; 4]; 5] = self.join().map(pulp::cast);
        store_columns(&columns, out);
    }

    #[inline(always)]
    fn add(self, b: Self) -> Self {
        let mut r = self.v;
        for i in 0..10 {
            r[i] = self.s.avx2._mm256_add_epi64(self.v[i], b.v[i]);
        }
        self.with(Avx2::carry_short(self.s, r))
    }

    #[inline(always)]
    fn sub(self, b: Self) -> Self {
        let a = self.s.avx2;
        let mut r = self.v;
        for i in 0..10 {
            r[i] = a._mm256_sub_epi64(a._mm256_add_epi64(self.v[i], Avx2::splat64(self.s, FOUR_P[i])), b.v[i]);
        }
        self.with(Avx2::carry_short(self.s, r))
    }

    #[inline(always)]
    fn mul(self, g: Self) -> Self {
        let (s, a) = (self.s, self.s.avx2);
        let (f, g) = (self.v, g.v);
        let mut g19 = g;
        for j in 0..10 {
            g19[j] = Avx2::times19(s, g[j]);
        }
        // Odd limb times odd limb: the offsets' sum is one bit past the column's, so use 2 f_i.
        let mut f2 = f;
        for i in (1..10).step_by(2) {
            f2[i] = a._mm256_add_epi64(f[i], f[i]);
        }
        let mut h = [s.avx._mm256_setzero_si256(); 10];
        unroll!(i in [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] => unroll!(j in [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] => {
            let x = if i % 2 == 1 && j % 2 == 1 { f2[i] } else { f[i] };
            let y = if i + j < 10 { g[j] } else { g19[j] };
            h[(i + j) % 10] = a._mm256_add_epi64(h[(i + j) % 10], a._mm256_mul_epu32(x, y));
        }));
        self.with(Avx2::carry_full(s, h))
    }

    /// 55 limb products instead of 100: each cross product once with its factor 2 on the left operand, the
    /// odd-odd doubling and the fold's 19 on the right (at most `38 f_j`, below `2^32`).
    #[inline(always)]
    fn square(self) -> Self {
        let (s, a) = (self.s, self.s.avx2);
        let f = self.v;
        let mut f2 = f;
        let mut f19 = f;
        let mut f38 = f;
        for i in 0..10 {
            f2[i] = a._mm256_add_epi64(f[i], f[i]);
            f19[i] = Avx2::times19(s, f[i]);
            f38[i] = a._mm256_add_epi64(f19[i], f19[i]);
        }
        let mut h = [s.avx._mm256_setzero_si256(); 10];
        unroll!(i in [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] => unroll!(j in [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] => if i <= j {
                let both_odd = i % 2 == 1 && j % 2 == 1;
                let x = if i < j { f2[i] } else { f[i] };
                let y = match (both_odd, i + j >= 10) {
                    (false, false) => f[j],
                    (true, false) => f2[j],
                    (false, true) => f19[j],
                    (true, true) => f38[j],
                };
                h[(i + j) % 10] = a._mm256_add_epi64(h[(i + j) % 10], a._mm256_mul_epu32(x, y));
        }));
        self.with(Avx2::carry_full(s, h))
    }

    #[inline(always)]
    fn mul_small(self, k: u64) -> Self {
        let kk = Avx2::splat64(self.s, k);
        let mut h = self.v;
        for i in 0..10 {
            h[i] = self.s.avx2._mm256_mul_epu32(self.v[i], kk);
        }
        self.with(Avx2::carry_full(self.s, h))
    }

    #[inline(always)]
    fn select(mask: u8, a: Self, b: Self) -> Self {
        // All-ones words in the lanes whose bit is set, without branches.
        let bit = |l: u8| 0i64.wrapping_sub(((mask >> l) & 1) as i64);
        let m = a.s.avx._mm256_set_epi64x(bit(3), bit(2), bit(1), bit(0));
        let mut r = a.v;
        for i in 0..10 {
            r[i] = a.s.avx2._mm256_blendv_epi8(b.v[i], a.v[i], m);
        }
        a.with(r)
    }

    #[inline(always)]
    fn equal(self, b: Self) -> u8 {
        let a = self.s.avx2;
        let (x, y) = (self.freeze(), b.freeze());
        let mut all = a._mm256_cmpeq_epi64(x[0], y[0]);
        for i in 1..5 {
            all = a._mm256_and_si256(all, a._mm256_cmpeq_epi64(x[i], y[i]));
        }
        Avx2::lanes_of(self.s, all)
    }

    #[inline(always)]
    fn odd(self) -> u8 {
        let a = self.s.avx2;
        let one = Avx2::splat64(self.s, 1);
        Avx2::lanes_of(self.s, a._mm256_cmpeq_epi64(a._mm256_and_si256(self.freeze()[0], one), one))
    }

    #[inline(always)]
    fn cswap(a: &mut Self, b: &mut Self, bit: u64) {
        let x = a.s.avx2;
        let m = Avx2::splat64(a.s, 0u64.wrapping_sub(bit));
        for i in 0..10 {
            let t = x._mm256_and_si256(x._mm256_xor_si256(a.v[i], b.v[i]), m);
            a.v[i] = x._mm256_xor_si256(a.v[i], t);
            b.v[i] = x._mm256_xor_si256(b.v[i], t);
        }
    }
}
