//! What SS-XGB leaves on disk: each party's share of the ensemble. A party's file holds the splits it owns in
//! full (feature and threshold), only the owner of every other split, and its additive shares of the leaf
//! weights; the model predicts only with every party's file (the `ss_xgb` prediction of the same task).

use secretflow_crds::request::SpuRuntime;
use secretflow_crds::tasks::learning::{Objective, SsXgbConfig};
use serde::Serialize;

use crate::ml::ss_xgb::Trained;
use crate::mpc::{Kernels, Ring};

/// One internal node.
#[derive(Serialize)]
pub struct SplitEntry {
    /// The party whose feature splits this node; `null` where the node does not split (`gamma`,
    /// `min_child_weight`), and every row goes left.
    pub owner: Option<String>,
    /// The feature, at its owner only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feature: Option<String>,
    /// Rows with the feature at most this go left, at the owner only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
}

/// One tree: splits in level order (node `j` of level `d` is entry `2^d - 1 + j`, its children `2j`, `2j+1`
/// of the next level, left first), then the leaf weights' shares.
#[derive(Serialize)]
pub struct TreeEntry {
    /// The `2^max_depth - 1` splits.
    pub splits: Vec<SplitEntry>,
    /// This party's additive shares of the `2^max_depth` leaf weights mod `2^k`, as decimal strings.
    pub leaf_shares: Vec<String>,
    /// With three nodes (ABY3, replicated sharing), the party's second component of each leaf weight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaf_shares_next: Option<Vec<String>>,
}

/// A party's share of an SS-XGB model.
#[derive(Serialize)]
pub struct XgbModel {
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
    /// Fixed-point fraction bits of the leaf shares.
    pub fraction_bits: u32,
    /// `logistic` or `linear`.
    pub objective: Objective,
    /// `base_score` and the margin it starts from.
    pub base_score: f64,
    pub base_margin: f64,
    /// Tree depth.
    pub max_depth: u32,
    /// The label column.
    pub label: String,
    /// Every feature and the party holding it.
    pub features: Vec<(String, String)>,
    /// The trees in boosting order.
    pub trees: Vec<TreeEntry>,
}

impl XgbModel {
    /// This party's file for `trained`; `own` names this party's columns in order.
    pub fn new<R: Ring, D: Kernels<R>>(
        mpc: &D,
        spu: &SpuRuntime,
        c: &SsXgbConfig,
        columns: &[(String, String)],
        own: (&[String], &[Vec<f64>]),
        trained: &Trained<R>,
    ) -> XgbModel {
        let trees = trained
            .trees
            .iter()
            .map(|t| TreeEntry {
                splits: t
                    .splits
                    .iter()
                    .map(|s| SplitEntry {
                        owner: s.owner.map(|o| mpc.party(o).to_string()),
                        feature: s.local.map(|(col, _)| own.0[col].clone()),
                        threshold: s.local.map(|(col, k)| own.1[col][k]),
                    })
                    .collect(),
                leaf_shares: decimal(t.leaves.part(0)),
                leaf_shares_next: (t.leaves.holding().held > 1).then(|| decimal(t.leaves.part(1))),
            })
            .collect();
        XgbModel {
            format: "secretflow-operator/ss_xgb-share",
            version: 1,
            party: mpc.party(mpc.me()).to_string(),
            nodes: (0..mpc.nodes()).map(|i| mpc.party(i).to_string()).collect(),
            field: format!("{:?}", spu.field),
            fraction_bits: mpc.frac(),
            objective: c.params.objective,
            base_score: c.params.base_score,
            base_margin: trained.base_margin,
            max_depth: c.params.max_depth,
            label: c.label.clone(),
            features: columns.to_vec(),
            trees,
        }
    }
}

/// Ring elements as decimal strings (u128 does not fit JSON numbers).
fn decimal<R: Ring>(v: &[R]) -> Vec<String> {
    v.iter().map(|v| v.to_u128().to_string()).collect()
}
