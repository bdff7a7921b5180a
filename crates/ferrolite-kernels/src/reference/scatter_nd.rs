//! SCATTER_ND: updates added into a zeroed tensor at the positions that
//! index tuples name (repeated positions add up).

/// Scatter `updates` into `out` (shape `out_shape`).
///
/// `indices` holds `tuples` index tuples of `depth` values each; tuple `t`
/// names the slice `out[idx_0, ..., idx_{depth-1}, ...]` of
/// `slice = product(out_shape[depth..])` values, and update values
/// `t * slice ..` are added to it with `add`. `out` starts at zero (`T::default()`). An
/// index outside its dimension is an error naming it (nothing is then
/// promised about `out`).
pub fn scatter_nd<T: Copy + Default>(
    indices: &[i64],
    tuples: usize,
    depth: usize,
    updates: &[T],
    out_shape: &[usize],
    out: &mut [T],
    add: impl Fn(T, T) -> T,
) -> Result<(), String> {
    if depth > out_shape.len() {
        return Err(format!("SCATTER_ND: index tuples of {depth} values for an output of rank {}", out_shape.len()));
    }
    let slice: usize = out_shape[depth..].iter().product();
    if indices.len() != tuples * depth || updates.len() != tuples * slice || out.len() != out_shape.iter().product() {
        return Err("SCATTER_ND: indices, updates and output sizes do not match".into());
    }
    out.fill(T::default());
    // Row-major strides of the indexed dimensions, in slices.
    let mut strides = vec![0usize; depth];
    let mut step = 1usize;
    for d in (0..depth).rev() {
        strides[d] = step;
        step *= out_shape[d];
    }
    for t in 0..tuples {
        let mut offset = 0usize;
        for d in 0..depth {
            let v = indices[t * depth + d];
            let dim = out_shape[d];
            if v < 0 || v as u64 >= dim as u64 {
                return Err(format!(
                    "SCATTER_ND: index {v} (tuple {t}, position {d}) is out of range for dimension {d} of size {dim}"
                ));
            }
            offset += v as usize * strides[d];
        }
        let dst = &mut out[offset * slice..(offset + 1) * slice];
        for (o, &u) in dst.iter_mut().zip(&updates[t * slice..(t + 1) * slice]) {
            *o = add(*o, u);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_with_a_repeat_add_up() {
        // indices [[1], [3], [1]] into [4, 2].
        let mut out = [7.0f32; 8];
        scatter_nd(&[1, 3, 1], 3, 1, &[1.0, 2.0, 3.0, 4.0, 10.0, 20.0], &[4, 2], &mut out, |a, b| a + b).unwrap();
        assert_eq!(out, [0.0, 0.0, 11.0, 22.0, 0.0, 0.0, 3.0, 4.0]);
    }

    #[test]
    fn full_index_tuples() {
        // Elements of a [2, 3] output: (0, 2) and (1, 0).
        let mut out = [0i32; 6];
        scatter_nd(&[0, 2, 1, 0], 2, 2, &[5, 6], &[2, 3], &mut out, i32::wrapping_add).unwrap();
        assert_eq!(out, [0, 0, 5, 6, 0, 0]);
    }

    #[test]
    fn out_of_range_is_an_error() {
        let mut out = [0i32; 4];
        let e = scatter_nd(&[1, 4], 2, 1, &[1, 2], &[4], &mut out, i32::wrapping_add).unwrap_err();
        assert!(e.contains("index 4"), "{e}");
        let e = scatter_nd(&[-1], 1, 1, &[1], &[4], &mut out, i32::wrapping_add).unwrap_err();
        assert!(e.contains("index -1"), "{e}");
    }
}
