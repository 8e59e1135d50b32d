//! The harness's "kubelet": runs every Pod created in the test API server as a local `party-runtime` process
//! with the Pod's args and env, and feeds its phase, exit code and termination message back into the Pod
//! status. It also stands in for the cluster network: each pod gets its own loopback address (127.0.x.y), the
//! request ConfigMap is materialised with the pods' DNS names (`<host>.<subdomain>.<ns>.svc`) resolved to
//! those addresses and `0.0.0.0` to the pod's own, Secret volumes are written out (their listed items, or
//! every key), and the runtime reaches the API server through a kubeconfig instead of a service-account
//! token. Deleting a pod kills its process.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use base64::Engine;
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::apiserver::Store;

const PODS: &str = "api/v1/pods";
const CONFIG_MAPS: &str = "api/v1/configmaps";
const SECRETS: &str = "api/v1/secrets";

/// A running pod process: its pid and what kills it.
type Running = (u32, Arc<Notify>);

/// The running processes, by pod name, so tests can kill one.
#[derive(Clone, Default)]
pub struct Processes {
    inner: Arc<Mutex<HashMap<String, Running>>>,
}

impl Processes {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Running>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The pid of a pod's process, while it runs.
    pub fn pid(&self, pod: &str) -> Option<u32> {
        self.lock().get(pod).map(|(p, _)| *p)
    }
}

/// Loopback addresses per pod DNS name and attempt (a re-created pod gets a new address, as in a cluster).
/// Unique across every stand-in cluster of the test process; clusters started on the same network resolve
/// each other's pod names (how two organisations' clusters reach each other's party here).
#[derive(Clone, Default)]
pub struct Network {
    ips: Arc<Mutex<HashMap<String, String>>>,
}

static NEXT_IP: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Network {
    fn ip(&self, fqdn: &str, attempt: &str) -> String {
        let mut ips = self.ips.lock().unwrap_or_else(|p| p.into_inner());
        ips.entry(format!("{fqdn}#{attempt}"))
            .or_insert_with(|| {
                let n = NEXT_IP.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                format!("127.{}.{}.{}", 10 + n / 62_500, 1 + (n / 250) % 250, 1 + n % 250)
            })
            .clone()
    }

    /// `host.sub.ns.svc:port` -> `ip:port`; `0.0.0.0:port` -> `own:port`; anything else unchanged.
    fn resolve(&self, addr: &str, own: &str, attempt: &str) -> String {
        let Some((host, port)) = addr.rsplit_once(':') else { return addr.to_string() };
        if host == "0.0.0.0" {
            return format!("{own}:{port}");
        }
        match host.strip_suffix(".svc") {
            Some(fqdn) => format!("{}:{port}", self.ip(fqdn, attempt)),
            None => addr.to_string(),
        }
    }
}

/// Start the kubelet on `net`: from now on every Pod added to `store` runs `binary`, in `workdir/<pod>`.
pub fn start(store: Store, binary: PathBuf, kubeconfig: PathBuf, workdir: PathBuf, net: Network) -> Processes {
    let procs = Processes::default();
    let mut changes = store.subscribe();
    let p = procs.clone();
    tokio::spawn(async move {
        while let Ok(c) = changes.recv().await {
            if c.resource != PODS {
                continue;
            }
            let name = c.object["metadata"]["name"].as_str().unwrap_or("").to_string();
            match c.kind {
                "ADDED" => {
                    let run = PodRun {
                        store: store.clone(),
                        procs: p.clone(),
                        net: net.clone(),
                        binary: binary.clone(),
                        kubeconfig: kubeconfig.clone(),
                        dir: workdir.join(&name),
                    };
                    tokio::spawn(run.run(c.object));
                }
                "DELETED" => {
                    if let Some((_, kill)) = p.lock().get(&name) {
                        kill.notify_one();
                    }
                }
                _ => {}
            }
        }
    });
    procs
}

struct PodRun {
    store: Store,
    procs: Processes,
    net: Network,
    binary: PathBuf,
    kubeconfig: PathBuf,
    dir: PathBuf,
}

fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl PodRun {
    fn set_status(&self, ns: &str, name: &str, status: Value) {
        let _ = self.store.update(PODS, ns, name, |pod| {
            pod["status"] = status;
            Ok(())
        });
    }

    async fn run(self, pod: Value) {
        let name = pod["metadata"]["name"].as_str().unwrap_or("").to_string();
        let ns = pod["metadata"]["namespace"].as_str().unwrap_or("default").to_string();
        let spec = &pod["spec"];
        let host = spec["hostname"].as_str().unwrap_or(&name).to_string();
        let attempt = pod["metadata"]["labels"]["secretflow.io/attempt"].as_str().unwrap_or("0").to_string();
        let own_ip = match spec["subdomain"].as_str() {
            Some(sub) => self.net.ip(&format!("{host}.{sub}.{ns}"), &attempt),
            None => self.net.ip(&format!("{name}.{ns}"), &attempt),
        };
        match self.prepare(&pod, &ns, &own_ip, &attempt).await {
            Ok((args, env)) => self.execute(&name, &ns, args, env).await,
            Err(message) => self.set_status(&ns, &name, json!({"phase": "Failed", "message": message})),
        }
    }

    /// Volumes materialised, args remapped, env resolved.
    async fn prepare(
        &self,
        pod: &Value,
        ns: &str,
        own_ip: &str,
        attempt: &str,
    ) -> Result<(Vec<String>, Vec<(String, String)>), String> {
        let c = &pod["spec"]["containers"][0];
        let mut mounts: Vec<(String, PathBuf)> = Vec::new();
        for v in pod["spec"]["volumes"].as_array().into_iter().flatten() {
            let vname = v["name"].as_str().unwrap_or("");
            let Some(mount) = c["volumeMounts"].as_array().into_iter().flatten().find(|m| m["name"] == vname) else {
                continue;
            };
            let mount_path = mount["mountPath"].as_str().unwrap_or("").to_string();
            if let Some(cm) = v["configMap"]["name"].as_str() {
                let data = self.config_map(ns, cm).await?;
                let dir = self.dir.join(vname);
                std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
                for (file, content) in data.as_object().into_iter().flatten() {
                    let mut text = content.as_str().unwrap_or("").to_string();
                    if file.ends_with(".json") {
                        text = self.rewrite_request(&text, own_ip, attempt);
                    }
                    std::fs::write(dir.join(file), text).map_err(|e| e.to_string())?;
                }
                mounts.push((mount_path, dir));
            } else if let Some(secret) = v["secret"]["secretName"].as_str() {
                let data = self.wait_for(SECRETS, ns, secret).await?["data"].clone();
                let dir = self.dir.join(vname);
                std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
                for (key, path) in projected(&data, &v["secret"]["items"]) {
                    let b64 = data[&key].as_str().ok_or(format!("secret {ns}/{secret} has no key {key}"))?;
                    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|e| e.to_string())?;
                    std::fs::write(dir.join(path), bytes).map_err(|e| e.to_string())?;
                }
                mounts.push((mount_path, dir));
            }
            // Data volumes (hostPath / claims) are the host's own folders here: the task's dataRoot is a host path.
        }
        // The deepest mount holding a path wins (`/etc/secretflow/tls` inside `/etc/secretflow`).
        let remap = |arg: &str| {
            let inside = |m: &str| arg.strip_prefix(m).filter(|rest| rest.is_empty() || rest.starts_with('/'));
            let best = mounts.iter().filter(|(m, _)| inside(m).is_some()).max_by_key(|(m, _)| m.len());
            match best {
                Some((m, dir)) => format!("{}{}", dir.display(), inside(m).unwrap_or_default()),
                None => arg.to_string(),
            }
        };
        let args: Vec<String> =
            c["args"].as_array().into_iter().flatten().filter_map(|a| a.as_str()).map(remap).collect();
        let mut env: Vec<(String, String)> = Vec::new();
        for e in c["env"].as_array().into_iter().flatten() {
            let key = e["name"].as_str().unwrap_or("").to_string();
            let value = match e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                Some("metadata.namespace") => ns.to_string(),
                Some("metadata.name") => pod["metadata"]["name"].as_str().unwrap_or("").to_string(),
                Some(other) => return Err(format!("unsupported fieldRef {other}")),
                None => e["value"].as_str().unwrap_or("").to_string(),
            };
            env.push((key, value));
        }
        env.push(("KUBECONFIG".into(), self.kubeconfig.display().to_string()));
        Ok((args, env))
    }

    /// Like a kubelet, wait for a volume's ConfigMap to exist (the controller creates it beside the pods).
    async fn config_map(&self, ns: &str, name: &str) -> Result<Value, String> {
        Ok(self.wait_for(CONFIG_MAPS, ns, name).await?["data"].clone())
    }

    /// Wait (up to a minute) for a volume's source object to exist.
    async fn wait_for(&self, resource: &str, ns: &str, name: &str) -> Result<Value, String> {
        for _ in 0..1200 {
            if let Some(obj) = self.store.get(resource, ns, name) {
                return Ok(obj);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Err(format!("{resource} {ns}/{name} not found"))
    }

    fn rewrite_request(&self, text: &str, own_ip: &str, attempt: &str) -> String {
        let Ok(mut req) = serde_json::from_str::<Value>(text) else { return text.to_string() };
        if let Some(parties) = req.pointer_mut("/sf_init_config/parties").and_then(Value::as_object_mut) {
            for entry in parties.values_mut() {
                for k in ["address", "listen_addr"] {
                    if let Some(a) = entry.get(k).and_then(Value::as_str).map(String::from) {
                        entry[k] = self.net.resolve(&a, own_ip, attempt).into();
                    }
                }
            }
        }
        if let Some(nodes) = req.pointer_mut("/spu_config/cluster_def/nodes").and_then(Value::as_array_mut) {
            for n in nodes {
                if let Some(a) = n["address"].as_str().map(String::from) {
                    n["address"] = self.net.resolve(&a, own_ip, attempt).into();
                }
            }
        }
        req.to_string()
    }

    async fn execute(&self, name: &str, ns: &str, args: Vec<String>, env: Vec<(String, String)>) {
        let _ = std::fs::create_dir_all(&self.dir);
        let log = self.dir.join("container.log");
        // The container log is stdout and stderr together, as the termination message's log fallback reads it.
        let file = std::fs::File::create(&log).ok();
        let out = file.as_ref().and_then(|f| f.try_clone().ok()).map(Stdio::from).unwrap_or(Stdio::null());
        let err = file.map(Stdio::from).unwrap_or(Stdio::null());
        let spawned = tokio::process::Command::new(&self.binary)
            .args(&args)
            .envs(env)
            .env("RUST_LOG", "warn,party_runtime::link=info")
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => return self.set_status(ns, name, json!({"phase": "Failed", "message": e.to_string()})),
        };
        let kill = Arc::new(Notify::new());
        self.procs.lock().insert(name.to_string(), (child.id().unwrap_or(0), kill.clone()));
        if self.store.get(PODS, ns, name).is_none() {
            // Deleted while it was being prepared: the DELETED event found no process to kill.
            kill.notify_one();
        }
        let started = now();
        self.set_status(ns, name, json!({"phase": "Running", "startTime": started, "containerStatuses": [
            {"name": "party-runtime", "ready": true, "restartCount": 0, "state": {"running": {"startedAt": started}}}]}));
        let exit = tokio::select! {
            s = child.wait() => s.ok(),
            _ = kill.notified() => {
                let _ = child.kill().await;
                None
            }
        };
        self.procs.lock().remove(name);
        let Some(status) = exit else { return }; // deleted: the pod object is gone
        use std::os::unix::process::ExitStatusExt;
        let code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(9));
        let message = tail(&log, 2048);
        let phase = if code == 0 { "Succeeded" } else { "Failed" };
        self.set_status(ns, name, json!({"phase": phase, "startTime": started, "containerStatuses": [
            {"name": "party-runtime", "ready": false, "restartCount": 0,
             "state": {"terminated": {"exitCode": code, "message": message, "startedAt": started, "finishedAt": now()}}}]}));
    }
}

/// A secret volume's files: `(key, path)` per listed item, or every key under its own name.
fn projected(data: &Value, items: &Value) -> Vec<(String, String)> {
    match items.as_array() {
        Some(items) => items
            .iter()
            .filter_map(|i| Some((i["key"].as_str()?.to_string(), i["path"].as_str()?.to_string())))
            .collect(),
        None => data.as_object().into_iter().flatten().map(|(k, _)| (k.clone(), k.clone())).collect(),
    }
}

/// The last `max` bytes of a log (FallbackToLogsOnError keeps at most 2048 bytes / 80 lines).
fn tail(path: &Path, max: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let start = text.len().saturating_sub(max);
    let start = (start..text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
    text[start..].to_string()
}
