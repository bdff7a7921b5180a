//! Real multipliers as (fixed-point significand, power-of-two exponent) pairs,
//! and the integer products that apply them.
//!
//! TFLite never multiplies a quantised accumulator by a float at run time.
//! At prepare time it turns each real rescaling factor into a Q0.31
//! significand in `[0.5, 1)` and a power-of-two exponent; at eval time it
//! applies them with a rounding high-multiply and a rounding shift. To give
//! the same bytes we must reproduce both halves exactly, including where they
//! round, saturate and flush.

/// `frexp` for `f64`: splits `x` into `(m, e)` with `x == m * 2^e` and
/// `0.5 <= |m| < 1`.
///
/// Rust's std has no frexp, and [`quantize_multiplier`] needs the exact same
/// split as C's, so it is done here on the bit pattern. Like C's frexp,
/// zero returns `(x, 0)` (keeping the sign of zero), infinities and NaN come
/// back unchanged with exponent 0, and subnormals are normalised first so
/// their fraction is still in `[0.5, 1)`.
pub fn frexp(x: f64) -> (f64, i32) {
    const EXP_MASK: u64 = 0x7ff << 52;
    if x == 0.0 || !x.is_finite() {
        return (x, 0);
    }
    let bits = x.to_bits();
    let biased = ((bits & EXP_MASK) >> 52) as i32;
    if biased == 0 {
        // Subnormal: scale into the normal range (exact: a power of two),
        // split, then take the scaling back out of the exponent.
        let (m, e) = frexp(x * f64::from_bits((1023 + 64) << 52));
        return (m, e - 64);
    }
    // Keep sign and fraction, force the exponent field to that of 0.5.
    let m = f64::from_bits((bits & !EXP_MASK) | (1022 << 52));
    (m, biased - 1022)
}

/// TFLite's `QuantizeMultiplier`: `real ≈ multiplier * 2^(shift - 31)`.
///
/// Returns `(multiplier, shift)`, where `multiplier` is a Q0.31 value with
/// magnitude in `[2^30, 2^31)` (or 0) and `shift` is the power of two to apply
/// on top (positive: left shift). This is the float (non-`TFLITE_EMULATE_FLOAT`),
/// double-rounding build of TFLite, which is what its standard builds use:
///
/// - the fraction from `frexp` is scaled by 2^31 and rounded half away from
///   zero (`std::round`, i.e. [`f64::round`]);
/// - if that rounding carried up to exactly 2^31 (reals just below a power of
///   two) the significand is halved and the exponent bumped, so it still
///   fits in an `i32`;
/// - exponents below -31 (|real| below about 2^-32) would shift every bit
///   out, so TFLite flushes them to `(0, 0)`, as do we;
/// - zero gives `(0, 0)`.
///
/// Negative reals produce negative significands, as in TFLite (no kernel we
/// know of relies on it). Non-finite input is outside TFLite's domain
/// (undefined behaviour there); we return `(0, 0)` so that nothing panics, and
/// the runtime should reject such scales when it loads a model.
pub fn quantize_multiplier(real: f64) -> (i32, i32) {
    if real == 0.0 || !real.is_finite() {
        return (0, 0);
    }
    let (q, mut shift) = frexp(real);
    // q * 2^31 is exact (power-of-two scaling), so only the round rounds.
    let mut q_fixed = (q * (1i64 << 31) as f64).round() as i64;
    debug_assert!(q_fixed.abs() <= 1i64 << 31);
    if q_fixed == 1i64 << 31 {
        q_fixed /= 2;
        shift += 1;
    }
    if shift < -31 {
        return (0, 0);
    }
    (q_fixed as i32, shift)
}

/// TFLite's `QuantizeMultiplierSmallerThanOneExp`: [`quantize_multiplier`]
/// for `0 < real < 1`, returning `(multiplier, left_shift)` with
/// `left_shift <= 0`.
///
/// TFLite aborts when the preconditions fail; we return `None` so the caller
/// can turn it into a model error instead.
pub fn quantize_multiplier_smaller_than_one_exp(real: f64) -> Option<(i32, i32)> {
    if !(real > 0.0 && real < 1.0) {
        return None;
    }
    let (m, shift) = quantize_multiplier(real);
    // A real just below 1 can round up to 2^31 and come back with shift 1;
    // TFLite's CHECK rejects that too.
    (shift <= 0).then_some((m, shift))
}

/// TFLite's `QuantizeMultiplierGreaterThanOne`: [`quantize_multiplier`] for
/// `real > 1`, returning `(multiplier, left_shift)` with `left_shift >= 0`.
/// `None` where TFLite's checks would abort.
#[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(x > 1)` also refuses NaN
pub fn quantize_multiplier_greater_than_one(real: f64) -> Option<(i32, i32)> {
    if !(real > 1.0) || !real.is_finite() {
        return None;
    }
    let (m, shift) = quantize_multiplier(real);
    (shift >= 0).then_some((m, shift))
}

/// Effective output multiplier of a per-channel quantised conv / depthwise
/// conv / fully-connected channel, as `PopulateConvolutionQuantizationParams`
/// computes it: every scale is widened to `f64` *before* multiplying, i.e.
/// `(f64)input_scale * (f64)filter_scale / (f64)output_scale`.
///
/// TFLite's int8/int16 CONV_2D and DEPTHWISE_CONV_2D always take this path,
/// even with a single per-tensor filter scale.
pub fn per_channel_multiplier(input_scale: f32, filter_scale: f32, output_scale: f32) -> f64 {
    input_scale as f64 * filter_scale as f64 / output_scale as f64
}

/// The per-tensor multiplier of `GetQuantizedConvolutionMultipler`, used by
/// FULLY_CONNECTED with a per-tensor filter scale and by the legacy uint8
/// conv: there the product `input_scale * filter_scale` is formed in `f32`
/// (both operands are floats in C++) and only then widened, and the division
/// by the output scale is done in `f64`. The single float rounding can change
/// the last bit of the multiplier, hence a separate helper.
pub fn per_tensor_conv_multiplier(input_scale: f32, filter_scale: f32, output_scale: f32) -> f64 {
    let input_product_scale = (input_scale * filter_scale) as f64;
    input_product_scale / output_scale as f64
}

/// gemmlowp's `SaturatingRoundingDoublingHighMul` (ARM `VQRDMULH`): the high
/// 32 bits of `2*a*b`, rounded to nearest with ties toward +infinity
/// (so 2.5 -> 3 but -2.5 -> -2; note this differs from
/// [`rounding_divide_by_pot`], whose ties go away from zero).
///
/// This is a Q0.31 × Q0.31 → Q0.31 multiply. The only product that does not
/// fit is `i32::MIN * i32::MIN` (= +1.0), which saturates to `i32::MAX`.
#[inline]
pub fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    let ab = a as i64 * b as i64;
    let nudge: i64 = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
    // Division truncates toward zero in both C++ and Rust. With the
    // sign-dependent nudge that works out as floor(ab/2^31 + 1/2): round
    // half up. Keep the exact form; it is what every TFLite build computes.
    ((ab + nudge) / (1i64 << 31)) as i32
}

/// gemmlowp's `RoundingDivideByPOT`: `x / 2^exponent` rounded to nearest,
/// ties away from zero (so `-3 >> 1` gives -2, `3 >> 1` gives 2, `-5 >> 2`
/// gives -1).
///
/// `exponent` must be in `0..=31`, as gemmlowp asserts.
#[inline]
pub fn rounding_divide_by_pot(x: i32, exponent: i32) -> i32 {
    debug_assert!((0..=31).contains(&exponent), "exponent {exponent} out of range");
    let mask = ((1i64 << exponent) - 1) as i32;
    let remainder = x & mask;
    // Ties round away from zero: for negatives the threshold is one higher,
    // so an exact half stays at the (more negative) floor.
    let threshold = (mask >> 1) + i32::from(x < 0);
    (x >> exponent) + i32::from(remainder > threshold)
}

/// TFLite's standard `MultiplyByQuantizedMultiplier(int32 x, ...)`
/// (double-rounding build, the default): `x * multiplier * 2^(shift-31)`.
///
/// A positive `shift` is applied as a plain left shift *before* the high-mul
/// (wrapping on overflow, as TFLite's unsanitised C++ does in practice); a
/// negative one as a rounding right shift after it. Rounding twice (once in
/// the high-mul, once in the shift) is part of TFLite's semantics, so this
/// is not the same as `round(x * real)` in the rare tie cases.
#[inline]
pub fn multiply_by_quantized_multiplier(x: i32, multiplier: i32, shift: i32) -> i32 {
    let left_shift = shift.max(0);
    let right_shift = (-shift).max(0);
    rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(x.wrapping_shl(left_shift as u32), multiplier),
        right_shift,
    )
}

/// TFLite's `MultiplyByQuantizedMultiplier(int64 x, ...)`, used where the
/// accumulator is 64-bit (int16x8 conv, depthwise conv, fully-connected and
/// transpose conv).
///
/// It does *not* use the high-mul: the multiplier is first reduced to 16
/// bits (rounded, and capped at `0x7FFF` so the rounding cannot overflow into
/// bit 15), then `x * reduced` gets a single round-half-up shift by
/// `15 - shift`. TFLite assumes `multiplier >= 0`, `-31 <= shift < 8` and
/// `|x| < 2^47`; within that nothing overflows. Outside it we wrap like the
/// C++ does rather than panic.
#[inline]
pub fn multiply_by_quantized_multiplier_i64(x: i64, multiplier: i32, shift: i32) -> i32 {
    debug_assert!(multiplier >= 0);
    debug_assert!((-31..8).contains(&shift), "shift {shift} out of range");
    let reduced_multiplier: i64 =
        if multiplier < 0x7FFF_0000 { ((multiplier + (1 << 15)) >> 16) as i64 } else { 0x7FFF };
    let total_shift = (15 - shift) as u32;
    let round = 1i64 << (total_shift - 1);
    let result = x.wrapping_mul(reduced_multiplier).wrapping_add(round) >> total_shift;
    result as i32
}

/// TFLite's `MultiplyByQuantizedMultiplierSmallerThanOneExp`: high-mul, then
/// a rounding right shift by `-left_shift` (`left_shift <= 0`).
#[inline]
pub fn multiply_by_quantized_multiplier_smaller_than_one_exp(x: i32, multiplier: i32, left_shift: i32) -> i32 {
    rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, multiplier), -left_shift)
}

/// TFLite's `MultiplyByQuantizedMultiplierGreaterThanOne`: exact (wrapping)
/// left shift by `left_shift >= 0`, then the high-mul. Used by softmax to
/// rescale input differences into Q5.26.
#[inline]
pub fn multiply_by_quantized_multiplier_greater_than_one(x: i32, multiplier: i32, left_shift: i32) -> i32 {
    saturating_rounding_doubling_high_mul(x.wrapping_shl(left_shift as u32), multiplier)
}

/// gemmlowp's 16-bit `SaturatingRoundingDoublingHighMul` (`VQRDMULH.S16`),
/// used by the quantised HARD_SWISH.
#[inline]
pub fn saturating_rounding_doubling_high_mul_i16(a: i16, b: i16) -> i16 {
    if a == i16::MIN && b == i16::MIN {
        return i16::MAX;
    }
    let ab = a as i32 * b as i32;
    let nudge: i32 = if ab >= 0 { 1 << 14 } else { 1 - (1 << 14) };
    ((ab + nudge) / (1 << 15)) as i16
}

/// TFLite's 16-bit `SaturatingDoublingHighMul` (`SQDMULH`): like the rounding
/// version but truncating toward zero. HARD_SWISH uses it on purpose so its
/// bias cancels the rounding bias of the earlier multiplies.
#[inline]
pub fn saturating_doubling_high_mul_i16(a: i16, b: i16) -> i16 {
    if a == i16::MIN && b == i16::MIN {
        return i16::MAX;
    }
    ((a as i32 * b as i32) / (1 << 15)) as i16
}

/// gemmlowp's `RoundingDivideByPOT` instantiated on `int16_t`.
///
/// For `exponent <= 15` this equals the 32-bit version. For larger exponents
/// (reachable in HARD_SWISH only with absurd scale ratios) the C++ truncates
/// its mask to 16 bits, which changes the result; we reproduce that rather
/// than "fix" it, because bit-exactness is the contract.
#[inline]
pub fn rounding_divide_by_pot_i16(x: i16, exponent: i32) -> i16 {
    debug_assert!((0..=31).contains(&exponent));
    let mask = ((1i64 << exponent) - 1) as i16;
    let remainder = x & mask;
    let threshold = (mask >> 1).wrapping_add(i16::from(x < 0));
    let shifted = ((x as i32) >> exponent) as i16;
    shifted.wrapping_add(i16::from(remainder > threshold))
}

/// TFLite's `DownScaleInt32ToInt16Multiplier`: rounds a Q0.31 multiplier to
/// Q0.15, saturating where rounding would overflow `i16`.
#[inline]
pub fn downscale_multiplier_to_i16(multiplier: i32) -> i16 {
    debug_assert!(multiplier >= 0);
    const ROUNDING: i32 = 1 << 15;
    if multiplier >= i32::MAX - ROUNDING {
        return i16::MAX;
    }
    ((multiplier + ROUNDING) >> 16) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tiny deterministic generator so property loops need no dependency.
    pub(crate) struct Lcg(pub u64);
    impl Lcg {
        pub fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            self.0
        }
        pub fn next_i32(&mut self) -> i32 {
            (self.next_u64() >> 32) as i32
        }
        /// Uniform in [0, 1).
        pub fn next_f64(&mut self) -> f64 {
            (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    #[test]
    fn frexp_normal_values() {
        assert_eq!(frexp(1.0), (0.5, 1));
        assert_eq!(frexp(0.5), (0.5, 0));
        assert_eq!(frexp(0.75), (0.75, 0));
        assert_eq!(frexp(3.0), (0.75, 2));
        assert_eq!(frexp(-3.0), (-0.75, 2));
        assert_eq!(frexp(f64::MAX).1, 1024);
    }

    #[test]
    fn frexp_zero_subnormal_and_specials() {
        let (m, e) = frexp(-0.0);
        assert!(m == 0.0 && m.is_sign_negative() && e == 0);
        // Smallest subnormal is 2^-1074 = 0.5 * 2^-1073.
        assert_eq!(frexp(f64::from_bits(1)), (0.5, -1073));
        // Largest subnormal: just under 2^-1022.
        let (m, e) = frexp(f64::from_bits((1u64 << 52) - 1));
        assert_eq!(e, -1022);
        assert!(m < 1.0 && m > 0.99);
        assert_eq!(frexp(-f64::from_bits(3)), (-0.75, -1072));
        assert_eq!(frexp(f64::INFINITY), (f64::INFINITY, 0));
        assert!(frexp(f64::NAN).0.is_nan());
    }

    #[test]
    fn frexp_round_trips() {
        let mut rng = Lcg(7);
        for _ in 0..10_000 {
            let x = f64::from_bits(rng.next_u64());
            if !x.is_finite() || x == 0.0 {
                continue;
            }
            let (m, e) = frexp(x);
            assert!((0.5..1.0).contains(&m.abs()), "{x:e} -> {m}");
            // Reassemble in two steps so neither factor under/overflows.
            let back = m * 2f64.powi(e / 2) * 2f64.powi(e - e / 2);
            assert_eq!(back, x);
        }
    }

    #[test]
    fn quantize_multiplier_hand_values() {
        assert_eq!(quantize_multiplier(0.0), (0, 0));
        assert_eq!(quantize_multiplier(0.5), (1 << 30, 0));
        assert_eq!(quantize_multiplier(1.0), (1 << 30, 1));
        // 0.75 = 0.75 * 2^0 -> 0.75 * 2^31 = 1610612736.
        assert_eq!(quantize_multiplier(0.75), (1_610_612_736, 0));
        assert_eq!(quantize_multiplier(2.0), (1 << 30, 2));
        assert_eq!(quantize_multiplier(-0.5), (-(1 << 30), 0));
        // 0.1 = 0.8 * 2^-3; 0.8 * 2^31 = 1717986918.4 -> 1717986918.
        assert_eq!(quantize_multiplier(0.1), (1_717_986_918, -3));
    }

    #[test]
    fn quantize_multiplier_flush_edges() {
        // 2^-31 = 0.5 * 2^-30: representable.
        assert_eq!(quantize_multiplier(2f64.powi(-31)), (1 << 30, -30));
        // 2^-32 = 0.5 * 2^-31: the last exponent TFLite keeps.
        assert_eq!(quantize_multiplier(2f64.powi(-32)), (1 << 30, -31));
        // 2^-33 would need shift -32: flushed.
        assert_eq!(quantize_multiplier(2f64.powi(-33)), (0, 0));
        assert_eq!(quantize_multiplier(1e-10), (0, 0));
        assert_eq!(quantize_multiplier(f64::from_bits(1)), (0, 0));
        // Just below 2^-32, the rounding carries and bumps shift back to -31.
        let just_below = f64::from_bits(2f64.powi(-32).to_bits() - 1);
        assert_eq!(quantize_multiplier(just_below), (1 << 30, -31));
    }

    #[test]
    fn quantize_multiplier_rounding_carry() {
        // 1 - 2^-40 has fraction 0.99999999999909..., * 2^31 rounds to 2^31:
        // the carry halves it and bumps the shift, giving exactly 1.0.
        let r = 1.0 - 2f64.powi(-40);
        assert_eq!(quantize_multiplier(r), (1 << 30, 1));
        // Just below 1, but far enough that it does not carry.
        assert_eq!(quantize_multiplier(1.0 - 2f64.powi(-31)), (i32::MAX, 0));
        assert_eq!(quantize_multiplier(1.0 - 2f64.powi(-30)), (i32::MAX - 1, 0));
        // The biggest double below 1.
        assert_eq!(quantize_multiplier(1.0 - f64::EPSILON / 2.0), (1 << 30, 1));
        // Half-way case rounds away from zero: (2^31 - 0.5)/2^31.
        let r = (2f64.powi(31) - 0.5) / 2f64.powi(31);
        assert_eq!(quantize_multiplier(r), (1 << 30, 1));
        let r = (2f64.powi(31) - 1.5) / 2f64.powi(31);
        assert_eq!(quantize_multiplier(r), (i32::MAX, 0));
        assert_eq!(quantize_multiplier(-r), (-i32::MAX, 0));
        // Negative carry does not trigger the adjustment: -2^31 fits.
        let r = -(2f64.powi(31) - 0.5) / 2f64.powi(31);
        assert_eq!(quantize_multiplier(r), (i32::MIN, 0));
    }

    #[test]
    fn quantize_multiplier_special_inputs() {
        assert_eq!(quantize_multiplier(f64::NAN), (0, 0));
        assert_eq!(quantize_multiplier(f64::INFINITY), (0, 0));
        assert_eq!(quantize_multiplier(-0.0), (0, 0));
    }

    #[test]
    fn quantize_multiplier_reconstructs_real() {
        let mut rng = Lcg(11);
        for _ in 0..10_000 {
            let r = 2f64.powf(rng.next_f64() * 60.0 - 30.0);
            let (m, s) = quantize_multiplier(r);
            assert!((1 << 30..=i32::MAX).contains(&m), "{r} -> {m}");
            let back = m as f64 * 2f64.powi(s - 31);
            assert!(((back - r) / r).abs() <= 2f64.powi(-31), "{r} -> {back}");
        }
    }

    #[test]
    fn quantize_multiplier_checked_variants() {
        assert_eq!(quantize_multiplier_smaller_than_one_exp(0.25), Some((1 << 30, -1)));
        assert_eq!(quantize_multiplier_smaller_than_one_exp(1.0), None);
        assert_eq!(quantize_multiplier_smaller_than_one_exp(0.0), None);
        assert_eq!(quantize_multiplier_smaller_than_one_exp(1.0 - 2f64.powi(-40)), None);
        assert_eq!(quantize_multiplier_greater_than_one(3.0), Some((1_610_612_736, 2)));
        assert_eq!(quantize_multiplier_greater_than_one(1.0), None);
        assert_eq!(quantize_multiplier_greater_than_one(f64::INFINITY), None);
    }

    #[test]
    fn conv_multiplier_precision_paths() {
        let (i, f, o) = (0.007_843_138_f32, 0.003_1_f32, 0.023_529_412_f32);
        let per_channel = per_channel_multiplier(i, f, o);
        let per_tensor = per_tensor_conv_multiplier(i, f, o);
        assert_eq!(per_channel, i as f64 * f as f64 / o as f64);
        assert_eq!(per_tensor, (i * f) as f64 / o as f64);
        // They agree to float precision but not bit for bit in general.
        assert!(((per_channel - per_tensor) / per_channel).abs() < 1e-7);
    }

    #[test]
    fn srdhm_hand_values() {
        assert_eq!(saturating_rounding_doubling_high_mul(i32::MIN, i32::MIN), i32::MAX);
        assert_eq!(saturating_rounding_doubling_high_mul(i32::MAX, i32::MAX), i32::MAX - 1);
        assert_eq!(saturating_rounding_doubling_high_mul(i32::MIN, i32::MAX), -i32::MAX);
        // 0.5 * 0.5 = 0.25 in Q0.31.
        assert_eq!(saturating_rounding_doubling_high_mul(1 << 30, 1 << 30), 1 << 29);
        // Ties round up: 3 * 0.5 = 1.5 -> 2, but -3 * 0.5 = -1.5 -> -1.
        assert_eq!(saturating_rounding_doubling_high_mul(3, 1 << 30), 2);
        assert_eq!(saturating_rounding_doubling_high_mul(-3, 1 << 30), -1);
        // 0.5 -> 1; -0.5 -> 0.
        assert_eq!(saturating_rounding_doubling_high_mul(1, 1 << 30), 1);
        assert_eq!(saturating_rounding_doubling_high_mul(-1, 1 << 30), 0);
        // Non-ties round to nearest either way: -5 * 0.375 = -1.875 -> -2.
        assert_eq!(saturating_rounding_doubling_high_mul(-5, 805_306_368), -2);
        // 1 * 0.25 = 0.25 -> 0.
        assert_eq!(saturating_rounding_doubling_high_mul(1, 1 << 29), 0);
        assert_eq!(saturating_rounding_doubling_high_mul(0, i32::MIN), 0);
    }

    #[test]
    fn srdhm_matches_exact_rounding() {
        let mut rng = Lcg(3);
        for _ in 0..100_000 {
            let (a, b) = (rng.next_i32(), rng.next_i32());
            if a == i32::MIN && b == i32::MIN {
                continue;
            }
            // Exact: 2ab / 2^32 = ab / 2^31, rounded half up.
            let ab = a as i128 * b as i128;
            let want = (ab + (1 << 30)).div_euclid(1 << 31);
            assert_eq!(saturating_rounding_doubling_high_mul(a, b) as i128, want, "{a} {b}");
        }
    }

    #[test]
    fn rdbpot_hand_values() {
        assert_eq!(rounding_divide_by_pot(3, 1), 2);
        assert_eq!(rounding_divide_by_pot(-3, 1), -2);
        assert_eq!(rounding_divide_by_pot(-5, 2), -1);
        assert_eq!(rounding_divide_by_pot(5, 2), 1);
        assert_eq!(rounding_divide_by_pot(-6, 2), -2); // -1.5 -> -2
        assert_eq!(rounding_divide_by_pot(6, 2), 2); // 1.5 -> 2
        assert_eq!(rounding_divide_by_pot(-7, 2), -2);
        assert_eq!(rounding_divide_by_pot(-1, 1), -1); // -0.5 -> -1
        assert_eq!(rounding_divide_by_pot(1, 1), 1);
        assert_eq!(rounding_divide_by_pot(12345, 0), 12345);
        assert_eq!(rounding_divide_by_pot(i32::MAX, 31), 1);
        assert_eq!(rounding_divide_by_pot(i32::MIN, 31), -1);
        assert_eq!(rounding_divide_by_pot(-(1 << 30), 31), -1); // -0.5 -> -1
        assert_eq!(rounding_divide_by_pot(1 << 30, 31), 1);
        assert_eq!(rounding_divide_by_pot((1 << 30) - 1, 31), 0);
    }

    #[test]
    fn rdbpot_matches_exact_rounding() {
        let mut rng = Lcg(5);
        for i in 0..100_000 {
            let x = rng.next_i32();
            let e = i % 32;
            let exact = x as f64 / 2f64.powi(e);
            // f64::round is half away from zero, which is gemmlowp's rule.
            assert_eq!(rounding_divide_by_pot(x, e) as f64, exact.round(), "{x} {e}");
        }
    }

    #[test]
    fn mbqm_hand_values() {
        // Multiplier 0.75 (shift 0): 100 * 0.75 = 75.
        assert_eq!(multiply_by_quantized_multiplier(100, 1_610_612_736, 0), 75);
        // 0.75 * 2^-3: 100 * 0.09375 = 9.375 -> 9; -100 -> -9.
        assert_eq!(multiply_by_quantized_multiplier(100, 1_610_612_736, -3), 9);
        assert_eq!(multiply_by_quantized_multiplier(-100, 1_610_612_736, -3), -9);
        // Double rounding: 0.5 * 2^-2 on 6: SRDHM(6, 0.5) = 3, 3/4 = 0.75 -> 1.
        assert_eq!(multiply_by_quantized_multiplier(6, 1 << 30, -2), 1);
        // 0.5 * 2^-2 on -6: -0.75 -> -1.
        assert_eq!(multiply_by_quantized_multiplier(-6, 1 << 30, -2), -1);
        // Positive shift: 0.75 * 2^2 = 3 on 7 -> 21.
        assert_eq!(multiply_by_quantized_multiplier(7, 1_610_612_736, 2), 21);
        assert_eq!(multiply_by_quantized_multiplier(-7, 1_610_612_736, 2), -21);
        // Tie in the high-mul rounds up: 2.5 -> 3, -2.5 -> -2.
        assert_eq!(multiply_by_quantized_multiplier(5, 1 << 30, 0), 3);
        assert_eq!(multiply_by_quantized_multiplier(-5, 1 << 30, 0), -2);
        // Double rounding: 5 * 0.25 = 1.25, but the high-mul gives 3 (2.5
        // rounded) and the shift 2 (1.5 rounded away from zero).
        assert_eq!(multiply_by_quantized_multiplier(5, 1 << 30, -1), 2);
        assert_eq!(multiply_by_quantized_multiplier(-5, 1 << 30, -1), -1);
        // Zero multiplier (flushed) gives zero.
        assert_eq!(multiply_by_quantized_multiplier(i32::MAX, 0, 0), 0);
    }

    #[test]
    fn mbqm_tracks_real_product() {
        let mut rng = Lcg(9);
        for _ in 0..50_000 {
            let r = 2f64.powf(rng.next_f64() * 24.0 - 20.0); // 2^-20 .. 2^4
            let x = rng.next_i32() >> (rng.next_u64() % 31) as u32;
            let want = x as f64 * r;
            if want.abs() > 2e9 {
                continue;
            }
            let (m, s) = quantize_multiplier(r);
            if s > 0 && ((x as i64) << s) as i32 as i64 != (x as i64) << s {
                continue; // TFLite assumes the pre-shift does not overflow.
            }
            let got = multiply_by_quantized_multiplier(x, m, s) as f64;
            // Error sources: multiplier quantisation (<= 2^-31 relative) and
            // two roundings (<= 1/2 each) -- within 1 of round(x*r).
            assert!((got - want).abs() <= 1.0 + want.abs() * 2f64.powi(-30), "{x} * {r}: {got} vs {want}");
        }
    }

    #[test]
    fn mbqm_i64_hand_values() {
        // reduced = (2^30 + 2^15) >> 16 = 16384 = 0.5 in Q0.15.
        // 6 * 0.5 * 2^-2 = 0.75 -> round half up -> 1.
        assert_eq!(multiply_by_quantized_multiplier_i64(6, 1 << 30, -2), 1);
        // -6 -> -0.75 -> -1 (single rounding, half up).
        assert_eq!(multiply_by_quantized_multiplier_i64(-6, 1 << 30, -2), -1);
        // Tie: 5 * 0.5 = 2.5 -> 3; -5 * 0.5 = -2.5 -> -2 (half up).
        assert_eq!(multiply_by_quantized_multiplier_i64(5, 1 << 30, 0), 3);
        assert_eq!(multiply_by_quantized_multiplier_i64(-5, 1 << 30, 0), -2);
        // Single rounding: 5 * 0.25 = 1.25 -> 1 where the 32-bit path gives 2.
        assert_eq!(multiply_by_quantized_multiplier_i64(5, 1 << 30, -1), 1);
        // Multipliers near 2^31 cap the reduced multiplier at 0x7FFF.
        assert_eq!(multiply_by_quantized_multiplier_i64(1 << 15, i32::MAX, 0), 0x7FFF);
        assert_eq!(multiply_by_quantized_multiplier_i64(1 << 15, 0x7FFE_FFFF, 0), 0x7FFF);
        // Large 48-bit accumulator with a right shift.
        let x = (1i64 << 46) + 12345;
        let got = multiply_by_quantized_multiplier_i64(x, 1_610_612_736, -20);
        let want = (x as f64 * 0.75 / 2f64.powi(20)).round();
        assert!((got as f64 - want).abs() <= 1.0);
        // Positive shift.
        assert_eq!(multiply_by_quantized_multiplier_i64(100, 1 << 30, 3), 400);
    }

    #[test]
    fn mbqm_i64_tracks_real_product() {
        let mut rng = Lcg(21);
        for _ in 0..50_000 {
            let r = 2f64.powf(rng.next_f64() * 26.0 - 24.0);
            let x = (rng.next_u64() as i64) >> (17 + rng.next_u64() % 40) as u32;
            let want = x as f64 * r;
            if want.abs() > 2e9 {
                continue;
            }
            let (m, s) = quantize_multiplier(r);
            if s >= 8 {
                continue;
            }
            let got = multiply_by_quantized_multiplier_i64(x, m, s) as f64;
            // The multiplier is only 15 bits here: relative error ~2^-15.
            assert!((got - want).abs() <= 1.0 + want.abs() * 2f64.powi(-14), "{x} * {r}");
        }
    }

    #[test]
    fn mbqm_exp_variants() {
        // 0.75 * 2^-3 on 100 = 9.375 -> 9.
        assert_eq!(multiply_by_quantized_multiplier_smaller_than_one_exp(100, 1_610_612_736, -3), 9);
        assert_eq!(multiply_by_quantized_multiplier_smaller_than_one_exp(-100, 1_610_612_736, -3), -9);
        // 0.75 * 2^2 on 7 = 21; matches the general form for positive shifts.
        assert_eq!(multiply_by_quantized_multiplier_greater_than_one(7, 1_610_612_736, 2), 21);
        assert_eq!(multiply_by_quantized_multiplier_greater_than_one(-7, 1_610_612_736, 2), -21);
    }

    #[test]
    fn int16_helpers() {
        assert_eq!(saturating_rounding_doubling_high_mul_i16(i16::MIN, i16::MIN), i16::MAX);
        assert_eq!(saturating_rounding_doubling_high_mul_i16(3, 1 << 14), 2);
        assert_eq!(saturating_rounding_doubling_high_mul_i16(-3, 1 << 14), -1);
        assert_eq!(saturating_doubling_high_mul_i16(3, 1 << 14), 1);
        assert_eq!(saturating_doubling_high_mul_i16(-3, 1 << 14), -1);
        assert_eq!(saturating_doubling_high_mul_i16(i16::MIN, i16::MIN), i16::MAX);
        for x in i16::MIN..=i16::MAX {
            for e in 0..=15 {
                assert_eq!(rounding_divide_by_pot_i16(x, e) as i32, rounding_divide_by_pot(x as i32, e));
            }
        }
        // The truncated-mask quirk for exponents past 15.
        assert_eq!(rounding_divide_by_pot_i16(0, 16), 1);
        assert_eq!(rounding_divide_by_pot_i16(-5, 16), -1);
        assert_eq!(downscale_multiplier_to_i16(1 << 30), 1 << 14);
        assert_eq!(downscale_multiplier_to_i16(i32::MAX), i16::MAX);
        assert_eq!(downscale_multiplier_to_i16(0x7FFF_7FFF), i16::MAX);
        assert_eq!(downscale_multiplier_to_i16(0x7FFF_7FFE), i16::MAX);
        assert_eq!(downscale_multiplier_to_i16(0x7FFE_8000), i16::MAX);
        assert_eq!(downscale_multiplier_to_i16(0x7FFE_7FFF), 0x7FFE);
    }
}
