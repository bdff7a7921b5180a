//! Quantised MEAN and SUM.
//!
//! TFLite has two integer MEAN computations, and which one runs depends on
//! the kernel variant, not only on the model:
//!
//! - [`mean_quantized`]: `reference_ops::QuantizedMeanOrSum`, which the
//!   reference kernel uses for int8, uint8 and int16 over any axes. The sum
//!   of raw values is corrected by `zp_in * n`, then one multiplier for
//!   `s_in / s_out` -- with `1/n` folded into it in integer arithmetic --
//!   requantises it.
//! - [`mean_hw_i8_optimized`]: `optimized_integer_ops::Mean`, which TFLite's
//!   default (optimised) kernel uses for int8 when the input is 4-D,
//!   `keep_dims` is set and the axes are exactly {1, 2}. Its multiplier is
//!   `s_in / (n * s_out)` formed in `f32`, and the zero-point correction is a
//!   float-rounded bias. Results can differ from the reference by one unit.
//!   All other shapes go through `optimized_ops::QuantizedMeanOrSum`, which is
//!   not reproduced here.
//!
//! SUM shares MEAN's preparation (one multiplier for `s_in / s_out`) and
//! the reference kernel's requantisation, without the `1/n`:
//! [`sum_quantized`]. LiteRT's reference SUM kernel hands the int8 data to
//! that routine as *uint8* bytes (a LiteRT quirk: `-1` is read as `255`, the
//! result is clamped to `0..=255` and stored back as a byte), so its int8 SUM
//! is rarely what the model means; [`sum_quantized_i8_as_u8`] reproduces it
//! for users who need LiteRT's `BUILTIN_REF` bytes exactly.

use super::{valid_scale, QType};
use crate::quant::{multiply_by_quantized_multiplier, quantize_multiplier};
use crate::reference::reduce::{reduce, reduction_count};

/// Parameters of the reference quantised MEAN (`PrepareMeanOrSum`): the
/// multiplier of `input_scale / output_scale` in `f64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuantizedMeanParams {
    pub multiplier: i32,
    pub shift: i32,
    pub input_zero_point: i32,
    pub output_zero_point: i32,
}

impl QuantizedMeanParams {
    /// For element type `T`; int16 requires both zero points to be 0.
    pub fn new<T: QType>(
        input_scale: f32,
        input_zero_point: i32,
        output_scale: f32,
        output_zero_point: i32,
    ) -> Option<Self> {
        if !valid_scale(input_scale) || !valid_scale(output_scale) {
            return None;
        }
        if T::MAX > u8::MAX as i32 && (input_zero_point != 0 || output_zero_point != 0) {
            return None;
        }
        let (multiplier, shift) = quantize_multiplier(input_scale as f64 / output_scale as f64);
        Some(Self { multiplier, shift, input_zero_point, output_zero_point })
    }
}

/// MEAN over `axes` (normalised, repeats allowed) for `i8`, `u8`, `i16`, as
/// the reference kernel computes it. The output layout is that of
/// [`crate::reference::reduce::reduce`] (independent of `keep_dims`).
///
/// With no axes TFLite copies the input unchanged (no requantisation). The
/// raw values are summed in 32 bits; `n = ` the number of reduced elements;
/// `1/n` is folded into the multiplier as
/// `m' = (m << k) / n`, `shift' = shift - k` with `k = min(floor(log2 n), 32,
/// 31 + shift)`; then `out = clamp(MBQM(sum - zp_in * n, m', shift') + zp_out)`.
// Inlined so `optimized::reduce::mean_quantized` compiles it for AVX2.
#[inline(always)]
pub fn mean_quantized<T: QType>(
    p: &QuantizedMeanParams,
    input: &[T],
    in_shape: &[usize],
    axes: &[usize],
    output: &mut [T],
) {
    if axes.is_empty() {
        for (o, &x) in output.iter_mut().zip(input) {
            *o = x;
        }
        return;
    }
    // Widened while summing: no i32 copy of the input (a 250 KB buffer
    // per invoke for a 7x7x1280 global average).
    let mut sums = vec![0i32; output.len()];
    reduce(input, in_shape, axes, &mut sums, 0, |acc: i32, x: T| acc.wrapping_add(x.to_i32()));
    let n = reduction_count(in_shape, axes) as i64;
    if n == 0 {
        output.iter_mut().for_each(|o| *o = T::default());
        return;
    }
    let k = (63 - (n as u64).leading_zeros() as i32).min(32).min(31 + p.shift).max(0);
    let multiplier = (((p.multiplier as i64) << k) / n) as i32;
    let shift = p.shift - k;
    for (o, &s) in output.iter_mut().zip(&sums) {
        let shifted = (s as i64 - p.input_zero_point as i64 * n) as i32;
        let v = multiply_by_quantized_multiplier(shifted, multiplier, shift).wrapping_add(p.output_zero_point);
        *o = T::from_i32(v.clamp(T::MIN, T::MAX));
    }
}

/// SUM over `axes` (normalised, repeats allowed) for `i8`, `u8`, `i16` as
/// `reference_ops::QuantizedMeanOrSum(compute_sum = true)` computes it on
/// correctly typed values: raw values summed in 32 bits (wrapping, as TFLite's
/// `int32` accumulator), `out = clamp(MBQM(sum - zp_in * n, m, shift) + zp_out)`
/// with `m, shift` of `s_in / s_out`. With no axes the input is copied
/// unchanged, as TFLite does. An empty reduction gives zeros.
pub fn sum_quantized<T: QType>(
    p: &QuantizedMeanParams,
    input: &[T],
    in_shape: &[usize],
    axes: &[usize],
    output: &mut [T],
) {
    if axes.is_empty() {
        for (o, &x) in output.iter_mut().zip(input) {
            *o = x;
        }
        return;
    }
    requantize_sums(p, input, |x: T| x.to_i32(), in_shape, axes, output, |v| T::from_i32(v.clamp(T::MIN, T::MAX)));
}

/// LiteRT 2.3's reference int8 SUM, byte for byte: every int8 value is read
/// as the uint8 with the same bits, the sum is requantised as in
/// [`sum_quantized`] with the int8 zero points, clamped to `0..=255`, and the
/// byte stored back as int8 (so 200 comes out as -56). See the module notes.
pub fn sum_quantized_i8_as_u8(
    p: &QuantizedMeanParams,
    input: &[i8],
    in_shape: &[usize],
    axes: &[usize],
    output: &mut [i8],
) {
    if axes.is_empty() {
        output.iter_mut().zip(input).for_each(|(o, &x)| *o = x);
        return;
    }
    requantize_sums(p, input, |x: i8| x as u8 as i32, in_shape, axes, output, |v| v.clamp(0, 255) as u8 as i8);
}

/// Sums `value(x)` over `axes` (widened while summing, no i32 copy of the
/// input), removes `zp_in * n`, requantises with `p`'s multiplier and adds
/// `zp_out`; `store` saturates and narrows.
#[allow(clippy::too_many_arguments)]
fn requantize_sums<I: Copy, T: Copy + Default>(
    p: &QuantizedMeanParams,
    input: &[I],
    value: impl Fn(I) -> i32,
    in_shape: &[usize],
    axes: &[usize],
    output: &mut [T],
    store: impl Fn(i32) -> T,
) {
    let mut sums = vec![0i32; output.len()];
    reduce(input, in_shape, axes, &mut sums, 0, |acc: i32, x: I| acc.wrapping_add(value(x)));
    let n = reduction_count(in_shape, axes) as i64;
    if n == 0 {
        output.iter_mut().for_each(|o| *o = T::default());
        return;
    }
    for (o, &s) in output.iter_mut().zip(&sums) {
        let shifted = (s as i64 - p.input_zero_point as i64 * n) as i32;
        *o = store(multiply_by_quantized_multiplier(shifted, p.multiplier, p.shift).wrapping_add(p.output_zero_point));
    }
}

/// MEAN of an int8 NHWC tensor over height and width (keep_dims), as TFLite's
/// default optimised kernel computes it (`optimized_integer_ops::Mean`); see
/// the module notes. `out` has `batches * depth` values.
///
/// `bias = zp_out - (int)round_half_away((f32)zp_in * s_in / s_out)`,
/// multiplier of `(f32)(s_in / ((f32)n * s_out))`, then per channel
/// `clamp(MBQM(sum of raw values) + bias)` to the int8 range.
pub fn mean_hw_i8_optimized(
    input_scale: f32,
    input_zero_point: i32,
    output_scale: f32,
    output_zero_point: i32,
    input: &[i8],
    in_shape: [usize; 4],
    output: &mut [i8],
) {
    let [batches, h, w, depth] = in_shape;
    let n = (h * w) as f32;
    let mut temp = input_zero_point as f32 * input_scale / output_scale;
    temp = if temp > 0.0 { temp + 0.5 } else { temp - 0.5 };
    let bias = output_zero_point.wrapping_sub(temp as i32);
    let real_scale = input_scale / (n * output_scale);
    let (multiplier, shift) = quantize_multiplier(real_scale as f64);
    for b in 0..batches {
        for c in 0..depth {
            let mut acc = 0i32;
            for y in 0..h {
                for x in 0..w {
                    acc = acc.wrapping_add(input[((b * h + y) * w + x) * depth + c] as i32);
                }
            }
            let v = multiply_by_quantized_multiplier(acc, multiplier, shift).wrapping_add(bias);
            output[b * depth + c] = v.clamp(-128, 127) as i8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::quantized::testutil::{deq, off_by, Lcg};

    #[test]
    fn mean_hand_worked() {
        // Same scale, zp 5: mean of [6, 7, 9, 10] - 5 = 3 -> 8.
        let p = QuantizedMeanParams::new::<i8>(0.5, 5, 0.5, 5).unwrap();
        let mut out = [0i8; 1];
        mean_quantized(&p, &[6i8, 7, 9, 10], &[1, 2, 2, 1], &[1, 2], &mut out);
        assert_eq!(out, [8]);
        // Output scale halved: 3 -> 6, + 5.
        let p = QuantizedMeanParams::new::<i8>(0.5, 5, 0.25, 5).unwrap();
        mean_quantized(&p, &[6i8, 7, 9, 10], &[1, 2, 2, 1], &[1, 2], &mut out);
        assert_eq!(out, [11]);
        // A mean of +-0.5 unit: here 1/n folds into the high-mul (shift 0),
        // whose ties go toward +infinity, so 0.5 -> 1 but -0.5 -> 0.
        let p = QuantizedMeanParams::new::<i8>(1.0, 0, 1.0, 0).unwrap();
        mean_quantized(&p, &[1i8, 0], &[2], &[0], &mut out);
        assert_eq!(out, [1]);
        mean_quantized(&p, &[-1i8, 0], &[2], &[0], &mut out);
        assert_eq!(out, [0]);
        // With n = 3 the shift stays negative: -1.5 rounds away from zero.
        mean_quantized(&p, &[-1i8, -2, -2, 0], &[4], &[0], &mut out);
        assert_eq!(out, [-1]); // -1.25
                               // Saturation.
        let p = QuantizedMeanParams::new::<i8>(1.0, -128, 0.1, 0).unwrap();
        mean_quantized(&p, &[127i8, 127], &[2], &[0], &mut out);
        assert_eq!(out, [127]);
        // No axes: a plain copy even though the scales differ.
        let mut out2 = [0i8; 2];
        mean_quantized(&p, &[3i8, 4], &[2], &[], &mut out2);
        assert_eq!(out2, [3, 4]);
        // Reducing the channel axis of [1, 2, 3] (uint8).
        let p = QuantizedMeanParams::new::<u8>(1.0, 128, 1.0, 128).unwrap();
        let mut out3 = [0u8; 2];
        mean_quantized(&p, &[128u8, 129, 130, 0, 255, 255], &[1, 2, 3], &[2], &mut out3);
        assert_eq!(out3, [129, 170]); // 170 - 128 = 42 = round(126/3)
        assert!(QuantizedMeanParams::new::<i16>(1.0, 1, 1.0, 0).is_none());
    }

    #[test]
    fn sum_hand_worked() {
        // s_in 0.5 zp 1, s_out 1 zp -2. Rows (3, 5): 0.5 * (2 + 4) = 3 -> 1.
        // Rows (1, 1): 0 -> -2.
        let p = QuantizedMeanParams::new::<i8>(0.5, 1, 1.0, -2).unwrap();
        let mut out = [0i8; 2];
        sum_quantized(&p, &[3i8, 5, 1, 1], &[2, 2], &[1], &mut out);
        assert_eq!(out, [1, -2]);
        // 0.5 * 126 * 2 = 126, -2 -> 124; with three terms it saturates.
        sum_quantized(&p, &[127i8, 127, 127, 127], &[2, 2], &[1], &mut out);
        assert_eq!(out, [124, 124]);
        let mut one = [0i8; 1];
        sum_quantized(&p, &[127i8, 127, 127], &[3], &[0], &mut one);
        assert_eq!(one, [127]);
        // Negative values and the column axis: columns (-3, 5) and (-7, -9)
        // give 0.5 * ((-4) + 4) = 0 -> -2 and 0.5 * (-8 - 10) = -9 -> -11.
        sum_quantized(&p, &[-3i8, -7, 5, -9], &[2, 2], &[0], &mut out);
        assert_eq!(out, [-2, -11]);
        // No axes: a copy.
        sum_quantized(&p, &[9i8, -9], &[2], &[], &mut out);
        assert_eq!(out, [9, -9]);
        // int16 (zero points 0), output scale 4x the input's: 1000 + 3000 -> 1000.
        let p = QuantizedMeanParams::new::<i16>(1.0, 0, 4.0, 0).unwrap();
        let mut o16 = [0i16; 1];
        sum_quantized(&p, &[1000i16, 3000], &[2], &[0], &mut o16);
        assert_eq!(o16, [1000]);
    }

    #[test]
    fn litert_ref_sum_reads_int8_as_bytes() {
        // Same scales, zp 0: -1 + -1 read as 255 + 255 = 510 -> clamped to
        // 255, stored as -1; 100 + 20 = 120 stays 120; -128 + 0 = 128 -> -128.
        let p = QuantizedMeanParams::new::<i8>(1.0, 0, 1.0, 0).unwrap();
        let mut out = [0i8; 3];
        sum_quantized_i8_as_u8(&p, &[-1i8, -1, 100, 20, -128, 0], &[3, 2], &[1], &mut out);
        assert_eq!(out, [-1, 120, -128]);
        // zp 10: (2 - 10) + (3 - 10) = -15 clamps to 0.
        let p = QuantizedMeanParams::new::<i8>(1.0, 10, 1.0, 0).unwrap();
        let mut one = [0i8; 1];
        sum_quantized_i8_as_u8(&p, &[2i8, 3], &[2], &[0], &mut one);
        assert_eq!(one, [0]);
    }

    #[test]
    fn sum_matches_float_reference() {
        let mut rng = Lcg(11);
        for case in 0..200 {
            let shape = [rng.range(1, 5) as usize, rng.range(1, 9) as usize];
            let (si, zi) = (rng.float(0.01, 0.2), rng.range(-128, 127));
            let (so, zo) = (si * rng.float(0.5, 8.0), rng.range(-128, 127));
            let input = rng.i8s(shape[0] * shape[1]);
            let p = QuantizedMeanParams::new::<i8>(si, zi, so, zo).unwrap();
            let mut out = vec![0i8; shape[0]];
            sum_quantized(&p, &input, &shape, &[1], &mut out);
            for r in 0..shape[0] {
                let real: f64 = (0..shape[1]).map(|c| deq(input[r * shape[1] + c] as i32, si, zi)).sum();
                let d = off_by(out[r] as i32, real, so, zo, -128, 127);
                assert!(d <= 1.0, "case {case} row {r}: got {}, real {real}", out[r]);
            }
        }
    }

    #[test]
    fn mean_matches_float_reference() {
        let mut rng = Lcg(9);
        for case in 0..200 {
            let shape = [1usize, rng.range(1, 7) as usize, rng.range(1, 7) as usize, rng.range(1, 4) as usize];
            let n = shape[1] * shape[2];
            let (si, zi) = (rng.float(0.01, 0.2), rng.range(-128, 127));
            let (so, zo) = (si * rng.float(0.3, 3.0), rng.range(-128, 127));
            let input = rng.i8s(shape.iter().product());
            let p = QuantizedMeanParams::new::<i8>(si, zi, so, zo).unwrap();
            let mut out = vec![0i8; shape[3]];
            mean_quantized(&p, &input, &shape, &[1, 2], &mut out);
            let mut opt = vec![0i8; shape[3]];
            mean_hw_i8_optimized(si, zi, so, zo, &input, shape, &mut opt);
            for c in 0..shape[3] {
                let real: f64 = (0..n).map(|i| deq(input[i * shape[3] + c] as i32, si, zi)).sum::<f64>() / n as f64;
                let d = off_by(out[c] as i32, real, so, zo, -128, 127);
                assert!(d <= 1.0, "case {case} ch {c}: got {}, real {real}", out[c]);
                let d = off_by(opt[c] as i32, real, so, zo, -128, 127);
                assert!(d <= 1.5, "case {case} ch {c}: optimized got {}, real {real}", opt[c]);
            }
        }
    }
}
