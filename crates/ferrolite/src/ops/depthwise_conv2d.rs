//! DEPTHWISE_CONV_2D: each input channel filtered on its own, with a depth
//! multiplier; filter `[1, kh, kw, out_c]`.

use ferrolite_kernels::reference::conv::{depthwise_conv2d_f32, DepthwiseParams};
use ferrolite_kernels::reference::padding::Padding2d;
use ferrolite_schema::BuiltinOperator as B;

use ferrolite_kernels::optimized::qs8::Qs8DepthwisePlan;
use ferrolite_kernels::optimized::{depthwise::DepthwiseF32Plan, isa};

use super::conv2d::with_qs8_scratch;
use super::conv_depthwise::with_band_f32;
use ferrolite_kernels::reference::quantized as qk;

use ferrolite_kernels::optimized::hybrid::{HybridDepthwisePlan, HybridInput};
use ferrolite_kernels::reference::hybrid::{depthwise_conv2d_hybrid_per_channel, HybridScratch};

use super::quantized::{weighted_params, HybridWeights, OutputRange, QuantBias, WeightedOp};
use super::{float_clamp, options, padding, positive, shape4, FloatWeights};
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{expect_dtype, EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::DepthwiseConv2d as i32, 1..=7, DepthwiseConv2d);
}

struct DepthwiseConv2d;

impl Operator for DepthwiseConv2d {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(2, 3)?;
        ctx.check_outputs(1, 1)?;
        let o = options!(ctx, DepthwiseConv2DOptions).cloned().unwrap_or_default();
        let input = ctx.input(0)?;
        let in_shape = shape4(input.shape(), "input")?;
        let filter_shape = shape4(ctx.input(1)?.shape(), "filter")?;
        let [batches, in_h, in_w, in_c] = in_shape;
        let [one, kh, kw, out_c] = filter_shape;
        if one != 1 {
            return Err(OpError::Shape(format!("filter must be [1, kh, kw, channels], got {filter_shape:?}")));
        }
        // Newer converters may leave depth_multiplier at 0: derive it.
        if in_c == 0 || out_c % in_c != 0 {
            return Err(OpError::Shape(format!("{out_c} filter channels are not a multiple of {in_c} input channels")));
        }
        let depth_multiplier = out_c / in_c;
        if o.depth_multiplier > 0 && o.depth_multiplier as usize != depth_multiplier {
            return Err(OpError::Options(format!(
                "depth_multiplier {} does not match {out_c} filter channels over {in_c} input channels",
                o.depth_multiplier
            )));
        }
        if let Some(b) = ctx.optional_input(2) {
            if b.info.num_elements() != out_c {
                return Err(OpError::Shape(format!("bias has {} elements, expected {out_c}", b.info.num_elements())));
            }
        }
        let stride_h = positive(o.stride_h, "stride_h")?;
        let stride_w = positive(o.stride_w, "stride_w")?;
        let dilation_h = positive(o.dilation_h_factor, "dilation_h_factor")?;
        let dilation_w = positive(o.dilation_w_factor, "dilation_w_factor")?;
        let win =
            Padding2d::compute(padding(o.padding), in_h, in_w, kh, kw, stride_h, stride_w, dilation_h, dilation_w);
        let out_shape = [batches, win.out_h, win.out_w, out_c];
        ctx.set_output_shape(0, out_shape.to_vec())?;
        let params = |clamp| DepthwiseParams {
            stride_h,
            stride_w,
            dilation_h,
            dilation_w,
            pad_top: win.padding.top,
            pad_left: win.padding.left,
            depth_multiplier,
            clamp,
        };
        match input.dtype() {
            DataType::Float32 if HybridWeights::detect(ctx, 0, 1)?.is_some() => {
                let hw = HybridWeights::detect(ctx, 0, 1)?.ok_or(OpError::Value("hybrid weights".into()))?;
                let p = params(float_clamp(o.fused_activation_function)?);
                // TFLite's hybrid depthwise is always per channel.
                let scales = if hw.scales.len() == 1 { vec![hw.scales[0]; out_c] } else { hw.scales.clone() };
                if scales.len() != out_c {
                    return Err(OpError::Shape(format!("{} filter scales for {out_c} channels", scales.len())));
                }
                let bias = match ctx.optional_input(2) {
                    Some(_) => Some(FloatWeights::prepare(ctx, 2)?),
                    None => None,
                };
                // Constant int8 weights: channel-vectorised plan, bit-exact
                // with the reference (--reference-kernels keeps the reference).
                let plan = match ctx.reference_kernels {
                    true => None,
                    false => ctx.input(1)?.constant_as::<i8>().ok().flatten().map(|w| {
                        HybridDepthwisePlan::new(isa::detect(), &p, in_shape, w, filter_shape, &scales, out_shape)
                    }),
                }
                .filter(|plan| plan.supported());
                if plan.as_ref().is_some_and(|plan| plan.banded()) {
                    // Its producer's record of the input's range spares a scan.
                    ctx.reads_input_range(0);
                }
                let mut scratch = HybridScratch::new();
                let mut quantized = HybridInput::new();
                Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                    let x = ctx.input(0)?.as_slice::<f32>()?;
                    let b = match &bias {
                        Some(b) => Some(b.get(ctx)?),
                        None => None,
                    };
                    if let Some(plan) = plan.as_ref().filter(|plan| plan.banded()) {
                        // Each image's quantisation parameters, then bands of
                        // output rows quantise the input rows they reach.
                        let workers = ctx.workers;
                        let known = ctx.input_range(0);
                        plan.quantize_params_par(x, &mut quantized, known, &|n, task| workers.run(n, task));
                        let q = &quantized;
                        let len = plan.image_rows() * plan.image_row_len();
                        // The output's range, for the hybrid op reading it next.
                        let range = OutputRange::new(ctx);
                        let y = ctx.output(0)?.as_slice_mut::<f32>()?;
                        let whole = y.len() == len;
                        let y = y.get_mut(..len).ok_or_else(|| OpError::Shape("output too small".into()))?;
                        // One run of image rows per thread: each run quantises
                        // the input rows its first band reaches again, so
                        // finer chunks would repeat that work.
                        let per_thread = plan.image_rows().div_ceil(workers.threads()).max(1);
                        workers.for_each_chunk_min(y, plan.image_row_len(), per_thread, |first, rows| {
                            range.observe(|observe| {
                                with_band_f32(|band| plan.run_image_rows(x, q, b, rows, first, band, observe))
                            })
                        });
                        range.record(ctx, whole);
                        return Ok(());
                    }
                    if let Some(plan) = &plan {
                        // Quantise whole images once, then split output pixels.
                        let workers = ctx.workers;
                        plan.quantize_par(x, &mut quantized, &|n, task| workers.run(n, task));
                        let q = &quantized;
                        let len = plan.rows() * plan.row_len();
                        let y = ctx.output(0)?.as_slice_mut::<f32>()?;
                        let y = y.get_mut(..len).ok_or_else(|| OpError::Shape("output too small".into()))?;
                        workers.for_each_chunk(y, plan.row_len(), |first_row, rows| {
                            with_qs8_scratch(|s| plan.run_rows(q, b, rows, first_row, s))
                        });
                        return Ok(());
                    }
                    let w = ctx.input(hw.input)?.as_slice::<i8>()?;
                    let y = ctx.output(0)?.as_slice_mut::<f32>()?;
                    depthwise_conv2d_hybrid_per_channel(
                        &p,
                        x,
                        in_shape,
                        w,
                        filter_shape,
                        &scales,
                        b,
                        y,
                        out_shape,
                        &mut scratch,
                    );
                    Ok(())
                }))
            }
            DataType::Float32 => {
                expect_dtype("output", ctx.output_dtype(0)?, &[DataType::Float32])?;
                let p = params(float_clamp(o.fused_activation_function)?);
                let filter = FloatWeights::prepare(ctx, 1)?;
                let bias = match ctx.optional_input(2) {
                    Some(_) => Some(FloatWeights::prepare(ctx, 2)?),
                    None => None,
                };
                let plan = filter
                    .at_prepare(ctx)
                    .map(|w| DepthwiseF32Plan::new(isa::detect(), &p, in_shape, w, filter_shape, out_shape))
                    .filter(|plan| plan.supported());
                Ok(Box::new(DepthwiseF32 { p, in_shape, filter_shape, out_shape, filter, bias, plan }))
            }
            DataType::Int8 | DataType::Int16 | DataType::UInt8 => {
                let q = weighted_params(ctx, 0, 1, o.fused_activation_function, WeightedOp::Conv)?;
                let bias = QuantBias::prepare(ctx, 2)?;
                let p = params(ferrolite_kernels::activation::ClampF32::NONE);
                let dtype = input.dtype();
                // 8-bit depthwise with constant weights: channel-vectorised
                // plan, bit-exact with the reference.
                let filter = ctx.input(1)?;
                let plan = match (dtype, &bias) {
                    // --reference-kernels keeps the reference twin.
                    _ if ctx.reference_kernels => None,
                    (DataType::Int8, QuantBias::I32(_) | QuantBias::None) => filter
                        .constant_as::<i8>()
                        .ok()
                        .flatten()
                        .map(|w| Qs8DepthwisePlan::new(isa::detect(), &p, &q, in_shape, w, filter_shape, out_shape)),
                    (DataType::UInt8, QuantBias::I32(_) | QuantBias::None) => filter
                        .constant_as::<u8>()
                        .ok()
                        .flatten()
                        .map(|w| Qs8DepthwisePlan::new(isa::detect(), &p, &q, in_shape, w, filter_shape, out_shape)),
                    _ => None,
                }
                .filter(|plan| plan.supported());
                Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                    if let Some(plan) = &plan {
                        let (b32, _) = bias.slices(ctx)?;
                        let workers = ctx.workers;
                        if dtype == DataType::Int8 {
                            let x = ctx.input(0)?.as_slice::<i8>()?;
                            let out = ctx.output(0)?.as_slice_mut::<i8>()?;
                            let min = dw_min_rows(plan.rows(), workers.threads());
                            workers.for_each_chunk_min(out, plan.row_len(), min, |first_row, rows| {
                                with_qs8_scratch(|s| plan.run_rows(x, b32, rows, first_row, s))
                            });
                        } else {
                            let x = ctx.input(0)?.as_slice::<u8>()?;
                            let out = ctx.output(0)?.as_slice_mut::<u8>()?;
                            let min = dw_min_rows(plan.rows(), workers.threads());
                            workers.for_each_chunk_min(out, plan.row_len(), min, |first_row, rows| {
                                with_qs8_scratch(|s| plan.run_rows(x, b32, rows, first_row, s))
                            });
                        }
                        return Ok(());
                    }
                    let x = ctx.input(0)?;
                    let w = ctx.input(1)?;
                    let (b32, b64) = bias.slices(ctx)?;
                    let out = ctx.output(0)?;
                    let (xs, fs, os) = (in_shape, filter_shape, out_shape);
                    match dtype {
                        DataType::Int8 => qk::depthwise_conv2d_i8(
                            &p,
                            &q,
                            x.as_slice()?,
                            xs,
                            w.as_slice()?,
                            fs,
                            b32,
                            out.as_slice_mut()?,
                            os,
                        ),
                        DataType::UInt8 => qk::depthwise_conv2d_u8(
                            &p,
                            &q,
                            x.as_slice()?,
                            xs,
                            w.as_slice()?,
                            fs,
                            b32,
                            out.as_slice_mut()?,
                            os,
                        ),
                        _ => match b64 {
                            Some(b) => qk::depthwise_conv2d_i16x8(
                                &p,
                                &q,
                                x.as_slice()?,
                                xs,
                                w.as_slice()?,
                                fs,
                                Some(b),
                                out.as_slice_mut()?,
                                os,
                            ),
                            None => qk::depthwise_conv2d_i16x8(
                                &p,
                                &q,
                                x.as_slice()?,
                                xs,
                                w.as_slice()?,
                                fs,
                                b32,
                                out.as_slice_mut()?,
                                os,
                            ),
                        },
                    }
                    Ok(())
                }))
            }
            other => Err(OpError::Unsupported(format!("DEPTHWISE_CONV_2D on {other} input"))),
        }
    }
}

pub(crate) struct DepthwiseF32 {
    pub(crate) p: DepthwiseParams,
    pub(crate) in_shape: [usize; 4],
    pub(crate) filter_shape: [usize; 4],
    pub(crate) out_shape: [usize; 4],
    filter: FloatWeights,
    pub(crate) bias: Option<FloatWeights>,
    /// Channel-vectorised kernel, when the filter is constant.
    pub(crate) plan: Option<DepthwiseF32Plan>,
}

impl PreparedOp for DepthwiseF32 {
    fn eval(&mut self, ctx: &mut EvalContext<'_>) -> Result<(), OpError> {
        let input = ctx.input(0)?.as_slice::<f32>()?;
        let filter = self.filter.get(ctx)?;
        let bias = match &self.bias {
            Some(b) => Some(b.get(ctx)?),
            None => None,
        };
        let workers = ctx.workers;
        let out = ctx.output(0)?.as_slice_mut::<f32>()?;
        if let Some(plan) = &self.plan {
            let min = dw_min_rows(plan.rows(), workers.threads());
            workers.for_each_chunk_min(out, plan.row_len(), min, |first_row, rows| {
                plan.run_rows(input, bias, rows, first_row)
            });
            return Ok(());
        }
        depthwise_conv2d_f32(&self.p, input, self.in_shape, filter, self.filter_shape, bias, out, self.out_shape);
        Ok(())
    }
}

/// Output pixels per chunk when a depthwise conv is split across threads:
/// one chunk per thread for small outputs, where a chunk is a few
/// microseconds of work and cutting it finer ends more runs of interior
/// pixels early and pays the per-chunk setup more often (MobileNet v2's
/// 14x14x576 and 7x7x960 layers at 2 threads: int8 0.019 -> 0.016 and
/// 0.017 -> 0.014 ms, f32 0.021 -> 0.019 and 0.015 -> 0.013); larger
/// outputs keep the finer split, which lets a thread that starts late be
/// helped (no difference measured on the 56x56 and 112x112 layers).
fn dw_min_rows(rows: usize, threads: usize) -> usize {
    if rows <= SMALL_DW_OUTPUT {
        rows.div_ceil(threads.max(1))
    } else {
        1
    }
}

/// Largest output (in pixels) split one chunk per thread: 32x32.
const SMALL_DW_OUTPUT: usize = 1024;
