//! UNIDIRECTIONAL_SEQUENCE_RNN: TFLite's basic recurrent cell (see
//! [`super::rnn`]) over a whole sequence, float or with dynamic-range int8
//! weights.
//!
//! Inputs: 0 input `[batch, time, n_input]` (`[time, batch, n_input]` when
//! `time_major`); 1 weights `[n_units, n_input]`; 2 recurrent weights
//! `[n_units, n_units]`; 3 bias `[n_units]`; 4 the hidden state
//! `[batch, n_units]`, a variable tensor carried over to the next invoke.
//! The output has the input's layout with `n_units` features: every step's
//! new hidden state.

use ferrolite_kernels::reference::rnn::RnnParams;
use ferrolite_schema::BuiltinOperator as B;

use super::options;
use super::rnn::{prepare_rnn, rnn_activation};
use crate::error::OpError;
use crate::op::{Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::UnidirectionalSequenceRnn as i32, 1..=i32::MAX, UnidirectionalSequenceRnn);
}

struct UnidirectionalSequenceRnn;

impl Operator for UnidirectionalSequenceRnn {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(5, 5)?;
        ctx.check_outputs(1, 1)?;
        let o = options!(ctx, SequenceRnnOptions).cloned().unwrap_or_default();
        let params = RnnParams {
            activation: rnn_activation(o.fused_activation_function),
            asymmetric_quantize_inputs: o.asymmetric_quantize_inputs,
        };
        let [d0, d1, n_input] = ctx.input(0)?.shape()[..] else {
            return Err(OpError::Shape(format!(
                "UNIDIRECTIONAL_SEQUENCE_RNN input must be 3-D, got {:?}",
                ctx.input(0)?.shape()
            )));
        };
        let (batches, time) = if o.time_major { (d1, d0) } else { (d0, d1) };
        let (prepared, n_units) =
            prepare_rnn(ctx, "UNIDIRECTIONAL_SEQUENCE_RNN", batches, time, n_input, o.time_major, params)?;
        ctx.set_output_shape(0, vec![d0, d1, n_units])?;
        Ok(Box::new(prepared))
    }
}
