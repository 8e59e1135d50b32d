//! `table_statistics`: pandas `describe()` per column, computed by the party that holds it.
//!
//! Numeric columns: count, mean, sample std (ddof = 1), min, the 25/50/75% quantiles (linear interpolation)
//! and max; a column without values gets nulls. Text columns (when listed): count, unique, top (the most
//! frequent value, the first seen on ties) and freq. Without `columns`, every numeric column one party holds.
//! The statistics are the task's output, so every party and the report receive all of them.

use std::collections::HashMap;

use secretflow_crds::outputs::{CategoricalStats, ColumnMap, ColumnStats, NumericStats, TableStatisticsResult};
use secretflow_crds::tasks::stats::StatsConfig;

use super::super::JobOutput;
use super::super::columns::{ColumnJob, Want};
use crate::context::PartyContext;
use crate::data::Cat;
use crate::error::Result;
use crate::numeric::{mean, present, quantiles, variance};

/// Describe the columns.
pub async fn run(ctx: &PartyContext, c: &StatsConfig) -> Result<JobOutput> {
    let job = ColumnJob {
        name: "table_statistics",
        input: &c.input_data,
        output: None,
        requested: c.columns.as_deref(),
        want: Want::AnyDefaultNumeric,
    };
    let (_, statistics) = job
        .run(ctx, |table, mine| {
            let mut out = ColumnMap::new();
            for col in mine {
                let stats = if col.kind.is_numeric() {
                    ColumnStats::Numeric(describe(&table.floats(&col.name)?))
                } else {
                    ColumnStats::Categorical(describe_text(&table.cats(&col.name)?))
                };
                out.insert(col.name.clone(), stats);
            }
            Ok(out)
        })
        .await?;
    JobOutput::with_report(
        &TableStatisticsResult { output_report: c.output_report.clone(), statistics },
        &c.output_report,
    )
}

/// describe() of a numeric column.
pub fn describe(xs: &[Option<f64>]) -> NumericStats {
    let v = present(xs);
    let (mean, std) = (mean(&v), variance(&v, 1).map(f64::sqrt));
    let count = v.len() as u64;
    let q = quantiles(v, &[0.0, 0.25, 0.5, 0.75, 1.0]);
    NumericStats { count, mean, std, min: q[0], q25: q[1], q50: q[2], q75: q[3], max: q[4] }
}

/// describe() of a text column.
fn describe_text(values: &[Option<Cat>]) -> CategoricalStats {
    let mut counts: HashMap<&Cat, (usize, usize)> = HashMap::new();
    for (i, v) in values.iter().enumerate() {
        if let Some(v) = v {
            counts.entry(v).or_insert((0, i)).0 += 1;
        }
    }
    let top = counts.iter().max_by(|(_, (n, i)), (_, (m, j))| n.cmp(m).then(j.cmp(i)));
    CategoricalStats {
        count: values.iter().flatten().count() as u64,
        unique: counts.len() as u64,
        top: top.map(|(c, _)| c.label()),
        freq: top.map_or(0, |(_, (n, _))| *n as u64),
    }
}
