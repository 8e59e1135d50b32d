//! `ss_lr` (spec section 2), the job: check every output path, load the aligned training (and test) blocks,
//! build the MPC device, train with [`crate::ml::ss_lr`], save each party's model share, write the receiver's
//! predictions, and report the metrics. The algorithm and what it reveals are described there.

use secretflow_crds::outputs::ModelResult;
use secretflow_crds::request::{Field, SpuRuntime};
use secretflow_crds::tasks::learning::SsLrConfig;
use serde_json::json;

use super::super::JobOutput;
use super::super::vertical::{self, Spec, Vertical};
use super::model::{self, LrModel};
use crate::context::PartyContext;
use crate::error::{Error, Result};
use crate::ml::phases::Meter;
use crate::ml::ss_lr::{self as algorithm, Block, Features};
use crate::mpc::{Device, Kernels, Ring, Share};

/// Train (and predict) as `ctx.party`.
pub async fn run(ctx: &PartyContext, c: &SsLrConfig) -> Result<JobOutput> {
    let spu = ctx.spu.clone().ok_or_else(|| Error::Internal("ss_lr needs the SPU device".into()))?;
    match spu.field {
        Field::FM64 => train::<u64>(ctx, c, &spu).await,
        Field::FM128 => train::<u128>(ctx, c, &spu).await,
    }
}

/// This party's plaintext features of `data`.
fn features(data: &Vertical) -> Features<'_> {
    Features { x: &data.x, cols: data.own.len(), rows: data.rows }
}

async fn train<R: Ring>(ctx: &PartyContext, c: &SsLrConfig, spu: &SpuRuntime) -> Result<JobOutput> {
    let me = ctx.party.as_str();
    // Every output path is checked at its party before any work, and every party learns the outcome.
    let (model_path, checked) = match model::check_outputs(ctx, c) {
        Ok(path) => (path, Ok(())),
        Err(e) => (None, Err(e)),
    };
    ctx.exchange("ss_lr/outputs", checked).await?;
    ctx.progress(0.0, "load training data");
    let train_spec = Spec {
        tag: "ss_lr/train",
        paths: &c.train_data,
        paths_field: "task_config.train_data",
        columns: Some(&c.features),
        columns_field: "task_config.features",
        label: Some((&c.label, &c.label_party)),
        optional_label: None,
    };
    let data = vertical::load(ctx, &train_spec).await?;
    let mut holders: Vec<&str> = data.columns.iter().map(|(_, p)| p.as_str()).collect();
    holders.push(&c.label_party);
    vertical::require_nodes(me, spu, &holders)?;
    ctx.progress(0.05, "set up the MPC device");
    let mut meter = Meter::new(ctx);
    let mut mpc = Device::<R>::new(ctx, spu).await?;
    meter.lap("device setup (base OTs)");
    let label_node = mpc.index_of(&c.label_party).ok_or_else(|| Error::Internal("label party is no node".into()))?;
    let blocks: Vec<Block> =
        (0..mpc.nodes()).map(|i| Block { names: data.of(mpc.party(i)), bias: i == label_node }).collect();
    let trained = algorithm::train(
        ctx,
        &mut mpc,
        &mut meter,
        &c.params,
        &blocks,
        label_node,
        features(&data),
        data.label.as_deref(),
    )
    .await?;
    let lr_model = LrModel::new(&mpc, spu, c, &data.columns, &trained.w, label_node);
    if let Some(path) = &model_path {
        model::save(me, path, &lr_model)?;
    }
    let prediction_output = match &c.test_data {
        Some(_) => Some(predict(ctx, &mut mpc, c, &blocks, &trained.w, prediction_path_of(c)).await?),
        None => None,
    };
    meter.lap("predict");
    let phases = ctx.exchange("ss_lr/phases", Ok(meter.finish())).await?;
    let phases: serde_json::Map<String, serde_json::Value> =
        phases.into_iter().map(|(p, v)| (p, serde_json::to_value(v).unwrap_or_default())).collect();
    ctx.progress(1.0, "done");
    let metrics = json!({ "epochs": trained.epochs, "final_loss": trained.final_loss,
                          "linear_products": mpc.plain_methods(), "phases": phases });
    JobOutput::new(&ModelResult {
        model_saved: true,
        model_paths: c.model_output.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        training_metrics: metrics,
        prediction_output,
    })
}

/// The prediction receiver and its output path.
fn prediction_path_of(c: &SsLrConfig) -> (String, Option<String>) {
    let receiver = c.prediction_receiver.clone().unwrap_or_else(|| c.label_party.clone());
    let path = c.prediction_output.as_ref().and_then(|o| o.get(&receiver)).cloned();
    (receiver, path)
}

/// Predict on `test_data`: the logits are opened to the receiver only, which writes the CSV.
async fn predict<R: Ring>(
    ctx: &PartyContext,
    mpc: &mut Device<'_, R>,
    c: &SsLrConfig,
    blocks: &[Block],
    w: &[Share<R>],
    (receiver, path): (String, Option<String>),
) -> Result<String> {
    let me = ctx.party.as_str();
    ctx.progress(0.9, "predict");
    let spec = Spec {
        tag: "ss_lr/test",
        paths: c.test_data.as_ref().ok_or_else(|| Error::Internal("no test data".into()))?,
        paths_field: "task_config.test_data",
        columns: Some(&c.features),
        columns_field: "task_config.features",
        label: None,
        optional_label: Some(&c.label),
    };
    let test = vertical::load(ctx, &spec).await?;
    for (i, block) in blocks.iter().enumerate() {
        if test.of(mpc.party(i)) != block.names {
            return Err(Error::bad_data(
                me,
                "task_config.test_data",
                format!("{} holds different features in the test data than in the training data", mpc.party(i)),
            ));
        }
    }
    let recv_node = mpc.index_of(&receiver).ok_or_else(|| {
        Error::bad_data(me, "task_config.prediction_receiver", format!("`{receiver}` is not an SPU node"))
    })?;
    let path = path.ok_or_else(|| {
        Error::bad_data(me, "task_config.prediction_output", format!("missing an entry for `{receiver}`"))
    })?;
    if let Some(logits) = algorithm::predict_logits(mpc, blocks, w, features(&test), recv_node).await? {
        model::write_predictions(
            ctx,
            &path,
            &logits,
            c.params.reg_type,
            test.label.as_deref().map(|y| (&*c.label, y)),
        )?;
    }
    Ok(path)
}
