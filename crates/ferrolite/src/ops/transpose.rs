//! TRANSPOSE by a constant permutation.

use ferrolite_kernels::optimized::isa;
use ferrolite_kernels::optimized::transpose::{transpose as transpose_tiled, transpose_x32, transpose_x8};
use ferrolite_kernels::reference::transpose::{transpose, transposed_shape};
use ferrolite_schema::BuiltinOperator as B;

use super::{element_size, elems, elems_mut, int_values, normalize_axis, with_element_size};
use crate::error::OpError;
use crate::op::{EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::Transpose as i32, 1..=i32::MAX, Transpose);
}

struct Transpose;

impl Operator for Transpose {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(2, 2)?;
        ctx.check_outputs(1, 1)?;
        let input = ctx.input(0)?;
        let dtype = super::same_dtype(ctx, 0, 0)?;
        let in_shape = input.shape().to_vec();
        let rank = in_shape.len();
        let mut perm = Vec::with_capacity(rank);
        for p in int_values(&ctx.input(1)?, "the permutation")? {
            let p = normalize_axis(p, rank)?;
            if perm.contains(&p) {
                return Err(OpError::Value(format!("axis {p} appears twice in the permutation")));
            }
            perm.push(p);
        }
        if perm.len() != rank {
            return Err(OpError::Shape(format!("permutation of length {} for rank {rank}", perm.len())));
        }
        ctx.set_output_shape(0, transposed_shape(&in_shape, &perm))?;
        let size = element_size(dtype)?;
        let reference = ctx.reference_kernels;
        let level = isa::detect();
        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
            let x = ctx.input(0)?;
            if size == 4 && !reference {
                let y = elems_mut::<u32>(ctx.output(0)?.bytes)?;
                transpose_x32(level, elems::<u32>(x.bytes)?, &in_shape, &perm, y);
                return Ok(());
            }
            if size == 1 && !reference {
                transpose_x8(level, x.bytes, &in_shape, &perm, ctx.output(0)?.bytes);
                return Ok(());
            }
            with_element_size!(size, T, {
                let (x, y) = (elems::<T>(x.bytes)?, elems_mut::<T>(ctx.output(0)?.bytes)?);
                if reference {
                    transpose(x, &in_shape, &perm, y);
                } else {
                    transpose_tiled(x, &in_shape, &perm, y);
                }
                Ok(())
            })
        }))
    }
}
