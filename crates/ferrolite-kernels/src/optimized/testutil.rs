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
