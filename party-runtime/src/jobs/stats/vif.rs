//! `vif` (spec section 5.3): variance inflation factors of columns held by different parties, the diagonal
//! of the inverse correlation matrix (regression of each column on the others, with an intercept).
//!
//! The correlation matrix never leaves the device: each owner's block enters as its own share (the other
//! party's share is zero), the cross block comes from [`correlation::cross_block`], and the inverse is
//! computed by Newton-Schulz iteration `X <- X (2I - R X)` from `X0 = I / d` (converges for any symmetric
//! positive definite `R` with eigenvalues in `(0, d]`). Opened: the VIF values, and one bit saying whether
//! `R X` reached the identity (when it did not, or a VIF exceeds `2^(f/2 + 4)`, the columns are collinear and
//! the task fails).

use secretflow_crds::outputs::{ColumnMap, VifResult};
use secretflow_crds::request::{Field, SpuRuntime};
use secretflow_crds::tasks::stats::StatsConfig;

use super::super::JobOutput;
use super::correlation;
use crate::context::PartyContext;
use crate::error::{Error, Result};
use crate::mpc::local::sub;
use crate::mpc::{Fixed, Mpc, Ring};

/// Newton-Schulz rounds: enough for eigenvalues down to about `d * 2^-25` (VIF in the millions).
const ROUNDS: usize = 32;

/// Compute the VIFs.
pub async fn run(ctx: &PartyContext, c: &StatsConfig) -> Result<JobOutput> {
    let spu = correlation::device(ctx, "vif")?;
    match spu.field {
        Field::FM64 => compute::<u64>(ctx, c, &spu).await,
        Field::FM128 => compute::<u128>(ctx, c, &spu).await,
    }
}

async fn compute<R: Ring>(ctx: &PartyContext, c: &StatsConfig, spu: &SpuRuntime) -> Result<JobOutput> {
    let me = ctx.party.as_str();
    ctx.progress(0.0, "load and standardize");
    let s = correlation::load(ctx, c, "vif", spu).await?;
    let mut mpc = Mpc::<R>::new(ctx, spu).await?;
    let f = mpc.frac();
    ctx.progress(0.2, "cross-party products");
    let cross = correlation::cross_block(&mut mpc, &s).await?;
    let (sender, receiver) = correlation::roles(&mpc, &s);
    let columns = &s.data.columns;
    let d = columns.len();
    let (cs, cr) = (s.data.of(mpc.party(sender)), s.data.of(mpc.party(receiver)));
    let local = s.local_block();
    let own = &s.data.own;
    let mut r = vec![R::ZERO; d * d];
    for (a, (na, pa)) in columns.iter().enumerate() {
        for (b, (nb, pb)) in columns.iter().enumerate() {
            r[a * d + b] = if pa == pb {
                // The owner's block is its share; the other party's share is zero.
                if *pa == me {
                    let (i, j) = (pos(own, na), pos(own, nb));
                    R::encode(if i == j { 1.0 } else { local[i * own.len() + j] }, f)
                } else {
                    R::ZERO
                }
            } else {
                let (x, y) = if *pa == mpc.party(sender) { (na, nb) } else { (nb, na) };
                cross[pos(&cs, x) * cr.len() + pos(&cr, y)]
            };
        }
    }
    ctx.progress(0.4, "invert");
    // Public diagonal matrices as shares: node 0 holds them, node 1 zeros.
    let eye = |v: f64| -> Vec<R> {
        let c = if mpc.me() == 0 { R::encode(v, f) } else { R::ZERO };
        (0..d * d).map(|i| if i % (d + 1) == 0 { c } else { R::ZERO }).collect()
    };
    let (identity, two_i) = (eye(1.0), eye(2.0));
    let mut x = eye(1.0 / d as f64);
    let mut rx = Vec::new();
    for _ in 0..ROUNDS {
        let raw = mpc.matmul_raw(&r, &x, d, d, d).await?;
        rx = mpc.trunc(&raw, f).await?;
        let raw = mpc.matmul_raw(&x, &sub(&two_i, &rx), d, d, d).await?;
        x = mpc.trunc(&raw, f).await?;
    }
    let residual = sub(&identity, &rx);
    if !mpc.all_below(&mpc.share(residual), 0.01).await? {
        return Err(Error::bad_data(
            me,
            "task_config.columns",
            "the columns are (nearly) collinear: the correlation matrix is singular and VIF is unbounded",
        ));
    }
    let diag: Vec<R> = (0..d).map(|i| x[i * d + i]).collect();
    let opened = mpc.reveal(&diag, None).await?.unwrap_or_default();
    // Near-singular matrices converge too, to values fixed point cannot resolve (an eigenvalue near 2^-f):
    // beyond 2^(f/2 + 4) the columns are treated as collinear, as a failed convergence is.
    let limit = ((f / 2 + 4) as f64).exp2();
    if let Some(v) = mpc.decode(&opened).iter().find(|v| !(0.99..=limit).contains(*v)) {
        return Err(Error::bad_data(
            me,
            "task_config.columns",
            format!("the columns are (nearly) collinear: a VIF of {v:.0} is beyond what {f} fraction bits resolve"),
        ));
    }
    let vif_values: ColumnMap<f64> =
        columns.iter().zip(mpc.decode(&opened)).map(|((name, _), v)| (name.clone(), v)).collect();
    ctx.progress(1.0, "done");
    JobOutput::with_report(&VifResult { output_report: c.output_report.clone(), vif_values }, &c.output_report)
}

fn pos(names: &[String], name: &str) -> usize {
    names.iter().position(|n| n == name).unwrap_or(0)
}
