//! Base OT: the "simplest OT" of Chou and Orlandi (LATINCRYPT 2015), on Ristretto255, semi-honest.
//!
//! The sender draws `a` and sends `A = aG`. For each OT `j` the receiver with choice `c_j` draws `b_j` and sends
//! `B_j = b_j G + c_j A`. The sender's two keys are `k0 = H(j, A, B_j, a B_j)` and `k1 = H(j, A, B_j,
//! a (B_j - A))`; the receiver's is `H(j, A, B_j, b_j A)`, equal to `k_{c_j}`. The sender learns nothing
//! about the choices (`B_j` is uniform either way); the receiver cannot compute the other key without solving
//! CDH. Points from the peer are checked to decode (swanky's `read_pt`).

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use rand_chacha::ChaCha20Rng;
use rand_core::Rng;

use crate::context::{PartyContext, compute};
use crate::error::Result;

/// A 32-byte OT key.
pub type Key = [u8; 32];

/// Base OTs per direction of an OT extension (the computational security parameter).
pub const KAPPA: usize = 128;

fn scalar(rng: &mut ChaCha20Rng) -> Scalar {
    let mut wide = [0u8; 64];
    rng.fill_bytes(&mut wide);
    Scalar::from_bytes_mod_order_wide(&wide)
}

fn kdf(j: usize, a: &RistrettoPoint, b: &RistrettoPoint, shared: &RistrettoPoint) -> Key {
    let mut h = blake3::Hasher::new_derive_key("secretflow-operator base-ot v1");
    h.update(&(j as u64).to_le_bytes());
    h.update(a.compress().as_bytes());
    h.update(b.compress().as_bytes());
    h.update(shared.compress().as_bytes());
    *h.finalize().as_bytes()
}

fn decode(ctx: &PartyContext, peer: &str, tag: &str, bytes: &[u8]) -> Result<Vec<RistrettoPoint>> {
    let bad = |message: String| ctx.bad_message(peer, tag, message);
    if !bytes.len().is_multiple_of(32) {
        return Err(bad(format!("{} bytes is not a whole number of points", bytes.len())));
    }
    bytes
        .chunks(32)
        .map(|c| {
            CompressedRistretto::from_slice(c)
                .ok()
                .and_then(|p| p.decompress())
                .ok_or_else(|| bad("a point does not decode".into()))
        })
        .collect()
}

/// Sender of `n` base OTs: returns the key pairs.
pub async fn send(ctx: &PartyContext, peer: &str, n: usize, rng: &mut ChaCha20Rng) -> Result<Vec<[Key; 2]>> {
    let a = scalar(rng);
    let big_a = &a * RISTRETTO_BASEPOINT_TABLE;
    ctx.channel
        .send_bytes(peer, "ot/base/A", big_a.compress().to_bytes().to_vec())
        .await
        .map_err(|e| ctx.link_error(e))?;
    let bytes = ctx.channel.recv_bytes(peer, "ot/base/B").await.map_err(|e| ctx.link_error(e))?;
    let bs = decode(ctx, peer, "ot/base/B", &bytes)?;
    if bs.len() != n {
        return Err(ctx.bad_message(peer, "ot/base/B", format!("expected {n} points, got {}", bs.len())));
    }
    Ok(compute(|| {
        bs.iter()
            .enumerate()
            .map(|(j, b)| [kdf(j, &big_a, b, &(a * b)), kdf(j, &big_a, b, &(a * (b - big_a)))])
            .collect()
    }))
}

/// Receiver of base OTs with `choices`: returns the chosen keys.
pub async fn receive(ctx: &PartyContext, peer: &str, choices: &[bool], rng: &mut ChaCha20Rng) -> Result<Vec<Key>> {
    let bytes = ctx.channel.recv_bytes(peer, "ot/base/A").await.map_err(|e| ctx.link_error(e))?;
    let big_a = decode(ctx, peer, "ot/base/A", &bytes)?
        .pop()
        .filter(|_| bytes.len() == 32)
        .ok_or_else(|| ctx.bad_message(peer, "ot/base/A", "expected one point"))?;
    let bs: Vec<Scalar> = choices.iter().map(|_| scalar(rng)).collect();
    let points: Vec<RistrettoPoint> = compute(|| {
        bs.iter()
            .zip(choices)
            .map(|(b, c)| if *c { b * RISTRETTO_BASEPOINT_TABLE + big_a } else { b * RISTRETTO_BASEPOINT_TABLE })
            .collect()
    });
    let msg: Vec<u8> = points.iter().flat_map(|p| p.compress().to_bytes()).collect();
    ctx.channel.send_bytes(peer, "ot/base/B", msg).await.map_err(|e| ctx.link_error(e))?;
    Ok(compute(|| points.iter().zip(&bs).enumerate().map(|(j, (p, b))| kdf(j, &big_a, p, &(b * big_a))).collect()))
}
