//! L2_NORMALIZATION over the last axis: the float reference and TFLite's
//! int8 / uint8 fixed-point kernels.

use crate::quant::multiplier::{
    multiply_by_quantized_multiplier, multiply_by_quantized_multiplier_smaller_than_one_exp,
};
use crate::reference::quantized::arith::inv_sqrt_quantized_multiplier_exp;
use crate::reference::quantized::QType;

/// Divide each row of `depth` values by its L2 norm.
///
/// TFLite's reference computes `norm = max(sqrt(sum x²), epsilon)` (epsilon
/// applied after the square root; the TFLite op uses 1e-6) and writes
/// `x / norm`, so an all-zero row stays zero instead of becoming NaN.
pub fn l2_normalize_f32(input: &[f32], output: &mut [f32], outer: usize, depth: usize, epsilon: f32) {
    if depth == 0 {
        return;
    }
    for (row_in, row_out) in input.chunks_exact(depth).zip(output.chunks_exact_mut(depth)).take(outer) {
        let mut sum_sq = 0.0f32;
        for &x in row_in {
            sum_sq += x * x;
        }
        let norm = sum_sq.sqrt();
        // std::max(norm, epsilon): keeps norm unless norm < epsilon (NaN stays).
        let norm = if norm < epsilon { epsilon } else { norm };
        for (o, &x) in row_out.iter_mut().zip(row_in) {
            *o = x / norm;
        }
    }
}

/// int8 L2_NORMALIZATION (TFLite's `reference_integer_ops`): per row,
/// the squared norm of `x - zero_point` in int32, its inverse square root
/// as a multiplier and shift (`GetInvSqrtQuantizedMultiplierExp`), each
/// value rescaled by it with 7 more bits (the output is fixed at scale
/// 1/128, zero point 0) and clamped to int8.
pub fn l2_normalize_i8(input: &[i8], output: &mut [i8], outer: usize, depth: usize, zero_point: i32) {
    l2_rows(input, output, outer, depth, zero_point, |d, m, s| {
        multiply_by_quantized_multiplier(d, m, s + 7).clamp(-128, 127) as i8
    })
}

/// uint8 L2_NORMALIZATION (TFLite's `reference_ops`): as
/// [`l2_normalize_i8`], the value rescaled as `128 * (x - zero_point)`
/// by the smaller-than-one form, plus the output zero point 128, clamped
/// to uint8.
pub fn l2_normalize_u8(input: &[u8], output: &mut [u8], outer: usize, depth: usize, zero_point: i32) {
    l2_rows(input, output, outer, depth, zero_point, |d, m, s| {
        let v = multiply_by_quantized_multiplier_smaller_than_one_exp(d.wrapping_mul(128), m, s);
        v.wrapping_add(128).clamp(0, 255) as u8
    })
}

/// The shared row walk: `rescale(x - zero_point, multiplier, shift)`.
fn l2_rows<T: QType, O>(
    input: &[T],
    output: &mut [O],
    outer: usize,
    depth: usize,
    zero_point: i32,
    rescale: impl Fn(i32, i32, i32) -> O,
) {
    if depth == 0 {
        return;
    }
    for (row_in, row_out) in input.chunks_exact(depth).zip(output.chunks_exact_mut(depth)).take(outer) {
        let sum_sq = row_in.iter().fold(0i32, |acc, &x| {
            let d = x.to_i32() - zero_point;
            acc.wrapping_add(d * d)
        });
        let (m, s) = inv_sqrt_quantized_multiplier_exp(sum_sq, -1);
        for (o, &x) in row_out.iter_mut().zip(row_in) {
            *o = rescale(x.to_i32() - zero_point, m, s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantized_rows_are_unit_length() {
        // int8: [3, 4] about zero point -5 has norm 5, so 3/5 and 4/5 in
        // units of 1/128: 76.8 and 102.4; a zero row stays zero.
        let x = [-2i8, -1, -5, -5];
        let mut y = [9i8; 4];
        l2_normalize_i8(&x, &mut y, 2, 2, -5);
        assert!((y[0] as i32 - 77).abs() <= 1 && (y[1] as i32 - 102).abs() <= 1, "{y:?}");
        assert_eq!(&y[2..], &[0, 0]);
        // A single value is +-1, saturating at 127/128 for +1.
        let mut y = [0i8; 2];
        l2_normalize_i8(&[100, -100], &mut y, 2, 1, 0);
        assert_eq!(y, [127, -128]);
        // uint8: the same rows about zero point 120, output zero point 128.
        let x = [123u8, 124, 120, 120];
        let mut y = [9u8; 4];
        l2_normalize_u8(&x, &mut y, 2, 2, 120);
        assert!((y[0] as i32 - 205).abs() <= 1 && (y[1] as i32 - 230).abs() <= 1, "{y:?}");
        assert_eq!(&y[2..], &[128, 128]);
    }

    #[test]
    fn rows_are_normalised() {
        // [3, 4] has norm 5; [0, 0] stays 0; [-2, 0] -> [-1, 0].
        let x = [3.0f32, 4.0, 0.0, 0.0, -2.0, 0.0];
        let mut o = [9.0f32; 6];
        l2_normalize_f32(&x, &mut o, 3, 2, 1e-6);
        assert_eq!(o, [0.6, 0.8, 0.0, 0.0, -1.0, 0.0]);
    }

    #[test]
    fn epsilon_applies_after_sqrt() {
        // sum of squares 1e-8, sqrt 1e-4 < epsilon 1e-2: divide by 1e-2.
        let x = [1e-4f32];
        let mut o = [0.0f32];
        l2_normalize_f32(&x, &mut o, 1, 1, 1e-2);
        assert!((o[0] - 1e-2).abs() < 1e-8, "{}", o[0]);
    }
}
