//! `ss_xgb` (spec section 3), the job: check every output path, load the aligned training (and test) blocks,
//! bucket this party's features and agree on the public layout (candidate counts), build the MPC device, train
//! with [`crate::ml::ss_xgb`], save each party's model share, write the receiver's predictions, and report.

use secretflow_crds::outputs::ModelResult;
use secretflow_crds::request::{Field, SpuRuntime};
use secretflow_crds::tasks::learning::{Objective, RegType, SsXgbConfig};
use serde_json::json;

use super::super::JobOutput;
use super::super::vertical::{self, Spec, Vertical};
use super::model;
use super::xgb_model::XgbModel;
use crate::context::PartyContext;
use crate::error::{Error, Result};
use crate::ml::phases::Meter;
use crate::ml::ss_xgb::{self as algorithm, Layout, Own, buckets, predict};
use crate::mpc::{Device, Kernels, Ring};

/// Train (and predict) as `ctx.party`.
pub async fn run(ctx: &PartyContext, c: &SsXgbConfig) -> Result<JobOutput> {
    let spu = ctx.spu.clone().ok_or_else(|| Error::Internal("ss_xgb needs the SPU device".into()))?;
    match spu.field {
        Field::FM64 => train::<u64>(ctx, c, &spu).await,
        Field::FM128 => train::<u128>(ctx, c, &spu).await,
    }
}

/// Column `c` of this party's block.
fn column(data: &Vertical, c: usize) -> Vec<f64> {
    let cols = data.own.len();
    (0..data.rows).map(|r| data.x[r * cols + c]).collect()
}

async fn train<R: Ring>(ctx: &PartyContext, c: &SsXgbConfig, spu: &SpuRuntime) -> Result<JobOutput> {
    let me = ctx.party.as_str();
    let (model_path, checked) = match model::check_outputs(ctx, c) {
        Ok(path) => (path, Ok(())),
        Err(e) => (None, Err(e)),
    };
    ctx.exchange("ss_xgb/outputs", checked).await?;
    ctx.progress(0.0, "load training data");
    let train_spec = Spec {
        tag: "ss_xgb/train",
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
    if c.params.objective == Objective::Logistic
        && let Some(y) = &data.label
        && let Some(bad) = y.iter().position(|v| *v != 0.0 && *v != 1.0)
    {
        return Err(Error::bad_data(
            me,
            "task_config.label",
            format!("the logistic objective needs 0/1 labels; row {} of `{}` is not", bad + 1, c.label),
        ));
    }
    // Buckets are local; their counts per feature are the public layout.
    let thresholds: Vec<Vec<f64>> =
        (0..data.own.len()).map(|k| buckets::thresholds(&column(&data, k), c.params.sketch_eps)).collect();
    let counts: Vec<usize> = thresholds.iter().map(Vec::len).collect();
    let all_counts = ctx.exchange("ss_xgb/buckets", Ok(counts)).await?;
    ctx.progress(0.05, "set up the MPC device");
    let mut meter = Meter::new(ctx);
    let mut mpc = Device::<R>::new(ctx, spu).await?;
    meter.lap("device setup (base OTs)");
    let layout = Layout {
        counts: (0..mpc.nodes())
            .map(|i| all_counts.iter().find(|(p, _)| p == mpc.party(i)).map(|(_, c)| c.clone()).unwrap_or_default())
            .collect(),
    };
    let label_node = mpc.index_of(&c.label_party).ok_or_else(|| Error::Internal("label party is no node".into()))?;
    let own = Own { x: &data.x, cols: data.own.len(), rows: data.rows, thresholds: &thresholds };
    let total = c.params.num_boost_round as usize;
    let progress = |t: usize| ctx.progress(0.1 + 0.8 * t as f64 / total as f64, &format!("tree {t} of {total}"));
    let trained = algorithm::train(
        me,
        &mut mpc,
        &c.params,
        &layout,
        &own,
        (label_node, data.label.as_deref()),
        &mut meter,
        progress,
    )
    .await?;
    if let Some(path) = &model_path {
        let file = XgbModel::new(&mpc, spu, c, &data.columns, (&data.own, &thresholds), &trained);
        model::save(me, path, &file)?;
    }
    let prediction_output = match &c.test_data {
        Some(_) => Some(predict_test(ctx, &mut mpc, c, &data, (&thresholds, &trained)).await?),
        None => None,
    };
    meter.lap("predict");
    let phases = ctx.exchange("ss_xgb/phases", Ok(meter.finish())).await?;
    let phases: serde_json::Map<String, serde_json::Value> =
        phases.into_iter().map(|(p, v)| (p, serde_json::to_value(v).unwrap_or_default())).collect();
    ctx.progress(1.0, "done");
    let metrics = json!({ "num_trees": trained.trees.len(), "histograms": mpc.bucket_method(), "phases": phases });
    JobOutput::new(&ModelResult {
        model_saved: true,
        model_paths: c.model_output.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        training_metrics: metrics,
        prediction_output,
    })
}

/// Predict on `test_data`: the margins are opened to the receiver only, which writes the CSV.
async fn predict_test<R: Ring>(
    ctx: &PartyContext,
    mpc: &mut Device<'_, R>,
    c: &SsXgbConfig,
    train: &Vertical,
    (thresholds, trained): (&[Vec<f64>], &algorithm::Trained<R>),
) -> Result<String> {
    let me = ctx.party.as_str();
    ctx.progress(0.9, "predict");
    let spec = Spec {
        tag: "ss_xgb/test",
        paths: c.test_data.as_ref().ok_or_else(|| Error::Internal("no test data".into()))?,
        paths_field: "task_config.test_data",
        columns: Some(&c.features),
        columns_field: "task_config.features",
        label: None,
        optional_label: Some(&c.label),
    };
    let test = vertical::load(ctx, &spec).await?;
    if test.columns != train.columns {
        return Err(Error::bad_data(
            me,
            "task_config.test_data",
            "the parties hold different features in the test data than in the training data",
        ));
    }
    let receiver = c.prediction_receiver.clone().unwrap_or_else(|| c.label_party.clone());
    let recv_node = mpc.index_of(&receiver).ok_or_else(|| {
        Error::bad_data(me, "task_config.prediction_receiver", format!("`{receiver}` is not an SPU node"))
    })?;
    let path = c.prediction_output.as_ref().and_then(|o| o.get(&receiver)).cloned().ok_or_else(|| {
        Error::bad_data(me, "task_config.prediction_output", format!("missing an entry for `{receiver}`"))
    })?;
    let rows = predict::Test { x: &test.x, cols: test.own.len(), rows: test.rows, thresholds };
    if let Some(margins) = predict::margins(mpc, trained, c.params.max_depth, &rows, recv_node).await? {
        let reg = match c.params.objective {
            Objective::Logistic => RegType::Logistic,
            Objective::Linear => RegType::Linear,
        };
        model::write_predictions(ctx, &path, &margins, reg, test.label.as_deref().map(|y| (&*c.label, y)))?;
    }
    Ok(path)
}
