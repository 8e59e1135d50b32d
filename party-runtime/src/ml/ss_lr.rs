//! SS-LR (spec section 2) over the MPC device: vertical logistic / linear regression by mini-batch SGD with
//! SecretFlow's SS-SGD schedule (rows in file order, batches of `batch_size`, `w -= lr * (X^T (p - y) / b +
//! penalty)`), the weights secret-shared from start to end. No file I/O: the job (`jobs::learning::ss_lr`) loads
//! the data, checks and writes the outputs, and reports.
//!
//! Each feature block stays with its owner in plaintext and is multiplied with the shared weights (and its
//! transpose with the shared residuals), both blocks' at once in opposite directions, by RLWE
//! ([`Mpc::matvec_he_pair`]) or OT ([`Mpc::matmul_plain_pair`]), per call whichever costs less for its shape
//! ([`crate::mpc::cost`]; small batches take OT); OT always where a block's values are too large for the
//! lattice parameters. The transpose carries the step size `lr / b` in its encoding, so the product needs one
//! truncation to be the update. The label party's block carries the intercept column. The label is shared once.
//! Only three things are ever opened: one bit per epoch for the `eps` early stop (whether every weight moved
//! less than `eps`), the scalar `final_loss`, and the test logits to the prediction receiver.

use secretflow_crds::tasks::learning::{LrParams, Penalty, RegType};

use super::phases::Meter;
use crate::context::PartyContext;
use crate::error::{Error, Result};
use crate::mpc::fixed::INT_BITS;
use crate::mpc::local::{add, scale, sub};
use crate::mpc::{Fixed, Kernels, Mpc, Ring};

/// A trained model: this party's shares of each node's weights, and how training went.
pub struct Trained<R> {
    /// Node `i`'s weights (its block's columns, then the intercept at the label node), this party's shares.
    pub w: Vec<Vec<R>>,
    /// Epochs run (fewer than asked when `eps` stopped early).
    pub epochs: u32,
    /// The training loss over every row, opened to both.
    pub final_loss: f64,
}

/// Train on this party's `features` (and the label `y` at the label node), the two nodes' blocks laid out by
/// `blocks`; the linear layers' methods are recorded in `linear`, each phase's cost in `meter`.
#[allow(clippy::too_many_arguments)]
pub async fn train<R: Ring>(
    ctx: &PartyContext,
    mpc: &mut Mpc<'_, R>,
    (meter, linear): (&mut Meter<'_>, &mut Linear),
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
    let mut w: Vec<Vec<R>> = blocks.iter().map(|b| vec![R::ZERO; b.width()]).collect();
    let batch = (p.batch_size as usize).clamp(1, n.max(1));
    // The smallest batch (the last, when it is short) has the largest step size: refused before any work.
    step_bits_for(me, p.learning_rate, if n.is_multiple_of(batch) { batch } else { n % batch }, f, R::BITS)?;
    linear.fits = use_he(mpc, &x, batch.max(blocks[mine].width())).await?;
    let mut epochs_run = 0;
    for epoch in 0..p.epochs {
        let before = w.concat();
        for start in (0..n).step_by(batch) {
            let range = start..(start + batch).min(n);
            let b = range.len();
            let (z, l) = forward_raw(mpc, blocks, (&x, linear), &w, range.clone()).await?;
            meter.lap("forward X w");
            // The truncation of z goes into the sigmoid's first step (t1 divides by 4 in the same one).
            let pred = match p.reg_type {
                RegType::Logistic => mpc.sigmoid_from(&mpc.share(z), l, f, p.sig_type).await?.into_additive(),
                RegType::Linear => mpc.trunc_from(&z, l, f).await?,
            };
            meter.lap("sigmoid");
            let e = sub(&pred, &y[range.clone()]);
            let bits = step_bits_for(me, p.learning_rate, b, f, R::BITS)?;
            let xt = scaled_transpose(features, blocks[mine].bias, range.clone(), p.learning_rate / b as f64, bits);
            let dims = [0, 1].map(|i| (blocks[i].width(), b, 1));
            // For logistic regression |e| = |p - y| <= 1: the chooser needs only f + 3 bits of its share.
            let choice = if p.reg_type == RegType::Logistic { f + 4 } else { R::BITS };
            let rlwe = linear.rlwe(mpc, dims.map(|(r, c, _)| (r, c)), choice, R::BITS);
            let [g0, g1] = match p.reg_type {
                _ if rlwe => mpc.matvec_he_pair(&xt, [&e, &e], dims.map(|(r, c, _)| (r, c))).await?,
                RegType::Logistic => mpc.matmul_plain_bounded_pair(&xt, &e, dims, f + 3).await?,
                RegType::Linear => mpc.matmul_plain_pair(&xt, [&e, &e], dims, R::BITS).await?,
            };
            let step = mpc.trunc(&[g0, g1].concat(), bits).await?;
            let (step0, step1) = step.split_at(dims[0].0);
            for (i, step) in [step0, step1].into_iter().enumerate() {
                if w[i].is_empty() {
                    continue;
                }
                let strength = p.learning_rate * p.l2_norm;
                let update = match penalty(mpc, &w[i], blocks[i].bias, p.penalty, strength).await? {
                    Some(reg) => add(step, &reg),
                    None => step.to_vec(),
                };
                w[i] = sub(&w[i], &update);
            }
            meter.lap("backward X^T e and update");
        }
        epochs_run = epoch + 1;
        ctx.progress(0.1 + 0.75 * epochs_run as f64 / p.epochs as f64, &format!("epoch {epochs_run}"));
        let stop = p.eps > 0.0 && mpc.all_below(&mpc.share(sub(&before, &w.concat())), p.eps).await?;
        meter.lap("early-stop check");
        if stop {
            break;
        }
    }
    ctx.progress(0.85, "final loss");
    let z = forward_raw(mpc, blocks, (&x, linear), &w, 0..n).await?;
    let final_loss = loss(mpc, z, &y, y_plain, label_node, p.reg_type).await?;
    meter.lap("final loss");
    Ok(Trained { w, epochs: epochs_run, final_loss })
}

/// The logits `X w` of this party's test `features`, opened to node `receiver` only (`Some` there).
pub async fn predict_logits<R: Ring>(
    mpc: &mut Mpc<'_, R>,
    linear: &mut Linear,
    blocks: &[Block],
    w: &[Vec<R>],
    features: Features<'_>,
    receiver: usize,
) -> Result<Option<Vec<f64>>> {
    let x = encode_block(mpc, features, blocks[mpc.me()].bias);
    linear.fits = use_he(mpc, &x, blocks[mpc.me()].width()).await?;
    let z = forward(mpc, blocks, (&x, linear), w, 0..features.rows).await?;
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
fn encode_block<R: Ring>(mpc: &Mpc<'_, R>, data: Features<'_>, bias: bool) -> Vec<R> {
    let d = data.cols;
    let mut out = Vec::with_capacity(data.rows * (d + bias as usize));
    for row in data.x.chunks(d.max(1)).take(data.rows) {
        out.extend(mpc.encode(&row[..d]));
        if bias {
            out.push(R::encode(1.0, mpc.frac()));
        }
    }
    if d == 0 && bias {
        out = vec![R::encode(1.0, mpc.frac()); data.rows];
    }
    out
}

/// `X w` for the rows `range`, not truncated, with the `l` it is valid mod: both blocks' plaintext-times-shared
/// products at once. By RLWE (`he`, the default where the data fits the lattice parameters) in the full ring;
/// otherwise by OT in the ring `Z_2^l` with `l = 2f + 18` (enough for `|X w| < 2^16`, the logit range the loss
/// already assumes), about `(l / k)^2` of the full ring's OT traffic; the truncation lifts it to `Z_2^k`.
async fn forward_raw<R: Ring>(
    mpc: &mut Mpc<'_, R>,
    blocks: &[Block],
    (x, linear): (&[R], &mut Linear),
    w: &[Vec<R>],
    range: std::ops::Range<usize>,
) -> Result<(Vec<R>, u32)> {
    let b = range.len();
    let d = [blocks[0].width(), blocks[1].width()];
    let mine = &x[range.start * d[mpc.me()]..range.end * d[mpc.me()]];
    let l = (2 * mpc.frac() + 18).min(R::BITS);
    if linear.rlwe(mpc, [(b, d[0]), (b, d[1])], l, l) {
        let [z0, z1] = mpc.matvec_he_pair(mine, [&w[0], &w[1]], [(b, d[0]), (b, d[1])]).await?;
        return Ok((add(&z0, &z1), R::BITS));
    }
    let [z0, z1] = mpc.matmul_plain_pair(mine, [&w[0], &w[1]], [(b, d[0], 1), (b, d[1], 1)], l).await?;
    Ok((add(&z0, &z1), l))
}

/// How the linear layers' products run: RLWE where both nodes' data fit the lattice parameters (`fits`, agreed
/// once per dataset) and it is the cheaper method for the call's shape, OT otherwise; and which ran.
#[derive(Default)]
pub struct Linear {
    fits: bool,
    used_rlwe: bool,
    used_ot: bool,
}

impl Linear {
    /// Whether this call (node `i`'s matrix `dims[i]`, OT choosers using `choice` bits, messages `out` bits)
    /// takes RLWE; records the method.
    fn rlwe<R: Ring>(&mut self, mpc: &Mpc<'_, R>, dims: [(usize, usize); 2], choice: u32, out: u32) -> bool {
        let rlwe = self.fits && mpc.prefers_rlwe(dims, choice, out);
        if rlwe {
            self.used_rlwe = true;
        } else {
            self.used_ot = true;
        }
        rlwe
    }

    /// `training_metrics.linear_products`: `rlwe`, `ot`, `ot+rlwe`, or `dealer` (the insecure backend).
    pub fn name<R: Ring>(&self, mpc: &Mpc<'_, R>) -> &'static str {
        match (mpc.dealt_backend(), self.used_rlwe, self.used_ot) {
            (true, _, _) => "dealer",
            (false, true, true) => "ot+rlwe",
            (false, true, false) => "rlwe",
            (false, false, _) => "ot",
        }
    }
}

/// `X w` for the rows `range`, truncated to the fixed-point scale.
async fn forward<R: Ring>(
    mpc: &mut Mpc<'_, R>,
    blocks: &[Block],
    x: (&[R], &mut Linear),
    w: &[Vec<R>],
    range: std::ops::Range<usize>,
) -> Result<Vec<R>> {
    let (z, l) = forward_raw(mpc, blocks, x, w, range).await?;
    mpc.trunc_from(&z, l, mpc.frac()).await
}

/// Whether both nodes' blocks go through the RLWE products (see [`Mpc::he_fits`]): `x` is this party's
/// encoded block, `widest` the most entries one product row block may take.
async fn use_he<R: Ring>(mpc: &mut Mpc<'_, R>, x: &[R], widest: usize) -> Result<bool> {
    let max_abs = x.iter().map(|v| crate::mpc::signed(*v).unsigned_abs()).max().unwrap_or(0);
    mpc.he_fits(max_abs, widest).await
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
async fn penalty<R: Ring>(
    mpc: &mut Mpc<'_, R>,
    w: &[R],
    bias: bool,
    kind: Penalty,
    strength: f64,
) -> Result<Option<Vec<R>>> {
    let mut reg = match kind {
        Penalty::None => return Ok(None),
        Penalty::L2 => mpc.mul_public(&mpc.share(w.to_vec()), strength).await?.into_additive(),
        Penalty::L1 => {
            // strength * (1 - 2 [w < 0])
            let neg = Kernels::msb(mpc, &mpc.share(w.to_vec()), mpc.frac() + INT_BITS, 0).await?;
            let twice = Kernels::mul_bit(mpc, &neg, &mpc.constant(2.0 * strength, w.len())).await?;
            mpc.constant(strength, w.len()).sub(&twice).into_additive()
        }
    };
    if bias && let Some(last) = reg.last_mut() {
        *last = R::ZERO;
    }
    Ok(Some(reg))
}

/// The training loss, opened as one scalar: mean squared error (linear) or the second-order Taylor expansion
/// of the log loss around 0, `log 2 + (1/2 - y) z + z^2 / 8` (logistic; what SecretFlow's t1 model fits).
async fn loss<R: Ring>(
    mpc: &mut Mpc<'_, R>,
    (z, zl): (Vec<R>, u32),
    y: &[R],
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
        RegType::Linear => sub(&z, &scale(y, R::ONE.shl(f))),
        RegType::Logistic => z,
    };
    let v = mpc.trunc_from(&base, zl, f + shift).await?;
    let scale_bits = 2 * (f - shift);
    // sum v^2 from the elementwise squares: RLWE slot products in the secure default (OT below 2,048 rows, dealt
    // triples in the dealer mode), about a third of the time the OT product `v_0^T v` took at 100,000 rows.
    let squares = mpc.mul_raw(&v, &v).await?;
    let sumsq = squares.iter().fold(R::ZERO, |acc, x| acc.add(*x));
    // Logits are taken to stay below 2^16 in magnitude (as the sigmoids' coarse comparisons do): products with
    // them need only the low l bits of the chooser's share.
    let l = f - shift + 18;
    let total = match reg {
        RegType::Linear => sumsq,
        RegType::Logistic => {
            // (1/2 - y)^T z at the label node's plaintext, then everything at scale 2(f - shift).
            let coeffs = y_plain.map(|y| mpc.encode(&y.iter().map(|y| 0.5 - y).collect::<Vec<_>>()));
            let mine = coeffs.as_deref().unwrap_or(&[]);
            let dims = [0, 1].map(|i| if i == label_node { (1, n) } else { (0, 0) });
            let lin = if use_he(mpc, mine, n).await? && mpc.prefers_rlwe(dims, l + 1, R::BITS) {
                let b = [0, 1].map(|i| if i == label_node { v.as_slice() } else { &[] });
                let mut both = mpc.matvec_he_pair(mine, b, dims).await?;
                std::mem::take(&mut both[label_node])
            } else {
                mpc.matmul_plain_bounded(label_node, coeffs.as_deref(), &v, (1, n, 1), l).await?
            };
            // lin has scale f + (f - shift); bring it to z^2's 2 (f - shift).
            let lin = if shift > 0 { mpc.trunc(&lin, shift).await?[0] } else { lin[0] };
            let sq8 = mpc.trunc(&[sumsq], 3).await?[0];
            lin.add(sq8)
        }
    };
    let opened = mpc.reveal(&[total], None).await?.unwrap_or_default();
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
