//! The `SecretFlowTask` custom resource (group `secretflow.io`, version `v1alpha1`, short name `sft`).
//!
//! The envelope is camelCase Kubernetes style; `taskConfig` is the Worker-API `task_config` verbatim, so a
//! Celery payload can be pasted in unchanged. Optional fields default as documented on each; the operator fills
//! defaults at reconcile time, not through the API server, so `kubectl get -o yaml` shows what the user wrote.
//! `crds/secretflowtask.yaml` is generated from these types (`secretflow-operator crd`); a test keeps it current.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use kube::{CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ErrorInfo;
use crate::request::{Beaver, Field, Protocol};

/// Desired state: one Worker-API task and how to run its parties.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "secretflow.io",
    version = "v1alpha1",
    kind = "SecretFlowTask",
    namespaced,
    status = "SecretFlowTaskStatus",
    shortname = "sft",
    printcolumn = r#"{"name":"Type","type":"string","jsonPath":".spec.taskConfig.task_type"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct SecretFlowTaskSpec {
    /// Worker-API `task_id` (the DAG).
    pub task_id: String,
    /// Worker-API `subtask_id` (the node).
    pub subtask_id: String,
    /// Worker-API `execution_id`; the bridge derives the resource name from it.
    pub execution_id: String,
    /// The parties, in order. Local ones get a pod; external ones are reached at their address.
    pub parties: Vec<PartySpec>,
    /// The MPC device; required by tasks that compute on secret shares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spu: Option<SpuSpec>,
    /// Pod template values shared by every local party.
    #[serde(default)]
    pub runtime: RuntimeSpec,
    /// The Worker-API `task_config`, verbatim (snake_case inside).
    #[schemars(schema_with = "any_object")]
    pub task_config: Value,
    /// Seconds an attempt may run before it fails with `DeadlineExceeded` (default: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_deadline_seconds: Option<i64>,
    /// Whole-task re-runs after a failed attempt (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_limit: Option<i32>,
    /// Seconds after completion before the task and its pods are deleted (default: kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds_after_finished: Option<i64>,
}

/// One party.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartySpec {
    /// The party name used in `taskConfig`.
    pub name: String,
    /// Set when the party runs elsewhere (another institution's cluster): no pod is created for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalParty>,
    /// Overrides of `spec.runtime` for this party's pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<RuntimeSpec>,
}

/// Where an external party is reached.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalParty {
    /// Link address, `host:port`.
    pub address: String,
    /// SPU address, `host:port` (default: the link address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spu_address: Option<String>,
}

/// The MPC device.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SpuSpec {
    /// `SEMI2K` (default) or `CHEETAH` (two nodes), or `ABY3` (three nodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    /// `FM64` or `FM128` (default `FM128`, as the Worker API recommends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<Field>,
    /// Fixed-point fraction bits (default 18 on FM64, 26 on FM128).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fxp_fraction_bits: Option<u32>,
    /// Where products' correlations come from: `ot` (default, secure) or SEMI2K's insecure
    /// `trusted_first_party`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beaver: Option<Beaver>,
}

/// Pod settings for party runtimes.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeSpec {
    /// Container image (default: the operator's configured party-runtime image).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// CPU and memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Node selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,
    /// The party's data volume, mounted at `dataRoot`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_volume: Option<DataVolume>,
    /// Data root inside the pod (default `/app/data`); paths outside it are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_root: Option<String>,
    /// Worker threads (the Worker API's `omp_num_threads`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<u32>,
    /// Link timeout in seconds (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_timeout_seconds: Option<u32>,
    /// Secret with `tls.crt`, `tls.key` and `ca.crt` for mutual TLS on the link; without one the operator
    /// issues certificates for the task (unless a party is `external`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_secret: Option<String>,
}

impl RuntimeSpec {
    /// These settings with every field `over` sets taking its place (a party's or a step's overrides).
    pub fn overlay(&self, over: &RuntimeSpec) -> RuntimeSpec {
        let (o, base) = (over.clone(), self.clone());
        RuntimeSpec {
            image: o.image.or(base.image),
            resources: o.resources.or(base.resources),
            node_selector: o.node_selector.or(base.node_selector),
            data_volume: o.data_volume.or(base.data_volume),
            data_root: o.data_root.or(base.data_root),
            threads: o.threads.or(base.threads),
            link_timeout_seconds: o.link_timeout_seconds.or(base.link_timeout_seconds),
            tls_secret: o.tls_secret.or(base.tls_secret),
        }
    }
}

/// A data volume: one of a claim or a host path.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataVolume {
    /// PersistentVolumeClaim name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_name: Option<String>,
    /// Host path (single-node clusters, tests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_path: Option<String>,
    /// Mount read-only (outputs then need another volume).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}

/// Lifecycle phase of a task or a party.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum TaskPhase {
    /// Accepted, pods not running yet.
    Pending,
    /// At least one party is running.
    Running,
    /// Every local party succeeded.
    Succeeded,
    /// The task failed (invalid spec, a party failed, deadline).
    Failed,
}

/// A metav1-style condition.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskCondition {
    /// `Validated`, `PodsCreated`, `Complete`, `Failed`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// CamelCase reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// RFC 3339 time of the last change of `status`.
    pub last_transition_time: String,
    /// The generation this condition describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Progress of a running party or task.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// 0.0 to 1.0.
    pub fraction: f64,
    /// What is being done.
    pub phase: String,
}

/// One party's own report; written by that party's runtime only.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartyStatus {
    /// The party's phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<TaskPhase>,
    /// Its pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// Its link address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// RFC 3339 start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// RFC 3339 end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Last message (termination message tail on failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Progress while running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    /// Its `performance_metrics`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_object_opt")]
    pub metrics: Option<Value>,
    /// Its error, if it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
    /// The peer its failure is blamed on (the one its link lost, or that reported its own failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blamed_peer: Option<String>,
}

/// Observed state, aggregated by the operator from pods and party reports.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretFlowTaskStatus {
    /// Task phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<TaskPhase>,
    /// Conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<TaskCondition>,
    /// Per-party reports.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parties: BTreeMap<String, PartyStatus>,
    /// The Worker-API execution result, verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_object_opt")]
    pub result: Option<Value>,
    /// Aggregated `performance_metrics`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_object_opt")]
    pub performance_metrics: Option<Value>,
    /// The error that failed the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
    /// Aggregated progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    /// RFC 3339 start of the current attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// RFC 3339 completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
    /// Attempt number, from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<i32>,
    /// The spec generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

pub(crate) fn any_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
}

pub(crate) fn any_object_opt(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "object", "nullable": true, "x-kubernetes-preserve-unknown-fields": true})
}

/// The CRD as YAML, as committed in `crds/secretflowtask.yaml`.
pub fn crd_yaml() -> String {
    to_yaml(&SecretFlowTask::crd())
}

/// A CRD generated from our own types as YAML.
pub(crate) fn to_yaml(
    crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
) -> String {
    match serde_saphyr::to_string(crd) {
        Ok(s) => s,
        // The CRD is built from our own types; failing to serialise it is a bug caught by the drift test.
        Err(e) => format!("# failed to serialise the CRD: {e}\n"),
    }
}
