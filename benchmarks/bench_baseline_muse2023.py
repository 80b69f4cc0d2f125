"""Side by side with the challenge baseline: the public MuSe 2023 baseline code (EIHW/MuSe-2023) and affectflow on
the same generated corpus, same machine, same configuration: stage 1 (3 seeds) + stage 2 (personalisation).

Get the baseline code outside this repository (never commit it), e.g.::

    git clone https://github.com/EIHW/MuSe-2023 /work/baseline-src      # or: git archive of a mirror into a folder
    nice -n 10 python benchmarks/bench_baseline_muse2023.py /work/baseline-src                 # MuSe 2023 size
    nice -n 10 python benchmarks/bench_baseline_muse2023.py /work/baseline-src --epochs 10     # capped (say so)

What it does, in one process:

1. ``affectflow generate CORPUS --layout personalisation`` (``--subjects`` × ``--duration`` s at 2 Hz; 69 × 300 s
   is the size of Ulm-TSST in MuSe 2023), then writes the same corpus in the baseline's ``c3_muse_personalisation``
   layout (:func:`affectflow.synthetic.muse.write_muse_task` with ``keep_ids``: ``metadata/partition.csv``,
   ``feature_segments/<set>/<Id>.csv``, ``label_segments/{physio-arousal,valence}/<Id>.csv``). The feature set is
   ``acoustic`` (88 columns at 2 Hz, linear in arousal: the stand-in for eGeMAPS); the baseline joins features
   and labels by row position, so the script checks that every file has exactly the label rows.
2. The baseline's best published eGeMAPS configuration for the dimension (``--dim``; its
   ``personalisation_1st_step_best.sh`` / ``personalisation_2nd_step_best.sh``, the official 0.7482 arousal
   baseline is this eGeMAPS model personalised), run unchanged through ``baseline_muse2023_shim.py`` (which
   lists the run-time patches for today's NumPy / torch): ``main.py`` with ``--n_seeds 3``, then
   ``personalisation.py`` on the seed it selected on devel. Its own test CCCs are read from its output (it has the
   test labels here and scores them with ``audmetric.concordance_cc``, the challenge's pooled CCC).
3. affectflow with the equal configuration: ``affectflow train`` (same seeds, model, windows, optimiser, lr
   schedule, early stopping) and ``affectflow personalise`` (same seeds, windows, epochs, patience, lr).
4. ``affectflow yardstick --run`` (ridge on the same feature set, unpersonalised) as the simple yardstick.

Prints one table: per stage the wall time and the CPU time (user + system of the stage's processes, from
``getrusage(RUSAGE_CHILDREN)``; less sensitive to other load on a shared machine than wall time), the test CCC of
each, and the ratios; writes everything (commands, logs, numbers) to ``--work`` (``results.json``).
Both sides get ``--threads`` torch/OpenMP threads (default 1) through ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS``
(the baseline has no thread option; affectflow also gets ``training.num_threads`` / ``--threads``); the baseline's
DataLoaders keep their hard-coded ``num_workers=4``. ``--workers N`` has affectflow run in ``N`` forked 1-thread
processes: stage 1's seeds (``training.seed_workers``) and stage 2's groups of subject × seed jobs
(``personalise --backend forked``); ``--workers auto`` gives stage 1 ``training.seed_workers=auto`` and stage 2 one
worker per CPU. Give the baseline the same cores with ``--threads`` (2 on the 2-core machine).

Known differences of the "equal" configuration (not settable on one side or the other): affectflow's input
projection has a bias and its ``model.dropout`` (0.5 = the baseline's ``linear_dropout``) also applies after the
input projection; affectflow's personalisation has no learning-rate schedule (the baseline's ReduceLROnPlateau
patience 5 rarely fires within 20 epochs with patience 10).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
SHIM = HERE / "baseline_muse2023_shim.py"

#: The baseline's best published eGeMAPS calls (``personalisation_1st_step_best.sh`` /
#: ``personalisation_2nd_step_best.sh``); ``epochs`` of stage 1 is ``main.py``'s default (100, patience 15, 5 seeds:
#: here 3). ``--feature`` is the generated corpus's set.
CONFIGS = {
    "arousal": {
        "emo_dim": "physio-arousal",
        "stage1": {"model_dim": 256, "rnn_n_layers": 4, "lr": 0.002, "win_len": 50, "hop_len": 25,
                   "rnn_dropout": 0.5, "epochs": 100, "early_stopping_patience": 15},
        "stage2": {"lr": 0.002, "early_stopping_patience": 10, "epochs": 20, "win_len": 10, "hop_len": 5},
    },
    "valence": {
        "emo_dim": "valence",
        "stage1": {"model_dim": 256, "rnn_n_layers": 4, "lr": 0.002, "win_len": 200, "hop_len": 100,
                   "rnn_dropout": 0.5, "epochs": 100, "early_stopping_patience": 15},
        "stage2": {"lr": 0.001, "early_stopping_patience": 10, "epochs": 5, "win_len": 20, "hop_len": 10},
    },
}

def paper_stage1(published: dict) -> dict:
    """Stage 1 with the paper's configuration (Li et al., MuSe '23, 4.2 and Tables 4/5), as affectflow's ``muse2023``
    recipe sets it (``src/affectflow/recipes/muse2023.yaml`` params: ``d_model``, ``num_layers``, ``lr``,
    ``batch_size``, ``window``): one GRU layer of 256, Adam lr 1e-3, batch 128, windows 200 / hop 100; epochs and
    early-stopping patience stay the published call's. One layer has no inter-layer dropout (0 on both sides)."""
    import yaml

    params = yaml.safe_load((SRC / "affectflow" / "recipes" / "muse2023.yaml").read_text())["params"]
    v = {k: params[k]["value"] for k in ("d_model", "num_layers", "lr", "batch_size", "window")}
    return {**published, "model_dim": v["d_model"], "rnn_n_layers": v["num_layers"], "lr": v["lr"],
            "batch_size": v["batch_size"], "win_len": v["window"]["size"], "hop_len": v["window"]["hop"],
            "rnn_dropout": 0.0 if v["num_layers"] == 1 else published["rnn_dropout"]}


# main.py / personalisation.py defaults that the calls leave alone (and affectflow is set to)
BASELINE_DEFAULTS = {"batch_size": 256, "d_fc_out": 64, "linear_dropout": 0.5, "reduce_lr_patience": 5,
                     "lr_factor": 0.5, "min_lr": 1e-5, "pers_seeds": 5, "seed": 101}


def ours_train_settings(s1: dict, dim: str, feature: str, seeds: list[int], epochs: int, threads: int,
                        seed_workers: int = 1) -> list[str]:
    """``--set`` overrides giving affectflow's ``train`` the stage-1 configuration ``s1`` the baseline runs with."""
    d = BASELINE_DEFAULTS
    return [
        f"data.features=[{feature}]", f"data.targets=[{dim}]", "data.normalize=global",
        f"data.window={{size: {s1['win_len']}, hop: {s1['hop_len']}}}", "data.eval_window={size: null, hop: null}",
        "model.type=gru", f"model.d_model={s1['model_dim']}", f"model.num_layers={s1['rnn_n_layers']}",
        "model.bidirectional=false", f"model.d_fc={d['d_fc_out']}", f"model.dropout={d['linear_dropout']}",
        f"model.rnn_dropout={s1['rnn_dropout']}", "model.tanh_output=true", "model.mask_inputs=false",
        "training.loss=ccc", "training.optimizer=adam", f"training.lr={s1['lr']}", "training.weight_decay=0.0",
        f"training.batch_size={s1.get('batch_size', d['batch_size'])}", f"training.epochs={epochs}",
        f"training.patience={s1['early_stopping_patience']}", f"training.lr_patience={d['reduce_lr_patience']}",
        f"training.lr_factor={d['lr_factor']}", f"training.min_lr={d['min_lr']}", "training.grad_clip=0",
        f"training.seeds=[{','.join(map(str, seeds))}]", "training.device=cpu", "training.num_workers=0",
        f"training.num_threads={threads}", f"training.seed_workers={seed_workers}", "output.plots=false",
    ]


def run_stage(name: str, cmd: list[str], log: Path, env: dict) -> dict:
    """Run ``cmd`` (stdout + stderr to ``log``); return wall and CPU seconds and the output text."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    text = log.read_text(errors="replace")
    if proc.returncode != 0:
        tail = "\n".join(text.splitlines()[-25:])
        sys.exit(f"{name} failed (exit {proc.returncode}); last lines of {log}:\n{tail}")
    print(f"{name}: {wall:.1f} s wall, {cpu:.1f} s CPU (log {log})", flush=True)
    return {"wall_s": wall, "cpu_s": cpu, "command": cmd, "log": str(log), "text": text}


def grab(pattern: str, text: str, what: str) -> re.Match:
    m = None
    for m in re.finditer(pattern, text):
        pass  # the last match
    if m is None:
        sys.exit(f"could not find {what} in the output (pattern {pattern!r})")
    return m


def check_row_alignment(task: Path, feature: str, emo_dim: str) -> int:
    """The baseline joins feature and label files by row position: every pair must have the same timestamps."""
    ids = pd.read_csv(task / "metadata" / "partition.csv")["Id"].astype(str)
    for rid in ids:
        f = pd.read_csv(task / "feature_segments" / feature / f"{rid}.csv", usecols=["timestamp"])["timestamp"]
        lab = pd.read_csv(task / "label_segments" / emo_dim / f"{rid}.csv", usecols=["timestamp"])["timestamp"]
        if len(f) != len(lab) or (f.to_numpy() != lab.to_numpy()).any():
            sys.exit(f"feature set {feature!r} of {rid} is not on the label grid ({len(f)} rows vs {len(lab)} label "
                     "rows): the baseline would join them by row position. Use a set at the label rate with no "
                     "dropped frames (acoustic).")
    return len(ids)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("baseline", help="checkout of github.com/EIHW/MuSe-2023 (main.py, personalisation.py, ...)")
    ap.add_argument("--dim", choices=sorted(CONFIGS), default="arousal",
                    help="which published eGeMAPS configuration (default arousal: the official 0.7482 baseline)")
    ap.add_argument("--config", choices=["published", "paper"], default="published",
                    help="stage-1 configuration for both sides: the baseline's best published call for --dim "
                    "(default), or the paper's (1 GRU layer of 256, lr 1e-3, batch 128, windows 200/100: what "
                    "affectflow's muse2023 recipe trains); stage 2 is the published call either way")
    ap.add_argument("--feature", default="acoustic", help="feature set of the generated corpus (default acoustic)")
    ap.add_argument("--subjects", type=int, default=69, help="subjects (default 69, as Ulm-TSST)")
    ap.add_argument("--duration", type=float, default=300.0, help="mean recording length in s (default 300)")
    ap.add_argument("--corpus-seed", type=int, default=0)
    ap.add_argument("--stage1-seeds", type=int, default=3, help="stage-1 seeds 101.. (default 3)")
    ap.add_argument("--epochs", type=int, default=None,
                    help="stage-1 epoch cap for both (default: the baseline's 100, with patience 15)")
    ap.add_argument("--pers-seeds", type=int, default=BASELINE_DEFAULTS["pers_seeds"],
                    help="personalisation seeds 101.. (default 5, personalisation.py's default)")
    ap.add_argument("--pers-epochs", type=int, default=None, help="stage-2 epoch cap (default: the published call's)")
    ap.add_argument("--threads", type=int, default=1, help="torch / OpenMP threads for both sides (default 1)")
    ap.add_argument("--workers", type=lambda v: v if v == "auto" else int(v), default=1,
                    help="affectflow runs its work in this many forked 1-thread processes: stage 1's seeds "
                         "(training.seed_workers; seeds left over from whole rounds train after them with --threads "
                         "threads) and stage 2's groups of subject x seed jobs (personalise --backend forked); "
                         "default 1: one process; auto: training.seed_workers=auto and one stage-2 worker per CPU. "
                         "Give the baseline the same cores with --threads")
    ap.add_argument("--work", help="work folder, must not exist (default: bench_baseline_muse2023-<time> in the "
                    "current folder)")
    args = ap.parse_args()

    baseline = Path(args.baseline).resolve()
    for f in ("main.py", "personalisation.py", "config.py", "data_parser.py"):
        if not (baseline / f).is_file():
            sys.exit(f"{baseline} does not look like a checkout of EIHW/MuSe-2023: {f} is missing.")
    work = Path(args.work or f"bench_baseline_muse2023-{time.strftime('%Y%m%d-%H%M%S')}").resolve()
    if work.exists():
        sys.exit(f"{work} exists; give a new --work folder (results are never overwritten).")
    work.mkdir(parents=True)

    cfg = CONFIGS[args.dim]
    s1, s2 = dict(cfg["stage1"]), dict(cfg["stage2"])
    if args.config == "paper":
        s1 = paper_stage1(s1)
    if args.epochs:
        s1["epochs"] = args.epochs
    if args.pers_epochs:
        s2["epochs"] = args.pers_epochs
    emo_dim = cfg["emo_dim"]
    seed0 = BASELINE_DEFAULTS["seed"]
    seeds1 = list(range(seed0, seed0 + args.stage1_seeds))
    seeds2 = list(range(seed0, seed0 + args.pers_seeds))

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), *filter(None, [env.get("PYTHONPATH")])])
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[k] = str(args.threads)
    py = sys.executable
    af = [py, "-m", "affectflow.cli.main"]
    rev = subprocess.run(["git", "-C", str(HERE.parent), "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True).stdout.strip()
    brev = subprocess.run(["git", "-C", str(baseline), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip() or "(not a git checkout)"
    print(f"settings: {vars(args)}; affectflow {rev}; baseline {baseline} {brev}; work {work}", flush=True)
    print(f"stage 1: {s1}; stage 2: {s2}; stage-1 seeds {seeds1}; personalisation seeds {seeds2}", flush=True)

    # 1. corpus, in both layouts
    corpus_dir, task = work / "corpus", work / "c3_muse_personalisation"
    gen = run_stage("generate", [*af, "generate", str(corpus_dir), "--layout", "personalisation", "--subjects",
                                 str(args.subjects), "--duration", str(args.duration), "--seed",
                                 str(args.corpus_seed), "-q"], work / "generate.log", env)
    sys.path.insert(0, str(SRC))
    from affectflow.corpus.corpus import Corpus
    from affectflow.synthetic.muse import write_muse_task

    t0 = time.perf_counter()
    corpus = Corpus(corpus_dir)
    dim_names = {"arousal": "physio-arousal"}
    write_muse_task(corpus, task, features=[args.feature], label_dims=["arousal", "valence"], keep_ids=True,
                    dim_names=dim_names)
    n_ids = check_row_alignment(task, args.feature, emo_dim)
    print(f"baseline layout: {n_ids} ids in {task} ({time.perf_counter() - t0:.1f} s)", flush=True)

    # 2./3. stage 1: baseline, then ours
    bout = work / "baseline-out"
    b1 = run_stage("baseline stage 1", [
        py, str(SHIM), str(baseline), str(task), str(bout), "main.py", "--task", "personalisation",
        "--feature", args.feature, "--normalize", "--emo_dim", emo_dim, "--model_dim", str(s1["model_dim"]),
        "--rnn_n_layers", str(s1["rnn_n_layers"]), "--lr", str(s1["lr"]), "--win_len", str(s1["win_len"]),
        "--hop_len", str(s1["hop_len"]), "--rnn_dropout", str(s1["rnn_dropout"]), "--epochs", str(s1["epochs"]),
        "--early_stopping_patience", str(s1["early_stopping_patience"]), "--seed", str(seed0),
        "--batch_size", str(s1.get("batch_size", BASELINE_DEFAULTS["batch_size"])),
        "--n_seeds", str(len(seeds1))], work / "baseline-stage1.log", env)
    m = grab(r"Best CCC on \[Val\] for seed (\d+): \[Val CCC\]:\s*(\S+) \| \[Test CCC\]:\s*(\S+)", b1["text"],
             "the baseline's best seed")
    b1.update(best_seed=int(m.group(1)), devel=float(m.group(2)), test=float(m.group(3)))

    o1 = run_stage("affectflow stage 1", [*af, "train", "-q", "--corpus", str(corpus_dir), "--runs-dir",
                                          str(work / "runs"),
                                          *[a for s in ours_train_settings(s1, args.dim, args.feature, seeds1,
                                                                           s1["epochs"], args.threads,
                                                                           args.workers)
                                            for a in ("--set", s)]], work / "ours-stage1.log", env)
    run_dir = Path(grab(r"Run directory: (.+)", o1["text"], "the run directory").group(1).strip())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    o1.update(best_seed=int(metrics["selection"]["best_seed"]),
              devel=float(metrics["best"]["devel"][args.dim]["ccc"]), test=float(metrics["best"]["test"][args.dim]["ccc"]))

    # stage 2: baseline, then ours
    models = sorted((bout / "model_muse" / "personalisation").iterdir())
    if len(models) != 1:
        sys.exit(f"expected one model folder of the baseline's stage 1, found {[m.name for m in models]}")
    b2 = run_stage("baseline stage 2", [
        py, str(SHIM), str(baseline), str(task), str(bout), "personalisation.py", "--model_id", models[0].name,
        "--normalize", "--checkpoint_seed", str(b1["best_seed"]), "--emo_dim", emo_dim, "--lr", str(s2["lr"]),
        "--early_stopping_patience", str(s2["early_stopping_patience"]), "--epochs", str(s2["epochs"]),
        "--win_len", str(s2["win_len"]), "--hop_len", str(s2["hop_len"]), "--seed", str(seed0),
        "--n_seeds", str(len(seeds2))], work / "baseline-stage2.log", env)
    b2.update(devel=float(grab(r"\[Val\]:\s*(\S+)", b2["text"], "[Val]").group(1)),
              test=float(grab(r"\[Test\]:\s*(\S+)", b2["text"], "[Test]").group(1)))

    o2 = run_stage("affectflow stage 2", [
        *af, "personalise", str(run_dir), "-q", "--seed-list", ",".join(map(str, seeds2)), "--window",
        str(s2["win_len"]), "--hop", str(s2["hop_len"]), "--epochs", str(s2["epochs"]), "--patience",
        str(s2["early_stopping_patience"]), "--lr", str(s2["lr"]),
        *(["--threads", str(args.threads)] if args.workers == 1 else
          ["--backend", "forked", "--workers", str(len(os.sched_getaffinity(0)) if args.workers == "auto"
                                                   else args.workers), "--threads", "1"]),
        "--batch-size", str(BASELINE_DEFAULTS["batch_size"])],  # personalisation.py's default, whatever stage 1 had
        work / "ours-stage2.log", env)
    reports = sorted((run_dir / "personalisation").glob("*/report.json"))
    rep = json.loads(reports[-1].read_text())
    test = rep["partitions"]["test"]
    o2.update(test=float(test["after"][args.dim]["ccc"]), before=float(test["before"][args.dim]["ccc"]),
              ceiling=float(test["ceiling"][args.dim]), implementation=rep["options"].get("implementation"),
              fine_tune_s=rep.get("fine_tune_seconds"))

    # 4. yardstick
    y = run_stage("yardstick", [*af, "yardstick", "-q", "--run", str(run_dir), "--out", str(work / "yardstick")],
                  work / "yardstick.log", env)
    ym = json.loads((work / "yardstick" / "metrics.json").read_text())
    y.update(test=float(ym["best"]["test"][args.dim]["ccc"]))

    # table
    whole_b = {k: b1[k] + b2[k] for k in ("wall_s", "cpu_s")}
    whole_o = {k: o1[k] + o2[k] for k in ("wall_s", "cpu_s")}
    rows = [
        (f"stage 1 ({len(seeds1)} seeds, <= {s1['epochs']} epochs)", b1, o1, b1["test"], o1["test"]),
        (f"stage 2 ({len(seeds2)} seeds, <= {s2['epochs']} epochs)", b2, o2, b2["test"], o2["test"]),
        ("whole procedure", whole_b, whole_o, b2["test"], o2["test"]),
    ]
    print()
    print(f"MuSe 2023 personalisation, {args.config} stage-1 configuration, {args.feature} -> {args.dim} ({emo_dim}); "
          f"{args.subjects} subjects x {args.duration:g} s; {args.threads} thread(s), affectflow forked workers "
          f"{args.workers}; test CCC pooled over all test subjects")
    print()
    print("| stage | baseline wall s | affectflow wall s | speed-up (wall) | baseline CPU s | affectflow CPU s | "
          "speed-up (CPU) | baseline test CCC | affectflow test CCC | difference |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, b, o, bt, ot in rows:
        print(f"| {name} | {b['wall_s']:.1f} | {o['wall_s']:.1f} | {b['wall_s'] / o['wall_s']:.2f}x | "
              f"{b['cpu_s']:.1f} | {o['cpu_s']:.1f} | {b['cpu_s'] / o['cpu_s']:.2f}x | {bt:.4f} | {ot:.4f} | "
              f"{ot - bt:+.4f} |")
    print(f"| ridge yardstick (affectflow yardstick, unpersonalised) | | {y['wall_s']:.1f} | | | {y['cpu_s']:.1f} | | "
          f"| {y['test']:.4f} | |")
    print()
    print(f"stage 1 selected seed: baseline {b1['best_seed']} (devel {b1['devel']:.4f}), affectflow "
          f"{o1['best_seed']} (devel {o1['devel']:.4f}); affectflow personalisation {o2['implementation']} "
          f"(fine-tuning {o2['fine_tune_s']:.1f} s), test before {o2['before']:.4f} -> after {o2['test']:.4f}, "
          f"noise-free ceiling {o2['ceiling']:.4f}; generate {gen['wall_s']:.1f} s")
    out = {"settings": vars(args), "affectflow": rev, "baseline": str(baseline), "baseline_rev": brev,
           "stage1": s1, "stage2": s2, "seeds1": seeds1, "seeds2": seeds2,
           "baseline_stage1": b1, "ours_stage1": o1, "baseline_stage2": b2, "ours_stage2": o2, "yardstick": y,
           "generate": gen}
    for v in out.values():
        if isinstance(v, dict):
            v.pop("text", None)
    (work / "results.json").write_text(json.dumps(out, indent=1, default=str))
    print(f"results: {work / 'results.json'}")


if __name__ == "__main__":
    main()
