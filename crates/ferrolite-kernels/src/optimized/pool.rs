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

#[cfg(target_arch = "x86_64")]
use crate::optimized::isa::Avx2Fma;
use crate::optimized::isa::IsaLevel;
use crate::reference::pool::{self, Pool2dParams};

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

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
    use super::{pool, Pool2dParams};
    use crate::activation::ClampF32;
    use crate::optimized::isa::Avx2Fma;
    use std::arch::x86_64::*;

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
