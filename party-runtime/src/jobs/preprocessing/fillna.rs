//! `fillna`, as pandas `fillna` with a per-column value.
//!
//! `mean` and `median` use the column's present values (numeric columns only; without `columns` text columns
//! are left alone). `mode` takes the most frequent value, the smallest on ties (pandas `mode()[0]`).
//! `constant` uses `value`: a number for numeric columns, any value (as text) for text columns. An integer
//! column filled with an integral value stays integer. A column with no value to derive a fill from is
//! left as it is and reported with a null fill value.

use std::collections::HashMap;

use secretflow_crds::outputs::{ColumnMap, FillnaResult};
use secretflow_crds::tasks::preprocessing::{FillMethod, FillnaConfig};
use serde_json::Value;

use super::super::JobOutput;
use super::super::columns::{ColumnJob, Owned, Want, unzip};
use crate::context::PartyContext;
use crate::data::{Cat, ColKind, Table};
use crate::error::{Error, Result};
use crate::numeric::{mean, present, quantile, sorted};

/// Fill missing values.
pub async fn run(ctx: &PartyContext, c: &FillnaConfig) -> Result<JobOutput> {
    let want = match c.method {
        FillMethod::Mean | FillMethod::Median => Want::Numeric,
        FillMethod::Mode | FillMethod::Constant => Want::Any,
    };
    let job = ColumnJob {
        name: "fillna",
        input: &c.input_data,
        output: Some(&c.output_data),
        requested: c.columns.as_deref(),
        want,
    };
    let me = ctx.party.clone();
    let (plan, fitted) = job
        .run(ctx, |table, mine| {
            let mut out = ColumnMap::new();
            for col in mine {
                out.insert(col.name.clone(), fill_column(&me, table, col, c)?);
            }
            Ok(out)
        })
        .await?;
    let (fill_values, filled_counts) = unzip(fitted);
    JobOutput::new(&FillnaResult {
        output_paths: c.output_data.clone(),
        columns_filled: plan.names(),
        fill_values,
        filled_counts,
    })
}

/// The most frequent value, the smallest among equals.
fn mode(values: &[Option<Cat>]) -> Option<Cat> {
    let mut counts: HashMap<&Cat, usize> = HashMap::new();
    for v in values.iter().flatten() {
        *counts.entry(v).or_default() += 1;
    }
    counts.into_iter().max_by(|(a, n), (b, m)| n.cmp(m).then_with(|| b.cmp(a))).map(|(c, _)| c.clone())
}

fn fill_column(me: &str, table: &mut Table, col: &Owned, c: &FillnaConfig) -> Result<(Value, u64)> {
    let name = col.name.as_str();
    if col.kind.is_numeric() {
        let xs = table.floats(name)?;
        let missing = xs.iter().filter(|x| x.is_none_or(f64::is_nan)).count() as u64;
        let fill = match c.method {
            FillMethod::Mean => mean(&present(&xs)),
            FillMethod::Median => quantile(&sorted(present(&xs)), 0.5),
            FillMethod::Mode => match mode(&table.cats(name)?) {
                Some(Cat::Int(i)) => Some(i as f64),
                Some(Cat::Float(f)) => Some(f),
                _ => None,
            },
            FillMethod::Constant => match c.value.as_ref().and_then(Value::as_f64) {
                Some(v) => Some(v),
                None => {
                    return Err(Error::bad_data(
                        me,
                        "task_config.value",
                        format!("column `{name}` is numeric; the fill value must be a number"),
                    ));
                }
            },
        };
        let Some(fill) = fill else {
            return Ok((Value::Null, 0));
        };
        let fill_json = serde_json::Number::from_f64(fill).map_or(Value::Null, Value::Number);
        if missing == 0 {
            return Ok((fill_json, 0));
        }
        let filled = xs.iter().map(|x| Some(x.filter(|x| !x.is_nan()).unwrap_or(fill)));
        if col.kind == ColKind::Int && fill.fract() == 0.0 && fill.abs() < 9.0e15 {
            table.set_ints(name, filled.map(|x| x.map(|x| x as i64)).collect())?;
            Ok(((fill as i64).into(), missing))
        } else {
            table.set_floats(name, filled.collect())?;
            Ok((fill_json, missing))
        }
    } else {
        let values = table.cats(name)?;
        let missing = values.iter().filter(|v| v.is_none()).count() as u64;
        let fill = match c.method {
            FillMethod::Mode => mode(&values).map(|v| v.label()),
            FillMethod::Constant => c.value.as_ref().map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }),
            FillMethod::Mean | FillMethod::Median => {
                return Err(Error::Internal(format!("column `{name}` is text; the plan admits numbers only")));
            }
        };
        let Some(fill) = fill else {
            return Ok((Value::Null, 0));
        };
        if missing == 0 {
            return Ok((Value::String(fill), 0));
        }
        table.set_texts(
            name,
            values.into_iter().map(|v| Some(v.map_or_else(|| fill.clone(), |v| v.label()))).collect(),
        )?;
        Ok((Value::String(fill), missing))
    }
}
