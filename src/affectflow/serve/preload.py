"""Imported once by the service's forkserver (:data:`affectflow.serve.isolation.PRELOAD`): everything a prediction
job needs that is slow to import (torch, the extractor registry and its libraries such as openSMILE, PyAV,
soundfile), so that each job's child process starts with it already in memory instead of importing it again
(about 1.7 s per job on the project machines). Importing this module has no other effect."""

from __future__ import annotations

import importlib

from affectflow.features.pipeline import load_builtin_extractors

load_builtin_extractors()
for _mod in ("opensmile", "soundfile", "av", "soxr", "affectflow.corpus.media", "affectflow.io.audio",
             "affectflow.training.inference", "pyarrow.dataset", "pyarrow.pandas_compat", "pandas.io.formats.csvs",
             "numpy.ctypeslib"):
    try:
        importlib.import_module(_mod)
    except Exception:  # noqa: BLE001 - optional: a job that needs a missing one fails with its own clear error
        pass
