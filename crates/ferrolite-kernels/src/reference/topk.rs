//! TOPK_V2: the `k` largest values of each last-axis row, sorted.

use std::cmp::Ordering;

/// For each row of `row_size` elements, write its `k` largest values in
/// decreasing order to `values` and their positions to `indices` (`k` per
/// row). Equal values keep their original order (lower index first), as in
/// TFLite.
///
/// NaNs are not ordered by TFLite either; here a NaN never outranks an
/// element already kept, so results are deterministic but not meaningful.
pub fn top_k<T: Copy + PartialOrd, I: TryFrom<usize> + Copy + Default>(
    input: &[T],
    row_size: usize,
    k: usize,
    values: &mut [T],
    indices: &mut [I],
) {
    if row_size == 0 || k == 0 {
        return;
    }
    let k = k.min(row_size);
    let mut kept: Vec<usize> = Vec::with_capacity(k + 1);
    for (r, row) in input.chunks_exact(row_size).enumerate() {
        kept.clear();
        for (c, &v) in row.iter().enumerate() {
            // Kept is sorted best-first; c goes after everything not beaten
            // by it (so after equal values, which have lower indices).
            let at = kept.partition_point(|&e| v.partial_cmp(&row[e]) != Some(Ordering::Greater));
            if at < k {
                kept.insert(at, c);
                kept.truncate(k);
            }
        }
        for (j, &c) in kept.iter().enumerate() {
            values[r * k + j] = row[c];
            indices[r * k + j] = I::try_from(c).unwrap_or_default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_with_ties_by_index() {
        let x = [3.0f32, 1.0, 3.0, 5.0, 2.0, 2.0, 9.0, 2.0]; // [2,4]
        let mut v = [0.0f32; 4];
        let mut i = [0i32; 4];
        top_k(&x, 4, 2, &mut v, &mut i);
        assert_eq!(v, [5.0, 3.0, 9.0, 2.0]);
        assert_eq!(i, [3, 0, 2, 0]);
    }

    #[test]
    fn k_equal_to_row_sorts_the_row() {
        let x = [1i64, 4, 4, -2, 4];
        let mut v = [0i64; 5];
        let mut i = [0i32; 5];
        top_k(&x, 5, 5, &mut v, &mut i);
        assert_eq!(v, [4, 4, 4, 1, -2]);
        assert_eq!(i, [1, 2, 4, 0, 3]);
    }

    #[test]
    fn int8_k1() {
        let x = [-5i8, -3, -3, -7];
        let mut v = [0i8; 1];
        let mut i = [0i32; 1];
        top_k(&x, 4, 1, &mut v, &mut i);
        assert_eq!((v, i), ([-3], [1]));
    }
}
