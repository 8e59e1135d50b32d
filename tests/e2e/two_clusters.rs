//! One task between two organisations that share no cluster (DESIGN.md "Kubernetes"): alice's party runs in
//! one stand-in cluster with its own operator, bob's in another, and each side's SecretFlowTask names the
//! other party `external`. The link is mutual TLS across two CAs: each side's TLS secret holds its own
//! party's certificate, from its own CA, and a bundle of both CAs.

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use serde_json::{Value, json};

use secretflow_e2e::k8s::{Cluster, kubelet::Network};

use crate::operator::{data_root, example, local_result, slow_psi, task_for};

/// One organisation's party: its name, the namespace its task runs in, and its CA with the party's
/// certificate and key (PEM).
struct Org {
    party: &'static str,
    ns: &'static str,
    ca: String,
    cert: String,
    key: String,
}

impl Org {
    fn new(party: &'static str, ns: &'static str) -> Org {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, format!("{ns} CA"));
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut leaf = CertificateParams::new(vec![party.to_string()]).unwrap();
        leaf.distinguished_name.push(DnType::CommonName, party);
        let cert = leaf.signed_by(&key, &*ca).unwrap();
        Org { party, ns, ca: ca.pem(), cert: cert.pem(), key: key.serialize_pem() }
    }

    /// Where the other side reaches this party of task `task` (the pod's DNS name, which the shared network
    /// of the two stand-in clusters resolves).
    fn address(&self, task: &str) -> String {
        format!("{}.{task}.{}.svc:9400", self.party, self.ns)
    }

    /// The `link-tls` Secret of this side: its own certificate and key, and both CAs.
    fn secret(&self, other: &Org) -> Value {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "link-tls", "namespace": self.ns},
               "data": {"tls.crt": b64(&self.cert), "tls.key": b64(&self.key),
                        "ca.crt": b64(&format!("{}{}", self.ca, other.ca))}})
    }

    /// This side's task `task` for `req`: its own party local, the other's external.
    fn task(&self, other: &Org, task: &str, req: &Value, root: &Path) -> Value {
        let mut t = task_for(task, req, root, json!({}));
        let parties: Vec<Value> = ["alice", "bob"]
            .iter()
            .map(|p| match *p == self.party {
                true => json!({"name": p}),
                false => json!({"name": p, "external": {"address": other.address(task)}}),
            })
            .collect();
        t["spec"]["parties"] = parties.into();
        t["spec"]["runtime"]["tlsSecret"] = "link-tls".into();
        t
    }
}

/// Both clusters on one network, each with its side's TLS secret.
async fn two_clusters(a: &Org, b: &Org) -> (Cluster, Cluster) {
    let net = Network::default();
    let (ca, cb) = (Cluster::start_on(net.clone()).await, Cluster::start_on(net).await);
    ca.store.create("api/v1/secrets", a.ns, a.secret(b)).unwrap();
    cb.store.create("api/v1/secrets", b.ns, b.secret(a)).unwrap();
    (ca, cb)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_across_two_clusters_succeeds_on_both_sides_over_mutual_tls_with_two_cas() {
    let (a, b) = (Org::new("alice", "org-a"), Org::new("bob", "org-b"));
    let (ca, cb) = two_clusters(&a, &b).await;
    let (root_a, root_b) = (data_root(), data_root());
    let req = example("psi");
    ca.apply(a.ns, a.task(&b, "joint", &req, root_a.path()));
    cb.apply(b.ns, b.task(&a, "joint", &req, root_b.path()));
    let (ta, tb) = tokio::join!(
        ca.wait_done(a.ns, "joint", Duration::from_secs(60)),
        cb.wait_done(b.ns, "joint", Duration::from_secs(60))
    );
    for t in [&ta, &tb] {
        assert_eq!(t["status"]["phase"], "Succeeded", "{}", serde_json::to_string_pretty(&t["status"]).unwrap());
        let link = t["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "LinkTLS").cloned();
        assert_eq!(link.unwrap()["reason"], "UserSecret");
    }
    assert_eq!(ta["status"]["result"]["result"], tb["status"]["result"]["result"], "both sides, one result");
    assert_eq!(ta["status"]["result"]["result"], local_result(&req).await["result"]);
    // Each cluster ran only its own party, over TLS.
    assert!(ca.store.get("api/v1/pods", a.ns, "joint-bob-1").is_none());
    assert!(cb.store.get("api/v1/pods", b.ns, "joint-alice-1").is_none());
    assert!(ca.pod_log("joint-alice-1").contains("link: mutual TLS"));
    assert!(root_a.path().join("examples/out/alice_psi_out.csv").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_pod_on_one_side_fails_the_task_on_both_naming_the_party() {
    let (a, b) = (Org::new("alice", "org-a"), Org::new("bob", "org-b"));
    let (ca, cb) = two_clusters(&a, &b).await;
    let (root_a, root_b) = (data_root(), data_root());
    // The same generated rows on both sides: each party reads its own file from its own data root.
    let req = slow_psi(root_a.path(), 30_000);
    slow_psi(root_b.path(), 30_000);
    ca.apply(a.ns, a.task(&b, "slow", &req, root_a.path()));
    cb.apply(b.ns, b.task(&a, "slow", &req, root_b.path()));
    let running = |t: &Value, p: &str| t["status"]["parties"][p]["phase"] == "Running";
    tokio::join!(
        ca.wait_task(a.ns, "slow", Duration::from_secs(30), |t| running(t, "alice")),
        cb.wait_task(b.ns, "slow", Duration::from_secs(30), |t| running(t, "bob"))
    );
    let pid = cb.processes.pid("slow-bob-1").expect("bob's pod runs");
    std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status().unwrap();
    // The link timeout is 10 s: both sides end well within a minute.
    let (ta, tb) = tokio::join!(
        ca.wait_done(a.ns, "slow", Duration::from_secs(60)),
        cb.wait_done(b.ns, "slow", Duration::from_secs(60))
    );
    let message = |t: &Value| t["status"]["error"]["message"].as_str().unwrap_or("").to_string();
    assert_eq!(tb["status"]["phase"], "Failed");
    assert!(message(&tb).starts_with("party bob failed in attempt 1"), "{}", message(&tb));
    assert_eq!(ta["status"]["phase"], "Failed");
    assert!(message(&ta).starts_with("party alice failed") && message(&ta).contains("bob"), "{}", message(&ta));
}
