//! Dynamic-range ("hybrid") models against LiteRT's reference kernels.
//!
//! TFLite's hybrid kernels quantise the activations on the fly and sum in
//! exact integers, so unlike float models (where LiteRT's reference and
//! XNNPACK drift apart and set the tolerance) the reference result is
//! deterministic: we must match it up to float reordering, not to the
//! XNNPACK gap.
//!
//! Where float ops run *before* a hybrid op (the MobileNets' first layers
//! keep float weights), our float kernels -- summed in a different order
//! than TFLite's reference kernels -- can move an activation by one ulp
//! across a rounding boundary of the hybrid op's on-the-fly quantisation;
//! that input then differs by one whole quantisation step, and later hybrid
//! layers amplify it. (MobileNet v2: 1 of 2304 quantised inputs of the first
//! hybrid CONV_2D flips, from a 5e-6 difference; given LiteRT's own input
//! that layer matches to 1e-6.) Those models get a bound that covers a few
//! such flips; the models whose hybrid ops see exact inputs get the strict one.

mod support;
use support::{max_abs_diff, reference, run_fixture};

/// max|ours - ref| <= REL * max|ref| on every output: TFLite-exact up to
/// float reordering.
const REL: f64 = 1e-4;

fn check_hybrid_fixture(name: &str) {
    check_hybrid_fixture_within(name, REL);
}

fn check_hybrid_fixture_within(name: &str, rel: f64) {
    let Some(outs) = run_fixture(name, 1) else {
        eprintln!("skipping {name}: fixture not found");
        return;
    };
    for (i, out) in outs.iter().enumerate() {
        let r = reference(name, "ref", i);
        assert_eq!(out.shape, r.shape, "{name} output {i} shape");
        let (o, r) = (out.as_f64(), r.as_f64());
        let max_ref = r.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let diff = max_abs_diff(&o, &r);
        let tol = rel * max_ref;
        eprintln!("{name} output {i}: max|ours-ref| = {diff:.3e} (max|ref| {max_ref:.3e}, tolerance {tol:.3e})");
        assert!(diff <= tol, "{name} output {i}: max|ours-ref| = {diff} > {tol}");
    }
}

#[test]
fn mobilenet_v1_dyn() {
    // Achieved 1.4e-4 on a 1.0e-2 softmax peak: quantisation flips (see top).
    check_hybrid_fixture_within("mobilenet_v1_0.25_128.dyn", 2e-2);
}

#[test]
fn mobilenet_v2_dyn() {
    // Achieved 0.72 on 10.7 logits: quantisation flips (see top); needs
    // float CONV_2D / DEPTHWISE_CONV_2D in TFLite's reference summation order
    // to tighten.
    check_hybrid_fixture_within("mobilenet_v2_0.35_96.dyn", 1e-1);
}

#[test]
fn upsample_head_dyn() {
    check_hybrid_fixture("upsample_head.dyn");
}

#[test]
fn transformer_block_dyn() {
    check_hybrid_fixture("transformer_block.dyn");
}
