//! PRELU: `x >= 0 ? x : alpha * x`, alpha broadcast (usually per channel).
//! Quantised int8/uint8 (alpha of the same type) follows TFLite's reference
//! `Prelu` / `BroadcastPrelu4DSlow` with two fixed-point multipliers.
//!
//! Float PRELU whose alpha repeats along the output (alpha `[1, 1, C]`
//! against `[1, H, W, C]`: MediaPipe's face landmark model has 23 of them,
//! 42% of its time on the broadcasting reference) runs a vector kernel,
//! split between threads; other broadcasts take the reference.

use ferrolite_kernels::optimized::{elementwise as fast, isa};
use ferrolite_kernels::reference::activations::prelu_f32;
use ferrolite_kernels::reference::elementwise::broadcast_shape;
use ferrolite_schema::BuiltinOperator as B;

use ferrolite_kernels::reference::quantized::{prelu_quantized, PreluParams};

use super::quantized::{input_scale_zp, output_scale_zp};
use super::{repeat_period, FloatWeights};
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::Prelu as i32, 1..=i32::MAX, Prelu);
}

struct Prelu;

impl Operator for Prelu {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(2, 2)?;
        ctx.check_outputs(1, 1)?;
        let (x, alpha) = (ctx.input(0)?, ctx.input(1)?);
        let out_shape = broadcast_shape(x.shape(), alpha.shape()).ok_or_else(|| {
            OpError::Shape(format!("alpha {:?} does not broadcast to {:?}", alpha.shape(), x.shape()))
        })?;
        ctx.set_output_shape(0, out_shape.clone())?;
        let (in_shape, alpha_shape) = (x.shape().to_vec(), alpha.shape().to_vec());
        match x.dtype() {
            DataType::Float32 => {
                let alpha = FloatWeights::prepare(ctx, 1)?;
                let period =
                    if ctx.reference_kernels { None } else { repeat_period(&in_shape, &alpha_shape, &out_shape) };
                let level = isa::detect();
                Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                    let x = ctx.input(0)?.as_slice::<f32>()?;
                    let a = alpha.get(ctx)?;
                    let workers = ctx.workers;
                    let out = ctx.output(0)?.as_slice_mut::<f32>()?;
                    match period {
                        Some(p) if a.len() == p && x.len() == out.len() => {
                            let a = &a[..p];
                            // Chunks of whole alpha periods, so each starts at alpha[0].
                            super::for_each_large_chunk(workers, out, p, |first, chunk| {
                                fast::prelu_f32(level, &x[first * p..][..chunk.len()], a, chunk)
                            });
                        }
                        _ => prelu_f32(x, &in_shape, a, &alpha_shape, out, &out_shape),
                    }
                    Ok(())
                }))
            }
            t @ (DataType::Int8 | DataType::UInt8) => {
                if alpha.dtype() != t || ctx.output_dtype(0)? != t {
                    return Err(OpError::DType {
                        tensor: "alpha and output".into(),
                        expected: t.to_string(),
                        got: format!("{} and {}", alpha.dtype(), ctx.output_dtype(0)?),
                    });
                }
                let (si, zi) = input_scale_zp(&x, "the input")?;
                let (sa, za) = input_scale_zp(&alpha, "alpha")?;
                let (so, zo) = output_scale_zp(ctx.output(0)?)?;
                let p = PreluParams::new(si, zi, sa, za, so, zo)
                    .ok_or_else(|| OpError::Value("quantisation parameters TFLite rejects for PRELU".into()))?;
                Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                    let (x, a) = (ctx.input(0)?, ctx.input(1)?);
                    let out = ctx.output(0)?;
                    if t == DataType::Int8 {
                        let y = out.as_slice_mut::<i8>()?;
                        prelu_quantized(
                            &p,
                            x.as_slice::<i8>()?,
                            &in_shape,
                            a.as_slice::<i8>()?,
                            &alpha_shape,
                            y,
                            &out_shape,
                        );
                    } else {
                        prelu_quantized(&p, x.bytes, &in_shape, a.bytes, &alpha_shape, out.bytes, &out_shape);
                    }
                    Ok(())
                }))
            }
            other => Err(OpError::Unsupported(format!("PRELU on {other}"))),
        }
    }
}
