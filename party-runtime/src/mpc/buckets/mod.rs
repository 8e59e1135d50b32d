//! Per-bucket sums of shared columns under each node's private bucketing of the rows (SS-XGB's histograms):
//! node `i` knows which bucket of each of its features every row falls in; the `rows x q` columns are shared;
//! every node gets shares of the columns' sums over each bucket's rows, and no node learns another's buckets.
//!
//! Any backend can multiply each node's one-hot bucket matrix into the columns ([`by_products`]). The
//! two-party backend uses that each row sits in exactly one bucket per feature ([`Mpc::bucket_sums_ot`]): per
//! row and feature of the owner, the other node (the sender) holds one pseudorandom seed per bucket, and the
//! owner all of them but its row's bucket's (punctured GGM trees, [`crate::crypto::punctured`], made once per
//! bucketing). For each call the sender keeps `-sum_r L_(r,b)` for every bucket `b`, where `L` is a seed's
//! mask for this call, and sends `d_r = v_r + sum_b L_(r,b)` for its share `v_r` of the row; the owner adds `L`
//! for the buckets it knows and `d_r` minus those for its row's bucket, where the one mask it lacks hides `v_r`.
//! The shares then add up to the bucket sums. Per call, `rows x features x q` elements in each direction and
//! one fixed-key AES call per bucket per two elements, against RLWE's polynomial products for the same
//! one-hot matrix.

use aes::Aes128;
use aes::cipher::{BlockCipherEncrypt, KeyInit};
use rayon::prelude::*;

use self::masks::{Feature, Keys, Owner};
use super::engine::Mpc;
use super::kernels::{Kernels, Operand};
use super::local::{ring_bytes, ring_from_bytes};
use super::share::Share;
use crate::context::compute;
use crate::crypto::prg::Prg;
use crate::crypto::punctured;
use crate::error::{Error, Result};
use crate::ring::Ring;

mod masks;

/// Each node's private bucketing of the same rows, prepared once for many bucket sums.
pub struct Bucketing {
    /// Every node's bucket count per feature (public).
    counts: Vec<Vec<usize>>,
    me: usize,
    rows: usize,
    /// This node's rows' buckets, row-major (`rows` x its features).
    mine: Vec<u32>,
    /// The two-party backend's punctured seeds, made on first use.
    seeds: Option<Seeds>,
    /// Calls so far: each call's masks are tweaked by its number.
    calls: u64,
}

impl Bucketing {
    /// Node `me`'s buckets `mine` (row-major, `rows` x its features, each below its feature's count in
    /// `counts[me]`), with every node's counts.
    pub fn new(counts: Vec<Vec<usize>>, me: usize, rows: usize, mine: Vec<u32>) -> Result<Bucketing> {
        let own = counts.get(me).ok_or_else(|| Error::Internal(format!("no bucket counts for node {me}")))?;
        if mine.len() != rows * own.len() {
            return Err(Error::Internal(format!("{} buckets for {rows} rows of {} features", mine.len(), own.len())));
        }
        if let Some((i, b)) = mine.iter().enumerate().find(|(i, b)| **b as usize >= own[i % own.len()]) {
            return Err(Error::Internal(format!("row {}'s bucket {b} is beyond its feature's", i / own.len())));
        }
        Ok(Bucketing { counts, me, rows, mine, seeds: None, calls: 0 })
    }

    /// Node `i`'s selected features as (feature, first bucket among all its features, count).
    fn features(&self, i: usize, selected: &[bool]) -> Vec<Feature> {
        let starts = self.counts[i].iter().scan(0, |acc, c| Some(std::mem::replace(acc, *acc + c)));
        self.counts[i]
            .iter()
            .zip(starts)
            .enumerate()
            .filter(|(f, _)| selected.get(*f).copied().unwrap_or(false))
            .map(|(f, (c, s))| (f, s, *c))
            .collect()
    }

    /// Node `i`'s selected buckets in all.
    fn selected_buckets(&self, i: usize, selected: &[bool]) -> usize {
        self.features(i, selected).iter().map(|(_, _, c)| c).sum()
    }
}

/// The bucket sums by each node's one-hot matrix times the columns ([`Kernels::matmul_plain_each`]): what the
/// protocol interface's default runs.
pub async fn by_products<R: Ring, K: Kernels<R>>(
    k: &mut K,
    bk: &Bucketing,
    selected: &[Vec<bool>],
    b: &Share<R>,
    q: usize,
) -> Result<Vec<Share<R>>> {
    let (me, n) = (bk.me, bk.rows);
    let feats = bk.features(me, &selected[me]);
    let m = bk.selected_buckets(me, &selected[me]);
    let mut a = vec![R::ZERO; m * n];
    let width = bk.counts[me].len();
    let mut at = 0;
    for (f, _, c) in feats {
        for r in 0..n {
            a[(at + bk.mine[r * width + f] as usize) * n + r] = R::ONE;
        }
        at += c;
    }
    let dims: Vec<(usize, usize, usize)> =
        (0..bk.counts.len()).map(|i| (bk.selected_buckets(i, &selected[i]), n, q)).collect();
    let (out, _) = k.matmul_plain_each(&a, &vec![b; dims.len()], &dims, Operand::Full).await?;
    Ok(out)
}

/// Each seed hashed once (`π(seed)`, the key of its masks), as the sender's and the receiver's seeds are kept.
struct Seeds {
    /// As sender, for the peer's features: row after row, the buckets of every feature.
    sent: Vec<u128>,
    /// As owner, for this node's: the same, the row's own bucket's unknown.
    got: Vec<u128>,
}

/// The fixed key of the masks' hash (a public constant, distinct from the OT hash's and the trees').
const MASK_KEY: [u8; 16] = *b"\xb5\x47\x09\x17\x92\x16\xd5\xd9\x89\x79\xfb\x1b\xd1\x31\x0b\xa6";

/// Rows per message.
const ROWS_PER_MSG: usize = 2048;
/// Rows per rayon task.
const ROWS_PER_TASK: usize = 64;

const SEEDS: &str = "mpc/buckets/seeds";
const MASKED: &str = "mpc/buckets/masked";

impl<R: Ring> Mpc<'_, R> {
    /// [`Kernels::bucket_sums`] by punctured seeds (module docs): shares of node 0's and node 1's bucket sums.
    pub(super) async fn bucket_sums_ot(
        &mut self,
        bk: &mut Bucketing,
        selected: &[Vec<bool>],
        b: &[R],
        q: usize,
    ) -> Result<[Vec<R>; 2]> {
        let (me, n) = (bk.me, bk.rows);
        if b.len() != n * q {
            return Err(Error::Internal(format!("bucket sums of {} elements, not {n} rows x {q}", b.len())));
        }
        if q == 0 {
            return Ok([Vec::new(), Vec::new()]);
        }
        if bk.seeds.is_none() {
            bk.seeds = Some(self.plant(bk).await?);
        }
        let tweak = bk.calls;
        bk.calls += 1;
        let bk = &*bk;
        let seeds = bk.seeds.as_ref().ok_or_else(|| Error::Internal("bucket seeds".into()))?;
        let (theirs, mine) = (bk.features(1 - me, &selected[1 - me]), bk.features(me, &selected[me]));
        let (ctx, peer) = (self.ctx, self.link.name.clone());
        let row_theirs: usize = bk.counts[1 - me].iter().sum();
        let send = async {
            let m = theirs.iter().map(|f| f.2).sum::<usize>();
            let mut kept = vec![R::ZERO; m * q];
            let keys = Keys { keys: &seeds.sent, row_leaves: row_theirs, feats: &theirs };
            for first in (0..n).step_by(ROWS_PER_MSG) {
                let rows = first..(first + ROWS_PER_MSG).min(n);
                let (d, u) = compute(|| par_rows(rows, |r| masks::sender_rows(&keys, b, q, tweak, r)));
                kept.iter_mut().zip(&u).for_each(|(k, u)| *k = k.add(*u));
                ctx.channel.send_bytes(&peer, MASKED, ring_bytes(&d)).await.map_err(|e| ctx.link_error(e))?;
            }
            Ok::<_, Error>(kept)
        };
        let receive = async {
            let m = mine.iter().map(|f| f.2).sum::<usize>();
            let mut sums = vec![R::ZERO; m * q];
            let row_mine: usize = bk.counts[me].iter().sum();
            let width = bk.counts[me].len();
            let keys = Keys { keys: &seeds.got, row_leaves: row_mine, feats: &mine };
            let owner = Owner { keys, buckets: &bk.mine, width };
            for first in (0..n).step_by(ROWS_PER_MSG) {
                let rows = first..(first + ROWS_PER_MSG).min(n);
                let want = rows.len() * mine.len() * q * (R::BITS / 8) as usize;
                let bytes = ctx.channel.recv_bytes(&peer, MASKED).await.map_err(|e| ctx.link_error(e))?;
                if bytes.len() != want {
                    let e = format!("expected {want} bytes, got {}", bytes.len());
                    return Err(ctx.bad_message(&peer, MASKED, e));
                }
                let d: Vec<R> = bytes.chunks_exact((R::BITS / 8) as usize).map(ring_from_bytes).collect();
                let (_, w) = compute(|| par_rows(rows, |r| (Vec::new(), owner.rows(&d, b, q, tweak, (first, r)))));
                sums.iter_mut().zip(&w).for_each(|(s, w)| *s = s.add(*w));
            }
            Ok(sums)
        };
        let (kept, sums) = tokio::try_join!(send, receive)?;
        Ok(if me == 0 { [sums, kept] } else { [kept, sums] })
    }

    /// The punctured seeds of a bucketing, both directions at once: this node sends a tree per row and peer
    /// feature and receives one per row and own feature, punctured at the row's bucket.
    async fn plant(&mut self, bk: &Bucketing) -> Result<Seeds> {
        let me = bk.me;
        let per_row = |i: usize| (0..bk.rows).flat_map(move |_| bk.counts[i].iter().copied());
        let theirs: Vec<usize> = per_row(1 - me).collect();
        let mine: Vec<usize> = per_row(me).collect();
        let alphas: Vec<usize> = bk.mine.iter().map(|b| *b as usize).collect();
        let mut prg = Prg::private(&mut self.rng);
        let mut words = vec![0u64; 2 * theirs.len()];
        prg.fill(&mut words);
        let roots: Vec<u128> = words.chunks_exact(2).map(|w| w[0] as u128 | (w[1] as u128) << 64).collect();
        let (ctx, peer) = (self.ctx, self.link.name.clone());
        let (sent, got) = tokio::try_join!(
            punctured::send(&mut self.sender, ctx, (&peer, SEEDS), &theirs, &roots),
            punctured::receive(&mut self.receiver, ctx, (&peer, SEEDS), &mine, &alphas)
        )?;
        let key = |v: Vec<u128>| {
            compute(|| {
                let aes = Aes128::new(&MASK_KEY.into());
                let mut blocks: Vec<aes::Block> = v.iter().map(|s| s.to_le_bytes().into()).collect();
                blocks.par_chunks_mut(4096).for_each(|c| aes.encrypt_blocks(c));
                blocks.iter().map(|b| u128::from_le_bytes((*b).into())).collect()
            })
        };
        Ok(Seeds { sent: key(sent), got: key(got) })
    }
}

/// `f` over `rows` in parallel pieces: their first outputs concatenated in row order, their second summed.
fn par_rows<R: Ring>(
    rows: std::ops::Range<usize>,
    f: impl Fn(std::ops::Range<usize>) -> (Vec<R>, Vec<R>) + Sync,
) -> (Vec<R>, Vec<R>) {
    let end = rows.end;
    let starts: Vec<usize> = rows.step_by(ROWS_PER_TASK).collect();
    let parts: Vec<(Vec<R>, Vec<R>)> = starts.into_par_iter().map(|s| f(s..(s + ROWS_PER_TASK).min(end))).collect();
    let (mut cat, mut sum) = (Vec::new(), Vec::new());
    for (c, s) in parts {
        cat.extend(c);
        if sum.is_empty() {
            sum = s;
        } else {
            sum.iter_mut().zip(&s).for_each(|(a, v): (&mut R, &R)| *a = a.add(*v));
        }
    }
    (cat, sum)
}
