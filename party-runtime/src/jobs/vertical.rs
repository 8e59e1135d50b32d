//! Loading a vertically partitioned numeric dataset for the MPC jobs: each party reads its own file, the
//! parties agree (from headers and row counts only) on who holds which column, and each keeps its own
//! columns as a row-major matrix. Rows must already be aligned (by PSI); a row-count mismatch, a missing
//! value or a text column is a `ValueError` naming the party, the field and the column.

use secretflow_crds::request::SpuRuntime;
use secretflow_crds::tasks::PartyPaths;

use super::columns::{ColumnPlan, Want};
use crate::context::PartyContext;
use crate::data::{Header, Table};
use crate::error::{Error, Result};

/// This party's part of the dataset and the shared layout.
#[derive(Debug, Clone)]
pub(crate) struct Vertical {
    /// `(column, owner)` in request order (every party computes the same list).
    pub columns: Vec<(String, String)>,
    /// Rows (the same at every holder).
    pub rows: usize,
    /// This party's columns, in request order.
    pub own: Vec<String>,
    /// This party's values, `rows x own.len()`, row-major.
    pub x: Vec<f64>,
    /// The label column, at the label party.
    pub label: Option<Vec<f64>>,
}

impl Vertical {
    /// The columns `party` holds, in order.
    pub fn of(&self, party: &str) -> Vec<String> {
        self.columns.iter().filter(|(_, p)| p == party).map(|(c, _)| c.clone()).collect()
    }
}

/// What to load.
pub(crate) struct Spec<'a> {
    /// Tag prefix for the exchanges.
    pub tag: &'a str,
    /// The input files and their request field (`task_config.train_data`).
    pub paths: &'a PartyPaths,
    pub paths_field: &'a str,
    /// Requested columns (all numeric columns one party holds when `None`) and their field.
    pub columns: Option<&'a [String]>,
    pub columns_field: &'a str,
    /// `(label column, label party)`: required at that party.
    pub label: Option<(&'a str, &'a str)>,
    /// A label column any party may hold (test data): loaded where present, never a feature.
    pub optional_label: Option<&'a str>,
}

fn values(me: &str, table: &Table, name: &str, field: &str) -> Result<Vec<f64>> {
    let col = table.floats(name)?;
    let missing = col.iter().filter(|v| v.is_none()).count();
    if missing > 0 {
        return Err(Error::bad_data(
            me,
            field,
            format!("column `{name}` has {missing} missing value(s); fill them first (fillna)"),
        ));
    }
    Ok(col.into_iter().map(|v| v.unwrap_or(0.0)).collect())
}

/// Load `spec`; every party calls this, and every party fails if any party's part is bad.
pub(crate) async fn load(ctx: &PartyContext, spec: &Spec<'_>) -> Result<Vertical> {
    let me = ctx.party.as_str();
    let read = match spec.paths.get(me) {
        Some(raw) => {
            let path = ctx.data.input(me, &format!("{}.{me}", spec.paths_field), raw);
            path.and_then(|p| Table::read(me, &p)).map(Some)
        }
        None => Ok(None),
    };
    let (table, shape) = match read {
        Ok(t) => {
            let shape = (t.as_ref().map(Table::header), t.as_ref().map_or(0, Table::height));
            (t, Ok(shape))
        }
        Err(e) => (None, Err(e)),
    };
    let shapes = ctx.exchange(&format!("{}/shape", spec.tag), shape).await?;
    let mut headers: Vec<(String, Option<Header>)> = shapes.iter().map(|(p, (h, _))| (p.clone(), h.clone())).collect();
    // The label is not a feature candidate.
    for label in spec.label.map(|(l, _)| l).into_iter().chain(spec.optional_label) {
        for (_, h) in headers.iter_mut() {
            if let Some(h) = h.as_mut() {
                h.columns.retain(|(n, _)| n != label);
            }
        }
    }
    let plan = ColumnPlan::resolve_field(me, &headers, spec.columns, Want::Numeric, spec.columns_field)?;
    let columns: Vec<(String, String)> = plan.columns.iter().map(|c| (c.name.clone(), c.party.clone())).collect();
    let mut holders: Vec<&str> = columns.iter().map(|(_, p)| p.as_str()).collect();
    if let Some((_, lp)) = spec.label {
        holders.push(lp);
    }
    let mut rows = None;
    for (p, (_, n)) in &shapes {
        if holders.contains(&p.as_str()) {
            match rows {
                None => rows = Some((p.clone(), *n)),
                Some((ref q, m)) if m != *n => {
                    return Err(Error::bad_data(
                        me,
                        spec.paths_field,
                        format!(
                            "row counts differ ({q}: {m}, {p}: {n}); vertically partitioned inputs must be aligned \
                             row by row (run psi first)"
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
    }
    let rows = rows.map_or(0, |(_, n)| n);
    let own: Vec<String> = plan.of(me).iter().map(|c| c.name.clone()).collect();
    let mine = || -> Result<(Vec<f64>, Option<Vec<f64>>)> {
        let Some(t) = table.as_ref() else { return Ok((Vec::new(), None)) };
        let cols: Vec<Vec<f64>> = own.iter().map(|c| values(me, t, c, spec.columns_field)).collect::<Result<_>>()?;
        let mut x = vec![0.0; rows * own.len()];
        for (j, col) in cols.iter().enumerate() {
            for (i, v) in col.iter().enumerate() {
                x[i * own.len() + j] = *v;
            }
        }
        let label = match spec.label {
            Some((name, lp)) if lp == me => {
                if t.header().kind(name).is_none() {
                    return Err(Error::bad_data(me, "task_config.label", format!("`{name}` is not in {me}'s input")));
                }
                Some(values(me, t, name, "task_config.label")?)
            }
            _ => match spec.optional_label {
                Some(name) if t.header().kind(name).is_some() => Some(values(me, t, name, "task_config.label")?),
                _ => None,
            },
        };
        Ok((x, label))
    };
    let (local, ready) = match mine() {
        Ok(v) => (v, Ok(())),
        Err(e) => ((Vec::new(), None), Err(e)),
    };
    ctx.exchange(&format!("{}/ready", spec.tag), ready).await?;
    let (x, label) = local;
    Ok(Vertical { columns, rows, own, x, label })
}

/// An error naming the first of `parties` that is not an SPU node.
pub(crate) fn require_nodes(me: &str, spu: &SpuRuntime, parties: &[&str]) -> Result<()> {
    for p in parties {
        if !spu.nodes.iter().any(|(n, _)| n == p) {
            return Err(Error::bad_data(
                me,
                "spu_config.cluster_def.nodes",
                format!("party `{p}` holds data for the MPC device but is not one of its nodes"),
            ));
        }
    }
    Ok(())
}
