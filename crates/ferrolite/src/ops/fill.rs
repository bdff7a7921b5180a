//! Tensors made of one value or a sequence: FILL, ZEROS_LIKE, RANGE and
//! RANK. (TFLite has no ONES_LIKE builtin; converters emit FILL.)

use ferrolite_kernels::reference::fill as k;
use ferrolite_schema::BuiltinOperator as B;

use super::{element_size, elems, elems_mut, int_values, to_dim, with_element_size};
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{expect_dtype, EvalContext, InputInfo, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;
use crate::tensor::{checked_num_elements, AlignedBytes};

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::Fill as i32, 1..=i32::MAX, Fill);
    r.add_builtin(B::ZerosLike as i32, 1..=i32::MAX, ZerosLike);
    r.add_builtin(B::Range as i32, 1..=i32::MAX, Range);
    r.add_builtin(B::Rank as i32, 1..=i32::MAX, Rank);
}

struct Fill;

impl Operator for Fill {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(2, 2)?;
        ctx.check_outputs(1, 1)?;
        let dims = ctx.input(0)?;
        expect_dtype("dims", dims.dtype(), &[DataType::Int32, DataType::Int64])?;
        if dims.shape().len() != 1 {
            return Err(OpError::Shape(format!("dims must be 1-D, got {:?}", dims.shape())));
        }
        let value = ctx.input(1)?;
        if value.info.num_elements() != 1 || !value.shape().is_empty() {
            return Err(OpError::Shape(format!("the fill value must be a scalar, got {:?}", value.shape())));
        }
        let dtype = super::same_dtype(ctx, 1, 0)?;
        let shape =
            int_values(&dims, "dims")?.into_iter().map(|d| to_dim(d, "dimension")).collect::<Result<Vec<_>, _>>()?;
        checked_num_elements(&shape).ok_or_else(|| OpError::Value(format!("shape {shape:?} is too large")))?;
        ctx.set_output_shape(0, shape)?;
        let size = element_size(dtype)?;
        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
            let v = ctx.input(1)?;
            with_element_size!(size, T, {
                k::fill(elems::<T>(v.bytes)?[0], elems_mut::<T>(ctx.output(0)?.bytes)?);
                Ok(())
            })
        }))
    }
}

struct ZerosLike;

impl Operator for ZerosLike {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(1, 1)?;
        ctx.check_outputs(1, 1)?;
        let shape = ctx.input(0)?.shape().to_vec();
        let dtype = super::same_dtype(ctx, 0, 0)?;
        ctx.set_output_shape(0, shape)?;
        // Zero is all-zero bytes for every fixed-size type.
        element_size(dtype)?;
        Ok(Box::new(|ctx: &mut EvalContext<'_>| {
            ctx.output(0)?.bytes.fill(0);
            Ok(())
        }))
    }
}

struct Range;

/// One scalar input's constant value.
fn scalar<T: crate::dtype::Element>(i: &InputInfo<'_>, what: &str) -> Result<T, OpError> {
    if !i.shape().is_empty() && i.info.num_elements() != 1 {
        return Err(OpError::Shape(format!("{what} must be a scalar, got {:?}", i.shape())));
    }
    let v = i.constant_as::<T>()?.ok_or_else(|| OpError::DynamicShape(format!("RANGE with a computed {what}")))?;
    v.first().copied().ok_or_else(|| OpError::Shape(format!("{what} is empty")))
}

impl Operator for Range {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(3, 3)?;
        ctx.check_outputs(1, 1)?;
        let (start, limit, delta) = (ctx.input(0)?, ctx.input(1)?, ctx.input(2)?);
        let dtype = start.dtype();
        for (i, what) in [(&limit, "limit"), (&delta, "delta")] {
            if i.dtype() != dtype {
                return Err(OpError::DType {
                    tensor: what.into(),
                    expected: dtype.to_string(),
                    got: i.dtype().to_string(),
                });
            }
        }
        super::same_dtype(ctx, 0, 0)?;
        let bytes: Vec<u8> = match dtype {
            DataType::Int32 | DataType::Int64 => {
                let (s, l, d) = if dtype == DataType::Int32 {
                    let f = |i, w| scalar::<i32>(i, w).map(i64::from);
                    (f(&start, "start")?, f(&limit, "limit")?, f(&delta, "delta")?)
                } else {
                    (scalar::<i64>(&start, "start")?, scalar::<i64>(&limit, "limit")?, scalar::<i64>(&delta, "delta")?)
                };
                let n = k::range_len_int(s, l, d).map_err(OpError::Value)?;
                check_len(n, dtype)?;
                if dtype == DataType::Int32 {
                    let mut v = vec![0i32; n];
                    k::range_i32(s as i32, d as i32, &mut v);
                    bytemuck::cast_slice(&v).to_vec()
                } else {
                    let mut v = vec![0i64; n];
                    k::range_i64(s, d, &mut v);
                    bytemuck::cast_slice(&v).to_vec()
                }
            }
            DataType::Float32 => {
                let (s, l, d) =
                    (scalar::<f32>(&start, "start")?, scalar::<f32>(&limit, "limit")?, scalar::<f32>(&delta, "delta")?);
                let n = k::range_len_f32(s, l, d).map_err(OpError::Value)?;
                check_len(n, dtype)?;
                let mut v = vec![0f32; n];
                k::range(s, d, &mut v);
                bytemuck::cast_slice(&v).to_vec()
            }
            other => return Err(OpError::Unsupported(format!("RANGE on {other}"))),
        };
        let n = bytes.len() / element_size(dtype)?;
        ctx.set_output_shape(0, vec![n])?;
        ctx.set_output_constant(0, AlignedBytes::from_slice(&bytes))?;
        Ok(Box::new(|_: &mut EvalContext<'_>| Ok(())))
    }
}

/// Refuse ranges too large to hold (before allocating them).
fn check_len(n: usize, dtype: DataType) -> Result<(), OpError> {
    // 4 GiB, or the address space on a 32-bit target.
    const MAX_BYTES: usize = if usize::BITS >= 64 { (1u64 << 32) as usize } else { usize::MAX };
    match dtype.bytes_for(n) {
        Some(b) if b <= MAX_BYTES => Ok(()),
        _ => Err(OpError::Value(format!("RANGE of {n} elements is too large"))),
    }
}

struct Rank;

impl Operator for Rank {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(1, 1)?;
        ctx.check_outputs(1, 1)?;
        let rank = ctx.input(0)?.shape().len();
        let bytes = match ctx.output_dtype(0)? {
            DataType::Int32 => (rank as i32).to_le_bytes().to_vec(),
            DataType::Int64 => (rank as i64).to_le_bytes().to_vec(),
            other => {
                return Err(OpError::DType {
                    tensor: "output".into(),
                    expected: "int32".into(),
                    got: other.to_string(),
                })
            }
        };
        ctx.set_output_shape(0, vec![])?;
        ctx.set_output_constant(0, AlignedBytes::from_slice(&bytes))?;
        Ok(Box::new(|_: &mut EvalContext<'_>| Ok(())))
    }
}
