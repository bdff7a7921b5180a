//! UNIQUE: the distinct values of a vector in order of first appearance,
//! and for each element the position of its value among them.

use std::collections::HashMap;
use std::hash::Hash;

/// The distinct values of `input` (first appearances, in order) and, for
/// each input element, the index of its value in that list.
///
/// Two elements are the same value when `key` gives both the same `Some`
/// key; `None` makes an element equal to no other (NaN). Float keys should
/// map -0.0 and 0.0 together: TFLite's `std::map` finds them equal and
/// keeps the first one seen.
pub fn unique<T: Copy, K: Eq + Hash>(input: &[T], key: impl Fn(T) -> Option<K>) -> (Vec<T>, Vec<usize>) {
    let mut seen: HashMap<K, usize> = HashMap::new();
    let mut values = Vec::new();
    let mut index = Vec::with_capacity(input.len());
    for &v in input {
        let next = values.len();
        let i = match key(v) {
            Some(k) => *seen.entry(k).or_insert(next),
            None => next,
        };
        if i == next {
            values.push(v);
        }
        index.push(i);
    }
    (values, index)
}

/// The key for f32 values: their bits, with -0.0 as 0.0 and NaN unequal.
pub fn f32_key(v: f32) -> Option<u32> {
    if v.is_nan() {
        None
    } else if v == 0.0 {
        Some(0)
    } else {
        Some(v.to_bits())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_appearances_in_order() {
        let (values, index) = unique(&[4i32, 1, 4, 4, -2, 1], Some);
        assert_eq!(values, [4, 1, -2]);
        assert_eq!(index, [0, 1, 0, 0, 2, 1]);
        let (values, index) = unique::<i8, i8>(&[], Some);
        assert!(values.is_empty() && index.is_empty());
    }

    #[test]
    fn floats_signed_zero_together_nan_apart() {
        let (values, index) = unique(&[-0.0f32, 1.5, 0.0, f32::NAN, 1.5, f32::NAN], f32_key);
        assert_eq!(values.len(), 4);
        assert!(values[0] == 0.0 && values[0].is_sign_negative());
        assert_eq!(values[1], 1.5);
        assert!(values[2].is_nan() && values[3].is_nan());
        assert_eq!(index, [0, 1, 0, 2, 1, 3]);
    }
}
