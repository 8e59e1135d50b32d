//! Reconcile unit tests: every transition, without a server.

use jiff::Timestamp;
use serde_json::{Value, json};

use secretflow_crds::crd::{SecretFlowTask, SecretFlowTaskSpec, SecretFlowTaskStatus};

use super::children::Defaults;
use super::reconcile::{Action, EventKind, Observed, ObservedPod, Plan, PodPhase, reconcile};

/// A PSI task `ns/psi-1` between alice and bob, with `overrides` merged into its spec.
pub fn task(overrides: Value) -> SecretFlowTask {
    let mut spec = json!({
        "taskId": "dag-1", "subtaskId": "node-1", "executionId": "exec-1",
        "parties": [{"name": "alice"}, {"name": "bob"}],
        "taskConfig": {
            "task_type": "psi", "keys": {"alice": ["uid"], "bob": ["uid"]},
            "input_paths": {"alice": "/app/data/a.csv", "bob": "/app/data/b.csv"},
            "output_paths": {"alice": "/app/data/a_out.csv", "bob": "/app/data/b_out.csv"},
            "receiver": "alice"
        }
    });
    for (k, v) in overrides.as_object().unwrap() {
        spec[k] = v.clone();
    }
    let spec: SecretFlowTaskSpec = serde_json::from_value(spec).unwrap();
    let mut t = SecretFlowTask::new("psi-1", spec);
    t.metadata.namespace = Some("ns".into());
    t.metadata.uid = Some("uid-1".into());
    t.metadata.generation = Some(1);
    t
}

fn now() -> Timestamp {
    "2026-11-28T10:00:00Z".parse().unwrap()
}

fn at(secs: i64) -> Timestamp {
    now().checked_add(jiff::SignedDuration::from_secs(secs)).unwrap()
}

fn pod(party: &str, attempt: i32, phase: PodPhase) -> ObservedPod {
    let exit_code = match phase {
        PodPhase::Succeeded => Some(0),
        PodPhase::Failed => Some(1),
        _ => None,
    };
    ObservedPod {
        name: format!("psi-1-{party}-{attempt}"),
        party: party.into(),
        attempt,
        phase,
        exit_code,
        message: None,
        deleting: false,
        finished_at: None,
    }
}

fn created(o: Vec<ObservedPod>) -> Observed {
    Observed { service: true, config_map: true, secret: true, pods: o }
}

/// Apply a plan's status patch onto the task, as the API server's merge patch would.
fn apply(t: &mut SecretFlowTask, plan: &Plan) {
    let mut status = serde_json::to_value(t.status.clone().unwrap_or_default()).unwrap();
    merge(&mut status, &plan.status_patch);
    t.status = Some(serde_json::from_value::<SecretFlowTaskStatus>(status).unwrap());
}

fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// Reconcile and apply the status patch; returns the plan.
fn step(t: &mut SecretFlowTask, observed: &Observed, at: Timestamp) -> Plan {
    let plan = reconcile(t, observed, at, &Defaults::default());
    apply(t, &plan);
    plan
}

fn pods_created(plan: &Plan) -> Vec<String> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::CreatePod(p) => p.metadata.name.clone(),
            _ => None,
        })
        .collect()
}

fn deleted(plan: &Plan) -> Vec<String> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::DeletePod(n) => Some(n.clone()),
            _ => None,
        })
        .collect()
}

fn reasons(plan: &Plan) -> Vec<(EventKind, String)> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::Event { kind, reason, .. } => Some((*kind, reason.clone())),
            _ => None,
        })
        .collect()
}

fn phase(t: &SecretFlowTask) -> String {
    serde_json::to_value(t.status.as_ref().unwrap().phase).unwrap().as_str().unwrap_or("").to_string()
}

#[test]
fn a_new_task_gets_its_service_config_map_and_one_pod_per_party() {
    let t = task(json!({}));
    let plan = reconcile(&t, &Observed::default(), now(), &Defaults::default());
    assert!(matches!(plan.actions[0], Action::CreateService(_)));
    assert!(matches!(plan.actions[1], Action::CreateConfigMap(_)));
    assert!(matches!(plan.actions[2], Action::CreateSecret(_)), "the link certificates come before the pods");
    assert_eq!(pods_created(&plan), ["psi-1-alice-1", "psi-1-bob-1"]);
    assert_eq!(plan.status_patch["attempt"], 1);
    assert_eq!(plan.status_patch["startTime"], "2026-11-28T10:00:00Z");
    assert!(reasons(&plan).contains(&(EventKind::Normal, "PodsCreated".into())));
    // Observing them again creates nothing more.
    let mut t = t;
    apply(&mut t, &plan);
    let plan = reconcile(
        &t,
        &created(vec![pod("alice", 1, PodPhase::Pending), pod("bob", 1, PodPhase::Pending)]),
        at(1),
        &Defaults::default(),
    );
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert_eq!(phase(&t), "Pending");
    assert!(plan.status_patch.get("phase").is_none(), "an unchanged phase is not patched again");
}

#[test]
fn an_invalid_spec_fails_without_pods() {
    let mut bad = task(json!({}));
    bad.spec.task_config["protocol"] = "NO_SUCH_PSI".into();
    let plan = reconcile(&bad, &Observed::default(), now(), &Defaults::default());
    assert!(plan.actions.iter().all(|a| matches!(a, Action::Event { .. })), "{:?}", plan.actions);
    assert_eq!(plan.status_patch["phase"], "Failed");
    assert_eq!(plan.status_patch["error"]["type"], "ValueError");
    assert!(plan.status_patch["error"]["message"].as_str().unwrap().contains("task_config.protocol"));
    let conditions = plan.status_patch["conditions"].as_array().unwrap();
    assert!(
        conditions.iter().any(|c| c["type"] == "Validated" && c["status"] == "False" && c["reason"] == "InvalidSpec")
    );
}

#[test]
fn running_then_succeeded_with_aggregated_metrics() {
    let mut t = task(json!({}));
    let plan = reconcile(&t, &Observed::default(), now(), &Defaults::default());
    apply(&mut t, &plan);
    let plan = reconcile(
        &t,
        &created(vec![pod("alice", 1, PodPhase::Running), pod("bob", 1, PodPhase::Pending)]),
        at(2),
        &Defaults::default(),
    );
    apply(&mut t, &plan);
    assert_eq!(phase(&t), "Running");
    // The parties report their own progress and metrics (the runtime's patches).
    let s = t.status.as_mut().unwrap();
    for (p, f, bytes) in [("alice", 0.5, 10), ("bob", 0.25, 20)] {
        s.parties.insert(
            p.into(),
            serde_json::from_value(json!({"phase": "Running",
            "progress": {"fraction": f, "phase": "psi: oprf"},
            "metrics": {"total_execution_time": f, "bytes_sent": bytes}}))
            .unwrap(),
        );
    }
    let plan = reconcile(
        &t,
        &created(vec![pod("alice", 1, PodPhase::Running), pod("bob", 1, PodPhase::Running)]),
        at(3),
        &Defaults::default(),
    );
    assert_eq!(plan.status_patch["progress"]["fraction"], 0.375);
    apply(&mut t, &plan);
    let plan = reconcile(
        &t,
        &created(vec![pod("alice", 1, PodPhase::Succeeded), pod("bob", 1, PodPhase::Succeeded)]),
        at(4),
        &Defaults::default(),
    );
    assert_eq!(plan.status_patch["phase"], "Succeeded");
    assert_eq!(plan.status_patch["completionTime"], "2026-11-28T10:00:04Z");
    assert_eq!(plan.status_patch["performanceMetrics"]["bytes_sent"], 30);
    assert_eq!(plan.status_patch["performanceMetrics"]["total_execution_time"], 0.5);
    assert!(reasons(&plan).contains(&(EventKind::Normal, "Succeeded".into())));
    assert!(plan.requeue.is_none());
}

#[test]
fn a_failed_party_fails_the_task_naming_it_and_stops_the_other() {
    let mut t = task(json!({}));
    step(&mut t, &Observed::default(), now());
    t.status.as_mut().unwrap().parties.insert(
        "bob".into(),
        serde_json::from_value(json!({"phase": "Failed",
            "error": {"type": "FileNotFoundError", "message": "party bob: /app/data/b.csv not found", "traceback": ""}})).unwrap(),
    );
    let mut failed = pod("bob", 1, PodPhase::Failed);
    failed.message = Some("lots of log\nlast line: b.csv not found".into());
    let plan = reconcile(&t, &created(vec![pod("alice", 1, PodPhase::Running), failed]), at(5), &Defaults::default());
    assert_eq!(plan.status_patch["phase"], "Failed");
    assert_eq!(plan.status_patch["error"]["type"], "FileNotFoundError");
    let msg = plan.status_patch["error"]["message"].as_str().unwrap();
    assert!(msg.starts_with("party bob failed in attempt 1: FileNotFoundError: party bob"), "{msg}");
    // alice still runs and is stopped; bob's failed pod is kept for its logs.
    assert_eq!(deleted(&plan), ["psi-1-alice-1"]);
    assert!(reasons(&plan).contains(&(EventKind::Warning, "PartyFailed".into())));
}

#[test]
fn a_pod_failure_without_a_report_carries_its_termination_message() {
    let mut t = task(json!({}));
    step(&mut t, &Observed::default(), now());
    let mut killed = pod("alice", 1, PodPhase::Failed);
    killed.exit_code = Some(137);
    let plan =
        reconcile(&t, &created(vec![killed.clone(), pod("bob", 1, PodPhase::Running)]), at(5), &Defaults::default());
    assert_eq!(plan.status_patch["error"]["message"], "party alice failed in attempt 1: exited with code 137");
    killed.message = Some("l1\nl2\nl3\nl4\nl5\nl6\nOOMKilled".into());
    let plan = reconcile(&t, &created(vec![killed, pod("bob", 1, PodPhase::Running)]), at(5), &Defaults::default());
    assert_eq!(plan.status_patch["error"]["message"], "party alice failed in attempt 1: l3\nl4\nl5\nl6\nOOMKilled");
}

#[test]
fn backoff_limit_reruns_the_whole_attempt() {
    let mut t = task(json!({"backoffLimit": 1}));
    step(&mut t, &Observed::default(), now());
    t.status
        .as_mut()
        .unwrap()
        .parties
        .insert("alice".into(), serde_json::from_value(json!({"phase": "Running"})).unwrap());
    let first = vec![pod("alice", 1, PodPhase::Running), pod("bob", 1, PodPhase::Failed)];
    let plan = reconcile(&t, &created(first.clone()), at(10), &Defaults::default());
    assert_eq!(plan.status_patch["attempt"], 2);
    assert_eq!(plan.status_patch["phase"], "Pending");
    assert_eq!(plan.status_patch["startTime"], "2026-11-28T10:00:10Z");
    assert_eq!(plan.status_patch["parties"], json!({"alice": null}));
    assert_eq!(deleted(&plan), ["psi-1-alice-1"]);
    assert!(reasons(&plan).contains(&(EventKind::Warning, "Retrying".into())));
    apply(&mut t, &plan);
    let mut observed = first;
    observed[0].deleting = true;
    let plan = reconcile(&t, &created(observed.clone()), at(11), &Defaults::default());
    assert_eq!(pods_created(&plan), ["psi-1-alice-2", "psi-1-bob-2"]);
    apply(&mut t, &plan);
    // The second attempt fails too: no more retries.
    observed.extend([pod("alice", 2, PodPhase::Failed), pod("bob", 2, PodPhase::Running)]);
    let plan = reconcile(&t, &created(observed), at(20), &Defaults::default());
    assert_eq!(plan.status_patch["phase"], "Failed");
    assert!(plan.status_patch["error"]["message"].as_str().unwrap().contains("party alice failed in attempt 2"));
    assert_eq!(deleted(&plan), ["psi-1-bob-2"]);
}

#[test]
fn the_deadline_ends_the_attempt() {
    let mut t = task(json!({"activeDeadlineSeconds": 30, "backoffLimit": 3}));
    let plan = reconcile(&t, &Observed::default(), now(), &Defaults::default());
    assert_eq!(plan.requeue, Some(std::time::Duration::from_secs(30)));
    apply(&mut t, &plan);
    let running = created(vec![pod("alice", 1, PodPhase::Running), pod("bob", 1, PodPhase::Running)]);
    let plan = reconcile(&t, &running, at(20), &Defaults::default());
    assert_eq!(plan.requeue, Some(std::time::Duration::from_secs(10)));
    let plan = reconcile(&t, &running, at(30), &Defaults::default());
    assert_eq!(plan.status_patch["phase"], "Failed");
    assert_eq!(plan.status_patch["error"]["type"], "TimeoutError");
    let conditions = plan.status_patch["conditions"].as_array().unwrap();
    assert!(conditions.iter().any(|c| c["type"] == "Failed" && c["reason"] == "DeadlineExceeded"));
    assert_eq!(deleted(&plan), ["psi-1-alice-1", "psi-1-bob-1"]);
}

#[test]
fn ttl_deletes_the_finished_task() {
    let mut t = task(json!({"ttlSecondsAfterFinished": 60}));
    step(&mut t, &Observed::default(), now());
    let done = created(vec![pod("alice", 1, PodPhase::Succeeded), pod("bob", 1, PodPhase::Succeeded)]);
    let plan = reconcile(&t, &done, at(5), &Defaults::default());
    assert_eq!(plan.requeue, Some(std::time::Duration::from_secs(60)));
    apply(&mut t, &plan);
    let plan = reconcile(&t, &done, at(30), &Defaults::default());
    assert_eq!(plan.requeue, Some(std::time::Duration::from_secs(35)));
    assert!(plan.actions.is_empty());
    let plan = reconcile(&t, &done, at(65), &Defaults::default());
    assert!(matches!(plan.actions.as_slice(), [Action::DeleteTask]));
    // Without a TTL the task stays.
    let mut keep = task(json!({}));
    step(&mut keep, &Observed::default(), now());
    step(&mut keep, &done, at(5));
    assert!(reconcile(&keep, &done, at(100_000), &Defaults::default()).actions.is_empty());
}

#[test]
fn external_parties_get_no_pod_and_do_not_block_success() {
    let mut t =
        task(json!({"parties": [{"name": "alice"}, {"name": "bob", "external": {"address": "bob.example:9400"}}]}));
    let plan = reconcile(&t, &Observed::default(), now(), &Defaults::default());
    assert_eq!(pods_created(&plan), ["psi-1-alice-1"]);
    apply(&mut t, &plan);
    let plan = reconcile(&t, &created(vec![pod("alice", 1, PodPhase::Succeeded)]), at(3), &Defaults::default());
    assert_eq!(plan.status_patch["phase"], "Succeeded");
    let all_external = task(
        json!({"parties": [{"name": "alice", "external": {"address": "a:1"}}, {"name": "bob", "external": {"address": "b:1"}}]}),
    );
    let plan = reconcile(&all_external, &Observed::default(), now(), &Defaults::default());
    assert_eq!(plan.status_patch["phase"], "Failed");
}

#[test]
fn a_finished_task_stops_leftover_pods() {
    let mut t = task(json!({}));
    step(&mut t, &Observed::default(), now());
    step(&mut t, &created(vec![pod("alice", 1, PodPhase::Failed), pod("bob", 1, PodPhase::Running)]), at(1));
    assert_eq!(phase(&t), "Failed");
    let plan = reconcile(
        &t,
        &created(vec![pod("alice", 1, PodPhase::Failed), pod("bob", 1, PodPhase::Running)]),
        at(2),
        &Defaults::default(),
    );
    assert_eq!(deleted(&plan), ["psi-1-bob-1"]);
    assert_eq!(plan.status_patch, json!({}));
}

#[test]
fn the_root_cause_is_named_not_the_peer_that_lost_its_link() {
    let mut t = task(json!({}));
    step(&mut t, &Observed::default(), now());
    let report = |error: Value, blamed: Option<&str>| -> secretflow_crds::crd::PartyStatus {
        serde_json::from_value(json!({"phase": "Failed", "finishedAt": "2026-11-28T10:00:05Z", "error": error,
                                      "blamedPeer": blamed}))
        .unwrap()
    };
    let echo = json!({"type": "RuntimeError", "message": "party alice: peer bob failed: FileNotFoundError: ...", "traceback": ""});
    let cause =
        json!({"type": "FileNotFoundError", "message": "party bob: /app/data/b.csv not found", "traceback": ""});
    t.status.as_mut().unwrap().parties.insert("alice".into(), report(echo, Some("bob")));
    // bob still runs: wait for its own report.
    let plan = reconcile(
        &t,
        &created(vec![pod("alice", 1, PodPhase::Failed), pod("bob", 1, PodPhase::Running)]),
        at(6),
        &Defaults::default(),
    );
    assert!(plan.status_patch.get("phase").is_none(), "{}", plan.status_patch);
    assert_eq!(plan.requeue, Some(std::time::Duration::from_secs(1)));
    // bob reports: bob is named even though alice comes first.
    t.status.as_mut().unwrap().parties.insert("bob".into(), report(cause, None));
    let both = created(vec![pod("alice", 1, PodPhase::Failed), pod("bob", 1, PodPhase::Failed)]);
    let plan = reconcile(&t, &both, at(7), &Defaults::default());
    assert_eq!(plan.status_patch["error"]["type"], "FileNotFoundError");
    assert!(plan.status_patch["error"]["message"].as_str().unwrap().starts_with("party bob failed"));
    // A peer that never reports does not hold the task up for long.
    let mut t2 = task(json!({}));
    step(&mut t2, &Observed::default(), now());
    t2.status.as_mut().unwrap().parties.insert(
        "alice".into(),
        report(
            json!({"type": "RuntimeError", "message": "party alice: link to peer `bob` failed", "traceback": ""}),
            Some("bob"),
        ),
    );
    let plan = reconcile(
        &t2,
        &created(vec![pod("alice", 1, PodPhase::Failed), pod("bob", 1, PodPhase::Running)]),
        at(11),
        &Defaults::default(),
    );
    assert_eq!(plan.status_patch["phase"], "Failed");
}

#[test]
fn a_failed_pod_waits_briefly_for_its_own_report() {
    let mut t = task(json!({}));
    step(&mut t, &Observed::default(), now());
    let mut failed = pod("bob", 1, PodPhase::Failed);
    failed.finished_at = Some(at(4));
    let observed = created(vec![pod("alice", 1, PodPhase::Running), failed]);
    let plan = reconcile(&t, &observed, at(5), &Defaults::default());
    assert!(plan.status_patch.get("phase").is_none() && plan.requeue == Some(std::time::Duration::from_secs(1)));
    // The report arrives: decided with it.
    t.status.as_mut().unwrap().parties.insert(
        "bob".into(),
        serde_json::from_value(json!({"phase": "Failed",
        "error": {"type": "FileNotFoundError", "message": "party bob: b.csv not found", "traceback": ""}}))
        .unwrap(),
    );
    let plan = reconcile(&t, &observed, at(6), &Defaults::default());
    assert_eq!(plan.status_patch["error"]["type"], "FileNotFoundError");
    // No report ever (a killed process): decided after the grace period.
    let mut t2 = task(json!({}));
    step(&mut t2, &Observed::default(), now());
    let plan = reconcile(&t2, &observed, at(10), &Defaults::default());
    assert_eq!(plan.status_patch["phase"], "Failed");
}

fn secrets_created(plan: &Plan) -> usize {
    plan.actions.iter().filter(|a| matches!(a, Action::CreateSecret(_))).count()
}

fn condition(plan: &Plan, type_: &str) -> Value {
    let conditions = plan.status_patch["conditions"].as_array().cloned().unwrap_or_default();
    conditions.into_iter().find(|c| c["type"] == type_).unwrap_or(Value::Null)
}

#[test]
fn the_link_is_mutual_tls_with_issued_certificates_unless_the_user_gives_a_secret() {
    let mut t = task(json!({}));
    let plan = step(&mut t, &Observed::default(), now());
    assert_eq!(secrets_created(&plan), 1);
    assert_eq!(condition(&plan, "LinkTLS")["reason"], "OperatorIssued");
    let made = plan.actions.iter().find_map(|a| match a {
        Action::CreatePod(p) => Some(serde_json::to_value(p).unwrap()),
        _ => None,
    });
    let made = made.unwrap();
    let volume = made["spec"]["volumes"].as_array().unwrap().iter().find(|v| v["name"] == "link-tls").cloned();
    assert_eq!(volume.unwrap()["secret"]["secretName"], "psi-1-link-tls");
    let args = made["spec"]["containers"][0]["args"].to_string();
    assert!(args.contains("--tls-cert") && args.contains("/etc/secretflow/tls/tls.key"), "{args}");
    // A retry keeps the Secret (observed): certificates are issued once per task.
    let failed = created(vec![pod_failed("alice"), pod("bob", 1, PodPhase::Running)]);
    t.spec.backoff_limit = Some(1);
    let plan = step(&mut t, &failed, at(10));
    assert_eq!(t.status.as_ref().unwrap().attempt, Some(2));
    assert_eq!(secrets_created(&plan), 0);
    let plan = step(&mut t, &created(vec![]), at(11));
    assert_eq!((secrets_created(&plan), pods_created(&plan).len()), (0, 2));

    // The user's secret wins: nothing issued.
    let plan =
        reconcile(&task(json!({"runtime": {"tlsSecret": "mine"}})), &Observed::default(), now(), &Defaults::default());
    assert_eq!(secrets_created(&plan), 0);
    assert_eq!(condition(&plan, "LinkTLS")["reason"], "UserSecret");
    // External parties without one: plaintext, and the condition says so.
    let ext = task(json!({"parties": [{"name": "alice"}, {"name": "bob", "external": {"address": "b.example:9400"}}]}));
    let plan = reconcile(&ext, &Observed::default(), now(), &Defaults::default());
    assert_eq!(secrets_created(&plan), 0);
    let c = condition(&plan, "LinkTLS");
    assert_eq!((c["status"].as_str(), c["reason"].as_str()), (Some("False"), Some("NoCertificate")));
    // A secret for some local parties only is an invalid spec.
    let mixed = task(json!({"parties": [{"name": "alice", "runtime": {"tlsSecret": "a"}}, {"name": "bob"}]}));
    let plan = reconcile(&mixed, &Observed::default(), now(), &Defaults::default());
    assert_eq!(plan.status_patch["phase"], "Failed");
    assert!(plan.status_patch["error"]["message"].as_str().unwrap().contains("runtime.tlsSecret"));
    assert!(pods_created(&plan).is_empty());
}

/// Alice's pod of attempt 1, failed with its own report missing for long enough to count.
fn pod_failed(party: &str) -> ObservedPod {
    ObservedPod { message: Some("boom".into()), finished_at: Some(now()), ..pod(party, 1, PodPhase::Failed) }
}
