//! UNIDIRECTIONAL_SEQUENCE_LSTM: an LSTM over a whole sequence, float or
//! with dynamic-range int8 weights.
//!
//! Inputs (absent optional ones are -1): 0 input `[batch, time, n_input]`
//! (`[time, batch, n_input]` when `time_major`); 1-4 input-to-{input,
//! forget, cell, output} weights `[n_cell, n_input]` (input gate optional:
//! CIFG); 5-8 recurrent-to-{...} weights `[n_cell, n_output]`; 9-11
//! optional cell-to-{input, forget, output} peepholes `[n_cell]`; 12-15
//! {input, forget, cell, output} gate biases `[n_cell]`; 16-17 optional
//! projection weights `[n_output, n_cell]` and bias `[n_output]`; 18-19 the
//! output and cell state, variable tensors read and updated in place (the
//! state carries over to the next invoke, as in TFLite); 20-23 optional
//! layer-norm coefficients `[n_cell]`. The output has the input's layout
//! with `n_output` features.
//!
//! Weights are copied at prepare (they must be constant): float as is, int8
//! with their one scale for the hybrid kernel.

use fb::BuiltinOperator as B;
use ferrolite_kernels::reference::lstm::{
    check_sizes, unidirectional_sequence_lstm, LstmActivation, LstmDims, LstmParams, LstmScratch, LstmWeight,
    LstmWeights,
};
use ferrolite_schema as fb;

use super::options;
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{expect_dtype, EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::UnidirectionalSequenceLstm as i32, 1..=4, UnidirectionalSequenceLstm);
}

const INPUT: usize = 0;
const OUTPUT_STATE: usize = 18;
const CELL_STATE: usize = 19;

struct UnidirectionalSequenceLstm;

/// A weight owned by the prepared op.
enum Owned {
    F32(Vec<f32>),
    I8(Vec<i8>, f32),
}

impl Owned {
    fn view(&self) -> LstmWeight<'_> {
        match self {
            Owned::F32(v) => LstmWeight::F32(v),
            Owned::I8(v, s) => LstmWeight::I8 { data: v, scale: *s },
        }
    }
    fn floats(&self) -> Result<&[f32], OpError> {
        match self {
            Owned::F32(v) => Ok(v),
            Owned::I8(..) => Err(OpError::Unsupported("int8 LSTM biases or layer-norm coefficients".into())),
        }
    }
}

fn weight(ctx: &PrepareContext<'_>, i: usize) -> Result<Option<Owned>, OpError> {
    let Some(w) = ctx.optional_input(i) else { return Ok(None) };
    let bytes = w.constant.ok_or_else(|| OpError::Unsupported(format!("input {i} of the LSTM must be a constant")))?;
    match w.dtype() {
        DataType::Float32 => Ok(Some(Owned::F32(w.constant_as::<f32>()?.unwrap_or_default().to_vec()))),
        DataType::Int8 => {
            let q = w.quant().ok_or_else(|| OpError::Value(format!("int8 input {i} has no quantisation")))?;
            if q.scales.len() != 1 || q.zero_points.iter().any(|&z| z != 0) {
                return Err(OpError::Unsupported(format!(
                    "input {i}: hybrid LSTM weights need one scale and zero point 0"
                )));
            }
            Ok(Some(Owned::I8(bytes.iter().map(|&b| b as i8).collect(), q.scales[0])))
        }
        other => Err(OpError::DType {
            tensor: format!("input {i}"),
            expected: "float32 or int8".into(),
            got: other.to_string(),
        }),
    }
}

fn required(ctx: &PrepareContext<'_>, i: usize) -> Result<Owned, OpError> {
    weight(ctx, i)?.ok_or(OpError::MissingInput(i))
}

struct Prepared {
    w: Vec<Option<Owned>>,
    params: LstmParams,
    dims: LstmDims,
    scratch: LstmScratch,
}

impl Prepared {
    fn weights(&self) -> Result<LstmWeights<'_>, OpError> {
        let m = |i: usize| self.w[i].as_ref().map(Owned::view);
        let r = |i: usize| self.w[i].as_ref().map(Owned::view).ok_or(OpError::MissingInput(i));
        let v = |i: usize| -> Result<Option<&[f32]>, OpError> { self.w[i].as_ref().map(Owned::floats).transpose() };
        let rv = |i: usize| v(i)?.ok_or(OpError::MissingInput(i));
        Ok(LstmWeights {
            input_to_input: m(1),
            input_to_forget: r(2)?,
            input_to_cell: r(3)?,
            input_to_output: r(4)?,
            recurrent_to_input: m(5),
            recurrent_to_forget: r(6)?,
            recurrent_to_cell: r(7)?,
            recurrent_to_output: r(8)?,
            cell_to_input: m(9),
            cell_to_forget: m(10),
            cell_to_output: m(11),
            input_gate_bias: v(12)?,
            forget_gate_bias: rv(13)?,
            cell_gate_bias: rv(14)?,
            output_gate_bias: rv(15)?,
            projection: m(16),
            projection_bias: v(17)?,
            input_layer_norm: v(20)?,
            forget_layer_norm: v(21)?,
            cell_layer_norm: v(22)?,
            output_layer_norm: v(23)?,
        })
    }
}

impl PreparedOp for Prepared {
    fn eval(&mut self, ctx: &mut EvalContext<'_>) -> Result<(), OpError> {
        let x = ctx.input(INPUT)?.as_slice::<f32>()?;
        let mut out = std::mem::take(&mut self.scratch);
        let result = (|| {
            let w = self.weights()?;
            let (h, c) = ctx.variables_mut2(OUTPUT_STATE, CELL_STATE)?;
            let (h, c) = (h.as_slice_mut::<f32>()?, c.as_slice_mut::<f32>()?);
            // The state is small: work on copies so the output can be
            // borrowed from ctx too, then write it back.
            let (mut hs, mut cs) = (h.to_vec(), c.to_vec());
            let y = ctx.output(0)?.as_slice_mut::<f32>()?;
            unidirectional_sequence_lstm(&w, &self.params, &self.dims, x, &mut hs, &mut cs, y, &mut out);
            let (h, c) = ctx.variables_mut2(OUTPUT_STATE, CELL_STATE)?;
            h.as_slice_mut::<f32>()?.copy_from_slice(&hs);
            c.as_slice_mut::<f32>()?.copy_from_slice(&cs);
            Ok(())
        })();
        self.scratch = out;
        result
    }
}

impl Operator for UnidirectionalSequenceLstm {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(20, 24)?;
        ctx.check_outputs(1, 1)?;
        let o = options!(ctx, UnidirectionalSequenceLstmOptions).cloned().unwrap_or_default();
        if o.diagonal_recurrent_tensors {
            return Err(OpError::Unsupported("diagonal recurrent tensors".into()));
        }
        let activation = match o.fused_activation_function {
            fb::ActivationFunctionType::None => LstmActivation::None,
            fb::ActivationFunctionType::Relu => LstmActivation::Relu,
            fb::ActivationFunctionType::ReluN1To1 => LstmActivation::ReluN1To1,
            fb::ActivationFunctionType::Relu6 => LstmActivation::Relu6,
            fb::ActivationFunctionType::Tanh => LstmActivation::Tanh,
            other => return Err(OpError::Unsupported(format!("LSTM activation {other:?}"))),
        };
        let input = ctx.input(INPUT)?;
        if input.dtype() != DataType::Float32 {
            return Err(OpError::Unsupported(format!("UNIDIRECTIONAL_SEQUENCE_LSTM on {} input", input.dtype())));
        }
        expect_dtype("output", ctx.output_dtype(0)?, &[DataType::Float32])?;
        let [d0, d1, n_input] = input.shape()[..] else {
            return Err(OpError::Shape(format!("input must be 3-D, got {:?}", input.shape())));
        };
        let (batches, time) = if o.time_major { (d1, d0) } else { (d0, d1) };
        let ifw = ctx.input(2)?;
        let [n_cell, w_in] = ifw.shape()[..] else {
            return Err(OpError::Shape(format!("input_to_forget_weights must be 2-D, got {:?}", ifw.shape())));
        };
        if w_in != n_input {
            return Err(OpError::Shape(format!("input has {n_input} features, the weights {w_in}")));
        }
        let rfw = ctx.input(6)?;
        let [_, n_output] = rfw.shape()[..] else {
            return Err(OpError::Shape(format!("recurrent_to_forget_weights must be 2-D, got {:?}", rfw.shape())));
        };
        for (i, n) in [(OUTPUT_STATE, n_output), (CELL_STATE, n_cell)] {
            let s = ctx.input(i)?;
            expect_dtype(&format!("state input {i}"), s.dtype(), &[DataType::Float32])?;
            if !ctx.input_is_variable(i) {
                return Err(OpError::Unsupported(format!("state input {i} must be a variable tensor")));
            }
            if s.info.num_elements() != batches * n {
                return Err(OpError::Shape(format!(
                    "state input {i} has shape {:?}, expected [{batches}, {n}]",
                    s.shape()
                )));
            }
        }
        let mut w: Vec<Option<Owned>> = Vec::with_capacity(24);
        for i in 0..24 {
            w.push(match i {
                INPUT | OUTPUT_STATE | CELL_STATE => None,
                2..=4 | 6..=8 | 13..=15 => Some(required(ctx, i)?),
                _ => weight(ctx, i)?,
            });
        }
        let hybrid = matches!(w[2], Some(Owned::I8(..)));
        for k in [1, 2, 3, 4, 5, 6, 7, 8, 16] {
            if let Some(m) = &w[k] {
                if matches!(m, Owned::I8(..)) != hybrid {
                    return Err(OpError::Unsupported("LSTM weights mixing float32 and int8".into()));
                }
            }
        }
        let dims = LstmDims { batches, time, n_input, n_cell, n_output, time_major: o.time_major };
        let params = LstmParams {
            activation,
            cell_clip: o.cell_clip,
            proj_clip: o.proj_clip,
            asymmetric_quantize_inputs: o.asymmetric_quantize_inputs,
        };
        let prepared = Prepared { w, params, dims, scratch: LstmScratch::new() };
        check_sizes(&prepared.weights()?, &dims).map_err(OpError::Shape)?;
        let out_shape = if o.time_major { vec![time, batches, n_output] } else { vec![batches, time, n_output] };
        ctx.set_output_shape(0, out_shape)?;
        Ok(Box::new(prepared))
    }
}
