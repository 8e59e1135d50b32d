//! The other node of the two-party device: tagged messages to it and from it, each receive checked for its
//! length, every error naming the peer and the tag. The device's own messages (inputs, openings, seeds, the
//! dealer's and the engine's) go through this; the OT and lattice protocols use the channel with the peer's name.

use rand_chacha::ChaCha20Rng;
use rand_core::Rng;

use super::local::{add, expand, ring_bytes, ring_from_bytes, sub};
use crate::context::{PartyContext, compute};
use crate::error::{Error, Result};
use crate::ring::Ring;

/// This party's view of the device's other node.
pub struct Peer<'a> {
    /// The party's context (link, progress, errors).
    pub ctx: &'a PartyContext,
    /// The peer's party name.
    pub name: String,
    /// This party's node index (0 or 1); the peer is `1 - me`.
    pub me: usize,
}

impl Peer<'_> {
    /// Send `bytes` under `tag`.
    pub async fn send(&self, tag: &str, bytes: Vec<u8>) -> Result<()> {
        self.ctx.channel.send_bytes(&self.name, tag, bytes).await.map_err(|e| self.ctx.link_error(e))
    }

    /// The next message under `tag`, which must be exactly `n` bytes.
    pub async fn recv(&self, tag: &str, n: usize) -> Result<Vec<u8>> {
        let bytes = self.ctx.channel.recv_bytes(&self.name, tag).await.map_err(|e| self.ctx.link_error(e))?;
        if bytes.len() != n {
            return Err(self.ctx.bad_message(&self.name, tag, format!("expected {n} bytes, got {}", bytes.len())));
        }
        Ok(bytes)
    }

    /// The next `n` ring elements under `tag`.
    pub async fn recv_ring<R: Ring>(&self, tag: &str, n: usize) -> Result<Vec<R>> {
        let w = (R::BITS / 8) as usize;
        let bytes = self.recv(tag, n * w).await?;
        Ok(bytes.chunks_exact(w).map(ring_from_bytes).collect())
    }

    /// A 32-byte seed drawn by node `owner` from `rng` and sent to the other node.
    pub async fn seed_from(&self, owner: usize, tag: &str, rng: &mut ChaCha20Rng) -> Result<[u8; 32]> {
        if self.me == owner {
            let mut seed = [0u8; 32];
            rng.fill_bytes(&mut seed);
            self.send(tag, seed.to_vec()).await?;
            Ok(seed)
        } else {
            let bytes = self.recv(tag, 32).await?;
            Ok(bytes.try_into().unwrap_or([0; 32]))
        }
    }

    /// Additive shares of `n` values held by node `owner`: the owner sends a 32-byte seed, the other node's
    /// share is its stream and the owner's the values minus it. `None` at the owner is an internal error.
    pub async fn input<R: Ring>(
        &self,
        owner: usize,
        values: Option<&[R]>,
        n: usize,
        rng: &mut ChaCha20Rng,
    ) -> Result<Vec<R>> {
        let seed = self.seed_from(owner, "mpc/input", rng).await?;
        let mask: Vec<R> = compute(|| expand(seed, n));
        match (self.me == owner, values) {
            (true, Some(v)) if v.len() == n => Ok(sub(v, &mask)),
            (true, _) => Err(Error::Internal("input: the owner must pass its n values".into())),
            (false, _) => Ok(mask),
        }
    }

    /// Open `x` to node `to` (both when `None`); the values where they are opened.
    pub async fn reveal<R: Ring>(&self, x: &[R], to: Option<usize>) -> Result<Option<Vec<R>>> {
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
}
