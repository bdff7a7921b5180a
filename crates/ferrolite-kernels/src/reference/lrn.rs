//! LOCAL_RESPONSE_NORMALIZATION across channels (float).

/// Parameters as in the options table: the window is `2 * radius + 1`
/// channels, and TFLite does not divide `alpha` by the window size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LrnParams {
    pub radius: usize,
    pub bias: f32,
    pub alpha: f32,
    pub beta: f32,
}

/// `out[c] = x[c] * (bias + alpha * sum(x[c']^2 for |c' - c| <= radius))^-beta`
/// over the last dimension (`depth` channels).
pub fn local_response_normalization(p: &LrnParams, input: &[f32], depth: usize, output: &mut [f32]) {
    if depth == 0 {
        return;
    }
    for (x, y) in input.chunks_exact(depth).zip(output.chunks_exact_mut(depth)) {
        for c in 0..depth {
            let lo = c.saturating_sub(p.radius);
            let hi = (c + p.radius + 1).min(depth);
            let mut acc = 0.0f32;
            for &v in &x[lo..hi] {
                acc += v * v;
            }
            let m = (p.bias + p.alpha * acc).powf(-p.beta);
            y[c] = x[c] * m;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_of_three() {
        let p = LrnParams { radius: 1, bias: 1.0, alpha: 1.0, beta: 1.0 };
        let x = [1.0f32, 2.0, 3.0, -1.0];
        let mut y = [0.0f32; 4];
        local_response_normalization(&p, &x, 4, &mut y);
        // sums of squares: 1+4=5, 1+4+9=14, 4+9+1=14, 9+1=10
        let want = [1.0 / 6.0, 2.0 / 15.0, 3.0 / 15.0, -1.0 / 11.0];
        for (a, b) in y.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{y:?}");
        }
    }

    #[test]
    fn square_root_beta_and_rows() {
        let p = LrnParams { radius: 0, bias: 0.0, alpha: 1.0, beta: 0.5 };
        let x = [4.0f32, -3.0];
        let mut y = [0.0f32; 2];
        local_response_normalization(&p, &x, 1, &mut y);
        assert_eq!(y, [1.0, -1.0]);
    }
}
