//! REAL, IMAG and COMPLEX_ABS: complex64 to float32, complex128 to float64.

use ferrolite_kernels::reference::complex as k;
use ferrolite_schema::BuiltinOperator as B;

use super::{elems, elems_mut};
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{expect_dtype, EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::Real as i32, 1..=i32::MAX, ComplexPart(Part::Real));
    r.add_builtin(B::Imag as i32, 1..=i32::MAX, ComplexPart(Part::Imag));
    r.add_builtin(B::ComplexAbs as i32, 1..=i32::MAX, ComplexPart(Part::Abs));
}

#[derive(Clone, Copy)]
enum Part {
    Real,
    Imag,
    Abs,
}

struct ComplexPart(Part);

impl Operator for ComplexPart {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        let part = self.0;
        let name = match part {
            Part::Real => "REAL",
            Part::Imag => "IMAG",
            Part::Abs => "COMPLEX_ABS",
        };
        ctx.check_inputs(1, 1)?;
        ctx.check_outputs(1, 1)?;
        let input = ctx.input(0)?;
        let dtype = input.dtype();
        expect_dtype(&format!("{name} input"), dtype, &[DataType::Complex64, DataType::Complex128])?;
        let wide = dtype == DataType::Complex128;
        let out_type = if wide { DataType::Float64 } else { DataType::Float32 };
        expect_dtype(&format!("{name} output"), ctx.output_dtype(0)?, &[out_type])?;
        ctx.set_output_shape(0, input.shape().to_vec())?;
        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
            let z = ctx.input(0)?.bytes;
            let out = &mut *ctx.output(0)?.bytes;
            if z.len() != 2 * out.len() {
                return Err(OpError::Shape(format!("{name}: {} input bytes for {} output bytes", z.len(), out.len())));
            }
            if wide {
                let (z, out) = (elems::<f64>(z)?, elems_mut::<f64>(out)?);
                match part {
                    Part::Real => k::real(z, out),
                    Part::Imag => k::imag(z, out),
                    Part::Abs => k::abs_f64(z, out),
                }
            } else {
                let (z, out) = (elems::<f32>(z)?, elems_mut::<f32>(out)?);
                match part {
                    Part::Real => k::real(z, out),
                    Part::Imag => k::imag(z, out),
                    Part::Abs => k::abs_f32(z, out),
                }
            }
            Ok(())
        }))
    }
}
