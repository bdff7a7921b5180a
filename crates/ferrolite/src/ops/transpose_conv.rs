//! TRANSPOSE_CONV: the gradient of a convolution, to a constant output size.
//! Inputs: output_shape, filter `[out_c, kh, kw, in_c]`, input, optional bias.

use ferrolite_kernels::reference::conv::{transpose_conv2d_f32, TransposeConvParams};
use ferrolite_kernels::reference::padding::Padding2d;
use ferrolite_schema::BuiltinOperator as B;

use super::{float_clamp, int_values, options, padding, positive, shape4, to_dim, FloatWeights};
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::TransposeConv as i32, 1..=i32::MAX, TransposeConv);
}

struct TransposeConv;

impl Operator for TransposeConv {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(3, 4)?;
        ctx.check_outputs(1, 1)?;
        let o = options!(ctx, TransposeConvOptions).cloned().unwrap_or_default();
        let dims = int_values(&ctx.input(0)?, "the output_shape input")?;
        let out_shape: Vec<usize> = dims.iter().map(|&d| to_dim(d, "output dimension")).collect::<Result<_, _>>()?;
        let out_shape = shape4(&out_shape, "output_shape")?;
        let filter_shape = shape4(ctx.input(1)?.shape(), "filter")?;
        let input = ctx.input(2)?;
        let in_shape = shape4(input.shape(), "input")?;
        if filter_shape[3] != in_shape[3] || filter_shape[0] != out_shape[3] || in_shape[0] != out_shape[0] {
            return Err(OpError::Shape(format!(
                "filter {filter_shape:?} does not map input {in_shape:?} to output {out_shape:?}"
            )));
        }
        let stride_h = positive(o.stride_h, "stride_h")?;
        let stride_w = positive(o.stride_w, "stride_w")?;
        let pad = Padding2d::for_transpose_conv(
            padding(o.padding),
            out_shape[1],
            out_shape[2],
            filter_shape[1],
            filter_shape[2],
            stride_h,
            stride_w,
        );
        ctx.set_output_shape(0, out_shape.to_vec())?;
        match input.dtype() {
            DataType::Float32 => {
                let p = TransposeConvParams {
                    stride_h,
                    stride_w,
                    pad_top: pad.top,
                    pad_left: pad.left,
                    clamp: float_clamp(o.fused_activation_function)?,
                };
                let filter = FloatWeights::prepare(ctx, 1)?;
                let bias = match ctx.optional_input(3) {
                    Some(_) => Some(FloatWeights::prepare(ctx, 3)?),
                    None => None,
                };
                Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                    let x = ctx.input(2)?.as_slice::<f32>()?;
                    let w = filter.get(ctx)?;
                    let b = match &bias {
                        Some(b) => Some(b.get(ctx)?),
                        None => None,
                    };
                    let y = ctx.output(0)?.as_slice_mut::<f32>()?;
                    transpose_conv2d_f32(&p, x, in_shape, w, filter_shape, b, y, out_shape);
                    Ok(())
                }))
            }
            other => Err(OpError::Unsupported(format!("TRANSPOSE_CONV on {other}"))),
        }
    }
}
