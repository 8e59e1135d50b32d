//! What the bridge announces: Celery events on `/<db>.celeryev/<type>` (so Flower and `celery events` see
//! it as a worker, celery-wire.md section 5) and the Worker API status stream (`task_status_events` PUBLISH
//! plus `task_status_queue` list, spec section 8).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use redis::aio::ConnectionManager;
use serde_json::{Map, Value, json};

use secretflow_crds::event::{EventStatus, StatusEvent, StatusEventData};

use super::message::TASK_NAME;

/// The Worker API's channel and list.
pub const STATUS_CHANNEL: &str = "task_status_events";
/// The Worker API's status list (newest first, LPUSH; trimmed to [`STATUS_QUEUE_MAX`]).
pub const STATUS_QUEUE: &str = "task_status_queue";
/// The status list keeps at most this many events, so that it cannot grow without bound when nobody reads it.
pub const STATUS_QUEUE_MAX: isize = 10_000;

/// Publishes events; cheap to clone.
#[derive(Clone)]
pub struct Events {
    conn: ConnectionManager,
    /// `/<db>.celeryev/` (kombu's fanout prefix for the broker's database).
    prefix: String,
    /// The worker name, `bridge@host`.
    pub hostname: String,
    /// Send Celery events at all (`--no-events` turns them off; the status stream is always sent).
    pub celery_events: bool,
    clock: Arc<AtomicU64>,
    /// Tasks finished, for heartbeats.
    pub processed: Arc<AtomicU64>,
    /// Tasks running, for heartbeats.
    pub active: Arc<AtomicU64>,
}

impl Events {
    /// Events for broker database `db`.
    pub fn new(conn: ConnectionManager, db: i64, hostname: &str, celery_events: bool) -> Self {
        Events {
            conn,
            prefix: format!("/{db}.celeryev/"),
            hostname: hostname.into(),
            celery_events,
            clock: Arc::new(AtomicU64::new(0)),
            processed: Arc::new(AtomicU64::new(0)),
            active: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The event body every Celery event shares, plus `fields`.
    fn body(&self, kind: &str, fields: Value) -> Value {
        let mut m = Map::new();
        m.insert("hostname".into(), self.hostname.clone().into());
        m.insert("utcoffset".into(), 0.0.into());
        m.insert("pid".into(), std::process::id().into());
        m.insert("clock".into(), (self.clock.fetch_add(1, Ordering::Relaxed) + 1).into());
        if let Value::Object(f) = fields {
            m.extend(f);
        }
        m.insert("timestamp".into(), super::broker::unix_now().into());
        m.insert("type".into(), kind.into());
        Value::Object(m)
    }

    /// Publish one Celery event of `kind` (`task-started`, `worker-heartbeat`, ...).
    pub async fn celery(&self, kind: &str, fields: Value) {
        if !self.celery_events {
            return;
        }
        let body = self.body(kind, fields);
        let routing_key = kind.replace('-', ".");
        let envelope = json!({
            "body": base64::engine::general_purpose::STANDARD.encode(body.to_string()),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": {"hostname": self.hostname},
            "properties": {
                "delivery_mode": 1,
                "delivery_info": {"exchange": "celeryev", "routing_key": routing_key},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": uuid::Uuid::new_v4().to_string(),
            },
        });
        let mut conn = self.conn.clone();
        let sent: redis::RedisResult<()> = redis::cmd("PUBLISH")
            .arg(format!("{}{routing_key}", self.prefix))
            .arg(envelope.to_string())
            .query_async(&mut conn)
            .await;
        if let Err(e) = sent {
            tracing::warn!(error = %e, kind, "could not publish a Celery event");
        }
    }

    /// The worker fields of `worker-online` / `worker-heartbeat` / `worker-offline`.
    pub fn worker_fields(&self) -> Value {
        json!({
            "freq": 2.0,
            "active": self.active.load(Ordering::Relaxed),
            "processed": self.processed.load(Ordering::Relaxed),
            "loadavg": loadavg(),
            "sw_ident": "secretflow-bridge",
            "sw_ver": env!("CARGO_PKG_VERSION"),
            "sw_sys": std::env::consts::OS,
        })
    }

    /// Publish a Worker API status event and push it onto the status list, in one MULTI.
    pub async fn status(&self, params: &Value, status: EventStatus, data: StatusData) {
        let id = |k: &str| params.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let event = StatusEvent {
            execution_id: id("execution_id"),
            task_id: id("task_id"),
            subtask_id: id("subtask_id"),
            status,
            timestamp: jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
            data: StatusEventData {
                task_id: id("task_id"),
                subtask_id: id("subtask_id"),
                execution_id: id("execution_id"),
                started_at: data.started_at,
                result: data.result,
                error: data.error,
            },
            worker_container: "secretflow-worker".into(),
            task_name: TASK_NAME.into(),
        };
        let text = match serde_json::to_string(&event) {
            Ok(t) => t,
            Err(e) => return tracing::warn!(error = %e, "status event encoding"),
        };
        let mut conn = self.conn.clone();
        let sent: redis::RedisResult<()> = redis::pipe()
            .atomic()
            .publish(STATUS_CHANNEL, &text)
            .ignore()
            .lpush(STATUS_QUEUE, &text)
            .ignore()
            .ltrim(STATUS_QUEUE, 0, STATUS_QUEUE_MAX - 1)
            .ignore()
            .query_async(&mut conn)
            .await;
        if let Err(e) = sent {
            tracing::warn!(error = %e, "could not publish a status event");
        }
    }
}

/// The variable part of a status event.
#[derive(Default)]
pub struct StatusData {
    /// When the execution started.
    pub started_at: Option<String>,
    /// The execution result (SUCCESS).
    pub result: Option<Value>,
    /// The error message (FAILURE, RETRY).
    pub error: Option<String>,
}

/// The 1/5/15-minute load averages (`/proc/loadavg`), as Celery reports them.
fn loadavg() -> Vec<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_default()
}
