//! The three-party backend's own tests: what crosses the links (no node's messages carry another's inputs or
//! the values computed from them) and a silent node failing the others by name. The kernels and functions are
//! tested against plaintext in [`super::suite`].

use std::time::Duration;

use futures_util::future::join_all;
use rand_core::Rng;

use super::{assert_never_sent, rng, triple, triple_with_timeout};
use crate::mpc::{Bits, Fixed, Kernels, Share};
use crate::ring::Ring;

#[tokio::test]
async fn no_node_sends_another_nodes_inputs_or_what_is_computed_from_them() {
    let (mut devs, logs) = triple::<u64>(18).await;
    let mut rng = rng();
    // Alice's and carol's private values, with bit 40 set so that no small word can match one by chance.
    let x: Vec<u64> = (0..400).map(|_| (rng.next_u64() >> 20) | 1 << 40).collect();
    let y: Vec<u64> = (0..400).map(|_| (rng.next_u64() >> 20) | 1 << 41).collect();
    let n = x.len();
    let inputs = |owner: usize, v: &[u64]| (0..3).map(move |i| (i == owner).then(|| v.to_vec())).collect::<Vec<_>>();
    let (xi, yi) = (inputs(0, &x), inputs(2, &y));
    let outs = join_all(devs.iter_mut().enumerate().map(|(i, k)| {
        let (xv, yv) = (xi[i].clone(), yi[i].clone());
        async move {
            let xs = k.input(0, xv.as_deref(), n).await?;
            let ys = k.input(2, yv.as_deref(), n).await?;
            let prod = k.mul_raw(&xs, &ys).await?;
            let t = k.trunc(&prod, 18).await?;
            let signs = k.msb(&xs.sub(&ys), 43, 0).await?;
            let arith = k.b2a(&signs).await?;
            let picked = k.mul_bit(&Bits::new(arith.clone()), &xs).await?;
            Ok::<_, crate::error::Error>(vec![prod, t, arith, picked])
        }
    }))
    .await;
    let outs: Vec<Vec<Share<u64>>> = outs.into_iter().map(|o| o.expect("node")).collect();
    // Open nothing: the transcripts so far must carry none of the inputs or the intermediate values.
    let prod: Vec<u64> = x.iter().zip(&y).map(|(a, b)| a.wrapping_mul(*b)).collect();
    let trunc: Vec<u64> = prod.iter().map(|p| p.sar(18)).collect();
    let sent: Vec<Vec<u8>> = logs.iter().map(|l| l.lock().expect("lock").clone()).collect();
    assert!(sent.iter().all(|s| s.len() > 8 * n), "every node sent its resharing");
    for (i, view) in sent.iter().enumerate() {
        if i != 0 {
            assert_never_sent(&x, view);
        }
        if i != 2 {
            assert_never_sent(&y, view);
        }
        assert_never_sent(&prod, view);
        assert_never_sent(&trunc, view);
    }
    // Each node's two components alone are not the value: the three shares of the product differ from it.
    for (i, out) in outs.iter().enumerate() {
        let s = &out[0];
        let held: Vec<u64> = (0..n).map(|e| s.part(0)[e].wrapping_add(s.part(1)[e])).collect();
        assert!(held.iter().zip(&prod).all(|(h, p)| h != p), "node {i}'s components add up to the product");
    }
}

#[tokio::test]
async fn a_node_that_stops_answering_fails_the_others_naming_it() {
    let (mut devs, _) = triple_with_timeout::<u64>(18, Duration::from_secs(2)).await;
    let _carol = devs.pop().expect("carol");
    let (mut alice, mut bob) = (devs.remove(0), devs.remove(0));
    let h = alice.holding();
    let x = Share::constant(h, 5u64, 10);
    let xb = Share::constant(bob.holding(), 5u64, 10);
    let started = std::time::Instant::now();
    // Carol set up the device and went silent: bob waits for her summand of the product.
    let (_, rb) = tokio::join!(alice.mul_raw(&x, &x), bob.mul_raw(&xb, &xb));
    assert!(started.elapsed() < Duration::from_secs(10));
    let text = rb.expect_err("carol never answers").to_string();
    assert!(text.contains("carol") && text.contains("timed out"), "{text}");
}
