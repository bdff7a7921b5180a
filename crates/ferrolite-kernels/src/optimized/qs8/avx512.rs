//! AVX-512 twins of the `qs8` depthwise kernels: 16 channels per 512-bit
//! register, one tap at a time (the input sign-extended to i32 lanes, one
//! `vpmaddwd` against weights whose high halves are zero: no shuffles to
//! interleave tap pairs, which bound the AVX2 kernels' port), and the
//! exact requantisation on 16 lanes at once. Same sums (integers, order-free) and the same
//! requantisation steps as `avx2`, so the same bytes. Reached through the
//! AVX2 entry points (`avx2::dwconv16_row` / `dwconv16_span`), which
//! check the bounds and take an `Avx512` token to pick these; the VNNI
//! conv (`vnni`) requantises with [`requant16`] too. With VNNI, runs of
//! four interior pixels whose filter rows are 3 or 5 adjacent taps share
//! their widened input columns and add with `vpdpwssd`
//! ([`qs8_dwconv_px4_cols_vnni`]).

use super::avx2::DwArgs;
use super::{RequantMode, PRODUCT_FIELDS, Q8, RQ_FIELDS};
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

/// `RequantMode::Short`'s `(hm + round_oc + (hm >> 31)) >> e` on 16 lanes
/// from `u = x + 2^31` (the sum with its top bit flipped), where every
/// multiplier `m` exceeds `2^30` (so `hm >> 31` is `x >> 31`):
///
/// `u * 2m + K = 2 x m + 2^31 + (round_oc - 1) * 2^32` (mod `2^64`, `K`
/// from `Requant::product_rows`), whose high half is `hm + round_oc -
/// 1`; `u >> 31` (logical) adds back the one for `x >= 0`. Two unsigned
/// 32x32 multiplies (even and odd lanes) and one masked shuffle to gather
/// the high halves, against the doubling high multiply's two multiplies,
/// two shuffles and the separate rounding, offset and sign steps.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn product16(u: __m512i, c: &[__m512i; PRODUCT_FIELDS]) -> __m512i {
    let [m2, m2_odd, k_even, k_odd, e] = *c;
    let even = _mm512_add_epi64(_mm512_mul_epu32(u, m2), k_even);
    let odd = _mm512_add_epi64(_mm512_mul_epu32(_mm512_srli_epi64::<32>(u), m2_odd), k_odd);
    // The even lanes take `even`'s high halves (dwords 1 and 3 of each
    // 128 bits to 0 and 2); the odd lanes already hold `odd`'s.
    let high = _mm512_mask_shuffle_epi32::<0b11_11_01_01>(odd, 0x5555, even);
    _mm512_srav_epi32(_mm512_add_epi32(high, _mm512_srli_epi32::<31>(u)), e)
}

/// Four registers of requantised int32 lanes to 64 bytes of `T`, register
/// `k`'s 16 in 128-bit lane `k`: two saturating packs to 16 bits, one to
/// 8, one permutation to undo the packs' interleaving, then the clamp on
/// bytes. Saturating first and clamping to the bounds saturated into `T`
/// gives what clamping the int32 values and then saturating does (all
/// monotone), in 7 operations per 64 outputs against 16 one register at a
/// time.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
pub(super) fn narrow4<T: Q8>(v: [__m512i; 4], lo: __m512i, hi: __m512i) -> __m512i {
    let [a, b, c, d] = v;
    let (ab, cd) = (_mm512_packs_epi32(a, b), _mm512_packs_epi32(c, d));
    let bytes = if T::SIGNED { _mm512_packs_epi16(ab, cd) } else { _mm512_packus_epi16(ab, cd) };
    // Each 128-bit lane `i` now holds dword `i` of every register
    // (`a, b, c, d`): gather each register's four dwords into lane `k`.
    let order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    let bytes = _mm512_permutexvar_epi32(order, bytes);
    if T::SIGNED {
        _mm512_min_epi8(_mm512_max_epi8(bytes, lo), hi)
    } else {
        _mm512_min_epu8(_mm512_max_epu8(bytes, lo), hi)
    }
}

/// The product form's constants of 16 channels: `PRODUCT_FIELDS` rows
/// `stride` apart from `pc` (`Requant::product_rows`).
///
/// # Safety
/// 16 readable values at `pc + f * stride` for each field `f`.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn product_consts(pc: *const i32, stride: usize) -> [__m512i; PRODUCT_FIELDS] {
    // SAFETY: per the contract.
    unsafe { std::array::from_fn(|f| _mm512_loadu_si512(pc.add(f * stride) as *const _)) }
}

/// The four 128-bit lanes of `b` (one register's bytes each after
/// [`narrow4`]).
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn lanes128(b: __m512i) -> [__m128i; 4] {
    [
        _mm512_castsi512_si128(b),
        _mm512_extracti32x4_epi32::<1>(b),
        _mm512_extracti32x4_epi32::<2>(b),
        _mm512_extracti32x4_epi32::<3>(b),
    ]
}

/// The clamp bounds of `oc` saturated into `T`, in every byte.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn byte_bounds<T: Q8>(oc: [i32; 3]) -> (__m512i, __m512i) {
    let (min, max) = if T::SIGNED { (-128, 127) } else { (0, 255) };
    let b = |v: i32| _mm512_set1_epi8(v.clamp(min, max) as i8);
    (b(oc[1]), b(oc[2]))
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

/// The sums of `P` neighbouring interior pixels (first taps at `x + q *
/// step`) for channels `cb .. cb + 16`, sharing each weight load; the
/// offset correction and bias not yet added.
///
/// # Safety
/// AVX-512 F/BW; the bounds `avx2::dwconv16_span` checks, `cb + 16 <= k.c`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn dw_sums<T: Q8, const P: usize>(k: &DwArgs<'_>, x: *const u8, step: usize, cb: usize) -> [__m512i; P] {
    // SAFETY: per the contract.
    unsafe {
        let mut s = [_mm512_setzero_si512(); P];
        for (t, &d) in k.deltas.iter().enumerate() {
            let w = _mm512_loadu_si512(k.w32.add(t * k.c + cb) as *const _);
            for (q, sq) in s.iter_mut().enumerate() {
                let xq = tap_lanes::<T>(x.add(q * step + cb + d));
                *sq = _mm512_add_epi32(*sq, _mm512_madd_epi16(xq, w));
            }
        }
        s
    }
}

/// What channels `cb .. cb + 16` start from: the offset correction plus
/// the bias.
///
/// # Safety
/// `cb + 16 <= k.c`.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn dw_start(k: &DwArgs<'_>, cb: usize) -> __m512i {
    // SAFETY: per the contract.
    unsafe {
        let add = _mm512_loadu_si512(k.corr.add(cb) as *const _);
        match k.bias {
            Some(b) => _mm512_add_epi32(add, _mm512_loadu_si512(b.add(cb) as *const _)),
            None => add,
        }
    }
}

/// `qs8_dwconv_px_c16_avx512`: `P` neighbouring interior pixels
/// ([`dw_sums`]); outputs at `out + q * c`. `SHORT`: the layer is in
/// `RequantMode::Short`.
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
        let mode = if SHORT { RequantMode::Short } else { k.mode };
        let mut cb = 0;
        while cb < k.c {
            store_requant::<T, P>(k, dw_sums::<T, P>(k, x, step, cb), cb, mode, out);
            cb += 16;
        }
    }
}

/// `qs8_dwconv_px_c16_product`: [`qs8_dwconv_px_c16_avx512`] for a layer
/// in the short mode with the product form's constants (`k.product`): the
/// sums started `2^31` up, [`product16`], and the pixels narrowed four
/// at a time ([`narrow4`]; fewer repeat the last, not stored).
///
/// # Safety
/// As [`qs8_dwconv_px_c16_avx512`]; `k.product` holds `PRODUCT_FIELDS`
/// rows of `k.c` values.
#[target_feature(enable = "avx512f,avx512bw")]
pub(super) unsafe fn qs8_dwconv_px_c16_product<T: Q8, const P: usize>(
    k: &DwArgs<'_>,
    x: *const u8,
    step: usize,
    out: *mut u8,
) {
    // SAFETY: per the contract.
    unsafe {
        let mut cb = 0;
        while cb < k.c {
            store_product::<T, P>(k, dw_sums::<T, P>(k, x, step, cb), cb, out);
            cb += 16;
        }
    }
}

/// The outputs of `P <= 4` pixels' sums `s` (channels `cb .. cb + 16`, at
/// `out + q * k.c + cb`) in the product form: started `2^31` up,
/// [`product16`], narrowed four at a time ([`narrow4`]; fewer repeat the
/// last, not stored). Loops, not closures: this is inlined into kernels
/// with more target features, which a closure would not get.
///
/// # Safety
/// `cb + 16 <= k.c`; the layer is in the short mode, `k.product` holds
/// `PRODUCT_FIELDS` rows of `k.c` values; `out` has room for the pixels.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn store_product<T: Q8, const P: usize>(k: &DwArgs<'_>, s: [__m512i; P], cb: usize, out: *mut u8) {
    // SAFETY: per the contract.
    unsafe {
        let (lo, hi) = byte_bounds::<T>(k.oc);
        let add = _mm512_xor_si512(dw_start(k, cb), _mm512_set1_epi32(i32::MIN));
        let consts = product_consts(k.product.add(cb), k.c);
        let mut v = [_mm512_setzero_si512(); 4];
        for (q, vq) in v.iter_mut().enumerate() {
            *vq = product16(_mm512_add_epi32(s[q.min(P - 1)], add), &consts);
        }
        for (q, bytes) in lanes128(narrow4::<T>(v, lo, hi)).into_iter().enumerate().take(P) {
            _mm_storeu_si128(out.add(q * k.c + cb) as *mut __m128i, bytes);
        }
    }
}

/// The outputs of `P` pixels' sums `s` (channels `cb .. cb + 16`, at `out
/// + q * k.c + cb`) by [`requant16`] in `mode`.
///
/// # Safety
/// `cb + 16 <= k.c`; `out` has room for the pixels.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn store_requant<T: Q8, const P: usize>(
    k: &DwArgs<'_>,
    s: [__m512i; P],
    cb: usize,
    mode: RequantMode,
    out: *mut u8,
) {
    // SAFETY: per the contract.
    unsafe {
        let add = dw_start(k, cb);
        let r = rq_lanes(&k.rq, cb);
        for (q, &sq) in s.iter().enumerate() {
            let bytes = requant16::<T>(_mm512_add_epi32(sq, add), &r, mode, k.oc);
            _mm_storeu_si128(out.add(q * k.c + cb) as *mut __m128i, bytes);
        }
    }
}

/// The sums of four neighbouring interior pixels for channels `cb .. cb +
/// 16`, where each filter row is `FW` adjacent taps (unit dilation
/// across) and the pixels are `S` columns apart: pixel `q`'s tap `fx`
/// reads column `q * S + fx` of the filter row, so the `3 * S + FW`
/// columns are widened once each and shared by the pixels that read
/// them (a 3x3 stride-1 filter widens 18 vectors per four pixels instead
/// of 36), and `vpdpwssd` adds each product in one instruction. The
/// offset correction and bias not yet added; the same sums as
/// [`dw_sums`].
///
/// # Safety
/// AVX-512 F/BW + VNNI; the bounds `avx2::dwconv16_span` checks for four
/// pixels, `cb + 16 <= k.c`, `k.rows` the filter rows' first-tap offsets
/// with `k.deltas[fy * FW + fx] == k.rows[fy] + fx * k.c`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn dw_sums_cols<T: Q8, const FW: usize, const S: usize>(
    k: &DwArgs<'_>,
    x: *const u8,
    cb: usize,
) -> [__m512i; 4] {
    // SAFETY: per the contract: column `q * S + fx` of row `fy` is
    // pixel `q`'s tap `fy * FW + fx`.
    unsafe {
        let c = k.c;
        let mut s = [_mm512_setzero_si512(); 4];
        for (fy, &row) in k.rows.iter().enumerate() {
            let x = x.add(row + cb);
            // Loops, not closures: a closure here is compiled without
            // this function's target features and called, not inlined.
            let mut w = [_mm512_setzero_si512(); FW];
            for (fx, wf) in w.iter_mut().enumerate() {
                *wf = _mm512_loadu_si512(k.w32.add((fy * FW + fx) * c + cb) as *const _);
            }
            for j in 0..3 * S + FW {
                let xj = tap_lanes::<T>(x.add(j * c));
                for (fx, &wf) in w.iter().enumerate() {
                    // Constant after unrolling: which pixel, if any, reads
                    // column j at tap fx.
                    if j >= fx && (j - fx) % S == 0 && (j - fx) / S < 4 {
                        let q = (j - fx) / S;
                        s[q] = _mm512_dpwssd_epi32(s[q], xj, wf);
                    }
                }
            }
        }
        s
    }
}

/// `qs8_dwconv_px4_cols_vnni`: four interior pixels through
/// [`dw_sums_cols`], requantised in the product form where `PRODUCT` (as
/// [`qs8_dwconv_px_c16_product`]) or by [`requant16`] in `k.mode`.
///
/// # Safety
/// As [`dw_sums_cols`], with the pixels `S * k.c` bytes apart (the
/// unused `step`); with `PRODUCT`, the layer is in the short mode and
/// `k.product` holds `PRODUCT_FIELDS` rows of `k.c` values.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub(super) unsafe fn qs8_dwconv_px4_cols_vnni<T: Q8, const FW: usize, const S: usize, const PRODUCT: bool>(
    k: &DwArgs<'_>,
    x: *const u8,
    _step: usize,
    out: *mut u8,
) {
    // SAFETY: per the contract.
    unsafe {
        let mut cb = 0;
        while cb < k.c {
            let s = dw_sums_cols::<T, FW, S>(k, x, cb);
            if PRODUCT {
                store_product::<T, 4>(k, s, cb, out);
            } else {
                store_requant::<T, 4>(k, s, cb, k.mode, out);
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
