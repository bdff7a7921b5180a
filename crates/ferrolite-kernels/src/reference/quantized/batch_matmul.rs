//! Quantised BATCH_MATMUL (int8, and int16 with zero points of 0), as
//! TFLite's `reference_ops::BatchMatMul` with `FullyConnectedParams`.
//!
//! Each output element is the exact integer sum of
//! `(lhs - lhs_zp) * (rhs - rhs_zp)` over the inner dimension (i32 for
//! int8, i64 for int16), requantised once with the per-tensor multiplier
//! `s_lhs * s_rhs / s_out` (the product in f32, as
//! `GetQuantizedConvolutionMultipler`), offset and clamped to the type.
//! Being exact integer sums, the order TFLite visits operands in does not
//! matter.

use super::QType;
use crate::quant::{
    multiply_by_quantized_multiplier, multiply_by_quantized_multiplier_i64, per_tensor_conv_multiplier,
    quantize_multiplier,
};

#[derive(Clone, Copy, Debug)]
pub struct BatchMatmulParams {
    pub lhs_zero_point: i32,
    pub rhs_zero_point: i32,
    pub output_zero_point: i32,
    pub multiplier: i32,
    pub shift: i32,
}

impl BatchMatmulParams {
    /// `None` for scales TFLite cannot use.
    pub fn new(lhs_scale: f32, lhs_zp: i32, rhs_scale: f32, rhs_zp: i32, out_scale: f32, out_zp: i32) -> Option<Self> {
        let ok = |s: f32| s.is_finite() && s > 0.0;
        if !ok(lhs_scale) || !ok(rhs_scale) || !ok(out_scale) {
            return None;
        }
        let real = per_tensor_conv_multiplier(lhs_scale, rhs_scale, out_scale);
        if !real.is_finite() || real <= 0.0 {
            return None;
        }
        let (multiplier, shift) = quantize_multiplier(real);
        Some(BatchMatmulParams {
            lhs_zero_point: lhs_zp,
            rhs_zero_point: rhs_zp,
            output_zero_point: out_zp,
            multiplier,
            shift,
        })
    }
}

/// Accumulation and requantisation per element type.
pub trait BatchMatmulQ: QType {
    fn requantize(total: i64, p: &BatchMatmulParams) -> i32;
}

impl BatchMatmulQ for i8 {
    #[inline]
    fn requantize(total: i64, p: &BatchMatmulParams) -> i32 {
        // TFLite accumulates int8 products in int32 (wrapping if it overflows).
        multiply_by_quantized_multiplier(total as i32, p.multiplier, p.shift)
    }
}

impl BatchMatmulQ for i16 {
    #[inline]
    fn requantize(total: i64, p: &BatchMatmulParams) -> i32 {
        multiply_by_quantized_multiplier_i64(total, p.multiplier, p.shift.clamp(-31, 7))
    }
}

/// `out[..., i, j] = requant(sum_k op(lhs)[..., i, k] * op(rhs)[..., k, j])`
/// with the batch dimensions broadcast numpy-style; `op` transposes the
/// last two dimensions when `adj_x` / `adj_y` is set. `out_shape` is the
/// broadcast batch shape followed by `[rows, cols]`. Shapes the caller has
/// not validated (rank below 2, short buffers) leave the output untouched.
#[allow(clippy::too_many_arguments)]
pub fn batch_matmul_quantized<T: BatchMatmulQ>(
    p: &BatchMatmulParams,
    lhs: &[T],
    lhs_shape: &[usize],
    rhs: &[T],
    rhs_shape: &[usize],
    adj_x: bool,
    adj_y: bool,
    out: &mut [T],
    out_shape: &[usize],
) {
    let (lr, rr, or) = (lhs_shape.len(), rhs_shape.len(), out_shape.len());
    if lr < 2 || rr < 2 || or < 2 {
        return;
    }
    let (l_r, l_c) = (lhs_shape[lr - 2], lhs_shape[lr - 1]);
    let (r_r, r_c) = (rhs_shape[rr - 2], rhs_shape[rr - 1]);
    let (m, depth) = if adj_x { (l_c, l_r) } else { (l_r, l_c) };
    let n = if adj_y { r_r } else { r_c };
    let (li, lk) = if adj_x { (1, l_c) } else { (l_c, 1) };
    let (rk, rj) = if adj_y { (1, r_c) } else { (r_c, 1) };
    let (lhs_mat, rhs_mat, out_mat) = (l_r * l_c, r_r * r_c, m * n);
    let batch_shape = &out_shape[..or - 2];
    let batches: usize = batch_shape.iter().product();
    if out.len() < batches * out_mat {
        return;
    }
    // Matrix index of an operand for an output batch index, broadcasting
    // size-1 (and missing leading) dimensions.
    let operand_index = |b: usize, shape: &[usize]| -> usize {
        let dims = &shape[..shape.len() - 2];
        let mut rem = b;
        let mut idx = 0usize;
        let mut stride = 1usize;
        for (d, &od) in batch_shape.iter().enumerate().rev() {
            let coord = rem % od.max(1);
            rem /= od.max(1);
            let back = batch_shape.len() - 1 - d;
            if back < dims.len() {
                let sd = dims[dims.len() - 1 - back];
                if sd != 1 {
                    idx += coord * stride;
                }
                stride *= sd;
            }
        }
        idx
    };
    let (zl, zr, zo) = (p.lhs_zero_point as i64, p.rhs_zero_point as i64, p.output_zero_point);
    for b in 0..batches {
        let (lb, rb) = (operand_index(b, lhs_shape), operand_index(b, rhs_shape));
        let (Some(l), Some(r)) = (lhs.get(lb * lhs_mat..(lb + 1) * lhs_mat), rhs.get(rb * rhs_mat..(rb + 1) * rhs_mat))
        else {
            return;
        };
        let o = &mut out[b * out_mat..(b + 1) * out_mat];
        for i in 0..m {
            for j in 0..n {
                let mut total = 0i64;
                for k in 0..depth {
                    total += (l[i * li + k * lk].to_i32() as i64 - zl) * (r[k * rk + j * rj].to_i32() as i64 - zr);
                }
                let v = T::requantize(total, p).wrapping_add(zo);
                o[i * n + j] = T::from_i32(v.clamp(T::MIN, T::MAX));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_product_with_broadcast() {
        let p = BatchMatmulParams::new(1.0, 0, 1.0, 0, 1.0, 0).unwrap();
        // lhs [2, 1, 2], rhs [2, 1] broadcast over the batch.
        let lhs = [1i8, 2, 3, 4];
        let rhs = [5i8, 6];
        let mut out = [0i8; 2];
        batch_matmul_quantized(&p, &lhs, &[2, 1, 2], &rhs, &[2, 1], false, false, &mut out, &[2, 1, 1]);
        assert_eq!(out, [17, 39]);
        // adj_x on a [1, 2, 1] lhs gives the same row.
        let mut out1 = [0i8; 1];
        batch_matmul_quantized(&p, &[1i8, 2], &[1, 2, 1], &rhs, &[2, 1], true, false, &mut out1, &[1, 1, 1]);
        assert_eq!(out1, [17]);
    }
}
