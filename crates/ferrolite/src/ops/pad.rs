//! PAD (zeros, or the zero point for quantised tensors), PADV2 (a given
//! value) and MIRROR_PAD (REFLECT / SYMMETRIC).

use ferrolite_kernels::reference::pad as k;
use ferrolite_schema::BuiltinOperator as B;

use super::{element_size, elems, elems_mut, int_values, options, to_dim, with_element_size};
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::Pad as i32, 1..=i32::MAX, Pad(Kind::Zero));
    r.add_builtin(B::Padv2 as i32, 1..=i32::MAX, Pad(Kind::Value));
    r.add_builtin(B::MirrorPad as i32, 1..=i32::MAX, Pad(Kind::Mirror));
}

/// Outputs from this many bytes on are padded by several threads (a copy
/// is cheap: below ~64 KiB the hand-over costs more than it saves).
const PARALLEL_BYTES: usize = 64 * 1024;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Zero,
    Value,
    Mirror,
}

struct Pad(Kind);

impl Operator for Pad {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        let kind = self.0;
        ctx.check_inputs(2, if kind == Kind::Value { 3 } else { 2 })?;
        ctx.check_outputs(1, 1)?;
        let input = ctx.input(0)?;
        let dtype = super::same_dtype(ctx, 0, 0)?;
        let in_shape = input.shape().to_vec();
        let raw = int_values(&ctx.input(1)?, "the paddings input")?;
        if raw.len() != 2 * in_shape.len() {
            return Err(OpError::Shape(format!(
                "paddings has {} values for a rank-{} input",
                raw.len(),
                in_shape.len()
            )));
        }
        let mut paddings = Vec::with_capacity(in_shape.len());
        let mut out_shape = Vec::with_capacity(in_shape.len());
        for (d, &n) in in_shape.iter().enumerate() {
            let (before, after) = (to_dim(raw[2 * d], "padding")?, to_dim(raw[2 * d + 1], "padding")?);
            paddings.push((before, after));
            out_shape.push(
                n.checked_add(before)
                    .and_then(|v| v.checked_add(after))
                    .ok_or(OpError::Value("padding overflows".into()))?,
            );
        }
        let mode = if kind == Kind::Mirror {
            let m = options!(ctx, MirrorPadOptions).map(|o| o.mode).unwrap_or(ferrolite_schema::MirrorPadMode::Reflect);
            let mode = match m {
                ferrolite_schema::MirrorPadMode::Reflect => k::MirrorPadMode::Reflect,
                ferrolite_schema::MirrorPadMode::Symmetric => k::MirrorPadMode::Symmetric,
            };
            let slack = if mode == k::MirrorPadMode::Reflect { 1 } else { 0 };
            for (d, (&n, &(b, a))) in in_shape.iter().zip(&paddings).enumerate() {
                if b + slack > n || a + slack > n {
                    return Err(OpError::Value(format!(
                        "mirror padding ({b}, {a}) too large for dimension {d} of size {n}"
                    )));
                }
            }
            Some(mode)
        } else {
            None
        };
        ctx.set_output_shape(0, out_shape)?;
        let size = element_size(dtype)?;
        // The fill value, as raw bytes of the element type.
        let fill: Vec<u8> = match kind {
            Kind::Value => {
                let v = ctx.input(2)?;
                let c = v.constant.ok_or(OpError::Unsupported("PADV2 with a computed pad value".into()))?;
                if v.dtype() != dtype || c.len() != size {
                    return Err(OpError::Shape("the pad value must be one element of the input's type".into()));
                }
                c.to_vec()
            }
            _ => match (dtype, input.quant()) {
                (DataType::Int8, Some(q)) => vec![q.zero_point() as i8 as u8],
                (DataType::UInt8, Some(q)) => vec![q.zero_point() as u8],
                (DataType::Int16, Some(q)) => (q.zero_point() as i16).to_le_bytes().to_vec(),
                _ => vec![0; size],
            },
        };
        // Constant padding runs over the fewest dimensions that describe it,
        // its output rows split between threads when it is large.
        let (dims, pads) = k::coalesce(&in_shape, &paddings);
        let rows = dims.first().map_or(1, |&n| n + pads[0].0 + pads[0].1);
        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
            let x = ctx.input(0)?;
            let workers = ctx.workers;
            with_element_size!(size, T, {
                let x = elems::<T>(x.bytes)?;
                let out = elems_mut::<T>(ctx.output(0)?.bytes)?;
                match mode {
                    Some(m) => k::mirror_pad(x, &in_shape, &paddings, m, out),
                    None => {
                        let v: T = bytemuck::pod_read_unaligned(&fill);
                        let row = out.len() / rows.max(1);
                        if workers.threads() > 1 && out.len() >= PARALLEL_BYTES / size && rows > 1 && row > 0 {
                            workers.for_each_chunk(out, row, |first, chunk| {
                                k::pad_outer_rows(x, &dims, &pads, v, chunk, first)
                            });
                        } else {
                            k::pad_outer_rows(x, &dims, &pads, v, out, 0)
                        }
                    }
                }
                Ok(())
            })
        }))
    }
}
