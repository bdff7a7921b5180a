//! Smaller quantised ops: QUANTIZE (from float and integer requantisation),
//! CONCATENATION with rescaling, RESIZE_BILINEAR on integers, the RELU family,
//! LEAKY_RELU and PRELU, following TFLite's reference kernels and `Prepare`s.

use super::{valid_scale, QType};
use crate::quant::{
    multiply_by_quantized_multiplier, quantize_f32_to_i16, quantize_f32_to_i8, quantize_f32_to_u8, quantize_multiplier,
};
use crate::reference::elementwise::broadcast_binary;

/// QUANTIZE from `f32` (`reference_ops::AffineQuantize`) to `i8`, `u8` or
/// `i16`: `clamp(round(x / scale) + zero_point)`, see
/// [`crate::quant::quantize_f32_to_i8`].
pub fn quantize_f32<T: QType>(input: &[f32], scale: f32, zero_point: i32, output: &mut [T]) {
    for (o, &x) in output.iter_mut().zip(input) {
        let v = match (T::MIN, T::MAX) {
            (-128, 127) => quantize_f32_to_i8(x, scale, zero_point) as i32,
            (0, 255) => quantize_f32_to_u8(x, scale, zero_point) as i32,
            _ => quantize_f32_to_i16(x, scale, zero_point) as i32,
        };
        *o = T::from_i32(v);
    }
}

/// Parameters of QUANTIZE between integer types (`quantize.cc`): one
/// multiplier for `(f64)s_in / (f64)s_out`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequantizeParams {
    pub multiplier: i32,
    pub shift: i32,
    pub input_zero_point: i32,
    pub output_zero_point: i32,
}

impl RequantizeParams {
    pub fn new(input_scale: f32, input_zero_point: i32, output_scale: f32, output_zero_point: i32) -> Option<Self> {
        if !valid_scale(input_scale) || !valid_scale(output_scale) {
            return None;
        }
        let (multiplier, shift) = quantize_multiplier(input_scale as f64 / output_scale as f64);
        Some(Self { multiplier, shift, input_zero_point, output_zero_point })
    }
}

/// `reference_ops::Requantize`: `clamp(MBQM(x - zp_in) + zp_out)` to the
/// output type. (TFLite's int8<->uint8 "flip the sign bit" fast path gives
/// the same bytes as this formula, so it needs no special case.)
pub fn requantize<I: QType, O: QType>(p: &RequantizeParams, input: &[I], output: &mut [O]) {
    for (o, &x) in output.iter_mut().zip(input) {
        let v = multiply_by_quantized_multiplier(x.to_i32() - p.input_zero_point, p.multiplier, p.shift)
            .wrapping_add(p.output_zero_point);
        *o = O::from_i32(v.clamp(O::MIN, O::MAX));
    }
}

/// CONCATENATION with per-input requantisation
/// (`reference_ops::ConcatenationWithScaling`, TFLite's uint8 path; int8 and
/// int16 require identical quantisation and use the plain
/// [`crate::reference::concat::concat`]).
///
/// Inputs whose scale and zero point equal the output's are copied; others
/// are mapped with `round(x * scale + bias) + zp_out` in `f32`, where
/// `scale = s_in * (1 / s_out)` and `bias = -zp_in * scale`, then clamped.
#[allow(clippy::too_many_arguments)]
pub fn concat_with_scaling<T: QType>(
    inputs: &[&[T]],
    shapes: &[&[usize]],
    input_scales: &[f32],
    input_zero_points: &[i32],
    axis: usize,
    output_scale: f32,
    output_zero_point: i32,
    output: &mut [T],
) {
    let Some(first) = shapes.first() else { return };
    let outer: usize = first[..axis.min(first.len())].iter().product();
    let blocks: Vec<usize> = shapes.iter().map(|s| s[axis.min(s.len())..].iter().product()).collect();
    let inverse_output_scale = 1.0f32 / output_scale;
    let mut pos = 0usize;
    for o in 0..outer {
        for (i, (input, &block)) in inputs.iter().zip(&blocks).enumerate() {
            let src = &input[o * block..(o + 1) * block];
            let dst = &mut output[pos..pos + block];
            let (s_in, zp_in) = (input_scales[i], input_zero_points[i]);
            if zp_in == output_zero_point && s_in == output_scale {
                dst.copy_from_slice(src);
            } else {
                let scale = s_in * inverse_output_scale;
                let bias = -(zp_in as f32) * scale;
                for (d, &x) in dst.iter_mut().zip(src) {
                    let v = ((x.to_i32() as f32 * scale + bias).round() as i32).wrapping_add(output_zero_point);
                    *d = T::from_i32(v.clamp(T::MIN, T::MAX));
                }
            }
            pos += block;
        }
    }
}

/// TFLite's `ComputeInterpolationValuesInteger`: the source coordinate in
/// 1/1024 units and the two neighbouring rows/columns.
#[inline]
/// The input-per-output step of [`resize_bilinear_integer`] along one
/// side, in 1/1024 units (`out > 0`).
pub(crate) fn scale_10(input: i32, out: i32, align_corners: bool) -> i32 {
    if align_corners && out > 1 {
        ((1 << 10) * (input - 1) + (out - 1) / 2) / (out - 1)
    } else {
        ((1 << 10) * input + out / 2) / out
    }
}

/// `(scaled, lower, upper)`: output index `value`'s input coordinate in
/// 1/1024 units and the two input indices it falls between.
pub(crate) fn interpolation_values_integer(
    value: i32,
    scale_10: i32,
    half_pixel_centers: bool,
    input_size: i32,
) -> (i32, i32, i32) {
    let scaled = if half_pixel_centers { value * scale_10 + scale_10 / 2 - (1 << 9) } else { value * scale_10 };
    let lower = (scaled / (1 << 10)).max(0);
    let upper = ((scaled + (1 << 10) - 1) / (1 << 10)).min(input_size - 1);
    (scaled, lower, upper)
}

/// RESIZE_BILINEAR on `i8`/`i16` (`reference_ops::ResizeBilinearInteger`):
/// 10-bit fixed-point coordinates and weights, a 64-bit weighted sum in
/// 1/2^20 units, rounded half away from zero (the double-rounding build's
/// `(sum ± 2^19) / 2^20`). Shapes as
/// [`crate::reference::resize::resize_bilinear_f32`].
pub fn resize_bilinear_integer<T: QType>(
    input: &[T],
    in_shape: [usize; 4],
    output: &mut [T],
    out_shape: [usize; 4],
    align_corners: bool,
    half_pixel_centers: bool,
) {
    let [batches, in_h, in_w, depth] = in_shape;
    let [_, out_h, out_w, _] = out_shape;
    if out_h == 0 || out_w == 0 || in_h == 0 || in_w == 0 {
        return;
    }
    let (ih, iw, oh, ow) = (in_h as i32, in_w as i32, out_h as i32, out_w as i32);
    let (h_scale_10, w_scale_10) = (scale_10(ih, oh, align_corners), scale_10(iw, ow, align_corners));
    let at = |b: usize, y: i32, x: i32, c: usize| -> i64 {
        input[((b * in_h + y as usize) * in_w + x as usize) * depth + c].to_i32() as i64
    };
    for b in 0..batches {
        for y in 0..oh {
            let (in_y, y0, y1) = interpolation_values_integer(y, h_scale_10, half_pixel_centers, ih);
            let dy = (in_y - (1 << 10) * y0) as i64;
            for x in 0..ow {
                let (in_x, x0, x1) = interpolation_values_integer(x, w_scale_10, half_pixel_centers, iw);
                let dx = (in_x - (1 << 10) * x0) as i64;
                let base = ((b * out_h + y as usize) * out_w + x as usize) * depth;
                for c in 0..depth {
                    let sum = at(b, y0, x0, c) * ((1 << 10) - dy) * ((1 << 10) - dx)
                        + at(b, y1, x0, c) * dy * ((1 << 10) - dx)
                        + at(b, y0, x1, c) * ((1 << 10) - dy) * dx
                        + at(b, y1, x1, c) * dy * dx;
                    let round = if sum > 0 { 1i64 << 19 } else { -(1i64 << 19) };
                    output[base + c] = T::from_i32(((sum + round) / (1 << 20)) as i32);
                }
            }
        }
    }
}

/// Parameters of the quantised RELU family (`activations.cc`): input to
/// output rescaling by `s_in / s_out` (divided in `f32`), then a clamp to
/// the activation's bounds quantised on the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReluParams {
    pub input_zero_point: i32,
    pub output_zero_point: i32,
    pub multiplier: i32,
    pub shift: i32,
    pub act_min: i32,
    pub act_max: i32,
}

impl ReluParams {
    /// `act_min`/`act_max` are the real bounds: RELU `(0, inf)`, RELU6
    /// `(0, 6)`, RELU_N1_TO_1 `(-1, 1)`, RELU_0_TO_1 `(0, 1)`. Bounds are
    /// quantised as `zp + (int)roundf(bound / s_out)` and cut to `T`'s
    /// range; an infinite upper bound is `T::MAX`.
    pub fn new<T: QType>(
        input_scale: f32,
        input_zero_point: i32,
        output_scale: f32,
        output_zero_point: i32,
        act_min: f32,
        act_max: f32,
    ) -> Option<Self> {
        if !valid_scale(input_scale) || !valid_scale(output_scale) {
            return None;
        }
        let (multiplier, shift) = quantize_multiplier((input_scale / output_scale) as f64);
        let q = |b: f32| output_zero_point.saturating_add((b / output_scale).round() as i32);
        let lo = T::MIN.max(q(act_min));
        let hi = if act_max == f32::INFINITY { T::MAX } else { T::MAX.min(q(act_max)) };
        Some(Self { input_zero_point, output_zero_point, multiplier, shift, act_min: lo, act_max: hi })
    }
}

/// Quantised RELU / RELU6 / RELU_N1_TO_1 / RELU_0_TO_1 (TFLite's `ReluX`):
/// `clamp(zp_out + MBQM(x - zp_in))`.
pub fn relu_quantized<T: QType>(p: &ReluParams, input: &[T], output: &mut [T]) {
    for (o, &x) in output.iter_mut().zip(input) {
        let v = multiply_by_quantized_multiplier(x.to_i32() - p.input_zero_point, p.multiplier, p.shift)
            .wrapping_add(p.output_zero_point);
        *o = T::from_i32(v.max(p.act_min).min(p.act_max));
    }
}

/// Parameters of quantised LEAKY_RELU: identity multiplier `s_in / s_out`
/// and alpha multiplier `s_in * alpha / s_out`, both formed in `f32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeakyReluParams {
    pub input_zero_point: i32,
    pub output_zero_point: i32,
    pub multiplier_identity: i32,
    pub shift_identity: i32,
    pub multiplier_alpha: i32,
    pub shift_alpha: i32,
}

impl LeakyReluParams {
    pub fn new(
        input_scale: f32,
        input_zero_point: i32,
        output_scale: f32,
        output_zero_point: i32,
        alpha: f32,
    ) -> Option<Self> {
        if !valid_scale(input_scale) || !valid_scale(output_scale) || !alpha.is_finite() {
            return None;
        }
        let (multiplier_alpha, shift_alpha) = quantize_multiplier((input_scale * alpha / output_scale) as f64);
        let (multiplier_identity, shift_identity) = quantize_multiplier((input_scale / output_scale) as f64);
        Some(Self {
            input_zero_point,
            output_zero_point,
            multiplier_identity,
            shift_identity,
            multiplier_alpha,
            shift_alpha,
        })
    }
}

/// Quantised LEAKY_RELU (`reference_ops::QuantizeLeakyRelu`) for `i8`, `u8`,
/// `i16`: `x - zp_in >= 0` uses the identity multiplier, else the alpha one;
/// plus `zp_out`, clamped to `T`.
pub fn leaky_relu_quantized<T: QType>(p: &LeakyReluParams, input: &[T], output: &mut [T]) {
    for (o, &x) in output.iter_mut().zip(input) {
        let v = x.to_i32() - p.input_zero_point;
        let scaled = if v >= 0 {
            multiply_by_quantized_multiplier(v, p.multiplier_identity, p.shift_identity)
        } else {
            multiply_by_quantized_multiplier(v, p.multiplier_alpha, p.shift_alpha)
        };
        *o = T::from_i32(scaled.wrapping_add(p.output_zero_point).clamp(T::MIN, T::MAX));
    }
}

/// Parameters of quantised PRELU: `s_in / s_out` and
/// `s_in * s_alpha / s_out`, both formed in `f32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PreluParams {
    pub input_offset: i32,
    pub alpha_offset: i32,
    pub output_offset: i32,
    pub multiplier_1: i32,
    pub shift_1: i32,
    pub multiplier_2: i32,
    pub shift_2: i32,
}

impl PreluParams {
    pub fn new(
        input_scale: f32,
        input_zero_point: i32,
        alpha_scale: f32,
        alpha_zero_point: i32,
        output_scale: f32,
        output_zero_point: i32,
    ) -> Option<Self> {
        if !valid_scale(input_scale) || !valid_scale(output_scale) || !valid_scale(alpha_scale) {
            return None;
        }
        let (multiplier_1, shift_1) = quantize_multiplier((input_scale / output_scale) as f64);
        let (multiplier_2, shift_2) = quantize_multiplier((input_scale * alpha_scale / output_scale) as f64);
        Some(Self {
            input_offset: input_zero_point.checked_neg()?,
            alpha_offset: alpha_zero_point.checked_neg()?,
            output_offset: output_zero_point,
            multiplier_1,
            shift_1,
            multiplier_2,
            shift_2,
        })
    }
}

/// Quantised PRELU (`reference_ops::BroadcastPrelu4DSlow`) with `alpha`
/// broadcast against `input`: non-negative `x - zp_in` is rescaled by the
/// first multiplier, negative ones are multiplied by `alpha - zp_alpha` and
/// rescaled by the second; plus `zp_out`, clamped to `T`.
pub fn prelu_quantized<T: QType>(
    p: &PreluParams,
    input: &[T],
    in_shape: &[usize],
    alpha: &[T],
    alpha_shape: &[usize],
    output: &mut [T],
    out_shape: &[usize],
) {
    broadcast_binary(input, in_shape, alpha, alpha_shape, output, out_shape, |x: T, a: T| {
        let v = x.to_i32() + p.input_offset;
        let scaled = if v >= 0 {
            multiply_by_quantized_multiplier(v, p.multiplier_1, p.shift_1)
        } else {
            let a = a.to_i32() + p.alpha_offset;
            multiply_by_quantized_multiplier(v.wrapping_mul(a), p.multiplier_2, p.shift_2)
        };
        T::from_i32(scaled.wrapping_add(p.output_offset).clamp(T::MIN, T::MAX))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::quantized::testutil::{deq, off_by, Lcg};

    #[test]
    fn quantize_and_requantize() {
        let mut o8 = [0i8; 4];
        quantize_f32(&[0.25, -0.25, 100.0, -100.0], 0.5, 1, &mut o8);
        assert_eq!(o8, [2, 0, 127, -128]);
        let mut ou = [0u8; 2];
        quantize_f32(&[0.0, -1.0], 0.5, 128, &mut ou);
        assert_eq!(ou, [128, 126]);
        let mut o16 = [0i16; 1];
        quantize_f32(&[0.5], 1.0 / 32768.0, 0, &mut o16);
        assert_eq!(o16, [16384]);

        // int8 -> uint8 with the same scale and zp + 128 is a sign flip.
        let p = RequantizeParams::new(0.1, -3, 0.1, 125).unwrap();
        let input: Vec<i8> = (-128..=127).collect();
        let mut out = vec![0u8; 256];
        requantize(&p, &input, &mut out);
        for (x, o) in input.iter().zip(&out) {
            assert_eq!(*o, (*x as u8) ^ 0x80);
        }
        // Halving the scale doubles the values and saturates.
        let p = RequantizeParams::new(0.2, 0, 0.1, 0).unwrap();
        let mut o = [0i8; 4];
        requantize(&p, &[10i8, -10, 100, -100], &mut o);
        assert_eq!(o, [20, -20, 127, -128]);
        // int8 -> int16.
        let p = RequantizeParams::new(0.5, 1, 1.0 / 1024.0, 0).unwrap();
        let mut o = [0i16; 2];
        requantize(&p, &[2i8, -127], &mut o);
        assert_eq!(o, [512, -32768]); // -64 saturates
                                      // Property: within one unit of the real value.
        let mut rng = Lcg(1);
        for _ in 0..200 {
            let (si, zi, so, zo) =
                (rng.float(0.01, 1.0), rng.range(-128, 127), rng.float(0.01, 1.0), rng.range(-128, 127));
            let p = RequantizeParams::new(si, zi, so, zo).unwrap();
            let input = rng.i8s(16);
            let mut out = [0i8; 16];
            requantize(&p, &input, &mut out);
            for (x, o) in input.iter().zip(&out) {
                assert!(off_by(*o as i32, deq(*x as i32, si, zi), so, zo, -128, 127) <= 1.0);
            }
        }
    }

    #[test]
    fn concat_rescales_only_mismatched_inputs() {
        let a = [10u8, 20];
        let b = [100u8, 101];
        let mut out = [0u8; 4];
        // b has scale 0.5 zp 100 vs output 1.0 zp 0: [0, 0.5] -> [0, 1]
        // (0.5 rounds away from zero).
        concat_with_scaling(&[&a, &b], &[&[1, 2], &[1, 2]], &[1.0, 0.5], &[0, 100], 1, 1.0, 0, &mut out);
        assert_eq!(out, [10, 20, 0, 1]);
        let mut out = [0u8; 4];
        concat_with_scaling(&[&a, &b], &[&[2, 1], &[2, 1]], &[2.0, 1.0], &[0, 0], 0, 1.0, 0, &mut out);
        assert_eq!(out, [20, 40, 100, 101]);
        // Saturation.
        concat_with_scaling(&[&a, &b], &[&[2, 1], &[2, 1]], &[30.0, 1.0], &[0, 0], 0, 1.0, 0, &mut out);
        assert_eq!(out, [255, 255, 100, 101]);
    }

    #[test]
    fn resize_bilinear_integer_cases() {
        // 1x2 -> 1x4 without half-pixel centres: x = 0, 0.5, 1, 1.5.
        let input = [0i8, 100];
        let mut out = [0i8; 4];
        resize_bilinear_integer(&input, [1, 1, 2, 1], &mut out, [1, 1, 4, 1], false, false);
        assert_eq!(out, [0, 50, 100, 100]);
        // Half-pixel centres: x = -0.25 (clamped to the first pixel), 0.25,
        // 0.75, 1.25 (clamped).
        resize_bilinear_integer(&input, [1, 1, 2, 1], &mut out, [1, 1, 4, 1], false, true);
        assert_eq!(out, [0, 25, 75, 100]);
        // Negative values round half away from zero: -1 and -2 at 0.5 -> -1.5.
        let mut o = [0i8; 4];
        resize_bilinear_integer(&[-1i8, -2], [1, 1, 2, 1], &mut o, [1, 1, 4, 1], false, false);
        assert_eq!(o, [-1, -2, -2, -2]);
        // align_corners: 2 -> 3 maps to 0, 0.5, 1.
        let mut o = [0i8; 3];
        resize_bilinear_integer(&[-128i8, 127], [1, 1, 2, 1], &mut o, [1, 1, 3, 1], true, false);
        // The midpoint is -0.5, rounded away from zero.
        assert_eq!(o, [-128, -1, 127]);
    }

    #[test]
    fn relu_family() {
        // Same scale, zp 10: RELU clamps at 10, RELU6 at 10 + 60.
        let p = ReluParams::new::<i8>(0.1, 10, 0.1, 10, 0.0, f32::INFINITY).unwrap();
        let mut out = [0i8; 4];
        relu_quantized(&p, &[-128i8, 5, 10, 127], &mut out);
        assert_eq!(out, [10, 10, 10, 127]);
        let p = ReluParams::new::<i8>(0.1, 10, 0.1, 10, 0.0, 6.0).unwrap();
        relu_quantized(&p, &[-128i8, 5, 69, 127], &mut out);
        assert_eq!(out, [10, 10, 69, 70]);
        // Rescaling: input scale 0.2 -> output scale 0.1 doubles.
        let p = ReluParams::new::<i8>(0.2, 0, 0.1, -128, -1.0, 1.0).unwrap();
        relu_quantized(&p, &[-10i8, -3, 3, 10], &mut out);
        // RELU_N1_TO_1 bounds -1/0.1 and 1/0.1 around -128: [-128, -118].
        assert_eq!(out, [-128, -128, -122, -118]);
    }

    #[test]
    fn leaky_relu_and_prelu() {
        let p = LeakyReluParams::new(0.5, 0, 0.25, 0, 0.25).unwrap();
        let mut out = [0i8; 4];
        // x: -2, -1, 1, 100 -> out: 2*x for x >= 0, 0.5*x below.
        leaky_relu_quantized(&p, &[-4i8, -1, 1, 100], &mut out);
        // -0.5 goes through the high-mul alone (shift 0), whose ties go up.
        assert_eq!(out, [-2, 0, 2, 127]);
        let mut rng = Lcg(4);
        for _ in 0..100 {
            let (si, zi, so, zo, alpha) = (
                rng.float(0.01, 0.2),
                rng.range(-128, 127),
                rng.float(0.01, 0.2),
                rng.range(-128, 127),
                rng.float(0.01, 0.5),
            );
            let p = LeakyReluParams::new(si, zi, so, zo, alpha).unwrap();
            let input = rng.i8s(32);
            let mut out = [0i8; 32];
            leaky_relu_quantized(&p, &input, &mut out);
            for (x, o) in input.iter().zip(&out) {
                let r = deq(*x as i32, si, zi);
                let want = if r >= 0.0 { r } else { r * alpha as f64 };
                assert!(off_by(*o as i32, want, so, zo, -128, 127) <= 1.0);
            }
        }
        // PRELU with a per-channel alpha broadcast over [2, 2].
        let p = PreluParams::new(1.0, 0, 0.25, 0, 1.0, 0).unwrap();
        let mut out = [0i8; 4];
        prelu_quantized(&p, &[-8i8, -8, 8, -100], &[2, 2], &[1i8, 2], &[2], &mut out, &[2, 2]);
        assert_eq!(out, [-2, -4, 8, -50]);
    }
}
