//! RNN: one step of TFLite's basic recurrent cell, float or with
//! dynamic-range int8 weights (`basic_rnn.cc`).
//!
//! Inputs: 0 input `[batch, n_input]`; 1 weights `[n_units, n_input]`; 2
//! recurrent weights `[n_units, n_units]`; 3 bias `[n_units]`; 4 the hidden
//! state `[batch, n_units]`, a variable tensor read and updated in place (it
//! carries over to the next invoke). Output `[batch, n_units]`:
//! `act(bias + W·x + R·h)`, which also becomes the new hidden state.
//!
//! The weights are read in place at eval (float32, or int8 with one scale
//! and zero point 0: TFLite's hybrid kernel). This file also holds what
//! UNIDIRECTIONAL_SEQUENCE_RNN and BIDIRECTIONAL_SEQUENCE_RNN share with it.

use ferrolite_kernels::reference::rnn::{
    unidirectional_sequence_rnn, RnnActivation, RnnCell, RnnParams, RnnScratch, RnnWeight, SequenceDims,
};
use ferrolite_schema::{self as fb, BuiltinOperator as B};

use super::options;
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{expect_dtype, EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::Rnn as i32, 1..=i32::MAX, Rnn);
}

struct Rnn;

/// The fused activation as the recurrent kernels apply it (every one the
/// schema has: TFLite's `ApplyActivationToVector`).
pub(crate) fn rnn_activation(act: fb::ActivationFunctionType) -> RnnActivation {
    use fb::ActivationFunctionType as A;
    match act {
        A::None => RnnActivation::None,
        A::Relu => RnnActivation::Relu,
        A::ReluN1To1 => RnnActivation::ReluN1To1,
        A::Relu6 => RnnActivation::Relu6,
        A::Tanh => RnnActivation::Tanh,
        A::SignBit => RnnActivation::SignBit,
    }
}

/// How a weight input is stored: float32, or int8 with this scale.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum WeightKind {
    F32,
    I8(f32),
}

/// Check weight input `i` (`[rows, cols]`) and say how it is stored.
pub(crate) fn weight_kind(
    ctx: &PrepareContext<'_>,
    i: usize,
    name: &str,
    rows: usize,
    cols: usize,
) -> Result<WeightKind, OpError> {
    let w = ctx.input(i)?;
    if w.shape() != [rows, cols] {
        return Err(OpError::Shape(format!("{name} has shape {:?}, expected [{rows}, {cols}]", w.shape())));
    }
    weight_kind_any_shape(ctx, i, name)
}

/// How weight input `i` is stored: float32, or int8 with one positive scale
/// and zero point 0 (what TFLite's hybrid kernels read).
pub(crate) fn weight_kind_any_shape(ctx: &PrepareContext<'_>, i: usize, name: &str) -> Result<WeightKind, OpError> {
    let w = ctx.input(i)?;
    not_variable(ctx, i, name)?;
    match w.dtype() {
        DataType::Float32 => Ok(WeightKind::F32),
        DataType::Int8 => {
            let q = w.quant().filter(|q| !q.scales.is_empty());
            let Some(q) = q else {
                return Err(OpError::Value(format!("int8 {name} has no quantisation parameters")));
            };
            let scale = q.scales[0];
            if q.scales.len() != 1 || q.zero_points.iter().any(|&z| z != 0) || !(scale > 0.0 && scale.is_finite()) {
                return Err(OpError::Unsupported(format!(
                    "int8 {name} must have one positive scale and zero point 0 (hybrid kernel), got {:?} / {:?}",
                    q.scales, q.zero_points
                )));
            }
            Ok(WeightKind::I8(scale))
        }
        other => {
            Err(OpError::DType { tensor: name.to_string(), expected: "float32 or int8".into(), got: other.to_string() })
        }
    }
}

/// Weight input `i` at eval, as prepared.
pub(crate) fn weight_view<'a>(ctx: &EvalContext<'a>, i: usize, kind: WeightKind) -> Result<RnnWeight<'a>, OpError> {
    let t = ctx.input(i)?;
    Ok(match kind {
        WeightKind::F32 => RnnWeight::F32(t.as_slice::<f32>()?),
        WeightKind::I8(scale) => RnnWeight::I8 { data: t.as_slice::<i8>()?, scale },
    })
}

/// Weights are read as inputs, which a variable tensor is not at eval.
fn not_variable(ctx: &PrepareContext<'_>, i: usize, name: &str) -> Result<(), OpError> {
    if ctx.input_is_variable(i) {
        return Err(OpError::Unsupported(format!("{name} is a variable tensor")));
    }
    Ok(())
}

/// Check a float32 vector input of `n` elements.
pub(crate) fn check_vector(ctx: &PrepareContext<'_>, i: usize, name: &str, n: usize) -> Result<(), OpError> {
    let b = ctx.input(i)?;
    not_variable(ctx, i, name)?;
    expect_dtype(name, b.dtype(), &[DataType::Float32])?;
    if b.shape() != [n] {
        return Err(OpError::Shape(format!("{name} has shape {:?}, expected [{n}]", b.shape())));
    }
    Ok(())
}

/// Check a float32 state input: a variable tensor `[batches, n]`.
pub(crate) fn check_state(
    ctx: &PrepareContext<'_>,
    i: usize,
    name: &str,
    batches: usize,
    n: usize,
) -> Result<(), OpError> {
    let s = ctx.input(i)?;
    expect_dtype(name, s.dtype(), &[DataType::Float32])?;
    if !ctx.input_is_variable(i) {
        return Err(OpError::Unsupported(format!("{name} must be a variable tensor")));
    }
    if s.shape() != [batches, n] {
        return Err(OpError::Shape(format!("{name} has shape {:?}, expected [{batches}, {n}]", s.shape())));
    }
    Ok(())
}

/// Check a slice's length at eval. The kernels index by the prepared
/// dimensions, and what an input holds at eval is not always what prepare
/// saw (a model may wire one variable tensor to two inputs: the second one
/// then gets no bytes), so that is checked rather than trusted.
pub(crate) fn expect_len(what: &str, got: usize, want: usize) -> Result<(), OpError> {
    if got != want {
        return Err(OpError::Shape(format!("{what} holds {got} values at eval, expected {want}")));
    }
    Ok(())
}

/// A cell's inputs (weights, recurrent weights, bias) and their storage.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CellInputs {
    pub weights: (usize, WeightKind),
    pub recurrent: (usize, WeightKind),
    pub bias: usize,
    pub n_input: usize,
}

impl CellInputs {
    /// Check the cell whose weights are inputs `w`, `w + 1` and bias `w + 2`
    /// against `n_input`; returns it with its unit count.
    pub(crate) fn prepare(
        ctx: &PrepareContext<'_>,
        w: usize,
        n_input: usize,
        prefix: &str,
    ) -> Result<(Self, usize), OpError> {
        let weights_name = format!("{prefix}weights (input {w})");
        let n_units = match ctx.input(w)?.shape() {
            &[n, _] => n,
            s => return Err(OpError::Shape(format!("{weights_name} must be 2-D, got {s:?}"))),
        };
        let wk = weight_kind(ctx, w, &weights_name, n_units, n_input)?;
        let rk = weight_kind(ctx, w + 1, &format!("{prefix}recurrent weights (input {})", w + 1), n_units, n_units)?;
        if matches!(wk, WeightKind::I8(_)) != matches!(rk, WeightKind::I8(_)) {
            return Err(OpError::Unsupported(format!("{prefix}weights mixing float32 and int8")));
        }
        check_vector(ctx, w + 2, &format!("{prefix}bias (input {})", w + 2), n_units)?;
        Ok((CellInputs { weights: (w, wk), recurrent: (w + 1, rk), bias: w + 2, n_input }, n_units))
    }

    /// The cell at eval, its sizes checked against `n_units`.
    pub(crate) fn view<'a>(&self, ctx: &EvalContext<'a>, n_units: usize) -> Result<RnnCell<'a>, OpError> {
        let cell = RnnCell {
            input_weights: weight_view(ctx, self.weights.0, self.weights.1)?,
            recurrent_weights: weight_view(ctx, self.recurrent.0, self.recurrent.1)?,
            bias: ctx.input(self.bias)?.as_slice::<f32>()?,
        };
        expect_len(&format!("bias (input {})", self.bias), cell.bias.len(), n_units)?;
        cell.check(self.n_input).map_err(OpError::Shape)?;
        Ok(cell)
    }
}

/// RNN and UNIDIRECTIONAL_SEQUENCE_RNN, prepared: the input (0), the cell
/// (1-3) and the hidden state (4).
pub(crate) struct PreparedRnn {
    pub cell: CellInputs,
    pub n_units: usize,
    pub params: RnnParams,
    pub dims: SequenceDims,
    pub scratch: RnnScratch,
    pub hidden: Vec<f32>,
}

pub(crate) const HIDDEN_STATE: usize = 4;

impl PreparedOp for PreparedRnn {
    fn eval(&mut self, ctx: &mut EvalContext<'_>) -> Result<(), OpError> {
        let d = self.dims;
        let x = ctx.input(0)?.as_slice::<f32>()?;
        expect_len("input", x.len(), d.batches * d.time * d.n_input)?;
        let cell = self.cell.view(ctx, self.n_units)?;
        // The state is small: a copy lets the output be borrowed from ctx.
        self.hidden.clear();
        self.hidden.extend_from_slice(ctx.variable_mut(HIDDEN_STATE)?.as_slice::<f32>()?);
        expect_len("hidden state", self.hidden.len(), d.batches * self.n_units)?;
        let y = ctx.output(0)?.as_slice_mut::<f32>()?;
        expect_len("output", y.len(), d.batches * d.time * self.n_units)?;
        unidirectional_sequence_rnn(&cell, &self.params, &self.dims, x, &mut self.hidden, y, &mut self.scratch);
        ctx.variable_mut(HIDDEN_STATE)?.as_slice_mut::<f32>()?.copy_from_slice(&self.hidden);
        Ok(())
    }
}

/// Check RNN / UNIDIRECTIONAL_SEQUENCE_RNN inputs for the given layout.
pub(crate) fn prepare_rnn(
    ctx: &mut PrepareContext<'_>,
    op: &str,
    batches: usize,
    time: usize,
    n_input: usize,
    time_major: bool,
    params: RnnParams,
) -> Result<(PreparedRnn, usize), OpError> {
    expect_dtype(&format!("{op} input"), ctx.input(0)?.dtype(), &[DataType::Float32])?;
    expect_dtype(&format!("{op} output"), ctx.output_dtype(0)?, &[DataType::Float32])?;
    let (cell, n_units) = CellInputs::prepare(ctx, 1, n_input, "")?;
    check_state(ctx, HIDDEN_STATE, "hidden state (input 4)", batches, n_units)?;
    let dims = SequenceDims { batches, time, n_input, time_major };
    Ok((PreparedRnn { cell, n_units, params, dims, scratch: RnnScratch::new(), hidden: Vec::new() }, n_units))
}

impl Operator for Rnn {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(5, 5)?;
        ctx.check_outputs(1, 1)?;
        let o = options!(ctx, RnnOptions).cloned().unwrap_or_default();
        let params = RnnParams {
            activation: rnn_activation(o.fused_activation_function),
            asymmetric_quantize_inputs: o.asymmetric_quantize_inputs,
        };
        let [batches, n_input] = ctx.input(0)?.shape()[..] else {
            return Err(OpError::Shape(format!("RNN input must be 2-D, got {:?}", ctx.input(0)?.shape())));
        };
        let (prepared, n_units) = prepare_rnn(ctx, "RNN", batches, 1, n_input, false, params)?;
        ctx.set_output_shape(0, vec![batches, n_units])?;
        Ok(Box::new(prepared))
    }
}
