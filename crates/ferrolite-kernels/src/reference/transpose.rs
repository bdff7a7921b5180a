//! TRANSPOSE for any element type and rank.

/// Output shape of a transpose: `out[i] = in_shape[perm[i]]`.
pub fn transposed_shape(in_shape: &[usize], perm: &[usize]) -> Vec<usize> {
    perm.iter().map(|&p| in_shape[p]).collect()
}

/// Permute the dimensions of `input` (row-major, `in_shape`) so that output
/// dimension `i` is input dimension `perm[i]`.
///
/// `perm` must be a permutation of `0..in_shape.len()` (the runtime
/// resolves negative entries) and `output` must hold as many elements as
/// `input`. Any rank works; TFLite itself stops at 6.
pub fn transpose<T: Copy>(input: &[T], in_shape: &[usize], perm: &[usize], output: &mut [T]) {
    let rank = in_shape.len();
    let total: usize = in_shape.iter().product();
    if total == 0 {
        return;
    }
    if rank == 0 {
        output[0] = input[0];
        return;
    }
    // Row-major strides of the input, then re-ordered to the output's dims.
    let mut in_strides = vec![0usize; rank];
    let mut step = 1usize;
    for d in (0..rank).rev() {
        in_strides[d] = step;
        step *= in_shape[d];
    }
    let out_shape: Vec<usize> = perm.iter().map(|&p| in_shape[p]).collect();
    let strides: Vec<usize> = perm.iter().map(|&p| in_strides[p]).collect();

    let inner = out_shape[rank - 1];
    let inner_stride = strides[rank - 1];
    let mut counter = vec![0usize; rank - 1];
    let mut in_off = 0usize;
    for chunk in output[..total].chunks_exact_mut(inner) {
        if inner_stride == 1 {
            chunk.copy_from_slice(&input[in_off..in_off + inner]);
        } else {
            for (j, o) in chunk.iter_mut().enumerate() {
                *o = input[in_off + j * inner_stride];
            }
        }
        let mut d = rank - 1;
        while d > 0 {
            d -= 1;
            counter[d] += 1;
            in_off += strides[d];
            if counter[d] < out_shape[d] {
                break;
            }
            in_off -= strides[d] * out_shape[d];
            counter[d] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nhwc_to_nchw() {
        // x[n,h,w,c] = 1000n + 100h + 10w + c, shape [2,2,3,4]; perm [0,3,1,2].
        let shape = [2usize, 2, 3, 4];
        let mut x = Vec::new();
        for n in 0..2 {
            for h in 0..2 {
                for w in 0..3 {
                    for c in 0..4 {
                        x.push(1000 * n + 100 * h + 10 * w + c);
                    }
                }
            }
        }
        let mut out = vec![0i32; x.len()];
        transpose(&x, &shape, &[0, 3, 1, 2], &mut out);
        assert_eq!(transposed_shape(&shape, &[0, 3, 1, 2]), vec![2, 4, 2, 3]);
        let mut want = Vec::new();
        for n in 0..2 {
            for c in 0..4 {
                for h in 0..2 {
                    for w in 0..3 {
                        want.push(1000 * n + 100 * h + 10 * w + c);
                    }
                }
            }
        }
        assert_eq!(out, want);
    }

    #[test]
    fn matrix_and_identity_and_rank6() {
        let x = [1, 2, 3, 4, 5, 6];
        let mut out = [0; 6];
        transpose(&x, &[2, 3], &[1, 0], &mut out);
        assert_eq!(out, [1, 4, 2, 5, 3, 6]);
        transpose(&x, &[2, 3], &[0, 1], &mut out);
        assert_eq!(out, x);
        // Rank 6 with unit dims: reversing the axes of [1,2,1,3,1,1].
        transpose(&x, &[1, 2, 1, 3, 1, 1], &[5, 4, 3, 2, 1, 0], &mut out);
        assert_eq!(out, [1, 4, 2, 5, 3, 6]);
    }
}
