//! Shared plumbing for quantised ops: reading scales and zero points from
//! tensors, and the parameter sets TFLite's `Prepare` computes.

use std::sync::Mutex;

use ferrolite_kernels::optimized::hybrid::ObservedRange;
use ferrolite_kernels::quant::FusedActivation;
use ferrolite_kernels::reference::quantized::ConvQuantParams;
use ferrolite_schema::ActivationFunctionType;

use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{EvalContext, InputInfo, PrepareContext};
use crate::tensor::{QuantParams, TensorInfo};

/// The range of what a hybrid op's threads write to its output, observed
/// only when a later op reads it (`EvalContext::output_range_wanted`) and
/// merged over the threads for `EvalContext::set_output_range`.
pub(crate) struct OutputRange {
    wanted: bool,
    merged: Mutex<ObservedRange>,
}

impl OutputRange {
    pub(crate) fn new(ctx: &EvalContext<'_>) -> OutputRange {
        OutputRange { wanted: ctx.output_range_wanted(0), merged: Mutex::new(ObservedRange::default()) }
    }

    /// Run one thread's part with the range it should observe into (`None`
    /// when nobody reads it), then merge that.
    pub(crate) fn observe<R>(&self, part: impl FnOnce(Option<&mut ObservedRange>) -> R) -> R {
        let mut mine = ObservedRange::default();
        let result = part(self.wanted.then_some(&mut mine));
        self.merged.lock().unwrap_or_else(|e| e.into_inner()).merge(mine);
        result
    }

    /// Record the merged range on output 0, if the parts wrote all of it.
    pub(crate) fn record(self, ctx: &mut EvalContext<'_>, whole: bool) {
        let merged = self.merged.into_inner().unwrap_or_else(|e| e.into_inner());
        if let (true, Some(range)) = (whole, merged.get()) {
            ctx.set_output_range(0, range);
        }
    }
}

pub(crate) fn fused(act: ActivationFunctionType) -> Result<FusedActivation, OpError> {
    Ok(match act {
        ActivationFunctionType::None => FusedActivation::None,
        ActivationFunctionType::Relu => FusedActivation::Relu,
        ActivationFunctionType::Relu6 => FusedActivation::Relu6,
        ActivationFunctionType::ReluN1To1 => FusedActivation::ReluN1To1,
        other => return Err(OpError::Unsupported(format!("fused activation {other:?} on a quantised op"))),
    })
}

/// The integer range of a quantised type.
pub(crate) fn qrange(t: DataType) -> Result<(i32, i32), OpError> {
    Ok(match t {
        DataType::Int8 => (i8::MIN as i32, i8::MAX as i32),
        DataType::UInt8 => (0, 255),
        DataType::Int16 => (i16::MIN as i32, i16::MAX as i32),
        other => return Err(OpError::Unsupported(format!("quantised {other}"))),
    })
}

fn quant_of<'a>(q: Option<&'a QuantParams>, what: &str) -> Result<&'a QuantParams, OpError> {
    q.ok_or_else(|| OpError::Value(format!("{what} is not quantised (no scale / zero point)")))
}

/// Per-tensor scale and zero point of a tensor.
pub(crate) fn scale_zp(q: Option<&QuantParams>, what: &str) -> Result<(f32, i32), OpError> {
    let q = quant_of(q, what)?;
    if q.is_per_channel() {
        return Err(OpError::Unsupported(format!("per-channel quantisation of {what}")));
    }
    let zp = i32::try_from(q.zero_point()).map_err(|_| OpError::Value(format!("{what} zero point out of range")))?;
    Ok((q.scale(), zp))
}

pub(crate) fn input_scale_zp(i: &InputInfo<'_>, what: &str) -> Result<(f32, i32), OpError> {
    scale_zp(i.quant(), what)
}

pub(crate) fn output_scale_zp(o: &TensorInfo) -> Result<(f32, i32), OpError> {
    scale_zp(o.quant.as_ref(), "the output")
}

/// Which of TFLite's two multiplier recipes an op uses.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum WeightedOp {
    /// CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV: per-channel recipe for int8/int16.
    Conv,
    /// FULLY_CONNECTED: per-tensor recipe unless the filter has several scales.
    FullyConnected,
}

/// The requantisation parameters of a weighted op (input `x`, filter `w`).
pub(crate) fn weighted_params(
    ctx: &PrepareContext<'_>,
    x: usize,
    w: usize,
    act: ActivationFunctionType,
    op: WeightedOp,
) -> Result<ConvQuantParams, OpError> {
    let input = ctx.input(x)?;
    let filter = ctx.input(w)?;
    let out = ctx.output(0)?;
    let act = fused(act)?;
    let (in_s, in_zp) = input_scale_zp(&input, "the input")?;
    let (out_s, out_zp) = output_scale_zp(out)?;
    if input.dtype() != out.dtype {
        return Err(OpError::DType {
            tensor: "output".into(),
            expected: input.dtype().to_string(),
            got: out.dtype.to_string(),
        });
    }
    let fq = quant_of(filter.quant(), "the filter")?;
    let bad = || OpError::Value("invalid quantisation scales (zero, negative or not finite)".into());
    let (qmin, qmax) = qrange(input.dtype())?;
    let per_tensor = fq.scales.len() == 1;
    let params = match (input.dtype(), filter.dtype()) {
        (DataType::Int8, DataType::Int8) if op == WeightedOp::FullyConnected && per_tensor => {
            ConvQuantParams::per_tensor(
                in_s,
                in_zp,
                fq.scales[0],
                fq.zero_points[0] as i32,
                out_s,
                out_zp,
                act,
                qmin,
                qmax,
            )
        }
        (DataType::Int8, DataType::Int8) => {
            ConvQuantParams::per_channel(in_s, in_zp, &fq.scales, out_s, out_zp, act, qmin, qmax)
        }
        (DataType::Int16, DataType::Int8) if op == WeightedOp::FullyConnected && per_tensor => {
            if in_zp != 0 || out_zp != 0 {
                return Err(OpError::Value("int16 activations need zero points of 0".into()));
            }
            ConvQuantParams::per_tensor(in_s, 0, fq.scales[0], fq.zero_points[0] as i32, out_s, 0, act, qmin, qmax)
        }
        (DataType::Int16, DataType::Int8) => {
            ConvQuantParams::per_channel_16x8(in_s, in_zp, &fq.scales, out_s, out_zp, act)
        }
        (DataType::UInt8, DataType::UInt8) if per_tensor => ConvQuantParams::per_tensor(
            in_s,
            in_zp,
            fq.scales[0],
            fq.zero_points[0] as i32,
            out_s,
            out_zp,
            act,
            qmin,
            qmax,
        ),
        (i, f) => return Err(OpError::Unsupported(format!("{i} input with {f} weights"))),
    };
    params.ok_or_else(bad)
}

/// A bias input of a quantised op: int32, or int64 for 16x8 ops.
pub(crate) enum QuantBias {
    None,
    I32(usize),
    I64(usize),
}

impl QuantBias {
    /// The bias at eval as (int32, int64) slices; at most one is present.
    #[allow(clippy::type_complexity)]
    pub(crate) fn slices<'a>(
        &self,
        ctx: &crate::op::EvalContext<'a>,
    ) -> Result<(Option<&'a [i32]>, Option<&'a [i64]>), OpError> {
        Ok(match *self {
            QuantBias::None => (None, None),
            QuantBias::I32(i) => (Some(ctx.input(i)?.as_slice::<i32>()?), None),
            QuantBias::I64(i) => (None, Some(ctx.input(i)?.as_slice::<i64>()?)),
        })
    }

    pub(crate) fn prepare(ctx: &PrepareContext<'_>, i: usize) -> Result<QuantBias, OpError> {
        Ok(match ctx.optional_input(i) {
            None => QuantBias::None,
            Some(b) => match b.dtype() {
                DataType::Int32 => QuantBias::I32(i),
                DataType::Int64 => QuantBias::I64(i),
                other => {
                    return Err(OpError::DType {
                        tensor: "bias".into(),
                        expected: "int32 or int64".into(),
                        got: other.to_string(),
                    })
                }
            },
        })
    }
}

/// Int8 constant weights of a dynamic-range ("hybrid") op: float
/// activations, int8 weights with one scale or one per output channel.
pub(crate) struct HybridWeights {
    pub input: usize,
    pub scales: Vec<f32>,
}

impl HybridWeights {
    /// `Some` when input `w` is int8 with quantisation and the op's input is
    /// float: TFLite then runs its hybrid kernels.
    pub(crate) fn detect(ctx: &PrepareContext<'_>, x: usize, w: usize) -> Result<Option<HybridWeights>, OpError> {
        let (input, weights) = (ctx.input(x)?, ctx.input(w)?);
        if input.dtype() != DataType::Float32 || weights.dtype() != DataType::Int8 {
            return Ok(None);
        }
        let q = quant_of(weights.quant(), "the int8 weights")?;
        if q.zero_points.iter().any(|&z| z != 0) {
            return Err(OpError::Unsupported("hybrid weights with a non-zero zero point".into()));
        }
        Ok(Some(HybridWeights { input: w, scales: q.scales.clone() }))
    }
}
