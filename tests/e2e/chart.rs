//! The Helm chart (charts/secretflow-operator) without a Helm binary: its CRD is the generated one, every
//! `.Values` path the templates use exists in values.yaml, the operator may run pipelines, and party pods get no
//! more than status patches.

use serde_json::Value;

use secretflow_e2e::repo_root;

fn chart(path: &str) -> String {
    std::fs::read_to_string(repo_root().join("charts/secretflow-operator").join(path)).unwrap()
}

#[test]
fn the_chart_crds_are_the_generated_ones() {
    for (file, generated) in [
        ("secretflowtask.yaml", secretflow_crds::crd::crd_yaml()),
        ("secretflowpipeline.yaml", secretflow_crds::pipeline::crd_yaml()),
    ] {
        assert!(
            chart(&format!("crds/{file}")) == generated,
            "charts/secretflow-operator/crds/{file} is stale: copy crds/{file} over it"
        );
    }
}

#[test]
fn the_operator_may_run_pipelines() {
    let rbac = chart("templates/operator-rbac.yaml");
    let role = rbac.split("kind: ClusterRole\n").nth(1).unwrap().split("---").next().unwrap();
    for (resources, verbs) in [
        (r#"resources: ["secretflowtasks"]"#, r#"verbs: ["get", "list", "watch", "create", "delete"]"#),
        (r#"resources: ["secretflowpipelines"]"#, r#"verbs: ["get", "list", "watch"]"#),
        (
            r#"resources: ["secretflowtasks/status", "secretflowpipelines/status"]"#,
            r#"verbs: ["get", "patch", "update"]"#,
        ),
    ] {
        let rule = role.split("- apiGroups").find(|r| r.contains(resources)).unwrap_or_else(|| panic!("{resources}"));
        assert!(rule.contains(verbs), "{rule}");
    }
}

#[test]
fn every_values_path_in_the_templates_exists() {
    let values: Value = serde_saphyr::from_str(&chart("values.yaml")).unwrap();
    let dir = repo_root().join("charts/secretflow-operator/templates");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, _) in text.match_indices(".Values.") {
            let rest = &text[i + ".Values.".len()..];
            let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_')).unwrap_or(rest.len());
            let dotted = rest[..end].trim_end_matches('.');
            let pointer = format!("/{}", dotted.replace('.', "/"));
            assert!(values.pointer(&pointer).is_some(), "{}: .Values.{dotted} is not in values.yaml", path.display());
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} references found");
}

#[test]
fn party_pods_may_only_patch_task_status() {
    let rbac = chart("templates/party-rbac.yaml");
    let role = rbac.split("kind: Role\n").nth(1).unwrap().split("---").next().unwrap();
    assert!(
        role.contains(r#"resources: ["secretflowtasks/status"]"#) && role.contains(r#"verbs: ["patch"]"#),
        "{role}"
    );
    assert_eq!(role.matches("apiGroups").count(), 1, "one rule only: {role}");
}
