//! A tiny model builder for tests: tensors, nodes, and one subgraph
//! serialised with the schema's writer.
#![allow(dead_code)]

use fb::{BuiltinOperator as Op, TensorType as TT};
use ferrolite::schema as fb;
use ferrolite::Element;

/// One tensor of a hand-built model.
pub struct T {
    pub shape: Vec<i32>,
    pub ty: TT,
    pub data: Option<Vec<u8>>,
    pub quant: Option<fb::QuantizationParameters>,
    pub sparsity: Option<fb::SparsityParameters>,
}

/// A tensor computed at run time (graph input or node output).
pub fn act(ty: TT, shape: &[i32]) -> T {
    T { shape: shape.to_vec(), ty, data: None, quant: None, sparsity: None }
}

/// A constant tensor holding `values`.
pub fn konst<E: Element>(ty: TT, shape: &[i32], values: &[E]) -> T {
    T { shape: shape.to_vec(), ty, data: Some(bytemuck::cast_slice(values).to_vec()), quant: None, sparsity: None }
}

pub struct Node {
    pub op: Op,
    pub inputs: Vec<i32>,
    pub outputs: Vec<i32>,
    pub options: Option<fb::BuiltinOptions>,
}

pub fn node(op: Op, inputs: &[i32], outputs: &[i32]) -> Node {
    Node { op, inputs: inputs.to_vec(), outputs: outputs.to_vec(), options: None }
}

pub fn node_with(op: Op, inputs: &[i32], outputs: &[i32], options: fb::BuiltinOptions) -> Node {
    Node { options: Some(options), ..node(op, inputs, outputs) }
}

/// Serialise a one-subgraph model.
pub fn build(tensors: Vec<T>, inputs: &[i32], outputs: &[i32], nodes: Vec<Node>) -> Vec<u8> {
    let mut codes: Vec<Op> = Vec::new();
    for n in &nodes {
        if !codes.contains(&n.op) {
            codes.push(n.op);
        }
    }
    let mut buffers = vec![fb::Buffer::default()];
    let mut ts = Vec::new();
    for (i, t) in tensors.into_iter().enumerate() {
        let buffer = match t.data {
            Some(d) => {
                buffers.push(fb::Buffer { data: Some(d), ..Default::default() });
                buffers.len() as u32 - 1
            }
            None => 0,
        };
        ts.push(fb::Tensor {
            shape: Some(t.shape),
            type_: t.ty,
            buffer,
            name: Some(format!("t{i}")),
            quantization: t.quant.map(Box::new),
            sparsity: t.sparsity.map(Box::new),
            ..Default::default()
        });
    }
    let operators = nodes
        .into_iter()
        .map(|n| fb::Operator {
            opcode_index: codes.iter().position(|&c| c == n.op).unwrap() as u32,
            inputs: Some(n.inputs),
            outputs: Some(n.outputs),
            builtin_options: n.options,
            ..Default::default()
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
                    custom_code: None,
                    version: 1,
                })
                .collect(),
        ),
        subgraphs: Some(vec![fb::SubGraph {
            tensors: Some(ts),
            inputs: Some(inputs.to_vec()),
            outputs: Some(outputs.to_vec()),
            operators: Some(operators),
            ..Default::default()
        }]),
        buffers: Some(buffers),
        ..Default::default()
    };
    fb::finish_model(&mut planus::Builder::new(), &model)
}
