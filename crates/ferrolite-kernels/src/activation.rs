//! Fused activations, as TFLite applies them at the end of an op.

/// A fused activation expressed as the clamp it amounts to.
///
/// TFLite's fused activations (NONE, RELU, RELU_N1_TO_1, RELU6) are all
/// clamps of the op's result, so kernels take the bounds rather than the enum.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClampF32 {
    pub min: f32,
    pub max: f32,
}

impl ClampF32 {
    pub const NONE: ClampF32 = ClampF32 { min: f32::NEG_INFINITY, max: f32::INFINITY };
    pub const RELU: ClampF32 = ClampF32 { min: 0.0, max: f32::INFINITY };
    pub const RELU_N1_TO_1: ClampF32 = ClampF32 { min: -1.0, max: 1.0 };
    pub const RELU6: ClampF32 = ClampF32 { min: 0.0, max: 6.0 };

    /// Clamp `x`; written with max/min so that NaN flows through like TFLite's
    /// `std::min(std::max(x, lo), hi)` would leave it.
    #[inline(always)]
    pub fn apply(self, x: f32) -> f32 {
        let lo = if x < self.min { self.min } else { x };
        if lo > self.max {
            self.max
        } else {
            lo
        }
    }
}

/// The same clamp for integer (quantised) kernels, in the output's integer domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClampI32 {
    pub min: i32,
    pub max: i32,
}

impl ClampI32 {
    #[inline(always)]
    pub fn apply(self, x: i32) -> i32 {
        x.max(self.min).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relu6_clamps_both_sides() {
        assert_eq!(ClampF32::RELU6.apply(-1.0), 0.0);
        assert_eq!(ClampF32::RELU6.apply(7.5), 6.0);
        assert_eq!(ClampF32::RELU6.apply(3.25), 3.25);
        assert_eq!(ClampF32::NONE.apply(-1e30), -1e30);
    }
}
