"""A small name → class registry used for every component family (extractors, models, ...).

A registered class's keyword constructor arguments are its configuration. :meth:`Registry.build` instantiates it
from a plain dict (e.g. parsed YAML) and rejects unknown names and keys with the list of valid ones, so a typo
in a config fails before any data is read.
"""

from __future__ import annotations

import inspect
import re
from typing import Any, Callable, Generic, TypeVar

from affectflow.errors import ConfigError

T = TypeVar("T")


# ---------------------------------------------------------------------------------------------------- ranges
def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _rule_fraction(v: Any) -> str | None:
    if _is_number(v) and 0 <= v < 1:
        return None
    return "a probability in [0, 1)"


def _rule_closed_fraction(v: Any) -> str | None:
    if _is_number(v) and 0 <= v <= 1:
        return None
    return "a number in [0, 1]"


def _rule_positive_int(v: Any) -> str | None:
    if v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
        return None
    return "an integer >= 1"


def _rule_positive_ints(v: Any) -> str | None:
    if isinstance(v, (list, tuple)):
        return None if v and all(_rule_positive_int(x) is None and x is not None for x in v) else (
            "a non-empty list of integers >= 1")
    return _rule_positive_int(v)


#: Range rules of model hyperparameters, by parameter name (regular expressions, first match wins). Every model,
#: encoder, fusion and head registry applies them in :meth:`Registry.check_params` (also inside nested blocks such
#: as ``composite``'s ``encoder: {type: lstm, ...}``), so a value out of range fails when the config is loaded, before
#: any data is read or a run folder exists. A class may add or override rules with a ``param_rules`` attribute
#: ``{name: rule}`` (a rule returns ``None`` when the value is valid, else what was expected).
MODEL_PARAM_RULES: list[tuple[str, Callable[[Any], str | None]]] = [
    (r"(.*_)?dropout", _rule_fraction),
    (r"se_ratio", _rule_closed_fraction),
    (r"(.*_)?channels", _rule_positive_ints),
    (r"d_[a-z]+|dim_feedforward|(num|n)_[a-z_]+|[a-z_]*_layers|[a-z_]*hidden(_size)?|kernel_size|expand_ratio",
     _rule_positive_int),
]


def check_ranges(params: dict[str, Any], rules: list[tuple[str, Callable[[Any], str | None]]], where: str = "",
                 extra: dict[str, Callable[[Any], str | None]] | None = None) -> None:
    """Check ``params`` (recursively through nested mappings and lists) against name-based range ``rules``.

    Raises
    ------
    ConfigError
        Every value out of range, with its key path, the value found and what was expected.
    """
    bad: list[str] = []

    def visit(obj: Any, path: str) -> None:
        if isinstance(obj, dict):
            for k, v in obj.items():
                key = f"{path}.{k}" if path else str(k)
                rule = (extra or {}).get(k)
                if rule is None:
                    rule = next((r for pat, r in rules if re.fullmatch(pat, str(k))), None)
                if rule is not None and not isinstance(v, dict):
                    msg = rule(v)
                    if msg is not None:
                        bad.append(f"`{key}` must be {msg}, got {v!r}")
                        continue
                visit(v, key)
        elif isinstance(obj, (list, tuple)):
            for i, v in enumerate(obj):
                if isinstance(v, (dict, list, tuple)):
                    visit(v, f"{path}[{i}]")

    visit(params, where)
    if bad:
        raise ConfigError("Hyperparameters out of range: " + "; ".join(bad) + ".")


class Registry(Generic[T]):
    """Registry of the classes of one component family.

    Parameters
    ----------
    kind:
        What the components are called in messages, e.g. ``"extractor"`` or ``"model"``.
    data_args:
        Constructor arguments that are derived from the data (e.g. ``input_dims``) and not set in configs.
    param_rules:
        Name-based range rules applied by :meth:`check_params` (see :data:`MODEL_PARAM_RULES`); none by default.
    """

    def __init__(self, kind: str, data_args: tuple[str, ...] = (),
                 param_rules: list[tuple[str, Callable[[Any], str | None]]] | None = None) -> None:
        self.kind = kind
        self.data_args = data_args
        self.param_rules = list(param_rules or [])
        self._classes: dict[str, type[T]] = {}

    def register(self, cls_or_name: type[T] | str) -> Any:
        """Register a class. Use as ``@REG.register`` (name from ``cls.name``) or ``@REG.register("name")``."""
        if isinstance(cls_or_name, str):
            name = cls_or_name

            def deco(cls: type[T]) -> type[T]:
                self._add(name, cls)
                return cls

            return deco
        self._add(getattr(cls_or_name, "name"), cls_or_name)
        return cls_or_name

    def _add(self, name: str, cls: type[T]) -> None:
        if name in self._classes and self._classes[name] is not cls:
            raise ValueError(f"{self.kind} {name!r} is registered twice ({self._classes[name].__name__}, {cls.__name__})")
        self._classes[name] = cls

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._classes)

    def __contains__(self, name: str) -> bool:
        return name in self._classes

    def get(self, name: str) -> type[T]:
        """The class registered as ``name``; an unknown name raises :class:`ConfigError` listing the valid ones."""
        if name not in self._classes:
            raise ConfigError(f"Unknown {self.kind} {name!r}; valid {self.kind}s: {self.names()}.")
        return self._classes[name]

    def param_names(self, name: str) -> list[str]:
        """Configurable constructor arguments of ``name`` (data-derived arguments excluded)."""
        sig = inspect.signature(self.get(name).__init__)
        return [
            k
            for k, p in sig.parameters.items()
            if k != "self" and k not in self.data_args and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]

    def defaults(self, name: str) -> dict[str, Any]:
        """Default values of the configurable arguments of ``name`` (arguments without a default are omitted)."""
        sig = inspect.signature(self.get(name).__init__)
        return {
            k: p.default
            for k, p in sig.parameters.items()
            if k in self.param_names(name) and p.default is not inspect.Parameter.empty
        }

    def check_params(self, name: str, params: dict[str, Any]) -> None:
        """Raise :class:`ConfigError` if ``params`` has keys that ``name`` does not take, or values out of range."""
        valid = self.param_names(name)
        bad = sorted(set(params) - set(valid))
        if bad:
            raise ConfigError(f"{self.kind.capitalize()} {name!r} has no parameters {bad}; valid parameters: {valid}.")
        extra = getattr(self.get(name), "param_rules", None)
        if self.param_rules or extra:
            try:
                check_ranges(params, self.param_rules, extra=extra)
            except ConfigError as e:
                raise ConfigError(f"{self.kind.capitalize()} {name!r}: {e}") from None

    def build(self, name: str, params: dict[str, Any] | None = None, **data: Any) -> T:
        """Instantiate ``name`` with config ``params`` and data-derived arguments ``data``."""
        params = dict(params or {})
        self.check_params(name, params)
        cls: Callable[..., T] = self.get(name)
        try:
            return cls(**data, **params)
        except TypeError as e:
            raise ConfigError(f"Cannot build {self.kind} {name!r} from {params}: {e}") from e
