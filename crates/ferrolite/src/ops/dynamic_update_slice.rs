//! DYNAMIC_UPDATE_SLICE: the operand with a block overwritten by the
//! update, at start indices computed at run time and clamped so that the
//! block fits.

use ferrolite_kernels::reference::dynamic_update_slice as k;
use ferrolite_schema::BuiltinOperator as B;

use super::{bytes_to_i64, element_size, elems, elems_mut, with_element_size};
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{expect_dtype, EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::DynamicUpdateSlice as i32, 1..=i32::MAX, DynamicUpdateSlice);
}

struct DynamicUpdateSlice;

impl Operator for DynamicUpdateSlice {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(3, 3)?;
        ctx.check_outputs(1, 1)?;
        let (operand, update, start) = (ctx.input(0)?, ctx.input(1)?, ctx.input(2)?);
        let dtype = operand.dtype();
        expect_dtype("DYNAMIC_UPDATE_SLICE update", update.dtype(), &[dtype])?;
        expect_dtype("DYNAMIC_UPDATE_SLICE output", ctx.output_dtype(0)?, &[dtype])?;
        let index_type = start.dtype();
        expect_dtype("DYNAMIC_UPDATE_SLICE start indices", index_type, &[DataType::Int32, DataType::Int64])?;
        let (shape, u_shape) = (operand.shape().to_vec(), update.shape().to_vec());
        if u_shape.len() != shape.len() || u_shape.iter().zip(&shape).any(|(u, o)| u > o) {
            return Err(OpError::Shape(format!(
                "DYNAMIC_UPDATE_SLICE: update {u_shape:?} does not fit in operand {shape:?} (same rank, no larger dimension)"
            )));
        }
        if start.shape() != [shape.len()] {
            return Err(OpError::Shape(format!(
                "DYNAMIC_UPDATE_SLICE start indices must be 1-D with one value per operand dimension ({}), got {:?}",
                shape.len(),
                start.shape()
            )));
        }
        ctx.set_output_shape(0, shape.clone())?;
        let size = element_size(dtype)?;
        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
            let starts = bytes_to_i64(ctx.input(2)?.bytes, index_type, "DYNAMIC_UPDATE_SLICE start indices")?;
            let starts = k::clamp_start(&starts, &shape, &u_shape);
            let (x, u) = (ctx.input(0)?.bytes, ctx.input(1)?.bytes);
            with_element_size!(size, T, {
                let out = elems_mut::<T>(ctx.output(0)?.bytes)?;
                k::dynamic_update_slice(elems::<T>(x)?, &shape, elems::<T>(u)?, &u_shape, &starts, out);
                Ok(())
            })
        }))
    }
}
