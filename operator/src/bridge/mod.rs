//! The Celery bridge: takes `tasks.secretflow.execute_task` messages off Redis exactly as a Celery worker
//! would (spec/celery-wire.md), runs each request through an [`executor`], and stores the Celery result the
//! web container's unmodified `AsyncResult.get()` reads.
//!
//! Started as `secretflow-operator bridge --broker redis://... --queue secretflow_queue`. Runs until SIGTERM
//! or SIGINT: it then stops claiming, puts claimed-but-unstarted messages back, lets running tasks finish
//! (a second signal exits at once; their messages are restored after the visibility timeout), and says
//! `worker-offline`.

pub mod backend;
pub mod broker;
pub mod control;
pub mod events;
pub mod executor;
pub mod kubernetes;
pub mod message;
pub mod worker;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{Notify, Semaphore, watch};

use broker::{Broker, Claimed};
use worker::{FailureMode, Settings, Shared};

/// `secretflow-operator bridge` flags (each also read from an environment variable).
#[derive(clap::Args, Debug, Clone)]
pub struct BridgeArgs {
    /// The Celery broker (`redis://` or `rediss://` with TLS).
    #[arg(long, env = "SF_BRIDGE_BROKER", default_value = "redis://127.0.0.1:6379/0")]
    pub broker: String,
    /// The result backend; defaults to the broker.
    #[arg(long, env = "SF_BRIDGE_BACKEND")]
    pub backend: Option<String>,
    /// The queue to consume.
    #[arg(long, env = "SF_BRIDGE_QUEUE", default_value = "secretflow_queue")]
    pub queue: String,
    /// Where requests run.
    #[arg(long, env = "SF_BRIDGE_EXECUTOR", value_enum, default_value = "local")]
    pub executor: ExecutorKind,
    /// Tasks run at once (default: the number of CPUs).
    #[arg(long, env = "SF_BRIDGE_CONCURRENCY")]
    pub concurrency: Option<usize>,
    /// The worker name shown in events and results (default `bridge@<host name>`).
    #[arg(long = "hostname", env = "SF_BRIDGE_HOSTNAME")]
    pub hostname: Option<String>,
    /// How a failed execution is stored: `return` (the documented failure object as a Celery SUCCESS) or
    /// `raise` (a Celery FAILURE whose exc_type is the error type).
    #[arg(long, env = "SF_BRIDGE_FAILURE_MODE", value_enum, default_value = "return")]
    pub failure_mode: FailureMode,
    /// Store STARTED when a task starts (Celery's task_track_started).
    #[arg(long, env = "SF_BRIDGE_TRACK_STARTED")]
    pub track_started: bool,
    /// Store name, args, kwargs, worker, retries and queue with each result (Celery's result_extended).
    #[arg(long, env = "SF_BRIDGE_RESULT_EXTENDED")]
    pub result_extended: bool,
    /// Seconds results are kept (Celery's result_expires).
    #[arg(long, env = "SF_BRIDGE_RESULT_EXPIRES", default_value_t = 86_400)]
    pub result_expires: u64,
    /// Seconds after which an unacknowledged message of a lost consumer is restored (kombu's
    /// visibility_timeout; keep it equal across the bridges and Celery workers of a queue).
    #[arg(long, env = "SF_BRIDGE_VISIBILITY_TIMEOUT", default_value_t = 3600.0)]
    pub visibility_timeout: f64,
    /// Seconds between restore passes (kombu runs one about every 100 s).
    #[arg(long, env = "SF_BRIDGE_RESTORE_INTERVAL", default_value_t = 100.0)]
    pub restore_interval: f64,
    /// Hard time limit in seconds for messages that carry none (Celery's task_time_limit).
    #[arg(long, env = "SF_BRIDGE_TIME_LIMIT")]
    pub time_limit: Option<f64>,
    /// Do not send Celery events (the Worker API status stream is always sent).
    #[arg(long, env = "SF_BRIDGE_NO_EVENTS")]
    pub no_events: bool,
    /// Confine data paths to these folders (local executor; colon-separated in `SF_DATA_ROOTS`).
    #[arg(long = "data-root", env = "SF_DATA_ROOTS", value_delimiter = ':')]
    pub data_roots: Vec<PathBuf>,
    /// Namespace of the SecretFlowTasks the kubernetes executor creates.
    #[arg(long, env = "SF_BRIDGE_K8S_NAMESPACE", default_value = "default")]
    pub k8s_namespace: String,
    /// `spec.runtime` (JSON) of the tasks the kubernetes executor creates: image, data volume, data root.
    #[arg(long, env = "SF_BRIDGE_K8S_RUNTIME")]
    pub k8s_runtime: Option<String>,
    /// `ttlSecondsAfterFinished` of the tasks the kubernetes executor creates.
    #[arg(long, env = "SF_BRIDGE_K8S_TASK_TTL")]
    pub k8s_task_ttl: Option<i64>,
    /// Seconds a party waits for a peer's message (local executor).
    #[arg(long, env = "SF_LINK_TIMEOUT", default_value_t = 60.0)]
    pub link_timeout: f64,
}

/// Where requests run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExecutorKind {
    /// In this process, with the party-runtime library.
    Local,
    /// As SecretFlowTask resources run by the operator.
    Kubernetes,
}

/// The broker database number (kombu's fanout channels are prefixed with it).
fn db_of(client: &redis::Client) -> i64 {
    client.get_connection_info().redis_settings().db()
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Run the bridge until SIGTERM / SIGINT.
pub async fn run(args: BridgeArgs) -> anyhow::Result<()> {
    let executor: Arc<dyn executor::Executor> = match args.executor {
        ExecutorKind::Local => Arc::new(executor::LocalExecutor::new(
            args.data_roots.clone(),
            Duration::from_secs_f64(args.link_timeout.max(0.1)),
        )),
        ExecutorKind::Kubernetes => {
            let runtime: secretflow_crds::crd::RuntimeSpec = match &args.k8s_runtime {
                Some(text) => serde_json::from_str(text).context("--k8s-runtime must be a JSON spec.runtime object")?,
                None => Default::default(),
            };
            let client =
                kube::Client::try_default().await.context("--executor kubernetes needs a Kubernetes client")?;
            Arc::new(kubernetes::KubernetesExecutor::new(client, &args.k8s_namespace, runtime, args.k8s_task_ttl))
        }
    };
    let hostname = args.hostname.clone().unwrap_or_else(|| format!("bridge@{}", host_name()));
    let consumer = format!("{hostname}.{}.{}", std::process::id(), &uuid::Uuid::new_v4().to_string()[..8]);
    let broker_client = redis::Client::open(args.broker.as_str()).context("--broker")?;
    let backend_client = match &args.backend {
        Some(url) => redis::Client::open(url.as_str()).context("--backend")?,
        None => broker_client.clone(),
    };
    let manager_config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(Duration::from_secs(30)));
    let conn = broker_client
        .get_connection_manager_with_config(manager_config.clone())
        .await
        .with_context(|| format!("connecting to the broker {}", redact(&args.broker)))?;
    let backend_conn = backend_client.get_connection_manager_with_config(manager_config).await.with_context(|| {
        format!("connecting to the result backend {}", redact(args.backend.as_ref().unwrap_or(&args.broker)))
    })?;
    let db = db_of(&broker_client);
    let broker = Broker::new(conn.clone(), &args.queue, &consumer);
    let events = events::Events::new(conn.clone(), db, &hostname, !args.no_events);
    let revokes = control::Revokes::default();
    let pidbox_ready = Arc::new(Notify::new());
    tokio::spawn(control::listen(broker_client.clone(), db, hostname.clone(), revokes.clone(), pidbox_ready.clone()));
    tokio::time::timeout(Duration::from_secs(10), pidbox_ready.notified())
        .await
        .context("subscribing to the remote-control channel")?;

    let concurrency =
        args.concurrency.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())).max(1);
    let visibility = Duration::from_secs_f64(args.visibility_timeout.max(1.0));
    let (stop_tx, stop_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        broker: broker.clone(),
        backend: backend::Backend::new(backend_conn, args.result_expires, args.result_extended),
        events: events.clone(),
        revokes,
        executor,
        settings: Settings {
            hostname: hostname.clone(),
            failure_mode: args.failure_mode,
            track_started: args.track_started,
            time_limit: args.time_limit,
            lock_ttl: visibility.min(Duration::from_secs(60)).max(Duration::from_secs(5)),
        },
        slots: Arc::new(Semaphore::new(concurrency)),
        shutdown: stop_rx.clone(),
        conn: conn.clone(),
        inflight: Mutex::new(Default::default()),
    });

    broker.heartbeat().await?;
    let recovered = broker.recover_processing().await?;
    let restored = broker.restore_visible(visibility).await?;
    tracing::info!(%hostname, queue = %args.queue, concurrency, recovered, restored, "bridge ready");
    events.celery("worker-online", events.worker_fields()).await;
    let background = vec![
        tokio::spawn(heartbeat_loop(shared.clone())),
        tokio::spawn(refresh_loop(shared.clone(), visibility)),
        tokio::spawn(restore_loop(broker.clone(), visibility, Duration::from_secs_f64(args.restore_interval.max(1.0)))),
    ];
    tokio::spawn(signals(stop_tx));

    let handlers = consume(shared.clone(), broker_client, stop_rx).await;
    tracing::info!(running = handlers.len(), "shutting down: waiting for running tasks");
    for h in handlers {
        let _ = h.await;
    }
    for b in background {
        b.abort();
    }
    events.celery("worker-offline", events.worker_fields()).await;
    broker.retire().await?;
    tracing::info!("bridge stopped");
    Ok(())
}

/// Claim messages while slots are free until shutdown; returns the handlers still running.
async fn consume(
    shared: Arc<Shared>,
    client: redis::Client,
    mut stop: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut handlers: Vec<tokio::task::JoinHandle<()>> = Vec::new();
    let mut blocking: Option<redis::aio::MultiplexedConnection> = None;
    while !*stop.borrow() {
        handlers.retain(|h| !h.is_finished());
        let permit = tokio::select! {
            p = shared.slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = stop.wait_for(|s| *s) => break,
        };
        let claimed = match shared.broker.try_claim().await {
            Ok(Some(c)) => Ok(Some(c)),
            Ok(None) => {
                if blocking.is_none() {
                    let cfg = redis::AsyncConnectionConfig::new().set_response_timeout(None);
                    blocking = client.get_multiplexed_async_connection_with_config(&cfg).await.ok();
                }
                match blocking.as_mut() {
                    Some(conn) => shared.broker.blocking_claim(conn, Duration::from_millis(500)).await,
                    None => Err(redis::RedisError::from((redis::ErrorKind::Io, "no blocking connection"))),
                }
            }
            Err(e) => Err(e),
        };
        match claimed {
            Ok(Some(Claimed::Message(msg))) => handlers.push(tokio::spawn(shared.clone().handle(*msg, permit))),
            Ok(Some(Claimed::Rejected(raw, why))) => {
                let head: String = raw.chars().take(200).collect();
                tracing::error!(%why, message = %head, "unreadable message moved to {}", broker::REJECTED);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "claiming failed; retrying in 1 s");
                blocking = None;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    handlers.retain(|h| !h.is_finished());
    handlers
}

/// `worker-heartbeat` every 2 s and the liveness key that guards this consumer's processing list.
async fn heartbeat_loop(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tick.tick().await;
        if let Err(e) = shared.broker.heartbeat().await {
            tracing::warn!(error = %e, "liveness refresh failed");
        }
        shared.events.celery("worker-heartbeat", shared.events.worker_fields()).await;
    }
}

/// Keep claimed messages from being restored by others, and execution locks from expiring.
async fn refresh_loop(shared: Arc<Shared>, visibility: Duration) {
    let period = (visibility / 4).min(shared.settings.lock_ttl / 3).max(Duration::from_millis(500));
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        let (tags, locks) = shared.inflight_snapshot();
        if let Err(e) = shared.broker.refresh(&tags).await {
            tracing::warn!(error = %e, "visibility refresh failed");
        }
        let mut conn = shared.conn.clone();
        for key in locks {
            let ttl = shared.settings.lock_ttl.as_millis() as u64;
            let _: redis::RedisResult<()> = redis::cmd("PEXPIRE").arg(key).arg(ttl).query_async(&mut conn).await;
        }
    }
}

/// Restore lost work every `interval`: dead consumers' processing lists and stale `unacked` entries.
async fn restore_loop(broker: Broker, visibility: Duration, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.tick().await;
    loop {
        tick.tick().await;
        match (broker.recover_processing().await, broker.restore_visible(visibility).await) {
            (Ok(r), Ok(v)) if r + v > 0 => tracing::info!(recovered = r, restored = v, "restored lost messages"),
            (Err(e), _) | (_, Err(e)) => tracing::warn!(error = %e, "restore pass failed"),
            _ => {}
        }
    }
}

/// First SIGTERM/SIGINT: graceful shutdown. Second: exit now.
async fn signals(stop: watch::Sender<bool>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        return tracing::error!("cannot install signal handlers");
    };
    for round in 0..2 {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        if round == 0 {
            tracing::info!("signal received: warm shutdown (a second signal exits at once)");
            let _ = stop.send(true);
        } else {
            tracing::warn!("second signal: exiting now; running messages are restored after the visibility timeout");
            std::process::exit(1);
        }
    }
}

/// A URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_string(),
    }
}
