"""The model registry and the architectures (importing this package registers them all)."""

from affectflow.models import gru  # noqa: F401  (registers "gru")
from affectflow.models.base import MODELS, SequenceModel, build_model

__all__ = ["MODELS", "SequenceModel", "build_model"]
