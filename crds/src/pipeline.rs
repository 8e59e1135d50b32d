//! The `SecretFlowPipeline` custom resource (group `secretflow.io`, version `v1alpha1`, short name `sfp`): a
//! whole job (PSI, preprocessing, training, evaluation) as one declarative object, each step one Worker-API
//! `task_config` run as a `SecretFlowTask` named `<pipeline>-<step>` once the steps it depends on succeeded.
//!
//! Shared `parties`, `spu` and `runtime` sit at the top, a step overrides them. The spec is immutable once
//! applied (a CEL transition rule the API server enforces): a pipeline is a record of what ran.
//! `crds/secretflowpipeline.yaml` is generated from these types; a test keeps it current.

use std::collections::{BTreeMap, BTreeSet};

use kube::{CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::crd::{PartySpec, RuntimeSpec, SecretFlowTaskSpec, SpuSpec, TaskCondition, TaskPhase};
use crate::error::{ErrorInfo, ValidationError};

/// Desired state: steps, their order, and the parties they run on.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "secretflow.io",
    version = "v1alpha1",
    kind = "SecretFlowPipeline",
    namespaced,
    status = "SecretFlowPipelineStatus",
    shortname = "sfp",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Progress","type":"string","jsonPath":".status.progress"}"#,
    printcolumn = r#"{"name":"Running","type":"string","jsonPath":".status.running"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "self == oldSelf",
    "message": "the spec of a SecretFlowPipeline is immutable: delete it and apply a new one (or one under another name)"
}]))]
pub struct SecretFlowPipelineSpec {
    /// The parties of every step, in order (a step may name its own).
    pub parties: Vec<PartySpec>,
    /// The MPC device of every step (a step may name its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spu: Option<SpuSpec>,
    /// Pod settings of every step's parties (a step overrides them field by field).
    #[serde(default)]
    pub runtime: RuntimeSpec,
    /// The steps; `dependsOn` orders them, independent steps run at once.
    pub steps: Vec<PipelineStep>,
    /// Steps running at once at most (default: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub parallelism: Option<u32>,
    /// What a failed step does to the rest: `Stop` (default) starts nothing more, `Continue` runs every step
    /// that does not depend on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_policy: Option<FailurePolicy>,
}

/// One step: a Worker-API task and where it sits in the DAG.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipelineStep {
    /// Its name: a DNS label, unique in the pipeline; the Worker-API `subtask_id`.
    pub name: String,
    /// Names of the steps that must succeed before this one starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// The Worker-API `task_config`, verbatim (snake_case inside).
    #[schemars(schema_with = "crate::crd::any_object")]
    pub task_config: Value,
    /// This step's parties instead of the pipeline's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parties: Option<Vec<PartySpec>>,
    /// This step's MPC device instead of the pipeline's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spu: Option<SpuSpec>,
    /// Overrides of the pipeline's `runtime` for this step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<RuntimeSpec>,
    /// The step task's `activeDeadlineSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_deadline_seconds: Option<i64>,
    /// The step task's `backoffLimit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_limit: Option<i32>,
}

/// What a failed step does to the steps that have not started.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum FailurePolicy {
    /// Start no further step; the pipeline fails once the running ones end.
    #[default]
    Stop,
    /// Run every step that does not depend on a failed one.
    Continue,
}

/// A step's phase.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum StepPhase {
    /// Its dependencies have not all succeeded yet.
    Waiting,
    /// Its task exists, its pods are not running yet.
    Pending,
    /// Its task runs.
    Running,
    /// Its task succeeded.
    Succeeded,
    /// Its task failed.
    Failed,
    /// Never started: a dependency failed, or the pipeline stopped.
    Skipped,
}

impl StepPhase {
    /// Whether the step will not change any more.
    pub fn is_terminal(self) -> bool {
        matches!(self, StepPhase::Succeeded | StepPhase::Failed | StepPhase::Skipped)
    }

    /// Whether its task exists and has not ended.
    pub fn is_active(self) -> bool {
        matches!(self, StepPhase::Pending | StepPhase::Running)
    }
}

/// One step as observed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepStatus {
    /// The step.
    pub name: String,
    /// Its phase.
    pub phase: StepPhase,
    /// Its SecretFlowTask, once created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// RFC 3339 time its task was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// RFC 3339 time it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
    /// Why it failed or was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Its task's Worker-API `result` (the task-specific summary: counts, metrics, report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::crd::any_object_opt")]
    pub result: Option<Value>,
}

/// Observed state, written by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretFlowPipelineStatus {
    /// Pipeline phase: `Pending` until a step runs, `Running`, then `Succeeded` or `Failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<TaskPhase>,
    /// Steps ended / steps, as `2/4`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    /// The steps running now, comma-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<String>,
    /// Each step, in spec order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepStatus>,
    /// Conditions: `Validated`, `Complete`, `Failed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<TaskCondition>,
    /// The error that failed the pipeline (the first failed step's, naming the step and the party).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
    /// RFC 3339 time the first step started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// RFC 3339 time the pipeline ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
    /// The spec generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Whether `s` is a DNS label (lowercase letters, digits and `-`, not at either end, at most 63).
fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

impl SecretFlowPipelineSpec {
    /// Check the DAG: names are unique DNS labels, `dependsOn` names earlier-declared or later steps that
    /// exist (not the step itself), and there is no cycle. Returns the steps in a dependency order (ties in
    /// spec order). The error names the step and its field.
    pub fn order(&self) -> Result<Vec<usize>, ValidationError> {
        if self.steps.is_empty() {
            return Err(ValidationError::new("spec.steps", "at least one step is required"));
        }
        let mut index = BTreeMap::new();
        for (i, s) in self.steps.iter().enumerate() {
            let at = format!("spec.steps[{i}].name");
            if !is_dns_label(&s.name) {
                return Err(ValidationError::new(
                    at,
                    format!("step name `{}` is not a DNS label (a-z, 0-9 and `-`, at most 63)", s.name),
                ));
            }
            if let Some(first) = index.insert(s.name.as_str(), i) {
                return Err(ValidationError::new(
                    at,
                    format!("step name `{}` is used twice (steps[{first}] and steps[{i}])", s.name),
                ));
            }
        }
        for (i, s) in self.steps.iter().enumerate() {
            let mut seen = BTreeSet::new();
            for d in &s.depends_on {
                let at = format!("spec.steps[{i}].dependsOn");
                if !index.contains_key(d.as_str()) {
                    return Err(ValidationError::new(at, format!("step `{}` depends on unknown step `{d}`", s.name)));
                }
                if d == &s.name {
                    return Err(ValidationError::new(at, format!("step `{}` depends on itself", s.name)));
                }
                if !seen.insert(d.as_str()) {
                    return Err(ValidationError::new(at, format!("step `{}` names `{d}` twice", s.name)));
                }
            }
        }
        // Kahn's algorithm, taking the first ready step in spec order each time.
        let mut missing: Vec<usize> = self.steps.iter().map(|s| s.depends_on.len()).collect();
        let mut order = Vec::with_capacity(self.steps.len());
        let mut done = vec![false; self.steps.len()];
        while let Some(i) = (0..self.steps.len()).find(|&i| !done[i] && missing[i] == 0) {
            done[i] = true;
            order.push(i);
            for (j, t) in self.steps.iter().enumerate() {
                if t.depends_on.iter().any(|d| d == &self.steps[i].name) {
                    missing[j] -= 1;
                }
            }
        }
        if let Some(i) = (0..self.steps.len()).find(|&i| !done[i]) {
            let cycle = self.cycle_from(i, &done, &index);
            return Err(ValidationError::new(
                format!("spec.steps[{}].dependsOn", index[cycle[0].as_str()]),
                format!("the steps depend on each other in a cycle: {}", cycle.join(" -> ")),
            ));
        }
        Ok(order)
    }

    /// A cycle through the steps Kahn's algorithm could not order, starting from unordered step `i`: every
    /// such step has an unordered dependency, so following those must come back to a step already walked.
    fn cycle_from(&self, i: usize, done: &[bool], index: &BTreeMap<&str, usize>) -> Vec<String> {
        let mut path = vec![i];
        loop {
            let last = path[path.len() - 1];
            let next = self.steps[last].depends_on.iter().map(|d| index[d.as_str()]).find(|&j| !done[j]);
            let Some(next) = next else { break };
            if let Some(start) = path.iter().position(|&k| k == next) {
                path.drain(..start);
                path.push(next);
                break;
            }
            path.push(next);
        }
        path.iter().map(|&k| self.steps[k].name.clone()).collect()
    }

    /// The name of step `step`'s SecretFlowTask.
    pub fn task_name(pipeline: &str, step: &PipelineStep) -> String {
        format!("{pipeline}-{}", step.name)
    }

    /// The SecretFlowTask spec of `step` in the pipeline named `pipeline`: `task_id` is the pipeline,
    /// `subtask_id` the step, parties and SPU the step's or else the pipeline's, runtime the pipeline's with
    /// the step's overrides on top.
    pub fn step_task(&self, pipeline: &str, step: &PipelineStep) -> SecretFlowTaskSpec {
        SecretFlowTaskSpec {
            task_id: pipeline.to_string(),
            subtask_id: step.name.clone(),
            execution_id: Self::task_name(pipeline, step),
            parties: step.parties.clone().unwrap_or_else(|| self.parties.clone()),
            spu: step.spu.clone().or_else(|| self.spu.clone()),
            runtime: match &step.runtime {
                Some(o) => self.runtime.overlay(o),
                None => self.runtime.clone(),
            },
            task_config: step.task_config.clone(),
            active_deadline_seconds: step.active_deadline_seconds,
            backoff_limit: step.backoff_limit,
            ttl_seconds_after_finished: None,
        }
    }
}

/// The CRD as YAML, as committed in `crds/secretflowpipeline.yaml`.
pub fn crd_yaml() -> String {
    crate::crd::to_yaml(&SecretFlowPipeline::crd())
}

#[cfg(test)]
mod tests;
