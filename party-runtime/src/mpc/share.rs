//! Typed shares: what one party holds of a secret-shared vector over `Z_2^k`, and the operations on it that need
//! no message. Every sharing the device uses is linear: a value is the sum (mod `2^k`) of `count` components, or
//! for bits ([`Bits`]) their XOR in the low bit; a party holds some of the components. The two-party additive
//! sharing has two components and each node holds its own ([`Holding::additive`]); three-party replicated
//! sharing has three and each node holds two ([`Holding::replicated`]). Sums, differences, public constants and
//! public factors act on each held component, so a function written over [`Share`] runs on either.
//!
//! The fixed-point scale is not carried: every shared value the functions above the kernels take and return is
//! at the device's fraction bits unless its documentation says otherwise (an untruncated product is at twice).

use std::ops::Range;

use crate::ring::Ring;

/// Which components of a sharing this party holds: `count` components in all, of which this party holds
/// `held` consecutive ones starting at `first` (wrapping around).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Holding {
    /// Components in the sharing.
    pub count: usize,
    /// The first component this party holds.
    pub first: usize,
    /// How many consecutive components this party holds.
    pub held: usize,
}

impl Holding {
    /// Node `me`'s holding in two-party additive sharing: component `me` of two.
    pub fn additive(me: usize) -> Holding {
        Holding { count: 2, first: me, held: 1 }
    }

    /// Node `me`'s holding in three-party replicated sharing: components `me` and `me + 1` (mod 3) of three.
    pub fn replicated(me: usize) -> Holding {
        Holding { count: 3, first: me, held: 2 }
    }

    /// Which of this party's parts is component 0 (where public constants are added), if it holds it.
    fn zeroth(self) -> Option<usize> {
        let j = (self.count - self.first) % self.count;
        (j < self.held).then_some(j)
    }
}

/// One party's holding of a shared vector of ring values: its components of each element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Share<R> {
    holding: Holding,
    /// `parts[j]` is component `first + j` of every element.
    parts: Vec<Vec<R>>,
}

/// One party's holding of a vector of shared bits: the components' low bits XOR to the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bits<R>(Share<R>);

impl<R: Ring> Share<R> {
    /// A share from this party's components (one vector per held component, all of one length).
    pub fn new(holding: Holding, parts: Vec<Vec<R>>) -> Share<R> {
        assert_eq!(parts.len(), holding.held, "a share holds {} components", holding.held);
        assert!(parts.windows(2).all(|p| p[0].len() == p[1].len()), "a share's components differ in length");
        Share { holding, parts }
    }

    /// Node `me`'s two-party additive share `v`.
    pub fn additive(me: usize, v: Vec<R>) -> Share<R> {
        Share::new(Holding::additive(me), vec![v])
    }

    /// The public vector `c` as a share: component 0 is `c`, the others zero.
    pub fn public(holding: Holding, c: &[R]) -> Share<R> {
        let at = holding.zeroth();
        let parts = (0..holding.held).map(|j| if Some(j) == at { c.to_vec() } else { vec![R::ZERO; c.len()] });
        Share { holding, parts: parts.collect() }
    }

    /// `n` copies of the public constant `c`.
    pub fn constant(holding: Holding, c: R, n: usize) -> Share<R> {
        Share::public(holding, &vec![c; n])
    }

    /// Which components this party holds.
    pub fn holding(&self) -> Holding {
        self.holding
    }

    /// Number of shared elements.
    pub fn len(&self) -> usize {
        self.parts.first().map_or(0, Vec::len)
    }

    /// Whether no element is shared.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// This party's `j`-th held component (component `first + j` of the sharing).
    pub fn part(&self, j: usize) -> &[R] {
        &self.parts[j]
    }

    /// This party's components, by value.
    pub fn into_parts(self) -> Vec<Vec<R>> {
        self.parts
    }

    /// Node's only component of a two-party additive share (what the two-party backend computes on).
    pub fn into_additive(self) -> Vec<R> {
        debug_assert_eq!(self.holding.held, 1, "not a two-party additive share");
        self.parts.into_iter().next().unwrap_or_default()
    }

    /// The same sharing with each component mapped elementwise by `f` (only for maps that are linear over the
    /// sharing, such as a public factor: the callers below).
    fn map(&self, f: impl Fn(R) -> R) -> Share<R> {
        let parts = self.parts.iter().map(|p| p.iter().map(|v| f(*v)).collect()).collect();
        Share { holding: self.holding, parts }
    }

    /// The same sharing with each component combined elementwise with `other`'s by `f` (linear maps only).
    fn zip(&self, other: &Share<R>, f: impl Fn(R, R) -> R) -> Share<R> {
        assert_eq!(self.holding, other.holding, "shares of different sharings");
        assert_eq!(self.len(), other.len(), "shares of different lengths");
        let parts = self.parts.iter().zip(&other.parts);
        let parts = parts.map(|(a, b)| a.iter().zip(b).map(|(a, b)| f(*a, *b)).collect()).collect();
        Share { holding: self.holding, parts }
    }

    /// `x + y`.
    pub fn add(&self, y: &Share<R>) -> Share<R> {
        self.zip(y, R::add)
    }

    /// `x - y`.
    pub fn sub(&self, y: &Share<R>) -> Share<R> {
        self.zip(y, R::sub)
    }

    /// `-x`.
    pub fn neg(&self) -> Share<R> {
        self.map(R::neg)
    }

    /// `x * c` for a public ring constant (no truncation).
    pub fn scale(&self, c: R) -> Share<R> {
        self.map(|v| v.mul(c))
    }

    /// `x * 2^bits`.
    pub fn shl(&self, bits: u32) -> Share<R> {
        self.map(|v| v.shl(bits))
    }

    /// `x + c` for a public constant.
    pub fn add_public(&self, c: R) -> Share<R> {
        self.clone().plus_public(c)
    }

    /// `c - x` for a public constant.
    pub fn sub_from_public(&self, c: R) -> Share<R> {
        self.neg().plus_public(c)
    }

    /// `x + c` in place.
    fn plus_public(mut self, c: R) -> Share<R> {
        if let Some(j) = self.holding.zeroth() {
            self.parts[j].iter_mut().for_each(|v| *v = v.add(c));
        }
        self
    }

    /// `sum_j x_(j n .. (j+1) n) * c_j` for public `c` over the `c.len()` consecutive blocks of `n = len / c.len()`
    /// elements: the blocks weighted and summed.
    pub fn weighted_blocks(&self, c: &[R]) -> Share<R> {
        let n = self.len() / c.len().max(1);
        let parts = self.parts.iter().map(|p| {
            let mut acc = vec![R::ZERO; n];
            for (block, c) in p.chunks_exact(n.max(1)).zip(c) {
                acc.iter_mut().zip(block).for_each(|(a, v)| *a = a.add(v.mul(*c)));
            }
            acc
        });
        Share { holding: self.holding, parts: parts.collect() }
    }

    /// The sums of consecutive blocks of `len` elements: a local operation, as any linear sharing allows.
    pub fn block_sums(&self, len: usize) -> Share<R> {
        let sum = |b: &[R]| b.iter().fold(R::ZERO, |a, v| a.add(*v));
        let parts = self.parts.iter().map(|p| p.chunks_exact(len.max(1)).map(sum).collect()).collect();
        Share { holding: self.holding, parts }
    }

    /// Elements picked by `idx` (`None` for a zero): a local rearrangement, as any linear sharing allows.
    pub fn gather(&self, idx: &[Option<usize>]) -> Share<R> {
        let parts = self.parts.iter().map(|p| idx.iter().map(|i| i.map_or(R::ZERO, |i| p[i])).collect()).collect();
        Share { holding: self.holding, parts }
    }

    /// Elements `range`.
    pub fn slice(&self, range: Range<usize>) -> Share<R> {
        let parts = self.parts.iter().map(|p| p[range.clone()].to_vec()).collect();
        Share { holding: self.holding, parts }
    }

    /// The shares one after another.
    pub fn concat(shares: &[&Share<R>]) -> Share<R> {
        let first = shares.first().map(|s| s.holding).expect("concat of no share");
        let parts = (0..first.held).map(|j| shares.iter().flat_map(|s| s.parts[j].iter().copied()).collect());
        Share { holding: first, parts: parts.collect() }
    }
}

impl<R: Ring> Bits<R> {
    /// Bits from their components' low bits (higher bits are dropped, so every component is 0 or 1).
    pub fn new(share: Share<R>) -> Bits<R> {
        Bits(share).masked()
    }

    /// Every component reduced to its low bit, in place.
    fn masked(mut self) -> Bits<R> {
        self.0.parts.iter_mut().flatten().for_each(|v| *v = v.low(1));
        self
    }

    /// The components, each 0 or 1.
    pub fn share(&self) -> &Share<R> {
        &self.0
    }

    /// The components, by value.
    pub fn into_share(self) -> Share<R> {
        self.0
    }

    /// Number of shared bits.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no bit is shared.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `x XOR y`.
    pub fn xor(&self, y: &Bits<R>) -> Bits<R> {
        Bits(self.0.zip(&y.0, |a, b| a.add(b).low(1)))
    }

    /// `NOT x`.
    pub fn not(&self) -> Bits<R> {
        Bits(self.0.add_public(R::ONE)).masked()
    }

    /// Bits `range`.
    pub fn slice(&self, range: Range<usize>) -> Bits<R> {
        Bits(self.0.slice(range))
    }

    /// The bit vectors one after another.
    pub fn concat(bits: &[&Bits<R>]) -> Bits<R> {
        Bits(Share::concat(&bits.iter().map(|b| &b.0).collect::<Vec<_>>()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type LocalOp = dyn Fn(&Share<u64>, &Share<u64>) -> Share<u64>;

    /// The value a full set of component vectors shares.
    fn open(parts: &[Vec<u64>]) -> Vec<u64> {
        (0..parts[0].len()).map(|i| parts.iter().fold(0u64, |a, p| a.wrapping_add(p[i]))).collect()
    }

    /// Every party's share of `v` (components `v - r - s`, `r`, `s` for three; `v - r`, `r` for two).
    fn deal(count: usize, v: &[u64]) -> Vec<Share<u64>> {
        let mut comps: Vec<Vec<u64>> =
            (1..count).map(|c| v.iter().map(|x| x.wrapping_mul(31 + c as u64)).collect()).collect();
        let first: Vec<u64> = (0..v.len()).map(|i| comps.iter().fold(v[i], |a, c| a.wrapping_sub(c[i]))).collect();
        comps.insert(0, first);
        (0..count)
            .map(|me| {
                let h = if count == 2 { Holding::additive(me) } else { Holding::replicated(me) };
                Share::new(h, (0..h.held).map(|j| comps[(me + j) % count].clone()).collect())
            })
            .collect()
    }

    /// The value from every party's share (each component taken from the party holding it first).
    fn reconstruct(shares: &[Share<u64>]) -> Vec<u64> {
        open(&shares.iter().map(|s| s.part(0).to_vec()).collect::<Vec<_>>())
    }

    #[test]
    fn local_operations_act_on_the_shared_values_in_both_sharings() {
        let (x, y) = (vec![5u64, u64::MAX, 1 << 40, 7], vec![3u64, 2, 9, u64::MAX - 4]);
        for count in [2, 3] {
            let (xs, ys) = (deal(count, &x), deal(count, &y));
            assert_eq!(reconstruct(&xs), x);
            let each = |f: &LocalOp| reconstruct(&xs.iter().zip(&ys).map(|(a, b)| f(a, b)).collect::<Vec<_>>());
            let wrap = |f: fn(u64, u64) -> u64| x.iter().zip(&y).map(|(a, b)| f(*a, *b)).collect::<Vec<_>>();
            assert_eq!(each(&|a, b| a.add(b)), wrap(u64::wrapping_add));
            assert_eq!(each(&|a, b| a.sub(b)), wrap(u64::wrapping_sub));
            assert_eq!(each(&|a, _| a.add_public(10)), x.iter().map(|v| v.wrapping_add(10)).collect::<Vec<_>>());
            assert_eq!(each(&|a, _| a.sub_from_public(1)), x.iter().map(|v| 1u64.wrapping_sub(*v)).collect::<Vec<_>>());
            assert_eq!(each(&|a, _| a.scale(3)), x.iter().map(|v| v.wrapping_mul(3)).collect::<Vec<_>>());
            assert_eq!(
                each(&|a, _| a.weighted_blocks(&[1, 2])),
                vec![x[0].wrapping_add(2 * x[2]), x[1].wrapping_add(x[3].wrapping_mul(2))]
            );
            assert_eq!(each(&|a, b| Share::concat(&[&a.slice(2..4), b])), [&x[2..], &y[..]].concat());
            let public: Vec<Share<u64>> = xs.iter().map(|s| Share::constant(s.holding(), 9, 2)).collect();
            assert_eq!(reconstruct(&public), vec![9, 9]);
            let bits: Vec<Bits<u64>> = deal(count, &[1, 0, 1]).into_iter().map(Bits::new).collect();
            let flipped: Vec<Share<u64>> = bits.iter().map(|b| b.not().into_share()).collect();
            assert_eq!(reconstruct(&flipped).iter().map(|v| v & 1).collect::<Vec<_>>(), vec![0, 1, 0]);
        }
    }
}
