//! What a cluster's monitoring sees of the operator, and what the stand-in API server enforces like a real one:
//! `/metrics` scraped while a task runs, the controller's JSON log lines, structural-schema pruning and
//! validation of SecretFlowTasks, and 409 Conflict on a stale `resourceVersion`.

use std::process::Stdio;
use std::time::{Duration, Instant};

use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use secretflow_crds::crd::SecretFlowTask;
use secretflow_e2e::k8s::{Cluster, TASKS, apiserver, client_for, free_addr, workspace_binary, write_kubeconfig};

use crate::operator::{data_root, example, task_for};

/// `GET url` (plain HTTP/1.1 on loopback): the body.
pub(crate) async fn http_get(url: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let request = format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default()
}

/// The value of the sample `name` (with its labels) in an exposition text.
pub(crate) fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_reconciles_their_duration_and_tasks_by_phase() {
    let cluster = Cluster::start().await;
    let root = data_root();
    cluster.apply("metrics", task_for("scaler", &example("standard_scaler"), root.path(), json!({})));
    // Scraped while the task runs: reconciles counted and timed, the task in a live phase.
    cluster.wait_task("metrics", "scaler", Duration::from_secs(30), |t| t["status"]["phase"].is_string()).await;
    let during = http_get(&cluster.metrics).await;
    assert!(sample(&during, "secretflow_reconciles_total").is_some_and(|n| n >= 1.0), "{during}");
    assert!(during.contains("# TYPE secretflow_reconcile_duration_seconds histogram"), "{during}");
    assert!(during.contains("secretflow_reconcile_duration_seconds_bucket{le="), "{during}");
    let live: f64 = ["Pending", "Running", "Succeeded"]
        .iter()
        .filter_map(|p| sample(&during, &format!("secretflow_tasks{{phase=\"{p}\"}}")))
        .sum();
    assert_eq!(live, 1.0, "{during}");
    let t = cluster.wait_done("metrics", "scaler", Duration::from_secs(60)).await;
    assert_eq!(t["status"]["phase"], "Succeeded");
    // The last reconcile's phase reaches the gauge; the completion histogram has its observation.
    let end = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let text = http_get(&cluster.metrics).await;
        if sample(&text, "secretflow_tasks{phase=\"Succeeded\"}") == Some(1.0) || Instant::now() > end {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(sample(&after, "secretflow_tasks{phase=\"Succeeded\"}"), Some(1.0), "{after}");
    assert_eq!(sample(&after, "secretflow_tasks{phase=\"Running\"}"), Some(0.0), "{after}");
    assert_eq!(sample(&after, "secretflow_task_completion_seconds_count"), Some(1.0), "{after}");
    assert_eq!(sample(&after, "secretflow_task_pods_created_seconds_count"), Some(1.0), "{after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_log_line_carries_the_task_and_its_namespace() {
    let store = apiserver::Store::new();
    let url = apiserver::serve(store.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = write_kubeconfig(dir.path(), &url);
    let mut controller = tokio::process::Command::new(workspace_binary("secretflow-operator", "secretflow-operator"))
        .args(["--log-format", "json", "controller", "--metrics-addr"])
        .arg(free_addr().to_string())
        .env("KUBECONFIG", &kubeconfig)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let root = data_root();
    store.create(TASKS, "logged", task_for("json-task", &example("table_statistics"), root.path(), json!({}))).unwrap();
    let mut lines = BufReader::new(controller.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let search = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            assert!(v["timestamp"].is_string() && v["level"].is_string(), "{line}");
            seen.push(line);
            if v["span"]["task"] == "json-task" && v["span"]["namespace"] == "logged" {
                return Some(v);
            }
        }
        None
    };
    let found = tokio::time::timeout(Duration::from_secs(60), search).await.ok().flatten();
    let found = found.unwrap_or_else(|| panic!("no log line of the task's reconcile within 60 s: {seen:#?}"));
    assert_eq!(found["span"]["name"], "reconcile_task", "{found}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_server_prunes_validates_and_refuses_stale_writes() {
    let store = apiserver::Store::new();
    let url = apiserver::serve(store.clone()).await;
    let api: kube::Api<SecretFlowTask> = kube::Api::namespaced(client_for(&url), "checked");
    let root = data_root();
    let mut task = task_for("checked", &example("table_statistics"), root.path(), json!({}));
    task["spec"]["notInTheSchema"] = json!(1);
    store.create(TASKS, "checked", task.clone()).unwrap();
    let stored = store.get(TASKS, "checked", "checked").unwrap();
    assert!(stored["spec"].get("notInTheSchema").is_none(), "undeclared spec fields are pruned");
    assert_eq!(stored["spec"]["taskConfig"], task["spec"]["taskConfig"], "preserved fields are kept whole");
    // A status field the CRD lacks is dropped, as a real API server drops it.
    let patch = json!({"status": {"phase": "Running", "notInTheSchema": "lost"}});
    api.patch_status("checked", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    let status = &store.get(TASKS, "checked", "checked").unwrap()["status"];
    assert_eq!(status["phase"], "Running");
    assert!(status.get("notInTheSchema").is_none(), "{status}");
    // A value of the wrong type is refused naming its field.
    let bad = json!({"status": {"attempt": "two"}});
    let e = api.patch_status("checked", &PatchParams::default(), &Patch::Merge(&bad)).await.unwrap_err();
    match e {
        kube::Error::Api(s) => {
            assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"), "{s:?}");
            assert!(s.message.contains("status.attempt"), "{}", s.message);
        }
        other => panic!("expected 422, got {other}"),
    }
    // A replace naming the version read before another write is a 409 Conflict.
    let read = api.get("checked").await.unwrap();
    api.patch_status("checked", &PatchParams::default(), &Patch::Merge(&json!({"status": {"phase": "Pending"}})))
        .await
        .unwrap();
    match api.replace("checked", &PostParams::default(), &read).await.unwrap_err() {
        kube::Error::Api(s) => assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"), "{s:?}"),
        other => panic!("expected 409, got {other}"),
    }
    let fresh = api.get("checked").await.unwrap();
    api.replace("checked", &PostParams::default(), &fresh).await.expect("the current version is accepted");
}
