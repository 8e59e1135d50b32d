//! The kube glue around [`reconcile`]: watch SecretFlowTasks and the pods they own, observe a task's
//! children, apply the plan (create / delete, Events, a status merge patch), serve metrics, and optionally
//! take a Lease so that only one of several replicas reconciles. SecretFlowPipelines are reconciled next to
//! the tasks, by [`super::pipeline_run`].

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action as Requeue, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};

use secretflow_crds::crd::SecretFlowTask;
use secretflow_crds::pipeline::SecretFlowPipeline;

use super::certs::{self, LinkTls};
use super::children::{self, ATTEMPT_LABEL, Defaults, PARTY_LABEL, TASK_LABEL};
use super::metrics::{self, Metrics};
use super::pipeline_run;
use super::reconcile::{Action, EventKind, Observed, ObservedPod, PodPhase, reconcile};

/// `secretflow-operator controller` flags.
#[derive(clap::Args, Debug, Clone)]
pub struct ControllerArgs {
    /// The party-runtime image for pods whose task names none.
    #[arg(long, env = "SF_PARTY_IMAGE", default_value = "ghcr.io/secretflow-operator/party-runtime:latest")]
    pub party_image: String,
    /// The ServiceAccount party pods run as.
    #[arg(long, env = "SF_PARTY_SERVICE_ACCOUNT", default_value = "secretflow-party")]
    pub party_service_account: String,
    /// Data root inside party pods when a task gives none.
    #[arg(long, env = "SF_PARTY_DATA_ROOT", default_value = "/app/data")]
    pub party_data_root: String,
    /// Watch only this namespace (default: all).
    #[arg(long, env = "SF_WATCH_NAMESPACE")]
    pub namespace: Option<String>,
    /// Where `/metrics` and `/healthz` are served.
    #[arg(long, env = "SF_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: std::net::SocketAddr,
    /// Take the Lease `secretflow-operator` before reconciling (for more than one replica).
    #[arg(long, env = "SF_LEADER_ELECT")]
    pub leader_elect: bool,
    /// Namespace of the leader-election Lease.
    #[arg(long, env = "SF_LEASE_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
}

/// Errors of one reconcile (retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

impl Error {
    /// The metrics label of this error: the API's reason (`Conflict`, `NotFound`, ...) or `Transport`.
    pub fn kind(&self) -> String {
        match self {
            Error::Kube(kube::Error::Api(status)) if !status.reason.is_empty() => status.reason.clone(),
            Error::Kube(kube::Error::Api(status)) => format!("HTTP{}", status.code),
            Error::Kube(_) => "Transport".into(),
        }
    }
}

/// What every reconcile shares.
pub struct Context {
    pub(crate) client: Client,
    defaults: Defaults,
    pub(crate) recorder: Recorder,
    /// Metrics.
    pub metrics: Arc<Metrics>,
}

/// Run the controller until SIGTERM / SIGINT, with the client from the environment (in-cluster service
/// account or `KUBECONFIG`).
pub async fn run(args: ControllerArgs) -> anyhow::Result<()> {
    run_with_client(Client::try_default().await?, args).await
}

/// Run the controller with `client` until SIGTERM / SIGINT.
pub async fn run_with_client(client: Client, args: ControllerArgs) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::default());
    let served = metrics.clone();
    let addr = args.metrics_addr;
    tokio::spawn(async move {
        if let Err(e) = metrics::serve(addr, served).await {
            tracing::error!(error = %e, %addr, "metrics server failed");
        }
    });
    if args.leader_elect {
        wait_for_leadership(client.clone(), &args.lease_namespace).await?;
    }
    let reporter = Reporter { controller: "secretflow-operator".into(), instance: std::env::var("POD_NAME").ok() };
    let ctx = Arc::new(Context {
        client: client.clone(),
        defaults: Defaults {
            image: args.party_image,
            service_account: args.party_service_account,
            data_root: args.party_data_root,
        },
        recorder: Recorder::new(client.clone(), reporter),
        metrics,
    });
    let (tasks, pods, pipelines) = match &args.namespace {
        Some(ns) => {
            (Api::namespaced(client.clone(), ns), Api::namespaced(client.clone(), ns), Api::namespaced(client, ns))
        }
        None => (Api::all(client.clone()), Api::all(client.clone()), Api::all(client)),
    };
    let (tasks, pods, pipelines): (Api<SecretFlowTask>, Api<Pod>, Api<SecretFlowPipeline>) = (tasks, pods, pipelines);
    let managed = watcher::Config::default().labels("app.kubernetes.io/managed-by=secretflow-operator");
    tracing::info!(namespace = ?args.namespace, "controller started");
    let task_controller = Controller::new(tasks.clone(), watcher::Config::default())
        .owns(pods, managed)
        .shutdown_on_signal()
        .run(reconcile_task, error_policy, ctx.clone())
        .for_each(log_outcome);
    // Pipelines, woken by their step tasks (owned through ownerReferences).
    let pipeline_controller = Controller::new(pipelines, watcher::Config::default())
        .owns(tasks, watcher::Config::default())
        .shutdown_on_signal()
        .run(pipeline_run::reconcile, pipeline_run::error_policy, ctx)
        .for_each(log_outcome);
    futures_util::join!(task_controller, pipeline_controller);
    tracing::info!("controller stopped");
    Ok(())
}

/// Log a reconcile that failed (its retry is already scheduled by the error policy).
async fn log_outcome<T, E: std::fmt::Display>(r: Result<T, E>) {
    if let Err(e) = r {
        tracing::debug!(error = %e, "reconcile");
    }
}

/// Block until this replica holds the Lease; exit the process if it is lost later (another replica takes
/// over from a clean state).
async fn wait_for_leadership(client: Client, namespace: &str) -> anyhow::Result<()> {
    let manager = kube_lease_manager::LeaseManagerBuilder::new(client, "secretflow-operator")
        .with_namespace(namespace)
        .with_duration(15)
        .with_grace(5)
        .build()
        .await?;
    let (mut leader, _task) = manager.watch().await;
    tracing::info!("waiting for the leader lease");
    while !*leader.borrow_and_update() {
        leader.changed().await?;
    }
    tracing::info!("leader lease acquired");
    tokio::spawn(async move {
        while leader.changed().await.is_ok() {
            if !*leader.borrow_and_update() {
                tracing::error!("leader lease lost; exiting");
                std::process::exit(1);
            }
        }
    });
    Ok(())
}

fn error_policy(task: Arc<SecretFlowTask>, e: &Error, ctx: Arc<Context>) -> Requeue {
    ctx.metrics.failed(&e.kind());
    tracing::warn!(task = %task.name_any(), error = %e, "reconcile failed; retrying");
    Requeue::requeue(Duration::from_secs(5))
}

/// A pod as the reconciler sees it.
pub fn observe_pod(pod: &Pod) -> Option<ObservedPod> {
    let labels = pod.metadata.labels.as_ref()?;
    let status = pod.status.as_ref();
    let terminated = status
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.first())
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.terminated.as_ref());
    let phase = match status.and_then(|s| s.phase.as_deref()) {
        Some("Running") => PodPhase::Running,
        Some("Succeeded") => PodPhase::Succeeded,
        Some("Failed") => PodPhase::Failed,
        Some("Unknown") => PodPhase::Unknown,
        _ => PodPhase::Pending,
    };
    Some(ObservedPod {
        name: pod.metadata.name.clone()?,
        party: labels.get(PARTY_LABEL)?.clone(),
        attempt: labels.get(ATTEMPT_LABEL)?.parse().ok()?,
        phase,
        exit_code: terminated.map(|t| t.exit_code),
        message: terminated.and_then(|t| t.message.clone()),
        deleting: pod.metadata.deletion_timestamp.is_some(),
        finished_at: terminated.and_then(|t| t.finished_at.as_ref()).map(|t| t.0),
    })
}

/// One reconcile, timed into the metrics.
#[tracing::instrument(skip_all, fields(task = %task.name_any(), namespace = task.namespace().as_deref().unwrap_or_default()))]
async fn reconcile_task(task: Arc<SecretFlowTask>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    let started = std::time::Instant::now();
    let result = reconcile_once(task, &ctx).await;
    ctx.metrics.reconciled(started.elapsed());
    result
}

async fn reconcile_once(task: Arc<SecretFlowTask>, ctx: &Context) -> Result<Requeue, Error> {
    let (name, ns) = children::name_ns(&task);
    let key = format!("{ns}/{name}");
    if task.metadata.deletion_timestamp.is_some() {
        ctx.metrics.phase(&key, None);
        return Ok(Requeue::await_change());
    }
    let client = ctx.client.clone();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let tasks: Api<SecretFlowTask> = Api::namespaced(client.clone(), &ns);
    // The reads go out together: reconcile latency is round trips. The issued certificates' Secret is read
    // only for tasks that use it.
    let selector = ListParams::default().labels(&format!("{TASK_LABEL}={name}"));
    let map_name = format!("{name}-request");
    let secret_name = certs::secret_name(&name);
    let issued = certs::link_tls(&task).is_ok_and(|t| t == LinkTls::Issued);
    let secret = async {
        match issued {
            true => secrets.get_opt(&secret_name).await.map(|s| s.is_some()),
            false => Ok(false),
        }
    };
    let (listed, service, map, secret) =
        futures_util::try_join!(pods.list(&selector), services.get_opt(&name), maps.get_opt(&map_name), secret)?;
    let observed = Observed {
        service: service.is_some(),
        config_map: map.is_some(),
        secret,
        pods: listed.items.iter().filter_map(observe_pod).collect(),
    };
    let now = Timestamp::now();
    let plan = reconcile(&task, &observed, now, &ctx.defaults);
    let reference = task.object_ref(&());
    // Creates and deletes are independent of each other: issue them together, then the rest in order.
    let mut writes: Vec<futures_util::future::BoxFuture<'static, Result<(), Error>>> = Vec::new();
    let mut pods_created = false;
    let mut rest = Vec::new();
    for action in plan.actions {
        let (svc, cm, pod, sec) = (services.clone(), maps.clone(), pods.clone(), secrets.clone());
        match action {
            Action::CreateService(s) => {
                writes.push(Box::pin(async move { ignore_conflict(svc.create(&PostParams::default(), &s).await) }))
            }
            Action::CreateConfigMap(c) => {
                writes.push(Box::pin(async move { ignore_conflict(cm.create(&PostParams::default(), &c).await) }))
            }
            Action::CreateSecret(s) => {
                writes.push(Box::pin(async move { ignore_conflict(sec.create(&PostParams::default(), &s).await) }))
            }
            Action::CreatePod(p) => {
                pods_created = true;
                writes.push(Box::pin(async move { ignore_conflict(pod.create(&PostParams::default(), &p).await) }));
            }
            Action::DeletePod(n) => writes.push(Box::pin(async move {
                ignore_missing(pod.delete(&n, &DeleteParams::background()).await.map(|_| ()))
            })),
            other => rest.push(other),
        }
    }
    futures_util::future::try_join_all(writes).await?;
    for action in rest {
        match action {
            Action::CreateService(_)
            | Action::CreateConfigMap(_)
            | Action::CreateSecret(_)
            | Action::CreatePod(_)
            | Action::DeletePod(_) => {}
            Action::DeleteTask => {
                tracing::info!(task = %key, "TTL after finishing passed; deleting");
                ignore_missing(tasks.delete(&name, &DeleteParams::background()).await.map(|_| ()))?;
                ctx.metrics.phase(&key, None);
                return Ok(Requeue::await_change());
            }
            Action::Event { kind, reason, message } => {
                let type_ = if kind == EventKind::Warning { EventType::Warning } else { EventType::Normal };
                let event =
                    Event { type_, reason: reason.clone(), note: Some(message), action: reason, secondary: None };
                if let Err(e) = ctx.recorder.publish(&event, &reference).await {
                    tracing::warn!(task = %key, error = %e, "could not record an event");
                }
            }
        }
    }
    let created = task.metadata.creation_timestamp.as_ref().map(|t| t.0.as_second());
    let age = |c: Option<i64>| c.map(|c| (now.as_second() - c).max(0) as f64);
    if pods_created
        && task.status.as_ref().and_then(|s| s.attempt).unwrap_or(1) == 1
        && let Some(a) = age(created)
    {
        ctx.metrics.pods_created(a);
    }
    let patch = &plan.status_patch;
    if patch.as_object().is_some_and(|m| !m.is_empty()) {
        tasks.patch_status(&name, &PatchParams::default(), &Patch::Merge(serde_json::json!({"status": patch}))).await?;
        if let Some(phase) = patch.get("phase").and_then(|p| p.as_str()) {
            tracing::info!(task = %key, phase, "phase");
            if matches!(phase, "Succeeded" | "Failed")
                && let Some(a) = age(created)
            {
                ctx.metrics.completed(a);
            }
        }
    }
    let phase = patch
        .get("phase")
        .and_then(|p| p.as_str())
        .map(String::from)
        .or_else(|| task.status.as_ref().and_then(|s| s.phase).map(|p| format!("{p:?}")));
    ctx.metrics.phase(&key, phase.as_deref());
    Ok(match plan.requeue {
        Some(d) => Requeue::requeue(d.max(Duration::from_millis(200))),
        None => Requeue::await_change(),
    })
}

pub(crate) fn ignore_conflict<T>(r: Result<T, kube::Error>) -> Result<(), Error> {
    match r {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn ignore_missing(r: Result<(), kube::Error>) -> Result<(), Error> {
    match r {
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        other => other.map_err(Error::from),
    }
}
