//! REVERSE_V2 along constant axes, for any element type.

use ferrolite_kernels::reference::reverse as k;
use ferrolite_schema::BuiltinOperator as B;

use super::{element_size, elems, elems_mut, int_values, normalize_axis, with_element_size};
use crate::error::OpError;
use crate::op::{EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::ReverseV2 as i32, 1..=i32::MAX, ReverseV2);
}

struct ReverseV2;

impl Operator for ReverseV2 {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(2, 2)?;
        ctx.check_outputs(1, 1)?;
        let input = ctx.input(0)?;
        let dtype = super::same_dtype(ctx, 0, 0)?;
        let shape = input.shape().to_vec();
        let axis_in = ctx.input(1)?;
        if axis_in.shape().len() != 1 {
            return Err(OpError::Shape(format!("the axis input must be 1-D, got {:?}", axis_in.shape())));
        }
        let mut axes = Vec::new();
        for a in int_values(&axis_in, "the axis input")? {
            let a = normalize_axis(a, shape.len())?;
            if axes.contains(&a) {
                return Err(OpError::Value(format!("axis {a} is listed twice")));
            }
            axes.push(a);
        }
        ctx.set_output_shape(0, shape.clone())?;
        let size = element_size(dtype)?;
        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
            let x = ctx.input(0)?;
            with_element_size!(size, T, {
                k::reverse(elems::<T>(x.bytes)?, &shape, &axes, elems_mut::<T>(ctx.output(0)?.bytes)?);
                Ok(())
            })
        }))
    }
}
