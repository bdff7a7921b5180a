//! Quantised SUM (int8, uint8, int16), as TFLite's reference
//! `QuantizedMeanOrSum` with `compute_sum = true`: the raw values summed in
//! 32 bits over the axes, the input zero point removed `n` times, then one
//! requantisation by `s_in / s_out` (the MEAN multiplier without the `1/n`
//! folding), offset and clamp. With no axes every element is requantised
//! on its own (`n = 1`).

use super::{QType, QuantizedMeanParams};
use crate::quant::multiply_by_quantized_multiplier;
use crate::reference::reduce::{reduce, reduction_count};

/// SUM over `axes` (normalised, repeats allowed); the output layout is that
/// of [`crate::reference::reduce::reduce`]. Parameters are MEAN's: TFLite
/// prepares both ops alike.
pub fn sum_quantized<T: QType>(
    p: &QuantizedMeanParams,
    input: &[T],
    in_shape: &[usize],
    axes: &[usize],
    output: &mut [T],
) {
    let wide: Vec<i32> = input.iter().map(|x| x.to_i32()).collect();
    let mut sums = vec![0i32; output.len()];
    reduce(&wide, in_shape, axes, &mut sums, 0, i32::wrapping_add);
    let n = reduction_count(in_shape, axes) as i64;
    if n == 0 || in_shape.contains(&0) {
        output.iter_mut().for_each(|o| *o = T::default());
        return;
    }
    for (o, &s) in output.iter_mut().zip(&sums) {
        let shifted = (s as i64 - p.input_zero_point as i64 * n) as i32;
        let v = multiply_by_quantized_multiplier(shifted, p.multiplier, p.shift).wrapping_add(p.output_zero_point);
        *o = T::from_i32(v.clamp(T::MIN, T::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_and_requantises() {
        let p = QuantizedMeanParams::new::<i8>(0.5, 1, 1.0, -2).unwrap();
        let mut out = [0i8; 2];
        // Rows (3, 5) and (1, 1): real sums 0.5*(2+4) = 3 and 0.5*(0+0) = 0.
        sum_quantized(&p, &[3i8, 5, 1, 1], &[2, 2], &[1], &mut out);
        assert_eq!(out, [1, -2]);
        // 0.5 * 126 * 2 = 126, + (-2) = 124; three such terms saturate.
        sum_quantized(&p, &[127i8, 127, 127, 127], &[2, 2], &[1], &mut out);
        assert_eq!(out, [124, 124]);
        let mut one = [0i8; 1];
        sum_quantized(&p, &[127i8, 127, 127], &[3], &[0], &mut one);
        assert_eq!(one, [127]);
    }
}
