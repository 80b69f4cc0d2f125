"""The model registry and the architectures (importing this package registers them all)."""

from affectflow.models import (
    backbones,  # noqa: F401  (registers the "backbone" encoder)
    composite,  # noqa: F401  (registers "composite" and the named architectures)
    gru,  # noqa: F401  (registers "gru")
    multitask,  # noqa: F401  (registers "sent_multitask")
)
from affectflow.models.base import MODELS, SequenceModel, build_model
from affectflow.models.encoders import ENCODERS
from affectflow.models.fusion import FUSIONS
from affectflow.models.heads import HEADS

__all__ = ["ENCODERS", "FUSIONS", "HEADS", "MODELS", "SequenceModel", "build_model"]
