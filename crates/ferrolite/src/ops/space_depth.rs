//! DEPTH_TO_SPACE and SPACE_TO_DEPTH (NHWC, TFLite's DCR order).

use ferrolite_kernels::reference::space::{depth_to_space, space_to_depth};
use ferrolite_schema::BuiltinOperator as B;

use super::{element_size, elems, elems_mut, options, positive, shape4, with_element_size};
use crate::error::OpError;
use crate::op::{EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::DepthToSpace as i32, 1..=i32::MAX, SpaceDepth { to_space: true });
    r.add_builtin(B::SpaceToDepth as i32, 1..=i32::MAX, SpaceDepth { to_space: false });
}

struct SpaceDepth {
    to_space: bool,
}

impl Operator for SpaceDepth {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(1, 1)?;
        ctx.check_outputs(1, 1)?;
        let input = ctx.input(0)?;
        let dtype = super::same_dtype(ctx, 0, 0)?;
        let in_shape = shape4(input.shape(), "input")?;
        let block = if self.to_space {
            options!(ctx, DepthToSpaceOptions).map(|o| o.block_size).unwrap_or(0)
        } else {
            options!(ctx, SpaceToDepthOptions).map(|o| o.block_size).unwrap_or(0)
        };
        let b = positive(block, "block_size")?;
        let [n, h, w, c] = in_shape;
        let out_shape = if self.to_space {
            if c % (b * b) != 0 {
                return Err(OpError::Shape(format!("{c} channels not divisible by block² = {}", b * b)));
            }
            [n, h * b, w * b, c / (b * b)]
        } else {
            if h % b != 0 || w % b != 0 {
                return Err(OpError::Shape(format!("{h}x{w} not divisible by block {b}")));
            }
            [n, h / b, w / b, c * b * b]
        };
        ctx.set_output_shape(0, out_shape.to_vec())?;
        let size = element_size(dtype)?;
        let to_space = self.to_space;
        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
            let x = ctx.input(0)?;
            with_element_size!(size, T, {
                let (x, y) = (elems::<T>(x.bytes)?, elems_mut::<T>(ctx.output(0)?.bytes)?);
                if to_space {
                    depth_to_space(x, in_shape, b, y)
                } else {
                    space_to_depth(x, in_shape, b, y)
                }
                Ok(())
            })
        }))
    }
}
