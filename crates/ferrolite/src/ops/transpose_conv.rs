//! TRANSPOSE_CONV: the gradient of a convolution, to a constant output size.
//! Inputs: output_shape, filter `[out_c, kh, kw, in_c]`, input, optional bias.

use ferrolite_kernels::reference::conv::{transpose_conv2d_f32, TransposeConvParams};
use ferrolite_kernels::reference::padding::Padding2d;
use ferrolite_schema::BuiltinOperator as B;

use ferrolite_kernels::activation::ClampF32;
use ferrolite_kernels::optimized::isa;
use ferrolite_kernels::optimized::qs8_transpose_conv::{Qs8TransposeConvPlan, Qs8TransposeConvScratch};
use ferrolite_kernels::optimized::transpose_conv::TransposeConvF32Plan;
use ferrolite_kernels::reference::quantized as qk;

use ferrolite_kernels::reference::hybrid::{transpose_conv2d_hybrid_per_channel, HybridScratch};

use super::common::PARALLEL_ELEMENTS;
use super::quantized::{weighted_params, HybridWeights, QuantBias, WeightedOp};
use super::{float_clamp, int_values, options, padding, positive, shape4, to_dim, with_scratch, FloatWeights};
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
            DataType::Float32 if HybridWeights::detect(ctx, 2, 1)?.is_some() => {
                let hw = HybridWeights::detect(ctx, 2, 1)?.ok_or(OpError::Value("hybrid weights".into()))?;
                let out_c = out_shape[3];
                if hw.scales.len() != 1 && hw.scales.len() != out_c {
                    return Err(OpError::Shape(format!("{} filter scales for {out_c} channels", hw.scales.len())));
                }
                let p = TransposeConvParams {
                    stride_h,
                    stride_w,
                    pad_top: pad.top,
                    pad_left: pad.left,
                    clamp: float_clamp(o.fused_activation_function)?,
                };
                let bias = match ctx.optional_input(3) {
                    Some(_) => Some(FloatWeights::prepare(ctx, 3)?),
                    None => None,
                };
                let mut scratch = HybridScratch::new();
                Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                    let x = ctx.input(2)?.as_slice::<f32>()?;
                    let w = ctx.input(hw.input)?.as_slice::<i8>()?;
                    let b = match &bias {
                        Some(b) => Some(b.get(ctx)?),
                        None => None,
                    };
                    let y = ctx.output(0)?.as_slice_mut::<f32>()?;
                    transpose_conv2d_hybrid_per_channel(
                        &p,
                        x,
                        in_shape,
                        w,
                        filter_shape,
                        &hw.scales,
                        b,
                        y,
                        out_shape,
                        &mut scratch,
                    );
                    Ok(())
                }))
            }
            DataType::Float32 => {
                let p = TransposeConvParams {
                    stride_h,
                    stride_w,
                    pad_top: pad.top,
                    pad_left: pad.left,
                    clamp: float_clamp(o.fused_activation_function)?,
                };
                prepare_float(ctx, p, [2, 1, 3], in_shape, filter_shape, out_shape)
            }
            dtype @ (DataType::Int8 | DataType::Int16) => {
                // TFLite's reference_integer_ops::TransposeConv: per-channel
                // multipliers as CONV_2D, int32 (int8) / int64 (int16) scratch.
                let q = weighted_params(ctx, 2, 1, o.fused_activation_function, WeightedOp::Conv)?;
                let bias = QuantBias::prepare(ctx, 3)?;
                let p = TransposeConvParams {
                    stride_h,
                    stride_w,
                    pad_top: pad.top,
                    pad_left: pad.left,
                    clamp: ClampF32::NONE,
                };
                let (xs, fs, os) = (in_shape, filter_shape, out_shape);
                let mut s32: Vec<i32> = Vec::new();
                let mut s64: Vec<i64> = Vec::new();
                // int8 with constant weights: the packed GEMM and scatter
                // (`optimized::qs8_transpose_conv`, the reference's bits).
                let fast = match (dtype, ctx.input(1)?.constant_as::<i8>()?) {
                    (DataType::Int8, Some(w)) if !ctx.reference_kernels => {
                        Qs8TransposeConvPlan::new(isa::detect(), &p, &q, xs, w, fs, os)
                    }
                    _ => None,
                };
                let mut fast_scratch = Qs8TransposeConvScratch::default();
                Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                    let x = ctx.input(2)?;
                    let w = ctx.input(1)?.as_slice::<i8>()?;
                    let (b32, b64) = bias.slices(ctx)?;
                    let out = ctx.output(0)?;
                    match dtype {
                        DataType::Int8 => {
                            if b64.is_some() {
                                return Err(OpError::Unsupported("int8 TRANSPOSE_CONV with an int64 bias".into()));
                            }
                            let y = out.as_slice_mut::<i8>()?;
                            match &fast {
                                Some(plan) => plan.run(x.as_slice()?, b32, y, &mut fast_scratch),
                                None => qk::transpose_conv2d_i8(&p, &q, x.as_slice()?, xs, w, fs, b32, y, os, &mut s32),
                            }
                        }
                        _ => {
                            let y = out.as_slice_mut::<i16>()?;
                            match b32 {
                                Some(b) => qk::transpose_conv2d_i16x8(
                                    &p,
                                    &q,
                                    x.as_slice()?,
                                    xs,
                                    w,
                                    fs,
                                    Some(b),
                                    y,
                                    os,
                                    &mut s32,
                                ),
                                None => {
                                    qk::transpose_conv2d_i16x8(&p, &q, x.as_slice()?, xs, w, fs, b64, y, os, &mut s64)
                                }
                            }
                        }
                    }
                    Ok(())
                }))
            }
            other => Err(OpError::Unsupported(format!("TRANSPOSE_CONV on {other}"))),
        }
    }
}

/// The float kernel of TRANSPOSE_CONV and of MediaPipe's
/// `Convolution2DTransposeBias` (the same operation, another input order):
/// inputs `[input, filter, bias]` at the node's input indices `inputs`.
pub(crate) fn prepare_float(
    ctx: &mut PrepareContext<'_>,
    p: TransposeConvParams,
    inputs: [usize; 3],
    in_shape: [usize; 4],
    filter_shape: [usize; 4],
    out_shape: [usize; 4],
) -> Result<Box<dyn PreparedOp>, OpError> {
    let [input_at, filter_at, bias_at] = inputs;
    let filter = FloatWeights::prepare(ctx, filter_at)?;
    let bias = match ctx.optional_input(bias_at) {
        Some(_) => Some(FloatWeights::prepare(ctx, bias_at)?),
        None => None,
    };
    // Constant weights: the GEMM + scatter plan (see the kernel).
    if let Some(w) = filter.at_prepare(ctx) {
        let plan = TransposeConvF32Plan::new(isa::detect(), &p, in_shape, w, filter_shape, out_shape);
        return Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
            let x = ctx.input(input_at)?.as_slice::<f32>()?;
            let b = match &bias {
                Some(b) => Some(b.get(ctx)?),
                None => None,
            };
            let workers = ctx.workers;
            let y = ctx.output(0)?.as_slice_mut::<f32>()?;
            let run = |first_row: usize, rows: &mut [f32]| {
                with_scratch(|scratch| plan.run_rows(x, b, rows, first_row, scratch))
            };
            // One band per thread: bands recompute the input
            // rows they share, so fewer is better.
            let out_rows = out_shape[0] * out_shape[1];
            if workers.threads() > 1 && y.len() >= PARALLEL_ELEMENTS {
                workers.for_each_chunk_min(y, plan.row_len(), out_rows.div_ceil(workers.threads()), run);
            } else {
                run(0, y);
            }
            Ok(())
        }));
    }
    Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
        let x = ctx.input(input_at)?.as_slice::<f32>()?;
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
