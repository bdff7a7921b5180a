//! Quantised HARD_SWISH (`x * relu6(x + 3) / 6`) as TFLite's reference kernel
//! computes it for int8 and uint8.
//!
//! Unlike LOGISTIC/TANH, TFLite does not use a table here: it works in
//! 16-bit fixed point. The input (minus its zero point) is moved to a
//! "hi-res" scale 128x finer; from there one multiplier takes it to the
//! output scale and another to a "relu-ish" scale where 3.0 maps to 32768,
//! which after saturation and an affine shift gives `relu6(x + 3) / 6` in
//! `[0, 1]`. The product of the two, truncated (not rounded, on purpose:
//! it cancels the bias of the rounding multiplies), shifted and offset is the
//! output.

use super::multiplier::{
    downscale_multiplier_to_i16, quantize_multiplier, rounding_divide_by_pot_i16, saturating_doubling_high_mul_i16,
    saturating_rounding_doubling_high_mul_i16,
};

/// TFLite's `HardSwishParams`, as HARD_SWISH's prepare fills it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HardSwishParams {
    pub input_zero_point: i32,
    pub output_zero_point: i32,
    /// Q0.15 multiplier from the hi-res input scale to the relu-ish scale.
    pub reluish_multiplier_fixedpoint_i16: i16,
    /// Power of two applied with it (either sign).
    pub reluish_multiplier_exponent: i32,
    /// Q0.15 multiplier from the hi-res input scale to the output scale.
    pub output_multiplier_fixedpoint_i16: i16,
    /// Power of two applied with it; always `<= 0`.
    pub output_multiplier_exponent: i32,
}

/// HARD_SWISH prepare for int8/uint8. All scale arithmetic is in `f32`, as
/// in TFLite (the ratios are formed in float and only then widened for
/// [`quantize_multiplier`]). Returns `None` where TFLite's prepare fails:
/// when the output multiplier would need a left shift (output scale finer
/// than 1/128 of the input scale).
pub fn hard_swish_params(
    input_scale: f32,
    input_zero_point: i32,
    output_scale: f32,
    output_zero_point: i32,
) -> Option<HardSwishParams> {
    let hires_input_scale = (1.0f32 / 128.0f32) * input_scale;
    let reluish_scale = 3.0f32 / 32768.0f32;

    let output_multiplier = hires_input_scale / output_scale;
    let (output_fixed, output_multiplier_exponent) = quantize_multiplier(output_multiplier as f64);
    if output_multiplier_exponent > 0 {
        return None;
    }
    let reluish_multiplier = hires_input_scale / reluish_scale;
    let (reluish_fixed, reluish_multiplier_exponent) = quantize_multiplier(reluish_multiplier as f64);

    Some(HardSwishParams {
        input_zero_point,
        output_zero_point,
        reluish_multiplier_fixedpoint_i16: downscale_multiplier_to_i16(reluish_fixed),
        reluish_multiplier_exponent,
        output_multiplier_fixedpoint_i16: downscale_multiplier_to_i16(output_fixed),
        output_multiplier_exponent,
    })
}

/// TFLite's 16-bit `SaturatingLeftShift`: `value * 2^amount`, clamped to
/// `i16`. (The C++ forms `1 << amount` in `int`, so amounts past 30 are
/// undefined there; any nonzero value saturates long before that, which is
/// what we return.)
#[inline]
fn saturating_left_shift_i16(value: i16, amount: i32) -> i16 {
    let wide = (value as i64) << amount.clamp(0, 40);
    wide.clamp(i16::MIN as i64, i16::MAX as i64) as i16
}

/// Core of the reference kernel on one value; returns the output before it
/// is narrowed to the output type (already clamped to `[qmin, qmax]`).
#[inline]
fn hard_swish_core(input: i32, params: &HardSwishParams, qmin: i32, qmax: i32) -> i32 {
    // int16 arithmetic throughout, wrapping where the C++ narrows.
    let input_value = (input - params.input_zero_point) as i16;
    let input_value_on_hires_input_scale = input_value.wrapping_mul(1 << 7);
    let input_value_on_preshift_output_scale = saturating_rounding_doubling_high_mul_i16(
        input_value_on_hires_input_scale,
        params.output_multiplier_fixedpoint_i16,
    );

    // Rescale to the relu-ish scale (3.0 -> 32768), saturating. Left shifts
    // are split so that saturation only ever happens in the final one-bit
    // shift, after the multiply, and so cannot distort the result.
    let mut reluish_value = input_value_on_hires_input_scale;
    if params.reluish_multiplier_exponent > 0 {
        reluish_value = saturating_left_shift_i16(reluish_value, params.reluish_multiplier_exponent - 1);
    }
    reluish_value = saturating_rounding_doubling_high_mul_i16(reluish_value, params.reluish_multiplier_fixedpoint_i16);
    if params.reluish_multiplier_exponent > 0 {
        reluish_value = saturating_left_shift_i16(reluish_value, 1);
    }
    if params.reluish_multiplier_exponent < 0 {
        reluish_value = rounding_divide_by_pot_i16(reluish_value, -params.reluish_multiplier_exponent);
    }
    // [-1, 1] -> [0, 1] (computed in int, fits i16).
    let reluish_value = ((reluish_value as i32 + (1 << 15)) >> 1) as i16;

    let preshift_output_value = saturating_doubling_high_mul_i16(reluish_value, input_value_on_preshift_output_scale);
    let output_value = rounding_divide_by_pot_i16(preshift_output_value, -params.output_multiplier_exponent)
        // `int16 += int` narrows back to int16 in the C++.
        .wrapping_add(params.output_zero_point as i16);
    (output_value as i32).clamp(qmin, qmax)
}

/// Reference int8 HARD_SWISH of one value.
#[inline]
pub fn hard_swish_i8(input: i8, params: &HardSwishParams) -> i8 {
    hard_swish_core(input as i32, params, -128, 127) as i8
}

/// Reference uint8 HARD_SWISH of one value.
#[inline]
pub fn hard_swish_u8(input: u8, params: &HardSwishParams) -> u8 {
    hard_swish_core(input as i32, params, 0, 255) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn float_hard_swish(x: f64) -> f64 {
        x * (x + 3.0).clamp(0.0, 6.0) / 6.0
    }

    #[test]
    fn params_hand_worked() {
        // input scale 0.05, output scale 0.04:
        // hires = 0.05/128 = 3.90625e-4; output mult = 3.90625e-4/0.04
        // = 0.009765625 = 2^-10 * 0.625 ... = 0.625 * 2^-6
        //   -> Q0.31 1342177280, exponent -6 -> Q0.15 20480.
        // reluish mult = 3.90625e-4 / (3/32768) = 4.2666... = 0.5333 * 2^3.
        let p = hard_swish_params(0.05, 0, 0.04, 0).unwrap();
        assert_eq!(p.output_multiplier_exponent, -6);
        assert_eq!(p.output_multiplier_fixedpoint_i16, 20480);
        assert_eq!(p.reluish_multiplier_exponent, 3);
        let r = (0.05f32 / 128.0) / (3.0f32 / 32768.0);
        let (m, _) = quantize_multiplier(r as f64);
        assert_eq!(p.reluish_multiplier_fixedpoint_i16, downscale_multiplier_to_i16(m));
        // Output much finer than input/128 needs a left shift: rejected.
        assert_eq!(hard_swish_params(1.0, 0, 0.001, 0), None);
    }

    #[test]
    fn hand_worked_points() {
        let p = hard_swish_params(0.05, 0, 0.04, 0).unwrap();
        // Zero in -> exactly the output zero point.
        assert_eq!(hard_swish_i8(0, &p), 0);
        // x = 0.05 * 100 = 5.0 (>= 3): hard_swish = 5.0 -> 125.
        // hires = 12800; preshift = SRDHM16(12800, 20480) = 8000;
        // reluish saturates to 32767 -> (32767 + 32768) >> 1 = 32767;
        // SDHM16(32767, 8000) = 7999; RDBPOT(7999, 6) = 124.98 -> 125.
        assert_eq!(hard_swish_i8(100, &p), 125);
        // x = -5.0 (<= -3): 0.
        assert_eq!(hard_swish_i8(-100, &p), 0);
        // x = 1.0: 1 * 4 / 6 = 0.6667 -> /0.04 = 16.67 -> 17 (+-1).
        let y = hard_swish_i8(20, &p);
        assert!((y as i32 - 17).abs() <= 1, "{y}");
    }

    #[test]
    fn tracks_float_over_all_inputs() {
        for (in_s, in_zp, out_s, out_zp) in [(0.05f32, 0, 0.04f32, 0), (0.1, -20, 0.06, -100), (0.023, 10, 0.02, -50)] {
            let p = hard_swish_params(in_s, in_zp, out_s, out_zp).unwrap();
            for q in -128..=127i32 {
                let x = in_s as f64 * (q - in_zp) as f64;
                let want = ((float_hard_swish(x) / out_s as f64).round() + out_zp as f64).clamp(-128.0, 127.0);
                let got = hard_swish_i8(q as i8, &p) as f64;
                assert!((got - want).abs() <= 1.0, "q={q} x={x}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn uint8_variant() {
        let p = hard_swish_params(0.05, 128, 0.04, 10).unwrap();
        assert_eq!(hard_swish_u8(128, &p), 10);
        assert_eq!(hard_swish_u8(0, &p), 10); // x = -6.4 -> 0
        assert_eq!(hard_swish_u8(228, &p), 135); // x = 5 -> 125 + 10
    }
}
