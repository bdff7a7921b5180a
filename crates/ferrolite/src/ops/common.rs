//! Small helpers shared by op files.

use crate::error::OpError;

/// The options table of the expected kind, or `None` when the node has none
/// (TFLite then uses the table's defaults). A table of another kind is an
/// error naming both.
macro_rules! options {
    ($ctx:expr, $variant:ident) => {
        match $ctx.builtin_options {
            Some(ferrolite_schema::BuiltinOptions::$variant(o)) => Some(&**o),
            None => None,
            Some(other) => {
                return Err($crate::error::OpError::Options(format!(
                    "expected {}, found {:?}",
                    stringify!($variant),
                    std::mem::discriminant(other)
                )))
            }
        }
    };
}
pub(crate) use options;

/// Resolve a possibly negative axis against a rank.
pub(crate) fn normalize_axis(axis: i64, rank: usize) -> Result<usize, OpError> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r.max(1) {
        return Err(OpError::Value(format!("axis {axis} is out of range for rank {rank}")));
    }
    Ok(a as usize)
}

/// Read a small integer tensor (shape, axes, paddings) as i64s, whatever
/// its integer type.
pub(crate) fn int_values(input: &crate::op::InputInfo<'_>, what: &str) -> Result<Vec<i64>, OpError> {
    let bytes = input.constant.ok_or_else(|| OpError::DynamicShape(format!("{what} must be a constant")))?;
    bytes_to_i64(bytes, input.dtype(), what)
}

pub(crate) fn bytes_to_i64(bytes: &[u8], dtype: crate::DataType, what: &str) -> Result<Vec<i64>, OpError> {
    use crate::DataType as D;
    Ok(match dtype {
        D::Int32 => bytes.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64).collect(),
        D::Int64 => bytes
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect(),
        D::Int16 => bytes.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]]) as i64).collect(),
        D::Int8 => bytes.iter().map(|&b| b as i8 as i64).collect(),
        D::UInt8 => bytes.iter().map(|&b| b as i64).collect(),
        other => {
            return Err(OpError::DType {
                tensor: what.into(),
                expected: "an integer type".into(),
                got: other.to_string(),
            })
        }
    })
}

/// A dimension that must be non-negative.
pub(crate) fn to_dim(v: i64, what: &str) -> Result<usize, OpError> {
    usize::try_from(v).map_err(|_| OpError::Value(format!("{what} {v} is negative")))
}

/// Copy the input's bytes to the output unchanged (reshape-like ops).
pub(crate) fn copy_bytes(ctx: &mut crate::op::EvalContext<'_>) -> Result<(), OpError> {
    let input = ctx.input(0)?;
    let out = ctx.output(0)?;
    if out.bytes.len() != input.bytes.len() {
        return Err(OpError::Shape(format!("output has {} bytes, input {}", out.bytes.len(), input.bytes.len())));
    }
    out.bytes.copy_from_slice(input.bytes);
    Ok(())
}

/// Float weights for a float kernel: read from the (constant) input at each
/// eval, or converted once at prepare (int8 weights of dynamic-range models
/// dequantised, so eval never repeats the work).
pub(crate) enum FloatWeights {
    Input(usize),
    Owned(Vec<f32>),
}

impl FloatWeights {
    /// Float weights for input `i`: f32 as is; int8/uint8 constant weights
    /// dequantised (per-channel along their quantized dimension).
    pub(crate) fn prepare(ctx: &crate::op::PrepareContext<'_>, i: usize) -> Result<FloatWeights, OpError> {
        use crate::DataType as D;
        let w = ctx.input(i)?;
        match w.dtype() {
            D::Float32 => Ok(FloatWeights::Input(i)),
            D::Int8 | D::UInt8 => {
                let bytes = w
                    .constant
                    .ok_or_else(|| OpError::Unsupported("integer weights of a float op must be constant".into()))?;
                let q = w.quant().ok_or_else(|| OpError::Value("integer weights have no quantisation".into()))?;
                let shape = w.shape();
                let inner: usize = shape.iter().skip(q.quantized_dimension + 1).product::<usize>().max(1);
                let channels = shape.get(q.quantized_dimension).copied().unwrap_or(1).max(1);
                let values: Vec<f32> = bytes
                    .iter()
                    .enumerate()
                    .map(|(k, &b)| {
                        let v = if w.dtype() == D::Int8 { b as i8 as i64 } else { b as i64 };
                        let c = if q.scales.len() > 1 { (k / inner) % channels } else { 0 };
                        q.scales[c] * (v - q.zero_points[c]) as f32
                    })
                    .collect();
                Ok(FloatWeights::Owned(values))
            }
            other => Err(OpError::DType {
                tensor: format!("input {i} (weights)"),
                expected: "float32 or int8".into(),
                got: other.to_string(),
            }),
        }
    }

    /// The weights at prepare, when they are known then (constants), for
    /// kernels that repack them once.
    /// `None` also when the user asked for reference kernels only, which
    /// keeps every float op on its reference twin.
    pub(crate) fn at_prepare<'a>(&'a self, ctx: &crate::op::PrepareContext<'a>) -> Option<&'a [f32]> {
        if ctx.reference_kernels {
            return None;
        }
        match self {
            FloatWeights::Input(i) => ctx.optional_input(*i)?.constant_as::<f32>().ok().flatten(),
            FloatWeights::Owned(v) => Some(v),
        }
    }

    pub(crate) fn get<'a>(&'a self, ctx: &crate::op::EvalContext<'a>) -> Result<&'a [f32], OpError> {
        match self {
            FloatWeights::Input(i) => Ok(ctx.input(*i)?.as_slice::<f32>()?),
            FloatWeights::Owned(v) => Ok(v),
        }
    }
}

/// Shape as exactly four dimensions (NHWC ops).
pub(crate) fn shape4(shape: &[usize], what: &str) -> Result<[usize; 4], OpError> {
    shape.try_into().map_err(|_| OpError::Shape(format!("{what} must be 4-D, got {shape:?}")))
}

/// TFLite's padding enum to the kernels'.
pub(crate) fn padding(p: ferrolite_schema::Padding) -> ferrolite_kernels::reference::padding::Padding {
    match p {
        ferrolite_schema::Padding::Same => ferrolite_kernels::reference::padding::Padding::Same,
        ferrolite_schema::Padding::Valid => ferrolite_kernels::reference::padding::Padding::Valid,
    }
}

/// A stride or dilation from the options: must be at least 1.
pub(crate) fn positive(v: i32, what: &str) -> Result<usize, OpError> {
    if v < 1 {
        return Err(OpError::Options(format!("{what} is {v}, must be at least 1")));
    }
    Ok(v as usize)
}

/// Run `$body` with `$T` bound to an unsigned integer type of the given
/// element size: data-movement ops (transpose, concat, pad...) only copy
/// elements, so their kernels need the size, not the meaning.
macro_rules! with_element_size {
    ($size:expr, $T:ident, $body:block) => {
        match $size {
            1 => {
                type $T = u8;
                $body
            }
            2 => {
                type $T = u16;
                $body
            }
            4 => {
                type $T = u32;
                $body
            }
            8 => {
                type $T = u64;
                $body
            }
            s => Err($crate::error::OpError::Unsupported(format!("elements of {s} bytes"))),
        }
    };
}
pub(crate) use with_element_size;

/// View bytes as elements of a plain integer type chosen by size (see
/// `with_element_size!`); alignment is guaranteed by the arena.
pub(crate) fn elems<T: bytemuck::Pod>(bytes: &[u8]) -> Result<&[T], OpError> {
    bytemuck::try_cast_slice(bytes).map_err(|e| OpError::Value(format!("misaligned tensor data: {e:?}")))
}
pub(crate) fn elems_mut<T: bytemuck::Pod>(bytes: &mut [u8]) -> Result<&mut [T], OpError> {
    bytemuck::try_cast_slice_mut(bytes).map_err(|e| OpError::Value(format!("misaligned tensor data: {e:?}")))
}

/// Element size of a type an op moves, or an error naming the type.
pub(crate) fn element_size(dtype: crate::DataType) -> Result<usize, OpError> {
    dtype.size().ok_or_else(|| OpError::Unsupported(format!("{dtype} tensors")))
}

/// Fail unless input `i` and output `o` have the same type.
pub(crate) fn same_dtype(ctx: &crate::op::PrepareContext<'_>, i: usize, o: usize) -> Result<crate::DataType, OpError> {
    let (a, b) = (ctx.input(i)?.dtype(), ctx.output_dtype(o)?);
    if a != b {
        return Err(OpError::DType { tensor: format!("output {o}"), expected: a.to_string(), got: b.to_string() });
    }
    Ok(a)
}

thread_local! {
    /// Per-thread scratch for kernels that need a work buffer (im2col):
    /// reused across invokes, so steady-state inference does not allocate.
    static SCRATCH_F32: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Run `f` with this thread's float scratch buffer.
pub(crate) fn with_scratch<R>(f: impl FnOnce(&mut Vec<f32>) -> R) -> R {
    SCRATCH_F32.with(|s| f(&mut s.borrow_mut()))
}

/// How many values `r` has when it repeats unchanged along the output:
/// the other operand `x` has the output's shape and `r`, aligned to the
/// output's last dimensions, is 1 in its leading dimensions and equal to
/// the output in the rest (`[1, 1, C]` or `[C]` against `[N, H, W, C]`:
/// `C`; a single value: 1). `None` for other broadcasts (`[H, 1, C]`,
/// say). A PRELU alpha or a per-channel ADD/MUL operand then runs as rows
/// of the output against `r`.
pub(crate) fn repeat_period(x: &[usize], r: &[usize], out: &[usize]) -> Option<usize> {
    if x != out || r.len() > out.len() {
        return None;
    }
    let aligned = &out[out.len() - r.len()..];
    let lead = r.iter().take_while(|&&d| d == 1).count();
    if r[lead..] != aligned[lead..] {
        return None;
    }
    let period: usize = r[lead..].iter().product();
    (period >= 1 && out.iter().product::<usize>().is_multiple_of(period)).then_some(period)
}

/// Float element-wise outputs from this many values on are split between
/// threads (MobileNet v2's residual ADDs: 75K-300K values).
pub(crate) const PARALLEL_ELEMENTS: usize = 16 * 1024;

/// `f(first_unit, chunk)` over `out` in chunks of whole `unit`s (rows of
/// a per-channel operand, softmax rows, ...): split between threads from
/// [`PARALLEL_ELEMENTS`] values on, else one call over all of `out`.
pub(crate) fn for_each_large_chunk<T: Send>(
    workers: crate::op::Workers<'_>,
    out: &mut [T],
    unit: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    if workers.threads() > 1 && out.len() >= PARALLEL_ELEMENTS {
        workers.for_each_chunk(out, unit, f);
    } else {
        f(0, out);
    }
}

#[cfg(test)]
mod repeat_tests {
    use super::repeat_period;

    #[test]
    fn repeats_only_along_trailing_dimensions() {
        let x = [1, 4, 5, 3];
        assert_eq!(repeat_period(&x, &[1, 1, 3], &x), Some(3));
        assert_eq!(repeat_period(&x, &[3], &x), Some(3));
        assert_eq!(repeat_period(&x, &[1], &x), Some(1));
        assert_eq!(repeat_period(&x, &[], &x), Some(1));
        assert_eq!(repeat_period(&x, &[5, 3], &x), Some(15));
        // Broadcast inside r, or x broadcast against r: no period.
        assert_eq!(repeat_period(&x, &[4, 1, 3], &x), None);
        assert_eq!(repeat_period(&[1, 1, 5, 3], &[1, 4, 1, 1], &x), None);
        // An empty output: a period of 0 is no period.
        assert_eq!(repeat_period(&[2, 0], &[0], &[2, 0]), None);
    }
}
