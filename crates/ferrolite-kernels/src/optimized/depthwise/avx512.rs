//! `f32_dwconv_avx512`: the float depthwise kernels on 512-bit registers,
//! 16 channels each. Every channel's sum starts from zero and adds one
//! fused product per tap in tap order, then the epilogue, exactly as the
//! AVX2 kernels do, so both levels give the same bits. Channel tails use
//! masked loads and stores (no reads past `c`).

use super::{DwEpilogue, Taps};
use crate::optimized::isa::Avx512;
use std::arch::x86_64::*;

/// Safe entry: `np` output pixels whose taps are `taps` shifted by
/// `q * step` for pixel `q`; checks every offset the kernels will touch,
/// then runs them.
#[allow(clippy::too_many_arguments)]
pub(super) fn f32_dwconv_avx512(
    token: Avx512,
    taps: &Taps,
    np: usize,
    step: usize,
    input: &[f32],
    weights: &[f32],
    epi: &DwEpilogue<'_>,
    out: &mut [f32],
) {
    let c = taps.check(np, step, input, weights, epi, out, 1);
    let _ = token;
    // Taps in threes `step` apart (a 3-wide filter row at stride 1): four
    // neighbouring pixels read six columns per row between them.
    let shared = taps.input.len().is_multiple_of(3)
        && taps.input.chunks_exact(3).all(|t| t[1] == t[0] + step && t[2] == t[0] + 2 * step);
    // A run of pixels goes channel chunk by chunk: the chunk's input rows
    // for the whole run stay in L1 as the pixels sweep along, where all
    // channels of a wide layer (14x14x576: 2.3 KB a pixel) would not.
    for c0 in (0..c).step_by(CHUNK) {
        let chans = c0..(c0 + CHUNK).min(c);
        let mut q = 0;
        while q + 4 <= np {
            // SAFETY: the token proves AVX-512 F; every tap's input range
            // for pixels `q .. q + 4` and its `c` weights were checked
            // above, and the bias and scale hold `c` values.
            unsafe {
                let out = &mut out[q * c..(q + 4) * c];
                let (x, w) = (input.as_ptr(), weights.as_ptr());
                match shared {
                    true => dwconv_cols_px4(taps, q * step, step, x, w, epi, out, chans.clone()),
                    false => dwconv_px::<4>(taps, q * step, step, x, w, epi, out, chans.clone()),
                }
            }
            q += 4;
        }
        while q < np {
            // SAFETY: as above, for pixel `q`.
            unsafe {
                let out = &mut out[q * c..(q + 1) * c];
                dwconv_px::<1>(taps, q * step, step, input.as_ptr(), weights.as_ptr(), epi, out, chans.clone())
            }
            q += 1;
        }
    }
}

/// Channels per pass over a run of pixels (see [`f32_dwconv_avx512`]).
const CHUNK: usize = 128;

/// The lanes of the first `n <= 16` channels.
#[inline(always)]
fn lanes(n: usize) -> __mmask16 {
    if n >= 16 {
        0xffff
    } else {
        ((1u32 << n) - 1) as __mmask16
    }
}

/// [`DwEpilogue::apply`] on the channels `ch ..` of `mask`, `[lo, hi]` its
/// clamp.
///
/// # Safety
/// AVX-512 F; `bias[ch..]` and `scale[ch..]` readable on the lanes of `mask`.
#[inline(always)]
unsafe fn finish16(epi: &DwEpilogue<'_>, a: __m512, ch: usize, mask: __mmask16, lo: __m512, hi: __m512) -> __m512 {
    // SAFETY: per the contract; masked lanes are not read.
    unsafe {
        let bias = epi.bias.map(|b| _mm512_maskz_loadu_ps(mask, b.as_ptr().add(ch)));
        let v = match epi.scale {
            None => _mm512_add_ps(a, bias.unwrap_or(_mm512_setzero_ps())),
            Some(s) => {
                let v = _mm512_mul_ps(
                    _mm512_add_ps(a, _mm512_setzero_ps()),
                    _mm512_maskz_loadu_ps(mask, s.as_ptr().add(ch)),
                );
                match bias {
                    Some(b) => _mm512_add_ps(v, b),
                    None => v,
                }
            }
        };
        // max(lo, v) / min(hi, v) return `v` when it is NaN, like
        // `ClampF32::apply`.
        _mm512_min_ps(hi, _mm512_max_ps(lo, v))
    }
}

/// `R` registers (16 channels each) of `P` pixels from channel `ch`:
/// `P * R` independent sums, each from zero with one fused product per tap
/// in tap order.
///
/// # Safety
/// As [`dwconv_px`], with `ch + 16 * R <= c`; `input` already shifted.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn dwconv_block<const P: usize, const R: usize>(
    taps: &Taps,
    step: usize,
    input: *const f32,
    weights: *const f32,
    epi: &DwEpilogue<'_>,
    op: *mut f32,
    c: usize,
    ch: usize,
    (lo, hi): (__m512, __m512),
) {
    // SAFETY: per the contract.
    unsafe {
        let mut a = [[_mm512_setzero_ps(); R]; P];
        for (&io, &wo) in taps.input.iter().zip(&taps.weight) {
            let mut w = [_mm512_setzero_ps(); R];
            for (r, wr) in w.iter_mut().enumerate() {
                *wr = _mm512_loadu_ps(weights.add(wo + ch + 16 * r));
            }
            let x = input.add(io + ch);
            for (q, aq) in a.iter_mut().enumerate() {
                let xq = x.add(q * step);
                for (r, ar) in aq.iter_mut().enumerate() {
                    *ar = _mm512_fmadd_ps(_mm512_loadu_ps(xq.add(16 * r)), w[r], *ar);
                }
            }
        }
        for (q, aq) in a.iter().enumerate() {
            for (r, &ar) in aq.iter().enumerate() {
                let at = ch + 16 * r;
                _mm512_storeu_ps(op.add(q * c + at), finish16(epi, ar, at, 0xffff, lo, hi));
            }
        }
    }
}

/// `P` pixels (1 or 4) sharing their weights, pixel `q` reading at `shift +
/// q * step`, writing `out[q * c ..]`, channels `chans` of the `c` per
/// pixel: eight sums at a time (32 channels
/// of four pixels, or 128 of one: one pixel's two sums a tap would wait on
/// the FMA latency, and the edge pixels of a 14x14 image are a quarter of
/// its pixels), then 32 channels, then 16 with a mask on the last.
///
/// # Safety
/// AVX-512 F; for every tap and `q < P`, `input[io + shift + q*step ..][..c]`
/// and `weights[wo..][..c]` in bounds (`c` = the checked channel count,
/// `out.len() >= P * c`); the bias and scale hold `c` values.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn dwconv_px<const P: usize>(
    taps: &Taps,
    shift: usize,
    step: usize,
    input: *const f32,
    weights: *const f32,
    epi: &DwEpilogue<'_>,
    out: &mut [f32],
    chans: std::ops::Range<usize>,
) {
    let c = out.len() / P;
    debug_assert!(chans.end <= c);
    let lo = _mm512_set1_ps(epi.clamp.min);
    let hi = _mm512_set1_ps(epi.clamp.max);
    let op = out.as_mut_ptr();
    // SAFETY (whole body): offsets stay below `c` for every pixel's input,
    // the weights and the output, per the contract; tails are masked.
    unsafe {
        // (wrapping: a pixel without valid taps may shift past `input`;
        // every tap read is checked.)
        let input = input.wrapping_add(shift);
        let (mut ch, c_end) = (chans.start, chans.end);
        if P == 1 {
            while ch + 128 <= c_end {
                dwconv_block::<P, 8>(taps, step, input, weights, epi, op, c, ch, (lo, hi));
                ch += 128;
            }
        }
        while ch + 32 <= c_end {
            dwconv_block::<P, 2>(taps, step, input, weights, epi, op, c, ch, (lo, hi));
            ch += 32;
        }
        while ch < c_end {
            let mask = lanes(c_end - ch);
            let mut a = [_mm512_setzero_ps(); P];
            for (&io, &wo) in taps.input.iter().zip(&taps.weight) {
                let w = _mm512_maskz_loadu_ps(mask, weights.add(wo + ch));
                let x = input.add(io + ch);
                for (q, aq) in a.iter_mut().enumerate() {
                    *aq = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, x.add(q * step)), w, *aq);
                }
            }
            for (q, &aq) in a.iter().enumerate() {
                _mm512_mask_storeu_ps(op.add(q * c + ch), mask, finish16(epi, aq, ch, mask, lo, hi));
            }
            ch += 16;
        }
    }
}

/// `dwconv_cols_px4`: four neighbouring pixels whose taps go in threes
/// `step` apart (a 3-wide filter row at stride 1): pixel `q`'s tap `fx`
/// of a row reads column `q + fx`, so the row's six columns are loaded
/// once each and shared, 6 loads for 12 FMAs per register where
/// [`dwconv_px`] makes 12. Each sum still adds its taps in tap order, so
/// the same bits. 32 channels at a time, then 16 with a mask.
///
/// # Safety
/// As [`dwconv_px`] with `P = 4`; `taps.input` in threes `t, t + step,
/// t + 2 step`.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
// The tap index picks the pixel as well as the weights.
#[allow(clippy::needless_range_loop)]
unsafe fn dwconv_cols_px4(
    taps: &Taps,
    shift: usize,
    step: usize,
    input: *const f32,
    weights: *const f32,
    epi: &DwEpilogue<'_>,
    out: &mut [f32],
    chans: std::ops::Range<usize>,
) {
    let c = out.len() / 4;
    debug_assert!(chans.end <= c);
    let lo = _mm512_set1_ps(epi.clamp.min);
    let hi = _mm512_set1_ps(epi.clamp.max);
    let op = out.as_mut_ptr();
    // SAFETY (whole body): column `q + fx` of a row is pixel `q`'s tap
    // `fx`, whose `c` values per pixel are in bounds per the contract;
    // tails are masked.
    unsafe {
        let input = input.wrapping_add(shift);
        let (mut ch, c_end) = (chans.start, chans.end);
        while ch < c_end {
            // Two registers of 16 channels, or one (masked) at the end.
            let two = ch + 32 <= c_end;
            let mask = lanes(c_end - ch);
            let mut a = [[_mm512_setzero_ps(); 2]; 4];
            for (io, wo) in taps.input.chunks_exact(3).zip(taps.weight.chunks_exact(3)) {
                let mut w = [[_mm512_setzero_ps(); 2]; 3];
                for (wf, &o) in w.iter_mut().zip(wo) {
                    wf[0] = _mm512_maskz_loadu_ps(mask, weights.add(o + ch));
                    if two {
                        wf[1] = _mm512_loadu_ps(weights.add(o + ch + 16));
                    }
                }
                let x = input.add(io[0] + ch);
                for j in 0..6 {
                    let xj = x.add(j * step);
                    let x0 = _mm512_maskz_loadu_ps(mask, xj);
                    let x1 = if two { _mm512_loadu_ps(xj.add(16)) } else { x0 };
                    // Constant after unrolling: the pixel reading column
                    // `j` at tap `fx`, if any.
                    for fx in 0..3 {
                        if j >= fx && j - fx < 4 {
                            let q = j - fx;
                            a[q][0] = _mm512_fmadd_ps(x0, w[fx][0], a[q][0]);
                            if two {
                                a[q][1] = _mm512_fmadd_ps(x1, w[fx][1], a[q][1]);
                            }
                        }
                    }
                }
            }
            for (q, aq) in a.iter().enumerate() {
                let at = op.add(q * c + ch);
                _mm512_mask_storeu_ps(at, mask, finish16(epi, aq[0], ch, mask, lo, hi));
                if two {
                    _mm512_storeu_ps(at.add(16), finish16(epi, aq[1], ch + 16, 0xffff, lo, hi));
                }
            }
            ch += if two { 32 } else { 16 };
        }
    }
}
