//! A party's CSV table, read and written with polars (header row required).
//!
//! Jobs see columns as `f64` values (numeric work) or [`Cat`] values (categorical work); missing cells are
//! `None`. Empty cells and the usual pandas missing markers (`NA`, `NaN`, `null`, ...) read as missing.
//! Outputs are written to a temporary file beside the target and renamed, so a failed task never leaves a
//! half-written file; folders are created.

use std::cmp::Ordering;
use std::io::Write;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What kind of values a column holds.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColKind {
    /// Integers.
    Int,
    /// Floating point.
    Float,
    /// Anything else, handled as text.
    Text,
}

impl ColKind {
    /// Int or Float.
    pub fn is_numeric(self) -> bool {
        matches!(self, ColKind::Int | ColKind::Float)
    }
}

/// A table's columns as announced to the other parties (names and kinds, never values).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Header {
    /// `(name, kind)` in file order.
    pub columns: Vec<(String, ColKind)>,
}

impl Header {
    /// The kind of `name`, if the table has it.
    pub fn kind(&self, name: &str) -> Option<ColKind> {
        self.columns.iter().find(|(n, _)| n == name).map(|(_, k)| *k)
    }
}

/// A categorical value: ordered numerically for numbers and by code point for text.
#[derive(Clone, Debug)]
pub enum Cat {
    /// From an integer column.
    Int(i64),
    /// From a float column.
    Float(f64),
    /// From a text column.
    Str(String),
}

impl Cat {
    /// The value as JSON (a number or a string).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Cat::Int(i) => (*i).into(),
            Cat::Float(f) => serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into),
            Cat::Str(s) => s.clone().into(),
        }
    }

    /// The value as text (for column names and text outputs).
    pub fn label(&self) -> String {
        match self {
            Cat::Int(i) => i.to_string(),
            Cat::Float(f) => f.to_string(),
            Cat::Str(s) => s.clone(),
        }
    }
}

impl PartialEq for Cat {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Cat {}
impl PartialOrd for Cat {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Cat {
    fn cmp(&self, o: &Self) -> Ordering {
        match (self, o) {
            (Cat::Int(a), Cat::Int(b)) => a.cmp(b),
            (Cat::Float(a), Cat::Float(b)) => a.total_cmp(b),
            (Cat::Str(a), Cat::Str(b)) => a.cmp(b),
            (a, b) => a.rank().cmp(&b.rank()),
        }
    }
}
impl std::hash::Hash for Cat {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        match self {
            Cat::Int(i) => i.hash(h),
            Cat::Float(f) => f.to_bits().hash(h),
            Cat::Str(s) => s.hash(h),
        }
    }
}
impl Cat {
    fn rank(&self) -> u8 {
        match self {
            Cat::Int(_) => 0,
            Cat::Float(_) => 1,
            Cat::Str(_) => 2,
        }
    }
}

/// One party's table.
pub struct Table {
    df: DataFrame,
    party: String,
    path: PathBuf,
}

const MISSING_MARKERS: [&str; 8] = ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"];

/// Rows used to infer column types on the first attempt.
const INFER_ROWS: usize = 10_000;

fn read_csv(path: &Path, infer_rows: Option<usize>) -> PolarsResult<DataFrame> {
    let nulls = NullValues::AllColumns(MISSING_MARKERS.iter().map(|s| PlSmallStr::from(*s)).collect());
    CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(infer_rows)
        .with_raise_if_empty(false)
        .with_parse_options(CsvParseOptions::default().with_null_values(Some(nulls)))
        .try_into_reader_with_file_path(Some(path.to_path_buf()))?
        .finish()
}

fn polars_err(party: &str, path: &Path, e: PolarsError) -> Error {
    Error::Csv { party: party.into(), path: path.into(), detail: e.to_string() }
}

impl Table {
    /// Read a CSV with a header row. Column types are inferred from the first rows; if a later row does not
    /// fit them, the file is read again with every row taken into account.
    pub fn read(party: &str, path: &Path) -> Result<Table> {
        let df = read_csv(path, Some(INFER_ROWS))
            .or_else(|_| read_csv(path, None))
            .map_err(|e| polars_err(party, path, e))?;
        Ok(Table { df, party: party.into(), path: path.into() })
    }

    /// Rows.
    pub fn height(&self) -> usize {
        self.df.height()
    }

    /// Column names and kinds.
    pub fn header(&self) -> Header {
        let columns = self.df.columns().iter().map(|c| (c.name().to_string(), kind_of(c.dtype()))).collect();
        Header { columns }
    }

    fn column(&self, name: &str) -> Result<&Column> {
        self.df.column(name).map_err(|_| Error::Internal(format!("party {}: no column `{name}`", self.party)))
    }

    fn cast(&self, name: &str, dtype: &DataType) -> Result<Series> {
        let s = self.column(name)?.as_materialized_series();
        s.cast(dtype).map_err(|e| polars_err(&self.party, &self.path, e))
    }

    /// A numeric column as `f64`.
    pub fn floats(&self, name: &str) -> Result<Vec<Option<f64>>> {
        let s = self.cast(name, &DataType::Float64)?;
        let ca = s.f64().map_err(|e| polars_err(&self.party, &self.path, e))?;
        Ok(ca.iter().collect())
    }

    /// A column as categorical values of its own kind.
    pub fn cats(&self, name: &str) -> Result<Vec<Option<Cat>>> {
        let kind = kind_of(self.column(name)?.dtype());
        Ok(match kind {
            ColKind::Int => {
                let s = self.cast(name, &DataType::Int64)?;
                let ca = s.i64().map_err(|e| polars_err(&self.party, &self.path, e))?;
                ca.iter().map(|v| v.map(Cat::Int)).collect()
            }
            ColKind::Float => self.floats(name)?.into_iter().map(|v| v.map(Cat::Float)).collect(),
            ColKind::Text => {
                let s = self.cast(name, &DataType::String)?;
                let ca = s.str().map_err(|e| polars_err(&self.party, &self.path, e))?;
                ca.iter().map(|v| v.map(|t| Cat::Str(t.to_string()))).collect()
            }
        })
    }

    fn put(&mut self, series: Series) -> Result<()> {
        self.df.with_column(series.into_column()).map(|_| ()).map_err(|e| polars_err(&self.party, &self.path, e))
    }

    /// Replace (or add) a float column.
    pub fn set_floats(&mut self, name: &str, values: Vec<Option<f64>>) -> Result<()> {
        self.put(Series::new(name.into(), values))
    }

    /// Replace (or add) an integer column.
    pub fn set_ints(&mut self, name: &str, values: Vec<Option<i64>>) -> Result<()> {
        self.put(Series::new(name.into(), values))
    }

    /// Replace (or add) a text column.
    pub fn set_texts(&mut self, name: &str, values: Vec<Option<String>>) -> Result<()> {
        self.put(Series::new(name.into(), values))
    }

    /// Replace column `name` by `columns`, at its position.
    pub fn splice(&mut self, name: &str, columns: Vec<(String, Vec<f64>)>) -> Result<()> {
        let at = self
            .df
            .get_column_index(name)
            .ok_or_else(|| Error::Internal(format!("party {}: no column `{name}`", self.party)))?;
        let err = |e| polars_err(&self.party, &self.path, e);
        let mut df = self.df.clone();
        df.drop_in_place(name).map_err(err)?;
        for (i, (n, v)) in columns.into_iter().enumerate() {
            df.insert_column(at + i, Series::new(n.into(), v).into_column()).map_err(err)?;
        }
        self.df = df;
        Ok(())
    }

    /// A new table with the rows at `rows`, in that order.
    pub fn select_rows(&self, rows: &[usize]) -> Result<Table> {
        let idx = IdxCa::from_vec("rows".into(), rows.iter().map(|r| *r as IdxSize).collect());
        let df = self.df.take(&idx).map_err(|e| polars_err(&self.party, &self.path, e))?;
        Ok(Table { df, party: self.party.clone(), path: self.path.clone() })
    }

    /// Write the table as CSV to `path`, atomically.
    pub fn write(&mut self, path: &Path) -> Result<()> {
        let (party, df) = (self.party.clone(), &mut self.df);
        atomic_write(&party, path, |file| {
            CsvWriter::new(file).include_header(true).finish(df).map_err(|e| polars_err(&party, path, e))
        })
    }
}

fn kind_of(dtype: &DataType) -> ColKind {
    if dtype.is_integer() {
        ColKind::Int
    } else if dtype.is_float() {
        ColKind::Float
    } else {
        ColKind::Text
    }
}

/// Write `path` through a temporary file in the same folder, renamed into place on success; folders are
/// created. On failure the temporary file is removed and `path` is untouched.
pub fn atomic_write(party: &str, path: &Path, fill: impl FnOnce(&mut std::fs::File) -> Result<()>) -> Result<()> {
    let io = |e: std::io::Error| Error::Io { party: party.into(), path: path.into(), message: e.to_string() };
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut tmp = tempfile::Builder::new().prefix(".sf-tmp-").tempfile_in(dir).map_err(io)?;
    fill(tmp.as_file_mut())?;
    tmp.as_file_mut().flush().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_that_change_after_the_inference_window_are_read_correctly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("late.csv");
        let mut text = String::from("a,b\n");
        for i in 0..INFER_ROWS + 5 {
            let a = if i == INFER_ROWS + 2 { "1.5".to_string() } else { i.to_string() };
            let b = if i == INFER_ROWS + 3 { "x".to_string() } else { i.to_string() };
            text.push_str(&format!("{a},{b}\n"));
        }
        std::fs::write(&path, text).unwrap();
        let t = Table::read("alice", &path).unwrap();
        assert_eq!(t.header().columns, vec![("a".into(), ColKind::Float), ("b".into(), ColKind::Text)]);
        let a = t.floats("a").unwrap();
        assert_eq!(a[INFER_ROWS + 2], Some(1.5));
        assert_eq!(a[7], Some(7.0));
    }

    #[test]
    fn missing_markers_read_as_missing_and_outputs_are_atomic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.csv");
        std::fs::write(&path, "x,y\n1,a\nNA,\n3,NaN\n").unwrap();
        let mut t = Table::read("alice", &path).unwrap();
        assert_eq!(t.floats("x").unwrap(), vec![Some(1.0), None, Some(3.0)]);
        assert_eq!(t.cats("y").unwrap(), vec![Some(Cat::Str("a".into())), None, None]);
        let out = dir.path().join("sub/dir/out.csv");
        t.write(&out).unwrap();
        assert!(out.is_file());
        let leftovers = std::fs::read_dir(out.parent().unwrap()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
        let failed = atomic_write("alice", &dir.path().join("never.csv"), |_| Err(Error::Internal("boom".into())));
        assert!(failed.is_err());
        assert!(!dir.path().join("never.csv").exists());
    }
}
