//! BATCH_MATMUL's float products on the packed GEMM ([`gemm_f32`]), and
//! its int8 ones on the convolutions' int16 GEMM ([`matmul_i8`]).
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
use crate::optimized::qs8::{gemm_i32, PackedQs8};
use crate::quant::multiply_by_quantized_multiplier;
use crate::reference::quantized::BatchMatmulParams;

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
    scratch.pack_rhs(rhs, k, n, adj_y);
    matmul_f32_packed(isa, m, lhs, adj_x, scratch, out);
}

impl MatmulScratch {
    /// Pack a right-hand side stored `k x n` (or `n x k` when `adj_y`)
    /// for [`matmul_f32_packed`]: once for all the products that share it.
    pub fn pack_rhs(&mut self, rhs: &[f32], k: usize, n: usize, adj_y: bool) {
        if adj_y {
            self.rhs.repack(&rhs[..n * k], n, k);
        } else {
            self.rhs.repack_kn(&rhs[..k * n], k, n);
        }
    }
}

/// [`matmul_f32`] against the right-hand side [`MatmulScratch::pack_rhs`]
/// packed (its `k` and `n`).
pub fn matmul_f32_packed(
    isa: IsaLevel,
    m: usize,
    lhs: &[f32],
    adj_x: bool,
    scratch: &mut MatmulScratch,
    out: &mut [f32],
) {
    let (n, k) = (scratch.rhs.n(), scratch.rhs.k());
    assert!(lhs.len() >= m * k && out.len() >= m * n, "matmul operands too short");
    if m == 0 || n == 0 {
        return;
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

/// Buffers one thread's int8 products reuse.
#[derive(Debug)]
pub struct MatmulI8Scratch {
    /// The left-hand side as `x - lhs_zero_point`, rows of `2 * k2`.
    lhs: Vec<i16>,
    /// The right-hand side as `[n][k]` rows, and packed.
    rhs: Vec<i8>,
    packed: PackedQs8,
    n: usize,
    k: usize,
    acc: Vec<i32>,
}

impl Default for MatmulI8Scratch {
    fn default() -> MatmulI8Scratch {
        MatmulI8Scratch { lhs: Vec::new(), rhs: Vec::new(), packed: PackedQs8::empty(), n: 0, k: 0, acc: Vec::new() }
    }
}

/// One int8 matrix product of BATCH_MATMUL, bit-exact with
/// `reference::quantized::batch_matmul_quantized`: the right-hand side
/// packed per product for the convolutions' int16 GEMM (`gemm_i32`, with
/// `-rhs_zero_point` as the weights' offset), the left-hand side widened
/// with its zero point taken off, the exact int32 sums requantised as the
/// reference does (where its per-value walk took 59x LiteRT's time on 4
/// products of 64x64 matrices). Shapes as [`matmul_f32`].
#[allow(clippy::too_many_arguments)]
pub fn matmul_i8(
    isa: IsaLevel,
    p: &BatchMatmulParams,
    m: usize,
    n: usize,
    k: usize,
    lhs: &[i8],
    adj_x: bool,
    rhs: &[i8],
    adj_y: bool,
    out: &mut [i8],
    scratch: &mut MatmulI8Scratch,
) {
    assert!(lhs.len() >= m * k && rhs.len() >= k * n && out.len() >= m * n, "matmul operands too short");
    scratch.pack_rhs(p, rhs, k, n, adj_y);
    matmul_i8_packed(isa, p, m, lhs, adj_x, scratch, out);
}

impl MatmulI8Scratch {
    /// Pack an int8 right-hand side stored `k x n` (or `n x k` when
    /// `adj_y`) for [`matmul_i8_packed`]: once for all the products that
    /// share it.
    pub fn pack_rhs(&mut self, p: &BatchMatmulParams, rhs: &[i8], k: usize, n: usize, adj_y: bool) {
        self.rhs.clear();
        if adj_y {
            self.rhs.extend_from_slice(&rhs[..n * k]);
        } else {
            self.rhs.extend((0..n * k).map(|i| rhs[(i % k) * n + i / k]));
        }
        self.packed = PackedQs8::pack(&self.rhs, n, k, -p.rhs_zero_point);
        (self.n, self.k) = (n, k);
    }
}

/// [`matmul_i8`] against the right-hand side [`MatmulI8Scratch::pack_rhs`]
/// packed (its `k` and `n`; the same `p`).
pub fn matmul_i8_packed(
    isa: IsaLevel,
    p: &BatchMatmulParams,
    m: usize,
    lhs: &[i8],
    adj_x: bool,
    scratch: &mut MatmulI8Scratch,
    out: &mut [i8],
) {
    let (n, k) = (scratch.n, scratch.k);
    assert!(lhs.len() >= m * k && out.len() >= m * n, "matmul operands too short");
    if m == 0 || n == 0 {
        return;
    }
    let lda = 2 * k.div_ceil(2);
    scratch.lhs.clear();
    scratch.lhs.resize(m * lda, 0);
    for (r, row) in scratch.lhs.chunks_exact_mut(lda.max(1)).enumerate().take(m) {
        for (c, v) in row.iter_mut().enumerate().take(k) {
            let x = if adj_x { lhs[c * m + r] } else { lhs[r * k + c] };
            *v = (x as i32 - p.lhs_zero_point) as i16;
        }
    }
    let ldc = 16 * scratch.packed.panels();
    scratch.acc.clear();
    scratch.acc.resize(m * ldc, 0);
    if lda > 0 {
        gemm_i32(isa, m, &scratch.lhs, lda, &scratch.packed, &mut scratch.acc, ldc);
    }
    for (o, acc) in out[..m * n].chunks_exact_mut(n).zip(scratch.acc.chunks_exact(ldc)) {
        for (o, &a) in o.iter_mut().zip(acc) {
            let v = multiply_by_quantized_multiplier(a, p.multiplier, p.shift).wrapping_add(p.output_zero_point);
            *o = v.clamp(-128, 127) as i8;
        }
    }
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
    fn int8_matmul_matches_reference_exactly() {
        use crate::reference::quantized::batch_matmul_quantized;
        let mut rng = Rng::new(0xb38);
        let mut scratch = MatmulI8Scratch::default();
        let mut ran = 0;
        for case in 0..120usize {
            let (m, n, k) = (rng.range(1, 20), rng.range(1, 40), rng.range(0, 70));
            let (adj_x, adj_y) = (case % 2 == 1, case % 4 >= 2);
            let zp = |r: &mut Rng| r.range(0, 256) as i32 - 128;
            let scale = |r: &mut Rng| 0.001 + (r.f32() + 1.0) * 0.05;
            let (sl, zl, sr, zr) = (scale(&mut rng), zp(&mut rng), scale(&mut rng), zp(&mut rng));
            let Some(p) = BatchMatmulParams::new(sl, zl, sr, zr, scale(&mut rng) * 4.0, zp(&mut rng)) else {
                continue;
            };
            let l: Vec<i8> = (0..m * k).map(|_| rng.next_u64() as i8).collect();
            let r: Vec<i8> = (0..k * n).map(|_| rng.next_u64() as i8).collect();
            let ls = if adj_x { [k, m] } else { [m, k] };
            let rs = if adj_y { [n, k] } else { [k, n] };
            let mut want = vec![0i8; m * n];
            batch_matmul_quantized(&p, &l, &ls, &r, &rs, adj_x, adj_y, &mut want, &[m, n]);
            ran += 1;
            for &isa in &available_levels() {
                let mut got = vec![0i8; m * n];
                matmul_i8(isa, &p, m, n, k, &l, adj_x, &r, adj_y, &mut got, &mut scratch);
                assert_eq!(got, want, "{isa:?} m={m} n={n} k={k} adj_x={adj_x} adj_y={adj_y}");
            }
        }
        assert!(ran >= 100, "only {ran} cases had valid parameters");
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
