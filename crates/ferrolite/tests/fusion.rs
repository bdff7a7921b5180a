//! CONV_2D + DEPTHWISE_CONV_2D fusion: the fused node must compute what
//! the reference kernels compute for the two nodes apart, on shapes that
//! cross band and thread-chunk boundaries (strides, SAME/VALID padding,
//! dilation, batches, bands of one row), and must leave alone the pairs it
//! may not fuse; and a float ADD/SUB/MUL/DIV taking the clamp of the RELU
//! after it (same-shape and per-channel operands, the bits of the reference).

use fb::{BuiltinOperator as Op, TensorType as TT};
use ferrolite::schema as fb;
use ferrolite::{Interpreter, InterpreterOptions, Model, OpResolver};

mod support;
use support::builder::{act, build, konst, node_with, T};

#[derive(Clone, Copy, Debug)]
struct Case {
    batches: usize,
    h: usize,
    w: usize,
    in_c: usize,
    mid_c: usize,
    conv_k: usize,
    conv_stride: usize,
    dw_k: usize,
    dw_stride: usize,
    dw_dilation: usize,
    same: bool,
    biases: bool,
    /// The intermediate is a graph output too (must not fuse).
    mid_is_output: bool,
}

const BASE: Case = Case {
    batches: 1,
    h: 64,
    w: 64,
    in_c: 8,
    mid_c: 64,
    conv_k: 1,
    conv_stride: 1,
    dw_k: 3,
    dw_stride: 1,
    dw_dilation: 1,
    same: true,
    biases: true,
    mid_is_output: false,
};

/// Deterministic values in [-1, 1).
fn values(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

fn out_dim(n: usize, k: usize, stride: usize, dilation: usize, same: bool) -> usize {
    if same {
        n.div_ceil(stride)
    } else {
        (n - (k - 1) * dilation - 1) / stride + 1
    }
}

fn model(c: &Case) -> Vec<u8> {
    let pad = if c.same { fb::Padding::Same } else { fb::Padding::Valid };
    let (mh, mw) = (out_dim(c.h, c.conv_k, c.conv_stride, 1, c.same), out_dim(c.w, c.conv_k, c.conv_stride, 1, c.same));
    let (oh, ow) = (
        out_dim(mh, c.dw_k, c.dw_stride, c.dw_dilation, c.same),
        out_dim(mw, c.dw_k, c.dw_stride, c.dw_dilation, c.same),
    );
    let i = |v: usize| v as i32;
    let tensors: Vec<T> = vec![
        act(TT::Float32, &[i(c.batches), i(c.h), i(c.w), i(c.in_c)]),
        konst(
            TT::Float32,
            &[i(c.mid_c), i(c.conv_k), i(c.conv_k), i(c.in_c)],
            &values(1, c.mid_c * c.conv_k * c.conv_k * c.in_c),
        ),
        konst(TT::Float32, &[i(c.mid_c)], &values(2, c.mid_c)),
        act(TT::Float32, &[i(c.batches), i(mh), i(mw), i(c.mid_c)]),
        konst(TT::Float32, &[1, i(c.dw_k), i(c.dw_k), i(c.mid_c)], &values(3, c.dw_k * c.dw_k * c.mid_c)),
        konst(TT::Float32, &[i(c.mid_c)], &values(4, c.mid_c)),
        act(TT::Float32, &[i(c.batches), i(oh), i(ow), i(c.mid_c)]),
    ];
    let (conv_in, dw_in): (&[i32], &[i32]) =
        if c.biases { (&[0, 1, 2], &[3, 4, 5]) } else { (&[0, 1, -1], &[3, 4, -1]) };
    let conv = node_with(
        Op::Conv2d,
        conv_in,
        &[3],
        fb::BuiltinOptions::Conv2DOptions(Box::new(fb::Conv2DOptions {
            padding: pad,
            stride_w: i(c.conv_stride),
            stride_h: i(c.conv_stride),
            fused_activation_function: fb::ActivationFunctionType::Relu6,
            dilation_w_factor: 1,
            dilation_h_factor: 1,
            ..Default::default()
        })),
    );
    let dw = node_with(
        Op::DepthwiseConv2d,
        dw_in,
        &[6],
        fb::BuiltinOptions::DepthwiseConv2DOptions(Box::new(fb::DepthwiseConv2DOptions {
            padding: pad,
            stride_w: i(c.dw_stride),
            stride_h: i(c.dw_stride),
            depth_multiplier: 1,
            fused_activation_function: fb::ActivationFunctionType::None,
            dilation_w_factor: i(c.dw_dilation),
            dilation_h_factor: i(c.dw_dilation),
        })),
    );
    let outputs: &[i32] = if c.mid_is_output { &[6, 3] } else { &[6] };
    build(tensors, &[0], outputs, vec![conv, dw])
}

/// The model's first output, its arena size and whether the pair fused.
fn run(bytes: &[u8], c: &Case, options: InterpreterOptions) -> (Vec<f32>, usize, bool) {
    let model = Model::from_bytes(bytes).unwrap();
    let resolver = OpResolver::with_builtins();
    let mut it = Interpreter::new(&model, &resolver, options).unwrap();
    it.allocate_tensors().unwrap();
    it.set_input::<f32>(0, &values(5, c.batches * c.h * c.w * c.in_c)).unwrap();
    it.invoke().unwrap();
    let out = it.output(0).unwrap().as_slice::<f32>().unwrap().to_vec();
    (out, it.arena_size(), it.fused_producer(1) == Some(0))
}

/// Fused runs at 1-3 threads, packed and in-place weights, against the
/// reference kernels; returns whether the pair fused.
fn check(c: Case) -> bool {
    let bytes = model(&c);
    let (want, _, ref_fused) = run(&bytes, &c, InterpreterOptions { reference_kernels: true, ..Default::default() });
    assert!(!ref_fused, "reference kernels never fuse");
    let (_, unfused_arena, off_fused) = run(&bytes, &c, InterpreterOptions { fuse_ops: false, ..Default::default() });
    assert!(!off_fused, "fuse_ops: false");
    let mut fused_any = None;
    for threads in 1..=3 {
        for pack_weights in [true, false] {
            let options = InterpreterOptions { threads, pack_weights, ..Default::default() };
            let (got, arena, fused) = run(&bytes, &c, options);
            assert_eq!(got.len(), want.len());
            for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!((g - w).abs() <= 1e-4 * w.abs().max(1.0), "{c:?} threads {threads} value {k}: {g} vs {w}");
            }
            assert!(fused_any.is_none_or(|f| f == fused), "fusion must not depend on threads or packing");
            fused_any = Some(fused);
            if fused {
                assert!(arena < unfused_arena, "fused arena {arena} not below {unfused_arena}");
            }
        }
    }
    fused_any.unwrap()
}

#[test]
fn pointwise_then_depthwise_same_stride_1() {
    assert!(check(BASE));
}

#[test]
fn im2col_conv_then_strided_depthwise_two_batches() {
    assert!(check(Case { batches: 2, h: 48, w: 48, conv_k: 3, dw_stride: 2, ..BASE }));
}

#[test]
fn strided_gathering_conv_valid_padding() {
    assert!(check(Case { h: 130, w: 130, in_c: 3, mid_c: 64, conv_k: 3, conv_stride: 2, same: false, ..BASE }));
}

#[test]
fn dilated_5x5_depthwise_without_biases() {
    assert!(check(Case { h: 70, w: 70, dw_k: 5, dw_dilation: 2, biases: false, same: false, ..BASE }));
}

#[test]
fn rows_too_wide_for_more_than_one_row_per_band() {
    // 1024 × 64 floats per row: a band is one depthwise row (three conv rows).
    assert!(check(Case { h: 12, w: 1024, dw_stride: 2, ..BASE }));
}

#[test]
fn an_intermediate_that_is_also_an_output_is_not_fused() {
    assert!(!check(Case { mid_is_output: true, ..BASE }));
}

#[test]
fn small_intermediates_are_not_fused() {
    assert!(!check(Case { h: 16, w: 16, ..BASE }));
}

#[test]
fn resizing_the_input_fuses_afresh() {
    // Fused at 64x64 (1 MiB intermediate), not at 32x32, fused again at
    // 96x96: each allocate_tensors() must start from the unfused graph.
    let c = BASE;
    let bytes = model(&c);
    let model = Model::from_bytes(&bytes).unwrap();
    let resolver = OpResolver::with_builtins();
    let mut fused =
        Interpreter::new(&model, &resolver, InterpreterOptions { threads: 2, ..Default::default() }).unwrap();
    let reference_options = InterpreterOptions { reference_kernels: true, ..Default::default() };
    let mut reference = Interpreter::new(&model, &resolver, reference_options).unwrap();
    for (side, should_fuse) in [(64, true), (32, false), (96, true)] {
        let shape = [1, side, side, c.in_c];
        let x = values(side as u64, shape.iter().product());
        let mut outs = Vec::new();
        for it in [&mut fused, &mut reference] {
            it.resize_input(0, &shape).unwrap();
            it.allocate_tensors().unwrap();
            it.set_input::<f32>(0, &x).unwrap();
            it.invoke().unwrap();
            outs.push(it.output(0).unwrap().as_slice::<f32>().unwrap().to_vec());
        }
        assert_eq!(fused.fused_producer(1) == Some(0), should_fuse, "{side}x{side}");
        assert_eq!(outs[0].len(), side * side * c.mid_c);
        for (g, w) in outs[0].iter().zip(&outs[1]) {
            assert!((g - w).abs() <= 1e-4 * w.abs().max(1.0), "{side}x{side}: {g} vs {w}");
        }
    }
}

/// `a (op) b` then `relu`, the binary op without an activation of its own
/// unless `own_act`; `b` is `[c]` (broadcast) when `broadcast`. Returns the
/// model and the input size.
fn arith_relu_model(op: Op, relu: Op, own_act: bool, broadcast: bool, mid_is_output: bool) -> (Vec<u8>, usize) {
    let shape = [1, 32, 32, 24];
    let b_shape: &[i32] = if broadcast { &[24] } else { &shape };
    let tensors: Vec<T> = vec![
        act(TT::Float32, &shape),
        konst(TT::Float32, b_shape, &values(7, b_shape.iter().product::<i32>() as usize)),
        act(TT::Float32, &shape),
        act(TT::Float32, &shape),
    ];
    let fused_activation_function =
        if own_act { fb::ActivationFunctionType::Relu6 } else { fb::ActivationFunctionType::None };
    let options = match op {
        Op::Add => {
            fb::BuiltinOptions::AddOptions(Box::new(fb::AddOptions { fused_activation_function, ..Default::default() }))
        }
        Op::Sub => {
            fb::BuiltinOptions::SubOptions(Box::new(fb::SubOptions { fused_activation_function, ..Default::default() }))
        }
        Op::Div => fb::BuiltinOptions::DivOptions(Box::new(fb::DivOptions { fused_activation_function })),
        _ => fb::BuiltinOptions::MulOptions(Box::new(fb::MulOptions { fused_activation_function })),
    };
    // A broadcast constant goes first for SUB and DIV, whose order matters.
    let inputs: &[i32] = if broadcast && matches!(op, Op::Sub | Op::Div) { &[1, 0] } else { &[0, 1] };
    let arith = node_with(op, inputs, &[2], options);
    let clamp = support::builder::node(relu, &[2], &[3]);
    let outputs: &[i32] = if mid_is_output { &[3, 2] } else { &[3] };
    (build(tensors, &[0], outputs, vec![arith, clamp]), shape.iter().product::<i32>() as usize)
}

/// Runs the model at 1-3 threads against the reference kernels (which do
/// not fuse): the same bits. Returns whether the pair fused.
fn check_arith_relu(bytes: &[u8], n: usize) -> bool {
    let model = Model::from_bytes(bytes).unwrap();
    let resolver = OpResolver::with_builtins();
    // Both signs, zeros and values past 6 and -1, so every clamp bites.
    let x: Vec<f32> = values(8, n).iter().map(|v| v * 8.0).collect();
    let run = |options: InterpreterOptions| {
        let mut it = Interpreter::new(&model, &resolver, options).unwrap();
        it.allocate_tensors().unwrap();
        it.set_input::<f32>(0, &x).unwrap();
        it.invoke().unwrap();
        (it.output(0).unwrap().as_slice::<f32>().unwrap().to_vec(), it.fused_producer(1) == Some(0))
    };
    let (want, ref_fused) = run(InterpreterOptions { reference_kernels: true, ..Default::default() });
    assert!(!ref_fused);
    let mut fused_any = None;
    for threads in 1..=3 {
        let (got, fused) = run(InterpreterOptions { threads, ..Default::default() });
        let same = got.iter().zip(&want).all(|(g, w)| g.to_bits() == w.to_bits());
        assert!(same && got.len() == want.len(), "threads {threads}: not the reference's bits");
        assert!(fused_any.is_none_or(|f| f == fused));
        fused_any = Some(fused);
    }
    fused_any.unwrap()
}

#[test]
fn add_then_relu_fuses_into_one_pass_with_the_same_bits() {
    for relu in [Op::Relu, Op::Relu6, Op::ReluN1To1] {
        let (bytes, n) = arith_relu_model(Op::Add, relu, false, false, false);
        assert!(check_arith_relu(&bytes, n), "ADD + {relu:?}");
    }
    // Per-channel operands (the row-broadcast kernel), second and first.
    for op in [Op::Add, Op::Mul, Op::Sub, Op::Div] {
        let (bytes, n) = arith_relu_model(op, Op::Relu6, false, true, false);
        assert!(check_arith_relu(&bytes, n), "broadcast {op:?} + RELU6");
    }
}

#[test]
fn add_with_its_own_activation_or_a_second_reader_is_not_fused_with_relu() {
    let (bytes, n) = arith_relu_model(Op::Add, Op::Relu, true, false, false);
    assert!(!check_arith_relu(&bytes, n), "ADD with RELU6 already fused");
    let (bytes, n) = arith_relu_model(Op::Add, Op::Relu, false, false, true);
    assert!(!check_arith_relu(&bytes, n), "ADD whose output is a graph output too");
}
