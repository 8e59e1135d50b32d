//! What `pearson_correlation` and `vif` share: each owner standardizes its own columns, the within-party
//! correlations are plaintext at their owner, and the cross-party block `Z_s^T Z_r / n` is computed on the
//! MPC device without either side seeing the other's values.
//!
//! The cross block is one product of the two owners' plaintexts ([`Kernels::matmul_plain_plain`]; on the
//! two-party device one OT-based product in which the party with fewer columns (`r`) chooses with only
//! `m + 2 + f` bits of its standardized values, `|z| <= sqrt(n) < 2^m`, instead of `k`).
//! By Cauchy-Schwarz every cross sum is at most `n` in magnitude, so the fraction bits are chosen from `n`
//! alone (a public count) to rule out overflow.

use secretflow_crds::request::SpuRuntime;
use secretflow_crds::tasks::stats::StatsConfig;

use super::super::vertical::{self, Spec, Vertical};
use crate::context::PartyContext;
use crate::error::{Error, Result};
use crate::mpc::{Fixed, Kernels, Ring, Share};

/// A party's standardized columns and the shared layout.
pub(crate) struct Standardized {
    /// The dataset as loaded (columns in request order, with owners).
    pub data: Vertical,
    /// This party's z-scores (population standard deviation), row-major `rows x own`.
    pub z: Vec<f64>,
}

/// Load the columns and standardize this party's own; a constant column is a `ValueError`.
pub(crate) async fn load(ctx: &PartyContext, c: &StatsConfig, tag: &str, spu: &SpuRuntime) -> Result<Standardized> {
    let me = ctx.party.as_str();
    let spec = Spec {
        tag,
        paths: &c.input_data,
        paths_field: "task_config.input_data",
        columns: c.columns.as_deref(),
        columns_field: "task_config.columns",
        label: None,
        optional_label: None,
    };
    let data = vertical::load(ctx, &spec).await?;
    let holders: Vec<&str> = data.columns.iter().map(|(_, p)| p.as_str()).collect();
    vertical::require_nodes(me, spu, &holders)?;
    let (n, d) = (data.rows, data.own.len());
    let mut z = data.x.clone();
    let mut problem = Ok(());
    for (j, name) in data.own.iter().enumerate() {
        let col = || (0..n).map(|i| data.x[i * d + j]);
        let mean = col().sum::<f64>() / n.max(1) as f64;
        let sd = (col().map(|v| (v - mean).powi(2)).sum::<f64>() / n.max(1) as f64).sqrt();
        if sd.is_nan() || sd <= 0.0 {
            problem = Err(Error::bad_data(
                me,
                "task_config.columns",
                format!("column `{name}` is constant; its correlation is undefined"),
            ));
            break;
        }
        for i in 0..n {
            z[i * d + j] = (data.x[i * d + j] - mean) / sd;
        }
    }
    ctx.exchange(&format!("{tag}/standardized"), problem).await?;
    Ok(Standardized { data, z })
}

impl Standardized {
    /// Correlations among this party's own columns, `own x own`, row-major.
    pub fn local_block(&self) -> Vec<f64> {
        let (n, d) = (self.data.rows, self.data.own.len());
        let mut out = vec![0.0; d * d];
        for row in self.z.chunks_exact(d.max(1)).take(n) {
            for a in 0..d {
                for b in 0..d {
                    out[a * d + b] += row[a] * row[b];
                }
            }
        }
        out.iter_mut().for_each(|v| *v /= n.max(1) as f64);
        out
    }
}

/// The node roles for the cross block: `(sender, receiver)`, the receiver having fewer columns.
pub(crate) fn roles<R: Ring, D: Kernels<R>>(mpc: &D, s: &Standardized) -> (usize, usize) {
    let width = |i: usize| s.data.of(mpc.party(i)).len();
    if width(0) < width(1) { (1, 0) } else { (0, 1) }
}

/// Shares of the cross block `Z_s^T Z_r / n` (`d_s x d_r`, row-major) at scale `f`.
pub(crate) async fn cross_block<R: Ring, D: Kernels<R>>(mpc: &mut D, s: &Standardized) -> Result<Share<R>> {
    let (sender, receiver) = roles(mpc, s);
    let n = s.data.rows;
    let ds = s.data.of(mpc.party(sender)).len();
    let dr = s.data.of(mpc.party(receiver)).len();
    if ds == 0 || dr == 0 {
        return Ok(mpc.constant(0.0, 0));
    }
    let f = mpc.frac();
    let log_n = (n.max(2) as f64).log2().ceil() as u32;
    // |sum z_s z_r| <= n: keep n * 2^(2 fz) below 2^(k - 2).
    let fz = f.min((R::BITS - 2 - log_n) / 2);
    // |z| <= sqrt(n) < 2^m.
    let m = log_n.div_ceil(2) + 1;
    let me = mpc.me();
    // A = Z_s^T (ds x n) at the sender, B = Z_r (n x dr) at the receiver, both at fz fraction bits.
    let a: Option<Vec<R>> = (me == sender).then(|| {
        let mut a = vec![R::ZERO; ds * n];
        for i in 0..n {
            for j in 0..ds {
                a[j * n + i] = R::encode(s.z[i * ds + j], fz);
            }
        }
        a
    });
    let b: Option<Vec<R>> = (me == receiver).then(|| s.z.iter().map(|v| R::encode(*v, fz)).collect());
    let shares = mpc.matmul_plain_plain((sender, a.as_deref()), (receiver, b.as_deref()), (ds, n, dr), m + fz).await?;
    // Scale 2 fz -> f, then divide by n.
    let t = match (2 * fz).cmp(&f) {
        std::cmp::Ordering::Greater => mpc.trunc(&shares, 2 * fz - f).await?,
        std::cmp::Ordering::Equal => shares,
        std::cmp::Ordering::Less => shares.shl(f - 2 * fz),
    };
    mpc.mul_public(&t, 1.0 / n as f64).await
}

/// Check the request's device and pick the ring.
pub(crate) fn device(ctx: &PartyContext, task: &str) -> Result<SpuRuntime> {
    ctx.spu.clone().ok_or_else(|| Error::Internal(format!("{task} needs the SPU device")))
}
