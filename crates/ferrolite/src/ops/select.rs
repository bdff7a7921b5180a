//! SELECT, SELECT_V2 (pick from x or y by a bool condition) and WHERE
//! (coordinates of true elements; only for a constant condition, since the
//! output's size depends on the values).

use ferrolite_kernels::reference::select as k;
use ferrolite_schema::BuiltinOperator as B;

use super::{element_size, elems, elems_mut, with_element_size};
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{expect_dtype, EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;
use crate::tensor::AlignedBytes;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::Select as i32, 1..=i32::MAX, Select { v2: false });
    r.add_builtin(B::SelectV2 as i32, 1..=i32::MAX, Select { v2: true });
    r.add_builtin(B::Where as i32, 1..=i32::MAX, Where);
}

#[derive(Clone, Copy)]
enum Mode {
    Elementwise,
    RankOne,
    Broadcast,
}

struct Select {
    v2: bool,
}

impl Operator for Select {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(3, 3)?;
        ctx.check_outputs(1, 1)?;
        let (c, x, y) = (ctx.input(0)?, ctx.input(1)?, ctx.input(2)?);
        expect_dtype("condition", c.dtype(), &[DataType::Bool])?;
        if x.dtype() != y.dtype() {
            return Err(OpError::DType {
                tensor: "y".into(),
                expected: x.dtype().to_string(),
                got: y.dtype().to_string(),
            });
        }
        let dtype = super::same_dtype(ctx, 1, 0)?;
        let (cs, xs, ys) = (c.shape().to_vec(), x.shape().to_vec(), y.shape().to_vec());
        let (mode, out_shape) = if cs == xs && xs == ys {
            (Mode::Elementwise, xs.clone())
        } else if !self.v2 {
            if xs != ys {
                return Err(OpError::Shape(format!("SELECT needs x and y of one shape, got {xs:?} and {ys:?}")));
            }
            let low_rank = cs.is_empty() || (cs.len() == 1 && xs.first() == Some(&cs[0]));
            if !low_rank {
                return Err(OpError::Shape(format!(
                    "SELECT's condition {cs:?} must match x {xs:?}, be a scalar, or be a vector over its first dimension"
                )));
            }
            (Mode::RankOne, xs.clone())
        } else {
            let out = k::broadcast_shape3(&cs, &xs, &ys)
                .ok_or_else(|| OpError::Shape(format!("{cs:?}, {xs:?} and {ys:?} do not broadcast")))?;
            (Mode::Broadcast, out)
        };
        ctx.set_output_shape(0, out_shape.clone())?;
        let size = element_size(dtype)?;
        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
            let cond = ctx.input(0)?.as_slice::<u8>()?;
            let (x, y) = (ctx.input(1)?, ctx.input(2)?);
            with_element_size!(size, T, {
                let (x, y) = (elems::<T>(x.bytes)?, elems::<T>(y.bytes)?);
                let out = elems_mut::<T>(ctx.output(0)?.bytes)?;
                match mode {
                    Mode::Elementwise => k::select(cond, x, y, out),
                    Mode::RankOne => k::select_rank_one(cond, x, y, out),
                    Mode::Broadcast => k::select_broadcast(cond, &cs, x, &xs, y, &ys, out, &out_shape),
                }
                Ok(())
            })
        }))
    }
}

struct Where;

impl Operator for Where {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(1, 1)?;
        ctx.check_outputs(1, 1)?;
        let c = ctx.input(0)?;
        expect_dtype("output", ctx.output_dtype(0)?, &[DataType::Int64])?;
        let shape = c.shape().to_vec();
        let bytes = c.constant.ok_or_else(|| OpError::DynamicShape("WHERE on a computed condition".into()))?;
        let (count, coords) = match c.dtype() {
            DataType::Bool | DataType::UInt8 => k::where_true(bytes, &shape),
            DataType::Int8 => k::where_true(elems::<i8>(bytes)?, &shape),
            DataType::Int32 => k::where_true(elems::<i32>(bytes)?, &shape),
            DataType::Int64 => k::where_true(elems::<i64>(bytes)?, &shape),
            DataType::Float32 => k::where_true(elems::<f32>(bytes)?, &shape),
            other => return Err(OpError::Unsupported(format!("WHERE on {other}"))),
        };
        let out: Vec<u8> = coords.iter().flat_map(|v| v.to_le_bytes()).collect();
        ctx.set_output_shape(0, vec![count, shape.len()])?;
        ctx.set_output_constant(0, AlignedBytes::from_slice(&out))?;
        Ok(Box::new(|_: &mut EvalContext<'_>| Ok(())))
    }
}
