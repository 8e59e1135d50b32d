//! PSI benchmark: two `party-runtime` processes on loopback in cluster mode, CSV in and out, one `id` string
//! column plus one value column per party, 50% overlap; timed like SecretFlow's `psi_execute` (read, protocol,
//! write), which is each process's `total_execution_time`.
//!
//! `cargo bench -p party-runtime --bench psi` writes one JSON line per (protocol, size). Sizes from
//! `SF_BENCH_PSI_SIZES` (comma-separated, default `100000,1000000`), protocols from `SF_BENCH_PSI_PROTOCOLS`
//! (default `ECDH_PSI_2PC`), runs per size from `SF_BENCH_RUNS` (default 3; the median is reported).
//! `SF_BENCH_TLS=1` runs the link over mutual TLS (a test CA and one certificate per party).
#![allow(clippy::unwrap_used, missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::Write;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

fn write_party(path: &Path, from: usize, n: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(f, "id,value").unwrap();
    // Scatter the ids so the file is not sorted.
    for i in 0..n {
        let u = from + (i * 7919) % n;
        writeln!(f, "id-{u:012},{}", u % 1000).unwrap();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `SF_BENCH_TLS=1`: the link runs over mutual TLS.
fn tls() -> bool {
    std::env::var("SF_BENCH_TLS").is_ok_and(|v| v == "1")
}

fn run_once(dir: &Path, protocol: &str) -> (Value, Value) {
    let (pa, pb) = (free_port(), free_port());
    let mut req = json!({
        "task_id": "bench", "subtask_id": "psi", "execution_id": "bench",
        "sf_init_config": {"parties": {
            "alice": {"address": format!("127.0.0.1:{pa}"), "listen_addr": format!("127.0.0.1:{pa}")},
            "bob": {"address": format!("127.0.0.1:{pb}"), "listen_addr": format!("127.0.0.1:{pb}")}}},
        "task_config": {"task_type": "psi", "keys": {"alice": ["id"], "bob": ["id"]},
            "input_paths": {"alice": dir.join("alice.csv"), "bob": dir.join("bob.csv")},
            "output_paths": {"alice": dir.join("alice_out.csv"), "bob": dir.join("bob_out.csv")},
            "receiver": "alice", "protocol": protocol, "sort": false}
    });
    let flags = if tls() { common::pki(dir, "bench", &["bob", "alice"]) } else { vec![vec![], vec![]] };
    let mut children = Vec::new();
    for (party, flags) in ["bob", "alice"].into_iter().zip(flags) {
        req["sf_init_config"]["self_party"] = json!(party);
        let file = dir.join(format!("{party}.json"));
        std::fs::write(&file, req.to_string()).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_party-runtime"));
        children.push(cmd.arg("run").arg(&file).arg("-q").args(flags).output_async());
    }
    let mut outs: Vec<Value> = children.into_iter().map(|c| c.wait()).collect();
    let alice = outs.pop().unwrap();
    let bob = outs.pop().unwrap();
    (alice, bob)
}

trait Spawn {
    fn output_async(&mut self) -> Running;
}
struct Running(std::process::Child);
impl Spawn for Command {
    fn output_async(&mut self) -> Running {
        Running(self.stdout(std::process::Stdio::piped()).spawn().unwrap())
    }
}
impl Running {
    fn wait(self) -> Value {
        let out = self.0.wait_with_output().unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["status"], "success", "{v:#}");
        v
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let sizes: Vec<usize> = std::env::var("SF_BENCH_PSI_SIZES")
        .unwrap_or_else(|_| "100000,1000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let protocols = std::env::var("SF_BENCH_PSI_PROTOCOLS").unwrap_or_else(|_| "ECDH_PSI_2PC".into());
    let runs: usize = std::env::var("SF_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(3).max(1);
    for protocol in protocols.split(',') {
        for &n in &sizes {
            let dir = tempfile::tempdir().unwrap();
            write_party(&dir.path().join("alice.csv"), 0, n);
            write_party(&dir.path().join("bob.csv"), n / 2, n);
            let mut samples = Vec::new();
            for _ in 0..runs {
                samples.push(run_once(dir.path(), protocol));
            }
            let pick = |party: usize, f: &dyn Fn(&Value) -> f64| -> f64 {
                median(samples.iter().map(|s| f(if party == 0 { &s.0 } else { &s.1 })).collect())
            };
            let total = |v: &Value| v["performance_metrics"]["total_execution_time"].as_f64().unwrap();
            let algo = |v: &Value| v["performance_metrics"]["algorithm_exec_time"].as_f64().unwrap();
            let mem = |v: &Value| v["performance_metrics"]["peak_memory_bytes"].as_f64().unwrap_or(0.0) / 1e6;
            let sent = |v: &Value| v["performance_metrics"]["bytes_sent"].as_f64().unwrap();
            let first = &samples[0].0["result"];
            println!(
                "{}",
                json!({
                    "bench": "psi", "protocol": protocol, "rows_per_party": n, "overlap": 0.5, "runs": runs,
                    "tls": tls(),
                    "intersection": first["intersection_count"],
                    "alice_total_s": pick(0, &total), "bob_total_s": pick(1, &total),
                    "alice_algorithm_s": pick(0, &algo), "bob_algorithm_s": pick(1, &algo),
                    "alice_peak_mb": pick(0, &mem), "bob_peak_mb": pick(1, &mem),
                    "alice_bytes_sent": pick(0, &sent), "bob_bytes_sent": pick(1, &sent),
                })
            );
        }
    }
}
