//! MediaPipe's custom ops that its published models need (registered by
//! `OpResolver::with_builtins`, under their custom names, as MediaPipe's
//! own runtime does): `Convolution2DTransposeBias`, the transposed
//! convolution of the selfie and hair segmenters.

use ferrolite_kernels::activation::ClampF32;
use ferrolite_kernels::reference::conv::TransposeConvParams;

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
/// 0 or 2 VALID), stride width, stride height, each an int32. The output
/// size is MediaPipe's own, not TRANSPOSE_CONV's: SAME pads
/// `max(0, k - 1 - (in - 1) % s)` in all (half of it, rounded down,
/// before), and the output is `s (in - 1) + k` less that padding.
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
        let same = match int(0) {
            1 => true,
            0 | 2 => false,
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
        if kh == 0 || kw == 0 || in_shape[1] == 0 || in_shape[2] == 0 {
            return Err(OpError::Shape(format!("empty input {in_shape:?} or filter {filter_shape:?}")));
        }
        // Total padding and output size along one side (MediaPipe's Prepare).
        let side = |n: usize, k: usize, s: usize| -> Option<(usize, usize)> {
            let pad = if same { (k - 1).saturating_sub((n - 1) % s) } else { 0 };
            let out = s.checked_mul(n - 1)?.checked_add(k)? - pad;
            Some((pad, out))
        };
        let (Some((pad_h, out_h)), Some((pad_w, out_w))) =
            (side(in_shape[1], kh, stride_h), side(in_shape[2], kw, stride_w))
        else {
            return Err(OpError::Shape(format!("no output size for input {in_shape:?} and filter {filter_shape:?}")));
        };
        let out_shape = [in_shape[0], out_h, out_w, out_c];
        ctx.set_output_shape(0, out_shape.to_vec())?;
        let p =
            TransposeConvParams { stride_h, stride_w, pad_top: pad_h / 2, pad_left: pad_w / 2, clamp: ClampF32::NONE };
        transpose_conv::prepare_float(ctx, p, [0, 1, 2], in_shape, filter_shape, out_shape)
    }
}
