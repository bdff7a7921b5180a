//! ADD_N: element-wise sum of two or more tensors of one shape.

use ferrolite_kernels::reference::cumsum as k;
use ferrolite_schema::BuiltinOperator as B;

use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::AddN as i32, 1..=i32::MAX, AddN);
}

struct AddN;

impl Operator for AddN {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(2, usize::MAX)?;
        ctx.check_outputs(1, 1)?;
        let first = ctx.input(0)?;
        let dtype = super::same_dtype(ctx, 0, 0)?;
        let shape = first.shape().to_vec();
        let n = ctx.num_inputs();
        for i in 1..n {
            let x = ctx.input(i)?;
            if x.dtype() != dtype {
                return Err(OpError::DType {
                    tensor: format!("input {i}"),
                    expected: dtype.to_string(),
                    got: x.dtype().to_string(),
                });
            }
            if x.shape() != shape.as_slice() {
                return Err(OpError::Shape(format!("input {i} has shape {:?}, input 0 {shape:?}", x.shape())));
            }
        }
        ctx.set_output_shape(0, shape)?;
        macro_rules! typed {
            ($T:ty, $add:expr) => {
                Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                    let xs =
                        (0..n).map(|i| Ok(ctx.input(i)?.as_slice::<$T>()?)).collect::<Result<Vec<_>, OpError>>()?;
                    k::add_n(&xs, $add, ctx.output(0)?.as_slice_mut::<$T>()?);
                    Ok(())
                }))
            };
        }
        match dtype {
            DataType::Float32 => typed!(f32, |a: f32, b: f32| a + b),
            DataType::Int32 => typed!(i32, i32::wrapping_add),
            DataType::Int64 => typed!(i64, i64::wrapping_add),
            other => Err(OpError::Unsupported(format!("ADD_N on {other}"))),
        }
    }
}
