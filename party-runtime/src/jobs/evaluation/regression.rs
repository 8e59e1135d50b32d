//! `regression_eval`: mse, rmse, mae and r2_score as sklearn computes them (a constant label gives
//! r2 = 1 for a perfect prediction and 0 otherwise, sklearn's `force_finite`).

use secretflow_crds::outputs::{RegressionMetrics, RegressionResult};
use secretflow_crds::tasks::evaluation::RegressionEvalConfig;

use super::super::JobOutput;
use super::{Scored, on_holder};
use crate::context::PartyContext;
use crate::error::Result;

/// Evaluate a regression.
pub async fn run(ctx: &PartyContext, c: &RegressionEvalConfig) -> Result<JobOutput> {
    let metrics = on_holder(ctx, "regression_eval", &c.prediction_data, &c.label_column, &c.prediction_column, |s| {
        Ok(metrics(&s))
    })
    .await?;
    JobOutput::with_report(&RegressionResult { output_report: c.output_report.clone(), metrics }, &c.output_report)
}

pub(crate) fn metrics(s: &Scored) -> RegressionMetrics {
    let n = s.label.len() as f64;
    let (mut se, mut ae) = (0.0, 0.0);
    for (y, p) in s.label.iter().zip(&s.score) {
        se += (y - p) * (y - p);
        ae += (y - p).abs();
    }
    let mean_y = s.label.iter().sum::<f64>() / n;
    let ss_tot: f64 = s.label.iter().map(|y| (y - mean_y) * (y - mean_y)).sum();
    let r2 = if ss_tot == 0.0 { if se == 0.0 { 1.0 } else { 0.0 } } else { 1.0 - se / ss_tot };
    RegressionMetrics { mse: se / n, rmse: (se / n).sqrt(), mae: ae / n, r2_score: r2 }
}
