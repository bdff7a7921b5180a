//! BATCH_MATMUL, float reference.

/// `out[..., i, j] = sum_k op(lhs)[..., i, k] * op(rhs)[..., k, j]`, where
/// `op` transposes the last two dimensions when `adj_x` (for `lhs`) or
/// `adj_y` (for `rhs`) is set.
///
/// Shapes have rank ≥ 2 (TFLite accepts 2..=5; any rank works here). The
/// batch dimensions (all but the last two) broadcast numpy-style, ranks may
/// differ, and `out_shape` is `broadcast(batch dims) + [rows, cols]` where
/// `rows`/`cols` come from the adjusted lhs/rhs. The runtime checks the
/// inner dimensions agree. Each dot product is accumulated in f32 from 0 in
/// k order, as TFLite's reference does.
#[allow(clippy::too_many_arguments)]
pub fn batch_matmul_f32(
    lhs: &[f32],
    lhs_shape: &[usize],
    rhs: &[f32],
    rhs_shape: &[usize],
    adj_x: bool,
    adj_y: bool,
    out: &mut [f32],
    out_shape: &[usize],
) {
    let lr = lhs_shape.len();
    let rr = rhs_shape.len();
    let or = out_shape.len();
    if lr < 2 || rr < 2 || or < 2 {
        return;
    }
    // Stored matrix dims.
    let (l_r, l_c) = (lhs_shape[lr - 2], lhs_shape[lr - 1]);
    let (r_r, r_c) = (rhs_shape[rr - 2], rhs_shape[rr - 1]);
    // Logical dims: lhs is m x k, rhs is k x n.
    let (m, depth) = if adj_x { (l_c, l_r) } else { (l_r, l_c) };
    let n = if adj_y { r_r } else { r_c };
    // Element strides of the logical (i, k) in lhs and (k, j) in rhs.
    let (li, lk) = if adj_x { (1, l_c) } else { (l_c, 1) };
    let (rk, rj) = if adj_y { (1, r_c) } else { (r_c, 1) };
    let lhs_mat = l_r * l_c;
    let rhs_mat = r_r * r_c;
    let out_mat = m * n;

    // Batch broadcasting, in units of whole matrices.
    let batch_shape = &out_shape[..or - 2];
    let batches: usize = batch_shape.iter().product();
    let lhs_bs = matrix_strides(&lhs_shape[..lr - 2], batch_shape);
    let rhs_bs = matrix_strides(&rhs_shape[..rr - 2], batch_shape);
    let mut counter = vec![0usize; batch_shape.len()];
    let (mut lb, mut rb) = (0usize, 0usize);

    for b in 0..batches {
        let l = &lhs[lb * lhs_mat..(lb + 1) * lhs_mat];
        let r = &rhs[rb * rhs_mat..(rb + 1) * rhs_mat];
        let o = &mut out[b * out_mat..(b + 1) * out_mat];
        for i in 0..m {
            for j in 0..n {
                let mut total = 0.0f32;
                for k in 0..depth {
                    total += l[i * li + k * lk] * r[k * rk + j * rj];
                }
                o[i * n + j] = total;
            }
        }
        // Advance the batch odometer.
        let mut d = batch_shape.len();
        while d > 0 {
            d -= 1;
            counter[d] += 1;
            lb += lhs_bs[d];
            rb += rhs_bs[d];
            if counter[d] < batch_shape[d] {
                break;
            }
            lb -= lhs_bs[d] * batch_shape[d];
            rb -= rhs_bs[d] * batch_shape[d];
            counter[d] = 0;
        }
    }
}

/// Strides (in matrices) of an operand's batch dims read as `batch_shape`:
/// 0 on broadcast dims, right-aligned.
fn matrix_strides(shape: &[usize], batch_shape: &[usize]) -> Vec<usize> {
    let rank = batch_shape.len();
    let mut strides = vec![0usize; rank];
    let mut step = 1usize;
    for i in 0..shape.len().min(rank) {
        let dim = shape[shape.len() - 1 - i];
        let o = rank - 1 - i;
        strides[o] = if dim == 1 && batch_shape[o] != 1 { 0 } else { step };
        step *= dim;
    }
    strides
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plain triple loop on explicit 2-D matrices (row-major vecs of rows).
    fn matmul(a: &[Vec<f32>], b: &[Vec<f32>]) -> Vec<f32> {
        let mut out = Vec::new();
        for row in a {
            for j in 0..b[0].len() {
                out.push((0..b.len()).map(|k| row[k] * b[k][j]).sum());
            }
        }
        out
    }

    fn rows(v: &[f32], r: usize, c: usize) -> Vec<Vec<f32>> {
        (0..r).map(|i| v[i * c..(i + 1) * c].to_vec()).collect()
    }

    fn transpose(m: &[Vec<f32>]) -> Vec<Vec<f32>> {
        (0..m[0].len()).map(|j| m.iter().map(|r| r[j]).collect()).collect()
    }

    #[test]
    fn plain_2d() {
        let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]; // 2x3
        let b = [7.0f32, 8.0, 9.0, 10.0, 11.0, 12.0]; // 3x2
        let mut out = [0.0f32; 4];
        batch_matmul_f32(&a, &[2, 3], &b, &[3, 2], false, false, &mut out, &[2, 2]);
        assert_eq!(out, [58.0, 64.0, 139.0, 154.0]);
    }

    #[test]
    fn adjoints_and_batch_broadcast() {
        // lhs [2,1,3,2] stored, adj_x -> logical [2,1,2,3].
        // rhs [3,2,3] stored, adj_y -> logical [3,3,2].
        // Batch dims [2,1] x [3] -> [2,3]; out [2,3,2,2].
        let lhs: Vec<f32> = (0..12).map(|v| v as f32 * 0.5 - 2.0).collect();
        let rhs: Vec<f32> = (0..18).map(|v| (v % 7) as f32 - 3.0).collect();
        let mut out = vec![0.0f32; 24];
        batch_matmul_f32(&lhs, &[2, 1, 3, 2], &rhs, &[3, 2, 3], true, true, &mut out, &[2, 3, 2, 2]);
        let mut want = Vec::new();
        for b0 in 0..2 {
            for b1 in 0..3 {
                let l = transpose(&rows(&lhs[b0 * 6..b0 * 6 + 6], 3, 2));
                let r = transpose(&rows(&rhs[b1 * 6..b1 * 6 + 6], 2, 3));
                want.extend(matmul(&l, &r));
            }
        }
        assert_eq!(out, want);
    }

    #[test]
    fn adj_x_only_and_rank_mismatch() {
        // lhs [3,2] adj_x -> [2,3]; rhs [2,3,1] -> out [2,2,1].
        let lhs = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let rhs = [1.0f32, 0.0, -1.0, 2.0, 2.0, 2.0];
        let mut out = [0.0f32; 4];
        batch_matmul_f32(&lhs, &[3, 2], &rhs, &[2, 3, 1], true, false, &mut out, &[2, 2, 1]);
        let l = transpose(&rows(&lhs, 3, 2));
        let mut want = matmul(&l, &rows(&rhs[..3], 3, 1));
        want.extend(matmul(&l, &rows(&rhs[3..], 3, 1)));
        assert_eq!(out.to_vec(), want);
    }
}
