//! Weight matrices repacked for many token rows at once: the CPU encoder's batches.
//!
//! [`crate::simd::rows_dot`] reads a checkpoint's weight rows in place and dots each with
//! every token row; the sums then cross SIMD lanes (a shuffle tree per 4 outputs), which is
//! right for a query's handful of tokens, where reading the weights is the cost. With
//! hundreds of token rows the arithmetic is the cost: here 16 output columns lie side by side
//! for each input position, a token's input is broadcast to every lane, and a block of 6 token
//! rows × 64 columns stays in 24 registers over a 128-input slice (whose weights stay in L1),
//! so every instruction in the loop is a load or a full-width FMA and no sum crosses lanes
//! (1.5× the tweets/s of `rows_dot` on the bundled corpus, the change alone). On a CPU with
//! AMX the same layers run on its tile units instead ([`super::amx`]), about 3× faster again.

/// Output columns per packed block: one 512-bit register of f32 sums.
const LANES: usize = 16;

/// 16 values on one cache line, so that each load of them touches one line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([f32; LANES]);

/// A dense layer `y = x · Wᵀ + b`, `W` being `out × inp` (row-major, as checkpoints store
/// it), packed for [`Packed::mul`].
pub struct Packed {
    weights: Weights,
    /// `b`: the sums start from it.
    bias: Vec<f32>,
    out: usize,
    inp: usize,
}

enum Weights {
    /// Block `b` of 16 columns holds, for each input position `k`, the 16 values
    /// `w[16b + l][k]`.
    Avx512(Vec<Line>),
    /// Tiles for the AMX units, where the CPU has them ([`super::amx`]).
    #[cfg(target_arch = "x86_64")]
    Amx(super::amx::Tiles),
}

impl Packed {
    /// `None` where the CPU lacks AVX-512F, `out` is not a multiple of 16 or the shapes
    /// disagree; callers keep [`crate::simd::rows_dot`]. On a CPU with AMX the weights are
    /// packed as tiles for it.
    pub fn pack(w: &[f32], bias: &[f32], out: usize, inp: usize) -> Option<Packed> {
        #[cfg(target_arch = "x86_64")]
        let amx = super::amx::available();
        #[cfg(not(target_arch = "x86_64"))]
        let amx = false;
        Self::pack_for(w, bias, out, inp, amx)
    }

    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
    fn pack_for(w: &[f32], bias: &[f32], out: usize, inp: usize, amx: bool) -> Option<Packed> {
        #[cfg(target_arch = "x86_64")]
        let simd = std::arch::is_x86_feature_detected!("avx512f");
        #[cfg(not(target_arch = "x86_64"))]
        let simd = false;
        if !simd
            || !out.is_multiple_of(LANES)
            || inp == 0
            || w.len() != out * inp
            || bias.len() != out
        {
            return None;
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(tiles) = amx.then(|| super::amx::Tiles::pack(w, out, inp)).flatten() {
            return Some(Packed {
                weights: Weights::Amx(tiles),
                bias: bias.to_vec(),
                out,
                inp,
            });
        }
        let mut cols = Vec::with_capacity(out / LANES * inp);
        for block in w.chunks_exact(LANES * inp) {
            for k in 0..inp {
                cols.push(Line(std::array::from_fn(|l| block[l * inp + k])));
            }
        }
        Some(Packed {
            weights: Weights::Avx512(cols),
            bias: bias.to_vec(),
            out,
            inp,
        })
    }

    /// `y[t · out + o] = x[t] · w[o] + b[o]` for every token row `t` of `x`.
    pub fn mul(&self, x: &[f32], y: &mut [f32]) {
        assert!(
            x.len().is_multiple_of(self.inp),
            "packed product: ragged input"
        );
        assert_eq!(
            y.len(),
            x.len() / self.inp * self.out,
            "packed product: output size"
        );
        match &self.weights {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: a matrix is only packed on a CPU with AVX-512F (`pack`); shapes were
            // checked above.
            Weights::Avx512(cols) => unsafe { kernels::mul(self, cols, x, y) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: tiles are only packed where `amx::available()`; shapes checked above.
            Weights::Amx(tiles) => unsafe { tiles.mul(&self.bias, x, y) },
            #[cfg(not(target_arch = "x86_64"))]
            Weights::Avx512(_) => unreachable!("matrices are only packed on x86-64"),
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod kernels {
    use super::{Line, Packed, LANES};
    // Weight loads are aligned: `Weights::Avx512` is made of 64-byte `Line`s.
    use std::arch::x86_64::*;

    /// Token rows per block; with [`STRIP`] column blocks, 24 of the 32 registers hold sums.
    const ROWS: usize = 6;
    /// 16-column blocks per strip.
    const STRIP: usize = 4;

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn mul(m: &Packed, cols: &[Line], x: &[f32], y: &mut [f32]) {
        let (inp, out) = (m.inp, m.out);
        let n = x.len() / inp;
        let blocks = out / LANES;
        let (xp, wp, yp) = (x.as_ptr(), cols.as_ptr().cast::<f32>(), y.as_mut_ptr());
        // A slice of the inputs at a time, so the part of a strip in use (4 blocks × DEPTH
        // inputs × 64 bytes) stays in the L1 cache while every token row passes.
        let mut k0 = 0;
        while k0 < inp {
            let depth = (inp - k0).min(DEPTH);
            let first = k0 == 0;
            let mut b = 0;
            while b < blocks {
                let cols = (blocks - b).min(STRIP);
                let w = wp.add((b * inp + k0) * LANES);
                let mut t = 0;
                while t < n {
                    let rows = (n - t).min(ROWS);
                    let (xt, yt) = (xp.add(t * inp + k0), yp.add(t * out + b * LANES));
                    let at = Block {
                        inp,
                        out,
                        depth,
                        first,
                        bias: m.bias.as_ptr().add(b * LANES),
                    };
                    match (rows, cols) {
                        (6, 4) => block::<6, 4>(xt, w, yt, at),
                        (5, 4) => block::<5, 4>(xt, w, yt, at),
                        (4, 4) => block::<4, 4>(xt, w, yt, at),
                        (3, 4) => block::<3, 4>(xt, w, yt, at),
                        (2, 4) => block::<2, 4>(xt, w, yt, at),
                        (1, 4) => block::<1, 4>(xt, w, yt, at),
                        (r, c) => {
                            for i in 0..r {
                                for j in 0..c {
                                    let (xi, wj) = (xt.add(i * inp), w.add(j * inp * LANES));
                                    let at = Block {
                                        bias: at.bias.add(j * LANES),
                                        ..at
                                    };
                                    block::<1, 1>(xi, wj, yt.add(i * out + j * LANES), at);
                                }
                            }
                        }
                    }
                    t += rows;
                }
                b += cols;
            }
            k0 += depth;
        }
    }

    /// Inputs per pass (see [`mul`]).
    const DEPTH: usize = 128;

    /// Strides and extent of one block's pass.
    #[derive(Clone, Copy)]
    struct Block {
        /// Row stride of `x`, and per-block stride (× 16) of the packed weights.
        inp: usize,
        /// Row stride of `y`.
        out: usize,
        /// Inputs summed in this pass.
        depth: usize,
        /// The first pass starts from the bias and writes `y`; later ones add to it.
        first: bool,
        /// The bias of the first column block.
        bias: *const f32,
    }

    /// `R` token rows against `C` consecutive column blocks, over `depth` inputs.
    #[target_feature(enable = "avx512f")]
    unsafe fn block<const R: usize, const C: usize>(
        x: *const f32,
        w: *const f32,
        y: *mut f32,
        at: Block,
    ) {
        let Block {
            inp,
            out,
            depth,
            first,
            bias,
        } = at;
        let mut acc = [[_mm512_setzero_ps(); C]; R];
        for (i, row) in acc.iter_mut().enumerate() {
            for (j, a) in row.iter_mut().enumerate() {
                *a = if first {
                    _mm512_loadu_ps(bias.add(j * LANES))
                } else {
                    _mm512_loadu_ps(y.add(i * out + j * LANES))
                };
            }
        }
        for k in 0..depth {
            let mut ws = [_mm512_setzero_ps(); C];
            for (j, v) in ws.iter_mut().enumerate() {
                *v = _mm512_load_ps(w.add((j * inp + k) * LANES));
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let xv = _mm512_set1_ps(*x.add(i * inp + k));
                for (a, &wv) in row.iter_mut().zip(&ws) {
                    *a = _mm512_fmadd_ps(xv, wv, *a);
                }
            }
        }
        for (i, row) in acc.iter().enumerate() {
            for (j, &a) in row.iter().enumerate() {
                _mm512_storeu_ps(y.add(i * out + j * LANES), a);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shape the kernels split (AVX-512: full 6 × 4 blocks, leftover rows, a leftover
    /// strip of fewer than 4 column blocks; AMX: whole and partial 16-row tiles, a lone last
    /// column block) against a plain sum, on each kernel this CPU has.
    #[test]
    fn products_match_a_plain_sum() {
        let mut seed = 7u64;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        };
        #[cfg(target_arch = "x86_64")]
        let kernels = [false, crate::embed::amx::available()];
        #[cfg(not(target_arch = "x86_64"))]
        let kernels = [false];
        for (amx, (n, out, inp)) in kernels.into_iter().flat_map(|amx| {
            [
                (1, 16, 3),
                (6, 64, 64),
                (7, 80, 96),
                (13, 48, 384),
                (16, 32, 32),
                (33, 48, 64),
                (47, 1536, 384),
            ]
            .map(|shape| (amx, shape))
        }) {
            let w: Vec<f32> = (0..out * inp).map(|_| next()).collect();
            let x: Vec<f32> = (0..n * inp).map(|_| next() * 3.0).collect();
            let bias: Vec<f32> = (0..out).map(|o| o as f32 * 0.01).collect();
            let Some(m) = Packed::pack_for(&w, &bias, out, inp, amx) else {
                eprintln!("skipped: this CPU has no AVX-512F");
                return;
            };
            let mut y = vec![f32::NAN; n * out];
            m.mul(&x, &mut y);
            for t in 0..n {
                for o in 0..out {
                    let want: f64 = (0..inp)
                        .map(|k| f64::from(x[t * inp + k]) * f64::from(w[o * inp + k]))
                        .sum::<f64>()
                        + f64::from(bias[o]);
                    let got = f64::from(y[t * out + o]);
                    // AMX products keep 16 bits of each factor (see `amx`).
                    let size: f64 = (0..inp)
                        .map(|k| f64::from(x[t * inp + k] * w[o * inp + k]).abs())
                        .sum();
                    let slack = if amx { size * 2f64.powi(-15) } else { 0.0 };
                    assert!(
                        (got - want).abs() < 1e-4 * (1.0 + want.abs()) + slack,
                        "amx {amx}, {n}×{inp} · {out}×{inp}: y[{t}][{o}] = {got}, want {want}"
                    );
                }
            }
        }
        assert!(
            Packed::pack(&[0.0; 8 * 32], &[0.0; 8], 8, 32).is_none(),
            "8 columns do not pack"
        );
    }
}
