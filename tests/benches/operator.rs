//! Operator benchmark in the stand-in cluster: 100 small tasks (the `table_statistics` example) applied at
//! once; time from each task's creation to all its party pods created, and to `Succeeded`. Two runs, one JSON
//! line each: "controller" without the kubelet (pods stay Pending, so the 2 cores serve only the API server and
//! the controller: its own latency), and "end_to_end" with the kubelet running all 200 party processes here.
//!
//!     cargo bench -p secretflow-e2e --bench operator        # SF_BENCH_TASKS=100

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use secretflow_e2e::k8s::Cluster;
use secretflow_e2e::repo_root;

fn percentile(xs: &mut [f64], p: f64) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[((p / 100.0) * (xs.len() - 1) as f64).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let n: usize = std::env::var("SF_BENCH_TASKS").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    run("controller", n, false).await;
    run("end_to_end", n, true).await;
}

async fn run(mode: &str, n: usize, kubelet: bool) {
    let cluster = Cluster::start_with(kubelet).await;
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("examples/data");
    std::fs::create_dir_all(&data).expect("data dir");
    for f in ["alice.csv", "bob.csv"] {
        std::fs::copy(repo_root().join("examples/data").join(f), data.join(f)).expect("copy");
    }
    let req: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("examples/requests/table_statistics.json")).expect("example"),
    )
    .expect("JSON");
    let mut created: HashMap<String, Instant> = HashMap::new();
    let start = Instant::now();
    for i in 0..n {
        let name = format!("bench-{i:04}");
        let mut tc = req["task_config"].clone();
        tc["output_report"] = format!("out/{name}.json").into();
        cluster.apply(
            "bench",
            json!({"apiVersion": "secretflow.io/v1alpha1", "kind": "SecretFlowTask", "metadata": {"name": name},
                   "spec": {"taskId": "dag", "subtaskId": "node", "executionId": name,
                            "parties": [{"name": "alice"}, {"name": "bob"}],
                            "runtime": {"dataRoot": root.path().display().to_string()}, "taskConfig": tc}}),
        );
        created.insert(name, Instant::now());
    }
    let mut pods_at: HashMap<String, f64> = HashMap::new();
    let mut done_at: HashMap<String, f64> = HashMap::new();
    let mut failed = 0;
    let target = if kubelet { n } else { 0 };
    while (done_at.len() < target || pods_at.len() < n)
        && start.elapsed()
            < Duration::from_secs(std::env::var("SF_BENCH_TIMEOUT").ok().and_then(|v| v.parse().ok()).unwrap_or(900))
    {
        let mut per_task: HashMap<String, usize> = HashMap::new();
        for p in cluster.store.list("api/v1/pods", Some("bench")) {
            if let Some(t) = p["metadata"]["labels"]["secretflow.io/task"].as_str() {
                *per_task.entry(t.to_string()).or_default() += 1;
            }
        }
        for (t, count) in per_task {
            if count >= 2 && !pods_at.contains_key(&t) {
                pods_at.insert(t.clone(), created[&t].elapsed().as_secs_f64());
            }
        }
        for t in cluster.store.list(secretflow_e2e::k8s::TASKS, Some("bench")) {
            let name = t["metadata"]["name"].as_str().unwrap_or("").to_string();
            let phase = t["status"]["phase"].as_str().unwrap_or("");
            if matches!(phase, "Succeeded" | "Failed") && !done_at.contains_key(&name) {
                if phase == "Failed" {
                    failed += 1;
                    eprintln!("{name} failed: {}", t["status"]["error"]);
                }
                done_at.insert(name.clone(), created[&name].elapsed().as_secs_f64());
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if pods_at.len() < n {
        let missing: Vec<Value> = cluster
            .store
            .list(secretflow_e2e::k8s::TASKS, Some("bench"))
            .into_iter()
            .filter(|t| !pods_at.contains_key(t["metadata"]["name"].as_str().unwrap_or("")))
            .map(|t| json!({"name": t["metadata"]["name"], "status": t["status"]}))
            .take(2)
            .collect();
        eprintln!("{} tasks without both pods, e.g. {}", n - pods_at.len(), Value::from(missing));
    }
    if done_at.len() < target {
        for t in cluster.store.list(secretflow_e2e::k8s::TASKS, Some("bench")) {
            if t["status"]["phase"] == "Pending" {
                let name = t["metadata"]["name"].as_str().unwrap_or("");
                let pods: Vec<Value> = cluster
                    .store
                    .list("api/v1/pods", Some("bench"))
                    .into_iter()
                    .filter(|p| p["metadata"]["labels"]["secretflow.io/task"] == name)
                    .map(|p| json!([p["metadata"]["name"], p["status"]["phase"], p["metadata"]["resourceVersion"]]))
                    .collect();
                eprintln!(
                    "{name}: rv {} status {} pods {}",
                    t["metadata"]["resourceVersion"],
                    t["status"],
                    Value::from(pods)
                );
                break;
            }
        }
        let phases: Vec<String> = cluster
            .store
            .list(secretflow_e2e::k8s::TASKS, Some("bench"))
            .iter()
            .map(|t| t["status"]["phase"].as_str().unwrap_or("-").to_string())
            .collect();
        eprintln!(
            "unfinished after {:?}: {} pods, {} events, phases {phases:?}",
            start.elapsed(),
            cluster.store.list("api/v1/pods", Some("bench")).len(),
            cluster.store.list("apis/events.k8s.io/v1/events", Some("bench")).len()
        );
    }
    let mut pods: Vec<f64> = pods_at.values().copied().collect();
    let mut done: Vec<f64> = done_at.values().copied().collect();
    println!(
        "{}",
        json!({
            "bench": "operator_tasks_at_once", "mode": mode, "tasks": n, "failed": failed,
            "wall_s": start.elapsed().as_secs_f64(),
            "pods_created_p50_s": percentile(&mut pods, 50.0), "pods_created_p99_s": percentile(&mut pods, 99.0),
            "succeeded_p50_s": (!done.is_empty()).then(|| percentile(&mut done, 50.0)),
            "succeeded_p99_s": (!done.is_empty()).then(|| percentile(&mut done, 99.0)),
        })
    );
}
