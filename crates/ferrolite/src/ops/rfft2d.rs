//! RFFT2D with constant FFT lengths: the real 2-D FFT over the last two
//! dimensions, to complex64 (interleaved f32 pairs).

use ferrolite_kernels::reference::rfft2d as k;
use ferrolite_schema::BuiltinOperator as B;

use super::{elems_mut, int_values};
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{expect_dtype, EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::Rfft2d as i32, 1..=i32::MAX, Rfft2d);
}

struct Rfft2d;

/// The largest FFT length accepted, and the largest output slice (complex
/// values): the plan's tables and buffers are allocated at prepare, so a
/// malformed length must not ask for gigabytes there.
const MAX_LENGTH: usize = 1 << 20;
const MAX_SLICE: usize = 1 << 22;

impl Operator for Rfft2d {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(2, 2)?;
        ctx.check_outputs(1, 1)?;
        let (input, lengths) = (ctx.input(0)?, ctx.input(1)?);
        expect_dtype("RFFT2D input", input.dtype(), &[DataType::Float32])?;
        expect_dtype("RFFT2D fft_length", lengths.dtype(), &[DataType::Int32])?;
        expect_dtype("RFFT2D output", ctx.output_dtype(0)?, &[DataType::Complex64])?;
        let shape = input.shape().to_vec();
        let rank = shape.len();
        if rank < 2 {
            return Err(OpError::Shape(format!("RFFT2D input must have rank 2 or more, got {shape:?}")));
        }
        if lengths.shape() != [2] {
            return Err(OpError::Shape(format!("RFFT2D fft_length must have shape [2], got {:?}", lengths.shape())));
        }
        let fft = int_values(&lengths, "RFFT2D fft_length")?;
        let (fft_h, fft_w) = match fft[..] {
            [h, w] => match (usize::try_from(h), usize::try_from(w)) {
                (Ok(h), Ok(w)) if h.is_power_of_two() && w.is_power_of_two() => (h, w),
                _ => return Err(OpError::Value(format!("RFFT2D fft_length {fft:?}: both must be powers of two"))),
            },
            _ => return Err(OpError::Shape(format!("RFFT2D fft_length holds {} values, expected 2", fft.len()))),
        };
        let bins = fft_w / 2 + 1;
        if fft_h > MAX_LENGTH || fft_w > MAX_LENGTH || fft_h * bins > MAX_SLICE {
            return Err(OpError::Unsupported(format!("RFFT2D fft_length {fft:?}: transforms this large")));
        }
        let (in_h, in_w) = (shape[rank - 2], shape[rank - 1]);
        let slices: usize = shape[..rank - 2].iter().product();
        let mut out_shape = shape;
        out_shape[rank - 2] = fft_h;
        out_shape[rank - 1] = bins;
        ctx.set_output_shape(0, out_shape)?;
        let mut plan = k::Rfft2d::new(fft_h, fft_w)
            .ok_or_else(|| OpError::Value(format!("RFFT2D fft_length {fft:?}: both must be powers of two")))?;
        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
            let x = ctx.input(0)?.as_slice::<f32>()?;
            let out = elems_mut::<f32>(ctx.output(0)?.bytes)?;
            if x.len() != slices * in_h * in_w || out.len() != 2 * slices * plan.output_len() {
                return Err(OpError::Shape(format!(
                    "RFFT2D: {} input values and {} output values for {slices} slices",
                    x.len(),
                    out.len()
                )));
            }
            plan.run(x, slices, in_h, in_w, out);
            Ok(())
        }))
    }
}
