//! RESIZE_BILINEAR and RESIZE_NEAREST_NEIGHBOR to a constant size.
//! Nearest neighbour only copies elements, so it takes any type; bilinear
//! takes f32, and int8/int16 through TFLite's 10-bit fixed-point
//! `ResizeBilinearInteger` (which, like TFLite, leaves the quantisation
//! alone: the output is read with the input's scale and zero point).

use ferrolite_kernels::optimized::isa;
use ferrolite_kernels::optimized::resize::{resize_bilinear_i8, ResizeBilinearF32Plan};
use ferrolite_kernels::reference::quantized::resize_bilinear_integer;
use ferrolite_kernels::reference::resize::{resize_bilinear_f32, resize_bilinear_u8, resize_nearest_neighbor};
use ferrolite_schema::BuiltinOperator as B;

use super::{element_size, elems, elems_mut, int_values, options, shape4, to_dim, with_element_size};
use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{EvalContext, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;

pub fn register(r: &mut OpResolver) {
    r.add_builtin(B::ResizeBilinear as i32, 1..=i32::MAX, Resize { bilinear: true });
    r.add_builtin(B::ResizeNearestNeighbor as i32, 1..=i32::MAX, Resize { bilinear: false });
}

struct Resize {
    bilinear: bool,
}

impl Operator for Resize {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(2, 2)?;
        ctx.check_outputs(1, 1)?;
        let input = ctx.input(0)?;
        let dtype = super::same_dtype(ctx, 0, 0)?;
        let in_shape = shape4(input.shape(), "input")?;
        let size = int_values(&ctx.input(1)?, "the size input")?;
        let [h, w] = size[..] else {
            return Err(OpError::Shape(format!("size must hold 2 values, got {}", size.len())));
        };
        let (h, w) = (to_dim(h, "height")?, to_dim(w, "width")?);
        if h == 0 || w == 0 || in_shape[1] == 0 || in_shape[2] == 0 {
            return Err(OpError::Shape("resize to or from an empty image".into()));
        }
        let (align_corners, half_pixel_centers) = if self.bilinear {
            options!(ctx, ResizeBilinearOptions).map(|o| (o.align_corners, o.half_pixel_centers)).unwrap_or_default()
        } else {
            options!(ctx, ResizeNearestNeighborOptions)
                .map(|o| (o.align_corners, o.half_pixel_centers))
                .unwrap_or_default()
        };
        if self.bilinear && align_corners && half_pixel_centers {
            return Err(OpError::Options("align_corners and half_pixel_centers cannot both be set".into()));
        }
        let out_shape = [in_shape[0], h, w, in_shape[3]];
        ctx.set_output_shape(0, out_shape.to_vec())?;
        if self.bilinear {
            // The integer kernel's 10-bit fixed-point coordinates overflow
            // 32 bits past about a million pixels per side.
            let too_big = [in_shape[1], in_shape[2], h, w].iter().any(|&d| d >= 1 << 20);
            if too_big && dtype != DataType::Float32 {
                return Err(OpError::Unsupported("integer RESIZE_BILINEAR of a side of 2^20 pixels or more".into()));
            }
            match dtype {
                DataType::Float32 => {}
                DataType::Int8 => {
                    // The reference's arithmetic in i32, vectorised (same bits).
                    let level = if ctx.reference_kernels { isa::IsaLevel::Scalar } else { isa::detect() };
                    return Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                        let x = ctx.input(0)?.as_slice::<i8>()?;
                        let y = ctx.output(0)?.as_slice_mut::<i8>()?;
                        resize_bilinear_i8(level, x, in_shape, y, out_shape, align_corners, half_pixel_centers);
                        Ok(())
                    }));
                }
                DataType::Int16 => {
                    return Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                        let x = ctx.input(0)?.as_slice::<i16>()?;
                        let y = ctx.output(0)?.as_slice_mut::<i16>()?;
                        resize_bilinear_integer(x, in_shape, y, out_shape, align_corners, half_pixel_centers);
                        Ok(())
                    }))
                }
                DataType::UInt8 => {
                    return Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                        let x = ctx.input(0)?.as_slice::<u8>()?;
                        let y = ctx.output(0)?.as_slice_mut::<u8>()?;
                        resize_bilinear_u8(x, in_shape, y, out_shape, align_corners, half_pixel_centers);
                        Ok(())
                    }))
                }
                _ => return Err(OpError::Unsupported(format!("RESIZE_BILINEAR on {dtype}"))),
            }
            if ctx.reference_kernels {
                return Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                    let x = ctx.input(0)?.as_slice::<f32>()?;
                    let y = ctx.output(0)?.as_slice_mut::<f32>()?;
                    resize_bilinear_f32(x, in_shape, y, out_shape, align_corners, half_pixel_centers);
                    Ok(())
                }));
            }
            // Rows of the output on the vectorised kernel (same bits),
            // split between threads.
            let plan =
                ResizeBilinearF32Plan::new(isa::detect(), in_shape, out_shape, align_corners, half_pixel_centers);
            return Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
                let x = ctx.input(0)?.as_slice::<f32>()?;
                let workers = ctx.workers;
                let y = ctx.output(0)?.as_slice_mut::<f32>()?;
                super::for_each_large_chunk(workers, y, plan.row_len(), |first_row, rows| {
                    plan.run_rows(x, rows, first_row)
                });
                Ok(())
            }));
        }
        let esize = element_size(dtype)?;
        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
            let x = ctx.input(0)?;
            with_element_size!(esize, T, {
                let y = elems_mut::<T>(ctx.output(0)?.bytes)?;
                resize_nearest_neighbor(
                    elems::<T>(x.bytes)?,
                    in_shape,
                    y,
                    out_shape,
                    align_corners,
                    half_pixel_centers,
                );
                Ok(())
            })
        }))
    }
}
