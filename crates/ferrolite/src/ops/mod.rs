//! Builtin operators, one file each.
//!
//! Every file has a `register` function and one or more [`Operator`]s: the
//! operator's `prepare` parses the options, checks the inputs, sets the
//! output shapes and picks a kernel from `ferrolite-kernels`; the returned
//! [`PreparedOp`] runs it.
//!
//! [`Operator`]: crate::op::Operator
//! [`PreparedOp`]: crate::op::PreparedOp

use fb::BuiltinOperator as B;
use ferrolite_kernels::activation::ClampF32;
use ferrolite_schema as fb;

use crate::error::OpError;
use crate::registry::OpResolver;

pub mod add_n;
pub mod arg_min_max;
pub mod atan2;
pub mod batch_matmul;
pub mod bidirectional_sequence_lstm;
pub mod bidirectional_sequence_rnn;
pub mod binary;
pub mod broadcast_args;
pub mod bucketize;
pub mod cast;
mod common;
pub mod comparison;
pub mod complex;
pub mod concatenation;
pub mod conv2d;
pub(crate) mod conv_depthwise;
pub mod cumsum;
pub mod densify;
pub mod depthwise_conv2d;
pub mod dequantize;
pub mod detection_postprocess;
pub mod dynamic_update_slice;
pub mod embedding_lookup;
pub mod fake_quant;
pub mod fill;
pub mod fully_connected;
pub mod gather;
pub mod l2_normalization;
pub mod local_response_norm;
pub mod matrix_diag;
pub mod mediapipe;
pub mod non_max_suppression;
pub mod one_hot;
pub mod pad;
pub mod pool2d;
pub mod prelu;
pub mod quantize;
mod quantized;
pub mod reduce;
pub mod reduce_logical;
pub mod reshape;
pub mod resize;
pub mod resource_variable;
pub mod reverse;
pub mod reverse_sequence;
pub mod rfft2d;
pub mod rnn;
pub mod scatter_nd;
pub mod segment_sum;
pub mod select;
pub mod shape;
pub mod slice;
pub mod softmax;
pub mod space_batch;
pub mod space_depth;
pub mod sparse_to_dense;
pub mod split;
pub mod svdf;
pub mod tile;
pub mod topk;
pub mod transpose;
pub mod transpose_conv;
pub mod unary;
pub mod unidirectional_sequence_lstm;
pub mod unidirectional_sequence_rnn;
pub mod unique;
pub mod unsorted_segment;

pub(crate) use common::*;

/// Register every builtin op this crate implements, the custom op TFLite's
/// default resolver has too (TFLite_Detection_PostProcess) and the one
/// MediaPipe's segmenters need (Convolution2DTransposeBias).
pub fn register_all(r: &mut OpResolver) {
    add_n::register(r);
    arg_min_max::register(r);
    batch_matmul::register(r);
    binary::register(r);
    cast::register(r);
    comparison::register(r);
    concatenation::register(r);
    conv2d::register(r);
    cumsum::register(r);
    densify::register(r);
    depthwise_conv2d::register(r);
    dequantize::register(r);
    detection_postprocess::register(r);
    embedding_lookup::register(r);
    fill::register(r);
    fully_connected::register(r);
    gather::register(r);
    l2_normalization::register(r);
    local_response_norm::register(r);
    mediapipe::register(r);
    pad::register(r);
    pool2d::register(r);
    prelu::register(r);
    quantize::register(r);
    reduce::register(r);
    reshape::register(r);
    resize::register(r);
    reverse::register(r);
    select::register(r);
    shape::register(r);
    slice::register(r);
    softmax::register(r);
    space_batch::register(r);
    space_depth::register(r);
    split::register(r);
    tile::register(r);
    topk::register(r);
    transpose::register(r);
    transpose_conv::register(r);
    unary::register(r);
    unidirectional_sequence_lstm::register(r);
    atan2::register(r);
    broadcast_args::register(r);
    bucketize::register(r);
    complex::register(r);
    dynamic_update_slice::register(r);
    fake_quant::register(r);
    matrix_diag::register(r);
    non_max_suppression::register(r);
    one_hot::register(r);
    reduce_logical::register(r);
    reverse_sequence::register(r);
    rfft2d::register(r);
    scatter_nd::register(r);
    segment_sum::register(r);
    sparse_to_dense::register(r);
    unique::register(r);
    unsorted_segment::register(r);
    resource_variable::register(r);
    svdf::register(r);
    rnn::register(r);
    unidirectional_sequence_rnn::register(r);
    bidirectional_sequence_rnn::register(r);
    bidirectional_sequence_lstm::register(r);
    for impure in [
        B::RandomUniform,
        B::RandomStandardNormal,
        B::Multinomial,
        B::AssignVariable,
        B::CallOnce,
        B::VarHandle,
        B::ReadVariable,
    ] {
        r.mark_impure(impure as i32);
    }
}

/// The clamp a fused activation amounts to, for float kernels.
pub(crate) fn float_clamp(act: fb::ActivationFunctionType) -> Result<ClampF32, OpError> {
    use fb::ActivationFunctionType as A;
    Ok(match act {
        A::None => ClampF32::NONE,
        A::Relu => ClampF32::RELU,
        A::ReluN1To1 => ClampF32::RELU_N1_TO_1,
        A::Relu6 => ClampF32::RELU6,
        other => return Err(OpError::Unsupported(format!("fused activation {other:?}"))),
    })
}
