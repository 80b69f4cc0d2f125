"""The end-to-end demo: generate a corpus, train the default model over seeds, evaluate, predict, report, plot."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

from affectflow.config import load_config
from affectflow.corpus import Corpus
from affectflow.errors import AffectflowError
from affectflow.experiment import evaluate, predict, train
from affectflow.features.pipeline import default_config_path, extract
from affectflow.layout import plots_folder, results_text
from affectflow.synthetic.corpus import generate_corpus
from affectflow.synthetic.media import generate_media_corpus


SYNTHETIC_FEATURES = ["acoustic", "visual", "physio"]
"""Feature sets the demo trains on (of the synthetic feature corpus; the default config names extracted sets)."""


def _reuse_or_make(corpus_dir: Path, what: str, making: str, make: Callable[[], Corpus]) -> Corpus:
    """Step 1 of a demo: the corpus in ``corpus_dir`` if it holds one (a ``what``), else ``make()`` after printing
    ``making``."""
    if (corpus_dir / "corpus.json").is_file():
        corpus = Corpus(corpus_dir)
        print(f"[1/5] Reusing the {what} in {corpus_dir}")
        return corpus
    print(f"[1/5] {making}")
    return make()


def run_demo(out: str | Path = "demo_out", *, quick: bool = False, progress: bool = True) -> Path:
    """Run the demo under ``out``; return the run directory.

    The corpus (``out/corpus``) is generated once and reused; each call adds a new run directory under
    ``out/runs``. ``quick`` uses 16 subjects, one seed and at most 15 epochs.
    """
    out = Path(out)
    t0 = time.perf_counter()
    corpus_dir = out / "corpus"
    size = {"n_subjects": 16, "duration_s": 240.0} if quick else {"n_subjects": 40, "duration_s": 300.0}
    corpus = _reuse_or_make(
        corpus_dir, "corpus", f"Generating a synthetic corpus in {corpus_dir} ({size['n_subjects']} subjects)",
        lambda: generate_corpus(corpus_dir, seed=0, progress=progress, **size),
    )
    print(corpus.summary())

    overrides = [f"data.corpus={corpus_dir}", f"output.runs_dir={out / 'runs'}", f"data.features={SYNTHETIC_FEATURES}"]
    if quick:
        overrides += ["training.seeds=[101]", "training.epochs=15"]
    cfg = load_config(None, overrides)
    print(f"\n[2/5] Training {cfg.model.type} on {cfg.data.features} -> {cfg.data.targets}, seeds {cfg.training.seeds}")
    run_dir = train(cfg, progress=progress)

    print(f"\n[3/5] Evaluating {run_dir.name} on devel and test (best checkpoint, reloaded from disk)")
    eval_dir, metrics = evaluate(run_dir, partitions=["devel", "test"], progress=progress)

    test_ids = corpus.recording_ids(["test"])[:1]
    print(f"\n[4/5] Predicting recording {test_ids[0]}")
    pred_dir = predict(run_dir, recordings=test_ids, progress=progress)

    print("\n[5/5] Results (CCC with population moments, pooled over the recordings of each partition)\n")
    print(results_text(run_dir))
    ceiling = metrics.get("ceiling", {}).get("test", {})
    for t, m in metrics["partitions"]["test"].items():
        gap = ceiling.get(t, float("nan")) - m["ccc"]
        print(f"test {t}: CCC {m['ccc']:.4f}, noise-free ceiling {ceiling.get(t, float('nan')):.4f}, gap {gap:.4f}")
    print(f"\nRun directory:   {run_dir}")
    print(f"Evaluation:      {eval_dir}")
    print(f"Predictions:     {pred_dir}")
    print(f"Plots:           {', '.join(str(p) for p in sorted(plots_folder(run_dir).glob('*.png')))}")
    summary = {"run": str(run_dir), "test": metrics["partitions"]["test"], "ceiling": ceiling,
               "seconds": round(time.perf_counter() - t0, 1)}
    (out / "last_demo.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"Total time:      {summary['seconds']} s")
    return run_dir


MEDIA_FEATURES = ["egemaps", "fer", "phys", "physio_rates", "word_vad"]


def run_media_demo(out: str | Path = "demo_media_out", *, quick: bool = False, progress: bool = True,
                   workers: int = 2) -> Path:
    """The demo from raw media: synthesise speech, face video, physiology and transcripts with known affect,
    extract the default feature pipeline, train on the extracted features, evaluate and report.

    ``quick`` uses 6 subjects x 60 s instead of 12 subjects x 150 s. Returns the run directory.
    """
    out = Path(out)
    t0 = time.perf_counter()
    corpus_dir = out / "corpus"
    size = {"n_subjects": 6, "duration_s": 60.0} if quick else {"n_subjects": 12, "duration_s": 150.0}
    corpus = _reuse_or_make(
        corpus_dir, "raw-media corpus",
        f"Synthesising raw media in {corpus_dir}: {size['n_subjects']} subjects x {size['duration_s']:.0f} s "
        "(espeak-ng speech, NeuroKit2 ECG/respiration/EDA, face video, transcripts)",
        lambda: generate_media_corpus(corpus_dir, seed=0, progress=progress, workers=workers, **size),
    )
    print(f"\n[2/5] Extracting features (default pipeline, {workers} workers; finished outputs are reused)")
    summary = extract(corpus, default_config_path(), workers=workers, progress=progress)
    print(summary.format())
    if not summary.ok:
        raise AffectflowError("Feature extraction failed for some recordings (listed above); the demo stops here.")
    overrides = [f"data.corpus={corpus_dir}", f"output.runs_dir={out / 'runs'}", f"data.features={MEDIA_FEATURES}",
                 "data.window.size=40", "data.window.hop=20", "model.d_model=64", "training.batch_size=16",
                 "training.epochs=40", "training.patience=10", "training.seeds=[101]" if quick else "training.seeds=[101,102,103]"]
    cfg = load_config(None, overrides)
    print(f"\n[3/5] Training {cfg.model.type} on {MEDIA_FEATURES}")
    run_dir = train(cfg, progress=progress)
    print("\n[4/5] Evaluating on devel and test")
    _, metrics = evaluate(run_dir, partitions=["devel", "test"], progress=progress)
    print("\n[5/5] Results\n")
    print(results_text(run_dir))
    print(f"Run directory: {run_dir}\nTotal time: {time.perf_counter() - t0:.1f} s")
    return run_dir
