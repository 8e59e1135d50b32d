//! The Celery result backend on Redis (celery-wire.md section 3): `celery-task-meta-<id>` written with SETEX
//! and PUBLISHed in one MULTI, never overwriting a stored SUCCESS, in the shape `AsyncResult.get()` reads.

use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use serde_json::{Map, Value, json};

use super::message::{CeleryError, TaskMessage};

/// Celery task states the bridge stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Running (stored only with `--track-started`).
    Started,
    /// Returned a value.
    Success,
    /// Raised.
    Failure,
    /// Revoked or expired.
    Revoked,
}

impl State {
    /// Celery's name.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Started => "STARTED",
            State::Success => "SUCCESS",
            State::Failure => "FAILURE",
            State::Revoked => "REVOKED",
        }
    }
}

/// Whether a stored status string ends `get()` (the task will not run again).
pub fn is_terminal(status: &str) -> bool {
    matches!(status, "SUCCESS" | "FAILURE" | "REVOKED")
}

/// Where results go.
#[derive(Clone)]
pub struct Backend {
    conn: ConnectionManager,
    /// Seconds a result is kept (`result_expires`).
    pub expires: u64,
    /// Store `name, args, kwargs, worker, retries, queue` too (`result_extended`).
    pub extended: bool,
}

/// The backend key and channel of a task.
pub fn meta_key(task_id: &str) -> String {
    format!("celery-task-meta-{task_id}")
}

/// Celery's `date_done`: ISO-8601 with microseconds and `+00:00`.
pub fn date_done() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
}

impl Backend {
    /// A backend on `conn`.
    pub fn new(conn: ConnectionManager, expires: u64, extended: bool) -> Self {
        Backend { conn, expires, extended }
    }

    /// The stored status of a task, if any.
    pub async fn status(&self, task_id: &str) -> redis::RedisResult<Option<String>> {
        let mut conn = self.conn.clone();
        let raw: Option<String> = conn.get(meta_key(task_id)).await?;
        Ok(raw.and_then(|r| serde_json::from_str::<Value>(&r).ok()?.get("status")?.as_str().map(String::from)))
    }

    /// Store `state` for `task_id` and wake its waiters, unless a SUCCESS is already stored.
    pub async fn store(&self, task_id: &str, meta: &Value) -> redis::RedisResult<()> {
        if self.status(task_id).await?.as_deref() == Some("SUCCESS") {
            return Ok(());
        }
        let key = meta_key(task_id);
        let text = meta.to_string();
        let mut conn = self.conn.clone();
        redis::pipe()
            .atomic()
            .set_ex(&key, &text, self.expires)
            .ignore()
            .publish(&key, &text)
            .ignore()
            .query_async(&mut conn)
            .await
    }

    /// The stored meta for a message in `state` with `result` (and a traceback on failures).
    pub fn meta(
        &self,
        msg: Option<&TaskMessage>,
        task_id: &str,
        state: State,
        result: Value,
        tb: Option<&str>,
    ) -> Value {
        let mut m = Map::new();
        m.insert("status".into(), state.as_str().into());
        m.insert("result".into(), result);
        m.insert("traceback".into(), tb.map_or(Value::Null, |t| t.into()));
        m.insert("children".into(), json!([]));
        let done = if state == State::Started { Value::Null } else { date_done().into() };
        m.insert("date_done".into(), done);
        if self.extended {
            extended_fields(&mut m, msg);
        }
        if let Some(parent) = msg.and_then(|m| m.parent_id.clone()) {
            m.insert("parent_id".into(), parent.into());
        }
        m.insert("task_id".into(), task_id.into());
        Value::Object(m)
    }

    /// The meta of a failure.
    pub fn failure_meta(&self, msg: Option<&TaskMessage>, task_id: &str, e: &CeleryError, state: State) -> Value {
        self.meta(msg, task_id, state, e.to_json(), e.traceback.as_deref())
    }
}

/// `result_extended` fields; null for a message that never reached a task (NotRegistered).
fn extended_fields(m: &mut Map<String, Value>, msg: Option<&TaskMessage>) {
    let (name, args, kwargs, retries, queue) = match msg {
        Some(msg) => match msg.body() {
            Ok(body) => (
                Value::from(msg.task.clone()),
                Value::Array(body.args),
                Value::Object(body.kwargs),
                Value::from(msg.retries),
                Value::from(msg.routing_key.clone()),
            ),
            Err(_) => {
                (msg.task.clone().into(), Value::Null, Value::Null, msg.retries.into(), msg.routing_key.clone().into())
            }
        },
        None => (Value::Null, Value::Null, Value::Null, Value::Null, Value::Null),
    };
    m.insert("name".into(), name);
    m.insert("args".into(), args);
    m.insert("kwargs".into(), kwargs);
    m.insert("worker".into(), Value::Null);
    m.insert("retries".into(), retries);
    m.insert("queue".into(), queue);
}

/// Fill in `worker` once known (the hostname of the bridge that ran it).
pub fn set_worker(meta: &mut Value, hostname: &str) {
    if let Some(m) = meta.as_object_mut()
        && m.contains_key("worker")
        && m.get("name").is_some_and(|n| !n.is_null())
    {
        m.insert("worker".into(), hostname.into());
    }
}

/// kombu decodes an object whose keys are exactly `__type__` and `__value__` as a typed value; such an
/// object must never be emitted. Returns the JSON path of the first one.
pub fn find_kombu_typed(v: &Value, path: &mut String) -> bool {
    match v {
        Value::Object(m) => {
            if m.len() == 2 && m.contains_key("__type__") && m.contains_key("__value__") {
                return true;
            }
            for (k, v) in m {
                let len = path.len();
                path.push('.');
                path.push_str(k);
                if find_kombu_typed(v, path) {
                    return true;
                }
                path.truncate(len);
            }
            false
        }
        Value::Array(a) => a.iter().enumerate().any(|(i, v)| {
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            let found = find_kombu_typed(v, path);
            if !found {
                path.truncate(len);
            }
            found
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_objects_are_found_with_their_path() {
        let mut p = String::new();
        let v = json!({"a": [1, {"__type__": "x", "__value__": 1}]});
        assert!(find_kombu_typed(&v, &mut p));
        assert_eq!(p, ".a[1]");
        let mut p = String::new();
        assert!(!find_kombu_typed(&json!({"__type__": 1, "__value__": 2, "c": 3}), &mut p));
    }

    #[test]
    fn terminal_states() {
        assert!(is_terminal("SUCCESS") && is_terminal("FAILURE") && is_terminal("REVOKED"));
        assert!(!is_terminal("STARTED") && !is_terminal("RETRY") && !is_terminal("PENDING"));
    }
}
