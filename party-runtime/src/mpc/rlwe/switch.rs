//! Modulus switching of a returned ciphertext: the evaluator divides out every prime it does not send in one
//! step, `x' = (x - [x]_D) / D` with `D` the dropped primes' product and `[x]_D` the centred remainder, so the
//! division is exact and adds at most 1/2 to each coefficient. The remainder comes from the dropped residues
//! by Garner's mixed radix (no wide integers), taken of `x + h` with `h = (D - 1) / 2` and shifted back, which
//! centres it without comparisons. In NTT form this costs one inverse NTT per dropped prime and one forward NTT
//! per kept prime.

use crate::mpc::modular::{add_mod, inv_mod, mul_mod, mul_shoup, reduce_once, shoup};

/// The most primes a switch drops (FM128 drops three).
pub(super) const MAX_DROPPED: usize = 4;

/// Mixed-radix digits of `[x + h]_D`: `sum_j u_j (d_0 ... d_(j-1))`, each `u_j < d_j`.
pub(super) type Digits = [u64; MAX_DROPPED];

/// A dropped prime's constants.
struct Dropped {
    d: u64,
    /// `h mod d`.
    half: u64,
    /// `d_l^-1 mod d` (Shoup) for each earlier dropped prime `d_l`.
    inv: Vec<(u64, u64)>,
}

/// A kept prime's constants.
struct Kept {
    p: u64,
    /// `(d_0 ... d_(j-1)) mod p` (Shoup) for each dropped prime `j`.
    radix: Vec<(u64, u64)>,
    /// `h mod p`.
    half: u64,
    /// `D^-1 mod p` (Shoup).
    d_inv: (u64, u64),
}

/// The constants of dividing the primes past the kept ones out of a ciphertext.
pub(super) struct Switch {
    dropped: Vec<Dropped>,
    kept: Vec<Kept>,
}

impl Switch {
    /// Keep `primes[..keep]` and drop the rest. All primes must lie within a factor of two of each other (a
    /// digit below one dropped prime is then below twice any other).
    pub(super) fn new(primes: &[u64], keep: usize) -> Switch {
        let (kept, dropped) = primes.split_at(keep);
        assert!(dropped.len() <= MAX_DROPPED, "at most {MAX_DROPPED} dropped primes");
        let (lo, hi) = (primes.iter().min().copied().unwrap_or(1), primes.iter().max().copied().unwrap_or(1));
        assert!(hi < 2 * lo, "the primes lie within a factor of two");
        let d_mod = |p: u64| dropped.iter().fold(1u64, |acc, &d| mul_mod(acc, d % p, p));
        // h = (D - 1) / 2 mod p, D being odd.
        let half = |p: u64| mul_mod((d_mod(p) + p - 1) % p, inv_mod(2, p), p);
        let dropped_consts = dropped
            .iter()
            .enumerate()
            .map(|(j, &d)| Dropped {
                d,
                half: half(d),
                inv: dropped[..j].iter().map(|&l| shoup(inv_mod(l % d, d), d)).collect(),
            })
            .collect();
        let kept = kept
            .iter()
            .map(|&p| Kept {
                p,
                radix: (0..dropped.len())
                    .map(|j| shoup(dropped[..j].iter().fold(1u64, |acc, &d| mul_mod(acc, d % p, p)), p))
                    .collect(),
                half: half(p),
                d_inv: shoup(inv_mod(d_mod(p), p), p),
            })
            .collect();
        Switch { dropped: dropped_consts, kept }
    }

    /// The digits of `[x + h]_D` from `x`'s residue at each dropped prime (`residue(j)`, coefficient form).
    #[inline]
    pub(super) fn digits(&self, residue: impl Fn(usize) -> u64) -> Digits {
        let mut u = [0u64; MAX_DROPPED];
        for (j, c) in self.dropped.iter().enumerate() {
            let d = c.d;
            let mut v = add_mod(residue(j), c.half, d);
            for (ul, &(w, ws)) in u.iter().zip(&c.inv) {
                v = mul_shoup(add_mod(v, d - reduce_once(*ul, d), d), w, ws, d);
            }
            u[j] = v;
        }
        u
    }

    /// The centred remainder `[x]_D = [x + h]_D - h` mod kept prime `i`.
    #[inline]
    pub(super) fn remainder(&self, i: usize, u: &Digits) -> u64 {
        let c = &self.kept[i];
        let p = c.p;
        let v = u.iter().zip(&c.radix).fold(0u64, |acc, (&u, &(w, ws))| add_mod(acc, mul_shoup(u, w, ws, p), p));
        add_mod(v, p - c.half, p)
    }

    /// `(x - r) D^-1` mod kept prime `i`, for `x`'s residue and the remainder's `r` (both in the same form).
    #[inline]
    pub(super) fn divide(&self, i: usize, x: u64, r: u64) -> u64 {
        let c = &self.kept[i];
        mul_shoup(add_mod(x, c.p - r, c.p), c.d_inv.0, c.d_inv.1, c.p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::prg::{Prg, Words};
    use crate::mpc::modular::signed_mod;

    /// `x = D y + r` for any kept residues `y` and `|r| <= (D - 1) / 2` divides to exactly `y`.
    fn divides_exactly(primes: &[u64], keep: usize, rs: &[i128], rng: &mut Prg) {
        let sw = Switch::new(primes, keep);
        let dropped = &primes[keep..];
        let d_mod = |p: u64| dropped.iter().fold(1u64, |acc, &d| mul_mod(acc, d % p, p));
        for &r in rs {
            let y: Vec<u64> = primes[..keep].iter().map(|&p| rng.word() % p).collect();
            let u = sw.digits(|j| signed_mod(r, dropped[j]));
            for (i, &p) in primes[..keep].iter().enumerate() {
                let x = add_mod(mul_mod(d_mod(p), y[i], p), signed_mod(r, p), p);
                assert_eq!(sw.divide(i, x, sw.remainder(i, &u)), y[i], "r = {r}, prime {i}");
            }
        }
    }

    #[test]
    fn the_switch_divides_out_the_dropped_primes_exactly() {
        let mut rng = Prg::new([7; 16], 0);
        // FM64's four primes, two dropped: D fits an i128, so the remainders reach both edges.
        let fm64 = &crate::mpc::rlwe::params::<u64>().primes;
        let h = ((fm64[2] as u128 * fm64[3] as u128 - 1) / 2) as i128;
        let mut rs = vec![0, 1, -1, h, -h, h - 1, -h + 1];
        rs.extend(
            (0..2000).map(|_| (((rng.word() as u128) << 64 | rng.word() as u128) % (2 * h as u128 + 1)) as i128 - h),
        );
        divides_exactly(fm64, 2, &rs, &mut rng);
        // FM128's six primes, three dropped (D near 2^150): remainders within an i128.
        let fm128 = &crate::mpc::rlwe::params::<u128>().primes;
        let mut rs = vec![0, 1, -1, i128::MAX, i128::MIN + 1];
        rs.extend((0..2000).map(|_| ((rng.word() as u128) << 64 | rng.word() as u128) as i128));
        divides_exactly(fm128, 3, &rs, &mut rng);
    }
}
