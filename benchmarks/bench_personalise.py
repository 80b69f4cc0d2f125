"""The whole MuSe 2023 personalisation procedure on a generated corpus: wall time, peak memory, and the speed-up of
vectorised over plain-loop fine-tuning.

Default = the issue's full scale: a 69-subject corpus of 5-minute recordings at 2 Hz in the personalisation layout
(41 train / 14 devel subjects whole, 14 test subjects cut into own-train 60 s / own-devel 60 s / test), stage 1 =
the paper's early-fusion GRU (``configs/presets/muse2023-gru.yaml``: hidden 256, 1 layer, windows 200/100, batch 128,
lr 1e-3) on acoustic + visual + physio with 3 seeds, then personalisation of every test subject with 10 seeds and
windows 10/5, once vectorised (all 140 subject × seed models as one stacked model) and once as the plain loop::

    python benchmarks/bench_personalise.py                            # full scale
    python benchmarks/bench_personalise.py --stage1-epochs 10 --loop-subjects 4   # shorter (prints what it ran)

Prints the settings, the wall time of every phase, peak resident memory (``ru_maxrss``) after each, the pooled test
CCC before / after personalisation with the noise-free ceiling, and the fine-tuning speed-up (plain loop seconds /
vectorised seconds on the same subjects and seeds). One torch thread by default (``--threads``).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import torch

from affectflow.config import load_config
from affectflow.experiment import train
from affectflow.procedures.personalise import load_report, personalise
from affectflow.synthetic.corpus import generate_corpus

PRESET = Path(__file__).resolve().parents[1] / "src" / "affectflow" / "configs" / "presets" / "muse2023-gru.yaml"


def peak_mib() -> float:
    """Peak resident memory of this process so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--subjects", type=int, default=69)
    ap.add_argument("--duration", type=float, default=300.0, help="recording length in s (default 300)")
    ap.add_argument("--stage1-seeds", type=int, default=3)
    ap.add_argument("--stage1-epochs", type=int, default=60, help="stage-1 epochs (preset: 60, patience 10)")
    ap.add_argument("--seeds", type=int, default=10, help="personalisation seeds (default 10)")
    ap.add_argument("--ft-epochs", type=int, default=20, help="fine-tuning epochs (default 20, patience 5)")
    ap.add_argument("--loop-subjects", type=int, default=None,
                    help="time the plain loop on this many test subjects only (default: all); the vectorised path "
                    "is timed on the same subjects for the speed-up, and on all of them for the procedure")
    ap.add_argument("--skip-loop", action="store_true", help="do not time the plain loop")
    ap.add_argument("--group-size", type=int, default=8, help="vectorised group size (0 = all models at once)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", help="work folder (default: a temporary one)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(args.out or tempfile.mkdtemp(prefix="bench_personalise_"))
    print(f"settings: {vars(args)}; torch {torch.__version__}, {torch.get_num_threads()} thread(s); work {work}")

    t0 = time.perf_counter()
    corpus = generate_corpus(work / "corpus", n_subjects=args.subjects, duration_s=args.duration,
                             duration_jitter_s=0.0, layout="personalisation", seed=0, progress=False)
    t_gen = time.perf_counter() - t0
    rec = corpus.recordings
    test_subjects = sorted(rec[rec["partition"] == "test"]["subject"].unique())
    print(f"generate: {t_gen:.1f} s; {len(rec)} recordings, {rec['subject'].nunique()} subjects, "
          f"{len(test_subjects)} test subjects; peak {peak_mib():.0f} MiB")

    cfg = load_config(PRESET, [
        f"data.corpus={corpus.path}", f"output.runs_dir={work / 'runs'}", "data.features=[acoustic,visual,physio]",
        f"training.seeds={list(range(1, args.stage1_seeds + 1))}", f"training.epochs={args.stage1_epochs}",
        "training.device=cpu", f"training.num_threads={args.threads}"])
    t0 = time.perf_counter()
    run = train(cfg, progress=False)
    t_stage1 = time.perf_counter() - t0
    print(f"stage 1 (gru hidden 256, windows 200/100, {args.stage1_seeds} seeds, <= {args.stage1_epochs} epochs): "
          f"{t_stage1:.1f} s; peak {peak_mib():.0f} MiB")

    t0 = time.perf_counter()
    out = personalise(run, seeds=args.seeds, epochs=args.ft_epochs, implementation="vectorised",
                      group_size=args.group_size or None)
    t_pers = time.perf_counter() - t0
    rep = load_report(out)
    print(f"personalisation, vectorised ({len(test_subjects)} subjects x {args.seeds} seeds, windows 10/5, <= "
          f"{args.ft_epochs} epochs): {t_pers:.1f} s (fine-tuning {rep['fine_tune_seconds']:.1f} s); "
          f"peak {peak_mib():.0f} MiB")
    test = rep["partitions"]["test"]
    for t in test["before"]:
        print(f"  test {t}: pooled CCC before {test['before'][t]['ccc']:.4f} -> after {test['after'][t]['ccc']:.4f} "
              f"(noise-free ceiling {test['ceiling'][t]:.4f})")
    print(f"whole procedure (generate + stage 1 + personalisation): {t_gen + t_stage1 + t_pers:.1f} s")

    if args.skip_loop:
        return
    subset = test_subjects[: args.loop_subjects] if args.loop_subjects else test_subjects
    if args.loop_subjects:
        o = personalise(run, seeds=args.seeds, epochs=args.ft_epochs, implementation="vectorised", subjects=subset,
                        group_size=args.group_size or None)
        vec_s = load_report(o)["fine_tune_seconds"]
    else:
        vec_s = rep["fine_tune_seconds"]
    t0 = time.perf_counter()
    o = personalise(run, seeds=args.seeds, epochs=args.ft_epochs, implementation="loop", subjects=subset)
    loop_rep = load_report(o)
    print(f"plain loop ({len(subset)} subjects x {args.seeds} seeds): {time.perf_counter() - t0:.1f} s "
          f"(fine-tuning {loop_rep['fine_tune_seconds']:.1f} s); peak {peak_mib():.0f} MiB")
    print(f"speed-up of vectorised fine-tuning over the plain loop ({len(subset)} subjects x {args.seeds} seeds): "
          f"{loop_rep['fine_tune_seconds'] / vec_s:.1f}x ({loop_rep['fine_tune_seconds']:.1f} s / {vec_s:.1f} s)")
    same = all(loop_rep["subjects"][s].get("seed") == rep["subjects"][s].get("seed") for s in subset)
    print(f"same seeds selected by both: {same} (the paths agree to float rounding without dropout; the preset's "
          "dropout 0.1 draws different masks in each, so selections can differ)")
    for t in loop_rep["partitions"]["test"]["after"]:
        print(f"  plain loop, test {t}: pooled CCC after {loop_rep['partitions']['test']['after'][t]['ccc']:.4f}")


if __name__ == "__main__":
    main()
