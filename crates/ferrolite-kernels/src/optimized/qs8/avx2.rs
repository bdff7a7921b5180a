//! The x86-64 AVX2 kernels of `qs8`: the int16-pair GEMM tiles with their
//! fused requantising and float epilogues, the depthwise kernels and the
//! exact requantisation. Reached only through the `Avx2Fma` token.

use super::avx512;
use super::{
    check_dw_row, tile_run, DwFast, DwTaps, FloatTail, PackedQs8, Panel, Requant, RequantMode, TailScale, DW_MAX_TAPS,
    NR, PAD, PRODUCT_FIELDS, Q8, RQ_FIELDS,
};
use crate::optimized::isa::{Avx2Fma, Avx512, Avx512Vnni};
use std::arch::x86_64::*;
use std::ops::Range;

/// `$kernel::<G.., M>(args)` for the row count `m` in `1..=6`, with the
/// panel's storage as the leading `NARROW` parameter after `G`.
macro_rules! by_rows {
    ($m:expr, $narrow:expr, $kernel:ident [$($g:ty),*], ($($arg:expr),*)) => {
        if $narrow {
            by_rows!(@m $m, $kernel [$($g,)*] true, ($($arg),*))
        } else {
            by_rows!(@m $m, $kernel [$($g,)*] false, ($($arg),*))
        }
    };
    (@m $m:expr, $kernel:ident [$($g:ty,)*] $n:literal, ($($arg:expr),*)) => {
        match $m {
            1 => $kernel::<$($g,)* $n, 1>($($arg),*),
            2 => $kernel::<$($g,)* $n, 2>($($arg),*),
            3 => $kernel::<$($g,)* $n, 3>($($arg),*),
            4 => $kernel::<$($g,)* $n, 4>($($arg),*),
            5 => $kernel::<$($g,)* $n, 5>($($arg),*),
            _ => $kernel::<$($g,)* $n, 6>($($arg),*),
        }
    };
}

/// A panel as a byte pointer, whether it is 8-bit, and its length in
/// values.
pub(super) fn panel_ptr(w: Panel<'_>) -> (*const u8, bool, usize) {
    match w {
        Panel::Narrow(w) => (w.as_ptr() as *const u8, true, w.len()),
        Panel::Wide(w) => (w.as_ptr() as *const u8, false, w.len()),
    }
}

/// Depth pair `p`'s two weight registers (8 channels' i16 pairs each).
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn load_pair<const NARROW: bool>(w: *const u8, p: usize) -> (__m256i, __m256i) {
    // SAFETY: the callers checked `k2 * 32` values behind `w`.
    unsafe {
        if NARROW {
            let q = w.add(p * 2 * NR);
            (
                _mm256_cvtepi8_epi16(_mm_loadu_si128(q as *const __m128i)),
                _mm256_cvtepi8_epi16(_mm_loadu_si128(q.add(NR) as *const __m128i)),
            )
        } else {
            let q = w.add(p * 2 * NR * 2);
            (_mm256_loadu_si256(q as *const __m256i), _mm256_loadu_si256(q.add(2 * NR) as *const __m256i))
        }
    }
}

/// One tile of up to 6 rows × 16 columns (see `gemm_i32` for shapes).
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_tile(
    _t: Avx2Fma,
    m: usize,
    k2: usize,
    a: &[i16],
    lda: usize,
    w: Panel<'_>,
    c: &mut [i32],
    ldc: usize,
) {
    let (w, narrow, w_len) = panel_ptr(w);
    assert!((1..=6).contains(&m));
    assert!(a.len() >= (m - 1) * lda + 2 * k2 && w_len >= k2 * 2 * NR && c.len() >= (m - 1) * ldc + NR);
    let (a, c) = (a.as_ptr(), c.as_mut_ptr());
    // SAFETY: the token proves AVX2 is available; the asserts above
    // bound every access the kernels make (rows `< m` of `2 * k2`
    // values at stride `lda`, `k2 * 32` weights, 16 sums per row).
    unsafe { by_rows!(m, narrow, qs8_gemm_mx16c2_avx2 [], (k2, a, lda, w, c, ldc)) }
}

/// The fused epilogue of a group's panels: `Requant::panels`
/// (`RQ_FIELDS * 16` values per panel), the bias (16 per panel), the
/// mode, and `[output_offset, act_min, act_max]`.
#[allow(dead_code)]
pub(super) struct Epilogue<'a> {
    pub rq: &'a [i32],
    pub bias: &'a [i32],
    pub mode: RequantMode,
    pub oc: [i32; 3],
}

/// Up to 6 rows of panels `js` of `w`, requantised straight into `out`:
/// rows at stride `ldo`, panel `j`'s columns at `16 * j ..` of the
/// group's `cols`. One call for a run of panels keeps a shallow layer
/// from paying the checks and set-up per 6x16 tile.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_requant_tiles<T: Q8>(
    _t: Avx2Fma,
    m: usize,
    k2: usize,
    a: &[i16],
    lda: usize,
    w: &PackedQs8,
    js: Range<usize>,
    epi: &Epilogue<'_>,
    out: &mut [T],
    ldo: usize,
    cols: usize,
) {
    if js.is_empty() {
        return;
    }
    assert_eq!(k2, w.k2, "depth pairs of the weights");
    let (w0, narrow, stride, end_col) = tile_run(w, &js, m, a.len(), lda, out.len(), ldo, cols);
    assert!(epi.rq.len() >= js.end * RQ_FIELDS * NR && epi.bias.len() >= js.end * NR);
    let (a, o) = (a.as_ptr(), out.as_mut_ptr() as *mut u8);
    let (rq, bias) = (epi.rq.as_ptr(), epi.bias.as_ptr());
    let (mode, oc) = (epi.mode, epi.oc);
    // SAFETY: the token proves AVX2 is available; the asserts above
    // bound every access (rows `< m` of `2 * k2` values at stride
    // `lda`; panels `js` of `k2 * 32` weights each, `stride` bytes
    // apart, the last one checked; 96 + 16 epilogue values per panel;
    // `min(16, cols - 16 j)` bytes from column `16 j` of each output
    // row at stride `ldo`, up to `end_col`; `T` is one byte).
    unsafe {
        by_rows!(
            m,
            narrow,
            qs8_gemm_mx16c2_rq_run_avx2[T],
            (
                k2,
                a,
                lda,
                w0,
                stride,
                js.len(),
                rq.add(js.start * RQ_FIELDS * NR),
                bias.add(js.start * NR),
                mode,
                oc,
                o.add(js.start * NR),
                ldo,
                end_col - js.start * NR
            )
        )
    }
}

/// The signature of [`qs8_gemm_mx16c2_rq_avx2`].
type RqKernel = unsafe fn(
    usize,
    *const i16,
    usize,
    *const u8,
    *const i32,
    *const i32,
    RequantMode,
    [i32; 3],
    *mut u8,
    usize,
    usize,
);

/// [`qs8_gemm_mx16c2_rq_avx2`] over `panels` consecutive panels
/// (`stride` bytes apart), the `cols` output columns from `out`.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2")]
unsafe fn qs8_gemm_mx16c2_rq_run_avx2<T: Q8, const NARROW: bool, const M: usize>(
    k2: usize,
    a: *const i16,
    lda: usize,
    w: *const u8,
    stride: usize,
    panels: usize,
    rq: *const i32,
    bias: *const i32,
    mode: RequantMode,
    oc: [i32; 3],
    out: *mut u8,
    ldo: usize,
    cols: usize,
) {
    // SAFETY: the caller (`gemm_requant_tiles`) checked the bounds.
    unsafe {
        // Most layers run in the short mode: its own copy of the
        // kernel has no flag tests in the row loop.
        let kernel: RqKernel = match mode {
            RequantMode::Short => qs8_gemm_mx16c2_rq_avx2::<T, NARROW, M, true>,
            RequantMode::Full { .. } => qs8_gemm_mx16c2_rq_avx2::<T, NARROW, M, false>,
        };
        for j in 0..panels {
            let nc = NR.min(cols - j * NR);
            let (rq, bias) = (rq.add(j * RQ_FIELDS * NR), bias.add(j * NR));
            kernel(k2, a, lda, w.add(j * stride), rq, bias, mode, oc, out.add(j * NR), ldo, nc);
        }
    }
}

/// Up to 6 rows of panels `js` with the float epilogue (see
/// `super::gemm_f32_tiles`).
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_float_tiles(
    _t: Avx2Fma,
    m: usize,
    k2: usize,
    a: &[i16],
    lda: usize,
    w: &PackedQs8,
    js: Range<usize>,
    tail: &FloatTail<'_>,
    out: &mut [f32],
    ldo: usize,
    cols: usize,
) {
    if js.is_empty() {
        return;
    }
    assert_eq!(k2, w.k2, "depth pairs of the weights");
    let (w0, narrow, stride, end_col) = tile_run(w, &js, m, a.len(), lda, out.len(), ldo, cols);
    if let TailScale::PerChannel(w) = tail.scale {
        assert!(w.len() >= js.end * NR, "per-channel scales for the panels");
    }
    assert!(tail.bias.is_none_or(|b| b.len() >= js.end * NR), "bias for the panels");
    let (a, o) = (a.as_ptr(), out.as_mut_ptr());
    let (j0, n) = (js.start, js.len());
    // SAFETY: the token proves AVX2 is available; the asserts above
    // bound every access (rows `< m` of `2 * k2` values at stride
    // `lda`; panels `js` of `k2 * 32` weights, `stride` bytes apart;
    // 16 scales and biases per panel; `min(16, cols - 16 j)` floats
    // from column `16 j` of each output row at stride `ldo`).
    unsafe {
        by_rows!(m, narrow, qs8_gemm_mx16c2_f32_run_avx2 [], (k2, a, lda, w0, stride, j0, n, tail, o, ldo, end_col))
    }
}

/// [`qs8_gemm_mx16c2_f32_avx2`] over `n` consecutive panels from panel
/// `j0` (`stride` bytes apart, the first at `w`), output columns up to
/// `cols`.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2")]
unsafe fn qs8_gemm_mx16c2_f32_run_avx2<const NARROW: bool, const M: usize>(
    k2: usize,
    a: *const i16,
    lda: usize,
    w: *const u8,
    stride: usize,
    j0: usize,
    n: usize,
    tail: &FloatTail<'_>,
    out: *mut f32,
    ldo: usize,
    cols: usize,
) {
    // SAFETY: the caller (`gemm_float_tiles`) checked the bounds.
    unsafe {
        for t in 0..n {
            let col = (j0 + t) * NR;
            let nc = NR.min(cols - col);
            qs8_gemm_mx16c2_f32_avx2::<NARROW, M>(k2, a, lda, w.add(t * stride), tail, col, out.add(col), ldo, nc);
        }
    }
}

/// `M` rows × 16 columns of int32 sums starting from `init`: per depth
/// pair, the two weight registers, one broadcast activation pair per
/// row, `vpmaddwd`.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn accumulate<const NARROW: bool, const M: usize>(
    k2: usize,
    a: *const i16,
    lda: usize,
    w: *const u8,
    init: [__m256i; 2],
) -> ([__m256i; M], [__m256i; M]) {
    // SAFETY: the callers checked the bounds of `a` and `w`.
    unsafe {
        let mut acc0 = [init[0]; M];
        let mut acc1 = [init[1]; M];
        for p in 0..k2 {
            let (w0, w1) = load_pair::<NARROW>(w, p);
            for r in 0..M {
                let x = _mm256_set1_epi32((a.add(r * lda + 2 * p) as *const i32).read_unaligned());
                acc0[r] = _mm256_add_epi32(acc0[r], _mm256_madd_epi16(x, w0));
                acc1[r] = _mm256_add_epi32(acc1[r], _mm256_madd_epi16(x, w1));
            }
        }
        (acc0, acc1)
    }
}

/// `M` rows × 16 columns with the hybrid float epilogue, in the same
/// operation order as `hybrid::avx2::epilogue_avx2`.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2")]
unsafe fn qs8_gemm_mx16c2_f32_avx2<const NARROW: bool, const M: usize>(
    k2: usize,
    a: *const i16,
    lda: usize,
    w: *const u8,
    tail: &FloatTail<'_>,
    col: usize,
    out: *mut f32,
    ldo: usize,
    nc: usize,
) {
    // SAFETY: the caller (`qs8_gemm_mx16c2_f32_run_avx2`) checked the
    // bounds: 16 scales and biases from `col`.
    unsafe {
        let zero = _mm256_setzero_si256();
        let (acc0, acc1) = accumulate::<NARROW, M>(k2, a, lda, w, [zero, zero]);
        let vs = _mm256_set1_ps(tail.s);
        let (lo, hi) = (_mm256_set1_ps(tail.clamp[0]), _mm256_set1_ps(tail.clamp[1]));
        let bp = tail.bias.map(|b| b.as_ptr().add(col));
        // Each combination gets its own straight-line row loop: deciding
        // per row and half kept the accumulators spilled and the loop
        // branching (the epilogue was most of a shallow layer's time).
        match (tail.scale, bp) {
            (TailScale::PerChannel(w), Some(bp)) => {
                let m = [0, 8].map(|h| _mm256_loadu_ps(w.as_ptr().add(col + h)));
                let b = [0, 8].map(|h| _mm256_loadu_ps(bp.add(h)));
                store_rows::<M>(acc0, acc1, lo, hi, out, ldo, nc, |x, h| {
                    _mm256_add_ps(_mm256_mul_ps(_mm256_mul_ps(x, m[h]), vs), b[h])
                });
            }
            (TailScale::PerChannel(w), None) => {
                let m = [0, 8].map(|h| _mm256_loadu_ps(w.as_ptr().add(col + h)));
                store_rows::<M>(acc0, acc1, lo, hi, out, ldo, nc, |x, h| _mm256_mul_ps(_mm256_mul_ps(x, m[h]), vs));
            }
            (TailScale::PerTensor, Some(bp)) => {
                let b = [0, 8].map(|h| _mm256_loadu_ps(bp.add(h)));
                let z = _mm256_setzero_ps();
                store_rows::<M>(acc0, acc1, lo, hi, out, ldo, nc, |x, h| {
                    _mm256_add_ps(_mm256_add_ps(z, _mm256_mul_ps(x, vs)), b[h])
                });
            }
            (TailScale::PerTensor, None) => {
                let z = _mm256_setzero_ps();
                store_rows::<M>(acc0, acc1, lo, hi, out, ldo, nc, |x, _| _mm256_add_ps(z, _mm256_mul_ps(x, vs)));
            }
        }
    }
}

/// Rows `0..M` of a tile: `scale(f32(acc), half)`, clamped to
/// `[lo, hi]`, stored as the first `nc` of 16 columns.
#[allow(clippy::too_many_arguments)]
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn store_rows<const M: usize>(
    acc0: [__m256i; M],
    acc1: [__m256i; M],
    lo: __m256,
    hi: __m256,
    out: *mut f32,
    ldo: usize,
    nc: usize,
    scale: impl Fn(__m256, usize) -> __m256,
) {
    // SAFETY: the caller checked that `M` rows of `nc` floats at stride
    // `ldo` from `out` are in its output.
    unsafe {
        for r in 0..M {
            let v0 = _mm256_min_ps(hi, _mm256_max_ps(lo, scale(_mm256_cvtepi32_ps(acc0[r]), 0)));
            let v1 = _mm256_min_ps(hi, _mm256_max_ps(lo, scale(_mm256_cvtepi32_ps(acc1[r]), 1)));
            let dst = out.add(r * ldo);
            if nc == NR {
                _mm256_storeu_ps(dst, v0);
                _mm256_storeu_ps(dst.add(8), v1);
            } else if nc == 8 {
                _mm256_storeu_ps(dst, v0);
            } else {
                let mut tmp = [0f32; NR];
                _mm256_storeu_ps(tmp.as_mut_ptr(), v0);
                _mm256_storeu_ps(tmp.as_mut_ptr().add(8), v1);
                std::ptr::copy_nonoverlapping(tmp.as_ptr(), dst, nc);
            }
        }
    }
}

/// `qs8_gemm_mx16c2_avx2` with the accumulators starting at the bias
/// (integer sums wrap, so the order does not matter) and `finish` on
/// the registers before one 16-byte store per row. `SHORT`: `mode` is
/// `RequantMode::Short` (a copy of the kernel without the flag tests).
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2")]
unsafe fn qs8_gemm_mx16c2_rq_avx2<T: Q8, const NARROW: bool, const M: usize, const SHORT: bool>(
    k2: usize,
    a: *const i16,
    lda: usize,
    w: *const u8,
    q: *const i32,
    b: *const i32,
    mode: RequantMode,
    oc: [i32; 3],
    out: *mut u8,
    ldo: usize,
    nc: usize,
) {
    // SAFETY: the caller (`qs8_gemm_mx16c2_rq_run_avx2`) checked the
    // bounds: `RQ_FIELDS * 16` values at `q`, 16 at `b`.
    unsafe {
        let ld = |p: *const i32| _mm256_loadu_si256(p as *const __m256i);
        let (acc0, acc1) = accumulate::<NARROW, M>(k2, a, lda, w, [ld(b), ld(b.add(8))]);
        let rows = [q, q.add(NR), q.add(2 * NR), q.add(3 * NR), q.add(4 * NR), q.add(5 * NR)];
        let rq = [rq_lanes(&rows, 0), rq_lanes(&rows, 8)];
        let mode = if SHORT { RequantMode::Short } else { mode };
        for r in 0..M {
            let bytes = requant16::<T>([acc0[r], acc1[r]], &rq, mode, oc);
            let dst = out.add(r * ldo);
            if nc == NR {
                _mm_storeu_si128(dst as *mut __m128i, bytes);
            } else if nc == 8 {
                _mm_storel_epi64(dst as *mut __m128i, bytes);
            } else {
                let mut tmp = [0u8; NR];
                _mm_storeu_si128(tmp.as_mut_ptr() as *mut __m128i, bytes);
                std::ptr::copy_nonoverlapping(tmp.as_ptr(), dst, nc);
            }
        }
    }
}

/// `M` rows × 16 columns: per depth pair, two loads of 8 channels'
/// weight pairs, one broadcast activation pair per row, `vpmaddwd`.
#[target_feature(enable = "avx2")]
unsafe fn qs8_gemm_mx16c2_avx2<const NARROW: bool, const M: usize>(
    k2: usize,
    a: *const i16,
    lda: usize,
    w: *const u8,
    c: *mut i32,
    ldc: usize,
) {
    // SAFETY: the caller (`gemm_tile`) checked the bounds.
    unsafe {
        let zero = _mm256_setzero_si256();
        let (acc0, acc1) = accumulate::<NARROW, M>(k2, a, lda, w, [zero, zero]);
        for r in 0..M {
            _mm256_storeu_si256(c.add(r * ldc) as *mut __m256i, acc0[r]);
            _mm256_storeu_si256(c.add(r * ldc + 8) as *mut __m256i, acc1[r]);
        }
    }
}

/// `finish` on 8 channels: bias, `multiply_by_quantized_multiplier`
/// (left shift, rounding doubling high mul, rounding right shift),
/// output offset, clamp; `oc = [output_offset, act_min, act_max]`.
#[allow(clippy::too_many_arguments)]
pub(super) fn requant8(
    _t: Avx2Fma,
    acc: &[i32],
    bias: Option<&[i32]>,
    mult: &[i32],
    lsh: &[i32],
    rsh: &[i32],
    oc: [i32; 3],
    out: &mut [i32; 8],
) {
    assert!(acc.len() >= 8 && mult.len() >= 8 && lsh.len() >= 8 && rsh.len() >= 8);
    assert!(bias.is_none_or(|b| b.len() >= 8));
    // SAFETY: AVX2 is proven by the token; every slice has 8 values.
    unsafe { requant8_avx2(acc.as_ptr(), bias.map(|b| b.as_ptr()), mult.as_ptr(), lsh.as_ptr(), rsh.as_ptr(), oc, out) }
}

#[target_feature(enable = "avx2")]
unsafe fn requant8_avx2(
    acc: *const i32,
    bias: Option<*const i32>,
    mult: *const i32,
    lsh: *const i32,
    rsh: *const i32,
    oc: [i32; 3],
    out: &mut [i32; 8],
) {
    // SAFETY: the caller checked 8 readable values behind each pointer.
    unsafe {
        let mut x = _mm256_loadu_si256(acc as *const __m256i);
        if let Some(b) = bias {
            x = _mm256_add_epi32(x, _mm256_loadu_si256(b as *const __m256i));
        }
        let m = _mm256_loadu_si256(mult as *const __m256i);
        let e = _mm256_loadu_si256(rsh as *const __m256i);
        let v = requant_v(x, m, _mm256_loadu_si256(lsh as *const __m256i), e, oc);
        _mm256_storeu_si256(out.as_mut_ptr() as *mut __m256i, v);
    }
}

/// Channels `0 .. f.c16` of one depthwise output pixel: `taps` lists
/// every tap in order as (input offset, tap) with `PAD` for padding.
/// `mode`: `rq.mode` for `bias`. `wide`: run the AVX-512 kernel.
#[allow(clippy::too_many_arguments)]
pub(super) fn dwconv16_row<T: Q8>(
    _t: Avx2Fma,
    wide: Option<Avx512>,
    input: &[T],
    f: &DwFast,
    rq: &Requant,
    mode: RequantMode,
    bias: Option<&[i32]>,
    oc: [i32; 3],
    taps: &[(usize, usize)],
    out: &mut [T],
) {
    let c = f.c16;
    debug_assert_eq!(mode, rq.mode(f.weight_bound, bias), "mode chosen for another bias");
    let n = taps.len();
    assert!(n <= DW_MAX_TAPS && out.len() >= c && f.pad.len() >= c && f.corr.len() >= c);
    assert!(f.wp.len() >= n.div_ceil(2) * c * 2 && f.w32.len() >= n * c);
    assert!(rq.mult.len() >= c && rq.lsh.len() >= c && rq.rsh.len() >= c);
    assert!(rq.mask.len() >= c && rq.half.len() >= c && rq.round_oc.len() >= c);
    assert!(bias.is_none_or(|b| b.len() >= c));
    let mut ptrs = [f.pad.as_ptr(); DW_MAX_TAPS + 1];
    for (p, &(xo, _)) in ptrs.iter_mut().zip(taps) {
        if xo != PAD {
            assert!(xo <= input.len() && input.len() - xo >= c);
            // SAFETY: `xo + c <= input.len()` (asserted above).
            *p = unsafe { input.as_ptr().add(xo) } as *const u8;
        }
    }
    // SAFETY: AVX2 is proven by the token; each of the first `n + 1`
    // pointers has `c` readable bytes (an input row or `f.pad`; `T` is
    // one byte), the weights `ceil(n / 2) * c` pairs, the per-channel
    // arrays, bias and `out` at least `c` values (asserted above).
    unsafe {
        let k = DwArgs::new(f, &f.taps, rq, mode, bias, oc);
        match wide {
            Some(_) => avx512::qs8_dwconv_c16_avx512::<T>(&k, &ptrs[..n], out.as_mut_ptr() as *mut u8),
            None => qs8_dwconv_c16_avx2::<T>(&k, &ptrs[..n + 1], out.as_mut_ptr() as *mut u8),
        }
    }
}

/// `n` interior pixels (no padding tap) of one output row, channels
/// `0 .. f.c16 == out_c`: pixel `j`'s first tap at `base + j * step`, its
/// other taps where `taps` says (`f.taps` for the input, or a padded
/// copy's), its outputs at `out[j * c ..]`. `mode`: `rq.mode` for
/// `bias`. `wide`: run the AVX-512 kernels.
#[allow(clippy::too_many_arguments)]
pub(super) fn dwconv16_span<T: Q8>(
    _t: Avx2Fma,
    wide: Option<Avx512>,
    vnni: Option<Avx512Vnni>,
    input: &[T],
    f: &DwFast,
    taps: &DwTaps,
    rq: &Requant,
    mode: RequantMode,
    bias: Option<&[i32]>,
    oc: [i32; 3],
    base: usize,
    step: usize,
    n: usize,
    out: &mut [T],
) {
    let c = f.c16;
    debug_assert_eq!(mode, rq.mode(f.weight_bound, bias), "mode chosen for another bias");
    if n == 0 || c == 0 {
        return;
    }
    let pairs = taps.pair_deltas.len();
    let reach = taps.pair_deltas.iter().map(|&(a, b)| a.max(b)).chain(taps.deltas.iter().copied()).max().unwrap_or(0);
    let last = (n - 1).checked_mul(step).and_then(|v| v.checked_add(base + reach + c));
    assert!(last.is_some_and(|l| l <= input.len()) && out.len() >= n * c);
    assert!(f.wp.len() >= pairs * c * 2 && f.w32.len() >= taps.deltas.len() * c && f.corr.len() >= c);
    assert!(rq.mult.len() >= c && rq.lsh.len() >= c && rq.rsh.len() >= c);
    assert!(rq.mask.len() >= c && rq.half.len() >= c && rq.round_oc.len() >= c);
    assert!(bias.is_none_or(|b| b.len() >= c));
    assert!(f.product.is_empty() || f.product.len() >= PRODUCT_FIELDS * c);
    // SAFETY: AVX2 is proven by the token; pixel `j < n` reads `c`
    // bytes at `base + j * step + delta` for its deltas, all within
    // `input` (`last` above; `T` is one byte); the weights, the
    // per-channel arrays and bias have enough values and `out` `n * c`.
    unsafe {
        let (x, o) = (input.as_ptr().add(base) as *const u8, out.as_mut_ptr() as *mut u8);
        let k = DwArgs::new(f, taps, rq, mode, bias, oc);
        // Layers in the short mode (most) get a copy of the kernels
        // without the flag tests.
        let product = mode == RequantMode::Short && !f.product.is_empty();
        let kernels: [DwPixelsKernel; 3] = match mode == RequantMode::Short {
            true if wide.is_some() && product => [
                avx512::qs8_dwconv_px_c16_product::<T, 4>,
                avx512::qs8_dwconv_px_c16_product::<T, 2>,
                avx512::qs8_dwconv_px_c16_product::<T, 1>,
            ],
            true if wide.is_some() => [
                avx512::qs8_dwconv_px_c16_avx512::<T, 4, true>,
                avx512::qs8_dwconv_px_c16_avx512::<T, 2, true>,
                avx512::qs8_dwconv_px_c16_avx512::<T, 1, true>,
            ],
            false if wide.is_some() => [
                avx512::qs8_dwconv_px_c16_avx512::<T, 4, false>,
                avx512::qs8_dwconv_px_c16_avx512::<T, 2, false>,
                avx512::qs8_dwconv_px_c16_avx512::<T, 1, false>,
            ],
            true => [
                qs8_dwconv_px_c16_avx2::<T, 4, true>,
                qs8_dwconv_px_c16_avx2::<T, 2, true>,
                qs8_dwconv_px_c16_avx2::<T, 1, true>,
            ],
            false => [
                qs8_dwconv_px_c16_avx2::<T, 4, false>,
                qs8_dwconv_px_c16_avx2::<T, 2, false>,
                qs8_dwconv_px_c16_avx2::<T, 1, false>,
            ],
        };
        // Four pixels at a time share their columns where the filter
        // allows (AVX-512 VNNI).
        // (They step columns by `c` and pixels by `stride` columns, so
        // only where those are the input's pixel and the span's step.)
        let four = match (vnni, &taps.cols) {
            (Some(_), Some(cols)) if cols.col == c && step == cols.stride * c => {
                cols_kernel::<T>(cols.fw, cols.stride, product).unwrap_or(kernels[0])
            }
            _ => kernels[0],
        };
        let mut j = 0;
        while j + 4 <= n {
            four(&k, x.add(j * step), step, o.add(j * c));
            j += 4;
        }
        if j < n && n >= 4 {
            // The last four pixels, again in part: a 7-pixel row as two
            // runs of four, not four, two and one (each pixel's outputs
            // are written twice with the same bytes).
            four(&k, x.add((n - 4) * step), step, o.add((n - 4) * c));
            j = n;
        }
        while j + 2 <= n {
            kernels[1](&k, x.add(j * step), step, o.add(j * c));
            j += 2;
        }
        if j < n {
            kernels[2](&k, x.add(j * step), step, o.add(j * c));
        }
    }
}

/// The column-sharing four-pixel kernel for a filter row of `fw` taps and
/// pixels `stride` columns apart (`DwFast::cols`), if one is built.
fn cols_kernel<T: Q8>(fw: usize, stride: usize, product: bool) -> Option<DwPixelsKernel> {
    use avx512::qs8_dwconv_px4_cols_vnni as k;
    Some(match (fw, stride, product) {
        (3, 1, true) => k::<T, 3, 1, true>,
        (3, 1, false) => k::<T, 3, 1, false>,
        (3, 2, true) => k::<T, 3, 2, true>,
        (3, 2, false) => k::<T, 3, 2, false>,
        (5, 1, true) => k::<T, 5, 1, true>,
        (5, 1, false) => k::<T, 5, 1, false>,
        (5, 2, true) => k::<T, 5, 2, true>,
        (5, 2, false) => k::<T, 5, 2, false>,
        _ => return None,
    })
}

/// A kernel for a few interior pixels: `(args, first tap, step, out)`.
type DwPixelsKernel = unsafe fn(&DwArgs<'_>, *const u8, usize, *mut u8);

/// What `qs8_dwconv_px_c16_avx2` (and the AVX-512 twin) needs besides
/// the pixels.
pub(super) struct DwArgs<'a> {
    pub c: usize,
    pub pd: &'a [(usize, usize)],
    /// Tap by tap, for the AVX-512 kernels: offsets and i32 weights.
    pub deltas: &'a [usize],
    /// `DwCols::rows` (empty without them): the filter rows' first-tap
    /// offsets.
    pub rows: &'a [usize],
    pub w32: *const i32,
    pub wp: *const i16,
    pub corr: *const i32,
    pub bias: Option<*const i32>,
    /// Multiplier, left shift, right shift, mask, half, `round_oc`
    /// (per channel).
    pub rq: [*const i32; RQ_FIELDS],
    /// `DwFast::product`: `PRODUCT_FIELDS` rows of `c` values (unused
    /// where it is empty).
    pub product: *const i32,
    pub mode: RequantMode,
    pub oc: [i32; 3],
}

impl<'a> DwArgs<'a> {
    /// The arguments for channels `0 .. f.c16` (the callers check that
    /// `rq` and `bias` have that many).
    pub(super) fn new(
        f: &'a DwFast,
        taps: &'a DwTaps,
        rq: &Requant,
        mode: RequantMode,
        bias: Option<&[i32]>,
        oc: [i32; 3],
    ) -> DwArgs<'a> {
        let rq_rows = [&rq.mult, &rq.lsh, &rq.rsh, &rq.mask, &rq.half, &rq.round_oc];
        DwArgs {
            c: f.c16,
            pd: &taps.pair_deltas,
            deltas: &taps.deltas,
            rows: taps.cols.as_ref().map_or(&[], |cols| &cols.rows),
            w32: f.w32.as_ptr(),
            wp: f.wp.as_ptr(),
            corr: f.corr.as_ptr(),
            bias: bias.map(|b| b.as_ptr()),
            rq: rq_rows.map(|r| r.as_ptr()),
            product: f.product.as_ptr(),
            mode,
            oc,
        }
    }
}

/// `P` neighbouring interior pixels (first taps at `x + q * step`),
/// sharing each weight load; outputs at `out + q * c`. `SHORT`: the
/// layer is in `RequantMode::Short`.
#[target_feature(enable = "avx2")]
unsafe fn qs8_dwconv_px_c16_avx2<T: Q8, const P: usize, const SHORT: bool>(
    k: &DwArgs<'_>,
    x: *const u8,
    step: usize,
    out: *mut u8,
) {
    // SAFETY: bounds checked by `dwconv16_span`.
    unsafe {
        let c = k.c;
        let mut cb = 0;
        while cb < c {
            let mut s0 = [_mm256_setzero_si256(); P];
            let mut s1 = [_mm256_setzero_si256(); P];
            for (p, &(da, db)) in k.pd.iter().enumerate() {
                let w = k.wp.add((p * c + cb) * 2);
                let w0 = _mm256_loadu_si256(w as *const __m256i);
                let w1 = _mm256_loadu_si256(w.add(16) as *const __m256i);
                for q in 0..P {
                    let px = x.add(q * step + cb);
                    let x0 = _mm_loadu_si128(px.add(da) as *const __m128i);
                    let x1 = _mm_loadu_si128(px.add(db) as *const __m128i);
                    let (lo, hi) = (_mm_unpacklo_epi8(x0, x1), _mm_unpackhi_epi8(x0, x1));
                    let (lo, hi) = if T::SIGNED {
                        (_mm256_cvtepi8_epi16(lo), _mm256_cvtepi8_epi16(hi))
                    } else {
                        (_mm256_cvtepu8_epi16(lo), _mm256_cvtepu8_epi16(hi))
                    };
                    s0[q] = _mm256_add_epi32(s0[q], _mm256_madd_epi16(lo, w0));
                    s1[q] = _mm256_add_epi32(s1[q], _mm256_madd_epi16(hi, w1));
                }
            }
            let ld = |p: *const i32, o: usize| _mm256_loadu_si256(p.add(o) as *const __m256i);
            let mut add0 = ld(k.corr, cb);
            let mut add1 = ld(k.corr, cb + 8);
            if let Some(b) = k.bias {
                add0 = _mm256_add_epi32(add0, ld(b, cb));
                add1 = _mm256_add_epi32(add1, ld(b, cb + 8));
            }
            let r = [rq_lanes(&k.rq, cb), rq_lanes(&k.rq, cb + 8)];
            let mode = if SHORT { RequantMode::Short } else { k.mode };
            for q in 0..P {
                let x = [_mm256_add_epi32(s0[q], add0), _mm256_add_epi32(s1[q], add1)];
                let bytes = requant16::<T>(x, &r, mode, k.oc);
                _mm_storeu_si128(out.add(q * c + cb) as *mut __m128i, bytes);
            }
            cb += 16;
        }
    }
}

/// `vpmaddwd` over pairs of taps: the bytes of taps `2p` and `2p + 1`
/// are interleaved and widened to i16 pairs, times the weight pairs of
/// 8 channels, into 8 int32 sums; two registers per 16 channels.
/// `k.pd` is unused: the taps are `ptrs`.
#[target_feature(enable = "avx2")]
unsafe fn qs8_dwconv_c16_avx2<T: Q8>(k: &DwArgs<'_>, ptrs: &[*const u8], out: *mut u8) {
    // SAFETY: bounds checked by `dwconv16_row`; `ptrs` has `n + 1`
    // entries (the last one `pad`), so the odd tap pairs with it.
    unsafe {
        let (c, wp) = (k.c, k.wp);
        let n = ptrs.len() - 1;
        let pairs = n.div_ceil(2);
        let mut cb = 0;
        while cb < c {
            let mut s0 = _mm256_setzero_si256();
            let mut s1 = _mm256_setzero_si256();
            for p in 0..pairs {
                let x0 = _mm_loadu_si128(ptrs[2 * p].add(cb) as *const __m128i);
                let x1 = _mm_loadu_si128(ptrs[2 * p + 1].add(cb) as *const __m128i);
                let (lo, hi) = (_mm_unpacklo_epi8(x0, x1), _mm_unpackhi_epi8(x0, x1));
                let (lo, hi) = if T::SIGNED {
                    (_mm256_cvtepi8_epi16(lo), _mm256_cvtepi8_epi16(hi))
                } else {
                    (_mm256_cvtepu8_epi16(lo), _mm256_cvtepu8_epi16(hi))
                };
                let w = wp.add((p * c + cb) * 2);
                s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(lo, _mm256_loadu_si256(w as *const __m256i)));
                s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(hi, _mm256_loadu_si256(w.add(16) as *const __m256i)));
            }
            let ld = |p: *const i32, o: usize| _mm256_loadu_si256(p.add(o) as *const __m256i);
            s0 = _mm256_add_epi32(s0, ld(k.corr, cb));
            s1 = _mm256_add_epi32(s1, ld(k.corr, cb + 8));
            if let Some(b) = k.bias {
                s0 = _mm256_add_epi32(s0, ld(b, cb));
                s1 = _mm256_add_epi32(s1, ld(b, cb + 8));
            }
            let r = [rq_lanes(&k.rq, cb), rq_lanes(&k.rq, cb + 8)];
            let bytes = requant16::<T>([s0, s1], &r, k.mode, k.oc);
            _mm_storeu_si128(out.add(cb) as *mut __m128i, bytes);
            cb += 16;
        }
    }
}

/// The odd 32-bit lanes moved to the even positions, for
/// `_mm256_mul_epi32` on the odd lanes. (Shifting them down by 32 bits
/// instead makes LLVM emulate a full 64-bit multiply.)
#[inline]
#[target_feature(enable = "avx2")]
fn odd_lanes(v: __m256i) -> __m256i {
    _mm256_shuffle_epi32(v, 0b11_11_01_01)
}

/// TFLite's saturating rounding doubling high multiply on 8 lanes:
/// `(a * m + 2^30) >> 31`, which equals the reference's sign-dependent
/// nudge and truncating division (bits 31..62 of the 64-bit sums, even
/// and odd lanes). `saturate`: the one overflow, `MIN * MIN`, gives
/// `MAX` (callers that know no multiplier is `i32::MIN` skip it).
#[inline]
#[target_feature(enable = "avx2")]
pub(crate) fn doubling_high_mul(a: __m256i, m: __m256i, saturate: bool) -> __m256i {
    let nudge = _mm256_set1_epi64x(1 << 30);
    let even = _mm256_add_epi64(_mm256_mul_epi32(a, m), nudge);
    let odd = _mm256_add_epi64(_mm256_mul_epi32(odd_lanes(a), odd_lanes(m)), nudge);
    let hm = _mm256_blend_epi32(_mm256_srli_epi64(even, 31), _mm256_slli_epi64(odd, 1), 0b1010_1010);
    if !saturate {
        return hm;
    }
    let min = _mm256_set1_epi32(i32::MIN);
    let sat = _mm256_and_si256(_mm256_cmpeq_epi32(a, min), _mm256_cmpeq_epi32(m, min));
    _mm256_blendv_epi8(hm, _mm256_set1_epi32(i32::MAX), sat)
}

/// For a rounding divide of `hm` by `2^e` (ties away from zero), -1 in
/// the lanes where the truncated quotient must go up by one, else 0;
/// `mask = 2^e - 1`, `half = mask >> 1`. The quotient is then
/// `(hm >> e) - rounds_up(..)`.
#[inline]
#[target_feature(enable = "avx2")]
pub(crate) fn rounds_up(hm: __m256i, mask: __m256i, half: __m256i) -> __m256i {
    let rem = _mm256_and_si256(hm, mask);
    let neg = _mm256_cmpgt_epi32(_mm256_setzero_si256(), hm);
    _mm256_cmpgt_epi32(rem, _mm256_sub_epi32(half, neg))
}

/// `finish` without the bias on 8 int32 sums in a register: `r` holds
/// the per-lane multiplier, left shift, right shift, mask and half; the
/// left shift and the saturation check run only where some channel
/// needs them (`lsh`, `min`). `oc = [output_offset, act_min, act_max]`.
#[inline]
#[target_feature(enable = "avx2")]
fn requant_pre(x: __m256i, r: [__m256i; 5], lsh: bool, min: bool, oc: [i32; 3]) -> __m256i {
    let [m, l, e, mask, half] = r;
    let a = if lsh { _mm256_sllv_epi32(x, l) } else { x };
    let hm = doubling_high_mul(a, m, min);
    let q = _mm256_sub_epi32(_mm256_srav_epi32(hm, e), rounds_up(hm, mask, half));
    let v = _mm256_add_epi32(q, _mm256_set1_epi32(oc[0]));
    _mm256_min_epi32(_mm256_max_epi32(v, _mm256_set1_epi32(oc[1])), _mm256_set1_epi32(oc[2]))
}

/// Lanes `o .. o + 8` of each per-channel constant row in `rows`
/// (`Requant::panels` order).
///
/// # Safety
/// Each row has 8 readable values from `o`.
#[inline]
#[target_feature(enable = "avx2")]
pub(super) unsafe fn rq_lanes(rows: &[*const i32; RQ_FIELDS], o: usize) -> [__m256i; RQ_FIELDS] {
    // SAFETY: the caller's promise.
    unsafe {
        [
            _mm256_loadu_si256(rows[0].add(o) as *const __m256i),
            _mm256_loadu_si256(rows[1].add(o) as *const __m256i),
            _mm256_loadu_si256(rows[2].add(o) as *const __m256i),
            _mm256_loadu_si256(rows[3].add(o) as *const __m256i),
            _mm256_loadu_si256(rows[4].add(o) as *const __m256i),
            _mm256_loadu_si256(rows[5].add(o) as *const __m256i),
        ]
    }
}

/// 16 int32 sums (bias included; two registers of 8 channels)
/// requantised as `mode` says and packed to `T`'s 16 bytes: `r` holds
/// each register's per-lane constants in `Requant::panels` order.
#[inline]
#[target_feature(enable = "avx2")]
pub(super) fn requant16<T: Q8>(
    x: [__m256i; 2],
    r: &[[__m256i; RQ_FIELDS]; 2],
    mode: RequantMode,
    oc: [i32; 3],
) -> __m128i {
    let (v0, v1) = match mode {
        RequantMode::Short => (requant_short(x[0], r[0], oc), requant_short(x[1], r[1], oc)),
        RequantMode::Full { lsh, min } => {
            let [m0, l0, e0, mask0, half0, _] = r[0];
            let [m1, l1, e1, mask1, half1, _] = r[1];
            (
                requant_pre(x[0], [m0, l0, e0, mask0, half0], lsh, min, oc),
                requant_pre(x[1], [m1, l1, e1, mask1, half1], lsh, min, oc),
            )
        }
    };
    // Clamped into T's range already, so saturating packs are exact.
    let w16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(v0, v1), 0b11_01_10_00);
    let (l, h) = (_mm256_castsi256_si128(w16), _mm256_extracti128_si256(w16, 1));
    if T::SIGNED {
        _mm_packs_epi16(l, h)
    } else {
        _mm_packus_epi16(l, h)
    }
}

/// [`RequantMode::Short`] on 8 int32 sums (bias included): `r` holds
/// the per-lane constants in `Requant::panels` order (multiplier at 0,
/// right shift at 2, `round_oc` at 5); `oc[0]` is inside `round_oc`.
#[inline]
#[target_feature(enable = "avx2")]
fn requant_short(x: __m256i, r: [__m256i; RQ_FIELDS], oc: [i32; 3]) -> __m256i {
    let hm = doubling_high_mul(x, r[0], false);
    let t = _mm256_add_epi32(_mm256_add_epi32(hm, r[5]), _mm256_srai_epi32(hm, 31));
    let v = _mm256_srav_epi32(t, r[2]);
    _mm256_min_epi32(_mm256_max_epi32(v, _mm256_set1_epi32(oc[1])), _mm256_set1_epi32(oc[2]))
}

/// [`requant_short`] on 8 sums with channels `c0 ..` of `rq` (tests).
#[cfg(test)]
pub(super) fn requant_short8(_t: Avx2Fma, rq: &Requant, c0: usize, x: [i32; 8], oc: [i32; 3]) -> [i32; 8] {
    let v = |a: &[i32]| -> __m256i {
        let a: [i32; 8] = a[c0..c0 + 8].try_into().unwrap();
        // SAFETY: an 8-value array is 32 readable bytes.
        unsafe { _mm256_loadu_si256(a.as_ptr() as *const __m256i) }
    };
    let mut out = [0i32; 8];
    // SAFETY: AVX2 is proven by the token; `out` has 8 values.
    unsafe {
        let zero = _mm256_setzero_si256();
        let r = [v(&rq.mult), zero, v(&rq.rsh), zero, zero, v(&rq.round_oc)];
        let x = _mm256_loadu_si256(x.as_ptr() as *const __m256i);
        _mm256_storeu_si256(out.as_mut_ptr() as *mut __m256i, requant_short(x, r, oc));
    }
    out
}

/// [`requant_pre`] with the mask and half derived from the right shift
/// `e`, every step enabled.
#[inline]
#[target_feature(enable = "avx2")]
fn requant_v(x: __m256i, m: __m256i, lsh: __m256i, e: __m256i, oc: [i32; 3]) -> __m256i {
    let one = _mm256_set1_epi32(1);
    let mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, e), one);
    requant_pre(x, [m, lsh, e, mask, _mm256_srai_epi32(mask, 1)], true, true, oc)
}

/// Depthwise sums (depth multiplier 1) of whole groups of 8 channels
/// into `acc`; returns how many channels were done (the rest is left to
/// the portable loop).
pub(super) fn dwconv_row<T: Q8>(
    _t: Avx2Fma,
    input: &[T],
    w: &[i32],
    taps: &[(usize, usize)],
    off: i32,
    acc: &mut [i32],
) -> usize {
    let c = acc.len();
    let done = c / 8 * 8;
    check_dw_row(input.len(), w.len(), taps, c);
    // SAFETY: AVX2 is proven by the token; every tap's input row and
    // weight row have `c >= done` values (asserted above), and `acc`
    // has `c`.
    unsafe { qs8_dwconv_c8_avx2::<T>(done, input.as_ptr(), w.as_ptr(), c, taps, off, acc.as_mut_ptr()) };
    done
}

#[target_feature(enable = "avx2")]
unsafe fn qs8_dwconv_c8_avx2<T: Q8>(
    done: usize,
    input: *const T,
    w: *const i32,
    c: usize,
    taps: &[(usize, usize)],
    off: i32,
    acc: *mut i32,
) {
    // SAFETY: bounds checked by `dwconv_row`; `T` is one byte (i8/u8).
    unsafe {
        let voff = _mm256_set1_epi32(off);
        let mut cb = 0;
        while cb < done {
            let mut s = _mm256_setzero_si256();
            for &(xo, t) in taps {
                let bytes = _mm_loadl_epi64(input.add(xo + cb) as *const __m128i);
                let x = if T::SIGNED { _mm256_cvtepi8_epi32(bytes) } else { _mm256_cvtepu8_epi32(bytes) };
                let x = _mm256_add_epi32(x, voff);
                let wv = _mm256_loadu_si256(w.add(t * c + cb) as *const __m256i);
                s = _mm256_add_epi32(s, _mm256_mullo_epi32(x, wv));
            }
            _mm256_storeu_si256(acc.add(cb) as *mut __m256i, s);
            cb += 8;
        }
    }
}
