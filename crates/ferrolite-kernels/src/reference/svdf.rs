//! SVDF: a fully connected layer over a window of time factored into a
//! feature filter and a time filter (TFLite's `reference_ops::EvalFloatSVDF`
//! and `EvalHybridSVDF`), float or with dynamic-range int8 feature weights.
//!
//! Per invoke, for each batch row `x` (`[n_input]`):
//! - the state (`[batches, n_filters, memory]`, oldest step first) moves
//!   one step left: the whole buffer shifts by one element, and each
//!   filter's last slot then receives `W_f·x` (`weights_feature` row `f`,
//!   summed from 0; hybrid: the quantised product as in [`super::rnn`]);
//! - each filter's activation is `T_f·state_f` (`weights_time` row `f`,
//!   `[memory]`, summed from 0);
//! - unit `u` sums its `rank` filters `u·rank .. (u+1)·rank` from 0, then
//!   adds its bias, then the fused activation applies.
//!
//! The int8 time weights of a hybrid model are dequantised by the caller
//! (`w · scale`, as TFLite does once at its first eval).

use super::rnn::{mat_vec_acc, QuantizedVector, RnnActivation, RnnWeight};

#[derive(Clone, Copy, Debug)]
pub struct SvdfDims {
    pub batches: usize,
    pub n_input: usize,
    pub n_filters: usize,
    pub rank: usize,
    pub memory: usize,
}

impl SvdfDims {
    pub fn n_units(&self) -> usize {
        self.n_filters / self.rank
    }
}

#[derive(Clone, Copy, Debug)]
pub struct SvdfWeights<'a> {
    /// `[n_filters, n_input]`.
    pub feature: RnnWeight<'a>,
    /// `[n_filters, memory]`.
    pub time: &'a [f32],
    /// `[n_units]`.
    pub bias: Option<&'a [f32]>,
}

#[derive(Clone, Copy, Debug)]
pub struct SvdfParams {
    pub activation: RnnActivation,
    pub asymmetric_quantize_inputs: bool,
}

/// Buffers kept between calls.
#[derive(Clone, Debug, Default)]
pub struct SvdfScratch {
    filters: Vec<f32>,
    q: QuantizedVector,
}

impl SvdfScratch {
    pub fn new() -> Self {
        Self::default()
    }
}

/// Check the weights against the dimensions.
pub fn check_sizes(w: &SvdfWeights<'_>, d: &SvdfDims) -> Result<(), String> {
    if d.rank == 0 || !d.n_filters.is_multiple_of(d.rank) {
        return Err(format!("{} filters do not split into rank {}", d.n_filters, d.rank));
    }
    if w.feature.len() != d.n_filters * d.n_input {
        return Err(format!(
            "weights_feature has {} elements, expected {} x {}",
            w.feature.len(),
            d.n_filters,
            d.n_input
        ));
    }
    if w.time.len() != d.n_filters * d.memory {
        return Err(format!("weights_time has {} elements, expected {} x {}", w.time.len(), d.n_filters, d.memory));
    }
    if let Some(b) = w.bias {
        if b.len() != d.n_units() {
            return Err(format!("bias has {} elements, expected {}", b.len(), d.n_units()));
        }
    }
    Ok(())
}

/// One step: `input` `[batches, n_input]`, `state` `[batches, n_filters ·
/// memory]` updated in place, `output` `[batches, n_units]`.
pub fn svdf(
    w: &SvdfWeights<'_>,
    p: &SvdfParams,
    d: &SvdfDims,
    input: &[f32],
    state: &mut [f32],
    output: &mut [f32],
    scratch: &mut SvdfScratch,
) {
    let (nf, m, nu) = (d.n_filters, d.memory, d.n_units());
    if nu == 0 {
        // No output (and a huge batch of nothing would still loop).
        return;
    }
    if !state.is_empty() {
        state.copy_within(1.., 0);
    }
    let filters = &mut scratch.filters;
    filters.clear();
    filters.resize(nf, 0.0);
    for b in 0..d.batches {
        let x = &input[b * d.n_input..(b + 1) * d.n_input];
        let st = &mut state[b * nf * m..(b + 1) * nf * m];
        filters.fill(0.0);
        mat_vec_acc(w.feature, x, p.asymmetric_quantize_inputs, &mut scratch.q, filters);
        if m > 0 {
            for (f, &v) in filters.iter().enumerate() {
                st[f * m + m - 1] = v;
            }
        }
        for (f, v) in filters.iter_mut().enumerate() {
            let mut dot = 0.0f32;
            for (a, s) in w.time[f * m..(f + 1) * m].iter().zip(&st[f * m..(f + 1) * m]) {
                dot += a * s;
            }
            *v = dot;
        }
        let out = &mut output[b * nu..(b + 1) * nu];
        for (u, o) in out.iter_mut().enumerate() {
            let mut sum = 0.0f32;
            for v in &filters[u * d.rank..(u + 1) * d.rank] {
                sum += v;
            }
            if let Some(bias) = w.bias {
                sum += bias[u];
            }
            *o = p.activation.apply(sum);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: SvdfParams = SvdfParams { activation: RnnActivation::None, asymmetric_quantize_inputs: false };

    /// Two filters of rank 2 (one unit), memory 3, one input feature.
    /// F = [2, -1], T = [[1, 0.5, 0.25], [0, 1, -1]], bias 0.5.
    /// Each step appends 2x and -x to the filters' windows; the unit is
    /// T_0·window_0 + T_1·window_1 + 0.5.
    #[test]
    fn three_steps_by_hand() {
        let (f, t, bias) = ([2.0f32, -1.0], [1.0f32, 0.5, 0.25, 0.0, 1.0, -1.0], [0.5f32]);
        let w = SvdfWeights { feature: RnnWeight::F32(&f), time: &t, bias: Some(&bias) };
        let d = SvdfDims { batches: 1, n_input: 1, n_filters: 2, rank: 2, memory: 3 };
        check_sizes(&w, &d).unwrap();
        let mut state = [0.0f32; 6];
        let mut out = [0.0f32];
        let mut s = SvdfScratch::new();
        // x = 1: windows [0, 0, 2], [0, 0, -1]: 0.25·2 + (-1)(-1) + 0.5 = 2.
        svdf(&w, &NONE, &d, &[1.0], &mut state, &mut out, &mut s);
        assert_eq!(out, [2.0]);
        assert_eq!(state, [0.0, 0.0, 2.0, 0.0, 0.0, -1.0]);
        // x = 3: windows [0, 2, 6], [0, -1, -3]: 1 + 1.5 + (-1 + 3) + 0.5 = 5.
        svdf(&w, &NONE, &d, &[3.0], &mut state, &mut out, &mut s);
        assert_eq!(out, [5.0]);
        // x = -2: windows [2, 6, -4], [-1, -3, 2]: 2 + 3 - 1 + (-3 - 2) + 0.5 = -0.5.
        svdf(&w, &NONE, &d, &[-2.0], &mut state, &mut out, &mut s);
        assert_eq!(out, [-0.5]);
        assert_eq!(state, [2.0, 6.0, -4.0, -1.0, -3.0, 2.0]);
        // Relu, no bias, rank 1 (two units), two batch rows.
        let w = SvdfWeights { bias: None, ..w };
        let d = SvdfDims { batches: 2, rank: 1, ..d };
        let relu = SvdfParams { activation: RnnActivation::Relu, ..NONE };
        let mut state = [0.0f32; 12];
        let mut out = [0.0f32; 4];
        svdf(&w, &relu, &d, &[1.0, -1.0], &mut state, &mut out, &mut s);
        // Row 0: filters 0.25·2 = 0.5 and -1·-1 = 1; row 1: -0.5 and -1.
        assert_eq!(out, [0.5, 1.0, 0.0, 0.0]);
    }

    /// Int8 feature weights: the quantised product (x = [1, -0.5]
    /// quantises to [127, -64] at scale 1/127; W row [100, 50] at scale
    /// 0.01: 12700 - 3200 = 9500 → 9500 / 127 · 0.01).
    #[test]
    fn hybrid_feature_weights() {
        let f = [100i8, 50];
        let t = [1.0f32];
        let w = SvdfWeights { feature: RnnWeight::I8 { data: &f, scale: 0.01 }, time: &t, bias: None };
        let d = SvdfDims { batches: 1, n_input: 2, n_filters: 1, rank: 1, memory: 1 };
        let (mut state, mut out) = ([0.0f32], [0.0f32]);
        svdf(&w, &NONE, &d, &[1.0, -0.5], &mut state, &mut out, &mut SvdfScratch::new());
        let want = 9500.0f32 * (1.0 / 127.0 * 0.01);
        assert_eq!(out, [want]);
        assert_eq!(state, [want]);
    }

    #[test]
    fn sizes_are_checked() {
        let (f, t) = ([1.0f32; 4], [1.0f32; 6]);
        let w = SvdfWeights { feature: RnnWeight::F32(&f), time: &t, bias: None };
        let d = SvdfDims { batches: 1, n_input: 2, n_filters: 2, rank: 2, memory: 3 };
        check_sizes(&w, &d).unwrap();
        assert!(check_sizes(&w, &SvdfDims { rank: 3, ..d }).is_err());
        assert!(check_sizes(&w, &SvdfDims { rank: 0, ..d }).is_err());
        assert!(check_sizes(&w, &SvdfDims { memory: 2, ..d }).is_err());
        let b = [0.0f32; 2];
        assert!(check_sizes(&SvdfWeights { bias: Some(&b), ..w }, &d).is_err());
    }
}
