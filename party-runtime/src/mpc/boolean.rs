//! The two-party backend's kernels on XOR-shared bits (values 0/1 in the low bit of each node's ring element):
//! AND, bit-to-arithmetic, and the multiplexer `b * x`, each by Gilboa products over the device's OTs.

use super::engine::Mpc;
use crate::error::Result;
use crate::ring::Ring;

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
    pub(super) async fn bits_to_arith(&mut self, b: &[R]) -> Result<Vec<R>> {
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
    pub(super) async fn mul_bit(&mut self, b: &[R], x: &[R]) -> Result<Vec<R>> {
        self.mul_bit_each(b, x, 1).await
    }

    /// `b_i * x_(i,j)` for `per` elements `x_(i,j)` per bit `b_i` (laid out `i * per + j`): as
    /// [`Mpc::mul_bit`], one OT each way per bit carrying all `per` correlations.
    pub(super) async fn mul_bit_each(&mut self, b: &[R], x: &[R], per: usize) -> Result<Vec<R>> {
        let k = R::BITS;
        let bit = |i: usize| b[i / per];
        let v: Vec<R> = x.iter().enumerate().map(|(i, x)| R::ONE.sub(bit(i).shl(1)).mul(*x)).collect();
        let (s, r) = self.gilboa_both("mpc/mux", (&v, b), (per, per), 1, k).await?;
        Ok(x.iter().enumerate().zip(s.iter().zip(&r)).map(|((i, x), (s, r))| bit(i).mul(*x).add(*s).add(*r)).collect())
    }

    /// `b * x` as [`Mpc::mul_bit`] and the arithmetic shares of the bits `c` (as [`Mpc::bits_to_arith`]) in
    /// one round: the bit-to-arithmetic products ride along the multiplexer's OTs (node 0 choosing with its
    /// bits of `c` too, node 1 sending its own).
    pub(super) async fn mul_bit_and_arith(&mut self, b: &[R], x: &[R], c: &[R]) -> Result<(Vec<R>, Vec<R>)> {
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
}
