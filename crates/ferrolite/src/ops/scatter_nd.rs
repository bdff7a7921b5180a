//! SCATTER_ND into a zeroed tensor of constant shape; updates at repeated
//! indices add up.

use ferrolite_kernels::reference::scatter_nd as k;
use ferrolite_schema::BuiltinOperator as B;

use super::{bytes_to_i64, int_values, to_dim};
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{expect_dtype, EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::ScatterNd as i32, 1..=i32::MAX, ScatterNd);
}

struct ScatterNd;

impl Operator for ScatterNd {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(3, 3)?;
        ctx.check_outputs(1, 1)?;
        let (indices, updates, shape_in) = (ctx.input(0)?, ctx.input(1)?, ctx.input(2)?);
        let index_type = indices.dtype();
        expect_dtype("SCATTER_ND indices", index_type, &[DataType::Int32, DataType::Int64])?;
        expect_dtype("SCATTER_ND shape", shape_in.dtype(), &[index_type])?;
        let dtype = updates.dtype();
        expect_dtype(
            "SCATTER_ND updates",
            dtype,
            &[DataType::Float32, DataType::UInt8, DataType::Int8, DataType::Int32, DataType::Int64],
        )?;
        expect_dtype("SCATTER_ND output", ctx.output_dtype(0)?, &[dtype])?;
        let (i_shape, u_shape) = (indices.shape().to_vec(), updates.shape().to_vec());
        if i_shape.is_empty() || u_shape.is_empty() || shape_in.shape().len() != 1 {
            return Err(OpError::Shape(format!(
                "SCATTER_ND needs indices and updates of rank 1 or more and a 1-D shape, got {i_shape:?}, {u_shape:?}, {:?}",
                shape_in.shape()
            )));
        }
        let out_shape = int_values(&shape_in, "the SCATTER_ND shape input")?
            .into_iter()
            .map(|v| to_dim(v, "SCATTER_ND output dimension"))
            .collect::<Result<Vec<_>, _>>()?;
        let outer = i_shape.len() - 1;
        let depth = i_shape[outer];
        let mismatch = || {
            OpError::Shape(format!(
                "SCATTER_ND: indices {i_shape:?} and updates {u_shape:?} do not fit an output of shape {out_shape:?}"
            ))
        };
        if depth > out_shape.len()
            || u_shape.len() < outer
            || i_shape[..outer] != u_shape[..outer]
            || u_shape[outer..] != out_shape[depth..]
        {
            return Err(mismatch());
        }
        let tuples: usize = i_shape[..outer].iter().product();
        ctx.set_output_shape(0, out_shape.clone())?;
        macro_rules! typed {
            ($T:ty, $add:expr) => {
                Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                    let ids = bytes_to_i64(ctx.input(0)?.bytes, index_type, "SCATTER_ND indices")?;
                    let u = ctx.input(1)?.as_slice::<$T>()?;
                    let out = ctx.output(0)?.as_slice_mut::<$T>()?;
                    k::scatter_nd(&ids, tuples, depth, u, &out_shape, out, $add).map_err(OpError::Value)
                }))
            };
        }
        match dtype {
            DataType::Float32 => typed!(f32, |a: f32, b: f32| a + b),
            DataType::UInt8 => typed!(u8, u8::wrapping_add),
            DataType::Int8 => typed!(i8, i8::wrapping_add),
            DataType::Int32 => typed!(i32, i32::wrapping_add),
            _ => typed!(i64, i64::wrapping_add),
        }
    }
}
