//! BIDIRECTIONAL_SEQUENCE_LSTM: two LSTMs over one sequence, the forward one
//! from the first step to the last and the backward one from the last to
//! the first (TFLite's `lstm_eval` with `forward_sequence` false), each with
//! its own weights and state. Output row `t` of each direction is its
//! output state after its step `t`; merged, a row is `[forward | backward]`.
//!
//! Both directions run [`unidirectional_sequence_lstm`], the backward one on
//! a time-reversed copy of its input, its outputs reversed back: the cell
//! arithmetic is that kernel's, float or hybrid.

use super::lstm::{unidirectional_sequence_lstm, LstmDims, LstmParams, LstmScratch, LstmWeights};

/// Buffers kept between calls.
#[derive(Clone, Debug, Default)]
pub struct BidirectionalLstmScratch {
    lstm: LstmScratch,
    reversed: Vec<f32>,
    out: Vec<f32>,
}

impl BidirectionalLstmScratch {
    pub fn new() -> Self {
        Self::default()
    }
}

/// The row of step `t` of batch entry `b`.
fn row(d: &LstmDims, b: usize, t: usize) -> usize {
    if d.time_major {
        t * d.batches + b
    } else {
        b * d.time + t
    }
}

/// One direction's weights and state (`[batches, n_output]` and
/// `[batches, n_cell]`, updated in place).
pub struct LstmDirection<'a, 'w> {
    pub weights: &'a LstmWeights<'w>,
    pub dims: LstmDims,
    pub output_state: &'a mut [f32],
    pub cell_state: &'a mut [f32],
}

/// Run both directions. `bw_input` is `input` except where the backward
/// cell reads another sequence (TFLite's aux input without aux weights).
/// With `bw_output` `None` the outputs are merged into `fw_output`
/// (`n_output` of both directions per row).
#[allow(clippy::too_many_arguments)]
pub fn bidirectional_sequence_lstm(
    fw: LstmDirection<'_, '_>,
    bw: LstmDirection<'_, '_>,
    p: &LstmParams,
    input: &[f32],
    bw_input: &[f32],
    fw_output: &mut [f32],
    bw_output: Option<&mut [f32]>,
    scratch: &mut BidirectionalLstmScratch,
) {
    let (nf, nb) = (fw.dims.n_output, bw.dims.n_output);
    let rows = fw.dims.batches * fw.dims.time;
    if rows == 0 {
        return;
    }
    let BidirectionalLstmScratch { lstm, reversed, out } = scratch;
    match bw_output {
        Some(_) => unidirectional_sequence_lstm(
            fw.weights,
            p,
            &fw.dims,
            input,
            fw.output_state,
            fw.cell_state,
            fw_output,
            lstm,
        ),
        None => {
            out.clear();
            out.resize(rows * nf, 0.0);
            unidirectional_sequence_lstm(fw.weights, p, &fw.dims, input, fw.output_state, fw.cell_state, out, lstm);
            for r in 0..rows {
                fw_output[r * (nf + nb)..][..nf].copy_from_slice(&out[r * nf..(r + 1) * nf]);
            }
        }
    }

    let d = bw.dims;
    let ni = d.n_input;
    reversed.clear();
    reversed.resize(rows * ni, 0.0);
    for b in 0..d.batches {
        for t in 0..d.time {
            let (to, from) = (row(&d, b, t), row(&d, b, d.time - 1 - t));
            reversed[to * ni..(to + 1) * ni].copy_from_slice(&bw_input[from * ni..(from + 1) * ni]);
        }
    }
    out.clear();
    out.resize(rows * nb, 0.0);
    unidirectional_sequence_lstm(bw.weights, p, &d, reversed, bw.output_state, bw.cell_state, out, lstm);
    let (dst, stride, offset) = match bw_output {
        Some(o) => (o, nb, 0),
        None => (fw_output, nf + nb, nf),
    };
    for b in 0..d.batches {
        for t in 0..d.time {
            let (to, from) = (row(&d, b, t), row(&d, b, d.time - 1 - t));
            dst[to * stride + offset..][..nb].copy_from_slice(&out[from * nb..(from + 1) * nb]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::lstm::{LstmActivation, LstmWeight};
    use super::*;

    fn sig(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    /// A one-unit LSTM with scalar weights `[wi, wf, wz, wo]`, recurrent
    /// `[ri, rf, rz, ro]` and biases `[bi, bf, bz, bo]`, by hand in f64.
    fn by_hand(w: [f32; 4], r: [f32; 4], b: [f32; 4], xs: &[f32]) -> Vec<f64> {
        let (mut h, mut c) = (0.0f64, 0.0f64);
        let g = |k: usize, x: f64, h: f64| w[k] as f64 * x + r[k] as f64 * h + b[k] as f64;
        xs.iter()
            .map(|&x| {
                let x = x as f64;
                let (i, f, z, o) = (sig(g(0, x, h)), sig(g(1, x, h)), g(2, x, h).tanh(), sig(g(3, x, h)));
                c = f * c + i * z;
                h = o * c.tanh();
                h
            })
            .collect()
    }

    fn weights<'a>(w: &'a [f32; 4], r: &'a [f32; 4], b: &'a [f32; 4]) -> LstmWeights<'a> {
        LstmWeights {
            input_to_input: Some(LstmWeight::F32(&w[0..1])),
            input_to_forget: LstmWeight::F32(&w[1..2]),
            input_to_cell: LstmWeight::F32(&w[2..3]),
            input_to_output: LstmWeight::F32(&w[3..4]),
            recurrent_to_input: Some(LstmWeight::F32(&r[0..1])),
            recurrent_to_forget: LstmWeight::F32(&r[1..2]),
            recurrent_to_cell: LstmWeight::F32(&r[2..3]),
            recurrent_to_output: LstmWeight::F32(&r[3..4]),
            cell_to_input: None,
            cell_to_forget: None,
            cell_to_output: None,
            input_gate_bias: Some(&b[0..1]),
            forget_gate_bias: &b[1..2],
            cell_gate_bias: &b[2..3],
            output_gate_bias: &b[3..4],
            projection: None,
            projection_bias: None,
            input_layer_norm: None,
            forget_layer_norm: None,
            cell_layer_norm: None,
            output_layer_norm: None,
        }
    }

    /// Forward = the cell over x; backward = the cell over reversed x,
    /// reversed back; two batch entries, both layouts, merged or not.
    #[test]
    fn backward_runs_the_reversed_sequence() {
        let (fw_w, fw_r, fw_b) = ([0.5f32, -0.3, 0.8, 0.2], [0.1f32, 0.4, -0.6, 0.7], [0.05f32, 1.0, 0.0, -0.1]);
        let (bw_w, bw_r, bw_b) = ([-0.4f32, 0.6, 1.1, -0.2], [0.3f32, -0.2, 0.5, 0.1], [0.0f32, 0.5, 0.2, 0.3]);
        let (fww, bww) = (weights(&fw_w, &fw_r, &fw_b), weights(&bw_w, &bw_r, &bw_b));
        let p = LstmParams {
            activation: LstmActivation::Tanh,
            cell_clip: 0.0,
            proj_clip: 0.0,
            asymmetric_quantize_inputs: false,
        };
        let seqs = [[1.0f32, -2.0, 0.5, 1.5], [0.3, 0.0, -1.0, 2.0]];
        for time_major in [false, true] {
            let d = LstmDims { batches: 2, time: 4, n_input: 1, n_cell: 1, n_output: 1, time_major };
            let mut x = [0.0f32; 8];
            for (b, s) in seqs.iter().enumerate() {
                for (t, &v) in s.iter().enumerate() {
                    x[row(&d, b, t)] = v;
                }
            }
            for merged in [false, true] {
                let mut st = [[0.0f32; 2]; 4];
                let [fh, fc, bh, bc] = &mut st;
                let (mut fo, mut bo) = ([0.0f32; 16], [0.0f32; 8]);
                let fw = LstmDirection { weights: &fww, dims: d, output_state: fh, cell_state: fc };
                let bw = LstmDirection { weights: &bww, dims: d, output_state: bh, cell_state: bc };
                let mut s = BidirectionalLstmScratch::new();
                if merged {
                    bidirectional_sequence_lstm(fw, bw, &p, &x, &x, &mut fo, None, &mut s);
                } else {
                    bidirectional_sequence_lstm(fw, bw, &p, &x, &x, &mut fo[..8], Some(&mut bo), &mut s);
                }
                for (b, s) in seqs.iter().enumerate() {
                    let f = by_hand(fw_w, fw_r, fw_b, s);
                    let rev: Vec<f32> = s.iter().rev().copied().collect();
                    let mut k = by_hand(bw_w, bw_r, bw_b, &rev);
                    k.reverse();
                    for t in 0..4 {
                        let r = row(&d, b, t);
                        let (got_f, got_b) = if merged { (fo[r * 2], fo[r * 2 + 1]) } else { (fo[r], bo[r]) };
                        assert!(
                            (got_f as f64 - f[t]).abs() < 1e-6,
                            "time_major {time_major} merged {merged} fw b{b} t{t}"
                        );
                        assert!(
                            (got_b as f64 - k[t]).abs() < 1e-6,
                            "time_major {time_major} merged {merged} bw b{b} t{t}"
                        );
                    }
                    // The state left is after each direction's last step.
                    assert!((st[0][b] as f64 - f[3]).abs() < 1e-6);
                    assert!((st[2][b] as f64 - k[0]).abs() < 1e-6);
                }
            }
        }
    }
}
