#!/usr/bin/env python3
"""Make small .tflite models holding only TFLite's custom op
TFLite_Detection_PostProcess (SSD box decoding + non-max suppression), with
seeded inputs and LiteRT's outputs for them.

usage: python tools/make_detection_fixture.py OUT_DIR [VARIANT ...]
       (this repo keeps them in testdata/generated)
needs (Python 3.11): pip install -r tools/requirements.txt

The converter cannot make this op from a Keras model, so the models are
written directly with TensorFlow's Python schema bindings
(tensorflow.lite.python.schema_py_generated); the op's options are a
FlexBuffer map (flatbuffers.flexbuffers), the anchors a constant tensor.

For each VARIANT, OUT_DIR gets:
  detection_postprocess.VARIANT.tflite
  detection_postprocess.VARIANT.in0.npy   box encodings [1, N, 4 or more]
  detection_postprocess.VARIANT.in1.npy   class predictions [1, N, C]
  detection_postprocess.VARIANT.ref0.npy  boxes [1, max_det, 4]
  ... .ref1.npy classes, .ref2.npy scores, .ref3.npy num_detections
(outputs of LiteRT's reference resolver, one thread). Output slots that
LiteRT leaves unwritten (they keep whatever its memory held) are stored as
0, which is what ferrolite writes there. Inputs are random but seeded:
rerunning gives the same files.

Variants:
  f32_fast       float, fast (class-agnostic) NMS, background column
  f32_regular    float, regular per-class NMS (detections_per_class),
                 no background column, 6 coordinates per box encoding
  uint8          uint8 box encodings, scores and anchors (as in the
                 quantised SSD MobileNet models), fast NMS
  f32_multiclass float, fast NMS with max_classes_per_detection = 3
  f32_sparse     float, fast NMS with fewer boxes above the threshold than
                 max_detections * max_classes_per_detection slots (the
                 unused slots), and max_classes_per_detection above
                 num_classes
"""
import os
import sys

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import flatbuffers  # noqa: E402
from flatbuffers import flexbuffers  # noqa: E402
from tensorflow.lite.python import schema_py_generated as schema  # noqa: E402
from ai_edge_litert import interpreter as litert  # noqa: E402

OP_NAME = "TFLite_Detection_PostProcess"

# name: (seed, boxes, coords per box, num_classes, background column,
#        box/score dtype, options)
VARIANTS = {
    "f32_fast": dict(seed=1, n=256, coords=4, classes=10, background=True, dtype="float32", options=dict(
        max_detections=20, max_classes_per_detection=1, nms_score_threshold=0.3, nms_iou_threshold=0.5,
        num_classes=10, y_scale=10.0, x_scale=10.0, h_scale=5.0, w_scale=5.0)),
    "f32_regular": dict(seed=2, n=200, coords=6, classes=8, background=False, dtype="float32", options=dict(
        max_detections=25, max_classes_per_detection=1, detections_per_class=5, use_regular_nms=True,
        nms_score_threshold=0.4, nms_iou_threshold=0.45, num_classes=8,
        y_scale=10.0, x_scale=10.0, h_scale=5.0, w_scale=5.0)),
    "uint8": dict(seed=3, n=300, coords=4, classes=10, background=True, dtype="uint8", options=dict(
        max_detections=20, max_classes_per_detection=1, nms_score_threshold=0.5, nms_iou_threshold=0.6,
        num_classes=10, y_scale=10.0, x_scale=10.0, h_scale=5.0, w_scale=5.0)),
    "f32_multiclass": dict(seed=4, n=160, coords=4, classes=6, background=True, dtype="float32", options=dict(
        max_detections=12, max_classes_per_detection=3, nms_score_threshold=0.2, nms_iou_threshold=0.5,
        num_classes=6, y_scale=8.0, x_scale=8.0, h_scale=4.0, w_scale=4.0)),
    "f32_sparse": dict(seed=5, n=64, coords=4, classes=2, background=True, dtype="float32", options=dict(
        max_detections=16, max_classes_per_detection=3, nms_score_threshold=0.85, nms_iou_threshold=0.3,
        num_classes=2, y_scale=10.0, x_scale=10.0, h_scale=5.0, w_scale=5.0)),
}

# uint8 quantisation of the quantised variant (SSD MobileNet's are alike).
BOX_Q = (0.05, 128)      # box encodings: about [-6.4, 6.35]
SCORE_Q = (1 / 256, 0)   # class predictions: [0, 1)
ANCHOR_Q = (1 / 255, 0)  # anchors: [0, 1]


def make_data(v):
    """Seeded anchors (y, x, h, w), box encodings and class predictions."""
    rng = np.random.default_rng(v["seed"])
    n, coords = v["n"], v["coords"]
    cols = v["classes"] + (1 if v["background"] else 0)
    anchors = np.stack([
        rng.uniform(0.1, 0.9, n),   # y centre
        rng.uniform(0.1, 0.9, n),   # x centre
        rng.uniform(0.05, 0.4, n),  # height
        rng.uniform(0.05, 0.4, n),  # width
    ], axis=1).astype(np.float32)
    boxes = rng.normal(0.0, 1.5, (1, n, coords)).astype(np.float32)
    scores = rng.uniform(0.0, 1.0, (1, n, cols)).astype(np.float32)
    if v["dtype"] == "uint8":
        def q(x, scale, zp):
            return np.clip(np.round(x / scale) + zp, 0, 255).astype(np.uint8)
        return q(anchors, *ANCHOR_Q), q(boxes, *BOX_Q), q(scores, *SCORE_Q)
    return anchors, boxes, scores


def build_model(v, anchors, boxes, scores):
    """A one-op model: inputs box encodings and class predictions, anchors
    constant, four float outputs."""
    opts = v["options"]
    max_slots = opts["max_detections"] * opts["max_classes_per_detection"]
    ttype = schema.TensorType.UINT8 if v["dtype"] == "uint8" else schema.TensorType.FLOAT32

    def tensor(name, shape, ty, buffer=0, quant=None):
        t = schema.TensorT()
        t.name, t.shape, t.type, t.buffer = name, list(shape), ty, buffer
        if quant is not None:
            q = schema.QuantizationParametersT()
            q.scale, q.zeroPoint = [float(quant[0])], [int(quant[1])]
            t.quantization = q
        return t

    quantized = v["dtype"] == "uint8"
    tensors = [
        tensor("box_encodings", boxes.shape, ttype, quant=BOX_Q if quantized else None),
        tensor("class_predictions", scores.shape, ttype, quant=SCORE_Q if quantized else None),
        tensor("anchors", anchors.shape, ttype, buffer=1, quant=ANCHOR_Q if quantized else None),
        tensor("detection_boxes", (1, max_slots, 4), schema.TensorType.FLOAT32),
        tensor("detection_classes", (1, max_slots), schema.TensorType.FLOAT32),
        tensor("detection_scores", (1, max_slots), schema.TensorType.FLOAT32),
        tensor("num_detections", (1,), schema.TensorType.FLOAT32),
    ]
    empty, weights = schema.BufferT(), schema.BufferT()
    weights.data = list(anchors.tobytes())

    code = schema.OperatorCodeT()
    code.builtinCode = schema.BuiltinOperator.CUSTOM
    code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
    code.customCode = OP_NAME
    code.version = 1

    op = schema.OperatorT()
    op.opcodeIndex = 0
    op.inputs, op.outputs = [0, 1, 2], [3, 4, 5, 6]
    op.customOptions = list(flexbuffers.Dumps(opts))
    op.customOptionsFormat = schema.CustomOptionsFormat.FLEXBUFFERS

    sg = schema.SubGraphT()
    sg.tensors, sg.inputs, sg.outputs, sg.operators = tensors, [0, 1], [3, 4, 5, 6], [op]
    sg.name = "main"

    model = schema.ModelT()
    model.version = 3
    model.operatorCodes = [code]
    model.subgraphs = [sg]
    model.buffers = [empty, weights]
    model.description = "tools/make_detection_fixture.py"

    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def run_litert(path, inputs):
    it = litert.Interpreter(model_path=path, num_threads=1,
                            experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), inputs):
        it.set_tensor(d["index"], x)
    it.invoke()
    return [it.get_tensor(d["index"]) for d in it.get_output_details()]


def zero_unwritten(v, outs):
    """Zero the output slots LiteRT never writes, which hold whatever its
    arena had there (so they change from run to run): with fast NMS, those
    past num_detections and, when max_classes_per_detection exceeds
    num_classes, the extra slots of each detection; with regular NMS, those
    past max_detections (when max_classes_per_detection > 1)."""
    opts = v["options"]
    per = opts["max_classes_per_detection"]
    slots = outs[1].shape[1]
    if opts.get("use_regular_nms", False):
        written = np.arange(slots) < opts["max_detections"]
    else:
        k = np.arange(slots)
        written = (k // per < int(outs[3][0])) & (k % per < min(per, opts["num_classes"]))
    boxes, classes, scores = (o.copy() for o in outs[:3])
    boxes[0, ~written] = 0
    classes[0, ~written] = 0
    scores[0, ~written] = 0
    return [boxes, classes, scores, outs[3]]


def make(out, name):
    v = VARIANTS[name]
    anchors, boxes, scores = make_data(v)
    base = os.path.join(out, f"detection_postprocess.{name}")
    with open(base + ".tflite", "wb") as f:
        f.write(build_model(v, anchors, boxes, scores))
    outs = zero_unwritten(v, run_litert(base + ".tflite", [boxes, scores]))
    np.save(base + ".in0.npy", boxes)
    np.save(base + ".in1.npy", scores)
    for i, r in enumerate(outs):
        np.save(f"{base}.ref{i}.npy", r)
    print(f"{name}: {int(outs[3][0])} detections of {outs[1].shape[1]} slots, classes {outs[1][0].astype(int)}")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name in sys.argv[2:] or VARIANTS:
        make(out, name)


if __name__ == "__main__":
    main()
