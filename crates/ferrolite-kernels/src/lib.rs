//! Compute kernels for ferrolite, as pure functions over slices.
//!
//! Nothing here knows about models, tensors or graphs: a kernel takes plain
//! slices, shapes and parameters, and writes its output slice. The runtime
//! crate (`ferrolite`) checks shapes and types before it calls a kernel, so a
//! kernel may assume its arguments are consistent.
//!
//! Layout: `reference/` holds the straightforward versions that define the
//! semantics (TFLite's reference kernels); optimised variants live beside
//! them later and are tested against them. `quant` holds the fixed-point
//! arithmetic that quantised kernels share.
//!
//! Conventions used by every kernel:
//! - Activations are NHWC, row-major. Shapes are passed as `[usize; 4]` for
//!   4-D image ops, `&[usize]` otherwise.
//! - Convolution filters are OHWI (`[out_channels, kh, kw, in_channels]`),
//!   depthwise filters `[1, kh, kw, out_channels]`, as stored in .tflite.
//! - Fused activations are a clamp: see [`activation`].
// Only the SIMD modules under `optimized/` opt back in, with `#[allow(unsafe_code)]`.
#![deny(unsafe_code)]

pub mod activation;
pub mod optimized;
pub mod quant;
pub mod reference;
