//! QUANTIZE: float to int8/uint8/int16 (`round(x / scale) + zero_point`,
//! clamped), or integer to integer with a new scale and zero point.

use ferrolite_kernels::quant::{
    multiply_by_quantized_multiplier, quantize_f32_to_i16, quantize_f32_to_i8, quantize_f32_to_u8, quantize_multiplier,
};
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

fn read_int(t: DataType, bytes: &[u8], i: usize) -> i32 {
    match t {
        DataType::Int8 => bytes[i] as i8 as i32,
        DataType::UInt8 => bytes[i] as i32,
        _ => i16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]]) as i32,
    }
}

fn write_int(t: DataType, bytes: &mut [u8], i: usize, v: i32) {
    match t {
        DataType::Int8 | DataType::UInt8 => bytes[i] = v as u8,
        _ => bytes[2 * i..2 * i + 2].copy_from_slice(&(v as i16).to_le_bytes()),
    }
}

impl Operator for Quantize {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(1, 1)?;
        ctx.check_outputs(1, 1)?;
        let input = ctx.input(0)?;
        let out_t = ctx.output_dtype(0)?;
        let (out_s, out_zp) = output_scale_zp(ctx.output(0)?)?;
        let (qmin, qmax) = qrange(out_t)?;
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
                let (mult, shift) = quantize_multiplier(in_s as f64 / out_s as f64);
                let n = input.info.num_elements();
                Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                    let x = ctx.input(0)?.bytes;
                    let out = ctx.output(0)?;
                    for i in 0..n {
                        let v = read_int(in_t, x, i) - in_zp;
                        let q = multiply_by_quantized_multiplier(v, mult, shift) + out_zp;
                        write_int(out_t, out.bytes, i, q.clamp(qmin, qmax));
                    }
                    Ok(())
                }))
            }
            other => Err(OpError::Unsupported(format!("QUANTIZE from {other}"))),
        }
    }
}
