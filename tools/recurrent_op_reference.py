#!/usr/bin/env python3
"""Expected outputs of the hand-built recurrent models in
crates/ferrolite/tests/recurrent_and_variable_ops.rs (SVDF, RNN,
UNIDIRECTIONAL_SEQUENCE_RNN, BIDIRECTIONAL_SEQUENCE_RNN/LSTM), which
TensorFlow's converter never emits.

usage: FERROLITE_DUMP=DIR cargo test -p ferrolite --test recurrent_and_variable_ops -- --ignored dump
       python tools/recurrent_op_reference.py DIR > consts.rs

For each model written to DIR, numpy computes the outputs of several
invokes in float64 from the model's float32 weights (state carried from
invoke to invoke; the hybrid models' input quantisation emulated in float32
as TFLite's SymmetricQuantizeFloats / AsymmetricQuantizeFloats do it), and
LiteRT's reference kernels run the same file on the same inputs. It prints
the numpy outputs as the test's Rust constants, each with the largest
numpy-vs-LiteRT difference. Inputs are the test's `wave` formula; the
options (rank, activation, layout) are the test builders'.
"""
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import numpy as np
from ai_edge_litert import interpreter as litert

D = sys.argv[1]
f32 = np.float32

def wave(n, seed):
    return np.array([((i * 7 + seed * 5) % 13) / 8.0 - 0.75 for i in range(n)], np.float32)

def away(v):
    return np.sign(v) * np.floor(np.abs(v) + 0.5)

def quant_sym(x):
    x = x.astype(np.float32)
    rng = max(abs(f32(x.min())), abs(f32(x.max())))
    if rng == 0:
        return np.zeros(len(x), np.int64), f32(1), 0
    sf = f32(rng) / f32(127)
    inv = f32(127) / f32(rng)
    q = np.clip(away((x * inv).astype(np.float32)), -127, 127).astype(np.int64)
    return q, sf, 0

def quant_asym(x):
    x = x.astype(np.float32)
    rmin = min(0.0, float(x.min())); rmax = max(0.0, float(x.max()))
    if rmin == rmax:
        return np.zeros(len(x), np.int64), f32(1), 0
    scale = (rmax - rmin) / 255.0
    zmin = -128 - rmin / scale; zmax = 127 - rmax / scale
    emin = 128 + abs(rmin / scale); emax = 127 + abs(rmax / scale)
    zp = zmin if emin < emax else zmax
    off = -128 if zp <= -128 else 127 if zp >= 127 else int(away(zp))
    sf = f32(scale)
    inv = f32(1.0 / float(sf))
    q = np.clip(away((f32(off) + x * inv).astype(np.float32)), -128, 127).astype(np.int64)
    return q, sf, off

class M:
    def __init__(self, name):
        self.path = f"{D}/{name}.tflite"
        self.it = litert.Interpreter(model_path=self.path, experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF)
        self.it.allocate_tensors()
        self.op = self.it._get_ops_details()[0]
        self.details = {d["index"]: d for d in self.it.get_tensor_details()}
    def w(self, k):
        i = self.op["inputs"][k]
        if i < 0:
            return None
        return self.it.get_tensor(i)
    def scale(self, k):
        return f32(self.details[self.op["inputs"][k]]["quantization"][0])
    def litert(self, xs_per_invoke):
        it = litert.Interpreter(model_path=self.path, experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF)
        it.allocate_tensors()
        outs = []
        for xs in xs_per_invoke:
            for d, x in zip(it.get_input_details(), xs):
                it.set_tensor(d["index"], x.reshape(d["shape"]))
            it.invoke()
            outs.append([it.get_tensor(d["index"]).copy() for d in it.get_output_details()])
        return outs

def matvec(W, x, hybrid, asym, wscale):
    """W @ x, float64; hybrid: TFLite's quantised product."""
    if not hybrid:
        return W.astype(np.float64) @ x.astype(np.float64)
    if not np.any(x != 0):
        return np.zeros(W.shape[0])
    q, sf, off = (quant_asym if asym else quant_sym)(x)
    acc = W.astype(np.int64) @ q - W.astype(np.int64).sum(axis=1) * off
    s = f32(sf * wscale)
    return (acc.astype(np.float32) * s).astype(np.float64)

def report(name, ours, lite):
    d = max(float(np.max(np.abs(np.asarray(a, np.float64).ravel() - np.asarray(b, np.float64).ravel())))
            for oa, ob in zip(ours, lite) for a, b in zip(oa, ob))
    print(f"/// numpy; LiteRT 2.3 (BUILTIN_REF) within {d:.2e}.")
    print(f"const {name.upper()}: &[&[&[f64]]] = &[")
    for outs in ours:
        print("    &[")
        for o in outs:
            vals = ", ".join(rust_float(v) for v in np.asarray(o, np.float64).ravel())
            print(f"        &[{vals}],")
        print("    ],")
    print("];")
    print()

def rust_float(v):
    s = f"{v:.7}"
    return s if ("." in s or "e" in s) else s + ".0"

# ---- SVDF
def svdf(name, hybrid):
    m = M(name)
    rank, mem = 2, 3
    Wf, Wt, b = m.w(1), m.w(2), m.w(3).astype(np.float64)
    if hybrid:
        Tw = (Wt.astype(np.float32) * m.scale(2)).astype(np.float64)
    else:
        Tw = Wt.astype(np.float64)
    F = Wf.shape[0]
    S = np.zeros((2, F, mem))
    xs = [wave(6, 10 + k) for k in range(3)]
    ours = []
    for x in xs:
        x = x.reshape(2, 3)
        out = np.zeros((2, F // rank))
        for bi in range(2):
            S[bi] = np.roll(S[bi], -1, axis=1)
            S[bi, :, -1] = matvec(Wf, x[bi], hybrid, False, m.scale(1) if hybrid else 1)
            a = (Tw * S[bi]).sum(axis=1)
            out[bi] = a.reshape(-1, rank).sum(axis=1) + b
            if hybrid: out[bi] = np.maximum(out[bi], 0)
        ours.append([out])
    report(name, ours, m.litert([[x] for x in xs]))

# ---- RNN
def rnn(name, hybrid, asym):
    m = M(name)
    W, R, b = m.w(1), m.w(2), m.w(3).astype(np.float64)
    h = np.zeros((2, 4))
    xs = [wave(6, 20 + k) for k in range(2)]
    ours = []
    for x in xs:
        x = x.reshape(2, 3)
        y = np.zeros((2, 4))
        for bi in range(2):
            y[bi] = np.tanh(b + matvec(W, x[bi], hybrid, asym, m.scale(1) if hybrid else 1)
                            + matvec(R, h[bi].astype(np.float32), hybrid, asym, m.scale(2) if hybrid else 1))
        h = y.astype(np.float32).astype(np.float64)
        ours.append([y])
    report(name, ours, m.litert([[x] for x in xs]))

def cell_rnn(W, R, b, x, h, act):
    return act(b + W.astype(np.float64) @ x + R.astype(np.float64) @ h)

def useq(name, tm):
    m = M(name)
    W, R, b = m.w(1), m.w(2), m.w(3).astype(np.float64)
    h = np.zeros((2, 3))
    xs = [wave(24, 30 + k) for k in range(2)]
    ours = []
    for x in xs:
        x = x.reshape(4, 2, 3) if tm else x.reshape(2, 4, 3)
        y = np.zeros((4, 2, 3)) if tm else np.zeros((2, 4, 3))
        for bi in range(2):
            for t in range(4):
                xt = x[t, bi] if tm else x[bi, t]
                h[bi] = cell_rnn(W, R, b, xt, h[bi], lambda v: v)
                if tm: y[t, bi] = h[bi]
                else: y[bi, t] = h[bi]
        ours.append([y])
    report(name, ours, m.litert([[x] for x in xs]))

def bidi_rnn(name, tm, merged):
    m = M(name)
    fw = (m.w(1), m.w(2), m.w(3).astype(np.float64))
    bw = (m.w(5), m.w(6), m.w(7).astype(np.float64))
    hf = np.zeros((2, 3)); hb = np.zeros((2, 2))
    xs = [wave(24, 50 + k) for k in range(2)]
    ours = []
    for x in xs:
        x = x.reshape(4, 2, 3) if tm else x.reshape(2, 4, 3)
        get = (lambda b_, t: x[t, b_]) if tm else (lambda b_, t: x[b_, t])
        yf = np.zeros((2, 4, 3)); yb = np.zeros((2, 4, 2))
        for bi in range(2):
            for t in range(4):
                hf[bi] = cell_rnn(*fw, get(bi, t), hf[bi], np.tanh); yf[bi, t] = hf[bi]
            for t in reversed(range(4)):
                hb[bi] = cell_rnn(*bw, get(bi, t), hb[bi], np.tanh); yb[bi, t] = hb[bi]
        lay = (lambda a: a.transpose(1, 0, 2)) if tm else (lambda a: a)
        if merged:
            ours.append([lay(np.concatenate([yf, yb], axis=2))])
        else:
            ours.append([lay(yf), lay(yb)])
    report(name, ours, m.litert([[x] for x in xs]))

def sig(v):
    return 1 / (1 + np.exp(-v))

def lstm_dir(m, first, x_seq, h, c):
    """x_seq: list of input rows in processing order; returns outputs."""
    W = [m.w(first + k) for k in range(4)]
    R = [m.w(first + 4 + k) for k in range(4)]
    P = [m.w(first + 8 + k) for k in range(3)]
    B = [m.w(first + 11 + k) for k in range(4)]
    proj, pb = m.w(first + 15), m.w(first + 16)
    f64 = lambda a: None if a is None else a.astype(np.float64)
    W, R, P, B = [list(map(f64, l)) for l in (W, R, P, B)]
    proj, pb = f64(proj), f64(pb)
    outs = []
    for x in x_seq:
        g = lambda k: W[k] @ x + R[k] @ h + B[k]
        f = sig(g(1) + (P[1] * c if P[1] is not None else 0))
        i = 1 - f if W[0] is None else sig(g(0) + (P[0] * c if P[0] is not None else 0))
        z = np.tanh(g(2))
        c = f * c + i * z
        o = sig(g(3) + (P[2] * c if P[2] is not None else 0))
        mm = o * np.tanh(c)
        h = (proj @ mm + (pb if pb is not None else 0)) if proj is not None else mm
        outs.append(h)
    return outs, h, c

def bidi_lstm(name, tm, merged, aux):
    m = M(name)
    st = {k: np.zeros((2, 3)) for k in ("fh", "fc", "bh", "bc")}
    xs = [wave(12, 90 + k) for k in range(2)]
    axs = [wave(12, 95 + k) for k in range(2)]
    ours = []
    for x, ax in zip(xs, axs):
        shp = (3, 2, 2) if tm else (2, 3, 2)
        x = x.reshape(shp).astype(np.float64); ax = ax.reshape(shp).astype(np.float64)
        bx = ax if aux else x
        get = (lambda a, b_, t: a[t, b_]) if tm else (lambda a, b_, t: a[b_, t])
        yf = np.zeros((2, 3, 3)); yb = np.zeros((2, 3, 3))
        for bi in range(2):
            o, st["fh"][bi], st["fc"][bi] = lstm_dir(m, 1, [get(x, bi, t) for t in range(3)], st["fh"][bi], st["fc"][bi])
            for t in range(3): yf[bi, t] = o[t]
            o, st["bh"][bi], st["bc"][bi] = lstm_dir(m, 18, [get(bx, bi, t) for t in reversed(range(3))], st["bh"][bi], st["bc"][bi])
            for k, t in enumerate(reversed(range(3))): yb[bi, t] = o[k]
        lay = (lambda a: a.transpose(1, 0, 2)) if tm else (lambda a: a)
        if merged:
            ours.append([lay(np.concatenate([yf, yb], axis=2))])
        else:
            ours.append([lay(yf), lay(yb)])
    feeds = [[a, b] if aux else [a] for a, b in zip(xs, axs)]
    report(name, ours, m.litert(feeds))

svdf("svdf_f32", False)
svdf("svdf_hybrid", True)
rnn("rnn_f32", False, False)
rnn("rnn_hybrid", True, False)
rnn("rnn_hybrid_asym", True, True)
useq("useq_rnn_bm", False)
useq("useq_rnn_tm", True)
bidi_rnn("bidi_rnn_bm_split", False, False)
bidi_rnn("bidi_rnn_tm_merged", True, True)
bidi_rnn("bidi_rnn_tm_split", True, False)
bidi_lstm("bidi_lstm_tm_merged", True, True, False)
bidi_lstm("bidi_lstm_bm_split", False, False, False)
bidi_lstm("bidi_lstm_tm_aux", True, False, True)
