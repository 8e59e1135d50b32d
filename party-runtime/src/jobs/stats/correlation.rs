//! What `pearson_correlation` and `vif` share: each owner standardizes its own columns, the within-party
//! correlations are plaintext at their owner, and the cross-party block `Z_s^T Z_r / n` is computed on the
//! MPC device without either side seeing the other's values.
//!
//! Each cross block is one product of two owners' plaintexts ([`Kernels::matmul_plain_plain`]; on the
//! two-party device one OT-based product in which the party with fewer columns (`r`) chooses with only
//! `m + 2 + f` bits of its standardized values, `|z| <= sqrt(n) < 2^m`, instead of `k`). On ABY3 every pair of
//! the three nodes that hold columns has its block.
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

/// Where the cross blocks sit: one block `Z_s^T Z_r / n` per pair of nodes that both hold columns (one pair
/// on two nodes, up to three on ABY3), the receiver `r` the one with fewer columns, the blocks one after
/// another in one shared vector.
pub(crate) struct CrossLayout {
    blocks: Vec<CrossBlock>,
}

/// One pair's block: `Z_s^T Z_r / n`, `sender_cols x receiver_cols`, at `offset` in the shared vector.
struct CrossBlock {
    sender: usize,
    receiver: usize,
    sender_cols: Vec<String>,
    receiver_cols: Vec<String>,
    offset: usize,
}

impl CrossLayout {
    /// The pairs of `mpc`'s nodes that hold columns of `s`.
    pub fn new<R: Ring, D: Kernels<R>>(mpc: &D, s: &Standardized) -> CrossLayout {
        let cols: Vec<Vec<String>> = (0..mpc.nodes()).map(|i| s.data.of(mpc.party(i))).collect();
        let mut blocks = Vec::new();
        let mut len = 0;
        for i in 0..cols.len() {
            for j in i + 1..cols.len() {
                if cols[i].is_empty() || cols[j].is_empty() {
                    continue;
                }
                let (sender, receiver) = if cols[i].len() < cols[j].len() { (j, i) } else { (i, j) };
                let (sender_cols, receiver_cols) = (cols[sender].clone(), cols[receiver].clone());
                blocks.push(CrossBlock { sender, receiver, sender_cols, receiver_cols, offset: len });
                len += cols[i].len() * cols[j].len();
            }
        }
        CrossLayout { blocks }
    }

    /// The position of the correlation of columns `a` and `b` (held by different nodes, named by party) in the
    /// blocks.
    pub fn at<R: Ring, D: Kernels<R>>(&self, mpc: &D, a: &(String, String), b: &(String, String)) -> Option<usize> {
        self.blocks.iter().find_map(|block| {
            let (ps, pr) = (mpc.party(block.sender), mpc.party(block.receiver));
            let (cs, cr) = (&block.sender_cols, &block.receiver_cols);
            let (x, y) = match (a.1 == ps, b.1 == ps) {
                (true, false) if b.1 == pr => (a, b),
                (false, true) if a.1 == pr => (b, a),
                _ => return None,
            };
            Some(block.offset + pos(cs, &x.0) * cr.len() + pos(cr, &y.0))
        })
    }
}

/// The position of `name` in `names`.
pub(crate) fn pos(names: &[String], name: &str) -> usize {
    names.iter().position(|n| n == name).unwrap_or(0)
}

/// Shares of every cross block of `layout`, one after another, at scale `f`.
pub(crate) async fn cross_blocks<R: Ring, D: Kernels<R>>(
    mpc: &mut D,
    s: &Standardized,
    layout: &CrossLayout,
) -> Result<Share<R>> {
    let mut parts = Vec::with_capacity(layout.blocks.len());
    for b in &layout.blocks {
        parts.push(cross_product(mpc, s, (b.sender, b.sender_cols.len()), (b.receiver, b.receiver_cols.len())).await?);
    }
    if parts.is_empty() {
        return Ok(mpc.constant(0.0, 0));
    }
    let f = mpc.frac();
    let fz = product_bits::<R>(s.data.rows, f);
    let shares = Share::concat(&parts.iter().collect::<Vec<_>>());
    // Scale 2 fz -> f, then divide by n.
    let t = match (2 * fz).cmp(&f) {
        std::cmp::Ordering::Greater => mpc.trunc(&shares, 2 * fz - f).await?,
        std::cmp::Ordering::Equal => shares,
        std::cmp::Ordering::Less => shares.shl(f - 2 * fz),
    };
    mpc.mul_public(&t, 1.0 / s.data.rows as f64).await
}

/// Fraction bits of the z-scores in the products: `|sum z_s z_r| <= n`, so keep `n 2^(2 fz)` below `2^(k-2)`.
fn product_bits<R: Ring>(n: usize, f: u32) -> u32 {
    let log_n = (n.max(2) as f64).log2().ceil() as u32;
    f.min((R::BITS - 2 - log_n) / 2)
}

/// Shares of `Z_s^T Z_r` (`d_s x d_r`, row-major) at `2 fz` fraction bits, from the sender's and the receiver's
/// plaintext columns.
async fn cross_product<R: Ring, D: Kernels<R>>(
    mpc: &mut D,
    s: &Standardized,
    (sender, ds): (usize, usize),
    (receiver, dr): (usize, usize),
) -> Result<Share<R>> {
    let n = s.data.rows;
    let fz = product_bits::<R>(n, mpc.frac());
    // |z| <= sqrt(n) < 2^m.
    let m = (n.max(2) as f64).log2().ceil() as u32;
    let m = m.div_ceil(2) + 1;
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
    mpc.matmul_plain_plain((sender, a.as_deref()), (receiver, b.as_deref()), (ds, n, dr), m + fz).await
}

/// Check the request's device and pick the ring.
pub(crate) fn device(ctx: &PartyContext, task: &str) -> Result<SpuRuntime> {
    ctx.spu.clone().ok_or_else(|| Error::Internal(format!("{task} needs the SPU device")))
}
