//! SPARSE_TO_DENSE with a constant output shape: a tensor of the default
//! value with the values set at the given index tuples.

use ferrolite_kernels::reference::sparse_to_dense as k;
use ferrolite_schema::BuiltinOperator as B;

use super::{bytes_to_i64, element_size, elems, elems_mut, int_values, to_dim, with_element_size};
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{expect_dtype, EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::SparseToDense as i32, 1..=i32::MAX, SparseToDense);
}

struct SparseToDense;

impl Operator for SparseToDense {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(4, 4)?;
        ctx.check_outputs(1, 1)?;
        let (indices, shape_in, values, default) = (ctx.input(0)?, ctx.input(1)?, ctx.input(2)?, ctx.input(3)?);
        let index_type = indices.dtype();
        expect_dtype("SPARSE_TO_DENSE indices", index_type, &[DataType::Int32, DataType::Int64])?;
        expect_dtype("SPARSE_TO_DENSE output_shape", shape_in.dtype(), &[DataType::Int32, DataType::Int64])?;
        let dtype = values.dtype();
        expect_dtype(
            "SPARSE_TO_DENSE values",
            dtype,
            &[DataType::Float32, DataType::Int32, DataType::Int64, DataType::Int8, DataType::UInt8],
        )?;
        expect_dtype("SPARSE_TO_DENSE default_value", default.dtype(), &[dtype])?;
        expect_dtype("SPARSE_TO_DENSE output", ctx.output_dtype(0)?, &[dtype])?;
        if default.info.num_elements() != 1 {
            return Err(OpError::Shape(format!(
                "SPARSE_TO_DENSE default_value must hold one value, got {:?}",
                default.shape()
            )));
        }
        if shape_in.shape().len() != 1 {
            return Err(OpError::Shape(format!(
                "SPARSE_TO_DENSE output_shape must be 1-D, got {:?}",
                shape_in.shape()
            )));
        }
        let out_shape = int_values(&shape_in, "the SPARSE_TO_DENSE output_shape")?
            .into_iter()
            .map(|v| to_dim(v, "SPARSE_TO_DENSE output dimension"))
            .collect::<Result<Vec<_>, _>>()?;
        if out_shape.is_empty() {
            return Err(OpError::Shape("SPARSE_TO_DENSE output must have rank 1 or more".into()));
        }
        // 0-D and 1-D indices name elements of a vector; 2-D ones are
        // [tuples, rank].
        let i_shape = indices.shape();
        let (tuples, depth) = match *i_shape {
            [] => (1, 1),
            [n] => (n, 1),
            [n, d] => (n, d),
            _ => return Err(OpError::Shape(format!("SPARSE_TO_DENSE indices must have rank 0 to 2, got {i_shape:?}"))),
        };
        if depth != out_shape.len() {
            return Err(OpError::Shape(format!(
                "SPARSE_TO_DENSE indices {i_shape:?} do not fit an output of shape {out_shape:?}"
            )));
        }
        // A scalar value goes to every tuple (TensorFlow's rule; TFLite's
        // prepare wrongly asks for a single tuple then, its kernel does not).
        let v_count = values.info.num_elements();
        if values.shape().len() > 1 || (values.shape().len() == 1 && v_count != tuples) {
            return Err(OpError::Shape(format!(
                "SPARSE_TO_DENSE values must be a scalar or hold one value per index tuple ({tuples}), got {:?}",
                values.shape()
            )));
        }
        ctx.set_output_shape(0, out_shape.clone())?;
        let size = element_size(dtype)?;
        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
            let ids = bytes_to_i64(ctx.input(0)?.bytes, index_type, "SPARSE_TO_DENSE indices")?;
            let (values, default) = (ctx.input(2)?.bytes, ctx.input(3)?.bytes);
            with_element_size!(size, T, {
                let (values, default) = (elems::<T>(values)?, elems::<T>(default)?);
                let default =
                    *default.first().ok_or_else(|| OpError::Shape("SPARSE_TO_DENSE default_value is empty".into()))?;
                let out = elems_mut::<T>(ctx.output(0)?.bytes)?;
                k::sparse_to_dense(&ids, values, default, &out_shape, out).map_err(OpError::Value)
            })
        }))
    }
}
