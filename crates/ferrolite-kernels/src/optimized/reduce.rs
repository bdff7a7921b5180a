//! Float reductions (SUM, MEAN, REDUCE_MAX/MIN/PROD) and the quantised
//! MEAN: the reference's merged-dimension walk compiled for AVX2, so a kept
//! innermost run folds eight lanes at a time. The same operations in the
//! same order: the same bits.

#[cfg(target_arch = "x86_64")]
use crate::optimized::isa::Avx2Fma;
use crate::optimized::isa::IsaLevel;
use crate::reference::quantized::{mean_quantized as mean_q, QType, QuantizedMeanParams};
use crate::reference::reduce as r;

/// Which reduction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceF32 {
    Sum,
    Mean,
    Max,
    Min,
    Prod,
}

/// `kind` of `input` (`in_shape`) over `axes` into `output`, at `isa`.
pub fn reduce_f32(
    isa: IsaLevel,
    kind: ReduceF32,
    input: &[f32],
    in_shape: &[usize],
    axes: &[usize],
    output: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if let Some(t) = Avx2Fma::new(isa) {
        let _ = t;
        // SAFETY: the token proves AVX2; the body is safe code.
        #[allow(unsafe_code)]
        return unsafe { reduce_avx2(kind, input, in_shape, axes, output) };
    }
    let _ = isa;
    reduce_any(kind, input, in_shape, axes, output)
}

#[inline(always)]
fn reduce_any(kind: ReduceF32, input: &[f32], in_shape: &[usize], axes: &[usize], output: &mut [f32]) {
    match kind {
        ReduceF32::Sum => r::sum_f32(input, in_shape, axes, output),
        ReduceF32::Mean => r::mean_f32(input, in_shape, axes, output),
        ReduceF32::Max => r::reduce_max_f32(input, in_shape, axes, output),
        ReduceF32::Min => r::reduce_min_f32(input, in_shape, axes, output),
        ReduceF32::Prod => r::reduce_prod_f32(input, in_shape, axes, output),
    }
}

/// # Safety
/// AVX2 available.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[target_feature(enable = "avx2")]
unsafe fn reduce_avx2(kind: ReduceF32, input: &[f32], in_shape: &[usize], axes: &[usize], output: &mut [f32]) {
    reduce_any(kind, input, in_shape, axes, output)
}

/// The quantised MEAN (`reference::quantized::mean_quantized`) at `isa`:
/// its int32 sums of a kept innermost run widened and added eight lanes
/// at a time (int8 MEAN over H and W ran 6x LiteRT's time on the
/// baseline build's scalar loop).
pub fn mean_quantized<T: QType>(
    isa: IsaLevel,
    p: &QuantizedMeanParams,
    input: &[T],
    in_shape: &[usize],
    axes: &[usize],
    output: &mut [T],
) {
    #[cfg(target_arch = "x86_64")]
    if let Some(t) = Avx2Fma::new(isa) {
        let _ = t;
        // SAFETY: the token proves AVX2; the body is safe code.
        #[allow(unsafe_code)]
        return unsafe { mean_quantized_avx2(p, input, in_shape, axes, output) };
    }
    let _ = isa;
    mean_q(p, input, in_shape, axes, output)
}

/// # Safety
/// AVX2 available.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[target_feature(enable = "avx2")]
unsafe fn mean_quantized_avx2<T: QType>(
    p: &QuantizedMeanParams,
    input: &[T],
    in_shape: &[usize],
    axes: &[usize],
    output: &mut [T],
) {
    mean_q(p, input, in_shape, axes, output)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimized::isa::available_levels;
    use crate::optimized::testutil::Rng;

    /// The quantised MEAN on random shapes, axis sets and parameters,
    /// int8 and uint8, against the reference at every level.
    #[test]
    fn quantized_mean_equals_the_reference() {
        let mut rng = Rng::new(0x3ee);
        for case in 0..200 {
            let rank = rng.range(1, 5);
            let shape: Vec<usize> = (0..rank).map(|_| rng.pick(&[1, 2, 3, 9, 17, 40])).collect();
            let axes: Vec<usize> = (0..rank).filter(|_| rng.range(0, 2) == 0).collect();
            let n: usize = shape.iter().product();
            let out_len: usize = r::reduced_shape(&shape, &axes, false).iter().product();
            let (si, so) = (0.001 + (rng.f32() + 1.0) * 0.05, 0.001 + (rng.f32() + 1.0) * 0.05);
            let (zi, zo) = (rng.range(0, 256) as i32 - 128, rng.range(0, 256) as i32 - 128);
            if case % 2 == 0 {
                let p = QuantizedMeanParams::new::<i8>(si, zi, so, zo).unwrap();
                let x: Vec<i8> = (0..n).map(|_| rng.next_u64() as i8).collect();
                let mut want = vec![0i8; out_len];
                mean_q(&p, &x, &shape, &axes, &mut want);
                for &isa in &available_levels() {
                    let mut got = vec![7i8; out_len];
                    mean_quantized(isa, &p, &x, &shape, &axes, &mut got);
                    assert_eq!(got, want, "case {case} {isa:?}: {shape:?} axes {axes:?}");
                }
            } else {
                let p = QuantizedMeanParams::new::<u8>(si, zi + 128, so, zo + 128).unwrap();
                let x: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
                let mut want = vec![0u8; out_len];
                mean_q(&p, &x, &shape, &axes, &mut want);
                for &isa in &available_levels() {
                    let mut got = vec![7u8; out_len];
                    mean_quantized(isa, &p, &x, &shape, &axes, &mut got);
                    assert_eq!(got, want, "case {case} {isa:?}: {shape:?} axes {axes:?}");
                }
            }
        }
    }

    /// Every kind on random shapes and axis sets, NaNs among the values,
    /// against the reference bit for bit at every level.
    #[test]
    fn reductions_equal_the_reference() {
        let mut rng = Rng::new(0x3ed);
        for case in 0..200 {
            let rank = rng.range(1, 5);
            let shape: Vec<usize> = (0..rank).map(|_| rng.pick(&[1, 2, 3, 9, 17, 40])).collect();
            let axes: Vec<usize> = (0..rank).filter(|_| rng.range(0, 2) == 0).collect();
            let n: usize = shape.iter().product();
            let mut x = rng.vec(n);
            if case % 5 == 0 && n > 3 {
                x[n / 3] = f32::NAN;
            }
            let out_len: usize = r::reduced_shape(&shape, &axes, false).iter().product();
            for kind in [ReduceF32::Sum, ReduceF32::Mean, ReduceF32::Max, ReduceF32::Min, ReduceF32::Prod] {
                let mut want = vec![0.0; out_len];
                reduce_any(kind, &x, &shape, &axes, &mut want);
                for &isa in &available_levels() {
                    let mut got = vec![7.0; out_len];
                    reduce_f32(isa, kind, &x, &shape, &axes, &mut got);
                    let same =
                        got.iter().zip(&want).all(|(g, w)| g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()));
                    assert!(same, "case {case} {kind:?} {isa:?}: {shape:?} axes {axes:?}");
                }
            }
        }
    }
}
