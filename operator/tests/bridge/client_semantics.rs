//! What the web container sees through `send_task(...).get()`: the spec's PSI example end to end, failures in
//! both modes, expires, revoke, unknown task names, eta, the hard time limit, refused bodies, duplicates.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Bridge, Redis, call, client, example, slow_psi, wait_for};

#[test]
fn psi_example_returns_the_documented_structure() {
    let redis = Redis::start();
    let _bridge = Bridge::start(&redis, &[]);
    let out = tempfile::tempdir().unwrap();
    let req = example("psi", out.path(), "exec-bridge-psi");
    let answer = call(&redis, &req, json!({}), 60);
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(answer["state"], "SUCCESS");
    let v = &answer["value"];
    // celery_response["result"] as the spec shows it: ids, the execution result, completed_at.
    assert_eq!((v["task_id"].as_str(), v["subtask_id"].as_str()), (Some("dag-examples"), Some("node-psi")));
    assert_eq!(v["execution_id"], "exec-bridge-psi");
    assert!(v["completed_at"].as_str().is_some_and(|t| t.len() == 26), "{}", v["completed_at"]);
    let inner = &v["result"];
    assert_eq!(inner["status"], "success");
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(crate::harness::repo_root().join("tests/reference/expected.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(inner["result"]["intersection_count"], expected["psi"]["intersection_count"], "{inner}");
    assert_eq!(inner["result"]["psi_protocol"], "KKRT_PSI_2PC");
    assert_eq!(inner["result"]["receiver"], "alice");
    for key in ["total_execution_time", "cluster_init_time", "algorithm_exec_time", "algorithm_exec_percentage"] {
        assert!(inner["performance_metrics"][key].is_number(), "performance_metrics.{key}");
    }
    assert_eq!(inner["task_metadata"]["task_type"], "psi");
    let meta = &inner["celery_metadata"];
    assert_eq!(meta["celery_task_id"], answer["id"]);
    assert_eq!((meta["celery_queue"].as_str(), meta["celery_exchange"].as_str()), (Some("secretflow_queue"), Some("")));
    assert_eq!(meta["retry_count"], 0);
    assert!(meta["celery_execution_time"].as_f64().is_some_and(|t| t > 0.0));
    assert!(meta["worker_hostname"].as_str().is_some_and(|h| h.starts_with("bridge@")));
    assert!(meta["task_eta"].is_null());
    // Both parties wrote their rows; the message was acknowledged after the result was stored.
    assert!(
        out.path().join("alice_exec-bridge-psi.csv").exists() && out.path().join("bob_exec-bridge-psi.csv").exists()
    );
    assert_eq!(redis.cmd::<i64>(&["HLEN", "unacked"]), 0);
    assert_eq!(redis.cmd::<i64>(&["ZCARD", "unacked_index"]), 0);
    // The Worker API status stream: RUNNING, then SUCCESS carrying the result.
    let events = redis.status_events("exec-bridge-psi");
    let statuses: Vec<&str> = events.iter().map(|e| e["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["RUNNING", "SUCCESS"]);
    assert_eq!(events[1]["task_name"], "tasks.secretflow.execute_task");
    assert_eq!(events[1]["data"]["result"]["result"]["intersection_count"], expected["psi"]["intersection_count"]);
    assert!(events[0]["data"]["started_at"].is_string());
}

#[test]
fn failures_return_the_documented_object_or_raise() {
    let redis = Redis::start();
    let out = tempfile::tempdir().unwrap();
    let mut req = example("table_statistics", out.path(), "exec-bridge-fail");
    req["task_config"]["input_data"]["alice"] = "examples/data/no_such_file.csv".into();
    {
        let _bridge = Bridge::start(&redis, &[]);
        let answer = call(&redis, &req, json!({}), 60);
        assert_eq!(answer["state"], "SUCCESS", "{answer}");
        let inner = &answer["value"]["result"];
        assert_eq!(inner["status"], "failure");
        assert_eq!(inner["error"]["type"], "FileNotFoundError");
        assert!(inner["error"]["message"].as_str().unwrap().contains("no_such_file.csv"), "{inner}");
        assert!(inner["celery_metadata"]["celery_task_id"].is_string());
        assert_eq!(redis.statuses("exec-bridge-fail"), ["RUNNING", "FAILURE"]);
    }
    let _bridge = Bridge::start(&redis, &["--failure-mode", "raise"]);
    let answer = call(&redis, &req, json!({}), 60);
    assert_eq!(answer["ok"], false, "{answer}");
    assert_eq!(answer["state"], "FAILURE");
    assert_eq!(
        (answer["exc_type"].as_str(), answer["exc_module"].as_str()),
        (Some("FileNotFoundError"), Some("builtins"))
    );
    assert!(answer["args"][0].as_str().unwrap().contains("no_such_file.csv"));
    // A request that breaks the contract is a ValueError naming the field.
    let mut bad = example("table_statistics", out.path(), "exec-bridge-bad");
    bad["task_config"]["unexpected"] = 1.into();
    let answer = call(&redis, &bad, json!({}), 60);
    assert_eq!(answer["exc_type"], "ValueError", "{answer}");
    assert!(answer["args"][0].as_str().unwrap().contains("unexpected"));
}

#[test]
fn expired_revoked_and_unknown_tasks_do_not_run() {
    let redis = Redis::start();
    let _bridge = Bridge::start(&redis, &[]);
    let out = tempfile::tempdir().unwrap();
    let req = example("table_statistics", out.path(), "exec-bridge-expired");
    let answer = call(&redis, &req, json!({"expires": -5}), 30);
    assert_eq!((answer["exc_type"].as_str(), answer["state"].as_str()), (Some("TaskRevokedError"), Some("REVOKED")));
    assert_eq!(answer["args"][0], "expired");
    assert!(redis.statuses("exec-bridge-expired").is_empty(), "an expired task must not run");

    // Revoke while it waits for its eta: it never runs.
    let req = example("table_statistics", out.path(), "exec-bridge-revoked");
    let sent = client(&redis, "send", json!({"params": req, "options": {"countdown": 3}}));
    client(&redis, "revoke", json!({"id": sent["id"]}));
    let answer = client(&redis, "get", json!({"id": sent["id"], "timeout": 30}));
    assert_eq!((answer["exc_type"].as_str(), answer["args"][0].as_str()), (Some("TaskRevokedError"), Some("revoked")));
    assert!(redis.statuses("exec-bridge-revoked").is_empty());

    let unknown =
        client(&redis, "call", json!({"name": "tasks.secretflow.no_such_task", "params": req, "timeout": 30}));
    assert_eq!((unknown["exc_type"].as_str(), unknown["state"].as_str()), (Some("NotRegistered"), Some("FAILURE")));
    assert_eq!(unknown["args"][0], "tasks.secretflow.no_such_task");
    assert_eq!(redis.cmd::<i64>(&["HLEN", "unacked"]), 0);
}

#[test]
fn eta_is_honoured_and_time_limit_enforced() {
    let redis = Redis::start();
    let _bridge = Bridge::start(&redis, &["--track-started", "--result-extended"]);
    let out = tempfile::tempdir().unwrap();
    let req = example("table_statistics", out.path(), "exec-bridge-eta");
    let start = Instant::now();
    let answer = call(&redis, &req, json!({"countdown": 2}), 30);
    assert!(start.elapsed() >= Duration::from_secs(2), "ran before its eta");
    assert_eq!(answer["value"]["result"]["status"], "success", "{answer}");
    assert!(answer["value"]["result"]["celery_metadata"]["task_eta"].is_string());
    // result_extended: the stored meta carries name, args, worker, queue.
    let key = format!("celery-task-meta-{}", answer["id"].as_str().unwrap());
    let meta: Value = serde_json::from_str(&redis.cmd::<String>(&["GET", &key])).unwrap();
    assert_eq!(meta["name"], "tasks.secretflow.execute_task");
    assert_eq!(meta["args"][0]["execution_id"], "exec-bridge-eta");
    assert_eq!(meta["queue"], "secretflow_queue");
    assert!(meta["worker"].as_str().unwrap().starts_with("bridge@"));

    // The hard limit (time_limit=1) stops a run that takes several seconds.
    let slow = slow_psi(out.path(), 30_000, "exec-bridge-limit");
    let start = Instant::now();
    let answer = call(&redis, &slow, json!({"time_limit": 1}), 30);
    assert_eq!(
        (answer["exc_type"].as_str(), answer["state"].as_str()),
        (Some("TimeLimitExceeded"), Some("FAILURE")),
        "{answer}"
    );
    assert!(start.elapsed() < Duration::from_secs(5), "the limit was not enforced: {:?}", start.elapsed());
    assert_eq!(redis.statuses("exec-bridge-limit"), ["RUNNING", "FAILURE"]);
}

#[test]
fn refused_bodies_and_duplicates() {
    let redis = Redis::start();
    let _bridge = Bridge::start(&redis, &[]);
    let out = tempfile::tempdir().unwrap();
    // A pickle body is refused with a stored error the client raises.
    let sent = client(&redis, "send", json!({"params": {"task_id": "x"}, "options": {"countdown": 600}}));
    let id = sent["id"].as_str().unwrap().to_string();
    // The bridge holds the eta message in unacked; rewrite a copy of it as pickle under a new id.
    let entry: String = wait_for("the eta message to be claimed", Duration::from_secs(10), || {
        let all: std::collections::HashMap<String, String> = redis.cmd(&["HGETALL", "unacked"]);
        all.into_values().next()
    });
    let parts: Value = serde_json::from_str(&entry).unwrap();
    let mut env = parts[0].clone();
    env["content-type"] = "application/x-python-serialize".into();
    env["headers"]["id"] = "pickled-1".into();
    env["headers"]["eta"] = Value::Null;
    env["properties"]["delivery_tag"] = "tag-pickled-1".into();
    redis.cmd::<i64>(&["LPUSH", "secretflow_queue", &env.to_string()]);
    let answer = client(&redis, "get", json!({"id": "pickled-1", "timeout": 20}));
    assert_eq!(
        (answer["exc_type"].as_str(), answer["exc_module"].as_str()),
        (Some("ContentDisallowed"), Some("kombu.exceptions")),
        "{answer}"
    );
    client(&redis, "revoke", json!({"id": id}));

    // The same message delivered twice runs once; the second copy is acknowledged without running.
    let req = example("table_statistics", out.path(), "exec-bridge-dup");
    let first = call(&redis, &req, json!({}), 30);
    let key = format!("celery-task-meta-{}", first["id"].as_str().unwrap());
    let stored: String = redis.cmd(&["GET", &key]);
    let mut copy = env.clone();
    copy["content-type"] = "application/json".into();
    copy["headers"]["id"] = first["id"].clone();
    copy["properties"]["delivery_tag"] = "tag-dup".into();
    copy["body"] = parts[0]["body"].clone();
    redis.cmd::<i64>(&["LPUSH", "secretflow_queue", &copy.to_string()]);
    wait_for("the duplicate to be acknowledged", Duration::from_secs(10), || {
        let n: i64 = redis.cmd(&["LLEN", "secretflow_queue"]);
        let pending: i64 = redis.cmd(&["HEXISTS", "unacked", "tag-dup"]);
        (n == 0 && pending == 0).then_some(())
    });
    assert_eq!(redis.cmd::<String>(&["GET", &key]), stored, "a finished result was overwritten");
    assert_eq!(redis.statuses("exec-bridge-dup"), ["RUNNING", "SUCCESS"]);
}

#[test]
fn celery_events_reach_a_celery_event_receiver() {
    let redis = Redis::start();
    let out = tempfile::tempdir().unwrap();
    // Listen the way Flower does (celery.events.Receiver) while the bridge starts and runs a task.
    let listener = {
        let url = redis.url();
        std::thread::spawn(move || {
            let script = super::harness::manifest_dir().join("tests/bridge/client.py");
            let mut child = std::process::Command::new(crate::harness::venv().join("bin/python"))
                .arg(script)
                .arg("events")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            let input = json!({"broker": url, "seconds": 8});
            child.stdin.take().unwrap().write_all(input.to_string().as_bytes()).unwrap();
            let output = child.wait_with_output().unwrap();
            serde_json::from_slice::<Value>(&output.stdout).unwrap()
        })
    };
    wait_for("the event receiver to subscribe", Duration::from_secs(20), || {
        let patterns: i64 = redis.cmd(&["PUBSUB", "NUMPAT"]);
        let channels: Vec<String> = redis.cmd(&["PUBSUB", "CHANNELS", "*celeryev*"]);
        (patterns > 0 || !channels.is_empty()).then_some(())
    });
    let _bridge = Bridge::start(&redis, &[]);
    let req = example("table_statistics", out.path(), "exec-bridge-events");
    let answer = call(&redis, &req, json!({}), 30);
    let events = listener.join().unwrap();
    let events = events["events"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    for kind in ["worker-online", "worker-heartbeat", "task-received", "task-started", "task-succeeded"] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    let succeeded = events.iter().find(|e| e["type"] == "task-succeeded").unwrap();
    assert_eq!(succeeded["uuid"], answer["id"]);
    assert!(succeeded["runtime"].as_f64().unwrap() > 0.0);
    let online = events.iter().find(|e| e["type"] == "worker-online").unwrap();
    assert!(online["hostname"].as_str().unwrap().starts_with("bridge@"));
    assert_eq!(online["freq"], 2.0);
}

#[test]
fn rediss_with_tls_end_to_end() {
    let redis = Redis::start_tls();
    let bridge = Bridge::start(&redis, &[]);
    let out = tempfile::tempdir().unwrap();
    let req = example("table_statistics", out.path(), "exec-bridge-tls");
    let answer = call(&redis, &req, json!({}), 30);
    assert_eq!(answer["value"]["result"]["status"], "success", "{answer}\n{}", bridge.log());
    // The plain port shows what went over TLS: the stored result and the status stream.
    assert_eq!(redis.statuses("exec-bridge-tls"), ["RUNNING", "SUCCESS"]);
}
