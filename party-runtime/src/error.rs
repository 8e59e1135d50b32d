//! The crate's one error enum and its mapping onto the Worker-API error types, in one place.
//!
//! Variants carry what the message must name: the party, the field, the file or the peer. Bad input is a
//! `ValueError` and is not logged as an internal error.

use std::path::PathBuf;

use secretflow_crds::{ErrorInfo, ErrorType, ValidationError};

use crate::link::LinkError;

/// Everything that can fail a party's task.
#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum Error {
    /// The request breaks the contract.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The request is valid but the data does not fit it (a missing column, text where numbers are needed).
    #[error("party {party}: {field}: {message}")]
    BadData {
        /// The party whose data is at fault.
        party: String,
        /// The request field involved (`task_config.columns`).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// An input file does not exist.
    #[error("party {party}: {field}: input file not found: {}", path.display())]
    FileNotFound {
        /// The party.
        party: String,
        /// The request field naming the file.
        field: String,
        /// The resolved path.
        path: PathBuf,
    },
    /// A path outside the data roots, or a file the process may not access.
    #[error("party {party}: {field}: {message}: {}", path.display())]
    Permission {
        /// The party.
        party: String,
        /// The request field naming the file.
        field: String,
        /// The resolved path.
        path: PathBuf,
        /// Why access is refused.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("party {party}: {}: {message}", path.display())]
    Io {
        /// The party.
        party: String,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        message: String,
    },
    /// A file could not be read or written as CSV. The parser's message may quote the file's cells, so it is
    /// not sent to the other parties ([`Error::to_peer_info`]).
    #[error("party {party}: {}: CSV: {detail}", path.display())]
    Csv {
        /// The party.
        party: String,
        /// The file.
        path: PathBuf,
        /// The parser's message.
        detail: String,
    },
    /// The link failed (peer lost, timeout, bad message).
    #[error("party {party}: {source}")]
    Link {
        /// The party that saw the failure.
        party: String,
        /// What the link reported.
        #[source]
        source: LinkError,
    },
    /// Another party failed; its error is carried as it reported it.
    #[error("party {party}: peer {peer} failed: {error}")]
    Peer {
        /// The party that learned of the failure.
        party: String,
        /// The party that failed.
        peer: String,
        /// Its error.
        error: ErrorInfo,
    },
    /// The task type or mode exists in the contract but is not implemented yet.
    #[error("{what} is not implemented yet in this party-runtime ({tracking})")]
    NotImplemented {
        /// What is missing.
        what: String,
        /// Where it is tracked.
        tracking: &'static str,
    },
    /// A bug: an invariant broke or a party's task panicked.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Result with this crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The Worker-API error type.
    pub fn error_type(&self) -> ErrorType {
        match self {
            Error::Invalid(_) | Error::BadData { .. } => ErrorType::ValueError,
            Error::FileNotFound { .. } => ErrorType::FileNotFoundError,
            Error::Permission { .. } => ErrorType::PermissionError,
            Error::Link { source: LinkError::Timeout { .. }, .. } => ErrorType::TimeoutError,
            Error::Io { .. }
            | Error::Csv { .. }
            | Error::Link { .. }
            | Error::Peer { .. }
            | Error::NotImplemented { .. } => ErrorType::RuntimeError,
            Error::Internal(_) => ErrorType::RuntimeError,
        }
    }

    /// Whether this error only reports another party's failure (the root cause is elsewhere).
    pub fn is_peer_report(&self) -> bool {
        matches!(
            self,
            Error::Peer { .. }
                | Error::Link { source: LinkError::PeerClosed { .. } | LinkError::PeerFailed { .. }, .. }
        )
    }

    /// The peer this party's failure is blamed on: the one its link lost or that reported its own failure.
    /// Written to the party's status so the controller names the root cause without parsing messages.
    pub fn blamed_peer(&self) -> Option<&str> {
        match self {
            Error::Link { source, .. } => Some(source.peer()),
            Error::Peer { peer, .. } => Some(peer),
            _ => None,
        }
    }

    /// A `BadData` error.
    pub fn bad_data(party: &str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::BadData { party: party.to_string(), field: field.into(), message: message.into() }
    }

    /// The error object sent to the other parties: [`Error::to_info`], except that a CSV parser's message,
    /// which may quote the file's cells, stays with this party (its own result carries it).
    pub fn to_peer_info(&self) -> ErrorInfo {
        match self {
            Error::Csv { party, path, .. } => {
                let message = format!(
                    "party {party}: {}: CSV: the file could not be parsed (the parser's message stays with {party})",
                    path.display()
                );
                let traceback = format!("{}: {message}", self.error_type());
                ErrorInfo { kind: self.error_type(), message, traceback }
            }
            _ => self.to_info(),
        }
    }

    /// The Worker-API error object; the traceback lists the chain of causes.
    pub fn to_info(&self) -> ErrorInfo {
        let message = self.to_string();
        let mut traceback = format!("{}: {message}", self.error_type());
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            traceback.push_str(&format!("\n  caused by: {s}"));
            source = s.source();
        }
        if let Error::Peer { error, .. } = self {
            traceback.push_str(&format!("\n  peer traceback:\n{}", error.traceback));
        }
        ErrorInfo { kind: self.error_type(), message, traceback }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_or_peer_failure_blames_the_peer_and_nothing_else_does() {
        let link = |source| Error::Link { party: "alice".into(), source };
        let timeout = link(LinkError::Timeout { peer: "bob".into(), tag: "t".into(), secs: 5 });
        assert_eq!(timeout.blamed_peer(), Some("bob"));
        let closed = link(LinkError::PeerClosed { peer: "carol".into(), tag: "t".into() });
        assert_eq!(closed.blamed_peer(), Some("carol"));
        let relayed = Error::Peer {
            party: "alice".into(),
            peer: "bob".into(),
            error: ErrorInfo { kind: ErrorType::ValueError, message: "m".into(), traceback: String::new() },
        };
        assert_eq!(relayed.blamed_peer(), Some("bob"));
        // Errors that mention a peer only in their text blame nobody.
        assert_eq!(Error::bad_data("alice", "task_config.x", "peer `bob` sent nothing").blamed_peer(), None);
        assert_eq!(Error::Internal("link to peer `bob`".into()).blamed_peer(), None);
    }
}
