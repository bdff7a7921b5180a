//! Resource variables (VAR_HANDLE, READ_VARIABLE, ASSIGN_VARIABLE with the
//! CALL_ONCE that initialises them), SVDF, RNN, UNIDIRECTIONAL_SEQUENCE_RNN,
//! BIDIRECTIONAL_SEQUENCE_RNN and BIDIRECTIONAL_SEQUENCE_LSTM.
//!
//! The variables come from a converted tf.Module (tools/make_fixtures.py
//! `resource_variables`, checked against LiteRT). TensorFlow's converter
//! never emits the recurrent ops here (it lowers Keras RNNs to WHILE loops,
//! and a Bidirectional LSTM to two UNIDIRECTIONAL_SEQUENCE_LSTMs), so they
//! are tested on hand-built models whose expected outputs were computed
//! with numpy from the same weights (`wave`/`iwave` below;
//! tools/recurrent_op_reference.py), over several invokes so that the state
//! carried in the variable tensors is checked too; LiteRT 2.3's reference
//! kernels gave the same values on these exact model files (the largest
//! difference is noted at each expected output).

mod support;

use ferrolite::schema::{self as fb, finish_model, BuiltinOperator as Op, BuiltinOptions, TensorType as TT};
use ferrolite::{Error, Interpreter, InterpreterOptions, Model, OpError, OpResolver};

// ----- a small model builder: several subgraphs, variable and int8 tensors --

#[derive(Clone)]
struct T {
    shape: Vec<i32>,
    ty: TT,
    data: Option<Vec<u8>>,
    variable: bool,
    scale: Option<f32>,
}

/// A tensor computed at run time (graph input or node output).
fn act(ty: TT, shape: &[i32]) -> T {
    T { shape: shape.to_vec(), ty, data: None, variable: false, scale: None }
}

fn f32s(shape: &[i32], values: &[f32]) -> T {
    T { data: Some(values.iter().flat_map(|v| v.to_le_bytes()).collect()), ..act(TT::Float32, shape) }
}

fn i32s(shape: &[i32], values: &[i32]) -> T {
    T { data: Some(values.iter().flat_map(|v| v.to_le_bytes()).collect()), ..act(TT::Int32, shape) }
}

/// Symmetric int8 weights with one scale.
fn i8s(shape: &[i32], values: &[i8], scale: f32) -> T {
    T { data: Some(values.iter().map(|&v| v as u8).collect()), scale: Some(scale), ..act(TT::Int8, shape) }
}

/// A float32 variable tensor (state), starting at zeros.
fn var(shape: &[i32]) -> T {
    T { variable: true, ..act(TT::Float32, shape) }
}

struct N {
    op: Op,
    inputs: Vec<i32>,
    outputs: Vec<i32>,
    options: Option<BuiltinOptions>,
}

fn n(op: Op, inputs: &[i32], outputs: &[i32], options: Option<BuiltinOptions>) -> N {
    N { op, inputs: inputs.to_vec(), outputs: outputs.to_vec(), options }
}

struct G {
    tensors: Vec<T>,
    inputs: Vec<i32>,
    outputs: Vec<i32>,
    nodes: Vec<N>,
}

fn g(tensors: Vec<T>, inputs: &[i32], outputs: &[i32], nodes: Vec<N>) -> G {
    G { tensors, inputs: inputs.to_vec(), outputs: outputs.to_vec(), nodes }
}

fn build(graphs: Vec<G>) -> Vec<u8> {
    let mut codes: Vec<Op> = Vec::new();
    for node in graphs.iter().flat_map(|g| &g.nodes) {
        if !codes.contains(&node.op) {
            codes.push(node.op);
        }
    }
    let mut buffers = vec![fb::Buffer::default()];
    let subgraphs = graphs
        .into_iter()
        .map(|g| {
            let tensors = g
                .tensors
                .into_iter()
                .enumerate()
                .map(|(i, t)| {
                    let buffer = match t.data {
                        Some(d) => {
                            buffers.push(fb::Buffer { data: Some(d), ..Default::default() });
                            buffers.len() as u32 - 1
                        }
                        None => 0,
                    };
                    fb::Tensor {
                        shape: Some(t.shape),
                        type_: t.ty,
                        buffer,
                        name: Some(format!("t{i}")),
                        is_variable: t.variable,
                        quantization: t.scale.map(|s| {
                            Box::new(fb::QuantizationParameters {
                                scale: Some(vec![s]),
                                zero_point: Some(vec![0]),
                                ..Default::default()
                            })
                        }),
                        ..Default::default()
                    }
                })
                .collect();
            let operators = g
                .nodes
                .into_iter()
                .map(|n| fb::Operator {
                    opcode_index: codes.iter().position(|&c| c == n.op).unwrap() as u32,
                    inputs: Some(n.inputs),
                    outputs: Some(n.outputs),
                    builtin_options: n.options,
                    ..Default::default()
                })
                .collect();
            fb::SubGraph {
                tensors: Some(tensors),
                inputs: Some(g.inputs),
                outputs: Some(g.outputs),
                operators: Some(operators),
                ..Default::default()
            }
        })
        .collect();
    let model = fb::Model {
        version: 3,
        operator_codes: Some(
            codes
                .iter()
                .map(|&c| fb::OperatorCode {
                    deprecated_builtin_code: (c as i32).min(127) as i8,
                    builtin_code: c,
                    version: 1,
                    ..Default::default()
                })
                .collect(),
        ),
        subgraphs: Some(subgraphs),
        buffers: Some(buffers),
        ..Default::default()
    };
    finish_model(&mut planus::Builder::new(), &model)
}

/// Deterministic weights and inputs, exact in binary: `k / 8 - 0.75` for
/// `k = (7 i + 5 seed) mod 13`. (The numpy script uses the same formula.)
fn wave(n: usize, seed: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * 7 + seed * 5) % 13) as f32 / 8.0 - 0.75).collect()
}

/// Deterministic int8 weights: `(37 i + 11 seed) mod 255 - 127`.
fn iwave(n: usize, seed: usize) -> Vec<i8> {
    (0..n).map(|i| (((i * 37 + seed * 11) % 255) as i32 - 127) as i8).collect()
}

// ----- running models ---------------------------------------------------

/// An allocated interpreter for `bytes`, handed to `f`.
fn with_interpreter<R>(bytes: &[u8], f: impl FnOnce(&mut Interpreter<'_>) -> R) -> Result<R, Error> {
    let model = Model::from_bytes(bytes)?;
    let resolver = OpResolver::with_builtins();
    let mut it = Interpreter::new(&model, &resolver, InterpreterOptions::default())?;
    it.allocate_tensors()?;
    Ok(f(&mut it))
}

/// Set the float inputs, invoke, read every float output.
fn invoke(it: &mut Interpreter<'_>, inputs: &[&[f32]]) -> Result<Vec<Vec<f32>>, Error> {
    for (i, x) in inputs.iter().enumerate() {
        it.set_input(i, x)?;
    }
    it.invoke()?;
    (0..it.output_count()).map(|i| Ok(it.output(i)?.as_slice::<f32>()?.to_vec())).collect()
}

/// The error `allocate_tensors()` gives (the test fails if it succeeds).
fn allocate_err(bytes: &[u8]) -> Error {
    match with_interpreter(bytes, |_| ()) {
        Ok(()) => panic!("allocate_tensors accepted the model"),
        Err(e) => e,
    }
}

/// The operator error inside `e`.
fn op_error(e: &Error) -> &OpError {
    match e {
        Error::Op { error, .. } => error,
        other => panic!("expected an operator error, got {other:?}"),
    }
}

fn assert_close(got: &[f32], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: {got:?} vs {want:?}");
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((*g as f64 - w).abs() <= tol, "{what}[{k}]: {g} vs {w} (all: {got:?})");
    }
}

// ----- resource variables -------------------------------------------------

fn var_handle(shared_name: &str) -> Option<BuiltinOptions> {
    var_handle_in("", shared_name)
}

fn var_handle_in(container: &str, shared_name: &str) -> Option<BuiltinOptions> {
    Some(BuiltinOptions::VarHandleOptions(Box::new(fb::VarHandleOptions {
        container: Some(container.into()),
        shared_name: Some(shared_name.into()),
    })))
}

fn call_once(init: i32) -> Option<BuiltinOptions> {
    Some(BuiltinOptions::CallOnceOptions(Box::new(fb::CallOnceOptions { init_subgraph_index: init })))
}

fn resource() -> T {
    act(TT::Resource, &[])
}

/// `acc += x` on a variable that a CALL_ONCE init subgraph sets to
/// [10, 20]; the main subgraph outputs the new value.
fn accumulator(init: i32) -> Vec<u8> {
    let main = g(
        vec![act(TT::Float32, &[2]), resource(), act(TT::Float32, &[2]), act(TT::Float32, &[2])],
        &[0],
        &[3],
        vec![
            n(Op::CallOnce, &[], &[], call_once(init)),
            n(Op::VarHandle, &[], &[1], var_handle("acc")),
            n(Op::ReadVariable, &[1], &[2], None),
            n(Op::Add, &[2, 0], &[3], None),
            n(Op::AssignVariable, &[1, 3], &[], None),
        ],
    );
    let init_graph = g(
        vec![resource(), f32s(&[2], &[10.0, 20.0])],
        &[],
        &[],
        vec![n(Op::VarHandle, &[], &[0], var_handle("acc")), n(Op::AssignVariable, &[0, 1], &[], None)],
    );
    build(vec![main, init_graph])
}

/// The converted tf.Module (`acc = acc * 0.5 + x`, `steps += 1`, outputs
/// `2 steps` and `acc`) on its seeded input: equal to LiteRT's reference
/// kernels on the first invoke.
#[test]
fn resource_variables_match_litert() {
    support::check_float_fixture("resource_variables.f32", 1);
}

/// LiteRT keeps the variables from one invoke to the next: the module's
/// state after k invokes is `acc_k = acc_{k-1} / 2 + x` from its initial
/// value and `steps = k`, by hand. A second interpreter starts afresh;
/// re-allocating and `reset_variable_tensors` keep the variables (TFLite
/// resets neither resource variables nor its CALL_ONCE marks there).
#[test]
fn resource_variables_persist_across_invokes() {
    let Some(path) = support::fixture("resource_variables.f32.tflite") else {
        eprintln!("skipping: resource_variables.f32 not found");
        return;
    };
    let bytes = std::fs::read(&path).unwrap();
    let x = [0.25f32, -0.5, 1.0, 2.0, 0.75, -1.0];
    let mut acc = [0.5f64, -1.0, 2.0, 1.0, 0.0, -0.25];
    let check = |it: &mut Interpreter<'_>, k: usize, acc: &mut [f64; 6]| {
        for (a, &xv) in acc.iter_mut().zip(&x) {
            *a = *a * 0.5 + xv as f64;
        }
        let out = invoke(it, &[&x]).unwrap();
        assert_close(&out[0], &[2.0 * k as f64], 0.0, &format!("steps after invoke {k}"));
        assert_close(&out[1], &acc[..], 1e-6, &format!("acc after invoke {k}"));
    };
    with_interpreter(&bytes, |it| {
        check(it, 1, &mut acc);
        check(it, 2, &mut acc);
        it.allocate_tensors().unwrap();
        check(it, 3, &mut acc);
        it.reset_variable_tensors().unwrap();
        check(it, 4, &mut acc);
        let mut fresh = [0.5f64, -1.0, 2.0, 1.0, 0.0, -0.25];
        with_interpreter(&bytes, |other| check(other, 1, &mut fresh)).unwrap();
        check(it, 5, &mut acc);
    })
    .unwrap();
}

/// A signature runner made by an interpreter shares its variables, as
/// TFLite's signature runners share their interpreter's.
#[test]
fn signature_runners_share_the_interpreters_variables() {
    let Some(path) = support::fixture("resource_variables.f32.tflite") else {
        eprintln!("skipping: resource_variables.f32 not found");
        return;
    };
    let bytes = std::fs::read(&path).unwrap();
    with_interpreter(&bytes, |it| {
        let x = [0.0f32; 6];
        assert_eq!(invoke(it, &[&x]).unwrap()[0], [2.0]);
        let key = it.signature_keys()[0];
        let mut runner = it.signature_runner(key, &OpResolver::with_builtins()).unwrap();
        let input = runner.input_names()[0];
        runner.input_mut(input).unwrap().as_slice_mut::<f32>().unwrap().fill(0.0);
        runner.invoke().unwrap();
        let steps = runner.output_names().into_iter().find(|n| runner.output(n).unwrap().shape() == [1]).unwrap();
        assert_eq!(runner.output(steps).unwrap().as_slice::<f32>().unwrap(), [4.0]);
        assert_eq!(invoke(it, &[&x]).unwrap()[0], [6.0]);
    })
    .unwrap();
}

/// CALL_ONCE runs its init subgraph on the first invoke only; the
/// variable carries the sum across invokes.
#[test]
fn call_once_initialises_once() {
    let bytes = accumulator(1);
    with_interpreter(&bytes, |it| {
        assert_eq!(invoke(it, &[&[1.0, 2.0]]).unwrap()[0], [11.0, 22.0]);
        assert_eq!(invoke(it, &[&[1.0, 2.0]]).unwrap()[0], [12.0, 24.0]);
        it.allocate_tensors().unwrap();
        assert_eq!(invoke(it, &[&[0.5, 0.5]]).unwrap()[0], [12.5, 24.5]);
    })
    .unwrap();
    with_interpreter(&bytes, |it| assert_eq!(invoke(it, &[&[0.0, 0.0]]).unwrap()[0], [10.0, 20.0])).unwrap();
}

#[test]
fn call_once_is_checked() {
    // Its own subgraph: recursion.
    let e = allocate_err(&accumulator(0));
    assert!(e.to_string().contains("recursion"), "{e}");
    // A subgraph that does not exist.
    let e = allocate_err(&accumulator(7));
    assert!(e.to_string().contains("does not exist"), "{e}");
    // An init subgraph with an output, a CALL_ONCE with an input, and one
    // without its options.
    let with_output = |call: N| {
        let main = g(vec![act(TT::Float32, &[1])], &[0], &[0], vec![call]);
        let init = g(vec![f32s(&[1], &[1.0]), act(TT::Float32, &[1])], &[], &[1], vec![n(Op::Neg, &[0], &[1], None)]);
        build(vec![main, init])
    };
    let e = allocate_err(&with_output(n(Op::CallOnce, &[], &[], call_once(1))));
    assert!(e.to_string().contains("must have no outputs"), "{e}");
    let e = allocate_err(&with_output(n(Op::CallOnce, &[0], &[], call_once(1))));
    assert!(matches!(op_error(&e), OpError::Arity { .. }), "{e}");
    let e = allocate_err(&with_output(n(Op::CallOnce, &[], &[], None)));
    assert!(matches!(op_error(&e), OpError::Options(_)), "{e}");
}

/// The subgraphs a WHILE runs see the interpreter's variables: the body
/// adds 1 to variable `n` per iteration, the main graph sets it to 0 first
/// and reads it after the loop.
#[test]
fn while_bodies_share_the_variables() {
    let main = g(
        vec![act(TT::Float32, &[1]), resource(), f32s(&[1], &[0.0]), act(TT::Float32, &[1]), act(TT::Float32, &[1])],
        &[0],
        &[3, 4],
        vec![
            n(Op::VarHandle, &[], &[1], var_handle("n")),
            n(Op::AssignVariable, &[1, 2], &[], None),
            n(
                Op::While,
                &[0],
                &[3],
                Some(BuiltinOptions::WhileOptions(Box::new(fb::WhileOptions {
                    cond_subgraph_index: 1,
                    body_subgraph_index: 2,
                }))),
            ),
            n(Op::ReadVariable, &[1], &[4], None),
        ],
    );
    let cond = g(
        vec![act(TT::Float32, &[1]), f32s(&[1], &[3.0]), act(TT::Bool, &[1])],
        &[0],
        &[2],
        vec![n(Op::Less, &[0, 1], &[2], None)],
    );
    let body = g(
        vec![
            act(TT::Float32, &[1]),
            f32s(&[1], &[1.0]),
            act(TT::Float32, &[1]),
            resource(),
            act(TT::Float32, &[1]),
            act(TT::Float32, &[1]),
        ],
        &[0],
        &[2],
        vec![
            n(Op::Add, &[0, 1], &[2], None),
            n(Op::VarHandle, &[], &[3], var_handle("n")),
            n(Op::ReadVariable, &[3], &[4], None),
            n(Op::Add, &[4, 1], &[5], None),
            n(Op::AssignVariable, &[3, 5], &[], None),
        ],
    );
    let bytes = build(vec![main, cond, body]);
    with_interpreter(&bytes, |it| {
        assert_eq!(invoke(it, &[&[0.0]]).unwrap(), [[3.0], [3.0]]);
        assert_eq!(invoke(it, &[&[1.5]]).unwrap(), [[3.5], [2.0]]);
    })
    .unwrap();
}

/// A model that reads variable `c/state` and never assigns it.
#[test]
fn reading_an_unassigned_variable_names_it() {
    let bytes = build(vec![g(
        vec![resource(), act(TT::Float32, &[2])],
        &[],
        &[1],
        vec![n(Op::VarHandle, &[], &[0], var_handle_in("c", "state")), n(Op::ReadVariable, &[0], &[1], None)],
    )]);
    let e = with_interpreter(&bytes, |it| it.invoke().unwrap_err()).unwrap();
    assert!(e.to_string().contains("'c/state' is read before any ASSIGN_VARIABLE"), "{e}");
}

/// `x -> ASSIGN(v1)`, then `value -> ASSIGN(v2)`, then `READ(v3)`, for
/// the given handles' names: variables are told apart by container and
/// shared name together.
fn two_assignments(names: [(&str, &str); 3], value: T, read_shape: &[i32]) -> Vec<u8> {
    build(vec![g(
        vec![act(TT::Float32, &[2]), resource(), resource(), resource(), value, act(TT::Float32, read_shape)],
        &[0],
        &[5],
        vec![
            n(Op::VarHandle, &[], &[1], var_handle_in(names[0].0, names[0].1)),
            n(Op::VarHandle, &[], &[2], var_handle_in(names[1].0, names[1].1)),
            n(Op::VarHandle, &[], &[3], var_handle_in(names[2].0, names[2].1)),
            n(Op::AssignVariable, &[1, 0], &[], None),
            n(Op::AssignVariable, &[2, 4], &[], None),
            n(Op::ReadVariable, &[3], &[5], None),
        ],
    )])
}

#[test]
fn variables_are_keyed_by_container_and_name() {
    let c = f32s(&[2], &[7.0, 8.0]);
    // v1 = a/v, v2 = b/v, read a/v: x.
    let bytes = two_assignments([("a", "v"), ("b", "v"), ("a", "v")], c.clone(), &[2]);
    with_interpreter(&bytes, |it| assert_eq!(invoke(it, &[&[1.0, 2.0]]).unwrap()[0], [1.0, 2.0])).unwrap();
    // Read b/v: the constant.
    let bytes = two_assignments([("a", "v"), ("b", "v"), ("b", "v")], c.clone(), &[2]);
    with_interpreter(&bytes, |it| assert_eq!(invoke(it, &[&[1.0, 2.0]]).unwrap()[0], [7.0, 8.0])).unwrap();
    // All three the same variable: the last assignment.
    let bytes = two_assignments([("", "v"), ("", "v"), ("", "v")], c, &[2]);
    with_interpreter(&bytes, |it| assert_eq!(invoke(it, &[&[1.0, 2.0]]).unwrap()[0], [7.0, 8.0])).unwrap();
}

#[test]
fn a_variable_keeps_its_first_type_and_shape() {
    let same = [("", "v"), ("", "v"), ("", "v")];
    for (value, what) in [
        (f32s(&[3], &[1.0, 2.0, 3.0]), "float32 [3]"),
        (f32s(&[1, 2], &[1.0, 2.0]), "float32 [1, 2]"),
        (i32s(&[2], &[1, 2]), "int32 [2]"),
    ] {
        let bytes = two_assignments(same, value, &[2]);
        let e = with_interpreter(&bytes, |it| invoke(it, &[&[1.0, 2.0]]).unwrap_err()).unwrap();
        let msg = e.to_string();
        assert!(msg.contains("variable 'v' holds float32 [2]") && msg.contains(what), "{msg}");
    }
    // A READ_VARIABLE output of another shape than the variable's.
    let bytes = two_assignments(same, f32s(&[2], &[1.0, 2.0]), &[3]);
    let e = with_interpreter(&bytes, |it| invoke(it, &[&[1.0, 2.0]]).unwrap_err()).unwrap();
    assert!(e.to_string().contains("the READ_VARIABLE output is float32 [3]"), "{e}");
}

#[test]
fn malformed_variable_nodes_are_refused() {
    // The tensors the node reads are graph inputs.
    let one = |tensors: Vec<T>, node: N| {
        let inputs: Vec<i32> = node.inputs.iter().copied().filter(|&i| i >= 0).collect();
        build(vec![g(tensors, &inputs, &[], vec![node])])
    };
    let f = || act(TT::Float32, &[2]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("VAR_HANDLE float output", one(vec![f()], n(Op::VarHandle, &[], &[0], var_handle("v")))),
        ("VAR_HANDLE with an input", one(vec![f(), resource()], n(Op::VarHandle, &[0], &[1], var_handle("v")))),
        ("READ_VARIABLE of a float", one(vec![f(), f()], n(Op::ReadVariable, &[0], &[1], None))),
        ("READ_VARIABLE without input", one(vec![f()], n(Op::ReadVariable, &[-1], &[0], None))),
        ("READ_VARIABLE into a resource", one(vec![resource(), resource()], n(Op::ReadVariable, &[0], &[1], None))),
        (
            "READ_VARIABLE of two handles",
            one(vec![act(TT::Resource, &[2]), f()], n(Op::ReadVariable, &[0], &[1], None)),
        ),
        ("ASSIGN_VARIABLE of one input", one(vec![resource()], n(Op::AssignVariable, &[0], &[], None))),
        ("ASSIGN_VARIABLE without value", one(vec![resource()], n(Op::AssignVariable, &[0, -1], &[], None))),
        ("ASSIGN_VARIABLE with an output", one(vec![resource(), f(), f()], n(Op::AssignVariable, &[0, 1], &[2], None))),
        ("ASSIGN_VARIABLE to a float", one(vec![f(), f()], n(Op::AssignVariable, &[0, 1], &[], None))),
    ];
    for (what, bytes) in cases {
        let result = with_interpreter(&bytes, |_| ());
        assert!(matches!(result, Err(Error::Op { .. })), "{what}: {:?}", result.err());
    }
}

// ----- recurrent ops: hand-built models -----------------------------------

use fb::ActivationFunctionType as Act;

/// SVDF: batch 2, 3 inputs, 4 filters of rank 2 (2 units), memory 3; float
/// weights without activation, or int8 weights (scales 0.01 and 0.02) and
/// relu.
fn svdf_model(hybrid: bool) -> Vec<u8> {
    let (feature, time) = if hybrid {
        (i8s(&[4, 3], &iwave(12, 1), 0.01), i8s(&[4, 3], &iwave(12, 2), 0.02))
    } else {
        (f32s(&[4, 3], &wave(12, 1)), f32s(&[4, 3], &wave(12, 2)))
    };
    let options = BuiltinOptions::SvdfOptions(Box::new(fb::SvdfOptions {
        rank: 2,
        fused_activation_function: if hybrid { Act::Relu } else { Act::None },
        asymmetric_quantize_inputs: false,
    }));
    build(vec![g(
        vec![
            act(TT::Float32, &[2, 3]),
            feature,
            time,
            f32s(&[2], &wave(2, 3)),
            var(&[2, 12]),
            act(TT::Float32, &[2, 2]),
        ],
        &[0],
        &[5],
        vec![n(Op::Svdf, &[0, 1, 2, 3, 4], &[5], Some(options))],
    )])
}

/// RNN: batch 2, 3 inputs, 4 units, tanh; float or int8 weights (scales
/// 0.008 and 0.006), the hybrid one quantising its inputs symmetrically or
/// not.
fn rnn_model(hybrid: bool, asymmetric: bool) -> Vec<u8> {
    let (w, r) = if hybrid {
        (i8s(&[4, 3], &iwave(12, 4), 0.008), i8s(&[4, 4], &iwave(16, 5), 0.006))
    } else {
        (f32s(&[4, 3], &wave(12, 4)), f32s(&[4, 4], &wave(16, 5)))
    };
    let options = BuiltinOptions::RnnOptions(Box::new(fb::RnnOptions {
        fused_activation_function: Act::Tanh,
        asymmetric_quantize_inputs: asymmetric,
    }));
    build(vec![g(
        vec![act(TT::Float32, &[2, 3]), w, r, f32s(&[4], &wave(4, 6)), var(&[2, 4]), act(TT::Float32, &[2, 4])],
        &[0],
        &[5],
        vec![n(Op::Rnn, &[0, 1, 2, 3, 4], &[5], Some(options))],
    )])
}

/// The input shape `[batch 2, time 4, features]`, time-major or not.
fn sequence(time_major: bool, features: i32) -> Vec<i32> {
    if time_major {
        vec![4, 2, features]
    } else {
        vec![2, 4, features]
    }
}

/// UNIDIRECTIONAL_SEQUENCE_RNN: batch 2, 4 steps, 3 inputs, 3 units, no
/// activation.
fn sequence_rnn_model(time_major: bool) -> Vec<u8> {
    let options = BuiltinOptions::SequenceRnnOptions(Box::new(fb::SequenceRnnOptions {
        time_major,
        fused_activation_function: Act::None,
        asymmetric_quantize_inputs: false,
    }));
    build(vec![g(
        vec![
            act(TT::Float32, &sequence(time_major, 3)),
            f32s(&[3, 3], &wave(9, 7)),
            f32s(&[3, 3], &wave(9, 8)),
            f32s(&[3], &wave(3, 9)),
            var(&[2, 3]),
            act(TT::Float32, &sequence(time_major, 3)),
        ],
        &[0],
        &[5],
        vec![n(Op::UnidirectionalSequenceRnn, &[0, 1, 2, 3, 4], &[5], Some(options))],
    )])
}

/// BIDIRECTIONAL_SEQUENCE_RNN: batch 2, 4 steps, 3 inputs; 3 forward and
/// 2 backward units, tanh; merged or two outputs.
fn bidirectional_rnn_model(time_major: bool, merged: bool) -> Vec<u8> {
    let options = BuiltinOptions::BidirectionalSequenceRnnOptions(Box::new(fb::BidirectionalSequenceRnnOptions {
        time_major,
        fused_activation_function: Act::Tanh,
        merge_outputs: merged,
        asymmetric_quantize_inputs: false,
    }));
    let mut tensors = vec![
        act(TT::Float32, &sequence(time_major, 3)),
        f32s(&[3, 3], &wave(9, 11)),
        f32s(&[3, 3], &wave(9, 12)),
        f32s(&[3], &wave(3, 13)),
        var(&[2, 3]),
        f32s(&[2, 3], &wave(6, 14)),
        f32s(&[2, 2], &wave(4, 15)),
        f32s(&[2], &wave(2, 16)),
        var(&[2, 2]),
    ];
    let outputs: Vec<i32> = if merged {
        tensors.push(act(TT::Float32, &sequence(time_major, 5)));
        vec![9]
    } else {
        tensors.push(act(TT::Float32, &sequence(time_major, 3)));
        tensors.push(act(TT::Float32, &[2, 4, 2]));
        vec![9, 10]
    };
    let inputs = [0, 1, 2, 3, 4, 5, 6, 7, 8, -1, -1, -1];
    build(vec![g(tensors, &[0], &outputs, vec![n(Op::BidirectionalSequenceRnn, &inputs, &outputs, Some(options))])])
}

/// BIDIRECTIONAL_SEQUENCE_LSTM: batch 2, 3 steps, 2 inputs, 3 outputs per
/// direction (TFLite checks both cells against the same sizes). The
/// forward cell has all four gates and 3 cells; the backward one is CIFG
/// (no input gate) with forget/output peepholes and a projection of its 3
/// cells. Tanh; merged or two outputs; with `aux`, a second model input is
/// the backward cell's input (stacking without cross links).
fn bidirectional_lstm_model(time_major: bool, merged: bool, aux: bool) -> Vec<u8> {
    let shape = |f: i32| if time_major { vec![3, 2, f] } else { vec![2, 3, f] };
    let mut tensors = vec![act(TT::Float32, &shape(2))];
    let mut inputs = vec![-1i32; 48];
    inputs[0] = 0;
    let mut add = |tensors: &mut Vec<T>, at: usize, t: T| {
        tensors.push(t);
        inputs[at] = tensors.len() as i32 - 1;
    };
    for k in 0..4 {
        add(&mut tensors, 1 + k, f32s(&[3, 2], &wave(6, 60 + k)));
        add(&mut tensors, 5 + k, f32s(&[3, 3], &wave(9, 64 + k)));
        add(&mut tensors, 12 + k, f32s(&[3], &wave(3, 68 + k)));
    }
    for k in 1..4 {
        add(&mut tensors, 18 + k, f32s(&[3, 2], &wave(6, 70 + k)));
        add(&mut tensors, 22 + k, f32s(&[3, 3], &wave(9, 74 + k)));
        add(&mut tensors, 29 + k, f32s(&[3], &wave(3, 77 + k)));
    }
    add(&mut tensors, 27, f32s(&[3], &wave(3, 81)));
    add(&mut tensors, 28, f32s(&[3], &wave(3, 82)));
    add(&mut tensors, 33, f32s(&[3, 3], &wave(9, 85)));
    add(&mut tensors, 34, f32s(&[3], &wave(3, 86)));
    for i in 35..39 {
        add(&mut tensors, i, var(&[2, 3]));
    }
    let mut graph_inputs = vec![0];
    if aux {
        add(&mut tensors, 39, act(TT::Float32, &shape(2)));
        graph_inputs.push(inputs[39]);
    }
    let outputs: Vec<i32> = if merged {
        tensors.push(act(TT::Float32, &shape(6)));
        vec![tensors.len() as i32 - 1]
    } else {
        tensors.push(act(TT::Float32, &shape(3)));
        tensors.push(act(TT::Float32, &shape(3)));
        vec![tensors.len() as i32 - 2, tensors.len() as i32 - 1]
    };
    let options = BuiltinOptions::BidirectionalSequenceLstmOptions(Box::new(fb::BidirectionalSequenceLstmOptions {
        fused_activation_function: Act::Tanh,
        cell_clip: 0.0,
        proj_clip: 0.0,
        merge_outputs: merged,
        time_major,
        asymmetric_quantize_inputs: false,
    }));
    build(vec![g(
        tensors,
        &graph_inputs,
        &outputs,
        vec![n(Op::BidirectionalSequenceLstm, &inputs, &outputs, Some(options))],
    )])
}

/// Write the hand-built models to `$FERROLITE_DUMP` for
/// tools/recurrent_op_reference.py, which computes the expected outputs
/// below (and LiteRT's, to compare):
/// `FERROLITE_DUMP=/tmp/m cargo test -p ferrolite --test
/// recurrent_and_variable_ops -- --ignored dump`, then
/// `python tools/recurrent_op_reference.py /tmp/m`.
#[test]
#[ignore = "writes the hand-built models for tools/recurrent_op_reference.py"]
fn dump_hand_built_models() {
    let dir = std::env::var("FERROLITE_DUMP").expect("set FERROLITE_DUMP to a directory");
    let models: Vec<(&str, Vec<u8>)> = vec![
        ("svdf_f32", svdf_model(false)),
        ("svdf_hybrid", svdf_model(true)),
        ("rnn_f32", rnn_model(false, false)),
        ("rnn_hybrid", rnn_model(true, false)),
        ("rnn_hybrid_asym", rnn_model(true, true)),
        ("useq_rnn_bm", sequence_rnn_model(false)),
        ("useq_rnn_tm", sequence_rnn_model(true)),
        ("bidi_rnn_bm_split", bidirectional_rnn_model(false, false)),
        ("bidi_rnn_tm_merged", bidirectional_rnn_model(true, true)),
        ("bidi_rnn_tm_split", bidirectional_rnn_model(true, false)),
        ("bidi_lstm_tm_merged", bidirectional_lstm_model(true, true, false)),
        ("bidi_lstm_bm_split", bidirectional_lstm_model(false, false, false)),
        ("bidi_lstm_tm_aux", bidirectional_lstm_model(true, false, true)),
    ];
    for (name, bytes) in models {
        std::fs::write(format!("{dir}/{name}.tflite"), bytes).unwrap();
    }
}

// ----- recurrent ops: expected outputs --------------------------------------
//
// Per invoke, per output: tools/recurrent_op_reference.py's numpy (float64
// from the models' float32 weights; the hybrid models' input quantisation
// emulated in float32 as TFLite does it), which also ran LiteRT 2.3's
// reference kernels on the same model files.

/// numpy; LiteRT 2.3 (BUILTIN_REF) within 0.00e+00.
const SVDF_F32: &[&[&[f64]]] = &[
    &[&[-0.6074219, -0.1191406, -0.8515625, -0.04101562]],
    &[&[-0.9082031, 1.123047, -0.5957031, 0.1367188]],
    &[&[-0.4511719, -0.8496094, -1.167969, 0.7050781]],
];

/// numpy; LiteRT 2.3 (BUILTIN_REF) within 2.12e-07.
const SVDF_HYBRID: &[&[&[f64]]] = &[
    &[&[0.7991901, 0.09923977, 0.0, 0.0]],
    &[&[1.084757, 0.9229996, 0.0, 0.0]],
    &[&[1.512096, 1.819686, 0.0, 2.642793]],
];

/// numpy; LiteRT 2.3 (BUILTIN_REF) within 6.81e-08.
const RNN_F32: &[&[&[f64]]] = &[
    &[&[0.1549907, 0.1089409, 0.4371888, 0.3985088, -0.6063476, 0.7744092, -0.4497406, 0.8482836]],
    &[&[-0.6476325, 0.7931852, -0.5891611, 0.6521756, 0.1438259, 0.8410999, 0.9385752, 0.4155181]],
];

/// numpy; LiteRT 2.3 (BUILTIN_REF) within 5.29e-08.
const RNN_HYBRID: &[&[&[f64]]] = &[
    &[&[-0.3771293, 0.7269796, -0.3831178, 0.7236623, -0.2954145, 0.6603228, -0.2409176, 0.6921785]],
    &[&[0.2761367, 0.4413201, 0.6688917, -0.1126894, -0.2439445, 0.8018891, -0.05479576, 0.2812097]],
];

/// numpy; LiteRT 2.3 (BUILTIN_REF) within 8.67e-08.
const RNN_HYBRID_ASYM: &[&[&[f64]]] = &[
    &[&[-0.3771908, 0.727356, -0.3833998, 0.7239194, -0.2955166, 0.6600122, -0.2409001, 0.6919596]],
    &[&[0.2767106, 0.4409694, 0.6692711, -0.113744, -0.2435702, 0.8018136, -0.05476631, 0.2823094]],
];

/// numpy; LiteRT 2.3 (BUILTIN_REF) within 3.35e-07.
const USEQ_RNN_BM: &[&[&[f64]]] = &[
    &[&[
        0.40625,
        -1.203125,
        0.03125,
        -1.085938,
        0.2753906,
        -0.8261719,
        1.754395,
        -2.032959,
        0.578125,
        -2.221924,
        1.45932,
        -1.750214,
        -0.640625,
        -0.40625,
        0.03125,
        0.7519531,
        -1.244141,
        -0.06640625,
        -1.200928,
        0.402832,
        -0.9260254,
        1.970551,
        -2.142548,
        0.6990051,
    ]],
    &[&[
        2.534889, -3.099323, 2.936333, -3.421053, 2.377871, -2.906591, 3.670296, -3.971642, 2.736006, -4.061099,
        3.124355, -3.710601, -2.444859, 1.641914, -1.887856, 2.241818, -2.882718, 1.904643, -2.605387, 1.702147,
        -2.568983, 2.88527, -3.212317, 2.067562,
    ]],
];

/// numpy; LiteRT 2.3 (BUILTIN_REF) within 5.96e-08.
const USEQ_RNN_TM: &[&[&[f64]]] = &[
    &[&[
        0.40625,
        -1.203125,
        0.03125,
        -0.515625,
        -0.34375,
        0.03125,
        0.0234375,
        -0.4902344,
        -0.8261719,
        -0.1074219,
        -0.2988281,
        -0.05859375,
        -0.3647461,
        -0.626709,
        -0.1777344,
        0.4904785,
        -1.129395,
        -0.1213379,
        -0.2929688,
        -0.3031311,
        -0.2470398,
        0.1280212,
        -0.5313416,
        -0.782074,
    ]],
    &[&[
        0.1370926,
        -0.963459,
        1.164665,
        0.5844383,
        -1.346901,
        -0.2350845,
        -1.424505,
        0.6512895,
        -0.7507682,
        0.009293079,
        -0.502665,
        -0.9272871,
        1.100397,
        -1.403807,
        0.8882782,
        -0.3084559,
        -0.6779093,
        -0.169328,
        -1.014089,
        0.2113407,
        -1.232264,
        -0.3451534,
        -0.258619,
        -0.2941633,
    ]],
];

/// numpy; LiteRT 2.3 (BUILTIN_REF) within 1.12e-07.
const BIDI_RNN_BM_SPLIT: &[&[&[f64]]] = &[
    &[
        &[
            -0.2884502, -0.3446634, -0.7744092, -0.8905462, 0.8405925, -0.8195697, -0.9708292, 0.8542425, -0.8675819,
            -0.8512836, 0.3240831, -0.9775533, -0.8346053, 0.6534236, -0.2740616, -0.7400709, 0.4661023, -0.957771,
            -0.9247667, 0.6534353, -0.9609281, -0.9698719, 0.881507, -0.9061112,
        ],
        &[
            -0.2696354,
            0.4425499,
            -0.8011463,
            -0.80891,
            -0.8820745,
            -0.04443079,
            -0.2301757,
            0.8298019,
            -0.7829909,
            -0.4598245,
            -0.3173312,
            0.2650537,
            -0.7543345,
            -0.1939623,
            -0.7549536,
            0.0468407,
        ],
    ],
    &[
        &[
            -0.958648, 0.8742093, -0.9067352, -0.8652004, 0.5809573, -0.9843016, -0.9710438, 0.9606875, -0.9456651,
            -0.9773187, 0.883917, -0.9020494, -0.8587695, 0.3444283, -0.9789179, -0.9608699, 0.9087381, -0.9209463,
            -0.8746283, 0.6867649, -0.9869872, -0.9442535, 0.7394954, -0.9699517,
        ],
        &[
            -0.8183661,
            -0.3215218,
            -0.2697823,
            0.4428359,
            -0.7999867,
            -0.8059574,
            -0.8637571,
            -0.02071292,
            -0.4714118,
            0.6382455,
            -0.7827676,
            -0.4554995,
            -0.3035112,
            0.2903865,
            -0.7015211,
            -0.149512,
        ],
    ],
];

/// numpy; LiteRT 2.3 (BUILTIN_REF) within 1.18e-07.
const BIDI_RNN_TM_MERGED: &[&[&[f64]]] = &[
    &[&[
        -0.2884502, -0.3446634, -0.7744092, -0.4253086, 0.3458266, -0.8438437, 0.7982428, -0.4115701, -0.791987,
        -0.7386701, -0.873209, 0.4152507, -0.6439426, -0.8701049, -0.2360891, -0.7739268, 0.1455394, -0.9479192,
        -0.445303, 0.7288535, -0.9536422, 0.9009636, -0.8768258, -0.8219938, -0.5599427, -0.7325559, 0.377248,
        -0.980953, -0.3706591, 0.2364863, -0.9528128, 0.7851098, -0.9695667, -0.5325873, 0.2740616, -0.9572108,
        0.8266049, -0.8777127, -0.7549536, 0.0468407,
    ]],
    &[&[
        -0.9748575, 0.9242245, -0.9251947, -0.8068717, -0.4719855, -0.8561174, 0.5596406, -0.9833847, -0.4260328,
        0.3463337, -0.9795835, 0.9733701, -0.9523274, -0.7929933, -0.738991, -0.9653367, 0.8207824, -0.8830481,
        -0.8673891, -0.2271193, -0.8750711, 0.397129, -0.9809886, -0.4435805, 0.7431196, -0.9750626, 0.9440902,
        -0.9287848, -0.8114821, -0.5832101, -0.7996724, 0.5145056, -0.9849706, -0.2904988, 0.3882212, -0.9569049,
        0.800908, -0.9728412, -0.666865, -0.1208151,
    ]],
];

/// numpy; LiteRT 2.3 (BUILTIN_REF) within 1.18e-07.
const BIDI_RNN_TM_SPLIT: &[&[&[f64]]] = &[
    &[
        &[
            -0.2884502, -0.3446634, -0.7744092, -0.8438437, 0.7982428, -0.4115701, -0.873209, 0.4152507, -0.6439426,
            -0.7739268, 0.1455394, -0.9479192, -0.9536422, 0.9009636, -0.8768258, -0.7325559, 0.377248, -0.980953,
            -0.9528128, 0.7851098, -0.9695667, -0.9572108, 0.8266049, -0.8777127,
        ],
        &[
            -0.4253086, 0.3458266, -0.791987, -0.7386701, -0.8701049, -0.2360891, -0.445303, 0.7288535, -0.8219938,
            -0.5599427, -0.3706591, 0.2364863, -0.5325873, 0.2740616, -0.7549536, 0.0468407,
        ],
    ],
    &[
        &[
            -0.9748575, 0.9242245, -0.9251947, -0.8561174, 0.5596406, -0.9833847, -0.9795835, 0.9733701, -0.9523274,
            -0.9653367, 0.8207824, -0.8830481, -0.8750711, 0.397129, -0.9809886, -0.9750626, 0.9440902, -0.9287848,
            -0.7996724, 0.5145056, -0.9849706, -0.9569049, 0.800908, -0.9728412,
        ],
        &[
            -0.8068717, -0.4719855, -0.4260328, 0.3463337, -0.7929933, -0.738991, -0.8673891, -0.2271193, -0.4435805,
            0.7431196, -0.8114821, -0.5832101, -0.2904988, 0.3882212, -0.666865, -0.1208151,
        ],
    ],
];

/// numpy; LiteRT 2.3 (BUILTIN_REF) within 4.53e-08.
const BIDI_LSTM_TM_MERGED: &[&[&[f64]]] = &[
    &[&[
        0.08208725,
        0.05355949,
        -0.09051857,
        -0.5684205,
        0.2667444,
        -0.356091,
        0.08308356,
        0.0799304,
        -0.09970049,
        -0.5983819,
        0.2692178,
        -0.3115091,
        0.1252136,
        0.1292096,
        -0.1655045,
        -0.5630962,
        0.2707694,
        -0.4014216,
        0.1231041,
        0.166136,
        -0.1801022,
        -0.6092517,
        0.2560015,
        -0.319532,
        0.1397706,
        0.2104715,
        -0.2290383,
        -0.5620184,
        0.2846001,
        -0.5827286,
        0.1703101,
        -0.184738,
        -0.1848064,
        -0.8260247,
        0.3677711,
        -0.483355,
    ]],
    &[&[
        0.1855516, -0.1671721, -0.2207262, -0.6937169, 0.192742, -0.3044287, 0.131491, -0.2534779, -0.1341421,
        -0.6975359, 0.2043106, -0.3052402, 0.1528912, -0.2142776, -0.1788596, -0.6990008, 0.2376898, -0.3150729,
        0.1217969, -0.2146299, -0.1436824, -0.704924, 0.2484471, -0.3144621, 0.1453015, -0.1579885, -0.1932549,
        -0.6977957, 0.296722, -0.3461703, 0.1416077, -0.116293, -0.1980885, -0.7065374, 0.300655, -0.3321427,
    ]],
];

/// numpy; LiteRT 2.3 (BUILTIN_REF) within 3.87e-08.
const BIDI_LSTM_BM_SPLIT: &[&[&[f64]]] = &[
    &[
        &[
            0.08208725,
            0.05355949,
            -0.09051857,
            0.1259403,
            0.104051,
            -0.1548429,
            0.1459418,
            0.153602,
            -0.2024888,
            0.08400655,
            0.1293103,
            -0.1184273,
            0.1189356,
            0.2113988,
            -0.1980652,
            0.1712289,
            -0.1682966,
            -0.1986312,
        ],
        &[
            -0.5763978, 0.2694756, -0.3443087, -0.5733581, 0.272026, -0.3759911, -0.5879143, 0.2938613, -0.5421068,
            -0.5879531, 0.2717801, -0.3454995, -0.6088481, 0.2604648, -0.332949, -0.8260247, 0.3677711, -0.483355,
        ],
    ],
    &[
        &[
            0.1874479,
            -0.1886976,
            -0.2047076,
            0.1392379,
            -0.2543293,
            -0.1443168,
            0.113035,
            -0.2476662,
            -0.1254759,
            0.1549877,
            -0.1806133,
            -0.1894688,
            0.1492746,
            -0.1444656,
            -0.2008525,
            0.1577467,
            -0.08452193,
            -0.2320047,
        ],
        &[
            -0.6947265, 0.1880223, -0.3040691, -0.6974514, 0.2241083, -0.3083662, -0.7010094, 0.2859287, -0.3316862,
            -0.6985751, 0.2208476, -0.3176089, -0.7040746, 0.2563813, -0.3239043, -0.7007744, 0.301806, -0.341841,
        ],
    ],
];

/// numpy; LiteRT 2.3 (BUILTIN_REF) within 4.46e-08.
const BIDI_LSTM_TM_AUX: &[&[&[f64]]] = &[
    &[
        &[
            0.08208725,
            0.05355949,
            -0.09051857,
            0.08308356,
            0.0799304,
            -0.09970049,
            0.1252136,
            0.1292096,
            -0.1655045,
            0.1231041,
            0.166136,
            -0.1801022,
            0.1397706,
            0.2104715,
            -0.2290383,
            0.1703101,
            -0.184738,
            -0.1848064,
        ],
        &[
            -0.5736177, 0.2645624, -0.3378874, -0.5684205, 0.2667444, -0.356091, -0.5681531, 0.2692978, -0.3830014,
            -0.5630962, 0.2707694, -0.4014216, -0.5750727, 0.2892945, -0.5623057, -0.5620184, 0.2846001, -0.5827286,
        ],
    ],
    &[
        &[
            0.1855516, -0.1671721, -0.2207262, 0.131491, -0.2534779, -0.1341421, 0.1528912, -0.2142776, -0.1788596,
            0.1217969, -0.2146299, -0.1436824, 0.1453015, -0.1579885, -0.1932549, 0.1416077, -0.116293, -0.1980885,
        ],
        &[
            -0.6095219, 0.2575546, -0.3253459, -0.6937169, 0.192742, -0.3044287, -0.6968746, 0.2254814, -0.3091693,
            -0.6990008, 0.2376898, -0.3150729, -0.7011559, 0.2895653, -0.3357582, -0.6977957, 0.296722, -0.3461703,
        ],
    ],
];

/// Invoke `bytes` once per entry of `inputs` (the model's inputs for that
/// invoke) and compare every output with `want`: the state the op keeps in
/// its variable tensors carries over from invoke to invoke.
fn check_invokes(bytes: &[u8], inputs: &[Vec<Vec<f32>>], want: &[&[&[f64]]], what: &str) {
    with_interpreter(bytes, |it| {
        assert_eq!(it.output_count(), want[0].len(), "{what}: outputs");
        for (k, (xs, want)) in inputs.iter().zip(want).enumerate() {
            let xs: Vec<&[f32]> = xs.iter().map(Vec::as_slice).collect();
            let outs = invoke(it, &xs).unwrap_or_else(|e| panic!("{what}: invoke {k}: {e}"));
            for (j, (got, want)) in outs.iter().zip(want.iter()).enumerate() {
                assert_close(got, want, 1e-5, &format!("{what} invoke {k} output {j}"));
            }
        }
    })
    .unwrap_or_else(|e| panic!("{what}: {e}"));
}

/// The inputs `wave(n, seed + k)` for invokes `k = 0..invokes`.
fn waves(n: usize, seed: usize, invokes: usize) -> Vec<Vec<Vec<f32>>> {
    (0..invokes).map(|k| vec![wave(n, seed + k)]).collect()
}

fn output_shapes(bytes: &[u8]) -> Vec<Vec<usize>> {
    with_interpreter(bytes, |it| (0..it.output_count()).map(|i| it.output(i).unwrap().shape().to_vec()).collect())
        .unwrap()
}

#[test]
fn svdf_float_over_three_invokes() {
    check_invokes(&svdf_model(false), &waves(6, 10, 3), SVDF_F32, "SVDF float");
}

#[test]
fn svdf_hybrid_over_three_invokes() {
    check_invokes(&svdf_model(true), &waves(6, 10, 3), SVDF_HYBRID, "SVDF hybrid");
}

#[test]
fn rnn_float_and_hybrid_over_two_invokes() {
    check_invokes(&rnn_model(false, false), &waves(6, 20, 2), RNN_F32, "RNN float");
    check_invokes(&rnn_model(true, false), &waves(6, 20, 2), RNN_HYBRID, "RNN hybrid");
    check_invokes(&rnn_model(true, true), &waves(6, 20, 2), RNN_HYBRID_ASYM, "RNN hybrid asymmetric");
}

#[test]
fn unidirectional_sequence_rnn_both_layouts() {
    check_invokes(&sequence_rnn_model(false), &waves(24, 30, 2), USEQ_RNN_BM, "batch-major");
    check_invokes(&sequence_rnn_model(true), &waves(24, 30, 2), USEQ_RNN_TM, "time-major");
}

#[test]
fn bidirectional_sequence_rnn_split_and_merged() {
    let inputs = waves(24, 50, 2);
    check_invokes(&bidirectional_rnn_model(false, false), &inputs, BIDI_RNN_BM_SPLIT, "batch-major, split");
    check_invokes(&bidirectional_rnn_model(true, true), &inputs, BIDI_RNN_TM_MERGED, "time-major, merged");
    check_invokes(&bidirectional_rnn_model(true, false), &inputs, BIDI_RNN_TM_SPLIT, "time-major, split");
    assert_eq!(output_shapes(&bidirectional_rnn_model(true, true)), [vec![4, 2, 5]]);
    // TFLite shapes a separate backward output [batch, time, units] even
    // when the sequence is time-major (its values are in time-major order).
    assert_eq!(output_shapes(&bidirectional_rnn_model(true, false)), [vec![4, 2, 3], vec![2, 4, 2]]);
}

#[test]
fn bidirectional_sequence_lstm_split_merged_and_aux() {
    let inputs = waves(12, 90, 2);
    check_invokes(&bidirectional_lstm_model(true, true, false), &inputs, BIDI_LSTM_TM_MERGED, "time-major, merged");
    check_invokes(&bidirectional_lstm_model(false, false, false), &inputs, BIDI_LSTM_BM_SPLIT, "batch-major, split");
    let with_aux: Vec<Vec<Vec<f32>>> = (0..2).map(|k| vec![wave(12, 90 + k), wave(12, 95 + k)]).collect();
    check_invokes(&bidirectional_lstm_model(true, false, true), &with_aux, BIDI_LSTM_TM_AUX, "auxiliary input");
    assert_eq!(output_shapes(&bidirectional_lstm_model(true, true, false)), [vec![3, 2, 6]]);
    assert_eq!(output_shapes(&bidirectional_lstm_model(false, false, false)), [vec![2, 3, 3], vec![2, 3, 3]]);
}

// ----- malformed recurrent nodes ------------------------------------------

/// Edits of a hand-built model's first subgraph and one of its nodes (the
/// first unless `focus` says otherwise).
struct Edit(fb::Model, usize);

impl Edit {
    fn sg(&mut self) -> &mut fb::SubGraph {
        &mut self.0.subgraphs.as_mut().unwrap()[0]
    }
    fn tensor(&mut self, i: i32) -> &mut fb::Tensor {
        &mut self.sg().tensors.as_mut().unwrap()[i as usize]
    }
    fn node(&mut self) -> &mut fb::Operator {
        let focus = self.1;
        &mut self.sg().operators.as_mut().unwrap()[focus]
    }
    fn input(&mut self, k: usize, t: i32) {
        self.node().inputs.as_mut().unwrap()[k] = t;
    }
    /// Make state tensor `t` an ordinary graph input.
    fn not_variable(&mut self, t: i32) {
        self.tensor(t).is_variable = false;
        self.sg().inputs.as_mut().unwrap().push(t);
    }
    /// Add a tensor; returns its index.
    fn add(&mut self, t: T) -> i32 {
        let one = build(vec![g(vec![t], &[], &[], vec![])]);
        let mut m = decode(&one);
        let mut tensor = m.subgraphs.as_mut().unwrap()[0].tensors.as_mut().unwrap().remove(0);
        if tensor.buffer != 0 {
            let buffers = self.0.buffers.as_mut().unwrap();
            buffers.push(m.buffers.as_mut().unwrap().remove(tensor.buffer as usize));
            tensor.buffer = buffers.len() as u32 - 1;
        }
        let tensors = self.sg().tensors.as_mut().unwrap();
        tensors.push(tensor);
        tensors.len() as i32 - 1
    }
}

fn decode(bytes: &[u8]) -> fb::Model {
    use planus::ReadAsRoot;
    fb::Model::try_from(fb::ModelRef::read_as_root(bytes).unwrap()).unwrap()
}

fn edit(bytes: &[u8], f: impl FnOnce(&mut Edit)) -> Vec<u8> {
    let mut e = Edit(decode(bytes), 0);
    f(&mut e);
    finish_model(&mut planus::Builder::new(), &e.0)
}

/// Each edit of `bytes` must make `allocate_tensors()` fail with an
/// operator error that `expect` accepts (and never panic).
fn refused(bytes: &[u8], cases: Vec<Case>) {
    for (what, f, expect) in cases {
        let e = allocate_err(&edit(bytes, f));
        assert!(expect(op_error(&e)), "{what}: {e}");
    }
}

fn shape(e: &OpError) -> bool {
    matches!(e, OpError::Shape(_))
}
fn dtype(e: &OpError) -> bool {
    matches!(e, OpError::DType { .. })
}
fn missing(e: &OpError) -> bool {
    matches!(e, OpError::MissingInput(_))
}
fn arity(e: &OpError) -> bool {
    matches!(e, OpError::Arity { .. })
}
fn unsupported(e: &OpError) -> bool {
    matches!(e, OpError::Unsupported(_))
}
fn value(e: &OpError) -> bool {
    matches!(e, OpError::Value(_))
}

type Case = (&'static str, Box<dyn FnOnce(&mut Edit)>, fn(&OpError) -> bool);

fn case(what: &'static str, f: impl FnOnce(&mut Edit) + 'static, expect: fn(&OpError) -> bool) -> Case {
    (what, Box::new(f), expect)
}

fn svdf_options(rank: i32) -> Option<BuiltinOptions> {
    Some(BuiltinOptions::SvdfOptions(Box::new(fb::SvdfOptions { rank, ..Default::default() })))
}

#[test]
fn malformed_svdf_is_refused() {
    // Tensors: 0 input, 1 feature, 2 time, 3 bias, 4 state, 5 output.
    refused(
        &svdf_model(false),
        vec![
            case("int8 input", |e| e.tensor(0).type_ = TT::Int8, unsupported),
            case("int32 input", |e| e.tensor(0).type_ = TT::Int32, dtype),
            case("3-D input", |e| e.tensor(0).shape = Some(vec![2, 3, 1]), shape),
            case("2-D bias", |e| e.input(3, 1), shape),
            case("feature weights of 2 inputs", |e| e.input(1, 3), shape),
            case(
                "time weights of another filter count",
                |e| {
                    let t = e.add(f32s(&[3, 3], &wave(9, 0)));
                    e.input(2, t)
                },
                shape,
            ),
            case(
                "int32 feature weights",
                |e| {
                    let t = e.add(i32s(&[4, 3], &[0; 12]));
                    e.input(1, t)
                },
                dtype,
            ),
            case(
                "float feature, int8 time weights",
                |e| {
                    let t = e.add(i8s(&[4, 3], &iwave(12, 0), 0.1));
                    e.input(2, t)
                },
                unsupported,
            ),
            case("no feature weights", |e| e.input(1, -1), missing),
            case("state not variable", |e| e.not_variable(4), unsupported),
            case("state too small", |e| e.tensor(4).shape = Some(vec![2, 11]), shape),
            case("rank 3 of 4 filters", |e| e.node().builtin_options = svdf_options(3), value),
            case("rank 0", |e| e.node().builtin_options = svdf_options(0), value),
            case("no options (rank 0)", |e| e.node().builtin_options = None, value),
            case("four inputs", |e| e.node().inputs.as_mut().unwrap().truncate(4), arity),
            case("int8 output", |e| e.tensor(5).type_ = TT::Int8, dtype),
        ],
    );
    refused(
        &svdf_model(true),
        vec![
            case("int8 weights without quantisation", |e| e.tensor(1).quantization = None, value),
            case(
                "int8 weights with a zero point",
                |e| e.tensor(1).quantization.as_mut().unwrap().zero_point = Some(vec![3]),
                unsupported,
            ),
        ],
    );
}

#[test]
fn malformed_rnn_is_refused() {
    // Tensors: 0 input, 1 weights, 2 recurrent weights, 3 bias, 4 hidden
    // state, 5 output.
    refused(
        &rnn_model(false, false),
        vec![
            case("3-D input", |e| e.tensor(0).shape = Some(vec![2, 3, 1]), shape),
            case("int32 input", |e| e.tensor(0).type_ = TT::Int32, dtype),
            case("recurrent weights [4, 3]", |e| e.input(2, 1), shape),
            case(
                "weights of another input size",
                |e| {
                    let t = e.add(f32s(&[4, 2], &wave(8, 0)));
                    e.input(1, t)
                },
                shape,
            ),
            case("no bias", |e| e.input(3, -1), missing),
            case(
                "bias of 3",
                |e| {
                    let t = e.add(f32s(&[3], &wave(3, 0)));
                    e.input(3, t)
                },
                shape,
            ),
            case("hidden state not variable", |e| e.not_variable(4), unsupported),
            case("hidden state [2, 5]", |e| e.tensor(4).shape = Some(vec![2, 5]), shape),
            case(
                "float64 weights",
                |e| {
                    let t = e.add(T { data: Some(vec![0; 96]), ..act(TT::Float64, &[4, 3]) });
                    e.input(1, t)
                },
                dtype,
            ),
            case(
                "two outputs",
                |e| {
                    let t = e.add(act(TT::Float32, &[2, 4]));
                    e.node().outputs.as_mut().unwrap().push(t)
                },
                arity,
            ),
            case("six inputs", |e| e.node().inputs.as_mut().unwrap().push(0), arity),
        ],
    );
    refused(
        &rnn_model(true, false),
        vec![
            case(
                "int8 and float weights",
                |e| {
                    let t = e.add(f32s(&[4, 4], &wave(16, 0)));
                    e.input(2, t)
                },
                unsupported,
            ),
            case("int8 weights without quantisation", |e| e.tensor(2).quantization = None, value),
        ],
    );
    refused(
        &sequence_rnn_model(false),
        vec![
            case("2-D input", |e| e.tensor(0).shape = Some(vec![2, 3]), shape),
            case("input of 5 features", |e| e.tensor(0).shape = Some(vec![2, 4, 5]), shape),
            case("hidden state of another batch", |e| e.tensor(4).shape = Some(vec![3, 3]), shape),
            case("hidden state not variable", |e| e.not_variable(4), unsupported),
            case("no recurrent weights", |e| e.input(2, -1), missing),
        ],
    );
}

fn bidi_rnn_options(merged: bool) -> Option<BuiltinOptions> {
    Some(BuiltinOptions::BidirectionalSequenceRnnOptions(Box::new(fb::BidirectionalSequenceRnnOptions {
        merge_outputs: merged,
        ..Default::default()
    })))
}

#[test]
fn malformed_bidirectional_sequence_rnn_is_refused() {
    // Tensors: 0 input; 1-4 forward weights, recurrent weights, bias,
    // state; 5-8 backward; 9 (and 10) outputs.
    refused(
        &bidirectional_rnn_model(false, false),
        vec![
            case("an auxiliary input", |e| e.input(9, 0), unsupported),
            case(
                "int8 weights",
                |e| {
                    let t = e.add(i8s(&[3, 3], &iwave(9, 0), 0.1));
                    let u = e.add(i8s(&[3, 3], &iwave(9, 1), 0.1));
                    e.input(1, t);
                    e.input(2, u)
                },
                unsupported,
            ),
            case("merged outputs, two output tensors", |e| e.node().builtin_options = bidi_rnn_options(true), arity),
            case("no backward state", |e| e.input(8, -1), missing),
            case("backward state not variable", |e| e.not_variable(8), unsupported),
            case("forward state of 2 units", |e| e.tensor(4).shape = Some(vec![2, 2]), shape),
            case("backward weights of another input size", |e| e.input(5, 6), shape),
            // Found by the mutation test below: the second reader of a
            // variable tensor gets no bytes at eval.
            case("backward weights are the forward state", |e| e.input(5, 4), unsupported),
            case("eight inputs", |e| e.node().inputs.as_mut().unwrap().truncate(8), arity),
            case("2-D input", |e| e.tensor(0).shape = Some(vec![2, 12]), shape),
        ],
    );
}

fn bidi_lstm_options(f: impl FnOnce(&mut fb::BidirectionalSequenceLstmOptions)) -> Option<BuiltinOptions> {
    let mut o = fb::BidirectionalSequenceLstmOptions {
        fused_activation_function: Act::Tanh,
        time_major: true,
        ..Default::default()
    };
    f(&mut o);
    Some(BuiltinOptions::BidirectionalSequenceLstmOptions(Box::new(o)))
}

#[test]
fn malformed_bidirectional_sequence_lstm_is_refused() {
    let bytes = bidirectional_lstm_model(true, false, false);
    let node_input =
        |k: usize| decode(&bytes).subgraphs.unwrap()[0].operators.as_ref().unwrap()[0].inputs.as_ref().unwrap()[k];
    let (fw_forget_bias, bw_state, bw_projection) = (node_input(13), node_input(37), node_input(33));
    refused(
        &bytes,
        vec![
            case("47 inputs", |e| e.node().inputs.as_mut().unwrap().truncate(47), arity),
            case("auxiliary input weights", move |e| e.input(41, fw_forget_bias), unsupported),
            case("no backward input-to-forget weights", |e| e.input(19, -1), missing),
            case("non-constant weights", |e| e.input(2, 0), unsupported),
            case("forget gate bias of [3, 3]", move |e| e.input(13, bw_projection), shape),
            case("backward state not variable", move |e| e.not_variable(bw_state), unsupported),
            case("backward state too small", move |e| e.tensor(bw_state).shape = Some(vec![2, 2]), shape),
            case("int32 input", |e| e.tensor(0).type_ = TT::Int32, dtype),
            case("2-D input", |e| e.tensor(0).shape = Some(vec![6, 2]), shape),
            case(
                "merged outputs, two output tensors",
                |e| e.node().builtin_options = bidi_lstm_options(|o| o.merge_outputs = true),
                arity,
            ),
            case(
                "sign-bit activation",
                |e| e.node().builtin_options = bidi_lstm_options(|o| o.fused_activation_function = Act::SignBit),
                unsupported,
            ),
            case("negative cell clip", |e| e.node().builtin_options = bidi_lstm_options(|o| o.cell_clip = -1.0), value),
            case(
                "int8 weights, batch-major input",
                |e| {
                    e.node().builtin_options = bidi_lstm_options(|o| o.time_major = false);
                    for k in [1, 2, 3, 4, 19, 20, 21] {
                        let t = e.add(i8s(&[3, 2], &iwave(6, k), 0.01));
                        e.input(k, t);
                    }
                    for k in [5, 6, 7, 8, 23, 24, 25, 33] {
                        let t = e.add(i8s(&[3, 3], &iwave(9, k), 0.01));
                        e.input(k, t);
                    }
                },
                unsupported,
            ),
            case(
                "int8 and float weights",
                |e| {
                    let t = e.add(i8s(&[3, 2], &iwave(6, 0), 0.01));
                    e.input(2, t)
                },
                unsupported,
            ),
        ],
    );
    let with_aux = bidirectional_lstm_model(true, false, true);
    let aux = decode(&with_aux).subgraphs.unwrap()[0].inputs.as_ref().unwrap()[1];
    refused(
        &with_aux,
        vec![
            case("auxiliary input of 3 features", move |e| e.tensor(aux).shape = Some(vec![3, 2, 3]), shape),
            case("int32 auxiliary input", move |e| e.tensor(aux).type_ = TT::Int32, dtype),
        ],
    );
}

/// Random structural damage to the hand-built models (inputs rewired or
/// dropped, tensor types, shapes and quantisation changed, state made
/// ordinary, options changed) gives errors, never a panic, at allocation
/// or over two invokes.
#[test]
fn mutated_models_never_panic() {
    // xorshift64: the same mutations on every run.
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut rnd = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n.max(1)
    };
    let models: Vec<Vec<u8>> = vec![
        svdf_model(false),
        svdf_model(true),
        rnn_model(true, true),
        sequence_rnn_model(true),
        bidirectional_rnn_model(true, false),
        bidirectional_rnn_model(false, true),
        bidirectional_lstm_model(true, true, false),
        bidirectional_lstm_model(false, false, true),
        accumulator(1),
        two_assignments([("a", "v"), ("a", "v"), ("a", "v")], f32s(&[2], &[1.0, 2.0]), &[2]),
    ];
    let types = [TT::Float32, TT::Int8, TT::Int32, TT::Resource, TT::Int16, TT::Bool, TT::Float64];
    let mut oks = 0;
    for round in 0..3000 {
        let base = &models[round % models.len()];
        let bytes = edit(base, |e| {
            let nt = e.sg().tensors.as_ref().unwrap().len() as u64;
            e.1 = rnd(e.sg().operators.as_ref().unwrap().len() as u64) as usize;
            for _ in 0..1 + rnd(3) {
                let ni = e.node().inputs.as_ref().unwrap().len() as u64;
                match rnd(7) {
                    0 if ni > 0 => {
                        let k = rnd(ni) as usize;
                        let t = rnd(nt + 1) as i32 - 1;
                        e.input(k, t);
                    }
                    1 => {
                        let t = rnd(nt) as i32;
                        let ty = types[rnd(types.len() as u64) as usize];
                        if e.tensor(t).buffer == 0 {
                            e.tensor(t).type_ = ty;
                        }
                    }
                    2 => {
                        let t = rnd(nt) as i32;
                        if e.tensor(t).buffer == 0 {
                            let r = rnd(4) as usize;
                            e.tensor(t).shape = Some((0..r).map(|_| rnd(5) as i32).collect());
                        }
                    }
                    3 => {
                        let t = rnd(nt) as i32;
                        if e.tensor(t).buffer == 0 && e.tensor(t).is_variable {
                            e.not_variable(t);
                        }
                    }
                    4 => {
                        let t = rnd(nt) as i32;
                        e.tensor(t).quantization = None;
                    }
                    5 => {
                        let inputs = e.node().inputs.as_mut().unwrap();
                        let l = rnd(inputs.len() as u64 + 1) as usize;
                        inputs.truncate(l);
                    }
                    _ => {
                        let o = &mut e.node().builtin_options;
                        match o {
                            Some(BuiltinOptions::SvdfOptions(x)) => x.rank = rnd(6) as i32 - 1,
                            Some(BuiltinOptions::BidirectionalSequenceRnnOptions(x)) => {
                                x.merge_outputs = rnd(2) == 0;
                                x.time_major = rnd(2) == 0;
                            }
                            Some(BuiltinOptions::BidirectionalSequenceLstmOptions(x)) => {
                                x.merge_outputs = rnd(2) == 0;
                                x.time_major = rnd(2) == 0;
                                x.proj_clip = rnd(3) as f32 - 1.0;
                            }
                            Some(BuiltinOptions::SequenceRnnOptions(x)) => x.time_major = rnd(2) == 0,
                            _ => *o = None,
                        }
                    }
                }
            }
        });
        let r = std::panic::catch_unwind(|| {
            let Ok(model) = Model::from_bytes(&bytes) else { return false };
            let resolver = OpResolver::with_builtins();
            let Ok(mut it) = Interpreter::new(&model, &resolver, InterpreterOptions::default()) else { return false };
            if it.allocate_tensors().is_err() {
                return false;
            }
            for i in 0..it.input_count() {
                if let Ok(t) = it.input_mut(i) {
                    t.bytes.fill(0x3f);
                }
            }
            let _ = it.invoke();
            let _ = it.invoke();
            true
        });
        match r {
            Ok(true) => oks += 1,
            Ok(false) => {}
            Err(_) => {
                let m = decode(&bytes);
                let sg = &m.subgraphs.as_ref().unwrap()[0];
                for (i, t) in sg.tensors.as_ref().unwrap().iter().enumerate() {
                    eprintln!("t{i}: {:?} {:?} buf {} var {}", t.type_, t.shape, t.buffer, t.is_variable);
                }
                eprintln!("inputs {:?} outputs {:?}", sg.inputs, sg.outputs);
                for o in sg.operators.as_ref().unwrap() {
                    eprintln!("op {:?} -> {:?}", o.inputs, o.outputs);
                }
                panic!("round {round} panicked")
            }
        }
    }
    // Enough of them get past allocation for eval to be exercised too.
    assert!(oks > 300, "only {oks} mutated models ran");
}
