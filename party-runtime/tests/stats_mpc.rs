//! `pearson_correlation` and `vif` end to end (local mode) against plaintext numpy / statsmodels-style values.

#![allow(clippy::unwrap_used, clippy::needless_range_loop)]
mod common;

use common::{Dataset, run_json, synthetic};
use serde_json::{Value, json};
use tempfile::TempDir;

fn write(dir: &TempDir, data: &Dataset, extra_bob: Option<Vec<f64>>) {
    let n = data.y.len();
    let mut a = (0..data.da).map(|j| format!("a{j}")).collect::<Vec<_>>().join(",") + "\n";
    let mut b = (0..data.db).map(|j| format!("b{j}")).collect::<Vec<_>>().join(",");
    if extra_bob.is_some() {
        b.push_str(",b_extra");
    }
    b.push('\n');
    for i in 0..n {
        let row: Vec<String> = data.xa[i * data.da..(i + 1) * data.da].iter().map(f64::to_string).collect();
        a.push_str(&(row.join(",") + "\n"));
        let mut row: Vec<String> = data.xb[i * data.db..(i + 1) * data.db].iter().map(f64::to_string).collect();
        if let Some(e) = &extra_bob {
            row.push(e[i].to_string());
        }
        b.push_str(&(row.join(",") + "\n"));
    }
    std::fs::write(dir.path().join("alice.csv"), a).unwrap();
    std::fs::write(dir.path().join("bob.csv"), b).unwrap();
}

fn request(dir: &TempDir, task: &str, field: &str, columns: Option<Vec<&str>>) -> Value {
    let p = |name: &str| dir.path().join(name).display().to_string();
    let mut task_config = json!({
        "task_type": task,
        "input_data": {"alice": p("alice.csv"), "bob": p("bob.csv")},
        "output_report": p("report.json")
    });
    if let Some(c) = columns {
        task_config["columns"] = json!(c);
    }
    json!({
        "task_id": "t", "subtask_id": "s", "execution_id": "e",
        "sf_init_config": {"parties": ["alice", "bob"], "address": "local"},
        "spu_config": {"cluster_def": {"nodes": [{"party": "alice", "address": "127.0.0.1:1"},
                                                 {"party": "bob", "address": "127.0.0.1:2"}],
                                       "runtime_config": {"protocol": "SEMI2K", "field": field}}},
        "task_config": task_config
    })
}

/// Columns in order a0.., b0.. as plain vectors.
fn columns(data: &Dataset) -> Vec<Vec<f64>> {
    let n = data.y.len();
    let mut out: Vec<Vec<f64>> = (0..data.da).map(|j| (0..n).map(|i| data.xa[i * data.da + j]).collect()).collect();
    out.extend((0..data.db).map(|j| (0..n).map(|i| data.xb[i * data.db + j]).collect::<Vec<_>>()));
    out
}

fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let cov: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
    let vy: f64 = y.iter().map(|b| (b - my).powi(2)).sum();
    cov / (vx * vy).sqrt()
}

/// statsmodels' variance_inflation_factor with a constant in the exog: 1 / (1 - R^2) of OLS of column j on
/// the others, by the normal equations.
fn vif(cols: &[Vec<f64>], j: usize) -> f64 {
    let n = cols[0].len();
    let mut design: Vec<Vec<f64>> = vec![vec![1.0; n]];
    design.extend(cols.iter().enumerate().filter(|(k, _)| *k != j).map(|(_, c)| c.clone()));
    let p = design.len();
    let mut a = vec![vec![0.0; p + 1]; p];
    for r in 0..p {
        for c in 0..p {
            a[r][c] = (0..n).map(|i| design[r][i] * design[c][i]).sum();
        }
        a[r][p] = (0..n).map(|i| design[r][i] * cols[j][i]).sum();
    }
    for c in 0..p {
        let piv = (c..p).max_by(|x, y| a[*x][c].abs().total_cmp(&a[*y][c].abs())).unwrap();
        a.swap(c, piv);
        for r in 0..p {
            if r != c {
                let k = a[r][c] / a[c][c];
                for cc in c..=p {
                    a[r][cc] -= k * a[c][cc];
                }
            }
        }
    }
    let beta: Vec<f64> = (0..p).map(|r| a[r][p] / a[r][r]).collect();
    let y = &cols[j];
    let mean = y.iter().sum::<f64>() / n as f64;
    let ss_res: f64 = (0..n).map(|i| (y[i] - (0..p).map(|r| beta[r] * design[r][i]).sum::<f64>()).powi(2)).sum();
    let ss_tot: f64 = y.iter().map(|v| (v - mean).powi(2)).sum();
    1.0 / (ss_res / ss_tot)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pearson_and_vif_match_plaintext_on_both_rings() {
    for field in ["FM64", "FM128"] {
        let dir = tempfile::tempdir().unwrap();
        let data = synthetic(3000, 1, (3, 2), true, 21);
        write(&dir, &data, None);
        let cols = columns(&data);
        let names = ["a0", "a1", "a2", "b0", "b1"];
        // Default columns: every numeric column one party holds.
        let out = run_json(&dir, &request(&dir, "pearson_correlation", field, None)).await;
        assert_eq!(out["status"], "success", "{out:#}");
        let m = &out["result"]["correlation_matrix"];
        let report: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
        assert_eq!(&report["correlation_matrix"], m);
        for (i, a) in names.iter().enumerate() {
            for (j, b) in names.iter().enumerate() {
                let (got, want) = (m[a][b].as_f64().unwrap(), pearson(&cols[i], &cols[j]));
                assert!((got - want).abs() < 1e-3, "{field} corr({a},{b}) = {got}, plaintext {want}");
                assert_eq!(m[a][b], m[b][a]);
            }
        }
        let out = run_json(&dir, &request(&dir, "vif", field, Some(names.to_vec()))).await;
        assert_eq!(out["status"], "success", "{out:#}");
        for (j, name) in names.iter().enumerate() {
            let (got, want) = (out["result"]["vif_values"][name].as_f64().unwrap(), vif(&cols, j));
            assert!((got - want).abs() < 1e-3 * want.max(1.0), "{field} vif({name}) = {got}, plaintext {want}");
        }
    }
}

/// `protocol: CHEETAH` gives SEMI2K's correlations and VIFs, in local mode and as two processes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cheetah_matches_semi2k_in_local_and_cluster_mode() {
    let dir = tempfile::tempdir().unwrap();
    let data = synthetic(800, 1, (2, 2), true, 8);
    write(&dir, &data, None);
    let names = vec!["a0", "a1", "b0", "b1"];
    for (task, key) in [("pearson_correlation", "correlation_matrix"), ("vif", "vif_values")] {
        let semi2k = request(&dir, task, "FM64", Some(names.clone()));
        let mut cheetah = semi2k.clone();
        cheetah["spu_config"]["cluster_def"]["runtime_config"]["protocol"] = json!("CHEETAH");
        let want = run_json(&dir, &semi2k).await;
        let local = run_json(&dir, &cheetah).await;
        let path = dir.path().to_path_buf();
        let out = tokio::task::spawn_blocking(move || common::run_cluster(&path, &cheetah)).await.unwrap();
        let cluster = &out[0];
        for (mode, out) in [("local", &local), ("cluster", cluster)] {
            assert_eq!(out["status"], "success", "{mode} {task}: {out:#}");
            let values = |v: &Value| -> Vec<f64> {
                let v = &v["result"][key];
                names
                    .iter()
                    .flat_map(|a| {
                        if v[a].is_object() {
                            names.iter().map(|b| v[a][b].as_f64().unwrap()).collect()
                        } else {
                            vec![v[a].as_f64().unwrap()]
                        }
                    })
                    .collect()
            };
            for (got, want) in values(out).iter().zip(values(&want)) {
                assert!((got - want).abs() < 1e-4 * want.abs().max(1.0), "{mode} {task}: {got} vs SEMI2K {want}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn constant_and_collinear_columns_are_value_errors() {
    let dir = tempfile::tempdir().unwrap();
    let data = synthetic(500, 1, (2, 2), true, 4);
    write(&dir, &data, Some(vec![3.0; 500]));
    let out = run_json(&dir, &request(&dir, "pearson_correlation", "FM64", Some(vec!["a0", "b_extra"]))).await;
    assert_eq!(out["error"]["type"], "ValueError", "{out:#}");
    assert!(out["error"]["message"].as_str().unwrap().contains("b_extra` is constant"));
    // b_extra = a0 + b0: the correlation matrix is singular.
    let extra: Vec<f64> = (0..500).map(|i| data.xa[i * 2] + data.xb[i * 2]).collect();
    write(&dir, &data, Some(extra));
    let out = run_json(&dir, &request(&dir, "vif", "FM64", Some(vec!["a0", "a1", "b0", "b_extra"]))).await;
    assert_eq!(out["error"]["type"], "ValueError", "{out:#}");
    assert!(out["error"]["message"].as_str().unwrap().contains("collinear"), "{out:#}");
}

/// ABY3: correlations and VIFs against plaintext with columns at all three nodes (three cross blocks) on both
/// rings, and with a third node that holds no data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aby3_matches_plaintext_with_three_holders_and_with_a_dataless_node() {
    let data = synthetic(2000, 1, (2, 2), true, 31);
    let cols = columns(&data);
    // Carol's column: correlated with a0 and b1, so the third pair's cross blocks matter.
    let c0: Vec<f64> =
        (0..data.y.len()).map(|i| cols[0][i] - 0.5 * cols[3][i] + ((i * 7919) % 101) as f64 / 50.0).collect();
    for (holders, field) in [(3, "FM64"), (3, "FM128"), (2, "FM64")] {
        let dir = tempfile::tempdir().unwrap();
        write(&dir, &data, None);
        let mut names = vec!["a0", "a1", "b0", "b1"];
        let mut want_cols = cols.clone();
        if holders == 3 {
            let text: Vec<String> = std::iter::once("c0".to_string()).chain(c0.iter().map(f64::to_string)).collect();
            std::fs::write(dir.path().join("carol.csv"), text.join("\n") + "\n").unwrap();
            names.push("c0");
            want_cols.push(c0.clone());
        }
        for task in ["pearson_correlation", "vif"] {
            let mut req = request(&dir, task, field, Some(names.clone()));
            req["sf_init_config"]["parties"] = json!(["alice", "bob", "carol"]);
            let cluster = &mut req["spu_config"]["cluster_def"];
            cluster["nodes"].as_array_mut().unwrap().push(json!({"party": "carol", "address": "127.0.0.1:3"}));
            cluster["runtime_config"]["protocol"] = json!("ABY3");
            if holders == 3 {
                req["task_config"]["input_data"]["carol"] = json!(dir.path().join("carol.csv").display().to_string());
            }
            let out = run_json(&dir, &req).await;
            assert_eq!(out["status"], "success", "{holders} holders {field} {task}: {out:#}");
            for (i, a) in names.iter().enumerate() {
                if task == "vif" {
                    let (got, want) = (out["result"]["vif_values"][a].as_f64().unwrap(), vif(&want_cols, i));
                    assert!((got - want).abs() < 1e-3 * want.max(1.0), "{holders} {field} vif({a}) = {got} vs {want}");
                    continue;
                }
                for (j, b) in names.iter().enumerate() {
                    let got = out["result"]["correlation_matrix"][a][b].as_f64().unwrap();
                    let want = pearson(&want_cols[i], &want_cols[j]);
                    assert!((got - want).abs() < 1e-3, "{holders} {field} corr({a},{b}) = {got}, plaintext {want}");
                }
            }
        }
    }
}
