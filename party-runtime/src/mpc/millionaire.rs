//! The sign bit of a shared value, by a millionaires' comparison between the two parties' private numbers.
//!
//! The sign bit of `v` with `|v| < 2^L` is the complement of bit `L` of `w = v + 2^L`; with shares `w0 + w1`,
//! that bit is `w0_L ^ w1_L ^ carry`, where `carry = [low_L(w0) + low_L(w1) >= 2^L]` compares node 0's
//! `a = low_L(w0)` with node 1's `c = 2^L - 1 - low_L(w1)`: `carry = [a > c]`.
//!
//! The comparison follows CrypTFlow2 (Rathee et al., CCS 2020): `a` and `c` are cut into 4-bit digits; for each
//! digit a 1-out-of-16 OT, node 0 choosing with its digit, gives XOR shares of the leaf bits `g = [a_d > c_d]`
//! and `e = [a_d = c_d]`; the leaves combine pairwise (`g = g_hi ^ e_hi g_lo`, `e = e_hi e_lo`) in `log(L/4)`
//! levels of ANDs, each one simultaneous exchange with AND triples made alongside the leaves
//! ([`super::triples`]). The 1-out-of-16 OT is Naor and Pinkas's construction from four random 1-out-of-2 OTs
//! ([`crate::crypto::ot::OtSender::random_pads_wide`]): message `u` (a 2-bit slot of a 32-bit word per
//! relation) is masked by the XOR, over the four OTs, of slot `u` of the pad that `u`'s bit selects, so every
//! unchosen message keeps a pad slice the chooser cannot compute, and no two messages share one. The two ANDs of
//! a pair share an operand and take one OT per direction. 28 leaf OTs and 6 AND OT pairs for a 28-bit
//! comparison, against 28 OTs and 49 AND pairs with per-bit leaves. In the (insecure) dealer mode the
//! 1-out-of-16 OTs are dealt.
//!
//! Comparisons that share node 0's number share its OTs: node 0 chooses once per digit and node 1's message
//! carries a 32-bit word of leaves per relation (wider pads from the same OTs).
//! - A clip's two limits compare `d` and `k - d` with 0. Shared as `(!d0, k + 1 - d1)`, `k - d` gives node 0
//!   the complement of its number for `d`, so both carries compare the same `a` with two of node 1's numbers
//!   (`[a > c]` and `[a < b]`): 28 leaf OTs instead of 56 for the pair at 28 bits.
//! - An octave search compares `x` with many public constants `c_j`: node 1 subtracts them, node 0's number
//!   stays `low(x0 + 2^L)` for all, so 20 thresholds cost the leaf OTs of one comparison (the messages and the
//!   AND trees stay one per threshold).

use super::engine::Mpc;
use super::triples::TriplesStarted;
use crate::context::compute;
use crate::crypto::prg::{Prg, Words};
use crate::error::Result;
use crate::ring::Ring;

/// Bits per digit of the comparison (1-out-of-16 OTs).
const DIGIT: usize = 4;

/// Leaf OTs per round (bounds memory: 4 OTs and a 32- or 64-bit message per digit).
const LEAF_ROUND_OTS: usize = 1 << 18;

/// Most AND triples made ahead of a comparison tree (bounds memory); larger trees take an OT round per level.
const MAX_TRIPLES: usize = 1 << 20;

/// The pairs a tree over `width` leaves combines, over all its levels.
fn tree_pairs(mut width: usize) -> usize {
    let mut pairs = 0;
    while width > 1 {
        pairs += width / 2;
        width = width.div_ceil(2);
    }
    pairs
}

/// How node 0's number relates to one of node 1's, digit by digit.
#[derive(Clone, Copy)]
enum Rel {
    Above,
    Below,
}

impl Rel {
    /// Leaf bits of node 0's digit `u` against node 1's digit `t`: the strict relation, then equality.
    fn leaf(self, u: u32, t: u32) -> u64 {
        let strict = match self {
            Rel::Above => u > t,
            Rel::Below => u < t,
        };
        strict as u64 | ((u == t) as u64) << 1
    }
}

/// Digit `d` (4 bits, lowest first) of `v`.
fn digit_of(v: u128, d: usize) -> u32 {
    ((v >> (d * DIGIT)) & 0xf) as u32
}

/// Every slot's lowest bit: a relation's leaves for node 0's 16 possible digits are 2-bit slots of a `u32`.
const ONES: u32 = 0x5555_5555;

/// Node 1's leaf messages, unmasked: per relation and node 1's digit `t`, the word whose slot `u` holds the
/// leaves of node 0's digit `u` against `t`. Built once per comparison batch.
struct LeafTable {
    words: Vec<[u32; 16]>,
}

impl LeafTable {
    fn new(rels: &[Rel]) -> Self {
        let table =
            |rel: Rel| std::array::from_fn(|t| (0..16).fold(0, |w, u| w | (rel.leaf(u, t as u32) as u32) << (2 * u)));
        LeafTable { words: rels.iter().map(|rel| table(*rel)).collect() }
    }

    /// Relation `j`'s leaves of digit `d` of node 1's `threshold`, XOR its 2-bit share `r` in every slot.
    fn word(&self, j: usize, threshold: u128, d: usize, r: u32) -> u32 {
        self.words[j][digit_of(threshold, d) as usize] ^ (r * ONES)
    }
}

/// The slots `u` with bit `b` of `u` set, as a mask.
fn slots_with_bit(b: usize) -> u32 {
    (0..16).filter(|u| u >> b & 1 == 1).fold(0, |m, u| m | 3 << (2 * u))
}

/// The 1-out-of-16 key of one relation from four random OTs' pads (`p[b]` for choices 0 and 1): slot `u`
/// takes, for each bit `b`, the pad that bit `b` of `u` selects (its own slice of that pad).
fn key(pads: [[u32; 2]; DIGIT]) -> u32 {
    pads.iter().enumerate().fold(0, |k, (b, [p0, p1])| {
        let m = slots_with_bit(b);
        k ^ (p0 & !m | p1 & m)
    })
}

/// `w` with slot `u` moved to slot `u ^ s` (the dealt OT's re-indexing of its keys).
fn permute(mut w: u32, s: u32) -> u32 {
    for b in (0..DIGIT).filter(|b| s >> b & 1 == 1) {
        let (m, shift) = (slots_with_bit(b), 2 << b);
        w = (w & m) >> shift | (w & !m) << shift;
    }
    w
}

/// Relation `j`'s 32 bits of OT `ot`'s pad (`words` 64-bit words per OT).
fn pad_half(pads: &[u64], ot: usize, words: usize, j: usize) -> u32 {
    (pads[ot * words + j / 2] >> (32 * (j % 2))) as u32
}

/// 64-bit words per pad for `rels` relations (32 bits each).
fn pad_words(rels: usize) -> usize {
    rels.div_ceil(2)
}

/// A 2-bit share per relation from a private stream (32 relations per word).
fn leaf_shares(own: &mut Prg, rels: usize) -> impl Iterator<Item = u32> + '_ {
    let mut word = 0;
    (0..rels).map(move |j| {
        if j % 32 == 0 {
            word = own.word();
        }
        (word >> (2 * (j % 32))) as u32 & 3
    })
}

impl<R: Ring> Mpc<'_, R> {
    /// XOR shares of the sign bit of each `x`, assuming `|x| < 2^bound` (raw units).
    pub async fn msb_bits(&mut self, x: &[R], bound: u32) -> Result<Vec<R>> {
        self.msb_bits_coarse(x, bound, 0).await
    }

    /// [`Mpc::msb_bits`] at resolution `2^skip`: exact for `2^skip <= |x| < 2^bound - 2^skip`, either answer
    /// below. The comparison drops the low `skip` bits of both parties' numbers: `[a > c]` differs from
    /// `[a >> skip > c >> skip]` only when the high parts are equal, and then `a + (2^l - 1 - c)`, the shares'
    /// sum, is within `2^skip` of `2^l`, that is `|x| < 2^skip`. No truncation round, `skip` fewer bits.
    pub async fn msb_bits_coarse(&mut self, x: &[R], bound: u32, skip: u32) -> Result<Vec<R>> {
        self.signs(x, None, bound, skip).await
    }

    /// XOR shares of the sign bits of `d` and of `k - d` (`2n` bits, `d`'s first), both within the bound and
    /// resolution of [`Mpc::msb_bits_coarse`]: the two limits of a clip in one set of leaf OTs (see the module
    /// documentation), a third fewer OTs than two separate comparisons.
    pub async fn sign_pair_coarse(&mut self, d: &[R], k: R, bound: u32, skip: u32) -> Result<Vec<R>> {
        self.signs(d, Some(k), bound, skip).await
    }

    /// Signs of `d` and, with `k`, of `k - d`. For `d`: `w = d + 2^l` (node 0 adds), node 0's number
    /// `a = low_l(w0)`, node 1's `c = 2^l - 1 - low_l(w1)`, carry `[a > c]`. For `k - d`, shared as
    /// `(!d0, k + 1 - d1)` with node 1 adding `2^l`: node 0's number is `2^l - 1 - a`, node 1's `b = low_l(w1')`,
    /// and the carry `[2^l - 1 - a + b >= 2^l]` is `[a < b]`, a comparison with the same `a`.
    async fn signs(&mut self, d: &[R], k: Option<R>, bound: u32, skip: u32) -> Result<Vec<R>> {
        let l = bound.min(R::BITS - 1);
        let me = self.me();
        let top = R::ONE.shl(l);
        let mut w = vec![self.add_public(d, top)];
        if let Some(k) = k {
            let shifted = |v: &R| if me == 0 { v.neg().sub(R::ONE) } else { k.add(R::ONE).sub(*v).add(top) };
            w.push(d.iter().map(shifted).collect());
        }
        let rels = &[Rel::Above, Rel::Below][..w.len()];
        self.carries(&w, rels, l, skip).await
    }

    /// XOR shares of the sign bits of `x - c` for every public `c` in `cs` (`cs.len()` blocks of `x.len()`,
    /// `c_0`'s first), within the bound and resolution of [`Mpc::msb_bits_coarse`]. Node 1 subtracts the
    /// constants, so every difference leaves node 0 the same number `a` and one 1-out-of-16 OT per digit
    /// carries the leaves of all of them: the OTs of one comparison, the messages and trees of `cs.len()`.
    pub async fn signs_below(&mut self, x: &[R], cs: &[R], bound: u32, skip: u32) -> Result<Vec<R>> {
        let l = bound.min(R::BITS - 1);
        let top = R::ONE.shl(l);
        let w: Vec<Vec<R>> = if self.me() == 0 {
            vec![x.iter().map(|v| v.add(top)).collect(); cs.len()]
        } else {
            cs.iter().map(|c| x.iter().map(|v| v.sub(*c)).collect()).collect()
        };
        self.carries(&w, &vec![Rel::Above; cs.len()], l, skip).await
    }

    /// The sign bits of the values `w[j]` (shared, offset by `2^l`) for relations `rels[j]`: node 0's number is
    /// the same for every relation (`low_l` of its `w[0]`), node 1's is `2^l - 1 - low_l(w1)` for
    /// [`Rel::Above`] and `low_l(w1)` for [`Rel::Below`]; both drop their low `skip` bits.
    async fn carries(&mut self, w: &[Vec<R>], rels: &[Rel], l: u32, skip: u32) -> Result<Vec<R>> {
        let skip = skip.min(l - 1);
        let (me, n) = (self.me(), w.first().map_or(0, Vec::len));
        let mask = R::ONE.shl(l).sub(R::ONE);
        let mine: Vec<u128> = if me == 0 {
            w[0].iter().map(|v| v.low(l).to_u128() >> skip).collect()
        } else {
            let number = |j: usize, v: R| match rels[j] {
                Rel::Above => mask.sub(v.low(l)),
                Rel::Below => v.low(l),
            };
            (0..n).flat_map(|i| (0..rels.len()).map(move |j| number(j, w[j][i]).to_u128() >> skip)).collect()
        };
        // The tree's AND triples go out before the leaves (see the triples module); not in the dealer mode.
        let pairs = n * rels.len() * tree_pairs(((l - skip) as usize).div_ceil(DIGIT));
        let triples = if !self.backend.dealt() && (1..=MAX_TRIPLES).contains(&pairs) {
            Some(self.triples_start(pairs, 2).await?)
        } else {
            None
        };
        let (leaves, digits) = if self.backend.dealt() {
            self.dealt_digit_leaves(&mine, rels, l - skip).await?
        } else {
            self.digit_leaves(&mine, rels, l - skip).await?
        };
        // Leaves arrive element, digit, relation; the tree takes relation j, element i, digit d at
        // ((j * n + i) * digits + d).
        let size = leaves.len();
        let (mut g, mut e) = (vec![R::ZERO; size], vec![R::ZERO; size]);
        for (at, v) in leaves.iter().enumerate() {
            let (j, id) = (at % rels.len(), at / rels.len());
            let to = j * n * digits + id;
            g[to] = R::from_u128((v & 1) as u128);
            e[to] = R::from_u128((v >> 1 & 1) as u128);
        }
        let carry = self.greater_than(g, e, digits, n * rels.len(), triples).await?;
        // v < 0 exactly when bit l of w is clear: sign = 1 ^ w0_l ^ w1_l ^ carry (node 0 adds the 1).
        let flip = if me == 0 { R::ONE } else { R::ZERO };
        let bit = |v: &R| if v.bit(l) { R::ONE } else { R::ZERO };
        Ok(carry.iter().zip(w.iter().flatten()).map(|(c, v)| c.add(flip).add(bit(v)).low(1)).collect())
    }

    /// (Dealer mode.) Per-digit leaves from a dealt random 1-out-of-16 OT per digit: node 1 holds random slot
    /// keys `K` per relation (from the dealer stream), node 0 a random digit `rho` and `K[rho]`. Node 0 sends
    /// `s = a_d ^ rho`, node 1 every leaf slot `u` masked by `K[u ^ s]`; node 0 unmasks slot `a_d` with `K[rho]`.
    async fn dealt_digit_leaves(&mut self, mine: &[u128], rels: &[Rel], l: u32) -> Result<(Vec<u8>, usize)> {
        let (digits, r) = ((l as usize).div_ceil(DIGIT), rels.len());
        let n = if self.me() == 0 { mine.len() } else { mine.len() / r } * digits;
        let words = pad_words(r);
        let mut stream = self.dealer_stream().await?;
        let keys: Vec<u64> = (0..n * words).map(|_| stream.word()).collect();
        let mut own = Prg::private(&mut self.rng);
        let mut leaves = Vec::with_capacity(n * r);
        if self.me() == 0 {
            let digit = |i: usize| digit_of(mine[i / digits], i % digits);
            let rho: Vec<u32> = (0..n).map(|_| own.word() as u32 & 0xf).collect();
            let s: Vec<u8> = rho.iter().enumerate().map(|(i, r)| (digit(i) ^ r) as u8).collect();
            self.send("mpc/cmp-leaf/s", s).await?;
            let masked = self.recv("mpc/cmp-leaf/m", n * r * 4).await?;
            for (i, m) in masked.chunks_exact(4 * r).enumerate() {
                for (j, m) in m.chunks_exact(4).enumerate() {
                    let m = u32::from_le_bytes(m.try_into().unwrap_or_default());
                    let k = pad_half(&keys, i, words, j);
                    leaves.push((m >> (2 * digit(i)) ^ k >> (2 * rho[i])) as u8 & 3);
                }
            }
        } else {
            let s = self.recv("mpc/cmp-leaf/s", n).await?;
            let table = LeafTable::new(rels);
            let mut masked = Vec::with_capacity(n * r * 4);
            for (i, s) in s.iter().enumerate() {
                let thresholds = &mine[(i / digits) * r..][..r];
                for (j, share) in leaf_shares(&mut own, r).enumerate() {
                    let k = permute(pad_half(&keys, i, words, j), *s as u32 & 0xf);
                    masked.extend_from_slice(&(table.word(j, thresholds[j], i % digits, share) ^ k).to_le_bytes());
                    leaves.push(share as u8);
                }
            }
            self.send("mpc/cmp-leaf/m", masked).await?;
        }
        Ok((leaves, digits))
    }

    /// Per-digit leaves by 1-out-of-16 OTs (node 0 chooses, node 1 sends), `ceil(l / 4)` per element, each
    /// carrying every relation's two leaf bits (element, digit, relation order).
    async fn digit_leaves(&mut self, mine: &[u128], rels: &[Rel], l: u32) -> Result<(Vec<u8>, usize)> {
        let digits = (l as usize).div_ceil(DIGIT);
        let per_round = (LEAF_ROUND_OTS / (digits * DIGIT * pad_words(rels.len()))).max(1);
        let mut leaves = Vec::with_capacity(mine.len() * digits);
        if self.me() == 0 {
            for chunk in mine.chunks(per_round) {
                leaves.extend(self.digit_leaves_chooser(chunk, rels, digits).await?);
            }
        } else {
            for chunk in mine.chunks(per_round * rels.len()) {
                leaves.extend(self.digit_leaves_sender(chunk, rels, digits).await?);
            }
        }
        Ok((leaves, digits))
    }

    async fn digit_leaves_chooser(&mut self, a: &[u128], rels: &[Rel], digits: usize) -> Result<Vec<u8>> {
        let (n, r, words) = (a.len() * digits * DIGIT, rels.len(), pad_words(rels.len()));
        // OT (i * digits + d) * 4 + b chooses with bit b of digit d of a_i.
        let mut choices = vec![0u64; n.div_ceil(64)];
        for (i, v) in a.iter().enumerate() {
            for d in 0..digits {
                let j = (i * digits + d) * DIGIT;
                choices[j / 64] |= (digit_of(*v, d) as u64) << (j % 64);
            }
        }
        let ctx = self.ctx;
        let pads = self.receiver.random_pads_wide(ctx, "mpc/cmp-leaf", &choices, n, words).await?;
        let masked = self.recv("mpc/cmp-leaf/m", a.len() * digits * r * 4).await?;
        Ok(compute(|| {
            let mut leaves = Vec::with_capacity(a.len() * digits * r);
            for (at, m) in masked.chunks_exact(4 * r).enumerate() {
                let u = digit_of(a[at / digits], at % digits);
                for (j, m) in m.chunks_exact(4).enumerate() {
                    let m = u32::from_le_bytes(m.try_into().unwrap_or_default());
                    let key = (0..DIGIT).fold(0, |k, b| k ^ pad_half(&pads, at * DIGIT + b, words, j));
                    leaves.push(((m ^ key) >> (2 * u) & 3) as u8);
                }
            }
            leaves
        }))
    }

    async fn digit_leaves_sender(&mut self, thresholds: &[u128], rels: &[Rel], digits: usize) -> Result<Vec<u8>> {
        let r = rels.len();
        let (elements, words) = (thresholds.len() / r, pad_words(r));
        let n = elements * digits * DIGIT;
        let ctx = self.ctx;
        let (p0, p1) = self.sender.random_pads_wide(ctx, "mpc/cmp-leaf", n, words).await?;
        let table = LeafTable::new(rels);
        let mut own = Prg::private(&mut self.rng);
        let (masked, leaves) = compute(|| {
            let mut leaves = Vec::with_capacity(elements * digits * r);
            let mut masked = Vec::with_capacity(elements * digits * r * 4);
            for (i, t) in thresholds.chunks_exact(r).enumerate() {
                for d in 0..digits {
                    let ot = (i * digits + d) * DIGIT;
                    for (j, share) in leaf_shares(&mut own, r).enumerate() {
                        let pads = std::array::from_fn(|b| [&p0, &p1].map(|p| pad_half(p, ot + b, words, j)));
                        masked.extend_from_slice(&(table.word(j, t[j], d, share) ^ key(pads)).to_le_bytes());
                        leaves.push(share as u8);
                    }
                }
            }
            (masked, leaves)
        });
        self.send("mpc/cmp-leaf/m", masked).await?;
        Ok(leaves)
    }

    /// XOR shares of `[a > c]` from per-group leaves (`width` groups per element, lowest first), with AND
    /// triples started for every level's pairs if given, else by an OT round per level.
    async fn greater_than(
        &mut self,
        mut g: Vec<R>,
        mut e: Vec<R>,
        mut width: usize,
        n: usize,
        triples: Option<TriplesStarted>,
    ) -> Result<Vec<R>> {
        let mut triples = match triples {
            Some(started) => Some(self.triples_finish(started).await?),
            None => None,
        };
        while width > 1 {
            let pairs = width / 2;
            let next = width.div_ceil(2);
            // Per pair, e_hi AND g_lo and e_hi AND e_lo share e_hi: one OT per direction carries both. The lowest
            // pair's e only ever feeds its own e at the next level, never a g: its second bit is a zero pad.
            let (mut xs, mut ys) = (Vec::with_capacity(n * pairs), Vec::with_capacity(2 * n * pairs));
            for i in 0..n {
                for p in 0..pairs {
                    let (lo, hi) = (i * width + 2 * p, i * width + 2 * p + 1);
                    xs.push(e[hi]);
                    ys.push(g[lo]);
                    ys.push(if p > 0 { e[lo] } else { R::ZERO });
                }
            }
            let ands = match &mut triples {
                Some(t) => self.and_with_triples(t, &xs, &ys).await?,
                None => self.and_bits_shared(&xs, &ys, 2).await?,
            };
            let (mut g2, mut e2) = (Vec::with_capacity(n * next), Vec::with_capacity(n * next));
            for i in 0..n {
                for p in 0..pairs {
                    let hi = i * width + 2 * p + 1;
                    let at = 2 * (i * pairs + p);
                    g2.push(g[hi].add(ands[at]).low(1));
                    e2.push(ands[at + 1]);
                }
                if width % 2 == 1 {
                    g2.push(g[i * width + width - 1]);
                    e2.push(e[i * width + width - 1]);
                }
            }
            (g, e, width) = (g2, e2, next);
        }
        Ok(g)
    }
}
