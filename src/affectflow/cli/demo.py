"""``affectflow demo``: the end-to-end demo of :mod:`affectflow.demo` (parser in
:mod:`affectflow.cli.parsers.core`)."""

from __future__ import annotations

import argparse

from affectflow.demo import run_demo, run_media_demo


def cmd_demo(args: argparse.Namespace) -> int:
    if args.media:
        run_media_demo(args.out or "demo_media_out", quick=args.quick, progress=not args.quiet, workers=args.workers)
    else:
        run_demo(args.out or "demo_out", quick=args.quick, progress=not args.quiet)
    return 0
