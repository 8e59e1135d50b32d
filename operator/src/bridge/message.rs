//! Celery protocol v2 task messages as kombu's Redis transport stores them (celery-wire.md sections 1 and 4):
//! the JSON envelope, its headers and properties, and the base64 JSON body `[args, kwargs, embed]`.

use base64::Engine;
use jiff::Timestamp;
use serde_json::{Map, Value};

/// The one task name the bridge serves.
pub const TASK_NAME: &str = "tasks.secretflow.execute_task";

/// kombu's separator between a queue name and its priority step.
pub const PRIORITY_SEP: &str = "\x06\x16";

/// kombu's priority steps for Redis: step 0 is the plain queue list, served first.
pub const PRIORITY_STEPS: [u8; 4] = [0, 3, 6, 9];

/// The Redis list holding `queue`'s messages of `priority` (kombu `_q_for_pri`).
pub fn priority_list(queue: &str, priority: u8) -> String {
    let step = PRIORITY_STEPS.iter().rev().find(|s| **s <= priority).copied().unwrap_or(0);
    if step == 0 { queue.to_string() } else { format!("{queue}{PRIORITY_SEP}{step}") }
}

/// Every list of `queue`, in the order they are served.
pub fn queue_lists(queue: &str) -> Vec<String> {
    PRIORITY_STEPS.iter().map(|p| priority_list(queue, *p)).collect()
}

/// A Celery exception as the result backend stores it: `{"exc_type", "exc_message", "exc_module"}`.
#[derive(Clone, Debug, PartialEq)]
pub struct CeleryError {
    /// The exception class name.
    pub exc_type: String,
    /// The module a Python client resolves it in (`builtins` always resolves).
    pub exc_module: String,
    /// The exception's arguments.
    pub exc_message: Vec<Value>,
    /// The traceback text, when there is one.
    pub traceback: Option<String>,
}

impl CeleryError {
    /// An exception with one message argument.
    pub fn new(exc_type: &str, exc_module: &str, message: impl Into<String>) -> Self {
        CeleryError {
            exc_type: exc_type.into(),
            exc_module: exc_module.into(),
            exc_message: vec![Value::String(message.into())],
            traceback: None,
        }
    }

    /// The JSON stored as a failed task's `result`.
    pub fn to_json(&self) -> Value {
        serde_json::json!({"exc_type": self.exc_type, "exc_message": self.exc_message, "exc_module": self.exc_module})
    }

    /// One line for logs and event payloads: `Type('message')`.
    pub fn repr(&self) -> String {
        let args: Vec<String> = self.exc_message.iter().map(python_repr).collect();
        format!("{}({})", self.exc_type, args.join(", "))
    }
}

/// A task message taken off the queue. Its identity (id, delivery tag, routing) is always known; the body is
/// decoded separately because a message whose body is refused still gets a stored error under its id.
#[derive(Clone, Debug)]
pub struct TaskMessage {
    /// The envelope as received; written back unchanged (apart from `redelivered`) when restored.
    pub envelope: Value,
    /// The Celery task id: the result key is `celery-task-meta-<id>`.
    pub id: String,
    /// The task name to dispatch on.
    pub task: String,
    /// The acknowledgement key in `unacked` / `unacked_index`.
    pub delivery_tag: String,
    /// The message priority (0-9, lower served first).
    pub priority: u8,
    /// The attempt number.
    pub retries: u64,
    /// Do not run before this time.
    pub eta: Option<Timestamp>,
    /// The raw `eta` header, echoed in `celery_metadata.task_eta`.
    pub eta_raw: Option<String>,
    /// Do not run after this time.
    pub expires: Option<Timestamp>,
    /// The hard time limit in seconds.
    pub hard_time_limit: Option<f64>,
    /// The soft time limit in seconds (treated as a warning in the log).
    pub soft_time_limit: Option<f64>,
    /// Store no result.
    pub ignore_result: bool,
    /// The exchange it was published to (`""` for the default).
    pub exchange: String,
    /// The routing key: the queue name.
    pub routing_key: String,
    /// The parent task id, if any.
    pub parent_id: Option<String>,
    /// The root task id, if any.
    pub root_id: Option<String>,
    /// Python repr of the arguments, for events.
    pub argsrepr: String,
    /// Python repr of the keyword arguments, for events.
    pub kwargsrepr: String,
    /// Whether the transport delivered it before.
    pub redelivered: bool,
}

/// A decoded body: positional arguments, keyword arguments and the workflow options.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskBody {
    /// Positional arguments.
    pub args: Vec<Value>,
    /// Keyword arguments.
    pub kwargs: Map<String, Value>,
    /// `callbacks`, `errbacks`, `chain`, `chord`.
    pub embed: Map<String, Value>,
}

impl TaskMessage {
    /// Read an envelope. Fails only when the message has no task id or delivery tag (then nothing can be
    /// stored for it and it goes to the rejected list).
    pub fn parse(raw: &str) -> Result<TaskMessage, String> {
        let envelope: Value = serde_json::from_str(raw).map_err(|e| format!("not a JSON envelope: {e}"))?;
        let headers = envelope.get("headers").and_then(Value::as_object).ok_or("no `headers` object")?;
        let props = envelope.get("properties").and_then(Value::as_object).ok_or("no `properties` object")?;
        let text = |m: &Map<String, Value>, k: &str| m.get(k).and_then(Value::as_str).map(str::to_string);
        let id = text(headers, "id").ok_or("no `headers.id` (is this a protocol v1 message?)")?;
        let delivery_tag = text(props, "delivery_tag").ok_or("no `properties.delivery_tag`")?;
        let info = props.get("delivery_info").and_then(Value::as_object);
        let limits = headers.get("timelimit").and_then(Value::as_array);
        let limit = |i: usize| limits.and_then(|l| l.get(i)).and_then(Value::as_f64);
        let eta_raw = text(headers, "eta");
        Ok(TaskMessage {
            task: text(headers, "task").unwrap_or_default(),
            priority: props.get("priority").and_then(Value::as_u64).map_or(0, |p| p.min(9) as u8),
            retries: headers.get("retries").and_then(Value::as_u64).unwrap_or(0),
            eta: eta_raw.as_deref().and_then(parse_time),
            eta_raw,
            expires: text(headers, "expires").as_deref().and_then(parse_time),
            hard_time_limit: limit(0),
            soft_time_limit: limit(1),
            ignore_result: headers.get("ignore_result").and_then(Value::as_bool).unwrap_or(false),
            exchange: info.and_then(|i| text(i, "exchange")).unwrap_or_default(),
            routing_key: info.and_then(|i| text(i, "routing_key")).unwrap_or_default(),
            parent_id: text(headers, "parent_id"),
            root_id: text(headers, "root_id"),
            argsrepr: text(headers, "argsrepr").unwrap_or_default(),
            kwargsrepr: text(headers, "kwargsrepr").unwrap_or_default(),
            redelivered: headers.get("redelivered").and_then(Value::as_bool).unwrap_or(false)
                || info.and_then(|i| i.get("redelivered")).and_then(Value::as_bool).unwrap_or(false),
            id,
            delivery_tag,
            envelope,
        })
    }

    /// Decode the body. Only `application/json` in base64 is accepted: pickle and compressed bodies are
    /// refused the way kombu refuses untrusted content.
    pub fn body(&self) -> Result<TaskBody, CeleryError> {
        let field = |k: &str| self.envelope.get(k).and_then(Value::as_str).unwrap_or("");
        let content_type = field("content-type");
        if content_type != "application/json" {
            return Err(CeleryError::new(
                "ContentDisallowed",
                "kombu.exceptions",
                format!(
                    "Refusing to deserialize content of type {content_type:?}: the bridge accepts application/json only"
                ),
            ));
        }
        let headers = self.envelope.get("headers");
        if let Some(c) = headers.and_then(|h| h.get("compression")).and_then(Value::as_str) {
            return Err(CeleryError::new(
                "ContentDisallowed",
                "kombu.exceptions",
                format!("compressed bodies ({c}) are not accepted: send without compression"),
            ));
        }
        let encoding = self.envelope.pointer("/properties/body_encoding").and_then(Value::as_str).unwrap_or("");
        let body = self.envelope.get("body").and_then(Value::as_str).unwrap_or("");
        let bytes = match encoding {
            "base64" => base64::engine::general_purpose::STANDARD
                .decode(body)
                .map_err(|e| CeleryError::new("DecodeError", "kombu.exceptions", format!("body is not base64: {e}")))?,
            other => {
                return Err(CeleryError::new(
                    "ContentDisallowed",
                    "kombu.exceptions",
                    format!("body_encoding {other:?} is not accepted: the bridge reads base64 bodies only"),
                ));
            }
        };
        let decoded: Value = serde_json::from_slice(&bytes)
            .map_err(|e| CeleryError::new("DecodeError", "kombu.exceptions", format!("body is not JSON: {e}")))?;
        let Value::Array(mut parts) = decoded else {
            return Err(CeleryError::new("DecodeError", "kombu.exceptions", "body is not [args, kwargs, embed]"));
        };
        if parts.len() != 3 {
            return Err(CeleryError::new("DecodeError", "kombu.exceptions", "body is not [args, kwargs, embed]"));
        }
        let embed = match parts.pop() {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        let kwargs = match parts.pop() {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        let args = match parts.pop() {
            Some(Value::Array(a)) => a,
            _ => Vec::new(),
        };
        Ok(TaskBody { args, kwargs, embed })
    }

    /// The envelope marked as redelivered (kombu `_do_restore_message`).
    pub fn redelivered_envelope(envelope: &Value) -> Value {
        let mut env = envelope.clone();
        if let Some(h) = env.get_mut("headers").and_then(Value::as_object_mut) {
            h.insert("redelivered".into(), Value::Bool(true));
        }
        if let Some(i) = env.pointer_mut("/properties/delivery_info").and_then(Value::as_object_mut) {
            i.insert("redelivered".into(), Value::Bool(true));
        }
        env
    }
}

impl TaskBody {
    /// The single `task_params` argument of `execute_task(task_params)`, positional or by keyword.
    /// Anything else is the `TypeError` Python would raise, and workflows are refused.
    pub fn task_params(&self) -> Result<&Value, CeleryError> {
        for key in ["callbacks", "errbacks", "chain", "chord"] {
            if self.embed.get(key).is_some_and(|v| !v.is_null()) {
                return Err(CeleryError::new(
                    "NotImplementedError",
                    "builtins",
                    format!("the bridge does not run Celery workflows: `{key}` must be null"),
                ));
            }
        }
        let extra: Vec<&String> = self.kwargs.keys().filter(|k| *k != "task_params").collect();
        if let Some(k) = extra.first() {
            return Err(type_error(format!("execute_task() got an unexpected keyword argument '{k}'")));
        }
        match (self.args.as_slice(), self.kwargs.get("task_params")) {
            ([p], None) | ([], Some(p)) => Ok(p),
            ([], None) => Err(type_error("execute_task() missing 1 required positional argument: 'task_params'")),
            ([_], Some(_)) => Err(type_error("execute_task() got multiple values for argument 'task_params'")),
            (args, _) => {
                Err(type_error(format!("execute_task() takes 1 positional argument but {} were given", args.len())))
            }
        }
    }
}

fn type_error(message: impl Into<String>) -> CeleryError {
    CeleryError::new("TypeError", "builtins", message)
}

/// An ISO-8601 time as Celery writes it (`2026-11-27T22:49:05.148691+00:00`; a naive time is UTC).
pub fn parse_time(s: &str) -> Option<Timestamp> {
    s.parse::<Timestamp>().ok().or_else(|| {
        s.parse::<jiff::civil::DateTime>().ok()?.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp())
    })
}

/// A short Python-like repr of a JSON value, for event fields that Celery fills with `repr()`.
pub fn python_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
        Value::Array(a) => format!("[{}]", a.iter().map(python_repr).collect::<Vec<_>>().join(", ")),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}: {}", python_repr(&Value::String(k.clone())), python_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../../tests/celery-samples/01_task_message.json");
    const WITH_OPTIONS: &str = include_str!("../../tests/celery-samples/02_task_message_with_options.json");

    fn envelope(sample: &str) -> String {
        let v: Value = serde_json::from_str(sample).unwrap();
        v["envelope"].to_string()
    }

    #[test]
    fn decodes_the_captured_message() {
        let m = TaskMessage::parse(&envelope(SAMPLE)).unwrap();
        assert_eq!(m.task, TASK_NAME);
        assert_eq!(m.id, "161f03fb-6cd9-4cc3-ac4d-a13f0f2322bf");
        assert_eq!(m.delivery_tag, "d89e3fa2-2abe-43b2-b41a-56ede45cd5fb");
        assert_eq!((m.exchange.as_str(), m.routing_key.as_str()), ("", "secretflow_queue"));
        assert_eq!((m.eta, m.expires, m.hard_time_limit), (None, None, None));
        let body = m.body().unwrap();
        assert_eq!(body.task_params().unwrap()["params"]["x"], 1);
    }

    #[test]
    fn reads_eta_expires_limits_and_priority() {
        let m = TaskMessage::parse(&envelope(WITH_OPTIONS)).unwrap();
        assert_eq!(m.eta.unwrap().to_string(), "2026-11-27T22:49:05.148691Z");
        assert_eq!(m.expires.unwrap().to_string(), "2026-11-27T22:50:35.148691Z");
        assert_eq!((m.hard_time_limit, m.soft_time_limit), (Some(60.0), Some(50.0)));
        assert_eq!((m.priority, m.retries), (7, 2));
        assert_eq!(priority_list("secretflow_queue", m.priority), "secretflow_queue\x06\x166");
    }

    #[test]
    fn priority_lists_follow_kombu_steps() {
        let lists: Vec<String> = (0..10).map(|p| priority_list("q", p)).collect();
        let steps = [
            "q",
            "q",
            "q",
            "q\x06\x163",
            "q\x06\x163",
            "q\x06\x163",
            "q\x06\x166",
            "q\x06\x166",
            "q\x06\x166",
            "q\x06\x169",
        ];
        assert_eq!(lists, steps);
        assert_eq!(queue_lists("q"), ["q", "q\x06\x163", "q\x06\x166", "q\x06\x169"]);
    }

    #[test]
    fn refuses_pickle_and_compression() {
        let mut v: Value = serde_json::from_str(&envelope(SAMPLE)).unwrap();
        v["content-type"] = "application/x-python-serialize".into();
        let e = TaskMessage::parse(&v.to_string()).unwrap().body().unwrap_err();
        assert_eq!((e.exc_type.as_str(), e.exc_module.as_str()), ("ContentDisallowed", "kombu.exceptions"));
        let mut v: Value = serde_json::from_str(&envelope(SAMPLE)).unwrap();
        v["headers"]["compression"] = "application/x-gzip".into();
        assert!(TaskMessage::parse(&v.to_string()).unwrap().body().unwrap_err().repr().contains("compressed"));
    }

    #[test]
    fn envelope_without_identity_is_unreadable() {
        assert!(TaskMessage::parse("[1]").is_err());
        assert!(
            TaskMessage::parse(r#"{"headers": {}, "properties": {"delivery_tag": "t"}}"#)
                .unwrap_err()
                .contains("headers.id")
        );
    }

    #[test]
    fn argument_shapes_match_python() {
        let body = |args: Value, kwargs: Value, embed: Value| TaskBody {
            args: args.as_array().unwrap().clone(),
            kwargs: kwargs.as_object().unwrap().clone(),
            embed: embed.as_object().unwrap().clone(),
        };
        let p = serde_json::json!({"task_id": "t"});
        let none = serde_json::json!({});
        assert_eq!(body(serde_json::json!([p]), none.clone(), none.clone()).task_params().unwrap(), &p);
        assert_eq!(
            body(serde_json::json!([]), serde_json::json!({"task_params": p}), none.clone()).task_params().unwrap(),
            &p
        );
        let e = body(serde_json::json!([]), none.clone(), none.clone()).task_params().unwrap_err();
        assert_eq!(e.exc_type, "TypeError");
        let e = body(serde_json::json!([p, p]), none.clone(), none.clone()).task_params().unwrap_err();
        assert!(e.repr().contains("2 were given"));
        let e =
            body(serde_json::json!([p]), none.clone(), serde_json::json!({"chain": [1]})).task_params().unwrap_err();
        assert_eq!(e.exc_type, "NotImplementedError");
    }

    #[test]
    fn redelivery_marks_both_flags() {
        let v: Value = serde_json::from_str(&envelope(SAMPLE)).unwrap();
        let r = TaskMessage::redelivered_envelope(&v);
        let m = TaskMessage::parse(&r.to_string()).unwrap();
        assert!(m.redelivered);
        assert_eq!(r["properties"]["delivery_info"]["redelivered"], true);
    }

    #[test]
    fn python_repr_matches_argsrepr_style() {
        let v = serde_json::json!([{"a": "x'y", "b": null, "c": true, "d": 1.5}]);
        assert_eq!(python_repr(&v), r"[{'a': 'x\'y', 'b': None, 'c': True, 'd': 1.5}]");
    }
}
