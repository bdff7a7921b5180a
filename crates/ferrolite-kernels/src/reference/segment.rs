//! SEGMENT_SUM and UNSORTED_SEGMENT_{SUM,MAX,MIN,PROD}: rows of `data`
//! folded into the output row their segment id names.

/// Output rows of SEGMENT_SUM: the last id plus one. TFLite's rule for the
/// ids: the first is 0 and each next one repeats or adds one.
pub fn segment_sum_rows(ids: &[i32]) -> Result<usize, String> {
    let mut prev = -1i64;
    for (i, &id) in ids.iter().enumerate() {
        let id = id as i64;
        let ok = if i == 0 { id == 0 } else { id == prev || id == prev + 1 };
        if !ok {
            return Err(format!(
                "SEGMENT_SUM: segment id {id} at position {i} does not follow {prev} (ids must start at 0 and grow by 0 or 1)"
            ));
        }
        prev = id;
    }
    Ok((prev + 1) as usize)
}

/// Fold `data` (`ids.len()` rows of `inner` values) into `out` (rows of
/// `inner` values): every output value starts at `init` and becomes
/// `f(acc, x)` for each row whose id names it, in row order. Negative ids
/// are skipped (UNSORTED_SEGMENT_*, as TFLite); an id past the output rows
/// is an error naming it.
pub fn segment_reduce<T: Copy>(
    data: &[T],
    ids: &[i32],
    inner: usize,
    out: &mut [T],
    init: T,
    f: impl Fn(T, T) -> T,
) -> Result<(), String> {
    if data.len() != ids.len() * inner {
        return Err(format!("segment ops: {} data values for {} ids of {inner} values", data.len(), ids.len()));
    }
    out.fill(init);
    let rows = out.len().checked_div(inner).unwrap_or(0);
    for (i, &id) in ids.iter().enumerate() {
        if id < 0 {
            continue;
        }
        let r = id as usize;
        if inner > 0 && r >= rows {
            return Err(format!("segment id {id} at position {i} is out of range for {rows} segments"));
        }
        let dst = &mut out[r * inner..(r + 1) * inner];
        for (o, &x) in dst.iter_mut().zip(&data[i * inner..(i + 1) * inner]) {
            *o = f(*o, x);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_sum_rows_checks_the_ids() {
        assert_eq!(segment_sum_rows(&[0, 0, 1, 2, 2]), Ok(3));
        assert_eq!(segment_sum_rows(&[]), Ok(0));
        assert!(segment_sum_rows(&[1, 1]).is_err());
        assert!(segment_sum_rows(&[0, 2]).is_err());
        assert!(segment_sum_rows(&[0, 1, 0]).is_err());
    }

    #[test]
    fn sums_rows_by_segment() {
        // data [[1, 2], [3, 4], [5, 6]], ids [0, 0, 1].
        let mut out = [0.0f32; 4];
        segment_reduce(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[0, 0, 1], 2, &mut out, 0.0, |a, b| a + b).unwrap();
        assert_eq!(out, [4.0, 6.0, 5.0, 6.0]);
    }

    #[test]
    fn unsorted_max_skips_negative_ids_and_leaves_empty_segments_at_init() {
        // ids [2, 0, -1, 2]; segment 1 is empty.
        let mut out = [0i32; 3];
        segment_reduce(&[5, 7, 100, 9], &[2, 0, -1, 2], 1, &mut out, i32::MIN, i32::max).unwrap();
        assert_eq!(out, [7, i32::MIN, 9]);
    }

    #[test]
    fn id_past_the_segments_is_an_error() {
        let mut out = [0i32; 2];
        let e = segment_reduce(&[1, 2], &[0, 2], 1, &mut out, 0, i32::wrapping_add).unwrap_err();
        assert!(e.contains("segment id 2"), "{e}");
    }
}
