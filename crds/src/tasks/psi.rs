//! `task_type: "psi"` (spec section 1): private set intersection between two parties.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::check::{self, PartyPaths};
use crate::error::ValidationError;

/// The PSI protocols. Unknown names are rejected by serde with the list of these.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[allow(non_camel_case_types)]
pub enum PsiProtocol {
    /// KKRT16 batched-OPRF PSI over OT extension (the default).
    #[default]
    KKRT_PSI_2PC,
    /// Diffie-Hellman PSI on Ristretto255.
    ECDH_PSI_2PC,
}

/// The PSI configuration.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PsiConfig {
    /// Key columns per party; several columns form a composite key.
    pub keys: BTreeMap<String, Vec<String>>,
    /// Input CSV per party.
    pub input_paths: PartyPaths,
    /// Output CSV per party.
    pub output_paths: PartyPaths,
    /// The party that learns the intersection.
    pub receiver: String,
    /// Protocol; `KKRT_PSI_2PC` by default.
    #[serde(default)]
    pub protocol: PsiProtocol,
    /// Sort output rows by key (default false: the receiver's input order).
    #[serde(default)]
    pub sort: bool,
    /// Whether the non-receiver also learns the intersection and writes its output (default true).
    #[serde(default = "yes")]
    pub broadcast_result: bool,
}

fn yes() -> bool {
    true
}

impl PsiConfig {
    pub(crate) fn validate(&self, parties: &[String]) -> Result<(), ValidationError> {
        check::party_paths("input_paths", &self.input_paths, parties)?;
        if self.input_paths.len() != 2 {
            return Err(ValidationError::new(
                "input_paths",
                format!("two-party PSI needs exactly 2 parties, got {}", self.input_paths.len()),
            ));
        }
        check::party_paths("output_paths", &self.output_paths, parties)?;
        check::same_parties("output_paths", &self.output_paths, "input_paths", &self.input_paths)?;
        let mut arity = None;
        for party in self.input_paths.keys() {
            let cols = self
                .keys
                .get(party)
                .ok_or_else(|| ValidationError::new("keys", format!("missing the key columns of party `{party}`")))?;
            check::columns(&format!("keys.{party}"), cols)?;
            match arity {
                Some(n) if n != cols.len() => {
                    return Err(ValidationError::new(
                        format!("keys.{party}"),
                        format!(
                            "composite keys must have the same number of columns at every party ({n} vs {})",
                            cols.len()
                        ),
                    ));
                }
                _ => arity = Some(cols.len()),
            }
        }
        if let Some(p) = self.keys.keys().find(|p| !self.input_paths.contains_key(*p)) {
            return Err(ValidationError::new(format!("keys.{p}"), format!("party `{p}` has no entry in input_paths")));
        }
        check::is_party("receiver", &self.receiver, parties)?;
        if !self.input_paths.contains_key(&self.receiver) {
            return Err(ValidationError::new("receiver", format!("`{}` has no entry in input_paths", self.receiver)));
        }
        Ok(())
    }
}
