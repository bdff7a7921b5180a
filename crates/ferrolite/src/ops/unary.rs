//! Element-wise float ops of one input: activations (RELU, RELU6,
//! RELU_N1_TO_1, RELU_0_TO_1, LEAKY_RELU, LOGISTIC, TANH, HARD_SWISH, GELU,
//! ELU) and maths (EXP, LOG, SQRT, RSQRT, ABS, NEG, SQUARE, SIN, COS, FLOOR,
//! CEIL, ROUND, SIGN).

use ferrolite_kernels::reference::{activations as act, elementwise as ew};
use ferrolite_schema::BuiltinOperator as B;

use super::options;
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{EvalContext, Operator, PrepareContext, PreparedOp};
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
            DataType::Float32 => Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                let x = ctx.input(0)?.as_slice::<f32>()?;
                let y = ctx.output(0)?.as_slice_mut::<f32>()?;
                eval_f32(kind, alpha, approximate, x, y);
                Ok(())
            })),
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
            other => Err(OpError::Unsupported(format!("{kind:?} on {other}"))),
        }
    }
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
