//! serde with field paths: deserialize a JSON value and, on failure, name the path of the offending field.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{ValidationError, join_path};

/// Deserialize `value` as `T`; an error names `prefix` plus the path inside the value.
pub(crate) fn from_value<T: DeserializeOwned>(value: &Value, prefix: &str) -> Result<T, ValidationError> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let inner = err.path().to_string();
        let inner = if inner == "." { String::new() } else { inner };
        ValidationError::new(join_path(prefix, &inner), err.into_inner().to_string())
    })
}
