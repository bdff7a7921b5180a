//! The face-detection example's post-processing, checked on LiteRT's outputs
//! for the astronaut picture, and (end to end) on ferrolite's own outputs.
//! The example's modules are compiled in here, so their unit tests run too.

#[allow(dead_code)]
#[path = "../examples/face_detect/blazeface.rs"]
mod blazeface;
#[allow(dead_code)]
#[path = "../examples/face_detect/runner.rs"]
mod runner;

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A file of the repository (`dir/name`), or else the same file from the
/// read-only `../shared` beside the repository (where it came from).
fn find(dir: &str, shared_dir: &str, name: &str) -> PathBuf {
    let here = root().join(dir).join(name);
    if here.exists() {
        return here;
    }
    let shared = root().join("../shared").join(shared_dir).join(name);
    assert!(shared.exists(), "neither {} nor {} exists", here.display(), shared.display());
    shared
}

fn read_npy(name: &str) -> (Vec<u64>, Vec<f32>) {
    let path = find("testdata", "images", name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape = npy.shape().to_vec();
    (shape, npy.into_vec::<f32>().unwrap())
}

fn reference_outputs() -> (Vec<f32>, Vec<f32>) {
    let (bshape, boxes) = read_npy("astronaut_128.face_detection_short_range.ref0.npy");
    let (sshape, scores) = read_npy("astronaut_128.face_detection_short_range.ref1.npy");
    assert_eq!(bshape, [1, 896, 16]);
    assert_eq!(sshape, [1, 896, 1]);
    (boxes, scores)
}

/// The astronaut picture (512x512) has one face, upper middle.
fn assert_astronaut_face(faces: &[blazeface::Detection]) {
    assert_eq!(faces.len(), 1, "{faces:#?}");
    let f = &faces[0];
    let (cx, cy) = ((f.xmin + f.xmax) / 2.0, (f.ymin + f.ymax) / 2.0);
    assert!((0.3..0.7).contains(&cx), "face centre x {cx}");
    assert!((0.1..0.5).contains(&cy), "face centre y {cy}");
    let (bw, bh) = (f.xmax - f.xmin, f.ymax - f.ymin);
    assert!((0.1..0.5).contains(&bw) && (0.1..0.5).contains(&bh), "{f:?}");
    assert!(f.score > 0.7, "{f:?}");
    // Eyes, nose and mouth lie inside the box; eyes above the mouth.
    for &(x, y) in &f.keypoints[..4] {
        assert!(x > f.xmin && x < f.xmax && y > f.ymin && y < f.ymax, "{f:?}");
    }
    assert!(f.keypoints[0].1 < f.keypoints[3].1 && f.keypoints[1].1 < f.keypoints[3].1);
}

#[test]
fn reference_outputs_decode_to_one_face() {
    let (boxes, scores) = reference_outputs();
    let anchors = blazeface::ssd_anchors(&blazeface::AnchorOptions::face_short_range());
    let raw = blazeface::decode(&boxes, &scores, &anchors, &blazeface::DecodeOptions::face_short_range()).unwrap();
    // Eight anchors score above 0.5, all on the same face.
    assert_eq!(raw.len(), 8, "{raw:#?}");
    let faces = blazeface::detect_faces(&boxes, &scores).unwrap();
    assert_astronaut_face(&faces);
    // Plain NMS keeps the same single face, a little off the weighted box.
    let hard = blazeface::hard_nms(raw, 0.3);
    assert_eq!(hard.len(), 1);
    let f = &faces[0];
    for (a, b) in [(f.xmin, hard[0].xmin), (f.ymin, hard[0].ymin), (f.xmax, hard[0].xmax), (f.ymax, hard[0].ymax)] {
        assert!((a - b).abs() < 0.05, "weighted {f:?} vs plain {:?}", hard[0]);
    }
}

#[test]
fn preprocess_matches_reference_input() {
    let img = image::open(find("assets", "images", "astronaut.png")).unwrap().to_rgb8();
    let ours = runner::preprocess(&img);
    let (shape, reference) = read_npy("astronaut_128.npy");
    assert_eq!(shape, [1, 128, 128, 3]);
    assert_eq!(ours.len(), reference.len());
    let mean = ours.iter().zip(&reference).map(|(a, b)| (a - b).abs()).sum::<f32>() / ours.len() as f32;
    // Resampling filters differ a little; the picture is the same.
    assert!(mean < 0.05, "mean |diff| {mean}");
}

/// ferrolite on the exact reference input finds the same face as LiteRT's
/// outputs do, within a pixel or two of the 512x512 picture.
#[test]
fn ferrolite_finds_the_reference_face() {
    let (_, input) = read_npy("astronaut_128.npy");
    let model = find("models", "models", "face_detection_short_range.tflite");
    let raw = runner::run_model(&model, &input).expect("ferrolite runs the face model");
    let faces = blazeface::detect_faces(&raw.boxes, &raw.scores).unwrap();
    assert_astronaut_face(&faces);
    let (boxes, scores) = reference_outputs();
    let reference = blazeface::detect_faces(&boxes, &scores).unwrap();
    let (f, r) = (&faces[0], &reference[0]);
    let px = 512.0;
    for (a, b) in [(f.xmin, r.xmin), (f.ymin, r.ymin), (f.xmax, r.xmax), (f.ymax, r.ymax)] {
        assert!(((a - b) * px).abs() < 2.0, "ferrolite {f:?}\nLiteRT {r:?}");
    }
    for (a, b) in f.keypoints.iter().zip(&r.keypoints) {
        assert!(((a.0 - b.0) * px).abs() < 2.0 && ((a.1 - b.1) * px).abs() < 2.0);
    }
    assert!((f.score - r.score).abs() < 1e-3, "{} vs {}", f.score, r.score);
}
