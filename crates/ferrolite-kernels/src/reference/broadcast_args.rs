//! BROADCAST_ARGS: the shape two shapes broadcast to.

/// Numpy's rule, aligned at the last dimension: equal sizes stay, a 1
/// takes the other size, anything else is an error naming both shapes.
pub fn broadcast_shape(a: &[i64], b: &[i64]) -> Result<Vec<i64>, String> {
    let n = a.len().max(b.len());
    let mut out = vec![0i64; n];
    for i in 0..n {
        let x = if i < a.len() { a[a.len() - 1 - i] } else { 1 };
        let y = if i < b.len() { b[b.len() - 1 - i] } else { 1 };
        out[n - 1 - i] = if x == y || y == 1 {
            x
        } else if x == 1 {
            y
        } else {
            return Err(format!("BROADCAST_ARGS: shapes {a:?} and {b:?} do not broadcast"));
        };
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasts_from_the_right() {
        assert_eq!(broadcast_shape(&[2, 1, 3], &[4, 1]), Ok(vec![2, 4, 3]));
        assert_eq!(broadcast_shape(&[], &[5]), Ok(vec![5]));
        assert_eq!(broadcast_shape(&[0, 1], &[1, 3]), Ok(vec![0, 3]));
        assert!(broadcast_shape(&[2, 3], &[4, 3]).is_err());
    }
}
