//! L2_NORMALIZATION over the last axis, float reference.

/// Divide each row of `depth` values by its L2 norm.
///
/// TFLite's reference computes `norm = max(sqrt(sum x²), epsilon)` (epsilon
/// applied after the square root; the TFLite op uses 1e-6) and writes
/// `x / norm`, so an all-zero row stays zero instead of becoming NaN.
pub fn l2_normalize_f32(input: &[f32], output: &mut [f32], outer: usize, depth: usize, epsilon: f32) {
    if depth == 0 {
        return;
    }
    for (row_in, row_out) in input.chunks_exact(depth).zip(output.chunks_exact_mut(depth)).take(outer) {
        let mut sum_sq = 0.0f32;
        for &x in row_in {
            sum_sq += x * x;
        }
        let norm = sum_sq.sqrt();
        // std::max(norm, epsilon): keeps norm unless norm < epsilon (NaN stays).
        let norm = if norm < epsilon { epsilon } else { norm };
        for (o, &x) in row_out.iter_mut().zip(row_in) {
            *o = x / norm;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_normalised() {
        // [3, 4] has norm 5; [0, 0] stays 0; [-2, 0] -> [-1, 0].
        let x = [3.0f32, 4.0, 0.0, 0.0, -2.0, 0.0];
        let mut o = [9.0f32; 6];
        l2_normalize_f32(&x, &mut o, 3, 2, 1e-6);
        assert_eq!(o, [0.6, 0.8, 0.0, 0.0, -1.0, 0.0]);
    }

    #[test]
    fn epsilon_applies_after_sqrt() {
        // sum of squares 1e-8, sqrt 1e-4 < epsilon 1e-2: divide by 1e-2.
        let x = [1e-4f32];
        let mut o = [0.0f32];
        l2_normalize_f32(&x, &mut o, 1, 1, 1e-2);
        assert!((o[0] - 1e-2).abs() < 1e-8, "{}", o[0]);
    }
}
