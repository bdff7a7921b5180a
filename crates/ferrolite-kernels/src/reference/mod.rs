//! Reference kernels: simple, obviously-correct loops with TFLite's semantics.
//! Each optimised kernel is tested against its twin here.

pub mod activations;
pub mod arg_minmax;
pub mod batch_matmul;
pub mod compare;
pub mod concat;
pub mod conv;
pub mod cumsum;
pub mod densify;
pub mod elementwise;
pub mod embedding;
pub mod fill;
pub mod fully_connected;
pub mod gather;
pub mod hybrid;
pub mod l2norm;
pub mod lrn;
pub mod lstm;
pub mod pad;
pub mod padding;
pub mod pool;
pub mod quantized;
pub mod reduce;
pub mod resize;
pub mod reverse;
pub mod select;
pub mod slice;
pub mod softmax;
pub mod space;
pub mod space_batch;
pub mod tile;
pub mod topk;
pub mod transpose;
