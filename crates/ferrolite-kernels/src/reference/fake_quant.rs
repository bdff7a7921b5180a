//! FAKE_QUANT: values quantised to `num_bits` and back to float over a
//! `[min, max]` range nudged so that 0 is exactly representable (TFLite's
//! reference kernel, itself TensorFlow's FakeQuantWithMinMaxArgs).

/// The nudged range of `[min, max]` on the integer grid
/// `quant_min..=quant_max`: `(nudged_min, nudged_max, scale)`.
pub fn nudge(min: f32, max: f32, quant_min: i32, quant_max: i32) -> (f32, f32, f32) {
    let (qmin, qmax) = (quant_min as f32, quant_max as f32);
    let scale = (max - min) / (qmax - qmin);
    let zero_point_from_min = qmin - min / scale;
    // The zero point is an integer of the grid, rounded half away from 0.
    let zero_point = if zero_point_from_min < qmin {
        qmin
    } else if zero_point_from_min > qmax {
        qmax
    } else {
        zero_point_from_min.round()
    };
    ((qmin - zero_point) * scale, (qmax - zero_point) * scale, scale)
}

/// C++'s `std::min` / `std::max` (a NaN input clamps to the range's end).
fn cmin(a: f32, b: f32) -> f32 {
    if b < a {
        b
    } else {
        a
    }
}
fn cmax(a: f32, b: f32) -> f32 {
    if a < b {
        b
    } else {
        a
    }
}

/// Fake-quantise `input` into `out` with `num_bits` bits (grid
/// `0..=2^num_bits - 1`) over `[min, max]`. The caller checks
/// `min < max` and `num_bits` in 2..=16.
pub fn fake_quant(input: &[f32], min: f32, max: f32, num_bits: u32, out: &mut [f32]) {
    debug_assert_eq!(input.len(), out.len());
    let (lo, hi, scale) = nudge(min, max, 0, (1i32 << num_bits) - 1);
    let inv_scale = 1.0 / scale;
    for (o, &x) in out.iter_mut().zip(input) {
        let clamped = cmin(hi, cmax(lo, x));
        *o = ((clamped - lo) * inv_scale).round() * scale + lo;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nudged_range_puts_zero_on_the_grid() {
        // [-1, 2] on 0..=3: scale 1, zero point 1.
        assert_eq!(nudge(-1.0, 2.0, 0, 3), (-1.0, 2.0, 1.0));
        // [-0.4, 2.6] on 0..=3: scale 1, zero point 0.4 rounds to 0.
        assert_eq!(nudge(-0.4, 2.6, 0, 3), (0.0, 3.0, 1.0));
        // [-0.6, 2.4]: zero point 0.6 rounds to 1.
        assert_eq!(nudge(-0.6, 2.4, 0, 3), (-1.0, 2.0, 1.0));
        // A range above 0 starts at 0; one below 0 ends there.
        assert_eq!(nudge(1.0, 4.0, 0, 3), (0.0, 3.0, 1.0));
        assert_eq!(nudge(-4.0, -1.0, 0, 3), (-3.0, 0.0, 1.0));
    }

    #[test]
    fn values_snap_to_the_grid_and_clamp() {
        // 2 bits over [-1, 2]: grid -1, 0, 1, 2; halves round away from 0
        // (measured from the range's start).
        let x = [-3.0, -0.6, -0.5, 0.49, 0.5, 1.5, 2.2, f32::NAN];
        let mut out = [0.0f32; 8];
        fake_quant(&x, -1.0, 2.0, 2, &mut out);
        assert_eq!(out, [-1.0, -1.0, 0.0, 0.0, 1.0, 2.0, 2.0, -1.0]);
        // 8 bits over [0, 25.5]: steps of 0.1.
        let mut out = [0.0f32; 3];
        fake_quant(&[0.04, 0.06, 30.0], 0.0, 25.5, 8, &mut out);
        assert_eq!(out, [0.0, 0.1, 25.5]);
    }
}
