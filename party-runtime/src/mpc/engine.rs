//! The two-party backend: additive shares over `Z_2^k`, secure products and truncation.
//!
//! A shared value is this party's `Vec<R>` (its one component of a [`super::Share`]; [`super::two_party`]
//! puts these methods behind the protocol interface); the two parties' vectors add up (mod `2^k`) to the
//! value. Linear operations are local ([`super::local`]). Products take their correlated randomness from the device's
//! [`Backend`], chosen once in [`Mpc::new`]: with the secure backend (the default) a product with a party's
//! *plaintext* matrix is one Gilboa product in one direction (the matrix owner sends, the other party chooses
//! with the bits of its share) or an RLWE product ([`super::he`]), and a product of two shared values is two
//! Gilboa products, one per direction, run concurrently, or a slot product ([`super::he_mul`]) for long vectors.
//! With the insecure trusted-first-party backend (SPU's default, for like-for-like comparison only) the first
//! node deals every correlation ([`super::dealer`]).
//!
//! Truncation by `f` bits is exact up to one unit in the last place for any `|x| < 2^(k-2)`: adding `2^(k-2)`
//! makes the value's top bit zero, so the shares wrap around `2^k` exactly when either share's top bit is set;
//! the product of the two top bits costs one OT with an `f`-bit message. No probabilistic failure, however many
//! products are truncated (SecureML's local truncation fails with probability about `|x| / 2^k` per product).

use std::marker::PhantomData;

use rand_chacha::ChaCha20Rng;
use rand_core::Rng;
use secretflow_crds::request::SpuRuntime;

use super::backend::{Backend, Keys};
use super::local::{accumulate, item_vectors, matmul_local};
use super::peer::Peer;
use crate::context::{PartyContext, compute};
use crate::crypto::os_rng;
use crate::crypto::ot::{self, CHUNK, OtReceiver, OtSender, Pending, recv_chunks, send_chunks};
use crate::error::{Error, Result};
use crate::ring::Ring;

/// One party's end of the device.
pub struct Mpc<'a, R: Ring> {
    pub(super) ctx: &'a PartyContext,
    nodes: [String; 2],
    frac: u32,
    /// The other node, through which every message goes.
    pub(super) link: Peer<'a>,
    pub(super) sender: OtSender,
    pub(super) receiver: OtReceiver,
    pub(super) rng: ChaCha20Rng,
    /// Where correlated randomness comes from, with that backend's state.
    pub(super) backend: Backend,
    _ring: PhantomData<R>,
}

impl<'a, R: Ring> Mpc<'a, R> {
    /// Join the device as `ctx.party`, one of the two SPU nodes, and run the base OTs (timed as the party's
    /// device initialisation).
    pub async fn new(ctx: &'a PartyContext, spu: &SpuRuntime) -> Result<Self> {
        if spu.nodes.len() != 2 {
            return Err(Error::Internal(format!(
                "the two-party device needs exactly 2 nodes, got {}",
                spu.nodes.len()
            )));
        }
        let nodes = [spu.nodes[0].0.clone(), spu.nodes[1].0.clone()];
        let me = nodes.iter().position(|p| *p == ctx.party).ok_or_else(|| {
            Error::Internal(format!("party `{}` is not an SPU node ({})", ctx.party, nodes.join(", ")))
        })?;
        let started = std::time::Instant::now();
        let mut rng = os_rng()?;
        let link = Peer { ctx, name: nodes[1 - me].clone(), me };
        let (sender, receiver) = ot::setup(ctx, &link.name, me == 0, &mut rng).await?;
        ctx.add_device_init(started.elapsed());
        if spu.insecure() {
            tracing::warn!(
                party = %ctx.party,
                "runtime_config.beaver is trusted_first_party: node `{}` deals every correlation and can decrypt \
                 every shared value (insecure; for comparison with SPU only)",
                nodes[0]
            );
        }
        Ok(Mpc {
            ctx,
            nodes,
            frac: spu.fraction_bits,
            link,
            sender,
            receiver,
            rng,
            backend: Backend::of(spu),
            _ring: PhantomData,
        })
    }

    /// This party's node index (0 or 1).
    pub fn me(&self) -> usize {
        self.link.me
    }

    /// Node `i`'s party name.
    pub fn party(&self, i: usize) -> &str {
        &self.nodes[i]
    }

    /// Fixed-point fraction bits.
    pub fn frac(&self) -> u32 {
        self.frac
    }

    /// `x + c` for a public constant.
    pub(super) fn add_public(&self, x: &[R], c: R) -> Vec<R> {
        if self.link.me == 0 { x.iter().map(|v| v.add(c)).collect() } else { x.to_vec() }
    }

    pub(super) async fn send(&self, tag: &str, bytes: Vec<u8>) -> Result<()> {
        self.link.send(tag, bytes).await
    }

    pub(super) async fn recv(&self, tag: &str, n: usize) -> Result<Vec<u8>> {
        self.link.recv(tag, n).await
    }

    /// Secret-share `n` ring values held by node `owner` (`values` is `Some` there): the owner sends a 32-byte
    /// seed; the other node's share is its stream, the owner's the values minus it.
    pub(super) async fn input(&mut self, owner: usize, values: Option<&[R]>, n: usize) -> Result<Vec<R>> {
        self.link.input(owner, values, n, &mut self.rng).await
    }

    /// Open `x` to node `to` (both when `None`); returns the values where they are opened.
    pub(super) async fn reveal(&mut self, x: &[R], to: Option<usize>) -> Result<Option<Vec<R>>> {
        self.link.reveal(x, to).await
    }

    /// Divide by `2^f` a value shared mod `2^l` (only the low `l` bits of the shares count), for any
    /// `|x| < 2^(l-2)`; the result is shared mod `2^k` (floor, at most one unit off). With `y = x + 2^(l-2)` in
    /// `[0, 2^(l-1))`, the low `l` bits of the two shares wrap around `2^l` exactly when either top bit is set.
    pub(super) async fn trunc_from(&mut self, x: &[R], l: u32, f: u32) -> Result<Vec<R>> {
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
        let products = if self.link.me == 1 {
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
        let (me, top) = (self.link.me, l - f);
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
        self.backend.dealt() && (bits == 1 || bits >= out)
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
    pub(super) async fn mul_raw(&mut self, x: &[R], y: &[R]) -> Result<Vec<R>> {
        let lattice = match &mut self.backend {
            Backend::TrustedFirstParty(_) => return self.mul_dealt(x, y).await,
            Backend::Secure(lattice) => lattice,
        };
        if x.len() >= super::he_mul::HE_MUL_MIN {
            let he = lattice.keys::<R>(Keys::Slots, &self.link, &mut self.rng).await?;
            let mut seed = [0u8; 16];
            self.rng.fill_bytes(&mut seed);
            return super::he_mul::mul_slots(&self.link, he, seed, x, y).await;
        }
        let k = R::BITS;
        let (s, r) = self.gilboa_both("mpc/mul", (y, x), (1, 1), k, k).await?;
        Ok(compute(|| {
            x.iter().zip(y).zip(s.iter().zip(&r)).map(|((x, y), (s, r))| x.mul(*y).add(*s).add(*r)).collect()
        }))
    }

    /// Shared `m x p` times shared `p x q`, not truncated.
    pub(super) async fn matmul_raw(&mut self, a: &[R], b: &[R], m: usize, p: usize, q: usize) -> Result<Vec<R>> {
        if self.backend.dealt() {
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
