//! UNIQUE: the distinct values of a vector and each element's position
//! among them. How many values come out depends on the input's values, so
//! the op runs only where those are known at prepare: a constant input, or
//! any input inside a WHILE/IF subgraph that runs eagerly (where every
//! input is known when the node is prepared). Elsewhere it is refused as a
//! dynamic shape.

use ferrolite_kernels::reference::unique as k;
use ferrolite_schema::{BuiltinOperator as B, TensorType};

use super::{elems, options};
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{expect_dtype, EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;
use crate::tensor::AlignedBytes;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::Unique as i32, 1..=i32::MAX, Unique);
}

struct Unique;

/// Distinct values (as bytes) and per-element positions of `bytes` viewed
/// as `T`, with integer values compared as they are.
fn unique_ints<T: bytemuck::Pod + Into<i64>>(bytes: &[u8]) -> Result<(Vec<u8>, Vec<usize>), OpError> {
    let (values, index) = k::unique(elems::<T>(bytes)?, |v: T| Some(v.into()));
    Ok((bytemuck::cast_slice(&values).to_vec(), index))
}

impl Operator for Unique {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(1, 1)?;
        ctx.check_outputs(2, 2)?;
        let input = ctx.input(0)?;
        let dtype = input.dtype();
        expect_dtype(
            "UNIQUE input",
            dtype,
            &[DataType::Float32, DataType::Int8, DataType::UInt8, DataType::Int16, DataType::Int32, DataType::Int64],
        )?;
        expect_dtype("UNIQUE output", ctx.output_dtype(0)?, &[dtype])?;
        let index_type = match options!(ctx, UniqueOptions).map_or(TensorType::Int32, |o| o.idx_out_type) {
            TensorType::Int32 => DataType::Int32,
            TensorType::Int64 => DataType::Int64,
            other => {
                return Err(OpError::Options(format!("UNIQUE idx_out_type must be INT32 or INT64, got {other:?}")))
            }
        };
        expect_dtype("UNIQUE idx output", ctx.output_dtype(1)?, &[index_type])?;
        let shape = input.shape().to_vec();
        if shape.len() != 1 {
            return Err(OpError::Shape(format!("UNIQUE input must be 1-D, got {shape:?}")));
        }
        let bytes = input.constant.ok_or_else(|| {
            OpError::DynamicShape("UNIQUE of a computed input (its number of distinct values)".into())
        })?;
        let (values, index) = match dtype {
            DataType::Float32 => {
                let (values, index) = k::unique(elems::<f32>(bytes)?, k::f32_key);
                (bytemuck::cast_slice(&values).to_vec(), index)
            }
            DataType::Int8 => unique_ints::<i8>(bytes)?,
            DataType::UInt8 => unique_ints::<u8>(bytes)?,
            DataType::Int16 => unique_ints::<i16>(bytes)?,
            DataType::Int32 => unique_ints::<i32>(bytes)?,
            _ => unique_ints::<i64>(bytes)?,
        };
        let index: Vec<u8> = if index_type == DataType::Int32 {
            index.iter().flat_map(|&i| (i as i32).to_le_bytes()).collect()
        } else {
            index.iter().flat_map(|&i| (i as i64).to_le_bytes()).collect()
        };
        let count = values.len() / dtype.size().unwrap_or(1);
        ctx.set_output_shape(0, vec![count])?;
        ctx.set_output_shape(1, shape)?;
        ctx.set_output_constant(0, AlignedBytes::from_slice(&values))?;
        ctx.set_output_constant(1, AlignedBytes::from_slice(&index))?;
        Ok(Box::new(|_: &mut EvalContext<'_>| Ok(())))
    }
}
