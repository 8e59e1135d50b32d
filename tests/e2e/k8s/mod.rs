//! A stand-in for a Kubernetes cluster (there is none on the test machines): the API server of
//! [`apiserver`], the pod runner of [`kubelet`], and the real controller loop of `secretflow-operator`
//! running against them in-process.

pub mod apiserver;
pub mod kubelet;
pub mod schema;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use secretflow_operator::controller::run::{ControllerArgs, run_with_client};

/// The SecretFlowTask resource path.
pub const TASKS: &str = "apis/secretflow.io/v1alpha1/secretflowtasks";
/// The SecretFlowPipeline resource path.
pub const PIPELINES: &str = "apis/secretflow.io/v1alpha1/secretflowpipelines";

/// A running stand-in cluster; the controller stops when it is dropped.
pub struct Cluster {
    /// The API objects.
    pub store: apiserver::Store,
    /// The pods' processes.
    pub processes: kubelet::Processes,
    /// The API server's URL.
    pub url: String,
    /// A kubeconfig for it (what a process outside the test reads through `KUBECONFIG`).
    pub kubeconfig: PathBuf,
    /// The controller's `/metrics` URL.
    pub metrics: String,
    /// Where each pod's files are (`<pod>/container.log` is its log).
    pods: PathBuf,
    controller: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.controller.abort();
    }
}

/// The `party-runtime` binary: `SF_PARTY_RUNTIME_BIN`, or the one next to this test binary (built if missing).
pub fn runtime_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("SF_PARTY_RUNTIME_BIN") {
        return PathBuf::from(bin);
    }
    workspace_binary("party-runtime", "party-runtime")
}

/// A workspace binary next to this test binary, built if missing.
pub fn workspace_binary(package: &str, name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let bin = exe.parent().and_then(Path::parent).expect("target dir").join(name);
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let release = bin.parent().and_then(Path::file_name).is_some_and(|d| d == "release");
        let ok = std::process::Command::new(cargo)
            .args(["build", "-p", package, "--bin", name])
            .args(release.then_some("--release"))
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok && bin.exists(), "could not build {name} at {}", bin.display());
    }
    bin
}

/// A loopback address with a port free now (for a server started right after).
pub fn free_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port")
}

/// A kubeconfig in `dir` for the API server at `url` (what a process outside the test reads through
/// `KUBECONFIG`).
pub fn write_kubeconfig(dir: &Path, url: &str) -> PathBuf {
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: test\nclusters:\n- name: test\n  cluster:\n    server: {url}\n\
             users:\n- name: test\n  user: {{}}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n"
        ),
    )
    .expect("kubeconfig");
    kubeconfig
}

/// A kube client for the API server at `url`.
pub fn client_for(url: &str) -> kube::Client {
    kube::Client::try_from(kube::Config::new(url.parse().expect("url"))).expect("client")
}

/// The real controller loop against the API server at `url`, serving metrics at `metrics_addr`.
fn spawn_controller(url: &str, metrics_addr: std::net::SocketAddr) -> tokio::task::JoinHandle<()> {
    let client = client_for(url);
    let args = ControllerArgs {
        party_image: "party-runtime:test".into(),
        party_service_account: "secretflow-party".into(),
        party_data_root: "/app/data".into(),
        namespace: None,
        metrics_addr,
        leader_elect: false,
        lease_namespace: "default".into(),
    };
    tokio::spawn(async move {
        if let Err(e) = run_with_client(client, args).await {
            panic!("controller failed: {e:#}");
        }
    })
}

impl Cluster {
    /// Start the API server, the kubelet and the controller.
    pub async fn start() -> Cluster {
        Cluster::start_with(true).await
    }

    /// Start the API server and the controller, and the kubelet only if `kubelet` (without it, pods stay
    /// Pending: the controller's own latency can be measured without 2 cores running the pods).
    pub async fn start_with(kubelet: bool) -> Cluster {
        Cluster::launch(kubelet, kubelet::Network::default()).await
    }

    /// Start a cluster whose pods share `net` with other clusters started on it.
    pub async fn start_on(net: kubelet::Network) -> Cluster {
        Cluster::launch(true, net).await
    }

    async fn launch(kubelet: bool, net: kubelet::Network) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = apiserver::Store::new();
        let url = apiserver::serve(store.clone()).await;
        let kubeconfig = write_kubeconfig(dir.path(), &url);
        let pods = dir.path().join("pods");
        let processes = if kubelet {
            kubelet::start(store.clone(), runtime_binary(), kubeconfig.clone(), pods.clone(), net)
        } else {
            kubelet::Processes::default()
        };
        let metrics_addr = free_addr();
        let controller = spawn_controller(&url, metrics_addr);
        let metrics = format!("http://{metrics_addr}/metrics");
        Cluster { store, processes, url, kubeconfig, metrics, pods, controller, _dir: dir }
    }

    /// Stop the controller where it is and start a new one (a crashed or rescheduled operator pod); the new
    /// one serves its metrics at a new [`Cluster::metrics`] address.
    pub fn restart_controller(&mut self) {
        self.controller.abort();
        let metrics_addr = free_addr();
        self.controller = spawn_controller(&self.url, metrics_addr);
        self.metrics = format!("http://{metrics_addr}/metrics");
    }

    /// `kubectl apply` of a SecretFlowTask in namespace `ns`.
    pub fn apply(&self, ns: &str, task: Value) {
        self.store.create(TASKS, ns, task).expect("create the task");
    }

    /// A pod's container log (stdout and stderr) so far.
    pub fn pod_log(&self, pod: &str) -> String {
        std::fs::read_to_string(self.pods.join(pod).join("container.log")).unwrap_or_default()
    }

    /// The task as stored.
    pub fn task(&self, ns: &str, name: &str) -> Option<Value> {
        self.store.get(TASKS, ns, name)
    }

    /// Wait until `f(task)` holds; panics with the task's last state after `timeout`.
    pub async fn wait_task(&self, ns: &str, name: &str, timeout: Duration, f: impl Fn(&Value) -> bool) -> Value {
        self.wait_for(TASKS, ns, name, timeout, f).await
    }

    /// Wait until `f(pipeline)` holds; panics with the pipeline's last state after `timeout`.
    pub async fn wait_pipeline(&self, ns: &str, name: &str, timeout: Duration, f: impl Fn(&Value) -> bool) -> Value {
        self.wait_for(PIPELINES, ns, name, timeout, f).await
    }

    /// Wait until `f(object)` holds for object `name` of `resource`.
    async fn wait_for(
        &self,
        resource: &str,
        ns: &str,
        name: &str,
        timeout: Duration,
        f: impl Fn(&Value) -> bool,
    ) -> Value {
        let end = Instant::now() + timeout;
        loop {
            let t = self.store.get(resource, ns, name);
            if let Some(t) = &t
                && f(t)
            {
                return t.clone();
            }
            assert!(
                Instant::now() < end,
                "timed out; {name} is now: {}",
                serde_json::to_string_pretty(&t).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Wait for a terminal phase.
    pub async fn wait_done(&self, ns: &str, name: &str, timeout: Duration) -> Value {
        self.wait_task(ns, name, timeout, |t| matches!(t["status"]["phase"].as_str(), Some("Succeeded" | "Failed")))
            .await
    }
}
