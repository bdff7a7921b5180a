//! Reference kernels: simple, obviously-correct loops with TFLite's semantics.
//! Each optimised kernel is tested against its twin here.

pub mod activations;
pub mod batch_matmul;
pub mod concat;
pub mod conv;
pub mod elementwise;
pub mod fully_connected;
pub mod gather;
pub mod hybrid;
pub mod l2norm;
pub mod pad;
pub mod padding;
pub mod pool;
pub mod quantized;
pub mod reduce;
pub mod resize;
pub mod slice;
pub mod softmax;
pub mod space;
pub mod transpose;
