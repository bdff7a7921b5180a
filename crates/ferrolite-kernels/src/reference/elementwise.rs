//! Element-wise binary and unary ops, with numpy-style broadcasting.
//!
//! Binary ops take both operand shapes and the output shape; the output shape
//! must be [`broadcast_shape`] of the two (the runtime checks this). Ranks may
//! differ: shapes are aligned on their last dimension, missing leading
//! dimensions count as 1.
//!
//! Float semantics follow TFLite's reference kernels: the arithmetic is done
//! in `f32` in the obvious order and the fused activation (a [`ClampF32`]) is
//! applied to each result.

use crate::activation::ClampF32;

/// The shape two operands broadcast to, or `None` when they are incompatible.
///
/// Shapes are right-aligned; a dimension of 1 stretches to the other side's
/// size (including 0). Any other mismatch is incompatible.
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0usize; rank];
    for i in 0..rank {
        // i counts from the last dimension.
        let da = if i < a.len() { a[a.len() - 1 - i] } else { 1 };
        let db = if i < b.len() { b[b.len() - 1 - i] } else { 1 };
        let d = if da == db {
            da
        } else if da == 1 {
            db
        } else if db == 1 {
            da
        } else {
            return None;
        };
        out[rank - 1 - i] = d;
    }
    Some(out)
}

/// Element strides of `shape` when it is read as if it had `out_shape`:
/// one entry per output dimension, 0 where `shape` is broadcast (size 1 or
/// missing). `shape` must broadcast to `out_shape`.
pub fn broadcast_strides(shape: &[usize], out_shape: &[usize]) -> Vec<usize> {
    let rank = out_shape.len();
    let mut strides = vec![0usize; rank];
    let mut step = 1usize;
    for i in 0..shape.len().min(rank) {
        let dim = shape[shape.len() - 1 - i];
        let o = rank - 1 - i;
        strides[o] = if dim == 1 && out_shape[o] != 1 { 0 } else { step };
        step *= dim;
    }
    strides
}

/// Row-major walk over `out_shape`, calling `visit(out_index, a_index, b_index)`
/// where the operand offsets advance by `a_strides` / `b_strides` (0 on
/// broadcast dimensions). The innermost dimension is a tight loop.
fn walk2(out_shape: &[usize], a_strides: &[usize], b_strides: &[usize], mut visit: impl FnMut(usize, usize, usize)) {
    let rank = out_shape.len();
    let total: usize = out_shape.iter().product();
    if total == 0 {
        return;
    }
    if rank == 0 {
        visit(0, 0, 0);
        return;
    }
    let inner = out_shape[rank - 1];
    let (ia, ib) = (a_strides[rank - 1], b_strides[rank - 1]);
    let outer_rank = rank - 1;
    let mut counter = vec![0usize; outer_rank];
    let (mut a_off, mut b_off) = (0usize, 0usize);
    let mut o = 0usize;
    while o < total {
        for j in 0..inner {
            visit(o + j, a_off + j * ia, b_off + j * ib);
        }
        o += inner;
        // Odometer step over the outer dimensions.
        let mut d = outer_rank;
        while d > 0 {
            d -= 1;
            counter[d] += 1;
            a_off += a_strides[d];
            b_off += b_strides[d];
            if counter[d] < out_shape[d] {
                break;
            }
            a_off -= a_strides[d] * out_shape[d];
            b_off -= b_strides[d] * out_shape[d];
            counter[d] = 0;
        }
    }
}

/// Apply `f` element-wise over `a` and `b` broadcast to `out_shape`.
///
/// Fast paths: both operands already the output's size (no broadcasting),
/// and one side a single element. Otherwise a row-major index walk with
/// stride 0 on broadcast dimensions; any rank is supported.
// Inlined so that a caller compiled for a wider vector unit (the
// optimised float broadcast) vectorises the row loops with it.
#[inline(always)]
pub fn broadcast_binary<A: Copy, B: Copy, O>(
    a: &[A],
    a_shape: &[usize],
    b: &[B],
    b_shape: &[usize],
    out: &mut [O],
    out_shape: &[usize],
    f: impl Fn(A, B) -> O,
) {
    let n = out.len();
    if a.len() == n && b.len() == n {
        for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
            *o = f(x, y);
        }
        return;
    }
    if b.len() == 1 && a.len() == n {
        let y = b[0];
        for (o, &x) in out.iter_mut().zip(a) {
            *o = f(x, y);
        }
        return;
    }
    if a.len() == 1 && b.len() == n {
        let x = a[0];
        for (o, &y) in out.iter_mut().zip(b) {
            *o = f(x, y);
        }
        return;
    }
    let a_strides = broadcast_strides(a_shape, out_shape);
    let b_strides = broadcast_strides(b_shape, out_shape);
    let (dims, a_strides, b_strides) = coalesce(out_shape, &a_strides, &b_strides);
    let rank = dims.len();
    if rank == 0 {
        if let Some(o) = out.first_mut() {
            *o = f(a[0], b[0]);
        }
        return;
    }
    // Whole rows of the innermost (coalesced) dimension, where each
    // operand either advances with the output or stays on one value.
    // (Written out here rather than through `broadcast_rows` and a
    // closure: a closure LLVM leaves out of line loses the caller's target
    // features, and the AVX2 float broadcast ran 7x slower that way.)
    let inner = dims[rank - 1];
    if inner < 4 {
        walk2(&dims, &a_strides, &b_strides, |o, ia, ib| out[o] = f(a[ia], b[ib]));
        return;
    }
    let (sa, sb) = (a_strides[rank - 1], b_strides[rank - 1]);
    let mut odometer = Odometer::new(&dims[..rank - 1]);
    let rows = odometer.rows();
    let (mut ia, mut ib) = (0usize, 0usize);
    for (r, row) in out[..rows * inner].chunks_exact_mut(inner).enumerate() {
        match (sa, sb) {
            (1, 1) => {
                row.iter_mut().zip(&a[ia..ia + inner]).zip(&b[ib..ib + inner]).for_each(|((o, &x), &y)| *o = f(x, y))
            }
            (1, _) => {
                let y = b[ib];
                row.iter_mut().zip(&a[ia..ia + inner]).for_each(|(o, &x)| *o = f(x, y));
            }
            (_, 1) => {
                let x = a[ia];
                row.iter_mut().zip(&b[ib..ib + inner]).for_each(|(o, &y)| *o = f(x, y));
            }
            _ => {
                let (x, y) = (a[ia], b[ib]);
                row.iter_mut().for_each(|o| *o = f(x, y));
            }
        }
        if r + 1 < rows {
            odometer.step(&a_strides, &b_strides, &mut ia, &mut ib);
        }
    }
}

/// The outer dimensions' counters of a row-by-row broadcast walk.
struct Odometer<'a> {
    outer: &'a [usize],
    counter: Vec<usize>,
}

impl<'a> Odometer<'a> {
    fn new(outer: &'a [usize]) -> Odometer<'a> {
        Odometer { outer, counter: vec![0; outer.len()] }
    }

    fn rows(&self) -> usize {
        self.outer.iter().product()
    }

    /// To the next row: the operands' offsets move by their strides.
    #[inline(always)]
    fn step(&mut self, a_strides: &[usize], b_strides: &[usize], ia: &mut usize, ib: &mut usize) {
        let mut d = self.outer.len();
        while d > 0 {
            d -= 1;
            self.counter[d] += 1;
            *ia += a_strides[d];
            *ib += b_strides[d];
            if self.counter[d] < self.outer[d] {
                break;
            }
            *ia -= a_strides[d] * self.outer[d];
            *ib -= b_strides[d] * self.outer[d];
            self.counter[d] = 0;
        }
    }
}

/// One operand's part of a row of a broadcast: values advancing with the
/// output row, or one value the whole row reads.
#[derive(Clone, Copy, Debug)]
pub enum Operand<'a, T> {
    Run(&'a [T]),
    Held(T),
}

/// `a` and `b` broadcast to `out_shape` as rows of the coalesced innermost
/// dimension: `row(a_part, b_part, out_row)` for each, in order. For
/// kernels that work on whole rows (the quantised ADD/SUB's vector
/// kernels); [`broadcast_binary`] is this with an element function.
pub fn broadcast_rows<A: Copy, B: Copy, O>(
    a: &[A],
    a_shape: &[usize],
    b: &[B],
    b_shape: &[usize],
    out: &mut [O],
    out_shape: &[usize],
    mut row: impl FnMut(Operand<'_, A>, Operand<'_, B>, &mut [O]),
) {
    let a_strides = broadcast_strides(a_shape, out_shape);
    let b_strides = broadcast_strides(b_shape, out_shape);
    let (dims, a_strides, b_strides) = coalesce(out_shape, &a_strides, &b_strides);
    if out_shape.contains(&0) {
        // Nothing to visit (and rows of 0 values cannot be chunked).
        return;
    }
    let Some(&inner) = dims.last() else {
        if let Some(o) = out.first_mut() {
            row(Operand::Held(a[0]), Operand::Held(b[0]), std::slice::from_mut(o));
        }
        return;
    };
    let rank = dims.len();
    let (sa, sb) = (a_strides[rank - 1], b_strides[rank - 1]);
    let mut odometer = Odometer::new(&dims[..rank - 1]);
    let rows = odometer.rows();
    let (mut ia, mut ib) = (0usize, 0usize);
    for (r, out_row) in out[..rows * inner].chunks_exact_mut(inner).enumerate() {
        let x = if sa == 1 { Operand::Run(&a[ia..ia + inner]) } else { Operand::Held(a[ia]) };
        let y = if sb == 1 { Operand::Run(&b[ib..ib + inner]) } else { Operand::Held(b[ib]) };
        row(x, y, out_row);
        if r + 1 < rows {
            odometer.step(&a_strides, &b_strides, &mut ia, &mut ib);
        }
    }
}

/// `out_shape` with its size-1 dimensions dropped and neighbours merged
/// where both operands read them as one (each operand's outer stride is
/// its inner stride times the inner size: both contiguous, or both
/// broadcast). `[1, H, W, C]` against `[1, H, W, 1]` becomes `[H·W, C]`
/// with strides `[C, 1]` and `[1, 0]`: rows of `C` values against one.
fn coalesce(out_shape: &[usize], a_strides: &[usize], b_strides: &[usize]) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
    let (mut dims, mut sa, mut sb) = (Vec::new(), Vec::new(), Vec::new());
    for d in 0..out_shape.len() {
        let n = out_shape[d];
        if n == 1 {
            continue;
        }
        if let (Some(&last_a), Some(&last_b)) = (sa.last(), sb.last()) {
            if last_a == a_strides[d] * n && last_b == b_strides[d] * n {
                let k = dims.len() - 1;
                dims[k] *= n;
                sa[k] = a_strides[d];
                sb[k] = b_strides[d];
                continue;
            }
        }
        dims.push(n);
        sa.push(a_strides[d]);
        sb.push(b_strides[d]);
    }
    (dims, sa, sb)
}

/// Apply `f` to every element of `input`, writing `output` (same length).
pub fn unary<T: Copy, U>(input: &[T], output: &mut [U], f: impl Fn(T) -> U) {
    for (o, &x) in output.iter_mut().zip(input) {
        *o = f(x);
    }
}

/// [`unary`] for `f32`.
pub fn unary_f32(input: &[f32], output: &mut [f32], f: impl Fn(f32) -> f32) {
    unary(input, output, f)
}

macro_rules! binary_clamped {
    ($(#[$doc:meta])* $name:ident, |$x:ident, $y:ident| $body:expr) => {
        $(#[$doc])*
        #[allow(clippy::too_many_arguments)]
        pub fn $name(
            a: &[f32],
            a_shape: &[usize],
            b: &[f32],
            b_shape: &[usize],
            out: &mut [f32],
            out_shape: &[usize],
            clamp: ClampF32,
        ) {
            broadcast_binary(a, a_shape, b, b_shape, out, out_shape, |$x: f32, $y: f32| {
                clamp.apply($body)
            });
        }
    };
}

macro_rules! binary_plain {
    ($(#[$doc:meta])* $name:ident, |$x:ident, $y:ident| $body:expr) => {
        $(#[$doc])*
        pub fn $name(
            a: &[f32],
            a_shape: &[usize],
            b: &[f32],
            b_shape: &[usize],
            out: &mut [f32],
            out_shape: &[usize],
        ) {
            broadcast_binary(a, a_shape, b, b_shape, out, out_shape, |$x: f32, $y: f32| $body);
        }
    };
}

binary_clamped!(
    /// ADD: `clamp(a + b)`.
    add_f32, |x, y| x + y
);
binary_clamped!(
    /// SUB: `clamp(a - b)`.
    sub_f32, |x, y| x - y
);
binary_clamped!(
    /// MUL: `clamp(a * b)`.
    mul_f32, |x, y| x * y
);
binary_clamped!(
    /// DIV: `clamp(a / b)` (IEEE division: x/0 is ±inf or NaN).
    div_f32, |x, y| x / y
);

binary_plain!(
    /// SQUARED_DIFFERENCE: `(a - b)²`.
    squared_difference_f32, |x, y| { let d = x - y; d * d }
);
binary_plain!(
    /// MAXIMUM: `a > b ? a : b` (so a NaN in `a` yields `b`, as in TFLite).
    maximum_f32, |x, y| if x > y { x } else { y }
);
binary_plain!(
    /// MINIMUM: `a < b ? a : b` (so a NaN in `a` yields `b`, as in TFLite).
    minimum_f32, |x, y| if x < y { x } else { y }
);
binary_plain!(
    /// POW: `a.powf(b)` (C `pow` semantics).
    pow_f32, |x, y| x.powf(y)
);
binary_plain!(
    /// FLOOR_DIV: `floor(a / b)` with the division done in f64, as TFLite does.
    floor_div_f32, |x, y| floor_div_scalar(x, y)
);
binary_plain!(
    /// FLOOR_MOD: remainder with the sign of the divisor (Python `%`).
    floor_mod_f32, |x, y| floor_mod_scalar(x, y)
);

/// TFLite FLOOR_DIV on one pair: divide in double precision, floor, narrow.
#[inline]
pub fn floor_div_scalar(x: f32, y: f32) -> f32 {
    ((x as f64) / (y as f64)).floor() as f32
}

/// TFLite FLOOR_MOD on one pair: C `fmod`, then moved into the divisor's sign
/// when it is non-zero and the signs disagree.
#[inline]
pub fn floor_mod_scalar(x: f32, y: f32) -> f32 {
    let r = x % y; // Rust's float `%` is C fmod.
    if r != 0.0 && ((y < 0.0) != (r < 0.0)) {
        r + y
    } else {
        r
    }
}

/// TFLite ROUND on one value: round half to even, computed from the floor
/// (so -0.5 rounds to +0.0, as in TFLite).
#[inline]
pub fn round_half_even(x: f32) -> f32 {
    let fl = x.floor();
    let diff = x - fl;
    // diff == 0.5 only happens for |x| < 2^23, so the integer cast is exact.
    if diff < 0.5 || (diff == 0.5 && (fl as i64) % 2 == 0) {
        fl
    } else {
        fl + 1.0
    }
}

/// TFLite SIGN on one value: NaN stays NaN, ±0 gives 0, else ±1.
#[inline]
pub fn sign_scalar(x: f32) -> f32 {
    if x.is_nan() {
        x
    } else if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

macro_rules! unary_named {
    ($(#[$doc:meta])* $name:ident, |$x:ident| $body:expr) => {
        $(#[$doc])*
        pub fn $name(input: &[f32], output: &mut [f32]) {
            unary_f32(input, output, |$x: f32| $body);
        }
    };
}

unary_named!(
    /// EXP.
    exp_f32, |x| x.exp()
);
unary_named!(
    /// SQRT (NaN for negative inputs).
    sqrt_f32, |x| x.sqrt()
);
unary_named!(
    /// RSQRT: `1 / sqrt(x)`.
    rsqrt_f32, |x| 1.0 / x.sqrt()
);
unary_named!(
    /// ABS.
    abs_f32, |x| x.abs()
);
unary_named!(
    /// NEG.
    neg_f32, |x| -x
);
unary_named!(
    /// SQUARE: `x * x`.
    square_f32, |x| x * x
);
unary_named!(
    /// LOG (natural; -inf at 0, NaN below).
    log_f32, |x| x.ln()
);
unary_named!(
    /// SIN.
    sin_f32, |x| x.sin()
);
unary_named!(
    /// COS.
    cos_f32, |x| x.cos()
);
unary_named!(
    /// FLOOR.
    floor_f32, |x| x.floor()
);
unary_named!(
    /// CEIL.
    ceil_f32, |x| x.ceil()
);
unary_named!(
    /// ROUND: half to even, see [`round_half_even`].
    round_f32, |x| round_half_even(x)
);
unary_named!(
    /// SIGN, see [`sign_scalar`].
    sign_f32, |x| sign_scalar(x)
);

#[cfg(test)]
mod tests {
    use super::*;

    /// The row-wise walk over coalesced dimensions against the plain
    /// index walk, on random shapes with random broadcast dimensions.
    #[test]
    fn coalesced_rows_match_the_index_walk() {
        let mut seed = 0x5eedu64;
        let mut next = |n: usize| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as usize % n
        };
        for _ in 0..500 {
            let rank = 1 + next(5);
            let out_shape: Vec<usize> = (0..rank).map(|_| [1, 2, 3, 5, 8][next(5)]).collect();
            let operand = |next: &mut dyn FnMut(usize) -> usize| -> Vec<usize> {
                let drop = next(rank + 1).min(rank - 1);
                out_shape[drop..].iter().map(|&d| if next(3) == 0 { 1 } else { d }).collect()
            };
            let a_shape = operand(&mut next);
            let b_shape = operand(&mut next);
            let a: Vec<f32> = (0..a_shape.iter().product::<usize>()).map(|i| i as f32).collect();
            let b: Vec<f32> = (0..b_shape.iter().product::<usize>()).map(|i| (i * 1000) as f32).collect();
            let n: usize = out_shape.iter().product();
            let mut got = vec![f32::NAN; n];
            broadcast_binary(&a, &a_shape, &b, &b_shape, &mut got, &out_shape, |x, y| x + y);
            let mut want = vec![f32::NAN; n];
            let (sa, sb) = (broadcast_strides(&a_shape, &out_shape), broadcast_strides(&b_shape, &out_shape));
            walk2(&out_shape, &sa, &sb, |o, ia, ib| want[o] = a[ia] + b[ib]);
            assert_eq!(got, want, "a {a_shape:?} b {b_shape:?} out {out_shape:?}");
        }
    }

    #[test]
    fn broadcast_shape_rules() {
        assert_eq!(broadcast_shape(&[2, 1, 3], &[1, 4, 1]), Some(vec![2, 4, 3]));
        assert_eq!(broadcast_shape(&[5, 3], &[3]), Some(vec![5, 3]));
        assert_eq!(broadcast_shape(&[], &[2, 2]), Some(vec![2, 2]));
        assert_eq!(broadcast_shape(&[0, 3], &[1, 3]), Some(vec![0, 3]));
        assert_eq!(broadcast_shape(&[2, 3], &[3, 2]), None);
        assert_eq!(broadcast_shape(&[4], &[0]), None);
    }

    #[test]
    fn add_broadcasts_2x1x3_with_1x4x1() {
        // a[i,0,k] = 10*i + k, b[0,j,0] = 100*j; out[i,j,k] = a + b.
        let a: Vec<f32> = (0..2).flat_map(|i| (0..3).map(move |k| (10 * i + k) as f32)).collect();
        let b: Vec<f32> = (0..4).map(|j| (100 * j) as f32).collect();
        let mut out = vec![0.0; 24];
        add_f32(&a, &[2, 1, 3], &b, &[1, 4, 1], &mut out, &[2, 4, 3], ClampF32::NONE);
        let mut expect = Vec::new();
        for i in 0..2 {
            for j in 0..4 {
                for k in 0..3 {
                    expect.push((10 * i + k + 100 * j) as f32);
                }
            }
        }
        assert_eq!(out, expect);
    }

    #[test]
    fn broadcast_rank_mismatch_and_middle_dim() {
        // [2,3,2] - [3,1]: b[j,0] broadcast over i and k.
        let a: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let b = [1.0f32, 2.0, 3.0];
        let mut out = vec![0.0; 12];
        sub_f32(&a, &[2, 3, 2], &b, &[3, 1], &mut out, &[2, 3, 2], ClampF32::NONE);
        let expect: Vec<f32> = (0..12).map(|v| v as f32 - b[(v / 2) % 3]).collect();
        assert_eq!(out, expect);
    }

    #[test]
    fn scalar_broadcast_both_sides() {
        let a = [1.0f32, -2.0, 3.0, 4.0];
        let mut out = [0.0f32; 4];
        mul_f32(&a, &[2, 2], &[2.0], &[], &mut out, &[2, 2], ClampF32::NONE);
        assert_eq!(out, [2.0, -4.0, 6.0, 8.0]);
        div_f32(&[12.0], &[1, 1], &a, &[2, 2], &mut out, &[2, 2], ClampF32::NONE);
        assert_eq!(out, [12.0, -6.0, 4.0, 3.0]);
    }

    #[test]
    fn fused_relu_on_add() {
        let a = [1.0f32, -5.0, 2.0, -0.5];
        let b = [1.0f32, 2.0, 5.0, 0.25];
        let mut out = [9.0f32; 4];
        add_f32(&a, &[4], &b, &[4], &mut out, &[4], ClampF32::RELU);
        assert_eq!(out, [2.0, 0.0, 7.0, 0.0]);
        add_f32(&a, &[4], &b, &[4], &mut out, &[4], ClampF32::RELU6);
        assert_eq!(out, [2.0, 0.0, 6.0, 0.0]);
        add_f32(&a, &[4], &b, &[4], &mut out, &[4], ClampF32::RELU_N1_TO_1);
        assert_eq!(out, [1.0, -1.0, 1.0, -0.25]);
    }

    #[test]
    fn unclamped_binaries() {
        let a = [3.0f32, -7.0, 7.0, -7.0, 2.0];
        let b = [5.0f32, 2.0, -2.0, -2.0, 3.0];
        let mut out = [0.0f32; 5];
        squared_difference_f32(&a, &[5], &b, &[5], &mut out, &[5]);
        assert_eq!(out, [4.0, 81.0, 81.0, 25.0, 1.0]);
        maximum_f32(&a, &[5], &b, &[5], &mut out, &[5]);
        assert_eq!(out, [5.0, 2.0, 7.0, -2.0, 3.0]);
        minimum_f32(&a, &[5], &b, &[5], &mut out, &[5]);
        assert_eq!(out, [3.0, -7.0, -2.0, -7.0, 2.0]);
        pow_f32(&a, &[5], &b, &[5], &mut out, &[5]);
        let expect = [243.0f32, 49.0, 1.0 / 49.0, 1.0 / 49.0, 8.0];
        for (o, e) in out.iter().zip(expect) {
            assert!((o - e).abs() <= 1e-6 * e.abs(), "{o} vs {e}");
        }
        floor_div_f32(&a, &[5], &b, &[5], &mut out, &[5]);
        assert_eq!(out, [0.0, -4.0, -4.0, 3.0, 0.0]);
        floor_mod_f32(&a, &[5], &b, &[5], &mut out, &[5]);
        // Python: 3%5=3, -7%2=1, 7%-2=-1, -7%-2=-1, 2%3=2
        assert_eq!(out, [3.0, 1.0, -1.0, -1.0, 2.0]);
    }

    #[test]
    fn maximum_nan_follows_tflite_select() {
        let mut out = [0.0f32; 2];
        maximum_f32(&[f32::NAN, 1.0], &[2], &[2.0, f32::NAN], &[2], &mut out, &[2]);
        assert_eq!(out[0], 2.0);
        assert!(out[1].is_nan());
    }

    #[test]
    fn rounding_is_half_to_even() {
        let x = [0.5f32, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4, 2.6, -2.6, 3.0];
        let mut out = [0.0f32; 10];
        round_f32(&x, &mut out);
        assert_eq!(out, [0.0, 2.0, 2.0, 0.0, -2.0, -2.0, 2.0, 3.0, -3.0, 3.0]);
    }

    #[test]
    fn named_unaries() {
        let mut out = [0.0f32; 4];
        sign_f32(&[-3.0, 0.0, 2.0, -0.0], &mut out);
        assert_eq!(out, [-1.0, 0.0, 1.0, 0.0]);
        rsqrt_f32(&[4.0, 16.0, 0.25, 1.0], &mut out);
        assert_eq!(out, [0.5, 0.25, 2.0, 1.0]);
        square_f32(&[-3.0, 0.5, 2.0, 0.0], &mut out);
        assert_eq!(out, [9.0, 0.25, 4.0, 0.0]);
        floor_f32(&[-1.5, 1.5, 2.0, -0.2], &mut out);
        assert_eq!(out, [-2.0, 1.0, 2.0, -1.0]);
        ceil_f32(&[-1.5, 1.5, 2.0, -0.2], &mut out);
        assert_eq!(out, [-1.0, 2.0, 2.0, 0.0]);
        neg_f32(&[1.0, -2.0, 0.0, 3.5], &mut out);
        assert_eq!(out, [-1.0, 2.0, 0.0, -3.5]);
        abs_f32(&[1.0, -2.0, 0.0, -3.5], &mut out);
        assert_eq!(out, [1.0, 2.0, 0.0, 3.5]);
        let mut o1 = [0.0f32; 1];
        log_f32(&[1.0], &mut o1);
        assert_eq!(o1, [0.0]);
        exp_f32(&[0.0], &mut o1);
        assert_eq!(o1, [1.0]);
    }

    #[test]
    fn generic_broadcast_on_integers() {
        // [2,1] x [3] -> [2,3]
        let mut out = [0i32; 6];
        broadcast_binary(&[1i32, 2], &[2, 1], &[10i32, 20, 30], &[3], &mut out, &[2, 3], |x, y| x * y);
        assert_eq!(out, [10, 20, 30, 20, 40, 60]);
    }

    #[test]
    fn empty_output_is_a_noop() {
        let mut out: [f32; 0] = [];
        add_f32(&[], &[0, 3], &[1.0, 2.0, 3.0], &[3], &mut out, &[0, 3], ClampF32::NONE);
    }
}
