//! Trees trained in MPC against the same histogram trees computed in plaintext (`f64`, the same buckets, the
//! same sigmoid approximation): every split the MPC picks is the plaintext's best (or ties it within
//! fixed-point error), and the leaf weights of the trees it grew match the plaintext's for those splits.

use secretflow_crds::request::Beaver;
use secretflow_crds::tasks::learning::{Objective, XgbParams};

use super::*;
use crate::mpc::tests::{Log, assert_never_sent, pair, triple};

/// Rows of `blocks` 2-column blocks and a label that needs the first two parties' features (and a split below
/// the root); a third block is noise. Features and the linear label sit near 1000 (the model is the same; the
/// base score follows the label), so their fixed-point words have random low bytes and no framing field of the
/// transcript can hold one by chance.
fn data(n: usize, objective: Objective, blocks: usize) -> (Vec<Vec<f64>>, Vec<f64>) {
    let mut s = 7u64;
    let mut next = || {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let rows: Vec<Vec<f64>> = (0..n).map(|_| (0..2 * blocks).map(|_| next()).collect()).collect();
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
    ((0..blocks).map(block).collect(), y)
}

const OFFSET: f64 = 1000.0;

/// SecretFlow's `sr` sigmoid, as the MPC computes it.
fn sr(x: f64) -> f64 {
    0.5 + 0.5 * x / (1.0 + x * x).sqrt()
}

/// The plaintext gain of every (node-local) candidate, `G_L^2 / (H_L + l) + G_R^2 / (H_R + l)`, with its two
/// hessian sums; and the node's own `G^2 / (H + l)`.
fn gains(cands: &[Vec<bool>], rows: &[usize], g: &[f64], h: &[f64], l: f64) -> (Vec<(f64, f64, f64)>, f64) {
    let (gt, ht): (f64, f64) = rows.iter().fold((0.0, 0.0), |(a, b), &r| (a + g[r], b + h[r]));
    let each = cands
        .iter()
        .map(|left| {
            let (gl, hl) = rows.iter().filter(|&&r| left[r]).fold((0.0, 0.0), |(a, b), &r| (a + g[r], b + h[r]));
            (gl * gl / (hl + l) + (gt - gl) * (gt - gl) / (ht - hl + l), hl, ht - hl)
        })
        .collect();
    (each, gt * gt / (ht + l))
}

/// Each device's result of `f`, run on all at once.
async fn each<R: Ring, D: Kernels<R>, T>(devs: &mut [D], f: impl AsyncFn(&mut D, usize) -> Result<T>) -> Vec<T> {
    let out = futures_util::future::join_all(devs.iter_mut().enumerate().map(|(i, d)| f(d, i))).await;
    out.into_iter().enumerate().map(|(i, r)| r.unwrap_or_else(|e| panic!("node {i}: {e}"))).collect()
}

/// Train on the two-party device (with the transcript check on FM64 with OT) and compare with plaintext.
async fn check<R: Ring>(objective: Objective, beaver: Beaver, frac: u32) {
    let (a, b, logs) = pair::<R>(beaver, frac).await;
    let views = (beaver == Beaver::Ot && R::BITS == 64).then(|| logs.to_vec());
    check_on(vec![a, b], views, objective, frac, (0.0, 0.0)).await;
}

/// Train on `devs` (each node holding one 2-column block, node 0 the label) and compare every split, leaf and
/// margin with plaintext histogram trees; with `views`, also check what each node sent.
/// With `(gamma, min_child_weight)` set, nodes may stop splitting; returns how many did (and how many split).
async fn check_on<R: Ring, D: Kernels<R>>(
    mut devs: Vec<D>,
    views: Option<Vec<Log>>,
    objective: Objective,
    frac: u32,
    (gamma, min_child_weight): (f64, f64),
) -> (usize, usize) {
    let n = 160;
    let base_score = if objective == Objective::Linear { OFFSET } else { 0.5 };
    let p = XgbParams {
        num_boost_round: 3,
        max_depth: 3,
        objective,
        sketch_eps: 0.25,
        base_score,
        gamma,
        min_child_weight,
        ..XgbParams::default()
    };
    let (mut pruned, mut split) = (0, 0);
    let nodes = devs.len();
    let (x, y) = data(n, objective, nodes);
    let thresholds: Vec<Vec<Vec<f64>>> = x
        .iter()
        .map(|b| {
            (0..2)
                .map(|c| buckets::thresholds(&b.iter().skip(c).step_by(2).copied().collect::<Vec<_>>(), 0.25))
                .collect()
        })
        .collect();
    let layout = Layout { counts: thresholds.iter().map(|t| t.iter().map(Vec::len).collect()).collect() };
    let own: Vec<Own<'_>> =
        (0..nodes).map(|i| Own { x: &x[i], cols: 2, rows: n, thresholds: &thresholds[i] }).collect();
    let trained = each(&mut devs, async |d, i| {
        train::<R, _>(
            ["alice", "bob", "carol"][i],
            d,
            &p,
            &layout,
            &own[i],
            (0, (i == 0).then_some(&y[..])),
            &mut Meter::seconds_only(),
            |_| (),
        )
        .await
    })
    .await;
    if let Some(views) = views {
        // What each party sent (all the others see) holds none of its features or labels as ring elements (a
        // 0/1 label encodes to words that framing bytes also hold: the continuous linear label is checked).
        let enc = |v: &[f64]| -> Vec<R> { v.iter().map(|v| R::encode(*v, frac)).collect() };
        for (i, view) in views.iter().enumerate() {
            let mut secrets = enc(&x[i]);
            if i == 0 && objective == Objective::Linear {
                secrets.extend(enc(&y));
            }
            assert_never_sent(&secrets, &view.lock().expect("log"));
        }
    }
    // Every candidate of every node in the global order, as left-of-threshold row flags.
    let cand_rows: Vec<Vec<bool>> = (0..nodes)
        .flat_map(|i| {
            let x = &x[i];
            thresholds[i].iter().enumerate().flat_map(move |(c, ts)| {
                ts.iter().map(move |t| (0..n).map(|r| x[r * 2 + c] <= *t).collect::<Vec<bool>>())
            })
        })
        .collect();
    let offset = starts(&layout.counts.iter().map(|c| c.iter().sum()).collect::<Vec<usize>>());
    let global = |split: &Split, i: usize| -> usize {
        let (c, t) = split.local.expect("the owner knows its split");
        offset[i] + layout.counts[i][..c].iter().sum::<usize>() + t
    };
    let mut margin = vec![base_margin(&p); n];
    for t in 0..p.num_boost_round as usize {
        let trees: Vec<&Tree<R>> = trained.iter().map(|tr| &tr.trees[t]).collect();
        let (g, h): (Vec<f64>, Vec<f64>) = match objective {
            Objective::Logistic => margin.iter().zip(&y).map(|(m, y)| (sr(*m) - y, sr(*m) * (1.0 - sr(*m)))).unzip(),
            Objective::Linear => margin.iter().zip(&y).map(|(m, y)| (m - y, 1.0)).unzip(),
        };
        let mut rows_of: Vec<Vec<usize>> = vec![(0..n).collect()];
        let mut active = vec![true];
        for j in 0..trees[0].splits.len() {
            let owner = trees[0].splits[j].owner;
            for (i, tree) in trees.iter().enumerate() {
                assert_eq!(tree.splits[j].owner, owner, "tree {t} node {j}: every node learns the owner");
                let knows = tree.splits[j].local.is_some();
                assert_eq!(knows, owner == Some(i), "tree {t} node {j}: only the owner learns the split (node {i})");
            }
            let rows = rows_of[j].clone();
            let (gain, own_obj) = gains(&cand_rows, &rows, &g, &h, p.reg_lambda);
            let slack = 1e-3 * gain.iter().map(|c| c.0.abs()).fold(1.0, f64::max);
            let valid = |c: &(f64, f64, f64)| c.1 >= min_child_weight - 1e-3 && c.2 >= min_child_weight - 1e-3;
            let best = gain.iter().filter(|c| c.1 >= min_child_weight && c.2 >= min_child_weight).map(|c| c.0);
            let best = best.fold(f64::MIN, f64::max);
            // Splits unless pruned: by its parent, by gamma, or for want of a candidate heavy enough on both sides
            // (within fixed-point error of gamma either answer is right).
            let reduction = best - own_obj;
            if active[j] && (reduction - gamma).abs() > slack {
                assert_eq!(
                    owner.is_some(),
                    reduction > gamma,
                    "tree {t} node {j}: loss reduction {reduction} vs {gamma}"
                );
            }
            assert!(active[j] || owner.is_none(), "tree {t} node {j}: below a node that did not split");
            let Some(owner) = owner else {
                pruned += usize::from(active[j]);
                rows_of.push(rows);
                rows_of.push(Vec::new());
                active.extend([false, false]);
                continue;
            };
            split += 1;
            let chosen = global(&trees[owner].splits[j], owner);
            assert!(
                valid(&gain[chosen]),
                "tree {t} node {j}: a child lighter than {min_child_weight}: {:?}",
                gain[chosen]
            );
            assert!(
                gain[chosen].0 >= best - slack,
                "tree {t} node {j}: gain {:?} against the best {best}",
                gain[chosen]
            );
            let (l, r): (Vec<usize>, Vec<usize>) = rows.iter().partition(|&&r| cand_rows[chosen][r]);
            rows_of.push(l);
            rows_of.push(r);
            active.extend([true, true]);
        }
        let leaves: Vec<Vec<usize>> = rows_of.split_off(rows_of.len() - (1 << p.max_depth));
        let opened = each(&mut devs, async |d, i| d.reveal(&trees[i].leaves, None).await).await;
        let got = devs[0].decode(opened[0].as_ref().expect("opened"));
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
    let tests: Vec<predict::Test<'_>> =
        (0..nodes).map(|i| predict::Test { x: &x[i], cols: 2, rows: n, thresholds: &thresholds[i] }).collect();
    let got = each(&mut devs, async |d, i| predict::margins(d, &trained[i], p.max_depth, &tests[i], 1).await).await;
    for (i, g) in got.iter().enumerate() {
        assert_eq!(g.is_some(), i == 1, "only the receiver sees predictions (node {i})");
    }
    let got = got[1].as_ref().expect("the receiver's margins");
    for (r, (g, w)) in got.iter().zip(&margin).enumerate() {
        assert!((g - w).abs() < 1e-2 * w.abs().max(1.0), "row {r}: margin {g} vs {w}");
    }
    (pruned, split)
}

/// ABY3, every node holding features: the owners of splits come from three candidate ranges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trees_match_plaintext_on_the_three_party_backend_both_objectives_and_rings() {
    for objective in [Objective::Logistic, Objective::Linear] {
        let (devs, logs) = triple::<u64>(18).await;
        check_on(devs, Some(logs), objective, 18, (0.0, 0.0)).await;
        let (devs, _) = triple::<u128>(26).await;
        check_on(devs, None, objective, 26, (0.0, 0.0)).await;
    }
}

/// `gamma` and `min_child_weight` stop nodes from splitting as plaintext trees with the same rules do (the
/// stopped node's rows all go left, so its leaf weight is the node's), on both backends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gamma_and_min_child_weight_prune_as_plaintext_does() {
    for (objective, rules) in [(Objective::Logistic, (0.5, 2.0)), (Objective::Linear, (2.0, 12.0))] {
        let (a, b, _) = pair::<u64>(Beaver::Ot, 18).await;
        let (pruned, split) = check_on(vec![a, b], None, objective, 18, rules).await;
        assert!(pruned > 0 && split > 0, "{objective:?} {rules:?}: {pruned} nodes stopped, {split} split");
        let (devs, _) = triple::<u128>(26).await;
        check_on(devs, None, objective, 26, rules).await;
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

/// The tournament over fractions picks each block's largest `N / D` (the first of equals) with its `N` and `D`,
/// and a payload lane along, for denominators from `2^-10` to `2^6` and numerators spanning as much, on both
/// rings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argmax_of_fractions_matches_plaintext_on_both_rings() {
    async fn run<R: Ring>(frac: u32) {
        let (mut a, mut b, _) = pair::<R>(Beaver::Ot, frac).await;
        let (k, m) = (4, 13);
        let mut s = 11u64;
        let mut next = || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut den: Vec<f64> = (0..k * m).map(|_| (next() * 16.0 - 10.0).exp2()).collect();
        let mut ratio: Vec<f64> = (0..k * m).map(|_| (next() * 12.0 - 6.0).exp2()).collect();
        // Block 2 has a tie for the best (the first must win); block 3 a zero numerator everywhere but one.
        ratio[2 * m + 9] = 70.0;
        ratio[2 * m + 4] = 70.0;
        den[2 * m + 9] = den[2 * m + 4];
        for r in &mut ratio[3 * m..4 * m - 1] {
            *r = 0.0;
        }
        // Cross products reach 2^19 (N up to 2^13, D up to 2^6): the rest of the ring is fraction bits.
        let (bits, f) = (R::BITS - 2, frac);
        let (fn_, fd) = ((bits - 20) / 2, (bits - 20).div_ceil(2));
        let enc = |v: &[f64], fr: u32| -> Vec<R> { v.iter().map(|x| R::encode(*x, fr)).collect() };
        let num_plain: Vec<f64> = ratio.iter().zip(&den).map(|(r, d)| r * d).collect();
        let (en, ed) = (enc(&num_plain, fn_), enc(&den, fd));
        let (na, nb) = tokio::join!(a.input(0, Some(&en), k * m), b.input(0, None, k * m));
        let (da, db) = tokio::join!(a.input(1, None, k * m), b.input(1, Some(&ed), k * m));
        let (na, nb, da, db) = (na.expect("n"), nb.expect("n"), da.expect("d"), db.expect("d"));
        let (pa, pb) = ([na.clone()], [nb.clone()]);
        let (ra, rb) = tokio::join!(
            super::argmax_ratio(&mut a, (&na, &da), &pa, k, m, bits),
            super::argmax_ratio(&mut b, (&nb, &db), &pb, k, m, bits)
        );
        let ((ia, nwa, dwa, pa), (ib, nwb, dwb, pb)) = (ra.expect("argmax"), rb.expect("argmax"));
        let (sa, sb) = (Share::concat(&[&ia, &dwa, &nwa.sub(&pa[0])]), Share::concat(&[&ib, &dwb, &nwb.sub(&pb[0])]));
        let (oa, ob) = tokio::join!(a.reveal(&sa, None), b.reveal(&sb, None));
        let _ = ob.expect("open");
        let opened = oa.expect("open").expect("opened");
        for j in 0..k {
            let block = &ratio[j * m..(j + 1) * m];
            let best = block.iter().copied().fold(f64::MIN, f64::max);
            let want = block.iter().position(|r| *r == best).unwrap_or(0);
            let got = opened[j].to_u128() as usize;
            assert_eq!(got, want, "block {j} (f = {f}): {block:?}");
            let d = opened[k + j].decode(fd);
            assert!((d - den[j * m + want]).abs() <= 1e-3 * den[j * m + want], "block {j}: D {d}");
            assert_eq!(opened[2 * k + j], R::ZERO, "block {j}: the payload moves with its entry");
        }
    }
    run::<u64>(18).await;
    run::<u128>(26).await;
}

/// The gain arithmetic's bit budget: enough fraction bits for numerators and denominators at the sizes the
/// benchmarks run (10^4 and 10^5 rows on FM64, 10^6 on FM128), and a clear error where a field cannot hold it.
#[test]
fn the_gain_fractions_fit_the_ring_or_the_field_is_named() {
    let p = XgbParams { reg_lambda: 1.0, ..XgbParams::default() };
    for (n, f, bits) in [(200, 18, 64), (10_000, 18, 64), (100_000, 18, 64), (1_000_000, 26, 128)] {
        let s = Scaling::new("alice", &p, n, f, bits).unwrap_or_else(|e| panic!("{n} rows: {e}"));
        assert!(s.frac_num >= 12 && s.frac_den >= 12 && s.cross <= bits - 2, "{n} rows: {} {}", s.frac_num, s.frac_den);
    }
    let e = Scaling::new("alice", &p, 10_000_000, 18, 64).err().expect("10^7 rows do not fit FM64");
    assert!(e.to_string().contains("fraction bits"), "{e}");
}
