//! A Worker-API request as a `SecretFlowTask` spec and a spec as the request its party pods run, in one typed
//! place: the bridge's Kubernetes executor writes [`spec_for_request`], the operator hands each pod
//! [`request_for_spec`]. The two agree on ids, parties, `task_config` and the whole SPU runtime configuration
//! (protocol, field, fraction bits, triple source); a test runs every example request through both.

use crate::crd::{PartySpec, RuntimeSpec, SecretFlowTaskSpec, SpuSpec};
use crate::error::ValidationError;
use crate::request::{
    ClusterDef, Field, Parties, PartyAddress, Protocol, RuntimeConfig, SfInitConfig, SpuConfig, SpuNode, WorkerRequest,
};

/// The spec that runs `req` on Kubernetes: its ids and `task_config` as given, every party local (one pod
/// each, in request order), the SPU runtime configuration typed, `runtime` as the pods' settings.
pub fn spec_for_request(req: &WorkerRequest, runtime: RuntimeSpec) -> SecretFlowTaskSpec {
    let spu = req.spu_config.as_ref().map(|s| {
        let rc = &s.cluster_def.runtime_config;
        SpuSpec {
            protocol: Some(rc.protocol),
            field: Some(rc.field),
            fxp_fraction_bits: rc.fxp_fraction_bits,
            beaver: (!rc.beaver.is_default()).then_some(rc.beaver),
        }
    });
    SecretFlowTaskSpec {
        task_id: req.task_id.clone(),
        subtask_id: req.subtask_id.clone(),
        execution_id: req.execution_id.clone(),
        parties: req
            .sf_init_config
            .parties
            .names()
            .into_iter()
            .map(|name| PartySpec { name, external: None, runtime: None })
            .collect(),
        spu,
        runtime,
        task_config: req.task_config.clone(),
        active_deadline_seconds: None,
        backoff_limit: None,
        ttl_seconds_after_finished: None,
    }
}

/// Where the other parties reach one party: its link and SPU addresses (`host:port`).
#[derive(Clone, Debug, PartialEq)]
pub struct Endpoints {
    /// The link address.
    pub link: String,
    /// The SPU node address.
    pub spu: String,
}

/// The cluster-mode request every pod of `spec` runs (`self_party` is given to each pod apart): every party at
/// its [`Endpoints`], local ones listening on `listen`, one SPU node per party in order, the SPU defaults
/// filled in (SEMI2K, FM128). Validated as `party-runtime` will validate it.
pub fn request_for_spec(
    spec: &SecretFlowTaskSpec,
    endpoints: impl Fn(&PartySpec) -> Endpoints,
    listen: &str,
) -> Result<WorkerRequest, ValidationError> {
    let addresses: Vec<(String, Endpoints)> = spec.parties.iter().map(|p| (p.name.clone(), endpoints(p))).collect();
    let parties = spec
        .parties
        .iter()
        .zip(&addresses)
        .map(|(p, (name, e))| {
            let listen_addr = p.external.is_none().then(|| listen.to_string());
            (name.clone(), PartyAddress { address: e.link.clone(), listen_addr })
        })
        .collect();
    let spu_config = spec.spu.as_ref().map(|spu| SpuConfig {
        cluster_def: ClusterDef {
            nodes: addresses
                .iter()
                .map(|(party, e)| SpuNode { party: party.clone(), address: e.spu.clone() })
                .collect(),
            runtime_config: RuntimeConfig {
                protocol: spu.protocol.unwrap_or(Protocol::SEMI2K),
                field: spu.field.unwrap_or(Field::FM128),
                fxp_fraction_bits: spu.fxp_fraction_bits,
                beaver: spu.beaver.unwrap_or_default(),
            },
        },
    });
    let req = WorkerRequest {
        task_id: spec.task_id.clone(),
        subtask_id: spec.subtask_id.clone(),
        execution_id: spec.execution_id.clone(),
        sf_init_config: SfInitConfig {
            parties: Parties::Map(parties),
            address: None,
            self_party: None,
            num_cpus: None,
            log_to_driver: None,
            omp_num_threads: None,
        },
        spu_config,
        task_config: spec.task_config.clone(),
    };
    req.validate()?;
    Ok(req)
}
