//! MediaPipe's custom ops that its published models need (registered by
//! `OpResolver::with_builtins`, under their custom names, as MediaPipe's
//! own runtime does): `Convolution2DTransposeBias`, the transposed
//! convolution of the selfie and hair segmenters.

use ferrolite_kernels::activation::ClampF32;
use ferrolite_kernels::reference::conv::TransposeConvParams;
use ferrolite_kernels::reference::padding::{Padding, Padding2d};

use super::{shape4, transpose_conv};
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_custom("Convolution2DTransposeBias", Convolution2DTransposeBias);
}

/// TRANSPOSE_CONV with a bias and inputs `[input, filter, bias]`; options
/// are TFLite's `TfLiteTransposeConvParams` as raw bytes: padding (1 SAME,
/// 2 VALID), stride width, stride height, each an int32. The output size
/// follows from the padding: `in · stride` (SAME) or `(in - 1) · stride +
/// filter` (VALID).
pub struct Convolution2DTransposeBias;

impl Operator for Convolution2DTransposeBias {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(3, 3)?;
        ctx.check_outputs(1, 1)?;
        let o = ctx.custom_options;
        if o.len() < 12 {
            return Err(OpError::Options(format!(
                "Convolution2DTransposeBias options are {} bytes, expected 12 (padding, stride_w, stride_h)",
                o.len()
            )));
        }
        let int = |i: usize| i32::from_le_bytes([o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3]]);
        let padding = match int(0) {
            1 => Padding::Same,
            2 => Padding::Valid,
            other => return Err(OpError::Options(format!("padding {other}, expected 1 (SAME) or 2 (VALID)"))),
        };
        let stride = |i: usize, what: &str| match int(i) {
            s @ 1..=4096 => Ok(s as usize),
            s => Err(OpError::Options(format!("{what} is {s}, expected 1 to 4096"))),
        };
        let (stride_w, stride_h) = (stride(1, "stride_w")?, stride(2, "stride_h")?);
        let input = ctx.input(0)?;
        if input.dtype() != DataType::Float32 {
            return Err(OpError::Unsupported(format!("Convolution2DTransposeBias on {}", input.dtype())));
        }
        let in_shape = shape4(input.shape(), "input")?;
        let filter_shape = shape4(ctx.input(1)?.shape(), "filter")?;
        let [out_c, kh, kw, in_c] = filter_shape;
        if in_c != in_shape[3] || ctx.input(2)?.shape().iter().product::<usize>() != out_c {
            return Err(OpError::Shape(format!(
                "filter {filter_shape:?} and bias {:?} do not fit input {in_shape:?}",
                ctx.input(2)?.shape()
            )));
        }
        let size = |n: usize, k: usize, s: usize| match padding {
            Padding::Same => n.checked_mul(s),
            Padding::Valid => n.checked_sub(1).and_then(|m| m.checked_mul(s)).and_then(|m| m.checked_add(k)),
        };
        let (Some(out_h), Some(out_w)) = (size(in_shape[1], kh, stride_h), size(in_shape[2], kw, stride_w)) else {
            return Err(OpError::Shape(format!("no output size for input {in_shape:?} and filter {filter_shape:?}")));
        };
        let out_shape = [in_shape[0], out_h, out_w, out_c];
        ctx.set_output_shape(0, out_shape.to_vec())?;
        let pad = Padding2d::for_transpose_conv(padding, out_h, out_w, kh, kw, stride_h, stride_w);
        let p = TransposeConvParams { stride_h, stride_w, pad_top: pad.top, pad_left: pad.left, clamp: ClampF32::NONE };
        transpose_conv::prepare_float(ctx, p, [0, 1, 2], in_shape, filter_shape, out_shape)
    }
}
