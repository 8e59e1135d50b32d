//! The `party-runtime` binary: examples run as the README says, and every malformed request, across all
//! fifteen task types, ends in the documented error JSON with the right `type`, a message naming the field,
//! exit status 1 and no panic.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};

mod common;

fn repo_root() -> PathBuf {
    common::manifest_dir().parent().unwrap().to_path_buf()
}

/// Run the binary on `request` written to a file; returns (exit code, stdout JSON, stderr).
fn run_cli(request: &str, args: &[&str]) -> (i32, Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("request.json");
    std::fs::write(&file, request).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_party-runtime"))
        .arg("run")
        .arg(&file)
        .args(args)
        .current_dir(repo_root())
        .env_remove("SF_DATA_ROOTS")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {stdout}"));
    (out.status.code().unwrap_or(-1), json, String::from_utf8_lossy(&out.stderr).into())
}

fn assert_failure(request: &str, args: &[&str], kind: &str, needles: &[&str]) {
    let (code, json, stderr) = run_cli(request, args);
    assert_eq!(code, 1, "exit status for {request}\n{json:#}");
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    assert_eq!(json["status"], "failure", "{json:#}");
    assert_eq!(json["error"]["type"], kind, "{json:#}\nrequest: {request}");
    let message = json["error"]["message"].as_str().unwrap();
    for n in needles {
        assert!(message.contains(n), "message `{message}` should name `{n}`\nrequest: {request}");
    }
    assert!(json["error"]["traceback"].is_string());
}

fn base(task_config: Value) -> Value {
    json!({
        "task_id": "t", "subtask_id": "s", "execution_id": "e",
        "sf_init_config": {"parties": ["alice", "bob"], "address": "local"},
        "spu_config": {"cluster_def": {
            "nodes": [{"party": "alice", "address": "127.0.0.1:12345"}, {"party": "bob", "address": "127.0.0.1:12346"}],
            "runtime_config": {"protocol": "SEMI2K", "field": "FM128"}}},
        "task_config": task_config,
    })
}

/// A valid `task_config` for each of the fifteen task types.
fn valid(task_type: &str) -> Value {
    let io = json!({"alice": "examples/data/alice.csv", "bob": "examples/data/bob.csv"});
    let out = json!({"alice": "examples/out/never_a.csv", "bob": "examples/out/never_b.csv"});
    let learn = json!({"train_data": io, "features": ["bill_length_mm", "flipper_length_mm"], "label": "y",
                       "label_party": "alice", "model_output": out});
    let mut v = match task_type {
        "psi" => {
            json!({"keys": {"alice": ["uid"], "bob": ["uid"]}, "input_paths": io, "output_paths": out,
                        "receiver": "alice", "protocol": "KKRT_PSI_2PC", "sort": true})
        }
        "ss_lr" | "ss_xgb" => learn,
        "standard_scaler" | "minmax_scaler" | "fillna" => {
            json!({"input_data": io, "output_data": out})
        }
        "label_encoder" | "onehot_encoder" => {
            json!({"input_data": io, "output_data": out, "columns": ["island"]})
        }
        "quantile_binning" | "equal_width_binning" => {
            json!({"input_data": io, "output_data": out, "columns": ["body_mass_g"], "bin_num": 4})
        }
        "table_statistics" | "pearson_correlation" | "vif" => {
            json!({"input_data": io, "columns": ["bill_length_mm", "body_mass_g"], "output_report": "examples/out/never_r.json"})
        }
        "biclassification_eval" | "regression_eval" => {
            json!({"prediction_data": {"alice": "examples/data/alice_predictions.csv"},
            "label_column": "y", "prediction_column": "pred_prob", "output_report": "examples/out/never_r.json"})
        }
        other => panic!("no valid config for {other}"),
    };
    if task_type == "fillna" {
        v["method"] = json!("mean");
    }
    v["task_type"] = json!(task_type);
    v
}

/// Set `path` (dotted, inside task_config) to `value`, or remove it when `value` is None.
fn with(task_type: &str, path: &str, value: Option<Value>) -> String {
    let mut req = base(valid(task_type));
    let mut at = &mut req["task_config"];
    let parts: Vec<&str> = path.split('.').collect();
    for p in &parts[..parts.len() - 1] {
        at = &mut at[*p];
    }
    let last = parts[parts.len() - 1];
    match value {
        Some(v) => at[last] = v,
        None => {
            at.as_object_mut().unwrap().remove(last);
        }
    }
    req.to_string()
}

#[test]
fn every_task_type_rejects_unknown_fields_and_bad_parties() {
    for (_, t) in secretflow_crds::TaskType::ALL {
        assert_failure(
            &with(t, "colums", Some(json!(["x"]))),
            &[],
            "ValueError",
            &["task_config", "unknown field `colums`"],
        );
        let paths = match t {
            "psi" => "input_paths",
            "ss_lr" | "ss_xgb" => "train_data",
            "biclassification_eval" | "regression_eval" => "prediction_data",
            _ => "input_data",
        };
        assert_failure(
            &with(t, &format!("{paths}.carol"), Some(json!("/x.csv"))),
            &[],
            "ValueError",
            &[&format!("task_config.{paths}.carol")],
        );
        assert_failure(&with(t, paths, None), &[], "ValueError", &["task_config", &format!("missing field `{paths}`")]);
        assert_failure(
            &with(t, paths, Some(json!("a.csv"))),
            &[],
            "ValueError",
            &[&format!("task_config.{paths}"), "invalid type"],
        );
    }
}

#[test]
fn field_level_errors_name_the_field() {
    let cases: &[(&str, &str, Option<Value>, &[&str])] = &[
        ("psi", "receiver", Some(json!("carol")), &["task_config.receiver", "carol"]),
        ("psi", "protocol", Some(json!("RR22_PSI_2PC")), &["task_config.protocol", "KKRT_PSI_2PC", "ECDH_PSI_2PC"]),
        ("psi", "keys.bob", Some(json!(["uid", "x"])), &["task_config.keys.bob", "same number of columns"]),
        ("psi", "keys", None, &["missing field `keys`"]),
        ("psi", "sort", Some(json!("yes")), &["task_config.sort", "invalid type"]),
        ("ss_lr", "params", Some(json!({"penalty": "l3"})), &["task_config.params.penalty", "l3"]),
        ("ss_lr", "params", Some(json!({"epochs": 0})), &["task_config.params.epochs"]),
        ("ss_lr", "params", Some(json!({"learning_rate": -1})), &["task_config.params.learning_rate"]),
        ("ss_lr", "params", Some(json!({"sig_type": "t2"})), &["task_config.params.sig_type", "t2"]),
        ("ss_lr", "label_party", Some(json!("carol")), &["task_config.label_party", "carol"]),
        ("ss_lr", "features", Some(json!(["y"])), &["task_config.features", "label"]),
        ("ss_lr", "label", None, &["missing field `label`"]),
        ("ss_lr", "prediction_receiver", Some(json!("dave")), &["task_config.prediction_receiver"]),
        ("ss_xgb", "params", Some(json!({"max_depth": 0})), &["task_config.params.max_depth"]),
        ("ss_xgb", "params", Some(json!({"objective": "poisson"})), &["task_config.params.objective", "poisson"]),
        ("ss_xgb", "params", Some(json!({"subsample": 1.5})), &["task_config.params.subsample"]),
        ("ss_xgb", "params", Some(json!({"gamma": -1.0})), &["task_config.params.gamma"]),
        ("ss_xgb", "params", Some(json!({"min_child_weight": 1e6})), &["task_config.params.min_child_weight", "1000"]),
        ("ss_xgb", "model_output", Some(json!({"alice": "/m"})), &["task_config.model_output", "bob"]),
        ("standard_scaler", "with_mean", Some(json!(1)), &["task_config.with_mean"]),
        ("standard_scaler", "columns", Some(json!([])), &["task_config.columns"]),
        ("standard_scaler", "output_data", Some(json!({"alice": "/a.csv"})), &["task_config.output_data", "bob"]),
        ("minmax_scaler", "feature_range", Some(json!([1, 0])), &["task_config.feature_range"]),
        ("minmax_scaler", "feature_range", Some(json!([0, 1, 2])), &["task_config.feature_range"]),
        ("label_encoder", "columns", None, &["missing field `columns`"]),
        ("label_encoder", "columns", Some(json!(["a", "a"])), &["task_config.columns", "twice"]),
        ("onehot_encoder", "drop", Some(json!("last")), &["task_config.drop", "last"]),
        ("quantile_binning", "bin_num", Some(json!(1)), &["task_config.bin_num"]),
        ("quantile_binning", "bin_num", None, &["missing field `bin_num`"]),
        ("equal_width_binning", "bin_num", Some(json!("ten")), &["task_config.bin_num", "invalid type"]),
        ("fillna", "method", Some(json!("avg")), &["task_config.method", "avg"]),
        ("fillna", "method", Some(json!("constant")), &["task_config.value", "constant"]),
        ("fillna", "method", None, &["missing field `method`"]),
        ("table_statistics", "output_report", None, &["missing field `output_report`"]),
        ("pearson_correlation", "output_report", Some(json!("")), &["task_config.output_report"]),
        ("vif", "columns", None, &["missing field `columns`"]),
        ("biclassification_eval", "bucket_size", Some(json!(0)), &["task_config.bucket_size"]),
        ("biclassification_eval", "label_column", None, &["missing field `label_column`"]),
        (
            "regression_eval",
            "prediction_data",
            Some(json!({"alice": "/a.csv", "bob": "/b.csv"})),
            &["task_config.prediction_data", "exactly one"],
        ),
    ];
    for (t, path, value, needles) in cases {
        assert_failure(&with(t, path, value.clone()), &[], "ValueError", needles);
    }
}

#[test]
fn envelope_errors_name_the_field() {
    let ok = base(valid("standard_scaler"));
    let mutate = |f: &dyn Fn(&mut Value)| {
        let mut r = ok.clone();
        f(&mut r);
        r.to_string()
    };
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            mutate(&|r| {
                r.as_object_mut().unwrap().remove("task_id");
            }),
            vec!["missing field `task_id`"],
        ),
        (mutate(&|r| r["execution_id"] = json!("")), vec!["execution_id"]),
        (mutate(&|r| r["priority"] = json!(1)), vec!["unknown field `priority`"]),
        (
            mutate(&|r| {
                r["task_config"].as_object_mut().unwrap().remove("task_type");
            }),
            vec!["task_config", "task_type"],
        ),
        (
            mutate(&|r| r["task_config"]["task_type"] = json!("psi3")),
            vec!["task_config.task_type", "psi3", "standard_scaler"],
        ),
        (mutate(&|r| r["task_config"] = json!([1])), vec!["task_config", "object"]),
        (
            mutate(&|r| {
                r["sf_init_config"].as_object_mut().unwrap().remove("address");
            }),
            vec!["sf_init_config.address"],
        ),
        (mutate(&|r| r["sf_init_config"]["address"] = json!("10.0.0.1:1")), vec!["sf_init_config.address", "local"]),
        (mutate(&|r| r["sf_init_config"]["parties"] = json!([])), vec!["sf_init_config.parties"]),
        (
            mutate(&|r| r["sf_init_config"]["parties"] = json!(["alice", "Bob!"])),
            vec!["sf_init_config.parties[1]", "Bob!"],
        ),
        (mutate(&|r| r["sf_init_config"]["self_party"] = json!("carol")), vec!["sf_init_config.self_party", "carol"]),
        (
            mutate(&|r| {
                r["sf_init_config"]["parties"] = json!({"alice": {"address": "nohost"}, "bob": {"address": "h:1"}})
            }),
            vec!["sf_init_config.parties.alice.address", "host:port"],
        ),
        (mutate(&|r| r["sf_init_config"]["parties"] = json!(7)), vec!["sf_init_config.parties"]),
        (
            mutate(&|r| r["spu_config"]["cluster_def"]["runtime_config"]["field"] = json!("FM32")),
            vec!["spu_config.cluster_def.runtime_config.field", "FM32"],
        ),
        (
            mutate(&|r| r["spu_config"]["cluster_def"]["nodes"][1]["party"] = json!("carol")),
            vec!["spu_config.cluster_def.nodes[1].party"],
        ),
    ];
    for (req, needles) in cases {
        assert_failure(&req, &[], "ValueError", &needles);
    }
    assert_failure("{not json", &[], "ValueError", &["not valid JSON"]);
    assert_failure("[1, 2]", &[], "ValueError", &["JSON object"]);
}

#[test]
fn spu_tasks_need_as_many_nodes_as_the_protocol_has_parties() {
    let mut r = base(valid("ss_lr"));
    r["spu_config"]["cluster_def"]["runtime_config"]["protocol"] = json!("ABY3");
    assert_failure(&r.to_string(), &[], "ValueError", &["spu_config.cluster_def.nodes", "ABY3", "exactly 3"]);
    // SEMI2K with a third node: two-party protocols take exactly two.
    let mut three = r.clone();
    three["sf_init_config"]["parties"] = json!(["alice", "bob", "carol"]);
    three["spu_config"]["cluster_def"]["runtime_config"]["protocol"] = json!("SEMI2K");
    three["spu_config"]["cluster_def"]["nodes"]
        .as_array_mut()
        .unwrap()
        .push(json!({"party": "carol", "address": "c:1"}));
    assert_failure(&three.to_string(), &[], "ValueError", &["spu_config.cluster_def.nodes", "SEMI2K", "exactly 2"]);
    r["spu_config"]["cluster_def"]["runtime_config"]["beaver"] = json!("trusted_first_party");
    r["spu_config"]["cluster_def"]["runtime_config"]["protocol"] = json!("CHEETAH");
    assert_failure(&r.to_string(), &[], "ValueError", &["spu_config.cluster_def.runtime_config.beaver", "CHEETAH"]);
    r.as_object_mut().unwrap().remove("spu_config");
    assert_failure(&r.to_string(), &[], "ValueError", &["spu_config", "ss_lr"]);
}

#[test]
fn mpc_task_types_name_the_column_to_fill() {
    // The MPC task types run; on the raw penguin tables (which have gaps) they name the column to fill.
    for t in ["ss_lr", "ss_xgb", "pearson_correlation", "vif"] {
        assert_failure(&base(valid(t)).to_string(), &[], "ValueError", &["missing value", "fillna", "alice"]);
    }
}

#[test]
fn data_errors_name_party_file_and_column() {
    let missing = with("standard_scaler", "input_data.bob", Some(json!("examples/data/nope.csv")));
    assert_failure(&missing, &[], "FileNotFoundError", &["bob", "nope.csv", "task_config.input_data.bob"]);
    let outside = with("standard_scaler", "input_data.bob", Some(json!("/etc/passwd")));
    assert_failure(&outside, &["--data-root", "."], "PermissionError", &["bob", "/etc/passwd", "data roots"]);
    let dotdot = with("standard_scaler", "input_data.alice", Some(json!("examples/../../Cargo.toml")));
    assert_failure(&dotdot, &["--data-root", "."], "PermissionError", &["alice", "Cargo.toml"]);
    let unknown = with("standard_scaler", "columns", Some(json!(["bill_length_mm", "wingspan"])));
    assert_failure(&unknown, &[], "ValueError", &["task_config.columns", "wingspan"]);
    let text = with("standard_scaler", "columns", Some(json!(["island"])));
    assert_failure(&text, &[], "ValueError", &["task_config.columns", "island", "alice", "not numeric"]);
    let shared = with("standard_scaler", "columns", Some(json!(["uid"])));
    assert_failure(&shared, &[], "ValueError", &["uid", "several parties"]);
    let label = with("biclassification_eval", "label_column", Some(json!("nope")));
    assert_failure(&label, &[], "ValueError", &["task_config.label_column", "nope"]);
    let (code, json, _) = run_cli("{}", &[]);
    assert_eq!((code, json["error"]["type"].as_str()), (1, Some("ValueError")));
}

#[test]
fn missing_request_file_is_file_not_found() {
    let out =
        Command::new(env!("CARGO_BIN_EXE_party-runtime")).args(["run", "/nonexistent/req.json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["error"]["type"], "FileNotFoundError");
    assert!(json["error"]["message"].as_str().unwrap().contains("/nonexistent/req.json"));
}

#[test]
fn the_readme_example_runs_and_writes_its_output_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("result.json");
    let request = std::fs::read_to_string(repo_root().join("examples/requests/standard_scaler.json")).unwrap();
    let request = request.replace("examples/out/", &format!("{}/", dir.path().display()));
    let (code, json, _) = run_cli(&request, &["--output", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{json:#}");
    assert_eq!(json["status"], "success");
    let metrics = &json["performance_metrics"];
    for k in ["total_execution_time", "cluster_init_time", "algorithm_exec_time", "algorithm_exec_percentage"] {
        assert!(metrics[k].is_number(), "{k}");
    }
    assert!(metrics["bytes_sent"].as_u64().unwrap() > 0, "the parties exchanged headers and fitted values");
    assert_eq!(json["task_metadata"]["devices_used"], json!(["alice", "bob"]));
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap();
    assert_eq!(saved, json);
    assert!(dir.path().join("alice_scaled.csv").is_file() && dir.path().join("bob_scaled.csv").is_file());
}

/// `--log-format json` (or `SF_LOG_FORMAT=json`): every log line on stderr is one JSON object.
#[test]
fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("request.json");
    std::fs::write(&file, "{not json").unwrap();
    for (args, env) in [(vec!["--log-format", "json"], None), (vec![], Some("json"))] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_party-runtime"));
        cmd.arg("run").arg(&file).args(&args).env("RUST_LOG", "party_runtime=info");
        match env {
            Some(v) => cmd.env("SF_LOG_FORMAT", v),
            None => cmd.env_remove("SF_LOG_FORMAT"),
        };
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<Value> = stderr
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        let paths = lines.iter().find(|l| l["fields"]["message"] == "code paths").expect("the start-up line");
        assert_eq!(paths["level"], "INFO", "{paths}");
        assert!(paths["fields"]["cpu"].is_string() && paths["timestamp"].is_string(), "{paths}");
    }
}
