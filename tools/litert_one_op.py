#!/usr/bin/env python3
"""Run the single-op models that `crates/ferrolite/tests/quantized_ops.rs`
dumps (FERROLITE_DUMP_OPS=DIR cargo test -p ferrolite --test quantized_ops)
through LiteRT and print each output in the form of that file's EXPECTED
table: name, FNV-1a hash of the output bytes, first eight bytes.

    python tools/litert_one_op.py DIR [--default]

--default uses LiteRT's default kernels instead of BUILTIN_REF.
Needs `pip install -r tools/requirements.txt`.
"""
import sys
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType


def fnv1a(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def main() -> None:
    out_dir = Path(sys.argv[1])
    resolver = OpResolverType.AUTO if "--default" in sys.argv else OpResolverType.BUILTIN_REF
    for model in sorted(out_dir.glob("*.tflite")):
        name = model.stem
        it = Interpreter(model_path=str(model), experimental_op_resolver_type=resolver)
        it.allocate_tensors()
        for i, d in enumerate(it.get_input_details()):
            raw = (out_dir / f"{name}.in{i}.bin").read_bytes()
            it.set_tensor(d["index"], np.frombuffer(raw, dtype=d["dtype"]).reshape(d["shape"]))
        it.invoke()
        out = it.get_tensor(it.get_output_details()[0]["index"]).tobytes()
        print(f'    ("{name}", {fnv1a(out):#018x}, {list(out[:8])}),')


if __name__ == "__main__":
    main()
