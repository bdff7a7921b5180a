//! NON_MAX_SUPPRESSION_V4 and _V5 on float boxes and scores, with a
//! constant `max_output_size`: the selected indices (and, for V5, their
//! soft-NMS scores) padded with zeros to that size, and how many are valid.

use ferrolite_kernels::reference::non_max_suppression as k;
use ferrolite_schema::BuiltinOperator as B;

use super::int_values;
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{expect_dtype, EvalContext, InputInfo, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::NonMaxSuppressionV4 as i32, 1..=i32::MAX, Nms { soft: false });
    r.add_builtin(B::NonMaxSuppressionV5 as i32, 1..=i32::MAX, Nms { soft: true });
}

/// V4 (`soft: false`): inputs boxes, scores, max_output_size,
/// iou_threshold, score_threshold; outputs selected_indices,
/// valid_outputs. V5 adds the soft_nms_sigma input and a selected_scores
/// output between the two.
struct Nms {
    soft: bool,
}

/// Fail unless `t` is a float32 tensor of one value.
fn float_scalar(name: &str, what: &str, t: &InputInfo<'_>) -> Result<(), OpError> {
    expect_dtype(&format!("{name} {what}"), t.dtype(), &[DataType::Float32])?;
    let n = t.info.num_elements();
    if n != 1 {
        return Err(OpError::Shape(format!("{name} {what} must hold one value, got {:?}", t.shape())));
    }
    Ok(())
}

impl Operator for Nms {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        let soft = self.soft;
        let name = if soft { "NON_MAX_SUPPRESSION_V5" } else { "NON_MAX_SUPPRESSION_V4" };
        let (inputs, outputs) = if soft { (6, 3) } else { (5, 2) };
        ctx.check_inputs(inputs, inputs)?;
        ctx.check_outputs(outputs, outputs)?;
        let (boxes, scores, max_size) = (ctx.input(0)?, ctx.input(1)?, ctx.input(2)?);
        for (t, what) in [(&boxes, "boxes"), (&scores, "scores")] {
            if matches!(t.dtype(), DataType::Int8 | DataType::Int16) {
                return Err(OpError::Unsupported(format!("{name} on quantised {what} ({})", t.dtype())));
            }
            expect_dtype(&format!("{name} {what}"), t.dtype(), &[DataType::Float32])?;
        }
        let n = match boxes.shape() {
            &[n, 4] => n,
            s => return Err(OpError::Shape(format!("{name} boxes must have shape [num_boxes, 4], got {s:?}"))),
        };
        if scores.shape() != [n] {
            return Err(OpError::Shape(format!(
                "{name} scores must have shape [{n}] (one per box), got {:?}",
                scores.shape()
            )));
        }
        expect_dtype(&format!("{name} max_output_size"), max_size.dtype(), &[DataType::Int32])?;
        if max_size.info.num_elements() != 1 {
            return Err(OpError::Shape(format!(
                "{name} max_output_size must hold one value, got {:?}",
                max_size.shape()
            )));
        }
        let max = int_values(&max_size, &format!("{name} max_output_size"))?
            .first()
            .copied()
            .ok_or_else(|| OpError::Shape(format!("{name} max_output_size holds no value")))?;
        let max = usize::try_from(max)
            .map_err(|_| OpError::Value(format!("{name} max_output_size is {max}, must not be negative")))?;
        float_scalar(name, "iou_threshold", &ctx.input(3)?)?;
        float_scalar(name, "score_threshold", &ctx.input(4)?)?;
        if soft {
            let sigma = ctx.input(5)?;
            float_scalar(name, "soft_nms_sigma", &sigma)?;
            if let Some(&[s]) = sigma.constant_as::<f32>()? {
                if s < 0.0 {
                    return Err(OpError::Value(format!("{name} soft_nms_sigma is {s}, must not be negative")));
                }
            }
        }
        let count_out = outputs - 1;
        expect_dtype(&format!("{name} selected_indices"), ctx.output_dtype(0)?, &[DataType::Int32])?;
        expect_dtype(&format!("{name} valid_outputs"), ctx.output_dtype(count_out)?, &[DataType::Int32])?;
        ctx.set_output_shape(0, vec![max])?;
        ctx.set_output_shape(count_out, vec![])?;
        if soft {
            expect_dtype(&format!("{name} selected_scores"), ctx.output_dtype(1)?, &[DataType::Float32])?;
            ctx.set_output_shape(1, vec![max])?;
        }
        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
            let boxes = ctx.input(0)?.as_slice::<f32>()?;
            let scores = ctx.input(1)?.as_slice::<f32>()?;
            let scalar = |i: usize| -> Result<f32, OpError> {
                let v = ctx.input(i)?.as_slice::<f32>()?;
                v.first().copied().ok_or_else(|| OpError::Shape(format!("{name} input {i} is empty")))
            };
            let (iou, score) = (scalar(3)?, scalar(4)?);
            let sigma = if soft { scalar(5)? } else { 0.0 };
            if sigma < 0.0 {
                return Err(OpError::Value(format!("{name} soft_nms_sigma is {sigma}, must not be negative")));
            }
            if boxes.len() != 4 * n || scores.len() != n {
                return Err(OpError::Shape(format!("{name}: {} box values for {} scores", boxes.len(), scores.len())));
            }
            let (first, rest) = ctx.outputs_mut().split_at_mut(1);
            let selected = first[0].as_slice_mut::<i32>()?;
            let (selected_scores, count) = if soft {
                let (s, c) = rest.split_at_mut(1);
                (Some(s[0].as_slice_mut::<f32>()?), &mut c[0])
            } else {
                (None, &mut rest[0])
            };
            if selected.len() != max || selected_scores.as_ref().is_some_and(|s| s.len() != max) {
                return Err(OpError::Shape(format!("{name}: outputs do not hold max_output_size = {max} values")));
            }
            let valid = k::non_max_suppression(boxes, scores, iou, score, sigma, selected, selected_scores);
            let count = count.as_slice_mut::<i32>()?;
            let slot = count.first_mut().ok_or_else(|| OpError::Shape(format!("{name} valid_outputs is empty")))?;
            *slot = valid as i32;
            Ok(())
        }))
    }
}
