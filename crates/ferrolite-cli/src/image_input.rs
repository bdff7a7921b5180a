//! `run --image`: a picture into an image model, and the top-k classes out.

use std::path::Path;

use ferrolite::{DataType, Interpreter};
use image::imageops::FilterType;

use crate::Scale;

/// Resize the picture to the input's [1, H, W, C] shape and write it in the
/// input's type: floats scaled as asked, integers through scale/zero point.
pub fn fill_input(it: &mut Interpreter<'_>, path: &Path, scale: Scale) -> Result<(), String> {
    if it.input_count() != 1 {
        return Err(format!("--image needs a model with one input; this one has {}", it.input_count()));
    }
    let img = image::open(path).map_err(|e| format!("cannot read picture {}: {e}", path.display()))?;
    let mut t = it.input_mut(0).map_err(|e| e.to_string())?;
    let shape = t.shape().to_vec();
    let [_, h, w, c] = shape[..] else {
        return Err(format!("--image needs a [1, height, width, channels] input; this one is {shape:?}"));
    };
    let resized = img.resize_exact(w as u32, h as u32, FilterType::Triangle);
    let pixels: Vec<u8> = match c {
        3 => resized.to_rgb8().into_raw(),
        1 => resized.to_luma8().into_raw(),
        4 => resized.to_rgba8().into_raw(),
        _ => return Err(format!("--image needs 1, 3 or 4 channels; the input has {c}")),
    };
    let real = |p: u8| -> f32 {
        match scale {
            Scale::MinusOneToOne => p as f32 / 127.5 - 1.0,
            Scale::ZeroToOne => p as f32 / 255.0,
            Scale::Raw => p as f32,
        }
    };
    let (qs, qz) = t.quant().map(|q| (q.scale(), q.zero_point())).unwrap_or((1.0, 0));
    let quantize = |p: u8, lo: f32, hi: f32| -> f32 { ((real(p) / qs).round() + qz as f32).clamp(lo, hi) };
    match t.dtype() {
        DataType::Float32 => {
            for (d, &p) in t.as_slice_mut::<f32>().map_err(|e| e.to_string())?.iter_mut().zip(&pixels) {
                *d = real(p);
            }
        }
        // A uint8 input with no quantisation takes raw pixels.
        DataType::UInt8 if t.quant().is_none() => t.bytes.copy_from_slice(&pixels),
        DataType::UInt8 => {
            for (d, &p) in t.bytes.iter_mut().zip(&pixels) {
                *d = quantize(p, 0.0, 255.0) as u8;
            }
        }
        DataType::Int8 => {
            for (d, &p) in t.as_slice_mut::<i8>().map_err(|e| e.to_string())?.iter_mut().zip(&pixels) {
                *d = quantize(p, -128.0, 127.0) as i8;
            }
        }
        other => return Err(format!("--image cannot fill a {other} input")),
    }
    Ok(())
}

/// Print the k largest entries of the first output, dequantised.
pub fn print_top_k(it: &Interpreter<'_>, labels: Option<&Path>, k: usize) -> Result<(), String> {
    let out = it.output(0).map_err(|e| e.to_string())?;
    let (qs, qz) = out.quant().map(|q| (q.scale(), q.zero_point() as f32)).unwrap_or((1.0, 0.0));
    let values: Vec<f32> = match out.dtype() {
        DataType::Float32 => out.as_slice::<f32>().map_err(|e| e.to_string())?.to_vec(),
        DataType::UInt8 => out.bytes.iter().map(|&v| (v as f32 - qz) * qs).collect(),
        DataType::Int8 => {
            out.as_slice::<i8>().map_err(|e| e.to_string())?.iter().map(|&v| (v as f32 - qz) * qs).collect()
        }
        other => return Err(format!("cannot rank a {other} output")),
    };
    let names: Vec<String> = match labels {
        Some(p) => std::fs::read_to_string(p)
            .map_err(|e| format!("cannot read labels {}: {e}", p.display()))?
            .lines()
            .map(str::to_string)
            .collect(),
        None => Vec::new(),
    };
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    for &i in order.iter().take(k) {
        let name = names.get(i).map(String::as_str).unwrap_or("");
        println!("{i:6} {:10.6} {name}", values[i]);
    }
    Ok(())
}
