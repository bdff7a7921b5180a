//! WHILE and IF: converter-made models against LiteRT, and hand-built ones
//! for the cases a converter does not make (recursion, endless loops,
//! branches that disagree).

mod support;

use ferrolite::schema::{self as fb, finish_model, BuiltinOperator, BuiltinOptions, TensorType};
use ferrolite::{Interpreter, InterpreterOptions, Model, OpResolver};

/// `tf.while_loop` then `tf.cond`: WHILE, IF, and their subgraphs.
#[test]
fn while_and_if_match_litert() {
    support::check_float_fixture("control_flow.f32", 1);
}

/// Keras GRU + SimpleRNN: two WHILE loops whose bodies slice at the step
/// counter (shapes computed inside the loop, so the bodies run eagerly).
#[test]
fn keras_rnn_layers_match_litert() {
    support::check_float_fixture("recurrent.f32", 1);
    support::check_float_fixture("recurrent.f32", 2);
}

/// The same with int8 weights (hybrid FULLY_CONNECTED inside the loop body).
#[test]
fn keras_rnn_layers_dynamic_range_match_litert() {
    support::check_float_fixture("recurrent.dyn", 1);
}

// ----- hand-built models -------------------------------------------------

fn tensor(name: &str, ty: TensorType, shape: &[i32], buffer: u32) -> fb::Tensor {
    fb::Tensor { name: Some(name.into()), type_: ty, shape: Some(shape.to_vec()), buffer, ..Default::default() }
}

fn op(opcode: u32, inputs: &[i32], outputs: &[i32], options: Option<BuiltinOptions>) -> fb::Operator {
    fb::Operator {
        opcode_index: opcode,
        inputs: Some(inputs.to_vec()),
        outputs: Some(outputs.to_vec()),
        builtin_options: options,
        ..Default::default()
    }
}

fn subgraph(
    name: &str,
    tensors: Vec<fb::Tensor>,
    inputs: &[i32],
    outputs: &[i32],
    ops: Vec<fb::Operator>,
) -> fb::SubGraph {
    fb::SubGraph {
        name: Some(name.into()),
        tensors: Some(tensors),
        inputs: Some(inputs.to_vec()),
        outputs: Some(outputs.to_vec()),
        operators: Some(ops),
        ..Default::default()
    }
}

const CODES: [BuiltinOperator; 4] =
    [BuiltinOperator::While, BuiltinOperator::Less, BuiltinOperator::Add, BuiltinOperator::If];
const WHILE: u32 = 0;
const LESS: u32 = 1;
const ADD: u32 = 2;
const IF: u32 = 3;

fn model(subgraphs: Vec<fb::SubGraph>, constants: Vec<Vec<u8>>) -> Vec<u8> {
    let mut buffers = vec![fb::Buffer::default()];
    buffers.extend(constants.into_iter().map(|d| fb::Buffer { data: Some(d), ..Default::default() }));
    let m = fb::Model {
        version: 3,
        operator_codes: Some(
            CODES
                .iter()
                .map(|&c| fb::OperatorCode {
                    builtin_code: c,
                    deprecated_builtin_code: (c as i32).min(127) as i8,
                    version: 1,
                    ..Default::default()
                })
                .collect(),
        ),
        subgraphs: Some(subgraphs),
        buffers: Some(buffers),
        ..Default::default()
    };
    finish_model(&mut planus::Builder::new(), &m)
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// `while x < limit: x = x + step` on a float vector of `lanes` values;
/// the condition is LESS on all lanes, so only `lanes == 1` gives the one
/// bool a WHILE condition must.
fn counting_loop(lanes: i32, limit: f32, step: f32, cond: i32, body: i32) -> Vec<u8> {
    let (f, n) = (TensorType::Float32, lanes as usize);
    let main = subgraph(
        "main",
        vec![tensor("x", f, &[lanes], 0), tensor("y", f, &[lanes], 0)],
        &[0],
        &[1],
        vec![op(
            WHILE,
            &[0],
            &[1],
            Some(BuiltinOptions::WhileOptions(Box::new(fb::WhileOptions {
                cond_subgraph_index: cond,
                body_subgraph_index: body,
            }))),
        )],
    );
    let cond_sg = subgraph(
        "cond",
        vec![tensor("x", f, &[lanes], 0), tensor("limit", f, &[lanes], 1), tensor("go", TensorType::Bool, &[lanes], 0)],
        &[0],
        &[2],
        vec![op(LESS, &[0, 1], &[2], None)],
    );
    let body_sg = subgraph(
        "body",
        vec![tensor("x", f, &[lanes], 0), tensor("step", f, &[lanes], 2), tensor("x2", f, &[lanes], 0)],
        &[0],
        &[2],
        vec![op(ADD, &[0, 1], &[2], Some(BuiltinOptions::AddOptions(Box::default())))],
    );
    model(vec![main, cond_sg, body_sg], vec![f32_bytes(&vec![limit; n]), f32_bytes(&vec![step; n])])
}

fn scalar_loop(limit: f32, step: f32, cond: i32, body: i32) -> Vec<u8> {
    counting_loop(1, limit, step, cond, body)
}

fn allocate(bytes: &[u8], options: InterpreterOptions) -> Result<(), String> {
    let m = Model::from_bytes(bytes).map_err(|e| e.to_string())?;
    let r = OpResolver::with_builtins();
    let mut it = Interpreter::new(&m, &r, options).map_err(|e| e.to_string())?;
    it.allocate_tensors().map_err(|e| e.to_string())
}

#[test]
fn a_condition_must_give_one_value() {
    // With three lanes the condition outputs three bools: refused at prepare, naming
    // the condition subgraph.
    let err = allocate(&counting_loop(3, 5.0, 1.0, 1, 2), InterpreterOptions::default()).unwrap_err();
    assert!(err.contains("WHILE condition subgraph 1 must output one bool value"), "{err}");
}

fn run_scalar(bytes: &[u8], x: f32, options: InterpreterOptions) -> Result<f32, String> {
    let m = Model::from_bytes(bytes).map_err(|e| e.to_string())?;
    let r = OpResolver::with_builtins();
    let mut it = Interpreter::new(&m, &r, options).map_err(|e| e.to_string())?;
    it.allocate_tensors().map_err(|e| e.to_string())?;
    it.set_input(0, &[x]).map_err(|e| e.to_string())?;
    it.invoke().map_err(|e| e.to_string())?;
    Ok(it.output(0).map_err(|e| e.to_string())?.as_slice::<f32>().map_err(|e| e.to_string())?[0])
}

#[test]
fn while_counts_up_to_the_limit() {
    let m = scalar_loop(10.0, 3.0, 1, 2);
    // 0 -> 3 -> 6 -> 9 -> 12 (stops once 12 < 10 is false).
    assert_eq!(run_scalar(&m, 0.0, InterpreterOptions::default()).unwrap(), 12.0);
    // Already past the limit: the body never runs.
    assert_eq!(run_scalar(&m, 11.0, InterpreterOptions::default()).unwrap(), 11.0);
}

#[test]
fn an_endless_loop_stops_with_an_error() {
    // A step of 0 never reaches the limit.
    let m = scalar_loop(10.0, 0.0, 1, 2);
    let options = InterpreterOptions { max_while_iterations: 1000, ..Default::default() };
    let err = run_scalar(&m, 0.0, options).unwrap_err();
    assert!(err.contains("WHILE ran 1000 iterations"), "{err}");
}

#[test]
fn recursion_is_refused() {
    // The body is the main graph itself.
    let err = allocate(&scalar_loop(10.0, 1.0, 1, 0), InterpreterOptions::default()).unwrap_err();
    assert!(err.contains("recursion"), "{err}");
}

#[test]
fn subgraph_indices_are_checked() {
    let err = allocate(&scalar_loop(10.0, 1.0, 1, 7), InterpreterOptions::default()).unwrap_err();
    assert!(err.contains("subgraph 7 does not exist"), "{err}");
    let err = allocate(&scalar_loop(10.0, 1.0, -1, 2), InterpreterOptions::default()).unwrap_err();
    assert!(err.contains("negative"), "{err}");
}

/// `IF(c, x)`: then adds 1, else adds 100.
fn if_model() -> Vec<u8> {
    let f = TensorType::Float32;
    let main = subgraph(
        "main",
        vec![tensor("c", TensorType::Bool, &[1], 0), tensor("x", f, &[2], 0), tensor("y", f, &[2], 0)],
        &[0, 1],
        &[2],
        vec![op(
            IF,
            &[0, 1],
            &[2],
            Some(BuiltinOptions::IfOptions(Box::new(fb::IfOptions { then_subgraph_index: 1, else_subgraph_index: 2 }))),
        )],
    );
    let branch = |name: &str, buffer: u32| {
        subgraph(
            name,
            vec![tensor("x", f, &[2], 0), tensor("k", f, &[1], buffer), tensor("y", f, &[2], 0)],
            &[0],
            &[2],
            vec![op(ADD, &[0, 1], &[2], Some(BuiltinOptions::AddOptions(Box::default())))],
        )
    };
    model(vec![main, branch("then", 1), branch("else", 2)], vec![f32_bytes(&[1.0]), f32_bytes(&[100.0])])
}

#[test]
fn if_takes_the_branch_the_condition_picks() {
    let bytes = if_model();
    let m = Model::from_bytes(&bytes).unwrap();
    let r = OpResolver::with_builtins();
    let mut it = Interpreter::new(&m, &r, InterpreterOptions::default()).unwrap();
    it.allocate_tensors().unwrap();
    for (c, want) in [(true, [1.5f32, 3.0]), (false, [100.5, 102.0])] {
        it.set_input_bytes(0, &[c as u8]).unwrap();
        it.set_input(1, &[0.5f32, 2.0]).unwrap();
        it.invoke().unwrap();
        assert_eq!(it.output(0).unwrap().as_slice::<f32>().unwrap(), want);
    }
}
