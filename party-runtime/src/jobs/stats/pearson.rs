//! `pearson_correlation` (spec section 5.2): the correlation matrix of columns held by different parties.
//! Within a party it is computed by the owner in plaintext; the cross-party block is computed on the SEMI2K
//! device and then opened to both, since the matrix is the task's output. Nothing else crosses the link.

use secretflow_crds::outputs::{ColumnMap, CorrelationResult};
use secretflow_crds::request::Field;
use secretflow_crds::tasks::stats::StatsConfig;

use super::super::JobOutput;
use super::correlation::{self, CrossLayout, Standardized, pos};
use crate::context::PartyContext;
use crate::error::Result;
use crate::mpc::{Device, Fixed, Kernels, Ring};

/// Compute the matrix.
pub async fn run(ctx: &PartyContext, c: &StatsConfig) -> Result<JobOutput> {
    let spu = correlation::device(ctx, "pearson_correlation")?;
    match spu.field {
        Field::FM64 => compute::<u64>(ctx, c, &spu).await,
        Field::FM128 => compute::<u128>(ctx, c, &spu).await,
    }
}

async fn compute<R: Ring>(
    ctx: &PartyContext,
    c: &StatsConfig,
    spu: &secretflow_crds::request::SpuRuntime,
) -> Result<JobOutput> {
    ctx.progress(0.0, "load and standardize");
    let s = correlation::load(ctx, c, "pearson", spu).await?;
    ctx.progress(0.2, "cross-party products");
    let mut mpc = Device::<R>::new(ctx, spu).await?;
    let layout = CrossLayout::new(&mpc, &s);
    let cross = correlation::cross_blocks(&mut mpc, &s, &layout).await?;
    let opened = mpc.reveal(&cross, None).await?.unwrap_or_default();
    let cross = mpc.decode(&opened);
    // Every party's own block goes to the others in plaintext: it is part of the output.
    let blocks = ctx.exchange("pearson/local", Ok(s.local_block())).await?;
    let matrix = assemble(&mpc, &s, &layout, &blocks, &cross);
    ctx.progress(1.0, "done");
    JobOutput::with_report(
        &CorrelationResult { output_report: c.output_report.clone(), correlation_matrix: matrix },
        &c.output_report,
    )
}

/// The full matrix in column order from the owners' blocks and the cross blocks.
fn assemble<R: Ring, D: Kernels<R>>(
    mpc: &D,
    s: &Standardized,
    layout: &CrossLayout,
    blocks: &[(String, Vec<f64>)],
    cross: &[f64],
) -> ColumnMap<ColumnMap<f64>> {
    let value = |a: &(String, String), b: &(String, String)| -> f64 {
        if a.0 == b.0 {
            return 1.0;
        }
        if a.1 == b.1 {
            let own = s.data.of(&a.1);
            let d = own.len();
            let (i, j) = (pos(&own, &a.0), pos(&own, &b.0));
            return blocks.iter().find(|(p, _)| *p == a.1).map_or(f64::NAN, |(_, m)| m[i * d + j]);
        }
        layout.at(mpc, a, b).map_or(f64::NAN, |at| cross[at])
    };
    let mut out = ColumnMap::new();
    for a in &s.data.columns {
        let mut row = ColumnMap::new();
        for b in &s.data.columns {
            row.insert(b.0.clone(), value(a, b));
        }
        out.insert(a.0.clone(), row);
    }
    out
}
