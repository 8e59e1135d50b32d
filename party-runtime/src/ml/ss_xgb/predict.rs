//! Prediction with a shared ensemble: each node marks, per tree, leaf and row, whether the row's path to that
//! leaf agrees with the splits it owns (its features stay with it); the AND of the nodes' marks is the row's
//! leaf, which selects the shared leaf weight. Only the summed margins are opened, to the receiver.

use super::{Split, Trained};
use crate::error::Result;
use crate::mpc::{Bits, Kernels, Ring, Share};

/// This party's test features (row-major `rows x cols`) and the thresholds its splits refer to.
pub struct Test<'a> {
    /// Feature values.
    pub x: &'a [f64],
    /// Columns.
    pub cols: usize,
    /// Rows.
    pub rows: usize,
    /// Candidates per column, as in training.
    pub thresholds: &'a [Vec<f64>],
}

/// Whether each row may reach each leaf of `splits` (a complete tree of `depth` levels) as far as this node's
/// splits say: `leaves x rows`, 0/1.
fn marks<R: Ring>(me: usize, splits: &[Split], depth: u32, t: &Test<'_>) -> Vec<R> {
    let leaves = 1usize << depth;
    let mut out = vec![R::ONE; leaves * t.rows];
    for (leaf, block) in out.chunks_exact_mut(t.rows).enumerate() {
        for d in 0..depth {
            let j = leaf >> (depth - d);
            let right = (leaf >> (depth - d - 1)) & 1 == 1;
            let split = &splits[(1usize << d) - 1 + j];
            if split.owner.is_none() && right {
                // A node that does not split sends every row left (public: every node marks it).
                block.iter_mut().for_each(|m| *m = R::ZERO);
                continue;
            }
            let Some((c, k)) = split.local.filter(|_| split.owner == Some(me)) else { continue };
            let th = t.thresholds[c][k];
            for (r, m) in block.iter_mut().enumerate() {
                if (t.x[r * t.cols + c] <= th) == right {
                    *m = R::ZERO;
                }
            }
        }
    }
    out
}

/// The margins (`base_margin` plus every tree's leaf weight) of the test rows, opened to node `receiver` only.
pub async fn margins<R: Ring, D: Kernels<R>>(
    mpc: &mut D,
    model: &Trained<R>,
    depth: u32,
    test: &Test<'_>,
    receiver: usize,
) -> Result<Option<Vec<f64>>> {
    let (n, me, f) = (test.rows, mpc.me(), mpc.frac());
    let leaves = 1usize << depth;
    let total = model.trees.len() * leaves * n;
    let mine: Vec<R> = model.trees.iter().flat_map(|tree| marks::<R>(me, &tree.splits, depth, test)).collect();
    let mut at = Vec::with_capacity(mpc.nodes());
    for node in 0..mpc.nodes() {
        at.push(Bits::new(mpc.input(node, (node == me).then_some(&mine[..]), total).await?));
    }
    let mut reach = at[0].clone();
    for other in &at[1..] {
        reach = mpc.and(&reach, other).await?;
    }
    let weights = Share::concat(&model.trees.iter().map(|t| &t.leaves).collect::<Vec<_>>());
    let rep: Vec<Option<usize>> =
        (0..model.trees.len() * leaves).flat_map(|l| std::iter::repeat_n(Some(l), n)).collect();
    let per_leaf = mpc.mul_bit(&reach, &weights.gather(&rep)).await?;
    let sum = per_leaf.weighted_blocks(&vec![R::ONE; model.trees.len() * leaves]);
    let margin = sum.add_public(R::encode(model.base_margin, f));
    Ok(mpc.reveal(&margin, Some(receiver)).await?.map(|v| v.iter().map(|x| x.decode(f)).collect()))
}
