//! LOCAL_RESPONSE_NORMALIZATION over the channels of a 4-D float tensor.

use ferrolite_kernels::reference::lrn as k;
use ferrolite_schema::BuiltinOperator as B;

use super::options;
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{expect_dtype, EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::LocalResponseNormalization as i32, 1..=i32::MAX, Lrn);
}

struct Lrn;

impl Operator for Lrn {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(1, 1)?;
        ctx.check_outputs(1, 1)?;
        let input = ctx.input(0)?;
        let dtype = super::same_dtype(ctx, 0, 0)?;
        expect_dtype("input", dtype, &[DataType::Float32])?;
        let shape = super::shape4(input.shape(), "the input")?;
        let o = options!(ctx, LocalResponseNormalizationOptions).cloned().unwrap_or_default();
        let radius =
            usize::try_from(o.radius).map_err(|_| OpError::Options(format!("radius {} is negative", o.radius)))?;
        let p = k::LrnParams { radius, bias: o.bias, alpha: o.alpha, beta: o.beta };
        let depth = shape[3];
        ctx.set_output_shape(0, shape.to_vec())?;
        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
            let x = ctx.input(0)?.as_slice::<f32>()?;
            k::local_response_normalization(&p, x, depth, ctx.output(0)?.as_slice_mut::<f32>()?);
            Ok(())
        }))
    }
}
