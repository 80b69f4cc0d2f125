"""Recipe files: parsing, budgets, references and up-front validation (see :mod:`affectflow.recipes` for the format).

Nothing here trains: :func:`load_recipe` returns a :class:`Recipe` whose every step kind, key and reference has been
checked, so a wrong recipe fails with one paragraph before any work starts.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from affectflow.config import (  # noqa: F401  (preset_dict: re-export)
    merge_config, parse_override, preset_dict, read_yaml,
)
from affectflow.errors import ConfigError
from affectflow.fsutil import check_name
from affectflow.recipes.figures import validate_figure
from affectflow.recipes.refs import (  # noqa: F401  (substitute_*: re-exported)
    param_names, refs, substitute_params, substitute_refs,
)
from affectflow.recipes.steps import STEP_KINDS
from affectflow.recipes.tables import TABLE_LAYOUTS

TOP_KEYS = {"name", "title", "paper", "description", "params", "budgets", "steps", "tables", "figures", "final"}
STEP_COMMON = {"id", "kind", "title", "paper", "ours", "when"}
TABLE_KEYS = {"id", "title", "paper", "ours", "layout", "source", "options"}
BUDGETS = ("quick", "paper")
BUILTIN_PARAMS = {"corpus": "the corpus folder given with --corpus"}


@dataclass
class Param:
    """One choice of a recipe: its value and where it comes from (``paper: "Table 3"`` or ``ours: "paper silent"``)."""

    name: str
    value: Any
    source: str  # "paper" | "ours"
    note: str

    def provenance(self) -> str:
        """``paper: <note>`` or ``ours: <note>``."""
        return f"{self.source}: {self.note}"


@dataclass
class Step:
    """One declared step: its id, kind, settings (unresolved: may hold ``$param`` and ``@step`` references)."""

    id: str
    kind: str
    settings: dict[str, Any]
    title: str = ""
    provenance: str = ""
    when: Any = True

    def needs(self) -> list[str]:
        """Ids of the steps this step reads (its ``@step`` references), in order of first use."""
        return list(dict.fromkeys(refs(self.settings)))


@dataclass
class Recipe:
    """A parsed, validated recipe with one budget applied."""

    name: str
    title: str
    paper: str
    description: str
    params: dict[str, Param]
    steps: list[Step]
    tables: list[dict[str, Any]]
    final: dict[str, Any]
    budget: str
    source: str
    overrides: list[str] = field(default_factory=list)
    figures: list[dict[str, Any]] = field(default_factory=list)

    def step(self, sid: str) -> Step:
        """The step ``sid``."""
        for s in self.steps:
            if s.id == sid:
                return s
        raise ConfigError(f"Recipe {self.name!r} has no step {sid!r}; its steps: {[s.id for s in self.steps]}.")

    def values(self, corpus: str | None = None) -> dict[str, Any]:
        """Parameter name → value (with ``corpus`` when given)."""
        out = {k: copy.deepcopy(p.value) for k, p in self.params.items()}
        if corpus is not None:
            out["corpus"] = str(corpus)
        return out


# ---------------------------------------------------------------------------- finding recipes
def packaged_names() -> list[str]:
    """Names of the recipes shipped with affectflow (``src/affectflow/recipes/*.yaml``)."""
    return sorted(p.name[:-5] for p in resources.files("affectflow.recipes").iterdir() if p.name.endswith(".yaml"))


def recipe_text(name_or_path: str | Path) -> tuple[str, str]:
    """The YAML text of a packaged recipe name or a recipe file, and where it came from."""
    s = str(name_or_path)
    p = Path(s)
    if s.endswith((".yaml", ".yml")) or p.is_file() or "/" in s:
        if not p.is_file():
            raise ConfigError(f"Recipe file {s!r} does not exist.")
        return p.read_text(encoding="utf-8"), str(p.resolve())
    names = packaged_names()
    if s not in names:
        raise ConfigError(f"Unknown recipe {s!r}; the packaged recipes are {names} (or give the path of a recipe "
                          "YAML file).")
    return resources.files("affectflow.recipes").joinpath(f"{s}.yaml").read_text(encoding="utf-8"), f"package:{s}"


# ---------------------------------------------------------------------------- parsing
def _parse_param(name: str, raw: Any, where: str) -> Param:
    if not isinstance(raw, dict) or "value" not in raw:
        raise ConfigError(f"Recipe parameter {name!r} in {where} must be a mapping with `value:` and its provenance "
                          f"(`paper: \"Table 3\"` or `ours: \"paper silent\"`), got {raw!r}.")
    extra = set(raw) - {"value", "paper", "ours"}
    srcs = [k for k in ("paper", "ours") if k in raw]
    if extra or len(srcs) != 1:
        raise ConfigError(f"Recipe parameter {name!r} in {where} needs `value:` and exactly one of `paper:` / `ours:` "
                          f"(where the choice comes from); it has keys {sorted(raw)}.")
    return Param(name, raw["value"], srcs[0], str(raw[srcs[0]]))


def load_recipe(name_or_path: str | Path, *, budget: str = "paper", overrides: list[str] | None = None) -> Recipe:
    """Parse and validate a recipe (packaged name or YAML path) with ``budget`` and ``overrides`` applied.

    ``overrides`` are ``name=value`` (value parsed as YAML) for the recipe's parameters; a name that is not a
    parameter is an error. Raises :class:`ConfigError` for any problem, before any work.
    """
    text, where = recipe_text(name_or_path)
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"Recipe {where} is not valid YAML: {e}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"Recipe {where} must hold a mapping (name, params, budgets, steps, tables).")
    unknown = sorted(set(doc) - TOP_KEYS)
    if unknown:
        raise ConfigError(f"Unknown key(s) {unknown} in recipe {where}; valid keys: {sorted(TOP_KEYS)}.")
    if budget not in BUDGETS:
        raise ConfigError(f"Budget must be one of {list(BUDGETS)}, got {budget!r}.")
    name = check_name("recipe name (`name:` or the file name)", str(doc.get("name") or Path(where).stem),
                      error=ConfigError)
    params = {k: _parse_param(k, v, where) for k, v in (doc.get("params") or {}).items()}
    for k in params:
        if k in BUILTIN_PARAMS:
            raise ConfigError(f"Recipe parameter name {k!r} in {where} is reserved ({BUILTIN_PARAMS[k]}).")
    budgets = doc.get("budgets") or {}
    if not isinstance(budgets, dict) or set(budgets) - set(BUDGETS):
        raise ConfigError(f"`budgets:` in {where} maps {list(BUDGETS)} to parameter values; got {budgets!r}.")
    for b, vals in budgets.items():
        for k, v in (vals or {}).items():
            if k not in params:
                raise ConfigError(f"Budget {b!r} of recipe {where} sets {k!r}, which is not a parameter; parameters: "
                                  f"{sorted(params)}.")
            if b == budget:
                params[k] = Param(k, v, "ours", f"`--budget {b}` (paper value: {params[k].value!r})")
    for o in overrides or []:
        d = parse_override(o)
        (k, v), = d.items()
        if k not in params:
            raise ConfigError(f"--set {o!r}: {k!r} is not a parameter of recipe {name!r}; parameters: "
                              f"{sorted(params)}.")
        if "." in o.split("=", 1)[0]:  # name.key=value changes one key of a mapping parameter
            if not isinstance(params[k].value, dict):
                raise ConfigError(f"--set {o!r}: parameter {k!r} is not a mapping; set it whole ({k}=value).")
            v = merge_config(params[k].value, v)
        params[k] = Param(k, v, "ours", f"--set {o}")
    known_params = set(params) | set(BUILTIN_PARAMS)

    steps: list[Step] = []
    raw_steps = doc.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise ConfigError(f"Recipe {where} needs a non-empty `steps:` list.")
    seen: set[str] = set()
    for i, raw in enumerate(raw_steps):
        if not isinstance(raw, dict) or "id" not in raw or "kind" not in raw:
            raise ConfigError(f"Step {i} of recipe {where} must be a mapping with `id:` and `kind:`; got {raw!r}.")
        sid, kind = str(raw["id"]), str(raw["kind"])
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", sid):
            raise ConfigError(f"Step id {sid!r} in {where} must be letters, digits, '_' or '-'.")
        if sid in seen:
            raise ConfigError(f"Step id {sid!r} appears twice in recipe {where}.")
        if kind not in STEP_KINDS:
            raise ConfigError(f"Step {sid!r} of recipe {where} has unknown kind {kind!r}; known kinds: "
                              f"{sorted(STEP_KINDS)}.")
        sk = STEP_KINDS[kind]
        settings = {k: v for k, v in raw.items() if k not in STEP_COMMON}
        bad = sorted(set(settings) - set(sk.keys))
        if bad:
            raise ConfigError(f"Step {sid!r} ({kind}) of recipe {where} has unknown key(s) {bad}; a {kind} step takes "
                              f"{sorted(sk.keys)}.")
        missing = sorted(set(sk.required) - set(settings))
        if missing:
            raise ConfigError(f"Step {sid!r} ({kind}) of recipe {where} lacks required key(s) {missing}.")
        for p in param_names(raw):
            if p not in known_params:
                raise ConfigError(f"Step {sid!r} of recipe {where} uses parameter ${p}, which is not declared; "
                                  f"parameters: {sorted(known_params)}.")
        for r in refs(settings):
            if r not in seen:
                later = r in {str(s.get('id')) for s in raw_steps if isinstance(s, dict)}
                raise ConfigError(f"Step {sid!r} of recipe {where} reads @{r}, which is "
                                  + ("a later step (steps may only read earlier ones)." if later
                                     else f"not a step; steps so far: {sorted(seen)}."))
        prov = " ".join(f"{k}: {raw[k]}" for k in ("paper", "ours") if k in raw)
        step = Step(sid, kind, settings, str(raw.get("title", "")), prov, raw.get("when", True))
        sk.validate(step, substitute_params(settings, {**{k: p.value for k, p in params.items()}, "corpus": "?"}))
        steps.append(step)
        seen.add(sid)
    tables = []
    for t in doc.get("tables") or []:
        if not isinstance(t, dict) or set(t) - TABLE_KEYS or "layout" not in t or "source" not in t:
            raise ConfigError(f"Each table of recipe {where} is a mapping with `layout:` and `source:` (and id, title, "
                              f"paper, options); got {t!r}.")
        if t["layout"] not in TABLE_LAYOUTS:
            raise ConfigError(f"Table {t.get('id')!r} of recipe {where} has unknown layout {t['layout']!r}; known: "
                              f"{sorted(TABLE_LAYOUTS)}.")
        for r in refs(t["source"]):
            if r not in seen:
                raise ConfigError(f"Table {t.get('id')!r} of recipe {where} reads @{r}, which is not a step.")
        tables.append(dict(t))
    figures = []
    for f in doc.get("figures") or []:
        validate_figure(f, where, {str(t.get("id")) for t in tables})
        for r in refs(f.get("source")):
            if r not in seen:
                raise ConfigError(f"Figure {f.get('id')!r} of recipe {where} reads @{r}, which is not a step.")
        figures.append(dict(f))
    final = doc.get("final") or {}
    for r in refs(final):
        if r not in seen:
            raise ConfigError(f"`final:` of recipe {where} reads @{r}, which is not a step.")
    return Recipe(name=name, title=str(doc.get("title", name)), paper=str(doc.get("paper", "")),
                  description=str(doc.get("description", "")), params=params, steps=steps, tables=tables,
                  final=final, budget=budget, source=where, overrides=list(overrides or []), figures=figures)


def load_recipe_file(path: str | Path) -> dict[str, Any]:
    """A recipe file as a plain dict (for tools that edit recipes)."""
    return read_yaml(path)
