//! Float TRANSPOSE_CONV as a GEMM and a scatter of its rows.
//!
//! Every input pixel contributes `x · W[fy][fx]` (a vector of `out_c`
//! values) to output pixel `(iy·sh + fy - pad_top, ix·sw + fx - pad_left)`
//! for each filter tap. So one GEMM of the input pixels (`m` rows of
//! `in_c`) against the filter reordered to `[fy][fx][oc]` rows of `in_c`
//! gives, per input pixel, all its contributions side by side (`kh·kw·out_c`
//! values); each tap's `out_c` run is then added to its output pixel. The
//! reference scatters value by value (`in_c·kh·kw·out_c` scalar updates
//! per pixel, the filter read with a stride); here the multiply-adds run in
//! the packed GEMM and the scatter is `kh·kw` contiguous vector adds per
//! pixel.
//!
//! Work is split by output rows: [`TransposeConvF32Plan::run_rows`] fills
//! any band of output rows from the input rows that reach it, a few rows
//! of the GEMM at a time so the scratch stays in cache. Bands split between
//! threads recompute the `ceil(kh / sh) - 1` input rows they share.

use crate::activation::ClampF32;
use crate::optimized::gemm::{gemm_f32, PackedWeightsF32};
use crate::optimized::isa::IsaLevel;
use crate::reference::conv::TransposeConvParams;

/// Target size of one block of GEMM output (contributions) in floats.
const BLOCK_FLOATS: usize = 64 * 1024;

/// A TRANSPOSE_CONV with constant float weights, prepared once: the
/// filter reordered and packed for the GEMM.
#[derive(Clone, Debug)]
pub struct TransposeConvF32Plan {
    isa: IsaLevel,
    params: TransposeConvParams,
    in_shape: [usize; 4],
    /// Filter height and width.
    kh: usize,
    kw: usize,
    out_shape: [usize; 4],
    /// `kh·kw·out_c` rows (tap-major, channel-minor) of `in_c` values.
    packed: PackedWeightsF32,
}

impl TransposeConvF32Plan {
    /// `filter` is TFLite's `[out_c, kh, kw, in_c]`; the shapes must agree
    /// (`filter_shape[3] == in_shape[3]`, `filter_shape[0] == out_shape[3]`,
    /// same batch).
    pub fn new(
        isa: IsaLevel,
        params: &TransposeConvParams,
        in_shape: [usize; 4],
        filter: &[f32],
        filter_shape: [usize; 4],
        out_shape: [usize; 4],
    ) -> TransposeConvF32Plan {
        let [out_c, kh, kw, in_c] = filter_shape;
        assert!(in_shape[3] == in_c && out_shape[3] == out_c && in_shape[0] == out_shape[0], "shapes disagree");
        assert!(filter.len() >= out_c * kh * kw * in_c, "filter: {} values", filter.len());
        let mut reordered = Vec::with_capacity(out_c * kh * kw * in_c);
        for tap in 0..kh * kw {
            for oc in 0..out_c {
                let at = (oc * kh * kw + tap) * in_c;
                reordered.extend_from_slice(&filter[at..at + in_c]);
            }
        }
        let packed = PackedWeightsF32::pack(&reordered, kh * kw * out_c, in_c);
        TransposeConvF32Plan { isa, params: *params, in_shape, kh, kw, out_shape, packed }
    }

    /// Values in one output row (`out_w · out_c`): the unit of
    /// [`Self::run_rows`].
    pub fn row_len(&self) -> usize {
        self.out_shape[2] * self.out_shape[3]
    }

    /// The whole output.
    pub fn run(&self, input: &[f32], bias: Option<&[f32]>, output: &mut [f32], scratch: &mut Vec<f32>) {
        let len = self.out_shape.iter().product();
        self.run_rows(input, bias, &mut output[..len], 0, scratch);
    }

    /// Output rows `first_row ..` (rows counted over batches: row `r` is
    /// batch `r / out_h`, output row `r % out_h`), as many as `rows` holds
    /// whole.
    pub fn run_rows(
        &self,
        input: &[f32],
        bias: Option<&[f32]>,
        rows: &mut [f32],
        first_row: usize,
        scratch: &mut Vec<f32>,
    ) {
        let [batches, in_h, in_w, in_c] = self.in_shape;
        let [_, out_h, _, out_c] = self.out_shape;
        let row_len = self.row_len();
        assert!(input.len() >= batches * in_h * in_w * in_c, "input: {} values", input.len());
        if let Some(b) = bias {
            assert!(b.len() >= out_c, "bias: {} values for {out_c} channels", b.len());
        }
        if row_len == 0 {
            return;
        }
        let count = rows.len() / row_len;
        assert!(first_row + count <= batches * out_h, "rows {first_row}..+{count} past the output");
        let rows = &mut rows[..count * row_len];
        match bias {
            Some(b) => rows.chunks_exact_mut(out_c).for_each(|px| px.copy_from_slice(&b[..out_c])),
            None => rows.fill(0.0),
        }
        // One batch's part of the band at a time.
        let mut r = first_row;
        let mut rest = rows;
        while !rest.is_empty() {
            let (b, oy0) = (r / out_h, r % out_h);
            let n = (out_h - oy0).min(rest.len() / row_len);
            let (band, tail) = std::mem::take(&mut rest).split_at_mut(n * row_len);
            let image = &input[b * in_h * in_w * in_c..(b + 1) * in_h * in_w * in_c];
            self.accumulate_band(image, band, oy0, scratch);
            if self.params.clamp != ClampF32::NONE {
                band.iter_mut().for_each(|v| *v = self.params.clamp.apply(*v));
            }
            rest = tail;
            r += n;
        }
    }

    /// Add every contribution of `image` (one batch's input) to `band`,
    /// output rows `oy0 .. oy0 + band.len() / row_len` of that batch.
    fn accumulate_band(&self, image: &[f32], band: &mut [f32], oy0: usize, scratch: &mut Vec<f32>) {
        let [_, in_h, in_w, in_c] = self.in_shape;
        let [_, _, out_w, out_c] = self.out_shape;
        let (kh, kw) = (self.kh, self.kw);
        let p = &self.params;
        let row_len = out_w * out_c;
        let oy1 = oy0 + band.len() / row_len;
        if kh == 0 || kw == 0 {
            // An empty filter contributes nothing: the band stays the bias.
            return;
        }
        // Input rows reaching [oy0, oy1): iy·sh + fy - pad_top in range for
        // some fy < kh.
        let lowest = (oy0 + p.pad_top).saturating_sub(kh - 1);
        let iy0 = lowest.div_ceil(p.stride_h);
        let iy1 = ((oy1 - 1 + p.pad_top) / p.stride_h + 1).min(in_h);
        if iy0 >= iy1 || in_w == 0 {
            return;
        }
        let n = kh * kw * out_c;
        let block_rows = (BLOCK_FLOATS / (in_w * n).max(1)).clamp(1, iy1 - iy0);
        scratch.resize(block_rows * in_w * n, 0.0);
        let mut iy = iy0;
        while iy < iy1 {
            let rows = block_rows.min(iy1 - iy);
            let m = rows * in_w;
            let a = &image[iy * in_w * in_c..(iy + rows) * in_w * in_c];
            let col = &mut scratch[..m * n];
            gemm_f32(self.isa, m, in_c, a, in_c, &self.packed, None, ClampF32::NONE, col, n);
            for (dy, pixels) in col.chunks_exact(in_w * n).enumerate() {
                let y = iy + dy;
                for fy in 0..kh {
                    let Some(oy) = (y * p.stride_h + fy).checked_sub(p.pad_top) else { continue };
                    if oy < oy0 || oy >= oy1 {
                        continue;
                    }
                    let out_row = &mut band[(oy - oy0) * row_len..(oy - oy0 + 1) * row_len];
                    for (ix, pixel) in pixels.chunks_exact(n).enumerate() {
                        for fx in 0..kw {
                            let Some(ox) = (ix * p.stride_w + fx).checked_sub(p.pad_left) else { continue };
                            if ox >= out_w {
                                continue;
                            }
                            let tap = (fy * kw + fx) * out_c;
                            add_to(&mut out_row[ox * out_c..(ox + 1) * out_c], &pixel[tap..tap + out_c]);
                        }
                    }
                }
            }
            iy += rows;
        }
    }
}

/// `dst += src`, element-wise (vectorised by the compiler).
#[inline]
fn add_to(dst: &mut [f32], src: &[f32]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d += s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimized::isa;
    use crate::optimized::testutil::{assert_close, Rng};
    use crate::reference::conv::transpose_conv2d_f32;
    use crate::reference::padding::{Padding, Padding2d};

    /// Random shapes, strides, paddings and activations against the
    /// reference, at every ISA level this CPU has, whole and in random
    /// bands of output rows.
    #[test]
    fn matches_reference_on_random_shapes() {
        let mut rng = Rng::new(0x7c0f);
        for case in 0..120 {
            let batches = rng.range(1, 3);
            let (in_h, in_w) = (rng.range(1, 7), rng.range(1, 7));
            let (in_c, out_c) = (rng.range(1, 20), rng.range(1, 37));
            let (kh, kw) = (rng.range(0, 5), rng.range(0, 5));
            let (sh, sw) = (rng.range(1, 4), rng.range(1, 4));
            let padding = rng.pick(&[Padding::Same, Padding::Valid]);
            let (out_h, out_w) = match padding {
                Padding::Same => (in_h * sh, in_w * sw),
                Padding::Valid => ((in_h - 1) * sh + kh, (in_w - 1) * sw + kw),
            };
            let pad = Padding2d::for_transpose_conv(padding, out_h, out_w, kh, kw, sh, sw);
            let clamp = rng.pick(&[ClampF32::NONE, ClampF32::RELU, ClampF32::RELU6]);
            let p = TransposeConvParams { stride_h: sh, stride_w: sw, pad_top: pad.top, pad_left: pad.left, clamp };
            let in_shape = [batches, in_h, in_w, in_c];
            let filter_shape = [out_c, kh, kw, in_c];
            let out_shape = [batches, out_h, out_w, out_c];
            let x = rng.vec(in_shape.iter().product());
            let w = rng.vec(filter_shape.iter().product());
            let bias = (case % 3 != 0).then(|| rng.vec(out_c));
            let len: usize = out_shape.iter().product();
            let mut want = vec![0.0; len];
            transpose_conv2d_f32(&p, &x, in_shape, &w, filter_shape, bias.as_deref(), &mut want, out_shape);
            // Scale: the same sums over absolute values, unclamped.
            let abs = |v: &[f32]| v.iter().map(|a| a.abs()).collect::<Vec<_>>();
            let p_abs = TransposeConvParams { clamp: ClampF32::NONE, ..p };
            let mut scale = vec![0.0; len];
            let abs_bias = bias.as_deref().map(abs);
            transpose_conv2d_f32(
                &p_abs,
                &abs(&x),
                in_shape,
                &abs(&w),
                filter_shape,
                abs_bias.as_deref(),
                &mut scale,
                out_shape,
            );
            for level in isa::available_levels() {
                let plan = TransposeConvF32Plan::new(level, &p, in_shape, &w, filter_shape, out_shape);
                let mut got = vec![f32::NAN; len];
                let mut scratch = Vec::new();
                plan.run(&x, bias.as_deref(), &mut got, &mut scratch);
                let ctx =
                    format!("case {case} {level:?} in {in_shape:?} filter {filter_shape:?} s{sh}x{sw} {padding:?}");
                assert_close(&got, &want, &scale, 1e-5, &ctx);
                // Random bands of rows, as the threads run them.
                let mut banded = vec![f32::NAN; len];
                let total = batches * out_h;
                let mut r = 0;
                while r < total {
                    let n = rng.range(1, total - r + 1);
                    plan.run_rows(
                        &x,
                        bias.as_deref(),
                        &mut banded[r * plan.row_len()..(r + n) * plan.row_len()],
                        r,
                        &mut scratch,
                    );
                    r += n;
                }
                assert_close(&banded, &want, &scale, 1e-5, &format!("{ctx} banded"));
            }
        }
    }
}
