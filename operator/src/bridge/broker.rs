//! The queue side of kombu's Redis transport (celery-wire.md section 2), made crash-safe.
//!
//! A claim never loses a message: the non-blocking path pops from the first non-empty priority list and writes
//! the kombu `unacked` / `unacked_index` bookkeeping in one Lua script (atomic); the blocking path `BLMOVE`s
//! from the main list into this consumer's private processing list and then, in one MULTI, records it in
//! `unacked` and removes it from the processing list. A processing list whose owner stopped refreshing its
//! liveness key is moved back onto the queue by any bridge. Acknowledgement (`ZREM` + `HDEL`) happens only
//! after the result is stored, and stale `unacked` entries are restored under `unacked_mutex` exactly as kombu
//! does, so real Celery workers and bridges can share a queue.

use std::sync::LazyLock;
use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, MultiplexedConnection};
use serde_json::Value;

use super::message::{TaskMessage, priority_list, queue_lists};

/// kombu's key names.
const UNACKED: &str = "unacked";
const UNACKED_INDEX: &str = "unacked_index";
const UNACKED_MUTEX: &str = "unacked_mutex";
/// kombu holds the restore mutex for at most this long.
const MUTEX_EXPIRE_MS: u64 = 300_000;
/// Where unreadable envelopes go (they have no id, so nothing can be stored for them).
pub const REJECTED: &str = "secretflow-bridge:rejected";
/// How long a consumer's processing list survives it without a liveness refresh.
pub const ALIVE_TTL_MS: u64 = 10_000;

/// Pop the first message of the first non-empty list in KEYS[1..n-2] and record it in `unacked` in the same
/// atomic step. Returns the envelope, or nil. An envelope without a delivery tag goes to the rejected list.
const CLAIM_SCRIPT: &str = r#"
local n = #KEYS - 3
for i = 1, n do
  local m = redis.call('RPOP', KEYS[i])
  if m then
    local ok, env = pcall(cjson.decode, m)
    local tag = ok and type(env) == 'table' and type(env.properties) == 'table' and env.properties.delivery_tag
    if type(tag) ~= 'string' then
      redis.call('LPUSH', KEYS[n + 3], m)
      return {'rejected', m}
    end
    local info = env.properties.delivery_info
    local ex, rk = '', ARGV[2]
    if type(info) == 'table' then
      if type(info.exchange) == 'string' then ex = info.exchange end
      if type(info.routing_key) == 'string' then rk = info.routing_key end
    end
    redis.call('ZADD', KEYS[n + 2], ARGV[1], tag)
    redis.call('HSET', KEYS[n + 1], tag, '[' .. m .. ', ' .. cjson.encode(ex) .. ', ' .. cjson.encode(rk) .. ']')
    return {'claimed', m}
  end
end
return false
"#;

/// Move an `unacked` entry back onto its list if it is still the entry read (KEYS: unacked, unacked_index,
/// list; ARGV: tag, entry read, envelope to push). 1 when moved, 0 when the entry changed meanwhile.
const RESTORE_SCRIPT: &str = r#"
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur ~= ARGV[2] then
  if cur == false then redis.call('ZREM', KEYS[2], ARGV[1]); return 1 end
  return 0
end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('RPUSH', KEYS[3], ARGV[3])
return 1
"#;

/// Release the restore mutex only if we still hold it (kombu's compare-and-delete).
const RELEASE_MUTEX: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

static CLAIM: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(CLAIM_SCRIPT));
static RESTORE: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(RESTORE_SCRIPT));
static RELEASE: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(RELEASE_MUTEX));

/// A claimed message: its envelope text and, when readable, the parsed message.
pub enum Claimed {
    /// A message now recorded in `unacked`.
    Message(Box<TaskMessage>),
    /// An unreadable envelope, moved to [`REJECTED`].
    Rejected(String, String),
}

/// One consumer of one queue.
#[derive(Clone)]
pub struct Broker {
    /// Shared connection for non-blocking commands.
    conn: ConnectionManager,
    /// The queue name.
    pub queue: String,
    /// This consumer's processing list.
    processing: String,
    /// This consumer's liveness key.
    alive: String,
}

/// Take `key` for `ms` milliseconds unless someone holds it (`SET key token NX PX ms`); true when taken.
pub async fn try_lock(conn: &mut ConnectionManager, key: &str, token: &str, ms: u64) -> redis::RedisResult<bool> {
    let got: Option<String> =
        redis::cmd("SET").arg(key).arg(token).arg("NX").arg("PX").arg(ms).query_async(conn).await?;
    Ok(got.is_some())
}

/// Seconds since the epoch as a float, kombu's `unacked_index` score.
pub fn unix_now() -> f64 {
    jiff::Timestamp::now().as_microsecond() as f64 / 1e6
}

impl Broker {
    /// A consumer named `consumer` (unique per process) of `queue`.
    pub fn new(conn: ConnectionManager, queue: &str, consumer: &str) -> Self {
        Broker {
            conn,
            queue: queue.to_string(),
            processing: format!("secretflow-bridge:processing:{consumer}"),
            alive: format!("secretflow-bridge:alive:{consumer}"),
        }
    }

    /// Claim the next message without blocking, highest priority first.
    pub async fn try_claim(&self) -> redis::RedisResult<Option<Claimed>> {
        let mut script = CLAIM.prepare_invoke();
        for list in queue_lists(&self.queue) {
            script.key(list);
        }
        script.key(UNACKED).key(UNACKED_INDEX).key(REJECTED).arg(unix_now()).arg(&self.queue);
        let mut conn = self.conn.clone();
        let out: Option<(String, String)> = script.invoke_async(&mut conn).await?;
        match out {
            None => Ok(None),
            Some((kind, raw)) if kind == "claimed" => match TaskMessage::parse(&raw) {
                Ok(m) => Ok(Some(Claimed::Message(Box::new(m)))),
                Err(why) => {
                    // Recorded in `unacked` by the script but unusable: move it to the rejected list.
                    let tag = serde_json::from_str::<Value>(&raw)
                        .ok()
                        .and_then(|v| v.pointer("/properties/delivery_tag").and_then(Value::as_str).map(String::from))
                        .unwrap_or_default();
                    redis::pipe()
                        .atomic()
                        .lpush(REJECTED, &raw)
                        .ignore()
                        .zrem(UNACKED_INDEX, &tag)
                        .ignore()
                        .hdel(UNACKED, &tag)
                        .ignore()
                        .query_async::<()>(&mut conn)
                        .await?;
                    Ok(Some(Claimed::Rejected(raw, why)))
                }
            },
            Some((_, raw)) => Ok(Some(Claimed::Rejected(raw, "no properties.delivery_tag".into()))),
        }
    }

    /// Wait up to `timeout` for a message on the main list, moving it through the processing list.
    /// `blocking` must be a connection used for nothing else (BLMOVE holds it).
    pub async fn blocking_claim(
        &self,
        blocking: &mut MultiplexedConnection,
        timeout: Duration,
    ) -> redis::RedisResult<Option<Claimed>> {
        let raw: Option<String> = redis::cmd("BLMOVE")
            .arg(&self.queue)
            .arg(&self.processing)
            .arg("RIGHT")
            .arg("LEFT")
            .arg(timeout.as_secs_f64())
            .query_async(blocking)
            .await?;
        let Some(raw) = raw else { return Ok(None) };
        let mut pipe = redis::pipe();
        pipe.atomic();
        let claimed = match TaskMessage::parse(&raw) {
            Ok(m) => {
                let entry = Value::Array(vec![m.envelope.clone(), m.exchange.clone().into(), self.routing(&m).into()]);
                pipe.zadd(UNACKED_INDEX, &m.delivery_tag, unix_now()).ignore();
                pipe.hset(UNACKED, &m.delivery_tag, entry.to_string()).ignore();
                Claimed::Message(Box::new(m))
            }
            Err(why) => {
                pipe.lpush(REJECTED, &raw).ignore();
                Claimed::Rejected(raw.clone(), why)
            }
        };
        pipe.lrem(&self.processing, 1, &raw).ignore();
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await?;
        Ok(Some(claimed))
    }

    fn routing(&self, m: &TaskMessage) -> String {
        if m.routing_key.is_empty() { self.queue.clone() } else { m.routing_key.clone() }
    }

    /// Acknowledge: forget the message (kombu `ack`).
    pub async fn ack(&self, tag: &str) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        redis::pipe()
            .atomic()
            .zrem(UNACKED_INDEX, tag)
            .ignore()
            .hdel(UNACKED, tag)
            .ignore()
            .query_async(&mut conn)
            .await
    }

    /// Keep a long-running or waiting message from being restored by anyone (`ZADD XX` with the time now).
    pub async fn refresh(&self, tags: &[String]) -> redis::RedisResult<()> {
        if tags.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("ZADD");
        cmd.arg(UNACKED_INDEX).arg("XX");
        let now = unix_now();
        for t in tags {
            cmd.arg(now).arg(t);
        }
        cmd.query_async(&mut conn).await
    }

    /// Put a message back at the head of its queue, marked redelivered (kombu `restore_by_tag`). The entry is
    /// read, rewritten here, and swapped in by a compare-and-swap script (WATCH cannot be used on a shared
    /// multiplexed connection). Returns whether the message was still unacknowledged.
    pub async fn restore_by_tag(&self, tag: &str) -> redis::RedisResult<bool> {
        let mut conn = self.conn.clone();
        loop {
            let entry: Option<String> = conn.hget(UNACKED, tag).await?;
            let Some(entry) = entry else { return Ok(false) };
            let (list, envelope) = match serde_json::from_str::<Value>(&entry) {
                Ok(Value::Array(parts)) if parts.len() == 3 => {
                    let priority = parts[0].pointer("/properties/priority").and_then(Value::as_u64).unwrap_or(0);
                    let queue = parts[2].as_str().filter(|q| !q.is_empty()).unwrap_or(&self.queue);
                    let env = TaskMessage::redelivered_envelope(&parts[0]);
                    (priority_list(queue, priority.min(9) as u8), env.to_string())
                }
                _ => (REJECTED.to_string(), entry.clone()),
            };
            let swapped: i64 = RESTORE
                .key(UNACKED)
                .key(UNACKED_INDEX)
                .key(list)
                .arg(tag)
                .arg(&entry)
                .arg(envelope)
                .invoke_async(&mut conn)
                .await?;
            if swapped == 1 {
                return Ok(true);
            }
        }
    }

    /// Restore every `unacked` message older than `visibility` (kombu `restore_visible`), under the
    /// `unacked_mutex` so that only one consumer (bridge or Celery worker) restores at a time.
    pub async fn restore_visible(&self, visibility: Duration) -> redis::RedisResult<usize> {
        let mut conn = self.conn.clone();
        let token = uuid::Uuid::new_v4().to_string();
        if !try_lock(&mut conn, UNACKED_MUTEX, &token, MUTEX_EXPIRE_MS).await? {
            return Ok(0);
        }
        let ceil = unix_now() - visibility.as_secs_f64();
        let stale: redis::RedisResult<Vec<String>> = conn.zrangebyscore(UNACKED_INDEX, 0, ceil).await;
        let mut restored = 0;
        let result = async {
            for tag in stale? {
                if self.restore_by_tag(&tag).await? {
                    restored += 1;
                }
            }
            Ok::<_, redis::RedisError>(())
        }
        .await;
        RELEASE.key(UNACKED_MUTEX).arg(&token).invoke_async::<i64>(&mut conn).await?;
        result.map(|()| restored)
    }

    /// Mark this consumer alive for [`ALIVE_TTL_MS`].
    pub async fn heartbeat(&self) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        conn.pset_ex(&self.alive, "1", ALIVE_TTL_MS).await
    }

    /// Stop being alive (graceful exit: the processing list is empty by then).
    pub async fn retire(&self) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        conn.del(&self.alive).await
    }

    /// Move messages left in the processing lists of dead consumers (crashed between BLMOVE and the
    /// bookkeeping MULTI) back to the head of the queue. Each LMOVE is atomic, so two bridges recovering the
    /// same list never duplicate a message.
    pub async fn recover_processing(&self) -> redis::RedisResult<usize> {
        let mut conn = self.conn.clone();
        let lists: Vec<String> = {
            let mut iter: redis::AsyncIter<String> = conn.scan_match("secretflow-bridge:processing:*").await?;
            let mut out = Vec::new();
            while let Some(k) = iter.next_item().await {
                out.push(k?);
            }
            out
        };
        let mut moved = 0;
        for list in lists {
            let consumer = list.trim_start_matches("secretflow-bridge:processing:");
            let alive: bool = conn.exists(format!("secretflow-bridge:alive:{consumer}")).await?;
            if alive {
                continue;
            }
            loop {
                let m: Option<String> = redis::cmd("LMOVE")
                    .arg(&list)
                    .arg(&self.queue)
                    .arg("LEFT")
                    .arg("RIGHT")
                    .query_async(&mut conn)
                    .await?;
                if m.is_none() {
                    break;
                }
                moved += 1;
            }
        }
        Ok(moved)
    }
}
