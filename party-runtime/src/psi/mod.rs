//! Private set intersection protocols between two parties of a [`crate::context::PartyContext`]. One protocol
//! per file; both produce the same views, so the `psi` job treats them alike.

pub mod cuckoo;
pub mod ecdh;
pub mod kkrt;

use rand_chacha::ChaCha20Rng;
use rand_core::Rng;

/// The receiver's view: for each of its rows in the intersection, (its row, the sender's shuffled position).
pub struct ReceiverOutput {
    /// `(my row, peer position)`, in my row order.
    pub matches: Vec<(usize, usize)>,
    /// The sender's set size.
    pub peer_count: usize,
}

/// The sender's view.
pub struct SenderOutput {
    /// `perm[j]` is the row of the sender's key at shuffled position `j`.
    pub perm: Vec<usize>,
    /// The receiver's set size.
    pub peer_count: usize,
}

/// Fisher-Yates with a CSPRNG and unbiased (rejection-sampled) indices.
pub(crate) fn shuffle(v: &mut [usize], rng: &mut ChaCha20Rng) {
    for i in (1..v.len()).rev() {
        let bound = i as u64 + 1;
        let zone = u64::MAX - u64::MAX % bound;
        let r = loop {
            let r = rng.next_u64();
            if r < zone {
                break r;
            }
        };
        v.swap(i, (r % bound) as usize);
    }
}
