//! The kube glue around [`super::pipeline`]: list a pipeline's step tasks, apply the plan (create tasks,
//! Events, a status merge patch) and keep the pipelines-by-phase gauge. Started by [`super::run`] next to the
//! task controller, watching SecretFlowPipelines and the tasks they own.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};

use secretflow_crds::crd::SecretFlowTask;
use secretflow_crds::pipeline::SecretFlowPipeline;

use super::pipeline::{ObservedTask, PIPELINE_LABEL, PipelineAction, reconcile_pipeline};
use super::reconcile::EventKind;
use super::run::{Context, Error, ignore_conflict};

/// One pipeline reconcile, timed into the metrics.
#[tracing::instrument(skip_all, fields(pipeline = %p.name_any(), namespace = p.namespace().as_deref().unwrap_or_default()))]
pub async fn reconcile(p: Arc<SecretFlowPipeline>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    let started = std::time::Instant::now();
    let result = reconcile_once(p, &ctx).await;
    ctx.metrics.reconciled(started.elapsed());
    result
}

/// Retry a failed reconcile after a pause.
pub fn error_policy(p: Arc<SecretFlowPipeline>, e: &Error, ctx: Arc<Context>) -> Requeue {
    ctx.metrics.failed(&e.kind());
    tracing::warn!(pipeline = %p.name_any(), error = %e, "reconcile failed; retrying");
    Requeue::requeue(Duration::from_secs(5))
}

async fn reconcile_once(p: Arc<SecretFlowPipeline>, ctx: &Context) -> Result<Requeue, Error> {
    let name = p.name_any();
    let ns = p.namespace().unwrap_or_else(|| "default".into());
    let key = format!("{ns}/{name}");
    if p.metadata.deletion_timestamp.is_some() {
        ctx.metrics.pipeline_phase(&key, None);
        return Ok(Requeue::await_change());
    }
    let tasks: Api<SecretFlowTask> = Api::namespaced(ctx.client.clone(), &ns);
    let pipelines: Api<SecretFlowPipeline> = Api::namespaced(ctx.client.clone(), &ns);
    // Read from the API server, not a cache: a step created by the last pass is always seen.
    let listed = tasks.list(&ListParams::default().labels(&format!("{PIPELINE_LABEL}={name}"))).await?;
    let uid = p.metadata.uid.clone();
    let owned = |t: &SecretFlowTask| t.owner_references().iter().any(|o| Some(&o.uid) == uid.as_ref());
    let observed: Vec<ObservedTask> = listed.items.iter().filter(|t| owned(t)).filter_map(ObservedTask::of).collect();
    let plan = reconcile_pipeline(&p, &observed, Timestamp::now());

    let mut creates = Vec::new();
    let mut events = Vec::new();
    for action in plan.actions {
        match action {
            PipelineAction::CreateTask(t) => {
                let api = tasks.clone();
                creates.push(async move { ignore_conflict(api.create(&PostParams::default(), &t).await) });
            }
            PipelineAction::Event { kind, reason, message, task } => events.push((kind, reason, message, task)),
        }
    }
    // Every creation lands before the status says so; a crash in between is repaired by the next pass.
    futures_util::future::try_join_all(creates).await?;
    let reference = p.object_ref(&());
    for (kind, reason, message, task) in events {
        let type_ = if kind == EventKind::Warning { EventType::Warning } else { EventType::Normal };
        let secondary = task.map(|name| ObjectReference {
            api_version: Some("secretflow.io/v1alpha1".into()),
            kind: Some("SecretFlowTask".into()),
            name: Some(name),
            namespace: Some(ns.clone()),
            ..ObjectReference::default()
        });
        let event = Event { type_, reason: reason.clone(), note: Some(message), action: reason, secondary };
        if let Err(e) = ctx.recorder.publish(&event, &reference).await {
            tracing::warn!(pipeline = %key, error = %e, "could not record an event");
        }
    }
    let patch = &plan.status_patch;
    if patch.as_object().is_some_and(|m| !m.is_empty()) {
        let body = Patch::Merge(serde_json::json!({"status": patch}));
        pipelines.patch_status(&name, &PatchParams::default(), &body).await?;
        if let Some(phase) = patch.get("phase").and_then(|v| v.as_str()) {
            tracing::info!(pipeline = %key, phase, "phase");
        }
    }
    let phase = patch
        .get("phase")
        .and_then(|v| v.as_str())
        .map(String::from)
        .or_else(|| p.status.as_ref().and_then(|s| s.phase).map(|v| format!("{v:?}")));
    ctx.metrics.pipeline_phase(&key, phase.as_deref());
    Ok(plan.requeue.map_or_else(Requeue::await_change, Requeue::requeue))
}
