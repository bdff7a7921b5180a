//! TRANSPOSE with its dimensions coalesced and 2-D swaps tiled.
//!
//! The reference walks the output in order and reads the input with the
//! permuted strides: for NHWC -> NCHW every read of a row jumps a whole
//! pixel ahead, and each cache line fetched yields one value. Here the
//! shape is first reduced to the fewest dimensions (size-1 dimensions
//! dropped, input neighbours that stay neighbours merged: NHWC -> NCHW is
//! a `[H·W, C]` matrix transposed), then:
//! - the innermost dimension unmoved: row copies (the reference);
//! - the input's innermost dimension moved to the output's second-last
//!   place (a batch of matrix transposes): square tiles, so both the rows
//!   read and the rows written stay in cache; 4-byte elements on AVX2 as
//!   8x8 register transposes, 1-byte ones as 16x16;
//! - anything else: the reference.

#[cfg(target_arch = "x86_64")]
use crate::optimized::isa::Avx2Fma;
use crate::optimized::isa::IsaLevel;

/// `input` (row-major, `in_shape`) with output dimension `i` its dimension
/// `perm[i]`; the same contract as [`crate::reference::transpose::transpose`].
pub fn transpose<T: Copy>(input: &[T], in_shape: &[usize], perm: &[usize], output: &mut [T]) {
    drive(input, in_shape, perm, output, transpose_2d)
}

/// Plain 4-byte values without padding, which [`transpose_x32`] may move
/// as the bits of an `f32` lane.
pub trait X32: Copy + sealed::Sealed {}
impl X32 for f32 {}
impl X32 for u32 {}
impl X32 for i32 {}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for u32 {}
    impl Sealed for i32 {}
    pub trait Sealed8 {}
    impl Sealed8 for u8 {}
    impl Sealed8 for i8 {}
}

/// [`transpose`] for 4-byte elements (only their bits move), with 8x8
/// register transposes where `isa` allows AVX2.
pub fn transpose_x32<T: X32>(isa: IsaLevel, input: &[T], in_shape: &[usize], perm: &[usize], output: &mut [T]) {
    #[cfg(target_arch = "x86_64")]
    if let Some(t) = Avx2Fma::new(isa) {
        return drive(input, in_shape, perm, output, |x, stride, a, b, out| {
            avx2::transpose_2d(t, x, stride, a, b, out)
        });
    }
    let _ = isa;
    transpose(input, in_shape, perm, output)
}

/// Plain bytes, which [`transpose_x8`] moves as the bytes of a vector.
pub trait X8: Copy + sealed::Sealed8 {}
impl X8 for u8 {}
impl X8 for i8 {}

/// [`transpose`] for 1-byte elements, with 16x16 register transposes
/// where `isa` allows AVX2 (the per-value tile loop ran 19x LiteRT's time
/// on an int8 NHWC -> NCHW).
pub fn transpose_x8<T: X8>(isa: IsaLevel, input: &[T], in_shape: &[usize], perm: &[usize], output: &mut [T]) {
    #[cfg(target_arch = "x86_64")]
    if let Some(t) = Avx2Fma::new(isa) {
        return drive(input, in_shape, perm, output, |x, stride, a, b, out| {
            avx2::transpose_2d_x8(t, x, stride, a, b, out)
        });
    }
    let _ = isa;
    transpose(input, in_shape, perm, output)
}

/// The coalescing and the walk over matrix transposes, with `swap` doing
/// each matrix (see [`transpose_2d`]).
fn drive<T: Copy>(
    input: &[T],
    in_shape: &[usize],
    perm: &[usize],
    output: &mut [T],
    swap: impl Fn(&[T], usize, usize, usize, &mut [T]),
) {
    let total: usize = in_shape.iter().product();
    if total == 0 {
        return;
    }
    let (shape, perm) = coalesce(in_shape, perm);
    let rank = shape.len();
    if rank <= 1 {
        output[..total].copy_from_slice(&input[..total]);
        return;
    }
    if perm[rank - 1] == rank - 1 || perm[rank - 2] != rank - 1 {
        return crate::reference::transpose::transpose(&input[..total], &shape, &perm, &mut output[..total]);
    }
    // Output `[outer..., a, b]`, with `a` the input's innermost dimension
    // (stride 1) and `b` input dimension `perm[rank - 1]`.
    let mut in_strides = vec![1usize; rank];
    for d in (0..rank - 1).rev() {
        in_strides[d] = in_strides[d + 1] * shape[d + 1];
    }
    let (a, b) = (shape[rank - 1], shape[perm[rank - 1]]);
    let b_stride = in_strides[perm[rank - 1]];
    let outer_dims: Vec<usize> = perm[..rank - 2].iter().map(|&p| shape[p]).collect();
    let outer_strides: Vec<usize> = perm[..rank - 2].iter().map(|&p| in_strides[p]).collect();
    let mut counter = vec![0usize; outer_dims.len()];
    let mut base = 0usize;
    for block in output[..total].chunks_exact_mut(a * b) {
        // The matrix's last value is `(b - 1) * b_stride + a - 1` past `base`.
        swap(&input[base..base + (b - 1) * b_stride + a], b_stride, a, b, block);
        // Odometer step over the outer output dimensions.
        let mut d = outer_dims.len();
        while d > 0 {
            d -= 1;
            counter[d] += 1;
            base += outer_strides[d];
            if counter[d] < outer_dims[d] {
                break;
            }
            base -= outer_strides[d] * outer_dims[d];
            counter[d] = 0;
        }
    }
}

/// Tile edge: 16 values of 4 bytes are one cache line.
const TILE: usize = 16;

/// `out[i][j] = input[j * stride + i]` for `i < a`, `j < b` (`out` is
/// `a x b`, row-major), tile by tile.
fn transpose_2d<T: Copy>(input: &[T], stride: usize, a: usize, b: usize, out: &mut [T]) {
    for i0 in (0..a).step_by(TILE) {
        let i1 = (i0 + TILE).min(a);
        for j0 in (0..b).step_by(TILE) {
            let j1 = (j0 + TILE).min(b);
            for i in i0..i1 {
                let row = &mut out[i * b + j0..i * b + j1];
                for (o, j) in row.iter_mut().zip(j0..j1) {
                    *o = input[j * stride + i];
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
    use super::*;
    use std::arch::x86_64::*;

    /// [`super::transpose_2d`] on 4-byte values: 8x8 blocks through
    /// registers, the ragged edges as the scalar version.
    pub(super) fn transpose_2d<T: X32>(t: Avx2Fma, input: &[T], stride: usize, a: usize, b: usize, out: &mut [T]) {
        let _ = t;
        assert!(out.len() >= a * b && (b == 0 || a == 0 || input.len() >= (b - 1) * stride + a));
        let (a8, b8) = (a / 8 * 8, b / 8 * 8);
        for i0 in (0..a8).step_by(8) {
            for j0 in (0..b8).step_by(8) {
                // SAFETY: the token proves AVX2; rows j0..j0+8 of the input
                // are read at columns i0..i0+8 (< a, within the asserted
                // length) and rows i0..i0+8 of `out` written at columns
                // j0..j0+8 (< b); `T` is a plain 4-byte value (`X32`),
                // moved as the bits of an f32 lane.
                unsafe {
                    block8(
                        input.as_ptr().add(j0 * stride + i0) as *const f32,
                        stride,
                        out.as_mut_ptr().add(i0 * b + j0) as *mut f32,
                        b,
                    )
                }
            }
        }
        // The right-hand columns and bottom rows the blocks left.
        for i in 0..a {
            let j_from = if i < a8 { b8 } else { 0 };
            for j in j_from..b {
                out[i * b + j] = input[j * stride + i];
            }
        }
    }

    /// [`super::transpose_2d`] on bytes: 16x16 blocks through registers,
    /// the ragged edges as the scalar version.
    pub(super) fn transpose_2d_x8<T: X8>(t: Avx2Fma, input: &[T], stride: usize, a: usize, b: usize, out: &mut [T]) {
        let _ = t;
        assert!(out.len() >= a * b && (b == 0 || a == 0 || input.len() >= (b - 1) * stride + a));
        let (a16, b16) = (a / 16 * 16, b / 16 * 16);
        for i0 in (0..a16).step_by(16) {
            for j0 in (0..b16).step_by(16) {
                // SAFETY: the token proves AVX2 (SSE2 suffices); rows
                // j0..j0+16 of the input are read at columns i0..i0+16
                // (< a, within the asserted length) and rows i0..i0+16 of
                // `out` written at columns j0..j0+16 (< b); `T` is a byte.
                unsafe {
                    block16_x8(
                        input.as_ptr().add(j0 * stride + i0) as *const u8,
                        stride,
                        out.as_mut_ptr().add(i0 * b + j0) as *mut u8,
                        b,
                    )
                }
            }
        }
        for i in 0..a {
            let j_from = if i < a16 { b16 } else { 0 };
            for j in j_from..b {
                out[i * b + j] = input[j * stride + i];
            }
        }
    }

    /// Transpose the 16x16 byte block at `src` (rows `src_stride` apart)
    /// into `dst` (rows `dst_stride` apart): four rounds of interleaving
    /// row pairs `(2j, 2j + 1)` into rows `j` and `j + 8`, at 1, 2, 4 and 8
    /// bytes, leave output row `k` in register `rev4(k)` (the four index
    /// bits reversed).
    ///
    /// # Safety
    /// SSE2 available; 16 rows of 16 bytes readable at `src` and writable
    /// at `dst` with those strides.
    #[target_feature(enable = "avx2")]
    unsafe fn block16_x8(src: *const u8, src_stride: usize, dst: *mut u8, dst_stride: usize) {
        // SAFETY: within the 16x16 blocks the caller guarantees.
        unsafe {
            let mut r: [__m128i; 16] = std::array::from_fn(|k| _mm_loadu_si128(src.add(k * src_stride) as *const _));
            macro_rules! round {
                ($lo:ident, $hi:ident) => {{
                    let x = r;
                    for j in 0..8 {
                        r[j] = $lo(x[2 * j], x[2 * j + 1]);
                        r[j + 8] = $hi(x[2 * j], x[2 * j + 1]);
                    }
                }};
            }
            round!(_mm_unpacklo_epi8, _mm_unpackhi_epi8);
            round!(_mm_unpacklo_epi16, _mm_unpackhi_epi16);
            round!(_mm_unpacklo_epi32, _mm_unpackhi_epi32);
            round!(_mm_unpacklo_epi64, _mm_unpackhi_epi64);
            for (k, v) in r.iter().enumerate() {
                let row = (k as u8).reverse_bits() >> 4;
                _mm_storeu_si128(dst.add(row as usize * dst_stride) as *mut _, *v);
            }
        }
    }

    /// Transpose the 8x8 block at `src` (rows `src_stride` apart) into
    /// `dst` (rows `dst_stride` apart).
    ///
    /// # Safety
    /// AVX2 available; 8 rows of 8 values readable at `src` and writable
    /// at `dst` with those strides.
    #[target_feature(enable = "avx2")]
    unsafe fn block8(src: *const f32, src_stride: usize, dst: *mut f32, dst_stride: usize) {
        // SAFETY: within the 8x8 blocks the caller guarantees.
        unsafe {
            let r: [__m256; 8] = std::array::from_fn(|k| _mm256_loadu_ps(src.add(k * src_stride)));
            let t0 = _mm256_unpacklo_ps(r[0], r[1]);
            let t1 = _mm256_unpackhi_ps(r[0], r[1]);
            let t2 = _mm256_unpacklo_ps(r[2], r[3]);
            let t3 = _mm256_unpackhi_ps(r[2], r[3]);
            let t4 = _mm256_unpacklo_ps(r[4], r[5]);
            let t5 = _mm256_unpackhi_ps(r[4], r[5]);
            let t6 = _mm256_unpacklo_ps(r[6], r[7]);
            let t7 = _mm256_unpackhi_ps(r[6], r[7]);
            let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
            let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
            let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
            let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
            let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
            let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
            let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
            let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
            let o = [
                _mm256_permute2f128_ps::<0x20>(s0, s4),
                _mm256_permute2f128_ps::<0x20>(s1, s5),
                _mm256_permute2f128_ps::<0x20>(s2, s6),
                _mm256_permute2f128_ps::<0x20>(s3, s7),
                _mm256_permute2f128_ps::<0x31>(s0, s4),
                _mm256_permute2f128_ps::<0x31>(s1, s5),
                _mm256_permute2f128_ps::<0x31>(s2, s6),
                _mm256_permute2f128_ps::<0x31>(s3, s7),
            ];
            for (k, v) in o.iter().enumerate() {
                _mm256_storeu_ps(dst.add(k * dst_stride), *v);
            }
        }
    }
}

/// The fewest dimensions that describe the same transpose: size-1
/// dimensions dropped, and input dimensions `d, d + 1` merged wherever the
/// output keeps them next to each other in that order. Returns the merged
/// input shape and the permutation over it.
fn coalesce(in_shape: &[usize], perm: &[usize]) -> (Vec<usize>, Vec<usize>) {
    // Output order of the input dimensions that are not 1.
    let kept: Vec<usize> = perm.iter().copied().filter(|&p| in_shape[p] != 1).collect();
    // Group runs p, p+1, ... (skipping size-1 input dims between them).
    let next_kept = |p: usize| (p + 1..in_shape.len()).find(|&q| in_shape[q] != 1);
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for &p in &kept {
        match groups.last_mut() {
            Some(g) if next_kept(*g.last().unwrap_or(&p)) == Some(p) => g.push(p),
            _ => groups.push(vec![p]),
        }
    }
    // Order groups by their first input dimension to number them.
    let mut by_input: Vec<usize> = (0..groups.len()).collect();
    by_input.sort_by_key(|&g| groups[g][0]);
    let shape: Vec<usize> = by_input.iter().map(|&g| groups[g].iter().map(|&p| in_shape[p]).product()).collect();
    let mut rank_of = vec![0usize; groups.len()];
    for (r, &g) in by_input.iter().enumerate() {
        rank_of[g] = r;
    }
    let perm: Vec<usize> = (0..groups.len()).map(|g| rank_of[g]).collect();
    (shape, perm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimized::testutil::Rng;

    #[test]
    fn coalesces_nhwc_to_nchw_to_a_matrix() {
        assert_eq!(coalesce(&[1, 56, 56, 64], &[0, 3, 1, 2]), (vec![3136, 64], vec![1, 0]));
        assert_eq!(coalesce(&[2, 3, 4], &[0, 1, 2]), (vec![24], vec![0]));
        assert_eq!(coalesce(&[2, 1, 3, 4], &[2, 0, 3, 1]), (vec![2, 3, 4], vec![1, 0, 2]));
        assert_eq!(coalesce(&[1, 1], &[1, 0]), (vec![], vec![]));
    }

    /// Random shapes (size-1 dimensions among them) and permutations of
    /// rank 1-6 against the reference, for 1-, 2- and 4-byte elements.
    #[test]
    fn matches_reference_on_random_permutations() {
        let mut rng = Rng::new(0x7a25);
        for case in 0..600 {
            let rank = rng.range(1, 7);
            let shape: Vec<usize> = (0..rank).map(|_| rng.pick(&[1, 1, 2, 3, 5, 16, 17, 33])).collect();
            let mut perm: Vec<usize> = (0..rank).collect();
            for i in (1..rank).rev() {
                perm.swap(i, rng.range(0, i + 1));
            }
            let n: usize = shape.iter().product();
            if n > 200_000 {
                continue;
            }
            let x: Vec<u32> = (0..n as u32).map(|v| v.wrapping_mul(2654435761)).collect();
            let mut want = vec![0u32; n];
            crate::reference::transpose::transpose(&x, &shape, &perm, &mut want);
            let mut got = vec![0u32; n];
            transpose(&x, &shape, &perm, &mut got);
            assert_eq!(got, want, "case {case}: {shape:?} {perm:?}");
            for &isa in &crate::optimized::isa::available_levels() {
                let mut got = vec![0u32; n];
                transpose_x32(isa, &x, &shape, &perm, &mut got);
                assert_eq!(got, want, "case {case} {isa:?}: {shape:?} {perm:?}");
            }
            let x8: Vec<u8> = x.iter().map(|&v| v as u8).collect();
            let (mut w8, mut g8) = (vec![0u8; n], vec![0u8; n]);
            crate::reference::transpose::transpose(&x8, &shape, &perm, &mut w8);
            transpose(&x8, &shape, &perm, &mut g8);
            assert_eq!(g8, w8, "case {case} bytes: {shape:?} {perm:?}");
            for &isa in &crate::optimized::isa::available_levels() {
                let mut g8 = vec![0u8; n];
                transpose_x8(isa, &x8, &shape, &perm, &mut g8);
                assert_eq!(g8, w8, "case {case} {isa:?} bytes: {shape:?} {perm:?}");
            }
            let x16: Vec<u16> = x.iter().map(|&v| v as u16).collect();
            let (mut w16, mut g16) = (vec![0u16; n], vec![0u16; n]);
            crate::reference::transpose::transpose(&x16, &shape, &perm, &mut w16);
            transpose(&x16, &shape, &perm, &mut g16);
            assert_eq!(g16, w16, "case {case} halves: {shape:?} {perm:?}");
        }
    }
}
