//! REVERSE_SEQUENCE: for each index along the batch dimension, the first
//! `len` elements along the sequence dimension reversed, the rest copied.

/// Reverse `input` (shape `shape`) into `out`. `lengths[b]` is the prefix
/// length reversed for batch index `b`; each must be within
/// `0..=shape[seq_dim]` (the caller checks).
pub fn reverse_sequence<T: Copy>(
    input: &[T],
    shape: &[usize],
    seq_dim: usize,
    batch_dim: usize,
    lengths: &[usize],
    out: &mut [T],
) {
    let total: usize = shape.iter().product();
    if total == 0 {
        return;
    }
    let rank = shape.len();
    let mut strides = vec![1usize; rank];
    for d in (0..rank.saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * shape[d + 1];
    }
    let mut coord = vec![0usize; rank];
    for (i, &x) in input.iter().enumerate().take(total) {
        let len = lengths[coord[batch_dim]];
        let s = coord[seq_dim];
        let dst = if s < len { i - s * strides[seq_dim] + (len - 1 - s) * strides[seq_dim] } else { i };
        out[dst] = x;
        for d in (0..rank).rev() {
            coord[d] += 1;
            if coord[d] < shape[d] {
                break;
            }
            coord[d] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_first() {
        // [3, 4]: row b reverses its first lengths[b] values.
        let x: Vec<i32> = (0..12).collect();
        let mut out = [0i32; 12];
        reverse_sequence(&x, &[3, 4], 1, 0, &[1, 3, 4], &mut out);
        assert_eq!(out, [0, 1, 2, 3, 6, 5, 4, 7, 11, 10, 9, 8]);
    }

    #[test]
    fn batch_after_sequence() {
        // [3, 2], seq 0, batch 1: column 0 reverses 2, column 1 reverses 1.
        let mut out = [0.0f32; 6];
        reverse_sequence(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0], &[3, 2], 0, 1, &[2, 1], &mut out);
        assert_eq!(out, [2.0, 1.0, 0.0, 3.0, 4.0, 5.0]);
    }

    #[test]
    fn inner_dimension_moves_together() {
        // [2, 3, 2], seq 1, batch 0, lengths [3, 0].
        let x: Vec<u8> = (0..12).collect();
        let mut out = [0u8; 12];
        reverse_sequence(&x, &[2, 3, 2], 1, 0, &[3, 0], &mut out);
        assert_eq!(out, [4, 5, 2, 3, 0, 1, 6, 7, 8, 9, 10, 11]);
    }
}
