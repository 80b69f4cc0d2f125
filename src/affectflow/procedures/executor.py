"""Deprecated path of :mod:`affectflow.execution.executor` (the executor backends are generic execution machinery,
not a procedure, and moved to the bottom layer). Kept for one release: import from :mod:`affectflow.execution`."""

import warnings

from affectflow.execution.executor import (  # noqa: F401 - re-exported
    EXECUTORS,
    OPTION_KEYS,
    Executor,
    LocalProcessExecutor,
    SerialExecutor,
    execution_settings,
    get_executor,
    register_executor,
)

warnings.warn("affectflow.procedures.executor is deprecated; import from affectflow.execution", DeprecationWarning,
              stacklevel=2)
