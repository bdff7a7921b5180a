//! AVERAGE_POOL_2D (float), vectorised over channels.
//!
//! The reference kernel's own loops (`reference::pool`), inlined into a
//! function compiled with AVX2 enabled, so LLVM vectorises the per-channel
//! sums 8 channels wide instead of SSE2's 4 (2.75x on Inception's 35x35x288
//! pools). Each channel still sums its taps in the reference's order (no
//! FMA contraction happens without fast-math), so the results are identical
//! to the reference, which the tests check bit for bit. MAX_POOL_2D compiled
//! the same way ran 3x slower than its SSE2 build (Inception v3), so it
//! stays on the reference kernel.

use crate::optimized::isa::{Avx2Fma, IsaLevel};
use crate::reference::pool::{self, Pool2dParams};

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
    if Avx2Fma::new(isa).is_some() {
        // SAFETY: `Avx2Fma::new` checked that the CPU has AVX2; the body is
        // safe Rust (bounds-checked slices).
        #[allow(unsafe_code)]
        return unsafe { avx2::average_pool_f32_rows(p, input, in_shape, out_rows, row_start, out_shape) };
    }
    let _ = isa;
    pool::average_pool_f32_rows(p, input, in_shape, out_rows, row_start, out_shape)
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{pool, Pool2dParams};

    /// The reference kernel, inlined here and so compiled for AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) fn average_pool_f32_rows(
        p: &Pool2dParams,
        input: &[f32],
        in_shape: [usize; 4],
        out_rows: &mut [f32],
        row_start: usize,
        out_shape: [usize; 4],
    ) -> bool {
        pool::average_pool_f32_rows(p, input, in_shape, out_rows, row_start, out_shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::ClampF32;
    use crate::optimized::isa::available_levels;
    use crate::optimized::testutil::{gflops, Rng};

    #[test]
    fn average_pool_equals_the_reference_bit_for_bit() {
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
            for &isa in &available_levels() {
                let mut avg = vec![f32::NAN; len];
                // Two chunks, as threads would split it.
                let half = (out_h * out_w * batches / 2) * c;
                let (a0, a1) = avg.split_at_mut(half);
                let got_ok = average_pool_f32_rows(isa, &p, &input, in_shape, a0, 0, out_shape)
                    & average_pool_f32_rows(isa, &p, &input, in_shape, a1, half / c, out_shape);
                assert_eq!(got_ok, ok, "case {i} {isa:?}");
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
