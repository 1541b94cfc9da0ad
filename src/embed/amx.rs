//! Dense layers on AMX tiles (Intel Xeon since Sapphire Rapids): one `tdpbf16ps` multiplies a
//! 16 × 32 block of bf16 inputs by a 32 × 16 block of bf16 weights into 16 × 16 f32 sums,
//! about 16× the arithmetic of an AVX-512 FMA per cycle.
//!
//! bf16 keeps 8 bits of mantissa, too few to stay with sentence-transformers' f32 vectors, so
//! every input and weight is split into a bf16 and the bf16 of what remains (`v ≈ hi + lo`,
//! 16 bits together) and each product is taken three times, `hi·hi + hi·lo + lo·hi` (`lo·lo` is
//! below f32 rounding of the sums): vectors agree with the AVX-512 path to float rounding
//! (the fidelity tests run on whichever path the CPU has).

use std::arch::asm;
use std::sync::OnceLock;

/// Rows of a tile (tokens for inputs and sums; pairs of inputs for weights).
const ROWS: usize = 16;
/// Inputs per tile row: 64 bytes of bf16.
const DEPTH: usize = 32;
/// Output columns per tile.
const COLS: usize = 16;

/// `tileloadd tmmT, [ptr + stride]`.
macro_rules! load {
    ($t:literal, $ptr:expr, $stride:expr) => {
        asm!(
            concat!("tileloadd tmm", $t, ", [{p} + {s}*1]"),
            p = in(reg) $ptr,
            s = in(reg) $stride,
            options(nostack, readonly, preserves_flags)
        )
    };
}
/// `tilestored [ptr + stride], tmmT`.
macro_rules! store {
    ($t:literal, $ptr:expr, $stride:expr) => {
        asm!(
            concat!("tilestored [{p} + {s}*1], tmm", $t),
            p = in(reg) $ptr,
            s = in(reg) $stride,
            options(nostack, preserves_flags)
        )
    };
}
/// `tmmC += tmmA · tmmB` (bf16 pairs, f32 sums).
macro_rules! dot {
    ($c:literal, $a:literal, $b:literal) => {
        asm!(
            concat!("tdpbf16ps tmm", $c, ", tmm", $a, ", tmm", $b),
            options(nostack, nomem, preserves_flags)
        )
    };
}

/// `tmmC += (tmm4 + tmm5) · (hi + lo)` for the weight tile pair at `w`, inputs' hi and lo
/// halves in `tmm4`/`tmm5`: loads the pair into `tmm6`/`tmm7`, then hi·hi + hi·lo + lo·hi.
macro_rules! split_product {
    ($c:literal, $w:expr) => {{
        let w: *const Tile = $w;
        load!(6, w, 64usize);
        load!(7, w.add(1), 64usize);
        dot!($c, 4, 6);
        dot!($c, 4, 7);
        dot!($c, 5, 6);
    }};
}

/// One tile's data: 16 rows of 64 bytes.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Tile([u16; ROWS * DEPTH]);

/// Whether this CPU has AMX with bf16 and the kernel lets this process use the tile registers
/// (Linux asks each process to request them). `TWEETSIM_AMX=off` keeps the AVX-512 path.
pub(super) fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        if std::env::var("TWEETSIM_AMX").is_ok_and(|v| v == "off" || v == "0") {
            return false;
        }
        os::request_tiles()
    })
}

/// A dense layer's weights as AMX tiles: for column block `b` and input block `k`, the tile
/// pair (hi, lo) at `2 · (b · blocks_in + k)`. Row `r` of a tile holds, for each of its 16
/// output columns `c`, the weights of inputs `32k + 2r` and `32k + 2r + 1` side by side (the
/// pairs `tdpbf16ps` multiplies).
pub(super) struct Tiles {
    tiles: Vec<Tile>,
    out: usize,
    inp: usize,
}

impl Tiles {
    /// `None` unless `out` is a multiple of 16 and `inp` of 32.
    pub(super) fn pack(w: &[f32], out: usize, inp: usize) -> Option<Tiles> {
        if !out.is_multiple_of(COLS) || !inp.is_multiple_of(DEPTH) || w.len() != out * inp {
            return None;
        }
        let blocks_in = inp / DEPTH;
        let mut tiles = Vec::with_capacity(2 * out / COLS * blocks_in);
        for b in 0..out / COLS {
            for k in 0..blocks_in {
                let (mut hi, mut lo) = (Tile([0; ROWS * DEPTH]), Tile([0; ROWS * DEPTH]));
                for r in 0..ROWS {
                    for c in 0..COLS {
                        for e in 0..2 {
                            let v = w[(b * COLS + c) * inp + k * DEPTH + 2 * r + e];
                            let (h, l) = split(v);
                            hi.0[r * DEPTH + 2 * c + e] = h;
                            lo.0[r * DEPTH + 2 * c + e] = l;
                        }
                    }
                }
                tiles.push(hi);
                tiles.push(lo);
            }
        }
        Some(Tiles { tiles, out, inp })
    }

    /// `y[t · out + o] = x[t] · w[o] + bias[o]` for every token row `t` of `x`.
    ///
    /// Four column tiles at a time share each pair of input tiles: 4 sums, 2 input and 2
    /// weight tiles fill the 8 tile registers, and 12 products run per 10 tile loads (the
    /// loads, not the products, are what limits a tile kernel).
    ///
    /// # Safety
    /// [`available`] returned true; `bias.len() == out`, `x.len()` is a multiple of `inp` and
    /// `y.len() == x.len() / inp · out`.
    pub(super) unsafe fn mul(&self, bias: &[f32], x: &[f32], y: &mut [f32]) {
        let (out, inp) = (self.out, self.inp);
        let n = x.len() / inp;
        let row_tiles = n.div_ceil(ROWS);
        let blocks_in = inp / DEPTH;
        let (xh, xl) = split_into_tiles(x, inp, row_tiles);
        // Whole tiles of sums go straight to `y`; the last, partial one through a scratch.
        let whole = n / ROWS;
        let mut tail = vec![0f32; if whole < row_tiles { ROWS * out } else { 0 }];
        let y_stride = out * 4;
        let config = Config::all_full();
        asm!("ldtilecfg [{}]", in(reg) &config, options(nostack, readonly, preserves_flags));
        let col_tiles = out / COLS;
        let mut b = 0;
        while b < col_tiles {
            let four = b + 4 <= col_tiles;
            for t in 0..row_tiles {
                let yt = if t < whole {
                    y.as_mut_ptr().add(t * ROWS * out)
                } else {
                    tail.as_mut_ptr()
                };
                let bias = bias.as_ptr().add(b * COLS);
                let x_tiles = (
                    xh.as_ptr().add(t * blocks_in),
                    xl.as_ptr().add(t * blocks_in),
                );
                let w = self.tiles.as_ptr().add(2 * b * blocks_in);
                if four {
                    columns::<4>(bias, x_tiles, w, blocks_in, yt.add(b * COLS), y_stride);
                } else {
                    columns::<1>(bias, x_tiles, w, blocks_in, yt.add(b * COLS), y_stride);
                }
            }
            b += if four { 4 } else { 1 };
        }
        asm!("tilerelease", options(nostack, nomem, preserves_flags));
        if whole < row_tiles {
            let rows = n - whole * ROWS;
            y[whole * ROWS * out..].copy_from_slice(&tail[..rows * out]);
        }
    }
}

/// One row tile against `C` column tiles (4, or 1 for a last one on its own): `tmm0..C` hold
/// the sums, `tmm4/5` the input's hi and lo halves, `tmm6/7` one column's weight halves.
///
/// # Safety
/// The tile configuration is loaded; `w` points at column tile `b`'s first tile pair and `C`
/// column tiles follow (`blocks` pairs each); `x` at the row tile's first hi and lo tiles.
unsafe fn columns<const C: usize>(
    bias: *const f32,
    (xh, xl): (*const Tile, *const Tile),
    w: *const Tile,
    blocks: usize,
    y: *mut f32,
    y_stride: usize,
) {
    const { assert!(C == 1 || C == 4) };
    // Sums start from the bias: a stride of 0 repeats its row down the tile.
    load!(0, bias, 0usize);
    if C == 4 {
        load!(1, bias.add(COLS), 0usize);
        load!(2, bias.add(2 * COLS), 0usize);
        load!(3, bias.add(3 * COLS), 0usize);
    }
    for k in 0..blocks {
        load!(4, xh.add(k), 64usize);
        load!(5, xl.add(k), 64usize);
        let w = w.add(2 * k);
        split_product!(0, w);
        if C == 4 {
            split_product!(1, w.add(2 * blocks));
            split_product!(2, w.add(4 * blocks));
            split_product!(3, w.add(6 * blocks));
        }
    }
    store!(0, y, y_stride);
    if C == 4 {
        store!(1, y.add(COLS), y_stride);
        store!(2, y.add(2 * COLS), y_stride);
        store!(3, y.add(3 * COLS), y_stride);
    }
}

/// The inputs as hi and lo bf16 tiles: row tile `t`, input block `k` at `t · blocks + k`,
/// each 16 token rows of 32 inputs; rows past the last token are zero.
fn split_into_tiles(x: &[f32], inp: usize, row_tiles: usize) -> (Vec<Tile>, Vec<Tile>) {
    let blocks = inp / DEPTH;
    let n = x.len() / inp;
    let mut hi: Vec<Tile> = Vec::with_capacity(row_tiles * blocks);
    let mut lo: Vec<Tile> = Vec::with_capacity(row_tiles * blocks);
    // SAFETY: every element of the first `row_tiles · blocks` tiles is written below before
    // the lengths are set (zero rows past the last token, split values elsewhere).
    unsafe {
        let (hp, lp) = (hi.as_mut_ptr().cast::<u16>(), lo.as_mut_ptr().cast::<u16>());
        for row in 0..row_tiles * ROWS {
            let (t, r) = (row / ROWS, row % ROWS);
            for k in 0..blocks {
                let at = ((t * blocks + k) * ROWS + r) * DEPTH;
                if row < n {
                    split_32(
                        x.as_ptr().add(row * inp + k * DEPTH),
                        hp.add(at),
                        lp.add(at),
                    );
                } else {
                    hp.add(at).write_bytes(0, DEPTH);
                    lp.add(at).write_bytes(0, DEPTH);
                }
            }
        }
        hi.set_len(row_tiles * blocks);
        lo.set_len(row_tiles * blocks);
    }
    (hi, lo)
}

/// [`split`] on 32 consecutive values.
///
/// # Safety
/// The CPU has AVX-512BW ([`available`] checks it); 32 values readable at `x`, 32 writable at
/// `hi` and `lo`.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn split_32(x: *const f32, hi: *mut u16, lo: *mut u16) {
    use std::arch::x86_64::*;
    // Round to nearest even: add 0x7fff plus the lowest kept bit, keep the top 16 bits.
    let round = |v: __m512| {
        let b = _mm512_castps_si512(v);
        let odd = _mm512_and_si512(_mm512_srli_epi32::<16>(b), _mm512_set1_epi32(1));
        let up = _mm512_add_epi32(b, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), odd));
        _mm512_and_si512(up, _mm512_set1_epi32(0xffff_0000u32 as i32))
    };
    for half in 0..2 {
        let v = _mm512_loadu_ps(x.add(16 * half));
        let h = round(v);
        let l = round(_mm512_sub_ps(v, _mm512_castsi512_ps(h)));
        let pack = |bits: __m512i| _mm512_cvtepi32_epi16(_mm512_srli_epi32::<16>(bits));
        _mm256_storeu_si256(hi.add(16 * half).cast(), pack(h));
        _mm256_storeu_si256(lo.add(16 * half).cast(), pack(l));
    }
}

/// The tile configuration `ldtilecfg` reads: palette 1, every tile 16 rows of 64 bytes.
#[repr(C, align(64))]
struct Config {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    bytes_per_row: [u16; 16],
    rows: [u8; 16],
}

impl Config {
    fn all_full() -> Config {
        let mut c = Config {
            palette: 1,
            start_row: 0,
            reserved: [0; 14],
            bytes_per_row: [0; 16],
            rows: [0; 16],
        };
        for t in 0..8 {
            c.bytes_per_row[t] = (DEPTH * 2) as u16;
            c.rows[t] = ROWS as u8;
        }
        c
    }
}

/// `v` as the bf16 nearest to it and the bf16 nearest to the rest.
fn split(v: f32) -> (u16, u16) {
    let hi = to_bf16(v);
    (hi, to_bf16(v - f32::from_bits(u32::from(hi) << 16)))
}

/// Round to nearest, ties to even (inputs are finite).
fn to_bf16(v: f32) -> u16 {
    let b = v.to_bits();
    (b.wrapping_add(0x7fff + ((b >> 16) & 1)) >> 16) as u16
}

#[cfg(target_os = "linux")]
mod os {
    /// `arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`: without it the first tile
    /// instruction faults.
    pub(super) fn request_tiles() -> bool {
        const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
        const XFEATURE_XTILEDATA: libc::c_long = 18;
        // CPUID leaf 7: EDX bit 22 AMX-BF16, bit 24 AMX-TILE; AVX-512BW for `split_all`.
        let leaf7 = std::arch::x86_64::__cpuid_count(7, 0);
        let amx = leaf7.edx & (1 << 22) != 0 && leaf7.edx & (1 << 24) != 0;
        if !amx || !std::arch::is_x86_feature_detected!("avx512bw") {
            return false;
        }
        // SAFETY: a plain system call with integer arguments.
        unsafe {
            libc::syscall(
                libc::SYS_arch_prctl,
                ARCH_REQ_XCOMP_PERM,
                XFEATURE_XTILEDATA,
            ) == 0
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod os {
    /// Other systems: not tried (each has its own way to grant the tile state).
    pub(super) fn request_tiles() -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_splits_into_two_bf16_that_keep_16_bits() {
        for v in [1.0f32, -3.7, 1e-3, 123456.79, 0.0] {
            let (h, l) = split(v);
            let back = f32::from_bits(u32::from(h) << 16) + f32::from_bits(u32::from(l) << 16);
            assert!(
                (back - v).abs() <= v.abs() * 2f32.powi(-16),
                "{v} -> {back}"
            );
        }
        assert_eq!(to_bf16(1.0), 0x3f80);
        // Ties go to even: 1 + 2^-8 lies halfway between 1 and 1 + 2^-7.
        assert_eq!(to_bf16(1.0 + 2f32.powi(-8)), 0x3f80);
    }

    #[test]
    fn the_vector_split_matches_the_scalar_one() {
        if !available() {
            eprintln!("skipped: no AMX here");
            return;
        }
        let x: Vec<f32> = (0..32)
            .map(|i| (i as f32 - 15.5) * 0.37 + (i as f32).sin() * 1e-3)
            .collect();
        let (mut hi, mut lo) = ([0u16; 32], [0u16; 32]);
        // SAFETY: AMX machines have AVX-512BW (`available`); 32 values each.
        unsafe { split_32(x.as_ptr(), hi.as_mut_ptr(), lo.as_mut_ptr()) };
        for i in 0..32 {
            assert_eq!((hi[i], lo[i]), split(x[i]), "x[{i}] = {}", x[i]);
        }
    }
}
