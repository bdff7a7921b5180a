//! Comparisons (LESS ... NOT_EQUAL) and logical ops (LOGICAL_AND / OR /
//! NOT), with numpy broadcasting.
//!
//! Booleans are one byte each, as in .tflite: results are written as 0 or
//! 1, and any non-zero input byte counts as true.

use super::elementwise::broadcast_binary;
use crate::quant::{multiply_by_quantized_multiplier_smaller_than_one_exp, quantize_multiplier_smaller_than_one_exp};

/// Which comparison to apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comparison {
    Less,
    LessEqual,
    Greater,
    GreaterEqual,
    Equal,
    NotEqual,
}

impl Comparison {
    /// The comparison on one pair (IEEE semantics for floats: any
    /// comparison with NaN is false except `NotEqual`).
    #[inline]
    pub fn test<T: PartialOrd>(self, a: T, b: T) -> bool {
        match self {
            Comparison::Less => a < b,
            Comparison::LessEqual => a <= b,
            Comparison::Greater => a > b,
            Comparison::GreaterEqual => a >= b,
            Comparison::Equal => a == b,
            Comparison::NotEqual => a != b,
        }
    }
}

/// Compare `a` and `b` broadcast to `out_shape`, writing 0/1 bytes.
pub fn compare<T: Copy + PartialOrd>(
    op: Comparison,
    a: &[T],
    a_shape: &[usize],
    b: &[T],
    b_shape: &[usize],
    out: &mut [u8],
    out_shape: &[usize],
) {
    broadcast_binary(a, a_shape, b, b_shape, out, out_shape, |x, y| op.test(x, y) as u8);
}

/// Compare two bool tensors (only `Equal` / `NotEqual` make sense, but any
/// comparison works on the 0/1 values).
pub fn compare_bool(
    op: Comparison,
    a: &[u8],
    a_shape: &[usize],
    b: &[u8],
    b_shape: &[usize],
    out: &mut [u8],
    out_shape: &[usize],
) {
    broadcast_binary(a, a_shape, b, b_shape, out, out_shape, |x, y| op.test(x != 0, y != 0) as u8);
}

/// How TFLite brings two quantised operands to a common scale before
/// comparing them: each value gets its offset, is shifted left by 8 bits and
/// multiplied by its own scale as a fixed-point multiplier below one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuantizedCompareParams {
    pub offset1: i32,
    pub multiplier1: i32,
    pub shift1: i32,
    pub offset2: i32,
    pub multiplier2: i32,
    pub shift2: i32,
}

/// Bits each offset value is shifted left by before scaling.
const COMPARE_LEFT_SHIFT: i32 = 8;

impl QuantizedCompareParams {
    /// Parameters for inputs with these scales and zero points; `None` when
    /// a scale is not strictly between 0 and 1 (TFLite aborts there).
    pub fn new(scale1: f32, zero_point1: i32, scale2: f32, zero_point2: i32) -> Option<QuantizedCompareParams> {
        let (multiplier1, shift1) = quantize_multiplier_smaller_than_one_exp(scale1 as f64)?;
        let (multiplier2, shift2) = quantize_multiplier_smaller_than_one_exp(scale2 as f64)?;
        Some(QuantizedCompareParams {
            offset1: zero_point1.wrapping_neg(),
            multiplier1,
            shift1,
            offset2: zero_point2.wrapping_neg(),
            multiplier2,
            shift2,
        })
    }

    #[inline]
    fn scale1(&self, q: i32) -> i32 {
        let shifted = self.offset1.wrapping_add(q).wrapping_mul(1 << COMPARE_LEFT_SHIFT);
        multiply_by_quantized_multiplier_smaller_than_one_exp(shifted, self.multiplier1, self.shift1)
    }

    #[inline]
    fn scale2(&self, q: i32) -> i32 {
        let shifted = self.offset2.wrapping_add(q).wrapping_mul(1 << COMPARE_LEFT_SHIFT);
        multiply_by_quantized_multiplier_smaller_than_one_exp(shifted, self.multiplier2, self.shift2)
    }
}

/// Compare quantised int8/uint8 operands after TFLite's rescaling.
#[allow(clippy::too_many_arguments)]
pub fn compare_quantized<T: Copy + Into<i32>>(
    op: Comparison,
    p: &QuantizedCompareParams,
    a: &[T],
    a_shape: &[usize],
    b: &[T],
    b_shape: &[usize],
    out: &mut [u8],
    out_shape: &[usize],
) {
    broadcast_binary(a, a_shape, b, b_shape, out, out_shape, |x, y| {
        op.test(p.scale1(x.into()), p.scale2(y.into())) as u8
    });
}

/// LOGICAL_AND with broadcasting.
pub fn logical_and(a: &[u8], a_shape: &[usize], b: &[u8], b_shape: &[usize], out: &mut [u8], out_shape: &[usize]) {
    broadcast_binary(a, a_shape, b, b_shape, out, out_shape, |x, y| (x != 0 && y != 0) as u8);
}

/// LOGICAL_OR with broadcasting.
pub fn logical_or(a: &[u8], a_shape: &[usize], b: &[u8], b_shape: &[usize], out: &mut [u8], out_shape: &[usize]) {
    broadcast_binary(a, a_shape, b, b_shape, out, out_shape, |x, y| (x != 0 || y != 0) as u8);
}

/// LOGICAL_NOT.
pub fn logical_not(input: &[u8], out: &mut [u8]) {
    for (o, &x) in out.iter_mut().zip(input) {
        *o = (x == 0) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_comparisons_broadcast_a_row() {
        let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [2.0f32, 5.0, 3.0];
        let mut out = [0u8; 6];
        compare(Comparison::Less, &a, &[2, 3], &b, &[3], &mut out, &[2, 3]);
        assert_eq!(out, [1, 1, 0, 0, 0, 0]);
        compare(Comparison::GreaterEqual, &a, &[2, 3], &b, &[3], &mut out, &[2, 3]);
        assert_eq!(out, [0, 0, 1, 1, 1, 1]);
        compare(Comparison::Equal, &a, &[2, 3], &b, &[3], &mut out, &[2, 3]);
        assert_eq!(out, [0, 0, 1, 0, 1, 0]);
        compare(Comparison::NotEqual, &a, &[2, 3], &b, &[3], &mut out, &[2, 3]);
        assert_eq!(out, [1, 1, 0, 1, 0, 1]);
        compare(Comparison::LessEqual, &a, &[2, 3], &b, &[3], &mut out, &[2, 3]);
        assert_eq!(out, [1, 1, 1, 0, 1, 0]);
        compare(Comparison::Greater, &a, &[2, 3], &b, &[3], &mut out, &[2, 3]);
        assert_eq!(out, [0, 0, 0, 1, 0, 1]);
    }

    #[test]
    fn nan_is_only_not_equal() {
        let mut out = [9u8; 1];
        for (op, want) in [
            (Comparison::Less, 0),
            (Comparison::LessEqual, 0),
            (Comparison::Greater, 0),
            (Comparison::GreaterEqual, 0),
            (Comparison::Equal, 0),
            (Comparison::NotEqual, 1),
        ] {
            compare(op, &[f32::NAN], &[], &[1.0f32], &[], &mut out, &[]);
            assert_eq!(out[0], want, "{op:?}");
        }
    }

    #[test]
    fn column_against_row() {
        // [2,1] vs [1,3] -> [2,3]
        let a = [1i32, 5];
        let b = [0i32, 1, 5];
        let mut out = [0u8; 6];
        compare(Comparison::Greater, &a, &[2, 1], &b, &[1, 3], &mut out, &[2, 3]);
        assert_eq!(out, [1, 0, 0, 1, 1, 0]);
    }

    #[test]
    fn bools_compare_by_truth() {
        let mut out = [0u8; 4];
        compare_bool(Comparison::Equal, &[0, 1, 2, 0], &[4], &[0, 1, 1, 1], &[4], &mut out, &[4]);
        assert_eq!(out, [1, 1, 1, 0]);
    }

    #[test]
    fn quantized_rescales_both_sides() {
        // a: scale 0.5, zp 0 -> 4 means 2.0; b: scale 0.25, zp 2 -> 10 means 2.0.
        let p = QuantizedCompareParams::new(0.5, 0, 0.25, 2).unwrap();
        let a = [4i8, 4, 4];
        let b = [10i8, 9, 11];
        let mut out = [0u8; 3];
        compare_quantized(Comparison::Equal, &p, &a, &[3], &b, &[3], &mut out, &[3]);
        assert_eq!(out, [1, 0, 0]);
        compare_quantized(Comparison::Greater, &p, &a, &[3], &b, &[3], &mut out, &[3]);
        assert_eq!(out, [0, 1, 0]);
        // A raw comparison would have said 4 < 10 everywhere.
        compare_quantized(Comparison::Less, &p, &a, &[3], &b, &[3], &mut out, &[3]);
        assert_eq!(out, [0, 0, 1]);
        assert!(QuantizedCompareParams::new(1.5, 0, 0.5, 0).is_none());
    }

    #[test]
    fn logical_ops() {
        let mut out = [0u8; 4];
        logical_and(&[0, 1, 1, 0], &[4], &[1], &[1], &mut out, &[4]);
        assert_eq!(out, [0, 1, 1, 0]);
        logical_or(&[0, 1], &[2, 1], &[0, 1], &[1, 2], &mut out, &[2, 2]);
        assert_eq!(out, [0, 1, 1, 1]);
        logical_not(&[0, 1, 7, 0], &mut out);
        assert_eq!(out, [1, 0, 0, 1]);
    }
}
