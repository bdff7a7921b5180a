//! L2_NORMALIZATION over the last axis.

use ferrolite_kernels::reference::l2norm::l2_normalize_f32;
use ferrolite_schema::BuiltinOperator as B;

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
            other => Err(OpError::Unsupported(format!("L2_NORMALIZATION on {other}"))),
        }
    }
}
