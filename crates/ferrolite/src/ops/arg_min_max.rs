//! ARG_MAX and ARG_MIN along a constant axis, with int32 or int64 output.

use ferrolite_kernels::reference::arg_minmax as k;
use ferrolite_schema::{BuiltinOperator as B, TensorType};

use super::{int_values, normalize_axis, options};
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{expect_dtype, EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::ArgMax as i32, 1..=i32::MAX, ArgMinMax { max: true });
    r.add_builtin(B::ArgMin as i32, 1..=i32::MAX, ArgMinMax { max: false });
}

struct ArgMinMax {
    max: bool,
}

impl Operator for ArgMinMax {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(2, 2)?;
        ctx.check_outputs(1, 1)?;
        let max = self.max;
        let output_type = if max {
            options!(ctx, ArgMaxOptions).map(|o| o.output_type)
        } else {
            options!(ctx, ArgMinOptions).map(|o| o.output_type)
        };
        let out_dtype = ctx.output_dtype(0)?;
        expect_dtype("output", out_dtype, &[DataType::Int32, DataType::Int64])?;
        match output_type {
            // Absent, or the schema's default: go by the output tensor.
            None | Some(TensorType::Float32) => {}
            Some(TensorType::Int32) if out_dtype == DataType::Int32 => {}
            Some(TensorType::Int64) if out_dtype == DataType::Int64 => {}
            Some(t) => {
                return Err(OpError::Options(format!("output_type {t:?} does not match the {out_dtype} output tensor")))
            }
        }
        let input = ctx.input(0)?;
        let shape = input.shape().to_vec();
        let axis_in = ctx.input(1)?;
        expect_dtype("axis", axis_in.dtype(), &[DataType::Int32, DataType::Int64])?;
        let axes = int_values(&axis_in, "the axis")?;
        if axes.len() != 1 {
            return Err(OpError::Shape(format!("the axis must be one value, got {}", axes.len())));
        }
        if shape.is_empty() {
            return Err(OpError::Shape("ARG_MIN/ARG_MAX of a scalar".into()));
        }
        let axis = normalize_axis(axes[0], shape.len())?;
        if shape[axis] == 0 {
            return Err(OpError::Shape("ARG_MIN/ARG_MAX over an empty axis".into()));
        }
        ctx.set_output_shape(0, k::arg_output_shape(&shape, axis))?;
        macro_rules! typed {
            ($T:ty) => {{
                if out_dtype == DataType::Int32 {
                    Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                        let x = ctx.input(0)?.as_slice::<$T>()?;
                        k::arg_min_max(x, &shape, axis, max, ctx.output(0)?.as_slice_mut::<i32>()?);
                        Ok(())
                    }))
                } else {
                    Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                        let x = ctx.input(0)?.as_slice::<$T>()?;
                        k::arg_min_max(x, &shape, axis, max, ctx.output(0)?.as_slice_mut::<i64>()?);
                        Ok(())
                    }))
                }
            }};
        }
        // Quantised int8/uint8 compare by their raw values: the mapping to
        // reals is increasing.
        match input.dtype() {
            DataType::Float32 => typed!(f32),
            DataType::Int32 => typed!(i32),
            DataType::Int64 => typed!(i64),
            DataType::Int8 => typed!(i8),
            DataType::UInt8 | DataType::Bool => typed!(u8),
            other => Err(OpError::Unsupported(format!("ARG_MIN/ARG_MAX on {other}"))),
        }
    }
}
