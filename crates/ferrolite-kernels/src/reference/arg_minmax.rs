//! ARG_MAX and ARG_MIN along one axis.
//!
//! As in TFLite, the scan keeps the first index holding the extreme value:
//! a later element replaces it only when strictly greater (or less), so ties
//! go to the lowest index and a NaN never replaces (nor, once first, is
//! replaced).

/// Output shape: the input shape without `axis`.
pub fn arg_output_shape(shape: &[usize], axis: usize) -> Vec<usize> {
    shape.iter().enumerate().filter(|&(d, _)| d != axis).map(|(_, &n)| n).collect()
}

/// Index of the maximum (`max == true`) or minimum along `axis`, as `I`.
/// The axis must not be empty.
pub fn arg_min_max<T: Copy + PartialOrd, I: TryFrom<usize> + Copy + Default>(
    input: &[T],
    shape: &[usize],
    axis: usize,
    max: bool,
    output: &mut [I],
) {
    let outer: usize = shape[..axis].iter().product();
    let n = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    if n == 0 {
        return;
    }
    for o in 0..outer {
        for i in 0..inner {
            let base = o * n * inner + i;
            let mut best = input[base];
            let mut best_k = 0usize;
            for k in 1..n {
                let v = input[base + k * inner];
                let better = if max { v > best } else { v < best };
                if better {
                    best = v;
                    best_k = k;
                }
            }
            output[o * inner + i] = I::try_from(best_k).unwrap_or_default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_axis() {
        let x = [1.0f32, 5.0, 5.0, 0.0, -1.0, 3.0, -1.0, 2.0]; // [2,4]
        let mut out = [0i32; 2];
        arg_min_max(&x, &[2, 4], 1, true, &mut out);
        assert_eq!(out, [1, 1]); // ties -> first
        arg_min_max(&x, &[2, 4], 1, false, &mut out);
        assert_eq!(out, [3, 0]);
    }

    #[test]
    fn first_axis_int64_output() {
        let x = [1i32, 9, 3, 7, 2, 3]; // [2,3]
        let mut out = [0i64; 3];
        assert_eq!(arg_output_shape(&[2, 3], 0), vec![3]);
        arg_min_max(&x, &[2, 3], 0, true, &mut out);
        assert_eq!(out, [1, 0, 0]);
        arg_min_max(&x, &[2, 3], 0, false, &mut out);
        assert_eq!(out, [0, 1, 0]);
    }

    #[test]
    fn bools_and_bytes() {
        let mut out = [0i32; 1];
        arg_min_max(&[0u8, 0, 1, 1], &[4], 0, true, &mut out);
        assert_eq!(out, [2]);
        arg_min_max(&[-3i8, 4, -5, -5], &[4], 0, false, &mut out);
        assert_eq!(out, [2]);
    }
}
