//! SOFTMAX and LOG_SOFTMAX over the last axis.

use ferrolite_kernels::reference::softmax::{log_softmax_f32, softmax_f32};
use ferrolite_schema::BuiltinOperator as B;

use super::options;
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
            return Err(OpError::Shape(
                "softmax needs at least one dimension".into(),
            ));
        }
        let depth = *shape.last().unwrap_or(&1);
        let outer = if depth == 0 {
            0
        } else {
            input.info.num_elements() / depth
        };
        let beta = if self.log {
            1.0
        } else {
            options!(ctx, SoftmaxOptions).map(|o| o.beta).unwrap_or(1.0)
        };
        ctx.set_output_shape(0, shape)?;
        let log = self.log;
        match input.dtype() {
            DataType::Float32 => Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                let x = ctx.input(0)?.as_slice::<f32>()?;
                let y = ctx.output(0)?.as_slice_mut::<f32>()?;
                if log {
                    log_softmax_f32(x, y, outer, depth);
                } else {
                    softmax_f32(x, y, outer, depth, beta);
                }
                Ok(())
            })),
            other => Err(OpError::Unsupported(format!("softmax on {other}"))),
        }
    }
}
