//! The machine's f32 multiply-add peak, measured: every core runs independent FMA chains
//! (12 accumulators, enough to cover the latency of two FMA units) for about a second.
//! `scripts/bench-embed.sh` reports the encoder's GFLOP/s as a share of this, since the
//! number of FMA units per core differs between CPUs of the same instruction set.
//!
//! `cargo run --release --example fma_peak` prints GFLOP/s over all cores.

use std::time::Instant;

/// Multiply-adds per lane per call: long enough to time, short enough to repeat.
const STEPS: usize = 200_000_000;
const CHAINS: usize = 12;

fn main() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let lanes = lanes();
    let start = Instant::now();
    let sink: f32 = std::thread::scope(|s| {
        let runs: Vec<_> = (0..cores).map(|_| s.spawn(run)).collect();
        runs.into_iter().map(|r| r.join().unwrap_or(0.0)).sum()
    });
    let seconds = start.elapsed().as_secs_f64();
    let flops = 2.0 * (cores * STEPS * CHAINS * lanes) as f64;
    // `sink` keeps the chains from being optimised away.
    println!(
        "{:.1} GFLOP/s f32 peak ({cores} cores, {lanes}-lane FMA){}",
        flops / seconds / 1e9,
        if sink.is_nan() { " NaN" } else { "" }
    );
}

fn lanes() -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return 16;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return 8;
        }
    }
    1
}

fn run() -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F.
            return unsafe { x86::avx512() };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has AVX2 and FMA.
            return unsafe { x86::avx2() };
        }
    }
    let mut acc = [1f32; CHAINS];
    for _ in 0..STEPS {
        for a in &mut acc {
            *a = a.mul_add(0.999_999, 1e-7);
        }
    }
    acc.iter().sum()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::STEPS;
    use std::arch::x86_64::*;

    /// Twelve chains as named variables: in an array the compiler spills some to the stack.
    macro_rules! chains {
        ($fma:ident, $m:expr, $c:expr, $start:expr) => {
            chains!($fma, $m, $c, $start; a0 a1 a2 a3 a4 a5 a6 a7 a8 a9 a10 a11)
        };
        ($fma:ident, $m:expr, $c:expr, $start:expr; $($a:ident)+) => {{
            $(let mut $a = $start;)+
            for _ in 0..STEPS {
                $($a = $fma($a, $m, $c);)+
            }
            [$($a),+]
        }};
    }

    #[target_feature(enable = "avx512f")]
    pub unsafe fn avx512() -> f32 {
        let (m, c) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
        let acc = chains!(_mm512_fmadd_ps, m, c, _mm512_set1_ps(1.0));
        acc.iter().map(|&a| _mm512_reduce_add_ps(a)).sum()
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn avx2() -> f32 {
        let (m, c) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
        let acc = chains!(_mm256_fmadd_ps, m, c, _mm256_set1_ps(1.0));
        let mut out = [0f32; 8];
        acc.iter()
            .map(|&a| {
                _mm256_storeu_ps(out.as_mut_ptr(), a);
                out.iter().sum::<f32>()
            })
            .sum()
    }
}
