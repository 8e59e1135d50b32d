//! The controller: SecretFlowTasks to party pods and back. [`reconcile`] decides (a pure function, tested
//! without a server), [`children`] builds the Service / ConfigMap / Pods,
//! [`certs`] issues the link certificates, [`run`] is the kube glue and
//! [`metrics`] the `/metrics` and `/healthz` endpoints.

pub mod certs;
pub mod children;
pub mod metrics;
pub mod reconcile;
pub mod run;

#[cfg(test)]
pub(crate) mod tests;
