//! The pure part of the BlazeFace (MediaPipe face detection, short range)
//! post-processing: SSD anchors, box decoding and weighted non-maximum
//! suppression. No I/O here, so it can be tested on its own (see
//! `tests/face_detect.rs`, which includes this file).
//!
//! The behaviour follows MediaPipe's graph for `face_detection_short_range`:
//! `SsdAnchorsCalculator` for the anchors, `TensorsToDetectionsCalculator`
//! for decoding and `NonMaxSuppressionCalculator` (WEIGHTED, IoU 0.3) for
//! merging overlapping detections.

/// One SSD anchor, in coordinates normalised to the model input (0..1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Anchor {
    pub x_center: f32,
    pub y_center: f32,
    pub w: f32,
    pub h: f32,
}

/// The options of MediaPipe's `SsdAnchorsCalculator` that this model uses.
#[derive(Clone, Debug)]
pub struct AnchorOptions {
    pub num_layers: usize,
    pub min_scale: f32,
    pub max_scale: f32,
    pub input_width: usize,
    pub input_height: usize,
    pub anchor_offset_x: f32,
    pub anchor_offset_y: f32,
    pub strides: Vec<usize>,
    pub aspect_ratios: Vec<f32>,
    /// Above 0: one more anchor per layer, with the geometric mean of this
    /// layer's scale and the next one's.
    pub interpolated_scale_aspect_ratio: f32,
    /// Every anchor is 1x1: the model regresses absolute sizes.
    pub fixed_anchor_size: bool,
}

impl AnchorOptions {
    /// `face_detection_short_range.pbtxt`: 128x128 input, strides 8/16/16/16.
    pub fn face_short_range() -> AnchorOptions {
        AnchorOptions {
            num_layers: 4,
            min_scale: 0.1484375,
            max_scale: 0.75,
            input_width: 128,
            input_height: 128,
            anchor_offset_x: 0.5,
            anchor_offset_y: 0.5,
            strides: vec![8, 16, 16, 16],
            aspect_ratios: vec![1.0],
            interpolated_scale_aspect_ratio: 1.0,
            fixed_anchor_size: true,
        }
    }
}

fn layer_scale(min_scale: f32, max_scale: f32, index: usize, count: usize) -> f32 {
    if count == 1 {
        (min_scale + max_scale) * 0.5
    } else {
        min_scale + (max_scale - min_scale) * index as f32 / (count as f32 - 1.0)
    }
}

/// Generate the anchors in the order the model emits its boxes: layers with
/// the same stride are merged; within a layer row by row, column by column,
/// then anchor by anchor.
pub fn ssd_anchors(o: &AnchorOptions) -> Vec<Anchor> {
    assert_eq!(o.strides.len(), o.num_layers, "one stride per layer");
    let mut anchors = Vec::new();
    let mut layer = 0;
    while layer < o.num_layers {
        // (width, height) of every anchor placed at each cell of this stride.
        let mut sizes: Vec<(f32, f32)> = Vec::new();
        let mut last = layer;
        while last < o.strides.len() && o.strides[last] == o.strides[layer] {
            let scale = layer_scale(o.min_scale, o.max_scale, last, o.strides.len());
            for &ratio in &o.aspect_ratios {
                sizes.push((scale * ratio.sqrt(), scale / ratio.sqrt()));
            }
            if o.interpolated_scale_aspect_ratio > 0.0 {
                let next = if last == o.strides.len() - 1 {
                    1.0
                } else {
                    layer_scale(o.min_scale, o.max_scale, last + 1, o.strides.len())
                };
                let s = (scale * next).sqrt();
                let r = o.interpolated_scale_aspect_ratio.sqrt();
                sizes.push((s * r, s / r));
            }
            last += 1;
        }
        let stride = o.strides[layer] as f32;
        let fh = (o.input_height as f32 / stride).ceil() as usize;
        let fw = (o.input_width as f32 / stride).ceil() as usize;
        for y in 0..fh {
            for x in 0..fw {
                for &(w, h) in &sizes {
                    let (w, h) = if o.fixed_anchor_size { (1.0, 1.0) } else { (w, h) };
                    anchors.push(Anchor {
                        x_center: (x as f32 + o.anchor_offset_x) / fw as f32,
                        y_center: (y as f32 + o.anchor_offset_y) / fh as f32,
                        w,
                        h,
                    });
                }
            }
        }
        layer = last;
    }
    anchors
}

/// The options of MediaPipe's `TensorsToDetectionsCalculator` for this model
/// (one class, `reverse_output_order`: boxes are x, y, w, h).
#[derive(Clone, Debug)]
pub struct DecodeOptions {
    pub num_coords: usize,
    pub num_keypoints: usize,
    pub x_scale: f32,
    pub y_scale: f32,
    pub w_scale: f32,
    pub h_scale: f32,
    pub score_clipping_thresh: f32,
    pub min_score_thresh: f32,
}

impl DecodeOptions {
    pub fn face_short_range() -> DecodeOptions {
        DecodeOptions {
            num_coords: 16,
            num_keypoints: 6,
            x_scale: 128.0,
            y_scale: 128.0,
            w_scale: 128.0,
            h_scale: 128.0,
            score_clipping_thresh: 100.0,
            min_score_thresh: 0.5,
        }
    }
}

/// A detection in coordinates normalised to the model input (0..1 inside
/// the picture; boxes near the border may reach a little outside).
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    pub score: f32,
    pub xmin: f32,
    pub ymin: f32,
    pub xmax: f32,
    pub ymax: f32,
    /// (x, y): right eye, left eye, nose tip, mouth, right ear, left ear
    /// (the subject's right and left).
    pub keypoints: Vec<(f32, f32)>,
}

impl Detection {
    pub fn area(&self) -> f32 {
        (self.xmax - self.xmin).max(0.0) * (self.ymax - self.ymin).max(0.0)
    }
}

pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Turn the raw regressors (`[num_boxes, num_coords]`, flattened) and score
/// logits (`[num_boxes]`) into detections scoring at least `min_score_thresh`.
pub fn decode(
    raw_boxes: &[f32],
    raw_scores: &[f32],
    anchors: &[Anchor],
    o: &DecodeOptions,
) -> Result<Vec<Detection>, String> {
    let n = anchors.len();
    if raw_boxes.len() != n * o.num_coords || raw_scores.len() != n {
        return Err(format!(
            "expected {n}x{} box values and {n} scores for {n} anchors, got {} and {}",
            o.num_coords,
            raw_boxes.len(),
            raw_scores.len()
        ));
    }
    if o.num_coords < 4 + 2 * o.num_keypoints {
        return Err(format!("{} coordinates cannot hold a box and {} keypoints", o.num_coords, o.num_keypoints));
    }
    let mut out = Vec::new();
    for (i, (a, &logit)) in anchors.iter().zip(raw_scores).enumerate() {
        let t = o.score_clipping_thresh;
        let score = sigmoid(logit.clamp(-t, t));
        if score < o.min_score_thresh {
            continue;
        }
        let r = &raw_boxes[i * o.num_coords..(i + 1) * o.num_coords];
        let xc = r[0] / o.x_scale * a.w + a.x_center;
        let yc = r[1] / o.y_scale * a.h + a.y_center;
        let w = r[2] / o.w_scale * a.w;
        let h = r[3] / o.h_scale * a.h;
        let keypoints = (0..o.num_keypoints)
            .map(|k| {
                let kx = r[4 + 2 * k] / o.x_scale * a.w + a.x_center;
                let ky = r[4 + 2 * k + 1] / o.y_scale * a.h + a.y_center;
                (kx, ky)
            })
            .collect();
        out.push(Detection {
            score,
            xmin: xc - w / 2.0,
            ymin: yc - h / 2.0,
            xmax: xc + w / 2.0,
            ymax: yc + h / 2.0,
            keypoints,
        });
    }
    Ok(out)
}

/// Intersection over union of two boxes (0 when they do not overlap).
pub fn iou(a: &Detection, b: &Detection) -> f32 {
    let ix = (a.xmax.min(b.xmax) - a.xmin.max(b.xmin)).max(0.0);
    let iy = (a.ymax.min(b.ymax) - a.ymin.max(b.ymin)).max(0.0);
    let inter = ix * iy;
    if inter <= 0.0 {
        return 0.0;
    }
    let union = a.area() + b.area() - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

/// MediaPipe's weighted non-maximum suppression: take the best remaining
/// detection, gather every remaining detection overlapping it by more than
/// `threshold` (IoU), and emit one detection whose box and keypoints are the
/// score-weighted mean of that group, with the best one's score. Repeat on
/// what is left. The best detection always belongs to its own group (MediaPipe
/// gives up on the rest when a degenerate zero-area box comes first; this
/// version carries on).
pub fn weighted_nms(mut dets: Vec<Detection>, threshold: f32) -> Vec<Detection> {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut out = Vec::new();
    while !dets.is_empty() {
        let top = dets.remove(0);
        // partition keeps the order, so `rest` stays sorted by score.
        let (mut group, rest): (Vec<Detection>, Vec<Detection>) =
            dets.into_iter().partition(|d| iou(d, &top) > threshold);
        group.insert(0, top.clone());
        let total: f32 = group.iter().map(|d| d.score).sum();
        let mut merged = top.clone();
        if total > 0.0 {
            let wmean =
                |f: &dyn Fn(&Detection) -> f32| -> f32 { group.iter().map(|d| f(d) * d.score).sum::<f32>() / total };
            merged.xmin = wmean(&|d| d.xmin);
            merged.ymin = wmean(&|d| d.ymin);
            merged.xmax = wmean(&|d| d.xmax);
            merged.ymax = wmean(&|d| d.ymax);
            for k in 0..merged.keypoints.len() {
                merged.keypoints[k] = (wmean(&|d| d.keypoints[k].0), wmean(&|d| d.keypoints[k].1));
            }
        }
        out.push(merged);
        dets = rest;
    }
    out
}

/// Plain (hard) non-maximum suppression, for comparison: keep a detection
/// unless a better kept one overlaps it by more than `threshold`. The
/// example uses the weighted one; the tests compare the two.
#[allow(dead_code)]
pub fn hard_nms(mut dets: Vec<Detection>, threshold: f32) -> Vec<Detection> {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::new();
    for d in dets {
        if kept.iter().all(|k| iou(k, &d) <= threshold) {
            kept.push(d);
        }
    }
    kept
}

/// The whole post-processing of `face_detection_short_range`: anchors,
/// decoding, weighted NMS at IoU 0.3. Boxes are normalised (0..1).
pub fn detect_faces(raw_boxes: &[f32], raw_scores: &[f32]) -> Result<Vec<Detection>, String> {
    let anchors = ssd_anchors(&AnchorOptions::face_short_range());
    let dets = decode(raw_boxes, raw_scores, &anchors, &DecodeOptions::face_short_range())?;
    Ok(weighted_nms(dets, 0.3))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(score: f32, xmin: f32, ymin: f32, xmax: f32, ymax: f32) -> Detection {
        Detection { score, xmin, ymin, xmax, ymax, keypoints: vec![(xmin, ymin)] }
    }

    #[test]
    fn anchors_match_mediapipe_layout() {
        let a = ssd_anchors(&AnchorOptions::face_short_range());
        assert_eq!(a.len(), 896);
        // Stride 8: 16x16 cells, 2 anchors each, centred on the cell.
        assert_eq!(a[0], Anchor { x_center: 0.5 / 16.0, y_center: 0.5 / 16.0, w: 1.0, h: 1.0 });
        assert_eq!(a[1], a[0]);
        assert_eq!(a[2].x_center, 1.5 / 16.0);
        // Last cell of the first row, then the second row.
        assert_eq!(a[31].x_center, 15.5 / 16.0);
        assert_eq!(a[32].x_center, 0.5 / 16.0);
        assert_eq!(a[32].y_center, 1.5 / 16.0);
        assert_eq!(a[511].x_center, 15.5 / 16.0);
        assert_eq!(a[511].y_center, 15.5 / 16.0);
        // Stride 16 (three layers merged): 8x8 cells, 6 anchors each.
        for anchor in &a[512..518] {
            assert_eq!(*anchor, Anchor { x_center: 0.5 / 8.0, y_center: 0.5 / 8.0, w: 1.0, h: 1.0 });
        }
        assert_eq!(a[518].x_center, 1.5 / 8.0);
        assert_eq!(a[512 + 6 * 8].y_center, 1.5 / 8.0);
        assert_eq!(a[895].x_center, 7.5 / 8.0);
        assert_eq!(a[895].y_center, 7.5 / 8.0);
        assert!(a.iter().all(|a| a.w == 1.0 && a.h == 1.0));
    }

    #[test]
    fn anchor_sizes_without_fixed_size() {
        let mut o = AnchorOptions::face_short_range();
        o.fixed_anchor_size = false;
        let a = ssd_anchors(&o);
        assert_eq!(a.len(), 896);
        // Layer 0: scale = min_scale, then sqrt(scale0 * scale1).
        let s0 = 0.1484375f32;
        let s1 = 0.1484375 + (0.75 - 0.1484375) / 3.0;
        assert!((a[0].w - s0).abs() < 1e-6);
        assert!((a[1].w - (s0 * s1).sqrt()).abs() < 1e-6);
        // The last layer interpolates towards 1.0.
        assert!((a[517].w - 0.75f32.sqrt()).abs() < 1e-6);
    }

    #[test]
    fn decode_applies_scales_and_anchor() {
        let anchors = vec![
            Anchor { x_center: 0.25, y_center: 0.75, w: 1.0, h: 1.0 },
            Anchor { x_center: 0.5, y_center: 0.5, w: 1.0, h: 1.0 },
        ];
        let o = DecodeOptions::face_short_range();
        let mut boxes = vec![0.0f32; 32];
        // Anchor 0: shifted by +12.8 px in x (0.1), 25.6 px wide and 12.8 tall.
        boxes[0] = 12.8;
        boxes[1] = -12.8;
        boxes[2] = 25.6;
        boxes[3] = 12.8;
        for k in 0..6 {
            boxes[4 + 2 * k] = 6.4 * k as f32;
            boxes[5 + 2 * k] = -6.4;
        }
        let scores = [2.0f32, -1.0]; // sigmoid: 0.88 kept, 0.27 dropped
        let d = decode(&boxes, &scores, &anchors, &o).unwrap();
        assert_eq!(d.len(), 1);
        let d = &d[0];
        assert!((d.score - sigmoid(2.0)).abs() < 1e-6);
        let close = |a: f32, b: f32| (a - b).abs() < 1e-6;
        assert!(close(d.xmin, 0.35 - 0.1), "{d:?}");
        assert!(close(d.xmax, 0.35 + 0.1));
        assert!(close(d.ymin, 0.65 - 0.05));
        assert!(close(d.ymax, 0.65 + 0.05));
        assert_eq!(d.keypoints.len(), 6);
        assert!(close(d.keypoints[3].0, 0.25 + 0.15));
        assert!(close(d.keypoints[3].1, 0.75 - 0.05));
    }

    #[test]
    fn decode_clips_scores_and_checks_sizes() {
        let anchors = vec![Anchor { x_center: 0.5, y_center: 0.5, w: 1.0, h: 1.0 }];
        let o = DecodeOptions::face_short_range();
        let d = decode(&[0.0; 16], &[f32::INFINITY], &anchors, &o).unwrap();
        assert_eq!(d[0].score, sigmoid(100.0));
        assert!(decode(&[0.0; 16], &[f32::NEG_INFINITY], &anchors, &o).unwrap().is_empty());
        assert!(decode(&[0.0; 15], &[0.0], &anchors, &o).is_err());
        assert!(decode(&[0.0; 16], &[0.0, 0.0], &anchors, &o).is_err());
    }

    #[test]
    fn iou_basics() {
        let a = det(1.0, 0.0, 0.0, 2.0, 2.0);
        let b = det(1.0, 1.0, 1.0, 3.0, 3.0);
        assert!((iou(&a, &b) - 1.0 / 7.0).abs() < 1e-6);
        assert_eq!(iou(&a, &a), 1.0);
        assert_eq!(iou(&a, &det(1.0, 2.0, 0.0, 3.0, 2.0)), 0.0);
        assert_eq!(iou(&a, &det(1.0, 5.0, 5.0, 6.0, 6.0)), 0.0);
    }

    #[test]
    fn weighted_nms_merges_overlaps_by_score() {
        let dets = vec![
            det(0.6, 0.1, 0.1, 0.3, 0.3),
            det(0.9, 0.0, 0.0, 0.2, 0.2),
            det(0.8, 0.7, 0.7, 0.9, 0.9), // separate face
        ];
        // IoU of the first two is 1/7 < 0.3: all three stay apart.
        assert_eq!(weighted_nms(dets, 0.3).len(), 3);
        let out = weighted_nms(
            vec![det(0.6, 0.02, 0.0, 0.22, 0.2), det(0.9, 0.0, 0.0, 0.2, 0.2), det(0.8, 0.7, 0.7, 0.9, 0.9)],
            0.3,
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].score, 0.9);
        let xmin = (0.9 * 0.0 + 0.6 * 0.02) / 1.5;
        assert!((out[0].xmin - xmin).abs() < 1e-6, "{:?}", out[0]);
        assert!((out[0].keypoints[0].0 - xmin).abs() < 1e-6);
        assert!((out[0].xmax - (0.9 * 0.2 + 0.6 * 0.22) / 1.5).abs() < 1e-6);
        assert_eq!(out[1], det(0.8, 0.7, 0.7, 0.9, 0.9));
    }

    #[test]
    fn nms_handles_degenerate_boxes_and_empty_input() {
        assert!(weighted_nms(vec![], 0.3).is_empty());
        // A zero-area box first: it stays, and so does everything else.
        let out = weighted_nms(vec![det(0.9, 0.5, 0.5, 0.5, 0.5), det(0.8, 0.0, 0.0, 0.2, 0.2)], 0.3);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn hard_nms_keeps_the_best() {
        let out = hard_nms(
            vec![det(0.6, 0.02, 0.0, 0.22, 0.2), det(0.9, 0.0, 0.0, 0.2, 0.2), det(0.8, 0.7, 0.7, 0.9, 0.9)],
            0.3,
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[0], det(0.9, 0.0, 0.0, 0.2, 0.2));
    }
}
