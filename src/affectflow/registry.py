"""A small name → class registry used for every component family (extractors, models, ...).

A registered class's keyword constructor arguments are its configuration. :meth:`Registry.build` instantiates it
from a plain dict (e.g. parsed YAML) and rejects unknown names and keys with the list of valid ones, so a typo
in a config fails before any data is read.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Generic, TypeVar

from affectflow.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Registry of the classes of one component family.

    Parameters
    ----------
    kind:
        What the components are called in messages, e.g. ``"extractor"`` or ``"model"``.
    data_args:
        Constructor arguments that are derived from the data (e.g. ``input_dims``) and not set in configs.
    """

    def __init__(self, kind: str, data_args: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.data_args = data_args
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
        """Raise :class:`ConfigError` if ``params`` has keys that ``name`` does not take."""
        valid = self.param_names(name)
        bad = sorted(set(params) - set(valid))
        if bad:
            raise ConfigError(f"{self.kind.capitalize()} {name!r} has no parameters {bad}; valid parameters: {valid}.")

    def build(self, name: str, params: dict[str, Any] | None = None, **data: Any) -> T:
        """Instantiate ``name`` with config ``params`` and data-derived arguments ``data``."""
        params = dict(params or {})
        self.check_params(name, params)
        cls: Callable[..., T] = self.get(name)
        try:
            return cls(**data, **params)
        except TypeError as e:
            raise ConfigError(f"Cannot build {self.kind} {name!r} from {params}: {e}") from e
