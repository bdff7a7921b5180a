//! Element-wise float kernels for same-shape operands: ADD and MUL with a
//! fused clamp, the RELU family (a clamp), PRELU with a repeating alpha,
//! HARD_SWISH and LOGISTIC.
//!
//! ADD, MUL, the clamps, PRELU and HARD_SWISH do the reference's operations
//! in the same order (`x * relu6(x + 3) / 6` divides, it does not multiply
//! by 1/6), so results are bit-identical. LOGISTIC keeps the reference's three ranges and
//! evaluates `exp` with a Cephes-style range reduction and degree-5
//! polynomial: within ~2 ulp of the reference in the normal range, exact
//! zero/denormal behaviour below `e^-87`.
//!
//! Each takes the [`IsaLevel`] chosen at plan time; the portable versions
//! (`*_scalar`) are plain loops without libm calls, so the compiler can
//! vectorise them with the baseline instruction set.

use crate::activation::ClampF32;
use crate::optimized::isa::IsaLevel;
#[cfg(target_arch = "x86_64")]
use crate::optimized::isa::{Avx2Fma, Avx512};

/// `out[i] = clamp(a[i] + b[i])`.
pub fn add_f32(isa: IsaLevel, a: &[f32], b: &[f32], out: &mut [f32], clamp: ClampF32) {
    binary(isa, a, b, out, clamp, Op::Add)
}

/// `out[i] = clamp(a[i] * b[i])`.
pub fn mul_f32(isa: IsaLevel, a: &[f32], b: &[f32], out: &mut [f32], clamp: ClampF32) {
    binary(isa, a, b, out, clamp, Op::Mul)
}

/// HARD_SWISH: `out[i] = x * relu6(x + 3) / 6`.
pub fn hard_swish_f32(isa: IsaLevel, input: &[f32], out: &mut [f32]) {
    let n = out.len();
    assert!(input.len() >= n, "input too short");
    #[cfg(target_arch = "x86_64")]
    if let Some(t) = Avx2Fma::new(isa) {
        return avx2::f32_vhswish_avx2(t, &input[..n], out);
    }
    let _ = isa;
    f32_vhswish_scalar(&input[..n], out)
}

/// LOGISTIC (sigmoid), with the reference's ranges: 1 above 16.619047,
/// `e^x` below -9, `1 / (1 + e^-x)` between.
pub fn logistic_f32(isa: IsaLevel, input: &[f32], out: &mut [f32]) {
    let n = out.len();
    assert!(input.len() >= n, "input too short");
    #[cfg(target_arch = "x86_64")]
    if let Some(t) = Avx512::new(isa) {
        return avx512::f32_vsigmoid_avx512(t, &input[..n], out);
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(t) = Avx2Fma::new(isa) {
        return avx2::f32_vsigmoid_avx2_fma(t, &input[..n], out);
    }
    let _ = isa;
    f32_vsigmoid_scalar(&input[..n], out)
}

/// ADD, SUB, MUL or DIV against an operand that repeats along the output
/// (a per-channel bias or scale, `[C]` or `[1, 1, 1, C]` against `[N, H, W,
/// C]`): `out[i] = clamp(x[i] (op) r[i % r.len()])`, or `clamp(r[..] (op)
/// x[i])` when `repeat_first` (the repeating operand is the op's left one).
/// The same operations in the same order as the reference, so the same
/// bits. `out.len()` must be a multiple of `r.len()`.
pub fn broadcast_rows_f32(
    isa: IsaLevel,
    op: ArithOp,
    x: &[f32],
    r: &[f32],
    repeat_first: bool,
    out: &mut [f32],
    clamp: ClampF32,
) {
    let n = out.len();
    assert!(x.len() >= n, "operand too short");
    assert!(!r.is_empty() && n.is_multiple_of(r.len()), "{n} outputs for a period of {}", r.len());
    #[cfg(target_arch = "x86_64")]
    if let Some(t) = Avx2Fma::new(isa) {
        return avx2::f32_vrows_avx2(t, op, &x[..n], r, repeat_first, out, clamp);
    }
    let _ = isa;
    f32_vrows_scalar(op, &x[..n], r, repeat_first, out, clamp)
}

/// The arithmetic of [`broadcast_rows_f32`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    /// `a > b ? a : b`, as the reference (a NaN `a` gives `b`).
    Maximum,
    /// `a < b ? a : b`.
    Minimum,
    /// `(a - b)²`.
    SquaredDifference,
}

impl ArithOp {
    #[inline(always)]
    fn apply(self, a: f32, b: f32) -> f32 {
        match self {
            ArithOp::Add => a + b,
            ArithOp::Sub => a - b,
            ArithOp::Mul => a * b,
            ArithOp::Div => a / b,
            ArithOp::Maximum => {
                if a > b {
                    a
                } else {
                    b
                }
            }
            ArithOp::Minimum => {
                if a < b {
                    a
                } else {
                    b
                }
            }
            ArithOp::SquaredDifference => {
                let d = a - b;
                d * d
            }
        }
    }
}

/// `op` over `a` and `b` broadcast to `out_shape`, clamped: the
/// reference's [`broadcast_binary`](crate::reference::elementwise::broadcast_binary)
/// (rows of the coalesced innermost dimension, each operand advancing or
/// held) compiled for AVX2 where the CPU has it, so its row loops run
/// eight lanes wide. The same operations as the reference: the same bits.
#[allow(clippy::too_many_arguments)]
pub fn broadcast_f32(
    isa: IsaLevel,
    op: ArithOp,
    a: &[f32],
    a_shape: &[usize],
    b: &[f32],
    b_shape: &[usize],
    out: &mut [f32],
    out_shape: &[usize],
    clamp: ClampF32,
) {
    #[cfg(target_arch = "x86_64")]
    if let Some(t) = Avx2Fma::new(isa) {
        return avx2::f32_vbroadcast_avx2(t, op, a, a_shape, b, b_shape, out, out_shape, clamp);
    }
    let _ = isa;
    crate::reference::elementwise::broadcast_binary(a, a_shape, b, b_shape, out, out_shape, |x, y| {
        clamp.apply(op.apply(x, y))
    })
}

fn f32_vrows_scalar(op: ArithOp, x: &[f32], r: &[f32], repeat_first: bool, out: &mut [f32], clamp: ClampF32) {
    for (orow, xrow) in out.chunks_mut(r.len()).zip(x.chunks(r.len())) {
        for ((o, &v), &w) in orow.iter_mut().zip(xrow).zip(r) {
            let (a, b) = if repeat_first { (w, v) } else { (v, w) };
            *o = clamp.apply(op.apply(a, b));
        }
    }
}

/// The RELU family: `out[i] = clamp(input[i])` (RELU, RELU6, RELU_N1_TO_1,
/// RELU_0_TO_1), NaN kept as `ClampF32::apply` keeps it.
pub fn clamp_f32(isa: IsaLevel, input: &[f32], out: &mut [f32], clamp: ClampF32) {
    let n = out.len();
    assert!(input.len() >= n, "input too short");
    #[cfg(target_arch = "x86_64")]
    if let Some(t) = Avx2Fma::new(isa) {
        return avx2::f32_vclamp_avx2(t, &input[..n], out, clamp);
    }
    let _ = isa;
    f32_vclamp_scalar(&input[..n], out, clamp)
}

/// LEAKY_RELU: `x > 0 ? x : alpha * x` (the reference's select and
/// multiply: the same bits).
pub fn leaky_relu_f32(isa: IsaLevel, input: &[f32], out: &mut [f32], alpha: f32) {
    let n = out.len();
    assert!(input.len() >= n, "input too short");
    #[cfg(target_arch = "x86_64")]
    if let Some(t) = Avx2Fma::new(isa) {
        return avx2::f32_vleaky_avx2(t, &input[..n], out, alpha);
    }
    let _ = isa;
    crate::reference::activations::leaky_relu_f32(&input[..n], out, alpha)
}

/// PRELU with an alpha that repeats along the output (per channel, the
/// usual case: `alpha.len()` is the channel count): `out[i] = x >= 0 ? x :
/// x * alpha[i % alpha.len()]`, `x = input[i]`. `out.len()` must be a
/// multiple of `alpha.len()`.
pub fn prelu_f32(isa: IsaLevel, input: &[f32], alpha: &[f32], out: &mut [f32]) {
    let n = out.len();
    assert!(input.len() >= n, "input too short");
    assert!(!alpha.is_empty() && n.is_multiple_of(alpha.len()), "{n} outputs for an alpha period of {}", alpha.len());
    // A short period (one alpha, or a few channels) is repeated to a
    // vector-friendly row first, so the row loop is not all tail.
    let mut wide = [0.0f32; PRELU_MIN_ROW * 2];
    let alpha = if alpha.len() < PRELU_MIN_ROW && n >= PRELU_MIN_ROW {
        let reps = PRELU_MIN_ROW.div_ceil(alpha.len());
        let row = alpha.len() * reps;
        for (k, v) in wide[..row].iter_mut().enumerate() {
            *v = alpha[k % alpha.len()];
        }
        // The whole rows of the wider period, then the rest at the short one.
        let body = n / row * row;
        prelu_rows(isa, &input[..body], &wide[..row], &mut out[..body]);
        return prelu_rows(isa, &input[body..n], alpha, &mut out[body..]);
    } else {
        alpha
    };
    prelu_rows(isa, &input[..n], alpha, out)
}

/// Rows shorter than this get their alpha repeated in [`prelu_f32`].
const PRELU_MIN_ROW: usize = 32;

fn prelu_rows(isa: IsaLevel, input: &[f32], alpha: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if let Some(t) = Avx2Fma::new(isa) {
        return avx2::f32_vprelu_avx2(t, input, alpha, out);
    }
    let _ = isa;
    f32_vprelu_scalar(input, alpha, out)
}

/// TANH: `1 - 2 / (1 + e^2|x|)` with the sign of `x`, from the same `exp`
/// as LOGISTIC; below |x| = 0.25 an odd Taylor polynomial (there the
/// difference would cancel). Within a few ulp of `f32::tanh`.
pub fn tanh_f32(isa: IsaLevel, input: &[f32], out: &mut [f32]) {
    let n = out.len();
    assert!(input.len() >= n, "input too short");
    #[cfg(target_arch = "x86_64")]
    if let Some(t) = Avx512::new(isa) {
        return avx512::f32_vtanh_avx512(t, &input[..n], out);
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(t) = Avx2Fma::new(isa) {
        return avx2::f32_vtanh_avx2_fma(t, &input[..n], out);
    }
    let _ = isa;
    crate::reference::activations::tanh_f32(&input[..n], out)
}

/// GELU, exact (`0.5 x erfc(-x / sqrt 2)`, erfc from a Chebyshev fit with
/// a relative error below 1.2e-7 everywhere, so the negative tail keeps
/// its relative accuracy) or `approximate` (the tanh form). The reference
/// sums erfc's series in double precision: ~70 ns a value.
pub fn gelu_f32(isa: IsaLevel, input: &[f32], out: &mut [f32], approximate: bool) {
    let n = out.len();
    assert!(input.len() >= n, "input too short");
    #[cfg(target_arch = "x86_64")]
    if let Some(t) = Avx512::new(isa) {
        return avx512::f32_vgelu_avx512(t, &input[..n], out, approximate);
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(t) = Avx2Fma::new(isa) {
        return avx2::f32_vgelu_avx2_fma(t, &input[..n], out, approximate);
    }
    let _ = isa;
    crate::reference::activations::gelu_f32(&input[..n], out, approximate)
}

/// SOFTMAX over rows of `depth` values: `exp((x - max) * beta) / sum`,
/// the reference's steps with the LOGISTIC kernel's `exp` (within a few
/// ulp) and sums in eight lanes (another order: the reference sums one by
/// one). `input` and `out` hold whole rows.
pub fn softmax_f32(isa: IsaLevel, input: &[f32], out: &mut [f32], depth: usize, beta: f32) {
    assert!(depth > 0 && input.len() == out.len() && out.len().is_multiple_of(depth), "softmax rows of {depth}");
    #[cfg(target_arch = "x86_64")]
    if let Some(t) = Avx512::new(isa) {
        return avx512::f32_softmax_avx512(t, input, out, depth, beta);
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(t) = Avx2Fma::new(isa) {
        return avx2::f32_softmax_avx2_fma(t, input, out, depth, beta);
    }
    let _ = isa;
    crate::reference::softmax::softmax_f32(input, out, out.len() / depth, depth, beta)
}

#[derive(Clone, Copy)]
enum Op {
    Add,
    Mul,
}

fn binary(isa: IsaLevel, a: &[f32], b: &[f32], out: &mut [f32], clamp: ClampF32, op: Op) {
    let n = out.len();
    assert!(a.len() >= n && b.len() >= n, "operands shorter than the output");
    let (a, b) = (&a[..n], &b[..n]);
    #[cfg(target_arch = "x86_64")]
    if let Some(t) = Avx2Fma::new(isa) {
        return avx2::f32_vbinary_avx2(t, a, b, out, clamp, op);
    }
    let _ = isa;
    match op {
        Op::Add => f32_vadd_scalar(a, b, out, clamp),
        Op::Mul => f32_vmul_scalar(a, b, out, clamp),
    }
}

fn f32_vadd_scalar(a: &[f32], b: &[f32], out: &mut [f32], clamp: ClampF32) {
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = clamp.apply(x + y);
    }
}

fn f32_vmul_scalar(a: &[f32], b: &[f32], out: &mut [f32], clamp: ClampF32) {
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = clamp.apply(x * y);
    }
}

fn f32_vclamp_scalar(input: &[f32], out: &mut [f32], clamp: ClampF32) {
    for (o, &x) in out.iter_mut().zip(input) {
        *o = clamp.apply(x);
    }
}

#[inline(always)]
fn prelu_scalar(x: f32, a: f32) -> f32 {
    if x >= 0.0 {
        x
    } else {
        x * a
    }
}

fn f32_vprelu_scalar(input: &[f32], alpha: &[f32], out: &mut [f32]) {
    for (orow, xrow) in out.chunks_mut(alpha.len()).zip(input.chunks(alpha.len())) {
        for ((o, &x), &a) in orow.iter_mut().zip(xrow).zip(alpha) {
            *o = prelu_scalar(x, a);
        }
    }
}

fn f32_vhswish_scalar(input: &[f32], out: &mut [f32]) {
    for (o, &x) in out.iter_mut().zip(input) {
        *o = crate::reference::activations::hard_swish_scalar(x);
    }
}

const SIGMOID_UPPER: f32 = 16.619_047;
const SIGMOID_LOWER: f32 = -9.0;
/// Below this `e^x` rounds to 0 in f32, so the argument is clamped here.
const EXP_MIN_ARG: f32 = -104.0;
const LOG2E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split so that `n * LN2_HI` is exact for |n| < 2^10.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Cephes `expf` polynomial: `e^r ≈ 1 + r + r² P(r)` on |r| <= ln2 / 2.
const EXP_P: [f32; 6] = [1.987_569_1e-4, 1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 0.166_666_65, 0.5];
/// `1.5 * 2^23`: adding and subtracting it rounds to the nearest integer.
const ROUND_MAGIC: f32 = 12_582_912.0;

/// `2^n` for `-126 <= n <= 127` as a float, from its exponent bits.
#[inline(always)]
fn pow2i(n: i32) -> f32 {
    f32::from_bits(((n + 127) as u32) << 23)
}

/// `e^x` for `x <= 88`, NaN in NaN out, denormal/zero results below -87.
#[inline(always)]
fn exp_scalar(x: f32) -> f32 {
    let x = if x < EXP_MIN_ARG { EXP_MIN_ARG } else { x };
    let t = x * LOG2E + ROUND_MAGIC;
    let n = t.to_bits() as i32 - ROUND_MAGIC.to_bits() as i32;
    let nf = t - ROUND_MAGIC;
    let r = x - nf * LN2_HI;
    let r = r - nf * LN2_LO;
    let mut y = EXP_P[0];
    for &c in &EXP_P[1..] {
        y = y * r + c;
    }
    let y = y * (r * r) + r + 1.0;
    // 2^n in two factors so n down to -150 reaches the denormals.
    let n1 = n >> 1;
    y * pow2i(n1) * pow2i(n - n1)
}

/// Branch-free (selects only) so the loop vectorises.
#[inline(always)]
fn sigmoid_scalar(x: f32) -> f32 {
    let low = x < SIGMOID_LOWER;
    let e = exp_scalar(if low { x } else { -x });
    let mid = 1.0 / (1.0 + e);
    let v = if low { e } else { mid };
    if x > SIGMOID_UPPER {
        1.0
    } else {
        v
    }
}

fn f32_vsigmoid_scalar(input: &[f32], out: &mut [f32]) {
    for (o, &x) in out.iter_mut().zip(input) {
        *o = sigmoid_scalar(x);
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
    use super::*;
    use std::arch::x86_64::*;

    /// The odd Taylor coefficients of tanh from x^3 (x^3 / 3 ... x^11).
    pub(super) const TANH_TAYLOR: [f32; 5] =
        [-1.0 / 3.0, 2.0 / 15.0, -17.0 / 315.0, 62.0 / 2835.0, -1382.0 / 155_925.0];
    /// Below this |x| tanh takes the polynomial (its next term, x^13 * 0.0036,
    /// is below 3e-11 there).
    pub(super) const TANH_SMALL: f32 = 0.25;
    /// Numerical Recipes' `erfcc` fit: `erfc(z) = t exp(-z^2 + P(t))`, `t = 1 /
    /// (1 + z / 2)`, `z >= 0`, P's coefficients from t^0 up.
    pub(super) const ERFC_P: [f32; 10] = [
        -1.265_512_2,
        1.000_023_7,
        0.374_091_96,
        0.096_784_18,
        -0.186_288_06,
        0.278_868_07,
        -1.135_204,
        1.488_515_9,
        -0.822_152_2,
        0.170_872_77,
    ];

    #[inline(always)]
    fn clamp8(v: __m256, lo: __m256, hi: __m256) -> __m256 {
        // SAFETY: only inlined into AVX-enabled functions; register-only ops.
        // max(lo, v) / min(hi, v) keep a NaN `v`, like `ClampF32::apply`.
        unsafe { _mm256_min_ps(hi, _mm256_max_ps(lo, v)) }
    }

    /// Run `body8` on each full block of 8 and `tail` on the rest.
    macro_rules! blocks {
        ($n:expr, $i:ident, $body8:block, $tail:block) => {{
            let mut $i = 0;
            while $i + 8 <= $n {
                $body8
                $i += 8;
            }
            if $i < $n {
                $tail
            }
        }};
    }

    /// `[e(0), e(1), e(2), e(3)]` with `$k` bound to each index: four
    /// straight-line copies (closures would not inherit the caller's
    /// target features, and a loop over the array may stay rolled).
    macro_rules! x4 {
        ($k:ident => $e:expr) => {
            [
                {
                    let $k = 0;
                    $e
                },
                {
                    let $k = 1;
                    $e
                },
                {
                    let $k = 2;
                    $e
                },
                {
                    let $k = 3;
                    $e
                },
            ]
        };
    }

    pub(super) fn f32_vbinary_avx2(t: Avx2Fma, a: &[f32], b: &[f32], out: &mut [f32], clamp: ClampF32, op: Op) {
        assert!(a.len() == out.len() && b.len() == out.len());
        let _ = t;
        // SAFETY: the token proves AVX2; lengths are equal (checked above).
        unsafe { vbinary(a, b, out, clamp, op) }
    }

    /// # Safety
    /// AVX2 available; `a`, `b` at least as long as `out`.
    #[target_feature(enable = "avx2")]
    unsafe fn vbinary(a: &[f32], b: &[f32], out: &mut [f32], clamp: ClampF32, op: Op) {
        let n = out.len();
        let (lo, hi) = (_mm256_set1_ps(clamp.min), _mm256_set1_ps(clamp.max));
        let (ap, bp, op_) = (a.as_ptr(), b.as_ptr(), out.as_mut_ptr());
        // SAFETY: every access is below `n`, within all three slices.
        unsafe {
            blocks!(
                n,
                i,
                {
                    let (x, y) = (_mm256_loadu_ps(ap.add(i)), _mm256_loadu_ps(bp.add(i)));
                    let v = match op {
                        Op::Add => _mm256_add_ps(x, y),
                        Op::Mul => _mm256_mul_ps(x, y),
                    };
                    _mm256_storeu_ps(op_.add(i), clamp8(v, lo, hi));
                },
                {
                    let (a, b, out) = (&a[i..n], &b[i..n], &mut out[i..n]);
                    match op {
                        Op::Add => f32_vadd_scalar(a, b, out, clamp),
                        Op::Mul => f32_vmul_scalar(a, b, out, clamp),
                    }
                }
            )
        }
    }

    pub(super) fn f32_vrows_avx2(
        t: Avx2Fma,
        op: ArithOp,
        x: &[f32],
        r: &[f32],
        repeat_first: bool,
        out: &mut [f32],
        clamp: ClampF32,
    ) {
        assert!(x.len() == out.len() && !r.is_empty() && out.len().is_multiple_of(r.len()));
        let _ = t;
        // SAFETY: the token proves AVX2; `x` and `out` are whole rows of
        // `r.len()` values (checked above).
        unsafe {
            match (op, repeat_first) {
                (ArithOp::Add, false) => vrows::<0, false>(x, r, out, clamp),
                (ArithOp::Add, true) => vrows::<0, true>(x, r, out, clamp),
                (ArithOp::Sub, false) => vrows::<1, false>(x, r, out, clamp),
                (ArithOp::Sub, true) => vrows::<1, true>(x, r, out, clamp),
                (ArithOp::Mul, false) => vrows::<2, false>(x, r, out, clamp),
                (ArithOp::Mul, true) => vrows::<2, true>(x, r, out, clamp),
                (ArithOp::Div, false) => vrows::<3, false>(x, r, out, clamp),
                (ArithOp::Div, true) => vrows::<3, true>(x, r, out, clamp),
                (ArithOp::Maximum, false) => vrows::<4, false>(x, r, out, clamp),
                (ArithOp::Maximum, true) => vrows::<4, true>(x, r, out, clamp),
                (ArithOp::Minimum, false) => vrows::<5, false>(x, r, out, clamp),
                (ArithOp::Minimum, true) => vrows::<5, true>(x, r, out, clamp),
                (ArithOp::SquaredDifference, false) => vrows::<6, false>(x, r, out, clamp),
                (ArithOp::SquaredDifference, true) => vrows::<6, true>(x, r, out, clamp),
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn f32_vbroadcast_avx2(
        t: Avx2Fma,
        op: ArithOp,
        a: &[f32],
        a_shape: &[usize],
        b: &[f32],
        b_shape: &[usize],
        out: &mut [f32],
        out_shape: &[usize],
        clamp: ClampF32,
    ) {
        let _ = t;
        // SAFETY: the token proves AVX2; the callee is safe code.
        unsafe {
            match op {
                ArithOp::Add => vbroadcast::<0>(a, a_shape, b, b_shape, out, out_shape, clamp),
                ArithOp::Sub => vbroadcast::<1>(a, a_shape, b, b_shape, out, out_shape, clamp),
                ArithOp::Mul => vbroadcast::<2>(a, a_shape, b, b_shape, out, out_shape, clamp),
                ArithOp::Div => vbroadcast::<3>(a, a_shape, b, b_shape, out, out_shape, clamp),
                ArithOp::Maximum => vbroadcast::<4>(a, a_shape, b, b_shape, out, out_shape, clamp),
                ArithOp::Minimum => vbroadcast::<5>(a, a_shape, b, b_shape, out, out_shape, clamp),
                ArithOp::SquaredDifference => vbroadcast::<6>(a, a_shape, b, b_shape, out, out_shape, clamp),
            }
        }
    }

    /// The reference broadcast, its row loops compiled with AVX2 (`OP`
    /// indexes [`OPS`], a constant so each loop holds one operation).
    ///
    /// # Safety
    /// AVX2 available.
    #[target_feature(enable = "avx2")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn vbroadcast<const OP: u8>(
        a: &[f32],
        a_shape: &[usize],
        b: &[f32],
        b_shape: &[usize],
        out: &mut [f32],
        out_shape: &[usize],
        clamp: ClampF32,
    ) {
        let op = OPS[OP as usize];
        crate::reference::elementwise::broadcast_binary(a, a_shape, b, b_shape, out, out_shape, |x, y| {
            clamp.apply(op.apply(x, y))
        })
    }

    /// [`ArithOp`] by the index the const-generic kernels take.
    const OPS: [ArithOp; 7] = [
        ArithOp::Add,
        ArithOp::Sub,
        ArithOp::Mul,
        ArithOp::Div,
        ArithOp::Maximum,
        ArithOp::Minimum,
        ArithOp::SquaredDifference,
    ];

    /// `OP` indexes [`OPS`]; `FIRST`: the repeating operand
    /// is the left one.
    ///
    /// # Safety
    /// AVX2 available; `x` and `out` the same whole number of rows of
    /// `r.len()` values.
    #[target_feature(enable = "avx2")]
    unsafe fn vrows<const OP: u8, const FIRST: bool>(x: &[f32], r: &[f32], out: &mut [f32], clamp: ClampF32) {
        let p = r.len();
        let (lo, hi) = (_mm256_set1_ps(clamp.min), _mm256_set1_ps(clamp.max));
        let rp = r.as_ptr();
        let op = OPS[OP as usize];
        for (orow, xrow) in out.chunks_exact_mut(p).zip(x.chunks_exact(p)) {
            let (xp, op_) = (xrow.as_ptr(), orow.as_mut_ptr());
            // SAFETY: every access is below `p`, within the row and `r`.
            unsafe {
                blocks!(
                    p,
                    i,
                    {
                        let (v, w) = (_mm256_loadu_ps(xp.add(i)), _mm256_loadu_ps(rp.add(i)));
                        let (a, b) = if FIRST { (w, v) } else { (v, w) };
                        // max_ps / min_ps return their second operand
                        // unless the comparison holds: the reference's
                        // `a > b ? a : b` exactly, NaN included.
                        let y = match OP {
                            0 => _mm256_add_ps(a, b),
                            1 => _mm256_sub_ps(a, b),
                            2 => _mm256_mul_ps(a, b),
                            3 => _mm256_div_ps(a, b),
                            4 => _mm256_max_ps(a, b),
                            5 => _mm256_min_ps(a, b),
                            _ => {
                                let d = _mm256_sub_ps(a, b);
                                _mm256_mul_ps(d, d)
                            }
                        };
                        _mm256_storeu_ps(op_.add(i), clamp8(y, lo, hi));
                    },
                    {
                        f32_vrows_scalar(op, &xrow[i..p], &r[i..p], FIRST, &mut orow[i..p], clamp);
                    }
                )
            }
        }
    }

    /// `e^x` on one vector, as `exp_scalar` (with FMAs).
    #[inline(always)]
    fn exp8(x: __m256) -> __m256 {
        exp8x4([x; 4])[0]
    }

    /// tanh on one vector (see `tanh_f32`).
    #[inline(always)]
    fn tanh8(x: __m256) -> __m256 {
        // SAFETY: only inlined into `avx2,fma` functions; register-only ops.
        unsafe {
            let sign = _mm256_set1_ps(-0.0);
            let a = _mm256_andnot_ps(sign, x);
            let one = _mm256_set1_ps(1.0);
            let e = exp8(_mm256_mul_ps(a, _mm256_set1_ps(-2.0)));
            let big = _mm256_div_ps(_mm256_sub_ps(one, e), _mm256_add_ps(one, e));
            let big = _mm256_or_ps(big, _mm256_and_ps(x, sign));
            let x2 = _mm256_mul_ps(x, x);
            let c = TANH_TAYLOR.map(|c| _mm256_set1_ps(c));
            let mut p = c[4];
            p = _mm256_fmadd_ps(p, x2, c[3]);
            p = _mm256_fmadd_ps(p, x2, c[2]);
            p = _mm256_fmadd_ps(p, x2, c[1]);
            p = _mm256_fmadd_ps(p, x2, c[0]);
            let small = _mm256_fmadd_ps(_mm256_mul_ps(p, x2), x, x);
            // NaN compares false and keeps `big` (NaN).
            _mm256_blendv_ps(big, small, _mm256_cmp_ps::<_CMP_LT_OQ>(a, _mm256_set1_ps(TANH_SMALL)))
        }
    }

    /// erfc on one vector (see `gelu_f32`).
    #[inline(always)]
    fn erfc8(x: __m256) -> __m256 {
        // SAFETY: only inlined into `avx2,fma` functions; register-only ops.
        unsafe {
            let one = _mm256_set1_ps(1.0);
            let z = _mm256_andnot_ps(_mm256_set1_ps(-0.0), x);
            let t = _mm256_div_ps(one, _mm256_fmadd_ps(z, _mm256_set1_ps(0.5), one));
            let c = ERFC_P.map(|c| _mm256_set1_ps(c));
            let mut p = c[9];
            for k in (0..9).rev() {
                p = _mm256_fmadd_ps(p, t, c[k]);
            }
            let r = _mm256_mul_ps(t, exp8(_mm256_fnmadd_ps(z, z, p)));
            // erfc(-z) = 2 - erfc(z).
            let neg = _mm256_cmp_ps::<_CMP_LT_OQ>(x, _mm256_setzero_ps());
            _mm256_blendv_ps(r, _mm256_sub_ps(_mm256_set1_ps(2.0), r), neg)
        }
    }

    pub(super) fn f32_vtanh_avx2_fma(t: Avx2Fma, input: &[f32], out: &mut [f32]) {
        assert_eq!(input.len(), out.len());
        let _ = t;
        // SAFETY: the token proves AVX2 + FMA; lengths are equal.
        unsafe { vtanh(input, out) }
    }

    /// # Safety
    /// AVX2 + FMA available; `input` at least as long as `out`.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn vtanh(input: &[f32], out: &mut [f32]) {
        let n = out.len();
        let (ip, op) = (input.as_ptr(), out.as_mut_ptr());
        // SAFETY: every access is below `n`, within both slices.
        unsafe {
            blocks!(n, i, { _mm256_storeu_ps(op.add(i), tanh8(_mm256_loadu_ps(ip.add(i)))) }, {
                crate::reference::activations::tanh_f32(&input[i..n], &mut out[i..n])
            })
        }
    }

    pub(super) fn f32_vgelu_avx2_fma(t: Avx2Fma, input: &[f32], out: &mut [f32], approximate: bool) {
        assert_eq!(input.len(), out.len());
        let _ = t;
        // SAFETY: the token proves AVX2 + FMA; lengths are equal.
        unsafe { vgelu(input, out, approximate) }
    }

    /// # Safety
    /// AVX2 + FMA available; `input` at least as long as `out`.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn vgelu(input: &[f32], out: &mut [f32], approximate: bool) {
        let n = out.len();
        let (ip, op) = (input.as_ptr(), out.as_mut_ptr());
        let half = _mm256_set1_ps(0.5);
        // sqrt(2 / pi), as the reference rounds it.
        let k = _mm256_set1_ps((std::f64::consts::FRAC_2_SQRT_PI * std::f64::consts::FRAC_1_SQRT_2) as f32);
        // SAFETY: every access is below `n`, within both slices.
        unsafe {
            blocks!(
                n,
                i,
                {
                    let x = _mm256_loadu_ps(ip.add(i));
                    let hx = _mm256_mul_ps(half, x);
                    let v = if approximate {
                        let x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
                        let inner = _mm256_mul_ps(k, _mm256_fmadd_ps(_mm256_set1_ps(0.044715), x3, x));
                        _mm256_mul_ps(hx, _mm256_add_ps(_mm256_set1_ps(1.0), tanh8(inner)))
                    } else {
                        let t = _mm256_mul_ps(x, _mm256_set1_ps(-std::f32::consts::FRAC_1_SQRT_2));
                        _mm256_mul_ps(hx, erfc8(t))
                    };
                    _mm256_storeu_ps(op.add(i), v);
                },
                { crate::reference::activations::gelu_f32(&input[i..n], &mut out[i..n], approximate) }
            )
        }
    }

    pub(super) fn f32_softmax_avx2_fma(t: Avx2Fma, input: &[f32], out: &mut [f32], depth: usize, beta: f32) {
        assert!(depth > 0 && input.len() == out.len() && out.len().is_multiple_of(depth));
        let _ = t;
        for (x, y) in input.chunks_exact(depth).zip(out.chunks_exact_mut(depth)) {
            // SAFETY: the token proves AVX2 + FMA; `x` and `y` are one row.
            unsafe { softmax_row(x, y, beta) }
        }
    }

    /// # Safety
    /// AVX2 + FMA available; `x` and `y` of the same length.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn softmax_row(x: &[f32], y: &mut [f32], beta: f32) {
        let n = y.len();
        let (xp, yp) = (x.as_ptr(), y.as_mut_ptr());
        // SAFETY: every access is below `n`, within both slices.
        unsafe {
            // The row's max (NaN-free rows as the reference's `m < x`; a
            // NaN spreads to every output either way).
            let mut m8 = _mm256_set1_ps(f32::MIN);
            let mut i = 0;
            while i + 8 <= n {
                m8 = _mm256_max_ps(_mm256_loadu_ps(xp.add(i)), m8);
                i += 8;
            }
            let lanes: [f32; 8] = std::mem::transmute(m8);
            let mut max = lanes.iter().fold(f32::MIN, |m, &v| if m < v { v } else { m });
            for &v in &x[i..] {
                if max < v {
                    max = v;
                }
            }
            let (vmax, vbeta) = (_mm256_set1_ps(max), _mm256_set1_ps(beta));
            let mut s8 = _mm256_setzero_ps();
            let mut i = 0;
            while i + 8 <= n {
                let e = exp8(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xp.add(i)), vmax), vbeta));
                _mm256_storeu_ps(yp.add(i), e);
                s8 = _mm256_add_ps(s8, e);
                i += 8;
            }
            let lanes: [f32; 8] = std::mem::transmute(s8);
            let mut sum: f32 = lanes.iter().sum();
            for k in i..n {
                let e = ((x[k] - max) * beta).exp();
                y[k] = e;
                sum += e;
            }
            let vsum = _mm256_set1_ps(sum);
            let mut i = 0;
            while i + 8 <= n {
                _mm256_storeu_ps(yp.add(i), _mm256_div_ps(_mm256_loadu_ps(yp.add(i)), vsum));
                i += 8;
            }
            for v in &mut y[i..] {
                *v /= sum;
            }
        }
    }

    pub(super) fn f32_vleaky_avx2(t: Avx2Fma, input: &[f32], out: &mut [f32], alpha: f32) {
        assert_eq!(input.len(), out.len());
        let _ = t;
        // SAFETY: the token proves AVX2; lengths are equal (checked above).
        unsafe { vleaky(input, out, alpha) }
    }

    /// # Safety
    /// AVX2 available; `input` at least as long as `out`.
    #[target_feature(enable = "avx2")]
    unsafe fn vleaky(input: &[f32], out: &mut [f32], alpha: f32) {
        let n = out.len();
        let (a, zero) = (_mm256_set1_ps(alpha), _mm256_setzero_ps());
        let (ip, op) = (input.as_ptr(), out.as_mut_ptr());
        // SAFETY: every access is below `n`, within both slices.
        unsafe {
            blocks!(
                n,
                i,
                {
                    let x = _mm256_loadu_ps(ip.add(i));
                    // `x > 0` is false for NaN and zeros: `alpha * x`, as the
                    // reference.
                    let keep = _mm256_cmp_ps::<_CMP_GT_OQ>(x, zero);
                    _mm256_storeu_ps(op.add(i), _mm256_blendv_ps(_mm256_mul_ps(x, a), x, keep));
                },
                { crate::reference::activations::leaky_relu_f32(&input[i..n], &mut out[i..n], alpha) }
            )
        }
    }

    pub(super) fn f32_vclamp_avx2(t: Avx2Fma, input: &[f32], out: &mut [f32], clamp: ClampF32) {
        assert_eq!(input.len(), out.len());
        let _ = t;
        // SAFETY: the token proves AVX2; lengths are equal (checked above).
        unsafe { vclamp(input, out, clamp) }
    }

    /// # Safety
    /// AVX2 available; `input` at least as long as `out`.
    #[target_feature(enable = "avx2")]
    unsafe fn vclamp(input: &[f32], out: &mut [f32], clamp: ClampF32) {
        let n = out.len();
        let (lo, hi) = (_mm256_set1_ps(clamp.min), _mm256_set1_ps(clamp.max));
        let (ip, op) = (input.as_ptr(), out.as_mut_ptr());
        // SAFETY: every access is below `n`, within both slices.
        unsafe {
            blocks!(
                n,
                i,
                {
                    _mm256_storeu_ps(op.add(i), clamp8(_mm256_loadu_ps(ip.add(i)), lo, hi));
                },
                {
                    f32_vclamp_scalar(&input[i..n], &mut out[i..n], clamp);
                }
            )
        }
    }

    pub(super) fn f32_vprelu_avx2(t: Avx2Fma, input: &[f32], alpha: &[f32], out: &mut [f32]) {
        assert!(input.len() == out.len() && !alpha.is_empty() && out.len().is_multiple_of(alpha.len()));
        let _ = t;
        // SAFETY: the token proves AVX2; `input` and `out` are whole rows
        // of `alpha.len()` values (checked above).
        unsafe { vprelu(input, alpha, out) }
    }

    /// # Safety
    /// AVX2 available; `input` and `out` the same whole number of rows of
    /// `alpha.len()` values.
    #[target_feature(enable = "avx2")]
    unsafe fn vprelu(input: &[f32], alpha: &[f32], out: &mut [f32]) {
        let p = alpha.len();
        let zero = _mm256_setzero_ps();
        let ap = alpha.as_ptr();
        for (orow, xrow) in out.chunks_exact_mut(p).zip(input.chunks_exact(p)) {
            let (ip, op) = (xrow.as_ptr(), orow.as_mut_ptr());
            // SAFETY: every access is below `p`, within the row and alpha.
            unsafe {
                blocks!(
                    p,
                    i,
                    {
                        let x = _mm256_loadu_ps(ip.add(i));
                        let ax = _mm256_mul_ps(x, _mm256_loadu_ps(ap.add(i)));
                        // `x >= 0` is false for NaN, which takes `x * a` as
                        // the reference does.
                        let keep = _mm256_cmp_ps::<_CMP_GE_OQ>(x, zero);
                        _mm256_storeu_ps(op.add(i), _mm256_blendv_ps(ax, x, keep));
                    },
                    {
                        f32_vprelu_scalar(&xrow[i..p], &alpha[i..p], &mut orow[i..p]);
                    }
                )
            }
        }
    }

    pub(super) fn f32_vhswish_avx2(t: Avx2Fma, input: &[f32], out: &mut [f32]) {
        assert_eq!(input.len(), out.len());
        let _ = t;
        // SAFETY: the token proves AVX2; lengths are equal (checked above).
        unsafe { vhswish(input, out) }
    }

    /// # Safety
    /// AVX2 available; `input` at least as long as `out`.
    #[target_feature(enable = "avx2")]
    unsafe fn vhswish(input: &[f32], out: &mut [f32]) {
        let n = out.len();
        let (three, six, zero) = (_mm256_set1_ps(3.0), _mm256_set1_ps(6.0), _mm256_setzero_ps());
        let (ip, op) = (input.as_ptr(), out.as_mut_ptr());
        // SAFETY: every access is below `n`, within both slices.
        unsafe {
            blocks!(
                n,
                i,
                {
                    let x = _mm256_loadu_ps(ip.add(i));
                    // Reference: r = x + 3; r = 0 < r ? r : 0; r = r < 6 ? r : 6.
                    // max(r, 0) gives 0 for NaN like the first select; min(r, 6)
                    // is exactly the second.
                    let r = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(x, three), zero), six);
                    _mm256_storeu_ps(op.add(i), _mm256_div_ps(_mm256_mul_ps(x, r), six));
                },
                {
                    f32_vhswish_scalar(&input[i..n], &mut out[i..n]);
                }
            )
        }
    }

    pub(super) fn f32_vsigmoid_avx2_fma(t: Avx2Fma, input: &[f32], out: &mut [f32]) {
        assert_eq!(input.len(), out.len());
        let _ = t;
        // SAFETY: the token proves AVX2 + FMA; lengths are equal.
        unsafe { vsigmoid(input, out) }
    }

    /// # Safety
    /// AVX2 + FMA available; `input` at least as long as `out`.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn vsigmoid(input: &[f32], out: &mut [f32]) {
        let n = out.len();
        let (ip, op) = (input.as_ptr(), out.as_mut_ptr());
        let mut i = 0;
        // SAFETY: every access is below `n`, within both slices.
        unsafe {
            // Four independent vectors a step: one is a ~70-cycle chain of
            // dependent operations (the polynomial, the divide), and one
            // at a time kept too few in flight (2.6 cycles a value).
            while i + 32 <= n {
                let v = sigmoid8x4(x4!(k => _mm256_loadu_ps(ip.add(i + 8 * k))));
                _mm256_storeu_ps(op.add(i), v[0]);
                _mm256_storeu_ps(op.add(i + 8), v[1]);
                _mm256_storeu_ps(op.add(i + 16), v[2]);
                _mm256_storeu_ps(op.add(i + 24), v[3]);
                i += 32;
            }
            while i + 8 <= n {
                let v = sigmoid8x4([_mm256_loadu_ps(ip.add(i)); 4]);
                _mm256_storeu_ps(op.add(i), v[0]);
                i += 8;
            }
        }
        f32_vsigmoid_scalar(&input[i..n], &mut out[i..n]);
    }

    /// The sigmoid of four vectors, each step on all four before the next.
    #[inline(always)]
    fn sigmoid8x4(x: [__m256; 4]) -> [__m256; 4] {
        // SAFETY: only inlined into `avx2,fma` functions; register-only ops.
        unsafe {
            let one = _mm256_set1_ps(1.0);
            let (lower, upper) = (_mm256_set1_ps(SIGMOID_LOWER), _mm256_set1_ps(SIGMOID_UPPER));
            let is_low = x4!(k => _mm256_cmp_ps::<_CMP_LT_OQ>(x[k], lower));
            let is_high = x4!(k => _mm256_cmp_ps::<_CMP_GT_OQ>(x[k], upper));
            // e^x below -9, e^-x otherwise (NaN stays NaN).
            let arg = x4!(k => _mm256_blendv_ps(_mm256_sub_ps(_mm256_setzero_ps(), x[k]), x[k], is_low[k]));
            let e = exp8x4(arg);
            let mid = x4!(k => _mm256_div_ps(one, _mm256_add_ps(one, e[k])));
            x4!(k => _mm256_blendv_ps(_mm256_blendv_ps(mid[k], e[k], is_low[k]), one, is_high[k]))
        }
    }

    /// `e^x` on four vectors, step by step, as `exp_scalar` (with FMAs).
    #[inline(always)]
    fn exp8x4(x: [__m256; 4]) -> [__m256; 4] {
        // SAFETY: only inlined into `avx2,fma` functions; register-only ops.
        unsafe {
            // max(min, x) keeps a NaN x.
            let x = x4!(k => _mm256_max_ps(_mm256_set1_ps(EXP_MIN_ARG), x[k]));
            let magic = _mm256_set1_ps(ROUND_MAGIC);
            let t = x4!(k => _mm256_fmadd_ps(x[k], _mm256_set1_ps(LOG2E), magic));
            let n = x4!(k => _mm256_sub_epi32(_mm256_castps_si256(t[k]), _mm256_castps_si256(magic)));
            let nf = x4!(k => _mm256_sub_ps(t[k], magic));
            let r = x4!(k => _mm256_fnmadd_ps(nf[k], _mm256_set1_ps(LN2_HI), x[k]));
            let r = x4!(k => _mm256_fnmadd_ps(nf[k], _mm256_set1_ps(LN2_LO), r[k]));
            let c = EXP_P.map(|c| _mm256_set1_ps(c));
            let y = x4!(k => _mm256_fmadd_ps(c[0], r[k], c[1]));
            let y = x4!(k => _mm256_fmadd_ps(y[k], r[k], c[2]));
            let y = x4!(k => _mm256_fmadd_ps(y[k], r[k], c[3]));
            let y = x4!(k => _mm256_fmadd_ps(y[k], r[k], c[4]));
            let y = x4!(k => _mm256_fmadd_ps(y[k], r[k], c[5]));
            let y =
                x4!(k => _mm256_add_ps(_mm256_fmadd_ps(y[k], _mm256_mul_ps(r[k], r[k]), r[k]), _mm256_set1_ps(1.0)));
            // 2^n in two factors so n down to -150 reaches the denormals.
            let bias = _mm256_set1_epi32(127);
            let n1 = x4!(k => _mm256_srai_epi32::<1>(n[k]));
            let p1 = x4!(k => _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(n1[k], bias))));
            let p2 = x4!(k => _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(_mm256_sub_epi32(n[k], n1[k]), bias))));
            x4!(k => _mm256_mul_ps(_mm256_mul_ps(y[k], p1[k]), p2[k]))
        }
    }
}

/// The exp-based kernels (LOGISTIC, TANH, GELU, SOFTMAX) sixteen lanes
/// wide: the AVX2 versions' steps on `__m512` with a shorter exp
/// polynomial (GELU's erfc keeps the longer one), the sigmoid from
/// `e^-|x|` alone, ragged ends through masked loads and stores instead of
/// scalar code.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx512 {
    use super::avx2::{ERFC_P, TANH_SMALL, TANH_TAYLOR};
    use super::*;
    use std::arch::x86_64::*;

    /// Lanes `0 .. n - i` of a 16-lane block starting at `i` (all 16 when
    /// the block is whole).
    #[inline(always)]
    fn tail_mask(i: usize, n: usize) -> __mmask16 {
        let left = n - i;
        if left >= 16 {
            0xffff
        } else {
            ((1u32 << left) - 1) as __mmask16
        }
    }

    /// `e^r ≈ 1 + r (c1 + r (c2 + r (c3 + r (c4 + r c5))))` on |r| <= ln2 / 2:
    /// relative error 1.0e-7 in exact arithmetic, 1.6e-7 evaluated in f32
    /// with FMAs (`tools/fit_exp_poly.py` fits it). Three operations fewer
    /// than the Cephes form the scalar and AVX2 code share, for a last-bit
    /// difference.
    const EXP_P5: [f32; 5] = [0.999_999_9, 0.499_991_5, 0.166_671_81, 0.041_897_945, 0.008_317_876];

    /// `e^x` for `x <= 88` (NaN in NaN out; results below `e^-87` in the
    /// denormals, down to zero): the AVX2 module's range reduction, the
    /// power of two applied by `scalef` in one rounding. `CEPHES` takes
    /// the AVX2 module's longer polynomial, which GELU's erfc needs: its
    /// tail multiplies the error of `e^(-z^2 + p)` up to 2e-6 relative
    /// with [`EXP_P5`].
    #[inline(always)]
    fn exp16_with<const CEPHES: bool>(x: __m512) -> __m512 {
        // SAFETY: only inlined into `avx512f,avx512dq` functions; register-only ops.
        unsafe {
            // max(min, x) keeps a NaN x.
            let x = _mm512_max_ps(_mm512_set1_ps(EXP_MIN_ARG), x);
            let magic = _mm512_set1_ps(ROUND_MAGIC);
            let t = _mm512_fmadd_ps(x, _mm512_set1_ps(LOG2E), magic);
            let nf = _mm512_sub_ps(t, magic);
            let r = _mm512_fnmadd_ps(nf, _mm512_set1_ps(LN2_HI), x);
            let r = _mm512_fnmadd_ps(nf, _mm512_set1_ps(LN2_LO), r);
            let one = _mm512_set1_ps(1.0);
            let y = if CEPHES {
                let c = EXP_P.map(|c| _mm512_set1_ps(c));
                let mut y = _mm512_fmadd_ps(c[0], r, c[1]);
                y = _mm512_fmadd_ps(y, r, c[2]);
                y = _mm512_fmadd_ps(y, r, c[3]);
                y = _mm512_fmadd_ps(y, r, c[4]);
                y = _mm512_fmadd_ps(y, r, c[5]);
                _mm512_add_ps(_mm512_fmadd_ps(y, _mm512_mul_ps(r, r), r), one)
            } else {
                let c = EXP_P5.map(|c| _mm512_set1_ps(c));
                let mut p = _mm512_fmadd_ps(c[4], r, c[3]);
                p = _mm512_fmadd_ps(p, r, c[2]);
                p = _mm512_fmadd_ps(p, r, c[1]);
                p = _mm512_fmadd_ps(p, r, c[0]);
                _mm512_fmadd_ps(p, r, one)
            };
            _mm512_scalef_ps(y, nf)
        }
    }

    /// `e^x` with [`EXP_P5`] (see [`exp16_with`]).
    #[inline(always)]
    fn exp16(x: __m512) -> __m512 {
        exp16_with::<false>(x)
    }

    /// The reference's sigmoid from `e = e^-|x|` alone: `e / (1 + e)` for
    /// negative x (`e` itself below `SIGMOID_LOWER`, as the reference
    /// returns `e^x` there), `1 - e / (1 + e)` for positive x (above
    /// `SIGMOID_UPPER`, where the reference returns 1.0, that is 1.0 or
    /// the float below it up to x = 17.33: one ulp). One exp and
    /// a divide: on Zen 5 a divide costs less than `rcp14` and a Newton
    /// step (logistic 0.075 -> 0.052 ms on [1, 56, 56, 96] with the
    /// shorter exp; tanh's divide took it 0.055 -> 0.047).
    #[inline(always)]
    fn sigmoid16(x: __m512) -> __m512 {
        // SAFETY: only inlined into `avx512f,avx512dq` functions; register-only ops.
        unsafe {
            let one = _mm512_set1_ps(1.0);
            // -|x| (NaN stays NaN and stays so throughout).
            let e = exp16(_mm512_or_ps(x, _mm512_set1_ps(-0.0)));
            let f = _mm512_div_ps(e, _mm512_add_ps(one, e));
            let f = _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, _mm512_set1_ps(SIGMOID_LOWER)), f, e);
            _mm512_mask_sub_ps(f, _mm512_cmp_ps_mask::<_CMP_GT_OQ>(x, _mm512_setzero_ps()), one, f)
        }
    }

    /// As `tanh8`.
    #[inline(always)]
    fn tanh16(x: __m512) -> __m512 {
        // SAFETY: only inlined into `avx512f,avx512dq` functions; register-only ops.
        unsafe {
            let sign = _mm512_set1_ps(-0.0);
            let a = _mm512_andnot_ps(sign, x);
            let one = _mm512_set1_ps(1.0);
            let e = exp16(_mm512_mul_ps(a, _mm512_set1_ps(-2.0)));
            let big = _mm512_div_ps(_mm512_sub_ps(one, e), _mm512_add_ps(one, e));
            let big = _mm512_or_ps(big, _mm512_and_ps(x, sign));
            let x2 = _mm512_mul_ps(x, x);
            let c = TANH_TAYLOR.map(|c| _mm512_set1_ps(c));
            let mut p = c[4];
            p = _mm512_fmadd_ps(p, x2, c[3]);
            p = _mm512_fmadd_ps(p, x2, c[2]);
            p = _mm512_fmadd_ps(p, x2, c[1]);
            p = _mm512_fmadd_ps(p, x2, c[0]);
            let small = _mm512_fmadd_ps(_mm512_mul_ps(p, x2), x, x);
            // NaN compares false and keeps `big` (NaN).
            _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, _mm512_set1_ps(TANH_SMALL)), big, small)
        }
    }

    /// As `erfc8`.
    #[inline(always)]
    fn erfc16(x: __m512) -> __m512 {
        // SAFETY: only inlined into `avx512f,avx512dq` functions; register-only ops.
        unsafe {
            let one = _mm512_set1_ps(1.0);
            let z = _mm512_andnot_ps(_mm512_set1_ps(-0.0), x);
            let t = _mm512_div_ps(one, _mm512_fmadd_ps(z, _mm512_set1_ps(0.5), one));
            let c = ERFC_P.map(|c| _mm512_set1_ps(c));
            let mut p = c[9];
            for k in (0..9).rev() {
                p = _mm512_fmadd_ps(p, t, c[k]);
            }
            let r = _mm512_mul_ps(t, exp16_with::<true>(_mm512_fnmadd_ps(z, z, p)));
            // erfc(-z) = 2 - erfc(z).
            let neg = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, _mm512_setzero_ps());
            _mm512_mask_blend_ps(neg, r, _mm512_sub_ps(_mm512_set1_ps(2.0), r))
        }
    }

    /// `out[i] = f(input[i])` sixteen at a time, two blocks a step (two
    /// independent dependency chains in flight), the end masked.
    ///
    /// # Safety
    /// AVX-512 F/DQ available; `input` at least as long as `out`.
    #[inline(always)]
    unsafe fn map16(input: &[f32], out: &mut [f32], f: impl Fn(__m512) -> __m512) {
        let n = out.len();
        let (ip, op) = (input.as_ptr(), out.as_mut_ptr());
        let mut i = 0;
        // SAFETY: whole blocks below `n`; the last one masked to `n`.
        unsafe {
            while i + 32 <= n {
                let (a, b) = (f(_mm512_loadu_ps(ip.add(i))), f(_mm512_loadu_ps(ip.add(i + 16))));
                _mm512_storeu_ps(op.add(i), a);
                _mm512_storeu_ps(op.add(i + 16), b);
                i += 32;
            }
            while i < n {
                let k = tail_mask(i, n);
                _mm512_mask_storeu_ps(op.add(i), k, f(_mm512_maskz_loadu_ps(k, ip.add(i))));
                i += 16;
            }
        }
    }

    pub(super) fn f32_vsigmoid_avx512(t: Avx512, input: &[f32], out: &mut [f32]) {
        assert_eq!(input.len(), out.len());
        let _ = t;
        // SAFETY: the token proves AVX-512 F/DQ; lengths are equal.
        unsafe { vsigmoid(input, out) }
    }

    /// # Safety
    /// AVX-512 F/DQ available; `input` at least as long as `out`.
    #[target_feature(enable = "avx512f,avx512dq,fma")]
    unsafe fn vsigmoid(input: &[f32], out: &mut [f32]) {
        // A closure, not the fn item: passed as is, the call was not
        // inlined and every vector went through memory (30x slower).
        // SAFETY: the caller's guarantee.
        #[allow(clippy::redundant_closure)]
        unsafe {
            map16(input, out, |x| sigmoid16(x))
        }
    }

    pub(super) fn f32_vtanh_avx512(t: Avx512, input: &[f32], out: &mut [f32]) {
        assert_eq!(input.len(), out.len());
        let _ = t;
        // SAFETY: the token proves AVX-512 F/DQ; lengths are equal.
        unsafe { vtanh(input, out) }
    }

    /// # Safety
    /// AVX-512 F/DQ available; `input` at least as long as `out`.
    #[target_feature(enable = "avx512f,avx512dq,fma")]
    unsafe fn vtanh(input: &[f32], out: &mut [f32]) {
        // A closure: see `vsigmoid`.
        // SAFETY: the caller's guarantee.
        #[allow(clippy::redundant_closure)]
        unsafe {
            map16(input, out, |x| tanh16(x))
        }
    }

    pub(super) fn f32_vgelu_avx512(t: Avx512, input: &[f32], out: &mut [f32], approximate: bool) {
        assert_eq!(input.len(), out.len());
        let _ = t;
        // SAFETY: the token proves AVX-512 F/DQ; lengths are equal.
        unsafe { vgelu(input, out, approximate) }
    }

    /// # Safety
    /// AVX-512 F/DQ available; `input` at least as long as `out`.
    #[target_feature(enable = "avx512f,avx512dq,fma")]
    unsafe fn vgelu(input: &[f32], out: &mut [f32], approximate: bool) {
        let half = _mm512_set1_ps(0.5);
        // sqrt(2 / pi), as the reference rounds it.
        let k = _mm512_set1_ps((std::f64::consts::FRAC_2_SQRT_PI * std::f64::consts::FRAC_1_SQRT_2) as f32);
        // SAFETY: the caller's guarantee.
        unsafe {
            if approximate {
                map16(input, out, |x| {
                    let x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
                    let inner = _mm512_mul_ps(k, _mm512_fmadd_ps(_mm512_set1_ps(0.044715), x3, x));
                    _mm512_mul_ps(_mm512_mul_ps(half, x), _mm512_add_ps(_mm512_set1_ps(1.0), tanh16(inner)))
                })
            } else {
                map16(input, out, |x| {
                    let t = _mm512_mul_ps(x, _mm512_set1_ps(-std::f32::consts::FRAC_1_SQRT_2));
                    _mm512_mul_ps(_mm512_mul_ps(half, x), erfc16(t))
                })
            }
        }
    }

    pub(super) fn f32_softmax_avx512(t: Avx512, input: &[f32], out: &mut [f32], depth: usize, beta: f32) {
        assert!(depth > 0 && input.len() == out.len() && out.len().is_multiple_of(depth));
        let _ = t;
        for (x, y) in input.chunks_exact(depth).zip(out.chunks_exact_mut(depth)) {
            // SAFETY: the token proves AVX-512 F/DQ; `x` and `y` are one row.
            unsafe { softmax_row(x, y, beta) }
        }
    }

    /// # Safety
    /// AVX-512 F/DQ available; `x` and `y` of the same length.
    #[target_feature(enable = "avx512f,avx512dq,fma")]
    unsafe fn softmax_row(x: &[f32], y: &mut [f32], beta: f32) {
        let n = y.len();
        let (xp, yp) = (x.as_ptr(), y.as_mut_ptr());
        // SAFETY: every block is masked to `n`, within both slices.
        unsafe {
            let lowest = _mm512_set1_ps(f32::MIN);
            let mut m = lowest;
            let mut i = 0;
            while i < n {
                m = _mm512_max_ps(_mm512_mask_loadu_ps(lowest, tail_mask(i, n), xp.add(i)), m);
                i += 16;
            }
            let lanes: [f32; 16] = std::mem::transmute(m);
            let max = lanes.iter().fold(f32::MIN, |m, &v| if m < v { v } else { m });
            let (vmax, vbeta) = (_mm512_set1_ps(max), _mm512_set1_ps(beta));
            let mut s = _mm512_setzero_ps();
            let mut i = 0;
            while i < n {
                let k = tail_mask(i, n);
                let e = exp16(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, xp.add(i)), vmax), vbeta));
                _mm512_mask_storeu_ps(yp.add(i), k, e);
                s = _mm512_mask_add_ps(s, k, s, e);
                i += 16;
            }
            let lanes: [f32; 16] = std::mem::transmute(s);
            // Times the reciprocal, not a divide per value (one more
            // rounding).
            let inv = _mm512_set1_ps(1.0 / lanes.iter().sum::<f32>());
            let mut i = 0;
            while i < n {
                let k = tail_mask(i, n);
                _mm512_mask_storeu_ps(yp.add(i), k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, yp.add(i)), inv));
                i += 16;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimized::isa::available_levels;
    use crate::optimized::testutil::{gflops, Rng};
    use crate::reference::activations::{hard_swish_scalar, logistic_scalar};

    fn special() -> Vec<f32> {
        vec![
            0.0,
            -0.0,
            1e-30,
            -1e-30,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            -3.0,
            3.0,
            -9.0,
            -9.000001,
            16.619047,
            16.61905,
            -87.0,
            -88.0,
            -100.0,
            -103.5,
            -104.5,
            -200.0,
            88.0,
            1e30,
            -1e30,
        ]
    }

    fn inputs(rng: &mut Rng) -> Vec<f32> {
        let mut v = special();
        v.extend((0..2000).map(|_| rng.f32() * 30.0));
        v.extend((0..500).map(|_| rng.f32() * 150.0));
        v.extend((0..37).map(|_| rng.f32() * 6.0));
        v
    }

    fn same(a: f32, b: f32) -> bool {
        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
    }

    #[test]
    fn add_mul_bit_exact() {
        let mut rng = Rng::new(0xadd);
        let a = inputs(&mut rng);
        let mut b = inputs(&mut rng);
        b.reverse();
        for &isa in &available_levels() {
            for clamp in [ClampF32::NONE, ClampF32::RELU6, ClampF32::RELU_N1_TO_1] {
                for n in [0, 1, 7, 8, 9, a.len()] {
                    let mut got = vec![0.0; n];
                    add_f32(isa, &a, &b, &mut got, clamp);
                    for i in 0..n {
                        assert!(same(got[i], clamp.apply(a[i] + b[i])), "{isa:?} add [{i}]");
                    }
                    mul_f32(isa, &a, &b, &mut got, clamp);
                    for i in 0..n {
                        assert!(same(got[i], clamp.apply(a[i] * b[i])), "{isa:?} mul [{i}]");
                    }
                }
            }
        }
    }

    #[test]
    fn broadcast_rows_bit_exact() {
        let mut rng = Rng::new(0xb0c);
        let x = inputs(&mut rng);
        let mut r_all = inputs(&mut rng);
        r_all.reverse();
        for &isa in &available_levels() {
            for op in ALL_OPS {
                for first in [false, true] {
                    for p in [1, 7, 8, 24, 37] {
                        let r = &r_all[..p];
                        for clamp in [ClampF32::NONE, ClampF32::RELU6] {
                            let n = x.len() / p * p;
                            let mut got = vec![7.0; n];
                            broadcast_rows_f32(isa, op, &x, r, first, &mut got, clamp);
                            for i in 0..n {
                                let (a, b) = if first { (r[i % p], x[i]) } else { (x[i], r[i % p]) };
                                let want = clamp.apply(op.apply(a, b));
                                assert!(same(got[i], want), "{isa:?} {op:?} first={first} p={p} [{i}]: {a} {b}");
                            }
                        }
                    }
                }
            }
        }
    }

    const ALL_OPS: [ArithOp; 7] = [
        ArithOp::Add,
        ArithOp::Sub,
        ArithOp::Mul,
        ArithOp::Div,
        ArithOp::Maximum,
        ArithOp::Minimum,
        ArithOp::SquaredDifference,
    ];

    /// The general broadcast against the reference's own functions, bit
    /// for bit, on random shapes (operands of the output's rank or less,
    /// random dimensions held at 1) with NaNs and infinities among the
    /// values, at every level.
    #[test]
    fn general_broadcast_bit_exact() {
        use crate::reference::elementwise as r;
        let mut rng = Rng::new(0xbca5);
        let values = inputs(&mut rng);
        for case in 0..300 {
            let rank = rng.range(1, 6);
            let out_shape: Vec<usize> = (0..rank).map(|_| rng.pick(&[1, 2, 3, 8, 9, 17])).collect();
            let operand = |rng: &mut Rng| -> Vec<usize> {
                let skip = rng.range(0, rank);
                out_shape[skip..].iter().map(|&d| if rng.range(0, 3) == 0 { 1 } else { d }).collect()
            };
            let (a_shape, b_shape) = (operand(&mut rng), operand(&mut rng));
            let take = |shape: &[usize], rng: &mut Rng| -> Vec<f32> {
                (0..shape.iter().product::<usize>()).map(|_| values[rng.range(0, values.len())]).collect()
            };
            let (a, b) = (take(&a_shape, &mut rng), take(&b_shape, &mut rng));
            let n: usize = out_shape.iter().product();
            let clamp = if case % 2 == 0 { ClampF32::NONE } else { ClampF32::RELU6 };
            for op in ALL_OPS {
                let mut want = vec![0.0; n];
                let c = if matches!(op, ArithOp::Add | ArithOp::Sub | ArithOp::Mul | ArithOp::Div) {
                    clamp
                } else {
                    ClampF32::NONE
                };
                let (aa, bb, o) = ((&a[..], &a_shape[..]), (&b[..], &b_shape[..]), &out_shape[..]);
                match op {
                    ArithOp::Add => r::add_f32(aa.0, aa.1, bb.0, bb.1, &mut want, o, c),
                    ArithOp::Sub => r::sub_f32(aa.0, aa.1, bb.0, bb.1, &mut want, o, c),
                    ArithOp::Mul => r::mul_f32(aa.0, aa.1, bb.0, bb.1, &mut want, o, c),
                    ArithOp::Div => r::div_f32(aa.0, aa.1, bb.0, bb.1, &mut want, o, c),
                    ArithOp::Maximum => r::maximum_f32(aa.0, aa.1, bb.0, bb.1, &mut want, o),
                    ArithOp::Minimum => r::minimum_f32(aa.0, aa.1, bb.0, bb.1, &mut want, o),
                    ArithOp::SquaredDifference => r::squared_difference_f32(aa.0, aa.1, bb.0, bb.1, &mut want, o),
                }
                for &isa in &available_levels() {
                    let mut got = vec![7.0; n];
                    broadcast_f32(isa, op, &a, &a_shape, &b, &b_shape, &mut got, &out_shape, c);
                    for i in 0..n {
                        assert!(same(got[i], want[i]), "{isa:?} {op:?} {a_shape:?} {b_shape:?} -> {out_shape:?} [{i}]");
                    }
                }
            }
        }
    }

    #[test]
    fn tanh_and_gelu_close_to_reference() {
        use crate::reference::activations::gelu_scalar;
        let mut rng = Rng::new(0x7a4);
        let mut x = inputs(&mut rng);
        x.extend((0..20000).map(|i| -40.0 + i as f32 * 0.004));
        x.extend((0..2000).map(|i| (i as f32 - 1000.0) * 1e-4));
        for &isa in &available_levels() {
            let mut got = vec![0.0; x.len()];
            tanh_f32(isa, &x, &mut got);
            for i in 0..x.len() {
                let want = x[i].tanh();
                if want.is_nan() {
                    assert!(got[i].is_nan(), "{isa:?} tanh(NaN)");
                    continue;
                }
                let err = (got[i] - want).abs();
                assert!(
                    got[i] == want || err <= 4e-7 * want.abs() + 1e-37,
                    "{isa:?} tanh({}) = {:e}, want {want:e}",
                    x[i],
                    got[i]
                );
            }
            for approximate in [false, true] {
                gelu_f32(isa, &x, &mut got, approximate);
                for i in 0..x.len() {
                    let want = gelu_scalar(x[i], approximate);
                    if want.is_nan() {
                        assert!(got[i].is_nan(), "{isa:?} gelu(NaN)");
                        continue;
                    }
                    // Relative, down to values the f32 tail still represents;
                    // the tanh form's `1 + tanh` cancels for negative x in the
                    // reference too (a tanh ulp there is ~1e-7 of |x|).
                    let err = (got[i] - want).abs();
                    let slack = if approximate { 2e-7 * x[i].abs() } else { 0.0 };
                    assert!(
                        got[i] == want || err <= 2e-6 * want.abs() + slack + 1e-30,
                        "{isa:?} gelu({}, approximate {approximate}) = {:e}, want {want:e}",
                        x[i],
                        got[i]
                    );
                }
            }
        }
    }

    #[test]
    fn softmax_close_to_reference() {
        let mut rng = Rng::new(0x50f);
        for &isa in &available_levels() {
            for depth in [1, 5, 8, 13, 1000, 1001] {
                for beta in [1.0f32, 0.5] {
                    let rows = 3;
                    let x: Vec<f32> = (0..rows * depth).map(|_| rng.f32() * 20.0).collect();
                    let mut want = vec![0.0; x.len()];
                    crate::reference::softmax::softmax_f32(&x, &mut want, rows, depth, beta);
                    let mut got = vec![0.0; x.len()];
                    softmax_f32(isa, &x, &mut got, depth, beta);
                    for i in 0..x.len() {
                        let err = (got[i] - want[i]).abs();
                        assert!(
                            err <= 1e-5 * want[i] + 1e-30, // the sums run in another order
                            "{isa:?} depth {depth} [{i}]: {} vs {}",
                            got[i],
                            want[i]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn leaky_relu_bit_exact() {
        let mut rng = Rng::new(0x1ea);
        let x = inputs(&mut rng);
        for &isa in &available_levels() {
            for alpha in [0.1f32, -0.3, 0.0, 2.0] {
                let mut want = vec![0.0; x.len()];
                crate::reference::activations::leaky_relu_f32(&x, &mut want, alpha);
                let mut got = vec![7.0; x.len()];
                leaky_relu_f32(isa, &x, &mut got, alpha);
                for i in 0..x.len() {
                    assert!(same(got[i], want[i]), "{isa:?} leaky({}, {alpha}) = {}", x[i], got[i]);
                }
            }
        }
    }

    #[test]
    fn clamp_bit_exact() {
        let mut rng = Rng::new(0xc1a);
        let x = inputs(&mut rng);
        let zero_one = ClampF32 { min: 0.0, max: 1.0 };
        for &isa in &available_levels() {
            for clamp in [ClampF32::RELU, ClampF32::RELU6, ClampF32::RELU_N1_TO_1, zero_one] {
                for n in [0, 1, 7, 8, 9, x.len()] {
                    let mut got = vec![7.0; n];
                    clamp_f32(isa, &x, &mut got, clamp);
                    for i in 0..n {
                        assert!(same(got[i], clamp.apply(x[i])), "{isa:?} {clamp:?} ({}) = {}", x[i], got[i]);
                    }
                }
            }
        }
    }

    #[test]
    fn prelu_bit_exact_for_every_period() {
        let mut rng = Rng::new(0x9e1);
        let x = inputs(&mut rng);
        let alpha_all: Vec<f32> = (0..70).map(|_| rng.f32() * 2.0).collect();
        for &isa in &available_levels() {
            // One alpha, a few channels (repeated to a wider row), and
            // rows with and without a vector tail.
            for p in [1, 3, 8, 13, 16, 31, 32, 33, 70] {
                let alpha = &alpha_all[..p];
                for rows in [0, 1, 2, 5, x.len() / p] {
                    let n = rows * p;
                    let mut got = vec![7.0; n];
                    prelu_f32(isa, &x, alpha, &mut got);
                    for i in 0..n {
                        let want = if x[i] >= 0.0 { x[i] } else { x[i] * alpha[i % p] };
                        assert!(same(got[i], want), "{isa:?} p={p} [{i}]: prelu({}) = {}", x[i], got[i]);
                    }
                }
            }
        }
    }

    #[test]
    fn hard_swish_bit_exact() {
        let mut rng = Rng::new(0x5a);
        let x = inputs(&mut rng);
        for &isa in &available_levels() {
            let mut got = vec![0.0; x.len()];
            hard_swish_f32(isa, &x, &mut got);
            for i in 0..x.len() {
                assert!(same(got[i], hard_swish_scalar(x[i])), "{isa:?} hswish({}) = {}", x[i], got[i]);
            }
        }
    }

    #[test]
    fn logistic_close_to_reference() {
        let mut rng = Rng::new(0x516);
        let mut x = inputs(&mut rng);
        // A dense sweep through every branch.
        x.extend((0..20000).map(|i| -120.0 + i as f32 * 0.007));
        for &isa in &available_levels() {
            let mut got = vec![0.0; x.len()];
            logistic_f32(isa, &x, &mut got);
            let mut worst = 0.0f32;
            for i in 0..x.len() {
                let want = logistic_scalar(x[i]);
                if want.is_nan() {
                    assert!(got[i].is_nan(), "{isa:?} logistic(NaN) = {}", got[i]);
                    continue;
                }
                // Relative in the normal range; denormals (below e^-87) are
                // compared absolutely.
                let err = (got[i] - want).abs();
                assert!(
                    err <= 1e-6 * want.abs() || err <= 4.0 * f32::MIN_POSITIVE * f32::EPSILON,
                    "{isa:?} logistic({}) = {:e}, reference {want:e}",
                    x[i],
                    got[i]
                );
                if want.abs() >= f32::MIN_POSITIVE {
                    worst = worst.max(err / want.abs());
                }
            }
            assert!(worst <= 1e-6, "{isa:?} worst relative {worst:e}");
        }
    }

    /// `cargo test --release -p ferrolite-kernels --lib optimized::elementwise -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn bench_elementwise() {
        let mut rng = Rng::new(2);
        let n = 112 * 112 * 64;
        let (a, b) = (rng.vec(n), rng.vec(n));
        let mut out = vec![0.0; n];
        let elems = n as f64;
        for &isa in &available_levels() {
            let g = gflops(elems, || add_f32(isa, &a, &b, &mut out, ClampF32::RELU6));
            println!("add      {:>9}: {g:6.2} Gelem/s", isa.name());
            let g = gflops(elems, || hard_swish_f32(isa, &a, &mut out));
            println!("hswish   {:>9}: {g:6.2} Gelem/s", isa.name());
            let g = gflops(elems, || logistic_f32(isa, &a, &mut out));
            println!("logistic {:>9}: {g:6.2} Gelem/s", isa.name());
        }
        let g = gflops(elems, || crate::reference::activations::logistic_f32(&a, &mut out));
        println!("logistic reference: {g:6.2} Gelem/s");
    }
}
