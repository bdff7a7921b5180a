//! Float RESIZE_BILINEAR by output rows, channels in vector lanes.
//!
//! The reference recomputes each pixel's coordinates inside its channel
//! loop's setup and indexes the input four times per value, which keeps
//! the compiler from vectorising it. Here the column coordinates are
//! computed once per call, each output pixel blends four contiguous input
//! pixels channel-wise as plain slices (vectorised; eight lanes on AVX2),
//! and output rows can be split between threads. The arithmetic is the
//! reference's, in its order and without fused multiply-adds: the same
//! bits.

#[cfg(target_arch = "x86_64")]
use crate::optimized::isa::Avx2Fma;
use crate::optimized::isa::IsaLevel;
use crate::reference::resize::{interpolation_values, scale};

/// A float RESIZE_BILINEAR prepared once: the shapes and the per-column
/// coordinates shared by every row and every invoke.
#[derive(Clone, Debug)]
pub struct ResizeBilinearF32Plan {
    isa: IsaLevel,
    in_shape: [usize; 4],
    out_shape: [usize; 4],
    h_scale: f32,
    half_pixel_centers: bool,
    /// Per output column: `dx` and the input columns `x0`, `x1`.
    columns: Vec<(f32, usize, usize)>,
}

impl ResizeBilinearF32Plan {
    /// Shapes and flags as [`crate::reference::resize::resize_bilinear_f32`].
    pub fn new(
        isa: IsaLevel,
        in_shape: [usize; 4],
        out_shape: [usize; 4],
        align_corners: bool,
        half_pixel_centers: bool,
    ) -> ResizeBilinearF32Plan {
        let (in_w, out_w) = (in_shape[2], out_shape[2]);
        let w_scale = scale(in_w, out_w, align_corners);
        let columns = (0..out_w)
            .map(|x| {
                let (in_x, x0, x1) = interpolation_values(x, w_scale, half_pixel_centers, in_w);
                (in_x - x0 as f32, x0, x1)
            })
            .collect();
        let h_scale = scale(in_shape[1], out_shape[1], align_corners);
        ResizeBilinearF32Plan { isa, in_shape, out_shape, h_scale, half_pixel_centers, columns }
    }

    /// Values in one output row (`out_w · channels`): the unit of
    /// [`Self::run_rows`].
    pub fn row_len(&self) -> usize {
        self.out_shape[2] * self.out_shape[3]
    }

    /// Output rows `first_row ..` (rows counted over batches: row `r` is
    /// batch `r / out_h`, row `r % out_h`), as many whole rows as `rows`
    /// holds.
    pub fn run_rows(&self, input: &[f32], rows: &mut [f32], first_row: usize) {
        #[cfg(target_arch = "x86_64")]
        if let Some(t) = Avx2Fma::new(self.isa) {
            return avx2::rows(t, self, input, rows, first_row);
        }
        // Read on every target: only x86-64 has a vector build today.
        let _ = self.isa;
        self.rows(input, rows, first_row)
    }

    #[inline(always)]
    fn rows(&self, input: &[f32], rows: &mut [f32], first_row: usize) {
        let [batches, in_h, in_w, depth] = self.in_shape;
        let [_, out_h, out_w, _] = self.out_shape;
        let row_len = out_w * depth;
        if row_len == 0 || in_h == 0 || in_w == 0 {
            return;
        }
        assert!(input.len() >= batches * in_h * in_w * depth, "input: {} values", input.len());
        let count = rows.len() / row_len;
        assert!(first_row + count <= batches * out_h, "rows {first_row}..+{count} past the output");
        for (r, out_row) in rows.chunks_exact_mut(row_len).enumerate() {
            let (b, y) = ((first_row + r) / out_h, (first_row + r) % out_h);
            let (in_y, y0, y1) = interpolation_values(y, self.h_scale, self.half_pixel_centers, in_h);
            let dy = in_y - y0 as f32;
            let row0 = &input[(b * in_h + y0) * in_w * depth..][..in_w * depth];
            let row1 = &input[(b * in_h + y1) * in_w * depth..][..in_w * depth];
            for (out, &(dx, x0, x1)) in out_row.chunks_exact_mut(depth).zip(&self.columns) {
                let a = &row0[x0 * depth..][..depth];
                let bb = &row1[x0 * depth..][..depth];
                let c = &row0[x1 * depth..][..depth];
                let d = &row1[x1 * depth..][..depth];
                blend(out, a, bb, c, d, dy, dx);
            }
        }
    }
}

/// `a (1-dy)(1-dx) + b dy (1-dx) + c (1-dy) dx + d dy dx`, left to right,
/// channel by channel (the reference's expression).
#[inline(always)]
fn blend(out: &mut [f32], a: &[f32], b: &[f32], c: &[f32], d: &[f32], dy: f32, dx: f32) {
    let n = out.len();
    let (a, b, c, d) = (&a[..n], &b[..n], &c[..n], &d[..n]);
    for i in 0..n {
        out[i] = a[i] * (1.0 - dy) * (1.0 - dx) + b[i] * dy * (1.0 - dx) + c[i] * (1.0 - dy) * dx + d[i] * dy * dx;
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
    use super::*;

    pub(super) fn rows(t: Avx2Fma, p: &ResizeBilinearF32Plan, input: &[f32], rows: &mut [f32], first_row: usize) {
        let _ = t;
        // SAFETY: the token proves AVX2; the callee is safe code.
        unsafe { rows_avx2(p, input, rows, first_row) }
    }

    /// [`ResizeBilinearF32Plan::run_rows`]' body compiled for AVX2 (no FMA: the reference rounds each
    /// product).
    ///
    /// # Safety
    /// AVX2 available.
    #[target_feature(enable = "avx2")]
    unsafe fn rows_avx2(p: &ResizeBilinearF32Plan, input: &[f32], rows: &mut [f32], first_row: usize) {
        p.rows(input, rows, first_row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimized::isa::available_levels;
    use crate::optimized::testutil::Rng;
    use crate::reference::resize::resize_bilinear_f32;

    /// Random shapes (up- and down-sampling, odd channel counts), every
    /// flag combination TFLite accepts, whole and in random row bands, at
    /// every level: the reference's bits.
    #[test]
    fn matches_reference_bit_for_bit() {
        let mut rng = Rng::new(0x2e5);
        for case in 0..200 {
            let batches = rng.range(1, 3);
            let (in_h, in_w) = (rng.range(1, 9), rng.range(1, 9));
            let (out_h, out_w) = (rng.range(1, 19), rng.range(1, 19));
            let depth = rng.range(1, 40);
            let (align, half) = [(false, false), (true, false), (false, true)][case % 3];
            let in_shape = [batches, in_h, in_w, depth];
            let out_shape = [batches, out_h, out_w, depth];
            let x = rng.vec(in_shape.iter().product());
            let n: usize = out_shape.iter().product();
            let mut want = vec![0.0; n];
            resize_bilinear_f32(&x, in_shape, &mut want, out_shape, align, half);
            for &isa in &available_levels() {
                let plan = ResizeBilinearF32Plan::new(isa, in_shape, out_shape, align, half);
                let mut got = vec![f32::NAN; n];
                let row_len = plan.row_len();
                let mut r = 0;
                while r < batches * out_h {
                    let k = rng.range(1, batches * out_h - r + 1);
                    let rows = &mut got[r * row_len..(r + k) * row_len];
                    plan.run_rows(&x, rows, r);
                    r += k;
                }
                let same = got.iter().zip(&want).all(|(g, w)| g.to_bits() == w.to_bits());
                assert!(same, "case {case} {isa:?}: {in_shape:?} -> {out_shape:?} align {align} half {half}");
            }
        }
    }
}
