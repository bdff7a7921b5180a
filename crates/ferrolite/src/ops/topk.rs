//! TOPK_V2: the k largest values of each last-axis row and their indices,
//! for a constant k.

use ferrolite_kernels::reference::topk as k;
use ferrolite_schema::BuiltinOperator as B;

use super::int_values;
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{expect_dtype, EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::TopkV2 as i32, 1..=i32::MAX, TopKV2);
}

struct TopKV2;

impl Operator for TopKV2 {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(2, 2)?;
        ctx.check_outputs(2, 2)?;
        let input = ctx.input(0)?;
        let dtype = super::same_dtype(ctx, 0, 0)?;
        let k_in = ctx.input(1)?;
        expect_dtype("k", k_in.dtype(), &[DataType::Int32])?;
        let ks = int_values(&k_in, "k")?;
        if ks.len() != 1 {
            return Err(OpError::Shape(format!("k must be one value, got {}", ks.len())));
        }
        let shape = input.shape().to_vec();
        let Some(&row) = shape.last() else {
            return Err(OpError::Shape("TOPK_V2 needs an input of rank 1 or more".into()));
        };
        let kk = usize::try_from(ks[0]).map_err(|_| OpError::Value(format!("k is {}, must not be negative", ks[0])))?;
        if kk > row {
            return Err(OpError::Value(format!("k {kk} is larger than the last dimension {row}")));
        }
        let index_type = ctx.output_dtype(1)?;
        expect_dtype("the indices output", index_type, &[DataType::Int32, DataType::Int64])?;
        let mut out_shape = shape.clone();
        *out_shape.last_mut().expect("rank checked") = kk;
        ctx.set_output_shape(0, out_shape.clone())?;
        ctx.set_output_shape(1, out_shape)?;
        macro_rules! typed {
            ($T:ty) => {{
                Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                    let x = ctx.input(0)?.as_slice::<$T>()?;
                    let [values, indices] = ctx.outputs_mut() else {
                        return Err(OpError::Value("TOPK_V2 needs two outputs".into()));
                    };
                    let values = values.as_slice_mut::<$T>()?;
                    if index_type == DataType::Int32 {
                        k::top_k(x, row, kk, values, indices.as_slice_mut::<i32>()?);
                    } else {
                        k::top_k(x, row, kk, values, indices.as_slice_mut::<i64>()?);
                    }
                    Ok(())
                }))
            }};
        }
        match dtype {
            DataType::Float32 => typed!(f32),
            DataType::Int32 => typed!(i32),
            DataType::Int64 => typed!(i64),
            DataType::Int16 => typed!(i16),
            DataType::Int8 => typed!(i8),
            DataType::UInt8 => typed!(u8),
            other => Err(OpError::Unsupported(format!("TOPK_V2 on {other}"))),
        }
    }
}
