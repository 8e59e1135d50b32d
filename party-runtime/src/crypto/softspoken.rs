//! Correlated OT extension by SoftSpokenOT (Roy, CRYPTO 2022), semi-honest, with [`K`]-bit blocks.
//!
//! The output is IKNP's correlation (the receiver holds `t_i` and its choice `c_i`, the sender `Δ` and
//! `q_i = t_i ^ c_i Δ`) for `KAPPA / K` bits of traffic per OT instead of IKNP's `KAPPA`. The `KAPPA` base OTs
//! become `KAPPA / K` punctured GGM trees of `2^K` leaves: per block `j` the receiver (the VOLE prover) knows
//! every leaf, the sender all but leaf `Δ_j`, its `K` bits of `Δ`. Each leaf keys an AES-CTR stream that
//! continues across calls. Per call the receiver sums its block's streams into `u_j` (every leaf) and `v_j,i`
//! (leaves whose index has bit `i` set) and sends `u_j ^ c`. The sender's sum `w_j,i` over the leaves `x` whose
//! `x ^ Δ_j` has bit `i` set equals `Δ_j,i u_j ^ v_j,i`; adding `Δ_j,i (u_j ^ c)` gives `v_j,i ^ Δ_j,i c`, column
//! `K j + i` of `q = t ^ c Δ`. The leaf the sender lacks drops out of its sums and masks `u_j` from it.

use aes::Aes128;
use aes::cipher::KeyInit;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use rayon::prelude::*;

use super::base_ot::{KAPPA, Key};
use super::bits::min_tasks;
use super::prg::ctr_words;

/// Bits of `Δ` per block: traffic is `KAPPA / K` bits per OT, stream work `2^K / K` times IKNP's.
pub const K: usize = 4;
const LEAVES: usize = 1 << K;
const BLOCKS: usize = KAPPA / K;
/// Words of a column produced per leaf at a time (keeps one tile of every leaf's stream in cache).
const TILE: usize = 2048;

/// Bytes of the one-off tree message (two 32-byte sums per base OT).
pub const TREE_BYTES: usize = KAPPA * 64;

/// One leaf's stream: AES-128 in counter mode under the leaf's key.
struct Leaf {
    aes: Aes128,
    next: u128,
}

impl Leaf {
    fn new(seed: &Key) -> Leaf {
        let key: [u8; 16] = seed[..16].try_into().unwrap_or([0; 16]);
        Leaf { aes: Aes128::new(&key.into()), next: 0 }
    }

    /// The stream's next `out.len()` words (a whole number of AES blocks is consumed).
    fn fill(&mut self, out: &mut [u64], buf: &mut [aes::Block]) {
        self.next += ctr_words(&self.aes, self.next, out, buf);
    }
}

/// Sum one block's present leaves over the next `words` words of their streams into `columns` (`K` columns of
/// `words` words, overwritten): column `i` sums the leaves `x` with bit `i` of `x ^ offset` set. With `all`, it
/// also receives the sum of every present leaf. Targets are cleared tile by tile, while in cache, so callers can
/// hand in reused buffers.
fn block_sums(leaves: &mut [Option<Leaf>], offset: usize, columns: &mut [u64], mut all: Option<&mut [u64]>) {
    let words = columns.len() / K;
    // A small extension (a comparison's few OTs) zeroes and allocates no more than its own words.
    let mut tile = vec![0u64; TILE.min(words)];
    let mut buf = vec![aes::Block::default(); TILE.min(words).div_ceil(2)];
    for start in (0..words).step_by(TILE) {
        let end = (start + TILE).min(words);
        let tile = &mut tile[..end - start];
        for c in columns.chunks_mut(words).chain(all.as_deref_mut()) {
            c[start..end].fill(0);
        }
        for (x, leaf) in leaves.iter_mut().enumerate() {
            let Some(leaf) = leaf else { continue };
            leaf.fill(tile, &mut buf);
            let sel = x ^ offset;
            let selected = columns.chunks_mut(words).enumerate().filter(|(i, _)| (sel >> i) & 1 == 1);
            let targets =
                selected.map(|(_, c)| &mut c[start..end]).chain(all.as_deref_mut().map(|a| &mut a[start..end]));
            for o in targets {
                for (o, t) in o.iter_mut().zip(tile.iter()) {
                    *o ^= t;
                }
            }
        }
    }
}

fn xor32(a: &Key, b: &Key) -> Key {
    std::array::from_fn(|i| a[i] ^ b[i])
}

/// The two children of a GGM node.
fn children(seed: &Key) -> [Key; 2] {
    let mut bytes = [0u8; 64];
    ChaCha20Rng::from_seed(*seed).fill_bytes(&mut bytes);
    let mut out = [[0u8; 32]; 2];
    out[0].copy_from_slice(&bytes[..32]);
    out[1].copy_from_slice(&bytes[32..]);
    out
}

/// The base OT that carries level `depth` of block `j`: its choice bit is the bit of `Δ_j` that picks the child
/// at that depth (most significant first).
fn base_index(j: usize, depth: usize) -> usize {
    j * K + (K - 1 - depth)
}

/// The extension receiver's end: every leaf of every block, and the buffers each call's output is written to
/// (kept between calls, see [`KEEP_WORDS`]: fresh multi-megabyte buffers cost a page fault per 4 KiB written).
pub struct Prover {
    leaves: Vec<Option<Leaf>>,
    corrections: Vec<u64>,
    t: Vec<u64>,
}

/// The extension sender's end: `Δ`, every leaf but `Δ_j` of block `j`, and the reused output buffer.
pub struct Verifier {
    delta: u128,
    leaves: Vec<Option<Leaf>>,
    q: Vec<u64>,
}

impl Prover {
    /// Grow one GGM tree per block from fresh roots; returns the prover and the tree message for the verifier:
    /// for base OT `b` (key pair `k0, k1`), `(sum of right children ^ k0, sum of left children ^ k1)` at its level.
    pub fn deal(pairs: &[[Key; 2]], rng: &mut ChaCha20Rng) -> (Prover, Vec<u8>) {
        let mut message = vec![0u8; TREE_BYTES];
        let mut leaves = Vec::with_capacity(BLOCKS * LEAVES);
        for j in 0..BLOCKS {
            let mut root = [0u8; 32];
            rng.fill_bytes(&mut root);
            let mut level = vec![root];
            for depth in 0..K {
                level = level.iter().flat_map(children).collect();
                let sum = |side: usize| level.iter().skip(side).step_by(2).fold([0u8; 32], |acc, s| xor32(&acc, s));
                let b = base_index(j, depth);
                let [k0, k1] = &pairs[b];
                message[b * 64..b * 64 + 32].copy_from_slice(&xor32(&sum(1), k0));
                message[b * 64 + 32..b * 64 + 64].copy_from_slice(&xor32(&sum(0), k1));
            }
            leaves.extend(level.iter().map(|s| Some(Leaf::new(s))));
        }
        (Prover { leaves, corrections: Vec::new(), t: Vec::new() }, message)
    }

    /// Extend to one OT per bit of `choices` (packed, 64 per word): returns the correction message (`u_j ^ c`
    /// for every block) and the columns of `t` (`KAPPA` columns of `choices.len()` words).
    pub fn extend(&mut self, choices: &[u64]) -> (&[u64], &[u64]) {
        let words = choices.len();
        let (corrections, t) = (reuse(&mut self.corrections, BLOCKS * words), reuse(&mut self.t, KAPPA * words));
        if words == 0 {
            return (corrections, t);
        }
        t.par_chunks_mut(K * words)
            .zip(corrections.par_chunks_mut(words))
            .zip(self.leaves.par_chunks_mut(LEAVES))
            .with_min_len(min_tasks(BLOCKS, 64 * words))
            .for_each(|((t, u), leaves)| {
                block_sums(leaves, 0, t, Some(&mut *u));
                for (u, c) in u.iter_mut().zip(choices) {
                    *u ^= c;
                }
            });
        (corrections, t)
    }
}

/// Words of an output buffer kept between calls (8 MiB): a larger one, from a large call, is let go at the next
/// call that fits under it, so a session does not hold its largest product's buffers to the end.
const KEEP_WORDS: usize = 1 << 20;

/// `buf` as `len` words of unspecified content, growing it if needed.
fn reuse(buf: &mut Vec<u64>, len: usize) -> &mut [u64] {
    if buf.len() > KEEP_WORDS && len <= KEEP_WORDS {
        *buf = Vec::new();
    }
    if buf.len() < len {
        buf.resize(len, 0);
    }
    &mut buf[..len]
}

impl Verifier {
    /// Rebuild every leaf but `Δ_j` from the chosen base-OT keys (chosen with the bits of `delta`) and the
    /// prover's tree message. `Err` if the message has the wrong length.
    pub fn punctured(delta: u128, chosen: &[Key], message: &[u8]) -> Result<Verifier, String> {
        if message.len() != TREE_BYTES || chosen.len() != KAPPA {
            return Err(format!("expected {TREE_BYTES} bytes of tree sums, got {}", message.len()));
        }
        let mut leaves = Vec::with_capacity(BLOCKS * LEAVES);
        for j in 0..BLOCKS {
            let mut level: Vec<Option<Key>> = vec![None];
            let mut path = 0usize;
            for depth in 0..K {
                let b = base_index(j, depth);
                let bit = ((delta >> b) & 1) as usize;
                let at = b * 64 + bit * 32;
                let other_sum = xor32(message[at..at + 32].try_into().unwrap_or(&[0; 32]), &chosen[b]);
                let mut next: Vec<Option<Key>> =
                    level.iter().flat_map(|n| n.as_ref().map_or([None, None], |s| children(s).map(Some))).collect();
                let sibling = 2 * path + (1 - bit);
                let known = next.iter().skip(1 - bit).step_by(2).flatten().fold([0u8; 32], |acc, s| xor32(&acc, s));
                next[sibling] = Some(xor32(&other_sum, &known));
                path = 2 * path + bit;
                level = next;
            }
            leaves.extend(level.iter().map(|s| s.as_ref().map(Leaf::new)));
        }
        Ok(Verifier { delta, leaves, q: Vec::new() })
    }

    /// `Δ`.
    pub fn delta(&self) -> u128 {
        self.delta
    }

    /// The columns of `q = t ^ c Δ` for the prover's `corrections` (`words` words per column).
    pub fn extend(&mut self, corrections: &[u64], words: usize) -> &[u64] {
        let delta = self.delta;
        let q = reuse(&mut self.q, KAPPA * words);
        if words == 0 {
            return q;
        }
        let blocks = q.par_chunks_mut(K * words).zip(self.leaves.par_chunks_mut(LEAVES));
        blocks.with_min_len(min_tasks(BLOCKS, 64 * words)).enumerate().for_each(|(j, (q, leaves))| {
            let d = ((delta >> (j * K)) as usize) & (LEAVES - 1);
            block_sums(leaves, d, q, None);
            let correction = &corrections[j * words..(j + 1) * words];
            for (i, column) in q.chunks_mut(words).enumerate() {
                if (d >> i) & 1 == 1 {
                    for (q, c) in column.iter_mut().zip(correction) {
                        *q ^= c;
                    }
                }
            }
        });
        q
    }

    /// Words of corrections expected for `words`-word columns.
    pub fn correction_words(words: usize) -> usize {
        BLOCKS * words
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extension_gives_the_iknp_correlation() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let delta = ((rng.next_u64() as u128) << 64) | rng.next_u64() as u128;
        let pairs: Vec<[Key; 2]> = (0..KAPPA)
            .map(|_| {
                let mut p = [[0u8; 32]; 2];
                rng.fill_bytes(&mut p[0]);
                rng.fill_bytes(&mut p[1]);
                p
            })
            .collect();
        let chosen: Vec<Key> = (0..KAPPA).map(|j| pairs[j][((delta >> j) & 1) as usize]).collect();
        let (mut prover, message) = Prover::deal(&pairs, &mut rng);
        let mut verifier = Verifier::punctured(delta, &chosen, &message).unwrap();
        // Calls in a row (the streams continue): one spanning several tiles with an odd word count, a small one
        // into the now larger, dirty buffers, one past the kept size and a small one after it (a fresh buffer).
        for words in [3usize, 2 * TILE + 5, 7, KEEP_WORDS / KAPPA + 9, 5] {
            let choices: Vec<u64> = (0..words).map(|_| rng.next_u64()).collect();
            let (corrections, t) = prover.extend(&choices);
            assert_eq!(corrections.len(), Verifier::correction_words(words));
            let q = verifier.extend(corrections, words);
            for col in 0..KAPPA {
                let d = if (delta >> col) & 1 == 1 { u64::MAX } else { 0 };
                for w in 0..words {
                    assert_eq!(q[col * words + w], t[col * words + w] ^ (choices[w] & d), "column {col} word {w}");
                }
            }
            // The corrections alone do not reveal the choices (they are masked by the missing leaves).
            assert_ne!(&corrections[..words], &choices[..]);
        }
    }
}
