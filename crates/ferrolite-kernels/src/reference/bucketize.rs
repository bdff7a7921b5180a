//! BUCKETIZE: the index of the bucket each value falls in.

/// Whether the boundaries are in ascending order (TFLite refuses others).
pub fn boundaries_sorted(boundaries: &[f32]) -> bool {
    boundaries.windows(2).all(|w| w[0] <= w[1])
}

/// `out[i]` = how many boundaries are `<= values[i]` (the position of the
/// first boundary greater than the value, as `std::upper_bound`).
/// `less(v, b)` says whether value `v` is below boundary `b`, in the
/// type TFLite compares them in.
pub fn bucketize<T: Copy>(values: &[T], boundaries: &[f32], out: &mut [i32], less: impl Fn(T, f32) -> bool) {
    for (o, &v) in out.iter_mut().zip(values) {
        *o = boundaries.partition_point(|&b| !less(v, b)) as i32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_boundaries_at_or_below() {
        let b = [0.0, 1.0, 5.0];
        assert!(boundaries_sorted(&b));
        assert!(!boundaries_sorted(&[1.0, 0.0]));
        let mut out = [0i32; 6];
        bucketize(&[-1.0f32, 0.0, 0.5, 1.0, 5.0, 9.0], &b, &mut out, |v, b| v < b);
        assert_eq!(out, [0, 1, 1, 2, 3, 3]);
        let mut out = [0i32; 3];
        bucketize(&[-3i32, 1, 7], &b, &mut out, |v, b| (v as f32) < b);
        assert_eq!(out, [0, 2, 3]);
    }
}
