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
//! - AVX-512 VNNI (`vnni`): int8 convs with `vpdpbusd` on `x + 128`
//!   against the raw int8 weights, requantised in the tile; a batch-1
//!   int8 FULLY_CONNECTED streams the same byte weights (`gemm_i32`) and
//!   requantises with `finish_fc`.
//! - Depthwise at stride 1 with padding (`DwPadded`): the input rows are
//!   copied between rows and columns of the zero point, so every pixel
//!   runs on the multi-pixel span kernels instead of the edge ones going
//!   one at a time.
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
    /// The scratch buffer a depthwise conv pads its input into.
    fn padded(scratch: &mut Qs8Scratch) -> &mut Vec<Self>;
}

mod sealed {
    /// Implemented for `i8` and `u8` only.
    pub trait OneByte {}
    impl OneByte for i8 {}
    impl OneByte for u8 {}
}
impl Q8 for i8 {
    const SIGNED: bool = true;
    fn padded(scratch: &mut Qs8Scratch) -> &mut Vec<i8> {
        &mut scratch.padded_i8
    }
}
impl Q8 for u8 {
    const SIGNED: bool = false;
    fn padded(scratch: &mut Qs8Scratch) -> &mut Vec<u8> {
        &mut scratch.padded_u8
    }
}

/// Int8 values as the unsigned bytes `x + 128` (the sign bit flipped).
/// The im2col of a conv on few channels copies runs of a few bytes (a
/// first conv's 3x3 RGB filter rows: 9), which a vectorised loop would do
/// one byte at a time: a run of 4 to 32 bytes goes as two overlapping
/// words instead (the first and the last 4, 8 or 16 bytes).
#[cfg(target_arch = "x86_64")]
fn flip_signs<T: Q8>(src: &[T], dst: &mut [u8]) {
    let n = src.len().min(dst.len());
    let (src, dst) = (&src[..n], &mut dst[..n]);
    macro_rules! ends {
        ($w:ty) => {{
            const N: usize = std::mem::size_of::<$w>();
            let word = |s: &[T]| {
                let bytes: [u8; N] = std::array::from_fn(|i| s[i].to_i32() as u8);
                (<$w>::from_le_bytes(bytes) ^ (<$w>::MAX / 255 * 0x80)).to_le_bytes()
            };
            let (head, tail) = (word(&src[..N]), word(&src[n - N..]));
            dst[..N].copy_from_slice(&head);
            dst[n - N..].copy_from_slice(&tail);
        }};
    }
    match n {
        4..8 => ends!(u32),
        8..16 => ends!(u64),
        16..=32 => ends!(u128),
        _ => {
            for (d, s) in dst.iter_mut().zip(src) {
                *d = (s.to_i32() as u8) ^ 0x80;
            }
        }
    }
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
    /// Unsigned im2col rows, `x + 128` (the AVX-512 VNNI conv).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) a_u8: Vec<u8>,
    pub(crate) acc: Vec<i32>,
    pub(crate) taps: Vec<(usize, usize)>,
    /// The bias laid out per 16-column panel (zero past each group's
    /// channels), for the fused GEMM epilogue.
    pub(crate) bias16: Vec<i32>,
    /// The same for a float bias (dynamic-range convs).
    pub(crate) fbias16: Vec<f32>,
    /// A stride-1 depthwise layer's input rows with their padding
    /// ([`DwPadded`]), per input type.
    pub(crate) padded_i8: Vec<i8>,
    pub(crate) padded_u8: Vec<u8>,
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

/// Rows of constants in [`Requant::product_rows`].
const PRODUCT_FIELDS: usize = 5;

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
        // (`u32` lanes, which vectorise: this runs on every call.)
        let bias_max = bias.map_or(0, |b| b.iter().map(|&v| v.unsigned_abs()).max().unwrap_or(0) as i64);
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

    /// The constants of channels `c0 .. c0 + n` for the product form of
    /// [`RequantMode::Short`] (`avx512::product16`, in the VNNI conv and
    /// the AVX-512 int8 depthwise conv): [`PRODUCT_FIELDS`] rows of `n16`
    /// values (`n` rounded up to 16), channel `c0 + i` at `f * n16 + i`
    /// in row `f`. `None` unless the short mode is open to the layer and
    /// every multiplier exceeds `2^30`, which makes `hm < 0` the same as
    /// `x < 0`.
    ///
    /// Rows: `2m` per lane (`u32`); the odd lanes' `2m` at the even
    /// positions; then per even lane and per odd lane (as `i64`s at the
    /// pair's two positions) `K = 2^31 + (round_oc - 1 - m) * 2^32` (mod
    /// `2^64`); the right shift per lane.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    fn product_rows(&self, c0: usize, n: usize) -> Option<Vec<i32>> {
        let chans = c0..c0 + n;
        if !self.short_ok || self.mult[chans.clone()].iter().any(|&m| m <= 1 << 30) {
            return None;
        }
        let n16 = n.div_ceil(NR) * NR;
        let mut v = vec![0i32; PRODUCT_FIELDS * n16];
        for (i, c) in chans.enumerate() {
            let m = self.mult[c] as i64;
            let m2 = (2 * m) as u32 as i32;
            let k = (1i64 << 31).wrapping_add((self.round_oc[c] as i64 - 1 - m).wrapping_shl(32));
            v[i] = m2;
            if i % 2 == 1 {
                v[n16 + i - 1] = m2;
            }
            let kf = (2 + i % 2) * n16 + (i & !1);
            v[kf] = k as i32;
            v[kf + 1] = (k >> 32) as i32;
            v[4 * n16 + i] = self.rsh[c];
        }
        Some(v)
    }

    /// The whole groups of `N` channels of [`Self::apply`] through a vector
    /// `kernel(acc, bias, [mult, lsh, rsh], results)`; returns how many
    /// channels it did.
    #[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(dead_code))]
    fn in_groups<T: Q8, const N: usize>(
        &self,
        acc: &[i32],
        bias: Option<&[i32]>,
        c0: usize,
        out: &mut [T],
        kernel: impl Fn(&[i32], Option<&[i32]>, [&[i32]; 3], &mut [i32; N]),
    ) -> usize {
        let mut v = [0i32; N];
        let groups = out.len() / N;
        for (g, o) in out.chunks_exact_mut(N).enumerate() {
            let (i, c) = (g * N, c0 + g * N);
            let shifts = [&self.mult[c..c + N], &self.lsh[c..c + N], &self.rsh[c..c + N]];
            kernel(&acc[i..i + N], bias.map(|b| &b[c..c + N]), shifts, &mut v);
            for (o, &x) in o.iter_mut().zip(&v) {
                *o = T::from_i32(x);
            }
        }
        groups * N
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
        let oc = [q.output_offset, q.act_min, q.act_max];
        let mut done = 0;
        #[cfg(target_arch = "aarch64")]
        if let (Some(t), true) = (Neon::new(isa), self.vector_ok) {
            done = self
                .in_groups::<T, 4>(acc, bias, c0, out, |a, b, [m, l, r], v| neon::requant4(t, a, b, m, l, r, oc, v));
        }
        if let (Some(t), true) = (Avx2Fma::new(isa), self.vector_ok) {
            done = self
                .in_groups::<T, 8>(acc, bias, c0, out, |a, b, [m, l, r], v| avx2::requant8(t, a, b, m, l, r, oc, v));
        }
        for (i, (o, &s)) in out.iter_mut().zip(acc).enumerate().skip(done) {
            *o = finish(q, s, bias, c0 + i, q.output_offset);
        }
    }
}

/// A conv-style requantisation of whole pixels (`finish` on each of
/// `channels` int32 sums), vectorised where the CPU and the constants
/// allow: for kernels outside this module (TRANSPOSE_CONV's scatter).
#[derive(Clone, Debug)]
pub(crate) struct PixelRequant {
    q: ConvQuantParams,
    rq: Requant,
}

impl PixelRequant {
    pub(crate) fn new(q: &ConvQuantParams, channels: usize) -> PixelRequant {
        PixelRequant { q: q.clone(), rq: Requant::new(q, channels) }
    }

    /// `out[c] = finish(acc[c] (+ bias[c]))` for one pixel's channels.
    pub(crate) fn pixel<T: Q8>(&self, isa: IsaLevel, acc: &[i32], bias: Option<&[i32]>, out: &mut [T]) {
        self.rq.apply(isa, &self.q, acc, bias, 0, out)
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
    /// The int8 conv on AVX-512 VNNI, where the CPU has it (then `packed`
    /// holds empty panels too).
    #[cfg(target_arch = "x86_64")]
    vnni: Option<vnni::VnniConv>,
    /// Per group, `Requant::product_rows` for the VNNI conv, where the
    /// product form applies to every group.
    #[cfg(target_arch = "x86_64")]
    vnni_product: Option<Vec<Vec<i32>>>,
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
        let requant = if supported { Requant::new(q, out_c) } else { Requant::default() };
        // The VNNI path requantises in its kernel, so it needs the vector
        // requantisation's shift range.
        #[cfg(target_arch = "x86_64")]
        let vnni = match (
            supported && filter_offset == 0 && vnni::pad_byte(q.input_offset).is_some() && requant.vector_ok,
            crate::optimized::isa::Avx512Vnni::new(isa),
        ) {
            (true, Some(t)) => vnni::VnniConv::new(t, filter, groups, per_group, depth),
            _ => None,
        };
        #[cfg(target_arch = "x86_64")]
        let dot_only = vnni.is_some();
        #[cfg(not(any(target_arch = "aarch64", target_arch = "x86_64")))]
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
        #[cfg(target_arch = "x86_64")]
        let vnni_product =
            vnni.as_ref().and_then(|_| (0..groups).map(|g| requant.product_rows(g * per_group, per_group)).collect());
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
            #[cfg(target_arch = "x86_64")]
            vnni,
            #[cfg(target_arch = "x86_64")]
            vnni_product,
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
            let geometry = self.geometry();
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
        #[cfg(target_arch = "x86_64")]
        if let Some(v) = &self.vnni {
            // Built for int8 weights, so for int8 inputs.
            assert!(T::SIGNED, "an int8 conv plan run on uint8 data");
            let geometry = self.geometry();
            let Qs8Scratch { a_u8, bias16, .. } = scratch;
            let panels = pg.div_ceil(NR);
            let block = im2col_block_rows(v.k4, rows);
            // The unsigned bytes `x + 128`.
            a_u8.resize(block * v.k4, 0);
            let oc = [self.q.output_offset, self.q.act_min, self.q.act_max];
            let mode = self.requant.mode(self.weight_bound, bias);
            let pad = vnni::pad_byte(self.input_offset).unwrap_or(0);
            // The product form takes the sums with their top bit flipped.
            let product = self.vnni_product.as_ref().filter(|_| mode == RequantMode::Short);
            // The sums' start values, once per call: bias plus correction.
            self.panel_bias(bias, bias16);
            for (g, starts) in bias16.chunks_exact_mut(panels * NR).enumerate() {
                v.add_correction(g, self.input_offset, starts);
                if product.is_some() {
                    starts.iter_mut().for_each(|s| *s ^= i32::MIN);
                }
            }
            let mut r = 0;
            while r < rows {
                let m = block.min(rows - r);
                for g in 0..self.packed.len() {
                    let a8 = &mut a_u8[..m * v.k4];
                    geometry.rows(input, row_start + r, m, g, self.depth, a8, pad, flip_signs);
                    let starts = &bias16[g * panels * NR..(g + 1) * panels * NR];
                    let epi = avx2::Epilogue { rq: &self.panel_rq[g], bias: starts, mode, oc };
                    let out = &mut output_rows[r * out_c + g * pg..];
                    let pc = product.map(|p| p[g].as_slice());
                    v.gemm_requant(g, m, a8, &epi, pc, out, out_c, pg);
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
            self.panel_bias(bias, bias16);
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

    fn geometry(&self) -> Im2col<'_> {
        Im2col { p: &self.p, in_shape: self.in_shape, filter_shape: self.filter_shape, out_shape: self.out_shape }
    }

    /// The bias laid out per group and 16-channel panel (zero past each
    /// group's channels, and everywhere without a bias), into `dst`.
    fn panel_bias(&self, bias: Option<&[i32]>, dst: &mut Vec<i32>) {
        let pg = self.per_group;
        let panels = pg.div_ceil(NR);
        dst.clear();
        dst.resize(self.packed.len() * panels * NR, 0);
        if let Some(b) = bias {
            for (g, d) in dst.chunks_exact_mut(panels * NR).enumerate() {
                d[..pg].copy_from_slice(&b[g * pg..(g + 1) * pg]);
            }
        }
    }

    /// Whether the plan runs on AVX-512 VNNI (for tests).
    #[cfg(test)]
    fn uses_vnni(&self) -> bool {
        #[cfg(target_arch = "x86_64")]
        return self.vnni.is_some();
        #[cfg(not(target_arch = "x86_64"))]
        false
    }

    /// Whether a run with this bias requantises in the VNNI product form
    /// (for tests).
    #[cfg(test)]
    fn uses_product(&self, bias: Option<&[i32]>) -> bool {
        #[cfg(target_arch = "x86_64")]
        return self.uses_vnni()
            && self.requant.mode(self.weight_bound, bias) == RequantMode::Short
            && self.vnni_product.is_some();
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = bias;
            false
        }
    }

    /// Receptive fields of pixels `first .. first + m`, group `g`, as
    /// `x + input_offset` (0 for padding taps and the even-depth pad).
    fn im2col<T: Q8>(&self, input: &[T], first: usize, m: usize, g: usize, dst: &mut [i16]) {
        let off = self.input_offset;
        self.geometry().rows(input, first, m, g, self.depth, &mut dst[..m * self.kp], 0, |src, d| widen(src, off, d));
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
    /// Where the taps lie in the input.
    taps: DwTaps,
    /// The taps in the padded copy of a stride-1 layer with padding.
    padded: Option<DwPadded>,
    /// `Requant::product_rows` of the `c16` channels (empty where the
    /// product form does not apply).
    product: Vec<i32>,
    /// `w + filter_offset` per tap and channel as an i32 whose high half is
    /// zero (`w32[t * c16 + c]`): against an input sign-extended to i32,
    /// `vpmaddwd` gives `x * w` in each lane (the AVX-512 kernels).
    w32: Vec<i32>,
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
        let mut w32 = vec![0i32; taps * c16];
        let mut corr = vec![0i32; c16];
        let weight_bound = sum_bound::<W>(taps, q.input_offset, filter_offset);
        for t in 0..taps {
            let (pi, s) = (t / 2, t % 2);
            for c in 0..c16 {
                let w = filter[t * out_c + c].to_i32() + filter_offset;
                wp[(pi * c16 + c) * 2 + s] = w as i16;
                w32[t * c16 + c] = (w as i16 as u16) as i32;
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
            taps: DwTaps::default(),
            padded: None,
            w32,
            product: requant.product_rows(0, c16).unwrap_or_default(),
        })
    }
}

/// Where a depthwise pixel's taps lie from its first one, in an image
/// whose rows are `width` pixels of `in_c` bytes.
#[derive(Clone, Debug, Default)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) struct DwTaps {
    /// Offsets of the taps `(2p, 2p + 1)` (`((fy * dilation_h) * width +
    /// fx * dilation_w) * in_c`); an odd count repeats the last tap,
    /// whose pair weight is zero.
    pair_deltas: Vec<(usize, usize)>,
    /// The same offsets tap by tap (the AVX-512 kernels).
    deltas: Vec<usize>,
    /// The column-sharing VNNI kernels' view of the taps, where they
    /// apply.
    cols: Option<DwCols>,
}

impl DwTaps {
    fn new(params: &DepthwiseParams, f_h: usize, f_w: usize, width: usize, in_c: usize) -> DwTaps {
        let d: Vec<usize> = (0..f_h * f_w)
            .map(|t| ((t / f_w * params.dilation_h) * width + t % f_w * params.dilation_w) * in_c)
            .collect();
        DwTaps {
            pair_deltas: d.chunks(2).map(|c| (c[0], c[c.len() - 1])).collect(),
            cols: DwCols::new(&d, f_w, params.stride_w, in_c),
            deltas: d,
        }
    }
}

/// A depthwise layer of stride 1 with padding runs on a copy of its input
/// rows with the padding written out as the zero point, whose taps add
/// nothing (as the reference's skipped ones): every pixel is then an
/// interior one for the span kernels. Half a 7x7 layer's pixels touch the
/// padding and went one at a time through the tap-list kernel (7x7x960:
/// 20 -> 12 us); the copy costs one pass over the input, about the
/// output's size at stride 1 (112x112x32: 92 -> 76 us). At stride 2 it is
/// four times the output, for few edge pixels (right and bottom only with
/// TensorFlow's padding of an even size): 112x112x96 ran 67 -> 79 us.
#[derive(Clone, Debug)]
struct DwPadded {
    /// Pixels per padded row: the columns the outputs reach.
    width: usize,
    taps: DwTaps,
}

/// Bytes of padded input rows copied at a time (it stays in L2; the
/// tests' small images take several blocks).
const DW_PADDED_BLOCK_BYTES: usize = if cfg!(test) { 2048 } else { 256 * 1024 };

/// The taps as filter rows of `fw` adjacent taps, pixels `stride` columns
/// of `col` bytes apart (the column-sharing VNNI depthwise kernels).
#[derive(Clone, Debug)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
struct DwCols {
    fw: usize,
    stride: usize,
    /// Bytes per input pixel (`in_c`): the kernels step columns by their
    /// channel count, so they run only where the two are equal.
    col: usize,
    /// Each filter row's first-tap offset.
    rows: Vec<usize>,
}

impl DwCols {
    /// `Some` where the kernels are built for `(fw, stride)` and every tap
    /// offset in `deltas` is its row's first plus `fx * col` (unit
    /// dilation across), checked here once rather than per call.
    fn new(deltas: &[usize], fw: usize, stride: usize, col: usize) -> Option<DwCols> {
        if ![(3, 1), (3, 2), (5, 1), (5, 2)].contains(&(fw, stride)) || !deltas.len().is_multiple_of(fw) {
            return None;
        }
        let rows: Vec<usize> = deltas.iter().step_by(fw).copied().collect();
        let fits =
            deltas.iter().enumerate().all(|(t, &d)| Some(d) == (t % fw).checked_mul(col).map(|o| rows[t / fw] + o));
        fits.then_some(DwCols { fw, stride, col, rows })
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
                let (in_h, in_w, in_c) = (in_shape[1], in_shape[2], in_shape[3]);
                let [_, out_h, out_w, _] = out_shape;
                f.taps = DwTaps::new(params, f_h, f_w, in_w, in_c);
                // The columns and rows (from the top padding's first) the
                // outputs reach.
                let reach = |out: usize, stride: usize, f: usize, dil: usize| {
                    out.saturating_sub(1) * stride + f.saturating_sub(1) * dil + 1
                };
                let (pw, ph) = (
                    reach(out_w, params.stride_w, f_w, params.dilation_w),
                    reach(out_h, params.stride_h, f_h, params.dilation_h),
                );
                let pads = params.pad_left > 0
                    || params.pad_top > 0
                    || pw > params.pad_left + in_w
                    || ph > params.pad_top + in_h;
                let unit = params.stride_h == 1 && params.stride_w == 1;
                if pads && unit && f.c16 == out_c && out_h > 0 && out_w > 0 {
                    f.padded = Some(DwPadded { width: pw, taps: DwTaps::new(params, f_h, f_w, pw, in_c) });
                }
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
    /// Image `image`'s input rows that output rows `oy0 ..= oy1` read,
    /// copied into `buf` between columns and rows of the zero point
    /// (`DwPadded`): padded row `oy0 * stride_h` (counted from the top
    /// padding's first) first, `pd.width` pixels a row.
    fn pad_rows<T: Q8>(&self, pd: &DwPadded, input: &[T], image: usize, oy0: usize, oy1: usize, buf: &mut Vec<T>) {
        let [_, in_h, in_w, in_c] = self.in_shape;
        let p = &self.p;
        let span_h = (self.filter_shape[1] - 1) * p.dilation_h;
        let (r0, r1) = (oy0 * p.stride_h, oy1 * p.stride_h + span_h + 1);
        let row_len = pd.width * in_c;
        let zp = T::from_i32(-self.q.input_offset);
        buf.resize((r1 - r0) * row_len, zp);
        // Input pixels per row that some output reads, after `left` pixels
        // of padding.
        let left = p.pad_left.min(pd.width);
        let cols = in_w.min(pd.width - left);
        for (r, row) in (r0..r1).zip(buf.chunks_exact_mut(row_len)) {
            match r.checked_sub(p.pad_top).filter(|&iy| iy < in_h && cols > 0) {
                Some(iy) => {
                    let (pad, rest) = row.split_at_mut(left * in_c);
                    let (inside, right) = rest.split_at_mut(cols * in_c);
                    pad.fill(zp);
                    inside.copy_from_slice(&input[(image * in_h + iy) * in_w * in_c..][..cols * in_c]);
                    right.fill(zp);
                }
                None => row.fill(zp),
            }
        }
    }

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
        // The AVX-512 kernels, where the CPU has them.
        let wide = crate::optimized::isa::Avx512::new(self.isa);
        let vnni = crate::optimized::isa::Avx512Vnni::new(self.isa);
        if let Some(pd) = &f.padded {
            let step = p.stride_w * in_c;
            let mut i = 0;
            while i < rows {
                // The chunk's pixels in this image from pixel `pix`: its
                // output rows `oy0 ..= oy1`, whose taps start at padded row
                // `oy0 * stride_h` of the copy.
                let pix = row_start + i;
                let image = pix / (out_w * out_h);
                let oy0 = pix / out_w % out_h;
                // At most a block of output rows at a time (each adds a
                // padded row per unit of stride to the copy).
                let block_rows = (DW_PADDED_BLOCK_BYTES / (pd.width * in_c * p.stride_h).max(1)).max(1);
                let block_end = (pix / out_w + block_rows) * out_w;
                let end = (row_start + rows).min((image + 1) * out_w * out_h).min(block_end);
                let oy1 = (end - 1) / out_w % out_h;
                let padded = T::padded(scratch);
                self.pad_rows(pd, input, image, oy0, oy1, padded);
                let mut q = pix;
                while q < end {
                    // One output row's pixels `ox .. ox + n`.
                    let (ox, oy) = (q % out_w, q / out_w % out_h);
                    let n = (out_w - ox).min(end - q);
                    let x0 = ((oy - oy0) * p.stride_h * pd.width + ox * p.stride_w) * in_c;
                    let out = &mut output_rows[(q - row_start) * out_c..(q - row_start + n) * out_c];
                    let (taps, rq) = (&pd.taps, &self.requant);
                    avx2::dwconv16_span(t, wide, vnni, padded, f, taps, rq, mode, bias, oc, x0, step, n, out);
                    q += n;
                }
                i = end - row_start;
            }
            return;
        }
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
                let step = p.stride_w * in_c;
                avx2::dwconv16_span(
                    t,
                    wide,
                    vnni,
                    input,
                    f,
                    &f.taps,
                    &self.requant,
                    mode,
                    bias,
                    oc,
                    base,
                    step,
                    n,
                    out,
                );
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
            avx2::dwconv16_row(t, wide, input, f, &self.requant, mode, bias, oc, taps, head);
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
    /// The weights packed for `vpdpbusd` (int8 weights with a zero filter
    /// offset, on AVX-512 VNNI): half the bytes of `packed`, which a
    /// batch-1 FC streams from memory once per invoke.
    #[cfg(target_arch = "x86_64")]
    vnni: Option<vnni::VnniConv>,
    /// The sums' start values for `vnni`: `(input_offset - 128) * sum w`
    /// per output unit, 16 per panel.
    #[cfg(target_arch = "x86_64")]
    vnni_start: Vec<i32>,
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
        let isa = isa.clamp_to_cpu();
        #[cfg(target_arch = "x86_64")]
        let (vnni, vnni_start) = match crate::optimized::isa::Avx512Vnni::new(isa) {
            Some(t) if supported && q.filter_offset == 0 => {
                let v = vnni::VnniConv::new(t, weights, 1, out_units, depth);
                let mut start = vec![0i32; out_units.div_ceil(NR) * NR];
                if let Some(v) = &v {
                    v.add_correction(0, q.input_offset, &mut start);
                }
                (v, start)
            }
            _ => (None, Vec::new()),
        };
        // The int16 panels only where the VNNI weights are not there: int8
        // weights come with int8 inputs (the op checks), which take those.
        #[cfg(target_arch = "x86_64")]
        let int16 = vnni.is_none();
        #[cfg(not(target_arch = "x86_64"))]
        let int16 = true;
        let packed = if supported && int16 {
            PackedQs8::pack(weights, out_units, depth, q.filter_offset)
        } else {
            PackedQs8::empty()
        };
        Qs8FullyConnectedPlan {
            isa,
            q: q.clone(),
            packed,
            #[cfg(target_arch = "x86_64")]
            vnni,
            #[cfg(target_arch = "x86_64")]
            vnni_start,
            depth,
            out_units,
            supported,
        }
    }

    /// The VNNI weights, for int8 inputs.
    #[cfg(target_arch = "x86_64")]
    fn vnni_for<T: Q8>(&self) -> Option<&vnni::VnniConv> {
        self.vnni.as_ref().filter(|_| T::SIGNED)
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
        #[cfg(target_arch = "x86_64")]
        if let Some(v) = self.vnni_for::<T>() {
            let (k4, ldc) = (v.k4, n.div_ceil(NR) * NR);
            let block = im2col_block_rows(k4, rows);
            let Qs8Scratch { a_u8, acc, .. } = scratch;
            // The unsigned bytes `x + 128`; the depth's padding meets zero
            // weights.
            a_u8.resize(a_u8.len().max(block * k4), 0);
            acc.resize(acc.len().max(block * ldc), 0);
            let mut r = 0;
            while r < rows {
                let m = block.min(rows - r);
                for (i, dst) in a_u8[..m * k4].chunks_exact_mut(k4).enumerate() {
                    flip_signs(&input[(row_start + r + i) * k..(row_start + r + i + 1) * k], &mut dst[..k]);
                }
                v.gemm_i32(0, 0, m, &a_u8[..m * k4], &self.vnni_start, &mut acc[..m * ldc], ldc, n);
                self.finish_rows(&acc[..m * ldc], ldc, bias, &mut output_rows[r * n..(r + m) * n]);
                r += m;
            }
            return;
        }
        self.check_int16();
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
            self.finish_rows(&acc[..m * ldc], ldc, bias, &mut output_rows[r * n..(r + m) * n]);
            r += m;
        }
    }

    /// The int16 path needs its panels, which a plan with VNNI weights
    /// does not pack (it takes int8 inputs, not uint8).
    fn check_int16(&self) {
        assert!(self.packed.k2 * 2 >= self.depth, "an int8 FC plan packed for VNNI run on uint8 data");
    }

    /// Whole output rows from their sums (rows `ldc` apart in `acc`).
    fn finish_rows<T: Q8>(&self, acc: &[i32], ldc: usize, bias: Option<&[i32]>, output_rows: &mut [T]) {
        let n = self.out_units;
        for (out, sums) in output_rows.chunks_exact_mut(n).zip(acc.chunks(ldc)) {
            for (c, (o, &s)) in out.iter_mut().zip(sums).enumerate() {
                *o = finish_fc(&self.q, s, bias, c, self.q.output_offset);
            }
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
        #[cfg(target_arch = "x86_64")]
        if let Some(v) = self.vnni_for::<T>() {
            let Qs8Scratch { a_u8, acc, .. } = scratch;
            a_u8.resize(a_u8.len().max(v.k4), 0);
            acc.resize(acc.len().max(n), 0);
            flip_signs(&input_row[..k], &mut a_u8[..k]);
            let start = &self.vnni_start[col_start..];
            v.gemm_i32(0, col_start / NR, 1, &a_u8[..v.k4], start, &mut acc[..n], n, n);
            for (i, (o, &s)) in out_cols.iter_mut().zip(acc.iter()).enumerate() {
                *o = finish_fc(&self.q, s, bias, col_start + i, self.q.output_offset);
            }
            return;
        }
        self.check_int16();
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
pub(crate) mod neon;

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
pub(crate) mod avx2;

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
// Index loops over fixed register arrays are deliberate: they unroll.
#[allow(clippy::needless_range_loop)]
pub(crate) mod vnni;

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
pub(crate) mod avx512;

#[cfg(not(target_arch = "x86_64"))]
#[path = "qs8/no_avx2.rs"]
mod avx2;

#[cfg(test)]
mod tests;
