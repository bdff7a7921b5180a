//! BATCH_MATMUL's float products on the packed GEMM ([`gemm_f32`]).
//!
//! The right-hand side changes every invoke (attention's keys and values),
//! so it is packed per product: stored `k x n` it is already depth-major,
//! and each 16-column panel's depth step is a 64-byte copy
//! ([`PackedWeightsF32::repack_kn`]); stored `n x k` (`adj_y`) it packs
//! like a filter. Either way O(k n) copying against O(m k n)
//! multiply-adds, and the products then run on the register-blocked
//! micro-kernels that the convolutions use, where the in-place
//! dot-product kernel (`gemm_nt`) reduced eight lanes per output: 4
//! products of 64x64 matrices took 3.4x LiteRT's time there.

use crate::activation::ClampF32;
use crate::optimized::gemm::{gemm_f32, PackedWeightsF32};
use crate::optimized::isa::IsaLevel;

/// Buffers one thread's products reuse: the packed right-hand side and a
/// transposed left-hand side.
#[derive(Debug)]
pub struct MatmulScratch {
    rhs: PackedWeightsF32,
    lhs: Vec<f32>,
}

impl Default for MatmulScratch {
    fn default() -> MatmulScratch {
        MatmulScratch { rhs: PackedWeightsF32::empty(), lhs: Vec::new() }
    }
}

/// One matrix product, `out = L · R` (`m x n`, row-major), with `L` stored
/// `m x k` (or `k x m` when `adj_x`) and `R` stored `k x n` (or `n x k`
/// when `adj_y`). An `adj_x` left side is transposed into the scratch
/// first: the GEMM reads rows of depth.
#[allow(clippy::too_many_arguments)]
pub fn matmul_f32(
    isa: IsaLevel,
    m: usize,
    n: usize,
    k: usize,
    lhs: &[f32],
    adj_x: bool,
    rhs: &[f32],
    adj_y: bool,
    out: &mut [f32],
    scratch: &mut MatmulScratch,
) {
    assert!(lhs.len() >= m * k && rhs.len() >= k * n && out.len() >= m * n, "matmul operands too short");
    if m == 0 || n == 0 {
        return;
    }
    if adj_y {
        scratch.rhs.repack(&rhs[..n * k], n, k);
    } else {
        scratch.rhs.repack_kn(&rhs[..k * n], k, n);
    }
    let a = if adj_x {
        scratch.lhs.clear();
        scratch.lhs.resize(m * k, 0.0);
        crate::optimized::transpose::transpose_x32(isa, &lhs[..m * k], &[k, m], &[1, 0], &mut scratch.lhs);
        &scratch.lhs[..]
    } else {
        &lhs[..m * k]
    };
    gemm_f32(isa, m, k, a, k, &scratch.rhs, None, ClampF32::NONE, &mut out[..m * n], n);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimized::isa::available_levels;
    use crate::optimized::testutil::{assert_close, Rng};
    use crate::reference::batch_matmul::batch_matmul_f32;

    #[test]
    fn matmul_matches_reference_batch_matmul_for_every_transposition() {
        let mut rng = Rng::new(0xb3);
        let mut scratch = MatmulScratch::default();
        for case in 0..80usize {
            let (m, n, k) = (rng.range(1, 20), rng.range(1, 40), rng.range(0, 70));
            let (adj_x, adj_y) = (case % 2 == 1, case % 4 >= 2);
            let (l, r) = (rng.vec(m * k), rng.vec(k * n));
            let ls = if adj_x { [k, m] } else { [m, k] };
            let rs = if adj_y { [n, k] } else { [k, n] };
            let mut want = vec![0.0; m * n];
            batch_matmul_f32(&l, &ls, &r, &rs, adj_x, adj_y, &mut want, &[m, n]);
            let abs = |v: &[f32]| v.iter().map(|x| x.abs()).collect::<Vec<_>>();
            let mut scale = vec![0.0; m * n];
            batch_matmul_f32(&abs(&l), &ls, &abs(&r), &rs, adj_x, adj_y, &mut scale, &[m, n]);
            for &isa in &available_levels() {
                let mut got = vec![f32::NAN; m * n];
                // The scratch carries the previous case's (larger or
                // smaller) packing: it must be rebuilt, not reused stale.
                matmul_f32(isa, m, n, k, &l, adj_x, &r, adj_y, &mut got, &mut scratch);
                let ctx = format!("{isa:?} m={m} n={n} k={k} adj_x={adj_x} adj_y={adj_y}");
                assert_close(&got, &want, &scale, 1e-5, &ctx);
            }
        }
    }

    #[test]
    fn repack_kn_equals_packing_the_transpose() {
        let mut rng = Rng::new(0x9a);
        let mut packed = PackedWeightsF32::empty();
        for (k, n) in [(1, 1), (3, 17), (64, 64), (5, 33), (0, 4), (7, 0)] {
            let w = rng.vec(k * n);
            let wt: Vec<f32> = (0..n * k).map(|i| w[(i % k) * n + i / k]).collect();
            packed.repack_kn(&w, k, n);
            let want = PackedWeightsF32::pack(&wt, n, k);
            assert_eq!((packed.n(), packed.k()), (n, k));
            assert_eq!(packed.panel_data(), want.panel_data(), "k={k} n={n}");
        }
    }
}
