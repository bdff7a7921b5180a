//! 256-entry lookup tables for 8-bit elementwise activations.
//!
//! TFLite's LOGISTIC and TANH for int8/uint8 (both its reference and its
//! generic optimised kernel) do not compute in fixed point: prepare builds a
//! table over all 256 inputs by dequantising, applying the float function,
//! and requantising; eval is a lookup. So bit-exactness comes down to
//! repeating the table construction exactly, in `f32`:
//!
//! ```text
//! inverse_scale = 1 / output_scale                      (f32)
//! x             = input_scale * (q - input_zero_point)   (f32)
//! y             = f(x)                                   (f32: expf / tanhf)
//! out           = clamp((int)(round(y * inverse_scale) + output_zero_point))
//! ```
//!
//! `round` is C's (half away from zero), which is [`f32::round`]. The float
//! functions go through the platform libm, as TFLite's do; on the same libm
//! the tables match exactly.
//!
//! Tables are indexed by the input's raw byte (`x as u8`), as TFLite indexes
//! them, so `table[(x as u8) as usize]` is the output for `x` for both int8
//! and uint8.

/// Builds an int8 -> int8 table for `f`.
pub fn lut_i8(
    input_scale: f32,
    input_zero_point: i32,
    output_scale: f32,
    output_zero_point: i32,
    f: impl Fn(f32) -> f32,
) -> [i8; 256] {
    let mut table = [0i8; 256];
    for q in i8::MIN as i32..=i8::MAX as i32 {
        let v = requantize_entry(q, input_scale, input_zero_point, output_scale, output_zero_point, -128, 127, &f);
        table[q as i8 as u8 as usize] = v as i8;
    }
    table
}

/// Builds a uint8 -> uint8 table for `f`.
pub fn lut_u8(
    input_scale: f32,
    input_zero_point: i32,
    output_scale: f32,
    output_zero_point: i32,
    f: impl Fn(f32) -> f32,
) -> [u8; 256] {
    let mut table = [0u8; 256];
    for q in 0..=255i32 {
        let v = requantize_entry(q, input_scale, input_zero_point, output_scale, output_zero_point, 0, 255, &f);
        table[q as usize] = v as u8;
    }
    table
}

#[allow(clippy::too_many_arguments)]
#[inline]
fn requantize_entry(
    q: i32,
    input_scale: f32,
    input_zero_point: i32,
    output_scale: f32,
    output_zero_point: i32,
    min: i32,
    max: i32,
    f: &impl Fn(f32) -> f32,
) -> i32 {
    let inverse_scale = 1.0f32 / output_scale;
    let dequantized = input_scale * (q - input_zero_point) as f32;
    let transformed = f(dequantized);
    let rescaled = (transformed * inverse_scale).round();
    // The zero point is added in float, then truncated to int; `as`
    // saturates where C++ would be undefined (never for sane scales).
    let quantized = (rescaled + output_zero_point as f32) as i32;
    quantized.clamp(min, max)
}

/// The logistic function exactly as TFLite's table lambda writes it:
/// `1.0f / (1.0f + std::exp(-x))`, all in `f32`.
#[inline]
pub fn logistic_f32(x: f32) -> f32 {
    1.0f32 / (1.0f32 + (-x).exp())
}

/// int8 LOGISTIC table. TFLite requires output scale 1/256 and zero point
/// -128; the table itself does not depend on that.
pub fn logistic_lut_i8(
    input_scale: f32,
    input_zero_point: i32,
    output_scale: f32,
    output_zero_point: i32,
) -> [i8; 256] {
    lut_i8(input_scale, input_zero_point, output_scale, output_zero_point, logistic_f32)
}

/// uint8 LOGISTIC table (TFLite requires output scale 1/256, zero point 0).
pub fn logistic_lut_u8(
    input_scale: f32,
    input_zero_point: i32,
    output_scale: f32,
    output_zero_point: i32,
) -> [u8; 256] {
    lut_u8(input_scale, input_zero_point, output_scale, output_zero_point, logistic_f32)
}

/// int8 TANH table (`std::tanh` on `f32`; TFLite expects output scale 1/128,
/// zero point 0).
pub fn tanh_lut_i8(input_scale: f32, input_zero_point: i32, output_scale: f32, output_zero_point: i32) -> [i8; 256] {
    lut_i8(input_scale, input_zero_point, output_scale, output_zero_point, f32::tanh)
}

/// uint8 TANH table (TFLite expects output scale 1/128, zero point 128).
pub fn tanh_lut_u8(input_scale: f32, input_zero_point: i32, output_scale: f32, output_zero_point: i32) -> [u8; 256] {
    lut_u8(input_scale, input_zero_point, output_scale, output_zero_point, f32::tanh)
}

/// Looks up an int8 value in a table built by [`lut_i8`].
#[inline(always)]
pub fn lookup_i8(table: &[i8; 256], x: i8) -> i8 {
    table[x as u8 as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logistic_i8_ends_and_zero() {
        // Typical: input scale 0.1, zp 0 ; output 1/256, zp -128.
        let t = logistic_lut_i8(0.1, 0, 1.0 / 256.0, -128);
        // x = 0 -> 0.5 -> 128 - 128 = 0.
        assert_eq!(lookup_i8(&t, 0), 0);
        // x = 12.7 -> sigmoid = 0.999996... * 256 = 255.999 -> 256 -> 128 -> clamp 127.
        assert_eq!(lookup_i8(&t, 127), 127);
        // x = -12.8 -> 2.76e-6 * 256 = 0.0007 -> 0 -> -128.
        assert_eq!(lookup_i8(&t, -128), -128);
        // x = 1.0 -> 0.7310586 * 256 = 187.15 -> 187 -> 59.
        assert_eq!(lookup_i8(&t, 10), 59);
        // x = -1.0 -> 0.2689414 * 256 = 68.85 -> 69 -> -59.
        assert_eq!(lookup_i8(&t, -10), -59);
        // Raw-byte indexing: -1 lives at index 255.
        assert_eq!(t[255], lookup_i8(&t, -1));
    }

    #[test]
    fn tanh_i8_ends_and_zero() {
        let t = tanh_lut_i8(0.05, 3, 1.0 / 128.0, 0);
        // q = zp -> x = 0 -> 0.
        assert_eq!(lookup_i8(&t, 3), 0);
        // q = 127 -> x = 6.2 -> tanh ~ 0.99999 * 128 -> 128 -> clamp 127.
        assert_eq!(lookup_i8(&t, 127), 127);
        // q = -128 -> x = -6.55 -> -128.
        assert_eq!(lookup_i8(&t, -128), -128);
        // q = 13 -> x = 0.5 -> tanh = 0.46211716 * 128 = 59.15 -> 59.
        assert_eq!(lookup_i8(&t, 13), 59);
        assert_eq!(lookup_i8(&t, -7), -59);
    }

    #[test]
    fn u8_tables() {
        let t = logistic_lut_u8(0.1, 128, 1.0 / 256.0, 0);
        assert_eq!(t[128], 128);
        assert_eq!(t[255], 255);
        assert_eq!(t[0], 0);
        let t = tanh_lut_u8(0.1, 128, 1.0 / 128.0, 128);
        assert_eq!(t[128], 128);
        assert_eq!(t[255], 255);
        assert_eq!(t[0], 0);
        // x = 0.5 -> 0.4621 * 128 = 59.15 -> 59 + 128.
        assert_eq!(t[133], 187);
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        // Identity with output scale 2 * input scale: q/2 exactly, so odd
        // q land on .5 and must round away from zero.
        let t = lut_i8(1.0, 0, 2.0, 0, |x| x);
        assert_eq!(lookup_i8(&t, 3), 2);
        assert_eq!(lookup_i8(&t, -3), -2);
        assert_eq!(lookup_i8(&t, 1), 1);
        assert_eq!(lookup_i8(&t, -1), -1);
        assert_eq!(lookup_i8(&t, -128), -64);
    }

    #[test]
    fn tables_track_float_functions() {
        let (s, zp) = (0.07f32, -5);
        let t = logistic_lut_i8(s, zp, 1.0 / 256.0, -128);
        for q in -128..=127i32 {
            let x = s as f64 * (q - zp) as f64;
            let want = ((1.0 / (1.0 + (-x).exp())) * 256.0).round() - 128.0;
            assert!((lookup_i8(&t, q as i8) as f64 - want.clamp(-128.0, 127.0)).abs() <= 1.0);
        }
    }
}
