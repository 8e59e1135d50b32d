//! One module per `task_type`, mirroring the Worker-API tree. A job takes a [`PartyContext`] and its typed
//! config and returns a [`JobOutput`]; it never touches the network or Kubernetes directly.
//!
//! Under vertical partitioning each party processes the columns it holds: the ten local task types exchange
//! only column names and kinds, the fitted per-column results and errors, never cell values. Task types whose
//! engine is not built yet fail with a `RuntimeError` saying so; they never return a made-up result.

mod columns;
pub mod evaluation;
pub mod learning;
pub mod preprocessing;
pub mod psi;
pub mod stats;
mod vertical;

use secretflow_crds::TaskConfig;
use serde::Serialize;
use serde_json::Value;

use crate::context::PartyContext;
use crate::error::{Error, Result};

/// What a job hands back to the runner.
#[derive(Debug, Clone, PartialEq)]
pub struct JobOutput {
    /// The task's `result` object (identical at every party).
    pub result: Value,
    /// A JSON report the runner writes once per process: the raw `output_report` path and its content.
    pub report: Option<(String, Value)>,
    /// A result only this party holds (it differs from the others', e.g. a PSI sender that does not learn the
    /// intersection); local mode reports a shared result instead when there is one.
    pub private: bool,
}

impl JobOutput {
    /// A result with no report file.
    pub fn new<T: Serialize>(result: &T) -> Result<Self> {
        let result = serde_json::to_value(result).map_err(|e| Error::Internal(format!("result encoding: {e}")))?;
        Ok(JobOutput { result, report: None, private: false })
    }

    /// A result whose whole content is also written to `output_report`.
    pub fn with_report<T: Serialize>(result: &T, output_report: &str) -> Result<Self> {
        let mut out = Self::new(result)?;
        out.report = Some((output_report.to_string(), out.result.clone()));
        Ok(out)
    }
}

/// Run `task` as `ctx.party`.
pub async fn run(ctx: &PartyContext, task: &TaskConfig) -> Result<JobOutput> {
    use preprocessing::{binning, encoder, fillna, scaler};
    match task {
        TaskConfig::StandardScaler(c) => scaler::standard(ctx, c).await,
        TaskConfig::MinmaxScaler(c) => scaler::minmax(ctx, c).await,
        TaskConfig::LabelEncoder(c) => encoder::label(ctx, c).await,
        TaskConfig::OnehotEncoder(c) => encoder::onehot(ctx, c).await,
        TaskConfig::QuantileBinning(c) => binning::run(ctx, c, binning::Rule::Quantile).await,
        TaskConfig::EqualWidthBinning(c) => binning::run(ctx, c, binning::Rule::EqualWidth).await,
        TaskConfig::Fillna(c) => fillna::run(ctx, c).await,
        TaskConfig::TableStatistics(c) => stats::table_statistics::run(ctx, c).await,
        TaskConfig::BiclassificationEval(c) => evaluation::biclassification::run(ctx, c).await,
        TaskConfig::RegressionEval(c) => evaluation::regression::run(ctx, c).await,
        TaskConfig::Psi(c) => psi::run(ctx, c).await,
        TaskConfig::SsLr(c) => learning::ss_lr::run(ctx, c).await,
        TaskConfig::PearsonCorrelation(c) => stats::pearson::run(ctx, c).await,
        TaskConfig::Vif(c) => stats::vif::run(ctx, c).await,
        TaskConfig::SsXgb(c) => learning::ss_xgb::run(ctx, c).await,
    }
}
