//! REDUCE_ANY and REDUCE_ALL: logical OR / AND of bool tensors over
//! constant axes (the axes handling is REDUCE's).

use ferrolite_kernels::reference::reduce as k;
use ferrolite_schema::BuiltinOperator as B;

use super::options;
use super::reduce::reduction_axes;
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{expect_dtype, EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::ReduceAny as i32, 1..=i32::MAX, ReduceLogical { all: false });
    r.add_builtin(B::ReduceAll as i32, 1..=i32::MAX, ReduceLogical { all: true });
}

struct ReduceLogical {
    /// REDUCE_ALL (AND, true over nothing); else REDUCE_ANY (OR, false).
    all: bool,
}

impl Operator for ReduceLogical {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        let name = if self.all { "REDUCE_ALL" } else { "REDUCE_ANY" };
        ctx.check_inputs(2, 2)?;
        ctx.check_outputs(1, 1)?;
        let input = ctx.input(0)?;
        expect_dtype(&format!("{name} input"), input.dtype(), &[DataType::Bool])?;
        expect_dtype(&format!("{name} output"), ctx.output_dtype(0)?, &[DataType::Bool])?;
        expect_dtype(&format!("{name} axes"), ctx.input(1)?.dtype(), &[DataType::Int32, DataType::Int64])?;
        let in_shape = input.shape().to_vec();
        let axes = reduction_axes(ctx, in_shape.len())?;
        let keep_dims = options!(ctx, ReducerOptions).is_some_and(|o| o.keep_dims);
        ctx.set_output_shape(0, k::reduced_shape(&in_shape, &axes, keep_dims))?;
        let all = self.all;
        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
            let x = ctx.input(0)?.bytes;
            let y = &mut *ctx.output(0)?.bytes;
            if all {
                k::reduce(x, &in_shape, &axes, y, 1u8, |acc, v| acc & u8::from(v != 0));
            } else {
                k::reduce(x, &in_shape, &axes, y, 0u8, |acc, v| acc | u8::from(v != 0));
            }
            Ok(())
        }))
    }
}
