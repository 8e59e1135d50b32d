//! The three-party backend (`protocol: ABY3`): replicated secret sharing over `Z_2^k` among three nodes,
//! semi-honest with an honest majority (Mohassel and Rindal, "ABY3", CCS 2018). A value is the sum of three
//! components; node `i` holds components `i` and `i + 1` (mod 3), so any two nodes can open it and no one node
//! learns anything. Bits are shared the same way under XOR.
//!
//! Correlated randomness needs no dealer and no OT: at set-up node `i` sends node `i + 1` a fresh AES key `K_(i+1)`,
//! so the key `K_j` is known to exactly the two nodes that hold component `j` (nodes `j - 1` and `j`). Each call
//! draws from stream `call` of these keys; `F(K_i) - F(K_(i+1))` summed over the nodes is zero, which re-randomises
//! every product before it is reshared ([`Aby3::reshare`]). Every node runs every kernel, so the call counters
//! agree without messages.
//!
//! Products are local (three cross terms per element) plus one resharing round in which each node sends one ring
//! element per output to the previous node ([`arith`]); comparisons are a parallel prefix adder on XOR shares
//! ([`binary`]). [`kernels`] puts these behind the protocol interface.

mod arith;
mod binary;
mod kernels;

use rand_chacha::ChaCha20Rng;
use rand_core::Rng;
use secretflow_crds::request::SpuRuntime;

use super::local::{draw, ring_bytes};
use super::peer::Peer;
use super::share::{Holding, Share};
use crate::context::PartyContext;
use crate::crypto::os_rng;
use crate::crypto::prg::Prg;
use crate::error::{Error, Result};
use crate::ring::Ring;

/// One node's end of the three-party device.
pub struct Aby3<'a, R: Ring> {
    nodes: [String; 3],
    me: usize,
    frac: u32,
    /// Node `me + 1`, to which this node reshares nothing but sends its key and openings.
    next: Peer<'a>,
    /// Node `me - 1`, to which each product's component goes.
    prev: Peer<'a>,
    /// `K_me` (shared with the previous node: seeds component `me`) and `K_(me+1)` (shared with the next node).
    keys: [[u8; 16]; 2],
    /// Kernel calls so far: the stream index of the keys for the next call, the same on every node.
    calls: u64,
    _ring: std::marker::PhantomData<R>,
}

/// How a node's two components combine (arithmetic sharing adds, binary sharing XORs).
#[derive(Clone, Copy)]
pub(super) enum Op {
    Add,
    Xor,
}

impl Op {
    fn apply<R: Ring>(self, a: R, b: R) -> R {
        match self {
            Op::Add => a.add(b),
            Op::Xor => R::from_u128(a.to_u128() ^ b.to_u128()),
        }
    }

    fn undo<R: Ring>(self, a: R, b: R) -> R {
        match self {
            Op::Add => a.sub(b),
            Op::Xor => R::from_u128(a.to_u128() ^ b.to_u128()),
        }
    }
}

impl<'a, R: Ring> Aby3<'a, R> {
    /// Join the device as `ctx.party`, one of the three SPU nodes, exchanging the pairwise keys (timed as the
    /// party's device initialisation).
    pub async fn new(ctx: &'a PartyContext, spu: &SpuRuntime) -> Result<Self> {
        let [n0, n1, n2] = spu.nodes.as_slice() else {
            return Err(Error::Internal(format!("ABY3 needs exactly 3 nodes, got {}", spu.nodes.len())));
        };
        let nodes = [n0.0.clone(), n1.0.clone(), n2.0.clone()];
        let me = nodes.iter().position(|p| *p == ctx.party).ok_or_else(|| {
            Error::Internal(format!("party `{}` is not an SPU node ({})", ctx.party, nodes.join(", ")))
        })?;
        let started = std::time::Instant::now();
        let peer = |i: usize| Peer { ctx, name: nodes[i % 3].clone(), me };
        let (next, prev) = (peer(me + 1), peer(me + 2));
        let mut rng: ChaCha20Rng = os_rng()?;
        let mut mine = [0u8; 16];
        rng.fill_bytes(&mut mine);
        next.send("mpc/aby3/key", mine.to_vec()).await?;
        let theirs = prev.recv("mpc/aby3/key", 16).await?;
        let theirs: [u8; 16] = theirs.try_into().map_err(|_| Error::Internal("key length".into()))?;
        ctx.add_device_init(started.elapsed());
        Ok(Aby3 {
            nodes,
            me,
            frac: spu.fraction_bits,
            next,
            prev,
            keys: [theirs, mine],
            calls: 0,
            _ring: std::marker::PhantomData,
        })
    }

    /// This node's holding: components `me` and `me + 1`.
    pub(super) fn holding(&self) -> Holding {
        Holding::replicated(self.me)
    }

    /// The streams of this call under `K_me` and `K_(me+1)`; each kernel call takes one pair, on every node.
    fn streams(&mut self) -> [Prg; 2] {
        let call = self.calls;
        self.calls += 1;
        [Prg::new(self.keys[0], call), Prg::new(self.keys[1], call)]
    }

    /// `n` elements of this node's share of zero under `op` (the three nodes' shares combine to zero).
    fn zeros(&mut self, n: usize, op: Op) -> Vec<R> {
        let [mut a, mut b] = self.streams();
        (0..n).map(|_| op.undo(draw::<R>(&mut a), draw(&mut b))).collect()
    }

    /// Turn `z` (this node's summand of a three-way sum, already re-randomised) into a replicated share: send it
    /// to the previous node, which holds it as its second component, and take the next node's as ours.
    async fn reshare(&mut self, tag: &str, z: Vec<R>) -> Result<Share<R>> {
        let n = z.len();
        self.prev.send(tag, ring_bytes(&z)).await?;
        let theirs = self.next.recv_ring(tag, n).await?;
        Ok(Share::new(self.holding(), vec![z, theirs]))
    }

    /// Replicated shares (under `op`) of `n` values held by node `owner`: components `owner` and `owner + 1`
    /// come from the keys the owner shares with each neighbour, and the owner sends the third component to both.
    async fn share_input(&mut self, owner: usize, values: Option<&[R]>, n: usize, op: Op) -> Result<Share<R>> {
        let [mut k_me, mut k_next] = self.streams();
        let tag = "mpc/aby3/input";
        let parts = match (self.me, values) {
            (me, Some(v)) if me == owner && v.len() == n => {
                let (c0, c1): (Vec<R>, Vec<R>) = (0..n).map(|_| (draw::<R>(&mut k_me), draw::<R>(&mut k_next))).unzip();
                let c2: Vec<R> = (0..n).map(|i| op.undo(op.undo(v[i], c0[i]), c1[i])).collect();
                let bytes = ring_bytes(&c2);
                self.next.send(tag, bytes.clone()).await?;
                self.prev.send(tag, bytes).await?;
                vec![c0, c1]
            }
            (me, _) if me == owner => return Err(Error::Internal("input: the owner must pass its n values".into())),
            // The owner's next node: component owner + 1 is under its K_me, the third component arrives.
            (me, _) if me == (owner + 1) % 3 => {
                let c1: Vec<R> = (0..n).map(|_| draw(&mut k_me)).collect();
                vec![c1, self.prev.recv_ring(tag, n).await?]
            }
            // The owner's previous node: the third component arrives, component owner is under its K_(me+1).
            _ => {
                let c2 = self.next.recv_ring(tag, n).await?;
                vec![c2, (0..n).map(|_| draw(&mut k_next)).collect()]
            }
        };
        Ok(Share::new(self.holding(), parts))
    }

    /// Component 2 of `x` as nodes 1 and 2 hold it (node 1 second, node 2 first); node 0 does not hold it and
    /// gets its first component, which the callers ignore there.
    fn last_component<'s>(&self, x: &'s Share<R>) -> &'s [R] {
        if self.me == 1 { x.part(1) } else { x.part(0) }
    }

    /// Values that nodes 1 and 2 both know (component 2 of a sharing, zero elsewhere) as a share, with no
    /// message: `v` is read on those nodes and ignored on node 0.
    fn held_by_last_pair(&self, v: impl FnOnce() -> Vec<R>, n: usize) -> Share<R> {
        let parts = match self.me {
            0 => vec![vec![R::ZERO; n], vec![R::ZERO; n]],
            1 => vec![vec![R::ZERO; n], v()],
            _ => vec![v(), vec![R::ZERO; n]],
        };
        Share::new(self.holding(), parts)
    }

    /// Open `x` (combined under `op`) to node `to`, or to all with `None`: the node after the receiver sends
    /// it the one component it lacks.
    async fn open(&mut self, x: &Share<R>, to: Option<usize>, op: Op) -> Result<Option<Vec<R>>> {
        let tag = "mpc/aby3/open";
        let n = x.len();
        if to.is_none() || to == Some((self.me + 2) % 3) {
            self.prev.send(tag, ring_bytes(x.part(1))).await?;
        }
        if to.is_some() && to != Some(self.me) {
            return Ok(None);
        }
        let third = self.next.recv_ring::<R>(tag, n).await?;
        Ok(Some((0..n).map(|i| op.apply(op.apply(x.part(0)[i], x.part(1)[i]), third[i])).collect()))
    }
}
