//! FULLY_CONNECTED (float) over the GEMM.
//!
//! With several batch rows the weight matrix `[out_units, accum_depth]` is
//! packed once at plan time for [`gemm_f32`]. Batch 1 (the common case) is a
//! GEMV, where packing buys nothing: [`gemm_nt_f32`] reads the weights in
//! place (eight dot products at a time), so planning copies nothing. Callers
//! can ask for in-place weights for any batch.

use crate::activation::ClampF32;
use crate::optimized::gemm::{gemm_f32, PackedWeightsF32};
use crate::optimized::gemm_nt::gemm_nt_f32;
use crate::optimized::isa::IsaLevel;

/// A FULLY_CONNECTED with packed weights and its fused activation.
#[derive(Clone, Debug)]
pub struct FullyConnectedF32Plan {
    isa: IsaLevel,
    out_units: usize,
    accum_depth: usize,
    /// `None`: the weights passed to `run` are read in place.
    packed: Option<PackedWeightsF32>,
    clamp: ClampF32,
}

impl FullyConnectedF32Plan {
    /// `weights` is `[out_units, accum_depth]` row-major, as in .tflite.
    /// `isa` is clamped to what the CPU supports. They are packed when
    /// `pack` is set and `batches` (the rows `run` will see) is above one.
    pub fn new(
        isa: IsaLevel,
        weights: &[f32],
        out_units: usize,
        accum_depth: usize,
        clamp: ClampF32,
        batches: usize,
        pack: bool,
    ) -> FullyConnectedF32Plan {
        let packed = (pack && batches > 1).then(|| PackedWeightsF32::pack(weights, out_units, accum_depth));
        FullyConnectedF32Plan { isa: isa.clamp_to_cpu(), out_units, accum_depth, packed, clamp }
    }

    pub fn out_units(&self) -> usize {
        self.out_units
    }

    pub fn accum_depth(&self) -> usize {
        self.accum_depth
    }

    /// Whether the plan reads the weights in place (nothing was packed).
    pub fn in_place(&self) -> bool {
        self.packed.is_none()
    }

    /// The level the plan's kernels run at.
    pub fn isa(&self) -> IsaLevel {
        self.isa
    }

    /// `output[b, o] = clamp(sum_d input[b, d] * weights[o, d] + bias[o])`
    /// for `b < batches`. Rows are independent: to split a batch across
    /// threads, pass matching chunks of `input` and `output`.
    /// One batch row, in-place weights: output units `col_start ..
    /// col_start + output.len()` only, so threads can split a GEMV by unit.
    pub fn run_cols(&self, input: &[f32], weights: &[f32], bias: Option<&[f32]>, output: &mut [f32], col_start: usize) {
        assert!(self.packed.is_none(), "run_cols needs in-place weights");
        let (k, n) = (self.accum_depth, output.len());
        assert!(col_start + n <= self.out_units && input.len() >= k, "columns past the output");
        let w = &weights[col_start * k..(col_start + n) * k];
        let b = bias.map(|b| &b[col_start..col_start + n]);
        gemm_nt_f32(self.isa, 1, n, k, input, k, w, b, self.clamp, output, n);
    }

    /// `weights` are those the plan was made with (read only when in place).
    pub fn run(&self, input: &[f32], weights: &[f32], bias: Option<&[f32]>, output: &mut [f32], batches: usize) {
        let (n, k) = (self.out_units, self.accum_depth);
        assert!(input.len() >= batches * k, "input too short");
        assert!(output.len() >= batches * n, "output too short");
        match &self.packed {
            Some(p) => gemm_f32(self.isa, batches, k, input, k, p, bias, self.clamp, output, n),
            None => gemm_nt_f32(self.isa, batches, n, k, input, k, weights, bias, self.clamp, output, n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimized::isa::available_levels;
    use crate::optimized::testutil::{assert_close, gflops, Rng};
    use crate::reference::fully_connected::fully_connected_f32;

    fn abs(v: &[f32]) -> Vec<f32> {
        v.iter().map(|x| x.abs()).collect()
    }

    #[test]
    fn fully_connected_matches_reference() {
        let mut rng = Rng::new(0xfc);
        for i in 0..80usize {
            let batches = if i.is_multiple_of(2) { 1 } else { rng.range(1, 9) };
            let depth = if i.is_multiple_of(8) { rng.range(900, 2100) } else { rng.range(1, 300) };
            let units = rng.range(1, 70);
            let clamp = if i.is_multiple_of(3) { ClampF32::RELU6 } else { ClampF32::NONE };
            let input = rng.vec(batches * depth);
            let weights = rng.vec(units * depth);
            let bias = if i % 4 == 1 { None } else { Some(rng.vec(units)) };
            let mut want = vec![0.0; batches * units];
            fully_connected_f32(&input, &weights, bias.as_deref(), &mut want, batches, depth, units, clamp);
            let mut scale = vec![0.0; batches * units];
            let bias_abs = bias.as_deref().map(abs);
            fully_connected_f32(
                &abs(&input),
                &abs(&weights),
                bias_abs.as_deref(),
                &mut scale,
                batches,
                depth,
                units,
                ClampF32::NONE,
            );
            for &isa in &available_levels() {
                for pack in [true, false] {
                    let plan = FullyConnectedF32Plan::new(isa, &weights, units, depth, clamp, batches, pack);
                    let mut got = vec![f32::NAN; batches * units];
                    plan.run(&input, &weights, bias.as_deref(), &mut got, batches);
                    assert_close(
                        &got,
                        &want,
                        &scale,
                        1e-5,
                        &format!("fc {isa:?} pack {pack} b={batches} d={depth} u={units}"),
                    );
                }
            }
        }
    }

    #[test]
    fn gemv_split_by_units_matches_reference() {
        let mut rng = Rng::new(0x5c);
        let (depth, units) = (rng.range(1, 300), rng.range(2, 90));
        let (input, weights, bias) = (rng.vec(depth), rng.vec(units * depth), rng.vec(units));
        let mut want = vec![0.0; units];
        fully_connected_f32(&input, &weights, Some(&bias), &mut want, 1, depth, units, ClampF32::NONE);
        for &isa in &available_levels() {
            let plan = FullyConnectedF32Plan::new(isa, &weights, units, depth, ClampF32::NONE, 1, true);
            assert!(plan.in_place(), "batch 1 reads the weights in place");
            let mut got = vec![f32::NAN; units];
            let split = rng.range(1, units);
            let (lo, hi) = got.split_at_mut(split);
            plan.run_cols(&input, &weights, Some(&bias), lo, 0);
            plan.run_cols(&input, &weights, Some(&bias), hi, split);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "{isa:?}: {g} vs {w}");
            }
        }
    }

    /// `cargo test --release -p ferrolite-kernels --lib optimized::fully_connected -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn bench_fully_connected() {
        let mut rng = Rng::new(9);
        let (depth, units) = (1024, 1000);
        let input = rng.vec(depth);
        let weights = rng.vec(units * depth);
        let bias = rng.vec(units);
        let mut out = vec![0.0; units];
        let flops = 2.0 * (depth * units) as f64;
        let name = "fc 1x1024->1000";
        for &isa in &available_levels() {
            let plan = FullyConnectedF32Plan::new(isa, &weights, units, depth, ClampF32::NONE, 1, true);
            let g = gflops(flops, || plan.run(&input, &weights, Some(&bias), &mut out, 1));
            println!("{name:28} {:>9}: {g:6.1} GFLOP/s", isa.name());
        }
        let g = gflops(flops, || {
            fully_connected_f32(&input, &weights, Some(&bias), &mut out, 1, depth, units, ClampF32::NONE)
        });
        println!("{name:28} reference: {g:6.1} GFLOP/s");
    }
}
