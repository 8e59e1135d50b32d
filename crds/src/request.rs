//! The Worker-API request (spec "通用任务结构"): the raw serde form, which round-trips the JSON, and the
//! validated form a runtime executes.
//!
//! `sf_init_config` comes in three shapes: a party list with `"address": "local"` (all parties in one
//! process), a party map with addresses (cluster mode, one party per process), and a party list with a
//! `ray://` address. There is no Ray here: Ray mode runs like local mode, and on Kubernetes `num_cpus` maps to
//! pod CPU requests and `omp_num_threads` to the thread count.

use std::fmt;

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::error::ValidationError;
use crate::parse::from_value;
use crate::tasks::TaskConfig;

/// A Worker-API request as it arrives (Celery `args[0]`, a request file, or a CR's spec).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WorkerRequest {
    /// The DAG this execution belongs to.
    pub task_id: String,
    /// The DAG node.
    pub subtask_id: String,
    /// This execution; idempotency key.
    pub execution_id: String,
    /// Who takes part and how they reach each other.
    pub sf_init_config: SfInitConfig,
    /// The MPC device, required by tasks that compute on secret shares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spu_config: Option<SpuConfig>,
    /// The task; `task_type` selects its typed configuration.
    pub task_config: Value,
}

/// `sf_init_config`, in any of its three shapes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SfInitConfig {
    /// A list of names (local and Ray mode) or a map of name to addresses (cluster mode).
    pub parties: Parties,
    /// `"local"`, a `ray://` address, or (cluster mode, optional) the Ray address, which is ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The party this process runs (cluster mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_party: Option<String>,
    /// Ray mode: CPUs to use (pod CPU request on Kubernetes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_cpus: Option<u32>,
    /// Ray mode: accepted and ignored (logs always go to the runtime's stderr).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_to_driver: Option<bool>,
    /// Ray mode: worker thread count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub omp_num_threads: Option<u32>,
}

/// The `parties` field: names, or names with addresses, in the order given.
#[derive(Clone, Debug, PartialEq)]
pub enum Parties {
    /// `["alice", "bob"]`.
    List(Vec<String>),
    /// `{"alice": {"address": ..., "listen_addr": ...}, ...}`, order kept.
    Map(Vec<(String, PartyAddress)>),
}

/// A cluster-mode party entry.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PartyAddress {
    /// Where the other parties reach this party (`host:port`).
    pub address: String,
    /// Where this party listens; defaults to `0.0.0.0` on the port of `address`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_addr: Option<String>,
}

impl Serialize for Parties {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Parties::List(names) => {
                let mut seq = s.serialize_seq(Some(names.len()))?;
                for n in names {
                    seq.serialize_element(n)?;
                }
                seq.end()
            }
            Parties::Map(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (n, a) in entries {
                    map.serialize_entry(n, a)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Parties {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct PartiesVisitor;
        impl<'de> Visitor<'de> for PartiesVisitor {
            type Value = Parties;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of party names or a map of party name to {address, listen_addr}")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Parties, A::Error> {
                let mut names = Vec::new();
                while let Some(n) = seq.next_element::<String>()? {
                    names.push(n);
                }
                Ok(Parties::List(names))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Parties, A::Error> {
                let mut entries: Vec<(String, PartyAddress)> = Vec::new();
                while let Some((n, a)) = map.next_entry::<String, PartyAddress>()? {
                    if entries.iter().any(|(m, _)| *m == n) {
                        return Err(de::Error::custom(format!("party `{n}` is listed twice")));
                    }
                    entries.push((n, a));
                }
                Ok(Parties::Map(entries))
            }
        }
        d.deserialize_any(PartiesVisitor)
    }
}

impl Parties {
    /// The party names, in order.
    pub fn names(&self) -> Vec<String> {
        match self {
            Parties::List(n) => n.clone(),
            Parties::Map(e) => e.iter().map(|(n, _)| n.clone()).collect(),
        }
    }
}

/// How the parties of a request are run.
#[derive(Clone, Debug, PartialEq)]
pub enum ClusterMode {
    /// Every party in this process, over the in-memory link.
    Local,
    /// A `ray://` address: run like local mode (there is no Ray here).
    Ray {
        /// The Ray head address as given.
        address: String,
        /// CPUs to use.
        num_cpus: Option<u32>,
        /// Worker threads.
        omp_num_threads: Option<u32>,
    },
    /// One party per process; `self_party` may also come from the command line.
    Cluster {
        /// The party this process runs, if the request names it.
        self_party: Option<String>,
        /// Every party's link endpoints, in request order.
        endpoints: Vec<PartyEndpoint>,
    },
}

/// Where one party listens and is reached (cluster mode).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartyEndpoint {
    /// The party name.
    pub party: String,
    /// `host:port` the others connect to.
    pub address: String,
    /// `host:port` this party binds.
    pub listen_addr: String,
}

/// `spu_config`: the MPC device.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SpuConfig {
    /// Nodes and runtime options.
    pub cluster_def: ClusterDef,
}

/// `spu_config.cluster_def`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClusterDef {
    /// One node per party taking part in MPC.
    pub nodes: Vec<SpuNode>,
    /// Protocol and ring.
    pub runtime_config: RuntimeConfig,
}

/// One SPU node.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SpuNode {
    /// The party running this node.
    pub party: String,
    /// `host:port` of the node.
    pub address: String,
}

/// `spu_config.cluster_def.runtime_config`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// The MPC protocol.
    pub protocol: Protocol,
    /// The ring.
    pub field: Field,
    /// Fixed-point fraction bits (SPU's `fxp_fraction_bits`); defaults to 18 on FM64 and 26 on FM128.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fxp_fraction_bits: Option<u32>,
    /// Where multiplication correlations come from (`ot`, the default, or the insecure `trusted_first_party`).
    #[serde(default, skip_serializing_if = "Beaver::is_default")]
    pub beaver: Beaver,
}

/// The source of the correlated randomness behind secure products.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Beaver {
    /// Oblivious transfer between the two parties: no single party can decrypt anything (the default).
    #[default]
    Ot,
    /// SPU's "trusted first party": the first node draws every triple and can therefore decrypt every
    /// intermediate value. Insecure; only for like-for-like comparison with SPU's default, and labelled so.
    TrustedFirstParty,
}

impl Beaver {
    /// Whether this is the default (`ot`).
    pub fn is_default(&self) -> bool {
        *self == Beaver::Ot
    }
}

/// MPC protocols the Worker API names. SEMI2K and CHEETAH run on the two-party device, ABY3 on the three-party one.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[allow(clippy::upper_case_acronyms)]
pub enum Protocol {
    /// Semi-honest additive sharing over Z_2^k.
    SEMI2K,
    /// Three-party replicated sharing (semi-honest, honest majority: no two nodes collude).
    ABY3,
    /// Two-party with lattice (RLWE) linear layers and products and OT comparisons: the device's secure
    /// backend, which has no trusted dealer.
    CHEETAH,
}

/// The ring `Z_2^k`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum Field {
    /// Z_2^64.
    FM64,
    /// Z_2^128.
    FM128,
}

/// The validated SPU device.
#[derive(Clone, Debug, PartialEq)]
pub struct SpuRuntime {
    /// The protocol (SEMI2K or CHEETAH once validated for a task that needs it).
    pub protocol: Protocol,
    /// The ring.
    pub field: Field,
    /// Fixed-point fraction bits.
    pub fraction_bits: u32,
    /// `(party, address)` per node, in order.
    pub nodes: Vec<(String, String)>,
    /// Where products' correlated randomness comes from.
    pub beaver: Beaver,
}

impl SpuRuntime {
    /// Whether the device runs with the insecure trusted first party (node 0 deals every correlation).
    pub fn insecure(&self) -> bool {
        self.beaver == Beaver::TrustedFirstParty
    }
}

/// A request that passed validation.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidRequest {
    /// The DAG id.
    pub task_id: String,
    /// The DAG node id.
    pub subtask_id: String,
    /// This execution's id.
    pub execution_id: String,
    /// Every party, in request order.
    pub parties: Vec<String>,
    /// How to run them.
    pub mode: ClusterMode,
    /// The SPU device, when the request configures one.
    pub spu: Option<SpuRuntime>,
    /// The typed task.
    pub task: TaskConfig,
}

impl WorkerRequest {
    /// Read a request from JSON text; a syntax error or a field of the wrong shape is a `ValueError`.
    pub fn parse(json: &str) -> Result<Self, ValidationError> {
        let value: Value = serde_json::from_str(json)
            .map_err(|e| ValidationError::new("", format!("the request is not valid JSON: {e}")))?;
        Self::from_json(&value)
    }

    /// Read a request from a JSON value.
    pub fn from_json(value: &Value) -> Result<Self, ValidationError> {
        if !value.is_object() {
            return Err(ValidationError::new("", "the request must be a JSON object"));
        }
        from_value(value, "")
    }

    /// Check everything the contract demands and build the typed request.
    pub fn validate(&self) -> Result<ValidRequest, ValidationError> {
        for (field, v) in
            [("task_id", &self.task_id), ("subtask_id", &self.subtask_id), ("execution_id", &self.execution_id)]
        {
            if v.trim().is_empty() {
                return Err(ValidationError::new(field, "must be a non-empty string"));
            }
        }
        let (parties, mode) = self.sf_init_config.validate()?;
        let task = TaskConfig::from_json(&self.task_config)?;
        task.validate(&parties).map_err(|e| e.under("task_config"))?;
        let needs_spu = task.task_type().needs_spu();
        let spu = match &self.spu_config {
            Some(c) => Some(c.validate(&parties, needs_spu).map_err(|e| e.under("spu_config"))?),
            None if needs_spu => {
                return Err(ValidationError::new(
                    "spu_config",
                    format!("required for task type `{}`, which computes on secret shares", task.task_type()),
                ));
            }
            None => None,
        };
        let dataless = match &task {
            TaskConfig::SsLr(c) => c.dataless_outputs().collect(),
            TaskConfig::SsXgb(c) => c.dataless_outputs().collect(),
            _ => Vec::new(),
        };
        if let Some(p) =
            dataless.into_iter().find(|p| !spu.as_ref().is_some_and(|s| s.nodes.iter().any(|n| n.0 == **p)))
        {
            return Err(ValidationError::new(
                format!("task_config.model_output.{p}"),
                format!("party `{p}` has no entry in train_data and is not an SPU node, so it holds no model share"),
            ));
        }
        Ok(ValidRequest {
            task_id: self.task_id.clone(),
            subtask_id: self.subtask_id.clone(),
            execution_id: self.execution_id.clone(),
            parties,
            mode,
            spu,
            task,
        })
    }
}

/// Party names become pod and DNS labels: lowercase letters, digits, `_` and `-`, at most 63 characters.
pub fn check_party_name(field: &str, name: &str) -> Result<(), ValidationError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            format!("party name `{name}` must be 1-63 lowercase letters, digits, `_` or `-`, starting alphanumeric"),
        ))
    }
}

/// `host:port` with a numeric port.
fn check_host_port(field: &str, addr: &str) -> Result<u16, ValidationError> {
    let bad = || ValidationError::new(field, format!("expected host:port, got `{addr}`"));
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() {
        return Err(bad());
    }
    port.parse::<u16>().map_err(|_| bad())
}

impl SfInitConfig {
    /// The party names and the execution mode.
    pub fn validate(&self) -> Result<(Vec<String>, ClusterMode), ValidationError> {
        let f = "sf_init_config";
        let names = self.parties.names();
        if names.is_empty() {
            return Err(ValidationError::new(format!("{f}.parties"), "must name at least one party"));
        }
        for (i, n) in names.iter().enumerate() {
            check_party_name(&format!("{f}.parties[{i}]"), n)?;
            if names[..i].contains(n) {
                return Err(ValidationError::new(format!("{f}.parties"), format!("party `{n}` is listed twice")));
            }
        }
        if let Some(sp) = self.self_party.as_ref().filter(|sp| !names.contains(sp)) {
            return Err(ValidationError::new(
                format!("{f}.self_party"),
                format!("`{sp}` is not one of the parties ({})", names.join(", ")),
            ));
        }
        let endpoints = match &self.parties {
            Parties::Map(entries) => Some(endpoints(f, entries)?),
            Parties::List(_) => None,
        };
        let mode = match (endpoints, self.address.as_deref()) {
            (_, Some("local")) => ClusterMode::Local,
            (_, Some(a)) if a.starts_with("ray://") => ClusterMode::Ray {
                address: a.to_string(),
                num_cpus: self.num_cpus,
                omp_num_threads: self.omp_num_threads,
            },
            (Some(endpoints), _) => ClusterMode::Cluster { self_party: self.self_party.clone(), endpoints },
            (None, None) => {
                return Err(ValidationError::new(
                    format!("{f}.address"),
                    "missing: with a list of parties, give \"local\" or a \"ray://host:port\" address",
                ));
            }
            (None, Some(a)) => {
                return Err(ValidationError::new(
                    format!("{f}.address"),
                    format!(
                        "expected \"local\" or a \"ray://host:port\" address with a list of parties \
                         (cluster mode takes a map of parties with their addresses), got `{a}`"
                    ),
                ));
            }
        };
        Ok((names, mode))
    }
}

/// Every cluster-mode entry with its listen address defaulted.
fn endpoints(f: &str, entries: &[(String, PartyAddress)]) -> Result<Vec<PartyEndpoint>, ValidationError> {
    let mut out = Vec::with_capacity(entries.len());
    for (party, a) in entries {
        let port = check_host_port(&format!("{f}.parties.{party}.address"), &a.address)?;
        let listen_addr = match &a.listen_addr {
            Some(l) => {
                check_host_port(&format!("{f}.parties.{party}.listen_addr"), l)?;
                l.clone()
            }
            None => format!("0.0.0.0:{port}"),
        };
        out.push(PartyEndpoint { party: party.clone(), address: a.address.clone(), listen_addr });
    }
    Ok(out)
}

impl SpuConfig {
    /// Check the nodes against the parties; a task that needs the device must ask for SEMI2K or CHEETAH with two
    /// nodes, or ABY3 with three.
    pub fn validate(&self, parties: &[String], needs_spu: bool) -> Result<SpuRuntime, ValidationError> {
        let c = &self.cluster_def;
        if c.nodes.is_empty() {
            return Err(ValidationError::new("cluster_def.nodes", "must list at least one node"));
        }
        let mut nodes = Vec::with_capacity(c.nodes.len());
        for (i, n) in c.nodes.iter().enumerate() {
            let field = format!("cluster_def.nodes[{i}]");
            if !parties.contains(&n.party) {
                return Err(ValidationError::new(
                    format!("{field}.party"),
                    format!("`{}` is not one of the parties ({})", n.party, parties.join(", ")),
                ));
            }
            if nodes.iter().any(|(p, _)| *p == n.party) {
                return Err(ValidationError::new(format!("{field}.party"), format!("`{}` has two nodes", n.party)));
            }
            check_host_port(&format!("{field}.address"), &n.address)?;
            nodes.push((n.party.clone(), n.address.clone()));
        }
        let rc = &c.runtime_config;
        let (default_bits, max_bits) = match rc.field {
            Field::FM64 => (18, 30),
            Field::FM128 => (26, 62),
        };
        let fraction_bits = rc.fxp_fraction_bits.unwrap_or(default_bits);
        if fraction_bits == 0 || fraction_bits > max_bits {
            return Err(ValidationError::new(
                "cluster_def.runtime_config.fxp_fraction_bits",
                format!("expected 1..={max_bits} for {:?}, got {fraction_bits}", rc.field),
            ));
        }
        if needs_spu {
            let want = if rc.protocol == Protocol::ABY3 { 3 } else { 2 };
            if nodes.len() != want {
                return Err(ValidationError::new(
                    "cluster_def.nodes",
                    format!("{:?} runs between exactly {want} parties, got {} nodes", rc.protocol, nodes.len()),
                ));
            }
            if rc.protocol != Protocol::SEMI2K && rc.beaver == Beaver::TrustedFirstParty {
                return Err(ValidationError::new(
                    "cluster_def.runtime_config.beaver",
                    format!("{:?} has no trusted dealer; trusted_first_party is a SEMI2K option", rc.protocol),
                ));
            }
        }
        Ok(SpuRuntime { protocol: rc.protocol, field: rc.field, fraction_bits, nodes, beaver: rc.beaver })
    }
}
