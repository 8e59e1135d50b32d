//! The `kubernetes` executor: each request becomes a SecretFlowTask named deterministically from its
//! `execution_id` (so a redelivered message finds the task it already created instead of running twice), the
//! operator runs it, and the executor waits for a terminal phase by watching and maps the status back to the
//! Worker-API execution result.

use async_trait::async_trait;
use kube::api::PostParams;
use kube::runtime::wait::await_condition;
use kube::{Api, Client};
use serde_json::Value;
use sha2::{Digest, Sha256};

use secretflow_crds::convert::spec_for_request;
use secretflow_crds::crd::{RuntimeSpec, SecretFlowTask, TaskPhase};
use secretflow_crds::{ErrorInfo, ErrorType, ExecutionResult, WorkerRequest};

use super::executor::Executor;

/// Creates SecretFlowTasks in one namespace.
pub struct KubernetesExecutor {
    client: Client,
    namespace: String,
    /// `spec.runtime` given to every task (image, data volume, data root, ...).
    runtime: RuntimeSpec,
    /// `spec.ttlSecondsAfterFinished` of the tasks it creates.
    ttl: Option<i64>,
}

/// The task name for an execution: a DNS label from the id plus a digest, so distinct ids never collide.
pub fn task_name(execution_id: &str) -> String {
    let clean: String =
        execution_id.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    let clean: String = clean.trim_matches('-').chars().take(40).collect();
    let digest: String = Sha256::digest(execution_id.as_bytes()).iter().take(4).map(|b| format!("{b:02x}")).collect();
    let clean = clean.trim_end_matches('-');
    if clean.is_empty() { format!("sf-{digest}") } else { format!("sf-{clean}-{digest}") }
}

impl KubernetesExecutor {
    /// An executor creating tasks in `namespace` with `runtime` as their `spec.runtime`.
    pub fn new(client: Client, namespace: &str, runtime: RuntimeSpec, ttl: Option<i64>) -> Self {
        KubernetesExecutor { client, namespace: namespace.into(), runtime, ttl }
    }

    /// The SecretFlowTask for a request (every party runs as a pod here; [`spec_for_request`]).
    fn task(&self, req: &WorkerRequest, name: &str) -> SecretFlowTask {
        let mut spec = spec_for_request(req, self.runtime.clone());
        spec.ttl_seconds_after_finished = self.ttl;
        let mut task = SecretFlowTask::new(name, spec);
        task.metadata.labels = Some([("secretflow.io/created-by".to_string(), "bridge".to_string())].into());
        task
    }

    async fn run(&self, params: &Value) -> Result<ExecutionResult, ErrorInfo> {
        let req = WorkerRequest::parse(&params.to_string()).map_err(|e| e.to_info())?;
        req.validate().map_err(|e| e.to_info())?;
        let name = task_name(&req.execution_id);
        let api: Api<SecretFlowTask> = Api::namespaced(self.client.clone(), &self.namespace);
        let task = self.task(&req, &name);
        let unavailable = |e: kube::Error| ErrorInfo::new(ErrorType::RuntimeError, format!("Kubernetes API: {e}"));
        match api.create(&PostParams::default(), &task).await {
            Ok(_) => tracing::info!(task = %name, namespace = %self.namespace, "created SecretFlowTask"),
            Err(kube::Error::Api(e)) if e.code == 409 => {
                tracing::info!(task = %name, "SecretFlowTask exists (redelivery): waiting for it");
            }
            Err(e) => return Err(unavailable(e)),
        }
        let done = |t: Option<&SecretFlowTask>| {
            t.is_none_or(|t| {
                matches!(t.status.as_ref().and_then(|s| s.phase), Some(TaskPhase::Succeeded | TaskPhase::Failed))
            })
        };
        let task = await_condition(api, &name, done)
            .await
            .map_err(|e| ErrorInfo::new(ErrorType::RuntimeError, format!("watching SecretFlowTask {name}: {e}")))?
            .ok_or_else(|| ErrorInfo::new(ErrorType::RuntimeError, format!("SecretFlowTask {name} was deleted")))?;
        let status = task.status.unwrap_or_default();
        match status.phase {
            Some(TaskPhase::Succeeded) => match status.result {
                Some(r) => serde_json::from_value(r)
                    .map_err(|e| ErrorInfo::new(ErrorType::RuntimeError, format!("SecretFlowTask {name} result: {e}"))),
                None => Err(ErrorInfo::new(
                    ErrorType::RuntimeError,
                    format!("SecretFlowTask {name} succeeded but no party reported the result"),
                )),
            },
            _ => Err(status
                .error
                .unwrap_or_else(|| ErrorInfo::new(ErrorType::RuntimeError, format!("SecretFlowTask {name} failed")))),
        }
    }
}

#[async_trait]
impl Executor for KubernetesExecutor {
    async fn execute(&self, params: &Value) -> ExecutionResult {
        match self.run(params).await {
            Ok(r) => r,
            Err(e) => ExecutionResult::failure(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dns_labels_and_distinct() {
        let a = task_name("exec-uuid-from-db");
        assert!(a.starts_with("sf-exec-uuid-from-db-") && a.len() <= 63, "{a}");
        assert_ne!(task_name("A_1"), task_name("a-1"));
        assert!(task_name("???").starts_with("sf-"));
        assert!(task_name(&"x".repeat(200)).len() <= 63);
        assert_eq!(task_name("e-1"), task_name("e-1"));
    }
}
