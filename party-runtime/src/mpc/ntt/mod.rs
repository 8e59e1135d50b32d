//! Negacyclic NTTs over word-sized primes for the RLWE code, on the path [`crate::cpu`] picked for this
//! process: tfhe-ntt's AVX-512 IFMA kernels, ours over `f64` lanes with AVX2 and FMA ([`fma`]), or
//! tfhe-ntt's portable code. Every path returns the same residues in the same (bit-reversed) order, so two
//! parties on different CPUs agree on every polynomial they exchange.

#[cfg(target_arch = "x86_64")]
mod fma;

use crate::cpu::{NttPath, cpu};

/// Primes of the FMA path stay below `2^FMA_PRIME_BITS`: twice the prime fits the 51 bits where one
/// rounding of a product quotient errs by less than one half (see [`fma`]).
pub(super) const FMA_PRIME_BITS: u32 = 50;

/// A negacyclic NTT of one size over one prime, with the products its users need in NTT form.
pub(super) struct Ntt {
    plan: tfhe_ntt::prime64::Plan,
    #[cfg(target_arch = "x86_64")]
    fma: Option<fma::FmaPlan>,
}

impl Ntt {
    /// The NTT of size `n` modulo `p` on this process's path, `None` if `p` is not an NTT prime for `n`.
    pub(super) fn new(n: usize, p: u64) -> Option<Ntt> {
        Ntt::on_path(n, p, cpu().ntt)
    }

    /// The NTT on a given path (the tests run every path the machine has). The FMA path needs
    /// `p < 2^50` and `n >= 16`; otherwise it falls back to tfhe-ntt.
    pub(super) fn on_path(n: usize, p: u64, path: NttPath) -> Option<Ntt> {
        let plan = tfhe_ntt::prime64::Plan::try_new(n, p)?;
        #[cfg(target_arch = "x86_64")]
        let fma = match path {
            NttPath::Avx2Fma => fma::FmaPlan::new(&plan, n, p),
            _ => None,
        };
        #[cfg(not(target_arch = "x86_64"))]
        let _ = path;
        Some(Ntt {
            plan,
            #[cfg(target_arch = "x86_64")]
            fma,
        })
    }

    /// Coefficients (standard order, each below `p`) to evaluations (bit-reversed order, each below `p`).
    pub(super) fn fwd(&self, data: &mut [u64]) {
        #[cfg(target_arch = "x86_64")]
        if let Some(fma) = &self.fma {
            return fma.fwd(data);
        }
        self.plan.fwd(data)
    }

    /// The inverse of [`Ntt::fwd`] up to the factor `n` ([`Ntt::normalize`] divides it out).
    pub(super) fn inv(&self, data: &mut [u64]) {
        #[cfg(target_arch = "x86_64")]
        if let Some(fma) = &self.fma {
            return fma.inv(data);
        }
        self.plan.inv(data)
    }

    /// Multiplies every residue by `n^-1 mod p`.
    pub(super) fn normalize(&self, data: &mut [u64]) {
        #[cfg(target_arch = "x86_64")]
        if let Some(fma) = &self.fma {
            return fma.normalize(data);
        }
        self.plan.normalize(data)
    }

    /// `acc += a * b mod p`, residue by residue (a product in NTT form).
    pub(super) fn mul_accumulate(&self, acc: &mut [u64], a: &[u64], b: &[u64]) {
        #[cfg(target_arch = "x86_64")]
        if let Some(fma) = &self.fma {
            return fma.mul_accumulate(acc, a, b);
        }
        self.plan.mul_accumulate(acc, a, b)
    }

    /// Which path this NTT takes: without an FMA plan, tfhe-ntt's own choice (which the AVX-512 switch does
    /// not reach; no prime the RLWE code uses goes there).
    #[cfg(test)]
    pub(super) fn path(&self) -> NttPath {
        #[cfg(target_arch = "x86_64")]
        if self.fma.is_some() {
            return NttPath::Avx2Fma;
        }
        if cpu().features.contains(&"avx512ifma") { NttPath::Ifma } else { NttPath::Portable }
    }
}

#[cfg(test)]
mod tests;

/// Microseconds per forward and per inverse NTT of size `n` over one RLWE prime, on every path this machine
/// has (`SF_BENCH_MPC=ntt` in the `mpc` bench): `(path, forward, inverse)`, best of ten rounds of `reps`.
#[doc(hidden)]
pub fn bench(n: usize, reps: usize) -> Vec<(&'static str, f64, f64)> {
    use std::time::Instant;
    let p = super::modular::ntt_primes(FMA_PRIME_BITS, 1, n)[0];
    let mut paths = vec![cpu().ntt];
    #[cfg(target_arch = "x86_64")]
    if cpu().ntt == NttPath::Ifma && cpu().features.contains(&"fma") {
        paths.push(NttPath::Avx2Fma);
    }
    paths
        .into_iter()
        .filter_map(|path| Ntt::on_path(n, p, path).map(|ntt| (path, ntt)))
        .map(|(path, ntt)| {
            let mut data: Vec<u64> = (0..n as u64).map(|i| i * 0x9E37_79B9 % p).collect();
            let (mut fwd, mut inv) = (f64::MAX, f64::MAX);
            for _ in 0..10 {
                let start = Instant::now();
                (0..reps).for_each(|_| ntt.fwd(&mut data));
                fwd = fwd.min(start.elapsed().as_secs_f64() * 1e6 / reps as f64);
                let start = Instant::now();
                (0..reps).for_each(|_| ntt.inv(&mut data));
                inv = inv.min(start.elapsed().as_secs_f64() * 1e6 / reps as f64);
            }
            (path.name(), fwd, inv)
        })
        .collect()
}
