//! The execution result envelope (spec "返回结果" and section 9): `status`, `result`, `performance_metrics`,
//! `task_metadata`, or `status: "failure"` with an `error`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ErrorInfo;

/// `"success"` or `"failure"`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExecStatus {
    /// The task ran to completion.
    Success,
    /// The task failed; `error` says why.
    Failure,
}

/// What one execution returns (the object inside the Celery envelope).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ExecutionResult {
    /// Success or failure.
    pub status: ExecStatus,
    /// The task's own output (success only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// The error (failure only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
    /// Timings and communication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub performance_metrics: Option<PerformanceMetrics>,
    /// Ids, type and timestamps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_metadata: Option<TaskMetadata>,
}

impl ExecutionResult {
    /// A failure carrying only its error (the request could not be read far enough for metadata).
    pub fn failure(error: ErrorInfo) -> Self {
        ExecutionResult {
            status: ExecStatus::Failure,
            result: None,
            error: Some(error),
            performance_metrics: None,
            task_metadata: None,
        }
    }
}

/// Bytes and rounds one party spent on the link.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct CommStats {
    /// Payload bytes sent.
    pub bytes_sent: u64,
    /// Payload bytes received.
    pub bytes_received: u64,
    /// Communication rounds: each switch from sending to waiting for a message counts one.
    pub rounds: u64,
}

impl std::ops::Add for CommStats {
    type Output = CommStats;
    fn add(self, o: CommStats) -> CommStats {
        CommStats {
            bytes_sent: self.bytes_sent + o.bytes_sent,
            bytes_received: self.bytes_received + o.bytes_received,
            rounds: self.rounds + o.rounds,
        }
    }
}

/// `performance_metrics`: the spec's timings (seconds) and shares (percent), plus communication.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct PerformanceMetrics {
    /// Wall time of the whole execution.
    pub total_execution_time: f64,
    /// Parsing, validation and link set-up.
    pub cluster_init_time: f64,
    /// MPC device set-up (0 for tasks without one).
    pub device_init_time: f64,
    /// The job itself.
    pub algorithm_exec_time: f64,
    /// Everything else (reporting, output).
    pub overhead_time: f64,
    /// `cluster_init_time` as a percentage of the total.
    pub cluster_init_percentage: f64,
    /// `device_init_time` as a percentage of the total.
    pub device_init_percentage: f64,
    /// `algorithm_exec_time` as a percentage of the total.
    pub algorithm_exec_percentage: f64,
    /// Bytes sent, summed over the parties this process ran.
    pub bytes_sent: u64,
    /// Bytes received, summed over the parties this process ran.
    pub bytes_received: u64,
    /// Rounds, the maximum over the parties this process ran.
    pub rounds: u64,
    /// Per-party communication.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parties: BTreeMap<String, CommStats>,
    /// Peak resident memory of this process in bytes, where the platform reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_memory_bytes: Option<u64>,
}

impl PerformanceMetrics {
    /// Build from the four phase durations (seconds) and per-party communication.
    pub fn new(
        cluster_init: f64,
        device_init: f64,
        algorithm: f64,
        total: f64,
        parties: BTreeMap<String, CommStats>,
    ) -> Self {
        let overhead = (total - cluster_init - device_init - algorithm).max(0.0);
        let pct = |x: f64| {
            if total > 0.0 { round(100.0 * x / total, 1) } else { 0.0 }
        };
        PerformanceMetrics {
            total_execution_time: round(total, 6),
            cluster_init_time: round(cluster_init, 6),
            device_init_time: round(device_init, 6),
            algorithm_exec_time: round(algorithm, 6),
            overhead_time: round(overhead, 6),
            cluster_init_percentage: pct(cluster_init),
            device_init_percentage: pct(device_init),
            algorithm_exec_percentage: pct(algorithm),
            bytes_sent: parties.values().map(|c| c.bytes_sent).sum(),
            bytes_received: parties.values().map(|c| c.bytes_received).sum(),
            rounds: parties.values().map(|c| c.rounds).max().unwrap_or(0),
            parties,
            peak_memory_bytes: None,
        }
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (x * m).round() / m
}

/// `task_metadata`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct TaskMetadata {
    /// The DAG id.
    pub task_id: String,
    /// The node id.
    pub subtask_id: String,
    /// The execution id.
    pub execution_id: String,
    /// The task type's wire name.
    pub task_type: String,
    /// Start, ISO-8601 (UTC, microseconds, no offset: as Python's `datetime.isoformat()`).
    pub started_at: String,
    /// End, same format.
    pub completed_at: String,
    /// The parties, plus `spu` when the task ran on the MPC device.
    pub devices_used: Vec<String>,
}
