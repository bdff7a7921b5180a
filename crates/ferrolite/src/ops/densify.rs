//! DENSIFY: a sparse constant (TFLite's sparsity format) made dense once,
//! at prepare.

use ferrolite_kernels::reference::densify::{self as k, DimFormat, SparseLayout};
use ferrolite_schema as fb;
use ferrolite_schema::BuiltinOperator as B;

use super::{element_size, elems, elems_mut, with_element_size};
use crate::error::OpError;
use crate::op::{EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;
use crate::tensor::AlignedBytes;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::Densify as i32, 1..=i32::MAX, Densify);
}

struct Densify;

/// A segments / indices array as non-negative integers.
fn index_vector(v: Option<&fb::SparseIndexVector>, what: &str) -> Result<Vec<usize>, OpError> {
    let bad = |x: i64| OpError::Value(format!("negative {what} entry {x}"));
    match v {
        None => Err(OpError::Value(format!("a sparse dimension has no {what}"))),
        Some(fb::SparseIndexVector::Int32Vector(v)) => {
            v.values.iter().flatten().map(|&x| usize::try_from(x).map_err(|_| bad(x as i64))).collect()
        }
        Some(fb::SparseIndexVector::Uint16Vector(v)) => Ok(v.values.iter().flatten().map(|&x| x as usize).collect()),
        Some(fb::SparseIndexVector::Uint8Vector(v)) => Ok(v.values.iter().flatten().map(|&x| x as usize).collect()),
    }
}

fn non_negative(v: &[i32], what: &str) -> Result<Vec<usize>, OpError> {
    v.iter().map(|&x| usize::try_from(x).map_err(|_| OpError::Value(format!("negative {what} entry {x}")))).collect()
}

/// The kernel's view of the schema's sparsity parameters.
pub(crate) fn layout(dense_shape: &[usize], s: &fb::SparsityParameters) -> Result<SparseLayout, OpError> {
    let traversal_order = non_negative(s.traversal_order.as_deref().unwrap_or_default(), "traversal order")?;
    let block_map = non_negative(s.block_map.as_deref().unwrap_or_default(), "block map")?;
    let mut dims = Vec::new();
    for m in s.dim_metadata.iter().flatten() {
        dims.push(match m.format {
            fb::DimensionType::Dense => DimFormat::Dense {
                size: usize::try_from(m.dense_size)
                    .map_err(|_| OpError::Value(format!("negative dense size {}", m.dense_size)))?,
            },
            fb::DimensionType::SparseCsr => DimFormat::SparseCsr {
                segments: index_vector(m.array_segments.as_ref(), "array_segments")?,
                indices: index_vector(m.array_indices.as_ref(), "array_indices")?,
            },
        });
    }
    Ok(SparseLayout { dense_shape: dense_shape.to_vec(), traversal_order, block_map, dims })
}

impl Operator for Densify {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(1, 1)?;
        ctx.check_outputs(1, 1)?;
        let input = ctx.input(0)?;
        let dtype = super::same_dtype(ctx, 0, 0)?;
        let sparsity = input.sparsity.ok_or_else(|| OpError::Value("DENSIFY's input is not sparse".into()))?;
        let values = input.constant.ok_or_else(|| OpError::Value("DENSIFY's input must be a constant".into()))?;
        let shape = input.shape().to_vec();
        let layout = layout(&shape, sparsity)?;
        let size = element_size(dtype)?;
        let bytes = dtype
            .bytes_for(input.info.num_elements())
            .ok_or_else(|| OpError::Value(format!("dense shape {shape:?} is too large")))?;
        let mut dense = AlignedBytes::try_zeroed(bytes)
            .ok_or_else(|| OpError::Value(format!("no memory for the dense {shape:?} tensor")))?;
        if values.len() % size != 0 {
            return Err(OpError::Value(format!("{} value bytes are not whole {dtype} elements", values.len())));
        }
        // The values are copied out first: the model's bytes need not be
        // aligned for the element type.
        let values = AlignedBytes::from_slice(values);
        with_element_size!(size, T, {
            let zero: T = bytemuck::Zeroable::zeroed();
            let out = elems_mut::<T>(dense.as_mut_slice())?;
            k::densify(&layout, elems::<T>(values.as_slice())?, zero, out).map_err(OpError::Value)
        })?;
        ctx.set_output_shape(0, shape)?;
        ctx.set_output_constant(0, dense)?;
        Ok(Box::new(|_: &mut EvalContext<'_>| Ok(())))
    }
}
