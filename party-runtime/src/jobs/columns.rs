//! The shape every per-party column job shares: read your own table, agree on who holds which requested
//! column, fit and transform your own columns, exchange the fitted results, write your own output.
//!
//! Column ownership: a requested column must be held by exactly one party (a name in several inputs, such as
//! a join key, is ambiguous and refused). Without `columns`, each party takes its own columns that no other
//! party also has (shared names are taken to be alignment keys) and that the job accepts.

use secretflow_crds::outputs::ColumnMap;
use secretflow_crds::tasks::PartyPaths;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::context::PartyContext;
use crate::data::{ColKind, Header, Table};
use crate::error::{Error, Result};

/// Which columns a job accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Want {
    /// Numbers only; a listed text column is an error.
    Numeric,
    /// Any column.
    Any,
    /// Any listed column; by default numeric ones only.
    AnyDefaultNumeric,
}

/// A requested column and its holder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Owned {
    pub name: String,
    pub party: String,
    pub kind: ColKind,
}

/// Who holds which column, in request order (or party then file order by default).
#[derive(Clone, Debug)]
pub(crate) struct ColumnPlan {
    pub columns: Vec<Owned>,
}

impl ColumnPlan {
    /// Resolve `requested` against every party's header; every party computes the same plan or error.
    pub fn resolve(
        me: &str,
        headers: &[(String, Option<Header>)],
        requested: Option<&[String]>,
        want: Want,
    ) -> Result<Self> {
        Self::resolve_field(me, headers, requested, want, "task_config.columns")
    }

    /// [`ColumnPlan::resolve`] for a request field other than `columns` (errors name `field`).
    pub fn resolve_field(
        me: &str,
        headers: &[(String, Option<Header>)],
        requested: Option<&[String]>,
        want: Want,
        field: &str,
    ) -> Result<Self> {
        let holders = |name: &str| -> Vec<(&str, ColKind)> {
            headers.iter().filter_map(|(p, h)| h.as_ref().and_then(|h| h.kind(name)).map(|k| (p.as_str(), k))).collect()
        };
        let mut columns = Vec::new();
        match requested {
            Some(names) => {
                for name in names {
                    let found = holders(name);
                    let (party, kind) = match found.as_slice() {
                        [] => {
                            return Err(Error::bad_data(me, field, format!("column `{name}` is in no party's input")));
                        }
                        [one] => *one,
                        many => {
                            let who: Vec<&str> = many.iter().map(|(p, _)| *p).collect();
                            return Err(Error::bad_data(
                                me,
                                field,
                                format!(
                                    "column `{name}` is held by several parties ({}); name columns one party holds",
                                    who.join(", ")
                                ),
                            ));
                        }
                    };
                    if want == Want::Numeric && !kind.is_numeric() {
                        return Err(Error::bad_data(me, field, format!("column `{name}` at {party} is not numeric")));
                    }
                    columns.push(Owned { name: name.clone(), party: party.to_string(), kind });
                }
            }
            None => {
                for (party, header) in headers {
                    for (name, kind) in header.iter().flat_map(|h| h.columns.iter()) {
                        let numeric_only = matches!(want, Want::Numeric | Want::AnyDefaultNumeric);
                        if holders(name).len() == 1 && (!numeric_only || kind.is_numeric()) {
                            columns.push(Owned { name: name.clone(), party: party.clone(), kind: *kind });
                        }
                    }
                }
                if columns.is_empty() {
                    return Err(Error::bad_data(me, field, "no column fits: name the columns to use"));
                }
            }
        }
        Ok(ColumnPlan { columns })
    }

    /// The columns `party` holds.
    pub fn of<'a>(&'a self, party: &'a str) -> Vec<&'a Owned> {
        self.columns.iter().filter(|c| c.party == party).collect()
    }

    /// All column names, in plan order.
    pub fn names(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.name.clone()).collect()
    }

    /// Put the parties' parts together in plan order.
    pub fn merge<T>(&self, parts: Vec<(String, ColumnMap<T>)>) -> Result<ColumnMap<T>> {
        let mut parts: Vec<(String, ColumnMap<T>)> = parts;
        let mut out = ColumnMap::new();
        for c in &self.columns {
            let value =
                parts.iter_mut().find(|(p, _)| *p == c.party).and_then(|(_, m)| m.shift_remove(&c.name)).ok_or_else(
                    || Error::Internal(format!("party {} sent no result for column `{}`", c.party, c.name)),
                )?;
            out.insert(c.name.clone(), value);
        }
        Ok(out)
    }
}

/// Split per-column pairs of fitted values into two column maps (same column order).
pub(crate) fn unzip<A, B>(fitted: ColumnMap<(A, B)>) -> (ColumnMap<A>, ColumnMap<B>) {
    let mut left = ColumnMap::with_capacity(fitted.len());
    let mut right = ColumnMap::with_capacity(fitted.len());
    for (name, (a, b)) in fitted {
        left.insert(name.clone(), a);
        right.insert(name, b);
    }
    (left, right)
}

/// The request fields of a per-party column job.
pub(crate) struct ColumnJob<'a> {
    /// Short name, used as the tag prefix.
    pub name: &'static str,
    /// `input_data`.
    pub input: &'a PartyPaths,
    /// `output_data`, for jobs that write a transformed table.
    pub output: Option<&'a PartyPaths>,
    /// `columns`.
    pub requested: Option<&'a [String]>,
    /// What columns it accepts.
    pub want: Want,
}

impl ColumnJob<'_> {
    /// Run the shared shape; `fit` transforms this party's table in place and returns one value per owned column.
    pub async fn run<P, F>(&self, ctx: &PartyContext, fit: F) -> Result<(ColumnPlan, ColumnMap<P>)>
    where
        P: Serialize + DeserializeOwned,
        F: FnOnce(&mut Table, &[&Owned]) -> Result<ColumnMap<P>>,
    {
        let me = ctx.party.as_str();
        ctx.progress(0.0, "read input");
        let read = self.read_own(ctx);
        let (table, header) = match read {
            Ok((t, out)) => {
                let h = t.as_ref().map(Table::header);
                (t.map(|t| (t, out)), Ok(h))
            }
            Err(e) => (None, Err(e)),
        };
        let headers = ctx.exchange(&format!("{}/header", self.name), header).await?;
        let plan = ColumnPlan::resolve(me, &headers, self.requested, self.want);
        ctx.progress(0.3, "fit and transform");
        let (part, table) = match (plan.as_ref(), table) {
            (Ok(plan), Some((mut t, out))) => (fit(&mut t, &plan.of(me)), Some((t, out))),
            (Ok(_), None) => (Ok(ColumnMap::new()), None),
            (Err(_), t) => (Ok(ColumnMap::new()), t),
        };
        let plan = plan?;
        let parts = ctx.exchange(&format!("{}/parts", self.name), part).await?;
        ctx.progress(0.8, "write output");
        if let Some((mut t, Some(out))) = table {
            t.write(&out)?;
        }
        ctx.progress(1.0, "done");
        let merged = plan.merge(parts)?;
        Ok((plan, merged))
    }

    /// This party's table (if it has input) and resolved output path (checked before any work).
    fn read_own(&self, ctx: &PartyContext) -> Result<(Option<Table>, Option<std::path::PathBuf>)> {
        let me = ctx.party.as_str();
        let Some(raw) = self.input.get(me) else {
            return Ok((None, None));
        };
        let out = match self.output.and_then(|o| o.get(me)) {
            Some(o) => Some(ctx.data.resolve(me, &format!("task_config.output_data.{me}"), o)?),
            None => None,
        };
        let path = ctx.data.input(me, &format!("task_config.input_data.{me}"), raw)?;
        Ok((Some(Table::read(me, &path)?), out))
    }
}
