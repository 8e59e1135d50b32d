//! SS-LR (spec section 2) over the MPC device: vertical logistic / linear regression by mini-batch SGD with
//! SecretFlow's SS-SGD schedule (rows in file order, batches of `batch_size`, `w -= lr * (X^T (p - y) / b +
//! penalty)`), the weights secret-shared from start to end. No file I/O: the job (`jobs::learning::ss_lr`) loads
//! the data, checks and writes the outputs, and reports.
//!
//! Each feature block stays with its owner in plaintext and is multiplied with the shared weights (and its
//! transpose with the shared residuals), both blocks' at once in opposite directions, by RLWE
//! or OT ([`Kernels::matmul_plain_each`]), per call whichever costs less for its shape
//! ([`crate::mpc::cost`]; small batches take OT); OT always where a block's values are too large for the
//! lattice parameters. The transpose carries the step size `lr / b` in its encoding, so the product needs one
//! truncation to be the update. The label party's block carries the intercept column. The label is shared once.
//! Only three things are ever opened: one bit per epoch for the `eps` early stop (whether every weight moved
//! less than `eps`), the scalar `final_loss`, and the test logits to the prediction receiver.

use secretflow_crds::tasks::learning::{LrParams, Penalty, RegType, SigType};

use super::phases::Meter;
use crate::context::PartyContext;
use crate::error::{Error, Result};
use crate::mpc::fixed::INT_BITS;
use crate::mpc::kernels::Operand;
use crate::mpc::{Fixed, Kernels, Ring, Share};

/// A trained model: this party's shares of each node's weights, and how training went.
pub struct Trained<R> {
    /// Node `i`'s weights (its block's columns, then the intercept at the label node), this party's shares.
    pub w: Vec<Share<R>>,
    /// Epochs run (fewer than asked when `eps` stopped early).
    pub epochs: u32,
    /// The training loss over every row, opened to every node.
    pub final_loss: f64,
}

/// Train on this party's `features` (and the label `y` at the label node), the nodes' blocks laid out by
/// `blocks`; each phase's cost goes to `meter`.
#[allow(clippy::too_many_arguments)]
pub async fn train<R: Ring, D: Kernels<R>>(
    ctx: &PartyContext,
    mpc: &mut D,
    meter: &mut Meter<'_>,
    p: &LrParams,
    blocks: &[Block],
    label_node: usize,
    features: Features<'_>,
    y_plain: Option<&[f64]>,
) -> Result<Trained<R>> {
    let me = ctx.party.as_str();
    let f = mpc.frac();
    let mine = mpc.me();
    let x = encode_block(mpc, features, blocks[mine].bias);
    let n = features.rows;
    let y_encoded = y_plain.map(|y| mpc.encode(y));
    let y = mpc.input(label_node, y_encoded.as_deref(), n).await?;
    meter.lap("share the label");
    let mut w: Vec<Share<R>> = blocks.iter().map(|b| mpc.constant(0.0, b.width())).collect();
    let batch = (p.batch_size as usize).clamp(1, n.max(1));
    // The smallest batch (the last, when it is short) has the largest step size: refused before any work.
    step_bits_for(me, p.learning_rate, if n.is_multiple_of(batch) { batch } else { n % batch }, f, R::BITS)?;
    plain_entries(mpc, &x, batch.max(blocks[mine].width())).await?;
    let mut epochs_run = 0;
    for epoch in 0..p.epochs {
        let before = Share::concat(&w.iter().collect::<Vec<_>>());
        for start in (0..n).step_by(batch) {
            let range = start..(start + batch).min(n);
            let b = range.len();
            let (z, l) = forward_raw(mpc, blocks, &x, &w, range.clone()).await?;
            meter.lap("forward X w");
            // The truncation of z goes into the sigmoid's first step (t1 divides by 4 in the same one).
            let pred = match p.reg_type {
                RegType::Logistic => mpc.sigmoid_from(&z, l, f, p.sig_type).await?,
                RegType::Linear => mpc.trunc_from(&z, l, f).await?,
            };
            meter.lap("sigmoid");
            let e = pred.sub(&y.slice(range.clone()));
            let bits = step_bits_for(me, p.learning_rate, b, f, R::BITS)?;
            let xt = scaled_transpose(features, blocks[mine].bias, range.clone(), p.learning_rate / b as f64, bits);
            let dims: Vec<_> = blocks.iter().map(|block| (block.width(), b, 1)).collect();
            // With a sigmoid in [0, 1], |e| = |p - y| <= 1: the products need only f + 3 bits of it. SPU's linear
            // mm1 is not clipped: with logits below 2^16 (as the loss and the comparisons take them),
            // |e| < 2^13 + 1 and they need f + 16.
            let operand = match (p.reg_type, p.sig_type) {
                (RegType::Linear, _) => Operand::Full,
                (RegType::Logistic, SigType::Mm1) => Operand::Bounded(f + 16),
                (RegType::Logistic, _) => Operand::Bounded(f + 3),
            };
            let es = vec![&e; blocks.len()];
            let (g, _) = mpc.matmul_plain_each(&xt, &es, &dims, operand).await?;
            let step = mpc.trunc(&Share::concat(&g.iter().collect::<Vec<_>>()), bits).await?;
            let mut at = 0;
            for (i, block) in blocks.iter().enumerate() {
                let step = step.slice(at..at + block.width());
                at += block.width();
                if w[i].is_empty() {
                    continue;
                }
                let strength = p.learning_rate * p.l2_norm;
                let update = match penalty(mpc, &w[i], block.bias, p.penalty, strength).await? {
                    Some(reg) => step.add(&reg),
                    None => step,
                };
                w[i] = w[i].sub(&update);
            }
            meter.lap("backward X^T e and update");
        }
        epochs_run = epoch + 1;
        ctx.progress(0.1 + 0.75 * epochs_run as f64 / p.epochs as f64, &format!("epoch {epochs_run}"));
        let moved = before.sub(&Share::concat(&w.iter().collect::<Vec<_>>()));
        let stop = p.eps > 0.0 && mpc.all_below(&moved, p.eps).await?;
        meter.lap("early-stop check");
        if stop {
            break;
        }
    }
    ctx.progress(0.85, "final loss");
    let z = forward_raw(mpc, blocks, &x, &w, 0..n).await?;
    let final_loss = loss(mpc, z, &y, y_plain, label_node, p.reg_type).await?;
    meter.lap("final loss");
    Ok(Trained { w, epochs: epochs_run, final_loss })
}

/// The logits `X w` of this party's test `features`, opened to node `receiver` only (`Some` there).
pub async fn predict_logits<R: Ring, D: Kernels<R>>(
    mpc: &mut D,
    blocks: &[Block],
    w: &[Share<R>],
    features: Features<'_>,
    receiver: usize,
) -> Result<Option<Vec<f64>>> {
    let f = mpc.frac();
    let x = encode_block(mpc, features, blocks[mpc.me()].bias);
    plain_entries(mpc, &x, blocks[mpc.me()].width()).await?;
    let (z, l) = forward_raw(mpc, blocks, &x, w, 0..features.rows).await?;
    let z = mpc.trunc_from(&z, l, f).await?;
    Ok(mpc.reveal(&z, Some(receiver)).await?.map(|z| mpc.decode(&z)))
}

/// One node's feature block: its columns (plus the intercept at the label node).
pub struct Block {
    /// Its columns' names.
    pub names: Vec<String>,
    /// Whether it carries the intercept's column of ones (the label node's block).
    pub bias: bool,
}

impl Block {
    /// Columns, the intercept included.
    pub fn width(&self) -> usize {
        self.names.len() + self.bias as usize
    }
}

/// This party's plaintext feature block (no intercept): `rows x cols`, row-major.
#[derive(Clone, Copy)]
pub struct Features<'a> {
    /// The values.
    pub x: &'a [f64],
    /// Columns.
    pub cols: usize,
    /// Rows.
    pub rows: usize,
}

/// This party's plaintext block, encoded, `rows x width` (the intercept's 1 last with `bias`).
fn encode_block<R: Ring, D: Kernels<R>>(mpc: &D, data: Features<'_>, bias: bool) -> Vec<R> {
    let (d, f) = (data.cols, mpc.frac());
    let mut out = Vec::with_capacity(data.rows * (d + bias as usize));
    for row in data.x.chunks(d.max(1)).take(data.rows) {
        out.extend(mpc.encode(&row[..d]));
        if bias {
            out.push(R::encode(1.0, f));
        }
    }
    if d == 0 && bias {
        out = vec![R::encode(1.0, f); data.rows];
    }
    out
}

/// `X w` for the rows `range`, not truncated, with the `l` it is valid mod: every block's plaintext-times-shared
/// product at once. The backend may compute it in the ring `Z_2^l` with `l = 2f + 18` (enough for
/// `|X w| < 2^16`, the logit range the loss already assumes), about `(l / k)^2` of the full ring's OT traffic;
/// the truncation lifts it to `Z_2^k`.
async fn forward_raw<R: Ring, D: Kernels<R>>(
    mpc: &mut D,
    blocks: &[Block],
    x: &[R],
    w: &[Share<R>],
    range: std::ops::Range<usize>,
) -> Result<(Share<R>, u32)> {
    let b = range.len();
    let d = blocks[mpc.me()].width();
    let mine = &x[range.start * d..range.end * d];
    let l = (2 * mpc.frac() + 18).min(R::BITS);
    let dims: Vec<_> = blocks.iter().map(|block| (b, block.width(), 1)).collect();
    let (z, valid) = mpc.matmul_plain_each(mine, &w.iter().collect::<Vec<_>>(), &dims, Operand::ResultMod(l)).await?;
    // Every node's product has b rows (zeros for a node without columns).
    let sum = z.iter().skip(1).fold(z[0].clone(), |acc, z| acc.add(z));
    Ok((sum, valid))
}

/// Tell the device the largest entry of this party's encoded block `x` and the most entries one product row
/// may take (`widest`), so it can pick the products' method.
async fn plain_entries<R: Ring, D: Kernels<R>>(mpc: &mut D, x: &[R], widest: usize) -> Result<()> {
    let max_abs = x.iter().map(|v| crate::mpc::signed(*v).unsigned_abs()).max().unwrap_or(0);
    mpc.plain_entries(max_abs, widest).await
}

/// The fraction bits `f + s` at which the backward product's plaintext `X^T` carries the step size `c = lr / b`,
/// with `s = floor(log2(1 / c))`: each entry `x c 2^(f + s)` is at most `x`'s own encoding (`c 2^s` is in
/// `(1/2, 1]`, so the RLWE fit still holds) and the product `X^T e` then needs one truncation by `f + s` to be
/// the step at scale `f`, where a truncation and a public product took two rounds. `None` when `c > 2^(f-1)`.
fn step_bits(c: f64, f: u32, k: u32) -> Option<u32> {
    let bits = f as f64 + (1.0 / c).log2().floor();
    (bits >= 1.0).then(|| bits.min((k - 3) as f64) as u32)
}

/// [`step_bits`] for `learning_rate / b`, or the ValueError naming `learning_rate` when it is too large.
fn step_bits_for(party: &str, learning_rate: f64, b: usize, f: u32, k: u32) -> Result<u32> {
    let c = learning_rate / b as f64;
    step_bits(c, f, k).ok_or_else(|| {
        Error::bad_data(
            party,
            "task_config.params.learning_rate",
            format!("learning_rate / batch_size = {c} must be below 2^{}", f - 1),
        )
    })
}

/// `c X^T` for the rows `range` of this party's block (`d` columns, then the intercept's 1 with `bias`),
/// encoded with `bits` fraction bits, `width x b` row-major.
fn scaled_transpose<R: Ring>(
    data: Features<'_>,
    bias: bool,
    rows: std::ops::Range<usize>,
    c: f64,
    bits: u32,
) -> Vec<R> {
    let (d, b) = (data.cols, rows.len());
    let mut out = vec![R::ZERO; (d + bias as usize) * b];
    for (r, i) in rows.enumerate() {
        for (j, v) in data.x[i * d..(i + 1) * d].iter().enumerate() {
            out[j * b + r] = R::encode(v * c, bits);
        }
        if bias {
            out[d * b + r] = R::encode(c, bits);
        }
    }
    out
}

/// The penalty's step for one block (`lr * l2_norm * w` or `lr * l2_norm * sign(w)`), the intercept exempt.
async fn penalty<R: Ring, D: Kernels<R>>(
    mpc: &mut D,
    w: &Share<R>,
    bias: bool,
    kind: Penalty,
    strength: f64,
) -> Result<Option<Share<R>>> {
    let reg = match kind {
        Penalty::None => return Ok(None),
        Penalty::L2 => mpc.mul_public(w, strength).await?,
        Penalty::L1 => {
            // strength * (1 - 2 [w < 0])
            let neg = mpc.msb(w, mpc.frac() + INT_BITS, 0).await?;
            let twice = mpc.mul_bit(&neg, &mpc.constant(2.0 * strength, w.len())).await?;
            mpc.constant(strength, w.len()).sub(&twice)
        }
    };
    if bias && !reg.is_empty() {
        let last = reg.len() - 1;
        return Ok(Some(Share::concat(&[&reg.slice(0..last), &mpc.constant(0.0, 1)])));
    }
    Ok(Some(reg))
}

/// The training loss, opened as one scalar: mean squared error (linear) or the second-order Taylor expansion
/// of the log loss around 0, `log 2 + (1/2 - y) z + z^2 / 8` (logistic; what SecretFlow's t1 model fits).
async fn loss<R: Ring, D: Kernels<R>>(
    mpc: &mut D,
    (z, zl): (Share<R>, u32),
    y: &Share<R>,
    y_plain: Option<&[f64]>,
    label_node: usize,
    reg: RegType,
) -> Result<f64> {
    let n = z.len();
    let f = mpc.frac();
    // On FM64 the sum of n squares at scale 2f could overflow: square at scale f instead (half the bits).
    let shift = if R::BITS == 64 { f / 2 } else { 0 };
    // z is the untruncated X w (scale 2f, valid mod 2^zl): one truncation takes it, or the residual, to f - shift.
    let base = match reg {
        RegType::Linear => z.sub(&y.shl(f)),
        RegType::Logistic => z,
    };
    let v = mpc.trunc_from(&base, zl, f + shift).await?;
    let scale_bits = 2 * (f - shift);
    // sum v^2 from the elementwise squares: RLWE slot products in the two-party default (OT below 2,048 rows,
    // dealt triples in the dealer mode), about a third of the time the OT product `v_0^T v` took at 100,000 rows.
    let squares = mpc.mul_raw(&v, &v).await?;
    let sumsq = squares.weighted_blocks(&vec![R::ONE; n]);
    let total = match reg {
        RegType::Linear => sumsq,
        RegType::Logistic => {
            // (1/2 - y)^T z at the label node's plaintext, then everything at scale 2(f - shift). Logits are
            // taken to stay below 2^16 in magnitude (as the sigmoids' coarse comparisons do): the product may use
            // only the low l bits of v.
            let l = f - shift + 18;
            let coeffs = y_plain.map(|y| mpc.encode(&y.iter().map(|y| 0.5 - y).collect::<Vec<_>>()));
            let mine = coeffs.as_deref().unwrap_or(&[]);
            plain_entries(mpc, mine, n).await?;
            let nodes = mpc.nodes();
            let dims: Vec<_> = (0..nodes).map(|i| if i == label_node { (1, n, 1) } else { (0, 0, 1) }).collect();
            let vs = vec![&v; nodes];
            let (mut lin, _) = mpc.matmul_plain_each(mine, &vs, &dims, Operand::Bounded(l)).await?;
            let lin = std::mem::replace(&mut lin[label_node], Share::constant(mpc.holding(), R::ZERO, 0));
            // lin has scale f + (f - shift); bring it to z^2's 2 (f - shift).
            let lin = if shift > 0 { mpc.trunc(&lin, shift).await? } else { lin };
            let sq8 = mpc.trunc(&sumsq, 3).await?;
            lin.add(&sq8)
        }
    };
    let opened = mpc.reveal(&total, None).await?.unwrap_or_default();
    let sum = opened.first().map_or(0.0, |v| v.decode(scale_bits));
    let n = n.max(1) as f64;
    Ok(match reg {
        RegType::Linear => sum / n,
        RegType::Logistic => std::f64::consts::LN_2 + sum / n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_step_size_keeps_the_scaled_entries_within_the_encoding() {
        for c in [0.1 / 1024.0, 0.75, 1.0, 1.5, 1e-3, 3.0 / 7.0] {
            let bits = step_bits(c, 18, 64).unwrap();
            let factor = c * f64::from(bits as i32 - 18).exp2();
            assert!(factor > 0.5 && factor <= 1.0, "c = {c}: c 2^s = {factor}");
        }
        assert_eq!(step_bits(0.1 / 1024.0, 18, 64), Some(18 + 13));
        // Tiny steps stop where the truncation still fits the ring; huge ones are refused.
        assert_eq!(step_bits(1e-30, 18, 64), Some(61));
        assert_eq!(step_bits(2f64.powi(17), 18, 64), Some(1));
        assert_eq!(step_bits(2f64.powi(17) * 1.5, 18, 64), None);
    }

    #[test]
    fn the_scaled_transpose_carries_the_intercept() {
        let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let t: Vec<u64> = scaled_transpose(Features { x: &x, cols: 2, rows: 3 }, true, 1..3, 0.5, 4);
        let got: Vec<f64> = t.iter().map(|v| v.decode(4)).collect();
        assert_eq!(got, [1.5, 2.5, 2.0, 3.0, 0.5, 0.5]);
    }
}
