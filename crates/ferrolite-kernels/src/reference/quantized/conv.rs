//! Quantised CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED, bit-exact with
//! TFLite's reference kernels:
//!
//! - int8: `reference_integer_ops::ConvPerChannel`,
//!   `DepthwiseConvPerChannel`, `FullyConnected` / `FullyConnectedPerChannel`;
//! - int16 activations with int8 weights ("16x8"): the `int16_t` overloads of
//!   the same functions;
//! - uint8 (legacy, per-tensor, with a filter zero point):
//!   `reference_ops::Conv`, `DepthwiseConv`, `FullyConnected`.
//!
//! The accumulation is `sum (w + filter_offset) * (x + input_offset)` over the
//! in-bounds taps (padding contributes nothing), plus the bias, then one
//! requantising multiply, plus the output zero point, then the clamp. The
//! convolutions requantise with the fixed-point `MultiplyByQuantizedMultiplier`;
//! LiteRT's reference FULLY_CONNECTED (the overloads that take the scales)
//! instead rounds `acc * (s_in * s_filter / s_out)` computed in `f64`, half
//! away from zero, which differs from the fixed-point result by one step on
//! a few percent of outputs at int16 precision. Integer
//! sums are order-independent, so the loop order does not matter for the
//! result; 32-bit sums wrap on overflow (undefined in C++, and out of range
//! for real models).
//!
//! Geometry comes from the float kernels' parameter structs
//! ([`Conv2dParams`], [`DepthwiseParams`]); their `clamp` field is ignored
//! here: the quantised clamp lives in [`ConvQuantParams`].

use super::{valid_scale, QType};
use crate::quant::{
    multiply_by_quantized_multiplier, multiply_by_quantized_multiplier_i64, per_channel_multiplier,
    per_tensor_conv_multiplier, quantize_multiplier, quantized_activation_range, FusedActivation,
};
use crate::reference::conv::{Conv2dParams, DepthwiseParams, Window};

/// Quantisation parameters of CONV_2D, DEPTHWISE_CONV_2D and
/// FULLY_CONNECTED, as TFLite's `Prepare` computes them.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvQuantParams {
    /// `-input_zero_point`.
    pub input_offset: i32,
    /// `-filter_zero_point`; 0 for per-channel (symmetric) filters.
    pub filter_offset: i32,
    /// `output_zero_point`.
    pub output_offset: i32,
    /// One Q0.31 multiplier per output channel, or a single one for all.
    pub output_multiplier: Vec<i32>,
    /// Matching exponents (positive: left shift), as `quantize_multiplier`.
    pub output_shift: Vec<i32>,
    /// The real multipliers `(f64)s_in * (f64)s_filter / (f64)s_out`, one per
    /// filter scale, that FULLY_CONNECTED requantises with.
    pub real_multiplier: Vec<f64>,
    /// Clamp bounds in the output's integer domain (fused activation
    /// intersected with the output type's range).
    pub act_min: i32,
    pub act_max: i32,
}

impl ConvQuantParams {
    /// Per-channel parameters (`PopulateConvolutionQuantizationParams`): one
    /// multiplier per filter scale from
    /// `(f64)input_scale * (f64)filter_scale / (f64)output_scale`.
    ///
    /// TFLite's int8 and int16x8 CONV_2D and DEPTHWISE_CONV_2D take this path
    /// even for a per-tensor filter (then pass a single scale), as does
    /// FULLY_CONNECTED when the filter has more than one scale. `qmin/qmax`
    /// is the output type's range.
    #[allow(clippy::too_many_arguments)]
    pub fn per_channel(
        input_scale: f32,
        input_zero_point: i32,
        filter_scales: &[f32],
        output_scale: f32,
        output_zero_point: i32,
        activation: FusedActivation,
        qmin: i32,
        qmax: i32,
    ) -> Option<Self> {
        if !valid_scale(input_scale) || !valid_scale(output_scale) || filter_scales.is_empty() {
            return None;
        }
        let mut output_multiplier = Vec::with_capacity(filter_scales.len());
        let mut output_shift = Vec::with_capacity(filter_scales.len());
        let mut real_multiplier = Vec::with_capacity(filter_scales.len());
        for &fs in filter_scales {
            if !(fs.is_finite() && fs >= 0.0) {
                return None;
            }
            let real = per_channel_multiplier(input_scale, fs, output_scale);
            let (m, s) = quantize_multiplier(real);
            output_multiplier.push(m);
            output_shift.push(s);
            real_multiplier.push(real);
        }
        let (act_min, act_max) = quantized_activation_range(activation, output_scale, output_zero_point, qmin, qmax);
        Some(Self {
            input_offset: input_zero_point.checked_neg()?,
            filter_offset: 0,
            output_offset: output_zero_point,
            output_multiplier,
            output_shift,
            real_multiplier,
            act_min,
            act_max,
        })
    }

    /// Per-channel parameters for int16 activations with int8 weights. TFLite
    /// requires both activation zero points to be 0 (`None` otherwise) and
    /// its 16x8 kernels add no offsets.
    pub fn per_channel_16x8(
        input_scale: f32,
        input_zero_point: i32,
        filter_scales: &[f32],
        output_scale: f32,
        output_zero_point: i32,
        activation: FusedActivation,
    ) -> Option<Self> {
        if input_zero_point != 0 || output_zero_point != 0 {
            return None;
        }
        Self::per_channel(input_scale, 0, filter_scales, output_scale, 0, activation, i16::MIN as i32, i16::MAX as i32)
    }

    /// Per-tensor parameters (`GetQuantizedConvolutionMultipler`): one
    /// multiplier from `(f64)(input_scale * filter_scale) / (f64)output_scale`
    /// with the product in `f32` (FULLY_CONNECTED's real multiplier keeps
    /// every step in `f64`), and a filter zero point. Used by
    /// FULLY_CONNECTED with a single filter scale (int8, int16x8, uint8) and
    /// by the legacy uint8 CONV_2D / DEPTHWISE_CONV_2D.
    #[allow(clippy::too_many_arguments)]
    pub fn per_tensor(
        input_scale: f32,
        input_zero_point: i32,
        filter_scale: f32,
        filter_zero_point: i32,
        output_scale: f32,
        output_zero_point: i32,
        activation: FusedActivation,
        qmin: i32,
        qmax: i32,
    ) -> Option<Self> {
        let filter_ok = filter_scale.is_finite() && filter_scale >= 0.0;
        if !valid_scale(input_scale) || !valid_scale(output_scale) || !filter_ok {
            return None;
        }
        let (m, s) = quantize_multiplier(per_tensor_conv_multiplier(input_scale, filter_scale, output_scale));
        let (act_min, act_max) = quantized_activation_range(activation, output_scale, output_zero_point, qmin, qmax);
        Some(Self {
            input_offset: input_zero_point.checked_neg()?,
            filter_offset: filter_zero_point.checked_neg()?,
            output_offset: output_zero_point,
            output_multiplier: vec![m],
            output_shift: vec![s],
            real_multiplier: vec![per_channel_multiplier(input_scale, filter_scale, output_scale)],
            act_min,
            act_max,
        })
    }

    /// Multiplier and shift of output channel `c` (a single pair applies to
    /// every channel).
    #[inline(always)]
    pub fn channel(&self, c: usize) -> (i32, i32) {
        let i = if self.output_multiplier.len() == 1 { 0 } else { c };
        (self.output_multiplier[i], self.output_shift[i])
    }

    /// Real multiplier of output channel `c` (FULLY_CONNECTED).
    #[inline(always)]
    pub fn real_channel(&self, c: usize) -> f64 {
        let i = if self.real_multiplier.len() == 1 { 0 } else { c };
        self.real_multiplier[i]
    }
}

/// The accumulator of a 16x8 kernel, chosen by TFLite from the bias type:
/// `i64` bias accumulates in 64 bits and requantises with the 64-bit
/// `MultiplyByQuantizedMultiplier` (16-bit reduced multiplier, single
/// rounding); `i32` bias (and, for CONV_2D, no bias) accumulates in 32 bits
/// and uses the ordinary 32-bit one.
pub trait Accumulator: Copy + 'static {
    const ZERO: Self;
    /// `self + p`, wrapping like the C++ on (unrealistic) overflow.
    fn add_product(self, p: i32) -> Self;
    fn add_bias(self, b: Self) -> Self;
    /// TFLite's `MultiplyByQuantizedMultiplier` overload for this width.
    fn requantize(self, multiplier: i32, shift: i32) -> i32;
    /// The sum as a double (exact for any realistic sum).
    fn to_f64(self) -> f64;
}

impl Accumulator for i32 {
    const ZERO: Self = 0;
    #[inline(always)]
    fn add_product(self, p: i32) -> Self {
        self.wrapping_add(p)
    }
    #[inline(always)]
    fn add_bias(self, b: Self) -> Self {
        self.wrapping_add(b)
    }
    #[inline(always)]
    fn requantize(self, multiplier: i32, shift: i32) -> i32 {
        multiply_by_quantized_multiplier(self, multiplier, shift)
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
}

impl Accumulator for i64 {
    const ZERO: Self = 0;
    #[inline(always)]
    fn add_product(self, p: i32) -> Self {
        self.wrapping_add(p as i64)
    }
    #[inline(always)]
    fn add_bias(self, b: Self) -> Self {
        self.wrapping_add(b)
    }
    #[inline(always)]
    fn requantize(self, multiplier: i32, shift: i32) -> i32 {
        multiply_by_quantized_multiplier_i64(self, multiplier, shift)
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
}

/// The offsets a kernel family actually applies (the 16x8 kernels ignore
/// the activation offsets, which TFLite forces to 0).
#[derive(Clone, Copy)]
struct Offsets {
    input: i32,
    filter: i32,
    output: i32,
}

#[inline(always)]
pub(crate) fn finish<A: Accumulator, O: QType>(
    q: &ConvQuantParams,
    acc: A,
    bias: Option<&[A]>,
    c: usize,
    output_offset: i32,
) -> O {
    let acc = match bias {
        Some(b) => acc.add_bias(b[c]),
        None => acc,
    };
    let (m, s) = q.channel(c);
    let v = acc.requantize(m, s).wrapping_add(output_offset);
    O::from_i32(v.max(q.act_min).min(q.act_max))
}

/// `x.round()` (half away from zero) without a library call: the
/// baseline x86-64 build has no rounding instruction (that is SSE4.1), so
/// `f64::round` calls libm's `round` per value, a fifth of an int8
/// FULLY_CONNECTED's time (1001 outputs). Exact: below `2^52` the
/// truncation through `i64` and the remainder `x - t` are exact, and from
/// `2^52` on every double is an integer; NaN and infinities pass through.
#[inline]
pub(crate) fn round_half_away(x: f64) -> f64 {
    if x.is_nan() || x.abs() >= 4_503_599_627_370_496.0 {
        return x;
    }
    let t = x as i64 as f64;
    match x - t {
        d if d >= 0.5 => t + 1.0,
        d if d <= -0.5 => t - 1.0,
        _ => t,
    }
}

/// FULLY_CONNECTED's requantisation (LiteRT's reference overloads that take
/// the scales): `round(acc * real_multiplier)` in `f64`, half away from zero,
/// then the output offset and the clamp. (`as i32` saturates where the C++
/// cast would be undefined.)
#[inline(always)]
pub(crate) fn finish_fc<A: Accumulator, O: QType>(
    q: &ConvQuantParams,
    acc: A,
    bias: Option<&[A]>,
    c: usize,
    output_offset: i32,
) -> O {
    let acc = match bias {
        Some(b) => acc.add_bias(b[c]),
        None => acc,
    };
    let scaled = round_half_away(acc.to_f64() * q.real_channel(c)) as i32;
    let v = scaled.saturating_add(output_offset);
    O::from_i32(v.max(q.act_min).min(q.act_max))
}

#[allow(clippy::too_many_arguments)]
fn conv_core<I: QType, W: QType, O: QType, A: Accumulator>(
    p: &Conv2dParams,
    q: &ConvQuantParams,
    off: Offsets,
    input: &[I],
    in_shape: [usize; 4],
    filter: &[W],
    filter_shape: [usize; 4],
    bias: Option<&[A]>,
    output: &mut [O],
    out_shape: [usize; 4],
) {
    let [_, _, _, in_c] = in_shape;
    let [_, f_h, f_w, f_in] = filter_shape;
    let out_c = out_shape[3];
    let groups = in_c.checked_div(f_in).unwrap_or(1).max(1);
    let per_group = (out_c / groups).max(1);
    let taps_per_filter = f_h * f_w;
    Window::conv(p, f_h, f_w).for_each_output(in_shape, out_shape, |pix, taps| {
        for oc in 0..out_c {
            let in_c_base = (oc / per_group) * f_in;
            let mut acc = A::ZERO;
            for t in taps {
                let i = t.pixel * in_c + in_c_base;
                let f = (oc * taps_per_filter + t.index) * f_in;
                for (x, w) in input[i..i + f_in].iter().zip(&filter[f..f + f_in]) {
                    let prod = (w.to_i32() + off.filter).wrapping_mul(x.to_i32() + off.input);
                    acc = acc.add_product(prod);
                }
            }
            output[pix * out_c + oc] = finish(q, acc, bias, oc, off.output);
        }
    });
}

/// CONV_2D, int8 activations and per-channel int8 weights, int32 bias
/// (`reference_integer_ops::ConvPerChannel`).
///
/// Shapes as [`crate::reference::conv::conv2d_f32`] (NHWC input, OHWI
/// filter, grouped convolution when `in_c` is a multiple of the filter's
/// input depth). `q` from [`ConvQuantParams::per_channel`].
#[allow(clippy::too_many_arguments)]
pub fn conv2d_i8(
    p: &Conv2dParams,
    q: &ConvQuantParams,
    input: &[i8],
    in_shape: [usize; 4],
    filter: &[i8],
    filter_shape: [usize; 4],
    bias: Option<&[i32]>,
    output: &mut [i8],
    out_shape: [usize; 4],
) {
    let off = Offsets { input: q.input_offset, filter: 0, output: q.output_offset };
    conv_core(p, q, off, input, in_shape, filter, filter_shape, bias, output, out_shape);
}

/// CONV_2D, int16 activations and per-channel int8 weights (TFLite's 16x8
/// `ConvPerChannel`). The bias type picks the accumulator (see
/// [`Accumulator`]): TFLite uses 64 bits for an int64 bias and 32 bits for an
/// int32 bias or no bias (pass `None::<&[i32]>`). No zero points are applied.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_i16x8<A: Accumulator>(
    p: &Conv2dParams,
    q: &ConvQuantParams,
    input: &[i16],
    in_shape: [usize; 4],
    filter: &[i8],
    filter_shape: [usize; 4],
    bias: Option<&[A]>,
    output: &mut [i16],
    out_shape: [usize; 4],
) {
    let off = Offsets { input: 0, filter: 0, output: 0 };
    conv_core(p, q, off, input, in_shape, filter, filter_shape, bias, output, out_shape);
}

/// Legacy uint8 CONV_2D (`reference_ops::Conv` for uint8): per-tensor
/// multiplier and a filter zero point. `q` from [`ConvQuantParams::per_tensor`].
#[allow(clippy::too_many_arguments)]
pub fn conv2d_u8(
    p: &Conv2dParams,
    q: &ConvQuantParams,
    input: &[u8],
    in_shape: [usize; 4],
    filter: &[u8],
    filter_shape: [usize; 4],
    bias: Option<&[i32]>,
    output: &mut [u8],
    out_shape: [usize; 4],
) {
    let off = Offsets { input: q.input_offset, filter: q.filter_offset, output: q.output_offset };
    conv_core(p, q, off, input, in_shape, filter, filter_shape, bias, output, out_shape);
}

#[allow(clippy::too_many_arguments)]
fn depthwise_core<I: QType, W: QType, O: QType, A: Accumulator>(
    p: &DepthwiseParams,
    q: &ConvQuantParams,
    off: Offsets,
    input: &[I],
    in_shape: [usize; 4],
    filter: &[W],
    filter_shape: [usize; 4],
    bias: Option<&[A]>,
    output: &mut [O],
    out_shape: [usize; 4],
) {
    let [_, _, _, in_c] = in_shape;
    let [_, f_h, f_w, f_c] = filter_shape;
    let out_c = out_shape[3];
    let dm = p.depth_multiplier;
    Window::depthwise(p, f_h, f_w).for_each_output(in_shape, out_shape, |pix, taps| {
        for oc in 0..out_c.min(in_c * dm) {
            let ic = oc / dm;
            let mut acc = A::ZERO;
            for t in taps {
                let x = input[t.pixel * in_c + ic].to_i32();
                let w = filter[t.index * f_c + oc].to_i32();
                acc = acc.add_product((w + off.filter).wrapping_mul(x + off.input));
            }
            output[pix * out_c + oc] = finish(q, acc, bias, oc, off.output);
        }
    });
}

/// DEPTHWISE_CONV_2D, int8 activations, per-channel int8 weights
/// `[1, kh, kw, out_c]`, int32 bias (`DepthwiseConvPerChannel`). Output
/// channel `ic * depth_multiplier + m` reads input channel `ic`.
#[allow(clippy::too_many_arguments)]
pub fn depthwise_conv2d_i8(
    p: &DepthwiseParams,
    q: &ConvQuantParams,
    input: &[i8],
    in_shape: [usize; 4],
    filter: &[i8],
    filter_shape: [usize; 4],
    bias: Option<&[i32]>,
    output: &mut [i8],
    out_shape: [usize; 4],
) {
    let off = Offsets { input: q.input_offset, filter: 0, output: q.output_offset };
    depthwise_core(p, q, off, input, in_shape, filter, filter_shape, bias, output, out_shape);
}

/// DEPTHWISE_CONV_2D, int16 activations, per-channel int8 weights. TFLite's
/// reference takes an int64 bias and accumulates in 64 bits (`A = i64`);
/// `A = i32` gives the 32-bit variant for int32 biases.
#[allow(clippy::too_many_arguments)]
pub fn depthwise_conv2d_i16x8<A: Accumulator>(
    p: &DepthwiseParams,
    q: &ConvQuantParams,
    input: &[i16],
    in_shape: [usize; 4],
    filter: &[i8],
    filter_shape: [usize; 4],
    bias: Option<&[A]>,
    output: &mut [i16],
    out_shape: [usize; 4],
) {
    let off = Offsets { input: 0, filter: 0, output: 0 };
    depthwise_core(p, q, off, input, in_shape, filter, filter_shape, bias, output, out_shape);
}

/// Legacy uint8 DEPTHWISE_CONV_2D (per-tensor, filter zero point).
#[allow(clippy::too_many_arguments)]
pub fn depthwise_conv2d_u8(
    p: &DepthwiseParams,
    q: &ConvQuantParams,
    input: &[u8],
    in_shape: [usize; 4],
    filter: &[u8],
    filter_shape: [usize; 4],
    bias: Option<&[i32]>,
    output: &mut [u8],
    out_shape: [usize; 4],
) {
    let off = Offsets { input: q.input_offset, filter: q.filter_offset, output: q.output_offset };
    depthwise_core(p, q, off, input, in_shape, filter, filter_shape, bias, output, out_shape);
}

#[allow(clippy::too_many_arguments)]
fn fc_core<I: QType, W: QType, O: QType, A: Accumulator>(
    q: &ConvQuantParams,
    off: Offsets,
    input: &[I],
    weights: &[W],
    bias: Option<&[A]>,
    output: &mut [O],
    batches: usize,
    accum_depth: usize,
    out_units: usize,
) {
    for b in 0..batches {
        let row = &input[b * accum_depth..(b + 1) * accum_depth];
        for o in 0..out_units {
            let w = &weights[o * accum_depth..(o + 1) * accum_depth];
            let mut acc = A::ZERO;
            for (x, wv) in row.iter().zip(w) {
                acc = acc.add_product((wv.to_i32() + off.filter).wrapping_mul(x.to_i32() + off.input));
            }
            output[b * out_units + o] = finish_fc(q, acc, bias, o, off.output);
        }
    }
}

/// FULLY_CONNECTED, int8 (`FullyConnected` with [`ConvQuantParams::per_tensor`],
/// which applies the filter zero point, or `FullyConnectedPerChannel` with
/// [`ConvQuantParams::per_channel`]), requantised in `f64` with the
/// parameters' real multipliers as LiteRT's reference kernel does. `input` is `batches` rows of
/// `accum_depth`, `weights` is `[out_units, accum_depth]`, `output` is
/// `[batches, out_units]`.
#[allow(clippy::too_many_arguments)]
pub fn fully_connected_i8(
    q: &ConvQuantParams,
    input: &[i8],
    weights: &[i8],
    bias: Option<&[i32]>,
    output: &mut [i8],
    batches: usize,
    accum_depth: usize,
    out_units: usize,
) {
    let off = Offsets { input: q.input_offset, filter: q.filter_offset, output: q.output_offset };
    fc_core(q, off, input, weights, bias, output, batches, accum_depth, out_units);
}

/// FULLY_CONNECTED, int16 activations and int8 weights. The per-tensor
/// variant applies the filter zero point, neither applies activation zero
/// points. The bias type picks the accumulator width (`i64` bias: 64-bit
/// sums, `i32` bias: 32-bit sums); which one TFLite uses without a bias
/// depends on the op's `quantized_bias_type` (int64 unless it says int32).
/// Either way the sum is requantised in `f64`, as for int8.
#[allow(clippy::too_many_arguments)]
pub fn fully_connected_i16x8<A: Accumulator>(
    q: &ConvQuantParams,
    input: &[i16],
    weights: &[i8],
    bias: Option<&[A]>,
    output: &mut [i16],
    batches: usize,
    accum_depth: usize,
    out_units: usize,
) {
    let off = Offsets { input: 0, filter: q.filter_offset, output: 0 };
    fc_core(q, off, input, weights, bias, output, batches, accum_depth, out_units);
}

/// Legacy uint8 FULLY_CONNECTED (`reference_ops::FullyConnected`), per-tensor
/// with a filter zero point, requantised in `f64` like the int8 one.
#[allow(clippy::too_many_arguments)]
pub fn fully_connected_u8(
    q: &ConvQuantParams,
    input: &[u8],
    weights: &[u8],
    bias: Option<&[i32]>,
    output: &mut [u8],
    batches: usize,
    accum_depth: usize,
    out_units: usize,
) {
    let off = Offsets { input: q.input_offset, filter: q.filter_offset, output: q.output_offset };
    fc_core(q, off, input, weights, bias, output, batches, accum_depth, out_units);
}

#[cfg(test)]
mod tests {
    /// Equal to `f64::round` up to the sign of a zero (the callers cast
    /// to an integer): on halves, their neighbours and random doubles.
    #[test]
    fn round_half_away_matches_f64_round() {
        let check = |x: f64| {
            if x.is_nan() {
                assert!(super::round_half_away(x).is_nan());
            } else {
                assert_eq!(super::round_half_away(x), x.round(), "{x:e}");
            }
        };
        let specials = [
            0.49999999999999994,
            4503599627370495.5,
            4503599627370496.0,
            9007199254740993.0,
            1e300,
            f64::MIN_POSITIVE,
            f64::INFINITY,
            f64::NAN,
        ];
        for x in specials {
            check(x);
            check(-x);
        }
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for i in -70_000i64..70_000 {
            let half = i as f64 / 2.0;
            for x in [half, half.next_up(), half.next_down()] {
                check(x);
            }
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            check(f64::from_bits(state));
        }
    }

    use super::*;
    use crate::activation::ClampF32;
    use crate::reference::quantized::testutil::{deq, off_by, Lcg};
    use FusedActivation::{Relu, Relu6};

    fn geom(stride: usize, dilation: usize, pad: usize) -> Conv2dParams {
        Conv2dParams {
            stride_h: stride,
            stride_w: stride,
            dilation_h: dilation,
            dilation_w: dilation,
            pad_top: pad,
            pad_left: pad,
            clamp: ClampF32::NONE,
        }
    }

    fn dw_geom(stride: usize, dilation: usize, pad: usize, dm: usize) -> DepthwiseParams {
        DepthwiseParams {
            stride_h: stride,
            stride_w: stride,
            dilation_h: dilation,
            dilation_w: dilation,
            pad_top: pad,
            pad_left: pad,
            depth_multiplier: dm,
            clamp: ClampF32::NONE,
        }
    }

    #[test]
    fn conv_i8_hand_worked_per_channel() {
        // Input scale 0.5 zp -1: q [-1, 1, 3, 127] is [0, 1, 2, 64].
        // Two 1x1 filters, scales 0.25 and 1.0, weights 2 and -3.
        // Output scale 1.0 zp 3.
        let q = ConvQuantParams::per_channel(0.5, -1, &[0.25, 1.0], 1.0, 3, FusedActivation::None, -128, 127).unwrap();
        assert_eq!(q.input_offset, 1);
        assert_eq!(q.output_multiplier, vec![1 << 30, 1 << 30]);
        assert_eq!(q.output_shift, vec![-2, 0]);
        let input = [-1i8, 1, 3, 127];
        let filter = [2i8, -3];
        let bias = [4i32, -2];
        let mut out = [0i8; 8];
        conv2d_i8(&geom(1, 1, 0), &q, &input, [1, 2, 2, 1], &filter, [2, 1, 1, 1], Some(&bias), &mut out, [1, 2, 2, 2]);
        // ch0: acc 4, 8, 12, 260 times 1/8 -> 0.5, 1, 1.5, 32.5 rounded away
        // from zero -> 1, 1, 2, 33, plus 3. ch1: acc -2, -8, -14, -386 times
        // 1/2 -> -1, -4, -7, -193, plus 3, the last saturating.
        assert_eq!(out, [4, 2, 4, -1, 5, -4, 36, -128]);

        let q = ConvQuantParams::per_channel(0.5, -1, &[0.25, 1.0], 1.0, 3, Relu, -128, 127).unwrap();
        assert_eq!((q.act_min, q.act_max), (3, 127));
        conv2d_i8(&geom(1, 1, 0), &q, &input, [1, 2, 2, 1], &filter, [2, 1, 1, 1], Some(&bias), &mut out, [1, 2, 2, 2]);
        assert_eq!(out, [4, 3, 4, 3, 5, 3, 36, 3]);
    }

    #[test]
    fn conv_i8_padding_contributes_nothing() {
        // Zero point 10: a padded tap must not add (pad - zp) * w.
        let q = ConvQuantParams::per_channel(1.0, 10, &[1.0], 1.0, 0, FusedActivation::None, -128, 127).unwrap();
        // 1x1x1x1 input, 3x3 filter of ones, pad 1: only the centre tap.
        let mut out = [0i8; 1];
        conv2d_i8(&geom(1, 1, 1), &q, &[15], [1, 1, 1, 1], &[1; 9], [1, 3, 3, 1], None, &mut out, [1, 1, 1, 1]);
        assert_eq!(out, [5]);
    }

    #[test]
    fn per_tensor_multiplier_uses_f32_product() {
        let a = ConvQuantParams::per_tensor(0.1, 0, 0.3, 0, 0.7, 0, FusedActivation::None, -128, 127).unwrap();
        let (m, s) = quantize_multiplier((0.1f32 * 0.3f32) as f64 / 0.7f32 as f64);
        assert_eq!((a.output_multiplier[0], a.output_shift[0]), (m, s));
        let b = ConvQuantParams::per_channel(0.1, 0, &[0.3], 0.7, 0, FusedActivation::None, -128, 127).unwrap();
        let (m, s) = quantize_multiplier(0.1f32 as f64 * 0.3f32 as f64 / 0.7f32 as f64);
        assert_eq!((b.output_multiplier[0], b.output_shift[0]), (m, s));
        assert!(ConvQuantParams::per_channel(0.0, 0, &[0.3], 0.7, 0, FusedActivation::None, -128, 127).is_none());
        assert!(ConvQuantParams::per_channel(0.1, 0, &[], 0.7, 0, FusedActivation::None, -128, 127).is_none());
        assert!(ConvQuantParams::per_channel_16x8(0.1, 1, &[0.3], 0.7, 0, FusedActivation::None).is_none());
    }

    #[test]
    fn fully_connected_hand_worked() {
        // Per-tensor int8 with an asymmetric filter: input 0.5/zp 2,
        // filter 0.25/zp -1, output 0.25/zp -5. x = [1, -1], w = [1, 0].
        let q = ConvQuantParams::per_tensor(0.5, 2, 0.25, -1, 0.25, -5, FusedActivation::None, -128, 127).unwrap();
        assert_eq!(q.filter_offset, 1);
        let mut out = [0i8; 1];
        fully_connected_i8(&q, &[4, 0], &[3, -1], None, &mut out, 1, 2, 1);
        assert_eq!(out, [-1]);

        // Per-channel, with saturation on both sides.
        let q = ConvQuantParams::per_channel(0.5, 0, &[0.1, 0.05], 0.1, 0, FusedActivation::None, -128, 127).unwrap();
        let mut out = [0i8; 2];
        fully_connected_i8(&q, &[7], &[10, -20], None, &mut out, 1, 1, 2);
        assert_eq!(out, [35, -35]);
        let q = ConvQuantParams::per_channel(0.5, 0, &[0.1, 0.05], 0.01, 0, FusedActivation::None, -128, 127).unwrap();
        fully_connected_i8(&q, &[7], &[10, -20], None, &mut out, 1, 1, 2);
        assert_eq!(out, [127, -128]);
        // Relu6 on an output of scale 0.1: bounds 0..=60; reals 7 and -7.
        let q = ConvQuantParams::per_channel(0.5, 0, &[0.1, 0.05], 0.1, 0, Relu6, -128, 127).unwrap();
        fully_connected_i8(&q, &[14], &[10, -20], None, &mut out, 1, 1, 2);
        assert_eq!(out, [60, 0]);
    }

    #[test]
    fn fully_connected_16x8_accumulators() {
        // Both accumulator widths requantise in f64: round(acc / 3), half
        // away from zero. The fixed-point 64-bit path (a 16-bit reduced
        // multiplier) would be a step off for some of these inputs, as it
        // was on LiteRT's int16x8 MobileNet v2 classifier.
        let q = ConvQuantParams::per_channel_16x8(1.0, 0, &[1.0], 3.0, 0, FusedActivation::None).unwrap();
        let (m, s) = q.channel(0);
        let mut o32 = [0i16; 1];
        let mut o64 = [0i16; 1];
        let mut fixed_point_differs = 0;
        for x in i16::MIN..=i16::MAX {
            fully_connected_i16x8(&q, &[x], &[1], Some(&[0i32][..]), &mut o32, 1, 1, 1);
            fully_connected_i16x8(&q, &[x], &[1], Some(&[0i64][..]), &mut o64, 1, 1, 1);
            let want = (x as f64 * (1.0f64 / 3.0)).round() as i16;
            assert_eq!((o32[0], o64[0]), (want, want), "x = {x}");
            if multiply_by_quantized_multiplier_i64(x as i64, m, s) != want as i32 {
                fixed_point_differs += 1;
            }
        }
        assert!(fixed_point_differs > 0);
        // Ties round away from zero: 3 * 0.5 and -3 * 0.5.
        let q = ConvQuantParams::per_channel_16x8(0.5, 0, &[1.0], 1.0, 0, FusedActivation::None).unwrap();
        let mut o = [0i16; 2];
        fully_connected_i16x8(&q, &[3, -3], &[1], None::<&[i64]>, &mut o, 2, 1, 1);
        assert_eq!(o, [2, -2]);
        // A large int64 bias saturates instead of wrapping at 32 bits.
        let q = ConvQuantParams::per_channel_16x8(1.0, 0, &[1.0], 3.0, 0, FusedActivation::None).unwrap();
        fully_connected_i16x8(&q, &[1], &[1], Some(&[1i64 << 40][..]), &mut o64, 1, 1, 1);
        assert_eq!(o64, [32767]);
        fully_connected_i16x8(&q, &[1], &[1], Some(&[-(1i64 << 40)][..]), &mut o64, 1, 1, 1);
        assert_eq!(o64, [-32768]);
    }

    #[test]
    fn fully_connected_per_tensor_real_multiplier_is_all_f64() {
        // The fixed-point multiplier forms s_in * s_filter in f32; the real
        // one FULLY_CONNECTED uses widens both first.
        let (si, sf, so) = (0.1f32, 0.3f32, 0.7f32);
        let q = ConvQuantParams::per_tensor(si, 0, sf, 0, so, 0, FusedActivation::None, -128, 127).unwrap();
        assert_eq!(q.real_multiplier, vec![si as f64 * sf as f64 / so as f64]);
        let (m, s) = quantize_multiplier((si * sf) as f64 / so as f64);
        assert_eq!((q.output_multiplier[0], q.output_shift[0]), (m, s));
    }

    #[test]
    fn uint8_conv_and_fc_use_filter_zero_point() {
        // uint8 input zp 128, filter zp 100 scale 0.5, output zp 128 scale 1.
        let q = ConvQuantParams::per_tensor(1.0, 128, 0.5, 100, 1.0, 128, FusedActivation::None, 0, 255).unwrap();
        // x = [2, -3], w = [1, 2] (q 102, 104): 2 - 6 = -4 -> 124.
        let mut out = [0u8; 1];
        fully_connected_u8(&q, &[130, 125], &[102, 104], Some(&[0]), &mut out, 1, 2, 1);
        assert_eq!(out, [124]);
        conv2d_u8(
            &geom(1, 1, 0),
            &q,
            &[130, 125],
            [1, 1, 1, 2],
            &[102, 104],
            [1, 1, 1, 2],
            Some(&[0]),
            &mut out,
            [1, 1, 1, 1],
        );
        assert_eq!(out, [124]);
        // Bias in units of input*filter scale (0.5): +20 -> +10.
        conv2d_u8(
            &geom(1, 1, 0),
            &q,
            &[130, 125],
            [1, 1, 1, 2],
            &[102, 104],
            [1, 1, 1, 2],
            Some(&[20]),
            &mut out,
            [1, 1, 1, 1],
        );
        assert_eq!(out, [134]);
        // Depthwise: channel c times its own weight.
        let mut out2 = [0u8; 2];
        depthwise_conv2d_u8(
            &dw_geom(1, 1, 0, 1),
            &q,
            &[130, 125],
            [1, 1, 1, 2],
            &[102, 104],
            [1, 1, 1, 2],
            None,
            &mut out2,
            [1, 1, 1, 2],
        );
        assert_eq!(out2, [130, 122]);
    }

    /// Float reference of a (grouped) conv over dequantised values.
    #[allow(clippy::too_many_arguments)]
    fn conv_ref(
        p: &Conv2dParams,
        x: &[f64],
        in_shape: [usize; 4],
        w: &[f64],
        f_shape: [usize; 4],
        bias: &[f64],
        out_shape: [usize; 4],
    ) -> Vec<f64> {
        let [n, ih, iw, ic] = in_shape;
        let [_, fh, fw, fi] = f_shape;
        let [_, oh, ow, oc] = out_shape;
        let per_group = oc / (ic / fi);
        let mut out = vec![0.0; n * oh * ow * oc];
        for b in 0..n {
            for oy in 0..oh {
                for ox in 0..ow {
                    for o in 0..oc {
                        let mut s = bias[o];
                        for ky in 0..fh {
                            for kx in 0..fw {
                                let iy = (oy * p.stride_h + ky * p.dilation_h) as isize - p.pad_top as isize;
                                let ix = (ox * p.stride_w + kx * p.dilation_w) as isize - p.pad_left as isize;
                                if iy < 0 || ix < 0 || iy >= ih as isize || ix >= iw as isize {
                                    continue;
                                }
                                for c in 0..fi {
                                    let xi =
                                        ((b * ih + iy as usize) * iw + ix as usize) * ic + (o / per_group) * fi + c;
                                    s += x[xi] * w[((o * fh + ky) * fw + kx) * fi + c];
                                }
                            }
                        }
                        out[((b * oh + oy) * ow + ox) * oc + o] = s;
                    }
                }
            }
        }
        out
    }

    fn out_dim(i: usize, f: usize, stride: usize, dil: usize, pad: usize) -> usize {
        let eff = (f - 1) * dil + 1;
        (i + 2 * pad).saturating_sub(eff) / stride + 1
    }

    #[test]
    fn conv_i8_and_16x8_match_float_reference() {
        let mut rng = Lcg(7);
        for case in 0..60 {
            let groups = if case % 3 == 0 { 2 } else { 1 };
            let fi = rng.range(1, 4) as usize;
            let ic = fi * groups;
            let oc = groups * rng.range(1, 3) as usize;
            let (ih, iw) = (rng.range(3, 7) as usize, rng.range(3, 7) as usize);
            let (fh, fw) = (rng.range(1, 3) as usize, rng.range(1, 3) as usize);
            let p = geom(rng.range(1, 2) as usize, rng.range(1, 2) as usize, rng.range(0, 1) as usize);
            let oh = out_dim(ih, fh, p.stride_h, p.dilation_h, p.pad_top);
            let ow = out_dim(iw, fw, p.stride_w, p.dilation_w, p.pad_left);
            let in_shape = [2, ih, iw, ic];
            let f_shape = [oc, fh, fw, fi];
            let out_shape = [2, oh, ow, oc];
            let in_scale = rng.float(0.01, 0.2);
            let in_zp = rng.range(-128, 127);
            let f_scales: Vec<f32> = (0..oc).map(|_| rng.float(0.001, 0.05)).collect();
            let input = rng.i8s(in_shape.iter().product());
            let filter: Vec<i8> = (0..f_shape.iter().product::<usize>()).map(|_| rng.range(-127, 127) as i8).collect();
            let bias: Vec<i32> = (0..oc).map(|_| rng.range(-5000, 5000)).collect();
            let xf: Vec<f64> = input.iter().map(|&v| deq(v as i32, in_scale, in_zp)).collect();
            let wf: Vec<f64> =
                filter.iter().enumerate().map(|(i, &v)| deq(v as i32, f_scales[i / (fh * fw * fi)], 0)).collect();
            let bf: Vec<f64> =
                bias.iter().enumerate().map(|(o, &v)| v as f64 * in_scale as f64 * f_scales[o] as f64).collect();
            let real = conv_ref(&p, &xf, in_shape, &wf, f_shape, &bf, out_shape);
            let max = real.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
            let out_scale = (max / 100.0) as f32;
            let out_zp = rng.range(-20, 20);
            let act = if case % 4 == 1 { Relu } else { FusedActivation::None };
            let q =
                ConvQuantParams::per_channel(in_scale, in_zp, &f_scales, out_scale, out_zp, act, -128, 127).unwrap();
            let mut out = vec![0i8; real.len()];
            conv2d_i8(&p, &q, &input, in_shape, &filter, f_shape, Some(&bias), &mut out, out_shape);
            for (i, (&o, &r)) in out.iter().zip(&real).enumerate() {
                let d = off_by(o as i32, r, out_scale, out_zp, q.act_min, q.act_max);
                assert!(d <= 1.0, "case {case} elem {i}: got {o}, real {r}, off by {d}");
            }

            // 16x8: same filter, int16 input with zero point 0.
            let in16 = rng.i16s(in_shape.iter().product(), -32768, 32767);
            let in16_scale = rng.float(1e-4, 1e-3);
            let xf: Vec<f64> = in16.iter().map(|&v| deq(v as i32, in16_scale, 0)).collect();
            let b64: Vec<i64> = bias.iter().map(|&b| b as i64 * 300).collect();
            let bf: Vec<f64> =
                b64.iter().enumerate().map(|(o, &v)| v as f64 * in16_scale as f64 * f_scales[o] as f64).collect();
            let real = conv_ref(&p, &xf, in_shape, &wf, f_shape, &bf, out_shape);
            let max = real.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
            let out_scale = (max / 20000.0) as f32;
            let q = ConvQuantParams::per_channel_16x8(in16_scale, 0, &f_scales, out_scale, 0, act).unwrap();
            let mut out = vec![0i16; real.len()];
            conv2d_i16x8(&p, &q, &in16, in_shape, &filter, f_shape, Some(&b64), &mut out, out_shape);
            for (i, (&o, &r)) in out.iter().zip(&real).enumerate() {
                let d = off_by(o as i32, r, out_scale, 0, q.act_min, q.act_max);
                // The 64-bit path rounds the multiplier to 16 bits first.
                let tol = 1.0 + (o as f64).abs() / 32768.0;
                assert!(d <= tol, "16x8 case {case} elem {i}: got {o}, real {r}, off by {d}");
            }
            let b32: Vec<i32> = b64.iter().map(|&b| b as i32).collect();
            let mut out32 = vec![0i16; real.len()];
            conv2d_i16x8(&p, &q, &in16, in_shape, &filter, f_shape, Some(&b32), &mut out32, out_shape);
            for (i, (&o, &r)) in out32.iter().zip(&real).enumerate() {
                let d = off_by(o as i32, r, out_scale, 0, q.act_min, q.act_max);
                assert!(d <= 1.0, "16x8/32 case {case} elem {i}: got {o}, real {r}, off by {d}");
            }
        }
    }

    #[test]
    fn depthwise_i8_and_16x8_match_float_reference() {
        let mut rng = Lcg(11);
        for case in 0..60 {
            let ic = rng.range(1, 3) as usize;
            let dm = rng.range(1, 2) as usize;
            let oc = ic * dm;
            let (ih, iw) = (rng.range(2, 6) as usize, rng.range(2, 6) as usize);
            let (fh, fw) = (rng.range(1, 3) as usize, rng.range(1, 3) as usize);
            let p = dw_geom(rng.range(1, 2) as usize, rng.range(1, 2) as usize, rng.range(0, 1) as usize, dm);
            let oh = out_dim(ih, fh, p.stride_h, p.dilation_h, p.pad_top);
            let ow = out_dim(iw, fw, p.stride_w, p.dilation_w, p.pad_left);
            let in_shape = [1, ih, iw, ic];
            let f_shape = [1, fh, fw, oc];
            let out_shape = [1, oh, ow, oc];
            let in_scale = rng.float(0.01, 0.2);
            let in_zp = rng.range(-128, 127);
            let f_scales: Vec<f32> = (0..oc).map(|_| rng.float(0.001, 0.05)).collect();
            let input = rng.i8s(ih * iw * ic);
            let filter: Vec<i8> = (0..fh * fw * oc).map(|_| rng.range(-127, 127) as i8).collect();
            let bias: Vec<i32> = (0..oc).map(|_| rng.range(-2000, 2000)).collect();
            let reference = |x: &[f64], bias_real: &[f64]| {
                let mut out = vec![0.0f64; oh * ow * oc];
                for oy in 0..oh {
                    for ox in 0..ow {
                        for o in 0..oc {
                            let c = o / dm;
                            let mut s = bias_real[o];
                            for ky in 0..fh {
                                for kx in 0..fw {
                                    let iy = (oy * p.stride_h + ky * p.dilation_h) as isize - p.pad_top as isize;
                                    let ix = (ox * p.stride_w + kx * p.dilation_w) as isize - p.pad_left as isize;
                                    if iy < 0 || ix < 0 || iy >= ih as isize || ix >= iw as isize {
                                        continue;
                                    }
                                    let w = deq(filter[(ky * fw + kx) * oc + o] as i32, f_scales[o], 0);
                                    s += x[(iy as usize * iw + ix as usize) * ic + c] * w;
                                }
                            }
                            out[(oy * ow + ox) * oc + o] = s;
                        }
                    }
                }
                out
            };
            let xf: Vec<f64> = input.iter().map(|&v| deq(v as i32, in_scale, in_zp)).collect();
            let bf: Vec<f64> =
                bias.iter().enumerate().map(|(o, &v)| v as f64 * in_scale as f64 * f_scales[o] as f64).collect();
            let real = reference(&xf, &bf);
            let max = real.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
            let out_scale = (max / 100.0) as f32;
            let out_zp = rng.range(-20, 20);
            let q = ConvQuantParams::per_channel(
                in_scale,
                in_zp,
                &f_scales,
                out_scale,
                out_zp,
                FusedActivation::None,
                -128,
                127,
            )
            .unwrap();
            let mut out = vec![0i8; real.len()];
            depthwise_conv2d_i8(&p, &q, &input, in_shape, &filter, f_shape, Some(&bias), &mut out, out_shape);
            for (i, (&o, &r)) in out.iter().zip(&real).enumerate() {
                let d = off_by(o as i32, r, out_scale, out_zp, -128, 127);
                assert!(d <= 1.0, "case {case} elem {i}: got {o}, real {r}");
            }

            let in16 = rng.i16s(ih * iw * ic, -32768, 32767);
            let s16 = rng.float(1e-4, 1e-3);
            let xf: Vec<f64> = in16.iter().map(|&v| deq(v as i32, s16, 0)).collect();
            let b64: Vec<i64> = bias.iter().map(|&b| b as i64 * 1000).collect();
            let bf: Vec<f64> =
                b64.iter().enumerate().map(|(o, &v)| v as f64 * s16 as f64 * f_scales[o] as f64).collect();
            let real = reference(&xf, &bf);
            let max = real.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
            let out_scale = (max / 30000.0) as f32;
            let q = ConvQuantParams::per_channel_16x8(s16, 0, &f_scales, out_scale, 0, FusedActivation::None).unwrap();
            let mut out = vec![0i16; real.len()];
            depthwise_conv2d_i16x8(&p, &q, &in16, in_shape, &filter, f_shape, Some(&b64), &mut out, out_shape);
            for (i, (&o, &r)) in out.iter().zip(&real).enumerate() {
                let d = off_by(o as i32, r, out_scale, 0, -32768, 32767);
                let tol = 1.0 + (o as f64).abs() / 32768.0;
                assert!(d <= tol, "16x8 case {case} elem {i}: got {o}, real {r}");
            }
        }
    }

    #[test]
    fn fully_connected_matches_float_reference() {
        let mut rng = Lcg(3);
        for case in 0..80 {
            let (batches, depth, units) =
                (rng.range(1, 3) as usize, rng.range(1, 40) as usize, rng.range(1, 6) as usize);
            let in_scale = rng.float(0.01, 0.2);
            let in_zp = rng.range(-128, 127);
            let per_channel = case % 2 == 0;
            let f_scales: Vec<f32> = (0..if per_channel { units } else { 1 }).map(|_| rng.float(0.001, 0.05)).collect();
            let f_zp = if per_channel { 0 } else { rng.range(-10, 10) };
            let input = rng.i8s(batches * depth);
            let weights: Vec<i8> = (0..units * depth).map(|_| rng.range(-127, 127) as i8).collect();
            let bias: Vec<i32> = (0..units).map(|_| rng.range(-3000, 3000)).collect();
            let fs = |o: usize| f_scales[if per_channel { o } else { 0 }];
            let mut real = vec![0.0f64; batches * units];
            for b in 0..batches {
                for o in 0..units {
                    let mut s = bias[o] as f64 * in_scale as f64 * fs(o) as f64;
                    for d in 0..depth {
                        s += deq(input[b * depth + d] as i32, in_scale, in_zp)
                            * deq(weights[o * depth + d] as i32, fs(o), f_zp);
                    }
                    real[b * units + o] = s;
                }
            }
            let max = real.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
            let out_scale = (max / 100.0) as f32;
            let out_zp = rng.range(-30, 30);
            let q = if per_channel {
                ConvQuantParams::per_channel(
                    in_scale,
                    in_zp,
                    &f_scales,
                    out_scale,
                    out_zp,
                    FusedActivation::None,
                    -128,
                    127,
                )
            } else {
                ConvQuantParams::per_tensor(
                    in_scale,
                    in_zp,
                    f_scales[0],
                    f_zp,
                    out_scale,
                    out_zp,
                    FusedActivation::None,
                    -128,
                    127,
                )
            }
            .unwrap();
            let mut out = vec![0i8; batches * units];
            fully_connected_i8(&q, &input, &weights, Some(&bias), &mut out, batches, depth, units);
            for (i, (&o, &r)) in out.iter().zip(&real).enumerate() {
                let d = off_by(o as i32, r, out_scale, out_zp, -128, 127);
                assert!(d <= 1.0, "case {case} elem {i}: got {o}, real {r}");
            }
        }
    }
}
