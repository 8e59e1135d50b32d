//! The curve code against curve25519-dalek (RFC 9380's hash to curve, RFC 7748's ladder) on every path this
//! CPU has, and the IFMA field arithmetic against the portable one at the limb bounds.

use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::montgomery::MontgomeryPoint;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use pulp::NullaryFnOnce;

use super::*;

const DST: &[u8] = b"secretflow-operator/x25519/test";

/// The paths this CPU can run, and the model of the IFMA path's instructions.
fn paths() -> Vec<CurvePath> {
    let mut paths = vec![CurvePath::Portable, CurvePath::Ifma8Model];
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") {
            paths.push(CurvePath::Avx2x4);
        }
        if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512ifma") {
            paths.push(CurvePath::Ifma8);
        }
    }
    paths
}

fn scalar(rng: &mut ChaCha20Rng) -> Scalar {
    let mut wide = [0u8; 64];
    rng.fill_bytes(&mut wide);
    Scalar::from_bytes_mod_order_wide(&wide)
}

fn bytes(rng: &mut ChaCha20Rng) -> [u8; 32] {
    let mut b = [0u8; 32];
    rng.fill_bytes(&mut b);
    b
}

fn keys(n: usize) -> Vec<Vec<u8>> {
    // Lengths 0 to 70 (empty, short, longer than a SHA-512 block's remainder).
    (0..n).map(|i| (0..i % 71).map(|j| (i * 31 + j) as u8).collect()).collect()
}

#[test]
fn hash_and_blind_is_rfc9380_hash_to_curve_times_8s() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let s = scalar(&mut rng);
    let keys = keys(37);
    let want: Vec<u8> = keys
        .iter()
        .flat_map(|k| (EdwardsPoint::hash_to_curve::<Sha512>(&[k], &[DST]) * s).to_montgomery().to_bytes())
        .collect();
    for path in paths() {
        assert!(hash_and_blind_on(path, &keys, &Blinder::from_scalar(&s), DST) == want, "{path:?}");
    }
}

#[test]
fn blind_is_the_ladder_on_any_u() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let s = scalar(&mut rng);
    let e = Blinder::from_scalar(&s);
    // Random u (on the curve or its twist), plus 0, 1, p - 1, p and 2^255 - 1 (reduced as X25519 does).
    let mut us: Vec<[u8; 32]> = (0..27).map(|_| bytes(&mut rng)).collect();
    let mut p_minus_1 = [0xffu8; 32];
    p_minus_1[0] = 0xec;
    p_minus_1[31] = 0x7f;
    let mut p = p_minus_1;
    p[0] = 0xed;
    us.extend([
        [0u8; 32],
        {
            let mut one = [0u8; 32];
            one[0] = 1;
            one
        },
        p_minus_1,
        p,
        [0xff; 32],
    ]);
    let bits = (0..256).rev().map(|t| (e.bits[t / 8] >> (t % 8)) & 1 == 1);
    let bits: Vec<bool> = bits.collect();
    let want: Vec<u8> =
        us.iter().flat_map(|u| MontgomeryPoint(*u).mul_bits_be(bits.iter().copied()).to_bytes()).collect();
    for path in paths() {
        assert!(blind_on(path, &us.concat(), &e, 32) == want, "{path:?}");
        assert_eq!(
            blind_on(path, &us.concat(), &e, 16),
            want.chunks(32).flat_map(|c| c[..16].to_vec()).collect::<Vec<_>>()
        );
    }
}

#[test]
fn clamped_exponents_give_x25519() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    for path in paths() {
        for _ in 0..5 {
            let mut k = bytes(&mut rng);
            let u: [u8; 32] = MontgomeryPoint::mul_base_clamped(bytes(&mut rng)).to_bytes();
            let want = MontgomeryPoint(u).mul_clamped(k);
            k[0] &= 248;
            k[31] &= 127;
            k[31] |= 64;
            assert_eq!(blind_on(path, &u, &Blinder { bits: k }, 32), want.to_bytes(), "{path:?}");
        }
    }
}

#[test]
fn blindings_commute() {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let (a, b) = (Blinder::random(&mut rng), Blinder::random(&mut rng));
    let keys = keys(20);
    for path in paths() {
        let ab = blind_on(path, &hash_and_blind_on(path, &keys, &a, DST), &b, 32);
        let ba = blind_on(path, &hash_and_blind_on(path, &keys, &b, DST), &a, 32);
        assert_eq!(ab, ba, "{path:?}");
        assert_eq!(ab.len(), 20 * 32);
    }
}

/// Limbs at the top of what an operand may hold (below 2^51 + 2^16), and random ones.
fn operands(rng: &mut ChaCha20Rng, n: usize) -> Vec<[u64; 5]> {
    let top = (1u64 << 51) + (1 << 16) - 1;
    let mut v = vec![[top; 5], [0; 5], [field::MASK; 5], [top, 0, top, 0, top]];
    v.extend((0..n).map(|_| std::array::from_fn(|_| rng.next_u64() % (top + 1))));
    v
}

#[cfg(target_arch = "x86_64")]
#[test]
fn vector_fields_match_portable() {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let xs = operands(&mut rng, 252);
    let ys = operands(&mut rng, 252);
    for path in paths() {
        for (x, y) in xs.chunks(8).zip(ys.chunks(8)) {
            if let Some(got) = lane_ops(path, x, y) {
                check_lanes(x, y, &got, path);
            }
        }
    }
}

/// One vector's results (per lane: add, sub, mul, square, mul_small, select; the equal and odd masks) against
/// the portable code's.
fn check_lanes(x: &[[u64; 5]], y: &[[u64; 5]], got: &LaneResults, path: CurvePath) {
    for l in 0..8 {
        let (a, b) = (Portable(x[l]), Portable(y[l]));
        let want = [a.add(b), a.sub(b), a.mul(b), a.square(), a.mul_small(A24), Portable::select(l as u8 & 1, a, b)];
        for (op, w) in want.iter().enumerate() {
            assert_eq!(got.0[op][l], canonical(w.0), "{path:?} op {op}, lane {l}: {:?} {:?}", x[l], y[l]);
        }
        assert_eq!(got.1 >> l & 1, a.equal(b), "{path:?} equal, lane {l}");
        assert_eq!(got.2 >> l & 1, a.odd(), "{path:?} odd, lane {l}");
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn vector_equal_sees_through_representations() {
    // p + 3 and 3 are the same element.
    let p_plus_3 = [(1u64 << 51) - 16, field::MASK, field::MASK, field::MASK, field::MASK];
    let (x, y) = ([p_plus_3; 8], [[3, 0, 0, 0, 0]; 8]);
    for path in paths() {
        if let Some(got) = lane_ops(path, &x, &y) {
            assert_eq!(got.1, 0xff, "{path:?}");
        }
    }
}

/// Per lane: add, sub, mul, square, mul_small, select's canonical limbs; then the equal and odd masks.
type LaneResults = ([[[u64; 5]; 8]; 6], u8, u8);

/// Each operation on eight lanes on a vector path (`None` for the portable one).
#[cfg(target_arch = "x86_64")]
fn lane_ops(path: CurvePath, x: &[[u64; 5]], y: &[[u64; 5]]) -> Option<LaneResults> {
    match path {
        CurvePath::Ifma8 => {
            let s = ifma::Ifma52::try_new()?;
            Some(s.vectorize(LaneOps::<ifma::Ifma<ifma::Ifma52>> { ctx: s, x, y }))
        }
        CurvePath::Ifma8Model => Some(LaneOps::<ifma::Ifma<ifma::Model52>> { ctx: ifma::Model52, x, y }.call()),
        CurvePath::Avx2x4 => {
            let s = pulp::x86::V3::try_new()?;
            Some(s.vectorize(LaneOps::<avx2::Avx2> { ctx: s, x, y }))
        }
        CurvePath::Portable => None,
    }
}

struct LaneOps<'a, F: Lanes> {
    ctx: F::Ctx,
    x: &'a [[u64; 5]],
    y: &'a [[u64; 5]],
}

impl<F: Lanes> pulp::NullaryFnOnce for LaneOps<'_, F> {
    type Output = LaneResults;

    #[inline(always)]
    fn call(self) -> LaneResults {
        let mut out = [[[0u64; 5]; 8]; 6];
        let (mut eq, mut odd) = (0u8, 0u8);
        for v in 0..8 / F::LANES {
            let r = v * F::LANES..(v + 1) * F::LANES;
            let (a, b) = (F::load(self.ctx, &self.x[r.clone()]), F::load(self.ctx, &self.y[r.clone()]));
            // Lanes 1, 3, 5, 7 select a.
            let odd_lanes = (0xaau16 >> (v * F::LANES)) as u8;
            let results = [a.add(b), a.sub(b), a.mul(b), a.square(), a.mul_small(A24), F::select(odd_lanes, a, b)];
            for (o, res) in out.iter_mut().zip(results) {
                res.store(&mut o[r.clone()]);
            }
            eq |= a.equal(b) << (v * F::LANES);
            odd |= a.odd() << (v * F::LANES);
        }
        (out, eq, odd)
    }
}

/// Throughput of both jobs on this CPU's path beside curve25519-dalek's Ristretto (hash, blind, compress; and
/// decompress, blind, compress), on all cores. Run with `--ignored --nocapture`; not a timed assertion.
#[test]
#[ignore]
fn curve_throughput() {
    use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
    use rayon::prelude::*;
    use std::time::Instant;

    let keys: Vec<Vec<u8>> = (0..40_000u32).map(|i| i.to_le_bytes().to_vec()).collect();
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let s = scalar(&mut rng);
    let rate = |t: Instant| keys.len() as f64 / t.elapsed().as_secs_f64();
    let path = CurvePath::detect();
    let t = Instant::now();
    let blinded = hash_and_blind_on(path, &keys, &Blinder::from_scalar(&s), DST);
    let hash_rate = rate(t);
    let t = Instant::now();
    let again = blind_on(path, &blinded, &Blinder::from_scalar(&s), 32);
    eprintln!("x25519 {}: hash+blind {hash_rate:.0}/s, blind {:.0}/s", path.name(), rate(t));
    let t = Instant::now();
    let points: Vec<[u8; 32]> = keys
        .par_iter()
        .map(|k| {
            let wide: [u8; 64] = Sha512::digest(k).into();
            (RistrettoPoint::from_uniform_bytes(&wide) * s).compress().to_bytes()
        })
        .collect();
    let hash_rate = rate(t);
    let t = Instant::now();
    let twice: Vec<[u8; 32]> = points
        .par_iter()
        .map(|c| (CompressedRistretto(*c).decompress().expect("a point") * s).compress().to_bytes())
        .collect();
    eprintln!("ristretto (dalek): hash+blind {hash_rate:.0}/s, blind {:.0}/s", rate(t));
    assert_eq!((again.len(), twice.len()), (keys.len() * 32, keys.len()));
}
