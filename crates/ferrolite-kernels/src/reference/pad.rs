//! PAD / PADV2 (constant padding) and MIRROR_PAD over tensors of any rank,
//! row-major, with TFLite's semantics (`reference/pad.h`,
//! `kernels/mirror_pad.cc`).
//!
//! Both walk the output in order, one dimension per recursion level; there
//! is no allocation.

/// Number of elements in a row-major block of the given dimensions.
#[inline]
fn volume(dims: &[usize]) -> usize {
    dims.iter().product()
}

/// Same, for the padded dimensions.
#[inline]
fn padded_volume(dims: &[usize], paddings: &[(usize, usize)]) -> usize {
    dims.iter().zip(paddings).map(|(&d, &(lo, hi))| d + lo + hi).product()
}

/// PAD / PADV2: `output` has dimension `i` of size
/// `in_shape[i] + paddings[i].0 + paddings[i].1`; the input sits at offset
/// `paddings[i].0` and everything else is `pad_value`.
///
/// Any rank works (TFLite accepts up to 5); rank 0 copies the scalar.
pub fn pad<T: Copy>(input: &[T], in_shape: &[usize], paddings: &[(usize, usize)], pad_value: T, output: &mut [T]) {
    let out_len = padded_volume(in_shape, paddings);
    let (dims, pads) = coalesce(in_shape, paddings);
    pad_outer_rows(input, &dims, &pads, pad_value, &mut output[..out_len], 0);
}

/// The same padding over fewer dimensions: a dimension whose inner
/// neighbour is not padded merges into it (`[1, 64, 64, 24]` padded only
/// in its channels is 4096 rows of 24; padded in H and W, `[1, 1, H, W *
/// C]`, less its unpadded leading ones: `[H, W * C]` with `C` values of
/// padding each side of a row). A channel pad then costs a copy and a
/// fill per pixel, not three levels of recursion.
pub fn coalesce(in_shape: &[usize], paddings: &[(usize, usize)]) -> (Vec<usize>, Vec<(usize, usize)>) {
    let mut dims: Vec<usize> = Vec::with_capacity(in_shape.len());
    let mut pads: Vec<(usize, usize)> = Vec::with_capacity(in_shape.len());
    // Built innermost first, reversed at the end.
    for (&n, &(lo, hi)) in in_shape.iter().zip(paddings).rev() {
        match (dims.last_mut(), pads.last_mut()) {
            (Some(inner), Some(inner_pad)) if *inner_pad == (0, 0) => {
                *inner_pad = (lo * *inner, hi * *inner);
                *inner *= n;
            }
            _ => {
                dims.push(n);
                pads.push((lo, hi));
            }
        }
    }
    // Unpadded outer dimensions of size 1 say nothing.
    while dims.len() > 1 && dims.last() == Some(&1) && pads.last() == Some(&(0, 0)) {
        dims.pop();
        pads.pop();
    }
    dims.reverse();
    pads.reverse();
    (dims, pads)
}

/// Rows `first ..` of dimension 0 of the padded output (as many as
/// `output` holds whole rows of the inner dimensions): padding rows are
/// filled, the others padded from their input row. With [`coalesce`]d
/// dimensions, callers can split a large output between threads this way.
pub fn pad_outer_rows<T: Copy>(
    input: &[T],
    dims: &[usize],
    paddings: &[(usize, usize)],
    value: T,
    output: &mut [T],
    first: usize,
) {
    let Some((&n, inner_dims)) = dims.split_first() else {
        if let (Some(o), Some(&i)) = (output.first_mut(), input.first()) {
            *o = i;
        }
        return;
    };
    let (before, _) = paddings[0];
    let inner_pads = &paddings[1..];
    let in_inner = volume(inner_dims);
    let out_inner = padded_volume(inner_dims, inner_pads);
    if out_inner == 0 {
        return;
    }
    for (r, row) in output.chunks_exact_mut(out_inner).enumerate() {
        let i = (first + r).wrapping_sub(before);
        if i >= n {
            row.fill(value);
            continue;
        }
        let src = &input[i * in_inner..(i + 1) * in_inner];
        match inner_pads {
            [] => row[0] = src[0],
            // The last dimension: a copy between two fills.
            &[(lo, hi)] => {
                row[..lo].fill(value);
                row[lo..lo + in_inner].copy_from_slice(src);
                row[lo + in_inner..lo + in_inner + hi].fill(value);
            }
            _ => pad_outer_rows(src, inner_dims, inner_pads, value, row, 0),
        }
    }
}

/// MIRROR_PAD's mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MirrorPadMode {
    /// Mirror without repeating the edge: `[1,2,3]` padded by 2 on the left
    /// gives `[3,2,1,2,3]`. Padding must be at most `dim - 1`.
    Reflect,
    /// Mirror including the edge: `[1,2,3]` padded by 2 on the left gives
    /// `[2,1,1,2,3]`. Padding must be at most `dim`.
    Symmetric,
}

/// Input index that padded index `p` mirrors along a dimension of size `n`
/// (TFLite's `GetInputDimension`; `offset` is 1 for REFLECT, 0 for
/// SYMMETRIC). The final clamp only matters for paddings TFLite rejects.
#[inline]
fn mirror_index(p: usize, before: usize, n: usize, offset: usize) -> usize {
    let (p, before, n, offset) = (p as isize, before as isize, n as isize, offset as isize);
    let idx = if p < before {
        let original = before + offset - 1;
        original - p.min(original - offset)
    } else if p - before >= n {
        let q = p - before - n;
        let original = n - (1 + offset);
        original - q.min(original)
    } else {
        p - before
    };
    idx.clamp(0, (n - 1).max(0)) as usize
}

/// MIRROR_PAD: like [`pad`], but padded positions copy the input mirrored
/// about its edges (see [`MirrorPadMode`]), dimension by dimension, so corners
/// mirror in both directions.
pub fn mirror_pad<T: Copy>(
    input: &[T],
    in_shape: &[usize],
    paddings: &[(usize, usize)],
    mode: MirrorPadMode,
    output: &mut [T],
) {
    let offset = match mode {
        MirrorPadMode::Reflect => 1,
        MirrorPadMode::Symmetric => 0,
    };
    let out_len = padded_volume(in_shape, paddings);
    mirror_block(input, in_shape, paddings, offset, &mut output[..out_len]);
}

fn mirror_block<T: Copy>(input: &[T], dims: &[usize], paddings: &[(usize, usize)], offset: usize, output: &mut [T]) {
    let Some((&n, inner_dims)) = dims.split_first() else {
        if let (Some(o), Some(&i)) = (output.first_mut(), input.first()) {
            *o = i;
        }
        return;
    };
    if n == 0 {
        // Nothing to mirror; only reachable for empty outputs under TFLite's checks.
        return;
    }
    let (before, after) = paddings[0];
    let inner_pads = &paddings[1..];
    let in_inner = volume(inner_dims);
    let out_inner = padded_volume(inner_dims, inner_pads);
    for p in 0..before + n + after {
        let i = mirror_index(p, before, n, offset);
        let dst = &mut output[p * out_inner..(p + 1) * out_inner];
        if inner_dims.is_empty() {
            dst[0] = input[i];
        } else {
            mirror_block(&input[i * in_inner..(i + 1) * in_inner], inner_dims, inner_pads, offset, dst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pad_1d() {
        let mut out = [9; 6];
        pad(&[1, 2, 3], &[3], &[(2, 1)], 0, &mut out);
        assert_eq!(out, [0, 0, 1, 2, 3, 0]);
    }

    #[test]
    fn pad_2d_uneven() {
        let mut out = [0.0; 12];
        pad(&[1.0, 2.0, 3.0, 4.0], &[2, 2], &[(1, 0), (0, 2)], 9.0, &mut out);
        #[rustfmt::skip]
        assert_eq!(out, [
            9.0, 9.0, 9.0, 9.0,
            1.0, 2.0, 9.0, 9.0,
            3.0, 4.0, 9.0, 9.0,
        ]);
    }

    #[test]
    fn pad_4d_nhwc_spatial() {
        // 1x2x2x1 padded by one on each side of H and W.
        let mut out = [7; 16];
        pad(&[1, 2, 3, 4], &[1, 2, 2, 1], &[(0, 0), (1, 1), (1, 1), (0, 0)], 0, &mut out);
        #[rustfmt::skip]
        assert_eq!(out, [
            0, 0, 0, 0,
            0, 1, 2, 0,
            0, 3, 4, 0,
            0, 0, 0, 0,
        ]);
    }

    #[test]
    fn pad_5d_and_batch_dim() {
        // [2,1,1,1,2]: pad batch by (0,1), last dim by (1,0) -> [3,1,1,1,3].
        let mut out = [0; 9];
        pad(&[1, 2, 3, 4], &[2, 1, 1, 1, 2], &[(0, 1), (0, 0), (0, 0), (0, 0), (1, 0)], -1, &mut out);
        assert_eq!(out, [-1, 1, 2, -1, 3, 4, -1, -1, -1]);
    }

    #[test]
    fn pad_empty_dimension_and_scalar() {
        let mut out = [1; 3];
        pad::<i32>(&[], &[0], &[(1, 2)], 5, &mut out);
        assert_eq!(out, [5, 5, 5]);
        let mut s = [0];
        pad(&[42], &[], &[], 0, &mut s);
        assert_eq!(s, [42]);
    }

    /// Output element by element: where the output index minus the
    /// padding before falls inside the input, the input value.
    fn naive_pad(input: &[i32], shape: &[usize], pads: &[(usize, usize)], value: i32) -> Vec<i32> {
        let out_shape: Vec<usize> = shape.iter().zip(pads).map(|(&n, &(a, b))| n + a + b).collect();
        let total: usize = out_shape.iter().product();
        (0..total)
            .map(|mut flat| {
                let mut src = 0;
                let mut inside = true;
                for d in (0..shape.len()).rev() {
                    let o = flat % out_shape[d];
                    flat /= out_shape[d];
                    let stride: usize = shape[d + 1..].iter().product();
                    match o.checked_sub(pads[d].0) {
                        Some(i) if i < shape[d] => src += i * stride,
                        _ => inside = false,
                    }
                }
                if inside {
                    input[src]
                } else {
                    value
                }
            })
            .collect()
    }

    #[test]
    fn pad_matches_index_arithmetic_and_coalesces() {
        let mut seed = 7u64;
        let mut next = |m: usize| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 33) as usize) % m
        };
        for _ in 0..300 {
            let rank = 1 + next(5);
            let shape: Vec<usize> = (0..rank).map(|_| next(4) + usize::from(next(4) > 0)).collect();
            let pads: Vec<(usize, usize)> = (0..rank).map(|_| (next(3) * next(2), next(3) * next(2))).collect();
            let input: Vec<i32> = (0..shape.iter().product::<usize>() as i32).collect();
            let want = naive_pad(&input, &shape, &pads, -1);
            let mut got = vec![-9; want.len()];
            pad(&input, &shape, &pads, -1, &mut got);
            assert_eq!(got, want, "shape {shape:?} pads {pads:?}");
            // The coalesced form pads the same way, and split at any row.
            let (dims, cpads) = coalesce(&shape, &pads);
            assert_eq!(naive_pad(&input, &dims, &cpads, -1), want, "coalesced {dims:?} {cpads:?}");
            let rows = dims[0] + cpads[0].0 + cpads[0].1;
            if rows > 1 && !want.is_empty() {
                let row_len = want.len() / rows;
                let cut = 1 + next(rows - 1);
                let mut split = vec![-9; want.len()];
                let (a, b) = split.split_at_mut(cut * row_len);
                pad_outer_rows(&input, &dims, &cpads, -1, a, 0);
                pad_outer_rows(&input, &dims, &cpads, -1, b, cut);
                assert_eq!(split, want, "split at row {cut} of {dims:?} {cpads:?}");
            }
        }
        // A channel pad of NHWC is rows of channels.
        assert_eq!(
            coalesce(&[1, 64, 64, 24], &[(0, 0), (0, 0), (0, 0), (0, 24)]),
            (vec![4096, 24], vec![(0, 0), (0, 24)])
        );
        assert_eq!(coalesce(&[1, 8, 8, 3], &[(0, 0), (1, 1), (1, 1), (0, 0)]), (vec![8, 24], vec![(1, 1), (3, 3)]));
    }

    #[test]
    fn mirror_1d_both_modes() {
        let input = [1, 2, 3, 4];
        let mut out = [0; 8];
        mirror_pad(&input, &[4], &[(2, 2)], MirrorPadMode::Reflect, &mut out);
        assert_eq!(out, [3, 2, 1, 2, 3, 4, 3, 2]);
        mirror_pad(&input, &[4], &[(2, 2)], MirrorPadMode::Symmetric, &mut out);
        assert_eq!(out, [2, 1, 1, 2, 3, 4, 4, 3]);
    }

    #[test]
    fn mirror_limits() {
        // SYMMETRIC may pad by the full size; REFLECT by size - 1.
        let mut out = [0; 6];
        mirror_pad(&[1, 2], &[2], &[(2, 2)], MirrorPadMode::Symmetric, &mut out);
        assert_eq!(out, [2, 1, 1, 2, 2, 1]);
        let mut out = [0; 7];
        mirror_pad(&[1, 2, 3], &[3], &[(2, 2)], MirrorPadMode::Reflect, &mut out);
        assert_eq!(out, [3, 2, 1, 2, 3, 2, 1]);
    }

    #[test]
    fn mirror_2d_reflect() {
        // [[1,2,3],[4,5,6]] padded rows (1,1), cols (2,2), REFLECT.
        // Rows: [r1, r0, r1, r0]; a row [a,b,c] becomes [c,b,a,b,c,b,a].
        let mut out = [0; 4 * 7];
        mirror_pad(&[1, 2, 3, 4, 5, 6], &[2, 3], &[(1, 1), (2, 2)], MirrorPadMode::Reflect, &mut out);
        let r0 = [3, 2, 1, 2, 3, 2, 1];
        let r1 = [6, 5, 4, 5, 6, 5, 4];
        assert_eq!(out.to_vec(), [r1, r0, r1, r0].concat());
    }

    #[test]
    fn mirror_2d_symmetric() {
        // Same input, rows (1,1), cols (1,2), SYMMETRIC.
        // Rows: [r0, r0, r1, r1]; a row [a,b,c] becomes [a,a,b,c,c,b].
        let mut out = [0; 4 * 6];
        mirror_pad(&[1, 2, 3, 4, 5, 6], &[2, 3], &[(1, 1), (1, 2)], MirrorPadMode::Symmetric, &mut out);
        let r0 = [1, 1, 2, 3, 3, 2];
        let r1 = [4, 4, 5, 6, 6, 5];
        assert_eq!(out.to_vec(), [r0, r0, r1, r1].concat());
    }
}
