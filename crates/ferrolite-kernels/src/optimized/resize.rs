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

/// int8 RESIZE_BILINEAR, bit-exact with
/// `reference::quantized::resize_bilinear_integer::<i8>`: the same 10-bit
/// coordinates, per-pixel weights and rounding, but in i32 (an int8 value
/// times weights that sum to 2^20, even with the negative offsets of
/// half-pixel centres, stays below 2^29) instead of the reference's i64 and
/// its division per value, and compiled for AVX2 so each pixel's channels
/// run eight lanes at a time (int8 [1,56,56,64] -> 112x112 took 8.6x
/// LiteRT's time on the reference). Shapes as the reference's.
pub fn resize_bilinear_i8(
    isa: IsaLevel,
    input: &[i8],
    in_shape: [usize; 4],
    output: &mut [i8],
    out_shape: [usize; 4],
    align_corners: bool,
    half_pixel_centers: bool,
) {
    #[cfg(target_arch = "x86_64")]
    if let Some(t) = Avx2Fma::new(isa) {
        let _ = t;
        // SAFETY: the token proves AVX2; the body is safe code.
        #[allow(unsafe_code)]
        return unsafe { bilinear_i8_avx2(input, in_shape, output, out_shape, align_corners, half_pixel_centers) };
    }
    let _ = isa;
    bilinear_i8(input, in_shape, output, out_shape, align_corners, half_pixel_centers)
}

/// # Safety
/// AVX2 available.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[target_feature(enable = "avx2")]
unsafe fn bilinear_i8_avx2(
    input: &[i8],
    in_shape: [usize; 4],
    output: &mut [i8],
    out_shape: [usize; 4],
    align_corners: bool,
    half_pixel_centers: bool,
) {
    bilinear_i8(input, in_shape, output, out_shape, align_corners, half_pixel_centers)
}

#[inline(always)]
fn bilinear_i8(
    input: &[i8],
    in_shape: [usize; 4],
    output: &mut [i8],
    out_shape: [usize; 4],
    align_corners: bool,
    half_pixel_centers: bool,
) {
    use crate::reference::quantized::misc::{interpolation_values_integer as values, scale_10};
    let [batches, in_h, in_w, depth] = in_shape;
    let [_, out_h, out_w, _] = out_shape;
    if [in_h, in_w, out_h, out_w, depth].contains(&0) {
        return;
    }
    let (ih, iw) = (in_h as i32, in_w as i32);
    let (hs, ws) = (scale_10(ih, out_h as i32, align_corners), scale_10(iw, out_w as i32, align_corners));
    // Per output column: its two input columns and `dx`.
    let cols: Vec<(usize, usize, i32)> = (0..out_w as i32)
        .map(|x| {
            let (v, x0, x1) = values(x, ws, half_pixel_centers, iw);
            (x0 as usize, x1 as usize, v - (1 << 10) * x0)
        })
        .collect();
    let row = |b: usize, y: i32| &input[(b * in_h + y as usize) * in_w * depth..][..in_w * depth];
    let mut out_pixels = output.chunks_exact_mut(depth);
    for b in 0..batches {
        for y in 0..out_h as i32 {
            let (v, y0, y1) = values(y, hs, half_pixel_centers, ih);
            let dy = v - (1 << 10) * y0;
            let (top, bottom) = (row(b, y0), row(b, y1));
            for &(x0, x1, dx) in &cols {
                let Some(out) = out_pixels.next() else { return };
                let w = [((1 << 10) - dy) * ((1 << 10) - dx), dy * ((1 << 10) - dx), ((1 << 10) - dy) * dx, dy * dx];
                let (a, bb) = (&top[x0 * depth..][..depth], &bottom[x0 * depth..][..depth]);
                let (c, d) = (&top[x1 * depth..][..depth], &bottom[x1 * depth..][..depth]);
                for ((((o, &a), &bb), &c), &d) in out.iter_mut().zip(a).zip(bb).zip(c).zip(d) {
                    let s = a as i32 * w[0] + bb as i32 * w[1] + c as i32 * w[2] + d as i32 * w[3];
                    // `(s ± 2^19) / 2^20`, truncating: half away from zero.
                    let q = if s > 0 { (s + (1 << 19)) >> 20 } else { -((-s + (1 << 19)) >> 20) };
                    *o = q as i8;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {

    /// int8 against the integer reference: random sizes up and down, both
    /// flags, every level.
    #[test]
    fn int8_bilinear_equals_the_reference() {
        use crate::reference::quantized::resize_bilinear_integer;
        let mut rng = crate::optimized::testutil::Rng::new(0x8e5);
        for case in 0..150 {
            let (b, ih, iw, c) = (rng.range(1, 3), rng.range(1, 9), rng.range(1, 9), rng.range(1, 40));
            let (oh, ow) = (rng.range(1, 20), rng.range(1, 20));
            let (align, half) = match case % 3 {
                0 => (false, false),
                1 => (true, false),
                _ => (false, true),
            };
            let x: Vec<i8> = (0..b * ih * iw * c).map(|_| rng.next_u64() as i8).collect();
            let (is, os) = ([b, ih, iw, c], [b, oh, ow, c]);
            let mut want = vec![0i8; b * oh * ow * c];
            resize_bilinear_integer(&x, is, &mut want, os, align, half);
            for &isa in &crate::optimized::isa::available_levels() {
                let mut got = vec![7i8; want.len()];
                resize_bilinear_i8(isa, &x, is, &mut got, os, align, half);
                assert_eq!(got, want, "case {case} {isa:?} {is:?} -> {os:?} align {align} half {half}");
            }
        }
    }
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
