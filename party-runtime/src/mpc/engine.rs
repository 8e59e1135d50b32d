//! The two-party SEMI2K device: additive shares over `Z_2^k`, fixed point, secure products and truncation.
//!
//! A shared value is this party's `Vec<R>`; the two parties' vectors add up (mod `2^k`) to the value. Linear
//! operations are local. Products take their correlated randomness from OT between the two parties (the
//! default, [`Beaver::Ot`]): a product with a party's *plaintext* matrix is one Gilboa product in one direction
//! (the matrix owner sends, the other party chooses with the bits of its share), a product of two shared values
//! is two of them, one per direction, run concurrently. With the insecure [`Beaver::TrustedFirstParty`] (SPU's
//! default, for like-for-like comparison only) the first node deals every correlation ([`super::dealer`]).
//!
//! Truncation by `f` bits is exact up to one unit in the last place for any `|x| < 2^(k-2)`: adding `2^(k-2)`
//! makes the value's top bit zero, so the shares wrap around `2^k` exactly when either share's top bit is set;
//! the product of the two top bits costs one OT with an `f`-bit message. No probabilistic failure, however many
//! products are truncated (SecureML's local truncation fails with probability about `|x| / 2^k` per product).

use std::marker::PhantomData;

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use secretflow_crds::request::{Beaver, SpuRuntime};

use super::ot::{self, OtReceiver, OtSender, Pending};
use super::prg::Words;
use super::ring::Ring;
use crate::context::{PartyContext, compute};
use crate::crypto::os_rng;
use crate::error::{Error, Result};

/// At most this many (OT x message element) pairs go into one round, bounding memory. Rounds of 2^18 keep each
/// buffer (16 bytes per OT) at a few MiB, which the allocator reuses; 2^21 made every round map and fault in
/// fresh pages (about a fifth of the OT extension's time, measured).
const CHUNK: usize = 1 << 18;

/// One party's end of the device.
pub struct Mpc<'a, R: Ring> {
    pub(super) ctx: &'a PartyContext,
    nodes: [String; 2],
    pub(super) me: usize,
    frac: u32,
    pub(super) sender: OtSender,
    pub(super) receiver: OtReceiver,
    pub(super) rng: ChaCha20Rng,
    pub(super) beaver: Beaver,
    /// The trusted-first-party mode's dealer seed (set on first use) and the dealt calls so far.
    pub(super) dealer_seed: Option<[u8; 32]>,
    pub(super) dealt_calls: u64,
    /// The RLWE keys of the linear layers, set up on first use.
    pub(super) he: Option<super::he::HeState>,
    /// FM128's keys for the slot products (FM64 uses `he`), set up on first use.
    pub(super) he_slots: Option<super::he::HeState>,
    _ring: PhantomData<R>,
}

/// `m x p` times `p x q`, row-major, mod `2^k`.
pub fn matmul_local<R: Ring>(a: &[R], b: &[R], m: usize, p: usize, q: usize) -> Vec<R> {
    let mut out = vec![R::ZERO; m * q];
    for (i, row) in out.chunks_exact_mut(q).enumerate() {
        for k in 0..p {
            let x = a[i * p + k];
            for (o, y) in row.iter_mut().zip(&b[k * q..(k + 1) * q]) {
                *o = o.add(x.mul(*y));
            }
        }
    }
    out
}

/// `x + y` elementwise.
pub fn add<R: Ring>(x: &[R], y: &[R]) -> Vec<R> {
    x.iter().zip(y).map(|(a, b)| a.add(*b)).collect()
}

/// `x - y` elementwise.
pub fn sub<R: Ring>(x: &[R], y: &[R]) -> Vec<R> {
    x.iter().zip(y).map(|(a, b)| a.sub(*b)).collect()
}

/// `x * c` for a public ring constant (no truncation).
pub fn scale<R: Ring>(x: &[R], c: R) -> Vec<R> {
    x.iter().map(|a| a.mul(c)).collect()
}

/// The Gilboa sender's vectors for `A (m x p)` times a `p x q` chooser matrix: item `(r, c)` of the chooser's
/// matrix (index `r q + c`) carries column `r` of `A`.
pub(super) fn item_vectors<R: Ring>(a: &[R], m: usize, p: usize, q: usize) -> Vec<R> {
    let at = transpose(a, m, p);
    (0..p * q).flat_map(|i| at[(i / q) * m..(i / q + 1) * m].iter().copied()).collect()
}

fn transpose<R: Ring>(a: &[R], rows: usize, cols: usize) -> Vec<R> {
    let mut out = vec![R::ZERO; a.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = a[r * cols + c];
        }
    }
    out
}

/// `n` ring elements from the ChaCha20 stream of `seed`.
fn expand<R: Ring>(seed: [u8; 32], n: usize) -> Vec<R> {
    let mut rng = ChaCha20Rng::from_seed(seed);
    random(&mut rng, n)
}

pub(super) fn random<R: Ring>(rng: &mut impl Words, n: usize) -> Vec<R> {
    (0..n).map(|_| draw(rng)).collect()
}

/// One uniform ring element.
#[inline]
pub(super) fn draw<R: Ring>(rng: &mut impl Words) -> R {
    let lo = rng.word() as u128;
    if R::BITS > 64 { R::from_u128(lo | (rng.word() as u128) << 64) } else { R::from_u128(lo) }
}

fn ring_bytes<R: Ring>(x: &[R]) -> Vec<u8> {
    let mut out = Vec::with_capacity(x.len() * (R::BITS / 8) as usize);
    for v in x {
        put_ring(&mut out, *v);
    }
    out
}

/// Append `v` as `k / 8` little-endian bytes (the wire form of a ring element).
#[inline]
pub(super) fn put_ring<R: Ring>(out: &mut Vec<u8>, v: R) {
    out.extend_from_slice(&v.to_u128().to_le_bytes()[..(R::BITS / 8) as usize]);
}

/// A ring element from its `k / 8` little-endian bytes.
#[inline]
pub(super) fn ring_from_bytes<R: Ring>(bytes: &[u8]) -> R {
    let mut b = [0u8; 16];
    b[..bytes.len()].copy_from_slice(bytes);
    R::from_u128(u128::from_le_bytes(b))
}

impl<'a, R: Ring> Mpc<'a, R> {
    /// Join the device as `ctx.party`, one of the two SPU nodes, and run the base OTs.
    pub async fn new(ctx: &'a PartyContext, spu: &SpuRuntime) -> Result<Self> {
        if spu.nodes.len() != 2 {
            return Err(Error::Internal(format!("SEMI2K needs exactly 2 nodes, got {}", spu.nodes.len())));
        }
        let nodes = [spu.nodes[0].0.clone(), spu.nodes[1].0.clone()];
        let me = nodes.iter().position(|p| *p == ctx.party).ok_or_else(|| {
            Error::Internal(format!("party `{}` is not an SPU node ({})", ctx.party, nodes.join(", ")))
        })?;
        let mut rng = os_rng()?;
        let peer = nodes[1 - me].clone();
        let (sender, receiver) = ot::setup(ctx, &peer, me == 0, &mut rng).await?;
        Ok(Mpc {
            ctx,
            nodes,
            me,
            frac: spu.fraction_bits,
            sender,
            receiver,
            rng,
            beaver: spu.beaver,
            dealer_seed: None,
            dealt_calls: 0,
            he: None,
            he_slots: None,
            _ring: PhantomData,
        })
    }

    /// This party's node index (0 or 1).
    pub fn me(&self) -> usize {
        self.me
    }

    /// Node `i`'s party name.
    pub fn party(&self, i: usize) -> &str {
        &self.nodes[i]
    }

    /// The node index of `party`, if it is a node.
    pub fn index_of(&self, party: &str) -> Option<usize> {
        self.nodes.iter().position(|p| p == party)
    }

    /// Fixed-point fraction bits.
    pub fn frac(&self) -> u32 {
        self.frac
    }

    /// The triple source in use.
    pub fn beaver(&self) -> Beaver {
        self.beaver
    }

    pub(super) fn peer(&self) -> &str {
        &self.nodes[1 - self.me]
    }

    /// Fixed-point encoding.
    pub fn encode(&self, xs: &[f64]) -> Vec<R> {
        xs.iter().map(|x| R::encode(*x, self.frac)).collect()
    }

    /// Fixed-point decoding.
    pub fn decode(&self, xs: &[R]) -> Vec<f64> {
        xs.iter().map(|x| x.decode(self.frac)).collect()
    }

    /// The public constant `c` as a share (node 0 holds it, node 1 zero).
    pub fn constant(&self, c: R, n: usize) -> Vec<R> {
        vec![if self.me == 0 { c } else { R::ZERO }; n]
    }

    /// `x + c` for a public constant.
    pub fn add_public(&self, x: &[R], c: R) -> Vec<R> {
        if self.me == 0 { x.iter().map(|v| v.add(c)).collect() } else { x.to_vec() }
    }

    pub(super) async fn send(&self, tag: &str, bytes: Vec<u8>) -> Result<()> {
        self.ctx.channel.send_bytes(self.peer(), tag, bytes).await.map_err(|e| self.ctx.link_error(e))
    }

    pub(super) async fn recv(&self, tag: &str, n: usize) -> Result<Vec<u8>> {
        let bytes = self.ctx.channel.recv_bytes(self.peer(), tag).await.map_err(|e| self.ctx.link_error(e))?;
        if bytes.len() != n {
            return Err(self.ctx.bad_message(self.peer(), tag, format!("expected {n} bytes, got {}", bytes.len())));
        }
        Ok(bytes)
    }

    async fn recv_ring(&self, tag: &str, n: usize) -> Result<Vec<R>> {
        let w = (R::BITS / 8) as usize;
        let bytes = self.recv(tag, n * w).await?;
        Ok(bytes.chunks_exact(w).map(ring_from_bytes).collect())
    }

    pub(super) async fn seed_from(&mut self, owner: usize, tag: &str) -> Result<[u8; 32]> {
        if self.me == owner {
            let mut seed = [0u8; 32];
            self.rng.fill_bytes(&mut seed);
            self.send(tag, seed.to_vec()).await?;
            Ok(seed)
        } else {
            let bytes = self.recv(tag, 32).await?;
            let mut seed = [0u8; 32];
            seed.copy_from_slice(&bytes);
            Ok(seed)
        }
    }

    /// Secret-share `n` ring values held by node `owner` (`values` is `Some` there): the owner sends a 32-byte
    /// seed; the other node's share is its stream, the owner's the values minus it.
    pub async fn input(&mut self, owner: usize, values: Option<&[R]>, n: usize) -> Result<Vec<R>> {
        let seed = self.seed_from(owner, "mpc/input").await?;
        let mask: Vec<R> = compute(|| expand(seed, n));
        match (self.me == owner, values) {
            (true, Some(v)) if v.len() == n => Ok(sub(v, &mask)),
            (true, _) => Err(Error::Internal("input: the owner must pass its n values".into())),
            (false, _) => Ok(mask),
        }
    }

    /// Open `x` to node `to` (both when `None`); returns the values where they are opened.
    pub async fn reveal(&mut self, x: &[R], to: Option<usize>) -> Result<Option<Vec<R>>> {
        let other = 1 - self.me;
        if to.is_none() || to == Some(other) {
            self.send("mpc/reveal", ring_bytes(x)).await?;
        }
        if to.is_none() || to == Some(self.me) {
            let theirs = self.recv_ring("mpc/reveal", x.len()).await?;
            return Ok(Some(add(x, &theirs)));
        }
        Ok(None)
    }

    /// Reveal to both and decode.
    pub async fn reveal_f64(&mut self, x: &[R]) -> Result<Vec<f64>> {
        let v = self.reveal(x, None).await?.unwrap_or_default();
        Ok(self.decode(&v))
    }

    /// Divide by `2^f` (floor, at most one unit off), for any shared `|x| < 2^(k-2)`.
    pub async fn trunc(&mut self, x: &[R], f: u32) -> Result<Vec<R>> {
        self.trunc_from(x, R::BITS, f).await
    }

    /// Divide by `2^f` a value shared mod `2^l` (only the low `l` bits of the shares count), for any
    /// `|x| < 2^(l-2)`; the result is shared mod `2^k` (floor, at most one unit off). With `y = x + 2^(l-2)` in
    /// `[0, 2^(l-1))`, the low `l` bits of the two shares wrap around `2^l` exactly when either top bit is set.
    pub async fn trunc_from(&mut self, x: &[R], l: u32, f: u32) -> Result<Vec<R>> {
        let job = self.trunc_start(x, l, f, false).await?;
        self.trunc_finish(job).await
    }

    /// The first half of [`Mpc::trunc_from`]. With `overlap`, node 0 sends its OT corrections and does not wait
    /// for the answer (node 1 answers as soon as they arrive), so the next protocol's first message follows at
    /// once and the two share a round trip; [`Mpc::trunc_finish`] collects the answer. Without it (or in the
    /// dealer mode, or past one OT round) the OT completes here.
    pub(super) async fn trunc_start(&mut self, x: &[R], l: u32, f: u32, overlap: bool) -> Result<TruncJob<R>> {
        let y: Vec<R> = self.add_public(x, R::ONE.shl(l - 2)).iter().map(|v| v.low(l)).collect();
        let m: Vec<R> = y.iter().map(|v| if v.bit(l - 1) { R::ONE } else { R::ZERO }).collect();
        // Shares of m0 * m1 mod 2^(k - l + f); node 0 chooses with its bit, node 1 sends its own.
        let out = R::BITS - (l - f);
        let products = if self.me == 1 {
            Products::Done(self.chunked_send("mpc/trunc", &m, 1, 1, out).await?)
        } else if overlap && !self.dealt(1, out) && m.len() <= CHUNK {
            Products::Pending(self.receiver.gilboa_start(self.ctx, "mpc/trunc", &m, 1, 1, out).await?)
        } else {
            Products::Done(self.chunked_recv("mpc/trunc", &m, 1, 1, out).await?)
        };
        Ok(TruncJob { y, m, l, f, products })
    }

    /// The second half of [`Mpc::trunc_from`].
    pub(super) async fn trunc_finish(&mut self, job: TruncJob<R>) -> Result<Vec<R>> {
        let TruncJob { y, m, l, f, products } = job;
        let s = match products {
            Products::Done(s) => s,
            Products::Pending(p) => self.receiver.gilboa_finish(self.ctx, p).await?,
        };
        let (me, top) = (self.me, l - f);
        let offset = R::ONE.shl(l - 2 - f);
        Ok(compute(|| {
            y.iter()
                .zip(&m)
                .zip(&s)
                .map(|((y, m), s)| {
                    let z = y.shr(f).sub(m.shl(top)).add(s.shl(top));
                    if me == 0 { z.sub(offset) } else { z }
                })
                .collect()
        }))
    }

    /// Whether a Gilboa product takes a dealt correlation instead of OT: in the trusted-first-party mode, for
    /// bit or whole-share choices (the shapes [`Mpc::dealt_gilboa`] covers).
    fn dealt(&self, bits: u32, out: u32) -> bool {
        self.beaver == Beaver::TrustedFirstParty && (bits == 1 || bits >= out)
    }

    /// Gilboa products as the receiver, split into rounds of at most [`CHUNK`] pairs.
    pub(super) async fn chunked_recv(&mut self, tag: &str, a: &[R], per: usize, bits: u32, out: u32) -> Result<Vec<R>> {
        if self.dealt(bits, out) {
            return Ok(self.dealt_gilboa(tag, (&[], a), (1, per), bits, out).await?.1);
        }
        recv_chunks(&mut self.receiver, self.ctx, tag, a, per, bits, out).await
    }

    /// Gilboa products as the sender (`v` has `per` elements per item), matching [`Mpc::chunked_recv`].
    pub(super) async fn chunked_send(&mut self, tag: &str, v: &[R], per: usize, bits: u32, out: u32) -> Result<Vec<R>> {
        if self.dealt(bits, out) {
            return Ok(self.dealt_gilboa(tag, (v, &[]), (per, 1), bits, out).await?.0);
        }
        send_chunks(&mut self.sender, self.ctx, tag, v, per, bits, out).await
    }

    /// Both directions at once, so both halves of the link work: this party sends `v` (`per.0` elements per
    /// item) and chooses with `a` (the peer sending `per.1` per item). Returns (sent, chosen) shares.
    pub(super) async fn gilboa_both(
        &mut self,
        tag: &str,
        (v, a): (&[R], &[R]),
        per: (usize, usize),
        bits: u32,
        out: u32,
    ) -> Result<(Vec<R>, Vec<R>)> {
        if self.dealt(bits, out) {
            return self.dealt_gilboa(tag, (v, a), per, bits, out).await;
        }
        let ctx = self.ctx;
        tokio::try_join!(
            send_chunks(&mut self.sender, ctx, tag, v, per.0, bits, out),
            recv_chunks(&mut self.receiver, ctx, tag, a, per.1, bits, out)
        )
    }

    /// Elementwise product of two shared vectors, not truncated (scale adds up).
    pub async fn mul_raw(&mut self, x: &[R], y: &[R]) -> Result<Vec<R>> {
        if self.beaver == Beaver::TrustedFirstParty {
            return self.mul_dealt(x, y).await;
        }
        if x.len() >= super::he_mul::HE_MUL_MIN {
            return self.mul_slots(x, y).await;
        }
        let k = R::BITS;
        let (s, r) = self.gilboa_both("mpc/mul", (y, x), (1, 1), k, k).await?;
        Ok(compute(|| {
            x.iter().zip(y).zip(s.iter().zip(&r)).map(|((x, y), (s, r))| x.mul(*y).add(*s).add(*r)).collect()
        }))
    }

    /// Elementwise fixed-point product.
    pub async fn mul(&mut self, x: &[R], y: &[R]) -> Result<Vec<R>> {
        let raw = self.mul_raw(x, y).await?;
        self.trunc(&raw, self.frac).await
    }

    /// Shared `m x p` times shared `p x q`, not truncated.
    pub async fn matmul_raw(&mut self, a: &[R], b: &[R], m: usize, p: usize, q: usize) -> Result<Vec<R>> {
        if self.beaver == Beaver::TrustedFirstParty {
            let prod = move |x: &[R], y: &[R]| matmul_local(x, y, m, p, q);
            return self.beaver_dealt(a, b, [m * p, p * q, m * q], prod).await;
        }
        // Item (r, c) of B carries column r of A: the products sum into column c of the result.
        let v = item_vectors(a, m, p, q);
        let k = R::BITS;
        let (s, r) = self.gilboa_both("mpc/matmul", (&v, b), (m, m), k, k).await?;
        let mut out = matmul_local(a, b, m, p, q);
        accumulate(&mut out, &s, m, q);
        accumulate(&mut out, &r, m, q);
        Ok(out)
    }
}

/// A truncation between [`Mpc::trunc_start`] and [`Mpc::trunc_finish`].
pub(super) struct TruncJob<R> {
    y: Vec<R>,
    m: Vec<R>,
    l: u32,
    f: u32,
    products: Products<R>,
}

/// This party's shares of the truncation's bit products, or node 0's OT awaiting its answer.
enum Products<R> {
    Done(Vec<R>),
    Pending(Pending<R>),
}

/// Gilboa products as the receiver, split into rounds of at most [`CHUNK`] pairs.
pub(super) async fn recv_chunks<R: Ring>(
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
pub(super) async fn send_chunks<R: Ring>(
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

/// Sum per-item product vectors (`m` elements for item `(r, c)`, item index `r * q + c`) into column `c`.
pub(super) fn accumulate<R: Ring>(out: &mut [R], parts: &[R], m: usize, q: usize) {
    for (i, part) in parts.chunks_exact(m).enumerate() {
        let c = i % q;
        for (row, v) in part.iter().enumerate() {
            let o = &mut out[row * q + c];
            *o = o.add(*v);
        }
    }
}
