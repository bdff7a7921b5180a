//! Quantised AVERAGE_POOL_2D and MAX_POOL_2D (`reference_integer_ops::AveragePool`
//! / `MaxPool` for int8 and int16, `reference_ops` for uint8).
//!
//! Pools work on the raw integers: TFLite requires input and output to share
//! scale and zero point, so no requantisation happens. Windows are clipped to
//! the image (padding contributes nothing). The average of `n` in-bounds
//! values with integer sum `s` is `(s + n/2) / n` for `s > 0` and
//! `(s - n/2) / n` otherwise, with C's truncating division, i.e. rounded
//! half away from zero. Then the fused-activation clamp.

use super::QType;
use crate::activation::ClampI32;
use crate::reference::pool::{pool_rows, Pool2dParams};

/// AVERAGE_POOL_2D for `i8`, `u8` or `i16`. `p` gives the geometry (its
/// float `clamp` is ignored); `clamp` is the quantised activation range
/// (e.g. [`crate::quant::quantized_activation_clamp`] of the output).
/// Returns `false`, like TFLite, if some window has no in-bounds element.
#[must_use]
pub fn average_pool_quantized<T: QType>(
    p: &Pool2dParams,
    clamp: ClampI32,
    input: &[T],
    in_shape: [usize; 4],
    output: &mut [T],
    out_shape: [usize; 4],
) -> bool {
    let len = out_shape.iter().product::<usize>();
    average_pool_quantized_rows(p, clamp, input, in_shape, &mut output[..len], 0, out_shape)
}

/// [`average_pool_quantized`] for output pixels `row_start ..` only
/// (`out_rows` holds whole pixels), so threads can split the output.
#[must_use]
pub fn average_pool_quantized_rows<T: QType>(
    p: &Pool2dParams,
    clamp: ClampI32,
    input: &[T],
    in_shape: [usize; 4],
    out_rows: &mut [T],
    row_start: usize,
    out_shape: [usize; 4],
) -> bool {
    let depth = in_shape[3];
    let mut acc = vec![0i32; depth];
    pool_rows(p, in_shape, out_shape, out_rows, row_start, |pixels, out| {
        if pixels.is_empty() {
            return false;
        }
        acc.fill(0);
        for &px in pixels {
            for (a, v) in acc.iter_mut().zip(&input[px * depth..(px + 1) * depth]) {
                *a = a.wrapping_add(v.to_i32());
            }
        }
        let count = pixels.len() as i32;
        for (o, &s) in out.iter_mut().zip(&acc) {
            let avg = if s > 0 { (s + count / 2) / count } else { (s - count / 2) / count };
            *o = T::from_i32(clamp.apply(avg));
        }
        true
    })
}

/// MAX_POOL_2D for `i8`, `u8` or `i16`: the largest in-bounds raw value
/// (the type's minimum for an empty window), then the clamp.
pub fn max_pool_quantized<T: QType>(
    p: &Pool2dParams,
    clamp: ClampI32,
    input: &[T],
    in_shape: [usize; 4],
    output: &mut [T],
    out_shape: [usize; 4],
) {
    let len = out_shape.iter().product::<usize>();
    max_pool_quantized_rows(p, clamp, input, in_shape, &mut output[..len], 0, out_shape);
}

/// [`max_pool_quantized`] for output pixels `row_start ..` only.
pub fn max_pool_quantized_rows<T: QType>(
    p: &Pool2dParams,
    clamp: ClampI32,
    input: &[T],
    in_shape: [usize; 4],
    out_rows: &mut [T],
    row_start: usize,
    out_shape: [usize; 4],
) {
    let depth = in_shape[3];
    let mut acc = vec![T::MIN; depth];
    pool_rows(p, in_shape, out_shape, out_rows, row_start, |pixels, out| {
        acc.fill(T::MIN);
        for &px in pixels {
            for (a, v) in acc.iter_mut().zip(&input[px * depth..(px + 1) * depth]) {
                *a = (*a).max(v.to_i32());
            }
        }
        for (o, &m) in out.iter_mut().zip(&acc) {
            *o = T::from_i32(clamp.apply(m));
        }
        true
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::ClampF32;

    fn params(filter: usize, stride: usize, pad: usize) -> Pool2dParams {
        Pool2dParams {
            stride_h: stride,
            stride_w: stride,
            filter_h: filter,
            filter_w: filter,
            pad_top: pad,
            pad_left: pad,
            clamp: ClampF32::NONE,
        }
    }

    const FULL8: ClampI32 = ClampI32 { min: -128, max: 127 };

    #[test]
    fn average_rounds_half_away_from_zero() {
        let mut out = [0i8; 1];
        for (vals, want) in [
            ([1i8, 2, 0, 0], 1),  // 0.75 -> 1
            ([1, 1, 0, 0], 1),    // 0.5 -> 1
            ([-1, -1, 0, 0], -1), // -0.5 -> -1
            ([-1, 0, 0, 0], 0),   // -0.25 -> 0
            ([-3, -2, 0, 0], -1), // -1.25 -> -1
            ([-3, -3, 0, 0], -2), // -1.5 -> -2
            ([127, 127, 127, 126], 127),
            ([-128, -128, -128, -127], -128),
        ] {
            assert!(average_pool_quantized(&params(2, 2, 0), FULL8, &vals, [1, 2, 2, 1], &mut out, [1, 1, 1, 1]));
            assert_eq!(out[0], want, "{vals:?}");
        }
    }

    #[test]
    fn average_divides_by_in_bounds_count_and_clamps() {
        // 2x2 image, 3x3 window with padding 1: every window sees 4 values.
        let input = [10i8, 20, 30, 41];
        let mut out = [0i8; 4];
        assert!(average_pool_quantized(&params(3, 1, 1), FULL8, &input, [1, 2, 2, 1], &mut out, [1, 2, 2, 1]));
        assert_eq!(out, [25; 4]); // 101/4 = 25.25
        let relu_at_30 = ClampI32 { min: 30, max: 127 };
        assert!(average_pool_quantized(&params(1, 1, 0), relu_at_30, &input, [1, 2, 2, 1], &mut out, [1, 2, 2, 1]));
        assert_eq!(out, [30, 30, 30, 41]);
        // A window wholly in the padding fails, as in TFLite.
        let p = Pool2dParams { pad_top: 3, ..params(2, 1, 0) };
        assert!(!average_pool_quantized(&p, FULL8, &input, [1, 2, 2, 1], &mut out[..1], [1, 1, 1, 1]));
        // int16 and uint8.
        let mut o16 = [0i16; 1];
        assert!(average_pool_quantized(
            &params(2, 1, 0),
            ClampI32 { min: -32768, max: 32767 },
            &[-32768i16, -32768, -32767, -32768],
            [1, 2, 2, 1],
            &mut o16,
            [1, 1, 1, 1]
        ));
        assert_eq!(o16, [-32768]); // -131071/4 = -32767.75 -> -32768
        let mut o8 = [0u8; 1];
        assert!(average_pool_quantized(
            &params(2, 1, 0),
            ClampI32 { min: 0, max: 255 },
            &[255u8, 255, 254, 0],
            [1, 2, 2, 1],
            &mut o8,
            [1, 1, 1, 1]
        ));
        assert_eq!(o8, [191]); // 764/4
    }

    #[test]
    fn max_pool() {
        let input = [-5i8, 7, -128, 3, 100, -1];
        let mut out = [0i8; 2];
        // 1x3x1x2, 3x1 window over the column, two channels.
        let p = Pool2dParams { filter_w: 1, ..params(3, 1, 0) };
        max_pool_quantized(&p, FULL8, &input, [1, 3, 1, 2], &mut out, [1, 1, 1, 2]);
        assert_eq!(out, [100, 7]);
        max_pool_quantized(&p, ClampI32 { min: -128, max: 50 }, &input, [1, 3, 1, 2], &mut out, [1, 1, 1, 2]);
        assert_eq!(out, [50, 7]);
        let mut o16 = [0i16; 1];
        max_pool_quantized(
            &params(2, 1, 0),
            ClampI32 { min: -32768, max: 32767 },
            &[-32768i16, -32767, -32768, -32768],
            [1, 2, 2, 1],
            &mut o16,
            [1, 1, 1, 1],
        );
        assert_eq!(o16, [-32767]);
    }
}
