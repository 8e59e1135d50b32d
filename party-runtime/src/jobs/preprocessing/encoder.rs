//! `label_encoder` and `onehot_encoder`, with sklearn's semantics.
//!
//! Categories are the sorted distinct values (numbers numerically, text by code point), as sklearn's
//! `classes_` / `categories_`. LabelEncoder writes each value's index; OneHotEncoder replaces the column, at
//! its position, by one `<column>_<value>` column of 1.0/0.0 per category (`drop: first` leaves out the
//! smallest). Missing cells stay missing (label) or become all zeros (one-hot).

use std::collections::BTreeSet;

use secretflow_crds::outputs::{ColumnMap, LabelEncoderResult, OnehotEncoderResult};
use secretflow_crds::tasks::preprocessing::{Drop, LabelEncoderConfig, OnehotEncoderConfig};
use serde_json::Value;

use super::super::JobOutput;
use super::super::columns::{ColumnJob, Want, unzip};
use crate::context::PartyContext;
use crate::data::Cat;
use crate::error::{Error, Result};

fn categories(values: &[Option<Cat>]) -> Vec<Cat> {
    values.iter().flatten().cloned().collect::<BTreeSet<_>>().into_iter().collect()
}

/// LabelEncoder.
pub async fn label(ctx: &PartyContext, c: &LabelEncoderConfig) -> Result<JobOutput> {
    let job = ColumnJob {
        name: "label_encoder",
        input: &c.input_data,
        output: Some(&c.output_data),
        requested: Some(&c.columns),
        want: Want::Any,
    };
    let (plan, classes) = job
        .run(ctx, |table, mine| {
            let mut out = ColumnMap::new();
            for col in mine {
                let values = table.cats(&col.name)?;
                let classes = categories(&values);
                let codes = values
                    .iter()
                    .map(|v| v.as_ref().and_then(|v| classes.binary_search(v).ok()).map(|i| i as i64))
                    .collect();
                table.set_ints(&col.name, codes)?;
                out.insert(col.name.clone(), classes.iter().map(Cat::to_json).collect::<Vec<Value>>());
            }
            Ok(out)
        })
        .await?;
    JobOutput::new(&LabelEncoderResult { output_paths: c.output_data.clone(), columns_encoded: plan.names(), classes })
}

/// OneHotEncoder.
pub async fn onehot(ctx: &PartyContext, c: &OnehotEncoderConfig) -> Result<JobOutput> {
    let job = ColumnJob {
        name: "onehot_encoder",
        input: &c.input_data,
        output: Some(&c.output_data),
        requested: Some(&c.columns),
        want: Want::Any,
    };
    let me = ctx.party.clone();
    let (plan, fitted) = job
        .run(ctx, |table, mine| {
            let mut out = ColumnMap::new();
            for col in mine {
                let values = table.cats(&col.name)?;
                let cats = categories(&values);
                let kept = if c.drop == Drop::First && !cats.is_empty() { &cats[1..] } else { &cats[..] };
                let header = table.header();
                let mut new_cols: Vec<(String, Vec<f64>)> = Vec::with_capacity(kept.len());
                for cat in kept {
                    let name = format!("{}_{}", col.name, cat.label());
                    if header.kind(&name).is_some() || new_cols.iter().any(|(n, _)| *n == name) {
                        return Err(Error::bad_data(
                            &me,
                            "task_config.columns",
                            format!("one-hot column `{name}` for `{}` would clash with an existing column", col.name),
                        ));
                    }
                    let v = values.iter().map(|x| if x.as_ref() == Some(cat) { 1.0 } else { 0.0 }).collect();
                    new_cols.push((name, v));
                }
                let names: Vec<String> = new_cols.iter().map(|(n, _)| n.clone()).collect();
                table.splice(&col.name, new_cols)?;
                out.insert(col.name.clone(), (cats.iter().map(Cat::to_json).collect::<Vec<Value>>(), names));
            }
            Ok(out)
        })
        .await?;
    let (categories, output_columns) = unzip(fitted);
    JobOutput::new(&OnehotEncoderResult {
        output_paths: c.output_data.clone(),
        columns_encoded: plan.names(),
        categories,
        output_columns,
    })
}
