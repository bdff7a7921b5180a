//! CAST between numeric types (float to int truncates toward zero, as C++).

use ferrolite_schema::BuiltinOperator as B;

use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::Cast as i32, 1..=i32::MAX, Cast);
}

struct Cast;

/// Read element `i` of `bytes` of type `t` as f64 (exact for every type
/// but 64-bit integers beyond 2^53, which go through i64/u64 below).
fn read(t: DataType, b: &[u8]) -> Value {
    match t {
        DataType::Float32 => Value::F(f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64),
        DataType::Float64 => Value::F(f64::from_le_bytes(b.try_into().unwrap_or([0; 8]))),
        DataType::Float16 => Value::F(half::f16::from_le_bytes([b[0], b[1]]).to_f64()),
        DataType::Int8 => Value::I(b[0] as i8 as i64),
        DataType::UInt8 | DataType::Bool => Value::I(b[0] as i64),
        DataType::Int16 => Value::I(i16::from_le_bytes([b[0], b[1]]) as i64),
        DataType::UInt16 => Value::I(u16::from_le_bytes([b[0], b[1]]) as i64),
        DataType::Int32 => Value::I(i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64),
        DataType::UInt32 => Value::I(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64),
        DataType::Int64 => Value::I(i64::from_le_bytes(b.try_into().unwrap_or([0; 8]))),
        _ => Value::U(u64::from_le_bytes(b.try_into().unwrap_or([0; 8]))),
    }
}

#[derive(Clone, Copy)]
enum Value {
    F(f64),
    I(i64),
    U(u64),
}

fn write(t: DataType, v: Value, out: &mut [u8]) {
    let as_i = match v {
        Value::F(f) => f as i64, // truncation toward zero, saturating
        Value::I(i) => i,
        Value::U(u) => u as i64,
    };
    let as_f = match v {
        Value::F(f) => f,
        Value::I(i) => i as f64,
        Value::U(u) => u as f64,
    };
    match t {
        DataType::Float32 => out.copy_from_slice(&(as_f as f32).to_le_bytes()),
        DataType::Float64 => out.copy_from_slice(&as_f.to_le_bytes()),
        DataType::Float16 => out.copy_from_slice(&half::f16::from_f64(as_f).to_le_bytes()),
        DataType::Bool => out[0] = (as_f != 0.0) as u8,
        DataType::Int8 | DataType::UInt8 => out[0] = as_i as u8,
        DataType::Int16 | DataType::UInt16 => out.copy_from_slice(&(as_i as u16).to_le_bytes()),
        DataType::Int32 | DataType::UInt32 => out.copy_from_slice(&(as_i as u32).to_le_bytes()),
        _ => out.copy_from_slice(&(as_i as u64).to_le_bytes()),
    }
}

impl Operator for Cast {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(1, 1)?;
        ctx.check_outputs(1, 1)?;
        let input = ctx.input(0)?;
        let (from, to) = (input.dtype(), ctx.output_dtype(0)?);
        let (fs, ts) = (super::element_size(from)?, super::element_size(to)?);
        for t in [from, to] {
            if matches!(t, DataType::Complex64 | DataType::Complex128) {
                return Err(OpError::Unsupported(format!("CAST of {t}")));
            }
        }
        ctx.set_output_shape(0, input.shape().to_vec())?;
        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
            let x = ctx.input(0)?;
            let y = ctx.output(0)?;
            for (i, o) in x.bytes.chunks_exact(fs).zip(y.bytes.chunks_exact_mut(ts)) {
                write(to, read(from, i), o);
            }
            Ok(())
        }))
    }
}
