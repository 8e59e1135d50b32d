//! The protocol x field matrix: one generic body per group of kernels and functions, run against plaintext on
//! every backend of the protocol interface and both rings (SPU's protocol x field tests). Shares come from
//! the `input` kernel and results go through `reveal`, so the bodies know nothing of how a backend shares.

use futures_util::future::join_all;
use rand_core::Rng;
use secretflow_crds::request::Beaver;
use secretflow_crds::tasks::learning::SigType;

use super::{pair, reals, rng, triple, uniform};
use crate::error::Result;
use crate::mpc::fixed::LS7;
use crate::mpc::local::matmul_local;
use crate::mpc::{Bits, Bucketing, Fixed, Kernels, Share};
use crate::ring::Ring;

/// `f` on every party's device at once; each party's result.
async fn each<R: Ring, K: Kernels<R>, T>(devs: &mut [K], f: impl AsyncFn(&mut K, usize) -> Result<T>) -> Vec<T> {
    let results = join_all(devs.iter_mut().enumerate().map(|(i, k)| f(k, i))).await;
    results.into_iter().enumerate().map(|(i, r)| r.unwrap_or_else(|e| panic!("node {i}: {e}"))).collect()
}

/// `values`, owned by node `owner`, shared among the devices.
async fn share<R: Ring, K: Kernels<R>>(devs: &mut [K], owner: usize, values: &[R]) -> Vec<Share<R>> {
    each(devs, async |k, i| k.input(owner, (i == owner).then_some(values), values.len()).await).await
}

/// Fixed-point `values` shared by node 0.
async fn share_reals<R: Ring, K: Kernels<R>>(devs: &mut [K], values: &[f64]) -> Vec<Share<R>> {
    let f = devs[0].frac();
    share(devs, 0, &values.iter().map(|v| R::encode(*v, f)).collect::<Vec<_>>()).await
}

/// Shared bits (0/1 in each component) of `values`.
async fn share_bits<R: Ring, K: Kernels<R>>(devs: &mut [K], values: &[bool]) -> Vec<Bits<R>> {
    let v: Vec<R> = values.iter().map(|b| if *b { R::ONE } else { R::ZERO }).collect();
    share(devs, 1, &v).await.into_iter().map(Bits::new).collect()
}

/// The values the parties' shares open to (every node opens the same).
async fn open<R: Ring, K: Kernels<R>>(devs: &mut [K], x: &[Share<R>]) -> Vec<R> {
    let opened = each(devs, async |k, i| k.reveal(&x[i], None).await).await;
    let first = opened[0].clone().expect("opened to node 0");
    assert!(opened.iter().all(|o| o.as_ref() == Some(&first)), "the nodes opened different values");
    first
}

async fn open_reals<R: Ring, K: Kernels<R>>(devs: &mut [K], x: &[Share<R>]) -> Vec<f64> {
    let opened = open(devs, x).await;
    devs[0].decode(&opened)
}

async fn open_bits<R: Ring, K: Kernels<R>>(devs: &mut [K], x: &[Bits<R>]) -> Vec<bool> {
    let shares: Vec<Share<R>> = x.iter().map(|b| b.share().clone()).collect();
    open(devs, &shares).await.iter().map(|v| v.bit(0)).collect()
}

/// Floor of the product of two encoded values, or one unit below (the truncation's error).
fn assert_within_unit<R: Ring>(got: R, exact: R, what: &str) {
    let err = got.sub(exact);
    assert!(err == R::ZERO || err == R::ONE.neg(), "{what}: {got:?} vs {exact:?}");
}

/// A share-local operation of two operands.
type LocalOp<'a, R> = dyn Fn(&Share<R>, &Share<R>) -> Share<R> + 'a;

/// Input, reveal, the local operations, products and truncation.
async fn arithmetic<R: Ring, K: Kernels<R>>(devs: &mut [K]) {
    let f = devs[0].frac();
    let mut rng = rng();
    let raw: Vec<R> = (0..300).map(|_| uniform(&mut rng)).collect();
    let other: Vec<R> = (0..300).map(|_| uniform(&mut rng)).collect();
    let (x, y) = (share(devs, 0, &raw).await, share(devs, devs.len() - 1, &other).await);
    assert_eq!(open(devs, &x).await, raw);
    // Reveal to one node only.
    let to_last = devs.len() - 1;
    let opened = each(devs, async |k, i| k.reveal(&x[i], Some(to_last)).await).await;
    for (i, o) in opened.iter().enumerate() {
        assert_eq!(o.as_ref(), (i == to_last).then_some(&raw), "reveal to node {to_last}, seen by {i}");
    }
    let zip = |f: fn(R, R) -> R| raw.iter().zip(&other).map(|(a, b)| f(*a, *b)).collect::<Vec<R>>();
    let local = |g: &LocalOp<'_, R>| x.iter().zip(&y).map(|(a, b)| g(a, b)).collect::<Vec<_>>();
    assert_eq!(open(devs, &local(&|a, b| a.add(b))).await, zip(R::add));
    assert_eq!(open(devs, &local(&|a, b| a.sub(b))).await, zip(R::sub));
    let c = R::from_u128(12345);
    assert_eq!(open(devs, &local(&|a, _| a.add_public(c))).await, raw.iter().map(|v| v.add(c)).collect::<Vec<_>>());
    assert_eq!(open(devs, &local(&|a, _| a.scale(c))).await, raw.iter().map(|v| v.mul(c)).collect::<Vec<_>>());
    // Full-ring products are exact.
    let z = each(devs, async |k, i| k.mul_raw(&x[i], &y[i]).await).await;
    assert_eq!(open(devs, &z).await, zip(R::mul));
    // Fixed-point products: floor(x y / 2^f) or one unit below.
    let n = 2000;
    let (xr, yr) = (reals(n, 1000.0, &mut rng), reals(n, 1000.0, &mut rng));
    let (x, y) = (share_reals(devs, &xr).await, share_reals(devs, &yr).await);
    let z = each(devs, async |k, i| k.mul(&x[i], &y[i]).await).await;
    for (i, z) in open(devs, &z).await.iter().enumerate() {
        let exact = R::encode(xr[i], f).mul(R::encode(yr[i], f)).sar(f);
        assert_within_unit(*z, exact, &format!("{} * {}", xr[i], yr[i]));
    }
    // A 3x4 shared times 4x2 shared matrix, and each node's plaintext 5x4 times it.
    let (m, p, q) = (3, 4, 2);
    let (am, bm) = (reals(m * p, 10.0, &mut rng), reals(p * q, 10.0, &mut rng));
    let (ea, eb): (Vec<R>, Vec<R>) =
        (am.iter().map(|v| R::encode(*v, f)).collect(), bm.iter().map(|v| R::encode(*v, f)).collect());
    let (a, b) = (share(devs, 0, &ea).await, share(devs, 1, &eb).await);
    let r = each(devs, async |k, i| k.matmul_raw(&a[i], &b[i], (m, p, q)).await).await;
    assert_eq!(open(devs, &r).await, matmul_local(&ea, &eb, m, p, q));
    let plain: Vec<R> = reals(5 * p, 10.0, &mut rng).iter().map(|v| R::encode(*v, f)).collect();
    for owner in 0..devs.len() {
        let mine = |i: usize| (i == owner).then_some(plain.as_slice());
        let r = each(devs, async |k, i| k.matmul_plain_raw(owner, mine(i), &b[i], (5, p, q)).await).await;
        assert_eq!(open(devs, &r).await, matmul_local(&plain, &eb, 5, p, q), "owner {owner}");
    }
}

/// Truncation of many values at large magnitudes, each within one unit, and of values carried by the low
/// `l` bits only.
async fn truncation<R: Ring, K: Kernels<R>>(devs: &mut [K], n: usize) {
    let f = devs[0].frac();
    let mut rng = rng();
    // Raw values up to 2^(k-3) in magnitude: local (SecureML) truncation would fail on about 1 in 8 of them.
    let span = 1u128 << (R::BITS - 3);
    let x: Vec<R> = (0..n)
        .map(|_| {
            let m = R::from_u128(uniform::<R>(&mut rng).to_u128() % span);
            if rng.next_u64() & 1 == 1 { m.neg() } else { m }
        })
        .collect();
    let xs = share(devs, 0, &x).await;
    let z = each(devs, async |k, i| k.trunc(&xs[i], f).await).await;
    for (x, z) in x.iter().zip(open(devs, &z).await) {
        assert_within_unit(z, x.sar(f), &format!("trunc({x:?})"));
    }
    // Shared mod 2^l: every component gets noise above bit l (the same in every copy of a component).
    let l = 2 * f + 18;
    let x: Vec<R> = reals(500, 4000.0, &mut rng).iter().map(|v| R::encode(*v, 2 * f)).collect();
    let noise = |c: usize, i: usize| R::from_u128(((c * 7919 + i * 104729) as u128) << 5).shl(l);
    let xs: Vec<Share<R>> = share(devs, 0, &x)
        .await
        .into_iter()
        .map(|s| {
            let h = s.holding();
            let parts = s.into_parts().into_iter().enumerate();
            let parts = parts
                .map(|(j, p)| p.iter().enumerate().map(|(i, v)| v.add(noise((h.first + j) % h.count, i))).collect());
            Share::new(h, parts.collect())
        })
        .collect();
    let z = each(devs, async |k, i| k.trunc_from(&xs[i], l, f).await).await;
    for (x, z) in x.iter().zip(open(devs, &z).await) {
        assert_within_unit(z, x.sar(f), &format!("trunc_from({x:?}) mod 2^{l}"));
    }
}

/// Comparisons, select, max, clip, abs and saturate at the edges of their domains, and the sign kernels.
async fn comparisons<R: Ring, K: Kernels<R>>(devs: &mut [K]) {
    let f = devs[0].frac();
    let mut rng = rng();
    let ulp = (-(f as f64)).exp2();
    // The documented domain: operands below 2^23 in magnitude, so differences stay below 2^24.
    let max = (23f64).exp2() - ulp;
    let mut x =
        vec![0.0, ulp, -ulp, max, -max, 1.0, -1.0, 0.5, -2.0, 3.0, -2.0 - ulp, 3.0 + ulp, -2.0 + ulp, 3.0 - ulp];
    x.extend(reals(200, 100.0, &mut rng));
    let mut y = vec![0.0, 0.0, 0.0, 0.0, 0.0, -max, max, 0.5, 7.0, 7.0, 7.0, 7.0, 7.0, 7.0];
    y.extend(reals(200, 100.0, &mut rng));
    let (xs, ys) = (share_reals(devs, &x).await, share_reals(devs, &y).await);
    let lt = each(devs, async |k, i| k.less(&xs[i], &ys[i]).await).await;
    for (i, lt) in open(devs, &lt).await.iter().enumerate() {
        assert_eq!(*lt, if x[i] < y[i] { R::ONE } else { R::ZERO }, "{} < {}", x[i], y[i]);
    }
    let mx = each(devs, async |k, i| k.max(&xs[i], &ys[i]).await).await;
    let mx = open_reals(devs, &mx).await;
    let cl = each(devs, async |k, i| k.clip(&xs[i], -2.0, 3.0).await).await;
    let cl = open_reals(devs, &cl).await;
    let ab = each(devs, async |k, i| k.abs(&xs[i]).await).await;
    let ab = open_reals(devs, &ab).await;
    let sat = each(devs, async |k, i| k.saturate(&xs[i], (-2.0, 3.0), &ys[i], (10.0, 20.0)).await).await;
    let sat = open_reals(devs, &sat).await;
    for i in 0..x.len() {
        let (xi, yi) = (R::encode(x[i], f).decode(f), R::encode(y[i], f).decode(f));
        assert_eq!(mx[i], xi.max(yi));
        assert_eq!(cl[i], xi.clamp(-2.0, 3.0));
        assert_eq!(ab[i], xi.abs());
        // SecretFlow's select([c < lo, c > hi], [v_lo, v_hi], v): strict at both limits.
        let want = if xi < -2.0 {
            10.0
        } else if xi > 3.0 {
            20.0
        } else {
            yi
        };
        assert_eq!(sat[i], want, "saturate({xi})");
    }
    // Coarse signs (the sigmoids' limits): exact from 2^skip up to 2^bound - 2^skip, whatever the shares.
    let (skip, bound) = (f - 12, f + 16);
    let (lo, hi) = (1i128 << skip, (1i128 << bound) - (1i128 << skip) - 1);
    let mut raw: Vec<i128> = vec![lo, lo + 1, hi, hi - 1, 1 << (bound - 1)];
    raw.extend((0..400).map(|_| (rng.next_u64() as i128).rem_euclid(hi - lo) + lo));
    raw.extend(raw.clone().iter().map(|v| -v));
    let small: Vec<i128> = (0..200).map(|_| (rng.next_u64() as i128).rem_euclid(2 * lo) - lo).collect();
    let vals: Vec<R> = raw.iter().chain(&small).map(|v| R::from_u128(*v as u128)).collect();
    let vs = share(devs, 0, &vals).await;
    let signs = each(devs, async |k, i| k.msb(&vs[i], bound, skip).await).await;
    for (v, s) in raw.iter().zip(open_bits(devs, &signs).await) {
        assert_eq!(s, *v < 0, "coarse sign of {v}");
    }
    // Below several constants at once (an octave search: one and 35 powers of two, past the 32 relations one
    // share word carries), exact and coarse, wherever the difference lies in the exact band.
    for (count, skip) in [(1usize, 0u32), (35, 0), (35, skip)] {
        let cs: Vec<i128> = (0..count as u32).map(|j| 1i128 << (skip + 1 + j * (bound - skip - 3) / 35)).collect();
        let mut x: Vec<i128> = cs.iter().flat_map(|c| [c - 1, *c, c + 1, c - lo, c + lo]).collect();
        x.extend((0..200).map(|_| (rng.next_u64() as i128).rem_euclid(hi / 2)));
        let vals: Vec<R> = x.iter().map(|v| R::from_u128(*v as u128)).collect();
        let vs = share(devs, 1, &vals).await;
        let csr: Vec<R> = cs.iter().map(|c| R::from_u128(*c as u128)).collect();
        let below = each(devs, async |dev, i| dev.msb_minus(&vs[i], &csr, bound, skip).await).await;
        let signs = open_bits(devs, &below).await;
        assert_eq!(signs.len(), count * x.len());
        for (j, c) in cs.iter().enumerate() {
            for (i, v) in x.iter().enumerate() {
                let d = v - c;
                if d.abs() >= 1 << skip || skip == 0 {
                    assert_eq!(signs[j * x.len() + i], d < 0, "{v} below {c} (skip {skip})");
                }
            }
        }
    }
    // The pair (d and k - d, a clip's two limits), coarse and exact, wherever each lies in the exact band.
    let k = 3i128 << (bound - 3);
    let exact = |v: i128, skip: u32| v.abs() >= 1 << skip && v.abs() < (1 << bound) - (1 << skip);
    for skip in [skip, 0] {
        let mut d: Vec<i128> = vec![0, 1, -1, k, k - 1, k + 1, lo, -lo, k - lo, k + lo, hi, -hi, k - hi];
        d.extend((0..400).map(|_| (rng.next_u64() as i128).rem_euclid(2 * hi) - hi));
        let vals: Vec<R> = d.iter().map(|v| R::from_u128(*v as u128)).collect();
        let vs = share(devs, 0, &vals).await;
        let kr = R::from_u128(k as u128);
        let pair = each(devs, async |dev, i| dev.sign_pair(&vs[i], kr, bound, skip).await).await;
        let signs = open_bits(devs, &pair).await;
        for (i, v) in d.iter().enumerate() {
            for (s, v) in [(signs[i], *v), (signs[d.len() + i], k - v)] {
                if exact(v, skip) || (skip == 0 && v == 0) {
                    assert_eq!(s, v < 0, "sign of {v} (pair, skip {skip})");
                }
            }
        }
    }
}

/// AND, NOT, XOR, bit-to-arithmetic and the multiplexers on shared bits.
async fn bits<R: Ring, K: Kernels<R>>(devs: &mut [K]) {
    let mut rng = rng();
    let n = 700;
    let (u, v): (Vec<bool>, Vec<bool>) = (0..n).map(|_| (rng.next_u64() & 1 == 1, rng.next_u64() & 1 == 1)).unzip();
    let (us, vs) = (share_bits(devs, &u).await, share_bits(devs, &v).await);
    let and = each(devs, async |k, i| k.and(&us[i], &vs[i]).await).await;
    let xor: Vec<Bits<R>> = us.iter().zip(&vs).map(|(a, b)| a.xor(b)).collect();
    let not: Vec<Bits<R>> = us.iter().map(Bits::not).collect();
    let (and, xor, not) = (open_bits(devs, &and).await, open_bits(devs, &xor).await, open_bits(devs, &not).await);
    for i in 0..n {
        assert_eq!((and[i], xor[i], not[i]), (u[i] & v[i], u[i] ^ v[i], !u[i]), "bits {} {}", u[i], v[i]);
    }
    let arith = each(devs, async |k, i| k.b2a(&us[i]).await).await;
    let want: Vec<R> = u.iter().map(|b| if *b { R::ONE } else { R::ZERO }).collect();
    assert_eq!(open(devs, &arith).await, want);
    let x: Vec<R> = (0..n).map(|_| uniform(&mut rng)).collect();
    let xs = share(devs, 0, &x).await;
    let muxed = each(devs, async |k, i| k.mul_bit(&us[i], &xs[i]).await).await;
    let both = each(devs, async |k, i| k.mul_bit_and_b2a(&vs[i], &xs[i], &us[i]).await).await;
    let (bx, ba): (Vec<Share<R>>, Vec<Share<R>>) = both.into_iter().unzip();
    let pick = |b: &[bool]| x.iter().zip(b).map(|(x, b)| if *b { *x } else { R::ZERO }).collect::<Vec<R>>();
    assert_eq!(open(devs, &muxed).await, pick(&u));
    assert_eq!(open(devs, &bx).await, pick(&v));
    assert_eq!(open(devs, &ba).await, want);
    // Three elements per bit, each bit's OT carrying all three.
    let x3: Vec<R> = (0..3 * n).map(|_| uniform(&mut rng)).collect();
    let x3s = share(devs, 1, &x3).await;
    let each3 = each(devs, async |k, i| k.mul_bit_each(&us[i], &x3s[i], 3).await).await;
    let want3: Vec<R> = x3.iter().enumerate().map(|(j, x)| if u[j / 3] { *x } else { R::ZERO }).collect();
    assert_eq!(open(devs, &each3).await, want3);
}

/// Bucket sums under each node's private buckets (a third node has none), twice on one bucketing (the second
/// call reuses what the first prepared; 3 columns, then 70: several windows of mask blocks and a partial
/// block) with a feature left out, against plaintext.
async fn bucket_sums<R: Ring, K: Kernels<R>>(devs: &mut [K]) {
    let mut rng = rng();
    let (rows, nodes) = (300, devs.len());
    let counts: Vec<Vec<usize>> =
        (0..nodes).map(|i| [vec![5, 1, 12], vec![2, 7]].get(i).cloned().unwrap_or_default()).collect();
    let mut buckets: Vec<Vec<u32>> = Vec::new();
    for c in &counts {
        buckets.push((0..rows * c.len()).map(|i| (rng.next_u64() % c[i % c.len()] as u64) as u32).collect());
    }
    let selected: Vec<Vec<bool>> =
        counts.iter().map(|c| (0..c.len()).map(|f| c.len() != 3 || f != 2).collect()).collect();
    let mut bks: Vec<Bucketing> =
        (0..nodes).map(|i| Bucketing::new(counts.clone(), i, rows, buckets[i].clone()).expect("buckets")).collect();
    for (call, q) in [(0, 3), (1, 70)] {
        let x: Vec<R> = (0..rows * q).map(|_| uniform(&mut rng)).collect();
        let xs = share(devs, call, &x).await;
        let runs = devs.iter_mut().zip(bks.iter_mut()).zip(&xs).map(|((k, bk), x)| k.bucket_sums(bk, &selected, x, q));
        let out: Vec<Vec<Share<R>>> = join_all(runs).await.into_iter().map(|r| r.expect("bucket sums")).collect();
        for node in 0..nodes {
            let got = open(devs, &out.iter().map(|o| o[node].clone()).collect::<Vec<_>>()).await;
            let width = counts[node].len();
            let mut want = Vec::new();
            for (f, c) in counts[node].iter().enumerate().filter(|(f, _)| selected[node][*f]) {
                for b in 0..*c as u32 {
                    let rows_in = (0..rows).filter(|r| buckets[node][r * width + f] == b).collect::<Vec<_>>();
                    want.extend((0..q).map(|j| rows_in.iter().fold(R::ZERO, |a, r| a.add(x[r * q + j]))));
                }
            }
            assert_eq!(got, want, "node {node}'s bucket sums, call {call}");
        }
    }
}

fn sig_plain(x: f64, sig: SigType) -> f64 {
    let t1 = 0.5 + x / 4.0;
    let t3 = t1 - x.powi(3) / 48.0;
    let sr = 0.5 * x / (1.0 + x * x).sqrt() + 0.5;
    match sig {
        SigType::T1 => t1.clamp(0.0, 1.0),
        SigType::T3 if x < -2.0 => 0.0,
        SigType::T3 if x > 2.0 => 1.0,
        SigType::T3 => t3,
        SigType::T5 => (t3 + x.powi(5) / 480.0).clamp(0.0, 1.0),
        SigType::Df => 0.5 * x / (1.0 + x.abs()) + 0.5,
        SigType::Sr => sr,
        SigType::Mix if x.abs() > 4.0 => sr,
        SigType::Mix => LS7.iter().rev().fold(0.0, |acc, c| acc * x + c),
        SigType::Real => 1.0 / (1.0 + (-x).exp()),
        SigType::Mm1 => 0.5 + x / 8.0,
    }
}

/// Every sigmoid (also from an untruncated product shared mod `2^l`), reciprocal, rsqrt, exp, polynomials,
/// public factors and the all-below test, within `tol` of plaintext.
async fn functions<R: Ring, K: Kernels<R>>(devs: &mut [K], tol: f64) {
    let f = devs[0].frac();
    let mut rng = rng();
    let mut x = vec![0.0, 1.0, -1.0, 2.0, -2.0, 4.5, -4.5, 20.0, -20.0];
    x.extend(reals(40, 8.0, &mut rng));
    let xs = share_reals(devs, &x).await;
    let all =
        [SigType::T1, SigType::T3, SigType::T5, SigType::Df, SigType::Sr, SigType::Mix, SigType::Real, SigType::Mm1];
    for sig in all {
        let s = each(devs, async |k, i| k.sigmoid(&xs[i], sig).await).await;
        for (x, s) in x.iter().zip(open_reals(devs, &s).await) {
            let want = sig_plain(*x, sig);
            // The exact sigmoid goes through exp (Taylor, 5 squarings) and a reciprocal.
            let t = if sig == SigType::Real { tol.max(5e-4) } else { tol };
            assert!((s - want).abs() < t, "{sig:?}({x}) = {want}, got {s}");
        }
    }
    // sr clips its input at 32: far beyond, within 1 / (4 * 32^2) of its limits.
    let far = [33.0, -40.0, 1000.0, -3000.0];
    let fs = share_reals(devs, &far).await;
    let s = each(devs, async |k, i| k.sigmoid(&fs[i], SigType::Sr).await).await;
    for (x, s) in far.iter().zip(open_reals(devs, &s).await) {
        assert!((s - sig_plain(*x, SigType::Sr)).abs() < 2.5e-4 + tol, "sr({x}) far out, got {s}");
    }
    // From an untruncated product (scale 2f): t1 folds its division by 4 into the one truncation. (Not t3:
    // its jumps at +-2 make the one-unit truncation error visible exactly there.)
    let raw = share(devs, 0, &x.iter().map(|v| R::encode(*v, 2 * f)).collect::<Vec<R>>()).await;
    for sig in [SigType::T1, SigType::Df, SigType::Mm1] {
        let s = each(devs, async |k, i| k.sigmoid_from(&raw[i], R::BITS, f, sig).await).await;
        for (x, s) in x.iter().zip(open_reals(devs, &s).await) {
            assert!((s - sig_plain(*x, sig)).abs() < tol, "{sig:?}({x}) from a product, got {s}");
        }
    }
    // As SS-LR calls t1: a product shared mod 2^(2f + 18) only (the shares' higher bits are noise), logits up to
    // 2^12, and some within 2^-10 of the limits.
    let l = 2 * f + 18;
    let mut wide = x.clone();
    wide.extend([1000.0, -1000.0, 4000.0, -4000.0, 2.001, -2.001, 1.999, -1.999, 2.0005, -2.0005]);
    let raw = share(devs, 0, &wide.iter().map(|v| R::encode(*v, 2 * f)).collect::<Vec<R>>()).await;
    let noisy: Vec<Share<R>> = raw
        .into_iter()
        .map(|s| {
            let h = s.holding();
            let noise = |c: usize| R::from_u128(0x9e37_79b9_7f4a_7c15 * (c as u128 + 1)).shl(l);
            let parts = s.into_parts().into_iter().enumerate();
            let parts = parts.map(|(j, p)| p.iter().map(|v| v.add(noise((h.first + j) % h.count))).collect());
            Share::new(h, parts.collect())
        })
        .collect();
    let s = each(devs, async |k, i| k.sigmoid_from(&noisy[i], l, f, SigType::T1).await).await;
    for (x, s) in wide.iter().zip(open_reals(devs, &s).await) {
        assert!((s - sig_plain(*x, SigType::T1)).abs() < tol, "t1({x}) from a product mod 2^{l}, got {s}");
    }
    let d: Vec<f64> = reals(50, 1000.0, &mut rng).iter().map(|v| v.abs() + 1.0).collect();
    let ds = share_reals(devs, &d).await;
    let r = each(devs, async |k, i| k.reciprocal(&ds[i], 12).await).await;
    let r = open_reals(devs, &r).await;
    let q = each(devs, async |k, i| k.rsqrt(&ds[i], 12).await).await;
    let q = open_reals(devs, &q).await;
    for i in 0..d.len() {
        assert!((r[i] - 1.0 / d[i]).abs() < tol, "1/{} = {}", d[i], r[i]);
        assert!((q[i] - 1.0 / d[i].sqrt()).abs() < tol, "1/sqrt({}) = {}", d[i], q[i]);
    }
    // rsqrt up to 2^21 (sr needs 2^11), at and around every octave boundary (where the coarse octave may misplace),
    // within 8 units in the last place.
    let d: Vec<f64> =
        (0..21).flat_map(|j| [1.0 - 1.0 / 64.0, 1.0, 1.0 + 1.0 / 64.0, 1.5].map(|m| (j as f64).exp2() * m)).collect();
    let d: Vec<f64> = d.into_iter().filter(|v| (1.0..(21f64).exp2()).contains(v)).collect();
    let ds = share_reals(devs, &d).await;
    let q = each(devs, async |k, i| k.rsqrt(&ds[i], 21).await).await;
    for (d, q) in d.iter().zip(open_reals(devs, &q).await) {
        assert!((q - 1.0 / d.sqrt()).abs() < 8.0 * (-(f as f64)).exp2(), "1/sqrt({d}) = {q}");
    }
    // a / x for x across [2^-4, 2^12): 2e-5 relative, and 8 units in the last place (a is scaled with x, so
    // a small quotient keeps fewer bits).
    let den: Vec<f64> = (0..40).map(|i| (i as f64 * 0.4 - 4.0).exp2() * 1.37).filter(|v| *v < 4096.0).collect();
    let num: Vec<f64> = (0..den.len()).map(|i| ((i % 7) as f64 - 3.0) * 5.5 + 0.25).collect();
    let (ns, dss) = (share_reals(devs, &num).await, share_reals(devs, &den).await);
    let q = each(devs, async |k, i| k.div(&ns[i], &dss[i], (4, 12)).await).await;
    for ((a, x), q) in num.iter().zip(&den).zip(open_reals(devs, &q).await) {
        let want = a / x;
        assert!((q - want).abs() <= 2e-5 * want.abs() + 8.0 * (-(f as f64)).exp2(), "{a} / {x} = {want}, got {q}");
    }
    // exp on [-16, 2], relative; a cubic; a public factor with more precision than f bits.
    let e: Vec<f64> = reals(40, 9.0, &mut rng).iter().map(|v| v - 7.0).collect();
    let es = share_reals(devs, &e).await;
    let ex = each(devs, async |k, i| k.exp(&es[i]).await).await;
    let coeffs = [0.25, -1.5, 0.0, 0.125];
    let pl = each(devs, async |k, i| k.poly(&xs[i], &coeffs).await).await;
    let mp = each(devs, async |k, i| k.mul_public(&xs[i], 1.0 / 3000.0).await).await;
    let (ex, pl, mp) = (open_reals(devs, &ex).await, open_reals(devs, &pl).await, open_reals(devs, &mp).await);
    for (e, got) in e.iter().zip(&ex) {
        assert!((got - e.exp()).abs() < 50.0 * tol * e.exp().max(1.0), "exp({e}) = {}, got {got}", e.exp());
    }
    for i in 0..x.len() {
        let want = coeffs.iter().rev().fold(0.0, |acc, c| acc * x[i] + c);
        assert!((pl[i] - want).abs() < 40.0 * tol * want.abs().max(1.0), "poly({}) = {want}, got {}", x[i], pl[i]);
        assert!((mp[i] - x[i] / 3000.0).abs() < 2.0 * (-(f as f64)).exp2(), "{} / 3000, got {}", x[i], mp[i]);
    }
    // All below: one bit, true exactly when every element is inside.
    let small = share_reals(devs, &[0.001, -0.002, 0.0]).await;
    let big = share_reals(devs, &[0.001, -0.02, 0.0]).await;
    assert_eq!(each(devs, async |k, i| k.all_below(&small[i], 0.01).await).await, vec![true; devs.len()]);
    assert_eq!(each(devs, async |k, i| k.all_below(&big[i], 0.01).await).await, vec![false; devs.len()]);
}

/// A backend of the matrix: its devices for ring `R` at `f` fraction bits.
#[derive(Clone, Copy, Debug)]
enum Backend {
    /// Two-party, OT and RLWE (SEMI2K's default, CHEETAH).
    Secure,
    /// Two-party with the insecure trusted first party's dealt correlations.
    TrustedFirstParty,
}

async fn devices<R: Ring>(backend: Backend, f: u32) -> Vec<impl Kernels<R>> {
    let beaver = match backend {
        Backend::Secure => Beaver::Ot,
        Backend::TrustedFirstParty => Beaver::TrustedFirstParty,
    };
    let (a, b, _) = pair::<R>(beaver, f).await;
    vec![a, b]
}

/// Fraction bits and the functions' tolerance per ring (SecretFlow's defaults: 18 on FM64, 26 on FM128).
fn field<R: Ring>() -> (u32, f64) {
    if R::BITS == 64 { (18, 1e-3) } else { (26, 1e-5) }
}

/// Every kernel body on `devs`.
async fn kernels<R: Ring, K: Kernels<R>>(devs: &mut [K]) {
    arithmetic(devs).await;
    truncation(devs, if R::BITS == 64 { 1 << 20 } else { 1 << 16 }).await;
    comparisons(devs).await;
    bits(devs).await;
    bucket_sums(devs).await;
}

async fn kernels_on<R: Ring>(backend: Backend) {
    kernels(&mut devices::<R>(backend, field::<R>().0).await).await;
}

async fn functions_on<R: Ring>(backend: Backend) {
    let (f, tol) = field::<R>();
    functions(&mut devices::<R>(backend, f).await, tol).await;
}

#[tokio::test]
async fn kernels_match_plaintext_on_the_secure_two_party_backend() {
    kernels_on::<u64>(Backend::Secure).await;
    kernels_on::<u128>(Backend::Secure).await;
}

#[tokio::test]
async fn kernels_match_plaintext_on_the_trusted_first_party_backend() {
    kernels_on::<u64>(Backend::TrustedFirstParty).await;
    kernels_on::<u128>(Backend::TrustedFirstParty).await;
}

#[tokio::test]
async fn kernels_match_plaintext_on_the_three_party_backend() {
    kernels(&mut triple::<u64>(field::<u64>().0).await.0).await;
    kernels(&mut triple::<u128>(field::<u128>().0).await.0).await;
}

#[tokio::test]
async fn functions_match_plaintext_on_the_secure_two_party_backend() {
    functions_on::<u64>(Backend::Secure).await;
    functions_on::<u128>(Backend::Secure).await;
}

#[tokio::test]
async fn functions_match_plaintext_on_the_trusted_first_party_backend() {
    functions_on::<u64>(Backend::TrustedFirstParty).await;
    functions_on::<u128>(Backend::TrustedFirstParty).await;
}

#[tokio::test]
async fn functions_match_plaintext_on_the_three_party_backend() {
    let (f, tol) = field::<u64>();
    functions(&mut triple::<u64>(f).await.0, tol).await;
    let (f, tol) = field::<u128>();
    functions(&mut triple::<u128>(f).await.0, tol).await;
}
