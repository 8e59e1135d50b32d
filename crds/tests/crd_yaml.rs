//! The committed `crds/secretflowtask.yaml` and `crds/secretflowpipeline.yaml` must equal what the types
//! generate.

use std::path::PathBuf;

fn check(file: &str, kind: &str, generated: String) {
    assert!(generated.contains("kind: CustomResourceDefinition"), "{generated}");
    let dir = std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), PathBuf::from);
    let path = dir.join(file);
    if std::env::var_os("UPDATE_CRD").is_some() {
        std::fs::write(&path, &generated).expect("write the CRD");
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "crds/{file} is stale: run `cargo run -p secretflow-operator -- crd {kind} > crds/{file}` \
         (or UPDATE_CRD=1 cargo test -p secretflow-crds --test crd_yaml)"
    );
}

#[test]
fn committed_task_crd_yaml_is_current() {
    check("secretflowtask.yaml", "task", secretflow_crds::crd::crd_yaml());
}

#[test]
fn committed_pipeline_crd_yaml_is_current() {
    check("secretflowpipeline.yaml", "pipeline", secretflow_crds::pipeline::crd_yaml());
}
