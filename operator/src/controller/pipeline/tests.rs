//! Pipeline reconcile without a server: ordering, parallelism, both failure policies, validation, and a
//! controller restarted at every point of a run.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::{Value, json};

use secretflow_crds::crd::TaskPhase;
use secretflow_crds::pipeline::{SecretFlowPipeline, SecretFlowPipelineStatus, StepPhase};
use secretflow_crds::{ErrorInfo, ErrorType};

use super::{ObservedTask, PIPELINE_LABEL, PipelineAction, PipelinePlan, STEP_LABEL, reconcile_pipeline, step_task};

/// A step: name, dependsOn, taskConfig.
type Step<'a> = (&'a str, &'a [&'a str], Value);

fn psi() -> Value {
    json!({"task_type": "psi", "keys": {"alice": ["uid"], "bob": ["uid"]},
           "input_paths": {"alice": "a.csv", "bob": "b.csv"},
           "output_paths": {"alice": "a_psi.csv", "bob": "b_psi.csv"}, "receiver": "alice"})
}

fn scaler() -> Value {
    json!({"task_type": "standard_scaler", "input_data": {"alice": "a_psi.csv", "bob": "b_psi.csv"},
           "output_data": {"alice": "a_s.csv", "bob": "b_s.csv"}, "columns": ["x1", "x2"]})
}

fn train() -> Value {
    json!({"task_type": "ss_lr", "train_data": {"alice": "a_s.csv", "bob": "b_s.csv"},
           "features": ["x1", "x2"], "label": "y", "label_party": "alice",
           "model_output": {"alice": "a_m.json", "bob": "b_m.json"},
           "params": {"epochs": 1, "learning_rate": 0.1, "batch_size": 16, "reg_type": "logistic"},
           "test_data": {"alice": "a_s.csv", "bob": "b_s.csv"}, "prediction_output": {"alice": "a_p.csv"},
           "prediction_receiver": "alice"})
}

fn eval() -> Value {
    json!({"task_type": "biclassification_eval", "prediction_data": {"alice": "a_p.csv"}, "label_column": "y",
           "prediction_column": "pred_prob", "output_report": "r.json"})
}

/// Pipeline `ns/job` with `steps` (`(name, dependsOn, taskConfig)`) and `extra` merged into its spec.
fn pipeline(steps: &[Step], extra: Value) -> SecretFlowPipeline {
    let steps: Vec<Value> = steps.iter().map(|(n, d, c)| json!({"name": n, "dependsOn": d, "taskConfig": c})).collect();
    let mut spec = json!({"parties": [{"name": "alice"}, {"name": "bob"}], "spu": {"protocol": "SEMI2K"},
                          "steps": steps});
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    let mut p = SecretFlowPipeline::new("job", serde_json::from_value(spec).unwrap());
    p.metadata.namespace = Some("ns".into());
    p.metadata.uid = Some("uid-p".into());
    p.metadata.generation = Some(1);
    p
}

fn linear() -> SecretFlowPipeline {
    pipeline(
        &[
            ("psi", &[], psi()),
            ("scale", &["psi"], scaler()),
            ("train", &["scale"], train()),
            ("eval", &["train"], eval()),
        ],
        json!({}),
    )
}

fn now() -> Timestamp {
    "2026-12-07T10:00:00Z".parse().unwrap()
}

/// RFC 7386 merge patch, as the API server applies a status patch.
fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = json!({});
            }
            for (k, v) in p {
                let t = target.as_object_mut().unwrap();
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// Where a crashing controller stops in one pass.
#[derive(Clone, Copy, PartialEq)]
enum Crash {
    /// The pass completes.
    No,
    /// Only the first task creation reaches the API server; no status is written.
    AfterFirstCreate,
    /// Every creation reaches it, the status write does not.
    BeforeStatus,
}

/// The API server and the task controller as far as a pipeline sees them.
struct World {
    p: SecretFlowPipeline,
    tasks: BTreeMap<String, ObservedTask>,
    created: Vec<String>,
    events: Vec<(String, String)>,
}

impl World {
    fn new(p: SecretFlowPipeline) -> World {
        World { p, tasks: BTreeMap::new(), created: Vec::new(), events: Vec::new() }
    }

    /// One reconcile, its plan applied up to `crash`.
    fn pass(&mut self, crash: Crash) -> PipelinePlan {
        let observed: Vec<ObservedTask> = self.tasks.values().cloned().collect();
        let plan = reconcile_pipeline(&self.p, &observed, now());
        let mut creates = 0;
        for a in &plan.actions {
            match a {
                PipelineAction::CreateTask(t) => {
                    let name = t.metadata.name.clone().unwrap();
                    assert!(!self.tasks.contains_key(&name), "task {name} planned again while it exists");
                    creates += 1;
                    if crash == Crash::AfterFirstCreate && creates > 1 {
                        continue;
                    }
                    self.tasks.insert(name.clone(), ObservedTask::of(t).unwrap());
                    self.created.push(name);
                }
                PipelineAction::Event { reason, message, .. } if crash == Crash::No => {
                    self.events.push((reason.clone(), message.clone()))
                }
                PipelineAction::Event { .. } => {}
            }
        }
        if crash == Crash::No {
            let mut status = serde_json::to_value(self.p.status.clone().unwrap_or_default()).unwrap();
            merge(&mut status, &plan.status_patch);
            self.p.status = Some(serde_json::from_value::<SecretFlowPipelineStatus>(status).unwrap());
        }
        plan
    }

    /// Step `step`'s task ends in `phase`.
    fn end(&mut self, step: &str, phase: TaskPhase) {
        let t = self.tasks.get_mut(&format!("job-{step}")).unwrap_or_else(|| panic!("no task for {step}"));
        t.phase = Some(phase);
        t.completion_time = Some("2026-12-07T10:05:00Z".into());
        match phase {
            TaskPhase::Succeeded => t.result = Some(json!({"step": step, "auc": 0.9})),
            _ => t.error = Some(ErrorInfo::new(ErrorType::RuntimeError, "party bob failed in attempt 1: link lost")),
        }
    }

    fn run(&mut self, step: &str) {
        self.tasks.get_mut(&format!("job-{step}")).unwrap().phase = Some(TaskPhase::Running);
    }

    fn status(&self) -> SecretFlowPipelineStatus {
        self.p.status.clone().unwrap_or_default()
    }

    fn phase_of(&self, step: &str) -> StepPhase {
        self.status().steps.iter().find(|s| s.name == step).unwrap().phase
    }

    fn live(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .tasks
            .values()
            .filter(|t| !matches!(t.phase, Some(TaskPhase::Succeeded | TaskPhase::Failed)))
            .map(|t| t.step.clone())
            .collect();
        v.sort();
        v
    }
}

#[test]
fn steps_run_in_dependency_order_and_the_pipeline_ends_with_their_results() {
    let mut w = World::new(linear());
    w.pass(Crash::No);
    assert_eq!(w.live(), ["psi"]);
    assert_eq!(w.status().phase, Some(TaskPhase::Running));
    assert_eq!(w.status().progress.as_deref(), Some("0/4"));
    assert_eq!(w.status().running.as_deref(), Some("psi"));
    assert_eq!(w.phase_of("scale"), StepPhase::Waiting);
    w.run("psi");
    w.pass(Crash::No);
    assert_eq!(w.phase_of("psi"), StepPhase::Running);
    for (step, next) in [("psi", "scale"), ("scale", "train"), ("train", "eval")] {
        w.end(step, TaskPhase::Succeeded);
        w.pass(Crash::No);
        assert_eq!(w.live(), [next], "after {step}");
        assert_eq!(w.phase_of(step), StepPhase::Succeeded);
    }
    w.end("eval", TaskPhase::Succeeded);
    let plan = w.pass(Crash::No);
    assert!(plan.requeue.is_none());
    let s = w.status();
    assert_eq!(s.phase, Some(TaskPhase::Succeeded));
    assert_eq!(s.progress.as_deref(), Some("4/4"));
    assert_eq!(s.running, None);
    assert!(s.completion_time.is_some() && s.start_time.is_some());
    assert_eq!(s.steps.iter().map(|x| x.name.as_str()).collect::<Vec<_>>(), ["psi", "scale", "train", "eval"]);
    assert_eq!(s.steps[3].result, Some(json!({"step": "eval", "auc": 0.9})));
    assert_eq!(s.steps[3].task.as_deref(), Some("job-eval"));
    assert!(s.conditions.iter().any(|c| c.type_ == "Complete" && c.status == "True"), "{:?}", s.conditions);
    assert_eq!(w.created, ["job-psi", "job-scale", "job-train", "job-eval"]);
    let reasons: Vec<&str> = w.events.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(reasons.iter().filter(|r| **r == "StepStarted").count(), 4, "{reasons:?}");
    assert_eq!(reasons.iter().filter(|r| **r == "StepSucceeded").count(), 4, "{reasons:?}");
    assert_eq!(reasons.last(), Some(&"Succeeded"));
    // Finished: nothing more is done.
    let plan = w.pass(Crash::No);
    assert!(plan.actions.is_empty() && plan.status_patch == json!({}));
}

#[test]
fn step_tasks_are_named_labelled_owned_and_carry_the_dag_ids() {
    let p = linear();
    let t = step_task(&p, 2);
    assert_eq!(t.metadata.name.as_deref(), Some("job-train"));
    assert_eq!(t.metadata.namespace.as_deref(), Some("ns"));
    let labels = t.metadata.labels.clone().unwrap();
    assert_eq!(labels[PIPELINE_LABEL], "job");
    assert_eq!(labels[STEP_LABEL], "train");
    let owner = &t.metadata.owner_references.clone().unwrap()[0];
    assert_eq!((owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()), ("SecretFlowPipeline", "job", "uid-p"));
    assert_eq!(owner.controller, Some(true));
    assert_eq!((t.spec.task_id.as_str(), t.spec.subtask_id.as_str()), ("job", "train"));
    assert_eq!(t.spec.task_config, train());
}

#[test]
fn independent_steps_run_at_once_up_to_parallelism() {
    let steps: [Step; 4] = [("a", &[], psi()), ("b", &[], psi()), ("c", &[], psi()), ("d", &["a", "b", "c"], scaler())];
    let mut w = World::new(pipeline(&steps, json!({})));
    w.pass(Crash::No);
    assert_eq!(w.live(), ["a", "b", "c"]);
    assert_eq!(w.status().running.as_deref(), Some("a,b,c"));

    let mut w = World::new(pipeline(&steps, json!({"parallelism": 2})));
    w.pass(Crash::No);
    assert_eq!(w.live(), ["a", "b"]);
    w.pass(Crash::No);
    assert_eq!(w.live(), ["a", "b"], "still two at once");
    w.end("b", TaskPhase::Succeeded);
    w.pass(Crash::No);
    assert_eq!(w.live(), ["a", "c"]);
    w.end("a", TaskPhase::Succeeded);
    w.pass(Crash::No);
    assert_eq!(w.live(), ["c"], "d waits for c");
    w.end("c", TaskPhase::Succeeded);
    w.pass(Crash::No);
    assert_eq!(w.live(), ["d"]);
}

#[test]
fn under_stop_a_failed_step_starts_nothing_more_and_fails_the_pipeline_once_the_running_end() {
    // a -> (b, c) -> d, and e independent of all, one at a time after a.
    let steps: [Step; 5] = [
        ("a", &[], psi()),
        ("b", &["a"], scaler()),
        ("c", &["a"], scaler()),
        ("d", &["b", "c"], train()),
        ("e", &[], psi()),
    ];
    let mut w = World::new(pipeline(&steps, json!({"parallelism": 2})));
    w.pass(Crash::No);
    assert_eq!(w.live(), ["a", "e"]);
    w.end("a", TaskPhase::Succeeded);
    w.pass(Crash::No);
    assert_eq!(w.live(), ["b", "e"]);
    w.end("b", TaskPhase::Failed);
    w.pass(Crash::No);
    assert_eq!(w.live(), ["e"], "nothing starts after the failure");
    assert_eq!(w.status().phase, Some(TaskPhase::Running), "e still runs");
    assert_eq!(w.phase_of("c"), StepPhase::Skipped);
    assert_eq!(w.phase_of("d"), StepPhase::Skipped);
    w.end("e", TaskPhase::Succeeded);
    w.pass(Crash::No);
    let s = w.status();
    assert_eq!(s.phase, Some(TaskPhase::Failed));
    let error = s.error.unwrap();
    assert_eq!(error.kind, ErrorType::RuntimeError);
    assert!(error.message.contains("step b (task job-b) failed") && error.message.contains("party bob"), "{error}");
    assert!(s.steps[2].message.as_deref().unwrap().contains("failure policy is Stop"), "{:?}", s.steps[2]);
    assert_eq!(w.phase_of("e"), StepPhase::Succeeded);
    assert!(w.events.iter().any(|e| e.0 == "StepFailed" && e.1.contains("party bob")), "{:?}", w.events);
    assert_eq!(w.events.last().map(|e| e.0.as_str()), Some("StepFailed"));
}

#[test]
fn under_continue_every_step_not_depending_on_the_failure_runs() {
    let steps: [Step; 4] = [("a", &[], psi()), ("b", &["a"], scaler()), ("c", &[], psi()), ("d", &["c"], scaler())];
    let mut w = World::new(pipeline(&steps, json!({"failurePolicy": "Continue", "parallelism": 1})));
    w.pass(Crash::No);
    assert_eq!(w.live(), ["a"]);
    w.end("a", TaskPhase::Failed);
    w.pass(Crash::No);
    assert_eq!(w.phase_of("b"), StepPhase::Skipped);
    assert!(w.status().steps[1].message.as_deref().unwrap().contains("`a` it depends on failed"));
    assert_eq!(w.live(), ["c"]);
    w.end("c", TaskPhase::Succeeded);
    w.pass(Crash::No);
    assert_eq!(w.live(), ["d"]);
    w.end("d", TaskPhase::Succeeded);
    w.pass(Crash::No);
    let s = w.status();
    assert_eq!(s.phase, Some(TaskPhase::Failed));
    assert!(s.error.unwrap().message.contains("step a"));
    assert_eq!(s.progress.as_deref(), Some("4/4"));
}

#[test]
fn invalid_pipelines_fail_before_anything_runs_naming_the_step_and_field() {
    let mut bad_config = psi();
    bad_config["receiver"] = json!("carol");
    let cases: [(&[Step], &str, &str); 4] = [
        (&[("a", &[], psi()), ("b", &["x"], scaler())], "spec.steps[1].dependsOn", "unknown step `x`"),
        (&[("a", &["b"], psi()), ("b", &["a"], scaler())], "spec.steps[0].dependsOn", "cycle"),
        (&[("a", &[], psi()), ("a", &[], psi())], "spec.steps[1].name", "twice"),
        (&[("a", &[], psi()), ("b", &["a"], bad_config)], "spec.steps[1].taskConfig.receiver", "step `b`"),
    ];
    for (steps, field, words) in cases {
        let mut w = World::new(pipeline(steps, json!({})));
        let plan = w.pass(Crash::No);
        assert!(w.created.is_empty(), "{field}: {:?}", w.created);
        assert!(plan.actions.iter().all(|a| matches!(a, PipelineAction::Event { .. })));
        let s = w.status();
        assert_eq!(s.phase, Some(TaskPhase::Failed), "{field}");
        let e = s.error.unwrap();
        assert_eq!(e.kind, ErrorType::ValueError);
        assert!(e.message.starts_with(&format!("{field}: ")) && e.message.contains(words), "{field}: {e}");
        assert!(s.conditions.iter().any(|c| c.type_ == "Validated" && c.status == "False"));
    }
    // A step task name past 63 characters (the task's Service is named after it).
    let long = "s".repeat(60);
    let mut w = World::new(pipeline(&[(long.as_str(), &[], psi())], json!({})));
    w.pass(Crash::No);
    assert!(w.status().error.unwrap().message.contains("longer than 63"));
}

#[test]
fn a_controller_restarted_at_any_point_creates_no_step_twice_and_loses_none() {
    let steps: [Step; 5] = [
        ("a", &[], psi()),
        ("b", &["a"], scaler()),
        ("c", &["a"], scaler()),
        ("d", &["b", "c"], train()),
        ("e", &["d"], eval()),
    ];
    for crash_at in 0..8 {
        for crash in [Crash::AfterFirstCreate, Crash::BeforeStatus] {
            let mut w = World::new(pipeline(&steps, json!({})));
            for pass in 0..20 {
                let mode = if pass == crash_at { crash } else { Crash::No };
                w.pass(mode);
                // The task controller moves every live task on by one phase per pass.
                for step in w.live() {
                    let t = &w.tasks[&format!("job-{step}")];
                    match t.phase {
                        None => w.run(&step),
                        _ => w.end(&step, TaskPhase::Succeeded),
                    }
                }
                if w.status().phase == Some(TaskPhase::Succeeded) {
                    break;
                }
            }
            let s = w.status();
            assert_eq!(s.phase, Some(TaskPhase::Succeeded), "crash at pass {crash_at}");
            let mut created = w.created.clone();
            created.sort();
            assert_eq!(created, ["job-a", "job-b", "job-c", "job-d", "job-e"], "crash at pass {crash_at}");
            assert!(s.steps.iter().all(|x| x.phase == StepPhase::Succeeded && x.result.is_some()));
        }
    }
}

#[test]
fn a_spec_edit_after_the_start_is_not_followed() {
    let mut w = World::new(linear());
    w.pass(Crash::No);
    w.p.metadata.generation = Some(2);
    w.p.spec.steps.remove(1);
    w.pass(Crash::No);
    let s = w.status();
    assert_eq!(s.phase, Some(TaskPhase::Failed));
    let e = s.error.unwrap();
    assert!(e.message.contains("immutable") && e.message.contains("generation 1 to 2"), "{e}");
    assert_eq!(w.created, ["job-psi"]);
}

#[test]
fn a_step_task_deleted_before_it_ends_fails_its_step() {
    let mut w = World::new(linear());
    w.pass(Crash::No);
    w.tasks.clear();
    w.pass(Crash::No);
    let s = w.status();
    assert_eq!(s.phase, Some(TaskPhase::Failed));
    assert!(s.steps[0].message.as_deref().unwrap().contains("was deleted"), "{:?}", s.steps[0]);
    assert_eq!(w.created, ["job-psi"], "not re-created");
}
