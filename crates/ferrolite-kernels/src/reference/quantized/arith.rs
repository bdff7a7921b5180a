//! Quantised ABS, RSQRT (int8) and DIV (int8, uint8, int16), matching
//! TFLite's `kernels/elementwise.cc` and `reference/div.h`.
//!
//! ABS rescales `|q - zp_in|` with one fixed-point multiplier (skipped when
//! the two scales are equal). int8 RSQRT computes an integer inverse square
//! root of `q - zp_in` by Newton-Raphson in Q3.28 (`GetInvSqrtQuantizedMultiplierExp`)
//! and rescales it by `1 / (sqrt(s_in) * s_out)`. DIV takes a fixed-point
//! reciprocal of the divisor, multiplies the dividend with full headroom and
//! rescales by `s1 / (s2 * s_out)`.

use super::QType;
use crate::quant::fixedpoint::{one_over_one_plus_x_for_x_in_0_1, rescale, saturating_rounding_multiply_by_pot};
use crate::quant::{
    multiply_by_quantized_multiplier, multiply_by_quantized_multiplier_greater_than_one,
    multiply_by_quantized_multiplier_smaller_than_one_exp, quantize_multiplier, quantized_activation_range,
    saturating_rounding_doubling_high_mul, FusedActivation,
};

fn valid(s: f32) -> bool {
    s.is_finite() && s > 0.0
}

/// Quantised ABS parameters (int8, or int16 with zero points of 0).
#[derive(Clone, Copy, Debug)]
pub struct AbsParams {
    input_offset: i32,
    output_offset: i32,
    /// `None` when the input and output scales are equal.
    rescale: Option<(i32, i32)>,
}

impl AbsParams {
    pub fn new(input_scale: f32, input_zp: i32, output_scale: f32, output_zp: i32) -> Option<Self> {
        if !valid(input_scale) || !valid(output_scale) {
            return None;
        }
        // The ratio is taken in single precision, as TFLite does.
        let rescale = if input_scale != output_scale {
            Some(quantize_multiplier((input_scale / output_scale) as f64))
        } else {
            None
        };
        Some(AbsParams { input_offset: input_zp, output_offset: output_zp, rescale })
    }

    #[inline]
    pub fn apply<T: QType>(&self, x: T) -> T {
        let v = (x.to_i32() - self.input_offset).wrapping_abs();
        let out = match self.rescale {
            None => v + self.output_offset,
            Some((m, s)) => multiply_by_quantized_multiplier(v, m, s).wrapping_add(self.output_offset),
        };
        T::from_i32(out.clamp(T::MIN, T::MAX))
    }
}

pub fn abs_quantized<T: QType>(p: &AbsParams, x: &[T], y: &mut [T]) {
    for (o, &v) in y.iter_mut().zip(x) {
        *o = p.apply(v);
    }
}

/// TFLite's `CountLeadingSignBits` for `i32` (31 for 0).
#[inline]
pub fn count_leading_sign_bits(x: i32) -> i32 {
    ((x ^ (x >> 31)).leading_zeros() as i32) - 1
}

/// TFLite's `GetInvSqrtQuantizedMultiplierExp(input, reverse_shift)`:
/// `1/sqrt(input)` as a Q0.31 multiplier and a shift, the shift multiplied
/// by `reverse_shift` (TFLite passes -1 to get a left shift).
pub fn inv_sqrt_quantized_multiplier_exp(input: i32, reverse_shift: i32) -> (i32, i32) {
    if input <= 1 {
        return (i32::MAX, 0);
    }
    let mut input = input;
    let mut shift = 11i32;
    while input >= (1 << 29) {
        input /= 4;
        shift += 1;
    }
    let max_left_shift_bits = (input as u32).leading_zeros() as i32 - 1;
    let left_shift_bit_pairs = max_left_shift_bits / 2 - 1;
    shift -= left_shift_bit_pairs;
    input <<= 2 * left_shift_bit_pairs;
    // Q3.28 Newton-Raphson from x = 1, five steps.
    let mul = saturating_rounding_doubling_high_mul;
    let half_input = saturating_rounding_multiply_by_pot(input >> 1, -1);
    let one_and_half = (1 << 28) + (1 << 27);
    let mut x = 1i32 << 28;
    for _ in 0..5 {
        // x^3 is Q9; rescale to Q3.
        let x3 = rescale(mul(mul(x, x), x), 9, 3);
        // Both products are Q6; their difference goes back to Q3.
        let d = mul(one_and_half, x).wrapping_sub(mul(half_input, x3));
        x = rescale(d, 6, 3);
    }
    // Times sqrt(2)/2 in Q0.31.
    let mut raw = mul(x, 1518500250);
    if shift < 0 {
        raw = raw.wrapping_shl((-shift) as u32);
        shift = 0;
    }
    (raw, shift * reverse_shift)
}

/// int8 RSQRT parameters.
#[derive(Clone, Copy, Debug)]
pub struct RsqrtParams {
    input_offset: i32,
    output_offset: i32,
    multiplier: i32,
    shift: i32,
}

impl RsqrtParams {
    pub fn new(input_scale: f32, input_zp: i32, output_scale: f32, output_zp: i32) -> Option<Self> {
        if !valid(input_scale) || !valid(output_scale) {
            return None;
        }
        // sqrt and product in single precision, the division in double.
        let denom = input_scale.sqrt() * output_scale;
        let (multiplier, shift) = quantize_multiplier(1.0 / denom as f64);
        Some(RsqrtParams { input_offset: input_zp, output_offset: output_zp, multiplier, shift })
    }

    /// `None` for an input below the zero point (a negative real value),
    /// which TFLite rejects at eval.
    #[inline]
    pub fn apply(&self, x: i8) -> Option<i8> {
        const SHIFT: i32 = 20;
        let v = x as i32 - self.input_offset;
        if v < 0 {
            return None;
        }
        if v == 0 {
            return Some(i8::MAX);
        }
        let (m, s) = inv_sqrt_quantized_multiplier_exp(v, -1);
        let data = multiply_by_quantized_multiplier(1, m, (s + SHIFT).clamp(-31, 31));
        let out = multiply_by_quantized_multiplier(data, self.multiplier, (self.shift - SHIFT).max(-31))
            .wrapping_add(self.output_offset);
        Some(out.clamp(i8::MIN as i32, i8::MAX as i32) as i8)
    }
}

/// int8 RSQRT over a slice; `Err(index)` at the first negative input.
pub fn rsqrt_i8(p: &RsqrtParams, x: &[i8], y: &mut [i8]) -> Result<(), usize> {
    for (i, (o, &v)) in y.iter_mut().zip(x).enumerate() {
        *o = p.apply(v).ok_or(i)?;
    }
    Ok(())
}

/// Quantised DIV parameters.
#[derive(Clone, Copy, Debug)]
pub struct DivParams {
    pub input1_offset: i32,
    pub input2_offset: i32,
    pub output_offset: i32,
    pub output_multiplier: i32,
    pub output_shift: i32,
    pub act_min: i32,
    pub act_max: i32,
}

impl DivParams {
    #[allow(clippy::too_many_arguments)]
    pub fn new<T: QType>(
        s1: f32,
        z1: i32,
        s2: f32,
        z2: i32,
        so: f32,
        zo: i32,
        activation: FusedActivation,
    ) -> Option<Self> {
        if !valid(s1) || !valid(s2) || !valid(so) {
            return None;
        }
        let (act_min, act_max) = quantized_activation_range(activation, so, zo, T::MIN, T::MAX);
        // Single-precision expression, widened at the end.
        let real = s1 / (s2 * so);
        if !real.is_finite() || real <= 0.0 {
            return None;
        }
        let (output_multiplier, output_shift) = quantize_multiplier(real as f64);
        Some(DivParams {
            input1_offset: -z1,
            input2_offset: -z2,
            output_offset: zo,
            output_multiplier,
            output_shift,
            act_min,
            act_max,
        })
    }

    /// `None` when the divisor is the zero point (TFLite fails the op).
    #[inline]
    pub fn apply<T: QType>(&self, a: T, b: T) -> Option<T> {
        let mut n = self.input1_offset + a.to_i32();
        let mut d = self.input2_offset + b.to_i32();
        if d == 0 {
            return None;
        }
        if d < 0 {
            n = -n;
            d = -d;
        }
        let (inv, recip_shift) = reciprocal(d, 31);
        let headroom = count_leading_sign_bits(n);
        let q = multiply_by_quantized_multiplier_greater_than_one(n, inv, headroom);
        let total_shift = self.output_shift - recip_shift - headroom;
        // TFLite's shift is in range for any sane scales; clamp so extreme
        // ones stay defined instead of shifting by 32 or more.
        let r = self.output_offset.wrapping_add(if total_shift <= 0 {
            multiply_by_quantized_multiplier_smaller_than_one_exp(q, self.output_multiplier, total_shift.max(-31))
        } else {
            multiply_by_quantized_multiplier(q, self.output_multiplier, total_shift.min(31))
        });
        Some(T::from_i32(r.clamp(self.act_min, self.act_max)))
    }
}

/// TFLite's `GetReciprocal` for a positive `x`.
fn reciprocal(x: i32, x_integer_digits: i32) -> (i32, i32) {
    let headroom_plus_one = (x as u32).leading_zeros();
    let bits_over_unit = x_integer_digits - headroom_plus_one as i32;
    let shifted = ((x as u32).checked_shl(headroom_plus_one).unwrap_or(0)).wrapping_sub(1 << 31) as i32;
    (one_over_one_plus_x_for_x_in_0_1(shifted), bits_over_unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inv_sqrt_is_close() {
        for v in [2, 3, 4, 10, 100, 255, 1000, 1 << 20, (1 << 29) + 7] {
            let (m, s) = inv_sqrt_quantized_multiplier_exp(v, -1);
            let got = m as f64 / 2f64.powi(31) * 2f64.powi(s);
            let want = 1.0 / (v as f64).sqrt();
            assert!((got - want).abs() / want < 1e-5, "{v}: {got} vs {want}");
        }
    }

    #[test]
    fn div_is_close() {
        let p = DivParams::new::<i8>(0.1, 0, 0.1, 0, 0.05, 0, FusedActivation::None).unwrap();
        assert_eq!(p.apply::<i8>(10, 5), Some(40));
        assert_eq!(p.apply::<i8>(-10, 5), Some(-40));
        assert_eq!(p.apply::<i8>(10, 0), None);
    }

    #[test]
    fn count_leading_sign_bits_matches_clrsb() {
        assert_eq!(count_leading_sign_bits(0), 31);
        assert_eq!(count_leading_sign_bits(-1), 31);
        assert_eq!(count_leading_sign_bits(1), 30);
        assert_eq!(count_leading_sign_bits(i32::MIN), 0);
        assert_eq!(count_leading_sign_bits(i32::MAX), 0);
    }
}
