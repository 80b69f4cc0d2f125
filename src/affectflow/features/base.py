"""The contract every feature extractor follows.

An extractor turns the raw media of one recording into frames of one feature set::

    extractor = EXTRACTORS.build("egemaps", {"rate_hz": 2.0, "win_dur": 1.0})
    frame = extractor.extract(MediaRecording(id="r1", audio=Path("r1.wav")))
    # frame: pandas DataFrame, column "time" (float64 s, strictly increasing, the instant each frame stands for,
    #        i.e. the window centre for windowed features), then extractor.columns() as float32.
    #        Frames where the feature does not exist (no face, no speech...) are rows of NaN, never zeros.

Extractors are registered by name in :data:`EXTRACTORS`; their constructor keyword arguments are their whole
configuration, returned by :meth:`Extractor.params` (stored with the features and hashed to decide whether a stored
output is still valid).
"""

from __future__ import annotations

import hashlib
import inspect
import json
from abc import ABC, abstractmethod
import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from affectflow.corpus.recording import MediaRecording  # noqa: F401 - re-exported (it was defined here)
from affectflow.errors import ExtractionError  # noqa: F401 - re-exported; defined in affectflow.errors
from affectflow.registry import Registry


class Extractor(ABC):
    """Base class of all feature extractors.

    Subclasses set ``name``, ``modality`` and ``inputs`` (which :class:`MediaRecording` fields they need), take
    their configuration as keyword-only constructor arguments stored unchanged on ``self``, and implement
    :meth:`columns` and :meth:`extract`. Preferably a subclass is a keyword-only dataclass
    (``@dataclass(kw_only=True, eq=False)``, checks in ``__post_init__``): its fields are then its parameters,
    defaults and :meth:`params` at once (every built-in extractor is).
    """

    name: ClassVar[str]
    modality: ClassVar[str]
    inputs: ClassVar[tuple[str, ...]]

    def params(self) -> dict[str, Any]:
        """Constructor arguments and their current values (JSON-serialisable)."""
        if dataclasses.is_dataclass(self):
            return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self) if f.init}
        sig = inspect.signature(type(self).__init__)
        return {k: _plain(getattr(self, k)) for k in sig.parameters if k != "self"}

    def config_hash(self) -> str:
        """Hash of the extractor name and parameters: a stored output with another hash is recomputed."""
        blob = json.dumps({"name": self.name, "params": self.params()}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def can_process(self, rec: MediaRecording) -> bool:
        """Whether ``rec`` has the inputs this extractor needs."""
        if "audio" in self.inputs:
            return rec.audio_source() is not None
        return all(getattr(rec, k) is not None for k in self.inputs)

    @abstractmethod
    def columns(self) -> list[str]:
        """Names of the feature columns, in order."""

    @abstractmethod
    def extract(self, rec: MediaRecording) -> pd.DataFrame:
        """Frames of this feature set for ``rec`` (see the module docstring for the format)."""


def _plain(v: Any) -> Any:
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, tuple):
        return list(v)
    return v


def feature_frame(times: Any, values: Any, columns: Any) -> pd.DataFrame:
    """An extractor's output in the format of the module docstring.

    Parameters
    ----------
    times:
        ``(K,)`` frame instants in seconds (stored as float64).
    values:
        ``(K, len(columns))`` feature values (stored as float32; NaN where the feature does not exist).
    columns:
        The feature column names (:meth:`Extractor.columns`).

    Returns
    -------
    pandas.DataFrame
        ``time`` then ``columns``, ``K`` rows.
    """
    frame = pd.DataFrame(np.asarray(values, dtype=np.float32), columns=list(columns))
    frame.insert(0, "time", np.asarray(times, dtype=np.float64))
    return frame


EXTRACTORS: Registry[Extractor] = Registry("extractor")
"""All registered extractors: ``EXTRACTORS.build(name, params)``; names via ``EXTRACTORS.names()``."""
