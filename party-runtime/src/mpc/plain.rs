//! Products of a party's *plaintext* matrix with a shared matrix: the shape of vertical learning, where each
//! party multiplies its own feature block with shared weights or residuals.
//!
//! With OT each is one Gilboa product in one direction: the matrix owner sends, the other node chooses with the
//! bits of its share. The `_pair` forms run both nodes' products at once, one per direction, so both halves of
//! the link and both parties' cores work at the same time.

use rand_core::Rng;

use super::backend::{Backend, Keys};
use super::cost::{self, Shape};
use super::engine::Mpc;
use super::kernels::Operand;
use super::local::{accumulate, item_vectors, matmul_local, sub};
use super::rlwe;
use crate::context::PartyContext;
use crate::crypto::ot::{OtReceiver, OtSender, recv_chunks, send_chunks};
use crate::error::{Error, Result};
use crate::ring::Ring;

impl<R: Ring> Mpc<'_, R> {
    /// Whether both nodes' plaintext matrices fit the lattice parameters, given each node's largest entry
    /// magnitude `max_abs` (raw units) and its largest number of entries per product `entries`: one bit per
    /// node is exchanged. Never with the dealer (it has its own dealt products).
    pub async fn he_fits(&mut self, max_abs: u128, entries: usize) -> Result<bool> {
        if self.backend.dealt() {
            return Ok(false);
        }
        let params = rlwe::params::<R>();
        let fits = max_abs.saturating_mul(entries.max(params.n) as u128) <= params.max_norm();
        self.send("mpc/he/fits", vec![fits as u8]).await?;
        let theirs = self.recv("mpc/he/fits", 1).await?;
        Ok(fits && theirs[0] == 1)
    }

    /// Whether the RLWE product is the cheaper method for both nodes' plaintext matrices of `dims[i] = (m, p)`
    /// against OT whose choosers use `choice_bits` bits and whose messages carry `out_bits` ([`super::cost`]).
    /// Never with the dealer. Both nodes reach the same answer from the public shapes.
    pub(super) fn prefers_rlwe(&self, dims: [(usize, usize); 2], choice_bits: u32, out_bits: u32) -> bool {
        let shapes = dims.map(|(m, p)| Shape { m, p });
        !self.backend.dealt() && cost::rlwe_cheaper::<R>(shapes, choice_bits, out_bits)
    }

    /// Shares of `A_0 b_0` and `A_1 b_1` by RLWE ([`super::he`]): node `i` holds the plaintext `A_i` (`m x p` by
    /// `dims[i]`; this party's is `mine`), the vectors `b_i` are shared. Full-ring results (no truncation). Only
    /// after [`Mpc::he_fits`] said yes.
    pub async fn matvec_he_pair(&mut self, mine: &[R], b: [&[R]; 2], dims: [(usize, usize); 2]) -> Result<[Vec<R>; 2]> {
        self.matmul_he_pair(mine, b, dims.map(|(m, p)| (m, p, 1))).await
    }

    /// [`Mpc::matvec_he_pair`] for shared `p x q` matrices `B_i` (row-major, as the results), every column in
    /// one round ([`super::he::HeState::matmul_pair`]).
    pub async fn matmul_he_pair(
        &mut self,
        mine: &[R],
        b: [&[R]; 2],
        dims: [(usize, usize, usize); 2],
    ) -> Result<[Vec<R>; 2]> {
        let Backend::Secure(lattice) = &mut self.backend else {
            return Err(Error::Internal("an RLWE product asked of the dealer backend".into()));
        };
        let he = lattice.keys::<R>(Keys::Ring, &self.link, &mut self.rng).await?;
        let mut seed = [0u8; 16];
        self.rng.fill_bytes(&mut seed);
        he.matmul_pair(&self.link, seed, mine, b, dims).await
    }

    /// Node `owner`'s plaintext `m x p` matrix (`a` is `Some` there) times a shared `p x q`, not truncated.
    /// With OT this is one Gilboa product, the other node choosing with the low `bits` of its share of `b`
    /// (pass `R::BITS` unless that share is known to be a small non-negative integer).
    pub(super) async fn matmul_plain_raw(
        &mut self,
        owner: usize,
        a: Option<&[R]>,
        b: &[R],
        (m, p, q): (usize, usize, usize),
        bits: u32,
    ) -> Result<Vec<R>> {
        if self.backend.dealt() {
            let a = self.input(owner, a, m * p).await?;
            return self.matmul_raw(&a, b, m, p, q).await;
        }
        let k = R::BITS;
        if self.link.me == owner {
            let a = a.ok_or_else(|| Error::Internal("matmul_plain_raw: the owner must pass its matrix".into()))?;
            let v = item_vectors(a, m, p, q);
            let s = self.chunked_send("mpc/matmul-plain", &v, m, bits, k).await?;
            let mut out = matmul_local(a, b, m, p, q);
            accumulate(&mut out, &s, m, q);
            Ok(out)
        } else {
            let r = self.chunked_recv("mpc/matmul-plain", b, m, bits, k).await?;
            let mut out = vec![R::ZERO; m * q];
            accumulate(&mut out, &r, m, q);
            Ok(out)
        }
    }

    /// Both nodes' plaintext matrices times shared matrices at once: node `i` holds `A_i` (`m x p` by
    /// `dims[i]`; this party's is `mine`), `B_i` (`p x q`) is shared. Returns shares of `A_0 B_0` and `A_1 B_1`,
    /// valid mod `2^l` (above that the shares' bits are meaningless): the chooser uses the low `l` bits of its
    /// share.
    pub async fn matmul_plain_pair(
        &mut self,
        mine: &[R],
        b: [&[R]; 2],
        dims: [(usize, usize, usize); 2],
        l: u32,
    ) -> Result<[Vec<R>; 2]> {
        let me = self.link.me;
        if self.backend.dealt() {
            let mut out = [Vec::new(), Vec::new()];
            for (i, o) in out.iter_mut().enumerate() {
                *o = self.matmul_plain_raw(i, (i == me).then_some(mine), b[i], dims[i], R::BITS).await?;
            }
            return Ok(out);
        }
        let ((m, p, q), (mo, _, qo)) = (dims[me], dims[1 - me]);
        let v = item_vectors(mine, m, p, q);
        let (s, r) = self.gilboa_both("mpc/matmul-plain", (&v, b[1 - me]), (m, mo), l, l).await?;
        let mut own = matmul_local(mine, b[me], m, p, q);
        accumulate(&mut own, &s, m, q);
        let mut other = vec![R::ZERO; mo * qo];
        accumulate(&mut other, &r, mo, qo);
        Ok(if me == 0 { [own, other] } else { [other, own] })
    }

    /// [`Mpc::matmul_plain_raw`] for a shared `b` known to satisfy `|b| < 2^(l-2)` (raw units): the chooser
    /// uses only the low `l` bits of its share plus one bit, instead of all `k`.
    ///
    /// With `b' = b + 2^(l-2)` in `[0, 2^(l-1))` and `lo_i = b'_i mod 2^l`, `b' = lo_0 + lo_1 - c 2^l` where the
    /// carry `c` is the OR of the two `lo_i`'s top bits (the same argument as [`Mpc::trunc`]). So
    /// `A b' = A lo_0 + A lo_1 - 2^l (A m_o + A (1 - m_o) m_x)`: the owner's terms are local, the other party's
    /// `lo_x` and `m_x` are Gilboa choices (`l` and 1 OTs per element of `b`).
    pub async fn matmul_plain_bounded(
        &mut self,
        owner: usize,
        a: Option<&[R]>,
        b: &[R],
        (m, p, q): (usize, usize, usize),
        l: u32,
    ) -> Result<Vec<R>> {
        if self.backend.dealt() || l + 2 >= R::BITS {
            return self.matmul_plain_raw(owner, a, b, (m, p, q), R::BITS).await;
        }
        let split = Split::new(self, b, l);
        if self.link.me == owner {
            let a = a.ok_or_else(|| Error::Internal("matmul_plain_bounded: the owner must pass its matrix".into()))?;
            bounded_owner(&mut self.sender, self.ctx, a, &split, (m, p, q)).await
        } else {
            bounded_chooser(&mut self.receiver, self.ctx, &split, (m, p, q)).await
        }
    }

    /// [`Mpc::matmul_plain_bounded`] for both nodes' matrices at once (node `i`'s by `dims[i]`, this party's
    /// `mine`, times the shared `b[i]`): returns shares of `A_0 b_0` and `A_1 b_1`.
    pub async fn matmul_plain_bounded_pair(
        &mut self,
        mine: &[R],
        b: [&[R]; 2],
        dims: [(usize, usize, usize); 2],
        l: u32,
    ) -> Result<[Vec<R>; 2]> {
        if self.backend.dealt() || l + 2 >= R::BITS {
            return self.matmul_plain_pair(mine, b, dims, R::BITS).await;
        }
        let me = self.link.me;
        let (own_split, other_split) = (Split::new(self, b[me], l), Split::new(self, b[1 - me], l));
        let ctx = self.ctx;
        let (own, other) = tokio::try_join!(
            bounded_owner(&mut self.sender, ctx, mine, &own_split, dims[me]),
            bounded_chooser(&mut self.receiver, ctx, &other_split, dims[1 - me])
        )?;
        Ok(if me == 0 { [own, other] } else { [other, own] })
    }

    /// Both nodes' plaintext matrices times their shared operands (see
    /// [`super::Kernels::matmul_plain_each`]), by RLWE where both nodes' data fit and it costs less for the
    /// shapes, else by OT with as few bits as `operand` allows; a product with one owner runs in one direction.
    /// Returns the shares and the bits they are valid mod.
    pub(super) async fn plain_each(
        &mut self,
        mine: &[R],
        b: [&[R]; 2],
        dims: [(usize, usize, usize); 2],
        operand: Operand,
    ) -> Result<([Vec<R>; 2], u32)> {
        let k = R::BITS;
        let (choice, out) = operand.ot_bits(k);
        let matvec = dims.map(|(m, p, _)| (m, p));
        let fits = matches!(&self.backend, Backend::Secure(lattice) if lattice.fits);
        // Both operands have the same number of columns, or one side is absent (one column per RLWE call).
        let q = dims.iter().filter(|d| d.0 * d.1 > 0).map(|d| d.2).max().unwrap_or(0);
        let same_q = dims.iter().all(|d| d.0 * d.1 == 0 || d.2 == q);
        let rlwe = fits && same_q && q >= 1 && self.prefers_rlwe(matvec, choice, out);
        if let Backend::Secure(lattice) = &mut self.backend {
            if rlwe { lattice.used.0 = true } else { lattice.used.1 = true }
        }
        let present = dims.map(|(m, p, _)| m * p > 0);
        if rlwe {
            let r = self.matmul_he_pair(mine, b, dims).await?;
            return Ok((r, k));
        }
        let valid = if let Operand::ResultMod(l) = operand { l } else { k };
        if present[0] != present[1] {
            let owner = if present[0] { 0 } else { 1 };
            let a = (self.link.me == owner).then_some(mine);
            let r = match operand {
                Operand::Bounded(l) => self.matmul_plain_bounded(owner, a, b[owner], dims[owner], l).await?,
                _ => self.matmul_plain_raw(owner, a, b[owner], dims[owner], valid).await?,
            };
            let empty = vec![R::ZERO; dims[1 - owner].0 * dims[1 - owner].2];
            return Ok((if owner == 0 { [r, empty] } else { [empty, r] }, valid));
        }
        if !present[0] {
            return Ok((dims.map(|(m, _, q)| vec![R::ZERO; m * q]), k));
        }
        let r = match operand {
            Operand::Bounded(l) => self.matmul_plain_bounded_pair(mine, b, dims, l).await?,
            _ => self.matmul_plain_pair(mine, b, dims, valid).await?,
        };
        Ok((r, valid))
    }

    /// Node `a.0`'s plaintext times node `b.0`'s plaintext (see [`super::Kernels::matmul_plain_plain`]): `b`'s
    /// owner offsets its entries by `2^bound` to make them non-negative and chooses with `bound + 2` bits; `a`'s
    /// owner removes the offset's contribution, `2^bound` times its row sums, from its share. One owner of both:
    /// its local product is its share.
    pub(super) async fn plain_plain(
        &mut self,
        (a_owner, a): (usize, Option<&[R]>),
        (b_owner, b): (usize, Option<&[R]>),
        (m, p, q): (usize, usize, usize),
        bound: u32,
    ) -> Result<Vec<R>> {
        let me = self.link.me;
        let missing = |what: &str| Error::Internal(format!("matmul_plain_plain: the owner must pass {what}"));
        if a_owner == b_owner {
            return Ok(match (me == a_owner, a, b) {
                (true, Some(a), Some(b)) => matmul_local(a, b, m, p, q),
                (true, _, _) => return Err(missing("both matrices")),
                (false, _, _) => vec![R::ZERO; m * q],
            });
        }
        let offset = R::ONE.shl(bound);
        let bits = bound + 2;
        if me == a_owner {
            let a = a.ok_or_else(|| missing("its matrix"))?;
            let mut out = self.matmul_plain_raw(a_owner, Some(a), &vec![R::ZERO; p * q], (m, p, q), bits).await?;
            for (j, row) in a.chunks_exact(p.max(1)).take(m).enumerate() {
                let correction = row.iter().fold(R::ZERO, |acc, v| acc.add(*v)).mul(offset);
                out[j * q..(j + 1) * q].iter_mut().for_each(|v| *v = v.sub(correction));
            }
            Ok(out)
        } else if me == b_owner {
            let b: Vec<R> = b.ok_or_else(|| missing("its matrix"))?.iter().map(|v| v.add(offset)).collect();
            self.matmul_plain_raw(a_owner, None, &b, (m, p, q), bits).await
        } else {
            Ok(vec![R::ZERO; m * q])
        }
    }

    /// Whether both nodes' plaintext matrices fit the lattice parameters (see [`Mpc::he_fits`]), kept for
    /// the products that follow.
    pub(super) async fn set_plain_entries(&mut self, max_abs: u128, widest: usize) -> Result<()> {
        let fits = self.he_fits(max_abs, widest).await?;
        if let Backend::Secure(lattice) = &mut self.backend {
            lattice.fits = fits;
        }
        Ok(())
    }

    /// `training_metrics.linear_products`: `rlwe`, `ot`, `ot+rlwe`, or `dealer` (the insecure backend).
    pub(super) fn plain_method_names(&self) -> &'static str {
        match &self.backend {
            Backend::TrustedFirstParty(_) => "dealer",
            Backend::Secure(lattice) => match lattice.used {
                (true, true) => "ot+rlwe",
                (true, false) => "rlwe",
                (false, _) => "ot",
            },
        }
    }
}

/// A bounded shared `b` split as in [`Mpc::matmul_plain_bounded`]: this party's `lo` and its top bit `m`.
struct Split<R> {
    lo: Vec<R>,
    top: Vec<R>,
    l: u32,
}

impl<R: Ring> Split<R> {
    fn new(mpc: &Mpc<'_, R>, b: &[R], l: u32) -> Split<R> {
        let lo: Vec<R> = mpc.add_public(b, R::ONE.shl(l - 2)).iter().map(|v| v.low(l)).collect();
        let top = lo.iter().map(|v| if v.bit(l - 1) { R::ONE } else { R::ZERO }).collect();
        Split { lo, top, l }
    }
}

/// The owner's side of a bounded product: Gilboa sender for `A lo_x` and the carry term, plus its local terms.
async fn bounded_owner<R: Ring>(
    sender: &mut OtSender,
    ctx: &PartyContext,
    a: &[R],
    split: &Split<R>,
    (m, p, q): (usize, usize, usize),
) -> Result<Vec<R>> {
    let (k, l) = (R::BITS, split.l);
    let v = item_vectors(a, m, p, q);
    let s = send_chunks(sender, ctx, "mpc/bounded-lo", &v, m, l, k).await?;
    // Item i carries -(1 - m_o) A[:, r] for the carry term (mod 2^(k - l), shifted by l below).
    let w: Vec<R> = v
        .chunks_exact(m.max(1))
        .zip(&split.top)
        .flat_map(|(col, t)| {
            let keep = R::ONE.sub(*t);
            col.iter().map(move |x| x.mul(keep).neg())
        })
        .collect();
    let t = send_chunks(sender, ctx, "mpc/bounded-carry", &w, m, 1, k - l).await?;
    // Local: A lo_o - 2^l A m_o - 2^(l-2) A 1 (the offset, which node 0 added to b).
    let local_b: Vec<R> = split.lo.iter().zip(&split.top).map(|(lo, t)| lo.sub(t.shl(l))).collect();
    let mut out = matmul_local(a, &local_b, m, p, q);
    let ones = vec![R::ONE.shl(l - 2); p * q];
    out = sub(&out, &matmul_local(a, &ones, m, p, q));
    accumulate(&mut out, &s, m, q);
    let t: Vec<R> = t.iter().map(|v| v.shl(l)).collect();
    accumulate(&mut out, &t, m, q);
    Ok(out)
}

/// The chooser's side of a bounded product: its `lo` and top bit as Gilboa choices.
async fn bounded_chooser<R: Ring>(
    receiver: &mut OtReceiver,
    ctx: &PartyContext,
    split: &Split<R>,
    (m, _, q): (usize, usize, usize),
) -> Result<Vec<R>> {
    let (k, l) = (R::BITS, split.l);
    let r = recv_chunks(receiver, ctx, "mpc/bounded-lo", &split.lo, m, l, k).await?;
    let t = recv_chunks(receiver, ctx, "mpc/bounded-carry", &split.top, m, 1, k - l).await?;
    let mut out = vec![R::ZERO; m * q];
    accumulate(&mut out, &r, m, q);
    let t: Vec<R> = t.iter().map(|v| v.shl(l)).collect();
    accumulate(&mut out, &t, m, q);
    Ok(out)
}
