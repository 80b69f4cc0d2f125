"""Child processes that cannot outlive their parent, and stopping a process with everything it started.

Used wherever affectflow starts worker processes: the service's prediction jobs
(:mod:`affectflow.serve.isolation`) and the process pools of procedures (:mod:`affectflow.execution`).

Two mechanisms, both Linux-first and harmless elsewhere:

- :func:`die_with_parent` (called first thing in a child) asks the kernel to send the child ``SIGKILL`` when the
  thread that started it ends (``prctl(PR_SET_PDEATHSIG)``), and checks that the parent did not already die
  between the fork and the call. A killed ``affectflow sweep`` or ``serve`` therefore leaves no orphan finishing
  its job. Elsewhere it is a no-op.
- :func:`kill_process_tree` ends a process and the process group it leads (a child that called
  :func:`os.setpgrp` takes its own helpers with it), with ``SIGKILL``: no cleanup code runs in it, so callers
  remove what it was writing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent(expected_parent: int | None = None) -> bool:
    """Make this process receive ``SIGKILL`` when its parent dies (Linux ``prctl``).

    Parameters
    ----------
    expected_parent:
        The parent's pid as the parent saw it before starting us; when given and the current parent differs (the
        parent died before this call and we were re-parented), this process exits at once.

    Returns
    -------
    bool
        ``True`` when the death signal is armed, ``False`` on platforms without ``prctl``.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if expected_parent is not None and os.getppid() != expected_parent:
        os._exit(1)
    return True


def kill_process_tree(pid: int) -> None:
    """Send ``SIGKILL`` to process ``pid`` and, when it leads a process group, to that whole group.

    Missing processes are ignored (it may have ended on its own in the meantime).
    """
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)
            return
    except (ProcessLookupError, PermissionError, OSError):
        pass
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError):
        pass


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the platform has one, else the CPU count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
