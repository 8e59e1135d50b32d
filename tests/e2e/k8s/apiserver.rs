//! A small Kubernetes API server for the end-to-end tests, standing in for a cluster (there is none here).
//! It serves what the operator, the party runtimes' reporter and kube-rs's watcher use, over plain HTTP:
//! list (label selectors), watch (with resourceVersions, replaying history), get, create, JSON merge / JSON /
//! apply patches, delete with owner-reference garbage collection, and the `status` subresource, for any
//! resource path (`/api/v1/...` and `/apis/<group>/<version>/...`). Objects live in memory. Like the real one,
//! it prunes and validates custom objects against their CRD's schema ([`super::schema`]) and refuses an update
//! that names a stale `resourceVersion` with 409 Conflict.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// `(resource prefix, namespace, name)`: the prefix is `api/v1/pods` or `apis/g/v/plural`.
type Key = (String, String, String);

/// A change, as a watch stream reports it.
#[derive(Clone, Debug)]
pub struct Change {
    /// `ADDED`, `MODIFIED`, `DELETED`.
    pub kind: &'static str,
    /// Resource prefix.
    pub resource: String,
    /// The object after the change (before, for DELETED).
    pub object: Value,
    /// Its resourceVersion.
    pub rv: u64,
}

#[derive(Default)]
struct State {
    objects: BTreeMap<Key, Value>,
    rv: u64,
    history: Vec<Change>,
    uid: u64,
}

/// The store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    state: Arc<Mutex<State>>,
    changes: broadcast::Sender<Change>,
    /// openAPIV3Schema per custom resource prefix: the CRDs installed in this cluster.
    schemas: Arc<BTreeMap<String, Value>>,
}

fn status(code: u16, reason: &str, message: impl Into<String>) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": message.into(), "reason": reason, "code": code});
    (StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), axum::Json(body)).into_response()
}

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = json!({});
            }
            let t = target.as_object_mut().expect("object");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// RFC 6902 JSON patch (add, replace, remove, test).
fn json_patch(target: &mut Value, ops: &Value) -> Result<(), String> {
    for op in ops.as_array().ok_or("a JSON patch is an array")? {
        let path = op["path"].as_str().ok_or("op without path")?;
        let (parent, last) = path.rsplit_once('/').ok_or("bad path")?;
        let last = last.replace("~1", "/").replace("~0", "~");
        match op["op"].as_str() {
            Some("test") => {
                if target.pointer(path) != Some(&op["value"]) {
                    return Err(format!("test failed at {path}"));
                }
            }
            Some(kind @ ("add" | "replace" | "remove")) => {
                let p = target.pointer_mut(parent).ok_or(format!("no parent for {path}"))?;
                match (p, kind) {
                    (Value::Object(m), "remove") => {
                        m.remove(&last);
                    }
                    (Value::Object(m), _) => {
                        m.insert(last, op["value"].clone());
                    }
                    (Value::Array(a), "remove") => {
                        let i: usize = last.parse().map_err(|_| "bad index")?;
                        a.remove(i);
                    }
                    (Value::Array(a), _) if last == "-" => a.push(op["value"].clone()),
                    (Value::Array(a), k) => {
                        let i: usize = last.parse().map_err(|_| "bad index")?;
                        if k == "add" { a.insert(i, op["value"].clone()) } else { a[i] = op["value"].clone() }
                    }
                    _ => return Err(format!("cannot patch {path}")),
                }
            }
            other => return Err(format!("unsupported op {other:?}")),
        }
    }
    Ok(())
}

/// `labelSelector` (equality terms) and `fieldSelector` (`metadata.name`, `metadata.namespace`), joined by `&`.
fn selected(obj: &Value, labels: &str, fields: &str) -> bool {
    labels_match(obj, labels)
        && fields.split(',').filter(|s| !s.is_empty()).all(|term| match term.split_once('=') {
            Some((k, v)) => {
                let v = v.trim_start_matches('=');
                match k {
                    "metadata.name" => obj["metadata"]["name"].as_str() == Some(v),
                    "metadata.namespace" => obj["metadata"]["namespace"].as_str() == Some(v),
                    _ => true,
                }
            }
            None => true,
        })
}

fn labels_match(obj: &Value, selector: &str) -> bool {
    selector.split(',').filter(|s| !s.is_empty()).all(|term| {
        let labels = &obj["metadata"]["labels"];
        if let Some((k, v)) = term.split_once("!=") {
            labels[k.trim()].as_str() != Some(v.trim())
        } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            labels[k.trim()].as_str() == Some(v.trim())
        } else {
            labels.get(term.trim()).is_some()
        }
    })
}

/// A parsed request path.
struct Target {
    resource: String,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

fn parse_path(path: &str) -> Option<Target> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (prefix, rest) = match *parts.first()? {
        "api" if parts.len() >= 2 => (format!("api/{}", parts[1]), &parts[2..]),
        "apis" if parts.len() >= 3 => (format!("apis/{}/{}", parts[1], parts[2]), &parts[3..]),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, tail @ ..] if !tail.is_empty() => (Some(ns.to_string()), tail),
        other => (None, other),
    };
    let plural = rest.first()?;
    Some(Target {
        resource: format!("{prefix}/{plural}"),
        namespace,
        name: rest.get(1).map(|s| s.to_string()),
        subresource: rest.get(2).map(|s| s.to_string()),
    })
}

fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

impl Store {
    /// An empty store with the SecretFlowTask and SecretFlowPipeline CRDs installed.
    pub fn new() -> Store {
        use kube::CustomResourceExt;
        let schema = |crd| {
            let crd = serde_json::to_value(crd).expect("CRD as JSON");
            crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
        };
        let schemas = Arc::new(BTreeMap::from([
            (super::TASKS.to_string(), schema(secretflow_crds::crd::SecretFlowTask::crd())),
            (super::PIPELINES.to_string(), schema(secretflow_crds::pipeline::SecretFlowPipeline::crd())),
        ]));
        Store { state: Arc::default(), changes: broadcast::channel(65_536).0, schemas }
    }

    /// Prune and validate a custom object against its CRD (other resources pass as they are); on an update
    /// (`old` given), its transition rules too.
    fn admit(&self, resource: &str, old: Option<&Value>, obj: &mut Value) -> Result<(), (u16, String)> {
        let checked = self.schemas.get(resource).map(|schema| {
            super::schema::admit(schema, obj)?;
            old.map_or(Ok(()), |old| super::schema::transitions(schema, old, obj))
        });
        match checked {
            Some(result) => result.map_err(|e| {
                (
                    422,
                    format!(
                        "{} \"{}\" is invalid: {e}",
                        obj["kind"].as_str().unwrap_or(resource),
                        obj["metadata"]["name"].as_str().unwrap_or("")
                    ),
                )
            }),
            None => Ok(()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Subscribe to every change.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    fn record(&self, s: &mut State, kind: &'static str, resource: &str, object: Value) {
        let change = Change { kind, resource: resource.into(), rv: s.rv, object };
        s.history.push(change.clone());
        let _ = self.changes.send(change);
    }

    /// Create an object (as `kubectl apply` would); `resource` like `apis/secretflow.io/v1alpha1/secretflowtasks`.
    pub fn create(&self, resource: &str, ns: &str, mut obj: Value) -> Result<Value, (u16, String)> {
        let name = obj["metadata"]["name"].as_str().ok_or((422, "metadata.name is required".to_string()))?.to_string();
        self.admit(resource, None, &mut obj)?;
        let mut s = self.lock();
        let key = (resource.to_string(), ns.to_string(), name.clone());
        if s.objects.contains_key(&key) {
            return Err((409, format!("{resource} \"{name}\" already exists")));
        }
        s.rv += 1;
        s.uid += 1;
        let meta = obj["metadata"].as_object_mut().ok_or((422, "metadata".to_string()))?;
        meta.insert("namespace".into(), ns.into());
        meta.insert("uid".into(), format!("uid-{:06}", s.uid).into());
        meta.insert("resourceVersion".into(), s.rv.to_string().into());
        meta.insert("creationTimestamp".into(), now().into());
        meta.insert("generation".into(), 1.into());
        s.objects.insert(key, obj.clone());
        self.record(&mut s, "ADDED", resource, obj.clone());
        Ok(obj)
    }

    /// One object.
    pub fn get(&self, resource: &str, ns: &str, name: &str) -> Option<Value> {
        self.lock().objects.get(&(resource.into(), ns.into(), name.into())).cloned()
    }

    /// Objects of a resource (namespace `None`: all).
    pub fn list(&self, resource: &str, ns: Option<&str>) -> Vec<Value> {
        self.list_at(resource, ns).0
    }

    /// Objects of a resource and the resourceVersion they are current at, read together (a watch from that
    /// version then misses nothing).
    pub fn list_at(&self, resource: &str, ns: Option<&str>) -> (Vec<Value>, u64) {
        let s = self.lock();
        let items = s
            .objects
            .iter()
            .filter(|((r, n, _), _)| r == resource && ns.is_none_or(|ns| ns == n))
            .map(|(_, v)| v.clone())
            .collect();
        (items, s.rv)
    }

    /// Change an object with `f` (its error is the HTTP code and message); bumps resourceVersion (and
    /// generation when `spec` changed) only if it changed.
    pub fn update(
        &self,
        resource: &str,
        ns: &str,
        name: &str,
        f: impl FnOnce(&mut Value) -> Result<(), (u16, String)>,
    ) -> Result<Value, (u16, String)> {
        let mut s = self.lock();
        let key = (resource.to_string(), ns.to_string(), name.to_string());
        let old = s.objects.get(&key).cloned().ok_or((404, format!("{resource} \"{name}\" not found")))?;
        let mut new = old.clone();
        f(&mut new)?;
        self.admit(resource, Some(&old), &mut new)?;
        // Identity fields are the server's.
        for k in ["uid", "creationTimestamp", "namespace", "name"] {
            new["metadata"][k] = old["metadata"][k].clone();
        }
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        if new == old {
            return Ok(old);
        }
        s.rv += 1;
        new["metadata"]["resourceVersion"] = s.rv.to_string().into();
        if new.get("spec") != old.get("spec") {
            let g = old["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
            new["metadata"]["generation"] = g.into();
        }
        s.objects.insert(key, new.clone());
        self.record(&mut s, "MODIFIED", resource, new.clone());
        Ok(new)
    }

    /// Delete an object and, by owner references, everything it owns.
    pub fn delete(&self, resource: &str, ns: &str, name: &str) -> Option<Value> {
        let mut s = self.lock();
        let obj = s.objects.remove(&(resource.into(), ns.into(), name.into()))?;
        s.rv += 1;
        self.record(&mut s, "DELETED", resource, obj.clone());
        let mut doomed = vec![obj["metadata"]["uid"].clone()];
        while let Some(uid) = doomed.pop() {
            let owned: Vec<Key> = s
                .objects
                .iter()
                .filter(|(_, v)| {
                    v["metadata"]["ownerReferences"].as_array().is_some_and(|o| o.iter().any(|r| r["uid"] == uid))
                })
                .map(|(k, _)| k.clone())
                .collect();
            for k in owned {
                if let Some(child) = s.objects.remove(&k) {
                    s.rv += 1;
                    doomed.push(child["metadata"]["uid"].clone());
                    self.record(&mut s, "DELETED", &k.0, child);
                }
            }
        }
        Some(obj)
    }
}

/// Serve the store on a free loopback port; returns the base URL.
pub async fn serve(store: Store) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
        let store = store.clone();
        async move { handle(store, method, uri, headers, body).await }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

async fn handle(store: Store, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let Some(t) = parse_path(uri.path()) else { return status(404, "NotFound", format!("no route {}", uri.path())) };
    let query: BTreeMap<String, String> = uri
        .query()
        .map(|q| {
            q.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_string(), percent_decode(v))).collect()
        })
        .unwrap_or_default();
    let ns = t.namespace.clone().unwrap_or_default();
    let json_body =
        || serde_json::from_slice::<Value>(&body).map_err(|e| Box::new(status(400, "BadRequest", e.to_string())));
    let reply = |r: Result<Value, (u16, String)>, created: bool| match r {
        Ok(v) => (if created { StatusCode::CREATED } else { StatusCode::OK }, axum::Json(v)).into_response(),
        Err((409, m)) if created => status(409, "AlreadyExists", m),
        Err((409, m)) => status(409, "Conflict", m),
        Err((404, m)) => status(404, "NotFound", m),
        Err((c, m)) => status(c, "Invalid", m),
    };
    match (method, &t.name) {
        (Method::GET, None) => {
            let selector = query.get("labelSelector").cloned().unwrap_or_default();
            let fields = query.get("fieldSelector").cloned().unwrap_or_default();
            if matches!(query.get("watch").map(String::as_str), Some("true" | "1")) {
                let since: u64 = query.get("resourceVersion").and_then(|v| v.parse().ok()).unwrap_or(0);
                return watch(store, t.resource, t.namespace, (selector, fields), since);
            }
            let (items, rv) = store.list_at(&t.resource, t.namespace.as_deref());
            let items: Vec<Value> = items.into_iter().filter(|o| selected(o, &selector, &fields)).collect();
            axum::Json(json!({"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": rv.to_string()}, "items": items}))
                .into_response()
        }
        (Method::POST, None) => match json_body() {
            Ok(obj) => reply(store.create(&t.resource, &ns, obj), true),
            Err(r) => *r,
        },
        (Method::GET, Some(name)) => match store.get(&t.resource, &ns, name) {
            Some(v) => axum::Json(v).into_response(),
            None => status(404, "NotFound", format!("{} \"{name}\" not found", t.resource)),
        },
        (Method::DELETE, Some(name)) => match store.delete(&t.resource, &ns, name) {
            Some(v) => axum::Json(v).into_response(),
            None => status(404, "NotFound", format!("{} \"{name}\" not found", t.resource)),
        },
        (method @ (Method::PATCH | Method::PUT), Some(name)) => {
            let patch = match json_body() {
                Ok(p) => p,
                Err(r) => return *r,
            };
            let kind = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            let on_status = t.subresource.as_deref() == Some("status");
            let has_status_subresource = t.resource.starts_with("apis/secretflow.io/");
            let replace = method == Method::PUT;
            // A write that names the version it read is refused when the object has moved on since.
            let read = patch["metadata"]["resourceVersion"].as_str().map(String::from);
            let r = store.update(&t.resource, &ns, name, |obj| {
                if let Some(read) = &read
                    && obj["metadata"]["resourceVersion"].as_str() != Some(read)
                {
                    return Err((409, format!(
                        "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply \
                         your changes to the latest version and try again",
                        t.resource
                    )));
                }
                let mut candidate = obj.clone();
                if replace {
                    candidate = patch.clone();
                } else if kind.contains("json-patch") {
                    json_patch(&mut candidate, &patch).map_err(|e| (422, e))?;
                } else {
                    // merge-patch, strategic merge (treated as merge) and apply (treated as merge of the intent).
                    merge_patch(&mut candidate, &patch);
                }
                if on_status {
                    obj["status"] = candidate.get("status").cloned().unwrap_or(Value::Null);
                } else if has_status_subresource {
                    let keep = obj.get("status").cloned();
                    *obj = candidate;
                    match keep {
                        Some(s) => obj["status"] = s,
                        None => {
                            if let Some(m) = obj.as_object_mut() {
                                m.remove("status");
                            }
                        }
                    }
                } else {
                    *obj = candidate;
                }
                Ok(())
            });
            reply(r, false)
        }
        (m, _) => status(405, "MethodNotAllowed", format!("{m} {}", uri.path())),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A watch stream: history after `since`, then live changes, as newline-delimited JSON events.
fn watch(store: Store, resource: String, ns: Option<String>, selector: (String, String), since: u64) -> Response {
    let mut live = store.subscribe();
    let past: Vec<Change> = store.lock().history.iter().filter(|c| c.rv > since).cloned().collect();
    let wanted = move |c: &Change| {
        c.resource == resource
            && ns.as_deref().is_none_or(|n| c.object["metadata"]["namespace"].as_str() == Some(n))
            && selected(&c.object, &selector.0, &selector.1)
    };
    let stream = async_stream(move |tx| async move {
        let mut last = since;
        for c in past {
            if wanted(&c) && tx.send(line(&c)).await.is_err() {
                return;
            }
            last = last.max(c.rv);
        }
        loop {
            match live.recv().await {
                Ok(c) if c.rv > last => {
                    last = c.rv;
                    if wanted(&c) && tx.send(line(&c)).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let gone = json!({"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired",
                                                                  "message": "watch fell behind", "status": "Failure"}});
                    let _ = tx.send(format!("{gone}\n")).await;
                    return;
                }
                Err(_) => return,
            }
        }
    });
    Response::builder().header("content-type", "application/json").body(stream).expect("response")
}

fn line(c: &Change) -> String {
    format!("{}\n", json!({"type": c.kind, "object": c.object}))
}

/// A body fed by a task writing lines into a channel.
fn async_stream<F, Fut>(f: F) -> Body
where
    F: FnOnce(tokio::sync::mpsc::Sender<String>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(256);
    tokio::spawn(f(tx));
    let stream =
        tokio_stream::wrappers::ReceiverStream::new(rx).map(|s| Ok::<_, std::convert::Infallible>(Bytes::from(s)));
    Body::from_stream(stream)
}

use tokio_stream::StreamExt as _;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_and_json_patches() {
        let mut v = json!({"a": {"b": 1, "c": 2}});
        merge_patch(&mut v, &json!({"a": {"b": null, "d": 3}}));
        assert_eq!(v, json!({"a": {"c": 2, "d": 3}}));
        json_patch(&mut v, &json!([{"op": "replace", "path": "/a/c", "value": 5}, {"op": "remove", "path": "/a/d"}]))
            .unwrap();
        assert_eq!(v, json!({"a": {"c": 5}}));
    }

    #[test]
    fn selectors_and_paths() {
        let o = json!({"metadata": {"labels": {"a": "1", "b": "2"}}});
        assert!(labels_match(&o, "a=1,b==2"));
        assert!(!labels_match(&o, "a=2"));
        assert!(labels_match(&o, "a!=2"));
        let t = parse_path("/apis/secretflow.io/v1alpha1/namespaces/ns/secretflowtasks/x/status").unwrap();
        assert_eq!(
            (t.resource.as_str(), t.namespace.as_deref(), t.name.as_deref()),
            ("apis/secretflow.io/v1alpha1/secretflowtasks", Some("ns"), Some("x"))
        );
        assert_eq!(t.subresource.as_deref(), Some("status"));
        assert_eq!(parse_path("/api/v1/pods").unwrap().namespace, None);
    }
}
