//! Statistics tasks (spec section 5): describe-style table statistics, Pearson correlation and VIF.

use serde::{Deserialize, Serialize};

use super::check::{self, PartyPaths};
use crate::error::ValidationError;

/// `table_statistics`, `pearson_correlation` and `vif` share this shape; `vif` requires `columns`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StatsConfig {
    /// Input CSV per party.
    pub input_data: PartyPaths,
    /// Columns; default every numeric column a single party holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
    /// Where the JSON report is written.
    pub output_report: String,
}

impl StatsConfig {
    pub(crate) fn validate(&self, parties: &[String], columns_required: bool) -> Result<(), ValidationError> {
        check::party_paths("input_data", &self.input_data, parties)?;
        match &self.columns {
            None if columns_required => {
                return Err(ValidationError::new("", "missing field `columns`"));
            }
            cols => check::opt_columns("columns", cols)?,
        }
        check::non_empty("output_report", &self.output_report)
    }
}
