//! Fixed-point arithmetic and the nonlinear functions, written once over the protocol interface
//! ([`Kernels`]): truncated products, public factors, polynomials, comparison, select, `max`, `clip`, `abs`,
//! reciprocal, inverse square root, `exp`, and SecretFlow's sigmoid approximations (and SPU's linear one).
//! Every backend runs them unchanged; what a backend does faster (a clip's two limits in one comparison, a
//! multiplexer and a bit conversion in one round) is one of its kernels.

use secretflow_crds::tasks::learning::SigType;

use super::kernels::Kernels;
use super::share::{Bits, Share};
use crate::error::Result;
use crate::ring::Ring;

/// Magnitude bound (bits above the fraction) of differences compared by `less`, `max`, `clip` and the sigmoids:
/// `|x - y| < 2^24`, so operands below `2^23` always work.
pub const INT_BITS: u32 = 24;

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

/// The fixed-point functions, for every backend of the protocol interface.
#[allow(async_fn_in_trait)] // As `Kernels`: used inside this crate.
pub trait Fixed<R: Ring>: Kernels<R> + Sized {
    /// Fixed-point encoding at the device's fraction bits.
    fn encode(&self, xs: &[f64]) -> Vec<R> {
        xs.iter().map(|x| R::encode(*x, self.frac())).collect()
    }

    /// Fixed-point decoding at the device's fraction bits.
    fn decode(&self, xs: &[R]) -> Vec<f64> {
        xs.iter().map(|x| x.decode(self.frac())).collect()
    }

    /// The fixed-point encoding of `x` as a public constant share of `n` elements.
    fn constant(&self, x: f64, n: usize) -> Share<R> {
        Share::constant(self.holding(), R::encode(x, self.frac()), n)
    }

    /// `x + c` for a public real `c`.
    fn add_real(&self, x: &Share<R>, c: f64) -> Share<R> {
        x.add_public(R::encode(c, self.frac()))
    }

    /// Divide by `2^f` (floor, at most one unit off), for any shared `|x| < 2^(k-2)`.
    async fn trunc(&mut self, x: &Share<R>, f: u32) -> Result<Share<R>> {
        self.trunc_from(x, R::BITS, f).await
    }

    /// Elementwise fixed-point product.
    async fn mul(&mut self, x: &Share<R>, y: &Share<R>) -> Result<Share<R>> {
        let raw = self.mul_raw(x, y).await?;
        let f = self.frac();
        self.trunc(&raw, f).await
    }

    /// `x * c` for a public real `c`: `c` is encoded with enough fraction bits to keep about 20 significant
    /// bits (at least `f`), then the product is truncated by as many.
    async fn mul_public(&mut self, x: &Share<R>, c: f64) -> Result<Share<R>> {
        let f = self.frac() as i32;
        let s = if c == 0.0 { f } else { (19 - c.abs().log2().floor() as i32).clamp(f, R::BITS as i32 / 2 + 8) };
        let raw = x.scale(R::encode(c, s as u32));
        self.trunc(&raw, s as u32).await
    }

    /// A polynomial `sum c_i x^i` with public coefficients: the powers of `x` by secure products, each term
    /// by a precise public product (Horner would multiply the coefficients' rounding by powers of `x`).
    async fn poly(&mut self, x: &Share<R>, coeffs: &[f64]) -> Result<Share<R>> {
        let mut acc = self.constant(coeffs.first().copied().unwrap_or(0.0), x.len());
        let mut power = x.clone();
        for (i, c) in coeffs.iter().enumerate().skip(1) {
            if i > 1 {
                power = self.mul(&power, x).await?;
            }
            if *c != 0.0 {
                acc = acc.add(&self.mul_public(&power, *c).await?);
            }
        }
        Ok(acc)
    }

    /// Arithmetic shares of the sign bit (1 when negative) of each `x`, assuming `|x| < 2^bound` (raw units).
    async fn sign(&mut self, x: &Share<R>, bound: u32) -> Result<Share<R>> {
        let bits = self.msb(x, bound, 0).await?;
        self.b2a(&bits).await
    }

    /// `x < y` as arithmetic 0/1 shares, for fixed-point values within the comparison bound.
    async fn less(&mut self, x: &Share<R>, y: &Share<R>) -> Result<Share<R>> {
        let bits = less_bits(self, x, y).await?;
        self.b2a(&bits).await
    }

    /// Elementwise maximum.
    async fn max(&mut self, x: &Share<R>, y: &Share<R>) -> Result<Share<R>> {
        let lt = less_bits(self, x, y).await?;
        select(self, &lt, y, x).await
    }

    /// Whether every `|x_i| < eps`, revealed to every node as one bit (nothing else is opened).
    async fn all_below(&mut self, x: &Share<R>, eps: f64) -> Result<bool> {
        let n = x.len();
        if n == 0 {
            return Ok(true);
        }
        let e = R::encode(eps, self.frac());
        let neg = self.sign_pair(&x.add_public(e), e.add(e), self.frac() + INT_BITS, 0).await?;
        // inside_i = NOT neg(x + eps) AND NOT neg(eps - x).
        let mut acc = self.and(&neg.slice(0..n).not(), &neg.slice(n..2 * n).not()).await?;
        while acc.len() > 1 {
            let half = acc.len() / 2;
            let next = self.and(&acc.slice(0..half), &acc.slice(half..2 * half)).await?;
            acc = if acc.len() % 2 == 1 { Bits::concat(&[&next, &acc.slice(2 * half..acc.len())]) } else { next };
        }
        let opened = self.reveal(acc.share(), None).await?.unwrap_or_default();
        Ok(opened.first().is_some_and(|b| b.low(1) == R::ONE))
    }

    /// `v` where `lo <= c <= hi`, the public `v_lo` where `c < lo` and `v_hi` where `c > hi` (both comparisons in
    /// one batch); SecretFlow's `select([c < lo, c > hi], [v_lo, v_hi], v)`.
    async fn saturate(
        &mut self,
        c: &Share<R>,
        bounds: (f64, f64),
        v: &Share<R>,
        values: (f64, f64),
    ) -> Result<Share<R>> {
        saturate_at(self, c, bounds, v, values, false).await
    }

    /// Clamp to `[lo, hi]` (public bounds).
    async fn clip(&mut self, x: &Share<R>, lo: f64, hi: f64) -> Result<Share<R>> {
        self.saturate(x, (lo, hi), x, (lo, hi)).await
    }

    /// `|x|`.
    async fn abs(&mut self, x: &Share<R>) -> Result<Share<R>> {
        let neg = self.msb(x, self.frac() + INT_BITS, 0).await?;
        let twice = self.mul_bit(&neg, &x.shl(1)).await?;
        Ok(x.sub(&twice))
    }

    /// `1 / x` for `1 <= x < 2^span`, `span <= f - 2` (beyond, `1 / x` is below the fixed-point resolution
    /// and Newton's iteration would not converge): a power-of-two first guess from the octave, then Newton.
    async fn reciprocal(&mut self, x: &Share<R>, span: u32) -> Result<Share<R>> {
        let y = octave_guess(self, x, span, 0, |j| 0.75 / (j as f64).exp2()).await?;
        newton_reciprocal(self, x, y, 6).await
    }

    /// `a / x` elementwise for `2^-lo <= x < 2^hi` (`hi <= f`, `lo + hi + f` within the ring): `x` and `a`
    /// scaled by the power of two that brings `x` into `[1/2, 1)` (one comparison per octave), then the
    /// reciprocal there from a linear guess, a product series and a Newton step, so the reciprocal keeps `f`
    /// bits relative to itself wherever `x` lies (the quotient loses the bits of `a` that scaling shifts out).
    async fn div(&mut self, a: &Share<R>, x: &Share<R>, (lo, hi): (u32, u32)) -> Result<Share<R>> {
        let (n, f) = (x.len(), self.frac());
        // The octave only picks the scale: comparing `x 2^lo` at a resolution of 1/16 (its smallest boundary is
        // 2) can misplace only values within 1/32 of a boundary, which then land within 1/32 of [1/2, 1), where
        // the linear guess below still errs by under 0.1.
        let scale = |j: u32| (lo as f64 - 1.0 - j as f64).exp2();
        let s = octave_guess(self, &x.shl(lo), lo + hi, f.saturating_sub(4), scale).await?;
        let both = self.mul(&Share::concat(&[x, a]), &Share::concat(&[&s, &s])).await?;
        let (xn, an) = (both.slice(0..n), both.slice(n..2 * n));
        // From y = 2.9142 - 2 xn, e = 1 - xn y is within 0.09 of 0 on [1/2, 1), and
        // 1 / xn = y / (1 - e) = y (1 + e)(1 + e^2) up to a relative e^4 (y (1 + e)(1 + e^2)(1 + e^4), e^8, above
        // 24 fraction bits): each round takes one factor and squares e alongside. One Newton step then squares
        // the error and, unlike the series, corrects the rounding it has gathered. Five rounds of products in
        // all, against six for Newton's steps alone (six above 24 bits, against eight).
        // The quotient multiplies in last, so its rounding is relative to the reciprocal's size, not a's.
        let y = xn.scale(R::from_u128(2)).sub_from_public(R::encode(2.9142, f));
        let one = R::encode(1.0, f);
        let (mut e, mut r) = (self.mul(&xn, &y).await?.sub_from_public(one), y);
        for _ in 1..if f > 24 { 3 } else { 2 } {
            let next = self.mul(&Share::concat(&[&r, &e]), &Share::concat(&[&e.add_public(one), &e])).await?;
            (r, e) = (next.slice(0..n), next.slice(n..2 * n));
        }
        let r = self.mul(&r, &e.add_public(one)).await?;
        let r = newton_reciprocal(self, &xn, r, 1).await?;
        self.mul(&an, &r).await
    }

    /// `1 / sqrt(x)` for `1 <= x < 2^span`: a first guess linear within each octave, `2^(-j/2) (a + b u)` for
    /// `x = 2^j u` ([`RSQRT_FIT`], one product), then Newton's `y (3 - x y^2) / 2`, which squares the relative
    /// error (times 3/2) each step. The octave is found at a resolution of 1/16 (as in [`Fixed::div`]), so a value
    /// near a boundary may take its neighbour's line; the fit holds within 0.027 on `u` in `[1 - 1/32, 2 + 1/16]`,
    /// which covers that, and two steps reach 2^-19, three 2^-37.
    ///
    /// `x y^2` is taken as `(x y) y`: `y^2` alone falls below the resolution for large `x` (`2^-20` at
    /// `x = 2^20`). Where `x y` (up to `2^(span/2)`) times the scale would not fit the ring, `y^2` goes first.
    async fn rsqrt(&mut self, x: &Share<R>, span: u32) -> Result<Share<R>> {
        let (n, f) = (x.len(), self.frac());
        let below = octaves(self, x, span, f.saturating_sub(4)).await?;
        // a_j + b_j x with a_j = a 2^(-j/2), b_j = b 2^(-3j/2): b_j is held at e more fraction bits, as many as the
        // top octave's needs while b_j x (below 0.6) times the scale stays inside the ring.
        let e = (3 * span.saturating_sub(1)).div_ceil(2).min(R::BITS.saturating_sub(3 + 2 * f));
        let (fa, fb) = RSQRT_FIT;
        let a = per_octave(self, &below, n, span, |j| R::encode(fa * (-(j as f64) / 2.0).exp2(), f));
        let b = per_octave(self, &below, n, span, |j| R::encode(fb * (-1.5 * j as f64).exp2(), f + e));
        let bx = self.mul_raw(&b, x).await?;
        let mut y = a.add(&self.trunc(&bx, f + e).await?);
        let three_halves = R::encode(1.5, f);
        let x_first = 2 * f + span.div_ceil(2) + 3 <= R::BITS;
        for _ in 0..if f <= 19 {
            2
        } else if f <= 37 {
            3
        } else {
            4
        } {
            let (a, b) =
                if x_first { (self.mul(x, &y).await?, y.clone()) } else { (self.mul(&y, &y).await?, x.clone()) };
            // x y^2 / 2: the halving rides on the product's truncation.
            let raw = self.mul_raw(&a, &b).await?;
            let half = self.trunc(&raw, f + 1).await?;
            y = self.mul(&y, &half.sub_from_public(three_halves)).await?;
        }
        Ok(y)
    }

    /// `e^x` for `|x| <= 16`: degree-6 Taylor at `x / 32`, squared five times.
    async fn exp(&mut self, x: &Share<R>) -> Result<Share<R>> {
        let y = self.trunc(x, 5).await?;
        // Horner: 1 + y(1 + y/2(1 + y/3(...)))
        let mut acc = self.constant(1.0, x.len());
        for d in (1..=6).rev() {
            let t = self.mul(&y, &acc).await?;
            let t = self.mul_public(&t, 1.0 / d as f64).await?;
            acc = self.add_real(&t, 1.0);
        }
        for _ in 0..5 {
            acc = self.mul(&acc, &acc).await?;
        }
        Ok(acc)
    }

    /// [`Fixed::sigmoid`] of `x / 2^s` for `x` shared mod `2^l` (only its low `l` bits count, `|x| < 2^(l-2)`),
    /// such as an untruncated product: t1 folds its division by 4 into this one truncation (a round and an OT
    /// per element fewer).
    async fn sigmoid_from(&mut self, x: &Share<R>, l: u32, s: u32, sig: SigType) -> Result<Share<R>> {
        let f = self.frac();
        if sig == SigType::T1 && f > COARSE_FRAC {
            // t = 1/2 + x / 2^(f + s + 2) leaves [0, 1] where x passes -+2^(f + s + 1): the limits are compared on
            // x itself (at t's coarse resolution, within the ring's l bits), alongside the truncation.
            let lo = R::ONE.shl(f + s + 1);
            let bound = (f + COARSE_INT + s + 2).min(l - 1);
            let d = x.add_public(lo);
            let compare = (&d, lo.shl(1), bound, f + s + 2 - COARSE_FRAC);
            let (quarter, flags) = self.trunc_and_sign_pair((x, l, s + 2), compare).await?;
            let t = self.add_real(&quarter, 0.5);
            return select_limits(self, &t, &flags, (0.0, 1.0)).await;
        }
        if sig == SigType::T1 {
            let quarter = self.trunc_from(x, l, s + 2).await?;
            return t1_of_quarter(self, &quarter).await;
        }
        if sig == SigType::Mm1 {
            let eighth = self.trunc_from(x, l, s + 3).await?;
            return Ok(self.add_real(&eighth, 0.5));
        }
        let x = self.trunc_from(x, l, s).await?;
        self.sigmoid(&x, sig).await
    }

    /// SecretFlow's sigmoid approximation `sig` (same definitions, including t1/t3/t5's limits).
    async fn sigmoid(&mut self, x: &Share<R>, sig: SigType) -> Result<Share<R>> {
        let f = self.frac();
        let n = x.len();
        match sig {
            SigType::T1 => {
                let quarter = self.trunc(x, 2).await?;
                t1_of_quarter(self, &quarter).await
            }
            SigType::Mm1 => {
                let eighth = self.trunc(x, 3).await?;
                Ok(self.add_real(&eighth, 0.5))
            }
            SigType::T3 => {
                let t = self.poly(x, &[0.5, 0.25, 0.0, -1.0 / 48.0]).await?;
                // t3 jumps at +-2 (to 0 and 1): these comparisons must be exact.
                self.saturate(x, (-2.0, 2.0), &t, (0.0, 1.0)).await
            }
            SigType::T5 => {
                let t = self.poly(x, &[0.5, 0.25, 0.0, -1.0 / 48.0, 0.0, 1.0 / 480.0]).await?;
                saturate_at(self, &t, (0.0, 1.0), &t, (0.0, 1.0), true).await
            }
            SigType::Df => {
                // 1 + |x| stays inside the reciprocal's range; past 2^(f-3) the value is 1 within 2^(3-f).
                let limit = ((f - 3) as f64).exp2();
                let c = self.clip(x, -limit, limit).await?;
                let a = self.abs(&c).await?;
                let r = self.reciprocal(&self.add_real(&a, 1.0), f - 2).await?;
                let q = self.mul(&c, &r).await?;
                let q = self.trunc(&q, 1).await?;
                Ok(self.add_real(&q, 0.5))
            }
            SigType::Sr => sr(self, x).await,
            SigType::Mix => {
                let ls7 = self.poly(x, &LS7).await?;
                let sr = sr(self, x).await?;
                let a = self.abs(x).await?;
                let outside = less_bits(self, &self.constant(4.0, n), &a).await?;
                select(self, &outside, &sr, &ls7).await
            }
            SigType::Real => {
                // s = 1 / (1 + e^-|x|) with 1 + e^-|x| in (1, 2], then 1 - s where x < 0.
                let neg = self.msb(x, f + INT_BITS, 0).await?;
                let twice = self.mul_bit(&neg, &x.shl(1)).await?;
                let a = x.sub(&twice);
                let a = saturate_at(self, &a, (0.0, 16.0), &a, (0.0, 16.0), true).await?;
                let e = self.exp(&a.neg()).await?;
                let d = self.add_real(&e, 1.0);
                let s = newton_reciprocal(self, &d, self.constant(0.75, n), 5).await?;
                let flip = s.shl(1).sub_from_public(R::encode(1.0, f));
                let d = self.mul_bit(&neg, &flip).await?;
                Ok(s.add(&d))
            }
        }
    }
}

impl<R: Ring, K: Kernels<R>> Fixed<R> for K {}

/// `x < y` as shared bits.
async fn less_bits<R: Ring, K: Fixed<R>>(k: &mut K, x: &Share<R>, y: &Share<R>) -> Result<Bits<R>> {
    let bound = k.frac() + INT_BITS;
    k.msb(&x.sub(y), bound, 0).await
}

/// `b ? x : y` for shared bits `b`.
async fn select<R: Ring, K: Fixed<R>>(k: &mut K, b: &Bits<R>, x: &Share<R>, y: &Share<R>) -> Result<Share<R>> {
    let d = k.mul_bit(b, &x.sub(y)).await?;
    Ok(y.add(&d))
}

/// [`Fixed::saturate`], its comparisons exact (`|.| < 2^INT_BITS`) or, with `coarse`, at `2^-COARSE_FRAC`
/// resolution for `|.| < 2^COARSE_INT`, which takes about a third fewer OTs on the two-party backend (the
/// sigmoids' limits, where a difference of `2^-12` at the boundary changes the value by less than that).
async fn saturate_at<R: Ring, K: Fixed<R>>(
    k: &mut K,
    c: &Share<R>,
    (lo, hi): (f64, f64),
    v: &Share<R>,
    values: (f64, f64),
    coarse: bool,
) -> Result<Share<R>> {
    let f = k.frac();
    // [c < lo] and [c > hi]: the signs of c - lo and (hi - lo) - (c - lo).
    let d = c.add_public(R::encode(lo, f).neg());
    let width = R::encode(hi, f).sub(R::encode(lo, f));
    let flags = if coarse && f > COARSE_FRAC {
        k.sign_pair(&d, width, f + COARSE_INT, f - COARSE_FRAC).await?
    } else {
        k.sign_pair(&d, width, f + INT_BITS, 0).await?
    };
    select_limits(k, v, &flags, values).await
}

/// `v`, or the public `v_lo` / `v_hi` where the shared `flags` (`[c < lo]` for every element, then
/// `[c > hi]`) are set.
async fn select_limits<R: Ring, K: Fixed<R>>(
    k: &mut K,
    v: &Share<R>,
    flags: &Bits<R>,
    (v_lo, v_hi): (f64, f64),
) -> Result<Share<R>> {
    let (n, f) = (v.len(), k.frac());
    // Never both (lo <= hi), so b = [c < lo] ^ [c > hi] is their sum, and the value is
    // v + b (v_lo - v) + [c > hi] (v_hi - v_lo): one multiplexer and one bit-to-arithmetic per element.
    let above = flags.slice(n..2 * n);
    let b = flags.slice(0..n).xor(&above);
    let targets = v.sub_from_public(R::encode(v_lo, f));
    let (d, above) = k.mul_bit_and_b2a(&b, &targets, &above).await?;
    let gap = R::encode(v_hi, f).sub(R::encode(v_lo, f));
    Ok(v.add(&d).add(&above.scale(gap)))
}

/// t1 from `x / 4`: `0.5 + x / 4` clipped to `[0, 1]`.
async fn t1_of_quarter<R: Ring, K: Fixed<R>>(k: &mut K, quarter: &Share<R>) -> Result<Share<R>> {
    let t = k.add_real(quarter, 0.5);
    saturate_at(k, &t, (0.0, 1.0), &t, (0.0, 1.0), true).await
}

/// `sum_j [2^j <= x < 2^(j+1)] guess(j)` over `j` in `0..span`, for `1 <= x < 2^span` (a first guess for
/// Newton's iterations), at the device's fraction bits: see [`octaves`].
async fn octave_guess<R: Ring, K: Fixed<R>>(
    k: &mut K,
    x: &Share<R>,
    span: u32,
    skip: u32,
    guess: impl Fn(u32) -> f64,
) -> Result<Share<R>> {
    let f = k.frac();
    let below = octaves(k, x, span, skip).await?;
    Ok(per_octave(k, &below, x.len(), span, |j| R::encode(guess(j), f)))
}

/// `[x < 2^j]` for `j` in `1..span` as arithmetic 0/1 shares (`span - 1` blocks of `x.len()`), for
/// `1 <= x < 2^span`: one comparison per octave boundary, exact where `x` is `2^skip` raw units or more from it.
async fn octaves<R: Ring, K: Fixed<R>>(k: &mut K, x: &Share<R>, span: u32, skip: u32) -> Result<Share<R>> {
    let f = k.frac();
    if span <= 1 {
        return Ok(Share::constant(k.holding(), R::ZERO, 0));
    }
    let powers: Vec<R> = (1..span).map(|j| R::encode((j as f64).exp2(), f)).collect();
    let below = k.msb_minus(x, &powers, f + span + 1, skip).await?;
    k.b2a(&below).await
}

/// `sum_j [2^j <= x < 2^(j+1)] v(j)` over `j` in `0..span` for ring values `v(j)`, from [`octaves`]' `below`: a
/// local sum.
fn per_octave<R: Ring, K: Fixed<R>>(k: &K, below: &Share<R>, n: usize, span: u32, v: impl Fn(u32) -> R) -> Share<R> {
    // [x >= 2^j] = 1 - below_j for j >= 1 and 1 for j = 0, so [2^j <= x < 2^(j+1)] = below_(j+1) - below_j
    // (below_0 = 0, below_span = 1 by the precondition): sum_j v(j) (below_(j+1) - below_j)
    // = v(span - 1) - sum_(j=1..span-1) below_j (v(j) - v(j - 1)).
    if span <= 1 {
        return Share::constant(k.holding(), v(0), n);
    }
    let weights: Vec<R> = (1..span).map(|j| v(j - 1).sub(v(j))).collect();
    below.weighted_blocks(&weights).add_public(v(span - 1))
}

/// Newton's `y <- y (2 - x y)` from a first guess with `|1 - x y| <= 1/2`.
async fn newton_reciprocal<R: Ring, K: Fixed<R>>(
    k: &mut K,
    x: &Share<R>,
    mut y: Share<R>,
    rounds: usize,
) -> Result<Share<R>> {
    let two = R::encode(2.0, k.frac());
    for _ in 0..rounds {
        let xy = k.mul(x, &y).await?;
        y = k.mul(&y, &xy.sub_from_public(two)).await?;
    }
    Ok(y)
}

/// The line `a + b u` closest to `1 / sqrt(u)` in relative error on `[1 - 1/32, 2 + 1/16]` (within 0.0267): the
/// octave `[1, 2)` widened by what a coarse octave boundary may misplace.
const RSQRT_FIT: (f64, f64) = (1.265, -0.2845);

/// Where `sr` clips its input: beyond, `sr(x)` is within `1 / (4 SR_CLIP^2)` (2.4e-4) of 0 or 1, and
/// `1 + x^2` stays below `2^11`, so `1 / sqrt(1 + x^2)` needs ten octave boundaries (2^10 would need twenty).
/// It also bounds the rounding: `x` times the reciprocal's `2^-f` error stays within `32 * 2^-f` (at `2^10`
/// that was `2^(10 - f)`, 4e-3 at 18 fraction bits).
const SR_CLIP: f64 = 32.0;

/// SecretFlow's `sr` sigmoid: `0.5 + 0.5 x / sqrt(1 + x^2)`, with `x` clipped to `[-SR_CLIP, SR_CLIP]`.
async fn sr<R: Ring, K: Fixed<R>>(k: &mut K, x: &Share<R>) -> Result<Share<R>> {
    let c = saturate_at(k, x, (-SR_CLIP, SR_CLIP), x, (-SR_CLIP, SR_CLIP), true).await?;
    let sq = k.mul(&c, &c).await?;
    let r = k.rsqrt(&k.add_real(&sq, 1.0), 11).await?;
    let q = k.mul(&c, &r).await?;
    let q = k.trunc(&q, 1).await?;
    Ok(k.add_real(&q, 0.5))
}
