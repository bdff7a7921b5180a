//! Reductions over a set of axes (SUM, MEAN, REDUCE_MAX, REDUCE_MIN,
//! REDUCE_PROD), reference versions.
//!
//! `axes` are normalised, in-range axes of `in_shape` (the runtime resolves
//! negative axes); repeats are harmless. The output holds one value per
//! combination of the kept dimensions, in row-major order — the same memory
//! layout whether or not the op keeps the reduced dimensions as size 1, so
//! `keep_dims` only changes the shape the runtime records (see
//! [`reduced_shape`]).

/// Output shape of a reduction: reduced dimensions dropped, or kept as 1
/// when `keep_dims`.
pub fn reduced_shape(in_shape: &[usize], axes: &[usize], keep_dims: bool) -> Vec<usize> {
    let mut out = Vec::with_capacity(in_shape.len());
    for (d, &n) in in_shape.iter().enumerate() {
        if axes.contains(&d) {
            if keep_dims {
                out.push(1);
            }
        } else {
            out.push(n);
        }
    }
    out
}

/// Number of input elements folded into each output element (the product of
/// the reduced dimensions, each counted once).
pub fn reduction_count(in_shape: &[usize], axes: &[usize]) -> usize {
    in_shape.iter().enumerate().filter(|(d, _)| axes.contains(d)).map(|(_, &n)| n).product()
}

/// Fold `input` over `axes` into `output`: every output element starts at
/// `init` and becomes `f(acc, x)` for each input element `x` mapping to it,
/// taken in the input's row-major order (TFLite's reference order).
// Inlined so the optimised float reductions compile it for AVX2.
#[inline(always)]
pub fn reduce<I: Copy, A: Copy>(
    input: &[I],
    in_shape: &[usize],
    axes: &[usize],
    output: &mut [A],
    init: A,
    f: impl Fn(A, I) -> A,
) {
    for o in output.iter_mut() {
        *o = init;
    }
    let total: usize = in_shape.iter().product();
    if total == 0 || output.is_empty() {
        return;
    }
    // Merge neighbouring dimensions that are both reduced or both kept
    // (size-1 dimensions dropped): MEAN over H and W of NHWC is `[H·W, C]`
    // with the first dimension reduced. The order each output sees its
    // inputs in does not change.
    let mut dims: Vec<(usize, bool)> = Vec::new();
    for (d, &n) in in_shape.iter().enumerate() {
        let reduced = axes.contains(&d);
        match dims.last_mut() {
            _ if n == 1 => {}
            Some((m, r)) if *r == reduced => *m *= n,
            _ => dims.push((n, reduced)),
        }
    }
    let Some(&(inner, inner_reduced)) = dims.last() else {
        output[0] = f(output[0], input[0]);
        return;
    };
    let rank = dims.len();
    // Output stride of each merged dimension: 0 on reduced ones.
    let mut out_strides = vec![0usize; rank];
    let mut step = 1usize;
    for d in (0..rank).rev() {
        if !dims[d].1 {
            out_strides[d] = step;
            step *= dims[d].0;
        }
    }
    let mut counter = vec![0usize; rank - 1];
    let mut out_off = 0usize;
    for chunk in input[..total].chunks_exact(inner) {
        if inner_reduced {
            let slot = &mut output[out_off];
            for &x in chunk {
                *slot = f(*slot, x);
            }
        } else {
            // A row of outputs, each taking one value: vectorisable.
            for (slot, &x) in output[out_off..out_off + inner].iter_mut().zip(chunk) {
                *slot = f(*slot, x);
            }
        }
        let mut d = rank - 1;
        while d > 0 {
            d -= 1;
            counter[d] += 1;
            out_off += out_strides[d];
            if counter[d] < dims[d].0 {
                break;
            }
            out_off -= out_strides[d] * dims[d].0;
            counter[d] = 0;
        }
    }
}

/// [`reduce`] on f32.
pub fn reduce_f32(
    input: &[f32],
    in_shape: &[usize],
    axes: &[usize],
    output: &mut [f32],
    init: f32,
    f: impl Fn(f32, f32) -> f32,
) {
    reduce(input, in_shape, axes, output, init, f)
}

/// SUM: accumulated in f32 in row-major input order.
#[inline(always)]
pub fn sum_f32(input: &[f32], in_shape: &[usize], axes: &[usize], output: &mut [f32]) {
    reduce(input, in_shape, axes, output, 0.0, |acc, x| acc + x);
}

/// MEAN: the f32 sum divided by the number of reduced elements (a division,
/// not a multiply by the reciprocal, as in TFLite). When that number is 0
/// the outputs stay 0, as TFLite leaves them.
#[inline(always)]
pub fn mean_f32(input: &[f32], in_shape: &[usize], axes: &[usize], output: &mut [f32]) {
    sum_f32(input, in_shape, axes, output);
    let count = reduction_count(in_shape, axes);
    if count > 0 {
        let n = count as f32;
        for o in output.iter_mut() {
            *o /= n;
        }
    }
}

/// REDUCE_MAX: starts from `f32::MIN` (lowest finite, as TFLite) and takes
/// `x` when `x > acc`, so NaNs are skipped.
#[inline(always)]
pub fn reduce_max_f32(input: &[f32], in_shape: &[usize], axes: &[usize], output: &mut [f32]) {
    reduce(input, in_shape, axes, output, f32::MIN, |acc, x| if x > acc { x } else { acc });
}

/// REDUCE_MIN: starts from `f32::MAX` and takes `x` when `x < acc`.
#[inline(always)]
pub fn reduce_min_f32(input: &[f32], in_shape: &[usize], axes: &[usize], output: &mut [f32]) {
    reduce(input, in_shape, axes, output, f32::MAX, |acc, x| if x < acc { x } else { acc });
}

/// REDUCE_PROD: product from 1 in row-major input order.
#[inline(always)]
pub fn reduce_prod_f32(input: &[f32], in_shape: &[usize], axes: &[usize], output: &mut [f32]) {
    reduce(input, in_shape, axes, output, 1.0, |acc, x| acc * x);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The merged-dimension walk against a plain one: every input index,
    /// row-major, folded into the output index it maps to (sums in f32, so
    /// a changed order would show in the bits).
    #[test]
    fn merged_walk_matches_the_plain_walk() {
        let mut seed = 0x6d2u64;
        let mut next = |n: usize| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as usize % n
        };
        for case in 0..400 {
            let rank = 1 + next(5);
            let shape: Vec<usize> = (0..rank).map(|_| [1, 2, 3, 7, 16][next(5)]).collect();
            let axes: Vec<usize> = (0..rank).filter(|_| next(2) == 0).collect();
            let x: Vec<f32> = (0..shape.iter().product::<usize>()).map(|i| 1.0 + (i % 97) as f32 * 0.013).collect();
            let out_len: usize = reduced_shape(&shape, &axes, false).iter().product();
            let mut got = vec![0.0f32; out_len];
            sum_f32(&x, &shape, &axes, &mut got);
            let mut want = vec![0.0f32; out_len];
            let mut idx = vec![0usize; rank];
            for &v in &x {
                let mut o = 0;
                for d in 0..rank {
                    if !axes.contains(&d) {
                        o = o * shape[d] + idx[d];
                    }
                }
                want[o] += v;
                for d in (0..rank).rev() {
                    idx[d] += 1;
                    if idx[d] < shape[d] {
                        break;
                    }
                    idx[d] = 0;
                }
            }
            let same = got.iter().zip(&want).all(|(g, w)| g.to_bits() == w.to_bits());
            assert!(same, "case {case}: {shape:?} axes {axes:?}");
        }
    }

    /// x[n,h,w,c] = 1000n + 100h + 10w + c over shape [2,2,3,2].
    fn nhwc() -> (Vec<f32>, [usize; 4]) {
        let shape = [2usize, 2, 3, 2];
        let mut v = Vec::new();
        for n in 0..2 {
            for h in 0..2 {
                for w in 0..3 {
                    for c in 0..2 {
                        v.push((1000 * n + 100 * h + 10 * w + c) as f32);
                    }
                }
            }
        }
        (v, shape)
    }

    #[test]
    fn mean_over_spatial_axes() {
        let (x, shape) = nhwc();
        let mut out = [0.0f32; 4];
        mean_f32(&x, &shape, &[1, 2], &mut out);
        // mean over h in {0,1}, w in {0,1,2}: 1000n + 50 + 10 + c
        assert_eq!(out, [60.0, 61.0, 1060.0, 1061.0]);
        assert_eq!(reduced_shape(&shape, &[1, 2], true), vec![2, 1, 1, 2]);
        assert_eq!(reduced_shape(&shape, &[1, 2], false), vec![2, 2]);
    }

    #[test]
    fn sum_max_min_prod() {
        let (x, shape) = nhwc();
        let mut out = [0.0f32; 6];
        // Reduce over n and c: keep [h, w] = 6 outputs.
        sum_f32(&x, &shape, &[0, 3], &mut out);
        // sum over n,c of 1000n + 100h + 10w + c = 1000*2 + 4*(100h+10w) + 2
        let want: Vec<f32> = (0..2).flat_map(|h| (0..3).map(move |w| (2002 + 4 * (100 * h + 10 * w)) as f32)).collect();
        assert_eq!(out.to_vec(), want);

        let mut one = [0.0f32; 1];
        reduce_max_f32(&x, &shape, &[0, 1, 2, 3], &mut one);
        assert_eq!(one, [1121.0]);
        reduce_min_f32(&x, &shape, &[0, 1, 2, 3], &mut one);
        assert_eq!(one, [0.0]);

        let mut two = [0.0f32; 2];
        reduce_prod_f32(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3], &[1], &mut two);
        assert_eq!(two, [6.0, 120.0]);
        reduce_prod_f32(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3], &[0], &mut [0.0; 3]);
    }

    #[test]
    fn max_skips_nan_and_handles_all_negative() {
        let mut one = [0.0f32; 1];
        reduce_max_f32(&[-5.0, f32::NAN, -3.0], &[3], &[0], &mut one);
        assert_eq!(one, [-3.0]);
    }

    #[test]
    fn no_axes_is_a_copy_and_empty_reduction_gives_zero_mean() {
        let mut out = [0.0f32; 3];
        sum_f32(&[1.0, 2.0, 3.0], &[3], &[], &mut out);
        assert_eq!(out, [1.0, 2.0, 3.0]);
        let mut out2 = [7.0f32; 2];
        mean_f32(&[], &[2, 0], &[1], &mut out2);
        assert_eq!(out2, [0.0, 0.0]);
    }

    #[test]
    fn generic_integer_reduce() {
        let mut out = [0i32; 2];
        reduce(&[1i32, 5, 3, 9, 2, 4], &[2, 3], &[1], &mut out, i32::MIN, |a, x| a.max(x));
        assert_eq!(out, [5, 9]);
    }
}
