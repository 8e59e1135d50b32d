//! One message from claim to acknowledgement: dispatch, revoke / expiry / duplicate checks, eta, the
//! per-execution lock, the run under its time limit, the stored result, events, and the late ack.
//! A message that was claimed but not started when the bridge shuts down goes back onto its queue.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use secretflow_crds::event::EventStatus;
use secretflow_crds::result::ExecStatus;
use secretflow_crds::{ErrorInfo, ErrorType, ExecutionResult};

use super::backend::{Backend, State, find_kombu_typed, is_terminal, set_worker};
use super::broker::{Broker, try_lock};
use super::control::Revokes;
use super::events::{Events, StatusData};
use super::executor::Executor;
use super::message::{CeleryError, TASK_NAME, TaskMessage, python_repr};

/// What a failed execution becomes in the result backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FailureMode {
    /// The Worker API's documented failure object, returned as a Celery SUCCESS (`get()` returns it).
    Return,
    /// A Celery FAILURE whose `exc_type` is the error type (`get()` raises it).
    Raise,
}

/// Settings the handler needs.
pub struct Settings {
    /// `bridge@host`.
    pub hostname: String,
    /// How failures are stored.
    pub failure_mode: FailureMode,
    /// Store STARTED when a task starts (`task_track_started`).
    pub track_started: bool,
    /// Hard time limit for messages that carry none.
    pub time_limit: Option<f64>,
    /// How long an execution lock lives without a refresh.
    pub lock_ttl: Duration,
}

/// Everything the handlers share.
pub struct Shared {
    /// The queue.
    pub broker: Broker,
    /// Results.
    pub backend: Backend,
    /// Events.
    pub events: Events,
    /// Revoked ids.
    pub revokes: Revokes,
    /// Where requests run.
    pub executor: Arc<dyn Executor>,
    /// Settings.
    pub settings: Settings,
    /// Bounded concurrency.
    pub slots: Arc<Semaphore>,
    /// Flips to true on shutdown.
    pub shutdown: watch::Receiver<bool>,
    /// Connection for execution locks.
    pub conn: ConnectionManager,
    /// Claimed messages (delivery tag -> held execution lock key), refreshed so nobody restores them.
    pub inflight: Mutex<HashMap<String, Option<String>>>,
}

/// How a handler ended.
enum End {
    /// Done with it: acknowledge.
    Ack,
    /// Not started before shutdown: put it back.
    Requeue,
}

/// The outcome of running a request.
enum Run {
    Finished(Box<ExecutionResult>),
    TimeLimit(f64),
    Terminated,
}

impl Shared {
    fn inflight(&self) -> std::sync::MutexGuard<'_, HashMap<String, Option<String>>> {
        self.inflight.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The tags and lock keys to refresh.
    pub fn inflight_snapshot(&self) -> (Vec<String>, Vec<String>) {
        let g = self.inflight();
        (g.keys().cloned().collect(), g.values().flatten().cloned().collect())
    }

    fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Handle one claimed message and acknowledge or requeue it. Redis errors are logged; the message then
    /// stays in `unacked` and is restored after the visibility timeout, so nothing is lost.
    pub async fn handle(self: Arc<Self>, msg: TaskMessage, permit: OwnedSemaphorePermit) {
        self.inflight().insert(msg.delivery_tag.clone(), None);
        let outcome = self.process(&msg, Some(permit)).await;
        let lock = self.inflight().remove(&msg.delivery_tag).flatten();
        if let Some(key) = lock {
            let mut conn = self.conn.clone();
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(key).query_async(&mut conn).await;
        }
        let done = match outcome {
            Ok(End::Ack) => self.broker.ack(&msg.delivery_tag).await,
            Ok(End::Requeue) => self.broker.restore_by_tag(&msg.delivery_tag).await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = done {
            tracing::error!(task_id = %msg.id, error = %e, "Redis error; the message stays unacked and will be restored");
        }
    }

    async fn process(&self, msg: &TaskMessage, mut permit: Option<OwnedSemaphorePermit>) -> redis::RedisResult<End> {
        if msg.task != TASK_NAME {
            tracing::error!(task = %msg.task, id = %msg.id, "received an unregistered task");
            let e = CeleryError::new("NotRegistered", "celery.exceptions", msg.task.clone());
            self.store(msg, &self.backend.failure_meta(None, &msg.id, &e, State::Failure)).await?;
            return Ok(End::Ack);
        }
        if let Some(status) = self.backend.status(&msg.id).await?
            && is_terminal(&status)
        {
            tracing::info!(id = %msg.id, %status, "duplicate delivery of a finished task; acknowledged without running");
            return Ok(End::Ack);
        }
        self.events
            .celery(
                "task-received",
                json!({"uuid": msg.id, "name": msg.task, "args": msg.argsrepr, "kwargs": msg.kwargsrepr,
                       "root_id": msg.root_id, "parent_id": msg.parent_id, "retries": msg.retries,
                       "eta": msg.eta_raw, "expires": msg.expires.map(|t| t.to_string())}),
            )
            .await;
        if let Some(end) = self.revoked_or_expired(msg).await? {
            return Ok(end);
        }
        if let Some(eta) = msg.eta {
            let wait = eta.duration_since(jiff::Timestamp::now());
            if wait.is_positive() {
                permit = None; // waiting for an eta does not hold a concurrency slot
                let wait = Duration::try_from(wait).unwrap_or_default();
                if !self.wait_or_shutdown(wait).await {
                    return Ok(End::Requeue);
                }
                if let Some(end) = self.revoked_or_expired(msg).await? {
                    return Ok(end);
                }
            }
        }
        let params = match msg.body().and_then(|b| b.task_params().cloned()) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(id = %msg.id, error = %e.repr(), "refused message");
                self.store(msg, &self.backend.failure_meta(Some(msg), &msg.id, &e, State::Failure)).await?;
                return Ok(End::Ack);
            }
        };
        let _permit = match permit {
            Some(p) => p,
            None => {
                let mut stop = self.shutdown.clone();
                tokio::select! {
                    p = self.slots.clone().acquire_owned() => p.map_err(|_| closed())?,
                    _ = stop.wait_for(|s| *s) => return Ok(End::Requeue),
                }
            }
        };
        if !self.lock_execution(msg, &params).await? {
            return Ok(End::Requeue);
        }
        if self.stopping() {
            return Ok(End::Requeue);
        }
        self.run(msg, &params).await?;
        Ok(End::Ack)
    }

    /// Store REVOKED for a revoked or expired message; `Some(Ack)` when it must not run.
    async fn revoked_or_expired(&self, msg: &TaskMessage) -> redis::RedisResult<Option<End>> {
        let reason = if self.revokes.contains(&msg.id) {
            "revoked"
        } else if msg.expires.is_some_and(|e| e <= jiff::Timestamp::now()) {
            "expired"
        } else {
            return Ok(None);
        };
        tracing::info!(id = %msg.id, reason, "not running");
        let e = CeleryError::new("TaskRevokedError", "celery.exceptions", reason);
        self.store(msg, &self.backend.failure_meta(Some(msg), &msg.id, &e, State::Revoked)).await?;
        self.events
            .celery(
                "task-revoked",
                json!({"uuid": msg.id, "terminated": false, "signum": null, "expired": reason == "expired"}),
            )
            .await;
        Ok(Some(End::Ack))
    }

    /// Sleep for `d` unless the bridge shuts down first (then false).
    async fn wait_or_shutdown(&self, d: Duration) -> bool {
        let mut stop = self.shutdown.clone();
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = stop.wait_for(|s| *s) => false,
        }
    }

    /// Take the lock that keeps one `execution_id` from running twice at once, waiting while another
    /// consumer holds it. False when the bridge shuts down while waiting.
    async fn lock_execution(&self, msg: &TaskMessage, params: &Value) -> redis::RedisResult<bool> {
        let Some(exec) = params.get("execution_id").and_then(Value::as_str).filter(|e| !e.is_empty()) else {
            return Ok(true);
        };
        let key = format!("secretflow-bridge:execution:{exec}");
        let mut conn = self.conn.clone();
        let mut logged = false;
        loop {
            if try_lock(&mut conn, &key, &msg.id, self.settings.lock_ttl.as_millis() as u64).await? {
                self.inflight().insert(msg.delivery_tag.clone(), Some(key));
                return Ok(true);
            }
            if !logged {
                tracing::info!(execution_id = exec, id = %msg.id, "execution already running elsewhere; waiting");
                logged = true;
            }
            if !self.wait_or_shutdown(Duration::from_millis(500)).await {
                return Ok(false);
            }
        }
    }

    /// Run the request and store its result.
    async fn run(&self, msg: &TaskMessage, params: &Value) -> redis::RedisResult<()> {
        let started_at = party_runtime::runner::now_iso();
        if msg.redelivered {
            let error = Some("redelivered: the worker that held it was lost".to_string());
            self.events.status(params, EventStatus::Retry, StatusData { error, ..StatusData::default() }).await;
        }
        if self.settings.track_started && !msg.ignore_result {
            let info = json!({"pid": std::process::id(), "hostname": self.settings.hostname});
            let mut meta = self.backend.meta(Some(msg), &msg.id, State::Started, info, None);
            set_worker(&mut meta, &self.settings.hostname);
            self.backend.store(&msg.id, &meta).await?;
        }
        self.events.celery("task-started", json!({"uuid": msg.id})).await;
        let running = StatusData { started_at: Some(started_at.clone()), ..StatusData::default() };
        self.events.status(params, EventStatus::Running, running).await;
        self.events.active.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let clock = Instant::now();
        let outcome = self.execute(msg, params).await;
        let runtime = clock.elapsed().as_secs_f64();
        self.events.active.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        self.events.processed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let celery_metadata = json!({
            "celery_task_id": msg.id,
            "celery_queue": msg.routing_key,
            "celery_exchange": msg.exchange,
            "retry_count": msg.retries,
            "celery_execution_time": runtime,
            "worker_hostname": self.settings.hostname,
            "task_eta": msg.eta_raw,
        });
        let started = Some(started_at);
        match outcome {
            Run::Finished(exec) => self.finished(msg, params, *exec, celery_metadata, runtime, started).await,
            Run::TimeLimit(limit) => {
                tracing::error!(id = %msg.id, limit, "hard time limit exceeded");
                let mut e = CeleryError::new("TimeLimitExceeded", "billiard.exceptions", "");
                e.exc_message = vec![json!(limit)];
                e.traceback = Some(format!("TimeLimitExceeded: hard time limit ({limit}s) exceeded\n"));
                self.failed(msg, params, &e, State::Failure, started).await
            }
            Run::Terminated => {
                let e = CeleryError::new("TaskRevokedError", "celery.exceptions", "terminated");
                self.events
                    .celery("task-revoked", json!({"uuid": msg.id, "terminated": true, "signum": 15, "expired": false}))
                    .await;
                self.failed(msg, params, &e, State::Revoked, started).await
            }
        }
    }

    /// Run under the hard time limit, stopping early on a terminating revoke.
    async fn execute(&self, msg: &TaskMessage, params: &Value) -> Run {
        let terminate = self.revokes.running(&msg.id);
        let limit = msg.hard_time_limit.or(self.settings.time_limit).filter(|l| *l > 0.0);
        let run = self.executor.execute(params);
        let out = tokio::select! {
            r = async {
                match limit {
                    Some(l) => tokio::time::timeout(Duration::from_secs_f64(l), run).await.map_or(Run::TimeLimit(l), |r| Run::Finished(Box::new(r))),
                    None => Run::Finished(Box::new(run.await)),
                }
            } => r,
            _ = terminate.notified() => Run::Terminated,
        };
        self.revokes.finished(&msg.id);
        out
    }

    /// Store a finished execution per the failure mode, with events.
    async fn finished(
        &self,
        msg: &TaskMessage,
        params: &Value,
        exec: ExecutionResult,
        celery_metadata: Value,
        runtime: f64,
        started_at: Option<String>,
    ) -> redis::RedisResult<()> {
        let mut exec = exec;
        if let Some(out) = &exec.result {
            let mut path = String::from("result");
            if find_kombu_typed(out, &mut path) {
                let message = format!(
                    "{path} is an object with exactly the keys __type__ and __value__, which Celery clients \
                     would decode as a typed value; rename those columns"
                );
                exec = ExecutionResult {
                    status: ExecStatus::Failure,
                    result: None,
                    error: Some(ErrorInfo::new(ErrorType::RuntimeError, message)),
                    ..exec
                };
            }
        }
        let error = exec.error.clone();
        let mut inner = serde_json::to_value(&exec).unwrap_or_else(|_| json!({}));
        if let Some(m) = inner.as_object_mut() {
            m.insert("celery_metadata".into(), celery_metadata);
        }
        match (error, self.settings.failure_mode) {
            (Some(err), FailureMode::Raise) => {
                let mut e = CeleryError::new(err.kind.as_str(), "builtins", err.message.clone());
                e.traceback = Some(err.traceback.clone());
                self.failed(msg, params, &e, State::Failure, started_at).await
            }
            (error, _) => {
                let value = json!({
                    "task_id": params.get("task_id"),
                    "subtask_id": params.get("subtask_id"),
                    "execution_id": params.get("execution_id"),
                    "result": inner,
                    "completed_at": party_runtime::runner::now_iso(),
                });
                let mut meta = self.backend.meta(Some(msg), &msg.id, State::Success, value, None);
                set_worker(&mut meta, &self.settings.hostname);
                self.store(msg, &meta).await?;
                let repr = python_repr(&meta["result"]);
                self.events.celery("task-succeeded", json!({"uuid": msg.id, "result": repr, "runtime": runtime})).await;
                let data = match error {
                    None => StatusData { started_at, result: Some(inner), error: None },
                    Some(err) => StatusData { started_at, result: None, error: Some(err.to_string()) },
                };
                let status = if data.error.is_some() { EventStatus::Failure } else { EventStatus::Success };
                self.events.status(params, status, data).await;
                Ok(())
            }
        }
    }

    /// Store a Celery FAILURE or REVOKED, with events.
    async fn failed(
        &self,
        msg: &TaskMessage,
        params: &Value,
        e: &CeleryError,
        state: State,
        started_at: Option<String>,
    ) -> redis::RedisResult<()> {
        let mut meta = self.backend.failure_meta(Some(msg), &msg.id, e, state);
        set_worker(&mut meta, &self.settings.hostname);
        self.store(msg, &meta).await?;
        if state == State::Failure {
            self.events
                .celery("task-failed", json!({"uuid": msg.id, "exception": e.repr(), "traceback": e.traceback}))
                .await;
        }
        let data = StatusData { started_at, result: None, error: Some(e.repr()) };
        self.events.status(params, EventStatus::Failure, data).await;
        Ok(())
    }

    /// Store unless the message asked for no result.
    async fn store(&self, msg: &TaskMessage, meta: &Value) -> redis::RedisResult<()> {
        if msg.ignore_result {
            return Ok(());
        }
        self.backend.store(&msg.id, meta).await
    }
}

fn closed() -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::Io, "the bridge is shutting down"))
}
