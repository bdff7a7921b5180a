//! Affine (scale, zero point) conversions between real and quantised values,
//! and fused-activation ranges in the quantised domain.

/// TFLite's reference QUANTIZE for one value: `round(x / scale)` in `f32`
/// (C's `round`: half away from zero), plus the zero point, clamped to
/// `[min, max]`. TFLite does the add and the clamp in `f64`, so huge inputs
/// simply clamp. NaN is undefined behaviour in TFLite; here it comes out as 0
/// (Rust's float-to-int cast), whatever the zero point.
#[inline]
fn affine_quantize(x: f32, scale: f32, zero_point: i32, min: i32, max: i32) -> i32 {
    let unclamped = (x / scale).round() as f64 + zero_point as f64;
    unclamped.clamp(min as f64, max as f64) as i32
}

/// Quantises `x` to int8 as TFLite's reference QUANTIZE does.
#[inline]
pub fn quantize_f32_to_i8(x: f32, scale: f32, zero_point: i32) -> i8 {
    affine_quantize(x, scale, zero_point, i8::MIN as i32, i8::MAX as i32) as i8
}

/// Quantises `x` to uint8 as TFLite's reference QUANTIZE does.
#[inline]
pub fn quantize_f32_to_u8(x: f32, scale: f32, zero_point: i32) -> u8 {
    affine_quantize(x, scale, zero_point, u8::MIN as i32, u8::MAX as i32) as u8
}

/// Quantises `x` to int16 as TFLite's reference QUANTIZE does.
#[inline]
pub fn quantize_f32_to_i16(x: f32, scale: f32, zero_point: i32) -> i16 {
    affine_quantize(x, scale, zero_point, i16::MIN as i32, i16::MAX as i32) as i16
}

/// TFLite's reference DEQUANTIZE for one value: `scale * (q - zero_point)`
/// with the scale widened to `f64`, then narrowed to `f32`. (For 8/16-bit
/// inputs this equals the single-rounded `f32` product, but we keep TFLite's
/// form.)
#[inline]
pub fn dequantize(q: i32, scale: f32, zero_point: i32) -> f32 {
    (scale as f64 * (q - zero_point) as f64) as f32
}

/// A fused activation as stored in the model (TFLite's
/// `TfLiteFusedActivation` subset that quantised kernels accept).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FusedActivation {
    None,
    Relu,
    Relu6,
    ReluN1To1,
}

/// TFLite's `CalculateActivationRangeQuantized`: the clamp bounds of a fused
/// activation on an output with `scale`/`zero_point`, intersected with the
/// type's `[qmin, qmax]`.
///
/// Bounds are quantised as `zero_point + (int)round(bound / scale)` with the
/// division and the rounding in `f32`. A RELU upper bound is the type's max
/// (no quantisation of +inf).
pub fn quantized_activation_range(
    activation: FusedActivation,
    scale: f32,
    zero_point: i32,
    qmin: i32,
    qmax: i32,
) -> (i32, i32) {
    let quantize = |f: f32| zero_point.saturating_add((f / scale).round() as i32);
    match activation {
        FusedActivation::None => (qmin, qmax),
        FusedActivation::Relu => (qmin.max(quantize(0.0)), qmax),
        FusedActivation::Relu6 => (qmin.max(quantize(0.0)), qmax.min(quantize(6.0))),
        FusedActivation::ReluN1To1 => (qmin.max(quantize(-1.0)), qmax.min(quantize(1.0))),
    }
}

/// [`quantized_activation_range`] as the [`ClampI32`](crate::activation::ClampI32)
/// that kernels take.
pub fn quantized_activation_clamp(
    activation: FusedActivation,
    scale: f32,
    zero_point: i32,
    qmin: i32,
    qmax: i32,
) -> crate::activation::ClampI32 {
    let (min, max) = quantized_activation_range(activation, scale, zero_point, qmin, qmax);
    crate::activation::ClampI32 { min, max }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantize_rounds_half_away_and_clamps() {
        assert_eq!(quantize_f32_to_i8(0.25, 0.5, 0), 1); // 0.5 -> 1
        assert_eq!(quantize_f32_to_i8(-0.25, 0.5, 0), -1); // -0.5 -> -1
        assert_eq!(quantize_f32_to_i8(0.74, 0.5, 0), 1);
        assert_eq!(quantize_f32_to_i8(1.0, 0.5, -128), -126);
        assert_eq!(quantize_f32_to_i8(1000.0, 0.5, 0), 127);
        assert_eq!(quantize_f32_to_i8(-1000.0, 0.5, 0), -128);
        assert_eq!(quantize_f32_to_i8(f32::INFINITY, 0.5, 0), 127);
        assert_eq!(quantize_f32_to_i8(3e38, 1e-30, 0), 127);
        assert_eq!(quantize_f32_to_u8(0.25, 0.5, 128), 129);
        assert_eq!(quantize_f32_to_u8(-100.0, 0.5, 128), 0);
        assert_eq!(quantize_f32_to_u8(100.0, 0.5, 128), 255);
        assert_eq!(quantize_f32_to_i16(1.5, 1.0 / 32768.0, 0), 32767);
        assert_eq!(quantize_f32_to_i16(-0.5, 1.0 / 32768.0, 0), -16384);
        // The division is in f32: 0.3/0.1 is 2.9999998 in f32 -> 3.
        assert_eq!(quantize_f32_to_i8(0.3, 0.1, 0), 3);
    }

    #[test]
    fn dequantize_values() {
        assert_eq!(dequantize(-128, 0.5, -128), 0.0);
        assert_eq!(dequantize(0, 0.5, -128), 64.0);
        assert_eq!(dequantize(3, 0.1, 0), (0.1f32 as f64 * 3.0) as f32);
        assert_eq!(dequantize(200, 0.02, 128), (0.02f32 as f64 * 72.0) as f32);
    }

    #[test]
    fn activation_ranges() {
        use FusedActivation::*;
        assert_eq!(quantized_activation_range(None, 0.1, 5, -128, 127), (-128, 127));
        assert_eq!(quantized_activation_range(Relu, 0.1, 5, -128, 127), (5, 127));
        // 6 / 0.1 = 60 (f32 gives 59.999996 -> 60) + 5.
        assert_eq!(quantized_activation_range(Relu6, 0.1, 5, -128, 127), (5, 65));
        assert_eq!(quantized_activation_range(ReluN1To1, 0.1, 5, -128, 127), (-5, 15));
        // Bounds outside the type are cut to it.
        assert_eq!(quantized_activation_range(Relu6, 0.01, 0, -128, 127), (0, 127));
        assert_eq!(quantized_activation_range(ReluN1To1, 0.001, 0, -128, 127), (-128, 127));
        assert_eq!(quantized_activation_range(Relu, 0.1, -200, -128, 127), (-128, 127));
        // uint8 with zp 128.
        assert_eq!(quantized_activation_range(Relu6, 6.0 / 255.0, 0, 0, 255), (0, 255));
        assert_eq!(quantized_activation_range(ReluN1To1, 1.0 / 64.0, 128, 0, 255), (64, 192));
        let c = quantized_activation_clamp(Relu6, 0.1, 5, -128, 127);
        assert_eq!((c.min, c.max), (5, 65));
    }
}
