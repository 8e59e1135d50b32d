//! Benchmark of the local task types end to end (read CSV, compute, write), as `party-runtime run` does them.
//!
//! `cargo bench -p party-runtime --bench local_jobs` writes one JSON line per task type to stdout. Data: a
//! vertical split, alice and bob each holding half of `SF_BENCH_COLS` numeric columns (default 10) over
//! `SF_BENCH_ROWS` rows (default 10^6), generated once into a temporary folder (not timed). Each task runs
//! `SF_BENCH_RUNS` times (default 5); the line gives the median and the fastest run, and bytes on the link.
#![allow(clippy::unwrap_used, missing_docs)]

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use party_runtime::RunOptions;
use party_runtime::data::DataPolicy;
use rand_free::Lcg;
use serde_json::json;

/// A tiny deterministic generator for benchmark data (not cryptographic; data content is irrelevant).
mod rand_free {
    pub struct Lcg(pub u64);
    impl Lcg {
        pub fn next_f64(&mut self) -> f64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn write_party(path: &Path, cols: &[String], rows: usize, seed: u64) {
    let mut rng = Lcg(seed);
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(f, "id,{}", cols.join(",")).unwrap();
    for r in 0..rows {
        write!(f, "{r}").unwrap();
        for (i, _) in cols.iter().enumerate() {
            write!(f, ",{:.6}", rng.next_f64() * (i + 1) as f64 * 100.0).unwrap();
        }
        writeln!(f).unwrap();
    }
}

fn main() {
    let rows = env("SF_BENCH_ROWS", 1_000_000);
    let cols = env("SF_BENCH_COLS", 10);
    let runs = env("SF_BENCH_RUNS", 5).max(1);
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..cols).map(|i| format!("x{i}")).collect();
    let (a_cols, b_cols) = names.split_at(cols / 2);
    write_party(&dir.path().join("alice.csv"), a_cols, rows, 1);
    write_party(&dir.path().join("bob.csv"), b_cols, rows, 2);

    let io = json!({"alice": "alice.csv", "bob": "bob.csv"});
    let tasks = [
        (
            "table_statistics",
            json!({"task_type": "table_statistics", "input_data": io, "columns": names, "output_report": "stats.json"}),
        ),
        (
            "standard_scaler",
            json!({"task_type": "standard_scaler", "input_data": io, "columns": names,
            "output_data": {"alice": "out/alice_scaled.csv", "bob": "out/bob_scaled.csv"}}),
        ),
    ];
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let opts = RunOptions { data: DataPolicy::new(vec![dir.path().to_path_buf()]), ..RunOptions::default() };
    for (name, task_config) in tasks {
        let request = json!({
            "task_id": "bench", "subtask_id": name, "execution_id": "bench-1",
            "sf_init_config": {"parties": ["alice", "bob"], "address": "local"},
            "task_config": task_config,
        })
        .to_string();
        let mut times = Vec::with_capacity(runs);
        let mut last = None;
        for _ in 0..runs {
            let t = Instant::now();
            let result = rt.block_on(party_runtime::run_request(&request, &opts));
            times.push(t.elapsed().as_secs_f64());
            assert_eq!(result.status, secretflow_crds::result::ExecStatus::Success, "{result:?}");
            last = result.performance_metrics;
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        let metrics = last.unwrap();
        println!(
            "{}",
            json!({
                "bench": name, "rows": rows, "columns": cols, "parties": 2, "runs": runs,
                "median_s": median, "min_s": times[0], "rows_per_s": rows as f64 / median,
                "algorithm_exec_time_s": metrics.algorithm_exec_time,
                "bytes_sent": metrics.bytes_sent, "rounds": metrics.rounds,
            })
        );
    }
}
