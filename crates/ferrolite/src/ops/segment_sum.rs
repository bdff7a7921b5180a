//! SEGMENT_SUM with constant, sorted segment ids: rows of the data summed
//! per segment.

use ferrolite_kernels::reference::segment as k;
use ferrolite_schema::BuiltinOperator as B;

use super::int_values;
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{expect_dtype, EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::SegmentSum as i32, 1..=i32::MAX, SegmentSum);
}

struct SegmentSum;

impl Operator for SegmentSum {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(2, 2)?;
        ctx.check_outputs(1, 1)?;
        let (data, ids_in) = (ctx.input(0)?, ctx.input(1)?);
        let dtype = data.dtype();
        expect_dtype("SEGMENT_SUM data", dtype, &[DataType::Float32, DataType::Int32])?;
        expect_dtype("SEGMENT_SUM output", ctx.output_dtype(0)?, &[dtype])?;
        expect_dtype("SEGMENT_SUM segment ids", ids_in.dtype(), &[DataType::Int32])?;
        let d_shape = data.shape().to_vec();
        if d_shape.is_empty() || ids_in.shape() != [d_shape[0]] {
            return Err(OpError::Shape(format!(
                "SEGMENT_SUM needs one segment id per data row: data {d_shape:?}, ids {:?}",
                ids_in.shape()
            )));
        }
        // The output's row count is the last id + 1: the ids must be known.
        let ids: Vec<i32> = int_values(&ids_in, "the SEGMENT_SUM segment ids")?.into_iter().map(|v| v as i32).collect();
        let rows = k::segment_sum_rows(&ids).map_err(OpError::Value)?;
        let inner: usize = d_shape[1..].iter().product();
        let mut out_shape = d_shape;
        out_shape[0] = rows;
        ctx.set_output_shape(0, out_shape)?;
        macro_rules! typed {
            ($T:ty, $zero:expr, $add:expr) => {
                Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                    let x = ctx.input(0)?.as_slice::<$T>()?;
                    let y = ctx.output(0)?.as_slice_mut::<$T>()?;
                    k::segment_reduce(x, &ids, inner, y, $zero, $add).map_err(OpError::Value)
                }))
            };
        }
        if dtype == DataType::Float32 {
            typed!(f32, 0.0, |a: f32, b: f32| a + b)
        } else {
            typed!(i32, 0, i32::wrapping_add)
        }
    }
}
