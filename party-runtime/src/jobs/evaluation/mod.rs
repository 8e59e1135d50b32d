//! Evaluation (spec section 6): the one party holding the prediction file computes the metrics and shares
//! them (they are the task's output); no row leaves that party.

pub mod biclassification;
pub mod regression;

use secretflow_crds::tasks::PartyPaths;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::context::PartyContext;
use crate::data::Table;
use crate::error::{Error, Result};

/// The label and prediction columns of the holder's file, as numbers with nothing missing.
pub(crate) struct Scored {
    pub label: Vec<f64>,
    pub score: Vec<f64>,
}

/// Compute `metrics` at the party holding `data` and give every party the result.
pub(crate) async fn on_holder<T, F>(
    ctx: &PartyContext,
    name: &str,
    data: &PartyPaths,
    label: &str,
    prediction: &str,
    metrics: F,
) -> Result<T>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce(Scored) -> Result<T>,
{
    let me = ctx.party.as_str();
    let (holder, raw) = data.iter().next().ok_or_else(|| Error::Internal("prediction_data is empty".into()))?;
    let mine: Result<Option<T>> = if holder == me {
        ctx.progress(0.0, "read predictions");
        (|| {
            let path = ctx.data.input(me, &format!("task_config.prediction_data.{me}"), raw)?;
            let table = Table::read(me, &path)?;
            let column = |field: &str, col: &str| -> Result<Vec<f64>> {
                let kind = table.header().kind(col).ok_or_else(|| {
                    Error::bad_data(
                        me,
                        format!("task_config.{field}"),
                        format!("column `{col}` is not in {}", path.display()),
                    )
                })?;
                if !kind.is_numeric() {
                    return Err(Error::bad_data(
                        me,
                        format!("task_config.{field}"),
                        format!("column `{col}` is not numeric"),
                    ));
                }
                let xs = table.floats(col)?;
                xs.into_iter()
                    .enumerate()
                    .map(|(i, x)| {
                        x.filter(|x| !x.is_nan()).ok_or_else(|| {
                            Error::bad_data(
                                me,
                                format!("task_config.{field}"),
                                format!("column `{col}` is missing a value at row {}", i + 1),
                            )
                        })
                    })
                    .collect()
            };
            let scored =
                Scored { label: column("label_column", label)?, score: column("prediction_column", prediction)? };
            if scored.label.is_empty() {
                return Err(Error::bad_data(me, "task_config.prediction_data", "the prediction file has no rows"));
            }
            ctx.progress(0.5, "compute metrics");
            metrics(scored).map(Some)
        })()
    } else {
        Ok(None)
    };
    let all = ctx.exchange(&format!("{name}/metrics"), mine).await?;
    ctx.progress(1.0, "done");
    all.into_iter()
        .find_map(|(p, m)| if p == *holder { m } else { None })
        .ok_or_else(|| Error::Internal(format!("party {holder} sent no metrics")))
}
