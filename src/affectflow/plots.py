"""Plots of a run: learning curves and predictions against labels (PNG files under ``<run>/plots``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def plot_run(run_dir: str | Path, *, partition: str = "test", n_recordings: int = 3) -> list[Path]:
    """Write ``learning_curves.png`` and ``predictions_<partition>.png``; return the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    out = run_dir / "plots"
    out.mkdir(exist_ok=True)
    written = []

    hist = sorted((run_dir / "history").glob("seed-*.csv"))
    if hist:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
        for f in hist:
            h = pd.read_csv(f)
            axes[0].plot(h["epoch"], h["train_loss"], label=f.stem)
            axes[1].plot(h["epoch"], h["devel_score"], label=f.stem)
        axes[0].set(title="training loss", xlabel="epoch")
        axes[1].set(title="devel CCC (mean over targets)", xlabel="epoch")
        axes[1].legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "learning_curves.png", dpi=100)
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
        fig.savefig(out / f"predictions_{partition}.png", dpi=100)
        plt.close(fig)
        written.append(out / f"predictions_{partition}.png")
    return written
