//! Output sizes and implicit paddings for windowed ops (conv, pool), with
//! TFLite's rules (`tensorflow/lite/kernels/padding.h`).
//!
//! SAME padding in TFLite is not always symmetric: when the total padding is
//! odd, the extra row/column goes at the end (bottom/right). The kernels only
//! need the leading padding (`top`/`left`); the trailing side follows from the
//! output size, but it is kept here for anyone who needs all four.

/// TFLite's `Padding` option for CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV
/// and the pools.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    Same,
    Valid,
}

/// Size of the filter once dilation spreads its taps: `(f - 1) * d + 1`.
/// Computed in `i64` so that `f == 0` gives TFLite's `1 - d` rather than a wrap.
#[inline]
fn effective_filter(filter_size: usize, dilation: usize) -> i64 {
    (filter_size as i64 - 1) * dilation as i64 + 1
}

/// Spatial output size of a windowed op along one dimension (TFLite's
/// `ComputeOutSize`).
///
/// - SAME: `ceil(in / stride)`, independent of the filter.
/// - VALID: `(in - effective_filter + stride) / stride`.
///
/// A zero stride, or a VALID window larger than the input, gives 0 (TFLite
/// would compute a non-positive size and reject the model later).
pub fn output_size(padding: Padding, in_size: usize, filter_size: usize, stride: usize, dilation: usize) -> usize {
    if stride == 0 {
        return 0;
    }
    let stride = stride as i64;
    let in_size = in_size as i64;
    let numerator = match padding {
        Padding::Same => in_size + stride - 1,
        Padding::Valid => in_size + stride - effective_filter(filter_size, dilation),
    };
    if numerator <= 0 {
        0
    } else {
        (numerator / stride) as usize
    }
}

/// Leading padding along one dimension and the odd remainder that goes at
/// the end (TFLite's `ComputePaddingWithOffset`): returns `(before, offset)`,
/// where the trailing padding is `before + offset`.
///
/// `total = max(0, (out - 1) * stride + effective_filter - in)`,
/// `before = total / 2`, `offset = total % 2`.
pub fn padding_before(
    stride: usize,
    dilation: usize,
    in_size: usize,
    filter_size: usize,
    out_size: usize,
) -> (usize, usize) {
    let total = (out_size as i64 - 1) * stride as i64 + effective_filter(filter_size, dilation) - in_size as i64;
    let total = if total > 0 { total as usize } else { 0 };
    (total / 2, total % 2)
}

/// Implicit padding of a 2-D windowed op on each side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Padding2d {
    pub top: usize,
    pub left: usize,
    pub bottom: usize,
    pub right: usize,
}

/// Output spatial size together with the padding that produces it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Windowed2d {
    pub out_h: usize,
    pub out_w: usize,
    pub padding: Padding2d,
}

impl Padding2d {
    /// Output size and padding of a conv/pool over an `in_h x in_w` image, as
    /// TFLite's `ComputePaddingHeightWidth` does. Pools pass dilation 1.
    #[allow(clippy::too_many_arguments)]
    pub fn compute(
        padding: Padding,
        in_h: usize,
        in_w: usize,
        filter_h: usize,
        filter_w: usize,
        stride_h: usize,
        stride_w: usize,
        dilation_h: usize,
        dilation_w: usize,
    ) -> Windowed2d {
        let out_h = output_size(padding, in_h, filter_h, stride_h, dilation_h);
        let out_w = output_size(padding, in_w, filter_w, stride_w, dilation_w);
        let (top, off_h) = padding_before(stride_h, dilation_h, in_h, filter_h, out_h);
        let (left, off_w) = padding_before(stride_w, dilation_w, in_w, filter_w, out_w);
        Windowed2d { out_h, out_w, padding: Padding2d { top, left, bottom: top + off_h, right: left + off_w } }
    }

    /// Padding of a TRANSPOSE_CONV whose (given) output is `out_h x out_w`.
    ///
    /// TFLite treats the transpose conv's output as the input of the forward
    /// conv it undoes (dilation 1): it computes that conv's output size from
    /// `out_h`/`out_w` with the op's padding mode, then the padding with the
    /// usual formula. See [`transpose_padding_before`].
    pub fn for_transpose_conv(
        padding: Padding,
        out_h: usize,
        out_w: usize,
        filter_h: usize,
        filter_w: usize,
        stride_h: usize,
        stride_w: usize,
    ) -> Padding2d {
        let (top, off_h) = transpose_padding_before(padding, stride_h, out_h, filter_h);
        let (left, off_w) = transpose_padding_before(padding, stride_w, out_w, filter_w);
        Padding2d { top, left, bottom: top + off_h, right: left + off_w }
    }
}

/// One dimension of [`Padding2d::for_transpose_conv`]: `(before, offset)` for
/// a transpose conv producing `out_size` elements along this dimension.
pub fn transpose_padding_before(
    padding: Padding,
    stride: usize,
    out_size: usize,
    filter_size: usize,
) -> (usize, usize) {
    let forward_out = output_size(padding, out_size, filter_size, stride, 1);
    padding_before(stride, 1, out_size, filter_size, forward_out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_output_size_is_ceil_of_in_over_stride() {
        assert_eq!(output_size(Padding::Same, 5, 3, 1, 1), 5);
        assert_eq!(output_size(Padding::Same, 5, 3, 2, 1), 3);
        assert_eq!(output_size(Padding::Same, 4, 3, 2, 1), 2);
        assert_eq!(output_size(Padding::Same, 7, 100, 3, 1), 3);
    }

    #[test]
    fn valid_output_size() {
        // 5 wide, 3 tap: positions 0..=2.
        assert_eq!(output_size(Padding::Valid, 5, 3, 1, 1), 3);
        // stride 2: starts 0, 2.
        assert_eq!(output_size(Padding::Valid, 5, 3, 2, 1), 2);
        // 6 wide, 3 tap, stride 2: starts 0, 2 (4 would need index 6).
        assert_eq!(output_size(Padding::Valid, 6, 3, 2, 1), 2);
        // dilation 2 turns a 3-tap filter into 5: 7 wide -> starts 0, 1, 2.
        assert_eq!(output_size(Padding::Valid, 7, 3, 1, 2), 3);
        // window larger than the input.
        assert_eq!(output_size(Padding::Valid, 2, 3, 1, 1), 0);
        assert_eq!(output_size(Padding::Valid, 1, 5, 1, 1), 0);
        assert_eq!(output_size(Padding::Valid, 5, 3, 0, 1), 0);
    }

    #[test]
    fn same_padding_odd_total_puts_extra_at_end() {
        // in 4, filter 3, stride 2 -> out 2; total = 1*2 + 3 - 4 = 1.
        assert_eq!(padding_before(2, 1, 4, 3, 2), (0, 1));
        // in 5, filter 3, stride 2 -> out 3; total = 2*2 + 3 - 5 = 2.
        assert_eq!(padding_before(2, 1, 5, 3, 3), (1, 0));
        // in 5, filter 4, stride 1 -> out 5; total = 4 + 4 - 5 = 3.
        assert_eq!(padding_before(1, 1, 5, 4, 5), (1, 1));
        // dilation 2, filter 3 (effective 5), in 6, stride 1: total = 5 + 5 - 6 = 4.
        assert_eq!(padding_before(1, 2, 6, 3, 6), (2, 0));
        // VALID never pads.
        assert_eq!(padding_before(2, 1, 6, 3, 2), (0, 0));
    }

    #[test]
    fn padding2d_compute() {
        let w = Padding2d::compute(Padding::Same, 4, 5, 3, 3, 2, 2, 1, 1);
        assert_eq!((w.out_h, w.out_w), (2, 3));
        assert_eq!(w.padding, Padding2d { top: 0, left: 1, bottom: 1, right: 1 });
        let w = Padding2d::compute(Padding::Valid, 4, 5, 3, 3, 2, 2, 1, 1);
        assert_eq!((w.out_h, w.out_w), (1, 2));
        assert_eq!(w.padding, Padding2d::default());
    }

    #[test]
    fn transpose_conv_padding_from_output_size() {
        // Output 4, filter 3, stride 2, SAME: forward conv of 4 -> 2 outputs,
        // total = 1*2 + 3 - 4 = 1 -> before 0, offset 1.
        assert_eq!(transpose_padding_before(Padding::Same, 2, 4, 3), (0, 1));
        // Output 5, filter 3, stride 2, SAME: forward 5 -> 3, total = 4 + 3 - 5 = 2.
        assert_eq!(transpose_padding_before(Padding::Same, 2, 5, 3), (1, 0));
        // VALID: output 5, filter 3, stride 2: forward 5 -> 2, total = 2 + 3 - 5 = 0.
        assert_eq!(transpose_padding_before(Padding::Valid, 2, 5, 3), (0, 0));
        let p = Padding2d::for_transpose_conv(Padding::Same, 4, 5, 3, 3, 2, 2);
        assert_eq!(p, Padding2d { top: 0, left: 1, bottom: 1, right: 1 });
    }
}
