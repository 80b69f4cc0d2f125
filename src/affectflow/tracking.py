"""Optional MLflow tracking of run folders (off by default; MLflow is imported only when a URI is set).

Enable it with ``--mlflow [URI]`` on ``train``, ``sweep``, ``cv``, ``tune`` and ``personalise``, or in the config::

    tracking: {mlflow: sqlite:///runs/mlflow.db}      # --mlflow without a URI: sqlite:///<output.runs_dir>/mlflow.db

Then ``mlflow ui --backend-store-uri sqlite:///runs/mlflow.db`` (the ``mlflow`` package; ``requirements/scale.txt``
installs only the client, ``mlflow-skinny``) shows, in the experiment ``affectflow`` (artifacts in
``<folder of the database>/mlartifacts``):

- every finished training run (:func:`log_run`): the config as parameters (dotted keys, e.g. ``training.lr``),
  per-epoch ``seed<s>/devel_score``, ``seed<s>/train_loss``, ``seed<s>/lr`` (step = epoch), the final metrics
  ``<partition>/<target>/<metric>`` of the selected seed and ``.../mean`` over seeds, the run's ``results.md``,
  ``config.yaml``, ``metrics.json`` and ``plots/`` as artifacts, and tags ``affectflow.run_dir``, ``affectflow.kind``,
  ``affectflow.status``;
- a parent run per procedure (:func:`start_parent`: sweep, CV, tuning, personalisation, recipe) with its cells /
  folds / trials nested under it (``mlflow.parentRunId``), and its ``results.md`` as an artifact; a recipe
  (``affectflow recipe run ... --mlflow``) has one run per finished step with the step's run folders under it
  (:func:`log_tree`).

Runs are logged from their folders **after** they finish, by the process that drives the procedure (never by the
Ray workers), so a cluster needs no access to the tracking database and a run killed and retried is logged once.
A folder records its MLflow run in ``mlflow.json``; logging a folder again to the same URI does nothing.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from affectflow.errors import AffectflowWarning, ConfigError
from affectflow.fsutil import write_json
from affectflow.layout import plots_folder, results_file
from affectflow.runs import Run
from affectflow.runs_table import find_run_folders

EXPERIMENT = "affectflow"
MARKER = "mlflow.json"
#: MLflow's limit on a parameter value's length.
MAX_PARAM = 6000


def safely(fn: Any) -> Any:
    """Run a tracking call; a failure is a warning, not an error (the procedure's results are on disk either way)."""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - tracking is a convenience
        logging.getLogger("affectflow").warning("MLflow tracking failed: %s", e)
        warnings.warn(f"MLflow tracking failed: {type(e).__name__}: {e}", AffectflowWarning, stacklevel=2)
        return None


def default_uri(runs_dir: str | os.PathLike) -> str:
    """``sqlite:///<runs_dir>/mlflow.db`` (absolute)."""
    return f"sqlite:///{(Path(runs_dir) / 'mlflow.db').resolve()}"


def cli_uri(value: str, runs_dir: str | os.PathLike) -> str:
    """The URI of a ``--mlflow [URI]`` flag: an empty value means :func:`default_uri` of ``runs_dir``."""
    return default_uri(runs_dir) if not value else normalise_uri(value)


def add_flag(parser: Any) -> None:
    """Add ``--mlflow [URI]`` to an argparse parser (deprecated: the CLI uses
    :func:`affectflow.cli.options.mlflow_flag`, which adds the same option without importing this module)."""
    parser.add_argument("--mlflow", nargs="?", const="", default=None, metavar="URI",
                        help="log to MLflow (default URI sqlite:///<runs_dir>/mlflow.db; same as tracking.mlflow)")


def normalise_uri(uri: str) -> str:
    """Make a relative ``sqlite:///path`` absolute (against the current directory), so that every process that
    logs to it, wherever it runs from, uses the same file. Other URIs are returned as they are."""
    if not isinstance(uri, str) or not uri.strip():
        raise ConfigError(f"`tracking.mlflow` must be an MLflow tracking URI such as sqlite:///runs/mlflow.db, got "
                          f"{uri!r}.")
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return f"sqlite:///{Path(uri[len('sqlite:///'):]).resolve()}"
    return uri


def _client(uri: str) -> Any:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:  # pragma: no cover - pinned in requirements/scale.txt
        raise ConfigError("MLflow tracking needs the `mlflow-skinny` package: install requirements/scale.txt.") from None
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    return MlflowClient(tracking_uri=uri)


def _experiment(client: Any, uri: str) -> str:
    exp = client.get_experiment_by_name(EXPERIMENT)
    if exp is not None:
        return exp.experiment_id
    location = None
    if uri.startswith("sqlite:///"):
        location = (Path(uri[len("sqlite:///"):]).parent / "mlartifacts").resolve().as_uri()
    return client.create_experiment(EXPERIMENT, artifact_location=location)


def logged_run_id(folder: Path, uri: str) -> str | None:
    """The MLflow run id a folder was logged as to ``uri`` (from its ``mlflow.json``), or None."""
    f = folder / MARKER
    try:
        doc = json.loads(f.read_text())
    except (OSError, ValueError):
        return None
    return doc.get("runs", {}).get(uri)


def _remember(folder: Path, uri: str, run_id: str) -> None:
    f = folder / MARKER
    try:
        doc = json.loads(f.read_text())
    except (OSError, ValueError):
        doc = {}
    doc.setdefault("runs", {})[uri] = run_id
    write_json(f, doc)


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"a": {"b": 1}}`` → ``{"a.b": "1"}`` (lists and scalars as text, cut to MLflow's length limit)."""
    out: dict[str, str] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = (json.dumps(v) if not isinstance(v, str) else v)[:MAX_PARAM]
    return out


def _log_batch(client: Any, run_id: str, *, params: dict[str, str] | None = None, metrics: list | None = None,
               tags: dict[str, str] | None = None) -> None:
    """Log in chunks within MLflow's batch limits (100 parameters or tags, 1000 metrics per call)."""
    from mlflow.entities import Param, RunTag  # optional (requirements/scale.txt): only with tracking on

    p = [Param(k, v) for k, v in (params or {}).items()]
    t = [RunTag(k, str(v)) for k, v in (tags or {}).items()]
    for i in range(0, len(p), 100):
        client.log_batch(run_id, params=p[i:i + 100])
    for i in range(0, len(t), 100):
        client.log_batch(run_id, tags=t[i:i + 100])
    m = list(metrics or [])
    for i in range(0, len(m), 1000):
        client.log_batch(run_id, metrics=m[i:i + 1000])


def _metrics_of(run: Any) -> list:
    """Per-epoch history and final metrics of a run (:class:`affectflow.runs.Run`) as MLflow metrics."""
    from mlflow.entities import Metric  # optional (requirements/scale.txt): only with tracking on

    now = int(time.time() * 1000)
    out = []
    for f in run.history_files():
        seed = f.stem.split("-", 1)[1]
        h = pd.read_csv(f)
        for _, row in h.iterrows():
            for col in ("devel_score", "train_loss", "lr"):
                if col in h and math.isfinite(float(row[col])):
                    out.append(Metric(f"seed{seed}/{col}", float(row[col]), now, int(row["epoch"])))
    try:
        m = run.metrics()
    except (OSError, ValueError):
        m = {}
    for part, targets in (m.get("best") or {}).items():
        for target, mets in (targets or {}).items():
            for name, v in (mets or {}).items():
                if isinstance(v, (int, float)) and math.isfinite(v):
                    out.append(Metric(f"{part}/{target}/{name}", float(v), now, 0))
                s = ((m.get("summary") or {}).get(part, {}).get(target, {}).get(name) or {}).get("mean")
                if isinstance(s, (int, float)) and math.isfinite(s):
                    out.append(Metric(f"{part}/{target}/{name}/mean", float(s), now, 0))
    return out


def _artifacts(client: Any, run_id: str, run: Any) -> None:
    for f in run.report_files():
        client.log_artifact(run_id, str(f))
    if run.plots_dir.is_dir() and any(run.plots_dir.iterdir()):
        client.log_artifacts(run_id, str(run.plots_dir), artifact_path="plots")


def log_run(folder: str | os.PathLike, uri: str, *, parent: str | None = None, name: str | None = None,
            extra_metrics: list | None = None) -> str:
    """Log a run folder (trained run, fused or personalisation folder) as one MLflow run; return its run id.

    Nested under ``parent`` (an MLflow run id) when given. A folder already logged to ``uri`` is not logged again.
    """
    folder = Path(folder).resolve()
    uri = normalise_uri(uri)
    done = logged_run_id(folder, uri)
    if done:
        return done
    run = Run(folder)
    client = _client(uri)
    tags = {"affectflow.run_dir": str(folder), "affectflow.kind": run.record.get("kind", "run"),
            "affectflow.status": run.status}
    if parent:
        tags["mlflow.parentRunId"] = parent
    r = client.create_run(_experiment(client, uri), run_name=name or folder.name, tags=tags)
    rid = r.info.run_id
    cfg = {k: v for k, v in run.config_dict.items() if k not in ("tracking",)}
    _log_batch(client, rid, params=flatten(cfg), metrics=_metrics_of(run) + list(extra_metrics or []))
    _artifacts(client, rid, run)
    client.set_terminated(rid, "FINISHED" if run.status == "finished" else "FAILED")
    _remember(folder, uri, rid)
    return rid


def start_parent(folder: str | os.PathLike, uri: str, *, kind: str, name: str, params: dict[str, Any] | None = None,
                 parent: str | None = None) -> str:
    """The MLflow run of a procedure folder (sweep, CV, tuning, personalisation), created once and reused when the
    procedure resumes; return its id."""
    folder = Path(folder).resolve()
    uri = normalise_uri(uri)
    done = logged_run_id(folder, uri)
    client = _client(uri)
    if done:
        return done
    tags = {"affectflow.run_dir": str(folder), "affectflow.kind": kind}
    if parent:
        tags["mlflow.parentRunId"] = parent
    r = client.create_run(_experiment(client, uri), run_name=name, tags=tags)
    if params:
        _log_batch(client, r.info.run_id, params=flatten(params))
    folder.mkdir(parents=True, exist_ok=True)
    _remember(folder, uri, r.info.run_id)
    return r.info.run_id


def finish_parent(run_id: str, folder: str | os.PathLike, uri: str, *, ok: bool = True) -> None:
    """Attach a procedure folder's ``results.md`` (and ``plots/``) and mark its MLflow run finished or failed."""
    uri = normalise_uri(uri)
    client = _client(uri)
    folder = Path(folder)
    for f in (results_file(folder), folder / "recipe.md", folder / "best.yaml"):
        if f.is_file():
            client.log_artifact(run_id, str(f))
    plots = plots_folder(folder)
    if plots.is_dir() and any(plots.iterdir()):
        client.log_artifacts(run_id, str(plots), artifact_path="plots")
    client.set_terminated(run_id, "FINISHED" if ok else "FAILED")


def log_tree(folder: str | os.PathLike, uri: str, *, parent: str | None, kind: str, name: str) -> str | None:
    """Log a procedure folder (e.g. a recipe step) as a parent run with every run folder below it nested under it
    (each logged once; see :func:`log_run`); return the parent's id."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    pid = start_parent(folder, uri, kind=kind, name=name, parent=parent)
    for run in find_run_folders(folder):
        if run != folder.resolve() and run != folder:
            log_run(run, uri, parent=pid, name=str(run.relative_to(folder)))
    finish_parent(pid, folder, uri)
    return pid
