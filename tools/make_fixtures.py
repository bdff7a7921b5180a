#!/usr/bin/env python3
"""Make small .tflite conformance fixtures for ops that the shared models
(MobileNet, Inception, BlazeFace) do not exercise, with reference outputs
from Google's LiteRT.

usage: python tools/make_fixtures.py OUT_DIR [NAME ...]
       (this repo keeps them in testdata/generated; NAMEs pick models)
needs (Python 3.11):
       pip install -r tools/requirements.txt
       pip install --no-deps tf-keras==2.21.0
       (tf-keras, Keras 2, only for the LSTM: Keras 3's LSTM converts to a
       WHILE loop instead of TFLite's fused LSTM op; --no-deps because it
       would pull the full `tensorflow` beside `tensorflow-cpu`)

Every fixture is MODEL.VARIANT.tflite plus, beside it:
  MODEL.VARIANT.in0.npy ...   seeded inputs in the model's own input dtype
                              (float32 uniform in [-1, 1]; int8/uint8/int16
                              uniform over their full range)
  MODEL.VARIANT.ref0.npy ...  outputs of LiteRT's reference kernels
                              (OpResolverType.BUILTIN_REF, one thread):
                              integer outputs are to be matched bit for bit
                              (fixtures.json names another resolver as
                              ref_resolver for the few models whose ops
                              the reference resolver lacks)
  MODEL.VARIANT.xnn0.npy ...  outputs of LiteRT's default path (XNNPACK):
                              the ref-vs-xnn gap shows how far two correct
                              float implementations drift apart
and OUT_DIR/fixtures.json lists every fixture with its operators, input and
output shapes/dtypes, size and ref-vs-xnn drift.

Variants: f32 (plain float), dyn (dynamic range: int8 weights, float
activations, TFLite's hybrid kernels), int8 (full integer, int8 in/out,
per-channel weights). Dynamic-range quantization only touches weight tensors
of at least 1024 elements, so the models are sized for that. Each variant is
converted and run in its own process: a variant the converter cannot make (or
that crashes it) is reported and skipped, not fatal.

Single-op models (FUNCTIONS: ONE_HOT, SCATTER_ND, segment ops...) are
tf.functions converted with from_concrete_functions, f32 variant only.

Weights are random but seeded, so rerunning gives the same files for the same
TensorFlow/LiteRT versions.
"""
import json
import os
import subprocess
import sys

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402
from ai_edge_litert import interpreter as litert  # noqa: E402

SEED = 0


# ---------------------------------------------------------------- weights ---

def seeded_weights(model, seed=SEED):
    """Replace every weight with seeded random values of a sensible scale
    (He-normal for kernels, small normal for biases, LayerNorm gains near 1)
    so that results do not depend on Keras' initialiser defaults."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        ws = layer.get_weights()
        if not ws:
            continue
        new = []
        for var, w in zip(layer.weights, ws):
            name = var.path if hasattr(var, "path") else var.name
            if "gamma" in name:
                new.append(rng.uniform(0.5, 1.5, w.shape).astype(w.dtype))
            elif w.ndim >= 2:
                fan_in = int(np.prod(w.shape[:-1]))
                new.append(rng.normal(0, np.sqrt(2.0 / max(fan_in, 1)), w.shape).astype(w.dtype))
            else:
                new.append(rng.normal(0, 0.1, w.shape).astype(w.dtype))
        layer.set_weights(new)
    return model


# ----------------------------------------------------------------- models ---
# Each builder returns a Keras model with a fixed batch of 1. Ops that Keras
# has no layer for sit in small custom layers calling tf.* directly.

class TfOp(keras.layers.Layer):
    """A parameter-free layer around a tf.* function (Keras 3 refuses raw tf
    ops on symbolic tensors)."""

    def __init__(self, fn, **kw):
        super().__init__(**kw)
        self.fn = fn

    def call(self, xs):
        return self.fn(*xs) if isinstance(xs, (list, tuple)) else self.fn(xs)


def upsample_head():
    """TRANSPOSE_CONV, RESIZE_BILINEAR, RESIZE_NEAREST_NEIGHBOR, CONCATENATION,
    SOFTMAX (plus CONV_2D)."""
    x = keras.Input((12, 12, 4), batch_size=1)
    a = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    a = keras.layers.Conv2DTranspose(16, 3, strides=2, padding="same")(a)
    b = keras.layers.UpSampling2D(2, interpolation="bilinear")(x)
    # (Keras' nearest UpSampling2D becomes RESHAPE+TILE, and LiteRT's reference
    # resolver has no int8 TILE: call the resize op directly.)
    c = TfOp(lambda t: tf.image.resize(t, (24, 24), method="nearest"))(x)
    y = keras.layers.Concatenate()([a, b, c])
    y = keras.layers.Conv2D(40, 1)(y)
    y = keras.layers.Softmax()(y)
    return keras.Model(x, y)


def lstm():
    """UNIDIRECTIONAL_SEQUENCE_LSTM (plus FULLY_CONNECTED). Built with tf-keras
    (Keras 2), whose LSTM the converter fuses into TFLite's LSTM op."""
    import tf_keras
    x = tf_keras.Input((10, 32), batch_size=1)
    y = tf_keras.layers.LSTM(32, return_sequences=True)(x)
    y = tf_keras.layers.Dense(8)(y)
    return tf_keras.Model(x, y)


def transformer_block():
    """A pre-norm transformer encoder block: LayerNorm (MEAN, SQUARED_DIFFERENCE,
    RSQRT...), multi-head self-attention (BATCH_MATMUL, SOFTMAX, TRANSPOSE,
    RESHAPE), GELU, FULLY_CONNECTED, ADD."""
    x = keras.Input((8, 32), batch_size=1)
    h = keras.layers.LayerNormalization(epsilon=1e-5)(x)
    h = keras.layers.MultiHeadAttention(num_heads=2, key_dim=16)(h, h)
    x1 = keras.layers.Add()([x, h])
    h = keras.layers.LayerNormalization(epsilon=1e-5)(x1)
    h = keras.layers.Dense(64, activation="gelu")(h)
    h = keras.layers.Dense(32)(h)
    y = keras.layers.Add()([x1, h])
    return keras.Model(x, y)


def elementwise():
    """SUB, DIV, SQUARED_DIFFERENCE, MAXIMUM, MINIMUM with broadcasting, on two
    inputs. The divisor is kept away from zero (1.5 + |b|)."""
    a = keras.Input((4, 5, 6), batch_size=1)
    b = keras.Input((1, 5, 6), batch_size=1)
    sub = TfOp(lambda a, b: tf.subtract(a, b))([a, b])
    div = TfOp(lambda a, b: tf.divide(a, 1.5 + tf.abs(b)))([a, b])
    sqd = TfOp(lambda a, b: tf.math.squared_difference(a, b))([a, b])
    mx = TfOp(lambda a, b: tf.maximum(a, b))([a, b])
    mn = TfOp(lambda a: tf.minimum(a, 0.25))(a)
    # Separate outputs: with a CONCATENATION here the int8 converter writes
    # a model LiteRT cannot prepare.
    return keras.Model([a, b], [sub, div, sqd, mx, mn])


def shape_ops():
    """STRIDED_SLICE, GATHER, TRANSPOSE, SPLIT, PACK, UNPACK, CONCATENATION:
    data movement only, several outputs. A 1x1 convolution first gives the
    int8 variant calibrated activations."""
    inp = keras.Input((6, 8, 4), batch_size=1)
    x = keras.layers.Conv2D(4, 1)(inp)
    # (A negative stride or an UNPACK with unused outputs is left in float by
    # the int8 converter, so these stay positive and use everything.)
    sl = TfOp(lambda t: t[:, 1:5:2, 1:7, 1:])(x)                    # [1,2,6,3]
    ga = TfOp(lambda t: tf.gather(t, [3, 0, 0, 7, 5], axis=2))(x)    # [1,6,5,4]
    tr = TfOp(lambda t: tf.transpose(t, [0, 3, 1, 2]))(x)           # [1,4,6,8]
    sp = TfOp(lambda t: tf.concat(tf.split(t, 2, axis=3)[::-1], axis=2))(x)  # [1,6,16,2]
    un = TfOp(lambda t: tf.stack(tf.unstack(t, axis=1)[::-1], axis=3))(x)    # [1,8,4,6]
    return keras.Model(inp, [sl, ga, tr, sp, un])


def pad_space_ops():
    """MIRROR_PAD (REFLECT and SYMMETRIC), SPACE_TO_DEPTH."""
    inp = keras.Input((6, 8, 4), batch_size=1)
    x = keras.layers.Conv2D(4, 1)(inp)
    rp = TfOp(lambda t: tf.pad(t, [[0, 0], [2, 1], [1, 3], [0, 0]], mode="REFLECT"))(x)
    syp = TfOp(lambda t: tf.pad(t, [[0, 0], [1, 2], [0, 1], [0, 0]], mode="SYMMETRIC"))(x)
    s2d = TfOp(lambda t: tf.nn.space_to_depth(t, 2))(x)             # [1,3,4,16]
    return keras.Model(inp, [rp, syp, s2d])


def depth_to_space():
    """DEPTH_TO_SPACE after a convolution (float only: LiteRT's reference
    resolver has no int8 DEPTH_TO_SPACE to make the int8 reference with)."""
    inp = keras.Input((6, 8, 4), batch_size=1)
    x = keras.layers.Conv2D(8, 1)(inp)
    return keras.Model(inp, TfOp(lambda t: tf.nn.depth_to_space(t, 2))(x))  # [1,12,16,2]


def recurrent():
    """WHILE: Keras 3 GRU and SimpleRNN layers convert to WHILE loops whose
    body is one time step (FULLY_CONNECTED, LOGISTIC, TANH, and SLICE /
    CONCATENATION at the step counter, so the body has computed shapes)."""
    x = keras.Input((10, 8), batch_size=1)
    y = keras.layers.GRU(32, return_sequences=True)(x)
    y = keras.layers.SimpleRNN(32)(y)
    return keras.Model(x, y)


def control_flow():
    """WHILE and IF from tf.while_loop and tf.cond, with subgraphs of their
    own (LESS, ADD, MUL, SUM, GREATER, SUB)."""
    def loop_then_branch(t):
        def body(i, v):
            return i + 1, v * 1.25 + 0.5
        _, v = tf.while_loop(lambda i, v: i < 6, body, [tf.constant(0), t])
        return tf.cond(tf.reduce_sum(v) > 10.0, lambda: v - 10.0, lambda: v * 2.0)
    x = keras.Input((4,), batch_size=1)
    return keras.Model(x, TfOp(loop_then_branch)(x))


MODELS = [
    # name, builder, variants
    ("upsample_head", upsample_head, ["f32", "dyn", "int8"]),
    ("lstm", lstm, ["f32", "dyn", "int8"]),
    ("transformer_block", transformer_block, ["f32", "dyn", "int8"]),
    ("elementwise", elementwise, ["f32", "int8"]),
    ("shape_ops", shape_ops, ["f32", "int8"]),
    ("pad_space_ops", pad_space_ops, ["f32", "int8"]),
    ("depth_to_space", depth_to_space, ["f32"]),
    ("recurrent", recurrent, ["f32", "dyn"]),
    ("control_flow", control_flow, ["f32"]),
]


# ------------------------------------------------ single-op tf.functions ---
# Builtins that Keras has no layer for and that the fixtures above do not
# reach. Each builder returns (tf.function body, input shapes): converted
# with from_concrete_functions, float32 inputs only (integer and boolean
# operands are computed from them inside), float variant only. Integer and
# boolean results are cast to int32 so that they compare exactly.

def fn_one_hot():
    """ONE_HOT: float output on a middle axis, indices -1..5 for depth 4
    (out-of-range rows are all off), and int32 output on the last axis."""
    def f(x):
        idx = tf.cast(tf.floor((x + 1.0) * 3.0) - 1.0, tf.int32)
        a = tf.one_hot(idx, 4, on_value=2.5, off_value=-1.0, axis=1)
        b = tf.one_hot(idx, 3, on_value=7, off_value=0, dtype=tf.int32)
        return a, tf.cast(b, tf.float32)
    return f, [(2, 3)]


def fn_reduce_any_all():
    """REDUCE_ANY over one axis, REDUCE_ALL over two with keep_dims."""
    def f(x):
        a = tf.reduce_any(x > 0.5, axis=1)
        b = tf.reduce_all(x > -0.6, axis=[0, 2], keepdims=True)
        return tf.cast(a, tf.int32), tf.cast(b, tf.int32)
    return f, [(2, 3, 4)]


def fn_atan2():
    """ATAN2 on two same-shaped inputs."""
    return (lambda y, x: tf.math.atan2(y, x)), [(3, 5), (3, 5)]


def fn_scatter_nd():
    """SCATTER_ND with a repeated index (its updates add up)."""
    def f(x):
        return tf.scatter_nd(tf.constant([[1], [3], [1]]), x, tf.constant([5, 4]))
    return f, [(3, 4)]


def fn_broadcast_args():
    """BROADCAST_ARGS of two computed shapes: [a, 1, 3] with [b, 1] gives
    [a, b, 3] (a, b in 1..4)."""
    def f(x):
        n = tf.cast(tf.floor(tf.abs(x) * 3.0) + 1.0, tf.int32)
        return tf.raw_ops.BroadcastArgs(s0=tf.stack([n[0], 1, 3]), s1=tf.stack([n[1], 1]))
    return f, [(2,)]


def fn_segment_sum():
    """SEGMENT_SUM with constant sorted segment ids."""
    return (lambda x: tf.math.segment_sum(x, tf.constant([0, 0, 1, 2, 2, 2]))), [(6, 3)]


def fn_unsorted_segment():
    """UNSORTED_SEGMENT_SUM / MAX / MIN / PROD: a negative id (dropped) and
    an empty segment (left at the reduction's identity), float and int32."""
    ids = tf.constant([2, 0, -1, 2, 0])
    def f(x):
        xi = tf.cast(x * 10.0, tf.int32)
        return (tf.math.unsorted_segment_sum(x, ids, 4),
                tf.math.unsorted_segment_max(x, ids, 4),
                tf.math.unsorted_segment_min(x, ids, 4),
                tf.math.unsorted_segment_prod(x, ids, 4),
                tf.cast(tf.math.unsorted_segment_sum(xi, ids, 3), tf.float32),
                tf.cast(tf.math.unsorted_segment_max(xi, ids, 3), tf.float32))
    return f, [(5, 2)]


def fn_dynamic_update_slice():
    """DYNAMIC_UPDATE_SLICE with computed start indices in -5..5, clamped
    into the operand."""
    from tensorflow.compiler.tf2xla.python import xla

    def f(x, u):
        start = tf.cast(x[0, :2] * 5.0, tf.int32)
        return xla.dynamic_update_slice(x, u, start)
    return f, [(4, 5), (2, 3)]


def fn_bucketize():
    """BUCKETIZE with boundaries that a value can equal."""
    return (lambda x: tf.raw_ops.Bucketize(input=tf.floor(x * 4.0) / 4.0,
                                           boundaries=[-0.5, 0.0, 0.25, 0.75])), [(3, 4)]


def fn_reverse_sequence():
    """REVERSE_SEQUENCE along axis 1 per batch entry (axis 0), and along
    axis 0 per entry of axis 2."""
    def f(x):
        a = tf.reverse_sequence(x, tf.constant([1, 3, 4, 0]), seq_axis=1, batch_axis=0)
        b = tf.reverse_sequence(x, tf.constant([2, 4]), seq_axis=0, batch_axis=2)
        return a, b
    return f, [(4, 5, 2)]


def fn_rfft2d():
    """RFFT2D from tf.signal.rfft2d (input zero-padded to the FFT size, and
    cropped) and from tf.signal.rfft (a magnitude spectrum of 64-sample
    frames, as audio front ends compute), read out through REAL, IMAG and
    COMPLEX_ABS (the fixtures hold no complex arrays)."""
    def f(x, frames):
        a = tf.signal.rfft2d(x, fft_length=[4, 8])
        b = tf.signal.rfft2d(x, fft_length=[2, 4])
        c = tf.signal.rfft(frames)
        return tf.math.real(a), tf.math.imag(a), tf.abs(b), tf.abs(c), tf.math.imag(c)
    return f, [(2, 3, 6), (3, 64)]


def fn_non_max_suppression():
    """NON_MAX_SUPPRESSION_V4 (hard NMS; once on scores with many ties,
    whose order LiteRT's heap decides) and _V5 (soft-NMS) on 16 boxes made
    from the inputs (either corner first), with score thresholds that leave
    padded slots."""
    def f(b, s):
        size = tf.abs(b[:, 2:]) * 0.6 + 0.05
        boxes = tf.concat([b[:, :2], b[:, :2] + size], axis=1)
        flipped = tf.concat([boxes[:8, 2:], boxes[:8, :2]], axis=1)
        boxes = tf.concat([flipped, boxes[8:]], axis=0)
        scores = (s + 1.0) * 0.5
        ties = tf.round(scores * 3.0) / 3.0
        sel4, n4 = tf.raw_ops.NonMaxSuppressionV4(
            boxes=boxes, scores=scores, max_output_size=10, iou_threshold=0.3,
            score_threshold=0.55, pad_to_max_output_size=True)
        tie4, tn4 = tf.raw_ops.NonMaxSuppressionV4(
            boxes=boxes, scores=ties, max_output_size=12, iou_threshold=0.5,
            score_threshold=0.3, pad_to_max_output_size=True)
        sel5, sc5, n5 = tf.raw_ops.NonMaxSuppressionV5(
            boxes=boxes, scores=scores, max_output_size=12, iou_threshold=0.6,
            score_threshold=0.35, soft_nms_sigma=0.4, pad_to_max_output_size=True)
        return sel4, n4, tie4, tn4, sel5, sc5, n5
    return f, [(16, 4), (16,)]


def fn_sparse_to_dense():
    """SPARSE_TO_DENSE with computed index tuples (repeats possible: the
    last one wins) into a [3, 4] matrix, and 1-D indices into a vector,
    float and int32 values."""
    def f(x):
        rows = tf.cast(tf.floor((x[:, 0] + 1.0) * 1.5), tf.int32)
        cols = tf.cast(tf.floor((x[:, 1] + 1.0) * 2.0), tf.int32)
        a = tf.raw_ops.SparseToDense(sparse_indices=tf.stack([rows, cols], axis=1),
                                     output_shape=tf.constant([3, 4]), sparse_values=x[:, 2],
                                     default_value=tf.constant(-2.0))
        b = tf.raw_ops.SparseToDense(sparse_indices=tf.constant([5, 0, 3]),
                                     output_shape=tf.constant([7]),
                                     sparse_values=tf.cast(x[:3, 0] * 100.0, tf.int32),
                                     default_value=tf.constant(9))
        return a, b
    return f, [(5, 3)]


def fn_matrix_diag():
    """MATRIX_DIAG of float and int32 vectors, MATRIX_SET_DIAG on wide
    (3 x 4) matrices."""
    def f(x, m):
        return (tf.linalg.diag(x), tf.linalg.diag(tf.cast(x * 10.0, tf.int32)),
                tf.linalg.set_diag(m, x))
    return f, [(2, 3), (2, 3, 4)]


def fn_unique():
    """UNIQUE of int32 (int32 positions) and float (int64 positions)
    vectors. Its output size depends on the values, so it sits in an IF
    branch (the condition always holds), which ferrolite runs eagerly; the
    branch pads the unique values to the input's length."""
    def f(x):
        v = tf.cast(tf.round(x * 3.0), tf.int32)
        w = tf.round(x * 2.0) / 2.0

        def then():
            u, idx = tf.unique(v)
            uf, idf = tf.unique(w, out_idx=tf.int64)
            pad = tf.concat([u, tf.zeros([8], tf.int32)], 0)[:8]
            padf = tf.concat([uf, tf.zeros([8])], 0)[:8]
            return pad, idx, padf, tf.cast(idf, tf.int32)

        def other():
            z = tf.zeros([8], tf.int32)
            return z, z, tf.zeros([8]), z
        return tf.cond(x[0] > -2.0, then, other)
    return f, [(8,)]


def fn_resource_variables():
    """VAR_HANDLE, READ_VARIABLE, ASSIGN_VARIABLE and the CALL_ONCE whose
    subgraph gives the variables their initial values: a decaying running
    sum and a step counter that a tf.Module keeps across invokes (the
    variables are read again after they are assigned). The builder returns
    a bound method, so the module is the converter's trackable object."""
    class State(tf.Module):
        def __init__(self):
            super().__init__()
            self.acc = tf.Variable([[0.5, -1.0, 2.0], [1.0, 0.0, -0.25]], name="acc")
            self.steps = tf.Variable([0.0], name="steps")

        def step(self, x):
            self.acc.assign(self.acc * 0.5 + x)
            self.steps.assign_add([1.0])
            return self.acc.read_value(), self.steps.read_value() * 2.0
    return State().step, [(2, 3)]


FUNCTIONS = [
    # name, builder (variant f32 only)
    ("one_hot", fn_one_hot),
    ("reduce_any_all", fn_reduce_any_all),
    ("atan2", fn_atan2),
    ("scatter_nd", fn_scatter_nd),
    ("broadcast_args", fn_broadcast_args),
    ("segment_sum", fn_segment_sum),
    ("unsorted_segment", fn_unsorted_segment),
    ("dynamic_update_slice", fn_dynamic_update_slice),
    ("bucketize", fn_bucketize),
    ("reverse_sequence", fn_reverse_sequence),
    ("rfft2d", fn_rfft2d),
    ("non_max_suppression", fn_non_max_suppression),
    ("sparse_to_dense", fn_sparse_to_dense),
    ("matrix_diag", fn_matrix_diag),
    ("unique", fn_unique),
    ("resource_variables", fn_resource_variables),
]


# ------------------------------------------------------------- converting ---

def representative(shapes, seed=1, n=16):
    def gen():
        rng = np.random.default_rng(seed)
        for _ in range(n):
            yield [rng.uniform(-1, 1, s).astype(np.float32) for s in shapes]
    return gen


def convert_function(fn, shapes):
    """Convert a tf.function body with float32 inputs of the given shapes.
    A bound method of a tf.Module converts with the module as the trackable
    object (its variables stay resource variables)."""
    specs = [tf.TensorSpec(s, tf.float32) for s in shapes]
    f = tf.function(fn, input_signature=specs)
    c = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()],
                                                        getattr(fn, "__self__", f))
    return c.convert()


def convert(model, variant, shapes):
    c = tf.lite.TFLiteConverter.from_keras_model(model)
    if variant == "f32":
        pass
    elif variant == "dyn":
        c.optimizations = [tf.lite.Optimize.DEFAULT]
    elif variant == "int8":
        c.optimizations = [tf.lite.Optimize.DEFAULT]
        c.representative_dataset = representative(shapes)
        c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        c.inference_input_type = tf.int8
        c.inference_output_type = tf.int8
    else:
        raise ValueError(variant)
    return c.convert()


# ------------------------------------------------------------- references ---

def seeded_input(detail, rng):
    shape, dt = detail["shape"], detail["dtype"]
    if dt == np.float32:
        return rng.uniform(-1, 1, shape).astype(np.float32)
    if dt in (np.int8, np.uint8, np.int16):
        info = np.iinfo(dt)
        return rng.integers(info.min, int(info.max) + 1, shape).astype(dt)
    raise ValueError(f"no seeded input for dtype {dt}")


def run_litert(path, inputs, resolver):
    it = litert.Interpreter(model_path=path, experimental_op_resolver_type=resolver,
                            num_threads=1)
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), inputs):
        it.set_tensor(d["index"], x)
    it.invoke()
    return [it.get_tensor(d["index"]).copy() for d in it.get_output_details()]


def operators(path):
    """The builtin operator names a model uses, in first-use order."""
    it = litert.Interpreter(model_path=path)
    seen = []
    for op in it._get_ops_details():
        if op["op_name"] not in seen:
            seen.append(op["op_name"])
    return seen


def write_fixture(out, name, blob, seed=7):
    base = os.path.join(out, name)
    path = base + ".tflite"
    with open(path, "wb") as f:
        f.write(blob)
    probe = litert.Interpreter(model_path=path)
    in_details = probe.get_input_details()
    out_details = probe.get_output_details()
    rng = np.random.default_rng(seed)
    inputs = [seeded_input(d, rng) for d in in_details]
    for i, x in enumerate(inputs):
        np.save(f"{base}.in{i}.npy", x)
    ref_resolver = "BUILTIN_REF"
    try:
        ref = run_litert(path, inputs, litert.OpResolverType.BUILTIN_REF)
    except ValueError as e:
        # The reference resolver lacks a few builtins (SEGMENT_SUM): take
        # the builtin kernels without XNNPACK then, and say so in the index.
        if "Didn't find op" not in str(e):
            raise
        ref_resolver = "BUILTIN_WITHOUT_DEFAULT_DELEGATES"
        ref = run_litert(path, inputs, litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    xnn = run_litert(path, inputs, litert.OpResolverType.AUTO)
    for i, (r, x) in enumerate(zip(ref, xnn)):
        np.save(f"{base}.ref{i}.npy", r)
        np.save(f"{base}.xnn{i}.npy", x)
    drift = max(float(np.max(np.abs(r.astype(np.float64) - x.astype(np.float64))))
                for r, x in zip(ref, xnn))
    ops = operators(path)
    entry = {
        "name": name,
        "bytes": len(blob),
        "operators": ops,
        "inputs": [{"shape": [int(s) for s in d["shape"]], "dtype": np.dtype(d["dtype"]).name}
                   for d in in_details],
        "outputs": [{"shape": [int(s) for s in d["shape"]], "dtype": np.dtype(d["dtype"]).name}
                    for d in out_details],
        "ref_vs_xnn_max_abs_diff": drift,
    }
    if ref_resolver != "BUILTIN_REF":
        entry["ref_resolver"] = ref_resolver
    print(f"{name}: {len(blob)} bytes, ref-vs-xnn max|diff| {drift:.3g}, ops {' '.join(ops)}",
          flush=True)
    return entry


def make_one(out, name, variant):
    """Convert one variant and write its fixture (run in a child process)."""
    keras.utils.set_random_seed(SEED)
    tf.random.set_seed(SEED)
    functions = dict(FUNCTIONS)
    if name in functions:
        fn, shapes = functions[name]()
        entry = write_fixture(out, f"{name}.{variant}", convert_function(fn, shapes))
        print("FIXTURE " + json.dumps(entry), flush=True)
        return
    build = {m[0]: m[1] for m in MODELS}[name]
    model = seeded_weights(build())
    shapes = [(1,) + tuple(t.shape[1:]) for t in model.inputs]
    full = f"{name}.{variant}"
    entry = write_fixture(out, full, convert(model, variant, shapes))
    print("FIXTURE " + json.dumps(entry), flush=True)


def main():
    if len(sys.argv) >= 5 and sys.argv[1] == "--one":
        make_one(sys.argv[2], sys.argv[3], sys.argv[4])
        return 0
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        return 2
    out = sys.argv[1]
    only = set(sys.argv[2:])
    os.makedirs(out, exist_ok=True)
    index_path = os.path.join(out, "fixtures.json")
    index = {}
    if os.path.exists(index_path):
        with open(index_path) as f:
            index = {e["name"]: e for e in json.load(f)["fixtures"]}
    failed = []
    for name, _, variants in MODELS + [(n, f, ["f32"]) for n, f in FUNCTIONS]:
        if only and name not in only:
            continue
        for variant in variants:
            full = f"{name}.{variant}"
            # A child per variant: the converter can crash (not just raise).
            p = subprocess.run([sys.executable, os.path.abspath(__file__), "--one", out, name,
                                variant], capture_output=True, text=True)
            lines = p.stdout.splitlines()
            entry = [json.loads(l[len("FIXTURE "):]) for l in lines if l.startswith("FIXTURE ")]
            if p.returncode == 0 and entry:
                index[full] = entry[0]
                print(next(l for l in lines if l.startswith(full + ":")), flush=True)
            else:
                failed.append(full)
                index.pop(full, None)
                for f in os.listdir(out):  # no half-written fixture
                    if f.startswith(full + ".") and f.endswith((".tflite", ".npy")):
                        os.remove(os.path.join(out, f))
                why = (p.stderr.strip().splitlines() or ["(no message)"])[-1]
                print(f"{full}: FAILED (exit {p.returncode}): {why[:300]}", flush=True)
    with open(index_path, "w") as f:
        json.dump({
            "generator": "tools/make_fixtures.py",
            "tensorflow": tf.__version__,
            "fixtures": [index[k] for k in sorted(index)],
        }, f, indent=1)
        f.write("\n")
    if failed:
        print(f"failed: {' '.join(failed)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
