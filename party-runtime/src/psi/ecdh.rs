//! ECDH-PSI on Ristretto255 (Meadows 1986; Huberman-Franklin-Hogg 1999), semi-honest, two parties.
//!
//! Each party hashes its keys to the group (`H(x)`, SHA-512 with a domain tag into `from_uniform_bytes`) and
//! blinds them with a secret scalar. The receiver R (keys `x`, scalar `a`) and the sender S (keys `y`, scalar
//! `b`) then run:
//! 1. `send_m1` (R -> S): `H(x_i)^a` in R's order.
//! 2. `send_m2` (S -> R): `H(y_j)^b` in a secret random order of S's, and `(H(x_i)^a)^b` truncated to
//!    [`TRUNC`] bytes, in R's order.
//! 3. R computes `(H(y_j)^b)^a`, truncates, and finds which of its `x_i` are in the intersection and, for each,
//!    the position `j` in S's shuffled order.
//!
//! What each party learns: R learns the intersection (which of its rows match) and `|Y|`; S learns `|X|`.
//! Neither sees a key, or an unkeyed hash of a key, on the link. With `broadcast_result`, R then tells S the
//! matching positions (S maps them back through its permutation), so S learns the intersection too; that is
//! the job's business, not this protocol's. Collision probability of the truncated comparison is at most
//! `|X| |Y| / 2^(8 TRUNC)`, below 2^-80 at 10^6 x 10^6.

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use rand_core::Rng;
use rayon::prelude::*;
use sha2::{Digest, Sha512};

use super::shuffle;
use super::{ReceiverOutput, SenderOutput};
use crate::context::{PartyContext, compute};
use crate::crypto::os_rng;
use crate::error::{Error, Result};

/// Bytes of the double-blinded points compared by the receiver.
pub const TRUNC: usize = 16;
const DOMAIN: &[u8] = b"secretflow-operator/ecdh-psi/v1/hash-to-ristretto";
const POINT: usize = 32;

/// `H(x)`: a uniformly random-looking group element per key.
fn hash_to_point(key: &[u8]) -> RistrettoPoint {
    let mut h = Sha512::new();
    h.update(DOMAIN);
    h.update((key.len() as u64).to_le_bytes());
    h.update(key);
    let wide: [u8; 64] = h.finalize().into();
    RistrettoPoint::from_uniform_bytes(&wide)
}

/// A fresh secret scalar.
fn secret_scalar() -> Result<Scalar> {
    let mut rng = os_rng()?;
    let mut wide = [0u8; 64];
    rng.fill_bytes(&mut wide);
    Ok(Scalar::from_bytes_mod_order_wide(&wide))
}

/// `H(k)^s` for every key, compressed, concatenated.
fn blind_keys(keys: &[Vec<u8>], s: &Scalar) -> Vec<u8> {
    keys.par_iter().flat_map_iter(|k| (hash_to_point(k) * s).compress().to_bytes()).collect()
}

/// For each key its hashed point `H(k)`, encoded: the unblinded value that must never cross the link (the
/// transcript test looks for it).
pub fn unblinded_points(keys: &[Vec<u8>]) -> Vec<[u8; POINT]> {
    keys.iter().map(|k| hash_to_point(k).compress().to_bytes()).collect()
}

/// Raise every point of `bytes` (concatenated compressed points from `peer`) to `s`; keep `keep` bytes of each.
fn reblind(bytes: &[u8], s: &Scalar, keep: usize, me: &str, peer: &str) -> Result<Vec<u8>> {
    if !bytes.len().is_multiple_of(POINT) {
        return Err(bad(me, peer, format!("{} bytes is not a whole number of points", bytes.len())));
    }
    let out: Option<Vec<Vec<u8>>> = bytes
        .par_chunks(POINT)
        .map(|c| {
            let p = CompressedRistretto::from_slice(c).ok()?.decompress()?;
            Some((p * s).compress().to_bytes()[..keep].to_vec())
        })
        .collect();
    out.map(|v| v.concat()).ok_or_else(|| bad(me, peer, "a point does not decode".into()))
}

fn bad(me: &str, peer: &str, message: String) -> Error {
    Error::Link {
        party: me.into(),
        source: crate::link::LinkError::Decode { peer: peer.into(), tag: "psi/ecdh".into(), message },
    }
}

/// Run as the receiver with `keys` (one encoded key per row).
pub async fn receive(ctx: &PartyContext, peer: &str, keys: &[Vec<u8>]) -> Result<ReceiverOutput> {
    let me = ctx.party.as_str();
    let a = secret_scalar()?;
    let link = |e| ctx.link_error(e);
    // send_m1
    let m1 = compute(|| blind_keys(keys, &a));
    ctx.channel.send_bytes(peer, "psi/ecdh/m1", m1).await.map_err(link)?;
    ctx.progress(0.3, "psi: peer blinds");
    // recv_m2: S's blinded set comes first; re-blind it while S re-blinds ours, then take ours back.
    let theirs = ctx.channel.recv_bytes(peer, "psi/ecdh/m2-theirs").await.map_err(link)?;
    let theirs_ba = compute(|| reblind(&theirs, &a, TRUNC, me, peer))?;
    let mine_ab = ctx.channel.recv_bytes(peer, "psi/ecdh/m2-mine").await.map_err(link)?;
    if mine_ab.len() != keys.len() * TRUNC {
        return Err(bad(me, peer, format!("expected {} double-blinded keys, got {} bytes", keys.len(), mine_ab.len())));
    }
    ctx.progress(0.6, "psi: compare");
    let index: rustc_hash::FxHashMap<&[u8], usize> = theirs_ba.chunks(TRUNC).enumerate().map(|(j, c)| (c, j)).collect();
    let matches = mine_ab.chunks(TRUNC).enumerate().filter_map(|(i, c)| index.get(c).map(|j| (i, *j))).collect();
    Ok(ReceiverOutput { matches, peer_count: theirs.len() / POINT })
}

/// Run as the sender with `keys`.
pub async fn send(ctx: &PartyContext, peer: &str, keys: &[Vec<u8>]) -> Result<SenderOutput> {
    let me = ctx.party.as_str();
    let b = secret_scalar()?;
    let link = |e| ctx.link_error(e);
    let mut perm: Vec<usize> = (0..keys.len()).collect();
    shuffle(&mut perm, &mut os_rng()?);
    let shuffled: Vec<Vec<u8>> = perm.iter().map(|i| keys[*i].clone()).collect();
    let mine = compute(|| blind_keys(&shuffled, &b));
    ctx.channel.send_bytes(peer, "psi/ecdh/m2-theirs", mine).await.map_err(link)?;
    let m1 = ctx.channel.recv_bytes(peer, "psi/ecdh/m1").await.map_err(link)?;
    ctx.progress(0.5, "psi: blind peer keys");
    let ab = compute(|| reblind(&m1, &b, TRUNC, me, peer))?;
    ctx.channel.send_bytes(peer, "psi/ecdh/m2-mine", ab).await.map_err(link)?;
    Ok(SenderOutput { perm, peer_count: m1.len() / POINT })
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    /// Throughput of the two curve-heavy steps (run with `--ignored --nocapture`; not a timed assertion).
    #[test]
    #[ignore]
    fn curve_throughput() {
        let keys: Vec<Vec<u8>> = (0..20_000u32).map(|i| i.to_le_bytes().to_vec()).collect();
        let s = Scalar::from(7u64);
        let t = Instant::now();
        let blinded = blind_keys(&keys, &s);
        eprintln!("hash+blind+compress: {:.0}/s", keys.len() as f64 / t.elapsed().as_secs_f64());
        let t = Instant::now();
        let again = reblind(&blinded, &s, TRUNC, "a", "b").unwrap();
        eprintln!("decompress+blind+compress: {:.0}/s", keys.len() as f64 / t.elapsed().as_secs_f64());
        assert_eq!(again.len(), keys.len() * TRUNC);
        let p = hash_to_point(b"x");
        let t = Instant::now();
        let mut acc = p;
        for _ in 0..5000 {
            acc *= s;
        }
        eprintln!(
            "variable-base mul alone: {:.0}/s ({:?})",
            5000.0 / t.elapsed().as_secs_f64(),
            acc.compress().as_bytes()[0]
        );
    }
}
