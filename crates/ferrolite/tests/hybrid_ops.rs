//! One-op dynamic-range models with hand-computed results.

use ferrolite::schema as fb;
use ferrolite::{Interpreter, InterpreterOptions, Model, OpResolver};

/// BATCH_MATMUL of a float [1, 1, 4] input with a constant int8 [4, 3]
/// matrix (scale 0.5).
fn batch_matmul_model() -> Vec<u8> {
    let weights: Vec<i8> = vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
    let model = fb::Model {
        version: 3,
        operator_codes: Some(vec![fb::OperatorCode {
            deprecated_builtin_code: fb::BuiltinOperator::BatchMatmul as i8,
            builtin_code: fb::BuiltinOperator::BatchMatmul,
            version: 4,
            ..Default::default()
        }]),
        subgraphs: Some(vec![fb::SubGraph {
            tensors: Some(vec![
                fb::Tensor {
                    shape: Some(vec![1, 1, 4]),
                    type_: fb::TensorType::Float32,
                    name: Some("x".into()),
                    ..Default::default()
                },
                fb::Tensor {
                    shape: Some(vec![4, 3]),
                    type_: fb::TensorType::Int8,
                    buffer: 1,
                    name: Some("w".into()),
                    quantization: Some(Box::new(fb::QuantizationParameters {
                        scale: Some(vec![0.5]),
                        zero_point: Some(vec![0]),
                        ..Default::default()
                    })),
                    ..Default::default()
                },
                fb::Tensor {
                    shape: Some(vec![1, 1, 3]),
                    type_: fb::TensorType::Float32,
                    name: Some("y".into()),
                    ..Default::default()
                },
            ]),
            inputs: Some(vec![0]),
            outputs: Some(vec![2]),
            operators: Some(vec![fb::Operator {
                opcode_index: 0,
                inputs: Some(vec![0, 1]),
                outputs: Some(vec![2]),
                builtin_options: Some(fb::BuiltinOptions::BatchMatMulOptions(Box::default())),
                ..Default::default()
            }]),
            ..Default::default()
        }]),
        buffers: Some(vec![
            fb::Buffer::default(),
            fb::Buffer { data: Some(weights.iter().map(|&v| v as u8).collect()), ..Default::default() },
        ]),
        ..Default::default()
    };
    fb::finish_model(&mut planus::Builder::new(), &model)
}

#[test]
fn hybrid_batch_matmul_quantises_the_input_row() {
    let bytes = batch_matmul_model();
    let model = Model::from_bytes(&bytes).unwrap();
    let resolver = OpResolver::with_builtins();
    let mut it = Interpreter::new(&model, &resolver, InterpreterOptions::default()).unwrap();
    it.allocate_tensors().unwrap();
    it.set_input(0, &[1.27f32, -1.27, 0.626, 0.0]).unwrap();
    it.invoke().unwrap();
    let y = it.output(0).unwrap().as_slice::<f32>().unwrap().to_vec();
    // Symmetric quantisation of the row: scale 1.27 / 127 = 0.01, so
    // q = [127, -127, 63, 0] (0.626 / 0.01 = 62.6 rounds to 63). Then
    // y[j] = 0.01 * 0.5 * sum_i q[i] * w[i][j]:
    //   j=0: 127*1 - 127*4 + 63*7  = 60  -> 0.300
    //   j=1: 127*2 - 127*5 + 63*8  = 123 -> 0.615
    //   j=2: 127*3 - 127*6 + 63*9  = 186 -> 0.930
    // (Dequantise-then-float would give 0.2860, 0.5990, 0.9120.)
    let want = [0.300f32, 0.615, 0.930];
    for (got, want) in y.iter().zip(want) {
        assert!((got - want).abs() < 1e-5, "got {y:?}, want {want:?}");
    }
}
