//! Preprocessing tasks (spec section 4): scalers, encoders, binning, fillna. Each party transforms the listed
//! columns it holds and writes its own output file.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::check::{self, PartyPaths};
use crate::error::ValidationError;

fn check_io(input: &PartyPaths, output: &PartyPaths, parties: &[String]) -> Result<(), ValidationError> {
    check::party_paths("input_data", input, parties)?;
    check::party_paths("output_data", output, parties)?;
    check::same_parties("output_data", output, "input_data", input)
}

fn yes() -> bool {
    true
}

/// `standard_scaler`: `(x - mean) / std` with the population std, as sklearn's StandardScaler.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StandardScalerConfig {
    /// Input CSV per party.
    pub input_data: PartyPaths,
    /// Output CSV per party.
    pub output_data: PartyPaths,
    /// Columns to scale; default every numeric column a single party holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
    /// Subtract the mean (default true).
    #[serde(default = "yes")]
    pub with_mean: bool,
    /// Divide by the standard deviation (default true).
    #[serde(default = "yes")]
    pub with_std: bool,
}

/// `minmax_scaler`: map `[min, max]` onto `feature_range`, as sklearn's MinMaxScaler.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MinmaxScalerConfig {
    /// Input CSV per party.
    pub input_data: PartyPaths,
    /// Output CSV per party.
    pub output_data: PartyPaths,
    /// Columns to scale; default every numeric column a single party holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
    /// Target range (default `[0, 1]`); min must be below max.
    #[serde(default = "unit_range")]
    pub feature_range: [f64; 2],
}

fn unit_range() -> [f64; 2] {
    [0.0, 1.0]
}

/// `label_encoder`: each distinct value becomes its rank among the sorted distinct values.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LabelEncoderConfig {
    /// Input CSV per party.
    pub input_data: PartyPaths,
    /// Output CSV per party.
    pub output_data: PartyPaths,
    /// Categorical columns to encode.
    pub columns: Vec<String>,
}

/// What `onehot_encoder` drops.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Drop {
    /// Keep every category (default).
    #[default]
    None,
    /// Drop the first (smallest) category.
    First,
}

/// `onehot_encoder`: one 0/1 column per category, named `<column>_<value>`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OnehotEncoderConfig {
    /// Input CSV per party.
    pub input_data: PartyPaths,
    /// Output CSV per party.
    pub output_data: PartyPaths,
    /// Categorical columns to encode.
    pub columns: Vec<String>,
    /// `first` or `none` (default).
    #[serde(default)]
    pub drop: Drop,
}

/// `quantile_binning` and `equal_width_binning`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BinningConfig {
    /// Input CSV per party.
    pub input_data: PartyPaths,
    /// Output CSV per party.
    pub output_data: PartyPaths,
    /// Numeric columns to bin.
    pub columns: Vec<String>,
    /// Number of bins (at least 2).
    pub bin_num: u32,
}

/// How `fillna` fills.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FillMethod {
    /// Column mean (numeric columns).
    Mean,
    /// Column median (numeric columns).
    Median,
    /// Most frequent value (smallest on ties, as pandas).
    Mode,
    /// The given `value`.
    Constant,
}

/// `fillna`: replace missing values.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FillnaConfig {
    /// Input CSV per party.
    pub input_data: PartyPaths,
    /// Output CSV per party.
    pub output_data: PartyPaths,
    /// Columns to fill; default every column a single party holds (numeric ones for mean and median).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
    /// The fill method.
    pub method: FillMethod,
    /// The fill value for `constant`: a number or a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

impl StandardScalerConfig {
    pub(crate) fn validate(&self, parties: &[String]) -> Result<(), ValidationError> {
        check_io(&self.input_data, &self.output_data, parties)?;
        check::opt_columns("columns", &self.columns)
    }
}

impl MinmaxScalerConfig {
    pub(crate) fn validate(&self, parties: &[String]) -> Result<(), ValidationError> {
        check_io(&self.input_data, &self.output_data, parties)?;
        check::opt_columns("columns", &self.columns)?;
        let [lo, hi] = self.feature_range;
        if !(lo.is_finite() && hi.is_finite() && lo < hi) {
            return Err(ValidationError::new(
                "feature_range",
                format!("expected [min, max] with min < max, got [{lo}, {hi}]"),
            ));
        }
        Ok(())
    }
}

impl LabelEncoderConfig {
    pub(crate) fn validate(&self, parties: &[String]) -> Result<(), ValidationError> {
        check_io(&self.input_data, &self.output_data, parties)?;
        check::columns("columns", &self.columns)
    }
}

impl OnehotEncoderConfig {
    pub(crate) fn validate(&self, parties: &[String]) -> Result<(), ValidationError> {
        check_io(&self.input_data, &self.output_data, parties)?;
        check::columns("columns", &self.columns)
    }
}

impl BinningConfig {
    pub(crate) fn validate(&self, parties: &[String]) -> Result<(), ValidationError> {
        check_io(&self.input_data, &self.output_data, parties)?;
        check::columns("columns", &self.columns)?;
        check::in_range("bin_num", self.bin_num, 2, 10_000)
    }
}

impl FillnaConfig {
    pub(crate) fn validate(&self, parties: &[String]) -> Result<(), ValidationError> {
        check_io(&self.input_data, &self.output_data, parties)?;
        check::opt_columns("columns", &self.columns)?;
        match (&self.method, &self.value) {
            (FillMethod::Constant, None) => Err(ValidationError::new("value", "required when method is \"constant\"")),
            (_, Some(v)) if !(v.is_number() || v.is_string()) => {
                Err(ValidationError::new("value", format!("expected a number or a string, got {v}")))
            }
            _ => Ok(()),
        }
    }
}
