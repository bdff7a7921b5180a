//! Quantised ADD, SUB and MUL with numpy broadcasting, bit-exact with
//! TFLite's reference kernels (`reference_integer_ops::AddElementwise`,
//! `reference_ops::SubElementwise`, `reference_integer_ops::MulElementwise`,
//! the legacy uint8 versions and the power-of-two int16 ADD/SUB) and the
//! parameters their `Prepare` computes.
//!
//! Broadcasting only changes which elements meet; every output element is
//! computed independently by the same integer formula, so any walk order
//! gives TFLite's bytes. Operand and output shapes are as for the float
//! kernels ([`crate::reference::elementwise::broadcast_shape`]).

use super::{valid_scale, QType};
use crate::quant::multiplier::rounding_divide_by_pot_i16;
use crate::quant::{
    multiply_by_quantized_multiplier, multiply_by_quantized_multiplier_smaller_than_one_exp, quantize_multiplier,
    quantize_multiplier_smaller_than_one_exp, quantized_activation_range, FusedActivation,
};
use crate::reference::elementwise::broadcast_binary;

/// Parameters of the general quantised ADD and SUB (TFLite's
/// `ArithmeticParams` as `add.cc` / `sub.cc` fill them): both inputs are
/// shifted left by `left_shift` (20 for 8-bit, 15 for int16), rescaled to a
/// common scale of `2 * max(s1, s2)`, combined, then rescaled to the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddParams {
    pub input1_offset: i32,
    pub input2_offset: i32,
    pub output_offset: i32,
    pub left_shift: i32,
    pub input1_multiplier: i32,
    pub input1_shift: i32,
    pub input2_multiplier: i32,
    pub input2_shift: i32,
    pub output_multiplier: i32,
    pub output_shift: i32,
    pub act_min: i32,
    pub act_max: i32,
}

impl AddParams {
    /// Parameters for element type `T` (`i8`, `u8`, or `i16` for the int16
    /// general-scale path, which requires all zero points to be 0). The same
    /// parameters serve ADD and SUB. `None` where TFLite's `Prepare` fails.
    #[allow(clippy::too_many_arguments)]
    pub fn new<T: QType>(
        input1_scale: f32,
        input1_zero_point: i32,
        input2_scale: f32,
        input2_zero_point: i32,
        output_scale: f32,
        output_zero_point: i32,
        activation: FusedActivation,
    ) -> Option<Self> {
        if !valid_scale(input1_scale) || !valid_scale(input2_scale) || !valid_scale(output_scale) {
            return None;
        }
        let is_16 = T::MAX > u8::MAX as i32;
        if is_16 && (input1_zero_point != 0 || input2_zero_point != 0 || output_zero_point != 0) {
            return None;
        }
        let left_shift = if is_16 { 15 } else { 20 };
        // 2 * max(float, float) is exact, so it does not matter whether the
        // doubling happens in f32 (sub.cc) or f64 (add.cc).
        let twice_max = 2.0 * input1_scale.max(input2_scale) as f64;
        let real1 = input1_scale as f64 / twice_max;
        let real2 = input2_scale as f64 / twice_max;
        // (1 << left_shift) * output_scale is a float product in C++; exact.
        let real_out = twice_max / ((1i32 << left_shift) as f32 * output_scale) as f64;
        let (input1_multiplier, input1_shift) = quantize_multiplier_smaller_than_one_exp(real1)?;
        let (input2_multiplier, input2_shift) = quantize_multiplier_smaller_than_one_exp(real2)?;
        let (output_multiplier, output_shift) = quantize_multiplier_smaller_than_one_exp(real_out)?;
        let (act_min, act_max) =
            quantized_activation_range(activation, output_scale, output_zero_point, T::MIN, T::MAX);
        Some(Self {
            input1_offset: input1_zero_point.checked_neg()?,
            input2_offset: input2_zero_point.checked_neg()?,
            output_offset: output_zero_point,
            left_shift,
            input1_multiplier,
            input1_shift,
            input2_multiplier,
            input2_shift,
            output_multiplier,
            output_shift,
            act_min,
            act_max,
        })
    }

    #[inline(always)]
    fn scale_inputs(&self, a: i32, b: i32) -> (i32, i32) {
        let a = (a + self.input1_offset).wrapping_shl(self.left_shift as u32);
        let b = (b + self.input2_offset).wrapping_shl(self.left_shift as u32);
        (
            multiply_by_quantized_multiplier_smaller_than_one_exp(a, self.input1_multiplier, self.input1_shift),
            multiply_by_quantized_multiplier_smaller_than_one_exp(b, self.input2_multiplier, self.input2_shift),
        )
    }

    #[inline(always)]
    fn finish(&self, raw: i32) -> i32 {
        let v = multiply_by_quantized_multiplier_smaller_than_one_exp(raw, self.output_multiplier, self.output_shift)
            .wrapping_add(self.output_offset);
        v.max(self.act_min).min(self.act_max)
    }

    /// One ADD element.
    #[inline]
    pub fn add(&self, a: i32, b: i32) -> i32 {
        let (a, b) = self.scale_inputs(a, b);
        self.finish(a.wrapping_add(b))
    }

    /// One SUB element.
    #[inline]
    pub fn sub(&self, a: i32, b: i32) -> i32 {
        let (a, b) = self.scale_inputs(a, b);
        self.finish(a.wrapping_sub(b))
    }
}

/// Quantised ADD for `i8`, `u8` or general-scale `i16`, with broadcasting.
pub fn add_quantized<T: QType>(
    p: &AddParams,
    a: &[T],
    a_shape: &[usize],
    b: &[T],
    b_shape: &[usize],
    out: &mut [T],
    out_shape: &[usize],
) {
    broadcast_binary(a, a_shape, b, b_shape, out, out_shape, |x: T, y: T| T::from_i32(p.add(x.to_i32(), y.to_i32())));
}

/// Quantised SUB (`a - b`) for `i8`, `u8` or general-scale `i16`.
pub fn sub_quantized<T: QType>(
    p: &AddParams,
    a: &[T],
    a_shape: &[usize],
    b: &[T],
    b_shape: &[usize],
    out: &mut [T],
    out_shape: &[usize],
) {
    broadcast_binary(a, a_shape, b, b_shape, out, out_shape, |x: T, y: T| T::from_i32(p.sub(x.to_i32(), y.to_i32())));
}

/// TFLite's `CheckedLog2`: `round(log2(x))` computed in `f32`, and whether
/// `x` is within 1e-3 (in log2 units) of that power of two.
pub fn checked_log2(x: f32) -> (bool, i32) {
    let x_log2 = x.ln() * (1.0f32 / 2.0f32.ln());
    let rounded = x_log2.round();
    ((x_log2 - rounded).abs() < 1e-3, rounded as i32)
}

/// Parameters of the int16 ADD/SUB special path TFLite takes when the op's
/// `pot_scale_int16` option is set (the schema default) and every scale is a
/// power of two: one input is right-shifted onto the other's scale (which
/// must equal the output's) and the two are combined with saturation in
/// Q0.15.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddPotParams {
    /// `log2(s1) - log2(so)`, `<= 0`.
    pub input1_shift: i32,
    /// `log2(s2) - log2(so)`, `<= 0`; at least one of the two is 0.
    pub input2_shift: i32,
    pub act_min: i32,
    pub act_max: i32,
}

impl AddPotParams {
    /// `None` when TFLite would not take (or would reject) the POT path:
    /// non-zero zero points, a scale that is not a power of two, or shifts
    /// other than "one input at the output scale, the other finer".
    pub fn new(
        input1_scale: f32,
        input1_zero_point: i32,
        input2_scale: f32,
        input2_zero_point: i32,
        output_scale: f32,
        output_zero_point: i32,
        activation: FusedActivation,
    ) -> Option<Self> {
        if input1_zero_point != 0 || input2_zero_point != 0 || output_zero_point != 0 {
            return None;
        }
        if !valid_scale(input1_scale) || !valid_scale(input2_scale) || !valid_scale(output_scale) {
            return None;
        }
        let (p1, l1) = checked_log2(input1_scale);
        let (p2, l2) = checked_log2(input2_scale);
        let (po, lo) = checked_log2(output_scale);
        if !(p1 && p2 && po) {
            return None;
        }
        let (input1_shift, input2_shift) = (l1 - lo, l2 - lo);
        if !(input1_shift == 0 || input2_shift == 0) || input1_shift > 0 || input2_shift > 0 {
            return None;
        }
        if input1_shift < -31 || input2_shift < -31 {
            return None;
        }
        let (act_min, act_max) =
            quantized_activation_range(activation, output_scale, 0, i16::MIN as i32, i16::MAX as i32);
        Some(Self { input1_shift, input2_shift, act_min, act_max })
    }

    #[inline(always)]
    fn operands(&self, a: i16, b: i16) -> (i32, i32) {
        // gemmlowp's RoundingDivideByPOT instantiated on int16, as TFLite
        // calls it on the raw int16 values.
        let a = rounding_divide_by_pot_i16(a, -self.input1_shift);
        let b = rounding_divide_by_pot_i16(b, -self.input2_shift);
        (a as i32, b as i32)
    }

    #[inline(always)]
    fn finish(&self, v: i32) -> i16 {
        let v = v.clamp(i16::MIN as i32, i16::MAX as i32);
        v.max(self.act_min).min(self.act_max) as i16
    }
}

/// int16 ADD on the power-of-two path, with broadcasting.
pub fn add_i16_pot(
    p: &AddPotParams,
    a: &[i16],
    a_shape: &[usize],
    b: &[i16],
    b_shape: &[usize],
    out: &mut [i16],
    out_shape: &[usize],
) {
    broadcast_binary(a, a_shape, b, b_shape, out, out_shape, |x, y| {
        let (x, y) = p.operands(x, y);
        p.finish(x + y)
    });
}

/// int16 SUB (`a - b`) on the power-of-two path, with broadcasting.
pub fn sub_i16_pot(
    p: &AddPotParams,
    a: &[i16],
    a_shape: &[usize],
    b: &[i16],
    b_shape: &[usize],
    out: &mut [i16],
    out_shape: &[usize],
) {
    broadcast_binary(a, a_shape, b, b_shape, out, out_shape, |x, y| {
        let (x, y) = p.operands(x, y);
        p.finish(x - y)
    });
}

/// Parameters of quantised MUL (`mul.cc`): one multiplier for
/// `s1 * s2 / so`, computed entirely in `f32` before widening, as the C++
/// expression `input1->params.scale * input2->params.scale /
/// output->params.scale` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MulParams {
    pub input1_offset: i32,
    pub input2_offset: i32,
    pub output_offset: i32,
    pub output_multiplier: i32,
    pub output_shift: i32,
    pub act_min: i32,
    pub act_max: i32,
}

impl MulParams {
    /// Parameters for element type `T` (`i8`, `u8`, `i16`).
    #[allow(clippy::too_many_arguments)]
    pub fn new<T: QType>(
        input1_scale: f32,
        input1_zero_point: i32,
        input2_scale: f32,
        input2_zero_point: i32,
        output_scale: f32,
        output_zero_point: i32,
        activation: FusedActivation,
    ) -> Option<Self> {
        if !valid_scale(input1_scale) || !valid_scale(input2_scale) || !valid_scale(output_scale) {
            return None;
        }
        let real = (input1_scale * input2_scale / output_scale) as f64;
        let (output_multiplier, output_shift) = quantize_multiplier(real);
        let (act_min, act_max) =
            quantized_activation_range(activation, output_scale, output_zero_point, T::MIN, T::MAX);
        Some(Self {
            input1_offset: input1_zero_point.checked_neg()?,
            input2_offset: input2_zero_point.checked_neg()?,
            output_offset: output_zero_point,
            output_multiplier,
            output_shift,
            act_min,
            act_max,
        })
    }

    /// One MUL element.
    #[inline]
    pub fn mul(&self, a: i32, b: i32) -> i32 {
        let prod = (a + self.input1_offset).wrapping_mul(b + self.input2_offset);
        let v = multiply_by_quantized_multiplier(prod, self.output_multiplier, self.output_shift)
            .wrapping_add(self.output_offset);
        v.max(self.act_min).min(self.act_max)
    }
}

/// Quantised MUL for `i8`, `u8` or `i16`, with broadcasting.
pub fn mul_quantized<T: QType>(
    p: &MulParams,
    a: &[T],
    a_shape: &[usize],
    b: &[T],
    b_shape: &[usize],
    out: &mut [T],
    out_shape: &[usize],
) {
    broadcast_binary(a, a_shape, b, b_shape, out, out_shape, |x: T, y: T| T::from_i32(p.mul(x.to_i32(), y.to_i32())));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::quantized::testutil::{deq, off_by, Lcg};
    use FusedActivation::{None as NoAct, Relu};

    #[test]
    fn add_params_match_prepare() {
        let p = AddParams::new::<i8>(0.5, 0, 0.25, 0, 1.0, 0, NoAct).unwrap();
        assert_eq!(p.left_shift, 20);
        // real multipliers 0.5, 0.25 and 1 / 2^20.
        assert_eq!((p.input1_multiplier, p.input1_shift), (1 << 30, 0));
        assert_eq!((p.input2_multiplier, p.input2_shift), (1 << 30, -1));
        assert_eq!((p.output_multiplier, p.output_shift), (1 << 30, -19));
        let p = AddParams::new::<i16>(0.5, 0, 0.25, 0, 1.0, 0, NoAct).unwrap();
        assert_eq!(p.left_shift, 15);
        assert!(AddParams::new::<i16>(0.5, 1, 0.25, 0, 1.0, 0, NoAct).is_none());
        assert!(AddParams::new::<i8>(0.5, 0, 0.0, 0, 1.0, 0, NoAct).is_none());
    }

    #[test]
    fn add_sub_hand_worked() {
        // a: scale 0.5 zp 10, b: scale 0.25 zp -20, out: scale 0.5 zp 3.
        let p = AddParams::new::<i8>(0.5, 10, 0.25, -20, 0.5, 3, NoAct).unwrap();
        // a = 14 -> 2.0, b = -12 -> 2.0: sum 4.0 -> 8 + 3; difference 0 -> 3.
        assert_eq!(p.add(14, -12), 11);
        assert_eq!(p.sub(14, -12), 3);
        // a = 11 -> 0.5, b = -19 -> 0.25: 0.75 -> 1.5 -> 2 (away from 0) + 3.
        assert_eq!(p.add(11, -19), 5);
        // 0.5 - 0.25 = 0.25 -> 0.5 -> 1 (away from 0) + 3.
        assert_eq!(p.sub(11, -19), 4);
        // -0.25 -> -0.5 -> -1 + 3.
        assert_eq!(p.sub(10, -19), 2);
        // Saturation at both ends.
        assert_eq!(p.add(127, 127), 127);
        assert_eq!(p.sub(-128, 127), -128);
        // Relu clamps at the output zero point.
        let p = AddParams::new::<i8>(0.5, 10, 0.25, -20, 0.5, 3, Relu).unwrap();
        assert_eq!(p.sub(10, -19), 3);

        let mut out = [0i8; 6];
        // [2, 3] + [3]: broadcasting a column against a row.
        let p = AddParams::new::<i8>(1.0, 0, 1.0, 0, 1.0, 0, NoAct).unwrap();
        add_quantized(&p, &[1i8, 2], &[2, 1], &[10i8, 20, 30], &[3], &mut out, &[2, 3]);
        assert_eq!(out, [11, 21, 31, 12, 22, 32]);
        sub_quantized(&p, &[1i8, 2], &[2, 1], &[10i8, 20, 30], &[3], &mut out, &[2, 3]);
        assert_eq!(out, [-9, -19, -29, -8, -18, -28]);
    }

    #[test]
    fn add_sub_mul_match_float_reference() {
        let mut rng = Lcg(5);
        for case in 0..400 {
            let s1 = rng.float(0.005, 0.2);
            let s2 = rng.float(0.005, 0.2);
            let so = rng.float(0.01, 0.3);
            let (z1, z2, zo) = (rng.range(-128, 127), rng.range(-128, 127), rng.range(-60, 60));
            let p = AddParams::new::<i8>(s1, z1, s2, z2, so, zo, NoAct).unwrap();
            let pm = MulParams::new::<i8>(s1, z1, s2, z2, so * 10.0, zo, NoAct).unwrap();
            let pu = AddParams::new::<u8>(s1, z1 + 128, s2, z2 + 128, so, zo + 128, NoAct).unwrap();
            for _ in 0..20 {
                let (a, b) = (rng.range(-128, 127), rng.range(-128, 127));
                let (ra, rb) = (deq(a, s1, z1), deq(b, s2, z2));
                let d = off_by(p.add(a, b), ra + rb, so, zo, -128, 127);
                assert!(d <= 1.0, "case {case}: add {a} {b} -> {}", p.add(a, b));
                let d = off_by(p.sub(a, b), ra - rb, so, zo, -128, 127);
                assert!(d <= 1.0, "case {case}: sub {a} {b} -> {}", p.sub(a, b));
                let d = off_by(pu.add(a + 128, b + 128), ra + rb, so, zo + 128, 0, 255);
                assert!(d <= 1.0, "case {case}: u8 add");
                let d = off_by(pm.mul(a, b), ra * rb, so * 10.0, zo, -128, 127);
                assert!(d <= 1.0, "case {case}: mul {a} {b} -> {}", pm.mul(a, b));
            }
            // int16, symmetric.
            let s1 = rng.float(1e-5, 1e-3);
            let s2 = rng.float(1e-5, 1e-3);
            let so = rng.float(2e-5, 2e-3);
            let p = AddParams::new::<i16>(s1, 0, s2, 0, so, 0, NoAct).unwrap();
            let pm = MulParams::new::<i16>(s1, 0, s2, 0, so * 0.01, 0, NoAct).unwrap();
            for _ in 0..20 {
                let (a, b) = (rng.range(-32768, 32767), rng.range(-32768, 32767));
                let (ra, rb) = (deq(a, s1, 0), deq(b, s2, 0));
                // The 15-bit headroom costs precision: allow 2 units.
                let d = off_by(p.add(a, b), ra + rb, so, 0, -32768, 32767);
                assert!(d <= 2.0, "case {case}: i16 add {a} {b} off by {d}");
                let d = off_by(p.sub(a, b), ra - rb, so, 0, -32768, 32767);
                assert!(d <= 2.0, "case {case}: i16 sub {a} {b} off by {d}");
                let d = off_by(pm.mul(a, b), ra * rb, so * 0.01, 0, -32768, 32767);
                assert!(d <= 1.0, "case {case}: i16 mul {a} {b} off by {d}");
            }
        }
    }

    #[test]
    fn mul_hand_worked_and_f32_multiplier() {
        // a: 0.5 zp 1, b: 0.25 zp -1, out 0.125 zp -3: real 0.5*0.25/0.125 = 1.
        let p = MulParams::new::<i8>(0.5, 1, 0.25, -1, 0.125, -3, NoAct).unwrap();
        // (5-1) * (7+1) = 32 -> 32 - 3.
        assert_eq!(p.mul(5, 7), 29);
        assert_eq!(p.mul(127, 127), 127);
        assert_eq!(p.mul(127, -128), -128);
        // The multiplier comes from the f32 expression.
        let (s1, s2, so) = (0.1f32, 0.3f32, 0.7f32);
        let p = MulParams::new::<i8>(s1, 0, s2, 0, so, 0, NoAct).unwrap();
        assert_eq!((p.output_multiplier, p.output_shift), quantize_multiplier((s1 * s2 / so) as f64));
        let mut out = [0i8; 4];
        let p = MulParams::new::<i8>(1.0, 0, 1.0, 0, 1.0, 0, NoAct).unwrap();
        mul_quantized(&p, &[1i8, 2, 3, 4], &[2, 2], &[3i8, -1], &[2, 1], &mut out, &[2, 2]);
        assert_eq!(out, [3, 6, -3, -4]);
    }

    #[test]
    fn pot_int16_add_sub() {
        assert_eq!(checked_log2(0.25), (true, -2));
        assert_eq!(checked_log2(1.0 / 32768.0), (true, -15));
        assert!(!checked_log2(0.3).0);
        // a at 2^-12 (the output scale), b at 2^-14: b is shifted right by 2.
        let p = AddPotParams::new(1.0 / 4096.0, 0, 1.0 / 16384.0, 0, 1.0 / 4096.0, 0, NoAct).unwrap();
        assert_eq!((p.input1_shift, p.input2_shift), (0, -2));
        let mut out = [0i16; 4];
        add_i16_pot(&p, &[100, -100, 32000, -32000], &[4], &[6, -6, 4000, -4000], &[4], &mut out, &[4]);
        // 6 >> 2 = 1.5 -> 2, -1.5 -> -2; saturating at the int16 limits.
        assert_eq!(out, [102, -102, 32767, -32768]);
        sub_i16_pot(&p, &[100, -100, 32000, -32000], &[4], &[6, -6, -4000, 4000], &[4], &mut out, &[4]);
        assert_eq!(out, [98, -98, 32767, -32768]);
        // Both inputs finer than the output is rejected, as is a non-POT scale.
        assert!(AddPotParams::new(1.0 / 8192.0, 0, 1.0 / 16384.0, 0, 1.0 / 4096.0, 0, NoAct).is_none());
        assert!(AddPotParams::new(0.3, 0, 1.0 / 16384.0, 0, 1.0 / 4096.0, 0, NoAct).is_none());
    }
}
