//! `vif` (spec section 5.3): variance inflation factors of columns held by different parties, the diagonal
//! of the inverse correlation matrix (regression of each column on the others, with an intercept).
//!
//! The correlation matrix never leaves the device: each owner inputs its own block, the cross block comes from [`correlation::cross_block`], and the inverse is
//! computed by Newton-Schulz iteration `X <- X (2I - R X)` from `X0 = I / d` (converges for any symmetric
//! positive definite `R` with eigenvalues in `(0, d]`). Opened: the VIF values, and one bit saying whether
//! `R X` reached the identity (when it did not, or a VIF exceeds `2^(f/2 + 4)`, the columns are collinear and
//! the task fails).

use secretflow_crds::outputs::{ColumnMap, VifResult};
use secretflow_crds::request::{Field, SpuRuntime};
use secretflow_crds::tasks::stats::StatsConfig;

use super::super::JobOutput;
use super::correlation::{self, CrossLayout, Standardized, pos};
use crate::context::PartyContext;
use crate::error::{Error, Result};
use crate::mpc::{Device, Fixed, Kernels, Ring, Share};

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
    let mut mpc = Device::<R>::new(ctx, spu).await?;
    ctx.progress(0.2, "cross-party products");
    let values = inverse_diagonal(&mut mpc, &s, me).await?;
    let vif_values: ColumnMap<f64> =
        s.data.columns.iter().zip(values).map(|((name, _), v)| (name.clone(), v)).collect();
    ctx.progress(1.0, "done");
    JobOutput::with_report(&VifResult { output_report: c.output_report.clone(), vif_values }, &c.output_report)
}

/// The diagonal of the correlation matrix's inverse, opened to every node: the matrix is assembled shared
/// (each owner inputs its own block, the cross block is placed from its shares) and inverted by Newton-Schulz.
async fn inverse_diagonal<R: Ring, D: Kernels<R>>(mpc: &mut D, s: &Standardized, me: &str) -> Result<Vec<f64>> {
    let f = mpc.frac();
    let layout = CrossLayout::new(mpc, s);
    let cross = correlation::cross_blocks(mpc, s, &layout).await?;
    let columns = &s.data.columns;
    let d = columns.len();
    // Each node's own block (ones on its diagonal) inputs by that node, zero elsewhere.
    let local = s.local_block();
    let own = &s.data.own;
    let mut r = mpc.constant(0.0, d * d);
    for node in 0..mpc.nodes() {
        let mine = (mpc.me() == node).then(|| {
            let mut block = vec![R::ZERO; d * d];
            for (a, (na, pa)) in columns.iter().enumerate() {
                for (b, (nb, pb)) in columns.iter().enumerate() {
                    if pa == me && pb == me {
                        let (i, j) = (pos(own, na), pos(own, nb));
                        block[a * d + b] = R::encode(if i == j { 1.0 } else { local[i * own.len() + j] }, f);
                    }
                }
            }
            block
        });
        r = r.add(&mpc.input(node, mine.as_deref(), d * d).await?);
    }
    // The cross blocks' entries where the two columns' owners differ.
    let placed: Vec<Option<usize>> = (0..d * d)
        .map(|at| {
            let (a, b) = (&columns[at / d], &columns[at % d]);
            if a.1 == b.1 { None } else { layout.at(mpc, a, b) }
        })
        .collect();
    let r = r.add(&cross.gather(&placed));
    // Public diagonal matrices.
    let eye = |mpc: &D, v: f64| -> Share<R> {
        let diag: Vec<R> = (0..d * d).map(|i| if i % (d + 1) == 0 { R::encode(v, f) } else { R::ZERO }).collect();
        Share::public(mpc.holding(), &diag)
    };
    let (identity, two_i) = (eye(mpc, 1.0), eye(mpc, 2.0));
    let mut x = eye(mpc, 1.0 / d as f64);
    let mut rx = mpc.constant(0.0, d * d);
    for _ in 0..ROUNDS {
        let raw = mpc.matmul_raw(&r, &x, (d, d, d)).await?;
        rx = mpc.trunc(&raw, f).await?;
        let raw = mpc.matmul_raw(&x, &two_i.sub(&rx), (d, d, d)).await?;
        x = mpc.trunc(&raw, f).await?;
    }
    if !mpc.all_below(&identity.sub(&rx), 0.01).await? {
        return Err(Error::bad_data(
            me,
            "task_config.columns",
            "the columns are (nearly) collinear: the correlation matrix is singular and VIF is unbounded",
        ));
    }
    let diag: Vec<Option<usize>> = (0..d).map(|i| Some(i * d + i)).collect();
    let opened = mpc.reveal(&x.gather(&diag), None).await?.unwrap_or_default();
    let values = mpc.decode(&opened);
    // Near-singular matrices converge too, to values fixed point cannot resolve (an eigenvalue near 2^-f):
    // beyond 2^(f/2 + 4) the columns are treated as collinear, as a failed convergence is.
    let limit = ((f / 2 + 4) as f64).exp2();
    if let Some(v) = values.iter().find(|v| !(0.99..=limit).contains(*v)) {
        return Err(Error::bad_data(
            me,
            "task_config.columns",
            format!("the columns are (nearly) collinear: a VIF of {v:.0} is beyond what {f} fraction bits resolve"),
        ));
    }
    Ok(values)
}
