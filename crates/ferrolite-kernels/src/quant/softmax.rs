//! Quantised SOFTMAX as TFLite's reference kernel computes it.
//!
//! TFLite has two int8/uint8 softmax paths. Its *reference* kernel
//! (`reference_ops::Softmax`, selected by `kReference`) is pure fixed point:
//! input differences from the row maximum are rescaled to Q5.26, `exp` is
//! gemmlowp's [`exp_on_negative_values`], the sum is accumulated in Q12.19 and
//! inverted with [`get_reciprocal`]. Its *optimised* kernel instead fills a
//! 256-entry float `exp` table at prepare time ([`softmax_exp_table`]) and
//! does float arithmetic at eval; the two differ in the last bit now and
//! then. Reference behaviour is the contract here, so the row functions below
//! implement the fixed-point path; the float table is provided for the
//! optimised twin.

use super::fixedpoint::{exp_on_negative_values, get_reciprocal, rescale};
use super::multiplier::{multiply_by_quantized_multiplier_greater_than_one, quantize_multiplier_greater_than_one};

/// Integer bits of the rescaled input difference fed to `exp` (Q5.26):
/// differences down to -32 must fit, since `exp(-16)` is still not quite
/// negligible after `beta` scaling.
pub const SCALED_DIFF_INTEGER_BITS: i32 = 5;
/// Integer bits of the sum of exponentials (Q12.19): up to 4096 terms of at
/// most 1.0 without overflow.
pub const ACCUMULATION_INTEGER_BITS: i32 = 12;

/// TFLite's `PreprocessSoftmaxScaling`: the multiplier that takes an integer
/// input difference to `Q(input_integer_bits)` scaled by `beta`, i.e.
/// `beta * input_scale * 2^(31 - input_integer_bits)` capped at `2^31 - 1`,
/// quantised with [`quantize_multiplier_greater_than_one`]. Returns
/// `(multiplier, left_shift)`, or `None` where TFLite's check would abort
/// (the real multiplier is not above 1, e.g. a tiny `beta * input_scale`).
pub fn preprocess_softmax_scaling(beta: f64, input_scale: f64, input_integer_bits: i32) -> Option<(i32, i32)> {
    let max_real_multiplier = ((1i64 << 31) - 1) as f64;
    let real = (beta * input_scale * (1i64 << (31 - input_integer_bits)) as f64).min(max_real_multiplier);
    quantize_multiplier_greater_than_one(real)
}

/// TFLite's `CalculateInputRadius`: the largest input difference (in input
/// units) whose rescaled value still fits `Q(input_integer_bits)`; anything
/// further below the maximum is treated as `exp = 0`. Computed in `f64` and
/// floored, as TFLite does. The usual `total_signed_bits` is 31.
pub fn calculate_input_radius(input_integer_bits: i32, input_left_shift: i32, total_signed_bits: i32) -> i32 {
    let max_input_rescaled =
        1.0 * ((1i64 << input_integer_bits) - 1) as f64 * (1i64 << (total_signed_bits - input_integer_bits)) as f64
            / (1i64 << input_left_shift) as f64;
    max_input_rescaled.floor() as i32
}

/// What TFLite's softmax prepare stores for the reference int8/uint8 kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SoftmaxQuantParams {
    pub input_multiplier: i32,
    pub input_left_shift: i32,
    /// Most negative input difference still included (<= 0).
    pub diff_min: i32,
}

/// Softmax prepare for int8/uint8 input: `beta` and the input scale are
/// widened to `f64` first, as TFLite does. `None` where TFLite would fail.
pub fn softmax_params(beta: f32, input_scale: f32) -> Option<SoftmaxQuantParams> {
    let (input_multiplier, input_left_shift) =
        preprocess_softmax_scaling(beta as f64, input_scale as f64, SCALED_DIFF_INTEGER_BITS)?;
    let radius = calculate_input_radius(SCALED_DIFF_INTEGER_BITS, input_left_shift, 31);
    Some(SoftmaxQuantParams { input_multiplier, input_left_shift, diff_min: -radius })
}

/// Rounding divide by a power of two that also copes with exponents past 31,
/// which the softmax output shift reaches for very long rows (about 512+
/// near-equal logits). TFLite has undefined behaviour there; we return the
/// correctly rounded quotient, which for such rows is 0.
fn rounding_divide_by_pot_wide(x: i32, exponent: i32) -> i32 {
    if exponent <= 31 {
        return super::multiplier::rounding_divide_by_pot(x, exponent);
    }
    let x = x as i64;
    let mask = (1i64 << exponent) - 1;
    let threshold = (mask >> 1) + i64::from(x < 0);
    ((x >> exponent) + i64::from((x & mask) > threshold)) as i32
}

/// The reference fixed-point softmax over one row, on widened input values.
/// `output_bits`/`output_min`/`output_max` describe the output type; the
/// output is `round(p * 2^output_bits) + output_min`, clamped (output scale
/// `1/2^output_bits`, zero point `output_min`, as TFLite requires).
/// `exp(diff)` (Q0.31) as the reference computes it for an input
/// difference `diff <= 0` from the row maximum, `None` below `diff_min`.
fn exp_of_diff(params: &SoftmaxQuantParams, diff: i32) -> Option<i32> {
    (diff >= params.diff_min).then(|| {
        let scaled =
            multiply_by_quantized_multiplier_greater_than_one(diff, params.input_multiplier, params.input_left_shift);
        exp_on_negative_values(scaled, SCALED_DIFF_INTEGER_BITS)
    })
}

/// [`exp_of_diff`] for every difference an 8-bit row can have (0 down to
/// -255), filled once at prepare: the reference evaluates the fixed-point
/// `exp` twice per element (for the sum, then for the output), which made a
/// 1000-class softmax cost 70 us; a lookup gives the same values bit for bit.
#[derive(Clone, Debug)]
pub struct SoftmaxExpTable {
    /// Entry `-diff`.
    exp: [Option<i32>; 256],
}

impl SoftmaxExpTable {
    pub fn new(params: &SoftmaxQuantParams) -> SoftmaxExpTable {
        SoftmaxExpTable { exp: std::array::from_fn(|d| exp_of_diff(params, -(d as i32))) }
    }
}

fn softmax_row(
    params: &SoftmaxQuantParams,
    input: impl Iterator<Item = i32> + Clone,
    output_bits: i32,
    output_min: i32,
    output_max: i32,
    table: Option<&SoftmaxExpTable>,
    mut write: impl FnMut(i32),
) {
    let Some(max_in_row) = input.clone().max() else {
        return;
    };
    let exp_of_diff = |v: i32| -> Option<i32> {
        let diff = v - max_in_row;
        match table {
            // 8-bit inputs: `-diff` is 0..=255.
            Some(t) => t.exp[(-diff) as usize],
            None => exp_of_diff(params, diff),
        }
    };

    let mut sum_of_exps: i32 = 0; // Q12.19
    for v in input.clone() {
        if let Some(e) = exp_of_diff(v) {
            sum_of_exps = sum_of_exps.wrapping_add(rescale(e, 0, ACCUMULATION_INTEGER_BITS));
        }
    }
    let (shifted_scale, num_bits_over_unit) = get_reciprocal(sum_of_exps, ACCUMULATION_INTEGER_BITS);
    let exponent = num_bits_over_unit + 31 - output_bits;

    for v in input {
        match exp_of_diff(v) {
            Some(e) => {
                let unsat = rounding_divide_by_pot_wide(
                    super::multiplier::saturating_rounding_doubling_high_mul(shifted_scale, e),
                    exponent,
                );
                write((unsat + output_min).clamp(output_min, output_max));
            }
            None => write(output_min),
        }
    }
}

/// Reference int8 softmax of one row (output scale 1/256, zero point -128).
pub fn softmax_row_i8(params: &SoftmaxQuantParams, input: &[i8], output: &mut [i8]) {
    assert_eq!(input.len(), output.len());
    let mut out = output.iter_mut();
    softmax_row(params, input.iter().map(|&v| v as i32), 8, -128, 127, None, |v| *out.next().unwrap() = v as i8);
}

/// [`softmax_row_i8`] with `exp` looked up in `table` (made from the same
/// `params`): the same output, bit for bit.
pub fn softmax_row_i8_table(params: &SoftmaxQuantParams, table: &SoftmaxExpTable, input: &[i8], output: &mut [i8]) {
    assert_eq!(input.len(), output.len());
    let mut out = output.iter_mut();
    let write = |v: i32| *out.next().unwrap() = v as i8;
    softmax_row(params, input.iter().map(|&v| v as i32), 8, -128, 127, Some(table), write);
}

/// Reference uint8 softmax of one row (output scale 1/256, zero point 0).
pub fn softmax_row_u8(params: &SoftmaxQuantParams, input: &[u8], output: &mut [u8]) {
    assert_eq!(input.len(), output.len());
    let mut out = output.iter_mut();
    softmax_row(params, input.iter().map(|&v| v as i32), 8, 0, 255, None, |v| *out.next().unwrap() = v as u8);
}

/// [`softmax_row_u8`] with `exp` looked up in `table`.
pub fn softmax_row_u8_table(params: &SoftmaxQuantParams, table: &SoftmaxExpTable, input: &[u8], output: &mut [u8]) {
    assert_eq!(input.len(), output.len());
    let mut out = output.iter_mut();
    let write = |v: i32| *out.next().unwrap() = v as u8;
    softmax_row(params, input.iter().map(|&v| v as i32), 8, 0, 255, Some(table), write);
}

/// Reference int8-in, int16-out softmax of one row (output scale 1/65536,
/// zero point -32768).
pub fn softmax_row_i8_to_i16(params: &SoftmaxQuantParams, input: &[i8], output: &mut [i16]) {
    assert_eq!(input.len(), output.len());
    let mut out = output.iter_mut();
    let write = |v: i32| *out.next().unwrap() = v as i16;
    softmax_row(params, input.iter().map(|&v| v as i32), 16, -32768, 32767, None, write);
}

/// The float table of TFLite's *optimised* 8-bit softmax
/// (`PopulateSoftmaxLookupTable`): entry `255 - d` holds
/// `expf(-input_scale * beta * d)` for an input difference of `d` steps
/// below the maximum, computed in `f32`. Not used by the reference path.
pub fn softmax_exp_table(input_scale: f32, beta: f32) -> [f32; 256] {
    let scale = -input_scale * beta;
    let mut table = [0f32; 256];
    for d in 0..=255i32 {
        table[(255 - d) as usize] = (scale * d as f32).exp();
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_rows_equal_the_reference_rows() {
        // A small LCG: no test dependency for a few thousand bytes.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) as u32
        };
        for (beta, scale) in [(1.0f32, 0.1f32), (1.0, 0.0039), (0.5, 0.25), (2.0, 0.05), (1.0, 1.0)] {
            let params = softmax_params(beta, scale).unwrap();
            let table = SoftmaxExpTable::new(&params);
            for len in [1usize, 2, 7, 100, 1001] {
                // Wide rows reach below diff_min; narrow ones stay near the max.
                let spread = if len % 2 == 0 { 256 } else { 16 };
                let x: Vec<i8> = (0..len).map(|_| (next() % spread) as i32 - 128).map(|v| v as i8).collect();
                let (mut want, mut got) = (vec![0i8; len], vec![0i8; len]);
                softmax_row_i8(&params, &x, &mut want);
                softmax_row_i8_table(&params, &table, &x, &mut got);
                assert_eq!(got, want, "int8 beta {beta} scale {scale} len {len}");
                let xu: Vec<u8> = x.iter().map(|&v| (v as i32 + 128) as u8).collect();
                let (mut want, mut got) = (vec![0u8; len], vec![0u8; len]);
                softmax_row_u8(&params, &xu, &mut want);
                softmax_row_u8_table(&params, &table, &xu, &mut got);
                assert_eq!(got, want, "uint8 beta {beta} scale {scale} len {len}");
            }
        }
    }

    #[test]
    fn params_for_typical_scale() {
        // input scale 0.1, beta 1: real = 0.1 * 2^26 = 6710886.4
        // = 0.8 * 2^23 -> (round(0.8 * 2^31), 23).
        let p = softmax_params(1.0, 0.1).unwrap();
        assert_eq!(p.input_left_shift, 23);
        assert_eq!(p.input_multiplier, quantize_multiplier_greater_than_one(0.1f32 as f64 * 2f64.powi(26)).unwrap().0);
        // radius = floor(31 * 2^26 / 2^23) = 248.
        assert_eq!(p.diff_min, -248);
        // Tiny scale * beta: real multiplier not > 1, TFLite rejects.
        assert_eq!(softmax_params(1.0, 1e-9), None);
        // Huge scale: capped at 2^31 - 1.
        let p = softmax_params(1.0, 1000.0).unwrap();
        assert_eq!(p.input_left_shift, 31);
        assert_eq!(p.input_multiplier, i32::MAX);
    }

    #[test]
    fn input_radius() {
        assert_eq!(calculate_input_radius(5, 23, 31), 248);
        assert_eq!(calculate_input_radius(5, 31, 31), 0);
        assert_eq!(calculate_input_radius(5, 0, 31), 31 << 26);
        assert_eq!(calculate_input_radius(4, 3, 15), 15 * 2048 / 8);
    }

    #[test]
    fn uniform_row_splits_evenly() {
        let p = softmax_params(1.0, 0.1).unwrap();
        let input = [5i8; 4];
        let mut out = [0i8; 4];
        softmax_row_i8(&p, &input, &mut out);
        // 1/4 of 256 = 64 -> 64 - 128 = -64.
        assert_eq!(out, [-64; 4]);
        let mut out = [0u8; 4];
        softmax_row_u8(&p, &[9u8; 4], &mut out);
        assert_eq!(out, [64; 4]);
        let mut out = [0i16; 4];
        softmax_row_i8_to_i16(&p, &input, &mut out);
        assert_eq!(out, [-16384; 4]);
    }

    #[test]
    fn single_element_saturates_to_one() {
        let p = softmax_params(1.0, 0.1).unwrap();
        let mut out = [0i8; 1];
        softmax_row_i8(&p, &[-100], &mut out);
        assert_eq!(out, [127]);
    }

    #[test]
    fn far_below_max_is_zero() {
        let p = softmax_params(1.0, 0.5).unwrap();
        let mut out = [0i8; 3];
        softmax_row_i8(&p, &[127, -128, 127], &mut out);
        assert_eq!(out[1], -128);
        assert_eq!(out[0], 0); // 0.5 * 256 - 128
    }

    #[test]
    fn tracks_float_softmax() {
        let scale = 0.0625f32;
        let p = softmax_params(1.0, scale).unwrap();
        let input: Vec<i8> = (0..40).map(|i| ((i * 37) % 256 - 128) as i8).collect();
        let mut out = vec![0i8; input.len()];
        softmax_row_i8(&p, &input, &mut out);
        let max = *input.iter().max().unwrap() as f64;
        let exps: Vec<f64> = input.iter().map(|&v| ((v as f64 - max) * scale as f64).exp()).collect();
        let sum: f64 = exps.iter().sum();
        for (o, e) in out.iter().zip(&exps) {
            let want = (e / sum * 256.0).round() - 128.0;
            assert!((*o as f64 - want.min(127.0)).abs() <= 1.0, "{o} vs {want}");
        }
    }

    #[test]
    fn very_long_row_does_not_panic() {
        let p = softmax_params(1.0, 0.1).unwrap();
        let input = vec![3i8; 3000];
        let mut out = vec![0i8; 3000];
        softmax_row_i8(&p, &input, &mut out);
        assert!(out.iter().all(|&v| v == -128));
    }

    #[test]
    fn wide_divide_matches_narrow() {
        for x in [-7, -6, -5, 0, 5, 6, 7, i32::MAX, i32::MIN] {
            for e in 0..=31 {
                assert_eq!(rounding_divide_by_pot_wide(x, e), super::super::multiplier::rounding_divide_by_pot(x, e));
            }
            assert_eq!(rounding_divide_by_pot_wide(x, 40), 0);
        }
        assert_eq!(rounding_divide_by_pot_wide(i32::MIN, 32), -1);
    }

    #[test]
    fn exp_table_layout() {
        let t = softmax_exp_table(0.1, 1.0);
        assert_eq!(t[255], 1.0);
        assert_eq!(t[254], (-0.1f32).exp());
        assert_eq!(t[0], (-0.1f32 * 255.0).exp());
    }
}
