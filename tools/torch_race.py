#!/usr/bin/python3
"""Times the project's PyTorch UNet (tools/torch_unet.py) on the work ./apps/bench times in C++.

    /usr/bin/python3 tools/torch_race.py --mode train  --batch 64 --threads 2 --steps 10 --warmup 2
    /usr/bin/python3 tools/torch_race.py --mode sample --batch 64 --threads 2 --steps 10 --warmup 2 --json
    /usr/bin/python3 tools/torch_race.py --list-params

`./apps/bench --mode train|sample|both` runs it once per round and thread count (needs Debian's
python3-torch) and reads the last line of its output with --json: one JSON object whose
`step_times` (seconds of each timed step) and `peak_rss_mib` (ru_maxrss) it uses.

The timed work is one step as the C++ library takes it:
  train   zero the gradients; L_simple (eq. 14, mean over pixels) on x_t = q_sample(x0, t, eps);
          backward; global gradient-norm clipping at 1.0; the learning rate of the linear warm-up
          (2e-4 * min(1, k / 200) at update k); Adam (lr, betas 0.9 / 0.999, eps 1e-8); the EMA
          update (decay 0.999 with its warm-up). x0 ~ U[-1, 1], t ~ U{1..T} and eps are drawn
          before the timer, as the C++ bench draws them.
  sample  one reverse step of Algorithm 2 under no-grad, from t = T down: eps_theta(x_t, t), x0_hat
          clipped to [-1, 1], the eq. (7) posterior mean, fixed large variance, z drawn inside the
          step (the C++ sampler draws it there too).
"""

import argparse
import json
import math
import os
import resource
import statistics
import sys
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=["train", "sample"], default="train")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=2, help="intra-op threads (OpenMP, oneDNN, OpenBLAS)")
    p.add_argument("--steps", type=int, default=10, help="timed steps")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="end with one JSON line (what ./apps/bench reads)")
    p.add_argument("--list-params", action="store_true",
                   help="print the default UNet's parameter names and shapes (nn/unet.h's format) and exit")
    args = p.parse_args(argv)
    for name in ("batch", "threads", "steps"):
        if getattr(args, name) < 1:
            p.error(f"--{name}: expected >= 1, got {getattr(args, name)}")
    if args.warmup < 0:
        p.error(f"--warmup: expected >= 0, got {args.warmup}")
    return args


ARGS = parse_args()
# The OpenMP runtime reads its thread count when torch loads, so set it before the import.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_unet as tu  # noqa: E402

LR, WARMUP, GRAD_CLIP, EMA_DECAY = 2e-4, 200, 1.0, 0.999  # apps/common/run_config.h's defaults


def train_steps(model, sched, args):
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=LR, betas=(0.9, 0.999), eps=1e-8)
    ema = tu.Ema(model, EMA_DECAY)
    B, times, loss = args.batch, [], None
    for k in range(1, args.warmup + args.steps + 1):
        x0 = torch.rand(B, 1, 28, 28) * 2 - 1
        t = torch.randint(1, sched.T + 1, (B,))
        noise = torch.randn(B, 1, 28, 28)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        loss = tu.loss_simple(model, sched, x0, t, noise)
        loss.backward()
        tu.clip_grad_norm(model.parameters(), GRAD_CLIP)
        for group in opt.param_groups:
            group["lr"] = LR * min(1.0, k / WARMUP)
        opt.step()
        ema.update()
        dt = time.perf_counter() - t0
        if k > args.warmup:
            times.append(dt)
    if not math.isfinite(loss.item()):
        raise SystemExit(f"torch_race: expected a finite loss, got {loss.item()}")
    return times, {"final_loss": loss.item()}


def sample_steps(model, sched, args):
    model.eval()
    x = torch.randn(args.batch, 1, 28, 28)
    times = []
    for i in range(args.warmup + args.steps):
        t = max(1, sched.T - i)
        t0 = time.perf_counter()
        x = tu.reverse_step(model, sched, x, t)
        dt = time.perf_counter() - t0
        if i >= args.warmup:
            times.append(dt)
    if not torch.isfinite(x).all():
        raise SystemExit("torch_race: expected finite samples")
    return times, {}


def main(args):
    torch.set_num_threads(args.threads)  # Debian's torch otherwise picks its own count
    torch.manual_seed(args.seed)
    model = tu.UNet()
    if args.list_params:
        sys.stdout.write(tu.parameter_list(model))
        return
    sched = tu.Schedule()
    times, extra = (train_steps if args.mode == "train" else sample_steps)(model, sched, args)
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    med = statistics.median(times)
    res = {
        "mode": args.mode, "batch": args.batch, "threads": args.threads, "torch": torch.__version__,
        "params": sum(p.numel() for p in model.parameters()),
        "sec_per_step_median": med, "sec_per_step_min": min(times), "sec_per_step_max": max(times),
        "per_sec": args.batch / med,
        "peak_rss_mib": ru1.ru_maxrss / 1024.0,  # Linux reports KiB
        "steps": args.steps, "warmup": args.warmup, "step_times": times,
    }
    res.update(extra)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.mode} step, batch {args.batch}: "
          f"median {med:.4f} s (min {min(times):.4f}, max {max(times):.4f}) over {args.steps} steps "
          f"after {args.warmup} warm-up; peak RSS {res['peak_rss_mib']:.0f} MiB")
    if args.json:
        print(json.dumps(res))


if __name__ == "__main__":
    main(ARGS)
