"""Training throughput against the machine's own limit, and peak memory of the default configuration.

Three measurements, each in a fresh subprocess so that peak RSS (``ru_maxrss``) belongs to that measurement alone:

0. ``limit`` (the machine's own limit): the measured fp32 GEMM rate (``torch.mm``, median of ``--reps``) at the sizes
   the models use (the GRU's per-step ``B x H x 3H``, its input projection ``B*T x H x 3H``, the wide fusion layer)
   and at 2048^3, and bf16 where the CPU has native bf16 (AVX512-BF16 / AMX; otherwise the bf16 rate is printed
   but marked emulated). Then, for the MuSe 2023 GRU configurations (4-layer GRU-256, windows 50/25, batch 256; an
   eGeMAPS-like 88-dim set and a 768-dim "wide" set), a TCN and an attention model (the registered ``tcn`` and
   ``transformer``, same windows and batch), on a MuSe 2023-sized corpus (``generate_corpus(layout=
   "personalisation")``, 69 subjects x ~300 s at 2 Hz, as MuSe 2023 c2; ``--subjects`` to change):

   * **FLOP per epoch, counted**: ``torch.utils.flop_counter.FlopCounterMode`` over one real forward + backward
     of the model on the first real training batch, scaled by ``windows / batch``, plus one counted forward
     over the devel partition (the early-stopping evaluation). On the CPU ``aten::gru`` decomposes into
     ``mm``/``addmm`` calls, which the counter sees, so RNN FLOPs are counted, not guessed; the analytic GRU
     count is printed next to it as a check: forward ``sum_l 2 * B * T * 3H * (D_l + H)`` (``D_l`` = layer
     input width), backward twice that, less the input gradient of the first layer.
   * **epoch time**: a real ``affectflow train`` run (:func:`affectflow.experiment.train`: training loop, devel
     evaluation, epoch-state checkpoint, run.json heartbeat) of ``--reps + 1`` epochs; the wall time between
     consecutive epoch callbacks (the first epoch is a warm-up and not counted).
   * **bare module time**: between those epochs (interleaved, so both see the same machine load), forward +
     backward of the bare module on the same windows (as many full batches as the epoch has, already in
     memory, no optimiser, no evaluation): ``nn.GRU`` alone for the GRU configurations (as in issue 17), the
     whole registered model for all (``model`` column).
   * achieved FLOP/s = counted FLOP per epoch / median epoch time, its share of the GEMM rate at 12800x256x768
     measured between the same epochs (the table's first block is measured once, before), and the
     ratio median epoch time / median bare time. The load average is printed with every row: seven other
     developers share this machine's two cores, so only interleaved ratios are meaningful.

1. ``default``: a synthetic corpus of about 6 hours at 2 Hz (72 subjects x 300 s); the default config
   (GRU d_model 256, windows 200/100, batch 32, features acoustic+visual+physio) trained for a fixed number of
   epochs; prints windows/s, steps/s and peak RSS.
2. ``large``: a corpus of 3,000,000 frames x 1000 dims (12 GB of float32 features: 500 recordings x 6000 steps),
   written once under ``--workdir``; training runs for a fixed number of batches; prints peak RSS next to the
   size of the data, to show memory stays bounded (windows are read from disk by offset).

Usage::

    python benchmarks/bench_training.py --only limit --reps 3               # the table against the machine's limit
    python benchmarks/bench_training.py --only limit --models gru,tcn --threads 1
    python benchmarks/bench_training.py                   # all three (the large corpus needs ~25 GB of disk, ~10 min)
    python benchmarks/bench_training.py --only default --epochs 3
    python benchmarks/bench_training.py --only large --frames 600000   # a smaller "large" corpus
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def make_large_corpus(path: Path, frames: int, dims: int, steps_per_rec: int = 6000) -> None:
    """Write a corpus of ``frames`` x ``dims`` float32 features (one set) at 2 Hz with labels, in bounded memory."""
    import pandas as pd

    from affectflow.corpus import Corpus, FeatureSetInfo, LabelSetInfo

    if (path / "corpus.json").is_file():
        return
    n_rec = max(frames // steps_per_rec, 3)
    c = Corpus.create(path, name="bench-large", label_rate_hz=2.0)
    cols = [f"f{j:04d}" for j in range(dims)]
    c.write_feature_set_info(FeatureSetInfo("wide", "other", cols, 2.0))
    c.write_label_set_info(LabelSetInfo("continuous", ["arousal", "valence"], 2.0))
    rng = np.random.default_rng(0)
    w = rng.standard_normal((2, dims)).astype(np.float32) / np.sqrt(2)
    rows = []
    t0 = time.perf_counter()
    for r in range(n_rec):
        rid = f"r{r:04d}"
        t = np.arange(steps_per_rec) / 2.0
        z = np.cumsum(rng.standard_normal((steps_per_rec, 2)), axis=0).astype(np.float32)
        z = np.tanh(z / (np.abs(z).max(0) + 1e-6))
        x = z @ w + rng.standard_normal((steps_per_rec, dims)).astype(np.float32)
        frame = pd.DataFrame(x, columns=cols)
        frame.insert(0, "time", t)
        c.write_features("wide", rid, frame)
        c.write_labels(rid, pd.DataFrame({"time": t, "arousal": z[:, 0], "valence": z[:, 1]}))
        part = "train" if r < int(n_rec * 0.8) else ("devel" if r < int(n_rec * 0.9) else "test")
        rows.append({"id": rid, "subject": rid, "partition": part, "duration": steps_per_rec / 2.0})
        if r % 50 == 0:
            print(f"  wrote {r + 1}/{n_rec} recordings ({time.perf_counter() - t0:.0f} s)", flush=True)
    c.set_recordings(pd.DataFrame(rows))


def run_default(workdir: Path, epochs: int, device: str) -> dict:
    """Train the default config on a ~6 h corpus for ``epochs`` epochs (one seed)."""
    from affectflow.config import load_config
    from affectflow.data import Normalizer, SequenceStore, WindowDataset
    from affectflow.models import MODELS
    from affectflow.synthetic.corpus import generate_corpus
    from affectflow.training.seeds import resolve_device
    from affectflow.training.trainer import fit_seed

    cpath = workdir / "corpus-6h"
    if not (cpath / "corpus.json").is_file():
        generate_corpus(cpath, n_subjects=72, duration_s=300.0, seed=0, progress=False)
    cfg = load_config(None, [f"data.corpus={cpath}", "data.features=[acoustic,visual,physio]",
                             f"training.epochs={epochs}", f"training.patience={epochs + 1}",
                             f"training.device={device}"])
    from affectflow.corpus import Corpus

    corpus = Corpus(cpath)
    hours = corpus.recordings["duration"].sum() / 3600
    d = cfg.data
    store = SequenceStore(corpus, d.features, d.targets, corpus.recording_ids(["train"]))
    norm = Normalizer().fit(store)
    ds = WindowDataset(store, norm, d.window.size, d.window.hop, require_labels=True)
    dev = resolve_device(device)
    model = MODELS.build(cfg.model.type, cfg.model.params, input_dims=store.dims, targets=d.targets)
    t0 = time.perf_counter()
    res = fit_seed(model, ds, lambda m: 0.0, cfg.training, 101, device=dev, progress=False)
    total = time.perf_counter() - t0
    return {
        "benchmark": "default",
        "corpus_hours": round(hours, 2),
        "train_windows_per_epoch": len(ds),
        "epochs": len(res.history),
        "windows_per_s": round(res.windows_per_s, 1),
        "steps_per_s": round(res.windows_per_s * d.window.size, 0),
        "seconds": round(total, 1),
        "device": str(dev),
        "peak_rss_mb": round(_peak_rss_mb(), 0),
    }


def run_large(workdir: Path, frames: int, dims: int, batches: int, device: str) -> dict:
    """Build the large corpus (if needed), align it, fit normalisation, train ``batches`` batches; report memory."""
    from affectflow.config import load_config
    from affectflow.corpus import Corpus
    from affectflow.data import Normalizer, SequenceStore, WindowDataset
    from affectflow.models import MODELS
    from affectflow.training.seeds import resolve_device
    from affectflow.training.trainer import fit_seed

    cpath = workdir / f"corpus-{frames}x{dims}"
    t0 = time.perf_counter()
    make_large_corpus(cpath, frames, dims)
    t_write = time.perf_counter() - t0
    corpus = Corpus(cpath)
    cfg = load_config(None, [f"data.corpus={cpath}", "data.features=[wide]", "training.epochs=1",
                             f"training.device={device}"])
    t1 = time.perf_counter()
    store = SequenceStore(corpus, ["wide"], ["arousal", "valence"], corpus.recording_ids(["train"]))
    t_align = time.perf_counter() - t1
    total_frames = sum(r.length for r in store.records)
    t2 = time.perf_counter()
    norm = Normalizer().fit(store)
    t_norm = time.perf_counter() - t2
    ds = WindowDataset(store, norm, 200, 100, require_labels=True)
    model = MODELS.build("gru", cfg.model.params, input_dims=store.dims, targets=["arousal", "valence"])
    t3 = time.perf_counter()
    res = fit_seed(model, ds, lambda m: 0.0, cfg.training, 1, device=resolve_device(device), progress=False,
                   max_batches=batches)
    return {
        "benchmark": "large",
        "train_frames": total_frames,
        "dims": dims,
        "feature_bytes_gb": round(total_frames * dims * 4 / 1e9, 2),
        "write_s": round(t_write, 1),
        "align_s": round(t_align, 1),
        "normalise_s": round(t_norm, 1),
        "train_batches": batches,
        "train_s": round(time.perf_counter() - t3, 1),
        "windows_per_s": round(res.windows_per_s, 1),
        "peak_rss_mb": round(_peak_rss_mb(), 0),
    }


# ---------------------------------------------------------------------------------------------- the machine's limit
#: name -> (model type, feature sets, --set overrides): the configurations of the ``limit`` table
LIMIT_MODELS = {
    "gru": ("gru", ["acoustic"], ["model.num_layers=4", "model.d_model=256"]),
    "gru-wide": ("gru", ["wide"], ["model.num_layers=4", "model.d_model=256"]),
    "tcn": ("tcn", ["acoustic"], []),
    "attention": ("transformer", ["acoustic"], []),
}


def bf16_native() -> bool:
    """True when the CPU has native bf16 arithmetic (AVX512-BF16 or AMX); without it torch emulates bf16."""
    import torch

    cap = torch.backends.cpu.get_cpu_capability()
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    return "avx512_bf16" in flags or "amx_bf16" in flags or cap.startswith("AMX")


def gemm_rate(m: int, k: int, n: int, dtype, reps: int) -> float:
    """Median GFLOP/s of ``torch.mm`` of an ``(m, k)`` by a ``(k, n)`` matrix (2mkn FLOP per product)."""
    import torch

    a, b = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
    inner = max(1, int(2e9 // (2 * m * k * n)))  # ~2 GFLOP per timing
    torch.mm(a[:8], b)  # warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(inner):
            torch.mm(a, b)
        times.append((time.perf_counter() - t0) / inner)
    return 2 * m * k * n / statistics.median(times) / 1e9


def gru_flops(layers: int, d_in: int, hidden: int, batch: int, steps: int) -> dict:
    """Analytic GRU FLOP (matrix products only): forward ``sum_l 2 B T 3H (D_l + H)``; backward twice that, less
    the first layer's input gradient ``2 B T 3H D_0`` (the input needs no gradient)."""
    fwd = sum(2 * batch * steps * 3 * hidden * ((d_in if l == 0 else hidden) + hidden) for l in range(layers))
    return {"forward": fwd, "forward_backward": 3 * fwd - 2 * batch * steps * 3 * hidden * d_in}


def make_muse_corpus(path: Path, subjects: int) -> None:
    """The MuSe 2023-sized corpus: personalisation layout, ``subjects`` x ~300 s at 2 Hz, the generator's sets plus a
    768-dim ``wide`` set (a wav2vec2-like width)."""
    from affectflow.synthetic.corpus import DEFAULT_SPECS, FeatureSpec, generate_corpus

    if (path / "corpus.json").is_file():
        return
    specs = [*DEFAULT_SPECS, FeatureSpec("wide", "audio", 768, 2.0, arousal=0.8, valence=0.6, kind="nonlinear",
                                         noise=1.5)]
    generate_corpus(path, n_subjects=subjects, duration_s=300.0, seed=0, layout="personalisation", features=specs,
                    progress=False)


def _limit_config(corpus: Path, runs: Path, which: str, epochs: int, threads: int, device: str):
    from affectflow.config import load_config

    mtype, feats, extra = LIMIT_MODELS[which]
    return load_config(None, [f"data.corpus={corpus}", f"data.features=[{','.join(feats)}]", f"model.type={mtype}",
                              "data.window.size=50", "data.window.hop=25", "training.batch_size=256",
                              f"training.epochs={epochs}", f"training.patience={epochs + 1}", "training.seeds=[1]",
                              f"training.device={device}", f"output.runs_dir={runs}", "output.plots=false",
                              *([f"training.num_threads={threads}"] if threads else []), *extra])


def run_limit_model(corpus: Path, which: str, reps: int, threads: int, device: str) -> dict:
    """One row of the ``limit`` table (see the module docstring)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from affectflow.corpus import Corpus
    from affectflow.data import Normalizer
    from affectflow.data.batches import PreparedBatches
    from affectflow.experiment import train
    from affectflow.models import MODELS
    from affectflow.tasks import make_task, target_specs
    from affectflow.training.losses import get_loss

    runs = Path(tempfile.mkdtemp(prefix="bench-limit-"))
    cfg = _limit_config(corpus, runs, which, reps + 1, threads, device)
    d = cfg.data
    c = Corpus(corpus)
    specs = target_specs(c, d.task, d.targets, d.target_types, d.label_set)
    task = make_task(d.task, c, specs, features=d.features, label_set=d.label_set)
    train_store = task.store(c.recording_ids(d.train_partitions))
    devel_store = task.store(c.recording_ids([d.devel_partition]))
    norm = Normalizer(mode=d.normalize).fit(train_store)
    ds = task.train_dataset(train_store, norm, d.window)
    bs = cfg.training.batch_size
    n_batches = -(-len(ds) // bs)
    prep = PreparedBatches(ds)
    # the epoch's windows in batches of the epoch's sizes (full batches, then the rest)
    full = [prep.batch(torch.arange(i * bs, min((i + 1) * bs, len(ds)))) for i in range(n_batches)]
    loss_fn = get_loss(cfg.training.loss)
    dims = norm.output_dims(train_store.dims)

    def build():
        return MODELS.build(cfg.model.type, cfg.model.params, input_dims=dims, targets=d.targets)

    def model_fwd_bwd(model, batch):
        loss = loss_fn(model(batch["x"], batch["mask"], batch["feature_mask"]), batch["y"], batch["y_mask"])
        loss.backward()

    # FLOP per epoch, counted
    model = build().train()
    with FlopCounterMode(display=False) as fc:
        model_fwd_bwd(model, full[0])
    train_flop = fc.get_total_flops() * len(ds) / len(full[0]["mask"])
    with FlopCounterMode(display=False) as fc:
        task.predict(model, devel_store, norm, {"size": None, "hop": None})
    devel_flop = fc.get_total_flops()
    row = {"model": which, "type": cfg.model.type, "features": "+".join(d.features), "input_dim": sum(dims.values()),
           "train_windows": len(ds), "batches_per_epoch": n_batches, "flop_per_epoch_G": (train_flop + devel_flop) / 1e9,
           "train_flop_G": train_flop / 1e9, "devel_flop_G": devel_flop / 1e9}
    is_gru = cfg.model.type == "gru"
    p = cfg.model.params
    if is_gru:
        h, layers = int(p.get("d_model", 256)), int(p.get("num_layers", 1))
        gru = torch.nn.GRU(h, h, num_layers=layers, batch_first=True)
        gx = [torch.randn(len(b["mask"]), d.window.size, h) for b in full]
        row["gru_analytic_flop_G"] = gru_flops(layers, h, h, len(ds), d.window.size)["forward_backward"] / 1e9

    bare_model, bare_core, marks = [], [], []
    bare = build().train()

    def measure_bare():
        t0 = time.perf_counter()
        for b in full:
            bare.zero_grad(set_to_none=True)
            model_fwd_bwd(bare, b)
        bare_model.append(time.perf_counter() - t0)
        if is_gru:
            t0 = time.perf_counter()
            for x in gx:
                gru.zero_grad(set_to_none=True)
                out, _ = gru(x)
                out.sum().backward()
            bare_core.append(time.perf_counter() - t0)

    epochs, loads, gemm = [], [], []

    def on_epoch(seed, hist_row):
        now = time.perf_counter()
        if marks:
            epochs.append(now - marks[-1])
            loads.append(os.getloadavg()[0])
        measure_bare()
        gemm.append(gemm_rate(12800, 256, 768, torch.float32, 1))  # the machine's rate under the same load
        marks.append(time.perf_counter())

    run_dir = train(cfg, progress=False, on_epoch=on_epoch)
    import pandas as pd
    import shutil

    hist = pd.read_csv(Path(run_dir) / "history" / "seed-1.csv")
    shutil.rmtree(runs, ignore_errors=True)
    ep = statistics.median(epochs)
    row.update({
        "epoch_s": ep, "epoch_s_all": [round(v, 2) for v in epochs],
        "train_devel_s": float(hist["seconds"].iloc[1:].median()),
        "bare_model_s": statistics.median(bare_model), "epoch_over_bare_model": ep / statistics.median(bare_model),
        "achieved_GFLOP_s": (train_flop + devel_flop) / ep / 1e9, "load_avg": round(statistics.median(loads), 1),
        "gemm_interleaved_GFLOP_s": statistics.median(gemm),
        "share_of_gemm": (train_flop + devel_flop) / ep / 1e9 / statistics.median(gemm),
        "threads": torch.get_num_threads(),
    })
    if bare_core:
        row.update({"bare_nn_gru_s": statistics.median(bare_core),
                    "epoch_over_bare_nn_gru": ep / statistics.median(bare_core)})
    return row


def run_limit(workdir: Path, models: list[str], reps: int, subjects: int, threads: int, device: str) -> dict:
    """The machine's GEMM rates and one row per configuration (printed as a table by :func:`print_limit`)."""
    import torch

    corpus = workdir / f"muse2023-{subjects}"
    make_muse_corpus(corpus, subjects)
    if threads:
        torch.set_num_threads(threads)
    sizes = {"gru_step 256x256x768": (256, 256, 768), "gru_input 12800x256x768": (12800, 256, 768),
             "wide_fusion 12800x769x256": (12800, 769, 256), "large 2048^3": (2048, 2048, 2048)}
    gemm = {name: gemm_rate(*mkn, torch.float32, reps) for name, mkn in sizes.items()}
    # bf16 at the GRU's step size and at 1024^3 (emulated bf16 is ~100x slower: 2048^3 would take minutes)
    gemm_bf16 = {name: gemm_rate(*mkn, torch.bfloat16, 1) for name, mkn in
                 {"gru_step 256x256x768": (256, 256, 768), "1024^3": (1024, 1024, 1024)}.items()}
    rows = []
    for m in models:  # each row also appended to <workdir>/limit-rows.jsonl as soon as it is measured
        rows.append(run_limit_model(corpus, m, reps, threads, device))
        with open(workdir / "limit-rows.jsonl", "a") as f:
            f.write(json.dumps({"gemm_fp32_GFLOP_s": gemm, **rows[-1]}) + "\n")
    return {"benchmark": "limit", "corpus": str(corpus), "subjects": subjects, "cpu_capability":
            torch.backends.cpu.get_cpu_capability(), "bf16_native": bf16_native(), "threads": torch.get_num_threads(),
            "gemm_fp32_GFLOP_s": gemm, "gemm_bf16_GFLOP_s": gemm_bf16, "rows": rows,
            "load_avg_end": os.getloadavg()}


def print_limit(res: dict) -> None:
    """The ``limit`` result as plain-text tables."""
    print(f"\n== limit: machine rate (torch.mm, {res['threads']} threads, CPU {res['cpu_capability']}, "
          f"native bf16: {res['bf16_native']}) ==")
    for name, v in res["gemm_fp32_GFLOP_s"].items():
        print(f"  {name:<28} fp32 {v:7.1f} GFLOP/s")
    for name, v in res["gemm_bf16_GFLOP_s"].items():
        print(f"  {name:<28} bf16 {v:7.1f} GFLOP/s" + ("" if res["bf16_native"] else " (emulated: no native bf16)"))
    print(f"\n== limit: epochs of `affectflow train` against the bare module (corpus {res['corpus']}, "
          f"{res['subjects']} subjects; windows 50/25, batch 256; medians) ==")
    head = (f"  {'config':<10} {'in':>4} {'win':>5} {'GFLOP/ep':>9} {'epoch s':>8} {'bare model s':>12} "
            f"{'ep/bare':>7} {'nn.GRU s':>8} {'ep/GRU':>6} {'GFLOP/s':>8} {'share':>6} {'load':>5}")
    print(head)
    for r in res["rows"]:
        print(f"  {r['model']:<10} {r['input_dim']:>4} {r['train_windows']:>5} {r['flop_per_epoch_G']:>9.1f} "
              f"{r['epoch_s']:>8.2f} {r['bare_model_s']:>12.2f} {r['epoch_over_bare_model']:>7.2f} "
              f"{r.get('bare_nn_gru_s', float('nan')):>8.2f} {r.get('epoch_over_bare_nn_gru', float('nan')):>6.2f} "
              f"{r['achieved_GFLOP_s']:>8.1f} {r['share_of_gemm']:>6.1%} {r['load_avg']:>5}")
    print("  (GFLOP/ep: counted train forward+backward + devel forward; share: of the fp32 GEMM rate at "
          "12800x256x768 measured between the epochs; ep/bare: epoch / bare forward+backward on the same windows)")
    for r in res["rows"]:
        if "gru_analytic_flop_G" in r:
            print(f"  {r['model']}: counted train {r['train_flop_G']:.1f} GFLOP vs analytic GRU-only "
                  f"{r['gru_analytic_flop_G']:.1f} GFLOP; devel forward {r['devel_flop_G']:.1f} GFLOP")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["limit", "default", "large"])
    ap.add_argument("--workdir", default=".bench", help="where benchmark corpora are written (reused)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--frames", type=int, default=3_000_000)
    ap.add_argument("--dims", type=int, default=1000)
    ap.add_argument("--batches", type=int, default=30)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--models", default=",".join(LIMIT_MODELS), help="limit: configurations, comma-separated")
    ap.add_argument("--reps", type=int, default=3, help="limit: timed epochs (and bare runs) per configuration")
    ap.add_argument("--subjects", type=int, default=69, help="limit: subjects of the MuSe 2023-sized corpus")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.child == "limit":
        print(json.dumps(run_limit(workdir, args.models.split(","), args.reps, args.subjects, args.threads,
                                   args.device)))
        return
    if args.child == "default":
        print(json.dumps(run_default(workdir, args.epochs, args.device)))
        return
    if args.child == "large":
        print(json.dumps(run_large(workdir, args.frames, args.dims, args.batches, args.device)))
        return
    for which in ["limit", "default", "large"]:
        if args.only and which != args.only:
            continue
        cmd = [sys.executable, __file__, "--child", which, "--workdir", str(workdir), "--epochs", str(args.epochs),
               "--frames", str(args.frames), "--dims", str(args.dims), "--batches", str(args.batches),
               "--device", args.device, "--threads", str(args.threads), "--models", args.models,
               "--reps", str(args.reps), "--subjects", str(args.subjects)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
        for line in out.stdout.splitlines():
            if not line.startswith("{"):
                print(line)
        res = json.loads(out.stdout.strip().splitlines()[-1])
        if which == "limit":
            print_limit(res)
            (workdir / "limit.json").write_text(json.dumps(res, indent=1))
            continue
        print(f"\n== {which} ==")
        for k, v in res.items():
            print(f"  {k:>24}: {v}")


if __name__ == "__main__":
    main()
