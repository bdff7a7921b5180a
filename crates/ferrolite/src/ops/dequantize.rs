//! DEQUANTIZE: float16 or integer tensors to float32.
//!
//! Usually its input is a constant weight (fp16 models store weights as
//! float16 behind a DEQUANTIZE); the interpreter then folds it at prepare,
//! so the conversion happens once, not per invoke.

use ferrolite_schema::BuiltinOperator as B;

use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{expect_dtype, EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;
use crate::tensor::QuantParams;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::Dequantize as i32, 1..=i32::MAX, Dequantize);
}

struct Dequantize;

impl Operator for Dequantize {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(1, 1)?;
        ctx.check_outputs(1, 1)?;
        let input = ctx.input(0)?;
        expect_dtype("output", ctx.output_dtype(0)?, &[DataType::Float32])?;
        expect_dtype(
            "input",
            input.dtype(),
            &[DataType::Float16, DataType::Int8, DataType::UInt8, DataType::Int16, DataType::Float32],
        )?;
        if input.dtype() != DataType::Float16 && input.dtype() != DataType::Float32 && input.quant().is_none() {
            return Err(OpError::Value("integer input has no quantisation parameters".into()));
        }
        let quant = input.quant().cloned();
        let shape = input.shape().to_vec();
        ctx.set_output_shape(0, shape.clone())?;
        Ok(Box::new(move |ctx: &mut EvalContext<'_>| dequantize(ctx, quant.as_ref(), &shape)))
    }
}

fn dequantize(ctx: &mut EvalContext<'_>, quant: Option<&QuantParams>, shape: &[usize]) -> Result<(), OpError> {
    let input = ctx.input(0)?;
    let out = ctx.output(0)?.as_slice_mut::<f32>()?;
    match input.dtype() {
        DataType::Float32 => out.copy_from_slice(input.as_slice::<f32>()?),
        DataType::Float16 => {
            for (o, c) in out.iter_mut().zip(input.bytes.chunks_exact(2)) {
                *o = half::f16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32();
            }
        }
        dt => {
            let q = quant.ok_or_else(|| OpError::Value("missing quantisation".into()))?;
            let values: Vec<i32> = match dt {
                DataType::Int8 => input.as_slice::<i8>()?.iter().map(|&v| v as i32).collect(),
                DataType::UInt8 => input.as_slice::<u8>()?.iter().map(|&v| v as i32).collect(),
                DataType::Int16 => input.as_slice::<i16>()?.iter().map(|&v| v as i32).collect(),
                other => return Err(OpError::Unsupported(format!("dequantize from {other}"))),
            };
            // Per-channel: the channel of element i is its index along the
            // quantised dimension.
            let qd = q.quantized_dimension;
            let inner: usize = shape.iter().skip(qd + 1).product();
            let channels = shape.get(qd).copied().unwrap_or(1);
            for (i, (o, v)) in out.iter_mut().zip(values).enumerate() {
                let c = if q.scales.len() > 1 { (i / inner.max(1)) % channels.max(1) } else { 0 };
                let scale = q.scales[c.min(q.scales.len() - 1)];
                let zp = q.zero_points[c.min(q.zero_points.len() - 1)];
                // TFLite's reference: scale * (value - zero_point) in float.
                *o = scale * ((v as i64 - zp) as f32);
            }
        }
    }
    Ok(())
}
