//! The Worker API's task status event (spec section 8), published on `task_status_events` and pushed to
//! `task_status_queue`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `RUNNING`, `SUCCESS`, `FAILURE` or `RETRY`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum EventStatus {
    /// Started.
    Running,
    /// Finished with a result.
    Success,
    /// Finished with an error.
    Failure,
    /// Will run again.
    Retry,
}

/// The `data` object of an event.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct StatusEventData {
    /// The DAG id.
    pub task_id: String,
    /// The node id.
    pub subtask_id: String,
    /// The execution id.
    pub execution_id: String,
    /// When it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// The execution result, on SUCCESS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// The error message, on FAILURE or RETRY.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One status event.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct StatusEvent {
    /// The execution id.
    pub execution_id: String,
    /// The DAG id.
    pub task_id: String,
    /// The node id.
    pub subtask_id: String,
    /// The new status.
    pub status: EventStatus,
    /// When, ISO-8601 UTC with a `Z`.
    pub timestamp: String,
    /// Details.
    pub data: StatusEventData,
    /// The emitting container (`secretflow-worker` for compatibility).
    pub worker_container: String,
    /// The Celery task name.
    pub task_name: String,
}
