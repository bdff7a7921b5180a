//! SLICE and STRIDED_SLICE for any element type.
//!
//! STRIDED_SLICE is split in two: [`resolve_strided_slice`] turns the op's
//! begin/end/strides tensors and masks into concrete per-dimension ranges
//! and the output shape (the runtime calls it at prepare time when the
//! index tensors are constant, else at eval), and [`strided_slice`] copies.
//! The resolution follows TFLite's kernel: masks are expanded into an
//! "effective" input shape in which every new axis is a size-1 dimension,
//! then each effective dimension gets a start and stop (negative indices
//! wrap once, then clamp to `[0, size]` going forwards or `[-1, size - 1]`
//! going backwards; begin_mask/end_mask then override with the full range).

/// Copy the box `begin[d] .. begin[d] + size[d]` of `input` (row-major,
/// `in_shape`) into `output` (`size` elements per dimension).
///
/// `begin`/`size` are resolved and in range (see [`resolve_slice`]).
pub fn slice<T: Copy>(input: &[T], in_shape: &[usize], begin: &[usize], size: &[usize], output: &mut [T]) {
    let rank = in_shape.len();
    let total: usize = size.iter().product();
    if total == 0 {
        return;
    }
    if rank == 0 {
        output[0] = input[0];
        return;
    }
    let mut strides = vec![0usize; rank];
    let mut step = 1usize;
    for d in (0..rank).rev() {
        strides[d] = step;
        step *= in_shape[d];
    }
    let inner = size[rank - 1];
    let mut counter = vec![0usize; rank - 1];
    let mut off: usize = (0..rank).map(|d| begin[d] * strides[d]).sum();
    for chunk in output[..total].chunks_exact_mut(inner) {
        chunk.copy_from_slice(&input[off..off + inner]);
        let mut d = rank - 1;
        while d > 0 {
            d -= 1;
            counter[d] += 1;
            off += strides[d];
            if counter[d] < size[d] {
                break;
            }
            off -= strides[d] * size[d];
            counter[d] = 0;
        }
    }
}

/// Resolve SLICE's `begin`/`size` tensors: a size of -1 means "to the end of
/// the dimension". Returns `(begin, size)` as usizes, or `Err` when the box
/// leaves the input.
pub fn resolve_slice(in_shape: &[usize], begin: &[i64], size: &[i64]) -> Result<(Vec<usize>, Vec<usize>), String> {
    if begin.len() != in_shape.len() || size.len() != in_shape.len() {
        return Err(format!(
            "slice: begin/size have {}/{} entries for rank {}",
            begin.len(),
            size.len(),
            in_shape.len()
        ));
    }
    let mut b = Vec::with_capacity(in_shape.len());
    let mut s = Vec::with_capacity(in_shape.len());
    for d in 0..in_shape.len() {
        let dim = in_shape[d] as i64;
        let bd = begin[d];
        let sd = if size[d] == -1 { dim - bd } else { size[d] };
        if bd < 0 || sd < 0 || bd + sd > dim {
            return Err(format!("slice: dimension {d}: begin {bd}, size {} out of range for size {dim}", size[d]));
        }
        b.push(bd as usize);
        s.push(sd as usize);
    }
    Ok((b, s))
}

/// STRIDED_SLICE parameters as stored in the model: the three index tensors
/// (one entry per slice spec) and the `StridedSliceOptions` masks.
#[derive(Clone, Copy, Debug, Default)]
pub struct StridedSliceSpec<'a> {
    pub begin: &'a [i32],
    pub end: &'a [i32],
    pub strides: &'a [i32],
    pub begin_mask: u32,
    pub end_mask: u32,
    pub ellipsis_mask: u32,
    pub new_axis_mask: u32,
    pub shrink_axis_mask: u32,
    /// When set, `end` holds sizes relative to the resolved begin.
    pub offset: bool,
}

/// A resolved strided slice. All per-dimension vectors are indexed by
/// *effective* dimension: the input's dimensions with a size-1 dimension
/// inserted for each new axis (same element layout as the input).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedSlice {
    /// Input shape with new axes inserted.
    pub effective_in_shape: Vec<usize>,
    /// First index taken per dimension.
    pub starts: Vec<i64>,
    /// Exclusive stop per dimension (may be -1 for backward ranges).
    pub stops: Vec<i64>,
    /// Step per dimension (never 0; 1 on shrunk dimensions).
    pub strides: Vec<i64>,
    /// Whether each effective dimension is shrunk away.
    pub shrink: Vec<bool>,
    /// Number of indices taken per effective dimension (1 where shrunk):
    /// the shape the copy loop walks.
    pub processing_shape: Vec<usize>,
    /// The output tensor's shape: `processing_shape` without shrunk dims.
    pub output_shape: Vec<usize>,
}

#[inline]
fn bit(mask: u32, i: usize) -> bool {
    i < 32 && (mask >> i) & 1 == 1
}

#[inline]
fn clamp_i64(v: i64, lo: i64, hi: i64) -> i64 {
    if v > hi {
        hi
    } else if v < lo {
        lo
    } else {
        v
    }
}

/// Resolve a STRIDED_SLICE spec against `in_shape` as TFLite does.
///
/// Errors: mismatched spec lengths, more than 32 spec entries, more than
/// one ellipsis bit, a zero stride, masks that do not fit the input rank,
/// and a shrunk index outside its dimension (TFLite would silently produce
/// an output it never writes; TensorFlow rejects it).
///
/// Differences from TFLite, only for specs TFLite mishandles: a shrunk axis
/// always yields its single element (TFLite writes nothing for it when the
/// stride is negative), and with `offset` the output extent is computed
/// from the clamped range (TFLite takes the raw `end` value, which only
/// differs when the range runs past the input).
pub fn resolve_strided_slice(in_shape: &[usize], spec: &StridedSliceSpec) -> Result<ResolvedSlice, String> {
    let n = spec.begin.len();
    if spec.end.len() != n || spec.strides.len() != n {
        return Err(format!(
            "strided_slice: begin/end/strides have {}/{}/{} entries",
            n,
            spec.end.len(),
            spec.strides.len()
        ));
    }
    if n > 32 {
        return Err(format!("strided_slice: {n} index entries, at most 32 supported"));
    }
    if spec.ellipsis_mask.count_ones() > 1 {
        return Err("strided_slice: more than one ellipsis".to_string());
    }
    let in_rank = in_shape.len();

    // New axes that are not also ellipses each add one effective dimension.
    let num_add_axis = (0..n).filter(|&i| !bit(spec.ellipsis_mask, i) && bit(spec.new_axis_mask, i)).count();
    let eff = in_rank + num_add_axis;

    // Pass 1: which effective dims the ellipsis covers, which are new axes.
    // Effective index i maps back to spec index i - expanded after the
    // ellipsis (which covers 1 + expanded effective dims).
    let mut is_ellipsis = vec![false; eff];
    let mut is_new_axis = vec![false; eff];
    let mut ellipsis_start = eff;
    let mut expanded = 0usize;
    let mut i = 0usize;
    while i < eff {
        if bit(spec.ellipsis_mask, i) {
            ellipsis_start = i;
            let want = i as i64 + 1 + num_add_axis as i64 + in_rank as i64 - n as i64;
            let end_idx = (i as i64 + 1).max(want.min(eff as i64)) as usize;
            expanded = end_idx - i - 1;
            while i < end_idx {
                is_ellipsis[i] = true;
                i += 1;
            }
            continue;
        }
        if bit(spec.new_axis_mask, i - expanded) {
            is_new_axis[i] = true;
        }
        i += 1;
    }

    // Pass 2: per effective dim, raw start/stop/stride, masks and size.
    let mut eff_shape = Vec::with_capacity(eff);
    let mut starts = Vec::with_capacity(eff);
    let mut stops = Vec::with_capacity(eff);
    let mut strides = Vec::with_capacity(eff);
    let mut shrink = Vec::with_capacity(eff);
    let mut processing_shape = Vec::with_capacity(eff);
    let mut output_shape = Vec::with_capacity(eff);
    let mut added_ellipsis = 0usize;
    let mut added_axes = 0usize;
    let input_dim = |d: usize| -> Result<usize, String> {
        in_shape.get(d).copied().ok_or_else(|| "strided_slice: masks do not match the input rank".to_string())
    };
    for i in 0..eff {
        // (size, begin, end, stride, begin_masked, end_masked, shrink)
        let (size, b, e, s, bm, em, sh) = if is_ellipsis[i] {
            added_ellipsis = i - ellipsis_start;
            (input_dim(i - added_axes)?, 0i64, 0i64, 1i64, true, true, false)
        } else if is_new_axis[i] {
            added_axes += 1;
            (1usize, 0, 1, 1, false, false, false)
        } else if i >= n + expanded {
            (input_dim(i - added_axes)?, 0, 0, 1, true, true, false)
        } else {
            let o = i - added_ellipsis;
            if o >= n {
                return Err("strided_slice: ellipsis mask does not match the index entries".to_string());
            }
            (
                input_dim(i - added_axes)?,
                spec.begin[o] as i64,
                spec.end[o] as i64,
                spec.strides[o] as i64,
                bit(spec.begin_mask, o),
                bit(spec.end_mask, o),
                bit(spec.shrink_axis_mask, o),
            )
        };
        if s == 0 {
            return Err(format!("strided_slice: stride 0 at dimension {i}"));
        }
        let dim = size as i64;

        let mut start = if b < 0 { b + dim } else { b };
        start = if s > 0 { clamp_i64(start, 0, dim) } else { clamp_i64(start, -1, dim - 1) };
        if bm {
            start = if s > 0 { 0 } else { dim - 1 };
        }

        eff_shape.push(size);
        if sh {
            if start < 0 || start >= dim {
                return Err(format!("strided_slice: shrunk index {b} out of range for dimension {i} of size {dim}"));
            }
            starts.push(start);
            stops.push(start + 1);
            strides.push(1);
            shrink.push(true);
            processing_shape.push(1);
            continue;
        }

        let mut stop = if spec.offset { e + start } else { e };
        if stop < 0 {
            stop += dim;
        }
        stop = if s > 0 { clamp_i64(stop, 0, dim) } else { clamp_i64(stop, -1, dim - 1) };
        if em {
            stop = if s > 0 { dim } else { -1 };
        }

        let span = stop - start;
        let count = if (span < 0) != (s < 0) {
            0
        } else if s < 0 {
            (span + 1) / s + 1
        } else if span == 0 {
            0
        } else {
            (span - 1) / s + 1
        };
        let count = count.max(0) as usize;
        starts.push(start);
        stops.push(stop);
        strides.push(s);
        shrink.push(false);
        processing_shape.push(count);
        output_shape.push(count);
    }

    Ok(ResolvedSlice { effective_in_shape: eff_shape, starts, stops, strides, shrink, processing_shape, output_shape })
}

/// Copy a resolved strided slice of `input` (shape `in_shape`, the same
/// element layout as `resolved.effective_in_shape`) into `output`, which
/// holds `resolved.output_shape` elements.
pub fn strided_slice<T: Copy>(input: &[T], in_shape: &[usize], resolved: &ResolvedSlice, output: &mut [T]) {
    debug_assert_eq!(in_shape.iter().product::<usize>(), resolved.effective_in_shape.iter().product::<usize>());
    let shape = &resolved.processing_shape;
    let rank = shape.len();
    let total: usize = shape.iter().product();
    if total == 0 {
        return;
    }
    if rank == 0 {
        output[0] = input[0];
        return;
    }
    // Element step of one iteration per dim, and the offset of the first element.
    let mut steps = vec![0i64; rank];
    let mut elem = 1i64;
    let mut base = 0i64;
    for d in (0..rank).rev() {
        steps[d] = resolved.strides[d] * elem;
        base += resolved.starts[d] * elem;
        elem *= resolved.effective_in_shape[d] as i64;
    }
    let inner = shape[rank - 1];
    let inner_step = steps[rank - 1];
    let mut counter = vec![0usize; rank - 1];
    let mut off = base;
    for chunk in output[..total].chunks_exact_mut(inner) {
        if inner_step == 1 {
            let o = off as usize;
            chunk.copy_from_slice(&input[o..o + inner]);
        } else {
            for (j, out) in chunk.iter_mut().enumerate() {
                *out = input[(off + j as i64 * inner_step) as usize];
            }
        }
        let mut d = rank - 1;
        while d > 0 {
            d -= 1;
            counter[d] += 1;
            off += steps[d];
            if counter[d] < shape[d] {
                break;
            }
            off -= steps[d] * shape[d] as i64;
            counter[d] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(in_shape: &[usize], spec: StridedSliceSpec) -> (Vec<usize>, Vec<i32>) {
        let n: usize = in_shape.iter().product();
        let x: Vec<i32> = (0..n as i32).collect();
        let r = resolve_strided_slice(in_shape, &spec).unwrap();
        let mut out = vec![-1; r.output_shape.iter().product()];
        strided_slice(&x, in_shape, &r, &mut out);
        (r.output_shape, out)
    }

    fn spec<'a>(b: &'a [i32], e: &'a [i32], s: &'a [i32]) -> StridedSliceSpec<'a> {
        StridedSliceSpec { begin: b, end: e, strides: s, ..Default::default() }
    }

    #[test]
    fn plain_slice_and_resolve() {
        // x [3,4] = 0..12; rows 1..3, cols 1..3.
        let x: Vec<i32> = (0..12).collect();
        let (b, s) = resolve_slice(&[3, 4], &[1, 1], &[-1, 2]).unwrap();
        assert_eq!((b.clone(), s.clone()), (vec![1, 1], vec![2, 2]));
        let mut out = [0; 4];
        slice(&x, &[3, 4], &b, &s, &mut out);
        assert_eq!(out, [5, 6, 9, 10]);
        assert!(resolve_slice(&[3, 4], &[2, 0], &[2, 4]).is_err());
    }

    #[test]
    fn forward_and_negative_strides() {
        // x = 0..8
        assert_eq!(run(&[8], spec(&[1], &[7], &[3])), (vec![2], vec![1, 4]));
        assert_eq!(run(&[8], spec(&[6], &[1], &[-2])), (vec![3], vec![6, 4, 2]));
        // Negative indices: -1 .. -8 backwards = 7 down to 1.
        assert_eq!(run(&[8], spec(&[-1], &[-8], &[-1])), (vec![7], vec![7, 6, 5, 4, 3, 2, 1]));
        // Full reverse through masks.
        let s = StridedSliceSpec { begin_mask: 1, end_mask: 1, ..spec(&[0], &[0], &[-1]) };
        assert_eq!(run(&[8], s), (vec![8], vec![7, 6, 5, 4, 3, 2, 1, 0]));
    }

    #[test]
    fn clamping() {
        // Out-of-range forward bounds clamp to [0, 8].
        assert_eq!(run(&[8], spec(&[-100], &[100], &[3])), (vec![3], vec![0, 3, 6]));
        // Backward: start clamps to 7, stop to -1: everything reversed.
        assert_eq!(run(&[8], spec(&[100], &[-100], &[-3])), (vec![3], vec![7, 4, 1]));
        // Begin past the end going forward: empty.
        assert_eq!(run(&[8], spec(&[9], &[12], &[1])), (vec![0], vec![]));
        // Wrong direction: empty.
        assert_eq!(run(&[8], spec(&[5], &[100], &[-1])), (vec![0], vec![]));
        assert_eq!(run(&[8], spec(&[2], &[5], &[-1])), (vec![0], vec![]));
    }

    #[test]
    fn masks_on_2d() {
        // x [3,4]; x[1:, ::-2] with begin_mask on dim 1 and end_mask on both.
        let s = StridedSliceSpec { begin_mask: 0b10, end_mask: 0b11, ..spec(&[1, 0], &[0, 0], &[1, -2]) };
        assert_eq!(run(&[3, 4], s), (vec![2, 2], vec![7, 5, 11, 9]));
    }

    #[test]
    fn shrink_axis() {
        // x[1, 1:3] on [3,4] -> [5, 6]
        let s = StridedSliceSpec { shrink_axis_mask: 1, ..spec(&[1, 1], &[2, 3], &[1, 1]) };
        assert_eq!(run(&[3, 4], s), (vec![2], vec![5, 6]));
        // x[-1] with a meaningless end: last row.
        let s = StridedSliceSpec { shrink_axis_mask: 1, ..spec(&[-1], &[0], &[1]) };
        assert_eq!(run(&[3, 4], s), (vec![4], vec![8, 9, 10, 11]));
        // x[2, -1] -> scalar 11, rank 0 output.
        let s = StridedSliceSpec { shrink_axis_mask: 0b11, ..spec(&[2, -1], &[3, 0], &[1, 1]) };
        assert_eq!(run(&[3, 4], s), (vec![], vec![11]));
        // Out-of-range shrink index is an error.
        let s = StridedSliceSpec { shrink_axis_mask: 1, ..spec(&[3], &[4], &[1]) };
        assert!(resolve_strided_slice(&[3, 4], &s).is_err());
    }

    #[test]
    fn new_axis_and_ellipsis() {
        // x[:, newaxis, 1] on [3,4] -> shape [3,1], column 1.
        let s = StridedSliceSpec {
            begin_mask: 1,
            end_mask: 1,
            new_axis_mask: 0b010,
            shrink_axis_mask: 0b100,
            ..spec(&[0, 0, 1], &[0, 0, 2], &[1, 1, 1])
        };
        let (shape, v) = run(&[3, 4], s);
        assert_eq!(shape, vec![3, 1]);
        assert_eq!(v, vec![1, 5, 9]);
        let r = resolve_strided_slice(&[3, 4], &s).unwrap();
        assert_eq!(r.effective_in_shape, vec![3, 1, 4]);
        assert_eq!(r.processing_shape, vec![3, 1, 1]);

        // x[..., 1:3] on [2,3,4].
        let s = StridedSliceSpec { ellipsis_mask: 1, ..spec(&[0, 1], &[0, 3], &[1, 1]) };
        let (shape, v) = run(&[2, 3, 4], s);
        assert_eq!(shape, vec![2, 3, 2]);
        let want: Vec<i32> = (0..6).flat_map(|r| [4 * r + 1, 4 * r + 2]).collect();
        assert_eq!(v, want);

        // x[..., newaxis] on [2,3] -> [2,3,1], unchanged data.
        let s = StridedSliceSpec { ellipsis_mask: 1, new_axis_mask: 2, ..spec(&[0, 0], &[0, 0], &[1, 1]) };
        assert_eq!(run(&[2, 3], s), (vec![2, 3, 1], (0..6).collect()));

        // x[1, ...] on [2,3]: shrink before the ellipsis.
        let s = StridedSliceSpec { ellipsis_mask: 2, shrink_axis_mask: 1, ..spec(&[1, 0], &[2, 0], &[1, 1]) };
        assert_eq!(run(&[2, 3], s), (vec![3], vec![3, 4, 5]));
    }

    #[test]
    fn short_spec_and_offset() {
        // x[1:] on [3,4]: trailing dims taken whole.
        assert_eq!(run(&[3, 4], spec(&[1], &[3], &[1])), (vec![2, 4], (4..12).collect()));
        // offset: end is a size relative to begin.
        let s = StridedSliceSpec { offset: true, ..spec(&[1, 2], &[2, 2], &[1, 1]) };
        assert_eq!(run(&[3, 4], s), (vec![2, 2], vec![6, 7, 10, 11]));
    }

    #[test]
    fn rejects_bad_specs() {
        assert!(resolve_strided_slice(&[4], &spec(&[0], &[4], &[0])).is_err());
        assert!(resolve_strided_slice(&[4], &spec(&[0, 0], &[4], &[1])).is_err());
        let s = StridedSliceSpec { ellipsis_mask: 0b11, ..spec(&[0, 0], &[0, 0], &[1, 1]) };
        assert!(resolve_strided_slice(&[4, 4], &s).is_err());
        // Ellipsis bit beyond the entries, leaving an entry-less dim before it.
        let s = StridedSliceSpec { ellipsis_mask: 0b100, ..spec(&[0], &[1], &[1]) };
        let _ = resolve_strided_slice(&[2, 2, 2, 2], &s); // must not panic
    }
}
