//! AVERAGE_POOL_2D, MAX_POOL_2D, L2_POOL_2D over NHWC windows.

use ferrolite_kernels::reference::padding::Padding2d;
use std::sync::atomic::{AtomicBool, Ordering};

use ferrolite_kernels::optimized::{isa, pool as fast};
use ferrolite_kernels::reference::pool::{l2_pool_f32_rows, Pool2dParams};
use ferrolite_schema::BuiltinOperator as B;

use ferrolite_kernels::activation::ClampI32;
use ferrolite_kernels::quant::quantized_activation_range;
use ferrolite_kernels::reference::quantized as qk;

use super::quantized::{fused, input_scale_zp, output_scale_zp, qrange};
use super::{float_clamp, options, padding, positive, shape4};
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{expect_dtype, EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::AveragePool2d as i32, 1..=3, Pool(Kind::Average));
    r.add_builtin(B::MaxPool2d as i32, 1..=3, Pool(Kind::Max));
    r.add_builtin(B::L2Pool2d as i32, 1..=1, Pool(Kind::L2));
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Average,
    Max,
    L2,
}

struct Pool(Kind);

impl Operator for Pool {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(1, 1)?;
        ctx.check_outputs(1, 1)?;
        let o = options!(ctx, Pool2DOptions).cloned().unwrap_or_default();
        let input = ctx.input(0)?;
        let in_shape = shape4(input.shape(), "input")?;
        let [batches, in_h, in_w, channels] = in_shape;
        let stride_h = positive(o.stride_h, "stride_h")?;
        let stride_w = positive(o.stride_w, "stride_w")?;
        let filter_h = positive(o.filter_height, "filter_height")?;
        let filter_w = positive(o.filter_width, "filter_width")?;
        let win = Padding2d::compute(padding(o.padding), in_h, in_w, filter_h, filter_w, stride_h, stride_w, 1, 1);
        let out_shape = [batches, win.out_h, win.out_w, channels];
        ctx.set_output_shape(0, out_shape.to_vec())?;
        let kind = self.0;
        match input.dtype() {
            DataType::Float32 => {
                expect_dtype("output", ctx.output_dtype(0)?, &[DataType::Float32])?;
                let p = Pool2dParams {
                    stride_h,
                    stride_w,
                    filter_h,
                    filter_w,
                    pad_top: win.padding.top,
                    pad_left: win.padding.left,
                    clamp: float_clamp(o.fused_activation_function)?,
                };
                // Average and max: vectorised for the best SIMD level (the
                // same results bit for bit).
                let level = if ctx.reference_kernels { isa::IsaLevel::Scalar } else { isa::detect() };
                Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                    let input = ctx.input(0)?.as_slice::<f32>()?;
                    let workers = ctx.workers;
                    let out = ctx.output(0)?.as_slice_mut::<f32>()?;
                    let complete = AtomicBool::new(true);
                    workers.for_each_chunk(out, channels, |first, rows| {
                        let ok = match kind {
                            Kind::Average => {
                                fast::average_pool_f32_rows(level, &p, input, in_shape, rows, first, out_shape)
                            }
                            Kind::Max => {
                                fast::max_pool_f32_rows(level, &p, input, in_shape, rows, first, out_shape);
                                true
                            }
                            Kind::L2 => l2_pool_f32_rows(&p, input, in_shape, rows, first, out_shape),
                        };
                        if !ok {
                            complete.store(false, Ordering::Relaxed);
                        }
                    });
                    if !complete.into_inner() {
                        return Err(OpError::Shape("a pooling window lies entirely in the padding".into()));
                    }
                    Ok(())
                }))
            }
            t @ (DataType::Int8 | DataType::UInt8 | DataType::Int16) if kind != Kind::L2 => {
                let (si, zi) = input_scale_zp(&input, "the input")?;
                let (so, zo) = output_scale_zp(ctx.output(0)?)?;
                // TFLite pools quantised data without rescaling.
                if si != so || zi != zo || ctx.output_dtype(0)? != t {
                    return Err(OpError::Unsupported("pooling with different input and output quantisation".into()));
                }
                let (qmin, qmax) = qrange(t)?;
                let (lo, hi) = quantized_activation_range(fused(o.fused_activation_function)?, so, zo, qmin, qmax);
                let clamp = ClampI32 { min: lo, max: hi };
                // Vectorised, the reference's values (see the kernels).
                let (level, reference) = (isa::detect(), ctx.reference_kernels);
                let p = Pool2dParams {
                    stride_h,
                    stride_w,
                    filter_h,
                    filter_w,
                    pad_top: win.padding.top,
                    pad_left: win.padding.left,
                    clamp: ferrolite_kernels::activation::ClampF32::NONE,
                };
                macro_rules! typed {
                    ($T:ty) => {{
                        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                            let x = ctx.input(0)?.as_slice::<$T>()?;
                            let workers = ctx.workers;
                            let y = ctx.output(0)?.as_slice_mut::<$T>()?;
                            let complete = AtomicBool::new(true);
                            workers.for_each_chunk(y, channels, |first, rows| {
                                let averaged = match (kind, reference) {
                                    (Kind::Max, false) => {
                                        fast::max_pool_q8_rows(level, &p, clamp, x, in_shape, rows, first, out_shape);
                                        true
                                    }
                                    (Kind::Max, true) => {
                                        qk::max_pool_quantized_rows(&p, clamp, x, in_shape, rows, first, out_shape);
                                        true
                                    }
                                    (_, false) => fast::average_pool_q8_rows(
                                        level, &p, clamp, x, in_shape, rows, first, out_shape,
                                    ),
                                    (_, true) => {
                                        qk::average_pool_quantized_rows(&p, clamp, x, in_shape, rows, first, out_shape)
                                    }
                                };
                                if !averaged {
                                    complete.store(false, Ordering::Relaxed);
                                }
                            });
                            if !complete.into_inner() {
                                return Err(OpError::Shape("a pooling window lies entirely in the padding".into()));
                            }
                            Ok(())
                        }))
                    }};
                }
                match t {
                    DataType::Int8 => typed!(i8),
                    DataType::UInt8 => typed!(u8),
                    _ => typed!(i16),
                }
            }
            other => Err(OpError::Unsupported(format!("pooling on {other} input"))),
        }
    }
}
