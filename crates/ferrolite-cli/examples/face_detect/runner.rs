//! Running `face_detection_short_range.tflite` with ferrolite: picture in,
//! raw regressors and score logits out.

use std::path::Path;

use ferrolite::{Interpreter, InterpreterOptions, Model, OpResolver};
use image::imageops::FilterType;
use image::RgbImage;

/// The model's input side (square).
pub const INPUT_SIZE: u32 = 128;

/// The picture as the model wants it: 128x128 (bilinear), RGB scaled to
/// [-1, 1], NHWC float32. The picture is stretched, not letterboxed: boxes
/// map back by scaling x and y by the picture's own width and height.
pub fn preprocess(img: &RgbImage) -> Vec<f32> {
    let small = image::imageops::resize(img, INPUT_SIZE, INPUT_SIZE, FilterType::Triangle);
    small.into_raw().into_iter().map(|p| p as f32 / 127.5 - 1.0).collect()
}

/// The raw outputs of one run.
pub struct RawOutputs {
    /// [896, 16]: box (x, y, w, h) then 6 keypoints (x, y), flattened.
    pub boxes: Vec<f32>,
    /// [896]: score logits.
    pub scores: Vec<f32>,
}

/// Load the model, run it once on `input` ([1, 128, 128, 3] floats).
pub fn run_model(model_path: &Path, input: &[f32]) -> Result<RawOutputs, String> {
    let model = Model::from_file(model_path).map_err(|e| format!("cannot load {}: {e}", model_path.display()))?;
    let resolver = OpResolver::with_builtins();
    let mut it = Interpreter::new(&model, &resolver, InterpreterOptions::default()).map_err(|e| e.to_string())?;
    it.allocate_tensors().map_err(|e| e.to_string())?;
    it.set_input(0, input).map_err(|e| e.to_string())?;
    it.invoke().map_err(|e| e.to_string())?;
    // Find the two outputs by shape: [1, N, 16] boxes and [1, N, 1] scores.
    let mut boxes = None;
    let mut scores = None;
    for k in 0..it.output_count() {
        let t = it.output(k).map_err(|e| e.to_string())?;
        let data = t.as_slice::<f32>().map_err(|e| e.to_string())?.to_vec();
        match t.shape().last() {
            Some(16) => boxes = Some(data),
            Some(1) => scores = Some(data),
            _ => {}
        }
    }
    match (boxes, scores) {
        (Some(boxes), Some(scores)) => Ok(RawOutputs { boxes, scores }),
        _ => Err("the model does not have [1, N, 16] and [1, N, 1] float outputs".into()),
    }
}
