//! Trees trained in MPC against the same histogram trees computed in plaintext (`f64`, the same buckets, the
//! same sigmoid approximation): every split the MPC picks is the plaintext's best (or ties it within
//! fixed-point error), and the leaf weights of the trees it grew match the plaintext's for those splits.

use secretflow_crds::request::Beaver;
use secretflow_crds::tasks::learning::{Objective, XgbParams};

use super::*;
use crate::mpc::tests::{assert_never_sent, pair};

/// Rows of two 2-column blocks and a label that needs both parties' features (and a split below the root).
/// Features and the linear label sit near 1000 (the model is the same; the base score follows the label), so
/// their fixed-point words have random low bytes and no framing field of the transcript can hold one by chance.
fn data(n: usize, objective: Objective) -> ([Vec<f64>; 2], Vec<f64>) {
    let mut s = 7u64;
    let mut next = || {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let rows: Vec<[f64; 4]> = (0..n).map(|_| [next(), next(), next(), next()]).collect();
    let y = rows
        .iter()
        .map(|r| {
            let v = 2.0 * (r[0] - 0.4) * (r[2] - 0.6) + 0.3 * r[1] - 0.2 * r[3];
            match objective {
                Objective::Logistic => f64::from(u8::from(v > 0.0)),
                Objective::Linear => OFFSET + 3.0 * v,
            }
        })
        .collect();
    let block = |i: usize| rows.iter().flat_map(|r| [OFFSET + r[2 * i], OFFSET + r[2 * i + 1]]).collect();
    ([block(0), block(1)], y)
}

const OFFSET: f64 = 1000.0;

/// SecretFlow's `sr` sigmoid, as the MPC computes it.
fn sr(x: f64) -> f64 {
    0.5 + 0.5 * x / (1.0 + x * x).sqrt()
}

/// The plaintext gain of every (node-local) candidate: `G_L^2 / (H_L + l) + G_R^2 / (H_R + l)`.
fn gains(cands: &[Vec<bool>], rows: &[usize], g: &[f64], h: &[f64], l: f64) -> Vec<f64> {
    let (gt, ht): (f64, f64) = rows.iter().fold((0.0, 0.0), |(a, b), &r| (a + g[r], b + h[r]));
    cands
        .iter()
        .map(|left| {
            let (gl, hl) = rows.iter().filter(|&&r| left[r]).fold((0.0, 0.0), |(a, b), &r| (a + g[r], b + h[r]));
            gl * gl / (hl + l) + (gt - gl) * (gt - gl) / (ht - hl + l)
        })
        .collect()
}

async fn check<R: Ring>(objective: Objective, beaver: Beaver, frac: u32) {
    let n = 160;
    let base_score = if objective == Objective::Linear { OFFSET } else { 0.5 };
    let p =
        XgbParams { num_boost_round: 3, max_depth: 3, objective, sketch_eps: 0.25, base_score, ..XgbParams::default() };
    let (x, y) = data(n, objective);
    let thresholds: Vec<Vec<Vec<f64>>> = x
        .iter()
        .map(|b| {
            (0..2)
                .map(|c| buckets::thresholds(&b.iter().skip(c).step_by(2).copied().collect::<Vec<_>>(), 0.25))
                .collect()
        })
        .collect();
    let layout = Layout { counts: thresholds.iter().map(|t| t.iter().map(Vec::len).collect()).collect() };
    let (mut a, mut b, logs) = pair::<R>(beaver, frac).await;
    let own = |i: usize| Own { x: &x[i], cols: 2, rows: n, thresholds: &thresholds[i] };
    let (oa, ob) = (own(0), own(1));
    let (ta, tb) = tokio::join!(
        train::<R, _>("alice", &mut a, &p, &layout, &oa, (0, Some(&y)), |_| ()),
        train::<R, _>("bob", &mut b, &p, &layout, &ob, (0, None), |_| ())
    );
    let (ta, tb) = (ta.expect("alice"), tb.expect("bob"));
    if beaver == Beaver::Ot && R::BITS == 64 {
        // What each party sent (all the other sees) holds none of its features or labels as ring elements (a
        // 0/1 label encodes to words that framing bytes also hold: the continuous linear label is checked).
        let enc = |v: &[f64]| -> Vec<R> { v.iter().map(|v| R::encode(*v, frac)).collect() };
        let mut alice_secrets = enc(&x[0]);
        if objective == Objective::Linear {
            alice_secrets.extend(enc(&y));
        }
        assert_never_sent(&alice_secrets, &logs[0].lock().expect("log"));
        assert_never_sent(&enc(&x[1]), &logs[1].lock().expect("log"));
    }
    // Every candidate of both nodes in the global order, as left-of-threshold row flags.
    let cand_rows: Vec<Vec<bool>> = (0..2)
        .flat_map(|i| {
            let x = &x[i];
            thresholds[i].iter().enumerate().flat_map(move |(c, ts)| {
                ts.iter().map(move |t| (0..n).map(|r| x[r * 2 + c] <= *t).collect::<Vec<bool>>())
            })
        })
        .collect();
    let offset = [0, layout.counts[0].iter().sum::<usize>()];
    let global = |split: &Split, i: usize| -> usize {
        let (c, t) = split.local.expect("the owner knows its split");
        offset[i] + layout.counts[i][..c].iter().sum::<usize>() + t
    };
    let mut margin = vec![base_margin(&p); n];
    for (t, (tree_a, tree_b)) in ta.trees.iter().zip(&tb.trees).enumerate() {
        let (g, h): (Vec<f64>, Vec<f64>) = match objective {
            Objective::Logistic => margin.iter().zip(&y).map(|(m, y)| (sr(*m) - y, sr(*m) * (1.0 - sr(*m)))).unzip(),
            Objective::Linear => margin.iter().zip(&y).map(|(m, y)| (m - y, 1.0)).unzip(),
        };
        let mut nodes: Vec<Vec<usize>> = vec![(0..n).collect()];
        for (j, (sa, sb)) in tree_a.splits.iter().zip(&tree_b.splits).enumerate() {
            assert_eq!(sa.owner, sb.owner, "tree {t} node {j}: both nodes learn the owner");
            let owner = sa.owner;
            let (mine, other) = if owner == 0 { (sa, sb) } else { (sb, sa) };
            assert!(other.local.is_none(), "tree {t} node {j}: only the owner learns the split");
            let chosen = global(mine, owner);
            let rows = nodes[j].clone();
            let gain = gains(&cand_rows, &rows, &g, &h, p.reg_lambda);
            let best = gain.iter().cloned().fold(f64::MIN, f64::max);
            let slack = 1e-3 * best.abs().max(1.0);
            assert!(gain[chosen] >= best - slack, "tree {t} node {j}: gain {} against the best {best}", gain[chosen]);
            let (l, r): (Vec<usize>, Vec<usize>) = rows.iter().partition(|&&r| cand_rows[chosen][r]);
            nodes.push(l);
            nodes.push(r);
        }
        let leaves: Vec<Vec<usize>> = nodes.split_off(nodes.len() - (1 << p.max_depth));
        let (wa, wb) = tokio::join!(a.reveal(&tree_a.leaves, None), b.reveal(&tree_b.leaves, None));
        let (wa, _) = (wa.expect("open").expect("opened"), wb.expect("open"));
        let got = a.decode(&wa);
        for (k, rows) in leaves.iter().enumerate() {
            let (gs, hs): (f64, f64) = rows.iter().fold((0.0, 0.0), |(a, b), &r| (a + g[r], b + h[r]));
            let want = -p.learning_rate * gs / (hs + p.reg_lambda);
            assert!((got[k] - want).abs() < 2e-3 * want.abs().max(1.0), "tree {t} leaf {k}: {} vs {want}", got[k]);
            for &r in rows {
                margin[r] += want;
            }
        }
    }
    // Predicting on the training rows gives the margins the trees were built to, at the receiver only.
    let test = |i: usize| predict::Test { x: &x[i], cols: 2, rows: n, thresholds: &thresholds[i] };
    let (ta_test, tb_test) = (test(0), test(1));
    let (pa, pb) = tokio::join!(
        predict::margins(&mut a, &ta, p.max_depth, &ta_test, 1),
        predict::margins(&mut b, &tb, p.max_depth, &tb_test, 1)
    );
    assert!(pa.expect("alice").is_none(), "only the receiver sees predictions");
    let got = pb.expect("bob").expect("the receiver's margins");
    for (r, (g, w)) in got.iter().zip(&margin).enumerate() {
        assert!((g - w).abs() < 1e-2 * w.abs().max(1.0), "row {r}: margin {g} vs {w}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logistic_trees_match_plaintext_histogram_trees() {
    check::<u64>(Objective::Logistic, Beaver::Ot, 18).await;
    check::<u128>(Objective::Logistic, Beaver::Ot, 26).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linear_trees_match_plaintext_histogram_trees_with_the_dealer_too() {
    check::<u64>(Objective::Linear, Beaver::Ot, 18).await;
    check::<u128>(Objective::Linear, Beaver::Ot, 26).await;
    check::<u64>(Objective::Linear, Beaver::TrustedFirstParty, 18).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wide_range_division_matches_plaintext_on_both_rings() {
    async fn run<R: Ring>(frac: u32) {
        let (mut a, mut b, _) = pair::<R>(Beaver::Ot, frac).await;
        let (lo, hi) = (10, 8);
        // Spread over the octaves, with every fourth value just beside an octave boundary.
        let xs: Vec<f64> = (0..40)
            .map(|i| match i % 4 {
                0 => (-(lo as f64) + 1.0 + (i / 4) as f64).exp2() * 1.01,
                1 => (-(lo as f64) + 1.0 + (i / 4) as f64).exp2() * 0.99,
                _ => (-(lo as f64) + i as f64 * (lo + hi) as f64 / 40.0).exp2(),
            })
            .collect();
        let nums: Vec<f64> = (0..40).map(|i| (i as f64 - 20.0) * 0.37).collect();
        let (ex, en) = (a.encode(&xs), a.encode(&nums));
        let (xa, xb) = tokio::join!(a.input(0, Some(&ex), 40), b.input(0, None, 40));
        let (na, nb) = tokio::join!(a.input(1, None, 40), b.input(1, Some(&en), 40));
        let (xa, xb, na, nb) = (xa.expect("x"), xb.expect("x"), na.expect("a"), nb.expect("a"));
        let (qa, qb) = tokio::join!(a.div(&na, &xa, (lo, hi)), b.div(&nb, &xb, (lo, hi)));
        let (qa, qb) = (qa.expect("div"), qb.expect("div"));
        let (oa, _) = tokio::join!(a.reveal(&qa, None), b.reveal(&qb, None));
        let got = a.decode(&oa.expect("open").expect("opened"));
        for ((g, n), x) in got.iter().zip(&nums).zip(&xs) {
            let want = n / x;
            assert!((g - want).abs() <= 1e-3 * want.abs().max(1.0), "{n} / {x}: {g} vs {want}");
        }
    }
    run::<u64>(18).await;
    run::<u128>(26).await;
}
