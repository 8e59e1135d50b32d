//! Reporting into the SecretFlowTask status from inside a party pod. The operator sets `SF_TASK_NAME`,
//! `SF_TASK_NAMESPACE`, `SF_PARTY` and `SF_POD_NAME`; the runtime then writes only its own
//! `status.parties.<party>` entry with JSON merge patches (so two parties never overwrite each other) and, if it
//! holds the task's result, `status.result`. Progress is sent at most once every [`PROGRESS_EVERY`].
//! A failed report is logged, never fatal: the pod's exit code still tells the operator the outcome.

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio::sync::watch;

use secretflow_crds::ExecutionResult;
use secretflow_crds::crd::SecretFlowTask;
use secretflow_crds::result::ExecStatus;

use crate::context::ProgressSink;

/// Minimum time between two progress patches.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// Where this pod reports.
#[derive(Clone)]
pub struct KubeReporter {
    api: Api<SecretFlowTask>,
    task: String,
    party: String,
    pod: Option<String>,
}

fn rfc3339() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl KubeReporter {
    /// A reporter if the pod environment names a task (`SF_TASK_NAME`, `SF_TASK_NAMESPACE`, `SF_PARTY`);
    /// the client comes from the pod's service account (or `KUBECONFIG`).
    pub async fn from_env() -> Option<anyhow::Result<KubeReporter>> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let (task, ns, party) = (var("SF_TASK_NAME")?, var("SF_TASK_NAMESPACE")?, var("SF_PARTY")?);
        Some(
            async {
                let client = Client::try_default().await?;
                Ok(KubeReporter { api: Api::namespaced(client, &ns), task, party, pod: var("SF_POD_NAME") })
            }
            .await,
        )
    }

    async fn patch(&self, status: Value) {
        let patch = Patch::Merge(json!({"status": status}));
        if let Err(e) = self.api.patch_status(&self.task, &PatchParams::default(), &patch).await {
            tracing::warn!(task = %self.task, party = %self.party, error = %e, "could not report to the task status");
        }
    }

    async fn party(&self, entry: Value) {
        self.patch(json!({"parties": {self.party.clone(): entry}})).await;
    }

    /// The party started.
    pub async fn started(&self) {
        self.party(json!({"phase": "Running", "pod": self.pod, "startedAt": rfc3339()})).await;
    }

    /// The party finished with `result`; `holder` also writes the task result. A failure names the peer it
    /// is blamed on (`blamedPeer`), if any.
    pub async fn finished(&self, result: &ExecutionResult, holder: bool, blamed: Option<&str>) {
        let ok = result.status == ExecStatus::Success;
        let mut entry = json!({"phase": if ok { "Succeeded" } else { "Failed" }, "finishedAt": rfc3339()});
        if let Some(m) = &result.performance_metrics {
            entry["metrics"] = serde_json::to_value(m).unwrap_or(Value::Null);
        }
        if let Some(e) = &result.error {
            entry["error"] = serde_json::to_value(e).unwrap_or(Value::Null);
            entry["message"] = e.to_string().into();
            if let Some(peer) = blamed {
                entry["blamedPeer"] = peer.into();
            }
        }
        if ok {
            entry["progress"] = json!({"fraction": 1.0, "phase": "done"});
        }
        let mut status = json!({"parties": {self.party.clone(): entry}});
        if holder && ok {
            status["result"] = serde_json::to_value(result).unwrap_or(Value::Null);
        }
        self.patch(status).await;
    }

    /// A progress sink that patches at most every [`PROGRESS_EVERY`], from a background task.
    pub fn progress(&self) -> Arc<dyn ProgressSink> {
        let (tx, mut rx) = watch::channel::<Option<(f64, String)>>(None);
        let me = self.clone();
        tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let latest = rx.borrow_and_update().clone();
                if let Some((fraction, phase)) = latest {
                    me.party(json!({"progress": {"fraction": fraction, "phase": phase}})).await;
                }
                tokio::time::sleep(PROGRESS_EVERY).await;
            }
        });
        Arc::new(WatchProgress(tx))
    }
}

struct WatchProgress(watch::Sender<Option<(f64, String)>>);

impl ProgressSink for WatchProgress {
    fn report(&self, _party: &str, fraction: f64, phase: &str) {
        let _ = self.0.send(Some((fraction, phase.to_string())));
    }
}

/// The party that writes the task result: the one the task names as receiving it (`receiver`,
/// `prediction_receiver`, `label_party`), else the first party.
pub fn result_holder(request: &Value) -> Option<String> {
    let tc = request.get("task_config")?;
    for key in ["receiver", "prediction_receiver", "label_party"] {
        if let Some(p) = tc.get(key).and_then(Value::as_str) {
            return Some(p.to_string());
        }
    }
    match request.pointer("/sf_init_config/parties")? {
        Value::Array(a) => a.first()?.as_str().map(String::from),
        Value::Object(m) => m.keys().next().cloned(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_result_holder_is_the_receiver_or_the_first_party() {
        let r = json!({"sf_init_config": {"parties": {"bob": {}, "alice": {}}}, "task_config": {"receiver": "alice"}});
        assert_eq!(result_holder(&r).as_deref(), Some("alice"));
        let r = json!({"sf_init_config": {"parties": {"bob": {"address": "x"}, "alice": {}}}, "task_config": {}});
        assert_eq!(result_holder(&r).as_deref(), Some("bob"));
        let r = json!({"sf_init_config": {"parties": ["carol", "dave"]}, "task_config": {}});
        assert_eq!(result_holder(&r).as_deref(), Some("carol"));
    }
}
