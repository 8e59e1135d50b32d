//! Shared by the MPC job tests: synthetic vertical datasets, plaintext references (SGD with SecretFlow's
//! schedule and sigmoids, AUC, R2), and running requests in local mode or as cluster-mode processes.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use party_runtime::{RunOptions, run_request};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use serde_json::{Value, json};
use tempfile::TempDir;

/// A vertical dataset: alice holds `xa` and the label, bob `xb`; row-major.
pub struct Dataset {
    pub da: usize,
    pub db: usize,
    pub xa: Vec<f64>,
    pub xb: Vec<f64>,
    pub y: Vec<f64>,
    pub xa_test: Vec<f64>,
    pub xb_test: Vec<f64>,
    pub y_test: Vec<f64>,
}

impl Dataset {
    /// Row `i` of the training features, alice's then bob's.
    pub fn row(&self, i: usize) -> Vec<f64> {
        let mut r = self.xa[i * self.da..(i + 1) * self.da].to_vec();
        r.extend_from_slice(&self.xb[i * self.db..(i + 1) * self.db]);
        r
    }

    /// `X_test w + b`.
    pub fn test_logits(&self, w: &[f64], b: f64) -> Vec<f64> {
        (0..self.y_test.len())
            .map(|i| {
                let a = &self.xa_test[i * self.da..(i + 1) * self.da];
                let c = &self.xb_test[i * self.db..(i + 1) * self.db];
                a.iter().chain(c).zip(w).map(|(x, w)| x * w).sum::<f64>() + b
            })
            .collect()
    }
}

/// This package's directory: cargo's run-time variable (the checkout under test, even when the build was shared
/// with a checkout elsewhere), else the compile-time one.
pub fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), PathBuf::from)
}

pub fn normal(rng: &mut ChaCha20Rng) -> f64 {
    let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    let v = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    (-2.0 * (u.max(1e-300)).ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

/// Standard-normal features, correlated a little; a logistic (Bernoulli) or linear (noisy) label.
pub fn synthetic(n: usize, n_test: usize, (da, db): (usize, usize), logistic: bool, seed: u64) -> Dataset {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let d = da + db;
    let w: Vec<f64> = (0..d).map(|j| if j % 2 == 0 { 0.8 } else { -0.5 } * (1.0 + j as f64 / d as f64)).collect();
    let mut draw = |rows: usize| {
        let (mut xa, mut xb, mut y) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rows {
            let common = normal(&mut rng);
            let x: Vec<f64> = (0..d).map(|_| normal(&mut rng) + 0.3 * common).collect();
            let z: f64 = x.iter().zip(&w).map(|(x, w)| x * w).sum::<f64>() + 0.2;
            let label = if logistic {
                let p = 1.0 / (1.0 + (-z).exp());
                f64::from((rng.next_u64() as f64 / u64::MAX as f64) < p)
            } else {
                z + 0.5 * normal(&mut rng)
            };
            xa.extend_from_slice(&x[..da]);
            xb.extend_from_slice(&x[da..]);
            y.push(label);
        }
        (xa, xb, y)
    };
    let (xa, xb, y) = draw(n);
    let (xa_test, xb_test, y_test) = draw(n_test);
    Dataset { da, db, xa, xb, y, xa_test, xb_test, y_test }
}

/// SecretFlow's sigmoids in plaintext (with t1/t3's limits).
pub fn sigmoid(x: f64, sig: &str) -> f64 {
    let t1 = 0.5 + x / 4.0;
    match sig {
        "t1" => t1.clamp(0.0, 1.0),
        "t3" if x < -2.0 => 0.0,
        "t3" if x > 2.0 => 1.0,
        "t3" => t1 - x.powi(3) / 48.0,
        "df" => 0.5 * x / (1.0 + x.abs()) + 0.5,
        "sr" => 0.5 * x / (1.0 + x * x).sqrt() + 0.5,
        "mm1" => 0.5 + x / 8.0,
        _ => 1.0 / (1.0 + (-x).exp()),
    }
}

/// Plaintext mini-batch SGD with SS-LR's schedule: returns (weights, intercept, final loss as SS-LR reports it).
#[allow(clippy::too_many_arguments)]
pub fn plain_sgd(
    data: &Dataset,
    epochs: usize,
    lr: f64,
    batch: usize,
    sig: &str,
    logistic: bool,
    l2: f64,
    penalty: &str,
) -> (Vec<f64>, f64, f64) {
    let n = data.y.len();
    let d = data.da + data.db;
    let (mut w, mut b) = (vec![0.0; d], 0.0);
    for _ in 0..epochs {
        for start in (0..n).step_by(batch) {
            let end = (start + batch).min(n);
            let (mut g, mut gb) = (vec![0.0; d], 0.0);
            for i in start..end {
                let x = data.row(i);
                let z: f64 = x.iter().zip(&w).map(|(x, w)| x * w).sum::<f64>() + b;
                let p = if logistic { sigmoid(z, sig) } else { z };
                let e = p - data.y[i];
                for (g, x) in g.iter_mut().zip(&x) {
                    *g += e * x;
                }
                gb += e;
            }
            let m = (end - start) as f64;
            for (w, g) in w.iter_mut().zip(&g) {
                let reg = match penalty {
                    "l2" => l2 * *w,
                    "l1" => l2 * w.signum(),
                    _ => 0.0,
                };
                *w -= lr * (g / m + reg);
            }
            b -= lr * gb / m;
        }
    }
    let mut loss = 0.0;
    for i in 0..n {
        let z: f64 = data.row(i).iter().zip(&w).map(|(x, w)| x * w).sum::<f64>() + b;
        loss += if logistic {
            std::f64::consts::LN_2 + (0.5 - data.y[i]) * z + z * z / 8.0
        } else {
            (z - data.y[i]).powi(2)
        };
    }
    (w, b, loss / n as f64)
}

/// ROC AUC (ties counted half).
pub fn auc(scores: &[f64], y: &[f64]) -> f64 {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|a, b| scores[*a].total_cmp(&scores[*b]));
    let (mut rank_sum, mut i) = (0.0, 0);
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for k in i..=j {
            if y[idx[k]] > 0.5 {
                rank_sum += avg;
            }
        }
        i = j + 1;
    }
    let pos = y.iter().filter(|v| **v > 0.5).count() as f64;
    let neg = y.len() as f64 - pos;
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

/// Coefficient of determination.
pub fn r2(pred: &[f64], y: &[f64]) -> f64 {
    let mean = y.iter().sum::<f64>() / y.len() as f64;
    let ss_res: f64 = pred.iter().zip(y).map(|(p, y)| (y - p).powi(2)).sum();
    let ss_tot: f64 = y.iter().map(|y| (y - mean).powi(2)).sum();
    1.0 - ss_res / ss_tot
}

fn write_csv(path: &Path, names: &[String], rows: usize, cols: &[&[f64]], widths: &[usize]) {
    let mut text = names.join(",") + "\n";
    for i in 0..rows {
        let mut fields = Vec::new();
        for (c, w) in cols.iter().zip(widths) {
            for j in 0..*w {
                fields.push(format!("{}", c[i * w + j]));
            }
        }
        text.push_str(&fields.join(","));
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

/// Write the four CSVs and build the SS-LR request.
pub fn request(dir: &TempDir, data: &Dataset, field: &str, params: Value, dealer: bool) -> Value {
    let p = |name: &str| dir.path().join(name).display().to_string();
    let a_names: Vec<String> = (0..data.da).map(|j| format!("a{j}")).collect();
    let b_names: Vec<String> = (0..data.db).map(|j| format!("b{j}")).collect();
    let mut a_label = a_names.clone();
    a_label.push("y".into());
    for (suffix, xa, xb, y) in
        [("train", &data.xa, &data.xb, &data.y), ("test", &data.xa_test, &data.xb_test, &data.y_test)]
    {
        write_csv(&dir.path().join(format!("alice_{suffix}.csv")), &a_label, y.len(), &[xa, y], &[data.da, 1]);
        write_csv(&dir.path().join(format!("bob_{suffix}.csv")), &b_names, y.len(), &[xb], &[data.db]);
    }
    let mut features = a_names;
    features.extend(b_names);
    let mut runtime = json!({"protocol": "SEMI2K", "field": field});
    if dealer {
        runtime["beaver"] = json!("trusted_first_party");
    }
    json!({
        "task_id": "t", "subtask_id": "s", "execution_id": "e",
        "sf_init_config": {"parties": ["alice", "bob"], "address": "local"},
        "spu_config": {"cluster_def": {"nodes": [{"party": "alice", "address": "127.0.0.1:1"},
                                                 {"party": "bob", "address": "127.0.0.1:2"}],
                                       "runtime_config": runtime}},
        "task_config": {
            "task_type": "ss_lr",
            "train_data": {"alice": p("alice_train.csv"), "bob": p("bob_train.csv")},
            "features": features, "label": "y", "label_party": "alice",
            "model_output": {"alice": p("alice_model.json"), "bob": p("bob_model.json")},
            "params": params,
            "test_data": {"alice": p("alice_test.csv"), "bob": p("bob_test.csv")},
            "prediction_output": {"alice": p("alice_pred.csv")},
            "prediction_receiver": "alice"
        }
    })
}

pub async fn run_json(_dir: &TempDir, req: &Value) -> Value {
    serde_json::to_value(run_request(&req.to_string(), &RunOptions::default()).await).unwrap()
}

pub async fn run(dir: &TempDir, data: &Dataset, field: &str, params: Value, dealer: bool) -> Value {
    run_json(dir, &request(dir, data, field, params, dealer)).await
}

/// The model: every node's share file summed (alice's features, bob's, then the intercept). Each node's
/// `share` is its own component of the sharing, so the nodes' `share`s add up to the weights on two nodes and on
/// three (where each also holds the next node's component as `share_next`).
pub fn model_weights(dir: &TempDir) -> (Vec<f64>, f64) {
    let read =
        |p: &str| -> Value { serde_json::from_str(&std::fs::read_to_string(dir.path().join(p)).unwrap()).unwrap() };
    let a = read("alice_model.json");
    let nodes: Vec<Value> =
        a["nodes"].as_array().unwrap().iter().map(|n| read(&format!("{}_model.json", n.as_str().unwrap()))).collect();
    let bits = if a["field"] == "FM64" { 64 } else { 128 };
    let frac = a["fraction_bits"].as_u64().unwrap() as i32;
    let weights: Vec<&Vec<Value>> = nodes.iter().map(|m| m["weights"].as_array().unwrap()).collect();
    let mut out = Vec::new();
    let mut intercept = 0.0;
    for (i, x) in weights[0].iter().enumerate() {
        let s = |v: &Value| v["share"].as_str().unwrap().parse::<u128>().unwrap();
        let sum = weights.iter().fold(0u128, |acc, w| {
            assert_eq!(w[i]["name"], x["name"]);
            acc.wrapping_add(s(&w[i]))
        });
        let signed = if bits == 64 { sum as u64 as i64 as f64 } else { sum as i128 as f64 };
        let v = signed / 2f64.powi(frac);
        if x["name"] == "_intercept" { intercept = v } else { out.push(v) }
    }
    (out, intercept)
}

/// `req` (two data parties) on ABY3: carol, a third party holding no data, joins as the third node and
/// saves her share of the model.
pub fn on_aby3(dir: &TempDir, mut req: Value) -> Value {
    req["sf_init_config"]["parties"] = json!(["alice", "bob", "carol"]);
    let cluster = &mut req["spu_config"]["cluster_def"];
    cluster["nodes"].as_array_mut().unwrap().push(json!({"party": "carol", "address": "127.0.0.1:3"}));
    cluster["runtime_config"]["protocol"] = json!("ABY3");
    if let Some(models) = req["task_config"]["model_output"].as_object_mut() {
        models.insert("carol".into(), json!(dir.path().join("carol_model.json").display().to_string()));
    }
    req
}

/// A column of the prediction CSV.
pub fn predictions(dir: &TempDir, column: &str) -> Vec<f64> {
    let text = std::fs::read_to_string(dir.path().join("alice_pred.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let at = header.iter().position(|h| *h == column).unwrap();
    lines.map(|l| l.split(',').nth(at).unwrap().parse().unwrap()).collect()
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Alice's and bob's cluster-mode requests for the local-mode request `req`, on two free loopback ports.
pub fn cluster_requests(req: &Value) -> (String, String) {
    let mut each = party_requests(req).into_iter().map(|(_, r)| r);
    (each.next().unwrap(), each.next().unwrap())
}

/// Every party's cluster-mode request for the local-mode request `req` (its `parties` list), each party on a
/// free loopback port: `(party, request)` in order.
pub fn party_requests(req: &Value) -> Vec<(String, String)> {
    let names: Vec<String> =
        req["sf_init_config"]["parties"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().into()).collect();
    let mut req = req.clone();
    let parties: serde_json::Map<String, Value> = names
        .iter()
        .map(|n| {
            let at = format!("127.0.0.1:{}", free_port());
            (n.clone(), json!({"address": at, "listen_addr": at}))
        })
        .collect();
    req["sf_init_config"] = json!({ "parties": parties });
    names
        .into_iter()
        .map(|n| {
            req["sf_init_config"]["self_party"] = json!(n);
            (n, req.to_string())
        })
        .collect()
}

/// `party-runtime run` on `request` (written to `dir/NAME.json`) as a child process with piped output.
pub fn spawn(dir: &Path, name: &str, request: &str, extra: &[&str]) -> std::process::Child {
    let file = dir.join(format!("{name}.json"));
    std::fs::write(&file, request).unwrap();
    Command::new(env!("CARGO_BIN_EXE_party-runtime"))
        .arg("run")
        .arg(&file)
        .args(extra)
        .env("RUST_LOG", "party_runtime=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Run every party's request as its own process; all must succeed. Their results, in party order.
pub fn run_cluster(dir: &Path, req: &Value) -> Vec<Value> {
    run_cluster_with(dir, req, &[])
}

/// [`run_cluster`] with extra command-line arguments per party (in party order; none past the list's end).
pub fn run_cluster_with(dir: &Path, req: &Value, args: &[Vec<String>]) -> Vec<Value> {
    let children: Vec<(String, std::process::Child)> = party_requests(req)
        .into_iter()
        .enumerate()
        .rev()
        .map(|(i, (name, r))| {
            let extra: Vec<&str> = args.get(i).map(|a| a.iter().map(String::as_str).collect()).unwrap_or_default();
            (name.clone(), spawn(dir, &name, &r, &extra))
        })
        .collect();
    let mut out: Vec<Value> = children
        .into_iter()
        .map(|(name, child)| {
            let out = child.wait_with_output().unwrap();
            let json: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(out.status.code(), Some(0), "{name}: {json:#}\n{}", String::from_utf8_lossy(&out.stderr));
            json
        })
        .collect();
    out.reverse();
    out
}

/// A CA and, per party, a certificate naming the party (and 127.0.0.1, localhost) signed by it; returns the
/// three flags per party.
pub fn pki(dir: &Path, tag: &str, parties: &[&str]) -> Vec<Vec<String>> {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let ca_path = dir.join(format!("{tag}-ca.pem"));
    std::fs::write(&ca_path, ca.pem()).unwrap();
    parties
        .iter()
        .map(|p| {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(vec![p.to_string(), "127.0.0.1".to_string(), "localhost".to_string()])
                .unwrap()
                .signed_by(&key, &*ca)
                .unwrap();
            let (c, k) = (dir.join(format!("{tag}-{p}.pem")), dir.join(format!("{tag}-{p}.key")));
            std::fs::write(&c, cert.pem()).unwrap();
            std::fs::write(&k, key.serialize_pem()).unwrap();
            let s = |p: &Path| p.to_str().unwrap().to_string();
            vec!["--tls-cert".into(), s(&c), "--tls-key".into(), s(&k), "--tls-ca".into(), s(&ca_path)]
        })
        .collect()
}
