//! REVERSE_V2: reverse the order of elements along some axes.

use super::tile::{copy_mapped, strides};

/// Reverse `input` along each of `axes` (distinct, in range).
pub fn reverse<T: Copy>(input: &[T], shape: &[usize], axes: &[usize], output: &mut [T]) {
    let st = strides(shape);
    let offsets: Vec<Vec<usize>> = shape
        .iter()
        .enumerate()
        .map(|(d, &n)| {
            if axes.contains(&d) {
                (0..n).map(|o| (n - 1 - o) * st[d]).collect()
            } else {
                (0..n).map(|o| o * st[d]).collect()
            }
        })
        .collect();
    copy_mapped(input, &offsets, output);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_each_axis() {
        let x = [1i32, 2, 3, 4, 5, 6]; // [2,3]
        let mut out = [0i32; 6];
        reverse(&x, &[2, 3], &[1], &mut out);
        assert_eq!(out, [3, 2, 1, 6, 5, 4]);
        reverse(&x, &[2, 3], &[0], &mut out);
        assert_eq!(out, [4, 5, 6, 1, 2, 3]);
        reverse(&x, &[2, 3], &[0, 1], &mut out);
        assert_eq!(out, [6, 5, 4, 3, 2, 1]);
        reverse(&x, &[2, 3], &[], &mut out);
        assert_eq!(out, x);
    }

    #[test]
    fn reverse_middle_axis_of_3d() {
        let x: Vec<u8> = (0..12).collect(); // [2,3,2]
        let mut out = [0u8; 12];
        reverse(&x, &[2, 3, 2], &[1], &mut out);
        assert_eq!(out, [4, 5, 2, 3, 0, 1, 10, 11, 8, 9, 6, 7]);
    }
}
