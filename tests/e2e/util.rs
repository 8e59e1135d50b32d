//! Test harness for the cross-component tests: repository paths, running a request in-process, tolerant
//! JSON comparison and CSV comparison against the pandas/sklearn references.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use party_runtime::RunOptions;
use party_runtime::data::DataPolicy;
use serde_json::Value;

/// The stand-in Kubernetes cluster (API server, kubelet, the real controller) for operator tests and benches.
#[path = "k8s/mod.rs"]
pub mod k8s;

/// This package's directory: cargo's run-time variable (the checkout under test, even when the build was shared
/// with a checkout elsewhere), else the compile-time one.
pub fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), PathBuf::from)
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    manifest_dir().parent().unwrap().to_path_buf()
}

/// Run request text in local mode with data roots `roots` (relative paths resolve against the first).
pub async fn run(json: &str, roots: Vec<PathBuf>) -> Value {
    let opts = RunOptions { data: DataPolicy::new(roots), ..RunOptions::default() };
    serde_json::to_value(party_runtime::run_request(json, &opts).await).unwrap()
}

/// Numbers equal within 1e-9 (relative, or absolute near zero).
pub fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// Every field of `expected` is in `actual` with an equal value (numbers within [`close`]).
pub fn assert_json_matches(expected: &Value, actual: &Value, path: &str) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                let av = a.get(k).unwrap_or_else(|| panic!("{path}.{k}: missing in {actual}"));
                assert_json_matches(ev, av, &format!("{path}.{k}"));
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            assert_eq!(e.len(), a.len(), "{path}: length, expected {expected} got {actual}");
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                assert_json_matches(ev, av, &format!("{path}[{i}]"));
            }
        }
        (Value::Number(e), Value::Number(a)) => {
            let (e, a) = (e.as_f64().unwrap(), a.as_f64().unwrap());
            assert!(close(e, a), "{path}: expected {e}, got {a}");
        }
        _ => assert_eq!(expected, actual, "{path}"),
    }
}

/// A small CSV reader for test files (no quoted fields): header and rows of cells.
pub fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(!text.contains('"'), "{}: quoted fields are not supported here", path.display());
    let mut lines = text.lines();
    let split = |l: &str| l.split(',').map(str::to_string).collect::<Vec<_>>();
    let header = split(lines.next().unwrap_or_default());
    (header, lines.filter(|l| !l.is_empty()).map(split).collect())
}

/// Two CSV files hold the same table: same header, same rows; numeric cells within [`close`].
pub fn assert_csv_matches(expected: &Path, actual: &Path) {
    let (eh, er) = read_csv(expected);
    let (ah, ar) = read_csv(actual);
    assert_eq!(eh, ah, "header of {}", actual.display());
    assert_eq!(er.len(), ar.len(), "rows of {}", actual.display());
    for (i, (e, a)) in er.iter().zip(&ar).enumerate() {
        for (j, (ec, ac)) in e.iter().zip(a).enumerate() {
            let same = match (ec.parse::<f64>(), ac.parse::<f64>()) {
                (Ok(x), Ok(y)) => close(x, y),
                _ => ec == ac,
            };
            assert!(same, "{} row {} column `{}`: expected `{ec}`, got `{ac}`", actual.display(), i + 1, eh[j]);
        }
    }
}
