//! Quantised TRANSPOSE_CONV, bit-exact with TFLite's
//! `reference_integer_ops::TransposeConv` (int8 activations with per-channel
//! int8 weights, int32 accumulator; int16 activations with int8 weights,
//! int64 accumulator).
//!
//! TFLite scatters: a zeroed scratch buffer the size of the output receives
//! `(x + input_offset) * w` from every input element into each output
//! position its window reaches (positions outside the output are skipped);
//! then each scratch value gets the bias added, is requantised with its
//! channel's multiplier, offset by the output zero point and clamped. Integer
//! sums do not depend on the order, so only the set of terms matters.
//!
//! Geometry as [`crate::reference::conv::transpose_conv2d_f32`] (its `clamp`
//! is ignored; the quantised clamp lives in [`ConvQuantParams`], built with
//! [`ConvQuantParams::per_channel`] / [`ConvQuantParams::per_channel_16x8`]
//! as TFLite's `Prepare` uses `PopulateConvolutionQuantizationParams`).

use super::conv::{finish, Accumulator, ConvQuantParams};
use super::QType;
use crate::reference::conv::TransposeConvParams;

/// The scatter-accumulate, shared by the int8 and int16x8 kernels.
#[allow(clippy::too_many_arguments)]
fn transpose_conv_core<I: QType, O: QType, A: Accumulator>(
    p: &TransposeConvParams,
    q: &ConvQuantParams,
    input_offset: i32,
    output_offset: i32,
    input: &[I],
    in_shape: [usize; 4],
    filter: &[i8],
    filter_shape: [usize; 4],
    bias: Option<&[A]>,
    output: &mut [O],
    out_shape: [usize; 4],
    scratch: &mut Vec<A>,
) {
    let [batches, in_h, in_w, in_c] = in_shape;
    let [_, f_h, f_w, f_in] = filter_shape;
    let [_, out_h, out_w, out_c] = out_shape;
    let out_len = batches * out_h * out_w * out_c;
    scratch.clear();
    scratch.resize(out_len, A::ZERO);
    let pos = |origin: isize, k: usize, size: usize| {
        let v = origin + k as isize;
        (v >= 0 && (v as usize) < size).then_some(v as usize)
    };
    for b in 0..batches {
        for iy in 0..in_h {
            let oy0 = (iy * p.stride_h) as isize - p.pad_top as isize;
            for ix in 0..in_w {
                let ox0 = (ix * p.stride_w) as isize - p.pad_left as isize;
                let in_base = ((b * in_h + iy) * in_w + ix) * in_c;
                for ic in 0..in_c.min(f_in) {
                    let x = input[in_base + ic].to_i32() + input_offset;
                    for fy in 0..f_h {
                        let Some(oy) = pos(oy0, fy, out_h) else {
                            continue;
                        };
                        for fx in 0..f_w {
                            let Some(ox) = pos(ox0, fx, out_w) else {
                                continue;
                            };
                            let out_base = ((b * out_h + oy) * out_w + ox) * out_c;
                            for oc in 0..out_c {
                                let w = filter[((oc * f_h + fy) * f_w + fx) * f_in + ic] as i32;
                                let acc = &mut scratch[out_base + oc];
                                *acc = acc.add_product(x.wrapping_mul(w));
                            }
                        }
                    }
                }
            }
        }
    }
    for (i, (o, &acc)) in output[..out_len].iter_mut().zip(scratch.iter()).enumerate() {
        *o = finish(q, acc, bias, i % out_c.max(1), output_offset);
    }
}

/// TRANSPOSE_CONV, int8 activations, per-channel (or per-tensor) int8
/// weights `[out_c, kh, kw, in_c]`, optional int32 bias. `scratch` is the
/// int32 accumulator buffer (resized here; keep one to avoid reallocating).
#[allow(clippy::too_many_arguments)]
pub fn transpose_conv2d_i8(
    p: &TransposeConvParams,
    q: &ConvQuantParams,
    input: &[i8],
    in_shape: [usize; 4],
    filter: &[i8],
    filter_shape: [usize; 4],
    bias: Option<&[i32]>,
    output: &mut [i8],
    out_shape: [usize; 4],
    scratch: &mut Vec<i32>,
) {
    transpose_conv_core(
        p,
        q,
        q.input_offset,
        q.output_offset,
        input,
        in_shape,
        filter,
        filter_shape,
        bias,
        output,
        out_shape,
        scratch,
    );
}

/// TRANSPOSE_CONV, int16 activations (zero points 0) with int8 weights. The
/// accumulator follows the bias type as in the other 16x8 kernels: TFLite's
/// int16 TRANSPOSE_CONV uses an int64 scratch buffer and bias (`A = i64`);
/// `A = i32` serves models with an int32 bias.
#[allow(clippy::too_many_arguments)]
pub fn transpose_conv2d_i16x8<A: Accumulator>(
    p: &TransposeConvParams,
    q: &ConvQuantParams,
    input: &[i16],
    in_shape: [usize; 4],
    filter: &[i8],
    filter_shape: [usize; 4],
    bias: Option<&[A]>,
    output: &mut [i16],
    out_shape: [usize; 4],
    scratch: &mut Vec<A>,
) {
    transpose_conv_core(p, q, 0, 0, input, in_shape, filter, filter_shape, bias, output, out_shape, scratch);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::ClampF32;
    use crate::quant::FusedActivation;
    use crate::reference::conv::transpose_conv2d_f32;
    use crate::reference::quantized::testutil::{deq, off_by, Lcg};

    #[test]
    fn by_hand_stride_two() {
        // 1x1x2x1 input [1, -2] (zero point 0, scale 1), 1x2x2x1... filter
        // [1, kh=1, kw=2, in=1] = [3, 4], stride 2 -> output 1x1x4x1 =
        // [3, 4, -6, -8]; bias 1; output scale 1, zero point 0.
        let p = TransposeConvParams { stride_h: 1, stride_w: 2, pad_top: 0, pad_left: 0, clamp: ClampF32::NONE };
        let q = ConvQuantParams::per_channel(1.0, 0, &[1.0], 1.0, 0, FusedActivation::None, -128, 127).unwrap();
        let mut out = [0i8; 4];
        let mut scratch = Vec::new();
        transpose_conv2d_i8(
            &p,
            &q,
            &[1, -2],
            [1, 1, 2, 1],
            &[3, 4],
            [1, 1, 2, 1],
            Some(&[1]),
            &mut out,
            [1, 1, 4, 1],
            &mut scratch,
        );
        assert_eq!(out, [4, 5, -5, -7]);
    }

    #[test]
    fn close_to_float() {
        let mut rng = Lcg(11);
        for case in 0..30 {
            let (in_h, in_w, in_c, out_c) = (
                1 + rng.range(0, 3) as usize,
                1 + rng.range(0, 3) as usize,
                1 + rng.range(0, 3) as usize,
                1 + rng.range(0, 3) as usize,
            );
            let (f_h, f_w) = (1 + rng.range(0, 2) as usize, 1 + rng.range(0, 2) as usize);
            let stride = 1 + rng.range(0, 1) as usize;
            let pad = rng.range(0, 1) as usize;
            let out_h = (in_h - 1) * stride + f_h - 2 * pad.min((f_h - 1) / 2);
            let out_w = (in_w - 1) * stride + f_w - 2 * pad.min((f_w - 1) / 2);
            let pad_t = pad.min((f_h - 1) / 2);
            let pad_l = pad.min((f_w - 1) / 2);
            let (s_in, z_in, s_out, z_out) = (0.05f32, rng.range(-20, 20), 0.1f32, rng.range(-10, 10));
            let scales: Vec<f32> = (0..out_c).map(|_| rng.float(0.005, 0.02)).collect();
            let input = rng.i8s(in_h * in_w * in_c);
            let filter = rng.i8s(out_c * f_h * f_w * in_c);
            let bias: Vec<i32> = (0..out_c).map(|_| rng.range(-500, 500)).collect();
            let p = TransposeConvParams {
                stride_h: stride,
                stride_w: stride,
                pad_top: pad_t,
                pad_left: pad_l,
                clamp: ClampF32::NONE,
            };
            let q = ConvQuantParams::per_channel(s_in, z_in, &scales, s_out, z_out, FusedActivation::None, -128, 127)
                .unwrap();
            let (is, fs, os) = ([1, in_h, in_w, in_c], [out_c, f_h, f_w, in_c], [1, out_h, out_w, out_c]);
            let mut out = vec![0i8; out_h * out_w * out_c];
            let mut scratch = Vec::new();
            transpose_conv2d_i8(&p, &q, &input, is, &filter, fs, Some(&bias), &mut out, os, &mut scratch);
            let xf: Vec<f32> = input.iter().map(|&v| deq(v as i32, s_in, z_in) as f32).collect();
            let wf: Vec<f32> =
                filter.iter().enumerate().map(|(i, &v)| v as f32 * scales[i / (f_h * f_w * in_c)]).collect();
            let bf: Vec<f32> = bias.iter().enumerate().map(|(c, &b)| b as f32 * s_in * scales[c]).collect();
            let mut want = vec![0f32; out.len()];
            transpose_conv2d_f32(&p, &xf, is, &wf, fs, Some(&bf), &mut want, os);
            for (i, (&g, &w)) in out.iter().zip(&want).enumerate() {
                let d = off_by(g as i32, w as f64, s_out, z_out, -128, 127);
                assert!(d <= 0.51, "case {case} at {i}: {g} vs real {w}");
            }
        }
    }
}
