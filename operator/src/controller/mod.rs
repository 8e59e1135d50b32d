//! The controller: SecretFlowTasks to party pods and back, SecretFlowPipelines to step tasks. [`reconcile`]
//! and [`pipeline`] decide (pure functions, tested without a server), [`children`] builds the Service /
//! ConfigMap / Pods, `status` the status patches both write, [`certs`] issues the link certificates, [`run`] and [`pipeline_run`] are the kube glue
//! and [`metrics`] the `/metrics` and `/healthz` endpoints.

pub mod certs;
pub mod children;
pub mod metrics;
pub mod pipeline;
pub mod pipeline_run;
pub mod reconcile;
pub mod run;
mod status;

#[cfg(test)]
pub(crate) mod tests;
