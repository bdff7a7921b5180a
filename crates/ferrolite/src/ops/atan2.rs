//! ATAN2: element-wise `atan2(y, x)` of two same-shaped float tensors.

use ferrolite_schema::BuiltinOperator as B;

use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{expect_dtype, EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::Atan2 as i32, 1..=i32::MAX, Atan2);
}

struct Atan2;

impl Operator for Atan2 {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(2, 2)?;
        ctx.check_outputs(1, 1)?;
        let (y, x) = (ctx.input(0)?, ctx.input(1)?);
        let dtype = y.dtype();
        expect_dtype("ATAN2 input y", dtype, &[DataType::Float32, DataType::Float64])?;
        expect_dtype("ATAN2 input x", x.dtype(), &[dtype])?;
        expect_dtype("ATAN2 output", ctx.output_dtype(0)?, &[dtype])?;
        // TFLite does not broadcast here: the inputs are read element for
        // element.
        if y.shape() != x.shape() {
            return Err(OpError::Shape(format!("ATAN2 inputs differ in shape: {:?} and {:?}", y.shape(), x.shape())));
        }
        ctx.set_output_shape(0, y.shape().to_vec())?;
        macro_rules! typed {
            ($T:ty) => {
                Ok(Box::new(|ctx: &mut EvalContext<'_>| {
                    let y = ctx.input(0)?.as_slice::<$T>()?;
                    let x = ctx.input(1)?.as_slice::<$T>()?;
                    for ((o, &a), &b) in ctx.output(0)?.as_slice_mut::<$T>()?.iter_mut().zip(y).zip(x) {
                        *o = a.atan2(b);
                    }
                    Ok(())
                }))
            };
        }
        if dtype == DataType::Float32 {
            typed!(f32)
        } else {
            typed!(f64)
        }
    }
}
