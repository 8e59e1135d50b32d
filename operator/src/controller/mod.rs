//! The controller: SecretFlowTasks to party pods and back. [`reconcile`] decides (a pure function, tested
//! without a server), [`children`] builds the Service / ConfigMap / Pods.

pub mod children;
pub mod reconcile;

#[cfg(test)]
pub(crate) mod tests;
