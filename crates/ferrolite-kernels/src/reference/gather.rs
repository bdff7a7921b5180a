//! GATHER and GATHER_ND for any element type and integer index type.
//!
//! Indices are checked: an index outside its dimension gives `Err` naming
//! it (TFLite's GATHER also rejects negative indices; they do not wrap).

/// Output shape of GATHER:
/// `params[..axis] + indices[batch_dims..] + params[axis + 1..]`.
pub fn gather_output_shape(
    params_shape: &[usize],
    axis: usize,
    batch_dims: usize,
    indices_shape: &[usize],
) -> Vec<usize> {
    let mut out = params_shape[..axis].to_vec();
    out.extend_from_slice(&indices_shape[batch_dims..]);
    out.extend_from_slice(&params_shape[axis + 1..]);
    out
}

/// GATHER: pick slices of `params` along `axis` by `indices`.
///
/// `axis` and `batch_dims` are normalised (non-negative) by the runtime,
/// with `batch_dims <= axis < params_shape.len()` and the first
/// `batch_dims` dimensions of `params_shape` and `indices_shape` equal;
/// violations give `Err` rather than a panic. `output` has
/// [`gather_output_shape`] elements. Batch `b` of the indices selects from
/// batch `b` of `params`.
pub fn gather<T: Copy, I: Copy + Into<i64>>(
    params: &[T],
    params_shape: &[usize],
    axis: usize,
    batch_dims: usize,
    indices: &[I],
    indices_shape: &[usize],
    output: &mut [T],
) -> Result<(), String> {
    if axis >= params_shape.len() {
        return Err(format!("gather: axis {axis} out of range for rank {}", params_shape.len()));
    }
    if batch_dims > axis || batch_dims > indices_shape.len() {
        return Err(format!("gather: batch_dims {batch_dims} exceeds axis {axis} or indices rank"));
    }
    if params_shape[..batch_dims] != indices_shape[..batch_dims] {
        return Err("gather: batch dimensions of params and indices differ".to_string());
    }
    let batch: usize = params_shape[..batch_dims].iter().product();
    let outer: usize = params_shape[batch_dims..axis].iter().product();
    let axis_size = params_shape[axis];
    let inner: usize = params_shape[axis + 1..].iter().product();
    let coords: usize = indices_shape[batch_dims..].iter().product();

    for b in 0..batch {
        for o in 0..outer {
            let src_base = (b * outer + o) * axis_size;
            let dst_base = (b * outer + o) * coords;
            for i in 0..coords {
                let raw: i64 = indices[b * coords + i].into();
                if raw < 0 || raw >= axis_size as i64 {
                    return Err(format!(
                        "gather: index {raw} (position {}) out of range [0, {axis_size})",
                        b * coords + i
                    ));
                }
                let from = (src_base + raw as usize) * inner;
                let to = (dst_base + i) * inner;
                output[to..to + inner].copy_from_slice(&params[from..from + inner]);
            }
        }
    }
    Ok(())
}

/// Output shape of GATHER_ND: `indices[..-1] + params[indices[-1]..]`.
pub fn gather_nd_output_shape(params_shape: &[usize], indices_shape: &[usize]) -> Vec<usize> {
    let (&nd, lead) = match indices_shape.split_last() {
        Some(x) => x,
        None => return params_shape.to_vec(),
    };
    let mut out = lead.to_vec();
    out.extend_from_slice(&params_shape[nd.min(params_shape.len())..]);
    out
}

/// GATHER_ND: each row of the last indices dimension is a coordinate prefix
/// into `params`; the slice it addresses is copied out.
///
/// Every coordinate is checked against its own dimension (negative or too
/// large gives `Err`). TFLite only checks that the flattened offset lands
/// inside the buffer, so it accepts some out-of-range coordinates that
/// happen to alias another element; those are rejected here.
pub fn gather_nd<T: Copy, I: Copy + Into<i64>>(
    params: &[T],
    params_shape: &[usize],
    indices: &[I],
    indices_shape: &[usize],
    output: &mut [T],
) -> Result<(), String> {
    let nd = indices_shape.last().copied().unwrap_or(0);
    if nd > params_shape.len() {
        return Err(format!("gather_nd: index depth {nd} exceeds params rank {}", params_shape.len()));
    }
    let slice: usize = params_shape[nd..].iter().product();
    // Element strides of the first nd dims.
    let mut strides = vec![0usize; nd];
    let mut step = slice;
    for d in (0..nd).rev() {
        strides[d] = step;
        step *= params_shape[d];
    }
    let n_slices: usize =
        if indices_shape.is_empty() { 1 } else { indices_shape[..indices_shape.len() - 1].iter().product() };
    for s in 0..n_slices {
        let mut from = 0usize;
        for d in 0..nd {
            let raw: i64 = indices[s * nd + d].into();
            if raw < 0 || raw >= params_shape[d] as i64 {
                return Err(format!(
                    "gather_nd: index {raw} (position {}) out of range [0, {}) for dimension {d}",
                    s * nd + d,
                    params_shape[d]
                ));
            }
            from += raw as usize * strides[d];
        }
        output[s * slice..(s + 1) * slice].copy_from_slice(&params[from..from + slice]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_axis0_and_axis1() {
        // params [3,2]
        let p = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut out = [0.0f32; 4];
        gather(&p, &[3, 2], 0, 0, &[2i32, 0], &[2], &mut out).unwrap();
        assert_eq!(out, [5.0, 6.0, 1.0, 2.0]);
        // axis 1 with 2-D indices [[1],[0]] -> shape [3,2,1]
        assert_eq!(gather_output_shape(&[3, 2], 1, 0, &[2, 1]), vec![3, 2, 1]);
        let mut out6 = [0.0f32; 6];
        gather(&p, &[3, 2], 1, 0, &[1i64, 0], &[2, 1], &mut out6).unwrap();
        assert_eq!(out6, [2.0, 1.0, 4.0, 3.0, 6.0, 5.0]);
    }

    #[test]
    fn gather_with_batch_dims() {
        // params [2,3], indices [2,2], batch_dims 1, axis 1:
        // out[b, i] = params[b, idx[b, i]].
        let p = [10, 11, 12, 20, 21, 22];
        let idx = [2i32, 0, 1, 1];
        let mut out = [0; 4];
        gather(&p, &[2, 3], 1, 1, &idx, &[2, 2], &mut out).unwrap();
        assert_eq!(out, [12, 10, 21, 21]);
        assert_eq!(gather_output_shape(&[2, 3], 1, 1, &[2, 2]), vec![2, 2]);
    }

    #[test]
    fn gather_rejects_negative_and_too_large() {
        let p = [1, 2, 3];
        let mut out = [0; 1];
        let e = gather(&p, &[3], 0, 0, &[-1i32], &[1], &mut out).unwrap_err();
        assert!(e.contains("-1"), "{e}");
        let e = gather(&p, &[3], 0, 0, &[3i64], &[1], &mut out).unwrap_err();
        assert!(e.contains("index 3"), "{e}");
        assert!(gather(&p, &[3], 1, 0, &[0i32], &[1], &mut out).is_err());
    }

    #[test]
    fn gather_nd_slices_and_elements() {
        // params [2,2,2] = 0..8
        let p: Vec<i32> = (0..8).collect();
        // Full coordinates -> elements.
        let mut out = [0; 2];
        gather_nd(&p, &[2, 2, 2], &[1i32, 0, 1, 0, 1, 1], &[2, 3], &mut out).unwrap();
        assert_eq!(out, [5, 3]);
        // Prefix coordinates -> rows.
        assert_eq!(gather_nd_output_shape(&[2, 2, 2], &[2, 2]), vec![2, 2]);
        let mut rows = [0; 4];
        gather_nd(&p, &[2, 2, 2], &[1i32, 1, 0, 1], &[2, 2], &mut rows).unwrap();
        assert_eq!(rows, [6, 7, 2, 3]);
        // Out of range in one coordinate even though the flat offset fits.
        let e = gather_nd(&p, &[2, 2, 2], &[0i32, 2], &[1, 2], &mut rows[..2]).unwrap_err();
        assert!(e.contains("index 2"), "{e}");
    }
}
