//! Remote control: `revoke` arrives only as a broadcast on `/<db>.celery.pidbox` and is not persisted
//! (celery-wire.md section 4), so the bridge listens from start-up and keeps the revoked ids, like a worker.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use base64::Engine;
use serde_json::Value;
use tokio::sync::Notify;
use tokio_stream::StreamExt;

/// How many revoked ids are remembered (Celery keeps 50,000).
const REVOKES_MAX: usize = 50_000;

/// The revoked ids and the running tasks that a `terminate` revoke stops.
#[derive(Clone, Default)]
pub struct Revokes {
    inner: Arc<Mutex<RevokeState>>,
}

#[derive(Default)]
struct RevokeState {
    ids: HashSet<String>,
    order: VecDeque<String>,
    running: HashMap<String, Arc<Notify>>,
}

/// A revoke request read off the pidbox.
#[derive(Debug, PartialEq)]
pub struct Revoke {
    /// The task ids.
    pub ids: Vec<String>,
    /// Stop it if it is running.
    pub terminate: bool,
}

impl Revokes {
    fn lock(&self) -> std::sync::MutexGuard<'_, RevokeState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `id` was revoked.
    pub fn contains(&self, id: &str) -> bool {
        self.lock().ids.contains(id)
    }

    /// Record a revoke; wakes the running task when `terminate` is set.
    pub fn apply(&self, r: &Revoke) {
        let mut s = self.lock();
        for id in &r.ids {
            if s.ids.insert(id.clone()) {
                s.order.push_back(id.clone());
            }
            if r.terminate
                && let Some(n) = s.running.get(id)
            {
                n.notify_one();
            }
        }
        while s.order.len() > REVOKES_MAX {
            if let Some(old) = s.order.pop_front() {
                s.ids.remove(&old);
            }
        }
    }

    /// Register a running task; the returned notify fires on a terminating revoke.
    pub fn running(&self, id: &str) -> Arc<Notify> {
        let n = Arc::new(Notify::new());
        self.lock().running.insert(id.to_string(), n.clone());
        n
    }

    /// Forget a finished task.
    pub fn finished(&self, id: &str) {
        self.lock().running.remove(id);
    }
}

/// Decode a pidbox envelope; `None` unless it is a `revoke` addressed to everyone or to `hostname`.
pub fn parse_revoke(envelope: &str, hostname: &str) -> Option<Revoke> {
    let env: Value = serde_json::from_str(envelope).ok()?;
    let body = env.get("body")?.as_str()?;
    let body: Value = serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(body).ok()?).ok()?;
    if body.get("method")?.as_str()? != "revoke" {
        return None;
    }
    if let Some(dest) = body.get("destination").and_then(Value::as_array)
        && !dest.iter().any(|d| d.as_str() == Some(hostname))
    {
        return None;
    }
    let args = body.get("arguments")?;
    let ids = match args.get("task_id")? {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().filter_map(|v| v.as_str().map(String::from)).collect(),
        _ => return None,
    };
    let terminate = args.get("terminate").and_then(Value::as_bool).unwrap_or(false);
    Some(Revoke { ids, terminate })
}

/// Listen on the pidbox channel until the process ends, reconnecting after errors.
pub async fn listen(client: redis::Client, db: i64, hostname: String, revokes: Revokes, ready: Arc<Notify>) {
    let channel = format!("/{db}.celery.pidbox");
    loop {
        let result = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            ready.notify_one();
            let mut stream = pubsub.on_message();
            while let Some(msg) = stream.next().await {
                let payload: String = msg.get_payload()?;
                if let Some(r) = parse_revoke(&payload, &hostname) {
                    tracing::info!(ids = ?r.ids, terminate = r.terminate, "revoke received");
                    revokes.apply(&r);
                }
            }
            Ok::<_, redis::RedisError>(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "pidbox listener lost its connection; reconnecting");
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../../tests/celery-samples/07_revoke_broadcast.json");

    #[test]
    fn reads_the_captured_revoke() {
        let v: Value = serde_json::from_str(SAMPLE).unwrap();
        let r = parse_revoke(&v["envelope"].to_string(), "bridge@x").unwrap();
        assert_eq!(r, Revoke { ids: vec!["370c5e48-f88c-4593-b4d7-46be7dce5091".into()], terminate: false });
        let revokes = Revokes::default();
        revokes.apply(&r);
        assert!(revokes.contains("370c5e48-f88c-4593-b4d7-46be7dce5091"));
    }

    #[test]
    fn destination_filters_and_terminate_wakes() {
        let body = |dest: Value| {
            let b = serde_json::json!({"method": "revoke", "arguments": {"task_id": ["a", "b"], "terminate": true},
                "destination": dest});
            serde_json::json!({"body": base64::engine::general_purpose::STANDARD.encode(b.to_string())}).to_string()
        };
        assert!(parse_revoke(&body(serde_json::json!(["other@host"])), "bridge@x").is_none());
        let r = parse_revoke(&body(serde_json::json!(["bridge@x"])), "bridge@x").unwrap();
        let revokes = Revokes::default();
        let n = revokes.running("b");
        revokes.apply(&r);
        // notify_one stores a permit, so the wake is not lost even if nobody waits yet.
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        rt.block_on(async { tokio::time::timeout(std::time::Duration::from_secs(1), n.notified()).await.unwrap() });
    }
}
