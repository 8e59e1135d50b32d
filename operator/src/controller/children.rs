//! What a SecretFlowTask becomes in the cluster: a headless Service (stable DNS per party), a ConfigMap with
//! the Worker-API request in cluster mode (every party's link and SPU address wired), and one Pod per local
//! party per attempt. Pure builders: the reconciler decides when to create them.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use kube::Resource;
use serde_json::{Value, json};

use secretflow_crds::ValidationError;
use secretflow_crds::convert::{Endpoints, request_for_spec};
use secretflow_crds::crd::{PartySpec, RuntimeSpec, SecretFlowTask};

use super::certs::{self, LinkTls, TLS_DIR};

/// Port of the party link (gRPC) in every party pod.
pub const LINK_PORT: u16 = 9400;
/// Port of the SPU device in every party pod.
pub const SPU_PORT: u16 = 9401;
/// Label keys.
pub const TASK_LABEL: &str = "secretflow.io/task";
/// The party a pod runs.
pub const PARTY_LABEL: &str = "secretflow.io/party";
/// The attempt a pod belongs to.
pub const ATTEMPT_LABEL: &str = "secretflow.io/attempt";
/// Where the request is mounted in a party pod.
pub const REQUEST_PATH: &str = "/etc/secretflow/request.json";

/// Operator-wide defaults for party pods.
#[derive(Clone, Debug)]
pub struct Defaults {
    /// The party-runtime image.
    pub image: String,
    /// The ServiceAccount party pods run as (may patch `secretflowtasks/status` only).
    pub service_account: String,
    /// Data root inside a pod when the spec gives none.
    pub data_root: String,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            image: "ghcr.io/secretflow-operator/party-runtime:latest".into(),
            service_account: "secretflow-party".into(),
            data_root: "/app/data".into(),
        }
    }
}

/// A party name as a DNS label (`alice_bank` -> `alice-bank`), for pod hostnames and names.
pub fn dns_label(party: &str) -> String {
    let s: String =
        party.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    let s = s.trim_matches('-').to_string();
    if s.is_empty() { "party".into() } else { s.chars().take(63).collect() }
}

/// The task's name and namespace.
pub fn name_ns(task: &SecretFlowTask) -> (String, String) {
    (
        task.metadata.name.clone().unwrap_or_default(),
        task.metadata.namespace.clone().unwrap_or_else(|| "default".into()),
    )
}

/// Where party `p` is reached: its own pod's stable DNS name, or the external address.
fn link_address(task: &SecretFlowTask, p: &PartySpec) -> String {
    let (name, ns) = name_ns(task);
    match &p.external {
        Some(ext) => ext.address.clone(),
        None => format!("{}.{name}.{ns}.svc:{LINK_PORT}", dns_label(&p.name)),
    }
}

fn spu_address(task: &SecretFlowTask, p: &PartySpec) -> String {
    let (name, ns) = name_ns(task);
    match &p.external {
        Some(ext) => ext.spu_address.clone().unwrap_or_else(|| ext.address.clone()),
        None => format!("{}.{name}.{ns}.svc:{SPU_PORT}", dns_label(&p.name)),
    }
}

/// The Worker-API request every party pod runs (cluster mode, `self_party` given per pod by `--party`),
/// validated the way `party-runtime` will validate it.
pub fn request(task: &SecretFlowTask) -> Result<Value, ValidationError> {
    let spec = &task.spec;
    if spec.parties.is_empty() {
        return Err(ValidationError::new("spec.parties", "at least one party is required"));
    }
    let mut labels: Vec<String> = Vec::new();
    for p in &spec.parties {
        let l = dns_label(&p.name);
        if labels.contains(&l) {
            return Err(ValidationError::new(
                "spec.parties",
                format!("party `{}` maps to the same DNS name `{l}` as another party", p.name),
            ));
        }
        labels.push(l);
    }
    if spec.parties.iter().all(|p| p.external.is_some()) {
        return Err(ValidationError::new("spec.parties", "every party is external: nothing to run here"));
    }
    let endpoints = |p: &PartySpec| Endpoints { link: link_address(task, p), spu: spu_address(task, p) };
    let req = request_for_spec(spec, endpoints, &format!("0.0.0.0:{LINK_PORT}"))?;
    serde_json::to_value(&req).map_err(|e| ValidationError::new("spec", format!("cannot write the request: {e}")))
}

/// Labels shared by a task's children.
pub(crate) fn labels(task: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".into(), "secretflow-party".into()),
        ("app.kubernetes.io/managed-by".into(), "secretflow-operator".into()),
        (TASK_LABEL.into(), task.into()),
    ])
}

pub(crate) fn owner(task: &SecretFlowTask) -> Value {
    let (name, _) = name_ns(task);
    json!([{
        "apiVersion": SecretFlowTask::api_version(&()),
        "kind": SecretFlowTask::kind(&()),
        "name": name,
        "uid": task.metadata.uid.clone().unwrap_or_default(),
        "controller": true,
        "blockOwnerDeletion": true,
    }])
}

pub(crate) fn typed<T: serde::de::DeserializeOwned>(v: Value) -> T {
    // The builders below produce fixed, well-formed objects; a failure here is a bug caught by the unit tests.
    serde_json::from_value(v).unwrap_or_else(|e| panic!("child object does not deserialize: {e}"))
}

/// The headless Service giving each party pod `<party>.<task>.<ns>.svc`.
pub fn service(task: &SecretFlowTask) -> Service {
    let (name, ns) = name_ns(task);
    typed(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "labels": labels(&name), "ownerReferences": owner(task)},
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": true,
            "selector": {TASK_LABEL: name},
            "ports": [{"name": "link", "port": LINK_PORT}, {"name": "spu", "port": SPU_PORT}],
        }
    }))
}

/// The ConfigMap holding the request (`request.json`).
pub fn config_map(task: &SecretFlowTask, request: &Value) -> ConfigMap {
    let (name, ns) = name_ns(task);
    let text = serde_json::to_string_pretty(request).unwrap_or_default();
    typed(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": format!("{name}-request"), "namespace": ns, "labels": labels(&name),
                     "ownerReferences": owner(task)},
        "data": {"request.json": text},
    }))
}

/// The name of party `party`'s pod in `attempt`.
pub fn pod_name(task: &str, party: &str, attempt: i32) -> String {
    format!("{task}-{}-{attempt}", dns_label(party))
}

/// `spec.runtime` with the party's own overrides on top.
pub(crate) fn runtime_for(task: &SecretFlowTask, p: &PartySpec) -> RuntimeSpec {
    match &p.runtime {
        Some(o) => task.spec.runtime.overlay(o),
        None => task.spec.runtime.clone(),
    }
}

/// What every party pod of a task is wired with beyond its spec: how the link is secured, and which local
/// party writes the task's result into the status.
#[derive(Clone, Debug)]
pub struct Wiring {
    /// The link's TLS.
    pub tls: LinkTls,
    /// The party that writes `status.result`: the one the task names as receiving it if it runs here, else the
    /// first local party (with the receiver in another cluster, this cluster's task still gets a result).
    pub result_holder: String,
}

impl Wiring {
    /// The wiring of `task`, whose validated request is `request`.
    pub fn of(task: &SecretFlowTask, request: &Value) -> Result<Wiring, ValidationError> {
        let local: Vec<&str> =
            task.spec.parties.iter().filter(|p| p.external.is_none()).map(|p| p.name.as_str()).collect();
        let named = party_runtime::report::result_holder(request).filter(|h| local.contains(&h.as_str()));
        let result_holder = named.or_else(|| local.first().map(|p| p.to_string())).unwrap_or_default();
        Ok(Wiring { tls: certs::link_tls(task)?, result_holder })
    }
}

/// Party `p`'s pod for `attempt`.
pub fn pod(task: &SecretFlowTask, p: &PartySpec, attempt: i32, defaults: &Defaults, wiring: &Wiring) -> Pod {
    let (name, ns) = name_ns(task);
    let rt = runtime_for(task, p);
    let data_root = rt.data_root.clone().unwrap_or_else(|| defaults.data_root.clone());
    let mut pod_labels = labels(&name);
    pod_labels.insert(PARTY_LABEL.into(), dns_label(&p.name));
    pod_labels.insert(ATTEMPT_LABEL.into(), attempt.to_string());
    let mut args: Vec<String> = vec!["run".into(), REQUEST_PATH.into(), "--party".into(), p.name.clone(), "-q".into()];
    args.extend(["--link-timeout".into(), rt.link_timeout_seconds.unwrap_or(60).to_string()]);
    let mut env = vec![
        json!({"name": "SF_DATA_ROOTS", "value": data_root}),
        json!({"name": "SF_TASK_NAME", "value": name}),
        json!({"name": "SF_TASK_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}),
        json!({"name": "SF_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}),
        json!({"name": "SF_PARTY", "value": p.name}),
        json!({"name": "SF_ATTEMPT", "value": attempt.to_string()}),
        json!({"name": "SF_RESULT_HOLDER", "value": wiring.result_holder}),
    ];
    if let Some(t) = rt.threads {
        env.push(json!({"name": "RAYON_NUM_THREADS", "value": t.to_string()}));
        env.push(json!({"name": "POLARS_MAX_THREADS", "value": t.to_string()}));
    }
    let mut volumes = vec![json!({"name": "request", "configMap": {"name": format!("{name}-request")}})];
    let mut mounts = vec![json!({"name": "request", "mountPath": "/etc/secretflow", "readOnly": true})];
    if let Some(dv) = &rt.data_volume {
        let source = match (&dv.claim_name, &dv.host_path) {
            (Some(claim), _) => json!({"persistentVolumeClaim": {"claimName": claim}}),
            (None, Some(path)) => json!({"hostPath": {"path": path, "type": "DirectoryOrCreate"}}),
            (None, None) => json!({"emptyDir": {}}),
        };
        let mut v = json!({"name": "data"});
        if let (Some(obj), Value::Object(src)) = (v.as_object_mut(), source) {
            obj.extend(src);
        }
        volumes.push(v);
        mounts.push(json!({"name": "data", "mountPath": data_root, "readOnly": dv.read_only.unwrap_or(false)}));
    }
    if let Some(volume) = certs::volume(task, &p.name, &wiring.tls) {
        volumes.push(volume);
        mounts.push(json!({"name": "link-tls", "mountPath": TLS_DIR, "readOnly": true}));
        for (flag, file) in [("--tls-cert", "tls.crt"), ("--tls-key", "tls.key"), ("--tls-ca", "ca.crt")] {
            args.extend([flag.into(), format!("{TLS_DIR}/{file}")]);
        }
    }
    let mut container = json!({
        "name": "party-runtime",
        "image": rt.image.clone().unwrap_or_else(|| defaults.image.clone()),
        "args": args,
        "env": env,
        "ports": [{"name": "link", "containerPort": LINK_PORT}, {"name": "spu", "containerPort": SPU_PORT}],
        "volumeMounts": mounts,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {"runAsNonRoot": true, "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                            "capabilities": {"drop": ["ALL"]}},
    });
    if let Some(r) = &rt.resources {
        container["resources"] = serde_json::to_value(r).unwrap_or(Value::Null);
    }
    let mut spec = json!({
        "restartPolicy": "Never",
        "hostname": dns_label(&p.name),
        "subdomain": name,
        "serviceAccountName": defaults.service_account,
        "containers": [container],
        "volumes": volumes,
    });
    if let Some(sel) = &rt.node_selector {
        spec["nodeSelector"] = json!(sel);
    }
    typed(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": pod_name(&name, &p.name, attempt), "namespace": ns, "labels": pod_labels,
                     "ownerReferences": owner(task)},
        "spec": spec,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::tests::task;

    #[test]
    fn request_wires_every_party_and_the_spu() {
        let t = task(json!({"spu": {"field": "FM64"}}));
        let req = request(&t).unwrap();
        assert_eq!(req["sf_init_config"]["parties"]["alice"]["address"], "alice.psi-1.ns.svc:9400");
        assert_eq!(req["sf_init_config"]["parties"]["alice"]["listen_addr"], "0.0.0.0:9400");
        assert_eq!(req["sf_init_config"]["parties"]["bob"]["address"], "bob.psi-1.ns.svc:9400");
        assert_eq!(req["spu_config"]["cluster_def"]["nodes"][1]["address"], "bob.psi-1.ns.svc:9401");
        assert_eq!(req["spu_config"]["cluster_def"]["runtime_config"]["field"], "FM64");
        assert_eq!(req["task_config"]["task_type"], "psi");
    }

    #[test]
    fn the_result_holder_is_the_receiver_when_it_runs_here_else_the_first_local_party() {
        let t = task(json!({}));
        assert_eq!(Wiring::of(&t, &request(&t).unwrap()).unwrap().result_holder, "alice");
        let t =
            task(json!({"parties": [{"name": "alice", "external": {"address": "a.example:9400"}}, {"name": "bob"}]}));
        assert_eq!(Wiring::of(&t, &request(&t).unwrap()).unwrap().result_holder, "bob");
    }

    #[test]
    fn external_parties_are_reached_at_their_address() {
        let t = task(
            json!({"parties": [{"name": "alice"}, {"name": "bob", "external": {"address": "bank.example:9400"}}]}),
        );
        let req = request(&t).unwrap();
        assert_eq!(req["sf_init_config"]["parties"]["bob"], json!({"address": "bank.example:9400"}));
    }

    #[test]
    fn pods_carry_labels_owner_volumes_and_overrides() {
        let t = task(json!({
            "runtime": {"image": "img:1", "dataVolume": {"claimName": "data"}, "threads": 4, "tlsSecret": "link-tls"},
            "parties": [{"name": "alice", "runtime": {"image": "img:alice", "nodeSelector": {"zone": "a"}}}, {"name": "bob"}]
        }));
        let wiring = Wiring::of(&t, &request(&t).unwrap()).unwrap();
        let p = pod(&t, &t.spec.parties[0], 2, &Defaults::default(), &wiring);
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["metadata"]["name"], "psi-1-alice-2");
        assert_eq!(v["metadata"]["labels"][ATTEMPT_LABEL], "2");
        assert_eq!(v["metadata"]["ownerReferences"][0]["kind"], "SecretFlowTask");
        assert_eq!(v["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(v["spec"]["restartPolicy"], "Never");
        assert_eq!((v["spec"]["hostname"].as_str(), v["spec"]["subdomain"].as_str()), (Some("alice"), Some("psi-1")));
        assert_eq!(v["spec"]["nodeSelector"]["zone"], "a");
        let c = &v["spec"]["containers"][0];
        assert_eq!(c["image"], "img:alice");
        let args: Vec<&str> = c["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
        assert_eq!(&args[..4], ["run", REQUEST_PATH, "--party", "alice"]);
        assert!(args.contains(&"--tls-ca"));
        let env = c["env"].as_array().unwrap();
        assert!(env.contains(&json!({"name": "SF_DATA_ROOTS", "value": "/app/data"})));
        assert!(env.contains(&json!({"name": "RAYON_NUM_THREADS", "value": "4"})));
        assert_eq!(v["spec"]["volumes"][1]["persistentVolumeClaim"]["claimName"], "data");
    }

    #[test]
    fn service_is_headless_and_selects_the_task() {
        let v = serde_json::to_value(service(&task(json!({})))).unwrap();
        assert_eq!(v["spec"]["clusterIP"], "None");
        assert_eq!(v["spec"]["selector"][TASK_LABEL], "psi-1");
    }

    #[test]
    fn party_names_become_dns_labels() {
        assert_eq!(dns_label("Alice_Bank"), "alice-bank");
        assert_eq!(dns_label("__"), "party");
        let t = task(json!({"parties": [{"name": "a_b"}, {"name": "a-b"}]}));
        assert!(request(&t).unwrap_err().message.contains("same DNS name"));
    }
}
