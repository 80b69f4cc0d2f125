"""Every verb that writes, run inside a :class:`tests.sandbox.Sandbox` on tiny generated inputs with hostile names
where it reads names: one clear affectflow error (or a correct result), never a traceback, nothing changed outside.

Complements :mod:`tests.core.test_escapes` (generate, predict, fuse, sweep, cv, tune, recipe, yardstick, import-media)
for extract, import-muse, import-affwild2, import-mer, personalise, export, submit and augment."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.sandbox import Sandbox

HOSTILE = ["../../x", "ok\n", "/tmp/abs"]


def _clean(code: int, err: str) -> str:
    assert "Traceback" not in err, err
    return " ".join(err.split())


def _refused(box: Sandbox, argv: list[str], *words: str) -> str:
    code, out, err = box.run(argv)
    msg = _clean(code, err)
    assert code in (1, 2), (argv, code, msg)
    for w in words:
        assert w in msg + out, (argv, msg)
    return msg


def test_extract_refuses_hostile_recording_ids(tmp_path):
    from affectflow.synthetic.media import generate_media_corpus

    with Sandbox(tmp_path) as box:
        generate_media_corpus(box.path / "c", n_subjects=2, duration_s=3.0, seed=1, physio=False, transcript=False,
                              video_size=16, video_fps=5)
        listing = sorted(str(p) for p in (box.path / "c").rglob("*"))
        for bad in HOSTILE:
            _refused(box, ["extract", "c", "--features", "egemaps", "--recordings", bad])
        _refused(box, ["extract", "c", "--features", "../../x"])
        _refused(box, ["extract", "c", "--features", "ok\n"])
        assert sorted(str(p) for p in (box.path / "c").rglob("*")) == listing
        assert not (tmp_path / "outer" / "x").exists() and not (tmp_path / "x").exists()


def test_import_muse_refuses_hostile_names_and_imports_in_the_sandbox(tmp_path, tiny_corpus):
    from affectflow.synthetic.muse import write_muse_task

    with Sandbox(tmp_path) as box:
        write_muse_task(tiny_corpus, box.path / "task", style="2022", features=["acoustic"])
        for bad in HOSTILE:
            _refused(box, ["import-muse", "task", "out-f", "--features", bad, "-q"])
            _refused(box, ["import-muse", "task", "out-f", "--labels", bad, "-q"])
        assert not (box.path / "out-f").exists() or not any((box.path / "out-f").iterdir())
        # a label dimension folder named with a trailing newline (legal on Linux) is refused, not written
        lab = box.path / "task" / "label_segments"
        dim = next(p for p in lab.iterdir() if p.is_dir())
        shutil.copytree(dim, lab / (dim.name + "\n"))
        _refused(box, ["import-muse", "task", "out-d", "-q"])
        shutil.rmtree(lab / (dim.name + "\n"))
        code, _, err = box.run(["import-muse", "task", "good", "-q"])
        assert code == 0, err
        assert (box.path / "good" / "recordings.csv").is_file() or any((box.path / "good").iterdir())


def test_import_affwild2_hostile_video_names(tmp_path):
    from affectflow.synthetic.affwild2 import generate_affwild2

    with Sandbox(tmp_path) as box:
        generate_affwild2(box.path / "aw", n_videos=3, duration_s=2.0, duration_jitter_s=0.0, crop_size=16,
                          fps_choices=(10.0,), unannotated_fraction=0.0)
        _refused(box, ["import-affwild2", "aw", "c1", "--test-list", "../../x", "-q"])
        # rename one annotated video (every file whose name starts with its id) to a hostile id
        vids = sorted(p for p in (box.path / "aw").rglob("*") if p.is_file() and p.suffix in (".mp4", ".avi"))
        assert vids
        vid = vids[0].stem
        for p in sorted((box.path / "aw").rglob(f"{vid}*"), key=lambda q: -len(q.parts)):
            p.rename(p.with_name(p.name.replace(vid, "..x\n", 1)))
        code, out, err = box.run(["import-affwild2", "aw", "c2", "-q"])
        msg = _clean(code, err)
        assert code in (0, 1, 2), msg
        if code == 0:  # a correct result: the hostile id is not a recording of the corpus
            ids = (box.path / "c2" / "recordings.csv").read_text()
            assert "..x" not in ids
        else:
            assert "..x" in msg + out


def test_import_mer_refuses_hostile_names(tmp_path):
    from affectflow.synthetic.mer import generate_mer

    with Sandbox(tmp_path) as box:
        generate_mer(box.path / "mer", n_train=20, n_test=(6, 4, 0), frames=(3, 5), utt_dim=4, frame_dim=3)
        for bad in HOSTILE:
            _refused(box, ["import-mer", "mer", "c", "--frame-rate", f"{bad}=5", "-q"], "not imported feature sets")
            _refused(box, ["import-mer", "mer", "c", "--features", bad, "-q"], "are not folders")
        assert not (box.path / "c").exists() or not any((box.path / "c").iterdir())
        code, _, err = box.run(["import-mer", "mer", "c", "--frame-rate", "frames=5", "--name", "../../x", "-q"])
        assert code == 0, _clean(code, err)  # the corpus name is a label stored in corpus.json, not a path
        assert (box.path / "c" / "recordings.csv").is_file()


def test_personalise_refuses_hostile_subjects(tmp_path, tiny_run):
    with Sandbox(tmp_path) as box:
        run = box.path / "run"
        shutil.copytree(tiny_run, run)
        before = sorted(p.name for p in run.iterdir())
        for bad in HOSTILE:
            _refused(box, ["personalise", "run", "--subjects", bad, "--seeds", "1", "--epochs", "1", "-q",
                           "--device", "cpu"])
        assert sorted(p.name for p in run.iterdir()) == before


def test_export_writes_only_its_out_folder(tmp_path, tiny_run):
    with Sandbox(tmp_path) as box:
        shutil.copytree(tiny_run, box.path / "run")
        code, _, err = box.run(["export", "run", "--out", "e"])
        assert code == 0, _clean(code, err)
        assert (box.path / "e" / "model.json").is_file()
        _refused(box, ["export", "run", "--out", "e"], "not empty")  # an existing export is not overwritten
        # a run whose run.json was edited to name a partition that is a path: refused or ignored, nothing outside
        info = json.loads((box.path / "run" / "run.json").read_text())
        info["name"] = "../../x"
        (box.path / "run" / "run.json").write_text(json.dumps(info))
        code, _, err = box.run(["export", "run", "--out", "e2"])
        _clean(code, err)
        assert code in (0, 1, 2)


def test_submit_refuses_a_hostile_label_dimension(tmp_path, tiny_run, tiny_corpus):
    with Sandbox(tmp_path) as box:
        shutil.copytree(tiny_run, box.path / "run")
        shutil.copytree(tiny_corpus.path, box.path / "c")
        code, _, err = box.run(["submit", "run", "--format", "muse2023", "--corpus", "c", "--out", "s", "-q",
                                "--device", "cpu"])
        msg = _clean(code, err)
        assert code in (0, 1, 2), msg
        for f in (box.path / "c" / "labels").rglob("label_set.json"):
            info = json.loads(f.read_text())
            info["dims"] = ["../../x" if i == 0 else d for i, d in enumerate(info["dims"])]
            f.write_text(json.dumps(info))
        _refused(box, ["submit", "run", "--format", "muse2023", "--corpus", "c", "--out", "s2", "-q",
                       "--device", "cpu"], "../../x")
        assert not (box.path / "s2").exists() or not any((box.path / "s2").rglob("*.csv"))


def test_augment_refuses_hostile_names(tmp_path):
    from affectflow.synthetic.media import generate_media_corpus

    with Sandbox(tmp_path) as box:
        generate_media_corpus(box.path / "mc", n_subjects=3, duration_s=3.0, seed=1, physio=False, transcript=False,
                              video_size=16, video_fps=5)
        listing = sorted(str(p) for p in (box.path / "mc").rglob("*"))
        for bad in HOSTILE:
            _refused(box, ["augment", "mc", "--video", "blur", "--train-partitions", bad, "-q"])
            _refused(box, ["augment", "mc", "--video", bad, "-q"])
        _refused(box, ["augment", "mc", "--audio-noise", "../../nowhere", "-q"])
        assert sorted(str(p) for p in (box.path / "mc").rglob("*")) == listing
        code, _, err = box.run(["augment", "mc", "--video", "blur", "--copies", "1", "-q"])
        assert code == 0, _clean(code, err)


# ------------------------------------------------------------------- symlinks inside run folders (gap 2)
def _plant(link, target):
    import os

    if link.is_dir() and not link.is_symlink():
        shutil.rmtree(link)
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, link, target_is_directory=True)


def test_a_symlink_inside_a_run_folder_cannot_redirect_evaluate_or_predict(tmp_path, tiny_run):
    outside = tmp_path / "outside"  # someone else's folder; the sandbox check covers it
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    with Sandbox(tmp_path) as box:
        run = box.path / "run"
        shutil.copytree(tiny_run, run)
        _plant(run / "evaluations", outside)
        msg = _refused(box, ["evaluate", "run", "--partitions", "test", "-q", "--device", "cpu"], "outside")
        assert len([ln for ln in msg.split("error:") if ln.strip()]) <= 2  # one paragraph
        (run / "evaluations").unlink()
        _plant(run / "predictions", outside)
        _refused(box, ["predict", "run", "--partitions", "test", "--out", "run/predictions/new", "-q"], "outside")
        (run / "predictions").unlink()
        (run / "evaluations").mkdir()
        _plant(run / "evaluations" / "x", outside)  # a link inside evaluations/ itself is not followed either
        code, _, err = box.run(["evaluate", "run", "--partitions", "test", "-q", "--device", "cpu"])
        assert code == 0, _clean(code, err)
    assert sorted(p.name for p in outside.iterdir()) == ["keep.txt"]


def test_run_file_writes_refuse_a_symlinked_subfolder(tmp_path, tiny_run):
    import torch

    from affectflow.errors import RunError
    from affectflow.fsutil import write_json
    from affectflow.runs import Run, save_epoch_state

    outside = tmp_path / "outside"
    outside.mkdir()
    with Sandbox(tmp_path) as box:
        run = box.path / "run"
        shutil.copytree(tiny_run, run)
        _plant(run / "checkpoints", outside)
        _plant(run / "resume", outside)
        _plant(run / "plots", outside)
        with pytest.raises(RunError, match="outside"):
            write_json(run / "checkpoints" / "x.json", {"a": 1})
        with pytest.raises(RunError, match="outside"):
            save_epoch_state(run / "resume" / "seed-1.pt", {"t": torch.zeros(1)})
        with pytest.raises(RunError, match="outside"):
            Run(run).saved_predictions("test").save(run / "plots" / "p")
        Run.write_metrics(run, {"ok": 1})  # ordinary writes in the run folder still work
    assert list(outside.iterdir()) == []


def test_a_symlinked_recipe_step_folder_is_refused(tmp_path):
    from affectflow.recipes.engine import _step_job

    outside = tmp_path / "outside"
    outside.mkdir()
    with Sandbox(tmp_path) as box:
        (box.path / "recipe" / "steps").mkdir(parents=True)
        _plant(box.path / "recipe" / "steps" / "train-abc", outside)
        r = _step_job({"kind": "train", "settings": {}, "folder": str(box.path / "recipe" / "steps" / "train-abc"),
                       "corpus": None, "backend": "serial", "workers": 1, "threads": 1})
        assert not r["ok"] and "outside" in r["error"] and "Traceback" not in r["error"]
    assert list(outside.iterdir()) == []
