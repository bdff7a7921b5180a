//! Float models against LiteRT's reference outputs.

mod support;
use support::check_float_fixture;

#[test]
fn sine_float() {
    check_float_fixture("sine_float", 1);
}

#[test]
fn mobilenet_v1_f32() {
    check_float_fixture("mobilenet_v1_0.25_128.f32", 1);
}

#[test]
fn mobilenet_v1_f16() {
    check_float_fixture("mobilenet_v1_0.25_128.f16", 1);
}

#[test]
fn mobilenet_v2_f32() {
    check_float_fixture("mobilenet_v2_0.35_96.f32", 1);
}

#[test]
fn mobilenet_v2_f16() {
    check_float_fixture("mobilenet_v2_0.35_96.f16", 1);
}

#[test]
fn face_detection_short_range() {
    check_float_fixture("face_detection_short_range", 1);
}

#[test]
fn face_landmark() {
    check_float_fixture("face_landmark", 1);
}

/// Dynamic-range models produce float outputs: same rule.
#[test]
fn mobilenet_v1_dyn() {
    check_float_fixture("mobilenet_v1_0.25_128.dyn", 1);
}

#[test]
fn mobilenet_v2_dyn() {
    check_float_fixture("mobilenet_v2_0.35_96.dyn", 1);
}

// Fixtures made by tools/make_fixtures.py (testdata/generated), covering ops
// the shared models do not use.

#[test]
fn generated_upsample_head_f32() {
    check_float_fixture("upsample_head.f32", 1);
}

#[test]
fn generated_transformer_block_f32() {
    check_float_fixture("transformer_block.f32", 1);
}

#[test]
fn generated_elementwise_f32() {
    check_float_fixture("elementwise.f32", 1);
}

#[test]
fn generated_shape_ops_f32() {
    check_float_fixture("shape_ops.f32", 1);
}

#[test]
fn generated_pad_space_ops_f32() {
    check_float_fixture("pad_space_ops.f32", 1);
}

#[test]
fn generated_depth_to_space_f32() {
    check_float_fixture("depth_to_space.f32", 1);
}

/// Two worker threads must give the same answer within the same tolerance.
#[test]
fn mobilenet_v2_f32_two_threads() {
    check_float_fixture("mobilenet_v2_0.35_96.f32", 2);
}

/// Weights read in place (`pack_weights: false`, the fast-start mode): the
/// in-place GEMM for every float conv and FULLY_CONNECTED, same tolerance.
#[test]
fn weights_in_place_match_litert() {
    let options = ferrolite::InterpreterOptions { pack_weights: false, ..Default::default() };
    for name in [
        "mobilenet_v1_0.25_128.f32",
        "mobilenet_v2_0.35_96.f16",
        "face_detection_short_range",
        "transformer_block.f32",
        "upsample_head.f32",
    ] {
        support::check_float_fixture_with(name, options.clone());
    }
    let two_threads = ferrolite::InterpreterOptions { threads: 2, ..options };
    support::check_float_fixture_with("mobilenet_v1_0.25_128.f32", two_threads);
}
