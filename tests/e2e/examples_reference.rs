//! The example requests against the pandas/sklearn references made by `tests/reference/make_reference.py`.
#![allow(clippy::unwrap_used)]

use secretflow_e2e::{assert_csv_matches, assert_json_matches, repo_root, run};
use serde_json::Value;

const TASKS: [&str; 11] = [
    "psi",
    "standard_scaler",
    "minmax_scaler",
    "label_encoder",
    "onehot_encoder",
    "quantile_binning",
    "equal_width_binning",
    "fillna",
    "table_statistics",
    "biclassification_eval",
    "regression_eval",
];

async fn check(task: &str) {
    let root = repo_root();
    let out = tempfile::tempdir().unwrap();
    let redirect = |s: &str| s.replace("examples/out/", &format!("{}/", out.path().display()));
    let request = std::fs::read_to_string(root.join(format!("examples/requests/{task}.json"))).unwrap();
    let expected_all: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("tests/reference/expected.json")).unwrap()).unwrap();
    let expected: Value = serde_json::from_str(&redirect(&expected_all[task].to_string())).unwrap();

    let got = run(&redirect(&request), vec![root.clone(), out.path().to_path_buf()]).await;
    assert_eq!(got["status"], "success", "{task}: {got:#}");
    assert_eq!(got["task_metadata"]["task_type"], task);
    assert_json_matches(&expected, &got["result"], task);

    let tables = root.join("tests/reference").join(task);
    if tables.is_dir() {
        for party in ["alice", "bob"] {
            let written = got["result"]["output_paths"][party].as_str().unwrap();
            assert_csv_matches(&tables.join(format!("{party}.csv")), std::path::Path::new(written));
        }
    }
    if let Some(report) = got["result"]["output_report"].as_str() {
        let content: Value = serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap();
        assert_eq!(content, got["result"], "{task}: the report file holds the result");
    }
}

#[tokio::test]
async fn every_example_matches_its_reference() {
    for task in TASKS {
        check(task).await;
    }
}

#[test]
fn every_implemented_task_type_has_an_example() {
    let dir = repo_root().join("examples/requests");
    for task in TASKS {
        assert!(dir.join(format!("{task}.json")).is_file(), "examples/requests/{task}.json");
    }
}
