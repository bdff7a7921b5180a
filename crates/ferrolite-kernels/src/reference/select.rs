//! SELECT / SELECT_V2 (pick from `x` where the condition holds, else from
//! `y`) and WHERE (coordinates of the true elements).
//!
//! Conditions are bool bytes; any non-zero byte is true.

use super::elementwise::{broadcast_shape, broadcast_strides};

/// SELECT with a condition of the operands' shape: element-wise.
pub fn select<T: Copy>(cond: &[u8], x: &[T], y: &[T], out: &mut [T]) {
    for (((o, &c), &a), &b) in out.iter_mut().zip(cond).zip(x).zip(y) {
        *o = if c != 0 { a } else { b };
    }
}

/// SELECT (version one) with a scalar or rank-1 condition: condition `i`
/// picks the whole `i`-th slice along the first dimension of `x` / `y`
/// (a scalar condition picks the whole tensor).
pub fn select_rank_one<T: Copy>(cond: &[u8], x: &[T], y: &[T], out: &mut [T]) {
    let outer = cond.len();
    if outer == 0 {
        return;
    }
    let inner = out.len() / outer;
    for (i, &c) in cond.iter().enumerate() {
        let src = if c != 0 { x } else { y };
        let r = i * inner..(i + 1) * inner;
        out[r.clone()].copy_from_slice(&src[r]);
    }
}

/// The shape three operands broadcast to, or `None`.
pub fn broadcast_shape3(a: &[usize], b: &[usize], c: &[usize]) -> Option<Vec<usize>> {
    broadcast_shape(&broadcast_shape(a, b)?, c)
}

/// SELECT_V2: condition, `x` and `y` all broadcast to `out_shape`.
#[allow(clippy::too_many_arguments)]
pub fn select_broadcast<T: Copy>(
    cond: &[u8],
    cond_shape: &[usize],
    x: &[T],
    x_shape: &[usize],
    y: &[T],
    y_shape: &[usize],
    out: &mut [T],
    out_shape: &[usize],
) {
    if cond.len() == out.len() && x.len() == out.len() && y.len() == out.len() {
        return select(cond, x, y, out);
    }
    let total: usize = out_shape.iter().product();
    if total == 0 {
        return;
    }
    let rank = out_shape.len();
    let sc = broadcast_strides(cond_shape, out_shape);
    let sx = broadcast_strides(x_shape, out_shape);
    let sy = broadcast_strides(y_shape, out_shape);
    let mut idx = vec![0usize; rank];
    let (mut oc, mut ox, mut oy) = (0usize, 0usize, 0usize);
    for o in out.iter_mut().take(total) {
        *o = if cond[oc] != 0 { x[ox] } else { y[oy] };
        // Odometer step, keeping the three operand offsets in step.
        let mut d = rank;
        while d > 0 {
            d -= 1;
            idx[d] += 1;
            oc += sc[d];
            ox += sx[d];
            oy += sy[d];
            if idx[d] < out_shape[d] {
                break;
            }
            oc -= sc[d] * out_shape[d];
            ox -= sx[d] * out_shape[d];
            oy -= sy[d] * out_shape[d];
            idx[d] = 0;
        }
    }
}

/// WHERE: how many elements are not zero (false), and their row-major
/// coordinates flattened as `[count, rank]`.
pub fn where_true<T: Copy + PartialEq + Default>(input: &[T], shape: &[usize]) -> (usize, Vec<i64>) {
    let rank = shape.len();
    let mut coords = Vec::new();
    let mut idx = vec![0usize; rank];
    let zero = T::default();
    let mut count = 0;
    for &v in input {
        if v != zero {
            count += 1;
            coords.extend(idx.iter().map(|&i| i as i64));
        }
        let mut d = rank;
        while d > 0 {
            d -= 1;
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    (count, coords)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elementwise_select() {
        let mut out = [0i32; 4];
        select(&[1, 0, 0, 1], &[1, 2, 3, 4], &[5, 6, 7, 8], &mut out);
        assert_eq!(out, [1, 6, 7, 4]);
    }

    #[test]
    fn rank_one_condition_picks_rows() {
        let x = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let y = [-1.0f32, -2.0, -3.0, -4.0, -5.0, -6.0];
        let mut out = [0.0f32; 6];
        select_rank_one(&[0, 1, 0], &x, &y, &mut out);
        assert_eq!(out, [-1.0, -2.0, 3.0, 4.0, -5.0, -6.0]);
        select_rank_one(&[1], &x, &y, &mut out);
        assert_eq!(out, x);
    }

    #[test]
    fn three_way_broadcast() {
        // cond [2,1], x [1,3], y scalar -> [2,3]
        assert_eq!(broadcast_shape3(&[2, 1], &[1, 3], &[]), Some(vec![2, 3]));
        let mut out = [0i64; 6];
        select_broadcast(&[1, 0], &[2, 1], &[10i64, 20, 30], &[1, 3], &[-1i64], &[], &mut out, &[2, 3]);
        assert_eq!(out, [10, 20, 30, -1, -1, -1]);
        // cond [3], x [2,1], y [2,3]
        let y = [0u8, 1, 2, 3, 4, 5];
        let mut out = [0u8; 6];
        select_broadcast(&[1, 0, 1], &[3], &[7u8, 8], &[2, 1], &y, &[2, 3], &mut out, &[2, 3]);
        assert_eq!(out, [7, 1, 7, 8, 4, 8]);
        assert_eq!(broadcast_shape3(&[2], &[3], &[1]), None);
    }

    #[test]
    fn where_lists_coordinates_in_order() {
        let c = [0u8, 1, 0, 1, 1, 0];
        assert_eq!(where_true(&c, &[2, 3]), (3, vec![0, 1, 1, 0, 1, 1]));
        assert_eq!(where_true(&[0.0f32, -2.5, 0.0], &[3]), (1, vec![1]));
        assert_eq!(where_true(&[7i32], &[]), (1, vec![]));
        assert_eq!(where_true(&[0i32], &[]), (0, vec![]));
    }
}
