//! MATRIX_DIAG and MATRIX_SET_DIAG: the main diagonal of the innermost
//! matrices, built from a batch of vectors or replaced in a batch of
//! matrices.

/// `batches` square `n x n` matrices with `diag`'s `n` values per batch on
/// the diagonal and `zero` elsewhere.
pub fn matrix_diag<T: Copy>(diag: &[T], batches: usize, n: usize, zero: T, out: &mut [T]) {
    debug_assert_eq!(diag.len(), batches * n);
    debug_assert_eq!(out.len(), batches * n * n);
    out.fill(zero);
    for (matrix, d) in out.chunks_exact_mut((n * n).max(1)).zip(diag.chunks_exact(n.max(1))) {
        for (i, &v) in d.iter().enumerate() {
            matrix[i * n + i] = v;
        }
    }
}

/// `input`'s `batches` matrices of `rows x cols` with their main diagonal
/// replaced by `diag`'s `min(rows, cols)` values per batch.
pub fn matrix_set_diag<T: Copy>(input: &[T], diag: &[T], batches: usize, rows: usize, cols: usize, out: &mut [T]) {
    let n = rows.min(cols);
    debug_assert_eq!(input.len(), batches * rows * cols);
    debug_assert_eq!(diag.len(), batches * n);
    out.copy_from_slice(input);
    if n == 0 {
        return;
    }
    for (matrix, d) in out.chunks_exact_mut(rows * cols).zip(diag.chunks_exact(n)) {
        for (i, &v) in d.iter().enumerate() {
            matrix[i * cols + i] = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagonal_matrices_from_vectors() {
        let mut out = [7i32; 8];
        matrix_diag(&[1, 2, 3, 4], 2, 2, 0, &mut out);
        assert_eq!(out, [1, 0, 0, 2, 3, 0, 0, 4]);
        let mut out = [7.0f32; 9];
        matrix_diag(&[-1.0, 0.5, 2.0], 1, 3, 0.0, &mut out);
        assert_eq!(out, [-1.0, 0.0, 0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 2.0]);
        let mut none: [u8; 0] = [];
        matrix_diag(&[], 3, 0, 0, &mut none);
    }

    #[test]
    fn set_diagonal_of_wide_and_tall_matrices() {
        // Two 2 x 3 matrices: diagonals of 2 values.
        let input: Vec<i8> = (1..=12).collect();
        let mut out = [0i8; 12];
        matrix_set_diag(&input, &[-1, -2, -3, -4], 2, 2, 3, &mut out);
        assert_eq!(out, [-1, 2, 3, 4, -2, 6, -3, 8, 9, 10, -4, 12]);
        // One 3 x 2 matrix.
        let mut out = [0i8; 6];
        matrix_set_diag(&input[..6], &[0, 0], 1, 3, 2, &mut out);
        assert_eq!(out, [0, 2, 3, 0, 5, 6]);
    }
}
