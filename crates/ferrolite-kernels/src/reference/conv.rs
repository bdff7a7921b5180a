//! Float convolutions: CONV_2D (including grouped), DEPTHWISE_CONV_2D and
//! TRANSPOSE_CONV, with the loop order and accumulation of TFLite's
//! reference kernels (`reference/conv.h`, `reference/depthwiseconv_float.h`,
//! `reference/transpose_conv.h`), so results match bit for bit.
//!
//! Padding is passed as the leading amount only (`pad_top`, `pad_left`); the
//! trailing side is implied by the output shape. See [`super::padding`].

use crate::activation::ClampF32;

/// Parameters of CONV_2D.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Conv2dParams {
    pub stride_h: usize,
    pub stride_w: usize,
    pub dilation_h: usize,
    pub dilation_w: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub clamp: ClampF32,
}

/// Parameters of DEPTHWISE_CONV_2D.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DepthwiseParams {
    pub stride_h: usize,
    pub stride_w: usize,
    pub dilation_h: usize,
    pub dilation_w: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub depth_multiplier: usize,
    pub clamp: ClampF32,
}

/// Parameters of TRANSPOSE_CONV (TFLite has no dilation for it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TransposeConvParams {
    pub stride_h: usize,
    pub stride_w: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub clamp: ClampF32,
}

/// Position of input tap `k` of a window starting at `origin`, if it lies
/// inside `0..size`.
#[inline(always)]
pub(crate) fn tap(origin: isize, k: usize, dilation: usize, size: usize) -> Option<usize> {
    let pos = origin + (k * dilation) as isize;
    if pos >= 0 && (pos as usize) < size {
        Some(pos as usize)
    } else {
        None
    }
}

/// One filter tap of an output pixel that lands inside the input: the input
/// pixel it reads (flat `(b, y, x)` index: multiply by the channel count for
/// the element offset) and its place `fy * kw + fx` in the filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tap {
    pub pixel: usize,
    pub index: usize,
}

/// A convolution's sliding window. Every reference convolution (float,
/// quantised, hybrid; plain and depthwise) walks its output with
/// [`Window::for_each_output`], which hands over each output pixel's
/// in-bounds taps in filter order (row, then column): padding taps are
/// simply absent, as in TFLite's reference kernels, and summing over the
/// list keeps TFLite's accumulation order.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    stride: [usize; 2],
    dilation: [usize; 2],
    pad: [usize; 2],
    filter: [usize; 2],
}

impl Window {
    pub(crate) fn conv(p: &Conv2dParams, f_h: usize, f_w: usize) -> Window {
        Window {
            stride: [p.stride_h, p.stride_w],
            dilation: [p.dilation_h, p.dilation_w],
            pad: [p.pad_top, p.pad_left],
            filter: [f_h, f_w],
        }
    }

    pub(crate) fn depthwise(p: &DepthwiseParams, f_h: usize, f_w: usize) -> Window {
        Window {
            stride: [p.stride_h, p.stride_w],
            dilation: [p.dilation_h, p.dilation_w],
            pad: [p.pad_top, p.pad_left],
            filter: [f_h, f_w],
        }
    }

    /// Calls `f(out_pixel, taps)` for every output pixel of `out_shape` in
    /// NHWC order (`out_pixel` is the flat `(b, oy, ox)` index).
    pub(crate) fn for_each_output(
        &self,
        in_shape: [usize; 4],
        out_shape: [usize; 4],
        mut f: impl FnMut(usize, &[Tap]),
    ) {
        let [batches, in_h, in_w, _] = in_shape;
        let [_, out_h, out_w, _] = out_shape;
        let [f_h, f_w] = self.filter;
        let mut taps = Vec::with_capacity(f_h * f_w);
        for b in 0..batches {
            for oy in 0..out_h {
                let iy0 = (oy * self.stride[0]) as isize - self.pad[0] as isize;
                for ox in 0..out_w {
                    let ix0 = (ox * self.stride[1]) as isize - self.pad[1] as isize;
                    taps.clear();
                    for fy in 0..f_h {
                        let Some(iy) = tap(iy0, fy, self.dilation[0], in_h) else {
                            continue;
                        };
                        for fx in 0..f_w {
                            if let Some(ix) = tap(ix0, fx, self.dilation[1], in_w) {
                                taps.push(Tap { pixel: (b * in_h + iy) * in_w + ix, index: fy * f_w + fx });
                            }
                        }
                    }
                    f((b * out_h + oy) * out_w + ox, &taps);
                }
            }
        }
    }
}

/// CONV_2D over NHWC float input.
///
/// - `in_shape`: `[batches, in_h, in_w, in_c]`
/// - `filter_shape`: `[out_c, kh, kw, filter_in_c]` (OHWI)
/// - `out_shape`: `[batches, out_h, out_w, out_c]`
/// - `bias`: `out_c` values, or none.
///
/// Grouped convolution: `in_c = filter_in_c * groups` and `out_c` a multiple
/// of `groups`; output channel `oc` reads input channels of group
/// `oc / (out_c / groups)`. With `groups == 1` this is the plain conv.
///
/// For each output element the products are summed over filter row, filter
/// column, then input channel into one f32 accumulator; the bias is added
/// after the sum and the clamp applied last, as TFLite's reference does.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_f32(
    p: &Conv2dParams,
    input: &[f32],
    in_shape: [usize; 4],
    filter: &[f32],
    filter_shape: [usize; 4],
    bias: Option<&[f32]>,
    output: &mut [f32],
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
            let mut total = 0.0f32;
            for t in taps {
                let i = t.pixel * in_c + in_c_base;
                let f = (oc * taps_per_filter + t.index) * f_in;
                for (x, w) in input[i..i + f_in].iter().zip(&filter[f..f + f_in]) {
                    total += x * w;
                }
            }
            let bias_value = bias.map_or(0.0, |bv| bv[oc]);
            output[pix * out_c + oc] = p.clamp.apply(total + bias_value);
        }
    });
}

/// DEPTHWISE_CONV_2D over NHWC float input.
///
/// - `in_shape`: `[batches, in_h, in_w, in_c]`
/// - `filter_shape`: `[1, kh, kw, out_c]`
/// - `out_shape`: `[batches, out_h, out_w, out_c]`, `out_c = in_c * depth_multiplier`
///
/// Output channel `ic * depth_multiplier + m` is input channel `ic` filtered
/// by filter channel `ic * depth_multiplier + m`. Sum over filter row then
/// column, then bias, then clamp.
#[allow(clippy::too_many_arguments)]
pub fn depthwise_conv2d_f32(
    p: &DepthwiseParams,
    input: &[f32],
    in_shape: [usize; 4],
    filter: &[f32],
    filter_shape: [usize; 4],
    bias: Option<&[f32]>,
    output: &mut [f32],
    out_shape: [usize; 4],
) {
    let [_, _, _, in_c] = in_shape;
    let [_, f_h, f_w, f_c] = filter_shape;
    let out_c = out_shape[3];
    let dm = p.depth_multiplier;
    Window::depthwise(p, f_h, f_w).for_each_output(in_shape, out_shape, |pix, taps| {
        for oc in 0..out_c.min(in_c * dm) {
            let ic = oc / dm;
            let mut total = 0.0f32;
            for t in taps {
                total += input[t.pixel * in_c + ic] * filter[t.index * f_c + oc];
            }
            let bias_value = bias.map_or(0.0, |bv| bv[oc]);
            output[pix * out_c + oc] = p.clamp.apply(total + bias_value);
        }
    });
}

/// TRANSPOSE_CONV over NHWC float input.
///
/// - `in_shape`: `[batches, in_h, in_w, in_c]`
/// - `filter`: `[out_c, kh, kw, in_c]`, as TFLite stores TRANSPOSE_CONV weights
/// - `out_shape`: `[batches, out_h, out_w, out_c]` (the op's `output_shape` input)
///
/// Scatter formulation: the output is zeroed, every input element adds
/// `x * w` into each output position its window reaches (input element
/// `(iy, ix)` reaches output row `iy * stride_h - pad_top + fy`), skipping
/// positions outside the output; then the bias is added and the clamp
/// applied. Accumulation order is TFLite's: input row, column, channel, then
/// filter row, column, output channel.
#[allow(clippy::too_many_arguments)]
pub fn transpose_conv2d_f32(
    p: &TransposeConvParams,
    input: &[f32],
    in_shape: [usize; 4],
    filter: &[f32],
    filter_shape: [usize; 4],
    bias: Option<&[f32]>,
    output: &mut [f32],
    out_shape: [usize; 4],
) {
    let [batches, in_h, in_w, in_c] = in_shape;
    let [_, f_h, f_w, f_in] = filter_shape;
    let [_, out_h, out_w, out_c] = out_shape;
    let out_len = batches * out_h * out_w * out_c;
    let output = &mut output[..out_len];
    output.fill(0.0);

    for b in 0..batches {
        for iy in 0..in_h {
            let oy0 = (iy * p.stride_h) as isize - p.pad_top as isize;
            for ix in 0..in_w {
                let ox0 = (ix * p.stride_w) as isize - p.pad_left as isize;
                let in_base = ((b * in_h + iy) * in_w + ix) * in_c;
                for ic in 0..in_c {
                    let x = input[in_base + ic];
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
                                let w = filter[((oc * f_h + fy) * f_w + fx) * f_in + ic];
                                output[out_base + oc] += x * w;
                            }
                        }
                    }
                }
            }
        }
    }

    for pixel in output.chunks_exact_mut(out_c.max(1)) {
        for (oc, v) in pixel.iter_mut().enumerate() {
            let mut acc = *v;
            if let Some(bv) = bias {
                acc += bv[oc];
            }
            *v = p.clamp.apply(acc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::padding::{Padding, Padding2d};

    fn conv_params(stride: usize, dilation: usize, pad: usize, clamp: ClampF32) -> Conv2dParams {
        Conv2dParams {
            stride_h: stride,
            stride_w: stride,
            dilation_h: dilation,
            dilation_w: dilation,
            pad_top: pad,
            pad_left: pad,
            clamp,
        }
    }

    fn iota(n: usize, start: f32) -> Vec<f32> {
        (0..n).map(|i| start + i as f32).collect()
    }

    #[test]
    fn conv_valid_2x2_two_batches() {
        // Batch 0: 1..9, batch 1: the negation.
        let mut input = iota(9, 1.0);
        input.extend(iota(9, 1.0).iter().map(|v| -v));
        let filter = [1.0, 2.0, 3.0, 4.0];
        let mut out = [0.0; 8];
        conv2d_f32(
            &conv_params(1, 1, 0, ClampF32::NONE),
            &input,
            [2, 3, 3, 1],
            &filter,
            [1, 2, 2, 1],
            None,
            &mut out,
            [2, 2, 2, 1],
        );
        // (0,0): 1*1 + 2*2 + 4*3 + 5*4 = 37, and so on.
        assert_eq!(out, [37.0, 47.0, 67.0, 77.0, -37.0, -47.0, -67.0, -77.0]);
    }

    #[test]
    fn conv_same_odd_size_stride1() {
        let w = Padding2d::compute(Padding::Same, 3, 3, 3, 3, 1, 1, 1, 1);
        assert_eq!((w.out_h, w.out_w, w.padding.top, w.padding.left), (3, 3, 1, 1));
        let input = iota(9, 1.0);
        let filter = [1.0; 9];
        let mut out = [0.0; 9];
        conv2d_f32(
            &conv_params(1, 1, 1, ClampF32::NONE),
            &input,
            [1, 3, 3, 1],
            &filter,
            [1, 3, 3, 1],
            None,
            &mut out,
            [1, 3, 3, 1],
        );
        // Sums of each 3x3 neighbourhood clipped to the image.
        assert_eq!(out, [12.0, 21.0, 16.0, 27.0, 45.0, 33.0, 24.0, 39.0, 28.0]);
    }

    #[test]
    fn conv_same_even_size_stride2_pads_at_end() {
        // 4x4 image, 3x3 filter, stride 2: out 2x2, total pad 1, all of it at
        // the bottom/right, so pad_top = pad_left = 0.
        let w = Padding2d::compute(Padding::Same, 4, 4, 3, 3, 2, 2, 1, 1);
        assert_eq!((w.out_h, w.out_w), (2, 2));
        assert_eq!(w.padding, Padding2d { top: 0, left: 0, bottom: 1, right: 1 });
        let input = iota(16, 1.0);
        let filter = [1.0; 9];
        let mut out = [0.0; 4];
        conv2d_f32(
            &conv_params(2, 1, 0, ClampF32::NONE),
            &input,
            [1, 4, 4, 1],
            &filter,
            [1, 3, 3, 1],
            None,
            &mut out,
            [1, 2, 2, 1],
        );
        // (0,0): 1+2+3+5+6+7+9+10+11; (0,1): 3+4+7+8+11+12;
        // (1,0): 9+10+11+13+14+15; (1,1): 11+12+15+16.
        assert_eq!(out, [54.0, 45.0, 72.0, 54.0]);
    }

    #[test]
    fn conv_dilation2_valid() {
        // in(y, x) = 5y + x on a 5x5 image; 2x2 filter [1, 10, 100, 1000] with
        // dilation 2 reads in(y,x), in(y,x+2), in(y+2,x), in(y+2,x+2):
        // v + 10(v+2) + 100(v+10) + 1000(v+12) = 1111 v + 13020.
        let input = iota(25, 0.0);
        let filter = [1.0, 10.0, 100.0, 1000.0];
        let mut out = [0.0; 9];
        conv2d_f32(
            &conv_params(1, 2, 0, ClampF32::NONE),
            &input,
            [1, 5, 5, 1],
            &filter,
            [1, 2, 2, 1],
            None,
            &mut out,
            [1, 3, 3, 1],
        );
        for oy in 0..3 {
            for ox in 0..3 {
                let v = (5 * oy + ox) as f32;
                assert_eq!(out[oy * 3 + ox], 1111.0 * v + 13020.0, "at ({oy},{ox})");
            }
        }
    }

    #[test]
    fn conv_dilation2_same_stride2() {
        // 1-D along width: in 1x1x5x1 = [1,2,3,4,5], filter 1x1x3 ones,
        // dilation 2 (effective 5), stride 2, SAME: out 3, total pad
        // 2*2 + 5 - 5 = 4, pad_left 2. Taps of out x: 2x-2, 2x, 2x+2.
        let w = Padding2d::compute(Padding::Same, 1, 5, 1, 3, 1, 2, 1, 2);
        assert_eq!((w.out_w, w.padding.left, w.padding.right), (3, 2, 2));
        let p = Conv2dParams {
            stride_h: 1,
            stride_w: 2,
            dilation_h: 1,
            dilation_w: 2,
            pad_top: 0,
            pad_left: 2,
            clamp: ClampF32::NONE,
        };
        let mut out = [0.0; 3];
        conv2d_f32(
            &p,
            &[1.0, 2.0, 3.0, 4.0, 5.0],
            [1, 1, 5, 1],
            &[1.0, 1.0, 1.0],
            [1, 1, 3, 1],
            None,
            &mut out,
            [1, 1, 3, 1],
        );
        // x=0: taps -2,0,2 -> 1+3; x=1: 0,2,4 -> 1+3+5; x=2: 2,4,6 -> 3+5.
        assert_eq!(out, [4.0, 9.0, 8.0]);
    }

    #[test]
    fn conv_bias_then_relu6() {
        let input = [1.0, 2.0];
        let filter = [1.0, 1.0, 2.0, -3.0, 0.5, 0.5];
        let bias = [0.5, 0.0, 5.0];
        let mut out = [0.0; 3];
        conv2d_f32(
            &conv_params(1, 1, 0, ClampF32::RELU6),
            &input,
            [1, 1, 1, 2],
            &filter,
            [3, 1, 1, 2],
            Some(&bias),
            &mut out,
            [1, 1, 1, 3],
        );
        // 3 + 0.5; 2 - 6 -> clamp 0; 1.5 + 5 -> clamp 6.
        assert_eq!(out, [3.5, 0.0, 6.0]);
    }

    #[test]
    fn conv_grouped_two_groups() {
        // in_c 4, filter_in 2 -> 2 groups; out_c 4 -> 2 filters per group.
        // Input 1x1x2x4: pixel 0 = [1,2,3,4], pixel 1 = [10,20,30,40].
        let input = [1.0, 2.0, 3.0, 4.0, 10.0, 20.0, 30.0, 40.0];
        // 1x2 filter: [oc][fx][i].
        #[rustfmt::skip]
        let filter = [
            1.0, 0.0,   0.0, 0.0,  // oc0 (group 0): ch0 at fx 0
            0.0, 0.0,   0.0, 1.0,  // oc1 (group 0): ch1 at fx 1
            1.0, 0.0,   0.0, 0.0,  // oc2 (group 1): ch2 at fx 0
            1.0, 1.0,   1.0, 1.0,  // oc3 (group 1): ch2+ch3 at both
        ];
        let mut out = [0.0; 4];
        conv2d_f32(
            &conv_params(1, 1, 0, ClampF32::NONE),
            &input,
            [1, 1, 2, 4],
            &filter,
            [4, 1, 2, 2],
            Some(&[0.0, 0.0, 0.0, 0.25]),
            &mut out,
            [1, 1, 1, 4],
        );
        // oc0: 1; oc1: 20; oc2: 3; oc3: 3+4+30+40 + 0.25.
        assert_eq!(out, [1.0, 20.0, 3.0, 77.25]);
    }

    #[test]
    fn depthwise_multiplier2_with_bias() {
        // 2x2 image, 2 channels: ch0 = [1,2,3,4], ch1 = [10,20,30,40].
        let input = [1.0, 10.0, 2.0, 20.0, 3.0, 30.0, 4.0, 40.0];
        // Filter [1,2,2,4], per tap: [oc0, oc1, oc2, oc3];
        // oc0 = ch0*[1,1,1,1], oc1 = ch0*[1,0,0,-1],
        // oc2 = ch1*[.5,.5,.5,.5], oc3 = ch1*[0,1,2,3].
        #[rustfmt::skip]
        let filter = [
            1.0, 1.0, 0.5, 0.0,
            1.0, 0.0, 0.5, 1.0,
            1.0, 0.0, 0.5, 2.0,
            1.0, -1.0, 0.5, 3.0,
        ];
        let p = DepthwiseParams {
            stride_h: 1,
            stride_w: 1,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: 0,
            pad_left: 0,
            depth_multiplier: 2,
            clamp: ClampF32::NONE,
        };
        let mut out = [0.0; 4];
        depthwise_conv2d_f32(
            &p,
            &input,
            [1, 2, 2, 2],
            &filter,
            [1, 2, 2, 4],
            Some(&[1.0, 2.0, 3.0, 4.0]),
            &mut out,
            [1, 1, 1, 4],
        );
        // 10+1; (1-4)+2; 50+3; (20+60+120)+4.
        assert_eq!(out, [11.0, -1.0, 53.0, 204.0]);
    }

    #[test]
    fn depthwise_same_stride2_clamped() {
        // 3x3 image 1..9, 3x3 ones, stride 2, SAME: out 2x2, pad 1 each side.
        let w = Padding2d::compute(Padding::Same, 3, 3, 3, 3, 2, 2, 1, 1);
        assert_eq!((w.out_h, w.padding.top, w.padding.bottom), (2, 1, 1));
        let p = DepthwiseParams {
            stride_h: 2,
            stride_w: 2,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: 1,
            pad_left: 1,
            depth_multiplier: 1,
            clamp: ClampF32 { min: 13.0, max: 25.0 },
        };
        let mut out = [0.0; 4];
        depthwise_conv2d_f32(&p, &iota(9, 1.0), [1, 3, 3, 1], &[1.0; 9], [1, 3, 3, 1], None, &mut out, [1, 2, 2, 1]);
        // Unclamped: 1+2+4+5=12, 2+3+5+6=16, 4+5+7+8=24, 5+6+8+9=28.
        assert_eq!(out, [13.0, 16.0, 24.0, 25.0]);
    }

    #[test]
    fn depthwise_dilation2() {
        // 1-D: in 1x1x5x1 = [1,2,3,4,5], taps [1, 100] with dilation 2, VALID:
        // out x = in[x] + 100 in[x+2] for x in 0..3.
        let p = DepthwiseParams {
            stride_h: 1,
            stride_w: 1,
            dilation_h: 1,
            dilation_w: 2,
            pad_top: 0,
            pad_left: 0,
            depth_multiplier: 1,
            clamp: ClampF32::NONE,
        };
        let mut out = [0.0; 3];
        depthwise_conv2d_f32(
            &p,
            &[1.0, 2.0, 3.0, 4.0, 5.0],
            [1, 1, 5, 1],
            &[1.0, 100.0],
            [1, 1, 2, 1],
            None,
            &mut out,
            [1, 1, 3, 1],
        );
        assert_eq!(out, [301.0, 402.0, 503.0]);
    }

    #[test]
    fn transpose_conv_stride2_ones() {
        // 2x2 input [1,2,3,4], 3x3 ones filter, stride 2, SAME output 4x4:
        // padding from the output size is (0 before, 1 after).
        let pad = Padding2d::for_transpose_conv(Padding::Same, 4, 4, 3, 3, 2, 2);
        assert_eq!((pad.top, pad.left), (0, 0));
        let p = TransposeConvParams { stride_h: 2, stride_w: 2, pad_top: 0, pad_left: 0, clamp: ClampF32::NONE };
        let mut out = [f32::NAN; 16];
        transpose_conv2d_f32(
            &p,
            &[1.0, 2.0, 3.0, 4.0],
            [1, 2, 2, 1],
            &[1.0; 9],
            [1, 3, 3, 1],
            None,
            &mut out,
            [1, 4, 4, 1],
        );
        // Input (iy, ix) covers output rows 2iy..2iy+2 and columns 2ix..2ix+2.
        #[rustfmt::skip]
        let expected = [
            1.0, 1.0, 3.0, 2.0,
            1.0, 1.0, 3.0, 2.0,
            4.0, 4.0, 10.0, 6.0,
            3.0, 3.0, 7.0, 4.0,
        ];
        assert_eq!(out, expected);
    }

    #[test]
    fn transpose_conv_matches_gather_with_bias_and_relu() {
        // 2 in channels, 3 out channels, 3x3 filter, stride 2, pad 1, output
        // 5x5 (SAME for 3x3 input). Check against a gather formulation:
        // out(oy, ox, oc) = sum over (iy, ix, ic, fy, fx) with
        // iy*2 - 1 + fy == oy and ix*2 - 1 + fx == ox.
        let pad = Padding2d::for_transpose_conv(Padding::Same, 5, 5, 3, 3, 2, 2);
        assert_eq!((pad.top, pad.left), (1, 1));
        let (in_h, in_w, in_c, out_c, k, s) = (3usize, 3usize, 2usize, 3usize, 3usize, 2usize);
        let (out_h, out_w) = (5usize, 5usize);
        let input: Vec<f32> = (0..in_h * in_w * in_c).map(|i| (i as f32) * 0.5 - 3.0).collect();
        let filter: Vec<f32> = (0..out_c * k * k * in_c).map(|i| ((i * 7) % 11) as f32 - 5.0).collect();
        let bias = [0.5, -1.0, 2.0];
        let p = TransposeConvParams { stride_h: s, stride_w: s, pad_top: 1, pad_left: 1, clamp: ClampF32::RELU };
        let mut out = vec![0.0; out_h * out_w * out_c];
        transpose_conv2d_f32(
            &p,
            &input,
            [1, in_h, in_w, in_c],
            &filter,
            [out_c, k, k, in_c],
            Some(&bias),
            &mut out,
            [1, out_h, out_w, out_c],
        );
        let mut any_clamped = false;
        let mut any_positive = false;
        for oy in 0..out_h {
            for ox in 0..out_w {
                for oc in 0..out_c {
                    let mut acc = 0.0f64;
                    for iy in 0..in_h {
                        for ix in 0..in_w {
                            let fy = oy as isize + 1 - (iy * s) as isize;
                            let fx = ox as isize + 1 - (ix * s) as isize;
                            if !(0..k as isize).contains(&fy) || !(0..k as isize).contains(&fx) {
                                continue;
                            }
                            for ic in 0..in_c {
                                let x = input[(iy * in_w + ix) * in_c + ic] as f64;
                                let w = filter[((oc * k + fy as usize) * k + fx as usize) * in_c + ic] as f64;
                                acc += x * w;
                            }
                        }
                    }
                    let expected = (acc + bias[oc] as f64).max(0.0);
                    any_clamped |= acc + (bias[oc] as f64) < 0.0;
                    any_positive |= expected > 0.0;
                    // Inputs are multiples of 0.5 and weights small integers,
                    // so every partial sum is exact in f32.
                    assert_eq!(out[(oy * out_w + ox) * out_c + oc] as f64, expected);
                }
            }
        }
        assert!(any_clamped && any_positive);
    }
}
