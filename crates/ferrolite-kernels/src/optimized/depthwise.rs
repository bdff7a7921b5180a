//! DEPTHWISE_CONV_2D (float), vectorised over channels.
//!
//! For each output pixel the plan lists the filter taps that land inside
//! the input (padding taps are skipped, as in the reference), then for each
//! block of channels accumulates `input[tap] * weight[tap]` with one FMA per
//! 8 channels per tap: `f32_dwconv_avx2_fma` keeps 4 registers (32 channels)
//! in flight, then 8, then a masked tail; `f32_dwconv_neon` (aarch64) does
//! the same with 4-channel registers (16 channels, then 4, then a tail
//! through a small buffer); `f32_dwconv_scalar` is the portable twin. Weights are repacked at plan time to `[taps][c8]`, the
//! channel count rounded up to 8 with zeros, so weight loads never need a
//! mask. Any kernel size, stride, dilation and padding.
//!
//! `depth_multiplier > 1` runs a portable per-channel loop (correct, not
//! fast); [`DepthwiseF32Plan::fast`] tells which path a plan takes.

use crate::activation::ClampF32;
use crate::optimized::isa::IsaLevel;
#[cfg(target_arch = "aarch64")]
use crate::optimized::isa::Neon;
#[cfg(target_arch = "x86_64")]
use crate::optimized::isa::{Avx2Fma, Avx512};
use crate::reference::conv::DepthwiseParams;

/// A DEPTHWISE_CONV_2D with repacked weights.
#[derive(Clone, Debug)]
pub struct DepthwiseF32Plan {
    isa: IsaLevel,
    p: DepthwiseParams,
    in_shape: [usize; 4],
    filter_shape: [usize; 4],
    out_shape: [usize; 4],
    /// Channel stride of `weights` (`out_c` rounded up to 8).
    c8: usize,
    /// `[kh * kw][c8]`, zero padded.
    weights: Vec<f32>,
    supported: bool,
}

/// What happens to a channel's sum `a` before it is stored: `clamp(a +
/// bias[c])` (no bias: `+ 0.0`), or with `scale`, `clamp((a + 0.0) *
/// scale[c] + bias[c])` (no bias: no addition) -- a separate multiply and
/// add, the order of the hybrid reference's `f32(acc) * scale + bias`.
#[derive(Clone, Copy, Debug)]
pub struct DwEpilogue<'a> {
    pub scale: Option<&'a [f32]>,
    pub bias: Option<&'a [f32]>,
    pub clamp: ClampF32,
}

impl DwEpilogue<'_> {
    /// Channel `c`'s output from its sum `a`.
    #[inline]
    fn apply(&self, a: f32, c: usize) -> f32 {
        let v = match self.scale {
            None => a + self.bias.map_or(0.0, |b| b[c]),
            Some(s) => {
                let v = (a + 0.0) * s[c];
                self.bias.map_or(v, |b| v + b[c])
            }
        };
        self.clamp.apply(v)
    }

    /// Checks that the bias and scale hold `c` values.
    fn check(&self, c: usize) {
        assert!(self.bias.is_none_or(|b| b.len() >= c), "bias too short");
        assert!(self.scale.is_none_or(|s| s.len() >= c), "scale too short");
    }
}

/// The dot products of one output pixel: input offsets of its in-bounds
/// taps (pixel start, channel 0) and the matching weight row offsets.
struct Taps {
    input: Vec<usize>,
    weight: Vec<usize>,
}

impl Taps {
    /// The bounds a SIMD kernel's raw loads and stores rely on, for `np`
    /// pixels `step` apart writing `out` (`np` pixels of `c` channels):
    /// every tap's input for every pixel, its weights rounded up to whole
    /// `lanes`-channel registers, and the epilogue's `c` values. Returns `c`.
    #[allow(clippy::too_many_arguments)]
    #[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(dead_code))]
    fn check(
        &self,
        np: usize,
        step: usize,
        input: &[f32],
        weights: &[f32],
        epi: &DwEpilogue<'_>,
        out: &[f32],
        lanes: usize,
    ) -> usize {
        assert!(np >= 1 && out.len().is_multiple_of(np));
        let c = out.len() / np;
        let c_up = c.div_ceil(lanes) * lanes;
        assert_eq!(self.input.len(), self.weight.len());
        for (&io, &wo) in self.input.iter().zip(&self.weight) {
            assert!(io + (np - 1) * step + c <= input.len() && wo + c_up <= weights.len());
        }
        epi.check(c);
        c
    }
}

impl DepthwiseF32Plan {
    /// Plan a depthwise conv; shapes as for
    /// [`crate::reference::conv::depthwise_conv2d_f32`], filter `[1, kh, kw, out_c]`.
    /// `isa` is clamped to what the CPU supports.
    pub fn new(
        isa: IsaLevel,
        params: &DepthwiseParams,
        in_shape: [usize; 4],
        filter: &[f32],
        filter_shape: [usize; 4],
        out_shape: [usize; 4],
    ) -> DepthwiseF32Plan {
        let [batches, _, _, in_c] = in_shape;
        let [_, f_h, f_w, f_c] = filter_shape;
        let [out_b, _, _, out_c] = out_shape;
        let supported = params.depth_multiplier >= 1
            && out_c == in_c * params.depth_multiplier
            && f_c == out_c
            && out_b == batches
            && params.stride_h >= 1
            && params.stride_w >= 1
            && filter.len() >= f_h * f_w * f_c;
        let c8 = out_c.div_ceil(8) * 8;
        let mut weights = vec![0.0f32; f_h * f_w * c8];
        if supported {
            for t in 0..f_h * f_w {
                weights[t * c8..t * c8 + out_c].copy_from_slice(&filter[t * f_c..t * f_c + out_c]);
            }
        }
        DepthwiseF32Plan {
            isa: isa.clamp_to_cpu(),
            p: *params,
            in_shape,
            filter_shape,
            out_shape,
            c8,
            weights,
            supported,
        }
    }

    /// Whether this plan can run (consistent shapes); when not, use the
    /// reference kernel.
    pub fn supported(&self) -> bool {
        self.supported
    }

    /// Whether the vectorised path runs (`depth_multiplier == 1`).
    pub fn fast(&self) -> bool {
        self.supported && self.p.depth_multiplier == 1
    }

    /// The level the plan's kernels run at.
    pub fn isa(&self) -> IsaLevel {
        self.isa
    }

    /// Number of output rows (pixels): `batches * out_h * out_w`.
    pub fn rows(&self) -> usize {
        self.out_shape[0] * self.out_shape[1] * self.out_shape[2]
    }

    /// Values per output row: `out_c`.
    pub fn row_len(&self) -> usize {
        self.out_shape[3]
    }

    /// Compute the whole output.
    pub fn run(&self, input: &[f32], bias: Option<&[f32]>, output: &mut [f32]) {
        let len = self.rows() * self.row_len();
        self.run_rows(input, bias, &mut output[..len], 0);
    }

    /// Compute output pixels `row_start .. row_start + output_rows.len() / out_c`
    /// into `output_rows` (a whole number of rows); `input` is the whole
    /// input tensor.
    pub fn run_rows(&self, input: &[f32], bias: Option<&[f32]>, output_rows: &mut [f32], row_start: usize) {
        let [batches, in_h, in_w, in_c] = self.in_shape;
        assert!(input.len() >= batches * in_h * in_w * in_c, "input too short");
        let image_row = |b: usize, iy: usize| (b * in_h + iy) * in_w * in_c;
        self.run_rows_from(input, &image_row, &self.epilogue(bias), output_rows, row_start);
    }

    /// The plan's own epilogue: `bias`, then its clamp.
    pub fn epilogue<'a>(&self, bias: Option<&'a [f32]>) -> DwEpilogue<'a> {
        DwEpilogue { scale: None, bias, clamp: self.p.clamp }
    }

    /// Output rows per band when a band holds about `band_values` input
    /// values (but always what one output row's taps reach).
    pub fn band_rows(&self, band_values: usize) -> usize {
        let in_row = (self.in_shape[2] * self.in_shape[3]).max(1);
        let reach = self.reach();
        ((band_values / in_row).max(reach) - reach) / self.p.stride_h.max(1) + 1
    }

    /// Input rows one output row's taps span.
    fn reach(&self) -> usize {
        (self.filter_shape[1].max(1) - 1) * self.p.dilation_h + 1
    }

    /// Output image rows `first ..` (as many whole rows as `output` holds),
    /// `band_rows` at a time, over input rows that exist only band by band:
    /// `fill(b, rows, dst)` writes input rows `rows` of image `b` into
    /// `dst`, a window of `band` (reused between calls, e.g. one per
    /// thread); rows the previous band of the same image already holds are
    /// moved to the front, not filled again. `epi` finishes each sum (see
    /// [`Self::epilogue`]; the hybrid conv passes its scales there). A fused
    /// producer (CONV_2D) or an input quantised band by band feeds the
    /// depthwise conv this way without the whole input in memory.
    /// `finished` sees each band's output rows once they are written.
    #[allow(clippy::too_many_arguments)]
    pub fn run_bands(
        &self,
        band_rows: usize,
        epi: &DwEpilogue<'_>,
        output: &mut [f32],
        first: usize,
        band: &mut Vec<f32>,
        mut fill: impl FnMut(usize, std::ops::Range<usize>, &mut [f32]),
        mut finished: impl FnMut(&[f32]),
    ) {
        let [_, in_h, in_w, in_c] = self.in_shape;
        let [_, out_h, out_w, out_c] = self.out_shape;
        let (in_row, out_row) = (in_w * in_c, out_w * out_c);
        if out_row == 0 || output.is_empty() {
            return;
        }
        assert!(output.len().is_multiple_of(out_row), "output is not a whole number of image rows");
        let (p, reach, band_rows) = (&self.p, self.reach(), band_rows.max(1));
        let cap = reach + (band_rows - 1) * p.stride_h;
        if band.len() < cap * in_row {
            band.resize(cap * in_row, 0.0);
        }
        // Input rows `have` of image `have_b` are at the front of `band`.
        let (mut have_b, mut have) = (usize::MAX, 0..0);
        let n = output.len() / out_row;
        let mut r = 0;
        while r < n {
            let (b, oy) = ((first + r) / out_h, (first + r) % out_h);
            let nb = band_rows.min(n - r).min(out_h - oy);
            // The input rows this band's taps reach, clipped.
            let top = (oy * p.stride_h) as isize - p.pad_top as isize;
            let bottom = top + ((nb - 1) * p.stride_h + reach) as isize;
            let lo = top.clamp(0, in_h as isize) as usize;
            let hi = (bottom.clamp(0, in_h as isize) as usize).max(lo);
            let mut done = lo;
            if have_b == b && have.start <= lo && lo < have.end {
                done = have.end.min(hi);
                if lo > have.start {
                    band.copy_within((lo - have.start) * in_row..(done - have.start) * in_row, 0);
                }
            }
            if done < hi {
                fill(b, done..hi, &mut band[(done - lo) * in_row..(hi - lo) * in_row]);
            }
            (have_b, have) = (b, lo..hi);
            let out = &mut output[r * out_row..(r + nb) * out_row];
            self.run_rows_from(band, &|_, iy| (iy - lo) * in_row, epi, out, (first + r) * out_w);
            finished(out);
            r += nb;
        }
    }

    /// [`Self::run_rows`] over an input whose image rows are not stored
    /// in order: row `iy` of batch `b` (`in_w * in_c` values) starts at
    /// `input[image_row(b, iy)]`. Only the rows the output range's taps
    /// reach are asked for, so `input` can be a window of a few rows (a
    /// fused producer writes them there just before; see the runtime's
    /// CONV_2D + DEPTHWISE_CONV_2D fusion). Offsets past `input` panic.
    pub fn run_rows_from(
        &self,
        input: &[f32],
        image_row: &impl Fn(usize, usize) -> usize,
        epi: &DwEpilogue<'_>,
        output_rows: &mut [f32],
        row_start: usize,
    ) {
        assert!(self.supported, "unsupported depthwise plan: use the reference kernel");
        let [_, in_h, in_w, in_c] = self.in_shape;
        let [_, f_h, f_w, _] = self.filter_shape;
        let [_, out_h, out_w, out_c] = self.out_shape;
        if out_c == 0 || output_rows.is_empty() {
            return;
        }
        assert!(output_rows.len().is_multiple_of(out_c), "output_rows is not a whole number of rows");
        let rows = output_rows.len() / out_c;
        assert!(row_start + rows <= self.rows(), "rows {row_start}..{} past {}", row_start + rows, self.rows());
        epi.check(out_c);
        let p = &self.p;
        let kernel = Kernel::pick(self.isa, p.depth_multiplier);
        let mut taps = Taps { input: Vec::with_capacity(f_h * f_w), weight: Vec::with_capacity(f_h * f_w) };
        // Output columns whose taps all fall inside the input horizontally:
        // along a row their tap lists are the same up to a shift of
        // `stride_w * in_c`, so they run as one multi-pixel call.
        let span = ((f_w.max(1) - 1) * p.dilation_w) as isize;
        let interior = |ox: usize| {
            let ix0 = (ox * p.stride_w) as isize - p.pad_left as isize;
            ix0 >= 0 && ix0 + span < in_w as isize
        };
        let step = p.stride_w * in_c;
        let mut i = 0;
        while i < rows {
            let pix = row_start + i;
            let ox = pix % out_w;
            let oy = (pix / out_w) % out_h;
            let b = pix / (out_w * out_h);
            // Pixels handled by this call: one, or a run of interior columns.
            let mut np = 1;
            if interior(ox) {
                while i + np < rows && ox + np < out_w && interior(ox + np) {
                    np += 1;
                }
            }
            let iy0 = (oy * p.stride_h) as isize - p.pad_top as isize;
            let ix0 = (ox * p.stride_w) as isize - p.pad_left as isize;
            taps.input.clear();
            taps.weight.clear();
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
                    taps.input.push(image_row(b, iy as usize) + ix as usize * in_c);
                    taps.weight.push((fy * f_w + fx) * self.c8);
                }
            }
            let out = &mut output_rows[i * out_c..(i + np) * out_c];
            match kernel {
                #[cfg(target_arch = "x86_64")]
                Kernel::Avx512(t) => avx512::f32_dwconv_avx512(t, &taps, np, step, input, &self.weights, epi, out),
                #[cfg(target_arch = "x86_64")]
                Kernel::Avx2(t) => avx2::f32_dwconv_avx2_fma(t, &taps, np, step, input, &self.weights, epi, out),
                #[cfg(target_arch = "aarch64")]
                Kernel::Neon(t) => neon::f32_dwconv_neon(t, &taps, np, step, input, &self.weights, epi, out),
                Kernel::Scalar => {
                    for (q, o) in out.chunks_exact_mut(out_c).enumerate() {
                        f32_dwconv_scalar(&taps, q * step, input, &self.weights, epi, o)
                    }
                }
                Kernel::Multiplier(dm) => {
                    for (q, o) in out.chunks_exact_mut(out_c).enumerate() {
                        f32_dwconv_multiplier_scalar(dm, &taps, q * step, input, &self.weights, epi, o)
                    }
                }
            }
            i += np;
        }
    }
}

#[derive(Clone, Copy)]
enum Kernel {
    #[cfg(target_arch = "x86_64")]
    Avx512(Avx512),
    #[cfg(target_arch = "x86_64")]
    Avx2(Avx2Fma),
    #[cfg(target_arch = "aarch64")]
    Neon(Neon),
    Scalar,
    Multiplier(usize),
}

impl Kernel {
    fn pick(isa: IsaLevel, depth_multiplier: usize) -> Kernel {
        if depth_multiplier != 1 {
            return Kernel::Multiplier(depth_multiplier);
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(t) = Avx512::new(isa) {
            return Kernel::Avx512(t);
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(t) = Avx2Fma::new(isa) {
            return Kernel::Avx2(t);
        }
        #[cfg(target_arch = "aarch64")]
        if let Some(t) = Neon::new(isa) {
            return Kernel::Neon(t);
        }
        let _ = isa;
        Kernel::Scalar
    }
}

/// Portable depthwise pixel (`depth_multiplier == 1`): blocks of 8 channels
/// in fixed-size arrays (which the compiler vectorises with the baseline).
fn f32_dwconv_scalar(taps: &Taps, shift: usize, input: &[f32], weights: &[f32], epi: &DwEpilogue<'_>, out: &mut [f32]) {
    let c = out.len();
    let mut ch = 0;
    while ch < c {
        let n = 8.min(c - ch);
        let mut acc = [0.0f32; 8];
        for (&io, &wo) in taps.input.iter().zip(&taps.weight) {
            let io = io + shift;
            let w: &[f32; 8] = weights[wo + ch..wo + ch + 8].try_into().unwrap();
            if n == 8 {
                let x: &[f32; 8] = input[io + ch..io + ch + 8].try_into().unwrap();
                for j in 0..8 {
                    acc[j] += x[j] * w[j];
                }
            } else {
                for j in 0..n {
                    acc[j] += input[io + ch + j] * w[j];
                }
            }
        }
        for j in 0..n {
            out[ch + j] = epi.apply(acc[j], ch + j);
        }
        ch += 8;
    }
}

#[allow(clippy::too_many_arguments)]
/// Portable depthwise pixel for `depth_multiplier > 1`: output channel
/// `ic * dm + m` reads input channel `ic`.
fn f32_dwconv_multiplier_scalar(
    dm: usize,
    taps: &Taps,
    shift: usize,
    input: &[f32],
    weights: &[f32],
    epi: &DwEpilogue<'_>,
    out: &mut [f32],
) {
    for (oc, o) in out.iter_mut().enumerate() {
        let ic = oc / dm;
        let mut acc = 0.0f32;
        for (&io, &wo) in taps.input.iter().zip(&taps.weight) {
            acc += input[io + shift + ic] * weights[wo + oc];
        }
        *o = epi.apply(acc, oc);
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx512;

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
// Index loops over fixed register arrays are deliberate: they unroll.
#[allow(clippy::needless_range_loop)]
mod avx2 {
    use super::{DwEpilogue, Taps};
    use crate::optimized::isa::Avx2Fma;
    use std::arch::x86_64::*;

    /// `-1` (all bits set: lane on) for the first 8 entries, then `0`:
    /// `MASKS[8 - n..16 - n]` enables the first `n` lanes.
    static MASKS: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];

    /// Safe entry: `np` output pixels whose taps are `taps` shifted by
    /// `q * step` for pixel `q`; checks every offset the kernels will touch,
    /// then runs them.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn f32_dwconv_avx2_fma(
        token: Avx2Fma,
        taps: &Taps,
        np: usize,
        step: usize,
        input: &[f32],
        weights: &[f32],
        epi: &DwEpilogue<'_>,
        out: &mut [f32],
    ) {
        let c = taps.check(np, step, input, weights, epi, out, 8);
        let _ = token;
        let mut q = 0;
        while q + 4 <= np {
            // SAFETY: the token proves AVX2 + FMA; every tap's input range
            // for pixels `q .. q + 4` and its weight row were checked above,
            // and the bias and scale hold `c` values.
            unsafe {
                dwconv_4px(taps, q * step, step, input.as_ptr(), weights.as_ptr(), epi, &mut out[q * c..(q + 4) * c])
            }
            q += 4;
        }
        while q < np {
            // SAFETY: as above, for pixel `q`.
            unsafe { dwconv_1px(taps, q * step, input.as_ptr(), weights.as_ptr(), epi, &mut out[q * c..(q + 1) * c]) }
            q += 1;
        }
    }

    #[inline(always)]
    fn clamp_add(v: __m256, b: __m256, lo: __m256, hi: __m256) -> __m256 {
        // SAFETY: only inlined into `avx2,fma` functions (plain AVX ops).
        unsafe { _mm256_min_ps(hi, _mm256_max_ps(lo, _mm256_add_ps(v, b))) }
    }

    /// Bias for channels `ch .. ch + 8` (masked to the first lanes of `mask`).
    ///
    /// # Safety
    /// AVX2 available; `bias[ch..]` readable on the lanes of `mask`.
    #[inline(always)]
    unsafe fn bias8(bias: Option<&[f32]>, ch: usize, mask: __m256i) -> __m256 {
        // SAFETY: per the contract; masked lanes are not read.
        unsafe {
            match bias {
                Some(b) => _mm256_maskload_ps(b.as_ptr().add(ch), mask),
                None => _mm256_setzero_ps(),
            }
        }
    }

    /// [`DwEpilogue::apply`] on channels `ch .. ch + 8` (the lanes of
    /// `mask`), `[lo, hi]` its clamp.
    ///
    /// # Safety
    /// AVX2 available; `bias[ch..]` and `scale[ch..]` readable on the lanes
    /// of `mask`.
    #[inline(always)]
    unsafe fn finish8(epi: &DwEpilogue<'_>, a: __m256, ch: usize, mask: __m256i, lo: __m256, hi: __m256) -> __m256 {
        // SAFETY: per the contract; masked lanes are not read.
        unsafe {
            let Some(s) = epi.scale else {
                return clamp_add(a, bias8(epi.bias, ch, mask), lo, hi);
            };
            let v = _mm256_add_ps(a, _mm256_setzero_ps());
            let v = _mm256_mul_ps(v, _mm256_maskload_ps(s.as_ptr().add(ch), mask));
            let v = match epi.bias {
                Some(b) => _mm256_add_ps(v, _mm256_maskload_ps(b.as_ptr().add(ch), mask)),
                None => v,
            };
            _mm256_min_ps(hi, _mm256_max_ps(lo, v))
        }
    }

    /// Mask enabling the first `n <= 8` lanes.
    #[inline(always)]
    fn mask_first(n: usize) -> __m256i {
        assert!(n <= 8);
        // SAFETY: `8 - n .. 16 - n` lies within the 16-entry table.
        unsafe { _mm256_loadu_si256(MASKS.as_ptr().add(8 - n) as *const __m256i) }
    }

    /// One pixel: 32 channels (4 registers) at a time, then 8, then a
    /// masked tail.
    ///
    /// # Safety
    /// AVX2 + FMA available; for every tap, `input[io + shift .. + c]` and
    /// `weights[wo .. wo + round_up(c, 8)]` in bounds (`c = out.len()`);
    /// `bias`, if any, holds `c` values.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn dwconv_1px(
        taps: &Taps,
        shift: usize,
        input: *const f32,
        weights: *const f32,
        epi: &DwEpilogue<'_>,
        out: &mut [f32],
    ) {
        let c = out.len();
        let lo = _mm256_set1_ps(epi.clamp.min);
        let hi = _mm256_set1_ps(epi.clamp.max);
        let full = mask_first(8);
        let op = out.as_mut_ptr();
        // SAFETY (whole body): offsets stay below `c` for input and output
        // and below round_up(c, 8) for weights, per the contract; the tail
        // uses masked loads/stores limited to `c`.
        unsafe {
            // (wrapping: a pixel without valid taps may shift past `input`;
            // every tap read is checked.)
            let input = input.wrapping_add(shift);
            let mut ch = 0;
            while ch + 32 <= c {
                let mut a = [_mm256_setzero_ps(); 4];
                for (&io, &wo) in taps.input.iter().zip(&taps.weight) {
                    let x = input.add(io + ch);
                    let w = weights.add(wo + ch);
                    for u in 0..4 {
                        a[u] = _mm256_fmadd_ps(_mm256_loadu_ps(x.add(8 * u)), _mm256_loadu_ps(w.add(8 * u)), a[u]);
                    }
                }
                for u in 0..4 {
                    _mm256_storeu_ps(op.add(ch + 8 * u), finish8(epi, a[u], ch + 8 * u, full, lo, hi));
                }
                ch += 32;
            }
            while ch + 8 <= c {
                let mut a = _mm256_setzero_ps();
                for (&io, &wo) in taps.input.iter().zip(&taps.weight) {
                    a = _mm256_fmadd_ps(_mm256_loadu_ps(input.add(io + ch)), _mm256_loadu_ps(weights.add(wo + ch)), a);
                }
                _mm256_storeu_ps(op.add(ch), finish8(epi, a, ch, full, lo, hi));
                ch += 8;
            }
            if ch < c {
                let mask = mask_first(c - ch);
                let mut a = _mm256_setzero_ps();
                for (&io, &wo) in taps.input.iter().zip(&taps.weight) {
                    let x = _mm256_maskload_ps(input.add(io + ch), mask);
                    a = _mm256_fmadd_ps(x, _mm256_loadu_ps(weights.add(wo + ch)), a);
                }
                _mm256_maskstore_ps(op.add(ch), mask, finish8(epi, a, ch, mask, lo, hi));
            }
        }
    }

    /// Four pixels sharing their weights (pixel `q` reads at `shift + q *
    /// step`): 16 channels × 4 pixels = 8 accumulators, each weight load
    /// feeding 4 FMAs; then 8 channels, then a masked tail.
    ///
    /// # Safety
    /// AVX2 + FMA available; for every tap and `q < 4`,
    /// `input[io + shift + q*step .. + c]` and `weights[wo .. wo + round_up(c, 8)]`
    /// in bounds (`c = out.len() / 4`); `bias`, if any, holds `c` values.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn dwconv_4px(
        taps: &Taps,
        shift: usize,
        step: usize,
        input: *const f32,
        weights: *const f32,
        epi: &DwEpilogue<'_>,
        out: &mut [f32],
    ) {
        let c = out.len() / 4;
        let lo = _mm256_set1_ps(epi.clamp.min);
        let hi = _mm256_set1_ps(epi.clamp.max);
        let full = mask_first(8);
        let op = out.as_mut_ptr();
        // SAFETY (whole body): per the contract, as in `dwconv_1px`, for
        // each of the 4 pixels.
        unsafe {
            // (wrapping: a pixel without valid taps may shift past `input`;
            // every tap read is checked.)
            let input = input.wrapping_add(shift);
            let mut ch = 0;
            while ch + 16 <= c {
                let mut a = [[_mm256_setzero_ps(); 2]; 4];
                for (&io, &wo) in taps.input.iter().zip(&taps.weight) {
                    let w0 = _mm256_loadu_ps(weights.add(wo + ch));
                    let w1 = _mm256_loadu_ps(weights.add(wo + ch + 8));
                    let x = input.add(io + ch);
                    for q in 0..4 {
                        let xq = x.add(q * step);
                        a[q][0] = _mm256_fmadd_ps(_mm256_loadu_ps(xq), w0, a[q][0]);
                        a[q][1] = _mm256_fmadd_ps(_mm256_loadu_ps(xq.add(8)), w1, a[q][1]);
                    }
                }
                for q in 0..4 {
                    _mm256_storeu_ps(op.add(q * c + ch), finish8(epi, a[q][0], ch, full, lo, hi));
                    _mm256_storeu_ps(op.add(q * c + ch + 8), finish8(epi, a[q][1], ch + 8, full, lo, hi));
                }
                ch += 16;
            }
            while ch < c {
                let n = (c - ch).min(8);
                let mask = mask_first(n);
                let mut a = [_mm256_setzero_ps(); 4];
                for (&io, &wo) in taps.input.iter().zip(&taps.weight) {
                    let w = _mm256_loadu_ps(weights.add(wo + ch));
                    let x = input.add(io + ch);
                    for q in 0..4 {
                        a[q] = _mm256_fmadd_ps(_mm256_maskload_ps(x.add(q * step), mask), w, a[q]);
                    }
                }
                for q in 0..4 {
                    _mm256_maskstore_ps(op.add(q * c + ch), mask, finish8(epi, a[q], ch, mask, lo, hi));
                }
                ch += n;
            }
        }
    }
}

#[cfg(target_arch = "aarch64")]
#[allow(unsafe_code)]
mod neon {
    use super::{DwEpilogue, Taps};
    use crate::optimized::gemm::neon::clamp4;
    use crate::optimized::isa::Neon;
    use std::arch::aarch64::*;

    /// Safe entry, as `f32_dwconv_avx2_fma`: `np` output pixels whose taps
    /// are `taps` shifted by `q * step` for pixel `q`; checks every offset
    /// the kernels will touch, then runs them.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn f32_dwconv_neon(
        token: Neon,
        taps: &Taps,
        np: usize,
        step: usize,
        input: &[f32],
        weights: &[f32],
        epi: &DwEpilogue<'_>,
        out: &mut [f32],
    ) {
        let c = taps.check(np, step, input, weights, epi, out, 4);
        let _ = token;
        let mut q = 0;
        while q + 4 <= np {
            // SAFETY: the token proves NEON; every tap's input range for
            // pixels `q .. q + 4` and its weight row were checked above.
            unsafe {
                dwconv_px::<4>(
                    taps,
                    q * step,
                    step,
                    input.as_ptr(),
                    weights.as_ptr(),
                    epi,
                    &mut out[q * c..(q + 4) * c],
                )
            }
            q += 4;
        }
        while q < np {
            // SAFETY: as above, for pixel `q`.
            unsafe {
                dwconv_px::<1>(
                    taps,
                    q * step,
                    step,
                    input.as_ptr(),
                    weights.as_ptr(),
                    epi,
                    &mut out[q * c..(q + 1) * c],
                )
            }
            q += 1;
        }
    }

    /// [`DwEpilogue::apply`] on the 4 channels from `ch`, all present.
    ///
    /// # Safety
    /// `bias[ch..ch + 4]` and `scale[ch..ch + 4]` readable (if present).
    #[inline(always)]
    unsafe fn finish4(
        epi: &DwEpilogue<'_>,
        a: float32x4_t,
        ch: usize,
        lo: float32x4_t,
        hi: float32x4_t,
    ) -> float32x4_t {
        // SAFETY: per the contract.
        unsafe {
            let v = match epi.scale {
                None => vaddq_f32(a, epi.bias.map_or(vdupq_n_f32(0.0), |b| vld1q_f32(b.as_ptr().add(ch)))),
                Some(s) => {
                    let v = vmulq_f32(vaddq_f32(a, vdupq_n_f32(0.0)), vld1q_f32(s.as_ptr().add(ch)));
                    epi.bias.map_or(v, |b| vaddq_f32(v, vld1q_f32(b.as_ptr().add(ch))))
                }
            };
            clamp4(v, lo, hi)
        }
    }

    /// `P` pixels (1 or 4) sharing their weights, pixel `q` reading at
    /// `shift + q * step`: 16 channels (4 registers per pixel) at a time,
    /// then 4, then the last 1-3 channels through a buffer, each weight
    /// load feeding `P` FMAs.
    ///
    /// # Safety
    /// For every tap and `q < P`, `input[io + shift + q*step .. + c]` and
    /// `weights[wo .. wo + round_up(c, 4)]` in bounds (`c = out.len() / P`);
    /// the epilogue's bias and scale, if any, hold `c` values.
    #[allow(clippy::too_many_arguments)]
    unsafe fn dwconv_px<const P: usize>(
        taps: &Taps,
        shift: usize,
        step: usize,
        input: *const f32,
        weights: *const f32,
        epi: &DwEpilogue<'_>,
        out: &mut [f32],
    ) {
        let c = out.len() / P;
        let lo = vdupq_n_f32(epi.clamp.min);
        let hi = vdupq_n_f32(epi.clamp.max);
        let op = out.as_mut_ptr();
        // SAFETY (whole body): input offsets stay below `c` past each
        // pixel's start, weight offsets below round_up(c, 4) and output
        // offsets below `P * c`, per the contract; the tail reads and
        // writes only its `n < 4` values, through buffers.
        unsafe {
            // (wrapping: a pixel without valid taps may shift past `input`;
            // every tap read is checked.)
            let input = input.wrapping_add(shift);
            let mut ch = 0;
            while ch + 16 <= c {
                let mut a = [[vdupq_n_f32(0.0); 4]; P];
                for (&io, &wo) in taps.input.iter().zip(&taps.weight) {
                    let w: [float32x4_t; 4] = std::array::from_fn(|u| vld1q_f32(weights.add(wo + ch + 4 * u)));
                    for (q, aq) in a.iter_mut().enumerate() {
                        let x = input.add(io + ch + q * step);
                        for (u, au) in aq.iter_mut().enumerate() {
                            *au = vfmaq_f32(*au, vld1q_f32(x.add(4 * u)), w[u]);
                        }
                    }
                }
                for (q, aq) in a.into_iter().enumerate() {
                    for (u, au) in aq.into_iter().enumerate() {
                        vst1q_f32(op.add(q * c + ch + 4 * u), finish4(epi, au, ch + 4 * u, lo, hi));
                    }
                }
                ch += 16;
            }
            while ch + 4 <= c {
                let mut a = [vdupq_n_f32(0.0); P];
                for (&io, &wo) in taps.input.iter().zip(&taps.weight) {
                    let w = vld1q_f32(weights.add(wo + ch));
                    for (q, aq) in a.iter_mut().enumerate() {
                        *aq = vfmaq_f32(*aq, vld1q_f32(input.add(io + ch + q * step)), w);
                    }
                }
                for (q, aq) in a.into_iter().enumerate() {
                    vst1q_f32(op.add(q * c + ch), finish4(epi, aq, ch, lo, hi));
                }
                ch += 4;
            }
            if ch < c {
                let n = c - ch;
                let mut a = [vdupq_n_f32(0.0); P];
                for (&io, &wo) in taps.input.iter().zip(&taps.weight) {
                    let w = vld1q_f32(weights.add(wo + ch));
                    for (q, aq) in a.iter_mut().enumerate() {
                        let mut x = [0.0f32; 4];
                        std::ptr::copy_nonoverlapping(input.add(io + ch + q * step), x.as_mut_ptr(), n);
                        *aq = vfmaq_f32(*aq, vld1q_f32(x.as_ptr()), w);
                    }
                }
                for (q, aq) in a.into_iter().enumerate() {
                    let mut v = [0.0f32; 4];
                    vst1q_f32(v.as_mut_ptr(), aq);
                    for (j, &vj) in v[..n].iter().enumerate() {
                        *op.add(q * c + ch + j) = epi.apply(vj, ch + j);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimized::isa::available_levels;
    use crate::optimized::testutil::{assert_close, gflops, Rng};
    use crate::reference::conv::depthwise_conv2d_f32;
    use crate::reference::padding::{Padding, Padding2d};

    fn abs(v: &[f32]) -> Vec<f32> {
        v.iter().map(|x| x.abs()).collect()
    }

    /// The vector epilogues clamp like `ClampF32::apply`, signed zeros
    /// included: a zero sum times a negative scale is -0.0, which a ReLU
    /// keeps (`fmax` would make it +0.0). Every level gives the portable
    /// kernel's bits, in the vector blocks and the tail.
    #[test]
    fn epilogue_keeps_negative_zero_like_the_portable_kernel() {
        let (in_c, kh, kw) = (23, 3, 3);
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
        let (in_shape, filter_shape, out_shape) = ([1, 5, 6, in_c], [1, kh, kw, in_c], [1, 5, 6, in_c]);
        let mut rng = Rng::new(0x5160);
        let filter = rng.vec(kh * kw * in_c);
        // A zero input: every sum is +0.0 (other values may round
        // differently with and without FMA).
        let input = vec![0.0f32; 5 * 6 * in_c];
        let scale: Vec<f32> = (0..in_c).map(|c| if c % 3 == 0 { 0.25 } else { -0.5 }).collect();
        let row = |b: usize, iy: usize| (b * 5 + iy) * 6 * in_c;
        let mut results = Vec::new();
        for &isa in &available_levels() {
            let plan = DepthwiseF32Plan::new(isa, &p, in_shape, &filter, filter_shape, out_shape);
            for clamp in [ClampF32::RELU, ClampF32::RELU6] {
                let epi = DwEpilogue { scale: Some(&scale), bias: None, clamp };
                let mut out = vec![f32::NAN; 5 * 6 * in_c];
                plan.run_rows_from(&input, &row, &epi, &mut out, 0);
                results.push((isa, out.iter().map(|v| v.to_bits()).collect::<Vec<_>>()));
            }
        }
        let portable = &results[..2];
        assert!(portable[0].1.contains(&(-0.0f32).to_bits()), "no -0.0 drawn");
        for (k, (isa, bits)) in results.iter().enumerate() {
            assert_eq!(bits, &portable[k % 2].1, "{isa:?}");
        }
    }

    #[test]
    fn depthwise_matches_reference_on_random_shapes() {
        let mut rng = Rng::new(0xd3);
        let mut fast = 0;
        for i in 0..200usize {
            let dm = if i % 7 == 3 { rng.range(2, 4) } else { 1 };
            // Some wide enough for the AVX-512 kernel's channel chunks and
            // its 128-channel single-pixel blocks.
            let in_c = match i % 8 {
                0 | 4 => rng.range(30, 75),
                1 => rng.range(120, 300),
                _ => rng.range(1, 20),
            };
            let out_c = in_c * dm;
            let (kh, kw) = (rng.range(1, 6), rng.range(1, 6));
            let (sh, sw) = (rng.range(1, 3), rng.range(1, 3));
            let (dh, dw) = (rng.range(1, 3), rng.range(1, 3));
            let padding = if rng.range(0, 2) == 0 { Padding::Valid } else { Padding::Same };
            let (in_h, in_w, batches) = (rng.range(1, 12), rng.range(1, 12), rng.range(1, 3));
            let win = Padding2d::compute(padding, in_h, in_w, kh, kw, sh, sw, dh, dw);
            let p = DepthwiseParams {
                stride_h: sh,
                stride_w: sw,
                dilation_h: dh,
                dilation_w: dw,
                pad_top: win.padding.top,
                pad_left: win.padding.left,
                depth_multiplier: dm,
                clamp: if i.is_multiple_of(2) { ClampF32::RELU6 } else { ClampF32::NONE },
            };
            let in_shape = [batches, in_h, in_w, in_c];
            let filter_shape = [1, kh, kw, out_c];
            let out_shape = [batches, win.out_h, win.out_w, out_c];
            let input = rng.vec(in_shape.iter().product());
            let filter = rng.vec(filter_shape.iter().product());
            let bias = if i.is_multiple_of(3) { None } else { Some(rng.vec(out_c)) };
            let out_len: usize = out_shape.iter().product();
            let mut want = vec![0.0; out_len];
            depthwise_conv2d_f32(&p, &input, in_shape, &filter, filter_shape, bias.as_deref(), &mut want, out_shape);
            let mut scale = vec![0.0; out_len];
            let p_abs = DepthwiseParams { clamp: ClampF32::NONE, ..p };
            let bias_abs = bias.as_deref().map(abs);
            depthwise_conv2d_f32(
                &p_abs,
                &abs(&input),
                in_shape,
                &abs(&filter),
                filter_shape,
                bias_abs.as_deref(),
                &mut scale,
                out_shape,
            );
            // The SIMD levels' bits (all fused multiply-adds in tap order).
            let mut simd_bits: Option<Vec<u32>> = None;
            for &isa in &available_levels() {
                let plan = DepthwiseF32Plan::new(isa, &p, in_shape, &filter, filter_shape, out_shape);
                assert!(plan.supported());
                fast += plan.fast() as usize;
                let ctx = format!("case {i} {isa:?} in {in_shape:?} filter {filter_shape:?} {p:?}");
                let mut got = vec![f32::NAN; out_len];
                plan.run(&input, bias.as_deref(), &mut got);
                assert_close(&got, &want, &scale, 1e-5, &ctx);
                if isa != IsaLevel::Scalar && dm == 1 {
                    let bits: Vec<u32> = got.iter().map(|v| v.to_bits()).collect();
                    match &simd_bits {
                        Some(first) => assert_eq!(&bits, first, "{ctx}: bits differ from the first SIMD level"),
                        None => simd_bits = Some(bits),
                    }
                }
                if plan.rows() > 1 {
                    let chunk = rng.range(1, plan.rows());
                    let mut got = vec![f32::NAN; out_len];
                    for (ci, rows) in got.chunks_mut(chunk * plan.row_len()).enumerate() {
                        plan.run_rows(&input, bias.as_deref(), rows, ci * chunk);
                    }
                    assert_close(&got, &want, &scale, 1e-5, &format!("{ctx} chunk {chunk}"));
                }
                // The image rows stored backwards with a NaN row between
                // each: any read outside the mapped rows poisons the output.
                let row_len = in_w * in_c;
                let image_row = |b: usize, iy: usize| ((batches * in_h - 1 - (b * in_h + iy)) * 2 + 1) * row_len;
                let mut moved = vec![f32::NAN; (batches * in_h * 2 + 1) * row_len];
                for b in 0..batches {
                    for iy in 0..in_h {
                        let src = &input[(b * in_h + iy) * row_len..][..row_len];
                        moved[image_row(b, iy)..][..row_len].copy_from_slice(src);
                    }
                }
                let mut got = vec![f32::NAN; out_len];
                plan.run_rows_from(&moved, &image_row, &plan.epilogue(bias.as_deref()), &mut got, 0);
                assert_close(&got, &want, &scale, 1e-5, &format!("{ctx} rows moved"));
            }
        }
        assert!(fast > 0);
    }

    /// `cargo test --release -p ferrolite-kernels --lib optimized::depthwise -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn bench_depthwise() {
        let mut rng = Rng::new(5);
        let p = DepthwiseParams {
            stride_h: 1,
            stride_w: 1,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: 1,
            pad_left: 1,
            depth_multiplier: 1,
            clamp: ClampF32::RELU6,
        };
        let (in_shape, filter_shape, out_shape) = ([1, 112, 112, 64], [1, 3, 3, 64], [1, 112, 112, 64]);
        let input = rng.vec(in_shape.iter().product());
        let filter = rng.vec(filter_shape.iter().product());
        let bias = rng.vec(64);
        let mut out = vec![0.0; out_shape.iter().product()];
        let flops = 2.0 * 9.0 * out.len() as f64;
        let name = "depthwise 3x3 112x112x64";
        for &isa in &available_levels() {
            let plan = DepthwiseF32Plan::new(isa, &p, in_shape, &filter, filter_shape, out_shape);
            let g = gflops(flops, || plan.run(&input, Some(&bias), &mut out));
            println!("{name:28} {:>9}: {g:6.1} GFLOP/s", isa.name());
        }
        let g = gflops(flops, || {
            depthwise_conv2d_f32(&p, &input, in_shape, &filter, filter_shape, Some(&bias), &mut out, out_shape)
        });
        println!("{name:28} reference: {g:6.1} GFLOP/s");
    }
}
