"""Window positions over a recording.

``window_starts(length, size, hop)`` gives starts ``0, hop, 2·hop, ...`` of full windows, plus one last window
starting at the next hop position when full windows do not reach the end; that last window is shorter than
``size`` and is padded (with a mask) when batched. A recording shorter than ``size`` yields one padded window.
Every step is covered by at least one window.
"""

from __future__ import annotations

from affectflow.errors import ConfigError


def check_window(size: int | None, hop: int | None) -> None:
    """Validate a window size and hop in steps (``size=None`` means whole recordings)."""
    if size is None:
        return
    if not isinstance(size, int) or size < 1:
        raise ConfigError(f"`window.size` must be a positive number of steps, got {size!r}.")
    if not isinstance(hop, int) or not 1 <= hop <= size:
        raise ConfigError(f"`window.hop` must be an integer in [1, window.size={size}], got {hop!r}.")


def window_starts(length: int, size: int, hop: int) -> list[int]:
    """Start steps of the windows of a recording of ``length`` steps (see the module docstring)."""
    check_window(size, hop)
    if length <= size:
        return [0]
    starts = list(range(0, length - size + 1, hop))
    if starts[-1] + size < length:
        starts.append(starts[-1] + hop)
    return starts
