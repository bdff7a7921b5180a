//! Dynamic-range ("hybrid") CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED
//! on the int8 GEMM / depthwise machinery of [`super::qs8`], bit for bit
//! equal to the reference kernels in `reference::hybrid`.
//!
//! The reference quantises the float input per image (per row for FC),
//! sums `w * (q - offset)` exactly in i32 and scales the sum back to float.
//! Here:
//!
//! - [`HybridInput::quantize`] quantises with the reference's own
//!   parameter helpers (`symmetric_params` / `asymmetric_params`) and the
//!   same f32 element arithmetic (`v * inv` or `offset + v * inv`, rounded
//!   half away from zero, clamped), vectorised with AVX2 where the CPU has
//!   it. It stores `q - offset` as i16, so a padding tap (0) adds nothing,
//!   exactly like the reference skipping it, and no weight-sum correction is
//!   needed; `|q - offset| <= 255` and `|w| <= 128`, so every product and
//!   every `_mm256_madd_epi16` pair sum fits i32.
//! - CONV_2D and FULLY_CONNECTED run `qs8::gemm_i32` over weights packed
//!   once at plan time (`PackedQs8`, filter offset 0). A 1x1, stride-1,
//!   unpadded conv over an even number of channels uses the quantised image
//!   as the GEMM's left matrix directly (no im2col).
//! - DEPTHWISE_CONV_2D vectorises over 8 channels (depth multiplier 1) with
//!   `_mm256_mullo_epi32`, like `qs8`'s depthwise kernel.
//! - Integer sums wrap like the reference's `wrapping_add`, and do not depend
//!   on their order; the float epilogues repeat each reference kernel's
//!   multiplication order (see the table in `reference::hybrid`), then the
//!   clamp.
//!
//! Quantisation needs whole images, so callers quantise once, then may
//! split `run_rows` (output pixels, or FC batch rows) across threads.

use crate::activation::ClampF32;
use crate::optimized::conv::{im2col_block_rows, Im2col};
use crate::optimized::depthwise::{DepthwiseF32Plan, DwEpilogue};
use crate::optimized::isa::{Avx2Fma, IsaLevel};
use crate::optimized::qs8::{
    gemm_f32_tiles, gemm_i32, gemm_i32_panels, walk_tiles, FloatTail, PackedQs8, Qs8Scratch, TailScale, MR, NR,
};
use crate::reference::conv::{Conv2dParams, DepthwiseParams};
use crate::reference::hybrid::{
    asymmetric_params, minmax_element, round_to_i32, symmetric_params, ASYMMETRIC_QMAX, ASYMMETRIC_QMIN, SYMMETRIC_QMAX,
};
use std::sync::Mutex;

/// Float activations quantised the way the reference hybrid kernels do, one
/// scale (and, asymmetric, one zero point) per row; rows are whole images
/// for the convolutions and batch rows for FULLY_CONNECTED.
#[derive(Clone, Debug, Default)]
pub struct HybridInput {
    /// `q - offset` per value as i16 (GEMM input); rows of
    /// `stride >= row_len` values, the values past `row_len` zero.
    x: Vec<i16>,
    /// The same values as f32 (depthwise input), when asked for instead.
    xf: Vec<f32>,
    scales: Vec<f32>,
    offsets: Vec<i32>,
    /// How each row's values are quantised (`None`: they all become 0).
    quant: Vec<Option<RowQuant>>,
    rows: usize,
    row_len: usize,
    stride: usize,
    /// Which of `x` / `xf` holds the values.
    float: bool,
    /// Only the per-row parameters were computed, not the values
    /// ([`HybridDepthwisePlan::run_image_rows`] quantises band by band).
    params_only: bool,
    /// Every input value compares equal to 0.0 (FULLY_CONNECTED then skips
    /// the product, as TFLite does).
    all_zero: bool,
}

/// Which of the two a [`QStore`] is, for the SIMD quantiser's store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
enum StoreKind {
    I16,
    F32,
}

/// The two stored forms of a quantised value `q - offset`.
trait QStore: Copy + Default + std::fmt::Debug {
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    const KIND: StoreKind;
    fn from_i32(v: i32) -> Self;
    fn to_i32(self) -> i32;
}
impl QStore for i16 {
    const KIND: StoreKind = StoreKind::I16;
    fn from_i32(v: i32) -> i16 {
        v as i16
    }
    fn to_i32(self) -> i32 {
        self as i32
    }
}
impl QStore for f32 {
    const KIND: StoreKind = StoreKind::F32;
    fn from_i32(v: i32) -> f32 {
        v as f32
    }
    fn to_i32(self) -> i32 {
        self as i32
    }
}

impl HybridInput {
    pub fn new() -> HybridInput {
        HybridInput::default()
    }

    /// The per-row input scales (`scaling_factors` of the reference).
    pub fn scaling_factors(&self) -> &[f32] {
        &self.scales
    }

    /// The per-row zero points (0 for symmetric quantisation).
    pub fn offsets(&self) -> &[i32] {
        &self.offsets
    }

    /// The quantised values of row `r` as the reference's `i8`s.
    pub fn row_i8(&self, r: usize) -> Vec<i8> {
        let off = self.offsets[r];
        let range = r * self.stride..r * self.stride + self.row_len;
        let back = |v: i32| (v + off) as i8;
        if self.float {
            self.xf[range].iter().map(|&v| back(v.to_i32())).collect()
        } else {
            self.x[range].iter().map(|&v| back(v.to_i32())).collect()
        }
    }

    /// Quantise `rows` rows of `row_len` floats from `input`, each on its own
    /// (symmetric, or asymmetric with a zero point), into rows of `stride`
    /// i16 values; long rows are split into tasks run by `par` (pass
    /// [`serial`] for none).
    #[allow(clippy::too_many_arguments)]
    pub fn quantize_par(
        &mut self,
        isa: IsaLevel,
        input: &[f32],
        rows: usize,
        row_len: usize,
        stride: usize,
        asymmetric: bool,
        par: ParallelFor<'_>,
    ) {
        self.quantize_as(isa, input, rows, row_len, stride, asymmetric, false, par);
    }

    #[allow(clippy::too_many_arguments)]
    fn quantize_as(
        &mut self,
        isa: IsaLevel,
        input: &[f32],
        rows: usize,
        row_len: usize,
        stride: usize,
        asymmetric: bool,
        float: bool,
        par: ParallelFor<'_>,
    ) {
        assert!(stride >= row_len && input.len() >= rows * row_len, "input too short");
        let token = Avx2Fma::new(isa.clamp_to_cpu());
        self.rows = rows;
        self.row_len = row_len;
        self.stride = stride;
        self.float = float;
        self.params_only = false;
        self.scales.clear();
        self.offsets.clear();
        self.quant.clear();
        // IsZeroVector (`!= 0.0f`: -0.0 counts as zero). Only FC uses it.
        self.all_zero = true;
        let mut row = |r: usize, (scale, offset, zero, rq): (f32, i32, bool, Option<RowQuant>)| {
            debug_assert_eq!(r, self.scales.len());
            self.scales.push(scale);
            self.offsets.push(offset);
            self.quant.push(rq);
            self.all_zero &= zero;
        };
        // Every value below is written (no clearing pass): rows, then pads.
        if float {
            self.xf.resize(rows * stride, 0.0);
            for (r, dst) in self.xf.chunks_exact_mut(stride.max(1)).take(rows).enumerate() {
                row(r, quantize_row(token, &input[r * row_len..(r + 1) * row_len], asymmetric, dst, row_len, par));
            }
        } else {
            self.x.resize(rows * stride, 0);
            for (r, dst) in self.x.chunks_exact_mut(stride.max(1)).take(rows).enumerate() {
                row(r, quantize_row(token, &input[r * row_len..(r + 1) * row_len], asymmetric, dst, row_len, par));
            }
        }
        if stride == 0 {
            // Empty rows: scale 1, offset 0, as the reference.
            self.scales.resize(rows, 1.0);
            self.offsets.resize(rows, 0);
            self.quant.resize(rows, None);
        }
    }

    /// Only the parameters of each of `rows` rows of `row_len` floats (as
    /// [`Self::quantize_as`] would find them), not the values.
    fn quantize_params(
        &mut self,
        isa: IsaLevel,
        input: &[f32],
        rows: usize,
        row_len: usize,
        asymmetric: bool,
        par: ParallelFor<'_>,
    ) {
        assert!(input.len() >= rows * row_len, "input too short");
        let token = Avx2Fma::new(isa.clamp_to_cpu());
        (self.rows, self.row_len, self.stride, self.float, self.params_only) = (rows, row_len, row_len, true, true);
        self.scales.clear();
        self.offsets.clear();
        self.quant.clear();
        self.all_zero = true;
        for r in 0..rows {
            let (scale, offset, zero, rq) = if row_len == 0 {
                (1.0, 0, true, None)
            } else {
                row_params(token, &input[r * row_len..(r + 1) * row_len], asymmetric, par)
            };
            self.scales.push(scale);
            self.offsets.push(offset);
            self.quant.push(rq);
            self.all_zero &= zero;
        }
    }

    fn check(&self, rows: usize, row_len: usize, float: bool) {
        assert!(
            self.rows == rows && self.row_len == row_len && self.float == float && !self.params_only,
            "input not quantised for this plan"
        );
    }
}

/// Runs `task(i)` for every `i < tasks`, in any order, possibly on several
/// threads (the runtime passes its worker pool).
pub type ParallelFor<'a> = &'a (dyn Fn(usize, &(dyn Fn(usize) + Sync)) + Sync);

/// A [`ParallelFor`] on the calling thread.
pub fn serial(tasks: usize, task: &(dyn Fn(usize) + Sync)) {
    (0..tasks).for_each(task)
}

/// Units `first .. first + n` cut where an image of `per_image` units ends:
/// `(image, offset from first, units)` for each piece.
fn image_runs(first: usize, n: usize, per_image: usize) -> impl Iterator<Item = (usize, usize, usize)> {
    let mut r = 0;
    std::iter::from_fn(move || {
        (r < n).then(|| {
            let b = (first + r) / per_image;
            let here = ((b + 1) * per_image - (first + r)).min(n - r);
            r += here;
            (b, r - here, here)
        })
    })
}

/// Values per quantisation task: rows shorter than two of these run whole.
const QUANTIZE_CHUNK: usize = 32 * 1024;

/// How one row's values become `q - offset`.
#[derive(Clone, Copy, Debug)]
struct RowQuant {
    inv: f32,
    offset: i32,
    lo: i32,
    hi: i32,
    asymmetric: bool,
    /// `|v * inv|` is finite for every value: the vector loop may run.
    vector: bool,
}

impl RowQuant {
    fn apply<T: QStore>(&self, token: Option<Avx2Fma>, values: &[f32], out: &mut [T]) {
        let done = match token {
            Some(t) if self.vector => {
                avx2::quantize(t, values, self.inv, self.offset, self.asymmetric, self.lo, self.hi, out)
            }
            _ => 0,
        };
        let offset_f = self.offset as f32;
        for (o, &v) in out.iter_mut().zip(values).skip(done) {
            let p = if self.asymmetric { offset_f + v * self.inv } else { v * self.inv };
            *o = T::from_i32(round_to_i32(p).clamp(self.lo, self.hi) - self.offset);
        }
    }
}

/// The reference's parameters for a row with these `values`, given the
/// vector min/max (`None` where there is none, or a NaN): `(scaling_factor,
/// offset, all values == 0.0, how to quantise)`, the last `None` when every
/// value becomes 0.
fn row_quant(
    values: &[f32],
    asymmetric: bool,
    vector_minmax: Option<(f32, f32)>,
) -> (f32, i32, bool, Option<RowQuant>) {
    // The vector min/max equal the reference's `minmax_element` unless there
    // is a NaN (or only in the sign of a zero, which the parameter helpers do
    // not see); with a NaN the reference's own scan decides.
    let minmax = vector_minmax.or_else(|| minmax_element(values));
    // min == max == 0 still allows a NaN the scan stepped over: look.
    let zero = match minmax {
        Some((min, max)) if min == 0.0 && max == 0.0 => values.iter().all(|&v| v == 0.0),
        Some(_) => false,
        None => true,
    };
    let (min, max) = minmax.unwrap_or((0.0, 0.0));
    let params = if asymmetric {
        asymmetric_params(min, max).map(|(s, off, inv)| (s, off, inv, ASYMMETRIC_QMIN, ASYMMETRIC_QMAX))
    } else {
        minmax
            .and_then(|(min, max)| symmetric_params(min, max))
            .map(|(s, inv)| (s, 0, inv, -SYMMETRIC_QMAX, SYMMETRIC_QMAX))
    };
    let Some((scale, offset, inv, lo, hi)) = params else {
        return (1.0, 0, zero, None);
    };
    // The vector loop needs finite products (it clamps before rounding):
    // no NaN, finite extremes and a finite inverse keep `|v * inv|` near 255.
    let vector = matches!(vector_minmax, Some((a, b)) if a.is_finite() && b.is_finite()) && inv.is_finite();
    (scale, offset, zero, Some(RowQuant { inv, offset, lo, hi, asymmetric, vector }))
}

/// [`row_quant`] for a row of `values`, its min/max found with the vector
/// code where there is some; rows of at least two [`QUANTIZE_CHUNK`]s are
/// scanned in tasks for `par` (the min/max does not depend on the split).
fn row_params(
    token: Option<Avx2Fma>,
    values: &[f32],
    asymmetric: bool,
    par: ParallelFor<'_>,
) -> (f32, i32, bool, Option<RowQuant>) {
    let Some(t) = token.filter(|_| values.len() >= 2 * QUANTIZE_CHUNK) else {
        let vector_minmax = token.and_then(|t| avx2::minmax(t, values));
        return row_quant(values, asymmetric, vector_minmax);
    };
    let chunks: Vec<&[f32]> = values.chunks(QUANTIZE_CHUNK).collect();
    let parts: Vec<Mutex<Option<(f32, f32)>>> = chunks.iter().map(|_| Mutex::new(None)).collect();
    par(chunks.len(), &|i| {
        let mm = avx2::minmax(t, chunks[i]);
        *parts[i].lock().unwrap_or_else(|e| e.into_inner()) = mm;
    });
    // Any NaN (a `None` part) leaves the min/max to the reference's scan.
    let mut vector_minmax = None;
    for part in parts {
        let Some((lo, hi)) = part.into_inner().unwrap_or_else(|e| e.into_inner()) else {
            vector_minmax = None;
            break;
        };
        vector_minmax = Some(match vector_minmax {
            None => (lo, hi),
            Some((a, b)) => (if lo < a { lo } else { a }, if hi > b { hi } else { b }),
        });
    }
    row_quant(values, asymmetric, vector_minmax)
}

/// Quantise one row of `values` into `out[..len]` as `q - offset` (and
/// zero `out[len..]`); returns `(scaling_factor, offset, all values == 0.0,
/// how the values were quantised)`. Rows of at least two
/// [`QUANTIZE_CHUNK`]s are split into tasks for `par` (min/max per chunk,
/// then the values); every value is computed as in one pass, so the result
/// does not depend on the split.
fn quantize_row<T: QStore + Send>(
    token: Option<Avx2Fma>,
    values: &[f32],
    asymmetric: bool,
    out: &mut [T],
    len: usize,
    par: ParallelFor<'_>,
) -> (f32, i32, bool, Option<RowQuant>) {
    let (out, pad) = out.split_at_mut(len);
    pad.fill(T::default());
    let params = row_params(token, values, asymmetric, par);
    let Some(rq) = params.3 else {
        out.fill(T::default());
        return params;
    };
    match token.filter(|_| len >= 2 * QUANTIZE_CHUNK) {
        Some(t) => {
            let chunks: Vec<&[f32]> = values.chunks(QUANTIZE_CHUNK).collect();
            let slots: Vec<Mutex<&mut [T]>> = out.chunks_mut(QUANTIZE_CHUNK).map(Mutex::new).collect();
            par(chunks.len(), &|i| {
                let mut dst = slots[i].lock().unwrap_or_else(|e| e.into_inner());
                rq.apply(Some(t), chunks[i], &mut dst);
            });
        }
        None => rq.apply(token, values, out),
    }
    params
}

/// Weight scale of channel `i`: one for all, or one each.
#[inline(always)]
fn scale_at(scales: &[f32], i: usize) -> f32 {
    if scales.len() == 1 {
        scales[0]
    } else {
        scales[i]
    }
}

/// How an exact integer sum `a = f32(acc)` is scaled back to float.
#[derive(Clone, Copy, Debug)]
enum Scale<'a> {
    /// `a * s`.
    One(f32),
    /// `(a * w[c]) * s`.
    Seq(&'a [f32], f32),
    /// `a * (w[c] * s)`.
    Prod(&'a [f32], f32),
}

/// The float steps after the integer sums, for channels `0 .. out.len()`:
/// `v = scale(a)`, then `0 + v` if `zero_add`, then `v + bias[c]`, then the
/// clamp -- each reference kernel is one combination (see the table in
/// `reference::hybrid`). `w` and `bias` are indexed from the same channel 0.
fn epilogue(
    token: Option<Avx2Fma>,
    acc: &[i32],
    scale: Scale<'_>,
    zero_add: bool,
    bias: Option<&[f32]>,
    clamp: ClampF32,
    out: &mut [f32],
) {
    let n = out.len();
    assert!(acc.len() >= n && bias.is_none_or(|b| b.len() >= n));
    if let Scale::Seq(w, _) | Scale::Prod(w, _) = scale {
        assert!(w.len() >= n);
    }
    let done = match token {
        Some(t) => avx2::epilogue(t, acc, scale, zero_add, bias, clamp, out),
        None => 0,
    };
    for (c, o) in out.iter_mut().enumerate().skip(done) {
        let a = acc[c] as f32;
        let mut v = match scale {
            Scale::One(s) => a * s,
            Scale::Seq(w, s) => a * w[c] * s,
            Scale::Prod(w, s) => a * (w[c] * s),
        };
        if zero_add {
            // TFLite's `0 + v` (it adds to a zeroed output): -0.0 becomes +0.0.
            v += 0.0f32;
        }
        if let Some(b) = bias {
            v += b[c];
        }
        *o = clamp.apply(v);
    }
}

/// Which reference CONV_2D a plan reproduces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ConvKind {
    /// `conv2d_hybrid`: symmetric input, `(0 + f32(acc) * (s_in * s_w)) + bias`.
    PerTensor,
    /// `conv2d_hybrid_per_channel`: asymmetric input,
    /// `(f32(acc) * s_w[o]) * s_in + bias`.
    PerChannel,
}

/// A hybrid CONV_2D (float input and output, int8 OHWI filter) with its
/// weights packed for the int16 GEMM.
#[derive(Clone, Debug)]
pub struct HybridConvPlan {
    isa: IsaLevel,
    p: Conv2dParams,
    in_shape: [usize; 4],
    filter_shape: [usize; 4],
    out_shape: [usize; 4],
    kind: ConvKind,
    scales: Vec<f32>,
    per_group: usize,
    /// `kh * kw * f_in`.
    depth: usize,
    /// Depth padded to even: the im2col row length.
    kp: usize,
    /// 1x1, stride 1, no padding, one group, even depth: the quantised
    /// image is the GEMM's left matrix.
    direct: bool,
    packed: Vec<PackedQs8>,
    /// Per-channel scales laid out per group and 16-column panel (zero
    /// past each group's channels), for the fused epilogue.
    scales16: Vec<f32>,
    supported: bool,
}

impl HybridConvPlan {
    /// Plan the reference's `conv2d_hybrid` (`per_channel == false`, scale
    /// `filter_scales[0]`) or `conv2d_hybrid_per_channel` (`filter_scales`
    /// with 1 or `out_c` values). Shapes as there; `isa` is clamped to the CPU.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        isa: IsaLevel,
        params: &Conv2dParams,
        in_shape: [usize; 4],
        filter: &[i8],
        filter_shape: [usize; 4],
        filter_scales: &[f32],
        per_channel: bool,
        out_shape: [usize; 4],
    ) -> HybridConvPlan {
        let [batches, in_h, in_w, in_c] = in_shape;
        let [f_out, f_h, f_w, f_in] = filter_shape;
        let [out_b, _, _, out_c] = out_shape;
        let groups = in_c.checked_div(f_in).unwrap_or(0);
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
            && (filter_scales.len() == 1 || (per_channel && filter_scales.len() >= out_c));
        let per_group = if supported { out_c / groups } else { 0 };
        let depth = f_h * f_w * f_in;
        let kp = depth.div_ceil(2) * 2;
        let packed = if supported {
            (0..groups)
                .map(|g| {
                    PackedQs8::pack(&filter[g * per_group * depth..(g + 1) * per_group * depth], per_group, depth, 0)
                })
                .collect()
        } else {
            Vec::new()
        };
        let direct = groups == 1
            && f_h == 1
            && f_w == 1
            && params.stride_h == 1
            && params.stride_w == 1
            && params.pad_top == 0
            && params.pad_left == 0
            && out_shape[1] == in_h
            && out_shape[2] == in_w
            && kp == in_c;
        let panels = per_group.div_ceil(NR);
        let mut scales16 = vec![0.0f32; groups * panels * NR];
        if supported && per_channel {
            for (g, dst) in scales16.chunks_exact_mut((panels * NR).max(1)).enumerate().take(groups) {
                for (i, d) in dst[..per_group].iter_mut().enumerate() {
                    *d = scale_at(filter_scales, g * per_group + i);
                }
            }
        }
        HybridConvPlan {
            isa: isa.clamp_to_cpu(),
            p: *params,
            in_shape,
            filter_shape,
            out_shape,
            scales16,
            kind: if per_channel { ConvKind::PerChannel } else { ConvKind::PerTensor },
            // Per-tensor: the one scale; per-channel: one per output channel.
            scales: match (supported, per_channel) {
                (false, _) => Vec::new(),
                (true, false) => vec![filter_scales[0]],
                (true, true) => (0..out_c).map(|c| scale_at(filter_scales, c)).collect(),
            },
            per_group,
            depth,
            kp,
            direct,
            packed,
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

    /// Quantise the float input (each batch image on its own) into `q`.
    pub fn quantize(&self, input: &[f32], q: &mut HybridInput) {
        self.quantize_par(input, q, &serial);
    }

    /// [`Self::quantize`], split into tasks for `par`.
    pub fn quantize_par(&self, input: &[f32], q: &mut HybridInput, par: ParallelFor<'_>) {
        let [batches, in_h, in_w, in_c] = self.in_shape;
        let image = in_h * in_w * in_c;
        q.quantize_par(self.isa, input, batches, image, image, self.kind == ConvKind::PerChannel, par);
    }

    /// Whether [`Self::run_rows_quantizing`] can run: a 1x1 conv whose
    /// GEMM reads the quantised image as it is (each row block is then
    /// quantised just before its GEMM instead).
    pub fn banded(&self) -> bool {
        self.supported && self.direct
    }

    /// Each image's quantisation parameters without its values, for
    /// [`Self::run_rows_quantizing`].
    pub fn quantize_params_par(&self, input: &[f32], q: &mut HybridInput, par: ParallelFor<'_>) {
        let [batches, in_h, in_w, in_c] = self.in_shape;
        q.quantize_params(self.isa, input, batches, in_h * in_w * in_c, self.kind == ConvKind::PerChannel, par);
    }

    /// [`Self::run_rows`] for a [`Self::banded`] plan, `q` from
    /// [`Self::quantize_params_par`]: each block of rows is quantised from
    /// `input` into the scratch just before its GEMM, so the quantised image
    /// never goes to memory and back. Same values as [`Self::run_rows`].
    pub fn run_rows_quantizing(
        &self,
        input: &[f32],
        q: &HybridInput,
        bias: Option<&[f32]>,
        output_rows: &mut [f32],
        row_start: usize,
        scratch: &mut Qs8Scratch,
    ) {
        assert!(self.banded(), "run_rows_quantizing on a plan that is not banded");
        let [batches, in_h, in_w, in_c] = self.in_shape;
        assert!(input.len() >= batches * in_h * in_w * in_c, "input too short");
        assert!(
            q.params_only && q.rows == batches && q.row_len == in_h * in_w * in_c,
            "input parameters not found for this plan"
        );
        self.run_rows_from(Some(input), q, bias, output_rows, row_start, scratch)
    }

    /// Quantise and compute the whole output.
    pub fn run(
        &self,
        input: &[f32],
        bias: Option<&[f32]>,
        output: &mut [f32],
        q: &mut HybridInput,
        scratch: &mut Qs8Scratch,
    ) {
        self.quantize(input, q);
        let len = self.rows() * self.row_len();
        self.run_rows(q, bias, &mut output[..len], 0, scratch);
    }

    /// Output pixels `row_start .. row_start + output_rows.len() / out_c`
    /// from the input quantised by [`Self::quantize`].
    pub fn run_rows(
        &self,
        q: &HybridInput,
        bias: Option<&[f32]>,
        output_rows: &mut [f32],
        row_start: usize,
        scratch: &mut Qs8Scratch,
    ) {
        let [batches, in_h, in_w, in_c] = self.in_shape;
        q.check(batches, in_h * in_w * in_c, false);
        self.run_rows_from(None, q, bias, output_rows, row_start, scratch)
    }

    /// [`Self::run_rows`], the rows quantised from `input` block by block
    /// when it is given (banded), else read from `q`.
    fn run_rows_from(
        &self,
        input: Option<&[f32]>,
        q: &HybridInput,
        bias: Option<&[f32]>,
        output_rows: &mut [f32],
        row_start: usize,
        scratch: &mut Qs8Scratch,
    ) {
        assert!(self.supported, "unsupported hybrid conv plan: use the reference kernel");
        let out_c = self.out_shape[3];
        if out_c == 0 || output_rows.is_empty() {
            return;
        }
        assert!(output_rows.len().is_multiple_of(out_c), "output_rows is not a whole number of rows");
        let rows = output_rows.len() / out_c;
        assert!(row_start + rows <= self.rows(), "rows past the output");
        if let Some(b) = bias {
            assert!(b.len() >= out_c, "bias too short");
        }
        let [_, out_h, out_w, _] = self.out_shape;
        let pg = self.per_group;
        let kp = self.kp;
        let ldc = pg.div_ceil(NR) * NR;
        let block = im2col_block_rows(kp, rows);
        let Qs8Scratch { a, acc, fbias16, .. } = scratch;
        if (!self.direct || input.is_some()) && a.len() < block * kp {
            a.resize(block * kp, 0);
        }
        let token = Avx2Fma::new(self.isa);
        if token.is_some() {
            // The float epilogue runs in the micro-kernel, one image at a
            // time (its scale is per image).
            let panels = pg.div_ceil(NR);
            fbias16.clear();
            fbias16.resize(self.packed.len() * panels * NR, 0.0);
            if let Some(b) = bias {
                for (g, dst) in fbias16.chunks_exact_mut(panels * NR).enumerate() {
                    dst[..pg].copy_from_slice(&b[g * pg..(g + 1) * pg]);
                }
            }
            let image = out_h * out_w;
            let clamp = [self.p.clamp.min, self.p.clamp.max];
            let mut r = 0;
            while r < rows {
                let first = row_start + r;
                let b = first / image;
                let m = block.min(rows - r).min((b + 1) * image - first);
                let s_in = q.scales[b];
                for (g, packed) in self.packed.iter().enumerate() {
                    let lhs = self.lhs(input, q, first, m, g, a);
                    let at = g * panels * NR;
                    let fb = bias.map(|_| &fbias16[at..at + panels * NR]);
                    let (scale, s) = match self.kind {
                        ConvKind::PerTensor => (TailScale::PerTensor, s_in * self.scales[0]),
                        ConvKind::PerChannel => (TailScale::PerChannel(&self.scales16[at..at + panels * NR]), s_in),
                    };
                    let tail = FloatTail { scale, s, bias: fb, clamp };
                    walk_tiles(m, panels, packed.k2, |i, js| {
                        let out = &mut output_rows[(r + i) * out_c + g * pg..];
                        let lhs = &lhs[i * kp..];
                        gemm_f32_tiles(token, MR.min(m - i), packed.k2, lhs, kp, packed, js, &tail, out, out_c, pg);
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
            let first = row_start + r;
            for (g, packed) in self.packed.iter().enumerate() {
                let lhs = self.lhs(input, q, first, m, g, a);
                gemm_i32(self.isa, m, lhs, kp, packed, &mut acc[..m * ldc], ldc);
                for i in 0..m {
                    let b = (first + i) / (out_h * out_w);
                    let c0 = g * pg;
                    let out = &mut output_rows[(r + i) * out_c + c0..(r + i) * out_c + c0 + pg];
                    self.epilogue(&acc[i * ldc..i * ldc + pg], c0, q.scales[b], bias, out);
                }
            }
            r += m;
        }
    }

    /// The reference's float steps after the integer sum, for channels
    /// `c0 .. c0 + out.len()`: per-tensor `(0 + f32(acc) * (s_in * s_w)) + bias`,
    /// per-channel `(f32(acc) * s_w[c]) * s_in + bias`.
    fn epilogue(&self, acc: &[i32], c0: usize, s_in: f32, bias: Option<&[f32]>, out: &mut [f32]) {
        let n = out.len();
        let token = Avx2Fma::new(self.isa);
        let bias = bias.map(|b| &b[c0..c0 + n]);
        match self.kind {
            ConvKind::PerTensor => {
                epilogue(token, acc, Scale::One(s_in * self.scales[0]), true, bias, self.p.clamp, out)
            }
            ConvKind::PerChannel => {
                let sw = &self.scales[c0..c0 + n];
                epilogue(token, acc, Scale::Seq(sw, s_in), false, bias, self.p.clamp, out)
            }
        }
    }

    /// The GEMM's left matrix for pixels `first .. first + m`, group `g`:
    /// the quantised image itself (direct), those pixels quantised from
    /// `input` into `a` (direct, banded), or their im2col rows in `a`.
    fn lhs<'x>(
        &self,
        input: Option<&[f32]>,
        q: &'x HybridInput,
        first: usize,
        m: usize,
        g: usize,
        a: &'x mut [i16],
    ) -> &'x [i16] {
        let kp = self.kp;
        if let (true, Some(input)) = (self.direct, input) {
            // Direct: pixels are input pixels and `kp` is the channel count;
            // each image has its own parameters.
            let image = self.in_shape[1] * self.in_shape[2];
            let token = Avx2Fma::new(self.isa);
            let mut p = first;
            while p < first + m {
                let b = p / image;
                let end = (first + m).min((b + 1) * image);
                let dst = &mut a[(p - first) * kp..(end - first) * kp];
                match &q.quant[b] {
                    Some(rq) => rq.apply(token, &input[p * kp..end * kp], dst),
                    None => dst.fill(0),
                }
                p = end;
            }
            &a[..m * kp]
        } else if self.direct {
            &q.x[first * kp..(first + m) * kp]
        } else {
            self.im2col(q, first, m, g, &mut a[..m * kp]);
            &a[..m * kp]
        }
    }

    /// Receptive fields of pixels `first .. first + m`, group `g`, as the
    /// quantised `q - offset` (0 for padding taps and the even-depth pad).
    fn im2col(&self, q: &HybridInput, first: usize, m: usize, g: usize, dst: &mut [i16]) {
        let geometry =
            Im2col { p: &self.p, in_shape: self.in_shape, filter_shape: self.filter_shape, out_shape: self.out_shape };
        geometry.rows(&q.x, first, m, g, self.depth, &mut dst[..m * self.kp], Default::default(), |src, d| {
            d.copy_from_slice(src)
        });
    }
}

/// Largest depthwise filter (taps) whose sums of `w * (q - offset)` are
/// exact in f32: every partial sum is an integer of magnitude at most
/// `taps * 128 * 255 <= 2^24`, so each product and addition is exact and the
/// sum equals the reference's i32 sum (and `f32(acc)`).
const FLOAT_EXACT_TAPS: usize = (1 << 24) / (128 * 255);

/// A hybrid DEPTHWISE_CONV_2D (the reference's
/// `depthwise_conv2d_hybrid_per_channel`: asymmetric input,
/// `f32(acc) * (s_w[o] * s_in) + bias`), weights laid out `[tap][out_c]`.
///
/// Filters of up to [`FLOAT_EXACT_TAPS`] taps (every practical one) sum the
/// integer products in f32 -- exact, see there -- with FMA over 8 channels;
/// larger ones sum in i32.
#[derive(Clone, Debug)]
pub struct HybridDepthwisePlan {
    isa: IsaLevel,
    p: DepthwiseParams,
    in_shape: [usize; 4],
    filter_shape: [usize; 4],
    out_shape: [usize; 4],
    scales: Vec<f32>,
    /// Sum in f32 (else `w` holds i32 weights).
    float: bool,
    w: Vec<i32>,
    wf: Vec<f32>,
    /// For f32 sums with depth multiplier 1: the float depthwise kernel
    /// over `wf` without bias or clamp (the sums are exact, so its
    /// summation order does not matter); the epilogue runs after it.
    inner: Option<DepthwiseF32Plan>,
    supported: bool,
}

impl HybridDepthwisePlan {
    /// Shapes as for the reference, filter `[1, kh, kw, out_c]`,
    /// `filter_scales` with 1 or `out_c` values.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        isa: IsaLevel,
        params: &DepthwiseParams,
        in_shape: [usize; 4],
        filter: &[i8],
        filter_shape: [usize; 4],
        filter_scales: &[f32],
        out_shape: [usize; 4],
    ) -> HybridDepthwisePlan {
        Self::with_float_limit(isa, params, in_shape, filter, filter_shape, filter_scales, out_shape, FLOAT_EXACT_TAPS)
    }

    /// [`Self::new`] with another tap limit for the f32 sums (tests run
    /// the i32 path with 0).
    #[allow(clippy::too_many_arguments)]
    fn with_float_limit(
        isa: IsaLevel,
        params: &DepthwiseParams,
        in_shape: [usize; 4],
        filter: &[i8],
        filter_shape: [usize; 4],
        filter_scales: &[f32],
        out_shape: [usize; 4],
        float_taps: usize,
    ) -> HybridDepthwisePlan {
        let [batches, _, _, in_c] = in_shape;
        let [f_one, f_h, f_w, f_c] = filter_shape;
        let [out_b, _, _, out_c] = out_shape;
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
            && (filter_scales.len() == 1 || filter_scales.len() >= out_c);
        let float = f_h * f_w <= float_taps.min(FLOAT_EXACT_TAPS);
        let filter = if supported { &filter[..f_h * f_w * f_c] } else { &[] };
        let wf: Vec<f32> = if float { filter.iter().map(|&v| v as f32).collect() } else { Vec::new() };
        let inner = (supported && float && params.depth_multiplier == 1).then(|| {
            let p = DepthwiseParams { clamp: ClampF32::NONE, ..*params };
            DepthwiseF32Plan::new(isa, &p, in_shape, &wf, filter_shape, out_shape)
        });
        let inner = inner.filter(|plan| plan.fast());
        HybridDepthwisePlan {
            isa: isa.clamp_to_cpu(),
            p: *params,
            in_shape,
            filter_shape,
            out_shape,
            scales: if supported { (0..out_c).map(|c| scale_at(filter_scales, c)).collect() } else { Vec::new() },
            float,
            w: if float { Vec::new() } else { filter.iter().map(|&v| v as i32).collect() },
            // The inner plan holds its own (padded) copy.
            wf: if inner.is_some() { Vec::new() } else { wf },
            inner,
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

    /// Quantise the float input (each batch image on its own, asymmetric).
    pub fn quantize(&self, input: &[f32], q: &mut HybridInput) {
        self.quantize_par(input, q, &serial);
    }

    /// [`Self::quantize`], split into tasks for `par`.
    pub fn quantize_par(&self, input: &[f32], q: &mut HybridInput, par: ParallelFor<'_>) {
        let [batches, in_h, in_w, in_c] = self.in_shape;
        let image = in_h * in_w * in_c;
        q.quantize_as(self.isa, input, batches, image, image, true, self.float, par);
    }

    /// Quantise and compute the whole output.
    pub fn run(
        &self,
        input: &[f32],
        bias: Option<&[f32]>,
        output: &mut [f32],
        q: &mut HybridInput,
        scratch: &mut Qs8Scratch,
    ) {
        self.quantize(input, q);
        let len = self.rows() * self.row_len();
        self.run_rows(q, bias, &mut output[..len], 0, scratch);
    }

    /// Output pixels `row_start .. row_start + output_rows.len() / out_c`.
    pub fn run_rows(
        &self,
        q: &HybridInput,
        bias: Option<&[f32]>,
        output_rows: &mut [f32],
        row_start: usize,
        scratch: &mut Qs8Scratch,
    ) {
        assert!(self.supported, "unsupported hybrid depthwise plan: use the reference kernel");
        let out_c = self.out_shape[3];
        if out_c == 0 || output_rows.is_empty() {
            return;
        }
        assert!(output_rows.len().is_multiple_of(out_c), "output_rows is not a whole number of rows");
        let rows = output_rows.len() / out_c;
        assert!(row_start + rows <= self.rows(), "rows past the output");
        let [batches, in_h, in_w, in_c] = self.in_shape;
        q.check(batches, in_h * in_w * in_c, self.float);
        let bias = bias.map(|b| &b[..out_c]);
        let [_, f_h, f_w, _] = self.filter_shape;
        let [_, out_h, out_w, _] = self.out_shape;
        let p = &self.p;
        if let (Some(inner), true) = (&self.inner, self.float) {
            // The float kernel sums and finishes, an image at a time.
            let image_row = |b: usize, iy: usize| (b * in_h + iy) * in_w * in_c;
            let mut scaled = Vec::new();
            for (b, i, here) in image_runs(row_start, rows, out_h * out_w) {
                let epi = self.image_epilogue(q.scales[b], bias, &mut scaled);
                inner.run_rows_from(
                    &q.xf,
                    &image_row,
                    &epi,
                    &mut output_rows[i * out_c..(i + here) * out_c],
                    row_start + i,
                );
            }
            return;
        }
        let dm = p.depth_multiplier;
        let token = Avx2Fma::new(self.isa);
        let Qs8Scratch { acc, taps, .. } = scratch;
        if acc.len() < out_c {
            acc.resize(out_c, 0);
        }
        let acc = &mut acc[..out_c];
        // f32 sums of the channels the AVX2 kernel leaves.
        let mut accf: Vec<f32> = Vec::new();
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
            let s_in = q.scales[b];
            if self.float {
                let x = &q.xf;
                let done = match token {
                    Some(t) if dm == 1 => {
                        avx2::dwconv_f32_row(t, x, &self.wf, taps, &self.scales, s_in, bias, p.clamp, out)
                    }
                    _ => 0,
                };
                if done == out_c {
                    continue;
                }
                // The remaining channels (or all), summed in f32 as above.
                if accf.len() < out_c {
                    accf.resize(out_c, 0.0);
                }
                accf[done..].fill(0.0);
                for &(xo, t) in taps.iter() {
                    let xs = &x[xo..xo + in_c];
                    let w = &self.wf[t * out_c..(t + 1) * out_c];
                    if dm == 1 {
                        for ((a, &xv), &wv) in accf[done..].iter_mut().zip(&xs[done..]).zip(&w[done..]) {
                            *a += wv * xv;
                        }
                    } else {
                        for (oc, (a, &wv)) in accf.iter_mut().zip(w).enumerate() {
                            *a += wv * xs[oc / dm];
                        }
                    }
                }
                for (c, o) in out.iter_mut().enumerate().skip(done) {
                    let mut v = accf[c] * (self.scales[c] * s_in);
                    if let Some(bv) = bias {
                        v += bv[c];
                    }
                    *o = p.clamp.apply(v);
                }
                continue;
            }
            let x = &q.x;
            let done = match token {
                Some(t) if dm == 1 => avx2::dwconv_row(t, x, &self.w, taps, acc),
                _ => 0,
            };
            acc[done..].fill(0);
            for &(xo, t) in taps.iter() {
                let xs = &x[xo..xo + in_c];
                let w = &self.w[t * out_c..(t + 1) * out_c];
                if dm == 1 {
                    for ((a, &xv), &wv) in acc[done..].iter_mut().zip(&xs[done..]).zip(&w[done..]) {
                        *a = a.wrapping_add(wv.wrapping_mul(xv as i32));
                    }
                } else {
                    for (oc, (a, &wv)) in acc.iter_mut().zip(w).enumerate() {
                        *a = a.wrapping_add(wv.wrapping_mul(xs[oc / dm] as i32));
                    }
                }
            }
            epilogue(token, acc, Scale::Prod(&self.scales, s_in), false, bias, p.clamp, out);
        }
    }
}

impl HybridDepthwisePlan {
    /// Whether [`Self::run_image_rows`] can run: the sums go through the
    /// float depthwise kernel (depth multiplier 1, filters of up to
    /// [`FLOAT_EXACT_TAPS`] taps).
    pub fn banded(&self) -> bool {
        self.supported && self.float && self.inner.is_some()
    }

    /// Each image's quantisation parameters without its values, for
    /// [`Self::run_image_rows`].
    pub fn quantize_params_par(&self, input: &[f32], q: &mut HybridInput, par: ParallelFor<'_>) {
        let [batches, in_h, in_w, in_c] = self.in_shape;
        q.quantize_params(self.isa, input, batches, in_h * in_w * in_c, true, par);
    }

    /// Output image rows: `batches * out_h`.
    pub fn image_rows(&self) -> usize {
        self.out_shape[0] * self.out_shape[1]
    }

    /// Values per output image row: `out_w * out_c`.
    pub fn image_row_len(&self) -> usize {
        self.out_shape[2] * self.out_shape[3]
    }

    /// Output image rows `first ..` (as many whole rows as `output` holds)
    /// of a [`Self::banded`] plan, `q` from [`Self::quantize_params_par`]:
    /// band by band, the input rows a band of output rows reaches are
    /// quantised into `band` (this thread's, reused between calls), then
    /// summed and finished while they are still in cache. The values are
    /// those of quantising whole images first ([`Self::run_rows`]), without
    /// writing the quantised image to memory and reading it back.
    pub fn run_image_rows(
        &self,
        input: &[f32],
        q: &HybridInput,
        bias: Option<&[f32]>,
        output: &mut [f32],
        first: usize,
        band: &mut Vec<f32>,
    ) {
        let Some(inner) = self.inner.as_ref().filter(|_| self.banded()) else {
            panic!("run_image_rows on a plan that is not banded");
        };
        let [batches, in_h, in_w, in_c] = self.in_shape;
        let [_, _, out_w, out_c] = self.out_shape;
        let (in_row, out_row) = (in_w * in_c, out_w * out_c);
        if out_row == 0 || output.is_empty() {
            return;
        }
        assert!(output.len().is_multiple_of(out_row), "output is not a whole number of image rows");
        let n = output.len() / out_row;
        assert!(first + n <= self.image_rows(), "image rows {first}..{} past {}", first + n, self.image_rows());
        assert!(input.len() >= batches * in_h * in_row, "input too short");
        assert!(
            q.params_only && q.rows == batches && q.row_len == in_h * in_row,
            "input parameters not found for this plan"
        );
        let bias = bias.map(|b| &b[..out_c]);
        let token = Avx2Fma::new(self.isa);
        // Bands of a few hundred KiB (half an L2). The tests use small bands
        // so their small images still cross band boundaries.
        let band_rows = inner.band_rows(if cfg!(test) { 64 } else { 64 * 1024 });
        let fill = |b: usize, rows: std::ops::Range<usize>, dst: &mut [f32]| {
            let src = &input[(b * in_h + rows.start) * in_row..(b * in_h + rows.end) * in_row];
            match &q.quant[b] {
                Some(rq) => rq.apply(token, src, dst),
                None => dst.fill(0.0),
            }
        };
        // The kernel finishes each sum itself, an image at a time.
        let mut scaled = Vec::new();
        for (b, r, here) in image_runs(first, n, self.out_shape[1]) {
            let epi = self.image_epilogue(q.scales[b], bias, &mut scaled);
            let out = &mut output[r * out_row..(r + here) * out_row];
            inner.run_bands(band_rows, &epi, out, first + r, band, &fill);
        }
    }

    /// What the float kernel does to an image's exact f32 sums: the
    /// reference's `f32(acc) * (s_w[o] * s_in) + bias`, clamped (a separate
    /// multiply and add, after `+ 0.0`, which turns a -0.0 sum into the
    /// +0.0 of an integer zero); `scaled` holds the products `s_w[o] * s_in`.
    fn image_epilogue<'a>(&self, s_in: f32, bias: Option<&'a [f32]>, scaled: &'a mut Vec<f32>) -> DwEpilogue<'a> {
        scaled.clear();
        scaled.extend(self.scales.iter().map(|&sw| sw * s_in));
        DwEpilogue { scale: Some(scaled), bias, clamp: self.p.clamp }
    }
}

/// A hybrid FULLY_CONNECTED (the reference's `fully_connected_hybrid`:
/// `bias + f32(acc) * (s_in * s_w[o])`) with its weights packed for the
/// int16 GEMM.
#[derive(Clone, Debug)]
pub struct HybridFullyConnectedPlan {
    isa: IsaLevel,
    packed: PackedQs8,
    scales: Vec<f32>,
    depth: usize,
    out_units: usize,
    asymmetric: bool,
    clamp: ClampF32,
    supported: bool,
}

impl HybridFullyConnectedPlan {
    /// `weights` is `[out_units, depth]`, `weight_scales` 1 or `out_units`
    /// values; `asymmetric` is the op's `asymmetric_quantize_inputs`.
    pub fn new(
        isa: IsaLevel,
        weights: &[i8],
        weight_scales: &[f32],
        out_units: usize,
        depth: usize,
        asymmetric: bool,
        clamp: ClampF32,
    ) -> HybridFullyConnectedPlan {
        let supported = depth >= 1
            && weights.len() >= out_units * depth
            && (weight_scales.len() == 1 || weight_scales.len() >= out_units);
        let (packed, scales) = if supported {
            (
                PackedQs8::pack(weights, out_units, depth, 0),
                (0..out_units).map(|o| scale_at(weight_scales, o)).collect(),
            )
        } else {
            (PackedQs8::pack::<i8>(&[], 0, 0, 0), Vec::new())
        };
        HybridFullyConnectedPlan {
            isa: isa.clamp_to_cpu(),
            packed,
            scales,
            depth,
            out_units,
            asymmetric,
            clamp,
            supported,
        }
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

    /// Quantise `batches` input rows of `depth` floats, each on its own.
    pub fn quantize(&self, input: &[f32], batches: usize, q: &mut HybridInput) {
        q.quantize_par(self.isa, input, batches, self.depth, self.packed.k2 * 2, self.asymmetric, &serial);
    }

    /// Quantise and compute all `batches` rows.
    pub fn run(
        &self,
        input: &[f32],
        bias: Option<&[f32]>,
        output: &mut [f32],
        batches: usize,
        q: &mut HybridInput,
        scratch: &mut Qs8Scratch,
    ) {
        self.quantize(input, batches, q);
        self.run_rows(q, bias, &mut output[..batches * self.out_units], 0, scratch);
    }

    /// `output_rows` (a whole number of rows of `out_units`) from the
    /// quantised rows starting at batch row `row_start`.
    pub fn run_rows(
        &self,
        q: &HybridInput,
        bias: Option<&[f32]>,
        output_rows: &mut [f32],
        row_start: usize,
        scratch: &mut Qs8Scratch,
    ) {
        assert!(self.supported, "unsupported hybrid FC plan: use the reference kernel");
        let n = self.out_units;
        if n == 0 || output_rows.is_empty() {
            return;
        }
        assert!(output_rows.len().is_multiple_of(n), "output_rows is not a whole number of rows");
        let rows = output_rows.len() / n;
        assert!(row_start + rows <= q.rows && q.row_len == self.depth && !q.float, "input not quantised for this plan");
        if let Some(b) = bias {
            assert!(b.len() >= n, "bias too short");
        }
        let clamp = self.clamp;
        if q.all_zero {
            // TFLite skips the product: the output is the clamped bias.
            for row in output_rows.chunks_exact_mut(n) {
                for (o, v) in row.iter_mut().enumerate() {
                    *v = clamp.apply(bias.map_or(0.0, |bv| bv[o]));
                }
            }
            return;
        }
        let kp = self.packed.k2 * 2;
        let ldc = self.packed.panels() * NR;
        let block = im2col_block_rows(kp, rows);
        let token = Avx2Fma::new(self.isa);
        let acc = &mut scratch.acc;
        if acc.len() < block * ldc {
            acc.resize(block * ldc, 0);
        }
        let mut r = 0;
        while r < rows {
            let m = block.min(rows - r);
            let first = row_start + r;
            gemm_i32(self.isa, m, &q.x[first * kp..(first + m) * kp], kp, &self.packed, &mut acc[..m * ldc], ldc);
            for i in 0..m {
                // `bias + f32(acc) * (s_in * s_w[o])`, or `0 + ...` without a
                // bias (float addition and multiplication commute exactly).
                let scale = Scale::Prod(&self.scales, q.scales[first + i]);
                let out = &mut output_rows[(r + i) * n..(r + i + 1) * n];
                epilogue(token, &acc[i * ldc..i * ldc + n], scale, bias.is_none(), bias, clamp, out);
            }
            r += m;
        }
    }

    /// Output units `col_start .. col_start + out_cols.len()` of a single
    /// quantised row (a GEMV split across threads); `col_start` is a
    /// multiple of 16.
    pub fn run_cols(
        &self,
        q: &HybridInput,
        bias: Option<&[f32]>,
        out_cols: &mut [f32],
        col_start: usize,
        scratch: &mut Qs8Scratch,
    ) {
        assert!(self.supported, "unsupported hybrid FC plan: use the reference kernel");
        let n = out_cols.len();
        assert!(col_start.is_multiple_of(NR) && col_start + n <= self.out_units, "columns past the output");
        assert!(q.rows >= 1 && q.row_len == self.depth && !q.float, "input not quantised for this plan");
        if n == 0 {
            return;
        }
        let bias = bias.map(|b| &b[col_start..col_start + n]);
        if q.all_zero {
            for (o, v) in out_cols.iter_mut().enumerate() {
                *v = self.clamp.apply(bias.map_or(0.0, |bv| bv[o]));
            }
            return;
        }
        let kp = self.packed.k2 * 2;
        let panels = col_start / NR..(col_start + n).div_ceil(NR);
        let ldc = panels.len() * NR;
        let acc = &mut scratch.acc;
        acc.resize(acc.len().max(ldc), 0);
        gemm_i32_panels(self.isa, 1, &q.x[..kp], kp, &self.packed, panels, &mut acc[..ldc], ldc);
        let scale = Scale::Prod(&self.scales[col_start..col_start + n], q.scales[0]);
        epilogue(Avx2Fma::new(self.isa), &acc[..n], scale, bias.is_none(), bias, self.clamp, out_cols);
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
    use super::{QStore, Scale, StoreKind};
    use crate::activation::ClampF32;
    use crate::optimized::isa::Avx2Fma;
    use std::arch::x86_64::*;

    /// `(min, max)` of `values`, or `None` when it is empty or holds a NaN.
    pub(super) fn minmax(_t: Avx2Fma, values: &[f32]) -> Option<(f32, f32)> {
        if values.is_empty() {
            return None;
        }
        // SAFETY: AVX2 is proven by the token; the kernel reads only
        // `values.len()` floats from its start.
        unsafe { minmax_avx2(values.as_ptr(), values.len()) }
    }

    #[target_feature(enable = "avx2")]
    unsafe fn minmax_avx2(x: *const f32, n: usize) -> Option<(f32, f32)> {
        // SAFETY: the caller checked `n >= 1` readable floats behind `x`.
        unsafe {
            let mut i = 0;
            let (mut lo, mut hi) = (x.read(), x.read());
            let mut nan = lo.is_nan();
            if n >= 8 {
                let mut vlo = _mm256_loadu_ps(x);
                let mut vhi = vlo;
                let mut vnan = _mm256_cmp_ps(vlo, vlo, _CMP_UNORD_Q);
                i = 8;
                while i + 8 <= n {
                    let v = _mm256_loadu_ps(x.add(i));
                    vlo = _mm256_min_ps(vlo, v);
                    vhi = _mm256_max_ps(vhi, v);
                    vnan = _mm256_or_ps(vnan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
                    i += 8;
                }
                nan |= _mm256_movemask_ps(vnan) != 0;
                let mut l = [0f32; 8];
                let mut h = [0f32; 8];
                _mm256_storeu_ps(l.as_mut_ptr(), vlo);
                _mm256_storeu_ps(h.as_mut_ptr(), vhi);
                for k in 0..8 {
                    lo = if l[k] < lo { l[k] } else { lo };
                    hi = if h[k] > hi { h[k] } else { hi };
                }
            }
            while i < n {
                let v = x.add(i).read();
                nan |= v.is_nan();
                lo = if v < lo { v } else { lo };
                hi = if v > hi { v } else { hi };
                i += 1;
            }
            if nan {
                None
            } else {
                Some((lo, hi))
            }
        }
    }

    /// Quantise whole groups of 16 values into `out` as
    /// `clamp(round(v * inv) [+ offset first, asymmetric], lo, hi) - offset`;
    /// returns how many were done (the rest is left to the portable loop).
    /// Every `v * inv` must be finite.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn quantize<T: QStore>(
        _t: Avx2Fma,
        values: &[f32],
        inv: f32,
        offset: i32,
        asymmetric: bool,
        lo: i32,
        hi: i32,
        out: &mut [T],
    ) -> usize {
        let done = values.len().min(out.len()) / 16 * 16;
        let p = [inv, offset as f32, lo as f32, hi as f32];
        // SAFETY: AVX2 is proven by the token; the kernels read and write
        // `done` values, which both slices hold (`T` is i16 or f32 as named).
        unsafe {
            match T::KIND {
                StoreKind::I16 => {
                    quantize_avx2::<false>(values.as_ptr(), done, p, offset, asymmetric, out.as_mut_ptr() as *mut u8)
                }
                StoreKind::F32 => {
                    quantize_avx2::<true>(values.as_ptr(), done, p, offset, asymmetric, out.as_mut_ptr() as *mut u8)
                }
            }
        }
        done
    }

    /// `clamp(p, lo, hi)` rounded half away from zero (`f32::round`), as
    /// i32, minus the offset. `p` must not be NaN. Clamping first is the
    /// same as rounding first (the bounds are integers); then
    /// `trunc(c + copysign(0.49999997, c))` is exactly `round(c)`: below 0.5
    /// the sum stays below 1, from 0.5 up a fraction >= 0.5 carries to the
    /// next integer and a smaller one (at most 0.5 - ulp) does not.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn round_clamp(p: __m256, lo: __m256, hi: __m256, off: __m256i) -> __m256i {
        let c = _mm256_min_ps(_mm256_max_ps(p, lo), hi);
        let sign = _mm256_and_ps(c, _mm256_castsi256_ps(_mm256_set1_epi32(i32::MIN)));
        let half = _mm256_or_ps(sign, _mm256_set1_ps(0.49999997));
        _mm256_sub_epi32(_mm256_cvttps_epi32(_mm256_add_ps(c, half)), off)
    }

    /// `p = [inv, offset as f32, lo, hi]`; `F32`: store f32 values, else i16.
    #[target_feature(enable = "avx2")]
    unsafe fn quantize_avx2<const F32: bool>(
        x: *const f32,
        n: usize,
        p: [f32; 4],
        offset: i32,
        asymmetric: bool,
        out: *mut u8,
    ) {
        // SAFETY: the caller checked `n` (a multiple of 16) readable floats
        // behind `x` and `n` writable values of the stored type behind `out`.
        unsafe {
            let vinv = _mm256_set1_ps(p[0]);
            let voff_f = _mm256_set1_ps(p[1]);
            let voff = _mm256_set1_epi32(offset);
            let (vlo, vhi) = (_mm256_set1_ps(p[2]), _mm256_set1_ps(p[3]));
            let mut i = 0;
            while i < n {
                let mut p0 = _mm256_mul_ps(_mm256_loadu_ps(x.add(i)), vinv);
                let mut p1 = _mm256_mul_ps(_mm256_loadu_ps(x.add(i + 8)), vinv);
                if asymmetric {
                    // `offset + v * inv`: a separate add, as the reference (no FMA).
                    p0 = _mm256_add_ps(voff_f, p0);
                    p1 = _mm256_add_ps(voff_f, p1);
                }
                let q0 = round_clamp(p0, vlo, vhi, voff);
                let q1 = round_clamp(p1, vlo, vhi, voff);
                if F32 {
                    let o = out as *mut f32;
                    _mm256_storeu_ps(o.add(i), _mm256_cvtepi32_ps(q0));
                    _mm256_storeu_ps(o.add(i + 8), _mm256_cvtepi32_ps(q1));
                } else {
                    // Values are within -255..=255: the saturating pack is
                    // exact; it interleaves 128-bit halves, the permute
                    // restores the order.
                    let packed = _mm256_permute4x64_epi64(_mm256_packs_epi32(q0, q1), 0b11_01_10_00);
                    _mm256_storeu_si256((out as *mut i16).add(i) as *mut __m256i, packed);
                }
                i += 16;
            }
        }
    }

    /// `_mm256_min_ps(hi, _mm256_max_ps(lo, v))`: `ClampF32::apply`,
    /// NaN included (max/min return their second operand on a NaN).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn clamp8(v: __m256, lo: __m256, hi: __m256) -> __m256 {
        _mm256_min_ps(hi, _mm256_max_ps(lo, v))
    }

    /// The vector part of `super::epilogue`: whole groups of 8 channels;
    /// returns how many were done.
    pub(super) fn epilogue(
        _t: Avx2Fma,
        acc: &[i32],
        scale: Scale<'_>,
        zero_add: bool,
        bias: Option<&[f32]>,
        clamp: ClampF32,
        out: &mut [f32],
    ) -> usize {
        let done = out.len() / 8 * 8;
        let (w, s) = match scale {
            Scale::One(s) => (None, s),
            Scale::Seq(w, s) | Scale::Prod(w, s) => (Some(w), s),
        };
        assert!(acc.len() >= done && w.is_none_or(|w| w.len() >= done) && bias.is_none_or(|b| b.len() >= done));
        let seq = matches!(scale, Scale::Seq(..));
        // SAFETY: AVX2 is proven by the token; every slice holds `done`
        // values (asserted above).
        unsafe {
            epilogue_avx2(
                done,
                acc.as_ptr(),
                w.map(|w| w.as_ptr()),
                s,
                seq,
                zero_add,
                bias.map(|b| b.as_ptr()),
                [clamp.min, clamp.max],
                out.as_mut_ptr(),
            )
        };
        done
    }

    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2")]
    unsafe fn epilogue_avx2(
        n: usize,
        acc: *const i32,
        w: Option<*const f32>,
        s: f32,
        seq: bool,
        zero_add: bool,
        bias: Option<*const f32>,
        clamp: [f32; 2],
        out: *mut f32,
    ) {
        // SAFETY: the caller checked `n` (a multiple of 8) values behind
        // every pointer.
        unsafe {
            let vs = _mm256_set1_ps(s);
            let (lo, hi) = (_mm256_set1_ps(clamp[0]), _mm256_set1_ps(clamp[1]));
            let mut c = 0;
            while c < n {
                let a = _mm256_cvtepi32_ps(_mm256_loadu_si256(acc.add(c) as *const __m256i));
                let mut v = match w {
                    None => _mm256_mul_ps(a, vs),
                    Some(w) if seq => _mm256_mul_ps(_mm256_mul_ps(a, _mm256_loadu_ps(w.add(c))), vs),
                    Some(w) => _mm256_mul_ps(a, _mm256_mul_ps(_mm256_loadu_ps(w.add(c)), vs)),
                };
                if zero_add {
                    v = _mm256_add_ps(_mm256_setzero_ps(), v);
                }
                if let Some(b) = bias {
                    v = _mm256_add_ps(v, _mm256_loadu_ps(b.add(c)));
                }
                _mm256_storeu_ps(out.add(c), clamp8(v, lo, hi));
                c += 8;
            }
        }
    }

    /// Depthwise (depth multiplier 1) over f32 copies of the integer
    /// weights and `q - offset` inputs, whole groups of 8 channels, with the
    /// epilogue `clamp(sum * (sw[c] * s_in) + bias[c])`; returns how many
    /// channels were done. The sums are exact (see `FLOAT_EXACT_TAPS`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn dwconv_f32_row(
        _t: Avx2Fma,
        input: &[f32],
        w: &[f32],
        taps: &[(usize, usize)],
        sw: &[f32],
        s_in: f32,
        bias: Option<&[f32]>,
        clamp: ClampF32,
        out: &mut [f32],
    ) -> usize {
        let c = out.len();
        let done = c / 8 * 8;
        for &(xo, t) in taps {
            assert!(xo + c <= input.len() && (t + 1) * c <= w.len());
        }
        assert!(sw.len() >= c && bias.is_none_or(|b| b.len() >= c));
        // SAFETY: AVX2 and FMA are proven by the token; every tap's input
        // row and weight row have `c >= done` values, and so do `sw`,
        // `bias` and `out` (asserted above).
        unsafe {
            hybrid_dwconv_f32_avx2(
                done,
                input.as_ptr(),
                w.as_ptr(),
                c,
                taps,
                sw.as_ptr(),
                s_in,
                bias.map(|b| b.as_ptr()),
                [clamp.min, clamp.max],
                out.as_mut_ptr(),
            )
        };
        done
    }

    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn hybrid_dwconv_f32_avx2(
        done: usize,
        input: *const f32,
        w: *const f32,
        c: usize,
        taps: &[(usize, usize)],
        sw: *const f32,
        s_in: f32,
        bias: Option<*const f32>,
        clamp: [f32; 2],
        out: *mut f32,
    ) {
        // SAFETY: bounds checked by `dwconv_f32_row`.
        unsafe {
            let vs = _mm256_set1_ps(s_in);
            let (lo, hi) = (_mm256_set1_ps(clamp[0]), _mm256_set1_ps(clamp[1]));
            // `f32(acc) * (s_w[c] * s_in) + bias`, then the clamp.
            #[inline]
            #[target_feature(enable = "avx2")]
            unsafe fn finish(
                sw: *const f32,
                vs: __m256,
                bias: Option<*const f32>,
                lo: __m256,
                hi: __m256,
                out: *mut f32,
                cb: usize,
                sum: __m256,
            ) {
                // SAFETY: `cb + 8` values behind `sw`, `bias` and `out` (the caller's bounds).
                unsafe {
                    let mut v = _mm256_mul_ps(sum, _mm256_mul_ps(_mm256_loadu_ps(sw.add(cb)), vs));
                    if let Some(b) = bias {
                        v = _mm256_add_ps(v, _mm256_loadu_ps(b.add(cb)));
                    }
                    _mm256_storeu_ps(out.add(cb), clamp8(v, lo, hi));
                }
            }
            let mut cb = 0;
            while cb + 16 <= done {
                let (mut s0, mut s1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
                for &(xo, t) in taps {
                    let (x, wt) = (input.add(xo + cb), w.add(t * c + cb));
                    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x), _mm256_loadu_ps(wt), s0);
                    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(x.add(8)), _mm256_loadu_ps(wt.add(8)), s1);
                }
                finish(sw, vs, bias, lo, hi, out, cb, s0);
                finish(sw, vs, bias, lo, hi, out, cb + 8, s1);
                cb += 16;
            }
            while cb < done {
                let mut s0 = _mm256_setzero_ps();
                for &(xo, t) in taps {
                    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(input.add(xo + cb)), _mm256_loadu_ps(w.add(t * c + cb)), s0);
                }
                finish(sw, vs, bias, lo, hi, out, cb, s0);
                cb += 8;
            }
        }
    }

    /// Depthwise sums (depth multiplier 1) of whole groups of 8 channels
    /// into `acc`; returns how many channels were done.
    pub(super) fn dwconv_row(_t: Avx2Fma, input: &[i16], w: &[i32], taps: &[(usize, usize)], acc: &mut [i32]) -> usize {
        let c = acc.len();
        let done = c / 8 * 8;
        for &(xo, t) in taps {
            assert!(xo + c <= input.len() && (t + 1) * c <= w.len());
        }
        // SAFETY: AVX2 is proven by the token; every tap's input row and
        // weight row have `c >= done` values (asserted above), and `acc`
        // has `c`.
        unsafe { hybrid_dwconv_c8_avx2(done, input.as_ptr(), w.as_ptr(), c, taps, acc.as_mut_ptr()) };
        done
    }

    #[target_feature(enable = "avx2")]
    unsafe fn hybrid_dwconv_c8_avx2(
        done: usize,
        input: *const i16,
        w: *const i32,
        c: usize,
        taps: &[(usize, usize)],
        acc: *mut i32,
    ) {
        // SAFETY: bounds checked by `dwconv_row`.
        unsafe {
            let mut cb = 0;
            while cb < done {
                let mut s = _mm256_setzero_si256();
                for &(xo, t) in taps {
                    let x = _mm256_cvtepi16_epi32(_mm_loadu_si128(input.add(xo + cb) as *const __m128i));
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
    use crate::optimized::isa::Avx2Fma;

    pub(super) fn minmax(_: Avx2Fma, _: &[f32]) -> Option<(f32, f32)> {
        unreachable!("no AVX2 token off x86-64")
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn quantize<T: super::QStore>(
        _: Avx2Fma,
        _: &[f32],
        _: f32,
        _: i32,
        _: bool,
        _: i32,
        _: i32,
        _: &mut [T],
    ) -> usize {
        unreachable!("no AVX2 token off x86-64")
    }

    pub(super) fn dwconv_row(_: Avx2Fma, _: &[i16], _: &[i32], _: &[(usize, usize)], _: &mut [i32]) -> usize {
        unreachable!("no AVX2 token off x86-64")
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn epilogue(
        _: Avx2Fma,
        _: &[i32],
        _: super::Scale<'_>,
        _: bool,
        _: Option<&[f32]>,
        _: crate::activation::ClampF32,
        _: &mut [f32],
    ) -> usize {
        unreachable!("no AVX2 token off x86-64")
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn dwconv_f32_row(
        _: Avx2Fma,
        _: &[f32],
        _: &[f32],
        _: &[(usize, usize)],
        _: &[f32],
        _: f32,
        _: Option<&[f32]>,
        _: crate::activation::ClampF32,
        _: &mut [f32],
    ) -> usize {
        unreachable!("no AVX2 token off x86-64")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimized::isa::available_levels;
    use crate::optimized::testutil::{panel_ranges, ConvGeom, ConvGeomLimits, Rng};
    use crate::reference::hybrid::{
        asymmetric_quantize_floats, conv2d_hybrid, conv2d_hybrid_per_channel, depthwise_conv2d_hybrid_per_channel,
        fully_connected_hybrid, symmetric_quantize_floats, HybridScratch,
    };

    fn i8s(rng: &mut Rng, n: usize) -> Vec<i8> {
        // Mostly the converter's -127..=127, sometimes -128 too.
        (0..n).map(|_| if rng.range(0, 50) == 0 { -128 } else { (rng.range(0, 255) as i32 - 127) as i8 }).collect()
    }
    fn scales(rng: &mut Rng, n: usize) -> Vec<f32> {
        (0..n).map(|_| 0.0005 + 0.02 * (rng.f32() + 1.0)).collect()
    }
    fn clamp(rng: &mut Rng) -> ClampF32 {
        rng.pick(&[ClampF32::NONE, ClampF32::RELU, ClampF32::RELU6, ClampF32::RELU_N1_TO_1])
    }

    /// Float activations of several shapes: symmetric around 0, all
    /// non-negative (post-ReLU: zero point -128), all negative, constant,
    /// zero, with wide magnitudes, and with exact quantisation ties.
    fn floats(rng: &mut Rng, n: usize) -> Vec<f32> {
        let kind = rng.range(0, 9);
        let mut v: Vec<f32> = (0..n)
            .map(|_| {
                let x = rng.f32();
                match kind {
                    0 | 1 => 3.0 * x,
                    2 => 6.0 * (x + 1.0) * 0.5,
                    3 => -(x.abs()) - 0.1,
                    4 => 0.75,
                    5 => 0.0,
                    6 => x * 10f32.powi(rng.range(0, 12) as i32 - 6),
                    7 => {
                        // Halves: with 127 in the row, `v * 127 / 127` ties.
                        (rng.range(0, 509) as f32 - 254.0) * 0.5
                    }
                    _ => {
                        if rng.range(0, 3) == 0 {
                            0.0
                        } else {
                            x
                        }
                    }
                }
            })
            .collect();
        if kind == 7 && n > 0 {
            let i = rng.range(0, n);
            v[i] = 127.0;
        }
        if kind == 5 && n > 0 && rng.range(0, 2) == 0 {
            let i = rng.range(0, n);
            v[i] = -0.0;
        }
        v
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// The reference's quantised row, scale and zero point.
    fn reference_quantisation(v: &[f32], asymmetric: bool) -> (Vec<i8>, f32, i32) {
        let mut want = vec![0i8; v.len()];
        let (ws, wo) = if asymmetric {
            asymmetric_quantize_floats(v, &mut want)
        } else {
            let (_, _, s) = symmetric_quantize_floats(v, &mut want);
            (s, 0)
        };
        (want, ws, wo)
    }

    fn check_quantised(q: &HybridInput, want: &[i8], ws: f32, wo: i32, ctx: &str) {
        assert_eq!(q.row_i8(0), want, "{ctx}");
        assert_eq!(q.scales[0].to_bits(), ws.to_bits(), "{ctx}");
        assert_eq!(q.offsets[0], wo, "{ctx}");
    }

    #[test]
    fn split_quantisation_matches_the_reference() {
        // Rows long enough to be split into tasks, run on real threads;
        // with NaNs, infinities and extremes in some chunk but not others.
        let par = |tasks: usize, task: &(dyn Fn(usize) + Sync)| {
            std::thread::scope(|sc| {
                for i in (0..tasks).rev() {
                    sc.spawn(move || task(i));
                }
            })
        };
        let mut rng = Rng::new(0x5b1);
        for case in 0..8usize {
            let n = 2 * QUANTIZE_CHUNK + rng.range(0, 3 * QUANTIZE_CHUNK);
            let mut v = floats(&mut rng, n);
            match case % 4 {
                1 => v[n - 1] = f32::NAN,
                2 => v[QUANTIZE_CHUNK + 3] = f32::NEG_INFINITY,
                3 => v[rng.range(0, n)] = 1.0e6,
                _ => {}
            }
            for asymmetric in [false, true] {
                let (want, ws, wo) = reference_quantisation(&v, asymmetric);
                for (&isa, float) in available_levels().iter().flat_map(|l| [(l, false), (l, true)]) {
                    let mut q = HybridInput::new();
                    q.quantize_as(isa, &v, 1, n, n + 1, asymmetric, float, &par);
                    check_quantised(&q, &want, ws, wo, &format!("case {case} asym {asymmetric} {isa:?} f32 {float}"));
                }
            }
        }
    }

    #[test]
    fn quantize_matches_reference() {
        let mut rng = Rng::new(0x4b1d);
        for case in 0..600usize {
            let n = rng.range(0, 90);
            let mut v = floats(&mut rng, n);
            if case % 5 == 4 && n > 1 {
                // One ulp either side of the halves (with 127 in the row the
                // symmetric products are the values themselves).
                for x in v.iter_mut() {
                    let h = rng.range(0, 12) as f32 - 6.0 + 0.5;
                    let b = h.to_bits() as i32 + rng.range(0, 3) as i32 - 1;
                    *x = f32::from_bits(b as u32);
                }
                v[0] = 127.0;
            }
            // Specials: NaN, infinities, signed zeros, denormals.
            if case % 7 == 0 && n > 0 {
                let i = rng.range(0, n);
                v[i] = rng.pick(&[f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, 1e-40, -1e-42]);
            }
            for asymmetric in [false, true] {
                let (want, ws, wo) = reference_quantisation(&v, asymmetric);
                for (&isa, float) in available_levels().iter().flat_map(|l| [(l, false), (l, true)]) {
                    // A reused buffer: stale values must not survive.
                    let mut q = HybridInput::new();
                    q.quantize_as(isa, &[7.0; 100], 1, 100, 100, true, float, &serial);
                    q.quantize_as(isa, &v, 1, n, n + (case % 3), asymmetric, float, &serial);
                    let ctx = format!("case {case} asym {asymmetric} {isa:?} f32 {float} {v:?}");
                    check_quantised(&q, &want, ws, wo, &ctx);
                    assert_eq!(q.all_zero, v.iter().all(|&x| x == 0.0), "{ctx}");
                    if float {
                        assert!(q.xf[n..].iter().all(|&x| x == 0.0), "{ctx}: row padding");
                    } else {
                        assert!(q.x[n..].iter().all(|&x| x == 0), "{ctx}: row padding");
                    }
                }
            }
        }
    }

    fn geom(rng: &mut Rng, i: usize, in_c: usize) -> ConvGeom {
        let lim =
            ConvGeomLimits { stride_h: 4, stride_w: 3, dilation_h: 3, dilation_w: 4, batches: 4, depth_multiplier: 4 };
        ConvGeom::random(rng, i, in_c, &lim, clamp)
    }

    /// Images of one batch each drawn on their own (zero images, ReLU
    /// images and signed ones side by side).
    fn images(rng: &mut Rng, in_shape: [usize; 4]) -> Vec<f32> {
        let image: usize = in_shape[1..].iter().product();
        (0..in_shape[0]).flat_map(|_| floats(rng, image)).collect()
    }

    /// Run `run` whole and in uneven row chunks; both must equal `want` bit for bit.
    fn check_rows(
        rows: usize,
        row_len: usize,
        want: &[f32],
        rng: &mut Rng,
        ctx: &str,
        mut run: impl FnMut(&mut [f32], usize, &mut Qs8Scratch),
    ) {
        let mut scratch = Qs8Scratch::new();
        let mut got = vec![f32::NAN; want.len()];
        run(&mut got, 0, &mut scratch);
        assert_eq!(bits(&got), bits(want), "{ctx}\n got {got:?}\nwant {want:?}");
        if rows > 1 {
            let chunk = rng.range(1, rows);
            let mut got = vec![f32::NAN; want.len()];
            for (ci, part) in got.chunks_mut(chunk * row_len).enumerate() {
                run(part, ci * chunk, &mut scratch);
            }
            assert_eq!(bits(&got), bits(want), "{ctx} chunk {chunk}");
        }
    }

    #[test]
    fn conv_matches_reference_exactly() {
        let mut rng = Rng::new(0xc0de);
        let mut ref_scratch = HybridScratch::new();
        let mut banded = 0;
        for i in 0..240usize {
            let groups = if i % 5 == 1 { rng.range(2, 4) } else { 1 };
            // Even and odd channel counts (even pointwise: the direct path).
            let f_in = if i % 8 == 0 { 2 * rng.range(1, 20) } else { rng.range(1, 24) };
            let g = geom(&mut rng, i, f_in * groups);
            let out_c = groups * rng.range(1, 40 / groups);
            let filter_shape = [out_c, g.kh, g.kw, f_in];
            let out_shape = [g.in_shape[0], g.out_hw.0, g.out_hw.1, out_c];
            let out_len: usize = out_shape.iter().product();
            let rows = out_len / out_c;
            let x = images(&mut rng, g.in_shape);
            let w = i8s(&mut rng, filter_shape.iter().product());
            let b = if i.is_multiple_of(3) { None } else { Some((0..out_c).map(|_| rng.f32()).collect::<Vec<_>>()) };
            // Per-tensor (one scale), or per-channel with 1 or out_c scales.
            let per_channel = groups > 1 || i % 2 == 1;
            let sc = scales(&mut rng, if per_channel && i % 7 != 3 { out_c } else { 1 });
            let mut want = vec![0.0f32; out_len];
            if per_channel {
                conv2d_hybrid_per_channel(
                    &g.p,
                    &x,
                    g.in_shape,
                    &w,
                    filter_shape,
                    &sc,
                    b.as_deref(),
                    &mut want,
                    out_shape,
                    &mut ref_scratch,
                );
            } else {
                conv2d_hybrid(
                    &g.p,
                    &x,
                    g.in_shape,
                    &w,
                    filter_shape,
                    sc[0],
                    b.as_deref(),
                    &mut want,
                    out_shape,
                    &mut ref_scratch,
                );
            }
            for &isa in &available_levels() {
                let plan = HybridConvPlan::new(isa, &g.p, g.in_shape, &w, filter_shape, &sc, per_channel, out_shape);
                assert!(plan.supported());
                let mut q = HybridInput::new();
                plan.quantize(&x, &mut q);
                let ctx = format!(
                    "case {i} {isa:?} pc {per_channel} direct {} {:?} {filter_shape:?} {:?}",
                    plan.direct, g.in_shape, g.p
                );
                check_rows(rows, out_c, &want, &mut rng, &ctx, |o, r0, s| plan.run_rows(&q, b.as_deref(), o, r0, s));
                let mut got = vec![0.0f32; out_len];
                plan.run(&x, b.as_deref(), &mut got, &mut q, &mut Qs8Scratch::new());
                assert_eq!(bits(&got), bits(&want), "{ctx} run");
                if plan.banded() {
                    let mut qp = HybridInput::new();
                    plan.quantize_params_par(&x, &mut qp, &serial);
                    let ctx = format!("{ctx} banded");
                    check_rows(rows, out_c, &want, &mut rng, &ctx, |o, r0, s| {
                        plan.run_rows_quantizing(&x, &qp, b.as_deref(), o, r0, s)
                    });
                    banded += 1;
                }
            }
        }
        assert!(banded > 20, "only {banded} banded cases");
    }

    #[test]
    fn depthwise_matches_reference_exactly() {
        let mut rng = Rng::new(0xd3);
        let mut ref_scratch = HybridScratch::new();
        let mut banded = 0;
        for i in 0..240usize {
            let in_c = rng.range(1, 40);
            let g = geom(&mut rng, i, in_c);
            let dm = if i % 3 == 0 { 1 } else { g.dm };
            let p = DepthwiseParams {
                stride_h: g.p.stride_h,
                stride_w: g.p.stride_w,
                dilation_h: g.p.dilation_h,
                dilation_w: g.p.dilation_w,
                pad_top: g.p.pad_top,
                pad_left: g.p.pad_left,
                depth_multiplier: dm,
                clamp: g.p.clamp,
            };
            let out_c = in_c * dm;
            let filter_shape = [1, g.kh, g.kw, out_c];
            let out_shape = [g.in_shape[0], g.out_hw.0, g.out_hw.1, out_c];
            let out_len: usize = out_shape.iter().product();
            let rows = out_len / out_c;
            let x = images(&mut rng, g.in_shape);
            let w = i8s(&mut rng, filter_shape.iter().product());
            let b = if i.is_multiple_of(3) { None } else { Some((0..out_c).map(|_| rng.f32()).collect::<Vec<_>>()) };
            let sc = scales(&mut rng, if i % 5 == 2 { 1 } else { out_c });
            let mut want = vec![0.0f32; out_len];
            depthwise_conv2d_hybrid_per_channel(
                &p,
                &x,
                g.in_shape,
                &w,
                filter_shape,
                &sc,
                b.as_deref(),
                &mut want,
                out_shape,
                &mut ref_scratch,
            );
            for &isa in &available_levels() {
                // The f32 sums, and (every third case) the i32 ones.
                let limit = if i % 3 == 2 { 0 } else { FLOAT_EXACT_TAPS };
                let plan =
                    HybridDepthwisePlan::with_float_limit(isa, &p, g.in_shape, &w, filter_shape, &sc, out_shape, limit);
                assert!(plan.supported());
                assert_eq!(plan.float, limit > 0);
                let mut q = HybridInput::new();
                plan.quantize(&x, &mut q);
                let ctx = format!("case {i} {isa:?} {:?} {filter_shape:?} {p:?}", g.in_shape);
                check_rows(rows, out_c, &want, &mut rng, &ctx, |o, r0, s| plan.run_rows(&q, b.as_deref(), o, r0, s));
                let mut got = vec![0.0f32; out_len];
                plan.run(&x, b.as_deref(), &mut got, &mut q, &mut Qs8Scratch::new());
                assert_eq!(bits(&got), bits(&want), "{ctx} run");
                if plan.banded() {
                    // Random runs of image rows through one band buffer (as
                    // a worker thread keeps it), bands of a few rows.
                    let mut qp = HybridInput::new();
                    plan.quantize_params_par(&x, &mut qp, &serial);
                    let (row, n) = (plan.image_row_len(), plan.image_rows());
                    let mut got = vec![f32::NAN; out_len];
                    let mut band = Vec::new();
                    let mut r = 0;
                    while r < n {
                        let k = rng.range(1, 5).min(n - r);
                        plan.run_image_rows(&x, &qp, b.as_deref(), &mut got[r * row..(r + k) * row], r, &mut band);
                        r += k;
                    }
                    assert_eq!(bits(&got), bits(&want), "{ctx} banded");
                    banded += 1;
                }
            }
        }
        assert!(banded > 100, "only {banded} banded cases");
    }

    #[test]
    fn fully_connected_matches_reference_exactly() {
        let mut rng = Rng::new(0xfc1);
        let mut ref_scratch = HybridScratch::new();
        for i in 0..200usize {
            let (batches, depth, units) = (rng.range(1, 9), rng.range(1, 300), rng.range(1, 50));
            let asymmetric = i % 2 == 1;
            let cl = clamp(&mut rng);
            let x: Vec<f32> = if i % 11 == 0 {
                vec![if i % 22 == 0 { -0.0 } else { 0.0 }; batches * depth]
            } else {
                (0..batches).flat_map(|_| floats(&mut rng, depth)).collect()
            };
            let w = i8s(&mut rng, units * depth);
            let sc = scales(&mut rng, if i % 4 >= 2 { units } else { 1 });
            let b = if i.is_multiple_of(3) { None } else { Some((0..units).map(|_| rng.f32()).collect::<Vec<_>>()) };
            let mut want = vec![0.0f32; batches * units];
            fully_connected_hybrid(
                &x,
                &w,
                &sc,
                b.as_deref(),
                &mut want,
                batches,
                depth,
                units,
                asymmetric,
                cl,
                &mut ref_scratch,
            );
            for &isa in &available_levels() {
                let plan = HybridFullyConnectedPlan::new(isa, &w, &sc, units, depth, asymmetric, cl);
                assert!(plan.supported());
                let mut q = HybridInput::new();
                plan.quantize(&x, batches, &mut q);
                let ctx = format!("case {i} {isa:?} b{batches} d{depth} u{units} asym {asymmetric}");
                check_rows(batches, units, &want, &mut rng, &ctx, |o, r0, s| plan.run_rows(&q, b.as_deref(), o, r0, s));
                if batches == 1 {
                    // The first row's units in ranges cut at multiples of 16.
                    let (mut got, mut s) = (vec![0.0f32; units], Qs8Scratch::new());
                    for cols in panel_ranges(units, &mut rng) {
                        let c0 = cols.start;
                        plan.run_cols(&q, b.as_deref(), &mut got[cols], c0, &mut s);
                    }
                    assert_eq!(bits(&got), bits(&want[..units]), "{ctx} columns");
                }
                let mut got = vec![0.0f32; batches * units];
                plan.run(&x, b.as_deref(), &mut got, batches, &mut q, &mut Qs8Scratch::new());
                assert_eq!(bits(&got), bits(&want), "{ctx} run");
            }
        }
    }

    #[test]
    fn unsupported_shapes_are_reported() {
        let p = Conv2dParams {
            stride_h: 1,
            stride_w: 1,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: 0,
            pad_left: 0,
            clamp: ClampF32::NONE,
        };
        // 3 input channels over a filter of 2: not a whole number of groups.
        let plan =
            HybridConvPlan::new(IsaLevel::Scalar, &p, [1, 2, 2, 3], &[0; 8], [2, 1, 1, 2], &[1.0], false, [1, 2, 2, 2]);
        assert!(!plan.supported());
        // Too few per-channel scales.
        let plan = HybridFullyConnectedPlan::new(IsaLevel::Scalar, &[0; 12], &[1.0, 2.0], 3, 4, false, ClampF32::NONE);
        assert!(!plan.supported());
    }
}
