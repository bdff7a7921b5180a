//! RESIZE_BILINEAR and RESIZE_NEAREST_NEIGHBOR over NHWC, with TFLite's
//! reference coordinate rules (`reference/resize_bilinear.h`,
//! `reference/resize_nearest_neighbor.h`).

/// Input-per-output scale along one dimension. With `align_corners` (and more
/// than one output) the corner samples line up: `(in - 1) / (out - 1)`;
/// otherwise `in / out`.
#[inline]
pub(crate) fn scale(in_size: usize, out_size: usize, align_corners: bool) -> f32 {
    if align_corners && out_size > 1 {
        (in_size - 1) as f32 / (out_size - 1) as f32
    } else {
        in_size as f32 / out_size as f32
    }
}

/// Source coordinate of output index `value` and the two neighbouring input
/// indices (TFLite's `ComputeInterpolationValues`): the lower index is
/// `floor` clamped below at 0, the upper `ceil` clamped above at `in - 1`.
/// The coordinate itself is not clamped, so near the border both weights can
/// fall on the same pixel (one of them negative) and still sum to it.
#[inline]
pub(crate) fn interpolation_values(
    value: usize,
    scale: f32,
    half_pixel_centers: bool,
    in_size: usize,
) -> (f32, usize, usize) {
    let v = value as f32;
    let scaled = if half_pixel_centers { (v + 0.5) * scale - 0.5 } else { v * scale };
    let last = in_size as i64 - 1;
    let lower = (scaled.floor() as i64).max(0).min(last.max(0));
    let upper = (scaled.ceil() as i64).min(last).max(0);
    (scaled, lower as usize, upper as usize)
}

/// RESIZE_BILINEAR for f32.
///
/// `in_shape = [batches, in_h, in_w, depth]`, `out_shape = [batches, out_h,
/// out_w, depth]`. Each output is
/// `a (1-dy)(1-dx) + b dy (1-dx) + c (1-dy) dx + d dy dx`, evaluated in that
/// order, where `a, b, c, d` are the pixels at `(y0,x0), (y1,x0), (y0,x1),
/// (y1,x1)` and `dy = in_y - y0`, `dx = in_x - x0`.
///
/// TFLite rejects `align_corners && half_pixel_centers` for this op.
pub fn resize_bilinear_f32(
    input: &[f32],
    in_shape: [usize; 4],
    output: &mut [f32],
    out_shape: [usize; 4],
    align_corners: bool,
    half_pixel_centers: bool,
) {
    resize_bilinear_via_f32(input, in_shape, output, out_shape, align_corners, half_pixel_centers, |v| v, |v| v);
}

/// uint8 RESIZE_BILINEAR as TFLite's reference kernel computes it: the
/// float interpolation of [`resize_bilinear_f32`] on the raw values, rounded
/// half away from zero (`TfLiteRound`; the weights sum to one, so the value
/// stays within `0..=255` up to float error, and `as` saturates).
pub fn resize_bilinear_u8(
    input: &[u8],
    in_shape: [usize; 4],
    output: &mut [u8],
    out_shape: [usize; 4],
    align_corners: bool,
    half_pixel_centers: bool,
) {
    resize_bilinear_via_f32(input, in_shape, output, out_shape, align_corners, half_pixel_centers, f32::from, |v| {
        v.round() as u8
    });
}

#[allow(clippy::too_many_arguments)]
fn resize_bilinear_via_f32<T: Copy>(
    input: &[T],
    in_shape: [usize; 4],
    output: &mut [T],
    out_shape: [usize; 4],
    align_corners: bool,
    half_pixel_centers: bool,
    widen: impl Fn(T) -> f32,
    narrow: impl Fn(f32) -> T,
) {
    let [batches, in_h, in_w, depth] = in_shape;
    let [_, out_h, out_w, _] = out_shape;
    let h_scale = scale(in_h, out_h, align_corners);
    let w_scale = scale(in_w, out_w, align_corners);
    let at = |b: usize, y: usize, x: usize| ((b * in_h + y) * in_w + x) * depth;

    for b in 0..batches {
        for y in 0..out_h {
            let (in_y, y0, y1) = interpolation_values(y, h_scale, half_pixel_centers, in_h);
            let dy = in_y - y0 as f32;
            for x in 0..out_w {
                let (in_x, x0, x1) = interpolation_values(x, w_scale, half_pixel_centers, in_w);
                let dx = in_x - x0 as f32;
                let (p00, p10, p01, p11) = (at(b, y0, x0), at(b, y1, x0), at(b, y0, x1), at(b, y1, x1));
                let out_base = ((b * out_h + y) * out_w + x) * depth;
                for c in 0..depth {
                    let v = widen(input[p00 + c]) * (1.0 - dy) * (1.0 - dx)
                        + widen(input[p10 + c]) * dy * (1.0 - dx)
                        + widen(input[p01 + c]) * (1.0 - dy) * dx
                        + widen(input[p11 + c]) * dy * dx;
                    output[out_base + c] = narrow(v);
                }
            }
        }
    }
}

/// Input index that output index `value` copies (TFLite's
/// `GetNearestNeighbor`): `(value + offset) * scale`, rounded half away from
/// zero with `align_corners`, floored otherwise, capped at `in - 1`; with
/// `half_pixel_centers` the offset is 0.5 and the result is also floored at 0.
#[inline]
fn nearest(value: usize, in_size: usize, out_size: usize, align_corners: bool, half_pixel_centers: bool) -> usize {
    let s = scale(in_size, out_size, align_corners);
    let offset = if half_pixel_centers { 0.5f32 } else { 0.0 };
    let pos = (value as f32 + offset) * s;
    let idx = if align_corners { pos.round() } else { pos.floor() } as i64;
    let idx = idx.min(in_size as i64 - 1);
    // TFLite clamps at 0 only for half-pixel centres, where it can go
    // negative; without it the index is never negative, so clamping always
    // is the same result and keeps the index in range.
    idx.max(0) as usize
}

/// RESIZE_NEAREST_NEIGHBOR for any element type (f32, int8, uint8, ...).
///
/// `in_shape = [batches, in_h, in_w, depth]`, `out_shape = [batches, out_h,
/// out_w, depth]`; every output pixel is a copy of one input pixel, chosen per
/// row and column as described at [`nearest`]. Both flags may be set together
/// (TFLite's kernel allows it).
pub fn resize_nearest_neighbor<T: Copy>(
    input: &[T],
    in_shape: [usize; 4],
    output: &mut [T],
    out_shape: [usize; 4],
    align_corners: bool,
    half_pixel_centers: bool,
) {
    let [batches, in_h, in_w, depth] = in_shape;
    let [_, out_h, out_w, _] = out_shape;
    for b in 0..batches {
        for y in 0..out_h {
            let iy = nearest(y, in_h, out_h, align_corners, half_pixel_centers);
            for x in 0..out_w {
                let ix = nearest(x, in_w, out_w, align_corners, half_pixel_centers);
                let src = ((b * in_h + iy) * in_w + ix) * depth;
                let dst = ((b * out_h + y) * out_w + x) * depth;
                output[dst..dst + depth].copy_from_slice(&input[src..src + depth]);
            }
        }
    }
}

/// [`resize_nearest_neighbor`] for f32, under the name the other float
/// kernels use.
pub fn resize_nearest_neighbor_f32(
    input: &[f32],
    in_shape: [usize; 4],
    output: &mut [f32],
    out_shape: [usize; 4],
    align_corners: bool,
    half_pixel_centers: bool,
) {
    resize_nearest_neighbor(input, in_shape, output, out_shape, align_corners, half_pixel_centers)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2x2 image, two channels: ch0 = x + 2y (values 0,1,2,3), ch1 = 10 - 4 ch0.
    fn image_2x2() -> Vec<f32> {
        let mut v = Vec::new();
        for y in 0..2 {
            for x in 0..2 {
                let c0 = (x + 2 * y) as f32;
                v.extend([c0, 10.0 - 4.0 * c0]);
            }
        }
        v
    }

    /// Expected output for a bilinear resize of `image_2x2` given the
    /// (hand-derived) per-column and per-row source coordinates: the image is
    /// linear, so interpolation reproduces the linear function exactly.
    fn linear_expected(xs: &[f32], ys: &[f32]) -> Vec<f32> {
        let mut v = Vec::new();
        for &y in ys {
            for &x in xs {
                let c0 = x + 2.0 * y;
                v.extend([c0, 10.0 - 4.0 * c0]);
            }
        }
        v
    }

    #[test]
    fn bilinear_align_corners_2x2_to_3x3() {
        // scale = (2-1)/(3-1) = 0.5: source coordinates 0, 0.5, 1.
        let mut out = vec![0.0; 18];
        resize_bilinear_f32(&image_2x2(), [1, 2, 2, 2], &mut out, [1, 3, 3, 2], true, false);
        assert_eq!(out, linear_expected(&[0.0, 0.5, 1.0], &[0.0, 0.5, 1.0]));
        // Spelled out for channel 0.
        let ch0: Vec<f32> = out.iter().step_by(2).copied().collect();
        assert_eq!(ch0, [0.0, 0.5, 1.0, 1.0, 1.5, 2.0, 2.0, 2.5, 3.0]);
    }

    #[test]
    fn bilinear_plain_2x2_to_4x4() {
        // scale 0.5: coordinates 0, 0.5, 1, 1.5; at 1.5 both neighbours are
        // the last pixel (ceil clamped to 1), so the value stays at pixel 1.
        let mut out = vec![0.0; 32];
        resize_bilinear_f32(&image_2x2(), [1, 2, 2, 2], &mut out, [1, 4, 4, 2], false, false);
        let c = [0.0, 0.5, 1.0, 1.0];
        assert_eq!(out, linear_expected(&c, &c));
    }

    #[test]
    fn bilinear_half_pixel_2x2_to_4x4() {
        // scale 0.5: (i + 0.5) * 0.5 - 0.5 = -0.25, 0.25, 0.75, 1.25.
        // -0.25: y0 = max(-1, 0) = 0, y1 = min(0, 1) = 0 -> pixel 0 exactly.
        // 1.25: y0 = 1, y1 = min(2, 1) = 1 -> pixel 1 exactly.
        let mut out = vec![0.0; 32];
        resize_bilinear_f32(&image_2x2(), [1, 2, 2, 2], &mut out, [1, 4, 4, 2], false, true);
        let c = [0.0, 0.25, 0.75, 1.0];
        assert_eq!(out, linear_expected(&c, &c));
    }

    #[test]
    fn bilinear_nonlinear_values_and_downscale() {
        // 1x3 row [0, 10, 40] to 1x2, no flags: scale 1.5, x = 0 -> 0,
        // x = 1 -> 1.5 -> 10 * 0.5 + 40 * 0.5 = 25.
        let mut out = [0.0; 2];
        resize_bilinear_f32(&[0.0, 10.0, 40.0], [1, 1, 3, 1], &mut out, [1, 1, 2, 1], false, false);
        assert_eq!(out, [0.0, 25.0]);
        // Half-pixel: (0.5)*1.5 - 0.5 = 0.25 -> 2.5; (1.5)*1.5 - 0.5 = 1.75 -> 10*.25 + 40*.75 = 32.5.
        resize_bilinear_f32(&[0.0, 10.0, 40.0], [1, 1, 3, 1], &mut out, [1, 1, 2, 1], false, true);
        assert_eq!(out, [2.5, 32.5]);
        // align_corners with a single output falls back to in/out scale: pixel 0.
        let mut one = [0.0; 1];
        resize_bilinear_f32(&[7.0, 10.0, 40.0], [1, 1, 3, 1], &mut one, [1, 1, 1, 1], true, false);
        assert_eq!(one, [7.0]);
    }

    /// Nearest-neighbour along width only: returns the chosen source indices.
    fn nn_row(in_w: usize, out_w: usize, align: bool, half: bool) -> Vec<i8> {
        let input: Vec<i8> = (0..in_w as i8).collect();
        let mut out = vec![-1i8; out_w];
        resize_nearest_neighbor(&input, [1, 1, in_w, 1], &mut out, [1, 1, out_w, 1], align, half);
        out
    }

    #[test]
    fn nearest_plain_floors() {
        // scale 0.5: floor(0, .5, 1, 1.5).
        assert_eq!(nn_row(2, 4, false, false), [0, 0, 1, 1]);
        // scale 0.6: floor(0, .6, 1.2, 1.8, 2.4).
        assert_eq!(nn_row(3, 5, false, false), [0, 0, 1, 1, 2]);
        // scale 2: 0, 2.
        assert_eq!(nn_row(4, 2, false, false), [0, 2]);
    }

    #[test]
    fn nearest_align_corners_rounds_half_away() {
        // scale 2/4 = 0.5: round(0, .5, 1, 1.5, 2) = 0, 1, 1, 2, 2.
        assert_eq!(nn_row(3, 5, true, false), [0, 1, 1, 2, 2]);
        // scale 3/1: round(0), round(3).
        assert_eq!(nn_row(4, 2, true, false), [0, 3]);
    }

    #[test]
    fn nearest_half_pixel_centers() {
        // scale 0.6: floor(.3, .9, 1.5, 2.1, 2.7) = 0, 0, 1, 2, 2.
        assert_eq!(nn_row(3, 5, false, true), [0, 0, 1, 2, 2]);
        // scale 2: floor(1, 3).
        assert_eq!(nn_row(4, 2, false, true), [1, 3]);
        // scale 0.5: floor(.25, .75, 1.25, 1.75) = 0, 0, 1, 1.
        assert_eq!(nn_row(2, 4, false, true), [0, 0, 1, 1]);
    }

    #[test]
    fn nearest_both_flags() {
        // scale 0.5, offset 0.5: round(.25, .75, 1.25, 1.75, 2.25) = 0, 1, 1, 2, 2.
        assert_eq!(nn_row(3, 5, true, true), [0, 1, 1, 2, 2]);
        // scale 3: round(1.5) = 2, round(4.5) = 5 -> capped at 3.
        assert_eq!(nn_row(4, 2, true, true), [2, 3]);
    }

    #[test]
    fn nearest_2d_uses_each_axis_scale_and_copies_channels() {
        // 2x3 image, 2 channels: value = 10*y + x, and its negation.
        let mut input = Vec::new();
        for y in 0..2 {
            for x in 0..3 {
                let v = (10 * y + x) as f32;
                input.extend([v, -v]);
            }
        }
        let mut out = vec![0.0; 4 * 5 * 2];
        resize_nearest_neighbor_f32(&input, [1, 2, 3, 2], &mut out, [1, 4, 5, 2], false, false);
        // rows: floor(0, .5, 1, 1.5) = 0,0,1,1; cols: 0,0,1,1,2.
        let rows = [0, 0, 1, 1];
        let cols = [0, 0, 1, 1, 2];
        for (oy, &iy) in rows.iter().enumerate() {
            for (ox, &ix) in cols.iter().enumerate() {
                let v = (10 * iy + ix) as f32;
                let o = (oy * 5 + ox) * 2;
                assert_eq!((out[o], out[o + 1]), (v, -v), "at ({oy},{ox})");
            }
        }
    }
}
