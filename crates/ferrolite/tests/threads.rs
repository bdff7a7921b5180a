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

/// A channel CONCATENATION large enough to be copied on several threads
/// (Inception's are megabytes): every value lands where the axis says, at
/// any thread count, for float and 64-bit integer data.
#[test]
fn large_concatenation_is_the_same_at_any_thread_count() {
    use fb::{BuiltinOperator as Op, TensorType as TT};
    use ferrolite::schema as fb;
    use ferrolite::{Interpreter, Model, OpResolver};
    use support::builder::{act, build, node_with};

    // Two inputs of 5 and 3 channels over 181 x 97 pixels (odd, so the
    // thread split does not fall on round numbers): 560 KB of float output.
    let (h, w, c) = (181usize, 97usize, [5usize, 3]);
    let pixels = h * w;
    let opts =
        fb::BuiltinOptions::ConcatenationOptions(Box::new(fb::ConcatenationOptions { axis: -1, ..Default::default() }));
    let shape = |ch: usize| [1, h as i32, w as i32, ch as i32];
    for ty in [TT::Float32, TT::Int64] {
        let model = build(
            vec![act(ty, &shape(c[0])), act(ty, &shape(c[1])), act(ty, &shape(c[0] + c[1]))],
            &[0, 1],
            &[2],
            vec![node_with(Op::Concatenation, &[0, 1], &[2], opts.clone())],
        );
        let model = Model::from_bytes(&model).unwrap();
        // Input k's value at (pixel, channel) encodes all three.
        let value = |k: usize, p: usize, ch: usize| (p * 8 + k * 5 + ch) as f32;
        let mut want = Vec::new();
        for p in 0..pixels {
            for (k, &ck) in c.iter().enumerate() {
                want.extend((0..ck).map(|ch| value(k, p, ch)));
            }
        }
        for threads in [1, 2, 3] {
            let resolver = OpResolver::with_builtins();
            let options = InterpreterOptions { threads, ..Default::default() };
            let mut it = Interpreter::new(&model, &resolver, options).unwrap();
            it.allocate_tensors().unwrap();
            for (k, &ck) in c.iter().enumerate() {
                let vals: Vec<f32> = (0..pixels).flat_map(|p| (0..ck).map(move |ch| value(k, p, ch))).collect();
                match ty {
                    TT::Float32 => it.set_input(k, &vals).unwrap(),
                    _ => it.set_input(k, &vals.iter().map(|&v| -(v as i64)).collect::<Vec<_>>()).unwrap(),
                }
            }
            it.invoke().unwrap();
            let out = it.output(0).unwrap();
            match ty {
                TT::Float32 => assert_eq!(out.as_slice::<f32>().unwrap(), &want[..], "f32, {threads} threads"),
                _ => {
                    let want: Vec<i64> = want.iter().map(|&v| -(v as i64)).collect();
                    assert_eq!(out.as_slice::<i64>().unwrap(), &want[..], "int64, {threads} threads");
                }
            }
        }
    }
}

/// Same-shape ADDs large enough to be split between threads (MobileNet
/// v2's residual adds): float against hand-computed sums, int8 the same
/// bytes at any thread count (the kernel itself is tested bit-exact
/// against the reference in the kernels crate).
#[test]
fn large_adds_are_the_same_at_any_thread_count() {
    use fb::{BuiltinOperator as Op, TensorType as TT};
    use ferrolite::schema as fb;
    use ferrolite::{Interpreter, Model, OpResolver};
    use support::builder::{act, build, node_with, T};

    let shape = [1, 57, 59, 24]; // 80,712 values: not a multiple of any chunk
    let n: usize = shape.iter().map(|&d| d as usize).product();
    let relu = fb::BuiltinOptions::AddOptions(Box::new(fb::AddOptions {
        fused_activation_function: fb::ActivationFunctionType::Relu,
        ..Default::default()
    }));
    let quant = |scale: f32, zp: i64| {
        Some(fb::QuantizationParameters { scale: Some(vec![scale]), zero_point: Some(vec![zp]), ..Default::default() })
    };
    let tensor = |ty: TT, q: Option<fb::QuantizationParameters>| T { quant: q, ..act(ty, &shape) };
    let run = |model: &[u8], threads: usize, a: &[u8], b: &[u8]| {
        let model = Model::from_bytes(model).unwrap();
        let resolver = OpResolver::with_builtins();
        let mut it = Interpreter::new(&model, &resolver, InterpreterOptions { threads, ..Default::default() }).unwrap();
        it.allocate_tensors().unwrap();
        it.set_input_bytes(0, a).unwrap();
        it.set_input_bytes(1, b).unwrap();
        it.invoke().unwrap();
        it.output(0).unwrap().bytes.to_vec()
    };

    let f32_model = build(
        vec![tensor(TT::Float32, None), tensor(TT::Float32, None), tensor(TT::Float32, None)],
        &[0, 1],
        &[2],
        vec![node_with(Op::Add, &[0, 1], &[2], relu.clone())],
    );
    let a: Vec<f32> = (0..n).map(|i| (i % 1000) as f32 * 0.25 - 100.0).collect();
    let b: Vec<f32> = (0..n).map(|i| (i % 777) as f32 * 0.5 - 150.0).collect();
    let want: Vec<f32> = a.iter().zip(&b).map(|(x, y)| (x + y).max(0.0)).collect();
    let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    for threads in [1, 2, 3] {
        let got = run(&f32_model, threads, &bytes(&a), &bytes(&b));
        assert_eq!(got, bytes(&want), "f32 ADD, {threads} threads");
    }

    let i8_model = build(
        vec![tensor(TT::Int8, quant(0.05, -3)), tensor(TT::Int8, quant(0.11, 7)), tensor(TT::Int8, quant(0.13, -20))],
        &[0, 1],
        &[2],
        vec![node_with(Op::Add, &[0, 1], &[2], relu)],
    );
    let qa: Vec<u8> = (0..n).map(|i| (i * 37 % 256) as u8).collect();
    let qb: Vec<u8> = (0..n).map(|i| (i * 101 % 253) as u8).collect();
    let one = run(&i8_model, 1, &qa, &qb);
    assert!(one.iter().any(|&v| v != one[0]), "a constant output would test nothing");
    for threads in [2, 3] {
        assert_eq!(run(&i8_model, threads, &qa, &qb), one, "int8 ADD, {threads} threads");
    }
}
