//! STRIDED_SLICE (with TFLite's masks) and SLICE, with constant bounds.

use ferrolite_kernels::reference::slice as k;
use ferrolite_schema::BuiltinOperator as B;

use super::{element_size, elems, elems_mut, int_values, options, with_element_size};
use crate::error::OpError;
use crate::op::{EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::StridedSlice as i32, 1..=i32::MAX, StridedSlice);
    r.add_builtin(B::Slice as i32, 1..=i32::MAX, Slice);
}

fn to_i32(v: Vec<i64>, what: &str) -> Result<Vec<i32>, OpError> {
    v.into_iter()
        .map(|x| i32::try_from(x).map_err(|_| OpError::Value(format!("{what} value {x} out of range"))))
        .collect()
}

struct StridedSlice;

impl Operator for StridedSlice {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(4, 4)?;
        ctx.check_outputs(1, 1)?;
        let o = options!(ctx, StridedSliceOptions).cloned().unwrap_or_default();
        let input = ctx.input(0)?;
        let dtype = super::same_dtype(ctx, 0, 0)?;
        let in_shape = input.shape().to_vec();
        let begin = to_i32(int_values(&ctx.input(1)?, "begin")?, "begin")?;
        let end = to_i32(int_values(&ctx.input(2)?, "end")?, "end")?;
        let strides = to_i32(int_values(&ctx.input(3)?, "strides")?, "strides")?;
        if strides.contains(&0) {
            return Err(OpError::Value("a stride is 0".into()));
        }
        let spec = k::StridedSliceSpec {
            begin: &begin,
            end: &end,
            strides: &strides,
            begin_mask: o.begin_mask as u32,
            end_mask: o.end_mask as u32,
            ellipsis_mask: o.ellipsis_mask as u32,
            new_axis_mask: o.new_axis_mask as u32,
            shrink_axis_mask: o.shrink_axis_mask as u32,
            offset: o.offset,
        };
        let resolved = k::resolve_strided_slice(&in_shape, &spec).map_err(OpError::Value)?;
        ctx.set_output_shape(0, resolved.output_shape.clone())?;
        let size = element_size(dtype)?;
        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
            let x = ctx.input(0)?;
            with_element_size!(size, T, {
                k::strided_slice(elems::<T>(x.bytes)?, &in_shape, &resolved, elems_mut::<T>(ctx.output(0)?.bytes)?);
                Ok(())
            })
        }))
    }
}

struct Slice;

impl Operator for Slice {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(3, 3)?;
        ctx.check_outputs(1, 1)?;
        let input = ctx.input(0)?;
        let dtype = super::same_dtype(ctx, 0, 0)?;
        let in_shape = input.shape().to_vec();
        let begin = int_values(&ctx.input(1)?, "begin")?;
        let size = int_values(&ctx.input(2)?, "size")?;
        let (begin, size) = k::resolve_slice(&in_shape, &begin, &size).map_err(OpError::Value)?;
        ctx.set_output_shape(0, size.clone())?;
        let esize = element_size(dtype)?;
        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
            let x = ctx.input(0)?;
            with_element_size!(esize, T, {
                k::slice(elems::<T>(x.bytes)?, &in_shape, &begin, &size, elems_mut::<T>(ctx.output(0)?.bytes)?);
                Ok(())
            })
        }))
    }
}
