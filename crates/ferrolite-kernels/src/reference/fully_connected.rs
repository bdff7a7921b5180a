//! FULLY_CONNECTED, float reference.

use crate::activation::ClampF32;

/// `output[b, o] = clamp(sum_d input[b, d] * weights[o, d] + bias[o])`.
///
/// `input` is `batches` rows of `accum_depth` values (the runtime flattens
/// the input tensor to that), `weights` is `[out_units, accum_depth]` as
/// stored in .tflite, `bias` (if any) has `out_units` values, and `output`
/// is `[batches, out_units]`. The dot product is accumulated in f32 from 0
/// in depth order and the bias added afterwards, as in TFLite's reference.
#[allow(clippy::too_many_arguments)]
pub fn fully_connected_f32(
    input: &[f32],
    weights: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
    batches: usize,
    accum_depth: usize,
    out_units: usize,
    clamp: ClampF32,
) {
    for b in 0..batches {
        let row = &input[b * accum_depth..(b + 1) * accum_depth];
        let out_row = &mut output[b * out_units..(b + 1) * out_units];
        for (o, out) in out_row.iter_mut().enumerate() {
            let w = &weights[o * accum_depth..(o + 1) * accum_depth];
            let mut total = 0.0f32;
            for (&x, &wv) in row.iter().zip(w) {
                total += x * wv;
            }
            let bias_value = match bias {
                Some(bv) => bv[o],
                None => 0.0,
            };
            *out = clamp.apply(total + bias_value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_batches_with_bias_and_relu() {
        let input = [1.0f32, 2.0, 3.0, -1.0, 0.0, 1.0];
        // 2 units of depth 3.
        let weights = [1.0f32, 1.0, 1.0, 1.0, -2.0, 0.5];
        let bias = [0.5f32, -1.0];
        let mut out = [0.0f32; 4];
        fully_connected_f32(&input, &weights, Some(&bias), &mut out, 2, 3, 2, ClampF32::NONE);
        // b0: 6+0.5, (1-4+1.5)-1 = -2.5 ; b1: 0+0.5, (-1+0+0.5)-1 = -1.5
        assert_eq!(out, [6.5, -2.5, 0.5, -1.5]);
        fully_connected_f32(&input, &weights, Some(&bias), &mut out, 2, 3, 2, ClampF32::RELU);
        assert_eq!(out, [6.5, 0.0, 0.5, 0.0]);
        fully_connected_f32(&input, &weights, None, &mut out, 2, 3, 2, ClampF32::NONE);
        assert_eq!(out, [6.0, -1.5, 0.0, -0.5]);
    }
}
