//! Quantised models: outputs must equal LiteRT's reference kernels bit for bit.

mod support;
use support::check_exact_fixture;

#[test]
fn mobilenet_v1_int8() {
    check_exact_fixture("mobilenet_v1_0.25_128.int8", 1);
}

#[test]
fn mobilenet_v1_uint8_io() {
    check_exact_fixture("mobilenet_v1_0.25_128.uint8io", 1);
}

#[test]
fn mobilenet_v2_int8() {
    check_exact_fixture("mobilenet_v2_0.35_96.int8", 1);
}

// Its classifier is a per-channel 16x8 FULLY_CONNECTED: LiteRT's reference
// kernel requantises that in f64, not with the fixed-point multiplier.
#[test]
fn mobilenet_v2_int16x8() {
    check_exact_fixture("mobilenet_v2_0.35_96.int16x8", 1);
}

#[test]
fn inception_v3_int8() {
    check_exact_fixture("inception_v3_75.int8", 1);
}

// tools/make_fixtures.py models (testdata/generated).

#[test]
fn shape_ops_int8() {
    check_exact_fixture("shape_ops.int8", 1);
}

#[test]
fn pad_space_ops_int8() {
    check_exact_fixture("pad_space_ops.int8", 1);
}

#[test]
fn upsample_head_int8() {
    check_exact_fixture("upsample_head.int8", 1);
}

#[test]
fn elementwise_int8() {
    check_exact_fixture("elementwise.int8", 1);
}

#[test]
fn transformer_block_int8() {
    check_exact_fixture("transformer_block.int8", 1);
}
