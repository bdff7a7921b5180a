//! SPACE_TO_BATCH_ND and BATCH_TO_SPACE_ND for any element type.
//!
//! Shapes are `[batch, spatial_1 .. spatial_M, rest...]` with `M` block
//! dimensions. Batch `b'` of the "many batches" side is batch
//! `b' % batch` of the "few batches" side at block offset number
//! `b' / batch`, the offsets numbered row-major over the block shape (so
//! for 2-D blocks, offset `(dy, dx)` is number `dy * block_w + dx`).

/// Decompose `k` row-major over `block` into per-dimension offsets.
fn block_offsets(mut k: usize, block: &[usize]) -> Vec<usize> {
    let mut out = vec![0; block.len()];
    for d in (0..block.len()).rev() {
        out[d] = k % block[d];
        k /= block[d];
    }
    out
}

/// Output shape of SPACE_TO_BATCH_ND, or why the arguments do not fit.
pub fn space_to_batch_shape(
    in_shape: &[usize],
    block: &[usize],
    paddings: &[(usize, usize)],
) -> Result<Vec<usize>, String> {
    let m = block.len();
    if in_shape.len() < m + 1 || paddings.len() != m {
        return Err(format!("input {in_shape:?} does not fit {m} block dimensions"));
    }
    let mut out = in_shape.to_vec();
    let mut blocks = 1usize;
    for d in 0..m {
        if block[d] == 0 {
            return Err("block sizes must be positive".to_string());
        }
        let padded = in_shape[d + 1] + paddings[d].0 + paddings[d].1;
        if !padded.is_multiple_of(block[d]) {
            return Err(format!("padded size {padded} of spatial dimension {d} is not a multiple of {}", block[d]));
        }
        out[d + 1] = padded / block[d];
        blocks = blocks.checked_mul(block[d]).ok_or("block too large")?;
    }
    out[0] = in_shape[0].checked_mul(blocks).ok_or("block too large")?;
    Ok(out)
}

/// SPACE_TO_BATCH_ND: zero-pad (with `pad_value`) the spatial dimensions,
/// then move each block offset into its own batch.
pub fn space_to_batch_nd<T: Copy>(
    input: &[T],
    in_shape: &[usize],
    block: &[usize],
    paddings: &[(usize, usize)],
    pad_value: T,
    output: &mut [T],
    out_shape: &[usize],
) {
    let m = block.len();
    let batch = in_shape[0];
    let inner: usize = in_shape[m + 1..].iter().product();
    let in_spatial = &in_shape[1..m + 1];
    let out_spatial = &out_shape[1..m + 1];
    let out_cells: usize = out_spatial.iter().product();
    let in_batch_stride: usize = in_spatial.iter().product::<usize>() * inner;
    if batch == 0 || inner == 0 {
        return;
    }
    let mut pos = 0usize;
    for ob in 0..out_shape[0] {
        let b = ob % batch;
        let shift = block_offsets(ob / batch, block);
        let mut idx = vec![0usize; m];
        for _ in 0..out_cells {
            // The input cell this output cell reads, if inside the padding.
            let mut src = Some(b * in_batch_stride);
            let mut stride = inner;
            for d in (0..m).rev() {
                let p = idx[d] * block[d] + shift[d];
                let inside = p >= paddings[d].0 && p - paddings[d].0 < in_spatial[d];
                src = match (src, inside) {
                    (Some(s), true) => Some(s + (p - paddings[d].0) * stride),
                    _ => None,
                };
                stride *= in_spatial[d];
            }
            let dst = &mut output[pos..pos + inner];
            match src {
                Some(s) => dst.copy_from_slice(&input[s..s + inner]),
                None => dst.fill(pad_value),
            }
            pos += inner;
            for d in (0..m).rev() {
                idx[d] += 1;
                if idx[d] < out_spatial[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
    }
}

/// Output shape of BATCH_TO_SPACE_ND, or why the arguments do not fit.
pub fn batch_to_space_shape(
    in_shape: &[usize],
    block: &[usize],
    crops: &[(usize, usize)],
) -> Result<Vec<usize>, String> {
    let m = block.len();
    if in_shape.len() < m + 1 || crops.len() != m {
        return Err(format!("input {in_shape:?} does not fit {m} block dimensions"));
    }
    let blocks = block.iter().try_fold(1usize, |a, &b| a.checked_mul(b)).ok_or("block too large")?;
    if blocks == 0 {
        return Err("block sizes must be positive".to_string());
    }
    if !in_shape[0].is_multiple_of(blocks) {
        return Err(format!("batch {} is not a multiple of the block size {blocks}", in_shape[0]));
    }
    let mut out = in_shape.to_vec();
    out[0] = in_shape[0] / blocks;
    for d in 0..m {
        let full = in_shape[d + 1].checked_mul(block[d]).ok_or("block too large")?;
        let cropped = full.checked_sub(crops[d].0).and_then(|v| v.checked_sub(crops[d].1));
        out[d + 1] = cropped.ok_or_else(|| format!("crops {:?} exceed spatial size {full}", crops[d]))?;
    }
    Ok(out)
}

/// BATCH_TO_SPACE_ND: interleave the batches back into space, then crop.
pub fn batch_to_space_nd<T: Copy>(
    input: &[T],
    in_shape: &[usize],
    block: &[usize],
    crops: &[(usize, usize)],
    output: &mut [T],
    out_shape: &[usize],
) {
    let m = block.len();
    let out_batch = out_shape[0];
    let inner: usize = in_shape[m + 1..].iter().product();
    let in_spatial = &in_shape[1..m + 1];
    let out_spatial = &out_shape[1..m + 1];
    let in_cells: usize = in_spatial.iter().product();
    let out_batch_stride: usize = out_spatial.iter().product::<usize>() * inner;
    if out_batch == 0 || inner == 0 {
        return;
    }
    let mut pos = 0usize;
    for ib in 0..in_shape[0] {
        let b = ib % out_batch;
        let shift = block_offsets(ib / out_batch, block);
        let mut idx = vec![0usize; m];
        for _ in 0..in_cells {
            let mut dst = Some(b * out_batch_stride);
            let mut stride = inner;
            for d in (0..m).rev() {
                let p = idx[d] * block[d] + shift[d];
                let inside = p >= crops[d].0 && p - crops[d].0 < out_spatial[d];
                dst = match (dst, inside) {
                    (Some(s), true) => Some(s + (p - crops[d].0) * stride),
                    _ => None,
                };
                stride *= out_spatial[d];
            }
            if let Some(s) = dst {
                output[s..s + inner].copy_from_slice(&input[pos..pos + inner]);
            }
            pos += inner;
            for d in (0..m).rev() {
                idx[d] += 1;
                if idx[d] < in_spatial[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn space_to_batch_2x2_blocks() {
        // [1,4,4,1] values 1..16, block 2x2, no padding -> [4,2,2,1]
        let x: Vec<i32> = (1..=16).collect();
        let shape = space_to_batch_shape(&[1, 4, 4, 1], &[2, 2], &[(0, 0), (0, 0)]).unwrap();
        assert_eq!(shape, vec![4, 2, 2, 1]);
        let mut out = vec![0; 16];
        space_to_batch_nd(&x, &[1, 4, 4, 1], &[2, 2], &[(0, 0), (0, 0)], 0, &mut out, &shape);
        assert_eq!(out, vec![1, 3, 9, 11, 2, 4, 10, 12, 5, 7, 13, 15, 6, 8, 14, 16]);
        let mut back = vec![0; 16];
        let bshape = batch_to_space_shape(&shape, &[2, 2], &[(0, 0), (0, 0)]).unwrap();
        assert_eq!(bshape, vec![1, 4, 4, 1]);
        batch_to_space_nd(&out, &shape, &[2, 2], &[(0, 0), (0, 0)], &mut back, &bshape);
        assert_eq!(back, x);
    }

    #[test]
    fn space_to_batch_with_padding() {
        // [1,2,2,1] 1..4, block 2x2, one cell of padding on every side: the
        // padded 4x4 grid splits into four 2x2 batches.
        let x = [1.0f32, 2.0, 3.0, 4.0];
        let pads = [(1, 1), (1, 1)];
        let shape = space_to_batch_shape(&[1, 2, 2, 1], &[2, 2], &pads).unwrap();
        assert_eq!(shape, vec![4, 2, 2, 1]);
        let mut out = vec![-1.0f32; 16];
        space_to_batch_nd(&x, &[1, 2, 2, 1], &[2, 2], &pads, 0.0, &mut out, &shape);
        // Padded grid:  0 0 0 0 / 0 1 2 0 / 0 3 4 0 / 0 0 0 0
        #[rustfmt::skip]
        let want = [
            0.0, 0.0, 0.0, 4.0, // offset (0,0): rows 0,2 cols 0,2
            0.0, 0.0, 3.0, 0.0, // offset (0,1)
            0.0, 2.0, 0.0, 0.0, // offset (1,0)
            1.0, 0.0, 0.0, 0.0, // offset (1,1)
        ];
        assert_eq!(out, want);
        assert!(space_to_batch_shape(&[1, 3, 2, 1], &[2, 2], &[(0, 0), (0, 0)]).is_err());
    }

    #[test]
    fn batch_to_space_with_crops_and_batches() {
        // 2 output batches, block [2] on a 1-D spatial dim, depth 1.
        // in [4,2,1]: batch k = offset (k/2), out batch k%2.
        let x = [1u8, 3, 10, 30, 2, 4, 20, 40];
        let shape = batch_to_space_shape(&[4, 2, 1], &[2], &[(1, 0)]).unwrap();
        assert_eq!(shape, vec![2, 3, 1]);
        let mut out = [0u8; 6];
        batch_to_space_nd(&x, &[4, 2, 1], &[2], &[(1, 0)], &mut out, &shape);
        // uncropped batch 0: 1 2 3 4, batch 1: 10 20 30 40; crop first.
        assert_eq!(out, [2, 3, 4, 20, 30, 40]);
        assert!(batch_to_space_shape(&[3, 2, 1], &[2], &[(0, 0)]).is_err());
        assert!(batch_to_space_shape(&[2, 1, 1], &[2], &[(2, 1)]).is_err());
    }
}
