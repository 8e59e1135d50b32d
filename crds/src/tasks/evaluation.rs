//! Evaluation tasks (spec section 6): binary classification and regression metrics on a prediction file.

use serde::{Deserialize, Serialize};

use super::check::{self, PartyPaths};
use crate::error::ValidationError;

fn ten() -> u32 {
    10
}

/// `biclassification_eval`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BiclassificationEvalConfig {
    /// The prediction CSV: one party, holding both the label and the prediction column.
    pub prediction_data: PartyPaths,
    /// True 0/1 labels.
    pub label_column: String,
    /// Predicted probabilities of class 1.
    pub prediction_column: String,
    /// Equal-frequency buckets in the report (default 10).
    #[serde(default = "ten")]
    pub bucket_size: u32,
    /// Where the JSON report is written.
    pub output_report: String,
}

/// `regression_eval`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RegressionEvalConfig {
    /// The prediction CSV: one party, holding both columns.
    pub prediction_data: PartyPaths,
    /// True values.
    pub label_column: String,
    /// Predicted values.
    pub prediction_column: String,
    /// Where the JSON report is written.
    pub output_report: String,
}

fn check_eval(
    parties: &[String],
    data: &PartyPaths,
    label: &str,
    prediction: &str,
    report: &str,
) -> Result<(), ValidationError> {
    check::party_paths("prediction_data", data, parties)?;
    if data.len() != 1 {
        return Err(ValidationError::new(
            "prediction_data",
            format!("expected exactly one party holding both the label and the prediction, got {}", data.len()),
        ));
    }
    check::non_empty("label_column", label)?;
    check::non_empty("prediction_column", prediction)?;
    check::non_empty("output_report", report)
}

impl BiclassificationEvalConfig {
    pub(crate) fn validate(&self, parties: &[String]) -> Result<(), ValidationError> {
        check_eval(parties, &self.prediction_data, &self.label_column, &self.prediction_column, &self.output_report)?;
        check::in_range("bucket_size", self.bucket_size, 1, 100_000)
    }
}

impl RegressionEvalConfig {
    pub(crate) fn validate(&self, parties: &[String]) -> Result<(), ValidationError> {
        check_eval(parties, &self.prediction_data, &self.label_column, &self.prediction_column, &self.output_report)
    }
}
