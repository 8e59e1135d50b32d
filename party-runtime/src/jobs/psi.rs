//! `psi` (spec section 1): the two parties of `input_paths` intersect their key columns.
//!
//! Keys: the `keys` columns of each party, several forming a composite key; values are compared as text
//! (integers without decimals, floats as Rust prints them, strings as-is), each column length-prefixed so that
//! composite keys cannot collide. A missing key or a duplicate key is a `ValueError` naming the party (and the
//! rows of the first duplicates, never their values: the error reaches the peer), as SecretFlow's checker does. Empty inputs and an empty intersection are valid.
//!
//! Output: each party that learns the intersection writes its full input rows whose key is in it, in the same
//! order at both parties: the receiver's input order, or sorted by key when `sort` is true (the receiver
//! decides the order and sends it with the result, so both files line up row by row). With
//! `broadcast_result: false` only the receiver learns the intersection and writes a file; the sender's report
//! then says -1. A party of the request without input learns the receiver's result.

use std::path::PathBuf;

use secretflow_crds::outputs::{PsiReport, PsiResult};
use secretflow_crds::tasks::psi::{PsiConfig, PsiProtocol};

use super::JobOutput;
use crate::context::{PartyContext, compute};
use crate::data::{Cat, Table};
use crate::error::{Error, Result};
use crate::psi::{ecdh, kkrt};

/// A party's checked input.
struct Prepared {
    table: Table,
    /// Encoded key per row.
    keys: Vec<Vec<u8>>,
    /// Key values per row, for sorting (empty unless `sort`).
    values: Vec<Vec<Cat>>,
    output: PathBuf,
}

/// Run PSI as `ctx.party`.
pub async fn run(ctx: &PartyContext, c: &PsiConfig) -> Result<JobOutput> {
    let me = ctx.party.as_str();
    let receiver = c.receiver.as_str();
    let sender = c.input_paths.keys().find(|p| *p != receiver).map(String::as_str).unwrap_or(receiver);
    let participant = me == receiver || me == sender;

    // Read and check the keys; every party learns of a failure anywhere before any protocol step.
    ctx.progress(0.0, "psi: read input");
    let (prepared, ready) = if participant {
        match compute(|| prepare(ctx, c)) {
            Ok(p) => {
                let n = p.keys.len() as u64;
                (Some(p), Ok(Some(n)))
            }
            Err(e) => (None, Err(e)),
        }
    } else {
        (None, Ok(None))
    };
    let counts = ctx.exchange("psi/ready", ready).await?;
    let count = |p: &str| counts.iter().find(|(q, _)| q == p).and_then(|(_, n)| *n).unwrap_or(0) as i64;
    let Some(mine) = prepared else {
        let result = ctx.channel.recv_json(receiver, "psi/result").await.map_err(|e| ctx.link_error(e))?;
        return Ok(JobOutput { result, report: None, private: false });
    };
    let peer = if me == receiver { sender } else { receiver };

    ctx.progress(0.1, "psi: protocol");
    let (rows, private) = if me == receiver {
        let out = match c.protocol {
            PsiProtocol::KKRT_PSI_2PC => kkrt::receive(ctx, peer, &mine.keys).await?,
            PsiProtocol::ECDH_PSI_2PC => ecdh::receive(ctx, peer, &mine.keys).await?,
        };
        let mut matches = out.matches;
        if c.sort {
            matches.sort_by(|a, b| mine.values[a.0].cmp(&mine.values[b.0]));
        }
        if c.broadcast_result {
            let order: Vec<u8> = matches.iter().flat_map(|(_, j)| (*j as u64).to_le_bytes()).collect();
            ctx.channel.send_bytes(peer, "psi/order", order).await.map_err(|e| ctx.link_error(e))?;
        }
        (matches.into_iter().map(|(i, _)| i).collect::<Vec<_>>(), false)
    } else {
        let out = match c.protocol {
            PsiProtocol::KKRT_PSI_2PC => kkrt::send(ctx, peer, &mine.keys).await?,
            PsiProtocol::ECDH_PSI_2PC => ecdh::send(ctx, peer, &mine.keys).await?,
        };
        if c.broadcast_result {
            let order = ctx.channel.recv_bytes(peer, "psi/order").await.map_err(|e| ctx.link_error(e))?;
            let bad = || ctx.bad_message(peer, "psi/order", "bad row positions");
            if !order.len().is_multiple_of(8) {
                return Err(bad());
            }
            let rows: Option<Vec<usize>> = order
                .chunks(8)
                .map(|b| {
                    let j = u64::from_le_bytes(b.try_into().ok()?) as usize;
                    out.perm.get(j).copied()
                })
                .collect();
            (rows.ok_or_else(bad)?, false)
        } else {
            (Vec::new(), true)
        }
    };

    ctx.progress(0.9, "psi: write output");
    let learns = me == receiver || c.broadcast_result;
    if learns {
        let mut selected = compute(|| mine.table.select_rows(&rows))?;
        selected.write(&mine.output)?;
    }
    let k = if learns { rows.len() as i64 } else { -1 };
    let mut output_paths = std::collections::BTreeMap::new();
    output_paths.insert(receiver.to_string(), c.output_paths[receiver].clone());
    if c.broadcast_result {
        output_paths.insert(sender.to_string(), c.output_paths[sender].clone());
    } else if private {
        output_paths.clear();
    }
    let parties: Vec<String> = ctx.parties.clone();
    let reports = parties
        .iter()
        .filter(|p| c.input_paths.contains_key(*p))
        .map(|p| PsiReport {
            party: p.clone(),
            original_count: count(p),
            intersection_count: if p == receiver || c.broadcast_result { k } else { -1 },
        })
        .collect();
    let result = PsiResult {
        intersection_count: k,
        output_paths,
        psi_protocol: match c.protocol {
            PsiProtocol::KKRT_PSI_2PC => "KKRT_PSI_2PC",
            PsiProtocol::ECDH_PSI_2PC => "ECDH_PSI_2PC",
        }
        .into(),
        reports,
        receiver: receiver.into(),
        parties,
    };
    let mut out = JobOutput::new(&result)?;
    out.private = private;
    if me == receiver {
        for other in ctx.parties.iter().filter(|p| !c.input_paths.contains_key(*p)) {
            ctx.channel.send_json(other, "psi/result", &out.result).await.map_err(|e| ctx.link_error(e))?;
        }
    }
    ctx.progress(1.0, "done");
    Ok(out)
}

/// Read this party's table, encode its keys, refuse missing and duplicate keys.
fn prepare(ctx: &PartyContext, c: &PsiConfig) -> Result<Prepared> {
    let me = ctx.party.as_str();
    let output = ctx.data.resolve(me, &format!("task_config.output_paths.{me}"), &c.output_paths[me])?;
    let path = ctx.data.input(me, &format!("task_config.input_paths.{me}"), &c.input_paths[me])?;
    let table = Table::read(me, &path)?;
    let header = table.header();
    let field = format!("task_config.keys.{me}");
    let mut columns = Vec::new();
    for k in &c.keys[me] {
        if header.kind(k).is_none() {
            return Err(Error::bad_data(me, &field, format!("key column `{k}` is not in {}", path.display())));
        }
        columns.push(table.cats(k)?);
    }
    let n = table.height();
    let mut keys = Vec::with_capacity(n);
    for row in 0..n {
        let mut enc = Vec::new();
        for (col, name) in columns.iter().zip(&c.keys[me]) {
            let v = col[row].as_ref().ok_or_else(|| {
                Error::bad_data(me, &field, format!("key column `{name}` is missing a value at row {}", row + 1))
            })?;
            let label;
            let text = match v {
                Cat::Str(s) => s.as_str(),
                other => {
                    label = other.label();
                    label.as_str()
                }
            };
            enc.extend_from_slice(&(text.len() as u32).to_le_bytes());
            enc.extend_from_slice(text.as_bytes());
        }
        keys.push(enc);
    }
    // Key values per row, kept only when the output is sorted by them.
    let values: Vec<Vec<Cat>> = if c.sort {
        (0..n).map(|row| columns.iter().filter_map(|col| col[row].clone()).collect()).collect()
    } else {
        Vec::new()
    };
    // FxHash: the duplicate check runs over every key; SipHash's flood resistance buys nothing for a party's own data.
    let mut seen: rustc_hash::FxHashMap<&[u8], usize> = rustc_hash::FxHashMap::default();
    seen.reserve(n);
    // The error names rows, never key values: it reaches the peer, which must not learn keys outside the
    // intersection.
    let (mut count, mut shown) = (0usize, Vec::new());
    for (row, k) in keys.iter().enumerate() {
        if let Some(first) = seen.insert(k.as_slice(), row) {
            count += 1;
            if shown.len() < 3 {
                shown.push(format!("row {} repeats row {}", row + 1, first + 1));
            }
        }
    }
    if count > 0 {
        let more = if count > shown.len() { format!(" and {} more", count - shown.len()) } else { String::new() };
        let listed = shown.join(", ");
        return Err(Error::bad_data(me, &field, format!("duplicate keys in {}: {listed}{more}", path.display())));
    }
    Ok(Prepared { table, keys, values, output })
}
