//! What the CPU offers the hot code, detected once per process, and the switch that hides AVX-512 so a machine
//! that has it can run (and measure) the code paths of one that does not.
//!
//! `SF_DISABLE_AVX512=1` (read once, at first use): every kernel of ours that picks its code by CPU feature
//! takes its AVX2 path. Today that is the lattice code's NTTs ([`crate::mpc`]'s RLWE products). Dependencies
//! that detect features themselves (the `aes` crate's VAES, BLAKE3, curve25519-dalek) still use what they find.

use std::sync::OnceLock;

/// The environment variable that hides AVX-512 from our kernels.
pub const DISABLE_AVX512_ENV: &str = "SF_DISABLE_AVX512";

/// How the NTTs of the RLWE products run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NttPath {
    /// tfhe-ntt's AVX-512 IFMA kernels (52-bit integer multiply-add).
    Ifma,
    /// Our kernels over `f64` lanes with AVX2 and FMA (exact for primes below 2^49).
    Avx2Fma,
    /// tfhe-ntt's own choice on a CPU with neither (its portable code).
    Portable,
}

impl NttPath {
    /// The name printed by benchmarks and the start-up log.
    pub fn name(self) -> &'static str {
        match self {
            NttPath::Ifma => "avx512ifma",
            NttPath::Avx2Fma => "avx2+fma",
            NttPath::Portable => "portable",
        }
    }
}

/// The CPU as our kernels see it.
#[derive(Clone, Debug)]
pub struct Cpu {
    /// The model name (`/proc/cpuinfo`), or `unknown`.
    pub model: String,
    /// Features our kernels can use, as detected (before the switch).
    pub features: Vec<&'static str>,
    /// Whether `SF_DISABLE_AVX512` hides AVX-512.
    pub avx512_disabled: bool,
    /// The NTT path every RLWE product of this process takes.
    pub ntt: NttPath,
}

impl Cpu {
    fn detect() -> Cpu {
        let avx512_disabled = std::env::var(DISABLE_AVX512_ENV).is_ok_and(|v| !v.is_empty() && v != "0");
        let features = detected_features();
        let has = |f: &str| features.contains(&f);
        let ntt = if has("avx512ifma") && !avx512_disabled {
            NttPath::Ifma
        } else if has("avx2") && has("fma") {
            NttPath::Avx2Fma
        } else {
            NttPath::Portable
        };
        Cpu { model: model_name(), features, avx512_disabled, ntt }
    }

    /// One line for logs and benchmark output: model, features, the switch, the paths taken.
    pub fn describe(&self) -> String {
        let switch = if self.avx512_disabled { ", AVX-512 disabled by SF_DISABLE_AVX512" } else { "" };
        format!("{} [{}]{}; NTT: {}", self.model, self.features.join(" "), switch, self.ntt.name())
    }
}

/// The CPU, detected on first use.
pub fn cpu() -> &'static Cpu {
    static CPU: OnceLock<Cpu> = OnceLock::new();
    CPU.get_or_init(Cpu::detect)
}

#[cfg(target_arch = "x86_64")]
fn detected_features() -> Vec<&'static str> {
    let mut found = Vec::new();
    macro_rules! probe {
        ($($f:tt),*) => {$(
            if std::is_x86_feature_detected!($f) {
                found.push($f);
            }
        )*};
    }
    probe!("aes", "avx2", "fma", "bmi2", "adx", "avx512f", "avx512ifma", "vaes");
    found
}

#[cfg(not(target_arch = "x86_64"))]
fn detected_features() -> Vec<&'static str> {
    Vec::new()
}

fn model_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".to_string())
}
