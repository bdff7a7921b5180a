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
///
/// The storage is a `u128` vector allocated zeroed (calloc: large buffers
/// come from fresh pages that are neither written nor mapped until used, so
/// a 5 MB arena costs nothing at allocate time), 48 bytes longer than
/// needed; the view starts at its first 64-byte boundary. (An allocation
/// aligned to 64 directly would be zeroed with a memset that touches every
/// page.)
#[derive(Default)]
pub struct AlignedBytes {
    words: Vec<u128>,
    /// Bytes from the start of `words` to the 64-byte aligned view.
    offset: usize,
    len: usize,
}

impl AlignedBytes {
    pub fn zeroed(len: usize) -> AlignedBytes {
        AlignedBytes::try_zeroed(len).unwrap_or_else(|| std::alloc::handle_alloc_error(Self::layout(len)))
    }
    /// Like `zeroed`, but `None` instead of aborting when memory is short.
    pub fn try_zeroed(len: usize) -> Option<AlignedBytes> {
        if len == 0 {
            return Some(AlignedBytes::default());
        }
        // Four spare words: enough to reach a 64-byte boundary from any
        // start (a u128 is only 8-aligned on some 32-bit targets).
        let words: Vec<u128> = bytemuck::allocation::try_zeroed_vec(len.div_ceil(16).checked_add(4)?).ok()?;
        let offset = (64 - words.as_ptr() as usize % 64) % 64;
        Some(AlignedBytes { words, offset, len })
    }
    fn layout(len: usize) -> std::alloc::Layout {
        std::alloc::Layout::array::<u128>(len.div_ceil(16) + 4).unwrap_or(std::alloc::Layout::new::<u128>())
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
        &bytemuck::cast_slice(&self.words)[self.offset..self.offset + self.len]
    }
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        let (o, n) = (self.offset, self.len);
        &mut bytemuck::cast_slice_mut(&mut self.words)[o..o + n]
    }
}

/// A clone gets its own allocation, aligned afresh.
impl Clone for AlignedBytes {
    fn clone(&self) -> Self {
        AlignedBytes::from_slice(self.as_slice())
    }
}

impl std::fmt::Debug for AlignedBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlignedBytes({} bytes)", self.len)
    }
}

#[cfg(test)]
mod aligned_bytes_tests {
    use super::AlignedBytes;

    #[test]
    fn views_are_zeroed_aligned_and_survive_clone() {
        for len in [0usize, 1, 15, 16, 63, 64, 65, 1000, 3 << 20] {
            let mut b = AlignedBytes::zeroed(len);
            assert_eq!(b.len(), len);
            assert!(b.as_slice().iter().all(|&x| x == 0));
            if len > 0 {
                assert_eq!(b.as_slice().as_ptr() as usize % 64, 0, "len {len}");
                b.as_mut_slice()[len - 1] = 7;
                b.as_mut_slice()[0] = 9;
            }
            let c = b.clone();
            assert_eq!(c.as_slice(), b.as_slice());
            if len > 0 {
                assert_eq!(c.as_slice().as_ptr() as usize % 64, 0);
            }
        }
        let f = AlignedBytes::from_slice(&[1, 2, 3]);
        assert_eq!(f.as_slice(), [1, 2, 3]);
    }
}
