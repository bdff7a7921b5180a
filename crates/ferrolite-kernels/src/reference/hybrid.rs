//! Dynamic-range ("hybrid") kernels: float activations, int8 constant
//! weights, with the activations quantised on the fly, an integer dot
//! product, and a float rescale -- TFLite's hybrid FULLY_CONNECTED, CONV_2D,
//! DEPTHWISE_CONV_2D and BATCH_MATMUL (a float input with an int8 filter).
//!
//! This is not "dequantise the weights and run the float kernel": the input
//! is quantised per batch (per row for FULLY_CONNECTED and BATCH_MATMUL, per
//! whole image for the convolutions), the products are summed exactly in
//! `i32`, and only the final sum is scaled back to float. The quantisers and
//! the float steps after the integer sum follow TFLite's code one for one
//! (`tensor_utils::{Symmetric,Asymmetric}QuantizeFloats`,
//! `MatrixBatchVectorMultiplyAccumulate`, `reference_ops::HybridConvPerChannel`,
//! `optimized_ops::HybridConv`, `reference_integer_ops::DepthwiseConvHybridPerChannel`,
//! `reference_ops::BatchMatMul` (hybrid overload)), including the order of the
//! float multiplications, which differs between the kernels:
//!
//! | kernel | output |
//! |---|---|
//! | FULLY_CONNECTED | `bias + f32(acc) * (s_in * s_w[o])` |
//! | CONV_2D per-tensor | `(0 + f32(acc) * (s_in * s_w)) + bias` |
//! | CONV_2D per-channel | `(f32(acc) * s_w[o]) * s_in + bias` |
//! | DEPTHWISE_CONV_2D | `f32(acc) * (s_w[o] * s_in) + bias` |
//! | BATCH_MATMUL | `0 + (s_in * s_w) * f32(acc)` |
//!
//! then the clamp. `acc` is the exact integer sum including the zero-point
//! correction (`sum w * (q - offset)`). Where TFLite's portable code does that
//! correction in float (`row_sum * (float)offset`) we do it in exact integer
//! arithmetic, as TFLite's SSE/NEON kernels do; the two only differ when
//! `|row_sum * offset|` exceeds 2^24. Integer sums wrap on overflow (TFLite's
//! is undefined; sane models cannot reach it).
//!
//! Layouts follow [`super::conv`] and [`super::fully_connected`]: NHWC
//! activations, OHWI conv filters, `[1, kh, kw, out_c]` depthwise filters,
//! `[units, depth]` fully-connected weights.

use super::conv::{tap, Conv2dParams, DepthwiseParams, Window};
use crate::activation::ClampF32;

/// Buffers a hybrid kernel needs between quantising its input and using it.
///
/// Kernels resize the vectors themselves; keep one around and pass it to
/// every call to avoid reallocating. After a call, `quantized`,
/// `scaling_factors` and `offsets` hold the quantised input and the
/// per-batch input scale/zero point (the input scale only -- not yet
/// multiplied by the weight scale); this is useful for tests and debugging.
#[derive(Clone, Debug, Default)]
pub struct HybridScratch {
    pub quantized: Vec<i8>,
    pub scaling_factors: Vec<f32>,
    pub offsets: Vec<i32>,
}

impl HybridScratch {
    pub fn new() -> Self {
        Self::default()
    }

    /// Quantise `batches` rows of `row_len` values each, symmetrically or
    /// asymmetrically (offsets are 0 for symmetric).
    fn quantize_rows(&mut self, input: &[f32], batches: usize, row_len: usize, asymmetric: bool) {
        self.quantized.clear();
        self.quantized.resize(batches * row_len, 0);
        self.scaling_factors.clear();
        self.scaling_factors.resize(batches, 0.0);
        self.offsets.clear();
        self.offsets.resize(batches, 0);
        for b in 0..batches {
            let row = &input[b * row_len..(b + 1) * row_len];
            let q = &mut self.quantized[b * row_len..(b + 1) * row_len];
            if asymmetric {
                let (scale, offset) = asymmetric_quantize_floats(row, q);
                self.scaling_factors[b] = scale;
                self.offsets[b] = offset;
            } else {
                let (_, _, scale) = symmetric_quantize_floats(row, q);
                self.scaling_factors[b] = scale;
            }
        }
    }
}

/// `std::round` on f32 (halves away from zero), then C's float-to-int cast
/// (saturating here; TFLite's is undefined out of range, which the callers'
/// value ranges never reach).
#[inline(always)]
pub(crate) fn round_to_i32(x: f32) -> i32 {
    x.round() as i32
}

/// `std::minmax_element`: the first smallest and the last largest value
/// (`None` for an empty slice). Written with `<` and `!(<)` as the C++ is, so
/// NaNs are treated the same way.
#[allow(clippy::neg_cmp_op_on_partial_ord)]
pub(crate) fn minmax_element(values: &[f32]) -> Option<(f32, f32)> {
    let (&first, rest) = values.split_first()?;
    let (mut min, mut max) = (first, first);
    for &v in rest {
        if v < min {
            min = v;
        }
        if !(v < max) {
            max = v;
        }
    }
    Some((min, max))
}

/// TFLite's `SymmetricQuantizeFloats`: returns `(min, max, scaling_factor)`.
///
/// `range = max(|min|, |max|)`; if it is 0 the output is all zeros and the
/// scaling factor 1. Otherwise `scaling_factor = range / 127` and
/// `out[i] = clamp(round(values[i] * (127 / range)), -127, 127)`, all in f32,
/// rounding halves away from zero. `min`/`max` are those of `values` (0 for
/// an empty slice).
pub fn symmetric_quantize_floats(values: &[f32], out: &mut [i8]) -> (f32, f32, f32) {
    let out = &mut out[..values.len()];
    let Some((min, max)) = minmax_element(values) else {
        return (0.0, 0.0, 1.0);
    };
    let Some((scaling_factor, inv)) = symmetric_params(min, max) else {
        out.fill(0);
        return (min, max, 1.0);
    };
    for (o, &v) in out.iter_mut().zip(values) {
        *o = round_to_i32(v * inv).clamp(-SYMMETRIC_QMAX, SYMMETRIC_QMAX) as i8;
    }
    (min, max, scaling_factor)
}

/// `SymmetricQuantizeFloats` clamps to `-127..=127`.
pub(crate) const SYMMETRIC_QMAX: i32 = 127;

/// The `(scaling_factor, inverse)` that [`symmetric_quantize_floats`]
/// derives from a row's `min` and `max`; `None` when the range is 0 (the
/// row quantises to zeros with scaling factor 1).
pub(crate) fn symmetric_params(min: f32, max: f32) -> Option<(f32, f32)> {
    // std::max(a, b): a unless a < b (f32::max would differ only for NaN).
    let (a, b) = (min.abs(), max.abs());
    let range = if a < b { b } else { a };
    if range == 0.0 {
        return None;
    }
    Some((range / SYMMETRIC_QMAX as f32, SYMMETRIC_QMAX as f32 / range))
}

/// TFLite's `AsymmetricQuantizeFloats`: returns `(scaling_factor, offset)`,
/// with `out[i] ≈ values[i] / scaling_factor + offset` in `-128..=127`.
///
/// The range is widened to include 0 (`rmin = min(0, min)`,
/// `rmax = max(0, max)`, in f64). If `rmin == rmax` (all zeros, or empty)
/// the output is all zeros, scaling factor 1 and offset 0. Otherwise, in
/// f64: `scale = (rmax - rmin) / 255`, the zero point is taken from whichever
/// of `-128 - rmin/scale` and `127 - rmax/scale` has the smaller error
/// (`128 + |rmin/scale|` vs `127 + |rmax/scale|`), clamped to `-128..=127`
/// and rounded half away from zero. The scaling factor is `scale` as f32,
/// its inverse `1.0 / scale_f32` computed in f64 and stored as f32, and
/// `out[i] = clamp(round(offset as f32 + values[i] * inv), -128, 127)` in f32.
pub fn asymmetric_quantize_floats(values: &[f32], out: &mut [i8]) -> (f32, i32) {
    let out = &mut out[..values.len()];
    let (vmin, vmax) = minmax_element(values).unwrap_or((0.0, 0.0));
    let Some((scaling_factor, offset, inv)) = asymmetric_params(vmin, vmax) else {
        out.fill(0);
        return (1.0, 0);
    };
    let offset_f = offset as f32;
    for (o, &v) in out.iter_mut().zip(values) {
        *o = round_to_i32(offset_f + v * inv).clamp(ASYMMETRIC_QMIN, ASYMMETRIC_QMAX) as i8;
    }
    (scaling_factor, offset)
}

/// `AsymmetricQuantizeFloats` clamps to `-128..=127`.
pub(crate) const ASYMMETRIC_QMIN: i32 = -128;
pub(crate) const ASYMMETRIC_QMAX: i32 = 127;

/// The `(scaling_factor, offset, inverse)` that [`asymmetric_quantize_floats`]
/// derives from a row's `min` and `max`; `None` when the range widened to 0
/// is empty (the row quantises to zeros, scaling factor 1, offset 0).
pub(crate) fn asymmetric_params(vmin: f32, vmax: f32) -> Option<(f32, i32, f32)> {
    const K_MIN: i32 = ASYMMETRIC_QMIN;
    const K_MAX: i32 = ASYMMETRIC_QMAX;
    let qmin = K_MIN as f64;
    let qmax = K_MAX as f64;
    // std::fmin(0, x) / std::fmax(0, x) in double (ignoring a NaN argument,
    // as fmin/fmax do, like f64::min/max).
    let rmin = 0f64.min(vmin as f64);
    let rmax = 0f64.max(vmax as f64);
    if rmin == rmax {
        return None;
    }
    let scale = (rmax - rmin) / (qmax - qmin);
    let zero_point_from_min = qmin - rmin / scale;
    let zero_point_from_max = qmax - rmax / scale;
    let zero_point_from_min_error = qmin.abs() + (rmin / scale).abs();
    let zero_point_from_max_error = qmax.abs() + (rmax / scale).abs();
    let zero_point =
        if zero_point_from_min_error < zero_point_from_max_error { zero_point_from_min } else { zero_point_from_max };
    let offset = if zero_point <= qmin {
        K_MIN
    } else if zero_point >= qmax {
        K_MAX
    } else {
        zero_point.round() as i32
    };
    let scaling_factor = scale as f32;
    let inv = (1.0f64 / scaling_factor as f64) as f32;
    Some((scaling_factor, offset, inv))
}

/// Weight scale of output channel / row `i`: one scale for all, or one each.
#[inline(always)]
fn scale_at(scales: &[f32], i: usize) -> f32 {
    if scales.len() == 1 {
        scales[0]
    } else {
        scales[i]
    }
}

/// Exact `sum_k w[k] * q[k]` in wrapping i32.
#[inline(always)]
fn dot_i8(w: &[i8], q: &[i8]) -> i32 {
    w.iter().zip(q).fold(0i32, |acc, (&a, &b)| acc.wrapping_add(a as i32 * b as i32))
}

/// Hybrid FULLY_CONNECTED (TFLite `EvalHybridDense`).
///
/// - `input`: `batches` rows of `accum_depth` floats.
/// - `weights`: `[out_units, accum_depth]` int8, zero point 0.
/// - `weight_scales`: 1 value (per-tensor) or `out_units` values (per-channel,
///   quantized dimension 0).
/// - `bias`: `out_units` floats or none; `output`: `[batches, out_units]`.
/// - `asymmetric`: the op's `asymmetric_quantize_inputs`.
///
/// Steps, as TFLite: the output is set to the bias (or 0). If the *whole*
/// input is zero, only the clamp is applied. Otherwise each batch row is
/// quantised (symmetric, or asymmetric giving `offset`), and for each unit
/// `acc = sum_d w[o,d] * q[b,d] - row_sum(w[o]) * offset` (exact i32) and
/// `out = out + f32(acc) * (s_in[b] * s_w[o])`; then the clamp.
///
/// (TFLite folds a per-tensor weight scale into `s_in[b]` beforehand and
/// multiplies a per-channel one in per row; both are the same single f32
/// product. TFLite's portable -- non-SSE/NEON -- code ignores per-channel
/// scales when `asymmetric` is false; we apply them, as its SSE code does.)
#[allow(clippy::too_many_arguments)]
pub fn fully_connected_hybrid(
    input: &[f32],
    weights: &[i8],
    weight_scales: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
    batches: usize,
    accum_depth: usize,
    out_units: usize,
    asymmetric: bool,
    clamp: ClampF32,
    scratch: &mut HybridScratch,
) {
    let output = &mut output[..batches * out_units];
    for (i, out) in output.iter_mut().enumerate() {
        *out = bias.map_or(0.0, |bv| bv[i % out_units]);
    }
    let input = &input[..batches * accum_depth];
    // IsZeroVector: `!= 0.0f`, so -0.0 counts as zero.
    if input.iter().all(|&v| v == 0.0) {
        for out in output.iter_mut() {
            *out = clamp.apply(*out);
        }
        return;
    }
    scratch.quantize_rows(input, batches, accum_depth, asymmetric);
    let row_sums: Vec<i32> = if asymmetric {
        (0..out_units)
            .map(|o| {
                weights[o * accum_depth..(o + 1) * accum_depth].iter().fold(0i32, |s, &w| s.wrapping_add(w as i32))
            })
            .collect()
    } else {
        Vec::new()
    };
    for b in 0..batches {
        let q = &scratch.quantized[b * accum_depth..(b + 1) * accum_depth];
        let s_in = scratch.scaling_factors[b];
        let offset = scratch.offsets[b];
        let out_row = &mut output[b * out_units..(b + 1) * out_units];
        for (o, out) in out_row.iter_mut().enumerate() {
            let w = &weights[o * accum_depth..(o + 1) * accum_depth];
            let mut acc = dot_i8(w, q);
            if asymmetric {
                acc = acc.wrapping_sub(row_sums[o].wrapping_mul(offset));
            }
            let scale = s_in * scale_at(weight_scales, o);
            *out += acc as f32 * scale;
        }
    }
    for out in output.iter_mut() {
        *out = clamp.apply(*out);
    }
}

/// Hybrid CONV_2D with one weight scale (TFLite `EvalHybrid` +
/// `optimized_ops::HybridConv`, which TFLite uses for every kernel type).
///
/// Shapes as [`super::conv::conv2d_f32`] (`groups == 1`; TFLite sends grouped
/// hybrid convs to [`conv2d_hybrid_per_channel`]). TFLite takes this path when
/// the filter has one scale (or several equal ones -- beware: TFLite then
/// reads the legacy per-tensor scale, which is 0 for a multi-scale tensor).
///
/// Each batch image (`in_h * in_w * in_c` values) is quantised
/// symmetrically; `s = s_in[b] * filter_scale` (f32), padding taps count as
/// zero, and `out = clamp((0 + f32(acc) * s) + bias)`.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_hybrid(
    p: &Conv2dParams,
    input: &[f32],
    in_shape: [usize; 4],
    filter: &[i8],
    filter_shape: [usize; 4],
    filter_scale: f32,
    bias: Option<&[f32]>,
    output: &mut [f32],
    out_shape: [usize; 4],
    scratch: &mut HybridScratch,
) {
    let [batches, in_h, in_w, in_c] = in_shape;
    let image = in_h * in_w * in_c;
    scratch.quantize_rows(input, batches, image, false);
    let scales: Vec<f32> = scratch.scaling_factors.iter().map(|&s| s * filter_scale).collect();
    let finish = |b: usize, oc: usize, acc: i32| {
        let prod = 0.0f32 + acc as f32 * scales[b];
        let v = match bias {
            Some(bv) => prod + bv[oc],
            None => prod,
        };
        p.clamp.apply(v)
    };
    conv_int(p, &scratch.quantized, &[], in_shape, filter, filter_shape, output, out_shape, finish);
}

/// Hybrid CONV_2D with per-output-channel weight scales (TFLite
/// `EvalHybridPerChannel` + `reference_ops::HybridConvPerChannel`).
///
/// Shapes as [`super::conv::conv2d_f32`], grouped convolution included.
/// `filter_scales` has `out_c` values (or 1, broadcast). TFLite takes this
/// path when the filter's scales are not all equal, or for grouped convs.
///
/// Each batch image is quantised asymmetrically (scale `s_in[b]`, offset
/// `z[b]`); `acc = sum w * (q - z[b])` over in-image taps (padding
/// contributes nothing), and `out = clamp((f32(acc) * s_w[oc]) * s_in[b] + bias)`.
///
/// TFLite's optimized kernel (the default one) computes the same `acc` but
/// scales as `f32(acc) * (s_w[oc] * s_in[b]) + bias`, which can differ in the
/// last bit.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_hybrid_per_channel(
    p: &Conv2dParams,
    input: &[f32],
    in_shape: [usize; 4],
    filter: &[i8],
    filter_shape: [usize; 4],
    filter_scales: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
    out_shape: [usize; 4],
    scratch: &mut HybridScratch,
) {
    let [batches, in_h, in_w, in_c] = in_shape;
    let image = in_h * in_w * in_c;
    scratch.quantize_rows(input, batches, image, true);
    let s_in = &scratch.scaling_factors;
    let finish = |b: usize, oc: usize, acc: i32| {
        // `acc * per_channel_scale * scaling_factor`, left to right.
        let mut v = acc as f32 * scale_at(filter_scales, oc) * s_in[b];
        if let Some(bv) = bias {
            v += bv[oc];
        }
        p.clamp.apply(v)
    };
    conv_int(p, &scratch.quantized, &scratch.offsets, in_shape, filter, filter_shape, output, out_shape, finish);
}

/// Integer convolution core shared by the two hybrid CONV_2Ds:
/// `acc = sum w * (q - offset[b])` over in-image taps (offsets empty: 0),
/// then `finish(batch, out_channel, acc)` gives the output value.
#[allow(clippy::too_many_arguments)]
fn conv_int(
    p: &Conv2dParams,
    q: &[i8],
    offsets: &[i32],
    in_shape: [usize; 4],
    filter: &[i8],
    filter_shape: [usize; 4],
    output: &mut [f32],
    out_shape: [usize; 4],
    finish: impl Fn(usize, usize, i32) -> f32,
) {
    let [_, _, _, in_c] = in_shape;
    let [_, f_h, f_w, f_in] = filter_shape;
    let [_, out_h, out_w, out_c] = out_shape;
    let groups = in_c.checked_div(f_in).unwrap_or(1).max(1);
    let per_group = (out_c / groups).max(1);
    let taps_per_filter = f_h * f_w;
    Window::conv(p, f_h, f_w).for_each_output(in_shape, out_shape, |pix, taps| {
        let b = pix / (out_h * out_w).max(1);
        let offset = offsets.get(b).copied().unwrap_or(0);
        for oc in 0..out_c {
            let in_c_base = (oc / per_group) * f_in;
            let mut acc = 0i32;
            for t in taps {
                let i = t.pixel * in_c + in_c_base;
                let f = (oc * taps_per_filter + t.index) * f_in;
                for (&x, &w) in q[i..i + f_in].iter().zip(&filter[f..f + f_in]) {
                    acc = acc.wrapping_add((w as i32).wrapping_mul(x as i32 - offset));
                }
            }
            output[pix * out_c + oc] = finish(b, oc, acc);
        }
    });
}

/// Hybrid DEPTHWISE_CONV_2D (TFLite `EvalHybridPerChannel` +
/// `reference_integer_ops::DepthwiseConvHybridPerChannel`; TFLite has no
/// per-tensor hybrid depthwise path).
///
/// Shapes as [`super::conv::depthwise_conv2d_f32`]; `filter_scales` has
/// `out_c` values (or 1, broadcast). Each batch image is quantised
/// asymmetrically; `acc = sum w * (q - z[b])` over in-image taps, and
/// `out = clamp(f32(acc) * (s_w[oc] * s_in[b]) + bias)`.
///
/// TFLite's optimized kernel (the default one) scales as
/// `(f32(acc) * s_in[b]) * s_w[oc] + bias` instead, which can differ in the
/// last bit.
#[allow(clippy::too_many_arguments)]
pub fn depthwise_conv2d_hybrid_per_channel(
    p: &DepthwiseParams,
    input: &[f32],
    in_shape: [usize; 4],
    filter: &[i8],
    filter_shape: [usize; 4],
    filter_scales: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
    out_shape: [usize; 4],
    scratch: &mut HybridScratch,
) {
    let [batches, in_h, in_w, in_c] = in_shape;
    let [_, f_h, f_w, f_c] = filter_shape;
    let [_, out_h, out_w, out_c] = out_shape;
    let dm = p.depth_multiplier;
    scratch.quantize_rows(input, batches, in_h * in_w * in_c, true);
    let q = &scratch.quantized;
    Window::depthwise(p, f_h, f_w).for_each_output(in_shape, out_shape, |pix, taps| {
        let b = pix / (out_h * out_w).max(1);
        let (offset, s_in) = (scratch.offsets[b], scratch.scaling_factors[b]);
        for oc in 0..out_c.min(in_c * dm) {
            let ic = oc / dm;
            let mut acc = 0i32;
            for t in taps {
                let x = q[t.pixel * in_c + ic] as i32;
                let w = filter[t.index * f_c + oc] as i32;
                acc = acc.wrapping_add(w.wrapping_mul(x - offset));
            }
            let mut v = acc as f32;
            v *= scale_at(filter_scales, oc) * s_in;
            if let Some(bv) = bias {
                v += bv[oc];
            }
            output[pix * out_c + oc] = p.clamp.apply(v);
        }
    });
}

/// Hybrid TRANSPOSE_CONV: float input, int8 filter `[out_c, kh, kw, in_c]`
/// with one scale per output channel (or 1, broadcast). LiteRT runs these
/// (TFLite dynamic-range models keep the int8 filter) by quantising each
/// batch image asymmetrically (scale `s_in[b]`, offset `z[b]`), scattering
/// the exact integer products `w * (q - z[b])` into an i32 buffer the size
/// of the output exactly as the float kernel scatters, and finishing with
/// `clamp((f32(acc) * s_w[oc]) * s_in[b] + bias)`. (Checked against LiteRT's
/// reference outputs; this is not "dequantise the filter and run the float
/// kernel", which differs by whole quantisation steps of the input.)
///
/// Geometry as [`super::conv::transpose_conv2d_f32`].
#[allow(clippy::too_many_arguments)]
pub fn transpose_conv2d_hybrid_per_channel(
    p: &super::conv::TransposeConvParams,
    input: &[f32],
    in_shape: [usize; 4],
    filter: &[i8],
    filter_shape: [usize; 4],
    filter_scales: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
    out_shape: [usize; 4],
    scratch: &mut HybridScratch,
) {
    let [batches, in_h, in_w, in_c] = in_shape;
    let [_, f_h, f_w, f_in] = filter_shape;
    let [_, out_h, out_w, out_c] = out_shape;
    scratch.quantize_rows(input, batches, in_h * in_w * in_c, true);
    let out_len = batches * out_h * out_w * out_c;
    let mut acc = vec![0i32; out_len];
    for b in 0..batches {
        let offset = scratch.offsets[b];
        for iy in 0..in_h {
            let oy0 = (iy * p.stride_h) as isize - p.pad_top as isize;
            for ix in 0..in_w {
                let ox0 = (ix * p.stride_w) as isize - p.pad_left as isize;
                let in_base = ((b * in_h + iy) * in_w + ix) * in_c;
                for ic in 0..in_c.min(f_in) {
                    let x = scratch.quantized[in_base + ic] as i32 - offset;
                    for fy in 0..f_h {
                        let Some(oy) = tap(oy0, fy, 1, out_h) else {
                            continue;
                        };
                        for fx in 0..f_w {
                            let Some(ox) = tap(ox0, fx, 1, out_w) else {
                                continue;
                            };
                            let out_base = ((b * out_h + oy) * out_w + ox) * out_c;
                            for oc in 0..out_c {
                                let w = filter[((oc * f_h + fy) * f_w + fx) * f_in + ic] as i32;
                                let a = &mut acc[out_base + oc];
                                *a = a.wrapping_add(w.wrapping_mul(x));
                            }
                        }
                    }
                }
            }
        }
    }
    let per_batch = out_h * out_w * out_c;
    for (i, (o, &a)) in output[..out_len].iter_mut().zip(&acc).enumerate() {
        let (b, oc) = (i / per_batch.max(1), i % out_c.max(1));
        let mut v = a as f32 * scale_at(filter_scales, oc) * scratch.scaling_factors[b];
        if let Some(bv) = bias {
            v += bv[oc];
        }
        *o = p.clamp.apply(v);
    }
}

/// Hybrid BATCH_MATMUL: float `lhs`, constant int8 `rhs` with one scale
/// (TFLite `batch_matmul.cc` `EvalHybrid` + the hybrid `reference_ops::BatchMatMul`).
///
/// Shapes, `adj_x`/`adj_y` and batch broadcasting as
/// [`super::batch_matmul::batch_matmul_f32`]. Each row `i` of each (adjusted)
/// lhs matrix -- `depth` values -- is quantised (symmetric, or asymmetric when
/// the op's `asymmetric_quantize_inputs` is set), its scale multiplied by
/// `rhs_scale` (f32); then
/// `acc = sum_k q[i,k] * w[k,j] - col_sum(w[.,j]) * offset[i]` (exact i32)
/// and `out[i,j] = 0 + s[i] * f32(acc)`. No activation, no bias.
/// (TFLite's reference does the offset correction in float; see the module
/// docs.)
#[allow(clippy::too_many_arguments)]
pub fn batch_matmul_hybrid(
    lhs: &[f32],
    lhs_shape: &[usize],
    rhs: &[i8],
    rhs_shape: &[usize],
    rhs_scale: f32,
    adj_x: bool,
    adj_y: bool,
    asymmetric: bool,
    out: &mut [f32],
    out_shape: &[usize],
    scratch: &mut HybridScratch,
) {
    let lr = lhs_shape.len();
    let rr = rhs_shape.len();
    let or = out_shape.len();
    if lr < 2 || rr < 2 || or < 2 {
        return;
    }
    let (l_r, l_c) = (lhs_shape[lr - 2], lhs_shape[lr - 1]);
    let (r_r, r_c) = (rhs_shape[rr - 2], rhs_shape[rr - 1]);
    let (m, depth) = if adj_x { (l_c, l_r) } else { (l_r, l_c) };
    let n = if adj_y { r_r } else { r_c };
    let (rk, rj) = if adj_y { (1, r_c) } else { (r_c, 1) };
    let lhs_mat = l_r * l_c;
    let rhs_mat = r_r * r_c;
    let out_mat = m * n;
    let lhs_count: usize = lhs_shape[..lr - 2].iter().product();
    let rhs_count: usize = rhs_shape[..rr - 2].iter().product();

    // Logical (m x depth) rows of every lhs matrix, quantised row by row.
    let mut rows = Vec::with_capacity(lhs_count * m * depth);
    for mat in lhs[..lhs_count * lhs_mat].chunks_exact(lhs_mat.max(1)).take(lhs_count) {
        for i in 0..m {
            for k in 0..depth {
                rows.push(if adj_x { mat[k * l_c + i] } else { mat[i * l_c + k] });
            }
        }
    }
    scratch.quantize_rows(&rows, lhs_count * m, depth, asymmetric);
    let scales: Vec<f32> = scratch.scaling_factors.iter().map(|&s| s * rhs_scale).collect();

    // Column sums of every rhs matrix (over k), for the zero-point correction.
    let col_sums: Vec<i32> = (0..rhs_count * n)
        .map(|t| {
            let (rb, j) = (t / n.max(1), t % n.max(1));
            let r = &rhs[rb * rhs_mat..(rb + 1) * rhs_mat];
            (0..depth).fold(0i32, |s, k| s.wrapping_add(r[k * rk + j * rj] as i32))
        })
        .collect();

    let batch_shape = &out_shape[..or - 2];
    let batches: usize = batch_shape.iter().product();
    for b in 0..batches {
        let lb = broadcast_index(b, batch_shape, &lhs_shape[..lr - 2]);
        let rb = broadcast_index(b, batch_shape, &rhs_shape[..rr - 2]);
        let r = &rhs[rb * rhs_mat..(rb + 1) * rhs_mat];
        let o = &mut out[b * out_mat..(b + 1) * out_mat];
        for i in 0..m {
            let row = lb * m + i;
            let q = &scratch.quantized[row * depth..(row + 1) * depth];
            let offset = scratch.offsets[row];
            for j in 0..n {
                let mut acc = 0i32;
                for (k, &x) in q.iter().enumerate() {
                    acc = acc.wrapping_add(x as i32 * r[k * rk + j * rj] as i32);
                }
                acc = acc.wrapping_sub(col_sums[rb * n + j].wrapping_mul(offset));
                o[i * n + j] = 0.0f32 + scales[row] * acc as f32;
            }
        }
    }
}

/// Index of the operand matrix used for output batch `b` (numpy broadcasting
/// of `operand` batch dims, right-aligned, against `out` batch dims).
fn broadcast_index(b: usize, out: &[usize], operand: &[usize]) -> usize {
    let mut rem = b;
    let mut idx = 0;
    let mut stride = 1;
    let skip = out.len() - operand.len();
    for d in (0..out.len()).rev() {
        let coord = rem % out[d].max(1);
        rem /= out[d].max(1);
        if d >= skip {
            let od = operand[d - skip];
            if od != 1 {
                idx += coord * stride;
            }
            stride *= od;
        }
    }
    idx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::batch_matmul::batch_matmul_f32;
    use crate::reference::conv::{conv2d_f32, depthwise_conv2d_f32};
    use crate::reference::fully_connected::fully_connected_f32;

    #[test]
    fn symmetric_quantize_rounds_halves_away_from_zero() {
        // range 2: inv = 127/2 = 63.5 exactly, so 1.0 -> 63.5 -> 64.
        let mut q = [0i8; 4];
        let (min, max, s) = symmetric_quantize_floats(&[1.0, -2.0, 0.5, 0.25], &mut q);
        assert_eq!((min, max), (-2.0, 1.0));
        assert_eq!(s, 2.0f32 / 127.0);
        assert_eq!(q, [64, -127, 32, 16]); // 63.5, -127, 31.75, 15.875
        let (_, _, s) = symmetric_quantize_floats(&[-0.5, 0.5], &mut q[..2]);
        assert_eq!(q[..2], [-127, 127]);
        assert_eq!(s, 0.5f32 / 127.0);
    }

    #[test]
    fn quantize_all_zero_row() {
        let mut q = [5i8; 3];
        assert_eq!(symmetric_quantize_floats(&[0.0, -0.0, 0.0], &mut q), (-0.0, 0.0, 1.0));
        assert_eq!(q, [0, 0, 0]);
        let mut q = [5i8; 3];
        assert_eq!(asymmetric_quantize_floats(&[0.0, -0.0, 0.0], &mut q), (1.0, 0));
        assert_eq!(q, [0, 0, 0]);
    }

    #[test]
    fn asymmetric_quantize_hand_cases() {
        // [0, 3]: scale 3/255, zero point from min = -128 (error 128 < 382).
        let mut q = [0i8; 4];
        let (s, off) = asymmetric_quantize_floats(&[0.0, 1.0, 2.0, 3.0], &mut q);
        assert_eq!(s, (3.0f64 / 255.0) as f32);
        assert_eq!(off, -128);
        assert_eq!(q, [-128, -43, 42, 127]); // -128 + 85 * x
                                             // [-1, 0.5]: scale 1.5/255, rmin/scale = -170, rmax/scale = 85;
                                             // from max (error 212 < 298): 127 - 85 = 42.
        let (s, off) = asymmetric_quantize_floats(&[-1.0, 0.5, 0.0], &mut q[..3]);
        assert_eq!(s, (1.5f64 / 255.0) as f32);
        assert_eq!(off, 42);
        assert_eq!(q[..3], [-128, 127, 42]);
        // All positive, range widened to include 0.
        let (s, off) = asymmetric_quantize_floats(&[2.0, 4.0], &mut q[..2]);
        assert_eq!((s, off), ((4.0f64 / 255.0) as f32, -128));
        // inv = 255/4 = 63.75: -128 + 2 * 63.75 = -0.5 rounds away from zero to -1.
        assert_eq!(q[..2], [-1, 127]);
    }

    #[test]
    fn fully_connected_symmetric_by_hand() {
        // Input quantises to [64, -127, 32, 16] with s_in = 2/127.
        let input = [1.0f32, -2.0, 0.5, 0.25];
        let weights = [1i8, 2, 3, 4, -1, 0, 1, 127];
        let bias = [0.25f32, -1.0];
        let mut out = [0.0f32; 2];
        let mut scratch = HybridScratch::new();
        fully_connected_hybrid(
            &input,
            &weights,
            &[0.5],
            Some(&bias),
            &mut out,
            1,
            4,
            2,
            false,
            ClampF32::NONE,
            &mut scratch,
        );
        assert_eq!(scratch.quantized, [64, -127, 32, 16]);
        // acc0 = 64 - 254 + 96 + 64 = -30; acc1 = -64 + 32 + 2032 = 2000.
        let s = (2.0f32 / 127.0) * 0.5;
        assert_eq!(out, [0.25 + -30.0 * s, -1.0 + 2000.0 * s]);
        assert!((out[0] - 0.013_779_5).abs() < 1e-6 && (out[1] - 14.748_031).abs() < 1e-5);

        // Per-channel scales, ReLU.
        fully_connected_hybrid(
            &input,
            &weights,
            &[0.5, -0.001],
            Some(&bias),
            &mut out,
            1,
            4,
            2,
            false,
            ClampF32::RELU,
            &mut scratch,
        );
        let s_in = 2.0f32 / 127.0;
        assert_eq!(out, [0.25 + -30.0 * (s_in * 0.5), 0.0]);
    }

    #[test]
    fn fully_connected_asymmetric_by_hand() {
        // Input quantises to [-128, -43, 42, 127], offset -128, s_in = 3/255.
        let input = [0.0f32, 1.0, 2.0, 3.0];
        let weights = [1i8, -1, 2, 0];
        let mut out = [0.0f32; 1];
        let mut scratch = HybridScratch::new();
        fully_connected_hybrid(&input, &weights, &[0.5], None, &mut out, 1, 4, 1, true, ClampF32::NONE, &mut scratch);
        // dot = -128 + 43 + 84 = -1, row sum 2: acc = -1 - 2 * -128 = 255.
        let s_in = (3.0f64 / 255.0) as f32;
        assert_eq!(out, [0.0 + 255.0 * (s_in * 0.5)]);
        assert!((out[0] - 1.5).abs() < 1e-6); // float: (-1 + 4) * 0.5
    }

    #[test]
    fn fully_connected_zero_input_gives_clamped_bias() {
        let mut out = [9.0f32; 4];
        let mut scratch = HybridScratch::new();
        fully_connected_hybrid(
            &[0.0; 6],
            &[1; 6],
            &[1.0],
            Some(&[-1.0, 2.0]),
            &mut out,
            2,
            3,
            2,
            true,
            ClampF32::RELU,
            &mut scratch,
        );
        assert_eq!(out, [0.0, 2.0, 0.0, 2.0]);
    }

    #[test]
    fn conv_per_channel_by_hand() {
        // 1x2x2x1 image [0, 1, 2, 3] -> q = [-128, -43, 42, 127], offset -128.
        let p = Conv2dParams {
            stride_h: 1,
            stride_w: 1,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: 0,
            pad_left: 0,
            clamp: ClampF32::NONE,
        };
        let filter = [1i8, 1, 1, 1, 0, 0, 0, -2];
        let mut out = [0.0f32; 2];
        let mut scratch = HybridScratch::new();
        conv2d_hybrid_per_channel(
            &p,
            &[0.0, 1.0, 2.0, 3.0],
            [1, 2, 2, 1],
            &filter,
            [2, 2, 2, 1],
            &[0.5, 0.25],
            Some(&[0.0, 1.0]),
            &mut out,
            [1, 1, 1, 2],
            &mut scratch,
        );
        // acc0 = 0 + 85 + 170 + 255 = 510; acc1 = -2 * 255 = -510.
        let s_in = (3.0f64 / 255.0) as f32;
        assert_eq!(out, [510.0 * 0.5 * s_in + 0.0, -510.0 * 0.25 * s_in + 1.0]);
        assert!((out[0] - 3.0).abs() < 1e-6 && (out[1] + 0.5).abs() < 1e-6);

        // Per-tensor (symmetric): [0, 1, 2, 3] -> [0, 42, 85, 127] (42.33, 84.67).
        conv2d_hybrid(
            &p,
            &[0.0, 1.0, 2.0, 3.0],
            [1, 2, 2, 1],
            &filter,
            [2, 2, 2, 1],
            0.5,
            None,
            &mut out,
            [1, 1, 1, 2],
            &mut scratch,
        );
        assert_eq!(scratch.quantized, [0, 42, 85, 127]);
        let s = (3.0f32 / 127.0) * 0.5;
        assert_eq!(out, [254.0 * s, -254.0 * s]);
    }

    #[test]
    fn depthwise_by_hand() {
        // 1x1x2x2 image: pixel 0 = [0, 1], pixel 1 = [2, 3]; 1x2 filter,
        // depth multiplier 1. q = [-128, -43, 42, 127], offset -128.
        let p = DepthwiseParams {
            stride_h: 1,
            stride_w: 1,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: 0,
            pad_left: 0,
            depth_multiplier: 1,
            clamp: ClampF32::RELU6,
        };
        let filter = [2i8, 1, 1, 3]; // [1, 1, 2, 2]: tap 0 = [2, 1], tap 1 = [1, 3]
        let mut out = [0.0f32; 2];
        let mut scratch = HybridScratch::new();
        depthwise_conv2d_hybrid_per_channel(
            &p,
            &[0.0, 1.0, 2.0, 3.0],
            [1, 1, 2, 2],
            &filter,
            [1, 1, 2, 2],
            &[0.25, 1.0],
            Some(&[0.5, 0.0]),
            &mut out,
            [1, 1, 1, 2],
            &mut scratch,
        );
        // ch0: 2 * 0 + 1 * 170 = 170; ch1: 1 * 85 + 3 * 255 = 850.
        let s_in = (3.0f64 / 255.0) as f32;
        assert_eq!(out, [170.0 * (0.25 * s_in) + 0.5, 6.0]);
        assert!((out[0] - 1.0).abs() < 1e-6); // float: (0 * 2 + 2 * 1) * 0.25 + 0.5
    }

    /// Small deterministic generator for the property tests.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u32 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (self.0 >> 33) as u32
        }
        fn below(&mut self, n: usize) -> usize {
            self.next() as usize % n
        }
        fn f32(&mut self, lo: f32, hi: f32) -> f32 {
            lo + (hi - lo) * (self.next() as f32 / (1u64 << 31) as f32)
        }
        fn i8(&mut self) -> i8 {
            (self.below(255) as i32 - 127) as i8
        }
    }

    /// Hybrid vs float-with-dequantised-weights: each input element is off by
    /// at most one input step (half a step from rounding, up to half a step
    /// from the nudged zero point), so `|err| <= s_in * sum |w|` plus float
    /// rounding slack.
    fn within(hybrid: f32, float: f32, bound: f32) -> bool {
        (hybrid - float).abs() <= bound * 1.001 + 1e-4 * (1.0 + float.abs())
    }

    #[test]
    fn fully_connected_close_to_float() {
        let mut rng = Lcg(1);
        let mut scratch = HybridScratch::new();
        for case in 0..40 {
            let (batches, depth, units) = (1 + rng.below(3), 1 + rng.below(20), 1 + rng.below(6));
            let asymmetric = case % 2 == 1;
            let per_channel = case % 4 >= 2;
            let input: Vec<f32> =
                (0..batches * depth).map(|_| rng.f32(-3.0, if asymmetric { 5.0 } else { 3.0 })).collect();
            let weights: Vec<i8> = (0..units * depth).map(|_| rng.i8()).collect();
            let scales: Vec<f32> = (0..if per_channel { units } else { 1 }).map(|_| rng.f32(0.001, 0.05)).collect();
            let bias: Vec<f32> = (0..units).map(|_| rng.f32(-1.0, 1.0)).collect();
            let deq: Vec<f32> =
                weights.iter().enumerate().map(|(i, &w)| w as f32 * scale_at(&scales, i / depth)).collect();
            let mut hyb = vec![0.0f32; batches * units];
            let mut flt = vec![0.0f32; batches * units];
            fully_connected_hybrid(
                &input,
                &weights,
                &scales,
                Some(&bias),
                &mut hyb,
                batches,
                depth,
                units,
                asymmetric,
                ClampF32::NONE,
                &mut scratch,
            );
            fully_connected_f32(&input, &deq, Some(&bias), &mut flt, batches, depth, units, ClampF32::NONE);
            for b in 0..batches {
                for o in 0..units {
                    let w_abs: f32 = deq[o * depth..(o + 1) * depth].iter().map(|w| w.abs()).sum();
                    let bound = scratch.scaling_factors[b] * w_abs;
                    let (h, f) = (hyb[b * units + o], flt[b * units + o]);
                    assert!(within(h, f, bound), "case {case} b{b} o{o}: {h} vs {f} (bound {bound})");
                }
            }
        }
    }

    #[test]
    fn convs_close_to_float() {
        let mut rng = Lcg(7);
        let mut scratch = HybridScratch::new();
        for case in 0..30 {
            let batches = 1 + rng.below(2);
            let (in_h, in_w) = (2 + rng.below(5), 2 + rng.below(5));
            let (f_h, f_w) = (1 + rng.below(3), 1 + rng.below(3));
            let stride = 1 + rng.below(2);
            let dilation = 1 + rng.below(2);
            let pad = rng.below(2);
            let eff_h = (f_h - 1) * dilation + 1;
            let eff_w = (f_w - 1) * dilation + 1;
            if in_h + 2 * pad < eff_h || in_w + 2 * pad < eff_w {
                continue;
            }
            let out_h = (in_h + 2 * pad - eff_h) / stride + 1;
            let out_w = (in_w + 2 * pad - eff_w) / stride + 1;
            let in_c = 1 + rng.below(4);
            let input: Vec<f32> = (0..batches * in_h * in_w * in_c).map(|_| rng.f32(-2.0, 4.0)).collect();
            // Regular conv (per-channel and per-tensor).
            let out_c = 1 + rng.below(4);
            let filter: Vec<i8> = (0..out_c * f_h * f_w * in_c).map(|_| rng.i8()).collect();
            let scales: Vec<f32> = (0..out_c).map(|_| rng.f32(0.001, 0.05)).collect();
            let bias: Vec<f32> = (0..out_c).map(|_| rng.f32(-1.0, 1.0)).collect();
            let per_oc = f_h * f_w * in_c;
            let p = Conv2dParams {
                stride_h: stride,
                stride_w: stride,
                dilation_h: dilation,
                dilation_w: dilation,
                pad_top: pad,
                pad_left: pad,
                clamp: ClampF32::NONE,
            };
            let (in_shape, f_shape, out_shape) =
                ([batches, in_h, in_w, in_c], [out_c, f_h, f_w, in_c], [batches, out_h, out_w, out_c]);
            let n_out = batches * out_h * out_w * out_c;
            let (mut hyb, mut flt) = (vec![0.0f32; n_out], vec![0.0f32; n_out]);
            for per_tensor in [false, true] {
                let sc: &[f32] = if per_tensor { &scales[..1] } else { &scales };
                let deq: Vec<f32> =
                    filter.iter().enumerate().map(|(i, &w)| w as f32 * scale_at(sc, i / per_oc)).collect();
                if per_tensor {
                    conv2d_hybrid(
                        &p,
                        &input,
                        in_shape,
                        &filter,
                        f_shape,
                        sc[0],
                        Some(&bias),
                        &mut hyb,
                        out_shape,
                        &mut scratch,
                    );
                } else {
                    conv2d_hybrid_per_channel(
                        &p,
                        &input,
                        in_shape,
                        &filter,
                        f_shape,
                        sc,
                        Some(&bias),
                        &mut hyb,
                        out_shape,
                        &mut scratch,
                    );
                }
                conv2d_f32(&p, &input, in_shape, &deq, f_shape, Some(&bias), &mut flt, out_shape);
                for (i, (&h, &f)) in hyb.iter().zip(&flt).enumerate() {
                    let (b, oc) = (i / (out_h * out_w * out_c), i % out_c);
                    let w_abs: f32 = deq[oc * per_oc..(oc + 1) * per_oc].iter().map(|w| w.abs()).sum();
                    let bound = scratch.scaling_factors[b] * w_abs;
                    assert!(within(h, f, bound), "conv pt={per_tensor} case {case} at {i}: {h} vs {f} (bound {bound})");
                }
            }

            // Depthwise.
            let dm = 1 + rng.below(2);
            let dw_c = in_c * dm;
            let filter: Vec<i8> = (0..f_h * f_w * dw_c).map(|_| rng.i8()).collect();
            let scales: Vec<f32> = (0..dw_c).map(|_| rng.f32(0.001, 0.05)).collect();
            let bias: Vec<f32> = (0..dw_c).map(|_| rng.f32(-1.0, 1.0)).collect();
            let deq: Vec<f32> = filter.iter().enumerate().map(|(i, &w)| w as f32 * scales[i % dw_c]).collect();
            let dp = DepthwiseParams {
                stride_h: stride,
                stride_w: stride,
                dilation_h: dilation,
                dilation_w: dilation,
                pad_top: pad,
                pad_left: pad,
                depth_multiplier: dm,
                clamp: ClampF32::NONE,
            };
            let (f_shape, out_shape) = ([1, f_h, f_w, dw_c], [batches, out_h, out_w, dw_c]);
            let n_out = batches * out_h * out_w * dw_c;
            let (mut hyb, mut flt) = (vec![0.0f32; n_out], vec![0.0f32; n_out]);
            depthwise_conv2d_hybrid_per_channel(
                &dp,
                &input,
                in_shape,
                &filter,
                f_shape,
                &scales,
                Some(&bias),
                &mut hyb,
                out_shape,
                &mut scratch,
            );
            depthwise_conv2d_f32(&dp, &input, in_shape, &deq, f_shape, Some(&bias), &mut flt, out_shape);
            for (i, (&h, &f)) in hyb.iter().zip(&flt).enumerate() {
                let (b, oc) = (i / (out_h * out_w * dw_c), i % dw_c);
                let w_abs: f32 = (0..f_h * f_w).map(|t| deq[t * dw_c + oc].abs()).sum();
                let bound = scratch.scaling_factors[b] * w_abs;
                assert!(within(h, f, bound), "depthwise case {case} at {i}: {h} vs {f} (bound {bound})");
            }
        }
    }

    #[test]
    fn batch_matmul_close_to_float() {
        let mut rng = Lcg(3);
        let mut scratch = HybridScratch::new();
        for case in 0..24 {
            let (m, k, n) = (1 + rng.below(4), 1 + rng.below(8), 1 + rng.below(4));
            let (adj_x, adj_y, asymmetric) = (case & 1 != 0, case & 2 != 0, case & 4 != 0);
            // lhs batch [2], rhs batch [1] (broadcast) or [2].
            let rhs_b = if case & 8 != 0 { 1 } else { 2 };
            let lhs_shape = if adj_x { vec![2, k, m] } else { vec![2, m, k] };
            let rhs_shape = if adj_y { vec![rhs_b, n, k] } else { vec![rhs_b, k, n] };
            let out_shape = vec![2, m, n];
            let lhs: Vec<f32> = (0..2 * m * k).map(|_| rng.f32(-2.0, 3.0)).collect();
            let rhs: Vec<i8> = (0..rhs_b * k * n).map(|_| rng.i8()).collect();
            let scale = rng.f32(0.001, 0.05);
            let deq: Vec<f32> = rhs.iter().map(|&w| w as f32 * scale).collect();
            let (mut hyb, mut flt) = (vec![0.0f32; 2 * m * n], vec![0.0f32; 2 * m * n]);
            batch_matmul_hybrid(
                &lhs,
                &lhs_shape,
                &rhs,
                &rhs_shape,
                scale,
                adj_x,
                adj_y,
                asymmetric,
                &mut hyb,
                &out_shape,
                &mut scratch,
            );
            batch_matmul_f32(&lhs, &lhs_shape, &deq, &rhs_shape, adj_x, adj_y, &mut flt, &out_shape);
            for (idx, (&h, &f)) in hyb.iter().zip(&flt).enumerate() {
                let (b, i, j) = (idx / (m * n), (idx / n) % m, idx % n);
                let rb = if rhs_b == 1 { 0 } else { b };
                let r = &deq[rb * k * n..(rb + 1) * k * n];
                let w_abs: f32 = (0..k).map(|kk| if adj_y { r[j * k + kk] } else { r[kk * n + j] }.abs()).sum();
                let bound = scratch.scaling_factors[b * m + i] * w_abs;
                assert!(within(h, f, bound), "bmm case {case} at {idx}: {h} vs {f} (bound {bound})");
            }
        }
    }
}
