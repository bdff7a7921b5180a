//! TFLite_Detection_PostProcess: the custom op that ends SSD and
//! EfficientDet-Lite detectors (box decoding against anchors, then
//! non-max suppression), registered like TFLite's default resolver does.
//!
//! Inputs: box encodings `[1, N, 4 or more]` (centre-size `y, x, h, w`),
//! class predictions `[1, N, classes (+1 background column)]`, anchors
//! `[N, 4]`; each float32 or quantised uint8 (dequantised with its own
//! scale and zero point). int8 is taken the same way, although TFLite's
//! kernel refuses it. Outputs, all float32: boxes
//! `[1, max_det * max_classes_per_detection, 4]` (`ymin, xmin, ymax,
//! xmax`), classes and scores `[1, max_det * max_classes_per_detection]`,
//! num_detections `[1]`. Slots without a detection are zero (TFLite leaves
//! some of them as they were).
//!
//! The options are a FlexBuffer map, with TFLite's keys: `max_detections`,
//! `max_classes_per_detection`, `nms_score_threshold`, `nms_iou_threshold`,
//! `num_classes`, `y_scale`, `x_scale`, `h_scale`, `w_scale`, and optional
//! `detections_per_class` (default 100) and `use_regular_nms` (default
//! false).

use ferrolite_kernels::reference::detection_postprocess::{self as k, BoxScales, Corners, Detections, NmsParams};
use flexbuffers::{FlexBufferType, MapReader, Reader, ReaderError};

use crate::dtype::DataType;
use crate::error::OpError;
use crate::op::{expect_dtype, EvalContext, InputInfo, Operator, PrepareContext, PreparedOp};
use crate::registry::OpResolver;
use crate::tensor::TensorRef;

/// The custom code models use for this op.
pub const NAME: &str = "TFLite_Detection_PostProcess";

/// TFLite's `detections_per_class` when the options have none.
const DEFAULT_DETECTIONS_PER_CLASS: i32 = 100;

pub fn register(r: &mut OpResolver) {
    r.add_custom(NAME, DetectionPostProcess);
}

struct DetectionPostProcess;

/// The parsed options.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Options {
    nms: NmsParams,
    scales: BoxScales,
}

fn options_error(message: String) -> OpError {
    OpError::Options(format!("{NAME}: {message}"))
}

/// Parse and check the node's FlexBuffer options.
fn parse_options(bytes: &[u8]) -> Result<Options, OpError> {
    check_root_map(bytes).map_err(|e| options_error(format!("custom options are not a FlexBuffer map: {e}")))?;
    let map = Reader::get_root(bytes)
        .and_then(|r| r.get_map())
        .map_err(|e| options_error(format!("custom options are not a FlexBuffer map: {e}")))?;
    let int = |key: &str| required(key, int_option(&map, key)?);
    let float = |key: &str| required(key, float_option(&map, key)?);
    let max_detections = int("max_detections")?;
    let max_classes_per_detection = int("max_classes_per_detection")?;
    let detections_per_class = int_option(&map, "detections_per_class")?.unwrap_or(DEFAULT_DETECTIONS_PER_CLASS);
    let regular = bool_option(&map, "use_regular_nms")?.unwrap_or(false);
    let score_threshold = float("nms_score_threshold")?;
    let iou_threshold = float("nms_iou_threshold")?;
    let num_classes = int("num_classes")?;
    let scales = BoxScales { y: float("y_scale")?, x: float("x_scale")?, h: float("h_scale")?, w: float("w_scale")? };

    let at_least = |key: &str, v: i32, min: i32| {
        usize::try_from(v)
            .ok()
            .filter(|_| v >= min)
            .ok_or_else(|| options_error(format!("{key} is {v}, must be at least {min}")))
    };
    let nms = NmsParams {
        max_detections: at_least("max_detections", max_detections, 0)?,
        max_classes_per_detection: at_least("max_classes_per_detection", max_classes_per_detection, 1)?,
        // Only regular suppression reads it (and needs it positive).
        detections_per_class: usize::try_from(detections_per_class).unwrap_or(0),
        score_threshold,
        iou_threshold,
        num_classes: at_least("num_classes", num_classes, 1)?,
        regular,
    };
    if !(iou_threshold > 0.0 && iou_threshold <= 1.0) {
        return Err(options_error(format!("nms_iou_threshold is {iou_threshold}, must be in (0, 1]")));
    }
    if regular && nms.detections_per_class.min(nms.max_detections) == 0 {
        return Err(options_error(format!(
            "regular NMS needs detections_per_class ({detections_per_class}) and max_detections ({max_detections}) of at least 1"
        )));
    }
    Ok(Options { nms, scales })
}

fn required<T>(key: &str, value: Option<T>) -> Result<T, OpError> {
    value.ok_or_else(|| options_error(format!("option `{key}` is missing")))
}

/// The value of `key`; `None` when the map lacks it or holds null there.
fn option_value<'a>(map: &MapReader<&'a [u8]>, key: &str) -> Result<Option<Reader<&'a [u8]>>, OpError> {
    match map.index(key) {
        Ok(r) if r.flexbuffer_type() == FlexBufferType::Null => Ok(None),
        Ok(r) => Ok(Some(r)),
        Err(ReaderError::KeyNotFound) => Ok(None),
        Err(e) => Err(options_error(format!("option `{key}`: {e}"))),
    }
}

fn wrong_type(key: &str, r: &Reader<&[u8]>, expected: &str) -> OpError {
    options_error(format!("option `{key}` is a FlexBuffer {:?}, expected {expected}", r.flexbuffer_type()))
}

/// An integer option (signed or unsigned in the buffer) in int32's range.
fn int_option(map: &MapReader<&[u8]>, key: &str) -> Result<Option<i32>, OpError> {
    let Some(r) = option_value(map, key)? else { return Ok(None) };
    let bad = |e: ReaderError| options_error(format!("option `{key}`: {e}"));
    let v: i128 = match r.flexbuffer_type() {
        FlexBufferType::Int => r.get_i64().map_err(bad)?.into(),
        FlexBufferType::UInt => r.get_u64().map_err(bad)?.into(),
        _ => return Err(wrong_type(key, &r, "an integer")),
    };
    i32::try_from(v).map(Some).map_err(|_| options_error(format!("option `{key}` is {v}, outside int32's range")))
}

/// A float option; integers are taken too (TFLite's `AsFloat` does).
fn float_option(map: &MapReader<&[u8]>, key: &str) -> Result<Option<f32>, OpError> {
    let Some(r) = option_value(map, key)? else { return Ok(None) };
    let bad = |e: ReaderError| options_error(format!("option `{key}`: {e}"));
    let v = match r.flexbuffer_type() {
        FlexBufferType::Float => r.get_f64().map_err(bad)?,
        FlexBufferType::Int => r.get_i64().map_err(bad)? as f64,
        FlexBufferType::UInt => r.get_u64().map_err(bad)? as f64,
        _ => return Err(wrong_type(key, &r, "a number")),
    };
    Ok(Some(v as f32))
}

/// A boolean option; integers are taken too (non-zero is true).
fn bool_option(map: &MapReader<&[u8]>, key: &str) -> Result<Option<bool>, OpError> {
    let Some(r) = option_value(map, key)? else { return Ok(None) };
    let bad = |e: ReaderError| options_error(format!("option `{key}`: {e}"));
    Ok(Some(match r.flexbuffer_type() {
        FlexBufferType::Bool => r.get_bool().map_err(bad)?,
        FlexBufferType::Int => r.get_i64().map_err(bad)? != 0,
        FlexBufferType::UInt => r.get_u64().map_err(bad)? != 0,
        _ => return Err(wrong_type(key, &r, "a boolean")),
    }))
}

/// Check that the map at the root of a FlexBuffer, its keys, its values'
/// slots and type bytes, and the scalars it holds all lie inside the
/// buffer. The `flexbuffers` crate indexes a damaged buffer unchecked in
/// places (and would panic there); after this check every read it makes
/// while looking keys up and reading scalars is in bounds.
fn check_root_map(buf: &[u8]) -> Result<(), String> {
    let len = buf.len();
    let read = |at: usize, width: usize| -> Result<usize, String> {
        let bytes = at.checked_add(width).and_then(|end| buf.get(at..end)).ok_or("offset past the end")?;
        let mut v = [0u8; 8];
        v[..width].copy_from_slice(bytes);
        usize::try_from(u64::from_le_bytes(v)).map_err(|_| "offset too large".to_string())
    };
    let width = |code: usize| match code {
        1 | 2 | 4 | 8 => Ok(code),
        w => Err(format!("byte width {w}")),
    };
    let back = |at: usize, width: usize| -> Result<usize, String> {
        at.checked_sub(read(at, width)?).ok_or_else(|| "offset before the start".to_string())
    };
    if len < 3 {
        return Err(format!("{len} bytes"));
    }
    let root_width = width(buf[len - 1] as usize)?;
    let packed = buf[len - 2];
    if packed >> 2 != FlexBufferType::Map as u8 {
        return Err(format!("the root has type code {}, not a map", packed >> 2));
    }
    let w = 1usize << (packed & 3);
    let root = (len - 2).checked_sub(root_width).ok_or("root offset before the start")?;
    let map = back(root, root_width)?;
    let header = map.checked_sub(3 * w).ok_or("map header before the start")?;
    let keys = back(header, w)?;
    let keys_width = width(read(header + w, w)?)?;
    let count = read(map - w, w)?;
    let types = count.checked_mul(w).and_then(|b| b.checked_add(map)).ok_or("map too long")?;
    if types.checked_add(count).is_none_or(|end| end > len) {
        return Err(format!("map of {count} values runs past the end"));
    }
    if count.checked_mul(keys_width).and_then(|b| b.checked_add(keys)).is_none_or(|end| end > len) {
        return Err(format!("{count} keys run past the end"));
    }
    for i in 0..count {
        let key = back(keys + i * keys_width, keys_width)?;
        if !buf[key..].contains(&0) {
            return Err(format!("key {i} is not terminated"));
        }
        let packed = buf[types + i];
        let value_width = 1usize << (packed & 3);
        let slot = map + i * w;
        // Null, Int, UInt, Float and Bool are stored in the slot; the other
        // types at an offset back from it.
        let data = if matches!(packed >> 2, 0..=3 | 26) { slot } else { back(slot, w)? };
        if data + value_width > len {
            return Err(format!("value {i} runs past the end"));
        }
    }
    Ok(())
}

/// How an input's elements become floats.
#[derive(Clone, Copy, Debug)]
enum Values {
    Float,
    UInt8 { scale: f32, zero_point: f32 },
    Int8 { scale: f32, zero_point: f32 },
}

impl Values {
    fn of(t: &InputInfo<'_>, role: &str) -> Result<Values, OpError> {
        let dtype = t.dtype();
        expect_dtype(role, dtype, &[DataType::Float32, DataType::UInt8, DataType::Int8])?;
        if dtype == DataType::Float32 {
            return Ok(Values::Float);
        }
        let q = t
            .quant()
            .filter(|q| q.scales.len() == 1 && q.zero_points.len() == 1)
            .ok_or_else(|| OpError::Value(format!("{role} is {dtype} without a per-tensor scale and zero point")))?;
        let (scale, zero_point) = (q.scale(), q.zero_point() as f32);
        Ok(if dtype == DataType::UInt8 {
            Values::UInt8 { scale, zero_point }
        } else {
            Values::Int8 { scale, zero_point }
        })
    }

    /// `t`'s elements as floats: the tensor itself, or dequantised into
    /// `scratch`.
    fn read<'s>(self, t: TensorRef<'s>, scratch: &'s mut Vec<f32>) -> Result<&'s [f32], OpError> {
        scratch.clear();
        match self {
            Values::Float => return Ok(t.as_slice::<f32>()?),
            Values::UInt8 { scale, zero_point } => {
                scratch.extend(t.as_slice::<u8>()?.iter().map(|&q| (q as f32 - zero_point) * scale))
            }
            Values::Int8 { scale, zero_point } => {
                scratch.extend(t.as_slice::<i8>()?.iter().map(|&q| (q as f32 - zero_point) * scale))
            }
        }
        Ok(scratch)
    }
}

impl Operator for DetectionPostProcess {
    fn prepare(&self, ctx: &mut PrepareContext<'_>) -> Result<Box<dyn PreparedOp>, OpError> {
        ctx.check_inputs(3, 3)?;
        ctx.check_outputs(4, 4)?;
        let Options { nms, scales } = parse_options(ctx.custom_options)?;
        let (boxes, scores, anchors) = (ctx.input(0)?, ctx.input(1)?, ctx.input(2)?);
        let box_values = Values::of(&boxes, "box encodings (input 0)")?;
        let score_values = Values::of(&scores, "class predictions (input 1)")?;
        let anchor_values = Values::of(&anchors, "anchors (input 2)")?;

        let &[1, n, stride] = boxes.shape() else {
            return Err(OpError::Shape(format!(
                "box encodings (input 0) must be [1, boxes, 4 or more], got {:?}",
                boxes.shape()
            )));
        };
        if stride < 4 {
            return Err(OpError::Shape(format!("box encodings (input 0) have {stride} coordinates per box, need 4")));
        }
        let &[1, score_rows, columns] = scores.shape() else {
            return Err(OpError::Shape(format!(
                "class predictions (input 1) must be [1, boxes, classes], got {:?}",
                scores.shape()
            )));
        };
        if score_rows != n {
            return Err(OpError::Shape(format!("class predictions (input 1) have {score_rows} rows for {n} boxes")));
        }
        if columns != nms.num_classes && columns != nms.num_classes + 1 {
            return Err(OpError::Shape(format!(
                "class predictions (input 1) have {columns} columns for num_classes {} (expected {0} or {}, with a background column)",
                nms.num_classes,
                nms.num_classes + 1
            )));
        }
        if anchors.shape() != [n, 4] {
            return Err(OpError::Shape(format!("anchors (input 2) must be [{n}, 4], got {:?}", anchors.shape())));
        }
        for (i, role) in
            ["detection boxes", "detection classes", "detection scores", "num_detections"].iter().enumerate()
        {
            expect_dtype(&format!("{role} (output {i})"), ctx.output_dtype(i)?, &[DataType::Float32])?;
        }
        let slots = nms.max_detections.checked_mul(nms.max_classes_per_detection).ok_or_else(|| {
            options_error(format!(
                "max_detections {} x max_classes_per_detection {} overflows",
                nms.max_detections, nms.max_classes_per_detection
            ))
        })?;
        ctx.set_output_shape(0, vec![1, slots, 4])?;
        ctx.set_output_shape(1, vec![1, slots])?;
        ctx.set_output_shape(2, vec![1, slots])?;
        ctx.set_output_shape(3, vec![1])?;

        // Constant anchors (the usual case) are dequantised once.
        let constant_anchors = match anchors.constant {
            Some(bytes) => {
                let mut scratch = Vec::new();
                Some(anchor_values.read(TensorRef { info: anchors.info, bytes }, &mut scratch)?.to_vec())
            }
            None => None,
        };
        let (mut box_buf, mut score_buf, mut anchor_buf) = (Vec::new(), Vec::new(), Vec::new());
        let mut decoded: Vec<Corners> = vec![[0.0; 4]; n];
        Ok(Box::new(move |ctx: &mut EvalContext<'_>| {
            let encodings = box_values.read(ctx.input(0)?, &mut box_buf)?;
            let anchors = match &constant_anchors {
                Some(a) => a.as_slice(),
                None => anchor_values.read(ctx.input(2)?, &mut anchor_buf)?,
            };
            if encodings.len() != n * stride || anchors.len() != n * 4 {
                return Err(OpError::Shape(format!("{NAME}: inputs changed size since prepare")));
            }
            k::decode_center_size(encodings, stride, anchors, scales, &mut decoded);
            let scores = score_values.read(ctx.input(1)?, &mut score_buf)?;
            let [boxes, classes, scores_out, count] = ctx.outputs_mut() else {
                return Err(OpError::Value(format!("{NAME} needs four outputs")));
            };
            let mut out = Detections {
                boxes: boxes.as_slice_mut::<f32>()?,
                classes: classes.as_slice_mut::<f32>()?,
                scores: scores_out.as_slice_mut::<f32>()?,
            };
            let found = k::detection_postprocess(&decoded, scores, columns, &nms, &mut out).map_err(OpError::Value)?;
            count.as_slice_mut::<f32>()?.fill(found as f32);
            Ok(())
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// TFLite's option map, as the converter writes it.
    fn options(skip: &str, edit: impl Fn(&mut flexbuffers::MapBuilder<'_>)) -> Vec<u8> {
        let mut b = flexbuffers::Builder::default();
        let mut m = b.start_map();
        for (key, v) in [("max_detections", 10), ("max_classes_per_detection", 1), ("num_classes", 90)] {
            if key != skip {
                m.push(key, v);
            }
        }
        for (key, v) in [
            ("nms_score_threshold", 0.3f32),
            ("nms_iou_threshold", 0.6),
            ("y_scale", 10.0),
            ("x_scale", 10.0),
            ("h_scale", 5.0),
            ("w_scale", 5.0),
        ] {
            if key != skip {
                m.push(key, v);
            }
        }
        edit(&mut m);
        m.end_map();
        b.view().to_vec()
    }

    #[test]
    fn parses_tflite_options_with_defaults() {
        let o = parse_options(&options("", |_| {})).unwrap();
        assert_eq!(o.nms.max_detections, 10);
        assert_eq!(o.nms.num_classes, 90);
        assert_eq!(o.nms.detections_per_class, 100);
        assert!(!o.nms.regular);
        assert_eq!((o.nms.score_threshold, o.nms.iou_threshold), (0.3, 0.6));
        assert_eq!(o.scales, BoxScales { y: 10.0, x: 10.0, h: 5.0, w: 5.0 });
        let o = parse_options(&options("", |m| {
            m.push("use_regular_nms", true);
            m.push("detections_per_class", 7u8);
        }))
        .unwrap();
        assert!(o.nms.regular);
        assert_eq!(o.nms.detections_per_class, 7);
    }

    #[test]
    fn missing_wrong_type_and_bad_values_are_errors() {
        let err = |bytes: Vec<u8>| parse_options(&bytes).unwrap_err().to_string();
        assert!(err(options("num_classes", |_| {})).contains("`num_classes` is missing"));
        assert!(err(options("y_scale", |_| {})).contains("`y_scale` is missing"));
        let e = err(options("max_detections", |m| m.push("max_detections", "ten")));
        assert!(e.contains("`max_detections`") && e.contains("expected an integer"), "{e}");
        let e = err(options("max_detections", |m| m.push("max_detections", 1.5f32)));
        assert!(e.contains("expected an integer"), "{e}");
        assert!(err(options("", |m| m.push("use_regular_nms", "yes"))).contains("expected a boolean"));
        assert!(err(options("max_detections", |m| m.push("max_detections", -1))).contains("at least 0"));
        assert!(err(options("max_detections", |m| m.push("max_detections", 1i64 << 40))).contains("int32"));
        assert!(err(options("nms_iou_threshold", |m| m.push("nms_iou_threshold", 0.0f32))).contains("(0, 1]"));
        let e = err(options("", |m| {
            m.push("use_regular_nms", true);
            m.push("detections_per_class", 0);
        }));
        assert!(e.contains("regular NMS"), "{e}");
        // Not a map at all, and empty.
        let mut b = flexbuffers::Builder::default();
        b.build_singleton(5);
        assert!(err(b.view().to_vec()).contains("not a map"));
        assert!(err(Vec::new()).contains("not a FlexBuffer map"));
    }

    #[test]
    fn damaged_options_are_errors_not_panics() {
        let good = options("", |m| m.push("use_regular_nms", false));
        for i in 0..good.len() {
            for v in [0u8, 1, 0x7f, 0x80, 0xff, good[i] ^ 0x10] {
                let mut bad = good.clone();
                bad[i] = v;
                let _ = parse_options(&bad);
            }
            let _ = parse_options(&good[i..]);
            let _ = parse_options(&good[..i]);
        }
    }
}
