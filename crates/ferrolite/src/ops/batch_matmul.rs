//! BATCH_MATMUL: matrix products over broadcast batch dimensions, with
//! optional transposition (adj_x / adj_y) of either side.
//!
//! Float products run on the packed GEMM (`optimized::matmul`), whole
//! output matrices per thread, where every output matrix has its own LHS
//! and its own or a shared RHS; the reference's triple loop took 40x
//! LiteRT's time on 4 products of 64x64 matrices.

use ferrolite_kernels::optimized::isa;
use ferrolite_kernels::optimized::matmul::{matmul_f32_packed, matmul_i8_packed, MatmulI8Scratch, MatmulScratch};
use ferrolite_kernels::reference::batch_matmul::batch_matmul_f32;
use ferrolite_kernels::reference::elementwise::broadcast_shape;
use ferrolite_kernels::reference::quantized::{batch_matmul_quantized, BatchMatmulParams};
use ferrolite_schema::BuiltinOperator as B;

use super::quantized::{input_scale_zp, output_scale_zp};

use ferrolite_kernels::reference::hybrid::{batch_matmul_hybrid, HybridScratch};

use super::quantized::HybridWeights;
use super::{options, FloatWeights};
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::BatchMatmul as i32, 1..=i32::MAX, BatchMatmul);
}

struct BatchMatmul;

impl Operator for BatchMatmul {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(2, 2)?;
        ctx.check_outputs(1, 1)?;
        let o = options!(ctx, BatchMatMulOptions).cloned().unwrap_or_default();
        let (lhs, rhs) = (ctx.input(0)?, ctx.input(1)?);
        let (ls, rs) = (lhs.shape().to_vec(), rhs.shape().to_vec());
        if ls.len() < 2 || rs.len() < 2 || ls.len() > 5 || rs.len() > 5 {
            return Err(OpError::Shape(format!("operands must have rank 2 to 5, got {ls:?} and {rs:?}")));
        }
        let (m, k1) = if o.adj_x { (ls[ls.len() - 1], ls[ls.len() - 2]) } else { (ls[ls.len() - 2], ls[ls.len() - 1]) };
        let (k2, n) = if o.adj_y { (rs[rs.len() - 1], rs[rs.len() - 2]) } else { (rs[rs.len() - 2], rs[rs.len() - 1]) };
        if k1 != k2 {
            return Err(OpError::Shape(format!("inner dimensions differ: {ls:?} x {rs:?}")));
        }
        let mut out_shape = broadcast_shape(&ls[..ls.len() - 2], &rs[..rs.len() - 2])
            .ok_or_else(|| OpError::Shape(format!("batch dimensions of {ls:?} and {rs:?} do not broadcast")))?;
        out_shape.extend([m, n]);
        ctx.set_output_shape(0, out_shape.clone())?;
        let (adj_x, adj_y) = (o.adj_x, o.adj_y);
        match lhs.dtype() {
            // Dynamic-range: constant int8 RHS with one scale; TFLite
            // quantises each LHS row on the fly (its hybrid kernel).
            DataType::Float32 if HybridWeights::detect(ctx, 0, 1)?.is_some() => {
                let hw = HybridWeights::detect(ctx, 0, 1)?.ok_or(OpError::Value("hybrid weights".into()))?;
                let [scale] = hw.scales[..] else {
                    return Err(OpError::Unsupported("hybrid BATCH_MATMUL with per-channel weight scales".into()));
                };
                let asymmetric = o.asymmetric_quantize_inputs;
                let mut scratch = HybridScratch::new();
                Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                    let l = ctx.input(0)?.as_slice::<f32>()?;
                    let r = ctx.input(hw.input)?.as_slice::<i8>()?;
                    let y = ctx.output(0)?.as_slice_mut::<f32>()?;
                    batch_matmul_hybrid(l, &ls, r, &rs, scale, adj_x, adj_y, asymmetric, y, &out_shape, &mut scratch);
                    Ok(())
                }))
            }
            DataType::Float32 => {
                let rhs_w = FloatWeights::prepare(ctx, 1)?;
                // The GEMM kernel where each output matrix has its own LHS
                // and either its own RHS or one shared by all (weights):
                // other batch broadcasts take the reference.
                let batch = |s: &[usize]| s[..s.len() - 2].iter().product::<usize>();
                let batches = batch(&out_shape);
                let shared_rhs = batch(&rs) == 1;
                let fast = !ctx.reference_kernels && batch(&ls) == batches && (shared_rhs || batch(&rs) == batches);
                let level = isa::detect();
                let k = k1;
                Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                    let l = ctx.input(0)?.as_slice::<f32>()?;
                    let r = rhs_w.get(ctx)?;
                    let workers = ctx.workers;
                    let y = ctx.output(0)?.as_slice_mut::<f32>()?;
                    let rhs_len = if shared_rhs { k * n } else { batches * k * n };
                    let fits = l.len() == batches * m * k && r.len() == rhs_len && y.len() == batches * m * n;
                    if !fast || !fits || m * n == 0 {
                        batch_matmul_f32(l, &ls, r, &rs, adj_x, adj_y, y, &out_shape);
                        return Ok(());
                    }
                    // Whole output matrices per thread.
                    workers.for_each_chunk(y, m * n, |first, chunk| {
                        let mut scratch = MatmulScratch::default();
                        // A shared RHS is packed once per chunk.
                        if shared_rhs {
                            scratch.pack_rhs(&r[..k * n], k, n, adj_y);
                        }
                        for (i, o) in chunk.chunks_exact_mut(m * n).enumerate() {
                            let b = first + i;
                            let lb = &l[b * m * k..(b + 1) * m * k];
                            if !shared_rhs {
                                scratch.pack_rhs(&r[b * k * n..(b + 1) * k * n], k, n, adj_y);
                            }
                            matmul_f32_packed(level, m, lb, adj_x, &mut scratch, o);
                        }
                    });
                    Ok(())
                }))
            }
            // TFLite's reference int8 / int16 path: exact integer sums,
            // one per-tensor requantisation, no fused activation.
            t @ (DataType::Int8 | DataType::Int16) => {
                if rhs.dtype() != t || ctx.output_dtype(0)? != t {
                    return Err(OpError::Unsupported(format!(
                        "BATCH_MATMUL on {t} x {} -> {}",
                        rhs.dtype(),
                        ctx.output_dtype(0)?
                    )));
                }
                let (sl, zl) = input_scale_zp(&lhs, "the lhs")?;
                let (sr, zr) = input_scale_zp(&rhs, "the rhs")?;
                let (so, zo) = output_scale_zp(ctx.output(0)?)?;
                if t == DataType::Int16 && (zl != 0 || zr != 0 || zo != 0) {
                    return Err(OpError::Value(format!(
                        "int16 BATCH_MATMUL needs zero points of 0, got {zl}, {zr}, {zo}"
                    )));
                }
                let p = BatchMatmulParams::new(sl, zl, sr, zr, so, zo)
                    .ok_or_else(|| OpError::Value("quantisation parameters TFLite rejects for BATCH_MATMUL".into()))?;
                macro_rules! typed {
                    ($T:ty) => {
                        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                            let l = ctx.input(0)?.as_slice::<$T>()?;
                            let r = ctx.input(1)?.as_slice::<$T>()?;
                            let y = ctx.output(0)?.as_slice_mut::<$T>()?;
                            batch_matmul_quantized(&p, l, &ls, r, &rs, adj_x, adj_y, y, &out_shape);
                            Ok(())
                        }))
                    };
                }
                // int8 where each output matrix has its own LHS and its own
                // or a shared RHS: the packed int16 GEMM, whole matrices
                // per thread (other batch broadcasts take the reference).
                let batch = |s: &[usize]| s[..s.len() - 2].iter().product::<usize>();
                let batches = batch(&out_shape);
                let shared_rhs = batch(&rs) == 1;
                let fast = t == DataType::Int8
                    && !ctx.reference_kernels
                    && batch(&ls) == batches
                    && (shared_rhs || batch(&rs) == batches);
                if fast {
                    let level = isa::detect();
                    let k = k1;
                    return Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                        let l = ctx.input(0)?.as_slice::<i8>()?;
                        let r = ctx.input(1)?.as_slice::<i8>()?;
                        let workers = ctx.workers;
                        let y = ctx.output(0)?.as_slice_mut::<i8>()?;
                        let rhs_len = if shared_rhs { k * n } else { batches * k * n };
                        if l.len() != batches * m * k || r.len() != rhs_len || y.len() != batches * m * n || m * n == 0
                        {
                            batch_matmul_quantized(&p, l, &ls, r, &rs, adj_x, adj_y, y, &out_shape);
                            return Ok(());
                        }
                        workers.for_each_chunk(y, m * n, |first, chunk| {
                            let mut scratch = MatmulI8Scratch::default();
                            if shared_rhs {
                                scratch.pack_rhs(&p, &r[..k * n], k, n, adj_y);
                            }
                            for (i, o) in chunk.chunks_exact_mut(m * n).enumerate() {
                                let b = first + i;
                                let lb = &l[b * m * k..(b + 1) * m * k];
                                if !shared_rhs {
                                    scratch.pack_rhs(&p, &r[b * k * n..(b + 1) * k * n], k, n, adj_y);
                                }
                                matmul_i8_packed(level, &p, m, lb, adj_x, &mut scratch, o);
                            }
                        });
                        Ok(())
                    }));
                }
                if t == DataType::Int8 {
                    typed!(i8)
                } else {
                    typed!(i16)
                }
            }
            other => Err(OpError::Unsupported(format!("BATCH_MATMUL on {other}"))),
        }
    }
}
