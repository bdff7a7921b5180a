//! SOFTMAX and LOG_SOFTMAX over the last axis.

use ferrolite_kernels::optimized::{elementwise as fast, isa};
use ferrolite_kernels::reference::softmax::{log_softmax_f32, softmax_f32};
use ferrolite_schema::BuiltinOperator as B;

use ferrolite_kernels::quant::{
    softmax_params, softmax_row_i16, softmax_row_i8_table, softmax_row_u8_table, SoftmaxExpTable, SoftmaxI16Params,
};

use super::options;
use super::quantized::{input_scale_zp, output_scale_zp};
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::Softmax as i32, 1..=i32::MAX, Softmax { log: false });
    r.add_builtin(B::LogSoftmax as i32, 1..=i32::MAX, Softmax { log: true });
}

struct Softmax {
    log: bool,
}

impl Operator for Softmax {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(1, 1)?;
        ctx.check_outputs(1, 1)?;
        let input = ctx.input(0)?;
        let shape = input.shape().to_vec();
        if shape.is_empty() {
            return Err(OpError::Shape("softmax needs at least one dimension".into()));
        }
        let depth = *shape.last().unwrap_or(&1);
        let outer = input.info.num_elements().checked_div(depth).unwrap_or(0);
        let beta = if self.log { 1.0 } else { options!(ctx, SoftmaxOptions).map(|o| o.beta).unwrap_or(1.0) };
        ctx.set_output_shape(0, shape)?;
        let log = self.log;
        match input.dtype() {
            DataType::Float32 => {
                let level = if ctx.reference_kernels { None } else { Some(isa::detect()) };
                Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                    let x = ctx.input(0)?.as_slice::<f32>()?;
                    let workers = ctx.workers;
                    let y = ctx.output(0)?.as_slice_mut::<f32>()?;
                    match level {
                        _ if log => log_softmax_f32(x, y, outer, depth),
                        // The vector kernel (exp and sums in eight lanes), whole
                        // rows per thread when there are many values.
                        Some(level) if depth > 0 && x.len() == outer * depth && y.len() == x.len() => {
                            let run = |first: usize, rows: &mut [f32]| {
                                fast::softmax_f32(level, &x[first * depth..][..rows.len()], rows, depth, beta)
                            };
                            super::for_each_large_chunk(workers, y, depth, run);
                        }
                        _ => softmax_f32(x, y, outer, depth, beta),
                    }
                    Ok(())
                }))
            }
            DataType::Int8 | DataType::UInt8 if !log => {
                let (in_s, _) = input_scale_zp(&input, "the input")?;
                let params = softmax_params(beta, in_s).ok_or(OpError::Value("softmax scaling out of range".into()))?;
                let (out_t, out_q) = (ctx.output_dtype(0)?, output_scale_zp(ctx.output(0)?)?);
                // TFLite's integer softmax writes probabilities with a fixed
                // scale of 1/256 (zero point -128 for int8, 0 for uint8).
                let expected_zp = if out_t == DataType::Int8 { -128 } else { 0 };
                if (out_q.0 - 1.0 / 256.0).abs() > 1e-3 / 256.0 || out_q.1 != expected_zp {
                    return Err(OpError::Unsupported(format!(
                        "quantised softmax output scale {} zero point {}",
                        out_q.0, out_q.1
                    )));
                }
                let dtype = input.dtype();
                if out_t != dtype {
                    return Err(OpError::DType {
                        tensor: "output".into(),
                        expected: dtype.to_string(),
                        got: out_t.to_string(),
                    });
                }
                let table = SoftmaxExpTable::new(&params);
                Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                    let x = ctx.input(0)?;
                    let y = ctx.output(0)?;
                    if depth == 0 {
                        return Ok(());
                    }
                    if dtype == DataType::Int8 {
                        let (x, y) = (x.as_slice::<i8>()?, y.as_slice_mut::<i8>()?);
                        for (xr, yr) in x.chunks_exact(depth).zip(y.chunks_exact_mut(depth)) {
                            softmax_row_i8_table(&params, &table, xr, yr);
                        }
                    } else {
                        for (xr, yr) in x.bytes.chunks_exact(depth).zip(y.bytes.chunks_exact_mut(depth)) {
                            softmax_row_u8_table(&params, &table, xr, yr);
                        }
                    }
                    Ok(())
                }))
            }
            // 16x8 mode: TFLite's table-based int16 softmax, zero points 0
            // and an output scale of 1/32768.
            DataType::Int16 if !log => {
                let (in_s, in_zp) = input_scale_zp(&input, "the input")?;
                let (out_s, out_zp) = output_scale_zp(ctx.output(0)?)?;
                let out_t = ctx.output_dtype(0)?;
                if out_t != DataType::Int16 {
                    return Err(OpError::DType {
                        tensor: "output".into(),
                        expected: "int16".into(),
                        got: out_t.to_string(),
                    });
                }
                if in_zp != 0 || out_zp != 0 {
                    return Err(OpError::Value(format!(
                        "int16 softmax needs zero points of 0, got {in_zp} and {out_zp}"
                    )));
                }
                if (out_s - 1.0 / 32768.0).abs() > 1e-3 / 32768.0 {
                    return Err(OpError::Value(format!("int16 softmax needs output scale 1/32768, got {out_s}")));
                }
                let params =
                    SoftmaxI16Params::new(in_s, beta).ok_or(OpError::Value("softmax scaling out of range".into()))?;
                Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                    if depth == 0 {
                        return Ok(());
                    }
                    let x = ctx.input(0)?.as_slice::<i16>()?;
                    let y = ctx.output(0)?.as_slice_mut::<i16>()?;
                    for (xr, yr) in x.chunks_exact(depth).zip(y.chunks_exact_mut(depth)) {
                        softmax_row_i16(&params, xr, yr);
                    }
                    Ok(())
                }))
            }
            other => Err(OpError::Unsupported(format!("softmax on {other}"))),
        }
    }
}
