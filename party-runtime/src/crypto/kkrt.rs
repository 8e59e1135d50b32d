//! The KKRT16 batched, related-key OPRF (Kolesnikov, Kumaresan, Rosulek, Trieu, "Efficient Batched Oblivious
//! PRF with Applications to Private Set Intersection", CCS 2016), semi-honest, over IKNP-style OT extension.
//!
//! The OPRF receiver has one input `r_i` per row `i` of `m`. With [`WIDTH`] base OTs in which the OPRF sender is
//! the base-OT *receiver* (choice bits `s`), the receiver sends, for every column `j`,
//! `u_j = G(k0_j) ^ G(k1_j) ^ c_j`, where row `i` of the code matrix `C` is the pseudo-random code word
//! `C(r_i)` (keyed BLAKE3, [`WIDTH`] bits, keyed by a seed the sender draws) and `G` is ChaCha20. The receiver
//! keeps `t_j = G(k0_j)`; the sender computes `q_j = G(k_{s_j}) ^ s_j u_j = t_j ^ s_j c_j`. Row-wise,
//! `q_i = t_i ^ (C(r_i) & s)`, so `q_i ^ (C(x) & s) = t_i` exactly when `x = r_i`, and otherwise differs in
//! about half of the bits where `s` is set. Hashed with the row index (`F(i, x) = H(i, q_i ^ (C(x) & s))`),
//! this is a PRF the sender can evaluate anywhere and the receiver only at its own input.
//!
//! What each party learns: the sender learns nothing about the receiver's inputs (`u_j` is masked by
//! `G(k1_j)`, which it never sees when `s_j = 0`, and by `G(k0_j)` when `s_j = 1`); the receiver learns its own
//! outputs only. [`WIDTH`] = 512 exceeds the 424-bit code the paper gives for 128-bit security.

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use rayon::prelude::*;

use super::base_ot;
use super::bits::{bytes, columns_to_rows, rows_to_columns, words};
use crate::context::{PartyContext, compute};
use crate::error::Result;

/// Code width in bits (base OTs).
pub const WIDTH: usize = 512;
/// Code width in 64-bit words.
pub const WORDS: usize = WIDTH / 64;

/// A row of the OT-extension matrices.
pub type Row = [u64; WORDS];

/// The pseudo-random code word of `x`.
pub fn code(key: &[u8; 32], x: &[u8]) -> Row {
    let mut out = [0u8; WIDTH / 8];
    blake3::Hasher::new_keyed(key).update(x).finalize_xof().fill(&mut out);
    let w = words(&out);
    let mut row = [0u64; WORDS];
    row.copy_from_slice(&w);
    row
}

/// `G(seed)`, written into `out` (little-endian words of the ChaCha20 stream).
fn prg_into(seed: &[u8; 32], out: &mut [u64]) {
    let mut rng = ChaCha20Rng::from_seed(*seed);
    for w in out.iter_mut() {
        *w = rng.next_u64();
    }
}

fn to_rows(flat: Vec<u64>) -> Vec<Row> {
    flat.chunks_exact(WORDS)
        .map(|c| {
            let mut r = [0u64; WORDS];
            r.copy_from_slice(c);
            r
        })
        .collect()
}

/// OPRF receiver: returns `t_i` for each input (the receiver's output is `H(i, t_i)`).
pub async fn receive(ctx: &PartyContext, peer: &str, inputs: &[Vec<u8>], rng: &mut ChaCha20Rng) -> Result<Vec<Row>> {
    let m = inputs.len();
    let col_words = m.div_ceil(64);
    let key_bytes = ctx.channel.recv_bytes(peer, "oprf/code-key").await.map_err(|e| ctx.link_error(e))?;
    let key: [u8; 32] =
        key_bytes.as_slice().try_into().map_err(|_| ctx.bad_message(peer, "oprf/code-key", "expected 32 bytes"))?;
    let seeds = base_ot::send(ctx, peer, WIDTH, rng).await?;
    let (u, t) = compute(|| {
        // Written in place, row by row and column by column: no per-element iterator flattening or copies.
        let mut c_rows = vec![0u64; m * WORDS];
        c_rows.par_chunks_mut(WORDS).zip(inputs.par_iter()).for_each(|(dst, x)| dst.copy_from_slice(&code(&key, x)));
        let c_cols = rows_to_columns(&c_rows, m, WIDTH);
        drop(c_rows);
        let mut u = vec![0u64; WIDTH * col_words];
        let mut t = vec![0u64; WIDTH * col_words];
        u.par_chunks_mut(col_words).zip(t.par_chunks_mut(col_words)).enumerate().for_each(|(j, (uj, tj))| {
            prg_into(&seeds[j][0], tj);
            prg_into(&seeds[j][1], uj);
            let c = &c_cols[j * col_words..(j + 1) * col_words];
            for ((u, t), c) in uj.iter_mut().zip(tj.iter()).zip(c) {
                *u ^= t ^ c;
            }
        });
        (bytes(&u), columns_to_rows(&t, WIDTH, col_words, m))
    });
    ctx.channel.send_bytes(peer, "oprf/u", u).await.map_err(|e| ctx.link_error(e))?;
    Ok(to_rows(t))
}

/// The OPRF sender's key material: evaluates `q_i ^ (C(x) & s)` for any row `i` and input `x`.
pub struct OprfSender {
    q: Vec<Row>,
    s: Row,
    code_key: [u8; 32],
}

impl OprfSender {
    /// The code word of `x` (compute once, evaluate at several rows with [`OprfSender::eval_code`]).
    pub fn code(&self, x: &[u8]) -> Row {
        code(&self.code_key, x)
    }

    /// The pre-hash value of `F(i, x)` given `c = C(x)`.
    pub fn eval_code(&self, i: usize, c: &Row) -> Row {
        let mut out = self.q[i];
        for w in 0..WORDS {
            out[w] ^= c[w] & self.s[w];
        }
        out
    }

    /// Rows.
    pub fn len(&self) -> usize {
        self.q.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.q.is_empty()
    }
}

/// OPRF sender for `m` receiver inputs.
pub async fn send(ctx: &PartyContext, peer: &str, m: usize, rng: &mut ChaCha20Rng) -> Result<OprfSender> {
    let col_words = m.div_ceil(64);
    let mut code_key = [0u8; 32];
    rng.fill_bytes(&mut code_key);
    ctx.channel.send_bytes(peer, "oprf/code-key", code_key.to_vec()).await.map_err(|e| ctx.link_error(e))?;
    let mut s = [0u64; WORDS];
    for w in s.iter_mut() {
        *w = rng.next_u64();
    }
    let choices: Vec<bool> = (0..WIDTH).map(|j| (s[j / 64] >> (j % 64)) & 1 == 1).collect();
    let keys = base_ot::receive(ctx, peer, &choices, rng).await?;
    let u = ctx.channel.recv_bytes(peer, "oprf/u").await.map_err(|e| ctx.link_error(e))?;
    if u.len() != WIDTH * col_words * 8 {
        return Err(ctx.bad_message(
            peer,
            "oprf/u",
            format!("expected {} bytes for {m} rows, got {}", WIDTH * col_words * 8, u.len()),
        ));
    }
    let q = compute(|| {
        let u = words(&u);
        let mut q = vec![0u64; WIDTH * col_words];
        q.par_chunks_mut(col_words).enumerate().for_each(|(j, qj)| {
            prg_into(&keys[j], qj);
            if choices[j] {
                for (q, u) in qj.iter_mut().zip(&u[j * col_words..(j + 1) * col_words]) {
                    *q ^= u;
                }
            }
        });
        to_rows(columns_to_rows(&q, WIDTH, col_words, m))
    });
    Ok(OprfSender { q, s, code_key })
}
