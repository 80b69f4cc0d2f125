"""Named architectures as presets: a table of flat hyperparameters and a function that maps them onto blocks.

A paper's model is a particular configuration of generic blocks (a ``composite`` model, a ``stack`` encoder). A
:class:`Preset` declares that configuration once: its name, its hyperparameters with their defaults (in order), and
``blocks(hp)`` that returns the generic configuration for the full hyperparameters ``hp``. :func:`preset_class`
turns it into a registrable class of the generic kind, so that

- the registry name keeps working: ``MODELS.build("sa_lstm", {"hidden_size": 64}, ...)``, with the
  hyperparameters checked like any class's keyword arguments (:meth:`~affectflow.registry.Registry.param_names`
  reads the preset's table through the class's signature);
- the module is the generic one (a :class:`~affectflow.models.composite.CompositeModel` or a stack encoder), so
  parameter names, and with them checkpoints, are those of the blocks;
- ``config()`` stores the flat hyperparameters under the preset's name (``{"type": "sa_lstm", "params": {...}}``).

A preset may derive its table from another preset (the Sent paper's ``way2`` model is the ``way2`` encoder's
hyperparameters plus the head's).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

from affectflow.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class Preset:
    """A named configuration of generic blocks.

    Parameters
    ----------
    name:
        Registry name.
    params:
        Hyperparameter → default, in the order of the constructor's keyword arguments.
    blocks:
        Full hyperparameters (defaults filled in) → the keyword arguments of the generic class (for a model:
        ``fusion``, ``encoder``, ``encoders``, ``groups``, ``mask_inputs``, ``head``; for an encoder: ``stages``).
    doc:
        The class docstring (what the architecture is, its paper, its parameters).
    check:
        Optional ``check(hp)`` raising :class:`~affectflow.errors.ConfigError` for inconsistent hyperparameters.
    """

    name: str
    params: dict[str, Any]
    blocks: Callable[[dict[str, Any]], dict[str, Any]]
    doc: str
    check: Callable[[dict[str, Any]], None] | None = None

    def full(self, given: dict[str, Any]) -> dict[str, Any]:
        """``given`` with the defaults filled in, in table order (unknown keys raise :class:`ConfigError`)."""
        bad = sorted(set(given) - set(self.params))
        if bad:
            raise ConfigError(f"{self.name!r} has no parameters {bad}; valid parameters: {list(self.params)}.")
        hp = {k: given.get(k, d) for k, d in self.params.items()}
        if self.check is not None:
            self.check(hp)
        return hp


def preset_class(base: type, preset: Preset, data_args: tuple[str, ...], build: Callable[..., None],
                 class_name: str) -> type:
    """A subclass of ``base`` named ``class_name`` whose constructor takes ``data_args`` positionally and the
    preset's hyperparameters as keywords, and calls ``build(self, *data, hp)`` with the full hyperparameters."""

    def __init__(self, *args: Any, **given: Any) -> None:
        data = list(args)
        for a in data_args[len(data):]:  # the registry passes the data arguments by keyword
            if a not in given:
                raise TypeError(f"{class_name}() missing the data argument {a!r}")
            data.append(given.pop(a))
        build(self, *data, preset.full(given))

    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    params += [inspect.Parameter(a, inspect.Parameter.POSITIONAL_OR_KEYWORD) for a in data_args]
    params += [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=d) for k, d in preset.params.items()]
    __init__.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    __init__.__qualname__ = f"{class_name}.__init__"
    return type(class_name, (base,), {"name": preset.name, "preset": preset, "__init__": __init__,
                                      "__doc__": preset.doc, "__module__": base.__module__})
