//! QUANTIZE: float to int8/uint8/int16 (`round(x / scale) + zero_point`,
//! clamped), or integer to integer with a new scale and zero point.

use ferrolite_kernels::quant::{quantize_f32_to_i16, quantize_f32_to_i8, quantize_f32_to_u8};
use ferrolite_kernels::reference::quantized::{requantize, RequantizeParams};
use ferrolite_schema::BuiltinOperator as B;

use super::quantized::{input_scale_zp, output_scale_zp, qrange};
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::Quantize as i32, 1..=i32::MAX, Quantize);
}

struct Quantize;

/// Requantise between two integer types (`reference_ops::Requantize`).
fn requantize_bytes(
    p: &RequantizeParams,
    in_t: DataType,
    x: &[u8],
    out_t: DataType,
    y: &mut [u8],
) -> Result<(), OpError> {
    use ferrolite_kernels::reference::quantized::QType;
    fn typed<I: QType + bytemuck::Pod, O: QType + bytemuck::Pod>(
        p: &RequantizeParams,
        x: &[u8],
        y: &mut [u8],
    ) -> Result<(), OpError> {
        requantize::<I, O>(p, super::elems::<I>(x)?, super::elems_mut::<O>(y)?);
        Ok(())
    }
    macro_rules! out {
        ($I:ty) => {
            match out_t {
                DataType::Int8 => typed::<$I, i8>(p, x, y),
                DataType::UInt8 => typed::<$I, u8>(p, x, y),
                _ => typed::<$I, i16>(p, x, y),
            }
        };
    }
    match in_t {
        DataType::Int8 => out!(i8),
        DataType::UInt8 => out!(u8),
        _ => out!(i16),
    }
}

impl Operator for Quantize {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(1, 1)?;
        ctx.check_outputs(1, 1)?;
        let input = ctx.input(0)?;
        let out_t = ctx.output_dtype(0)?;
        let (out_s, out_zp) = output_scale_zp(ctx.output(0)?)?;
        qrange(out_t)?; // the output must be a quantised integer type
        ctx.set_output_shape(0, input.shape().to_vec())?;
        match input.dtype() {
            DataType::Float32 => Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                let x = ctx.input(0)?.as_slice::<f32>()?;
                let out = ctx.output(0)?;
                match out_t {
                    DataType::Int8 => {
                        for (o, &v) in out.as_slice_mut::<i8>()?.iter_mut().zip(x) {
                            *o = quantize_f32_to_i8(v, out_s, out_zp);
                        }
                    }
                    DataType::UInt8 => {
                        for (o, &v) in out.bytes.iter_mut().zip(x) {
                            *o = quantize_f32_to_u8(v, out_s, out_zp);
                        }
                    }
                    _ => {
                        for (o, &v) in out.as_slice_mut::<i16>()?.iter_mut().zip(x) {
                            *o = quantize_f32_to_i16(v, out_s, out_zp);
                        }
                    }
                }
                Ok(())
            })),
            in_t @ (DataType::Int8 | DataType::UInt8 | DataType::Int16) => {
                let (in_s, in_zp) = input_scale_zp(&input, "the input")?;
                // TFLite: effective scale in double, then a fixed-point multiplier.
                let p = RequantizeParams::new(in_s, in_zp, out_s, out_zp)
                    .ok_or_else(|| OpError::Value("QUANTIZE scales must be positive and finite".into()))?;
                Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                    let x = ctx.input(0)?.bytes;
                    requantize_bytes(&p, in_t, x, out_t, ctx.output(0)?.bytes)
                }))
            }
            other => Err(OpError::Unsupported(format!("QUANTIZE from {other}"))),
        }
    }
}
