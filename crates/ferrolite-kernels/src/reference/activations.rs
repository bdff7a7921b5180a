//! Stand-alone float activations (the ops, not the fused clamps): RELU
//! family, LEAKY_RELU, PRELU, LOGISTIC, TANH, HARD_SWISH, GELU, ELU.
//!
//! All take `input` and write `output` of the same length, except PRELU
//! which broadcasts `alpha` against the input.

use crate::activation::ClampF32;
use crate::reference::elementwise::{broadcast_binary, unary_f32};

/// RELU: `max(0, x)` (NaN passes through).
pub fn relu_f32(input: &[f32], output: &mut [f32]) {
    unary_f32(input, output, |x| ClampF32::RELU.apply(x));
}

/// RELU6: `min(max(0, x), 6)`.
pub fn relu6_f32(input: &[f32], output: &mut [f32]) {
    unary_f32(input, output, |x| ClampF32::RELU6.apply(x));
}

/// RELU_N1_TO_1: `min(max(-1, x), 1)`.
pub fn relu_n1_to_1_f32(input: &[f32], output: &mut [f32]) {
    unary_f32(input, output, |x| ClampF32::RELU_N1_TO_1.apply(x));
}

/// RELU_0_TO_1: `min(max(0, x), 1)`.
pub fn relu_0_to_1_f32(input: &[f32], output: &mut [f32]) {
    let c = ClampF32 { min: 0.0, max: 1.0 };
    unary_f32(input, output, |x| c.apply(x));
}

/// LEAKY_RELU: `x > 0 ? x : alpha * x`.
pub fn leaky_relu_f32(input: &[f32], output: &mut [f32], alpha: f32) {
    unary_f32(input, output, |x| if x > 0.0 { x } else { x * alpha });
}

/// PRELU: `x >= 0 ? x : x * alpha`, with `alpha` broadcast against `input`
/// (typically a per-channel `[1, 1, C]` or `[C]` tensor). `out_shape` is the
/// broadcast of the two shapes.
pub fn prelu_f32(
    input: &[f32],
    in_shape: &[usize],
    alpha: &[f32],
    alpha_shape: &[usize],
    output: &mut [f32],
    out_shape: &[usize],
) {
    broadcast_binary(input, in_shape, alpha, alpha_shape, output, out_shape, |x, a| if x >= 0.0 { x } else { x * a });
}

/// LOGISTIC for one value, as TFLite's float reference computes it: 1 above
/// ~16.62 (where `1/(1+e^-x)` rounds to 1 anyway), `e^x` below -9 (where it
/// equals the sigmoid to float precision), and `1/(1+e^-x)` between.
#[inline]
pub fn logistic_scalar(x: f32) -> f32 {
    const UPPER: f32 = 16.619_047;
    const LOWER: f32 = -9.0;
    if x > UPPER {
        1.0
    } else if x < LOWER {
        x.exp()
    } else {
        1.0 / (1.0 + (-x).exp())
    }
}

/// LOGISTIC (sigmoid), see [`logistic_scalar`].
pub fn logistic_f32(input: &[f32], output: &mut [f32]) {
    unary_f32(input, output, logistic_scalar);
}

/// TANH.
pub fn tanh_f32(input: &[f32], output: &mut [f32]) {
    unary_f32(input, output, f32::tanh);
}

/// HARD_SWISH for one value: `x * relu6(x + 3) / 6`, multiply before divide.
#[inline]
pub fn hard_swish_scalar(x: f32) -> f32 {
    let r = x + 3.0;
    let r = if 0.0 < r { r } else { 0.0 };
    let r = if r < 6.0 { r } else { 6.0 };
    x * r / 6.0
}

/// HARD_SWISH, see [`hard_swish_scalar`].
pub fn hard_swish_f32(input: &[f32], output: &mut [f32]) {
    unary_f32(input, output, hard_swish_scalar);
}

/// ELU: `x < 0 ? e^x - 1 : x` (with `expm1` for accuracy near 0).
pub fn elu_f32(input: &[f32], output: &mut [f32]) {
    unary_f32(input, output, |x| if x < 0.0 { x.exp_m1() } else { x });
}

/// Softplus `ln(1 + e^x)`, evaluated without overflow for large |x|.
/// (Not a TFLite builtin; here for runtimes that lower it.)
pub fn softplus_f32(input: &[f32], output: &mut [f32]) {
    unary_f32(input, output, |x| if x > 0.0 { x + (-x).exp().ln_1p() } else { x.exp().ln_1p() });
}

/// Complementary error function in double precision (relative error far
/// below f32 rounding). Power series of erf near 0, continued fraction of
/// erfc in the tails; negative arguments by `erfc(-x) = 2 - erfc(x)`.
pub fn erfc_f64(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x < 0.0 {
        return 2.0 - erfc_f64(-x);
    }
    if x < 1.5 {
        // erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1))
        let x2 = x * x;
        let mut term = x; // (-1)^n x^(2n+1) / n!
        let mut sum = x;
        let mut n = 0.0f64;
        // x < 1.5 needs well under 60 terms to reach 1e-17 relative.
        while n < 100.0 {
            n += 1.0;
            term *= -x2 / n;
            let add = term / (2.0 * n + 1.0);
            sum += add;
            if add.abs() <= 1e-17 * sum.abs() {
                break;
            }
        }
        1.0 - sum * core::f64::consts::FRAC_2_SQRT_PI
    } else if x > 27.0 {
        0.0
    } else {
        // erfc(x) = e^{-x^2}/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))
        let mut k = x;
        // 120 terms reach full double precision from x = 1.5 on.
        let mut n = 120.0f64;
        while n >= 1.0 {
            k = x + (n / 2.0) / k;
            n -= 1.0;
        }
        (-x * x).exp() * (0.5 * core::f64::consts::FRAC_2_SQRT_PI) / k
    }
}

/// GELU for one value. Exact form as TFLite writes it,
/// `0.5 x erfc(-x / sqrt 2)` (no cancellation for large negative x), or the
/// `approximate` tanh form `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`.
#[inline]
pub fn gelu_scalar(x: f32, approximate: bool) -> f32 {
    if approximate {
        let k = (core::f64::consts::FRAC_2_SQRT_PI * core::f64::consts::FRAC_1_SQRT_2) as f32;
        let inner = k * (x + 0.044715f32 * x * x * x);
        0.5 * x * (1.0 + inner.tanh())
    } else {
        let t = x * -core::f32::consts::FRAC_1_SQRT_2;
        0.5 * x * (erfc_f64(t as f64) as f32)
    }
}

/// GELU (TFLite option `approximate` picks the tanh form), see [`gelu_scalar`].
pub fn gelu_f32(input: &[f32], output: &mut [f32], approximate: bool) {
    unary_f32(input, output, |x| gelu_scalar(x, approximate));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f32, b: f32, tol: f32) -> bool {
        (a - b).abs() <= tol * (1.0 + b.abs())
    }

    #[test]
    fn relu_family() {
        let x = [-2.0f32, -0.5, 0.0, 0.5, 2.0, 7.0];
        let mut o = [0.0f32; 6];
        relu_f32(&x, &mut o);
        assert_eq!(o, [0.0, 0.0, 0.0, 0.5, 2.0, 7.0]);
        relu6_f32(&x, &mut o);
        assert_eq!(o, [0.0, 0.0, 0.0, 0.5, 2.0, 6.0]);
        relu_n1_to_1_f32(&x, &mut o);
        assert_eq!(o, [-1.0, -0.5, 0.0, 0.5, 1.0, 1.0]);
        relu_0_to_1_f32(&x, &mut o);
        assert_eq!(o, [0.0, 0.0, 0.0, 0.5, 1.0, 1.0]);
        leaky_relu_f32(&x, &mut o, 0.1);
        assert_eq!(o, [-0.2, -0.05, 0.0, 0.5, 2.0, 7.0]);
    }

    #[test]
    fn prelu_per_channel_alpha() {
        // input [1,2,2,3] NHWC, alpha [1,1,3] per channel.
        let x = [
            -1.0f32, -2.0, -3.0, 1.0, 2.0, 3.0, //
            -4.0, 5.0, -6.0, 0.0, -1.0, 4.0,
        ];
        let alpha = [0.0f32, 0.5, 2.0];
        let mut o = [0.0f32; 12];
        prelu_f32(&x, &[1, 2, 2, 3], &alpha, &[1, 1, 3], &mut o, &[1, 2, 2, 3]);
        assert_eq!(o, [0.0, -1.0, -6.0, 1.0, 2.0, 3.0, 0.0, 5.0, -12.0, 0.0, -0.5, 4.0]);
    }

    #[test]
    fn logistic_values_and_tails() {
        let mut o = [0.0f32; 5];
        logistic_f32(&[0.0, 2.0, -2.0, 20.0, -20.0], &mut o);
        assert_eq!(o[0], 0.5);
        // 1/(1+e^-2) = 0.8807970779778823
        assert!(close(o[1], 0.880_797_1, 1e-6));
        assert!(close(o[2], 0.119_202_92, 1e-6));
        assert_eq!(o[3], 1.0);
        // Below -9 TFLite returns exp(x): e^-20 = 2.061153622438558e-9
        assert!((o[4] - 2.061_153_6e-9).abs() < 1e-15);
    }

    #[test]
    fn tanh_hard_swish_elu() {
        let mut o = [0.0f32; 5];
        hard_swish_f32(&[-4.0, -3.0, -1.0, 1.0, 4.0], &mut o);
        // x*relu6(x+3)/6: -4*0/6, -3*0/6, -1*2/6, 1*4/6, 4*6/6
        assert_eq!(o, [0.0, 0.0, -2.0 / 6.0, 4.0 / 6.0, 4.0]);
        elu_f32(&[-1.0, 0.0, 2.0, -20.0, 0.5], &mut o);
        // e^-1 - 1 = -0.6321205588285577
        assert!(close(o[0], -0.632_120_56, 1e-6));
        assert_eq!(&o[1..3], &[0.0, 2.0]);
        assert!(close(o[3], -1.0, 1e-7));
        tanh_f32(&[0.0, 1.0, -1.0, 10.0, -10.0], &mut o);
        // tanh(1) = 0.7615941559557649
        assert!(close(o[1], 0.761_594_2, 1e-6));
        assert!(close(o[2], -0.761_594_2, 1e-6));
        assert!(close(o[3], 1.0, 1e-7));
    }

    #[test]
    fn erfc_matches_known_values() {
        // Reference values of erfc from tables / high-precision libraries.
        let cases = [
            (0.0, 1.0),
            (0.5, 0.479_500_122_186_953_5),
            (1.0, 0.157_299_207_050_285_13),
            (2.0, 0.004_677_734_981_047_266),
            (2.9, 4.109_787_809_945_886e-5),
            (3.0, 2.209_049_699_858_544e-5),
            (5.0, 1.537_459_794_428_035e-12),
            (10.0, 2.088_487_583_762_545e-45),
            (-1.0, 1.842_700_792_949_715),
        ];
        for (x, want) in cases {
            let got = erfc_f64(x);
            assert!((got - want).abs() <= 1e-12 * want, "erfc({x}) = {got}, want {want}");
        }
    }

    #[test]
    fn gelu_exact_and_approximate() {
        let x = [-3.0f32, -1.0, 0.0, 1.0, 2.0, -10.0];
        let mut o = [0.0f32; 6];
        gelu_f32(&x, &mut o, false);
        // 0.5 x (1 + erf(x/sqrt2)): known GELU values.
        let exact = [-0.004_049_694_f32, -0.158_655_25, 0.0, 0.841_344_7, 1.954_499_7];
        for i in 0..5 {
            assert!(close(o[i], exact[i], 1e-6), "gelu({}) = {}", x[i], o[i]);
        }
        // -10 * 0.5 * erfc(10/sqrt2) = -5 * 1.523970604832e-23
        assert!((o[5] / -7.619_853e-23 - 1.0).abs() < 1e-5, "{}", o[5]);

        gelu_f32(&x, &mut o, true);
        // tanh form: 0.5 x (1 + tanh(0.7978845608 (x + 0.044715 x^3)))
        let approx = [-0.003_637_392_f32, -0.158_808, 0.0, 0.841_192, 1.954_597_7];
        for i in 0..5 {
            assert!(close(o[i], approx[i], 1e-5), "gelu_approx({}) = {}", x[i], o[i]);
        }
    }

    #[test]
    fn softplus_is_stable() {
        let mut o = [0.0f32; 3];
        softplus_f32(&[0.0, 100.0, -100.0], &mut o);
        assert!(close(o[0], core::f32::consts::LN_2, 1e-7));
        assert_eq!(o[1], 100.0);
        assert!(o[2] > 0.0 && o[2] < 1e-40);
    }
}
