//! SecretFlowPipelines through the real controller loop: the example in examples/k8s/pipeline.yaml runs every
//! step in order to the evaluation's AUC, a failing step fails the pipeline naming the step and the party, an
//! invalid pipeline fails before any task exists, and the API server refuses a spec edit.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use secretflow_crds::pipeline::SecretFlowPipeline;
use secretflow_e2e::k8s::{Cluster, PIPELINES, TASKS, client_for};
use secretflow_e2e::repo_root;

use crate::observability::{http_get, sample};
use crate::operator::data_root;

/// The committed example pipeline.
fn example() -> Value {
    let text = std::fs::read_to_string(repo_root().join("examples/k8s/pipeline.yaml")).unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

fn terminal(p: &Value) -> bool {
    matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed"))
}

/// A pipeline's steps by name.
fn steps(p: &Value) -> BTreeMap<String, Value> {
    let list = p["status"]["steps"].as_array().cloned().unwrap_or_default();
    list.into_iter().map(|s| (s["name"].as_str().unwrap().to_string(), s)).collect()
}

#[test]
fn the_example_is_a_valid_pipeline() {
    let p: SecretFlowPipeline = serde_json::from_value(example()).unwrap();
    let mut schema_checked = example();
    let crd = serde_json::to_value(<SecretFlowPipeline as kube::CustomResourceExt>::crd()).unwrap();
    secretflow_e2e::k8s::schema::admit(&crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"], &mut schema_checked)
        .unwrap();
    assert_eq!(schema_checked, example(), "the schema prunes nothing from the example");
    let order = p.spec.order().unwrap();
    let names: Vec<&str> = order.iter().map(|&i| p.spec.steps[i].name.as_str()).collect();
    assert_eq!(names, ["psi", "fillna", "statistics", "scale", "train", "evaluate"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_pipeline_runs_every_step_in_order_to_the_evaluation() {
    let cluster = Cluster::start().await;
    let root = data_root();
    let mut p = example();
    // The stand-in kubelet runs pods on this machine: the data root is a host folder.
    p["spec"]["runtime"] = json!({"dataRoot": root.path().display().to_string(), "linkTimeoutSeconds": 10});
    cluster.store.create(PIPELINES, "ml", p).unwrap();
    let done = cluster.wait_pipeline("ml", "penguins", Duration::from_secs(300), terminal).await;
    let status = &done["status"];
    assert_eq!(status["phase"], "Succeeded", "{}", serde_json::to_string_pretty(status).unwrap());
    assert_eq!(status["progress"], "6/6");
    assert!(status["startTime"].is_string() && status["completionTime"].is_string());
    let steps = steps(&done);
    for (name, s) in &steps {
        assert_eq!(s["phase"], "Succeeded", "{name}");
        let task = cluster.store.get(TASKS, "ml", &format!("penguins-{name}")).unwrap();
        assert_eq!(task["spec"]["taskId"], "penguins");
        assert_eq!(task["spec"]["subtaskId"], name.as_str());
        assert_eq!(task["metadata"]["ownerReferences"][0]["kind"], "SecretFlowPipeline");
        assert_eq!(task["status"]["phase"], "Succeeded");
    }
    // Every step started only once the steps it depends on had ended (times are to the second).
    let pipeline: SecretFlowPipeline = serde_json::from_value(done.clone()).unwrap();
    for step in &pipeline.spec.steps {
        for dep in &step.depends_on {
            let started = steps[&step.name]["startTime"].as_str().unwrap();
            let dep_done = steps[dep]["completionTime"].as_str().unwrap();
            assert!(dep_done <= started, "{} started at {started}, before {dep} ended at {dep_done}", step.name);
        }
    }
    let auc = steps["evaluate"]["result"]["metrics"]["auc"].as_f64().unwrap();
    assert!(auc > 0.95, "AUC {auc}");
    assert_eq!(steps["psi"]["result"]["intersection_count"], 274, "{}", steps["psi"]["result"]);
    let events = cluster.store.list("apis/events.k8s.io/v1/events", Some("ml"));
    // One Event per step and reason, on the pipeline, with the step's task as the related object.
    let of_pipeline = |reason: &str| {
        let mut related: Vec<String> = events
            .iter()
            .filter(|e| e["regarding"]["kind"] == "SecretFlowPipeline" && e["reason"] == reason)
            .map(|e| e["related"]["name"].as_str().unwrap_or_default().to_string())
            .collect();
        related.sort();
        related
    };
    let tasks: Vec<String> = steps.keys().map(|s| format!("penguins-{s}")).collect();
    assert_eq!(of_pipeline("StepStarted"), tasks);
    assert_eq!(of_pipeline("StepSucceeded"), tasks);
    assert_eq!(of_pipeline("Succeeded"), [""]);
    // The pipelines-by-phase gauge follows (its last reconcile may land a moment after the status write).
    let end = std::time::Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = http_get(&cluster.metrics).await;
        if sample(&text, "secretflow_pipelines{phase=\"Succeeded\"}") == Some(1.0) || std::time::Instant::now() > end {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(sample(&text, "secretflow_pipelines{phase=\"Succeeded\"}"), Some(1.0), "{text}");
    assert_eq!(sample(&text, "secretflow_pipelines{phase=\"Running\"}"), Some(0.0), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_step_fails_the_pipeline_naming_the_step_and_the_party() {
    let cluster = Cluster::start().await;
    let root = data_root();
    let mut p = example();
    p["metadata"]["name"] = json!("broken");
    p["spec"]["runtime"] = json!({"dataRoot": root.path().display().to_string(), "linkTimeoutSeconds": 10});
    p["spec"]["steps"][0]["taskConfig"]["input_paths"]["bob"] = json!("examples/data/missing.csv");
    cluster.store.create(PIPELINES, "ml", p).unwrap();
    let done = cluster.wait_pipeline("ml", "broken", Duration::from_secs(120), terminal).await;
    let status = &done["status"];
    assert_eq!(status["phase"], "Failed", "{}", serde_json::to_string_pretty(status).unwrap());
    let message = status["error"]["message"].as_str().unwrap();
    assert!(message.contains("step psi (task broken-psi) failed"), "{message}");
    assert!(message.contains("party bob") && message.contains("missing.csv"), "{message}");
    let steps = steps(&done);
    assert_eq!(steps["psi"]["phase"], "Failed");
    for later in ["fillna", "statistics", "scale", "train", "evaluate"] {
        assert_eq!(steps[later]["phase"], "Skipped", "{later}");
        assert!(cluster.store.get(TASKS, "ml", &format!("broken-{later}")).is_none(), "{later} never started");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_pipeline_fails_before_any_task_and_its_spec_cannot_be_edited() {
    let cluster = Cluster::start_with(false).await;
    let mut p = example();
    p["metadata"]["name"] = json!("invalid");
    p["spec"]["steps"][3]["dependsOn"] = json!(["filna"]);
    cluster.store.create(PIPELINES, "ml", p).unwrap();
    let done = cluster.wait_pipeline("ml", "invalid", Duration::from_secs(30), terminal).await;
    assert_eq!(done["status"]["phase"], "Failed");
    assert_eq!(done["status"]["error"]["type"], "ValueError");
    let message = done["status"]["error"]["message"].as_str().unwrap();
    assert_eq!(message, "spec.steps[3].dependsOn: step `scale` depends on unknown step `filna`");
    assert!(cluster.store.list(TASKS, Some("ml")).is_empty());

    // The spec is immutable (the CRD's CEL rule): the API server answers 422 with the rule's message.
    let api: Api<SecretFlowPipeline> = Api::namespaced(client_for(&cluster.url), "ml");
    let edit = json!({"spec": {"parallelism": 1}});
    let refused = api.patch("invalid", &PatchParams::default(), &Patch::Merge(&edit)).await.unwrap_err();
    let kube::Error::Api(status) = refused else { panic!("{refused}") };
    assert_eq!(status.code, 422, "{status:?}");
    assert!(status.message.contains("spec: Invalid value") && status.message.contains("immutable"), "{status:?}");
    // Status writes (the operator's) still go through.
    let status_patch = json!({"status": {"progress": "0/6"}});
    api.patch_status("invalid", &PatchParams::default(), &Patch::Merge(&status_patch)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_restarted_again_and_again_creates_each_step_once() {
    let mut cluster = Cluster::start().await;
    let root = data_root();
    let mut p = example();
    p["metadata"]["name"] = json!("restarts");
    p["spec"]["runtime"] = json!({"dataRoot": root.path().display().to_string(), "linkTimeoutSeconds": 10});
    let mut changes = cluster.store.subscribe();
    cluster.store.create(PIPELINES, "ml", p).unwrap();
    let mut restarts = 0;
    let end = std::time::Instant::now() + Duration::from_secs(300);
    while !cluster.store.get(PIPELINES, "ml", "restarts").is_some_and(|p| terminal(&p)) {
        assert!(std::time::Instant::now() < end, "timed out");
        tokio::time::sleep(Duration::from_millis(250)).await;
        cluster.restart_controller();
        restarts += 1;
    }
    let done = cluster.store.get(PIPELINES, "ml", "restarts").unwrap();
    assert_eq!(done["status"]["phase"], "Succeeded", "{}", serde_json::to_string_pretty(&done["status"]).unwrap());
    assert!(restarts >= 4, "only {restarts} restarts");
    let mut created = Vec::new();
    while let Ok(c) = changes.try_recv() {
        if c.resource == TASKS && c.kind == "ADDED" {
            created.push(c.object["metadata"]["name"].as_str().unwrap().to_string());
        }
    }
    created.sort();
    let steps = ["evaluate", "fillna", "psi", "scale", "statistics", "train"];
    assert_eq!(created, steps.map(|s| format!("restarts-{s}")), "each step's task created once");
}
