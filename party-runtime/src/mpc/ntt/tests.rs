//! Every path gives tfhe-ntt's residues exactly: on random inputs, on the extremes `0` and `p - 1`, at every
//! size and prime the RLWE code uses.

use super::super::modular::ntt_primes;
use super::*;

/// SplitMix64: test inputs only.
fn inputs(len: usize, p: u64, seed: u64) -> Vec<u64> {
    let mut s = seed;
    let mut v: Vec<u64> = (0..len)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) % p
        })
        .collect();
    v[0] = p - 1;
    v[len / 2] = p - 1;
    v[len - 1] = 0;
    v
}

fn paths() -> Vec<NttPath> {
    let mut paths = vec![cpu().ntt];
    if cpu().ntt == NttPath::Avx2Fma && cpu().features.contains(&"avx512ifma") {
        paths.push(NttPath::Ifma);
    }
    if cpu().features.contains(&"avx2") && cpu().features.contains(&"fma") && cpu().ntt != NttPath::Avx2Fma {
        paths.push(NttPath::Avx2Fma);
    }
    paths
}

#[test]
fn every_path_matches_tfhe_ntt() {
    for n in [16, 64, 2048, 8192, 16384] {
        let mut primes = ntt_primes(FMA_PRIME_BITS, 3, n);
        primes.extend(ntt_primes(44, 2, n));
        primes.push(ntt_primes(30, 1, n)[0]);
        for (i, &p) in primes.iter().enumerate() {
            let reference = tfhe_ntt::prime64::Plan::try_new(n, p).expect("NTT prime");
            for path in paths() {
                let ntt = Ntt::on_path(n, p, path).expect("NTT prime");
                assert_eq!(ntt.path(), path, "n {n} p {p}: the path asked for");
                let x = inputs(n, p, (n + i) as u64);
                let (mut want, mut got) = (x.clone(), x.clone());
                reference.fwd(&mut want);
                ntt.fwd(&mut got);
                assert_eq!(got, want, "fwd n {n} p {p} {path:?}");

                let y = inputs(n, p, 7 + i as u64);
                let (mut want, mut got) = (y.clone(), y.clone());
                reference.inv(&mut want);
                ntt.inv(&mut got);
                assert_eq!(got, want, "inv n {n} p {p} {path:?}");
                reference.normalize(&mut want);
                ntt.normalize(&mut got);
                assert_eq!(got, want, "normalize n {n} p {p} {path:?}");

                let mut back = x.clone();
                ntt.fwd(&mut back);
                ntt.inv(&mut back);
                ntt.normalize(&mut back);
                assert_eq!(back, x, "round trip n {n} p {p} {path:?}");

                // On our path a length that is not a multiple of the vector width checks the scalar tail too
                // (tfhe-ntt's IFMA tail is not exact; the RLWE code passes whole polynomials only).
                let len = if path == NttPath::Avx2Fma { n + 3 } else { n };
                let (a, b, acc) = (inputs(len, p, 11), inputs(len, p, 13), inputs(len, p, 17));
                let want: Vec<u64> =
                    (0..len).map(|i| ((acc[i] as u128 + a[i] as u128 * b[i] as u128) % p as u128) as u64).collect();
                let mut got = acc.clone();
                ntt.mul_accumulate(&mut got, &a, &b);
                assert_eq!(got, want, "mul_accumulate n {n} p {p} {path:?}");
            }
        }
    }
}

#[test]
fn the_fma_path_refuses_primes_it_cannot_hold_exactly() {
    let p = ntt_primes(51, 1, 8192)[0];
    let ntt = Ntt::on_path(8192, p, NttPath::Avx2Fma).expect("NTT prime");
    assert_ne!(ntt.path(), NttPath::Avx2Fma, "a 51-bit prime falls back to tfhe-ntt");
    let x = inputs(8192, p, 3);
    let (mut got, mut want) = (x.clone(), x);
    ntt.fwd(&mut got);
    tfhe_ntt::prime64::Plan::try_new(8192, p).expect("NTT prime").fwd(&mut want);
    assert_eq!(got, want);
}
