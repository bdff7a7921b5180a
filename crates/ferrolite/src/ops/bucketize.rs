//! BUCKETIZE: each value replaced by the index of its bucket among sorted
//! boundaries from the options.

use ferrolite_kernels::reference::bucketize as k;
use ferrolite_schema::BuiltinOperator as B;

use super::options;
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{expect_dtype, EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::Bucketize as i32, 1..=i32::MAX, Bucketize);
}

struct Bucketize;

impl Operator for Bucketize {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(1, 1)?;
        ctx.check_outputs(1, 1)?;
        let input = ctx.input(0)?;
        let dtype = input.dtype();
        expect_dtype(
            "BUCKETIZE input",
            dtype,
            &[DataType::Float32, DataType::Float64, DataType::Int32, DataType::Int64],
        )?;
        expect_dtype("BUCKETIZE output", ctx.output_dtype(0)?, &[DataType::Int32])?;
        let boundaries: Vec<f32> =
            options!(ctx, BucketizeOptions).and_then(|o| o.boundaries.clone()).unwrap_or_default();
        if !k::boundaries_sorted(&boundaries) {
            return Err(OpError::Options(format!("BUCKETIZE boundaries must be sorted ascending, got {boundaries:?}")));
        }
        ctx.set_output_shape(0, input.shape().to_vec())?;
        // Values meet the float boundaries as in C++: integers converted to
        // float, doubles compared as doubles.
        macro_rules! typed {
            ($T:ty, $less:expr) => {
                Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                    let x = ctx.input(0)?.as_slice::<$T>()?;
                    k::bucketize(x, &boundaries, ctx.output(0)?.as_slice_mut::<i32>()?, $less);
                    Ok(())
                }))
            };
        }
        match dtype {
            DataType::Float32 => typed!(f32, |v: f32, b: f32| v < b),
            DataType::Float64 => typed!(f64, |v: f64, b: f32| v < f64::from(b)),
            DataType::Int32 => typed!(i32, |v: i32, b: f32| (v as f32) < b),
            _ => typed!(i64, |v: i64, b: f32| (v as f32) < b),
        }
    }
}
