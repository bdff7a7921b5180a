//! BROADCAST_ARGS: the shape two 1-D shape tensors broadcast to.

use ferrolite_kernels::reference::broadcast_args as k;
use ferrolite_schema::BuiltinOperator as B;

use super::bytes_to_i64;
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{expect_dtype, EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::BroadcastArgs as i32, 1..=i32::MAX, BroadcastArgs);
}

struct BroadcastArgs;

impl Operator for BroadcastArgs {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(2, 2)?;
        ctx.check_outputs(1, 1)?;
        let (a, b) = (ctx.input(0)?, ctx.input(1)?);
        let dtype = a.dtype();
        expect_dtype("BROADCAST_ARGS input 0", dtype, &[DataType::Int32, DataType::Int64])?;
        expect_dtype("BROADCAST_ARGS input 1", b.dtype(), &[dtype])?;
        expect_dtype("BROADCAST_ARGS output", ctx.output_dtype(0)?, &[dtype])?;
        let (sa, sb) = (a.shape(), b.shape());
        if sa.len() != 1 || sb.len() != 1 {
            return Err(OpError::Shape(format!("BROADCAST_ARGS inputs must be 1-D, got {sa:?} and {sb:?}")));
        }
        ctx.set_output_shape(0, vec![sa[0].max(sb[0])])?;
        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
            let a = bytes_to_i64(ctx.input(0)?.bytes, dtype, "BROADCAST_ARGS input 0")?;
            let b = bytes_to_i64(ctx.input(1)?.bytes, dtype, "BROADCAST_ARGS input 1")?;
            let shape = k::broadcast_shape(&a, &b).map_err(OpError::Value)?;
            let out = ctx.output(0)?;
            if dtype == DataType::Int32 {
                let out = out.as_slice_mut::<i32>()?;
                for (o, &v) in out.iter_mut().zip(&shape) {
                    *o = i32::try_from(v)
                        .map_err(|_| OpError::Value(format!("BROADCAST_ARGS: dimension {v} does not fit int32")))?;
                }
            } else {
                out.as_slice_mut::<i64>()?.copy_from_slice(&shape);
            }
            Ok(())
        }))
    }
}
