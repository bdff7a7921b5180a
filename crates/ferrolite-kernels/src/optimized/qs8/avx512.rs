//! AVX-512 twins of the `qs8` depthwise kernels: 16 channels per 512-bit
//! register, one tap at a time (the input sign-extended to i32 lanes, one
//! `vpmaddwd` against weights whose high halves are zero: no shuffles to
//! interleave tap pairs, which bound the AVX2 kernels' port), and the
//! exact requantisation on 16 lanes at once. Same sums (integers, order-free) and the same
//! requantisation steps as `avx2`, so the same bytes. Reached through the
//! AVX2 entry points (`avx2::dwconv16_row` / `dwconv16_span`), which
//! check the bounds and take an `Avx512` token to pick these; the VNNI
//! conv (`vnni`) requantises with [`requant16`] too.

use super::avx2::DwArgs;
use super::{RequantMode, Q8, RQ_FIELDS};
use std::arch::x86_64::*;

/// TFLite's saturating rounding doubling high multiply on 16 lanes, as
/// `avx2::doubling_high_mul`: bits 31..62 of `a * m + 2^30`; `saturate`:
/// `MIN * MIN` gives `MAX`.
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) fn doubling_high_mul(a: __m512i, m: __m512i, saturate: bool) -> __m512i {
    let nudge = _mm512_set1_epi64(1 << 30);
    // The odd lanes moved to the even positions (a shuffle, not a 64-bit
    // shift, which LLVM would turn into a full 64-bit multiply).
    let odd = |v: __m512i| _mm512_shuffle_epi32::<0b11_11_01_01>(v);
    let even = _mm512_add_epi64(_mm512_mul_epi32(a, m), nudge);
    let odd = _mm512_add_epi64(_mm512_mul_epi32(odd(a), odd(m)), nudge);
    let hm = _mm512_mask_blend_epi32(0xaaaa, _mm512_srli_epi64::<31>(even), _mm512_slli_epi64::<1>(odd));
    if !saturate {
        return hm;
    }
    let min = _mm512_set1_epi32(i32::MIN);
    let sat = _mm512_cmpeq_epi32_mask(a, min) & _mm512_cmpeq_epi32_mask(m, min);
    _mm512_mask_mov_epi32(hm, sat, _mm512_set1_epi32(i32::MAX))
}

/// 16 int32 sums (bias included) requantised as `mode` says (the steps of
/// `avx2::requant_short` / `requant_pre`), then narrowed to `T`'s 16
/// bytes with saturation, as the AVX2 packs do. `r`: the per-lane
/// constants in `Requant::panels` order.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn requant16<T: Q8>(x: __m512i, r: &[__m512i; RQ_FIELDS], mode: RequantMode, oc: [i32; 3]) -> __m128i {
    let v = requant16_i32(x, r, mode, oc);
    let v = _mm512_min_epi32(_mm512_max_epi32(v, _mm512_set1_epi32(oc[1])), _mm512_set1_epi32(oc[2]));
    // Saturated into T's range like the AVX2 packs (a clamp outside it
    // would otherwise wrap).
    if T::SIGNED {
        _mm512_cvtsepi32_epi8(v)
    } else {
        _mm512_cvtusepi32_epi8(_mm512_max_epi32(v, _mm512_setzero_si512()))
    }
}

/// [`requant16`] before the clamp: the requantised sums with the output
/// offset added, as int32.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn requant16_i32(x: __m512i, r: &[__m512i; RQ_FIELDS], mode: RequantMode, oc: [i32; 3]) -> __m512i {
    let [m, l, e, mask, half, round_oc] = *r;
    match mode {
        RequantMode::Short => {
            let hm = doubling_high_mul(x, m, false);
            let t = _mm512_add_epi32(_mm512_add_epi32(hm, round_oc), _mm512_srai_epi32::<31>(hm));
            _mm512_srav_epi32(t, e)
        }
        RequantMode::Full { lsh, min } => {
            let a = if lsh { _mm512_sllv_epi32(x, l) } else { x };
            let hm = doubling_high_mul(a, m, min);
            // Rounding half away from zero: up by one where the remainder
            // exceeds half (half + 1 for a negative `hm`).
            let rem = _mm512_and_si512(hm, mask);
            let up = _mm512_cmpgt_epi32_mask(rem, _mm512_sub_epi32(half, _mm512_srai_epi32::<31>(hm)));
            let q = _mm512_srav_epi32(hm, e);
            let q = _mm512_mask_add_epi32(q, up, q, _mm512_set1_epi32(1));
            _mm512_add_epi32(q, _mm512_set1_epi32(oc[0]))
        }
    }
}

/// The per-channel constants of channels `cb .. cb + 16`.
///
/// # Safety
/// Each constant row has 16 readable values from `cb`.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn rq_lanes(rq: &[*const i32; RQ_FIELDS], cb: usize) -> [__m512i; RQ_FIELDS] {
    // SAFETY: the caller's promise.
    unsafe { rq.map(|p| _mm512_loadu_si512(p.add(cb) as *const _)) }
}

/// 16 channels of one tap sign- (or zero-) extended to i32 lanes, whose
/// low halves `vpmaddwd` multiplies by the zero-extended weights in
/// `DwArgs::w32`: one widening per tap, no interleaving shuffles.
///
/// # Safety
/// 16 readable bytes at `x`.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn tap_lanes<T: Q8>(x: *const u8) -> __m512i {
    // SAFETY: the caller's promise.
    unsafe {
        let v = _mm_loadu_si128(x as *const __m128i);
        if T::SIGNED {
            _mm512_cvtepi8_epi32(v)
        } else {
            _mm512_cvtepu8_epi32(v)
        }
    }
}

/// `qs8_dwconv_px_c16_avx512`: `P` neighbouring interior pixels (first
/// taps at `x + q * step`), sharing each weight load; outputs at `out + q
/// * c`. `SHORT`: the layer is in `RequantMode::Short`.
///
/// # Safety
/// AVX-512 F/BW; the bounds `avx2::dwconv16_span` checks.
#[target_feature(enable = "avx512f,avx512bw")]
pub(super) unsafe fn qs8_dwconv_px_c16_avx512<T: Q8, const P: usize, const SHORT: bool>(
    k: &DwArgs<'_>,
    x: *const u8,
    step: usize,
    out: *mut u8,
) {
    // SAFETY: per the contract.
    unsafe {
        let c = k.c;
        let mut cb = 0;
        while cb < c {
            let mut s = [_mm512_setzero_si512(); P];
            for (t, &d) in k.deltas.iter().enumerate() {
                let w = _mm512_loadu_si512(k.w32.add(t * c + cb) as *const _);
                for (q, sq) in s.iter_mut().enumerate() {
                    let xq = tap_lanes::<T>(x.add(q * step + cb + d));
                    *sq = _mm512_add_epi32(*sq, _mm512_madd_epi16(xq, w));
                }
            }
            let mut add = _mm512_loadu_si512(k.corr.add(cb) as *const _);
            if let Some(b) = k.bias {
                add = _mm512_add_epi32(add, _mm512_loadu_si512(b.add(cb) as *const _));
            }
            let r = rq_lanes(&k.rq, cb);
            let mode = if SHORT { RequantMode::Short } else { k.mode };
            for (q, &sq) in s.iter().enumerate() {
                let bytes = requant16::<T>(_mm512_add_epi32(sq, add), &r, mode, k.oc);
                _mm_storeu_si128(out.add(q * c + cb) as *mut __m128i, bytes);
            }
            cb += 16;
        }
    }
}

/// `qs8_dwconv_c16_avx512`: one pixel whose taps are `ptrs` (an input row
/// or the padding bytes each).
///
/// # Safety
/// AVX-512 F/BW; the bounds `avx2::dwconv16_row` checks.
#[target_feature(enable = "avx512f,avx512bw")]
pub(super) unsafe fn qs8_dwconv_c16_avx512<T: Q8>(k: &DwArgs<'_>, ptrs: &[*const u8], out: *mut u8) {
    // SAFETY: per the contract.
    unsafe {
        let c = k.c;
        let mut cb = 0;
        while cb < c {
            let mut s = _mm512_loadu_si512(k.corr.add(cb) as *const _);
            if let Some(b) = k.bias {
                s = _mm512_add_epi32(s, _mm512_loadu_si512(b.add(cb) as *const _));
            }
            for (t, &p) in ptrs.iter().enumerate() {
                let w = _mm512_loadu_si512(k.w32.add(t * c + cb) as *const _);
                s = _mm512_add_epi32(s, _mm512_madd_epi16(tap_lanes::<T>(p.add(cb)), w));
            }
            let bytes = requant16::<T>(s, &rq_lanes(&k.rq, cb), k.mode, k.oc);
            _mm_storeu_si128(out.add(cb) as *mut __m128i, bytes);
            cb += 16;
        }
    }
}
