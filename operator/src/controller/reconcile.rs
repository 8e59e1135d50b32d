//! Reconcile as a pure function: `(task, observed children, now) -> actions + status patch`. Everything the
//! operator decides is here and unit-tested without a server; the kube glue only observes and applies.
//!
//! Behaviour (DESIGN.md "Kubernetes"): an invalid spec fails at once with the ValueError and no pods; otherwise
//! the Service, the request ConfigMap and one Pod per local party for the current attempt are created; the
//! phase follows the pods and the parties' own reports; one party failing fails the attempt (an MPC session
//! cannot resume one side), `backoffLimit` re-runs the whole attempt with new pods, `activeDeadlineSeconds`
//! ends an attempt as `DeadlineExceeded`, and `ttlSecondsAfterFinished` deletes the finished task. Failed pods
//! are kept for their logs until then; pods of a failed attempt that still run are deleted.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service};
use serde_json::{Map, Value, json};

use secretflow_crds::crd::{PartyStatus, Progress, SecretFlowTask, TaskPhase};
use secretflow_crds::{ErrorInfo, ErrorType};

use super::certs::{self, LinkTls};
use super::children::{self, Defaults, Wiring};
use super::status::{StatusPatch, parse_time, rfc3339};

/// A pod's phase as the kubelet reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodPhase {
    /// Not started (scheduling, pulling).
    Pending,
    /// Started.
    Running,
    /// Exited 0.
    Succeeded,
    /// Exited non-zero, or was killed.
    Failed,
    /// The node is not reporting.
    Unknown,
}

/// One observed party pod.
#[derive(Clone, Debug)]
pub struct ObservedPod {
    /// Pod name.
    pub name: String,
    /// The party it runs (`secretflow.io/party` label, a DNS label).
    pub party: String,
    /// Its attempt.
    pub attempt: i32,
    /// Its phase.
    pub phase: PodPhase,
    /// The container's exit code, once terminated.
    pub exit_code: Option<i32>,
    /// The termination message (its tail), once terminated.
    pub message: Option<String>,
    /// Being deleted.
    pub deleting: bool,
    /// When the container terminated.
    pub finished_at: Option<Timestamp>,
}

/// A task's children as observed.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// The headless Service exists.
    pub service: bool,
    /// The request ConfigMap exists.
    pub config_map: bool,
    /// The Secret with the operator-issued link certificates exists.
    pub secret: bool,
    /// Its pods, all attempts.
    pub pods: Vec<ObservedPod>,
}

/// Kubernetes event type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// Normal.
    Normal,
    /// Warning.
    Warning,
}

/// What to do.
#[derive(Clone, Debug)]
pub enum Action {
    /// Create the headless Service.
    CreateService(Box<Service>),
    /// Create the request ConfigMap.
    CreateConfigMap(Box<ConfigMap>),
    /// Create the Secret with the link certificates the operator issued.
    CreateSecret(Box<Secret>),
    /// Create a party pod.
    CreatePod(Box<Pod>),
    /// Delete a pod by name.
    DeletePod(String),
    /// Delete the task (TTL after finishing); children go with it by owner references.
    DeleteTask,
    /// Record a Kubernetes Event on the task.
    Event {
        /// Normal or Warning.
        kind: EventKind,
        /// CamelCase reason.
        reason: String,
        /// Detail.
        message: String,
    },
}

/// The outcome of one reconcile.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Actions, in order.
    pub actions: Vec<Action>,
    /// JSON merge patch for `status`, touching only what the operator owns (never a party's entry, except
    /// to clear the entries of an attempt being replaced).
    pub status_patch: Value,
    /// Reconcile again after this long even if nothing changes (deadline, TTL).
    pub requeue: Option<Duration>,
}

/// A local party's failure: its error type, what to say of it, and the peer it blames (its `blamedPeer`).
#[derive(Clone)]
struct Failure {
    party: String,
    kind: ErrorType,
    detail: String,
    blamed: Option<String>,
}

/// How long a failure that blames a still-running peer waits for that peer's own report.
const ROOT_CAUSE_GRACE_SECS: i64 = 5;

/// Accumulates the plan; derefs to its status patch.
struct Planner<'a> {
    task: &'a SecretFlowTask,
    actions: Vec<Action>,
    status: StatusPatch,
    requeue: Option<Duration>,
}

impl std::ops::Deref for Planner<'_> {
    type Target = StatusPatch;
    fn deref(&self) -> &StatusPatch {
        &self.status
    }
}

impl std::ops::DerefMut for Planner<'_> {
    fn deref_mut(&mut self) -> &mut StatusPatch {
        &mut self.status
    }
}

impl Planner<'_> {
    fn event(&mut self, kind: EventKind, reason: &str, message: impl Into<String>) {
        self.actions.push(Action::Event { kind, reason: reason.into(), message: message.into() });
    }

    fn requeue_in(&mut self, d: Duration) {
        self.requeue = Some(self.requeue.map_or(d, |r| r.min(d)));
    }

    fn finish(self) -> Plan {
        Plan { actions: self.actions, status_patch: self.status.into_value(), requeue: self.requeue }
    }

    /// End the task as failed.
    fn fail(&mut self, reason: &str, error: ErrorInfo, live_pods: &[&ObservedPod]) {
        for p in live_pods {
            self.actions.push(Action::DeletePod(p.name.clone()));
        }
        self.event(EventKind::Warning, reason, error.message.clone());
        self.failed(reason, &error);
        self.ttl_requeue();
    }

    fn ttl_requeue(&mut self) {
        if let Some(ttl) = self.task.spec.ttl_seconds_after_finished {
            self.requeue_in(Duration::from_secs(ttl.max(0) as u64));
        }
    }
}

/// Decide what to do for `task` given its observed children at `now`.
pub fn reconcile(task: &SecretFlowTask, observed: &Observed, now: Timestamp, defaults: &Defaults) -> Plan {
    let status = task.status.clone().unwrap_or_default();
    let generation = task.metadata.generation;
    let mut plan = Planner {
        task,
        actions: Vec::new(),
        status: StatusPatch::new(now, generation, status.observed_generation, &status.conditions),
        requeue: None,
    };
    let live = |attempt: Option<i32>| -> Vec<&ObservedPod> {
        observed
            .pods
            .iter()
            .filter(|p| attempt.is_none_or(|a| p.attempt == a))
            .filter(|p| !p.deleting && matches!(p.phase, PodPhase::Pending | PodPhase::Running | PodPhase::Unknown))
            .collect()
    };

    // Finished: stop what still runs, then wait for the TTL.
    if matches!(status.phase, Some(TaskPhase::Succeeded | TaskPhase::Failed)) {
        for p in live(None) {
            plan.actions.push(Action::DeletePod(p.name.clone()));
        }
        if let Some(ttl) = task.spec.ttl_seconds_after_finished {
            let done = parse_time(&status.completion_time).unwrap_or(now);
            let left = done.as_second() + ttl - now.as_second();
            if left <= 0 {
                plan.actions.push(Action::DeleteTask);
            } else {
                plan.requeue_in(Duration::from_secs(left as u64));
            }
        }
        return Plan { actions: plan.actions, status_patch: json!({}), requeue: plan.requeue };
    }

    let (request, wiring) = match children::request(task).and_then(|r| Ok((Wiring::of(task, &r)?, r))) {
        Ok((wiring, request)) => (request, wiring),
        Err(e) => {
            plan.condition("Validated", false, "InvalidSpec", &e.to_string());
            plan.fail("InvalidSpec", e.to_info(), &[]);
            return plan.finish();
        }
    };
    plan.condition("Validated", true, "Valid", "the request is valid");

    let attempt = status.attempt.unwrap_or(1);
    let start = parse_time(&status.start_time).unwrap_or(now);
    if status.attempt.is_none() {
        plan.set("attempt", attempt);
    }
    if status.start_time.is_none() {
        plan.set("startTime", rfc3339(start));
    }
    if !observed.service {
        plan.actions.push(Action::CreateService(Box::new(children::service(task))));
    }
    if !observed.config_map {
        plan.actions.push(Action::CreateConfigMap(Box::new(children::config_map(task, &request))));
    }
    match &wiring.tls {
        LinkTls::Issued => {
            plan.condition("LinkTLS", true, "OperatorIssued", "mutual TLS, certificates issued per task")
        }
        LinkTls::User(_) => plan.condition("LinkTLS", true, "UserSecret", "mutual TLS with runtime.tlsSecret"),
        LinkTls::Plaintext => plan.condition(
            "LinkTLS",
            false,
            "NoCertificate",
            "the link to the external parties is plaintext: give runtime.tlsSecret (a CA both sides trust)",
        ),
    }
    if wiring.tls == LinkTls::Issued && !observed.secret {
        match certs::issue(task, now) {
            Ok(secret) => plan.actions.push(Action::CreateSecret(Box::new(secret))),
            Err(e) => {
                plan.fail("InvalidSpec", e.to_info(), &[]);
                return plan.finish();
            }
        }
    }

    let (name, _) = children::name_ns(task);
    let local: Vec<_> = task.spec.parties.iter().filter(|p| p.external.is_none()).collect();
    let pod_of = |party: &str| {
        let label = children::dns_label(party);
        observed.pods.iter().find(|p| p.attempt == attempt && p.party == label)
    };
    let mut created = Vec::new();
    for p in &local {
        if pod_of(&p.name).is_none() {
            plan.actions.push(Action::CreatePod(Box::new(children::pod(task, p, attempt, defaults, &wiring))));
            created.push(children::pod_name(&name, &p.name, attempt));
        }
    }
    if !created.is_empty() {
        plan.event(EventKind::Normal, "PodsCreated", format!("attempt {attempt}: created {}", created.join(", ")));
        plan.condition("PodsCreated", true, "PodsCreated", &format!("attempt {attempt}"));
    }

    // Deadline of this attempt.
    if let Some(deadline) = task.spec.active_deadline_seconds {
        let left = start.as_second() + deadline - now.as_second();
        if left <= 0 {
            let msg = format!("attempt {attempt} ran longer than activeDeadlineSeconds ({deadline} s)");
            plan.fail("DeadlineExceeded", ErrorInfo::new(ErrorType::TimeoutError, msg), &live(Some(attempt)));
            return plan.finish();
        }
        plan.requeue_in(Duration::from_secs(left as u64));
    }

    // Outcome of each local party: its pod, and its own report.
    let report = |party: &str| status.parties.get(party).cloned().unwrap_or_default();
    let failures: Vec<Failure> = local
        .iter()
        .filter_map(|p| {
            let pod = pod_of(&p.name);
            let rep: PartyStatus = report(&p.name);
            let pod_failed = pod.is_some_and(|x| x.phase == PodPhase::Failed);
            if !(pod_failed || rep.phase == Some(TaskPhase::Failed)) {
                return None;
            }
            let detail = rep
                .error
                .as_ref()
                .map(|e| e.to_string())
                .or_else(|| pod.and_then(|x| x.message.clone()).filter(|m| !m.trim().is_empty()).map(|m| tail(&m)))
                .or_else(|| pod.and_then(|x| x.exit_code).map(|c| format!("exited with code {c}")))
                .unwrap_or_else(|| "failed".into());
            let kind = rep.error.as_ref().map_or(ErrorType::RuntimeError, |e| e.kind);
            Some(Failure { party: p.name.clone(), kind, detail, blamed: rep.blamed_peer })
        })
        .collect();
    // A party that lost its link to a peer usually fails because of that peer: name the root cause (the
    // runtime writes the peer it blames, `blamedPeer`). While the only failures blame a local peer that is
    // still running, give it a moment to report its own error.
    let blames = |f: &Failure, other: &str| f.blamed.as_deref() == Some(other);
    let root = failures.iter().find(|f| !failures.iter().any(|o| o.party != f.party && blames(f, &o.party)));
    let blamed_alive = failures.iter().all(|f| {
        local.iter().any(|q| {
            blames(f, &q.name)
                && pod_of(&q.name).is_some_and(|x| !matches!(x.phase, PodPhase::Failed | PodPhase::Succeeded))
        })
    });
    let first_failed_at =
        failures.iter().filter_map(|f| parse_time(&status.parties.get(&f.party)?.finished_at)).min().unwrap_or(now);
    // A pod that failed before its runtime's own report is visible here (the report is written just before
    // the process exits, but this view of the task may be older than the pod list): wait for it briefly.
    let report_pending = local.iter().any(|p| {
        let failed_pod = pod_of(&p.name).filter(|x| x.phase == PodPhase::Failed);
        let reported = status.parties.get(&p.name).is_some_and(|r| r.phase == Some(TaskPhase::Failed));
        failed_pod.is_some_and(|x| {
            !reported && x.finished_at.is_some_and(|f| now.as_second() - f.as_second() < ROOT_CAUSE_GRACE_SECS)
        })
    });
    let waiting = blamed_alive && now.as_second() - first_failed_at.as_second() < ROOT_CAUSE_GRACE_SECS;
    if !failures.is_empty() && (waiting || report_pending) {
        plan.requeue_in(Duration::from_secs(1));
        return plan.finish();
    }
    let failure = root.or(failures.first()).cloned();
    if let Some(Failure { party, kind, detail, .. }) = failure {
        let backoff = task.spec.backoff_limit.unwrap_or(0);
        let message = format!("party {party} failed in attempt {attempt}: {detail}");
        if attempt <= backoff {
            for p in live(Some(attempt)) {
                plan.actions.push(Action::DeletePod(p.name.clone()));
            }
            plan.event(EventKind::Warning, "Retrying", format!("{message}; starting attempt {}", attempt + 1));
            plan.condition("PodsCreated", false, "Retrying", &format!("attempt {} pending", attempt + 1));
            plan.set("attempt", attempt + 1);
            plan.set("startTime", rfc3339(now));
            plan.set("phase", TaskPhase::Pending);
            let cleared: Map<String, Value> = status.parties.keys().map(|k| (k.clone(), Value::Null)).collect();
            if !cleared.is_empty() {
                plan.set("parties", cleared);
            }
            plan.set("result", Value::Null);
            plan.set("progress", Value::Null);
            plan.requeue_in(Duration::from_secs(0));
            return plan.finish();
        }
        plan.fail("PartyFailed", ErrorInfo::new(kind, message), &live(Some(attempt)));
        return plan.finish();
    }

    let succeeded =
        |p: &&&secretflow_crds::crd::PartySpec| pod_of(&p.name).is_some_and(|x| x.phase == PodPhase::Succeeded);
    if !local.is_empty() && local.iter().all(|p| succeeded(&p)) {
        plan.event(EventKind::Normal, "Succeeded", format!("every local party succeeded in attempt {attempt}"));
        plan.condition("Complete", true, "Succeeded", "every local party succeeded");
        plan.set("phase", TaskPhase::Succeeded);
        plan.set("completionTime", rfc3339(now));
        plan.set("progress", Progress { fraction: 1.0, phase: "done".into() });
        if let Some(m) = aggregate_metrics(&status.parties) {
            plan.set("performanceMetrics", m);
        }
        plan.ttl_requeue();
        return plan.finish();
    }

    let running = local.iter().any(|p| pod_of(&p.name).is_some_and(|x| x.phase == PodPhase::Running));
    let phase = if running { TaskPhase::Running } else { TaskPhase::Pending };
    if status.phase != Some(phase) {
        plan.set("phase", phase);
        if phase == TaskPhase::Running {
            plan.event(EventKind::Normal, "Running", format!("attempt {attempt} is running"));
        }
    }
    let fractions: Vec<&Progress> =
        local.iter().filter_map(|p| status.parties.get(&p.name)?.progress.as_ref()).collect();
    if !fractions.is_empty() {
        let slowest = fractions.iter().min_by(|a, b| a.fraction.total_cmp(&b.fraction)).copied();
        let mean = fractions.iter().map(|p| p.fraction).sum::<f64>() / local.len() as f64;
        if let Some(slowest) = slowest {
            let progress = Progress { fraction: (mean * 1000.0).round() / 1000.0, phase: slowest.phase.clone() };
            if status.progress.as_ref() != Some(&progress) {
                plan.set("progress", progress);
            }
        }
    }
    plan.finish()
}

/// The last lines of a termination message (the kubelet keeps at most 4 KiB anyway).
fn tail(message: &str) -> String {
    let lines: Vec<&str> = message.trim_end().lines().collect();
    lines[lines.len().saturating_sub(5)..].join("\n")
}

/// Task-level metrics from the parties' own: the longest party time, and communication summed.
fn aggregate_metrics(parties: &std::collections::BTreeMap<String, PartyStatus>) -> Option<Value> {
    let per: Vec<(&String, &Value)> = parties.iter().filter_map(|(k, v)| Some((k, v.metrics.as_ref()?))).collect();
    if per.is_empty() {
        return None;
    }
    let max = |k: &str| per.iter().filter_map(|(_, m)| m.get(k)?.as_f64()).fold(0.0, f64::max);
    let sum = |k: &str| per.iter().filter_map(|(_, m)| m.get(k)?.as_u64()).sum::<u64>();
    let mut out = json!({
        "total_execution_time": max("total_execution_time"),
        "cluster_init_time": max("cluster_init_time"),
        "device_init_time": max("device_init_time"),
        "algorithm_exec_time": max("algorithm_exec_time"),
        "bytes_sent": sum("bytes_sent"),
        "bytes_received": sum("bytes_received"),
    });
    out["parties"] = per.iter().map(|(k, m)| ((*k).clone(), (*m).clone())).collect::<Map<_, _>>().into();
    Some(out)
}
