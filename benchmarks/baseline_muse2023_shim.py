"""Run one script of the public MuSe 2023 baseline code (EIHW/MuSe-2023) unchanged on disk, on today's libraries.

Used by ``bench_baseline_muse2023.py``; by hand::

    python benchmarks/baseline_muse2023_shim.py SRC DATA OUT main.py --task personalisation --feature acoustic ...

``SRC`` is a checkout of the baseline code, ``DATA`` a ``c3_muse_personalisation``-style folder (``metadata/``,
``feature_segments/``, ``label_segments/``), ``OUT`` where its logs, cached data, checkpoints and predictions go.
Nothing in ``SRC`` is edited; everything below is patched in this process only, before the script runs:

- ``config.py``: the personalisation task's feature / label / metadata / partition paths point into ``DATA`` and
  ``OUTPUT_PATH`` (logs, ``data_muse``, ``model_muse``, ``prediction_muse``) into ``OUT`` (the baseline's README
  asks users to edit ``config.py``; this does the same without editing).
- ``numpy.object`` (removed in NumPy 1.24; ``dataset.py`` calls ``astype(np.object)``) is set to ``object``;
  ``numpy.row_stack`` is aliased to ``numpy.vstack`` if a NumPy lacks it.
- ``torch.load`` defaults to ``weights_only=True`` since torch 2.6; the baseline saves and reloads whole pickled
  models (its own files), so ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` is set for this process.
- ``torch.optim.lr_scheduler.ReduceLROnPlateau`` no longer takes ``verbose`` (removed in torch 2.7); the keyword is
  dropped (it only printed learning-rate changes).
"""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path


def patch(src: Path, data: Path, out: Path) -> None:
    """Apply the patches listed in the module docstring (``src`` goes first on ``sys.path``)."""
    os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
    import numpy as np
    import torch

    if "object" not in np.__dict__:
        np.object = object  # type: ignore[attr-defined]
    if not hasattr(np, "row_stack"):
        np.row_stack = np.vstack  # type: ignore[attr-defined]

    base = torch.optim.lr_scheduler.ReduceLROnPlateau

    class ReduceLROnPlateau(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args, verbose=None, **kwargs):
            super().__init__(*args, **kwargs)

    torch.optim.lr_scheduler.ReduceLROnPlateau = ReduceLROnPlateau

    sys.path.insert(0, str(src))
    import config  # the baseline's config.py

    task = config.PERSONALISATION
    config.BASE_PATH = str(data.parent)
    config.PATH_TO_FEATURES[task] = str(data / "feature_segments")
    config.PATH_TO_LABELS[task] = str(data / "label_segments")
    config.PATH_TO_METADATA[task] = str(data / "metadata")
    config.PARTITION_FILES[task] = str(data / "metadata" / "partition.csv")
    config.OUTPUT_PATH = str(out)
    config.LOG_FOLDER = str(out / "log_muse")
    config.DATA_FOLDER = str(out / "data_muse")
    config.MODEL_FOLDER = str(out / "model_muse")
    config.PREDICTION_FOLDER = str(out / "prediction_muse")


def main(argv: list[str]) -> None:
    if len(argv) < 4:
        sys.exit("usage: baseline_muse2023_shim.py SRC DATA OUT SCRIPT [ARGS ...]")
    src, data, out = (Path(a).resolve() for a in argv[:3])
    script = src / argv[3]
    patch(src, data, out)
    sys.argv = [str(script), *argv[4:]]
    runpy.run_path(str(script), run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
