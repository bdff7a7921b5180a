//! AVERAGE_POOL_2D and MAX_POOL_2D (float), vectorised over channels.
//!
//! Both run `f32_pool_avx2`, one kernel for the two folds.
//!
//! Average: 32 channels at a time in four registers
//! over the window's taps (the reference compiled for AVX2 kept its sums
//! in memory: 1.06 ms for Inception v3's nine pools on one thread).
//! Each channel still sums its taps in the reference's order from `0.0`
//! and divides by the count (no FMA contraction happens without
//! fast-math), so the results are identical to the reference, which the
//! tests check bit for bit.
//!
//! Max: the reference compiled the same way ran 3x slower than its SSE2
//! build, so it is written out too: 32 channels at a time in
//! four registers over the window's taps. `vmaxps(v, m)` is `v > m ? v : m`,
//! exactly the reference's `m < v ? v : m` (a NaN input is skipped, a NaN
//! maximum kept, `-0.0` vs `0.0` keeps the earlier), and the clamp maps to
//! `vmaxps`/`vminps` the same way, so the outputs are bit-identical.

use crate::activation::ClampI32;
#[cfg(target_arch = "x86_64")]
use crate::optimized::isa::Avx2Fma;
use crate::optimized::isa::IsaLevel;
use crate::reference::pool::{self, Pool2dParams};
#[cfg(doc)]
use crate::reference::quantized as qk;
use crate::reference::quantized::QType;

/// [`pool::max_pool_f32_rows`] at `isa` (clamped to the CPU).
pub fn max_pool_f32_rows(
    isa: IsaLevel,
    p: &Pool2dParams,
    input: &[f32],
    in_shape: [usize; 4],
    out_rows: &mut [f32],
    row_start: usize,
    out_shape: [usize; 4],
) {
    #[cfg(target_arch = "x86_64")]
    if let Some(t) = Avx2Fma::new(isa) {
        return avx2::max_pool_f32_rows(t, p, input, in_shape, out_rows, row_start, out_shape);
    }
    let _ = isa;
    pool::max_pool_f32_rows(p, input, in_shape, out_rows, row_start, out_shape)
}

/// [`pool::average_pool_f32_rows`] at `isa` (clamped to the CPU).
#[must_use]
pub fn average_pool_f32_rows(
    isa: IsaLevel,
    p: &Pool2dParams,
    input: &[f32],
    in_shape: [usize; 4],
    out_rows: &mut [f32],
    row_start: usize,
    out_shape: [usize; 4],
) -> bool {
    #[cfg(target_arch = "x86_64")]
    if let Some(t) = Avx2Fma::new(isa) {
        return avx2::average_pool_f32_rows(t, p, input, in_shape, out_rows, row_start, out_shape);
    }
    let _ = isa;
    pool::average_pool_f32_rows(p, input, in_shape, out_rows, row_start, out_shape)
}

/// [`qk::average_pool_quantized_rows`] (8- and 16-bit) at `isa`: the same
/// sums and the same rounded quotient, without a division per value. The
/// reference's `(s ± count/2) / count` ran as one integer divide per
/// output value (Inception v3 int8's nine average pools: 6.1 ms, a fifth
/// of the model); here the quotient comes from a float reciprocal and is
/// corrected to the exact truncated one, so the compiler vectorises it.
#[must_use]
#[allow(clippy::too_many_arguments)]
pub fn average_pool_q8_rows<T: QType>(
    isa: IsaLevel,
    p: &Pool2dParams,
    clamp: ClampI32,
    input: &[T],
    in_shape: [usize; 4],
    out_rows: &mut [T],
    row_start: usize,
    out_shape: [usize; 4],
) -> bool {
    #[cfg(target_arch = "x86_64")]
    if let Some(t) = Avx2Fma::new(isa) {
        return avx2::average_pool_q8_rows(t, p, clamp, input, in_shape, out_rows, row_start, out_shape);
    }
    let _ = isa;
    average_q8(p, clamp, input, in_shape, out_rows, row_start, out_shape)
}

/// [`qk::max_pool_quantized_rows`] at `isa` (the baseline x86-64 build has
/// no 32-bit vector max, so the reference ran scalar).
#[allow(clippy::too_many_arguments)]
pub fn max_pool_q8_rows<T: QType>(
    isa: IsaLevel,
    p: &Pool2dParams,
    clamp: ClampI32,
    input: &[T],
    in_shape: [usize; 4],
    out_rows: &mut [T],
    row_start: usize,
    out_shape: [usize; 4],
) {
    #[cfg(target_arch = "x86_64")]
    if let Some(t) = Avx2Fma::new(isa) {
        return avx2::max_pool_q8_rows(t, p, clamp, input, in_shape, out_rows, row_start, out_shape);
    }
    let _ = isa;
    max_q8(p, clamp, input, in_shape, out_rows, row_start, out_shape)
}

/// `trunc(n / d)` for `d > 0` and `|n| < 2^21`, from `inv = 1 / d`: the
/// float quotient is within one of the exact one, and the remainder tells
/// which way. The float is made an integer by adding `1.5 · 2^23` to its
/// truncation and reading the low bits (exact below 2^22): `as i32`
/// saturates, and that kept the loop scalar.
#[inline(always)]
fn div_trunc(n: i32, d: i32, inv: f32) -> i32 {
    const MAGIC: f32 = 12_582_912.0;
    let q = ((n as f32 * inv).trunc() + MAGIC).to_bits() as i32 - MAGIC.to_bits() as i32;
    let r = n - q * d;
    if n >= 0 {
        q + i32::from(r >= d) - i32::from(r < 0)
    } else {
        q - i32::from(r <= -d) + i32::from(r > 0)
    }
}

/// Channels summed together in registers by [`average_q8`].
const SUM_BLOCK: usize = 32;

// A plain loop over the output pixels rather than `pool::pool_rows`' closure:
// the closure was compiled apart, without the caller's AVX2, and ran the
// quotient scalar.
#[inline(always)]
fn average_q8<T: QType>(
    p: &Pool2dParams,
    clamp: ClampI32,
    input: &[T],
    in_shape: [usize; 4],
    out_rows: &mut [T],
    row_start: usize,
    out_shape: [usize; 4],
) -> bool {
    let depth = in_shape[3];
    if depth == 0 {
        return true;
    }
    let mut acc = vec![0i32; depth];
    let mut taps = Vec::with_capacity(p.filter_h * p.filter_w);
    // The float quotient needs |sum ± count/2| < 2^21.
    let largest = T::MAX.max(-T::MIN) as i64 + 1;
    let mut walk = pool::PixelWalk::new(out_shape, row_start);
    for out in out_rows.chunks_exact_mut(depth) {
        pool::window_pixels(p, in_shape, walk.next_pixel(), &mut taps);
        if taps.is_empty() {
            return false;
        }
        // Whole blocks of 32 channels sum in registers (a fixed-size
        // array the compiler keeps there), the rest through `acc`.
        let blocks = depth / SUM_BLOCK * SUM_BLOCK;
        for c0 in (0..blocks).step_by(SUM_BLOCK) {
            let mut sums = [0i32; SUM_BLOCK];
            for &px in &taps {
                let row = &input[px * depth + c0..][..SUM_BLOCK];
                for (a, v) in sums.iter_mut().zip(row) {
                    *a = a.wrapping_add(v.to_i32());
                }
            }
            acc[c0..c0 + SUM_BLOCK].copy_from_slice(&sums);
        }
        acc[blocks..].fill(0);
        for &px in &taps {
            for (a, v) in acc[blocks..].iter_mut().zip(&input[px * depth + blocks..(px + 1) * depth]) {
                *a = a.wrapping_add(v.to_i32());
            }
        }
        let count = taps.len() as i32;
        let half = count / 2;
        if (count as i64) * largest < (1 << 20) {
            let inv = 1.0 / count as f32;
            for (o, &s) in out.iter_mut().zip(&acc) {
                let n = if s > 0 { s + half } else { s - half };
                *o = T::from_i32(clamp.apply(div_trunc(n, count, inv)));
            }
        } else {
            for (o, &s) in out.iter_mut().zip(&acc) {
                let avg = if s > 0 { (s + half) / count } else { (s - half) / count };
                *o = T::from_i32(clamp.apply(avg));
            }
        }
    }
    true
}

#[inline(always)]
fn max_q8<T: QType>(
    p: &Pool2dParams,
    clamp: ClampI32,
    input: &[T],
    in_shape: [usize; 4],
    out_rows: &mut [T],
    row_start: usize,
    out_shape: [usize; 4],
) {
    let depth = in_shape[3];
    if depth == 0 {
        return;
    }
    let mut acc = vec![T::MIN; depth];
    let mut taps = Vec::with_capacity(p.filter_h * p.filter_w);
    let mut walk = pool::PixelWalk::new(out_shape, row_start);
    for out in out_rows.chunks_exact_mut(depth) {
        pool::window_pixels(p, in_shape, walk.next_pixel(), &mut taps);
        acc.fill(T::MIN);
        for &px in &taps {
            for (a, v) in acc.iter_mut().zip(&input[px * depth..(px + 1) * depth]) {
                *a = (*a).max(v.to_i32());
            }
        }
        for (o, &m) in out.iter_mut().zip(&acc) {
            *o = T::from_i32(clamp.apply(m));
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
    use super::{pool, ClampI32, Pool2dParams, QType};
    use crate::activation::ClampF32;
    use crate::optimized::isa::Avx2Fma;
    use std::arch::x86_64::*;

    #[allow(clippy::too_many_arguments)]
    pub(super) fn average_pool_q8_rows<T: QType>(
        t: Avx2Fma,
        p: &Pool2dParams,
        clamp: ClampI32,
        input: &[T],
        in_shape: [usize; 4],
        out_rows: &mut [T],
        row_start: usize,
        out_shape: [usize; 4],
    ) -> bool {
        let _ = t;
        // SAFETY: the token proves AVX2; the body is safe code.
        unsafe { average_q8_avx2(p, clamp, input, in_shape, out_rows, row_start, out_shape) }
    }

    /// # Safety
    /// AVX2 available.
    #[target_feature(enable = "avx2")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn average_q8_avx2<T: QType>(
        p: &Pool2dParams,
        clamp: ClampI32,
        input: &[T],
        in_shape: [usize; 4],
        out_rows: &mut [T],
        row_start: usize,
        out_shape: [usize; 4],
    ) -> bool {
        super::average_q8(p, clamp, input, in_shape, out_rows, row_start, out_shape)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn max_pool_q8_rows<T: QType>(
        t: Avx2Fma,
        p: &Pool2dParams,
        clamp: ClampI32,
        input: &[T],
        in_shape: [usize; 4],
        out_rows: &mut [T],
        row_start: usize,
        out_shape: [usize; 4],
    ) {
        let _ = t;
        // SAFETY: the token proves AVX2; the body is safe code.
        unsafe { max_q8_avx2(p, clamp, input, in_shape, out_rows, row_start, out_shape) }
    }

    /// # Safety
    /// AVX2 available.
    #[target_feature(enable = "avx2")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn max_q8_avx2<T: QType>(
        p: &Pool2dParams,
        clamp: ClampI32,
        input: &[T],
        in_shape: [usize; 4],
        out_rows: &mut [T],
        row_start: usize,
        out_shape: [usize; 4],
    ) {
        super::max_q8(p, clamp, input, in_shape, out_rows, row_start, out_shape)
    }

    /// A pixel kernel: `(input, window pixels, depth, clamp, output)`.
    type PixelKernel = unsafe fn(*const f32, &[usize], usize, ClampF32, *mut f32);

    /// Output pixels `row_start ..` of `out_rows` through `kernel`, each
    /// window's pixels checked against `input` first. `false` (stopping
    /// there) at a window with no pixel where `empty_fails` (the average,
    /// which would divide by zero; the max gives `f32::MIN` there).
    #[allow(clippy::too_many_arguments)]
    fn pool_with(
        kernel: PixelKernel,
        empty_fails: bool,
        p: &Pool2dParams,
        input: &[f32],
        in_shape: [usize; 4],
        out_rows: &mut [f32],
        row_start: usize,
        out_shape: [usize; 4],
    ) -> bool {
        let depth = in_shape[3];
        assert_eq!(depth, out_shape[3], "pooling keeps the channels");
        assert!(input.len() >= in_shape.iter().product::<usize>(), "input shorter than its shape");
        let clamp = p.clamp;
        pool::pool_rows(p, in_shape, out_shape, out_rows, row_start, |pixels, out| {
            if empty_fails && pixels.is_empty() {
                return false;
            }
            // `pool_rows` lists in-bounds pixels of `in_shape` only.
            assert!(pixels.iter().all(|&px| (px + 1) * depth <= input.len()) && out.len() == depth);
            // SAFETY: the callers hold an AVX2 token, which the kernels
            // need; every pixel's `depth` values lie in `input`, `out`
            // holds `depth` (asserted above), and the average kernel gets
            // at least one pixel.
            unsafe { kernel(input.as_ptr(), pixels, depth, clamp, out.as_mut_ptr()) };
            true
        })
    }

    pub(super) fn max_pool_f32_rows(
        _t: Avx2Fma,
        p: &Pool2dParams,
        input: &[f32],
        in_shape: [usize; 4],
        out_rows: &mut [f32],
        row_start: usize,
        out_shape: [usize; 4],
    ) {
        pool_with(f32_pool_avx2::<true>, false, p, input, in_shape, out_rows, row_start, out_shape);
    }

    pub(super) fn average_pool_f32_rows(
        _t: Avx2Fma,
        p: &Pool2dParams,
        input: &[f32],
        in_shape: [usize; 4],
        out_rows: &mut [f32],
        row_start: usize,
        out_shape: [usize; 4],
    ) -> bool {
        pool_with(f32_pool_avx2::<false>, true, p, input, in_shape, out_rows, row_start, out_shape)
    }

    /// Folds tap value `v` into a channel's running value `m`: the
    /// maximum (`vmaxps(v, m)`, `v > m ? v : m`) or the sum.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn fold<const MAX: bool>(m: __m256, v: __m256) -> __m256 {
        if MAX {
            _mm256_max_ps(v, m)
        } else {
            _mm256_add_ps(m, v)
        }
    }

    /// A channel's output from its fold `m`: the maximum, or the sum over
    /// the `n` taps divided by `n`; then the clamp to `[lo, hi]` (`max(lo,
    /// v)` / `min(hi, v)` return `v` when it is NaN, like
    /// `ClampF32::apply`).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn finish<const MAX: bool>(m: __m256, n: __m256, lo: __m256, hi: __m256) -> __m256 {
        let v = if MAX { m } else { _mm256_div_ps(m, n) };
        _mm256_min_ps(hi, _mm256_max_ps(lo, v))
    }

    /// One output pixel: per channel, the maximum over `pixels` (each
    /// `depth` values at `x + px * depth`) from `f32::MIN` (`MAX`), or
    /// their sum in order from `0.0` divided by their count; then the
    /// clamp. 32 channels stay in four registers across the taps (the
    /// reference compiled for AVX2 kept the sums in memory, a load and a
    /// store per tap), then 8, then one at a time.
    ///
    /// # Safety
    /// AVX2 must be available; every pixel's values must be readable and
    /// `out` writable for `depth` values; for the average, `pixels` is not
    /// empty.
    #[target_feature(enable = "avx2")]
    unsafe fn f32_pool_avx2<const MAX: bool>(
        x: *const f32,
        pixels: &[usize],
        depth: usize,
        clamp: ClampF32,
        out: *mut f32,
    ) {
        // SAFETY: offsets stay below `depth` within each pixel (the caller's
        // bounds).
        unsafe {
            let count = pixels.len() as f32;
            let start = if MAX { f32::MIN } else { 0.0 };
            let (lo, hi, n) = (_mm256_set1_ps(clamp.min), _mm256_set1_ps(clamp.max), _mm256_set1_ps(count));
            // (Loops and target-feature functions, not closures: a
            // closure would not get the target features.)
            let mut c = 0;
            while c + 32 <= depth {
                let mut m = [_mm256_set1_ps(start); 4];
                for &px in pixels {
                    let v = x.add(px * depth + c);
                    for (j, mj) in m.iter_mut().enumerate() {
                        *mj = fold::<MAX>(*mj, _mm256_loadu_ps(v.add(8 * j)));
                    }
                }
                for (j, &mj) in m.iter().enumerate() {
                    _mm256_storeu_ps(out.add(c + 8 * j), finish::<MAX>(mj, n, lo, hi));
                }
                c += 32;
            }
            while c + 8 <= depth {
                let mut m = _mm256_set1_ps(start);
                for &px in pixels {
                    m = fold::<MAX>(m, _mm256_loadu_ps(x.add(px * depth + c)));
                }
                _mm256_storeu_ps(out.add(c), finish::<MAX>(m, n, lo, hi));
                c += 8;
            }
            for c in c..depth {
                let mut m = start;
                for &px in pixels {
                    let v = *x.add(px * depth + c);
                    m = match MAX {
                        true if m < v => v,
                        true => m,
                        false => m + v,
                    };
                }
                *out.add(c) = clamp.apply(if MAX { m } else { m / count });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::ClampF32;
    use crate::optimized::isa::available_levels;
    use crate::optimized::testutil::{gflops, Rng};

    #[test]
    fn pools_equal_the_reference_bit_for_bit() {
        let mut rng = Rng::new(0x9001);
        for i in 0..120usize {
            let (fh, fw) = (rng.range(1, 4), rng.range(1, 4));
            let (sh, sw) = (rng.range(1, 3), rng.range(1, 3));
            let (in_h, in_w) = (rng.range(fh, 12), rng.range(fw, 12));
            let c = if i % 3 == 0 { rng.range(30, 70) } else { rng.range(1, 20) };
            let pad = (rng.range(0, fh), rng.range(0, fw));
            let out_h = (in_h + 2 * pad.0 - fh) / sh + 1;
            let out_w = (in_w + 2 * pad.1 - fw) / sw + 1;
            let p = Pool2dParams {
                stride_h: sh,
                stride_w: sw,
                filter_h: fh,
                filter_w: fw,
                pad_top: pad.0,
                pad_left: pad.1,
                clamp: if i % 2 == 0 { ClampF32::RELU6 } else { ClampF32::NONE },
            };
            let batches = rng.range(1, 3);
            let in_shape = [batches, in_h, in_w, c];
            let out_shape = [batches, out_h, out_w, c];
            let input = rng.vec(in_shape.iter().product());
            let len: usize = out_shape.iter().product();
            let mut want_avg = vec![0.0; len];
            let ok = pool::average_pool_f32_rows(&p, &input, in_shape, &mut want_avg, 0, out_shape);
            // Max: NaNs and signed zeros in the input, which the reference
            // treats asymmetrically (a NaN input is skipped, a NaN maximum
            // kept; -0.0 and 0.0 keep whichever came first).
            let mut special = input.clone();
            for (j, v) in special.iter_mut().enumerate() {
                match (j * 7 + i) % 23 {
                    0 => *v = f32::NAN,
                    1 => *v = -0.0,
                    2 => *v = 0.0,
                    _ => {}
                }
            }
            let mut want_max = vec![0.0; len];
            pool::max_pool_f32_rows(&p, &special, in_shape, &mut want_max, 0, out_shape);
            for &isa in &available_levels() {
                let mut avg = vec![f32::NAN; len];
                // Two chunks, as threads would split it.
                let half = (out_h * out_w * batches / 2) * c;
                let (a0, a1) = avg.split_at_mut(half);
                let got_ok = average_pool_f32_rows(isa, &p, &input, in_shape, a0, 0, out_shape)
                    & average_pool_f32_rows(isa, &p, &input, in_shape, a1, half / c, out_shape);
                assert_eq!(got_ok, ok, "case {i} {isa:?}");
                let mut max = vec![f32::NAN; len];
                let (m0, m1) = max.split_at_mut(half);
                max_pool_f32_rows(isa, &p, &special, in_shape, m0, 0, out_shape);
                max_pool_f32_rows(isa, &p, &special, in_shape, m1, half / c, out_shape);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&max), bits(&want_max), "max pool case {i} {isa:?} {p:?}");
                if ok {
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&avg), bits(&want_avg), "case {i} {isa:?} {p:?}");
                }
            }
        }
    }

    /// The division-free quotient against integer division, exhaustively
    /// over every sum an 8-bit window of up to 64 values can give, and on
    /// a sweep of larger 16-bit ones.
    #[test]
    fn div_trunc_is_integer_division() {
        for d in 1..=64 {
            let inv = 1.0 / d as f32;
            for n in -(256 * 64 + 32)..=(256 * 64 + 32) {
                assert_eq!(div_trunc(n, d, inv), n / d, "{n} / {d}");
            }
        }
        for d in [3, 9, 25, 49, 100, 127, 255] {
            let inv = 1.0 / d as f32;
            let limit = (1 << 21) / d;
            for n in (-limit * d..limit * d).step_by(997) {
                assert_eq!(div_trunc(n, d, inv), n / d, "{n} / {d}");
            }
        }
    }

    /// 8- and 16-bit average and max pools against the quantised
    /// reference, value for value, with extreme inputs (all at the type's
    /// ends, where the sums and their rounding are largest) and random
    /// ones, clamps, paddings, split in two chunks, at every level.
    #[test]
    fn quantized_pools_equal_the_reference() {
        use crate::reference::quantized as qk;
        fn check<T: QType + PartialEq + std::fmt::Debug>(rng: &mut Rng, case: usize, to_t: impl Fn(i64) -> T) {
            let (fh, fw) = (rng.range(1, 6), rng.range(1, 6));
            let (sh, sw) = (rng.range(1, 3), rng.range(1, 3));
            let (in_h, in_w) = (rng.range(fh, 12), rng.range(fw, 12));
            let c = rng.range(1, 40);
            let pad = (rng.range(0, fh), rng.range(0, fw));
            let out_h = (in_h + 2 * pad.0 - fh) / sh + 1;
            let out_w = (in_w + 2 * pad.1 - fw) / sw + 1;
            let p = Pool2dParams {
                stride_h: sh,
                stride_w: sw,
                filter_h: fh,
                filter_w: fw,
                pad_top: pad.0,
                pad_left: pad.1,
                clamp: ClampF32::NONE,
            };
            let clamp = if case.is_multiple_of(2) {
                ClampI32 { min: T::MIN, max: T::MAX }
            } else {
                ClampI32 { min: T::MIN / 2, max: T::MAX / 3 }
            };
            let in_shape = [1, in_h, in_w, c];
            let out_shape = [1, out_h, out_w, c];
            let n: usize = in_shape.iter().product();
            let span = (T::MAX - T::MIN) as u64 + 1;
            let input: Vec<T> = (0..n)
                .map(|_| match case % 4 {
                    0 => to_t(T::MAX as i64),
                    1 => to_t(T::MIN as i64),
                    _ => to_t(T::MIN as i64 + (rng.next_u64() % span) as i64),
                })
                .collect();
            let len: usize = out_shape.iter().product();
            let mut want_avg = vec![T::default(); len];
            let ok = qk::average_pool_quantized_rows(&p, clamp, &input, in_shape, &mut want_avg, 0, out_shape);
            let mut want_max = vec![T::default(); len];
            qk::max_pool_quantized_rows(&p, clamp, &input, in_shape, &mut want_max, 0, out_shape);
            for &isa in &available_levels() {
                let half = (out_h * out_w / 2) * c;
                let mut avg = vec![T::default(); len];
                let (a0, a1) = avg.split_at_mut(half);
                let got_ok = average_pool_q8_rows(isa, &p, clamp, &input, in_shape, a0, 0, out_shape)
                    & average_pool_q8_rows(isa, &p, clamp, &input, in_shape, a1, half / c, out_shape);
                assert_eq!(got_ok, ok, "case {case} {isa:?}");
                if ok {
                    assert_eq!(avg, want_avg, "average case {case} {isa:?} {p:?}");
                }
                let mut max = vec![T::default(); len];
                let (m0, m1) = max.split_at_mut(half);
                max_pool_q8_rows(isa, &p, clamp, &input, in_shape, m0, 0, out_shape);
                max_pool_q8_rows(isa, &p, clamp, &input, in_shape, m1, half / c, out_shape);
                assert_eq!(max, want_max, "max case {case} {isa:?} {p:?}");
            }
        }
        let mut rng = Rng::new(0x9008);
        for case in 0..120 {
            check::<i8>(&mut rng, case, |v| v as i8);
            check::<u8>(&mut rng, case, |v| v as u8);
            check::<i16>(&mut rng, case, |v| v as i16);
        }
    }

    /// `cargo test --release -p ferrolite-kernels --lib optimized::pool -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn bench_pool() {
        let mut rng = Rng::new(5);
        // Inception v3's 3x3 SAME average pool over 35x35x288.
        let p = Pool2dParams {
            stride_h: 1,
            stride_w: 1,
            filter_h: 3,
            filter_w: 3,
            pad_top: 1,
            pad_left: 1,
            clamp: ClampF32::NONE,
        };
        let shape = [1, 35, 35, 288];
        let input = rng.vec(shape.iter().product());
        let mut out = vec![0.0; input.len()];
        let adds = 9.0 * out.len() as f64;
        for &isa in &available_levels() {
            let rate = gflops(adds, || {
                let _ = average_pool_f32_rows(isa, &p, &input, shape, &mut out, 0, shape);
            });
            println!("avg pool 3x3 35x35x288 {isa:?}: {rate:.1} G adds/s");
        }
    }
}
