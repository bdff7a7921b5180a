//! Optimised float kernels, tested against their twins in `reference/`.
//!
//! Each kernel family has a portable variant that is always compiled (and
//! tested), plus SIMD variants selected at plan time from
//! [`isa::detect`] (CPU features, capped by `FERROLITE_MAX_ISA`). Names
//! follow XNNPACK's style: `f32_gemm_6x16_avx2_fma` is the float GEMM
//! micro-kernel computing 6 rows by 16 columns with AVX2 + FMA,
//! `qs8_gemm_6x32c4_vnni` the int8 one computing 6 rows by 32 channels
//! over quads of depth with AVX-512 VNNI.
//!
//! Kernels that the runtime may split across threads (`run_rows`) write a
//! caller-chosen slice of output pixels, so chunks can be computed in
//! parallel with plain `chunks_mut` and no unsafe code.
//!
//! `unsafe` appears only in the SIMD submodules, around intrinsics, each
//! block with its `SAFETY` argument; the SIMD code is reachable only through
//! the tokens ([`isa::Avx2Fma`], [`isa::Avx512`], [`isa::Avx512Vnni`],
//! [`isa::Neon`], [`isa::NeonDot`]), made after runtime feature detection.

pub mod conv;
pub mod depthwise;
pub mod elementwise;
pub mod fully_connected;
pub mod gemm;
pub mod gemm_nt;
pub mod hybrid;
pub mod isa;
pub mod lut;
pub mod matmul;
pub mod pool;
pub mod qs8;
pub mod qs8_elementwise;
pub mod qs8_transpose_conv;
pub mod reduce;
pub mod resize;
pub mod transpose;
pub mod transpose_conv;

pub use isa::IsaLevel;

#[cfg(test)]
pub(crate) mod testutil;
