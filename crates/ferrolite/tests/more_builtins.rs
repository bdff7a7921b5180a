//! ONE_HOT, REDUCE_ANY/ALL, ATAN2, SCATTER_ND, BROADCAST_ARGS, the segment
//! ops, DYNAMIC_UPDATE_SLICE, BUCKETIZE and REVERSE_SEQUENCE: whole models
//! against LiteRT (`tools/make_fixtures.py`), hand-built models for the
//! cases the fixtures do not reach, and malformed nodes that must be
//! refused with an error.

use fb::{BuiltinOperator as Op, TensorType as TT};
use ferrolite::schema as fb;
use ferrolite::{Element, Error, Interpreter, InterpreterOptions, Model, OpResolver};

mod support;
use support::builder::{act, build, konst, node, node_with, Node, T};
use support::{check_exact_fixture, check_float_fixture};

// ------------------------------------------------------------ fixtures ---

#[test]
fn one_hot_matches_litert() {
    check_float_fixture("one_hot.f32", 1);
}

#[test]
fn reduce_any_all_match_litert() {
    check_exact_fixture("reduce_any_all.f32", 1);
}

#[test]
fn atan2_matches_litert() {
    check_float_fixture("atan2.f32", 1);
}

#[test]
fn scatter_nd_matches_litert() {
    check_float_fixture("scatter_nd.f32", 1);
}

#[test]
fn broadcast_args_matches_litert() {
    check_exact_fixture("broadcast_args.f32", 1);
}

#[test]
fn segment_sum_matches_litert() {
    check_float_fixture("segment_sum.f32", 1);
}

#[test]
fn unsorted_segment_ops_match_litert() {
    // Exact even in float: the folds run in LiteRT's row order, and the
    // empty segments hold f32::MIN / f32::MAX, which would make the float
    // rule's relative tolerance meaningless.
    check_exact_fixture("unsorted_segment.f32", 1);
}

#[test]
fn dynamic_update_slice_matches_litert() {
    check_float_fixture("dynamic_update_slice.f32", 1);
}

#[test]
fn bucketize_matches_litert() {
    check_exact_fixture("bucketize.f32", 1);
}

#[test]
fn reverse_sequence_matches_litert() {
    check_float_fixture("reverse_sequence.f32", 1);
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

fn out_shape(it: &Interpreter<'_>, i: usize) -> Vec<usize> {
    it.output(i).unwrap().shape().to_vec()
}

fn one_hot_options(axis: i32) -> fb::BuiltinOptions {
    fb::BuiltinOptions::OneHotOptions(Box::new(fb::OneHotOptions { axis }))
}

#[test]
fn one_hot_bool_and_int64_indices_on_the_first_axis() {
    let tensors = vec![
        act(TT::Int64, &[3]),           // 0 indices
        konst(TT::Int32, &[], &[2i32]), // 1 depth
        konst(TT::Bool, &[], &[1u8]),   // 2 on
        konst(TT::Bool, &[], &[0u8]),   // 3 off
        act(TT::Bool, &[2, 3]),         // 4 out
    ];
    let bytes = build(tensors, &[0], &[4], vec![node_with(Op::OneHot, &[0, 1, 2, 3], &[4], one_hot_options(0))]);
    let model = Model::from_bytes(&bytes).unwrap();
    let resolver = OpResolver::with_builtins();
    let it = run(&model, &resolver, |it| it.set_input(0, &[1i64, 0, 7]).unwrap());
    assert_eq!(out_shape(&it, 0), [2, 3]);
    assert_eq!(out::<u8>(&it, 0), [0, 1, 0, 1, 0, 0]);
}

#[test]
fn reduce_any_and_all_keep_dims_on_bool() {
    let keep = fb::BuiltinOptions::ReducerOptions(Box::new(fb::ReducerOptions { keep_dims: true }));
    let tensors = vec![
        act(TT::Bool, &[2, 3]),              // 0
        konst(TT::Int32, &[1], &[-1i32]),    // 1 axes
        act(TT::Bool, &[2, 1]),              // 2 ANY
        act(TT::Bool, &[2]),                 // 3 ALL
        konst(TT::Int32, &[2], &[0i32, -1]), // 4 both axes
        act(TT::Bool, &[]),                  // 5 ANY of everything
    ];
    let nodes = vec![
        node_with(Op::ReduceAny, &[0, 1], &[2], keep),
        node(Op::ReduceAll, &[0, 1], &[3]),
        node(Op::ReduceAny, &[0, 4], &[5]),
    ];
    let bytes = build(tensors, &[0], &[2, 3, 5], nodes);
    let model = Model::from_bytes(&bytes).unwrap();
    let resolver = OpResolver::with_builtins();
    let it = run(&model, &resolver, |it| it.set_input(0, &[0u8, 1, 0, 1, 1, 1]).unwrap());
    assert_eq!(out_shape(&it, 0), [2, 1]);
    assert_eq!(out::<u8>(&it, 0), [1, 1]);
    assert_eq!(out::<u8>(&it, 1), [0, 1]);
    assert_eq!(out_shape(&it, 2), Vec::<usize>::new());
    assert_eq!(out::<u8>(&it, 2), [1]);
}

#[test]
fn scatter_nd_int32_updates_of_elements() {
    let tensors = vec![
        konst(TT::Int32, &[3, 2], &[0i32, 1, 1, 2, 0, 1]), // 0 indices: (0,1) twice
        act(TT::Int32, &[3]),                              // 1 updates
        konst(TT::Int32, &[2], &[2i32, 3]),                // 2 shape
        act(TT::Int32, &[2, 3]),                           // 3 out
    ];
    let bytes = build(tensors, &[1], &[3], vec![node(Op::ScatterNd, &[0, 1, 2], &[3])]);
    let model = Model::from_bytes(&bytes).unwrap();
    let resolver = OpResolver::with_builtins();
    let it = run(&model, &resolver, |it| it.set_input(0, &[5i32, 6, 7]).unwrap());
    assert_eq!(out::<i32>(&it, 0), [0, 12, 0, 0, 0, 6]);
}

#[test]
fn dynamic_update_slice_int8_clamps_its_start() {
    let tensors = vec![
        act(TT::Int8, &[2, 3]), // 0 operand
        act(TT::Int8, &[1, 2]), // 1 update
        act(TT::Int64, &[2]),   // 2 start
        act(TT::Int8, &[2, 3]), // 3 out
    ];
    let bytes = build(tensors, &[0, 1, 2], &[3], vec![node(Op::DynamicUpdateSlice, &[0, 1, 2], &[3])]);
    let model = Model::from_bytes(&bytes).unwrap();
    let resolver = OpResolver::with_builtins();
    let it = run(&model, &resolver, |it| {
        it.set_input(0, &[1i8, 2, 3, 4, 5, 6]).unwrap();
        it.set_input(1, &[-1i8, -2]).unwrap();
        it.set_input(2, &[7i64, -4]).unwrap(); // clamped to (1, 0)
    });
    assert_eq!(out::<i8>(&it, 0), [1, 2, 3, -1, -2, 6]);
}

#[test]
fn bucketize_int32_and_reverse_sequence_int64_lengths() {
    let bucket =
        fb::BuiltinOptions::BucketizeOptions(Box::new(fb::BucketizeOptions { boundaries: Some(vec![0.0, 2.5, 10.0]) }));
    let rs =
        fb::BuiltinOptions::ReverseSequenceOptions(Box::new(fb::ReverseSequenceOptions { seq_dim: 1, batch_dim: 0 }));
    let tensors = vec![
        act(TT::Int32, &[2, 3]),            // 0
        act(TT::Int32, &[2, 3]),            // 1 BUCKETIZE
        konst(TT::Int64, &[2], &[2i64, 3]), // 2 lengths
        act(TT::Int32, &[2, 3]),            // 3 REVERSE_SEQUENCE
    ];
    let nodes = vec![node_with(Op::Bucketize, &[0], &[1], bucket), node_with(Op::ReverseSequence, &[0, 2], &[3], rs)];
    let bytes = build(tensors, &[0], &[1, 3], nodes);
    let model = Model::from_bytes(&bytes).unwrap();
    let resolver = OpResolver::with_builtins();
    let it = run(&model, &resolver, |it| it.set_input(0, &[-1i32, 0, 2, 3, 10, 11]).unwrap());
    assert_eq!(out::<i32>(&it, 0), [0, 1, 1, 2, 3, 3]);
    assert_eq!(out::<i32>(&it, 1), [0, -1, 2, 11, 10, 3]);
}

#[test]
fn unsorted_segment_with_computed_ids_and_int32_segment_sum() {
    let tensors = vec![
        act(TT::Int32, &[4, 2]),                  // 0 data
        act(TT::Int32, &[4]),                     // 1 ids (computed)
        konst(TT::Int32, &[1], &[3i32]),          // 2 num_segments
        act(TT::Int32, &[3, 2]),                  // 3 UNSORTED_SEGMENT_MIN
        konst(TT::Int32, &[4], &[0i32, 1, 1, 1]), // 4 sorted ids
        act(TT::Int32, &[2, 2]),                  // 5 SEGMENT_SUM
    ];
    let nodes = vec![node(Op::UnsortedSegmentMin, &[0, 1, 2], &[3]), node(Op::SegmentSum, &[0, 4], &[5])];
    let bytes = build(tensors, &[0, 1], &[3, 5], nodes);
    let model = Model::from_bytes(&bytes).unwrap();
    let resolver = OpResolver::with_builtins();
    let it = run(&model, &resolver, |it| {
        it.set_input(0, &[1i32, 8, 3, 4, 5, 6, 7, 2]).unwrap();
        it.set_input(1, &[2i32, 0, -1, 2]).unwrap();
    });
    assert_eq!(out::<i32>(&it, 0), [3, 4, i32::MAX, i32::MAX, 1, 2]);
    assert_eq!(out_shape(&it, 1), [2, 2]);
    assert_eq!(out::<i32>(&it, 1), [1, 8, 15, 12]);
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
fn malformed_one_hot_is_refused() {
    let base = || {
        vec![
            act(TT::Int32, &[3]),
            konst(TT::Int32, &[], &[4i32]),
            konst(TT::Float32, &[], &[1.0f32]),
            konst(TT::Float32, &[], &[0.0f32]),
            act(TT::Float32, &[3, 4]),
        ]
    };
    expect_error(base(), &[0], &[4], node(Op::OneHot, &[0, 1, 2], &[4]), false, "expected 4 inputs");
    let mut t = base();
    t[0] = act(TT::Float32, &[3]);
    expect_error(t, &[0], &[4], node(Op::OneHot, &[0, 1, 2, 3], &[4]), false, "indices has type float32");
    let mut t = base();
    t[3] = konst(TT::Int32, &[], &[0i32]);
    expect_error(t, &[0], &[4], node(Op::OneHot, &[0, 1, 2, 3], &[4]), false, "off_value has type int32");
    let mut t = base();
    t[1] = act(TT::Int32, &[]);
    expect_error(t, &[0, 1], &[4], node(Op::OneHot, &[0, 1, 2, 3], &[4]), false, "dynamic shapes");
    expect_error(base(), &[0], &[4], node_with(Op::OneHot, &[0, 1, 2, 3], &[4], one_hot_options(3)), false, "axis 3");
}

#[test]
fn malformed_reduce_any_is_refused() {
    let t = || vec![act(TT::Float32, &[2, 3]), konst(TT::Int32, &[1], &[1i32]), act(TT::Bool, &[2])];
    expect_error(t(), &[0], &[2], node(Op::ReduceAny, &[0, 1], &[2]), false, "input has type float32");
    expect_error(t(), &[0], &[2], node(Op::ReduceAll, &[0], &[2]), false, "expected 2 inputs");
    let t = vec![act(TT::Bool, &[2, 3]), konst(TT::Int32, &[1], &[2i32]), act(TT::Bool, &[2])];
    expect_error(t, &[0], &[2], node(Op::ReduceAll, &[0, 1], &[2]), false, "axis 2 is out of range");
}

#[test]
fn malformed_atan2_is_refused() {
    let t = vec![act(TT::Float32, &[2, 3]), act(TT::Float32, &[3]), act(TT::Float32, &[2, 3])];
    expect_error(t, &[0, 1], &[2], node(Op::Atan2, &[0, 1], &[2]), false, "differ in shape");
    let t = vec![act(TT::Int32, &[3]), act(TT::Int32, &[3]), act(TT::Int32, &[3])];
    expect_error(t, &[0, 1], &[2], node(Op::Atan2, &[0, 1], &[2]), false, "has type int32");
    let t = vec![act(TT::Float32, &[3]), act(TT::Float32, &[3])];
    expect_error(t, &[0], &[1], node(Op::Atan2, &[0], &[1]), false, "expected 2 inputs");
}

#[test]
fn malformed_scatter_nd_is_refused() {
    let t = |idx: T, shape: T| vec![idx, act(TT::Float32, &[2, 2]), shape, act(TT::Float32, &[4, 2])];
    let shape = || konst(TT::Int32, &[2], &[4i32, 2]);
    // An index past the output: an error at invoke, naming the index.
    let idx = konst(TT::Int32, &[2, 1], &[1i32, 4]);
    expect_error(t(idx, shape()), &[1], &[3], node(Op::ScatterNd, &[0, 1, 2], &[3]), true, "index 4");
    let idx = || konst(TT::Int32, &[2, 1], &[1i32, 2]);
    let n = || node(Op::ScatterNd, &[0, 1, 2], &[3]);
    expect_error(t(idx(), act(TT::Int32, &[2])), &[1, 2], &[3], n(), false, "dynamic shapes");
    expect_error(t(idx(), konst(TT::Int64, &[2], &[4i64, 2])), &[1], &[3], n(), false, "shape has type int64");
    expect_error(t(idx(), konst(TT::Int32, &[2], &[4i32, 3])), &[1], &[3], n(), false, "do not fit");
    expect_error(t(idx(), shape()), &[1], &[3], node(Op::ScatterNd, &[0, 1], &[3]), false, "expected 3 inputs");
}

#[test]
fn malformed_broadcast_args_is_refused() {
    let t = vec![act(TT::Int32, &[2]), act(TT::Int32, &[2]), act(TT::Int32, &[2])];
    let n = node(Op::BroadcastArgs, &[0, 1], &[2]);
    let bytes = build(t, &[0, 1], &[2], vec![n]);
    let model = Model::from_bytes(&bytes).unwrap();
    let resolver = OpResolver::with_builtins();
    let mut it = Interpreter::new(&model, &resolver, InterpreterOptions::default()).unwrap();
    it.allocate_tensors().unwrap();
    it.set_input(0, &[2i32, 3]).unwrap();
    it.set_input(1, &[4i32, 3]).unwrap();
    let e = it.invoke().unwrap_err().to_string();
    assert!(e.contains("do not broadcast"), "{e}");
    let t = vec![act(TT::Int32, &[2]), act(TT::Int64, &[2]), act(TT::Int32, &[2])];
    expect_error(t, &[0, 1], &[2], node(Op::BroadcastArgs, &[0, 1], &[2]), false, "has type int64");
    let t = vec![act(TT::Float32, &[2]), act(TT::Float32, &[2]), act(TT::Float32, &[2])];
    expect_error(t, &[0, 1], &[2], node(Op::BroadcastArgs, &[0, 1], &[2]), false, "has type float32");
}

#[test]
fn malformed_segment_ops_are_refused() {
    let data = || act(TT::Float32, &[3, 2]);
    let sum = || node(Op::SegmentSum, &[0, 1], &[2]);
    let t = vec![data(), konst(TT::Int32, &[3], &[0i32, 2, 2]), act(TT::Float32, &[3, 2])];
    expect_error(t, &[0], &[2], sum(), false, "segment id 2 at position 1");
    let t = vec![data(), act(TT::Int32, &[3]), act(TT::Float32, &[3, 2])];
    expect_error(t, &[0, 1], &[2], sum(), false, "dynamic shapes");
    let t = vec![data(), konst(TT::Int32, &[2], &[0i32, 0]), act(TT::Float32, &[3, 2])];
    expect_error(t, &[0], &[2], sum(), false, "one segment id per data row");
    let t = vec![act(TT::Int8, &[3, 2]), konst(TT::Int32, &[3], &[0i32, 0, 0]), act(TT::Int8, &[1, 2])];
    expect_error(t, &[0], &[2], sum(), false, "data has type int8");

    let unsorted = |ids: T| vec![data(), ids, konst(TT::Int32, &[], &[2i32]), act(TT::Float32, &[2, 2])];
    let max = || node(Op::UnsortedSegmentMax, &[0, 1, 2], &[3]);
    let t = unsorted(konst(TT::Int32, &[3], &[0i32, 2, 1]));
    expect_error(t, &[0], &[3], max(), false, "segment id 2 at position 1");
    let t = unsorted(act(TT::Int32, &[3]));
    let bytes = build(t, &[0, 1], &[3], vec![max()]);
    let model = Model::from_bytes(&bytes).unwrap();
    let resolver = OpResolver::with_builtins();
    let mut it = Interpreter::new(&model, &resolver, InterpreterOptions::default()).unwrap();
    it.allocate_tensors().unwrap();
    it.set_input(1, &[0i32, 5, 1]).unwrap();
    let e = it.invoke().unwrap_err().to_string();
    assert!(e.contains("segment id 5 at position 1"), "{e}");
    let t = unsorted(konst(TT::Int32, &[3], &[0i32, 0, 0]));
    expect_error(t, &[0], &[3], node(Op::UnsortedSegmentProd, &[0, 1], &[3]), false, "expected 3 inputs");
    let t = unsorted(konst(TT::Int64, &[3], &[0i64, 0, 0]));
    expect_error(t, &[0], &[3], node(Op::UnsortedSegmentSum, &[0, 1, 2], &[3]), false, "ids has type int64");
    let t = vec![data(), konst(TT::Int32, &[3], &[0i32, 0, 0]), act(TT::Int32, &[]), act(TT::Float32, &[2, 2])];
    expect_error(t, &[0, 2], &[3], node(Op::UnsortedSegmentMin, &[0, 1, 2], &[3]), false, "dynamic shapes");
}

#[test]
fn malformed_dynamic_update_slice_is_refused() {
    let t = |u: T, s: T| vec![act(TT::Float32, &[2, 3]), u, s, act(TT::Float32, &[2, 3])];
    let n = || node(Op::DynamicUpdateSlice, &[0, 1, 2], &[3]);
    expect_error(t(act(TT::Float32, &[3, 1]), act(TT::Int32, &[2])), &[0, 1, 2], &[3], n(), false, "does not fit");
    expect_error(t(act(TT::Int32, &[1, 1]), act(TT::Int32, &[2])), &[0, 1, 2], &[3], n(), false, "update has type");
    expect_error(t(act(TT::Float32, &[1, 1]), act(TT::Float32, &[2])), &[0, 1, 2], &[3], n(), false, "start indices");
    expect_error(t(act(TT::Float32, &[1, 1]), act(TT::Int32, &[3])), &[0, 1, 2], &[3], n(), false, "one value per");
    let two = node(Op::DynamicUpdateSlice, &[0, 1], &[3]);
    expect_error(t(act(TT::Float32, &[1, 1]), act(TT::Int32, &[2])), &[0, 1, 2], &[3], two, false, "expected 3");
}

#[test]
fn malformed_bucketize_is_refused() {
    let opts =
        |b: Vec<f32>| fb::BuiltinOptions::BucketizeOptions(Box::new(fb::BucketizeOptions { boundaries: Some(b) }));
    let t = || vec![act(TT::Float32, &[3]), act(TT::Int32, &[3])];
    expect_error(t(), &[0], &[1], node_with(Op::Bucketize, &[0], &[1], opts(vec![1.0, 0.0])), false, "sorted");
    let t8 = vec![act(TT::Int8, &[3]), act(TT::Int32, &[3])];
    expect_error(t8, &[0], &[1], node_with(Op::Bucketize, &[0], &[1], opts(vec![0.0])), false, "has type int8");
    let tf = vec![act(TT::Float32, &[3]), act(TT::Float32, &[3])];
    expect_error(tf, &[0], &[1], node_with(Op::Bucketize, &[0], &[1], opts(vec![0.0])), false, "output has type");
    expect_error(t(), &[0], &[1], node(Op::Bucketize, &[], &[1]), false, "expected 1 inputs");
}

#[test]
fn malformed_reverse_sequence_is_refused() {
    let opts = |seq_dim, batch_dim| {
        fb::BuiltinOptions::ReverseSequenceOptions(Box::new(fb::ReverseSequenceOptions { seq_dim, batch_dim }))
    };
    let t = |lens: T| vec![act(TT::Float32, &[2, 3]), lens, act(TT::Float32, &[2, 3])];
    let n = |s, b| node_with(Op::ReverseSequence, &[0, 1], &[2], opts(s, b));
    // A length past the sequence: an error at invoke, naming it.
    expect_error(t(konst(TT::Int32, &[2], &[1i32, 4])), &[0], &[2], n(1, 0), true, "seq_lengths[1] = 4");
    expect_error(t(konst(TT::Int32, &[3], &[1i32, 1, 1])), &[0], &[2], n(1, 0), false, "one length per batch");
    expect_error(t(konst(TT::Int32, &[2], &[1i32, 1])), &[0], &[2], n(2, 0), false, "seq_dim 2");
    expect_error(t(konst(TT::Int32, &[2], &[1i32, 1])), &[0], &[2], n(0, 0), false, "both 0");
    expect_error(t(konst(TT::Float32, &[2], &[1.0f32, 1.0])), &[0], &[2], n(1, 0), false, "has type float32");
}
