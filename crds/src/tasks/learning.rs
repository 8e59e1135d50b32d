//! `ss_lr` and `ss_xgb` (spec sections 2 and 3): vertical secret-sharing logistic/linear regression and
//! XGBoost. Defaults follow the spec's example values where it gives them, SecretFlow's otherwise.

use serde::{Deserialize, Serialize};

use super::check::{self, PartyPaths};
use crate::error::ValidationError;

/// What the model predicts.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum RegType {
    /// Binary classification with a sigmoid link.
    #[default]
    Logistic,
    /// Least-squares regression.
    Linear,
}

/// Regularisation of SS-LR.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Penalty {
    /// No penalty (SecretFlow's default).
    #[default]
    None,
    /// L1 (sub-gradient).
    L1,
    /// L2 with `l2_norm`.
    L2,
}

/// SecretFlow's sigmoid approximations.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SigType {
    /// First-order Taylor: 0.5 + x/4 (SS-LR default).
    #[default]
    T1,
    /// Third-order Taylor.
    T3,
    /// Fifth-order Taylor.
    T5,
    /// Derivative-free `0.5 + 0.5 x / (1 + |x|)`.
    Df,
    /// Square-root based `0.5 + 0.5 x / sqrt(1 + x^2)`.
    Sr,
    /// Piecewise mix of t1 and sr.
    Mix,
    /// The exact sigmoid through exp and reciprocal.
    Real,
}

/// `ss_lr.params`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LrParams {
    /// Passes over the data (default 10).
    pub epochs: u32,
    /// Step size (default 0.1).
    pub learning_rate: f64,
    /// Rows per step (default 128).
    pub batch_size: u32,
    /// `logistic` (default) or `linear`.
    pub reg_type: RegType,
    /// `none` (default), `l1` or `l2`.
    pub penalty: Penalty,
    /// Penalty weight (default 0.1).
    pub l2_norm: f64,
    /// Sigmoid approximation (default `t1`).
    pub sig_type: SigType,
    /// Early stop when the weights move less than this in an epoch (default 0.001; 0 disables).
    pub eps: f64,
}

impl Default for LrParams {
    fn default() -> Self {
        LrParams {
            epochs: 10,
            learning_rate: 0.1,
            batch_size: 128,
            reg_type: RegType::Logistic,
            penalty: Penalty::None,
            l2_norm: 0.1,
            sig_type: SigType::T1,
            eps: 0.001,
        }
    }
}

/// XGBoost objective.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    /// Binary logistic loss.
    #[default]
    Logistic,
    /// Squared error.
    Linear,
}

/// `ss_xgb.params`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct XgbParams {
    /// Trees (default 10).
    pub num_boost_round: u32,
    /// Tree depth (default 5).
    pub max_depth: u32,
    /// Shrinkage (default 0.1).
    pub learning_rate: f64,
    /// `logistic` (default) or `linear`.
    pub objective: Objective,
    /// L2 on leaf weights (default 0.1).
    pub reg_lambda: f64,
    /// Row sampling per tree (default 1.0).
    pub subsample: f64,
    /// Column sampling per tree (default 1.0).
    pub colsample_by_tree: f64,
    /// Initial prediction (default 0.5).
    pub base_score: f64,
}

impl Default for XgbParams {
    fn default() -> Self {
        XgbParams {
            num_boost_round: 10,
            max_depth: 5,
            learning_rate: 0.1,
            objective: Objective::Logistic,
            reg_lambda: 0.1,
            subsample: 1.0,
            colsample_by_tree: 1.0,
            base_score: 0.5,
        }
    }
}

/// Fields `ss_lr` and `ss_xgb` share, checked the same way.
#[allow(clippy::too_many_arguments)] // one argument per shared field, named at the two call sites
fn check_common(
    parties: &[String],
    train_data: &PartyPaths,
    features: &[String],
    label: &str,
    label_party: &str,
    model_output: &PartyPaths,
    test_data: &Option<PartyPaths>,
    prediction_output: &Option<PartyPaths>,
    prediction_receiver: &Option<String>,
) -> Result<(), ValidationError> {
    check::party_paths("train_data", train_data, parties)?;
    check::columns("features", features)?;
    check::non_empty("label", label)?;
    if features.iter().any(|f| f == label) {
        return Err(ValidationError::new("features", format!("the label `{label}` must not be listed as a feature")));
    }
    check::is_party("label_party", label_party, parties)?;
    if !train_data.contains_key(label_party) {
        return Err(ValidationError::new("label_party", format!("`{label_party}` has no entry in train_data")));
    }
    check::party_paths("model_output", model_output, parties)?;
    check::same_parties("model_output", model_output, "train_data", train_data)?;
    if let Some(t) = test_data {
        check::party_paths("test_data", t, parties)?;
        check::same_parties("test_data", t, "train_data", train_data)?;
    }
    if let Some(p) = prediction_output {
        check::party_paths("prediction_output", p, parties)?;
        if test_data.is_none() {
            return Err(ValidationError::new("prediction_output", "given without test_data to predict on"));
        }
    }
    if let Some(r) = prediction_receiver {
        check::is_party("prediction_receiver", r, parties)?;
        if prediction_output.as_ref().is_some_and(|p| !p.contains_key(r)) {
            return Err(ValidationError::new(
                "prediction_output",
                format!("missing an entry for the prediction_receiver `{r}`"),
            ));
        }
    }
    Ok(())
}

/// The SS-LR configuration.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SsLrConfig {
    /// Training CSV per party (vertically partitioned, rows aligned).
    pub train_data: PartyPaths,
    /// Feature columns, across all parties.
    pub features: Vec<String>,
    /// Label column.
    pub label: String,
    /// The party holding the label.
    pub label_party: String,
    /// Where each party saves its model share.
    pub model_output: PartyPaths,
    /// Training parameters.
    #[serde(default)]
    pub params: LrParams,
    /// Test CSV per party.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_data: Option<PartyPaths>,
    /// Where predictions are written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction_output: Option<PartyPaths>,
    /// The party that receives predictions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction_receiver: Option<String>,
}

impl SsLrConfig {
    pub(crate) fn validate(&self, parties: &[String]) -> Result<(), ValidationError> {
        check_common(
            parties,
            &self.train_data,
            &self.features,
            &self.label,
            &self.label_party,
            &self.model_output,
            &self.test_data,
            &self.prediction_output,
            &self.prediction_receiver,
        )?;
        let p = &self.params;
        check::in_range("params.epochs", p.epochs, 1, 100_000)?;
        check::positive("params.learning_rate", p.learning_rate)?;
        check::in_range("params.batch_size", p.batch_size, 1, u32::MAX)?;
        check::non_negative("params.l2_norm", p.l2_norm)?;
        check::non_negative("params.eps", p.eps)
    }
}

/// The SS-XGB configuration.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SsXgbConfig {
    /// Training CSV per party.
    pub train_data: PartyPaths,
    /// Feature columns, across all parties.
    pub features: Vec<String>,
    /// Label column.
    pub label: String,
    /// The party holding the label.
    pub label_party: String,
    /// Where each party saves its part of the model.
    pub model_output: PartyPaths,
    /// Training parameters.
    #[serde(default)]
    pub params: XgbParams,
    /// Test CSV per party.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_data: Option<PartyPaths>,
    /// Where predictions are written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction_output: Option<PartyPaths>,
    /// The party that receives predictions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction_receiver: Option<String>,
}

impl SsXgbConfig {
    pub(crate) fn validate(&self, parties: &[String]) -> Result<(), ValidationError> {
        check_common(
            parties,
            &self.train_data,
            &self.features,
            &self.label,
            &self.label_party,
            &self.model_output,
            &self.test_data,
            &self.prediction_output,
            &self.prediction_receiver,
        )?;
        let p = &self.params;
        check::in_range("params.num_boost_round", p.num_boost_round, 1, 1024)?;
        check::in_range("params.max_depth", p.max_depth, 1, 16)?;
        check::positive("params.learning_rate", p.learning_rate)?;
        check::non_negative("params.reg_lambda", p.reg_lambda)?;
        check::fraction("params.subsample", p.subsample)?;
        check::fraction("params.colsample_by_tree", p.colsample_by_tree)?;
        if !p.base_score.is_finite() {
            return Err(ValidationError::new("params.base_score", "must be a finite number"));
        }
        Ok(())
    }
}
