"""Parsers of the challenge-data verbs ``import-affwild2``, ``import-mer``, ``generate-layout``, ``upgrade``,
``submit`` and ``fuse-raters`` (handlers in :mod:`affectflow.cli.data` and :mod:`affectflow.cli.raters`)."""

from __future__ import annotations

from typing import Any

from affectflow.cli import argtypes
from affectflow.cli.options import add_command
from affectflow.cli.parsers import raters


def register(sub: Any) -> None:
    """Add the challenge-data verbs to the ``affectflow`` parser."""

    def add(name, func, help_):
        return add_command(sub, name, f"affectflow.cli.data:{func}", help_)

    a = add("import-affwild2", "cmd_import_affwild2",
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

    m = add("import-mer", "cmd_import_mer",
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

    g = add("generate-layout", "cmd_generate_layout",
            "Write a synthetic dataset in a challenge layout (affwild2 or mer) with known answers.")
    g.add_argument("layout", choices=["affwild2", "mer"])
    g.add_argument("out", help="new folder")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--clips", type=argtypes.int_at_least(15), metavar="N",
                   help="mer: N clips in all, 80%% train and the rest in test1/test2/test3 (overrides n_train/n_test)")
    g.add_argument("-s", "--set", action="append", metavar="KEY=VALUE",
                   help="generator option, e.g. n_videos=20 or n_train=400 (see affectflow.synthetic.affwild2 / mer)")

    u = add("upgrade", "cmd_upgrade",
            "Convert an older clip corpus to the packed feature store (one array per feature set instead of one "
            "Parquet file per clip); atomic per set and resumable. Corpora of long recordings are left as they are.")
    u.add_argument("corpus", help="corpus folder")
    u.add_argument("--dry-run", action="store_true", help="only report what would be done")
    u.add_argument("--feature-sets", help="comma-separated sets to pack in any corpus (default: every set of a clip "
                   "corpus, none elsewhere)")

    s = add("submit", "cmd_submit", "Write a run's predictions as challenge submission files.")
    s.add_argument("run", help="run directory")
    s.add_argument("--format", required=True, choices=["muse2023", "muse2021-sent", "abaw", "mer2023"])
    s.add_argument("--out", help="new output folder (default: <run>/submission-<format>-<timestamp>)")
    s.add_argument("--partitions", help="comma-separated partitions (default: the run's test partitions)")
    s.add_argument("--corpus", help="corpus folder (default: the run's corpus)")
    s.add_argument("--seed", type=int, help="checkpoint seed (default: the selected seed)")
    s.add_argument("--device", default="auto", help="auto | cpu | cuda")

    raters.register(sub)
