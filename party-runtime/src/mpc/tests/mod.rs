//! The two-party backend's own tests: what crosses the link (neither view holds the other's inputs, in either
//! triple source), its RLWE and slot products, the OTs and AND triples under its comparisons, and a silent peer.
//! The kernels and functions of the protocol interface are tested on every backend in [`suite`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use secretflow_crds::request::{Beaver, Field, Protocol, SpuRuntime};

use super::engine::Mpc;
use super::local::{add, matmul_local};
use super::{Aby3, Fixed};
use crate::context::{NoProgress, PartyContext};
use crate::data::DataPolicy;
use crate::link::memory::MemoryHub;
use crate::link::{Channel, Recording};
use crate::ring::Ring;

mod aby3;
mod suite;

/// What one node sent, as recorded.
pub(crate) type Log = Arc<Mutex<Vec<u8>>>;

pub(crate) type Pair<R> = (Mpc<'static, R>, Mpc<'static, R>, [Log; 2]);

/// Two engines over an in-memory link (contexts leaked: tests only), plus what each sent.
/// What each node has sent so far: (alice to bob, bob to alice).
fn transcripts(logs: &[Arc<Mutex<Vec<u8>>>; 2]) -> (Vec<u8>, Vec<u8>) {
    let sent = |i: usize| logs[i].lock().expect("lock").clone();
    (sent(0), sent(1))
}

pub(crate) async fn pair<R: Ring>(beaver: Beaver, frac: u32) -> Pair<R> {
    pair_with_timeout(beaver, frac, Duration::from_secs(30)).await
}

async fn pair_with_timeout<R: Ring>(beaver: Beaver, frac: u32, timeout: Duration) -> Pair<R> {
    let (ctxs, logs) = contexts(&["alice", "bob"], timeout);
    let spu = spu::<R>(Protocol::SEMI2K, &ctxs, frac, beaver);
    let (a, b) = tokio::join!(Mpc::<R>::new(ctxs[0], &spu), Mpc::<R>::new(ctxs[1], &spu));
    let [la, lb]: [_; 2] = logs.try_into().expect("two logs");
    (a.expect("alice"), b.expect("bob"), [la, lb])
}

/// Three ABY3 engines over an in-memory link (contexts leaked: tests only), plus what each sent.
pub(crate) async fn triple<R: Ring>(frac: u32) -> (Vec<Aby3<'static, R>>, Vec<Log>) {
    triple_with_timeout(frac, Duration::from_secs(30)).await
}

async fn triple_with_timeout<R: Ring>(frac: u32, timeout: Duration) -> (Vec<Aby3<'static, R>>, Vec<Log>) {
    let (ctxs, logs) = contexts(&["alice", "bob", "carol"], timeout);
    let spu = spu::<R>(Protocol::ABY3, &ctxs, frac, Beaver::Ot);
    let devs = futures_util::future::join_all(ctxs.iter().map(|c| Aby3::<R>::new(c, &spu))).await;
    (devs.into_iter().map(|d| d.expect("aby3 device")).collect(), logs)
}

/// One leaked context per party over an in-memory hub, each recording what it sends.
fn contexts(names: &[&str], timeout: Duration) -> (Vec<&'static PartyContext>, Vec<Log>) {
    let parties: Vec<String> = names.iter().map(|p| p.to_string()).collect();
    let hub = MemoryHub::new(&parties, timeout);
    let logs: Vec<_> = parties.iter().map(|_| Arc::new(Mutex::new(Vec::new()))).collect();
    let ctxs = parties
        .iter()
        .zip(&logs)
        .map(|(p, log)| {
            let link = Recording::new(hub.link(p), log.clone());
            let c = PartyContext::new(
                p,
                parties.clone(),
                Channel::new(Arc::new(link)),
                DataPolicy::default(),
                Arc::new(NoProgress),
            );
            &*Box::leak(Box::new(c))
        })
        .collect();
    (ctxs, logs)
}

/// The device configuration of `protocol` over the contexts' parties.
fn spu<R: Ring>(protocol: Protocol, ctxs: &[&PartyContext], frac: u32, beaver: Beaver) -> SpuRuntime {
    SpuRuntime {
        protocol,
        field: if R::BITS == 64 { Field::FM64 } else { Field::FM128 },
        fraction_bits: frac,
        nodes: ctxs.iter().map(|c| (c.party.clone(), format!("{}:1", c.party))).collect(),
        beaver,
    }
}

/// No value of `secret` appears in `view` (what one party sent) as its `k / 8` wire bytes.
pub(crate) fn assert_never_sent<R: Ring>(secret: &[R], view: &[u8]) {
    let w = (R::BITS / 8) as usize;
    let windows: std::collections::HashSet<&[u8]> = view.windows(w).collect();
    for v in secret {
        let bytes = &v.to_u128().to_le_bytes()[..w];
        assert!(!windows.contains(bytes), "{v:?} crossed the link");
    }
}

fn rng() -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(7)
}

fn uniform<R: Ring>(rng: &mut ChaCha20Rng) -> R {
    R::from_u128((rng.next_u64() as u128) | (rng.next_u64() as u128) << 64)
}

/// Random additive shares of `v`.
fn split<R: Ring>(v: &[R], rng: &mut ChaCha20Rng) -> (Vec<R>, Vec<R>) {
    let r: Vec<R> = v.iter().map(|_| uniform(rng)).collect();
    (v.iter().zip(&r).map(|(v, r)| v.sub(*r)).collect(), r)
}

fn reals(n: usize, range: f64, rng: &mut ChaCha20Rng) -> Vec<f64> {
    (0..n).map(|_| (rng.next_u64() as f64 / u64::MAX as f64 * 2.0 - 1.0) * range).collect()
}

/// The two-party bounded plaintext-matrix product (the chooser uses `l` bits of its share), for each node as
/// the owner.
async fn bounded_products<R: Ring>(beaver: Beaver, f: u32) {
    let (mut a, mut b, _) = pair::<R>(beaver, f).await;
    let mut rng = rng();
    let (p, q) = (4, 2);
    let plain = a.encode(&reals(5 * p, 10.0, &mut rng));
    // |b| < 4 with l = f + 4.
    let small = a.encode(&reals(p * q, 3.99, &mut rng));
    let (s0, s1) = split(&small, &mut rng);
    for owner in [0, 1] {
        let (pa, pb) = if owner == 0 { (Some(plain.as_slice()), None) } else { (None, Some(plain.as_slice())) };
        let (r0, r1) = tokio::join!(
            a.matmul_plain_bounded(owner, pa, &s0, (5, p, q), f + 4),
            b.matmul_plain_bounded(owner, pb, &s1, (5, p, q), f + 4)
        );
        assert_eq!(add(&r0.expect("a"), &r1.expect("b")), matmul_local(&plain, &small, 5, p, q), "owner {owner}");
    }
}

#[tokio::test]
async fn bounded_plaintext_products_match_plaintext_on_both_rings_and_triple_sources() {
    bounded_products::<u64>(Beaver::Ot, 18).await;
    bounded_products::<u128>(Beaver::Ot, 26).await;
    bounded_products::<u64>(Beaver::TrustedFirstParty, 18).await;
    bounded_products::<u128>(Beaver::TrustedFirstParty, 26).await;
}

#[tokio::test]
async fn neither_view_contains_the_other_partys_inputs() {
    let (mut a, mut b, logs) = pair::<u64>(Beaver::Ot, 18).await;
    let mut rng = rng();
    // Alice's and bob's private values as trivial shares (value, 0) and (0, value): the OT inputs are the
    // values themselves, the worst case for leakage.
    let x: Vec<u64> = (0..500).map(|_| rng.next_u64() | 1 << 40).collect();
    let y: Vec<u64> = (0..500).map(|_| rng.next_u64() | 1 << 41).collect();
    let zero = vec![0u64; 500];
    let (za, zb) = tokio::join!(a.mul_raw(&x, &zero), b.mul_raw(&zero, &y));
    let z = add(&za.expect("a"), &zb.expect("b"));
    assert_eq!(z, x.iter().zip(&y).map(|(x, y)| x.wrapping_mul(*y)).collect::<Vec<_>>());
    let (to_bob, to_alice) = transcripts(&logs);
    // 500 x 64 OTs, each with its extension correction (KAPPA / K bits) and message.
    let corrections = 500 * 64 * (crate::crypto::base_ot::KAPPA / crate::crypto::softspoken::K) / 8;
    assert!(to_bob.len() > corrections, "the OTs ran ({} bytes)", to_bob.len());
    assert_never_sent(&x, &to_bob);
    assert_never_sent(&y, &to_alice);
}

#[tokio::test]
async fn a_peer_that_stops_answering_fails_the_product_naming_it() {
    let (mut a, mut b, _) = pair_with_timeout::<u64>(Beaver::Ot, 18, Duration::from_secs(2)).await;
    let x = a.encode(&[1.0, 2.0, 3.0]);
    // One RLWE product together (the key exchange is done), then bob goes silent.
    let v = &x[..1];
    let (ra, rb) = tokio::join!(
        a.matvec_he_pair(&x, [v, &[]], [(3, 1), (0, 0)]),
        b.matvec_he_pair(&[], [v, &[]], [(3, 1), (0, 0)])
    );
    assert_eq!(add(&ra.expect("alice")[0], &rb.expect("bob")[0]), matmul_local(&x, &add(v, v), 3, 1, 1));
    let started = std::time::Instant::now();
    // Bob set up the device and then went silent: alice's product must fail, not hang.
    let xs = a.share(x.clone());
    let err = a.mul(&xs, &xs).await.expect_err("bob never answers");
    assert!(started.elapsed() < Duration::from_secs(10));
    let text = err.to_string();
    assert!(text.contains("bob") && text.contains("timed out"), "{text}");
    // The same for an RLWE product: alice waits for bob's ciphertext, then fails naming him.
    let started = std::time::Instant::now();
    let err = a.matvec_he_pair(&x, [v, &[]], [(3, 1), (0, 0)]).await.expect_err("bob never answers");
    assert!(started.elapsed() < Duration::from_secs(10));
    let text = err.to_string();
    assert!(text.contains("bob") && text.contains("timed out"), "{text}");
    // And for a product long enough for the slot scheme (its ciphertexts go out, nothing comes back).
    let long = a.encode(&vec![1.5; 5000]);
    let started = std::time::Instant::now();
    let long = a.share(long);
    let err = a.mul(&long, &long).await.expect_err("bob never answers");
    assert!(started.elapsed() < Duration::from_secs(10));
    let text = err.to_string();
    assert!(text.contains("bob") && text.contains("timed out"), "{text}");
}

/// Products above [`super::he_mul::HE_MUL_MIN`] take the slot scheme: full-ring shares multiply exactly
/// (both halves, odd length, a partial last block), fixed point within one unit, and neither party's view
/// holds the other's inputs.
async fn slot_products<R: Ring>(f: u32) {
    let (mut a, mut b, logs) = pair::<R>(Beaver::Ot, f).await;
    let mut rng = rng();
    let n = 2 * 8192 + 4097;
    let (x, y): (Vec<R>, Vec<R>) = (0..n).map(|_| (uniform::<R>(&mut rng), uniform::<R>(&mut rng))).unzip();
    let (xa, xb) = split(&x, &mut rng);
    let (ya, yb) = split(&y, &mut rng);
    let (za, zb) = tokio::join!(a.mul_raw(&xa, &ya), b.mul_raw(&xb, &yb));
    let z = add(&za.expect("a"), &zb.expect("b"));
    for i in 0..n {
        assert_eq!(z[i], x[i].mul(y[i]), "element {i}");
    }
    let reals_x = reals(4096, 1000.0, &mut rng);
    let reals_y = reals(4096, 1000.0, &mut rng);
    let (xa, xb) = split(&a.encode(&reals_x), &mut rng);
    let (ya, yb) = split(&a.encode(&reals_y), &mut rng);
    let (xa, xb, ya, yb) = (a.share(xa), b.share(xb), a.share(ya), b.share(yb));
    let (za, zb) = tokio::join!(a.mul(&xa, &ya), b.mul(&xb, &yb));
    let z = add(&za.expect("a").into_additive(), &zb.expect("b").into_additive());
    for i in 0..reals_x.len() {
        let exact = R::encode(reals_x[i], f).mul(R::encode(reals_y[i], f)).sar(f);
        let err = z[i].sub(exact);
        assert!(err == R::ZERO || err == R::ONE.neg(), "{} * {}: {:?} vs {:?}", reals_x[i], reals_y[i], z[i], exact);
    }
    // Alice's and bob's values as trivial shares: the ciphertexts and masked results carry neither.
    let (p, q): (Vec<R>, Vec<R>) = (0..4096).map(|_| (uniform::<R>(&mut rng), uniform::<R>(&mut rng))).unzip();
    let zero = vec![R::ZERO; 4096];
    logs.iter().for_each(|l| l.lock().expect("lock").clear());
    let (za, zb) = tokio::join!(a.mul_raw(&p, &zero), b.mul_raw(&zero, &q));
    assert_eq!(add(&za.expect("a"), &zb.expect("b")), p.iter().zip(&q).map(|(p, q)| p.mul(*q)).collect::<Vec<_>>());
    let (to_bob, to_alice) = transcripts(&logs);
    assert!(to_bob.len() > 1 << 20 && to_alice.len() > 1 << 20, "ciphertexts crossed both ways");
    assert_never_sent(&p, &to_bob);
    assert_never_sent(&q, &to_alice);
}

#[tokio::test]
async fn slot_products_match_plaintext_and_hide_both_inputs_on_both_rings() {
    slot_products::<u64>(18).await;
    slot_products::<u128>(26).await;
}

#[tokio::test]
async fn a_random_ot_gives_the_chooser_only_the_pad_its_bit_selects() {
    let (mut a, mut b, _) = pair::<u64>(Beaver::Ot, 18).await;
    // More than one hashing task's inputs (2,048), and not a multiple of 64.
    let n: usize = 5000;
    let mut rng = rng();
    let choices: Vec<u64> = (0..n.div_ceil(64)).map(|_| rng.next_u64()).collect();
    let (ca, cb) = (a.ctx, b.ctx);
    let (pads, chosen) =
        tokio::join!(a.sender.random_pads(ca, "t/pads", n), b.receiver.random_pads(cb, "t/pads", &choices, n));
    let (pads, chosen) = (pads.expect("sender"), chosen.expect("receiver"));
    for (i, (p, c)) in pads.iter().zip(&chosen).enumerate() {
        let bit = (choices[i / 64] >> (i % 64)) & 1;
        assert_eq!(*c, p[bit as usize], "OT {i}");
        assert_ne!(*c, p[1 - bit as usize], "OT {i}: both pads equal");
    }
}

#[tokio::test]
async fn in_dealer_mode_the_second_node_sees_nothing_of_the_firsts_inputs() {
    let (mut a, mut b, logs) = pair::<u64>(Beaver::TrustedFirstParty, 18).await;
    let mut rng = rng();
    // Alice's private values as the trivial share (value, 0): what bob receives must not contain them, through
    // the dealt products, the truncation's bit products and a comparison's dealt 1-out-of-16 OTs.
    let x: Vec<u64> = (0..500).map(|_| (rng.next_u64() >> 24) | 1 << 36).collect();
    let zero = vec![0u64; 500];
    let (xa, xb) = (a.share(x.clone()), b.share(zero));
    let (za, zb) = tokio::join!(a.mul(&xa, &xa), b.mul(&xb, &xb));
    let (za, zb) = (za.expect("a"), zb.expect("b"));
    let (la, lb) = tokio::join!(a.less(&za, &xa), b.less(&zb, &xb));
    let lt = add(&la.expect("a").into_additive(), &lb.expect("b").into_additive());
    assert!(lt.iter().all(|v| *v <= 1), "comparison results are bits");
    let (to_bob, _) = transcripts(&logs);
    assert!(to_bob.len() > 500 * 8, "the products ran ({} bytes)", to_bob.len());
    assert_never_sent(&[x, za.into_additive()].concat(), &to_bob);
}

async fn rlwe_products<R: Ring>(f: u32) {
    let (mut a, mut b, logs) = pair::<R>(Beaver::Ot, f).await;
    let mut rng = rng();
    // Alice's rows x 10 (two row blocks), bob's 12 x 1500 (a transposed batch), then 3 x 9000 (two vector
    // chunks); the vectors shared. The second product reuses the first's matrices with new vectors (the
    // evaluator's cached plaintexts), the third has new matrices of the same shapes (no stale cache entry).
    let (first, second) = ((2000, 10), (12, 1500));
    let mut previous: Option<(Vec<R>, Vec<R>)> = None;
    for (da, db, reuse) in
        [(first, second, false), (first, second, true), (first, second, false), ((3, 9000), (1, 1), false)]
    {
        let (xa, xb) = match previous.take().filter(|_| reuse) {
            Some(matrices) => matrices,
            None => (a.encode(&reals(da.0 * da.1, 8.0, &mut rng)), a.encode(&reals(db.0 * db.1, 8.0, &mut rng))),
        };
        previous = Some((xa.clone(), xb.clone()));
        let (va, vb): (Vec<R>, Vec<R>) =
            ((0..da.1).map(|_| uniform(&mut rng)).collect(), (0..db.1).map(|_| uniform(&mut rng)).collect());
        let ((va0, va1), (vb0, vb1)) = (split(&va, &mut rng), split(&vb, &mut rng));
        let (ra, rb) =
            tokio::join!(a.matvec_he_pair(&xa, [&va0, &vb0], [da, db]), b.matvec_he_pair(&xb, [&va1, &vb1], [da, db]));
        let ([a0, b0], [a1, b1]) = (ra.expect("alice"), rb.expect("bob"));
        assert_eq!(add(&a0, &a1), matmul_local(&xa, &va, da.0, da.1, 1), "alice's {da:?}");
        assert_eq!(add(&b0, &b1), matmul_local(&xb, &vb, db.0, db.1, 1), "bob's {db:?}");
    }
    // Trivial shares: alice's matrix and bob's vector entries never cross the link in the clear.
    let x = a.encode(&reals(200 * 5, 8.0, &mut rng));
    let y: Vec<R> = (0..5).map(|_| uniform(&mut rng)).collect();
    let zero = vec![R::ZERO; 5];
    let (ra, rb) = tokio::join!(
        a.matvec_he_pair(&x, [&zero, &[]], [(200, 5), (0, 0)]),
        b.matvec_he_pair(&[], [&y, &[]], [(200, 5), (0, 0)])
    );
    let (ra, rb) = (ra.expect("alice"), rb.expect("bob"));
    assert_eq!(add(&ra[0], &rb[0]), matmul_local(&x, &y, 200, 5, 1));
    let (to_bob, to_alice) = transcripts(&logs);
    // Small encoded values (a few raw units) could match ciphertext bytes by chance: only the others count.
    let large: Vec<R> = x.iter().copied().filter(|v| v.signed_f64().abs() > 1e4).collect();
    assert_never_sent(&large, &to_bob);
    assert_never_sent(&y, &to_alice);
}

/// Plaintext matrices times shared matrices by RLWE, every column of a round at once.
async fn rlwe_matrix_products<R: Ring>(f: u32) {
    let (mut a, mut b, _) = pair::<R>(Beaver::Ot, f).await;
    let mut rng = rng();
    // Several columns in one round (a histogram level: 90 x 10000 times 6 columns), in two rounds (3 x 9000
    // times 150 columns: two chunks each, 128 columns a round), with one node's matrix absent, and with column
    // groups of different widths at the two nodes, the last group partial.
    let shapes = [
        ((90, 10000, 6), (70, 10000, 6)),
        ((3, 9000, 150), (0, 0, 150)),
        ((0, 0, 4), (5, 700, 4)),
        ((90, 10000, 13), (7, 3000, 13)),
    ];
    for (da, db) in shapes {
        let (xa, xb) = (a.encode(&reals(da.0 * da.1, 8.0, &mut rng)), a.encode(&reals(db.0 * db.1, 8.0, &mut rng)));
        let (ba, bb): (Vec<R>, Vec<R>) = (
            (0..da.1 * da.2).map(|_| uniform(&mut rng)).collect(),
            (0..db.1 * db.2).map(|_| uniform(&mut rng)).collect(),
        );
        let ((ba0, ba1), (bb0, bb1)) = (split(&ba, &mut rng), split(&bb, &mut rng));
        let (ra, rb) =
            tokio::join!(a.matmul_he_pair(&xa, [&ba0, &bb0], [da, db]), b.matmul_he_pair(&xb, [&ba1, &bb1], [da, db]));
        let ([a0, b0], [a1, b1]) = (ra.expect("alice"), rb.expect("bob"));
        assert_eq!(add(&a0, &a1), matmul_local(&xa, &ba, da.0, da.1, da.2), "alice's {da:?}");
        assert_eq!(add(&b0, &b1), matmul_local(&xb, &bb, db.0, db.1, db.2), "bob's {db:?}");
    }
}

#[tokio::test]
async fn rlwe_matrix_products_match_plaintext_on_both_rings() {
    rlwe_matrix_products::<u64>(18).await;
    rlwe_matrix_products::<u128>(26).await;
}

#[tokio::test]
async fn rlwe_products_match_plaintext_and_hide_both_inputs() {
    rlwe_products::<u64>(18).await;
    rlwe_products::<u128>(26).await;
}

#[tokio::test]
async fn rlwe_refuses_a_matrix_too_large_for_the_flooding() {
    let (mut a, mut b, _) = pair::<u64>(Beaver::Ot, 18).await;
    let (fa, fb) = tokio::join!(a.he_fits(1 << 20, 1024), b.he_fits(1 << 60, 1024));
    assert_eq!((fa.expect("alice"), fb.expect("bob")), (false, false), "one node's entries too large");
    let (fa, fb) = tokio::join!(a.he_fits(1 << 20, 1024), b.he_fits(1 << 20, 1024));
    assert_eq!((fa.expect("alice"), fb.expect("bob")), (true, true));
    // Entries of 2^58 in a 64-entry block exceed the flooding budget: a clear error, not a wrong result.
    let big = vec![1u64 << 58; 64];
    let (ra, rb) = tokio::join!(
        a.matvec_he_pair(&big, [&[0; 8], &[]], [(8, 8), (0, 0)]),
        b.matvec_he_pair(&[], [&[1; 8], &[]], [(8, 8), (0, 0)])
    );
    let err = ra.expect_err("alice refuses").to_string();
    assert!(err.contains("exceeds the lattice parameters"), "{err}");
    assert!(rb.is_err(), "bob fails too");
}

#[tokio::test]
async fn and_triples_hold_and_multiply_shared_bits() {
    let (mut a, mut b, _) = pair::<u64>(Beaver::Ot, 18).await;
    // Made in the order the comparisons make them: both send, node 1 reads at once, node 0 at the finish.
    let (sa, sb) = tokio::join!(a.triples_start(1000, 2), b.triples_start(1000, 2));
    let (ta, tb) = tokio::join!(a.triples_finish(sa.expect("a")), b.triples_finish(sb.expect("b")));
    let (mut ta, mut tb) = (ta.expect("alice"), tb.expect("bob"));
    let ((a0, b0, c0), (a1, b1, c1)) = (ta.shares(), tb.shares());
    for i in 0..1000 {
        assert_eq!(c0[i] ^ c1[i], (a0[i] ^ a1[i]) * (b0[i] ^ b1[i]), "triple {i}");
    }
    // Neither party's bits decide the triple alone: both halves vary.
    assert!(a0.contains(&0) && a0.contains(&1) && b1.contains(&3));
    let mut rng = rng();
    let bits = |n: usize, rng: &mut ChaCha20Rng| -> Vec<u64> { (0..n).map(|_| rng.next_u64() & 1).collect() };
    let (x0, x1, y0, y1) = (bits(600, &mut rng), bits(600, &mut rng), bits(1200, &mut rng), bits(1200, &mut rng));
    let (za, zb) = tokio::join!(a.and_with_triples(&mut ta, &x0, &y0), b.and_with_triples(&mut tb, &x1, &y1));
    let (za, zb) = (za.expect("alice"), zb.expect("bob"));
    for (j, (za, zb)) in za.iter().zip(&zb).enumerate() {
        assert_eq!(za ^ zb, (x0[j / 2] ^ x1[j / 2]) & (y0[j] ^ y1[j]), "AND {j}");
    }
    // 400 triples are left: 500 more ANDs are refused, not computed from reused or missing ones.
    let err = a.and_with_triples(&mut ta, &x0[..500], &y0[..1000]).await.expect_err("too many");
    assert!(err.to_string().contains("400 of 1000 triples left"), "{err}");
}
