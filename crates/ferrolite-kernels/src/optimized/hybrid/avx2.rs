//! The x86-64 AVX2 kernels of `hybrid`: input quantisation (range scan and
//! rounding) and the float epilogues. Reached only through the `Avx2Fma`
//! token.

use super::{QStore, Scale, StoreKind};
use crate::activation::ClampF32;
use crate::optimized::isa::Avx2Fma;
use std::arch::x86_64::*;

/// `(min, max)` of `values`, or `None` when it is empty or holds a NaN.
pub(super) fn minmax(_t: Avx2Fma, values: &[f32]) -> Option<(f32, f32)> {
    if values.is_empty() {
        return None;
    }
    // SAFETY: AVX2 is proven by the token; the kernel reads only
    // `values.len()` floats from its start.
    unsafe { minmax_avx2(values.as_ptr(), values.len()) }
}

#[target_feature(enable = "avx2")]
unsafe fn minmax_avx2(x: *const f32, n: usize) -> Option<(f32, f32)> {
    // SAFETY: the caller checked `n >= 1` readable floats behind `x`.
    unsafe {
        let mut i = 0;
        let (mut lo, mut hi) = (x.read(), x.read());
        let mut nan = lo.is_nan();
        if n >= 16 {
            // Two chains each, and one unordered compare finds a NaN in
            // either of two vectors.
            let (a, b) = (_mm256_loadu_ps(x), _mm256_loadu_ps(x.add(8)));
            let (mut lo0, mut hi0, mut lo1, mut hi1) = (a, a, b, b);
            let mut vnan = _mm256_cmp_ps(a, b, _CMP_UNORD_Q);
            i = 16;
            while i + 16 <= n {
                let (a, b) = (_mm256_loadu_ps(x.add(i)), _mm256_loadu_ps(x.add(i + 8)));
                lo0 = _mm256_min_ps(lo0, a);
                hi0 = _mm256_max_ps(hi0, a);
                lo1 = _mm256_min_ps(lo1, b);
                hi1 = _mm256_max_ps(hi1, b);
                vnan = _mm256_or_ps(vnan, _mm256_cmp_ps(a, b, _CMP_UNORD_Q));
                i += 16;
            }
            nan |= _mm256_movemask_ps(vnan) != 0;
            let mut l = [0f32; 8];
            let mut h = [0f32; 8];
            _mm256_storeu_ps(l.as_mut_ptr(), _mm256_min_ps(lo0, lo1));
            _mm256_storeu_ps(h.as_mut_ptr(), _mm256_max_ps(hi0, hi1));
            for k in 0..8 {
                lo = if l[k] < lo { l[k] } else { lo };
                hi = if h[k] > hi { h[k] } else { hi };
            }
        }
        while i < n {
            let v = x.add(i).read();
            nan |= v.is_nan();
            lo = if v < lo { v } else { lo };
            hi = if v > hi { v } else { hi };
            i += 1;
        }
        if nan {
            None
        } else {
            Some((lo, hi))
        }
    }
}

/// Quantise whole groups of 16 values into `out` as
/// `clamp(round(v * inv) [+ offset first, asymmetric], lo, hi) - offset`;
/// returns how many were done (the rest is left to the portable loop).
/// Every `v * inv` must be finite.
#[allow(clippy::too_many_arguments)]
pub(super) fn quantize<T: QStore>(
    _t: Avx2Fma,
    values: &[f32],
    inv: f32,
    offset: i32,
    asymmetric: bool,
    lo: i32,
    hi: i32,
    out: &mut [T],
) -> usize {
    let done = values.len().min(out.len()) / 16 * 16;
    let p = [inv, offset as f32, lo as f32, hi as f32];
    // SAFETY: AVX2 is proven by the token; the kernels read and write
    // `done` values, which both slices hold (`T` is i16 or f32 as named).
    unsafe {
        match T::KIND {
            StoreKind::I16 => {
                quantize_avx2::<false>(values.as_ptr(), done, p, offset, asymmetric, out.as_mut_ptr() as *mut u8)
            }
            StoreKind::F32 => {
                quantize_avx2::<true>(values.as_ptr(), done, p, offset, asymmetric, out.as_mut_ptr() as *mut u8)
            }
        }
    }
    done
}

/// `clamp(p, lo, hi)` rounded half away from zero (`f32::round`), as
/// i32, minus the offset. `p` must not be NaN. Clamping first is the
/// same as rounding first (the bounds are integers); then
/// `trunc(c + copysign(0.49999997, c))` is exactly `round(c)`: below 0.5
/// the sum stays below 1, from 0.5 up a fraction >= 0.5 carries to the
/// next integer and a smaller one (at most 0.5 - ulp) does not.
#[inline]
#[target_feature(enable = "avx2")]
fn round_clamp(p: __m256, lo: __m256, hi: __m256, off: __m256i) -> __m256i {
    let c = _mm256_min_ps(_mm256_max_ps(p, lo), hi);
    let sign = _mm256_and_ps(c, _mm256_castsi256_ps(_mm256_set1_epi32(i32::MIN)));
    let half = _mm256_or_ps(sign, _mm256_set1_ps(0.49999997));
    _mm256_sub_epi32(_mm256_cvttps_epi32(_mm256_add_ps(c, half)), off)
}

/// `p = [inv, offset as f32, lo, hi]`; `F32`: store f32 values, else i16.
#[target_feature(enable = "avx2")]
unsafe fn quantize_avx2<const F32: bool>(
    x: *const f32,
    n: usize,
    p: [f32; 4],
    offset: i32,
    asymmetric: bool,
    out: *mut u8,
) {
    // SAFETY: the caller checked `n` (a multiple of 16) readable floats
    // behind `x` and `n` writable values of the stored type behind `out`.
    unsafe {
        let vinv = _mm256_set1_ps(p[0]);
        let voff_f = _mm256_set1_ps(p[1]);
        let voff = _mm256_set1_epi32(offset);
        let (vlo, vhi) = (_mm256_set1_ps(p[2]), _mm256_set1_ps(p[3]));
        let mut i = 0;
        while i < n {
            let mut p0 = _mm256_mul_ps(_mm256_loadu_ps(x.add(i)), vinv);
            let mut p1 = _mm256_mul_ps(_mm256_loadu_ps(x.add(i + 8)), vinv);
            if asymmetric {
                // `offset + v * inv`: a separate add, as the reference (no FMA).
                p0 = _mm256_add_ps(voff_f, p0);
                p1 = _mm256_add_ps(voff_f, p1);
            }
            let q0 = round_clamp(p0, vlo, vhi, voff);
            let q1 = round_clamp(p1, vlo, vhi, voff);
            if F32 {
                let o = out as *mut f32;
                _mm256_storeu_ps(o.add(i), _mm256_cvtepi32_ps(q0));
                _mm256_storeu_ps(o.add(i + 8), _mm256_cvtepi32_ps(q1));
            } else {
                // Values are within -255..=255: the saturating pack is
                // exact; it interleaves 128-bit halves, the permute
                // restores the order.
                let packed = _mm256_permute4x64_epi64(_mm256_packs_epi32(q0, q1), 0b11_01_10_00);
                _mm256_storeu_si256((out as *mut i16).add(i) as *mut __m256i, packed);
            }
            i += 16;
        }
    }
}

/// `_mm256_min_ps(hi, _mm256_max_ps(lo, v))`: `ClampF32::apply`,
/// NaN included (max/min return their second operand on a NaN).
#[inline]
#[target_feature(enable = "avx2")]
fn clamp8(v: __m256, lo: __m256, hi: __m256) -> __m256 {
    _mm256_min_ps(hi, _mm256_max_ps(lo, v))
}

/// The vector part of `super::epilogue`: whole groups of 8 channels;
/// returns how many were done.
pub(super) fn epilogue(
    _t: Avx2Fma,
    acc: &[i32],
    scale: Scale<'_>,
    zero_add: bool,
    bias: Option<&[f32]>,
    clamp: ClampF32,
    out: &mut [f32],
) -> usize {
    let done = out.len() / 8 * 8;
    let (w, s) = match scale {
        Scale::One(s) => (None, s),
        Scale::Seq(w, s) | Scale::Prod(w, s) => (Some(w), s),
    };
    assert!(acc.len() >= done && w.is_none_or(|w| w.len() >= done) && bias.is_none_or(|b| b.len() >= done));
    let seq = matches!(scale, Scale::Seq(..));
    // SAFETY: AVX2 is proven by the token; every slice holds `done`
    // values (asserted above).
    unsafe {
        epilogue_avx2(
            done,
            acc.as_ptr(),
            w.map(|w| w.as_ptr()),
            s,
            seq,
            zero_add,
            bias.map(|b| b.as_ptr()),
            [clamp.min, clamp.max],
            out.as_mut_ptr(),
        )
    };
    done
}

#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2")]
unsafe fn epilogue_avx2(
    n: usize,
    acc: *const i32,
    w: Option<*const f32>,
    s: f32,
    seq: bool,
    zero_add: bool,
    bias: Option<*const f32>,
    clamp: [f32; 2],
    out: *mut f32,
) {
    // SAFETY: the caller checked `n` (a multiple of 8) values behind
    // every pointer.
    unsafe {
        let vs = _mm256_set1_ps(s);
        let (lo, hi) = (_mm256_set1_ps(clamp[0]), _mm256_set1_ps(clamp[1]));
        let mut c = 0;
        while c < n {
            let a = _mm256_cvtepi32_ps(_mm256_loadu_si256(acc.add(c) as *const __m256i));
            let mut v = match w {
                None => _mm256_mul_ps(a, vs),
                Some(w) if seq => _mm256_mul_ps(_mm256_mul_ps(a, _mm256_loadu_ps(w.add(c))), vs),
                Some(w) => _mm256_mul_ps(a, _mm256_mul_ps(_mm256_loadu_ps(w.add(c)), vs)),
            };
            if zero_add {
                v = _mm256_add_ps(_mm256_setzero_ps(), v);
            }
            if let Some(b) = bias {
                v = _mm256_add_ps(v, _mm256_loadu_ps(b.add(c)));
            }
            _mm256_storeu_ps(out.add(c), clamp8(v, lo, hi));
            c += 8;
        }
    }
}

/// Depthwise (depth multiplier 1) over f32 copies of the integer
/// weights and `q - offset` inputs, whole groups of 8 channels, with the
/// epilogue `clamp(sum * (sw[c] * s_in) + bias[c])`; returns how many
/// channels were done. The sums are exact (see `FLOAT_EXACT_TAPS`).
#[allow(clippy::too_many_arguments)]
pub(super) fn dwconv_f32_row(
    _t: Avx2Fma,
    input: &[f32],
    w: &[f32],
    taps: &[(usize, usize)],
    sw: &[f32],
    s_in: f32,
    bias: Option<&[f32]>,
    clamp: ClampF32,
    out: &mut [f32],
) -> usize {
    let c = out.len();
    let done = c / 8 * 8;
    for &(xo, t) in taps {
        assert!(xo + c <= input.len() && (t + 1) * c <= w.len());
    }
    assert!(sw.len() >= c && bias.is_none_or(|b| b.len() >= c));
    // SAFETY: AVX2 and FMA are proven by the token; every tap's input
    // row and weight row have `c >= done` values, and so do `sw`,
    // `bias` and `out` (asserted above).
    unsafe {
        hybrid_dwconv_f32_avx2(
            done,
            input.as_ptr(),
            w.as_ptr(),
            c,
            taps,
            sw.as_ptr(),
            s_in,
            bias.map(|b| b.as_ptr()),
            [clamp.min, clamp.max],
            out.as_mut_ptr(),
        )
    };
    done
}

#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
unsafe fn hybrid_dwconv_f32_avx2(
    done: usize,
    input: *const f32,
    w: *const f32,
    c: usize,
    taps: &[(usize, usize)],
    sw: *const f32,
    s_in: f32,
    bias: Option<*const f32>,
    clamp: [f32; 2],
    out: *mut f32,
) {
    // SAFETY: bounds checked by `dwconv_f32_row`.
    unsafe {
        let vs = _mm256_set1_ps(s_in);
        let (lo, hi) = (_mm256_set1_ps(clamp[0]), _mm256_set1_ps(clamp[1]));
        // `f32(acc) * (s_w[c] * s_in) + bias`, then the clamp.
        #[inline]
        #[target_feature(enable = "avx2")]
        unsafe fn finish(
            sw: *const f32,
            vs: __m256,
            bias: Option<*const f32>,
            lo: __m256,
            hi: __m256,
            out: *mut f32,
            cb: usize,
            sum: __m256,
        ) {
            // SAFETY: `cb + 8` values behind `sw`, `bias` and `out` (the caller's bounds).
            unsafe {
                let mut v = _mm256_mul_ps(sum, _mm256_mul_ps(_mm256_loadu_ps(sw.add(cb)), vs));
                if let Some(b) = bias {
                    v = _mm256_add_ps(v, _mm256_loadu_ps(b.add(cb)));
                }
                _mm256_storeu_ps(out.add(cb), clamp8(v, lo, hi));
            }
        }
        let mut cb = 0;
        while cb + 16 <= done {
            let (mut s0, mut s1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
            for &(xo, t) in taps {
                let (x, wt) = (input.add(xo + cb), w.add(t * c + cb));
                s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x), _mm256_loadu_ps(wt), s0);
                s1 = _mm256_fmadd_ps(_mm256_loadu_ps(x.add(8)), _mm256_loadu_ps(wt.add(8)), s1);
            }
            finish(sw, vs, bias, lo, hi, out, cb, s0);
            finish(sw, vs, bias, lo, hi, out, cb + 8, s1);
            cb += 16;
        }
        while cb < done {
            let mut s0 = _mm256_setzero_ps();
            for &(xo, t) in taps {
                s0 = _mm256_fmadd_ps(_mm256_loadu_ps(input.add(xo + cb)), _mm256_loadu_ps(w.add(t * c + cb)), s0);
            }
            finish(sw, vs, bias, lo, hi, out, cb, s0);
            cb += 8;
        }
    }
}

/// Depthwise sums (depth multiplier 1) of whole groups of 8 channels
/// into `acc`; returns how many channels were done.
pub(super) fn dwconv_row(_t: Avx2Fma, input: &[i16], w: &[i32], taps: &[(usize, usize)], acc: &mut [i32]) -> usize {
    let c = acc.len();
    let done = c / 8 * 8;
    for &(xo, t) in taps {
        assert!(xo + c <= input.len() && (t + 1) * c <= w.len());
    }
    // SAFETY: AVX2 is proven by the token; every tap's input row and
    // weight row have `c >= done` values (asserted above), and `acc`
    // has `c`.
    unsafe { hybrid_dwconv_c8_avx2(done, input.as_ptr(), w.as_ptr(), c, taps, acc.as_mut_ptr()) };
    done
}

#[target_feature(enable = "avx2")]
unsafe fn hybrid_dwconv_c8_avx2(
    done: usize,
    input: *const i16,
    w: *const i32,
    c: usize,
    taps: &[(usize, usize)],
    acc: *mut i32,
) {
    // SAFETY: bounds checked by `dwconv_row`.
    unsafe {
        let mut cb = 0;
        while cb < done {
            let mut s = _mm256_setzero_si256();
            for &(xo, t) in taps {
                let x = _mm256_cvtepi16_epi32(_mm_loadu_si128(input.add(xo + cb) as *const __m128i));
                let wv = _mm256_loadu_si256(w.add(t * c + cb) as *const __m256i);
                s = _mm256_add_epi32(s, _mm256_mullo_epi32(x, wv));
            }
            _mm256_storeu_si256(acc.add(cb) as *mut __m256i, s);
            cb += 8;
        }
    }
}
