//! Data access for one party: the path policy (data roots) and CSV tables.
//!
//! Each party reads only its own files. Paths are resolved lexically (`..` first) and, when data roots are
//! configured (`--data-root`, `SF_DATA_ROOTS`), must stay inside one of them, else `PermissionError`.
//! Relative paths resolve against the first data root, or the working directory when there is none.

mod table;

use std::path::{Component, Path, PathBuf};

pub use table::{Cat, ColKind, Header, Table, atomic_write};

use crate::error::{Error, Result};

/// Where a party may read and write.
#[derive(Clone, Debug, Default)]
pub struct DataPolicy {
    roots: Vec<PathBuf>,
}

impl DataPolicy {
    /// A policy confining paths to `roots`; no roots means no confinement.
    pub fn new(roots: Vec<PathBuf>) -> Self {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        DataPolicy { roots: roots.into_iter().map(|r| normalize(&cwd.join(r))).collect() }
    }

    /// The configured roots.
    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    /// Resolve `raw` (from request field `field`) for `party`, enforcing the roots.
    pub fn resolve(&self, party: &str, field: &str, raw: &str) -> Result<PathBuf> {
        let base = match self.roots.first() {
            Some(r) => r.clone(),
            None => std::env::current_dir().map_err(|e| Error::Internal(format!("no working directory: {e}")))?,
        };
        let path = normalize(&base.join(raw));
        if self.roots.is_empty() {
            return Ok(path);
        }
        let inside =
            |p: &Path| self.roots.iter().any(|r| p.starts_with(r) || canonical(r).is_some_and(|c| p.starts_with(c)));
        let refuse = |path: PathBuf, why: &str| Error::Permission {
            party: party.to_string(),
            field: field.to_string(),
            path,
            message: format!(
                "{why} (data roots: {})",
                self.roots.iter().map(|r| r.display().to_string()).collect::<Vec<_>>().join(", ")
            ),
        };
        if !inside(&path) {
            return Err(refuse(path, "path is outside the data roots"));
        }
        // A symlink inside a root must not lead outside it: check the real location of what exists.
        if canonical_existing_prefix(&path).is_some_and(|real| !inside(&real)) {
            return Err(refuse(path, "path leads outside the data roots through a symlink"));
        }
        Ok(path)
    }

    /// Resolve an input file and check it exists.
    pub fn input(&self, party: &str, field: &str, raw: &str) -> Result<PathBuf> {
        let path = self.resolve(party, field, raw)?;
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => Ok(path),
            Ok(_) => Err(Error::Io { party: party.into(), path, message: format!("{field}: not a regular file") }),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(Error::Permission {
                party: party.into(),
                field: field.into(),
                path,
                message: "the process may not read it".into(),
            }),
            Err(_) => Err(Error::FileNotFound { party: party.into(), field: field.into(), path }),
        }
    }
}

/// Lexical normalisation: drop `.`, resolve `..` against the preceding component.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn canonical(p: &Path) -> Option<PathBuf> {
    std::fs::canonicalize(p).ok()
}

/// The canonical form of the longest existing ancestor of `p`, with the rest appended.
fn canonical_existing_prefix(p: &Path) -> Option<PathBuf> {
    let mut existing = p.to_path_buf();
    let mut rest = Vec::new();
    while !existing.exists() {
        rest.push(existing.file_name()?.to_os_string());
        existing = existing.parent()?.to_path_buf();
    }
    let mut real = std::fs::canonicalize(&existing).ok()?;
    for r in rest.into_iter().rev() {
        real.push(r);
    }
    Some(real)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotdot_is_resolved_before_the_root_check() {
        let policy = DataPolicy::new(vec!["/app/data".into()]);
        assert!(policy.resolve("alice", "f", "/app/data/x/../a.csv").is_ok());
        let err = policy.resolve("alice", "task_config.input_data.alice", "/app/data/../etc/passwd").unwrap_err();
        assert!(matches!(err, Error::Permission { .. }), "{err}");
        assert!(err.to_string().contains("task_config.input_data.alice"), "{err}");
        assert!(err.to_string().contains("/etc/passwd"), "{err}");
    }

    #[test]
    fn relative_paths_resolve_against_the_first_root() {
        let policy = DataPolicy::new(vec!["/app/data".into()]);
        assert_eq!(policy.resolve("a", "f", "sub/a.csv").unwrap(), PathBuf::from("/app/data/sub/a.csv"));
        assert!(policy.resolve("a", "f", "../a.csv").is_err());
    }

    #[test]
    fn missing_input_names_party_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let policy = DataPolicy::new(vec![dir.path().into()]);
        let err = policy.input("bob", "task_config.input_data.bob", "nope.csv").unwrap_err();
        assert!(matches!(err, Error::FileNotFound { .. }));
        let msg = err.to_string();
        assert!(msg.contains("bob") && msg.contains("nope.csv"), "{msg}");
    }
}
