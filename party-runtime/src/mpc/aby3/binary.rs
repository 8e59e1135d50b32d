//! Kernels on XOR-shared bits for the three-party backend: AND (the product of [`super::arith`] with AND and
//! XOR), the sign bit through a parallel prefix adder, and bit-to-arithmetic.
//!
//! The sign of `x` with `|x| < 2^bound` is bit `bound` of `x`. As for truncation, node 0 knows `a = x_0 + x_1`
//! and nodes 1 and 2 know `b = x_2`; bit `bound` of `a + b` is `a_bound XOR b_bound XOR` the carry into it,
//! which a Kogge-Stone prefix tree over the `bound - skip` bits from `skip` up computes in `log2` levels of two
//! ANDs on whole words (generate and propagate). The carry out of the dropped low bits is ignored, which can
//! only flip the answer for `|x| < 2^skip`.

use super::{Aby3, Op};
use crate::context::compute;
use crate::error::Result;
use crate::mpc::share::{Bits, Share};
use crate::ring::Ring;

/// `a XOR b` on ring words.
fn xor<R: Ring>(a: R, b: R) -> R {
    R::from_u128(a.to_u128() ^ b.to_u128())
}

/// `a AND b` on ring words.
fn and<R: Ring>(a: R, b: R) -> R {
    R::from_u128(a.to_u128() & b.to_u128())
}

/// Each component mapped by `f` (a map linear over XOR, such as a shift or a mask).
fn map_xor<R: Ring>(x: &Share<R>, f: impl Fn(R) -> R) -> Share<R> {
    let parts = (0..2).map(|j| x.part(j).iter().map(|v| f(*v)).collect()).collect();
    Share::new(x.holding(), parts)
}

/// `x XOR y`, componentwise.
fn xor_shares<R: Ring>(x: &Share<R>, y: &Share<R>) -> Share<R> {
    let parts = (0..2).map(|j| x.part(j).iter().zip(y.part(j)).map(|(a, b)| xor(*a, *b)).collect()).collect();
    Share::new(x.holding(), parts)
}

impl<R: Ring> Aby3<'_, R> {
    /// Bitwise AND of XOR-shared words: the three cross terms, a share of zero, one resharing round.
    pub(super) async fn and_words(&mut self, x: &Share<R>, y: &Share<R>) -> Result<Share<R>> {
        let n = x.len();
        let alpha = self.zeros(n, Op::Xor);
        let (x0, x1, y0, y1) = (x.part(0), x.part(1), y.part(0), y.part(1));
        let z = compute(|| {
            (0..n).map(|i| xor(xor(and(x0[i], xor(y0[i], y1[i])), and(x1[i], y0[i])), alpha[i])).collect::<Vec<R>>()
        });
        self.reshare("mpc/aby3/and", z).await
    }

    /// `x AND y` on shared bits.
    pub(super) async fn and_bits(&mut self, x: &Bits<R>, y: &Bits<R>) -> Result<Bits<R>> {
        Ok(Bits::new(self.and_words(x.share(), y.share()).await?))
    }

    /// The sign bits of `x` with `|x| < 2^bound`, exact for `|x| >= 2^skip`.
    pub(super) async fn sign_bits(&mut self, x: &Share<R>, bound: u32, skip: u32) -> Result<Bits<R>> {
        let n = x.len();
        let w = bound - skip;
        // Each side's bits skip..bound as a w-bit word, with its bit `bound` above them at position w.
        let word = |v: R| v.shr(skip).low(w + 1);
        let mine = (self.me == 0).then(|| (0..n).map(|i| word(x.part(0)[i].add(x.part(1)[i]))).collect::<Vec<R>>());
        let a = self.share_input(0, mine.as_deref(), n, Op::Xor).await?;
        let b = self.held_by_last_pair(|| self.last_component(x).iter().map(|v| word(*v)).collect(), n);
        let top = xor_shares(&a, &b);
        let low = |s: &Share<R>| map_xor(s, |v| v.low(w));
        // Generate and propagate of each bit position, then the prefix tree: after level d, bit i of g says
        // the bits i-2d+1..=i generate a carry and bit i of p that they propagate one.
        let (mut p, mut g) = (low(&top), self.and_words(&low(&a), &low(&b)).await?);
        let mut d = 1;
        while d < w {
            let shifted_g = map_xor(&g, |v| v.shl(d).low(w));
            if 2 * d >= w {
                g = xor_shares(&g, &self.and_words(&p, &shifted_g).await?);
                break;
            }
            let shifted_p = map_xor(&p, |v| v.shl(d).low(w));
            let both = self.and_words(&Share::concat(&[&p, &p]), &Share::concat(&[&shifted_g, &shifted_p])).await?;
            g = xor_shares(&g, &both.slice(0..n));
            p = both.slice(n..2 * n);
            d *= 2;
        }
        // Bit w of a XOR b, XOR the carry into it (bit w - 1 of the group generate).
        let sign = xor_shares(&map_xor(&top, |v| v.shr(w)), &map_xor(&g, |v| v.shr(w - 1)));
        Ok(Bits::new(sign))
    }

    /// Arithmetic shares (0/1) of shared bits: node 0 inputs `b_0 XOR b_1` as a number, nodes 1 and 2 hold
    /// `b_2`, and `u XOR v = u + v - 2 u v` takes one product.
    pub(super) async fn bits_to_arith(&mut self, b: &Bits<R>) -> Result<Share<R>> {
        let n = b.len();
        let s = b.share();
        let mine = (self.me == 0).then(|| (0..n).map(|i| xor(s.part(0)[i], s.part(1)[i])).collect::<Vec<R>>());
        let u = self.share_input(0, mine.as_deref(), n, Op::Add).await?;
        let v = self.held_by_last_pair(|| self.last_component(s).to_vec(), n);
        let uv = self.mul(&u, &v).await?;
        Ok(u.add(&v).sub(&uv.shl(1)))
    }
}
