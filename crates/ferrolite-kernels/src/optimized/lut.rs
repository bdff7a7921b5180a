//! A 256-entry byte table applied to every byte of a tensor: the 8-bit
//! activations (LOGISTIC, TANH, GELU, ELU, HARD_SWISH, LEAKY_RELU, the RELU
//! family) whose output depends on the input byte alone. The runtime
//! builds the table at prepare by running the reference on all 256 bytes,
//! so any kernel here is bit-exact with it by construction.
//!
//! - `x8_lut_avx512vbmi`: two `vpermi2b` (each a lookup in 128 bytes of the
//!   table by the low seven bits) and a blend on the top bit: 64 bytes per
//!   four instructions.
//! - `x8_lut_avx2`: sixteen `vpshufb` lookups in 16-byte slices of the
//!   table, combined by XOR, in two passes of eight (the low half indexed
//!   by the byte, the high half by the byte with its top bit flipped).
//!   Slice `k` holds `t[16 k + j] ^ t[16 (k - 1) + j]` (the first of each
//!   half plain), and the index drops by 16 before each step, going
//!   negative (so `vpshufb` gives 0) once past the byte's own slice: the
//!   XOR of the slices a byte reaches telescopes to its entry.
//! - `x8_lut_scalar`: a plain loop, always compiled.

use crate::optimized::isa::IsaLevel;
#[cfg(target_arch = "x86_64")]
use crate::optimized::isa::{Avx2Fma, Avx512Vbmi};

/// `out[i] = table[input[i]]` at `isa` (clamped to the CPU).
pub fn x8_lut(isa: IsaLevel, table: &[u8; 256], input: &[u8], out: &mut [u8]) {
    assert_eq!(input.len(), out.len(), "table lookup: input and output lengths differ");
    #[cfg(target_arch = "x86_64")]
    {
        if let Some(t) = Avx512Vbmi::new(isa) {
            return x86::x8_lut_avx512vbmi(t, table, input, out);
        }
        if let Some(t) = Avx2Fma::new(isa) {
            return x86::x8_lut_avx2(t, table, input, out);
        }
    }
    let _ = isa;
    x8_lut_scalar(table, input, out)
}

fn x8_lut_scalar(table: &[u8; 256], input: &[u8], out: &mut [u8]) {
    for (o, &b) in out.iter_mut().zip(input) {
        *o = table[b as usize];
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86 {
    use super::x8_lut_scalar;
    use crate::optimized::isa::{Avx2Fma, Avx512Vbmi};
    use std::arch::x86_64::*;

    pub(super) fn x8_lut_avx512vbmi(_t: Avx512Vbmi, table: &[u8; 256], input: &[u8], out: &mut [u8]) {
        // SAFETY: the token proves AVX-512 F/BW and VBMI; the lengths are
        // equal (checked by the caller).
        unsafe { lut_vbmi(table, input, out) }
    }

    /// # Safety
    /// AVX-512 F/BW/VBMI; `input` and `out` of the same length.
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    unsafe fn lut_vbmi(table: &[u8; 256], input: &[u8], out: &mut [u8]) {
        let n = out.len();
        let (ip, op, tp) = (input.as_ptr(), out.as_mut_ptr(), table.as_ptr());
        // SAFETY: the table is four 64-byte loads; every other access is a
        // whole or masked 64-byte block below `n` in both slices.
        unsafe {
            let t: [__m512i; 4] = std::array::from_fn(|i| _mm512_loadu_si512(tp.add(64 * i) as *const _));
            let look = |x: __m512i| {
                let lo = _mm512_permutex2var_epi8(t[0], x, t[1]);
                let hi = _mm512_permutex2var_epi8(t[2], x, t[3]);
                _mm512_mask_blend_epi8(_mm512_movepi8_mask(x), lo, hi)
            };
            let mut i = 0;
            while i + 64 <= n {
                _mm512_storeu_si512(op.add(i) as *mut _, look(_mm512_loadu_si512(ip.add(i) as *const _)));
                i += 64;
            }
            if i < n {
                let k: __mmask64 = (1u64 << (n - i)) - 1;
                _mm512_mask_storeu_epi8(
                    op.add(i) as *mut i8,
                    k,
                    look(_mm512_maskz_loadu_epi8(k, ip.add(i) as *const i8)),
                );
            }
        }
    }

    pub(super) fn x8_lut_avx2(_t: Avx2Fma, table: &[u8; 256], input: &[u8], out: &mut [u8]) {
        // SAFETY: the token proves AVX2; the lengths are equal (checked by
        // the caller).
        unsafe { lut_avx2(table, input, out) }
    }

    /// # Safety
    /// AVX2; `input` and `out` of the same length.
    #[target_feature(enable = "avx2")]
    unsafe fn lut_avx2(table: &[u8; 256], input: &[u8], out: &mut [u8]) {
        let n = out.len();
        // Slice `k` XORed with slice `k - 1`, except the first of each half
        // (slices 0 and 8), which stand alone.
        let chained: [u8; 256] =
            std::array::from_fn(|i| if i % 128 < 16 { table[i] } else { table[i] ^ table[i - 16] });
        let (ip, op) = (input.as_ptr(), out.as_mut_ptr());
        // SAFETY: 16-byte loads of `chained` and whole 32-byte blocks below
        // `n` in both slices; the rest goes through the scalar loop.
        unsafe {
            let t: [__m256i; 16] = std::array::from_fn(|i| {
                _mm256_broadcastsi128_si256(_mm_loadu_si128(chained.as_ptr().add(16 * i) as *const _))
            });
            let (sixteen, top) = (_mm256_set1_epi8(16), _mm256_set1_epi8(-128));
            let mut i = 0;
            while i + 32 <= n {
                let x = _mm256_loadu_si256(ip.add(i) as *const __m256i);
                // The low half of the table by `x` itself and the high half
                // by `x ^ 0x80`: a byte of the other half is negative as a
                // signed byte in that pass, and stays so (saturating), so
                // `vpshufb` gives it 0 at every step. Within its own half a
                // byte `16 m + j` collects slices 0..=m at position j,
                // which XOR to its entry; past them its index is negative.
                let mut acc = _mm256_setzero_si256();
                for (half, slices) in t.chunks_exact(8).enumerate() {
                    let mut v = if half == 0 { x } else { _mm256_xor_si256(x, top) };
                    for s in slices {
                        acc = _mm256_xor_si256(acc, _mm256_shuffle_epi8(*s, v));
                        v = _mm256_subs_epi8(v, sixteen);
                    }
                }
                _mm256_storeu_si256(op.add(i) as *mut __m256i, acc);
                i += 32;
            }
            x8_lut_scalar(table, &input[i..n], &mut out[i..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimized::isa::available_levels;
    use crate::optimized::testutil::Rng;

    #[test]
    fn every_level_looks_up_every_byte() {
        let mut rng = Rng::new(0x107);
        for case in 0..6 {
            let table: [u8; 256] = std::array::from_fn(|i| match case {
                0 => i as u8,
                1 => 255 - i as u8,
                _ => (rng.range(0, 256)) as u8,
            });
            for n in [0, 1, 31, 32, 33, 63, 64, 65, 200, 256, 1000] {
                // Every byte value appears (the first 256), then random ones.
                let input: Vec<u8> = (0..n).map(|i| if i < 256 { i as u8 } else { rng.range(0, 256) as u8 }).collect();
                let want: Vec<u8> = input.iter().map(|&b| table[b as usize]).collect();
                for &isa in &available_levels() {
                    let mut got = vec![0xa5; n];
                    x8_lut(isa, &table, &input, &mut got);
                    assert_eq!(got, want, "{isa:?} case {case} n={n}");
                }
            }
        }
    }
}
