//! The committed `crds/secretflowtask.yaml` must equal what the types generate.

use std::path::PathBuf;

#[test]
fn committed_crd_yaml_is_current() {
    let generated = secretflow_crds::crd::crd_yaml();
    assert!(generated.contains("kind: CustomResourceDefinition"), "{generated}");
    let dir = std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), PathBuf::from);
    let path = dir.join("secretflowtask.yaml");
    if std::env::var_os("UPDATE_CRD").is_some() {
        std::fs::write(&path, &generated).expect("write the CRD");
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "crds/secretflowtask.yaml is stale: run `cargo run -p secretflow-operator -- crd > crds/secretflowtask.yaml` \
         (or UPDATE_CRD=1 cargo test -p secretflow-crds --test crd_yaml)"
    );
}
