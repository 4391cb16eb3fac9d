#!/usr/bin/python3
"""Writes tests/golden/torch_fixture.safetensors: a tiny safetensors file made from PyTorch tensors,
written by hand with struct + json (torch 1.13 has no safetensors package), so the C++ reader is
checked against a file it did not write. Run by hand (needs python3-torch); `make test` only needs
the committed output.

  /usr/bin/python3 tests/golden/make_safetensors_fixture.py            # (re)write the fixture
  /usr/bin/python3 tests/golden/make_safetensors_fixture.py --check F  # read a file (e.g. one the C++ code
                                                                        # wrote) into torch tensors and print them

Values are simple formulas so the C++ test can state them independently:
  "weight"  F32 [2, 3]  torch.linspace(-1, 1, 6)
  "bias"    F64 [4]     [pi, e, -0.0, 1e-300]
  "steps"   I64 [3]     [-1, 0, 2**40 + 3]
  "scalar"  F32 []      0.25
The data section is laid out in a different order than the header lists the tensors
(bias, steps, weight, scalar), as the offsets, not the header order, decide where data lives.
"""
import json
import math
import struct
import sys
from pathlib import Path

import torch

DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}
FROM_NAME = {v: k for k, v in DTYPES.items()}


def tensors():
    return {
        "weight": torch.linspace(-1, 1, 6, dtype=torch.float32).reshape(2, 3),
        "bias": torch.tensor([math.pi, math.e, -0.0, 1e-300], dtype=torch.float64),
        "steps": torch.tensor([-1, 0, 2**40 + 3], dtype=torch.int64),
        "scalar": torch.tensor(0.25, dtype=torch.float32),
    }


def write(path, named, data_order, metadata):
    header, chunks, offset = {}, {}, 0
    for name in data_order:
        raw = named[name].contiguous().numpy().tobytes()  # numpy on x86 is little-endian
        chunks[name] = raw
        header[name] = None
    layout, offset = {}, 0
    for name in data_order:
        layout[name] = [offset, offset + len(chunks[name])]
        offset += len(chunks[name])
    ordered = {}
    for name in sorted(named):  # header in alphabetical order, data in data_order
        t = named[name]
        ordered[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": layout[name]}
    ordered["__metadata__"] = metadata
    text = json.dumps(ordered, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name in data_order:
            f.write(chunks[name])


def read(path):
    blob = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    data = blob[8 + n :]
    meta = header.pop("__metadata__", {})
    out = {}
    for name, h in header.items():
        b, e = h["data_offsets"]
        dtype = FROM_NAME[h["dtype"]]
        out[name] = torch.frombuffer(bytearray(data[b:e]), dtype=dtype).reshape(h["shape"])
    return out, meta


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        named, meta = read(sys.argv[2])
        print("metadata", meta)
        for name, t in named.items():
            print(name, t.dtype, list(t.shape), t.flatten()[:8].tolist())
        return
    path = Path(__file__).with_name("torch_fixture.safetensors")
    write(path, tensors(), ["bias", "steps", "weight", "scalar"],
          {"format": "ddpm-cpp-test-fixture", "made_by": f"torch {torch.__version__}"})
    named, meta = read(path)
    for name, t in tensors().items():
        assert torch.equal(named[name], t), name
    print("wrote", path, path.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
