//! DYNAMIC_UPDATE_SLICE: a copy of the operand with a block overwritten.

/// Where the update lands: each start index clamped into
/// `0..=operand_dim - update_dim` (TFLite's and XLA's rule, so the update
/// always fits). `update` must not be larger than `operand` in any
/// dimension.
pub fn clamp_start(start: &[i64], operand: &[usize], update: &[usize]) -> Vec<usize> {
    start
        .iter()
        .zip(operand.iter().zip(update))
        .map(|(&s, (&o, &u))| s.clamp(0, o.saturating_sub(u) as i64) as usize)
        .collect()
}

/// Copy `operand` to `out`, then write `update` (shape `upd_shape`) at
/// `start` (already clamped, see [`clamp_start`]).
pub fn dynamic_update_slice<T: Copy>(
    operand: &[T],
    shape: &[usize],
    update: &[T],
    upd_shape: &[usize],
    start: &[usize],
    out: &mut [T],
) {
    out.copy_from_slice(operand);
    let rank = shape.len();
    if update.is_empty() {
        return;
    }
    if rank == 0 {
        out[0] = update[0];
        return;
    }
    let mut strides = vec![1usize; rank];
    for d in (0..rank - 1).rev() {
        strides[d] = strides[d + 1] * shape[d + 1];
    }
    let row = upd_shape[rank - 1];
    // Walk the update's rows (all but the last dimension).
    let mut counter = vec![0usize; rank - 1];
    for src in update.chunks_exact(row) {
        let mut offset = start[rank - 1];
        for d in 0..rank - 1 {
            offset += (start[d] + counter[d]) * strides[d];
        }
        out[offset..offset + row].copy_from_slice(src);
        for d in (0..rank - 1).rev() {
            counter[d] += 1;
            if counter[d] < upd_shape[d] {
                break;
            }
            counter[d] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamps_the_start_into_the_operand() {
        assert_eq!(clamp_start(&[-3, 1], &[4, 5], &[2, 3]), [0, 1]);
        assert_eq!(clamp_start(&[3, 9], &[4, 5], &[2, 3]), [2, 2]);
    }

    #[test]
    fn writes_a_block() {
        // 3x4 operand of 0..12, 2x2 update at (1, 2).
        let x: Vec<i32> = (0..12).collect();
        let mut out = [0i32; 12];
        dynamic_update_slice(&x, &[3, 4], &[-1, -2, -3, -4], &[2, 2], &[1, 2], &mut out);
        assert_eq!(out, [0, 1, 2, 3, 4, 5, -1, -2, 8, 9, -3, -4]);
    }

    #[test]
    fn rank_one_and_scalar() {
        let mut out = [0u8; 4];
        dynamic_update_slice(&[1, 2, 3, 4], &[4], &[9, 8], &[2], &[2], &mut out);
        assert_eq!(out, [1, 2, 9, 8]);
        let mut s = [0.0f32];
        dynamic_update_slice(&[1.0], &[], &[2.0], &[], &[], &mut s);
        assert_eq!(s, [2.0]);
    }
}
