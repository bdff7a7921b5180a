//! Quantised reference kernels (int8, int16x8 and legacy uint8), bit-exact
//! with TensorFlow Lite's reference kernels (`reference/integer_ops/*.h`,
//! `reference/*.h`) together with the parameter preparation of the matching
//! `kernels/*.cc` `Prepare` functions.
//!
//! Each op comes as a parameter struct, built by a constructor from the real
//! scales and zero points exactly as TFLite's `Prepare` computes its
//! multipliers, shifts, offsets and activation bounds, plus pure kernels over
//! slices. Constructors return `None` where TFLite's `Prepare` would fail
//! (non-positive or non-finite scales, multipliers out of range, zero points
//! TFLite requires to be 0); kernels then never panic on consistent input.
//!
//! The fixed-point steps themselves live in [`crate::quant`]; this module
//! only reproduces TFLite's loop structure, offsets, accumulator widths and
//! the order of rounding and clamping around them.
//!
//! - [`conv`]: CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED (int8
//!   per-channel / per-tensor, int16x8 with int32 or int64 bias, uint8).
//! - [`elementwise`]: ADD, SUB, MUL with broadcasting.
//! - [`pool`]: AVERAGE_POOL_2D, MAX_POOL_2D.
//! - [`reduce`] for MEAN (reference and optimised-kernel variants).
//! - [`lstm`]: the integer (8x8_16) UNIDIRECTIONAL_SEQUENCE_LSTM (not
//!   glob-re-exported: use `quantized::lstm::...`).
//! - [`misc`]: QUANTIZE / requantize, CONCATENATION with rescaling,
//!   RESIZE_BILINEAR, RELU family, LEAKY_RELU, PRELU, int16 LOGISTIC / TANH.

pub mod arith;
pub mod batch_matmul;
pub mod conv;
pub mod elementwise;
pub mod lstm;
pub mod misc;
pub mod pool;
pub mod reduce;
pub mod transpose_conv;

pub use arith::*;
pub use batch_matmul::*;
pub use conv::*;
pub use elementwise::*;
pub use misc::*;
pub use pool::*;
pub use reduce::*;
pub use transpose_conv::*;

/// A quantised element type: its integer range and the lossless widening
/// to `i32` the kernels compute in.
pub trait QType: Copy + Default + 'static {
    const MIN: i32;
    const MAX: i32;
    fn to_i32(self) -> i32;
    /// Narrowing cast; callers clamp to `[MIN, MAX]` first, as TFLite does.
    fn from_i32(v: i32) -> Self;
}

macro_rules! qtype {
    ($t:ty) => {
        impl QType for $t {
            const MIN: i32 = <$t>::MIN as i32;
            const MAX: i32 = <$t>::MAX as i32;
            #[inline(always)]
            fn to_i32(self) -> i32 {
                self as i32
            }
            #[inline(always)]
            fn from_i32(v: i32) -> Self {
                v as $t
            }
        }
    };
}
qtype!(i8);
qtype!(u8);
qtype!(i16);

/// A scale TFLite can divide by and quantise with.
#[inline]
pub(crate) fn valid_scale(s: f32) -> bool {
    s.is_finite() && s > 0.0
}

#[cfg(test)]
pub(crate) mod testutil {
    /// Tiny deterministic generator so property loops need no dependency.
    pub struct Lcg(pub u64);
    impl Lcg {
        pub fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            self.0 >> 11
        }
        /// Uniform integer in `lo..=hi`.
        pub fn range(&mut self, lo: i32, hi: i32) -> i32 {
            lo + (self.next_u64() % ((hi - lo + 1) as u64)) as i32
        }
        /// Uniform in `[lo, hi)`.
        pub fn float(&mut self, lo: f32, hi: f32) -> f32 {
            let u = (self.next_u64() >> 29) as f32 / (1u64 << 24) as f32;
            lo + (hi - lo) * u
        }
        pub fn i8s(&mut self, n: usize) -> Vec<i8> {
            (0..n).map(|_| self.range(-128, 127) as i8).collect()
        }
        pub fn i16s(&mut self, n: usize, lo: i32, hi: i32) -> Vec<i16> {
            (0..n).map(|_| self.range(lo, hi) as i16).collect()
        }
    }

    /// Real value of a quantised integer, in f64 for test references.
    pub fn deq(q: i32, scale: f32, zp: i32) -> f64 {
        scale as f64 * (q - zp) as f64
    }

    /// Distance of `got` from the quantisation of the real value `real`
    /// (clamped to `[min, max]`), in output units.
    pub fn off_by(got: i32, real: f64, scale: f32, zp: i32, min: i32, max: i32) -> f64 {
        let want = (real / scale as f64 + zp as f64).clamp(min as f64, max as f64);
        (got as f64 - want).abs()
    }
}
