//! `quantile_binning` and `equal_width_binning`, as pandas' `qcut(x, q, labels=False, duplicates="drop")` and
//! `cut(x, bins, labels=False)`.
//!
//! Bins are right-closed `(e[i], e[i+1]]`, the first closed on the left. Quantile edges are the linear-
//! interpolated quantiles at `linspace(0, 1, bin_num + 1)`, duplicates dropped (so fewer bins may result).
//! Equal-width edges are `linspace(min, max, bin_num + 1)` with the first edge lowered by 0.1% of the range
//! (a constant column is widened by 0.1% on each side), as pandas does. Each value becomes its bin index;
//! missing cells stay missing.

use secretflow_crds::outputs::{BinningResult, ColumnMap};
use secretflow_crds::tasks::preprocessing::BinningConfig;

use super::super::JobOutput;
use super::super::columns::{ColumnJob, Want, unzip};
use crate::context::PartyContext;
use crate::error::{Error, Result};
use crate::numeric::{bin_index, linspace, present, quantile, sorted};

/// How edges are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Equal-frequency bins.
    Quantile,
    /// Equal-width bins.
    EqualWidth,
}

/// Bin the listed columns.
pub async fn run(ctx: &PartyContext, c: &BinningConfig, rule: Rule) -> Result<JobOutput> {
    let name = match rule {
        Rule::Quantile => "quantile_binning",
        Rule::EqualWidth => "equal_width_binning",
    };
    let job = ColumnJob {
        name,
        input: &c.input_data,
        output: Some(&c.output_data),
        requested: Some(&c.columns),
        want: Want::Numeric,
    };
    let me = ctx.party.clone();
    let n = c.bin_num as usize;
    let (plan, fitted) = job
        .run(ctx, |table, mine| {
            let mut out = ColumnMap::new();
            for col in mine {
                let xs = table.floats(&col.name)?;
                let v = sorted(present(&xs));
                if v.is_empty() {
                    return Err(Error::bad_data(
                        &me,
                        "task_config.columns",
                        format!("column `{}` has no values to bin", col.name),
                    ));
                }
                let edges = match rule {
                    Rule::Quantile => quantile_edges(&v, n),
                    Rule::EqualWidth => equal_width_edges(v[0], v[v.len() - 1], n),
                };
                let mut counts = vec![0u64; edges.len().saturating_sub(1).max(1)];
                let codes = xs
                    .iter()
                    .map(|x| {
                        x.filter(|x| !x.is_nan()).map(|x| {
                            let b = bin_index(&edges, x);
                            counts[b] += 1;
                            b as i64
                        })
                    })
                    .collect();
                table.set_ints(&col.name, codes)?;
                out.insert(col.name.clone(), (edges, counts));
            }
            Ok(out)
        })
        .await?;
    let (bin_edges, bin_counts) = unzip(fitted);
    JobOutput::new(&BinningResult {
        output_paths: c.output_data.clone(),
        columns_binned: plan.names(),
        bin_edges,
        bin_counts,
    })
}

/// Quantile edges with duplicates dropped; a constant column gets `[v, v]` (one bin).
fn quantile_edges(sorted: &[f64], n: usize) -> Vec<f64> {
    let mut edges: Vec<f64> = Vec::with_capacity(n + 1);
    for q in linspace(0.0, 1.0, n + 1) {
        let e = quantile(sorted, q).unwrap_or(f64::NAN);
        if edges.last() != Some(&e) {
            edges.push(e);
        }
    }
    if edges.len() == 1 {
        edges.push(edges[0]);
    }
    edges
}

/// pandas' `_nbins_to_bins` for right-closed bins.
fn equal_width_edges(min: f64, max: f64, n: usize) -> Vec<f64> {
    if min == max {
        let adj = if min != 0.0 { 0.001 * min.abs() } else { 0.001 };
        return linspace(min - adj, max + adj, n + 1);
    }
    let mut edges = linspace(min, max, n + 1);
    edges[0] -= (max - min) * 0.001;
    edges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_edges_drop_duplicates() {
        let v = [1.0, 1.0, 1.0, 1.0, 2.0, 3.0];
        assert_eq!(quantile_edges(&v, 4), vec![1.0, 1.75, 3.0]);
    }

    #[test]
    fn equal_width_lowers_the_first_edge() {
        let e = equal_width_edges(0.0, 10.0, 2);
        assert_eq!(e, vec![-0.01, 5.0, 10.0]);
        assert_eq!(bin_index(&e, 0.0), 0);
        assert_eq!(bin_index(&e, 5.0), 0);
        assert_eq!(bin_index(&e, 10.0), 1);
    }
}
