//! SS-LR end to end through `run_request` (local mode, both parties in this process) against a plaintext
//! SGD with the same schedule and sigmoid, on a synthetic vertical dataset; plus the documented errors.
#![allow(clippy::unwrap_used)]

mod common;

use common::{auc, plain_sgd, r2, request, run, synthetic};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logistic_t1_matches_plaintext_sgd_on_fm64() {
    let dir = tempfile::tempdir().unwrap();
    // Batches of 1024 rows and 10 + 11 columns: the shape where the RLWE linear layers cost less than OT.
    let data = synthetic(5000, 1000, (10, 10), true, 11);
    let params = json!({"epochs": 3, "learning_rate": 0.5, "batch_size": 1024, "eps": 0.0});
    let out = run(&dir, &data, "FM64", params.clone(), false).await;
    assert_eq!(out["status"], "success", "{out:#}");
    let result = &out["result"];
    assert_eq!(result["model_saved"], true);
    assert_eq!(result["training_metrics"]["epochs"], 3);
    assert_eq!(result["training_metrics"]["linear_products"], "rlwe", "the linear layers at this shape");
    // The device's set-up (base OTs) is timed apart from the algorithm.
    let metrics = &out["performance_metrics"];
    assert!(metrics["device_init_time"].as_f64().unwrap() > 0.0, "{metrics:#}");
    assert!(metrics["algorithm_exec_time"].as_f64().unwrap() > metrics["device_init_time"].as_f64().unwrap());
    let (w, b) = common::model_weights(&dir);
    let (pw, pb, loss) = plain_sgd(&data, 3, 0.5, 1024, "t1", true, 0.0, "none");
    for (s, p) in w.iter().zip(&pw) {
        assert!((s - p).abs() < 5e-3, "weights {w:?} vs plaintext {pw:?}");
    }
    assert!((b - pb).abs() < 5e-3, "intercept {b} vs {pb}");
    let secure_loss = result["training_metrics"]["final_loss"].as_f64().unwrap();
    assert!((secure_loss - loss).abs() < 2e-3, "loss {secure_loss} vs {loss}");
    let preds = common::predictions(&dir, "pred_prob");
    let plain: Vec<f64> = data.test_logits(&pw, pb);
    let (a_secure, a_plain) = (auc(&preds, &data.y_test), auc(&plain, &data.y_test));
    assert!((a_secure - a_plain).abs() < 0.002, "AUC {a_secure} vs plaintext {a_plain}");
    assert!(a_plain > 0.75, "the synthetic task is learnable ({a_plain})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linear_regression_matches_plaintext_r2_on_both_rings() {
    let data = synthetic(3000, 800, (3, 2), false, 5);
    let (pw, pb, loss) = plain_sgd(&data, 2, 0.05, 64, "t1", false, 0.1, "l2");
    for field in ["FM128", "FM64"] {
        let dir = tempfile::tempdir().unwrap();
        let params = json!({"epochs": 2, "learning_rate": 0.05, "batch_size": 64, "reg_type": "linear",
                            "penalty": "l2", "l2_norm": 0.1, "eps": 0.0});
        let out = run(&dir, &data, field, params, false).await;
        assert_eq!(out["status"], "success", "{out:#}");
        // Batches of 64 take OT; the final loss's `X w` over all 3000 rows takes RLWE on FM64, cheaper at that
        // shape. FM128's lattice (six primes at N = 16384) costs more per ciphertext: OT stays cheaper there.
        let methods = if field == "FM64" { "ot+rlwe" } else { "ot" };
        assert_eq!(out["result"]["training_metrics"]["linear_products"], methods, "{field}");
        let secure_loss = out["result"]["training_metrics"]["final_loss"].as_f64().unwrap();
        assert!((secure_loss - loss).abs() < 1e-3 * loss.max(1.0), "{field}: mse {secure_loss} vs {loss}");
        let preds = common::predictions(&dir, "pred");
        let plain = data.test_logits(&pw, pb);
        let (r_secure, r_plain) = (r2(&preds, &data.y_test), r2(&plain, &data.y_test));
        assert!((r_secure - r_plain).abs() < 0.002, "{field}: R2 {r_secure} vs plaintext {r_plain}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_sigmoids_and_the_dealer_mode_train() {
    for (sig, field, dealer) in
        [("t3", "FM128", false), ("df", "FM64", false), ("mm1", "FM64", false), ("t1", "FM64", true)]
    {
        let dir = tempfile::tempdir().unwrap();
        let data = synthetic(600, 300, (2, 2), true, 3);
        let params = json!({"epochs": 2, "learning_rate": 0.1, "batch_size": 100, "sig_type": sig, "eps": 0.0});
        let out = run(&dir, &data, field, params, dealer).await;
        assert_eq!(out["status"], "success", "{sig} {field}: {out:#}");
        let linear = if dealer { "dealer" } else { "ot" };
        assert_eq!(out["result"]["training_metrics"]["linear_products"], linear);
        // A result computed with the dealt correlations says it is insecure; a secure one carries no such field.
        assert_eq!(out["result"]["insecure"].as_bool(), dealer.then_some(true), "{sig} {field}");
        let (pw, pb, _) = plain_sgd(&data, 2, 0.1, 100, sig, true, 0.0, "none");
        let (w, b) = common::model_weights(&dir);
        for (s, p) in w.iter().chain([&b]).zip(pw.iter().chain([&pb])) {
            assert!((s - p).abs() < 1e-2, "{sig}: weights {w:?} {b} vs plaintext {pw:?} {pb}");
        }
    }
}

/// SPU's linear sigmoid `mm1` is not clipped: after a large first step (large features, a large learning rate)
/// the second batch's residuals `p - y` pass 2 in magnitude, beyond what the backward product may assume of a
/// clipped sigmoid's, and training still follows plaintext SGD.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mm1_with_large_logits_matches_plaintext_sgd() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = synthetic(600, 300, (2, 2), true, 5);
    let all =
        data.xa.iter_mut().chain(data.xb.iter_mut()).chain(data.xa_test.iter_mut()).chain(data.xb_test.iter_mut());
    all.for_each(|v| *v *= 10.0);
    let (lr, batch) = (0.3, 300);
    let params = json!({"epochs": 1, "learning_rate": lr, "batch_size": batch, "sig_type": "mm1", "eps": 0.0});
    let out = run(&dir, &data, "FM64", params, false).await;
    assert_eq!(out["status"], "success", "{out:#}");
    // The weights after the first batch, and the second batch's residuals under them.
    let first = common::Dataset {
        da: data.da,
        db: data.db,
        xa: data.xa[..batch * data.da].to_vec(),
        xb: data.xb[..batch * data.db].to_vec(),
        y: data.y[..batch].to_vec(),
        xa_test: data.xa[batch * data.da..].to_vec(),
        xb_test: data.xb[batch * data.db..].to_vec(),
        y_test: data.y[batch..].to_vec(),
    };
    let (w1, b1, _) = plain_sgd(&first, 1, lr, batch, "mm1", true, 0.0, "none");
    let residuals =
        first.test_logits(&w1, b1).iter().zip(&first.y_test).map(|(z, y)| 0.5 + z / 8.0 - y).collect::<Vec<_>>();
    let large = residuals.iter().filter(|e| e.abs() > 2.0).count();
    assert!(large > 10, "{large} rows with |p - y| > 2: the case is exercised");
    let (pw, pb, _) = plain_sgd(&data, 1, lr, batch, "mm1", true, 0.0, "none");
    let (w, b) = common::model_weights(&dir);
    for (s, p) in w.iter().chain([&b]).zip(pw.iter().chain([&pb])) {
        assert!((s - p).abs() < 1e-2 * p.abs().max(1.0), "weights {w:?} {b} vs plaintext {pw:?} {pb}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_stop_opens_one_bit_per_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let data = synthetic(400, 100, (2, 2), true, 9);
    let params = json!({"epochs": 50, "learning_rate": 0.1, "batch_size": 400, "eps": 0.01});
    let out = run(&dir, &data, "FM64", params, false).await;
    let epochs = out["result"]["training_metrics"]["epochs"].as_u64().unwrap();
    // The plaintext run stops at the first epoch whose largest weight change is below eps.
    let mut expected = 50;
    let mut prev = plain_sgd(&data, 1, 0.1, 400, "t1", true, 0.0, "none");
    for e in 2..=50 {
        let next = plain_sgd(&data, e, 0.1, 400, "t1", true, 0.0, "none");
        let moved = next.0.iter().chain([&next.1]).zip(prev.0.iter().chain([&prev.1])).map(|(a, b)| (a - b).abs());
        if moved.fold(0.0, f64::max) < 0.01 {
            expected = e;
            break;
        }
        prev = next;
    }
    assert!(expected < 50, "the reference converges");
    assert!((epochs as i64 - expected as i64).abs() <= 1, "stopped after {epochs}, plaintext after {expected}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misaligned_rows_and_unsupported_protocols_are_value_errors() {
    let dir = tempfile::tempdir().unwrap();
    let data = synthetic(100, 10, (2, 2), true, 1);
    let mut req = request(&dir, &data, "FM64", json!({"epochs": 1}), false);
    // Bob loses a row.
    let bob = dir.path().join("bob_train.csv");
    let text = std::fs::read_to_string(&bob).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&bob, lines[..lines.len() - 1].join("\n") + "\n").unwrap();
    let out = common::run_json(&dir, &req).await;
    assert_eq!(out["status"], "failure");
    assert_eq!(out["error"]["type"], "ValueError", "{out:#}");
    let msg = out["error"]["message"].as_str().unwrap();
    assert!(msg.contains("row counts differ") && msg.contains("train_data"), "{msg}");
    req["spu_config"]["cluster_def"]["runtime_config"]["protocol"] = json!("ABY3");
    let out = common::run_json(&dir, &req).await;
    assert_eq!(out["error"]["type"], "ValueError");
    let msg = out["error"]["message"].as_str().unwrap();
    assert!(msg.contains("cluster_def.nodes") && msg.contains("exactly 3"), "{msg}");
    // CHEETAH has no dealer: asking for one names the field.
    req["spu_config"]["cluster_def"]["runtime_config"]["protocol"] = json!("CHEETAH");
    req["spu_config"]["cluster_def"]["runtime_config"]["beaver"] = json!("trusted_first_party");
    let out = common::run_json(&dir, &req).await;
    assert_eq!(out["error"]["type"], "ValueError");
    assert!(out["error"]["message"].as_str().unwrap().contains("runtime_config.beaver"), "{out:#}");
    // A step size lr / b past what the backward product's encoding carries (2^(f-1)) is refused, not overflowed.
    let data = synthetic(100, 10, (2, 2), true, 2);
    let req = request(&dir, &data, "FM64", json!({"epochs": 1, "learning_rate": 1e6, "batch_size": 1}), false);
    let out = common::run_json(&dir, &req).await;
    assert_eq!(out["error"]["type"], "ValueError", "{out:#}");
    let msg = out["error"]["message"].as_str().unwrap();
    assert!(msg.contains("learning_rate / batch_size") && msg.contains("2^17"), "{msg}");
    // Only the short last batch (one row of 100 in batches of 99) takes the step past it: refused all the same.
    let req = request(&dir, &data, "FM64", json!({"epochs": 1, "learning_rate": 2e5, "batch_size": 99}), false);
    let out = common::run_json(&dir, &req).await;
    assert_eq!(out["error"]["type"], "ValueError", "{out:#}");
    assert!(out["error"]["message"].as_str().unwrap().contains("= 200000"), "{out:#}");
}

/// `protocol: CHEETAH` runs the secure backend: in local mode and as two processes it trains the model SEMI2K
/// trains, within fixed-point error (the shares' randomness differs from run to run), with the same loss.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cheetah_trains_the_semi2k_model_in_local_and_cluster_mode() {
    let data = synthetic(600, 200, (2, 2), true, 4);
    let params = json!({"epochs": 2, "learning_rate": 0.1, "batch_size": 100, "eps": 0.0});
    let dir = tempfile::tempdir().unwrap();
    let semi2k = run(&dir, &data, "FM64", params.clone(), false).await;
    assert_eq!(semi2k["status"], "success", "{semi2k:#}");
    let (w, b) = common::model_weights(&dir);
    let loss = semi2k["result"]["training_metrics"]["final_loss"].as_f64().unwrap();
    let close = |dir: &tempfile::TempDir, out: &serde_json::Value, mode: &str| {
        let (wc, bc) = common::model_weights(dir);
        for (s, c) in w.iter().chain([&b]).zip(wc.iter().chain([&bc])) {
            assert!((s - c).abs() < 1e-3, "{mode}: CHEETAH {wc:?} {bc} vs SEMI2K {w:?} {b}");
        }
        let lc = out["result"]["training_metrics"]["final_loss"].as_f64().unwrap();
        assert!((lc - loss).abs() < 1e-3, "{mode}: loss {lc} vs {loss}");
    };
    let dir = tempfile::tempdir().unwrap();
    let mut req = request(&dir, &data, "FM64", params, false);
    req["spu_config"]["cluster_def"]["runtime_config"]["protocol"] = json!("CHEETAH");
    let out = common::run_json(&dir, &req).await;
    assert_eq!(out["status"], "success", "{out:#}");
    close(&dir, &out, "local");
    std::fs::remove_file(dir.path().join("alice_model.json")).unwrap();
    let path = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || common::run_cluster(&path, &req)).await.unwrap();
    let [alice, bob] = &out[..] else { panic!("two results") };
    assert_eq!(alice["result"]["training_metrics"]["final_loss"], bob["result"]["training_metrics"]["final_loss"]);
    close(&dir, alice, "cluster");
}

/// ABY3 with a third node that holds no data: the same accuracy bar as SEMI2K against plaintext SGD, on both
/// rings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aby3_with_a_dataless_third_node_matches_plaintext_sgd() {
    let data = synthetic(3000, 1000, (4, 3), true, 21);
    let params = json!({"epochs": 2, "learning_rate": 0.3, "batch_size": 256, "eps": 0.0});
    let (pw, pb, loss) = plain_sgd(&data, 2, 0.3, 256, "t1", true, 0.0, "none");
    for field in ["FM64", "FM128"] {
        let dir = tempfile::tempdir().unwrap();
        let req = common::on_aby3(&dir, request(&dir, &data, field, params.clone(), false));
        let out = common::run_json(&dir, &req).await;
        assert_eq!(out["status"], "success", "{field}: {out:#}");
        assert_eq!(out["result"]["training_metrics"]["linear_products"], "replicated");
        let (w, b) = common::model_weights(&dir);
        for (s, p) in w.iter().chain([&b]).zip(pw.iter().chain([&pb])) {
            assert!((s - p).abs() < 5e-3, "{field}: weights {w:?} {b} vs plaintext {pw:?} {pb}");
        }
        let secure_loss = out["result"]["training_metrics"]["final_loss"].as_f64().unwrap();
        assert!((secure_loss - loss).abs() < 2e-3, "{field}: loss {secure_loss} vs {loss}");
        let preds = common::predictions(&dir, "pred_prob");
        let (a_secure, a_plain) = (auc(&preds, &data.y_test), auc(&data.test_logits(&pw, pb), &data.y_test));
        assert!((a_secure - a_plain).abs() < 0.002, "{field}: AUC {a_secure} vs plaintext {a_plain}");
    }
}

/// `examples/data/{alice,bob}_lr_{train,test}.csv`: the penguin tables split vertically (alice: bill length and
/// depth and the label; bob: flipper length, body mass, year), complete rows, standardized.
fn penguins() -> common::Dataset {
    let root = common::manifest_dir().join("../examples/data");
    let read = |name: &str| -> Vec<Vec<f64>> {
        let text = std::fs::read_to_string(root.join(name)).unwrap();
        text.lines().skip(1).map(|l| l.split(',').skip(1).map(|v| v.parse().unwrap()).collect()).collect()
    };
    let split = |rows: Vec<Vec<f64>>| -> (Vec<f64>, Vec<f64>) {
        (rows.iter().map(|r| r[0]).collect(), rows.iter().flat_map(|r| r[1..].to_vec()).collect())
    };
    let (y, xa) = split(read("alice_lr_train.csv"));
    let (y_test, xa_test) = split(read("alice_lr_test.csv"));
    let xb: Vec<f64> = read("bob_lr_train.csv").concat();
    let xb_test: Vec<f64> = read("bob_lr_test.csv").concat();
    common::Dataset { da: 2, db: 3, xa, xb, y, xa_test, xb_test, y_test }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_table_split_vertically_matches_plaintext_sgd() {
    let dir = tempfile::tempdir().unwrap();
    let data = penguins();
    let params = json!({"epochs": 10, "learning_rate": 0.1, "batch_size": 32, "penalty": "l2", "l2_norm": 0.1,
                        "eps": 0.0});
    for field in ["FM64", "FM128"] {
        let out = run(&dir, &data, field, params.clone(), false).await;
        assert_eq!(out["status"], "success", "{out:#}");
        let (pw, pb, _) = plain_sgd(&data, 10, 0.1, 32, "t1", true, 0.1, "l2");
        let preds = common::predictions(&dir, "pred_prob");
        let (a_secure, a_plain) = (auc(&preds, &data.y_test), auc(&data.test_logits(&pw, pb), &data.y_test));
        assert!((a_secure - a_plain).abs() < 0.002, "{field}: AUC {a_secure} vs plaintext {a_plain}");
        assert!(a_plain > 0.9, "penguins are separable ({a_plain})");
    }
}

/// Writes the benchmark's synthetic dataset (100,000 x 20 and its 20,000-row holdout, the same seed as
/// `benches/mpc.rs`) to `$SF_DUMP_DIR` for the scikit-learn baseline (`benches/sklearn_lr.py --synthetic DIR`).
#[test]
#[ignore = "writes files for an external baseline"]
fn dump_benchmark_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let data = synthetic(100_000, 20_000, (10, 10), true, 2024);
    request(&dir, &data, "FM64", json!({}), false);
    let to = std::path::PathBuf::from(std::env::var("SF_DUMP_DIR").unwrap());
    std::fs::create_dir_all(&to).unwrap();
    for f in ["alice_train.csv", "bob_train.csv", "alice_test.csv", "bob_test.csv"] {
        std::fs::copy(dir.path().join(f), to.join(f)).unwrap();
    }
}

/// ABY3 as three processes over mutual TLS (every pair linked, each party's certificate from one CA) trains
/// local mode's model.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aby3_runs_as_three_processes_over_mutual_tls() {
    let data = synthetic(600, 200, (2, 2), true, 4);
    let params = json!({"epochs": 2, "learning_rate": 0.1, "batch_size": 100, "eps": 0.0});
    let dir = tempfile::tempdir().unwrap();
    let req = common::on_aby3(&dir, request(&dir, &data, "FM64", params, false));
    let local = common::run_json(&dir, &req).await;
    assert_eq!(local["status"], "success", "{local:#}");
    let (w, b) = common::model_weights(&dir);
    let flags = common::pki(dir.path(), "aby3", &["alice", "bob", "carol"]);
    let path = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || common::run_cluster_with(&path, &req, &flags)).await.unwrap();
    assert_eq!(out.len(), 3);
    for o in &out {
        assert_eq!(o["result"]["training_metrics"]["final_loss"], out[0]["result"]["training_metrics"]["final_loss"]);
    }
    let (wc, bc) = common::model_weights(&dir);
    for (l, c) in w.iter().chain([&b]).zip(wc.iter().chain([&bc])) {
        assert!((l - c).abs() < 1e-3, "cluster {wc:?} {bc} vs local {w:?} {b}");
    }
}

/// ABY3 as three processes with the third node killed mid-training: the other two fail well within the link
/// timeout, and each error names a party that failed.
#[test]
fn aby3_with_a_node_killed_mid_training_fails_the_others() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let data = synthetic(20_000, 100, (4, 3), true, 22);
    let params = json!({"epochs": 20, "learning_rate": 0.3, "batch_size": 64, "eps": 0.0});
    let req = common::on_aby3(&dir, request(&dir, &data, "FM64", params, false));
    let mut children: Vec<(String, std::process::Child)> = common::party_requests(&req)
        .into_iter()
        .map(|(name, r)| (name.clone(), common::spawn(dir.path(), &name, &r, &["--link-timeout", "30"])))
        .collect();
    let (_, carol) = children.last_mut().unwrap();
    let stderr = BufReader::new(carol.stderr.take().unwrap());
    let started = stderr.lines().any(|l| l.unwrap().contains("epoch 1"));
    assert!(started, "carol never reached the second epoch");
    carol.kill().unwrap();
    let killed = std::time::Instant::now();
    for (name, child) in children.into_iter().take(2) {
        let out = child.wait_with_output().unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(out.status.code(), Some(1), "{name}: {json:#}");
        let msg = json["error"]["message"].as_str().unwrap();
        assert!(msg.contains("carol"), "{name}: {msg}");
    }
    assert!(killed.elapsed() < std::time::Duration::from_secs(25), "took {:?}", killed.elapsed());
}
