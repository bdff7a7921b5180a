//! gemmlowp's `FixedPoint<int32, IntegerBits>` arithmetic, as plain functions
//! on raw `i32` values.
//!
//! A `Q(I)` value here is an `i32` read as `raw / 2^(31 - I)`: `I` integer
//! bits, `31 - I` fractional bits, range `[-2^I, 2^I)`. gemmlowp encodes `I`
//! in the C++ type; Rust's const generics cannot express "the product has
//! `I_a + I_b` integer bits" on stable, so the integer bits are plain
//! arguments and each function says which formats it takes and returns.
//! The operations map one to one onto gemmlowp's:
//!
//! - `a * b` (any formats) is [`saturating_rounding_doubling_high_mul`]; the
//!   result has the sum of the integer bits;
//! - `a + b`, `a - b` are wrapping integer adds on the raws (gemmlowp does
//!   not saturate them either);
//! - `Rescale<D>(Q(S))` is [`rescale`], `SaturatingRoundingMultiplyByPOT` is
//!   [`saturating_rounding_multiply_by_pot`], `ExactMulByPot` just relabels
//!   the format (no code).
//!
//! Bit-exactness with TFLite depends on doing every step in the same order
//! with the same rounding, so the polynomial and Newton-Raphson steps below
//! follow gemmlowp's evaluation order exactly; do not "simplify" them.

use super::multiplier::{rounding_divide_by_pot, saturating_rounding_doubling_high_mul as mul};

/// 1.0 in Q0.31, which is not representable: gemmlowp's `One()` for zero
/// integer bits saturates to `i32::MAX`.
pub const Q0_ONE: i32 = i32::MAX;

/// The raw value of `2^exponent` in `Q(integer_bits)` (gemmlowp's
/// `ConstantPOT`). Must be exactly representable.
#[inline]
pub const fn constant_pot(integer_bits: i32, exponent: i32) -> i32 {
    1 << (31 - integer_bits + exponent)
}

/// `(a + b) / 2` rounded to nearest, ties away from zero (ARM `VRHADD`),
/// computed without overflow.
#[inline]
pub fn rounding_half_sum(a: i32, b: i32) -> i32 {
    let sum = a as i64 + b as i64;
    let sign = if sum >= 0 { 1 } else { -1 };
    ((sum + sign) / 2) as i32
}

/// `x * 2^exponent`: for `exponent > 0` an arithmetic left shift that
/// saturates to `i32::MIN`/`i32::MAX`; for `exponent < 0` a rounding right
/// shift ([`rounding_divide_by_pot`]). gemmlowp's compile-time
/// `SaturatingRoundingMultiplyByPOT` and, for `exponent >= 0`, TFLite's
/// run-time `SaturatingRoundingMultiplyByPOTParam`.
#[inline]
pub fn saturating_rounding_multiply_by_pot(x: i32, exponent: i32) -> i32 {
    debug_assert!((-31..=31).contains(&exponent));
    if exponent > 0 {
        // Anything beyond +-threshold would lose bits off the top.
        let threshold = (1i32 << (31 - exponent)) - 1;
        if x > threshold {
            i32::MAX
        } else if x < -threshold {
            i32::MIN
        } else {
            x << exponent
        }
    } else if exponent < 0 {
        rounding_divide_by_pot(x, -exponent)
    } else {
        x
    }
}

/// gemmlowp's `Rescale`: re-express a `Q(src_integer_bits)` raw as
/// `Q(dst_integer_bits)`, saturating when gaining precision and rounding
/// when losing it.
#[inline]
pub fn rescale(x: i32, src_integer_bits: i32, dst_integer_bits: i32) -> i32 {
    saturating_rounding_multiply_by_pot(x, src_integer_bits - dst_integer_bits)
}

/// `exp(a)` for a Q0.31 `a` in `[-1/4, 0)`, returning Q0.31.
///
/// gemmlowp's Taylor expansion around -1/8, to fourth order:
/// `exp(-1/8) * (1 + x + x^2/2 + x^3/6 + x^4/24)` with `x = a + 1/8`.
pub fn exp_on_interval_between_negative_one_quarter_and_0_excl(a: i32) -> i32 {
    const EXP_MINUS_ONE_EIGHTH: i32 = 1_895_147_668; // exp(-1/8) in Q0.31
    const ONE_THIRD: i32 = 715_827_883; // 1/3 in Q0.31
    let x = a.wrapping_add(constant_pot(0, -3));
    let x2 = mul(x, x);
    let x3 = mul(x2, x);
    let x4 = mul(x2, x2);
    let x4_over_4 = saturating_rounding_multiply_by_pot(x4, -2);
    // ((x^4/4 + x^3) / 3 + x^2) / 2 = x^4/24 + x^3/6 + x^2/2
    let higher_terms =
        saturating_rounding_multiply_by_pot(mul(x4_over_4.wrapping_add(x3), ONE_THIRD).wrapping_add(x2), -1);
    EXP_MINUS_ONE_EIGHTH.wrapping_add(mul(EXP_MINUS_ONE_EIGHTH, x.wrapping_add(higher_terms)))
}

/// `exp(a)` for `a <= 0` in `Q(integer_bits)` (at most 29 integer bits),
/// returning Q0.31. `exp(0)` gives [`Q0_ONE`].
///
/// gemmlowp splits `a` into a part in `[-1/4, 0)`, evaluated with the
/// polynomial above, and a whole number of quarters, whose bits select
/// precomputed factors `exp(-1/4)`, `exp(-1/2)`, `exp(-1)`, ... `exp(-16)`
/// (a "barrel shifter"). Inputs below -32 flush to 0 when the format can
/// hold them. Used by int8 softmax with `integer_bits = 5`.
pub fn exp_on_negative_values(a: i32, integer_bits: i32) -> i32 {
    assert!((0..=29).contains(&integer_bits), "exp_on_negative_values: {integer_bits} integer bits");
    let fractional_bits = 31 - integer_bits;
    let one_quarter = constant_pot(integer_bits, -2);
    let mask = one_quarter - 1;
    let a_mod_quarter_minus_one_quarter = (a & mask).wrapping_sub(one_quarter);
    let mut result = exp_on_interval_between_negative_one_quarter_and_0_excl(rescale(
        a_mod_quarter_minus_one_quarter,
        integer_bits,
        0,
    ));
    let remainder = a_mod_quarter_minus_one_quarter.wrapping_sub(a);

    // (power of two of the chunk, exp(-2^power) in Q0.31)
    const BARREL: [(i32, i32); 7] = [
        (-2, 1_672_461_947), // exp(-1/4)
        (-1, 1_302_514_674), // exp(-1/2)
        (0, 790_015_084),    // exp(-1)
        (1, 290_630_308),    // exp(-2)
        (2, 39_332_535),     // exp(-4)
        (3, 720_401),        // exp(-8)
        (4, 242),            // exp(-16)
    ];
    for (exponent, multiplier) in BARREL {
        // Chunks larger than the format's range cannot occur.
        if integer_bits > exponent {
            let bit = 1i32 << (fractional_bits + exponent);
            if remainder & bit != 0 {
                result = mul(result, multiplier);
            }
        }
    }

    if integer_bits > 5 {
        // -32 in Q(integer_bits): exp of anything below is below Q0.31's
        // resolution.
        let clamp = -(1i32 << (36 - integer_bits));
        if a < clamp {
            result = 0;
        }
    }
    if a == 0 {
        result = Q0_ONE;
    }
    result
}

/// `1 / (1 + a)` for a Q0.31 `a` in `[0, 1)`, returning Q0.31.
///
/// gemmlowp's Newton-Raphson division: the denominator is halved into
/// `[1/2, 1)`, the first guess is `48/17 - 32/17 * d` and three iterations
/// follow in Q2.29; the final halving undoes the denominator's.
pub fn one_over_one_plus_x_for_x_in_0_1(a: i32) -> i32 {
    const C_48_OVER_17: i32 = 1_515_870_810; // Q2.29
    const C_NEG_32_OVER_17: i32 = -1_010_580_540; // Q2.29
    const Q2_ONE: i32 = constant_pot(2, 0);
    let half_denominator = rounding_half_sum(a, Q0_ONE); // Q0
    let mut x = C_48_OVER_17.wrapping_add(mul(half_denominator, C_NEG_32_OVER_17)); // Q2
    for _ in 0..3 {
        let half_denominator_times_x = mul(half_denominator, x); // Q2
        let one_minus_half_denominator_times_x = Q2_ONE.wrapping_sub(half_denominator_times_x);
        // Q2 * Q2 = Q4, back to Q2.
        x = x.wrapping_add(rescale(mul(x, one_minus_half_denominator_times_x), 4, 2));
    }
    // x approximates 1/half_denominator = 2/(1+a) in Q2; read it as Q1
    // (exact halving), then rescale to Q0.
    rescale(x, 1, 0)
}

/// TFLite's `GetReciprocal`: `1 / x` for a positive `Q(x_integer_digits)`
/// raw `x`, returned as a Q0.31 significand and `num_bits_over_unit`, with
/// `1/x ≈ significand * 2^-num_bits_over_unit`.
///
/// `x` is normalised into `[1, 2)` by shifting out its headroom, then
/// [`one_over_one_plus_x_for_x_in_0_1`] does the division. Softmax uses it
/// on the Q12.19 sum of exponentials.
pub fn get_reciprocal(x: i32, x_integer_digits: i32) -> (i32, i32) {
    let headroom_plus_one = (x as u32).leading_zeros();
    let num_bits_over_unit = x_integer_digits - headroom_plus_one as i32;
    // x << headroom_plus_one puts the leading 1 just past bit 31; dropping
    // it leaves (x_normalised - 1) as an unsigned Q0.32, i.e. Q0.31 doubled
    // -- exactly what the C++ reinterprets. x == 0 is outside the domain;
    // we avoid the shift overflow and carry on.
    let shifted_sum_minus_one = (x as u32).checked_shl(headroom_plus_one).unwrap_or(0).wrapping_sub(1 << 31) as i32;
    (one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), num_bits_over_unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(x: f64, integer_bits: i32) -> i32 {
        (x * 2f64.powi(31 - integer_bits)).round() as i32
    }
    fn real(raw: i32, integer_bits: i32) -> f64 {
        raw as f64 / 2f64.powi(31 - integer_bits)
    }

    #[test]
    fn constants_match_their_reals() {
        assert_eq!(constant_pot(0, -3), 1 << 28);
        assert_eq!(constant_pot(2, 0), 1 << 29);
        assert_eq!(constant_pot(5, -2), 1 << 24);
        // Every magic number is the rounded real it claims to be.
        assert_eq!(q((-1.0f64 / 8.0).exp(), 0), 1_895_147_668);
        assert_eq!(q(1.0 / 3.0, 0), 715_827_883);
        assert_eq!(q(48.0 / 17.0, 2), 1_515_870_810);
        assert_eq!(q(-32.0 / 17.0, 2), -1_010_580_540);
        for (e, m) in [
            (-2, 1_672_461_947),
            (-1, 1_302_514_674),
            (0, 790_015_084),
            (1, 290_630_308),
            (2, 39_332_535),
            (3, 720_401),
            (4, 242),
        ] {
            assert_eq!(q((-(2f64.powi(e))).exp(), 0), m, "exp(-2^{e})");
        }
    }

    #[test]
    fn rounding_half_sum_values() {
        assert_eq!(rounding_half_sum(1, 2), 2);
        assert_eq!(rounding_half_sum(-1, -2), -2);
        assert_eq!(rounding_half_sum(i32::MAX, i32::MAX), i32::MAX);
        assert_eq!(rounding_half_sum(0, i32::MAX), 1 << 30);
        assert_eq!(rounding_half_sum(i32::MIN, i32::MIN), i32::MIN);
    }

    #[test]
    fn srmbpot_and_rescale() {
        assert_eq!(saturating_rounding_multiply_by_pot(3, 2), 12);
        assert_eq!(saturating_rounding_multiply_by_pot(1 << 29, 1), 1 << 30);
        assert_eq!(saturating_rounding_multiply_by_pot(1 << 30, 1), i32::MAX);
        assert_eq!(saturating_rounding_multiply_by_pot(-(1 << 30), 1), i32::MIN);
        assert_eq!(saturating_rounding_multiply_by_pot(-(1 << 30) + 1, 1), i32::MIN + 2);
        assert_eq!(saturating_rounding_multiply_by_pot(-3, -1), -2);
        assert_eq!(saturating_rounding_multiply_by_pot(5, 0), 5);
        assert_eq!(saturating_rounding_multiply_by_pot(1, 31), i32::MAX);
        // 1.5 in Q5 -> Q12 -> back.
        let x = q(1.5, 5);
        assert_eq!(rescale(x, 5, 12), q(1.5, 12));
        assert_eq!(rescale(rescale(x, 5, 12), 12, 5), x);
        // Q2 value 3.0 does not fit Q0 -> saturates.
        assert_eq!(rescale(q(3.0, 2), 2, 0), i32::MAX);
    }

    #[test]
    fn exp_polynomial_on_quarter_interval() {
        for i in 1..=1000 {
            let x = -0.25 * i as f64 / 1000.0;
            let got = real(exp_on_interval_between_negative_one_quarter_and_0_excl(q(x, 0)), 0);
            // Fourth-order Taylor over a radius of 1/8: error ~ (1/8)^5/120.
            assert!((got - x.exp()).abs() < 3e-7, "exp({x}) = {got}");
        }
    }

    #[test]
    fn exp_on_negative_values_endpoints() {
        assert_eq!(exp_on_negative_values(0, 5), Q0_ONE);
        assert_eq!(exp_on_negative_values(0, 0), Q0_ONE);
        // -1/4 goes through the polynomial at the far end of its interval,
        // where its truncation error (~2.2e-7, ~470 raw) is largest; the
        // barrel factor is the correctly rounded exp(-1/4).
        let e = exp_on_negative_values(q(-0.25, 5), 5);
        assert!((e - 1_672_461_947).abs() <= 1000, "{e}");
        // -1/2 is a whole number of quarters: polynomial at -1/4 times the
        // exp(-1/4) factor.
        let e = exp_on_negative_values(q(-0.5, 5), 5);
        assert_eq!(e, mul(exp_on_interval_between_negative_one_quarter_and_0_excl(q(-0.25, 0)), 1_672_461_947));
        // Below -32 in a format that can hold it: flushed.
        assert_eq!(exp_on_negative_values(q(-33.0, 6), 6), 0);
        // -32 in Q5, the most negative input: exp(-32) is below resolution.
        assert!((0..=1).contains(&exp_on_negative_values(i32::MIN, 5)));
    }

    #[test]
    fn exp_on_negative_values_tracks_exp() {
        for integer_bits in [0, 1, 3, 4, 5, 6, 12] {
            let lo = -(2f64.powi(integer_bits)).min(40.0);
            for i in 0..=4000 {
                let x = lo * i as f64 / 4000.0;
                let raw = q(x, integer_bits);
                let got = real(exp_on_negative_values(raw, integer_bits), 0);
                let want = real(raw, integer_bits).exp();
                assert!((got - want).abs() < 1e-8 + want * 3e-7, "Q{integer_bits} exp({x}): {got} vs {want}");
            }
        }
    }

    #[test]
    fn one_over_one_plus_x_tracks_division() {
        for i in 0..=10_000 {
            let x = i as f64 / 10_000.0 * (1.0 - 1e-9);
            let got = real(one_over_one_plus_x_for_x_in_0_1(q(x, 0)), 0);
            assert!((got - 1.0 / (1.0 + x)).abs() < 1e-8, "1/(1+{x}) = {got}");
        }
        // Zero input: 1/(1+0) saturates at the top of Q0.31.
        let one = one_over_one_plus_x_for_x_in_0_1(0);
        assert!(one > i32::MAX - 16, "{one}");
    }

    #[test]
    fn get_reciprocal_values() {
        // 1.0 in Q12.19: headroom_plus_one = 12, over unit 0, x-1 = 0.
        let (s, n) = get_reciprocal(1 << 19, 12);
        assert_eq!(n, 0);
        assert!(s > i32::MAX - 16);
        // 3.0 in Q12.19: 1/3 = 0.6667 * 2^-1.
        let (s, n) = get_reciprocal(3 << 19, 12);
        assert_eq!(n, 1);
        assert!((real(s, 0) - 2.0 / 3.0).abs() < 1e-8);
        for k in 1..2000 {
            let x = k * 1234 + 77;
            let (s, n) = get_reciprocal(x, 12);
            let want = 1.0 / real(x, 12);
            let got = real(s, 0) * 2f64.powi(-n);
            assert!(((got - want) / want).abs() < 1e-8, "1/{x}: {got} vs {want}");
        }
    }
}
