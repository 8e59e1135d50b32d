//! Runs a Worker-API request: parse and validate, build the link (cluster init), run the job at every party this
//! process hosts (an MPC job builds its device first, timed as device init), write the report, and
//! assemble the execution result with real timings and communication counts.
//!
//! Local mode hosts every party as its own tokio task over the in-memory link. A party's failure reaches the
//! others through the link (they fail naming it), and the result reports the root cause, not the echoes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use secretflow_crds::result::{CommStats, ExecStatus};
use secretflow_crds::{
    ClusterMode, ErrorInfo, ExecutionResult, PerformanceMetrics, TaskConfig, TaskMetadata, ValidRequest, WorkerRequest,
};

use crate::context::{NoProgress, PartyContext, ProgressSink};
use crate::data::{DataPolicy, atomic_write};
use crate::error::{Error, Result};
use crate::jobs::{self, JobOutput};
use crate::link::grpc::{GrpcConfig, GrpcLink, TlsMaterial};
use crate::link::memory::MemoryHub;
use crate::link::{Channel, DEFAULT_TIMEOUT, Limits};
use secretflow_crds::ValidationError;

/// How this process runs requests.
#[derive(Clone)]
pub struct RunOptions {
    /// Cluster mode: the party this process runs (overrides `self_party`).
    pub party: Option<String>,
    /// Where parties may read and write.
    pub data: DataPolicy,
    /// How long a party waits for a peer's message.
    pub link_timeout: Duration,
    /// Where progress goes.
    pub progress: Arc<dyn ProgressSink>,
    /// Mutual TLS for the cluster-mode link.
    pub tls: Option<TlsMaterial>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            party: None,
            data: DataPolicy::default(),
            link_timeout: DEFAULT_TIMEOUT,
            progress: Arc::new(NoProgress),
            tls: None,
        }
    }
}

/// Python's `datetime.utcnow().isoformat()`: microseconds, no offset.
pub fn now_iso() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

/// Run a request given as JSON text. Never panics on bad input; every failure is a `failure` result.
pub async fn run_request(json: &str, opts: &RunOptions) -> ExecutionResult {
    run_request_with_blame(json, opts).await.0
}

/// [`run_request`], also returning the peer a failure is blamed on ([`Error::blamed_peer`]): a party pod
/// writes it to its status, so the controller names the root cause without reading messages.
pub async fn run_request_with_blame(json: &str, opts: &RunOptions) -> (ExecutionResult, Option<String>) {
    let clock = Clock::start();
    let raw = match WorkerRequest::parse(json) {
        Ok(r) => r,
        Err(e) => return (ExecutionResult::failure(e.to_info()), None),
    };
    match raw.validate() {
        Ok(req) => run_valid(&req, opts, clock).await,
        Err(e) => {
            let task_type = raw.task_config.get("task_type").and_then(|t| t.as_str()).unwrap_or("").to_string();
            let mut out = ExecutionResult::failure(e.to_info());
            out.task_metadata =
                Some(clock.metadata(&raw.task_id, &raw.subtask_id, &raw.execution_id, &task_type, vec![]));
            (out, None)
        }
    }
}

/// Phase timestamps of one execution.
struct Clock {
    start: Instant,
    started_at: String,
    cluster_init: f64,
    device_init: f64,
    algorithm: f64,
}

impl Clock {
    fn start() -> Self {
        Clock { start: Instant::now(), started_at: now_iso(), cluster_init: 0.0, device_init: 0.0, algorithm: 0.0 }
    }

    fn metadata(
        &self,
        task_id: &str,
        subtask_id: &str,
        execution_id: &str,
        task_type: &str,
        devices: Vec<String>,
    ) -> TaskMetadata {
        TaskMetadata {
            task_id: task_id.into(),
            subtask_id: subtask_id.into(),
            execution_id: execution_id.into(),
            task_type: task_type.into(),
            started_at: self.started_at.clone(),
            completed_at: now_iso(),
            devices_used: devices,
        }
    }
}

/// Run a validated request; a failure comes with the peer it is blamed on.
async fn run_valid(req: &ValidRequest, opts: &RunOptions, mut clock: Clock) -> (ExecutionResult, Option<String>) {
    let outcome = match contexts(req, opts).await {
        Ok(contexts) => run_hosted(req, contexts, &mut clock).await,
        Err(e) => (Err(e), BTreeMap::new()),
    };
    let (outcome, comm) = outcome;
    let outcome = outcome.and_then(|out| {
        if let Some((raw, content)) = &out.report {
            write_report(&opts.data, &req.parties[0], raw, content)?;
        }
        Ok(out)
    });
    let total = clock.start.elapsed().as_secs_f64();
    let mut metrics = PerformanceMetrics::new(clock.cluster_init, clock.device_init, clock.algorithm, total, comm);
    metrics.peak_memory_bytes = peak_memory_bytes();
    let mut devices = req.parties.clone();
    if req.task.task_type().needs_spu() {
        devices.push("spu".into());
    }
    let metadata =
        clock.metadata(&req.task_id, &req.subtask_id, &req.execution_id, req.task.task_type().as_str(), devices);
    match outcome {
        Ok(mut out) => (
            ExecutionResult {
                status: ExecStatus::Success,
                result: Some({
                    mark_insecure(req, &mut out.result);
                    out.result
                }),
                error: None,
                performance_metrics: Some(metrics),
                task_metadata: Some(metadata),
            },
            None,
        ),
        Err(e) => (failure(e.to_info(), metrics, metadata), e.blamed_peer().map(str::to_string)),
    }
}

/// A result computed on the device with the insecure trusted-first-party correlations says so:
/// `"insecure": true` beside the task's own fields.
fn mark_insecure(req: &ValidRequest, result: &mut serde_json::Value) {
    let dealt = req.spu.as_ref().is_some_and(|spu| spu.insecure());
    if dealt
        && req.task.task_type().needs_spu()
        && let Some(fields) = result.as_object_mut()
    {
        fields.insert("insecure".into(), serde_json::Value::Bool(true));
    }
}

fn failure(error: ErrorInfo, metrics: PerformanceMetrics, metadata: TaskMetadata) -> ExecutionResult {
    ExecutionResult {
        status: ExecStatus::Failure,
        result: None,
        error: Some(error),
        performance_metrics: Some(metrics),
        task_metadata: Some(metadata),
    }
}

/// The contexts of the parties this process runs, with their links up (cluster init).
async fn contexts(req: &ValidRequest, opts: &RunOptions) -> Result<Vec<PartyContext>> {
    let context = |p: &str, link: Arc<dyn crate::link::Link>| {
        PartyContext::new(p, req.parties.clone(), Channel::new(link), opts.data.clone(), opts.progress.clone())
            .with_spu(req.spu.clone())
    };
    match &req.mode {
        ClusterMode::Local | ClusterMode::Ray { .. } => {
            let hub = MemoryHub::new(&req.parties, opts.link_timeout);
            Ok(req.parties.iter().map(|p| context(p, Arc::new(hub.link(p)))).collect())
        }
        ClusterMode::Cluster { self_party, endpoints } => {
            let me = opts.party.clone().or_else(|| self_party.clone()).ok_or_else(|| {
                ValidationError::new("sf_init_config.self_party", "required in cluster mode (or pass --party)")
            })?;
            let mine = endpoints.iter().find(|e| e.party == me).ok_or_else(|| {
                ValidationError::new(
                    "--party",
                    format!("`{me}` is not one of the parties ({})", req.parties.join(", ")),
                )
            })?;
            let cfg = GrpcConfig {
                party: me.clone(),
                session: session_id(req),
                listen: mine.listen_addr.clone(),
                peers: endpoints
                    .iter()
                    .filter(|e| e.party != me)
                    .map(|e| (e.party.clone(), e.address.clone()))
                    .collect(),
                timeout: opts.link_timeout,
                tls: opts.tls.clone(),
                limits: Limits::from_env(),
            };
            let link = GrpcLink::start(cfg).await.map_err(|source| Error::Link { party: me.clone(), source })?;
            link.connect_all().await.map_err(|source| Error::Link { party: me.clone(), source })?;
            Ok(vec![context(&me, Arc::new(link))])
        }
    }
}

/// The session both parties of a cluster-mode task derive on their own: a digest of the task configuration
/// and the parties (the rest of the request, such as ids and addresses, may differ between the two sides).
pub fn session_id(req: &ValidRequest) -> String {
    let mut h = Sha256::new();
    h.update(req.task.to_json().to_string().as_bytes());
    h.update(req.parties.join("\n").as_bytes());
    h.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect()
}

type Outcome = (Result<JobOutput>, BTreeMap<String, CommStats>);

/// Run the job at every hosted party, each as its own task; time the algorithm phase.
async fn run_hosted(req: &ValidRequest, contexts: Vec<PartyContext>, clock: &mut Clock) -> Outcome {
    let task: Arc<TaskConfig> = Arc::new(req.task.clone());
    clock.cluster_init = clock.start.elapsed().as_secs_f64();
    let algorithm_start = Instant::now();
    let handles: Vec<_> = contexts
        .into_iter()
        .map(|ctx| {
            let task = task.clone();
            let party = ctx.party.clone();
            let handle = tokio::spawn(async move {
                let out = jobs::run(&ctx, &task).await;
                let stats = ctx.channel.stats();
                if let Err(e) = &out {
                    ctx.abort(e).await;
                }
                ctx.close().await;
                (stats, ctx.device_init_secs(), out)
            });
            (party, handle)
        })
        .collect();
    // Dropping this future (a time limit, a revoke) must stop the parties too, not leave them running.
    let mut handles = AbortOnDrop(handles);
    let mut comm = BTreeMap::new();
    let mut results = Vec::with_capacity(handles.0.len());
    for (party, h) in handles.0.iter_mut() {
        let party = party.clone();
        match h.await {
            Ok((stats, device_init, out)) => {
                comm.insert(party.clone(), stats);
                clock.device_init = clock.device_init.max(device_init);
                results.push((party, out));
            }
            Err(e) => {
                let what = if e.is_panic() { "panicked" } else { "was cancelled" };
                results.push((party.clone(), Err(Error::Internal(format!("party {party}'s task {what}")))));
            }
        }
    }
    // The device is built inside the job (base OTs when it joins): its time is device init, not algorithm.
    clock.algorithm = (algorithm_start.elapsed().as_secs_f64() - clock.device_init).max(0.0);
    (pick(results), comm)
}

/// Party tasks that are aborted when the run is dropped before they finish.
struct AbortOnDrop(Vec<(String, PartyTask)>);

/// One hosted party's job: its link counters, its device-initialisation seconds and its outcome.
type PartyTask = tokio::task::JoinHandle<(CommStats, f64, Result<JobOutput>)>;

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for (_, h) in &self.0 {
            h.abort();
        }
    }
}

/// Every hosted party with a shared result must agree; otherwise report the root-cause error (not a peer's
/// echo of it). A private result (one only its party holds) is reported only when no shared one exists.
fn pick(results: Vec<(String, Result<JobOutput>)>) -> Result<JobOutput> {
    let mut shared: Option<JobOutput> = None;
    let mut private: Option<JobOutput> = None;
    let mut root: Option<Error> = None;
    let mut echo: Option<Error> = None;
    for (party, r) in results {
        match r {
            Ok(out) if out.private => {
                private.get_or_insert(out);
            }
            Ok(out) => match &shared {
                Some(prev) if *prev != out => {
                    return Err(Error::Internal(format!("party {party} computed a different result from the others")));
                }
                Some(_) => {}
                None => shared = Some(out),
            },
            Err(e) if e.is_peer_report() => {
                echo.get_or_insert(e);
            }
            Err(e) => {
                root.get_or_insert(e);
            }
        }
    }
    match (root.or(echo), shared.or(private)) {
        (Some(e), _) => Err(e),
        (None, Some(out)) => Ok(out),
        (None, None) => Err(Error::Internal("no party ran".into())),
    }
}

/// Peak resident set size of this process (`VmHWM` in `/proc/self/status`, Linux).
fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn write_report(data: &DataPolicy, party: &str, raw: &str, content: &serde_json::Value) -> Result<()> {
    let path = data.resolve(party, "task_config.output_report", raw)?;
    let text = serde_json::to_vec_pretty(content).map_err(|e| Error::Internal(format!("report encoding: {e}")))?;
    atomic_write(party, &path, |f| {
        use std::io::Write;
        f.write_all(&text).map_err(|e| Error::Io { party: party.into(), path: path.clone(), message: e.to_string() })
    })
}
