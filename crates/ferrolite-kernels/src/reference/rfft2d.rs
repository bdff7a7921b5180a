//! RFFT2D: the 2-D discrete Fourier transform of real input over its last
//! two dimensions, keeping the non-negative frequencies of the last one
//! (TensorFlow's `tf.signal.rfft2d`; `tf.signal.rfft` converts to it too).
//!
//! Each `[H, W]` slice is cropped or zero-padded to `[fft_h, fft_w]` and
//! transformed to `[fft_h, fft_w / 2 + 1]` complex values with the forward
//! sign (`exp(-2 pi i k n / N)`), stored as interleaved `(re, im)` f32
//! pairs. The arithmetic is in f64, rounded to f32 once at the end: TFLite
//! runs Ooura's fft2d in double precision, so rounding each butterfly to
//! f32 would drift from it on long transforms.

/// `exp(-2 pi i k / n)` for `k < n / 2`, from an angle folded into
/// `[0, pi / 4]`: quarter turns then come out exact (`cos(pi / 2)` is not 0
/// in f64, and would leave 1e-17 where an exact 0 belongs) and mirrored
/// twiddles equal, as in Ooura's tables.
fn twiddle(k: usize, n: usize) -> (f64, f64) {
    let angle = |j: usize| 2.0 * std::f64::consts::PI * j as f64 / n as f64;
    let (cos, sin) = if 8 * k <= n {
        let (s, c) = angle(k).sin_cos();
        (c, s)
    } else if 4 * k <= n {
        let (s, c) = angle(n / 4 - k).sin_cos();
        (s, c)
    } else if 8 * k <= 3 * n {
        let (s, c) = angle(k - n / 4).sin_cos();
        (-s, c)
    } else {
        let (s, c) = angle(n / 2 - k).sin_cos();
        (-c, s)
    };
    (cos, -sin)
}

/// An in-place radix-2 complex FFT of one power-of-two length.
#[derive(Clone, Debug)]
struct Fft {
    n: usize,
    /// `exp(-2 pi i k / n)` for `k < n / 2`.
    twiddles: Vec<(f64, f64)>,
    /// The bit-reversed position of each index.
    reversed: Vec<usize>,
}

impl Fft {
    fn new(n: usize) -> Fft {
        debug_assert!(n.is_power_of_two());
        let bits = n.trailing_zeros();
        let twiddles = (0..n / 2).map(|k| twiddle(k, n)).collect();
        let reversed = (0..n).map(|i| if bits == 0 { 0 } else { i.reverse_bits() >> (usize::BITS - bits) }).collect();
        Fft { n, twiddles, reversed }
    }

    fn run(&self, data: &mut [(f64, f64)]) {
        debug_assert_eq!(data.len(), self.n);
        for (i, &j) in self.reversed.iter().enumerate() {
            if i < j {
                data.swap(i, j);
            }
        }
        let mut len = 2;
        while len <= self.n {
            let half = len / 2;
            let step = self.n / len;
            for block in data.chunks_exact_mut(len) {
                let (lo, hi) = block.split_at_mut(half);
                for (k, (a, b)) in lo.iter_mut().zip(hi.iter_mut()).enumerate() {
                    let (wr, wi) = self.twiddles[k * step];
                    let t = (b.0 * wr - b.1 * wi, b.0 * wi + b.1 * wr);
                    *b = (a.0 - t.0, a.1 - t.1);
                    *a = (a.0 + t.0, a.1 + t.1);
                }
            }
            len *= 2;
        }
    }
}

/// A 2-D real FFT of fixed lengths, with its tables and work buffers.
#[derive(Clone, Debug)]
pub struct Rfft2d {
    fft_h: usize,
    fft_w: usize,
    rows: Fft,
    cols: Fft,
    /// One row (length `fft_w`) or one column (length `fft_h`) at a time.
    line: Vec<(f64, f64)>,
    /// The row transforms of one slice: `[fft_h, fft_w / 2 + 1]`.
    grid: Vec<(f64, f64)>,
}

impl Rfft2d {
    /// A plan for `[fft_h, fft_w]` transforms; `None` unless both lengths
    /// are powers of two (TFLite's fft2d takes nothing else).
    pub fn new(fft_h: usize, fft_w: usize) -> Option<Rfft2d> {
        if !fft_h.is_power_of_two() || !fft_w.is_power_of_two() {
            return None;
        }
        let bins = fft_w / 2 + 1;
        Some(Rfft2d {
            fft_h,
            fft_w,
            rows: Fft::new(fft_w),
            cols: Fft::new(fft_h),
            line: vec![(0.0, 0.0); fft_h.max(fft_w)],
            grid: vec![(0.0, 0.0); fft_h * bins],
        })
    }

    /// Complex values per output slice (`fft_h * (fft_w / 2 + 1)`).
    pub fn output_len(&self) -> usize {
        self.fft_h * (self.fft_w / 2 + 1)
    }

    /// Transform `slices` slices of `[in_h, in_w]` values from `input` into
    /// `out`: `slices * output_len()` interleaved `(re, im)` pairs.
    pub fn run(&mut self, input: &[f32], slices: usize, in_h: usize, in_w: usize, out: &mut [f32]) {
        let bins = self.fft_w / 2 + 1;
        let slice_out = 2 * self.output_len();
        debug_assert_eq!(input.len(), slices * in_h * in_w);
        debug_assert_eq!(out.len(), slices * slice_out);
        let (h, w) = (in_h.min(self.fft_h), in_w.min(self.fft_w));
        for s in 0..slices {
            let src = &input[s * in_h * in_w..(s + 1) * in_h * in_w];
            // Rows past the input are zero, and so are their transforms.
            self.grid.fill((0.0, 0.0));
            let row_line = &mut self.line[..self.fft_w];
            for r in 0..h {
                row_line.fill((0.0, 0.0));
                for (d, &v) in row_line.iter_mut().zip(&src[r * in_w..r * in_w + w]) {
                    d.0 = f64::from(v);
                }
                self.rows.run(row_line);
                self.grid[r * bins..(r + 1) * bins].copy_from_slice(&row_line[..bins]);
            }
            let dst = &mut out[s * slice_out..(s + 1) * slice_out];
            let col_line = &mut self.line[..self.fft_h];
            for c in 0..bins {
                for (r, d) in col_line.iter_mut().enumerate() {
                    *d = self.grid[r * bins + c];
                }
                self.cols.run(col_line);
                for (r, v) in col_line.iter().enumerate() {
                    dst[2 * (r * bins + c)] = v.0 as f32;
                    dst[2 * (r * bins + c) + 1] = v.1 as f32;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfft2d(input: &[f32], slices: usize, in_h: usize, in_w: usize, fft_h: usize, fft_w: usize) -> Vec<f32> {
        let mut plan = Rfft2d::new(fft_h, fft_w).unwrap();
        let mut out = vec![f32::NAN; slices * plan.output_len() * 2];
        plan.run(input, slices, in_h, in_w, &mut out);
        out
    }

    #[test]
    fn one_row_of_four() {
        // X1 = 1 - 2i - 3 + 4i = -2 + 2i, X2 = 1 - 2 + 3 - 4 = -2.
        assert_eq!(rfft2d(&[1.0, 2.0, 3.0, 4.0], 1, 1, 4, 1, 4), [10.0, 0.0, -2.0, 2.0, -2.0, 0.0]);
    }

    #[test]
    fn two_by_two_then_rows_then_columns() {
        // Rows: [3, -1], [7, -1]; columns: [10, -4], [-2, 0].
        assert_eq!(rfft2d(&[1.0, 2.0, 3.0, 4.0], 1, 2, 2, 2, 2), [10.0, 0.0, -2.0, 0.0, -4.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn input_is_cropped_and_zero_padded() {
        // [1, 2, 3] cropped to width 2 and padded to height 2: [[1, 2], [0, 0]].
        assert_eq!(rfft2d(&[1.0, 2.0, 3.0], 1, 1, 3, 2, 2), [3.0, 0.0, -1.0, 0.0, 3.0, 0.0, -1.0, 0.0]);
        // Length 1 in both dimensions: the first value.
        assert_eq!(rfft2d(&[5.0, 6.0], 1, 1, 2, 1, 1), [5.0, 0.0]);
    }

    #[test]
    fn every_slice_matches_a_direct_dft() {
        let (slices, in_h, in_w, fft_h, fft_w) = (2, 3, 10, 4, 8);
        let input: Vec<f32> = (0..slices * in_h * in_w).map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0).collect();
        let got = rfft2d(&input, slices, in_h, in_w, fft_h, fft_w);
        let bins = fft_w / 2 + 1;
        for s in 0..slices {
            for u in 0..fft_h {
                for v in 0..bins {
                    let (mut re, mut im) = (0.0f64, 0.0f64);
                    for y in 0..in_h.min(fft_h) {
                        for x in 0..in_w.min(fft_w) {
                            let a = f64::from(input[(s * in_h + y) * in_w + x]);
                            let phase = -2.0
                                * std::f64::consts::PI
                                * ((u * y) as f64 / fft_h as f64 + (v * x) as f64 / fft_w as f64);
                            re += a * phase.cos();
                            im += a * phase.sin();
                        }
                    }
                    let k = 2 * ((s * fft_h + u) * bins + v);
                    assert!((f64::from(got[k]) - re).abs() < 1e-5, "re {s} {u} {v}: {} vs {re}", got[k]);
                    assert!((f64::from(got[k + 1]) - im).abs() < 1e-5, "im {s} {u} {v}: {} vs {im}", got[k + 1]);
                }
            }
        }
    }

    #[test]
    fn twiddles_are_the_roots_of_unity_with_exact_quarter_turns() {
        assert_eq!(twiddle(1, 4), (0.0, -1.0));
        assert_eq!(twiddle(4, 16), (0.0, -1.0));
        assert_eq!(twiddle(0, 16), (1.0, -0.0));
        for n in [2usize, 8, 64, 512] {
            for k in 0..n / 2 {
                let a = -2.0 * std::f64::consts::PI * k as f64 / n as f64;
                let (c, s) = twiddle(k, n);
                assert!((c - a.cos()).abs() < 1e-15 && (s - a.sin()).abs() < 1e-15, "{k} / {n}");
            }
        }
    }

    #[test]
    fn lengths_must_be_powers_of_two() {
        assert!(Rfft2d::new(3, 4).is_none());
        assert!(Rfft2d::new(4, 6).is_none());
        assert!(Rfft2d::new(0, 4).is_none());
        assert!(Rfft2d::new(1, 512).is_some());
    }
}
