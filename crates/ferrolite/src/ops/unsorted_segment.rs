//! UNSORTED_SEGMENT_SUM / MAX / MIN / PROD: data rows folded into a
//! constant number of segments by (any-order) segment ids. Negative ids
//! are dropped; segments no id names keep the fold's starting value.

use ferrolite_kernels::reference::segment as k;
use ferrolite_schema::BuiltinOperator as B;

use super::int_values;
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{expect_dtype, EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::UnsortedSegmentSum as i32, 1..=i32::MAX, UnsortedSegment(Kind::Sum));
    r.add_builtin(B::UnsortedSegmentMax as i32, 1..=i32::MAX, UnsortedSegment(Kind::Max));
    r.add_builtin(B::UnsortedSegmentMin as i32, 1..=i32::MAX, UnsortedSegment(Kind::Min));
    r.add_builtin(B::UnsortedSegmentProd as i32, 1..=i32::MAX, UnsortedSegment(Kind::Prod));
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Sum,
    Max,
    Min,
    Prod,
}

struct UnsortedSegment(Kind);

impl Operator for UnsortedSegment {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        let kind = self.0;
        let name = match kind {
            Kind::Sum => "UNSORTED_SEGMENT_SUM",
            Kind::Max => "UNSORTED_SEGMENT_MAX",
            Kind::Min => "UNSORTED_SEGMENT_MIN",
            Kind::Prod => "UNSORTED_SEGMENT_PROD",
        };
        ctx.check_inputs(3, 3)?;
        ctx.check_outputs(1, 1)?;
        let (data, ids_in, num_in) = (ctx.input(0)?, ctx.input(1)?, ctx.input(2)?);
        let dtype = data.dtype();
        expect_dtype(&format!("{name} data"), dtype, &[DataType::Float32, DataType::Int32])?;
        expect_dtype(&format!("{name} output"), ctx.output_dtype(0)?, &[dtype])?;
        expect_dtype(&format!("{name} segment ids"), ids_in.dtype(), &[DataType::Int32])?;
        expect_dtype(&format!("{name} num_segments"), num_in.dtype(), &[DataType::Int32])?;
        if !(num_in.shape().is_empty() || num_in.shape() == [1]) {
            return Err(OpError::Shape(format!("{name} num_segments must be one value, got {:?}", num_in.shape())));
        }
        let num = int_values(&num_in, &format!("the {name} num_segments"))?[0];
        let num = usize::try_from(num)
            .map_err(|_| OpError::Value(format!("{name} num_segments is {num}, must not be negative")))?;
        // The ids cover the data's leading dimensions (one id per row for
        // 1-D ids); each id picks an output row of the remaining ones.
        let (d_shape, i_shape) = (data.shape().to_vec(), ids_in.shape());
        if i_shape.is_empty() || i_shape.len() > d_shape.len() || d_shape[..i_shape.len()] != *i_shape {
            return Err(OpError::Shape(format!(
                "{name}: segment ids {i_shape:?} must match the leading dimensions of the data {d_shape:?}"
            )));
        }
        let tail = &d_shape[i_shape.len()..];
        let inner: usize = tail.iter().product();
        if let Some(ids) = ids_in.constant_as::<i32>()? {
            if let Some((i, &id)) = ids.iter().enumerate().find(|(_, &id)| id >= 0 && id as usize >= num) {
                return Err(OpError::Value(format!(
                    "{name}: segment id {id} at position {i} is out of range for {num} segments"
                )));
            }
        }
        let mut out_shape = vec![num];
        out_shape.extend_from_slice(tail);
        ctx.set_output_shape(0, out_shape)?;
        macro_rules! typed {
            ($T:ty, $init:expr, $f:expr) => {
                Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                    let x = ctx.input(0)?.as_slice::<$T>()?;
                    let ids = ctx.input(1)?.as_slice::<i32>()?;
                    let y = ctx.output(0)?.as_slice_mut::<$T>()?;
                    k::segment_reduce(x, ids, inner, y, $init, $f).map_err(|e| OpError::Value(format!("{name}: {e}")))
                }))
            };
        }
        // Max and min keep the running value unless the new one is strictly
        // beyond it (C++'s std::max / std::min), so NaNs are skipped.
        match (dtype, kind) {
            (DataType::Float32, Kind::Sum) => typed!(f32, 0.0, |a: f32, b: f32| a + b),
            (DataType::Float32, Kind::Prod) => typed!(f32, 1.0, |a: f32, b: f32| a * b),
            (DataType::Float32, Kind::Max) => typed!(f32, f32::MIN, |a: f32, b: f32| if a < b { b } else { a }),
            (DataType::Float32, Kind::Min) => typed!(f32, f32::MAX, |a: f32, b: f32| if b < a { b } else { a }),
            (_, Kind::Sum) => typed!(i32, 0, i32::wrapping_add),
            (_, Kind::Prod) => typed!(i32, 1, i32::wrapping_mul),
            (_, Kind::Max) => typed!(i32, i32::MIN, i32::max),
            (_, Kind::Min) => typed!(i32, i32::MAX, i32::min),
        }
    }
}
