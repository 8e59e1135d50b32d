//! What the learners leave on disk: each party's model share file and the receiver's prediction CSV.

use std::io::Write;
use std::path::{Path, PathBuf};

use secretflow_crds::request::SpuRuntime;
use secretflow_crds::tasks::learning::{RegType, SsLrConfig, Supervised};
use serde::Serialize;

use crate::context::PartyContext;
use crate::data::atomic_write;
use crate::error::{Error, Result};
use crate::mpc::{Kernels, Ring, Share};

/// One weight and who contributed its column.
#[derive(Serialize)]
pub struct Weight {
    /// Feature name, or `_intercept`.
    pub name: String,
    /// The party holding the column (the label party for the intercept).
    pub owner: String,
    /// This party's component of the weight mod `2^k` (component `node` of the sharing), as a decimal string
    /// (u128 does not fit JSON numbers).
    pub share: String,
    /// With three nodes (ABY3, replicated sharing), the party's second component (`node + 1` mod 3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share_next: Option<String>,
}

/// A party's share of an SS-LR model: useless alone; each weight is the sum of its components over the nodes
/// (two nodes: one each; three: each component held by two nodes), mod `2^k`, two's complement,
/// `fraction_bits` fractional bits.
#[derive(Serialize)]
pub struct LrModel {
    /// File format name.
    pub format: &'static str,
    /// File format version.
    pub version: u32,
    /// The party this share belongs to.
    pub party: String,
    /// The SPU nodes, in order.
    pub nodes: Vec<String>,
    /// `FM64` or `FM128`.
    pub field: String,
    /// Fixed-point fraction bits.
    pub fraction_bits: u32,
    /// `logistic` or `linear`.
    pub reg_type: RegType,
    /// The sigmoid approximation used in training.
    pub sig_type: secretflow_crds::tasks::learning::SigType,
    /// The label column.
    pub label: String,
    /// Weights in model order (node 0's columns, node 1's, the intercept last in the label party's block).
    pub weights: Vec<Weight>,
}

impl LrModel {
    /// This party's share of `w` (one shared vector per node block).
    pub fn new<R: Ring, D: Kernels<R>>(
        mpc: &D,
        spu: &SpuRuntime,
        c: &SsLrConfig,
        columns: &[(String, String)],
        w: &[Share<R>],
        label_node: usize,
    ) -> Self {
        let mut weights = Vec::new();
        for (i, block) in w.iter().enumerate() {
            let owner = mpc.party(i).to_string();
            let mut names: Vec<String> = columns.iter().filter(|(_, p)| *p == owner).map(|(c, _)| c.clone()).collect();
            if i == label_node {
                names.push("_intercept".into());
            }
            for (e, name) in names.into_iter().enumerate() {
                let component = |j: usize| (j < block.holding().held).then(|| block.part(j)[e].to_u128().to_string());
                let share = component(0).unwrap_or_default();
                weights.push(Weight { name, owner: owner.clone(), share, share_next: component(1) });
            }
        }
        LrModel {
            format: "secretflow-operator/ss_lr-share",
            version: 1,
            party: mpc.party(mpc.me()).to_string(),
            nodes: (0..mpc.nodes()).map(|i| mpc.party(i).to_string()).collect(),
            field: format!("{:?}", spu.field),
            fraction_bits: mpc.frac(),
            reg_type: c.params.reg_type,
            sig_type: c.params.sig_type,
            label: c.label.clone(),
            weights,
        }
    }
}

/// Resolve this party's model path and, at the prediction receiver, its prediction path (checked early).
pub fn check_outputs<P>(ctx: &PartyContext, c: &Supervised<P>) -> Result<Option<PathBuf>> {
    let me = ctx.party.as_str();
    if c.test_data.is_some() {
        let receiver = c.prediction_receiver.as_deref().unwrap_or(&c.label_party);
        match c.prediction_output.as_ref().and_then(|o| o.get(receiver)) {
            Some(raw) if receiver == me => {
                ctx.data.resolve(me, &format!("task_config.prediction_output.{me}"), raw)?;
            }
            Some(_) => {}
            None => {
                return Err(Error::bad_data(
                    me,
                    "task_config.prediction_output",
                    format!("test_data is given but there is no prediction_output entry for `{receiver}`"),
                ));
            }
        }
    }
    c.model_output.get(me).map(|raw| ctx.data.resolve(me, &format!("task_config.model_output.{me}"), raw)).transpose()
}

/// Write a model share file.
pub fn save<M: Serialize>(me: &str, path: &Path, model: &M) -> Result<()> {
    let text = serde_json::to_vec_pretty(model).map_err(|e| Error::Internal(format!("model encoding: {e}")))?;
    atomic_write(me, path, |f| {
        f.write_all(&text).map_err(|e| Error::Io { party: me.into(), path: path.into(), message: e.to_string() })
    })
}

/// The receiver's CSV: `pred_prob` (the logistic sigmoid of the opened logit) or `pred`, plus the label when
/// the receiver holds it, so `biclassification_eval` / `regression_eval` read it directly.
pub fn write_predictions(
    ctx: &PartyContext,
    raw: &str,
    logits: &[f64],
    reg: RegType,
    label: Option<(&str, &[f64])>,
) -> Result<()> {
    let me = ctx.party.as_str();
    let path = ctx.data.resolve(me, &format!("task_config.prediction_output.{me}"), raw)?;
    let column = match reg {
        RegType::Logistic => "pred_prob",
        RegType::Linear => "pred",
    };
    let mut text = String::with_capacity(logits.len() * 24);
    text.push_str(column);
    if let Some((name, _)) = label {
        text.push(',');
        text.push_str(name);
    }
    text.push('\n');
    for (i, z) in logits.iter().enumerate() {
        let v = match reg {
            RegType::Logistic => 1.0 / (1.0 + (-z).exp()),
            RegType::Linear => *z,
        };
        text.push_str(&v.to_string());
        if let Some((_, y)) = label {
            text.push(',');
            text.push_str(&y[i].to_string());
        }
        text.push('\n');
    }
    atomic_write(me, &path, |f| {
        f.write_all(text.as_bytes()).map_err(|e| Error::Io {
            party: me.into(),
            path: path.clone(),
            message: e.to_string(),
        })
    })
}
