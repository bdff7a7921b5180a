#!/usr/bin/env python3
"""Make one-op float models of the ops real models have besides convolutions.

usage: bench/make_ops.py OUT_DIR [f32,int8]
       (OPS=name,name,... makes only those; variants default to f32)

MobileNet and Inception are convolutions, pools and a few ADDs; models met
in the wild (MediaPipe's, detectors, transformers) also run activations,
broadcasts, resizes, softmaxes and matrix products. Each model here is one
such op on a mid-sized tensor, so `bench/side_by_side.py --models OUT_DIR`
shows an op that still runs on a slow path (it found PRELU, TANH, GELU,
SOFTMAX and per-channel MUL/SUB 8x to 130x behind LiteRT).
The int8 variant (NAME.int8.tflite) is the same op fully integer
quantised (int8 in and out, calibrated on uniform [-1, 1] inputs), as an
int8 detector or segmenter runs it. Ops without an int8 kernel in TFLite
fall back to float between QUANTIZE/DEQUANTIZE pairs and are reported.
Needs tensorflow-cpu (bench/requirements.txt).
"""
import os
import sys

import numpy as np
import tensorflow as tf

RNG = np.random.default_rng(0)


def const(*shape):
    return tf.constant(RNG.uniform(-1, 1, shape).astype(np.float32))


W_T = const(3, 3, 32, 64)
SCALE, BIAS = const(96), const(96)

# name -> (input shapes, function of the inputs)
OPS = {
    "resize_bilinear": ([[1, 56, 56, 64]], lambda x: tf.image.resize(x, [112, 112], "bilinear")),
    "resize_nearest": ([[1, 56, 56, 64]], lambda x: tf.image.resize(x, [112, 112], "nearest")),
    "concat": ([[1, 56, 56, 64], [1, 56, 56, 32]], lambda x, y: tf.concat([x, y], axis=3)),
    "transpose": ([[1, 56, 56, 64]], lambda x: tf.transpose(x, [0, 3, 1, 2])),
    "mean_hw": ([[1, 28, 28, 256]], lambda x: tf.reduce_mean(x, axis=[1, 2])),
    "softmax": ([[64, 1000]], tf.nn.softmax),
    "hard_swish": ([[1, 56, 56, 96]], lambda x: x * tf.nn.relu6(x + 3) / 6),
    "logistic": ([[1, 56, 56, 96]], tf.math.sigmoid),
    "tanh": ([[1, 56, 56, 64]], tf.math.tanh),
    "gelu": ([[1, 56, 56, 64]], tf.nn.gelu),
    "leaky_relu": ([[1, 56, 56, 64]], lambda x: tf.nn.leaky_relu(x, 0.1)),
    "avg_pool": ([[1, 56, 56, 64]], lambda x: tf.nn.avg_pool2d(x, 3, 2, "SAME")),
    "strided_slice": ([[1, 56, 56, 64]], lambda x: x[:, ::2, ::2, :32]),
    "depth_to_space": ([[1, 56, 56, 64]], lambda x: tf.nn.depth_to_space(x, 2)),
    "transpose_conv": ([[1, 28, 28, 64]], lambda x: tf.nn.conv2d_transpose(x, W_T, [1, 56, 56, 32], 2, "SAME")),
    "batch_matmul": ([[4, 64, 64], [4, 64, 64]], tf.matmul),
    "per_channel_mul_sub": ([[1, 56, 56, 96]], lambda x: tf.nn.relu6(x * SCALE - BIAS)),
    "sub_bcast_hw": ([[1, 56, 56, 64], [1, 56, 56, 1]], lambda x, y: x - y),
    "max_bcast": ([[1, 56, 56, 64]], lambda x: tf.maximum(x, SCALE[:64])),
    "square_diff": ([[1, 56, 56, 64], [1, 56, 56, 64]], tf.math.squared_difference),
    "l2norm": ([[1, 56, 56, 64]], lambda x: tf.math.l2_normalize(x, axis=-1)),
}


def convert(name, shapes, fn, variant):
    f = tf.function(fn, input_signature=[tf.TensorSpec(s, tf.float32) for s in shapes])
    conv = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], f)
    if variant == "int8":
        def calibration():
            rng = np.random.default_rng(1)
            for _ in range(8):
                yield [rng.uniform(-1, 1, s).astype(np.float32) for s in shapes]
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = calibration
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    return conv.convert()


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    out = sys.argv[1]
    variants = sys.argv[2].split(",") if len(sys.argv) == 3 else ["f32"]
    os.makedirs(out, exist_ok=True)
    only = [s for s in os.environ.get("OPS", "").split(",") if s]
    for name, (shapes, fn) in OPS.items():
        if only and name not in only:
            continue
        for variant in variants:
            path = os.path.join(out, name + ("" if variant == "f32" else "." + variant) + ".tflite")
            try:
                model = convert(name, shapes, fn, variant)
            except Exception as e:  # an op TFLite cannot quantise: say so, go on
                print(f"skipped {path}: {type(e).__name__}: {str(e).splitlines()[0][:200]}", flush=True)
                continue
            with open(path, "wb") as fh:
                fh.write(model)
            print("wrote", path, flush=True)


if __name__ == "__main__":
    main()
