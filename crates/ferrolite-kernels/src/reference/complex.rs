//! REAL, IMAG and COMPLEX_ABS: complex tensors (interleaved `(re, im)`
//! pairs of f32 for complex64, of f64 for complex128) to real ones.

/// The real part of each complex value.
pub fn real<T: Copy>(z: &[T], out: &mut [T]) {
    debug_assert_eq!(z.len(), 2 * out.len());
    for (o, pair) in out.iter_mut().zip(z.chunks_exact(2)) {
        *o = pair[0];
    }
}

/// The imaginary part of each complex value.
pub fn imag<T: Copy>(z: &[T], out: &mut [T]) {
    debug_assert_eq!(z.len(), 2 * out.len());
    for (o, pair) in out.iter_mut().zip(z.chunks_exact(2)) {
        *o = pair[1];
    }
}

/// The magnitude of each complex64 value. `hypot`, as C++'s
/// `std::abs(std::complex<float>)`, neither overflows for large parts nor
/// loses small ones the way `sqrt(re * re + im * im)` would.
pub fn abs_f32(z: &[f32], out: &mut [f32]) {
    debug_assert_eq!(z.len(), 2 * out.len());
    for (o, pair) in out.iter_mut().zip(z.chunks_exact(2)) {
        *o = pair[0].hypot(pair[1]);
    }
}

/// The magnitude of each complex128 value.
pub fn abs_f64(z: &[f64], out: &mut [f64]) {
    debug_assert_eq!(z.len(), 2 * out.len());
    for (o, pair) in out.iter_mut().zip(z.chunks_exact(2)) {
        *o = pair[0].hypot(pair[1]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_and_magnitudes() {
        let z = [3.0f32, -4.0, -0.5, 0.0, 0.0, 2.0];
        let mut out = [0.0f32; 3];
        real(&z, &mut out);
        assert_eq!(out, [3.0, -0.5, 0.0]);
        imag(&z, &mut out);
        assert_eq!(out, [-4.0, 0.0, 2.0]);
        abs_f32(&z, &mut out);
        assert_eq!(out, [5.0, 0.5, 2.0]);
    }

    #[test]
    fn magnitudes_do_not_overflow_or_underflow() {
        let mut out = [0.0f32; 2];
        abs_f32(&[3e30, 4e30, 3e-30, 4e-30], &mut out);
        assert_eq!(out[0], 5e30);
        assert!((out[1] - 5e-30).abs() <= 1e-36, "{}", out[1]);
        let mut out = [0.0f64; 2];
        abs_f64(&[-6.0, 8.0, 1e300, 1e300], &mut out);
        assert_eq!(out[0], 10.0);
        assert!((out[1] / 1e300 - 2f64.sqrt()).abs() < 1e-15, "{}", out[1]);
    }
}
