//! SPACE_TO_BATCH_ND and BATCH_TO_SPACE_ND with constant block shape and
//! paddings / crops, for any element type (quantised tensors pad with their
//! zero point).

use ferrolite_kernels::reference::space_batch as k;
use ferrolite_schema::BuiltinOperator as B;

use super::{element_size, elems, elems_mut, int_values, to_dim, with_element_size};
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::SpaceToBatchNd as i32, 1..=i32::MAX, SpaceBatch { to_batch: true });
    r.add_builtin(B::BatchToSpaceNd as i32, 1..=i32::MAX, SpaceBatch { to_batch: false });
}

struct SpaceBatch {
    to_batch: bool,
}

impl Operator for SpaceBatch {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(3, 3)?;
        ctx.check_outputs(1, 1)?;
        let input = ctx.input(0)?;
        let dtype = super::same_dtype(ctx, 0, 0)?;
        let in_shape = input.shape().to_vec();
        let block_in = ctx.input(1)?;
        if block_in.shape().len() != 1 {
            return Err(OpError::Shape(format!("the block shape must be 1-D, got {:?}", block_in.shape())));
        }
        let block = int_values(&block_in, "the block shape")?;
        let mut blocks = Vec::with_capacity(block.len());
        for b in block {
            if b < 1 {
                return Err(OpError::Value(format!("block size {b} must be at least 1")));
            }
            blocks.push(to_dim(b, "block size")?);
        }
        let what = if self.to_batch { "the paddings" } else { "the crops" };
        let raw = int_values(&ctx.input(2)?, what)?;
        if raw.len() != 2 * blocks.len() {
            return Err(OpError::Shape(format!(
                "{what} have {} values for {} block dimensions",
                raw.len(),
                blocks.len()
            )));
        }
        let pairs = raw
            .chunks_exact(2)
            .map(|p| Ok((to_dim(p[0], what)?, to_dim(p[1], what)?)))
            .collect::<Result<Vec<_>, OpError>>()?;
        let out_shape = if self.to_batch {
            k::space_to_batch_shape(&in_shape, &blocks, &pairs)
        } else {
            k::batch_to_space_shape(&in_shape, &blocks, &pairs)
        }
        .map_err(OpError::Shape)?;
        ctx.set_output_shape(0, out_shape.clone())?;
        let size = element_size(dtype)?;
        // The padding value's bytes: zero, or the output's zero point when
        // quantised (as TFLite).
        let pad: Vec<u8> = match (dtype, ctx.output(0)?.quant.as_ref()) {
            (DataType::Int8, Some(q)) => vec![q.zero_point() as i8 as u8],
            (DataType::UInt8, Some(q)) => vec![q.zero_point() as u8],
            (DataType::Int16, Some(q)) => (q.zero_point() as i16).to_le_bytes().to_vec(),
            _ => vec![0; size],
        };
        let to_batch = self.to_batch;
        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
            let x = ctx.input(0)?;
            with_element_size!(size, T, {
                let x = elems::<T>(x.bytes)?;
                let out = elems_mut::<T>(ctx.output(0)?.bytes)?;
                if to_batch {
                    let v: T = bytemuck::pod_read_unaligned(&pad);
                    k::space_to_batch_nd(x, &in_shape, &blocks, &pairs, v, out, &out_shape);
                } else {
                    k::batch_to_space_nd(x, &in_shape, &blocks, &pairs, out, &out_shape);
                }
                Ok(())
            })
        }))
    }
}
