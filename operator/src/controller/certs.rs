//! Mutual TLS on the link by default. A task whose parties all run here and that names no TLS secret gets a CA
//! of its own and one certificate per party, issued by the operator into a Secret the task owns (so it goes
//! with the task). Each party pod mounts only its own certificate and key, with the CA. The CA's private key
//! is dropped once the certificates are signed: nothing can issue another certificate the task's parties trust.
//! A user's own secret (`runtime.tlsSecret`, task-wide or per party) wins; a task with `external` parties
//! needs one, since the other side cannot trust a CA made here, and without it the link stays plaintext.

use std::collections::BTreeMap;

use base64::Engine;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use serde_json::{Value, json};

use secretflow_crds::ValidationError;
use secretflow_crds::crd::SecretFlowTask;

use super::children::{dns_label, labels, name_ns, owner, runtime_for, typed};

/// How long issued certificates are valid (from a few minutes before issue, for clock skew).
pub const VALIDITY_DAYS: i64 = 30;

/// Where a pod finds its link certificate, key and CA.
pub const TLS_DIR: &str = "/etc/secretflow/tls";

/// How a task's link is secured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkTls {
    /// Certificates the operator issues into [`secret_name`].
    Issued,
    /// The user's own Secret per local party (`tls.crt`, `tls.key`, `ca.crt`), by party name.
    User(BTreeMap<String, String>),
    /// No certificate: the task has external parties and names no TLS secret.
    Plaintext,
}

/// The Secret holding a task's issued certificates.
pub fn secret_name(task: &str) -> String {
    format!("{task}-link-tls")
}

/// How `task`'s link is secured; a TLS secret on some local parties but not on others is a ValueError
/// naming the first party without one (its pod would speak plaintext to peers that expect TLS).
pub fn link_tls(task: &SecretFlowTask) -> Result<LinkTls, ValidationError> {
    let local: Vec<(usize, &str, Option<String>)> = task
        .spec
        .parties
        .iter()
        .enumerate()
        .filter(|(_, p)| p.external.is_none())
        .map(|(i, p)| (i, p.name.as_str(), runtime_for(task, p).tls_secret))
        .collect();
    let given: BTreeMap<String, String> =
        local.iter().filter_map(|(_, name, s)| Some((name.to_string(), s.clone()?))).collect();
    if given.is_empty() {
        let external = task.spec.parties.iter().any(|p| p.external.is_some());
        return Ok(if external { LinkTls::Plaintext } else { LinkTls::Issued });
    }
    match local.iter().find(|(_, _, s)| s.is_none()) {
        Some((i, name, _)) => Err(ValidationError::new(
            format!("spec.parties[{i}].runtime.tlsSecret"),
            format!(
                "party `{name}` has no TLS secret while {} has one: give every local party one, or none (the \
                 operator then issues certificates)",
                given.keys().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
            ),
        )),
        None => Ok(LinkTls::User(given)),
    }
}

/// The Secret's keys for party `party`'s certificate and key.
fn party_keys(party: &str) -> (String, String) {
    let l = dns_label(party);
    (format!("{l}.crt"), format!("{l}.key"))
}

/// The pod volume with party `party`'s link certificate, key and CA, named `link-tls`, as the files
/// `tls.crt`, `tls.key` and `ca.crt` of [`TLS_DIR`].
pub fn volume(task: &SecretFlowTask, party: &str, tls: &LinkTls) -> Option<Value> {
    let (name, _) = name_ns(task);
    match tls {
        LinkTls::Plaintext => None,
        LinkTls::User(secrets) => {
            let secret = secrets.get(party)?;
            Some(json!({"name": "link-tls", "secret": {"secretName": secret}}))
        }
        LinkTls::Issued => {
            let (crt, key) = party_keys(party);
            Some(json!({"name": "link-tls", "secret": {"secretName": secret_name(&name), "items": [
                {"key": crt, "path": "tls.crt"}, {"key": key, "path": "tls.key"}, {"key": "ca.crt", "path": "ca.crt"},
            ]}}))
        }
    }
}

/// A certificate error as text (issuing fails only on malformed names, which validation has ruled out).
fn cert_error(e: rcgen::Error) -> ValidationError {
    ValidationError::new("spec.parties", format!("cannot issue link certificates: {e}"))
}

/// A fresh CA and a certificate per local party, valid from `now` for [`VALIDITY_DAYS`], in a Secret owned
/// by the task. Each certificate names its party (what a peer checks) and its pod's DNS names, and is both a
/// server and a client certificate (each party pod is both).
pub fn issue(task: &SecretFlowTask, now: Timestamp) -> Result<Secret, ValidationError> {
    let (name, ns) = name_ns(task);
    let at = |secs: i64| time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let (from, until) = (at(now.as_second() - 300), at(now.as_second() + VALIDITY_DAYS * 86_400));
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(cert_error)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.distinguished_name.push(DnType::CommonName, format!("secretflow task {ns}/{name} link CA"));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    (ca_params.not_before, ca_params.not_after) = (from, until);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().map_err(cert_error)?).map_err(cert_error)?;
    let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
    let mut data = serde_json::Map::new();
    data.insert("ca.crt".into(), b64(ca.pem()).into());
    for p in task.spec.parties.iter().filter(|p| p.external.is_none()) {
        let host = format!("{}.{name}.{ns}.svc", dns_label(&p.name));
        let sans = vec![p.name.clone(), host.clone(), format!("{host}.cluster.local")];
        let mut params = CertificateParams::new(sans).map_err(cert_error)?;
        params.distinguished_name.push(DnType::CommonName, p.name.clone());
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        (params.not_before, params.not_after) = (from, until);
        let key = KeyPair::generate().map_err(cert_error)?;
        let cert = params.signed_by(&key, &*ca).map_err(cert_error)?;
        let (crt_key, key_key) = party_keys(&p.name);
        data.insert(crt_key, b64(cert.pem()).into());
        data.insert(key_key, b64(key.serialize_pem()).into());
    }
    Ok(typed(json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": secret_name(&name), "namespace": ns, "labels": labels(&name),
                     "ownerReferences": owner(task)},
        "data": data,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::tests::task;

    fn decoded(secret: &Secret, key: &str) -> Vec<u8> {
        secret.data.as_ref().and_then(|d| d.get(key)).map(|b| b.0.clone()).unwrap_or_default()
    }

    #[test]
    fn the_default_is_operator_issued_and_a_user_secret_wins() {
        assert_eq!(link_tls(&task(json!({}))).unwrap(), LinkTls::Issued);
        let user = task(json!({"runtime": {"tlsSecret": "mine"}}));
        let want = BTreeMap::from([("alice".to_string(), "mine".to_string()), ("bob".into(), "mine".into())]);
        assert_eq!(link_tls(&user).unwrap(), LinkTls::User(want));
        let external =
            task(json!({"parties": [{"name": "alice"}, {"name": "bob", "external": {"address": "b.example:9400"}}]}));
        assert_eq!(link_tls(&external).unwrap(), LinkTls::Plaintext);
        let mixed = task(json!({"parties": [{"name": "alice", "runtime": {"tlsSecret": "a"}}, {"name": "bob"}]}));
        let err = link_tls(&mixed).unwrap_err();
        assert_eq!(err.field, "spec.parties[1].runtime.tlsSecret");
        assert!(err.message.contains("`bob`") && err.message.contains("`alice`"), "{}", err.message);
    }

    #[test]
    fn issued_certificates_name_their_party_and_chain_to_the_task_ca() {
        let t = task(json!({}));
        let now: Timestamp = "2026-12-07T10:00:00Z".parse().unwrap();
        let secret = issue(&t, now).unwrap();
        let v = serde_json::to_value(&secret).unwrap();
        assert_eq!(v["metadata"]["name"], "psi-1-link-tls");
        assert_eq!(v["metadata"]["ownerReferences"][0]["kind"], "SecretFlowTask");
        let keys: Vec<&String> = secret.data.as_ref().unwrap().keys().collect();
        assert_eq!(keys, ["alice.crt", "alice.key", "bob.crt", "bob.key", "ca.crt"], "no CA key is kept");
        let ca_pem = decoded(&secret, "ca.crt");
        let ca_der = rustls_pemfile_der(&ca_pem);
        let anchor = webpki::anchor_from_trusted_cert(&ca_der).unwrap();
        for party in ["alice", "bob"] {
            let der = rustls_pemfile_der(&decoded(&secret, &format!("{party}.crt")));
            let cert = webpki::EndEntityCert::try_from(&der).unwrap();
            let when = rustls_pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                now.as_second() as u64 + 3600,
            ));
            cert.verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                std::slice::from_ref(&anchor),
                &[],
                when,
                webpki::KeyUsage::client_auth(),
                None,
                None,
            )
            .unwrap();
            let name = rustls_pki_types::ServerName::try_from(party).unwrap();
            cert.verify_is_valid_for_subject_name(&name).unwrap();
            let other = rustls_pki_types::ServerName::try_from(if party == "alice" { "bob" } else { "alice" }).unwrap();
            assert!(cert.verify_is_valid_for_subject_name(&other).is_err(), "{party}'s certificate names only it");
            assert!(String::from_utf8(decoded(&secret, &format!("{party}.key"))).unwrap().contains("PRIVATE KEY"));
        }
    }

    /// The DER of the first PEM block.
    fn rustls_pemfile_der(pem: &[u8]) -> rustls_pki_types::CertificateDer<'static> {
        use rustls_pki_types::pem::PemObject;
        rustls_pki_types::CertificateDer::from_pem_slice(pem).unwrap()
    }

    #[test]
    fn each_pod_mounts_only_its_own_key() {
        let t = task(json!({}));
        let v = volume(&t, "bob", &LinkTls::Issued).unwrap();
        assert_eq!(v["secret"]["secretName"], "psi-1-link-tls");
        let keys: Vec<&str> =
            v["secret"]["items"].as_array().unwrap().iter().map(|i| i["key"].as_str().unwrap()).collect();
        assert_eq!(keys, ["bob.crt", "bob.key", "ca.crt"]);
        assert!(volume(&t, "bob", &LinkTls::Plaintext).is_none());
    }
}
