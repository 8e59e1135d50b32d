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

/// SecretFlow's sigmoid approximations, and SPU's linear one.
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
    /// SPU's linear sigmoid (`SIGMOID_MM1`): `0.5 + x/8` without limits, so a prediction can leave `[0, 1]`;
    /// no comparison, one truncation. What SPU's `jax.nn.sigmoid` computes by default.
    Mm1,
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
    /// Initial prediction (default 0.5): a probability for `logistic`, a value for `linear`.
    pub base_score: f64,
    /// Quantile sketch resolution (default 0.1, about `1 / sketch_eps` buckets per feature), as SecretFlow's.
    pub sketch_eps: f64,
    /// Seed of the row and column sampling (default 42); the draws are public, shared by every party.
    pub seed: u64,
    /// Pre-pruning (default 0, off): a node splits only if its best split reduces the loss by more than
    /// this (`G_L^2 / (H_L + l) + G_R^2 / (H_R + l) - G^2 / (H + l)`, xgboost's `min_split_loss`).
    pub gamma: f64,
    /// The smallest hessian sum either child of a split may have (default 0, off), as SecretFlow's and
    /// xgboost's `min_child_weight`.
    pub min_child_weight: f64,
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
            sketch_eps: 0.1,
            seed: 42,
            gamma: 0.0,
            min_child_weight: 0.0,
        }
    }
}

/// Training parameters that know how to check themselves.
pub trait Params {
    /// Range checks; the error's field is relative to `params`.
    fn validate(&self) -> Result<(), ValidationError>;
}

impl Params for LrParams {
    fn validate(&self) -> Result<(), ValidationError> {
        check::in_range("epochs", self.epochs, 1, 100_000)?;
        check::positive("learning_rate", self.learning_rate)?;
        check::in_range("batch_size", self.batch_size, 1, u32::MAX)?;
        check::non_negative("l2_norm", self.l2_norm)?;
        check::non_negative("eps", self.eps)
    }
}

impl Params for XgbParams {
    fn validate(&self) -> Result<(), ValidationError> {
        check::in_range("num_boost_round", self.num_boost_round, 1, 1024)?;
        check::in_range("max_depth", self.max_depth, 1, 16)?;
        check::positive("learning_rate", self.learning_rate)?;
        // Positive: an empty node's H + lambda is the divisor of its gain and weight.
        check::positive("reg_lambda", self.reg_lambda)?;
        check::fraction("subsample", self.subsample)?;
        check::fraction("colsample_by_tree", self.colsample_by_tree)?;
        check::fraction("sketch_eps", self.sketch_eps)?;
        if self.sketch_eps < 0.01 {
            return Err(ValidationError::new("sketch_eps", "must be at least 0.01 (at most 100 buckets per feature)"));
        }
        if !self.base_score.is_finite() {
            return Err(ValidationError::new("base_score", "must be a finite number"));
        }
        for (field, v, max) in [("gamma", self.gamma, 10_000.0), ("min_child_weight", self.min_child_weight, 1000.0)] {
            check::non_negative(field, v)?;
            if v > max {
                return Err(ValidationError::new(field, format!("must be at most {max}, got {v}")));
            }
        }
        if self.objective == Objective::Logistic && !(self.base_score > 0.0 && self.base_score < 1.0) {
            return Err(ValidationError::new("base_score", "must be in (0, 1) for the logistic objective"));
        }
        Ok(())
    }
}

/// A vertical supervised-learning task (`ss_lr` with [`LrParams`], `ss_xgb` with [`XgbParams`]).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, bound(deserialize = "P: Deserialize<'de> + Default"))]
pub struct Supervised<P> {
    /// Training CSV per party (vertically partitioned, rows aligned).
    pub train_data: PartyPaths,
    /// Feature columns, across all parties.
    pub features: Vec<String>,
    /// Label column.
    pub label: String,
    /// The party holding the label.
    pub label_party: String,
    /// Where each party saves its part (share) of the model.
    pub model_output: PartyPaths,
    /// Training parameters.
    #[serde(default)]
    pub params: P,
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

/// The SS-LR configuration.
pub type SsLrConfig = Supervised<LrParams>;
/// The SS-XGB configuration.
pub type SsXgbConfig = Supervised<XgbParams>;

impl<P: Params> Supervised<P> {
    /// Parties with a model output but no training data (they may only be MPC nodes).
    pub fn dataless_outputs(&self) -> impl Iterator<Item = &String> {
        self.model_output.keys().filter(|p| !self.train_data.contains_key(*p))
    }

    pub(crate) fn validate(&self, parties: &[String]) -> Result<(), ValidationError> {
        check::party_paths("train_data", &self.train_data, parties)?;
        check::columns("features", &self.features)?;
        check::non_empty("label", &self.label)?;
        if self.features.contains(&self.label) {
            return Err(ValidationError::new(
                "features",
                format!("the label `{}` must not be listed as a feature", self.label),
            ));
        }
        check::is_party("label_party", &self.label_party, parties)?;
        if !self.train_data.contains_key(&self.label_party) {
            return Err(ValidationError::new(
                "label_party",
                format!("`{}` has no entry in train_data", self.label_party),
            ));
        }
        check::party_paths("model_output", &self.model_output, parties)?;
        // A node without data (ABY3's third party) may save its share too; the request checks it is a node.
        if let Some(p) = self.train_data.keys().find(|p| !self.model_output.contains_key(*p)) {
            return Err(ValidationError::new(
                "model_output",
                format!("missing an entry for party `{p}` (it is in train_data)"),
            ));
        }
        if let Some(t) = &self.test_data {
            check::party_paths("test_data", t, parties)?;
            check::same_parties("test_data", t, "train_data", &self.train_data)?;
        }
        if let Some(p) = &self.prediction_output {
            check::party_paths("prediction_output", p, parties)?;
            if self.test_data.is_none() {
                return Err(ValidationError::new("prediction_output", "given without test_data to predict on"));
            }
        }
        if let Some(r) = &self.prediction_receiver {
            check::is_party("prediction_receiver", r, parties)?;
            if self.prediction_output.as_ref().is_some_and(|p| !p.contains_key(r)) {
                return Err(ValidationError::new(
                    "prediction_output",
                    format!("missing an entry for the prediction_receiver `{r}`"),
                ));
            }
        }
        self.params.validate().map_err(|e| e.under("params"))
    }
}
