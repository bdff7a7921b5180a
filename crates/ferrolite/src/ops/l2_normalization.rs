//! L2_NORMALIZATION over the last axis (float32, int8, uint8).

use ferrolite_kernels::reference::l2norm::{l2_normalize_f32, l2_normalize_i8, l2_normalize_u8};
use ferrolite_schema::BuiltinOperator as B;

use super::quantized::{input_scale_zp, output_scale_zp};
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::L2Normalization as i32, 1..=i32::MAX, L2Normalization);
}

struct L2Normalization;

/// TFLite's kernel uses this epsilon; the options carry only an activation.
const EPSILON: f32 = 1e-6;

impl Operator for L2Normalization {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(1, 1)?;
        ctx.check_outputs(1, 1)?;
        let input = ctx.input(0)?;
        let shape = input.shape().to_vec();
        let depth = *shape.last().ok_or(OpError::Shape("needs at least one dimension".into()))?;
        let outer = input.info.num_elements().checked_div(depth).unwrap_or(0);
        ctx.set_output_shape(0, shape)?;
        match input.dtype() {
            DataType::Float32 => Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                let x = ctx.input(0)?.as_slice::<f32>()?;
                let y = ctx.output(0)?.as_slice_mut::<f32>()?;
                l2_normalize_f32(x, y, outer, depth, EPSILON);
                Ok(())
            })),
            dtype @ (DataType::Int8 | DataType::UInt8) => {
                // TFLite's Prepare fixes the output quantisation: values in
                // [-1, 1] at scale 1/128 (zero point 0, or 128 for uint8).
                let (_, zp) = input_scale_zp(&input, "the input")?;
                let (so, zo) = output_scale_zp(ctx.output(0)?)?;
                let want_zo = if dtype == DataType::UInt8 { 128 } else { 0 };
                if so as f64 != 1.0 / 128.0 || zo != want_zo {
                    return Err(OpError::Value(format!(
                        "quantised L2_NORMALIZATION needs output scale 1/128 and zero point {want_zo}, got {so} and {zo}"
                    )));
                }
                if ctx.output_dtype(0)? != dtype {
                    return Err(OpError::DType {
                        tensor: "output".into(),
                        expected: dtype.to_string(),
                        got: ctx.output_dtype(0)?.to_string(),
                    });
                }
                Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                    let x = ctx.input(0)?;
                    let y = ctx.output(0)?;
                    if dtype == DataType::Int8 {
                        l2_normalize_i8(x.as_slice::<i8>()?, y.as_slice_mut::<i8>()?, outer, depth, zp);
                    } else {
                        l2_normalize_u8(x.bytes, y.bytes, outer, depth, zp);
                    }
                    Ok(())
                }))
            }
            other => Err(OpError::Unsupported(format!("L2_NORMALIZATION on {other}"))),
        }
    }
}
