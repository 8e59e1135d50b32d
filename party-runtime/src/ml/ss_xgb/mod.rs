//! SS-XGB (spec section 3) over the MPC device: vertical gradient-boosted trees after SecretFlow's `ss_xgb_v`
//! (Fang et al., "Large-Scale Secure XGB for Vertical Federated Learning", 2020). No file I/O.
//!
//! Each feature owner buckets its own features ([`buckets`]). The label party's label is shared once; the
//! gradients and hessians are computed in MPC from the shared margins. Which rows sit in which node is a
//! vector of shared bits per node, never opened. A level's histograms are every owner's private bucket sums of
//! the shared `[g s_k, h s_k]` columns of all its nodes at once ([`Kernels::bucket_sums`]), summed up to each
//! candidate locally; the gains `G_L^2 / (H_L + lambda) + G_R^2 / (H_R + lambda)` and the argmax over every
//! party's candidates run in MPC, the gains as fractions compared by cross products (no division). Per node two
//! things are opened: which node owns the winning split (to every node), and to that node which of its
//! candidates it is; the owner's plaintext left-of-threshold vector is then shared and multiplied into the
//! node's indicator. Trees are complete to `max_depth`; leaf weights `-learning_rate G / (H + lambda)` stay
//! shared, and so does every margin.

pub mod buckets;
pub mod predict;
#[cfg(test)]
mod tests;

use secretflow_crds::tasks::learning::{Objective, SigType, XgbParams};

use super::phases::Meter;
use crate::crypto::prg::{Prg, Words};
use crate::error::{Error, Result};
use crate::mpc::fixed::INT_BITS;
use crate::mpc::{Bits, Bucketing, Fixed, Kernels, Ring, Share};

/// The public shape: per node, the number of split candidates of each of its features (in its column order).
pub struct Layout {
    /// `counts[i][f]`: node `i`'s feature `f`.
    pub counts: Vec<Vec<usize>>,
}

/// This party's features (row-major `rows x cols`) and their split candidates.
pub struct Own<'a> {
    /// Feature values.
    pub x: &'a [f64],
    /// Columns.
    pub cols: usize,
    /// Rows.
    pub rows: usize,
    /// Candidates per column ([`buckets::thresholds`]).
    pub thresholds: &'a [Vec<f64>],
}

/// An internal node's split: the node owning its feature, and at that node only the feature and candidate.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    /// The owning node; `None` where the node does not split (`gamma`, `min_child_weight`): every row goes left.
    pub owner: Option<usize>,
    /// `(column, candidate)` at the owner, `None` elsewhere.
    pub local: Option<(usize, usize)>,
}

/// One tree: its `2^depth - 1` splits in level order and this party's shares of its `2^depth` leaf weights.
pub struct Tree<R> {
    /// Splits, level by level, left to right.
    pub splits: Vec<Split>,
    /// Leaf weights (fixed point), shared.
    pub leaves: Share<R>,
}

/// The trained ensemble.
pub struct Trained<R> {
    /// The trees in boosting order.
    pub trees: Vec<Tree<R>>,
    /// The initial margin every prediction starts from.
    pub base_margin: f64,
}

/// The initial margin: `base_score` itself for `linear`, its log-odds for `logistic` (as xgboost).
pub fn base_margin(p: &XgbParams) -> f64 {
    match p.objective {
        Objective::Logistic => (p.base_score / (1.0 - p.base_score)).ln(),
        Objective::Linear => p.base_score,
    }
}

/// Public constants of the gain arithmetic: histogram sums are divided by `2^scale` (keeps `G^2` inside the
/// ring), leaf denominators lie in `[2^-lo, 2^hi)`, and the gains are compared as fractions `N / D` with `N` at
/// `frac_num` fraction bits and `D` at `frac_den`: the ring's bits above the largest possible cross product
/// `N_a D_b` (below `2^cross` with its fraction) shared between the two, as fixed point leaves no more.
#[derive(Clone, Copy)]
struct Scaling {
    scale: u32,
    lambda: f64,
    lo: u32,
    hi: u32,
    frac_num: u32,
    frac_den: u32,
    cross: u32,
}

/// The largest `|g|` the gain arithmetic provides for: the logistic gradient `p - y` lies in `[-1, 1]`; the
/// linear residual `margin - y` is assumed below 16 (labels far from the base score need scaling first).
fn gradient_bound(objective: Objective) -> f64 {
    match objective {
        Objective::Logistic => 1.0,
        Objective::Linear => 16.0,
    }
}

impl Scaling {
    fn new(me: &str, p: &XgbParams, n: usize, f: u32, ring_bits: u32) -> Result<Scaling> {
        let scale = ((n.max(2) as f64).log2() / 2.0).ceil() as u32;
        let c = (scale as f64).exp2();
        let h_max = if p.objective == Objective::Logistic { 0.25 } else { 1.0 };
        let lambda = p.reg_lambda / c;
        let lo = (1.0 / lambda).log2().ceil().max(0.0) as u32 + 1;
        let hi = ((h_max * n as f64 + p.reg_lambda) / c).log2().ceil().max(0.0) as u32 + 1;
        // Bounds after scaling: |G| per side, the sum of both sides' denominators, a numerator
        // N = G_L^2 D_R + G_R^2 D_L, and the largest product compared (N_a D_b, or the gamma test's terms).
        let g = gradient_bound(p.objective) * n as f64 / c;
        let d = h_max * n as f64 / c + 2.0 * lambda;
        let num = g * g * d;
        let gamma = p.gamma / c;
        let product = (num * d * d / 4.0).max(num * d).max((g * g + gamma * d) * d * d / 4.0);
        let bits = |x: f64| x.max(1.0).log2().ceil() as u32 + 1;
        // The products forming N are truncated (`< 2^(k-2)` before it); the compared ones only signed.
        let budget = (ring_bits - 2).saturating_sub(bits(product));
        let frac_den = budget.div_ceil(2).min(2 * f);
        let frac_num = (budget - frac_den).min(2 * f);
        let too_big = bits(num) + 2 * f > ring_bits - 2 || frac_num < 12 || frac_den < 12;
        if hi > f || lambda < (f as f64).exp2().recip() * 16.0 || too_big {
            return Err(Error::bad_data(
                me,
                "task_config.params.reg_lambda",
                format!("{n} rows with reg_lambda {} need more than the {f} fraction bits of the field", p.reg_lambda),
            ));
        }
        Ok(Scaling { scale, lambda, lo, hi, frac_num, frac_den, cross: bits(product) + frac_num + frac_den })
    }
}

/// Train as node `mpc.me()` with `own` features (and the label `y` at `label_node`); `done(t)` after tree `t`,
/// each step's cost charged to `meter`'s phases.
#[allow(clippy::too_many_arguments)]
pub async fn train<R: Ring, D: Kernels<R>>(
    me: &str,
    mpc: &mut D,
    p: &XgbParams,
    layout: &Layout,
    own: &Own<'_>,
    (label_node, y): (usize, Option<&[f64]>),
    meter: &mut Meter<'_>,
    mut done: impl FnMut(usize),
) -> Result<Trained<R>> {
    let n = own.rows;
    let encoded = y.map(|y| mpc.encode(y));
    let y = mpc.input(label_node, encoded.as_deref(), n).await?;
    let base = base_margin(p);
    let scaling = Scaling::new(me, p, n, mpc.frac(), R::BITS)?;
    let mut margin = mpc.constant(base, n);
    let counts = layout.counts.iter().map(|c| c.iter().map(|t| t + 1).collect()).collect();
    let mut bk = Bucketing::new(counts, mpc.me(), n, buckets::row_buckets(own.x, own.cols, own.thresholds))?;
    let mut trees = Vec::with_capacity(p.num_boost_round as usize);
    for t in 0..p.num_boost_round {
        let mut prg = Prg::new(seed_key(p.seed), t as u64);
        let selected = colsample(layout, p.colsample_by_tree, &mut prg);
        let (mut g, mut h) = gradients(mpc, p.objective, &margin, &y).await?;
        meter.lap("train: gradients");
        if p.subsample < 1.0 {
            let rows: Vec<Option<usize>> = (0..n).map(|r| (unit(&mut prg) < p.subsample).then_some(r)).collect();
            (g, h) = (g.gather(&rows), h.gather(&rows));
        }
        let (tree, delta) = grow(mpc, p, (layout, &mut bk), own, &selected, (&g, &h), scaling, meter).await?;
        margin = margin.add(&delta);
        trees.push(tree);
        done(t as usize + 1);
    }
    Ok(Trained { trees, base_margin: base })
}

/// A uniform number in `[0, 1)` from the public sampling stream.
fn unit(prg: &mut Prg) -> f64 {
    (prg.word() >> 11) as f64 / (1u64 << 53) as f64
}

fn seed_key(seed: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..].copy_from_slice(b"ss_xgb\0\0");
    key
}

/// The features a tree may split on (`colsample_by_tree` of all, at least one), per node and column, drawn
/// from the public seed so every node draws the same.
fn colsample(layout: &Layout, fraction: f64, prg: &mut Prg) -> Vec<Vec<bool>> {
    let all: Vec<(usize, usize)> =
        layout.counts.iter().enumerate().flat_map(|(i, c)| (0..c.len()).map(move |f| (i, f))).collect();
    let keep = ((fraction * all.len() as f64).ceil() as usize).clamp(1, all.len().max(1));
    let mut order: Vec<usize> = (0..all.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, (prg.word() % (i as u64 + 1)) as usize);
    }
    let mut selected: Vec<Vec<bool>> = layout.counts.iter().map(|c| vec![false; c.len()]).collect();
    for &k in order.iter().take(keep) {
        let (i, f) = all[k];
        selected[i][f] = true;
    }
    selected
}

/// Gradients and hessians of the loss at the shared margins.
async fn gradients<R: Ring, D: Kernels<R>>(
    mpc: &mut D,
    objective: Objective,
    margin: &Share<R>,
    y: &Share<R>,
) -> Result<(Share<R>, Share<R>)> {
    match objective {
        Objective::Logistic => {
            let prob = mpc.sigmoid(margin, SigType::Sr).await?;
            let one_minus = prob.sub_from_public(R::encode(1.0, mpc.frac()));
            let h = mpc.mul(&prob, &one_minus).await?;
            Ok((prob.sub(y), h))
        }
        Objective::Linear => Ok((margin.sub(y), mpc.constant(1.0, margin.len()))),
    }
}

/// One tree, level by level; returns it and the change to every row's margin.
#[allow(clippy::too_many_arguments)]
async fn grow<R: Ring, D: Kernels<R>>(
    mpc: &mut D,
    p: &XgbParams,
    (layout, bk): (&Layout, &mut Bucketing),
    own: &Own<'_>,
    selected: &[Vec<bool>],
    (g, h): (&Share<R>, &Share<R>),
    sc: Scaling,
    meter: &mut Meter<'_>,
) -> Result<(Tree<R>, Share<R>)> {
    let (n, me, f) = (own.rows, mpc.me(), mpc.frac());
    let m: Vec<usize> = layout
        .counts
        .iter()
        .zip(selected)
        .map(|(c, s)| c.iter().zip(s).filter(|(_, s)| **s).map(|(c, _)| c).sum())
        .collect();
    let sel: Vec<(usize, &[f64])> =
        (0..own.cols).filter(|&c| selected[me][c]).map(|c| (c, &own.thresholds[c][..])).collect();
    let cand: Vec<(usize, usize)> = sel.iter().flat_map(|(c, t)| (0..t.len()).map(move |k| (*c, k))).collect();
    let total: usize = m.iter().sum();
    let mut s: Vec<Bits<R>> = vec![Bits::new(Share::constant(mpc.holding(), R::ONE, n))];
    let mut splits = Vec::new();
    // Which nodes of the level may still split (a node that did not split ends its subtree).
    let mut active = vec![true];
    // The previous level's per-node [g s], [h s] and candidate sums: a right child's are its parent's minus
    // its left sibling's, so below the root only left children take products (half the histogram work).
    let mut parent: Option<[Share<R>; 4]> = None;
    // The last level's children's scaled G and H (leaf order), from its winning candidates.
    let mut leaf_sums = None;
    for depth in 0..p.max_depth {
        let k = s.len();
        let lefts: Vec<Bits<R>> = if parent.is_some() { s.iter().step_by(2).cloned().collect() } else { s.clone() };
        let (gs, hs) = node_sums(mpc, &lefts, g, h).await?;
        meter.lap("train: node sums");
        let (gl, hl) = histograms(mpc, (layout, bk), selected, (&gs, &hs), n).await?;
        meter.lap("train: histograms");
        let [gs, hs, gl, hl] = match parent.take() {
            None => [gs, hs, gl, hl],
            Some(up) => [(gs, n), (hs, n), (gl, total), (hl, total)]
                .into_iter()
                .zip(up)
                .map(|((left, len), up)| interleave(&left, &up.sub(&left), len))
                .collect::<Vec<_>>()
                .try_into()
                .map_err(|_| Error::Internal("four statistics".into()))?,
        };
        let rep: Vec<Option<usize>> = (0..k).flat_map(|j| std::iter::repeat_n(Some(j), total)).collect();
        let (gt, ht) = (gs.block_sums(n).gather(&rep), hs.block_sums(n).gather(&rep));
        let stats = Share::concat(&[&gl, &gt.sub(&gl), &hl, &ht.sub(&hl)]);
        let stats = if sc.scale > 0 { mpc.trunc(&stats, sc.scale).await? } else { stats };
        let len = k * total;
        let (grads, hess) = (stats.slice(0..2 * len), stats.slice(2 * len..4 * len));
        // Each candidate's gain G_L^2 / D_L + G_R^2 / D_R (D = H + lambda) as the fraction N / D_L D_R with
        // N = G_L^2 D_R + G_R^2 D_L: the argmax compares fractions by cross products, so nothing is divided.
        // With pruning, each node's own G and D (from its first candidate's sides) come along.
        let lam = R::encode(sc.lambda, f);
        let first: Vec<Option<usize>> = (0..k).map(|j| Some(j * total)).collect();
        let node = |v: &Share<R>| v.slice(0..len).add(&v.slice(len..2 * len)).gather(&first);
        let dens = hess.add_public(lam);
        let g_in = if prunes(p) { Share::concat(&[&grads, &node(&grads)]) } else { grads.clone() };
        let squares = mpc.mul(&g_in, &g_in).await?;
        let (dl, dr) = (dens.slice(0..len), dens.slice(len..2 * len));
        let terms =
            mpc.mul_raw(&Share::concat(&[&squares.slice(0..2 * len), &dl]), &Share::concat(&[&dr, &dl, &dr])).await?;
        let num = terms.slice(0..len).add(&terms.slice(len..2 * len));
        let mut num = rescale(mpc, &num, 2 * f, sc.frac_num).await?;
        let den = rescale(mpc, &terms.slice(2 * len..3 * len), 2 * f, sc.frac_den).await?;
        if p.min_child_weight > 0.0 {
            // A candidate either of whose children has less hessian than min_child_weight gains nothing.
            let least = R::encode(p.min_child_weight / (sc.scale as f64).exp2(), f);
            let light = mpc.msb(&hess.add_public(least.neg()), f + INT_BITS, 0).await?;
            let valid = mpc.and(&light.slice(0..len).not(), &light.slice(len..2 * len).not()).await?;
            num = mpc.mul_bit(&valid, &num).await?;
        }
        // At the last level the winners' G_L, G_R, H_L, H_R ride along: they are the leaves' sums.
        let last = depth + 1 == p.max_depth;
        let sides = |v: &Share<R>| [v.slice(0..len), v.slice(len..2 * len)];
        let payload: Vec<Share<R>> = if last { [sides(&grads), sides(&hess)].concat() } else { Vec::new() };
        meter.lap("train: gains");
        let (best, best_num, best_den, won) = argmax_ratio(mpc, (&num, &den), &payload, k, total, sc.cross).await?;
        meter.lap("train: argmax");
        // Which nodes split (opened to all, as the tree's shape): those whose parent split and whose best split
        // reduces the loss by more than gamma: N / D - G^2 / D_p > gamma, times D D_p > 0.
        let split: Vec<bool> = if prunes(p) {
            let gamma = p.gamma / (sc.scale as f64).exp2();
            let d_parent = node(&dens).add_public(lam.neg());
            let parent = squares.slice(2 * len..2 * len + k).add(&mpc.mul_public(&d_parent, gamma).await?);
            let parent = rescale(mpc, &parent, f, sc.frac_num).await?;
            let d_parent = rescale(mpc, &d_parent, f, sc.frac_den).await?;
            let both =
                mpc.mul_raw(&Share::concat(&[&parent, &best_num]), &Share::concat(&[&best_den, &d_parent])).await?;
            let short = both.slice(0..k).sub(&both.slice(k..2 * k));
            let bits = mpc.msb(&short, sc.cross, 0).await?;
            let opened = mpc.reveal(bits.share(), None).await?.unwrap_or_default();
            active.iter().zip(&opened).map(|(a, b)| *a && b.bit(0)).collect()
        } else {
            active.clone()
        };
        // Which node owns each winner (opened to all: one bit per node boundary it lies beyond), then the winner
        // to its owner.
        let bound = usize::BITS - total.leading_zeros() + 2;
        let offsets = starts(&m);
        let beyond: Vec<Share<R>> =
            offsets[1..].iter().map(|&o| best.add_public(R::from_u128(o as u128).neg())).collect();
        let below = mpc.msb(&Share::concat(&beyond.iter().collect::<Vec<_>>()), bound, 0).await?;
        let opened = mpc.reveal(below.share(), None).await?.unwrap_or_default();
        let owners: Vec<Option<usize>> = (0..k)
            .map(|j| split[j].then(|| (0..beyond.len()).filter(|&b| !opened[b * k + j].bit(0)).count()))
            .collect();
        let mut local = vec![None; k];
        for (o, &offset) in offsets.iter().enumerate() {
            let of: Vec<Option<usize>> = (0..k).filter(|&j| owners[j] == Some(o)).map(Some).collect();
            if let Some(values) = mpc.reveal(&best.gather(&of), Some(o)).await? {
                for (j, v) in of.iter().flatten().zip(values) {
                    let c = (v.to_u128() as usize).checked_sub(offset).and_then(|c| cand.get(c)).copied();
                    local[*j] = Some(c.ok_or_else(|| Error::Internal("an opened split is out of range".into()))?);
                }
            }
        }
        // The owners share their left-of-threshold rows; the children's indicators follow.
        let mut lefts: Vec<Option<Share<R>>> = vec![None; k];
        for o in 0..m.len() {
            let mine_nodes: Vec<usize> = (0..k).filter(|&j| owners[j] == Some(o)).collect();
            let values: Option<Vec<R>> = (o == me).then(|| {
                mine_nodes
                    .iter()
                    .flat_map(|&j| {
                        let (c, t) = local[j].unwrap_or((0, 0));
                        let th = own.thresholds[c][t];
                        (0..n).map(move |r| if own.x[r * own.cols + c] <= th { R::ONE } else { R::ZERO })
                    })
                    .collect()
            });
            let shared = mpc.input(o, values.as_deref(), mine_nodes.len() * n).await?;
            for (i, &j) in mine_nodes.iter().enumerate() {
                lefts[j] = Some(shared.slice(i * n..(i + 1) * n));
            }
        }
        // A node that does not split sends every row left: its left child stands in for it down to a leaf.
        let l_all: Vec<Bits<R>> = lefts
            .into_iter()
            .map(|l| Bits::new(l.unwrap_or_else(|| Share::constant(mpc.holding(), R::ONE, n))))
            .collect();
        let left = mpc
            .and(&Bits::concat(&s.iter().collect::<Vec<_>>()), &Bits::concat(&l_all.iter().collect::<Vec<_>>()))
            .await?;
        // s AND NOT L = s XOR (s AND L): local.
        s = (0..k)
            .flat_map(|j| {
                let l = left.slice(j * n..(j + 1) * n);
                let r = s[j].xor(&l);
                [l, r]
            })
            .collect();
        if last {
            // A node that does not split sends every row left: its left leaf has its sums, its right none.
            let (g_node, h_node) = (node(&grads), node(&hess));
            let pick = |l: &Share<R>, r: &Share<R>, all: &Share<R>| {
                let at = |j: usize, right: bool| match (split[j], right) {
                    (true, false) => Some(j),
                    (true, true) => Some(k + j),
                    (false, false) => Some(2 * k + j),
                    (false, true) => None,
                };
                let idx: Vec<Option<usize>> = (0..2 * k).map(|c| at(c / 2, c % 2 == 1)).collect();
                Share::concat(&[l, r, all]).gather(&idx)
            };
            leaf_sums = Some((pick(&won[0], &won[1], &g_node), pick(&won[2], &won[3], &h_node)));
        }
        splits.extend((0..k).map(|j| Split { owner: owners[j], local: local[j] }));
        active = split.iter().flat_map(|&a| [a, a]).collect();
        parent = Some([gs, hs, gl, hl]);
        meter.lap("train: splits and indicators");
    }
    // Leaf weights -lr G / (H + lambda), then each row's change: its leaf's weight.
    let k = s.len();
    let (gs, hs) = leaf_sums.ok_or_else(|| Error::Internal("a tree without levels".into()))?;
    let den = hs.add_public(R::encode(sc.lambda, f));
    let w = mpc.div(&gs, &den, (sc.lo, sc.hi)).await?;
    let leaves = mpc.mul_public(&w, -p.learning_rate).await?;
    let rep: Vec<Option<usize>> = (0..k).flat_map(|j| std::iter::repeat_n(Some(j), n)).collect();
    let s_all = Bits::concat(&s.iter().collect::<Vec<_>>());
    let per_row = mpc.mul_bit(&s_all, &leaves.gather(&rep)).await?;
    let delta = per_row.weighted_blocks(&vec![R::ONE; k]);
    meter.lap("train: leaves");
    Ok((Tree { splits, leaves }, delta))
}

/// Node-major candidate sums `G_L`, `H_L` (node `j`, global candidate `c` at `j * total + c`) of the nodes
/// whose `[g s_j]`, `[h s_j]` are given (`n` each): every owner's bucket sums of them, all at once
/// ([`Kernels::bucket_sums`]), then each candidate's as its buckets' up to it (local).
async fn histograms<R: Ring, D: Kernels<R>>(
    mpc: &mut D,
    (layout, bk): (&Layout, &mut Bucketing),
    selected: &[Vec<bool>],
    (gs, hs): (&Share<R>, &Share<R>),
    n: usize,
) -> Result<(Share<R>, Share<R>)> {
    let k = gs.len() / n.max(1);
    let q = 2 * k;
    // Operand rows: one per data row, columns [g s_j, h s_j] for each node j.
    let idx: Vec<Option<usize>> =
        (0..n).flat_map(|r| (0..k).flat_map(move |j| [Some(j * n + r), Some(k * n + j * n + r)])).collect();
    let b = Share::concat(&[gs, hs]).gather(&idx);
    // Features without candidates have no sums to take.
    let splittable: Vec<Vec<bool>> =
        layout.counts.iter().zip(selected).map(|(c, s)| c.iter().zip(s).map(|(c, s)| *s && *c > 0).collect()).collect();
    let sums = mpc.bucket_sums(bk, &splittable, &b, q).await?;
    // Candidate t of a feature with T candidates (T + 1 buckets) sums buckets 0..=t.
    let cumulative = |s: Share<R>, counts: Vec<usize>| {
        let holding = s.holding();
        let parts = s.into_parts().into_iter().map(|p| {
            let mut out = Vec::with_capacity(p.len());
            let mut at = 0;
            for &t in &counts {
                let mut acc = vec![R::ZERO; q];
                for bucket in at..at + t {
                    acc.iter_mut().zip(&p[bucket * q..(bucket + 1) * q]).for_each(|(a, v)| *a = a.add(*v));
                    out.extend_from_slice(&acc);
                }
                at += t + 1;
            }
            out
        });
        Share::new(holding, parts.collect())
    };
    let sums: Vec<Share<R>> = sums
        .into_iter()
        .zip(layout.counts.iter().zip(&splittable))
        .map(|(s, (c, keep))| cumulative(s, c.iter().zip(keep).filter(|(_, k)| **k).map(|(c, _)| *c).collect()))
        .collect();
    let m: Vec<usize> = sums.iter().map(|s| s.len() / q.max(1)).collect();
    // Node o's candidates follow the earlier nodes' (each a block of 2k columns per candidate).
    let offsets = starts(&m);
    let at = |j: usize, c: usize, col: usize| -> Option<usize> {
        let o = offsets.iter().rposition(|&start| start <= c)?;
        Some(offsets[o] * 2 * k + (c - offsets[o]) * 2 * k + 2 * j + col)
    };
    let total: usize = m.iter().sum();
    let cat = Share::concat(&sums.iter().collect::<Vec<_>>());
    let pick =
        |col: usize| cat.gather(&(0..k).flat_map(|j| (0..total).map(move |c| at(j, c, col))).collect::<Vec<_>>());
    Ok((pick(0), pick(1)))
}

/// Where each node's candidates start in the global candidate order (node 0's first).
fn starts(m: &[usize]) -> Vec<usize> {
    m.iter().scan(0, |acc, &mi| Some(std::mem::replace(acc, *acc + mi))).collect()
}

/// Blocks of `len` taken alternately from `left` and `right` (children in level order).
fn interleave<R: Ring>(left: &Share<R>, right: &Share<R>, len: usize) -> Share<R> {
    let k = left.len() / len.max(1);
    let idx: Vec<Option<usize>> =
        (0..2 * k).flat_map(|j| (0..len).map(move |i| Some((j % 2) * k * len + (j / 2) * len + i))).collect();
    Share::concat(&[left, right]).gather(&idx)
}

/// `s_j g` and `s_j h` for every node `j` (one batch of multiplexers, each bit's OT carrying both), each
/// concatenated over the nodes.
async fn node_sums<R: Ring, D: Kernels<R>>(
    mpc: &mut D,
    s: &[Bits<R>],
    g: &Share<R>,
    h: &Share<R>,
) -> Result<(Share<R>, Share<R>)> {
    let (k, n) = (s.len(), g.len());
    let s_all = Bits::concat(&s.iter().collect::<Vec<_>>());
    // Row r of node j at 2 (j n + r) (g) and 2 (j n + r) + 1 (h).
    let pairs: Vec<Option<usize>> = (0..k * n).flat_map(|i| [Some(i % n), Some(n + i % n)]).collect();
    let prod = mpc.mul_bit_each(&s_all, &Share::concat(&[g, h]).gather(&pairs), 2).await?;
    let side = |c: usize| prod.gather(&(0..k * n).map(|i| Some(2 * i + c)).collect::<Vec<_>>());
    Ok((side(0), side(1)))
}

/// `x` at `from` fraction bits brought to `to` (a shift up, or a truncation).
async fn rescale<R: Ring, D: Kernels<R>>(mpc: &mut D, x: &Share<R>, from: u32, to: u32) -> Result<Share<R>> {
    match to.cmp(&from) {
        std::cmp::Ordering::Less => mpc.trunc(x, from - to).await,
        _ => Ok(x.shl(to - from)),
    }
}

/// Per node (`k` blocks of `m` fractions `N / D`, every `D > 0`), the index of the largest (the first of
/// equals), its `N` and `D` and its entry of each `payload` (shared like them, `k m` each): a tournament of
/// `log2 m` rounds, each comparing `N_a D_b` with `N_b D_a` (untruncated products below `2^bound`) and moving
/// the winners' values by multiplexers.
async fn argmax_ratio<R: Ring, D: Kernels<R>>(
    mpc: &mut D,
    (num, den): (&Share<R>, &Share<R>),
    payload: &[Share<R>],
    k: usize,
    m: usize,
    bound: u32,
) -> Result<(Share<R>, Share<R>, Share<R>, Vec<Share<R>>)> {
    let indices: Vec<R> = (0..k).flat_map(|_| (0..m).map(|c| R::from_u128(c as u128))).collect();
    // Index, numerator, denominator and the payload, each `k` blocks of the entries still in play.
    let mut vals: Vec<Share<R>> = [Share::public(mpc.holding(), &indices), num.clone(), den.clone()].into();
    vals.extend(payload.iter().cloned());
    let lanes = vals.len();
    let mut width = m;
    while width > 1 {
        let half = width / 2;
        let kh = k * half;
        let pick = |off: usize| -> Vec<Option<usize>> {
            (0..k).flat_map(|j| (0..half).map(move |i| Some(j * width + 2 * i + off))).collect()
        };
        let (a, b) = (pick(0), pick(1));
        let left: Vec<Share<R>> = vals.iter().map(|v| v.gather(&a)).collect();
        let right: Vec<Share<R>> = vals.iter().map(|v| v.gather(&b)).collect();
        let cross = mpc.mul_raw(&Share::concat(&[&left[1], &right[1]]), &Share::concat(&[&right[2], &left[2]])).await?;
        let lt = mpc.msb(&cross.slice(0..kh).sub(&cross.slice(kh..2 * kh)), bound, 0).await?;
        let moves: Vec<Share<R>> = right.iter().zip(&left).map(|(r, l)| r.sub(l)).collect();
        let d =
            mpc.mul_bit(&Bits::concat(&vec![&lt; lanes]), &Share::concat(&moves.iter().collect::<Vec<_>>())).await?;
        let next = half + width % 2;
        // Winners of each node, then its odd one out.
        let order: Vec<Option<usize>> =
            (0..k).flat_map(|j| (0..next).map(move |i| Some(if i < half { j * half + i } else { kh + j }))).collect();
        let odd: Vec<Option<usize>> = (0..k).map(|j| Some(j * width + width - 1)).collect();
        vals = (0..lanes)
            .map(|v| {
                let won = left[v].add(&d.slice(v * kh..(v + 1) * kh));
                Share::concat(&[&won, &vals[v].gather(&odd)]).gather(&order)
            })
            .collect();
        width = next;
    }
    let rest = vals.split_off(3);
    let [idx, num, den]: [Share<R>; 3] = vals.try_into().map_err(|_| Error::Internal("three lanes".into()))?;
    Ok((idx, num, den, rest))
}

/// Whether nodes may stop splitting (`gamma` or `min_child_weight` set), which costs a comparison per node.
fn prunes(p: &XgbParams) -> bool {
    p.gamma > 0.0 || p.min_child_weight > 0.0
}
