//! secretflow-operator: the Kubernetes controller for SecretFlowTasks and the Celery bridge that feeds it
//! (or runs requests in-process) from the web container's Redis queue.
#![deny(missing_docs)]

pub mod bridge;
pub mod controller;
