//! Float GEMM on weights in their file layout: `C = clamp(A · Wᵀ + bias)`
//! with `W` `[n, k]` row-major, read in place -- no packing.
//!
//! A conv's OHWI filter and FULLY_CONNECTED's weights are both `[n, k]`
//! with the depth contiguous, and so is each row of `A` (an NHWC pixel, or
//! an im2col row). So every output is a dot product of two contiguous
//! vectors. The micro-kernel `f32_gemm_nt_MxN_avx2_fma` keeps `M × N`
//! eight-lane partial sums (`M` rows of A against `N` rows of W), walks the
//! depth eight values at a time (the tail with masked loads), and reduces
//! each accumulator horizontally once at the end, where bias and clamp are
//! applied.
//!
//! Why not pack: packing copies every weight at prepare (17 MB for
//! MobileNet v1), which costs more start-up time than loading the model.
//! Here prepare does nothing with the weights, and they stay zero-copy in
//! the model's memory map. The price is the horizontal reduction per
//! output, small next to `k / 8` FMAs for the depths real networks use.
//!
//! Blocking: columns (rows of W) are taken in groups whose weights fit in
//! half of L2 and swept against all rows of A, so each weight row is read
//! from memory once per group rather than once per tile.

use crate::activation::ClampF32;
use crate::optimized::isa::{Avx2Fma, IsaLevel};

/// Bytes of weights per column group (half a 512 KiB L2).
const L2_BLOCK_BYTES: usize = 256 * 1024;

/// `c[i][o] = clamp(sum_p a[i][p] * w[o][p] + bias[o])` for `i < m`, `o < n`.
///
/// `a`: `m` rows of `k` values, row stride `lda`; `w`: `n` rows of `k`
/// values, contiguous; `c`: `m` rows of `n` values, row stride `ldc` (other
/// values untouched). `isa` is clamped to what the CPU supports.
#[allow(clippy::too_many_arguments)]
pub fn gemm_nt_f32(
    isa: IsaLevel,
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    w: &[f32],
    bias: Option<&[f32]>,
    clamp: ClampF32,
    c: &mut [f32],
    ldc: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(lda >= k && ldc >= n, "strides lda={lda} (k={k}), ldc={ldc} (n={n})");
    assert!(a.len() >= (m - 1) * lda + k, "a: {} values for m={m} lda={lda} k={k}", a.len());
    assert!(w.len() >= n * k, "w: {} values for n={n} k={k}", w.len());
    assert!(c.len() >= (m - 1) * ldc + n, "c: {} values for m={m} ldc={ldc} n={n}", c.len());
    if let Some(b) = bias {
        assert!(b.len() >= n, "bias: {} values for n={n}", b.len());
    }
    match Avx2Fma::new(isa) {
        Some(token) => drive(token, m, n, k, a, lda, w, bias, clamp, c, ldc),
        None => drive(Scalar, m, n, k, a, lda, w, bias, clamp, c, ldc),
    }
}

/// A tile computer: `mr <= MR` rows of A against `nr <= NR` rows of W over
/// the full depth, finishing with bias and clamp.
trait NtKernel: Copy {
    const MR: usize;
    const NR: usize;
    /// Columns per tile when there is a single row (GEMV): more independent
    /// accumulators to cover the FMA latency.
    const NR_GEMV: usize;
    #[allow(clippy::too_many_arguments)]
    fn tile(
        self,
        mr: usize,
        nr: usize,
        k: usize,
        a: &[f32],
        lda: usize,
        w: &[f32],
        bias: &[f32],
        clamp: ClampF32,
        c: &mut [f32],
        ldc: usize,
    );
}

#[allow(clippy::too_many_arguments)]
fn drive<K: NtKernel>(
    kern: K,
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    w: &[f32],
    bias: Option<&[f32]>,
    clamp: ClampF32,
    c: &mut [f32],
    ldc: usize,
) {
    let nr_max = if m == 1 { K::NR_GEMV } else { K::NR };
    let group = (L2_BLOCK_BYTES / (k.max(1) * 4)).max(nr_max) / nr_max * nr_max;
    let zeros = [0.0f32; 8];
    for j0 in (0..n).step_by(group) {
        let j_end = (j0 + group).min(n);
        let mut i = 0;
        while i < m {
            let mr = K::MR.min(m - i);
            let a_blk = &a[i * lda..(i + mr - 1) * lda + k];
            let mut j = j0;
            while j < j_end {
                let nr = nr_max.min(j_end - j);
                let b = bias.map_or(&zeros[..nr], |b| &b[j..j + nr]);
                let c_blk = &mut c[i * ldc + j..(i + mr - 1) * ldc + j + nr];
                kern.tile(mr, nr, k, a_blk, lda, &w[j * k..(j + nr) * k], b, clamp, c_blk, ldc);
                j += nr;
            }
            i += mr;
        }
    }
}

#[derive(Clone, Copy)]
struct Scalar;

impl NtKernel for Scalar {
    const MR: usize = 2;
    const NR: usize = 4;
    const NR_GEMV: usize = 4;
    fn tile(
        self,
        mr: usize,
        nr: usize,
        k: usize,
        a: &[f32],
        lda: usize,
        w: &[f32],
        bias: &[f32],
        clamp: ClampF32,
        c: &mut [f32],
        ldc: usize,
    ) {
        for r in 0..mr {
            let x = &a[r * lda..r * lda + k];
            for o in 0..nr {
                let wr = &w[o * k..(o + 1) * k];
                // Eight partial sums, as the SIMD kernel keeps, so both
                // variants round alike for depths that are multiples of 8.
                let mut part = [0.0f32; 8];
                for (xc, wc) in x.chunks(8).zip(wr.chunks(8)) {
                    for ((p, &xv), &wv) in part.iter_mut().zip(xc).zip(wc) {
                        *p += xv * wv;
                    }
                }
                let s = part.iter().sum::<f32>();
                c[r * ldc + o] = clamp.apply(s + bias[o]);
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
impl NtKernel for Avx2Fma {
    const MR: usize = Scalar::MR;
    const NR: usize = Scalar::NR;
    const NR_GEMV: usize = Scalar::NR_GEMV;
    #[allow(clippy::too_many_arguments)]
    fn tile(
        self,
        mr: usize,
        nr: usize,
        k: usize,
        a: &[f32],
        lda: usize,
        w: &[f32],
        bias: &[f32],
        clamp: ClampF32,
        c: &mut [f32],
        ldc: usize,
    ) {
        Scalar.tile(mr, nr, k, a, lda, w, bias, clamp, c, ldc)
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
    use super::NtKernel;
    use crate::activation::ClampF32;
    use crate::optimized::isa::Avx2Fma;
    use std::arch::x86_64::*;

    impl NtKernel for Avx2Fma {
        const MR: usize = 6;
        const NR: usize = 2;
        const NR_GEMV: usize = 8;
        fn tile(
            self,
            mr: usize,
            nr: usize,
            k: usize,
            a: &[f32],
            lda: usize,
            w: &[f32],
            bias: &[f32],
            clamp: ClampF32,
            c: &mut [f32],
            ldc: usize,
        ) {
            assert!((1..=6).contains(&mr) && (1..=8).contains(&nr) && (mr == 1 || nr <= 2));
            assert!(a.len() >= (mr - 1) * lda + k && w.len() >= nr * k && c.len() >= (mr - 1) * ldc + nr);
            assert!(bias.len() >= nr);
            macro_rules! go {
                ($m:literal, $n:literal) => {
                    // SAFETY: AVX2+FMA are present (the token exists); the
                    // asserts above give the slice extents the kernel reads
                    // and writes.
                    unsafe { f32_gemm_nt_avx2_fma::<$m, $n>(k, a, lda, w, bias, clamp, c, ldc) }
                };
            }
            match (mr, nr) {
                (1, 8) => go!(1, 8),
                (1, 7) => go!(1, 7),
                (1, 6) => go!(1, 6),
                (1, 5) => go!(1, 5),
                (1, 4) => go!(1, 4),
                (1, 3) => go!(1, 3),
                (1, 2) => go!(1, 2),
                (1, _) => go!(1, 1),
                (2, 2) => go!(2, 2),
                (2, _) => go!(2, 1),
                (3, 2) => go!(3, 2),
                (3, _) => go!(3, 1),
                (4, 2) => go!(4, 2),
                (4, _) => go!(4, 1),
                (5, 2) => go!(5, 2),
                (5, _) => go!(5, 1),
                (_, 2) => go!(6, 2),
                (_, _) => go!(6, 1),
            }
        }
    }

    /// Lane mask for the last `rem` (1..=7) values of a depth.
    #[inline(always)]
    unsafe fn tail_mask(rem: usize) -> __m256i {
        // SAFETY: plain register arithmetic (AVX2 enabled by the caller).
        unsafe {
            let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            _mm256_cmpgt_epi32(_mm256_set1_epi32(rem as i32), lanes)
        }
    }

    /// Sum of the eight lanes.
    #[inline(always)]
    unsafe fn hsum(v: __m256) -> f32 {
        // SAFETY: register-only intrinsics (AVX enabled by the caller).
        unsafe {
            let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)))
        }
    }

    /// `f32_gemm_nt_MxN_avx2_fma`: `M` rows of A (stride `lda`) against `N`
    /// contiguous rows of W, depth `k`, into `c` (stride `ldc`).
    ///
    /// # Safety
    /// AVX2 and FMA must be available; `a` must hold `(M-1)*lda + k` values,
    /// `w` `N*k`, `bias` `N`, and `c` `(M-1)*ldc + N`.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn f32_gemm_nt_avx2_fma<const M: usize, const N: usize>(
        k: usize,
        a: &[f32],
        lda: usize,
        w: &[f32],
        bias: &[f32],
        clamp: ClampF32,
        c: &mut [f32],
        ldc: usize,
    ) {
        // SAFETY: every pointer below is `a`/`w` advanced by less than the
        // extents the caller guarantees: rows `r < M` of A and `o < N` of W
        // are read at depth `p < k` only (the tail through a mask that
        // suppresses lanes at or past `k`, which are never touched).
        unsafe {
            let ap: [*const f32; M] = std::array::from_fn(|r| a.as_ptr().add(r * lda));
            let wp: [*const f32; N] = std::array::from_fn(|o| w.as_ptr().add(o * k));
            let mut acc = [[_mm256_setzero_ps(); N]; M];
            let mut p = 0;
            while p + 8 <= k {
                let wv: [__m256; N] = std::array::from_fn(|o| _mm256_loadu_ps(wp[o].add(p)));
                for r in 0..M {
                    let x = _mm256_loadu_ps(ap[r].add(p));
                    for o in 0..N {
                        acc[r][o] = _mm256_fmadd_ps(x, wv[o], acc[r][o]);
                    }
                }
                p += 8;
            }
            if p < k {
                let mask = tail_mask(k - p);
                let x: [__m256; M] = std::array::from_fn(|r| _mm256_maskload_ps(ap[r].add(p), mask));
                for o in 0..N {
                    let wv = _mm256_maskload_ps(wp[o].add(p), mask);
                    for r in 0..M {
                        acc[r][o] = _mm256_fmadd_ps(x[r], wv, acc[r][o]);
                    }
                }
            }
            let cp = c.as_mut_ptr();
            let (lo, hi) = (_mm_set1_ps(clamp.min), _mm_set1_ps(clamp.max));
            let mut r0 = 0;
            if N == 2 {
                // Two rows of two columns at a time: the four dot products
                // end up in one register.
                while r0 + 2 <= M {
                    let h0 = _mm256_hadd_ps(acc[r0][0], acc[r0][1]);
                    let h1 = _mm256_hadd_ps(acc[r0 + 1][0], acc[r0 + 1][1]);
                    let h = _mm256_hadd_ps(h0, h1);
                    let s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
                    let b = _mm_setr_ps(bias[0], bias[1], bias[0], bias[1]);
                    let v = _mm_min_ps(hi, _mm_max_ps(lo, _mm_add_ps(s, b)));
                    _mm_storel_epi64(cp.add(r0 * ldc) as *mut __m128i, _mm_castps_si128(v));
                    _mm_storel_epi64(cp.add((r0 + 1) * ldc) as *mut __m128i, _mm_castps_si128(_mm_movehl_ps(v, v)));
                    r0 += 2;
                }
            }
            #[allow(clippy::needless_range_loop)] // rows index `acc` and `c` alike
            for r in r0..M {
                // Four columns at a time: three horizontal adds leave the
                // four dot products in one register (low and high halves
                // still to be added), so bias, clamp and store are vector ops.
                let mut o = 0;
                while o + 4 <= N {
                    let h01 = _mm256_hadd_ps(acc[r][o], acc[r][o + 1]);
                    let h23 = _mm256_hadd_ps(acc[r][o + 2], acc[r][o + 3]);
                    let h = _mm256_hadd_ps(h01, h23);
                    let s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
                    let v = _mm_add_ps(s, _mm_loadu_ps(bias.as_ptr().add(o)));
                    _mm_storeu_ps(cp.add(r * ldc + o), _mm_min_ps(hi, _mm_max_ps(lo, v)));
                    o += 4;
                }
                while o < N {
                    *cp.add(r * ldc + o) = clamp.apply(hsum(acc[r][o]) + bias[o]);
                    o += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimized::isa::available_levels;
    use crate::optimized::testutil::{assert_close, Rng};
    use crate::reference::fully_connected::fully_connected_f32;

    #[test]
    fn nt_gemm_matches_reference_on_random_shapes() {
        let mut rng = Rng::new(0x7e57);
        for case in 0..150usize {
            let m = rng.range(1, 14);
            let k = if case.is_multiple_of(10) { rng.range(500, 1300) } else { rng.range(1, 70) };
            let n = rng.range(1, 40);
            let a = rng.vec(m * k);
            let w = rng.vec(n * k);
            let bias = if case.is_multiple_of(3) { None } else { Some(rng.vec(n)) };
            let clamp = if case.is_multiple_of(2) { ClampF32::RELU6 } else { ClampF32::NONE };
            let mut want = vec![0.0; m * n];
            fully_connected_f32(&a, &w, bias.as_deref(), &mut want, m, k, n, clamp);
            let abs = |v: &[f32]| v.iter().map(|x| x.abs()).collect::<Vec<_>>();
            let mut scale = vec![0.0; m * n];
            let ab = bias.as_deref().map(abs);
            fully_connected_f32(&abs(&a), &abs(&w), ab.as_deref(), &mut scale, m, k, n, ClampF32::NONE);
            for &isa in &available_levels() {
                // Strided A and C with sentinels: nothing outside the block
                // may be written, NaN padding in A must never be read.
                let (lda, ldc) = (k + 3, n + 5);
                let mut a_s = vec![f32::NAN; (m - 1) * lda + k];
                for i in 0..m {
                    a_s[i * lda..i * lda + k].copy_from_slice(&a[i * k..(i + 1) * k]);
                }
                let mut c = vec![-7.0; m * ldc];
                gemm_nt_f32(isa, m, n, k, &a_s, lda, &w, bias.as_deref(), clamp, &mut c, ldc);
                let mut got = vec![0.0; m * n];
                for i in 0..m {
                    got[i * n..(i + 1) * n].copy_from_slice(&c[i * ldc..i * ldc + n]);
                    assert!(c[i * ldc + n..(i + 1) * ldc].iter().all(|&v| v == -7.0), "{isa:?} wrote past n");
                }
                assert_close(&got, &want, &scale, 1e-5, &format!("gemm_nt {isa:?} m={m} k={k} n={n}"));
            }
        }
    }

    #[test]
    fn nt_gemm_zero_depth_is_bias() {
        for &isa in &available_levels() {
            let mut c = [9.0; 6];
            gemm_nt_f32(isa, 2, 3, 0, &[], 0, &[], Some(&[1.0, -2.0, 7.0]), ClampF32::RELU6, &mut c, 3);
            assert_eq!(c, [1.0, 0.0, 6.0, 1.0, 0.0, 6.0]);
        }
    }
}
