//! The contract of secretflow-operator, with no I/O.
//!
//! Everything the web application, the operator, the bridge and the party runtimes must agree on lives here:
//! the Worker-API request ([`request`]), one typed configuration per `task_type` with validation that names the
//! offending field ([`tasks`]), the result and error shapes ([`result`], [`error`]), the status-event shape
//! ([`event`]), the `SecretFlowTask` custom resource ([`crd`]) and the `SecretFlowPipeline` that runs a DAG of
//! them ([`pipeline`]). Parsing is done in two steps, after ripgrep's low/high args: serde
//! reads the raw JSON, then `validate` produces typed values or a `ValueError`.
#![deny(missing_docs)]

pub mod convert;
pub mod crd;
pub mod error;
pub mod event;
pub mod outputs;
mod parse;
pub mod pipeline;
pub mod request;
pub mod result;
pub mod tasks;

pub use error::{ErrorInfo, ErrorType, ValidationError};
pub use request::{ClusterMode, Field, PartyEndpoint, SfInitConfig, SpuConfig, ValidRequest, WorkerRequest};
pub use result::{ExecutionResult, PerformanceMetrics, TaskMetadata};
pub use tasks::{TaskConfig, TaskType};
