//! Hashing keys to Curve25519 and raising points to a secret exponent, many keys at once: the group operations
//! ECDH-PSI needs, batched across keys.
//!
//! Not yet ECDH-PSI's group ([`crate::psi`]'s `ecdh` uses curve25519-dalek's Ristretto): both parties must use
//! the same group whatever their CPUs, and on an AVX2-only CPU this module's four-lane ladder measures below
//! dalek's Ristretto (`cargo test -p party-runtime --lib curve_throughput -- --ignored --nocapture` prints both
//! side by side); its eight-lane IFMA path is checked here on a model of its instructions and awaits a
//! measurement on a CPU that has them.
//!
//! - `H(key)` is RFC 9380's `hash_to_curve` for curve25519 (`expand_message_xmd` with SHA-512, two field
//!   elements, two Elligator 2 maps, the points added), a random oracle onto the curve; its cofactor clearing
//!   is folded into the exponent.
//! - A party's exponent is `8 s` for `s` uniform mod the prime group order `l`: it clears any small-order
//!   component, and `[8 s] P` depends only on `P`'s prime-order part, so blindings commute and every blinded
//!   point is in the prime-order subgroup.
//! - Points travel as the 32-byte `u`-coordinate (X25519's encoding), and exponentiation is the `u`-only
//!   Montgomery ladder (RFC 7748) over all 256 bits of the exponent, in constant time.
//!
//! The curve code is written once over [`field::Lanes`] and runs on eight keys at a time with AVX-512 IFMA
//! ([`ifma`]) where the CPU has it (and `SF_DISABLE_AVX512` is unset), four at a time with AVX2 ([`avx2`])
//! otherwise, one at a time without either ([`field::Portable`]); all give the same bytes.

#[cfg(target_arch = "x86_64")]
mod avx2;
mod field;
#[cfg(target_arch = "x86_64")]
mod ifma;

use curve25519_dalek::scalar::Scalar;
use pulp::NullaryFnOnce;
use rand_core::Rng;
use rayon::prelude::*;
use sha2::{Digest, Sha512};

use field::{Lanes, Portable, bytes_from_limbs, canonical, limbs_from_bytes};

/// Bytes of an encoded point (its `u`-coordinate).
pub const POINT_BYTES: usize = 32;
/// Curve25519's Montgomery coefficient `A`.
const A: u64 = 486662;
/// `(A - 2) / 4`, the ladder's constant.
const A24: u64 = 121665;
/// Keys per parallel task: large enough to amortize the vector set-up, small enough to spread over threads.
const CHUNK: usize = 512;

/// How the curve arithmetic runs on this CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CurvePath {
    /// Eight keys at a time in AVX-512 IFMA lanes.
    Ifma8,
    /// Four keys at a time in AVX2 lanes.
    Avx2x4,
    /// The IFMA path's arithmetic on a plain-integer model of its instructions (tests only: any CPU runs it).
    #[cfg(test)]
    Ifma8Model,
    /// One key at a time, 64-bit limbs.
    Portable,
}

impl CurvePath {
    /// The path for this CPU (AVX-512 IFMA unless absent or hidden by `SF_DISABLE_AVX512`).
    pub fn detect() -> CurvePath {
        let cpu = crate::cpu::cpu();
        let has = |f: &str| cpu.features.contains(&f);
        if has("avx512f") && has("avx512ifma") && !cpu.avx512_disabled {
            CurvePath::Ifma8
        } else if has("avx2") {
            CurvePath::Avx2x4
        } else {
            CurvePath::Portable
        }
    }

    /// The name printed by benchmarks and the start-up log.
    pub fn name(self) -> &'static str {
        match self {
            CurvePath::Ifma8 => "avx512ifma x8",
            CurvePath::Avx2x4 => "avx2 x4",
            #[cfg(test)]
            CurvePath::Ifma8Model => "avx512ifma x8 (model)",
            CurvePath::Portable => "portable",
        }
    }
}

/// A party's secret exponent `8 s`, as the 256-bit little-endian integer the ladder walks.
pub struct Blinder {
    bits: [u8; 32],
}

impl Blinder {
    /// A fresh exponent: `s` uniform mod `l` (64 random bytes reduced), times 8.
    pub fn random(rng: &mut impl Rng) -> Blinder {
        let mut wide = [0u8; 64];
        rng.fill_bytes(&mut wide);
        Blinder::from_scalar(&Scalar::from_bytes_mod_order_wide(&wide))
    }

    /// The exponent `8 s` for a given `s`.
    pub fn from_scalar(s: &Scalar) -> Blinder {
        // s < 2^253, so 8 s fits 256 bits.
        let s = s.to_bytes();
        let mut bits = [0u8; 32];
        for i in 0..32 {
            bits[i] = (s[i] << 3) | if i > 0 { s[i - 1] >> 5 } else { 0 };
        }
        Blinder { bits }
    }
}

/// `u(H(key)^e)` for every key, 32 bytes each, in order; `domain` separates this use of the hash from others.
pub fn hash_and_blind(keys: &[Vec<u8>], e: &Blinder, domain: &[u8]) -> Vec<u8> {
    hash_and_blind_on(CurvePath::detect(), keys, e, domain)
}

/// `u(H(key))` for every key, unblinded: what ECDH-PSI must never send (its transcript test looks for it).
pub fn hash_to_curve(keys: &[Vec<u8>], domain: &[u8]) -> Vec<u8> {
    let mut one = [0u8; 32];
    one[0] = 1;
    hash_and_blind(keys, &Blinder { bits: one }, domain)
}

/// [`hash_and_blind`] on a given path.
fn hash_and_blind_on(path: CurvePath, keys: &[Vec<u8>], e: &Blinder, domain: &[u8]) -> Vec<u8> {
    let consts = ConstLimbs::get();
    keys.par_chunks(CHUNK)
        .map(|chunk| {
            let mut us: Vec<[[u64; 5]; 2]> = chunk.iter().map(|k| hash_to_field(k, domain)).collect();
            let out = run(path, &mut us, |us, out| Job::Hash(us).run(path, &e.bits, consts, out));
            out.iter().flat_map(bytes_from_limbs).collect::<Vec<u8>>()
        })
        .collect::<Vec<_>>()
        .concat()
}

/// `u(P^e)` for every encoded point of `points` (32 bytes each), keeping the first `keep` bytes of each.
/// Any 32 bytes decode (the top bit is ignored, as in X25519); the caller checks the length.
pub fn blind(points: &[u8], e: &Blinder, keep: usize) -> Vec<u8> {
    blind_on(CurvePath::detect(), points, e, keep)
}

/// [`blind`] on a given path.
fn blind_on(path: CurvePath, points: &[u8], e: &Blinder, keep: usize) -> Vec<u8> {
    let consts = ConstLimbs::get();
    points
        .par_chunks(CHUNK * POINT_BYTES)
        .map(|chunk| {
            let mut us: Vec<[u64; 5]> =
                chunk.chunks_exact(POINT_BYTES).map(|c| limbs_from_bytes(c.try_into().expect("32 bytes"))).collect();
            let out = run(path, &mut us, |us, out| Job::Blind(us).run(path, &e.bits, consts, out));
            out.iter().flat_map(|l| bytes_from_limbs(l)[..keep].to_vec()).collect::<Vec<u8>>()
        })
        .collect::<Vec<_>>()
        .concat()
}

/// Pad `inputs` to whole vectors of the path's lanes, run `f`, and return one output per real input.
fn run<T: Copy>(path: CurvePath, inputs: &mut Vec<T>, f: impl Fn(&[T], &mut [[u64; 5]])) -> Vec<[u64; 5]> {
    let n = inputs.len();
    let lanes = match path {
        CurvePath::Ifma8 => 8,
        #[cfg(test)]
        CurvePath::Ifma8Model => 8,
        CurvePath::Avx2x4 => 4,
        CurvePath::Portable => 1,
    };
    if let Some(&first) = inputs.first() {
        inputs.resize(n.next_multiple_of(lanes), first);
    }
    let mut out = vec![[0u64; 5]; inputs.len()];
    f(inputs, &mut out);
    out.truncate(n);
    out
}

/// One chunk's work: hash pairs of field elements to points and blind them, or blind encoded points.
enum Job<'a> {
    Hash(&'a [[[u64; 5]; 2]]),
    Blind(&'a [[u64; 5]]),
}

impl Job<'_> {
    /// Run on `path`'s lanes (inside the SIMD token's `vectorize`, so the code is compiled with its features).
    fn run(self, path: CurvePath, e: &[u8; 32], c: &ConstLimbs, out: &mut [[u64; 5]]) {
        match path {
            #[cfg(target_arch = "x86_64")]
            CurvePath::Ifma8 => {
                let s = ifma::Ifma52::try_new().expect("the IFMA path is chosen only on a CPU with IFMA");
                s.vectorize(Vectorized::<ifma::Ifma<ifma::Ifma52>> { ctx: s, job: self, e, c, out })
            }
            #[cfg(target_arch = "x86_64")]
            CurvePath::Avx2x4 => {
                let s = pulp::x86::V3::try_new().expect("the AVX2 path is chosen only on a CPU with AVX2");
                s.vectorize(Vectorized::<avx2::Avx2> { ctx: s, job: self, e, c, out })
            }
            #[cfg(test)]
            CurvePath::Ifma8Model => {
                Vectorized::<ifma::Ifma<ifma::Model52>> { ctx: ifma::Model52, job: self, e, c, out }.call()
            }
            _ => Vectorized::<Portable> { ctx: (), job: self, e, c, out }.call(),
        }
    }
}

/// A [`Job`] on lanes `F`, as pulp's `vectorize` takes it.
struct Vectorized<'a, F: Lanes> {
    ctx: F::Ctx,
    job: Job<'a>,
    e: &'a [u8; 32],
    c: &'a ConstLimbs,
    out: &'a mut [[u64; 5]],
}

impl<F: Lanes> pulp::NullaryFnOnce for Vectorized<'_, F> {
    type Output = ();

    /// Each vector's `u` (two keys' hashed points added, or the points given), then one ladder for both jobs:
    /// every field operation appears in few places, which keeps the compiled kernel small.
    #[inline(always)]
    fn call(self) {
        let k = Consts::<F>::new(self.ctx, self.c);
        let count = match self.job {
            Job::Hash(us) => us.len(),
            Job::Blind(us) => us.len(),
        };
        let mut lanes = [[[0u64; 5]; 8]; 2];
        for (v, o) in self.out.chunks_exact_mut(F::LANES).enumerate().take(count / F::LANES) {
            let range = v * F::LANES..(v + 1) * F::LANES;
            let u = match self.job {
                Job::Hash(us) => {
                    for (l, pair) in us[range].iter().enumerate() {
                        lanes[0][l] = pair[0];
                        lanes[1][l] = pair[1];
                    }
                    let mut points = [(k.zero, k.zero, k.zero); 2];
                    for (point, half) in points.iter_mut().zip(&lanes) {
                        *point = elligator(F::load(self.ctx, half), &k);
                    }
                    let (x, z) = add_points(points[0], points[1]);
                    x.mul(invert(z))
                }
                Job::Blind(us) => F::load(self.ctx, &us[range]),
            };
            ladder(u, self.e, &k).store(o);
        }
    }
}

/// The field constants the maps need, as limbs.
struct ConstLimbs {
    /// `sqrt(-1) = 2^((p-1)/4)`.
    sqrt_m1: [u64; 5],
    /// RFC 9380's `c2 = 2^((p+3)/8)`.
    c2: [u64; 5],
    /// `-A`.
    minus_a: [u64; 5],
}

impl ConstLimbs {
    fn get() -> &'static ConstLimbs {
        static CONSTS: std::sync::OnceLock<ConstLimbs> = std::sync::OnceLock::new();
        CONSTS.get_or_init(|| {
            let two = Portable([2, 0, 0, 0, 0]);
            // (p-1)/4 = 2^253 - 5 and (p+3)/8 = 2^252 - 2, little-endian.
            let mut e1 = [0xffu8; 32];
            e1[0] = 0xfb;
            e1[31] = 0x1f;
            let mut e2 = [0xffu8; 32];
            e2[0] = 0xfe;
            e2[31] = 0x0f;
            let zero = Portable([0; 5]);
            ConstLimbs {
                sqrt_m1: canonical(pow(two, &e1).0),
                c2: canonical(pow(two, &e2).0),
                minus_a: canonical(zero.sub(Portable([A, 0, 0, 0, 0])).0),
            }
        })
    }
}

/// `x^e` by square and multiply over `e`'s bits (little-endian bytes); public exponents only.
fn pow(x: Portable, e: &[u8; 32]) -> Portable {
    let mut r = Portable([1, 0, 0, 0, 0]);
    for t in (0..256).rev() {
        r = r.square();
        if (e[t / 8] >> (t % 8)) & 1 == 1 {
            r = r.mul(x);
        }
    }
    r
}

/// RFC 9380's `hash_to_field` for two elements: `expand_message_xmd` (SHA-512) to 96 bytes, each 48-byte half
/// read big-endian and reduced mod p. Returns canonical limbs.
fn hash_to_field(msg: &[u8], dst: &[u8]) -> [[u64; 5]; 2] {
    const LEN: usize = 96;
    let dst_len = [dst.len() as u8];
    // The first block of b0's input is all zeros (Z_pad): hashed once.
    static ZPAD: std::sync::OnceLock<Sha512> = std::sync::OnceLock::new();
    let b0: [u8; 64] = ZPAD
        .get_or_init(|| Sha512::new().chain_update([0u8; 128]))
        .clone()
        .chain_update(msg)
        .chain_update((LEN as u16).to_be_bytes())
        .chain_update([0u8])
        .chain_update(dst)
        .chain_update(dst_len)
        .finalize()
        .into();
    let b1: [u8; 64] =
        Sha512::new().chain_update(b0).chain_update([1u8]).chain_update(dst).chain_update(dst_len).finalize().into();
    let mixed: Vec<u8> = b0.iter().zip(&b1).map(|(x, y)| x ^ y).collect();
    let b2: [u8; 64] =
        Sha512::new().chain_update(mixed).chain_update([2u8]).chain_update(dst).chain_update(dst_len).finalize().into();
    let mut uniform = [0u8; LEN];
    uniform[..64].copy_from_slice(&b1);
    uniform[64..].copy_from_slice(&b2[..32]);
    [reduce_be48(&uniform[..48]), reduce_be48(&uniform[48..])]
}

/// A 48-byte big-endian integer mod p: `high 2^256 + low`, with `2^256 = 38` and `2^255 = 19` mod p.
fn reduce_be48(b: &[u8]) -> [u64; 5] {
    let mut low = [0u8; 32];
    for (i, byte) in b[16..].iter().rev().enumerate() {
        low[i] = *byte;
    }
    let mut high = [0u8; 32];
    for (i, byte) in b[..16].iter().rev().enumerate() {
        high[i] = *byte;
    }
    let top = (low[31] >> 7) as u64;
    let x = Portable(limbs_from_bytes(&low))
        .add(Portable([19 * top, 0, 0, 0, 0]))
        .add(Portable(limbs_from_bytes(&high)).mul_small(38));
    canonical(x.0)
}

/// The curve constants in lanes.
struct Consts<F> {
    one: F,
    zero: F,
    sqrt_m1: F,
    c2: F,
    minus_a: F,
}

impl<F: Lanes> Consts<F> {
    #[inline(always)]
    fn new(ctx: F::Ctx, c: &ConstLimbs) -> Consts<F> {
        Consts {
            one: F::splat(ctx, [1, 0, 0, 0, 0]),
            zero: F::splat(ctx, [0; 5]),
            sqrt_m1: F::splat(ctx, c.sqrt_m1),
            c2: F::splat(ctx, c.c2),
            minus_a: F::splat(ctx, c.minus_a),
        }
    }
}

#[inline(always)]
fn square_n<F: Lanes>(mut x: F, n: u32) -> F {
    for _ in 0..n {
        x = x.square();
    }
    x
}

/// `(z^(2^250 - 1), z^11)`, the common part of inversion and `pow_p58` (ref10's chain), with the long stretch
/// of squarings as one loop over its steps so the multiplications appear once.
#[inline(always)]
fn pow22501<F: Lanes>(z: F) -> (F, F) {
    let z2 = z.square();
    let z9 = square_n(z2, 2).mul(z);
    let z11 = z9.mul(z2);
    // z^(2^5 - 1), then z^(2^n - 1) for n = 10, 20, 40, 50, 100, 200, 250: square `shift` times, multiply by
    // the power `factor` names (0: the step's own input, 1: z^(2^10 - 1), 2: z^(2^50 - 1)).
    let mut t = z11.square().mul(z9);
    let mut saved = [t; 3];
    for (shift, factor, save) in [(5, 0, 1), (10, 0, 0), (20, 0, 0), (10, 1, 2), (50, 0, 0), (100, 0, 0), (50, 2, 0)] {
        saved[0] = t;
        t = square_n(t, shift).mul(saved[factor]);
        if save > 0 {
            saved[save] = t;
        }
    }
    (t, z11)
}

/// `z^(p-2)`, which is `1/z` (and 0 for 0).
#[inline(always)]
fn invert<F: Lanes>(z: F) -> F {
    let (t, z11) = pow22501(z);
    square_n(t, 5).mul(z11)
}

/// `z^((p-5)/8)`.
#[inline(always)]
fn pow_p58<F: Lanes>(z: F) -> F {
    let (t, _) = pow22501(z);
    square_n(t, 2).mul(z)
}

/// RFC 9380's `map_to_curve_elligator2_curve25519` (its appendix G.2.1 straight-line program): the point as
/// `(xn, xd, y)` with `u = xn / xd`.
#[inline(always)]
fn elligator<F: Lanes>(u: F, k: &Consts<F>) -> (F, F, F) {
    let tv1 = u.square();
    let tv1 = tv1.add(tv1);
    let xd = tv1.add(k.one);
    let x1n = k.minus_a;
    let tv2 = xd.square();
    let gxd = tv2.mul(xd);
    let gx1 = tv1.mul_small(A).mul(x1n).add(tv2).mul(x1n);
    let tv3 = gxd.square();
    let tv2 = tv3.square();
    let tv3 = tv3.mul(gxd).mul(gx1);
    let tv2 = tv2.mul(tv3);
    let y11 = pow_p58(tv2).mul(tv3);
    let y12 = y11.mul(k.sqrt_m1);
    let e1 = y11.square().mul(gxd).equal(gx1);
    let y1 = F::select(e1, y11, y12);
    let x2n = x1n.mul(tv1);
    let y21 = y11.mul(u).mul(k.c2);
    let y22 = y21.mul(k.sqrt_m1);
    let gx2 = gx1.mul(tv1);
    let e2 = y21.square().mul(gxd).equal(gx2);
    let y2 = F::select(e2, y21, y22);
    let e3 = y1.square().mul(gxd).equal(gx1);
    let xn = F::select(e3, x1n, x2n);
    let y = F::select(e3, y1, y2);
    let flip = e3 ^ y.odd();
    (xn, xd, F::select(flip, k.zero.sub(y), y))
}

/// The sum of two affine points given as `(xn, xd, y)`, as a projective `u = X / Z`: with
/// `Nx = xn1 xd0 - xn0 xd1`, `Ny = y1 - y0`, `D = xd0 xd1` and `S = A D + xn0 xd1 + xn1 xd0`, the chord's
/// slope is `Ny D / Nx` and `u = (Ny^2 D^3 - S Nx^2) / (Nx^2 D)`. Equal or opposite points (probability about
/// `2^-250` for hashed keys) give `Z = 0`, which the ladder maps to 0.
#[inline(always)]
fn add_points<F: Lanes>((xn0, xd0, y0): (F, F, F), (xn1, xd1, y1): (F, F, F)) -> (F, F) {
    let a = xn1.mul(xd0);
    let b = xn0.mul(xd1);
    let nx2 = a.sub(b).square();
    let ny2 = y1.sub(y0).square();
    let d = xd0.mul(xd1);
    let s = d.mul_small(A).add(a).add(b);
    (ny2.mul(d.square().mul(d)).sub(s.mul(nx2)), nx2.mul(d))
}

/// `u([e] P)` for affine `u = u(P)`: RFC 7748's ladder over all 256 bits of `e`, then one inversion.
#[inline(always)]
fn ladder<F: Lanes>(u: F, e: &[u8; 32], k: &Consts<F>) -> F {
    let (mut x2, mut z2, mut x3, mut z3) = (k.one, k.zero, u, k.one);
    let mut swap = 0u64;
    for t in (0..256).rev() {
        let bit = ((e[t / 8] >> (t % 8)) & 1) as u64;
        swap ^= bit;
        F::cswap(&mut x2, &mut x3, swap);
        F::cswap(&mut z2, &mut z3, swap);
        swap = bit;
        let a = x2.add(z2);
        let aa = a.square();
        let b = x2.sub(z2);
        let bb = b.square();
        let ee = aa.sub(bb);
        let c = x3.add(z3);
        let d = x3.sub(z3);
        let da = d.mul(a);
        let cb = c.mul(b);
        x3 = da.add(cb).square();
        z3 = u.mul(da.sub(cb).square());
        x2 = aa.mul(bb);
        z2 = ee.mul(aa.add(ee.mul_small(A24)));
    }
    F::cswap(&mut x2, &mut x3, swap);
    F::cswap(&mut z2, &mut z3, swap);
    x2.mul(invert(z2))
}

#[cfg(test)]
mod tests;
