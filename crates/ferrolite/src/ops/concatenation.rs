//! CONCATENATION along one axis; PACK and UNPACK (stack / unstack along a
//! new axis).

use ferrolite_kernels::reference::concat as k;
use ferrolite_schema::BuiltinOperator as B;

use super::{element_size, elems, elems_mut, float_clamp, normalize_axis, options, with_element_size};
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::Concatenation as i32, 1..=i32::MAX, Concatenation);
    r.add_builtin(B::Pack as i32, 1..=i32::MAX, Pack);
    r.add_builtin(B::Unpack as i32, 1..=i32::MAX, Unpack);
}

/// Quantised inputs must share the output's scale and zero point for a
/// plain copy to be right; requantising concat arrives with the int8 kernels.
fn check_same_quant(ctx: &PrepareContext<'_>) -> Result<(), OpError> {
    let out = ctx.output(0)?.quant.clone();
    for i in 0..ctx.num_inputs() {
        let q = ctx.input(i)?.quant().cloned();
        let dt = ctx.input(i)?.dtype();
        if matches!(dt, DataType::Int8 | DataType::UInt8 | DataType::Int16) && q != out {
            return Err(OpError::Unsupported(format!("input {i} is quantised differently from the output")));
        }
    }
    Ok(())
}

struct Concatenation;

impl Operator for Concatenation {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(1, usize::MAX)?;
        ctx.check_outputs(1, 1)?;
        let o = options!(ctx, ConcatenationOptions).cloned().unwrap_or_default();
        let first = ctx.input(0)?;
        let dtype = super::same_dtype(ctx, 0, 0)?;
        let rank = first.shape().len();
        let axis = normalize_axis(o.axis as i64, rank)?;
        let mut out_shape = first.shape().to_vec();
        out_shape[axis] = 0;
        let mut shapes = Vec::new();
        for i in 0..ctx.num_inputs() {
            let t = ctx.input(i)?;
            if t.dtype() != dtype {
                return Err(OpError::DType {
                    tensor: format!("input {i}"),
                    expected: dtype.to_string(),
                    got: t.dtype().to_string(),
                });
            }
            let s = t.shape();
            if s.len() != rank || s.iter().enumerate().any(|(d, &n)| d != axis && n != first.shape()[d]) {
                return Err(OpError::Shape(format!(
                    "input {i} {s:?} does not match input 0 {:?} off axis {axis}",
                    first.shape()
                )));
            }
            out_shape[axis] += s[axis];
            shapes.push(s.to_vec());
        }
        ctx.set_output_shape(0, out_shape)?;
        check_same_quant(ctx)?;
        let clamp = if dtype == DataType::Float32 { Some(float_clamp(o.fused_activation_function)?) } else { None };
        let size = element_size(dtype)?;
        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
            with_element_size!(size, T, {
                let mut inputs: Vec<&[T]> = Vec::with_capacity(shapes.len());
                for i in 0..shapes.len() {
                    inputs.push(elems::<T>(ctx.input(i)?.bytes)?);
                }
                let shape_refs: Vec<&[usize]> = shapes.iter().map(|s| s.as_slice()).collect();
                let out = ctx.output(0)?;
                k::concat(&inputs, &shape_refs, axis, elems_mut::<T>(out.bytes)?);
                if let Some(c) = clamp.filter(|c| *c != ferrolite_kernels::activation::ClampF32::NONE) {
                    for v in out.as_slice_mut::<f32>()? {
                        *v = c.apply(*v);
                    }
                }
                Ok(())
            })
        }))
    }
}

struct Pack;

impl Operator for Pack {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(1, usize::MAX)?;
        ctx.check_outputs(1, 1)?;
        let o = options!(ctx, PackOptions).cloned().unwrap_or_default();
        let first = ctx.input(0)?;
        let dtype = super::same_dtype(ctx, 0, 0)?;
        let in_shape = first.shape().to_vec();
        let n = ctx.num_inputs();
        if o.values_count > 0 && o.values_count as usize != n {
            return Err(OpError::Options(format!("values_count {} but {n} inputs", o.values_count)));
        }
        for i in 0..n {
            let t = ctx.input(i)?;
            if t.shape() != in_shape.as_slice() || t.dtype() != dtype {
                return Err(OpError::Shape(format!(
                    "input {i} {:?} {} differs from input 0 {in_shape:?} {dtype}",
                    t.shape(),
                    t.dtype()
                )));
            }
        }
        let axis = normalize_axis(o.axis as i64, in_shape.len() + 1)?;
        let mut out_shape = in_shape.clone();
        out_shape.insert(axis, n);
        ctx.set_output_shape(0, out_shape)?;
        let size = element_size(dtype)?;
        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
            with_element_size!(size, T, {
                let mut inputs: Vec<&[T]> = Vec::with_capacity(n);
                for i in 0..n {
                    inputs.push(elems::<T>(ctx.input(i)?.bytes)?);
                }
                k::pack(&inputs, &in_shape, axis, elems_mut::<T>(ctx.output(0)?.bytes)?);
                Ok(())
            })
        }))
    }
}

struct Unpack;

impl Operator for Unpack {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(1, 1)?;
        ctx.check_outputs(1, usize::MAX)?;
        let o = options!(ctx, UnpackOptions).cloned().unwrap_or_default();
        let input = ctx.input(0)?;
        let in_shape = input.shape().to_vec();
        let axis = normalize_axis(o.axis as i64, in_shape.len())?;
        let n = in_shape[axis];
        if n != ctx.num_outputs() {
            return Err(OpError::Shape(format!(
                "dimension {axis} is {n} but the node has {} outputs",
                ctx.num_outputs()
            )));
        }
        let mut out_shape = in_shape.clone();
        out_shape.remove(axis);
        for i in 0..n {
            super::same_dtype(ctx, 0, i)?;
            ctx.set_output_shape(i, out_shape.clone())?;
        }
        let size = element_size(input.dtype())?;
        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
            let x = ctx.input(0)?;
            with_element_size!(size, T, {
                let x = elems::<T>(x.bytes)?;
                let mut outs: Vec<&mut [T]> = Vec::with_capacity(n);
                for o in ctx.outputs_mut().iter_mut() {
                    outs.push(elems_mut::<T>(o.bytes)?);
                }
                k::unpack(x, &in_shape, axis, &mut outs);
                Ok(())
            })
        }))
    }
}
