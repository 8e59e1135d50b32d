//! The protocol interface: the kernels every task and every function above them needs, as SPU draws its
//! protocol layer. A backend implements them over its own sharing ([`Share`] says which components a party
//! holds); the fixed-point functions ([`super::fixed`]), the statistics and the learners are written once
//! over this trait. Each kernel's documentation states its cost on the two-party backend ([`super::Mpc`]).
//!
//! Conventions: shares are of ring `R`, fixed point at [`Kernels::frac`] fraction bits unless a kernel says
//! raw; bits ([`Bits`]) are XOR-shared in the components' low bit; a node index is a position in the SPU
//! node list.

use super::buckets::Bucketing;
use super::share::{Bits, Holding, Share};
use crate::error::Result;
use crate::ring::Ring;

/// What the caller vouches for in a plaintext-matrix product ([`Kernels::matmul_plain_each`]), which lets a
/// backend use fewer bits of the shared operand or of the result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operand {
    /// Any shared operand, the result in the full ring.
    Full,
    /// Any shared operand; the result is needed mod `2^l` only (the caller truncates from `l` bits).
    ResultMod(u32),
    /// The operand is below `2^(l-2)` in magnitude (raw units); the result in the full ring.
    Bounded(u32),
}

impl Operand {
    /// The bits an OT chooser uses of its share and the bits of the messages, for the cost estimate.
    pub fn ot_bits(self, k: u32) -> (u32, u32) {
        match self {
            Operand::Full => (k, k),
            Operand::ResultMod(l) => (l, l),
            Operand::Bounded(l) => (l + 1, k),
        }
    }
}

/// The kernels of an MPC protocol over `Z_2^k` (`R`).
#[allow(async_fn_in_trait)] // Implemented and called inside this crate; futures are Send where their types are.
pub trait Kernels<R: Ring> {
    /// This party's node index.
    fn me(&self) -> usize;

    /// Number of nodes running the protocol.
    fn nodes(&self) -> usize;

    /// Node `i`'s party name.
    fn party(&self, i: usize) -> &str;

    /// The node index of `party`, if it is a node.
    fn index_of(&self, party: &str) -> Option<usize> {
        (0..self.nodes()).find(|&i| self.party(i) == party)
    }

    /// Which components of every sharing this party holds.
    fn holding(&self) -> Holding;

    /// Fixed-point fraction bits.
    fn frac(&self) -> u32;

    /// Share `n` values held in the clear by node `owner` (`values` is `Some` there). Two-party: one message
    /// of a 32-byte seed.
    async fn input(&mut self, owner: usize, values: Option<&[R]>, n: usize) -> Result<Share<R>>;

    /// Open `x` to node `to`, or to every node with `None`; the values where they are opened. Two-party: one
    /// message of `n` ring elements per receiving node.
    async fn reveal(&mut self, x: &Share<R>, to: Option<usize>) -> Result<Option<Vec<R>>>;

    /// Elementwise product, not truncated (the scales add up). Two-party: two Gilboa products (`k` OTs per
    /// element each way, one round trip), or an RLWE slot product for long vectors; dealt Beaver triples with
    /// the trusted first party.
    async fn mul_raw(&mut self, x: &Share<R>, y: &Share<R>) -> Result<Share<R>>;

    /// Shared `m x p` (row-major) times shared `p x q`, not truncated. Two-party: Gilboa products, `k` OTs per
    /// entry of `b` each way carrying `m` values.
    async fn matmul_raw(&mut self, a: &Share<R>, b: &Share<R>, dims: (usize, usize, usize)) -> Result<Share<R>>;

    /// Node `owner`'s plaintext `m x p` matrix (`a` is `Some` there) times a shared `p x q`, not truncated.
    /// Two-party: one Gilboa product (the owner sends, `k` OTs per entry of `b` carrying `m` values) or RLWE.
    async fn matmul_plain_raw(
        &mut self,
        owner: usize,
        a: Option<&[R]>,
        b: &Share<R>,
        dims: (usize, usize, usize),
    ) -> Result<Share<R>>;

    /// Every node's plaintext matrix times a shared operand of its own, all at once: node `i` holds `A_i`
    /// (`dims[i] = (m, p, q)`, this party's is `mine`; a node without one has `m = 0`), `b[i]` is a shared
    /// `p x q`. Shares of each `A_i b_i`, not truncated, and the bits they are valid mod (`k` unless `operand`
    /// is [`Operand::ResultMod`] and the backend used it). Two-party: one Gilboa product per direction at
    /// once, or RLWE where [`Kernels::plain_entries`] allowed it and its cost estimate is lower.
    async fn matmul_plain_each(
        &mut self,
        mine: &[R],
        b: &[&Share<R>],
        dims: &[(usize, usize, usize)],
        operand: Operand,
    ) -> Result<(Vec<Share<R>>, u32)> {
        let _ = operand;
        let mut out = Vec::with_capacity(dims.len());
        for (i, (b, dims)) in b.iter().zip(dims).enumerate() {
            let a = (i == self.me()).then_some(mine);
            out.push(if dims.0 * dims.1 == 0 {
                Share::constant(self.holding(), R::ZERO, dims.0 * dims.2)
            } else {
                self.matmul_plain_raw(i, a, b, *dims).await?
            });
        }
        Ok((out, R::BITS))
    }

    /// Node `a.0`'s plaintext `m x p` matrix times node `b.0`'s plaintext `p x q` (each `Some` at its owner),
    /// the entries of `b` below `2^bound` in magnitude (raw units): shares of the product, not truncated.
    /// Two-party: one Gilboa product in which `b`'s owner chooses with `bound + 2` bits of its entries.
    async fn matmul_plain_plain(
        &mut self,
        (a_owner, a): (usize, Option<&[R]>),
        (b_owner, b): (usize, Option<&[R]>),
        dims: (usize, usize, usize),
        bound: u32,
    ) -> Result<Share<R>> {
        let _ = bound;
        let shared = self.input(b_owner, b, dims.1 * dims.2).await?;
        self.matmul_plain_raw(a_owner, a, &shared, dims).await
    }

    /// For every node `i` and its features selected in `selected[i]`, shares of the sums of the shared
    /// `rows x q` columns `b` (row-major) over each bucket's rows, the buckets private to their node
    /// ([`Bucketing`]): node `i`'s sums as (bucket, column), its selected features' buckets in order. By default
    /// each node's one-hot bucket matrix times `b`; two-party: punctured seeds made once per bucketing, then
    /// `rows x features x q` elements each way per call ([`super::buckets`]).
    async fn bucket_sums(
        &mut self,
        buckets: &mut Bucketing,
        selected: &[Vec<bool>],
        b: &Share<R>,
        q: usize,
    ) -> Result<Vec<Share<R>>>
    where
        Self: Sized,
    {
        super::buckets::by_products(self, buckets, selected, b, q).await
    }

    /// Tell the backend about the plaintext matrices of the products that follow: this party's largest entry
    /// magnitude (raw units) and the most entries in one product row. Two-party: decides with the peer (one bit
    /// each way) whether RLWE products fit the lattice parameters. Others need nothing.
    async fn plain_entries(&mut self, max_abs: u128, widest: usize) -> Result<()> {
        let _ = (max_abs, widest);
        Ok(())
    }

    /// How this backend's plaintext-matrix products ran so far (`training_metrics.linear_products`).
    fn plain_methods(&self) -> &'static str;

    /// How this backend takes [`Kernels::bucket_sums`] (`training_metrics.histograms`): by default as its
    /// plaintext-matrix products.
    fn bucket_method(&self) -> &'static str {
        self.plain_methods()
    }

    /// `x / 2^f` (floor, at most one unit off) for `x` whose low `l` bits carry it (`|x| < 2^(l-2)`), shared
    /// mod `2^k`. Two-party: one OT per element with an `f`-bit message, exact (no probabilistic failure).
    async fn trunc_from(&mut self, x: &Share<R>, l: u32, f: u32) -> Result<Share<R>>;

    /// The sign bits (1 when negative) of `x` with `|x| < 2^bound` (raw units), at resolution `2^skip`: exact
    /// for `2^skip <= |x|`, either answer below. Two-party: a millionaires' comparison over `bound - skip` bits
    /// (4-bit digits, one 1-out-of-16 OT per digit, `log` levels of ANDs).
    async fn msb(&mut self, x: &Share<R>, bound: u32, skip: u32) -> Result<Bits<R>>;

    /// The sign bits of `x - c` for every public `c` in `cs` (`cs.len()` blocks of `x.len()` bits, `c_0`'s
    /// first), as [`Kernels::msb`] of each difference: which of several thresholds `x` lies below. The two-party
    /// backend compares all of them with the leaf OTs of one comparison.
    async fn msb_minus(&mut self, x: &Share<R>, cs: &[R], bound: u32, skip: u32) -> Result<Bits<R>> {
        let diffs: Vec<Share<R>> = cs.iter().map(|c| x.add_public(c.neg())).collect();
        self.msb(&Share::concat(&diffs.iter().collect::<Vec<_>>()), bound, skip).await
    }

    /// The sign bits of `d` and of `k - d` (`d`'s first), as [`Kernels::msb`]: the two limits of a clip. The
    /// two-party backend compares both with one set of leaf OTs.
    async fn sign_pair(&mut self, d: &Share<R>, k: R, bound: u32, skip: u32) -> Result<Bits<R>> {
        let both = Share::concat(&[d, &d.sub_from_public(k)]);
        self.msb(&both, bound, skip).await
    }

    /// Arithmetic shares (0/1) of shared bits. Two-party: one OT per element.
    async fn b2a(&mut self, b: &Bits<R>) -> Result<Share<R>>;

    /// `x AND y`. Two-party: one bit OT each way per element.
    async fn and(&mut self, x: &Bits<R>, y: &Bits<R>) -> Result<Bits<R>>;

    /// `b * x` for shared bits `b`. Two-party: one OT each way per element (a multiplexer).
    async fn mul_bit(&mut self, b: &Bits<R>, x: &Share<R>) -> Result<Share<R>>;

    /// `b_i * x_(i,j)` for `per` elements of `x` per bit of `b` (laid out `i * per + j`). Two-party: one OT each
    /// way per bit, carrying all `per` elements.
    async fn mul_bit_each(&mut self, b: &Bits<R>, x: &Share<R>, per: usize) -> Result<Share<R>> {
        let idx: Vec<Option<usize>> = (0..x.len()).map(|i| Some(i / per.max(1))).collect();
        self.mul_bit(&Bits::new(b.share().gather(&idx)), x).await
    }

    /// `b * x` and the arithmetic shares of `c`, which the two-party backend computes in one round.
    async fn mul_bit_and_b2a(&mut self, b: &Bits<R>, x: &Share<R>, c: &Bits<R>) -> Result<(Share<R>, Share<R>)> {
        let bx = self.mul_bit(b, x).await?;
        Ok((bx, self.b2a(c).await?))
    }

    /// [`Kernels::trunc_from`] of `x` and [`Kernels::sign_pair`] of `d`, which the two-party backend overlaps
    /// (the truncation's OT and the comparison's first messages share a round trip).
    async fn trunc_and_sign_pair(
        &mut self,
        (x, l, f): (&Share<R>, u32, u32),
        (d, k, bound, skip): (&Share<R>, R, u32, u32),
    ) -> Result<(Share<R>, Bits<R>)> {
        let t = self.trunc_from(x, l, f).await?;
        Ok((t, self.sign_pair(d, k, bound, skip).await?))
    }
}
