//! Off x86-64 the `Avx2Fma` token can never be made; these stand-ins keep
//! the shared code compiling and are never called.

use super::{DwFast, DwTaps, FloatTail, PackedQs8, Panel, Requant, RequantMode, Q8};
use crate::optimized::isa::{Avx2Fma, Avx512, Avx512Vnni};

#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_float_tiles(
    _: Avx2Fma,
    _: usize,
    _: usize,
    _: &[i16],
    _: usize,
    _: &PackedQs8,
    _: std::ops::Range<usize>,
    _: &FloatTail<'_>,
    _: &mut [f32],
    _: usize,
    _: usize,
) {
    unreachable!("no AVX2 token off x86-64")
}

#[allow(dead_code)]
pub(super) struct Epilogue<'a> {
    pub rq: &'a [i32],
    pub bias: &'a [i32],
    pub mode: RequantMode,
    pub oc: [i32; 3],
}

#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_requant_tiles<T: Q8>(
    _: Avx2Fma,
    _: usize,
    _: usize,
    _: &[i16],
    _: usize,
    _: &PackedQs8,
    _: std::ops::Range<usize>,
    _: &Epilogue<'_>,
    _: &mut [T],
    _: usize,
    _: usize,
) {
    unreachable!("no AVX2 token off x86-64")
}

#[allow(clippy::too_many_arguments)]
pub(super) fn dwconv16_span<T: Q8>(
    _: Avx2Fma,
    _: Option<Avx512>,
    _: Option<Avx512Vnni>,
    _: &[T],
    _: &DwFast,
    _: &DwTaps,
    _: &Requant,
    _: RequantMode,
    _: Option<&[i32]>,
    _: [i32; 3],
    _: usize,
    _: usize,
    _: usize,
    _: &mut [T],
) {
    unreachable!("no AVX2 token off x86-64")
}

#[allow(clippy::too_many_arguments)]
pub(super) fn dwconv16_row<T: Q8>(
    _: Avx2Fma,
    _: Option<Avx512>,
    _: &[T],
    _: &DwFast,
    _: &Requant,
    _: RequantMode,
    _: Option<&[i32]>,
    _: [i32; 3],
    _: &[(usize, usize)],
    _: &mut [T],
) {
    unreachable!("no AVX2 token off x86-64")
}

#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_tile(_: Avx2Fma, _: usize, _: usize, _: &[i16], _: usize, _: Panel<'_>, _: &mut [i32], _: usize) {
    unreachable!("no AVX2 token off x86-64")
}

pub(super) fn dwconv_row<T: Q8>(_: Avx2Fma, _: &[T], _: &[i32], _: &[(usize, usize)], _: i32, _: &mut [i32]) -> usize {
    unreachable!("no AVX2 token off x86-64")
}

#[allow(clippy::too_many_arguments)]
pub(super) fn requant8(
    _: Avx2Fma,
    _: &[i32],
    _: Option<&[i32]>,
    _: &[i32],
    _: &[i32],
    _: &[i32],
    _: [i32; 3],
    _: &mut [i32; 8],
) {
    unreachable!("no AVX2 token off x86-64")
}
