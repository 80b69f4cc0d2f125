"""Aff-Wild2 / ABAW VA import: per-video frame rates, -5 = missing, two people per video, crops, test list,
all-or-nothing errors; the image-folder reader; ABAW submission files end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from affectflow.cli.main import main
from affectflow.corpus.affwild2 import import_affwild2, video_of
from affectflow.data.store import SequenceStore
from affectflow.errors import ImportFormatError
from affectflow.features.base import MediaRecording
from affectflow.features.crops import CropPixels
from affectflow.io.video import iter_image_folder
from affectflow.submit import abaw_frames, read_abaw_submission
from affectflow.synthetic.affwild2 import generate_affwild2

SMALL = dict(n_videos=5, duration_s=5.0, duration_jitter_s=1.0, fps_choices=(10.0, 12.5), crop_size=24,
             unannotated_fraction=0.1)


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    out = tmp_path_factory.mktemp("aw") / "gen"
    rec = generate_affwild2(out, **SMALL)
    return out, rec


def _no_leftovers(parent: Path) -> bool:
    return not [p for p in parent.iterdir() if ".staging-" in p.name]


def test_import_per_video_rates_missing_marks_and_partitions(layout, tmp_path):
    src, rec = layout
    corpus, report = import_affwild2(src, tmp_path / "c", test_list=src / "test_set.txt",
                                     reference_labels=src / "ground_truth", progress=False)
    names = rec["names"]
    table = corpus.recordings.set_index("id")
    assert set(table.index) == set(names)
    assert {n: table.loc[n, "partition"] for n in names} == {n: r["partition"] for n, r in names.items()}
    two = [n for n in names if n.endswith("_left")]
    assert two and video_of(two[0]) == names[two[0]]["video"] == table.loc[two[0], "video"]
    for n, r in names.items():
        assert table.loc[n, "fps"] == pytest.approx(r["fps"]) == table.loc[n, "label_rate_hz"]
        assert table.loc[n, "frames"] == r["frames"]
        labels = corpus.read_labels(n)
        if r["partition"] == "test":
            assert labels is None  # blind test set
            continue
        assert len(labels) == r["annotation_lines"]
        np.testing.assert_allclose(labels["time"], np.arange(len(labels)) / r["fps"])  # t = i / fps
        assert int(labels["valence"].isna().sum()) == r["unannotated"]  # -5 -> missing, never a value
        assert labels[["valence", "arousal"]].abs().max().max() <= 1.0
        raw = (src / "VA_Estimation_Challenge" / ("Train_Set" if r["partition"] == "train" else "Validation_Set")
               / f"{n}.txt").read_text().splitlines()[1:]
        ok = [i for i, line in enumerate(raw) if not line.startswith("-5")]
        np.testing.assert_allclose(labels["valence"].to_numpy()[ok], [float(raw[i].split(",")[0]) for i in ok], atol=1e-4)
    assert report.counts["frames not annotated (-5, missing)"] == sum(
        r["unannotated"] for r in names.values() if r["partition"] != "test")
    media = pd.read_csv(corpus.path / "media.csv", dtype=str).set_index("id")
    assert Path(media.loc[two[0], "video"]).name == two[0]  # each person's own crop folder
    assert float(media.loc[two[0], "video_fps"]) == pytest.approx(names[two[0]]["fps"])
    assert "continuous_clean" in corpus.label_sets
    # the test recordings' grid is every video frame at its own rate (recordings.csv label_rate_hz)
    test = [n for n, r in names.items() if r["partition"] == "test"]
    store = SequenceStore(corpus, [], [], test)
    for r in store.records:
        assert r.length == names[r.id]["frames"]
        np.testing.assert_allclose(r.times, np.arange(r.length) / names[r.id]["fps"])
    assert json.loads((corpus.path / "reports" / "import.json").read_text())["layout"] == "affwild2"


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda f: f.write_text("arousal,valence\n0.1,0.2\n"), "first line must be 'valence,arousal'"),
        (lambda f: f.write_text("valence,arousal\n0.1,0.2\n1.5,0.0\n"), "outside \\[-1, 1\\]"),
        (lambda f: f.write_text("valence,arousal\n0.1,x\n"), "not two numbers"),
        (lambda f: f.write_text("valence,arousal\n"), "no frame lines"),
    ],
)
def test_bad_annotation_is_an_error_and_nothing_is_written(layout, tmp_path, edit, message):
    src = _copy(layout[0], tmp_path / "src")
    f = sorted((src / "VA_Estimation_Challenge" / "Train_Set").glob("*.txt"))[0]
    edit(f)
    with pytest.raises(ImportFormatError, match=message) as e:
        import_affwild2(src, tmp_path / "c", progress=False)
    assert f.name in str(e.value) and "nothing was written" in str(e.value)
    assert not (tmp_path / "c").exists() and _no_leftovers(tmp_path)


def test_name_in_two_sets_and_missing_video(layout, tmp_path):
    src = _copy(layout[0], tmp_path / "src")
    f = sorted((src / "VA_Estimation_Challenge" / "Train_Set").glob("*.txt"))[0]
    shutil.copy(f, src / "VA_Estimation_Challenge" / "Validation_Set" / f.name)
    with pytest.raises(ImportFormatError, match="annotated in two sets"):
        import_affwild2(src, tmp_path / "c", progress=False)
    (src / "VA_Estimation_Challenge" / "Validation_Set" / f.name).unlink()
    (src / "videos" / f"{video_of(f.stem)}.mp4").unlink()
    with pytest.raises(ImportFormatError, match=f"no video file {video_of(f.stem)}"):
        import_affwild2(src, tmp_path / "c", progress=False)
    corpus, report = import_affwild2(src, tmp_path / "c", default_fps=20.0, progress=False)
    assert corpus.recordings.set_index("id").loc[f.stem, "fps"] == 20.0
    assert report.counts["videos missing (default fps used)"] == 1
    assert any("20 fps assumed" in w for w in report.warnings)


def test_image_folder_reader_masks_missing_frames(tmp_path):
    from PIL import Image

    d = tmp_path / "crops"
    d.mkdir()
    for n in (1, 2, 4):
        Image.fromarray(np.full((6, 6, 3), 40 * n, np.uint8)).save(d / f"{n:05d}.png")
    frames = list(iter_image_folder(d, None, fps=10.0, n_frames=5))
    assert [f.time for f in frames] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    assert [f.image is None for f in frames] == [False, False, True, False, True]
    assert frames[3].image[0, 0, 0] == 160
    at4 = list(iter_image_folder(d, 4.0, fps=10.0, n_frames=5))  # t_k = k/4 -> frame round(t·10)
    assert [f.source_index for f in at4] == [0, 2]
    df = CropPixels(grid=2).extract(MediaRecording("r", video=d, video_fps=10.0, duration=0.5))
    assert len(df) == 5 and df.iloc[[2, 4], 1:].isna().all().all() and df.iloc[[0, 1, 3], 1:].notna().all().all()
    assert df["mean_r"].iloc[0] == pytest.approx(40 / 255, abs=1e-6)


def test_abaw_frames_pad_and_cut():
    t = np.array([0.0, 0.1, 0.2])
    v = np.array([[1.0, -1.0], [2.0, -2.0], [3.0, -3.0]])
    np.testing.assert_array_equal(abaw_frames(t, v, 5, 10.0)[:, 0], [1, 2, 3, 3, 3])  # padded with the last value
    np.testing.assert_array_equal(abaw_frames(t, v, 2, 10.0)[:, 0], [1, 2])  # cut to the frame count
    np.testing.assert_array_equal(abaw_frames(t, v, 3, 5.0)[:, 0], [1, 3, 3])  # another frame rate: nearest step


def test_cli_import_extract_train_submit_abaw(layout, tmp_path, capsys):
    src, rec = layout
    c = tmp_path / "c"
    assert main(["import-affwild2", str(src), str(c), "--test-list", str(src / "test_set.txt"), "-q"]) == 0
    assert main(["extract", str(c), "--features", "crop_pixels", "--set", "crop_pixels.rate_hz=null",
                 "--set", "crop_pixels.grid=4", "-q"]) == 0
    assert main(["train", "--corpus", str(c), "--runs-dir", str(tmp_path / "runs"), "-q",
                 "--set", "data.features=[crop_pixels]", "--set", "data.targets=[valence,arousal]",
                 "--set", "training.seeds=[1]", "--set", "training.epochs=1", "--set", "model.d_model=8",
                 "--set", "model.d_fc=4", "--set", "data.window.size=30", "--set", "data.window.hop=15"]) == 0
    run = next((tmp_path / "runs").iterdir())
    assert main(["submit", str(run), "--format", "abaw", "--out", str(tmp_path / "sub"), "-q"]) == 0
    test = sorted(n for n, r in rec["names"].items() if r["partition"] == "test")
    assert sorted(p.stem for p in (tmp_path / "sub").glob("*.txt")) == test
    for n in test:
        sub = read_abaw_submission(tmp_path / "sub" / f"{n}.txt")
        assert len(sub) == rec["names"][n]["frames"]  # one line per video frame
        assert sub["image_location"].iloc[0] == f"{n}/00001.jpg" and sub["frame"].tolist() == list(range(1, len(sub) + 1))
        pred = pd.read_csv(next(run.glob("predictions/test")) / f"{n}.csv")
        np.testing.assert_allclose(sub["valence"], np.clip(pred["valence"], -1, 1), atol=1e-5)
    # a second submit never overwrites
    assert main(["submit", str(run), "--format", "abaw", "--out", str(tmp_path / "sub"), "-q"]) == 2
    assert "not an empty folder" in " ".join(capsys.readouterr().err.split())


def test_score_abaw_known_answers(layout, tmp_path):
    from affectflow.corpus.affwild2 import parse_annotation
    from affectflow.corpus.importreport import ChallengeImportReport
    from affectflow.submit import score_abaw, write_abaw_file

    src, rec = layout
    withheld = src / "withheld_test_labels"
    tests = sorted(n for n, r in rec["names"].items() if r["partition"] == "test")
    assert sorted(p.stem for p in withheld.glob("*.txt")) == tests
    perfect, truth = tmp_path / "perfect", tmp_path / "truth"
    perfect.mkdir()
    truth.mkdir()
    rep = ChallengeImportReport("x", "affwild2")
    for n in tests:
        lab = parse_annotation(withheld / f"{n}.txt", rep)
        write_abaw_file(perfect / f"{n}.txt", n, np.nan_to_num(lab, nan=0.0))
        write_abaw_file(truth / f"{n}.txt", n, parse_annotation(src / "ground_truth" / f"{n}.txt", rep))
    s = score_abaw(perfect, withheld)
    assert s["valence"] == pytest.approx(1.0, abs=1e-5) and s["abaw_score"] == pytest.approx(1.0, abs=1e-5)
    ceiling = score_abaw(truth, withheld)  # the noise-free truth scores below 1 against noisy labels
    assert 0.5 < ceiling["abaw_score"] < 1.0
