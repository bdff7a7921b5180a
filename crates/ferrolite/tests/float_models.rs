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
