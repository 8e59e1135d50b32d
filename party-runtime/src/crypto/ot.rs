//! Correlated OT extension and arithmetic OT, the source of every secure product in the engine.
//!
//! Extension is SoftSpokenOT ([`super::softspoken`]) on [`KAPPA`] = 128 base OTs (Chou-Orlandi,
//! [`super::base_ot`]) run once per direction per session. The extension *receiver* picks its choice
//! bits `c_i` freely; the sender holds a secret `Δ` and afterwards row `i` satisfies `q_i = t_i ^ c_i Δ` (IKNP's
//! correlation, at a quarter of IKNP's traffic). The leaf streams continue across calls, so one base-OT set serves
//! the session.
//!
//! Arithmetic OT (Gilboa, CRYPTO 1999, with vector messages as in SecureML's OT-based triples): the sender has a
//! vector `x_i` per OT, the receiver its choice `c_i`; the sender keeps `s_i = -H(q_i)` and sends
//! `τ_i = H(q_i) - H(q_i ^ Δ) + x_i`, the receiver computes `r_i = H(t_i) + c_i τ_i`, so `s_i + r_i = c_i x_i`.
//! Each message element is sent in only the bits its use needs (`width`). `H` is the tweakable
//! correlation-robust hash `π(π(x) ^ tweak) ^ π(x)` of Guo, Katz, Wang, Yu (S&P 2020) over fixed-key AES, the
//! tweak being the OT's global index and the output block number.
//!
//! Semi-honest security: the sender sees the corrections `u_j ^ c`, masked by the stream of the leaf it lacks;
//! the receiver sees `τ_i`, masked by `H(q_i ^ Δ)` (for `c_i = 0`) or `H(q_i)` (for `c_i = 1`),
//! values it cannot compute without `Δ`.

use aes::Aes128;
use aes::cipher::{BlockCipherEncrypt, KeyInit};
use rand_chacha::ChaCha20Rng;
use rand_core::Rng;
use rayon::prelude::*;

use super::base_ot::{self, KAPPA};
use super::bits::{bytes, columns_to_rows128, min_tasks, words};
use super::softspoken::{Prover, Verifier};
use crate::context::{PartyContext, compute};
use crate::error::Result;
use crate::ring::{BitReader, BitWriter, Ring};

/// The fixed AES key of the hash (any public constant works; this is the first 16 bytes of pi's fraction).
const HASH_KEY: [u8; 16] = *b"\x24\x3f\x6a\x88\x85\xa3\x08\xd3\x13\x19\x8a\x2e\x03\x70\x73\x44";

fn fixed_aes() -> Aes128 {
    Aes128::new(&HASH_KEY.into())
}

/// Output blocks hashed per rayon task (inputs are grouped to about this many, encrypted in one call).
const HASH_TASK_BLOCKS: usize = 4096;

/// The hash for one task's inputs: `π(π(x_j) ^ (index_j, c)) ^ π(x_j)` for each input `x_j` and output block
/// `c < nblocks`, input after input, with `index_j` the OT index of input `j` (`index(j)`).
fn tccr(aes: &Aes128, xs: impl Iterator<Item = u128>, index: impl Fn(usize) -> u64, nblocks: usize) -> Vec<u128> {
    let block = |x: u128| aes::Block::from(x.to_le_bytes());
    let mut pis: Vec<aes::Block> = xs.map(block).collect();
    aes.encrypt_blocks(&mut pis);
    let pis: Vec<u128> = pis.iter().map(|b| u128::from_le_bytes((*b).into())).collect();
    let mut buf: Vec<aes::Block> = Vec::with_capacity(pis.len() * nblocks);
    for (j, pi) in pis.iter().enumerate() {
        let tweak = (index(j) as u128) << 64;
        buf.extend((0..nblocks).map(|c| block(pi ^ tweak ^ c as u128)));
    }
    aes.encrypt_blocks(&mut buf);
    buf.iter().enumerate().map(|(k, h)| u128::from_le_bytes((*h).into()) ^ pis[k / nblocks]).collect()
}

/// `H(index_i, x_i)` as `per` ring elements per input, laid out input after input: output block `c` of input
/// `i` is `π(π(x_i) ^ (index_i, c)) ^ π(x_i)`, split into ring elements from the low bits up.
fn hash_elements<R: Ring>(aes: &Aes128, xs: &[u128], first_index: u64, per: usize) -> Vec<R> {
    let per_block = (128 / R::BITS) as usize;
    let nblocks = per.div_ceil(per_block);
    let mut out = vec![R::ZERO; xs.len() * per];
    if per == 0 {
        return out;
    }
    let inputs = (HASH_TASK_BLOCKS / nblocks).max(1);
    let min = min_tasks(xs.len().div_ceil(inputs), xs.len() * nblocks);
    let tasks = out.par_chunks_mut(per * inputs).zip(xs.par_chunks(inputs)).with_min_len(min);
    tasks.enumerate().for_each(|(task, (dst, xs))| {
        let first = first_index + (task * inputs) as u64;
        let hs = tccr(aes, xs.iter().copied(), |j| first + j as u64, nblocks);
        for (dst, hs) in dst.chunks_mut(per).zip(hs.chunks(nblocks)) {
            for (d, h) in dst.chunks_mut(per_block).zip(hs) {
                for (e, v) in d.iter_mut().enumerate() {
                    *v = R::from_u128(h >> (e as u32 * R::BITS));
                }
            }
        }
    });
    out
}

/// Both 64-bit pads of each row, `(H(q_i), H(q_i ^ Δ))`: [`hash_elements`] with one element per input, for
/// `q` and `q ^ Δ` in one pass (no buffer of the rows XOR `Δ`, none per pad, none to pair them up).
fn pad_pairs(aes: &Aes128, q: &[u128], delta: u128, first_index: u64) -> Vec<[u64; 2]> {
    let mut out = vec![[0u64; 2]; q.len()];
    let inputs = HASH_TASK_BLOCKS / 2;
    let min = min_tasks(q.len().div_ceil(inputs), 2 * q.len());
    let tasks = out.par_chunks_mut(inputs).zip(q.par_chunks(inputs)).with_min_len(min);
    tasks.enumerate().for_each(|(task, (dst, qs))| {
        let first = first_index + (task * inputs) as u64;
        let hs = tccr(aes, qs.iter().flat_map(|x| [*x, x ^ delta]), |j| first + (j / 2) as u64, 1);
        for (d, h) in dst.iter_mut().zip(hs.chunks_exact(2)) {
            *d = [h[0] as u64, h[1] as u64];
        }
    });
    out
}

/// The extension sender towards the peer: `Δ` and the column generators of the keys it chose.
pub struct OtSender {
    peer: String,
    aes: Aes128,
    vole: Verifier,
    index: u64,
}

/// A receiver's Gilboa product between [`OtReceiver::gilboa_start`] and [`OtReceiver::gilboa_finish`]: its
/// choices, shape and row hashes.
pub struct Pending<R> {
    a: Vec<R>,
    per: usize,
    tb: usize,
    out_bits: u32,
    h: Vec<R>,
    tag: String,
}

/// The extension receiver from the peer: the column generators of both keys.
pub struct OtReceiver {
    peer: String,
    aes: Aes128,
    vole: Prover,
    index: u64,
}

/// Run the base OTs in both directions (the party with `first` set acts as base-OT sender first) and exchange
/// the punctured trees built on them.
pub async fn setup(
    ctx: &PartyContext,
    peer: &str,
    first: bool,
    rng: &mut ChaCha20Rng,
) -> Result<(OtSender, OtReceiver)> {
    let delta = ((rng.next_u64() as u128) << 64) | rng.next_u64() as u128;
    let choices: Vec<bool> = (0..KAPPA).map(|j| (delta >> j) & 1 == 1).collect();
    let (pairs, chosen) = if first {
        let pairs = base_ot::send(ctx, peer, KAPPA, rng).await?;
        (pairs, base_ot::receive(ctx, peer, &choices, rng).await?)
    } else {
        let chosen = base_ot::receive(ctx, peer, &choices, rng).await?;
        (base_ot::send(ctx, peer, KAPPA, rng).await?, chosen)
    };
    let (prover, tree) = Prover::deal(&pairs, rng);
    ctx.channel.send_bytes(peer, "ot/tree", tree).await.map_err(|e| ctx.link_error(e))?;
    let tree = ctx.channel.recv_bytes(peer, "ot/tree").await.map_err(|e| ctx.link_error(e))?;
    let verifier = Verifier::punctured(delta, &chosen, &tree).map_err(|m| ctx.bad_message(peer, "ot/tree", m))?;
    let sender = OtSender { peer: peer.to_string(), aes: fixed_aes(), vole: verifier, index: 0 };
    let receiver = OtReceiver { peer: peer.to_string(), aes: fixed_aes(), vole: prover, index: 0 };
    Ok((sender, receiver))
}

/// How many OTs a Gilboa product needs per item: one per choice bit below the output width.
fn ots_per_item(choice_bits: u32, out_bits: u32) -> usize {
    choice_bits.min(out_bits) as usize
}

impl OtSender {
    /// `n` extended OTs: reads the receiver's corrections (`{tag}/u`) and returns the rows `q_i` with the
    /// global index of the first.
    async fn extend_rows(&mut self, ctx: &PartyContext, tag: &str, n: usize) -> Result<(Vec<u128>, u64)> {
        let col_words = n.div_ceil(64);
        let utag = format!("{tag}/u");
        let u = ctx.channel.recv_bytes(&self.peer, &utag).await.map_err(|e| ctx.link_error(e))?;
        let expected = Verifier::correction_words(col_words) * 8;
        if u.len() != expected {
            let msg = format!("expected {expected} bytes for {n} OTs, got {}", u.len());
            return Err(ctx.bad_message(&self.peer, &utag, msg));
        }
        let first = self.index;
        self.index += n as u64;
        let q = compute(|| {
            let q = self.vole.extend(&words(&u), col_words);
            columns_to_rows128(q, col_words, n)
        });
        Ok((q, first))
    }

    /// Both pads of rows `q` (OT indices from `first`): `H(q_i)` and `H(q_i ^ Δ)`, `per` ring elements each.
    fn both_pads<R: Ring>(&self, q: &[u128], first: u64, per: usize) -> (Vec<R>, Vec<R>) {
        let delta = self.vole.delta();
        let q1: Vec<u128> = q.iter().map(|r| r ^ delta).collect();
        (hash_elements(&self.aes, q, first, per), hash_elements(&self.aes, &q1, first, per))
    }

    /// Random OTs towards a receiver choosing with `n` bits: both 64-bit pads `(H(q_i), H(q_i ^ Δ))` of each;
    /// the receiver learns the one its bit selects.
    pub async fn random_pads(&mut self, ctx: &PartyContext, tag: &str, n: usize) -> Result<Vec<[u64; 2]>> {
        let (q, first) = self.extend_rows(ctx, tag, n).await?;
        Ok(compute(|| pad_pairs(&self.aes, &q, self.vole.delta(), first)))
    }

    /// [`OtSender::random_pads`] with pads of `words` 64-bit words each (OT `i`'s at `i * words`): both pad
    /// vectors, for choice 0 and for choice 1.
    pub async fn random_pads_wide(
        &mut self,
        ctx: &PartyContext,
        tag: &str,
        n: usize,
        words: usize,
    ) -> Result<(Vec<u64>, Vec<u64>)> {
        let (q, first) = self.extend_rows(ctx, tag, n).await?;
        Ok(compute(|| self.both_pads::<u64>(&q, first, words)))
    }

    /// Sender's side of Gilboa products `a_i * v_i mod 2^out_bits` for every item `i`: the receiver holds `a_i`
    /// (its low `choice_bits` bits), this party the vectors `v` (`per` elements per item, item after item).
    /// One OT per item and choice bit `t`, carrying `v_i` in `out_bits - t` bits. Returns this party's shares.
    pub async fn gilboa<R: Ring>(
        &mut self,
        ctx: &PartyContext,
        tag: &str,
        v: &[R],
        per: usize,
        choice_bits: u32,
        out_bits: u32,
    ) -> Result<Vec<R>> {
        let items = v.len().checked_div(per).unwrap_or(0);
        let tb = ots_per_item(choice_bits, out_bits);
        let n = items * tb;
        let (q, first) = self.extend_rows(ctx, tag, n).await?;
        let (shares, tau) = compute(|| {
            let (h0, h1) = self.both_pads::<R>(&q, first, per);
            // Shares in parallel; then tau = H(q) - H(q ^ Δ) + v, packed (OT j = item * tb + t).
            let mut shares = vec![R::ZERO; items * per];
            let span = tb * per;
            let min = min_tasks(items, items * span);
            shares.par_chunks_mut(per.max(1)).zip(h0.par_chunks(span.max(1))).with_min_len(min).for_each(|(si, hi)| {
                for (t, ht) in hi.chunks_exact(per).enumerate() {
                    for (s, a) in si.iter_mut().zip(ht) {
                        *s = s.sub(a.shl(t as u32));
                    }
                }
            });
            let bits: usize = (0..tb).map(|t| (out_bits as usize - t) * per).sum::<usize>() * items;
            let mut out = BitWriter::with_capacity(bits);
            for (i, vi) in v.chunks_exact(per.max(1)).enumerate() {
                for t in 0..tb {
                    let w = out_bits - t as u32;
                    let at = (i * tb + t) * per;
                    for ((x, a), b) in vi.iter().zip(&h0[at..at + per]).zip(&h1[at..at + per]) {
                        out.put(a.sub(*b).add(*x).to_u128(), w);
                    }
                }
            }
            (shares, out.finish())
        });
        ctx.channel.send_bytes(&self.peer, &format!("{tag}/tau"), tau).await.map_err(|e| ctx.link_error(e))?;
        Ok(shares)
    }
}

impl OtReceiver {
    /// `n` extended OTs with the choice bits packed in `c_words`: sends the corrections (`{tag}/u`) and returns
    /// the rows `t_i` with the global index of the first.
    async fn extend_rows(
        &mut self,
        ctx: &PartyContext,
        tag: &str,
        c_words: &[u64],
        n: usize,
    ) -> Result<(Vec<u128>, u64)> {
        let first = self.index;
        self.index += n as u64;
        let (u, t) = compute(|| {
            let (corrections, t) = self.vole.extend(c_words);
            (bytes(corrections), columns_to_rows128(t, c_words.len(), n))
        });
        ctx.channel.send_bytes(&self.peer, &format!("{tag}/u"), u).await.map_err(|e| ctx.link_error(e))?;
        Ok((t, first))
    }

    /// Receiver's side of [`OtSender::random_pads`]: the pad `H(t_i)` its choice bit selects, for each bit of
    /// `choices` (bit `i` of the packed words is choice `i`; `n` of them).
    pub async fn random_pads(&mut self, ctx: &PartyContext, tag: &str, choices: &[u64], n: usize) -> Result<Vec<u64>> {
        let (t, first) = self.extend_rows(ctx, tag, choices, n).await?;
        Ok(compute(|| hash_elements(&self.aes, &t, first, 1)))
    }

    /// Receiver's side of [`OtSender::random_pads_wide`]: the chosen pad of `words` words per OT.
    pub async fn random_pads_wide(
        &mut self,
        ctx: &PartyContext,
        tag: &str,
        choices: &[u64],
        n: usize,
        words: usize,
    ) -> Result<Vec<u64>> {
        let (t, first) = self.extend_rows(ctx, tag, choices, n).await?;
        Ok(compute(|| hash_elements(&self.aes, &t, first, words)))
    }

    /// Receiver's side of [`OtSender::gilboa`] with this party's values `a`: returns its shares.
    pub async fn gilboa<R: Ring>(
        &mut self,
        ctx: &PartyContext,
        tag: &str,
        a: &[R],
        per: usize,
        choice_bits: u32,
        out_bits: u32,
    ) -> Result<Vec<R>> {
        let pending = self.gilboa_start(ctx, tag, a, per, choice_bits, out_bits).await?;
        self.gilboa_finish(ctx, pending).await
    }

    /// The first half of [`OtReceiver::gilboa`]: extend, send the corrections and hash the rows, so the next
    /// round's can go out before this one's messages arrive.
    pub async fn gilboa_start<R: Ring>(
        &mut self,
        ctx: &PartyContext,
        tag: &str,
        a: &[R],
        per: usize,
        choice_bits: u32,
        out_bits: u32,
    ) -> Result<Pending<R>> {
        let tb = ots_per_item(choice_bits, out_bits);
        let n = a.len() * tb;
        let mut c_words = vec![0u64; n.div_ceil(64)];
        for (i, x) in a.iter().enumerate() {
            for t in 0..tb {
                let j = i * tb + t;
                c_words[j / 64] |= (x.bit(t as u32) as u64) << (j % 64);
            }
        }
        let (t, first) = self.extend_rows(ctx, tag, &c_words, n).await?;
        let h = compute(|| hash_elements(&self.aes, &t, first, per));
        Ok(Pending { a: a.to_vec(), per, tb, out_bits, h, tag: format!("{tag}/tau") })
    }

    /// The second half of [`OtReceiver::gilboa`]: the sender's messages for a started product, and the shares.
    pub async fn gilboa_finish<R: Ring>(&self, ctx: &PartyContext, p: Pending<R>) -> Result<Vec<R>> {
        let Pending { a, per, tb, out_bits, h, tag } = p;
        let tau = ctx.channel.recv_bytes(&self.peer, &tag).await.map_err(|e| ctx.link_error(e))?;
        let expected = ((0..tb).map(|t| (out_bits as usize - t) * per).sum::<usize>() * a.len()).div_ceil(8);
        if tau.len() != expected {
            return Err(ctx.bad_message(&self.peer, &tag, format!("expected {expected} bytes, got {}", tau.len())));
        }
        Ok(compute(|| {
            let mut reader = BitReader::new(&tau);
            let mut out = vec![R::ZERO; a.len() * per];
            for (i, (x, oi)) in a.iter().zip(out.chunks_exact_mut(per.max(1))).enumerate() {
                for t in 0..tb as u32 {
                    let (c, w) = (x.bit(t), out_bits - t);
                    let at = (i * tb + t as usize) * per;
                    for (o, hv) in oi.iter_mut().zip(&h[at..at + per]) {
                        let tv = R::from_u128(reader.get(w).unwrap_or(0));
                        let r = if c { hv.add(tv) } else { *hv };
                        *o = o.add(r.shl(t));
                    }
                }
            }
            out
        }))
    }
}

/// At most this many (OT x message element) pairs go into one round, bounding memory. Rounds of 2^18 keep each
/// buffer (16 bytes per OT) at a few MiB, which the allocator reuses; 2^21 made every round map and fault in
/// fresh pages (about a fifth of the OT extension's time, measured).
pub const CHUNK: usize = 1 << 18;

/// Gilboa products as the receiver, split into rounds of at most [`CHUNK`] pairs.
pub async fn recv_chunks<R: Ring>(
    receiver: &mut OtReceiver,
    ctx: &PartyContext,
    tag: &str,
    a: &[R],
    per: usize,
    bits: u32,
    out: u32,
) -> Result<Vec<R>> {
    let step = (CHUNK / (bits.min(out) as usize * per).max(1)).max(1);
    let mut res = Vec::with_capacity(a.len() * per);
    // One round ahead: the next round's corrections go out before this round's messages are awaited, so the
    // sender computes one round while this party extends the next.
    let mut pending = None;
    for chunk in a.chunks(step) {
        let next = receiver.gilboa_start(ctx, tag, chunk, per, bits, out).await?;
        if let Some(p) = pending.replace(next) {
            res.extend(receiver.gilboa_finish(ctx, p).await?);
        }
    }
    if let Some(p) = pending {
        res.extend(receiver.gilboa_finish(ctx, p).await?);
    }
    Ok(res)
}

/// Gilboa products as the sender (`v` has `per` elements per item), matching [`recv_chunks`].
pub async fn send_chunks<R: Ring>(
    sender: &mut OtSender,
    ctx: &PartyContext,
    tag: &str,
    v: &[R],
    per: usize,
    bits: u32,
    out: u32,
) -> Result<Vec<R>> {
    let step = (CHUNK / (bits.min(out) as usize * per).max(1)).max(1);
    let mut res = Vec::with_capacity(v.len());
    for chunk in v.chunks(step * per) {
        res.extend(sender.gilboa(ctx, tag, chunk, per, bits, out).await?);
    }
    Ok(res)
}
