//! TFLite_Detection_PostProcess, the last op of SSD-style detectors: decode
//! each box against its anchor, then keep the best boxes with non-max
//! suppression, as TFLite's `kernels/detection_postprocess.cc` does.
//!
//! Boxes come in as centre-size encodings `(y, x, h, w)` relative to
//! anchors `(y, x, h, w)` and go out as corners `(ymin, xmin, ymax, xmax)`.
//! Two suppressions exist:
//! - fast (class-agnostic): each anchor competes with its best class score;
//!   a kept anchor reports its `max_classes_per_detection` best classes;
//! - regular: suppression per class (at most `detections_per_class` boxes
//!   each), then the `max_detections` best of all classes.
//!
//! Ties keep TFLite's order: boxes of equal score by anchor index, classes
//! of equal score by class index, and in regular suppression earlier
//! classes before later ones.

use std::cmp::Ordering;

/// A box as corners: `[ymin, xmin, ymax, xmax]`.
pub type Corners = [f32; 4];

/// What the box encodings were multiplied by (the op's `y_scale`,
/// `x_scale`, `h_scale` and `w_scale` options).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BoxScales {
    pub y: f32,
    pub x: f32,
    pub h: f32,
    pub w: f32,
}

/// The suppression's parameters (the op's options).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NmsParams {
    /// Detections reported at most.
    pub max_detections: usize,
    /// Classes reported per detection (fast suppression; at least 1).
    pub max_classes_per_detection: usize,
    /// Boxes kept per class before merging (regular suppression).
    pub detections_per_class: usize,
    /// Boxes scoring below this never count (a score equal to it does).
    pub score_threshold: f32,
    /// A box overlapping a kept one by more than this is dropped.
    pub iou_threshold: f32,
    /// Classes, without the background column.
    pub num_classes: usize,
    /// Regular (per-class) suppression instead of the fast one.
    pub regular: bool,
}

/// Decode `n = out.len()` boxes: `encodings` holds `stride >= 4` values per
/// box (only the first four are used), `anchors` four per box.
///
/// The arithmetic is TFLite's: in double precision, rounded to float for
/// the centre and the half sizes, whose differences and sums are float.
pub fn decode_center_size(encodings: &[f32], stride: usize, anchors: &[f32], scales: BoxScales, out: &mut [Corners]) {
    let s = [scales.y as f64, scales.x as f64, scales.h as f64, scales.w as f64];
    let rows = encodings.chunks_exact(stride.max(1)).zip(anchors.chunks_exact(4));
    for (corners, (e, a)) in out.iter_mut().zip(rows) {
        if e.len() < 4 {
            break;
        }
        let (ay, ax, ah, aw) = (a[0] as f64, a[1] as f64, a[2] as f64, a[3] as f64);
        let y_center = (e[0] as f64 / s[0] * ah + ay) as f32;
        let x_center = (e[1] as f64 / s[1] * aw + ax) as f32;
        let half_h = (0.5 * (e[2] as f64 / s[2]).exp() * ah) as f32;
        let half_w = (0.5 * (e[3] as f64 / s[3]).exp() * aw) as f32;
        *corners = [y_center - half_h, x_center - half_w, y_center + half_h, x_center + half_w];
    }
}

/// C++'s `std::max` on floats: `a` unless `a < b` (so a NaN `a` wins).
fn cmax(a: f32, b: f32) -> f32 {
    if a < b {
        b
    } else {
        a
    }
}

/// C++'s `std::min` on floats: `a` unless `b < a`.
fn cmin(a: f32, b: f32) -> f32 {
    if b < a {
        b
    } else {
        a
    }
}

/// Intersection over union of two boxes; 0 when either has no area.
pub fn intersection_over_union(a: &Corners, b: &Corners) -> f32 {
    let area_a = (a[2] - a[0]) * (a[3] - a[1]);
    let area_b = (b[2] - b[0]) * (b[3] - b[1]);
    if area_a <= 0.0 || area_b <= 0.0 {
        return 0.0;
    }
    let h = cmax(cmin(a[2], b[2]) - cmax(a[0], b[0]), 0.0);
    let w = cmax(cmin(a[3], b[3]) - cmax(a[1], b[1]), 0.0);
    let intersection = h * w;
    intersection / (area_a + area_b - intersection)
}

/// Decreasing order of scores, a total order for the sorts: NaNs last.
fn decreasing(a: f32, b: f32) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (false, false) => b.partial_cmp(&a).unwrap_or(Ordering::Equal),
        (false, true) => Ordering::Less,
        (true, false) => Ordering::Greater,
        (true, true) => Ordering::Equal,
    }
}

/// Single-class suppression: the boxes scoring at least the threshold, best
/// first (equal scores by index), each dropping the later ones it overlaps
/// by more than the IoU threshold; at most `max_out` indices into `scores`
/// and `boxes` go to `selected`.
fn suppress(boxes: &[Corners], scores: &[f32], p: &NmsParams, max_out: usize, selected: &mut Vec<usize>) {
    selected.clear();
    let mut candidates: Vec<usize> = (0..scores.len()).filter(|&i| scores[i] >= p.score_threshold).collect();
    candidates.sort_by(|&a, &b| decreasing(scores[a], scores[b]));
    let wanted = candidates.len().min(max_out);
    let mut active = vec![true; candidates.len()];
    let mut remaining = candidates.len();
    for i in 0..candidates.len() {
        if remaining == 0 || selected.len() >= wanted {
            break;
        }
        if !active[i] {
            continue;
        }
        let kept = candidates[i];
        selected.push(kept);
        active[i] = false;
        remaining -= 1;
        for j in i + 1..candidates.len() {
            if active[j] && intersection_over_union(&boxes[kept], &boxes[candidates[j]]) > p.iou_threshold {
                active[j] = false;
                remaining -= 1;
            }
        }
    }
}

/// The output slots of one call.
pub struct Detections<'a> {
    /// `[slots, 4]` corners.
    pub boxes: &'a mut [f32],
    /// `[slots]` class indices (without the background), as floats.
    pub classes: &'a mut [f32],
    /// `[slots]` scores.
    pub scores: &'a mut [f32],
}

impl Detections<'_> {
    fn set(&mut self, slot: usize, corners: &Corners, class: usize, score: f32) {
        if let (Some(b), Some(c), Some(s)) =
            (self.boxes.get_mut(slot * 4..slot * 4 + 4), self.classes.get_mut(slot), self.scores.get_mut(slot))
        {
            b.copy_from_slice(corners);
            *c = class as f32;
            *s = score;
        }
    }
}

/// Suppression over decoded `boxes` (one per anchor) and `scores`
/// (`columns` per anchor: `num_classes`, or one more for a leading
/// background column, which is skipped). Writes the detections to `out`,
/// `max_detections * max_classes_per_detection` slots, zeros in the slots
/// left over, and returns how many detections there are (anchors for the
/// fast suppression, each with up to `max_classes_per_detection` slots).
///
/// Errors like TFLite: a box with `ymin > ymax` or `xmin > xmax` (a
/// negative anchor size), and parameters it rejects.
pub fn detection_postprocess(
    boxes: &[Corners],
    scores: &[f32],
    columns: usize,
    p: &NmsParams,
    out: &mut Detections<'_>,
) -> Result<usize, String> {
    out.boxes.fill(0.0);
    out.classes.fill(0.0);
    out.scores.fill(0.0);
    let n = boxes.len();
    if p.num_classes == 0 || columns < p.num_classes || columns - p.num_classes > 1 {
        return Err(format!("{columns} score columns for {} classes (expected that many, or one more)", p.num_classes));
    }
    if scores.len() != n * columns {
        return Err(format!("{} scores for {n} boxes of {columns} columns", scores.len()));
    }
    if p.max_classes_per_detection == 0 {
        return Err("max_classes_per_detection must be at least 1".into());
    }
    if !(p.iou_threshold > 0.0 && p.iou_threshold <= 1.0) {
        return Err(format!("nms_iou_threshold {} is not in (0, 1]", p.iou_threshold));
    }
    if let Some(i) = boxes.iter().position(|b| b[0] > b[2] || b[1] > b[3]) {
        return Err(format!("box {i} decodes to {:?}: min above max (a negative anchor size?)", boxes[i]));
    }
    let offset = columns - p.num_classes;
    if p.regular {
        regular(boxes, scores, columns, offset, p, out)
    } else {
        Ok(fast(boxes, scores, columns, offset, p, out))
    }
}

/// The fast suppression: anchors ranked by their best class score.
fn fast(
    boxes: &[Corners],
    scores: &[f32],
    columns: usize,
    offset: usize,
    p: &NmsParams,
    out: &mut Detections<'_>,
) -> usize {
    let n = boxes.len();
    let per_box = p.max_classes_per_detection.min(p.num_classes);
    let mut top = vec![0usize; n * per_box];
    let mut best = vec![0.0f32; n];
    let mut order: Vec<usize> = Vec::with_capacity(p.num_classes);
    for (row, (top, best)) in top.chunks_exact_mut(per_box).zip(best.iter_mut()).enumerate() {
        let s = &scores[row * columns + offset..][..p.num_classes];
        if per_box == 1 {
            // The first of the largest; a NaN in front stays there (TFLite's
            // ArgMaxVector), and then the anchor never passes the threshold.
            let mut arg = 0;
            for (c, &v) in s.iter().enumerate().skip(1) {
                if v > s[arg] {
                    arg = c;
                }
            }
            top[0] = arg;
        } else {
            order.clear();
            order.extend(0..p.num_classes);
            order.sort_by(|&a, &b| decreasing(s[a], s[b]));
            top.copy_from_slice(&order[..per_box]);
        }
        *best = s[top[0]];
    }
    let mut selected = Vec::new();
    suppress(boxes, &best, p, p.max_detections, &mut selected);
    for (k, &anchor) in selected.iter().enumerate() {
        let s = &scores[anchor * columns + offset..][..p.num_classes];
        for (j, &class) in top[anchor * per_box..][..per_box].iter().enumerate() {
            out.set(k * p.max_classes_per_detection + j, &boxes[anchor], class, s[class]);
        }
    }
    selected.len()
}

/// The regular suppression: per class, then the best of all classes.
fn regular(
    boxes: &[Corners],
    scores: &[f32],
    columns: usize,
    offset: usize,
    p: &NmsParams,
    out: &mut Detections<'_>,
) -> Result<usize, String> {
    let per_class = p.detections_per_class.min(p.max_detections);
    if per_class == 0 {
        return Err("regular NMS needs detections_per_class and max_detections of at least 1".into());
    }
    let n = boxes.len();
    let mut class_scores = vec![0.0f32; n];
    let mut selected = Vec::new();
    // (score, anchor, class), best first; equal scores in the order found.
    let mut best: Vec<(f32, usize, usize)> = Vec::new();
    for class in 0..p.num_classes {
        for (row, v) in class_scores.iter_mut().enumerate() {
            *v = scores[row * columns + offset + class];
        }
        suppress(boxes, &class_scores, p, per_class, &mut selected);
        best.extend(selected.iter().map(|&a| (class_scores[a], a, class)));
        // Stable: entries of earlier classes stay ahead of equal new ones.
        best.sort_by(|a, b| decreasing(a.0, b.0));
        best.truncate(p.max_detections);
    }
    for (k, &(score, anchor, class)) in best.iter().enumerate() {
        out.set(k, &boxes[anchor], class, score);
    }
    Ok(best.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(regular: bool) -> NmsParams {
        NmsParams {
            max_detections: 3,
            max_classes_per_detection: 1,
            detections_per_class: 100,
            score_threshold: 0.5,
            iou_threshold: 0.5,
            num_classes: 2,
            regular,
        }
    }

    /// Runs the suppression with `slots` output slots.
    fn run(boxes: &[Corners], scores: &[f32], columns: usize, p: &NmsParams) -> (usize, Vec<f32>, Vec<f32>, Vec<f32>) {
        let slots = p.max_detections * p.max_classes_per_detection;
        let (mut b, mut c, mut s) = (vec![9.0; slots * 4], vec![9.0; slots], vec![9.0; slots]);
        let mut out = Detections { boxes: &mut b, classes: &mut c, scores: &mut s };
        let n = detection_postprocess(boxes, scores, columns, p, &mut out).unwrap();
        (n, b, c, s)
    }

    #[test]
    fn decodes_center_size_against_anchors() {
        // Anchor centred at (0.5, 0.5), 0.2 high, 0.4 wide. Encoding
        // y = 1 (scale 10): centre y moves 0.1 * 0.2 = 0.02; h = ln 2 * 5
        // (scale 5): the height doubles. A fifth value is ignored.
        let enc = [1.0, 0.0, 5.0 * std::f32::consts::LN_2, 0.0, 123.0];
        let anchors = [0.5, 0.5, 0.2, 0.4];
        let mut out = [[0.0; 4]];
        decode_center_size(&enc, 5, &anchors, BoxScales { y: 10.0, x: 10.0, h: 5.0, w: 5.0 }, &mut out);
        let want = [0.52 - 0.2, 0.5 - 0.2, 0.52 + 0.2, 0.5 + 0.2];
        for (g, w) in out[0].iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{:?} vs {want:?}", out[0]);
        }
    }

    #[test]
    fn iou_of_overlapping_disjoint_and_empty_boxes() {
        let a = [0.0, 0.0, 1.0, 1.0];
        assert_eq!(intersection_over_union(&a, &a), 1.0);
        // Half of a overlaps all of b's 0.5: 0.5 / (1 + 0.5 - 0.5).
        assert_eq!(intersection_over_union(&a, &[0.0, 0.5, 1.0, 1.0]), 0.5);
        // [0,1]x[0,1] and [0.5,1.5]x[0,1]: 0.5 / 1.5.
        assert!((intersection_over_union(&a, &[0.5, 0.0, 1.5, 1.0]) - 1.0 / 3.0).abs() < 1e-7);
        assert_eq!(intersection_over_union(&a, &[2.0, 2.0, 3.0, 3.0]), 0.0);
        // A zero-area box overlaps nothing, even a box containing it.
        assert_eq!(intersection_over_union(&a, &[0.5, 0.5, 0.5, 0.9]), 0.0);
    }

    #[test]
    fn fast_nms_drops_the_weaker_of_two_overlapping_boxes() {
        // Boxes 0 and 1 overlap almost entirely, box 2 is apart. Columns:
        // background, class 0, class 1.
        let boxes = [[0.0, 0.0, 1.0, 1.0], [0.0, 0.05, 1.0, 1.05], [2.0, 2.0, 3.0, 3.0]];
        let scores = [0.9, 0.6, 0.7, 0.0, 0.8, 0.1, 0.0, 0.2, 0.55];
        let (n, b, c, s) = run(&boxes, &scores, 3, &params(false));
        // Box 1 (best 0.8) is kept; box 0 (0.7) overlaps it; box 2 (0.55).
        assert_eq!(n, 2);
        assert_eq!(c, [0.0, 1.0, 0.0]);
        assert_eq!(s, [0.8, 0.55, 0.0]);
        assert_eq!(b, [0.0, 0.05, 1.0, 1.05, 2.0, 2.0, 3.0, 3.0, 0.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn score_threshold_is_inclusive_and_nan_never_passes() {
        let boxes = [[0.0, 0.0, 1.0, 1.0], [2.0, 2.0, 3.0, 3.0], [4.0, 4.0, 5.0, 5.0]];
        // No background column: columns == num_classes.
        let scores = [0.5, 0.1, f32::NAN, 0.9, 0.49, 0.2];
        let (n, _, c, s) = run(&boxes, &scores, 2, &params(false));
        // Box 1 has NaN first, so its best is NaN (TFLite's argmax) and it
        // never passes; box 0 scores exactly the threshold.
        assert_eq!((n, &c[..1], &s[..1]), (1, &[0.0][..], &[0.5][..]));
    }

    #[test]
    fn equal_scores_keep_anchor_order() {
        let boxes: Vec<Corners> = (0..4).map(|i| [i as f32 * 2.0, 0.0, i as f32 * 2.0 + 1.0, 1.0]).collect();
        let scores = [0.6, 0.6, 0.7, 0.6]; // one class
        let mut p = params(false);
        p.num_classes = 1;
        let (n, b, _, s) = run(&boxes, &scores, 1, &p);
        assert_eq!(n, 3);
        assert_eq!(s, [0.7, 0.6, 0.6]);
        assert_eq!([b[0], b[4], b[8]], [4.0, 0.0, 2.0]);
    }

    #[test]
    fn several_classes_per_detection_best_first() {
        let boxes = [[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]];
        // Background + 3 classes; box 1 (best 0.9) suppresses box 0.
        let scores = [0.0, 0.3, 0.8, 0.3, 0.0, 0.2, 0.4, 0.9];
        let mut p = params(false);
        p.num_classes = 3;
        p.max_classes_per_detection = 2;
        p.max_detections = 2;
        let (n, b, c, s) = run(&boxes, &scores, 4, &p);
        assert_eq!(n, 1);
        assert_eq!(c, [2.0, 1.0, 0.0, 0.0]);
        assert_eq!(s, [0.9, 0.4, 0.0, 0.0]);
        assert_eq!(&b[..8], &[0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0]);
        // More classes per detection than classes: the rest stays zero;
        // equal class scores come in class order.
        p.max_classes_per_detection = 5;
        let scores = [0.0, 0.3, 0.6, 0.6, 0.0, 0.0, 0.0, 0.0];
        let (n, _, c, s) = run(&boxes, &scores, 4, &p);
        assert_eq!(n, 1);
        assert_eq!(c, [1.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(s, [0.6, 0.6, 0.3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn regular_nms_suppresses_per_class() {
        // Boxes 0 and 1 overlap. Class 0: 0.9 (box 0), 0.8 (box 1): box 1
        // is suppressed. Class 1: only box 1 (0.7) passes: kept, even
        // though box 0 wins class 0.
        let boxes = [[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 0.9], [5.0, 5.0, 6.0, 6.0]];
        let scores = [0.0, 0.9, 0.1, 0.0, 0.8, 0.7, 0.0, 0.6, 0.6];
        let mut p = params(true);
        p.max_detections = 4;
        let (n, b, c, s) = run(&boxes, &scores, 3, &p);
        assert_eq!(n, 4);
        // 0.6 tie: class 0 (box 2) ahead of class 1 (box 2).
        assert_eq!(s, [0.9, 0.7, 0.6, 0.6]);
        assert_eq!(c, [0.0, 1.0, 0.0, 1.0]);
        assert_eq!(&b[4..8], &[0.0, 0.0, 1.0, 0.9]);
        // detections_per_class caps each class before the merge.
        p.detections_per_class = 1;
        let (n, _, c, s) = run(&boxes, &scores, 3, &p);
        assert_eq!((n, c, s), (2, vec![0.0, 1.0, 0.0, 0.0], vec![0.9, 0.7, 0.0, 0.0]));
    }

    #[test]
    fn rejects_what_tflite_rejects_without_panicking() {
        let boxes = [[1.0, 0.0, 0.0, 1.0]]; // ymin > ymax
        let scores = [0.0, 0.9, 0.9];
        let (mut b, mut c, mut s) = (vec![0.0; 12], vec![0.0; 3], vec![0.0; 3]);
        let mut out = Detections { boxes: &mut b, classes: &mut c, scores: &mut s };
        assert!(detection_postprocess(&boxes, &scores, 3, &params(false), &mut out).is_err());
        let ok = [[0.0, 0.0, 1.0, 1.0]];
        let mut p = params(false);
        p.iou_threshold = 0.0;
        assert!(detection_postprocess(&ok, &scores, 3, &p, &mut out).is_err());
        p = params(false);
        p.num_classes = 5;
        assert!(detection_postprocess(&ok, &scores, 3, &p, &mut out).is_err());
        p = params(true);
        p.max_detections = 0;
        assert!(detection_postprocess(&ok, &scores, 3, &p, &mut out).is_err());
        // Fast suppression takes max_detections = 0 (no slots), and no boxes.
        p.regular = false;
        assert_eq!(detection_postprocess(&ok, &scores, 3, &p, &mut out), Ok(0));
        p.max_detections = 3;
        assert_eq!(detection_postprocess(&[], &[], 3, &p, &mut out), Ok(0));
    }

    #[test]
    fn nan_boxes_do_not_panic() {
        let boxes = [[f32::NAN, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]];
        let scores = [0.0, 0.9, f32::NAN, 0.0, 0.8, f32::NAN];
        for regular in [false, true] {
            let mut p = params(regular);
            p.max_classes_per_detection = 2;
            let (n, ..) = run(&boxes, &scores, 3, &p);
            assert_eq!(n, 2);
        }
    }
}
