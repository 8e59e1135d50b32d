//! One typed configuration per `task_type` (the fifteen of the Worker API), read from `task_config`.
//!
//! Reading rejects unknown fields (a typo must not be silently ignored) and names the path of a field of the
//! wrong shape; `validate` then checks what serde cannot: parties, ranges and cross-field rules.

mod check;
pub mod evaluation;
pub mod learning;
pub mod preprocessing;
pub mod psi;
pub mod stats;

use serde::Serialize;
use serde_json::Value;

pub use check::PartyPaths;
use evaluation::{BiclassificationEvalConfig, RegressionEvalConfig};
use learning::{SsLrConfig, SsXgbConfig};
use preprocessing::{
    BinningConfig, FillnaConfig, LabelEncoderConfig, MinmaxScalerConfig, OnehotEncoderConfig, StandardScalerConfig,
};
use psi::PsiConfig;
use stats::StatsConfig;

use crate::error::ValidationError;
use crate::parse::from_value;

/// The fifteen task types, named as in `task_config.task_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)]
pub enum TaskType {
    Psi,
    SsLr,
    SsXgb,
    StandardScaler,
    MinmaxScaler,
    LabelEncoder,
    OnehotEncoder,
    QuantileBinning,
    EqualWidthBinning,
    Fillna,
    TableStatistics,
    PearsonCorrelation,
    Vif,
    BiclassificationEval,
    RegressionEval,
}

impl TaskType {
    /// Every task type with its wire name.
    pub const ALL: [(TaskType, &'static str); 15] = [
        (TaskType::Psi, "psi"),
        (TaskType::SsLr, "ss_lr"),
        (TaskType::SsXgb, "ss_xgb"),
        (TaskType::StandardScaler, "standard_scaler"),
        (TaskType::MinmaxScaler, "minmax_scaler"),
        (TaskType::LabelEncoder, "label_encoder"),
        (TaskType::OnehotEncoder, "onehot_encoder"),
        (TaskType::QuantileBinning, "quantile_binning"),
        (TaskType::EqualWidthBinning, "equal_width_binning"),
        (TaskType::Fillna, "fillna"),
        (TaskType::TableStatistics, "table_statistics"),
        (TaskType::PearsonCorrelation, "pearson_correlation"),
        (TaskType::Vif, "vif"),
        (TaskType::BiclassificationEval, "biclassification_eval"),
        (TaskType::RegressionEval, "regression_eval"),
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        Self::ALL.iter().find(|(t, _)| *t == self).map_or("unknown", |(_, n)| n)
    }

    /// The task type with this wire name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(t, _)| *t)
    }

    /// Whether the task computes on secret shares and so needs `spu_config`.
    pub fn needs_spu(self) -> bool {
        matches!(self, TaskType::SsLr | TaskType::SsXgb | TaskType::PearsonCorrelation | TaskType::Vif)
    }
}

impl std::fmt::Display for TaskType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A typed `task_config`.
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)]
pub enum TaskConfig {
    Psi(PsiConfig),
    SsLr(SsLrConfig),
    SsXgb(SsXgbConfig),
    StandardScaler(StandardScalerConfig),
    MinmaxScaler(MinmaxScalerConfig),
    LabelEncoder(LabelEncoderConfig),
    OnehotEncoder(OnehotEncoderConfig),
    QuantileBinning(BinningConfig),
    EqualWidthBinning(BinningConfig),
    Fillna(FillnaConfig),
    TableStatistics(StatsConfig),
    PearsonCorrelation(StatsConfig),
    Vif(StatsConfig),
    BiclassificationEval(BiclassificationEvalConfig),
    RegressionEval(RegressionEvalConfig),
}

impl TaskConfig {
    /// Read `task_config`: dispatch on `task_type`, then read the rest into that type's configuration.
    pub fn from_json(value: &Value) -> Result<Self, ValidationError> {
        let f = "task_config";
        let obj = value.as_object().ok_or_else(|| ValidationError::new(f, "must be a JSON object"))?;
        let name = match obj.get("task_type") {
            None => return Err(ValidationError::new(f, "missing field `task_type`")),
            Some(Value::String(s)) => s.as_str(),
            Some(other) => {
                return Err(ValidationError::new(format!("{f}.task_type"), format!("expected a string, got {other}")));
            }
        };
        let ty = TaskType::from_name(name).ok_or_else(|| {
            let known: Vec<&str> = TaskType::ALL.iter().map(|(_, n)| *n).collect();
            ValidationError::new(
                format!("{f}.task_type"),
                format!("unknown task type `{name}`; expected one of: {}", known.join(", ")),
            )
        })?;
        let mut rest = obj.clone();
        rest.remove("task_type");
        let rest = Value::Object(rest);
        Ok(match ty {
            TaskType::Psi => TaskConfig::Psi(from_value(&rest, f)?),
            TaskType::SsLr => TaskConfig::SsLr(from_value(&rest, f)?),
            TaskType::SsXgb => TaskConfig::SsXgb(from_value(&rest, f)?),
            TaskType::StandardScaler => TaskConfig::StandardScaler(from_value(&rest, f)?),
            TaskType::MinmaxScaler => TaskConfig::MinmaxScaler(from_value(&rest, f)?),
            TaskType::LabelEncoder => TaskConfig::LabelEncoder(from_value(&rest, f)?),
            TaskType::OnehotEncoder => TaskConfig::OnehotEncoder(from_value(&rest, f)?),
            TaskType::QuantileBinning => TaskConfig::QuantileBinning(from_value(&rest, f)?),
            TaskType::EqualWidthBinning => TaskConfig::EqualWidthBinning(from_value(&rest, f)?),
            TaskType::Fillna => TaskConfig::Fillna(from_value(&rest, f)?),
            TaskType::TableStatistics => TaskConfig::TableStatistics(from_value(&rest, f)?),
            TaskType::PearsonCorrelation => TaskConfig::PearsonCorrelation(from_value(&rest, f)?),
            TaskType::Vif => TaskConfig::Vif(from_value(&rest, f)?),
            TaskType::BiclassificationEval => TaskConfig::BiclassificationEval(from_value(&rest, f)?),
            TaskType::RegressionEval => TaskConfig::RegressionEval(from_value(&rest, f)?),
        })
    }

    /// The task type.
    pub fn task_type(&self) -> TaskType {
        match self {
            TaskConfig::Psi(_) => TaskType::Psi,
            TaskConfig::SsLr(_) => TaskType::SsLr,
            TaskConfig::SsXgb(_) => TaskType::SsXgb,
            TaskConfig::StandardScaler(_) => TaskType::StandardScaler,
            TaskConfig::MinmaxScaler(_) => TaskType::MinmaxScaler,
            TaskConfig::LabelEncoder(_) => TaskType::LabelEncoder,
            TaskConfig::OnehotEncoder(_) => TaskType::OnehotEncoder,
            TaskConfig::QuantileBinning(_) => TaskType::QuantileBinning,
            TaskConfig::EqualWidthBinning(_) => TaskType::EqualWidthBinning,
            TaskConfig::Fillna(_) => TaskType::Fillna,
            TaskConfig::TableStatistics(_) => TaskType::TableStatistics,
            TaskConfig::PearsonCorrelation(_) => TaskType::PearsonCorrelation,
            TaskConfig::Vif(_) => TaskType::Vif,
            TaskConfig::BiclassificationEval(_) => TaskType::BiclassificationEval,
            TaskConfig::RegressionEval(_) => TaskType::RegressionEval,
        }
    }

    /// Cross-field checks; the error's field is relative to `task_config`.
    pub fn validate(&self, parties: &[String]) -> Result<(), ValidationError> {
        match self {
            TaskConfig::Psi(c) => c.validate(parties),
            TaskConfig::SsLr(c) => c.validate(parties),
            TaskConfig::SsXgb(c) => c.validate(parties),
            TaskConfig::StandardScaler(c) => c.validate(parties),
            TaskConfig::MinmaxScaler(c) => c.validate(parties),
            TaskConfig::LabelEncoder(c) => c.validate(parties),
            TaskConfig::OnehotEncoder(c) => c.validate(parties),
            TaskConfig::QuantileBinning(c) | TaskConfig::EqualWidthBinning(c) => c.validate(parties),
            TaskConfig::Fillna(c) => c.validate(parties),
            TaskConfig::TableStatistics(c) | TaskConfig::PearsonCorrelation(c) => c.validate(parties, false),
            TaskConfig::Vif(c) => c.validate(parties, true),
            TaskConfig::BiclassificationEval(c) => c.validate(parties),
            TaskConfig::RegressionEval(c) => c.validate(parties),
        }
    }

    /// The configuration as `task_config` JSON, `task_type` included.
    pub fn to_json(&self) -> Value {
        fn with_type<T: Serialize>(ty: TaskType, c: &T) -> Value {
            let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
            if let Value::Object(m) = &mut v {
                m.insert("task_type".into(), Value::String(ty.as_str().into()));
            }
            v
        }
        let ty = self.task_type();
        match self {
            TaskConfig::Psi(c) => with_type(ty, c),
            TaskConfig::SsLr(c) => with_type(ty, c),
            TaskConfig::SsXgb(c) => with_type(ty, c),
            TaskConfig::StandardScaler(c) => with_type(ty, c),
            TaskConfig::MinmaxScaler(c) => with_type(ty, c),
            TaskConfig::LabelEncoder(c) => with_type(ty, c),
            TaskConfig::OnehotEncoder(c) => with_type(ty, c),
            TaskConfig::QuantileBinning(c) | TaskConfig::EqualWidthBinning(c) => with_type(ty, c),
            TaskConfig::Fillna(c) => with_type(ty, c),
            TaskConfig::TableStatistics(c) | TaskConfig::PearsonCorrelation(c) | TaskConfig::Vif(c) => with_type(ty, c),
            TaskConfig::BiclassificationEval(c) => with_type(ty, c),
            TaskConfig::RegressionEval(c) => with_type(ty, c),
        }
    }
}
