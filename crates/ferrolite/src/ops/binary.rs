//! Element-wise binary ops with numpy broadcasting: ADD, SUB, MUL, DIV,
//! SQUARED_DIFFERENCE, MAXIMUM, MINIMUM, POW, FLOOR_DIV, FLOOR_MOD.
//!
//! A float ADD, SUB, MUL or DIV without an activation whose only reader is
//! a RELU-family op right after it takes that op's clamp ([`try_fuse_clamp`]:
//! MediaPipe's face detector has 16 ADD + RELU pairs the converter left
//! apart); the result is the same bits, without a pass over the tensor.
//! Float ADD/SUB/MUL/DIV/MAXIMUM/MINIMUM/SQUARED_DIFFERENCE against a
//! per-channel operand (`[C]` against `[N, H, W, C]`, a squeeze-and-excitation
//! scale or a bias) runs as rows on a vector kernel, split between threads;
//! other broadcasts as rows of their coalesced innermost dimension, the
//! other operand advancing with them or held (`[1, H, W, 1]` against
//! `[1, H, W, C]`: rows of `C` against one value).

use ferrolite_kernels::activation::ClampF32;
use ferrolite_kernels::optimized::qs8_elementwise::{Qs8AddPlan, Qs8MulPlan};
use ferrolite_kernels::optimized::{elementwise as fast, isa};
use ferrolite_kernels::reference::elementwise as k;
use ferrolite_schema::{ActivationFunctionType, BuiltinOperator as B};

use ferrolite_kernels::quant::{
    multiply_by_quantized_multiplier_smaller_than_one_exp, quantize_multiplier_smaller_than_one_exp, FusedActivation,
};
use ferrolite_kernels::reference::quantized as qk;

use super::quantized::{fused, input_scale_zp, output_scale_zp};
use super::{float_clamp, options};
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{EvalContext, Operator, PrepareContext, PreparedOp, Workers};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    for (code, kind) in [
        (B::Add, Kind::Add),
        (B::Sub, Kind::Sub),
        (B::Mul, Kind::Mul),
        (B::Div, Kind::Div),
        (B::SquaredDifference, Kind::SquaredDifference),
        (B::Maximum, Kind::Maximum),
        (B::Minimum, Kind::Minimum),
        (B::Pow, Kind::Pow),
        (B::FloorDiv, Kind::FloorDiv),
        (B::FloorMod, Kind::FloorMod),
    ] {
        r.add_builtin(code as i32, 1..=i32::MAX, Binary(kind));
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Add,
    Sub,
    Mul,
    Div,
    SquaredDifference,
    Maximum,
    Minimum,
    Pow,
    FloorDiv,
    FloorMod,
}

struct Binary(Kind);

impl Binary {
    fn activation(&self, ctx: &PrepareContext<'_>) -> Result<ActivationFunctionType, OpError> {
        Ok(match self.0 {
            Kind::Add => options!(ctx, AddOptions).map(|o| o.fused_activation_function),
            Kind::Sub => options!(ctx, SubOptions).map(|o| o.fused_activation_function),
            Kind::Mul => options!(ctx, MulOptions).map(|o| o.fused_activation_function),
            Kind::Div => options!(ctx, DivOptions).map(|o| o.fused_activation_function),
            _ => None,
        }
        .unwrap_or(ActivationFunctionType::None))
    }
}

impl Operator for Binary {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(2, 2)?;
        ctx.check_outputs(1, 1)?;
        let (a, b) = (ctx.input(0)?, ctx.input(1)?);
        if a.dtype() != b.dtype() {
            return Err(OpError::DType {
                tensor: "input 1".into(),
                expected: a.dtype().to_string(),
                got: b.dtype().to_string(),
            });
        }
        let out_shape = k::broadcast_shape(a.shape(), b.shape())
            .ok_or_else(|| OpError::Shape(format!("{:?} and {:?} do not broadcast", a.shape(), b.shape())))?;
        ctx.set_output_shape(0, out_shape.clone())?;
        let shapes = Shapes { a: a.shape().to_vec(), b: b.shape().to_vec(), out: out_shape };
        let act = self.activation(ctx)?;
        let kind = self.0;
        match a.dtype() {
            DataType::Float32 => {
                let clamp = float_clamp(act)?;
                let level = if ctx.reference_kernels { isa::IsaLevel::Scalar } else { isa::detect() };
                let rows = if ctx.reference_kernels { None } else { row_broadcast(&shapes) };
                Ok(Box::new(FloatArith { kind, clamp, shapes, level, rows }))
            }
            DataType::Int32 | DataType::Int64
                if act == ActivationFunctionType::None || act == ActivationFunctionType::Relu =>
            {
                let relu = act == ActivationFunctionType::Relu;
                if a.dtype() == DataType::Int32 {
                    Ok(Box::new(move |ctx: &mut EvalContext<'_>| eval_int::<i32>(ctx, kind, relu, &shapes)))
                } else {
                    Ok(Box::new(move |ctx: &mut EvalContext<'_>| eval_int::<i64>(ctx, kind, relu, &shapes)))
                }
            }
            t @ (DataType::Int8 | DataType::UInt8 | DataType::Int16)
                if matches!(kind, Kind::Add | Kind::Sub | Kind::Mul) =>
            {
                let pot = match self.0 {
                    Kind::Add => options!(ctx, AddOptions).map(|o| o.pot_scale_int16).unwrap_or(true),
                    Kind::Sub => options!(ctx, SubOptions).map(|o| o.pot_scale_int16).unwrap_or(true),
                    _ => false,
                };
                prepare_quantized(ctx, kind, t, fused(act)?, pot, shapes)
            }
            // TFLite's MAXIMUM / MINIMUM compare the stored integers: the
            // converter gives inputs and output one quantisation.
            t @ (DataType::Int8 | DataType::UInt8 | DataType::Int16)
                if matches!(kind, Kind::Maximum | Kind::Minimum) =>
            {
                if ctx.output_dtype(0)? != t {
                    return Err(OpError::DType {
                        tensor: "output".into(),
                        expected: t.to_string(),
                        got: ctx.output_dtype(0)?.to_string(),
                    });
                }
                let max = kind == Kind::Maximum;
                Ok(match t {
                    DataType::Int8 => Box::new(move |ctx: &mut EvalContext<'_>| eval_minmax::<i8>(ctx, max, &shapes)),
                    DataType::UInt8 => Box::new(move |ctx: &mut EvalContext<'_>| eval_minmax::<u8>(ctx, max, &shapes)),
                    _ => Box::new(move |ctx: &mut EvalContext<'_>| eval_minmax::<i16>(ctx, max, &shapes)),
                })
            }
            // TFLite's div.cc: fixed-point reciprocal of the divisor, then
            // one requantisation; a divisor equal to its zero point fails.
            t @ (DataType::Int8 | DataType::UInt8 | DataType::Int16) if kind == Kind::Div => {
                prepare_div(ctx, t, fused(act)?, shapes)
            }
            DataType::Int8 if kind == Kind::SquaredDifference => {
                let (s1, z1) = input_scale_zp(&ctx.input(0)?, "input 0")?;
                let (s2, z2) = input_scale_zp(&ctx.input(1)?, "input 1")?;
                let (so, zo) = output_scale_zp(ctx.output(0)?)?;
                if ctx.output_dtype(0)? != DataType::Int8 {
                    return Err(OpError::DType {
                        tensor: "output".into(),
                        expected: "int8".into(),
                        got: ctx.output_dtype(0)?.to_string(),
                    });
                }
                let p = SquaredDifferenceI8::new(s1, z1, s2, z2, so, zo).ok_or_else(|| {
                    OpError::Value("quantisation parameters TFLite rejects for SQUARED_DIFFERENCE".into())
                })?;
                Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                    let (a, b) = (ctx.input(0)?.as_slice::<i8>()?, ctx.input(1)?.as_slice::<i8>()?);
                    let out = ctx.output(0)?.as_slice_mut::<i8>()?;
                    k::broadcast_binary(a, &shapes.a, b, &shapes.b, out, &shapes.out, |x, y| p.apply(x, y));
                    Ok(())
                }))
            }
            other => Err(OpError::Unsupported(format!("{kind:?} on {other}"))),
        }
    }
}

fn eval_minmax<T: crate::dtype::Element + Ord + Copy>(
    ctx: &mut EvalContext<'_>,
    max: bool,
    s: &Shapes,
) -> Result<(), OpError> {
    let a = ctx.input(0)?.as_slice::<T>()?;
    let b = ctx.input(1)?.as_slice::<T>()?;
    let out = ctx.output(0)?.as_slice_mut::<T>()?;
    if max {
        k::broadcast_binary(a, &s.a, b, &s.b, out, &s.out, |x, y| x.max(y));
    } else {
        k::broadcast_binary(a, &s.a, b, &s.b, out, &s.out, |x, y| x.min(y));
    }
    Ok(())
}

/// int8 SQUARED_DIFFERENCE as TFLite's `squared_difference.cc`: both inputs
/// shifted left by 7 bits and scaled to `s_i / (2 * max(s1, s2))`, the
/// difference squared exactly in i32, then scaled by
/// `(2 * max(s1, s2))^2 / (2^14 * s_out)`, offset and clamped to int8. The
/// three multipliers come from `QuantizeMultiplierSmallerThanOneExp`.
struct SquaredDifferenceI8 {
    offsets: (i32, i32),
    output_offset: i32,
    m1: (i32, i32),
    m2: (i32, i32),
    mo: (i32, i32),
}

impl SquaredDifferenceI8 {
    const LEFT_SHIFT: i32 = 7;

    fn new(s1: f32, z1: i32, s2: f32, z2: i32, so: f32, zo: i32) -> Option<Self> {
        let int8 = i8::MIN as i32..=i8::MAX as i32;
        let valid = |s: f32| s.is_finite() && s > 0.0;
        if !valid(s1) || !valid(s2) || !valid(so) || !int8.contains(&z1) || !int8.contains(&z2) || !int8.contains(&zo) {
            return None;
        }
        // `2 * std::max(float, float)` is exact; the rest is in double.
        let twice_max = 2.0 * s1.max(s2) as f64;
        let real_out = (twice_max * twice_max) / ((1i32 << (2 * Self::LEFT_SHIFT)) as f64 * so as f64);
        Some(SquaredDifferenceI8 {
            offsets: (-z1, -z2),
            output_offset: zo,
            m1: quantize_multiplier_smaller_than_one_exp(s1 as f64 / twice_max)?,
            m2: quantize_multiplier_smaller_than_one_exp(s2 as f64 / twice_max)?,
            mo: quantize_multiplier_smaller_than_one_exp(real_out)?,
        })
    }

    #[inline]
    fn apply(&self, x: i8, y: i8) -> i8 {
        let a = (x as i32 + self.offsets.0) << Self::LEFT_SHIFT;
        let b = (y as i32 + self.offsets.1) << Self::LEFT_SHIFT;
        let a = multiply_by_quantized_multiplier_smaller_than_one_exp(a, self.m1.0, self.m1.1);
        let b = multiply_by_quantized_multiplier_smaller_than_one_exp(b, self.m2.0, self.m2.1);
        let d = a.wrapping_sub(b);
        let v = multiply_by_quantized_multiplier_smaller_than_one_exp(d.wrapping_mul(d), self.mo.0, self.mo.1)
            .wrapping_add(self.output_offset);
        v.clamp(i8::MIN as i32, i8::MAX as i32) as i8
    }
}

/// Quantised DIV (int8, uint8, int16), as TFLite's `reference_ops::Div`.
fn prepare_div(
    ctx: &PrepareContext<'_>,
    t: DataType,
    act: FusedActivation,
    s: Shapes,
) -> Result<Box<dyn PreparedOp>, OpError> {
    let (s1, z1) = input_scale_zp(&ctx.input(0)?, "input 0")?;
    let (s2, z2) = input_scale_zp(&ctx.input(1)?, "input 1")?;
    let (so, zo) = output_scale_zp(ctx.output(0)?)?;
    if ctx.output_dtype(0)? != t {
        return Err(OpError::DType {
            tensor: "output".into(),
            expected: t.to_string(),
            got: ctx.output_dtype(0)?.to_string(),
        });
    }
    let bad = || OpError::Value("quantisation parameters TFLite rejects for DIV".into());
    let div0 = || OpError::Value("DIV: a divisor equals its zero point (division by zero)".into());
    macro_rules! typed {
        ($T:ty) => {{
            let p = qk::DivParams::new::<$T>(s1, z1, s2, z2, so, zo, act).ok_or_else(bad)?;
            Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                let (a, b) = (ctx.input(0)?.as_slice::<$T>()?, ctx.input(1)?.as_slice::<$T>()?);
                if b.iter().any(|&v| v as i32 == z2) {
                    return Err(div0());
                }
                let out = ctx.output(0)?.as_slice_mut::<$T>()?;
                k::broadcast_binary(a, &s.a, b, &s.b, out, &s.out, |x, y| p.apply(x, y).unwrap_or_default());
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

/// Quantised ADD, SUB and MUL with TFLite's rescaling.
fn prepare_quantized(
    ctx: &PrepareContext<'_>,
    kind: Kind,
    t: DataType,
    act: FusedActivation,
    pot_scale_int16: bool,
    s: Shapes,
) -> Result<Box<dyn PreparedOp>, OpError> {
    let (s1, z1) = input_scale_zp(&ctx.input(0)?, "input 0")?;
    let (s2, z2) = input_scale_zp(&ctx.input(1)?, "input 1")?;
    let (so, zo) = output_scale_zp(ctx.output(0)?)?;
    if ctx.output_dtype(0)? != t {
        return Err(OpError::DType {
            tensor: "output".into(),
            expected: t.to_string(),
            got: ctx.output_dtype(0)?.to_string(),
        });
    }
    let bad = || OpError::Value("quantisation parameters TFLite rejects for this op".into());
    macro_rules! typed {
        ($T:ty) => {{
            if kind == Kind::Mul {
                let p = qk::MulParams::new::<$T>(s1, z1, s2, z2, so, zo, act).ok_or_else(bad)?;
                return Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                    let (a, b) = (ctx.input(0)?.as_slice::<$T>()?, ctx.input(1)?.as_slice::<$T>()?);
                    qk::mul_quantized(&p, a, &s.a, b, &s.b, ctx.output(0)?.as_slice_mut::<$T>()?, &s.out);
                    Ok(())
                }));
            }
            // int16 takes a cheaper exact path when every scale is a power of two.
            if t == DataType::Int16 && pot_scale_int16 {
                if let Some(p) = qk::AddPotParams::new(s1, z1, s2, z2, so, zo, act) {
                    return Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                        let (a, b) = (ctx.input(0)?.as_slice::<i16>()?, ctx.input(1)?.as_slice::<i16>()?);
                        let out = ctx.output(0)?.as_slice_mut::<i16>()?;
                        if kind == Kind::Add {
                            qk::add_i16_pot(&p, a, &s.a, b, &s.b, out, &s.out);
                        } else {
                            qk::sub_i16_pot(&p, a, &s.a, b, &s.b, out, &s.out);
                        }
                        Ok(())
                    }));
                }
            }
            let p = qk::AddParams::new::<$T>(s1, z1, s2, z2, so, zo, act).ok_or_else(bad)?;
            Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                let (a, b) = (ctx.input(0)?.as_slice::<$T>()?, ctx.input(1)?.as_slice::<$T>()?);
                let out = ctx.output(0)?.as_slice_mut::<$T>()?;
                if kind == Kind::Add {
                    qk::add_quantized(&p, a, &s.a, b, &s.b, out, &s.out);
                } else {
                    qk::sub_quantized(&p, a, &s.a, b, &s.b, out, &s.out);
                }
                Ok(())
            }))
        }};
    }
    // 8-bit ADD and SUB: the vector kernels (bit-exact with the
    // reference), broadcasts by rows.
    macro_rules! fast_add {
        ($T:ty) => {{
            let p = qk::AddParams::new::<$T>(s1, z1, s2, z2, so, zo, act).ok_or_else(bad)?;
            let plan = match kind {
                Kind::Sub => Qs8AddPlan::subtract(isa::detect(), &p),
                _ => Qs8AddPlan::new(isa::detect(), &p),
            };
            let same_shape = s.a == s.out && s.b == s.out;
            Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                let (a, b) = (ctx.input(0)?.as_slice::<$T>()?, ctx.input(1)?.as_slice::<$T>()?);
                let workers = ctx.workers;
                let out = ctx.output(0)?.as_slice_mut::<$T>()?;
                if same_shape {
                    split_same_shape(workers, PARALLEL_ELEMENTS_Q8, a, b, out, |a, b, out| plan.run(a, b, out));
                } else {
                    split_broadcast(workers, a, &s.a, b, &s.b, out, &s.out, |a, sa, b, sb, out, so| {
                        plan.run_broadcast(a, sa, b, sb, out, so)
                    });
                }
                Ok(())
            }))
        }};
    }
    // 8-bit MUL: the vector kernel, broadcasts by rows.
    macro_rules! fast_mul {
        ($T:ty) => {{
            let p = qk::MulParams::new::<$T>(s1, z1, s2, z2, so, zo, act).ok_or_else(bad)?;
            let plan = Qs8MulPlan::new(isa::detect(), &p);
            Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                let (a, b) = (ctx.input(0)?.as_slice::<$T>()?, ctx.input(1)?.as_slice::<$T>()?);
                let workers = ctx.workers;
                let out = ctx.output(0)?.as_slice_mut::<$T>()?;
                split_broadcast(workers, a, &s.a, b, &s.b, out, &s.out, |a, sa, b, sb, out, so| {
                    plan.run_broadcast(a, sa, b, sb, out, so)
                });
                Ok(())
            }))
        }};
    }
    let add_sub = matches!(kind, Kind::Add | Kind::Sub) && !ctx.reference_kernels;
    let mul = kind == Kind::Mul && !ctx.reference_kernels;
    match t {
        DataType::Int8 if add_sub => fast_add!(i8),
        DataType::UInt8 if add_sub => fast_add!(u8),
        DataType::Int8 if mul => fast_mul!(i8),
        DataType::UInt8 if mul => fast_mul!(u8),
        DataType::Int8 => typed!(i8),
        DataType::UInt8 => typed!(u8),
        _ => typed!(i16),
    }
}

/// A float binary op as prepared; the ones with a fused activation (ADD,
/// SUB, MUL, DIV) can take a following RELU's clamp.
pub(crate) struct FloatArith {
    kind: Kind,
    clamp: ClampF32,
    shapes: Shapes,
    /// For the vector kernels.
    level: isa::IsaLevel,
    /// One operand repeats along the output ([`row_broadcast`]).
    rows: Option<RowBroadcast>,
}

/// A broadcast where one operand has the output's shape and the other
/// repeats along it every `period` values (a per-channel operand).
#[derive(Clone, Copy)]
struct RowBroadcast {
    period: usize,
    /// The repeating operand is the first input.
    repeat_first: bool,
}

fn row_broadcast(s: &Shapes) -> Option<RowBroadcast> {
    if s.a == s.out && s.b != s.out {
        super::repeat_period(&s.a, &s.b, &s.out).map(|period| RowBroadcast { period, repeat_first: false })
    } else if s.b == s.out && s.a != s.out {
        super::repeat_period(&s.b, &s.a, &s.out).map(|period| RowBroadcast { period, repeat_first: true })
    } else {
        None
    }
}

impl PreparedOp for FloatArith {
    fn eval(&mut self, ctx: &mut EvalContext<'_>) -> Result<(), OpError> {
        eval_f32(ctx, self.kind, self.clamp, &self.shapes, self.level, self.rows)
    }
}

/// If `producer` is a float ADD, SUB, MUL or DIV without an activation and
/// `consumer` a float RELU-family op (`unary::FloatClamp`), move the
/// producer into the consumer's place with the consumer's clamp and return
/// true. `clamp(x + y)` then runs in one pass: the same operations on the
/// same values as the two ops apart.
pub(crate) fn try_fuse_clamp(
    producer: &mut Option<Box<dyn PreparedOp>>,
    consumer: &mut Option<Box<dyn PreparedOp>>,
) -> bool {
    let clamp = match (producer.as_deref(), consumer.as_deref()) {
        (Some(p), Some(c)) => {
            let (p, c): (&dyn std::any::Any, &dyn std::any::Any) = (p, c);
            match (p.downcast_ref::<FloatArith>(), c.downcast_ref::<super::unary::FloatClamp>()) {
                (Some(a), Some(c))
                    if matches!(a.kind, Kind::Add | Kind::Sub | Kind::Mul | Kind::Div) && a.clamp == ClampF32::NONE =>
                {
                    c.clamp
                }
                _ => return false,
            }
        }
        _ => return false,
    };
    let Some(p) = producer.take() else { return false };
    let p: Box<dyn std::any::Any> = p;
    let Ok(mut arith) = p.downcast::<FloatArith>() else { unreachable!("type checked just above") };
    arith.clamp = clamp;
    *consumer = Some(arith);
    true
}

struct Shapes {
    a: Vec<usize>,
    b: Vec<usize>,
    out: Vec<usize>,
}

/// The same for 8-bit ADD, whose exact requantisation costs about ten
/// times a float add per value: MobileNet v2's 14x14x64 residual ADD
/// (12.5K values) took 5 us on one thread, and the same on two.
const PARALLEL_ELEMENTS_Q8: usize = 4 * 1024;

/// Run `f(a, b, out)` over matching pieces of same-length `a`, `b` and `out`,
/// on several threads when `out` has at least `min` values.
fn split_same_shape<T: Copy + Send + Sync>(
    workers: Workers<'_>,
    min: usize,
    a: &[T],
    b: &[T],
    out: &mut [T],
    f: impl Fn(&[T], &[T], &mut [T]) + Sync,
) {
    const UNIT: usize = 64;
    if workers.threads() > 1 && out.len() >= min && a.len() == out.len() && b.len() == out.len() {
        workers.for_each_chunk(out, UNIT, |first, chunk| {
            let at = first * UNIT;
            f(&a[at..at + chunk.len()], &b[at..at + chunk.len()], chunk)
        });
    } else {
        f(a, b, out)
    }
}

fn eval_f32(
    ctx: &mut EvalContext<'_>,
    kind: Kind,
    clamp: ClampF32,
    s: &Shapes,
    level: isa::IsaLevel,
    rows: Option<RowBroadcast>,
) -> Result<(), OpError> {
    let a = ctx.input(0)?.as_slice::<f32>()?;
    let b = ctx.input(1)?.as_slice::<f32>()?;
    let workers = ctx.workers;
    let out = ctx.output(0)?.as_slice_mut::<f32>()?;
    let op = match kind {
        Kind::Add => fast::ArithOp::Add,
        Kind::Sub => fast::ArithOp::Sub,
        Kind::Mul => fast::ArithOp::Mul,
        Kind::Div => fast::ArithOp::Div,
        Kind::SquaredDifference => fast::ArithOp::SquaredDifference,
        Kind::Maximum => fast::ArithOp::Maximum,
        Kind::Minimum => fast::ArithOp::Minimum,
        // The rest run on the reference as they are.
        Kind::Pow | Kind::FloorDiv | Kind::FloorMod => {
            let f = match kind {
                Kind::Pow => k::pow_f32 as PlainF32,
                Kind::FloorDiv => k::floor_div_f32,
                _ => k::floor_mod_f32,
            };
            f(a, &s.a, b, &s.b, out, &s.out);
            return Ok(());
        }
    };
    if s.a == s.out && s.b == s.out {
        // ADD and MUL have vector kernels (the same bits as the reference).
        split_same_shape(workers, super::PARALLEL_ELEMENTS, a, b, out, |a, b, out| match op {
            fast::ArithOp::Add => fast::add_f32(level, a, b, out, clamp),
            fast::ArithOp::Mul => fast::mul_f32(level, a, b, out, clamp),
            _ => fast::broadcast_f32(level, op, a, &[a.len()], b, &[b.len()], out, &[out.len()], clamp),
        });
        return Ok(());
    }
    if let Some(RowBroadcast { period: p, repeat_first }) = rows {
        // A per-channel operand: rows of the output against it, in chunks
        // of whole rows per thread.
        let (x, r) = if repeat_first { (b, a) } else { (a, b) };
        if r.len() == p && x.len() == out.len() {
            let run = |first: usize, chunk: &mut [f32]| {
                fast::broadcast_rows_f32(level, op, &x[first * p..][..chunk.len()], r, repeat_first, chunk, clamp)
            };
            super::for_each_large_chunk(workers, out, p, run);
            return Ok(());
        }
    }
    // Other broadcasts: rows of the coalesced innermost dimension.
    split_broadcast(workers, a, &s.a, b, &s.b, out, &s.out, |a, sa, b, sb, out, so| {
        fast::broadcast_f32(level, op, a, sa, b, sb, out, so, clamp)
    });
    Ok(())
}

/// Run the broadcast `f(a, a_shape, b, b_shape, out, out_shape)` on slices
/// of the output's outermost dimension larger than 1, split between
/// threads as [`super::for_each_large_chunk`] splits: an operand that
/// spans that dimension is sliced with it, one broadcast along it is
/// passed whole.
#[allow(clippy::too_many_arguments)]
fn split_broadcast<T: Copy + Send + Sync>(
    workers: Workers<'_>,
    a: &[T],
    a_shape: &[usize],
    b: &[T],
    b_shape: &[usize],
    out: &mut [T],
    out_shape: &[usize],
    f: impl Fn(&[T], &[usize], &[T], &[usize], &mut [T], &[usize]) + Sync,
) {
    let Some(d0) = out_shape.iter().position(|&d| d > 1) else {
        return f(a, a_shape, b, b_shape, out, out_shape);
    };
    let unit: usize = out_shape[d0 + 1..].iter().product();
    let rank = out_shape.len();
    // An operand's part for outer indices `first .. first + count`.
    let part = |x: &'_ [T], shape: &[usize], first: usize, count: usize| -> (std::ops::Range<usize>, Vec<usize>) {
        let mut sub = shape.to_vec();
        match (d0 + shape.len()).checked_sub(rank) {
            Some(i) if shape[i] == out_shape[d0] => {
                let stride: usize = shape[i + 1..].iter().product();
                sub[i] = count;
                (first * stride..(first + count) * stride, sub)
            }
            _ => (0..x.len(), sub),
        }
    };
    super::for_each_large_chunk(workers, out, unit, |first, chunk| {
        let count = chunk.len() / unit.max(1);
        let mut sub_out = out_shape.to_vec();
        sub_out[d0] = count;
        let (ra, sa) = part(a, a_shape, first, count);
        let (rb, sb) = part(b, b_shape, first, count);
        f(&a[ra], &sa, &b[rb], &sb, chunk, &sub_out)
    });
}

/// A broadcasting float op without a fused activation.
type PlainF32 = fn(&[f32], &[usize], &[f32], &[usize], &mut [f32], &[usize]);

/// Integer arithmetic for shape computations (int32/int64 tensors).
trait IntOps: crate::dtype::Element + Ord + Copy + Default {
    fn apply(kind: Kind, x: Self, y: Self) -> Result<Self, OpError>;
}

macro_rules! int_ops {
    ($t:ty) => {
        impl IntOps for $t {
            fn apply(kind: Kind, x: $t, y: $t) -> Result<$t, OpError> {
                let div0 = || OpError::Value("integer division by zero".into());
                Ok(match kind {
                    Kind::Add => x.wrapping_add(y),
                    Kind::Sub => x.wrapping_sub(y),
                    Kind::Mul => x.wrapping_mul(y),
                    Kind::Div => x.checked_div(y).ok_or_else(div0)?,
                    Kind::SquaredDifference => (x.wrapping_sub(y)).wrapping_mul(x.wrapping_sub(y)),
                    Kind::Maximum => x.max(y),
                    Kind::Minimum => x.min(y),
                    Kind::Pow => {
                        if y < 0 {
                            return Err(OpError::Value("integer POW with a negative exponent".into()));
                        }
                        x.wrapping_pow(y as u32)
                    }
                    Kind::FloorDiv => {
                        let q = x.checked_div(y).ok_or_else(div0)?;
                        if (x % y != 0) && ((x < 0) != (y < 0)) {
                            q - 1
                        } else {
                            q
                        }
                    }
                    Kind::FloorMod => {
                        let r = x.checked_rem(y).ok_or_else(div0)?;
                        if r != 0 && ((r < 0) != (y < 0)) {
                            r + y
                        } else {
                            r
                        }
                    }
                })
            }
        }
    };
}
int_ops!(i32);
int_ops!(i64);

fn eval_int<T: IntOps>(ctx: &mut EvalContext<'_>, kind: Kind, relu: bool, s: &Shapes) -> Result<(), OpError> {
    let a = ctx.input(0)?.as_slice::<T>()?;
    let b = ctx.input(1)?.as_slice::<T>()?;
    let out = ctx.output(0)?.as_slice_mut::<T>()?;
    let err = std::cell::Cell::new(None);
    k::broadcast_binary(a, &s.a, b, &s.b, out, &s.out, |x, y| match T::apply(kind, x, y) {
        Ok(v) if relu => v.max(T::default()),
        Ok(v) => v,
        Err(e) => {
            err.set(Some(e));
            T::default()
        }
    });
    err.into_inner().map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::SquaredDifferenceI8;

    /// Elements of LiteRT's reference output for the SQUARED_DIFFERENCE of
    /// `testdata/generated/elementwise.int8` (same-scale inputs).
    #[test]
    // The scales as the converter wrote them (they round to the same f32).
    #[allow(clippy::excessive_precision)]
    fn squared_difference_i8_matches_litert() {
        let p =
            SquaredDifferenceI8::new(0.007686900906264782, -3, 0.007686900906264782, -3, 0.015250780619680882, -128)
                .unwrap();
        for (x, y, want) in [
            (-16, -6, -128),
            (-37, -56, -127),
            (58, 85, -125),
            (2, 47, -120),
            (-14, 47, -114),
            (-26, 56, -102),
            (-25, -127, -88),
            (-36, 95, -62),
            (95, -63, -31),
            (-104, 85, 10),
        ] {
            assert_eq!(p.apply(x, y), want, "({x}, {y})");
        }
    }

    #[test]
    fn squared_difference_i8_rejects_what_tflite_rejects() {
        assert!(SquaredDifferenceI8::new(0.0, 0, 1.0, 0, 1.0, 0).is_none());
        assert!(SquaredDifferenceI8::new(1.0, 200, 1.0, 0, 1.0, 0).is_none());
        // Output multiplier (2 * 1)^2 / (2^14 * 1e-6) >= 1.
        assert!(SquaredDifferenceI8::new(1.0, 0, 1.0, 0, 1e-6, 0).is_none());
    }
}
