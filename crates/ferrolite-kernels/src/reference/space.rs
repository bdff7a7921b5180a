//! DEPTH_TO_SPACE and SPACE_TO_DEPTH over NHWC in TFLite's (DCR) order:
//! the channel index splits as `(block_row, block_col, channel)`, block row
//! outermost (`reference/depth_to_space.h`, `reference/space_to_depth.h`).

/// DEPTH_TO_SPACE: `[n, h, w, c]` to `[n, h*block, w*block, c/(block*block)]`.
///
/// Output `(y, x, d)` takes input `(y / block, x / block,
/// ((y % block) * block + x % block) * out_depth + d)`.
pub fn depth_to_space<T: Copy>(input: &[T], in_shape: [usize; 4], block: usize, output: &mut [T]) {
    let [batches, in_h, in_w, in_c] = in_shape;
    let out_h = in_h * block;
    let out_c = if block == 0 { 0 } else { in_c / (block * block) };
    // Output row `y` takes, from each input pixel of row `y / block`, the
    // `block` consecutive groups of `out_c` that start at group
    // `(y % block) * block`: one copy of `block * out_c` values per pixel.
    let run = block * out_c;
    let mut dst = 0;
    for b in 0..batches {
        for y in 0..out_h {
            let row = (b * in_h + y / block) * in_w;
            let offset = (y % block) * run;
            for x in 0..in_w {
                let src = (row + x) * in_c + offset;
                output[dst..dst + run].copy_from_slice(&input[src..src + run]);
                dst += run;
            }
        }
    }
}

/// SPACE_TO_DEPTH: `[n, h, w, c]` to `[n, h/block, w/block, c*block*block]`;
/// the inverse of [`depth_to_space`].
///
/// Input `(y, x, d)` goes to output `(y / block, x / block,
/// ((y % block) * block + x % block) * in_depth + d)`.
pub fn space_to_depth<T: Copy>(input: &[T], in_shape: [usize; 4], block: usize, output: &mut [T]) {
    let [batches, in_h, in_w, in_c] = in_shape;
    if block == 0 {
        return;
    }
    let out_h = in_h / block;
    let out_w = in_w / block;
    let mut dst = 0;
    for b in 0..batches {
        for oy in 0..out_h {
            for ox in 0..out_w {
                for by in 0..block {
                    for bx in 0..block {
                        let src = ((b * in_h + oy * block + by) * in_w + ox * block + bx) * in_c;
                        output[dst..dst + in_c].copy_from_slice(&input[src..src + in_c]);
                        dst += in_c;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_to_space_single_pixel() {
        // One pixel of 4 channels, block 2: channels fill the 2x2 block row-major.
        let mut out = [0; 4];
        depth_to_space(&[1, 2, 3, 4], [1, 1, 1, 4], 2, &mut out);
        assert_eq!(out, [1, 2, 3, 4]);
    }

    #[test]
    fn depth_to_space_explicit_two_pixels_depth_two() {
        // Input 1x1x2x8: pixel 0 channels 0..8, pixel 1 channels 8..16.
        // Output 1x2x4x2: out(y, x, d) = in(0, x/2, ((y%2)*2 + x%2)*2 + d).
        let input: Vec<u8> = (0..16).collect();
        let mut out = [0u8; 16];
        depth_to_space(&input, [1, 1, 2, 8], 2, &mut out);
        #[rustfmt::skip]
        let expected = [
            0, 1,  2, 3,  8, 9,  10, 11,   // row 0
            4, 5,  6, 7,  12, 13, 14, 15,  // row 1
        ];
        assert_eq!(out, expected);
    }

    #[test]
    fn space_to_depth_explicit() {
        // 2x4x2 image (values 0..16 in NHWC order), block 2 -> 1x2x8.
        // Output pixel 0 gathers (0,0),(0,1),(1,0),(1,1), each with its 2 channels.
        let input: Vec<i8> = (0..16).collect();
        let mut out = [0i8; 16];
        space_to_depth(&input, [1, 2, 4, 2], 2, &mut out);
        // Input (y, x, d) is at index (y*4 + x)*2 + d.
        #[rustfmt::skip]
        let expected = [
            0, 1, 2, 3, 8, 9, 10, 11,
            4, 5, 6, 7, 12, 13, 14, 15,
        ];
        assert_eq!(out, expected);
    }

    #[test]
    fn round_trip_batches_and_block3() {
        // 2 batches, 3x6 image, 2 channels, block 3: space_to_depth then
        // depth_to_space gives back the input; and element-wise placement is
        // checked against the index formula.
        let shape = [2, 3, 6, 2];
        let n: usize = shape.iter().product();
        let input: Vec<f32> = (0..n).map(|i| i as f32 * 1.5 - 7.0).collect();
        let mut packed = vec![0.0; n];
        space_to_depth(&input, shape, 3, &mut packed);
        // Output shape [2, 1, 2, 18].
        for b in 0..2 {
            for y in 0..3 {
                for x in 0..6 {
                    for d in 0..2 {
                        let src = ((b * 3 + y) * 6 + x) * 2 + d;
                        let od = ((y % 3) * 3 + x % 3) * 2 + d;
                        // Packed height is 1, so the row index y / 3 is always 0.
                        let dst = (b * 2 + x / 3) * 18 + od;
                        assert_eq!(packed[dst], input[src]);
                    }
                }
            }
        }
        let mut back = vec![0.0; n];
        depth_to_space(&packed, [2, 1, 2, 18], 3, &mut back);
        assert_eq!(back, input);
    }
}
