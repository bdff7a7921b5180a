//! Malformed model files must give a clear, typed error that names the
//! broken part (tensor, operator, buffer...), never a panic, a hang or an
//! unbounded allocation.
//!
//! Most models here are written with the schema's owned types, starting
//! from one valid RESHAPE model and breaking one thing per test; a few
//! patch the bytes of a real fixture, navigating the FlatBuffer by hand.

use std::path::{Path, PathBuf};

use ferrolite::schema::{self as fb, finish_model, BuiltinOperator, SignatureDef, SubGraph, TensorMap, TensorType};
use ferrolite::{Error, Interpreter, InterpreterOptions, Location, Model, OpResolver};

// ----- writing models ------------------------------------------------------

fn tensor(name: &str, type_: TensorType, shape: &[i32], buffer: u32) -> fb::Tensor {
    fb::Tensor { name: Some(name.into()), type_, shape: Some(shape.to_vec()), buffer, ..Default::default() }
}

fn i32_bytes(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The valid baseline: `output = RESHAPE(input [2,3], shape = [3,2])`, the
/// shape a constant in buffer 1.
fn baseline() -> fb::Model {
    fb::Model {
        version: 3,
        operator_codes: Some(vec![fb::OperatorCode {
            builtin_code: BuiltinOperator::Reshape,
            deprecated_builtin_code: BuiltinOperator::Reshape as i8,
            version: 1,
            ..Default::default()
        }]),
        subgraphs: Some(vec![SubGraph {
            tensors: Some(vec![
                tensor("input", TensorType::Float32, &[2, 3], 0),
                tensor("output", TensorType::Float32, &[3, 2], 0),
                tensor("shape", TensorType::Int32, &[2], 1),
            ]),
            inputs: Some(vec![0]),
            outputs: Some(vec![1]),
            operators: Some(vec![fb::Operator {
                opcode_index: 0,
                inputs: Some(vec![0, 2]),
                outputs: Some(vec![1]),
                ..Default::default()
            }]),
            name: Some("main".into()),
            ..Default::default()
        }]),
        buffers: Some(vec![fb::Buffer::default(), fb::Buffer { data: Some(i32_bytes(&[3, 2])), ..Default::default() }]),
        description: Some("malformed.rs baseline".into()),
        ..Default::default()
    }
}

fn write(model: &fb::Model) -> Vec<u8> {
    finish_model(&mut planus::Builder::new(), model)
}

fn sg(model: &mut fb::Model) -> &mut SubGraph {
    &mut model.subgraphs.as_mut().unwrap()[0]
}

fn tensors(model: &mut fb::Model) -> &mut Vec<fb::Tensor> {
    sg(model).tensors.as_mut().unwrap()
}

fn op(model: &mut fb::Model, i: usize) -> &mut fb::Operator {
    &mut sg(model).operators.as_mut().unwrap()[i]
}

/// Load, expecting an error.
fn load_err(bytes: &[u8]) -> Error {
    match Model::from_bytes(bytes) {
        Ok(m) => panic!("expected a load error, got a model: {m:?}"),
        Err(e) => e,
    }
}

/// Load, build an interpreter and allocate, expecting an error at allocate.
fn allocate_err(bytes: &[u8]) -> Error {
    let model = Model::from_bytes(bytes).expect("the model should load");
    let resolver = OpResolver::with_builtins();
    let mut it =
        Interpreter::new(&model, &resolver, InterpreterOptions::default()).expect("the interpreter should build");
    match it.allocate_tensors() {
        Ok(()) => panic!("expected allocate_tensors to fail"),
        Err(e) => e,
    }
}

#[track_caller]
fn assert_invalid(e: &Error, want_loc: &Location, needle: &str) {
    match e {
        Error::InvalidModel { location, message } => {
            assert_eq!(location, want_loc, "wrong location in: {e}");
            assert!(message.contains(needle), "message should mention {needle:?}: {e}");
        }
        other => panic!("expected Error::InvalidModel at {want_loc}, got {other:?} ({other})"),
    }
}

#[track_caller]
fn assert_format(e: &Error, needle: &str) {
    match e {
        Error::Format { message, .. } => {
            assert!(
                e.to_string().contains(needle) || message.contains(needle),
                "message should mention {needle:?}: {e}"
            );
        }
        other => panic!("expected Error::Format, got {other:?} ({other})"),
    }
}

fn tensor_loc(tensor: usize, name: &str) -> Location {
    Location::Tensor { subgraph: 0, tensor, name: name.into() }
}

fn op_loc(index: usize, op: &str) -> Location {
    Location::Operator { subgraph: 0, index, op: op.into() }
}

// ----- patching bytes --------------------------------------------------------

fn u16_at(b: &[u8], p: usize) -> usize {
    u16::from_le_bytes(b[p..p + 2].try_into().unwrap()) as usize
}
fn u32_at(b: &[u8], p: usize) -> usize {
    u32::from_le_bytes(b[p..p + 4].try_into().unwrap()) as usize
}
fn put_u32(b: &mut [u8], p: usize, v: u32) {
    b[p..p + 4].copy_from_slice(&v.to_le_bytes());
}

/// Where field `idx` of the table at `table` is stored (None if absent).
fn field(b: &[u8], table: usize, idx: usize) -> Option<usize> {
    let soffset = i32::from_le_bytes(b[table..table + 4].try_into().unwrap());
    let vt = (table as i64 - soffset as i64) as usize;
    let slot = 4 + 2 * idx;
    if slot + 2 > u16_at(b, vt) {
        return None;
    }
    match u16_at(b, vt + slot) {
        0 => None,
        o => Some(table + o),
    }
}

/// Follow the offset stored at `p`.
fn deref(b: &[u8], p: usize) -> usize {
    p + u32_at(b, p)
}

fn root(b: &[u8]) -> usize {
    u32_at(b, 0)
}

/// The table that element `i` of the offset vector stored at field `p` points to.
fn element(b: &[u8], p: usize, i: usize) -> usize {
    let v = deref(b, p);
    assert!(i < u32_at(b, v));
    deref(b, v + 4 + 4 * i)
}

// Field numbers in the schema (unions take two: type, then value).
const MODEL_OPERATOR_CODES: usize = 1;
const MODEL_SUBGRAPHS: usize = 2;
const SUBGRAPH_OPERATORS: usize = 3;
const OPERATOR_INPUTS: usize = 1;
const OPERATOR_BUILTIN_OPTIONS_TYPE: usize = 3;
const OPERATOR_CODE_BUILTIN_CODE: usize = 3;

fn fixture(name: &str) -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    [root.join("testdata/models").join(name), root.join("../shared/models").join(name)].into_iter().find(|p| p.exists())
}

fn sine() -> Option<Vec<u8>> {
    match fixture("sine_float.tflite") {
        Some(p) => Some(std::fs::read(p).unwrap()),
        None => {
            eprintln!("skipped: testdata/models/sine_float.tflite is not present");
            None
        }
    }
}

// ----- the baseline ------------------------------------------------------------

#[test]
fn baseline_is_valid_and_runs() {
    let bytes = write(&baseline());
    let model = Model::from_bytes(&bytes).unwrap();
    let resolver = OpResolver::with_builtins();
    let mut it = Interpreter::new(&model, &resolver, InterpreterOptions::default()).unwrap();
    it.allocate_tensors().unwrap();
    let x = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
    it.set_input(0, &x).unwrap();
    it.invoke().unwrap();
    let out = it.output(0).unwrap();
    assert_eq!(out.shape(), &[3, 2]);
    assert_eq!(out.as_slice::<f32>().unwrap(), &x);
}

#[test]
fn sine_fixture_is_valid() {
    let Some(bytes) = sine() else { return };
    let model = Model::from_bytes(&bytes).unwrap();
    let resolver = OpResolver::with_builtins();
    let mut it = Interpreter::new(&model, &resolver, InterpreterOptions::default()).unwrap();
    it.allocate_tensors().unwrap();
}

// ----- the container -------------------------------------------------------------

#[test]
fn empty_and_tiny_files() {
    for len in 0..8 {
        let e = load_err(&vec![0u8; len]);
        assert_format(&e, "too short");
        assert!(e.to_string().contains(&format!("{len} bytes")), "{e}");
    }
}

#[test]
fn truncated_fixture() {
    let Some(bytes) = sine() else { return };
    let n = bytes.len();
    for cut in [0, 3, 7, 8, 9, 12, 16, 24, 32, 64, 100, 256, n / 4, n / 2, 3 * n / 4, n - 16, n - 4, n - 1] {
        let e = load_err(&bytes[..cut]);
        match &e {
            Error::Format { location, message } => {
                assert!(!message.is_empty());
                assert!(e.to_string().starts_with("malformed model file:"), "cut at {cut}: {e}");
                // Past the header, planus names what it was reading.
                if cut >= 8 && !message.contains("identifier") {
                    assert!(message.contains("while reading"), "cut at {cut}: {e}");
                    let _ = location;
                }
            }
            other => panic!("cut at {cut}: expected Error::Format, got {other:?}"),
        }
    }
}

#[test]
fn wrong_file_identifier() {
    let Some(mut bytes) = sine() else { return };
    bytes[4..8].copy_from_slice(b"ONNX");
    let e = load_err(&bytes);
    assert!(matches!(e, Error::Format { location: Location::Model, .. }), "{e:?}");
    assert!(e.to_string().contains("\"ONNX\""), "{e}");
    assert!(e.to_string().contains("TFL3"), "{e}");

    // A file written without any identifier (root offset, then the root table).
    let mut bytes = write(&baseline());
    bytes[4..8].copy_from_slice(&[0, 0, 0, 0]);
    assert_format(&load_err(&bytes), "TFL3");
}

#[test]
fn root_offset_past_the_end() {
    let Some(mut bytes) = sine() else { return };
    let n = bytes.len() as u32;
    for bad in [n, n + 100, u32::MAX - 3, u32::MAX] {
        put_u32(&mut bytes, 0, bad);
        let e = load_err(&bytes);
        assert!(matches!(e, Error::Format { location: Location::Model, .. }), "{bad}: {e:?}");
    }
}

#[test]
fn subgraphs_offset_past_the_end() {
    let Some(mut bytes) = sine() else { return };
    let p = field(&bytes, root(&bytes), MODEL_SUBGRAPHS).expect("subgraphs");
    put_u32(&mut bytes, p, 0x7fff_fff0);
    let e = load_err(&bytes);
    assert!(matches!(e, Error::Format { location: Location::Model, .. }), "{e:?}");
    assert!(e.to_string().contains("subgraphs"), "{e}");
}

#[test]
fn operator_inputs_offset_past_the_end() {
    let Some(mut bytes) = sine() else { return };
    let sg0 = element(&bytes, field(&bytes, root(&bytes), MODEL_SUBGRAPHS).unwrap(), 0);
    let op1 = element(&bytes, field(&bytes, sg0, SUBGRAPH_OPERATORS).unwrap(), 1);
    let p = field(&bytes, op1, OPERATOR_INPUTS).unwrap();
    let n = bytes.len() as u32;
    put_u32(&mut bytes, p, n);
    let e = load_err(&bytes);
    match &e {
        Error::Format { location: Location::Operator { subgraph: 0, index: 1, .. }, message } => {
            assert!(message.contains("inputs"), "{e}")
        }
        other => panic!("expected a Format error at operator 1, got {other:?}"),
    }
}

#[test]
fn buffer_offset_past_the_end() {
    let mut m = baseline();
    m.buffers.as_mut().unwrap()[1] = fb::Buffer { data: None, offset: 1 << 20, size: 8 };
    let e = load_err(&write(&m));
    assert_invalid(&e, &Location::Buffer(1), "past the end");

    // offset + size overflowing u64.
    m.buffers.as_mut().unwrap()[1] = fb::Buffer { data: None, offset: u64::MAX - 2, size: 8 };
    assert_invalid(&load_err(&write(&m)), &Location::Buffer(1), "past the end");
}

#[test]
fn schema_version() {
    let mut m = baseline();
    m.version = 2;
    assert_invalid(&load_err(&write(&m)), &Location::Model, "version 2");
}

#[test]
fn no_subgraphs() {
    let mut m = baseline();
    m.subgraphs = None;
    assert_invalid(&load_err(&write(&m)), &Location::Model, "no subgraphs");
    m.subgraphs = Some(vec![]);
    assert_invalid(&load_err(&write(&m)), &Location::Model, "no subgraphs");
}

// ----- indices -------------------------------------------------------------

#[test]
fn operator_input_index_out_of_range() {
    for bad in [3, 7, i32::MAX, -2, i32::MIN] {
        let mut m = baseline();
        op(&mut m, 0).inputs = Some(vec![0, bad]);
        let e = load_err(&write(&m));
        assert_invalid(&e, &op_loc(0, "RESHAPE"), &format!("input names tensor {bad}"));
        assert!(e.to_string().contains("3 tensors"), "{e}");
    }
}

#[test]
fn operator_output_index_out_of_range() {
    for bad in [3, 1000, -1] {
        let mut m = baseline();
        op(&mut m, 0).outputs = Some(vec![bad]);
        let e = load_err(&write(&m));
        assert_invalid(&e, &op_loc(0, "RESHAPE"), &format!("output names tensor {bad}"));
    }
}

#[test]
fn subgraph_input_index_out_of_range() {
    let mut m = baseline();
    sg(&mut m).inputs = Some(vec![5]);
    let e = load_err(&write(&m));
    assert_invalid(&e, &Location::Subgraph(0), "input list names tensor 5");

    let mut m = baseline();
    sg(&mut m).inputs = Some(vec![-1]);
    assert_invalid(&load_err(&write(&m)), &Location::Subgraph(0), "names tensor -1");
}

#[test]
fn subgraph_output_index_out_of_range() {
    let mut m = baseline();
    sg(&mut m).outputs = Some(vec![1, 3]);
    let e = load_err(&write(&m));
    assert_invalid(&e, &Location::Subgraph(0), "output list names tensor 3");
}

#[test]
fn tensor_buffer_index_out_of_range() {
    let mut m = baseline();
    tensors(&mut m)[2].buffer = 9;
    let e = load_err(&write(&m));
    assert_invalid(&e, &tensor_loc(2, "shape"), "buffer index 9");
}

#[test]
fn opcode_index_out_of_range() {
    let mut m = baseline();
    op(&mut m, 0).opcode_index = 5;
    let e = load_err(&write(&m));
    assert_invalid(&e, &op_loc(0, "?"), "opcode index 5");
    assert!(e.to_string().contains("1 operator codes"), "{e}");
}

#[test]
fn signature_naming_a_missing_tensor() {
    let mut m = baseline();
    m.signature_defs = Some(vec![SignatureDef {
        signature_key: Some("serving_default".into()),
        subgraph_index: 0,
        inputs: Some(vec![TensorMap { name: Some("x".into()), tensor_index: 0 }]),
        outputs: Some(vec![TensorMap { name: Some("y".into()), tensor_index: 42 }]),
    }]);
    let e = load_err(&write(&m));
    assert_invalid(&e, &Location::Signature(0), "'y' names tensor 42");
}

#[test]
fn signature_naming_a_missing_subgraph() {
    let mut m = baseline();
    m.signature_defs = Some(vec![SignatureDef {
        signature_key: Some("serving_default".into()),
        subgraph_index: 3,
        ..Default::default()
    }]);
    let e = load_err(&write(&m));
    assert_invalid(&e, &Location::Signature(0), "subgraph index 3");
}

// ----- shapes and sizes ------------------------------------------------------

#[test]
fn buffer_smaller_than_its_shape() {
    let mut m = baseline();
    m.buffers.as_mut().unwrap()[1].data = Some(i32_bytes(&[3]));
    let e = load_err(&write(&m));
    assert_invalid(&e, &tensor_loc(2, "shape"), "buffer 1 holds 4 bytes");
    assert!(e.to_string().contains("needs 8"), "{e}");
}

#[test]
fn buffer_larger_than_its_shape() {
    let mut m = baseline();
    m.buffers.as_mut().unwrap()[1].data = Some(i32_bytes(&[3, 2, 1]));
    let e = load_err(&write(&m));
    assert_invalid(&e, &tensor_loc(2, "shape"), "buffer 1 holds 12 bytes");
}

#[test]
fn negative_dimension() {
    let mut m = baseline();
    tensors(&mut m)[0].shape = Some(vec![2, -3]);
    let e = load_err(&write(&m));
    assert_invalid(&e, &tensor_loc(0, "input"), "negative dimension -3");
}

#[test]
fn dimension_product_overflows_usize() {
    let mut m = baseline();
    tensors(&mut m)[0].shape = Some(vec![i32::MAX; 4]);
    let e = load_err(&write(&m));
    assert_invalid(&e, &tensor_loc(0, "input"), "more elements than fit in memory");
}

#[test]
fn absurd_tensor_size() {
    // 2^60 float32 elements: the count fits usize, the bytes are > 1 TiB.
    let mut m = baseline();
    tensors(&mut m)[1].shape = Some(vec![1 << 20, 1 << 20, 1 << 20]);
    let e = load_err(&write(&m));
    // (On a 32-bit target the element count itself does not fit.)
    let want = if usize::BITS >= 64 { "more than 1 TiB" } else { "more elements than fit in memory" };
    assert_invalid(&e, &tensor_loc(1, "output"), want);

    // 2^62 elements: the byte count of float32 overflows usize itself.
    let mut m = baseline();
    tensors(&mut m)[1].shape = Some(vec![1 << 30, 1 << 30, 4]);
    let e = load_err(&write(&m));
    // (On a 32-bit target the element count itself does not fit.)
    let want = if usize::BITS >= 64 { "more than 1 TiB" } else { "more elements than fit in memory" };
    assert_invalid(&e, &tensor_loc(1, "output"), want);

    // Strings have no element size, but their count is bounded too.
    let mut m = baseline();
    tensors(&mut m)[1].type_ = TensorType::String;
    tensors(&mut m)[1].shape = Some(vec![1 << 30, 1 << 30, 4]);
    let e = load_err(&write(&m));
    // (On a 32-bit target the element count itself does not fit.)
    let want = if usize::BITS >= 64 { "more than 1 TiB" } else { "more elements than fit in memory" };
    assert_invalid(&e, &tensor_loc(1, "output"), want);
}

#[test]
fn absurd_rank() {
    let mut m = baseline();
    tensors(&mut m)[0].shape = Some(vec![1; 17]);
    let e = load_err(&write(&m));
    assert_invalid(&e, &tensor_loc(0, "input"), "rank 17");
}

#[test]
fn unknown_tensor_type() {
    let mut m = baseline();
    // Write a valid type, then patch it: the owned enum cannot hold 99.
    tensors(&mut m)[0].type_ = TensorType::Int64;
    let mut bytes = write(&m);
    let sg0 = element(&bytes, field(&bytes, root(&bytes), MODEL_SUBGRAPHS).unwrap(), 0);
    let t0 = element(&bytes, field(&bytes, sg0, 0).unwrap(), 0);
    let p = field(&bytes, t0, 1).expect("type");
    assert_eq!(bytes[p], TensorType::Int64 as u8);
    bytes[p] = 99;
    let e = load_err(&bytes);
    assert_invalid(&e, &tensor_loc(0, "input"), "unknown tensor type 99");
}

// ----- dataflow ---------------------------------------------------------------

#[test]
fn operator_reads_its_own_output() {
    let mut m = baseline();
    op(&mut m, 0).inputs = Some(vec![1, 2]);
    let e = load_err(&write(&m));
    assert_invalid(&e, &op_loc(0, "RESHAPE"), "reads tensor 1 ('output') before operator 0 writes it");
}

#[test]
fn operator_reads_a_later_output() {
    // op 0: output = RESHAPE(mid); op 1: mid = RESHAPE(input): out of order.
    let mut m = baseline();
    tensors(&mut m).push(tensor("mid", TensorType::Float32, &[6], 0));
    sg(&mut m).operators = Some(vec![
        fb::Operator { opcode_index: 0, inputs: Some(vec![3, 2]), outputs: Some(vec![1]), ..Default::default() },
        fb::Operator { opcode_index: 0, inputs: Some(vec![0]), outputs: Some(vec![3]), ..Default::default() },
    ]);
    let e = load_err(&write(&m));
    assert_invalid(&e, &op_loc(0, "RESHAPE"), "reads tensor 3 ('mid') before operator 1 writes it");
    assert!(e.to_string().contains("cycle"), "{e}");
}

#[test]
fn two_operators_in_a_cycle() {
    // a = RESHAPE(b); b = RESHAPE(a).
    let mut m = baseline();
    tensors(&mut m).push(tensor("a", TensorType::Float32, &[6], 0));
    tensors(&mut m).push(tensor("b", TensorType::Float32, &[6], 0));
    sg(&mut m).operators = Some(vec![
        fb::Operator { opcode_index: 0, inputs: Some(vec![4]), outputs: Some(vec![3]), ..Default::default() },
        fb::Operator { opcode_index: 0, inputs: Some(vec![3]), outputs: Some(vec![4]), ..Default::default() },
    ]);
    sg(&mut m).outputs = Some(vec![4]);
    let e = load_err(&write(&m));
    assert_invalid(&e, &op_loc(0, "RESHAPE"), "reads tensor 4 ('b') before operator 1 writes it");
}

#[test]
fn operator_reads_a_dangling_tensor() {
    let mut m = baseline();
    tensors(&mut m).push(tensor("nobody", TensorType::Float32, &[6], 0));
    op(&mut m, 0).inputs = Some(vec![3, 2]);
    let e = load_err(&write(&m));
    assert_invalid(&e, &op_loc(0, "RESHAPE"), "reads tensor 3 ('nobody'), which is neither");
}

#[test]
fn tensor_written_twice() {
    let mut m = baseline();
    let op0 = op(&mut m, 0).clone();
    sg(&mut m).operators.as_mut().unwrap().push(op0);
    let e = load_err(&write(&m));
    assert_invalid(&e, &op_loc(1, "RESHAPE"), "writes tensor 1");
}

#[test]
fn operator_writes_a_graph_input_or_constant() {
    let mut m = baseline();
    op(&mut m, 0).outputs = Some(vec![0]);
    assert_invalid(&load_err(&write(&m)), &op_loc(0, "RESHAPE"), "writes tensor 0");
    let mut m = baseline();
    op(&mut m, 0).outputs = Some(vec![2]);
    assert_invalid(&load_err(&write(&m)), &op_loc(0, "RESHAPE"), "writes tensor 2");
}

#[test]
fn graph_output_never_written() {
    let mut m = baseline();
    tensors(&mut m).push(tensor("orphan", TensorType::Float32, &[6], 0));
    sg(&mut m).outputs = Some(vec![1, 3]);
    let e = load_err(&write(&m));
    assert_invalid(&e, &Location::Subgraph(0), "output tensor 3 ('orphan') is never written");
}

// ----- unknown operators --------------------------------------------------------

/// The baseline with its operator code patched to builtin number `code`
/// (the owned enum cannot hold numbers the schema does not know).
fn with_builtin_code(code: i32, unknown_options: bool) -> Vec<u8> {
    let mut m = baseline();
    {
        let c = &mut m.operator_codes.as_mut().unwrap()[0];
        // A known code written in the int32 field, the placeholder in the byte.
        c.builtin_code = BuiltinOperator::StablehloCase;
        c.deprecated_builtin_code = 127;
        c.version = 7;
    }
    if unknown_options {
        op(&mut m, 0).builtin_options =
            Some(fb::BuiltinOptions::ReshapeOptions(Box::new(fb::ReshapeOptions { new_shape: Some(vec![3, 2]) })));
    }
    let mut bytes = write(&m);
    let code0 = element(&bytes, field(&bytes, root(&bytes), MODEL_OPERATOR_CODES).unwrap(), 0);
    let p = field(&bytes, code0, OPERATOR_CODE_BUILTIN_CODE).expect("builtin_code");
    assert_eq!(u32_at(&bytes, p), BuiltinOperator::StablehloCase as usize);
    put_u32(&mut bytes, p, code as u32);
    if unknown_options {
        let sg0 = element(&bytes, field(&bytes, root(&bytes), MODEL_SUBGRAPHS).unwrap(), 0);
        let op0 = element(&bytes, field(&bytes, sg0, SUBGRAPH_OPERATORS).unwrap(), 0);
        let p = field(&bytes, op0, OPERATOR_BUILTIN_OPTIONS_TYPE).expect("options type");
        bytes[p] = 250;
    }
    bytes
}

#[test]
fn unknown_builtin_code_is_unsupported_at_allocate() {
    let bytes = with_builtin_code(250, false);
    // The file is fine: a newer converter's op, not corruption.
    let model = Model::from_bytes(&bytes).expect("an unknown builtin code must load");
    assert_eq!(model.operator_codes[0].builtin_code, 250);
    assert_eq!(model.operator_codes[0].name(), "BUILTIN_250");
    match allocate_err(&bytes) {
        Error::UnsupportedOp { subgraph: 0, node: 0, op, version: 7 } => assert_eq!(op, "BUILTIN_250"),
        other => panic!("expected UnsupportedOp, got {other:?}"),
    }
    let e = allocate_err(&bytes);
    assert!(e.to_string().contains("operator 0"), "{e}");
    assert!(e.to_string().contains("BUILTIN_250 version 7"), "{e}");
}

#[test]
fn unknown_builtin_code_with_unknown_options_type() {
    // A newer op comes with a newer options table: the union tag is unknown
    // too, and the file must still load.
    let bytes = with_builtin_code(250, true);
    let model = Model::from_bytes(&bytes).expect("an unknown options union must load");
    assert!(model.subgraphs[0].operators[0].builtin_options.is_none());
    assert!(matches!(
        allocate_err(&bytes),
        Error::UnsupportedOp { node: 0, ref op, .. } if op == "BUILTIN_250"
    ));
}

#[test]
fn negative_builtin_code_is_unsupported() {
    let bytes = with_builtin_code(-5, false);
    // max(builtin, deprecated byte) = the placeholder, 127.
    let e = allocate_err(&bytes);
    assert!(
        matches!(e, Error::UnsupportedOp { node: 0, ref op, .. } if op == "PLACEHOLDER_FOR_GREATER_OP_CODES"),
        "{e:?}"
    );
}

#[test]
fn known_but_unimplemented_builtin_is_unsupported() {
    let mut m = baseline();
    m.operator_codes.as_mut().unwrap()[0].builtin_code = BuiltinOperator::StablehloCase;
    m.operator_codes.as_mut().unwrap()[0].deprecated_builtin_code = 127;
    let e = allocate_err(&write(&m));
    assert!(matches!(e, Error::UnsupportedOp { node: 0, ref op, version: 1, .. } if op == "STABLEHLO_CASE"), "{e:?}");
}

#[test]
fn unknown_custom_op() {
    let mut m = baseline();
    m.operator_codes.as_mut().unwrap()[0] = fb::OperatorCode {
        builtin_code: BuiltinOperator::Custom,
        deprecated_builtin_code: BuiltinOperator::Custom as i8,
        custom_code: Some("MyMysteryOp".into()),
        version: 2,
    };
    op(&mut m, 0).custom_options = Some(vec![1, 2, 3]);
    let e = allocate_err(&write(&m));
    match &e {
        Error::UnsupportedOp { subgraph: 0, node: 0, op, version: 2 } => assert_eq!(op, "MyMysteryOp"),
        other => panic!("expected UnsupportedOp, got {other:?}"),
    }
    assert!(e.to_string().contains("MyMysteryOp"), "{e}");
}

#[test]
fn custom_op_without_a_name() {
    let mut m = baseline();
    m.operator_codes.as_mut().unwrap()[0] = fb::OperatorCode {
        builtin_code: BuiltinOperator::Custom,
        deprecated_builtin_code: BuiltinOperator::Custom as i8,
        custom_code: None,
        version: 1,
    };
    let e = allocate_err(&write(&m));
    assert!(matches!(e, Error::UnsupportedOp { node: 0, ref op, .. } if op == "CUSTOM"), "{e:?}");
}

// ----- allocation -----------------------------------------------------------------

/// `output = RESHAPE(input, [-1])`: any input shape flows to the output.
fn flatten_model() -> fb::Model {
    let mut m = baseline();
    m.buffers.as_mut().unwrap()[1].data = Some(i32_bytes(&[-1]));
    tensors(&mut m)[2].shape = Some(vec![1]);
    tensors(&mut m)[1].shape = Some(vec![6]);
    m
}

#[test]
fn absurd_resized_input_errors_at_allocate() {
    let bytes = write(&flatten_model());
    let model = Model::from_bytes(&bytes).unwrap();
    let resolver = OpResolver::with_builtins();
    let mut it = Interpreter::new(&model, &resolver, InterpreterOptions::default()).unwrap();
    it.allocate_tensors().unwrap();

    if usize::BITS < 64 {
        // A 32-bit target cannot even count 2^52 elements: refused at resize.
        let e = it.resize_input(0, &[1 << 26, 1 << 26]).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e:?}");
        return;
    }
    // 2^52 floats (16 PiB): more than any address space.
    it.resize_input(0, &[1 << 26, 1 << 26]).unwrap();
    let e = it.allocate_tensors().unwrap_err();
    assert!(matches!(e, Error::InvalidModel { .. } | Error::Op { .. }), "{e:?}");
    assert!(matches!(it.invoke(), Err(Error::NotAllocated)));

    // 2^62 floats: the byte count overflows.
    it.resize_input(0, &[1 << 31, 1 << 31]).unwrap();
    let e = it.allocate_tensors().unwrap_err();
    assert!(matches!(e, Error::InvalidModel { .. } | Error::Op { .. }), "{e:?}");

    // The element count itself overflows: refused at resize.
    let e = it.resize_input(0, &[usize::MAX, 2]).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e:?}");

    // And the interpreter still works at a sane size.
    it.resize_input(0, &[4, 2]).unwrap();
    it.allocate_tensors().unwrap();
    it.set_input(0, &[1.0f32; 8]).unwrap();
    it.invoke().unwrap();
    assert_eq!(it.output(0).unwrap().shape(), &[8]);
}

// ----- amplification ------------------------------------------------------------------

/// FlatBuffers are DAGs: a vector may hold the same table offset many times.
/// A small file whose operators all share one table with a long input list
/// must be refused, not expanded into gigabytes.
#[test]
fn shared_tables_cannot_amplify() {
    const OPS: usize = 20_000;
    const INPUTS: usize = 10_000;
    let mut m = baseline();
    let mut ops = vec![fb::Operator {
        opcode_index: 0,
        inputs: Some(vec![0; INPUTS]),
        outputs: Some(vec![1]),
        ..Default::default()
    }];
    ops.resize(OPS, fb::Operator::default());
    sg(&mut m).operators = Some(ops);
    let mut bytes = write(&m);
    // Point every entry of the operators vector at operator 0.
    let sg0 = element(&bytes, field(&bytes, root(&bytes), MODEL_SUBGRAPHS).unwrap(), 0);
    let v = deref(&bytes, field(&bytes, sg0, SUBGRAPH_OPERATORS).unwrap());
    assert_eq!(u32_at(&bytes, v), OPS);
    let op0 = deref(&bytes, v + 4);
    for i in 1..OPS {
        let p = v + 4 + 4 * i;
        assert!(op0 > p, "tables follow the vector that refers to them");
        put_u32(&mut bytes, p, (op0 - p) as u32);
    }
    assert!(bytes.len() < 1 << 20);
    let start = std::time::Instant::now();
    let e = load_err(&bytes);
    assert_format(&e, "over and over");
    assert!(matches!(e, Error::Format { location: Location::Operator { subgraph: 0, .. }, .. }), "{e:?}");
    assert!(start.elapsed().as_secs() < 10, "took {:?}", start.elapsed());
}

/// The interpreter keeps each node's op name: one long custom-op name used
/// by many operators must not multiply into gigabytes either.
#[test]
fn long_custom_name_times_many_operators() {
    let mut m = baseline();
    m.operator_codes.as_mut().unwrap()[0] = fb::OperatorCode {
        builtin_code: BuiltinOperator::Custom,
        deprecated_builtin_code: BuiltinOperator::Custom as i8,
        custom_code: Some("X".repeat(256 << 10)),
        version: 1,
    };
    let ops: Vec<fb::Operator> = (0..4000)
        .map(|i| fb::Operator {
            opcode_index: 0,
            inputs: Some(vec![0]),
            outputs: Some(vec![if i == 0 { 1 } else { 3 + i - 1 }]),
            ..Default::default()
        })
        .collect();
    for i in 1..4000 {
        tensors(&mut m).push(tensor("", TensorType::Float32, &[6], 0));
        let _ = i;
    }
    sg(&mut m).operators = Some(ops);
    let bytes = write(&m);
    let e = load_err(&bytes);
    assert_format(&e, "over and over");
}

/// `out = MEAN(input [1,4,4,1], axes [1,2])`: a small output from any input.
fn mean_model() -> fb::Model {
    let mut m = baseline();
    m.operator_codes.as_mut().unwrap()[0] = fb::OperatorCode {
        builtin_code: BuiltinOperator::Mean,
        deprecated_builtin_code: BuiltinOperator::Mean as i8,
        version: 1,
        ..Default::default()
    };
    tensors(&mut m)[0].shape = Some(vec![1, 4, 4, 1]);
    tensors(&mut m)[1].shape = Some(vec![1, 1]);
    op(&mut m, 0).builtin_options =
        Some(fb::BuiltinOptions::ReducerOptions(Box::new(fb::ReducerOptions { keep_dims: false })));
    m.buffers.as_mut().unwrap()[1].data = Some(i32_bytes(&[1, 2]));
    m
}

/// An input resized so that its byte count overflows must be refused at
/// allocate (it was once planned as 0 bytes, and the kernel panicked).
#[test]
fn input_resized_past_the_byte_range_errors_at_allocate() {
    let bytes = write(&mean_model());
    let model = Model::from_bytes(&bytes).unwrap();
    let resolver = OpResolver::with_builtins();
    let mut it = Interpreter::new(&model, &resolver, InterpreterOptions::default()).unwrap();
    it.allocate_tensors().unwrap();
    it.set_input(0, &[1.0f32; 16]).unwrap();
    it.invoke().unwrap();
    assert_eq!(it.output(0).unwrap().as_slice::<f32>().unwrap(), &[1.0]);
    // 2^62 elements: the count fits usize, its float32 bytes do not.
    let resized = it.resize_input(0, &[1, 1 << 31, 1 << 31, 1]);
    if resized.is_ok() {
        let e = it.allocate_tensors().expect_err("allocate_tensors accepted an input of 2^64 bytes");
        assert!(matches!(e, Error::InvalidModel { .. } | Error::Op { .. }), "{e:?}");
    }
}

/// A file declaring a 256 GiB variable (below the loader's 1 TiB limit) must
/// get a typed error at allocate, not a process abort.
#[test]
fn huge_variable_tensor_errors_at_allocate() {
    let mut m = baseline();
    let mut var = tensor("state", TensorType::Float32, &[1 << 30, 64], 0);
    var.is_variable = true;
    tensors(&mut m).push(var);
    if usize::BITS < 64 {
        // 256 GiB cannot even be described on a 32-bit target: refused at load.
        let e = load_err(&write(&m));
        assert_invalid(&e, &tensor_loc(3, "state"), "more elements than fit in memory");
        return;
    }
    let e = allocate_err(&write(&m));
    assert!(matches!(e, Error::InvalidModel { .. }), "{e:?}");
}
