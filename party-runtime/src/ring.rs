//! The rings `Z_2^64` (`FM64`) and `Z_2^128` (`FM128`) as `u64` / `u128` with wrapping arithmetic, their
//! fixed-point encoding, and the bit packing that sends a value in only as many bits as the protocol needs.

use std::fmt::Debug;

/// An element of `Z_2^k`: wrapping arithmetic, bits, bytes and fixed-point conversion.
pub trait Ring: Copy + Default + Debug + PartialEq + Eq + Send + Sync + 'static {
    /// `k`.
    const BITS: u32;
    /// Zero.
    const ZERO: Self;
    /// One.
    const ONE: Self;
    /// `a + b mod 2^k`.
    fn add(self, o: Self) -> Self;
    /// `a - b mod 2^k`.
    fn sub(self, o: Self) -> Self;
    /// `a * b mod 2^k`.
    fn mul(self, o: Self) -> Self;
    /// `-a mod 2^k`.
    fn neg(self) -> Self;
    /// Logical shift left.
    fn shl(self, s: u32) -> Self;
    /// Logical shift right.
    fn shr(self, s: u32) -> Self;
    /// Bit `i`.
    fn bit(self, i: u32) -> bool;
    /// The low `w` bits (`w <= k`).
    fn low(self, w: u32) -> Self;
    /// From the low bits of a `u128`.
    fn from_u128(v: u128) -> Self;
    /// As a `u128` (zero-extended).
    fn to_u128(self) -> u128;
    /// Two's-complement signed value, as `f64`.
    fn signed_f64(self) -> f64;
    /// `round(x * 2^f)` in two's complement; `x` must fit (callers check ranges).
    fn encode(x: f64, f: u32) -> Self;
    /// The fixed-point value with `f` fraction bits.
    fn decode(self, f: u32) -> f64 {
        self.signed_f64() / (f as f64).exp2()
    }
    /// The two's-complement sign bit.
    fn msb(self) -> bool {
        self.bit(Self::BITS - 1)
    }
    /// The signed value divided by `2^s` (arithmetic shift).
    fn sar(self, s: u32) -> Self;
}

macro_rules! ring {
    ($t:ty, $s:ty) => {
        impl Ring for $t {
            const BITS: u32 = <$t>::BITS;
            const ZERO: Self = 0;
            const ONE: Self = 1;
            #[inline]
            fn add(self, o: Self) -> Self {
                self.wrapping_add(o)
            }
            #[inline]
            fn sub(self, o: Self) -> Self {
                self.wrapping_sub(o)
            }
            #[inline]
            fn mul(self, o: Self) -> Self {
                self.wrapping_mul(o)
            }
            #[inline]
            fn neg(self) -> Self {
                self.wrapping_neg()
            }
            #[inline]
            fn shl(self, s: u32) -> Self {
                self.checked_shl(s).unwrap_or(0)
            }
            #[inline]
            fn shr(self, s: u32) -> Self {
                self.checked_shr(s).unwrap_or(0)
            }
            #[inline]
            fn bit(self, i: u32) -> bool {
                (self >> i) & 1 == 1
            }
            #[inline]
            fn low(self, w: u32) -> Self {
                if w >= Self::BITS { self } else { self & ((1 << w) - 1) }
            }
            #[inline]
            fn from_u128(v: u128) -> Self {
                v as $t
            }
            #[inline]
            fn to_u128(self) -> u128 {
                self as u128
            }
            fn signed_f64(self) -> f64 {
                self as $s as f64
            }
            fn encode(x: f64, f: u32) -> Self {
                (x * (f as f64).exp2()).round() as $s as $t
            }
            fn sar(self, s: u32) -> Self {
                ((self as $s) >> s) as $t
            }
        }
    };
}

ring!(u64, i64);
ring!(u128, i128);

/// Packs values of varying widths into a little-endian bit stream (a value of width `w` takes `w` bits).
#[derive(Default)]
pub struct BitWriter {
    out: Vec<u8>,
    acc: u128,
    n: u32,
}

impl BitWriter {
    /// A writer with room for `bits` bits.
    pub fn with_capacity(bits: usize) -> Self {
        BitWriter { out: Vec::with_capacity(bits.div_ceil(8) + 8), acc: 0, n: 0 }
    }

    /// Append the low `w` bits of `v` (`w <= 128`).
    #[inline]
    pub fn put(&mut self, v: u128, w: u32) {
        if w > 64 {
            self.put64(v as u64, 64);
            self.put64((v >> 64) as u64, w - 64);
        } else {
            self.put64(v as u64, w);
        }
    }

    #[inline]
    fn put64(&mut self, v: u64, w: u32) {
        let v = if w == 64 { v } else { v & ((1u64 << w) - 1) };
        self.acc |= (v as u128) << self.n;
        self.n += w;
        if self.n >= 64 {
            self.out.extend_from_slice(&(self.acc as u64).to_le_bytes());
            self.acc >>= 64;
            self.n -= 64;
        }
    }

    /// The bytes (the last partial word padded with zeros).
    pub fn finish(mut self) -> Vec<u8> {
        let bytes = self.n.div_ceil(8) as usize;
        self.out.extend_from_slice(&(self.acc as u64).to_le_bytes()[..bytes]);
        self.out
    }
}

/// Reads what [`BitWriter`] wrote.
pub struct BitReader<'a> {
    bytes: &'a [u8],
    next: usize,
    acc: u128,
    n: u32,
    left: usize,
}

impl<'a> BitReader<'a> {
    /// Read from `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        BitReader { bytes, next: 0, acc: 0, n: 0, left: bytes.len() * 8 }
    }

    /// The next `w` bits, or `None` past the end.
    #[inline]
    pub fn get(&mut self, w: u32) -> Option<u128> {
        if w as usize > self.left {
            return None;
        }
        self.left -= w as usize;
        Some(if w > 64 {
            let lo = self.get64(64) as u128;
            lo | (self.get64(w - 64) as u128) << 64
        } else {
            self.get64(w) as u128
        })
    }

    #[inline]
    fn get64(&mut self, w: u32) -> u64 {
        if self.n < w {
            let word = match self.bytes.get(self.next..self.next + 8) {
                Some(b) => u64::from_le_bytes(b.try_into().unwrap_or([0; 8])),
                None => {
                    // The last, partial word.
                    let mut word = [0u8; 8];
                    let tail = &self.bytes[self.next.min(self.bytes.len())..];
                    word[..tail.len()].copy_from_slice(tail);
                    u64::from_le_bytes(word)
                }
            };
            self.next += 8;
            self.acc |= (word as u128) << self.n;
            self.n += 64;
        }
        let v = if w == 64 { self.acc as u64 } else { (self.acc as u64) & ((1u64 << w) - 1) };
        self.acc >>= w;
        self.n -= w;
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_point_round_trips_both_rings() {
        for x in [0.0, 1.5, -1.5, 1234.25, -0.000_003_814_697_265_625] {
            assert_eq!(u64::encode(x, 18).decode(18), x);
            assert_eq!(u128::encode(x, 26).decode(26), x);
        }
        assert_eq!(u64::encode(-1.0, 0), u64::MAX);
        assert!(u64::encode(-2.0, 3).msb());
        assert_eq!(u64::encode(-8.0, 0).sar(2), u64::encode(-2.0, 0));
    }

    #[test]
    fn bit_packing_round_trips_every_width() {
        let mut x = 0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c834u128;
        let items: Vec<(u128, u32)> = (0..500)
            .map(|i| {
                x = x.rotate_left(17).wrapping_mul(0x2545_f491_4f6c_dd1d);
                (x, (i % 128) as u32 + 1)
            })
            .collect();
        let mut w = BitWriter::default();
        for (v, width) in &items {
            w.put(*v, *width);
        }
        let bytes = w.finish();
        assert_eq!(bytes.len(), items.iter().map(|(_, w)| *w as usize).sum::<usize>().div_ceil(8));
        let mut r = BitReader::new(&bytes);
        for (v, width) in &items {
            let mask = if *width == 128 { u128::MAX } else { (1u128 << width) - 1 };
            assert_eq!(r.get(*width), Some(v & mask));
        }
    }
}
