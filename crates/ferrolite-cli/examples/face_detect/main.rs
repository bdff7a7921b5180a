//! Face detection with MediaPipe's BlazeFace (short range) on ferrolite.
//!
//! ```text
//! cargo run --release -p ferrolite-cli --example face_detect -- \
//!     models/face_detection_short_range.tflite assets/astronaut.png faces.png
//! ```
//!
//! Prints each face (score, box in pixels of the original picture, six
//! keypoints) and writes the picture with the boxes and keypoints drawn.
//! Post-processing is MediaPipe's: SSD anchors, box decoding with scale 128,
//! sigmoid scores >= 0.5, weighted non-maximum suppression at IoU 0.3.

mod blazeface;
mod runner;

use std::path::PathBuf;
use std::process::ExitCode;

use blazeface::Detection;
use image::{Rgb, RgbImage};

const KEYPOINT_NAMES: [&str; 6] = ["right eye", "left eye", "nose tip", "mouth", "right ear", "left ear"];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 3 {
        eprintln!("usage: face_detect MODEL.tflite PICTURE OUTPUT.png");
        return ExitCode::from(2);
    }
    match run(PathBuf::from(&args[0]), PathBuf::from(&args[1]), PathBuf::from(&args[2])) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("face_detect: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(model: PathBuf, picture: PathBuf, output: PathBuf) -> Result<(), String> {
    let mut img =
        image::open(&picture).map_err(|e| format!("cannot read picture {}: {e}", picture.display()))?.to_rgb8();
    let (w, h) = (img.width() as f32, img.height() as f32);
    let input = runner::preprocess(&img);
    let started = std::time::Instant::now();
    let raw = runner::run_model(&model, &input)?;
    let elapsed = started.elapsed();
    let faces = blazeface::detect_faces(&raw.boxes, &raw.scores)?;
    println!(
        "{}: {} face(s) ({}x{} picture, model load + inference {:.1} ms)",
        picture.display(),
        faces.len(),
        img.width(),
        img.height(),
        elapsed.as_secs_f64() * 1e3
    );
    for (i, f) in faces.iter().enumerate() {
        println!(
            "face {i}: score {:.3}, box x {:.0}..{:.0}, y {:.0}..{:.0} ({:.0}x{:.0} px)",
            f.score,
            f.xmin * w,
            f.xmax * w,
            f.ymin * h,
            f.ymax * h,
            (f.xmax - f.xmin) * w,
            (f.ymax - f.ymin) * h
        );
        for (name, &(x, y)) in KEYPOINT_NAMES.iter().zip(&f.keypoints) {
            println!("    {name:<9} ({:.0}, {:.0})", x * w, y * h);
        }
    }
    for f in &faces {
        draw(&mut img, f);
    }
    img.save(&output).map_err(|e| format!("cannot write {}: {e}", output.display()))?;
    println!("wrote {}", output.display());
    Ok(())
}

/// A rectangle a few pixels thick (scaled with the picture) and a dot on
/// each keypoint.
fn draw(img: &mut RgbImage, f: &Detection) {
    let (w, h) = (img.width() as f32, img.height() as f32);
    let thick = ((w.min(h) / 200.0).round() as i64).max(2);
    let green = Rgb([0, 255, 0]);
    let (x0, x1) = ((f.xmin * w).round() as i64, (f.xmax * w).round() as i64);
    let (y0, y1) = ((f.ymin * h).round() as i64, (f.ymax * h).round() as i64);
    fill(img, x0, y0, x1, y0 + thick, green);
    fill(img, x0, y1 - thick, x1, y1, green);
    fill(img, x0, y0, x0 + thick, y1, green);
    fill(img, x1 - thick, y0, x1, y1, green);
    let r = thick + 1;
    for &(kx, ky) in &f.keypoints {
        let (cx, cy) = ((kx * w).round() as i64, (ky * h).round() as i64);
        for y in cy - r..=cy + r {
            for x in cx - r..=cx + r {
                if (x - cx).pow(2) + (y - cy).pow(2) <= r * r {
                    put(img, x, y, Rgb([255, 0, 0]));
                }
            }
        }
    }
}

/// Fill [x0, x1) x [y0, y1), clipped to the picture.
fn fill(img: &mut RgbImage, x0: i64, y0: i64, x1: i64, y1: i64, c: Rgb<u8>) {
    for y in y0..y1 {
        for x in x0..x1 {
            put(img, x, y, c);
        }
    }
}

fn put(img: &mut RgbImage, x: i64, y: i64, c: Rgb<u8>) {
    if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
        img.put_pixel(x as u32, y as u32, c);
    }
}
