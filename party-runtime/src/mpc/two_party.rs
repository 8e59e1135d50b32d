//! The two-party backend behind the protocol interface: [`Kernels`] for [`Mpc`], each kernel the device's
//! own (OT, RLWE, or the trusted first party's dealt correlations, as its [`super::backend::Backend`] says) on
//! this node's additive component.

use super::buckets::{self, Bucketing};
use super::engine::Mpc;
use super::kernels::{Kernels, Operand};
use super::share::{Bits, Holding, Share};
use crate::error::{Error, Result};
use crate::ring::Ring;

impl<R: Ring> Mpc<'_, R> {
    /// This node's additive share `v` as a typed share.
    pub fn share(&self, v: Vec<R>) -> Share<R> {
        Share::additive(self.me(), v)
    }
}

/// This node's component of a two-party share.
fn mine<R: Ring>(x: &Share<R>) -> &[R] {
    x.part(0)
}

impl<R: Ring> Kernels<R> for Mpc<'_, R> {
    fn me(&self) -> usize {
        Mpc::me(self)
    }

    fn nodes(&self) -> usize {
        2
    }

    fn party(&self, i: usize) -> &str {
        Mpc::party(self, i)
    }

    fn holding(&self) -> Holding {
        Holding::additive(Mpc::me(self))
    }

    fn frac(&self) -> u32 {
        Mpc::frac(self)
    }

    async fn input(&mut self, owner: usize, values: Option<&[R]>, n: usize) -> Result<Share<R>> {
        let v = Mpc::input(self, owner, values, n).await?;
        Ok(self.share(v))
    }

    async fn reveal(&mut self, x: &Share<R>, to: Option<usize>) -> Result<Option<Vec<R>>> {
        Mpc::reveal(self, mine(x), to).await
    }

    async fn mul_raw(&mut self, x: &Share<R>, y: &Share<R>) -> Result<Share<R>> {
        let v = Mpc::mul_raw(self, mine(x), mine(y)).await?;
        Ok(self.share(v))
    }

    async fn matmul_raw(&mut self, a: &Share<R>, b: &Share<R>, (m, p, q): (usize, usize, usize)) -> Result<Share<R>> {
        let v = Mpc::matmul_raw(self, mine(a), mine(b), m, p, q).await?;
        Ok(self.share(v))
    }

    async fn matmul_plain_raw(
        &mut self,
        owner: usize,
        a: Option<&[R]>,
        b: &Share<R>,
        dims: (usize, usize, usize),
    ) -> Result<Share<R>> {
        let v = Mpc::matmul_plain_raw(self, owner, a, mine(b), dims, R::BITS).await?;
        Ok(self.share(v))
    }

    async fn matmul_plain_each(
        &mut self,
        own: &[R],
        b: &[&Share<R>],
        dims: &[(usize, usize, usize)],
        operand: Operand,
    ) -> Result<(Vec<Share<R>>, u32)> {
        let (&[b0, b1], &[d0, d1]) = (b, dims) else {
            return Err(Error::Internal(format!("the two-party device has 2 nodes, not {} matrices", dims.len())));
        };
        let (out, valid) = self.plain_each(own, [mine(b0), mine(b1)], [d0, d1], operand).await?;
        Ok((out.into_iter().map(|v| self.share(v)).collect(), valid))
    }

    async fn matmul_plain_plain(
        &mut self,
        a: (usize, Option<&[R]>),
        b: (usize, Option<&[R]>),
        dims: (usize, usize, usize),
        bound: u32,
    ) -> Result<Share<R>> {
        let v = self.plain_plain(a, b, dims, bound).await?;
        Ok(self.share(v))
    }

    async fn bucket_sums(
        &mut self,
        bk: &mut Bucketing,
        selected: &[Vec<bool>],
        b: &Share<R>,
        q: usize,
    ) -> Result<Vec<Share<R>>> {
        if self.backend.dealt() {
            return buckets::by_products(self, bk, selected, b, q).await;
        }
        let [s0, s1] = self.bucket_sums_ot(bk, selected, mine(b), q).await?;
        Ok(vec![self.share(s0), self.share(s1)])
    }

    async fn plain_entries(&mut self, max_abs: u128, widest: usize) -> Result<()> {
        self.set_plain_entries(max_abs, widest).await
    }

    fn plain_methods(&self) -> &'static str {
        self.plain_method_names()
    }

    fn bucket_method(&self) -> &'static str {
        if self.backend.dealt() { "dealer" } else { "punctured_seeds" }
    }

    async fn trunc_from(&mut self, x: &Share<R>, l: u32, f: u32) -> Result<Share<R>> {
        let v = Mpc::trunc_from(self, mine(x), l, f).await?;
        Ok(self.share(v))
    }

    async fn msb(&mut self, x: &Share<R>, bound: u32, skip: u32) -> Result<Bits<R>> {
        let v = self.msb_bits_coarse(mine(x), bound, skip).await?;
        Ok(Bits::new(self.share(v)))
    }

    async fn msb_minus(&mut self, x: &Share<R>, cs: &[R], bound: u32, skip: u32) -> Result<Bits<R>> {
        let v = self.signs_below(mine(x), cs, bound, skip).await?;
        Ok(Bits::new(self.share(v)))
    }

    async fn sign_pair(&mut self, d: &Share<R>, k: R, bound: u32, skip: u32) -> Result<Bits<R>> {
        let v = self.sign_pair_coarse(mine(d), k, bound, skip).await?;
        Ok(Bits::new(self.share(v)))
    }

    async fn b2a(&mut self, b: &Bits<R>) -> Result<Share<R>> {
        let v = self.bits_to_arith(mine(b.share())).await?;
        Ok(self.share(v))
    }

    async fn and(&mut self, x: &Bits<R>, y: &Bits<R>) -> Result<Bits<R>> {
        let v = self.and_bits(mine(x.share()), mine(y.share())).await?;
        Ok(Bits::new(self.share(v)))
    }

    async fn mul_bit(&mut self, b: &Bits<R>, x: &Share<R>) -> Result<Share<R>> {
        let v = Mpc::mul_bit(self, mine(b.share()), mine(x)).await?;
        Ok(self.share(v))
    }

    async fn mul_bit_each(&mut self, b: &Bits<R>, x: &Share<R>, per: usize) -> Result<Share<R>> {
        let v = Mpc::mul_bit_each(self, mine(b.share()), mine(x), per).await?;
        Ok(self.share(v))
    }

    async fn mul_bit_and_b2a(&mut self, b: &Bits<R>, x: &Share<R>, c: &Bits<R>) -> Result<(Share<R>, Share<R>)> {
        let (bx, a) = self.mul_bit_and_arith(mine(b.share()), mine(x), mine(c.share())).await?;
        Ok((self.share(bx), self.share(a)))
    }

    async fn trunc_and_sign_pair(
        &mut self,
        (x, l, f): (&Share<R>, u32, u32),
        (d, k, bound, skip): (&Share<R>, R, u32, u32),
    ) -> Result<(Share<R>, Bits<R>)> {
        let job = self.trunc_start(mine(x), l, f, true).await?;
        let flags = self.sign_pair_coarse(mine(d), k, bound, skip).await?;
        let t = self.trunc_finish(job).await?;
        Ok((self.share(t), Bits::new(self.share(flags))))
    }
}
