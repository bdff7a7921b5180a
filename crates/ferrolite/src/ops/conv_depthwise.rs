//! A float CONV_2D fused with the DEPTHWISE_CONV_2D that reads its output
//! (MobileNet's expansion + depthwise pairs).
//!
//! Unfused, the conv writes its whole output (4.8 MB for MobileNet v2's
//! 112×112×96 expansion) and the depthwise conv reads it back: more than
//! the L2 cache holds, so both pass through L3 or memory. Fused, the conv
//! computes a band of a few rows of its output into a small per-thread
//! buffer (about [`BAND_BYTES`]) and the depthwise conv consumes the band
//! at once, while it is still in L2. Rows the next band needs again (the
//! depthwise filter's overlap) are moved to the front of the buffer, not
//! recomputed, so each conv output row is computed once per thread.
//!
//! The interpreter fuses a pair when the conv's output has no other
//! reader and is not a graph output, the depthwise conv runs right after
//! it, and both have planned kernels ([`try_fuse`]); the fused node then
//! reads the conv's inputs followed by the depthwise conv's. Results equal
//! the unfused kernels' up to float rounding (the conv's GEMM may group
//! pixels into different tiles).

use std::cell::RefCell;

use ferrolite_kernels::optimized::conv::Conv2dF32Plan;
use ferrolite_kernels::optimized::depthwise::DepthwiseF32Plan;

use super::conv2d::ConvF32;
use super::depthwise_conv2d::DepthwiseF32;
use super::{with_scratch, FloatWeights};
use crate::error::OpError;
use crate::op::{EvalContext, PreparedOp};

/// Target size of one band of conv output rows: half of a 512 KiB L2.
const BAND_BYTES: usize = 256 * 1024;

/// Smallest intermediate worth fusing. Smaller ones stay in L2 anyway, and
/// with several threads each thread's first band recomputes conv rows,
/// which on a 14×14 image costs more than the cache saves.
const MIN_FUSED_BYTES: usize = 1024 * 1024;

thread_local! {
    /// Per-thread band buffer, reused across invokes.
    static BAND_F32: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Run `f` with this thread's band buffer (also the hybrid depthwise
/// conv's quantised input rows).
pub(crate) fn with_band_f32<R>(f: impl FnOnce(&mut Vec<f32>) -> R) -> R {
    BAND_F32.with(|band| f(&mut band.borrow_mut()))
}

pub(crate) struct ConvDepthwiseF32 {
    conv: ConvF32,
    dw: DepthwiseF32,
}

/// What one invoke's bands read.
struct BandInputs<'a> {
    conv: &'a Conv2dF32Plan,
    dw: &'a DepthwiseF32Plan,
    x: &'a [f32],
    filter: &'a [f32],
    conv_bias: Option<&'a [f32]>,
    dw_bias: Option<&'a [f32]>,
}

/// If `producer` is a float conv with a planned kernel and `consumer` a
/// float depthwise conv with a channel-vectorised one, replace `consumer`
/// by the fused pair (taking `producer`) and return true. `conv_inputs`
/// is the conv's input count: the fused node's inputs are the conv's, then
/// the depthwise conv's.
pub(crate) fn try_fuse(
    producer: &mut Option<Box<dyn PreparedOp>>,
    consumer: &mut Option<Box<dyn PreparedOp>>,
    conv_inputs: usize,
) -> bool {
    let fits = |p: &dyn PreparedOp, c: &dyn PreparedOp| {
        let p: &dyn std::any::Any = p;
        let c: &dyn std::any::Any = c;
        match (p.downcast_ref::<ConvF32>(), c.downcast_ref::<DepthwiseF32>()) {
            (Some(conv), Some(dw)) => {
                let (Some(cp), Some(dp)) = (&conv.plan, &dw.plan) else { return false };
                // A one-pixel conv runs as a GEMV split by channels: nothing
                // to band.
                dp.fast()
                    && cp.rows() > 1
                    && cp.rows() == dw.in_shape[..3].iter().product::<usize>()
                    && dw.in_shape.iter().product::<usize>() * 4 >= MIN_FUSED_BYTES
            }
            _ => false,
        }
    };
    match (producer.as_deref(), consumer.as_deref()) {
        (Some(p), Some(c)) if fits(p, c) => {}
        _ => return false,
    }
    let (Some(p), Some(c)) = (producer.take(), consumer.take()) else { return false };
    let p: Box<dyn std::any::Any> = p;
    let c: Box<dyn std::any::Any> = c;
    let (Ok(conv), Ok(mut dw)) = (p.downcast::<ConvF32>(), c.downcast::<DepthwiseF32>()) else {
        unreachable!("types checked just above")
    };
    // The depthwise conv's weights now follow the conv's inputs.
    if let Some(FloatWeights::Input(i)) = &mut dw.bias {
        *i += conv_inputs;
    }
    *consumer = Some(Box::new(ConvDepthwiseF32 { conv: *conv, dw: *dw }));
    true
}

impl ConvDepthwiseF32 {
    /// Depthwise output image rows `first ..` (as many as `rows` holds),
    /// band by band through this thread's `band` buffer.
    fn run_chunk(
        &self,
        k: &BandInputs<'_>,
        first: usize,
        rows: &mut [f32],
        band: &mut Vec<f32>,
        scratch: &mut Vec<f32>,
    ) {
        let [_, in_h, in_w, _] = self.dw.in_shape;
        let fill = |b: usize, conv_rows: std::ops::Range<usize>, dst: &mut [f32]| {
            k.conv.run_rows(k.x, k.filter, k.conv_bias, dst, (b * in_h + conv_rows.start) * in_w, scratch)
        };
        let band_rows = k.dw.band_rows(BAND_BYTES / 4);
        k.dw.run_bands(band_rows, &k.dw.epilogue(k.dw_bias), rows, first, band, fill, |_| {});
    }
}

impl PreparedOp for ConvDepthwiseF32 {
    fn eval(&mut self, ctx: &mut EvalContext<'_>) -> Result<(), OpError> {
        let (Some(conv), Some(dw)) = (&self.conv.plan, &self.dw.plan) else {
            return Err(OpError::Value("fused conv without its kernels".into()));
        };
        let filter: &[f32] = match &self.conv.filter {
            Some(f) if conv.in_place() => f.get(ctx)?,
            _ => &[],
        };
        let k = BandInputs {
            conv,
            dw,
            x: ctx.input(0)?.as_slice::<f32>()?,
            filter,
            conv_bias: self.conv.bias.as_ref().map(|b| b.get(ctx)).transpose()?,
            dw_bias: self.dw.bias.as_ref().map(|b| b.get(ctx)).transpose()?,
        };
        let workers = ctx.workers;
        let out = ctx.output(0)?.as_slice_mut::<f32>()?;
        let [batches, _, out_w, out_c] = self.dw.out_shape;
        // One chunk of image rows per thread: each chunk recomputes the
        // conv rows its first band shares with the previous chunk.
        let per_thread = (batches * self.dw.out_shape[1]).div_ceil(workers.threads()).max(1);
        workers.for_each_chunk_min(out, out_w * out_c, per_thread, |first, rows| {
            with_band_f32(|band| with_scratch(|scratch| self.run_chunk(&k, first, rows, band, scratch)))
        });
        Ok(())
    }
}
