//! KKRT-PSI (Kolesnikov, Kumaresan, Rosulek, Trieu, CCS 2016), semi-honest, two parties.
//!
//! The receiver R cuckoo-hashes its keys into `1.27 n + 16` bins with three hash functions and runs the
//! batched OPRF ([`crate::crypto::kkrt`]) as OPRF receiver on the key in each occupied bin (a random dummy per
//! empty bin). The sender S evaluates `F(h_k(y), k, y)` for each of its keys `y` and `k` in 0..3 (one code word
//! per key; the bin index and the hash index inside the output hash separate the three), in a secret random
//! order of its keys, and sends the values truncated to [`VALUE_BYTES`]. R compares them with its own
//! `F(i, k_i, r_i)`, `k_i` the hash function that placed `r_i` in bin `i`: a match at value `3 j + k` means S's
//! shuffled key `j` is in the intersection. A key is never compared in a bin it does not hash to.
//!
//! The hash index is what PSSZ15 and KKRT16 append to the OPRF input (`y || k`): without it, a key of S whose
//! positions coincide (`h_0(y) = h_1(y)`) would give two equal values, and R would learn that of a key outside
//! the intersection. Here it enters the output hash `H(bin, k, row)`, which gives the same separation (R cannot
//! evaluate the OPRF at a key it does not hold, so the three outputs are independent random-oracle values) at
//! no extra code-word cost.
//!
//! What each party learns: R learns which of its rows are in the intersection and `|Y|`; S learns the number
//! of bins (so `|X|` up to the 1.27 factor). The truncated values are pseudo-random to R except where they
//! match; a false match needs a collision of 96-bit values, probability below `3 |X| |Y| 2^-96`.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::cuckoo::{self, HASHES};
use super::{ReceiverOutput, SenderOutput, shuffle};
use crate::context::{PartyContext, compute};
use crate::crypto::{kkrt, os_rng};
use crate::error::{Error, Result};

/// Bytes of each compared OPRF value.
pub const VALUE_BYTES: usize = 12;
/// Cuckoo tables tried before giving up.
const ATTEMPTS: usize = 8;

/// What R tells S before the OPRF.
#[derive(Serialize, Deserialize)]
struct Params {
    seed: [u8; 32],
    bins: usize,
}

/// The key of the value hash, derived once (deriving it per call re-hashes the context string every time).
static VALUE_KEY: std::sync::LazyLock<[u8; 32]> =
    std::sync::LazyLock::new(|| blake3::derive_key("secretflow-operator kkrt-psi value v2", &[]));

/// `H(bin, hash, row)`: keyed BLAKE3 of the 64-byte row under the value key with the bin index and the hash
/// function's index folded in, one compression per value (a distinct key per bin and hash index gives an
/// independent function for each).
fn value(bin: usize, hash: usize, row: &kkrt::Row) -> [u8; VALUE_BYTES] {
    let mut key = *VALUE_KEY;
    for (k, b) in key.iter_mut().zip((bin as u64).to_le_bytes()) {
        *k ^= b;
    }
    key[8] ^= hash as u8;
    let mut block = [0u8; 64];
    for (chunk, w) in block.chunks_exact_mut(8).zip(row) {
        chunk.copy_from_slice(&w.to_le_bytes());
    }
    let mut out = [0u8; VALUE_BYTES];
    out.copy_from_slice(&blake3::keyed_hash(&key, &block).as_bytes()[..VALUE_BYTES]);
    out
}

/// Hashes an OPRF value by its first eight bytes: the values are pseudo-random, so they need no further mixing
/// (SipHash was a tenth of the receiver's time at 10^6).
#[derive(Default)]
struct PrefixHasher(u64);

impl Hasher for PrefixHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut b = [0u8; 8];
        let n = bytes.len().min(8);
        b[..n].copy_from_slice(&bytes[..n]);
        self.0 ^= u64::from_le_bytes(b);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Run as the receiver with `keys`.
pub async fn receive(ctx: &PartyContext, peer: &str, keys: &[Vec<u8>]) -> Result<ReceiverOutput> {
    let mut rng = os_rng()?;
    let bins = cuckoo::bin_count(keys.len());
    let (seed, table) = compute(|| {
        for _ in 0..ATTEMPTS {
            let mut seed = [0u8; 32];
            rand_core::Rng::fill_bytes(&mut rng, &mut seed);
            let pos: Vec<_> = keys.par_iter().map(|k| cuckoo::positions(&seed, k, bins)).collect();
            if let Some(table) = cuckoo::build(&pos, bins) {
                return Ok((seed, table));
            }
        }
        Err(Error::Internal(format!("cuckoo hashing of {} keys failed {ATTEMPTS} times", keys.len())))
    })?;
    ctx.channel.send_json(peer, "psi/kkrt/params", &Params { seed, bins }).await.map_err(|e| ctx.link_error(e))?;
    let inputs: Vec<Vec<u8>> = table
        .iter()
        .map(|slot| match slot {
            Some((i, _)) => keys[*i as usize].clone(),
            None => {
                // A random dummy; encoded keys start with a 4-byte length, which this cannot match in practice.
                let mut d = vec![0xff; 33];
                rand_core::Rng::fill_bytes(&mut rng, &mut d[1..]);
                d
            }
        })
        .collect();
    ctx.progress(0.2, "psi: oprf");
    let t = kkrt::receive(ctx, peer, &inputs, &mut rng).await?;
    let mine: HashMap<[u8; VALUE_BYTES], usize, BuildHasherDefault<PrefixHasher>> = compute(|| {
        // Values in parallel, then one map (a parallel collect into a map merges per-thread maps).
        let pairs: Vec<([u8; VALUE_BYTES], usize)> = table
            .par_iter()
            .enumerate()
            .filter_map(|(b, slot)| slot.map(|(i, k)| (value(b, k as usize, &t[b]), i as usize)))
            .collect();
        let mut map = HashMap::with_capacity_and_hasher(pairs.len(), BuildHasherDefault::default());
        map.extend(pairs);
        map
    });
    ctx.progress(0.6, "psi: compare");
    let theirs = ctx.channel.recv_bytes(peer, "psi/kkrt/values").await.map_err(|e| ctx.link_error(e))?;
    if !theirs.len().is_multiple_of(VALUE_BYTES * HASHES) {
        return Err(ctx.bad_message(peer, "psi/kkrt/values", format!("{} bytes", theirs.len())));
    }
    let mut matches: Vec<(usize, usize)> = theirs
        .chunks_exact(VALUE_BYTES)
        .enumerate()
        .filter_map(|(v, c)| {
            let c: [u8; VALUE_BYTES] = c.try_into().ok()?;
            mine.get(&c).map(|row| (*row, v / HASHES))
        })
        .collect();
    matches.sort_unstable();
    matches.dedup_by_key(|m| m.0);
    Ok(ReceiverOutput { matches, peer_count: theirs.len() / (VALUE_BYTES * HASHES) })
}

/// Run as the sender with `keys`.
pub async fn send(ctx: &PartyContext, peer: &str, keys: &[Vec<u8>]) -> Result<SenderOutput> {
    let mut rng = os_rng()?;
    let params: Params = ctx.channel.recv_json(peer, "psi/kkrt/params").await.map_err(|e| ctx.link_error(e))?;
    if params.bins == 0 || params.bins > (1 << 31) {
        return Err(ctx.bad_message(peer, "psi/kkrt/params", format!("{} bins", params.bins)));
    }
    ctx.progress(0.2, "psi: oprf");
    let oprf = kkrt::send(ctx, peer, params.bins, &mut rng).await?;
    let mut perm: Vec<usize> = (0..keys.len()).collect();
    shuffle(&mut perm, &mut rng);
    ctx.progress(0.6, "psi: evaluate");
    let oprf_ref = &oprf;
    let values: Vec<u8> = compute(|| {
        let mut out = vec![0u8; perm.len() * HASHES * VALUE_BYTES];
        out.par_chunks_mut(HASHES * VALUE_BYTES).zip(perm.par_iter()).for_each(|(dst, i)| {
            let key = &keys[*i];
            let pos = cuckoo::positions(&params.seed, key, params.bins);
            let c = oprf_ref.code(key);
            for (k, d) in dst.chunks_exact_mut(VALUE_BYTES).enumerate() {
                d.copy_from_slice(&value(pos[k], k, &oprf_ref.eval_code(pos[k], &c)));
            }
        });
        out
    });
    ctx.channel.send_bytes(peer, "psi/kkrt/values", values).await.map_err(|e| ctx.link_error(e))?;
    Ok(SenderOutput { perm, peer_count: oprf.len() })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;
    use crate::context::NoProgress;
    use crate::data::DataPolicy;
    use crate::link::memory::MemoryHub;
    use crate::link::{Channel, Recording};

    /// A receiver with few keys (few bins) and a sender with many: many of the sender's keys have two hash
    /// positions in one bin, and still no two of the values it sends are equal; the intersection is right.
    #[tokio::test]
    async fn keys_whose_positions_coincide_send_no_equal_values() {
        let parties: Vec<String> = vec!["alice".into(), "bob".into()];
        let hub = MemoryHub::new(&parties, Duration::from_secs(30));
        let logs = [Arc::new(Mutex::new(Vec::new())), Arc::new(Mutex::new(Vec::new()))];
        let ctx = |i: usize| {
            let link = Recording::new(hub.link(&parties[i]), logs[i].clone());
            let channel = Channel::new(Arc::new(link));
            PartyContext::new(&parties[i], parties.clone(), channel, DataPolicy::default(), Arc::new(NoProgress))
        };
        let (alice, bob) = (ctx(0), ctx(1));
        let mine: Vec<Vec<u8>> = (0..20u32).map(|i| (i * 7).to_le_bytes().to_vec()).collect();
        let theirs: Vec<Vec<u8>> = (0..3000u32).map(|i| i.to_le_bytes().to_vec()).collect();
        let (r, s) = tokio::join!(receive(&alice, "bob", &mine), send(&bob, "alice", &theirs));
        let (r, s) = (r.expect("receiver"), s.expect("sender"));
        let found: Vec<u32> = r.matches.iter().map(|(row, _)| *row as u32).collect();
        assert_eq!(found, (0..20).collect::<Vec<_>>(), "every receiver key (0, 7, .. 133) is a sender key");
        for (row, v) in &r.matches {
            assert_eq!(theirs[s.perm[*v]], mine[*row], "row {row}");
        }
        // The parameters alice sent first; how many of bob's keys have coinciding positions under them.
        let sent_by_alice = logs[0].lock().expect("lock").clone();
        let params: Params = serde_json::Deserializer::from_slice(&sent_by_alice)
            .into_iter()
            .next()
            .expect("params")
            .expect("params json");
        let coinciding = theirs
            .iter()
            .filter(|k| {
                let p = cuckoo::positions(&params.seed, k, params.bins);
                p[0] == p[1] || p[1] == p[2] || p[0] == p[2]
            })
            .count();
        assert!(coinciding > 50, "{coinciding} keys with coinciding positions in {} bins", params.bins);
        // Bob's last message is the values: all distinct.
        let sent_by_bob = logs[1].lock().expect("lock").clone();
        let values = &sent_by_bob[sent_by_bob.len() - theirs.len() * HASHES * VALUE_BYTES..];
        let distinct: std::collections::HashSet<&[u8]> = values.chunks_exact(VALUE_BYTES).collect();
        assert_eq!(distinct.len(), theirs.len() * HASHES, "equal values reveal coinciding positions");
    }
}
