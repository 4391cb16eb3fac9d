#!/usr/bin/python3
"""Golden files for tests/nn, from the project's PyTorch model of its UNet, tools/torch_unet.py (run by
hand with Debian's python3-torch; `make test` only reads the committed files).

    /usr/bin/python3 tests/golden/make_golden.py            # writes the files below, next to this script
    /usr/bin/python3 tests/golden/make_golden.py --check-cpp FILE
    /usr/bin/python3 tests/golden/make_golden.py --compare     # regenerate in a scratch folder, compare

Writes:
  unet_golden.safetensors   tools/torch_unet.py's UNet in a narrower configuration of the same architecture
                            (ch=16, ch_mult (1,2,2), one ResBlock per level, attention at 7x7, 28x28: the
                            default's 1.1 M parameters would make a 9 MB file; ch=16 keeps 2+ channels per GroupNorm group,
                            so no bias gradient vanishes but the attention key bias), seeded weights under the
                            model's own names, and
                              x0, noise [2,1,28,28], t (int64, the network's 0-based input: the paper's t - 1),
                              x_t = sqrt(abar_t) x0 + sqrt(1-abar_t) noise (eq. 4 at the paper's t),
                              output = UNet(x_t, t), loss = F.mse_loss(output, noise) (L_simple, a mean),
                              grad.<name> = dloss/d<name> for every parameter.
                            __metadata__.unet_config holds the configuration as JSON.
  optim_golden.safetensors  torch.optim.Adam (no weight decay) and torch.optim.AdamW (weight decay) on two
                            tensors over several steps with fixed gradients:
                              p.<i> initial values, g.<k>.<i> gradient at step k (1-based),
                              adam.p.<k>.<i>, adamw.p.<k>.<i> parameters after step k,
                              adam.m.<i>, adam.v.<i>, adamw.m.<i>, adamw.v.<i> moments after the last step.
                            __metadata__ holds the hyperparameters.

--check-cpp FILE: FILE is a safetensors file written by the C++ code (a checkpoint or a weights file).
Its model tensors (every name without an `ema.`, `adam.m.`, `adam.v.` or `check.` prefix) are loaded into
tools/torch_unet.py's UNet (strict load_state_dict, configuration from __metadata__.unet_config, else the
default). EMA and Adam-moment tensors, when present, must name exactly the model's parameters. When the
file holds check.x, check.t and check.output (the C++ forward on check.x, check.t), the PyTorch output is
compared with per-tensor max|a-b|/max|b| <= 1e-4. Exit status 0 when everything matches.

--compare: writes both files into a fresh folder under $TMPDIR and compares them with the committed
ones: the same tensor names, dtypes, shapes and metadata keys; inputs, weights and the optimizer files
identical; the UNet's output, loss and gradients within per-tensor max|a-b|/max|b| <= 1e-5 (PyTorch's
kernels round differently on other CPUs, by ~2e-6 between an AVX2 and an AVX-512 host), the attention
key biases' gradients (zero but for rounding) below 1e-5 of their key weights'. Exit status 0 when they
agree.

The safetensors format is written and read by hand (struct + json): torch 1.13 has no safetensors module.
"""

import argparse
import json
import math
import os
import shutil
import struct
import sys
import tempfile

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
from torch_unet import UNet, Schedule, q_sample, unet_from_config  # noqa: E402

DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}
FROM_DTYPE = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64}


def write_safetensors(path, tensors, metadata):
    """8-byte little-endian header length, JSON header (dtype, shape, data_offsets), raw little-endian data."""
    header = {"__metadata__": {k: str(v) for k, v in metadata.items()}}
    blobs, offset = [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        raw = t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)  # align the data section to 8 bytes, as the safetensors library does
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(path + ".tmp", path)
    print(f"wrote {path}: {len(tensors)} tensors, {os.path.getsize(path)} bytes")


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise ValueError(f"{path}: header length {n} exceeds the file size {len(data)}")
    header = json.loads(data[8:8 + n])
    metadata = header.pop("__metadata__", {})
    body = data[8 + n:]
    tensors = {}
    for name, info in header.items():
        a, b = info["data_offsets"]
        dtype = FROM_DTYPE[info["dtype"]]
        t = torch.frombuffer(bytearray(body[a:b]), dtype=dtype) if b > a else torch.zeros(0, dtype=dtype)
        tensors[name] = t.reshape(info["shape"]).clone()
    return tensors, metadata


# The narrow configuration of the golden file; keep in sync with tests/nn (it reads unet_config).
GOLDEN_CONFIG = dict(in_ch=1, ch=16, ch_mult=[1, 2, 2], num_res_blocks=1, attn_resolutions=[7], resolution=28)


def make_unet(cfg):
    return unet_from_config(cfg)


def make_unet_golden(path):
    torch.manual_seed(20200619)
    model = make_unet(GOLDEN_CONFIG)
    # PyTorch's default init leaves GroupNorm at weight 1, bias 0; perturb them so that a swapped
    # gamma/beta or a wrong affine map shows in the output.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".norm" in name or name.startswith("norm_out"):
                p.add_(0.1 * torch.randn_like(p))
    sched = Schedule()
    x0 = torch.rand(2, 1, 28, 28) * 2 - 1
    noise = torch.randn(2, 1, 28, 28)
    t = torch.tensor([17, 903], dtype=torch.int64)  # 0-based network input; the paper's t is t + 1
    x_t = q_sample(sched, x0, t + 1, noise)
    out = model(x_t, t)
    loss = F.mse_loss(out, noise)
    loss.backward()
    tensors = {name: p for name, p in model.state_dict().items()}
    tensors.update({"x0": x0, "noise": noise, "t": t, "x_t": x_t, "output": out, "loss": loss.reshape([])})
    for name, p in model.named_parameters():
        tensors["grad." + name] = p.grad
    write_safetensors(path, tensors, {"unet_config": json.dumps(GOLDEN_CONFIG), "torch": torch.__version__,
                                      "loss": repr(loss.item())})


ADAM = dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8)
ADAMW = dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)
STEPS = 5


def make_optim_golden(path):
    g = torch.Generator().manual_seed(7)
    init = [torch.randn(3, 4, generator=g), torch.randn(5, generator=g)]
    # Gradients of mixed scale, so eps and the bias corrections matter.
    grads = [[torch.randn(p.shape, generator=g) * (10.0 ** (k - 3)) for p in init] for k in range(STEPS)]
    tensors = {f"p.{i}": p for i, p in enumerate(init)}
    for k in range(STEPS):
        for i, gr in enumerate(grads[k]):
            tensors[f"g.{k + 1}.{i}"] = gr
    for tag, cls, kw in (("adam", torch.optim.Adam, ADAM), ("adamw", torch.optim.AdamW, ADAMW)):
        params = [p.clone().requires_grad_(True) for p in init]
        opt = cls(params, **kw)
        for k in range(STEPS):
            for p, gr in zip(params, grads[k]):
                p.grad = gr.clone()
            opt.step()
            for i, p in enumerate(params):
                tensors[f"{tag}.p.{k + 1}.{i}"] = p.detach().clone()
        for i, p in enumerate(params):
            tensors[f"{tag}.m.{i}"] = opt.state[p]["exp_avg"]
            tensors[f"{tag}.v.{i}"] = opt.state[p]["exp_avg_sq"]
    meta = {"steps": STEPS, "adam": json.dumps(ADAM), "adamw": json.dumps(ADAMW), "torch": torch.__version__}
    write_safetensors(path, tensors, meta)


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


def check_cpp(path):
    tensors, metadata = read_safetensors(path)
    cfg = json.loads(metadata["unet_config"]) if "unet_config" in metadata else None
    model = make_unet(cfg) if cfg else UNet()
    prefixes = ("ema.", "adam.m.", "adam.v.", "check.")
    state = {k: v for k, v in tensors.items() if not k.startswith(prefixes)}
    model.load_state_dict(state, strict=True)  # raises naming missing/unexpected keys and bad shapes
    names = list(model.state_dict().keys())
    print(f"{path}: {len(state)} model tensors load into torch_unet.UNet(config={cfg or 'default'})")
    ok = True
    for prefix in ("ema.", "adam.m.", "adam.v."):
        group = sorted(k[len(prefix):] for k in tensors if k.startswith(prefix))
        if group and group != sorted(names):
            print(f"FAIL: the {prefix}* tensors do not name exactly the model's parameters")
            ok = False
        elif group:
            bad = [n for n in names if tensors[prefix + n].shape != model.state_dict()[n].shape]
            if bad:
                print(f"FAIL: {prefix}{bad[0]} has shape {tuple(tensors[prefix + bad[0]].shape)}")
                ok = False
            else:
                print(f"{prefix}*: {len(group)} tensors, names and shapes match the model")
    for key in ("format", "version", "step", "config", "dataset", "rng"):
        if key in metadata:
            print(f"  metadata {key} = {metadata[key][:80]}")
    if "check.x" in tensors:
        with torch.no_grad():
            out = model(tensors["check.x"].float(), tensors["check.t"].long())
        err = rel_err(out, tensors["check.output"].float())
        print(f"output: max|torch - c++| / max|c++| = {err:.3e} (bound 1e-4)")
        ok = ok and err <= 1e-4
    print("OK" if ok else "MISMATCH")
    return 0 if ok else 1


def compare_with_committed(out_dir):
    ok = True
    for name in ("unet_golden.safetensors", "optim_golden.safetensors"):
        new, new_meta = read_safetensors(os.path.join(out_dir, name))
        old, old_meta = read_safetensors(os.path.join(HERE, name))
        if sorted(new) != sorted(old) or sorted(new_meta) != sorted(old_meta):
            print(f"{name}: MISMATCH: tensor names or metadata keys differ "
                  f"({sorted(set(new) ^ set(old)) or sorted(set(new_meta) ^ set(old_meta))})")
            ok = False
            continue
        worst, worst_name, exact = 0.0, "", 0
        for key in sorted(old):
            a, b = new[key], old[key]
            if a.dtype != b.dtype or a.shape != b.shape:
                print(f"{name}: MISMATCH: {key} is {a.dtype} {tuple(a.shape)}, committed {b.dtype} {tuple(b.shape)}")
                ok = False
                continue
            if torch.equal(a, b):
                exact += 1
                continue
            computed = name == "unet_golden.safetensors" and (key in ("output", "loss") or key.startswith("grad."))
            err = rel_err(a.double(), b.double())
            if computed and key.endswith(".k.bias"):
                # Zero in exact arithmetic (the softmax over keys cancels <q_i, b>): both files hold
                # rounding noise, so both must be negligible next to the key weights' gradient
                # (tests/nn/test_unet_golden.cpp's rule).
                scale = old[key[:-len("bias")] + "weight"].abs().max().item()
                err = max(a.abs().max().item(), b.abs().max().item()) / scale
            if not computed or err > 1e-5:
                print(f"{name}: MISMATCH: {key} differs (max|a-b|/max|b| = {err:.3e})")
                ok = False
            elif err > worst:
                worst, worst_name = err, key
        print(f"{name}: {exact} of {len(old)} tensors identical"
              + (f", the others within {worst:.2e} (largest: {worst_name})" if exact < len(old) else ""))
    print("OK" if ok else "MISMATCH")
    return 0 if ok else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check-cpp", metavar="FILE", help="check a safetensors file written by the C++ code")
    p.add_argument("--compare", action="store_true",
                   help="regenerate into a scratch folder and compare with the committed files")
    p.add_argument("--out-dir", default=HERE)
    args = p.parse_args()
    torch.set_num_threads(1)
    if args.check_cpp:
        sys.exit(check_cpp(args.check_cpp))
    out_dir = tempfile.mkdtemp(prefix="ddpm-golden-") if args.compare else args.out_dir
    try:
        make_unet_golden(os.path.join(out_dir, "unet_golden.safetensors"))
        make_optim_golden(os.path.join(out_dir, "optim_golden.safetensors"))
        if args.compare:
            sys.exit(compare_with_committed(out_dir))
    finally:
        if args.compare:
            shutil.rmtree(out_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
