//! `examples/k8s/*.yaml`: one SecretFlowTask per example request (same ids, parties and task_config), kept
//! current by this test (`UPDATE_EXAMPLES=1` rewrites them), and each run through the stand-in cluster to
//! `Succeeded` with the same result as `party-runtime run` on the request.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use secretflow_crds::WorkerRequest;
use secretflow_crds::convert::spec_for_request;
use secretflow_crds::crd::{DataVolume, RuntimeSpec, SecretFlowTask};
use secretflow_e2e::k8s::Cluster;
use secretflow_e2e::repo_root;

const HEADER: &str = "# Generated from examples/requests by tests/e2e/k8s_examples.rs (UPDATE_EXAMPLES=1 to refresh).\n\
# The paths in taskConfig are relative to each party's data root (/app/data): put the repository's examples/\n\
# folder on the `secretflow-examples` volume, then `kubectl apply -f` this file.\n";

fn requests() -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = std::fs::read_dir(repo_root().join("examples/requests"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let stem = p.file_stem().unwrap().to_string_lossy().to_string();
            (stem, serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap())
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The SecretFlowTask for an example request ([`spec_for_request`]), on the examples' data volume. Only tasks
/// on the MPC device keep their SPU configuration (the others do not need it).
fn task(stem: &str, req: &Value) -> Value {
    let runtime = RuntimeSpec {
        data_volume: Some(DataVolume {
            claim_name: Some("secretflow-examples".into()),
            host_path: None,
            read_only: None,
        }),
        data_root: Some("/app/data".into()),
        ..RuntimeSpec::default()
    };
    let mut spec = spec_for_request(&WorkerRequest::parse(&req.to_string()).unwrap(), runtime);
    spec.ttl_seconds_after_finished = Some(86400);
    if !MPC_TASKS.contains(&req["task_config"]["task_type"].as_str().unwrap_or_default()) {
        spec.spu = None;
    }
    let name = format!("example-{}", stem.replace('_', "-"));
    serde_json::to_value(SecretFlowTask::new(&name, spec)).unwrap()
}

/// Task types that run on the MPC device: their results carry fixed-point noise (truncation is exact to
/// one unit in the last place, which unit depends on the random shares), so they are compared within 1e-3.
const MPC_TASKS: [&str; 4] = ["ss_lr", "ss_xgb", "pearson_correlation", "vif"];

/// Equal JSON, numbers within `tol`.
fn assert_close(a: &Value, b: &Value, tol: f64, at: &str) {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!((x - y).abs() <= tol * y.abs().max(1.0), "{at}: {x} vs {y}");
        }
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>(), "{at}");
            // Per-phase timings and traffic (training_metrics.phases) describe the run, not the result.
            for (k, v) in x.iter().filter(|(k, _)| *k != "phases") {
                assert_close(v, &y[k], tol, &format!("{at}.{k}"));
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{at}");
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                assert_close(v, w, tol, &format!("{at}[{i}]"));
            }
        }
        _ => assert_eq!(a, b, "{at}"),
    }
}

fn path(stem: &str) -> PathBuf {
    repo_root().join("examples/k8s").join(format!("{}.yaml", stem.replace('_', "-")))
}

#[test]
fn committed_examples_are_current() {
    for (stem, req) in requests() {
        let generated = format!("{HEADER}{}", serde_saphyr::to_string(&task(&stem, &req)).unwrap());
        if std::env::var_os("UPDATE_EXAMPLES").is_some() {
            std::fs::create_dir_all(repo_root().join("examples/k8s")).unwrap();
            std::fs::write(path(&stem), &generated).unwrap();
        }
        let committed = std::fs::read_to_string(path(&stem)).unwrap_or_default();
        assert!(
            committed == generated,
            "{} is stale: UPDATE_EXAMPLES=1 cargo test -p secretflow-e2e k8s_examples",
            path(&stem).display()
        );
        // And it is a valid SecretFlowTask.
        let v: Value = serde_saphyr::from_str(&committed).unwrap();
        let t: secretflow_crds::crd::SecretFlowTask = serde_json::from_value(v).unwrap();
        assert_eq!(t.spec.task_config, req["task_config"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_task_succeeds_with_the_local_result() {
    let cluster = Cluster::start().await;
    let root = crate::operator::data_root();
    let mut names = Vec::new();
    for (stem, _) in requests() {
        let text = std::fs::read_to_string(path(&stem)).unwrap();
        let mut t: Value = serde_saphyr::from_str(&text).unwrap();
        // The stand-in kubelet runs pods on this machine: the data root is a host folder.
        t["spec"]["runtime"] = json!({"dataRoot": root.path().display().to_string()});
        names.push((stem, t["metadata"]["name"].as_str().unwrap().to_string()));
        cluster.apply("examples", t);
    }
    for (stem, name) in names {
        let t = cluster.wait_done("examples", &name, Duration::from_secs(120)).await;
        assert_eq!(
            t["status"]["phase"],
            "Succeeded",
            "{stem}: {}",
            serde_json::to_string_pretty(&t["status"]).unwrap()
        );
        let req: Value = serde_json::from_str(
            &std::fs::read_to_string(repo_root().join(format!("examples/requests/{stem}.json"))).unwrap(),
        )
        .unwrap();
        let expected = crate::operator::local_result(&req).await;
        if MPC_TASKS.contains(&req["task_config"]["task_type"].as_str().unwrap_or_default()) {
            assert_close(&t["status"]["result"]["result"], &expected["result"], 1e-3, &stem);
        } else {
            assert_eq!(t["status"]["result"]["result"], expected["result"], "{stem}");
        }
    }
}
