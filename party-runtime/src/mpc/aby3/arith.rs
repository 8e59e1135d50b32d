//! Products and truncation on replicated arithmetic shares.
//!
//! A product `x y = sum_(i,j) x_i y_j` splits into three summands, node `i` taking the terms it can form
//! (`x_i y_i + x_i y_(i+1) + x_(i+1) y_i`); each node adds its share of zero and sends its summand to the
//! previous node, so one round and one ring element per output element and node (a matrix product costs its
//! output's size, not its inputs').
//!
//! Truncation is exact up to one unit in the last place for any `|x| < 2^(l-2)`, as on the two-party device:
//! node 0 knows `a = x_0 + x_1` and nodes 1 and 2 know `b = x_2`, a two-out-of-two sharing of `x` held by two
//! sides that each know theirs in the clear. With `y = x + 2^(l-2)` in `[0, 2^(l-1))`, `a + b` wraps around
//! `2^l` exactly when either top bit is set, so `y / 2^f = a / 2^f + b / 2^f - (t_a OR t_b) 2^(l-f)` up to the
//! dropped carry; node 0 inputs its side and `t_a`, nodes 1 and 2 hold theirs as a component, and one product
//! gives `t_a t_b`. No probabilistic failure however many products are truncated.

use super::{Aby3, Op};
use crate::context::compute;
use crate::error::Result;
use crate::mpc::local::matmul_local;
use crate::mpc::share::Share;
use crate::ring::Ring;

impl<R: Ring> Aby3<'_, R> {
    /// Elementwise product, not truncated.
    pub(super) async fn mul(&mut self, x: &Share<R>, y: &Share<R>) -> Result<Share<R>> {
        let n = x.len();
        let alpha = self.zeros(n, Op::Add);
        let (x0, x1, y0, y1) = (x.part(0), x.part(1), y.part(0), y.part(1));
        let z = compute(|| {
            (0..n).map(|i| x0[i].mul(y0[i].add(y1[i])).add(x1[i].mul(y0[i])).add(alpha[i])).collect::<Vec<R>>()
        });
        self.reshare("mpc/aby3/mul", z).await
    }

    /// Shared `m x p` times shared `p x q`, not truncated: two local products and one resharing of the output.
    pub(super) async fn matmul(
        &mut self,
        a: &Share<R>,
        b: &Share<R>,
        (m, p, q): (usize, usize, usize),
    ) -> Result<Share<R>> {
        let alpha = self.zeros(m * q, Op::Add);
        let (a0, a1, b0, b1) = (a.part(0), a.part(1), b.part(0), b.part(1));
        let z = compute(|| {
            let both: Vec<R> = b0.iter().zip(b1).map(|(u, v)| u.add(*v)).collect();
            let first = matmul_local(a0, &both, m, p, q);
            let second = matmul_local(a1, b0, m, p, q);
            first.iter().zip(&second).zip(&alpha).map(|((u, v), r)| u.add(*v).add(*r)).collect::<Vec<R>>()
        });
        self.reshare("mpc/aby3/matmul", z).await
    }

    /// Node `owner`'s plaintext `m x p` matrix times a shared `p x q`: the owner shares its matrix (two ring
    /// elements per entry sent), then a shared product. An honest majority cannot do with less: whoever does not
    /// hold the matrix must not see it, and the owner must not see the third component of `b`.
    pub(super) async fn matmul_plain(
        &mut self,
        owner: usize,
        a: Option<&[R]>,
        b: &Share<R>,
        dims: (usize, usize, usize),
    ) -> Result<Share<R>> {
        let shared = self.share_input(owner, a, dims.0 * dims.1, Op::Add).await?;
        self.matmul(&shared, b, dims).await
    }

    /// `x / 2^f` (floor, at most one unit below) for `x` carried by the low `l` bits of its shares,
    /// `|x| < 2^(l-2)`.
    pub(super) async fn trunc_from(&mut self, x: &Share<R>, l: u32, f: u32) -> Result<Share<R>> {
        let n = x.len();
        let top = l - f;
        let half = R::ONE.shl(l - 2);
        // Node 0's side: (a / 2^f - t_a 2^(l-f) - 2^(l-2-f)) and t_a, shared in one input.
        let mine = (self.me == 0).then(|| {
            let mut v: Vec<R> = Vec::with_capacity(2 * n);
            let a: Vec<R> = (0..n).map(|i| x.part(0)[i].add(x.part(1)[i]).add(half).low(l)).collect();
            v.extend(a.iter().map(|a| a.shr(f).sub(R::from_u128(a.bit(l - 1) as u128).shl(top)).sub(half.shr(f))));
            v.extend(a.iter().map(|a| R::from_u128(a.bit(l - 1) as u128)));
            v
        });
        let inputs = self.share_input(0, mine.as_deref(), 2 * n, Op::Add).await?;
        let (side_a, t_a) = (inputs.slice(0..n), inputs.slice(n..2 * n));
        // Nodes 1 and 2's side: b = x_2, which node 1 holds as its second component and node 2 as its first.
        let b: Vec<R> = self.last_component(x).iter().map(|v| v.low(l)).collect();
        let side_b = self.held_by_last_pair(|| b.iter().map(|v| v.shr(f).sub(v.shr(l - 1).shl(top))).collect(), n);
        let t_b = self.held_by_last_pair(|| b.iter().map(|v| v.shr(l - 1).shl(top)).collect(), n);
        let both = self.mul(&t_a, &t_b).await?;
        Ok(side_a.add(&side_b).add(&both))
    }
}
