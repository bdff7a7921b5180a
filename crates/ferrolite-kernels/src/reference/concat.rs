//! CONCATENATION, SPLIT / SPLIT_V, PACK and UNPACK for any element type.
//!
//! All four are block copies: with `outer` = product of the dimensions
//! before `axis`, each tensor contributes one contiguous block per outer
//! index (its dimensions from `axis` on). Axes are normalised (non-negative)
//! by the runtime. CONCATENATION's fused activation, if any, is applied by
//! the runtime afterwards (it is a clamp on float outputs).

/// Concatenate `inputs` (shapes `shapes`, equal except along `axis`) along
/// `axis` into `output`.
pub fn concat<T: Copy>(inputs: &[&[T]], shapes: &[&[usize]], axis: usize, output: &mut [T]) {
    let blocks: Vec<usize> = shapes.iter().map(|s| s[axis.min(s.len())..].iter().product()).collect();
    concat_rows(inputs, &blocks, 0, output);
}

/// Outer rows `first ..` of a concatenation (as many as `rows` holds, each
/// the inputs' `blocks` one after another): input `i` contributes
/// `inputs[i][o * blocks[i] ..][.. blocks[i]]` to row `o`. [`concat`] is
/// all rows; threads can each take a run of them.
pub fn concat_rows<T: Copy>(inputs: &[&[T]], blocks: &[usize], first: usize, rows: &mut [T]) {
    let row: usize = blocks.iter().sum();
    if row == 0 {
        return;
    }
    for (r, dst) in rows.chunks_exact_mut(row).enumerate() {
        let o = first + r;
        let mut at = 0;
        for (input, &block) in inputs.iter().zip(blocks) {
            dst[at..at + block].copy_from_slice(&input[o * block..(o + 1) * block]);
            at += block;
        }
    }
}

/// Split `input` (shape `shape`) along `axis` into `outputs`, in order.
///
/// Each output's extent along `axis` is implied by its length, so this
/// serves both SPLIT (equal parts) and SPLIT_V (given sizes): the runtime
/// sizes each output as `shape` with `axis` replaced by that part's size.
pub fn split<T: Copy>(input: &[T], shape: &[usize], axis: usize, outputs: &mut [&mut [T]]) {
    let outer: usize = shape[..axis.min(shape.len())].iter().product();
    if outer == 0 {
        return;
    }
    let mut pos = 0usize;
    for o in 0..outer {
        for out in outputs.iter_mut() {
            let block = out.len() / outer;
            out[o * block..(o + 1) * block].copy_from_slice(&input[pos..pos + block]);
            pos += block;
        }
    }
}

/// PACK: stack `inputs`, each of shape `in_shape`, along a new dimension
/// inserted at `axis` (`0..=in_shape.len()`). Same as [`concat`] of the
/// inputs reshaped to `in_shape[..axis] + [1] + in_shape[axis..]`.
pub fn pack<T: Copy>(inputs: &[&[T]], in_shape: &[usize], axis: usize, output: &mut [T]) {
    let outer: usize = in_shape[..axis.min(in_shape.len())].iter().product();
    let block: usize = in_shape[axis.min(in_shape.len())..].iter().product();
    let mut pos = 0usize;
    for o in 0..outer {
        for input in inputs {
            output[pos..pos + block].copy_from_slice(&input[o * block..(o + 1) * block]);
            pos += block;
        }
    }
}

/// UNPACK: the inverse of [`pack`]. `in_shape` is the packed input's shape;
/// output `i` receives the slice at index `i` along `axis` (shape
/// `in_shape` without `axis`). There are `in_shape[axis]` outputs.
pub fn unpack<T: Copy>(input: &[T], in_shape: &[usize], axis: usize, outputs: &mut [&mut [T]]) {
    // Same as SPLIT into parts of size 1 along `axis`.
    split(input, in_shape, axis, outputs);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concat_middle_axis() {
        // a [2,1,2] = [[[1,2]],[[3,4]]], b [2,2,2] = 10..17 → out [2,3,2].
        let a = [1, 2, 3, 4];
        let b = [10, 11, 12, 13, 14, 15, 16, 17];
        let mut out = [0; 12];
        concat(&[&a, &b], &[&[2, 1, 2], &[2, 2, 2]], 1, &mut out);
        assert_eq!(out, [1, 2, 10, 11, 12, 13, 3, 4, 14, 15, 16, 17]);
    }

    #[test]
    fn concat_first_and_last_axis() {
        let a = [1.0f32, 2.0, 3.0, 4.0];
        let b = [5.0f32, 6.0];
        let mut out = [0.0f32; 6];
        concat(&[&a, &b], &[&[2, 2], &[1, 2]], 0, &mut out);
        assert_eq!(out, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        concat(&[&a, &b], &[&[2, 2], &[2, 1]], 1, &mut out);
        assert_eq!(out, [1.0, 2.0, 5.0, 3.0, 4.0, 6.0]);
    }

    #[test]
    fn split_equal_and_uneven() {
        // x [2,3]: rows [0,1,2] and [3,4,5].
        let x = [0, 1, 2, 3, 4, 5];
        let (mut a, mut b, mut c) = ([0; 2], [0; 2], [0; 2]);
        split(&x, &[2, 3], 1, &mut [&mut a[..], &mut b[..], &mut c[..]]);
        assert_eq!((a, b, c), ([0, 3], [1, 4], [2, 5]));
        // SPLIT_V sizes [2, 1] along axis 1.
        let (mut p, mut q) = ([0; 4], [0; 2]);
        split(&x, &[2, 3], 1, &mut [&mut p[..], &mut q[..]]);
        assert_eq!((p, q), ([0, 1, 3, 4], [2, 5]));
        // Along axis 0.
        let (mut r0, mut r1) = ([0; 3], [0; 3]);
        split(&x, &[2, 3], 0, &mut [&mut r0[..], &mut r1[..]]);
        assert_eq!((r0, r1), ([0, 1, 2], [3, 4, 5]));
    }

    #[test]
    fn pack_and_unpack_round_trip() {
        let a = [1, 2, 3, 4];
        let b = [5, 6, 7, 8];
        let mut out = [0; 8];
        // Two [2,2] stacked at axis 1 -> [2,2,2]: out[i,k,j] = (k==0?a:b)[i,j]
        pack(&[&a, &b], &[2, 2], 1, &mut out);
        assert_eq!(out, [1, 2, 5, 6, 3, 4, 7, 8]);
        let (mut ua, mut ub) = ([0; 4], [0; 4]);
        unpack(&out, &[2, 2, 2], 1, &mut [&mut ua[..], &mut ub[..]]);
        assert_eq!((ua, ub), (a, b));
        // Axis 0 and last axis.
        pack(&[&a, &b], &[2, 2], 0, &mut out);
        assert_eq!(out, [1, 2, 3, 4, 5, 6, 7, 8]);
        pack(&[&a, &b], &[2, 2], 2, &mut out);
        assert_eq!(out, [1, 5, 2, 6, 3, 7, 4, 8]);
    }
}
