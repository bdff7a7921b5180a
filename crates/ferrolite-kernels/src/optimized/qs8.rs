//! Quantised 8-bit CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED (int8 with
//! per-channel weights, legacy uint8 with a filter zero point), bit-exact
//! with the reference kernels in `reference::quantized::conv`.
//!
//! Integer sums do not depend on their order, so these kernels only need to
//! produce the same int32 accumulators as the reference and then requantise
//! each one with the reference's own helpers (`finish` for the convolutions,
//! `finish_fc`, in `f64`, for FULLY_CONNECTED).
//!
//! - GEMM (conv and FC): weights are packed once into i16 panels holding
//!   `w + filter_offset`; the activations are widened into i16 rows holding
//!   `x + input_offset` (im2col for convs), with 0 for padding taps, so the
//!   padded taps add nothing, exactly like the reference skipping them. The
//!   depth is padded to even with zeros. `qs8_gemm_{1..6}x16c2_avx2` uses
//!   `_mm256_madd_epi16`: one broadcast pair of activations times 8 channels'
//!   pairs of weights gives 8 int32 partial sums. Every product fits i32
//!   (both factors fit i16, checked at plan time) and int32 additions wrap
//!   like the reference's `wrapping_add`, so the sums are identical.
//! - Depthwise: `qs8_dwconv_c8_avx2` vectorises over 8 channels at a time
//!   (depth multiplier 1), widening the input to i32 and multiplying with
//!   `_mm256_mullo_epi32` against pre-widened `w + filter_offset`.
//! - aarch64: `qs8_gemm_2x16c2_neon` over the same packing, with `smlal`
//!   (4 widening multiply-adds per instruction, the pairs' halves summed at
//!   the end), and `requant4`, the reference requantisation in NEON
//!   (`neon::mul_shift`). The depthwise conv sums 16
//!   channels at a time (`qs8_dwconv_c16_neon`, `mla` on widened values),
//!   then requantises with it. Where the CPU has
//!   the dot product, int8 convs run `qs8_gemm_4x16c4_neondot` instead
//!   (`sdot`, 16 multiply-adds per instruction, on the raw int8 values;
//!   see `neon::DotConv` for the offset).
//! - Portable `*_scalar` variants over the same packing, always compiled.
//!
//! Output rows are output pixels (or batch rows for FC), and `run_rows`
//! computes any contiguous range of them so the runtime can split the work
//! across threads.

use crate::optimized::conv::{im2col_block_rows, Im2col};
#[cfg(target_arch = "aarch64")]
use crate::optimized::isa::Neon;
use crate::optimized::isa::{Avx2Fma, IsaLevel};
use crate::reference::conv::{Conv2dParams, DepthwiseParams};
use crate::reference::quantized::conv::{finish, finish_fc};
use crate::reference::quantized::{ConvQuantParams, QType};
use std::ops::Range;

/// Columns per packed panel (two AVX2 registers of 8 int32 sums).
pub(crate) const NR: usize = 16;
/// Rows per micro-kernel call.
pub(crate) const MR: usize = 6;

/// Packed weights up to this many bytes are walked once per row tile
/// rather than the row block once per panel.
const SMALL_WEIGHTS: usize = 16 * 1024;

/// Visit the tiles of an `m`-row block over `panels` panels of depth
/// pairs `k2` as `(first row, run of panels)`: small weight sets (they
/// stay in L1) as every panel per row tile, one call each (a shallow
/// layer's tile is short, so a call per panel would cost a good part of
/// it), larger ones panel by panel over the (L2-resident) rows.
pub(crate) fn walk_tiles(m: usize, panels: usize, k2: usize, mut tiles: impl FnMut(usize, Range<usize>)) {
    if k2 * panels * 2 * NR * 2 <= SMALL_WEIGHTS {
        for i in (0..m).step_by(MR) {
            tiles(i, 0..panels);
        }
    } else {
        for j in 0..panels {
            for i in (0..m).step_by(MR) {
                tiles(i, j..j + 1);
            }
        }
    }
}

/// An 8-bit activation/weight type the fast kernels handle.
///
/// Sealed: the SIMD kernels read these values as bytes.
pub trait Q8: QType + Send + Sync + sealed::OneByte {
    const SIGNED: bool;
}

mod sealed {
    /// Implemented for `i8` and `u8` only.
    pub trait OneByte {}
    impl OneByte for i8 {}
    impl OneByte for u8 {}
}
impl Q8 for i8 {
    const SIGNED: bool = true;
}
impl Q8 for u8 {
    const SIGNED: bool = false;
}

/// Whether `v + offset` fits i16 for every `v` of type `T`.
fn offset_fits<T: QType>(offset: i32) -> bool {
    let lo = T::MIN as i64 + offset as i64;
    let hi = T::MAX as i64 + offset as i64;
    lo >= i16::MIN as i64 && hi <= i16::MAX as i64
}

/// Per-thread work buffers (reused between calls; the hybrid kernels in
/// `optimized::hybrid` use the same ones).
#[derive(Clone, Debug, Default)]
pub struct Qs8Scratch {
    pub(crate) a: Vec<i16>,
    /// Raw int8 im2col rows (the dot-product conv).
    #[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
    pub(crate) a8: Vec<i8>,
    pub(crate) acc: Vec<i32>,
    pub(crate) taps: Vec<(usize, usize)>,
    /// The bias laid out per 16-column panel (zero past each group's
    /// channels), for the fused GEMM epilogue.
    pub(crate) bias16: Vec<i32>,
    /// The same for a float bias (dynamic-range convs).
    pub(crate) fbias16: Vec<f32>,
}

impl Qs8Scratch {
    pub fn new() -> Qs8Scratch {
        Qs8Scratch::default()
    }
}

/// The conv requantisation (`finish`) with its per-channel constants
/// expanded for the vector epilogue: multiplier, left and right shifts.
#[derive(Clone, Debug, Default)]
struct Requant {
    mult: Vec<i32>,
    lsh: Vec<i32>,
    rsh: Vec<i32>,
    /// `2^rsh - 1` and half of it (rounding right shift), for kernels
    /// that take them precomputed.
    mask: Vec<i32>,
    half: Vec<i32>,
    /// `2^(rsh - 1) + output_offset * 2^rsh`: the rounding and the output
    /// offset in one addend, for [`RequantMode::Short`].
    round_oc: Vec<i32>,
    /// Some left shift is not 0.
    any_lsh: bool,
    /// Some multiplier is `i32::MIN` (the high mul's one saturating case).
    any_min: bool,
    /// Every shift within `-31..=30` (else the portable `finish` runs).
    vector_ok: bool,
    /// No left shift, no `i32::MIN` multiplier, every right shift in
    /// `1..=SHORT_MAX_RSH`: [`RequantMode::Short`] applies where the sums
    /// are small enough too (see [`Requant::mode`]).
    short_ok: bool,
}

/// Largest right shift [`RequantMode::Short`] takes: with sums below
/// `2^30`, `|hm| + 2^(e-1) + 255 * 2^e` stays below `2^31`.
const SHORT_MAX_RSH: i32 = 21;

/// Per-channel constants per panel in [`Requant::panels`].
const RQ_FIELDS: usize = 6;

/// A bound on `|sum_t (x_t + input_offset) * (w_t + filter_offset)|` over
/// `depth` taps of any input and weights of type `W` (inputs and weights
/// share the type here): the largest `|v + offset|` of each, multiplied.
/// From the types alone, so it costs nothing at prepare; for ordinary zero
/// points it is `255 * 128 * depth` (int8) and stays below `2^30` up to a
/// depth of 32,000.
fn sum_bound<W: QType>(depth: usize, input_offset: i32, filter_offset: i32) -> i64 {
    let most = |off: i32| (W::MIN as i64 + off as i64).abs().max((W::MAX as i64 + off as i64).abs());
    most(input_offset).saturating_mul(most(filter_offset)).saturating_mul(depth as i64)
}

/// How a layer's vector epilogue requantises, decided per run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RequantMode {
    /// No left shift, no saturation check, and the rounding divide as one
    /// add and an arithmetic shift: `(hm + round_oc + (hm >> 31)) >> e`
    /// (`hm >> 31` is -1 for negative `hm`, which turns rounding half up
    /// into the reference's ties away from zero; adding `output_offset *
    /// 2^e` before the shift adds `output_offset` after it). Exact when no
    /// sum reaches `2^30` in magnitude and `1 <= e <= SHORT_MAX_RSH`.
    Short,
    /// Every step as the reference states it; the left shift and the
    /// saturation check only where some channel needs them.
    Full { lsh: bool, min: bool },
}

impl Requant {
    fn new(q: &ConvQuantParams, channels: usize) -> Requant {
        let mut r = Requant { vector_ok: true, short_ok: true, ..Requant::default() };
        for c in 0..channels {
            let (m, s) = q.channel(c);
            r.vector_ok &= (-31..=30).contains(&s);
            r.mult.push(m);
            r.lsh.push(s.max(0));
            r.rsh.push((-s).max(0));
            let mask = ((1i64 << (-s).clamp(0, 31)) - 1) as i32;
            r.mask.push(mask);
            r.half.push(mask >> 1);
            let e = (-s).clamp(0, 31);
            let short = (1..=SHORT_MAX_RSH).contains(&e);
            r.round_oc.push(if short {
                (1i32 << (e - 1)).wrapping_add(q.output_offset.wrapping_shl(e as u32))
            } else {
                0
            });
            r.short_ok &= short && m != i32::MIN;
            r.any_lsh |= s > 0;
            r.any_min |= m == i32::MIN;
        }
        r.short_ok &= (-255..=255).contains(&q.output_offset);
        r
    }

    /// The mode for a run whose int32 sums (bias included) are at most
    /// `weight_bound + max |bias|` in magnitude; `weight_bound` bounds the
    /// sums without the bias ([`sum_bound`]).
    fn mode(&self, weight_bound: i64, bias: Option<&[i32]>) -> RequantMode {
        let bias_max = bias.map_or(0, |b| b.iter().map(|&v| (v as i64).abs()).max().unwrap_or(0));
        if self.short_ok && weight_bound + bias_max < 1 << 30 {
            RequantMode::Short
        } else {
            RequantMode::Full { lsh: self.any_lsh, min: self.any_min }
        }
    }

    /// The constants of channels `c0 .. c0 + n` in panels of 16 for the
    /// fused epilogue: per panel multiplier, left shift, right shift, mask,
    /// half and `round_oc` ([`RQ_FIELDS`] rows of 16 values; zero past `n`).
    fn panels(&self, c0: usize, n: usize) -> Vec<i32> {
        let panels = n.div_ceil(NR);
        let mut v = vec![0i32; panels * RQ_FIELDS * NR];
        for i in 0..n {
            let (j, l) = (i / NR, i % NR);
            let c = c0 + i;
            let src = [&self.mult, &self.lsh, &self.rsh, &self.mask, &self.half, &self.round_oc];
            for (f, arr) in src.iter().enumerate() {
                v[(j * RQ_FIELDS + f) * NR + l] = arr[c];
            }
        }
        v
    }

    /// `out[i] = finish(acc[i] (+ bias[c0 + i]))` for channels `c0 ..`.
    /// `isa` picks the vector code (clamped to the CPU).
    fn apply<T: Q8>(
        &self,
        isa: IsaLevel,
        q: &ConvQuantParams,
        acc: &[i32],
        bias: Option<&[i32]>,
        c0: usize,
        out: &mut [T],
    ) {
        let n = out.len();
        let mut done = 0;
        #[cfg(target_arch = "aarch64")]
        if let (Some(t), true) = (Neon::new(isa), self.vector_ok) {
            let mut tmp = [0i32; 4];
            while done + 4 <= n {
                let c = c0 + done;
                let b = bias.map(|b| &b[c..c + 4]);
                let (m, l, r) = (&self.mult[c..c + 4], &self.lsh[c..c + 4], &self.rsh[c..c + 4]);
                neon::requant4(t, &acc[done..done + 4], b, m, l, r, [q.output_offset, q.act_min, q.act_max], &mut tmp);
                for (o, &v) in out[done..done + 4].iter_mut().zip(&tmp) {
                    *o = T::from_i32(v);
                }
                done += 4;
            }
        }
        if let (Some(t), true) = (Avx2Fma::new(isa), self.vector_ok) {
            let mut tmp = [0i32; 8];
            while done + 8 <= n {
                let c = c0 + done;
                let b = bias.map(|b| &b[c..c + 8]);
                avx2::requant8(
                    t,
                    &acc[done..done + 8],
                    b,
                    &self.mult[c..c + 8],
                    &self.lsh[c..c + 8],
                    &self.rsh[c..c + 8],
                    [q.output_offset, q.act_min, q.act_max],
                    &mut tmp,
                );
                for (o, &v) in out[done..done + 8].iter_mut().zip(&tmp) {
                    *o = T::from_i32(v);
                }
                done += 8;
            }
        }
        for (i, (o, &s)) in out.iter_mut().zip(acc).enumerate().skip(done) {
            *o = finish(q, s, bias, c0 + i, q.output_offset);
        }
    }
}

/// Weights `[n, k]` as `w + offset` in panels of 16 columns: panel `j`,
/// depth pair `p` holds 32 values, `[w[16j + l][2p], w[16j + l][2p + 1]]`
/// for `l in 0..16`. Zero past `n` and past `k`. Stored as i8 when every
/// `w + offset` fits (int8 weights without a zero point: half the memory
/// and weight traffic; the micro-kernels widen them), else as i16.
#[derive(Clone, Debug)]
pub(crate) struct PackedQs8 {
    n: usize,
    /// Depth pairs: `ceil(k / 2)`.
    pub(crate) k2: usize,
    narrow: Vec<i8>,
    wide: Vec<i16>,
}

/// The panel layout of [`PackedQs8`] in `len` values of `D`.
fn pack_panels<W: QType, D: Copy + Default>(
    weights: &[W],
    n: usize,
    k: usize,
    len: usize,
    conv: impl Fn(W) -> D,
) -> Vec<D> {
    let mut buf = vec![D::default(); len];
    if k == 0 {
        return buf;
    }
    let k2 = k.div_ceil(2);
    // Column by column: each depth pair of a column lands at the same place
    // in consecutive 32-value groups of its panel.
    for (col, row) in weights.chunks_exact(k).take(n).enumerate() {
        let (j, l) = (col / NR, col % NR);
        let panel = &mut buf[j * k2 * 2 * NR..(j + 1) * k2 * 2 * NR];
        // Whole pairs first (no per-pair length test), then an odd last tap.
        let pairs = row.chunks_exact(2);
        let odd = pairs.remainder();
        for (group, pair) in panel.chunks_exact_mut(2 * NR).zip(pairs) {
            group[2 * l] = conv(pair[0]);
            group[2 * l + 1] = conv(pair[1]);
        }
        if let [w] = odd {
            panel[(k2 - 1) * 2 * NR + 2 * l] = conv(*w);
        }
    }
    buf
}

/// One packed panel, in its storage type.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Panel<'a> {
    Narrow(&'a [i8]),
    Wide(&'a [i16]),
}

impl PackedQs8 {
    pub(crate) fn pack<W: QType>(weights: &[W], n: usize, k: usize, offset: i32) -> PackedQs8 {
        let k2 = k.div_ceil(2);
        let len = n.div_ceil(NR) * k2 * 2 * NR;
        let narrow = W::MIN as i64 + offset as i64 >= i8::MIN as i64 && W::MAX as i64 + offset as i64 <= i8::MAX as i64;
        if narrow {
            let narrow = pack_panels(weights, n, k, len, |w| (w.to_i32() + offset) as i8);
            PackedQs8 { n, k2, narrow, wide: Vec::new() }
        } else {
            let wide = pack_panels(weights, n, k, len, |w| (w.to_i32() + offset) as i16);
            PackedQs8 { n, k2, narrow: Vec::new(), wide }
        }
    }

    pub(crate) fn empty() -> PackedQs8 {
        PackedQs8 { n: 0, k2: 0, narrow: Vec::new(), wide: Vec::new() }
    }

    pub(crate) fn panels(&self) -> usize {
        self.n.div_ceil(NR)
    }

    fn panel(&self, j: usize) -> Panel<'_> {
        let len = self.k2 * 2 * NR;
        if self.wide.is_empty() && self.k2 > 0 {
            Panel::Narrow(&self.narrow[j * len..(j + 1) * len])
        } else {
            Panel::Wide(&self.wide[j * len..(j + 1) * len])
        }
    }
}

/// The float epilogue of a dynamic-range GEMM panel (see
/// `optimized::hybrid`), applied in the micro-kernel: with `a = f32(acc)`,
/// `v` as `scale` says, then `+ bias[c]`, then the clamp `[lo, hi]`.
/// Per-channel weight scales and `bias` hold 16 channels per panel of the
/// group, from panel 0 (zero past the last channel).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) struct FloatTail<'a> {
    pub scale: TailScale<'a>,
    pub s: f32,
    pub bias: Option<&'a [f32]>,
    pub clamp: [f32; 2],
}

/// How a [`FloatTail`] scales `a = f32(acc)`: the two reference kernels'
/// operation orders.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
#[derive(Clone, Copy)]
pub(crate) enum TailScale<'a> {
    /// `conv2d_hybrid`: `0 + a * s` (the `0 +` turns -0.0 into +0.0).
    PerTensor,
    /// `conv2d_hybrid_per_channel`: `(a * w[c]) * s`.
    PerChannel(&'a [f32]),
}

/// Up to [`MR`] rows of the int16 GEMM over panels `js`, with the float
/// epilogue, written to `out` (rows at stride `ldo`, panel `j`'s columns
/// at `16 * j ..` of the group's `cols`); `None` where the CPU lacks AVX2
/// (the caller then takes the int32 path).
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_f32_tiles(
    token: Option<Avx2Fma>,
    m: usize,
    k2: usize,
    a: &[i16],
    lda: usize,
    w: &PackedQs8,
    js: Range<usize>,
    tail: &FloatTail<'_>,
    out: &mut [f32],
    ldo: usize,
    cols: usize,
) -> Option<()> {
    let t = token?;
    avx2::gemm_float_tiles(t, m, k2, a, lda, w, js, tail, out, ldo, cols);
    Some(())
}

/// What a tile of `m` rows over the (non-empty) run of panels `js` of `w`
/// reads and writes, checked: `m` rows of `a` (`a_len` values at stride
/// `lda`), the panels (back to back, as `panel` slices them), and `out`
/// (`out_len` values, rows at stride `ldo`, the group's `cols` columns).
/// Returns the first panel's first byte, whether the panels are 8-bit, the
/// bytes from one panel to the next, and the run's end column.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
fn tile_run(
    w: &PackedQs8,
    js: &Range<usize>,
    m: usize,
    a_len: usize,
    lda: usize,
    out_len: usize,
    ldo: usize,
    cols: usize,
) -> (*const u8, bool, usize, usize) {
    let k2 = w.k2;
    let (w0, narrow, _) = avx2::panel_ptr(w.panel(js.start));
    let (w_last, _, w_len) = avx2::panel_ptr(w.panel(js.end - 1));
    let stride = k2 * 2 * NR * if narrow { 1 } else { 2 };
    assert!(w_len >= k2 * 2 * NR && w_last as usize - w0 as usize == (js.len() - 1) * stride);
    let end_col = cols.min(js.end * NR);
    assert!((1..=6).contains(&m) && js.start * NR < cols);
    assert!(a_len >= (m - 1) * lda + 2 * k2 && out_len >= (m - 1) * ldo + end_col);
    (w0, narrow, stride, end_col)
}

/// `acc[r][c] = sum_d a[r][d] * w[c][d]` for `r < m`, `c < 16 * panels`
/// (the padding columns get 0). `a` rows have stride `lda >= 2 * k2`, `acc`
/// rows stride `ldc >= 16 * panels`.
pub(crate) fn gemm_i32(isa: IsaLevel, m: usize, a: &[i16], lda: usize, w: &PackedQs8, acc: &mut [i32], ldc: usize) {
    gemm_i32_panels(isa, m, a, lda, w, 0..w.panels(), acc, ldc)
}

/// [`gemm_i32`] over the columns of `panels` only, into `acc` columns
/// `0 .. 16 * panels.len()`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_i32_panels(
    isa: IsaLevel,
    m: usize,
    a: &[i16],
    lda: usize,
    w: &PackedQs8,
    panels: std::ops::Range<usize>,
    acc: &mut [i32],
    ldc: usize,
) {
    let k2 = w.k2;
    assert!(panels.end <= w.panels() && lda >= 2 * k2 && ldc >= NR * panels.len());
    if m == 0 || panels.is_empty() {
        return;
    }
    assert!(a.len() >= (m - 1) * lda + 2 * k2 && acc.len() >= (m - 1) * ldc + NR * panels.len());
    let token = Avx2Fma::new(isa);
    #[cfg(target_arch = "aarch64")]
    let neon_token = Neon::new(isa);
    for (jc, j) in panels.enumerate() {
        let panel = w.panel(j);
        let mut r = 0;
        while r < m {
            let mr = MR.min(m - r);
            let a_tile = &a[r * lda..];
            let c_tile = &mut acc[r * ldc + jc * NR..];
            r += mr;
            #[cfg(target_arch = "aarch64")]
            if let Some(t) = neon_token {
                neon::gemm_tile(t, mr, k2, a_tile, lda, panel, c_tile, ldc);
                continue;
            }
            match token {
                Some(t) => avx2::gemm_tile(t, mr, k2, a_tile, lda, panel, c_tile, ldc),
                None => qs8_gemm_mx16c2_scalar(mr, k2, a_tile, lda, panel, c_tile, ldc),
            }
        }
    }
}

fn qs8_gemm_mx16c2_scalar(m: usize, k2: usize, a: &[i16], lda: usize, w: Panel<'_>, c: &mut [i32], ldc: usize) {
    match w {
        Panel::Narrow(w) => qs8_gemm_mx16c2_scalar_of(m, k2, a, lda, w, c, ldc),
        Panel::Wide(w) => qs8_gemm_mx16c2_scalar_of(m, k2, a, lda, w, c, ldc),
    }
}

fn qs8_gemm_mx16c2_scalar_of<P: Copy + Into<i32>>(
    m: usize,
    k2: usize,
    a: &[i16],
    lda: usize,
    w: &[P],
    c: &mut [i32],
    ldc: usize,
) {
    for r in 0..m {
        let row = &a[r * lda..r * lda + 2 * k2];
        let mut sums = [0i32; NR];
        for (p, wp) in w.chunks_exact(2 * NR).take(k2).enumerate() {
            let (x0, x1) = (row[2 * p] as i32, row[2 * p + 1] as i32);
            for (l, s) in sums.iter_mut().enumerate() {
                let prod = (x0 * wp[2 * l].into()).wrapping_add(x1 * wp[2 * l + 1].into());
                *s = s.wrapping_add(prod);
            }
        }
        c[r * ldc..r * ldc + NR].copy_from_slice(&sums);
    }
}

/// Bias-less, requantisation-free int32 check of the GEMM (tests).
#[cfg(test)]
fn gemm_plain(isa: IsaLevel, a: &[i16], w: &[i16], m: usize, n: usize, k: usize) -> Vec<i32> {
    let packed = PackedQs8::pack(w, n, k, 0);
    let lda = 2 * packed.k2;
    let mut rows = vec![0i16; m * lda];
    for r in 0..m {
        rows[r * lda..r * lda + k].copy_from_slice(&a[r * k..(r + 1) * k]);
    }
    let ldc = NR * packed.panels();
    let mut acc = vec![0i32; m * ldc];
    gemm_i32(isa, m, &rows, lda, &packed, &mut acc, ldc);
    (0..m).flat_map(|r| acc[r * ldc..r * ldc + n].to_vec()).collect()
}

/// A quantised CONV_2D (int8 per-channel or uint8 per-tensor) with its
/// weights packed for the int16 GEMM.
#[derive(Clone, Debug)]
pub struct Qs8ConvPlan {
    isa: IsaLevel,
    p: Conv2dParams,
    q: ConvQuantParams,
    in_shape: [usize; 4],
    filter_shape: [usize; 4],
    out_shape: [usize; 4],
    per_group: usize,
    /// `kh * kw * f_in`.
    depth: usize,
    /// Depth padded to even: the im2col row length.
    kp: usize,
    input_offset: i32,
    packed: Vec<PackedQs8>,
    requant: Requant,
    /// Per group, `Requant::panels` for the fused GEMM epilogue (empty
    /// where some shift is out of the vector range).
    panel_rq: Vec<Vec<i32>>,
    /// [`sum_bound`] of the sums before the bias.
    weight_bound: i64,
    /// The int8 conv on the dot product, where the CPU has it (then
    /// `packed` holds empty panels: the dot path is the only one run).
    #[cfg(target_arch = "aarch64")]
    dot: Option<neon::DotConv>,
    supported: bool,
}

impl Qs8ConvPlan {
    /// Plan a conv; shapes as for the reference `conv2d_i8` / `conv2d_u8`,
    /// `filter` OHWI. `isa` is clamped to what the CPU supports. The filter
    /// zero point is applied for uint8 filters only, as the reference does.
    #[allow(clippy::too_many_arguments)]
    pub fn new<W: Q8>(
        isa: IsaLevel,
        params: &Conv2dParams,
        q: &ConvQuantParams,
        in_shape: [usize; 4],
        filter: &[W],
        filter_shape: [usize; 4],
        out_shape: [usize; 4],
    ) -> Qs8ConvPlan {
        let [batches, _, _, in_c] = in_shape;
        let [f_out, f_h, f_w, f_in] = filter_shape;
        let [out_b, _, _, out_c] = out_shape;
        let filter_offset = if W::SIGNED { 0 } else { q.filter_offset };
        let groups = in_c.checked_div(f_in).unwrap_or(0);
        let nmult = q.output_multiplier.len();
        let supported = f_in > 0
            && groups >= 1
            && in_c == groups * f_in
            && out_c == f_out
            && out_c.is_multiple_of(groups)
            && out_b == batches
            && params.stride_h >= 1
            && params.stride_w >= 1
            && params.dilation_h >= 1
            && params.dilation_w >= 1
            && filter.len() >= f_out * f_h * f_w * f_in
            && (nmult == 1 || nmult >= out_c)
            && q.output_shift.len() == nmult
            && offset_fits::<W>(filter_offset)
            // The input type is the filter's (int8 with int8, uint8 with uint8).
            && offset_fits::<W>(q.input_offset);
        let per_group = if supported { out_c / groups } else { 0 };
        let depth = f_h * f_w * f_in;
        #[cfg(target_arch = "aarch64")]
        let dot = match (supported && W::SIGNED && filter_offset == 0, crate::optimized::isa::NeonDot::new(isa)) {
            (true, Some(t)) => neon::DotConv::new(t, filter, groups, per_group, depth, q.input_offset),
            _ => None,
        };
        #[cfg(target_arch = "aarch64")]
        let dot_only = dot.is_some();
        #[cfg(not(target_arch = "aarch64"))]
        let dot_only = false;
        let packed = if supported {
            (0..groups)
                .map(|g| match dot_only {
                    true => PackedQs8::empty(),
                    false => {
                        let w = &filter[g * per_group * depth..(g + 1) * per_group * depth];
                        PackedQs8::pack(w, per_group, depth, filter_offset)
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        let requant = if supported { Requant::new(q, out_c) } else { Requant::default() };
        let weight_bound = sum_bound::<W>(depth, q.input_offset, filter_offset);
        let panel_rq = if requant.vector_ok {
            (0..packed.len()).map(|g| requant.panels(g * per_group, per_group)).collect()
        } else {
            Vec::new()
        };
        Qs8ConvPlan {
            isa: isa.clamp_to_cpu(),
            p: *params,
            q: q.clone(),
            in_shape,
            filter_shape,
            out_shape,
            per_group,
            depth,
            kp: depth.div_ceil(2) * 2,
            input_offset: q.input_offset,
            packed,
            requant,
            panel_rq,
            weight_bound,
            #[cfg(target_arch = "aarch64")]
            dot,
            supported,
        }
    }

    pub fn supported(&self) -> bool {
        self.supported
    }

    pub fn isa(&self) -> IsaLevel {
        self.isa
    }

    /// Output pixels: `batches * out_h * out_w`.
    pub fn rows(&self) -> usize {
        self.out_shape[0] * self.out_shape[1] * self.out_shape[2]
    }

    /// Values per output row: `out_c`.
    pub fn row_len(&self) -> usize {
        self.out_shape[3]
    }

    /// Compute the whole output.
    pub fn run<T: Q8>(&self, input: &[T], bias: Option<&[i32]>, output: &mut [T], scratch: &mut Qs8Scratch) {
        let len = self.rows() * self.row_len();
        self.run_rows(input, bias, &mut output[..len], 0, scratch);
    }

    /// Compute output pixels `row_start .. row_start + output_rows.len() / out_c`.
    pub fn run_rows<T: Q8>(
        &self,
        input: &[T],
        bias: Option<&[i32]>,
        output_rows: &mut [T],
        row_start: usize,
        scratch: &mut Qs8Scratch,
    ) {
        assert!(self.supported, "unsupported conv plan: use the reference kernel");
        let out_c = self.out_shape[3];
        if out_c == 0 || output_rows.is_empty() {
            return;
        }
        assert!(output_rows.len().is_multiple_of(out_c), "output_rows is not a whole number of rows");
        let rows = output_rows.len() / out_c;
        assert!(row_start + rows <= self.rows(), "rows past the output");
        let [batches, in_h, in_w, in_c] = self.in_shape;
        assert!(input.len() >= batches * in_h * in_w * in_c, "input too short");
        if let Some(b) = bias {
            assert!(b.len() >= out_c, "bias too short");
        }
        let pg = self.per_group;
        let kp = self.kp;
        let ldc = pg.div_ceil(NR) * NR;
        let block = im2col_block_rows(kp, rows);
        #[cfg(target_arch = "aarch64")]
        if let Some(dot) = &self.dot {
            // Built for int8 weights, so for int8 inputs (the other paths'
            // panels are not kept).
            assert!(T::SIGNED, "an int8 conv plan run on uint8 data");
            let geometry = Im2col {
                p: &self.p,
                in_shape: self.in_shape,
                filter_shape: self.filter_shape,
                out_shape: self.out_shape,
            };
            let Qs8Scratch { a8, acc, .. } = scratch;
            let block = im2col_block_rows(dot.k16, rows);
            a8.resize(block * dot.k16, 0);
            acc.resize(block * ldc, 0);
            let mut r = 0;
            while r < rows {
                let m = block.min(rows - r);
                for g in 0..self.packed.len() {
                    let a8 = &mut a8[..m * dot.k16];
                    geometry.rows(input, row_start + r, m, g, self.depth, a8, dot.pad, |src, d| {
                        for (d, s) in d.iter_mut().zip(src) {
                            *d = s.to_i32() as i8;
                        }
                    });
                    dot.gemm(g, m, a8, &mut acc[..m * ldc], ldc);
                    for i in 0..m {
                        let out = &mut output_rows[(r + i) * out_c + g * pg..(r + i) * out_c + (g + 1) * pg];
                        self.requant.apply(self.isa, &self.q, &acc[i * ldc..i * ldc + pg], bias, g * pg, out);
                    }
                }
                r += m;
            }
            return;
        }
        let Qs8Scratch { a, acc, bias16, .. } = scratch;
        if a.len() < block * kp {
            a.resize(block * kp, 0);
        }
        let token = Avx2Fma::new(self.isa);
        if let (Some(t), false) = (token, self.panel_rq.is_empty()) {
            // Requantise in the micro-kernel: the int32 sums never leave
            // the registers.
            let panels = pg.div_ceil(NR);
            bias16.clear();
            bias16.resize(self.packed.len() * panels * NR, 0);
            if let Some(b) = bias {
                for (g, dst) in bias16.chunks_exact_mut(panels * NR).enumerate() {
                    dst[..pg].copy_from_slice(&b[g * pg..(g + 1) * pg]);
                }
            }
            let oc = [self.q.output_offset, self.q.act_min, self.q.act_max];
            let mode = self.requant.mode(self.weight_bound, bias);
            let mut r = 0;
            while r < rows {
                let m = block.min(rows - r);
                for (g, packed) in self.packed.iter().enumerate() {
                    self.im2col(input, row_start + r, m, g, &mut a[..m * kp]);
                    let b16 = &bias16[g * panels * NR..(g + 1) * panels * NR];
                    let epi = avx2::Epilogue { rq: &self.panel_rq[g], bias: b16, mode, oc };
                    walk_tiles(m, panels, packed.k2, |i, js| {
                        let mr = MR.min(m - i);
                        let out = &mut output_rows[(r + i) * out_c + g * pg..];
                        avx2::gemm_requant_tiles(t, mr, packed.k2, &a[i * kp..], kp, packed, js, &epi, out, out_c, pg);
                    });
                }
                r += m;
            }
            return;
        }
        if acc.len() < block * ldc {
            acc.resize(block * ldc, 0);
        }
        let mut r = 0;
        while r < rows {
            let m = block.min(rows - r);
            for (g, packed) in self.packed.iter().enumerate() {
                self.im2col(input, row_start + r, m, g, &mut a[..m * kp]);
                gemm_i32(self.isa, m, &a[..m * kp], kp, packed, &mut acc[..m * ldc], ldc);
                for i in 0..m {
                    let out = &mut output_rows[(r + i) * out_c + g * pg..(r + i) * out_c + (g + 1) * pg];
                    self.requant.apply(self.isa, &self.q, &acc[i * ldc..i * ldc + pg], bias, g * pg, out);
                }
            }
            r += m;
        }
    }

    /// Receptive fields of pixels `first .. first + m`, group `g`, as
    /// `x + input_offset` (0 for padding taps and the even-depth pad).
    fn im2col<T: Q8>(&self, input: &[T], first: usize, m: usize, g: usize, dst: &mut [i16]) {
        let geometry =
            Im2col { p: &self.p, in_shape: self.in_shape, filter_shape: self.filter_shape, out_shape: self.out_shape };
        let off = self.input_offset;
        geometry.rows(input, first, m, g, self.depth, &mut dst[..m * self.kp], 0, |src, d| widen(src, off, d));
    }
}

#[inline(always)]
fn widen<T: QType>(src: &[T], off: i32, dst: &mut [i16]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = (s.to_i32() + off) as i16;
    }
}

/// A quantised DEPTHWISE_CONV_2D with its weights widened to
/// `w + filter_offset` in i32, laid out `[tap][out_c]`.
#[derive(Clone, Debug)]
pub struct Qs8DepthwisePlan {
    isa: IsaLevel,
    p: DepthwiseParams,
    q: ConvQuantParams,
    in_shape: [usize; 4],
    filter_shape: [usize; 4],
    out_shape: [usize; 4],
    w: Vec<i32>,
    requant: Requant,
    fast: Option<DwFast>,
    supported: bool,
}

/// The bounds the SIMD depthwise sums rely on: every tap's `c` input
/// values and weight row (`w` is `[tap][c]`, `w_len` long).
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(dead_code))]
fn check_dw_row(input_len: usize, w_len: usize, taps: &[(usize, usize)], c: usize) {
    for &(xo, t) in taps {
        assert!(xo + c <= input_len && (t + 1) * c <= w_len);
    }
}

/// Most taps (`kh * kw`) the AVX2 depthwise kernel takes.
const DW_MAX_TAPS: usize = 64;

/// Prepared data of the AVX2 depthwise kernel (depth multiplier 1, whole
/// blocks of 16 channels). Padding taps read `pad`, a row of the input zero
/// point, so every pixel runs all taps: `x * w` summed over all taps plus
/// `corr = input_offset * sum(w)` equals the reference's sum of
/// `(x + input_offset) * w` over the valid taps (a padding tap adds
/// `(-input_offset + input_offset) * w = 0`), in wrapping int32.
#[derive(Clone, Debug)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
struct DwFast {
    /// Input (and filter) type is signed.
    signed: bool,
    /// Channels done by the kernel: `out_c / 16 * 16`.
    c16: usize,
    /// Weights `w + filter_offset` as i16 pairs of taps `(2p, 2p + 1)`:
    /// `wp[(p * c16 + c) * 2 + s]`, zero for the missing tap of an odd count.
    wp: Vec<i16>,
    /// `input_offset * sum_t (w_t + filter_offset)` per channel.
    corr: Vec<i32>,
    /// [`sum_bound`] of the sums before the bias.
    weight_bound: i64,
    /// `c16` bytes of the input zero point (`-input_offset`).
    pad: Vec<u8>,
    /// Input offsets of the taps `(2p, 2p + 1)` from a pixel's first tap
    /// (`((fy * dilation_h) * in_w + fx * dilation_w) * in_c`); an odd
    /// count repeats the last tap, whose pair weight is zero.
    pair_deltas: Vec<(usize, usize)>,
}

impl DwFast {
    fn new<W: Q8>(
        q: &ConvQuantParams,
        requant: &Requant,
        filter: &[W],
        taps: usize,
        out_c: usize,
        filter_offset: i32,
    ) -> Option<DwFast> {
        let zp = -(q.input_offset as i64);
        let ok = requant.vector_ok
            && (16..=1 << 24).contains(&out_c)
            && (1..=DW_MAX_TAPS).contains(&taps)
            && filter.len() >= taps * out_c
            && offset_fits::<W>(filter_offset)
            && (W::MIN as i64..=W::MAX as i64).contains(&zp)
            && q.act_min >= W::MIN
            && q.act_max <= W::MAX
            && requant.mult.len() >= out_c;
        if !ok {
            return None;
        }
        let c16 = out_c / 16 * 16;
        let pairs = taps.div_ceil(2);
        let mut wp = vec![0i16; pairs * c16 * 2];
        let mut corr = vec![0i32; c16];
        let weight_bound = sum_bound::<W>(taps, q.input_offset, filter_offset);
        for t in 0..taps {
            let (pi, s) = (t / 2, t % 2);
            for c in 0..c16 {
                let w = filter[t * out_c + c].to_i32() + filter_offset;
                wp[(pi * c16 + c) * 2 + s] = w as i16;
                corr[c] = corr[c].wrapping_add(w.wrapping_mul(q.input_offset));
            }
        }
        Some(DwFast {
            signed: W::SIGNED,
            c16,
            wp,
            corr,
            weight_bound,
            pad: vec![zp as u8; c16],
            pair_deltas: Vec::new(),
        })
    }
}

impl Qs8DepthwisePlan {
    /// Shapes as for the reference `depthwise_conv2d_i8` / `_u8`, filter
    /// `[1, kh, kw, out_c]`.
    #[allow(clippy::too_many_arguments)]
    pub fn new<W: Q8>(
        isa: IsaLevel,
        params: &DepthwiseParams,
        q: &ConvQuantParams,
        in_shape: [usize; 4],
        filter: &[W],
        filter_shape: [usize; 4],
        out_shape: [usize; 4],
    ) -> Qs8DepthwisePlan {
        let [batches, _, _, in_c] = in_shape;
        let [f_one, f_h, f_w, f_c] = filter_shape;
        let [out_b, _, _, out_c] = out_shape;
        let filter_offset = if W::SIGNED { 0 } else { q.filter_offset };
        let nmult = q.output_multiplier.len();
        let supported = f_one == 1
            && params.depth_multiplier >= 1
            && out_c == in_c * params.depth_multiplier
            && f_c == out_c
            && out_b == batches
            && params.stride_h >= 1
            && params.stride_w >= 1
            && params.dilation_h >= 1
            && params.dilation_w >= 1
            && filter.len() >= f_h * f_w * f_c
            && (nmult == 1 || nmult >= out_c)
            && q.output_shift.len() == nmult;
        let w = if supported {
            filter[..f_h * f_w * f_c].iter().map(|v| v.to_i32() + filter_offset).collect()
        } else {
            Vec::new()
        };
        let requant = if supported { Requant::new(q, out_c) } else { Requant::default() };
        let fast = if supported && params.depth_multiplier == 1 {
            DwFast::new(q, &requant, filter, f_h * f_w, out_c, filter_offset).map(|mut f| {
                let (in_w, in_c) = (in_shape[2], in_shape[3]);
                let d: Vec<usize> = (0..f_h * f_w)
                    .map(|t| ((t / f_w * params.dilation_h) * in_w + t % f_w * params.dilation_w) * in_c)
                    .collect();
                f.pair_deltas = d.chunks(2).map(|c| (c[0], c[c.len() - 1])).collect();
                f
            })
        } else {
            None
        };
        Qs8DepthwisePlan {
            isa: isa.clamp_to_cpu(),
            p: *params,
            q: q.clone(),
            in_shape,
            filter_shape,
            out_shape,
            w,
            requant,
            fast,
            supported,
        }
    }

    pub fn supported(&self) -> bool {
        self.supported
    }

    pub fn isa(&self) -> IsaLevel {
        self.isa
    }

    pub fn rows(&self) -> usize {
        self.out_shape[0] * self.out_shape[1] * self.out_shape[2]
    }

    pub fn row_len(&self) -> usize {
        self.out_shape[3]
    }

    pub fn run<T: Q8>(&self, input: &[T], bias: Option<&[i32]>, output: &mut [T], scratch: &mut Qs8Scratch) {
        let len = self.rows() * self.row_len();
        self.run_rows(input, bias, &mut output[..len], 0, scratch);
    }

    /// Compute output pixels `row_start .. row_start + output_rows.len() / out_c`.
    pub fn run_rows<T: Q8>(
        &self,
        input: &[T],
        bias: Option<&[i32]>,
        output_rows: &mut [T],
        row_start: usize,
        scratch: &mut Qs8Scratch,
    ) {
        assert!(self.supported, "unsupported depthwise plan: use the reference kernel");
        let out_c = self.out_shape[3];
        if out_c == 0 || output_rows.is_empty() {
            return;
        }
        assert!(output_rows.len().is_multiple_of(out_c), "output_rows is not a whole number of rows");
        let rows = output_rows.len() / out_c;
        assert!(row_start + rows <= self.rows(), "rows past the output");
        let [batches, in_h, in_w, in_c] = self.in_shape;
        assert!(input.len() >= batches * in_h * in_w * in_c, "input too short");
        if let Some(b) = bias {
            assert!(b.len() >= out_c, "bias too short");
        }
        let [_, f_h, f_w, _] = self.filter_shape;
        let [_, out_h, out_w, _] = self.out_shape;
        let p = &self.p;
        let dm = p.depth_multiplier;
        let off = self.q.input_offset;
        let token = if dm == 1 { Avx2Fma::new(self.isa) } else { None };
        if let (Some(f), Some(t)) = (&self.fast, token) {
            if f.signed == T::SIGNED {
                self.run_rows_fast(t, f, input, bias, output_rows, row_start, scratch);
                return;
            }
        }
        let Qs8Scratch { acc, taps, .. } = scratch;
        if acc.len() < out_c {
            acc.resize(out_c, 0);
        }
        let acc = &mut acc[..out_c];
        for (i, out) in output_rows.chunks_exact_mut(out_c).enumerate() {
            let pix = row_start + i;
            let ox = pix % out_w;
            let oy = (pix / out_w) % out_h;
            let b = pix / (out_w * out_h);
            let iy0 = (oy * p.stride_h) as isize - p.pad_top as isize;
            let ix0 = (ox * p.stride_w) as isize - p.pad_left as isize;
            // Valid taps: (input offset of the pixel, tap index).
            taps.clear();
            for fy in 0..f_h {
                let iy = iy0 + (fy * p.dilation_h) as isize;
                if iy < 0 || iy >= in_h as isize {
                    continue;
                }
                for fx in 0..f_w {
                    let ix = ix0 + (fx * p.dilation_w) as isize;
                    if ix < 0 || ix >= in_w as isize {
                        continue;
                    }
                    taps.push((((b * in_h + iy as usize) * in_w + ix as usize) * in_c, fy * f_w + fx));
                }
            }
            let done = match token {
                Some(t) => avx2::dwconv_row(t, input, &self.w, taps, off, acc),
                #[cfg(target_arch = "aarch64")]
                None if dm == 1 => {
                    Neon::new(self.isa).map_or(0, |t| neon::dwconv_row(t, input, &self.w, taps, off, acc))
                }
                None => 0,
            };
            acc[done..].fill(0);
            for &(xo, t) in taps.iter() {
                let x = &input[xo..xo + in_c];
                let w = &self.w[t * out_c..(t + 1) * out_c];
                if dm == 1 {
                    for ((a, xv), &wv) in acc[done..].iter_mut().zip(&x[done..]).zip(&w[done..]) {
                        *a = a.wrapping_add(wv.wrapping_mul(xv.to_i32() + off));
                    }
                } else {
                    for (oc, (a, &wv)) in acc.iter_mut().zip(w).enumerate() {
                        *a = a.wrapping_add(wv.wrapping_mul(x[oc / dm].to_i32() + off));
                    }
                }
            }
            self.requant.apply(self.isa, &self.q, acc, bias, 0, out);
        }
    }
}

impl Qs8DepthwisePlan {
    /// The AVX2 path (`self.fast`): all taps of each pixel (padding ones
    /// reading `f.pad`), 16 channels at a time, requantised in registers;
    /// the last `out_c % 16` channels run the portable loop.
    #[allow(clippy::too_many_arguments)]
    fn run_rows_fast<T: Q8>(
        &self,
        t: Avx2Fma,
        f: &DwFast,
        input: &[T],
        bias: Option<&[i32]>,
        output_rows: &mut [T],
        row_start: usize,
        scratch: &mut Qs8Scratch,
    ) {
        let [_, in_h, in_w, in_c] = self.in_shape;
        let [_, f_h, f_w, _] = self.filter_shape;
        let [_, out_h, out_w, out_c] = self.out_shape;
        let p = &self.p;
        let off = self.q.input_offset;
        let oc = [self.q.output_offset, self.q.act_min, self.q.act_max];
        let taps = &mut scratch.taps;
        let rows = output_rows.len() / out_c;
        // Output columns whose taps are all inside the input horizontally:
        // `ox_lo .. ox_hi` (empty when none).
        let span_w = (f_w - 1) * p.dilation_w;
        let ox_lo = p.pad_left.div_ceil(p.stride_w);
        let ox_hi = (in_w + p.pad_left).checked_sub(span_w + 1).map_or(0, |v| v / p.stride_w + 1).min(out_w);
        let whole = f.c16 == out_c;
        let mode = self.requant.mode(f.weight_bound, bias);
        let mut i = 0;
        while i < rows {
            let pix = row_start + i;
            let ox = pix % out_w;
            let oy = (pix / out_w) % out_h;
            let b = pix / (out_w * out_h);
            let iy0 = (oy * p.stride_h) as isize - p.pad_top as isize;
            let ix0 = (ox * p.stride_w) as isize - p.pad_left as isize;
            let rows_in = iy0 >= 0 && iy0 as usize + (f_h - 1) * p.dilation_h < in_h;
            if whole && rows_in && ox >= ox_lo && ox < ox_hi {
                // A run of interior pixels along the row.
                let n = (ox_hi - ox).min(rows - i);
                let base = ((b * in_h + iy0 as usize) * in_w + ix0 as usize) * in_c;
                let out = &mut output_rows[i * out_c..(i + n) * out_c];
                avx2::dwconv16_span(t, input, f, &self.requant, mode, bias, oc, base, p.stride_w * in_c, n, out);
                i += n;
                continue;
            }
            let out = &mut output_rows[i * out_c..(i + 1) * out_c];
            i += 1;
            // Every tap in order: (input offset of the pixel or PAD, tap).
            taps.clear();
            for fy in 0..f_h {
                let iy = iy0 + (fy * p.dilation_h) as isize;
                let row_ok = iy >= 0 && iy < in_h as isize;
                for fx in 0..f_w {
                    let ix = ix0 + (fx * p.dilation_w) as isize;
                    let xo = if row_ok && ix >= 0 && ix < in_w as isize {
                        ((b * in_h + iy as usize) * in_w + ix as usize) * in_c
                    } else {
                        PAD
                    };
                    taps.push((xo, fy * f_w + fx));
                }
            }
            let (head, tail) = out.split_at_mut(f.c16);
            avx2::dwconv16_row(t, input, f, &self.requant, mode, bias, oc, taps, head);
            for (j, o) in tail.iter_mut().enumerate() {
                let c = f.c16 + j;
                let mut acc = 0i32;
                for &(xo, tap) in taps.iter().filter(|tp| tp.0 != PAD) {
                    let wv = self.w[tap * out_c + c];
                    acc = acc.wrapping_add(wv.wrapping_mul(input[xo + c].to_i32() + off));
                }
                *o = finish(&self.q, acc, bias, c, self.q.output_offset);
            }
        }
    }
}

/// The input offset of a padding tap in the fast depthwise tap lists.
const PAD: usize = usize::MAX;

/// A quantised FULLY_CONNECTED (int8 or uint8) with its weights packed for
/// the int16 GEMM; requantises in `f64` like the reference.
#[derive(Clone, Debug)]
pub struct Qs8FullyConnectedPlan {
    isa: IsaLevel,
    q: ConvQuantParams,
    packed: PackedQs8,
    depth: usize,
    out_units: usize,
    supported: bool,
}

impl Qs8FullyConnectedPlan {
    /// `weights` is `[out_units, depth]`. The filter zero point is applied
    /// (0 for per-channel parameters), as the reference FC does.
    pub fn new<W: Q8>(
        isa: IsaLevel,
        q: &ConvQuantParams,
        weights: &[W],
        out_units: usize,
        depth: usize,
    ) -> Qs8FullyConnectedPlan {
        let nreal = q.real_multiplier.len();
        let supported = weights.len() >= out_units * depth
            && (nreal == 1 || nreal >= out_units)
            && offset_fits::<W>(q.filter_offset)
            && offset_fits::<W>(q.input_offset);
        let packed =
            if supported { PackedQs8::pack(weights, out_units, depth, q.filter_offset) } else { PackedQs8::empty() };
        Qs8FullyConnectedPlan { isa: isa.clamp_to_cpu(), q: q.clone(), packed, depth, out_units, supported }
    }

    pub fn supported(&self) -> bool {
        self.supported
    }

    pub fn isa(&self) -> IsaLevel {
        self.isa
    }

    /// Values per output row: `out_units`.
    pub fn row_len(&self) -> usize {
        self.out_units
    }

    /// `output_rows` (a whole number of rows of `out_units`) from the
    /// matching input rows, starting at batch row `row_start`.
    pub fn run_rows<T: Q8>(
        &self,
        input: &[T],
        bias: Option<&[i32]>,
        output_rows: &mut [T],
        row_start: usize,
        scratch: &mut Qs8Scratch,
    ) {
        assert!(self.supported, "unsupported FC plan: use the reference kernel");
        let (n, k) = (self.out_units, self.depth);
        if n == 0 || output_rows.is_empty() {
            return;
        }
        assert!(output_rows.len().is_multiple_of(n), "output_rows is not a whole number of rows");
        let rows = output_rows.len() / n;
        assert!(input.len() >= (row_start + rows) * k, "input too short");
        if let Some(b) = bias {
            assert!(b.len() >= n, "bias too short");
        }
        let kp = self.packed.k2 * 2;
        let ldc = self.packed.panels() * NR;
        let block = im2col_block_rows(kp, rows);
        let Qs8Scratch { a, acc, .. } = scratch;
        if a.len() < block * kp {
            a.resize(block * kp, 0);
        }
        if acc.len() < block * ldc {
            acc.resize(block * ldc, 0);
        }
        let off = self.q.input_offset;
        let mut r = 0;
        while r < rows {
            let m = block.min(rows - r);
            for (i, dst) in a[..m * kp].chunks_exact_mut(kp).enumerate() {
                let src = &input[(row_start + r + i) * k..(row_start + r + i + 1) * k];
                widen(src, off, &mut dst[..k]);
                dst[k..].fill(0);
            }
            gemm_i32(self.isa, m, &a[..m * kp], kp, &self.packed, &mut acc[..m * ldc], ldc);
            for i in 0..m {
                let out = &mut output_rows[(r + i) * n..(r + i + 1) * n];
                for (c, (o, &s)) in out.iter_mut().zip(&acc[i * ldc..i * ldc + n]).enumerate() {
                    *o = finish_fc(&self.q, s, bias, c, self.q.output_offset);
                }
            }
            r += m;
        }
    }

    /// Output units `col_start .. col_start + out_cols.len()` of a single
    /// input row (a GEMV split across threads); `col_start` is a multiple
    /// of 16.
    pub fn run_cols<T: Q8>(
        &self,
        input_row: &[T],
        bias: Option<&[i32]>,
        out_cols: &mut [T],
        col_start: usize,
        scratch: &mut Qs8Scratch,
    ) {
        assert!(self.supported, "unsupported FC plan: use the reference kernel");
        let (n, k) = (out_cols.len(), self.depth);
        assert!(col_start.is_multiple_of(NR) && col_start + n <= self.out_units, "columns past the output");
        assert!(input_row.len() >= k, "input too short");
        if n == 0 {
            return;
        }
        if let Some(b) = bias {
            assert!(b.len() >= self.out_units, "bias too short");
        }
        let kp = self.packed.k2 * 2;
        let panels = col_start / NR..(col_start + n).div_ceil(NR);
        let ldc = panels.len() * NR;
        let Qs8Scratch { a, acc, .. } = scratch;
        a.resize(a.len().max(kp), 0);
        acc.resize(acc.len().max(ldc), 0);
        widen(&input_row[..k], self.q.input_offset, &mut a[..k]);
        a[k..kp].fill(0);
        gemm_i32_panels(self.isa, 1, &a[..kp], kp, &self.packed, panels, &mut acc[..ldc], ldc);
        for (i, (o, &s)) in out_cols.iter_mut().zip(acc.iter()).enumerate() {
            *o = finish_fc(&self.q, s, bias, col_start + i, self.q.output_offset);
        }
    }

    /// All `batches` rows.
    pub fn run<T: Q8>(
        &self,
        input: &[T],
        bias: Option<&[i32]>,
        output: &mut [T],
        batches: usize,
        scratch: &mut Qs8Scratch,
    ) {
        self.run_rows(input, bias, &mut output[..batches * self.out_units], 0, scratch);
    }
}

#[cfg(target_arch = "aarch64")]
#[allow(unsafe_code)]
pub(crate) mod neon {
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
    pub(super) fn gemm_tile(
        _t: Neon,
        m: usize,
        k2: usize,
        a: &[i16],
        lda: usize,
        w: Panel<'_>,
        c: &mut [i32],
        ldc: usize,
    ) {
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
                    let x = [
                        vmovl_s16(vget_low_s16(lo)),
                        vmovl_high_s16(lo),
                        vmovl_s16(vget_low_s16(hi)),
                        vmovl_high_s16(hi),
                    ]
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
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
pub(crate) mod avx2 {
    use super::{
        check_dw_row, tile_run, DwFast, FloatTail, PackedQs8, Panel, Requant, RequantMode, TailScale, DW_MAX_TAPS, NR,
        PAD, Q8, RQ_FIELDS,
    };
    use crate::optimized::isa::Avx2Fma;
    use std::arch::x86_64::*;
    use std::ops::Range;

    /// `$kernel::<G.., M>(args)` for the row count `m` in `1..=6`, with the
    /// panel's storage as the leading `NARROW` parameter after `G`.
    macro_rules! by_rows {
        ($m:expr, $narrow:expr, $kernel:ident [$($g:ty),*], ($($arg:expr),*)) => {
            if $narrow {
                by_rows!(@m $m, $kernel [$($g,)*] true, ($($arg),*))
            } else {
                by_rows!(@m $m, $kernel [$($g,)*] false, ($($arg),*))
            }
        };
        (@m $m:expr, $kernel:ident [$($g:ty,)*] $n:literal, ($($arg:expr),*)) => {
            match $m {
                1 => $kernel::<$($g,)* $n, 1>($($arg),*),
                2 => $kernel::<$($g,)* $n, 2>($($arg),*),
                3 => $kernel::<$($g,)* $n, 3>($($arg),*),
                4 => $kernel::<$($g,)* $n, 4>($($arg),*),
                5 => $kernel::<$($g,)* $n, 5>($($arg),*),
                _ => $kernel::<$($g,)* $n, 6>($($arg),*),
            }
        };
    }

    /// A panel as a byte pointer, whether it is 8-bit, and its length in
    /// values.
    pub(super) fn panel_ptr(w: Panel<'_>) -> (*const u8, bool, usize) {
        match w {
            Panel::Narrow(w) => (w.as_ptr() as *const u8, true, w.len()),
            Panel::Wide(w) => (w.as_ptr() as *const u8, false, w.len()),
        }
    }

    /// Depth pair `p`'s two weight registers (8 channels' i16 pairs each).
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn load_pair<const NARROW: bool>(w: *const u8, p: usize) -> (__m256i, __m256i) {
        // SAFETY: the callers checked `k2 * 32` values behind `w`.
        unsafe {
            if NARROW {
                let q = w.add(p * 2 * NR);
                (
                    _mm256_cvtepi8_epi16(_mm_loadu_si128(q as *const __m128i)),
                    _mm256_cvtepi8_epi16(_mm_loadu_si128(q.add(NR) as *const __m128i)),
                )
            } else {
                let q = w.add(p * 2 * NR * 2);
                (_mm256_loadu_si256(q as *const __m256i), _mm256_loadu_si256(q.add(2 * NR) as *const __m256i))
            }
        }
    }

    /// One tile of up to 6 rows × 16 columns (see `gemm_i32` for shapes).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn gemm_tile(
        _t: Avx2Fma,
        m: usize,
        k2: usize,
        a: &[i16],
        lda: usize,
        w: Panel<'_>,
        c: &mut [i32],
        ldc: usize,
    ) {
        let (w, narrow, w_len) = panel_ptr(w);
        assert!((1..=6).contains(&m));
        assert!(a.len() >= (m - 1) * lda + 2 * k2 && w_len >= k2 * 2 * NR && c.len() >= (m - 1) * ldc + NR);
        let (a, c) = (a.as_ptr(), c.as_mut_ptr());
        // SAFETY: the token proves AVX2 is available; the asserts above
        // bound every access the kernels make (rows `< m` of `2 * k2`
        // values at stride `lda`, `k2 * 32` weights, 16 sums per row).
        unsafe { by_rows!(m, narrow, qs8_gemm_mx16c2_avx2 [], (k2, a, lda, w, c, ldc)) }
    }

    /// The fused epilogue of a group's panels: `Requant::panels`
    /// (`RQ_FIELDS * 16` values per panel), the bias (16 per panel), the
    /// mode, and `[output_offset, act_min, act_max]`.
    #[allow(dead_code)]
    pub(super) struct Epilogue<'a> {
        pub rq: &'a [i32],
        pub bias: &'a [i32],
        pub mode: RequantMode,
        pub oc: [i32; 3],
    }

    /// Up to 6 rows of panels `js` of `w`, requantised straight into `out`:
    /// rows at stride `ldo`, panel `j`'s columns at `16 * j ..` of the
    /// group's `cols`. One call for a run of panels keeps a shallow layer
    /// from paying the checks and set-up per 6x16 tile.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn gemm_requant_tiles<T: Q8>(
        _t: Avx2Fma,
        m: usize,
        k2: usize,
        a: &[i16],
        lda: usize,
        w: &PackedQs8,
        js: Range<usize>,
        epi: &Epilogue<'_>,
        out: &mut [T],
        ldo: usize,
        cols: usize,
    ) {
        if js.is_empty() {
            return;
        }
        assert_eq!(k2, w.k2, "depth pairs of the weights");
        let (w0, narrow, stride, end_col) = tile_run(w, &js, m, a.len(), lda, out.len(), ldo, cols);
        assert!(epi.rq.len() >= js.end * RQ_FIELDS * NR && epi.bias.len() >= js.end * NR);
        let (a, o) = (a.as_ptr(), out.as_mut_ptr() as *mut u8);
        let (rq, bias) = (epi.rq.as_ptr(), epi.bias.as_ptr());
        let (mode, oc) = (epi.mode, epi.oc);
        // SAFETY: the token proves AVX2 is available; the asserts above
        // bound every access (rows `< m` of `2 * k2` values at stride
        // `lda`; panels `js` of `k2 * 32` weights each, `stride` bytes
        // apart, the last one checked; 96 + 16 epilogue values per panel;
        // `min(16, cols - 16 j)` bytes from column `16 j` of each output
        // row at stride `ldo`, up to `end_col`; `T` is one byte).
        unsafe {
            by_rows!(
                m,
                narrow,
                qs8_gemm_mx16c2_rq_run_avx2[T],
                (
                    k2,
                    a,
                    lda,
                    w0,
                    stride,
                    js.len(),
                    rq.add(js.start * RQ_FIELDS * NR),
                    bias.add(js.start * NR),
                    mode,
                    oc,
                    o.add(js.start * NR),
                    ldo,
                    end_col - js.start * NR
                )
            )
        }
    }

    /// The signature of [`qs8_gemm_mx16c2_rq_avx2`].
    type RqKernel = unsafe fn(
        usize,
        *const i16,
        usize,
        *const u8,
        *const i32,
        *const i32,
        RequantMode,
        [i32; 3],
        *mut u8,
        usize,
        usize,
    );

    /// [`qs8_gemm_mx16c2_rq_avx2`] over `panels` consecutive panels
    /// (`stride` bytes apart), the `cols` output columns from `out`.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2")]
    unsafe fn qs8_gemm_mx16c2_rq_run_avx2<T: Q8, const NARROW: bool, const M: usize>(
        k2: usize,
        a: *const i16,
        lda: usize,
        w: *const u8,
        stride: usize,
        panels: usize,
        rq: *const i32,
        bias: *const i32,
        mode: RequantMode,
        oc: [i32; 3],
        out: *mut u8,
        ldo: usize,
        cols: usize,
    ) {
        // SAFETY: the caller (`gemm_requant_tiles`) checked the bounds.
        unsafe {
            // Most layers run in the short mode: its own copy of the
            // kernel has no flag tests in the row loop.
            let kernel: RqKernel = match mode {
                RequantMode::Short => qs8_gemm_mx16c2_rq_avx2::<T, NARROW, M, true>,
                RequantMode::Full { .. } => qs8_gemm_mx16c2_rq_avx2::<T, NARROW, M, false>,
            };
            for j in 0..panels {
                let nc = NR.min(cols - j * NR);
                let (rq, bias) = (rq.add(j * RQ_FIELDS * NR), bias.add(j * NR));
                kernel(k2, a, lda, w.add(j * stride), rq, bias, mode, oc, out.add(j * NR), ldo, nc);
            }
        }
    }

    /// Up to 6 rows of panels `js` with the float epilogue (see
    /// `super::gemm_f32_tiles`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn gemm_float_tiles(
        _t: Avx2Fma,
        m: usize,
        k2: usize,
        a: &[i16],
        lda: usize,
        w: &PackedQs8,
        js: Range<usize>,
        tail: &FloatTail<'_>,
        out: &mut [f32],
        ldo: usize,
        cols: usize,
    ) {
        if js.is_empty() {
            return;
        }
        assert_eq!(k2, w.k2, "depth pairs of the weights");
        let (w0, narrow, stride, end_col) = tile_run(w, &js, m, a.len(), lda, out.len(), ldo, cols);
        if let TailScale::PerChannel(w) = tail.scale {
            assert!(w.len() >= js.end * NR, "per-channel scales for the panels");
        }
        assert!(tail.bias.is_none_or(|b| b.len() >= js.end * NR), "bias for the panels");
        let (a, o) = (a.as_ptr(), out.as_mut_ptr());
        let (j0, n) = (js.start, js.len());
        // SAFETY: the token proves AVX2 is available; the asserts above
        // bound every access (rows `< m` of `2 * k2` values at stride
        // `lda`; panels `js` of `k2 * 32` weights, `stride` bytes apart;
        // 16 scales and biases per panel; `min(16, cols - 16 j)` floats
        // from column `16 j` of each output row at stride `ldo`).
        unsafe {
            by_rows!(m, narrow, qs8_gemm_mx16c2_f32_run_avx2 [], (k2, a, lda, w0, stride, j0, n, tail, o, ldo, end_col))
        }
    }

    /// [`qs8_gemm_mx16c2_f32_avx2`] over `n` consecutive panels from panel
    /// `j0` (`stride` bytes apart, the first at `w`), output columns up to
    /// `cols`.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2")]
    unsafe fn qs8_gemm_mx16c2_f32_run_avx2<const NARROW: bool, const M: usize>(
        k2: usize,
        a: *const i16,
        lda: usize,
        w: *const u8,
        stride: usize,
        j0: usize,
        n: usize,
        tail: &FloatTail<'_>,
        out: *mut f32,
        ldo: usize,
        cols: usize,
    ) {
        // SAFETY: the caller (`gemm_float_tiles`) checked the bounds.
        unsafe {
            for t in 0..n {
                let col = (j0 + t) * NR;
                let nc = NR.min(cols - col);
                qs8_gemm_mx16c2_f32_avx2::<NARROW, M>(k2, a, lda, w.add(t * stride), tail, col, out.add(col), ldo, nc);
            }
        }
    }

    /// `M` rows × 16 columns of int32 sums starting from `init`: per depth
    /// pair, the two weight registers, one broadcast activation pair per
    /// row, `vpmaddwd`.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn accumulate<const NARROW: bool, const M: usize>(
        k2: usize,
        a: *const i16,
        lda: usize,
        w: *const u8,
        init: [__m256i; 2],
    ) -> ([__m256i; M], [__m256i; M]) {
        // SAFETY: the callers checked the bounds of `a` and `w`.
        unsafe {
            let mut acc0 = [init[0]; M];
            let mut acc1 = [init[1]; M];
            for p in 0..k2 {
                let (w0, w1) = load_pair::<NARROW>(w, p);
                for r in 0..M {
                    let x = _mm256_set1_epi32((a.add(r * lda + 2 * p) as *const i32).read_unaligned());
                    acc0[r] = _mm256_add_epi32(acc0[r], _mm256_madd_epi16(x, w0));
                    acc1[r] = _mm256_add_epi32(acc1[r], _mm256_madd_epi16(x, w1));
                }
            }
            (acc0, acc1)
        }
    }

    /// `M` rows × 16 columns with the hybrid float epilogue, in the same
    /// operation order as `hybrid::avx2::epilogue_avx2`.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2")]
    unsafe fn qs8_gemm_mx16c2_f32_avx2<const NARROW: bool, const M: usize>(
        k2: usize,
        a: *const i16,
        lda: usize,
        w: *const u8,
        tail: &FloatTail<'_>,
        col: usize,
        out: *mut f32,
        ldo: usize,
        nc: usize,
    ) {
        // SAFETY: the caller (`qs8_gemm_mx16c2_f32_run_avx2`) checked the
        // bounds: 16 scales and biases from `col`.
        unsafe {
            let zero = _mm256_setzero_si256();
            let (acc0, acc1) = accumulate::<NARROW, M>(k2, a, lda, w, [zero, zero]);
            let vs = _mm256_set1_ps(tail.s);
            let (lo, hi) = (_mm256_set1_ps(tail.clamp[0]), _mm256_set1_ps(tail.clamp[1]));
            let bp = tail.bias.map(|b| b.as_ptr().add(col));
            // Each combination gets its own straight-line row loop: deciding
            // per row and half kept the accumulators spilled and the loop
            // branching (the epilogue was most of a shallow layer's time).
            match (tail.scale, bp) {
                (TailScale::PerChannel(w), Some(bp)) => {
                    let m = [0, 8].map(|h| _mm256_loadu_ps(w.as_ptr().add(col + h)));
                    let b = [0, 8].map(|h| _mm256_loadu_ps(bp.add(h)));
                    store_rows::<M>(acc0, acc1, lo, hi, out, ldo, nc, |x, h| {
                        _mm256_add_ps(_mm256_mul_ps(_mm256_mul_ps(x, m[h]), vs), b[h])
                    });
                }
                (TailScale::PerChannel(w), None) => {
                    let m = [0, 8].map(|h| _mm256_loadu_ps(w.as_ptr().add(col + h)));
                    store_rows::<M>(acc0, acc1, lo, hi, out, ldo, nc, |x, h| _mm256_mul_ps(_mm256_mul_ps(x, m[h]), vs));
                }
                (TailScale::PerTensor, Some(bp)) => {
                    let b = [0, 8].map(|h| _mm256_loadu_ps(bp.add(h)));
                    let z = _mm256_setzero_ps();
                    store_rows::<M>(acc0, acc1, lo, hi, out, ldo, nc, |x, h| {
                        _mm256_add_ps(_mm256_add_ps(z, _mm256_mul_ps(x, vs)), b[h])
                    });
                }
                (TailScale::PerTensor, None) => {
                    let z = _mm256_setzero_ps();
                    store_rows::<M>(acc0, acc1, lo, hi, out, ldo, nc, |x, _| _mm256_add_ps(z, _mm256_mul_ps(x, vs)));
                }
            }
        }
    }

    /// Rows `0..M` of a tile: `scale(f32(acc), half)`, clamped to
    /// `[lo, hi]`, stored as the first `nc` of 16 columns.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn store_rows<const M: usize>(
        acc0: [__m256i; M],
        acc1: [__m256i; M],
        lo: __m256,
        hi: __m256,
        out: *mut f32,
        ldo: usize,
        nc: usize,
        scale: impl Fn(__m256, usize) -> __m256,
    ) {
        // SAFETY: the caller checked that `M` rows of `nc` floats at stride
        // `ldo` from `out` are in its output.
        unsafe {
            for r in 0..M {
                let v0 = _mm256_min_ps(hi, _mm256_max_ps(lo, scale(_mm256_cvtepi32_ps(acc0[r]), 0)));
                let v1 = _mm256_min_ps(hi, _mm256_max_ps(lo, scale(_mm256_cvtepi32_ps(acc1[r]), 1)));
                let dst = out.add(r * ldo);
                if nc == NR {
                    _mm256_storeu_ps(dst, v0);
                    _mm256_storeu_ps(dst.add(8), v1);
                } else if nc == 8 {
                    _mm256_storeu_ps(dst, v0);
                } else {
                    let mut tmp = [0f32; NR];
                    _mm256_storeu_ps(tmp.as_mut_ptr(), v0);
                    _mm256_storeu_ps(tmp.as_mut_ptr().add(8), v1);
                    std::ptr::copy_nonoverlapping(tmp.as_ptr(), dst, nc);
                }
            }
        }
    }

    /// `qs8_gemm_mx16c2_avx2` with the accumulators starting at the bias
    /// (integer sums wrap, so the order does not matter) and `finish` on
    /// the registers before one 16-byte store per row. `SHORT`: `mode` is
    /// `RequantMode::Short` (a copy of the kernel without the flag tests).
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2")]
    unsafe fn qs8_gemm_mx16c2_rq_avx2<T: Q8, const NARROW: bool, const M: usize, const SHORT: bool>(
        k2: usize,
        a: *const i16,
        lda: usize,
        w: *const u8,
        q: *const i32,
        b: *const i32,
        mode: RequantMode,
        oc: [i32; 3],
        out: *mut u8,
        ldo: usize,
        nc: usize,
    ) {
        // SAFETY: the caller (`qs8_gemm_mx16c2_rq_run_avx2`) checked the
        // bounds: `RQ_FIELDS * 16` values at `q`, 16 at `b`.
        unsafe {
            let ld = |p: *const i32| _mm256_loadu_si256(p as *const __m256i);
            let (acc0, acc1) = accumulate::<NARROW, M>(k2, a, lda, w, [ld(b), ld(b.add(8))]);
            let rows = [q, q.add(NR), q.add(2 * NR), q.add(3 * NR), q.add(4 * NR), q.add(5 * NR)];
            let rq = [rq_lanes(&rows, 0), rq_lanes(&rows, 8)];
            let mode = if SHORT { RequantMode::Short } else { mode };
            for r in 0..M {
                let bytes = requant16::<T>([acc0[r], acc1[r]], &rq, mode, oc);
                let dst = out.add(r * ldo);
                if nc == NR {
                    _mm_storeu_si128(dst as *mut __m128i, bytes);
                } else if nc == 8 {
                    _mm_storel_epi64(dst as *mut __m128i, bytes);
                } else {
                    let mut tmp = [0u8; NR];
                    _mm_storeu_si128(tmp.as_mut_ptr() as *mut __m128i, bytes);
                    std::ptr::copy_nonoverlapping(tmp.as_ptr(), dst, nc);
                }
            }
        }
    }

    /// `M` rows × 16 columns: per depth pair, two loads of 8 channels'
    /// weight pairs, one broadcast activation pair per row, `vpmaddwd`.
    #[target_feature(enable = "avx2")]
    unsafe fn qs8_gemm_mx16c2_avx2<const NARROW: bool, const M: usize>(
        k2: usize,
        a: *const i16,
        lda: usize,
        w: *const u8,
        c: *mut i32,
        ldc: usize,
    ) {
        // SAFETY: the caller (`gemm_tile`) checked the bounds.
        unsafe {
            let zero = _mm256_setzero_si256();
            let (acc0, acc1) = accumulate::<NARROW, M>(k2, a, lda, w, [zero, zero]);
            for r in 0..M {
                _mm256_storeu_si256(c.add(r * ldc) as *mut __m256i, acc0[r]);
                _mm256_storeu_si256(c.add(r * ldc + 8) as *mut __m256i, acc1[r]);
            }
        }
    }

    /// `finish` on 8 channels: bias, `multiply_by_quantized_multiplier`
    /// (left shift, rounding doubling high mul, rounding right shift),
    /// output offset, clamp; `oc = [output_offset, act_min, act_max]`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn requant8(
        _t: Avx2Fma,
        acc: &[i32],
        bias: Option<&[i32]>,
        mult: &[i32],
        lsh: &[i32],
        rsh: &[i32],
        oc: [i32; 3],
        out: &mut [i32; 8],
    ) {
        assert!(acc.len() >= 8 && mult.len() >= 8 && lsh.len() >= 8 && rsh.len() >= 8);
        assert!(bias.is_none_or(|b| b.len() >= 8));
        // SAFETY: AVX2 is proven by the token; every slice has 8 values.
        unsafe {
            requant8_avx2(acc.as_ptr(), bias.map(|b| b.as_ptr()), mult.as_ptr(), lsh.as_ptr(), rsh.as_ptr(), oc, out)
        }
    }

    #[target_feature(enable = "avx2")]
    unsafe fn requant8_avx2(
        acc: *const i32,
        bias: Option<*const i32>,
        mult: *const i32,
        lsh: *const i32,
        rsh: *const i32,
        oc: [i32; 3],
        out: &mut [i32; 8],
    ) {
        // SAFETY: the caller checked 8 readable values behind each pointer.
        unsafe {
            let mut x = _mm256_loadu_si256(acc as *const __m256i);
            if let Some(b) = bias {
                x = _mm256_add_epi32(x, _mm256_loadu_si256(b as *const __m256i));
            }
            let m = _mm256_loadu_si256(mult as *const __m256i);
            let e = _mm256_loadu_si256(rsh as *const __m256i);
            let v = requant_v(x, m, _mm256_loadu_si256(lsh as *const __m256i), e, oc);
            _mm256_storeu_si256(out.as_mut_ptr() as *mut __m256i, v);
        }
    }

    /// Channels `0 .. f.c16` of one depthwise output pixel: `taps` lists
    /// every tap in order as (input offset, tap) with `PAD` for padding.
    /// `mode`: `rq.mode` for `bias`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn dwconv16_row<T: Q8>(
        _t: Avx2Fma,
        input: &[T],
        f: &DwFast,
        rq: &Requant,
        mode: RequantMode,
        bias: Option<&[i32]>,
        oc: [i32; 3],
        taps: &[(usize, usize)],
        out: &mut [T],
    ) {
        let c = f.c16;
        debug_assert_eq!(mode, rq.mode(f.weight_bound, bias), "mode chosen for another bias");
        let n = taps.len();
        assert!(n <= DW_MAX_TAPS && out.len() >= c && f.pad.len() >= c && f.corr.len() >= c);
        assert!(f.wp.len() >= n.div_ceil(2) * c * 2);
        assert!(rq.mult.len() >= c && rq.lsh.len() >= c && rq.rsh.len() >= c);
        assert!(rq.mask.len() >= c && rq.half.len() >= c && rq.round_oc.len() >= c);
        assert!(bias.is_none_or(|b| b.len() >= c));
        let mut ptrs = [f.pad.as_ptr(); DW_MAX_TAPS + 1];
        for (p, &(xo, _)) in ptrs.iter_mut().zip(taps) {
            if xo != PAD {
                assert!(xo <= input.len() && input.len() - xo >= c);
                // SAFETY: `xo + c <= input.len()` (asserted above).
                *p = unsafe { input.as_ptr().add(xo) } as *const u8;
            }
        }
        // SAFETY: AVX2 is proven by the token; each of the first `n + 1`
        // pointers has `c` readable bytes (an input row or `f.pad`; `T` is
        // one byte), the weights `ceil(n / 2) * c` pairs, the per-channel
        // arrays, bias and `out` at least `c` values (asserted above).
        unsafe {
            let k = DwArgs::new(f, rq, mode, bias, oc);
            qs8_dwconv_c16_avx2::<T>(&k, &ptrs[..n + 1], out.as_mut_ptr() as *mut u8)
        }
    }

    /// `n` interior pixels (no padding tap) of one output row, channels
    /// `0 .. f.c16 == out_c`: pixel `j`'s first tap at `base + j * step`,
    /// its outputs at `out[j * c ..]`. `mode`: `rq.mode` for `bias`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn dwconv16_span<T: Q8>(
        _t: Avx2Fma,
        input: &[T],
        f: &DwFast,
        rq: &Requant,
        mode: RequantMode,
        bias: Option<&[i32]>,
        oc: [i32; 3],
        base: usize,
        step: usize,
        n: usize,
        out: &mut [T],
    ) {
        let c = f.c16;
        debug_assert_eq!(mode, rq.mode(f.weight_bound, bias), "mode chosen for another bias");
        if n == 0 || c == 0 {
            return;
        }
        let pairs = f.pair_deltas.len();
        let reach = f.pair_deltas.iter().map(|&(a, b)| a.max(b)).max().unwrap_or(0);
        let last = (n - 1).checked_mul(step).and_then(|v| v.checked_add(base + reach + c));
        assert!(last.is_some_and(|l| l <= input.len()) && out.len() >= n * c);
        assert!(f.wp.len() >= pairs * c * 2 && f.corr.len() >= c);
        assert!(rq.mult.len() >= c && rq.lsh.len() >= c && rq.rsh.len() >= c);
        assert!(rq.mask.len() >= c && rq.half.len() >= c && rq.round_oc.len() >= c);
        assert!(bias.is_none_or(|b| b.len() >= c));
        // SAFETY: AVX2 is proven by the token; pixel `j < n` reads `c`
        // bytes at `base + j * step + delta` for its deltas, all within
        // `input` (`last` above; `T` is one byte); the weights, the
        // per-channel arrays and bias have enough values and `out` `n * c`.
        unsafe {
            let (x, o) = (input.as_ptr().add(base) as *const u8, out.as_mut_ptr() as *mut u8);
            let k = DwArgs::new(f, rq, mode, bias, oc);
            // Layers in the short mode (most) get a copy of the kernels
            // without the flag tests.
            let kernels: [unsafe fn(&DwArgs<'_>, *const u8, usize, *mut u8); 3] = match mode == RequantMode::Short {
                true => [
                    qs8_dwconv_px_c16_avx2::<T, 4, true>,
                    qs8_dwconv_px_c16_avx2::<T, 2, true>,
                    qs8_dwconv_px_c16_avx2::<T, 1, true>,
                ],
                false => [
                    qs8_dwconv_px_c16_avx2::<T, 4, false>,
                    qs8_dwconv_px_c16_avx2::<T, 2, false>,
                    qs8_dwconv_px_c16_avx2::<T, 1, false>,
                ],
            };
            let mut j = 0;
            while j + 4 <= n {
                kernels[0](&k, x.add(j * step), step, o.add(j * c));
                j += 4;
            }
            while j + 2 <= n {
                kernels[1](&k, x.add(j * step), step, o.add(j * c));
                j += 2;
            }
            if j < n {
                kernels[2](&k, x.add(j * step), step, o.add(j * c));
            }
        }
    }

    /// What `qs8_dwconv_px_c16_avx2` needs besides the pixels.
    struct DwArgs<'a> {
        c: usize,
        pd: &'a [(usize, usize)],
        wp: *const i16,
        corr: *const i32,
        bias: Option<*const i32>,
        /// Multiplier, left shift, right shift, mask, half, `round_oc`
        /// (per channel).
        rq: [*const i32; RQ_FIELDS],
        mode: RequantMode,
        oc: [i32; 3],
    }

    impl<'a> DwArgs<'a> {
        /// The arguments for channels `0 .. f.c16` (the callers check that
        /// `rq` and `bias` have that many).
        fn new(f: &'a DwFast, rq: &Requant, mode: RequantMode, bias: Option<&[i32]>, oc: [i32; 3]) -> DwArgs<'a> {
            let rq_rows = [&rq.mult, &rq.lsh, &rq.rsh, &rq.mask, &rq.half, &rq.round_oc];
            DwArgs {
                c: f.c16,
                pd: &f.pair_deltas,
                wp: f.wp.as_ptr(),
                corr: f.corr.as_ptr(),
                bias: bias.map(|b| b.as_ptr()),
                rq: rq_rows.map(|r| r.as_ptr()),
                mode,
                oc,
            }
        }
    }

    /// `P` neighbouring interior pixels (first taps at `x + q * step`),
    /// sharing each weight load; outputs at `out + q * c`. `SHORT`: the
    /// layer is in `RequantMode::Short`.
    #[target_feature(enable = "avx2")]
    unsafe fn qs8_dwconv_px_c16_avx2<T: Q8, const P: usize, const SHORT: bool>(
        k: &DwArgs<'_>,
        x: *const u8,
        step: usize,
        out: *mut u8,
    ) {
        // SAFETY: bounds checked by `dwconv16_span`.
        unsafe {
            let c = k.c;
            let mut cb = 0;
            while cb < c {
                let mut s0 = [_mm256_setzero_si256(); P];
                let mut s1 = [_mm256_setzero_si256(); P];
                for (p, &(da, db)) in k.pd.iter().enumerate() {
                    let w = k.wp.add((p * c + cb) * 2);
                    let w0 = _mm256_loadu_si256(w as *const __m256i);
                    let w1 = _mm256_loadu_si256(w.add(16) as *const __m256i);
                    for q in 0..P {
                        let px = x.add(q * step + cb);
                        let x0 = _mm_loadu_si128(px.add(da) as *const __m128i);
                        let x1 = _mm_loadu_si128(px.add(db) as *const __m128i);
                        let (lo, hi) = (_mm_unpacklo_epi8(x0, x1), _mm_unpackhi_epi8(x0, x1));
                        let (lo, hi) = if T::SIGNED {
                            (_mm256_cvtepi8_epi16(lo), _mm256_cvtepi8_epi16(hi))
                        } else {
                            (_mm256_cvtepu8_epi16(lo), _mm256_cvtepu8_epi16(hi))
                        };
                        s0[q] = _mm256_add_epi32(s0[q], _mm256_madd_epi16(lo, w0));
                        s1[q] = _mm256_add_epi32(s1[q], _mm256_madd_epi16(hi, w1));
                    }
                }
                let ld = |p: *const i32, o: usize| _mm256_loadu_si256(p.add(o) as *const __m256i);
                let mut add0 = ld(k.corr, cb);
                let mut add1 = ld(k.corr, cb + 8);
                if let Some(b) = k.bias {
                    add0 = _mm256_add_epi32(add0, ld(b, cb));
                    add1 = _mm256_add_epi32(add1, ld(b, cb + 8));
                }
                let r = [rq_lanes(&k.rq, cb), rq_lanes(&k.rq, cb + 8)];
                let mode = if SHORT { RequantMode::Short } else { k.mode };
                for q in 0..P {
                    let x = [_mm256_add_epi32(s0[q], add0), _mm256_add_epi32(s1[q], add1)];
                    let bytes = requant16::<T>(x, &r, mode, k.oc);
                    _mm_storeu_si128(out.add(q * c + cb) as *mut __m128i, bytes);
                }
                cb += 16;
            }
        }
    }

    /// `vpmaddwd` over pairs of taps: the bytes of taps `2p` and `2p + 1`
    /// are interleaved and widened to i16 pairs, times the weight pairs of
    /// 8 channels, into 8 int32 sums; two registers per 16 channels.
    /// `k.pd` is unused: the taps are `ptrs`.
    #[target_feature(enable = "avx2")]
    unsafe fn qs8_dwconv_c16_avx2<T: Q8>(k: &DwArgs<'_>, ptrs: &[*const u8], out: *mut u8) {
        // SAFETY: bounds checked by `dwconv16_row`; `ptrs` has `n + 1`
        // entries (the last one `pad`), so the odd tap pairs with it.
        unsafe {
            let (c, wp) = (k.c, k.wp);
            let n = ptrs.len() - 1;
            let pairs = n.div_ceil(2);
            let mut cb = 0;
            while cb < c {
                let mut s0 = _mm256_setzero_si256();
                let mut s1 = _mm256_setzero_si256();
                for p in 0..pairs {
                    let x0 = _mm_loadu_si128(ptrs[2 * p].add(cb) as *const __m128i);
                    let x1 = _mm_loadu_si128(ptrs[2 * p + 1].add(cb) as *const __m128i);
                    let (lo, hi) = (_mm_unpacklo_epi8(x0, x1), _mm_unpackhi_epi8(x0, x1));
                    let (lo, hi) = if T::SIGNED {
                        (_mm256_cvtepi8_epi16(lo), _mm256_cvtepi8_epi16(hi))
                    } else {
                        (_mm256_cvtepu8_epi16(lo), _mm256_cvtepu8_epi16(hi))
                    };
                    let w = wp.add((p * c + cb) * 2);
                    s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(lo, _mm256_loadu_si256(w as *const __m256i)));
                    s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(hi, _mm256_loadu_si256(w.add(16) as *const __m256i)));
                }
                let ld = |p: *const i32, o: usize| _mm256_loadu_si256(p.add(o) as *const __m256i);
                s0 = _mm256_add_epi32(s0, ld(k.corr, cb));
                s1 = _mm256_add_epi32(s1, ld(k.corr, cb + 8));
                if let Some(b) = k.bias {
                    s0 = _mm256_add_epi32(s0, ld(b, cb));
                    s1 = _mm256_add_epi32(s1, ld(b, cb + 8));
                }
                let r = [rq_lanes(&k.rq, cb), rq_lanes(&k.rq, cb + 8)];
                let bytes = requant16::<T>([s0, s1], &r, k.mode, k.oc);
                _mm_storeu_si128(out.add(cb) as *mut __m128i, bytes);
                cb += 16;
            }
        }
    }

    /// The odd 32-bit lanes moved to the even positions, for
    /// `_mm256_mul_epi32` on the odd lanes. (Shifting them down by 32 bits
    /// instead makes LLVM emulate a full 64-bit multiply.)
    #[inline]
    #[target_feature(enable = "avx2")]
    fn odd_lanes(v: __m256i) -> __m256i {
        _mm256_shuffle_epi32(v, 0b11_11_01_01)
    }

    /// TFLite's saturating rounding doubling high multiply on 8 lanes:
    /// `(a * m + 2^30) >> 31`, which equals the reference's sign-dependent
    /// nudge and truncating division (bits 31..62 of the 64-bit sums, even
    /// and odd lanes). `saturate`: the one overflow, `MIN * MIN`, gives
    /// `MAX` (callers that know no multiplier is `i32::MIN` skip it).
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(crate) fn doubling_high_mul(a: __m256i, m: __m256i, saturate: bool) -> __m256i {
        let nudge = _mm256_set1_epi64x(1 << 30);
        let even = _mm256_add_epi64(_mm256_mul_epi32(a, m), nudge);
        let odd = _mm256_add_epi64(_mm256_mul_epi32(odd_lanes(a), odd_lanes(m)), nudge);
        let hm = _mm256_blend_epi32(_mm256_srli_epi64(even, 31), _mm256_slli_epi64(odd, 1), 0b1010_1010);
        if !saturate {
            return hm;
        }
        let min = _mm256_set1_epi32(i32::MIN);
        let sat = _mm256_and_si256(_mm256_cmpeq_epi32(a, min), _mm256_cmpeq_epi32(m, min));
        _mm256_blendv_epi8(hm, _mm256_set1_epi32(i32::MAX), sat)
    }

    /// For a rounding divide of `hm` by `2^e` (ties away from zero), -1 in
    /// the lanes where the truncated quotient must go up by one, else 0;
    /// `mask = 2^e - 1`, `half = mask >> 1`. The quotient is then
    /// `(hm >> e) - rounds_up(..)`.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(crate) fn rounds_up(hm: __m256i, mask: __m256i, half: __m256i) -> __m256i {
        let rem = _mm256_and_si256(hm, mask);
        let neg = _mm256_cmpgt_epi32(_mm256_setzero_si256(), hm);
        _mm256_cmpgt_epi32(rem, _mm256_sub_epi32(half, neg))
    }

    /// `finish` without the bias on 8 int32 sums in a register: `r` holds
    /// the per-lane multiplier, left shift, right shift, mask and half; the
    /// left shift and the saturation check run only where some channel
    /// needs them (`lsh`, `min`). `oc = [output_offset, act_min, act_max]`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn requant_pre(x: __m256i, r: [__m256i; 5], lsh: bool, min: bool, oc: [i32; 3]) -> __m256i {
        let [m, l, e, mask, half] = r;
        let a = if lsh { _mm256_sllv_epi32(x, l) } else { x };
        let hm = doubling_high_mul(a, m, min);
        let q = _mm256_sub_epi32(_mm256_srav_epi32(hm, e), rounds_up(hm, mask, half));
        let v = _mm256_add_epi32(q, _mm256_set1_epi32(oc[0]));
        _mm256_min_epi32(_mm256_max_epi32(v, _mm256_set1_epi32(oc[1])), _mm256_set1_epi32(oc[2]))
    }

    /// Lanes `o .. o + 8` of each per-channel constant row in `rows`
    /// (`Requant::panels` order).
    ///
    /// # Safety
    /// Each row has 8 readable values from `o`.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn rq_lanes(rows: &[*const i32; RQ_FIELDS], o: usize) -> [__m256i; RQ_FIELDS] {
        // SAFETY: the caller's promise.
        unsafe {
            [
                _mm256_loadu_si256(rows[0].add(o) as *const __m256i),
                _mm256_loadu_si256(rows[1].add(o) as *const __m256i),
                _mm256_loadu_si256(rows[2].add(o) as *const __m256i),
                _mm256_loadu_si256(rows[3].add(o) as *const __m256i),
                _mm256_loadu_si256(rows[4].add(o) as *const __m256i),
                _mm256_loadu_si256(rows[5].add(o) as *const __m256i),
            ]
        }
    }

    /// 16 int32 sums (bias included; two registers of 8 channels)
    /// requantised as `mode` says and packed to `T`'s 16 bytes: `r` holds
    /// each register's per-lane constants in `Requant::panels` order.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn requant16<T: Q8>(x: [__m256i; 2], r: &[[__m256i; RQ_FIELDS]; 2], mode: RequantMode, oc: [i32; 3]) -> __m128i {
        let (v0, v1) = match mode {
            RequantMode::Short => (requant_short(x[0], r[0], oc), requant_short(x[1], r[1], oc)),
            RequantMode::Full { lsh, min } => {
                let [m0, l0, e0, mask0, half0, _] = r[0];
                let [m1, l1, e1, mask1, half1, _] = r[1];
                (
                    requant_pre(x[0], [m0, l0, e0, mask0, half0], lsh, min, oc),
                    requant_pre(x[1], [m1, l1, e1, mask1, half1], lsh, min, oc),
                )
            }
        };
        // Clamped into T's range already, so saturating packs are exact.
        let w16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(v0, v1), 0b11_01_10_00);
        let (l, h) = (_mm256_castsi256_si128(w16), _mm256_extracti128_si256(w16, 1));
        if T::SIGNED {
            _mm_packs_epi16(l, h)
        } else {
            _mm_packus_epi16(l, h)
        }
    }

    /// [`RequantMode::Short`] on 8 int32 sums (bias included): `r` holds
    /// the per-lane constants in `Requant::panels` order (multiplier at 0,
    /// right shift at 2, `round_oc` at 5); `oc[0]` is inside `round_oc`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn requant_short(x: __m256i, r: [__m256i; RQ_FIELDS], oc: [i32; 3]) -> __m256i {
        let hm = doubling_high_mul(x, r[0], false);
        let t = _mm256_add_epi32(_mm256_add_epi32(hm, r[5]), _mm256_srai_epi32(hm, 31));
        let v = _mm256_srav_epi32(t, r[2]);
        _mm256_min_epi32(_mm256_max_epi32(v, _mm256_set1_epi32(oc[1])), _mm256_set1_epi32(oc[2]))
    }

    /// [`requant_short`] on 8 sums with channels `c0 ..` of `rq` (tests).
    #[cfg(test)]
    pub(super) fn requant_short8(_t: Avx2Fma, rq: &Requant, c0: usize, x: [i32; 8], oc: [i32; 3]) -> [i32; 8] {
        let v = |a: &[i32]| -> __m256i {
            let a: [i32; 8] = a[c0..c0 + 8].try_into().unwrap();
            // SAFETY: an 8-value array is 32 readable bytes.
            unsafe { _mm256_loadu_si256(a.as_ptr() as *const __m256i) }
        };
        let mut out = [0i32; 8];
        // SAFETY: AVX2 is proven by the token; `out` has 8 values.
        unsafe {
            let zero = _mm256_setzero_si256();
            let r = [v(&rq.mult), zero, v(&rq.rsh), zero, zero, v(&rq.round_oc)];
            let x = _mm256_loadu_si256(x.as_ptr() as *const __m256i);
            _mm256_storeu_si256(out.as_mut_ptr() as *mut __m256i, requant_short(x, r, oc));
        }
        out
    }

    /// [`requant_pre`] with the mask and half derived from the right shift
    /// `e`, every step enabled.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn requant_v(x: __m256i, m: __m256i, lsh: __m256i, e: __m256i, oc: [i32; 3]) -> __m256i {
        let one = _mm256_set1_epi32(1);
        let mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, e), one);
        requant_pre(x, [m, lsh, e, mask, _mm256_srai_epi32(mask, 1)], true, true, oc)
    }

    /// Depthwise sums (depth multiplier 1) of whole groups of 8 channels
    /// into `acc`; returns how many channels were done (the rest is left to
    /// the portable loop).
    pub(super) fn dwconv_row<T: Q8>(
        _t: Avx2Fma,
        input: &[T],
        w: &[i32],
        taps: &[(usize, usize)],
        off: i32,
        acc: &mut [i32],
    ) -> usize {
        let c = acc.len();
        let done = c / 8 * 8;
        check_dw_row(input.len(), w.len(), taps, c);
        // SAFETY: AVX2 is proven by the token; every tap's input row and
        // weight row have `c >= done` values (asserted above), and `acc`
        // has `c`.
        unsafe { qs8_dwconv_c8_avx2::<T>(done, input.as_ptr(), w.as_ptr(), c, taps, off, acc.as_mut_ptr()) };
        done
    }

    #[target_feature(enable = "avx2")]
    unsafe fn qs8_dwconv_c8_avx2<T: Q8>(
        done: usize,
        input: *const T,
        w: *const i32,
        c: usize,
        taps: &[(usize, usize)],
        off: i32,
        acc: *mut i32,
    ) {
        // SAFETY: bounds checked by `dwconv_row`; `T` is one byte (i8/u8).
        unsafe {
            let voff = _mm256_set1_epi32(off);
            let mut cb = 0;
            while cb < done {
                let mut s = _mm256_setzero_si256();
                for &(xo, t) in taps {
                    let bytes = _mm_loadl_epi64(input.add(xo + cb) as *const __m128i);
                    let x = if T::SIGNED { _mm256_cvtepi8_epi32(bytes) } else { _mm256_cvtepu8_epi32(bytes) };
                    let x = _mm256_add_epi32(x, voff);
                    let wv = _mm256_loadu_si256(w.add(t * c + cb) as *const __m256i);
                    s = _mm256_add_epi32(s, _mm256_mullo_epi32(x, wv));
                }
                _mm256_storeu_si256(acc.add(cb) as *mut __m256i, s);
                cb += 8;
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod avx2 {
    use super::{DwFast, FloatTail, PackedQs8, Panel, Requant, RequantMode, Q8};
    use crate::optimized::isa::Avx2Fma;

    #[allow(clippy::too_many_arguments)]
    pub(super) fn gemm_float_tiles(
        _: Avx2Fma,
        _: usize,
        _: usize,
        _: &[i16],
        _: usize,
        _: &PackedQs8,
        _: std::ops::Range<usize>,
        _: &FloatTail<'_>,
        _: &mut [f32],
        _: usize,
        _: usize,
    ) {
        unreachable!("no AVX2 token off x86-64")
    }

    #[allow(dead_code)]
    pub(super) struct Epilogue<'a> {
        pub rq: &'a [i32],
        pub bias: &'a [i32],
        pub mode: RequantMode,
        pub oc: [i32; 3],
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn gemm_requant_tiles<T: Q8>(
        _: Avx2Fma,
        _: usize,
        _: usize,
        _: &[i16],
        _: usize,
        _: &PackedQs8,
        _: std::ops::Range<usize>,
        _: &Epilogue<'_>,
        _: &mut [T],
        _: usize,
        _: usize,
    ) {
        unreachable!("no AVX2 token off x86-64")
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn dwconv16_span<T: Q8>(
        _: Avx2Fma,
        _: &[T],
        _: &DwFast,
        _: &Requant,
        _: RequantMode,
        _: Option<&[i32]>,
        _: [i32; 3],
        _: usize,
        _: usize,
        _: usize,
        _: &mut [T],
    ) {
        unreachable!("no AVX2 token off x86-64")
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn dwconv16_row<T: Q8>(
        _: Avx2Fma,
        _: &[T],
        _: &DwFast,
        _: &Requant,
        _: RequantMode,
        _: Option<&[i32]>,
        _: [i32; 3],
        _: &[(usize, usize)],
        _: &mut [T],
    ) {
        unreachable!("no AVX2 token off x86-64")
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn gemm_tile(
        _: Avx2Fma,
        _: usize,
        _: usize,
        _: &[i16],
        _: usize,
        _: Panel<'_>,
        _: &mut [i32],
        _: usize,
    ) {
        unreachable!("no AVX2 token off x86-64")
    }

    pub(super) fn dwconv_row<T: Q8>(
        _: Avx2Fma,
        _: &[T],
        _: &[i32],
        _: &[(usize, usize)],
        _: i32,
        _: &mut [i32],
    ) -> usize {
        unreachable!("no AVX2 token off x86-64")
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn requant8(
        _: Avx2Fma,
        _: &[i32],
        _: Option<&[i32]>,
        _: &[i32],
        _: &[i32],
        _: &[i32],
        _: [i32; 3],
        _: &mut [i32; 8],
    ) {
        unreachable!("no AVX2 token off x86-64")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::ClampF32;
    use crate::optimized::isa::available_levels;
    use crate::optimized::testutil::{panel_ranges, ConvGeom, ConvGeomLimits, Rng};
    use crate::quant::FusedActivation;
    use crate::reference::padding::{Padding, Padding2d};
    use crate::reference::quantized::conv::Accumulator;
    use crate::reference::quantized::{
        conv2d_i8, conv2d_u8, depthwise_conv2d_i8, depthwise_conv2d_u8, fully_connected_i8, fully_connected_u8,
    };

    fn i8s(rng: &mut Rng, n: usize) -> Vec<i8> {
        (0..n).map(|_| rng.next_u64() as u8 as i8).collect()
    }
    fn u8s(rng: &mut Rng, n: usize) -> Vec<u8> {
        (0..n).map(|_| rng.next_u64() as u8).collect()
    }
    fn bias(rng: &mut Rng, n: usize) -> Vec<i32> {
        (0..n).map(|_| rng.range(0, 40001) as i32 - 20000).collect()
    }
    /// [`bias`], but every fifth case one channel's bias near `±2^31`: sums
    /// that large leave `RequantMode::Short` for the full requantisation.
    fn bias_for_case(rng: &mut Rng, n: usize, case: usize) -> Vec<i32> {
        let mut b = bias(rng, n);
        if case % 5 == 4 {
            let c = rng.range(0, n);
            b[c] = rng.pick(&[1, -1]) * (i32::MAX - (1 << 24) - rng.range(0, 1 << 20) as i32);
        }
        b
    }
    fn scale(rng: &mut Rng) -> f32 {
        0.001 + 0.05 * (rng.f32() + 1.0)
    }
    fn act(rng: &mut Rng) -> FusedActivation {
        rng.pick(&[FusedActivation::None, FusedActivation::Relu, FusedActivation::Relu6])
    }
    /// Zero points weighted towards the extremes.
    fn zp(rng: &mut Rng, lo: i32, hi: i32) -> i32 {
        match rng.range(0, 4) {
            0 => lo,
            1 => hi,
            _ => lo + rng.range(0, (hi - lo + 1) as usize) as i32,
        }
    }

    /// Which range a random layer's requantisation multipliers fall in.
    #[derive(Clone, Copy, PartialEq)]
    enum Multipliers {
        /// Down to 1e-7 (right shifts past `SHORT_MAX_RSH` in most
        /// per-channel layers: the full requantisation).
        Small,
        /// The largest in 0.05 .. 0.95, as in trained models (right
        /// shifts of 1 to about 12: `RequantMode::Short`).
        Typical,
        /// Every one above 1 (the requantisation's left shift runs).
        AboveOne,
    }

    /// Int8 per-channel (or, one time in three, per-tensor) parameters;
    /// the multipliers small or typical at random.
    fn q_i8(rng: &mut Rng, channels: usize) -> ConvQuantParams {
        let m = if rng.range(0, 2) == 0 { Multipliers::Small } else { Multipliers::Typical };
        q_i8_with(rng, channels, m)
    }
    fn q_i8_with(rng: &mut Rng, channels: usize, m: Multipliers) -> ConvQuantParams {
        let scales: Vec<f32> =
            if rng.range(0, 3) == 0 { vec![scale(rng)] } else { (0..channels).map(|_| scale(rng) * 0.02).collect() };
        let (izp, ozp) = (zp(rng, -128, 127), zp(rng, -128, 127));
        let in_scale = scale(rng);
        let (lo, hi) = scales.iter().fold((f32::INFINITY, 0.0f32), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        let out_scale = match m {
            Multipliers::Small => scale(rng) * 2.0,
            Multipliers::Typical => in_scale * hi / (0.05 + 0.9 * rng.f32().abs()),
            Multipliers::AboveOne => in_scale * lo / (1.5 + 3.0 * rng.f32().abs()),
        };
        ConvQuantParams::per_channel(in_scale, izp, &scales, out_scale, ozp, act(rng), -128, 127).unwrap()
    }
    fn q_u8(rng: &mut Rng) -> ConvQuantParams {
        let (izp, fzp, ozp) = (zp(rng, 0, 255), zp(rng, 0, 255), zp(rng, 0, 255));
        ConvQuantParams::per_tensor(scale(rng), izp, scale(rng) * 0.02, fzp, scale(rng) * 2.0, ozp, act(rng), 0, 255)
            .unwrap()
    }

    fn geom(rng: &mut Rng, i: usize, in_c: usize) -> ConvGeom {
        let lim =
            ConvGeomLimits { stride_h: 3, stride_w: 3, dilation_h: 3, dilation_w: 3, batches: 3, depth_multiplier: 3 };
        ConvGeom::random(rng, i, in_c, &lim, |_| ClampF32::NONE)
    }

    /// Run `plan` whole and in uneven row chunks; both must equal `want`.
    fn check_rows<T: Q8 + PartialEq + std::fmt::Debug>(
        rows: usize,
        row_len: usize,
        want: &[T],
        rng: &mut Rng,
        ctx: &str,
        mut run: impl FnMut(&mut [T], usize, &mut Qs8Scratch),
    ) {
        let mut scratch = Qs8Scratch::new();
        let mut got = vec![T::default(); want.len()];
        run(&mut got, 0, &mut scratch);
        assert_eq!(got, want, "{ctx}");
        if rows > 1 {
            let chunk = rng.range(1, rows);
            let mut got = vec![T::default(); want.len()];
            for (ci, part) in got.chunks_mut(chunk * row_len).enumerate() {
                run(part, ci * chunk, &mut scratch);
            }
            assert_eq!(got, want, "{ctx} chunk {chunk}");
        }
    }

    #[test]
    fn requant_matches_finish_on_extremes() {
        let mut rng = Rng::new(0x7e9);
        let specials = [i32::MIN, i32::MIN + 1, -1, 0, 1, i32::MAX, 1 << 30, -(1 << 30), 12345, -12345];
        for i in 0..400usize {
            let n = rng.range(1, 30);
            let mut q = q_i8(&mut rng, n);
            // Raw multipliers and shifts, extremes included.
            q.output_multiplier = (0..n)
                .map(|_| if rng.range(0, 4) == 0 { rng.pick(&specials) } else { rng.next_u64() as i32 })
                .collect();
            q.output_shift = (0..n).map(|_| rng.range(0, 62) as i32 - 31).collect();
            if i % 3 == 0 {
                // No clamp: the i8 cast keeps the low bits of every result.
                (q.act_min, q.act_max) = (i32::MIN, i32::MAX);
            }
            if i % 5 == 0 {
                q.output_multiplier.truncate(1);
                q.output_shift.truncate(1);
            }
            let acc: Vec<i32> =
                (0..n)
                    .map(|_| {
                        if rng.range(0, 4) == 0 {
                            rng.pick(&specials)
                        } else {
                            rng.next_u64() as i32 >> rng.range(0, 31)
                        }
                    })
                    .collect();
            let b =
                if i % 2 == 0 { Some((0..n).map(|_| rng.next_u64() as i32 >> 8).collect::<Vec<_>>()) } else { None };
            let want: Vec<i8> = (0..n).map(|c| finish(&q, acc[c], b.as_deref(), c, q.output_offset)).collect();
            for &isa in &available_levels() {
                let r = Requant::new(&q, n);
                let mut got = vec![0i8; n];
                r.apply(isa, &q, &acc, b.as_deref(), 0, &mut got);
                assert_eq!(got, want, "case {i} {isa:?} {q:?} acc {acc:?}");
            }
        }
    }

    #[test]
    fn short_requant_matches_finish_within_its_bounds() {
        // The short mode's claim: for sums below 2^30 in magnitude and right
        // shifts 1..=21, `(hm + round_oc + (hm >> 31)) >> e` is the
        // reference's rounding divide plus the output offset, ties included.
        let mut rng = Rng::new(0x5407);
        let mut ties = 0;
        for i in 0..3000usize {
            let mut q = q_i8(&mut rng, 8);
            q.output_multiplier = (0..8).map(|_| (1 << 30) + (rng.next_u64() as i32 & 0x3fff_ffff)).collect();
            q.output_shift = (0..8).map(|_| -(rng.range(1, SHORT_MAX_RSH as usize + 1) as i32)).collect();
            q.output_offset = rng.range(0, 511) as i32 - 255;
            if i % 4 == 0 {
                (q.act_min, q.act_max) = (i32::MIN, i32::MAX);
            }
            let r = Requant::new(&q, 8);
            assert!(r.short_ok && r.mode(0, None) == RequantMode::Short, "case {i}: {q:?}");
            let lim = (1i64 << 30) - 1;
            // Small right shifts make ties of the rounding divide common
            // (counted below).
            let x: [i32; 8] = std::array::from_fn(|_| match rng.range(0, 6) {
                0 => rng.pick(&[lim, -lim, 0, 1, -1]) as i32,
                _ => (rng.next_u64() as i32) >> rng.range(2, 31),
            });
            // `finish` without its cast to an 8-bit type.
            let want: [i32; 8] = std::array::from_fn(|c| {
                let (m, s) = q.channel(c);
                x[c].requantize(m, s).wrapping_add(q.output_offset).max(q.act_min).min(q.act_max)
            });
            for ((&xc, &m), &s) in x.iter().zip(&q.output_multiplier).zip(&q.output_shift) {
                let e = -s;
                let hm = ((xc as i64 * m as i64 + (1 << 30)) >> 31) as i32;
                ties += usize::from(hm & ((1 << e) - 1) == 1 << (e - 1));
            }
            // (The short mode is an AVX2 epilogue; elsewhere only the
            // bounds below are checked.)
            #[cfg(not(target_arch = "x86_64"))]
            let _ = want;
            #[cfg(target_arch = "x86_64")]
            if let Some(t) = Avx2Fma::new(IsaLevel::Avx2Fma) {
                let got = avx2::requant_short8(t, &r, 0, x, [q.output_offset, q.act_min, q.act_max]);
                assert_eq!(got, want, "case {i}: x {x:?} {q:?}");
            }
        }
        assert!(ties > 100, "only {ties} ties drawn");
        // Past the bound the formula does go wrong (so the bound matters):
        // a sum near 2^31 with the largest multiplier wraps `hm + round_oc`.
        #[cfg(target_arch = "x86_64")]
        if let Some(t) = Avx2Fma::new(IsaLevel::Avx2Fma) {
            let mut q = q_i8(&mut rng, 8);
            q.output_multiplier = vec![i32::MAX; 8];
            q.output_shift = vec![-SHORT_MAX_RSH; 8];
            (q.output_offset, q.act_min, q.act_max) = (255, i32::MIN, i32::MAX);
            let x = [i32::MAX - 5; 8];
            let (m, s) = q.channel(0);
            let want = x[0].requantize(m, s) + 255;
            let got = avx2::requant_short8(t, &Requant::new(&q, 8), 0, x, [255, i32::MIN, i32::MAX]);
            assert_ne!(got[0], want, "a sum of 2^31 - 6 is outside the short mode");
        }
        // And the mode is not offered outside those bounds.
        let mut q = q_i8(&mut rng, 2);
        q.output_multiplier = vec![1 << 30; 2];
        q.output_shift = vec![-3, -(SHORT_MAX_RSH + 1)];
        assert!(!Requant::new(&q, 2).short_ok, "right shift 22");
        q.output_shift = vec![-3, 0];
        assert!(!Requant::new(&q, 2).short_ok, "right shift 0");
        q.output_shift = vec![-3, -4];
        let r = Requant::new(&q, 2);
        assert_eq!(r.mode((1 << 30) - 101, Some(&[100, -100])), RequantMode::Short);
        assert_ne!(r.mode((1 << 30) - 100, Some(&[100, -100])), RequantMode::Short, "sums may reach 2^30");
        // The sum bound: the largest |x + input offset| times the largest
        // |w + filter offset| times the depth.
        assert_eq!(sum_bound::<i8>(9, 128, 0), 255 * 128 * 9);
        assert_eq!(sum_bound::<u8>(4, -255, -3), 255 * 252 * 4);
    }

    #[test]
    fn gemm_i32_matches_naive() {
        let mut rng = Rng::new(1);
        for _ in 0..50 {
            let (m, n, k) = (rng.range(1, 15), rng.range(1, 40), rng.range(1, 70));
            let a: Vec<i16> = (0..m * k).map(|_| rng.range(0, 511) as i16 - 255).collect();
            let w: Vec<i16> = (0..n * k).map(|_| rng.range(0, 511) as i16 - 255).collect();
            let want: Vec<i32> =
                (0..m * n).map(|i| (0..k).map(|d| a[i / n * k + d] as i32 * w[i % n * k + d] as i32).sum()).collect();
            for &isa in &available_levels() {
                assert_eq!(gemm_plain(isa, &a, &w, m, n, k), want, "{isa:?} m{m} n{n} k{k}");
            }
        }
    }

    #[test]
    fn conv_matches_reference_exactly() {
        let mut rng = Rng::new(0x9508);
        for i in 0..160usize {
            let groups = if i % 5 == 1 { rng.range(2, 4) } else { 1 };
            let f_in = rng.range(1, 24);
            let g = geom(&mut rng, i, f_in * groups);
            let out_c = groups * rng.range(1, 40 / groups);
            let filter_shape = [out_c, g.kh, g.kw, f_in];
            let out_shape = [g.in_shape[0], g.out_hw.0, g.out_hw.1, out_c];
            let out_len: usize = out_shape.iter().product();
            let b = if i.is_multiple_of(3) { None } else { Some(bias_for_case(&mut rng, out_c, i)) };
            let rows = out_len / out_c;
            if i % 2 == 0 {
                // Every fourth case with multipliers above 1 (the GEMM's
                // kernel with the left shift, not the plain one).
                let m = match i % 4 {
                    2 => Multipliers::AboveOne,
                    0 => Multipliers::Typical,
                    _ => Multipliers::Small,
                };
                let q = q_i8_with(&mut rng, out_c, m);
                let x = i8s(&mut rng, g.in_shape.iter().product());
                let w = i8s(&mut rng, filter_shape.iter().product());
                let mut want = vec![0i8; out_len];
                conv2d_i8(&g.p, &q, &x, g.in_shape, &w, filter_shape, b.as_deref(), &mut want, out_shape);
                for &isa in &available_levels() {
                    let plan = Qs8ConvPlan::new(isa, &g.p, &q, g.in_shape, &w, filter_shape, out_shape);
                    assert!(plan.supported());
                    let ctx = format!("i8 case {i} {isa:?} {:?} {filter_shape:?} {:?}", g.in_shape, g.p);
                    check_rows(rows, out_c, &want, &mut rng, &ctx, |o, r0, s| {
                        plan.run_rows(&x, b.as_deref(), o, r0, s)
                    });
                }
            } else {
                let q = q_u8(&mut rng);
                let x = u8s(&mut rng, g.in_shape.iter().product());
                let w = u8s(&mut rng, filter_shape.iter().product());
                let mut want = vec![0u8; out_len];
                conv2d_u8(&g.p, &q, &x, g.in_shape, &w, filter_shape, b.as_deref(), &mut want, out_shape);
                for &isa in &available_levels() {
                    let plan = Qs8ConvPlan::new(isa, &g.p, &q, g.in_shape, &w, filter_shape, out_shape);
                    assert!(plan.supported());
                    let ctx = format!("u8 case {i} {isa:?} {:?} {filter_shape:?} {:?}", g.in_shape, g.p);
                    check_rows(rows, out_c, &want, &mut rng, &ctx, |o, r0, s| {
                        plan.run_rows(&x, b.as_deref(), o, r0, s)
                    });
                }
            }
        }
    }

    #[test]
    fn depthwise_matches_reference_exactly() {
        let mut rng = Rng::new(0xd3e9);
        for i in 0..160usize {
            let in_c = rng.range(1, 40);
            let g = geom(&mut rng, i, in_c);
            let dm = g.dm;
            let p = DepthwiseParams {
                stride_h: g.p.stride_h,
                stride_w: g.p.stride_w,
                dilation_h: g.p.dilation_h,
                dilation_w: g.p.dilation_w,
                pad_top: g.p.pad_top,
                pad_left: g.p.pad_left,
                depth_multiplier: dm,
                clamp: ClampF32::NONE,
            };
            let out_c = in_c * dm;
            let filter_shape = [1, g.kh, g.kw, out_c];
            let out_shape = [g.in_shape[0], g.out_hw.0, g.out_hw.1, out_c];
            let out_len: usize = out_shape.iter().product();
            let rows = out_len / out_c;
            let b = if i.is_multiple_of(3) { None } else { Some(bias_for_case(&mut rng, out_c, i)) };
            if i % 2 == 0 {
                let mut q = q_i8(&mut rng, out_c);
                if i % 10 == 4 {
                    // A zero point no 8-bit (or 16-bit) value reaches: the
                    // offset inputs do not fit i16.
                    q.input_offset = if i % 20 == 4 { 40_000 } else { -40_000 };
                }
                let x = i8s(&mut rng, g.in_shape.iter().product());
                let w = i8s(&mut rng, filter_shape.iter().product());
                let mut want = vec![0i8; out_len];
                depthwise_conv2d_i8(&p, &q, &x, g.in_shape, &w, filter_shape, b.as_deref(), &mut want, out_shape);
                for &isa in &available_levels() {
                    let plan = Qs8DepthwisePlan::new(isa, &p, &q, g.in_shape, &w, filter_shape, out_shape);
                    assert!(plan.supported());
                    let ctx = format!("i8 case {i} {isa:?} {:?} {filter_shape:?} {p:?}", g.in_shape);
                    check_rows(rows, out_c, &want, &mut rng, &ctx, |o, r0, s| {
                        plan.run_rows(&x, b.as_deref(), o, r0, s)
                    });
                }
            } else {
                let q = q_u8(&mut rng);
                let x = u8s(&mut rng, g.in_shape.iter().product());
                let w = u8s(&mut rng, filter_shape.iter().product());
                let mut want = vec![0u8; out_len];
                depthwise_conv2d_u8(&p, &q, &x, g.in_shape, &w, filter_shape, b.as_deref(), &mut want, out_shape);
                for &isa in &available_levels() {
                    let plan = Qs8DepthwisePlan::new(isa, &p, &q, g.in_shape, &w, filter_shape, out_shape);
                    assert!(plan.supported());
                    let ctx = format!("u8 case {i} {isa:?} {:?} {filter_shape:?} {p:?}", g.in_shape);
                    check_rows(rows, out_c, &want, &mut rng, &ctx, |o, r0, s| {
                        plan.run_rows(&x, b.as_deref(), o, r0, s)
                    });
                }
            }
        }
    }

    /// The 16-channel AVX2 path: channel counts around multiples of 16,
    /// 3x3 / 5x5 / odd tap counts, strides 1 and 2, SAME padding, dilation,
    /// extreme zero points and weights, with and without clamps.
    #[test]
    fn depthwise_fast_path_matches_reference_exactly() {
        let mut rng = Rng::new(0xd516);
        for i in 0..200usize {
            let in_c = rng.pick(&[16, 17, 31, 32, 33, 47, 48, 64, 96]);
            let (kh, kw) = rng.pick(&[(3, 3), (3, 3), (5, 5), (1, 1), (1, 3), (3, 2), (2, 2)]);
            let s = rng.range(1, 3);
            let d = if i % 4 == 3 { 2 } else { 1 };
            let padding = if i % 3 == 0 { Padding::Valid } else { Padding::Same };
            let (in_h, in_w) = (rng.range(1, 10), rng.range(1, 10));
            let batches = rng.range(1, 3);
            let pw = Padding2d::compute(padding, in_h, in_w, kh, kw, s, s, d, d);
            let dm = if i % 10 == 9 { 2 } else { 1 };
            let p = DepthwiseParams {
                stride_h: s,
                stride_w: s,
                dilation_h: d,
                dilation_w: d,
                pad_top: pw.padding.top,
                pad_left: pw.padding.left,
                depth_multiplier: dm,
                clamp: ClampF32::NONE,
            };
            let in_shape = [batches, in_h, in_w, in_c];
            let out_c = in_c * dm;
            let filter_shape = [1, kh, kw, out_c];
            let out_shape = [batches, pw.out_h, pw.out_w, out_c];
            let out_len: usize = out_shape.iter().product();
            let rows = out_len / out_c;
            let b = if i.is_multiple_of(3) { None } else { Some(bias_for_case(&mut rng, out_c, i)) };
            let extreme = i % 5 == 0;
            if i % 2 == 0 {
                let mut q = q_i8(&mut rng, out_c);
                if i % 8 == 4 {
                    // Raw multipliers and shifts: left shifts, i32::MIN.
                    let n = q.output_multiplier.len();
                    q.output_multiplier = (0..n)
                        .map(|_| {
                            let r = rng.next_u64() as i32;
                            rng.pick(&[i32::MIN, i32::MAX, 1 << 30, r])
                        })
                        .collect();
                    q.output_shift = (0..n).map(|_| rng.range(0, 62) as i32 - 31).collect();
                }
                let x: Vec<i8> = if extreme {
                    (0..in_shape.iter().product()).map(|_| rng.pick(&[-128i8, 127])).collect()
                } else {
                    i8s(&mut rng, in_shape.iter().product())
                };
                let w: Vec<i8> = if extreme {
                    (0..filter_shape.iter().product()).map(|_| rng.pick(&[-128i8, 127])).collect()
                } else {
                    i8s(&mut rng, filter_shape.iter().product())
                };
                let mut want = vec![0i8; out_len];
                depthwise_conv2d_i8(&p, &q, &x, in_shape, &w, filter_shape, b.as_deref(), &mut want, out_shape);
                for &isa in &available_levels() {
                    let plan = Qs8DepthwisePlan::new(isa, &p, &q, in_shape, &w, filter_shape, out_shape);
                    assert!(plan.supported());
                    assert_eq!(plan.fast.is_some(), dm == 1 && plan.requant.vector_ok, "case {i}");
                    let ctx = format!("i8 case {i} {isa:?} {in_shape:?} {filter_shape:?} {p:?}");
                    check_rows(rows, out_c, &want, &mut rng, &ctx, |o, r0, sc| {
                        plan.run_rows(&x, b.as_deref(), o, r0, sc)
                    });
                }
            } else {
                let q = q_u8(&mut rng);
                let x: Vec<u8> = if extreme {
                    (0..in_shape.iter().product()).map(|_| rng.pick(&[0u8, 255])).collect()
                } else {
                    u8s(&mut rng, in_shape.iter().product())
                };
                let w = u8s(&mut rng, filter_shape.iter().product());
                let mut want = vec![0u8; out_len];
                depthwise_conv2d_u8(&p, &q, &x, in_shape, &w, filter_shape, b.as_deref(), &mut want, out_shape);
                for &isa in &available_levels() {
                    let plan = Qs8DepthwisePlan::new(isa, &p, &q, in_shape, &w, filter_shape, out_shape);
                    assert!(plan.supported());
                    let ctx = format!("u8 case {i} {isa:?} {in_shape:?} {filter_shape:?} {p:?}");
                    check_rows(rows, out_c, &want, &mut rng, &ctx, |o, r0, sc| {
                        plan.run_rows(&x, b.as_deref(), o, r0, sc)
                    });
                }
            }
        }
    }

    /// Clamps wider than the output type (the cast keeps the low bits) and
    /// zero points outside the type keep the portable path.
    #[test]
    fn depthwise_fast_path_declines_wide_clamps() {
        let mut rng = Rng::new(0xd517);
        let p = DepthwiseParams {
            stride_h: 1,
            stride_w: 1,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: 1,
            pad_left: 1,
            depth_multiplier: 1,
            clamp: ClampF32::NONE,
        };
        let in_shape = [1, 5, 5, 32];
        let filter_shape = [1, 3, 3, 32];
        let out_shape = [1, 5, 5, 32];
        let x = i8s(&mut rng, 800);
        let w = i8s(&mut rng, 288);
        for case in 0..2 {
            let mut q = q_i8(&mut rng, 32);
            if case == 0 {
                (q.act_min, q.act_max) = (i32::MIN, i32::MAX);
            } else {
                q.input_offset = 1000;
            }
            let mut want = vec![0i8; 800];
            depthwise_conv2d_i8(&p, &q, &x, in_shape, &w, filter_shape, None, &mut want, out_shape);
            for &isa in &available_levels() {
                let plan = Qs8DepthwisePlan::new(isa, &p, &q, in_shape, &w, filter_shape, out_shape);
                assert!(plan.fast.is_none());
                let mut got = vec![0i8; 800];
                plan.run(&x, None, &mut got, &mut Qs8Scratch::new());
                assert_eq!(got, want, "case {case} {isa:?}");
            }
        }
    }

    /// The first row's units computed in column ranges cut at random
    /// multiples of 16, with a reused scratch.
    fn check_cols<T: Q8 + PartialEq + std::fmt::Debug>(
        want: &[T],
        rng: &mut Rng,
        ctx: &str,
        run: impl Fn(&mut [T], usize, &mut Qs8Scratch),
    ) {
        let mut got = vec![T::from_i32(0); want.len()];
        let mut scratch = Qs8Scratch::new();
        for cols in panel_ranges(want.len(), rng) {
            let c0 = cols.start;
            run(&mut got[cols], c0, &mut scratch);
        }
        assert_eq!(got, want, "{ctx}: column ranges");
    }

    #[test]
    fn fully_connected_matches_reference_exactly() {
        let mut rng = Rng::new(0xfc);
        for i in 0..120usize {
            let (batches, depth, units) = (rng.range(1, 9), rng.range(1, 300), rng.range(1, 50));
            let b = if i.is_multiple_of(3) { None } else { Some(bias(&mut rng, units)) };
            if i % 2 == 0 {
                // Per-channel (symmetric) or per-tensor with a filter zero point.
                let q = if i % 4 == 0 {
                    q_i8(&mut rng, units)
                } else {
                    let (izp, fzp, ozp) = (zp(&mut rng, -128, 127), zp(&mut rng, -128, 127), zp(&mut rng, -128, 127));
                    let (si, sw, so) = (scale(&mut rng), scale(&mut rng) * 0.02, scale(&mut rng) * 2.0);
                    ConvQuantParams::per_tensor(si, izp, sw, fzp, so, ozp, act(&mut rng), -128, 127).unwrap()
                };
                let x = i8s(&mut rng, batches * depth);
                let w = i8s(&mut rng, units * depth);
                let mut want = vec![0i8; batches * units];
                fully_connected_i8(&q, &x, &w, b.as_deref(), &mut want, batches, depth, units);
                for &isa in &available_levels() {
                    let plan = Qs8FullyConnectedPlan::new(isa, &q, &w, units, depth);
                    assert!(plan.supported());
                    let ctx = format!("i8 case {i} {isa:?} b{batches} d{depth} u{units}");
                    check_rows(batches, units, &want, &mut rng, &ctx, |o, r0, s| {
                        plan.run_rows(&x, b.as_deref(), o, r0, s)
                    });
                    check_cols(&want[..units], &mut rng, &ctx, |o, c0, s| {
                        plan.run_cols(&x[..depth], b.as_deref(), o, c0, s)
                    });
                }
            } else {
                let q = q_u8(&mut rng);
                let x = u8s(&mut rng, batches * depth);
                let w = u8s(&mut rng, units * depth);
                let mut want = vec![0u8; batches * units];
                fully_connected_u8(&q, &x, &w, b.as_deref(), &mut want, batches, depth, units);
                for &isa in &available_levels() {
                    let plan = Qs8FullyConnectedPlan::new(isa, &q, &w, units, depth);
                    assert!(plan.supported());
                    let ctx = format!("u8 case {i} {isa:?} b{batches} d{depth} u{units}");
                    check_rows(batches, units, &want, &mut rng, &ctx, |o, r0, s| {
                        plan.run_rows(&x, b.as_deref(), o, r0, s)
                    });
                    check_cols(&want[..units], &mut rng, &ctx, |o, c0, s| {
                        plan.run_cols(&x[..depth], b.as_deref(), o, c0, s)
                    });
                }
            }
        }
    }
}
