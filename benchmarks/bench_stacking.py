"""Stacking M copies of the early-fusion GRU for fine-tuning: torch.func vs the hand-written StackedGRU.

Times one forward + backward of M jobs' models on their own batches (B windows × T steps) three ways:

- ``loop``: the module itself, one job after another (``finetune_loop``'s inner step);
- ``stacked``: :class:`affectflow.procedures.finetune.StackedGRU` (hand-written batched GRU, custom backward);
- ``torch.func``: ``stack_module_state`` + ``functional_call`` under ``vmap`` over the real module (no rewrite).

Usage: ``python benchmarks/bench_stacking.py [--jobs 8] [--hidden 64] [--batch 32] [--steps 10] [--repeats 5]``.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from affectflow.models import build_model
from affectflow.procedures.finetune import StackedGRU


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--features", type=int, default=88)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    base = build_model({"type": "gru", "params": {"d_model": a.hidden, "d_fc": 32, "dropout": 0.0},
                        "input_dims": {"f": a.features}, "targets": ["arousal", "valence"]})
    m, b, t = a.jobs, a.batch, a.steps
    x = torch.randn(m, b, t, a.features)
    mask = torch.ones(m, b, t, dtype=torch.bool)
    y = torch.randn(m, b, t, 2)

    def timed(fn) -> float:
        fn()  # warm-up
        t0 = time.perf_counter()
        for _ in range(a.repeats):
            fn()
        return (time.perf_counter() - t0) / a.repeats

    models = [copy.deepcopy(base) for _ in range(m)]

    def loop():
        for j, mod in enumerate(models):
            out = mod({"f": x[j]}, mask[j], {"f": mask[j]})
            ((out - y[j]) ** 2).mean().backward()

    stacked = StackedGRU(base, m)

    def stack():
        fused = torch.stack([base.fuse({"f": x[j]}, {"f": mask[j]}) for j in range(m)])
        out = stacked.forward(fused, mask, training=True)
        ((out - y) ** 2).mean(dim=(1, 2, 3)).sum().backward()

    # the equality of the two paths (same weights) before timing
    with torch.no_grad():
        ref = torch.stack([base({"f": x[j]}, mask[j], {"f": mask[j]}) for j in range(m)])
        got = stacked.forward(torch.stack([base.fuse({"f": x[j]}, {"f": mask[j]}) for j in range(m)]), mask,
                              training=False)
    print(f"stacked vs module max |diff| = {float((ref - got).abs().max()):.2e}")
    rows = [("loop (module per job)", timed(loop)), ("stacked (hand-written)", timed(stack))]

    from torch.func import functional_call, grad, stack_module_state, vmap

    params, buffers = stack_module_state(models)
    skeleton = copy.deepcopy(base).to("meta")

    def loss_one(p, bf, xj, mj, yj):
        out = functional_call(skeleton, (p, bf), ({"f": xj}, mj, {"f": mj}))
        return ((out - yj) ** 2).mean()

    def func():
        vmap(grad(loss_one))(params, buffers, x, mask, y)

    try:
        rows.append(("torch.func vmap(grad(functional_call))", timed(func)))
    except Exception as e:  # noqa: BLE001 - report why it cannot run
        rows.append((f"torch.func: fails ({type(e).__name__}: {str(e).splitlines()[0][:120]})", float("nan")))

    def func_full():  # without packing: the GRU applied to full-length windows (what vmap would need)
        def loss_np(p, bf, xj, yj):
            h = torch.func.functional_call(skeleton.fusion, {"weight": p["fusion.weight"], "bias": p["fusion.bias"]},
                                           (torch.cat([xj, torch.ones(*xj.shape[:2], 1)], -1),))
            gru_p = {k[4:]: v for k, v in p.items() if k.startswith("gru.")}
            out, _ = functional_call(skeleton.gru, gru_p, (h,))
            z = torch.relu(functional_call(skeleton.fc, {"weight": p["fc.weight"], "bias": p["fc.bias"]}, (out,)))
            o = torch.cat([functional_call(skeleton.heads[k], {"weight": p[f"heads.{k}.weight"],
                                                               "bias": p[f"heads.{k}.bias"]}, (z,)) for k in range(2)], -1)
            return ((o - yj) ** 2).mean()
        vmap(grad(loss_np))(params, buffers, x, y)

    try:
        rows.append(("torch.func on nn.GRU without packing", timed(func_full)))
    except Exception as e:  # noqa: BLE001
        rows.append((f"torch.func without packing: fails ({type(e).__name__}: {str(e).splitlines()[0][:120]})",
                     float("nan")))
    print(f"M={m} jobs, hidden {a.hidden}, batch {b} × {t} steps, {a.features} features, {a.threads} thread(s); "
          "one forward+backward of all jobs:")
    loop_s = rows[0][1]
    for name, s in rows:
        print(f"  {name:70s} {s * 1000:9.1f} ms  ({loop_s / s if s == s else float('nan'):.2f}× the loop)")


if __name__ == "__main__":
    main()
