//! CONV_2D: 2-D convolution, NHWC input, OHWI filter, optional bias.

use ferrolite_kernels::reference::conv::{conv2d_f32, Conv2dParams};
use ferrolite_kernels::reference::padding::Padding2d;
use ferrolite_schema::BuiltinOperator as B;

use ferrolite_kernels::reference::quantized::{self as q, ConvQuantParams};

use ferrolite_kernels::optimized::hybrid::{HybridConvPlan, HybridInput};
use ferrolite_kernels::reference::hybrid::{conv2d_hybrid, conv2d_hybrid_per_channel, HybridScratch};

use super::quantized::{weighted_params, HybridWeights, OutputRange, QuantBias, WeightedOp};
use ferrolite_kernels::optimized::qs8::{Qs8ConvPlan, Qs8Scratch};
use ferrolite_kernels::optimized::{conv::Conv2dF32Plan, isa};

use super::{float_clamp, options, padding, positive, shape4, with_scratch, FloatWeights};
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{expect_dtype, EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::Conv2d as i32, 1..=8, Conv2d);
}

struct Conv2d;

/// Shapes and parameters shared by every conv kernel.
#[derive(Clone, Copy)]
pub(crate) struct ConvGeometry {
    pub in_shape: [usize; 4],
    pub filter_shape: [usize; 4],
    pub out_shape: [usize; 4],
    pub stride_h: usize,
    pub stride_w: usize,
    pub dilation_h: usize,
    pub dilation_w: usize,
    pub pad_top: usize,
    pub pad_left: usize,
}

impl Operator for Conv2d {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(2, 3)?;
        ctx.check_outputs(1, 1)?;
        let o = options!(ctx, Conv2DOptions).cloned().unwrap_or_default();
        let input = ctx.input(0)?;
        let filter = ctx.input(1)?;
        let in_shape = shape4(input.shape(), "input")?;
        let filter_shape = shape4(filter.shape(), "filter")?;
        let [batches, in_h, in_w, in_c] = in_shape;
        let [out_c, kh, kw, filter_in_c] = filter_shape;
        if filter_in_c == 0 || in_c % filter_in_c != 0 {
            return Err(OpError::Shape(format!(
                "input has {in_c} channels, not a multiple of the filter's {filter_in_c}"
            )));
        }
        let groups = in_c / filter_in_c;
        if out_c % groups != 0 {
            return Err(OpError::Shape(format!("{out_c} output channels do not split into {groups} groups")));
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
        let geometry = ConvGeometry {
            in_shape,
            filter_shape,
            out_shape,
            stride_h,
            stride_w,
            dilation_h,
            dilation_w,
            pad_top: win.padding.top,
            pad_left: win.padding.left,
        };

        match input.dtype() {
            DataType::Float32 if HybridWeights::detect(ctx, 0, 1)?.is_some() => {
                let hw = HybridWeights::detect(ctx, 0, 1)?.ok_or(OpError::Value("hybrid weights".into()))?;
                let clamp = float_clamp(o.fused_activation_function)?;
                if hw.scales.len() != 1 && hw.scales.len() != out_c {
                    return Err(OpError::Shape(format!("{} filter scales for {out_c} channels", hw.scales.len())));
                }
                // TFLite takes the per-channel path when the scales differ
                // or the conv is grouped; otherwise the per-tensor one.
                let per_channel = groups != 1 || hw.scales.iter().any(|&s| s != hw.scales[0]);
                let bias = match ctx.optional_input(2) {
                    Some(_) => Some(FloatWeights::prepare(ctx, 2)?),
                    None => None,
                };
                let p = geometry.params(clamp);
                let g = geometry;
                // Constant int8 weights: packed once for the int16 GEMM
                // (bit-exact with the reference hybrid kernels).
                let plan = match ctx.reference_kernels {
                    // --reference-kernels keeps the reference twin.
                    true => None,
                    false => filter.constant_as::<i8>().ok().flatten().map(|w| {
                        HybridConvPlan::new(
                            isa::detect(),
                            &p,
                            in_shape,
                            w,
                            filter_shape,
                            &hw.scales,
                            per_channel,
                            out_shape,
                        )
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
                    if let Some(plan) = &plan {
                        // Quantise whole images once (a 1x1 conv only finds
                        // their parameters, then quantises row blocks just
                        // before their GEMM), then split output pixels.
                        let workers = ctx.workers;
                        let par = &|n, task: &(dyn Fn(usize) + Sync)| workers.run(n, task);
                        match plan.banded() {
                            true => plan.quantize_params_par(x, &mut quantized, ctx.input_range(0), par),
                            false => plan.quantize_par(x, &mut quantized, par),
                        }
                        let q = &quantized;
                        let len = plan.rows() * plan.row_len();
                        // The output's range, for the hybrid op reading it next.
                        let range = OutputRange::new(ctx);
                        let y = ctx.output(0)?.as_slice_mut::<f32>()?;
                        let whole = y.len() == len;
                        let y = y.get_mut(..len).ok_or_else(|| OpError::Shape("output too small".into()))?;
                        workers.for_each_gemm_rows_even(y, plan.row_len(), |first_row, rows| {
                            range.observe(|observe| {
                                with_qs8_scratch(|s| match plan.banded() {
                                    true => plan.run_rows_quantizing(x, q, b, rows, first_row, s, observe),
                                    false => plan.run_rows(q, b, rows, first_row, s, observe),
                                })
                            })
                        });
                        range.record(ctx, whole);
                        return Ok(());
                    }
                    let w = ctx.input(hw.input)?.as_slice::<i8>()?;
                    let y = ctx.output(0)?.as_slice_mut::<f32>()?;
                    if per_channel {
                        conv2d_hybrid_per_channel(
                            &p,
                            x,
                            g.in_shape,
                            w,
                            g.filter_shape,
                            &hw.scales,
                            b,
                            y,
                            g.out_shape,
                            &mut scratch,
                        );
                    } else {
                        conv2d_hybrid(
                            &p,
                            x,
                            g.in_shape,
                            w,
                            g.filter_shape,
                            hw.scales[0],
                            b,
                            y,
                            g.out_shape,
                            &mut scratch,
                        );
                    }
                    Ok(())
                }))
            }
            DataType::Float32 => {
                expect_dtype("output", ctx.output_dtype(0)?, &[DataType::Float32])?;
                let clamp = float_clamp(o.fused_activation_function)?;
                let filter = FloatWeights::prepare(ctx, 1)?;
                let bias = match ctx.optional_input(2) {
                    Some(_) => Some(FloatWeights::prepare(ctx, 2)?),
                    None => None,
                };
                // Constant weights are packed once for the fast GEMM path
                // (or read in place: see `InterpreterOptions::pack_weights`).
                let pack = ctx.pack_weights;
                let plan = filter
                    .at_prepare(ctx)
                    .map(|w| {
                        let p = geometry.params(clamp);
                        Conv2dF32Plan::new(isa::detect(), &p, in_shape, w, filter_shape, out_shape, pack)
                    })
                    .filter(|p| p.supported());
                let filter = if plan.as_ref().is_some_and(|p| !p.in_place()) { None } else { Some(filter) };
                Ok(Box::new(ConvF32 { g: geometry, clamp, filter, bias, plan }))
            }
            DataType::Int8 | DataType::Int16 | DataType::UInt8 => {
                let q = weighted_params(ctx, 0, 1, o.fused_activation_function, WeightedOp::Conv)?;
                let bias = QuantBias::prepare(ctx, 2)?;
                // 8-bit convs with constant weights run the packed int16 GEMM
                // (bit-exact with the reference kernels).
                let p = geometry.params(ferrolite_kernels::activation::ClampF32::NONE);
                let plan = match (input.dtype(), &bias) {
                    // --reference-kernels keeps the reference twin.
                    _ if ctx.reference_kernels => None,
                    (DataType::Int8, QuantBias::I32(_) | QuantBias::None) => filter
                        .constant_as::<i8>()
                        .ok()
                        .flatten()
                        .map(|w| Qs8ConvPlan::new(isa::detect(), &p, &q, in_shape, w, filter_shape, out_shape)),
                    (DataType::UInt8, QuantBias::I32(_) | QuantBias::None) => filter
                        .constant_as::<u8>()
                        .ok()
                        .flatten()
                        .map(|w| Qs8ConvPlan::new(isa::detect(), &p, &q, in_shape, w, filter_shape, out_shape)),
                    _ => None,
                }
                .filter(|plan| plan.supported());
                Ok(Box::new(ConvQuant { g: geometry, q, bias, dtype: input.dtype(), plan }))
            }
            other => Err(OpError::Unsupported(format!("CONV_2D on {other} input"))),
        }
    }
}

impl ConvGeometry {
    fn params(&self, clamp: ferrolite_kernels::activation::ClampF32) -> Conv2dParams {
        Conv2dParams {
            stride_h: self.stride_h,
            stride_w: self.stride_w,
            dilation_h: self.dilation_h,
            dilation_w: self.dilation_w,
            pad_top: self.pad_top,
            pad_left: self.pad_left,
            clamp,
        }
    }
}

struct ConvQuant {
    g: ConvGeometry,
    q: ConvQuantParams,
    bias: QuantBias,
    dtype: DataType,
    /// Packed int16 GEMM for 8-bit convs with constant weights.
    plan: Option<Qs8ConvPlan>,
}

thread_local! {
    /// Per-thread work buffers of the 8-bit kernels (im2col rows, sums).
    static SCRATCH_QS8: std::cell::RefCell<Qs8Scratch> = std::cell::RefCell::new(Qs8Scratch::new());
}

/// Run `f` with this thread's 8-bit kernel scratch.
pub(crate) fn with_qs8_scratch<R>(f: impl FnOnce(&mut Qs8Scratch) -> R) -> R {
    SCRATCH_QS8.with(|s| f(&mut s.borrow_mut()))
}

impl PreparedOp for ConvQuant {
    fn eval(&mut self, ctx: &mut EvalContext<'_>) -> Result<(), OpError> {
        if let Some(plan) = &self.plan {
            let (b32, _) = self.bias.slices(ctx)?;
            let workers = ctx.workers;
            match self.dtype {
                DataType::Int8 => {
                    let x = ctx.input(0)?.as_slice::<i8>()?;
                    let out = ctx.output(0)?.as_slice_mut::<i8>()?;
                    workers.for_each_gemm_rows_even(out, plan.row_len(), |first_row, rows| {
                        with_qs8_scratch(|s| plan.run_rows(x, b32, rows, first_row, s))
                    });
                }
                _ => {
                    let x = ctx.input(0)?.as_slice::<u8>()?;
                    let out = ctx.output(0)?.as_slice_mut::<u8>()?;
                    workers.for_each_gemm_rows_even(out, plan.row_len(), |first_row, rows| {
                        with_qs8_scratch(|s| plan.run_rows(x, b32, rows, first_row, s))
                    });
                }
            }
            return Ok(());
        }
        let g = &self.g;
        let p = g.params(ferrolite_kernels::activation::ClampF32::NONE);
        let x = ctx.input(0)?;
        let w = ctx.input(1)?;
        let (b32, b64) = self.bias.slices(ctx)?;
        let out = ctx.output(0)?;
        match self.dtype {
            DataType::Int8 => q::conv2d_i8(
                &p,
                &self.q,
                x.as_slice()?,
                g.in_shape,
                w.as_slice()?,
                g.filter_shape,
                b32,
                out.as_slice_mut()?,
                g.out_shape,
            ),
            DataType::UInt8 => q::conv2d_u8(
                &p,
                &self.q,
                x.as_slice()?,
                g.in_shape,
                w.as_slice()?,
                g.filter_shape,
                b32,
                out.as_slice_mut()?,
                g.out_shape,
            ),
            _ => match b64 {
                Some(b) => q::conv2d_i16x8(
                    &p,
                    &self.q,
                    x.as_slice()?,
                    g.in_shape,
                    w.as_slice()?,
                    g.filter_shape,
                    Some(b),
                    out.as_slice_mut()?,
                    g.out_shape,
                ),
                None => q::conv2d_i16x8(
                    &p,
                    &self.q,
                    x.as_slice()?,
                    g.in_shape,
                    w.as_slice()?,
                    g.filter_shape,
                    b32,
                    out.as_slice_mut()?,
                    g.out_shape,
                ),
            },
        }
        Ok(())
    }
}

pub(crate) struct ConvF32 {
    g: ConvGeometry,
    clamp: ferrolite_kernels::activation::ClampF32,
    /// The weights as the model has them: kept when there is no plan, or
    /// the plan reads them in place.
    pub(crate) filter: Option<FloatWeights>,
    pub(crate) bias: Option<FloatWeights>,
    pub(crate) plan: Option<Conv2dF32Plan>,
}

impl PreparedOp for ConvF32 {
    fn eval(&mut self, ctx: &mut EvalContext<'_>) -> Result<(), OpError> {
        let g = &self.g;
        let input = ctx.input(0)?.as_slice::<f32>()?;
        let bias = match &self.bias {
            Some(b) => Some(b.get(ctx)?),
            None => None,
        };
        let workers = ctx.workers;
        match (&self.plan, &self.filter) {
            (Some(plan), filter) => {
                let filter: &[f32] = match filter {
                    Some(f) if plan.in_place() => f.get(ctx)?,
                    _ => &[],
                };
                let out = ctx.output(0)?.as_slice_mut::<f32>()?;
                if plan.is_gemv() && workers.threads() > 1 {
                    // One output pixel: split its channels, not the one
                    // row, 16 at a time (the same column groups, so the
                    // same sums, as with one thread).
                    workers.for_each_chunk(out, 16, |first, cols| {
                        plan.run_gemv_cols(input, filter, bias, cols, first * 16);
                    });
                } else {
                    let run = |first_row, rows: &mut [f32]| {
                        with_scratch(|scratch| plan.run_rows(input, filter, bias, rows, first_row, scratch))
                    };
                    if plan.in_place() {
                        // The in-place GEMM pairs rows in its reductions:
                        // whole tiles keep the pairs of one thread.
                        workers.for_each_gemm_rows(out, plan.row_len(), run);
                    } else {
                        workers.for_each_gemm_rows_even(out, plan.row_len(), run);
                    }
                }
            }
            (None, Some(filter)) => {
                let filter = filter.get(ctx)?;
                let out = ctx.output(0)?.as_slice_mut::<f32>()?;
                conv2d_f32(&g.params(self.clamp), input, g.in_shape, filter, g.filter_shape, bias, out, g.out_shape);
            }
            (None, None) => return Err(OpError::Value("conv has neither a plan nor weights".into())),
        }
        Ok(())
    }
}
