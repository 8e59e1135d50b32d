use serde_json::json;

use super::*;

fn step(name: &str, deps: &[&str]) -> PipelineStep {
    PipelineStep {
        name: name.into(),
        depends_on: deps.iter().map(|d| d.to_string()).collect(),
        task_config: json!({"task_type": "table_statistics"}),
        parties: None,
        spu: None,
        runtime: None,
        active_deadline_seconds: None,
        backoff_limit: None,
    }
}

fn spec(steps: Vec<PipelineStep>) -> SecretFlowPipelineSpec {
    SecretFlowPipelineSpec {
        parties: vec![PartySpec { name: "alice".into(), external: None, runtime: None }],
        spu: None,
        runtime: RuntimeSpec { data_root: Some("/data".into()), threads: Some(2), ..RuntimeSpec::default() },
        steps,
        parallelism: None,
        failure_policy: None,
    }
}

fn names(s: &SecretFlowPipelineSpec, order: &[usize]) -> Vec<String> {
    order.iter().map(|&i| s.steps[i].name.clone()).collect()
}

#[test]
fn order_puts_dependencies_first_and_keeps_spec_order_among_ready_steps() {
    let s = spec(vec![
        step("eval", &["train"]),
        step("psi", &[]),
        step("train", &["scale", "psi"]),
        step("scale", &["psi"]),
    ]);
    assert_eq!(names(&s, &s.order().unwrap()), ["psi", "scale", "train", "eval"]);
    let diamond = spec(vec![step("a", &[]), step("c", &["a"]), step("b", &["a"]), step("d", &["b", "c"])]);
    assert_eq!(names(&diamond, &diamond.order().unwrap()), ["a", "c", "b", "d"]);
}

#[test]
fn bad_dags_name_the_step_and_field() {
    let e = spec(vec![step("a", &[]), step("b", &["x"])]).order().unwrap_err();
    assert_eq!(e.field, "spec.steps[1].dependsOn");
    assert!(e.message.contains("`b` depends on unknown step `x`"), "{e}");

    let e = spec(vec![step("a", &[]), step("a", &[])]).order().unwrap_err();
    assert_eq!(e.field, "spec.steps[1].name");
    assert!(e.message.contains("used twice"), "{e}");

    let e = spec(vec![step("a", &["a"])]).order().unwrap_err();
    assert!(e.message.contains("depends on itself"), "{e}");

    let e = spec(vec![step("Train", &[])]).order().unwrap_err();
    assert_eq!(e.field, "spec.steps[0].name");
    assert!(e.message.contains("DNS label"), "{e}");

    let e = spec(vec![]).order().unwrap_err();
    assert_eq!(e.field, "spec.steps");

    let e = spec(vec![step("a", &["b", "b"]), step("b", &[])]).order().unwrap_err();
    assert!(e.message.contains("twice"), "{e}");
}

#[test]
fn a_cycle_is_reported_with_its_steps() {
    // `start` is fine; b -> c -> d -> b is a cycle and `e` only hangs off it.
    let s = spec(vec![
        step("start", &[]),
        step("e", &["b"]),
        step("b", &["c", "start"]),
        step("c", &["d"]),
        step("d", &["b"]),
    ]);
    let e = s.order().unwrap_err();
    assert!(e.message.contains("cycle"), "{e}");
    let cycle = e.message.rsplit(": ").next().unwrap();
    let steps: Vec<&str> = cycle.split(" -> ").collect();
    assert_eq!(steps.first(), steps.last(), "{e}");
    let mut inner: Vec<&str> = steps[1..].to_vec();
    inner.sort();
    assert_eq!(inner, ["b", "c", "d"], "{e}");
    assert!(e.field.ends_with("].dependsOn"), "{e}");
}

#[test]
fn a_step_task_takes_the_pipeline_defaults_under_its_own_overrides() {
    let mut s = spec(vec![step("psi", &[])]);
    s.spu = Some(SpuSpec { protocol: Some(crate::request::Protocol::SEMI2K), ..SpuSpec::default() });
    let mut own = step("train", &["psi"]);
    own.runtime = Some(RuntimeSpec { threads: Some(8), ..RuntimeSpec::default() });
    own.backoff_limit = Some(1);
    let t = s.step_task("job", &own);
    assert_eq!((t.task_id.as_str(), t.subtask_id.as_str(), t.execution_id.as_str()), ("job", "train", "job-train"));
    assert_eq!(t.parties, s.parties);
    assert_eq!(t.spu, s.spu);
    assert_eq!(t.runtime.threads, Some(8));
    assert_eq!(t.runtime.data_root.as_deref(), Some("/data"));
    assert_eq!(t.backoff_limit, Some(1));
    assert_eq!(t.task_config, own.task_config);
    own.parties = Some(vec![PartySpec { name: "bob".into(), external: None, runtime: None }]);
    assert_eq!(s.step_task("job", &own).parties[0].name, "bob");
}

#[test]
fn the_crd_declares_the_immutable_spec_and_the_printer_columns() {
    let yaml = crd_yaml();
    assert!(yaml.contains("rule: self == oldSelf"), "{yaml}");
    assert!(yaml.contains("shortNames:\n      - sfp") || yaml.contains("- sfp"), "{yaml}");
    for column in ["Phase", "Progress", "Running", "Age"] {
        assert!(yaml.contains(&format!("name: {column}")), "{column}: {yaml}");
    }
}
