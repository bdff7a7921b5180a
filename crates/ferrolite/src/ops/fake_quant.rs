//! FAKE_QUANT: float values quantised and dequantised over the nudged
//! `[min, max]` range of the options.

use ferrolite_kernels::reference::fake_quant as k;
use ferrolite_schema::BuiltinOperator as B;

use super::options;
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{expect_dtype, EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::FakeQuant as i32, 1..=i32::MAX, FakeQuant);
}

struct FakeQuant;

impl Operator for FakeQuant {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(1, 1)?;
        ctx.check_outputs(1, 1)?;
        let input = ctx.input(0)?;
        expect_dtype("FAKE_QUANT input", input.dtype(), &[DataType::Float32])?;
        expect_dtype("FAKE_QUANT output", ctx.output_dtype(0)?, &[DataType::Float32])?;
        // The table's defaults (min = max = 0, 0 bits) describe no range.
        let o = options!(ctx, FakeQuantOptions)
            .ok_or_else(|| OpError::Options("FAKE_QUANT needs its options (min, max, num_bits)".into()))?;
        if o.narrow_range {
            // TFLite refuses it too: it is meant for weights, which the
            // converter quantises instead.
            return Err(OpError::Unsupported("FAKE_QUANT with narrow_range".into()));
        }
        let bits = u32::try_from(o.num_bits)
            .ok()
            .filter(|b| (2..=16).contains(b))
            .ok_or_else(|| OpError::Options(format!("FAKE_QUANT num_bits is {}, must be 2 to 16", o.num_bits)))?;
        let (min, max) = (o.min, o.max);
        if !(min.is_finite() && max.is_finite() && min < max) {
            return Err(OpError::Options(format!("FAKE_QUANT range [{min}, {max}] must be finite with min < max")));
        }
        ctx.set_output_shape(0, input.shape().to_vec())?;
        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
            let x = ctx.input(0)?.as_slice::<f32>()?;
            let out = ctx.output(0)?.as_slice_mut::<f32>()?;
            if x.len() != out.len() {
                return Err(OpError::Shape(format!("FAKE_QUANT: {} input and {} output values", x.len(), out.len())));
            }
            k::fake_quant(x, min, max, bits, out);
            Ok(())
        }))
    }
}
