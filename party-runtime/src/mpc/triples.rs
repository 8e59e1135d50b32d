//! XOR-shared AND triples from random OTs, made ahead of a comparison tree so that each of its levels takes
//! one simultaneous exchange of openings instead of an OT round trip (Beaver's multiplication over `Z_2`).
//!
//! A triple with a shared operand is a bit `a` and `per` bits `b_j` with `c_j = a b_j`, all XOR-shared. Each
//! party picks its bit `a_i` at random and chooses with it in a random OT from the peer; the peer's two
//! `per`-bit pads `p0, p1` define its own bits `b = p0 ^ p1`, and the chosen pad `p0 ^ a_i b` XOR the
//! peer's `p0` share `a_i b`: with `a = a_0 ^ a_1` and `b = b_0 ^ b_1`, `a b = a_0 b_0 ^ a_1 b_1` (local)
//! `^ a_0 b_1 ^ a_1 b_0` (one random OT per direction). A random OT needs only the chooser's correction
//! message, so the triples cost no round of their own: each party sends its corrections before the comparison
//! leaves and reads the peer's when it needs the triples.
//!
//! The openings `x ^ a`, `y ^ b` are uniform to the receiver (its peer's share of `a` and `b` is a random bit
//! and the unchosen pad's XOR); `x y = c ^ d b ^ a e ^ d e` with `d = x ^ a`, `e = y ^ b`.

use rand_core::Rng;

use super::engine::Mpc;
use crate::error::{Error, Result};
use crate::ring::Ring;

/// The tag of the triples' random OTs.
const TAG: &str = "mpc/and-triples";
/// The tag of the openings.
const OPEN: &str = "mpc/and-open";

/// Triples whose generation has started: this party's random bits `a` (packed), the pads it chose with them,
/// and, once read, both pads of each random OT from the peer.
pub(super) struct TriplesStarted {
    a: Vec<u64>,
    chosen: Vec<u64>,
    both: Option<Vec<[u64; 2]>>,
    per: u32,
}

/// Ready triples (this party's shares), consumed in order by [`Mpc::and_with_triples`].
pub(super) struct AndTriples {
    a: Vec<u8>,
    b: Vec<u8>,
    c: Vec<u8>,
    per: u32,
    used: usize,
}

impl AndTriples {
    /// This party's shares `(a, b, c)` of every triple.
    #[cfg(test)]
    pub(super) fn shares(&self) -> (&[u8], &[u8], &[u8]) {
        (&self.a, &self.b, &self.c)
    }
}

impl<R: Ring> Mpc<'_, R> {
    /// Start `n` triples with `per <= 3` bits of `b` each: send this party's corrections (its random OT from
    /// the peer). Node 1 also reads node 0's at once, so that node 0 may follow its own with other OTs towards
    /// node 1 (each direction's extensions are consumed in the order they were made).
    pub(super) async fn triples_start(&mut self, n: usize, per: u32) -> Result<TriplesStarted> {
        if !(1..=3).contains(&per) {
            return Err(Error::Internal(format!("AND triples carry 1 to 3 bits of b, not {per}")));
        }
        let mut a: Vec<u64> = (0..n.div_ceil(64)).map(|_| self.rng.next_u64()).collect();
        if let Some(last) = a.last_mut().filter(|_| !n.is_multiple_of(64)) {
            *last &= (1 << (n % 64)) - 1;
        }
        let chosen = self.receiver.random_pads(self.ctx, TAG, &a, n).await?;
        let mut started = TriplesStarted { a, chosen, both: None, per };
        if self.link.me == 1 {
            started.both = Some(self.sender.random_pads(self.ctx, TAG, n).await?);
        }
        Ok(started)
    }

    /// Finish started triples: read the peer's corrections (node 0) and combine.
    pub(super) async fn triples_finish(&mut self, started: TriplesStarted) -> Result<AndTriples> {
        let TriplesStarted { a, chosen, both, per } = started;
        let n = chosen.len();
        let both = match both {
            Some(both) => both,
            None => self.sender.random_pads(self.ctx, TAG, n).await?,
        };
        let mask = (1u64 << per) - 1;
        let bit = |i: usize| (a[i / 64] >> (i % 64)) & 1;
        let (mut ta, mut tb, mut tc) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        for (i, (mine, [p0, p1])) in chosen.iter().zip(&both).enumerate() {
            let (ai, bi) = (bit(i), (p0 ^ p1) & mask);
            ta.push(ai as u8);
            tb.push(bi as u8);
            tc.push(((ai * bi) ^ (p0 & mask) ^ (mine & mask)) as u8);
        }
        Ok(AndTriples { a: ta, b: tb, c: tc, per, used: 0 })
    }

    /// XOR shares of `x_i AND y_(i,j)` for XOR-shared bits (values 0/1 in the low bit; `per` bits of `y` per
    /// `x_i`, laid out `i * per + j`, as [`Mpc::and_bits_shared`]) with the next `x.len()` triples: both parties
    /// send their openings at once and combine.
    pub(super) async fn and_with_triples(&mut self, t: &mut AndTriples, x: &[R], y: &[R]) -> Result<Vec<R>> {
        let (n, per) = (x.len(), t.per as usize);
        let range = t.used..t.used + n;
        if range.end > t.a.len() || y.len() != n * per {
            return Err(Error::Internal(format!(
                "{n} ANDs of {per} bits with {} of {} triples left",
                t.a.len() - t.used,
                t.a.len()
            )));
        }
        t.used = range.end;
        let (a, b, c) = (&t.a[range.clone()], &t.b[range.clone()], &t.c[range]);
        let low = |v: &R| (v.low(1) == R::ONE) as u8;
        // Item i's opening in one nibble: bit 0 `x ^ a`, bits 1.. `y_j ^ b_j`.
        let opening = |i: usize| {
            let e = (0..per).fold(0u8, |e, j| e | low(&y[i * per + j]) << j) ^ b[i];
            (low(&x[i]) ^ a[i]) | e << 1
        };
        let mut mine = vec![0u8; n.div_ceil(2)];
        for i in 0..n {
            mine[i / 2] |= opening(i) << (4 * (i % 2));
        }
        let nibble = |bytes: &[u8], i: usize| (bytes[i / 2] >> (4 * (i % 2))) & 0xf;
        self.send(OPEN, mine.clone()).await?;
        let theirs = self.recv(OPEN, mine.len()).await?;
        let node0 = self.link.me == 0;
        let mut out = Vec::with_capacity(n * per);
        for i in 0..n {
            let open = nibble(&mine, i) ^ nibble(&theirs, i);
            let (d, e) = (open & 1, open >> 1);
            let z = c[i] ^ (d * b[i]) ^ (a[i] * e) ^ if node0 { d * e } else { 0 };
            out.extend((0..per).map(|j| R::from_u128(((z >> j) & 1) as u128)));
        }
        Ok(out)
    }
}
