//! CUMSUM along a constant axis (exclusive / reverse options).

use ferrolite_kernels::reference::cumsum as k;
use ferrolite_schema::BuiltinOperator as B;

use super::{int_values, normalize_axis, options};
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{expect_dtype, EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::Cumsum as i32, 1..=i32::MAX, Cumsum);
}

struct Cumsum;

impl Operator for Cumsum {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(2, 2)?;
        ctx.check_outputs(1, 1)?;
        let input = ctx.input(0)?;
        let dtype = super::same_dtype(ctx, 0, 0)?;
        let shape = input.shape().to_vec();
        let axis_in = ctx.input(1)?;
        expect_dtype("axis", axis_in.dtype(), &[DataType::Int32, DataType::Int64])?;
        let axes = int_values(&axis_in, "the axis")?;
        if axes.len() != 1 {
            return Err(OpError::Shape(format!("the axis must be one value, got {}", axes.len())));
        }
        if shape.is_empty() {
            return Err(OpError::Shape("CUMSUM of a scalar".into()));
        }
        let axis = normalize_axis(axes[0], shape.len())?;
        let o = options!(ctx, CumsumOptions);
        let (exclusive, reverse) = o.map(|o| (o.exclusive, o.reverse)).unwrap_or((false, false));
        ctx.set_output_shape(0, shape.clone())?;
        macro_rules! typed {
            ($T:ty, $zero:expr, $add:expr) => {
                Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                    let x = ctx.input(0)?.as_slice::<$T>()?;
                    let y = ctx.output(0)?.as_slice_mut::<$T>()?;
                    k::cumsum(x, &shape, axis, exclusive, reverse, $zero, $add, y);
                    Ok(())
                }))
            };
        }
        match dtype {
            DataType::Float32 => typed!(f32, 0.0, |a: f32, b: f32| a + b),
            DataType::Int32 => typed!(i32, 0, i32::wrapping_add),
            DataType::Int64 => typed!(i64, 0, i64::wrapping_add),
            other => Err(OpError::Unsupported(format!("CUMSUM on {other}"))),
        }
    }
}
