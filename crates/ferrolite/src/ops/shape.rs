//! SHAPE: the input's shape as a tensor, known at prepare.

use ferrolite_schema::BuiltinOperator as B;

use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{expect_dtype, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;
use crate::tensor::AlignedBytes;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::Shape as i32, 1..=i32::MAX, Shape);
}

struct Shape;

impl Operator for Shape {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(1, 1)?;
        ctx.check_outputs(1, 1)?;
        let dims = ctx.input(0)?.shape().to_vec();
        let out_type = ctx.output_dtype(0)?;
        expect_dtype("output", out_type, &[DataType::Int32, DataType::Int64])?;
        let bytes: Vec<u8> = match out_type {
            DataType::Int64 => dims.iter().flat_map(|&d| (d as i64).to_le_bytes()).collect(),
            _ => {
                let mut v = Vec::new();
                for &d in &dims {
                    let d =
                        i32::try_from(d).map_err(|_| OpError::Value(format!("dimension {d} does not fit int32")))?;
                    v.extend_from_slice(&d.to_le_bytes());
                }
                v
            }
        };
        ctx.set_output_shape(0, vec![dims.len()])?;
        ctx.set_output_constant(0, AlignedBytes::from_slice(&bytes))?;
        Ok(Box::new(|_: &mut crate::op::EvalContext<'_>| Ok(())))
    }
}
