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
    let mut q = 0;
    while q + 4 <= np {
        // SAFETY: the token proves AVX-512 F; every tap's input range for
        // pixels `q .. q + 4` and its `c` weights were checked above, and
        // the bias and scale hold `c` values.
        unsafe {
            dwconv_px::<4>(taps, q * step, step, input.as_ptr(), weights.as_ptr(), epi, &mut out[q * c..(q + 4) * c])
        }
        q += 4;
    }
    while q < np {
        // SAFETY: as above, for pixel `q`.
        unsafe {
            dwconv_px::<1>(taps, q * step, step, input.as_ptr(), weights.as_ptr(), epi, &mut out[q * c..(q + 1) * c])
        }
        q += 1;
    }
}

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

/// `P` pixels (1 or 4) sharing their weights, pixel `q` reading at `shift +
/// q * step`, writing `out[q * c ..]`: 32 channels (two registers per
/// pixel) at a time, then 16 with a mask on the last.
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
) {
    let c = out.len() / P;
    let lo = _mm512_set1_ps(epi.clamp.min);
    let hi = _mm512_set1_ps(epi.clamp.max);
    let op = out.as_mut_ptr();
    // SAFETY (whole body): offsets stay below `c` for every pixel's input,
    // the weights and the output, per the contract; tails are masked.
    unsafe {
        // (wrapping: a pixel without valid taps may shift past `input`;
        // every tap read is checked.)
        let input = input.wrapping_add(shift);
        let mut ch = 0;
        while ch + 32 <= c {
            let mut a = [[_mm512_setzero_ps(); 2]; P];
            for (&io, &wo) in taps.input.iter().zip(&taps.weight) {
                let w0 = _mm512_loadu_ps(weights.add(wo + ch));
                let w1 = _mm512_loadu_ps(weights.add(wo + ch + 16));
                let x = input.add(io + ch);
                for (q, aq) in a.iter_mut().enumerate() {
                    let xq = x.add(q * step);
                    aq[0] = _mm512_fmadd_ps(_mm512_loadu_ps(xq), w0, aq[0]);
                    aq[1] = _mm512_fmadd_ps(_mm512_loadu_ps(xq.add(16)), w1, aq[1]);
                }
            }
            for (q, aq) in a.iter().enumerate() {
                _mm512_storeu_ps(op.add(q * c + ch), finish16(epi, aq[0], ch, 0xffff, lo, hi));
                _mm512_storeu_ps(op.add(q * c + ch + 16), finish16(epi, aq[1], ch + 16, 0xffff, lo, hi));
            }
            ch += 32;
        }
        while ch < c {
            let mask = lanes(c - ch);
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
