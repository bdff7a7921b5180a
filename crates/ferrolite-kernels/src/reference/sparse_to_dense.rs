//! SPARSE_TO_DENSE: a tensor of a default value with the values of a few
//! index tuples set.

/// Fill `out` (shape `out_shape`) with `default`, then write value `i` at
/// index tuple `i` for each of the `indices.len() / out_shape.len()`
/// tuples, in order (a repeated tuple keeps its last value, as in TFLite,
/// which ignores `validate_indices`). A single value is written at every
/// tuple. An index outside its dimension is an error naming it (nothing is
/// then promised about `out`).
pub fn sparse_to_dense<T: Copy>(
    indices: &[i64],
    values: &[T],
    default: T,
    out_shape: &[usize],
    out: &mut [T],
) -> Result<(), String> {
    let rank = out_shape.len().max(1);
    let tuples = indices.len() / rank;
    if indices.len() != tuples * rank || (values.len() != 1 && values.len() != tuples) {
        return Err(format!(
            "SPARSE_TO_DENSE: {} index values and {} values do not fit an output of rank {rank}",
            indices.len(),
            values.len()
        ));
    }
    out.fill(default);
    for (t, tuple) in indices.chunks_exact(rank).enumerate() {
        let mut offset = 0usize;
        for (d, &v) in tuple.iter().enumerate() {
            let dim = out_shape.get(d).copied().unwrap_or(1);
            if v < 0 || v as u64 >= dim as u64 {
                return Err(format!(
                    "SPARSE_TO_DENSE: index {v} (tuple {t}, position {d}) is out of range for dimension {d} of size {dim}"
                ));
            }
            offset = offset * dim + v as usize;
        }
        out[offset] = if values.len() == 1 { values[0] } else { values[t] };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuples_into_a_matrix_last_one_wins() {
        let mut out = [0.0f32; 6];
        sparse_to_dense(&[0, 1, 1, 2, 0, 1], &[5.0, 6.0, 7.0], -1.0, &[2, 3], &mut out).unwrap();
        assert_eq!(out, [-1.0, 7.0, -1.0, -1.0, -1.0, 6.0]);
    }

    #[test]
    fn one_value_everywhere_and_vector_output() {
        let mut out = [9i32; 5];
        sparse_to_dense(&[4, 0], &[3], 1, &[5], &mut out).unwrap();
        assert_eq!(out, [3, 1, 1, 1, 3]);
        // No tuples at all: only the default.
        sparse_to_dense(&[], &[3], 2, &[5], &mut out).unwrap();
        assert_eq!(out, [2; 5]);
    }

    #[test]
    fn bad_indices_and_counts_are_errors() {
        let mut out = [0u8; 4];
        let e = sparse_to_dense(&[0, 2], &[1u8], 0, &[2, 2], &mut out).unwrap_err();
        assert!(e.contains("index 2 (tuple 0, position 1)"), "{e}");
        let e = sparse_to_dense(&[-1], &[1u8], 0, &[4], &mut out).unwrap_err();
        assert!(e.contains("index -1"), "{e}");
        let e = sparse_to_dense(&[0, 1, 2], &[1u8, 2], 0, &[4], &mut out).unwrap_err();
        assert!(e.contains("do not fit"), "{e}");
    }
}
