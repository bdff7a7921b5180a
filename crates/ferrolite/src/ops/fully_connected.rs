//! FULLY_CONNECTED: `y = x · Wᵀ + b` with weights `[units, depth]`.

use ferrolite_kernels::reference::fully_connected::fully_connected_f32;
use ferrolite_schema::BuiltinOperator as B;

use ferrolite_kernels::reference::quantized as qk;

use ferrolite_kernels::optimized::qs8::Qs8FullyConnectedPlan;
use ferrolite_kernels::optimized::{fully_connected::FullyConnectedF32Plan, isa};

use super::conv2d::with_qs8_scratch;
use ferrolite_kernels::optimized::hybrid::{HybridFullyConnectedPlan, HybridInput};
use ferrolite_kernels::reference::hybrid::{fully_connected_hybrid, HybridScratch};

use super::quantized::{weighted_params, HybridWeights, QuantBias, WeightedOp};
use super::{float_clamp, options, FloatWeights};
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{expect_dtype, EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::FullyConnected as i32, 1..=13, FullyConnected);
}

struct FullyConnected;

impl Operator for FullyConnected {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(2, 3)?;
        ctx.check_outputs(1, 1)?;
        let o = options!(ctx, FullyConnectedOptions).cloned().unwrap_or_default();
        if o.weights_format != ferrolite_schema::FullyConnectedOptionsWeightsFormat::Default {
            return Err(OpError::Unsupported(format!("weights format {:?}", o.weights_format)));
        }
        let input = ctx.input(0)?;
        let weights = ctx.input(1)?;
        let [units, depth] = weights.shape()[..] else {
            return Err(OpError::Shape(format!("weights must be 2-D [units, depth], got {:?}", weights.shape())));
        };
        let count = input.info.num_elements();
        if depth == 0 || count % depth != 0 {
            return Err(OpError::Shape(format!(
                "input {:?} does not split into rows of the weights' depth {depth}",
                input.shape()
            )));
        }
        let batches = count / depth;
        if let Some(b) = ctx.optional_input(2) {
            if b.info.num_elements() != units {
                return Err(OpError::Shape(format!("bias has {} elements, expected {units}", b.info.num_elements())));
            }
        }
        // keep_num_dims keeps the input's leading dimensions.
        let out_shape = if o.keep_num_dims {
            let mut s = input.shape().to_vec();
            if let Some(last) = s.last_mut() {
                *last = units;
            }
            s
        } else {
            vec![batches, units]
        };
        ctx.set_output_shape(0, out_shape)?;
        match input.dtype() {
            DataType::Float32 if HybridWeights::detect(ctx, 0, 1)?.is_some() => {
                let hw = HybridWeights::detect(ctx, 0, 1)?.ok_or(OpError::Value("hybrid weights".into()))?;
                let clamp = float_clamp(o.fused_activation_function)?;
                if hw.scales.len() != 1 && hw.scales.len() != units {
                    return Err(OpError::Shape(format!("{} weight scales for {units} units", hw.scales.len())));
                }
                let bias = match ctx.optional_input(2) {
                    Some(_) => Some(FloatWeights::prepare(ctx, 2)?),
                    None => None,
                };
                let asymmetric = o.asymmetric_quantize_inputs;
                // Constant int8 weights: packed int16 GEMM, bit-exact with the
                // reference (--reference-kernels keeps the reference).
                let plan = match ctx.reference_kernels {
                    true => None,
                    false => weights.constant_as::<i8>().ok().flatten().map(|w| {
                        HybridFullyConnectedPlan::new(isa::detect(), w, &hw.scales, units, depth, asymmetric, clamp)
                    }),
                }
                .filter(|plan| plan.supported());
                let mut scratch = HybridScratch::new();
                let mut quantized = HybridInput::new();
                Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                    let x = ctx.input(0)?.as_slice::<f32>()?;
                    let b = match &bias {
                        Some(b) => Some(b.get(ctx)?),
                        None => None,
                    };
                    if let Some(plan) = &plan {
                        // Quantise every row once, then split the batch rows.
                        plan.quantize(x, batches, &mut quantized);
                        let q = &quantized;
                        let workers = ctx.workers;
                        let y = ctx.output(0)?.as_slice_mut::<f32>()?;
                        let y =
                            y.get_mut(..batches * units).ok_or_else(|| OpError::Shape("output too small".into()))?;
                        if batches == 1 && workers.threads() > 1 {
                            // A GEMV: split the output units, 16 at a time.
                            workers.for_each_chunk(y, 16, |first, cols| {
                                with_qs8_scratch(|s| plan.run_cols(q, b, cols, first * 16, s))
                            });
                            return Ok(());
                        }
                        workers.for_each_chunk(y, units, |first, rows| {
                            with_qs8_scratch(|s| plan.run_rows(q, b, rows, first, s))
                        });
                        return Ok(());
                    }
                    let w = ctx.input(hw.input)?.as_slice::<i8>()?;
                    let y = ctx.output(0)?.as_slice_mut::<f32>()?;
                    fully_connected_hybrid(
                        x,
                        w,
                        &hw.scales,
                        b,
                        y,
                        batches,
                        depth,
                        units,
                        asymmetric,
                        clamp,
                        &mut scratch,
                    );
                    Ok(())
                }))
            }
            DataType::Float32 => {
                expect_dtype("output", ctx.output_dtype(0)?, &[DataType::Float32])?;
                let clamp = float_clamp(o.fused_activation_function)?;
                let w = FloatWeights::prepare(ctx, 1)?;
                let bias = match ctx.optional_input(2) {
                    Some(_) => Some(FloatWeights::prepare(ctx, 2)?),
                    None => None,
                };
                // Constant weights: packed once for the GEMM kernel (read in
                // place for one batch row, or when asked not to pack), split
                // over the worker pool by batch rows.
                let pack = ctx.pack_weights;
                if let Some(plan) = w
                    .at_prepare(ctx)
                    .map(|wt| FullyConnectedF32Plan::new(isa::detect(), wt, units, depth, clamp, batches, pack))
                {
                    return Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                        let x = ctx.input(0)?.as_slice::<f32>()?;
                        let wt: &[f32] = if plan.in_place() { w.get(ctx)? } else { &[] };
                        let b = match &bias {
                            Some(b) => Some(b.get(ctx)?),
                            None => None,
                        };
                        let workers = ctx.workers;
                        let y = ctx.output(0)?.as_slice_mut::<f32>()?;
                        if batches == 1 && plan.in_place() && workers.threads() > 1 {
                            // A GEMV: split the output units across threads,
                            // 16 at a time, so each unit meets the same
                            // micro-kernel column group as with one thread
                            // (the same sums, bit for bit).
                            workers.for_each_chunk(&mut y[..units], 16, |first, cols| {
                                plan.run_cols(x, wt, b, cols, first * 16);
                            });
                            return Ok(());
                        }
                        // Whole 6-row tiles per chunk: each row meets the
                        // micro-kernel it meets with one thread (a lone last
                        // row takes the GEMV kernel, which sums in another
                        // order), so the outputs do not depend on the threads.
                        workers.for_each_gemm_rows(y, units, |first, rows| {
                            let n = rows.len() / units.max(1);
                            plan.run(&x[first * depth..(first + n) * depth], wt, b, rows, n);
                        });
                        Ok(())
                    }));
                }
                Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                    let x = ctx.input(0)?.as_slice::<f32>()?;
                    let w = w.get(ctx)?;
                    let b = match &bias {
                        Some(b) => Some(b.get(ctx)?),
                        None => None,
                    };
                    let y = ctx.output(0)?.as_slice_mut::<f32>()?;
                    fully_connected_f32(x, w, b, y, batches, depth, units, clamp);
                    Ok(())
                }))
            }
            DataType::Int8 | DataType::Int16 | DataType::UInt8 if weights.dtype() != DataType::Float32 => {
                let q = weighted_params(ctx, 0, 1, o.fused_activation_function, WeightedOp::FullyConnected)?;
                let bias = QuantBias::prepare(ctx, 2)?;
                let dtype = input.dtype();
                // 8-bit FC with constant weights: packed int16 GEMM/GEMV,
                // bit-exact with the reference (same f64 requantisation).
                let plan = match (dtype, weights.dtype(), &bias) {
                    // --reference-kernels keeps the reference twin.
                    _ if ctx.reference_kernels => None,
                    (DataType::Int8, DataType::Int8, QuantBias::I32(_) | QuantBias::None) => weights
                        .constant_as::<i8>()
                        .ok()
                        .flatten()
                        .map(|w| Qs8FullyConnectedPlan::new(isa::detect(), &q, w, units, depth)),
                    (DataType::UInt8, DataType::UInt8, QuantBias::I32(_) | QuantBias::None) => weights
                        .constant_as::<u8>()
                        .ok()
                        .flatten()
                        .map(|w| Qs8FullyConnectedPlan::new(isa::detect(), &q, w, units, depth)),
                    _ => None,
                }
                .filter(|plan| plan.supported());
                Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                    if let Some(plan) = &plan {
                        let (b32, _) = bias.slices(ctx)?;
                        let workers = ctx.workers;
                        if dtype == DataType::Int8 {
                            let x = ctx.input(0)?.as_slice::<i8>()?;
                            let y = ctx.output(0)?.as_slice_mut::<i8>()?;
                            if batches == 1 && workers.threads() > 1 {
                                // A GEMV: split the output units, 16 at a time.
                                workers.for_each_chunk(&mut y[..units], 16, |first, cols| {
                                    with_qs8_scratch(|s| plan.run_cols(x, b32, cols, first * 16, s))
                                });
                                return Ok(());
                            }
                            workers.for_each_chunk(&mut y[..batches * units], units, |first, rows| {
                                with_qs8_scratch(|s| plan.run_rows(x, b32, rows, first, s))
                            });
                        } else {
                            let x = ctx.input(0)?.as_slice::<u8>()?;
                            let y = ctx.output(0)?.as_slice_mut::<u8>()?;
                            if batches == 1 && workers.threads() > 1 {
                                // A GEMV: split the output units, 16 at a time.
                                workers.for_each_chunk(&mut y[..units], 16, |first, cols| {
                                    with_qs8_scratch(|s| plan.run_cols(x, b32, cols, first * 16, s))
                                });
                                return Ok(());
                            }
                            workers.for_each_chunk(&mut y[..batches * units], units, |first, rows| {
                                with_qs8_scratch(|s| plan.run_rows(x, b32, rows, first, s))
                            });
                        }
                        return Ok(());
                    }
                    let x = ctx.input(0)?;
                    let w = ctx.input(1)?;
                    let (b32, b64) = bias.slices(ctx)?;
                    let out = ctx.output(0)?;
                    match dtype {
                        DataType::Int8 => qk::fully_connected_i8(
                            &q,
                            x.as_slice()?,
                            w.as_slice()?,
                            b32,
                            out.as_slice_mut()?,
                            batches,
                            depth,
                            units,
                        ),
                        DataType::UInt8 => qk::fully_connected_u8(
                            &q,
                            x.as_slice()?,
                            w.as_slice()?,
                            b32,
                            out.as_slice_mut()?,
                            batches,
                            depth,
                            units,
                        ),
                        _ => match b64 {
                            Some(b) => qk::fully_connected_i16x8(
                                &q,
                                x.as_slice()?,
                                w.as_slice()?,
                                Some(b),
                                out.as_slice_mut()?,
                                batches,
                                depth,
                                units,
                            ),
                            None => qk::fully_connected_i16x8(
                                &q,
                                x.as_slice()?,
                                w.as_slice()?,
                                b32,
                                out.as_slice_mut()?,
                                batches,
                                depth,
                                units,
                            ),
                        },
                    }
                    Ok(())
                }))
            }
            other => Err(OpError::Unsupported(format!("FULLY_CONNECTED on {other} input"))),
        }
    }
}
