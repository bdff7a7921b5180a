//! Element-wise float ops of one input: activations (RELU, RELU6,
//! RELU_N1_TO_1, RELU_0_TO_1, LEAKY_RELU, LOGISTIC, TANH, HARD_SWISH, GELU,
//! ELU) and maths (EXP, LOG, SQRT, RSQRT, ABS, NEG, SQUARE, SIN, COS, FLOOR,
//! CEIL, ROUND, SIGN).
//!
//! Quantised activations follow TFLite's reference kernels: the RELU family
//! and LEAKY_RELU rescale with fixed-point multipliers (int8, uint8, int16),
//! LOGISTIC, TANH and ELU look up a 256-entry table built at prepare
//! (int8, uint8; ELU int8 only), GELU likewise (int8, uint8), HARD_SWISH is
//! 16-bit fixed point (int8, uint8). Every 8-bit one then runs as a table
//! of the reference's own outputs for the 256 input bytes
//! (`optimized::lut`: 64 bytes per four instructions with AVX-512 VBMI).

use ferrolite_kernels::activation::ClampF32;
use ferrolite_kernels::optimized::{elementwise as fast, isa};
use ferrolite_kernels::quant::{self as q, HardSwishParams};
use ferrolite_kernels::reference::quantized::{self as qk, LeakyReluParams, QType, ReluParams};
use ferrolite_kernels::reference::{activations as act, elementwise as ew};
use ferrolite_schema::BuiltinOperator as B;

use super::options;
use super::quantized::{input_scale_zp, output_scale_zp};
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{EvalContext, Operator, PrepareContext, PreparedOp, Workers};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    use Kind::*;
    for (code, kind) in [
        (B::Relu, Relu),
        (B::Relu6, Relu6),
        (B::ReluN1To1, ReluN1To1),
        (B::Relu0To1, Relu0To1),
        (B::LeakyRelu, LeakyRelu),
        (B::Logistic, Logistic),
        (B::Tanh, Tanh),
        (B::HardSwish, HardSwish),
        (B::Gelu, Gelu),
        (B::Elu, Elu),
        (B::Exp, Exp),
        (B::Log, Log),
        (B::Sqrt, Sqrt),
        (B::Rsqrt, Rsqrt),
        (B::Abs, Abs),
        (B::Neg, Neg),
        (B::Square, Square),
        (B::Sin, Sin),
        (B::Cos, Cos),
        (B::Floor, Floor),
        (B::Ceil, Ceil),
        (B::Round, Round),
        (B::Sign, Sign),
    ] {
        r.add_builtin(code as i32, 1..=i32::MAX, Unary(kind));
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Relu,
    Relu6,
    ReluN1To1,
    Relu0To1,
    LeakyRelu,
    Logistic,
    Tanh,
    HardSwish,
    Gelu,
    Elu,
    Exp,
    Log,
    Sqrt,
    Rsqrt,
    Abs,
    Neg,
    Square,
    Sin,
    Cos,
    Floor,
    Ceil,
    Round,
    Sign,
}

struct Unary(Kind);

impl Operator for Unary {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(1, 1)?;
        ctx.check_outputs(1, 1)?;
        let input = ctx.input(0)?;
        let dtype = super::same_dtype(ctx, 0, 0)?;
        ctx.set_output_shape(0, input.shape().to_vec())?;
        let kind = self.0;
        let alpha =
            if kind == Kind::LeakyRelu { options!(ctx, LeakyReluOptions).map(|o| o.alpha).unwrap_or(0.2) } else { 0.0 };
        let approximate =
            if kind == Kind::Gelu { options!(ctx, GeluOptions).map(|o| o.approximate).unwrap_or(false) } else { false };
        match dtype {
            DataType::Float32 => {
                let fast = if ctx.reference_kernels { None } else { fast_f32(kind) };
                let level = isa::detect();
                if let Some(FastF32::Clamp(clamp)) = fast {
                    return Ok(Box::new(FloatClamp { clamp, level }));
                }
                Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                    let x = ctx.input(0)?.as_slice::<f32>()?;
                    let workers = ctx.workers;
                    let y = ctx.output(0)?.as_slice_mut::<f32>()?;
                    split_f32(workers, x, y, |x, y| match fast {
                        Some(FastF32::HardSwish) => fast::hard_swish_f32(level, x, y),
                        Some(FastF32::Logistic) => fast::logistic_f32(level, x, y),
                        Some(FastF32::Tanh) => fast::tanh_f32(level, x, y),
                        Some(FastF32::LeakyRelu) => fast::leaky_relu_f32(level, x, y, alpha),
                        Some(FastF32::Gelu) => fast::gelu_f32(level, x, y, approximate),
                        // (The clamps returned as `FloatClamp` above.)
                        Some(FastF32::Clamp(_)) | None => eval_f32(kind, alpha, approximate, x, y),
                    });
                    Ok(())
                }))
            }
            DataType::Int32 if matches!(kind, Kind::Abs | Kind::Neg | Kind::Square | Kind::Relu | Kind::Sign) => {
                Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                    let x = ctx.input(0)?.as_slice::<i32>()?;
                    let y = ctx.output(0)?.as_slice_mut::<i32>()?;
                    ew::unary(x, y, |v: i32| match kind {
                        Kind::Abs => v.wrapping_abs(),
                        Kind::Neg => v.wrapping_neg(),
                        Kind::Square => v.wrapping_mul(v),
                        Kind::Relu => v.max(0),
                        _ => v.signum(),
                    });
                    Ok(())
                }))
            }
            // TFLite's elementwise.cc: int16 ABS without quantisation is a
            // plain integer abs.
            DataType::Int16 if kind == Kind::Abs && ctx.input(0)?.quant().is_none() => {
                Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                    let x = ctx.input(0)?.as_slice::<i16>()?;
                    let y = ctx.output(0)?.as_slice_mut::<i16>()?;
                    ew::unary(x, y, |v: i16| v.wrapping_abs());
                    Ok(())
                }))
            }
            DataType::Int8 | DataType::Int16 if kind == Kind::Abs => prepare_abs(ctx, dtype),
            DataType::Int8 if kind == Kind::Rsqrt => prepare_rsqrt_i8(ctx),
            DataType::Int8 | DataType::UInt8 | DataType::Int16 if kind.is_quantizable() => {
                prepare_quantized(ctx, kind, dtype, alpha, approximate)
            }
            other => Err(OpError::Unsupported(format!("{kind:?} on {other}"))),
        }
    }
}

impl Kind {
    fn is_quantizable(self) -> bool {
        use Kind::*;
        matches!(self, Relu | Relu6 | ReluN1To1 | Relu0To1 | LeakyRelu | Logistic | Tanh | HardSwish | Elu | Gelu)
    }
}

/// Quantised ABS (int8; int16 with zero points of 0), as TFLite's
/// `AbsEvalQuantized`.
fn prepare_abs(ctx: &PrepareContext<'_>, dtype: DataType) -> Result<Box<dyn PreparedOp>, OpError> {
    let (si, zi) = input_scale_zp(&ctx.input(0)?, "the input")?;
    let (so, zo) = output_scale_zp(ctx.output(0)?)?;
    if dtype == DataType::Int16 && (zi != 0 || zo != 0) {
        return Err(OpError::Value(format!("int16 ABS needs zero points of 0, got {zi} and {zo}")));
    }
    let p = qk::AbsParams::new(si, zi, so, zo)
        .ok_or_else(|| OpError::Value("ABS: scales must be positive and finite".into()))?;
    Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
        let x = ctx.input(0)?;
        let y = ctx.output(0)?;
        if dtype == DataType::Int8 {
            qk::abs_quantized(&p, x.as_slice::<i8>()?, y.as_slice_mut::<i8>()?);
        } else {
            qk::abs_quantized(&p, x.as_slice::<i16>()?, y.as_slice_mut::<i16>()?);
        }
        Ok(())
    }))
}

/// int8 RSQRT: TFLite's integer Newton-Raphson inverse square root, which
/// fails on inputs below the zero point.
fn prepare_rsqrt_i8(ctx: &PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
    let (si, zi) = input_scale_zp(&ctx.input(0)?, "the input")?;
    let (so, zo) = output_scale_zp(ctx.output(0)?)?;
    let p = qk::RsqrtParams::new(si, zi, so, zo)
        .ok_or_else(|| OpError::Value("RSQRT: scales must be positive and finite".into()))?;
    Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
        let x = ctx.input(0)?.as_slice::<i8>()?;
        let y = ctx.output(0)?.as_slice_mut::<i8>()?;
        qk::rsqrt_i8(&p, x, y).map_err(|i| {
            OpError::Value(format!("RSQRT is only defined for non-negative values (element {i} is negative)"))
        })
    }))
}

/// A scale TFLite can divide by.
fn valid_scale(s: f32) -> bool {
    s.is_finite() && s > 0.0
}

/// The kernel a quantised activation runs. (The 256-byte table stays inline:
/// one per op, read on every element, so no box to chase.)
#[derive(Clone)]
#[allow(clippy::large_enum_variant)]
enum QuantKernel {
    Relu(ReluParams),
    LeakyRelu(LeakyReluParams),
    /// Indexed by the input's raw byte.
    Table([u8; 256]),
    HardSwish(HardSwishParams),
    /// int16 LOGISTIC / TANH: table interpolation after an input rescale.
    Logistic16(q::Int16ActivationParams),
    Tanh16(q::Int16ActivationParams),
}

fn table_bytes<T: Copy>(t: [T; 256], to_byte: impl Fn(T) -> u8) -> [u8; 256] {
    t.map(to_byte)
}

/// An 8-bit type whose values are their raw bytes.
trait RawByte: QType + bytemuck::Pod {
    fn hard_swish(self, p: &HardSwishParams) -> Self;
}

impl RawByte for i8 {
    fn hard_swish(self, p: &HardSwishParams) -> i8 {
        q::hard_swish_i8(self, p)
    }
}

impl RawByte for u8 {
    fn hard_swish(self, p: &HardSwishParams) -> u8 {
        q::hard_swish_u8(self, p)
    }
}

impl QuantKernel {
    /// This 8-bit kernel as a table indexed by the input's raw byte: its
    /// own outputs for every byte value.
    fn into_table<T: RawByte>(self) -> QuantKernel {
        let bytes: [u8; 256] = std::array::from_fn(|b| b as u8);
        let x: &[T] = bytemuck::cast_slice(&bytes);
        let mut table = [0u8; 256];
        let y: &mut [T] = bytemuck::cast_slice_mut(&mut table);
        match &self {
            QuantKernel::Relu(p) => relu(p, x, y),
            QuantKernel::LeakyRelu(p) => qk::leaky_relu_quantized(p, x, y),
            QuantKernel::HardSwish(p) => {
                for (o, &v) in y.iter_mut().zip(x) {
                    *o = v.hard_swish(p);
                }
            }
            _ => return self,
        }
        QuantKernel::Table(table)
    }
}

fn prepare_quantized(
    ctx: &PrepareContext<'_>,
    kind: Kind,
    dtype: DataType,
    alpha: f32,
    approximate: bool,
) -> Result<Box<dyn PreparedOp>, OpError> {
    let (si, zi) = input_scale_zp(&ctx.input(0)?, "the input")?;
    let (so, zo) = output_scale_zp(ctx.output(0)?)?;
    if !valid_scale(si) || !valid_scale(so) {
        return Err(OpError::Value(format!("{kind:?}: scales must be positive and finite")));
    }
    let unsupported = || OpError::Unsupported(format!("{kind:?} on {dtype}"));
    let int16 = dtype == DataType::Int16;
    if int16 && (zi != 0 || zo != 0) {
        return Err(OpError::Value(format!("int16 {kind:?} needs zero points of 0, got {zi} and {zo}")));
    }
    let bad = || OpError::Value(format!("quantisation parameters TFLite rejects for {kind:?}"));
    let kernel = match kind {
        Kind::Relu | Kind::Relu6 | Kind::ReluN1To1 | Kind::Relu0To1 => {
            let (lo, hi) = match kind {
                Kind::Relu => (0.0, f32::INFINITY),
                Kind::Relu6 => (0.0, 6.0),
                Kind::ReluN1To1 => (-1.0, 1.0),
                _ => (0.0, 1.0),
            };
            // TFLite has int16 kernels for RELU and RELU6 only.
            if int16 && !matches!(kind, Kind::Relu | Kind::Relu6) {
                return Err(unsupported());
            }
            let p = match dtype {
                DataType::Int8 => ReluParams::new::<i8>(si, zi, so, zo, lo, hi),
                DataType::UInt8 => ReluParams::new::<u8>(si, zi, so, zo, lo, hi),
                _ => ReluParams::new::<i16>(si, zi, so, zo, lo, hi),
            };
            QuantKernel::Relu(p.ok_or_else(bad)?)
        }
        Kind::LeakyRelu => QuantKernel::LeakyRelu(LeakyReluParams::new(si, zi, so, zo, alpha).ok_or_else(bad)?),
        // TFLite's GeluPrepare: a 256-entry table of the float GELU.
        Kind::Gelu if dtype == DataType::Int8 => {
            let f = move |x: f32| act::gelu_scalar(x, approximate);
            QuantKernel::Table(table_bytes(q::lut_i8(si, zi, so, zo, f), |v| v as u8))
        }
        Kind::Gelu if dtype == DataType::UInt8 => {
            QuantKernel::Table(q::lut_u8(si, zi, so, zo, move |x: f32| act::gelu_scalar(x, approximate)))
        }
        Kind::Logistic | Kind::Tanh | Kind::Elu if !int16 => {
            // TFLite's LOGISTIC prepare insists on an output scale of exactly
            // 1/256 (any zero point); TANH accepts any output quantisation.
            if kind == Kind::Logistic && so as f64 != 1.0 / 256.0 {
                return Err(OpError::Value(format!("quantised LOGISTIC needs output scale 1/256, got {so}")));
            }
            match (kind, dtype) {
                (Kind::Logistic, DataType::Int8) => {
                    QuantKernel::Table(table_bytes(q::logistic_lut_i8(si, zi, so, zo), |v| v as u8))
                }
                (Kind::Logistic, _) => QuantKernel::Table(q::logistic_lut_u8(si, zi, so, zo)),
                (Kind::Tanh, DataType::Int8) => {
                    QuantKernel::Table(table_bytes(q::tanh_lut_i8(si, zi, so, zo), |v| v as u8))
                }
                (Kind::Tanh, _) => QuantKernel::Table(q::tanh_lut_u8(si, zi, so, zo)),
                // ELU: expm1 below zero, identity above (int8 only in TFLite).
                (_, DataType::Int8) => {
                    let f = |x: f32| if x < 0.0 { x.exp_m1() } else { x };
                    QuantKernel::Table(table_bytes(q::lut_i8(si, zi, so, zo, f), |v| v as u8))
                }
                _ => return Err(unsupported()),
            }
        }
        // 16x8 mode: outputs in Q0.15 (scale 2^-15, zero point 0).
        Kind::Logistic | Kind::Tanh if int16 => {
            if kind == Kind::Logistic && so as f64 != 1.0 / 32768.0 {
                return Err(OpError::Value(format!("int16 LOGISTIC needs output scale 1/32768, got {so}")));
            }
            if kind == Kind::Tanh && q::int16_activations::checked_log2(so) != (true, -15) {
                return Err(OpError::Value(format!("int16 TANH needs output scale 1/32768, got {so}")));
            }
            if kind == Kind::Logistic {
                QuantKernel::Logistic16(q::Int16ActivationParams::for_logistic(si).ok_or_else(bad)?)
            } else {
                QuantKernel::Tanh16(q::Int16ActivationParams::for_tanh(si).ok_or_else(bad)?)
            }
        }
        Kind::HardSwish if !int16 => QuantKernel::HardSwish(q::hard_swish_params(si, zi, so, zo).ok_or_else(bad)?),
        _ => return Err(unsupported()),
    };
    // An 8-bit activation's output depends on the input byte alone: the
    // reference's outputs for all 256 bytes make a table, looked up
    // sixteen or more bytes per instruction (`optimized::lut`), the
    // reference's bits by construction.
    let kernel = match dtype {
        DataType::Int8 => kernel.into_table::<i8>(),
        DataType::UInt8 => kernel.into_table::<u8>(),
        _ => kernel,
    };
    let level = isa::detect();
    Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
        let x = ctx.input(0)?;
        let y = ctx.output(0)?;
        match (&kernel, dtype) {
            // One byte per element for int8 and uint8 alike.
            (QuantKernel::Table(t), _) => ferrolite_kernels::optimized::lut::x8_lut(level, t, x.bytes, y.bytes),
            (QuantKernel::HardSwish(p), DataType::Int8) => {
                for (o, &v) in y.as_slice_mut::<i8>()?.iter_mut().zip(x.as_slice::<i8>()?) {
                    *o = q::hard_swish_i8(v, p);
                }
            }
            (QuantKernel::HardSwish(p), _) => {
                for (o, &v) in y.bytes.iter_mut().zip(x.bytes) {
                    *o = q::hard_swish_u8(v, p);
                }
            }
            (QuantKernel::Logistic16(p), _) => {
                ew::unary(x.as_slice::<i16>()?, y.as_slice_mut::<i16>()?, |v| q::logistic_i16(p, v))
            }
            (QuantKernel::Tanh16(p), _) => {
                ew::unary(x.as_slice::<i16>()?, y.as_slice_mut::<i16>()?, |v| q::tanh_i16(p, v))
            }
            (QuantKernel::Relu(p), DataType::Int8) => relu(p, x.as_slice::<i8>()?, y.as_slice_mut::<i8>()?),
            (QuantKernel::Relu(p), DataType::UInt8) => relu(p, x.bytes, y.bytes),
            (QuantKernel::Relu(p), _) => relu(p, x.as_slice::<i16>()?, y.as_slice_mut::<i16>()?),
            (QuantKernel::LeakyRelu(p), DataType::Int8) => {
                qk::leaky_relu_quantized(p, x.as_slice::<i8>()?, y.as_slice_mut::<i8>()?)
            }
            (QuantKernel::LeakyRelu(p), DataType::UInt8) => qk::leaky_relu_quantized(p, x.bytes, y.bytes),
            (QuantKernel::LeakyRelu(p), _) => {
                qk::leaky_relu_quantized(p, x.as_slice::<i16>()?, y.as_slice_mut::<i16>()?)
            }
        }
        Ok(())
    }))
}

fn relu<T: QType>(p: &ReluParams, x: &[T], y: &mut [T]) {
    qk::relu_quantized(p, x, y)
}

/// A float RELU-family op as prepared (a preceding float ADD can take it
/// over: `binary::try_fuse_clamp`).
pub(crate) struct FloatClamp {
    pub(crate) clamp: ClampF32,
    level: isa::IsaLevel,
}

impl PreparedOp for FloatClamp {
    fn eval(&mut self, ctx: &mut EvalContext<'_>) -> Result<(), OpError> {
        let x = ctx.input(0)?.as_slice::<f32>()?;
        let workers = ctx.workers;
        let y = ctx.output(0)?.as_slice_mut::<f32>()?;
        split_f32(workers, x, y, |x, y| fast::clamp_f32(self.level, x, y, self.clamp));
        Ok(())
    }
}

/// A float activation with a vector kernel (`optimized::elementwise`):
/// the RELU family, LEAKY_RELU and HARD_SWISH give the reference's bits, LOGISTIC and
/// TANH are within a few ulp of it, GELU within 2e-6 relative (the
/// reference's erfc sums a series in double precision, ~70 ns a value).
#[derive(Clone, Copy)]
enum FastF32 {
    Clamp(ClampF32),
    HardSwish,
    Logistic,
    Tanh,
    Gelu,
    LeakyRelu,
}

fn fast_f32(kind: Kind) -> Option<FastF32> {
    Some(match kind {
        Kind::Relu => FastF32::Clamp(ClampF32::RELU),
        Kind::Relu6 => FastF32::Clamp(ClampF32::RELU6),
        Kind::ReluN1To1 => FastF32::Clamp(ClampF32::RELU_N1_TO_1),
        Kind::Relu0To1 => FastF32::Clamp(ClampF32 { min: 0.0, max: 1.0 }),
        Kind::HardSwish => FastF32::HardSwish,
        Kind::Logistic => FastF32::Logistic,
        Kind::Tanh => FastF32::Tanh,
        Kind::Gelu => FastF32::Gelu,
        Kind::LeakyRelu => FastF32::LeakyRelu,
        _ => return None,
    })
}

/// Run `f(x, y)` over matching pieces of `x` and `y`, split between
/// threads from [`super::PARALLEL_ELEMENTS`] values (every op here is
/// element by element).
fn split_f32(workers: Workers<'_>, x: &[f32], y: &mut [f32], f: impl Fn(&[f32], &mut [f32]) + Sync) {
    const UNIT: usize = 64;
    if x.len() != y.len() {
        return f(x, y);
    }
    super::for_each_large_chunk(workers, y, UNIT, |first, chunk| f(&x[first * UNIT..][..chunk.len()], chunk));
}

fn eval_f32(kind: Kind, alpha: f32, approximate: bool, x: &[f32], y: &mut [f32]) {
    match kind {
        Kind::Relu => act::relu_f32(x, y),
        Kind::Relu6 => act::relu6_f32(x, y),
        Kind::ReluN1To1 => act::relu_n1_to_1_f32(x, y),
        Kind::Relu0To1 => act::relu_0_to_1_f32(x, y),
        Kind::LeakyRelu => act::leaky_relu_f32(x, y, alpha),
        Kind::Logistic => act::logistic_f32(x, y),
        Kind::Tanh => act::tanh_f32(x, y),
        Kind::HardSwish => act::hard_swish_f32(x, y),
        Kind::Gelu => act::gelu_f32(x, y, approximate),
        Kind::Elu => act::elu_f32(x, y),
        Kind::Exp => ew::unary_f32(x, y, f32::exp),
        Kind::Log => ew::unary_f32(x, y, f32::ln),
        Kind::Sqrt => ew::unary_f32(x, y, f32::sqrt),
        Kind::Rsqrt => ew::unary_f32(x, y, |v| 1.0 / v.sqrt()),
        Kind::Abs => ew::unary_f32(x, y, f32::abs),
        Kind::Neg => ew::unary_f32(x, y, |v| -v),
        Kind::Square => ew::unary_f32(x, y, |v| v * v),
        Kind::Sin => ew::unary_f32(x, y, f32::sin),
        Kind::Cos => ew::unary_f32(x, y, f32::cos),
        Kind::Floor => ew::unary_f32(x, y, f32::floor),
        Kind::Ceil => ew::unary_f32(x, y, f32::ceil),
        Kind::Round => ew::unary_f32(x, y, ew::round_half_even),
        Kind::Sign => ew::unary_f32(x, y, ew::sign_scalar),
    }
}
