//! Quantisation arithmetic shared by the quantised kernels, bit-exact with
//! TensorFlow Lite's reference kernels.
//!
//! Quantised models are only useful to us if they produce exactly the bytes
//! TFLite produces, so everything here reproduces TFLite's (and gemmlowp's)
//! integer and float steps one for one -- the same rounding rules, the same
//! precision (`f32` vs `f64`) at each step, the same saturation, and the same
//! evaluation order in the fixed-point approximations. Where TFLite's C++ has
//! undefined behaviour (overflowing shifts, NaN casts) we pick a defined
//! result and say so; those cases do not arise with sane model parameters.
//!
//! - [`multiplier`]: real multipliers as (Q0.31 significand, shift) pairs
//!   (`QuantizeMultiplier`) and the integer products that apply them
//!   (`MultiplyByQuantizedMultiplier` and friends, `SaturatingRoundingDoublingHighMul`,
//!   `RoundingDivideByPOT`).
//! - [`fixedpoint`]: gemmlowp `FixedPoint<int32, N>` functions (`exp`,
//!   `1/(1+x)`, reciprocal, rescale).
//! - [`softmax`]: the reference fixed-point int8/uint8 SOFTMAX.
//! - [`lut`]: the 256-entry tables behind int8/uint8 LOGISTIC and TANH.
//! - [`int16_activations`]: int16 LOGISTIC, TANH and SOFTMAX (tables with
//!   linear interpolation).
//! - [`hard_swish`]: the 16-bit fixed-point int8/uint8 HARD_SWISH.
//! - [`affine`]: QUANTIZE/DEQUANTIZE of single values and fused-activation
//!   ranges.
//!
//! TFLite is assumed to be built the standard way: double rounding
//! (`TFLITE_SINGLE_ROUNDING=0`) and real floating point
//! (no `TFLITE_EMULATE_FLOAT`).

pub mod affine;
pub mod fixedpoint;
pub mod hard_swish;
pub mod int16_activations;
pub mod lut;
pub mod multiplier;
pub mod softmax;

pub use affine::{
    dequantize, quantize_f32_to_i16, quantize_f32_to_i8, quantize_f32_to_u8, quantized_activation_clamp,
    quantized_activation_range, FusedActivation,
};
pub use fixedpoint::{
    exp_on_negative_values, get_reciprocal, one_over_one_plus_x_for_x_in_0_1, rescale,
    saturating_rounding_multiply_by_pot,
};
pub use hard_swish::{hard_swish_i8, hard_swish_params, hard_swish_u8, HardSwishParams};
pub use int16_activations::{logistic_i16, softmax_row_i16, tanh_i16, Int16ActivationParams, SoftmaxI16Params};
pub use lut::{logistic_lut_i8, logistic_lut_u8, lookup_i8, lut_i8, lut_u8, tanh_lut_i8, tanh_lut_u8};
pub use multiplier::{
    frexp, multiply_by_quantized_multiplier, multiply_by_quantized_multiplier_greater_than_one,
    multiply_by_quantized_multiplier_i64, multiply_by_quantized_multiplier_smaller_than_one_exp,
    per_channel_multiplier, per_tensor_conv_multiplier, quantize_multiplier, quantize_multiplier_greater_than_one,
    quantize_multiplier_smaller_than_one_exp, rounding_divide_by_pot, saturating_rounding_doubling_high_mul,
};
pub use softmax::{
    softmax_params, softmax_row_i8, softmax_row_i8_table, softmax_row_i8_to_i16, softmax_row_u8, softmax_row_u8_table,
    SoftmaxExpTable, SoftmaxQuantParams,
};
