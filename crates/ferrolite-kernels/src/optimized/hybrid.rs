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
#[cfg(target_arch = "x86_64")]
use crate::optimized::qs8::vnni::VnniConv;
use crate::optimized::qs8::{
    gemm_f32_tiles, gemm_i32, gemm_i32_panels, walk_tiles, FloatTail, PackedQs8, Qs8Scratch, TailScale, MR, NR,
};
use crate::reference::conv::{Conv2dParams, DepthwiseParams};
use crate::reference::hybrid::{
    asymmetric_params, minmax_element, round_to_i32, symmetric_params, ASYMMETRIC_QMAX, ASYMMETRIC_QMIN, SYMMETRIC_QMAX,
};
use std::sync::Mutex;

/// The min and max of the float values a kernel wrote, recorded while they
/// are still in cache, so that the hybrid op reading them next can take its
/// quantisation parameters from them instead of scanning its whole input
/// again (`known` in [`HybridConvPlan::quantize_params_par`]). A NaN
/// anywhere spoils it: the reader then scans, as the reference does.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ObservedRange {
    state: RangeState,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
enum RangeState {
    #[default]
    Empty,
    Seen(f32, f32),
    NaN,
}

impl ObservedRange {
    /// Take `values` into the range.
    pub fn observe(&mut self, isa: IsaLevel, values: &[f32]) {
        if values.is_empty() || self.state == RangeState::NaN {
            return;
        }
        let seen = match Avx2Fma::new(isa.clamp_to_cpu()) {
            Some(t) => avx2::minmax(t, values),
            None if values.iter().any(|v| v.is_nan()) => None,
            None => minmax_element(values),
        };
        self.merge(ObservedRange { state: seen.map_or(RangeState::NaN, |(lo, hi)| RangeState::Seen(lo, hi)) });
    }

    /// [`Self::observe`] for values that lie in `bounds` (a clamp's) and
    /// are never NaN: once both bounds have been seen the range is final,
    /// and later calls return without looking (ReLU6 outputs reach 0 and 6
    /// within the first rows).
    fn observe_bounded(&mut self, isa: IsaLevel, values: &[f32], bounds: Option<(f32, f32)>) {
        if let (Some((lo, hi)), RangeState::Seen(a, b)) = (bounds, self.state) {
            if a == lo && b == hi {
                return;
            }
        }
        self.observe(isa, values);
    }

    /// Take another part's range into this one.
    pub fn merge(&mut self, other: ObservedRange) {
        use RangeState::*;
        self.state = match (self.state, other.state) {
            (NaN, _) | (_, NaN) => NaN,
            (Empty, x) | (x, Empty) => x,
            (Seen(a, b), Seen(c, d)) => Seen(if c < a { c } else { a }, if d > b { d } else { b }),
        };
    }

    /// `(min, max)` of every value observed; `None` when there was none or
    /// one was NaN. (Which of two equal zeros comes out is not fixed: the
    /// parameter helpers do not see the sign of a zero.)
    pub fn get(&self) -> Option<(f32, f32)> {
        match self.state {
            RangeState::Seen(lo, hi) => Some((lo, hi)),
            _ => None,
        }
    }
}

/// The clamp's bounds when an epilogue `clamp(f32(acc) * s_w * s_in + bias)`
/// can give no NaN (so its outputs lie within them): every scale and bias
/// finite, and `|acc| * max|s_w| * s_in` (with `|acc| < 2^31`) finite in
/// any order of the products, so no `0 * inf` or `inf - inf` arises.
/// The largest `|v|`, NaN if any `v` is.
fn max_abs(values: &[f32]) -> f32 {
    values.iter().fold(0.0f32, |m, &v| if m.is_nan() || v.is_nan() { f32::NAN } else { m.max(v.abs()) })
}

fn nan_free_bounds(clamp: ClampF32, max_abs_scale: f32, s_in: f32, bias: Option<&[f32]>) -> Option<(f32, f32)> {
    const LIMIT: f64 = 1e37;
    let acc_max = 2f64.powi(31);
    let finite = max_abs_scale.is_finite()
        && s_in.is_finite()
        && (max_abs_scale as f64) * acc_max < LIMIT
        && (max_abs_scale as f64) * (s_in.abs() as f64) * acc_max < LIMIT
        && (s_in.abs() as f64) * acc_max < LIMIT
        && bias.is_none_or(|b| b.iter().all(|v| v.is_finite()))
        && !clamp.min.is_nan()
        && !clamp.max.is_nan();
    finite.then_some((clamp.min, clamp.max))
}

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
    /// [`Self::quantize_as`] would find them), not the values. `known`, the
    /// min/max of the whole input (see [`ObservedRange`]), replaces the
    /// scan when there is one row.
    #[allow(clippy::too_many_arguments)]
    fn quantize_params(
        &mut self,
        isa: IsaLevel,
        input: &[f32],
        rows: usize,
        row_len: usize,
        asymmetric: bool,
        known: Option<(f32, f32)>,
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
            let values = &input[r * row_len..(r + 1) * row_len];
            let (scale, offset, zero, rq) = match known {
                _ if row_len == 0 => (1.0, 0, true, None),
                Some(range) if rows == 1 => {
                    debug_assert!(
                        minmax_element(values).is_some_and(|(lo, hi)| lo == range.0 && hi == range.1)
                            && !values.iter().any(|v| v.is_nan()),
                        "the known range {range:?} is not the input's"
                    );
                    row_quant(values, asymmetric, Some(range))
                }
                _ => row_params(token, values, asymmetric, par),
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
    /// The largest `|scale|` (NaN if any is): see [`nan_free_bounds`].
    max_abs_scale: f32,
    /// The sums on AVX-512 VNNI, where the CPU has it (then `packed`
    /// holds empty panels).
    #[cfg(target_arch = "x86_64")]
    vnni: Option<VnniConv>,
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
        #[cfg(target_arch = "x86_64")]
        let vnni = match (supported, crate::optimized::isa::Avx512Vnni::new(isa)) {
            (true, Some(t)) => VnniConv::new(t, filter, groups, per_group, depth),
            _ => None,
        };
        #[cfg(target_arch = "x86_64")]
        let vnni_only = vnni.is_some();
        #[cfg(not(target_arch = "x86_64"))]
        let vnni_only = false;
        let packed = if supported {
            (0..groups)
                .map(|g| match vnni_only {
                    true => PackedQs8::empty(),
                    false => {
                        let w = &filter[g * per_group * depth..(g + 1) * per_group * depth];
                        PackedQs8::pack(w, per_group, depth, 0)
                    }
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
        // Per-tensor: the one scale; per-channel: one per output channel.
        let scales: Vec<f32> = match (supported, per_channel) {
            (false, _) => Vec::new(),
            (true, false) => vec![filter_scales[0]],
            (true, true) => (0..out_c).map(|c| scale_at(filter_scales, c)).collect(),
        };
        HybridConvPlan {
            isa: isa.clamp_to_cpu(),
            p: *params,
            in_shape,
            filter_shape,
            out_shape,
            scales16,
            kind: if per_channel { ConvKind::PerChannel } else { ConvKind::PerTensor },
            max_abs_scale: max_abs(&scales),
            scales,
            #[cfg(target_arch = "x86_64")]
            vnni,
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
    /// [`Self::run_rows_quantizing`]. `known` is the min/max of the whole
    /// `input` when its producer recorded it ([`ObservedRange`]); it spares
    /// the scan of a single image.
    pub fn quantize_params_par(
        &self,
        input: &[f32],
        q: &mut HybridInput,
        known: Option<(f32, f32)>,
        par: ParallelFor<'_>,
    ) {
        let [batches, in_h, in_w, in_c] = self.in_shape;
        let asymmetric = self.kind == ConvKind::PerChannel;
        q.quantize_params(self.isa, input, batches, in_h * in_w * in_c, asymmetric, known, par);
    }

    /// [`Self::run_rows`] for a [`Self::banded`] plan, `q` from
    /// [`Self::quantize_params_par`]: each block of rows is quantised from
    /// `input` into the scratch just before its GEMM, so the quantised image
    /// never goes to memory and back. Same values as [`Self::run_rows`].
    #[allow(clippy::too_many_arguments)]
    pub fn run_rows_quantizing(
        &self,
        input: &[f32],
        q: &HybridInput,
        bias: Option<&[f32]>,
        output_rows: &mut [f32],
        row_start: usize,
        scratch: &mut Qs8Scratch,
        observed: Option<&mut ObservedRange>,
    ) {
        assert!(self.banded(), "run_rows_quantizing on a plan that is not banded");
        let [batches, in_h, in_w, in_c] = self.in_shape;
        assert!(input.len() >= batches * in_h * in_w * in_c, "input too short");
        assert!(
            q.params_only && q.rows == batches && q.row_len == in_h * in_w * in_c,
            "input parameters not found for this plan"
        );
        self.run_rows_from(Some(input), q, bias, output_rows, row_start, scratch, observed)
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
        self.run_rows(q, bias, &mut output[..len], 0, scratch, None);
    }

    /// Output pixels `row_start .. row_start + output_rows.len() / out_c`
    /// from the input quantised by [`Self::quantize`]; `observed` (if
    /// given) takes in the values written, block by block while they are in
    /// cache.
    pub fn run_rows(
        &self,
        q: &HybridInput,
        bias: Option<&[f32]>,
        output_rows: &mut [f32],
        row_start: usize,
        scratch: &mut Qs8Scratch,
        observed: Option<&mut ObservedRange>,
    ) {
        let [batches, in_h, in_w, in_c] = self.in_shape;
        q.check(batches, in_h * in_w * in_c, false);
        self.run_rows_from(None, q, bias, output_rows, row_start, scratch, observed)
    }

    /// [`Self::run_rows`], the rows quantised from `input` block by block
    /// when it is given (banded), else read from `q`.
    #[allow(clippy::too_many_arguments)]
    fn run_rows_from(
        &self,
        input: Option<&[f32]>,
        q: &HybridInput,
        bias: Option<&[f32]>,
        output_rows: &mut [f32],
        row_start: usize,
        scratch: &mut Qs8Scratch,
        mut observed: Option<&mut ObservedRange>,
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
        // Where no output can be NaN, they lie within the clamp.
        let bounds = observed.as_ref().and_then(|_| {
            let per_image = q
                .scales
                .iter()
                .map(|&s_in| nan_free_bounds(self.p.clamp, self.max_abs_scale, s_in, bias.map(|b| &b[..out_c])));
            per_image.reduce(|a, b| a.filter(|_| b.is_some())).flatten()
        });
        let [_, out_h, out_w, _] = self.out_shape;
        let pg = self.per_group;
        let kp = self.kp;
        let ldc = pg.div_ceil(NR) * NR;
        let block = im2col_block_rows(kp, rows);
        let Qs8Scratch { a, a_u8, acc, fbias16, .. } = scratch;
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
                    let out = &mut output_rows[r * out_c + g * pg..];
                    if self.run_vnni(g, m, lhs, q.offsets[b], &tail, a_u8, acc, out) {
                        continue;
                    }
                    walk_tiles(m, panels, packed.k2, |i, js| {
                        let out = &mut output_rows[(r + i) * out_c + g * pg..];
                        let lhs = &lhs[i * kp..];
                        gemm_f32_tiles(token, MR.min(m - i), packed.k2, lhs, kp, packed, js, &tail, out, out_c, pg);
                    });
                }
                if let Some(range) = observed.as_deref_mut() {
                    range.observe_bounded(self.isa, &output_rows[r * out_c..(r + m) * out_c], bounds);
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
            if let Some(range) = observed.as_deref_mut() {
                range.observe_bounded(self.isa, &output_rows[r * out_c..(r + m) * out_c], bounds);
            }
            r += m;
        }
    }

    /// Rows `lhs` (`m` of them, `q - offset` as i16, image zero point
    /// `offset`) of group `g` on the VNNI kernel, finished by `tail` into
    /// `out`; false (nothing done) where the plan has no VNNI kernel. The
    /// same sums as the int16 GEMM: the bytes `q + 128`, and the sums
    /// starting from the correction for this image's zero point.
    #[cfg(target_arch = "x86_64")]
    #[allow(clippy::too_many_arguments)]
    fn run_vnni(
        &self,
        g: usize,
        m: usize,
        lhs: &[i16],
        offset: i32,
        tail: &FloatTail<'_>,
        bytes: &mut Vec<u8>,
        starts: &mut Vec<i32>,
        out: &mut [f32],
    ) -> bool {
        let Some(v) = &self.vnni else { return false };
        let (k4, kp, depth) = (v.k4, self.kp, self.depth);
        bytes.resize(m * k4, 0);
        for (dst, src) in bytes.chunks_exact_mut(k4).zip(lhs.chunks_exact(kp)) {
            for (d, &x) in dst[..depth].iter_mut().zip(&src[..depth]) {
                *d = (x as i32 + offset + 128) as u8;
            }
            // Zero weights there.
            dst[depth..].fill(0);
        }
        starts.clear();
        starts.resize(self.per_group.div_ceil(NR) * NR, 0);
        v.add_correction(g, -offset, starts);
        let out_c = self.out_shape[3];
        v.gemm_f32(g, m, bytes, starts, tail, out, out_c, self.per_group);
        true
    }

    /// Off x86-64 there is no VNNI kernel.
    #[cfg(not(target_arch = "x86_64"))]
    #[allow(clippy::too_many_arguments)]
    fn run_vnni(
        &self,
        _: usize,
        _: usize,
        _: &[i16],
        _: i32,
        _: &FloatTail<'_>,
        _: &mut Vec<u8>,
        _: &mut Vec<i32>,
        _: &mut [f32],
    ) -> bool {
        false
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
    /// The largest `|scale|` (NaN if any is): see [`nan_free_bounds`].
    max_abs_scale: f32,
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
        let scales: Vec<f32> =
            if supported { (0..out_c).map(|c| scale_at(filter_scales, c)).collect() } else { Vec::new() };
        HybridDepthwisePlan {
            isa: isa.clamp_to_cpu(),
            p: *params,
            in_shape,
            filter_shape,
            out_shape,
            scales: scales.clone(),
            max_abs_scale: max_abs(&scales),
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
    /// [`Self::run_image_rows`]; `known` as for
    /// [`HybridConvPlan::quantize_params_par`].
    pub fn quantize_params_par(
        &self,
        input: &[f32],
        q: &mut HybridInput,
        known: Option<(f32, f32)>,
        par: ParallelFor<'_>,
    ) {
        let [batches, in_h, in_w, in_c] = self.in_shape;
        q.quantize_params(self.isa, input, batches, in_h * in_w * in_c, true, known, par);
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
    /// `observed` (if given) takes in each band's output while it is in
    /// cache.
    #[allow(clippy::too_many_arguments)]
    pub fn run_image_rows(
        &self,
        input: &[f32],
        q: &HybridInput,
        bias: Option<&[f32]>,
        output: &mut [f32],
        first: usize,
        band: &mut Vec<f32>,
        mut observed: Option<&mut ObservedRange>,
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
            // Where no output can be NaN, they lie within the clamp.
            let bounds = observed.as_ref().and_then(|_| {
                // The sums are exact integers below 2^24 < 2^31.
                nan_free_bounds(self.p.clamp, self.max_abs_scale, q.scales[b], bias)
            });
            inner.run_bands(band_rows, &epi, out, first + r, band, &fill, |done| {
                if let Some(range) = observed.as_deref_mut() {
                    range.observe_bounded(self.isa, done, bounds);
                }
            });
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
mod avx2;

#[cfg(not(target_arch = "x86_64"))]
#[path = "hybrid/no_avx2.rs"]
mod avx2;

#[cfg(test)]
mod tests;
