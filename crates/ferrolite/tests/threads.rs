//! More threads must not change a single output bit: every kernel splits its
//! work so that each output is summed in the same order whatever the thread
//! count. (A GEMV split into 16-unit chunks once dropped the last 1000 % 16
//! outputs with two threads, and a split at arbitrary units changed the
//! last bit of some sums; the tolerance checks against LiteRT let both
//! through.)

mod support;

use ferrolite::InterpreterOptions;

fn same_bits_at_any_thread_count(name: &str) {
    same_bits_with(name, InterpreterOptions::default());
}

fn same_bits_with(name: &str, options: InterpreterOptions) {
    let run = |threads| support::run_fixture_with(name, InterpreterOptions { threads, ..options.clone() });
    let Some(one) = run(1) else {
        eprintln!("skipping {name}: fixture not found");
        return;
    };
    for threads in [2, 3] {
        let many = run(threads).unwrap();
        for (i, (a, b)) in one.iter().zip(&many).enumerate() {
            assert_eq!(a.shape, b.shape, "{name} output {i}, {threads} threads: shape");
            let differ = a.bytes != b.bytes;
            assert!(!differ, "{name} output {i}: {threads} threads differ from 1");
        }
    }
}

#[test]
fn mobilenets_give_the_same_bits_at_any_thread_count() {
    for name in [
        "mobilenet_v1_0.25_128.f32",
        "mobilenet_v1_0.25_128.f16",
        "mobilenet_v1_0.25_128.dyn",
        "mobilenet_v1_0.25_128.int8",
        "mobilenet_v1_0.25_128.uint8io",
        "mobilenet_v2_0.35_96.f32",
        "mobilenet_v2_0.35_96.f16",
        "mobilenet_v2_0.35_96.dyn",
        "mobilenet_v2_0.35_96.int8",
        "mobilenet_v2_0.35_96.int16x8",
    ] {
        same_bits_at_any_thread_count(name);
    }
}

#[test]
fn other_models_give_the_same_bits_at_any_thread_count() {
    for name in [
        "face_detection_short_range",
        "face_landmark",
        "transformer_block.dyn",
        "transformer_block.f32",
        "transformer_block.int8",
        "upsample_head.dyn",
        "upsample_head.f32",
        "upsample_head.int8",
        "lstm.dyn",
        "lstm.f32",
        "lstm.int8",
        "recurrent.dyn",
        "recurrent.f32",
        "elementwise.f32",
        "elementwise.int8",
        "pad_space_ops.f32",
        "pad_space_ops.int8",
        "control_flow.f32",
    ] {
        same_bits_at_any_thread_count(name);
    }
}

#[test]
fn weights_in_place_give_the_same_bits_at_any_thread_count() {
    let in_place = InterpreterOptions { pack_weights: false, ..Default::default() };
    for name in ["mobilenet_v1_0.25_128.f32", "mobilenet_v2_0.35_96.f16", "transformer_block.f32", "upsample_head.f32"]
    {
        same_bits_with(name, in_place.clone());
    }
}
