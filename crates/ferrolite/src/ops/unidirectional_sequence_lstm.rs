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
//!
//! With an int8 input the op is TFLite's fully integer "8x8_16" LSTM
//! ([`ferrolite_kernels::reference::quantized::lstm`]): int8 weights, int32
//! biases, int16 peepholes and layer-norm coefficients, an int8 output
//! state and an int16 cell state whose scale is a power of two. Its gate
//! and hidden scales come from the node's five `intermediates` tensors
//! (the gates' are read only with layer norm, 2^-12 otherwise). The
//! effective multipliers and zero-point row sums are computed at prepare.

use fb::BuiltinOperator as B;
use ferrolite_kernels::reference::lstm::{
    check_sizes, unidirectional_sequence_lstm, LstmActivation, LstmDims, LstmParams, LstmScratch, LstmWeight,
    LstmWeights,
};
use ferrolite_kernels::reference::quantized::lstm::{
    integer_lstm, integer_lstm_params, IntegerLstmParams, IntegerLstmScales, IntegerLstmScratch, IntegerLstmWeights,
    CELL_GATE, FORGET_GATE, INPUT_GATE, OUTPUT_GATE,
};
use ferrolite_schema as fb;

use super::options;
use crate::dtype::DataType;
use crate::dtype::Element;
use crate::error::OpError;
use crate::op::{expect_dtype, EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;
use crate::tensor::TensorInfo;

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
        if !matches!(input.dtype(), DataType::Float32 | DataType::Int8) {
            return Err(OpError::Unsupported(format!("UNIDIRECTIONAL_SEQUENCE_LSTM on {} input", input.dtype())));
        }
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
        let dims = LstmDims { batches, time, n_input, n_cell, n_output, time_major: o.time_major };
        let out_shape = if o.time_major { vec![time, batches, n_output] } else { vec![batches, time, n_output] };
        if input.dtype() == DataType::Int8 {
            let prepared = prepare_integer(ctx, &o, dims)?;
            ctx.set_output_shape(0, out_shape)?;
            return Ok(Box::new(prepared));
        }
        expect_dtype("output", ctx.output_dtype(0)?, &[DataType::Float32])?;
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
        let params = LstmParams {
            activation,
            cell_clip: o.cell_clip,
            proj_clip: o.proj_clip,
            asymmetric_quantize_inputs: o.asymmetric_quantize_inputs,
        };
        let prepared = Prepared { w, params, dims, scratch: LstmScratch::new() };
        check_sizes(&prepared.weights()?, &dims).map_err(OpError::Shape)?;
        ctx.set_output_shape(0, out_shape)?;
        Ok(Box::new(prepared))
    }
}

/// The op's inputs by index, for messages.
pub(crate) const INPUT_NAMES: [&str; 24] = [
    "input",
    "input_to_input_weights",
    "input_to_forget_weights",
    "input_to_cell_weights",
    "input_to_output_weights",
    "recurrent_to_input_weights",
    "recurrent_to_forget_weights",
    "recurrent_to_cell_weights",
    "recurrent_to_output_weights",
    "cell_to_input_weights",
    "cell_to_forget_weights",
    "cell_to_output_weights",
    "input_gate_bias",
    "forget_gate_bias",
    "cell_gate_bias",
    "output_gate_bias",
    "projection_weights",
    "projection_bias",
    "output_state",
    "cell_state",
    "input_layer_norm_coefficients",
    "forget_layer_norm_coefficients",
    "cell_layer_norm_coefficients",
    "output_layer_norm_coefficients",
];

fn input_name(i: usize) -> String {
    format!("input {i} ({})", INPUT_NAMES.get(i).copied().unwrap_or("?"))
}

/// A per-tensor (scale, zero point) with a positive finite scale.
fn per_tensor_quant(info: &TensorInfo, what: &str) -> Result<(f32, i32), OpError> {
    let q =
        info.quant.as_ref().filter(|q| !q.scales.is_empty()).ok_or_else(|| {
            OpError::Unsupported(format!("{what} of the integer LSTM has no quantisation parameters"))
        })?;
    if q.scales.len() != 1 {
        return Err(OpError::Unsupported(format!(
            "{what} of the integer LSTM is per-channel quantised ({} scales); TFLite's kernel takes one scale",
            q.scales.len()
        )));
    }
    let scale = q.scales[0];
    if !(scale > 0.0 && scale.is_finite()) {
        return Err(OpError::Value(format!("{what} has scale {scale}")));
    }
    let zp = q.zero_points.first().copied().unwrap_or(0);
    let zp = i32::try_from(zp).map_err(|_| OpError::Value(format!("{what} has zero point {zp}")))?;
    Ok((scale, zp))
}

/// An optional constant input of type `T`, copied, with its scale when
/// `scaled` (then it must be symmetric: zero point 0).
fn integer_constant<T: Element + Copy>(
    ctx: &PrepareContext<'_>,
    i: usize,
    scaled: bool,
) -> Result<Option<(Vec<T>, f32)>, OpError> {
    let Some(t) = ctx.optional_input(i) else { return Ok(None) };
    let name = input_name(i);
    if t.dtype() != T::DTYPE {
        return Err(OpError::DType { tensor: name, expected: T::DTYPE.to_string(), got: t.dtype().to_string() });
    }
    let data = t
        .constant_as::<T>()?
        .ok_or_else(|| OpError::Unsupported(format!("{name} of the integer LSTM must be a constant")))?;
    let scale = if scaled {
        let (scale, zp) = per_tensor_quant(t.info, &name)?;
        if zp != 0 {
            return Err(OpError::Unsupported(format!("{name} has zero point {zp}; the integer LSTM needs 0")));
        }
        scale
    } else {
        1.0
    };
    Ok(Some((data.to_vec(), scale)))
}

/// The integer LSTM's constants, owned.
#[derive(Default)]
struct IntegerOwned {
    input_to_gate: [Option<Vec<i8>>; 4],
    recurrent_to_gate: [Option<Vec<i8>>; 4],
    cell_to_gate: [Option<Vec<i16>>; 4],
    layer_norm: [Option<Vec<i16>>; 4],
    bias: [Option<Vec<i32>>; 4],
    projection: Option<Vec<i8>>,
    projection_bias: Option<Vec<i32>>,
}

impl IntegerOwned {
    fn view(&self) -> IntegerLstmWeights<'_> {
        IntegerLstmWeights {
            input_to_gate: self.input_to_gate.each_ref().map(|v| v.as_deref()),
            recurrent_to_gate: self.recurrent_to_gate.each_ref().map(|v| v.as_deref()),
            cell_to_gate: self.cell_to_gate.each_ref().map(|v| v.as_deref()),
            layer_norm: self.layer_norm.each_ref().map(|v| v.as_deref()),
            bias: self.bias.each_ref().map(|v| v.as_deref()),
            projection: self.projection.as_deref(),
            projection_bias: self.projection_bias.as_deref(),
        }
    }
}

struct PreparedInteger {
    w: IntegerOwned,
    params: IntegerLstmParams,
    dims: LstmDims,
    scratch: IntegerLstmScratch,
    h: Vec<i8>,
    c: Vec<i16>,
}

impl PreparedOp for PreparedInteger {
    fn eval(&mut self, ctx: &mut EvalContext<'_>) -> Result<(), OpError> {
        let x = ctx.input(INPUT)?.as_slice::<i8>()?;
        // The state is small: work on copies so the output can be borrowed
        // from ctx too, then write it back.
        let (h, c) = ctx.variables_mut2(OUTPUT_STATE, CELL_STATE)?;
        self.h.clear();
        self.h.extend_from_slice(h.as_slice::<i8>()?);
        self.c.clear();
        self.c.extend_from_slice(c.as_slice::<i16>()?);
        let y = ctx.output(0)?.as_slice_mut::<i8>()?;
        let w = self.w.view();
        integer_lstm(&w, &self.params, &self.dims, x, &mut self.h, &mut self.c, y, &mut self.scratch)
            .map_err(OpError::Value)?;
        let (h, c) = ctx.variables_mut2(OUTPUT_STATE, CELL_STATE)?;
        h.as_slice_mut::<i8>()?.copy_from_slice(&self.h);
        c.as_slice_mut::<i16>()?.copy_from_slice(&self.c);
        Ok(())
    }
}

/// TFLite's integer path: int8 input, `PopulateQuantizedLstmParams8x8_16`
/// and the zero-point row sums at prepare.
fn prepare_integer(
    ctx: &PrepareContext<'_>,
    o: &fb::UnidirectionalSequenceLstmOptions,
    dims: LstmDims,
) -> Result<PreparedInteger, OpError> {
    if !(o.cell_clip >= 0.0 && o.proj_clip >= 0.0) {
        return Err(OpError::Value(format!("cell_clip {} / proj_clip {} must be >= 0", o.cell_clip, o.proj_clip)));
    }
    let (input_scale, input_zp) = per_tensor_quant(ctx.input(INPUT)?.info, &input_name(INPUT))?;
    let output = ctx.output(0)?;
    expect_dtype("output 0", output.dtype, &[DataType::Int8])?;
    let (output_scale, _) = per_tensor_quant(output, "output 0")?;

    // State: variable tensors of the right type and size.
    let mut state_quant = [(0.0f32, 0i32); 2];
    for (k, (i, dtype, n)) in
        [(OUTPUT_STATE, DataType::Int8, dims.n_output), (CELL_STATE, DataType::Int16, dims.n_cell)]
            .into_iter()
            .enumerate()
    {
        let s = ctx.input(i)?;
        let name = input_name(i);
        expect_dtype(&name, s.dtype(), &[dtype])?;
        if !ctx.input_is_variable(i) {
            return Err(OpError::Unsupported(format!("{name} must be a variable tensor")));
        }
        if s.info.num_elements() != dims.batches * n {
            return Err(OpError::Shape(format!("{name} has shape {:?}, expected [{}, {n}]", s.shape(), dims.batches)));
        }
        state_quant[k] = per_tensor_quant(s.info, &name)?;
    }

    // Intermediates: 0-3 the gates' scales (layer norm), 4 the hidden state's.
    if ctx.num_intermediates() != 5 {
        return Err(OpError::Unsupported(format!(
            "the integer LSTM needs 5 intermediate tensors (the 8x8_16 kernel), the node lists {}",
            ctx.num_intermediates()
        )));
    }
    let mut intermediates = [None; 5];
    for (k, slot) in intermediates.iter_mut().enumerate() {
        let t = ctx.intermediate(k).ok_or_else(|| OpError::Value(format!("no intermediate tensor {k}")))?;
        if t.quant.as_ref().is_some_and(|q| !q.scales.is_empty()) {
            *slot = Some(per_tensor_quant(t, &format!("intermediate tensor {k}"))?);
        }
    }

    // Constants, by gate: input, forget, cell, output.
    let mut w = IntegerOwned::default();
    let mut scales = IntegerLstmScales {
        input: input_scale,
        input_zero_point: input_zp,
        output_state: state_quant[0].0,
        output_state_zero_point: state_quant[0].1,
        cell_state: state_quant[1].0,
        output: output_scale,
        input_to_gate: [1.0; 4],
        recurrent_to_gate: [1.0; 4],
        cell_to_gate: [1.0; 4],
        layer_norm: [1.0; 4],
        projection: 1.0,
        intermediates,
        cell_clip: o.cell_clip,
        proj_clip: o.proj_clip,
    };
    let use_layer_norm = ctx.num_inputs() == 24 && ctx.optional_input(21).is_some();
    let gates = [INPUT_GATE, FORGET_GATE, CELL_GATE, OUTPUT_GATE];
    for (k, &g) in gates.iter().enumerate() {
        if let Some((v, s)) = integer_constant::<i8>(ctx, 1 + k, true)? {
            w.input_to_gate[g] = Some(v);
            scales.input_to_gate[g] = s;
        }
        if let Some((v, s)) = integer_constant::<i8>(ctx, 5 + k, true)? {
            w.recurrent_to_gate[g] = Some(v);
            scales.recurrent_to_gate[g] = s;
        }
        w.bias[g] = integer_constant::<i32>(ctx, 12 + k, false)?.map(|(v, _)| v);
        if use_layer_norm {
            if let Some((v, s)) = integer_constant::<i16>(ctx, 20 + k, true)? {
                w.layer_norm[g] = Some(v);
                scales.layer_norm[g] = s;
            }
        }
    }
    for (i, g) in [(9, INPUT_GATE), (10, FORGET_GATE), (11, OUTPUT_GATE)] {
        if let Some((v, s)) = integer_constant::<i16>(ctx, i, true)? {
            w.cell_to_gate[g] = Some(v);
            scales.cell_to_gate[g] = s;
        }
    }
    for (i, g) in
        [(2, FORGET_GATE), (3, CELL_GATE), (4, OUTPUT_GATE), (6, FORGET_GATE), (7, CELL_GATE), (8, OUTPUT_GATE)]
    {
        let present = if i < 5 { w.input_to_gate[g].is_some() } else { w.recurrent_to_gate[g].is_some() };
        if !present {
            return Err(OpError::MissingInput(i));
        }
    }
    for (i, g) in [(13, FORGET_GATE), (14, CELL_GATE), (15, OUTPUT_GATE)] {
        if w.bias[g].is_none() {
            return Err(OpError::MissingInput(i));
        }
    }
    if let Some((v, s)) = integer_constant::<i8>(ctx, 16, true)? {
        w.projection = Some(v);
        scales.projection = s;
    }
    w.projection_bias = integer_constant::<i32>(ctx, 17, false)?.map(|(v, _)| v);

    let params = integer_lstm_params(&scales, &w.view(), &dims).map_err(OpError::Unsupported)?;
    Ok(PreparedInteger { w, params, dims, scratch: IntegerLstmScratch::new(), h: Vec::new(), c: Vec::new() })
}
