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

/// Visit every output element of a pool: `reduce` gets the window's
/// in-bounds values in row-major tap order and returns the value to store.
/// Stops and returns false as soon as `reduce` returns `None`.
fn pool_f32<F>(
    p: &Pool2dParams,
    input: &[f32],
    in_shape: [usize; 4],
    output: &mut [f32],
    out_shape: [usize; 4],
    mut reduce: F,
) -> bool
where
    F: FnMut(&mut dyn Iterator<Item = f32>) -> Option<f32>,
{
    let [batches, in_h, in_w, depth] = in_shape;
    let [_, out_h, out_w, _] = out_shape;
    for b in 0..batches {
        for oy in 0..out_h {
            let iy0 = (oy * p.stride_h) as isize - p.pad_top as isize;
            let (fy0, fy1) = clipped(iy0, p.filter_h, in_h);
            for ox in 0..out_w {
                let ix0 = (ox * p.stride_w) as isize - p.pad_left as isize;
                let (fx0, fx1) = clipped(ix0, p.filter_w, in_w);
                let out_base = ((b * out_h + oy) * out_w + ox) * depth;
                for c in 0..depth {
                    let mut taps = (fy0..fy1).flat_map(|fy| {
                        let iy = (iy0 + fy as isize) as usize;
                        (fx0..fx1).map(move |fx| {
                            let ix = (ix0 + fx as isize) as usize;
                            input[((b * in_h + iy) * in_w + ix) * depth + c]
                        })
                    });
                    match reduce(&mut taps) {
                        Some(v) => output[out_base + c] = p.clamp.apply(v),
                        None => return false,
                    }
                }
            }
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
    pool_f32(p, input, in_shape, output, out_shape, |taps| {
        let mut total = 0.0f32;
        let mut count = 0usize;
        for v in taps {
            total += v;
            count += 1;
        }
        if count == 0 {
            None
        } else {
            Some(total / count as f32)
        }
    })
}

/// MAX_POOL_2D: the largest in-bounds element of each window, then the clamp.
/// NaN inputs are skipped the way `std::max` skips them when they come second;
/// a window with no in-bounds element yields `f32::MIN` (TFLite's `lowest()`)
/// before the clamp.
pub fn max_pool_f32(p: &Pool2dParams, input: &[f32], in_shape: [usize; 4], output: &mut [f32], out_shape: [usize; 4]) {
    pool_f32(p, input, in_shape, output, out_shape, |taps| {
        let mut max = f32::MIN;
        for v in taps {
            if max < v {
                max = v;
            }
        }
        Some(max)
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
    pool_f32(p, input, in_shape, output, out_shape, |taps| {
        let mut sum_squares = 0.0f32;
        let mut count = 0usize;
        for v in taps {
            sum_squares += v * v;
            count += 1;
        }
        if count == 0 {
            None
        } else {
            Some((sum_squares / count as f32).sqrt())
        }
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
