"""Deprecated path of :mod:`affectflow.execution` (the executor backends are generic execution machinery, not a
procedure, and moved to the bottom layer). Kept for one release: import from :mod:`affectflow.execution`."""

import warnings

from affectflow.execution import *  # noqa: F401,F403 - re-exported (its __all__)
from affectflow.execution import __all__  # noqa: F401

warnings.warn("affectflow.procedures.executor is deprecated; import from affectflow.execution", DeprecationWarning,
              stacklevel=2)
