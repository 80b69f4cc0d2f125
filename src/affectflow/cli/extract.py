"""``affectflow import-media`` and ``affectflow extract``: raw recordings in, time-aligned feature sets out.

::

    affectflow import-media recordings/ corpus/                 # folder scanned by file name (see corpus.media)
    affectflow import-media manifest.csv corpus/ --partition test
    affectflow extract corpus/                                  # the default pipeline (configs/extract_default.yaml)
    affectflow extract corpus/ --config extract.yaml --workers 2
    affectflow extract corpus/ --features egemaps,hrv --set egemaps.win_dur=2.0 --recordings r01,r02 --overwrite
    affectflow extract --list-extractors

Both commands exit with 0 when everything worked and 1 when any file or job failed (the others are still done);
bad arguments raise :class:`~affectflow.errors.ConfigError` / :class:`~affectflow.errors.CorpusError`, which the
``affectflow`` entry point prints as one paragraph. The parsers are in :mod:`affectflow.cli.parsers.extract`.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from typing import Any

import yaml

from affectflow.cli.parsers.extract import register  # noqa: F401 - re-exported: the parsers lived here
from affectflow.config import split_override
from affectflow.corpus.corpus import Corpus
from affectflow.corpus.media import import_media
from affectflow.errors import ConfigError
from affectflow.features.base import EXTRACTORS
from affectflow.features.pipeline import (
    build_extractors,
    default_config_path,
    extract,
    load_builtin_extractors,
    load_config,
)


def run_import_media(args: argparse.Namespace) -> int:
    """``affectflow import-media``: returns 0 when every file was imported, else 1."""
    report = import_media(
        args.source,
        args.corpus,
        name=args.name,
        label_rate_hz=args.label_rate,
        partition=args.partition,
        subject_regex=args.subject_regex,
        recursive=args.recursive,
        physio_rate_hz=args.physio_rate,
        overwrite=args.overwrite,
        labels=args.labels,
        recording_map=args.recording_map,
        progress=not args.quiet,
    )
    print(report.format())
    return 0 if report.ok else 1


def resolve_config(config: str | None, features: str | None, overrides: list[str]) -> dict[str, Any]:
    """The extraction config the command line describes.

    Parameters
    ----------
    config:
        YAML path, or ``None`` for the packaged default pipeline.
    features:
        Comma-separated feature-set names to keep (a name missing from the config becomes ``{type: name}``).
    overrides:
        ``"set.param=value"`` strings; values are parsed as YAML (``2.0`` → float, ``[1, 2]`` → list).

    Returns
    -------
    dict
        ``{"defaults": {...}, "features": {name: {type, params...}}}``.
    """
    base = load_config(config if config else default_config_path())
    feats = base["features"]
    if features:
        names = [n.strip() for n in features.split(",") if n.strip()]
        if not names:
            raise ConfigError("--features names no feature set.")
        feats = {n: dict(feats.get(n, {"type": n})) for n in names}
    for item in overrides:
        fs, dot, param = item.partition("=")[0].strip().partition(".")
        if "=" not in item or not dot or not fs or not param:
            raise ConfigError(f"--set {item!r}: expected SET.PARAM=VALUE, e.g. egemaps.win_dur=2.0.")
        if fs not in feats:
            raise ConfigError(
                f"--set {item!r}: feature set {fs!r} is not being extracted; selected: {sorted(feats)}."
            )
        _, value = split_override(item)
        feats[fs][param] = value
    return {"defaults": base["defaults"], "features": feats}


def _list_extractors() -> int:
    errors = load_builtin_extractors()
    for name in EXTRACTORS.names():
        cls = EXTRACTORS.get(name)
        params = ", ".join(
            f"{k}={v.default!r}" if v.default is not inspect.Parameter.empty else k
            for k, v in inspect.signature(cls.__init__).parameters.items()
            if k != "self"
        )
        print(f"{name:22s} {cls.modality:8s} inputs={','.join(cls.inputs):18s} {params}")
    for mod, err in errors.items():
        print(f"(not available: {mod}: {err})", file=sys.stderr)
    return 0


def run_extract(args: argparse.Namespace) -> int:
    """``affectflow extract``: returns 0 when no job failed, else 1."""
    if args.list_extractors:
        return _list_extractors()
    if not args.corpus:
        raise ConfigError("extract: give the corpus folder (affectflow extract CORPUS ...).")
    cfg = resolve_config(args.config, args.features, args.overrides)
    extractors = build_extractors(cfg)
    recordings = [r.strip() for item in args.recordings for r in item.split(",") if r.strip()] or None
    if args.workers < 1:
        raise ConfigError(f"--workers must be at least 1; got {args.workers}.")
    options: dict = {}
    if args.task_resources:
        try:
            options = yaml.safe_load(args.task_resources) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"--task-resources is not YAML: {err}") from None
        bad = sorted(set(options) - {"cpus", "gpus", "memory_gb", "resources", "max_retries"}) if isinstance(
            options, dict) else ["(not a mapping)"]
        if bad:
            raise ConfigError(f"--task-resources: unknown key(s) {bad}; valid: cpus, gpus, memory_gb, resources, "
                              "max_retries.")
    if args.address:
        options["address"] = args.address
    summary = extract(
        Corpus(args.corpus),
        extractors,
        recordings=recordings,
        workers=args.workers,
        overwrite=args.overwrite,
        progress=not args.no_progress,
        backend=args.backend,
        executor_options=options,
    )
    print(summary.format())
    return 0 if summary.ok else 1
