//! ONE_HOT with a constant depth: indices expanded along a new axis into
//! on/off values of any element type.

use ferrolite_kernels::reference::one_hot as k;
use ferrolite_schema::BuiltinOperator as B;

use super::{bytes_to_i64, elems, elems_mut, int_values, options, with_element_size};
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{expect_dtype, EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::OneHot as i32, 1..=i32::MAX, OneHot);
}

struct OneHot;

const VALUE_TYPES: [DataType; 7] = [
    DataType::Float32,
    DataType::Int16,
    DataType::Int32,
    DataType::Int64,
    DataType::Int8,
    DataType::UInt8,
    DataType::Bool,
];

impl Operator for OneHot {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(4, 4)?;
        ctx.check_outputs(1, 1)?;
        let indices = ctx.input(0)?;
        expect_dtype("ONE_HOT indices", indices.dtype(), &[DataType::Int32, DataType::Int64])?;
        let (depth_in, on, off) = (ctx.input(1)?, ctx.input(2)?, ctx.input(3)?);
        let dtype = on.dtype();
        expect_dtype("ONE_HOT on_value", dtype, &VALUE_TYPES)?;
        expect_dtype("ONE_HOT off_value", off.dtype(), &[dtype])?;
        expect_dtype("ONE_HOT output", ctx.output_dtype(0)?, &[dtype])?;
        expect_dtype("ONE_HOT depth", depth_in.dtype(), &[DataType::Int32])?;
        for (t, what) in [(&depth_in, "depth"), (&on, "on_value"), (&off, "off_value")] {
            let n = t.info.num_elements();
            if n != 1 {
                return Err(OpError::Shape(format!("ONE_HOT {what} must hold one value, got {n}")));
            }
        }
        let depth = int_values(&depth_in, "ONE_HOT depth")?[0];
        let depth = usize::try_from(depth)
            .map_err(|_| OpError::Value(format!("ONE_HOT depth is {depth}, must not be negative")))?;
        let in_shape = indices.shape().to_vec();
        let rank = in_shape.len();
        let axis = options!(ctx, OneHotOptions).map_or(0, |o| o.axis);
        let axis = match axis {
            -1 => rank,
            a if a >= 0 && a as usize <= rank => a as usize,
            a => return Err(OpError::Value(format!("ONE_HOT axis {a} is out of range for indices of rank {rank}"))),
        };
        let prefix: usize = in_shape[..axis].iter().product();
        let suffix: usize = in_shape[axis..].iter().product();
        let mut out_shape = in_shape.clone();
        out_shape.insert(axis, depth);
        ctx.set_output_shape(0, out_shape)?;
        let size = super::element_size(dtype)?;
        let index_type = indices.dtype();
        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
            let ids = bytes_to_i64(ctx.input(0)?.bytes, index_type, "ONE_HOT indices")?;
            let (on, off) = (ctx.input(2)?.bytes, ctx.input(3)?.bytes);
            with_element_size!(size, T, {
                let (on, off) = (elems::<T>(on)?[0], elems::<T>(off)?[0]);
                k::one_hot(&ids, prefix, depth, suffix, on, off, elems_mut::<T>(ctx.output(0)?.bytes)?);
                Ok(())
            })
        }))
    }
}
