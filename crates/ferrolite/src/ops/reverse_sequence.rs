//! REVERSE_SEQUENCE: per index of the batch dimension, a prefix of the
//! sequence dimension reversed.

use ferrolite_kernels::reference::reverse_sequence as k;
use ferrolite_schema::BuiltinOperator as B;

use super::{bytes_to_i64, element_size, elems, elems_mut, options, with_element_size};
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{expect_dtype, EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::ReverseSequence as i32, 1..=i32::MAX, ReverseSequence);
}

struct ReverseSequence;

impl Operator for ReverseSequence {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(2, 2)?;
        ctx.check_outputs(1, 1)?;
        let (input, lengths) = (ctx.input(0)?, ctx.input(1)?);
        let dtype = super::same_dtype(ctx, 0, 0)?;
        let len_type = lengths.dtype();
        expect_dtype("REVERSE_SEQUENCE seq_lengths", len_type, &[DataType::Int32, DataType::Int64])?;
        let shape = input.shape().to_vec();
        let rank = shape.len();
        let (seq_dim, batch_dim) = options!(ctx, ReverseSequenceOptions).map_or((0, 0), |o| (o.seq_dim, o.batch_dim));
        let dim = |d: i32, what: &str| {
            usize::try_from(d).ok().filter(|&d| d < rank).ok_or_else(|| {
                OpError::Options(format!("REVERSE_SEQUENCE {what} {d} is out of range for an input of rank {rank}"))
            })
        };
        let (seq, batch) = (dim(seq_dim, "seq_dim")?, dim(batch_dim, "batch_dim")?);
        if seq == batch {
            return Err(OpError::Options(format!("REVERSE_SEQUENCE seq_dim and batch_dim are both {seq}")));
        }
        if lengths.shape() != [shape[batch]] {
            return Err(OpError::Shape(format!(
                "REVERSE_SEQUENCE seq_lengths must be 1-D with one length per batch entry ({}), got {:?}",
                shape[batch],
                lengths.shape()
            )));
        }
        ctx.set_output_shape(0, shape.clone())?;
        let size = element_size(dtype)?;
        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
            let raw = bytes_to_i64(ctx.input(1)?.bytes, len_type, "REVERSE_SEQUENCE seq_lengths")?;
            let mut lens = Vec::with_capacity(raw.len());
            for (b, &l) in raw.iter().enumerate() {
                match usize::try_from(l) {
                    Ok(l) if l <= shape[seq] => lens.push(l),
                    _ => {
                        return Err(OpError::Value(format!(
                            "REVERSE_SEQUENCE: seq_lengths[{b}] = {l} is outside 0..={}",
                            shape[seq]
                        )))
                    }
                }
            }
            let x = ctx.input(0)?.bytes;
            with_element_size!(size, T, {
                k::reverse_sequence(elems::<T>(x)?, &shape, seq, batch, &lens, elems_mut::<T>(ctx.output(0)?.bytes)?);
                Ok(())
            })
        }))
    }
}
