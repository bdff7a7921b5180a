//! RNN, UNIDIRECTIONAL_SEQUENCE_RNN and BIDIRECTIONAL_SEQUENCE_RNN: TFLite's
//! basic (Elman) recurrent cell, float or with dynamic-range int8 weights
//! (`kernel_utils::RnnBatchStep`).
//!
//! One step for one batch row, with `x` the input row and `h` the hidden
//! state: `y = act(b + W·x + R·h)` (the bias first, then each product summed
//! from 0 and added), then `h = y`. `W` is `[n_units, n_input]`, `R`
//! `[n_units, n_units]`.
//!
//! Hybrid (int8 weights with one scale each): the vector multiplied by an
//! int8 matrix is quantised (symmetric, or asymmetric with
//! `asymmetric_quantize_inputs`), the products summed in `i32` (minus
//! `row_sum · offset`) and added as `f32(acc) · (s_vector · s_weights)`. An
//! all-zero vector adds nothing (TFLite skips it).

use super::hybrid::{asymmetric_quantize_floats, symmetric_quantize_floats};

/// A weight matrix `[rows, cols]`, float or symmetric int8 with one scale.
#[derive(Clone, Copy, Debug)]
pub enum RnnWeight<'a> {
    F32(&'a [f32]),
    I8 { data: &'a [i8], scale: f32 },
}

impl RnnWeight<'_> {
    pub fn len(&self) -> usize {
        match self {
            RnnWeight::F32(w) => w.len(),
            RnnWeight::I8 { data, .. } => data.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The fused activations TFLite's `ApplyActivationToVector` knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RnnActivation {
    None,
    Relu,
    ReluN1To1,
    Relu6,
    Tanh,
    /// 1 where the sign bit is set (negative numbers and -0), else 0.
    SignBit,
}

impl RnnActivation {
    #[inline]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            RnnActivation::None => x,
            RnnActivation::Relu => x.max(0.0),
            RnnActivation::ReluN1To1 => x.clamp(-1.0, 1.0),
            RnnActivation::Relu6 => x.clamp(0.0, 6.0),
            RnnActivation::Tanh => x.tanh(),
            RnnActivation::SignBit => {
                if x.is_sign_negative() {
                    1.0
                } else {
                    0.0
                }
            }
        }
    }
}

/// A vector quantised for an int8 matrix.
#[derive(Clone, Debug, Default)]
pub struct QuantizedVector {
    q: Vec<i8>,
}

/// `out[r] += M[r]·v` for an `[out.len(), v.len()]` matrix.
pub fn mat_vec_acc(m: RnnWeight<'_>, v: &[f32], asymmetric: bool, scratch: &mut QuantizedVector, out: &mut [f32]) {
    let cols = v.len();
    match m {
        RnnWeight::F32(w) => {
            for (r, o) in out.iter_mut().enumerate() {
                let mut dot = 0.0f32;
                for (a, b) in w[r * cols..(r + 1) * cols].iter().zip(v) {
                    dot += a * b;
                }
                *o += dot;
            }
        }
        RnnWeight::I8 { data, scale } => {
            // `IsZeroVector` compares with `!= 0.0f`.
            if v.iter().all(|&x| x == 0.0) {
                return;
            }
            let q = &mut scratch.q;
            q.clear();
            q.resize(cols, 0);
            let (s, offset) =
                if asymmetric { asymmetric_quantize_floats(v, q) } else { (symmetric_quantize_floats(v, q).2, 0) };
            let s = s * scale;
            for (r, o) in out.iter_mut().enumerate() {
                let row = &data[r * cols..(r + 1) * cols];
                let (mut acc, mut row_sum) = (0i32, 0i32);
                for (&a, &b) in row.iter().zip(q.iter()) {
                    acc = acc.wrapping_add(a as i32 * b as i32);
                    row_sum = row_sum.wrapping_add(a as i32);
                }
                acc = acc.wrapping_sub(row_sum.wrapping_mul(offset));
                *o += acc as f32 * s;
            }
        }
    }
}

/// One direction's weights.
#[derive(Clone, Copy, Debug)]
pub struct RnnCell<'a> {
    /// `[n_units, n_input]`.
    pub input_weights: RnnWeight<'a>,
    /// `[n_units, n_units]`.
    pub recurrent_weights: RnnWeight<'a>,
    /// `[n_units]`.
    pub bias: &'a [f32],
}

impl RnnCell<'_> {
    pub fn n_units(&self) -> usize {
        self.bias.len()
    }

    /// Check the weights against `n_input` and the bias' `n_units`.
    pub fn check(&self, n_input: usize) -> Result<(), String> {
        let n = self.n_units();
        if self.input_weights.len() != n * n_input {
            return Err(format!("input weights have {} elements, expected {n} x {n_input}", self.input_weights.len()));
        }
        if self.recurrent_weights.len() != n * n {
            return Err(format!(
                "recurrent weights have {} elements, expected {n} x {n}",
                self.recurrent_weights.len()
            ));
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug)]
pub struct RnnParams {
    pub activation: RnnActivation,
    pub asymmetric_quantize_inputs: bool,
}

/// A sequence's layout: `[batches, time, ·]`, or `[time, batches, ·]` when
/// `time_major`.
#[derive(Clone, Copy, Debug)]
pub struct SequenceDims {
    pub batches: usize,
    pub time: usize,
    pub n_input: usize,
    pub time_major: bool,
}

impl SequenceDims {
    /// The row of step `t` of batch entry `b`.
    #[inline]
    pub fn row(&self, b: usize, t: usize) -> usize {
        if self.time_major {
            t * self.batches + b
        } else {
            b * self.time + t
        }
    }
}

/// Buffers kept between calls.
#[derive(Clone, Debug, Default)]
pub struct RnnScratch {
    q: QuantizedVector,
}

impl RnnScratch {
    pub fn new() -> Self {
        Self::default()
    }
}

/// One step of one batch row: `y = act(b + W·x + R·h)`, then `h = y`.
pub fn rnn_step(cell: &RnnCell<'_>, p: &RnnParams, x: &[f32], h: &mut [f32], y: &mut [f32], scratch: &mut RnnScratch) {
    let asym = p.asymmetric_quantize_inputs;
    y.copy_from_slice(cell.bias);
    mat_vec_acc(cell.input_weights, x, asym, &mut scratch.q, y);
    mat_vec_acc(cell.recurrent_weights, h, asym, &mut scratch.q, y);
    for v in y.iter_mut() {
        *v = p.activation.apply(*v);
    }
    h.copy_from_slice(y);
}

/// Run one direction over the sequence (backwards in time if `reverse`),
/// writing step `t`'s output to `output[row(b, t) · stride + offset ..]`.
#[allow(clippy::too_many_arguments)]
fn run_direction(
    cell: &RnnCell<'_>,
    p: &RnnParams,
    d: &SequenceDims,
    input: &[f32],
    hidden: &mut [f32],
    output: &mut [f32],
    stride: usize,
    offset: usize,
    reverse: bool,
    scratch: &mut RnnScratch,
) {
    let (ni, nu) = (d.n_input, cell.n_units());
    if d.time == 0 || nu == 0 {
        // Nothing to compute (and a huge batch of nothing would still loop).
        return;
    }
    for b in 0..d.batches {
        let h = &mut hidden[b * nu..(b + 1) * nu];
        for s in 0..d.time {
            let t = if reverse { d.time - 1 - s } else { s };
            let row = d.row(b, t);
            let x = &input[row * ni..(row + 1) * ni];
            let at = row * stride + offset;
            rnn_step(cell, p, x, h, &mut output[at..at + nu], scratch);
        }
    }
}

/// UNIDIRECTIONAL_SEQUENCE_RNN (and RNN, a sequence of one step): `hidden`
/// (`[batches, n_units]`) is updated in place, every step's output written
/// to `output` (the input's layout with `n_units` features).
pub fn unidirectional_sequence_rnn(
    cell: &RnnCell<'_>,
    p: &RnnParams,
    d: &SequenceDims,
    input: &[f32],
    hidden: &mut [f32],
    output: &mut [f32],
    scratch: &mut RnnScratch,
) {
    let nu = cell.n_units();
    run_direction(cell, p, d, input, hidden, output, nu, 0, false, scratch);
}

/// BIDIRECTIONAL_SEQUENCE_RNN: the forward cell over the sequence, then the
/// backward cell from the last step to the first; each output row `t` is
/// the state after that direction's step `t`. With `bw_output` `None` the
/// outputs are merged: `fw_output` rows are `[forward | backward]`.
#[allow(clippy::too_many_arguments)]
pub fn bidirectional_sequence_rnn(
    fw: &RnnCell<'_>,
    bw: &RnnCell<'_>,
    p: &RnnParams,
    d: &SequenceDims,
    input: &[f32],
    fw_hidden: &mut [f32],
    bw_hidden: &mut [f32],
    fw_output: &mut [f32],
    bw_output: Option<&mut [f32]>,
    scratch: &mut RnnScratch,
) {
    let (nf, nb) = (fw.n_units(), bw.n_units());
    match bw_output {
        Some(bw_out) => {
            run_direction(fw, p, d, input, fw_hidden, fw_output, nf, 0, false, scratch);
            run_direction(bw, p, d, input, bw_hidden, bw_out, nb, 0, true, scratch);
        }
        None => {
            run_direction(fw, p, d, input, fw_hidden, fw_output, nf + nb, 0, false, scratch);
            run_direction(bw, p, d, input, bw_hidden, fw_output, nf + nb, nf, true, scratch);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: RnnParams = RnnParams { activation: RnnActivation::None, asymmetric_quantize_inputs: false };

    /// Two units, two inputs, no activation, two steps, by hand:
    /// W = [[1, 2], [0, -1]], R = [[0.5, 0], [1, 1]], b = [0.1, -0.2].
    /// x0 = [1, 1]: y0 = b + W x0 = [3.1, -1.2] (h starts at 0).
    /// x1 = [0, 2]: W x1 = [4, -2]; R y0 = [1.55, 1.9];
    /// y1 = [0.1 + 4 + 1.55, -0.2 - 2 + 1.9] = [5.65, -0.3].
    #[test]
    fn two_steps_by_hand() {
        let (w, r, b) = ([1.0f32, 2.0, 0.0, -1.0], [0.5f32, 0.0, 1.0, 1.0], [0.1f32, -0.2]);
        let cell = RnnCell { input_weights: RnnWeight::F32(&w), recurrent_weights: RnnWeight::F32(&r), bias: &b };
        cell.check(2).unwrap();
        let d = SequenceDims { batches: 1, time: 2, n_input: 2, time_major: false };
        let (mut h, mut y) = ([0.0f32; 2], [0.0f32; 4]);
        unidirectional_sequence_rnn(&cell, &NONE, &d, &[1.0, 1.0, 0.0, 2.0], &mut h, &mut y, &mut RnnScratch::new());
        let want = [3.1f32, -1.2, 5.65, -0.3];
        for (g, w) in y.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{y:?} vs {want:?}");
        }
        assert_eq!(h, [y[2], y[3]]);
        // Relu on the same input: y0 = [3.1, 0]; R y0 = [1.55, 3.1];
        // y1 = relu([5.65, 0.9]).
        let relu = RnnParams { activation: RnnActivation::Relu, ..NONE };
        let mut h = [0.0f32; 2];
        unidirectional_sequence_rnn(&cell, &relu, &d, &[1.0, 1.0, 0.0, 2.0], &mut h, &mut y, &mut RnnScratch::new());
        let want = [3.1f32, 0.0, 5.65, 0.9];
        for (g, w) in y.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{y:?} vs {want:?}");
        }
    }

    /// Time-major and batch-major layouts of the same two sequences give
    /// the same per-sequence results, and each batch entry has its state.
    #[test]
    fn time_major_matches_batch_major() {
        let (w, r, b) = ([0.3f32, -0.7], [0.9f32], [0.05f32]);
        let cell = RnnCell { input_weights: RnnWeight::F32(&w), recurrent_weights: RnnWeight::F32(&r), bias: &b };
        let tanh = RnnParams { activation: RnnActivation::Tanh, ..NONE };
        // Batch-major [2, 3, 2].
        let xb = [1.0f32, 0.0, 0.5, -1.0, 0.2, 0.2, -1.0, 1.0, 0.0, 0.0, 2.0, -0.5];
        let mut xt = [0.0f32; 12];
        for bi in 0..2 {
            for t in 0..3 {
                xt[(t * 2 + bi) * 2..][..2].copy_from_slice(&xb[(bi * 3 + t) * 2..][..2]);
            }
        }
        let (mut hb, mut yb) = ([0.0f32; 2], [0.0f32; 6]);
        let db = SequenceDims { batches: 2, time: 3, n_input: 2, time_major: false };
        unidirectional_sequence_rnn(&cell, &tanh, &db, &xb, &mut hb, &mut yb, &mut RnnScratch::new());
        let (mut ht, mut yt) = ([0.0f32; 2], [0.0f32; 6]);
        let dt = SequenceDims { time_major: true, ..db };
        unidirectional_sequence_rnn(&cell, &tanh, &dt, &xt, &mut ht, &mut yt, &mut RnnScratch::new());
        assert_eq!(hb, ht);
        for bi in 0..2 {
            let mut hh = 0.0f64;
            for t in 0..3 {
                let x = &xb[(bi * 3 + t) * 2..][..2];
                hh = (0.05 + 0.3 * x[0] as f64 - 0.7 * x[1] as f64 + 0.9 * hh).tanh();
                assert!((yb[bi * 3 + t] as f64 - hh).abs() < 1e-6);
                assert_eq!(yb[bi * 3 + t], yt[t * 2 + bi]);
            }
        }
    }

    /// One unit, identity weights: the backward direction's output at step
    /// t sums the inputs from t to the end; merged rows are [fw | bw].
    #[test]
    fn bidirectional_runs_backward_and_merges() {
        let one = [1.0f32];
        let zero = [0.0f32];
        let cell =
            RnnCell { input_weights: RnnWeight::F32(&one), recurrent_weights: RnnWeight::F32(&one), bias: &zero };
        let d = SequenceDims { batches: 1, time: 3, n_input: 1, time_major: false };
        let x = [1.0f32, 2.0, 4.0];
        let (mut fh, mut bh) = ([0.0f32], [0.0f32]);
        let (mut fo, mut bo) = ([0.0f32; 3], [0.0f32; 3]);
        let mut s = RnnScratch::new();
        bidirectional_sequence_rnn(&cell, &cell, &NONE, &d, &x, &mut fh, &mut bh, &mut fo, Some(&mut bo), &mut s);
        assert_eq!(fo, [1.0, 3.0, 7.0]);
        assert_eq!(bo, [7.0, 6.0, 4.0]);
        assert_eq!((fh, bh), ([7.0], [7.0]));
        let (mut fh, mut bh, mut merged) = ([0.0f32], [0.0f32], [0.0f32; 6]);
        bidirectional_sequence_rnn(&cell, &cell, &NONE, &d, &x, &mut fh, &mut bh, &mut merged, None, &mut s);
        assert_eq!(merged, [1.0, 7.0, 3.0, 6.0, 7.0, 4.0]);
    }

    /// Int8 weights: symmetric quantisation of x = [0.5, -1] gives
    /// q = [64, -127] (scale 1/127); with W = [[10, -20]] at scale 0.1 the
    /// sum is 640 + 2540 = 3180, times (1/127 · 0.1) = 2.50394. The float
    /// product of the dequantised weights is 0.5 + 2 = 2.5.
    #[test]
    fn hybrid_step_by_hand() {
        let w = [10i8, -20];
        let r = [0i8];
        let b = [0.0f32];
        let cell = RnnCell {
            input_weights: RnnWeight::I8 { data: &w, scale: 0.1 },
            recurrent_weights: RnnWeight::I8 { data: &r, scale: 1.0 },
            bias: &b,
        };
        let (mut h, mut y) = ([0.0f32], [0.0f32]);
        rnn_step(&cell, &NONE, &[0.5, -1.0], &mut h, &mut y, &mut RnnScratch::new());
        let want = 3180.0f32 * (1.0 / 127.0 * 0.1);
        assert!((y[0] - want).abs() < 1e-6, "{} vs {want}", y[0]);
        // Asymmetric: close to the float product too.
        let asym = RnnParams { asymmetric_quantize_inputs: true, ..NONE };
        let mut h = [0.0f32];
        rnn_step(&cell, &asym, &[0.5, -1.0], &mut h, &mut y, &mut RnnScratch::new());
        assert!((y[0] - 2.5).abs() < 0.02, "{}", y[0]);
        // A zero vector adds nothing: the bias stays.
        let b = [0.25f32];
        let cell = RnnCell { bias: &b, ..cell };
        let mut h = [0.0f32];
        rnn_step(&cell, &NONE, &[0.0, 0.0], &mut h, &mut y, &mut RnnScratch::new());
        assert_eq!(y, [0.25]);
    }

    #[test]
    fn activations() {
        use RnnActivation::*;
        assert_eq!(Relu6.apply(7.0), 6.0);
        assert_eq!(ReluN1To1.apply(-3.0), -1.0);
        assert_eq!(SignBit.apply(-0.0), 1.0);
        assert_eq!(SignBit.apply(2.0), 0.0);
        assert_eq!(None.apply(-2.5), -2.5);
    }

    #[test]
    fn sizes_are_checked() {
        let (w, r, b) = ([1.0f32; 3], [1.0f32; 4], [0.0f32; 2]);
        let cell = RnnCell { input_weights: RnnWeight::F32(&w), recurrent_weights: RnnWeight::F32(&r), bias: &b };
        assert!(cell.check(2).is_err());
        let w = [1.0f32; 4];
        let r3 = [1.0f32; 3];
        let cell = RnnCell { input_weights: RnnWeight::F32(&w), recurrent_weights: RnnWeight::F32(&r3), bias: &b };
        assert!(cell.check(2).is_err());
    }
}
