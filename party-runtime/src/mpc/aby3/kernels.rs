//! The three-party backend behind the protocol interface: [`Kernels`] for [`Aby3`]. Every function above the
//! kernels (sigmoids, reciprocal, clip, max, the learners) runs on it unchanged.

use super::{Aby3, Op};
use crate::error::Result;
use crate::mpc::kernels::Kernels;
use crate::mpc::share::{Bits, Holding, Share};
use crate::ring::Ring;

impl<R: Ring> Kernels<R> for Aby3<'_, R> {
    fn me(&self) -> usize {
        self.me
    }

    fn nodes(&self) -> usize {
        3
    }

    fn party(&self, i: usize) -> &str {
        &self.nodes[i]
    }

    fn holding(&self) -> Holding {
        Aby3::holding(self)
    }

    fn frac(&self) -> u32 {
        self.frac
    }

    async fn input(&mut self, owner: usize, values: Option<&[R]>, n: usize) -> Result<Share<R>> {
        self.share_input(owner, values, n, Op::Add).await
    }

    async fn reveal(&mut self, x: &Share<R>, to: Option<usize>) -> Result<Option<Vec<R>>> {
        self.open(x, to, Op::Add).await
    }

    async fn mul_raw(&mut self, x: &Share<R>, y: &Share<R>) -> Result<Share<R>> {
        self.mul(x, y).await
    }

    async fn matmul_raw(&mut self, a: &Share<R>, b: &Share<R>, dims: (usize, usize, usize)) -> Result<Share<R>> {
        self.matmul(a, b, dims).await
    }

    async fn matmul_plain_raw(
        &mut self,
        owner: usize,
        a: Option<&[R]>,
        b: &Share<R>,
        dims: (usize, usize, usize),
    ) -> Result<Share<R>> {
        self.matmul_plain(owner, a, b, dims).await
    }

    fn plain_methods(&self) -> &'static str {
        "replicated"
    }

    async fn trunc_from(&mut self, x: &Share<R>, l: u32, f: u32) -> Result<Share<R>> {
        Aby3::trunc_from(self, x, l, f).await
    }

    async fn msb(&mut self, x: &Share<R>, bound: u32, skip: u32) -> Result<Bits<R>> {
        self.sign_bits(x, bound, skip).await
    }

    async fn b2a(&mut self, b: &Bits<R>) -> Result<Share<R>> {
        self.bits_to_arith(b).await
    }

    async fn and(&mut self, x: &Bits<R>, y: &Bits<R>) -> Result<Bits<R>> {
        self.and_bits(x, y).await
    }

    async fn mul_bit(&mut self, b: &Bits<R>, x: &Share<R>) -> Result<Share<R>> {
        let b = self.bits_to_arith(b).await?;
        self.mul(&b, x).await
    }
}
