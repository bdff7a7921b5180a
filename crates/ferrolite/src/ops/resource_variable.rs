//! VAR_HANDLE, READ_VARIABLE and ASSIGN_VARIABLE: TFLite's resource
//! variables, the state that streaming models carry from one invoke to the
//! next (converted from `tf.Variable`s a `tf.function` assigns).
//!
//! VAR_HANDLE writes the id of variable `(container, shared_name)` into its
//! resource output; READ_VARIABLE copies the variable into its output and
//! ASSIGN_VARIABLE copies its value input into the variable. The variables
//! live in the interpreter (see `crate::resource`), shared by all its
//! subgraphs, so the CALL_ONCE init subgraph's assignments are what the
//! main subgraph reads. Reading a variable before any assignment is an
//! error naming it, and so is assigning another type or shape than its
//! first assignment had: READ_VARIABLE's output has the shape the model
//! file gives it, fixed at `allocate_tensors()`.

use ferrolite_schema::BuiltinOperator as B;

use super::options;
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{expect_dtype, EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::VarHandle as i32, 1..=i32::MAX, VarHandle);
    r.add_builtin(B::ReadVariable as i32, 1..=i32::MAX, ReadVariable);
    r.add_builtin(B::AssignVariable as i32, 1..=i32::MAX, AssignVariable);
}

struct VarHandle;
struct ReadVariable;
struct AssignVariable;

/// Check that input `i` is a resource handle: one resource value.
fn check_handle(ctx: &PrepareContext<'_>, i: usize, op: &str) -> Result<(), OpError> {
    let h = ctx.input(i)?;
    expect_dtype(&format!("{op} resource input"), h.dtype(), &[DataType::Resource])?;
    if h.info.num_elements() != 1 {
        return Err(OpError::Shape(format!("{op} resource input has shape {:?}, expected one handle", h.shape())));
    }
    Ok(())
}

/// The variable id in a resource tensor.
fn handle_id(bytes: &[u8]) -> Result<i32, OpError> {
    let b: [u8; 4] = bytes
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| OpError::Value(format!("resource tensor holds {} bytes, expected 4", bytes.len())))?;
    Ok(i32::from_le_bytes(b))
}

/// A variable's value must have a fixed element size to be copied.
fn check_value_type(what: &str, dtype: DataType) -> Result<(), OpError> {
    if dtype.size().is_none() || dtype == DataType::Resource {
        return Err(OpError::Unsupported(format!("{what} of type {dtype}")));
    }
    Ok(())
}

impl Operator for VarHandle {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(0, 0)?;
        ctx.check_outputs(1, 1)?;
        expect_dtype("VAR_HANDLE output", ctx.output_dtype(0)?, &[DataType::Resource])?;
        let o = options!(ctx, VarHandleOptions).cloned().unwrap_or_default();
        let container = o.container.unwrap_or_default();
        let shared_name = o.shared_name.unwrap_or_default();
        ctx.set_output_shape(0, Vec::new())?;
        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
            let id = ctx.resources().handle(&container, &shared_name)?;
            ctx.output(0)?.bytes.copy_from_slice(&id.to_le_bytes());
            Ok(())
        }))
    }
}

impl Operator for ReadVariable {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(1, 1)?;
        ctx.check_outputs(1, 1)?;
        check_handle(ctx, 0, "READ_VARIABLE")?;
        check_value_type("READ_VARIABLE output", ctx.output_dtype(0)?)?;
        Ok(Box::new(|ctx: &mut EvalContext<'_>| {
            let id = handle_id(ctx.input(0)?.bytes)?;
            let resources = ctx.resources();
            let out = ctx.output(0)?;
            let (dtype, shape) = (out.info.dtype, &out.info.shape);
            resources.read(id, dtype, shape, out.bytes)
        }))
    }
}

impl Operator for AssignVariable {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(2, 2)?;
        ctx.check_outputs(0, 0)?;
        check_handle(ctx, 0, "ASSIGN_VARIABLE")?;
        check_value_type("ASSIGN_VARIABLE value", ctx.input(1)?.dtype())?;
        Ok(Box::new(|ctx: &mut EvalContext<'_>| {
            let id = handle_id(ctx.input(0)?.bytes)?;
            let value = ctx.input(1)?;
            ctx.resources().assign(id, value.info.dtype, &value.info.shape, value.bytes)
        }))
    }
}
