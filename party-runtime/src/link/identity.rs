//! Which party a TLS connection speaks for. With mutual TLS a peer's certificate must name the party its
//! messages claim to come from (a DNS name among its subject alternative names equal to the party name), so a
//! certificate the same CA issued to someone else cannot speak for a party, and a party dials a peer only if
//! the peer's certificate names that peer.

use std::sync::Arc;

use rustls_pki_types::{CertificateDer, ServerName};
use tonic::Status;

/// A connection's client certificate chain, when it came over mutual TLS.
pub type Certs = Option<Arc<Vec<CertificateDer<'static>>>>;

/// Accept `from` on a connection whose client certificates are `certs` (at party `me`): its end-entity
/// certificate must name `from`. A refusal names both.
pub fn check(me: &str, certs: &Certs, from: &str) -> Result<(), Status> {
    let leaf = certs.as_ref().and_then(|c| c.first()).ok_or_else(|| {
        Status::unauthenticated(format!("party {me}: a connection claiming to be `{from}` presented no certificate"))
    })?;
    let cert = webpki::EndEntityCert::try_from(leaf).map_err(|e| {
        Status::unauthenticated(format!("party {me}: the certificate of a connection claiming to be `{from}`: {e}"))
    })?;
    if let Ok(name) = ServerName::try_from(from)
        && cert.verify_is_valid_for_subject_name(&name).is_ok()
    {
        return Ok(());
    }
    let names: Vec<&str> = cert.valid_dns_names().collect();
    Err(Status::permission_denied(format!(
        "party {me}: a connection claims to be `{from}` but its certificate names {} (each party's certificate \
         must name the party)",
        if names.is_empty() { "no DNS name".to_string() } else { names.join(", ") }
    )))
}

/// The name `peer`'s server certificate must carry when this party dials it: the party name.
pub fn expected(peer: &str) -> Result<String, String> {
    ServerName::try_from(peer)
        .map(|_| peer.to_string())
        .map_err(|_| format!("party name `{peer}` is not a DNS name, which a certificate could carry"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certs(names: &[&str]) -> Certs {
        let key = rcgen::KeyPair::generate().expect("key");
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let cert = rcgen::CertificateParams::new(names).expect("params").self_signed(&key).expect("cert");
        Some(Arc::new(vec![cert.der().clone()]))
    }

    #[test]
    fn a_certificate_speaks_only_for_the_party_it_names() {
        assert!(check("alice", &certs(&["bob", "bob.ns.svc"]), "bob").is_ok());
        let err = check("alice", &certs(&["mallory"]), "bob").expect_err("another party's certificate");
        assert_eq!(err.code(), tonic::Code::PermissionDenied);
        assert!(err.message().contains("`bob`") && err.message().contains("mallory"), "{}", err.message());
        assert!(check("alice", &None, "bob").is_err(), "no certificate");
        assert!(expected("bob").is_ok());
    }
}
