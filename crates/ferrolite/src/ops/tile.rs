//! TILE (by constant multiples) and BROADCAST_TO (a constant shape), for
//! any element type.

use ferrolite_kernels::reference::tile as k;
use ferrolite_schema::BuiltinOperator as B;

use super::{element_size, elems, elems_mut, int_values, to_dim, with_element_size};
use crate::error::OpError;
use crate::op::{EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;
use crate::tensor::checked_num_elements;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::Tile as i32, 1..=i32::MAX, Tile);
    r.add_builtin(B::BroadcastTo as i32, 1..=i32::MAX, BroadcastTo);
}

/// Fail unless the shape's element count fits in memory.
fn checked_shape(shape: Vec<usize>) -> Result<Vec<usize>, OpError> {
    checked_num_elements(&shape).ok_or_else(|| OpError::Value(format!("shape {shape:?} is too large")))?;
    Ok(shape)
}

struct Tile;

impl Operator for Tile {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(2, 2)?;
        ctx.check_outputs(1, 1)?;
        let input = ctx.input(0)?;
        let dtype = super::same_dtype(ctx, 0, 0)?;
        let in_shape = input.shape().to_vec();
        let multiples = int_values(&ctx.input(1)?, "the multiples")?
            .into_iter()
            .map(|m| to_dim(m, "multiple"))
            .collect::<Result<Vec<_>, _>>()?;
        if multiples.len() != in_shape.len() {
            return Err(OpError::Shape(format!("{} multiples for a rank-{} input", multiples.len(), in_shape.len())));
        }
        let mut out_shape = Vec::with_capacity(in_shape.len());
        for (&d, &m) in in_shape.iter().zip(&multiples) {
            out_shape.push(d.checked_mul(m).ok_or_else(|| OpError::Value("tiled shape overflows".into()))?);
        }
        ctx.set_output_shape(0, checked_shape(out_shape)?)?;
        let size = element_size(dtype)?;
        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
            let x = ctx.input(0)?;
            with_element_size!(size, T, {
                k::tile(elems::<T>(x.bytes)?, &in_shape, &multiples, elems_mut::<T>(ctx.output(0)?.bytes)?);
                Ok(())
            })
        }))
    }
}

struct BroadcastTo;

/// TFLite's limit on BROADCAST_TO's output rank.
const MAX_BROADCAST_RANK: usize = 8;

impl Operator for BroadcastTo {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(2, 2)?;
        ctx.check_outputs(1, 1)?;
        let input = ctx.input(0)?;
        let dtype = super::same_dtype(ctx, 0, 0)?;
        let in_shape = input.shape().to_vec();
        let out_shape = int_values(&ctx.input(1)?, "the shape")?
            .into_iter()
            .map(|d| to_dim(d, "dimension"))
            .collect::<Result<Vec<_>, _>>()?;
        if out_shape.len() > MAX_BROADCAST_RANK {
            return Err(OpError::Unsupported(format!("BROADCAST_TO to rank {} (at most 8)", out_shape.len())));
        }
        if !k::broadcasts_to(&in_shape, &out_shape) {
            return Err(OpError::Shape(format!("{in_shape:?} does not broadcast to {out_shape:?}")));
        }
        let out_shape = checked_shape(out_shape)?;
        ctx.set_output_shape(0, out_shape.clone())?;
        let size = element_size(dtype)?;
        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
            let x = ctx.input(0)?;
            with_element_size!(size, T, {
                k::broadcast_to(elems::<T>(x.bytes)?, &in_shape, &out_shape, elems_mut::<T>(ctx.output(0)?.bytes)?);
                Ok(())
            })
        }))
    }
}
