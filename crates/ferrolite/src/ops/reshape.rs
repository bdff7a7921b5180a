//! RESHAPE, SQUEEZE, EXPAND_DIMS: the same bytes under another shape.

use ferrolite_schema::BuiltinOperator as B;

use super::{copy_bytes, int_values, normalize_axis, options, to_dim};
use crate::error::OpError;
use crate::op::{Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;
use crate::tensor::checked_num_elements;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::Reshape as i32, 1..=i32::MAX, Reshape);
    r.add_builtin(B::Squeeze as i32, 1..=i32::MAX, Squeeze);
    r.add_builtin(B::ExpandDims as i32, 1..=i32::MAX, ExpandDims);
}

fn check_same_type(ctx: &PrepareContext<'_>) -> Result<(), OpError> {
    let (i, o) = (ctx.input(0)?.dtype(), ctx.output_dtype(0)?);
    if i != o {
        return Err(OpError::DType { tensor: "output".into(), expected: i.to_string(), got: o.to_string() });
    }
    Ok(())
}

struct Reshape;

impl Operator for Reshape {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(1, 2)?;
        ctx.check_outputs(1, 1)?;
        check_same_type(ctx)?;
        let input = ctx.input(0)?;
        let count = input.info.num_elements();
        // The new shape: the second input if present (and not a placeholder
        // of rank 0), else the options, else the output's declared shape.
        let requested: Vec<i64> = match ctx.optional_input(1) {
            Some(s) if s.info.num_elements() > 0 => int_values(&s, "the shape input")?,
            _ => match options!(ctx, ReshapeOptions).and_then(|o| o.new_shape.clone()) {
                Some(v) => v.into_iter().map(i64::from).collect(),
                // An empty shape tensor means a scalar; no tensor at all
                // means the shape the file declares.
                None if ctx.optional_input(1).is_some() => Vec::new(),
                None => ctx.output(0)?.shape.iter().map(|&d| d as i64).collect(),
            },
        };
        let shape = resolve_shape(&requested, count)?;
        ctx.set_output_shape(0, shape)?;
        Ok(Box::new(copy_bytes))
    }
}

/// Fill in a single -1 so the element count is kept.
fn resolve_shape(requested: &[i64], count: usize) -> Result<Vec<usize>, OpError> {
    let mut unknown = None;
    let mut known = 1usize;
    let mut shape = Vec::with_capacity(requested.len());
    for (i, &d) in requested.iter().enumerate() {
        if d == -1 {
            if unknown.replace(i).is_some() {
                return Err(OpError::Shape(format!("new shape {requested:?} has more than one -1")));
            }
            shape.push(1);
        } else {
            let d = to_dim(d, "new shape dimension")?;
            known = known.checked_mul(d).ok_or_else(|| OpError::Shape(format!("new shape {requested:?} overflows")))?;
            shape.push(d);
        }
    }
    if let Some(i) = unknown {
        if known == 0 || !count.is_multiple_of(known) {
            return Err(OpError::Shape(format!("cannot reshape {count} elements to {requested:?}")));
        }
        shape[i] = count / known;
    }
    if checked_num_elements(&shape) != Some(count) {
        return Err(OpError::Shape(format!("cannot reshape {count} elements to {requested:?}")));
    }
    Ok(shape)
}

struct Squeeze;

impl Operator for Squeeze {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(1, 1)?;
        ctx.check_outputs(1, 1)?;
        check_same_type(ctx)?;
        let in_shape = ctx.input(0)?.shape().to_vec();
        let dims: Vec<i32> = options!(ctx, SqueezeOptions).and_then(|o| o.squeeze_dims.clone()).unwrap_or_default();
        let mut drop = vec![false; in_shape.len()];
        if dims.is_empty() {
            for (d, &n) in in_shape.iter().enumerate() {
                drop[d] = n == 1;
            }
        } else {
            for &d in &dims {
                let a = normalize_axis(d as i64, in_shape.len())?;
                if in_shape[a] != 1 {
                    return Err(OpError::Shape(format!("cannot squeeze dimension {a} of size {}", in_shape[a])));
                }
                drop[a] = true;
            }
        }
        let shape = in_shape.iter().zip(&drop).filter(|(_, &x)| !x).map(|(&n, _)| n).collect();
        ctx.set_output_shape(0, shape)?;
        Ok(Box::new(copy_bytes))
    }
}

struct ExpandDims;

impl Operator for ExpandDims {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(2, 2)?;
        ctx.check_outputs(1, 1)?;
        check_same_type(ctx)?;
        let mut shape = ctx.input(0)?.shape().to_vec();
        let axis = *int_values(&ctx.input(1)?, "the axis input")?
            .first()
            .ok_or_else(|| OpError::Value("the axis input is empty".into()))?;
        let a = normalize_axis(axis, shape.len() + 1)?;
        shape.insert(a, 1);
        ctx.set_output_shape(0, shape)?;
        Ok(Box::new(copy_bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::resolve_shape;

    #[test]
    fn minus_one_is_inferred() {
        assert_eq!(resolve_shape(&[2, -1], 6).unwrap(), vec![2, 3]);
        assert!(resolve_shape(&[4, -1], 6).is_err());
        assert!(resolve_shape(&[-1, -1], 6).is_err());
        assert!(resolve_shape(&[5], 6).is_err());
    }
}
