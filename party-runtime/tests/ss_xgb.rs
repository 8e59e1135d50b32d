//! `ss_xgb` end to end: the example request against plaintext xgboost, and the same task in local and in
//! cluster mode (two processes over the gRPC link), for both objectives.

mod common;

use serde_json::{Value, json};

/// The request for `data` with ss_xgb's parameters.
fn xgb_request(dir: &tempfile::TempDir, data: &common::Dataset, params: Value) -> Value {
    let mut req = common::request(dir, data, "FM64", json!({}), false);
    req["task_config"]["task_type"] = json!("ss_xgb");
    req["task_config"]["params"] = params;
    req
}

/// `examples/requests/ss_xgb.json` (the penguin tables): plaintext xgboost with the same parameters
/// (`party-runtime/benches/xgboost_reference.py ... y 5 3 0.3 0.1 0.1`) separates the test rows, AUC 1.0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_matches_xgboosts_holdout_auc() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(common::manifest_dir().join("../examples/requests/ss_xgb.json")).unwrap();
    let mut req: Value = serde_json::from_str(&text).unwrap();
    let root = common::manifest_dir().join("..");
    for side in ["train_data", "test_data"] {
        for party in ["alice", "bob"] {
            let p = req["task_config"][side][party].as_str().unwrap().to_string();
            req["task_config"][side][party] = json!(root.join(p).display().to_string());
        }
    }
    let out = |name: &str| json!(dir.path().join(name).display().to_string());
    req["task_config"]["model_output"] = json!({"alice": out("alice_model.json"), "bob": out("bob_model.json")});
    req["task_config"]["prediction_output"] = json!({"alice": out("alice_pred.csv")});
    let result = common::run_json(&dir, &req).await;
    assert_eq!(result["status"], "success", "{result:#}");
    assert_eq!(result["result"]["training_metrics"]["num_trees"], 5);
    let (p, y) = (common::predictions(&dir, "pred_prob"), common::predictions(&dir, "y"));
    let auc = common::auc(&p, &y);
    assert!(auc >= 0.99, "holdout AUC {auc} against xgboost's 1.0");
    // Each model file holds its own thresholds only, and a share of every leaf.
    let model: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("bob_model.json")).unwrap()).unwrap();
    for tree in model["trees"].as_array().unwrap() {
        assert_eq!(tree["leaf_shares"].as_array().unwrap().len(), 8);
        for split in tree["splits"].as_array().unwrap() {
            assert_eq!(!split["threshold"].is_null(), split["owner"] == "bob", "{split}");
        }
    }
}

/// Local mode and two processes train the same ensemble (to within fixed-point error: the shares' randomness
/// differs between runs), for `logistic` and `linear`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_mode_trains_the_local_model() {
    for (logistic, objective) in [(true, "logistic"), (false, "linear")] {
        let data = common::synthetic(400, 200, (2, 2), logistic, 5);
        let params = json!({"num_boost_round": 3, "max_depth": 3, "learning_rate": 0.3, "objective": objective,
                            "sketch_eps": 0.2});
        let column = if logistic { "pred_prob" } else { "pred" };
        let dir = tempfile::tempdir().unwrap();
        let req = xgb_request(&dir, &data, params);
        let local = common::run_json(&dir, &req).await;
        assert_eq!(local["status"], "success", "{local:#}");
        let local_pred = common::predictions(&dir, column);
        std::fs::remove_file(dir.path().join("alice_pred.csv")).unwrap();
        let path = dir.path().to_path_buf();
        let out = tokio::task::spawn_blocking(move || common::run_cluster(&path, &req)).await.unwrap();
        let [alice, bob] = &out[..] else { panic!("two results") };
        assert_eq!(alice["status"], "success", "{alice:#}");
        assert_eq!(bob["result"]["training_metrics"]["num_trees"], 3);
        let cluster_pred = common::predictions(&dir, column);
        let y = common::predictions(&dir, "y");
        let (a, b) = if logistic {
            (common::auc(&local_pred, &y), common::auc(&cluster_pred, &y))
        } else {
            (common::r2(&local_pred, &y), common::r2(&cluster_pred, &y))
        };
        assert!(a > if logistic { 0.8 } else { 0.5 }, "{objective}: local {a}");
        assert!((a - b).abs() < 0.01, "{objective}: local {a} vs cluster {b}");
    }
}

/// ABY3 with a third node that holds no data, in local mode and as three processes (every pair linked): the
/// ensemble scores as the two-party one does, for both objectives, and the dataless node's model file holds
/// no threshold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aby3_trains_the_two_party_model_in_local_and_cluster_mode() {
    for (logistic, objective) in [(true, "logistic"), (false, "linear")] {
        let data = common::synthetic(400, 200, (2, 2), logistic, 6);
        let params = json!({"num_boost_round": 3, "max_depth": 3, "learning_rate": 0.3, "objective": objective,
                            "sketch_eps": 0.2});
        let column = if logistic { "pred_prob" } else { "pred" };
        let score = |dir: &tempfile::TempDir| {
            let (p, y) = (common::predictions(dir, column), common::predictions(dir, "y"));
            if logistic { common::auc(&p, &y) } else { common::r2(&p, &y) }
        };
        let dir = tempfile::tempdir().unwrap();
        let semi2k = common::run_json(&dir, &xgb_request(&dir, &data, params.clone())).await;
        assert_eq!(semi2k["status"], "success", "{semi2k:#}");
        assert_eq!(semi2k["result"]["training_metrics"]["histograms"], "punctured_seeds");
        let want = score(&dir);
        let dir = tempfile::tempdir().unwrap();
        let req = common::on_aby3(&dir, xgb_request(&dir, &data, params));
        let local = common::run_json(&dir, &req).await;
        assert_eq!(local["status"], "success", "{local:#}");
        assert_eq!(local["result"]["training_metrics"]["histograms"], "replicated");
        let local_score = score(&dir);
        let carol: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("carol_model.json")).unwrap()).unwrap();
        for tree in carol["trees"].as_array().unwrap() {
            assert_eq!(tree["leaf_shares_next"].as_array().unwrap().len(), 8);
            assert!(
                tree["splits"].as_array().unwrap().iter().all(|s| s["threshold"].is_null() && s["owner"] != "carol")
            );
        }
        std::fs::remove_file(dir.path().join("alice_pred.csv")).unwrap();
        let path = dir.path().to_path_buf();
        let out = tokio::task::spawn_blocking(move || common::run_cluster(&path, &req)).await.unwrap();
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|o| o["result"]["training_metrics"]["num_trees"] == 3), "{out:#?}");
        let cluster_score = score(&dir);
        for (mode, got) in [("local", local_score), ("cluster", cluster_score)] {
            assert!((got - want).abs() < 0.01, "{objective} {mode}: ABY3 {got} vs SEMI2K {want}");
        }
    }
}
