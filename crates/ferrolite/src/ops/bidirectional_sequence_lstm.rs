//! BIDIRECTIONAL_SEQUENCE_LSTM: two LSTMs over one sequence, the forward one
//! from the first step to the last and the backward one from the last to
//! the first, float or with dynamic-range int8 weights. Each direction is
//! the cell of UNIDIRECTIONAL_SEQUENCE_LSTM (same kernel; see
//! [`ferrolite_kernels::reference::bidirectional_sequence_lstm`]).
//!
//! Inputs (48; absent optional ones are -1): 0 input `[batch, time,
//! n_input]` (`[time, batch, n_input]` when `time_major`, the option's
//! default); 1-17 the forward cell, 18-34 the backward cell, each in
//! UNIDIRECTIONAL_SEQUENCE_LSTM's order (input-to-{input, forget, cell,
//! output} weights, recurrent-to-{...} weights, cell-to-{input, forget,
//! output} peepholes, {input, forget, cell, output} gate biases, projection
//! weights and bias); 35-36 the forward output and cell state, 37-38 the
//! backward ones (variable tensors, carried over to the next invoke); 39
//! an optional auxiliary input; 40-47 its forward and backward weights.
//! Outputs: the forward and backward sequences in the input's layout, or
//! with `merge_outputs` one output whose rows are `[forward | backward]`.
//!
//! An auxiliary input without aux weights is the backward cell's input
//! (TFLite's stacking without cross links); aux weights (cross links) are
//! refused, and so are int8 weights with a batch-major input (TFLite's
//! hybrid kernel reads every input as time-major). Weights must be
//! constants (they are read in place).

use ferrolite_kernels::reference::bidirectional_sequence_lstm::{
    bidirectional_sequence_lstm, BidirectionalLstmScratch, LstmDirection,
};
use ferrolite_kernels::reference::lstm::{check_sizes, LstmActivation, LstmDims, LstmParams, LstmWeight, LstmWeights};
use ferrolite_schema::{self as fb, BuiltinOperator as B};

use super::options;
use super::rnn::{expect_len, weight_kind_any_shape, WeightKind};
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{expect_dtype, EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;
use crate::tensor::TensorRef;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::BidirectionalSequenceLstm as i32, 1..=i32::MAX, BidirectionalSequenceLstm);
}

struct BidirectionalSequenceLstm;

const INPUT: usize = 0;
const FW: usize = 1;
const BW: usize = 18;
const FW_STATE: (usize, usize) = (35, 36);
const BW_STATE: (usize, usize) = (37, 38);
const AUX_INPUT: usize = 39;
/// Tensors per direction, from its input-to-input weights on.
const CELL_TENSORS: usize = 17;

/// The role of a direction's k-th tensor, for messages: the
/// unidirectional op's inputs 1..=17, in the same order.
fn role(k: usize) -> &'static str {
    super::unidirectional_sequence_lstm::INPUT_NAMES.get(1 + k).copied().unwrap_or("?")
}

/// Positions (within a direction) of the float32 vectors: biases.
fn is_bias(k: usize) -> bool {
    matches!(k, 11..=14 | 16)
}

/// Positions that must be present.
fn is_required(k: usize) -> bool {
    matches!(k, 1..=3 | 5..=7 | 12..=14)
}

fn name(first: usize, k: usize) -> String {
    let dir = if first == FW { "forward" } else { "backward" };
    format!("input {} ({dir} {})", first + k, role(k))
}

/// How each of a direction's tensors is stored (`None`: absent).
type Kinds = [Option<WeightKind>; CELL_TENSORS];

/// A direction's weights as views of the tensors `get` gives.
fn lstm_weights<'a>(
    first: usize,
    kinds: &Kinds,
    get: &dyn Fn(usize) -> Result<TensorRef<'a>, OpError>,
) -> Result<LstmWeights<'a>, OpError> {
    let matrix = |k: usize| -> Result<Option<LstmWeight<'a>>, OpError> {
        Ok(match kinds[k] {
            None => None,
            Some(WeightKind::F32) => Some(LstmWeight::F32(get(first + k)?.as_slice::<f32>()?)),
            Some(WeightKind::I8(scale)) => Some(LstmWeight::I8 { data: get(first + k)?.as_slice::<i8>()?, scale }),
        })
    };
    let required = |k: usize| matrix(k)?.ok_or(OpError::MissingInput(first + k));
    let vector = |k: usize| -> Result<Option<&'a [f32]>, OpError> {
        kinds[k].map(|_| Ok(get(first + k)?.as_slice::<f32>()?)).transpose()
    };
    let required_vector = |k: usize| vector(k)?.ok_or(OpError::MissingInput(first + k));
    Ok(LstmWeights {
        input_to_input: matrix(0)?,
        input_to_forget: required(1)?,
        input_to_cell: required(2)?,
        input_to_output: required(3)?,
        recurrent_to_input: matrix(4)?,
        recurrent_to_forget: required(5)?,
        recurrent_to_cell: required(6)?,
        recurrent_to_output: required(7)?,
        cell_to_input: matrix(8)?,
        cell_to_forget: matrix(9)?,
        cell_to_output: matrix(10)?,
        input_gate_bias: vector(11)?,
        forget_gate_bias: required_vector(12)?,
        cell_gate_bias: required_vector(13)?,
        output_gate_bias: required_vector(14)?,
        projection: matrix(15)?,
        projection_bias: vector(16)?,
        input_layer_norm: None,
        forget_layer_norm: None,
        cell_layer_norm: None,
        output_layer_norm: None,
    })
}

/// Check a direction's tensors: types, presence, constness; returns how
/// each is stored and the direction's `(n_cell, n_output)`.
fn prepare_direction(ctx: &PrepareContext<'_>, first: usize) -> Result<(Kinds, usize, usize), OpError> {
    let mut kinds: Kinds = [None; CELL_TENSORS];
    for (k, kind) in kinds.iter_mut().enumerate() {
        let i = first + k;
        let Some(t) = ctx.optional_input(i) else {
            if is_required(k) {
                return Err(OpError::MissingInput(i));
            }
            continue;
        };
        if t.constant.is_none() {
            return Err(OpError::Unsupported(format!("{} must be a constant", name(first, k))));
        }
        *kind = Some(if is_bias(k) {
            expect_dtype(&name(first, k), t.dtype(), &[DataType::Float32])?;
            WeightKind::F32
        } else {
            weight_kind_any_shape(ctx, i, &name(first, k))?
        });
    }
    let int8 = |k: usize| matches!(kinds[k], Some(WeightKind::I8(_)));
    let hybrid = int8(1);
    // Peepholes may be either: the kernel dequantises int8 ones.
    if (0..=7).chain([15]).any(|k| kinds[k].is_some() && int8(k) != hybrid) {
        return Err(OpError::Unsupported("LSTM weights mixing float32 and int8".into()));
    }
    let [n_cell, _] = ctx.input(first + 1)?.shape()[..] else {
        return Err(OpError::Shape(format!("{} must be 2-D", name(first, 1))));
    };
    let [_, n_output] = ctx.input(first + 5)?.shape()[..] else {
        return Err(OpError::Shape(format!("{} must be 2-D", name(first, 5))));
    };
    Ok((kinds, n_cell, n_output))
}

struct Prepared {
    fw: Kinds,
    bw: Kinds,
    fw_dims: LstmDims,
    bw_dims: LstmDims,
    params: LstmParams,
    /// The backward cell reads the auxiliary input instead of the input.
    bw_reads_aux: bool,
    merged: bool,
    scratch: BidirectionalLstmScratch,
    /// Copies of the four states, so the outputs can be borrowed too.
    state: [Vec<f32>; 4],
}

impl PreparedOp for Prepared {
    fn eval(&mut self, ctx: &mut EvalContext<'_>) -> Result<(), OpError> {
        let (fd, bd) = (self.fw_dims, self.bw_dims);
        let rows = fd.batches * fd.time;
        let x = ctx.input(INPUT)?.as_slice::<f32>()?;
        let bw_x = if self.bw_reads_aux { ctx.input(AUX_INPUT)?.as_slice::<f32>()? } else { x };
        expect_len("input", x.len(), rows * fd.n_input)?;
        expect_len("auxiliary input", bw_x.len(), rows * fd.n_input)?;
        let get = |i: usize| ctx.input(i);
        let fw_w = lstm_weights(FW, &self.fw, &get)?;
        let bw_w = lstm_weights(BW, &self.bw, &get)?;
        check_sizes(&fw_w, &fd).map_err(|e| OpError::Shape(format!("forward cell: {e}")))?;
        check_sizes(&bw_w, &bd).map_err(|e| OpError::Shape(format!("backward cell: {e}")))?;
        let [fh, fc, bh, bc] = &mut self.state;
        for ((a, b), (h, c)) in [(FW_STATE, (&mut *fh, &mut *fc)), (BW_STATE, (&mut *bh, &mut *bc))] {
            let (vh, vc) = ctx.variables_mut2(a, b)?;
            h.clear();
            h.extend_from_slice(vh.as_slice::<f32>()?);
            c.clear();
            c.extend_from_slice(vc.as_slice::<f32>()?);
        }
        for (what, v, n) in [
            ("forward output state", &*fh, fd.n_output),
            ("forward cell state", &*fc, fd.n_cell),
            ("backward output state", &*bh, bd.n_output),
            ("backward cell state", &*bc, bd.n_cell),
        ] {
            expect_len(what, v.len(), fd.batches * n)?;
        }
        let (fo, bo) = match (self.merged, ctx.outputs_mut()) {
            (true, [fo]) => (fo.as_slice_mut::<f32>()?, None),
            (false, [fo, bo]) => (fo.as_slice_mut::<f32>()?, Some(bo.as_slice_mut::<f32>()?)),
            (_, outs) => {
                return Err(OpError::Value(format!(
                    "prepared for merged outputs {}, got {} outputs",
                    self.merged,
                    outs.len()
                )))
            }
        };
        match &bo {
            None => expect_len("output", fo.len(), rows * (fd.n_output + bd.n_output))?,
            Some(bo) => {
                expect_len("forward output", fo.len(), rows * fd.n_output)?;
                expect_len("backward output", bo.len(), rows * bd.n_output)?;
            }
        }
        let fw = LstmDirection { weights: &fw_w, dims: fd, output_state: fh, cell_state: fc };
        let bw = LstmDirection { weights: &bw_w, dims: bd, output_state: bh, cell_state: bc };
        bidirectional_sequence_lstm(fw, bw, &self.params, x, bw_x, fo, bo, &mut self.scratch);
        for ((a, b), (h, c)) in [(FW_STATE, (&*fh, &*fc)), (BW_STATE, (&*bh, &*bc))] {
            let (vh, vc) = ctx.variables_mut2(a, b)?;
            vh.as_slice_mut::<f32>()?.copy_from_slice(h);
            vc.as_slice_mut::<f32>()?.copy_from_slice(c);
        }
        Ok(())
    }
}

fn lstm_activation(act: fb::ActivationFunctionType) -> Result<LstmActivation, OpError> {
    use fb::ActivationFunctionType as A;
    Ok(match act {
        A::None => LstmActivation::None,
        A::Relu => LstmActivation::Relu,
        A::ReluN1To1 => LstmActivation::ReluN1To1,
        A::Relu6 => LstmActivation::Relu6,
        A::Tanh => LstmActivation::Tanh,
        A::SignBit => return Err(OpError::Unsupported("BIDIRECTIONAL_SEQUENCE_LSTM activation SignBit".into())),
    })
}

impl Operator for BidirectionalSequenceLstm {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(48, 48)?;
        let o = options!(ctx, BidirectionalSequenceLstmOptions).cloned().unwrap_or_default();
        let n_outputs = if o.merge_outputs { 1 } else { 2 };
        ctx.check_outputs(n_outputs, n_outputs)?;
        let activation = lstm_activation(o.fused_activation_function)?;
        if !(o.cell_clip >= 0.0 && o.proj_clip >= 0.0) {
            return Err(OpError::Value(format!("cell_clip {} / proj_clip {} must be >= 0", o.cell_clip, o.proj_clip)));
        }
        let input = ctx.input(INPUT)?;
        expect_dtype("BIDIRECTIONAL_SEQUENCE_LSTM input", input.dtype(), &[DataType::Float32])?;
        let [d0, d1, n_input] = input.shape()[..] else {
            return Err(OpError::Shape(format!(
                "BIDIRECTIONAL_SEQUENCE_LSTM input must be 3-D, got {:?}",
                input.shape()
            )));
        };
        let (batches, time) = if o.time_major { (d1, d0) } else { (d0, d1) };
        if (40..48).any(|i| ctx.optional_input(i).is_some()) {
            return Err(OpError::Unsupported(
                "BIDIRECTIONAL_SEQUENCE_LSTM with auxiliary input weights (cross-linked stacked layers)".into(),
            ));
        }
        let bw_reads_aux = match ctx.optional_input(AUX_INPUT) {
            None => false,
            Some(aux) => {
                expect_dtype("auxiliary input (input 39)", aux.dtype(), &[DataType::Float32])?;
                if aux.shape() != input.shape() {
                    return Err(OpError::Shape(format!(
                        "auxiliary input (input 39) has shape {:?}, the backward cell needs the input's {:?}",
                        aux.shape(),
                        input.shape()
                    )));
                }
                true
            }
        };
        let (fw, fw_cell, fw_out) = prepare_direction(ctx, FW)?;
        let (bw, bw_cell, bw_out) = prepare_direction(ctx, BW)?;
        let hybrid = matches!(fw[1], Some(WeightKind::I8(_))) || matches!(bw[1], Some(WeightKind::I8(_)));
        if hybrid && !o.time_major {
            return Err(OpError::Unsupported(
                "BIDIRECTIONAL_SEQUENCE_LSTM with int8 weights and a batch-major input \
                 (TFLite's hybrid kernel reads it as time-major)"
                    .into(),
            ));
        }
        let dims = |n_cell, n_output| LstmDims { batches, time, n_input, n_cell, n_output, time_major: o.time_major };
        let (fw_dims, bw_dims) = (dims(fw_cell, fw_out), dims(bw_cell, bw_out));
        let constant = |i: usize| {
            let t = ctx.input(i)?;
            let bytes = t.constant.ok_or_else(|| OpError::Unsupported(format!("input {i} must be a constant")))?;
            Ok(TensorRef { info: t.info, bytes })
        };
        for (first, kinds, d) in [(FW, &fw, &fw_dims), (BW, &bw, &bw_dims)] {
            let w = lstm_weights(first, kinds, &constant)?;
            let dir = if first == FW { "forward" } else { "backward" };
            check_sizes(&w, d).map_err(|e| OpError::Shape(format!("{dir} cell: {e}")))?;
        }
        for ((h, c), d, dir) in [(FW_STATE, &fw_dims, "forward"), (BW_STATE, &bw_dims, "backward")] {
            for (i, n, what) in [(h, d.n_output, "output state"), (c, d.n_cell, "cell state")] {
                let s = ctx.input(i)?;
                let label = format!("{dir} {what} (input {i})");
                expect_dtype(&label, s.dtype(), &[DataType::Float32])?;
                if !ctx.input_is_variable(i) {
                    return Err(OpError::Unsupported(format!("{label} must be a variable tensor")));
                }
                if batches.checked_mul(n) != Some(s.info.num_elements()) {
                    return Err(OpError::Shape(format!(
                        "{label} has shape {:?}, expected [{batches}, {n}]",
                        s.shape()
                    )));
                }
            }
        }
        for k in 0..n_outputs {
            expect_dtype(
                &format!("BIDIRECTIONAL_SEQUENCE_LSTM output {k}"),
                ctx.output_dtype(k)?,
                &[DataType::Float32],
            )?;
        }
        if o.merge_outputs {
            ctx.set_output_shape(0, vec![d0, d1, fw_out + bw_out])?;
        } else {
            ctx.set_output_shape(0, vec![d0, d1, fw_out])?;
            ctx.set_output_shape(1, vec![d0, d1, bw_out])?;
        }
        let params = LstmParams {
            activation,
            cell_clip: o.cell_clip,
            proj_clip: o.proj_clip,
            asymmetric_quantize_inputs: o.asymmetric_quantize_inputs,
        };
        Ok(Box::new(Prepared {
            fw,
            bw,
            fw_dims,
            bw_dims,
            params,
            bw_reads_aux,
            merged: o.merge_outputs,
            scratch: BidirectionalLstmScratch::new(),
            state: Default::default(),
        }))
    }
}
