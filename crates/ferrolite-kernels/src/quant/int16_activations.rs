//! int16 LOGISTIC, TANH and SOFTMAX as TFLite's reference kernels compute
//! them (the 16x8 quantisation mode: int16 activations, zero point 0).
//!
//! - LOGISTIC and TANH interpolate linearly in one 256-entry table of the
//!   sigmoid, `SIGMOID_TABLE_U16` (sigmoid(i / 24) in 0.16 fixed point, as
//!   published in TFLite's `common.h`; tanh uses `tanh(x) = 2 sigmoid(2x) - 1`).
//!   The input is first brought to a scale of `1 / (3 * 4096)` by an integer
//!   multiplier and shift computed at prepare ([`Int16ActivationParams`]).
//! - SOFTMAX uses two 513-entry tables built at prepare by TFLite's
//!   `LUTPopulate<int16_t>` ([`lut_populate_i16`]): `exp` on `[-10, 0]` and
//!   `1 / (1 + x)` on `[0, 1]`, read with linear interpolation
//!   ([`lut_lookup_i16`]).

use super::multiplier::{multiply_by_quantized_multiplier, quantize_multiplier};

/// sigmoid(i / 24) scaled by 65536 for i in 0..256 (TFLite's
/// `sigmoid_table_uint16`). The published values are not all
/// `round(65536 * sigmoid(i / 24))` (they are up to two units above it), so
/// they are data here, not computed; a test bounds them against the formula.
pub const SIGMOID_TABLE_U16: [u16; 256] = [
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794, 41432, 42064, 42688,
    43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409,
    51865, 52311, 52745, 53169, 53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110,
    61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186,
    63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786, 64816, 64845, 64873, 64900,
    64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079, 65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208,
    65221, 65234, 65246, 65258, 65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433, 65438, 65442, 65445, 65449,
    65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474, 65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491,
    65493, 65495, 65497, 65498, 65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524,
    65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530,
    65530, 65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65535,
];

/// TFLite's `CheckedLog2`: `(is a power of two within 1e-3 in log2, rounded log2)`,
/// computed in `f32` as TFLite does.
pub fn checked_log2(x: f32) -> (bool, i32) {
    let log2 = x.ln() * (1.0f32 / 2.0f32.ln());
    let rounded = log2.round();
    ((log2 - rounded).abs() < 1e-3, rounded as i32)
}

/// Input rescaling of int16 LOGISTIC / TANH: `x * multiplier`, rounded
/// right shift by `left_shift` (the name is TFLite's), giving the input in
/// units of `1 / (3 * 4096)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Int16ActivationParams {
    pub multiplier: i32,
    pub left_shift: i32,
}

impl Int16ActivationParams {
    /// LOGISTIC's prepare: a power-of-two input scale of exactly 2^-12 uses
    /// the multiplier 3 directly; any other scale gets a multiplier in
    /// `(16383.5, 32767]` and a shift.
    pub fn for_logistic(input_scale: f32) -> Option<Self> {
        Self::new(input_scale, |shift| shift == 0)
    }

    /// TANH's prepare: as LOGISTIC, but the power-of-two path also takes
    /// 2^-11 (shift 1, multiplier 6).
    pub fn for_tanh(input_scale: f32) -> Option<Self> {
        Self::new(input_scale, |shift| shift == 0 || shift == 1)
    }

    fn new(input_scale: f32, pot_shift_ok: impl Fn(i32) -> bool) -> Option<Self> {
        if !(input_scale.is_finite() && input_scale > 0.0) {
            return None;
        }
        const INPUT_INTEGER_BITS: i32 = 3;
        let (pot, log2) = checked_log2(input_scale);
        let shift = (15 - INPUT_INTEGER_BITS) + log2;
        if pot && pot_shift_ok(shift) {
            // The kernel's power-of-two case: multiplier 3 << shift, no shift.
            return Some(Self { multiplier: 3 << shift, left_shift: 0 });
        }
        let mut multiplier = input_scale as f64 * 4096.0 * 3.0;
        let mut left_shift = 0;
        while multiplier <= 32767.0 / 2.0 && left_shift <= 30 {
            left_shift += 1;
            multiplier *= 2.0;
        }
        if multiplier >= i32::MAX as f64 {
            return None;
        }
        Some(Self { multiplier: multiplier as i32, left_shift })
    }

    /// The rescaled input; products wrap as TFLite's `int32` ones would
    /// (only for input scales far above any real model's).
    #[inline]
    fn rescale(&self, x: i16) -> i32 {
        let round = if self.left_shift > 0 { 1i32 << (self.left_shift - 1) } else { 0 };
        (x as i32).wrapping_mul(self.multiplier).wrapping_add(round) >> self.left_shift
    }
}

/// int16 LOGISTIC of one value; the output scale is 1/32768.
#[inline]
pub fn logistic_i16(p: &Int16ActivationParams, x: i16) -> i16 {
    let v = p.rescale(x);
    let abs = v.unsigned_abs();
    let hi = (abs >> 9) as usize;
    let interpolated: u32 = if hi >= 255 {
        0x7fff << 10
    } else {
        let (a, b) = (SIGMOID_TABLE_U16[hi] as u32, SIGMOID_TABLE_U16[hi + 1] as u32);
        (a << 9) + (abs & 0x1ff) * (b - a)
    };
    // sigmoid(-x) = 1 - sigmoid(x); round to 16 bits.
    let r = if v >= 0 {
        interpolated.wrapping_add(1 << 9)
    } else {
        (1u32 << 25).wrapping_sub(interpolated).wrapping_add((1 << 9) - 1)
    };
    (r >> 10) as i16
}

/// int16 TANH of one value; the output scale is 1/32768.
#[inline]
pub fn tanh_i16(p: &Int16ActivationParams, x: i16) -> i16 {
    let v = p.rescale(x);
    let abs = v.unsigned_abs();
    let hi = (abs >> 8) as usize;
    let interpolated: i32 = if hi >= 255 {
        0xffff << 8
    } else {
        let (a, b) = (SIGMOID_TABLE_U16[hi] as u32, SIGMOID_TABLE_U16[hi + 1] as u32);
        ((a << 8) + (abs & 0xff) * (b - a)) as i32
    };
    // tanh(x) = 2 sigmoid(2x) - 1, odd; round to 16 bits.
    let r = if v >= 0 { interpolated - (1 << 23) + (1 << 7) } else { -interpolated + (1 << 23) + (1 << 7) - 1 };
    (r >> 8) as i16
}

/// TFLite's `LUTPopulate<int16_t>` (all in `f32`): 512 segments over the
/// int16 input range, each anchor lowered by half the error linear
/// interpolation makes at the segment's midpoint, and a closing anchor for
/// the last slope.
pub fn lut_populate_i16(
    input_scale: f32,
    input_zero_point: i32,
    output_scale: f32,
    output_zero_point: i32,
    f: impl Fn(f32) -> f32,
) -> [i16; 513] {
    let input_min = input_scale * (i16::MIN as i32 - input_zero_point) as f32;
    let input_max = input_scale * (i16::MAX as i32 - input_zero_point) as f32;
    let output_min = output_scale * (i16::MIN as i32 - output_zero_point) as f32;
    let output_max = output_scale * (i16::MAX as i32 - output_zero_point) as f32;
    const STEPS: usize = 512;
    let step = (input_max - input_min) / STEPS as f32;
    let half_step = step / 2.0;
    let inv = 65536.0f32 / (output_max - output_min);
    let clamp = |v: f32| v.clamp(i16::MIN as f32, i16::MAX as f32) as i16;
    let mut lut = [0i16; STEPS + 1];
    for (i, entry) in lut.iter_mut().take(STEPS).enumerate() {
        let at = input_min + i as f32 * step;
        let val = f(at);
        let val_mid = f(at + half_step);
        let val_next = f(input_min + (i + 1) as f32 * step);
        let sample = (val * inv).round();
        let mid_interp = ((val_next * inv + (val * inv).round()) / 2.0).round();
        let mid = (val_mid * inv).round();
        let bias = ((mid_interp - mid) / 2.0).round();
        *entry = clamp(sample - bias);
    }
    lut[STEPS] = clamp((f(input_max) * inv).round());
    lut
}

/// TFLite's int16 `LUTLookup`: the top 9 bits pick a segment, the low 7
/// interpolate (slope and result wrap to 16 bits, as in TFLite).
#[inline]
pub fn lut_lookup_i16(value: i16, lut: &[i16; 513]) -> i16 {
    let index = (256 + (value >> 7) as i32) as usize;
    let offset = (value & 0x7f) as i32;
    let base = lut[index];
    let slope = lut[index + 1].wrapping_sub(base) as i32;
    let delta = (slope * offset + 64) >> 7;
    (base as i32 + delta) as i16
}

/// Prepared int16 SOFTMAX (`SoftmaxPrepare` for int16 input and output).
#[derive(Clone, Debug)]
pub struct SoftmaxI16Params {
    pub input_multiplier: i32,
    pub input_shift: i32,
    exp_lut: Box<[i16; 513]>,
    one_over_one_plus_x_lut: Box<[i16; 513]>,
}

impl SoftmaxI16Params {
    /// `None` for a scale or beta that cannot be quantised.
    pub fn new(input_scale: f32, beta: f32) -> Option<Self> {
        // Input differences are rescaled so that [-65535, 0] covers [-10, 0];
        // TFLite forms `scale * beta` in f32, then divides in f64.
        let rescale = (input_scale * beta) as f64 / (10.0 / 65535.0);
        if !(rescale.is_finite() && rescale > 0.0) {
            return None;
        }
        let (input_multiplier, input_shift) = quantize_multiplier(rescale);
        let range = 65535.0f32;
        let exp_lut = Box::new(lut_populate_i16(10.0 / range, i16::MAX as i32, 2.0 / range, 0, f32::exp));
        let one_over = Box::new(lut_populate_i16(1.0 / range, i16::MIN as i32, 2.0 / range, 0, |x| 1.0 / (1.0 + x)));
        Some(Self { input_multiplier, input_shift, exp_lut, one_over_one_plus_x_lut: one_over })
    }
}

/// One row of TFLite's `SoftmaxInt16`; the output scale is 1/32768.
pub fn softmax_row_i16(p: &SoftmaxI16Params, input: &[i16], output: &mut [i16]) {
    let Some(&max) = input.iter().max() else {
        return;
    };
    let mut sum: i32 = 0;
    for (o, &x) in output.iter_mut().zip(input) {
        let scaled = multiply_by_quantized_multiplier(x as i32 - max as i32, p.input_multiplier, p.input_shift);
        let centred = scaled.wrapping_add(32767).clamp(-32768, 32767) as i16;
        *o = lut_lookup_i16(centred, &p.exp_lut);
        sum = sum.wrapping_add(*o as i32);
    }
    // 1 / sum through the 1/(1+x) table: normalise the sum to [1, 2) in Q1.15.
    let headroom_plus_one = (sum as u32).leading_zeros() as i32;
    if headroom_plus_one == 0 || headroom_plus_one > 31 {
        // TFLite's shifts are undefined here; the sum of at least one
        // exp(0) = 32767 term never gets here for a non-empty row.
        output.iter_mut().for_each(|o| *o = 0);
        return;
    }
    let shifted = (((sum as i64) << (headroom_plus_one - 1)) + (1 << 13)) >> 14;
    let centred = (shifted as i32 - ((1 << 15) + (1 << 16))).clamp(-32768, 32767) as i16;
    let reciprocal = lut_lookup_i16(centred, &p.one_over_one_plus_x_lut) as i64;
    let right_shift = 31 - headroom_plus_one;
    let round = 1i64 << (right_shift - 1);
    for o in output.iter_mut() {
        let r = ((*o as i64 * reciprocal + round) >> right_shift) as i32;
        *o = r.clamp(0, 32767) as i16;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigmoid_table_is_close_to_the_formula() {
        for (i, &v) in SIGMOID_TABLE_U16.iter().enumerate() {
            let exact = 65536.0 / (1.0 + (-(i as f64) / 24.0).exp());
            assert!((v as f64 - exact).abs() <= 2.0, "entry {i}: {v} vs {exact}");
        }
        assert!(SIGMOID_TABLE_U16.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn checked_log2_spots_powers_of_two() {
        assert_eq!(checked_log2(1.0 / 4096.0), (true, -12));
        assert_eq!(checked_log2(0.5), (true, -1));
        assert!(!checked_log2(0.3).0);
    }

    #[test]
    fn activation_params_hand_worked() {
        // 2^-12: the power-of-two path for both (multiplier 3, no shift).
        let p = Int16ActivationParams::for_logistic(1.0 / 4096.0).unwrap();
        assert_eq!(p, Int16ActivationParams { multiplier: 3, left_shift: 0 });
        // 2^-11 is a power of two TANH takes (3 << 1) but LOGISTIC rescales:
        // 2^-11 * 12288 = 6, doubled 12 times to 24576.
        assert_eq!(
            Int16ActivationParams::for_tanh(1.0 / 2048.0).unwrap(),
            Int16ActivationParams { multiplier: 6, left_shift: 0 }
        );
        assert_eq!(
            Int16ActivationParams::for_logistic(1.0 / 2048.0).unwrap(),
            Int16ActivationParams { multiplier: 24576, left_shift: 12 }
        );
        // 0.001 * 12288 = 12.288, doubled 11 times = 25165.824 -> 25165.
        assert_eq!(
            Int16ActivationParams::for_logistic(0.001).unwrap(),
            Int16ActivationParams { multiplier: 25165, left_shift: 11 }
        );
        assert!(Int16ActivationParams::for_tanh(0.0).is_none());
    }

    #[test]
    fn logistic_and_tanh_hand_worked() {
        let p = Int16ActivationParams::for_logistic(1.0 / 4096.0).unwrap();
        // sigmoid(0) = 0.5 -> 16384; (32768 << 9 + 512) >> 10.
        assert_eq!(logistic_i16(&p, 0), 16384);
        // +-8: 32768 * sigmoid(8) = 32757.0, 32768 * sigmoid(-8) = 10.98.
        assert_eq!(logistic_i16(&p, i16::MAX), 32757);
        assert_eq!(logistic_i16(&p, i16::MIN), 11);
        // Saturation: with scale 0.002 the input reaches +-65.5.
        let wide = Int16ActivationParams::for_logistic(0.002).unwrap();
        assert_eq!(logistic_i16(&wide, i16::MAX), 32767);
        // TFLite saturates |x| to 0x7fff << 10, so the far negative side
        // ends at (2^25 - (0x7fff << 10) + 511) >> 10 = 1, not 0.
        assert_eq!(logistic_i16(&wide, i16::MIN), 1);
        let t = Int16ActivationParams::for_tanh(1.0 / 4096.0).unwrap();
        assert_eq!(tanh_i16(&t, 0), 0);
        assert_eq!(tanh_i16(&t, i16::MAX), 32767);
        assert_eq!(tanh_i16(&t, i16::MIN), -32767);
    }

    #[test]
    fn logistic_and_tanh_follow_the_float_functions() {
        for scale in [1.0f32 / 4096.0, 1.0 / 2048.0, 0.00037, 0.002] {
            let p = Int16ActivationParams::for_logistic(scale).unwrap();
            let t = Int16ActivationParams::for_tanh(scale).unwrap();
            for x in (i16::MIN..=i16::MAX).step_by(97) {
                let real = x as f64 * scale as f64;
                let want = 32768.0 / (1.0 + (-real).exp());
                let got = logistic_i16(&p, x) as f64;
                assert!((got - want.min(32767.0)).abs() <= 3.0, "logistic({real}) at scale {scale}: {got} vs {want}");
                let want = 32768.0 * real.tanh();
                let got = tanh_i16(&t, x) as f64;
                assert!((got - want.clamp(-32768.0, 32767.0)).abs() <= 4.0, "tanh({real}): {got} vs {want}");
            }
        }
    }

    #[test]
    fn lut_lookup_interpolates_between_anchors() {
        let mut lut = [0i16; 513];
        for (i, v) in lut.iter_mut().enumerate() {
            *v = (i as i32 * 100 - 25600).clamp(-32768, 32767) as i16;
        }
        // value 0: index 256, offset 0 -> lut[256] = 0.
        assert_eq!(lut_lookup_i16(0, &lut), 0);
        // value 64: offset 64 of 128 -> half the slope of 100 = 50.
        assert_eq!(lut_lookup_i16(64, &lut), 50);
        // value -128: index 255 -> -100.
        assert_eq!(lut_lookup_i16(-128, &lut), -100);
    }

    #[test]
    fn softmax_i16_sums_to_one_and_follows_the_float_softmax() {
        let scale = 0.001f32;
        let p = SoftmaxI16Params::new(scale, 1.0).unwrap();
        let input: Vec<i16> = vec![0, 1000, -2000, 3000, 3000, -32768, 12];
        let mut out = vec![0i16; input.len()];
        softmax_row_i16(&p, &input, &mut out);
        let m = input.iter().map(|&x| x as f64 * scale as f64).fold(f64::MIN, f64::max);
        let denom: f64 = input.iter().map(|&x| (x as f64 * scale as f64 - m).exp()).sum();
        for (&x, &o) in input.iter().zip(&out) {
            let want = (x as f64 * scale as f64 - m).exp() / denom * 32768.0;
            assert!((o as f64 - want).abs() <= 20.0, "{x}: {o} vs {want}");
        }
        let total: i32 = out.iter().map(|&o| o as i32).sum();
        assert!((total - 32768).abs() <= 40, "sum {total}");
        // One element: probability 1.
        let mut one = [0i16; 1];
        softmax_row_i16(&p, &[-5], &mut one);
        assert!(one[0] >= 32700, "{}", one[0]);
    }
}
