//! `standard_scaler` and `minmax_scaler`, with sklearn's semantics.
//!
//! StandardScaler: `(x - mean) / std` with the population std (ddof = 0); a constant column (variance within
//! sklearn's rounding bound) gets scale 1. MinMaxScaler: `x * scale + min_` with
//! `scale = (hi - lo) / (max - min)`, a zero range counting as 1, exactly as sklearn computes it. Missing cells
//! are ignored by the fit and stay missing.

use secretflow_crds::outputs::{ColumnMap, MinmaxScalerResult, StandardScalerResult};
use secretflow_crds::tasks::preprocessing::{MinmaxScalerConfig, StandardScalerConfig};

use super::super::JobOutput;
use super::super::columns::{ColumnJob, Want, unzip};
use crate::context::PartyContext;
use crate::error::Result;
use crate::numeric::{mean, present, variance};

/// StandardScaler.
pub async fn standard(ctx: &PartyContext, c: &StandardScalerConfig) -> Result<JobOutput> {
    let job = ColumnJob {
        name: "standard_scaler",
        input: &c.input_data,
        output: Some(&c.output_data),
        requested: c.columns.as_deref(),
        want: Want::Numeric,
    };
    let (plan, fitted) = job
        .run(ctx, |table, mine| {
            let mut out = ColumnMap::new();
            for col in mine {
                let xs = table.floats(&col.name)?;
                let (m, scale) = fit_standard(&present(&xs));
                let shift = if c.with_mean { m.unwrap_or(0.0) } else { 0.0 };
                let div = if c.with_std { scale.unwrap_or(1.0) } else { 1.0 };
                table.set_floats(&col.name, xs.iter().map(|x| x.map(|x| (x - shift) / div)).collect())?;
                out.insert(col.name.clone(), (m, if c.with_std { scale } else { None }));
            }
            Ok(out)
        })
        .await?;
    let (mean, scale) = unzip(fitted);
    JobOutput::new(&StandardScalerResult {
        output_paths: c.output_data.clone(),
        columns_scaled: plan.names(),
        mean,
        scale,
    })
}

/// Mean and scale as sklearn fits them (scale 1 for a constant column).
fn fit_standard(v: &[f64]) -> (Option<f64>, Option<f64>) {
    let (Some(m), Some(var)) = (mean(v), variance(v, 0)) else {
        return (None, None);
    };
    let n = v.len() as f64;
    let eps = f64::EPSILON;
    let bound = n * eps * var + (n * m * eps).powi(2);
    let scale = if var <= bound { 1.0 } else { var.sqrt() };
    (Some(m), Some(scale))
}

/// MinMaxScaler.
pub async fn minmax(ctx: &PartyContext, c: &MinmaxScalerConfig) -> Result<JobOutput> {
    let job = ColumnJob {
        name: "minmax_scaler",
        input: &c.input_data,
        output: Some(&c.output_data),
        requested: c.columns.as_deref(),
        want: Want::Numeric,
    };
    let [lo, hi] = c.feature_range;
    let (plan, fitted) = job
        .run(ctx, |table, mine| {
            let mut out = ColumnMap::new();
            for col in mine {
                let xs = table.floats(&col.name)?;
                let v = present(&xs);
                let min = v.iter().copied().reduce(f64::min);
                let max = v.iter().copied().reduce(f64::max);
                if let (Some(dmin), Some(dmax)) = (min, max) {
                    let range = dmax - dmin;
                    let range = if range < 10.0 * f64::EPSILON { 1.0 } else { range };
                    let scale = (hi - lo) / range;
                    let shift = lo - dmin * scale;
                    table.set_floats(&col.name, xs.iter().map(|x| x.map(|x| x * scale + shift)).collect())?;
                }
                out.insert(col.name.clone(), (min, max));
            }
            Ok(out)
        })
        .await?;
    let (data_min, data_max) = unzip(fitted);
    JobOutput::new(&MinmaxScalerResult {
        output_paths: c.output_data.clone(),
        columns_scaled: plan.names(),
        data_min,
        data_max,
    })
}
