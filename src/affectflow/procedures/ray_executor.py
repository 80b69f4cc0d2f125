"""Deprecated path of :mod:`affectflow.execution.ray_executor` (moved with the executor backends to the bottom
layer). Kept for one release: import from :mod:`affectflow.execution.ray_executor`."""

import warnings

from affectflow.execution.ray_executor import (  # noqa: F401 - re-exported
    RAY_ENV,
    RayExecutor,
    TaskResources,
    connect,
    loopback_only,
)

warnings.warn("affectflow.procedures.ray_executor is deprecated; import from affectflow.execution.ray_executor",
              DeprecationWarning, stacklevel=2)
