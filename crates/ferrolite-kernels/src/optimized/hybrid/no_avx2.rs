//! Off x86-64 the `Avx2Fma` token can never be made; these stand-ins keep
//! the shared code compiling and are never called.

use crate::optimized::isa::Avx2Fma;

pub(super) fn minmax(_: Avx2Fma, _: &[f32]) -> Option<(f32, f32)> {
    unreachable!("no AVX2 token off x86-64")
}

#[allow(clippy::too_many_arguments)]
pub(super) fn quantize<T: super::QStore>(
    _: Avx2Fma,
    _: &[f32],
    _: f32,
    _: i32,
    _: bool,
    _: i32,
    _: i32,
    _: &mut [T],
) -> usize {
    unreachable!("no AVX2 token off x86-64")
}

pub(super) fn dwconv_row(_: Avx2Fma, _: &[i16], _: &[i32], _: &[(usize, usize)], _: &mut [i32]) -> usize {
    unreachable!("no AVX2 token off x86-64")
}

#[allow(clippy::too_many_arguments)]
pub(super) fn epilogue(
    _: Avx2Fma,
    _: &[i32],
    _: super::Scale<'_>,
    _: bool,
    _: Option<&[f32]>,
    _: crate::activation::ClampF32,
    _: &mut [f32],
) -> usize {
    unreachable!("no AVX2 token off x86-64")
}

#[allow(clippy::too_many_arguments)]
pub(super) fn dwconv_f32_row(
    _: Avx2Fma,
    _: &[f32],
    _: &[f32],
    _: &[(usize, usize)],
    _: &[f32],
    _: f32,
    _: Option<&[f32]>,
    _: crate::activation::ClampF32,
    _: &mut [f32],
) -> usize {
    unreachable!("no AVX2 token off x86-64")
}
