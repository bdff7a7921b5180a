//! RFFT2D, REAL, IMAG, COMPLEX_ABS, NON_MAX_SUPPRESSION_V4/V5,
//! SPARSE_TO_DENSE, MATRIX_DIAG, MATRIX_SET_DIAG, UNIQUE and FAKE_QUANT:
//! whole models against LiteRT (`tools/make_fixtures.py`), hand-built
//! models for what the fixtures do not reach (FAKE_QUANT entirely: the
//! converter turns `tf.quantization.fake_quant_*` into QUANTIZE +
//! DEQUANTIZE), and malformed nodes that must be refused with an error.

use fb::{BuiltinOperator as Op, TensorType as TT};
use ferrolite::schema as fb;
use ferrolite::{Element, Error, Interpreter, InterpreterOptions, Model, OpResolver};

mod support;
use support::builder::{act, build, konst, node, node_with, Node, T};
use support::{check_exact_fixture, check_float_fixture};

// ------------------------------------------------------------ fixtures ---

#[test]
fn rfft2d_and_complex_parts_match_litert() {
    // Padded and cropped 2-D transforms, and 64-point 1-D ones (RESHAPE,
    // RFFT2D, RESHAPE), read through REAL, IMAG and COMPLEX_ABS.
    check_float_fixture("rfft2d.f32", 1);
}

#[test]
fn non_max_suppression_matches_litert() {
    // Exact: the same float IoUs and soft-NMS decays, and the same order
    // for tied scores.
    check_exact_fixture("non_max_suppression.f32", 1);
}

#[test]
fn sparse_to_dense_matches_litert() {
    check_exact_fixture("sparse_to_dense.f32", 1);
}

#[test]
fn matrix_diag_and_set_diag_match_litert() {
    check_exact_fixture("matrix_diag.f32", 1);
}

#[test]
fn unique_in_an_eager_if_branch_matches_litert() {
    check_exact_fixture("unique.f32", 1);
}

// --------------------------------------------------------- hand-built ---

fn run<'m>(model: &'m Model<'m>, resolver: &'m OpResolver, feed: impl FnOnce(&mut Interpreter<'m>)) -> Interpreter<'m> {
    let mut it = Interpreter::new(model, resolver, InterpreterOptions::default()).unwrap();
    it.allocate_tensors().unwrap();
    feed(&mut it);
    it.invoke().unwrap();
    it
}

fn out<E: Element>(it: &Interpreter<'_>, i: usize) -> Vec<E> {
    it.output(i).unwrap().as_slice::<E>().unwrap().to_vec()
}

/// A complex64 output as its interleaved (re, im) f32 values.
fn out_complex(it: &Interpreter<'_>, i: usize) -> Vec<f32> {
    it.output(i).unwrap().bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
}

fn out_shape(it: &Interpreter<'_>, i: usize) -> Vec<usize> {
    it.output(i).unwrap().shape().to_vec()
}

#[test]
fn rfft2d_of_batched_matrices_and_its_parts() {
    // Two 2 x 2 slices, FFT 2 x 2: [[1, 2], [3, 4]] -> [[10, -2], [-4, 0]],
    // and [[0, 1], [0, 0]] -> [[1, -1], [1, -1]].
    let tensors = vec![
        act(TT::Float32, &[2, 2, 2]),       // 0
        konst(TT::Int32, &[2], &[2i32, 2]), // 1 fft_length
        act(TT::Complex64, &[2, 2, 2]),     // 2
        act(TT::Float32, &[2, 2, 2]),       // 3 REAL
        act(TT::Float32, &[2, 2, 2]),       // 4 IMAG
        act(TT::Float32, &[2, 2, 2]),       // 5 COMPLEX_ABS
        konst(TT::Int32, &[2], &[1i32, 4]), // 6 fft_length: crop + pad
        act(TT::Complex64, &[2, 1, 3]),     // 7
    ];
    let nodes = vec![
        node(Op::Rfft2d, &[0, 1], &[2]),
        node(Op::Real, &[2], &[3]),
        node(Op::Imag, &[2], &[4]),
        node(Op::ComplexAbs, &[2], &[5]),
        node(Op::Rfft2d, &[0, 6], &[7]),
    ];
    let bytes = build(tensors, &[0], &[2, 3, 4, 5, 7], nodes);
    let model = Model::from_bytes(&bytes).unwrap();
    let resolver = OpResolver::with_builtins();
    let it = run(&model, &resolver, |it| it.set_input(0, &[1.0f32, 2.0, 3.0, 4.0, 0.0, 1.0, 0.0, 0.0]).unwrap());
    assert_eq!(out_shape(&it, 0), [2, 2, 2]);
    assert_eq!(
        out_complex(&it, 0),
        [10.0, 0.0, -2.0, 0.0, -4.0, 0.0, 0.0, 0.0, 1.0, 0.0, -1.0, 0.0, 1.0, 0.0, -1.0, 0.0]
    );
    assert_eq!(out::<f32>(&it, 1), [10.0, -2.0, -4.0, 0.0, 1.0, -1.0, 1.0, -1.0]);
    assert_eq!(out::<f32>(&it, 2), [0.0; 8]);
    assert_eq!(out::<f32>(&it, 3), [10.0, 2.0, 4.0, 0.0, 1.0, 1.0, 1.0, 1.0]);
    // First rows only, zero-padded to 4: [1, 2, 0, 0] -> 3, 1 - 2i, -1;
    // [0, 1, 0, 0] -> 1, -i, -1.
    assert_eq!(out_shape(&it, 4), [2, 1, 3]);
    assert_eq!(out_complex(&it, 4), [3.0, 0.0, 1.0, -2.0, -1.0, 0.0, 1.0, 0.0, 0.0, -1.0, -1.0, 0.0]);
}

#[test]
fn complex128_parts_are_float64() {
    let tensors = vec![
        act(TT::Complex128, &[2]), // 0
        act(TT::Float64, &[2]),    // 1 REAL
        act(TT::Float64, &[2]),    // 2 IMAG
        act(TT::Float64, &[2]),    // 3 COMPLEX_ABS
    ];
    let nodes = vec![node(Op::Real, &[0], &[1]), node(Op::Imag, &[0], &[2]), node(Op::ComplexAbs, &[0], &[3])];
    let bytes = build(tensors, &[0], &[1, 2, 3], nodes);
    let model = Model::from_bytes(&bytes).unwrap();
    let resolver = OpResolver::with_builtins();
    let z: Vec<u8> = [-6.0f64, 8.0, 0.5, 0.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    let it = run(&model, &resolver, |it| it.set_input_bytes(0, &z).unwrap());
    assert_eq!(out::<f64>(&it, 0), [-6.0, 0.5]);
    assert_eq!(out::<f64>(&it, 1), [8.0, 0.0]);
    assert_eq!(out::<f64>(&it, 2), [10.0, 0.5]);
}

/// Six boxes: 0, 1 and 2 overlap heavily, 3 and 4 somewhat (IoU 1/3),
/// 5 has no area.
const BOXES: [f32; 24] = [
    0.0, 0.0, 1.0, 1.0, 0.0, 0.1, 1.0, 1.1, 1.0, 1.0, 0.2, 0.2, 2.0, 2.0, 3.0, 3.0, 2.0, 2.5, 3.0, 3.5, 5.0, 5.0, 5.0,
    6.0,
];

#[test]
fn non_max_suppression_v4_and_v5_pad_their_outputs() {
    // Thresholds are computed inputs here (read at invoke).
    let tensors = vec![
        act(TT::Float32, &[6, 4]),          // 0 boxes
        act(TT::Float32, &[6]),             // 1 scores
        konst(TT::Int32, &[], &[5i32]),     // 2 max_output_size
        act(TT::Float32, &[]),              // 3 iou_threshold
        act(TT::Float32, &[]),              // 4 score_threshold
        konst(TT::Float32, &[], &[0.5f32]), // 5 sigma
        act(TT::Int32, &[5]),               // 6 V4 selected
        act(TT::Int32, &[]),                // 7 V4 count
        act(TT::Int32, &[5]),               // 8 V5 selected
        act(TT::Float32, &[5]),             // 9 V5 scores
        act(TT::Int32, &[]),                // 10 V5 count
    ];
    let nodes = vec![
        node(Op::NonMaxSuppressionV4, &[0, 1, 2, 3, 4], &[6, 7]),
        node(Op::NonMaxSuppressionV5, &[0, 1, 2, 3, 4, 5], &[8, 9, 10]),
    ];
    let bytes = build(tensors, &[0, 1, 3, 4], &[6, 7, 8, 9, 10], nodes);
    let model = Model::from_bytes(&bytes).unwrap();
    let resolver = OpResolver::with_builtins();
    let it = run(&model, &resolver, |it| {
        it.set_input(0, &BOXES).unwrap();
        it.set_input(1, &[0.9f32, 0.8, 0.7, 0.6, 0.5, 0.1]).unwrap();
        it.set_input(2, &[0.5f32]).unwrap();
        it.set_input(3, &[0.3f32]).unwrap();
    });
    // Hard NMS: 1 and 2 overlap 0 too much; 4 overlaps 3 by 1/3 only.
    assert_eq!(out_shape(&it, 0), [5]);
    assert_eq!(out::<i32>(&it, 0), [0, 3, 4, 0, 0]);
    assert_eq!(out_shape(&it, 1), Vec::<usize>::new());
    assert_eq!(out::<i32>(&it, 1), [3]);
    // Soft-NMS (sigma 0.5), IoU threshold 0.5 still hard: 4's score decays
    // against 3 to 0.5 * exp(-1/9) = 0.447, above the 0.3 threshold.
    assert_eq!(out::<i32>(&it, 2), [0, 3, 4, 0, 0]);
    let scores = out::<f32>(&it, 3);
    assert_eq!(scores[..2], [0.9, 0.6]);
    assert!((scores[2] - 0.5 * (-1.0f32 / 9.0).exp()).abs() < 1e-6, "{scores:?}");
    assert_eq!(scores[3..], [0.0, 0.0]);
    assert_eq!(out::<i32>(&it, 4), [3]);
}

#[test]
fn sparse_to_dense_scalar_value_and_int64_indices() {
    // A scalar value goes to every tuple (TensorFlow's rule).
    let tensors = vec![
        konst(TT::Int64, &[3, 2], &[0i64, 1, 1, 0, 1, 2]), // 0 indices
        konst(TT::Int64, &[2], &[2i64, 3]),                // 1 output_shape
        act(TT::Int8, &[]),                                // 2 value
        konst(TT::Int8, &[], &[-1i8]),                     // 3 default
        act(TT::Int8, &[2, 3]),                            // 4 out
    ];
    let bytes = build(tensors, &[2], &[4], vec![node(Op::SparseToDense, &[0, 1, 2, 3], &[4])]);
    let model = Model::from_bytes(&bytes).unwrap();
    let resolver = OpResolver::with_builtins();
    let it = run(&model, &resolver, |it| it.set_input(0, &[7i8]).unwrap());
    assert_eq!(out::<i8>(&it, 0), [-1, 7, -1, 7, -1, 7]);
}

#[test]
fn matrix_diag_int8_and_set_diag_of_tall_uint8_matrices() {
    let tensors = vec![
        act(TT::Int8, &[3]),     // 0
        act(TT::Int8, &[3, 3]),  // 1 MATRIX_DIAG
        act(TT::Uint8, &[3, 2]), // 2 tall matrix
        act(TT::Uint8, &[2]),    // 3 its diagonal
        act(TT::Uint8, &[3, 2]), // 4 MATRIX_SET_DIAG
    ];
    let nodes = vec![node(Op::MatrixDiag, &[0], &[1]), node(Op::MatrixSetDiag, &[2, 3], &[4])];
    let bytes = build(tensors, &[0, 2, 3], &[1, 4], nodes);
    let model = Model::from_bytes(&bytes).unwrap();
    let resolver = OpResolver::with_builtins();
    let it = run(&model, &resolver, |it| {
        it.set_input(0, &[-1i8, 2, -3]).unwrap();
        it.set_input(1, &[1u8, 2, 3, 4, 5, 6]).unwrap();
        it.set_input(2, &[9u8, 8]).unwrap();
    });
    assert_eq!(out::<i8>(&it, 0), [-1, 0, 0, 0, 2, 0, 0, 0, -3]);
    assert_eq!(out::<u8>(&it, 1), [9, 2, 3, 8, 5, 6]);
}

#[test]
fn unique_of_a_constant_is_folded_at_prepare() {
    let opts = fb::BuiltinOptions::UniqueOptions(Box::new(fb::UniqueOptions { idx_out_type: TT::Int64 }));
    let tensors = vec![
        konst(TT::Float32, &[6], &[2.5f32, -0.0, 2.5, 0.0, 1.0, -0.0]), // 0
        act(TT::Float32, &[6]),                                         // 1 unique (size unknown in the file)
        act(TT::Int64, &[6]),                                           // 2 idx
    ];
    let bytes = build(tensors, &[], &[1, 2], vec![node_with(Op::Unique, &[0], &[1, 2], opts)]);
    let model = Model::from_bytes(&bytes).unwrap();
    let resolver = OpResolver::with_builtins();
    let it = run(&model, &resolver, |_| {});
    // -0.0 and 0.0 are one value (the first one seen).
    assert_eq!(out_shape(&it, 0), [3]);
    let values = out::<f32>(&it, 0);
    assert_eq!(values, [2.5, 0.0, 1.0]);
    assert!(values[1].is_sign_negative());
    assert_eq!(out::<i64>(&it, 1), [0, 1, 0, 1, 2, 1]);
}

fn fake_quant_options(min: f32, max: f32, num_bits: i32, narrow_range: bool) -> fb::BuiltinOptions {
    fb::BuiltinOptions::FakeQuantOptions(Box::new(fb::FakeQuantOptions { min, max, num_bits, narrow_range }))
}

#[test]
fn fake_quant_snaps_to_the_nudged_grid() {
    // 2 bits over [-0.6, 2.4]: scale 1, zero point 0.6 nudged to 1, so the
    // grid is -1, 0, 1, 2; halves round away from the range's start.
    // 8 bits over [-1, 1.55]: scale 0.01, zero point 100, so the range
    // stays [-1, 1.55] (to f32 rounding).
    let tensors = vec![
        act(TT::Float32, &[8]), // 0
        act(TT::Float32, &[8]), // 1 2 bits
        act(TT::Float32, &[8]), // 2 8 bits
    ];
    let nodes = vec![
        node_with(Op::FakeQuant, &[0], &[1], fake_quant_options(-0.6, 2.4, 2, false)),
        node_with(Op::FakeQuant, &[0], &[2], fake_quant_options(-1.0, 1.55, 8, false)),
    ];
    let bytes = build(tensors, &[0], &[1, 2], nodes);
    let model = Model::from_bytes(&bytes).unwrap();
    let resolver = OpResolver::with_builtins();
    let x = [-3.0f32, -0.6, -0.5, 0.49, 0.5, 1.5, 2.2, 1.0];
    let it = run(&model, &resolver, |it| it.set_input(0, &x).unwrap());
    assert_eq!(out::<f32>(&it, 0), [-1.0, -1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 1.0]);
    let scale = (1.55f32 - -1.0) / 255.0;
    let (lo, hi) = (-100.0 * scale, 155.0 * scale);
    let want: Vec<f32> = x
        .iter()
        .map(|&v| {
            let clamped = v.clamp(lo, hi);
            ((clamped - lo) * (1.0 / scale)).round() * scale + lo
        })
        .collect();
    assert_eq!(out::<f32>(&it, 1), want);
    // -3 and 2.2 clamp to the ends of the range; 0.49 is on the grid.
    let got = out::<f32>(&it, 1);
    assert!((got[0] + 1.0).abs() < 1e-6 && (got[6] - 1.55).abs() < 1e-6, "{got:?}");
    assert!((got[3] - 0.49).abs() < 1e-6, "{got:?}");
}

// ---------------------------------------------------------- malformed ---

/// Allocating (or, with `invoke`, running) the one-node model must fail
/// with an error whose text holds `needle`.
fn expect_error(tensors: Vec<T>, inputs: &[i32], outputs: &[i32], n: Node, invoke: bool, needle: &str) {
    let bytes = build(tensors, inputs, outputs, vec![n]);
    let model = Model::from_bytes(&bytes).unwrap();
    let resolver = OpResolver::with_builtins();
    let mut it = Interpreter::new(&model, &resolver, InterpreterOptions::default()).unwrap();
    let err: Error = if invoke {
        it.allocate_tensors().unwrap();
        it.invoke().unwrap_err()
    } else {
        it.allocate_tensors().unwrap_err()
    };
    let msg = err.to_string();
    assert!(msg.contains(needle), "expected '{needle}' in: {msg}");
}

#[test]
fn malformed_rfft2d_is_refused() {
    let t = |x: T, len: T, o: T| vec![x, len, o];
    let x = || act(TT::Float32, &[2, 4]);
    let len = |a: i32, b: i32| konst(TT::Int32, &[2], &[a, b]);
    let o = || act(TT::Complex64, &[2, 3]);
    let n = || node(Op::Rfft2d, &[0, 1], &[2]);
    expect_error(t(x(), len(2, 6), o()), &[0], &[2], n(), false, "powers of two");
    expect_error(t(x(), len(0, 4), o()), &[0], &[2], n(), false, "powers of two");
    expect_error(t(x(), len(-2, 4), o()), &[0], &[2], n(), false, "powers of two");
    expect_error(t(act(TT::Int32, &[2, 4]), len(2, 4), o()), &[0], &[2], n(), false, "input has type int32");
    expect_error(t(act(TT::Float32, &[4]), len(2, 4), o()), &[0], &[2], n(), false, "rank 2 or more");
    expect_error(t(x(), len(2, 4), act(TT::Float32, &[2, 3])), &[0], &[2], n(), false, "output has type float32");
    let l64 = konst(TT::Int64, &[2], &[2i64, 4]);
    expect_error(t(x(), l64, o()), &[0], &[2], n(), false, "fft_length has type int64");
    let l3 = konst(TT::Int32, &[3], &[2i32, 4, 4]);
    expect_error(t(x(), l3, o()), &[0], &[2], n(), false, "shape [2]");
    expect_error(t(x(), act(TT::Int32, &[2]), o()), &[0, 1], &[2], n(), false, "dynamic shapes");
    expect_error(t(x(), len(1 << 30, 4), o()), &[0], &[2], n(), false, "this large");
    expect_error(t(x(), len(2, 4), o()), &[0], &[2], node(Op::Rfft2d, &[0], &[2]), false, "expected 2 inputs");
}

#[test]
fn malformed_complex_parts_are_refused() {
    let t = |i: TT, o: TT| vec![act(i, &[3]), act(o, &[3])];
    expect_error(t(TT::Float32, TT::Float32), &[0], &[1], node(Op::Real, &[0], &[1]), false, "REAL input has type");
    let n = node(Op::ComplexAbs, &[0], &[1]);
    expect_error(t(TT::Complex64, TT::Float64), &[0], &[1], n, false, "COMPLEX_ABS output has type float64");
    let n = node(Op::Imag, &[0], &[1]);
    expect_error(t(TT::Complex128, TT::Float32), &[0], &[1], n, false, "IMAG output has type float32");
    let n = node(Op::Imag, &[0, 0], &[1]);
    expect_error(t(TT::Complex64, TT::Float32), &[0], &[1], n, false, "expected 1 inputs");
}

#[test]
fn malformed_non_max_suppression_is_refused() {
    let t = |boxes: T, scores: T, max: T| {
        vec![
            boxes,
            scores,
            max,
            konst(TT::Float32, &[], &[0.5f32]),
            konst(TT::Float32, &[], &[0.0f32]),
            act(TT::Float32, &[]), // 5 sigma (computed)
            act(TT::Int32, &[4]),
            act(TT::Float32, &[4]),
            act(TT::Int32, &[]),
        ]
    };
    let boxes = || act(TT::Float32, &[6, 4]);
    let scores = || act(TT::Float32, &[6]);
    let max = || konst(TT::Int32, &[], &[4i32]);
    let v4 = || node(Op::NonMaxSuppressionV4, &[0, 1, 2, 3, 4], &[6, 8]);
    let v5 = || node(Op::NonMaxSuppressionV5, &[0, 1, 2, 3, 4, 5], &[6, 7, 8]);
    expect_error(t(act(TT::Float32, &[6, 3]), scores(), max()), &[0, 1, 5], &[6], v4(), false, "[num_boxes, 4]");
    expect_error(t(boxes(), act(TT::Float32, &[5]), max()), &[0, 1, 5], &[6], v4(), false, "one per box");
    expect_error(t(boxes(), scores(), act(TT::Int32, &[])), &[0, 1, 2, 5], &[6], v4(), false, "dynamic shapes");
    let neg = konst(TT::Int32, &[], &[-1i32]);
    expect_error(t(boxes(), scores(), neg), &[0, 1, 5], &[6], v4(), false, "must not be negative");
    let b8 = act(TT::Int8, &[6, 4]);
    expect_error(t(b8, act(TT::Int8, &[6]), max()), &[0, 1, 5], &[6], v4(), false, "quantised boxes");
    let bi = act(TT::Int32, &[6, 4]);
    expect_error(t(bi, scores(), max()), &[0, 1, 5], &[6], v4(), false, "boxes has type int32");
    let short = node(Op::NonMaxSuppressionV5, &[0, 1, 2, 3, 4], &[6, 7, 8]);
    expect_error(t(boxes(), scores(), max()), &[0, 1, 5], &[6], short, false, "expected 6 inputs");
    let three = node(Op::NonMaxSuppressionV4, &[0, 1, 2, 3, 4], &[6, 7, 8]);
    expect_error(t(boxes(), scores(), max()), &[0, 1, 5], &[6], three, false, "expected 2 outputs");
    let mut tt = t(boxes(), scores(), max());
    tt[3] = konst(TT::Float32, &[2], &[0.5f32, 0.5]);
    expect_error(tt, &[0, 1, 5], &[6], v4(), false, "iou_threshold must hold one value");
    let mut tt = t(boxes(), scores(), max());
    tt[5] = konst(TT::Float32, &[], &[-1.0f32]);
    expect_error(tt, &[0, 1], &[6], v5(), false, "soft_nms_sigma is -1");
    let mut tt = t(boxes(), scores(), max());
    tt[8] = act(TT::Float32, &[]);
    expect_error(tt, &[0, 1, 5], &[6], v5(), false, "valid_outputs has type float32");
    // A negative computed sigma: an error at invoke (sigma reads as 0).
    let bytes = build(t(boxes(), scores(), max()), &[0, 1, 5], &[6, 7, 8], vec![v5()]);
    let model = Model::from_bytes(&bytes).unwrap();
    let resolver = OpResolver::with_builtins();
    let mut it = Interpreter::new(&model, &resolver, InterpreterOptions::default()).unwrap();
    it.allocate_tensors().unwrap();
    it.set_input(2, &[-0.5f32]).unwrap();
    let e = it.invoke().unwrap_err().to_string();
    assert!(e.contains("soft_nms_sigma is -0.5"), "{e}");
}

#[test]
fn malformed_sparse_to_dense_is_refused() {
    let t = |idx: T, shape: T, values: T, default: T| vec![idx, shape, values, default, act(TT::Float32, &[2, 3])];
    let idx = || konst(TT::Int32, &[2, 2], &[0i32, 1, 1, 2]);
    let shape = || konst(TT::Int32, &[2], &[2i32, 3]);
    let values = || act(TT::Float32, &[2]);
    let default = || konst(TT::Float32, &[], &[0.0f32]);
    let n = || node(Op::SparseToDense, &[0, 1, 2, 3], &[4]);
    let bad = konst(TT::Int32, &[2, 2], &[0i32, 1, 1, 3]);
    expect_error(t(bad, shape(), values(), default()), &[2], &[4], n(), true, "index 3 (tuple 1, position 1)");
    let deep = konst(TT::Int32, &[2, 3], &[0i32; 6]);
    expect_error(t(deep, shape(), values(), default()), &[2], &[4], n(), false, "do not fit");
    let three = act(TT::Float32, &[3]);
    expect_error(t(idx(), shape(), three, default()), &[2], &[4], n(), false, "one value per index tuple (2)");
    let d32 = konst(TT::Int32, &[], &[0i32]);
    expect_error(t(idx(), shape(), values(), d32), &[2], &[4], n(), false, "default_value has type int32");
    let dyn_shape = act(TT::Int32, &[2]);
    expect_error(t(idx(), dyn_shape, values(), default()), &[1, 2], &[4], n(), false, "dynamic shapes");
    let neg = konst(TT::Int32, &[2], &[2i32, -3]);
    expect_error(t(idx(), neg, values(), default()), &[2], &[4], n(), false, "is negative");
    let b = act(TT::Bool, &[2]);
    expect_error(t(idx(), shape(), b, default()), &[2], &[4], n(), false, "values has type bool");
    let four = node(Op::SparseToDense, &[0, 1, 2], &[4]);
    expect_error(t(idx(), shape(), values(), default()), &[2], &[4], four, false, "expected 4 inputs");
}

#[test]
fn malformed_matrix_diag_ops_are_refused() {
    let t = vec![act(TT::Float32, &[]), act(TT::Float32, &[1, 1])];
    expect_error(t, &[0], &[1], node(Op::MatrixDiag, &[0], &[1]), false, "rank 1 or more");
    let t = vec![act(TT::Bool, &[2]), act(TT::Bool, &[2, 2])];
    expect_error(t, &[0], &[1], node(Op::MatrixDiag, &[0], &[1]), false, "input has type bool");
    let t = vec![act(TT::Float32, &[2]), act(TT::Int32, &[2, 2])];
    expect_error(t, &[0], &[1], node(Op::MatrixDiag, &[0], &[1]), false, "output has type int32");
    let set = || node(Op::MatrixSetDiag, &[0, 1], &[2]);
    let t = vec![act(TT::Float32, &[2, 3, 4]), act(TT::Float32, &[2, 4]), act(TT::Float32, &[2, 3, 4])];
    expect_error(t, &[0, 1], &[2], set(), false, "diagonal must have shape [2, 3]");
    let t = vec![act(TT::Float32, &[3]), act(TT::Float32, &[3]), act(TT::Float32, &[3])];
    expect_error(t, &[0, 1], &[2], set(), false, "rank 2 or more");
    let t = vec![act(TT::Float32, &[2, 2]), act(TT::Int32, &[2]), act(TT::Float32, &[2, 2])];
    expect_error(t, &[0, 1], &[2], set(), false, "diagonal has type int32");
    let t = vec![act(TT::Float32, &[2, 2]), act(TT::Float32, &[2]), act(TT::Float32, &[2, 2])];
    expect_error(t, &[0, 1], &[2], node(Op::MatrixSetDiag, &[0], &[2]), false, "expected 2 inputs");
}

#[test]
fn malformed_unique_is_refused() {
    let t = |x: T, idx: TT| vec![x, act(TT::Int32, &[4]), act(idx, &[4])];
    let n = || node(Op::Unique, &[0], &[1, 2]);
    // A computed input in the main graph: the output size is unknown.
    expect_error(t(act(TT::Int32, &[4]), TT::Int32), &[0], &[1, 2], n(), false, "dynamic shapes");
    let c2 = konst(TT::Int32, &[2, 2], &[1i32, 2, 3, 4]);
    expect_error(t(c2, TT::Int32), &[], &[1, 2], n(), false, "must be 1-D");
    let c = || konst(TT::Int32, &[4], &[1i32, 2, 1, 4]);
    expect_error(t(c(), TT::Int64), &[], &[1, 2], n(), false, "idx output has type int64");
    let opts = fb::BuiltinOptions::UniqueOptions(Box::new(fb::UniqueOptions { idx_out_type: TT::Int16 }));
    let bad = node_with(Op::Unique, &[0], &[1, 2], opts);
    expect_error(t(c(), TT::Int16), &[], &[1, 2], bad, false, "INT32 or INT64");
    let b = konst(TT::Bool, &[4], &[1u8, 0, 1, 1]);
    expect_error(t(b, TT::Int32), &[], &[1, 2], n(), false, "input has type bool");
    expect_error(t(c(), TT::Int32), &[], &[1], node(Op::Unique, &[0], &[1]), false, "expected 2 outputs");
}

#[test]
fn malformed_fake_quant_is_refused() {
    let t = || vec![act(TT::Float32, &[3]), act(TT::Float32, &[3])];
    let n = |o| node_with(Op::FakeQuant, &[0], &[1], o);
    expect_error(t(), &[0], &[1], node(Op::FakeQuant, &[0], &[1]), false, "needs its options");
    expect_error(t(), &[0], &[1], n(fake_quant_options(-1.0, 1.0, 1, false)), false, "num_bits is 1");
    expect_error(t(), &[0], &[1], n(fake_quant_options(-1.0, 1.0, 17, false)), false, "num_bits is 17");
    expect_error(t(), &[0], &[1], n(fake_quant_options(1.0, 1.0, 8, false)), false, "min < max");
    expect_error(t(), &[0], &[1], n(fake_quant_options(f32::NAN, 1.0, 8, false)), false, "min < max");
    expect_error(t(), &[0], &[1], n(fake_quant_options(-1.0, 1.0, 8, true)), false, "narrow_range");
    let t8 = vec![act(TT::Int8, &[3]), act(TT::Int8, &[3])];
    expect_error(t8, &[0], &[1], n(fake_quant_options(-1.0, 1.0, 8, false)), false, "input has type int8");
    let bad = fb::BuiltinOptions::UniqueOptions(Box::new(fb::UniqueOptions { idx_out_type: TT::Int32 }));
    expect_error(t(), &[0], &[1], n(bad), false, "expected FakeQuantOptions");
}
