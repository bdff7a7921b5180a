//! Float 2-D pooling (AVERAGE_POOL_2D, MAX_POOL_2D, L2_POOL_2D) with the
//! semantics of TFLite's reference kernels (`reference/pooling.h`): windows
//! are clipped to the image, so padding never contributes a value, and the
//! average divides by the number of in-bounds elements.

use crate::activation::ClampF32;

/// Parameters shared by the 2-D pools.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pool2dParams {
    pub stride_h: usize,
    pub stride_w: usize,
    pub filter_h: usize,
    pub filter_w: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub clamp: ClampF32,
}

/// In-bounds part `start..end` of the filter taps along one dimension for a
/// window whose first tap is at `origin` (TFLite's filter_x_start/end).
#[inline(always)]
fn clipped(origin: isize, filter: usize, size: usize) -> (usize, usize) {
    let start = if origin < 0 { (-origin) as usize } else { 0 };
    let room = size as isize - origin;
    let end = if room <= 0 { 0 } else { filter.min(room as usize) };
    (start.min(end), end)
}

/// The in-bounds input pixels (flat `(b, iy, ix)` indices) of output pixel
/// `at` (`(b, oy, ox)`), in row-major tap order, into `taps`.
#[inline]
pub(crate) fn window_pixels(p: &Pool2dParams, in_shape: [usize; 4], at: (usize, usize, usize), taps: &mut Vec<usize>) {
    let [_, in_h, in_w, _] = in_shape;
    let (b, oy, ox) = at;
    let iy0 = (oy * p.stride_h) as isize - p.pad_top as isize;
    let ix0 = (ox * p.stride_w) as isize - p.pad_left as isize;
    let (fy0, fy1) = clipped(iy0, p.filter_h, in_h);
    let (fx0, fx1) = clipped(ix0, p.filter_w, in_w);
    taps.clear();
    for fy in fy0..fy1 {
        let iy = (iy0 + fy as isize) as usize;
        for fx in fx0..fx1 {
            taps.push((b * in_h + iy) * in_w + (ix0 + fx as isize) as usize);
        }
    }
}

/// Output pixel coordinates `(b, oy, ox)` from flat pixel `first` on, one
/// step at a time (no division per pixel: three of them cost a quarter of
/// a small float pool's time).
pub(crate) struct PixelWalk {
    out_h: usize,
    out_w: usize,
    at: (usize, usize, usize),
}

impl PixelWalk {
    pub(crate) fn new(out_shape: [usize; 4], first: usize) -> PixelWalk {
        let [_, out_h, out_w, _] = out_shape;
        let (h, w) = (out_h.max(1), out_w.max(1));
        PixelWalk { out_h: h, out_w: w, at: (first / (w * h), (first / w) % h, first % w) }
    }

    /// The current pixel; then the walk moves to the next.
    #[inline]
    pub(crate) fn next_pixel(&mut self) -> (usize, usize, usize) {
        let here = self.at;
        let (b, oy, ox) = &mut self.at;
        *ox += 1;
        if *ox == self.out_w {
            *ox = 0;
            *oy += 1;
            if *oy == self.out_h {
                *oy = 0;
                *b += 1;
            }
        }
        here
    }
}

/// Visit output pixels `row_start ..` (as many as `out_rows` holds, each
/// `depth` values): `reduce(window_pixels, out_pixel)` fills one pixel's
/// channels, all at once so the channel loops vectorise; the arithmetic per
/// channel is unchanged (taps in row-major order). Stops and returns false
/// as soon as `reduce` does.
// Inlined so each caller's `reduce` is inlined into the pixel loop
// (`optimized::pool` runs its kernels through it).
#[inline(always)]
pub(crate) fn pool_rows<T>(
    p: &Pool2dParams,
    in_shape: [usize; 4],
    out_shape: [usize; 4],
    out_rows: &mut [T],
    row_start: usize,
    mut reduce: impl FnMut(&[usize], &mut [T]) -> bool,
) -> bool {
    let depth = out_shape[3];
    if depth == 0 {
        return true;
    }
    let mut taps = Vec::with_capacity(p.filter_h * p.filter_w);
    let mut walk = PixelWalk::new(out_shape, row_start);
    for out in out_rows.chunks_exact_mut(depth) {
        window_pixels(p, in_shape, walk.next_pixel(), &mut taps);
        if !reduce(&taps, out) {
            return false;
        }
    }
    true
}

/// AVERAGE_POOL_2D: the mean of the window's in-bounds elements (summed in
/// row-major order, then divided by their count), then the clamp.
///
/// Returns `false`, like TFLite's reference, if some window has no in-bounds
/// element (only possible with a padding of at least the filter size, which
/// TFLite's SAME/VALID paddings never produce); the output is then partial.
#[must_use]
pub fn average_pool_f32(
    p: &Pool2dParams,
    input: &[f32],
    in_shape: [usize; 4],
    output: &mut [f32],
    out_shape: [usize; 4],
) -> bool {
    let len = out_shape.iter().product::<usize>();
    average_pool_f32_rows(p, input, in_shape, &mut output[..len], 0, out_shape)
}

/// [`average_pool_f32`] for output pixels `row_start ..` only (`out_rows`
/// holds whole pixels), so threads can split the output.
#[must_use]
pub fn average_pool_f32_rows(
    p: &Pool2dParams,
    input: &[f32],
    in_shape: [usize; 4],
    out_rows: &mut [f32],
    row_start: usize,
    out_shape: [usize; 4],
) -> bool {
    sum_pool_rows(p, input, in_shape, out_rows, row_start, out_shape, |v| v, |mean| mean)
}

/// MAX_POOL_2D: the largest in-bounds element of each window, then the clamp.
/// NaN inputs are skipped the way `std::max` skips them when they come second;
/// a window with no in-bounds element yields `f32::MIN` (TFLite's `lowest()`)
/// before the clamp.
pub fn max_pool_f32(p: &Pool2dParams, input: &[f32], in_shape: [usize; 4], output: &mut [f32], out_shape: [usize; 4]) {
    let len = out_shape.iter().product::<usize>();
    max_pool_f32_rows(p, input, in_shape, &mut output[..len], 0, out_shape);
}

/// [`max_pool_f32`] for output pixels `row_start ..` only.
pub fn max_pool_f32_rows(
    p: &Pool2dParams,
    input: &[f32],
    in_shape: [usize; 4],
    out_rows: &mut [f32],
    row_start: usize,
    out_shape: [usize; 4],
) {
    let depth = in_shape[3];
    let mut acc = vec![f32::MIN; depth];
    pool_rows(p, in_shape, out_shape, out_rows, row_start, |pixels, out| {
        acc.fill(f32::MIN);
        for &px in pixels {
            for (a, &v) in acc.iter_mut().zip(&input[px * depth..(px + 1) * depth]) {
                // A select rather than a branch, so the loop vectorises.
                *a = if *a < v { v } else { *a };
            }
        }
        for (o, &a) in out.iter_mut().zip(&acc) {
            *o = p.clamp.apply(a);
        }
        true
    });
}

/// L2_POOL_2D: `sqrt(sum of squares / count)` over each window's in-bounds
/// elements, then the clamp. Returns `false` if some window is empty (see
/// [`average_pool_f32`]).
#[must_use]
pub fn l2_pool_f32(
    p: &Pool2dParams,
    input: &[f32],
    in_shape: [usize; 4],
    output: &mut [f32],
    out_shape: [usize; 4],
) -> bool {
    let len = out_shape.iter().product::<usize>();
    l2_pool_f32_rows(p, input, in_shape, &mut output[..len], 0, out_shape)
}

/// [`l2_pool_f32`] for output pixels `row_start ..` only.
#[must_use]
pub fn l2_pool_f32_rows(
    p: &Pool2dParams,
    input: &[f32],
    in_shape: [usize; 4],
    out_rows: &mut [f32],
    row_start: usize,
    out_shape: [usize; 4],
) -> bool {
    sum_pool_rows(p, input, in_shape, out_rows, row_start, out_shape, |v| v * v, f32::sqrt)
}

/// AVERAGE_POOL_2D and L2_POOL_2D: `finish(sum of term(v) / count)` over
/// each window's in-bounds elements, then the clamp; `false` if some window
/// is empty.
#[allow(clippy::too_many_arguments)]
fn sum_pool_rows(
    p: &Pool2dParams,
    input: &[f32],
    in_shape: [usize; 4],
    out_rows: &mut [f32],
    row_start: usize,
    out_shape: [usize; 4],
    term: impl Fn(f32) -> f32,
    finish: impl Fn(f32) -> f32,
) -> bool {
    let depth = in_shape[3];
    let mut acc = vec![0.0f32; depth];
    pool_rows(p, in_shape, out_shape, out_rows, row_start, |pixels, out| {
        if pixels.is_empty() {
            return false;
        }
        acc.fill(0.0);
        for &px in pixels {
            for (a, &v) in acc.iter_mut().zip(&input[px * depth..(px + 1) * depth]) {
                *a += term(v);
            }
        }
        let count = pixels.len() as f32;
        for (o, &a) in out.iter_mut().zip(&acc) {
            *o = p.clamp.apply(finish(a / count));
        }
        true
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(filter: usize, stride: usize, pad: usize, clamp: ClampF32) -> Pool2dParams {
        Pool2dParams {
            stride_h: stride,
            stride_w: stride,
            filter_h: filter,
            filter_w: filter,
            pad_top: pad,
            pad_left: pad,
            clamp,
        }
    }

    fn iota(n: usize, start: f32) -> Vec<f32> {
        (0..n).map(|i| start + i as f32).collect()
    }

    #[test]
    fn average_same_counts_only_valid_elements() {
        // 3x3 image 1..9, 3x3 window, stride 1, pad 1 (SAME).
        let mut out = [0.0; 9];
        assert!(average_pool_f32(
            &params(3, 1, 1, ClampF32::NONE),
            &iota(9, 1.0),
            [1, 3, 3, 1],
            &mut out,
            [1, 3, 3, 1],
        ));
        // Corner (0,0): (1+2+4+5)/4; edge (0,1): (1+2+3+4+5+6)/6; centre 45/9.
        let expected = [
            12.0 / 4.0,
            21.0 / 6.0,
            16.0 / 4.0,
            27.0 / 6.0,
            45.0 / 9.0,
            33.0 / 6.0,
            24.0 / 4.0,
            39.0 / 6.0,
            28.0 / 4.0,
        ];
        assert_eq!(out, expected);
    }

    #[test]
    fn average_stride2_even_size_two_channels() {
        // 4x4 image, 2 channels (ch1 = 10 * ch0), 3x3 window, stride 2, SAME:
        // out 2x2 with pad 0 before, 1 after.
        let ch0 = iota(16, 1.0);
        let input: Vec<f32> = ch0.iter().flat_map(|&v| [v, 10.0 * v]).collect();
        let mut out = [0.0; 8];
        assert!(average_pool_f32(&params(3, 2, 0, ClampF32::NONE), &input, [1, 4, 4, 2], &mut out, [1, 2, 2, 2],));
        // Channel 0 windows: 9 elements summing 54; 6 summing 45; 6 summing 72;
        // 4 summing 54. Channel 1 sums are ten times those.
        let e0 = [54.0 / 9.0, 45.0 / 6.0, 72.0 / 6.0, 54.0 / 4.0];
        let e1 = [540.0 / 9.0, 450.0 / 6.0, 720.0 / 6.0, 540.0 / 4.0];
        for i in 0..4 {
            assert_eq!((out[2 * i], out[2 * i + 1]), (e0[i], e1[i]), "window {i}");
        }
    }

    #[test]
    fn average_with_relu6() {
        let mut out = [0.0; 2];
        assert!(average_pool_f32(
            &params(2, 2, 0, ClampF32::RELU6),
            &[1.0, 2.0, 30.0, 40.0, -5.0, -6.0, -7.0, -8.0],
            [1, 2, 4, 1],
            &mut out,
            [1, 1, 2, 1],
        ));
        // Windows {1,2,-5,-6} -> -2 -> 0; {30,40,-7,-8} -> 13.75 -> 6.
        assert_eq!(out, [0.0, 6.0]);
    }

    #[test]
    fn average_empty_window_is_reported() {
        // Pad 2 with a 2x2 window: the first window lies wholly in the padding.
        let mut out = [0.0; 4];
        assert!(!average_pool_f32(
            &params(2, 1, 2, ClampF32::NONE),
            &[1.0, 2.0, 3.0, 4.0],
            [1, 2, 2, 1],
            &mut out,
            [1, 2, 2, 1],
        ));
    }

    #[test]
    fn max_pool_same_stride2_ignores_padding() {
        // All-negative input: padding must not contribute zeros.
        let input: Vec<f32> = iota(9, 1.0).iter().map(|v| -v).collect();
        let mut out = [0.0; 4];
        max_pool_f32(&params(2, 2, 0, ClampF32::NONE), &input, [1, 3, 3, 1], &mut out, [1, 2, 2, 1]);
        // 3x3, 2x2 window, stride 2, SAME: out 2x2, total pad 1 at the end.
        // Windows {-1,-2,-4,-5}, {-3,-6}, {-7,-8}, {-9}.
        assert_eq!(out, [-1.0, -3.0, -7.0, -9.0]);
    }

    #[test]
    fn max_pool_clamps_and_skips_nan() {
        let mut out = [0.0; 1];
        max_pool_f32(
            &params(2, 1, 0, ClampF32::RELU_N1_TO_1),
            &[0.5, f32::NAN, 3.0, -2.0],
            [1, 2, 2, 1],
            &mut out,
            [1, 1, 1, 1],
        );
        assert_eq!(out, [1.0]);
    }

    #[test]
    fn l2_pool_valid_and_border() {
        // 1x3 row [3, 4, 12], window 1x2, stride 1, pad 0 on top, 0 left:
        // sqrt((9+16)/2), sqrt((16+144)/2).
        let p = Pool2dParams {
            stride_h: 1,
            stride_w: 1,
            filter_h: 1,
            filter_w: 2,
            pad_top: 0,
            pad_left: 0,
            clamp: ClampF32::NONE,
        };
        let mut out = [0.0; 3];
        // Third output's window is clipped to {12}: sqrt(144/1) = 12.
        assert!(l2_pool_f32(&p, &[3.0, 4.0, 12.0], [1, 1, 3, 1], &mut out, [1, 1, 3, 1]));
        assert_eq!(out, [12.5f32.sqrt(), 80.0f32.sqrt(), 12.0]);
    }
}
