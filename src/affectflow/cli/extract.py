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
``affectflow`` entry point prints as one paragraph.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from typing import Any

from affectflow.cli import argtypes
from affectflow.config import split_override
from affectflow.errors import ConfigError


def register(subparsers: Any) -> None:
    """Add the ``import-media`` and ``extract`` subcommands to an argparse ``subparsers`` object.

    Each parser sets ``func`` to a function ``(args) -> int`` (the exit code).
    """
    p = subparsers.add_parser(
        "import-media",
        help="create or extend a corpus from raw audio, video, physiology and transcript files",
        description="Create or extend a corpus from raw recordings: a manifest CSV (columns id, subject, partition, "
        "audio, video, physio, transcript; relative paths are relative to the manifest) or a folder whose files are "
        "matched by name (<id>.wav|flac|mp3 audio, <id>.mp4|avi|mkv video, <id>.csv|edf|hea or <id>.physio.csv "
        "physiology, <id>.transcript.csv|json transcript). Files that cannot be read are reported; exit code 1 then.",
    )
    p.add_argument("source", help="manifest CSV or folder of media files")
    p.add_argument("corpus", help="corpus folder (created if missing)")
    p.add_argument("--name", help="name of a new corpus (default: the folder name)")
    p.add_argument(
        "--label-rate", type=argtypes.positive_float, default=2.0, help="label grid rate of a new corpus in Hz (default 2)"
    )
    p.add_argument(
        "--partition", default="train", help="partition of recordings the manifest gives none (default train)"
    )
    p.add_argument(
        "--subject-regex", help="regex searched in the recording id; its first group is the subject"
    )
    p.add_argument("--map", dest="recording_map", metavar="CSV",
                   help="partition and/or subject per recording: a CSV with the column id and partition and/or "
                   "subject (a folder scan otherwise puts every recording in --partition with subject = id, and says "
                   "so in the report)")
    p.add_argument("--recursive", action="store_true", help="scan sub-folders too")
    p.add_argument(
        "--physio-rate", type=argtypes.positive_float, help="sampling rate (Hz) of physiology CSVs without a time column"
    )
    p.add_argument("--overwrite", action="store_true", help="replace recordings already in the corpus")
    p.add_argument("--labels", help="folder of per-dimension label CSVs in the MuSe layout (<dim>/<id>.csv: "
                   "timestamp in ms, value); label files in the manifest ('labels' column) or the folder "
                   "(<id>.labels.csv, <id>/labels.csv) are read too")
    p.add_argument("-q", "--quiet", action="store_true", help="print only problems and the counts")
    p.set_defaults(func=run_import_media)

    e = subparsers.add_parser(
        "extract",
        help="extract time-aligned feature sets from a corpus's raw media",
        description="Run feature extractors over every recording with raw media, in parallel and resumably: finished "
        "outputs with the same configuration are skipped, a changed configuration is recomputed. Without --config "
        "or --features the default pipeline runs (configs/extract_default.yaml). Exit code 1 when any job failed.",
    )
    e.add_argument("corpus", nargs="?", help="corpus folder (with media.csv)")
    e.add_argument(
        "--config",
        help="YAML: {feature_set: {type: extractor, param: value, ...}} (optionally under "
        "'features:' with a 'defaults:' mapping)",
    )
    e.add_argument(
        "--features",
        help="comma-separated feature sets to run (taken from the config when named "
        "there, else an extractor of that name with its defaults)",
    )
    e.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SET.PARAM=VALUE",
        help="override one parameter, e.g. egemaps.win_dur=2.0 (value parsed as YAML; repeatable)",
    )
    e.add_argument("--workers", type=argtypes.positive_int, default=1, help="worker processes (default 1: in this process)")
    e.add_argument("--backend", default=None,
                   help="local (default: this process or a pool of --workers processes), serial, or ray (one Ray "
                   "task per job; the corpus must be on storage every node sees)")
    e.add_argument("--address", default=None,
                   help="ray: auto (the cluster running here) or ray://HOST:10001 (default: a private local cluster "
                   "of --workers CPUs)")
    e.add_argument("--task-resources", default=None, metavar="YAML",
                   help="ray: what each extraction task asks for, e.g. '{cpus: 1, memory_gb: 2, resources: "
                   "{cpu_node: 1}}' (default: 1 CPU)")
    e.add_argument(
        "--recordings",
        action="append",
        default=[],
        help="comma-separated recording ids (repeatable; default: all)",
    )
    e.add_argument("--overwrite", action="store_true", help="recompute finished outputs too")
    e.add_argument(
        "-q", "--quiet", "--no-progress", dest="no_progress", action="store_true", help="no progress bar"
    )
    e.add_argument("--list-extractors", action="store_true", help="list the registered extractors and exit")
    e.set_defaults(func=run_extract)


def run_import_media(args: argparse.Namespace) -> int:
    """``affectflow import-media``: returns 0 when every file was imported, else 1."""
    from affectflow.corpus.media import import_media

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
    from affectflow.features.pipeline import default_config_path, load_config

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
    from affectflow.features.base import EXTRACTORS
    from affectflow.features.pipeline import load_builtin_extractors

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
    from affectflow.corpus.corpus import Corpus
    from affectflow.features.pipeline import build_extractors, extract

    cfg = resolve_config(args.config, args.features, args.overrides)
    extractors = build_extractors(cfg)
    recordings = [r.strip() for item in args.recordings for r in item.split(",") if r.strip()] or None
    if args.workers < 1:
        raise ConfigError(f"--workers must be at least 1; got {args.workers}.")
    options: dict = {}
    if args.task_resources:
        import yaml

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
