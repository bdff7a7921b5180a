//! Tensor descriptions and typed views of tensor bytes.

use crate::dtype::{DataType, Element};
use crate::error::{Error, Result};

/// Affine quantisation: `real = scale * (q - zero_point)`.
///
/// Per-tensor quantisation has one scale and zero point; per-channel (per-
/// axis) quantisation has one per index of `quantized_dimension`.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantParams {
    pub scales: Vec<f32>,
    pub zero_points: Vec<i64>,
    pub quantized_dimension: usize,
}

impl QuantParams {
    pub fn per_tensor(scale: f32, zero_point: i64) -> QuantParams {
        QuantParams { scales: vec![scale], zero_points: vec![zero_point], quantized_dimension: 0 }
    }

    /// The single scale of a per-tensor quantised tensor.
    pub fn scale(&self) -> f32 {
        self.scales.first().copied().unwrap_or(0.0)
    }

    /// The single zero point of a per-tensor quantised tensor.
    pub fn zero_point(&self) -> i64 {
        self.zero_points.first().copied().unwrap_or(0)
    }

    pub fn is_per_channel(&self) -> bool {
        self.scales.len() > 1
    }
}

/// What the graph says about a tensor, before and after shape inference.
#[derive(Clone, Debug)]
pub struct TensorInfo {
    pub name: String,
    pub dtype: DataType,
    pub shape: Vec<usize>,
    /// The shape with -1 for dimensions that may vary (from `shape_signature`).
    pub shape_signature: Option<Vec<i32>>,
    pub quant: Option<QuantParams>,
    pub is_variable: bool,
}

impl TensorInfo {
    pub fn num_elements(&self) -> usize {
        num_elements(&self.shape)
    }
}

/// Product of dimensions (1 for a scalar).
pub fn num_elements(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Product of dimensions, `None` on overflow.
pub fn checked_num_elements(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

fn cast<'a, T: Element>(bytes: &'a [u8], dtype: DataType, name: &str) -> Result<&'a [T]> {
    if dtype != T::DTYPE && !(dtype == DataType::Bool && T::DTYPE == DataType::UInt8) {
        return Err(Error::InvalidArgument(format!("tensor '{name}' has type {dtype}, not {}", T::DTYPE)));
    }
    bytemuck::try_cast_slice(bytes)
        .map_err(|e| Error::InvalidArgument(format!("tensor '{name}' data cannot be viewed as {}: {e:?}", T::DTYPE)))
}

fn cast_mut<'a, T: Element>(bytes: &'a mut [u8], dtype: DataType, name: &str) -> Result<&'a mut [T]> {
    if dtype != T::DTYPE && !(dtype == DataType::Bool && T::DTYPE == DataType::UInt8) {
        return Err(Error::InvalidArgument(format!("tensor '{name}' has type {dtype}, not {}", T::DTYPE)));
    }
    bytemuck::try_cast_slice_mut(bytes)
        .map_err(|e| Error::InvalidArgument(format!("tensor '{name}' data cannot be viewed as {}: {e:?}", T::DTYPE)))
}

/// A read-only tensor: its description and its bytes.
#[derive(Clone, Copy)]
pub struct TensorRef<'a> {
    pub info: &'a TensorInfo,
    pub bytes: &'a [u8],
}

impl<'a> TensorRef<'a> {
    pub fn name(&self) -> &'a str {
        &self.info.name
    }
    pub fn dtype(&self) -> DataType {
        self.info.dtype
    }
    pub fn shape(&self) -> &'a [usize] {
        &self.info.shape
    }
    pub fn quant(&self) -> Option<&'a QuantParams> {
        self.info.quant.as_ref()
    }
    /// The elements as `T`; an error if `T` is not the tensor's type.
    pub fn as_slice<T: Element>(&self) -> Result<&'a [T]> {
        cast(self.bytes, self.info.dtype, &self.info.name)
    }
}

/// A writable tensor: its description and its bytes.
pub struct TensorMut<'a> {
    pub info: &'a TensorInfo,
    pub bytes: &'a mut [u8],
}

impl TensorMut<'_> {
    pub fn name(&self) -> &str {
        &self.info.name
    }
    pub fn dtype(&self) -> DataType {
        self.info.dtype
    }
    pub fn shape(&self) -> &[usize] {
        &self.info.shape
    }
    pub fn quant(&self) -> Option<&QuantParams> {
        self.info.quant.as_ref()
    }
    pub fn as_slice<T: Element>(&self) -> Result<&[T]> {
        cast(self.bytes, self.info.dtype, &self.info.name)
    }
    pub fn as_slice_mut<T: Element>(&mut self) -> Result<&mut [T]> {
        cast_mut(self.bytes, self.info.dtype, &self.info.name)
    }
}

/// Bytes with 64-byte alignment, so any element type (and SIMD loads) can
/// view them without copying.
#[derive(Clone, Default)]
pub struct AlignedBytes {
    words: Vec<Align64>,
    len: usize,
}

#[derive(Clone, Copy, bytemuck::Zeroable, bytemuck::Pod)]
#[repr(C, align(64))]
struct Align64([u8; 64]);

impl AlignedBytes {
    pub fn zeroed(len: usize) -> AlignedBytes {
        AlignedBytes { words: vec![Align64([0; 64]); len.div_ceil(64)], len }
    }
    /// Like `zeroed`, but `None` instead of aborting when memory is short.
    pub fn try_zeroed(len: usize) -> Option<AlignedBytes> {
        let n = len.div_ceil(64);
        let mut words = Vec::new();
        words.try_reserve_exact(n).ok()?;
        words.resize(n, Align64([0; 64]));
        Some(AlignedBytes { words, len })
    }
    pub fn from_slice(bytes: &[u8]) -> AlignedBytes {
        let mut b = AlignedBytes::zeroed(bytes.len());
        b.as_mut_slice().copy_from_slice(bytes);
        b
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn as_slice(&self) -> &[u8] {
        &bytemuck::cast_slice(&self.words)[..self.len]
    }
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut bytemuck::cast_slice_mut(&mut self.words)[..self.len]
    }
}

impl std::fmt::Debug for AlignedBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlignedBytes({} bytes)", self.len)
    }
}
