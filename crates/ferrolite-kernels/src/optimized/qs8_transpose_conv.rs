//! int8 TRANSPOSE_CONV as a GEMM and a scatter, bit-exact with
//! `reference::quantized::transpose_conv2d_i8`.
//!
//! The reference scatters one product at a time: for every input value,
//! every tap and every output channel a multiply-add into the output-sized
//! int32 scratch (a 28x28x64 -> 56x56x32 layer took 109x LiteRT's time).
//! The same terms come out of one GEMM: each input pixel's
//! `x + input_offset` (widened to i16) against the filter reordered to
//! `[fy][fx][oc]` rows of depth `in_c`, packed once at plan time, gives
//! every (tap, channel) contribution of that pixel side by side; each
//! tap's `out_c` sums are then added to the output pixel it reaches.
//! Integer sums do not depend on their order (they wrap like the
//! reference's), so the scratch holds the reference's values exactly, and
//! each pixel is finished by the convolutions' vector requantisation
//! (the reference's steps, eight or sixteen channels at a time).

use crate::optimized::isa::IsaLevel;
use crate::optimized::qs8::{gemm_i32, PackedQs8, PixelRequant};
use crate::reference::conv::TransposeConvParams;
use crate::reference::quantized::conv::ConvQuantParams;

/// A prepared int8 TRANSPOSE_CONV: shapes as the reference's, the filter
/// (`[out_c, kh, kw, in_c]`) packed.
#[derive(Clone, Debug)]
pub struct Qs8TransposeConvPlan {
    isa: IsaLevel,
    p: TransposeConvParams,
    q: ConvQuantParams,
    in_shape: [usize; 4],
    filter_shape: [usize; 4],
    out_shape: [usize; 4],
    /// Columns `(fy * kw + fx) * out_c + oc`, depth `in_c`.
    packed: PackedQs8,
    requant: PixelRequant,
}

/// Buffers one run reuses.
#[derive(Debug, Default)]
pub struct Qs8TransposeConvScratch {
    /// Input pixels as `x + input_offset`, `2 * k2` values per row.
    rows: Vec<i16>,
    /// The GEMM's sums: a row of `16 * panels` per input pixel.
    cols: Vec<i32>,
    /// The output-sized accumulators.
    acc: Vec<i32>,
}

impl Qs8TransposeConvPlan {
    /// `None` where the shapes do not fit together (the caller then runs
    /// the reference, which reports nothing either: the op checks them).
    pub fn new(
        isa: IsaLevel,
        p: &TransposeConvParams,
        q: &ConvQuantParams,
        in_shape: [usize; 4],
        filter: &[i8],
        filter_shape: [usize; 4],
        out_shape: [usize; 4],
    ) -> Option<Qs8TransposeConvPlan> {
        let [batches, _, _, in_c] = in_shape;
        let [out_c, kh, kw, f_in] = filter_shape;
        let ok = f_in == in_c
            && out_shape[0] == batches
            && out_shape[3] == out_c
            && filter.len() >= out_c * kh * kw * in_c
            && (-128..=127).contains(&-q.input_offset);
        if !ok {
            return None;
        }
        let mut reordered = Vec::with_capacity(kh * kw * out_c * in_c);
        for t in 0..kh * kw {
            for oc in 0..out_c {
                reordered.extend_from_slice(&filter[(oc * kh * kw + t) * in_c..][..in_c]);
            }
        }
        let packed = PackedQs8::pack(&reordered, kh * kw * out_c, in_c, 0);
        Some(Qs8TransposeConvPlan {
            isa: isa.clamp_to_cpu(),
            p: *p,
            q: q.clone(),
            in_shape,
            filter_shape,
            out_shape,
            packed,
            requant: PixelRequant::new(q, out_c),
        })
    }

    /// The layer on `input` into `output` (both the planned sizes).
    pub fn run(&self, input: &[i8], bias: Option<&[i32]>, output: &mut [i8], s: &mut Qs8TransposeConvScratch) {
        let [batches, in_h, in_w, in_c] = self.in_shape;
        let [out_c, kh, kw, _] = self.filter_shape;
        let [_, out_h, out_w, _] = self.out_shape;
        let (pixels, out_len) = (batches * in_h * in_w, batches * out_h * out_w * out_c);
        assert!(input.len() >= pixels * in_c && output.len() >= out_len, "transpose conv buffers too short");
        if let Some(b) = bias {
            assert!(b.len() >= out_c, "bias too short");
        }
        let lda = 2 * self.packed.k2;
        let ldc = 16 * self.packed.panels();
        s.rows.clear();
        s.rows.resize(pixels * lda, 0);
        for (row, x) in s.rows.chunks_exact_mut(lda.max(1)).zip(input.chunks_exact(in_c.max(1))) {
            for (r, &v) in row.iter_mut().zip(x) {
                *r = (v as i32 + self.q.input_offset) as i16;
            }
        }
        s.cols.clear();
        s.cols.resize(pixels * ldc, 0);
        if lda > 0 {
            gemm_i32(self.isa, pixels, &s.rows, lda, &self.packed, &mut s.cols, ldc);
        }
        s.acc.clear();
        s.acc.resize(out_len, 0);
        let p = &self.p;
        for (pix, sums) in s.cols.chunks_exact(ldc.max(1)).enumerate().take(pixels) {
            let (b, iy, ix) = (pix / (in_h * in_w), pix / in_w % in_h, pix % in_w);
            for fy in 0..kh {
                let Some(oy) = (iy * p.stride_h + fy).checked_sub(p.pad_top).filter(|&v| v < out_h) else {
                    continue;
                };
                for fx in 0..kw {
                    let Some(ox) = (ix * p.stride_w + fx).checked_sub(p.pad_left).filter(|&v| v < out_w) else {
                        continue;
                    };
                    let dst = &mut s.acc[((b * out_h + oy) * out_w + ox) * out_c..][..out_c];
                    let src = &sums[(fy * kw + fx) * out_c..][..out_c];
                    for (d, &v) in dst.iter_mut().zip(src) {
                        *d = d.wrapping_add(v);
                    }
                }
            }
        }
        if out_c > 0 {
            for (o, acc) in output[..out_len].chunks_exact_mut(out_c).zip(s.acc.chunks_exact(out_c)) {
                self.requant.pixel(self.isa, acc, bias, o);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::ClampF32;
    use crate::optimized::isa::available_levels;
    use crate::optimized::testutil::Rng;
    use crate::quant::FusedActivation;
    use crate::reference::quantized::transpose_conv2d_i8;

    /// Random layers (strides 1-3, paddings, filters larger and smaller
    /// than the stride, odd channel counts) against the reference.
    #[test]
    fn matches_reference_exactly() {
        let mut rng = Rng::new(0x7c08);
        let mut ran = 0;
        for case in 0..120 {
            let (in_h, in_w, in_c, out_c) = (rng.range(1, 7), rng.range(1, 7), rng.range(1, 40), rng.range(1, 37));
            let (kh, kw) = (rng.range(1, 5), rng.range(1, 5));
            let (sh, sw) = (rng.range(1, 4), rng.range(1, 4));
            let (pt, pl) = (rng.range(0, kh), rng.range(0, kw));
            let batches = rng.range(1, 3);
            let out_h = ((in_h - 1) * sh + kh).saturating_sub(pt + rng.range(0, 2)).max(1);
            let out_w = ((in_w - 1) * sw + kw).saturating_sub(pl + rng.range(0, 2)).max(1);
            let p =
                TransposeConvParams { stride_h: sh, stride_w: sw, pad_top: pt, pad_left: pl, clamp: ClampF32::NONE };
            let scales: Vec<f32> = (0..out_c).map(|_| 0.001 + (rng.f32() + 1.0) * 0.01).collect();
            let act = rng.pick(&[FusedActivation::None, FusedActivation::Relu6]);
            let zp_in = rng.range(0, 256) as i32 - 128;
            let Some(q) = ConvQuantParams::per_channel(
                0.02,
                zp_in,
                &scales,
                0.05,
                rng.range(0, 256) as i32 - 128,
                act,
                -128,
                127,
            ) else {
                continue;
            };
            let in_shape = [batches, in_h, in_w, in_c];
            let filter_shape = [out_c, kh, kw, in_c];
            let out_shape = [batches, out_h, out_w, out_c];
            let x: Vec<i8> = (0..batches * in_h * in_w * in_c).map(|_| rng.next_u64() as i8).collect();
            let w: Vec<i8> = (0..out_c * kh * kw * in_c).map(|_| rng.next_u64() as i8).collect();
            let bias: Vec<i32> = (0..out_c).map(|_| rng.range(0, 20001) as i32 - 10000).collect();
            let bias = (case % 3 != 0).then_some(&bias[..]);
            let mut want = vec![0i8; batches * out_h * out_w * out_c];
            transpose_conv2d_i8(&p, &q, &x, in_shape, &w, filter_shape, bias, &mut want, out_shape, &mut Vec::new());
            let mut scratch = Qs8TransposeConvScratch::default();
            ran += 1;
            for &isa in &available_levels() {
                let plan = Qs8TransposeConvPlan::new(isa, &p, &q, in_shape, &w, filter_shape, out_shape).unwrap();
                let mut got = vec![0i8; want.len()];
                plan.run(&x, bias, &mut got, &mut scratch);
                assert_eq!(got, want, "case {case} {isa:?} in {in_shape:?} filter {filter_shape:?} out {out_shape:?}");
            }
        }
        assert!(ran >= 100, "only {ran} layers had valid parameters");
    }
}
