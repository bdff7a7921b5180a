//! SPLIT (equal parts) and SPLIT_V (given sizes, one may be -1).

use ferrolite_kernels::reference::concat::split;
use ferrolite_schema::BuiltinOperator as B;

use super::{element_size, elems, elems_mut, int_values, normalize_axis, with_element_size};
use crate::error::OpError;
use crate::op::{EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::Split as i32, 1..=i32::MAX, Split { sized: false });
    r.add_builtin(B::SplitV as i32, 1..=i32::MAX, Split { sized: true });
}

struct Split {
    sized: bool,
}

impl Operator for Split {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        // SPLIT: (axis, input); SPLIT_V: (input, size_splits, axis).
        let (data_i, axis_i) = if self.sized { (0, 2) } else { (1, 0) };
        ctx.check_inputs(if self.sized { 3 } else { 2 }, if self.sized { 3 } else { 2 })?;
        ctx.check_outputs(1, usize::MAX)?;
        let input = ctx.input(data_i)?;
        let in_shape = input.shape().to_vec();
        let axis_v =
            *int_values(&ctx.input(axis_i)?, "the axis input")?.first().ok_or(OpError::Value("empty axis".into()))?;
        let axis = normalize_axis(axis_v, in_shape.len())?;
        let n = ctx.num_outputs();
        let dim = in_shape[axis];
        let sizes: Vec<usize> = if self.sized {
            let raw = int_values(&ctx.input(1)?, "size_splits")?;
            if raw.len() != n {
                return Err(OpError::Shape(format!("{} split sizes for {n} outputs", raw.len())));
            }
            let known: i64 = raw.iter().filter(|&&v| v >= 0).sum();
            let unknown = raw.iter().filter(|&&v| v < 0).count();
            if unknown > 1 || raw.iter().any(|&v| v < -1) {
                return Err(OpError::Value(format!("invalid split sizes {raw:?}")));
            }
            let fill = dim as i64 - known;
            let sizes: Vec<usize> =
                raw.iter().map(|&v| if v < 0 { fill.max(0) as usize } else { v as usize }).collect();
            if sizes.iter().sum::<usize>() != dim || (unknown == 1 && fill < 0) {
                return Err(OpError::Shape(format!("split sizes {raw:?} do not add up to {dim}")));
            }
            sizes
        } else {
            if n == 0 || dim % n != 0 {
                return Err(OpError::Shape(format!(
                    "dimension {axis} of size {dim} does not split into {n} equal parts"
                )));
            }
            vec![dim / n; n]
        };
        for (i, &s) in sizes.iter().enumerate() {
            super::same_dtype(ctx, data_i, i)?;
            let mut shape = in_shape.clone();
            shape[axis] = s;
            ctx.set_output_shape(i, shape)?;
        }
        let size = element_size(input.dtype())?;
        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
            let x = ctx.input(data_i)?;
            with_element_size!(size, T, {
                let x = elems::<T>(x.bytes)?;
                let mut outs: Vec<&mut [T]> = Vec::with_capacity(n);
                for o in ctx.outputs_mut().iter_mut() {
                    outs.push(elems_mut::<T>(o.bytes)?);
                }
                split(x, &in_shape, axis, &mut outs);
                Ok(())
            })
        }))
    }
}
