"""Parsers of ``affectflow import-media`` and ``affectflow extract`` (handlers in :mod:`affectflow.cli.extract`)."""

from __future__ import annotations

from typing import Any

from affectflow.cli import argtypes
from affectflow.cli.options import handler


def register(subparsers: Any) -> None:
    """Add the ``import-media`` and ``extract`` subcommands to an argparse ``subparsers`` object.

    Each parser sets ``func`` to a handler ``(args) -> int`` (the exit code) of :mod:`affectflow.cli.extract`.
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
    p.set_defaults(func=handler("affectflow.cli.extract:run_import_media"))

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
    e.set_defaults(func=handler("affectflow.cli.extract:run_extract"))
