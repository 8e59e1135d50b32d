//! Typed `result` objects, one per task type, shaped exactly as the spec shows; extra fields carry fitted
//! parameters (means, mappings, bin edges) so that later stages can reuse them.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Columns in request order, each with a value.
pub type ColumnMap<T> = IndexMap<String, T>;

/// One PSI participant's counts.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct PsiReport {
    /// The party.
    pub party: String,
    /// Its input rows.
    pub original_count: i64,
    /// Rows in the intersection, or -1 when this party does not learn it.
    pub intersection_count: i64,
}

/// `psi` result (spec section 1).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct PsiResult {
    /// Size of the intersection.
    pub intersection_count: i64,
    /// Outputs written, per party.
    pub output_paths: BTreeMap<String, String>,
    /// The protocol used.
    pub psi_protocol: String,
    /// Per-party counts.
    pub reports: Vec<PsiReport>,
    /// The receiver.
    pub receiver: String,
    /// Every party.
    pub parties: Vec<String>,
}

/// `ss_lr` / `ss_xgb` result (spec sections 2 and 3).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ModelResult {
    /// Whether every model part was written.
    pub model_saved: bool,
    /// Model parts, per party.
    pub model_paths: BTreeMap<String, String>,
    /// Training figures (`epochs`, `final_loss` / `num_trees`).
    pub training_metrics: Value,
    /// The prediction file, when test data was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction_output: Option<String>,
}

/// `standard_scaler` result.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct StandardScalerResult {
    /// Outputs written, per party.
    pub output_paths: BTreeMap<String, String>,
    /// Scaled columns, in request order.
    pub columns_scaled: Vec<String>,
    /// Fitted mean per column (null for an all-missing column).
    pub mean: ColumnMap<Option<f64>>,
    /// Fitted scale per column (population std; 1 where it is 0).
    pub scale: ColumnMap<Option<f64>>,
}

/// `minmax_scaler` result.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct MinmaxScalerResult {
    /// Outputs written, per party.
    pub output_paths: BTreeMap<String, String>,
    /// Scaled columns, in request order.
    pub columns_scaled: Vec<String>,
    /// Fitted minimum per column.
    pub data_min: ColumnMap<Option<f64>>,
    /// Fitted maximum per column.
    pub data_max: ColumnMap<Option<f64>>,
}

/// `label_encoder` result: `classes[col][code]` is the value encoded as `code`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct LabelEncoderResult {
    /// Outputs written, per party.
    pub output_paths: BTreeMap<String, String>,
    /// Encoded columns.
    pub columns_encoded: Vec<String>,
    /// Sorted distinct values per column.
    pub classes: ColumnMap<Vec<Value>>,
}

/// `onehot_encoder` result.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct OnehotEncoderResult {
    /// Outputs written, per party.
    pub output_paths: BTreeMap<String, String>,
    /// Encoded columns.
    pub columns_encoded: Vec<String>,
    /// Sorted categories per column (before `drop`).
    pub categories: ColumnMap<Vec<Value>>,
    /// The new columns replacing each encoded column.
    pub output_columns: ColumnMap<Vec<String>>,
}

/// `quantile_binning` / `equal_width_binning` result.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct BinningResult {
    /// Outputs written, per party.
    pub output_paths: BTreeMap<String, String>,
    /// Binned columns.
    pub columns_binned: Vec<String>,
    /// Bin edges per column: bin `i` is `(edges[i], edges[i+1]]`, the first one closed on the left.
    pub bin_edges: ColumnMap<Vec<f64>>,
    /// Rows per bin.
    pub bin_counts: ColumnMap<Vec<u64>>,
}

/// `fillna` result.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct FillnaResult {
    /// Outputs written, per party.
    pub output_paths: BTreeMap<String, String>,
    /// Filled columns.
    pub columns_filled: Vec<String>,
    /// The value used per column (null when the column had no value to derive one from).
    pub fill_values: ColumnMap<Value>,
    /// Cells filled per column.
    pub filled_counts: ColumnMap<u64>,
}

/// describe()-style statistics of a numeric column (sample std, linear-interpolated quartiles).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct NumericStats {
    /// Non-missing values.
    pub count: u64,
    /// Mean.
    pub mean: Option<f64>,
    /// Sample standard deviation (ddof = 1).
    pub std: Option<f64>,
    /// Minimum.
    pub min: Option<f64>,
    /// First quartile.
    #[serde(rename = "25%")]
    pub q25: Option<f64>,
    /// Median.
    #[serde(rename = "50%")]
    pub q50: Option<f64>,
    /// Third quartile.
    #[serde(rename = "75%")]
    pub q75: Option<f64>,
    /// Maximum.
    pub max: Option<f64>,
}

/// describe()-style statistics of a text column.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct CategoricalStats {
    /// Non-missing values.
    pub count: u64,
    /// Distinct values.
    pub unique: u64,
    /// The most frequent value.
    pub top: Option<String>,
    /// Its frequency.
    pub freq: u64,
}

/// Statistics of one column.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(untagged)]
pub enum ColumnStats {
    /// A numeric column.
    Numeric(NumericStats),
    /// A text column.
    Categorical(CategoricalStats),
}

/// `table_statistics` result.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TableStatisticsResult {
    /// The report written.
    pub output_report: String,
    /// Statistics per column.
    pub statistics: ColumnMap<ColumnStats>,
}

/// `pearson_correlation` result.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct CorrelationResult {
    /// The report written.
    pub output_report: String,
    /// `matrix[a][b]`.
    pub correlation_matrix: ColumnMap<ColumnMap<f64>>,
}

/// `vif` result.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct VifResult {
    /// The report written.
    pub output_report: String,
    /// VIF per column.
    pub vif_values: ColumnMap<f64>,
}

/// Binary classification metrics (threshold 0.5 for f1, precision, recall and accuracy).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct BiclassificationMetrics {
    /// Area under the ROC curve (ties averaged, as sklearn).
    pub auc: f64,
    /// Kolmogorov-Smirnov: max(TPR - FPR) over thresholds.
    pub ks: f64,
    /// F1 of class 1.
    pub f1_score: f64,
    /// Precision of class 1.
    pub precision: f64,
    /// Recall of class 1.
    pub recall: f64,
    /// Accuracy.
    pub accuracy: f64,
}

/// One equal-frequency bucket of predictions, highest scores first.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ScoreBucket {
    /// Rows.
    pub count: u64,
    /// Label-1 rows.
    pub positive: u64,
    /// Label-0 rows.
    pub negative: u64,
    /// Lowest score.
    pub min_score: f64,
    /// Highest score.
    pub max_score: f64,
    /// positive / count.
    pub positive_rate: f64,
}

/// `biclassification_eval` result.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct BiclassificationResult {
    /// The report written.
    pub output_report: String,
    /// The metrics.
    pub metrics: BiclassificationMetrics,
    /// `bucket_size` equal-frequency buckets.
    pub bucket_report: Vec<ScoreBucket>,
}

/// Regression metrics.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct RegressionMetrics {
    /// Mean squared error.
    pub mse: f64,
    /// Its square root.
    pub rmse: f64,
    /// Mean absolute error.
    pub mae: f64,
    /// Coefficient of determination (sklearn's, with its rule for a constant label).
    pub r2_score: f64,
}

/// `regression_eval` result.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct RegressionResult {
    /// The report written.
    pub output_report: String,
    /// The metrics.
    pub metrics: RegressionMetrics,
}
