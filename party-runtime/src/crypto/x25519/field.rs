//! Field elements mod `p = 2^255 - 19` in lanes: the [`Lanes`] interface the curve code is written over once,
//! and its one-lane portable implementation (radix `2^51`, `u128` products), which every CPU can run and the
//! vector implementations are tested against.
//!
//! Every implementation keeps limbs below `2^52` between operations (IFMA multiplies only 52-bit inputs): a
//! product or a carried sum leaves each limb below `2^51 + 2^16`.

/// Bits per limb.
pub(super) const RADIX: u32 = 51;
/// The low [`RADIX`] bits.
pub(super) const MASK: u64 = (1 << RADIX) - 1;
/// `4p` in limbs each at least `2^53 - 76`, above any operand's limb: `a - b` is `a + 4p - b` without borrows.
pub(super) const FOUR_P: [u64; 5] = [(1 << 53) - 76, (1 << 53) - 4, (1 << 53) - 4, (1 << 53) - 4, (1 << 53) - 4];

/// `$body` once for each listed constant, with `$i` bound to it: a product's limb loops written with constant
/// indices, so its columns stay in registers (the optimizer does not unroll 100 products on its own).
macro_rules! unroll {
    ($i:ident in [$($n:literal),*] => $body:expr) => {{
        $({
            #[allow(non_upper_case_globals)]
            const $i: usize = $n;
            $body
        })*
    }};
}
pub(super) use unroll;

/// A vector of `LANES` field elements with the operations the curve code needs. Each operation acts on every
/// lane at once, in constant time; masks are one bit per lane (bit `i` for lane `i`).
pub(super) trait Lanes: Copy {
    /// What constructing a vector needs (the SIMD token that proves the CPU's features).
    type Ctx: Copy;
    /// Field elements per vector.
    const LANES: usize;
    /// The same element (radix-2^51 limbs, each below `2^52`) in every lane.
    fn splat(ctx: Self::Ctx, limbs: [u64; 5]) -> Self;
    /// Lane `i` from `lanes[i]` (limbs below `2^52`); `lanes.len() >= LANES`.
    fn load(ctx: Self::Ctx, lanes: &[[u64; 5]]) -> Self;
    /// Each lane's canonical limbs (the element's representative below `p`) into `out[i]`.
    fn store(self, out: &mut [[u64; 5]]);
    fn add(self, b: Self) -> Self;
    fn sub(self, b: Self) -> Self;
    fn mul(self, b: Self) -> Self;
    fn square(self) -> Self;
    /// Times a small constant `k < 2^20`.
    fn mul_small(self, k: u64) -> Self;
    /// Lane `i` from `a` where bit `i` of `mask` is set, else from `b`.
    fn select(mask: u8, a: Self, b: Self) -> Self;
    /// Lanes where `self == b` (as field elements).
    fn equal(self, b: Self) -> u8;
    /// Lanes whose canonical representative is odd (RFC 9380's `sgn0`).
    fn odd(self) -> u8;
    /// Swap `a` and `b` in every lane when `bit` is 1 (`bit` is 0 or 1, the same for all lanes).
    fn cswap(a: &mut Self, b: &mut Self, bit: u64);
}

/// Limbs of the low 255 bits of a little-endian 32-byte string (the top bit is ignored, as X25519 does).
pub(super) fn limbs_from_bytes(bytes: &[u8; 32]) -> [u64; 5] {
    let word = |i: usize| u64::from_le_bytes(bytes[8 * i..8 * i + 8].try_into().expect("8 bytes"));
    let (w0, w1, w2, w3) = (word(0), word(1), word(2), word(3));
    [
        w0 & MASK,
        ((w0 >> 51) | (w1 << 13)) & MASK,
        ((w1 >> 38) | (w2 << 26)) & MASK,
        ((w2 >> 25) | (w3 << 39)) & MASK,
        (w3 >> 12) & MASK,
    ]
}

/// The 32 little-endian bytes of canonical limbs (each below `2^51`).
pub(super) fn bytes_from_limbs(l: &[u64; 5]) -> [u8; 32] {
    let words =
        [l[0] | (l[1] << 51), (l[1] >> 13) | (l[2] << 38), (l[2] >> 26) | (l[3] << 25), (l[3] >> 39) | (l[4] << 12)];
    let mut out = [0u8; 32];
    for (chunk, w) in out.chunks_exact_mut(8).zip(words) {
        chunk.copy_from_slice(&w.to_le_bytes());
    }
    out
}

/// The canonical limbs of an element whose limbs are below `2^52`: weakly carried, then `p` subtracted once if
/// the value is at least `p` (`q` is the carry out of `value + 19` past `2^255`), without branches.
pub(super) fn canonical(l: [u64; 5]) -> [u64; 5] {
    let mut l = weak_carry(l);
    let mut q = (l[0] + 19) >> RADIX;
    for limb in &l[1..] {
        q = (limb + q) >> RADIX;
    }
    l[0] += 19 * q;
    for i in 0..4 {
        l[i + 1] += l[i] >> RADIX;
        l[i] &= MASK;
    }
    l[4] &= MASK;
    l
}

/// Each lane's canonical limbs from limb-major columns of `N` lanes (what a vector store gives).
pub(super) fn store_columns<const N: usize>(columns: &[[u64; N]; 5], out: &mut [[u64; 5]]) {
    for (l, lane) in out.iter_mut().enumerate().take(N) {
        *lane = canonical(std::array::from_fn(|i| columns[i][l]));
    }
}

/// One parallel carry: each limb keeps 51 bits and passes the rest up, the top limb's to limb 0 times 19.
fn weak_carry(l: [u64; 5]) -> [u64; 5] {
    let c = l.map(|x| x >> RADIX);
    [(l[0] & MASK) + 19 * c[4], (l[1] & MASK) + c[0], (l[2] & MASK) + c[1], (l[3] & MASK) + c[2], (l[4] & MASK) + c[3]]
}

/// One field element, portable code.
#[derive(Clone, Copy, Debug)]
pub(super) struct Portable(pub [u64; 5]);

impl Portable {
    /// Carry 128-bit column sums into limbs below `2^51 + 2^16`.
    fn carry(r: [u128; 5]) -> Portable {
        let mut out = [0u64; 5];
        let mut c = 0u128;
        for i in 0..5 {
            let t = r[i] + c;
            out[i] = t as u64 & MASK;
            c = t >> RADIX;
        }
        let t = out[0] as u128 + 19 * c;
        out[0] = t as u64 & MASK;
        out[1] += (t >> RADIX) as u64;
        Portable(out)
    }
}

impl Lanes for Portable {
    type Ctx = ();
    const LANES: usize = 1;

    fn splat(_: (), limbs: [u64; 5]) -> Self {
        Portable(limbs)
    }

    fn load(_: (), lanes: &[[u64; 5]]) -> Self {
        Portable(lanes[0])
    }

    fn store(self, out: &mut [[u64; 5]]) {
        out[0] = canonical(self.0);
    }

    fn add(self, b: Self) -> Self {
        Portable::carry(std::array::from_fn(|i| (self.0[i] + b.0[i]) as u128))
    }

    fn sub(self, b: Self) -> Self {
        Portable::carry(std::array::from_fn(|i| (self.0[i] + FOUR_P[i] - b.0[i]) as u128))
    }

    fn mul(self, b: Self) -> Self {
        let (a, b) = (self.0, b.0);
        let b19 = b.map(|x| 19 * x as u128);
        let mut r = [0u128; 5];
        for i in 0..5 {
            for j in 0..5 {
                r[(i + j) % 5] += a[i] as u128 * if i + j < 5 { b[j] as u128 } else { b19[j] };
            }
        }
        Portable::carry(r)
    }

    fn square(self) -> Self {
        self.mul(self)
    }

    fn mul_small(self, k: u64) -> Self {
        Portable::carry(self.0.map(|x| x as u128 * k as u128))
    }

    fn select(mask: u8, a: Self, b: Self) -> Self {
        let m = 0u64.wrapping_sub((mask & 1) as u64);
        Portable(std::array::from_fn(|i| b.0[i] ^ ((a.0[i] ^ b.0[i]) & m)))
    }

    fn equal(self, b: Self) -> u8 {
        let (x, y) = (canonical(self.0), canonical(b.0));
        let diff = x.iter().zip(&y).fold(0u64, |acc, (p, q)| acc | (p ^ q));
        // 1 when every limb agrees, without a branch.
        (((diff | diff.wrapping_neg()) >> 63) ^ 1) as u8
    }

    fn odd(self) -> u8 {
        (canonical(self.0)[0] & 1) as u8
    }

    fn cswap(a: &mut Self, b: &mut Self, bit: u64) {
        let m = 0u64.wrapping_sub(bit);
        for i in 0..5 {
            let t = (a.0[i] ^ b.0[i]) & m;
            a.0[i] ^= t;
            b.0[i] ^= t;
        }
    }
}
