#!/usr/bin/env python3
"""Make one-layer float models shaped like MobileNet's and Inception's hot layers.

usage: bench/make_layers.py OUT_DIR [f32,int8,dyn]
       (LAYERS=name,name,... makes only those)

Each model is a single op (with its fused activation) on a fixed-size input,
so `bench/side_by_side.py --models OUT_DIR` times LiteRT and ferrolite layer
by layer, where a whole-model ratio only says that something is slower.
Needs tensorflow-cpu (bench/requirements.txt).
"""
import os
import sys

import numpy as np
import tensorflow as tf

L = tf.keras.layers


def model(shape, layer):
    x = tf.keras.Input(shape=shape, batch_size=1)
    return tf.keras.Model(x, layer(x))


def relu6(x):
    return tf.nn.relu6(x)


# name -> (input shape without the batch, layer)
LAYERS = {
    # MobileNet v1/v2 first conv: 3x3 stride 2 over RGB.
    "first_conv_224x3_32_s2": ((224, 224, 3), L.Conv2D(32, 3, strides=2, padding="same", activation=relu6)),
    # Shallow 1x1 expansions and projections (MobileNet v2).
    "pw_112x16_96": ((112, 112, 16), L.Conv2D(96, 1, activation=relu6)),
    "pw_112x32_16": ((112, 112, 32), L.Conv2D(16, 1)),
    "pw_56x24_144": ((56, 56, 24), L.Conv2D(144, 1, activation=relu6)),
    # Deeper 1x1 convs (MobileNet v1), down to 7x7 with 4 MB of weights.
    "pw_28x256_256": ((28, 28, 256), L.Conv2D(256, 1, activation=relu6)),
    "pw_14x512_512": ((14, 14, 512), L.Conv2D(512, 1, activation=relu6)),
    "pw_7x1024_1024": ((7, 7, 1024), L.Conv2D(1024, 1, activation=relu6)),
    # Depthwise 3x3, stride 1 and 2.
    "dw_112x32_s1": ((112, 112, 32), L.DepthwiseConv2D(3, padding="same", activation=relu6)),
    "dw_112x96_s2": ((112, 112, 96), L.DepthwiseConv2D(3, strides=2, padding="same", activation=relu6)),
    "dw_56x144_s1": ((56, 56, 144), L.DepthwiseConv2D(3, padding="same", activation=relu6)),
    # MobileNet v2's late depthwise convs: little work per op, many channels.
    "dw_14x576_s1": ((14, 14, 576), L.DepthwiseConv2D(3, padding="same", activation=relu6)),
    "dw_7x960_s1": ((7, 7, 960), L.DepthwiseConv2D(3, padding="same", activation=relu6)),
    # Inception v3's 3x3 convs: shallow and wide (im2col rows of 288),
    # deep (depth 720, 2592, 4032: the GEMM cuts the depth into slices).
    "conv3_147x32_64": ((147, 147, 32), L.Conv2D(64, 3, padding="same", activation="relu")),
    "conv3_73x80_192_valid": ((73, 73, 80), L.Conv2D(192, 3, activation="relu")),
    "conv3_35x288_384_s2": ((35, 35, 288), L.Conv2D(384, 3, strides=2, activation="relu")),
    "conv3_8x448_384": ((8, 8, 448), L.Conv2D(384, 3, padding="same", activation="relu")),
    # Inception's mid-depth convs, most of its time: 3x3 and 5x5 over
    # 35x35, 1x7 / 7x1 over 17x17 (im2col rows of 576-1344), and the 1x1
    # 17x17x768 -> 192 it runs twelve times.
    "conv3_35x96_96": ((35, 35, 96), L.Conv2D(96, 3, padding="same", activation="relu")),
    "conv5_35x48_64": ((35, 35, 48), L.Conv2D(64, 5, padding="same", activation="relu")),
    "conv1x7_17x192_192": ((17, 17, 192), L.Conv2D(192, (1, 7), padding="same", activation="relu")),
    "conv7x1_17x192_192": ((17, 17, 192), L.Conv2D(192, (7, 1), padding="same", activation="relu")),
    "pw_17x768_192": ((17, 17, 768), L.Conv2D(192, 1, activation="relu")),
    # MobileNet v2's middle and late 1x1 convs (expansions and projections).
    "pw_28x32_192": ((28, 28, 32), L.Conv2D(192, 1, activation=relu6)),
    "pw_28x192_32": ((28, 28, 192), L.Conv2D(32, 1)),
    "pw_14x64_384": ((14, 14, 64), L.Conv2D(384, 1, activation=relu6)),
    "pw_14x384_64": ((14, 14, 384), L.Conv2D(64, 1)),
    "pw_7x160_960": ((7, 7, 160), L.Conv2D(960, 1, activation=relu6)),
    "pw_7x960_160": ((7, 7, 960), L.Conv2D(160, 1)),
    "pw_7x320_1280": ((7, 7, 320), L.Conv2D(1280, 1, activation=relu6)),
    # MobileNet v2's stride-2 depthwise convs into 28x28 and 14x14.
    "dw_56x144_s2": ((56, 56, 144), L.DepthwiseConv2D(3, strides=2, padding="same", activation=relu6)),
    "dw_28x192_s1": ((28, 28, 192), L.DepthwiseConv2D(3, padding="same", activation=relu6)),
    # The classifier: a batch-1 FULLY_CONNECTED (a GEMV over 5 MB of weights).
    "fc_1280_1001": ((1280,), L.Dense(1001)),
}


def convert(keras_model, shape, kind):
    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    if kind in ("int8", "dyn"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if kind == "int8":
        rng = np.random.default_rng(0)

        def calibration():
            for _ in range(8):
                yield [rng.uniform(-1.0, 1.0, (1,) + shape).astype(np.float32)]

        converter.representative_dataset = calibration
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    out = sys.argv[1]
    kinds = sys.argv[2].split(",") if len(sys.argv) == 3 else ["f32"]
    if not set(kinds) <= {"f32", "int8", "dyn"}:
        sys.exit(__doc__)
    os.makedirs(out, exist_ok=True)
    tf.keras.utils.set_random_seed(0)
    only = set(os.environ.get("LAYERS", "").split(",")) - {""}
    for name, (shape, layer) in LAYERS.items():
        if only and name not in only:
            continue
        keras_model = model(shape, layer)
        for kind in kinds:
            suffix = "" if kind == "f32" else "." + kind
            path = os.path.join(out, name + suffix + ".tflite")
            with open(path, "wb") as f:
                f.write(convert(keras_model, shape, kind))
            print("wrote", path, flush=True)


if __name__ == "__main__":
    main()
