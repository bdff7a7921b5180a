//! MATRIX_DIAG (vectors to diagonal matrices) and MATRIX_SET_DIAG (a new
//! main diagonal for each innermost matrix).

use ferrolite_kernels::reference::matrix_diag as k;
use ferrolite_schema::BuiltinOperator as B;

use super::{element_size, elems, elems_mut, with_element_size};
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{expect_dtype, EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::MatrixDiag as i32, 1..=i32::MAX, MatrixDiag);
    r.add_builtin(B::MatrixSetDiag as i32, 1..=i32::MAX, MatrixSetDiag);
}

/// TFLite's element types for both ops (it treats any other as float).
const TYPES: [DataType; 6] =
    [DataType::Float32, DataType::Int8, DataType::UInt8, DataType::Int16, DataType::Int32, DataType::Int64];

struct MatrixDiag;

impl Operator for MatrixDiag {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(1, 1)?;
        ctx.check_outputs(1, 1)?;
        let input = ctx.input(0)?;
        let dtype = input.dtype();
        expect_dtype("MATRIX_DIAG input", dtype, &TYPES)?;
        expect_dtype("MATRIX_DIAG output", ctx.output_dtype(0)?, &[dtype])?;
        let shape = input.shape();
        let Some(&n) = shape.last() else {
            return Err(OpError::Shape("MATRIX_DIAG input must have rank 1 or more, got a scalar".into()));
        };
        let batches: usize = shape[..shape.len() - 1].iter().product();
        let mut out_shape = shape.to_vec();
        out_shape.push(n);
        ctx.set_output_shape(0, out_shape)?;
        let size = element_size(dtype)?;
        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
            let diag = ctx.input(0)?.bytes;
            with_element_size!(size, T, {
                let diag = elems::<T>(diag)?;
                let out = elems_mut::<T>(ctx.output(0)?.bytes)?;
                if diag.len() != batches * n || out.len() != batches * n * n {
                    return Err(OpError::Shape(format!(
                        "MATRIX_DIAG: {} input and {} output values for {batches} vectors of {n}",
                        diag.len(),
                        out.len()
                    )));
                }
                // Zero bits are 0 in every accepted type, 0.0 included.
                k::matrix_diag(diag, batches, n, 0, out);
                Ok(())
            })
        }))
    }
}

struct MatrixSetDiag;

impl Operator for MatrixSetDiag {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(2, 2)?;
        ctx.check_outputs(1, 1)?;
        let (input, diag) = (ctx.input(0)?, ctx.input(1)?);
        let dtype = input.dtype();
        expect_dtype("MATRIX_SET_DIAG input", dtype, &TYPES)?;
        expect_dtype("MATRIX_SET_DIAG diagonal", diag.dtype(), &[dtype])?;
        expect_dtype("MATRIX_SET_DIAG output", ctx.output_dtype(0)?, &[dtype])?;
        let shape = input.shape();
        let rank = shape.len();
        if rank < 2 {
            return Err(OpError::Shape(format!("MATRIX_SET_DIAG input must have rank 2 or more, got {shape:?}")));
        }
        let (rows, cols) = (shape[rank - 2], shape[rank - 1]);
        let mut want = shape[..rank - 2].to_vec();
        want.push(rows.min(cols));
        if diag.shape() != want {
            return Err(OpError::Shape(format!(
                "MATRIX_SET_DIAG diagonal must have shape {want:?} for input {shape:?}, got {:?}",
                diag.shape()
            )));
        }
        let batches: usize = shape[..rank - 2].iter().product();
        ctx.set_output_shape(0, shape.to_vec())?;
        let size = element_size(dtype)?;
        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
            let (input, diag) = (ctx.input(0)?.bytes, ctx.input(1)?.bytes);
            with_element_size!(size, T, {
                let (input, diag) = (elems::<T>(input)?, elems::<T>(diag)?);
                let out = elems_mut::<T>(ctx.output(0)?.bytes)?;
                let n = rows.min(cols);
                if input.len() != batches * rows * cols || out.len() != input.len() || diag.len() != batches * n {
                    return Err(OpError::Shape(format!(
                        "MATRIX_SET_DIAG: {} input, {} diagonal and {} output values",
                        input.len(),
                        diag.len(),
                        out.len()
                    )));
                }
                k::matrix_set_diag(input, diag, batches, rows, cols, out);
                Ok(())
            })
        }))
    }
}
