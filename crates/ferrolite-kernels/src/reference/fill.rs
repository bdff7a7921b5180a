//! FILL / ZEROS_LIKE / ONES_LIKE (one value everywhere) and RANGE.

/// Set every element of `output` to `value`.
pub fn fill<T: Copy>(value: T, output: &mut [T]) {
    output.fill(value);
}

/// Number of elements of an integer RANGE: `ceil(|limit - start| / |delta|)`.
///
/// Errors, as TFLite's, when `delta` is zero or points away from `limit`.
pub fn range_len_int(start: i64, limit: i64, delta: i64) -> Result<usize, String> {
    check_direction(start < limit, start > limit, delta > 0, delta < 0, delta == 0)?;
    let span = (limit as i128 - start as i128).unsigned_abs();
    let step = (delta as i128).unsigned_abs();
    usize::try_from(span.div_ceil(step)).map_err(|_| "range: too many elements".to_string())
}

/// Number of elements of a float RANGE: `ceil(|(limit - start) / delta|)`,
/// computed in f32 as TFLite does.
pub fn range_len_f32(start: f32, limit: f32, delta: f32) -> Result<usize, String> {
    if !(start.is_finite() && limit.is_finite() && delta.is_finite()) {
        return Err("range: start, limit and delta must be finite".to_string());
    }
    check_direction(start < limit, start > limit, delta > 0.0, delta < 0.0, delta == 0.0)?;
    let n = ((limit - start) / delta).abs().ceil();
    if n > (isize::MAX as f32) {
        return Err("range: too many elements".to_string());
    }
    Ok(n as usize)
}

fn check_direction(up: bool, down: bool, pos: bool, neg: bool, zero: bool) -> Result<(), String> {
    if zero {
        return Err("range: delta must not be zero".to_string());
    }
    if (up && neg) || (down && pos) {
        return Err("range: delta has the wrong sign to reach limit from start".to_string());
    }
    Ok(())
}

/// RANGE's values: `start`, then repeatedly adding `delta` (an accumulated
/// sum, as TFLite computes it, not `start + i * delta`).
pub fn range<T: Copy + std::ops::Add<Output = T>>(start: T, delta: T, output: &mut [T]) {
    let mut v = start;
    for o in output.iter_mut() {
        *o = v;
        v = v + delta;
    }
}

/// [`range`] for integers, wrapping instead of overflowing on the step
/// after the last element.
pub fn range_i64(start: i64, delta: i64, output: &mut [i64]) {
    let mut v = start;
    for o in output.iter_mut() {
        *o = v;
        v = v.wrapping_add(delta);
    }
}

/// [`range`] for int32 (see [`range_i64`]).
pub fn range_i32(start: i32, delta: i32, output: &mut [i32]) {
    let mut v = start;
    for o in output.iter_mut() {
        *o = v;
        v = v.wrapping_add(delta);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_sets_everything() {
        let mut out = [0i64; 3];
        fill(-4, &mut out);
        assert_eq!(out, [-4; 3]);
    }

    #[test]
    fn integer_range_lengths() {
        assert_eq!(range_len_int(0, 10, 3), Ok(4)); // 0 3 6 9
        assert_eq!(range_len_int(10, 0, -3), Ok(4)); // 10 7 4 1
        assert_eq!(range_len_int(0, 9, 3), Ok(3));
        assert_eq!(range_len_int(2, 2, 1), Ok(0));
        assert!(range_len_int(0, 10, 0).is_err());
        assert!(range_len_int(0, 10, -1).is_err());
        assert!(range_len_int(10, 0, 1).is_err());
    }

    #[test]
    fn float_range() {
        assert_eq!(range_len_f32(0.0, 1.0, 0.25), Ok(4));
        assert_eq!(range_len_f32(1.0, -1.0, -0.75), Ok(3));
        assert!(range_len_f32(0.0, 1.0, -0.5).is_err());
        let mut out = [0.0f32; 3];
        range(1.0, -0.75, &mut out);
        assert_eq!(out, [1.0, 0.25, -0.5]);
        let mut ints = [0i32; 4];
        range_i32(10, -3, &mut ints);
        assert_eq!(ints, [10, 7, 4, 1]);
        let mut longs = [0i64; 2];
        range_i64(i64::MAX - 1, 1, &mut longs);
        assert_eq!(longs, [i64::MAX - 1, i64::MAX]);
    }
}
