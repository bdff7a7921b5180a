//! UNIDIRECTIONAL_SEQUENCE_LSTM, float and dynamic-range ("hybrid") weights,
//! with TFLite's step order (`lstm_eval.cc`).
//!
//! One time step for one batch row, with `x` the input row, `h` the output
//! state and `c` the cell state:
//!
//! - each gate `g ∈ {i, f, z, o}` starts from its bias (from 0 with layer
//!   norm), adds `W_g·x` then `R_g·h` (each dot product summed from 0 and then
//!   added), then for `i`/`f` the peephole `p_g ⊙ c_prev`; with layer norm it
//!   is normalised (mean/variance over the cells), scaled by the coefficients
//!   and the bias added; then sigmoid (`i`, `f`, `o`) or the op's activation
//!   (`z`). Without input-gate weights (CIFG) `i = 1 - f`.
//! - `c = f ⊙ c_prev`, then `c += z ⊙ i`, clipped to `±cell_clip` if
//!   `cell_clip > 0`.
//! - the output gate's peephole uses the new `c`.
//! - `m = o ⊙ act(c)`; with projection `h = P·m + b_p` (bias first, then the
//!   product), clipped to `±proj_clip` if `proj_clip > 0`; else `h = m`.
//! - the output row for this step is `h`.
//!
//! Hybrid (int8 weights with one scale each): a vector multiplied by an int8
//! matrix is first quantised per row (symmetric, or asymmetric when
//! `asymmetric_quantize_inputs`), the products are summed in `i32` (minus
//! `row_sum · zero_point`) and the sum added as `f32(acc) · (s_vec · s_w)`.
//! An all-zero vector contributes nothing (TFLite skips it). Int8 peephole
//! weights are dequantised (`w · s_w`) before the product.

use super::hybrid::{asymmetric_quantize_floats, symmetric_quantize_floats};

/// A weight matrix `[rows, cols]` (or a peephole vector `[n_cell]`).
#[derive(Clone, Copy, Debug)]
pub enum LstmWeight<'a> {
    F32(&'a [f32]),
    /// Symmetric int8 with one scale (zero point 0).
    I8 {
        data: &'a [i8],
        scale: f32,
    },
}

impl LstmWeight<'_> {
    fn len(&self) -> usize {
        match self {
            LstmWeight::F32(w) => w.len(),
            LstmWeight::I8 { data, .. } => data.len(),
        }
    }
    fn value(&self, i: usize) -> f32 {
        match self {
            LstmWeight::F32(w) => w[i],
            LstmWeight::I8 { data, scale } => data[i] as f32 * scale,
        }
    }
}

/// Activation of the cell gate and of the cell state before the output gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LstmActivation {
    None,
    Relu,
    ReluN1To1,
    Relu6,
    Tanh,
    Sigmoid,
}

impl LstmActivation {
    #[inline]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            LstmActivation::None => x,
            LstmActivation::Relu => x.max(0.0),
            LstmActivation::ReluN1To1 => x.clamp(-1.0, 1.0),
            LstmActivation::Relu6 => x.clamp(0.0, 6.0),
            LstmActivation::Tanh => x.tanh(),
            LstmActivation::Sigmoid => sigmoid(x),
        }
    }
}

#[inline]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// The op's weights; `None` for absent optional tensors.
#[derive(Clone, Copy, Debug)]
pub struct LstmWeights<'a> {
    /// `[n_cell, n_input]` each; the input gate's is `None` with CIFG.
    pub input_to_input: Option<LstmWeight<'a>>,
    pub input_to_forget: LstmWeight<'a>,
    pub input_to_cell: LstmWeight<'a>,
    pub input_to_output: LstmWeight<'a>,
    /// `[n_cell, n_output]` each.
    pub recurrent_to_input: Option<LstmWeight<'a>>,
    pub recurrent_to_forget: LstmWeight<'a>,
    pub recurrent_to_cell: LstmWeight<'a>,
    pub recurrent_to_output: LstmWeight<'a>,
    /// Peepholes, `[n_cell]` each.
    pub cell_to_input: Option<LstmWeight<'a>>,
    pub cell_to_forget: Option<LstmWeight<'a>>,
    pub cell_to_output: Option<LstmWeight<'a>>,
    /// `[n_cell]` each; absent input-gate bias with CIFG.
    pub input_gate_bias: Option<&'a [f32]>,
    pub forget_gate_bias: &'a [f32],
    pub cell_gate_bias: &'a [f32],
    pub output_gate_bias: &'a [f32],
    /// `[n_output, n_cell]` and `[n_output]`.
    pub projection: Option<LstmWeight<'a>>,
    pub projection_bias: Option<&'a [f32]>,
    /// Layer-norm coefficients, `[n_cell]` each.
    pub input_layer_norm: Option<&'a [f32]>,
    pub forget_layer_norm: Option<&'a [f32]>,
    pub cell_layer_norm: Option<&'a [f32]>,
    pub output_layer_norm: Option<&'a [f32]>,
}

#[derive(Clone, Copy, Debug)]
pub struct LstmParams {
    pub activation: LstmActivation,
    /// 0 = no clipping.
    pub cell_clip: f32,
    pub proj_clip: f32,
    pub asymmetric_quantize_inputs: bool,
}

#[derive(Clone, Copy, Debug)]
pub struct LstmDims {
    pub batches: usize,
    pub time: usize,
    pub n_input: usize,
    pub n_cell: usize,
    pub n_output: usize,
    /// Input/output `[time, batch, ·]` instead of `[batch, time, ·]`.
    pub time_major: bool,
}

/// Per-step buffers, kept between calls.
#[derive(Clone, Debug, Default)]
pub struct LstmScratch {
    gates: [Vec<f32>; 4],
    hidden: Vec<f32>,
    qx: QuantizedRow,
    qh: QuantizedRow,
    qm: QuantizedRow,
}

impl LstmScratch {
    pub fn new() -> Self {
        Self::default()
    }
}

/// A row quantised for the int8 weights, made on first use in a step.
#[derive(Clone, Debug, Default)]
struct QuantizedRow {
    ready: bool,
    zero: bool,
    q: Vec<i8>,
    scale: f32,
    offset: i32,
}

impl QuantizedRow {
    fn prepare(&mut self, v: &[f32], asymmetric: bool) {
        if self.ready {
            return;
        }
        self.ready = true;
        // IsZeroVector compares with `!= 0.0f`.
        self.zero = v.iter().all(|&x| x == 0.0);
        if self.zero {
            return;
        }
        self.q.clear();
        self.q.resize(v.len(), 0);
        if asymmetric {
            let (s, o) = asymmetric_quantize_floats(v, &mut self.q);
            self.scale = s;
            self.offset = o;
        } else {
            let (_, _, s) = symmetric_quantize_floats(v, &mut self.q);
            self.scale = s;
            self.offset = 0;
        }
    }
}

/// `out[r] += W[r]·v` for a `[out.len(), v.len()]` matrix.
fn mat_vec_acc(w: LstmWeight<'_>, v: &[f32], qv: &mut QuantizedRow, asymmetric: bool, out: &mut [f32]) {
    let cols = v.len();
    match w {
        LstmWeight::F32(w) => {
            for (r, o) in out.iter_mut().enumerate() {
                let row = &w[r * cols..(r + 1) * cols];
                let mut dot = 0.0f32;
                for (a, b) in row.iter().zip(v) {
                    dot += a * b;
                }
                *o += dot;
            }
        }
        LstmWeight::I8 { data, scale } => {
            qv.prepare(v, asymmetric);
            if qv.zero {
                return;
            }
            let s = qv.scale * scale;
            for (r, o) in out.iter_mut().enumerate() {
                let row = &data[r * cols..(r + 1) * cols];
                let mut acc = 0i32;
                let mut row_sum = 0i32;
                for (&a, &b) in row.iter().zip(&qv.q) {
                    acc = acc.wrapping_add(a as i32 * b as i32);
                    row_sum = row_sum.wrapping_add(a as i32);
                }
                acc = acc.wrapping_sub(row_sum.wrapping_mul(qv.offset));
                *o += acc as f32 * s;
            }
        }
    }
}

/// TFLite's `MeanStddevNormalization` over one row.
fn mean_stddev_normalize(v: &mut [f32]) {
    let n = v.len() as f32;
    let (mut sum, mut sum_sq) = (0.0f32, 0.0f32);
    for &x in v.iter() {
        sum += x;
        sum_sq += x * x;
    }
    let mean = sum / n;
    let variance = sum_sq / n - mean * mean;
    let inv = if variance == 0.0 { 1.0 / 1e-8f32.sqrt() } else { 1.0 / variance.sqrt() };
    for x in v.iter_mut() {
        *x = (*x - mean) * inv;
    }
}

#[allow(clippy::too_many_arguments)]
fn gate(
    out: &mut [f32],
    wx: LstmWeight<'_>,
    wh: LstmWeight<'_>,
    peephole: Option<(LstmWeight<'_>, &[f32])>,
    layer_norm: Option<&[f32]>,
    bias: Option<&[f32]>,
    x: &[f32],
    h: &[f32],
    scratch_x: &mut QuantizedRow,
    scratch_h: &mut QuantizedRow,
    asymmetric: bool,
    activation: LstmActivation,
) {
    match (layer_norm, bias) {
        (None, Some(b)) => out.copy_from_slice(b),
        _ => out.fill(0.0),
    }
    mat_vec_acc(wx, x, scratch_x, asymmetric, out);
    mat_vec_acc(wh, h, scratch_h, asymmetric, out);
    if let Some((p, c)) = peephole {
        for (k, o) in out.iter_mut().enumerate() {
            *o += p.value(k) * c[k];
        }
    }
    if let Some(coef) = layer_norm {
        mean_stddev_normalize(out);
        for (o, &k) in out.iter_mut().zip(coef) {
            *o *= k;
        }
        if let Some(b) = bias {
            for (o, &k) in out.iter_mut().zip(b) {
                *o += k;
            }
        }
    }
    for o in out.iter_mut() {
        *o = activation.apply(*o);
    }
}

/// Check the weights' sizes against the dimensions.
pub fn check_sizes(w: &LstmWeights<'_>, d: &LstmDims) -> Result<(), String> {
    let (ni, nc, no) = (d.n_input, d.n_cell, d.n_output);
    let want = |name: &str, got: usize, expect: usize| {
        if got == expect {
            Ok(())
        } else {
            Err(format!("{name} has {got} elements, expected {expect}"))
        }
    };
    for (name, m) in [
        ("input_to_input_weights", w.input_to_input),
        ("input_to_forget_weights", Some(w.input_to_forget)),
        ("input_to_cell_weights", Some(w.input_to_cell)),
        ("input_to_output_weights", Some(w.input_to_output)),
    ] {
        if let Some(m) = m {
            want(name, m.len(), nc * ni)?;
        }
    }
    for (name, m) in [
        ("recurrent_to_input_weights", w.recurrent_to_input),
        ("recurrent_to_forget_weights", Some(w.recurrent_to_forget)),
        ("recurrent_to_cell_weights", Some(w.recurrent_to_cell)),
        ("recurrent_to_output_weights", Some(w.recurrent_to_output)),
    ] {
        if let Some(m) = m {
            want(name, m.len(), nc * no)?;
        }
    }
    for (name, m) in
        [("cell_to_input", w.cell_to_input), ("cell_to_forget", w.cell_to_forget), ("cell_to_output", w.cell_to_output)]
    {
        if let Some(m) = m {
            want(name, m.len(), nc)?;
        }
    }
    for (name, b) in [
        ("input_gate_bias", w.input_gate_bias),
        ("forget_gate_bias", Some(w.forget_gate_bias)),
        ("cell_gate_bias", Some(w.cell_gate_bias)),
        ("output_gate_bias", Some(w.output_gate_bias)),
        ("input_layer_norm", w.input_layer_norm),
        ("forget_layer_norm", w.forget_layer_norm),
        ("cell_layer_norm", w.cell_layer_norm),
        ("output_layer_norm", w.output_layer_norm),
    ] {
        if let Some(b) = b {
            want(name, b.len(), nc)?;
        }
    }
    let cifg = w.input_to_input.is_none();
    if cifg != w.recurrent_to_input.is_none() {
        return Err("input_to_input and recurrent_to_input weights must both be present or both absent".into());
    }
    if !cifg && w.input_gate_bias.is_none() && w.input_layer_norm.is_none() {
        return Err("the input gate needs a bias".into());
    }
    if cifg && w.cell_to_input.is_some() {
        return Err("cell_to_input peephole without an input gate".into());
    }
    if w.cell_to_forget.is_some() != w.cell_to_output.is_some() {
        return Err("peepholes cell_to_forget and cell_to_output must both be present or both absent".into());
    }
    match w.projection {
        Some(p) => want("projection_weights", p.len(), no * nc)?,
        None if no != nc => {
            return Err(format!("without projection the output size {no} must equal the cell count {nc}"))
        }
        None => {}
    }
    if w.projection.is_none() && w.projection_bias.is_some() {
        return Err("projection bias without projection weights".into());
    }
    if let Some(b) = w.projection_bias {
        want("projection_bias", b.len(), no)?;
    }
    Ok(())
}

/// Run the whole sequence, updating `output_state` (`[batches, n_output]`)
/// and `cell_state` (`[batches, n_cell]`) in place and writing every step's
/// output state to `output` (same layout as `input`).
#[allow(clippy::too_many_arguments)]
pub fn unidirectional_sequence_lstm(
    w: &LstmWeights<'_>,
    p: &LstmParams,
    d: &LstmDims,
    input: &[f32],
    output_state: &mut [f32],
    cell_state: &mut [f32],
    output: &mut [f32],
    scratch: &mut LstmScratch,
) {
    let (ni, nc, no) = (d.n_input, d.n_cell, d.n_output);
    for g in scratch.gates.iter_mut() {
        g.clear();
        g.resize(nc, 0.0);
    }
    scratch.hidden.clear();
    scratch.hidden.resize(nc, 0.0);
    let asym = p.asymmetric_quantize_inputs;
    for b in 0..d.batches {
        for t in 0..d.time {
            let row = if d.time_major { t * d.batches + b } else { b * d.time + t };
            let x = &input[row * ni..(row + 1) * ni];
            let h = &mut output_state[b * no..(b + 1) * no];
            let c = &mut cell_state[b * nc..(b + 1) * nc];
            let LstmScratch { gates, hidden, qx, qh, qm } = scratch;
            let [ig, fg, zg, og] = gates;
            qx.ready = false;
            qh.ready = false;
            qm.ready = false;
            if let (Some(wx), Some(wh)) = (w.input_to_input, w.recurrent_to_input) {
                gate(
                    ig,
                    wx,
                    wh,
                    w.cell_to_input.map(|pw| (pw, &*c)),
                    w.input_layer_norm,
                    w.input_gate_bias,
                    x,
                    h,
                    qx,
                    qh,
                    asym,
                    LstmActivation::Sigmoid,
                );
            }
            gate(
                fg,
                w.input_to_forget,
                w.recurrent_to_forget,
                w.cell_to_forget.map(|pw| (pw, &*c)),
                w.forget_layer_norm,
                Some(w.forget_gate_bias),
                x,
                h,
                qx,
                qh,
                asym,
                LstmActivation::Sigmoid,
            );
            gate(
                zg,
                w.input_to_cell,
                w.recurrent_to_cell,
                None,
                w.cell_layer_norm,
                Some(w.cell_gate_bias),
                x,
                h,
                qx,
                qh,
                asym,
                p.activation,
            );
            // Cell update.
            let cifg = w.input_to_input.is_none();
            for k in 0..nc {
                let i = if cifg { 1.0 - fg[k] } else { ig[k] };
                let mut v = fg[k] * c[k];
                v += zg[k] * i;
                if p.cell_clip > 0.0 {
                    v = v.clamp(-p.cell_clip, p.cell_clip);
                }
                c[k] = v;
            }
            gate(
                og,
                w.input_to_output,
                w.recurrent_to_output,
                w.cell_to_output.map(|pw| (pw, &*c)),
                w.output_layer_norm,
                Some(w.output_gate_bias),
                x,
                h,
                qx,
                qh,
                asym,
                LstmActivation::Sigmoid,
            );
            for k in 0..nc {
                hidden[k] = og[k] * p.activation.apply(c[k]);
            }
            match w.projection {
                Some(pw) => {
                    match w.projection_bias {
                        Some(pb) => h.copy_from_slice(pb),
                        None => h.fill(0.0),
                    }
                    mat_vec_acc(pw, hidden, qm, asym, h);
                    if p.proj_clip > 0.0 {
                        for v in h.iter_mut() {
                            *v = v.clamp(-p.proj_clip, p.proj_clip);
                        }
                    }
                }
                None => h.copy_from_slice(hidden),
            }
            output[row * no..(row + 1) * no].copy_from_slice(h);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(x: f32) -> f32 {
        1.0 / (1.0 + (-x).exp())
    }

    /// One unit, one input, no projection: two steps by hand.
    #[test]
    fn one_unit_two_steps_by_hand() {
        let (wi, wf, wz, wo) = ([0.5f32], [-0.3f32], [0.8f32], [0.2f32]);
        let (ri, rf, rz, ro) = ([0.1f32], [0.4f32], [-0.6f32], [0.7f32]);
        let (bi, bf, bz, bo) = ([0.05f32], [1.0f32], [0.0f32], [-0.1f32]);
        let w = LstmWeights {
            input_to_input: Some(LstmWeight::F32(&wi)),
            input_to_forget: LstmWeight::F32(&wf),
            input_to_cell: LstmWeight::F32(&wz),
            input_to_output: LstmWeight::F32(&wo),
            recurrent_to_input: Some(LstmWeight::F32(&ri)),
            recurrent_to_forget: LstmWeight::F32(&rf),
            recurrent_to_cell: LstmWeight::F32(&rz),
            recurrent_to_output: LstmWeight::F32(&ro),
            cell_to_input: None,
            cell_to_forget: None,
            cell_to_output: None,
            input_gate_bias: Some(&bi),
            forget_gate_bias: &bf,
            cell_gate_bias: &bz,
            output_gate_bias: &bo,
            projection: None,
            projection_bias: None,
            input_layer_norm: None,
            forget_layer_norm: None,
            cell_layer_norm: None,
            output_layer_norm: None,
        };
        let p = LstmParams {
            activation: LstmActivation::Tanh,
            cell_clip: 0.0,
            proj_clip: 0.0,
            asymmetric_quantize_inputs: false,
        };
        let d = LstmDims { batches: 1, time: 2, n_input: 1, n_cell: 1, n_output: 1, time_major: false };
        check_sizes(&w, &d).unwrap();
        let x = [1.0f32, -2.0];
        let (mut h, mut c, mut out) = ([0.0f32], [0.0f32], [0.0f32; 2]);
        unidirectional_sequence_lstm(&w, &p, &d, &x, &mut h, &mut c, &mut out, &mut LstmScratch::new());
        // By hand, in f64.
        let (mut hh, mut cc) = (0.0f64, 0.0f64);
        let s = |v: f64| 1.0 / (1.0 + (-v).exp());
        for (t, &xt) in x.iter().enumerate() {
            let xt = xt as f64;
            let i = s(0.5 * xt + 0.1 * hh + 0.05);
            let f = s(-0.3 * xt + 0.4 * hh + 1.0);
            let z = (0.8 * xt - 0.6 * hh).tanh();
            cc = f * cc + i * z;
            let o = s(0.2 * xt + 0.7 * hh - 0.1);
            hh = o * cc.tanh();
            assert!((out[t] as f64 - hh).abs() < 1e-6, "step {t}: {} vs {hh}", out[t]);
        }
        assert!((h[0] as f64 - hh).abs() < 1e-6);
        assert!((c[0] as f64 - cc).abs() < 1e-6);
        // Step 1 numbers, written out: i = σ(0.55), f = σ(0.7), z = tanh(0.8),
        // c = i z, o = σ(0.1), h = o tanh(c).
        let c1 = sig(0.55) * 0.8f32.tanh();
        assert!((out[0] - sig(0.1) * c1.tanh()).abs() < 1e-6);
    }

    /// CIFG, peepholes, cell clip and projection with clip, two batches
    /// time-major: compared with a direct f64 formula.
    #[test]
    fn cifg_peephole_projection_clip() {
        let wf = [0.3f32, -0.2];
        let wz = [1.5f32, 0.9];
        let wo = [-0.4f32, 0.6];
        let rf = [0.2f32, 0.1];
        let rz = [0.5f32, -0.5];
        let ro = [0.3f32, 0.3];
        let (pf, po) = ([0.25f32, -0.5], [0.1f32, 0.2]);
        let (bf, bz, bo) = ([0.5f32, 0.5], [0.0f32, 0.1], [0.0f32, 0.0]);
        let proj = [2.0f32, -1.0];
        let pb = [0.1f32];
        let w = LstmWeights {
            input_to_input: None,
            input_to_forget: LstmWeight::F32(&wf),
            input_to_cell: LstmWeight::F32(&wz),
            input_to_output: LstmWeight::F32(&wo),
            recurrent_to_input: None,
            recurrent_to_forget: LstmWeight::F32(&rf),
            recurrent_to_cell: LstmWeight::F32(&rz),
            recurrent_to_output: LstmWeight::F32(&ro),
            cell_to_input: None,
            cell_to_forget: Some(LstmWeight::F32(&pf)),
            cell_to_output: Some(LstmWeight::F32(&po)),
            input_gate_bias: None,
            forget_gate_bias: &bf,
            cell_gate_bias: &bz,
            output_gate_bias: &bo,
            projection: Some(LstmWeight::F32(&proj)),
            projection_bias: Some(&pb),
            input_layer_norm: None,
            forget_layer_norm: None,
            cell_layer_norm: None,
            output_layer_norm: None,
        };
        let p = LstmParams {
            activation: LstmActivation::Tanh,
            cell_clip: 0.7,
            proj_clip: 0.6,
            asymmetric_quantize_inputs: false,
        };
        let d = LstmDims { batches: 2, time: 3, n_input: 1, n_cell: 2, n_output: 1, time_major: true };
        check_sizes(&w, &d).unwrap();
        // [time, batch, 1]
        let x = [1.0f32, -1.0, 2.0, 0.5, -3.0, 1.5];
        let (mut h, mut c, mut out) = ([0.0f32; 2], [0.0f32; 4], [0.0f32; 6]);
        unidirectional_sequence_lstm(&w, &p, &d, &x, &mut h, &mut c, &mut out, &mut LstmScratch::new());
        let s = |v: f64| 1.0 / (1.0 + (-v).exp());
        for b in 0..2 {
            let (mut hh, mut cc) = (0.0f64, [0.0f64; 2]);
            for t in 0..3 {
                let xt = x[t * 2 + b] as f64;
                let mut m = [0.0f64; 2];
                for k in 0..2 {
                    let f = s(wf[k] as f64 * xt + rf[k] as f64 * hh + pf[k] as f64 * cc[k] + bf[k] as f64);
                    let z = (wz[k] as f64 * xt + rz[k] as f64 * hh + bz[k] as f64).tanh();
                    cc[k] = (f * cc[k] + (1.0 - f) * z).clamp(-0.7, 0.7);
                    let o = s(wo[k] as f64 * xt + ro[k] as f64 * hh + po[k] as f64 * cc[k] + bo[k] as f64);
                    m[k] = o * cc[k].tanh();
                }
                hh = (pb[0] as f64 + proj[0] as f64 * m[0] + proj[1] as f64 * m[1]).clamp(-0.6, 0.6);
                let got = out[t * 2 + b] as f64;
                assert!((got - hh).abs() < 1e-6, "batch {b} step {t}: {got} vs {hh}");
            }
            assert!((h[b] as f64 - hh).abs() < 1e-6);
        }
    }

    /// Int8 weights: the integer dot product rescaled, as the float product
    /// of the dequantised weights with the quantised input.
    #[test]
    fn hybrid_matvec_matches_dequantized_product() {
        let w = [10i8, -20, 30, 127, -127, 5];
        let v = [0.5f32, -1.0, 0.25];
        for asym in [false, true] {
            let mut q = QuantizedRow::default();
            let mut out = [1.0f32, 2.0];
            mat_vec_acc(LstmWeight::I8 { data: &w, scale: 0.01 }, &v, &mut q, asym, &mut out);
            for r in 0..2 {
                let exact: f32 = (0..3).map(|k| w[r * 3 + k] as f32 * 0.01 * v[k]).sum::<f32>() + [1.0, 2.0][r];
                assert!((out[r] - exact).abs() < 0.02, "asym {asym} row {r}: {} vs {exact}", out[r]);
            }
        }
    }
}
