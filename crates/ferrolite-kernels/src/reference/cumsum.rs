//! CUMSUM along an axis and ADD_N (sum of several same-shape tensors).

/// Running sums along `axis` of `shape`, accumulated in order with `add`
/// from `zero`. `exclusive` leaves each element out of its own sum;
/// `reverse` runs from the end of the axis.
#[allow(clippy::too_many_arguments)]
pub fn cumsum<T: Copy>(
    input: &[T],
    shape: &[usize],
    axis: usize,
    exclusive: bool,
    reverse: bool,
    zero: T,
    add: impl Fn(T, T) -> T,
    output: &mut [T],
) {
    let outer: usize = shape[..axis].iter().product();
    let n = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    for o in 0..outer {
        for i in 0..inner {
            let base = o * n * inner + i;
            let mut acc = zero;
            for step in 0..n {
                let k = if reverse { n - 1 - step } else { step };
                let at = base + k * inner;
                if exclusive {
                    output[at] = acc;
                    acc = add(acc, input[at]);
                } else {
                    acc = add(acc, input[at]);
                    output[at] = acc;
                }
            }
        }
    }
}

/// ADD_N: `output = inputs[0] + inputs[1] + ...`, element-wise, summed in
/// input order.
pub fn add_n<T: Copy>(inputs: &[&[T]], add: impl Fn(T, T) -> T, output: &mut [T]) {
    let Some((first, rest)) = inputs.split_first() else { return };
    output.copy_from_slice(first);
    for x in rest {
        for (o, &v) in output.iter_mut().zip(x.iter()) {
            *o = add(*o, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(x: &[i32], shape: &[usize], axis: usize, exclusive: bool, reverse: bool) -> Vec<i32> {
        let mut out = vec![0; x.len()];
        cumsum(x, shape, axis, exclusive, reverse, 0, i32::wrapping_add, &mut out);
        out
    }

    #[test]
    fn four_modes_on_rows() {
        let x = [1, 2, 3, 4, 5, 6]; // [2,3]
        assert_eq!(run(&x, &[2, 3], 1, false, false), [1, 3, 6, 4, 9, 15]);
        assert_eq!(run(&x, &[2, 3], 1, true, false), [0, 1, 3, 0, 4, 9]);
        assert_eq!(run(&x, &[2, 3], 1, false, true), [6, 5, 3, 15, 11, 6]);
        assert_eq!(run(&x, &[2, 3], 1, true, true), [5, 3, 0, 11, 6, 0]);
    }

    #[test]
    fn along_first_axis() {
        let x = [1, 2, 3, 4, 5, 6]; // [2,3]
        assert_eq!(run(&x, &[2, 3], 0, false, false), [1, 2, 3, 5, 7, 9]);
        let mut f = [0.0f32; 3];
        cumsum(&[0.5f32, 0.25, 1.0], &[3], 0, false, false, 0.0, |a, b| a + b, &mut f);
        assert_eq!(f, [0.5, 0.75, 1.75]);
    }

    #[test]
    fn add_n_sums_in_order() {
        let (a, b, c) = ([1.0f32, 2.0], [10.0f32, 20.0], [100.0f32, 200.0]);
        let mut out = [0.0f32; 2];
        add_n(&[&a, &b, &c], |x, y| x + y, &mut out);
        assert_eq!(out, [111.0, 222.0]);
        let mut out = [0i32; 1];
        add_n(&[&[i32::MAX][..], &[1][..]], i32::wrapping_add, &mut out);
        assert_eq!(out, [i32::MIN]);
    }
}
