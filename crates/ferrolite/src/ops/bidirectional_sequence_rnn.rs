//! BIDIRECTIONAL_SEQUENCE_RNN: two of TFLite's basic recurrent cells (see
//! [`super::rnn`]) over one sequence, the forward one from the first step
//! to the last, the backward one from the last to the first. Float only.
//!
//! Inputs: 0 input `[batch, time, n_input]` (`[time, batch, n_input]` when
//! `time_major`); 1-3 forward weights `[fw_units, n_input]`, recurrent
//! weights `[fw_units, fw_units]` and bias `[fw_units]`; 4 the forward
//! hidden state `[batch, fw_units]` (a variable tensor); 5-8 the same for
//! the backward cell; 9-11 an optional auxiliary input and its forward and
//! backward weights. Outputs: the forward and the backward sequence in the
//! input's layout, or with `merge_outputs` one output whose rows are
//! `[forward | backward]`.
//!
//! Refused with a clear error: the auxiliary input (stacked bidirectional
//! layers), whose handling differs between TFLite's batch-major and
//! time-major paths, and int8 weights (TFLite's hybrid time-major path
//! runs the sequence once per step). Like TFLite, a separate backward output
//! is shaped `[batch, time, bw_units]` even when `time_major` (its values
//! are in time-major order).

use ferrolite_kernels::reference::rnn::{bidirectional_sequence_rnn, RnnParams, RnnScratch, SequenceDims};
use ferrolite_schema::BuiltinOperator as B;

use super::options;
use super::rnn::{check_state, expect_len, rnn_activation, CellInputs, WeightKind};
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{expect_dtype, EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::BidirectionalSequenceRnn as i32, 1..=i32::MAX, BidirectionalSequenceRnn);
}

struct BidirectionalSequenceRnn;

const FW_STATE: usize = 4;
const BW_STATE: usize = 8;

struct Prepared {
    fw: CellInputs,
    bw: CellInputs,
    /// Forward and backward units.
    units: (usize, usize),
    params: RnnParams,
    dims: SequenceDims,
    merged: bool,
    scratch: RnnScratch,
    state: (Vec<f32>, Vec<f32>),
}

impl PreparedOp for Prepared {
    fn eval(&mut self, ctx: &mut EvalContext<'_>) -> Result<(), OpError> {
        let (d, (nf, nb)) = (self.dims, self.units);
        let x = ctx.input(0)?.as_slice::<f32>()?;
        expect_len("input", x.len(), d.batches * d.time * d.n_input)?;
        let (fw, bw) = (self.fw.view(ctx, nf)?, self.bw.view(ctx, nb)?);
        let (fh, bh) = &mut self.state;
        {
            let (f, b) = ctx.variables_mut2(FW_STATE, BW_STATE)?;
            fh.clear();
            fh.extend_from_slice(f.as_slice::<f32>()?);
            bh.clear();
            bh.extend_from_slice(b.as_slice::<f32>()?);
        }
        expect_len("forward hidden state", fh.len(), d.batches * nf)?;
        expect_len("backward hidden state", bh.len(), d.batches * nb)?;
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
        let rows = d.batches * d.time;
        match &bo {
            None => expect_len("output", fo.len(), rows * (nf + nb))?,
            Some(bo) => {
                expect_len("forward output", fo.len(), rows * nf)?;
                expect_len("backward output", bo.len(), rows * nb)?;
            }
        }
        bidirectional_sequence_rnn(&fw, &bw, &self.params, &d, x, fh, bh, fo, bo, &mut self.scratch);
        let (f, b) = ctx.variables_mut2(FW_STATE, BW_STATE)?;
        f.as_slice_mut::<f32>()?.copy_from_slice(fh);
        b.as_slice_mut::<f32>()?.copy_from_slice(bh);
        Ok(())
    }
}

impl Operator for BidirectionalSequenceRnn {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(9, 12)?;
        let o = options!(ctx, BidirectionalSequenceRnnOptions).cloned().unwrap_or_default();
        let n_outputs = if o.merge_outputs { 1 } else { 2 };
        ctx.check_outputs(n_outputs, n_outputs)?;
        if (9..12).any(|i| ctx.optional_input(i).is_some()) {
            return Err(OpError::Unsupported(
                "BIDIRECTIONAL_SEQUENCE_RNN with an auxiliary input (stacked bidirectional layers)".into(),
            ));
        }
        let input = ctx.input(0)?;
        expect_dtype("BIDIRECTIONAL_SEQUENCE_RNN input", input.dtype(), &[DataType::Float32])?;
        let [d0, d1, n_input] = input.shape()[..] else {
            return Err(OpError::Shape(format!(
                "BIDIRECTIONAL_SEQUENCE_RNN input must be 3-D, got {:?}",
                input.shape()
            )));
        };
        let (batches, time) = if o.time_major { (d1, d0) } else { (d0, d1) };
        let (fw, nf) = CellInputs::prepare(ctx, 1, n_input, "forward ")?;
        let (bw, nb) = CellInputs::prepare(ctx, 5, n_input, "backward ")?;
        if [fw.weights, fw.recurrent, bw.weights, bw.recurrent].iter().any(|(_, k)| *k != WeightKind::F32) {
            return Err(OpError::Unsupported("BIDIRECTIONAL_SEQUENCE_RNN with int8 (hybrid) weights".into()));
        }
        check_state(ctx, FW_STATE, "forward hidden state (input 4)", batches, nf)?;
        check_state(ctx, BW_STATE, "backward hidden state (input 8)", batches, nb)?;
        for k in 0..n_outputs {
            expect_dtype(
                &format!("BIDIRECTIONAL_SEQUENCE_RNN output {k}"),
                ctx.output_dtype(k)?,
                &[DataType::Float32],
            )?;
        }
        let params = RnnParams {
            activation: rnn_activation(o.fused_activation_function),
            asymmetric_quantize_inputs: o.asymmetric_quantize_inputs,
        };
        if o.merge_outputs {
            ctx.set_output_shape(0, vec![d0, d1, nf + nb])?;
        } else {
            ctx.set_output_shape(0, vec![d0, d1, nf])?;
            ctx.set_output_shape(1, vec![batches, time, nb])?;
        }
        let dims = SequenceDims { batches, time, n_input, time_major: o.time_major };
        Ok(Box::new(Prepared {
            fw,
            bw,
            units: (nf, nb),
            params,
            dims,
            merged: o.merge_outputs,
            scratch: RnnScratch::new(),
            state: (Vec::new(), Vec::new()),
        }))
    }
}
