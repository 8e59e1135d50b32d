//! The operator end to end: SecretFlowTasks applied to the stand-in cluster (tests/e2e/k8s) run as party
//! pods (real `party-runtime` processes in cluster mode over the gRPC link) and reach the status the
//! runtimes and the controller write.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use party_runtime::RunOptions;
use party_runtime::data::DataPolicy;

use secretflow_crds::WorkerRequest;
use secretflow_crds::convert::spec_for_request;
use secretflow_crds::crd::RuntimeSpec;
use secretflow_e2e::k8s::Cluster;
use secretflow_e2e::repo_root;

/// A data root holding a copy of the example data (requests use paths relative to it).
pub fn data_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join("examples/data");
    std::fs::create_dir_all(&to).unwrap();
    for f in std::fs::read_dir(repo_root().join("examples/data")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
    }
    dir
}

/// The SecretFlowTask for a Worker-API request ([`spec_for_request`]: same ids, parties, task_config and SPU
/// configuration), with `extra` spec fields on top.
pub(crate) fn task_for(name: &str, req: &Value, root: &Path, extra: Value) -> Value {
    let runtime = RuntimeSpec { data_root: Some(root.display().to_string()), ..test_runtime() };
    let spec = spec_for_request(&WorkerRequest::parse(&req.to_string()).unwrap(), runtime);
    let mut spec = serde_json::to_value(spec).unwrap();
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    json!({"apiVersion": "secretflow.io/v1alpha1", "kind": "SecretFlowTask", "metadata": {"name": name}, "spec": spec})
}

/// Pod settings for the stand-in cluster: a short link timeout, so a lost peer fails fast.
fn test_runtime() -> RuntimeSpec {
    RuntimeSpec { link_timeout_seconds: Some(10), ..RuntimeSpec::default() }
}

pub(crate) fn example(name: &str) -> Value {
    let text = std::fs::read_to_string(repo_root().join(format!("examples/requests/{name}.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// `party-runtime run` on the same request (local mode) in its own copy of the data.
pub async fn local_result(req: &Value) -> Value {
    let root = data_root();
    let opts = RunOptions { data: DataPolicy::new(vec![root.path().to_path_buf()]), ..RunOptions::default() };
    let r = party_runtime::run_request(&req.to_string(), &opts).await;
    serde_json::to_value(r).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn examples_reach_succeeded_with_the_same_result_as_party_runtime_run() {
    let cluster = Cluster::start().await;
    for (example_name, task_name) in [("psi", "psi-example"), ("standard_scaler", "scaler-example")] {
        let root = data_root();
        let req = example(example_name);
        cluster.apply("team-a", task_for(task_name, &req, root.path(), json!({})));
        let t = cluster.wait_done("team-a", task_name, Duration::from_secs(60)).await;
        let status = &t["status"];
        assert_eq!(status["phase"], "Succeeded", "{}", serde_json::to_string_pretty(status).unwrap());
        let expected = local_result(&req).await;
        assert_eq!(expected["status"], "success");
        assert_eq!(status["result"]["status"], "success");
        assert_eq!(
            status["result"]["result"], expected["result"],
            "{task_name}: CR result differs from party-runtime run"
        );
        for party in ["alice", "bob"] {
            let p = &status["parties"][party];
            assert_eq!(p["phase"], "Succeeded", "{party}: {p}");
            assert!(p["metrics"]["bytes_sent"].as_u64().unwrap() > 0, "{party} reported its link counters");
            assert_eq!(p["progress"]["fraction"], 1.0);
        }
        assert!(status["performanceMetrics"]["total_execution_time"].as_f64().unwrap() > 0.0);
        assert_eq!(status["attempt"], 1);
        let conditions = status["conditions"].as_array().unwrap();
        assert!(conditions.iter().any(|c| c["type"] == "Complete" && c["status"] == "True"));
        // Outputs land in the party's data root, as with the local run.
        if example_name == "psi" {
            assert!(root.path().join("examples/out/alice_psi_out.csv").exists());
        }
        // No TLS settings: the link ran over mutual TLS with the certificates the operator issued.
        let link = conditions.iter().find(|c| c["type"] == "LinkTLS").unwrap();
        assert_eq!(link["reason"], "OperatorIssued");
        for party in ["alice", "bob"] {
            let pod = format!("{task_name}-{party}-1");
            let spec = &cluster.store.get("api/v1/pods", "team-a", &pod).unwrap()["spec"];
            let tls = spec["volumes"].as_array().unwrap().iter().find(|v| v["name"] == "link-tls").unwrap();
            assert_eq!(tls["secret"]["secretName"], format!("{task_name}-link-tls"));
            let log = cluster.pod_log(&pod);
            assert!(log.contains("link: mutual TLS") && !log.contains("plaintext"), "{pod}: {log}");
        }
    }
    // Kubernetes Events were recorded for the transitions.
    let events = cluster.store.list("apis/events.k8s.io/v1/events", Some("team-a"));
    let reasons: Vec<&str> = events.iter().filter_map(|e| e["reason"].as_str()).collect();
    assert!(reasons.contains(&"PodsCreated") && reasons.contains(&"Succeeded"), "{reasons:?}");
    // Deleting the task deletes its children (owner references).
    cluster.store.delete(secretflow_e2e::k8s::TASKS, "team-a", "psi-example");
    assert!(
        cluster
            .store
            .list("api/v1/pods", Some("team-a"))
            .iter()
            .all(|p| p["metadata"]["labels"]["secretflow.io/task"] != "psi-example")
    );
    assert!(cluster.store.get("api/v1/services", "team-a", "psi-example").is_none());
    assert!(cluster.store.get("api/v1/secrets", "team-a", "psi-example-link-tls").is_none(), "certificates go too");
    assert!(cluster.store.get("api/v1/secrets", "team-a", "scaler-example-link-tls").is_some());
}

/// A PSI slow enough to act on while it runs (ECDH over `n` generated rows per party).
pub(crate) fn slow_psi(root: &Path, n: usize) -> Value {
    for (party, offset) in [("alice", 0), ("bob", n / 2)] {
        let mut csv = String::from("uid,x\n");
        for i in offset..offset + n {
            csv.push_str(&format!("user-{i},{i}\n"));
        }
        std::fs::write(root.join(format!("{party}_in.csv")), csv).unwrap();
    }
    json!({
        "task_id": "dag-op", "subtask_id": "node-op", "execution_id": "exec-op",
        "sf_init_config": {"parties": ["alice", "bob"], "address": "local"},
        "task_config": {
            "task_type": "psi", "protocol": "ECDH_PSI_2PC", "receiver": "alice",
            "keys": {"alice": ["uid"], "bob": ["uid"]},
            "input_paths": {"alice": "alice_in.csv", "bob": "bob_in.csv"},
            "output_paths": {"alice": "alice_out.csv", "bob": "bob_out.csv"}
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_party_fails_the_task_naming_it_or_is_retried() {
    let cluster = Cluster::start().await;
    let root = data_root();
    let req = slow_psi(root.path(), 30_000);
    cluster.apply("ns", task_for("killed", &req, root.path(), json!({})));
    let kill = |pod: &str| {
        let pid = cluster.processes.pid(pod).expect("running pod");
        std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status().unwrap();
    };
    cluster
        .wait_task("ns", "killed", Duration::from_secs(30), |t| t["status"]["parties"]["alice"]["phase"] == "Running")
        .await;
    kill("killed-alice-1");
    let t = cluster.wait_done("ns", "killed", Duration::from_secs(60)).await;
    let status = &t["status"];
    assert_eq!(status["phase"], "Failed");
    let message = status["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("party alice failed in attempt 1"), "{message}");
    assert!(
        status["conditions"].as_array().unwrap().iter().any(|c| c["type"] == "Failed" && c["reason"] == "PartyFailed")
    );

    // With backoffLimit 1, the same kill is followed by a second attempt that succeeds.
    let root = data_root();
    let req = slow_psi(root.path(), 30_000);
    cluster.apply("ns", task_for("retried", &req, root.path(), json!({"backoffLimit": 1})));
    cluster
        .wait_task("ns", "retried", Duration::from_secs(30), |t| t["status"]["parties"]["alice"]["phase"] == "Running")
        .await;
    kill("retried-alice-1");
    let t = cluster.wait_done("ns", "retried", Duration::from_secs(120)).await;
    assert_eq!(t["status"]["phase"], "Succeeded", "{}", serde_json::to_string_pretty(&t["status"]).unwrap());
    assert_eq!(t["status"]["attempt"], 2);
    assert_eq!(t["status"]["result"]["result"]["intersection_count"], 15_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exceeded_deadline_fails_with_deadline_exceeded() {
    let cluster = Cluster::start().await;
    let root = data_root();
    let req = slow_psi(root.path(), 30_000);
    cluster.apply("ns", task_for("late", &req, root.path(), json!({"activeDeadlineSeconds": 1})));
    let t = cluster.wait_done("ns", "late", Duration::from_secs(30)).await;
    let status = &t["status"];
    assert_eq!(status["phase"], "Failed");
    assert_eq!(status["error"]["type"], "TimeoutError");
    assert!(status["conditions"].as_array().unwrap().iter().any(|c| c["reason"] == "DeadlineExceeded"));
    // Its pods are stopped.
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while cluster.processes.pid("late-alice-1").is_some() || cluster.processes.pid("late-bob-1").is_some() {
        assert!(std::time::Instant::now() < end, "the pods of the late task still run");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_task_fails_without_pods() {
    let cluster = Cluster::start().await;
    let root = data_root();
    let mut req = example("psi");
    req["task_config"]["protocol"] = "RR99".into();
    cluster.apply("ns", task_for("invalid", &req, root.path(), json!({})));
    let t = cluster.wait_done("ns", "invalid", Duration::from_secs(20)).await;
    assert_eq!(t["status"]["error"]["type"], "ValueError");
    assert!(t["status"]["error"]["message"].as_str().unwrap().contains("protocol"));
    assert!(cluster.store.list("api/v1/pods", Some("ns")).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bridge_kubernetes_executor_runs_a_request_as_a_task_once() {
    use secretflow_operator::bridge::executor::Executor;
    use secretflow_operator::bridge::kubernetes::{KubernetesExecutor, task_name};
    let cluster = Cluster::start().await;
    let root = data_root();
    let runtime = RuntimeSpec { data_root: Some(root.path().display().to_string()), ..test_runtime() };
    let executor = KubernetesExecutor::new(secretflow_e2e::k8s::client_for(&cluster.url), "bridge", runtime, None);
    let req = example("psi");
    let result = serde_json::to_value(executor.execute(&req).await).unwrap();
    let expected = local_result(&req).await;
    assert_eq!(result["status"], "success", "{result}");
    assert_eq!(result["result"], expected["result"]);
    // A redelivery of the same execution finds the finished task: same result, no new pods.
    let again = serde_json::to_value(executor.execute(&req).await).unwrap();
    assert_eq!(again["result"], expected["result"]);
    let name = task_name("exec-psi-0001");
    assert_eq!(cluster.store.list(secretflow_e2e::k8s::TASKS, Some("bridge")).len(), 1);
    assert!(cluster.task("bridge", &name).is_some());
    assert_eq!(cluster.store.list("api/v1/pods", Some("bridge")).len(), 2);
    // A failing request comes back as the documented failure.
    let mut bad = example("psi");
    bad["execution_id"] = "exec-psi-missing".into();
    bad["task_config"]["input_paths"]["bob"] = "examples/data/nope.csv".into();
    let failed = serde_json::to_value(executor.execute(&bad).await).unwrap();
    assert_eq!(failed["status"], "failure");
    assert_eq!(failed["error"]["type"], "FileNotFoundError", "{failed}");
    assert!(failed["error"]["message"].as_str().unwrap().contains("party bob"));
}

/// A redis-server on a free port, killed on drop.
struct RedisServer(std::process::Child, u16);

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_celery_message_runs_as_a_secretflow_task_through_the_bridge() {
    use base64::Engine;
    let cluster = Cluster::start().await;
    let root = data_root();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let redis_dir = tempfile::tempdir().unwrap();
    let redis = RedisServer(
        std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(redis_dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (tests/install-deps.sh)"),
        port,
    );
    let url = format!("redis://127.0.0.1:{}/0", redis.1);
    let runtime = json!({"dataRoot": root.path().display().to_string(), "linkTimeoutSeconds": 10}).to_string();
    let mut bridge =
        std::process::Command::new(secretflow_e2e::k8s::workspace_binary("secretflow-operator", "secretflow-operator"))
            .args(["bridge", "--broker", &url, "--executor", "kubernetes", "--k8s-namespace", "celery"])
            .args(["--k8s-runtime", &runtime])
            .env("KUBECONFIG", &cluster.kubeconfig)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = None;
    for _ in 0..200 {
        if let Ok(mut c) = client.get_connection() {
            let alive: Vec<String> =
                redis::cmd("KEYS").arg("secretflow-bridge:alive:*").query(&mut c).unwrap_or_default();
            if !alive.is_empty() {
                conn = Some(c);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut conn = conn.expect("the bridge did not come up");
    // The web container's message, as the captured sample, carrying the example PSI request.
    let sample: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("operator/tests/celery-samples/01_task_message.json")).unwrap(),
    )
    .unwrap();
    let req = example("psi");
    let body = json!([[req], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]);
    let mut env = sample["envelope"].clone();
    env["body"] = base64::engine::general_purpose::STANDARD.encode(body.to_string()).into();
    env["headers"]["id"] = "celery-k8s-1".into();
    env["properties"]["delivery_tag"] = "tag-k8s-1".into();
    redis::cmd("LPUSH").arg("secretflow_queue").arg(env.to_string()).query::<i64>(&mut conn).unwrap();
    let mut meta = Value::Null;
    for _ in 0..600 {
        let raw: Option<String> = redis::cmd("GET").arg("celery-task-meta-celery-k8s-1").query(&mut conn).unwrap();
        if let Some(raw) = raw {
            meta = serde_json::from_str(&raw).unwrap();
            if meta["status"] == "SUCCESS" {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = bridge.kill();
    let _ = bridge.wait();
    assert_eq!(meta["status"], "SUCCESS", "{meta}");
    let inner = &meta["result"]["result"];
    assert_eq!(inner["status"], "success", "{meta}");
    assert_eq!(inner["result"], local_result(&req).await["result"]);
    assert_eq!(inner["celery_metadata"]["celery_task_id"], "celery-k8s-1");
    assert_eq!(meta["result"]["execution_id"], "exec-psi-0001");
    // It ran as a SecretFlowTask in the bridge's namespace, through the operator's pods.
    let name = secretflow_operator::bridge::kubernetes::task_name("exec-psi-0001");
    assert_eq!(cluster.task("celery", &name).unwrap()["status"]["phase"], "Succeeded");
    assert_eq!(cluster.store.list("api/v1/pods", Some("celery")).len(), 2);
}

/// An ABY3 SS-LR among three parties (carol, the third node, holds no data) slow enough to act on while it
/// trains: `n` generated rows, alice holding two features and the label, bob two features.
fn slow_aby3_lr(root: &Path, n: usize) -> Value {
    let (mut a, mut b) = (String::from("a0,a1,y\n"), String::from("b0,b1\n"));
    for i in 0..n {
        let v = |k: usize| ((i * (2 * k + 7919) + k * 104_729) % 1000) as f64 / 500.0 - 1.0;
        let y = u8::from(v(0) + v(1) - v(2) + 0.5 * v(3) > 0.0);
        a.push_str(&format!("{},{},{y}\n", v(0), v(1)));
        b.push_str(&format!("{},{}\n", v(2), v(3)));
    }
    std::fs::write(root.join("alice_lr.csv"), a).unwrap();
    std::fs::write(root.join("bob_lr.csv"), b).unwrap();
    json!({
        "task_id": "dag-op", "subtask_id": "node-aby3", "execution_id": "exec-aby3",
        "sf_init_config": {"parties": ["alice", "bob", "carol"], "address": "local"},
        "spu_config": {"cluster_def": {
            "nodes": [{"party": "alice", "address": "127.0.0.1:1"}, {"party": "bob", "address": "127.0.0.1:2"},
                      {"party": "carol", "address": "127.0.0.1:3"}],
            "runtime_config": {"protocol": "ABY3", "field": "FM64"}}},
        "task_config": {
            "task_type": "ss_lr", "train_data": {"alice": "alice_lr.csv", "bob": "bob_lr.csv"},
            "features": ["a0", "a1", "b0", "b1"], "label": "y", "label_party": "alice",
            "model_output": {"alice": "alice_model.json", "bob": "bob_model.json"},
            "params": {"epochs": 200, "batch_size": 64, "learning_rate": 0.1}
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_third_party_fails_an_aby3_task_naming_it() {
    let cluster = Cluster::start().await;
    let root = data_root();
    let req = slow_aby3_lr(root.path(), 20_000);
    cluster.apply("ns", task_for("three", &req, root.path(), json!({})));
    let t = cluster
        .wait_task("ns", "three", Duration::from_secs(30), |t| {
            ["alice", "bob", "carol"].iter().all(|p| t["status"]["parties"][p]["phase"] == "Running")
        })
        .await;
    assert_eq!(t["status"]["parties"].as_object().unwrap().len(), 3, "one pod per party");
    let pid = cluster.processes.pid("three-carol-1").expect("carol's pod runs");
    std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status().unwrap();
    let t = cluster.wait_done("ns", "three", Duration::from_secs(60)).await;
    let status = &t["status"];
    assert_eq!(status["phase"], "Failed", "{}", serde_json::to_string_pretty(status).unwrap());
    let message = status["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("party carol failed in attempt 1"), "{message}");
}
