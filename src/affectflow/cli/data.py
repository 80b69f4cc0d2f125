"""CLI verbs for challenge data: ``import-affwild2``, ``import-mer``, ``generate-layout``, ``upgrade``, ``submit``,
``fuse-raters`` (each a thin wrapper over the Python API)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

from affectflow.cli.parsers.data import register  # noqa: F401 - re-exported: the parsers lived here
from affectflow.corpus.affwild2 import import_affwild2
from affectflow.corpus.mer import import_mer
from affectflow.corpus.upgrade import describe_upgrade, upgrade_corpus
from affectflow.errors import ConfigError
from affectflow.submit import submit
from affectflow.synthetic.affwild2 import generate_affwild2
from affectflow.synthetic.mer import clip_split, generate_mer


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
    _, report = import_affwild2(args.root, args.out, videos=args.videos, crops=args.crops, test_list=args.test_list,
                                face_source=args.face_source, default_fps=args.default_fps,
                                reference_labels=args.reference_labels, name=args.name, progress=not args.quiet)
    print(report.summary())
    print(f"Report: {Path(args.out) / 'reports' / 'import.json'}")
    return 0


def cmd_import_mer(args: argparse.Namespace) -> int:
    feats = [f.strip() for f in args.features.split(",") if f.strip()] if args.features else None
    _, report = import_mer(args.root, args.out, frame_rates=_rates(args.frame_rate), features=feats,
                           devel_fraction=args.devel_fraction, seed=args.seed, name=args.name, progress=not args.quiet,
                           storage=args.storage)
    print(report.summary())
    print(f"Report: {Path(args.out) / 'reports' / 'import.json'}")
    return 0


def cmd_generate_layout(args: argparse.Namespace) -> int:
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
        overrides["n_train"], overrides["n_test"] = clip_split(args.clips)
    if args.layout == "affwild2":
        rec = generate_affwild2(args.out, progress=not args.quiet, **overrides)
        parts: dict[str, int] = {}
        for r in rec["names"].values():
            parts[r["partition"]] = parts.get(r["partition"], 0) + 1
        print(f"Wrote an Aff-Wild2-layout folder to {args.out}: {len(rec['names'])} annotated people {parts}, "
              "noise-free labels in ground_truth/ (import them with --reference-labels for the ceiling).")
    else:
        rec = generate_mer(args.out, progress=not args.quiet, **overrides)
        hz = rec["config"]["frame_rate_hz"]
        print(f"Wrote a MER 2023-layout folder to {args.out}: {rec['sets']}; utterance-level acoustic sets "
              f"{rec['acoustic_sets']}, frame-level set 'frames' at {hz:g} Hz (import with --frame-rate "
              f"frames={hz:g}).")
        print("Noise-free ceilings (truth vs observed labels): " + json.dumps(rec["ceiling"]))
    return 0


def cmd_upgrade(args: argparse.Namespace) -> int:
    sets = [f.strip() for f in args.feature_sets.split(",") if f.strip()] if args.feature_sets else None
    result = upgrade_corpus(args.corpus, feature_sets=sets, dry_run=args.dry_run, progress=not args.quiet)
    print(describe_upgrade(result))
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    parts = [p.strip() for p in args.partitions.split(",") if p.strip()] if args.partitions else None
    out = submit(args.run, args.format, out=args.out, partitions=parts, corpus=args.corpus, seed=args.seed,
                 device=args.device, progress=not args.quiet)
    n = sum(1 for f in out.rglob("*") if f.is_file())
    print(f"{args.format} submission ({n} files) written to {out}")
    return 0
