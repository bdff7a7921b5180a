//! The aarch64 NEON kernels of `qs8`: the int16-pair GEMM tile (`smlal`),
//! the dot-product conv (`sdot`), the depthwise sums and the exact
//! requantisation. Reached only through the `Neon` / `NeonDot` tokens.

use super::{check_dw_row, Panel, NR, Q8};
use crate::optimized::isa::{Neon, NeonDot};
use std::arch::aarch64::*;

/// An int8 conv (per-channel int8 weights, no filter zero point) on
/// the dot product: `sdot` multiplies 4 int8 pairs and adds them to an
/// int32 lane, 16 multiply-adds per instruction. It needs both operands
/// raw, so the input is not offset: the sums are `sum_k x[k] * w[k]`,
/// and `input_offset * sum_k w[k]`, precomputed per channel, is where
/// they start. Mod 2^32 that is the reference's wrapping sum of
/// `(x + input_offset) * w`. Padding taps read the input zero point
/// (`-input_offset`), which is what makes them add nothing.
#[derive(Clone, Debug)]
pub(super) struct DotConv {
    token: NeonDot,
    /// Depth rounded up to 16 (zero weights past the depth): the im2col
    /// row length and the kernel's step.
    pub(super) k16: usize,
    /// Per group, panels of 16 channels: for each quad of depth `t`,
    /// 64 bytes, 4 registers of 4 channels' 4 taps
    /// (`w[16j + 4q + l][4t + i]` at `t * 64 + 16q + 4l + i`).
    packed: Vec<Vec<i8>>,
    /// Per group, `input_offset * sum_k w[c][k]` (wrapping) for each
    /// channel of its panels (zero past the group's channels).
    corr: Vec<Vec<i32>>,
    /// The input zero point, which padding taps read.
    pub(super) pad: i8,
}

impl DotConv {
    /// `None` where the zero point is not an int8 value.
    pub(super) fn new<W: Q8>(
        token: NeonDot,
        filter: &[W],
        groups: usize,
        per_group: usize,
        depth: usize,
        input_offset: i32,
    ) -> Option<DotConv> {
        if depth == 0 {
            return None;
        }
        let pad = i8::try_from(input_offset.checked_neg()?).ok()?;
        let k16 = depth.div_ceil(16) * 16;
        let panels = per_group.div_ceil(NR);
        let mut packed = Vec::with_capacity(groups);
        let mut corr = Vec::with_capacity(groups);
        for g in 0..groups {
            let mut buf = vec![0i8; panels * k16 * NR];
            let mut sums = vec![0i32; panels * NR];
            for (oc, w) in filter[g * per_group * depth..].chunks_exact(depth.max(1)).take(per_group).enumerate() {
                let (j, q, l) = (oc / NR, oc % NR / 4, oc % 4);
                let panel = &mut buf[j * k16 * NR..(j + 1) * k16 * NR];
                for (k, &v) in w.iter().enumerate() {
                    panel[(k / 4) * 64 + 16 * q + 4 * l + k % 4] = v.to_i32() as i8;
                }
                let sum = w.iter().fold(0i32, |s, &v| s.wrapping_add(v.to_i32()));
                sums[oc] = input_offset.wrapping_mul(sum);
            }
            packed.push(buf);
            corr.push(sums);
        }
        Some(DotConv { token, k16, packed, corr, pad })
    }

    /// `acc[i][c]` = the offset sums of group `g` for the `m` raw rows
    /// of `a` (`k16` each), channels `c < 16 * panels` at stride `ldc`.
    pub(super) fn gemm(&self, g: usize, m: usize, a: &[i8], acc: &mut [i32], ldc: usize) {
        let (w, corr, k16) = (&self.packed[g], &self.corr[g], self.k16);
        let panels = corr.len() / NR;
        if m == 0 || panels == 0 {
            return;
        }
        assert!(k16.is_multiple_of(16) && w.len() >= panels * k16 * NR && a.len() >= m * k16);
        assert!(ldc >= panels * NR && acc.len() >= (m - 1) * ldc + panels * NR);
        let _ = self.token;
        for j in 0..panels {
            let mut r = 0;
            while r < m {
                let (ap, wp) = (a[r * k16..].as_ptr(), w[j * k16 * NR..].as_ptr());
                let (cp, cc) = (acc[r * ldc + j * NR..].as_mut_ptr(), corr[j * NR..].as_ptr());
                // SAFETY: the token proves the dot product; the asserts
                // above bound every access (rows `r .. r + 4` (or `m`)
                // of `k16` bytes, panel `j`'s `k16 * 16` weights, 16
                // corrections, 16 sums per row at stride `ldc`).
                unsafe {
                    match m - r {
                        1 => qs8_gemm_4x16c4_neondot::<1>(k16, ap, wp, cc, cp, ldc),
                        2 => qs8_gemm_4x16c4_neondot::<2>(k16, ap, wp, cc, cp, ldc),
                        3 => qs8_gemm_4x16c4_neondot::<3>(k16, ap, wp, cc, cp, ldc),
                        _ => qs8_gemm_4x16c4_neondot::<4>(k16, ap, wp, cc, cp, ldc),
                    }
                }
                r += 4;
            }
        }
    }
}

/// `sdot acc.4s, w.16b, a.4b[LANE]`: lane `l` of `acc` adds the dot
/// product of `w`'s bytes `4l .. 4l + 4` and `a`'s bytes `4 LANE ..`.
/// (Written as assembly: the `vdotq_laneq_s32` intrinsic is not stable.)
///
/// # Safety
/// The CPU must have the dot product.
#[inline(always)]
unsafe fn sdot_lane<const LANE: i32>(acc: int32x4_t, w: int8x16_t, a: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: a register-only instruction the caller's CPU has.
    unsafe {
        std::arch::asm!(
            ".arch_extension dotprod",
            "sdot {acc:v}.4s, {w:v}.16b, {a:v}.4b[{lane}]",
            acc = inout(vreg) acc,
            w = in(vreg) w,
            a = in(vreg) a,
            lane = const LANE,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    acc
}

/// `qs8_gemm_4x16c4_neondot`: `R` rows (1..=4) × 16 channels, 16
/// int32 accumulators starting from the corrections; per 16 bytes of
/// depth, each row's 16 activations in one register and four quads of
/// the panel (4 registers each), 16 `sdot`s per quad.
///
/// # Safety
/// The dot product; `a` has `R` rows of `k16` bytes (`k16` a multiple
/// of 16), `w` `k16 * 16` bytes, `corr` 16 values, `c` `R` rows of 16
/// at stride `ldc`.
#[target_feature(enable = "dotprod")]
unsafe fn qs8_gemm_4x16c4_neondot<const R: usize>(
    k16: usize,
    a: *const i8,
    w: *const i8,
    corr: *const i32,
    c: *mut i32,
    ldc: usize,
) {
    // SAFETY: per the contract.
    unsafe {
        let start: [int32x4_t; 4] = std::array::from_fn(|q| vld1q_s32(corr.add(4 * q)));
        let mut acc = [start; R];
        let mut kb = 0;
        while kb < k16 {
            let av: [int8x16_t; R] = std::array::from_fn(|r| vld1q_s8(a.add(r * k16 + kb)));
            macro_rules! quad {
                ($lane:literal) => {{
                    let wp = w.add((kb + 4 * $lane) * NR);
                    let wv: [int8x16_t; 4] = std::array::from_fn(|q| vld1q_s8(wp.add(16 * q)));
                    for (acc_r, &a_r) in acc.iter_mut().zip(&av) {
                        for (acc_q, &w_q) in acc_r.iter_mut().zip(&wv) {
                            *acc_q = sdot_lane::<$lane>(*acc_q, w_q, a_r);
                        }
                    }
                }};
            }
            quad!(0);
            quad!(1);
            quad!(2);
            quad!(3);
            kb += 16;
        }
        for (r, acc_r) in acc.iter().enumerate() {
            for (q, &v) in acc_r.iter().enumerate() {
                vst1q_s32(c.add(r * ldc + 4 * q), v);
            }
        }
    }
}

/// One tile of up to 6 rows × 16 columns of int32 sums (see
/// `gemm_i32` for the shapes), two rows at a time.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_tile(_t: Neon, m: usize, k2: usize, a: &[i16], lda: usize, w: Panel<'_>, c: &mut [i32], ldc: usize) {
    let w_len = match w {
        Panel::Narrow(w) => w.len(),
        Panel::Wide(w) => w.len(),
    };
    assert!((1..=6).contains(&m));
    assert!(a.len() >= (m - 1) * lda + 2 * k2 && w_len >= k2 * 2 * NR && c.len() >= (m - 1) * ldc + NR);
    let mut r = 0;
    while r < m {
        let (ap, cp) = (a[r * lda..].as_ptr(), c[r * ldc..].as_mut_ptr());
        // SAFETY: the token proves NEON; the asserts above bound every
        // access (rows `r .. min(r + 2, m)` of `2 * k2` values at stride
        // `lda`, `k2 * 32` weights, 16 sums per row at stride `ldc`).
        unsafe {
            match (w, m - r) {
                (Panel::Narrow(w), 1) => qs8_gemm_2x16c2_neon::<1, true>(k2, ap, lda, w.as_ptr().cast(), cp, ldc),
                (Panel::Narrow(w), _) => qs8_gemm_2x16c2_neon::<2, true>(k2, ap, lda, w.as_ptr().cast(), cp, ldc),
                (Panel::Wide(w), 1) => qs8_gemm_2x16c2_neon::<1, false>(k2, ap, lda, w.as_ptr().cast(), cp, ldc),
                (Panel::Wide(w), _) => qs8_gemm_2x16c2_neon::<2, false>(k2, ap, lda, w.as_ptr().cast(), cp, ldc),
            }
        }
        r += 2;
    }
}

/// `R` (1 or 2) rows × 16 columns: per depth pair, the panel's 32
/// weights as four registers of 4 channels' pairs, each row's pair of
/// activations broadcast, and `smlal`/`smlal2` into 8 accumulators a
/// row that keep each channel's even and odd taps apart (added with
/// `addp` at the end; int32 sums wrap, so the order does not matter).
///
/// # Safety
/// NEON; `a` has `R` rows of `2 * k2` values at stride `lda`, `w` holds
/// `k2 * 32` weights (i8 when `NARROW`, else i16), `c` has `R` rows of
/// 16 at stride `ldc`.
#[inline(always)]
unsafe fn qs8_gemm_2x16c2_neon<const R: usize, const NARROW: bool>(
    k2: usize,
    a: *const i16,
    lda: usize,
    w: *const u8,
    c: *mut i32,
    ldc: usize,
) {
    // SAFETY: per the contract.
    unsafe {
        let mut acc = [[vdupq_n_s32(0); 8]; R];
        for p in 0..k2 {
            let wv: [int16x8_t; 4] = if NARROW {
                let wp = w.cast::<i8>().add(p * 2 * NR);
                let (b0, b1) = (vld1q_s8(wp), vld1q_s8(wp.add(16)));
                [vmovl_s8(vget_low_s8(b0)), vmovl_high_s8(b0), vmovl_s8(vget_low_s8(b1)), vmovl_high_s8(b1)]
            } else {
                let wp = w.cast::<i16>().add(p * 2 * NR);
                std::array::from_fn(|q| vld1q_s16(wp.add(8 * q)))
            };
            for (r, acc_r) in acc.iter_mut().enumerate() {
                // Lane 0 of the i32 is the even tap (little-endian).
                let pair = a.add(r * lda + 2 * p).cast::<i32>().read_unaligned();
                let x = vreinterpretq_s16_s32(vdupq_n_s32(pair));
                let xl = vget_low_s16(x);
                for (q, &wq) in wv.iter().enumerate() {
                    acc_r[2 * q] = vmlal_s16(acc_r[2 * q], vget_low_s16(wq), xl);
                    acc_r[2 * q + 1] = vmlal_high_s16(acc_r[2 * q + 1], wq, x);
                }
            }
        }
        for (r, acc_r) in acc.iter().enumerate() {
            for q in 0..4 {
                vst1q_s32(c.add(r * ldc + 4 * q), vpaddq_s32(acc_r[2 * q], acc_r[2 * q + 1]));
            }
        }
    }
}

/// `acc[c] = sum over taps (x[c] + off) * w[t][c]` for the first
/// `c / 4 * 4` channels (returned; the caller does the rest), depth
/// multiplier 1: `taps` are (input offset, tap), `w` is `[tap][c]`.
pub(super) fn dwconv_row<T: Q8>(
    _t: Neon,
    input: &[T],
    w: &[i32],
    taps: &[(usize, usize)],
    off: i32,
    acc: &mut [i32],
) -> usize {
    let c = acc.len();
    let done = c / 4 * 4;
    check_dw_row(input.len(), w.len(), taps, c);
    // SAFETY: the token proves NEON; every tap's input and weight rows
    // have `c >= done` values (asserted above), `acc` has `c`, and `T`
    // is one byte (i8 or u8).
    unsafe { qs8_dwconv_c16_neon::<T>(done, input.as_ptr().cast(), w.as_ptr(), c, taps, off, acc.as_mut_ptr()) };
    done
}

/// `qs8_dwconv_c16_neon`: 16 channels (4 registers of int32 sums) per
/// pass over the taps, then 4; each tap's bytes widened to i32 and
/// offset, for `mla` against the i32 weights.
///
/// # Safety
/// Every tap's `input[xo ..]` and `w[t * c ..]` hold `done` values,
/// `acc` `done`; `T` is i8 or u8.
unsafe fn qs8_dwconv_c16_neon<T: Q8>(
    done: usize,
    input: *const u8,
    w: *const i32,
    c: usize,
    taps: &[(usize, usize)],
    off: i32,
    acc: *mut i32,
) {
    // The bytes as i16, exactly; the offset is added in i32 (a zero
    // point need not be an 8-bit value).
    let widen = |b: uint8x8_t| -> int16x8_t {
        if T::SIGNED {
            vmovl_s8(vreinterpret_s8_u8(b))
        } else {
            vreinterpretq_s16_u16(vmovl_u8(b))
        }
    };
    let voff = vdupq_n_s32(off);
    // SAFETY: per the contract.
    unsafe {
        let mut cb = 0;
        while cb + 16 <= done {
            let mut s = [vdupq_n_s32(0); 4];
            for &(xo, t) in taps {
                let bytes = vld1q_u8(input.add(xo + cb));
                let (lo, hi) = (widen(vget_low_u8(bytes)), widen(vget_high_u8(bytes)));
                let x =
                    [vmovl_s16(vget_low_s16(lo)), vmovl_high_s16(lo), vmovl_s16(vget_low_s16(hi)), vmovl_high_s16(hi)]
                        .map(|v| vaddq_s32(v, voff));
                let wp = w.add(t * c + cb);
                for (q, sq) in s.iter_mut().enumerate() {
                    *sq = vmlaq_s32(*sq, x[q], vld1q_s32(wp.add(4 * q)));
                }
            }
            for (q, &sq) in s.iter().enumerate() {
                vst1q_s32(acc.add(cb + 4 * q), sq);
            }
            cb += 16;
        }
        while cb < done {
            let mut s = vdupq_n_s32(0);
            for &(xo, t) in taps {
                // Four bytes, through a register's low lanes.
                let b = vreinterpret_u8_u32(vdup_n_u32(input.add(xo + cb).cast::<u32>().read_unaligned()));
                let x = vaddq_s32(vmovl_s16(vget_low_s16(widen(b))), voff);
                s = vmlaq_s32(s, x, vld1q_s32(w.add(t * c + cb)));
            }
            vst1q_s32(acc.add(cb), s);
            cb += 4;
        }
    }
}

/// TFLite's `RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x,
/// m), e)` on 4 lanes, given `neg_e = -e` (`e` in `0..=31`). `sqrdmulh`
/// is the high multiply bit for bit; `srshl` by `-e` rounds half up, so
/// negative values first lose 1 to round ties away from zero (the sign
/// bit of `hm & -e` is set exactly when `hm < 0` and `e > 0`;
/// saturating, so `i32::MIN` stays put: it has nothing to round).
///
/// # Safety
/// The CPU must have NEON (callers hold a [`Neon`] token).
#[inline(always)]
pub(crate) unsafe fn mul_shift(x: int32x4_t, m: int32x4_t, neg_e: int32x4_t) -> int32x4_t {
    // SAFETY: register-only NEON instructions, per the contract.
    unsafe {
        let hm = vqrdmulhq_s32(x, m);
        let fixup = vshrq_n_s32::<31>(vandq_s32(hm, neg_e));
        vrshlq_s32(vqaddq_s32(hm, fixup), neg_e)
    }
}

/// `finish` on 4 channels, before the cast to the 8-bit type:
/// `clamp(MultiplyByQuantizedMultiplier(acc + bias, m, lsh - rsh) +
/// output_offset)`. `oc` is `[output_offset, act_min, act_max]`; shifts
/// as `Requant` keeps them (`lsh <= 30`, `rsh <= 31`).
#[allow(clippy::too_many_arguments)]
pub(super) fn requant4(
    _t: Neon,
    acc: &[i32],
    bias: Option<&[i32]>,
    mult: &[i32],
    lsh: &[i32],
    rsh: &[i32],
    oc: [i32; 3],
    out: &mut [i32; 4],
) {
    assert!(acc.len() >= 4 && mult.len() >= 4 && lsh.len() >= 4 && rsh.len() >= 4);
    assert!(bias.is_none_or(|b| b.len() >= 4));
    // SAFETY: the token proves NEON; every slice has 4 values.
    unsafe {
        let mut x = vld1q_s32(acc.as_ptr());
        if let Some(b) = bias {
            x = vaddq_s32(x, vld1q_s32(b.as_ptr()));
        }
        // The reference's wrapping `x << lsh`.
        x = vshlq_s32(x, vld1q_s32(lsh.as_ptr()));
        let neg_e = vnegq_s32(vld1q_s32(rsh.as_ptr()));
        let v = mul_shift(x, vld1q_s32(mult.as_ptr()), neg_e);
        let v = vaddq_s32(v, vdupq_n_s32(oc[0]));
        let v = vminq_s32(vmaxq_s32(v, vdupq_n_s32(oc[1])), vdupq_n_s32(oc[2]));
        vst1q_s32(out.as_mut_ptr(), v);
    }
}
