"""References inside a recipe: ``$param`` / ``${param}`` (recipe parameters) and ``@step.key`` (results of earlier
steps), found and substituted (:mod:`affectflow.recipes.spec` validates them, the engine and the tables resolve
them)."""

from __future__ import annotations

import copy
import re
from typing import Any

import yaml

from affectflow.errors import ConfigError

_PARAM = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)$")
_INLINE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_REF = re.compile(r"^@([A-Za-z_][A-Za-z0-9_-]*)((?:\.[A-Za-z0-9_]+)*)$")


def refs(value: Any) -> list[str]:
    """The step ids of every ``"@step..."`` reference in ``value`` (nested dicts / lists), in order."""
    if isinstance(value, str):
        m = _REF.match(value)
        return [m.group(1)] if m else []
    if isinstance(value, dict):
        return [r for v in value.values() for r in refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in refs(v)]
    return []


def param_names(value: Any) -> list[str]:
    """The names of every ``"$name"`` / ``${name}`` parameter reference in ``value``, in order."""
    if isinstance(value, str):
        m = _PARAM.match(value)
        return [m.group(1)] if m else _INLINE.findall(value)
    if isinstance(value, dict):
        return [r for v in value.values() for r in param_names(v)]
    if isinstance(value, list):
        return [r for v in value for r in param_names(v)]
    return []


def substitute_params(value: Any, params: dict[str, Any]) -> Any:
    """Replace every ``"$name"`` string in ``value`` (nested dicts / lists) by ``params[name]``, and every
    ``${name}`` inside a longer string by the value written as flow YAML (e.g. ``"model.hidden_size=${h}"``)."""
    if isinstance(value, str):
        m = _PARAM.match(value)
        if m:
            return copy.deepcopy(params[m.group(1)])
        return _INLINE.sub(lambda x: yaml.safe_dump(params[x.group(1)], default_flow_style=True,
                                                    width=10_000).strip().removesuffix("...").strip(), value)
    if isinstance(value, dict):
        return {k: substitute_params(v, params) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute_params(v, params) for v in value]
    return value


def substitute_refs(value: Any, results: dict[str, dict[str, Any]]) -> Any:
    """Replace every ``"@step"`` / ``"@step.key.sub"`` string by that finished step's result (or a part of it)."""
    if isinstance(value, str):
        m = _REF.match(value)
        if not m:
            return value
        out: Any = results[m.group(1)]
        for part in [p for p in m.group(2).split(".") if p]:
            if not isinstance(out, dict) or part not in out:
                raise ConfigError(f"Reference {value!r}: the result of step {m.group(1)!r} has no {part!r} "
                                  f"(it has {sorted(out) if isinstance(out, dict) else type(out).__name__}).")
            out = out[part]
        return copy.deepcopy(out)
    if isinstance(value, dict):
        return {k: substitute_refs(v, results) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute_refs(v, results) for v in value]
    return value
