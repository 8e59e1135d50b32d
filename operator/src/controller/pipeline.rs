//! Pipeline reconcile as a pure function: `(pipeline, its step tasks as observed, now) -> actions + status
//! patch`, tested without a server like [`super::reconcile`].
//!
//! A step's state comes from its SecretFlowTask (named `<pipeline>-<step>`, labelled with both, owned by the
//! pipeline) whenever it exists, and from the status otherwise, so a controller restarted at any point
//! neither creates a step twice (the name is fixed and a task that exists is never created again) nor loses
//! one (a step whose dependencies succeeded and that has no task is created on the next pass). Decisions:
//! an invalid pipeline fails before anything runs; ready steps start in dependency order up to
//! `parallelism`; a failed step skips what depends on it, and under `failurePolicy: Stop` everything not
//! started; the pipeline ends when no step can change, `Failed` with the first failed step's error if any.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use kube::Resource;
use serde_json::Value;

use secretflow_crds::crd::{SecretFlowTask, TaskPhase};
use secretflow_crds::pipeline::{FailurePolicy, SecretFlowPipeline, SecretFlowPipelineSpec, StepPhase, StepStatus};
use secretflow_crds::{ErrorInfo, ErrorType, ValidationError};

use super::children::{self, Wiring};
use super::reconcile::EventKind;
use super::status::{StatusPatch, rfc3339};

/// Label naming a step task's pipeline.
pub const PIPELINE_LABEL: &str = "secretflow.io/pipeline";
/// Label naming a step task's step.
pub const STEP_LABEL: &str = "secretflow.io/step";

/// A step's SecretFlowTask as observed.
#[derive(Clone, Debug, Default)]
pub struct ObservedTask {
    /// The step it runs (its `secretflow.io/step` label).
    pub step: String,
    /// Its name.
    pub name: String,
    /// Its phase (`None`: the task controller has not seen it yet).
    pub phase: Option<TaskPhase>,
    /// Its `status.completionTime`.
    pub completion_time: Option<String>,
    /// The Worker-API `result` of its execution result.
    pub result: Option<Value>,
    /// Its error, if it failed.
    pub error: Option<ErrorInfo>,
}

impl ObservedTask {
    /// A task as the pipeline reconciler sees it (`None` if it carries no step label).
    pub fn of(task: &SecretFlowTask) -> Option<ObservedTask> {
        let step = task.metadata.labels.as_ref()?.get(STEP_LABEL)?.clone();
        let status = task.status.clone().unwrap_or_default();
        Some(ObservedTask {
            step,
            name: task.metadata.name.clone()?,
            phase: status.phase,
            completion_time: status.completion_time,
            result: status.result.and_then(|r| r.get("result").cloned()),
            error: status.error,
        })
    }
}

/// What to do.
#[derive(Clone, Debug)]
pub enum PipelineAction {
    /// Create a step's task.
    CreateTask(Box<SecretFlowTask>),
    /// Record a Kubernetes Event on the pipeline.
    Event {
        /// Normal or Warning.
        kind: EventKind,
        /// CamelCase reason.
        reason: String,
        /// Detail.
        message: String,
        /// The step task it concerns (the Event's `related` object, which also keeps one step's Event from
        /// being folded into another's series).
        task: Option<String>,
    },
}

/// The outcome of one pipeline reconcile.
#[derive(Clone, Debug)]
pub struct PipelinePlan {
    /// Task creations first, then events.
    pub actions: Vec<PipelineAction>,
    /// JSON merge patch for `status` (the operator owns the whole status).
    pub status_patch: Value,
    /// Reconcile again after this long even if nothing changes.
    pub requeue: Option<Duration>,
}

/// How often a running pipeline is looked at even without a change of its tasks.
const RESYNC: Duration = Duration::from_secs(300);

/// The pipeline's name and namespace.
fn name_ns(p: &SecretFlowPipeline) -> (String, String) {
    (p.metadata.name.clone().unwrap_or_default(), p.metadata.namespace.clone().unwrap_or_else(|| "default".into()))
}

/// The SecretFlowTask of step `index`: named `<pipeline>-<step>`, labelled with both, owned by the pipeline.
pub fn step_task(p: &SecretFlowPipeline, index: usize) -> SecretFlowTask {
    let (name, ns) = name_ns(p);
    let step = &p.spec.steps[index];
    let mut task = SecretFlowTask::new(&SecretFlowPipelineSpec::task_name(&name, step), p.spec.step_task(&name, step));
    task.metadata.namespace = Some(ns);
    task.metadata.labels = Some(
        [
            ("app.kubernetes.io/managed-by", "secretflow-operator"),
            (PIPELINE_LABEL, name.as_str()),
            (STEP_LABEL, step.name.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    );
    task.metadata.owner_references = p.controller_owner_ref(&()).map(|o| vec![o]);
    task
}

/// Validate the whole pipeline before anything runs: the DAG, then every step's task as the task controller
/// will validate it (its name, parties, SPU and `taskConfig`). Returns the steps in dependency order.
pub fn validate(p: &SecretFlowPipeline) -> Result<Vec<usize>, ValidationError> {
    let order = p.spec.order()?;
    let (name, _) = name_ns(p);
    for (i, step) in p.spec.steps.iter().enumerate() {
        let at = format!("spec.steps[{i}]");
        let task_name = SecretFlowPipelineSpec::task_name(&name, step);
        if task_name.len() > 63 {
            return Err(ValidationError::new(
                format!("{at}.name"),
                format!("step `{}`: its task name `{task_name}` is longer than 63 characters", step.name),
            ));
        }
        let task = step_task(p, i);
        let checked = children::request(&task).and_then(|r| Wiring::of(&task, &r).map(|_| ()));
        if let Err(e) = checked {
            // The task's own field path, as a path in the pipeline (`spec.parties` stays a pipeline field
            // unless the step names its own).
            let own = |f: &str| f == "spec.parties" && step.parties.is_some() || f.starts_with("task_config");
            let field = match e.field.as_str() {
                f if f.starts_with("task_config") => format!("{at}.taskConfig{}", &f["task_config".len()..]),
                f if own(f) => format!("{at}.{}", &f["spec.".len()..]),
                "" => at.clone(),
                f => f.to_string(),
            };
            return Err(ValidationError::new(field, format!("step `{}`: {}", step.name, e.message)));
        }
    }
    Ok(order)
}

/// Accumulates the plan; derefs to its status patch.
struct Planner {
    actions: Vec<PipelineAction>,
    status: StatusPatch,
}

impl std::ops::Deref for Planner {
    type Target = StatusPatch;
    fn deref(&self) -> &StatusPatch {
        &self.status
    }
}

impl std::ops::DerefMut for Planner {
    fn deref_mut(&mut self) -> &mut StatusPatch {
        &mut self.status
    }
}

impl Planner {
    fn event(&mut self, kind: EventKind, reason: &str, message: impl Into<String>) {
        self.step_event(kind, reason, message, None);
    }

    fn step_event(&mut self, kind: EventKind, reason: &str, message: impl Into<String>, task: Option<String>) {
        self.actions.push(PipelineAction::Event { kind, reason: reason.into(), message: message.into(), task });
    }

    /// End the pipeline as failed with `error`.
    fn fail(&mut self, reason: &str, error: ErrorInfo) {
        self.event(EventKind::Warning, reason, error.message.clone());
        self.failed(reason, &error);
    }

    fn finish(self, requeue: Option<Duration>) -> PipelinePlan {
        PipelinePlan { actions: self.actions, status_patch: self.status.into_value(), requeue }
    }
}

/// A step task's phase as a step phase.
fn step_phase(t: &ObservedTask) -> StepPhase {
    match t.phase {
        None | Some(TaskPhase::Pending) => StepPhase::Pending,
        Some(TaskPhase::Running) => StepPhase::Running,
        Some(TaskPhase::Succeeded) => StepPhase::Succeeded,
        Some(TaskPhase::Failed) => StepPhase::Failed,
    }
}

/// Decide what to do for `pipeline` given its step tasks at `now`.
pub fn reconcile_pipeline(pipeline: &SecretFlowPipeline, tasks: &[ObservedTask], now: Timestamp) -> PipelinePlan {
    let status = pipeline.status.clone().unwrap_or_default();
    let generation = pipeline.metadata.generation;
    if matches!(status.phase, Some(TaskPhase::Succeeded | TaskPhase::Failed)) {
        return PipelinePlan { actions: Vec::new(), status_patch: Value::Object(Default::default()), requeue: None };
    }
    let patch = StatusPatch::new(now, generation, status.observed_generation, &status.conditions);
    let mut plan = Planner { actions: Vec::new(), status: patch };
    let started = !tasks.is_empty() || status.steps.iter().any(|s| s.task.is_some());
    if started && status.observed_generation.is_some() && status.observed_generation != generation {
        // The API server refuses spec edits (a CEL rule in the CRD); one that got through is not followed.
        let message = format!(
            "the spec changed after the pipeline started (generation {} to {}): a SecretFlowPipeline's spec is \
             immutable; delete the pipeline and apply the new one",
            status.observed_generation.unwrap_or_default(),
            generation.unwrap_or_default()
        );
        plan.fail("SpecChanged", ErrorInfo::new(ErrorType::ValueError, message));
        return plan.finish(None);
    }
    let order = match validate(pipeline) {
        Ok(order) => order,
        Err(e) => {
            plan.condition("Validated", false, "InvalidSpec", &e.to_string());
            plan.fail("InvalidSpec", e.to_info());
            return plan.finish(None);
        }
    };
    plan.condition("Validated", true, "Valid", "every step is valid and the steps form a DAG");

    let spec = &pipeline.spec;
    let (name, _) = name_ns(pipeline);
    let observed: BTreeMap<&str, &ObservedTask> = tasks.iter().map(|t| (t.step.as_str(), t)).collect();
    let previous: BTreeMap<&str, &StepStatus> = status.steps.iter().map(|s| (s.name.as_str(), s)).collect();
    let index: BTreeMap<&str, usize> = spec.steps.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
    let mut steps: Vec<StepStatus> = spec
        .steps
        .iter()
        .map(|s| StepStatus {
            name: s.name.clone(),
            phase: StepPhase::Waiting,
            task: None,
            start_time: None,
            completion_time: None,
            message: None,
            result: None,
        })
        .collect();

    // Each step from its task, else from the status, in dependency order so its dependencies are known.
    let stop = spec.failure_policy.unwrap_or_default() == FailurePolicy::Stop;
    let mut ready = Vec::new();
    for &i in &order {
        let step = &spec.steps[i];
        let before = previous.get(step.name.as_str()).copied();
        let mut s = before.cloned().unwrap_or_else(|| steps[i].clone());
        if let Some(t) = observed.get(step.name.as_str()) {
            s.phase = step_phase(t);
            s.task = Some(t.name.clone());
            s.start_time = s.start_time.or_else(|| Some(rfc3339(now)));
            if s.phase.is_terminal() {
                s.completion_time = t.completion_time.clone().or(s.completion_time).or_else(|| Some(rfc3339(now)));
                s.result = t.result.clone();
                s.message = t.error.as_ref().map(|e| e.to_string());
            }
        } else if s.task.is_some() && !s.phase.is_terminal() {
            // Created by an earlier pass (the status says so) and gone now: deleted by hand.
            s.phase = StepPhase::Failed;
            s.completion_time = Some(rfc3339(now));
            s.message = Some(format!("its task {} was deleted before it finished", s.task.as_deref().unwrap_or("")));
        } else if !s.phase.is_terminal() {
            let deps: Vec<&StepStatus> = step.depends_on.iter().map(|d| &steps[index[d.as_str()]]).collect();
            if let Some(bad) = deps.iter().find(|d| matches!(d.phase, StepPhase::Failed | StepPhase::Skipped)) {
                let why = if bad.phase == StepPhase::Failed { "failed" } else { "was skipped" };
                s.phase = StepPhase::Skipped;
                s.message = Some(format!("step `{}` it depends on {why}", bad.name));
            } else {
                s.phase = StepPhase::Waiting;
                if deps.iter().all(|d| d.phase == StepPhase::Succeeded) {
                    ready.push(i);
                }
            }
        }
        steps[i] = s;
    }

    // A failure under `Stop`: nothing more starts.
    let first_failed = order.iter().copied().find(|&i| steps[i].phase == StepPhase::Failed);
    if let (true, Some(f)) = (stop, first_failed) {
        let failed = spec.steps[f].name.clone();
        for s in steps.iter_mut().filter(|s| s.phase == StepPhase::Waiting) {
            s.phase = StepPhase::Skipped;
            s.message = Some(format!("not started: step `{failed}` failed and the failure policy is Stop"));
        }
        ready.clear();
    }

    // Start ready steps, in dependency order, up to `parallelism` at once.
    let active = steps.iter().filter(|s| s.phase.is_active()).count();
    let room = spec.parallelism.map_or(usize::MAX, |p| (p as usize).saturating_sub(active));
    for &i in ready.iter().take(room) {
        let task = step_task(pipeline, i);
        let s = &mut steps[i];
        s.phase = StepPhase::Pending;
        s.task = task.metadata.name.clone();
        plan.actions.push(PipelineAction::CreateTask(Box::new(task)));
        s.start_time = Some(rfc3339(now));
    }

    // Events for what changed since the status was written.
    for s in &steps {
        let was = previous.get(s.name.as_str()).map(|p| p.phase);
        if was == Some(s.phase) {
            continue;
        }
        let task = s.task.clone();
        let t = task.as_deref().unwrap_or_default();
        let message = s.message.clone().unwrap_or_default();
        let (kind, reason, text) = match s.phase {
            StepPhase::Pending if was.is_none_or(|w| !w.is_active()) => {
                (EventKind::Normal, "StepStarted", format!("step {}: created task {t}", s.name))
            }
            StepPhase::Succeeded => {
                (EventKind::Normal, "StepSucceeded", format!("step {}: task {t} succeeded", s.name))
            }
            StepPhase::Failed => {
                (EventKind::Warning, "StepFailed", format!("step {}: task {t} failed: {message}", s.name))
            }
            StepPhase::Skipped => (EventKind::Normal, "StepSkipped", format!("step {}: {message}", s.name)),
            _ => continue,
        };
        plan.step_event(kind, reason, text, task);
    }

    let done = steps.iter().filter(|s| s.phase.is_terminal()).count();
    let running: Vec<&str> = steps.iter().filter(|s| s.phase.is_active()).map(|s| s.name.as_str()).collect();
    let progress = format!("{done}/{}", steps.len());
    if status.progress.as_deref() != Some(progress.as_str()) {
        plan.set("progress", progress);
    }
    let running = (!running.is_empty()).then(|| running.join(","));
    if status.running != running {
        plan.set("running", running);
    }
    let any_started = steps.iter().any(|s| s.task.is_some());
    if status.start_time.is_none() && any_started {
        let first = steps.iter().filter_map(|s| s.start_time.clone()).min();
        plan.set("startTime", first.unwrap_or_else(|| rfc3339(now)));
    }
    if status.steps != steps {
        plan.set("steps", &steps);
    }

    if done == steps.len() {
        match order.iter().map(|&i| &steps[i]).find(|s| s.phase == StepPhase::Failed) {
            Some(s) => {
                let t = observed.get(s.name.as_str());
                let kind = t.and_then(|t| t.error.as_ref()).map_or(ErrorType::RuntimeError, |e| e.kind);
                let detail = t.and_then(|t| t.error.as_ref()).map(|e| e.message.clone()).or(s.message.clone());
                let message = format!(
                    "step {} (task {}) failed: {}",
                    s.name,
                    s.task.as_deref().unwrap_or(""),
                    detail.unwrap_or_else(|| "failed".into())
                );
                plan.fail("StepFailed", ErrorInfo::new(kind, message));
            }
            None => {
                let message = format!("all {} steps succeeded", steps.len());
                plan.event(EventKind::Normal, "Succeeded", message.clone());
                plan.condition("Complete", true, "Succeeded", &message);
                plan.set("phase", TaskPhase::Succeeded);
                plan.set("completionTime", rfc3339(now));
            }
        }
        return plan.finish(None);
    }
    let phase = if any_started { TaskPhase::Running } else { TaskPhase::Pending };
    if status.phase != Some(phase) {
        plan.set("phase", phase);
        if phase == TaskPhase::Running {
            plan.event(EventKind::Normal, "Running", format!("pipeline {name} started"));
        }
    }
    plan.finish(Some(RESYNC))
}

#[cfg(test)]
mod tests;
