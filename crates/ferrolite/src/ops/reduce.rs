//! MEAN, SUM, REDUCE_MAX, REDUCE_MIN, REDUCE_PROD over constant axes.

use ferrolite_kernels::optimized::isa;
use ferrolite_kernels::optimized::reduce::{self as fast_reduce, reduce_f32, ReduceF32};
use ferrolite_kernels::reference::reduce as k;
use ferrolite_schema::BuiltinOperator as B;

use ferrolite_kernels::reference::quantized as qk;

use super::quantized::{input_scale_zp, output_scale_zp};
use super::{int_values, normalize_axis, options};
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::Mean as i32, 1..=i32::MAX, Reduce(Kind::Mean));
    r.add_builtin(B::Sum as i32, 1..=i32::MAX, Reduce(Kind::Sum));
    r.add_builtin(B::ReduceMax as i32, 1..=i32::MAX, Reduce(Kind::Max));
    r.add_builtin(B::ReduceMin as i32, 1..=i32::MAX, Reduce(Kind::Min));
    r.add_builtin(B::ReduceProd as i32, 1..=i32::MAX, Reduce(Kind::Prod));
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Mean,
    Sum,
    Max,
    Min,
    Prod,
}

struct Reduce(Kind);

/// The axes input, normalised, sorted and without repeats.
pub(crate) fn reduction_axes(ctx: &PrepareContext<'_>, rank: usize) -> Result<Vec<usize>, OpError> {
    let mut axes = Vec::new();
    for a in int_values(&ctx.input(1)?, "the axes input")? {
        let a = normalize_axis(a, rank)?;
        if !axes.contains(&a) {
            axes.push(a);
        }
    }
    axes.sort_unstable();
    Ok(axes)
}

impl Operator for Reduce {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(2, 2)?;
        ctx.check_outputs(1, 1)?;
        let input = ctx.input(0)?;
        let in_shape = input.shape().to_vec();
        let axes = reduction_axes(ctx, in_shape.len())?;
        let keep_dims = options!(ctx, ReducerOptions).map(|o| o.keep_dims).unwrap_or(false);
        let out_shape = k::reduced_shape(&in_shape, &axes, keep_dims);
        ctx.set_output_shape(0, out_shape)?;
        let kind = self.0;
        match input.dtype() {
            DataType::Float32 => {
                // The reference's walk, compiled for the CPU (same bits).
                let level = if ctx.reference_kernels { isa::IsaLevel::Scalar } else { isa::detect() };
                let f = match kind {
                    Kind::Mean => ReduceF32::Mean,
                    Kind::Sum => ReduceF32::Sum,
                    Kind::Max => ReduceF32::Max,
                    Kind::Min => ReduceF32::Min,
                    Kind::Prod => ReduceF32::Prod,
                };
                Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                    let x = ctx.input(0)?.as_slice::<f32>()?;
                    let y = ctx.output(0)?.as_slice_mut::<f32>()?;
                    reduce_f32(level, f, x, &in_shape, &axes, y);
                    Ok(())
                }))
            }
            // SUM shares MEAN's preparation in TFLite (one `s_in / s_out`
            // multiplier); only the eval differs.
            t @ (DataType::Int8 | DataType::UInt8 | DataType::Int16) if matches!(kind, Kind::Mean | Kind::Sum) => {
                let (si, zi) = input_scale_zp(&input, "the input")?;
                let (so, zo) = output_scale_zp(ctx.output(0)?)?;
                let bad = || OpError::Value(format!("quantisation parameters TFLite rejects for {kind:?}"));
                let sum = matches!(kind, Kind::Sum);
                // LiteRT's reference int8 SUM reads the data as uint8 bytes;
                // reproduce that only when the user asked for LiteRT's
                // reference kernels (see `sum_quantized_i8_as_u8`).
                let litert_bytes = sum && ctx.reference_kernels;
                macro_rules! typed {
                    ($T:ty, $as_bytes:expr) => {{
                        let p = qk::QuantizedMeanParams::new::<$T>(si, zi, so, zo).ok_or_else(bad)?;
                        let level = if ctx.reference_kernels { isa::IsaLevel::Scalar } else { isa::detect() };
                        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                            let x = ctx.input(0)?.as_slice::<$T>()?;
                            let y = ctx.output(0)?.as_slice_mut::<$T>()?;
                            if !sum {
                                fast_reduce::mean_quantized(level, &p, x, &in_shape, &axes, y);
                            } else {
                                $as_bytes(&p, x, &in_shape, &axes, y);
                            }
                            Ok(())
                        }))
                    }};
                }
                match t {
                    DataType::Int8 if litert_bytes => typed!(i8, qk::sum_quantized_i8_as_u8),
                    DataType::Int8 => typed!(i8, qk::sum_quantized::<i8>),
                    DataType::UInt8 => typed!(u8, qk::sum_quantized::<u8>),
                    _ => typed!(i16, qk::sum_quantized::<i16>),
                }
            }
            t @ (DataType::Int32 | DataType::Int64) if !matches!(kind, Kind::Mean) => {
                macro_rules! typed {
                    ($T:ty) => {{
                        let (init, f): ($T, fn($T, $T) -> $T) = match kind {
                            Kind::Sum => (0, <$T>::wrapping_add),
                            Kind::Prod => (1, <$T>::wrapping_mul),
                            Kind::Max => (<$T>::MIN, <$T>::max),
                            _ => (<$T>::MAX, <$T>::min),
                        };
                        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                            let x = ctx.input(0)?.as_slice::<$T>()?;
                            k::reduce(x, &in_shape, &axes, ctx.output(0)?.as_slice_mut::<$T>()?, init, f);
                            Ok(())
                        }))
                    }};
                }
                if t == DataType::Int32 {
                    typed!(i32)
                } else {
                    typed!(i64)
                }
            }
            other => Err(OpError::Unsupported(format!("{kind:?} on {other}"))),
        }
    }
}
