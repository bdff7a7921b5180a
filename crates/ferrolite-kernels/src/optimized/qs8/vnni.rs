//! The int8 conv on AVX-512 VNNI: `qs8_gemm_{1..6}x32c4_vnni` with the
//! requantisation fused, bit-exact with the reference like every `qs8` path.
//!
//! `vpdpbusd` multiplies four unsigned bytes by four signed bytes and adds
//! the four products to an int32 lane: 64 multiply-adds per instruction,
//! four times the AVX2 `vpmaddwd` path's. The weights are the raw int8
//! values, packed per 16-channel panel as one 64-byte register per quad of
//! depth (channel `c`'s taps `4t .. 4t + 4` in bytes `4c .. 4c + 4` of
//! quad `t`). The activations must be unsigned, so the im2col stores
//! `u = x + 128`, and since the reference sums `(x + input_offset) * w`:
//!
//! `sum (x + off) w = sum u w + (off - 128) sum w`
//!
//! The second term is a per-channel constant, added to the bias before the
//! accumulators start from it (wrapping, like the reference's sums: equal
//! modulo 2^32, so equal). A padding tap, which the reference skips, holds
//! `u = 128 - off`, whose product cancels its share of the correction;
//! the depth is padded to a whole quad with zero weights.
//!
//! Each sum then goes through the AVX2 requantisation (`avx2::requant16`,
//! one 256-bit half at a time), so the outputs are those of the AVX2 path.

use super::avx2::{requant16, rq_lanes, Epilogue};
use super::{Q8, RQ_FIELDS};
use crate::optimized::isa::Avx512Vnni;
use std::arch::x86_64::*;

/// Channels per panel: one 512-bit register of int32 sums.
const NR: usize = 16;

/// An int8 conv's weights packed for `vpdpbusd`, with the offset
/// correction per channel.
#[derive(Clone, Debug)]
pub(crate) struct VnniConv {
    token: Avx512Vnni,
    /// Depth rounded up to 4: the im2col row length in bytes.
    pub(crate) k4: usize,
    /// Per group, panels of `k4 / 4` quads of 64 bytes.
    packed: Vec<Vec<i8>>,
    /// Per group, `(input_offset - 128) * sum_k w[c][k]` (wrapping) per
    /// channel of its panels (zero past the group's channels).
    corr: Vec<Vec<i32>>,
    /// The byte a padding tap holds: `128 - input_offset`.
    pub(crate) pad: u8,
}

impl VnniConv {
    /// `None` where a padding tap's byte would not be a `u8` (an input
    /// zero point outside int8).
    pub(crate) fn new<W: Q8>(
        token: Avx512Vnni,
        filter: &[W],
        groups: usize,
        per_group: usize,
        depth: usize,
        input_offset: i32,
    ) -> Option<VnniConv> {
        if depth == 0 || !W::SIGNED {
            return None;
        }
        let pad = u8::try_from(128i32.checked_sub(input_offset)?).ok()?;
        let k4 = depth.div_ceil(4) * 4;
        let panels = per_group.div_ceil(NR);
        let mut packed = Vec::with_capacity(groups);
        let mut corr = Vec::with_capacity(groups);
        for g in 0..groups {
            let mut buf = vec![0i8; panels * k4 * NR];
            let mut sums = vec![0i32; panels * NR];
            for (oc, w) in filter[g * per_group * depth..].chunks_exact(depth).take(per_group).enumerate() {
                let (j, c) = (oc / NR, oc % NR);
                let panel = &mut buf[j * k4 * NR..(j + 1) * k4 * NR];
                for (k, &v) in w.iter().enumerate() {
                    panel[(k / 4) * 64 + 4 * c + k % 4] = v.to_i32() as i8;
                }
                let sum = w.iter().fold(0i32, |s, &v| s.wrapping_add(v.to_i32()));
                sums[oc] = input_offset.wrapping_sub(128).wrapping_mul(sum);
            }
            packed.push(buf);
            corr.push(sums);
        }
        Some(VnniConv { token, k4, packed, corr, pad })
    }

    /// Group `g`'s bias (panel-padded, as in `epi.bias`) plus its offset
    /// correction, into `out`.
    pub(crate) fn start_values(&self, g: usize, bias16: &[i32], out: &mut Vec<i32>) {
        out.clear();
        out.extend(self.corr[g].iter().zip(bias16).map(|(&c, &b)| c.wrapping_add(b)));
    }

    /// The `m` rows of `a` (`k4` bytes each, `u = x + 128`) against group
    /// `g`'s panels, requantised into `out` (rows at stride `ldo`, the
    /// group's `cols` channels). `epi.bias` holds [`Self::start_values`].
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn gemm_requant<T: Q8>(
        &self,
        g: usize,
        m: usize,
        a: &[u8],
        epi: &Epilogue<'_>,
        out: &mut [T],
        ldo: usize,
        cols: usize,
    ) {
        let (w, k4) = (&self.packed[g], self.k4);
        let panels = cols.div_ceil(NR);
        if m == 0 || cols == 0 {
            return;
        }
        assert!(k4.is_multiple_of(4) && w.len() >= panels * k4 * NR && a.len() >= m * k4);
        assert!(epi.rq.len() >= panels * RQ_FIELDS * NR && epi.bias.len() >= panels * NR);
        assert!(ldo >= cols && out.len() >= (m - 1) * ldo + cols);
        let _ = self.token;
        let o = out.as_mut_ptr() as *mut u8;
        // Panel pairs outside, row tiles inside: a pair's weights stay in
        // L1 while every row of the block (in L2) passes over them.
        let mut j = 0;
        while j < panels {
            let pair = panels - j >= 2;
            let nc = (cols - j * NR).min(if pair { 2 * NR } else { NR });
            let mut r = 0;
            while r < m {
                let rows = (m - r).min(6);
                let args = (
                    k4,
                    a[r * k4..].as_ptr(),
                    w[j * k4 * NR..].as_ptr(),
                    k4 * NR,
                    epi.rq[j * RQ_FIELDS * NR..].as_ptr(),
                    epi.bias[j * NR..].as_ptr(),
                    epi,
                    // SAFETY (pointer only): row `r`, column `16 j` lie in
                    // `out` (asserted above).
                    unsafe { o.add(r * ldo + j * NR) },
                    ldo,
                    nc,
                );
                // SAFETY: the token proves AVX-512 VNNI; the asserts above
                // bound every access: rows `r .. r + rows` of `k4` bytes,
                // panels `j, j + 1` of `k4 * 16` bytes, their epilogue
                // constants, `nc` bytes of each output row (`T` is a byte).
                unsafe {
                    macro_rules! call {
                        ($p:literal) => {
                            match rows {
                                1 => tile::<T, 1, $p>(args),
                                2 => tile::<T, 2, $p>(args),
                                3 => tile::<T, 3, $p>(args),
                                4 => tile::<T, 4, $p>(args),
                                5 => tile::<T, 5, $p>(args),
                                _ => tile::<T, 6, $p>(args),
                            }
                        };
                    }
                    if pair {
                        call!(2)
                    } else {
                        call!(1)
                    }
                }
                r += rows;
            }
            j += if pair { 2 } else { 1 };
        }
    }
}

/// The arguments of [`tile`]: depth `k4`, the first row, the first panel,
/// the panel stride, its epilogue constants and start values, the
/// epilogue, the output, its row stride, and the tile's columns.
type TileArgs<'a> =
    (usize, *const u8, *const i8, usize, *const i32, *const i32, &'a Epilogue<'a>, *mut u8, usize, usize);

/// `qs8_gemm_{M}x{16 P}c4_vnni`: `M` rows x `P` panels, `M * P` int32
/// accumulators starting from the start values; per quad of depth, `P`
/// weight loads, one broadcast of each row's four bytes, `M * P`
/// `vpdpbusd`; then the requantisation and `nc` bytes stored per row.
///
/// # Safety
/// AVX-512 VNNI (and AVX2); `M` rows of `k4` bytes from `a` (rows `k4`
/// apart), `P` panels of `k4 * 16` bytes `stride` apart from `w`,
/// `RQ_FIELDS * 16 * P` constants and `16 * P` start values, `M` output
/// rows of `nc <= 16 P` bytes at stride `ldo`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2")]
unsafe fn tile<T: Q8, const M: usize, const P: usize>(args: TileArgs<'_>) {
    let (k4, a, w, stride, rq, start, epi, out, ldo, nc) = args;
    // SAFETY: per the contract.
    unsafe {
        let mut acc: [[__m512i; M]; P] =
            std::array::from_fn(|j| [_mm512_loadu_si512(start.add(j * NR) as *const _); M]);
        let rows: [*const u8; M] = std::array::from_fn(|r| a.add(r * k4));
        for t in 0..k4 / 4 {
            let wv: [__m512i; P] = std::array::from_fn(|j| _mm512_loadu_si512(w.add(j * stride + t * 64) as *const _));
            for r in 0..M {
                let x = _mm512_set1_epi32((rows[r].add(4 * t) as *const i32).read_unaligned());
                for j in 0..P {
                    acc[j][r] = _mm512_dpbusd_epi32(acc[j][r], x, wv[j]);
                }
            }
        }
        for j in 0..P {
            let q = rq.add(j * RQ_FIELDS * NR);
            let fields: [*const i32; RQ_FIELDS] = std::array::from_fn(|f| q.add(f * NR));
            let lanes = [rq_lanes(&fields, 0), rq_lanes(&fields, 8)];
            let here = nc.saturating_sub(j * NR).min(NR);
            for r in 0..M {
                let v = acc[j][r];
                let halves = [_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64::<1>(v)];
                let bytes = requant16::<T>(halves, &lanes, epi.mode, epi.oc);
                let dst = out.add(r * ldo + j * NR);
                if here == NR {
                    _mm_storeu_si128(dst as *mut __m128i, bytes);
                } else {
                    _mm_mask_storeu_epi8(dst as *mut i8, ((1u32 << here) - 1) as __mmask16, bytes);
                }
            }
        }
    }
}
