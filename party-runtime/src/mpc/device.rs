//! The device a request's `spu_config` asks for: the two-party backend for SEMI2K and CHEETAH, the
//! three-party one for ABY3, behind one type so the jobs build it once and run the same code on either.

use secretflow_crds::request::{Protocol, SpuRuntime};

use super::aby3::Aby3;
use super::buckets::Bucketing;
use super::engine::Mpc;
use super::kernels::{Kernels, Operand};
use super::share::{Bits, Holding, Share};
use crate::context::PartyContext;
use crate::error::Result;
use crate::ring::Ring;

/// One party's end of the MPC device, of whichever protocol the request names.
pub enum Device<'a, R: Ring> {
    /// Two-party additive sharing (SEMI2K, CHEETAH).
    TwoParty(Box<Mpc<'a, R>>),
    /// Three-party replicated sharing (ABY3).
    ThreeParty(Box<Aby3<'a, R>>),
}

impl<'a, R: Ring> Device<'a, R> {
    /// Join the device `spu` describes as `ctx.party` (one of its nodes).
    pub async fn new(ctx: &'a PartyContext, spu: &SpuRuntime) -> Result<Self> {
        Ok(match spu.protocol {
            Protocol::ABY3 => Device::ThreeParty(Box::new(Aby3::new(ctx, spu).await?)),
            Protocol::SEMI2K | Protocol::CHEETAH => Device::TwoParty(Box::new(Mpc::new(ctx, spu).await?)),
        })
    }
}

/// `$body` with `$d` bound to the backend (trait methods called by path, as `Mpc` has inherent ones of the
/// same names over raw vectors).
macro_rules! on {
    ($self:expr, $d:ident => $body:expr) => {
        match $self {
            Device::TwoParty($d) => $body,
            Device::ThreeParty($d) => $body,
        }
    };
}

impl<R: Ring> Kernels<R> for Device<'_, R> {
    fn me(&self) -> usize {
        on!(self, d => Kernels::<R>::me(&**d))
    }

    fn nodes(&self) -> usize {
        on!(self, d => Kernels::<R>::nodes(&**d))
    }

    fn party(&self, i: usize) -> &str {
        on!(self, d => Kernels::<R>::party(&**d, i))
    }

    fn holding(&self) -> Holding {
        on!(self, d => Kernels::<R>::holding(&**d))
    }

    fn frac(&self) -> u32 {
        on!(self, d => Kernels::<R>::frac(&**d))
    }

    async fn input(&mut self, owner: usize, values: Option<&[R]>, n: usize) -> Result<Share<R>> {
        on!(self, d => Kernels::input(&mut **d, owner, values, n).await)
    }

    async fn reveal(&mut self, x: &Share<R>, to: Option<usize>) -> Result<Option<Vec<R>>> {
        on!(self, d => Kernels::reveal(&mut **d, x, to).await)
    }

    async fn mul_raw(&mut self, x: &Share<R>, y: &Share<R>) -> Result<Share<R>> {
        on!(self, d => Kernels::mul_raw(&mut **d, x, y).await)
    }

    async fn matmul_raw(&mut self, a: &Share<R>, b: &Share<R>, dims: (usize, usize, usize)) -> Result<Share<R>> {
        on!(self, d => Kernels::matmul_raw(&mut **d, a, b, dims).await)
    }

    async fn matmul_plain_raw(
        &mut self,
        owner: usize,
        a: Option<&[R]>,
        b: &Share<R>,
        dims: (usize, usize, usize),
    ) -> Result<Share<R>> {
        on!(self, d => Kernels::matmul_plain_raw(&mut **d, owner, a, b, dims).await)
    }

    async fn matmul_plain_each(
        &mut self,
        mine: &[R],
        b: &[&Share<R>],
        dims: &[(usize, usize, usize)],
        operand: Operand,
    ) -> Result<(Vec<Share<R>>, u32)> {
        on!(self, d => Kernels::matmul_plain_each(&mut **d, mine, b, dims, operand).await)
    }

    async fn matmul_plain_plain(
        &mut self,
        a: (usize, Option<&[R]>),
        b: (usize, Option<&[R]>),
        dims: (usize, usize, usize),
        bound: u32,
    ) -> Result<Share<R>> {
        on!(self, d => Kernels::matmul_plain_plain(&mut **d, a, b, dims, bound).await)
    }

    async fn bucket_sums(
        &mut self,
        bk: &mut Bucketing,
        selected: &[Vec<bool>],
        b: &Share<R>,
        q: usize,
    ) -> Result<Vec<Share<R>>> {
        on!(self, d => Kernels::bucket_sums(&mut **d, bk, selected, b, q).await)
    }

    async fn plain_entries(&mut self, max_abs: u128, widest: usize) -> Result<()> {
        on!(self, d => Kernels::<R>::plain_entries(&mut **d, max_abs, widest).await)
    }

    fn plain_methods(&self) -> &'static str {
        on!(self, d => Kernels::<R>::plain_methods(&**d))
    }

    fn bucket_method(&self) -> &'static str {
        on!(self, d => Kernels::<R>::bucket_method(&**d))
    }

    async fn trunc_from(&mut self, x: &Share<R>, l: u32, f: u32) -> Result<Share<R>> {
        on!(self, d => Kernels::trunc_from(&mut **d, x, l, f).await)
    }

    async fn msb(&mut self, x: &Share<R>, bound: u32, skip: u32) -> Result<Bits<R>> {
        on!(self, d => Kernels::msb(&mut **d, x, bound, skip).await)
    }

    async fn msb_minus(&mut self, x: &Share<R>, cs: &[R], bound: u32, skip: u32) -> Result<Bits<R>> {
        on!(self, d => Kernels::msb_minus(&mut **d, x, cs, bound, skip).await)
    }

    async fn sign_pair(&mut self, x: &Share<R>, k: R, bound: u32, skip: u32) -> Result<Bits<R>> {
        on!(self, d => Kernels::sign_pair(&mut **d, x, k, bound, skip).await)
    }

    async fn b2a(&mut self, b: &Bits<R>) -> Result<Share<R>> {
        on!(self, d => Kernels::b2a(&mut **d, b).await)
    }

    async fn and(&mut self, x: &Bits<R>, y: &Bits<R>) -> Result<Bits<R>> {
        on!(self, d => Kernels::and(&mut **d, x, y).await)
    }

    async fn mul_bit(&mut self, b: &Bits<R>, x: &Share<R>) -> Result<Share<R>> {
        on!(self, d => Kernels::mul_bit(&mut **d, b, x).await)
    }

    async fn mul_bit_each(&mut self, b: &Bits<R>, x: &Share<R>, per: usize) -> Result<Share<R>> {
        on!(self, d => Kernels::mul_bit_each(&mut **d, b, x, per).await)
    }

    async fn mul_bit_and_b2a(&mut self, b: &Bits<R>, x: &Share<R>, c: &Bits<R>) -> Result<(Share<R>, Share<R>)> {
        on!(self, d => Kernels::mul_bit_and_b2a(&mut **d, b, x, c).await)
    }

    async fn trunc_and_sign_pair(
        &mut self,
        x: (&Share<R>, u32, u32),
        c: (&Share<R>, R, u32, u32),
    ) -> Result<(Share<R>, Bits<R>)> {
        on!(self, d => Kernels::trunc_and_sign_pair(&mut **d, x, c).await)
    }
}
