//! The sign bit of a shared value, by a millionaires' comparison between the two parties' private numbers.
//!
//! The sign bit of `v` with `|v| < 2^L` is the complement of bit `L` of `w = v + 2^L`; with shares `w0 + w1`,
//! that bit is `w0_L ^ w1_L ^ carry`, where `carry = [low_L(w0) + low_L(w1) >= 2^L]` compares node 0's
//! `a = low_L(w0)` with node 1's `c = 2^L - 1 - low_L(w1)`: `carry = [a > c]`.
//!
//! The comparison follows CrypTFlow2 (Rathee et al., CCS 2020): `a` and `c` are cut into 4-bit digits; for each
//! digit a 1-out-of-16 OT, node 0 choosing with its digit, gives XOR shares of the leaf bits `g = [a_d > c_d]`
//! and `e = [a_d = c_d]`; the leaves combine pairwise (`g = g_hi ^ e_hi g_lo`, `e = e_hi e_lo`) in `log(L/4)`
//! rounds of ANDs. The 1-out-of-16 OT is Naor and Pinkas's construction from four random 1-out-of-2 OTs
//! ([`super::ot::OtSender::random_pads`]): message `u` is masked by the XOR, over the four OTs, of bits `2u`
//! and `2u + 1` of the pad that `u`'s bit selects, so every unchosen message keeps a pad slice the chooser
//! cannot compute, and no two messages share one. The two ANDs of a pair share an operand and take one OT per
//! direction. 28 leaf OTs and 6 AND OT pairs for a 28-bit comparison, against 28 OTs and 49 AND pairs with
//! per-bit leaves. In the (insecure) dealer mode the 1-out-of-16 OTs are dealt.

use rand_core::Rng;
use secretflow_crds::request::Beaver;

use super::engine::Mpc;
use super::prg::{Prg, Words};
use super::ring::Ring;
use crate::error::Result;

/// Bits per digit of the comparison (1-out-of-16 OTs).
const DIGIT: usize = 4;

/// Compared elements per round of leaf OTs (bounds memory: 4 OTs and a 32-bit message per digit).
const LEAF_ROUND_OTS: usize = 1 << 18;

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
        let l = bound.min(R::BITS - 1);
        let skip = skip.min(l - 1);
        let me = self.me();
        let w = self.add_public(x, R::ONE.shl(l));
        let mask = R::ONE.shl(l).sub(R::ONE);
        let mine: Vec<u128> =
            w.iter().map(|v| if me == 0 { v.low(l).to_u128() } else { mask.sub(v.low(l)).to_u128() } >> skip).collect();
        let (g, e, width) = if self.beaver == Beaver::TrustedFirstParty {
            self.dealt_digit_leaves(&mine, l - skip).await?
        } else {
            self.digit_leaves(&mine, l - skip).await?
        };
        let carry = self.greater_than(g, e, width, x.len()).await?;
        // v < 0 exactly when bit l of w is clear: sign = 1 ^ w0_l ^ w1_l ^ carry (node 0 adds the 1).
        let flip = if me == 0 { R::ONE } else { R::ZERO };
        Ok(carry.iter().zip(&w).map(|(c, v)| c.add(flip).add(if v.bit(l) { R::ONE } else { R::ZERO }).low(1)).collect())
    }

    /// (Dealer mode.) Per-digit leaves from a dealt random 1-out-of-16 OT per digit: node 1 holds 16 random
    /// 2-bit keys `K` (from the dealer stream), node 0 a random digit `rho` and `K[rho]`. Node 0 sends
    /// `s = a_d ^ rho`, node 1 every leaf message `u` masked by `K[u ^ s]`; node 0 unmasks message `a_d` with
    /// `K[rho]`.
    async fn dealt_digit_leaves(&mut self, mine: &[u128], l: u32) -> Result<(Vec<R>, Vec<R>, usize)> {
        let digits = (l as usize).div_ceil(DIGIT);
        let mut stream = self.dealer_stream().await?;
        let keys: Vec<u32> = (0..mine.len() * digits).map(|_| stream.word() as u32).collect();
        let digit = |i: usize| ((mine[i / digits] >> ((i % digits) * DIGIT)) & 0xf) as u32;
        let (mut g, mut e) = (Vec::with_capacity(keys.len()), Vec::with_capacity(keys.len()));
        if self.me() == 0 {
            let mut own = Prg::private(&mut self.rng);
            let rho: Vec<u32> = (0..keys.len()).map(|_| own.word() as u32 & 0xf).collect();
            let s: Vec<u8> = rho.iter().enumerate().map(|(i, r)| (digit(i) ^ r) as u8).collect();
            self.send("mpc/cmp-leaf/s", s).await?;
            let words = self.recv("mpc/cmp-leaf/m", keys.len() * 4).await?;
            for (i, w) in words.chunks_exact(4).enumerate() {
                let w = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
                let m = (w >> (2 * digit(i))) & 3 ^ (keys[i] >> (2 * rho[i])) & 3;
                g.push(R::from_u128((m & 1) as u128));
                e.push(R::from_u128((m >> 1) as u128));
            }
        } else {
            let s = self.recv("mpc/cmp-leaf/s", keys.len()).await?;
            let mut words = Vec::with_capacity(keys.len() * 4);
            let mut own = Prg::private(&mut self.rng);
            for (i, s) in s.iter().enumerate() {
                let (c, r) = (digit(i), own.word() as u32 & 3);
                let mut word = 0u32;
                for u in 0..16u32 {
                    let leaf = (u > c) as u32 | ((u == c) as u32) << 1;
                    word |= (leaf ^ r ^ (keys[i] >> (2 * (u ^ (*s as u32 & 0xf)))) & 3) << (2 * u);
                }
                words.extend_from_slice(&word.to_le_bytes());
                g.push(R::from_u128((r & 1) as u128));
                e.push(R::from_u128((r >> 1) as u128));
            }
            self.send("mpc/cmp-leaf/m", words).await?;
        }
        Ok((g, e, digits))
    }

    /// Per-digit leaves by 1-out-of-16 OTs (node 0 chooses, node 1 sends), `ceil(l / 4)` per element.
    async fn digit_leaves(&mut self, mine: &[u128], l: u32) -> Result<(Vec<R>, Vec<R>, usize)> {
        let digits = (l as usize).div_ceil(DIGIT);
        let per_round = (LEAF_ROUND_OTS / (digits * DIGIT)).max(1);
        let (mut g, mut e) = (Vec::with_capacity(mine.len() * digits), Vec::with_capacity(mine.len() * digits));
        for chunk in mine.chunks(per_round) {
            let leaves = if self.me() == 0 {
                self.digit_leaves_chooser(chunk, digits).await?
            } else {
                self.digit_leaves_sender(chunk, digits).await?
            };
            for (gd, ed) in leaves {
                g.push(R::from_u128(gd as u128));
                e.push(R::from_u128(ed as u128));
            }
        }
        Ok((g, e, digits))
    }

    async fn digit_leaves_chooser(&mut self, a: &[u128], digits: usize) -> Result<Vec<(u8, u8)>> {
        let n = a.len() * digits * DIGIT;
        // OT (i * digits + d) * 4 + b chooses with bit b of digit d of a_i.
        let mut choices = vec![0u64; n.div_ceil(64)];
        for (i, v) in a.iter().enumerate() {
            for d in 0..digits {
                let j = (i * digits + d) * DIGIT;
                choices[j / 64] |= (((v >> (d * DIGIT)) & 0xf) as u64) << (j % 64);
            }
        }
        let ctx = self.ctx;
        let pads = self.receiver.random_pads(ctx, "mpc/cmp-leaf", &choices, n).await?;
        let masked = self.recv("mpc/cmp-leaf/m", a.len() * digits * 4).await?;
        Ok(a.iter()
            .enumerate()
            .flat_map(|(i, v)| (0..digits).map(move |d| (i, d, ((v >> (d * DIGIT)) & 0xf) as u32)))
            .zip(masked.chunks_exact(4))
            .map(|((i, d, u), m)| {
                let j = (i * digits + d) * DIGIT;
                let key = pads[j..j + DIGIT].iter().fold(0, |k, p| k ^ (p >> (2 * u)) & 3);
                let bits = ((u32::from_le_bytes([m[0], m[1], m[2], m[3]]) >> (2 * u)) as u64 & 3) ^ key;
                ((bits & 1) as u8, (bits >> 1) as u8)
            })
            .collect())
    }

    async fn digit_leaves_sender(&mut self, c: &[u128], digits: usize) -> Result<Vec<(u8, u8)>> {
        let n = c.len() * digits * DIGIT;
        let ctx = self.ctx;
        let pads = self.sender.random_pads(ctx, "mpc/cmp-leaf", n).await?;
        let mut shares = Vec::with_capacity(c.len() * digits);
        let mut masked = Vec::with_capacity(c.len() * digits * 4);
        for (i, v) in c.iter().enumerate() {
            for d in 0..digits {
                let cd = ((v >> (d * DIGIT)) & 0xf) as u32;
                let j = (i * digits + d) * DIGIT;
                let r = self.rng.next_u64() & 3;
                shares.push(((r & 1) as u8, (r >> 1) as u8));
                let mut word = 0u32;
                for u in 0..16u32 {
                    let leaf = (u > cd) as u64 | ((u == cd) as u64) << 1;
                    let key = (0..DIGIT).fold(0, |k, b| k ^ (pads[j + b][((u >> b) & 1) as usize] >> (2 * u)) & 3);
                    word |= ((leaf ^ r ^ key) as u32) << (2 * u);
                }
                masked.extend_from_slice(&word.to_le_bytes());
            }
        }
        self.send("mpc/cmp-leaf/m", masked).await?;
        Ok(shares)
    }

    /// XOR shares of `[a > c]` from per-group leaves (`width` groups per element, lowest first).
    async fn greater_than(&mut self, mut g: Vec<R>, mut e: Vec<R>, mut width: usize, n: usize) -> Result<Vec<R>> {
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
            let ands = self.and_bits_shared(&xs, &ys, 2).await?;
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
