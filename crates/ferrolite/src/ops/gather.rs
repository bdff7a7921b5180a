//! GATHER (along an axis, with batch_dims) and GATHER_ND.

use ferrolite_kernels::reference::gather as k;
use ferrolite_schema::BuiltinOperator as B;

use super::{element_size, elems, elems_mut, normalize_axis, options, with_element_size};
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::Gather as i32, 1..=i32::MAX, Gather);
    r.add_builtin(B::GatherNd as i32, 1..=i32::MAX, GatherNd);
}

/// Indices as i64, whatever integer type the model uses.
fn indices(ctx: &EvalContext<'_>, i: usize) -> Result<Vec<i64>, OpError> {
    let t = ctx.input(i)?;
    super::bytes_to_i64(t.bytes, t.dtype(), "indices")
}

fn check_index_type(t: DataType) -> Result<(), OpError> {
    crate::op::expect_dtype("indices", t, &[DataType::Int32, DataType::Int64, DataType::Int16, DataType::Int8])
}

struct Gather;

impl Operator for Gather {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(2, 2)?;
        ctx.check_outputs(1, 1)?;
        let o = options!(ctx, GatherOptions).cloned().unwrap_or_default();
        let params = ctx.input(0)?;
        let idx = ctx.input(1)?;
        check_index_type(idx.dtype())?;
        let dtype = super::same_dtype(ctx, 0, 0)?;
        let p_shape = params.shape().to_vec();
        let i_shape = idx.shape().to_vec();
        let axis = normalize_axis(o.axis as i64, p_shape.len())?;
        let batch_dims =
            if o.batch_dims < 0 { o.batch_dims as i64 + i_shape.len() as i64 } else { o.batch_dims as i64 };
        if batch_dims < 0 || batch_dims as usize > axis || batch_dims as usize > i_shape.len() {
            return Err(OpError::Value(format!("batch_dims {} out of range", o.batch_dims)));
        }
        let batch_dims = batch_dims as usize;
        if p_shape[..batch_dims] != i_shape[..batch_dims] {
            return Err(OpError::Shape("params and indices differ in their batch dimensions".into()));
        }
        ctx.set_output_shape(0, k::gather_output_shape(&p_shape, axis, batch_dims, &i_shape))?;
        let size = element_size(dtype)?;
        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
            let p = ctx.input(0)?;
            let ids = indices(ctx, 1)?;
            with_element_size!(size, T, {
                let out = elems_mut::<T>(ctx.output(0)?.bytes)?;
                k::gather(elems::<T>(p.bytes)?, &p_shape, axis, batch_dims, &ids, &i_shape, out).map_err(OpError::Value)
            })
        }))
    }
}

struct GatherNd;

impl Operator for GatherNd {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(2, 2)?;
        ctx.check_outputs(1, 1)?;
        let params = ctx.input(0)?;
        let idx = ctx.input(1)?;
        check_index_type(idx.dtype())?;
        let dtype = super::same_dtype(ctx, 0, 0)?;
        let p_shape = params.shape().to_vec();
        let i_shape = idx.shape().to_vec();
        match i_shape.last() {
            Some(&d) if d <= p_shape.len() => {}
            _ => return Err(OpError::Shape(format!("indices {i_shape:?} do not index params {p_shape:?}"))),
        }
        ctx.set_output_shape(0, k::gather_nd_output_shape(&p_shape, &i_shape))?;
        let size = element_size(dtype)?;
        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
            let p = ctx.input(0)?;
            let ids = indices(ctx, 1)?;
            with_element_size!(size, T, {
                let out = elems_mut::<T>(ctx.output(0)?.bytes)?;
                k::gather_nd(elems::<T>(p.bytes)?, &p_shape, &ids, &i_shape, out).map_err(OpError::Value)
            })
        }))
    }
}
