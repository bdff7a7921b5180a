//! EMBEDDING_LOOKUP: rows of a table picked by ids.

/// Copy row `ids[i]` of `table` (rows of `row_len` elements) to row `i` of
/// `output`. An id outside the table is an error naming it.
pub fn embedding_lookup<T: Copy>(ids: &[i32], table: &[T], row_len: usize, output: &mut [T]) -> Result<(), String> {
    let rows = table.len().checked_div(row_len).unwrap_or(0);
    for (i, &id) in ids.iter().enumerate() {
        let r = usize::try_from(id).ok().filter(|&r| r < rows || row_len == 0);
        let r = r.ok_or_else(|| format!("embedding id {id} is outside the table's {rows} rows"))?;
        output[i * row_len..(i + 1) * row_len].copy_from_slice(&table[r * row_len..(r + 1) * row_len]);
    }
    Ok(())
}

/// Hybrid EMBEDDING_LOOKUP: an int8 table to float rows, each value times
/// its row's scale (`scales` has one entry, or one per row). As in TFLite,
/// the zero point is not applied.
pub fn embedding_lookup_dequantize(
    ids: &[i32],
    table: &[i8],
    row_len: usize,
    scales: &[f32],
    output: &mut [f32],
) -> Result<(), String> {
    let rows = table.len().checked_div(row_len).unwrap_or(0);
    for (i, &id) in ids.iter().enumerate() {
        let r = usize::try_from(id).ok().filter(|&r| r < rows || row_len == 0);
        let r = r.ok_or_else(|| format!("embedding id {id} is outside the table's {rows} rows"))?;
        let scale = if scales.len() > 1 { scales[r] } else { scales.first().copied().unwrap_or(1.0) };
        let src = &table[r * row_len..(r + 1) * row_len];
        for (o, &q) in output[i * row_len..(i + 1) * row_len].iter_mut().zip(src) {
            *o = q as f32 * scale;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_rows_in_id_order() {
        let table = [0.0f32, 0.1, 1.0, 1.1, 2.0, 2.1]; // 3 rows of 2
        let mut out = [0.0f32; 6];
        embedding_lookup(&[2, 0, 2], &table, 2, &mut out).unwrap();
        assert_eq!(out, [2.0, 2.1, 0.0, 0.1, 2.0, 2.1]);
        assert!(embedding_lookup(&[3], &table, 2, &mut out).is_err());
        assert!(embedding_lookup(&[-1], &table, 2, &mut out).is_err());
    }

    #[test]
    fn hybrid_scales_per_row() {
        let table = [1i8, -2, 3, 4];
        let mut out = [0.0f32; 4];
        embedding_lookup_dequantize(&[1, 0], &table, 2, &[0.5], &mut out).unwrap();
        assert_eq!(out, [1.5, 2.0, 0.5, -1.0]);
        embedding_lookup_dequantize(&[1, 0], &table, 2, &[0.5, 2.0], &mut out).unwrap();
        assert_eq!(out, [6.0, 8.0, 0.5, -1.0]);
    }
}
