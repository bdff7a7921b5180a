//! NON_MAX_SUPPRESSION_V4 and _V5: single-class greedy non-max suppression
//! of scored boxes, with V5's Gaussian soft-NMS (Bodla et al., "Soft-NMS",
//! 2017), as TFLite's reference kernel computes it.
//!
//! The candidates wait in a max-heap on score. Where scores tie, which one
//! comes out first is decided by the heap's layout, so this heap is laid
//! out and updated exactly as libstdc++'s `std::priority_queue`
//! (`push_heap` / `pop_heap`), which LiteRT's Linux builds use: on inputs
//! full of tied scores the selections then match LiteRT's, which a heap
//! breaking ties by index would not.

#[derive(Clone, Copy, Debug)]
struct Candidate {
    index: usize,
    score: f32,
    /// Selections below this one were already compared with the candidate.
    suppress_begin: usize,
}

/// A max-heap on `score` with libstdc++'s heap algorithms.
#[derive(Default)]
struct CandidateHeap {
    items: Vec<Candidate>,
}

impl CandidateHeap {
    fn len(&self) -> usize {
        self.items.len()
    }

    fn push(&mut self, c: Candidate) {
        self.items.push(c);
        self.sift_up(self.items.len() - 1, 0, c);
    }

    /// Move `value` up from `hole` while its parent scores strictly less
    /// (`__push_heap`).
    fn sift_up(&mut self, mut hole: usize, top: usize, value: Candidate) {
        while hole > top {
            let parent = (hole - 1) / 2;
            // As libstdc++ compares: a NaN on either side stops the walk.
            if self.items[parent].score < value.score {
                self.items[hole] = self.items[parent];
                hole = parent;
            } else {
                break;
            }
        }
        self.items[hole] = value;
    }

    /// Take the top (`pop_heap` then `pop_back`): the last item goes to the
    /// root's slot by walking the hole down to a leaf along the larger
    /// child (the right one unless it scores strictly less) and sifting
    /// the item back up from there (`__adjust_heap`).
    fn pop(&mut self) -> Option<Candidate> {
        let n = self.items.len();
        if n > 1 {
            let value = self.items[n - 1];
            self.items[n - 1] = self.items[0];
            let len = n - 1;
            let mut hole = 0;
            let mut child = 0;
            while child < (len - 1) / 2 {
                child = 2 * (child + 1);
                if self.items[child].score < self.items[child - 1].score {
                    child -= 1;
                }
                self.items[hole] = self.items[child];
                hole = child;
            }
            if len.is_multiple_of(2) && child == (len - 2) / 2 {
                child = 2 * (child + 1);
                self.items[hole] = self.items[child - 1];
                hole = child - 1;
            }
            self.sift_up(hole, 0, value);
        }
        self.items.pop()
    }
}

/// C++'s `std::min`: `b` only when it compares less (NaN handling included).
fn cmin(a: f32, b: f32) -> f32 {
    if b < a {
        b
    } else {
        a
    }
}

/// C++'s `std::max`: `b` only when `a` compares less.
fn cmax(a: f32, b: f32) -> f32 {
    if a < b {
        b
    } else {
        a
    }
}

/// Intersection over union of boxes `i` and `j` (`[y1, x1, y2, x2]`, either
/// corner first); 0 when either box is empty.
fn iou(boxes: &[f32], i: usize, j: usize) -> f32 {
    let (a, b) = (&boxes[4 * i..4 * i + 4], &boxes[4 * j..4 * j + 4]);
    let (a_ymin, a_ymax, a_xmin, a_xmax) = (cmin(a[0], a[2]), cmax(a[0], a[2]), cmin(a[1], a[3]), cmax(a[1], a[3]));
    let (b_ymin, b_ymax, b_xmin, b_xmax) = (cmin(b[0], b[2]), cmax(b[0], b[2]), cmin(b[1], b[3]), cmax(b[1], b[3]));
    let area_a = (a_ymax - a_ymin) * (a_xmax - a_xmin);
    let area_b = (b_ymax - b_ymin) * (b_xmax - b_xmin);
    if area_a <= 0.0 || area_b <= 0.0 {
        return 0.0;
    }
    let height = cmin(a_ymax, b_ymax) - cmax(a_ymin, b_ymin);
    let width = cmin(a_xmax, b_xmax) - cmax(a_xmin, b_xmin);
    let intersection = cmax(height, 0.0) * cmax(width, 0.0);
    let union = area_a + area_b - intersection;
    if union == 0.0 {
        return 0.0;
    }
    intersection / union
}

/// Select up to `selected.len()` boxes; returns how many were selected.
///
/// `boxes` holds `scores.len()` boxes of 4 values. Boxes scoring above
/// `score_threshold` are taken best first; one whose IoU with an already
/// selected box reaches `iou_threshold` is dropped. With `soft_nms_sigma >
/// 0` each overlap also scales the candidate's score by
/// `exp(-0.5 * iou^2 / sigma)`; a candidate whose score changed goes back
/// to wait with its new score (or is dropped at or below the threshold),
/// and only a candidate whose score is unchanged is selected.
///
/// `selected` gets the selected indices, `selected_scores` (if given, of
/// the same length) their scores; the slots after the last selection are
/// set to 0. As in TFLite, a selected candidate also goes back to wait, to
/// be dropped against itself when it comes out again. That changes the
/// order in which tied scores come out, and a box of no area (IoU 0 with
/// itself) or an IoU threshold above 1 has a box selected again and again
/// until the slots run out: LiteRT's outputs show both.
pub fn non_max_suppression(
    boxes: &[f32],
    scores: &[f32],
    iou_threshold: f32,
    score_threshold: f32,
    soft_nms_sigma: f32,
    selected: &mut [i32],
    mut selected_scores: Option<&mut [f32]>,
) -> usize {
    debug_assert_eq!(boxes.len(), 4 * scores.len());
    debug_assert!(selected_scores.as_ref().is_none_or(|s| s.len() == selected.len()));
    let mut heap = CandidateHeap::default();
    for (index, &score) in scores.iter().enumerate() {
        if score > score_threshold {
            heap.push(Candidate { index, score, suppress_begin: 0 });
        }
    }
    let wanted = heap.len().min(selected.len());
    let soft = soft_nms_sigma > 0.0;
    let scale = if soft { -0.5 / soft_nms_sigma } else { 0.0 };
    let mut count = 0;
    while count < wanted {
        let Some(mut next) = heap.pop() else { break };
        let original = next.score;
        let mut hard_suppressed = false;
        // Later selections overlap a candidate more often than early ones:
        // walking back finds a hard suppression soonest.
        for j in (next.suppress_begin..count).rev() {
            let overlap = iou(boxes, next.index, selected[j] as usize);
            if overlap >= iou_threshold {
                hard_suppressed = true;
                break;
            }
            if soft {
                next.score *= (scale * overlap * overlap).exp();
            }
            if next.score <= score_threshold {
                break;
            }
        }
        next.suppress_begin = count;
        if hard_suppressed {
            continue;
        }
        if next.score == original {
            selected[count] = next.index as i32;
            if let Some(s) = selected_scores.as_deref_mut() {
                s[count] = next.score;
            }
            count += 1;
        }
        if next.score > score_threshold {
            heap.push(next);
        }
    }
    selected[count..].fill(0);
    if let Some(s) = selected_scores {
        s[count..].fill(0.0);
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Six boxes: 0, 1 and 2 overlap heavily (IoU 0.81 between 0 and 1,
    /// 0.64 between 0 and 2), 3 and 4 overlap each other (IoU 1/3), 5 is
    /// empty.
    const BOXES: [f32; 24] = [
        0.0, 0.0, 1.0, 1.0, // 0
        0.0, 0.1, 1.0, 1.1, // 1: IoU with 0 = 0.9 / 1.1
        1.0, 1.0, 0.2, 0.2, // 2: corners swapped, IoU with 0 = 0.64
        2.0, 2.0, 3.0, 3.0, // 3
        2.0, 2.5, 3.0, 3.5, // 4: IoU with 3 = 0.5 / 1.5
        5.0, 5.0, 5.0, 6.0, // 5: no area
    ];

    fn run(scores: &[f32], max: usize, iou: f32, score: f32, sigma: f32) -> (Vec<i32>, Vec<f32>) {
        let mut sel = vec![-7; max];
        let mut sc = vec![-7.0; max];
        let n = non_max_suppression(&BOXES, scores, iou, score, sigma, &mut sel, Some(&mut sc));
        assert!(sel[n..].iter().all(|&v| v == 0) && sc[n..].iter().all(|&v| v == 0.0));
        (sel, sc)
    }

    #[test]
    fn iou_of_the_test_boxes() {
        assert!((iou(&BOXES, 0, 1) - 0.9 / 1.1).abs() < 1e-6);
        assert!((iou(&BOXES, 0, 2) - 0.64).abs() < 1e-6);
        assert!((iou(&BOXES, 3, 4) - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(iou(&BOXES, 0, 3), 0.0);
        assert_eq!(iou(&BOXES, 5, 5), 0.0);
    }

    #[test]
    fn hard_nms_keeps_the_best_of_each_cluster() {
        let scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4];
        // IoU 0.5: 1 and 2 go (0.82, 0.64 with 0), 4 stays (0.33 with 3).
        // Box 5 has no area, so its IoU with itself is 0: back in the heap
        // after its selection, it is selected again until the slots run
        // out (LiteRT gives the same).
        assert_eq!(run(&scores, 6, 0.5, 0.0, 0.0).0, [0, 3, 4, 5, 5, 5]);
        // IoU 0.7: 2 stays (0.64 with 0); at most 3 selections.
        assert_eq!(run(&scores, 3, 0.7, 0.0, 0.0).0, [0, 2, 3]);
        // Score threshold 0.55 (strictly above): 4 and 5 never compete.
        let (sel, sc) = run(&scores, 4, 0.5, 0.55, 0.0);
        assert_eq!(sel, [0, 3, 0, 0]);
        assert_eq!(sc, [0.9, 0.6, 0.0, 0.0]);
        let mut sel = [9i32; 4];
        assert_eq!(non_max_suppression(&BOXES, &scores, 0.5, 0.6, 0.0, &mut sel, None), 1);
        assert_eq!(sel, [0, 0, 0, 0]);
    }

    #[test]
    fn soft_nms_decays_overlapping_scores() {
        // sigma 0.5 (scale -1), IoU threshold 1 (no hard suppression).
        // After 0 (0.9): box 1 decays to 0.8 * exp(-(9/11)^2) = 0.41 and
        // box 2 to 0.7 * exp(-0.64^2) = 0.465; 3 (0.6) is selected; box 4
        // decays against 3 to 0.5 * exp(-1/9) = 0.447; 2 and then 4 are
        // selected unchanged, and box 1, back out, decays once more against
        // box 2 (IoU 0.64) before it is selected.
        let scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.1];
        let (sel, sc) = run(&scores, 6, 1.0, 0.0, 0.5);
        let s1 = 0.8f32 * (-(0.9f32 / 1.1) * (0.9 / 1.1)).exp() * (-0.64f32 * 0.64).exp();
        let s2 = 0.7f32 * (-0.64f32 * 0.64).exp();
        let s4 = 0.5f32 * (-1.0f32 / 9.0).exp();
        assert_eq!(sel, [0, 3, 2, 4, 1, 5]);
        let want = [0.9, 0.6, s2, s4, s1, 0.1];
        for (got, want) in sc.iter().zip(want) {
            assert!((got - want).abs() < 1e-5, "{sc:?} vs {want}");
        }
        // At threshold 0.45, boxes 1 (0.41) and 4 (0.447) are dropped once
        // decayed.
        assert_eq!(run(&scores, 6, 1.0, 0.45, 0.5).0, [0, 3, 2, 0, 0, 0]);
    }

    #[test]
    fn tied_scores_come_out_in_litert_order() {
        // Four disjoint boxes: with equal scores LiteRT selects 0, 2, 3, 1
        // (libstdc++'s heap, the selected boxes going back in), and with
        // box 3 best, 3, 1, 2, 0; a heap breaking ties by index would not.
        let boxes = [0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 5.0, 5.0, 6.0, 6.0, 7.0, 7.0];
        let mut sel = [0i32; 4];
        assert_eq!(non_max_suppression(&boxes, &[0.5; 4], 0.5, 0.0, 0.0, &mut sel, None), 4);
        assert_eq!(sel, [0, 2, 3, 1]);
        assert_eq!(non_max_suppression(&boxes, &[0.5, 0.5, 0.5, 0.7], 0.5, 0.0, 0.0, &mut sel, None), 4);
        assert_eq!(sel, [3, 1, 2, 0]);
    }

    #[test]
    fn heap_pops_in_score_order() {
        let mut h = CandidateHeap::default();
        let scores = [0.3f32, 0.9, 0.1, 0.5, 0.7, 0.2, 0.8, 0.4, 0.6];
        for (index, &score) in scores.iter().enumerate() {
            h.push(Candidate { index, score, suppress_begin: 0 });
        }
        let mut out = Vec::new();
        while let Some(c) = h.pop() {
            out.push(c.score);
        }
        assert_eq!(out, [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]);
    }

    #[test]
    fn nothing_to_select() {
        let mut sel = [5i32; 2];
        assert_eq!(non_max_suppression(&[], &[], 0.5, 0.0, 0.0, &mut sel, None), 0);
        assert_eq!(sel, [0, 0]);
        let mut none: [i32; 0] = [];
        assert_eq!(non_max_suppression(&BOXES, &[1.0; 6], 0.5, 0.0, 0.0, &mut none, None), 0);
    }
}
