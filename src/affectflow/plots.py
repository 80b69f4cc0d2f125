"""Plots of a run: learning curves and predictions against labels (PNG files under ``<run>/plots``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from affectflow.fsutil import atomic_write, make_dirs
from affectflow.layout import PREDICTIONS_DIR


def plot_run(run_dir: str | Path, *, partition: str = "test", n_recordings: int = 3) -> list[Path]:
    """Write ``learning_curves.png`` and ``predictions_<partition>.png``; return the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    out = run_dir / "plots"
    out = make_dirs(out)
    written = []

    hist = sorted((run_dir / "history").glob("seed-*.csv"))
    if hist:
        fig, axes = plt.subplots(1, 3, figsize=(15, 3.5))
        for k, f in enumerate(hist):
            h = pd.read_csv(f)
            axes[0].plot(h["epoch"], h["train_loss"], label=f.stem)
            axes[1].plot(h["epoch"], h["devel_score"], label=f.stem)
            if "lr_start" in h:  # the rate at the first and last batch of each epoch: warm-up ramps show as steps
                xs = [x for e in h["epoch"] for x in (e - 1, e)]
                ys = [y for a, b in zip(h["lr_start"], h["lr_end"]) for y in (a, b)]
                axes[2].plot(xs, ys, color=f"C{k}", label=f.stem)
            else:
                axes[2].plot(h["epoch"], h["lr"], color=f"C{k}", label=f.stem)
            if "unfrozen" in h:  # progressive unfreezing: a line where each group was unfrozen
                for e, g in zip(h["epoch"], h["unfrozen"].fillna("")):
                    if g:
                        for ax in axes[1:]:
                            ax.axvline(e - 1, color=f"C{k}", ls=":", lw=0.8)
                        axes[2].annotate(str(g), (e - 1, 1), xycoords=("data", "axes fraction"), fontsize=6,
                                         rotation=90, va="top")
        axes[0].set(title="training loss", xlabel="epoch")
        axes[1].set(title="devel CCC (mean over targets)", xlabel="epoch")
        axes[2].set(title="learning rate (dotted: unfreezing)", xlabel="epoch", yscale="log")
        axes[1].legend(fontsize=8)
        fig.tight_layout()
        atomic_write(out / "learning_curves.png", lambda p: fig.savefig(p, dpi=100, format="png"))
        plt.close(fig)
        written.append(out / "learning_curves.png")

    pred_dir = run_dir / "predictions" / partition
    files = sorted(pred_dir.glob("*.csv"))[:n_recordings]
    if files:
        first = pd.read_csv(files[0])
        targets = [c[: -len("_pred")] for c in first.columns if c.endswith("_pred")]
        fig, axes = plt.subplots(len(files), len(targets), figsize=(5 * len(targets), 2.4 * len(files)), squeeze=False)
        for i, f in enumerate(files):
            df = pd.read_csv(f)
            for j, t in enumerate(targets):
                ax = axes[i][j]
                if f"{t}_label" in df:
                    ax.plot(df["time"], df[f"{t}_label"], color="0.3", lw=1, label="label")
                ax.plot(df["time"], df[f"{t}_pred"], color="C1", lw=1, label="prediction")
                ax.set_title(f"{f.stem}: {t}", fontsize=9)
                if i == len(files) - 1:
                    ax.set_xlabel("time (s)")
        axes[0][0].legend(fontsize=8)
        fig.tight_layout()
        atomic_write(out / f"predictions_{partition}.png", lambda p: fig.savefig(p, dpi=100, format="png"))
        plt.close(fig)
        written.append(out / f"predictions_{partition}.png")
    return written
