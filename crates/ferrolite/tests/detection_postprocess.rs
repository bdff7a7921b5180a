//! TFLite_Detection_PostProcess (SSD box decoding + non-max suppression),
//! registered by `OpResolver::with_builtins()`: one-op models from
//! `tools/make_detection_fixture.py` against LiteRT's outputs, hand-built
//! models for the cases LiteRT cannot check (int8 inputs, no boxes), and
//! malformed options.

mod support;

use fb::TensorType as TT;
use ferrolite::schema as fb;
use ferrolite::{Interpreter, InterpreterOptions, Model, OpResolver};

use support::{max_abs_diff, reference, run_fixture};

const VARIANTS: [&str; 5] = ["f32_fast", "f32_regular", "uint8", "f32_multiclass", "f32_sparse"];

/// Boxes and scores within this of LiteRT's (the decoding uses exp).
const TOLERANCE: f64 = 1e-5;

#[test]
fn fixtures_match_litert() {
    for variant in VARIANTS {
        let name = format!("detection_postprocess.{variant}");
        let Some(outs) = run_fixture(&name, 1) else {
            eprintln!("skipping {name}: fixture not found");
            continue;
        };
        assert_eq!(outs.len(), 4, "{name}: four outputs");
        for (i, what) in ["boxes", "classes", "scores", "num_detections"].iter().enumerate() {
            let r = reference(&name, "ref", i);
            assert_eq!(outs[i].shape, r.shape, "{name} {what} shape");
            let (o, r) = (outs[i].as_f64(), r.as_f64());
            let diff = max_abs_diff(&o, &r);
            eprintln!("{name} {what}: max|ours-LiteRT| = {diff:.3e}");
            if matches!(*what, "classes" | "num_detections") {
                assert_eq!(o, r, "{name} {what}");
            } else {
                assert!(diff <= TOLERANCE, "{name} {what}: max|ours-LiteRT| = {diff}");
            }
        }
    }
}

/// A model of one TFLite_Detection_PostProcess node: box encodings
/// `[1, n, 4]` and class predictions `[1, n, columns]` as inputs 0 and 1,
/// constant anchors (as many rows as `anchors` holds), four float outputs.
struct Spec<'a> {
    options: Vec<u8>,
    n: i32,
    columns: i32,
    /// Type of the box encodings, scores and anchors, and their (scale,
    /// zero point) when quantised.
    ty: TT,
    quant: Option<(f32, i64)>,
    anchors: &'a [u8],
}

fn model(s: &Spec<'_>) -> Vec<u8> {
    build(s, false)
}

/// [`model`], or with the anchors as graph input 2 (`anchors` then only
/// gives their size).
fn build(s: &Spec<'_>, anchors_input: bool) -> Vec<u8> {
    let anchor_rows = (s.anchors.len() / if s.ty == TT::Float32 { 16 } else { 4 }) as i32;
    let quantization = s.quant.map(|(scale, zp)| {
        Box::new(fb::QuantizationParameters {
            scale: Some(vec![scale]),
            zero_point: Some(vec![zp]),
            ..Default::default()
        })
    });
    let tensor = |name: &str, shape: Vec<i32>, ty: TT, buffer: u32, q: bool| fb::Tensor {
        shape: Some(shape),
        type_: ty,
        buffer,
        name: Some(name.into()),
        quantization: if q { quantization.clone() } else { None },
        ..Default::default()
    };
    let model = fb::Model {
        version: 3,
        operator_codes: Some(vec![fb::OperatorCode {
            deprecated_builtin_code: 32,
            builtin_code: fb::BuiltinOperator::Custom,
            custom_code: Some("TFLite_Detection_PostProcess".into()),
            version: 1,
        }]),
        subgraphs: Some(vec![fb::SubGraph {
            tensors: Some(vec![
                tensor("box_encodings", vec![1, s.n, 4], s.ty, 0, true),
                tensor("class_predictions", vec![1, s.n, s.columns], s.ty, 0, true),
                tensor("anchors", vec![anchor_rows, 4], s.ty, u32::from(!anchors_input), true),
                tensor("detection_boxes", vec![1, 1, 4], TT::Float32, 0, false),
                tensor("detection_classes", vec![1, 1], TT::Float32, 0, false),
                tensor("detection_scores", vec![1, 1], TT::Float32, 0, false),
                tensor("num_detections", vec![1], TT::Float32, 0, false),
            ]),
            inputs: Some(if anchors_input { vec![0, 1, 2] } else { vec![0, 1] }),
            outputs: Some(vec![3, 4, 5, 6]),
            operators: Some(vec![fb::Operator {
                opcode_index: 0,
                inputs: Some(vec![0, 1, 2]),
                outputs: Some(vec![3, 4, 5, 6]),
                custom_options: Some(s.options.clone()),
                ..Default::default()
            }]),
            ..Default::default()
        }]),
        buffers: Some(vec![fb::Buffer::default(), fb::Buffer { data: Some(s.anchors.to_vec()), ..Default::default() }]),
        ..Default::default()
    };
    fb::finish_model(&mut planus::Builder::new(), &model)
}

/// Options as the converter writes them, `edit` adding to or replacing
/// them, `skip` leaving one out.
fn options(skip: &str, edit: impl Fn(&mut flexbuffers::MapBuilder<'_>)) -> Vec<u8> {
    let mut b = flexbuffers::Builder::default();
    let mut m = b.start_map();
    for (key, v) in [("max_detections", 3), ("max_classes_per_detection", 1), ("num_classes", 2)] {
        if key != skip {
            m.push(key, v);
        }
    }
    for (key, v) in [
        ("nms_score_threshold", 0.5f32),
        ("nms_iou_threshold", 0.5),
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

/// Run a model on input bytes: (boxes, classes, scores, num_detections).
fn run(bytes: &[u8], inputs: &[&[u8]]) -> (Vec<f32>, Vec<f32>, Vec<f32>, f32) {
    let model = Model::from_bytes(bytes).unwrap();
    let resolver = OpResolver::with_builtins();
    let mut it = Interpreter::new(&model, &resolver, InterpreterOptions::default()).unwrap();
    it.allocate_tensors().unwrap();
    assert_eq!(it.input_count(), inputs.len());
    for (i, x) in inputs.iter().enumerate() {
        it.set_input_bytes(i, x).unwrap();
    }
    it.invoke().unwrap();
    let out = |i: usize| it.output(i).unwrap().as_slice::<f32>().unwrap().to_vec();
    (out(0), out(1), out(2), out(3)[0])
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Three anchors of 0.2 x 0.2 (centre-size): the first two overlap, the
/// third is apart; all encodings zero, so the boxes are the anchors.
const ANCHORS: [f32; 12] = [0.3, 0.3, 0.2, 0.2, 0.31, 0.3, 0.2, 0.2, 0.8, 0.8, 0.2, 0.2];
/// Background + 2 classes per box: box 1 wins over box 0 (class 1, 0.75),
/// box 2 scores 0.625 for class 0.
const SCORES: [f32; 9] = [0.0, 0.5, 0.25, 0.0, 0.25, 0.75, 0.0, 0.625, 0.0];

#[test]
fn float_model_keeps_the_best_of_overlapping_boxes() {
    let spec = Spec { options: options("", |_| {}), n: 3, columns: 3, ty: TT::Float32, quant: None, anchors: &[] };
    let anchors = f32_bytes(&ANCHORS);
    let spec = Spec { anchors: &anchors, ..spec };
    let (encodings, scores) = (f32_bytes(&[0.0; 12]), f32_bytes(&SCORES));
    // Constant anchors, and anchors computed at run time.
    for outputs in
        [run(&model(&spec), &[&encodings, &scores]), run(&build(&spec, true), &[&encodings, &scores, &anchors])]
    {
        let (boxes, classes, scores, n) = outputs;
        assert_eq!(n, 2.0);
        assert_eq!(classes, [1.0, 0.0, 0.0]);
        assert_eq!(scores, [0.75, 0.625, 0.0]);
        let want = [0.21, 0.2, 0.41, 0.4, 0.7, 0.7, 0.9, 0.9, 0.0, 0.0, 0.0, 0.0];
        assert!(boxes.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6), "{boxes:?}");
    }
}

#[test]
fn int8_and_uint8_inputs_are_dequantised() {
    // Everything on a 1/128 grid: the quantised values are exact.
    for (ty, zp) in [(TT::Int8, -10i64), (TT::Uint8, 100)] {
        let q = |v: &[f32]| -> Vec<u8> { v.iter().map(|&x| ((x * 128.0).round() as i64 + zp) as u8).collect() };
        let anchors = [0.3, 0.3, 0.2, 0.2, 0.3125, 0.3, 0.2, 0.2, 0.8, 0.8, 0.2, 0.2];
        let anchor_bytes = q(&anchors);
        let spec = Spec {
            options: options("", |_| {}),
            n: 3,
            columns: 3,
            ty,
            quant: Some((1.0 / 128.0, zp)),
            anchors: &anchor_bytes,
        };
        let (boxes, classes, scores, n) = run(&model(&spec), &[&q(&[0.0; 12]), &q(&SCORES)]);
        assert_eq!((n, classes, scores), (2.0, vec![1.0, 0.0, 0.0], vec![0.75, 0.625, 0.0]), "{ty:?}");
        let a = |v: f32| (v * 128.0).round() / 128.0;
        let want = [a(0.3125) - a(0.2) / 2.0, a(0.3) - a(0.2) / 2.0];
        assert!((boxes[0] - want[0]).abs() < 1e-6 && (boxes[1] - want[1]).abs() < 1e-6, "{ty:?}: {boxes:?}");
    }
}

#[test]
fn no_boxes_no_detections() {
    let spec = Spec { options: options("", |_| {}), n: 0, columns: 3, ty: TT::Float32, quant: None, anchors: &[] };
    // (An empty constant would be no constant: the anchors are an input.)
    let (boxes, classes, scores, n) = run(&build(&spec, true), &[&[], &[], &[]]);
    assert_eq!((n, classes, scores), (0.0, vec![0.0; 3], vec![0.0; 3]));
    assert_eq!(boxes, [0.0; 12]);
}

/// allocate_tensors' error for a model with these options and inputs.
fn allocate_error(spec: &Spec<'_>) -> String {
    let bytes = model(spec);
    let model = Model::from_bytes(&bytes).unwrap();
    let resolver = OpResolver::with_builtins();
    let mut it = Interpreter::new(&model, &resolver, InterpreterOptions::default()).unwrap();
    it.allocate_tensors().expect_err("the node must be refused").to_string()
}

#[test]
fn malformed_options_are_errors_not_panics() {
    let anchors = f32_bytes(&ANCHORS);
    let with = |options: Vec<u8>| Spec { options, n: 3, columns: 3, ty: TT::Float32, quant: None, anchors: &anchors };
    let e = allocate_error(&with(options("nms_iou_threshold", |_| {})));
    assert!(e.contains("`nms_iou_threshold` is missing"), "{e}");
    let e = allocate_error(&with(options("max_detections", |m| m.push("max_detections", "three"))));
    assert!(e.contains("`max_detections`") && e.contains("integer"), "{e}");
    let e = allocate_error(&with(options("x_scale", |m| m.push("x_scale", true))));
    assert!(e.contains("`x_scale`") && e.contains("number"), "{e}");
    let e = allocate_error(&with(options("num_classes", |m| m.push("num_classes", 5))));
    assert!(e.contains("columns"), "{e}");
    let e = allocate_error(&with(Vec::new()));
    assert!(e.contains("FlexBuffer map"), "{e}");
    let e = allocate_error(&with(vec![0xff; 7]));
    assert!(e.contains("FlexBuffer map"), "{e}");
    // Cut short: the root is gone.
    let good = options("", |_| {});
    let e = allocate_error(&with(good[..good.len() - 2].to_vec()));
    assert!(e.contains("FlexBuffer map"), "{e}");
}

#[test]
fn bad_shapes_and_anchors_are_errors() {
    let anchors = f32_bytes(&ANCHORS);
    let spec =
        |columns| Spec { options: options("", |_| {}), n: 3, columns, ty: TT::Float32, quant: None, anchors: &anchors };
    let e = allocate_error(&spec(4));
    assert!(e.contains("class predictions"), "{e}");
    let short = f32_bytes(&ANCHORS[..8]);
    let e = allocate_error(&Spec { anchors: &short, ..spec(3) });
    assert!(e.contains("anchors (input 2) must be [3, 4], got [2, 4]"), "{e}");
    // A negative anchor height decodes to ymin > ymax: refused at invoke.
    let mut negative = ANCHORS;
    negative[2] = -0.2;
    let negative = f32_bytes(&negative);
    let bytes = model(&Spec { anchors: &negative, ..spec(3) });
    let model = Model::from_bytes(&bytes).unwrap();
    let resolver = OpResolver::with_builtins();
    let mut it = Interpreter::new(&model, &resolver, InterpreterOptions::default()).unwrap();
    it.allocate_tensors().unwrap();
    it.set_input_bytes(0, &f32_bytes(&[0.0; 12])).unwrap();
    it.set_input_bytes(1, &f32_bytes(&SCORES)).unwrap();
    let e = it.invoke().unwrap_err().to_string();
    assert!(e.contains("box 0"), "{e}");
}
