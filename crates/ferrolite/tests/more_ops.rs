//! End-to-end checks of comparison, selection, shape-making, index and
//! sparse ops on tiny hand-built models.

use fb::{BuiltinOperator as Op, TensorType as TT};
use ferrolite::schema as fb;
use ferrolite::{Element, Interpreter, InterpreterOptions, Model, OpResolver};

mod support;
use support::builder::{act, build, konst, node, node_with, Node, T};

/// Allocate, fill the inputs with `feed`, invoke, and hand back the
/// interpreter for reading outputs.
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

#[test]
fn comparisons_and_logical_ops_broadcast() {
    // a [2,3], b [3]; six comparisons, then AND / OR / NOT on their results.
    let mut tensors = vec![act(TT::Float32, &[2, 3]), act(TT::Float32, &[3])];
    tensors.extend((0..9).map(|_| act(TT::Bool, &[2, 3])));
    let ops = [Op::Less, Op::LessEqual, Op::Greater, Op::GreaterEqual, Op::Equal, Op::NotEqual];
    let mut nodes: Vec<Node> = ops.iter().enumerate().map(|(k, &op)| node(op, &[0, 1], &[2 + k as i32])).collect();
    nodes.push(node(Op::LogicalAnd, &[2, 7], &[8])); // less && not_equal
    nodes.push(node(Op::LogicalOr, &[6, 4], &[9])); // equal || greater
    nodes.push(node(Op::LogicalNot, &[2], &[10])); // !less
    let bytes = build(tensors, &[0, 1], &(2..11).collect::<Vec<_>>(), nodes);
    let model = Model::from_bytes(&bytes).unwrap();
    let resolver = OpResolver::with_builtins();
    let it = run(&model, &resolver, |it| {
        it.set_input(0, &[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        it.set_input(1, &[2.0f32, 5.0, 3.0]).unwrap();
    });
    assert_eq!(out::<u8>(&it, 0), [1, 1, 0, 0, 0, 0]); // <
    assert_eq!(out::<u8>(&it, 1), [1, 1, 1, 0, 1, 0]); // <=
    assert_eq!(out::<u8>(&it, 2), [0, 0, 0, 1, 0, 1]); // >
    assert_eq!(out::<u8>(&it, 3), [0, 0, 1, 1, 1, 1]); // >=
    assert_eq!(out::<u8>(&it, 4), [0, 0, 1, 0, 1, 0]); // ==
    assert_eq!(out::<u8>(&it, 5), [1, 1, 0, 1, 0, 1]); // !=
    assert_eq!(out::<u8>(&it, 6), [1, 1, 0, 0, 0, 0]);
    assert_eq!(out::<u8>(&it, 7), [0, 0, 1, 1, 1, 1]);
    assert_eq!(out::<u8>(&it, 8), [0, 0, 1, 1, 1, 1]);
    assert_eq!(out_shape(&it, 0), [2, 3]);
}

#[test]
fn quantized_comparison_rescales() {
    // int8 a (scale 0.5) vs b (scale 0.25, zero point 2): 4 and 10 both mean 2.0.
    let q = |s: f32, z: i64| fb::QuantizationParameters {
        scale: Some(vec![s]),
        zero_point: Some(vec![z]),
        ..Default::default()
    };
    let a = T { quant: Some(q(0.5, 0)), ..act(TT::Int8, &[3]) };
    let b = T { quant: Some(q(0.25, 2)), ..act(TT::Int8, &[3]) };
    let bytes = build(vec![a, b, act(TT::Bool, &[3])], &[0, 1], &[2], vec![node(Op::Equal, &[0, 1], &[2])]);
    let model = Model::from_bytes(&bytes).unwrap();
    let resolver = OpResolver::with_builtins();
    let it = run(&model, &resolver, |it| {
        it.set_input(0, &[4i8, 4, -2]).unwrap();
        it.set_input(1, &[10i8, 9, -2]).unwrap();
    });
    assert_eq!(out::<u8>(&it, 0), [1, 0, 1]);
}

#[test]
fn select_select_v2_and_where() {
    let tensors = vec![
        act(TT::Bool, &[2]),                             // 0 cond (rank one)
        act(TT::Float32, &[2, 2]),                       // 1 x
        act(TT::Float32, &[2, 2]),                       // 2 y
        act(TT::Float32, &[2, 2]),                       // 3 SELECT out
        act(TT::Bool, &[2, 1]),                          // 4 cond2
        konst(TT::Float32, &[], &[-1.0f32]),             // 5 scalar y
        act(TT::Float32, &[2, 2]),                       // 6 SELECT_V2 out
        konst(TT::Bool, &[2, 3], &[0u8, 1, 0, 1, 1, 0]), // 7 constant condition
        act(TT::Int64, &[3, 2]),                         // 8 WHERE out
    ];
    let nodes =
        vec![node(Op::Select, &[0, 1, 2], &[3]), node(Op::SelectV2, &[4, 1, 5], &[6]), node(Op::Where, &[7], &[8])];
    let bytes = build(tensors, &[0, 1, 2, 4], &[3, 6, 8], nodes);
    let model = Model::from_bytes(&bytes).unwrap();
    let resolver = OpResolver::with_builtins();
    let it = run(&model, &resolver, |it| {
        it.set_input(0, &[0u8, 1]).unwrap();
        it.set_input(1, &[1.0f32, 2.0, 3.0, 4.0]).unwrap();
        it.set_input(2, &[5.0f32, 6.0, 7.0, 8.0]).unwrap();
        it.set_input(3, &[1u8, 0]).unwrap();
    });
    assert_eq!(out::<f32>(&it, 0), [5.0, 6.0, 3.0, 4.0]);
    assert_eq!(out::<f32>(&it, 1), [1.0, 2.0, -1.0, -1.0]);
    assert_eq!(out_shape(&it, 2), [3, 2]);
    assert_eq!(out::<i64>(&it, 2), [0, 1, 1, 0, 1, 1]);
}

#[test]
fn where_on_a_computed_condition_is_unsupported() {
    let bytes =
        build(vec![act(TT::Bool, &[4]), act(TT::Int64, &[1, 1])], &[0], &[1], vec![node(Op::Where, &[0], &[1])]);
    let model = Model::from_bytes(&bytes).unwrap();
    let resolver = OpResolver::with_builtins();
    let mut it = Interpreter::new(&model, &resolver, InterpreterOptions::default()).unwrap();
    let err = it.allocate_tensors().unwrap_err();
    assert!(err.to_string().contains("dynamic shapes"), "{err}");
}

#[test]
fn tile_broadcast_fill_zeros_range_rank() {
    let tensors = vec![
        act(TT::Int32, &[2, 2]),             // 0
        konst(TT::Int32, &[2], &[1i32, 2]),  // 1 multiples
        act(TT::Int32, &[2, 4]),             // 2 TILE
        act(TT::Float32, &[3]),              // 3
        konst(TT::Int64, &[2], &[2i64, 3]),  // 4 shape
        act(TT::Float32, &[2, 3]),           // 5 BROADCAST_TO
        konst(TT::Int32, &[2], &[2i32, 2]),  // 6 dims
        act(TT::Float32, &[]),               // 7 fill value
        act(TT::Float32, &[2, 2]),           // 8 FILL
        act(TT::Int32, &[2, 2]),             // 9 ZEROS_LIKE
        konst(TT::Int32, &[], &[10i32]),     // 10 start
        konst(TT::Int32, &[], &[0i32]),      // 11 limit
        konst(TT::Int32, &[], &[-3i32]),     // 12 delta
        act(TT::Int32, &[4]),                // 13 RANGE
        act(TT::Int32, &[]),                 // 14 RANK
        konst(TT::Float32, &[], &[0.5f32]),  // 15 float start
        konst(TT::Float32, &[], &[1.75f32]), // 16 float limit
        konst(TT::Float32, &[], &[0.5f32]),  // 17 float delta
        act(TT::Float32, &[3]),              // 18 float RANGE
    ];
    let nodes = vec![
        node(Op::Tile, &[0, 1], &[2]),
        node(Op::BroadcastTo, &[3, 4], &[5]),
        node(Op::Fill, &[6, 7], &[8]),
        node(Op::ZerosLike, &[2], &[9]),
        node(Op::Range, &[10, 11, 12], &[13]),
        node(Op::Rank, &[5], &[14]),
        node(Op::Range, &[15, 16, 17], &[18]),
    ];
    let bytes = build(tensors, &[0, 3, 7], &[2, 5, 8, 9, 13, 14, 18], nodes);
    let model = Model::from_bytes(&bytes).unwrap();
    let resolver = OpResolver::with_builtins();
    let it = run(&model, &resolver, |it| {
        it.set_input(0, &[1i32, 2, 3, 4]).unwrap();
        it.set_input(1, &[7.0f32, 8.0, 9.0]).unwrap();
        it.set_input(2, &[2.5f32]).unwrap();
    });
    assert_eq!(out::<i32>(&it, 0), [1, 2, 1, 2, 3, 4, 3, 4]);
    assert_eq!(out_shape(&it, 0), [2, 4]);
    assert_eq!(out::<f32>(&it, 1), [7.0, 8.0, 9.0, 7.0, 8.0, 9.0]);
    assert_eq!(out::<f32>(&it, 2), [2.5; 4]);
    // ZEROS_LIKE of TILE's output: the shape follows, the values are zero.
    assert_eq!(out::<i32>(&it, 3), [0; 8]);
    assert_eq!(out::<i32>(&it, 4), [10, 7, 4, 1]);
    assert_eq!(out_shape(&it, 5), Vec::<usize>::new());
    assert_eq!(out::<i32>(&it, 5), [2]);
    assert_eq!(out::<f32>(&it, 6), [0.5, 1.0, 1.5]);
}

#[test]
fn arg_max_and_arg_min() {
    let tensors = vec![
        act(TT::Float32, &[2, 3]),       // 0
        konst(TT::Int32, &[1], &[1i32]), // 1 axis
        act(TT::Int64, &[2]),            // 2 ARG_MAX
        konst(TT::Int64, &[], &[0i64]),  // 3 axis 0
        act(TT::Int32, &[3]),            // 4 ARG_MIN
    ];
    let nodes = vec![
        node_with(
            Op::ArgMax,
            &[0, 1],
            &[2],
            fb::BuiltinOptions::ArgMaxOptions(Box::new(fb::ArgMaxOptions { output_type: TT::Int64 })),
        ),
        node_with(
            Op::ArgMin,
            &[0, 3],
            &[4],
            fb::BuiltinOptions::ArgMinOptions(Box::new(fb::ArgMinOptions { output_type: TT::Int32 })),
        ),
    ];
    let bytes = build(tensors, &[0], &[2, 4], nodes);
    let model = Model::from_bytes(&bytes).unwrap();
    let resolver = OpResolver::with_builtins();
    let it = run(&model, &resolver, |it| it.set_input(0, &[1.0f32, 7.0, 7.0, 0.0, -2.0, 9.0]).unwrap());
    assert_eq!(out::<i64>(&it, 0), [1, 2]);
    assert_eq!(out::<i32>(&it, 1), [1, 1, 0]);
}

#[test]
fn space_to_batch_round_trip_and_reverse() {
    let tensors = vec![
        act(TT::Float32, &[1, 2, 3, 1]),             // 0
        konst(TT::Int32, &[2], &[2i32, 2]),          // 1 block
        konst(TT::Int32, &[2, 2], &[0i32, 0, 0, 1]), // 2 paddings: width 3 -> 4
        act(TT::Float32, &[4, 1, 2, 1]),             // 3 SPACE_TO_BATCH_ND
        konst(TT::Int32, &[2, 2], &[0i32, 0, 0, 1]), // 4 crops
        act(TT::Float32, &[1, 2, 3, 1]),             // 5 BATCH_TO_SPACE_ND
        konst(TT::Int32, &[2], &[1i32, 2]),          // 6 axes
        act(TT::Float32, &[1, 2, 3, 1]),             // 7 REVERSE_V2
    ];
    let nodes = vec![
        node(Op::SpaceToBatchNd, &[0, 1, 2], &[3]),
        node(Op::BatchToSpaceNd, &[3, 1, 4], &[5]),
        node(Op::ReverseV2, &[5, 6], &[7]),
    ];
    let bytes = build(tensors, &[0], &[3, 5, 7], nodes);
    let model = Model::from_bytes(&bytes).unwrap();
    let resolver = OpResolver::with_builtins();
    let x = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
    let it = run(&model, &resolver, |it| it.set_input(0, &x).unwrap());
    // Padded 2x4 grid: 1 2 3 0 / 4 5 6 0.
    assert_eq!(out_shape(&it, 0), [4, 1, 2, 1]);
    assert_eq!(out::<f32>(&it, 0), [1.0, 3.0, 2.0, 0.0, 4.0, 6.0, 5.0, 0.0]);
    assert_eq!(out::<f32>(&it, 1), x);
    assert_eq!(out::<f32>(&it, 2), [6.0, 5.0, 4.0, 3.0, 2.0, 1.0]);
}

#[test]
fn topk_cumsum_add_n() {
    let tensors = vec![
        act(TT::Float32, &[2, 4]),      // 0
        konst(TT::Int32, &[], &[2i32]), // 1 k
        act(TT::Float32, &[2, 2]),      // 2 values
        act(TT::Int32, &[2, 2]),        // 3 indices
        konst(TT::Int32, &[], &[1i32]), // 4 axis
        act(TT::Float32, &[2, 4]),      // 5 CUMSUM
        act(TT::Float32, &[2, 4]),      // 6
        act(TT::Float32, &[2, 4]),      // 7 ADD_N
    ];
    let cumsum = fb::BuiltinOptions::CumsumOptions(Box::new(fb::CumsumOptions { exclusive: true, reverse: true }));
    let nodes = vec![
        node(Op::TopkV2, &[0, 1], &[2, 3]),
        node_with(Op::Cumsum, &[0, 4], &[5], cumsum),
        node(Op::AddN, &[0, 6, 5], &[7]),
    ];
    let bytes = build(tensors, &[0, 6], &[2, 3, 5, 7], nodes);
    let model = Model::from_bytes(&bytes).unwrap();
    let resolver = OpResolver::with_builtins();
    let it = run(&model, &resolver, |it| {
        it.set_input(0, &[3.0f32, 1.0, 3.0, 5.0, 2.0, 2.0, 9.0, 2.0]).unwrap();
        it.set_input(1, &[100.0f32; 8]).unwrap();
    });
    assert_eq!(out::<f32>(&it, 0), [5.0, 3.0, 9.0, 2.0]);
    assert_eq!(out::<i32>(&it, 1), [3, 0, 2, 0]);
    assert_eq!(out::<f32>(&it, 2), [9.0, 8.0, 5.0, 0.0, 13.0, 11.0, 2.0, 0.0]);
    assert_eq!(out::<f32>(&it, 3), [112.0, 109.0, 108.0, 105.0, 115.0, 113.0, 111.0, 102.0]);
}

#[test]
fn embedding_lookup_plain_and_hybrid_then_lrn() {
    let q = fb::QuantizationParameters { scale: Some(vec![0.5]), zero_point: Some(vec![0]), ..Default::default() };
    let tensors = vec![
        act(TT::Int32, &[3]),                                                      // 0 ids
        konst(TT::Float32, &[3, 2], &[0.0f32, 0.5, 1.0, 1.5, 2.0, 2.5]),           // 1 table
        act(TT::Float32, &[3, 2]),                                                 // 2 lookup
        T { quant: Some(q), ..konst(TT::Int8, &[3, 2], &[1i8, -2, 3, 4, 5, -6]) }, // 3 int8 table
        act(TT::Float32, &[3, 2]),                                                 // 4 hybrid lookup
        act(TT::Float32, &[1, 1, 1, 4]),                                           // 5 LRN input
        act(TT::Float32, &[1, 1, 1, 4]),                                           // 6 LRN out
    ];
    let lrn = fb::BuiltinOptions::LocalResponseNormalizationOptions(Box::new(fb::LocalResponseNormalizationOptions {
        radius: 1,
        bias: 1.0,
        alpha: 1.0,
        beta: 1.0,
    }));
    let nodes = vec![
        node(Op::EmbeddingLookup, &[0, 1], &[2]),
        node(Op::EmbeddingLookup, &[0, 3], &[4]),
        node_with(Op::LocalResponseNormalization, &[5], &[6], lrn),
    ];
    let bytes = build(tensors, &[0, 5], &[2, 4, 6], nodes);
    let model = Model::from_bytes(&bytes).unwrap();
    let resolver = OpResolver::with_builtins();
    let it = run(&model, &resolver, |it| {
        it.set_input(0, &[2i32, 0, 2]).unwrap();
        it.set_input(1, &[1.0f32, 2.0, 3.0, -1.0]).unwrap();
    });
    assert_eq!(out::<f32>(&it, 0), [2.0, 2.5, 0.0, 0.5, 2.0, 2.5]);
    assert_eq!(out::<f32>(&it, 1), [2.5, -3.0, 0.5, -1.0, 2.5, -3.0]);
    let want = [1.0 / 6.0, 2.0 / 15.0, 3.0 / 15.0, -1.0 / 11.0];
    for (a, b) in out::<f32>(&it, 2).iter().zip(want) {
        assert!((a - b).abs() < 1e-6);
    }

    // An id past the table fails at invoke, not with a panic.
    let mut it = Interpreter::new(&model, &resolver, InterpreterOptions::default()).unwrap();
    it.allocate_tensors().unwrap();
    it.set_input(0, &[0i32, 3, 1]).unwrap();
    assert!(it.invoke().is_err());
}

/// [[0, 1, 0, 2], [0, 0, 0, 0], [3, 0, 0, 0], [0, 4, 5, 0]] as CSR.
fn csr_sparsity() -> fb::SparsityParameters {
    fb::SparsityParameters {
        traversal_order: Some(vec![0, 1]),
        block_map: None,
        dim_metadata: Some(vec![
            fb::DimensionMetadata { format: fb::DimensionType::Dense, dense_size: 4, ..Default::default() },
            fb::DimensionMetadata {
                format: fb::DimensionType::SparseCsr,
                dense_size: 0,
                array_segments: Some(fb::SparseIndexVector::Int32Vector(Box::new(fb::Int32Vector {
                    values: Some(vec![0, 2, 2, 3, 5]),
                }))),
                array_indices: Some(fb::SparseIndexVector::Uint8Vector(Box::new(fb::Uint8Vector {
                    values: Some(vec![1, 3, 0, 1, 2]),
                }))),
            },
        ]),
    }
}

#[test]
fn densify_csr_matrix() {
    let sparse = T { sparsity: Some(csr_sparsity()), ..konst(TT::Float32, &[4, 4], &[1.0f32, 2.0, 3.0, 4.0, 5.0]) };
    let tensors = vec![sparse, act(TT::Float32, &[4, 4]), act(TT::Float32, &[4, 4]), act(TT::Float32, &[4, 4])];
    // DENSIFY, then ADD with a run-time input so the dense result is used downstream.
    let nodes = vec![node(Op::Densify, &[0], &[1]), node(Op::Add, &[1, 2], &[3])];
    let bytes = build(tensors, &[2], &[1, 3], nodes);
    let model = Model::from_bytes(&bytes).unwrap();
    let resolver = OpResolver::with_builtins();
    let it = run(&model, &resolver, |it| it.set_input(0, &[10.0f32; 16]).unwrap());
    #[rustfmt::skip]
    let dense = [
        0.0f32, 1.0, 0.0, 2.0,
        0.0, 0.0, 0.0, 0.0,
        3.0, 0.0, 0.0, 0.0,
        0.0, 4.0, 5.0, 0.0,
    ];
    assert_eq!(out::<f32>(&it, 0), dense);
    assert_eq!(out::<f32>(&it, 1), dense.map(|v| v + 10.0));
}

#[test]
fn densify_rejects_indices_outside_the_shape() {
    let mut s = csr_sparsity();
    if let Some(dims) = &mut s.dim_metadata {
        dims[1].array_indices =
            Some(fb::SparseIndexVector::Uint16Vector(Box::new(fb::Uint16Vector { values: Some(vec![1, 3, 0, 7, 2]) })));
    }
    let sparse = T { sparsity: Some(s), ..konst(TT::Float32, &[4, 4], &[1.0f32, 2.0, 3.0, 4.0, 5.0]) };
    let bytes = build(vec![sparse, act(TT::Float32, &[4, 4])], &[], &[1], vec![node(Op::Densify, &[0], &[1])]);
    let model = Model::from_bytes(&bytes).unwrap();
    let resolver = OpResolver::with_builtins();
    let mut it = Interpreter::new(&model, &resolver, InterpreterOptions::default()).unwrap();
    let err = it.allocate_tensors().unwrap_err();
    assert!(err.to_string().contains("outside"), "{err}");
}

/// Float BATCH_MATMUL on the GEMM kernel (own or shared RHS, each side
/// transposed or not, at 1-3 threads) against the reference kernels; a
/// broadcast the kernel does not take (LHS shared, RHS batched) too.
#[test]
fn float_batch_matmul_matches_the_reference_kernels() {
    let values = |seed: u32, n: usize| -> Vec<f32> {
        (0..n as u32).map(|i| ((i.wrapping_mul(2654435761) ^ seed) % 2001) as f32 / 1000.0 - 1.0).collect()
    };
    let resolver = OpResolver::with_builtins();
    let (m, k, n) = (7usize, 19usize, 13usize);
    for (lb, rb) in [(3, 3), (3, 1), (1, 3)] {
        for (adj_x, adj_y) in [(false, false), (true, false), (false, true), (true, true)] {
            let ls = if adj_x { [lb, k, m] } else { [lb, m, k] };
            let rs = if adj_y { [rb, n, k] } else { [rb, k, n] };
            let i = |s: [usize; 3]| s.map(|v| v as i32);
            let out_b = lb.max(rb);
            let tensors: Vec<T> = vec![
                act(TT::Float32, &i(ls)),
                konst(TT::Float32, &i(rs), &values(5, rs.iter().product())),
                act(TT::Float32, &i([out_b, m, n])),
            ];
            let options = fb::BuiltinOptions::BatchMatMulOptions(Box::new(fb::BatchMatMulOptions {
                adj_x,
                adj_y,
                ..Default::default()
            }));
            let bytes = build(tensors, &[0], &[2], vec![node_with(Op::BatchMatmul, &[0, 1], &[2], options)]);
            let model = Model::from_bytes(&bytes).unwrap();
            let x = values(9, ls.iter().product());
            let run_with = |options: InterpreterOptions| {
                let mut it = Interpreter::new(&model, &resolver, options).unwrap();
                it.allocate_tensors().unwrap();
                it.set_input::<f32>(0, &x).unwrap();
                it.invoke().unwrap();
                out::<f32>(&it, 0)
            };
            let want = run_with(InterpreterOptions { reference_kernels: true, ..Default::default() });
            assert_eq!(want.len(), out_b * m * n);
            for threads in 1..=3 {
                let got = run_with(InterpreterOptions { threads, ..Default::default() });
                for (j, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (g - w).abs() <= 1e-5 * (k as f32),
                        "batches {lb}x{rb} adj {adj_x}/{adj_y} threads {threads} [{j}]: {g} vs {w}"
                    );
                }
            }
        }
    }
}

/// Float TRANSPOSE_CONV on the GEMM + scatter plan (bands of output rows
/// at 1-3 threads) against the reference kernels: SAME and VALID, strides
/// 1-2, filters wider than the stride, with and without bias and RELU.
#[test]
fn float_transpose_conv_matches_the_reference_kernels() {
    let values = |seed: u32, n: usize| -> Vec<f32> {
        (0..n as u32).map(|i| ((i.wrapping_mul(2654435761) ^ seed) % 2001) as f32 / 1000.0 - 1.0).collect()
    };
    let resolver = OpResolver::with_builtins();
    let cases = [
        // (in h, w, c), out c, (kh, kw), stride, same, bias, relu
        ((12, 10, 8), 5, (3, 3), 2, true, true, false),
        ((9, 7, 3), 16, (4, 4), 2, false, false, true),
        ((20, 5, 17), 3, (3, 2), 1, true, true, true),
        ((2, 3, 4), 6, (5, 5), 3, false, true, false),
        ((16, 13, 8), 16, (3, 3), 2, true, true, false),
    ];
    for ((ih, iw, ic), oc, (kh, kw), s, same, with_bias, relu) in cases {
        let (oh, ow) = if same { (ih * s, iw * s) } else { ((ih - 1) * s + kh, (iw - 1) * s + kw) };
        let mut tensors: Vec<T> = vec![
            konst(TT::Int32, &[4], &[2, oh as i32, ow as i32, oc as i32]),
            konst(TT::Float32, &[oc as i32, kh as i32, kw as i32, ic as i32], &values(3, oc * kh * kw * ic)),
            act(TT::Float32, &[2, ih as i32, iw as i32, ic as i32]),
            act(TT::Float32, &[2, oh as i32, ow as i32, oc as i32]),
        ];
        let mut inputs = vec![0, 1, 2];
        if with_bias {
            tensors.push(konst(TT::Float32, &[oc as i32], &values(7, oc)));
            inputs.push(4);
        }
        let options = fb::BuiltinOptions::TransposeConvOptions(Box::new(fb::TransposeConvOptions {
            padding: if same { fb::Padding::Same } else { fb::Padding::Valid },
            stride_h: s as i32,
            stride_w: s as i32,
            fused_activation_function: if relu {
                fb::ActivationFunctionType::Relu
            } else {
                fb::ActivationFunctionType::None
            },
            ..Default::default()
        }));
        let bytes = build(tensors, &[2], &[3], vec![node_with(Op::TransposeConv, &inputs, &[3], options)]);
        let model = Model::from_bytes(&bytes).unwrap();
        let x = values(11, 2 * ih * iw * ic);
        let run_with = |options: InterpreterOptions| {
            let mut it = Interpreter::new(&model, &resolver, options).unwrap();
            it.allocate_tensors().unwrap();
            it.set_input::<f32>(0, &x).unwrap();
            it.invoke().unwrap();
            out::<f32>(&it, 0)
        };
        let want = run_with(InterpreterOptions { reference_kernels: true, ..Default::default() });
        assert_eq!(want.len(), 2 * oh * ow * oc);
        assert!(want.iter().any(|&v| v != 0.0));
        for threads in 1..=3 {
            let got = run_with(InterpreterOptions { threads, ..Default::default() });
            for (j, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - w).abs() <= 1e-5 * (ic * kh * kw) as f32,
                    "in {ih}x{iw}x{ic} k {kh}x{kw} s{s} threads {threads} [{j}]: {g} vs {w}"
                );
            }
        }
    }
}

/// Float binary ops under broadcasts the per-channel kernel does not take
/// (`[N, H, W, 1]`, `[1, H, 1, C]`, both operands broadcast), split between
/// threads over the outermost dimension: the same bits as the reference
/// kernels at 1-3 threads, both operand orders.
#[test]
fn float_general_broadcasts_match_the_reference_kernels() {
    let values = |seed: u32, n: usize| -> Vec<f32> {
        (0..n as u32).map(|i| ((i.wrapping_mul(2654435761) ^ seed) % 2001) as f32 / 100.0 - 10.0).collect()
    };
    let resolver = OpResolver::with_builtins();
    let shapes: [(&[i32], &[i32]); 4] = [
        (&[2, 24, 20, 32], &[2, 24, 20, 1]),
        (&[1, 40, 30, 16], &[1, 40, 1, 16]),
        (&[3, 1, 50, 40], &[3, 60, 1, 1]),
        (&[30, 40, 1], &[50]),
    ];
    let ops = [
        (Op::Add, None),
        (Op::Sub, None),
        (Op::Mul, None),
        (Op::Div, None),
        (Op::Maximum, None),
        (Op::Minimum, None),
        (Op::SquaredDifference, None),
        (
            Op::Sub,
            Some(fb::BuiltinOptions::SubOptions(Box::new(fb::SubOptions {
                fused_activation_function: fb::ActivationFunctionType::Relu6,
                ..Default::default()
            }))),
        ),
    ];
    for (x_shape, y_shape) in shapes {
        for swap in [false, true] {
            let (s0, s1) = if swap { (y_shape, x_shape) } else { (x_shape, y_shape) };
            let dims = |s: &[i32]| s.iter().map(|&d| d as usize).collect::<Vec<_>>();
            let out_shape = ferrolite_kernels::reference::elementwise::broadcast_shape(&dims(s0), &dims(s1)).unwrap();
            let out_i32: Vec<i32> = out_shape.iter().map(|&d| d as i32).collect();
            for (op, options) in &ops {
                let tensors: Vec<T> = vec![act(TT::Float32, s0), act(TT::Float32, s1), act(TT::Float32, &out_i32)];
                let node = match options {
                    Some(o) => node_with(*op, &[0, 1], &[2], o.clone()),
                    None => node(*op, &[0, 1], &[2]),
                };
                let bytes = build(tensors, &[0, 1], &[2], vec![node]);
                let model = Model::from_bytes(&bytes).unwrap();
                let x0 = values(3, s0.iter().product::<i32>() as usize);
                let x1 = values(8, s1.iter().product::<i32>() as usize);
                let run_with = |options: InterpreterOptions| {
                    let mut it = Interpreter::new(&model, &resolver, options).unwrap();
                    it.allocate_tensors().unwrap();
                    it.set_input::<f32>(0, &x0).unwrap();
                    it.set_input::<f32>(1, &x1).unwrap();
                    it.invoke().unwrap();
                    out::<f32>(&it, 0)
                };
                let want = run_with(InterpreterOptions { reference_kernels: true, ..Default::default() });
                assert_eq!(want.len(), out_shape.iter().product::<usize>());
                for threads in 1..=3 {
                    let got = run_with(InterpreterOptions { threads, ..Default::default() });
                    let same = got.iter().zip(&want).all(|(g, w)| g.to_bits() == w.to_bits());
                    assert!(same, "{op:?} {s0:?} {s1:?} threads {threads}");
                }
            }
        }
    }
}

/// Float RESIZE_BILINEAR on the row kernel (rows split between threads)
/// gives the reference kernels' bits at 1-3 threads, for every flag
/// combination TFLite accepts, up- and down-sampling.
#[test]
fn float_resize_bilinear_matches_the_reference_kernels() {
    let resolver = OpResolver::with_builtins();
    for (in_hw, out_hw, align_corners, half_pixel_centers) in
        [((20, 17), (40, 34), false, true), ((33, 30), (17, 45), true, false), ((12, 40), (29, 9), false, false)]
    {
        let c = 19;
        let tensors: Vec<T> = vec![
            act(TT::Float32, &[2, in_hw.0, in_hw.1, c]),
            konst(TT::Int32, &[2], &[out_hw.0, out_hw.1]),
            act(TT::Float32, &[2, out_hw.0, out_hw.1, c]),
        ];
        let options = fb::BuiltinOptions::ResizeBilinearOptions(Box::new(fb::ResizeBilinearOptions {
            align_corners,
            half_pixel_centers,
        }));
        let bytes = build(tensors, &[0], &[2], vec![node_with(Op::ResizeBilinear, &[0, 1], &[2], options)]);
        let model = Model::from_bytes(&bytes).unwrap();
        let n = (2 * in_hw.0 * in_hw.1 * c) as u32;
        let x: Vec<f32> = (0..n).map(|i| ((i.wrapping_mul(2654435761) >> 7) % 2001) as f32 / 1000.0 - 1.0).collect();
        let run_with = |options: InterpreterOptions| {
            let mut it = Interpreter::new(&model, &resolver, options).unwrap();
            it.allocate_tensors().unwrap();
            it.set_input::<f32>(0, &x).unwrap();
            it.invoke().unwrap();
            out::<f32>(&it, 0)
        };
        let want = run_with(InterpreterOptions { reference_kernels: true, ..Default::default() });
        assert_eq!(want.len(), (2 * out_hw.0 * out_hw.1 * c) as usize);
        for threads in 1..=3 {
            let got = run_with(InterpreterOptions { threads, ..Default::default() });
            let same = got.iter().zip(&want).all(|(g, w)| g.to_bits() == w.to_bits());
            assert!(same, "{in_hw:?} -> {out_hw:?} align {align_corners} half {half_pixel_centers} threads {threads}");
        }
    }
}
