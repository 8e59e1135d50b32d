//! Where the two-party device's correlated randomness comes from, decided once when the device is built
//! ([`Backend::of`]) from the request's protocol and `beaver` setting. The kernels in `engine`, `plain` and
//! `millionaire` match on it; no code above the device names a backend or its state.
//!
//! - [`Backend::Secure`]: OT extension and RLWE between the two parties, no triples from anyone. It is SEMI2K's
//!   default and what `protocol: CHEETAH` runs (CHEETAH's design: lattice linear layers and products, OT for
//!   comparisons). Its state is the lattice keys, made on first use.
//! - [`Backend::TrustedFirstParty`]: SPU's "trusted first party" (node 0 deals every correlation). Insecure,
//!   only for like-for-like comparison with SPU; its state is the dealer's seed and call counter.

use rand_chacha::ChaCha20Rng;
use secretflow_crds::request::{Beaver, SpuRuntime};

use super::he::HeState;
use super::peer::Peer;
use super::rlwe;
use crate::crypto::prg::Prg;
use crate::error::{Error, Result};
use crate::ring::Ring;

/// The device's protocol backend with its state.
pub enum Backend {
    /// OT and RLWE between the parties (secure, semi-honest).
    Secure(Box<Lattice>),
    /// Node 0 deals every correlation (insecure).
    TrustedFirstParty(Dealer),
}

impl Backend {
    /// The backend a validated SPU configuration asks for (the one place the choice is made).
    pub fn of(spu: &SpuRuntime) -> Backend {
        match spu.beaver {
            Beaver::Ot => Backend::Secure(Box::default()),
            Beaver::TrustedFirstParty => Backend::TrustedFirstParty(Dealer::default()),
        }
    }

    /// Whether node 0 deals the correlations.
    pub fn dealt(&self) -> bool {
        matches!(self, Backend::TrustedFirstParty(_))
    }
}

/// The secure backend's lattice keys, each set up on first use: the linear layers' keys for the device's ring
/// and, on FM128, FM64's keys for the slot products.
#[derive(Default)]
pub struct Lattice {
    ring: Option<HeState>,
    slots128: Option<HeState>,
    /// Whether both nodes' plaintext matrices fit the lattice parameters (agreed by `Mpc::he_fits`).
    pub fits: bool,
    /// Whether a plaintext-matrix product took RLWE, and whether one took OT.
    pub used: (bool, bool),
}

/// Which lattice keys a product needs.
#[derive(Clone, Copy)]
pub enum Keys {
    /// The keys of the device's ring (plaintext-matrix products, and FM64's slot products).
    Ring,
    /// FM64's keys for FM128's slot products.
    Slots,
}

impl Lattice {
    /// This party's keys of `which` for ring `R`, exchanging public keys with the peer on first use.
    pub async fn keys<R: Ring>(&mut self, which: Keys, peer: &Peer<'_>, rng: &mut ChaCha20Rng) -> Result<&mut HeState> {
        let (cell, params, tag) = match which {
            Keys::Slots if R::BITS != 64 => (&mut self.slots128, rlwe::params::<u64>(), "mpc/he/slots-pk"),
            Keys::Slots => (&mut self.ring, rlwe::params::<u64>(), "mpc/he/pk"),
            Keys::Ring => (&mut self.ring, rlwe::params::<R>(), "mpc/he/pk"),
        };
        if cell.is_none() {
            *cell = Some(HeState::setup(peer, rng, params, tag).await?);
        }
        cell.as_mut().ok_or_else(|| Error::Internal("lattice keys missing after set-up".into()))
    }
}

/// The trusted-first-party dealer: the seed node 0 sent (on first use) and the dealt calls so far.
#[derive(Default)]
pub struct Dealer {
    seed: Option<[u8; 32]>,
    calls: u64,
}

impl Dealer {
    /// Node 1's randomness for the next dealt call: stream `n` of the session's dealer seed (sent by node 0 on
    /// first use, so later calls cost no message).
    pub async fn stream(&mut self, peer: &Peer<'_>, rng: &mut ChaCha20Rng) -> Result<Prg> {
        let seed = match self.seed {
            Some(seed) => seed,
            None => *self.seed.insert(peer.seed_from(0, "mpc/tfp-seed", rng).await?),
        };
        let key: [u8; 16] = seed[..16].try_into().unwrap_or([0; 16]);
        let stream = Prg::new(key, self.calls);
        self.calls += 1;
        Ok(stream)
    }
}
