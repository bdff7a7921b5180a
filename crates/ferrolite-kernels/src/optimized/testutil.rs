//! Helpers for the optimised kernels' tests: a small deterministic PRNG, a
//! tolerance check scaled to the size of the sums, and a timer.

/// SplitMix64: deterministic, dependency-free.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo) as u64) as usize
    }

    /// Uniform in `[-1, 1)`.
    pub fn f32(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f32()).collect()
    }

    #[allow(dead_code)]
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.range(0, items.len())]
    }
}

/// `0 .. len` cut into consecutive ranges whose starts are multiples of
/// 16 (one or two 16-column panels each): column splits for GEMV tests.
pub fn panel_ranges(len: usize, rng: &mut Rng) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    let mut c0 = 0;
    while c0 < len {
        let c1 = (c0 + 16 * rng.range(1, 3)).min(len);
        ranges.push(c0..c1);
        c0 = c1;
    }
    ranges
}

/// Assert `|got - want| <= tol * max(scale, |want|)` element-wise, where
/// `scale` is the same computation over absolute values (`sum |x||w|`):
/// reordering a float sum changes it by a few ulps of that, not of the
/// (possibly cancelled) result. NaNs must match NaNs.
pub fn assert_close(got: &[f32], want: &[f32], scale: &[f32], tol: f32, ctx: &str) {
    assert_eq!(got.len(), want.len(), "{ctx}: lengths");
    let mut worst = 0.0f32;
    for i in 0..got.len() {
        let (g, w) = (got[i], want[i]);
        if w.is_nan() || g.is_nan() {
            assert!(w.is_nan() && g.is_nan(), "{ctx}: [{i}] got {g}, want {w}");
            continue;
        }
        let s = scale[i].abs().max(w.abs()).max(f32::MIN_POSITIVE);
        let rel = (g - w).abs() / s;
        worst = worst.max(rel);
        assert!(rel <= tol, "{ctx}: [{i}] got {g}, want {w} (scale {s}, rel diff {rel:e})");
    }
    let _ = worst;
}

/// Best-of GFLOP/s of `f` (run for about half a second after a warm-up).
pub fn gflops(flops: f64, mut f: impl FnMut()) -> f64 {
    use std::time::{Duration, Instant};
    f();
    let start = Instant::now();
    let mut best = Duration::MAX;
    let mut runs = 0;
    while runs < 3 || (start.elapsed() < Duration::from_millis(500) && runs < 1000) {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed());
        runs += 1;
    }
    flops / best.as_secs_f64() / 1e9
}

/// A random convolution geometry for the quantised and hybrid conv tests:
/// every fourth case (`i`) a 1x1 pointwise conv, every third a dilated
/// one; otherwise up to 4x4 filters with VALID or SAME padding.
pub struct ConvGeom {
    pub p: crate::reference::conv::Conv2dParams,
    pub dm: usize,
    pub in_shape: [usize; 4],
    pub kh: usize,
    pub kw: usize,
    pub out_hw: (usize, usize),
}

/// Exclusive upper bounds of the random parts of a [`ConvGeom`].
pub struct ConvGeomLimits {
    pub stride_h: usize,
    pub stride_w: usize,
    pub dilation_h: usize,
    pub dilation_w: usize,
    pub batches: usize,
    pub depth_multiplier: usize,
}

impl ConvGeom {
    /// `clamp` draws the fused activation (after the geometry, so the
    /// sequence of draws is fixed).
    pub fn random(
        rng: &mut Rng,
        i: usize,
        in_c: usize,
        lim: &ConvGeomLimits,
        clamp: impl FnOnce(&mut Rng) -> crate::activation::ClampF32,
    ) -> ConvGeom {
        use crate::reference::padding::{Padding, Padding2d};
        let pointwise = i.is_multiple_of(4);
        let (kh, kw) = if pointwise { (1, 1) } else { (rng.range(1, 5), rng.range(1, 5)) };
        let (sh, sw) = if pointwise { (1, 1) } else { (rng.range(1, lim.stride_h), rng.range(1, lim.stride_w)) };
        let (dh, dw) = if pointwise || !i.is_multiple_of(3) {
            (1, 1)
        } else {
            (rng.range(1, lim.dilation_h), rng.range(1, lim.dilation_w))
        };
        let padding = if pointwise || rng.range(0, 2) == 0 { Padding::Valid } else { Padding::Same };
        let (in_h, in_w) = (rng.range(1, 12), rng.range(1, 12));
        let batches = rng.range(1, lim.batches);
        let w = Padding2d::compute(padding, in_h, in_w, kh, kw, sh, sw, dh, dw);
        let p = crate::reference::conv::Conv2dParams {
            stride_h: sh,
            stride_w: sw,
            dilation_h: dh,
            dilation_w: dw,
            pad_top: w.padding.top,
            pad_left: w.padding.left,
            clamp: clamp(rng),
        };
        ConvGeom {
            p,
            dm: rng.range(1, lim.depth_multiplier),
            in_shape: [batches, in_h, in_w, in_c],
            kh,
            kw,
            out_hw: (w.out_h, w.out_w),
        }
    }
}
