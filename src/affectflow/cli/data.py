"""CLI verbs for challenge data: ``import-affwild2``, ``import-mer``, ``generate-layout``, ``upgrade``, ``submit``,
``fuse-raters`` (each a thin wrapper over the Python API)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from affectflow.cli import argtypes
from affectflow.errors import ConfigError


def _rates(values: list[str] | None) -> dict[str, float]:
    out = {}
    for v in values or []:
        name, sep, rate = v.partition("=")
        try:
            if not sep:
                raise ValueError
            out[name.strip()] = float(rate)
        except ValueError:
            raise ConfigError(f"--frame-rate takes SET=HZ (e.g. frames=25), got {v!r}.") from None
    return out


def cmd_import_affwild2(args: argparse.Namespace) -> int:
    from affectflow.corpus.affwild2 import import_affwild2

    _, report = import_affwild2(args.root, args.out, videos=args.videos, crops=args.crops, test_list=args.test_list,
                                face_source=args.face_source, default_fps=args.default_fps,
                                reference_labels=args.reference_labels, name=args.name, progress=not args.quiet)
    print(report.summary())
    print(f"Report: {Path(args.out) / 'reports' / 'import.json'}")
    return 0


def cmd_import_mer(args: argparse.Namespace) -> int:
    from affectflow.corpus.mer import import_mer

    feats = [f.strip() for f in args.features.split(",") if f.strip()] if args.features else None
    _, report = import_mer(args.root, args.out, frame_rates=_rates(args.frame_rate), features=feats,
                           devel_fraction=args.devel_fraction, seed=args.seed, name=args.name, progress=not args.quiet,
                           storage=args.storage)
    print(report.summary())
    print(f"Report: {Path(args.out) / 'reports' / 'import.json'}")
    return 0


def cmd_generate_layout(args: argparse.Namespace) -> int:
    import yaml

    overrides: dict[str, Any] = {}
    for s in args.set or []:
        k, sep, v = s.partition("=")
        if not sep:
            raise ConfigError(f"--set takes KEY=VALUE, got {s!r}.")
        val = yaml.safe_load(v)
        overrides[k.strip()] = tuple(val) if isinstance(val, list) else val
    overrides["seed"] = args.seed
    if args.clips is not None:
        if args.layout != "mer":
            raise ConfigError("--clips applies to the mer layout (use --set n_videos=N for affwild2).")
        from affectflow.synthetic.mer import clip_split

        overrides["n_train"], overrides["n_test"] = clip_split(args.clips)
    if args.layout == "affwild2":
        from affectflow.synthetic.affwild2 import generate_affwild2

        rec = generate_affwild2(args.out, progress=not args.quiet, **overrides)
        parts: dict[str, int] = {}
        for r in rec["names"].values():
            parts[r["partition"]] = parts.get(r["partition"], 0) + 1
        print(f"Wrote an Aff-Wild2-layout folder to {args.out}: {len(rec['names'])} annotated people {parts}, "
              "noise-free labels in ground_truth/ (import them with --reference-labels for the ceiling).")
    else:
        from affectflow.synthetic.mer import generate_mer

        rec = generate_mer(args.out, progress=not args.quiet, **overrides)
        hz = rec["config"]["frame_rate_hz"]
        print(f"Wrote a MER 2023-layout folder to {args.out}: {rec['sets']}; utterance-level acoustic sets "
              f"{rec['acoustic_sets']}, frame-level set 'frames' at {hz:g} Hz (import with --frame-rate "
              f"frames={hz:g}).")
        print("Noise-free ceilings (truth vs observed labels): " + json.dumps(rec["ceiling"]))
    return 0


def cmd_upgrade(args: argparse.Namespace) -> int:
    from affectflow.corpus.upgrade import describe_upgrade, upgrade_corpus

    sets = [f.strip() for f in args.feature_sets.split(",") if f.strip()] if args.feature_sets else None
    result = upgrade_corpus(args.corpus, feature_sets=sets, dry_run=args.dry_run, progress=not args.quiet)
    print(describe_upgrade(result))
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    from affectflow.submit import submit

    parts = [p.strip() for p in args.partitions.split(",") if p.strip()] if args.partitions else None
    out = submit(args.run, args.format, out=args.out, partitions=parts, corpus=args.corpus, seed=args.seed,
                 device=args.device, progress=not args.quiet)
    n = sum(1 for f in out.rglob("*") if f.is_file())
    print(f"{args.format} submission ({n} files) written to {out}")
    return 0


def register(sub: Any) -> None:
    """Add the challenge-data verbs to the ``affectflow`` parser."""

    def add(name, func, help_):
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
        sp.set_defaults(func=func)
        return sp

    a = add("import-affwild2", cmd_import_affwild2,
            "Import an Aff-Wild2 / ABAW VA folder (VA_Estimation_Challenge/{Train_Set,Validation_Set}/<video>.txt, "
            "videos, cropped_aligned/) into a new corpus.")
    a.add_argument("root", help="folder holding VA_Estimation_Challenge/ (or that folder)")
    a.add_argument("out", help="new corpus folder")
    a.add_argument("--videos", help="folder searched recursively for <video>.mp4/.avi (default: ROOT)")
    a.add_argument("--crops", help="folder of <name>/<00001>.jpg face crops (default: ROOT/cropped_aligned)")
    a.add_argument("--test-list", help="text file naming the test videos, one per line (imported unlabelled)")
    a.add_argument("--face-source", choices=["crops", "video", "none"], default="crops",
                   help="what media.csv points each recording at for face extraction (default: crops)")
    a.add_argument("--default-fps", type=argtypes.positive_float, help="frame rate for names whose video is missing (else an error)")
    a.add_argument("--reference-labels", help="folder of <name>.txt in the same format, imported as label set "
                   "continuous_clean (e.g. a generated folder's ground_truth/)")
    a.add_argument("--name", help="corpus name")

    m = add("import-mer", cmd_import_mer,
            "Import a MER 2023 folder (train-label.csv, test{1,2,3}-label.csv, features/<set>/<name>.npy) into a "
            "new corpus (clip task).")
    m.add_argument("root", help="folder with train-label.csv and features/")
    m.add_argument("out", help="new corpus folder")
    m.add_argument("--frame-rate", action="append", metavar="SET=HZ",
                   help="frame rate of a frame-level (T, C) feature set (repeatable; required for those sets)")
    m.add_argument("--features", help="comma-separated feature sets (default: all folders of features/)")
    m.add_argument("--devel-fraction", type=argtypes.open_fraction, default=0.2,
                   help="fraction of train carved out as devel, stratified by class, when there is no "
                   "devel-label.csv (default 0.2)")
    m.add_argument("--seed", type=int, default=0, help="seed of the devel split (default 0)")
    m.add_argument("--name", help="corpus name")
    m.add_argument("--storage", choices=["packed", "files"], default="packed",
                   help="packed: one memory-mapped array per feature set (default); files: one Parquet file per "
                   "clip and set (the layout before packed sets)")

    g = add("generate-layout", cmd_generate_layout,
            "Write a synthetic dataset in a challenge layout (affwild2 or mer) with known answers.")
    g.add_argument("layout", choices=["affwild2", "mer"])
    g.add_argument("out", help="new folder")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--clips", type=argtypes.int_at_least(15), metavar="N",
                   help="mer: N clips in all, 80%% train and the rest in test1/test2/test3 (overrides n_train/n_test)")
    g.add_argument("-s", "--set", action="append", metavar="KEY=VALUE",
                   help="generator option, e.g. n_videos=20 or n_train=400 (see affectflow.synthetic.affwild2 / mer)")

    u = add("upgrade", cmd_upgrade,
            "Convert an older clip corpus to the packed feature store (one array per feature set instead of one "
            "Parquet file per clip); atomic per set and resumable. Corpora of long recordings are left as they are.")
    u.add_argument("corpus", help="corpus folder")
    u.add_argument("--dry-run", action="store_true", help="only report what would be done")
    u.add_argument("--feature-sets", help="comma-separated sets to pack in any corpus (default: every set of a clip "
                   "corpus, none elsewhere)")

    s = add("submit", cmd_submit, "Write a run's predictions as challenge submission files.")
    s.add_argument("run", help="run directory")
    s.add_argument("--format", required=True, choices=["muse2023", "muse2021-sent", "abaw", "mer2023"])
    s.add_argument("--out", help="new output folder (default: <run>/submission-<format>-<timestamp>)")
    s.add_argument("--partitions", help="comma-separated partitions (default: the run's test partitions)")
    s.add_argument("--corpus", help="corpus folder (default: the run's corpus)")
    s.add_argument("--seed", type=int, help="checkpoint seed (default: the selected seed)")
    s.add_argument("--device", default="auto", help="auto | cpu | cuda")

    from affectflow.cli import raters

    raters.register(sub)
