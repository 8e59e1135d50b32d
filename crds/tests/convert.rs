//! Request <-> SecretFlowTask spec: every example request (and each with CHEETAH, FM64, fraction bits and the
//! dealer where the device allows them) survives request -> spec -> the pods' request with its ids, parties,
//! task_config and whole SPU runtime configuration, and the pods' request carries the addresses it is given.

use std::path::PathBuf;

use secretflow_crds::convert::{Endpoints, request_for_spec, spec_for_request};
use secretflow_crds::crd::{ExternalParty, RuntimeSpec};
use secretflow_crds::request::{Beaver, Field, Parties, Protocol};
use secretflow_crds::{ClusterMode, WorkerRequest};
use serde_json::{Value, json};

fn examples() -> Vec<(String, Value)> {
    // The manifest folder at run time (a test binary reused from another checkout carries its build path).
    let crate_dir =
        std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), PathBuf::from);
    let dir = crate_dir.join("../examples/requests");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .expect("examples/requests")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            (p.display().to_string(), serde_json::from_str(&std::fs::read_to_string(&p).expect("read")).expect("json"))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 14, "expected every example request, found {}", out.len());
    out
}

/// The SPU runtime variants a two-node request can ask for beyond its own: CHEETAH on FM64 with 20 fraction
/// bits, and SEMI2K with the insecure dealer; a three-node (ABY3) request on FM64.
fn variants(req: &Value) -> Vec<Value> {
    let mut out = vec![req.clone()];
    if req["spu_config"]["cluster_def"]["runtime_config"]["protocol"] == "ABY3" {
        let mut c = req.clone();
        c["spu_config"]["cluster_def"]["runtime_config"]["field"] = json!("FM64");
        out.push(c);
    } else if req["spu_config"].is_object() {
        let mut c = req.clone();
        c["spu_config"]["cluster_def"]["runtime_config"] =
            json!({"protocol": "CHEETAH", "field": "FM64", "fxp_fraction_bits": 20});
        out.push(c);
        let mut d = req.clone();
        d["spu_config"]["cluster_def"]["runtime_config"]["beaver"] = json!("trusted_first_party");
        out.push(d);
    }
    out
}

fn endpoints(p: &secretflow_crds::crd::PartySpec) -> Endpoints {
    Endpoints { link: format!("{}.link:9000", p.name), spu: format!("{}.spu:9001", p.name) }
}

#[test]
fn every_example_request_round_trips_through_a_spec() {
    for (path, raw) in examples() {
        for raw in variants(&raw) {
            let req = WorkerRequest::parse(&raw.to_string()).expect("parse");
            let valid = req.validate().unwrap_or_else(|e| panic!("{path}: {e}"));
            let spec = spec_for_request(&req, RuntimeSpec::default());
            // The spec is what the API server stores: it survives its own JSON.
            let stored: secretflow_crds::crd::SecretFlowTaskSpec =
                serde_json::from_value(serde_json::to_value(&spec).expect("to json")).expect("from json");
            assert_eq!(stored, spec, "{path}");
            let back = request_for_spec(&spec, endpoints, "0.0.0.0:9000").unwrap_or_else(|e| panic!("{path}: {e}"));
            let again = back.validate().unwrap_or_else(|e| panic!("{path}: {e}"));
            assert_eq!(
                (&again.task_id, &again.subtask_id, &again.execution_id),
                (&valid.task_id, &valid.subtask_id, &valid.execution_id)
            );
            assert_eq!(again.parties, valid.parties, "{path}");
            assert_eq!(again.task, valid.task, "{path}");
            assert_eq!(back.task_config, req.task_config, "{path}");
            match (&again.spu, &valid.spu) {
                (Some(a), Some(v)) => {
                    assert_eq!(
                        (a.protocol, a.field, a.fraction_bits, a.beaver),
                        (v.protocol, v.field, v.fraction_bits, v.beaver),
                        "{path}"
                    );
                    let nodes: Vec<&str> = a.nodes.iter().map(|(p, _)| p.as_str()).collect();
                    let want: Vec<&str> = v.nodes.iter().map(|(p, _)| p.as_str()).collect();
                    assert_eq!(nodes, want, "{path}");
                }
                (None, None) => {}
                (a, v) => panic!("{path}: SPU {a:?} came back from {v:?}"),
            }
            // Cluster mode, every party listening, at the addresses given.
            assert!(matches!(again.mode, ClusterMode::Cluster { .. }), "{path}: {:?}", again.mode);
            let Parties::Map(entries) = &back.sf_init_config.parties else { panic!("{path}: parties as a list") };
            for (name, a) in entries {
                assert_eq!(a.address, format!("{name}.link:9000"));
                assert_eq!(a.listen_addr.as_deref(), Some("0.0.0.0:9000"));
            }
        }
    }
}

#[test]
fn the_spec_carries_the_spu_runtime_typed_and_defaults_fill_in() {
    let (_, raw) = examples().into_iter().find(|(p, _)| p.ends_with("ss_lr.json")).expect("ss_lr example");
    let mut raw = raw;
    raw["spu_config"]["cluster_def"]["runtime_config"]["beaver"] = json!("trusted_first_party");
    let spec = spec_for_request(&WorkerRequest::parse(&raw.to_string()).expect("parse"), RuntimeSpec::default());
    let spu = spec.spu.clone().expect("spu");
    assert_eq!(
        (spu.protocol, spu.field, spu.beaver),
        (Some(Protocol::SEMI2K), Some(Field::FM128), Some(Beaver::TrustedFirstParty))
    );
    let v = serde_json::to_value(&spu).expect("json");
    assert_eq!(v, json!({"protocol": "SEMI2K", "field": "FM128", "beaver": "trusted_first_party"}));
    // A spec with only `spu: {}` gets SEMI2K on FM128 with OT; an external party is not told to listen.
    let mut spec = spec;
    spec.spu = Some(Default::default());
    spec.parties[1].external = Some(ExternalParty { address: "bob.example:9000".into(), spu_address: None });
    let req = request_for_spec(&spec, endpoints, "0.0.0.0:9000").expect("request");
    let rc = &req.spu_config.expect("spu").cluster_def.runtime_config;
    assert_eq!((rc.protocol, rc.field, rc.beaver), (Protocol::SEMI2K, Field::FM128, Beaver::Ot));
    let Parties::Map(entries) = &req.sf_init_config.parties else { panic!("parties as a list") };
    assert_eq!(entries[1].1.listen_addr, None);
    // A spec asking for what the device refuses is a ValueError naming the field.
    spec.spu = Some(secretflow_crds::crd::SpuSpec { protocol: Some(Protocol::ABY3), ..Default::default() });
    let err = request_for_spec(&spec, endpoints, "0.0.0.0:9000").expect_err("ABY3 with two parties");
    assert!(err.to_string().contains("cluster_def.nodes") && err.to_string().contains("exactly 3"), "{err}");
}
