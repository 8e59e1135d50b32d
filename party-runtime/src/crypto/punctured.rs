//! All-but-one OT of seeds (punctured GGM trees), the building block of silent OT's PCGs (Boyle, Couteau,
//! Gilboa, Ishai, Kohl, Scholl, CCS 2019, section 4): per tree the sender holds `count` pseudorandom leaf
//! seeds, the receiver learns every leaf but the one at its private index `alpha`, and the sender learns
//! nothing about `alpha`.
//!
//! The sender expands a random root into a binary tree with the length-doubling PRG `G(s) = (π_0(s) ^ s,
//! π_1(s) ^ s)` (fixed-key AES under two keys), keeping only the nodes above the first `count` leaves. At each
//! level it sums (XOR) the left children and the right children; one random OT per level gives the receiver the
//! sum of the side off its path (its choice bit is the complement of `alpha`'s bit there). Knowing every node of
//! the level above but the one on its path, the receiver expands those, and the sum minus their children on
//! that side is the path node's sibling. `log2(count)` random OTs and 32 bytes per level and tree.
//!
//! Semi-honest security: the receiver's choice bits are hidden by the OT extension; the sum it does not choose
//! is masked by the pad it lacks, so the path leaf stays pseudorandom to it (GGM).

use aes::Aes128;
use aes::cipher::{BlockCipherEncrypt, KeyInit};
use rayon::prelude::*;

use super::ot::{OtReceiver, OtSender};
use crate::context::{PartyContext, compute};
use crate::error::Result;

/// The PRG's fixed keys (public constants: the next 32 bytes of pi's fraction after the OT hash's key).
const PRG_KEYS: [[u8; 16]; 2] = [
    *b"\xa4\x09\x38\x22\x29\x9f\x31\xd0\x08\x2e\xfa\x98\xec\x4e\x6c\x89",
    *b"\x45\x28\x21\xe6\x38\xd0\x13\x77\xbe\x54\x66\xcf\x34\xe9\x0c\x6c",
];

/// The two fixed-key permutations of the tree's PRG.
fn prg() -> [Aes128; 2] {
    PRG_KEYS.map(|k| Aes128::new(&k.into()))
}

/// Tree levels for `count` leaves: `ceil(log2(count))` (none for one leaf).
pub fn depth(count: usize) -> u32 {
    usize::BITS - count.saturating_sub(1).leading_zeros()
}

/// Nodes kept at level `l` of a tree of `d` levels over `count` leaves: those above a leaf below `count`.
fn kept(count: usize, d: u32, l: u32) -> usize {
    count.div_ceil(1 << (d - l))
}

/// The kept children of `nodes` (level `l`, children at `l + 1`), left then right of each: `π_0(s) ^ s` and
/// `π_1(s) ^ s` of their parent `s`.
fn children(aes: &[Aes128; 2], nodes: &[u128], count: usize, d: u32, l: u32) -> Vec<u128> {
    let n = kept(count, d, l + 1);
    let parents: Vec<aes::Block> = nodes[..n.div_ceil(2)].iter().map(|s| s.to_le_bytes().into()).collect();
    let (mut left, mut right) = (parents.clone(), parents);
    aes[0].encrypt_blocks(&mut left);
    aes[1].encrypt_blocks(&mut right);
    (0..n)
        .map(|c| {
            let b = if c % 2 == 0 { left[c / 2] } else { right[c / 2] };
            u128::from_le_bytes(b.into()) ^ nodes[c / 2]
        })
        .collect()
}

/// The leaves of the tree from `root` over `count` leaves, and each level's sums of left and right children.
pub fn expand(aes: &[Aes128; 2], root: u128, count: usize) -> (Vec<u128>, Vec<[u128; 2]>) {
    let d = depth(count);
    let mut nodes = vec![root];
    let mut sums = Vec::with_capacity(d as usize);
    for l in 0..d {
        nodes = children(aes, &nodes, count, d, l);
        let mut s = [0u128; 2];
        for (c, v) in nodes.iter().enumerate() {
            s[c % 2] ^= v;
        }
        sums.push(s);
    }
    nodes.truncate(count);
    (nodes, sums)
}

/// Every leaf but `alpha`'s (left 0) from the sums of the sides off the path (`siblings[l]`, level `l + 1`).
pub fn puncture(aes: &[Aes128; 2], alpha: usize, count: usize, siblings: &[u128]) -> Vec<u128> {
    let d = depth(count);
    // Level l's nodes, the path node's entry 0 (unknown).
    let mut nodes: Vec<u128> = vec![0];
    for l in 0..d {
        let path = alpha >> (d - l);
        let mut next = children(aes, &nodes, count, d, l);
        let here = alpha >> (d - l - 1);
        for c in [2 * path, 2 * path + 1] {
            if let Some(v) = next.get_mut(c) {
                *v = 0;
            }
        }
        let sibling = here ^ 1;
        if sibling < next.len() {
            let side = sibling % 2;
            let known = next.iter().enumerate().filter(|(c, _)| c % 2 == side).fold(0, |a, (_, v)| a ^ v);
            next[sibling] = siblings[l as usize] ^ known;
        }
        nodes = next;
    }
    nodes.truncate(count);
    nodes
}

/// Trees handled per rayon task.
const TREES_PER_TASK: usize = 256;

/// Sender's side for trees of `counts[t]` leaves, from `roots[t]`: every tree's leaves, tree after tree. One
/// random OT per level (`{tag}/ot`) and the masked sums (`{tag}/sums`).
pub async fn send(
    sender: &mut OtSender,
    ctx: &PartyContext,
    (peer, tag): (&str, &str),
    counts: &[usize],
    roots: &[u128],
) -> Result<Vec<u128>> {
    let ots: usize = counts.iter().map(|c| depth(*c) as usize).sum();
    let (leaves, sums) = compute(|| {
        let aes = prg();
        let trees: Vec<(Vec<u128>, Vec<[u128; 2]>)> =
            counts.par_iter().zip(roots).with_min_len(TREES_PER_TASK).map(|(c, r)| expand(&aes, *r, *c)).collect();
        let sums: Vec<[u128; 2]> = trees.iter().flat_map(|(_, s)| s.iter().copied()).collect();
        (trees.into_iter().flat_map(|(l, _)| l).collect::<Vec<u128>>(), sums)
    });
    if ots > 0 {
        let (p0, p1) = sender.random_pads_wide(ctx, &format!("{tag}/ot"), ots, 2).await?;
        let pad = |p: &[u64], i: usize| p[2 * i] as u128 | (p[2 * i + 1] as u128) << 64;
        let mut msg = Vec::with_capacity(32 * ots);
        for (i, s) in sums.iter().enumerate() {
            msg.extend_from_slice(&(s[0] ^ pad(&p0, i)).to_le_bytes());
            msg.extend_from_slice(&(s[1] ^ pad(&p1, i)).to_le_bytes());
        }
        ctx.channel.send_bytes(peer, &format!("{tag}/sums"), msg).await.map_err(|e| ctx.link_error(e))?;
    }
    Ok(leaves)
}

/// Receiver's side of [`send`], punctured at `alphas[t] < counts[t]`: every tree's leaves, tree after tree, 0
/// at each punctured one.
pub async fn receive(
    receiver: &mut OtReceiver,
    ctx: &PartyContext,
    (peer, tag): (&str, &str),
    counts: &[usize],
    alphas: &[usize],
) -> Result<Vec<u128>> {
    let ots: usize = counts.iter().map(|c| depth(*c) as usize).sum();
    let mut siblings = vec![0u128; ots];
    if ots > 0 {
        // Choice at level l: the complement of alpha's bit below it (the side off the path).
        let mut choices = vec![0u64; ots.div_ceil(64)];
        let mut i = 0;
        for (c, a) in counts.iter().zip(alphas) {
            let d = depth(*c);
            for l in 0..d {
                if (a >> (d - l - 1)) & 1 == 0 {
                    choices[i / 64] |= 1 << (i % 64);
                }
                i += 1;
            }
        }
        let pads = receiver.random_pads_wide(ctx, &format!("{tag}/ot"), &choices, ots, 2).await?;
        let sums_tag = format!("{tag}/sums");
        let msg = ctx.channel.recv_bytes(peer, &sums_tag).await.map_err(|e| ctx.link_error(e))?;
        if msg.len() != 32 * ots {
            return Err(ctx.bad_message(peer, &sums_tag, format!("expected {} bytes, got {}", 32 * ots, msg.len())));
        }
        for (i, s) in siblings.iter_mut().enumerate() {
            let c = ((choices[i / 64] >> (i % 64)) & 1) as usize;
            let at = 32 * i + 16 * c;
            let sent = u128::from_le_bytes(msg[at..at + 16].try_into().unwrap_or_default());
            *s = sent ^ (pads[2 * i] as u128 | (pads[2 * i + 1] as u128) << 64);
        }
    }
    Ok(compute(|| {
        let aes = prg();
        let starts: Vec<usize> =
            counts.iter().scan(0, |acc, c| Some(std::mem::replace(acc, *acc + depth(*c) as usize))).collect();
        let trees: Vec<Vec<u128>> = counts
            .par_iter()
            .zip(alphas)
            .zip(starts)
            .with_min_len(TREES_PER_TASK)
            .map(|((c, a), s)| puncture(&aes, *a, *c, &siblings[s..s + depth(*c) as usize]))
            .collect();
        trees.into_iter().flatten().collect()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_punctured_tree_has_every_leaf_but_the_chosen_one() {
        let aes = prg();
        for count in [1usize, 2, 3, 5, 8, 10, 11, 16, 17, 33] {
            for alpha in 0..count {
                let root = 0x0123_4567_89ab_cdef_u128 * (count as u128 + 7) + alpha as u128;
                let (leaves, sums) = expand(&aes, root, count);
                assert_eq!(leaves.len(), count);
                let d = depth(count);
                let siblings: Vec<u128> = (0..d).map(|l| sums[l as usize][1 - ((alpha >> (d - l - 1)) & 1)]).collect();
                let got = puncture(&aes, alpha, count, &siblings);
                for (k, (g, l)) in got.iter().zip(&leaves).enumerate() {
                    if k == alpha {
                        assert_eq!(*g, 0, "count {count}: the punctured leaf {alpha} is hidden");
                    } else {
                        assert_eq!(g, l, "count {count}, alpha {alpha}: leaf {k}");
                    }
                }
                let distinct: std::collections::HashSet<&u128> = leaves.iter().collect();
                assert_eq!(distinct.len(), count, "leaves are distinct");
            }
        }
    }

    #[test]
    fn depths_cover_the_leaves() {
        assert_eq!([1, 2, 3, 4, 5, 16, 17].map(depth), [0, 1, 2, 2, 3, 4, 5]);
    }
}
