//! Functions built on comparison ([`super::millionaire`]): `<`, select, `max`, `clip`, `abs`, reciprocal,
//! inverse square root, `exp`, and SecretFlow's sigmoid approximations (and SPU's linear one). A comparison's
//! XOR-shared bit becomes an arithmetic share with one more OT per element; a multiplexer takes two.

use secretflow_crds::tasks::learning::SigType;

use super::engine::Mpc;
use super::local::{add, scale, sub};
use crate::error::Result;
use crate::ring::Ring;

/// Magnitude bound (bits above the fraction) of differences compared by `less`, `max`, `clip` and the sigmoids:
/// `|x - y| < 2^24`, so operands below `2^23` always work.
const INT_BITS: u32 = 24;

/// SecretFlow's `ls7` polynomial fit of the sigmoid (the `mix` approximation's inner part), lowest degree first.
pub(crate) const LS7: [f64; 8] = [
    5.00052959e-01,
    2.35176260e-01,
    -3.97212202e-05,
    -1.23407424e-02,
    4.04588962e-06,
    3.94330487e-04,
    -9.74060972e-08,
    -4.74674505e-06,
];

/// Fraction bits kept by the sigmoids' coarse comparisons.
const COARSE_FRAC: u32 = 12;
/// Magnitude bound of the sigmoids' coarse comparisons: `|x| < 2^16` (logits beyond are not meaningful).
const COARSE_INT: u32 = 16;

impl<R: Ring> Mpc<'_, R> {
    /// XOR shares of `x AND y` for XOR-shared bit vectors (values 0/1 in the low bit).
    pub(super) async fn and_bits(&mut self, x: &[R], y: &[R]) -> Result<Vec<R>> {
        self.and_bits_shared(x, y, 1).await
    }

    /// XOR shares of `x_i AND y_(i,j)` for `per` bits `y_(i,j)` per `x_i` (laid out `i * per + j`): one OT per
    /// direction and `x_i`, carrying all `per` bits of `y`.
    pub(super) async fn and_bits_shared(&mut self, x: &[R], y: &[R], per: usize) -> Result<Vec<R>> {
        let (s, r) = self.gilboa_both("mpc/and", (y, x), (per, per), 1, 1).await?;
        Ok(y.iter()
            .enumerate()
            .zip(s.iter().zip(&r))
            .map(|((i, y), (s, r))| x[i / per].mul(*y).add(*s).add(*r).low(1))
            .collect())
    }

    /// Arithmetic shares of XOR-shared bits: `b0 + b1 - 2 b0 b1`.
    async fn bits_to_arith(&mut self, b: &[R]) -> Result<Vec<R>> {
        let k = R::BITS;
        let prod = if self.me() == 0 {
            self.chunked_recv("mpc/b2a", b, 1, 1, k).await?
        } else {
            self.chunked_send("mpc/b2a", b, 1, 1, k).await?
        };
        Ok(b.iter().zip(&prod).map(|(b, p)| b.sub(p.shl(1))).collect())
    }

    /// `b * x` for XOR-shared bits `b` and shared `x`, two OTs per element (CrypTFlow2's multiplexer): with
    /// `b = b0 ^ b1 = b0 + b1 - 2 b0 b1`, each party multiplies its own share locally and, for the peer's bit,
    /// sends `(1 - 2 b_i) x_i` as the correlation of an OT the peer chooses with `b_j`.
    pub async fn mul_bit(&mut self, b: &[R], x: &[R]) -> Result<Vec<R>> {
        let k = R::BITS;
        let v: Vec<R> = b.iter().zip(x).map(|(b, x)| R::ONE.sub(b.shl(1)).mul(*x)).collect();
        let (s, r) = self.gilboa_both("mpc/mux", (&v, b), (1, 1), 1, k).await?;
        Ok(b.iter().zip(x).zip(s.iter().zip(&r)).map(|((b, x), (s, r))| b.mul(*x).add(*s).add(*r)).collect())
    }

    /// `b * x` as [`Mpc::mul_bit`] and the arithmetic shares of the bits `c` (as [`Mpc::bits_to_arith`]) in
    /// one round: the bit-to-arithmetic products ride along the multiplexer's OTs (node 0 choosing with its
    /// bits of `c` too, node 1 sending its own).
    async fn mul_bit_and_arith(&mut self, b: &[R], x: &[R], c: &[R]) -> Result<(Vec<R>, Vec<R>)> {
        let (n, me) = (b.len(), self.me());
        let mut v: Vec<R> = b.iter().zip(x).map(|(b, x)| R::ONE.sub(b.shl(1)).mul(*x)).collect();
        let mut choices = b.to_vec();
        if me == 0 { &mut choices } else { &mut v }.extend_from_slice(c);
        let (s, r) = self.gilboa_both("mpc/mux", (&v, &choices), (1, 1), 1, R::BITS).await?;
        let ((mux_s, prod_s), (mux_r, prod_r)) = (s.split_at(n), r.split_at(n));
        let bx = (0..n).map(|i| b[i].mul(x[i]).add(mux_s[i]).add(mux_r[i])).collect();
        let prod = if me == 0 { prod_r } else { prod_s };
        Ok((bx, c.iter().zip(prod).map(|(c, p)| c.sub(p.shl(1))).collect()))
    }

    /// Arithmetic shares of the sign bit (1 when negative) of each `x`, assuming `|x| < 2^bound` (raw units).
    pub async fn msb(&mut self, x: &[R], bound: u32) -> Result<Vec<R>> {
        let bits = self.msb_bits(x, bound).await?;
        self.bits_to_arith(&bits).await
    }

    /// Whether every `|x_i| < eps`, revealed to both as one bit (nothing else is opened).
    pub async fn all_below(&mut self, x: &[R], eps: f64) -> Result<bool> {
        let n = x.len();
        if n == 0 {
            return Ok(true);
        }
        let e = R::encode(eps, self.frac());
        let d = self.add_public(x, e);
        let neg = self.sign_pair_coarse(&d, e.add(e), self.frac() + INT_BITS, 0).await?;
        // inside_i = NOT neg(x + eps) AND NOT neg(eps - x); node 0 flips the shared bits.
        let flip = |b: &R| if self.me() == 0 { R::ONE.sub(*b).low(1) } else { *b };
        let (lo, hi): (Vec<R>, Vec<R>) = (neg[..n].iter().map(flip).collect(), neg[n..].iter().map(flip).collect());
        let mut acc = self.and_bits(&lo, &hi).await?;
        while acc.len() > 1 {
            let half = acc.len() / 2;
            let mut next = self.and_bits(&acc[..half], &acc[half..2 * half]).await?;
            if acc.len() % 2 == 1 {
                next.push(acc[acc.len() - 1]);
            }
            acc = next;
        }
        let opened = self.reveal(&acc, None).await?.unwrap_or_default();
        Ok(opened.first().is_some_and(|b| b.low(1) == R::ONE))
    }

    /// `x < y` as arithmetic 0/1 shares, for fixed-point values within the comparison bound.
    pub async fn less(&mut self, x: &[R], y: &[R]) -> Result<Vec<R>> {
        let bits = self.less_bits(x, y).await?;
        self.bits_to_arith(&bits).await
    }

    /// `x < y` as XOR-shared bits.
    async fn less_bits(&mut self, x: &[R], y: &[R]) -> Result<Vec<R>> {
        let bound = self.frac() + INT_BITS;
        self.msb_bits(&sub(x, y), bound).await
    }

    /// `b ? x : y` for XOR-shared bits `b`.
    async fn select_bits(&mut self, b: &[R], x: &[R], y: &[R]) -> Result<Vec<R>> {
        let d = self.mul_bit(b, &sub(x, y)).await?;
        Ok(add(y, &d))
    }

    /// Elementwise maximum.
    pub async fn max(&mut self, x: &[R], y: &[R]) -> Result<Vec<R>> {
        let lt = self.less_bits(x, y).await?;
        self.select_bits(&lt, y, x).await
    }

    /// `v` where `lo <= c <= hi`, the public `v_lo` where `c < lo` and `v_hi` where `c > hi` (both comparisons in
    /// one batch); SecretFlow's `select([c < lo, c > hi], [v_lo, v_hi], v)`.
    pub async fn saturate(&mut self, c: &[R], bounds: (f64, f64), v: &[R], values: (f64, f64)) -> Result<Vec<R>> {
        self.saturate_at(c, bounds, v, values, false).await
    }

    /// Sign bits of `d` and `k - d` (`d`'s first): exact (`|.| < 2^INT_BITS`), or `coarse`: at `2^-COARSE_FRAC`
    /// resolution for `|.| < 2^COARSE_INT`, which takes about a third fewer OTs (the sigmoids' limits, where a
    /// difference of `2^-12` at the boundary changes the value by less than that).
    async fn diff_signs(&mut self, d: &[R], k: R, coarse: bool) -> Result<Vec<R>> {
        let f = self.frac();
        if coarse && f > COARSE_FRAC {
            self.sign_pair_coarse(d, k, f + COARSE_INT, f - COARSE_FRAC).await
        } else {
            self.sign_pair_coarse(d, k, f + INT_BITS, 0).await
        }
    }

    async fn saturate_at(
        &mut self,
        c: &[R],
        (lo, hi): (f64, f64),
        v: &[R],
        (v_lo, v_hi): (f64, f64),
        coarse: bool,
    ) -> Result<Vec<R>> {
        let f = self.frac();
        // [c < lo] and [c > hi]: the signs of c - lo and (hi - lo) - (c - lo).
        let d = self.add_public(c, R::encode(lo, f).neg());
        let flags = self.diff_signs(&d, R::encode(hi, f).sub(R::encode(lo, f)), coarse).await?;
        self.select_limits(v, &flags, (v_lo, v_hi)).await
    }

    /// `v`, or the public `v_lo` / `v_hi` where the XOR-shared `flags` (`[c < lo]` for every element, then
    /// `[c > hi]`) are set.
    async fn select_limits(&mut self, v: &[R], flags: &[R], (v_lo, v_hi): (f64, f64)) -> Result<Vec<R>> {
        let (n, f) = (v.len(), self.frac());
        // Never both (lo <= hi), so b = [c < lo] ^ [c > hi] is their sum, and the value is
        // v + b (v_lo - v) + [c > hi] (v_hi - v_lo): one multiplexer and one bit-to-arithmetic per element.
        let b: Vec<R> = (0..n).map(|i| flags[i].add(flags[n + i]).low(1)).collect();
        let low = self.constant(R::encode(v_lo, f), 1)[0];
        let targets: Vec<R> = v.iter().map(|x| low.sub(*x)).collect();
        let (d, above) = self.mul_bit_and_arith(&b, &targets, &flags[n..]).await?;
        let gap = R::encode(v_hi, f).sub(R::encode(v_lo, f));
        Ok(v.iter().zip(&d).zip(&above).map(|((v, d), a)| v.add(*d).add(a.mul(gap))).collect())
    }

    /// Clamp to `[lo, hi]` (public bounds).
    pub async fn clip(&mut self, x: &[R], lo: f64, hi: f64) -> Result<Vec<R>> {
        self.saturate(x, (lo, hi), x, (lo, hi)).await
    }

    /// [`Mpc::clip`] with coarse comparisons, for the sigmoids.
    async fn clip_coarse(&mut self, x: &[R], lo: f64, hi: f64) -> Result<Vec<R>> {
        self.saturate_at(x, (lo, hi), x, (lo, hi), true).await
    }

    /// `|x|`.
    pub async fn abs(&mut self, x: &[R]) -> Result<Vec<R>> {
        let bound = self.frac() + INT_BITS;
        let neg = self.msb_bits(x, bound).await?;
        let twice = self.mul_bit(&neg, &scale(x, R::ONE.shl(1))).await?;
        Ok(sub(x, &twice))
    }

    /// One-hot shares of `j` with `2^j <= x < 2^(j+1)`, `j` in `0..span`, for `1 <= x < 2^span`.
    async fn octave(&mut self, x: &[R], span: u32) -> Result<Vec<R>> {
        let n = x.len();
        let f = self.frac();
        let mut diffs = Vec::with_capacity(n * span as usize);
        for j in 1..=span {
            diffs.extend(self.add_public(x, R::encode((j as f64).exp2(), f).neg()));
        }
        let below = self.msb(&diffs, f + span + 1).await?;
        // ge_j = 1 - below_j for j >= 1, ge_0 = 1, ge_span = 0 by the precondition.
        let one = self.constant(R::ONE, 1)[0];
        let ge = |j: u32, i: usize| -> R { if j == 0 { one } else { one.sub(below[(j as usize - 1) * n + i]) } };
        let mut onehot = Vec::with_capacity(n * span as usize);
        for i in 0..n {
            for j in 0..span {
                let next = if j + 1 >= span { R::ZERO } else { ge(j + 1, i) };
                onehot.push(ge(j, i).sub(next));
            }
        }
        Ok(onehot)
    }

    /// `sum_j onehot_j * guess(j)` over `x`'s octave `j` (a first guess for Newton's iterations).
    async fn octave_guess(&mut self, x: &[R], span: u32, guess: impl Fn(u32) -> f64) -> Result<Vec<R>> {
        let f = self.frac();
        let onehot = self.octave(x, span).await?;
        let consts: Vec<R> = (0..span).map(|j| R::encode(guess(j), f)).collect();
        Ok(onehot
            .chunks_exact(span as usize)
            .map(|h| h.iter().zip(&consts).fold(R::ZERO, |acc, (b, c)| acc.add(b.mul(*c))))
            .collect())
    }

    /// `1 / x` for `1 <= x < 2^span`, `span <= f - 2` (beyond, `1 / x` is below the fixed-point resolution
    /// and Newton's iteration would not converge): a power-of-two first guess from the octave, then Newton.
    pub async fn reciprocal(&mut self, x: &[R], span: u32) -> Result<Vec<R>> {
        let y = self.octave_guess(x, span, |j| 0.75 / (j as f64).exp2()).await?;
        self.newton_reciprocal(x, y, 6).await
    }

    /// Newton's `y <- y (2 - x y)` from a first guess with `|1 - x y| <= 1/2`.
    async fn newton_reciprocal(&mut self, x: &[R], mut y: Vec<R>, rounds: usize) -> Result<Vec<R>> {
        let two = self.constant(R::encode(2.0, self.frac()), 1)[0];
        for _ in 0..rounds {
            let xy = self.mul(x, &y).await?;
            let t: Vec<R> = xy.iter().map(|v| two.sub(*v)).collect();
            y = self.mul(&y, &t).await?;
        }
        Ok(y)
    }

    /// `1 / sqrt(x)` for `1 <= x < 2^span`.
    pub async fn rsqrt(&mut self, x: &[R], span: u32) -> Result<Vec<R>> {
        let f = self.frac();
        let mut y = self.octave_guess(x, span, |j| 0.85 / (j as f64 / 2.0).exp2()).await?;
        let three = self.constant(R::encode(3.0, f), 1)[0];
        for _ in 0..7 {
            let yy = self.mul(&y, &y).await?;
            let xyy = self.mul(x, &yy).await?;
            let t: Vec<R> = xyy.iter().map(|v| three.sub(*v)).collect();
            let yt = self.mul(&y, &t).await?;
            y = self.trunc(&yt, 1).await?;
        }
        Ok(y)
    }

    /// `e^x` for `|x| <= 16`: degree-6 Taylor at `x / 32`, squared five times.
    pub async fn exp(&mut self, x: &[R]) -> Result<Vec<R>> {
        let f = self.frac();
        let y = self.trunc(x, 5).await?;
        // Horner: 1 + y(1 + y/2(1 + y/3(...)))
        let mut acc = self.constant(R::encode(1.0, f), x.len());
        for d in (1..=6).rev() {
            let t = self.mul(&y, &acc).await?;
            let t = self.mul_public(&t, 1.0 / d as f64).await?;
            acc = self.add_public(&t, R::encode(1.0, f));
        }
        for _ in 0..5 {
            acc = self.mul(&acc, &acc).await?;
        }
        Ok(acc)
    }

    /// `x * c` for a public real `c`: `c` is encoded with enough fraction bits to keep about 20 significant
    /// bits (at least `f`), then the product is truncated by as many.
    pub async fn mul_public(&mut self, x: &[R], c: f64) -> Result<Vec<R>> {
        let f = self.frac() as i32;
        let s = if c == 0.0 { f } else { (19 - c.abs().log2().floor() as i32).clamp(f, R::BITS as i32 / 2 + 8) };
        let raw = scale(x, R::encode(c, s as u32));
        self.trunc(&raw, s as u32).await
    }

    /// A polynomial `sum c_i x^i` with public coefficients: the powers of `x` by secure products, each term
    /// by a precise public product (Horner would multiply the coefficients' rounding by powers of `x`).
    pub async fn poly(&mut self, x: &[R], coeffs: &[f64]) -> Result<Vec<R>> {
        let f = self.frac();
        let mut acc = self.constant(R::encode(coeffs.first().copied().unwrap_or(0.0), f), x.len());
        let mut power = x.to_vec();
        for (i, c) in coeffs.iter().enumerate().skip(1) {
            if i > 1 {
                power = self.mul(&power, x).await?;
            }
            if *c != 0.0 {
                acc = add(&acc, &self.mul_public(&power, *c).await?);
            }
        }
        Ok(acc)
    }

    /// [`Mpc::sigmoid`] of `x / 2^s` for `x` shared mod `2^l` (only its low `l` bits count, `|x| < 2^(l-2)`),
    /// such as an untruncated product: t1 folds its division by 4 into this one truncation (a round and an OT
    /// per element fewer).
    pub async fn sigmoid_from(&mut self, x: &[R], l: u32, s: u32, sig: SigType) -> Result<Vec<R>> {
        let f = self.frac();
        if sig == SigType::T1 && f > COARSE_FRAC {
            // t = 1/2 + x / 2^(f + s + 2) leaves [0, 1] where x passes -+2^(f + s + 1): the limits are compared on
            // x itself (at t's coarse resolution, within the ring's l bits), so the truncation's OT and the
            // comparison's leaf OTs go out together and share a round trip.
            let job = self.trunc_start(x, l, s + 2, true).await?;
            let lo = R::ONE.shl(f + s + 1);
            let bound = (f + COARSE_INT + s + 2).min(l - 1);
            let d = self.add_public(x, lo);
            let flags = self.sign_pair_coarse(&d, lo.shl(1), bound, f + s + 2 - COARSE_FRAC).await?;
            let quarter = self.trunc_finish(job).await?;
            let t = self.add_public(&quarter, R::encode(0.5, f));
            return self.select_limits(&t, &flags, (0.0, 1.0)).await;
        }
        if sig == SigType::T1 {
            let quarter = self.trunc_from(x, l, s + 2).await?;
            return self.t1_of_quarter(&quarter).await;
        }
        if sig == SigType::Mm1 {
            let eighth = self.trunc_from(x, l, s + 3).await?;
            return Ok(self.add_public(&eighth, R::encode(0.5, f)));
        }
        let x = self.trunc_from(x, l, s).await?;
        self.sigmoid(&x, sig).await
    }

    /// t1 from `x / 4`: `0.5 + x / 4` clipped to `[0, 1]`.
    async fn t1_of_quarter(&mut self, quarter: &[R]) -> Result<Vec<R>> {
        let t = self.add_public(quarter, R::encode(0.5, self.frac()));
        self.clip_coarse(&t, 0.0, 1.0).await
    }

    /// SecretFlow's sigmoid approximation `sig` (same definitions, including t1/t3/t5's limits).
    pub async fn sigmoid(&mut self, x: &[R], sig: SigType) -> Result<Vec<R>> {
        let f = self.frac();
        let n = x.len();
        let half = R::encode(0.5, f);
        match sig {
            SigType::T1 => {
                let quarter = self.trunc(x, 2).await?;
                self.t1_of_quarter(&quarter).await
            }
            SigType::Mm1 => {
                let eighth = self.trunc(x, 3).await?;
                Ok(self.add_public(&eighth, half))
            }
            SigType::T3 => {
                let t = self.poly(x, &[0.5, 0.25, 0.0, -1.0 / 48.0]).await?;
                // t3 jumps at +-2 (to 0 and 1): these comparisons must be exact.
                self.saturate(x, (-2.0, 2.0), &t, (0.0, 1.0)).await
            }
            SigType::T5 => {
                let t = self.poly(x, &[0.5, 0.25, 0.0, -1.0 / 48.0, 0.0, 1.0 / 480.0]).await?;
                self.clip_coarse(&t, 0.0, 1.0).await
            }
            SigType::Df => {
                // 1 + |x| stays inside the reciprocal's range; past 2^(f-3) the value is 1 within 2^(3-f).
                let limit = ((f - 3) as f64).exp2();
                let c = self.clip(x, -limit, limit).await?;
                let a = self.abs(&c).await?;
                let d = self.add_public(&a, R::encode(1.0, f));
                let r = self.reciprocal(&d, f - 2).await?;
                let q = self.mul(&c, &r).await?;
                let q = self.trunc(&q, 1).await?;
                Ok(self.add_public(&q, half))
            }
            SigType::Sr => self.sr(x).await,
            SigType::Mix => {
                let ls7 = self.poly(x, &LS7).await?;
                let sr = self.sr(x).await?;
                let a = self.abs(x).await?;
                let four = self.constant(R::encode(4.0, f), n);
                let outside = self.less_bits(&four, &a).await?;
                self.select_bits(&outside, &sr, &ls7).await
            }
            SigType::Real => {
                // s = 1 / (1 + e^-|x|) with 1 + e^-|x| in (1, 2], then 1 - s where x < 0.
                let neg = self.msb_bits(x, f + INT_BITS).await?;
                let twice = self.mul_bit(&neg, &scale(x, R::ONE.shl(1))).await?;
                let a = sub(x, &twice);
                let a = self.clip_coarse(&a, 0.0, 16.0).await?;
                let minus: Vec<R> = a.iter().map(|v| v.neg()).collect();
                let e = self.exp(&minus).await?;
                let d = self.add_public(&e, R::encode(1.0, f));
                let s = self.newton_reciprocal(&d, self.constant(R::encode(0.75, f), n), 5).await?;
                let flip: Vec<R> = s.iter().map(|v| half.add(half).sub(v.shl(1))).collect();
                let flip = if self.me() == 0 { flip } else { s.iter().map(|v| v.shl(1).neg()).collect() };
                let d = self.mul_bit(&neg, &flip).await?;
                Ok(add(&s, &d))
            }
        }
    }

    async fn sr(&mut self, x: &[R]) -> Result<Vec<R>> {
        let f = self.frac();
        // Beyond |x| = 2^10 the value is 0 or 1 to within 2^-21; clipping keeps 1 + x^2 inside the octave range.
        let c = self.clip_coarse(x, -1024.0, 1024.0).await?;
        let sq = self.mul(&c, &c).await?;
        let d = self.add_public(&sq, R::encode(1.0, f));
        let r = self.rsqrt(&d, 21).await?;
        let q = self.mul(&c, &r).await?;
        let q = self.trunc(&q, 1).await?;
        Ok(self.add_public(&q, R::encode(0.5, f)))
    }
}
