//! Small validation helpers shared by the task configurations; each names the field it rejects.

use std::collections::BTreeMap;

use crate::error::ValidationError;

/// A path per party (`{"alice": "/app/data/a.csv"}`).
pub type PartyPaths = BTreeMap<String, String>;

/// `name` must be one of `parties`.
pub(crate) fn is_party(field: &str, name: &str, parties: &[String]) -> Result<(), ValidationError> {
    if parties.iter().any(|p| p == name) {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            format!("`{name}` is not a party of sf_init_config (parties: {})", parties.join(", ")),
        ))
    }
}

/// A non-empty map whose keys are parties and whose values are non-empty paths.
pub(crate) fn party_paths(field: &str, map: &PartyPaths, parties: &[String]) -> Result<(), ValidationError> {
    if map.is_empty() {
        return Err(ValidationError::new(field, "must name at least one party"));
    }
    for (party, path) in map {
        is_party(&format!("{field}.{party}"), party, parties)?;
        non_empty(&format!("{field}.{party}"), path)?;
    }
    Ok(())
}

/// `outputs` must have exactly the parties of `inputs`.
pub(crate) fn same_parties(
    out_field: &str,
    outputs: &PartyPaths,
    in_field: &str,
    inputs: &PartyPaths,
) -> Result<(), ValidationError> {
    if let Some(p) = inputs.keys().find(|p| !outputs.contains_key(*p)) {
        return Err(ValidationError::new(out_field, format!("missing an entry for party `{p}` (it is in {in_field})")));
    }
    if let Some(p) = outputs.keys().find(|p| !inputs.contains_key(*p)) {
        return Err(ValidationError::new(
            format!("{out_field}.{p}"),
            format!("party `{p}` has no entry in {in_field}"),
        ));
    }
    Ok(())
}

/// A non-blank string.
pub(crate) fn non_empty(field: &str, s: &str) -> Result<(), ValidationError> {
    if s.trim().is_empty() { Err(ValidationError::new(field, "must be a non-empty string")) } else { Ok(()) }
}

/// A non-empty list of distinct, non-blank column names.
pub(crate) fn columns(field: &str, cols: &[String]) -> Result<(), ValidationError> {
    if cols.is_empty() {
        return Err(ValidationError::new(field, "must list at least one column"));
    }
    for (i, c) in cols.iter().enumerate() {
        non_empty(&format!("{field}[{i}]"), c)?;
        if cols[..i].contains(c) {
            return Err(ValidationError::new(field, format!("column `{c}` is listed twice")));
        }
    }
    Ok(())
}

/// `columns`, when given.
pub(crate) fn opt_columns(field: &str, cols: &Option<Vec<String>>) -> Result<(), ValidationError> {
    cols.as_deref().map_or(Ok(()), |c| columns(field, c))
}

/// A finite number strictly above zero.
pub(crate) fn positive(field: &str, x: f64) -> Result<(), ValidationError> {
    if x.is_finite() && x > 0.0 {
        Ok(())
    } else {
        Err(ValidationError::new(field, format!("expected a number > 0, got {x}")))
    }
}

/// A finite number at or above zero.
pub(crate) fn non_negative(field: &str, x: f64) -> Result<(), ValidationError> {
    if x.is_finite() && x >= 0.0 {
        Ok(())
    } else {
        Err(ValidationError::new(field, format!("expected a number >= 0, got {x}")))
    }
}

/// A fraction in (0, 1].
pub(crate) fn fraction(field: &str, x: f64) -> Result<(), ValidationError> {
    if x.is_finite() && x > 0.0 && x <= 1.0 {
        Ok(())
    } else {
        Err(ValidationError::new(field, format!("expected a number in (0, 1], got {x}")))
    }
}

/// An integer within `lo..=hi`.
pub(crate) fn in_range(field: &str, x: u32, lo: u32, hi: u32) -> Result<(), ValidationError> {
    if (lo..=hi).contains(&x) {
        Ok(())
    } else {
        Err(ValidationError::new(field, format!("expected an integer in {lo}..={hi}, got {x}")))
    }
}
