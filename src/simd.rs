//! The dot product every similarity in tweetsim comes down to (unit vectors: dot = cosine),
//! shared by the encoder's query path, the graph, exact scans, topics and duplicates.

/// Dot product, with the widest SIMD the CPU has (checked at run time, so one binary serves
/// every x86-64): AVX-512F, else AVX2 with FMA, else a portable loop the compiler vectorises
/// for the baseline target (SSE2).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot of vectors of different lengths");
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F; lengths are equal.
            return unsafe { kernels::dot_avx512(a, b) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has AVX2 and FMA; lengths are equal.
            return unsafe { kernels::dot_avx2(a, b) };
        }
    }
    dot_portable(a, b)
}

/// Dot product of a float vector with a row of signed bytes, `Σ q[i] · c[i]`: how a graph walk
/// scores its rows' one-byte codes (the query carries the per-dimension scales). A quarter of
/// the bytes of a float row, and memory, not arithmetic, is what a walk waits on.
pub fn dot_i8(q: &[f32], c: &[i8]) -> f32 {
    assert_eq!(q.len(), c.len(), "dot of vectors of different lengths");
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F; lengths are equal.
            return unsafe { kernels::dot_i8_avx512(q, c) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has AVX2 and FMA; lengths are equal.
            return unsafe { kernels::dot_i8_avx2(q, c) };
        }
    }
    dot_i8_portable(q, c)
}

/// `y[t · out + o] = x[t] · w[o]` for every row `t` of `x` and row `o` of `w` (both row-major,
/// rows of `width`): a small batch of token rows times a weight matrix stored as checkpoints
/// store it. Four weight rows and four token rows at a time, so each load feeds four FMAs and
/// every weight row is read from memory once.
pub fn rows_dot(x: &[f32], w: &[f32], width: usize, y: &mut [f32]) {
    assert!(width > 0 && x.len().is_multiple_of(width) && w.len().is_multiple_of(width));
    let (n, out) = (x.len() / width, w.len() / width);
    assert_eq!(y.len(), n * out, "rows_dot output of the wrong size");
    #[cfg(target_arch = "x86_64")]
    {
        if width.is_multiple_of(16) && std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F; shapes were checked above.
            return unsafe { kernels::rows_dot_avx512(x, w, width, y) };
        }
    }
    for (t, xt) in x.chunks_exact(width).enumerate() {
        for (o, wo) in w.chunks_exact(width).enumerate() {
            y[t * out + o] = dot(xt, wo);
        }
    }
}

/// `y[c] = Σᵣ a[r] · b[r · stride + c]` for every `c < y.len()`: a weighted sum of rows of a
/// row-major matrix (attention's scores against transposed keys, and its weighted sum of
/// values). `y` stays in registers across all the rows.
pub fn combine_rows(a: &[f32], b: &[f32], stride: usize, y: &mut [f32]) {
    if a.is_empty() {
        y.fill(0.0);
        return;
    }
    assert!(
        y.len() <= stride && b.len() >= (a.len() - 1) * stride + y.len(),
        "combine_rows: rows out of range"
    );
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F; every row read was checked above.
            return unsafe { kernels::combine_rows_avx512(a, b, stride, y) };
        }
    }
    y.fill(0.0);
    for (r, &w) in a.iter().enumerate() {
        let row = &b[r * stride..][..y.len()];
        y.iter_mut().zip(row).for_each(|(y, &v)| *y += w * v);
    }
}

/// Softmax over a slice in place (attention's weights). With AVX-512 the exponentials are
/// computed 16 at a time (Cephes' single-precision polynomial, within 2 ulp of libm's `expf`,
/// which they replace: scalar, it was 7% of a CPU encoder's time).
pub fn softmax(xs: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F.
            return unsafe { kernels::softmax_avx512(xs) };
        }
    }
    let max = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for x in xs.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    xs.iter_mut().for_each(|x| *x /= sum);
}

/// Cephes' `expf` polynomial for e^r − 1 − r over r²: |r| ≤ ln 2 / 2 after range reduction.
const EXP_POLY: [f32; 6] = [
    0.5,
    1.666_666_5e-1,
    4.166_579_6e-2,
    8.333_452e-3,
    1.399_82e-3,
    1.987_569_1e-4,
];

/// BERT's exact GELU, `v · (1 + erf(v / √2)) / 2`, over a slice in place. With AVX-512, erf
/// is a degree-9 polynomial on each unit interval of |x| up to 4 (and 1 beyond), within 1e-7
/// of the true erf, like libm's scalar erf that it replaces (a tenth of a CPU encoder's time).
pub fn gelu(xs: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F.
            return unsafe { kernels::gelu_avx512(xs) };
        }
    }
    for v in xs {
        *v = gelu_scalar(*v);
    }
}

fn gelu_scalar(v: f32) -> f32 {
    (candle_core::cpu::erf::erf_f32(v * std::f32::consts::FRAC_1_SQRT_2) + 1.0) * 0.5 * v
}

/// erf on [k, k + 1], k = 0..3, as polynomials in x − k − ½ (lowest power first): Chebyshev
/// fits rounded to f32, printed by `scripts/fit-erf.py` (worst error 9.1e-8).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const ERF_PIECES: [[f32; 10]; 4] = [
    [
        0.5204999,
        0.8787826,
        -0.43939087,
        -0.14646406,
        0.18306488,
        0.007330313,
        -0.049862504,
        0.005335148,
        0.009162389,
        -0.001864287,
    ],
    [
        0.96610516,
        0.11893029,
        -0.17839542,
        0.13875216,
        -0.04459937,
        -0.014870165,
        0.019332862,
        -0.0047051776,
        -0.0024006695,
        0.0015482325,
    ],
    [
        0.999593,
        0.0021782843,
        -0.005445731,
        0.008350085,
        -0.008621658,
        0.006117475,
        -0.0028072046,
        5.412239e-04,
        3.0407557e-04,
        -2.4568097e-04,
    ],
    [
        0.9999993,
        5.3994286e-06,
        -1.8896722e-05,
        4.2295353e-05,
        -6.77621e-05,
        8.21203e-05,
        -7.7208846e-05,
        5.8150377e-05,
        -3.6897283e-05,
        1.5537787e-05,
    ],
];

/// Asks the CPU to start loading the first cache lines of `v` (a vector about to be dotted);
/// the hardware prefetcher follows with the rest. A hint: no effect on results.
#[inline]
pub fn prefetch(v: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    for line in v.chunks(16).take(PREFETCH_LINES) {
        // SAFETY: prefetching never faults and reads nothing back, whatever the address.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                line.as_ptr().cast(),
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}

/// [`prefetch`] for a row of bytes.
#[inline]
pub fn prefetch_bytes(v: &[i8]) {
    #[cfg(target_arch = "x86_64")]
    for line in v.chunks(64) {
        // SAFETY: as in `prefetch`.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                line.as_ptr().cast(),
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}

/// Cache lines (16 floats) of a vector requested ahead.
const PREFETCH_LINES: usize = 4;

/// 16 independent accumulators, so the loop vectorises without reassociation licence.
fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..16 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

fn dot_i8_portable(q: &[f32], c: &[i8]) -> f32 {
    let mut acc = [0f32; 16];
    let (cq, cc) = (q.chunks_exact(16), c.chunks_exact(16));
    let tail: f32 = cq
        .remainder()
        .iter()
        .zip(cc.remainder())
        .map(|(x, &y)| x * f32::from(y))
        .sum();
    for (x, y) in cq.zip(cc) {
        for i in 0..16 {
            acc[i] += x[i] * f32::from(y[i]);
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(target_arch = "x86_64")]
mod kernels {
    use std::arch::x86_64::*;

    /// Two 16-lane FMA chains (hides FMA latency at 384 dimensions), masked tail.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn dot_avx512(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len();
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let (mut s0, mut s1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
        let mut i = 0;
        while i + 32 <= n {
            s0 = _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)), s0);
            s1 = _mm512_fmadd_ps(
                _mm512_loadu_ps(pa.add(i + 16)),
                _mm512_loadu_ps(pb.add(i + 16)),
                s1,
            );
            i += 32;
        }
        while i < n {
            let left = (n - i).min(16);
            let mask: __mmask16 = ((1u32 << left) - 1) as __mmask16;
            s0 = _mm512_fmadd_ps(
                _mm512_maskz_loadu_ps(mask, pa.add(i)),
                _mm512_maskz_loadu_ps(mask, pb.add(i)),
                s0,
            );
            i += left;
        }
        _mm512_reduce_add_ps(_mm512_add_ps(s0, s1))
    }

    /// Sixteen bytes widened to floats per step, two FMA chains, scalar tail.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn dot_i8_avx512(q: &[f32], c: &[i8]) -> f32 {
        let n = q.len();
        let (pq, pc) = (q.as_ptr(), c.as_ptr());
        let codes =
            |i: usize| _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(pc.add(i).cast())));
        let (mut s0, mut s1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
        let mut i = 0;
        while i + 32 <= n {
            s0 = _mm512_fmadd_ps(_mm512_loadu_ps(pq.add(i)), codes(i), s0);
            s1 = _mm512_fmadd_ps(_mm512_loadu_ps(pq.add(i + 16)), codes(i + 16), s1);
            i += 32;
        }
        if i + 16 <= n {
            s0 = _mm512_fmadd_ps(_mm512_loadu_ps(pq.add(i)), codes(i), s0);
            i += 16;
        }
        let mut sum = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
        while i < n {
            sum += *pq.add(i) * f32::from(*pc.add(i));
            i += 1;
        }
        sum
    }

    /// Max, then exponentials and their sum, then the division, 16 lanes at a time with a
    /// masked tail.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn softmax_avx512(xs: &mut [f32]) {
        let (p, n) = (xs.as_mut_ptr(), xs.len());
        let mask_at = |i: usize| -> __mmask16 { ((1u32 << (n - i).min(16)) - 1) as __mmask16 };
        let mut max = _mm512_set1_ps(f32::NEG_INFINITY);
        let mut i = 0;
        while i < n {
            let v = _mm512_mask_loadu_ps(max, mask_at(i), p.add(i));
            max = _mm512_max_ps(max, v);
            i += 16;
        }
        let max = _mm512_set1_ps(_mm512_reduce_max_ps(max));
        let mut sum = _mm512_setzero_ps();
        i = 0;
        while i < n {
            let mask = mask_at(i);
            let e = exp(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, p.add(i)), max));
            _mm512_mask_storeu_ps(p.add(i), mask, e);
            sum = _mm512_mask_add_ps(sum, mask, sum, e);
            i += 16;
        }
        let inv = _mm512_set1_ps(1.0 / _mm512_reduce_add_ps(sum));
        i = 0;
        while i < n {
            let mask = mask_at(i);
            let v = _mm512_maskz_loadu_ps(mask, p.add(i));
            _mm512_mask_storeu_ps(p.add(i), mask, _mm512_mul_ps(v, inv));
            i += 16;
        }
    }

    /// e^x for x ≤ 0 (softmax's shifted scores): x = k·ln 2 + r, e^r by [`super::EXP_POLY`],
    /// times 2^k by `vscalefps`; below −87.3 the result is 0 (as e^x underflows anyway).
    #[target_feature(enable = "avx512f")]
    unsafe fn exp(x: __m512) -> __m512 {
        let floor = _mm512_set1_ps(-87.3);
        let live = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(x, floor);
        let x = _mm512_max_ps(x, floor);
        let k = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)),
        );
        // ln 2 in two parts (Cody–Waite), so k·ln 2 is subtracted without losing r's bits.
        let r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693_359_4), x);
        let r = _mm512_fnmadd_ps(k, _mm512_set1_ps(-2.121_944_4e-4), r);
        let c = super::EXP_POLY;
        let mut y = _mm512_set1_ps(c[5]);
        for &ci in c[..5].iter().rev() {
            y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(ci));
        }
        let r2 = _mm512_mul_ps(r, r);
        let e = _mm512_add_ps(_mm512_fmadd_ps(y, r2, r), _mm512_set1_ps(1.0));
        _mm512_maskz_mov_ps(live, _mm512_scalef_ps(e, k))
    }

    /// Up to 64 columns at a time (4 registers, the last ones masked), each over all rows in
    /// two sums, even and odd rows: one chain of FMAs per register waited on the previous
    /// FMA's result at every row (attention's rows are short, so these chains were the cost).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn combine_rows_avx512(a: &[f32], b: &[f32], stride: usize, y: &mut [f32]) {
        let mut c = 0;
        while c < y.len() {
            let block = c..(c + 64).min(y.len());
            match block.len().div_ceil(16) {
                4 => combine_block::<4>(a, b, stride, y, block),
                3 => combine_block::<3>(a, b, stride, y, block),
                2 => combine_block::<2>(a, b, stride, y, block),
                _ => combine_block::<1>(a, b, stride, y, block),
            }
            c += 64;
        }
    }

    /// Columns `cols` (at most `16 · C`) of [`super::combine_rows`].
    #[target_feature(enable = "avx512f")]
    unsafe fn combine_block<const C: usize>(
        a: &[f32],
        b: &[f32],
        stride: usize,
        y: &mut [f32],
        cols: std::ops::Range<usize>,
    ) {
        let (pb, py) = (b.as_ptr(), y.as_mut_ptr());
        let masks: [__mmask16; C] = std::array::from_fn(|j| {
            let left = cols.len().saturating_sub(16 * j).min(16);
            ((1u32 << left) - 1) as __mmask16
        });
        let row = |r: usize, j: usize| {
            _mm512_maskz_loadu_ps(masks[j], pb.add(r * stride + cols.start + 16 * j))
        };
        let mut even = [_mm512_setzero_ps(); C];
        let mut odd = [_mm512_setzero_ps(); C];
        let mut pairs = a.chunks_exact(2);
        for (r, pair) in pairs.by_ref().enumerate() {
            let (w0, w1) = (_mm512_set1_ps(pair[0]), _mm512_set1_ps(pair[1]));
            for j in 0..C {
                even[j] = _mm512_fmadd_ps(w0, row(2 * r, j), even[j]);
                odd[j] = _mm512_fmadd_ps(w1, row(2 * r + 1, j), odd[j]);
            }
        }
        if let [w] = pairs.remainder() {
            let w = _mm512_set1_ps(*w);
            for (j, e) in even.iter_mut().enumerate() {
                *e = _mm512_fmadd_ps(w, row(a.len() - 1, j), *e);
            }
        }
        for j in 0..C {
            let sum = _mm512_add_ps(even[j], odd[j]);
            _mm512_mask_storeu_ps(py.add(cols.start + 16 * j), masks[j], sum);
        }
    }

    /// 4 × 4 blocks of (token row, weight row) pairs in 16 accumulators; leftover rows
    /// and columns one pair at a time. `width` is a multiple of 16.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn rows_dot_avx512(x: &[f32], w: &[f32], width: usize, y: &mut [f32]) {
        let (n, out) = (x.len() / width, w.len() / width);
        let (px, pw) = (x.as_ptr(), w.as_ptr());
        let mut o = 0;
        while o < out {
            let wo = (out - o).min(4);
            let mut t = 0;
            while t < n {
                let tn = (n - t).min(4);
                if wo == 4 && tn == 4 {
                    let mut acc = [_mm512_setzero_ps(); 16];
                    let mut k = 0;
                    while k < width {
                        let ws = [0, 1, 2, 3].map(|j| _mm512_loadu_ps(pw.add((o + j) * width + k)));
                        for i in 0..4 {
                            let xv = _mm512_loadu_ps(px.add((t + i) * width + k));
                            for j in 0..4 {
                                acc[i * 4 + j] = _mm512_fmadd_ps(xv, ws[j], acc[i * 4 + j]);
                            }
                        }
                        k += 16;
                    }
                    for i in 0..4 {
                        let sums = sum4(&acc[i * 4..i * 4 + 4]);
                        _mm_storeu_ps(y.as_mut_ptr().add((t + i) * out + o), sums);
                    }
                } else {
                    for i in t..t + tn {
                        for j in o..o + wo {
                            y[i * out + j] = dot_avx512(
                                &x[i * width..(i + 1) * width],
                                &w[j * width..(j + 1) * width],
                            );
                        }
                    }
                }
                t += tn;
            }
            o += wo;
        }
    }

    /// The lane sums of four vectors, as one 4-lane vector: the halves of all four are
    /// folded together (shuffles across 128-bit lanes, then within them) instead of reducing
    /// each one on its own, which took a third of the time of a 384-wide dot product.
    #[target_feature(enable = "avx512f")]
    unsafe fn sum4(v: &[__m512]) -> __m128 {
        // [a0+a2, a1+a3 | b0+b2, b1+b3] in 128-bit lanes, for the pairs (v0, v1) and (v2, v3).
        let fold = |a: __m512, b: __m512| {
            _mm512_add_ps(
                _mm512_shuffle_f32x4::<0b01_00_01_00>(a, b),
                _mm512_shuffle_f32x4::<0b11_10_11_10>(a, b),
            )
        };
        let (p, q) = (fold(v[0], v[1]), fold(v[2], v[3]));
        // Lane k now holds four partial sums of v[k].
        let t = _mm512_add_ps(
            _mm512_shuffle_f32x4::<0b10_00_10_00>(p, q),
            _mm512_shuffle_f32x4::<0b11_01_11_01>(p, q),
        );
        // Sum within each lane: every element of lane k becomes the total of v[k].
        let u = _mm512_add_ps(t, _mm512_permute_ps::<0b10_11_00_01>(t));
        let u = _mm512_add_ps(u, _mm512_permute_ps::<0b01_00_11_10>(u));
        let first = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 8, 4, 0);
        _mm512_castps512_ps128(_mm512_permutexvar_ps(first, u))
    }

    /// [`super::gelu`] 16 lanes at a time: each lane's piece of the polynomial is picked by
    /// its interval (coefficients permuted out of registers, no gathers); the tail is masked.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn gelu_avx512(xs: &mut [f32]) {
        let (p, n) = (xs.as_mut_ptr(), xs.len());
        let sign = _mm512_set1_epi32(i32::MIN);
        // Lane k of `coef[c]` holds coefficient c of piece k.
        let coef: [__m512; 10] = std::array::from_fn(|c| {
            let mut lanes = [0f32; 16];
            for (k, piece) in super::ERF_PIECES.iter().enumerate() {
                lanes[k] = piece[c];
            }
            _mm512_loadu_ps(lanes.as_ptr())
        });
        let last = _mm512_set1_epi32(super::ERF_PIECES.len() as i32 - 1);
        let end = _mm512_set1_ps(super::ERF_PIECES.len() as f32);
        let mut i = 0;
        while i < n {
            let mask: __mmask16 = ((1u32 << (n - i).min(16)) - 1) as __mmask16;
            let v = _mm512_maskz_loadu_ps(mask, p.add(i));
            let x = _mm512_mul_ps(v, _mm512_set1_ps(std::f32::consts::FRAC_1_SQRT_2));
            let a = _mm512_min_ps(_mm512_abs_ps(x), end);
            let piece = _mm512_min_epi32(_mm512_cvttps_epi32(a), last);
            let t = _mm512_sub_ps(
                a,
                _mm512_add_ps(_mm512_cvtepi32_ps(piece), _mm512_set1_ps(0.5)),
            );
            let mut y = _mm512_permutexvar_ps(piece, coef[9]);
            for c in coef[..9].iter().rev() {
                y = _mm512_fmadd_ps(y, t, _mm512_permutexvar_ps(piece, *c));
            }
            // Beyond the last piece erf is 1 to float precision.
            let inside = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, end);
            let erf = _mm512_mask_blend_ps(inside, _mm512_set1_ps(1.0), y);
            // erf is odd: give it the sign of x.
            let signed = _mm512_or_si512(
                _mm512_castps_si512(erf),
                _mm512_and_si512(_mm512_castps_si512(x), sign),
            );
            let erf = _mm512_castsi512_ps(signed);
            let g = _mm512_mul_ps(
                _mm512_mul_ps(v, _mm512_set1_ps(0.5)),
                _mm512_add_ps(erf, _mm512_set1_ps(1.0)),
            );
            _mm512_mask_storeu_ps(p.add(i), mask, g);
            i += 16;
        }
    }

    /// Four 8-lane FMA chains, scalar tail.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len();
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut s = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 32 <= n {
            for (j, acc) in s.iter_mut().enumerate() {
                let o = i + 8 * j;
                *acc =
                    _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(o)), _mm256_loadu_ps(pb.add(o)), *acc);
            }
            i += 32;
        }
        while i + 8 <= n {
            s[0] = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), s[0]);
            i += 8;
        }
        let v = _mm256_add_ps(_mm256_add_ps(s[0], s[1]), _mm256_add_ps(s[2], s[3]));
        let mut lanes = [0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), v);
        let mut sum: f32 = lanes.iter().sum();
        while i < n {
            sum += *pa.add(i) * *pb.add(i);
            i += 1;
        }
        sum
    }

    /// Eight bytes widened to floats per step, two FMA chains, scalar tail.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot_i8_avx2(q: &[f32], c: &[i8]) -> f32 {
        let n = q.len();
        let (pq, pc) = (q.as_ptr(), c.as_ptr());
        let codes =
            |i: usize| _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(pc.add(i).cast())));
        let (mut s0, mut s1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut i = 0;
        while i + 16 <= n {
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(pq.add(i)), codes(i), s0);
            s1 = _mm256_fmadd_ps(_mm256_loadu_ps(pq.add(i + 8)), codes(i + 8), s1);
            i += 16;
        }
        let mut lanes = [0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), _mm256_add_ps(s0, s1));
        let mut sum: f32 = lanes.iter().sum();
        while i < n {
            sum += *pq.add(i) * f32::from(*pc.add(i));
            i += 1;
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kernel this CPU can run, at lengths around each one's block sizes.
    #[test]
    fn every_dot_kernel_matches_the_plain_sum() {
        for n in [0, 1, 7, 8, 15, 16, 17, 31, 32, 33, 37, 64, 100, 384, 385] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            let close = |got: f32, what: &str| {
                assert!(
                    (got - plain).abs() <= 1e-4 * (1.0 + plain.abs()),
                    "{what} n={n}: {got} vs {plain}"
                )
            };
            close(dot(&a, &b), "dispatch");
            close(dot_portable(&a, &b), "portable");
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx512f") {
                    close(unsafe { kernels::dot_avx512(&a, &b) }, "avx512");
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    close(unsafe { kernels::dot_avx2(&a, &b) }, "avx2");
                }
            }
        }
    }

    /// Every byte-row kernel this CPU can run, at lengths around each one's block sizes.
    #[test]
    fn every_byte_dot_kernel_matches_the_plain_sum() {
        for n in [0, 1, 7, 8, 15, 16, 17, 31, 32, 33, 48, 100, 384, 385] {
            let q: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let c: Vec<i8> = (0..n).map(|i| ((i * 89) % 255 - 127) as i8).collect();
            let plain: f32 = q.iter().zip(&c).map(|(x, &y)| x * f32::from(y)).sum();
            let close = |got: f32, what: &str| {
                assert!(
                    (got - plain).abs() <= 1e-4 * (1.0 + plain.abs()),
                    "{what} n={n}: {got} vs {plain}"
                )
            };
            close(dot_i8(&q, &c), "dispatch");
            close(dot_i8_portable(&q, &c), "portable");
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx512f") {
                    close(unsafe { kernels::dot_i8_avx512(&q, &c) }, "avx512");
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    close(unsafe { kernels::dot_i8_avx2(&q, &c) }, "avx2");
                }
            }
        }
    }

    /// Within 1e-6 of the scalar GELU (libm's erf) over the range activations take, and
    /// exact in the flat tails.
    #[test]
    fn gelu_matches_the_scalar_one() {
        let mut xs: Vec<f32> = (-40_000..=40_000).map(|i| i as f32 * 2.5e-4).collect();
        xs.extend([-1e4, -30.0, -6.0, 6.0, 30.0, 1e4, 0.0, -0.0]);
        let want: Vec<f32> = xs.iter().map(|&v| gelu_scalar(v)).collect();
        gelu(&mut xs);
        for (i, (g, w)) in xs.iter().zip(&want).enumerate() {
            assert!((g - w).abs() <= 1e-6 * (1.0 + w.abs()), "{i}: {g} vs {w}");
        }
    }

    #[test]
    fn softmax_matches_libm() {
        for n in [1, 5, 16, 47, 100] {
            let xs: Vec<f32> = (0..n)
                .map(|i| ((i * 37 % 23) as f32 - 11.0) * 1.7)
                .collect();
            let mut got = xs.clone();
            softmax(&mut got);
            let max = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let e: Vec<f64> = xs.iter().map(|&x| f64::from(x - max).exp()).collect();
            let total: f64 = e.iter().sum();
            for (i, (&g, &w)) in got.iter().zip(&e).enumerate() {
                let w = w / total;
                assert!(
                    (f64::from(g) - w).abs() <= 4e-7 * w + 1e-30,
                    "n {n}, element {i}: {g} vs {w}"
                );
            }
        }
        let mut far = [0.0f32, -200.0];
        softmax(&mut far);
        assert_eq!(far, [1.0, 0.0]);
    }

    #[test]
    fn combine_rows_matches_the_plain_sum() {
        for (rows, stride, width) in [
            (1, 16, 16),
            (3, 40, 33),
            (47, 47, 47),
            (5, 384, 32),
            (0, 8, 8),
            (2, 128, 100),
            (6, 200, 64),
        ] {
            let a: Vec<f32> = (0..rows).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..rows.max(1) * stride)
                .map(|i| (i as f32 * 0.11).cos())
                .collect();
            let mut y = vec![f32::NAN; width];
            combine_rows(&a, &b, stride, &mut y);
            for (c, &got) in y.iter().enumerate() {
                let want: f32 = (0..rows).map(|r| a[r] * b[r * stride + c]).sum();
                assert!(
                    (got - want).abs() < 1e-4,
                    "{rows}×{stride}, column {c}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn rows_dot_matches_dot_for_every_shape() {
        for width in [16, 32, 48, 384, 7, 17] {
            for n in 1..10 {
                for out in [1, 3, 4, 5, 8, 9] {
                    let x: Vec<f32> = (0..n * width).map(|i| (i as f32 * 0.37).sin()).collect();
                    let w: Vec<f32> = (0..out * width).map(|i| (i as f32 * 0.11).cos()).collect();
                    let mut y = vec![f32::NAN; n * out];
                    rows_dot(&x, &w, width, &mut y);
                    for t in 0..n {
                        for o in 0..out {
                            let want = dot(&x[t * width..][..width], &w[o * width..][..width]);
                            let got = y[t * out + o];
                            assert!(
                                (got - want).abs() <= 1e-4 * (1.0 + want.abs()),
                                "width {width} n {n} out {out} ({t}, {o}): {got} vs {want}"
                            );
                        }
                    }
                }
            }
        }
    }
}
