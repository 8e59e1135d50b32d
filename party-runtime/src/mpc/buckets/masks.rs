//! The per-row work of a bucket-sum call ([`super`]): hashing each row's seed keys into masks, and folding the
//! masks into the sender's masked rows and kept sums, or into the owner's sums. Every `(row, feature, bucket)`
//! costs `q / 2` AES blocks (`q` columns of 64-bit elements) on each side, so this is the call's CPU; the loops
//! run over a compile-time number of blocks per bucket (a window of columns), which the compiler unrolls.
//!
//! Mask block `c` of key `y` (a seed's hash) in call `t` is `π(y ^ (t, c)) ^ y`: the OT extension's tweakable
//! correlation-robust hash. Block `c` gives elements `c * per .. (c + 1) * per` of the bucket's `q` (`per`
//! elements per block, two for a 64-bit ring), split from the low bits up.

use std::ops::Range;

use aes::Aes128;
use aes::cipher::{BlockCipherEncrypt, KeyInit};

use super::MASK_KEY;
use crate::ring::Ring;

/// Most blocks per bucket in one pass over the rows; wider calls take several windows of columns.
const WINDOW: usize = 32;

/// A selected feature: (feature, its first bucket among all the node's, bucket count).
pub(super) type Feature = (usize, usize, usize);

/// The keys of every row and feature of one side, and which features a call takes.
pub(super) struct Keys<'a> {
    /// Row after row, every bucket of every feature.
    pub keys: &'a [u128],
    /// Buckets per row (all features).
    pub row_leaves: usize,
    /// The call's selected features.
    pub feats: &'a [Feature],
}

/// One row's keys and hashed blocks for a window of a call (buffers reused from row to row).
struct Masker {
    aes: Aes128,
    tweak: u128,
    keys: Vec<u128>,
    blocks: Vec<aes::Block>,
}

impl Masker {
    fn new(tweak: u64) -> Masker {
        Masker {
            aes: Aes128::new(&MASK_KEY.into()),
            tweak: (tweak as u128) << 64,
            keys: Vec::new(),
            blocks: Vec::new(),
        }
    }

    /// Encrypt blocks `first..first + NB` of every selected bucket's key of row `r`, bucket after bucket.
    fn hash_row<const NB: usize>(&mut self, k: &Keys, r: usize, first: usize) {
        self.keys.clear();
        for &(_, start, c) in k.feats {
            self.keys.extend_from_slice(&k.keys[r * k.row_leaves + start..][..c]);
        }
        self.blocks.resize(self.keys.len() * NB, aes::Block::default());
        for (y, bs) in self.keys.iter().zip(self.blocks.chunks_exact_mut(NB)) {
            for (c, b) in bs.iter_mut().enumerate() {
                *b = (y ^ self.tweak ^ (first + c) as u128).to_le_bytes().into();
            }
        }
        self.aes.encrypt_blocks(&mut self.blocks);
    }

    /// The row's `k`-th selected bucket's masks in the window: `NB * per` elements (`E` of them, the rest zero).
    #[inline(always)]
    fn masks<R: Ring, const NB: usize, const E: usize>(&self, k: usize) -> [R; E] {
        let per = (128 / R::BITS) as usize;
        let y = self.keys[k];
        let mut out = [R::ZERO; E];
        for (c, b) in self.blocks[k * NB..(k + 1) * NB].iter().enumerate() {
            let h = u128::from_le_bytes((*b).into()) ^ y;
            for j in 0..per {
                out[c * per + j] = R::from_u128(h >> (R::BITS as usize * j));
            }
        }
        out
    }
}

/// The columns of window `first` (in blocks) of a call with `q` columns: its range of columns.
fn columns<R: Ring>(q: usize, first: usize, nb: usize) -> Range<usize> {
    let per = (128 / R::BITS) as usize;
    (first * per).min(q)..((first + nb) * per).min(q)
}

/// Run `pass::<NB, E>(first)` over the call's windows: `NB` blocks each (the call's block count where it is
/// at most [`WINDOW`], rounded up to a power of two above 4), `E = 2 NB` element slots.
macro_rules! windows {
    ($q:expr, $r:ty, $pass:ident ( $($arg:expr),* )) => {{
        let per = (128 / <$r>::BITS) as usize;
        let blocks = $q.div_ceil(per);
        let mut first = 0;
        while first < blocks {
            first += match (blocks - first).min(WINDOW) {
                1 => { $pass::<$r, 1, 2>($($arg,)* first); 1 }
                2 => { $pass::<$r, 2, 4>($($arg,)* first); 2 }
                3 => { $pass::<$r, 3, 6>($($arg,)* first); 3 }
                4 => { $pass::<$r, 4, 8>($($arg,)* first); 4 }
                5..=8 => { $pass::<$r, 8, 16>($($arg,)* first); 8 }
                9..=16 => { $pass::<$r, 16, 32>($($arg,)* first); 16 }
                _ => { $pass::<$r, 32, 64>($($arg,)* first); 32 }
            };
        }
    }};
}

/// The sender's part for `rows`: each row's masked shares `d` (row after row, selected feature after feature,
/// `q` each) and its own shares of the bucket sums (`-sum` of the masks, selected bucket after bucket).
pub(super) fn sender_rows<R: Ring>(k: &Keys, b: &[R], q: usize, tweak: u64, rows: Range<usize>) -> (Vec<R>, Vec<R>) {
    let m: usize = k.feats.iter().map(|f| f.2).sum();
    let mut d = vec![R::ZERO; rows.len() * k.feats.len() * q];
    let mut kept = vec![R::ZERO; m * q];
    let mut masker = Masker::new(tweak);
    windows!(q, R, sender_pass(k, b, q, &rows, &mut masker, &mut d, &mut kept));
    (d, kept)
}

/// [`sender_rows`] over the columns of one window.
#[allow(clippy::too_many_arguments)]
fn sender_pass<R: Ring, const NB: usize, const E: usize>(
    k: &Keys,
    b: &[R],
    q: usize,
    rows: &Range<usize>,
    masker: &mut Masker,
    d: &mut [R],
    kept: &mut [R],
    first: usize,
) {
    let cols = columns::<R>(q, first, NB);
    let w = cols.len();
    for (i, r) in rows.clone().enumerate() {
        masker.hash_row::<NB>(k, r, first);
        let mut at = 0;
        for (fi, &(_, _, c)) in k.feats.iter().enumerate() {
            let mut acc = [R::ZERO; E];
            acc[..w].copy_from_slice(&b[r * q + cols.start..r * q + cols.end]);
            for bucket in at..at + c {
                let l = masker.masks::<R, NB, E>(bucket);
                let kk = &mut kept[bucket * q + cols.start..bucket * q + cols.end];
                for ((a, v), s) in acc.iter_mut().zip(&l).zip(kk) {
                    *a = a.add(*v);
                    *s = s.sub(*v);
                }
            }
            d[(i * k.feats.len() + fi) * q + cols.start..][..w].copy_from_slice(&acc[..w]);
            at += c;
        }
    }
}

/// The owner's side of a call: its seeds (all but its row's bucket's) and its rows' buckets.
pub(super) struct Owner<'a> {
    pub keys: Keys<'a>,
    /// Its rows' buckets, row-major (`width` features per row).
    pub buckets: &'a [u32],
    pub width: usize,
}

impl Owner<'_> {
    /// Its shares of the bucket sums over `rows`, from the sender's masked shares `d` of the message's rows (from
    /// row `first` on) and its own shares `b` of the columns.
    pub(super) fn rows<R: Ring>(
        &self,
        d: &[R],
        b: &[R],
        q: usize,
        tweak: u64,
        (first, rows): (usize, Range<usize>),
    ) -> Vec<R> {
        let m: usize = self.keys.feats.iter().map(|f| f.2).sum();
        let mut sums = vec![R::ZERO; m * q];
        let mut masker = Masker::new(tweak);
        windows!(q, R, owner_pass(self, (d, b), q, (first, &rows), &mut masker, &mut sums));
        sums
    }
}

/// [`Owner::rows`] over the columns of one window. Every bucket's mask is added to its sum and to the row's
/// running total `a`, the own bucket's too (hashed from a placeholder key: the one mask the owner lacks); the own
/// bucket then gets `d - a + b`, where the placeholder's mask cancels.
fn owner_pass<R: Ring, const NB: usize, const E: usize>(
    o: &Owner,
    (d, b): (&[R], &[R]),
    q: usize,
    (first_row, rows): (usize, &Range<usize>),
    masker: &mut Masker,
    sums: &mut [R],
    first: usize,
) {
    let cols = columns::<R>(q, first, NB);
    let w = cols.len();
    let feats = o.keys.feats;
    for r in rows.clone() {
        let i = r - first_row;
        masker.hash_row::<NB>(&o.keys, r, first);
        let mut at = 0;
        for (fi, &(f, _, c)) in feats.iter().enumerate() {
            let own = at + o.buckets[r * o.width + f] as usize;
            let mut acc = [R::ZERO; E];
            for bucket in at..at + c {
                let l = masker.masks::<R, NB, E>(bucket);
                let sk = &mut sums[bucket * q + cols.start..bucket * q + cols.end];
                for ((a, v), s) in acc.iter_mut().zip(&l).zip(sk) {
                    *a = a.add(*v);
                    *s = s.add(*v);
                }
            }
            let masked = &d[(i * feats.len() + fi) * q + cols.start..][..w];
            let mine = &b[r * q + cols.start..r * q + cols.end];
            let so = &mut sums[own * q + cols.start..own * q + cols.end];
            // With u the placeholder's mask in both: (s - u) + (m - (a - u)) + v = s + m - a + v.
            for (((s, a), m), v) in so.iter_mut().zip(&acc).zip(masked).zip(mine) {
                *s = s.add(m.sub(*a)).add(*v);
            }
            at += c;
        }
    }
}
