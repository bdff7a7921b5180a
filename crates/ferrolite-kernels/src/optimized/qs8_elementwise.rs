//! Quantised 8-bit ADD and SUB (int8 or uint8), bit-exact with the
//! reference `add_quantized` / `sub_quantized` (TFLite's
//! `reference_ops::Add` / `Sub`), broadcasting by rows.
//!
//! Per element: both inputs get their offset, a left shift of 20 and their
//! own `multiply_by_quantized_multiplier_smaller_than_one_exp`; the sum gets
//! the output one, the output offset and the clamp. `qs8_add_avx2` runs the
//! same integer steps on 16 elements at a time (the rounding doubling high
//! multiply in 64-bit even/odd lanes, the rounding right shift with the
//! reference's tie rule), `qs8_add_avx512` on 16 elements per register; `qs8_add_neon` does the same on aarch64 with
//! `sqrdmulh` and a rounding shift (`qs8::neon::mul_shift`); `*_scalar`
//! calls the reference's own element function. Broadcasting stays with the reference kernel.

#[cfg(target_arch = "x86_64")]
use crate::optimized::isa::Avx512;
use crate::optimized::isa::{Avx2Fma, IsaLevel};
use crate::optimized::qs8::Q8;
use crate::reference::elementwise::{broadcast_rows, Operand};
use crate::reference::quantized::{AddParams, MulParams};

/// A quantised ADD with its parameters checked for the vector kernel.
#[derive(Clone, Debug)]
pub struct Qs8AddPlan {
    isa: IsaLevel,
    p: AddParams,
    /// SUB: the second input's scaled value is subtracted.
    subtract: bool,
    /// Every shift a rounding right shift by `0..=31`, the left shift in
    /// `0..=31`: else only the scalar loop runs.
    vector_ok: bool,
}

impl Qs8AddPlan {
    /// `isa` is clamped to what the CPU supports.
    pub fn new(isa: IsaLevel, p: &AddParams) -> Qs8AddPlan {
        let rsh = |s: i32| (-31..=0).contains(&s);
        let vector_ok = rsh(p.input1_shift)
            && rsh(p.input2_shift)
            && rsh(p.output_shift)
            && (0..=31).contains(&p.left_shift)
            && p.act_min <= p.act_max;
        Qs8AddPlan { isa: isa.clamp_to_cpu(), p: *p, subtract: false, vector_ok }
    }

    /// The plan of a quantised SUB (`a - b`, TFLite's ADD parameters).
    pub fn subtract(isa: IsaLevel, p: &AddParams) -> Qs8AddPlan {
        Qs8AddPlan { subtract: true, ..Qs8AddPlan::new(isa, p) }
    }

    pub fn isa(&self) -> IsaLevel {
        self.isa
    }

    /// `out[i] = a[i] + b[i]` (or `-` for SUB; quantised) for `i <
    /// out.len()`; `a` and `b`
    /// must be at least as long as `out` (the extra values are ignored; a
    /// shorter input leaves the rest of `out` untouched).
    pub fn run<T: Q8>(&self, a: &[T], b: &[T], out: &mut [T]) {
        let n = out.len().min(a.len()).min(b.len());
        let (a, b, out) = (&a[..n], &b[..n], &mut out[..n]);
        // The vector path packs with saturation: exact when the clamp is
        // inside T's range.
        let fits = self.p.act_min >= T::MIN && self.p.act_max <= T::MAX;
        #[cfg(target_arch = "x86_64")]
        if let (Some(t), true) = (Avx512::new(self.isa), self.vector_ok && fits) {
            let done = avx512::add(t, &self.p, self.subtract, a, b, out);
            qs8_add_scalar(&self.p, self.subtract, &a[done..], &b[done..], &mut out[done..]);
            return;
        }
        let done = match Avx2Fma::new(self.isa) {
            Some(t) if self.vector_ok && fits => avx2::add(t, &self.p, self.subtract, a, b, out),
            #[cfg(target_arch = "aarch64")]
            None if self.vector_ok && fits => crate::optimized::isa::Neon::new(self.isa)
                .map_or(0, |t| neon::add(t, &self.p, self.subtract, a, b, out)),
            _ => 0,
        };
        qs8_add_scalar(&self.p, self.subtract, &a[done..], &b[done..], &mut out[done..]);
    }

    /// [`Self::run`] with `a` and `b` broadcast to `out_shape` (see
    /// [`broadcast_by_rows`]).
    #[allow(clippy::too_many_arguments)]
    pub fn run_broadcast<T: Q8>(
        &self,
        a: &[T],
        a_shape: &[usize],
        b: &[T],
        b_shape: &[usize],
        out: &mut [T],
        out_shape: &[usize],
    ) {
        broadcast_by_rows(a, a_shape, b, b_shape, out, out_shape, |a, b, out| self.run(a, b, out))
    }
}

/// A same-shape kernel `run(a, b, out)` over `a` and `b` broadcast to
/// `out_shape`: rows of the coalesced innermost dimension, an operand held
/// on one value along a row repeated into a scratch row first (the
/// reference walked every value through the scalar element function: a
/// per-pixel `[1, 56, 56, 64] - [1, 56, 56, 1]` took 80x LiteRT's time).
#[allow(clippy::too_many_arguments)]
fn broadcast_by_rows<T: Q8>(
    a: &[T],
    a_shape: &[usize],
    b: &[T],
    b_shape: &[usize],
    out: &mut [T],
    out_shape: &[usize],
    run: impl Fn(&[T], &[T], &mut [T]),
) {
    let (mut held_a, mut held_b) = (Vec::new(), Vec::new());
    let fill = |v: T, n: usize, buf: &mut Vec<T>| {
        buf.clear();
        buf.resize(n, v);
    };
    broadcast_rows(a, a_shape, b, b_shape, out, out_shape, |x, y, row| {
        let n = row.len();
        let x = match x {
            Operand::Run(x) => x,
            Operand::Held(v) => {
                fill(v, n, &mut held_a);
                &held_a[..]
            }
        };
        let y = match y {
            Operand::Run(y) => y,
            Operand::Held(v) => {
                fill(v, n, &mut held_b);
                &held_b[..]
            }
        };
        run(x, y, row);
    });
}

/// A quantised 8-bit MUL (TFLite's `reference_ops::Mul` for int8/uint8):
/// `(a + o1) (b + o2)` requantised by the output multiplier, offset and
/// clamped, 16 values at a time where the CPU allows.
#[derive(Clone, Debug)]
pub struct Qs8MulPlan {
    isa: IsaLevel,
    p: MulParams,
    /// The shift within what the vector kernels take (`-31..=30`, a clamp
    /// ordered), else only the scalar loop runs.
    vector_ok: bool,
}

impl Qs8MulPlan {
    /// `isa` is clamped to what the CPU supports.
    pub fn new(isa: IsaLevel, p: &MulParams) -> Qs8MulPlan {
        let vector_ok = (-31..=30).contains(&p.output_shift) && p.act_min <= p.act_max;
        Qs8MulPlan { isa: isa.clamp_to_cpu(), p: *p, vector_ok }
    }

    pub fn isa(&self) -> IsaLevel {
        self.isa
    }

    /// `out[i] = a[i] * b[i]` (quantised) for `i < out.len()`, `a` and
    /// `b` at least as long.
    pub fn run<T: Q8>(&self, a: &[T], b: &[T], out: &mut [T]) {
        let n = out.len().min(a.len()).min(b.len());
        let (a, b, out) = (&a[..n], &b[..n], &mut out[..n]);
        // The vector kernels narrow with saturation: exact when the clamp
        // is inside T's range. (x86-64 only for now: NEON runs the loop.)
        let vector = self.vector_ok && self.p.act_min >= T::MIN && self.p.act_max <= T::MAX;
        let done = match () {
            #[cfg(target_arch = "x86_64")]
            () if vector && Avx512::new(self.isa).is_some() => {
                Avx512::new(self.isa).map_or(0, |t| avx512::mul(t, &self.p, a, b, out))
            }
            #[cfg(target_arch = "x86_64")]
            () if vector => Avx2Fma::new(self.isa).map_or(0, |t| avx2::mul(t, &self.p, a, b, out)),
            () => {
                let _ = vector;
                0
            }
        };
        for ((o, &x), &y) in out[done..].iter_mut().zip(&a[done..]).zip(&b[done..]) {
            *o = T::from_i32(self.p.mul(x.to_i32(), y.to_i32()));
        }
    }

    /// [`Self::run`] with `a` and `b` broadcast to `out_shape` (see
    /// [`broadcast_by_rows`]).
    #[allow(clippy::too_many_arguments)]
    pub fn run_broadcast<T: Q8>(
        &self,
        a: &[T],
        a_shape: &[usize],
        b: &[T],
        b_shape: &[usize],
        out: &mut [T],
        out_shape: &[usize],
    ) {
        broadcast_by_rows(a, a_shape, b, b_shape, out, out_shape, |a, b, out| self.run(a, b, out))
    }
}

/// The portable loop: the reference's element function.
fn qs8_add_scalar<T: Q8>(p: &AddParams, subtract: bool, a: &[T], b: &[T], out: &mut [T]) {
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        let v = if subtract { p.sub(x.to_i32(), y.to_i32()) } else { p.add(x.to_i32(), y.to_i32()) };
        *o = T::from_i32(v);
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
    use super::Q8;
    use crate::optimized::isa::Avx2Fma;
    use crate::optimized::qs8::avx2::{doubling_high_mul, rounds_up};
    use crate::reference::quantized::{AddParams, MulParams};
    use std::arch::x86_64::*;

    /// Whole groups of 16 elements; returns how many were done.
    pub(super) fn add<T: Q8>(_t: Avx2Fma, p: &AddParams, sub: bool, a: &[T], b: &[T], out: &mut [T]) -> usize {
        let n = out.len().min(a.len()).min(b.len()) / 16 * 16;
        let (a, b, o) = (a.as_ptr() as *const u8, b.as_ptr() as *const u8, out.as_mut_ptr() as *mut u8);
        // SAFETY: AVX2 is proven by the token; `a`, `b` and `out` have at
        // least `n` one-byte values (`T` is i8 or u8).
        unsafe {
            match sub {
                false => qs8_add_avx2::<T, false>(n, a, b, p, o),
                true => qs8_add_avx2::<T, true>(n, a, b, p, o),
            }
        };
        n
    }

    /// `saturating_rounding_doubling_high_mul(x, m)` then
    /// `rounding_divide_by_pot(_, e)` on 8 lanes (`m`, `e` broadcast, `e` in
    /// `0..=31`; `mask = 2^e - 1`, `half = mask >> 1`).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn mul_shift(x: __m256i, m: __m256i, e: __m128i, mask: __m256i, half: __m256i) -> __m256i {
        let hm = doubling_high_mul(x, m, true);
        _mm256_sub_epi32(_mm256_sra_epi32(hm, e), rounds_up(hm, mask, half))
    }

    #[target_feature(enable = "avx2")]
    unsafe fn qs8_add_avx2<T: Q8, const SUB: bool>(n: usize, a: *const u8, b: *const u8, p: &AddParams, out: *mut u8) {
        let shift = |s: i32| {
            let e = -s;
            let mask = ((1i64 << e) - 1) as i32;
            (_mm_cvtsi32_si128(e), _mm256_set1_epi32(mask), _mm256_set1_epi32(mask >> 1))
        };
        let (e1, mask1, half1) = shift(p.input1_shift);
        let (e2, mask2, half2) = shift(p.input2_shift);
        let (eo, masko, halfo) = shift(p.output_shift);
        let (m1, m2, mo) = (
            _mm256_set1_epi32(p.input1_multiplier),
            _mm256_set1_epi32(p.input2_multiplier),
            _mm256_set1_epi32(p.output_multiplier),
        );
        let (off1, off2, offo) = (
            _mm256_set1_epi32(p.input1_offset),
            _mm256_set1_epi32(p.input2_offset),
            _mm256_set1_epi32(p.output_offset),
        );
        let (lo, hi) = (_mm256_set1_epi32(p.act_min), _mm256_set1_epi32(p.act_max));
        let ls = _mm_cvtsi32_si128(p.left_shift);
        let widen = |v: __m128i| if T::SIGNED { _mm256_cvtepi8_epi32(v) } else { _mm256_cvtepu8_epi32(v) };
        let eight = |x: __m128i, y: __m128i| {
            let x = _mm256_sll_epi32(_mm256_add_epi32(widen(x), off1), ls);
            let y = _mm256_sll_epi32(_mm256_add_epi32(widen(y), off2), ls);
            let (x, y) = (mul_shift(x, m1, e1, mask1, half1), mul_shift(y, m2, e2, mask2, half2));
            let s = if SUB { _mm256_sub_epi32(x, y) } else { _mm256_add_epi32(x, y) };
            let v = _mm256_add_epi32(mul_shift(s, mo, eo, masko, halfo), offo);
            _mm256_min_epi32(_mm256_max_epi32(v, lo), hi)
        };
        let mut i = 0;
        while i < n {
            // SAFETY: `i + 16 <= n` and the caller checked `n` values behind
            // each pointer.
            let (x, y) =
                unsafe { (_mm_loadu_si128(a.add(i) as *const __m128i), _mm_loadu_si128(b.add(i) as *const __m128i)) };
            let v0 = eight(x, y);
            let v1 = eight(_mm_srli_si128(x, 8), _mm_srli_si128(y, 8));
            // Clamped into T's range already, so saturating packs are exact.
            let w16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(v0, v1), 0b11_01_10_00);
            let (l, h) = (_mm256_castsi256_si128(w16), _mm256_extracti128_si256(w16, 1));
            let bytes = if T::SIGNED { _mm_packs_epi16(l, h) } else { _mm_packus_epi16(l, h) };
            // SAFETY: as for the loads.
            unsafe { _mm_storeu_si128(out.add(i) as *mut __m128i, bytes) };
            i += 16;
        }
    }

    /// Whole groups of 16 elements of a MUL; returns how many were done.
    pub(super) fn mul<T: Q8>(_t: Avx2Fma, p: &MulParams, a: &[T], b: &[T], out: &mut [T]) -> usize {
        let n = out.len().min(a.len()).min(b.len()) / 16 * 16;
        // SAFETY: AVX2 is proven by the token; `a`, `b` and `out` have at
        // least `n` one-byte values (`T` is i8 or u8).
        unsafe {
            qs8_mul_avx2::<T>(n, a.as_ptr() as *const u8, b.as_ptr() as *const u8, p, out.as_mut_ptr() as *mut u8)
        };
        n
    }

    /// # Safety
    /// AVX2; `n` (a multiple of 16) bytes behind each pointer; the output
    /// shift in `-31..=30` and the clamp within `T`.
    #[target_feature(enable = "avx2")]
    unsafe fn qs8_mul_avx2<T: Q8>(n: usize, a: *const u8, b: *const u8, p: &MulParams, out: *mut u8) {
        // `multiply_by_quantized_multiplier`: a left shift of `max(s, 0)`,
        // the high multiply, a rounding right shift of `max(-s, 0)`.
        let (lsh, e) = (_mm_cvtsi32_si128(p.output_shift.max(0)), (-p.output_shift).max(0));
        let (mask, half) =
            (_mm256_set1_epi32(((1i64 << e) - 1) as i32), _mm256_set1_epi32((((1i64 << e) - 1) >> 1) as i32));
        let e = _mm_cvtsi32_si128(e);
        let m = _mm256_set1_epi32(p.output_multiplier);
        let (off1, off2, offo) = (
            _mm256_set1_epi32(p.input1_offset),
            _mm256_set1_epi32(p.input2_offset),
            _mm256_set1_epi32(p.output_offset),
        );
        let (lo, hi) = (_mm256_set1_epi32(p.act_min), _mm256_set1_epi32(p.act_max));
        let widen = |v: __m128i| if T::SIGNED { _mm256_cvtepi8_epi32(v) } else { _mm256_cvtepu8_epi32(v) };
        let eight = |x: __m128i, y: __m128i| {
            let prod = _mm256_mullo_epi32(_mm256_add_epi32(widen(x), off1), _mm256_add_epi32(widen(y), off2));
            let hm = doubling_high_mul(_mm256_sll_epi32(prod, lsh), m, true);
            let v = _mm256_sub_epi32(_mm256_sra_epi32(hm, e), rounds_up(hm, mask, half));
            _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(v, offo), lo), hi)
        };
        let mut i = 0;
        while i < n {
            // SAFETY: `i + 16 <= n` and the caller checked `n` values behind
            // each pointer.
            let (x, y) =
                unsafe { (_mm_loadu_si128(a.add(i) as *const __m128i), _mm_loadu_si128(b.add(i) as *const __m128i)) };
            let (v0, v1) = (eight(x, y), eight(_mm_srli_si128(x, 8), _mm_srli_si128(y, 8)));
            // Clamped into T's range already, so saturating packs are exact.
            let w16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(v0, v1), 0b11_01_10_00);
            let (l, h) = (_mm256_castsi256_si128(w16), _mm256_extracti128_si256(w16, 1));
            let bytes = if T::SIGNED { _mm_packs_epi16(l, h) } else { _mm_packus_epi16(l, h) };
            // SAFETY: as for the loads.
            unsafe { _mm_storeu_si128(out.add(i) as *mut __m128i, bytes) };
            i += 16;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx512 {
    use super::Q8;
    use crate::optimized::isa::Avx512;
    use crate::optimized::qs8::avx512::doubling_high_mul;
    use crate::reference::quantized::{AddParams, MulParams};
    use std::arch::x86_64::*;

    /// Whole groups of 16 elements; returns how many were done.
    pub(super) fn add<T: Q8>(_t: Avx512, p: &AddParams, sub: bool, a: &[T], b: &[T], out: &mut [T]) -> usize {
        let n = out.len().min(a.len()).min(b.len()) / 16 * 16;
        let (a, b, o) = (a.as_ptr() as *const u8, b.as_ptr() as *const u8, out.as_mut_ptr() as *mut u8);
        // SAFETY: AVX-512 is proven by the token; `a`, `b` and `out` have
        // at least `n` one-byte values (`T` is i8 or u8).
        unsafe {
            match sub {
                false => qs8_add_avx512::<T, false>(n, a, b, p, o),
                true => qs8_add_avx512::<T, true>(n, a, b, p, o),
            }
        };
        n
    }

    /// The multiply and rounding shift of `avx2::mul_shift` on 16 lanes:
    /// the saturating doubling high multiply, then a divide by `2^e` with
    /// ties away from zero (up by one where the remainder exceeds `half`,
    /// `half + 1` for a negative `hm`).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn mul_shift(x: __m512i, m: __m512i, e: __m128i, mask: __m512i, half: __m512i) -> __m512i {
        let hm = doubling_high_mul(x, m, true);
        let rem = _mm512_and_si512(hm, mask);
        let up = _mm512_cmpgt_epi32_mask(rem, _mm512_sub_epi32(half, _mm512_srai_epi32::<31>(hm)));
        let q = _mm512_sra_epi32(hm, e);
        _mm512_mask_add_epi32(q, up, q, _mm512_set1_epi32(1))
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn qs8_add_avx512<T: Q8, const SUB: bool>(
        n: usize,
        a: *const u8,
        b: *const u8,
        p: &AddParams,
        out: *mut u8,
    ) {
        let shift = |s: i32| {
            let e = -s;
            let mask = ((1i64 << e) - 1) as i32;
            (_mm_cvtsi32_si128(e), _mm512_set1_epi32(mask), _mm512_set1_epi32(mask >> 1))
        };
        let (e1, mask1, half1) = shift(p.input1_shift);
        let (e2, mask2, half2) = shift(p.input2_shift);
        let (eo, masko, halfo) = shift(p.output_shift);
        let (m1, m2, mo) = (
            _mm512_set1_epi32(p.input1_multiplier),
            _mm512_set1_epi32(p.input2_multiplier),
            _mm512_set1_epi32(p.output_multiplier),
        );
        let (off1, off2, offo) = (
            _mm512_set1_epi32(p.input1_offset),
            _mm512_set1_epi32(p.input2_offset),
            _mm512_set1_epi32(p.output_offset),
        );
        let (lo, hi) = (_mm512_set1_epi32(p.act_min), _mm512_set1_epi32(p.act_max));
        let ls = _mm_cvtsi32_si128(p.left_shift);
        let widen = |v: __m128i| if T::SIGNED { _mm512_cvtepi8_epi32(v) } else { _mm512_cvtepu8_epi32(v) };
        let mut i = 0;
        while i < n {
            // SAFETY: `i + 16 <= n` and the caller checked `n` values behind
            // each pointer.
            let (x, y) =
                unsafe { (_mm_loadu_si128(a.add(i) as *const __m128i), _mm_loadu_si128(b.add(i) as *const __m128i)) };
            let x = _mm512_sll_epi32(_mm512_add_epi32(widen(x), off1), ls);
            let y = _mm512_sll_epi32(_mm512_add_epi32(widen(y), off2), ls);
            let (x, y) = (mul_shift(x, m1, e1, mask1, half1), mul_shift(y, m2, e2, mask2, half2));
            let s = if SUB { _mm512_sub_epi32(x, y) } else { _mm512_add_epi32(x, y) };
            let v = _mm512_add_epi32(mul_shift(s, mo, eo, masko, halfo), offo);
            let v = _mm512_min_epi32(_mm512_max_epi32(v, lo), hi);
            // Clamped into T's range already (checked by the caller), so the
            // saturating narrowing is exact.
            let bytes = if T::SIGNED {
                _mm512_cvtsepi32_epi8(v)
            } else {
                _mm512_cvtusepi32_epi8(_mm512_max_epi32(v, _mm512_setzero_si512()))
            };
            // SAFETY: as for the loads.
            unsafe { _mm_storeu_si128(out.add(i) as *mut __m128i, bytes) };
            i += 16;
        }
    }

    /// Whole groups of 16 elements of a MUL; returns how many were done.
    pub(super) fn mul<T: Q8>(_t: Avx512, p: &MulParams, a: &[T], b: &[T], out: &mut [T]) -> usize {
        let n = out.len().min(a.len()).min(b.len()) / 16 * 16;
        // SAFETY: AVX-512 is proven by the token; `a`, `b` and `out` have
        // at least `n` one-byte values (`T` is i8 or u8).
        unsafe {
            qs8_mul_avx512::<T>(n, a.as_ptr() as *const u8, b.as_ptr() as *const u8, p, out.as_mut_ptr() as *mut u8)
        };
        n
    }

    /// # Safety
    /// AVX-512 F; `n` (a multiple of 16) bytes behind each pointer; the
    /// output shift in `-31..=30` and the clamp within `T`.
    #[target_feature(enable = "avx512f")]
    unsafe fn qs8_mul_avx512<T: Q8>(n: usize, a: *const u8, b: *const u8, p: &MulParams, out: *mut u8) {
        let (lsh, e) = (_mm_cvtsi32_si128(p.output_shift.max(0)), (-p.output_shift).max(0));
        let (mask, half) =
            (_mm512_set1_epi32(((1i64 << e) - 1) as i32), _mm512_set1_epi32((((1i64 << e) - 1) >> 1) as i32));
        let e = _mm_cvtsi32_si128(e);
        let m = _mm512_set1_epi32(p.output_multiplier);
        let (off1, off2, offo) = (
            _mm512_set1_epi32(p.input1_offset),
            _mm512_set1_epi32(p.input2_offset),
            _mm512_set1_epi32(p.output_offset),
        );
        let (lo, hi) = (_mm512_set1_epi32(p.act_min), _mm512_set1_epi32(p.act_max));
        let widen = |v: __m128i| if T::SIGNED { _mm512_cvtepi8_epi32(v) } else { _mm512_cvtepu8_epi32(v) };
        let mut i = 0;
        while i < n {
            // SAFETY: `i + 16 <= n` and the caller checked `n` values behind
            // each pointer.
            let (x, y) =
                unsafe { (_mm_loadu_si128(a.add(i) as *const __m128i), _mm_loadu_si128(b.add(i) as *const __m128i)) };
            let prod = _mm512_mullo_epi32(_mm512_add_epi32(widen(x), off1), _mm512_add_epi32(widen(y), off2));
            let hm = doubling_high_mul(_mm512_sll_epi32(prod, lsh), m, true);
            // The rounding right shift as `mul_shift` does it.
            let rem = _mm512_and_si512(hm, mask);
            let up = _mm512_cmpgt_epi32_mask(rem, _mm512_sub_epi32(half, _mm512_srai_epi32::<31>(hm)));
            let q = _mm512_sra_epi32(hm, e);
            let v = _mm512_add_epi32(_mm512_mask_add_epi32(q, up, q, _mm512_set1_epi32(1)), offo);
            let v = _mm512_min_epi32(_mm512_max_epi32(v, lo), hi);
            // Clamped into T's range already, so the narrowing is exact.
            let bytes = if T::SIGNED {
                _mm512_cvtsepi32_epi8(v)
            } else {
                _mm512_cvtusepi32_epi8(_mm512_max_epi32(v, _mm512_setzero_si512()))
            };
            // SAFETY: as for the loads.
            unsafe { _mm_storeu_si128(out.add(i) as *mut __m128i, bytes) };
            i += 16;
        }
    }
}

#[cfg(target_arch = "aarch64")]
#[allow(unsafe_code)]
mod neon {
    use super::Q8;
    use crate::optimized::isa::Neon;
    use crate::optimized::qs8::neon::mul_shift;
    use crate::reference::quantized::AddParams;
    use std::arch::aarch64::*;

    /// Whole groups of 16 elements; returns how many were done.
    pub(super) fn add<T: Q8>(_t: Neon, p: &AddParams, sub: bool, a: &[T], b: &[T], out: &mut [T]) -> usize {
        let n = out.len().min(a.len()).min(b.len()) / 16 * 16;
        let (a, b, o) = (a.as_ptr().cast(), b.as_ptr().cast(), out.as_mut_ptr().cast());
        // SAFETY: the token proves NEON; `a`, `b` and `out` have at least
        // `n` one-byte values (`T` is i8 or u8).
        unsafe {
            match sub {
                false => qs8_add_neon::<T, false>(n, a, b, p, o),
                true => qs8_add_neon::<T, true>(n, a, b, p, o),
            }
        };
        n
    }

    /// # Safety
    /// `n` a multiple of 16, with `n` bytes behind `a`, `b` and `out`.
    unsafe fn qs8_add_neon<T: Q8, const SUB: bool>(n: usize, a: *const u8, b: *const u8, p: &AddParams, out: *mut u8) {
        let d = vdupq_n_s32;
        let (m1, m2, mo) = (d(p.input1_multiplier), d(p.input2_multiplier), d(p.output_multiplier));
        let (e1, e2, eo) = (d(p.input1_shift), d(p.input2_shift), d(p.output_shift));
        let (off1, off2, offo) = (d(p.input1_offset), d(p.input2_offset), d(p.output_offset));
        let (lo, hi, ls) = (d(p.act_min), d(p.act_max), d(p.left_shift));
        // 16 bytes as 4 registers of i32.
        let widen = |v: uint8x16_t| -> [int32x4_t; 4] {
            let (l, h) = if T::SIGNED {
                let v = vreinterpretq_s8_u8(v);
                (vmovl_s8(vget_low_s8(v)), vmovl_high_s8(v))
            } else {
                (vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(v))), vreinterpretq_s16_u16(vmovl_high_u8(v)))
            };
            [vmovl_s16(vget_low_s16(l)), vmovl_high_s16(l), vmovl_s16(vget_low_s16(h)), vmovl_high_s16(h)]
        };
        let mut i = 0;
        while i < n {
            // SAFETY: `i + 16 <= n` and the caller checked `n` values behind
            // each pointer.
            let (x, y) = unsafe { (widen(vld1q_u8(a.add(i))), widen(vld1q_u8(b.add(i)))) };
            // (`mul_shift` needs NEON: the caller's token.)
            let v: [int32x4_t; 4] = std::array::from_fn(|q| {
                // The reference's `(x + offset) << left_shift`, then each
                // input's multiplier (its shifts are right shifts: `e <= 0`).
                let x = mul_shift(vshlq_s32(vaddq_s32(x[q], off1), ls), m1, e1);
                let y = mul_shift(vshlq_s32(vaddq_s32(y[q], off2), ls), m2, e2);
                let s = if SUB { vsubq_s32(x, y) } else { vaddq_s32(x, y) };
                let s = vaddq_s32(mul_shift(s, mo, eo), offo);
                vminq_s32(vmaxq_s32(s, lo), hi)
            });
            // Clamped into T's range already, so saturating narrows are exact.
            let w16 =
                [vcombine_s16(vqmovn_s32(v[0]), vqmovn_s32(v[1])), vcombine_s16(vqmovn_s32(v[2]), vqmovn_s32(v[3]))];
            let bytes = if T::SIGNED {
                vreinterpretq_u8_s8(vcombine_s8(vqmovn_s16(w16[0]), vqmovn_s16(w16[1])))
            } else {
                vcombine_u8(vqmovun_s16(w16[0]), vqmovun_s16(w16[1]))
            };
            // SAFETY: as for the loads.
            unsafe { vst1q_u8(out.add(i), bytes) };
            i += 16;
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod avx2 {
    use super::Q8;
    use crate::optimized::isa::Avx2Fma;
    use crate::reference::quantized::AddParams;

    pub(super) fn add<T: Q8>(_: Avx2Fma, _: &AddParams, _: bool, _: &[T], _: &[T], _: &mut [T]) -> usize {
        unreachable!("no AVX2 token off x86-64")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimized::isa::available_levels;
    use crate::optimized::testutil::Rng;
    use crate::quant::FusedActivation;
    use crate::reference::quantized::{add_quantized, sub_quantized};

    fn scale(rng: &mut Rng) -> f32 {
        // 1e-4 .. ~1, with ratios up to ~1e4 between the three scales.
        10f32.powf(-4.0 + 4.0 * (rng.f32() + 1.0) / 2.0)
    }

    fn zp(rng: &mut Rng, lo: i32, hi: i32) -> i32 {
        match rng.range(0, 4) {
            0 => lo,
            1 => hi,
            _ => lo + rng.range(0, (hi - lo + 1) as usize) as i32,
        }
    }

    fn check<T: Q8 + PartialEq + std::fmt::Debug>(rng: &mut Rng, i: usize, gen: impl Fn(&mut Rng) -> T) {
        let act = rng.pick(&[FusedActivation::None, FusedActivation::Relu, FusedActivation::Relu6]);
        let (lo, hi) = (T::MIN, T::MAX);
        let (s1, s2, so) = if i.is_multiple_of(7) {
            let s = scale(rng);
            (s, s, s)
        } else {
            (scale(rng), scale(rng), scale(rng))
        };
        let Some(p) = AddParams::new::<T>(s1, zp(rng, lo, hi), s2, zp(rng, lo, hi), so, zp(rng, lo, hi), act) else {
            return;
        };
        let n = rng.range(0, 100);
        let a: Vec<T> = (0..n).map(|_| gen(rng)).collect();
        let b: Vec<T> = (0..n).map(|_| gen(rng)).collect();
        let mut want = vec![T::default(); n];
        add_quantized(&p, &a, &[n], &b, &[n], &mut want, &[n]);
        let mut want_sub = vec![T::default(); n];
        sub_quantized(&p, &a, &[n], &b, &[n], &mut want_sub, &[n]);
        for &isa in &available_levels() {
            let plan = Qs8AddPlan::new(isa, &p);
            let mut got = vec![T::default(); n];
            plan.run(&a, &b, &mut got);
            assert_eq!(got, want, "case {i} {isa:?} {p:?}");
            Qs8AddPlan::subtract(isa, &p).run(&a, &b, &mut got);
            assert_eq!(got, want_sub, "SUB case {i} {isa:?} {p:?}");
        }
    }

    /// MUL, same-shape and broadcast, int8 and uint8, with random scales
    /// (output shifts both ways) and clamps, against the reference.
    #[test]
    fn mul_matches_reference_exactly() {
        use crate::reference::quantized::{mul_quantized, MulParams};
        let mut rng = Rng::new(0x301);
        let shapes: [(&[usize], &[usize]); 6] = [
            (&[70], &[70]),
            (&[0, 5], &[0, 5]),
            (&[1, 5, 6, 40], &[40]),
            (&[1, 5, 6, 40], &[1, 5, 6, 1]),
            (&[1], &[33]),
            (&[3, 1, 2], &[1, 4, 1]),
        ];
        for i in 0..600usize {
            let (sa, sb) = shapes[i % shapes.len()];
            let act = rng.pick(&[FusedActivation::None, FusedActivation::Relu, FusedActivation::Relu6]);
            // Products of scales from 1e-8 to 1e2 against output scales of
            // 1e-4 .. 1: real multipliers far below and above one.
            let (s1, s2, so) = (scale(&mut rng), scale(&mut rng) * 100.0, scale(&mut rng));
            let so_ = crate::reference::elementwise::broadcast_shape(sa, sb).unwrap();
            let (na, nb, no) = (sa.iter().product(), sb.iter().product(), so_.iter().product::<usize>());
            if i % 2 == 0 {
                let Some(p) = MulParams::new::<i8>(
                    s1,
                    zp(&mut rng, -128, 127),
                    s2,
                    zp(&mut rng, -128, 127),
                    so,
                    zp(&mut rng, -128, 127),
                    act,
                ) else {
                    continue;
                };
                let a: Vec<i8> = (0..na).map(|_| rng.next_u64() as i8).collect();
                let b: Vec<i8> = (0..nb).map(|_| rng.next_u64() as i8).collect();
                let mut want = vec![0i8; no];
                mul_quantized(&p, &a, sa, &b, sb, &mut want, &so_);
                for &isa in &available_levels() {
                    let mut got = vec![0i8; no];
                    Qs8MulPlan::new(isa, &p).run_broadcast(&a, sa, &b, sb, &mut got, &so_);
                    assert_eq!(got, want, "case {i} {isa:?} {p:?}");
                }
            } else {
                let Some(p) = MulParams::new::<u8>(
                    s1,
                    zp(&mut rng, 0, 255),
                    s2,
                    zp(&mut rng, 0, 255),
                    so,
                    zp(&mut rng, 0, 255),
                    act,
                ) else {
                    continue;
                };
                let a: Vec<u8> = (0..na).map(|_| rng.next_u64() as u8).collect();
                let b: Vec<u8> = (0..nb).map(|_| rng.next_u64() as u8).collect();
                let mut want = vec![0u8; no];
                mul_quantized(&p, &a, sa, &b, sb, &mut want, &so_);
                for &isa in &available_levels() {
                    let mut got = vec![0u8; no];
                    Qs8MulPlan::new(isa, &p).run_broadcast(&a, sa, &b, sb, &mut got, &so_);
                    assert_eq!(got, want, "case {i} {isa:?} {p:?}");
                }
            }
        }
    }

    /// Broadcast shapes (a per-pixel and a per-channel operand, a scalar,
    /// both sides broadcast, size-1 and short inner dimensions) against
    /// the reference's element walk, ADD and SUB.
    #[test]
    fn broadcast_matches_reference_exactly() {
        let mut rng = Rng::new(0xb0ad);
        let cases: [(&[usize], &[usize]); 11] = [
            (&[0], &[0]),
            (&[2, 0], &[1, 0]),
            (&[0, 5], &[0, 5]),
            (&[1, 5, 6, 40], &[1, 5, 6, 1]),
            (&[1, 5, 6, 40], &[40]),
            (&[2, 3, 17], &[1]),
            (&[1], &[4, 33]),
            (&[3, 1, 20], &[1, 4, 20]),
            (&[3, 1, 2], &[1, 4, 1]),
            (&[7, 1], &[1, 19]),
            (&[2, 3, 4], &[2, 3, 4]),
        ];
        for (i, (sa, sb)) in cases.iter().enumerate() {
            for _ in 0..20 {
                let p = AddParams::new::<i8>(
                    scale(&mut rng),
                    zp(&mut rng, -128, 127),
                    scale(&mut rng),
                    zp(&mut rng, -128, 127),
                    scale(&mut rng),
                    zp(&mut rng, -128, 127),
                    FusedActivation::None,
                );
                let Some(p) = p else { continue };
                let so = crate::reference::elementwise::broadcast_shape(sa, sb).unwrap();
                let (na, nb, no) = (sa.iter().product(), sb.iter().product(), so.iter().product::<usize>());
                let a: Vec<i8> = (0..na).map(|_| rng.next_u64() as i8).collect();
                let b: Vec<i8> = (0..nb).map(|_| rng.next_u64() as i8).collect();
                for sub in [false, true] {
                    let mut want = vec![0i8; no];
                    if sub {
                        sub_quantized(&p, &a, sa, &b, sb, &mut want, &so);
                    } else {
                        add_quantized(&p, &a, sa, &b, sb, &mut want, &so);
                    }
                    for &isa in &available_levels() {
                        let plan = if sub { Qs8AddPlan::subtract(isa, &p) } else { Qs8AddPlan::new(isa, &p) };
                        let mut got = vec![0i8; no];
                        plan.run_broadcast(&a, sa, &b, sb, &mut got, &so);
                        assert_eq!(got, want, "case {i} sub {sub} {isa:?} {sa:?} {sb:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn add_matches_reference_exactly() {
        let mut rng = Rng::new(0xadd8);
        for i in 0..2000usize {
            let extreme = i % 3 == 0;
            if i % 2 == 0 {
                check::<i8>(&mut rng, i, |r| if extreme { r.pick(&[-128i8, 127, 0]) } else { r.next_u64() as i8 });
            } else {
                check::<u8>(&mut rng, i, |r| if extreme { r.pick(&[0u8, 255]) } else { r.next_u64() as u8 });
            }
        }
    }

    /// Raw parameters at the edges of what the kernel accepts, and a clamp
    /// wider than the type (the scalar loop's cast keeps the low bits).
    #[test]
    fn add_matches_reference_on_raw_parameters() {
        let mut rng = Rng::new(0xadd9);
        for i in 0..1000usize {
            let mut p = AddParams::new::<i8>(0.02, 3, 0.05, -7, 0.03, 1, FusedActivation::None).unwrap();
            let mult = |r: &mut Rng| match r.range(0, 4) {
                0 => i32::MAX,
                1 => 1 << 30,
                _ => (1 << 30) + r.range(0, 1 << 30) as i32,
            };
            p.input1_multiplier = mult(&mut rng);
            p.input2_multiplier = mult(&mut rng);
            p.output_multiplier = mult(&mut rng);
            p.input1_shift = -(rng.range(0, 32) as i32);
            p.input2_shift = -(rng.range(0, 32) as i32);
            p.output_shift = -(rng.range(0, 32) as i32);
            p.input1_offset = rng.range(0, 256) as i32 - 127;
            p.input2_offset = rng.range(0, 256) as i32 - 127;
            p.output_offset = rng.range(0, 256) as i32 - 128;
            if i % 4 == 0 {
                (p.act_min, p.act_max) = (i32::MIN, i32::MAX);
            }
            let n = rng.range(0, 70);
            let a: Vec<i8> = (0..n).map(|_| rng.next_u64() as i8).collect();
            let b: Vec<i8> = (0..n).map(|_| rng.next_u64() as i8).collect();
            let mut want = vec![0i8; n];
            add_quantized(&p, &a, &[n], &b, &[n], &mut want, &[n]);
            for &isa in &available_levels() {
                let mut got = vec![0i8; n];
                Qs8AddPlan::new(isa, &p).run(&a, &b, &mut got);
                assert_eq!(got, want, "case {i} {isa:?} {p:?}");
            }
        }
    }

    #[test]
    fn short_inputs_do_not_panic() {
        let p = AddParams::new::<i8>(0.02, 3, 0.05, -7, 0.03, 1, FusedActivation::None).unwrap();
        let plan = Qs8AddPlan::new(IsaLevel::Avx512, &p);
        let (a, b) = (vec![1i8; 40], vec![2i8; 20]);
        let mut out = vec![0i8; 40];
        plan.run(&a, &b, &mut out);
        let mut want = vec![0i8; 20];
        add_quantized(&p, &a[..20], &[20], &b, &[20], &mut want, &[20]);
        assert_eq!(&out[..20], &want[..]);
        assert!(out[20..].iter().all(|&v| v == 0));
    }
}
