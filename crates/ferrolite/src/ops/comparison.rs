//! Comparisons LESS, LESS_EQUAL, GREATER, GREATER_EQUAL, EQUAL, NOT_EQUAL
//! and LOGICAL_AND, LOGICAL_OR, LOGICAL_NOT, with broadcasting and bool
//! outputs.

use ferrolite_kernels::reference::compare::{self as k, Comparison};
use ferrolite_kernels::reference::elementwise::broadcast_shape;
use ferrolite_schema::BuiltinOperator as B;

use super::quantized::input_scale_zp;
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{expect_dtype, EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    for (code, op) in [
        (B::Less, Comparison::Less),
        (B::LessEqual, Comparison::LessEqual),
        (B::Greater, Comparison::Greater),
        (B::GreaterEqual, Comparison::GreaterEqual),
        (B::Equal, Comparison::Equal),
        (B::NotEqual, Comparison::NotEqual),
    ] {
        r.add_builtin(code as i32, 1..=i32::MAX, Compare(op));
    }
    r.add_builtin(B::LogicalAnd as i32, 1..=i32::MAX, Logical(LogicalKind::And));
    r.add_builtin(B::LogicalOr as i32, 1..=i32::MAX, Logical(LogicalKind::Or));
    r.add_builtin(B::LogicalNot as i32, 1..=i32::MAX, Logical(LogicalKind::Not));
}

struct Shapes {
    a: Vec<usize>,
    b: Vec<usize>,
    out: Vec<usize>,
}

/// Check two same-typed inputs and a bool output; set the broadcast shape.
fn prepare_binary(ctx: &mut PrepareContext<'_>) -> Result<(DataType, Shapes), OpError> {
    ctx.check_inputs(2, 2)?;
    ctx.check_outputs(1, 1)?;
    let (a, b) = (ctx.input(0)?, ctx.input(1)?);
    if a.dtype() != b.dtype() {
        return Err(OpError::DType {
            tensor: "input 1".into(),
            expected: a.dtype().to_string(),
            got: b.dtype().to_string(),
        });
    }
    expect_dtype("output", ctx.output_dtype(0)?, &[DataType::Bool])?;
    let out = broadcast_shape(a.shape(), b.shape())
        .ok_or_else(|| OpError::Shape(format!("{:?} and {:?} do not broadcast", a.shape(), b.shape())))?;
    ctx.set_output_shape(0, out.clone())?;
    Ok((a.dtype(), Shapes { a: a.shape().to_vec(), b: b.shape().to_vec(), out }))
}

struct Compare(Comparison);

impl Operator for Compare {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        let op = self.0;
        let (dtype, s) = prepare_binary(ctx)?;
        macro_rules! plain {
            ($T:ty) => {
                Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                    let (a, b) = (ctx.input(0)?.as_slice::<$T>()?, ctx.input(1)?.as_slice::<$T>()?);
                    k::compare(op, a, &s.a, b, &s.b, ctx.output(0)?.as_slice_mut::<u8>()?, &s.out);
                    Ok(())
                }))
            };
        }
        match dtype {
            DataType::Float32 => plain!(f32),
            DataType::Int32 => plain!(i32),
            DataType::Int64 => plain!(i64),
            DataType::Int16 => plain!(i16),
            DataType::Bool if matches!(op, Comparison::Equal | Comparison::NotEqual) => {
                Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                    let (a, b) = (ctx.input(0)?.as_slice::<u8>()?, ctx.input(1)?.as_slice::<u8>()?);
                    k::compare_bool(op, a, &s.a, b, &s.b, ctx.output(0)?.as_slice_mut::<u8>()?, &s.out);
                    Ok(())
                }))
            }
            t @ (DataType::Int8 | DataType::UInt8) => {
                let (a, b) = (ctx.input(0)?, ctx.input(1)?);
                if a.quant().is_none() && b.quant().is_none() {
                    // Plain integers: nothing to rescale.
                    return if t == DataType::Int8 { plain!(i8) } else { plain!(u8) };
                }
                let (s1, z1) = input_scale_zp(&a, "input 0")?;
                let (s2, z2) = input_scale_zp(&b, "input 1")?;
                let p = k::QuantizedCompareParams::new(s1, z1, s2, z2).ok_or_else(|| {
                    OpError::Value(format!("comparison of quantised inputs needs scales below 1, got {s1} and {s2}"))
                })?;
                macro_rules! quantized {
                    ($T:ty) => {
                        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                            let (a, b) = (ctx.input(0)?.as_slice::<$T>()?, ctx.input(1)?.as_slice::<$T>()?);
                            let out = ctx.output(0)?.as_slice_mut::<u8>()?;
                            k::compare_quantized(op, &p, a, &s.a, b, &s.b, out, &s.out);
                            Ok(())
                        }))
                    };
                }
                if t == DataType::Int8 {
                    quantized!(i8)
                } else {
                    quantized!(u8)
                }
            }
            other => Err(OpError::Unsupported(format!("{op:?} on {other}"))),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LogicalKind {
    And,
    Or,
    Not,
}

struct Logical(LogicalKind);

impl Operator for Logical {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        let kind = self.0;
        if kind == LogicalKind::Not {
            ctx.check_inputs(1, 1)?;
            ctx.check_outputs(1, 1)?;
            let x = ctx.input(0)?;
            expect_dtype("input", x.dtype(), &[DataType::Bool])?;
            expect_dtype("output", ctx.output_dtype(0)?, &[DataType::Bool])?;
            ctx.set_output_shape(0, x.shape().to_vec())?;
            return Ok(Box::new(|ctx: &mut EvalContext<'_>| {
                let x = ctx.input(0)?.as_slice::<u8>()?;
                k::logical_not(x, ctx.output(0)?.as_slice_mut::<u8>()?);
                Ok(())
            }));
        }
        let (dtype, s) = prepare_binary(ctx)?;
        expect_dtype("input 0", dtype, &[DataType::Bool])?;
        let f = if kind == LogicalKind::And { k::logical_and } else { k::logical_or };
        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
            let (a, b) = (ctx.input(0)?.as_slice::<u8>()?, ctx.input(1)?.as_slice::<u8>()?);
            f(a, &s.a, b, &s.b, ctx.output(0)?.as_slice_mut::<u8>()?, &s.out);
            Ok(())
        }))
    }
}
