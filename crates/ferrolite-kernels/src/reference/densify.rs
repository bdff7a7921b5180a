//! DENSIFY: expand a sparse tensor in TFLite's sparsity format to dense.
//!
//! The format describes a traversal of an "expanded" tensor: the original
//! dimensions (each blocked one divided by its block size) followed by one
//! dimension per block (`block_map[j]` names the original dimension block
//! `j` splits). `traversal_order` lists the expanded dimensions in storage
//! order, and level `k` of the traversal is described by `dims[k]`: dense
//! (every index `0..size` is present) or CSR (for each position of the
//! enclosing levels, `segments[p]..segments[p + 1]` delimits the entries of
//! `indices` present). The stored values follow the traversal, one per
//! leaf. Missing elements are zero.
//!
//! As in TFLite, the first `rank` entries of `traversal_order` must be the
//! original dimensions, and block `j`'s size is the dense size given for
//! expanded dimension `traversal_order[rank + j]`.

/// How one traversal level is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DimFormat {
    Dense { size: usize },
    SparseCsr { segments: Vec<usize>, indices: Vec<usize> },
}

/// A sparse tensor's layout (the values are passed separately).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SparseLayout {
    pub dense_shape: Vec<usize>,
    pub traversal_order: Vec<usize>,
    pub block_map: Vec<usize>,
    pub dims: Vec<DimFormat>,
}

impl SparseLayout {
    /// Check the parts fit together; returns the block sizes.
    fn block_sizes(&self) -> Result<Vec<usize>, String> {
        let rank = self.dense_shape.len();
        let n = rank + self.block_map.len();
        if self.traversal_order.len() != n || self.dims.len() != n {
            return Err(format!(
                "sparsity has {} traversal entries and {} dimension descriptions, expected {n}",
                self.traversal_order.len(),
                self.dims.len()
            ));
        }
        let mut seen = vec![false; n];
        for (k, &t) in self.traversal_order.iter().enumerate() {
            if t >= n || seen[t] {
                return Err(format!("traversal order {:?} is not a permutation", self.traversal_order));
            }
            seen[t] = true;
            if (k < rank) != (t < rank) {
                return Err("traversal order must list the original dimensions before the block ones".to_string());
            }
        }
        if self.block_map.iter().any(|&d| d >= rank) {
            return Err(format!("block map {:?} names a dimension past rank {rank}", self.block_map));
        }
        let mut sizes = Vec::with_capacity(self.block_map.len());
        for j in 0..self.block_map.len() {
            match self.dims[self.traversal_order[rank + j]] {
                DimFormat::Dense { size } if size > 0 => sizes.push(size),
                _ => return Err(format!("block {j} has no positive dense size")),
            }
        }
        // Each dense level must span exactly its expanded dimension (a
        // blocked original dimension counts in blocks), so a bad size cannot
        // send the walk through indices that do not exist.
        let mut expanded: Vec<usize> = self.dense_shape.clone();
        for (j, &d) in self.block_map.iter().enumerate() {
            if !expanded[d].is_multiple_of(sizes[j]) {
                return Err(format!(
                    "dimension {d} of size {} is not a multiple of its block {}",
                    expanded[d], sizes[j]
                ));
            }
            expanded[d] /= sizes[j];
        }
        expanded.extend_from_slice(&sizes);
        for (k, dim) in self.dims.iter().enumerate() {
            let want = expanded[self.traversal_order[k]];
            if let DimFormat::Dense { size } = *dim {
                if size != want {
                    return Err(format!("dense level {k} has size {size}, its dimension {want}"));
                }
            }
        }
        Ok(sizes)
    }
}

/// Expand `values` (stored in `layout`) into `output` (the dense shape,
/// row-major); untouched elements are `zero`. Inconsistent layouts (indices
/// outside the shape, too few values) give `Err`.
pub fn densify<T: Copy>(layout: &SparseLayout, values: &[T], zero: T, output: &mut [T]) -> Result<(), String> {
    let block_size = layout.block_sizes()?;
    let expected: usize = layout.dense_shape.iter().product();
    if output.len() != expected {
        return Err(format!("output has {} elements, the dense shape {expected}", output.len()));
    }
    output.fill(zero);
    let mut w = Walk { layout, block_size: &block_size, values, next: 0, output, coords: vec![0; layout.dims.len()] };
    w.level(0, 0)
}

struct Walk<'a, T> {
    layout: &'a SparseLayout,
    block_size: &'a [usize],
    values: &'a [T],
    next: usize,
    output: &'a mut [T],
    coords: Vec<usize>,
}

impl<T: Copy> Walk<'_, T> {
    fn level(&mut self, level: usize, parent: usize) -> Result<(), String> {
        if level == self.coords.len() {
            return self.leaf();
        }
        match &self.layout.dims[level] {
            DimFormat::Dense { size } => {
                for i in 0..*size {
                    self.coords[level] = i;
                    let pos = parent.checked_mul(*size).and_then(|p| p.checked_add(i)).ok_or("position overflow")?;
                    self.level(level + 1, pos)?;
                }
            }
            DimFormat::SparseCsr { segments, indices } => {
                if parent + 1 < segments.len() {
                    let (from, to) = (segments[parent], segments[parent + 1]);
                    if from > to || to > indices.len() {
                        return Err(format!("segment {from}..{to} of level {level} is outside its indices"));
                    }
                    for (i, &index) in indices.iter().enumerate().take(to).skip(from) {
                        self.coords[level] = index;
                        self.level(level + 1, i)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn leaf(&mut self) -> Result<(), String> {
        let l = self.layout;
        let rank = l.dense_shape.len();
        let mut orig = vec![0usize; rank];
        for k in 0..rank {
            orig[l.traversal_order[k]] = self.coords[k];
        }
        for k in rank..self.coords.len() {
            let b = l.traversal_order[k] - rank;
            let d = l.block_map[b];
            orig[d] = orig[d] * self.block_size[b] + self.coords[k];
        }
        let mut flat = 0usize;
        for (d, (&i, &n)) in orig.iter().zip(&l.dense_shape).enumerate() {
            if i >= n {
                return Err(format!("sparse index {i} is outside dimension {d} of size {n}"));
            }
            flat = flat * n + i;
        }
        let v = *self.values.get(self.next).ok_or("the sparse tensor has fewer values than its indices need")?;
        self.output[flat] = v;
        self.next += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [[0, 1, 0, 2], [0, 0, 0, 0], [3, 0, 0, 0], [0, 4, 5, 0]] in CSR.
    fn csr_4x4() -> (SparseLayout, Vec<f32>) {
        let layout = SparseLayout {
            dense_shape: vec![4, 4],
            traversal_order: vec![0, 1],
            block_map: vec![],
            dims: vec![
                DimFormat::Dense { size: 4 },
                DimFormat::SparseCsr { segments: vec![0, 2, 2, 3, 5], indices: vec![1, 3, 0, 1, 2] },
            ],
        };
        (layout, vec![1.0, 2.0, 3.0, 4.0, 5.0])
    }

    #[test]
    fn csr_matrix() {
        let (layout, values) = csr_4x4();
        let mut out = [9.0f32; 16];
        densify(&layout, &values, 0.0, &mut out).unwrap();
        #[rustfmt::skip]
        assert_eq!(out, [
            0.0, 1.0, 0.0, 2.0,
            0.0, 0.0, 0.0, 0.0,
            3.0, 0.0, 0.0, 0.0,
            0.0, 4.0, 5.0, 0.0,
        ]);
    }

    #[test]
    fn column_major_traversal() {
        // The same matrix stored by columns: traversal (1, 0).
        let layout = SparseLayout {
            dense_shape: vec![4, 4],
            traversal_order: vec![1, 0],
            block_map: vec![],
            dims: vec![
                DimFormat::Dense { size: 4 },
                DimFormat::SparseCsr { segments: vec![0, 1, 3, 4, 5], indices: vec![2, 0, 3, 3, 0] },
            ],
        };
        let mut out = [0i8; 16];
        densify(&layout, &[3, 1, 4, 5, 2], 0, &mut out).unwrap();
        assert_eq!(out, [0, 1, 0, 2, 0, 0, 0, 0, 3, 0, 0, 0, 0, 4, 5, 0]);
    }

    #[test]
    fn blocked_rows() {
        // 4x4 in 2x2 blocks (block_map [0, 1]); a block-CSR over the 2x2 grid
        // of blocks: block (0,1) = [[1,2],[3,4]] and block (1,0) = [[5,0],[0,6]].
        let layout = SparseLayout {
            dense_shape: vec![4, 4],
            traversal_order: vec![0, 1, 2, 3],
            block_map: vec![0, 1],
            dims: vec![
                DimFormat::Dense { size: 2 },
                DimFormat::SparseCsr { segments: vec![0, 1, 2], indices: vec![1, 0] },
                DimFormat::Dense { size: 2 },
                DimFormat::Dense { size: 2 },
            ],
        };
        let values = [1, 2, 3, 4, 5, 0, 0, 6];
        let mut out = [0i32; 16];
        densify(&layout, &values, 0, &mut out).unwrap();
        #[rustfmt::skip]
        assert_eq!(out, [
            0, 0, 1, 2,
            0, 0, 3, 4,
            5, 0, 0, 0,
            0, 6, 0, 0,
        ]);
    }

    #[test]
    fn inconsistent_layouts_are_errors() {
        let (mut layout, values) = csr_4x4();
        let mut out = [0.0f32; 16];
        assert!(densify(&layout, &values[..4], 0.0, &mut out).is_err());
        layout.dims[1] = DimFormat::SparseCsr { segments: vec![0, 2, 2, 3, 5], indices: vec![1, 3, 0, 4, 2] };
        assert!(densify(&layout, &values, 0.0, &mut out).is_err());
        layout.traversal_order = vec![0, 0];
        assert!(densify(&layout, &values, 0.0, &mut out).is_err());
        let (layout, values) = csr_4x4();
        assert!(densify(&layout, &values, 0.0, &mut out[..15]).is_err());
        let (mut layout, values) = csr_4x4();
        layout.dims[0] = DimFormat::Dense { size: 1 << 20 };
        assert!(densify(&layout, &values, 0.0, &mut out).is_err());
    }
}
