//! Reads models written by Google's converter through the generated readers,
//! and round-trips a model written with the owned types.

use ferrolite_schema::{
    builtin_operator_name, effective_builtin_code, finish_model, has_file_identifier, ActivationFunctionType, Buffer,
    BuiltinOperator, BuiltinOptions, BuiltinOptionsRef, Conv2DOptions, Model, ModelRef, Operator, OperatorCode,
    Padding, ReadAsRoot, SubGraph, Tensor, TensorType, FILE_IDENTIFIER,
};
use planus::errors::ErrorKind;

/// Loads `shared/models/<name>` (outside the repo, next to the workspace), or
/// returns `None` with a message so the suite still passes without it.
fn load_model(name: &str) -> Option<Vec<u8>> {
    let path = format!("{}/../../../shared/models/{name}", env!("CARGO_MANIFEST_DIR"));
    match std::fs::read(&path) {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            eprintln!("SKIPPED: cannot read {path}: {e}");
            None
        }
    }
}

#[test]
fn mobilenet_v1_f32() {
    let Some(bytes) = load_model("mobilenet_v1_0.25_128.f32.tflite") else {
        return;
    };
    assert!(has_file_identifier(&bytes));
    let model = ModelRef::read_as_root(&bytes).unwrap();
    assert_eq!(model.version().unwrap(), 3);

    let codes: Vec<BuiltinOperator> = model
        .operator_codes()
        .unwrap()
        .expect("operator_codes")
        .iter()
        .map(|c| effective_builtin_code(&c.unwrap()).unwrap())
        .collect();
    assert!(codes.contains(&BuiltinOperator::Conv2d), "{codes:?}");
    assert!(codes.contains(&BuiltinOperator::DepthwiseConv2d), "{codes:?}");

    let subgraphs = model.subgraphs().unwrap().expect("subgraphs");
    assert_eq!(subgraphs.len(), 1);
    let sg = subgraphs.get(0).unwrap().unwrap();
    let tensors = sg.tensors().unwrap().expect("tensors");

    let inputs = sg.inputs().unwrap().expect("inputs");
    assert_eq!(inputs.len(), 1);
    let input = tensors.get(inputs.get(0).unwrap() as usize).unwrap().unwrap();
    let shape: Vec<i32> = input.shape().unwrap().unwrap().iter().collect();
    assert_eq!(shape, [1, 128, 128, 3]);
    assert_eq!(input.type_().unwrap(), TensorType::Float32);

    // First CONV_2D in execution order: the stem conv, stride 2, SAME.
    let op_codes = model.operator_codes().unwrap().unwrap();
    let first_conv = sg
        .operators()
        .unwrap()
        .expect("operators")
        .iter()
        .map(Result::unwrap)
        .find(|op| {
            let code = op_codes.get(op.opcode_index().unwrap() as usize).unwrap().unwrap();
            effective_builtin_code(&code).unwrap() == BuiltinOperator::Conv2d
        })
        .expect("a CONV_2D operator");
    match first_conv.builtin_options().unwrap() {
        Some(BuiltinOptionsRef::Conv2DOptions(opts)) => {
            assert_eq!(opts.stride_w().unwrap(), 2);
            assert_eq!(opts.stride_h().unwrap(), 2);
            assert_eq!(opts.padding().unwrap(), Padding::Same);
            assert_eq!(opts.dilation_w_factor().unwrap(), 1);
        }
        other => panic!("expected Conv2DOptions, got {other:?}"),
    }
}

#[test]
fn face_detection_has_fp16_weights() {
    let Some(bytes) = load_model("face_detection_short_range.tflite") else {
        return;
    };
    let model = ModelRef::read_as_root(&bytes).unwrap();
    assert_eq!(model.version().unwrap(), 3);
    let buffers = model.buffers().unwrap().expect("buffers");
    let op_codes = model.operator_codes().unwrap().unwrap();
    let sg = model.subgraphs().unwrap().unwrap().get(0).unwrap().unwrap();
    let tensors = sg.tensors().unwrap().unwrap();

    // fp16 weights are constant FLOAT16 tensors fed through DEQUANTIZE into
    // FLOAT32 consumers.
    let mut fp16_consts = 0;
    for t in tensors.iter() {
        let t = t.unwrap();
        if t.type_().unwrap() == TensorType::Float16 {
            let buf = buffers.get(t.buffer().unwrap() as usize).unwrap().unwrap();
            let n: usize = t.shape().unwrap().unwrap().iter().map(|d| d as usize).product();
            let data = buf.data().unwrap().expect("fp16 weights carry data");
            assert_eq!(data.len(), 2 * n, "{:?}", t.name());
            fp16_consts += 1;
        }
    }
    assert!(fp16_consts > 0, "no FLOAT16 constant tensors found");

    let mut dequantize_fp16 = 0;
    for op in sg.operators().unwrap().unwrap().iter() {
        let op = op.unwrap();
        let code = op_codes.get(op.opcode_index().unwrap() as usize).unwrap().unwrap();
        if effective_builtin_code(&code).unwrap() == BuiltinOperator::Dequantize {
            let inp = tensors.get(op.inputs().unwrap().unwrap().get(0).unwrap() as usize).unwrap().unwrap();
            let out = tensors.get(op.outputs().unwrap().unwrap().get(0).unwrap() as usize).unwrap().unwrap();
            if inp.type_().unwrap() == TensorType::Float16 {
                assert_eq!(out.type_().unwrap(), TensorType::Float32);
                dequantize_fp16 += 1;
            }
        }
    }
    assert_eq!(dequantize_fp16, fp16_consts);
}

/// Every model in shared/models decodes completely (all operators, options
/// and tensors) into the owned types: catches any field/enum/union mismatch.
#[test]
fn all_shared_models_convert_to_owned() {
    let dir = format!("{}/../../../shared/models", env!("CARGO_MANIFEST_DIR"));
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("SKIPPED: {dir} not present");
        return;
    };
    let mut n = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("tflite") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let model_ref = ModelRef::read_as_root(&bytes).unwrap();
        let model = Model::try_from(model_ref).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(model.version, 3, "{}", path.display());
        for code in model.operator_codes.iter().flatten() {
            let eff = (code.builtin_code as i32).max(code.deprecated_builtin_code as i32);
            assert!(builtin_operator_name(eff).is_some(), "{}", path.display());
        }
        n += 1;
    }
    eprintln!("decoded {n} models from {dir}");
}

fn tiny_model() -> Model {
    let conv = Operator {
        opcode_index: 0,
        inputs: Some(vec![0, 1, -1]),
        outputs: Some(vec![2]),
        builtin_options: Some(BuiltinOptions::Conv2DOptions(Box::new(Conv2DOptions {
            padding: Padding::Valid,
            stride_w: 2,
            stride_h: 1,
            fused_activation_function: ActivationFunctionType::Relu6,
            dilation_w_factor: 1,
            dilation_h_factor: 1,
            quantized_bias_type: TensorType::Float32,
        }))),
        ..Default::default()
    };
    let tensor = |name: &str, shape: Vec<i32>, buffer: u32| Tensor {
        name: Some(name.to_owned()),
        shape: Some(shape),
        type_: TensorType::Float32,
        buffer,
        ..Default::default()
    };
    Model {
        version: 3,
        operator_codes: Some(vec![OperatorCode {
            deprecated_builtin_code: BuiltinOperator::Conv2d as i8,
            builtin_code: BuiltinOperator::Conv2d,
            version: 1,
            ..Default::default()
        }]),
        subgraphs: Some(vec![SubGraph {
            tensors: Some(vec![
                tensor("input", vec![1, 4, 4, 1], 0),
                tensor("filter", vec![1, 1, 1, 1], 1),
                tensor("output", vec![1, 4, 2, 1], 0),
            ]),
            inputs: Some(vec![0]),
            outputs: Some(vec![2]),
            operators: Some(vec![conv]),
            name: Some("main".to_owned()),
            ..Default::default()
        }]),
        description: Some("ferrolite round-trip".to_owned()),
        buffers: Some(vec![
            Buffer::default(),
            Buffer { data: Some(1.5f32.to_le_bytes().to_vec()), ..Default::default() },
        ]),
        ..Default::default()
    }
}

#[test]
fn round_trip_owned_model() {
    let model = tiny_model();
    let bytes = finish_model(&mut planus::Builder::new(), &model);
    assert_eq!(&bytes[4..8], FILE_IDENTIFIER);
    assert!(has_file_identifier(&bytes));

    let r = ModelRef::read_as_root(&bytes).unwrap();
    assert_eq!(r.version().unwrap(), 3);
    assert_eq!(r.description().unwrap(), Some("ferrolite round-trip"));
    let sg = r.subgraphs().unwrap().unwrap().get(0).unwrap().unwrap();
    assert_eq!(sg.debug_metadata_index().unwrap(), -1, "schema default");
    let op = sg.operators().unwrap().unwrap().get(0).unwrap().unwrap();
    let inputs: Vec<i32> = op.inputs().unwrap().unwrap().iter().collect();
    assert_eq!(inputs, [0, 1, -1]);
    match op.builtin_options().unwrap() {
        Some(BuiltinOptionsRef::Conv2DOptions(o)) => {
            assert_eq!(o.padding().unwrap(), Padding::Valid);
            assert_eq!(o.stride_w().unwrap(), 2);
            assert_eq!(o.fused_activation_function().unwrap(), ActivationFunctionType::Relu6);
        }
        other => panic!("{other:?}"),
    }
    let filter_buf = r.buffers().unwrap().unwrap().get(1).unwrap().unwrap();
    assert_eq!(filter_buf.data().unwrap().unwrap(), 1.5f32.to_le_bytes());

    // Owned -> bytes -> owned is lossless.
    assert_eq!(Model::try_from(r).unwrap(), model);
}

/// Returns the single byte offset where `a` and `b` differ.
fn single_diff(a: &[u8], b: &[u8]) -> usize {
    assert_eq!(a.len(), b.len());
    let diffs: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
    assert_eq!(diffs.len(), 1, "{diffs:?}");
    diffs[0]
}

/// Values from a newer schema are reported as errors, not panics or garbage.
#[test]
fn unknown_enum_value_and_union_tag_are_errors() {
    let build = |m: &Model| finish_model(&mut planus::Builder::new(), m);

    // Enum: builtin_code 3 vs 4 differ in one byte; patch it to an unknown 250.
    let mut a = tiny_model();
    let mut b = tiny_model();
    a.operator_codes.as_mut().unwrap()[0].builtin_code = BuiltinOperator::Conv2d;
    b.operator_codes.as_mut().unwrap()[0].builtin_code = BuiltinOperator::DepthwiseConv2d;
    let mut bytes = build(&a);
    let at = single_diff(&bytes, &build(&b));
    bytes[at] = 250;
    let r = ModelRef::read_as_root(&bytes).unwrap();
    let code = r.operator_codes().unwrap().unwrap().get(0).unwrap().unwrap();
    let err = code.builtin_code().unwrap_err();
    match err.error_kind {
        ErrorKind::UnknownEnumTag { source } => assert_eq!(source.tag, 250),
        other => panic!("{other:?}"),
    }
    assert!(Model::try_from(r).is_err());

    // Union: two empty option tables differ only in their tag.
    let with_opts = |o: BuiltinOptions| {
        let mut m = tiny_model();
        m.subgraphs.as_mut().unwrap()[0].operators.as_mut().unwrap()[0].builtin_options = Some(o);
        m
    };
    let mut bytes = build(&with_opts(BuiltinOptions::PadOptions(Box::default())));
    let other = build(&with_opts(BuiltinOptions::PadV2Options(Box::default())));
    let at = single_diff(&bytes, &other);
    bytes[at] = 200;
    let r = ModelRef::read_as_root(&bytes).unwrap();
    let op = r.subgraphs().unwrap().unwrap().get(0).unwrap().unwrap();
    let op = op.operators().unwrap().unwrap().get(0).unwrap().unwrap();
    match op.builtin_options().unwrap_err().error_kind {
        ErrorKind::UnknownUnionTag { tag } => assert_eq!(tag, 200),
        other => panic!("{other:?}"),
    }
}

#[test]
fn builtin_operator_names_match_enum() {
    assert_eq!(builtin_operator_name(0), Some("ADD"));
    assert_eq!(builtin_operator_name(3), Some("CONV_2D"));
    assert_eq!(builtin_operator_name(4), Some("DEPTHWISE_CONV_2D"));
    assert_eq!(builtin_operator_name(127), Some("PLACEHOLDER_FOR_GREATER_OP_CODES"));
    assert_eq!(builtin_operator_name(209), Some("STABLEHLO_CASE"));
    assert_eq!(builtin_operator_name(210), None);
    assert_eq!(builtin_operator_name(-1), None);

    // The table and the generated enum agree on every code (names compared
    // without underscores/case, since planus camel-cases the variants).
    for code in -2..300 {
        let name = builtin_operator_name(code);
        let variant = BuiltinOperator::try_from(code).ok();
        assert_eq!(name.is_some(), variant.is_some(), "code {code}");
        if let (Some(name), Some(variant)) = (name, variant) {
            assert_eq!(name.replace('_', ""), format!("{variant:?}").to_uppercase(), "code {code}");
            assert_eq!(variant as i32, code);
        }
    }
    assert_eq!(BuiltinOperator::ENUM_VALUES.len(), 210);
}

/// Documents the planus 1.3.0 header bug that `finish_model` works around; if
/// this starts failing, planus fixed it and `finish_model` is a no-op.
#[test]
fn planus_finish_swaps_identifier() {
    let model = Model { version: 3, ..Default::default() };
    let mut builder = planus::Builder::new();
    let raw = builder.finish(&model, Some(*FILE_IDENTIFIER)).to_vec();
    assert_eq!(&raw[0..4], FILE_IDENTIFIER, "planus fixed its header order?");
    assert!(ModelRef::read_as_root(&raw).is_err());
}
