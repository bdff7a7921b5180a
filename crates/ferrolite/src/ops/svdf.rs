//! SVDF: a fully connected layer over a window of past inputs, factored
//! into per-filter feature and time weights (TFLite's `svdf.cc`), float or
//! with dynamic-range int8 weights.
//!
//! Inputs: 0 input `[batch, n_input]`; 1 feature weights
//! `[n_filters, n_input]`; 2 time weights `[n_filters, memory]`; 3 optional
//! bias `[n_filters / rank]`; 4 the state `[batch, memory · n_filters]`, a
//! variable tensor holding each filter's last `memory` activations, updated
//! in place and carried over to the next invoke. Output
//! `[batch, n_filters / rank]`. Options: `rank`, the fused activation and
//! (hybrid) `asymmetric_quantize_inputs`.
//!
//! Hybrid models have int8 feature and time weights (one scale each, zero
//! point 0); the time weights are dequantised at prepare, as TFLite does at
//! its first eval. The fully integer SVDF (int8 input, int16 state) is
//! refused.

use ferrolite_kernels::reference::rnn::RnnWeight;
use ferrolite_kernels::reference::svdf::{check_sizes, svdf, SvdfDims, SvdfParams, SvdfScratch, SvdfWeights};
use ferrolite_schema::BuiltinOperator as B;

use super::options;
use super::rnn::{check_state, check_vector, expect_len, rnn_activation, weight_kind, weight_view, WeightKind};
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{expect_dtype, EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::Svdf as i32, 1..=i32::MAX, Svdf);
}

struct Svdf;

const FEATURE: usize = 1;
const TIME: usize = 2;
const BIAS: usize = 3;
const STATE: usize = 4;

/// The time weights: read in place (float) or dequantised at prepare.
enum TimeWeights {
    Input,
    Dequantized(Vec<f32>),
}

struct Prepared {
    feature: WeightKind,
    time: TimeWeights,
    has_bias: bool,
    params: SvdfParams,
    dims: SvdfDims,
    scratch: SvdfScratch,
    state: Vec<f32>,
}

impl PreparedOp for Prepared {
    fn eval(&mut self, ctx: &mut EvalContext<'_>) -> Result<(), OpError> {
        let d = self.dims;
        let x = ctx.input(0)?.as_slice::<f32>()?;
        expect_len("SVDF input", x.len(), d.batches * d.n_input)?;
        let feature: RnnWeight<'_> = weight_view(ctx, FEATURE, self.feature)?;
        let time = match &self.time {
            TimeWeights::Input => ctx.input(TIME)?.as_slice::<f32>()?,
            TimeWeights::Dequantized(v) => v,
        };
        let bias = if self.has_bias { Some(ctx.input(BIAS)?.as_slice::<f32>()?) } else { None };
        let w = SvdfWeights { feature, time, bias };
        check_sizes(&w, &d).map_err(OpError::Shape)?;
        // The state is small next to the weights: a copy lets the output be
        // borrowed from ctx too.
        self.state.clear();
        self.state.extend_from_slice(ctx.variable_mut(STATE)?.as_slice::<f32>()?);
        expect_len("SVDF state", self.state.len(), d.batches * d.n_filters * d.memory)?;
        let y = ctx.output(0)?.as_slice_mut::<f32>()?;
        expect_len("SVDF output", y.len(), d.batches * d.n_units())?;
        svdf(&w, &self.params, &d, x, &mut self.state, y, &mut self.scratch);
        ctx.variable_mut(STATE)?.as_slice_mut::<f32>()?.copy_from_slice(&self.state);
        Ok(())
    }
}

impl Operator for Svdf {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(5, 5)?;
        ctx.check_outputs(1, 1)?;
        let o = options!(ctx, SvdfOptions).cloned().unwrap_or_default();
        let input = ctx.input(0)?;
        if input.dtype() == DataType::Int8 {
            return Err(OpError::Unsupported("the fully integer SVDF (int8 input, int16 state)".into()));
        }
        expect_dtype("SVDF input", input.dtype(), &[DataType::Float32])?;
        expect_dtype("SVDF output", ctx.output_dtype(0)?, &[DataType::Float32])?;
        let [batches, n_input] = input.shape()[..] else {
            return Err(OpError::Shape(format!("SVDF input must be 2-D, got {:?}", input.shape())));
        };
        let n_filters = match ctx.input(FEATURE)?.shape() {
            &[n, _] => n,
            s => return Err(OpError::Shape(format!("SVDF weights_feature must be 2-D, got {s:?}"))),
        };
        let memory = match ctx.input(TIME)?.shape() {
            &[_, m] => m,
            s => return Err(OpError::Shape(format!("SVDF weights_time must be 2-D, got {s:?}"))),
        };
        let rank = usize::try_from(o.rank).ok().filter(|&r| r > 0 && n_filters.is_multiple_of(r)).ok_or_else(|| {
            OpError::Value(format!("SVDF rank {} must be positive and divide {n_filters} filters", o.rank))
        })?;
        let n_units = n_filters / rank;
        let feature = weight_kind(ctx, FEATURE, "SVDF weights_feature (input 1)", n_filters, n_input)?;
        let time_kind = weight_kind(ctx, TIME, "SVDF weights_time (input 2)", n_filters, memory)?;
        let time = match (feature, time_kind) {
            (WeightKind::F32, WeightKind::F32) => TimeWeights::Input,
            (WeightKind::I8(_), WeightKind::I8(scale)) => {
                let data = ctx.input(TIME)?.constant_as::<i8>()?.ok_or_else(|| {
                    OpError::Unsupported("int8 SVDF weights_time (input 2) must be a constant".into())
                })?;
                TimeWeights::Dequantized(data.iter().map(|&v| v as f32 * scale).collect())
            }
            _ => return Err(OpError::Unsupported("SVDF weights mixing float32 and int8".into())),
        };
        let has_bias = ctx.optional_input(BIAS).is_some();
        if has_bias {
            check_vector(ctx, BIAS, "SVDF bias (input 3)", n_units)?;
        }
        let state_len = memory
            .checked_mul(n_filters)
            .ok_or_else(|| OpError::Shape(format!("SVDF state of {memory} x {n_filters} overflows")))?;
        check_state(ctx, STATE, "SVDF state (input 4)", batches, state_len)?;
        let params = SvdfParams {
            activation: rnn_activation(o.fused_activation_function),
            asymmetric_quantize_inputs: o.asymmetric_quantize_inputs,
        };
        let dims = SvdfDims { batches, n_input, n_filters, rank, memory };
        ctx.set_output_shape(0, vec![batches, n_units])?;
        Ok(Box::new(Prepared { feature, time, has_bias, params, dims, scratch: SvdfScratch::new(), state: Vec::new() }))
    }
}
