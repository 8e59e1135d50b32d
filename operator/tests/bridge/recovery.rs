//! Lost and shared work: a bridge killed mid-task (redelivered, run exactly once), a warm shutdown that puts
//! unstarted work back, one execution id never running twice at once, and a real Celery worker sharing the
//! queue with the bridge without losing or duplicating messages.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Bridge, Redis, client, example, slow_psi, venv, wait_for};

#[test]
fn a_bridge_killed_mid_task_is_redelivered_and_runs_once() {
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let fast = ["--visibility-timeout", "2", "--restore-interval", "1"];
    let mut first = Bridge::start(&redis, &fast);
    let req = slow_psi(dir.path(), 30_000, "exec-bridge-crash");
    let sent = client(&redis, "send", json!({"params": req}));
    wait_for("the task to start", Duration::from_secs(20), || {
        redis.statuses("exec-bridge-crash").contains(&"RUNNING".to_string()).then_some(())
    });
    first.kill();
    assert_eq!(redis.cmd::<i64>(&["HLEN", "unacked"]), 1, "the claimed message must survive the crash");
    let _second = Bridge::start(&redis, &fast);
    let answer = client(&redis, "get", json!({"id": sent["id"], "timeout": 60}));
    assert_eq!(answer["value"]["result"]["status"], "success", "{answer}");
    assert_eq!(answer["value"]["result"]["result"]["intersection_count"], 15_000);
    // Let a few more restore passes go by: nothing runs again and nothing is left behind.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(redis.statuses("exec-bridge-crash"), ["RUNNING", "RETRY", "RUNNING", "SUCCESS"]);
    assert_eq!(redis.cmd::<i64>(&["HLEN", "unacked"]), 0);
    assert_eq!(redis.cmd::<i64>(&["LLEN", "secretflow_queue"]), 0);
}

#[test]
fn warm_shutdown_puts_unstarted_work_back() {
    let redis = Redis::start();
    let out = tempfile::tempdir().unwrap();
    let mut bridge = Bridge::start(&redis, &[]);
    let req = example("table_statistics", out.path(), "exec-bridge-shutdown");
    let sent = client(&redis, "send", json!({"params": req, "options": {"countdown": 600}}));
    wait_for("the eta message to be claimed", Duration::from_secs(10), || {
        (redis.cmd::<i64>(&["HLEN", "unacked"]) == 1).then_some(())
    });
    let status = bridge.terminate(Duration::from_secs(20));
    assert!(status.success(), "{status}\n{}", bridge.log());
    assert_eq!(redis.cmd::<i64>(&["HLEN", "unacked"]), 0);
    let queued: Vec<String> = redis.cmd(&["LRANGE", "secretflow_queue", "0", "-1"]);
    assert_eq!(queued.len(), 1, "the message must be back on its queue");
    let env: Value = serde_json::from_str(&queued[0]).unwrap();
    assert_eq!(env["headers"]["id"], sent["id"]);
    assert_eq!(env["headers"]["redelivered"], true);
    assert!(redis.statuses("exec-bridge-shutdown").is_empty(), "it must not have started");
    // The processing list and liveness key are gone.
    let keys: Vec<String> = redis.cmd(&["KEYS", "secretflow-bridge:*"]);
    assert!(keys.is_empty(), "{keys:?}");
}

#[test]
fn one_execution_id_never_runs_twice_at_once() {
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let _bridge = Bridge::start(&redis, &["--concurrency", "2"]);
    let req = slow_psi(dir.path(), 5_000, "exec-bridge-same");
    let answer = client(&redis, "many", json!({"params": [req, req], "timeout": 60}));
    for r in answer["results"].as_array().unwrap() {
        assert_eq!(r["value"]["result"]["status"], "success", "{r}");
    }
    assert_eq!(redis.statuses("exec-bridge-same"), ["RUNNING", "SUCCESS", "RUNNING", "SUCCESS"]);
}

#[test]
fn a_celery_worker_and_the_bridge_share_a_queue() {
    let redis = Redis::start();
    let out = tempfile::tempdir().unwrap();
    let _bridge = Bridge::start(&redis, &["--concurrency", "1"]);
    let worker_dir = super::harness::manifest_dir().join("tests/bridge");
    let mut worker = Command::new(venv().join("bin/celery"))
        .args(["-A", "python_worker", "worker", "-Q", "secretflow_queue", "-c", "1", "--without-mingle"])
        .args(["--without-gossip", "--without-heartbeat", "-n", "python@%h", "--loglevel", "WARNING"])
        .current_dir(&worker_dir)
        .env("SF_TEST_BROKER", redis.url())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("celery worker");
    // Under a loaded machine the Python worker can take seconds to start: without this wait the bridge may run
    // all the tasks first.
    wait_for("the Python worker to consume", Duration::from_secs(60), || {
        (redis.cmd::<Option<String>>(&["GET", "python_worker_ready"]).is_some()).then_some(())
    });
    let n = 40;
    let params: Vec<Value> =
        (0..n).map(|i| example("table_statistics", out.path(), &format!("exec-share-{i:02}"))).collect();
    let answer = client(&redis, "many", json!({"params": params, "timeout": 120}));
    let _ = worker.kill();
    let _ = worker.wait();
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results.len(), n);
    let mut by_python = Vec::new();
    let mut by_bridge = Vec::new();
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["ok"], true, "task {i}: {r}");
        let exec = format!("exec-share-{i:02}");
        assert_eq!(r["value"]["execution_id"], exec.as_str());
        if r["value"]["result"]["result"]["worker"] == "python" { by_python.push(exec) } else { by_bridge.push(exec) }
    }
    // Each message ran exactly once, by one of the two.
    let python_runs: Vec<String> = redis.cmd(&["LRANGE", "python_worker_runs", "0", "-1"]);
    let mut sorted = python_runs.clone();
    sorted.sort();
    assert_eq!(sorted, by_python, "the Python worker ran exactly the tasks whose results it returned");
    for exec in &by_bridge {
        assert_eq!(redis.statuses(exec), ["RUNNING", "SUCCESS"], "{exec}");
    }
    for exec in &by_python {
        assert!(redis.statuses(exec).is_empty(), "{exec} ran in both");
    }
    assert!(
        !by_bridge.is_empty() && !by_python.is_empty(),
        "both consumers should get work: {by_bridge:?} {by_python:?}"
    );
    assert_eq!(redis.cmd::<i64>(&["HLEN", "unacked"]), 0);
}
