//! ONE_HOT: each index becomes a row of `depth` values along a new axis,
//! `on` where the row's position equals the index and `off` elsewhere.

/// Write the one-hot expansion of `indices` into `out`.
///
/// The indices are viewed as `[prefix, suffix]` (the dimensions before and
/// after the new axis) and the output as `[prefix, depth, suffix]`:
/// `out[i][j][k] = if indices[i][k] == j { on } else { off }`. An index
/// outside `0..depth` (negative ones included) gives a row of `off`. As in
/// TFLite, an index is compared after truncation to 32 bits.
pub fn one_hot<T: Copy>(indices: &[i64], prefix: usize, depth: usize, suffix: usize, on: T, off: T, out: &mut [T]) {
    debug_assert_eq!(indices.len(), prefix * suffix);
    debug_assert_eq!(out.len(), prefix * depth * suffix);
    for (row, block) in indices.chunks(suffix.max(1)).zip(out.chunks_mut((depth * suffix).max(1))) {
        for (j, dst) in block.chunks_mut(suffix.max(1)).enumerate() {
            for (o, &idx) in dst.iter_mut().zip(row) {
                *o = if idx as i32 as i64 == j as i64 { on } else { off };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_axis() {
        // indices [3] -> [3, 4]; -1 and 4 are out of range.
        let mut out = [0.0f32; 12];
        one_hot(&[1, -1, 4], 3, 4, 1, 5.0, -2.0, &mut out);
        assert_eq!(out, [-2.0, 5.0, -2.0, -2.0, -2.0, -2.0, -2.0, -2.0, -2.0, -2.0, -2.0, -2.0]);
    }

    #[test]
    fn middle_axis() {
        // indices [2, 2] = [[0, 2], [1, 1]], axis 1, depth 3 -> [2, 3, 2].
        let mut out = [9i32; 12];
        one_hot(&[0, 2, 1, 1], 2, 3, 2, 1, 0, &mut out);
        assert_eq!(out, [1, 0, 0, 0, 0, 1, 0, 0, 1, 1, 0, 0]);
    }

    #[test]
    fn first_axis_and_truncated_index() {
        // axis 0: output [depth, n]; 2^32 + 1 compares as 1.
        let mut out = [0u8; 6];
        one_hot(&[(1i64 << 32) + 1, 0], 1, 3, 2, 1, 0, &mut out);
        assert_eq!(out, [0, 1, 1, 0, 0, 0]);
    }
}
