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

/// Little-endian float16 values to f32. Float16 weights (a converter's
/// "f16" models) are dequantised once, at allocate: millions of values, so
/// the conversion runs 8 at a time (F16C where the CPU has it). The model's
/// bytes need not be 2-byte aligned, so they go through a small buffer.
fn f16_bytes_to_f32(bytes: &[u8], out: &mut [f32]) {
    use half::slice::HalfFloatSliceExt;
    let mut buf = [half::f16::ZERO; 1024];
    for (o, c) in out.chunks_mut(buf.len()).zip(bytes.chunks(2 * buf.len())) {
        let n = o.len().min(c.len() / 2);
        let h = &mut buf[..n];
        for (v, b) in h.iter_mut().zip(c.chunks_exact(2)) {
            *v = half::f16::from_le_bytes([b[0], b[1]]);
        }
        h.convert_to_f32_slice(&mut o[..n]);
    }
}

fn dequantize(ctx: &mut EvalContext<'_>, quant: Option<&QuantParams>, shape: &[usize]) -> Result<(), OpError> {
    let input = ctx.input(0)?;
    let out = ctx.output(0)?.as_slice_mut::<f32>()?;
    match input.dtype() {
        DataType::Float32 => out.copy_from_slice(input.as_slice::<f32>()?),
        DataType::Float16 => f16_bytes_to_f32(input.bytes, out),
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

#[cfg(test)]
mod tests {
    use super::f16_bytes_to_f32;

    #[test]
    fn every_f16_value_converts_like_the_scalar_conversion() {
        // All 65536 bit patterns, starting one byte into the buffer (the
        // model's bytes need not be aligned).
        let mut bytes = vec![0u8];
        bytes.extend((0..=u16::MAX).flat_map(|v| v.to_le_bytes()));
        let mut out = vec![0.0f32; 1 << 16];
        f16_bytes_to_f32(&bytes[1..], &mut out);
        for (v, got) in (0..=u16::MAX).zip(&out) {
            let want = half::f16::from_bits(v).to_f32();
            assert!(got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()), "{v:#06x}: {got} vs {want}");
        }
    }
}
