//! Eight field elements at once with AVX-512 IFMA (`vpmadd52luq` / `vpmadd52huq`, 52-bit multiply-add): the
//! radix-2^51 limbs of eight independent elements side by side, one 512-bit vector per limb. A product's 25 limb
//! products each give a low and a high 52-bit half; the high half weighs `2^52 = 2 * 2^51`, so the high sums are
//! doubled into the next column, and columns 5 to 9 fold back times 19 (`2^255 = 19 mod p`).
//!
//! The arithmetic is written over [`Ops52`], the few vector instructions it uses: [`Ifma52`] runs them on the
//! CPU (safe code through pulp: the token proves the features, everything is `#[inline(always)]` inside the
//! token's `vectorize`), and the tests also run them on a plain-integer model of the same instructions, so this
//! file's arithmetic is checked on every machine, with or without IFMA.

// Limb loops index several arrays at once, and the unrolled products compare constant indices.
#![allow(clippy::needless_range_loop, clippy::absurd_extreme_comparisons)]

use core::arch::x86_64::__m512i;

use super::field::{FOUR_P, Lanes, MASK, RADIX, store_columns, unroll};

pulp::simd_type! {
    /// AVX-512F with IFMA.
    pub struct Ifma52 {
        pub avx512f: "avx512f",
        pub avx512ifma: "avx512ifma",
    }
}

/// The instructions the arithmetic needs, on vectors of eight 64-bit words.
pub(super) trait Ops52: Copy {
    type V: Copy;
    fn splat(self, x: u64) -> Self::V;
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    fn sub(self, a: Self::V, b: Self::V) -> Self::V;
    fn and(self, a: Self::V, b: Self::V) -> Self::V;
    fn xor(self, a: Self::V, b: Self::V) -> Self::V;
    fn shl<const N: u32>(self, a: Self::V) -> Self::V;
    fn shr<const N: u32>(self, a: Self::V) -> Self::V;
    /// `acc` plus the low 52 bits of the product of `a` and `b`'s low 52 bits.
    fn madd_lo(self, acc: Self::V, a: Self::V, b: Self::V) -> Self::V;
    /// `acc` plus bits 52 to 103 of that product.
    fn madd_hi(self, acc: Self::V, a: Self::V, b: Self::V) -> Self::V;
    /// Word `i` from `a` where bit `i` of `mask` is set, else from `b`.
    fn blend(self, mask: u8, a: Self::V, b: Self::V) -> Self::V;
    /// Bit `i` set where words `i` are equal.
    fn eq(self, a: Self::V, b: Self::V) -> u8;
    fn of_words(self, w: [u64; 8]) -> Self::V;
    fn words(self, a: Self::V) -> [u64; 8];
}

impl Ops52 for Ifma52 {
    type V = __m512i;

    #[inline(always)]
    fn splat(self, x: u64) -> __m512i {
        self.avx512f._mm512_set1_epi64(x as i64)
    }
    #[inline(always)]
    fn add(self, a: __m512i, b: __m512i) -> __m512i {
        self.avx512f._mm512_add_epi64(a, b)
    }
    #[inline(always)]
    fn sub(self, a: __m512i, b: __m512i) -> __m512i {
        self.avx512f._mm512_sub_epi64(a, b)
    }
    #[inline(always)]
    fn and(self, a: __m512i, b: __m512i) -> __m512i {
        self.avx512f._mm512_and_si512(a, b)
    }
    #[inline(always)]
    fn xor(self, a: __m512i, b: __m512i) -> __m512i {
        self.avx512f._mm512_xor_si512(a, b)
    }
    #[inline(always)]
    fn shl<const N: u32>(self, a: __m512i) -> __m512i {
        self.avx512f._mm512_slli_epi64::<N>(a)
    }
    #[inline(always)]
    fn shr<const N: u32>(self, a: __m512i) -> __m512i {
        self.avx512f._mm512_srli_epi64::<N>(a)
    }
    #[inline(always)]
    fn madd_lo(self, acc: __m512i, a: __m512i, b: __m512i) -> __m512i {
        self.avx512ifma._mm512_madd52lo_epu64(acc, a, b)
    }
    #[inline(always)]
    fn madd_hi(self, acc: __m512i, a: __m512i, b: __m512i) -> __m512i {
        self.avx512ifma._mm512_madd52hi_epu64(acc, a, b)
    }
    #[inline(always)]
    fn blend(self, mask: u8, a: __m512i, b: __m512i) -> __m512i {
        // The intrinsic takes its second operand where the mask is set.
        self.avx512f._mm512_mask_blend_epi64(mask, b, a)
    }
    #[inline(always)]
    fn eq(self, a: __m512i, b: __m512i) -> u8 {
        self.avx512f._mm512_cmpeq_epi64_mask(a, b)
    }
    #[inline(always)]
    fn of_words(self, w: [u64; 8]) -> __m512i {
        pulp::cast(w)
    }
    #[inline(always)]
    fn words(self, a: __m512i) -> [u64; 8] {
        pulp::cast(a)
    }
}

/// Eight field elements, limb-major, with the instructions that compute on them.
#[derive(Clone, Copy)]
pub(super) struct Ifma<O: Ops52> {
    o: O,
    v: [O::V; 5],
}

impl<O: Ops52> Ifma<O> {
    #[inline(always)]
    fn with(&self, v: [O::V; 5]) -> Self {
        Ifma { o: self.o, v }
    }

    /// `19 x` as `16x + 2x + x` (x below `2^59`).
    #[inline(always)]
    fn times19(o: O, x: O::V) -> O::V {
        o.add(o.add(o.shl::<4>(x), o.shl::<1>(x)), x)
    }

    /// One parallel carry of limbs below `2^62`: each keeps 51 bits and passes the rest up, the top limb's to
    /// limb 0 times 19; the result's limbs are below `2^51 + 2^16`.
    #[inline(always)]
    fn carry(o: O, r: [O::V; 5]) -> [O::V; 5] {
        let mask = o.splat(MASK);
        let mut out = r;
        for i in 0..5 {
            out[i] = o.and(r[i], mask);
        }
        out[0] = o.add(out[0], Ifma::times19(o, o.shr::<RADIX>(r[4])));
        for i in 0..4 {
            out[i + 1] = o.add(out[i + 1], o.shr::<RADIX>(r[i]));
        }
        out
    }

    /// Columns `lo[k] + 2 hi[k-1]` of a product, folded mod p and carried.
    #[inline(always)]
    fn reduce(o: O, lo: [O::V; 10], hi: [O::V; 10]) -> [O::V; 5] {
        let mut col = lo;
        for k in 1..10 {
            col[k] = o.add(lo[k], o.shl::<1>(hi[k - 1]));
        }
        let mut r = [col[0]; 5];
        for k in 0..5 {
            r[k] = o.add(col[k], Ifma::times19(o, col[k + 5]));
        }
        Ifma::carry(o, r)
    }

    /// Canonical limbs in every lane, as [`super::field::canonical`] does for one.
    #[inline(always)]
    fn freeze(self) -> [O::V; 5] {
        let o = self.o;
        let mask = o.splat(MASK);
        let mut l = Ifma::carry(o, self.v);
        let mut q = o.shr::<RADIX>(o.add(l[0], o.splat(19)));
        for i in 1..5 {
            q = o.shr::<RADIX>(o.add(l[i], q));
        }
        l[0] = o.add(l[0], Ifma::times19(o, q));
        for i in 0..4 {
            l[i + 1] = o.add(l[i + 1], o.shr::<RADIX>(l[i]));
            l[i] = o.and(l[i], mask);
        }
        l[4] = o.and(l[4], mask);
        l
    }
}

impl<O: Ops52> Lanes for Ifma<O> {
    type Ctx = O;
    const LANES: usize = 8;

    #[inline(always)]
    fn splat(o: O, limbs: [u64; 5]) -> Self {
        Ifma { o, v: limbs.map(|x| o.splat(x)) }
    }

    #[inline(always)]
    fn load(o: O, lanes: &[[u64; 5]]) -> Self {
        let mut v = [o.splat(0); 5];
        for i in 0..5 {
            let mut column = [0u64; 8];
            for l in 0..8 {
                column[l] = lanes[l][i];
            }
            v[i] = o.of_words(column);
        }
        Ifma { o, v }
    }

    #[inline(always)]
    fn store(self, out: &mut [[u64; 5]]) {
        let columns: [[u64; 8]; 5] = self.v.map(|x| self.o.words(x));
        store_columns(&columns, out);
    }

    #[inline(always)]
    fn add(self, b: Self) -> Self {
        let o = self.o;
        let mut r = self.v;
        for i in 0..5 {
            r[i] = o.add(self.v[i], b.v[i]);
        }
        self.with(Ifma::carry(o, r))
    }

    #[inline(always)]
    fn sub(self, b: Self) -> Self {
        let o = self.o;
        let mut r = self.v;
        for i in 0..5 {
            r[i] = o.sub(o.add(self.v[i], o.splat(FOUR_P[i])), b.v[i]);
        }
        self.with(Ifma::carry(o, r))
    }

    #[inline(always)]
    fn mul(self, b: Self) -> Self {
        let o = self.o;
        let (a, b) = (self.v, b.v);
        let mut lo = [o.splat(0); 10];
        let mut hi = lo;
        unroll!(i in [0, 1, 2, 3, 4] => unroll!(j in [0, 1, 2, 3, 4] => {
            lo[i + j] = o.madd_lo(lo[i + j], a[i], b[j]);
            hi[i + j] = o.madd_hi(hi[i + j], a[i], b[j]);
        }));
        self.with(Ifma::reduce(o, lo, hi))
    }

    /// The cross products once, doubled by a shift, then the diagonal.
    #[inline(always)]
    fn square(self) -> Self {
        let o = self.o;
        let a = self.v;
        let mut lo = [o.splat(0); 10];
        let mut hi = lo;
        unroll!(i in [0, 1, 2, 3, 4] => unroll!(j in [0, 1, 2, 3, 4] => if i < j {
            lo[i + j] = o.madd_lo(lo[i + j], a[i], a[j]);
            hi[i + j] = o.madd_hi(hi[i + j], a[i], a[j]);
        }));
        for k in 0..10 {
            lo[k] = o.shl::<1>(lo[k]);
            hi[k] = o.shl::<1>(hi[k]);
        }
        for i in 0..5 {
            lo[2 * i] = o.madd_lo(lo[2 * i], a[i], a[i]);
            hi[2 * i] = o.madd_hi(hi[2 * i], a[i], a[i]);
        }
        self.with(Ifma::reduce(o, lo, hi))
    }

    #[inline(always)]
    fn mul_small(self, k: u64) -> Self {
        let o = self.o;
        let (kk, zero) = (o.splat(k), o.splat(0));
        let mut r = self.v;
        for i in 0..5 {
            r[i] = o.madd_lo(zero, self.v[i], kk);
        }
        for i in 0..5 {
            let hi = o.shl::<1>(o.madd_hi(zero, self.v[i], kk));
            if i == 4 {
                r[0] = o.add(r[0], Ifma::times19(o, hi));
            } else {
                r[i + 1] = o.add(r[i + 1], hi);
            }
        }
        self.with(Ifma::carry(o, r))
    }

    #[inline(always)]
    fn select(mask: u8, a: Self, b: Self) -> Self {
        let mut r = a.v;
        for i in 0..5 {
            r[i] = a.o.blend(mask, a.v[i], b.v[i]);
        }
        a.with(r)
    }

    #[inline(always)]
    fn equal(self, b: Self) -> u8 {
        let (x, y) = (self.freeze(), b.freeze());
        let mut m = 0xff;
        for i in 0..5 {
            m &= self.o.eq(x[i], y[i]);
        }
        m
    }

    #[inline(always)]
    fn odd(self) -> u8 {
        let o = self.o;
        let one = o.splat(1);
        o.eq(o.and(self.freeze()[0], one), one)
    }

    #[inline(always)]
    fn cswap(a: &mut Self, b: &mut Self, bit: u64) {
        let o = a.o;
        let m = o.splat(0u64.wrapping_sub(bit));
        for i in 0..5 {
            let t = o.and(o.xor(a.v[i], b.v[i]), m);
            a.v[i] = o.xor(a.v[i], t);
            b.v[i] = o.xor(b.v[i], t);
        }
    }
}

/// The instructions of [`Ops52`] on plain integers, with IFMA's exact semantics (only the low 52 bits of each
/// multiplicand count): the tests run this file's arithmetic on it where the CPU has no IFMA.
#[cfg(test)]
#[derive(Clone, Copy)]
pub(super) struct Model52;

#[cfg(test)]
impl Ops52 for Model52 {
    type V = [u64; 8];

    fn splat(self, x: u64) -> [u64; 8] {
        [x; 8]
    }
    fn add(self, a: [u64; 8], b: [u64; 8]) -> [u64; 8] {
        std::array::from_fn(|i| a[i].wrapping_add(b[i]))
    }
    fn sub(self, a: [u64; 8], b: [u64; 8]) -> [u64; 8] {
        std::array::from_fn(|i| a[i].wrapping_sub(b[i]))
    }
    fn and(self, a: [u64; 8], b: [u64; 8]) -> [u64; 8] {
        std::array::from_fn(|i| a[i] & b[i])
    }
    fn xor(self, a: [u64; 8], b: [u64; 8]) -> [u64; 8] {
        std::array::from_fn(|i| a[i] ^ b[i])
    }
    fn shl<const N: u32>(self, a: [u64; 8]) -> [u64; 8] {
        a.map(|x| x << N)
    }
    fn shr<const N: u32>(self, a: [u64; 8]) -> [u64; 8] {
        a.map(|x| x >> N)
    }
    fn madd_lo(self, acc: [u64; 8], a: [u64; 8], b: [u64; 8]) -> [u64; 8] {
        let m = (1u128 << 52) - 1;
        std::array::from_fn(|i| acc[i].wrapping_add((((a[i] as u128 & m) * (b[i] as u128 & m)) & m) as u64))
    }
    fn madd_hi(self, acc: [u64; 8], a: [u64; 8], b: [u64; 8]) -> [u64; 8] {
        let m = (1u128 << 52) - 1;
        std::array::from_fn(|i| acc[i].wrapping_add((((a[i] as u128 & m) * (b[i] as u128 & m)) >> 52) as u64))
    }
    fn blend(self, mask: u8, a: [u64; 8], b: [u64; 8]) -> [u64; 8] {
        std::array::from_fn(|i| if mask >> i & 1 == 1 { a[i] } else { b[i] })
    }
    fn eq(self, a: [u64; 8], b: [u64; 8]) -> u8 {
        (0..8).fold(0, |m, i| m | (((a[i] == b[i]) as u8) << i))
    }
    fn of_words(self, w: [u64; 8]) -> [u64; 8] {
        w
    }
    fn words(self, a: [u64; 8]) -> [u64; 8] {
        a
    }
}
