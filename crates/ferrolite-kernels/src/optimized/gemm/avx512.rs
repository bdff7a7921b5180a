//! `f32_gemm_{1..8}x32_avx512`: the float GEMM's AVX-512 micro-kernels over
//! the same 16-column panels as the AVX2 ones. A panel row is one 512-bit
//! register, and a tile covers two panels (32 columns) so each broadcast
//! activation feeds two FMAs: 6 rows x 2 panels = 12 accumulators, 2
//! weight loads and 6 broadcasts per depth step; 8 rows (16 sums) from a
//! depth of [`DEEP`]. An odd last panel runs as a one-panel tile, and a
//! run of one panel in tiles of up to 12 rows (`f32_gemm_{M}x16`).
//!
//! Each output lane starts from its bias and adds one fused product per
//! depth step in depth order, exactly as the AVX2 and NEON kernels do, so
//! every level gives the same bits. A GEMM of one row (GEMV) keeps the AVX2
//! kernel (its unrolled summation order is documented there).

use super::{check_block, row_tiles, ARows, Epilogue, MicroKernel, NR};
use crate::optimized::isa::{Avx2Fma, Avx512};
use std::arch::x86_64::*;

/// Rows per tile where the run is one panel.
const TALL_MR: usize = 12;

/// Rows per tile of a deep GEMM (at least [`DEEP`]): 8 x 32, 16 sums.
const DEEP_MR: usize = 8;

/// Depth from which tiles are [`DEEP_MR`] rows high: 8 broadcasts and 2
/// weight loads per 16 FMAs, against 6 and 2 per 12, and a 7x7 layer's
/// 49 rows go as seven 7-row tiles rather than 6,6,6,6,5,5,5,5,5.
/// Inception's 3x3 convs of depth 2592-4032 and the 7x7 1x1 convs ran
/// 4-6% faster so; shallow GEMMs (depth 16-27) 3-6% slower.
const DEEP: usize = 128;

impl MicroKernel for Avx512 {
    const MR: usize = 6;
    fn block(
        self,
        m: usize,
        gemv: bool,
        cols: usize,
        a: ARows,
        w: &[f32],
        wstride: usize,
        epilogue: Epilogue,
        c: &mut [f32],
        ldc: usize,
    ) {
        if m == 1 && gemv {
            let avx2 = Avx2Fma::new(crate::optimized::isa::IsaLevel::Avx2Fma).expect("AVX-512 implies AVX2 and FMA");
            return avx2.block(m, gemv, cols, a, w, wstride, epilogue, c, ldc);
        }
        check_block(m, cols, a, w, wstride, epilogue, c, ldc);
        let gather = a.bases.len() > 1;
        // One panel: tiles of up to 12 rows, whose 12 sums cover the FMA
        // latency where 6 rows of one panel (six chains) do not.
        let tall = cols <= NR;
        let mr_max = match (tall, a.depth() >= DEEP) {
            (true, _) => TALL_MR,
            (false, true) => DEEP_MR,
            (false, false) => Self::MR,
        };
        let mut i = 0;
        for mr in row_tiles(m, mr_max) {
            let (a, c) = (a.skip(i), &mut c[i * ldc..]);
            // (Up to 8 rows over panel pairs, 12 over a single panel.)
            // SAFETY: `self` is an `Avx512` token, which exists only when the
            // CPU supports AVX-512 F (and AVX2 + FMA); the block's bounds,
            // asserted above, hold for each of its row tiles.
            unsafe {
                tile_by_rows!(
                    f32_gemm_mx32_avx512, mr, gather, (cols, a, w, wstride, epilogue, c, ldc),
                    [1 2 3 4 5 6 7 8 9 10 11] 12
                )
            }
            i += mr;
        }
    }
}

/// The largest of `values` (0 for none), with 512-bit `vpmaxuq`.
pub(super) fn max_of(_token: Avx512, values: &[usize]) -> usize {
    // SAFETY: the token proves AVX-512 F.
    unsafe { max_of_avx512(values) }
}

/// [`max_of`], compiled for AVX-512 F so the loop vectorises.
///
/// # Safety
/// AVX-512 F available.
#[target_feature(enable = "avx512f")]
unsafe fn max_of_avx512(values: &[usize]) -> usize {
    values.iter().copied().max().unwrap_or(0)
}

/// The lanes of the first `n <= 16` columns.
#[inline(always)]
fn lanes(n: usize) -> __mmask16 {
    if n >= 16 {
        !0
    } else {
        ((1u32 << n) - 1) as __mmask16
    }
}

/// `M` rows of the tile at columns `col ..`: `P` panels (1 or 2), the last
/// one's stored columns limited to `last_nr`.
///
/// # Safety
/// AVX-512 F available; the bounds of [`f32_gemm_mx32_avx512`] hold for
/// panels `col / 16 .. col / 16 + P`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<const M: usize, const P: usize, const GATHER: bool>(
    col: usize,
    last_nr: usize,
    rows: ARows,
    starts: &[usize; M],
    w: &[f32],
    wstride: usize,
    epilogue: Epilogue,
    c: &mut [f32],
    ldc: usize,
) {
    let ARows { a, bases, seg, .. } = rows;
    // SAFETY: per the contract: each row pointer plus `seg` stays in `a`,
    // each panel has `depth` rows of 16 floats, the bias 16 per panel, and
    // `c` row `r` has the tile's columns.
    unsafe {
        let bias = epilogue.bias.as_ptr().add(col);
        let mut acc: [[__m512; M]; P] = std::array::from_fn(|j| [_mm512_loadu_ps(bias.add(j * NR)); M]);
        let mut wp: [*const f32; P] = std::array::from_fn(|j| w.as_ptr().add((col / NR + j) * wstride));
        let mut run = |ap: [*const f32; M]| {
            for p in 0..seg {
                let b: [__m512; P] = std::array::from_fn(|j| _mm512_loadu_ps(wp[j].add(p * NR)));
                for r in 0..M {
                    let x = _mm512_set1_ps(*ap[r].add(p));
                    for j in 0..P {
                        acc[j][r] = _mm512_fmadd_ps(x, b[j], acc[j][r]);
                    }
                }
            }
            for q in wp.iter_mut() {
                *q = q.add(seg * NR);
            }
        };
        if !GATHER {
            run(std::array::from_fn(|r| a.as_ptr().add(starts[r] + bases[0])));
        } else {
            for &base in bases {
                run(std::array::from_fn(|r| a.as_ptr().add(starts[r] + base)));
            }
        }
        // max(lo, v) / min(hi, v) return `v` when it is NaN, like
        // `ClampF32::apply`.
        let lo = _mm512_set1_ps(epilogue.clamp.min);
        let hi = _mm512_set1_ps(epilogue.clamp.max);
        for (j, panel) in acc.iter().enumerate() {
            let mask = if j + 1 == P { lanes(last_nr) } else { !0 };
            for (r, &v) in panel.iter().enumerate() {
                let v = _mm512_min_ps(hi, _mm512_max_ps(lo, v));
                _mm512_mask_storeu_ps(c.as_mut_ptr().add(r * ldc + col + j * NR), mask, v);
            }
        }
    }
}

/// `f32_gemm_{M}x32_avx512`, `M` in 1..=6, over the run's panels two at a
/// time; `M` in 7..=12 for a run of one panel (`f32_gemm_{M}x16`).
/// `GATHER`: `a` has several segments (else exactly one).
///
/// # Safety
/// AVX-512 F must be available; `a` must hold its `M` rows
/// ([`ARows::holds`]), `w` `(panels-1)*wstride + depth*16` values, `c`
/// `(M-1)*ldc + cols`, the epilogue's bias `16*panels` (`panels =
/// ceil(cols / 16)`).
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn f32_gemm_mx32_avx512<const M: usize, const GATHER: bool>(
    cols: usize,
    a: ARows,
    w: &[f32],
    wstride: usize,
    epilogue: Epilogue,
    c: &mut [f32],
    ldc: usize,
) {
    // Each row's start, once for all panels and segments.
    let starts: [usize; M] = std::array::from_fn(|r| a.start(r));
    let mut col = 0;
    // SAFETY: the caller's bounds cover every panel of the run.
    unsafe {
        while col + NR < cols {
            // Two panels: the second may be short.
            let last = (cols - col - NR).min(NR);
            tile::<M, 2, GATHER>(col, last, a, &starts, w, wstride, epilogue, c, ldc);
            col += 2 * NR;
        }
        if col < cols {
            tile::<M, 1, GATHER>(col, cols - col, a, &starts, w, wstride, epilogue, c, ldc);
        }
    }
}
