//! Where a request runs. `local` runs it in this process with the party-runtime library (every party of a
//! local-mode request; only `self_party` of a cluster-mode one, listening on its `listen_addr`).
//! `kubernetes` writes a SecretFlowTask per execution for the operator to run (`super::kubernetes`).

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use party_runtime::RunOptions;
use party_runtime::data::DataPolicy;
use secretflow_crds::ExecutionResult;

/// Runs Worker-API requests.
#[async_trait]
pub trait Executor: Send + Sync {
    /// Run one request (the `task_params` of the Celery message) to its execution result. Dropping the future
    /// cancels the run.
    async fn execute(&self, params: &Value) -> ExecutionResult;
}

/// Runs requests in this process.
pub struct LocalExecutor {
    opts: RunOptions,
}

impl LocalExecutor {
    /// An executor confined to `roots` (none: anywhere), waiting `link_timeout` for peers.
    pub fn new(roots: Vec<std::path::PathBuf>, link_timeout: Duration) -> Self {
        LocalExecutor { opts: RunOptions { data: DataPolicy::new(roots), link_timeout, ..RunOptions::default() } }
    }
}

#[async_trait]
impl Executor for LocalExecutor {
    async fn execute(&self, params: &Value) -> ExecutionResult {
        party_runtime::run_request(&params.to_string(), &self.opts).await
    }
}
