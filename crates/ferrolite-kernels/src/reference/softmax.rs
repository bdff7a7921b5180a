//! SOFTMAX and LOG_SOFTMAX over the last axis, float reference.
//!
//! The input is viewed as `outer` rows of `depth` values (row-major, the
//! softmax axis innermost); `input` and `output` hold `outer * depth` values.

/// Largest value of a row the way TFLite finds it: start from `f32::MIN`
/// (lowest finite) and keep `x` when `max < x`, so NaNs are skipped.
#[inline]
fn row_max(row: &[f32]) -> f32 {
    let mut m = f32::MIN;
    for &x in row {
        if m < x {
            m = x;
        }
    }
    m
}

/// SOFTMAX: `exp((x - max) * beta) / sum`, per row of `depth` values.
///
/// As in TFLite's reference: the exponentials are written to `output`,
/// summed in order in f32, and each is divided by the sum.
pub fn softmax_f32(input: &[f32], output: &mut [f32], outer: usize, depth: usize, beta: f32) {
    if depth == 0 {
        return;
    }
    for (row_in, row_out) in input.chunks_exact(depth).zip(output.chunks_exact_mut(depth)).take(outer) {
        let max = row_max(row_in);
        let mut sum = 0.0f32;
        for (o, &x) in row_out.iter_mut().zip(row_in) {
            let e = ((x - max) * beta).exp();
            *o = e;
            sum += e;
        }
        for o in row_out.iter_mut() {
            *o /= sum;
        }
    }
}

/// LOG_SOFTMAX: `x - max - ln(sum(exp(x - max)))`, per row of `depth` values
/// (TFLite's op has no beta).
pub fn log_softmax_f32(input: &[f32], output: &mut [f32], outer: usize, depth: usize) {
    if depth == 0 {
        return;
    }
    for (row_in, row_out) in input.chunks_exact(depth).zip(output.chunks_exact_mut(depth)).take(outer) {
        let max = row_max(row_in);
        let mut sum = 0.0f32;
        for &x in row_in {
            sum += (x - max).exp();
        }
        let log_sum = sum.ln();
        for (o, &x) in row_out.iter_mut().zip(row_in) {
            *o = x - max - log_sum;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() <= 1e-6 * (1.0 + b.abs())
    }

    #[test]
    fn softmax_rows_by_hand() {
        // Row 1: [0, ln 2, ln 3] -> e^x = [1, 2, 3], sum 6.
        // Row 2: equal values -> uniform.
        let l2 = 2f32.ln();
        let l3 = 3f32.ln();
        let x = [0.0f32, l2, l3, 5.0, 5.0, 5.0];
        let mut o = [0.0f32; 6];
        softmax_f32(&x, &mut o, 2, 3, 1.0);
        let want = [1.0 / 6.0, 2.0 / 6.0, 3.0 / 6.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0];
        for i in 0..6 {
            assert!(close(o[i], want[i]), "{i}: {} vs {}", o[i], want[i]);
        }
    }

    #[test]
    fn softmax_beta_and_large_inputs() {
        // Large inputs do not overflow thanks to the max subtraction.
        // x = [1000, 1000.5] (exact in f32), beta 2: weights [1, e] ->
        // [1/(1+e), e/(1+e)] = [0.2689414213699951, 0.7310585786300049].
        let x = [1000.0f32, 1000.5];
        let mut o = [0.0f32; 2];
        softmax_f32(&x, &mut o, 1, 2, 2.0);
        assert!(close(o[0], 0.268_941_43) && close(o[1], 0.731_058_6), "{o:?}");
    }

    #[test]
    fn log_softmax_by_hand() {
        // [0, ln 2, ln 3]: log(e^x / 6) = x - ln 6.
        let x = [0.0f32, 2f32.ln(), 3f32.ln()];
        let mut o = [0.0f32; 3];
        log_softmax_f32(&x, &mut o, 1, 3);
        let l6 = 6f32.ln();
        assert!(close(o[0], -l6) && close(o[1], 2f32.ln() - l6) && close(o[2], -(2f32.ln())));
    }
}
