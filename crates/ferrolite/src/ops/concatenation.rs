//! CONCATENATION along one axis; PACK and UNPACK (stack / unstack along a
//! new axis).

use ferrolite_kernels::reference::concat as k;
use ferrolite_schema::BuiltinOperator as B;

use ferrolite_kernels::reference::quantized::concat_with_scaling;

use super::quantized::{input_scale_zp, output_scale_zp};
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

/// TFLite's rules for quantised CONCATENATION: int8 inputs must share the
/// output's scale and zero point (its prepare rejects anything else), int16
/// ones need zero points of 0 and are copied as they are, and uint8 ones are
/// requantised to the output where they differ (`ConcatenationWithScaling`).
/// Returns the per-input (scale, zero point) for the uint8 rescaling.
fn check_quant(ctx: &PrepareContext<'_>, dtype: DataType) -> Result<Option<QuantConcat>, OpError> {
    if !matches!(dtype, DataType::Int8 | DataType::UInt8 | DataType::Int16) {
        return Ok(None);
    }
    let (so, zo) = output_scale_zp(ctx.output(0)?)?;
    let mut scales = Vec::with_capacity(ctx.num_inputs());
    let mut zero_points = Vec::with_capacity(ctx.num_inputs());
    for i in 0..ctx.num_inputs() {
        let (s, z) = input_scale_zp(&ctx.input(i)?, &format!("input {i}"))?;
        match dtype {
            DataType::Int8 if (s, z) != (so, zo) => {
                return Err(OpError::Value(format!(
                    "int8 input {i} has scale {s} zero point {z}, the output {so} and {zo}: TFLite requires them equal"
                )))
            }
            DataType::Int16 if z != 0 || zo != 0 => {
                return Err(OpError::Value(format!("int16 CONCATENATION needs zero points of 0 (input {i})")))
            }
            _ => {}
        }
        scales.push(s);
        zero_points.push(z);
    }
    if dtype != DataType::UInt8 || (scales.iter().all(|&s| s == so) && zero_points.iter().all(|&z| z == zo)) {
        return Ok(None);
    }
    if !(so.is_finite() && so > 0.0) {
        return Err(OpError::Value(format!("output scale {so} is not positive and finite")));
    }
    Ok(Some(QuantConcat { scales, zero_points, scale: so, zero_point: zo }))
}

/// uint8 inputs to requantise onto the output's scale and zero point.
struct QuantConcat {
    scales: Vec<f32>,
    zero_points: Vec<i32>,
    scale: f32,
    zero_point: i32,
}

struct Concatenation;

/// Output size from which CONCATENATION copies on several threads.
const PARALLEL_CONCAT_BYTES: usize = 256 * 1024;

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
        // Per outer row, each input's contiguous block (its dimensions from
        // `axis` on), and the output row they make.
        let blocks: Vec<usize> = shapes.iter().map(|s| s[axis..].iter().product()).collect();
        let row: usize = blocks.iter().sum();
        if let Some(qc) = check_quant(ctx, dtype)? {
            return Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                let mut inputs: Vec<&[u8]> = Vec::with_capacity(shapes.len());
                for i in 0..shapes.len() {
                    inputs.push(ctx.input(i)?.bytes);
                }
                let shape_refs: Vec<&[usize]> = shapes.iter().map(|s| s.as_slice()).collect();
                let out = ctx.output(0)?;
                concat_with_scaling(
                    &inputs,
                    &shape_refs,
                    &qc.scales,
                    &qc.zero_points,
                    axis,
                    qc.scale,
                    qc.zero_point,
                    out.bytes,
                );
                Ok(())
            }));
        }
        let clamp = if dtype == DataType::Float32 { Some(float_clamp(o.fused_activation_function)?) } else { None };
        let size = element_size(dtype)?;
        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
            with_element_size!(size, T, {
                let mut inputs: Vec<&[T]> = Vec::with_capacity(shapes.len());
                for i in 0..shapes.len() {
                    inputs.push(elems::<T>(ctx.input(i)?.bytes)?);
                }
                let workers = ctx.workers;
                let out = ctx.output(0)?;
                let out_elems = elems_mut::<T>(out.bytes)?;
                // Large copies (Inception's channel concats: megabytes) are
                // shared between threads by outer rows.
                let bytes = std::mem::size_of_val(out_elems);
                if workers.threads() > 1 && row > 0 && bytes >= PARALLEL_CONCAT_BYTES {
                    workers.for_each_chunk(out_elems, row, |first, rows| k::concat_rows(&inputs, &blocks, first, rows));
                } else {
                    k::concat_rows(&inputs, &blocks, 0, out_elems);
                }
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
