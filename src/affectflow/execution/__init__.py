"""Generic execution machinery: where independent jobs run (serial, a local process pool, Ray).

It sits in the bottom layer because both the extraction runner (``features/``) and the procedures (sweeps,
cross-validation, tuning, personalisation) hand their jobs to it; it knows nothing of either.
:mod:`~affectflow.execution.executor` holds the interface, the serial and local backends, the registry of backends
(:func:`register_executor`) and :func:`execution_settings`; :mod:`~affectflow.execution.ray_executor` the Ray backend
(``ray`` itself is imported only when a Ray executor starts).
"""

from affectflow.execution.executor import (
    EXECUTORS,
    OPTION_KEYS,
    Executor,
    LocalProcessExecutor,
    SerialExecutor,
    execution_settings,
    get_executor,
    register_executor,
)

__all__ = ["EXECUTORS", "OPTION_KEYS", "Executor", "LocalProcessExecutor", "SerialExecutor", "execution_settings",
           "get_executor", "register_executor"]
