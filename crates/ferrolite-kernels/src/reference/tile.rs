//! TILE and BROADCAST_TO, for any element type.
//!
//! Both are "each output coordinate reads one input coordinate, dimension by
//! dimension" copies; [`copy_mapped`] does that walk for them (and for
//! REVERSE_V2).

/// Copy `input` to `output` where output coordinate `(o_0, .., o_{r-1})`
/// reads the input element at offset `offsets[0][o_0] + .. + offsets[r-1][o_{r-1}]`.
///
/// `offsets[d]` has one entry per output index along dimension `d` (so the
/// output shape is the lengths of the `offsets`), each already multiplied
/// by the input's stride. `output` is filled in row-major order.
pub fn copy_mapped<T: Copy>(input: &[T], offsets: &[Vec<usize>], output: &mut [T]) {
    fn walk<T: Copy>(input: &[T], offsets: &[Vec<usize>], base: usize, output: &mut [T], pos: &mut usize) {
        match offsets {
            [] => {
                output[*pos] = input[base];
                *pos += 1;
            }
            [last] => {
                for &o in last {
                    output[*pos] = input[base + o];
                    *pos += 1;
                }
            }
            [first, rest @ ..] => {
                for &o in first {
                    walk(input, rest, base + o, output, pos);
                }
            }
        }
    }
    if output.is_empty() {
        return;
    }
    let mut pos = 0;
    walk(input, offsets, 0, output, &mut pos);
}

/// Row-major element strides of `shape`.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1];
    }
    s
}

/// TILE's output shape: each dimension times its multiple.
pub fn tiled_shape(shape: &[usize], multiples: &[usize]) -> Vec<usize> {
    shape.iter().zip(multiples).map(|(&d, &m)| d * m).collect()
}

/// TILE: repeat `input` `multiples[d]` times along each dimension `d`.
pub fn tile<T: Copy>(input: &[T], in_shape: &[usize], multiples: &[usize], output: &mut [T]) {
    let st = strides(in_shape);
    let offsets: Vec<Vec<usize>> = in_shape
        .iter()
        .zip(multiples)
        .zip(&st)
        .map(|((&n, &m), &s)| (0..n * m).map(|o| (o % n) * s).collect())
        .collect();
    copy_mapped(input, &offsets, output);
}

/// Whether `shape` broadcasts to `target` (numpy rules, one way: `shape`
/// may not be longer, and each of its dimensions is 1 or matches).
pub fn broadcasts_to(shape: &[usize], target: &[usize]) -> bool {
    shape.len() <= target.len() && shape.iter().rev().zip(target.iter().rev()).all(|(&s, &t)| s == t || s == 1)
}

/// BROADCAST_TO: stretch `input` to `out_shape` (see [`broadcasts_to`]).
pub fn broadcast_to<T: Copy>(input: &[T], in_shape: &[usize], out_shape: &[usize], output: &mut [T]) {
    let lead = out_shape.len() - in_shape.len();
    let st = strides(in_shape);
    let offsets: Vec<Vec<usize>> =
        out_shape
            .iter()
            .enumerate()
            .map(|(d, &n)| {
                if d < lead || in_shape[d - lead] == 1 {
                    vec![0; n]
                } else {
                    (0..n).map(|o| o * st[d - lead]).collect()
                }
            })
            .collect();
    copy_mapped(input, &offsets, output);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_2d() {
        let x = [1u8, 2, 3, 4, 5, 6]; // [2,3]
        let mut out = [0u8; 12];
        assert_eq!(tiled_shape(&[2, 3], &[2, 1]), vec![4, 3]);
        tile(&x, &[2, 3], &[2, 1], &mut out);
        assert_eq!(out, [1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6]);
        tile(&x, &[2, 3], &[1, 2], &mut out);
        assert_eq!(out, [1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6]);
    }

    #[test]
    fn tile_scalar_and_zero() {
        let mut out = [0i32; 1];
        tile(&[9i32], &[], &[], &mut out);
        assert_eq!(out, [9]);
        let mut none: [i32; 0] = [];
        tile(&[1i32, 2], &[2], &[0], &mut none);
    }

    #[test]
    fn broadcast_to_adds_and_stretches_dims() {
        assert!(broadcasts_to(&[3, 1], &[2, 3, 2]));
        assert!(!broadcasts_to(&[3, 2], &[3, 3]));
        assert!(!broadcasts_to(&[1, 1, 1], &[1, 1]));
        let x = [1.0f32, 2.0, 3.0]; // [3,1]
        let mut out = [0.0f32; 12];
        broadcast_to(&x, &[3, 1], &[2, 3, 2], &mut out);
        assert_eq!(out, [1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0]);
        let mut out = [0u16; 4];
        broadcast_to(&[5u16], &[], &[2, 2], &mut out);
        assert_eq!(out, [5; 4]);
    }

    #[test]
    fn mapped_copy_reverses() {
        let mut out = [0u8; 3];
        copy_mapped(&[1u8, 2, 3], &[vec![2, 1, 0]], &mut out);
        assert_eq!(out, [3, 2, 1]);
        assert_eq!(strides(&[2, 3, 4]), vec![12, 4, 1]);
    }
}
