//! EMBEDDING_LOOKUP: rows of a table by int32 ids; an int8/uint8 table with
//! a float output is dequantised (TFLite's hybrid path).

use ferrolite_kernels::reference::embedding as k;
use ferrolite_schema::BuiltinOperator as B;

use super::{element_size, elems, elems_mut, with_element_size};
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{expect_dtype, EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::EmbeddingLookup as i32, 1..=i32::MAX, EmbeddingLookup);
}

struct EmbeddingLookup;

impl Operator for EmbeddingLookup {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(2, 2)?;
        ctx.check_outputs(1, 1)?;
        let ids = ctx.input(0)?;
        expect_dtype("ids", ids.dtype(), &[DataType::Int32])?;
        if ids.shape().len() != 1 {
            return Err(OpError::Shape(format!("ids must be 1-D, got {:?}", ids.shape())));
        }
        let table = ctx.input(1)?;
        let t_shape = table.shape().to_vec();
        if t_shape.len() < 2 {
            return Err(OpError::Shape(format!("the table must have rank 2 or more, got {t_shape:?}")));
        }
        let row_len: usize = t_shape[1..].iter().product();
        let mut out_shape = t_shape.clone();
        out_shape[0] = ids.shape()[0];
        ctx.set_output_shape(0, out_shape)?;
        let out_type = ctx.output_dtype(0)?;
        let t_type = table.dtype();
        if t_type == out_type {
            let size = element_size(t_type)?;
            return Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                let ids = ctx.input(0)?.as_slice::<i32>()?;
                let table = ctx.input(1)?;
                with_element_size!(size, T, {
                    let out = elems_mut::<T>(ctx.output(0)?.bytes)?;
                    k::embedding_lookup(ids, elems::<T>(table.bytes)?, row_len, out).map_err(OpError::Value)
                })
            }));
        }
        if !(matches!(t_type, DataType::Int8 | DataType::UInt8) && out_type == DataType::Float32) {
            return Err(OpError::DType {
                tensor: "output".into(),
                expected: format!("{t_type} (or float32 for an int8 table)"),
                got: out_type.to_string(),
            });
        }
        let q = table.quant().ok_or_else(|| OpError::Value("the int8 table has no quantisation".into()))?;
        let scales = q.scales.clone();
        if scales.len() > 1 && (q.quantized_dimension != 0 || scales.len() != t_shape[0]) {
            return Err(OpError::Unsupported("per-channel table scales other than one per row".into()));
        }
        // TFLite reads uint8 tables as int8 bytes and ignores the zero point.
        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
            let ids = ctx.input(0)?.as_slice::<i32>()?;
            let table = elems::<i8>(ctx.input(1)?.bytes)?;
            let out = ctx.output(0)?.as_slice_mut::<f32>()?;
            k::embedding_lookup_dequantize(ids, table, row_len, &scales, out).map_err(OpError::Value)
        }))
    }
}
