//! The Worker-API error shape (`{"type", "message", "traceback"}`) and the validation error every bad request
//! becomes. Only the five documented `type`s exist; each crate maps its own errors onto them in one place.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The error kinds the Worker API documents (spec section 7), named as Python names them.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum ErrorType {
    /// The request does not satisfy the contract.
    ValueError,
    /// An input file does not exist.
    FileNotFoundError,
    /// A path is outside the data root or not accessible.
    PermissionError,
    /// Execution failed (including a lost peer).
    RuntimeError,
    /// A deadline or link timeout passed.
    TimeoutError,
}

impl ErrorType {
    /// The Python name, as it appears in the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::ValueError => "ValueError",
            ErrorType::FileNotFoundError => "FileNotFoundError",
            ErrorType::PermissionError => "PermissionError",
            ErrorType::RuntimeError => "RuntimeError",
            ErrorType::TimeoutError => "TimeoutError",
        }
    }
}

impl std::fmt::Display for ErrorType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `error` object of a failed execution.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct ErrorInfo {
    /// One of the documented error kinds.
    #[serde(rename = "type")]
    pub kind: ErrorType,
    /// What went wrong, naming the field, file or peer at fault.
    pub message: String,
    /// Where it went wrong: the chain of causes (there is no Python traceback to give).
    pub traceback: String,
}

impl ErrorInfo {
    /// An error with a traceback equal to its message.
    pub fn new(kind: ErrorType, message: impl Into<String>) -> Self {
        let message = message.into();
        ErrorInfo { kind, traceback: format!("{kind}: {message}"), message }
    }
}

impl std::fmt::Display for ErrorInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

/// A request that breaks the contract. Always a `ValueError`; `field` is the dotted path of the offending
/// field (`task_config.params.penalty`), empty when the request as a whole is at fault.
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
pub struct ValidationError {
    /// Dotted path of the offending field.
    pub field: String,
    /// What was found and what was expected.
    pub message: String,
}

impl ValidationError {
    /// An error about `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ValidationError { field: field.into(), message: message.into() }
    }

    /// The same error with `prefix.` put in front of its field path.
    pub fn under(mut self, prefix: &str) -> Self {
        self.field = join_path(prefix, &self.field);
        self
    }

    /// The Worker-API error object for this failure.
    pub fn to_info(&self) -> ErrorInfo {
        ErrorInfo::new(ErrorType::ValueError, self.to_string())
    }
}

impl std::fmt::Display for ValidationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() { f.write_str(&self.message) } else { write!(f, "{}: {}", self.field, self.message) }
    }
}

/// `a` + `.` + `b`, leaving out empty parts (and no dot before an index such as `[0]`).
pub(crate) fn join_path(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ if b.starts_with('[') => format!("{a}{b}"),
        _ => format!("{a}.{b}"),
    }
}
