"""Face-video extractors (MediaPipe blendshapes/head pose, FER2013 expressions, dlib embeddings) and PyAV decoding.

The test video is made here with PyAV from ``skimage.data.astronaut()`` (a real, smiling face): 4 s at 25 fps,
384 x 320, whose segments (each centred on one 2 Hz sample) are

====  =========  ==================================================================
 k    t (s)      content
====  =========  ==================================================================
0-1   0.0, 0.5   face, moving right 1 px per frame
2     1.0        uniform grey (no face)
3     1.5        random noise (no face)
4-5   2.0, 2.5   face at 60 % brightness, moving left 1 px per frame
6     3.0        mirrored face
7     3.5        face rotated 15 degrees counter-clockwise
====  =========  ==================================================================
"""

from __future__ import annotations

import os
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

av = pytest.importorskip("av")
cv2 = pytest.importorskip("cv2")
pytest.importorskip("mediapipe")
pytest.importorskip("dlib")
pytest.importorskip("ai_edge_litert")
skdata = pytest.importorskip("skimage.data")

from affectflow.errors import ConfigError  # noqa: E402
from affectflow.features.base import EXTRACTORS, ExtractionError, MediaRecording  # noqa: E402
from affectflow.features.face import (  # noqa: E402
    BLENDSHAPES,
    FER_LABELS,
    HEAD_POSE_COLUMNS,
    FaceTracker,
    extract_face_features,
    head_pose_from_matrix,
    process_face_frames,
)
from affectflow.io.video import iter_frames, video_info  # noqa: E402
from affectflow.io.video import write_video as encode_video  # noqa: E402

W, H, FPS, N_FRAMES = 384, 320, 25, 100
PLAN = ["face", "face", "blank", "noise", "dark", "dark", "mirror", "rotate", "rotate"]
FACE_KINDS = {"face", "dark", "mirror", "rotate"}
NAMES = ["face_landmarks", "head_pose", "fer", "face_embedding"]


def kind(i: int) -> str:
    """Content of frame ``i``: the plan entry of the nearest 2 Hz sample (no ties at 25 fps)."""
    return PLAN[round(2 * i / FPS)]


def shift(i: int) -> int:
    """Horizontal offset (px) of the face patch in frame ``i``."""
    k = kind(i)
    return {"face": i, "dark": 64 - (i - 44)}.get(k, 32)


def frame_image(i: int, rng: np.random.Generator) -> np.ndarray:
    k = kind(i)
    if k == "blank":
        return np.full((H, W, 3), 128, np.uint8)
    if k == "noise":
        return rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    patch = skdata.astronaut()[0:320, 60:380]  # face at x 117..212, y 66..161 of the patch
    if k == "mirror":
        patch = patch[:, ::-1]
    canvas = np.full((H, W, 3), 90, np.uint8)
    dx = shift(i)
    canvas[:, dx : dx + 320] = patch
    if k == "dark":
        canvas = (canvas * 0.6).astype(np.uint8)
    if k == "rotate":  # positive angle = counter-clockwise on screen
        rot = cv2.getRotationMatrix2D((dx + 165, 115), 15, 1.0)
        canvas = cv2.warpAffine(canvas, rot, (W, H), borderMode=cv2.BORDER_REPLICATE)
    return canvas


def write_video(path, n: int = N_FRAMES, options: dict | None = None) -> None:
    rng = np.random.default_rng(0)
    with av.open(str(path), "w", options=options or {}) as c:
        s = c.add_stream("libx264", rate=FPS, options={"crf": "18"})
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        for i in range(n):
            for p in s.encode(av.VideoFrame.from_ndarray(frame_image(i, rng), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "astronaut.mp4"
    write_video(path)
    return path


@pytest.fixture(scope="module")
def rec(video):
    return MediaRecording(id="astronaut", video=video)


@pytest.fixture(scope="module")
def alone_2hz(rec):
    """Each extractor run alone at the default 2 Hz."""
    return {n: EXTRACTORS.build(n).extract(rec) for n in NAMES}


@pytest.fixture(scope="module")
def joint_25hz(rec):
    """All four extractors in one shared pass at the video's frame rate."""
    exts = [EXTRACTORS.build(n, {"rate_hz": 25.0}) for n in NAMES]
    return dict(zip(NAMES, extract_face_features(rec, exts)))


@pytest.fixture(scope="module")
def decoded(video):
    """Every decoded frame of the video as ``(time_s, rgb)``, as a caller holding frames in memory has them."""
    return [(f.time, f.image) for f in iter_frames(video, None)]


@pytest.fixture(scope="module")
def pose_every_frame(rec):
    """head_pose at every video frame (rate_hz None), by extract."""
    return EXTRACTORS.build("head_pose", {"rate_hz": None}).extract(rec)


def face_mask(times: np.ndarray) -> np.ndarray:
    return np.array([kind(round(t * FPS)) in FACE_KINDS for t in times])


# ------------------------------------------------------------------------------------------------ decoding
def test_video_info(video):
    info = video_info(video)
    assert (info.fps, info.n_frames, info.duration, info.size, info.codec) == (25.0, 100, 4.0, (W, H), "h264")


def test_write_video_round_trip_trims_odd_sizes(tmp_path):
    grey = [np.full((33, 46, 3), 40 * i, np.uint8) for i in range(5)]
    assert encode_video(tmp_path / "v.mp4", iter(grey), 10, crf=0) == 5
    info = video_info(tmp_path / "v.mp4")
    assert (info.fps, info.n_frames, info.size, info.codec) == (10.0, 5, (46, 32), "h264")
    frames = list(iter_frames(tmp_path / "v.mp4", None))
    assert [f.time for f in frames] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    assert [int(np.median(f.image)) for f in frames] == pytest.approx([0, 40, 80, 120, 160], abs=2)


def test_iter_frames_nearest_frame(video):
    frames = list(iter_frames(video, 2.0))
    assert [f.time for f in frames] == [k / 2 for k in range(8)]
    # t = 0.5 lies halfway between frames 12 (0.48 s) and 13 (0.52 s): ties go to the earlier frame
    assert [f.source_index for f in frames] == [0, 12, 25, 37, 50, 62, 75, 87]
    assert frames[2].image.shape == (H, W, 3) and frames[2].image.dtype == np.uint8
    assert abs(float(frames[2].image.mean()) - 128) < 2  # the grey frame
    assert not frames[2].image.flags.writeable

    every = list(iter_frames(video, 25.0))
    assert [f.source_index for f in every] == list(range(100))
    np.testing.assert_allclose([f.time for f in every], np.arange(100) / 25)
    native = list(iter_frames(video, None))
    np.testing.assert_allclose([f.time for f in native], np.arange(100) / 25)

    up = list(iter_frames(video, 30.0))  # 4 s at 30 Hz: 120 outputs, each the nearest of the 25 fps frames
    assert len(up) == 120
    expected = [
        min(range(100), key=lambda i: (abs(Fraction(i, 25) - Fraction(k, 30)), i)) for k in range(120)
    ]
    assert [f.source_index for f in up] == expected


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, video):
    d = tmp_path_factory.mktemp("bad")
    (d / "empty.mp4").write_bytes(b"")
    (d / "garbage.mp4").write_bytes(np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    head = video.read_bytes()
    (d / "cut.mp4").write_bytes(head[: len(head) // 2])  # index (moov) at the end is lost
    write_video(d / "faststart.mp4", options={"movflags": "faststart"})  # index first: opens, then ends early
    data = (d / "faststart.mp4").read_bytes()
    (d / "truncated.mp4").write_bytes(data[: len(data) // 2])
    with av.open(str(d / "voice.m4a"), "w") as c:
        s = c.add_stream("aac", rate=16000)
        fr = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        fr.sample_rate = 16000
        for p in [*s.encode(fr), *s.encode()]:
            c.mux(p)
    return d


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("empty.mp4", "the file is empty"),
        ("garbage.mp4", "not a readable media file"),
        ("cut.mp4", "not a readable media file"),
        ("truncated.mp4", "the file is truncated: its header declares 4.00 s of video"),
        ("voice.m4a", "it has no video stream (streams: audio)"),
        ("missing.mp4", "the file does not exist"),
    ],
)
def test_bad_files_raise_extraction_error(bad_files, name, message):
    path = bad_files / name
    with pytest.raises(ExtractionError) as err:
        EXTRACTORS.build("head_pose").extract(MediaRecording(id="bad", video=path))
    assert str(path) in str(err.value) and message in str(err.value)
    if name != "truncated.mp4":  # video_info reads headers only; it sees the truncated file's header as fine
        with pytest.raises(ExtractionError, match="Cannot read video"):
            video_info(path)


def test_recording_without_video():
    with pytest.raises(ExtractionError, match="has no video file"):
        EXTRACTORS.build("fer").extract(MediaRecording(id="r1", audio="r1.wav"))


# ------------------------------------------------------------------------------------------------ contract
def test_registry_params_and_validation():
    for n in NAMES:
        ext = EXTRACTORS.build(n, {"rate_hz": 25.0})
        assert ext.modality == "video" and ext.inputs == ("video",)
        assert ext.params()["rate_hz"] == 25.0
        assert EXTRACTORS.build(n, ext.params()).config_hash() == ext.config_hash()
    assert EXTRACTORS.build("face_landmarks").columns() == list(BLENDSHAPES)
    assert len(EXTRACTORS.build("face_landmarks", {"landmarks": True}).columns()) == 52 + 478 * 3
    assert EXTRACTORS.build("fer").columns() == list(FER_LABELS)
    assert (
        EXTRACTORS.build("head_pose").columns()
        == list(HEAD_POSE_COLUMNS)
        == ["yaw", "pitch", "roll", "tx", "ty", "tz"]
    )
    assert EXTRACTORS.build("face_embedding").columns()[::127] == ["emb000", "emb127"]
    with pytest.raises(ConfigError, match="rate_hz must be a positive"):
        EXTRACTORS.build("fer", {"rate_hz": 0})
    with pytest.raises(ConfigError, match="shape_predictor must be"):
        EXTRACTORS.build("face_embedding", {"shape_predictor": "81"})


@pytest.mark.parametrize("rate", [2.0, 25.0])
def test_grid_columns_dtypes_and_missing_faces(alone_2hz, joint_25hz, rate):
    frames = alone_2hz if rate == 2.0 else joint_25hz
    n = 8 if rate == 2.0 else 100
    for name, df in frames.items():
        ext = EXTRACTORS.build(name)
        assert list(df.columns) == ["time", *ext.columns()], name
        assert df["time"].dtype == np.float64 and all(df[c].dtype == np.float32 for c in ext.columns())
        np.testing.assert_allclose(df["time"], np.arange(n) / rate)
        feats = df[ext.columns()].to_numpy()
        has_face = face_mask(df["time"].to_numpy())
        assert np.isnan(feats[~has_face]).all(), name  # grey and noise frames: whole rows of NaN, not zeros
        assert np.isfinite(feats[has_face]).all(), (
            name
        )  # every face frame found, incl. dark, mirrored, rotated
    assert (~face_mask(np.arange(n) / rate)).sum() == (2 if rate == 2.0 else 25)


def test_loaded_models_are_not_pickled(rec):
    import pickle

    ext = EXTRACTORS.build("fer")
    ext._load()
    assert ext._model is not None
    copy = pickle.loads(pickle.dumps(ext))  # what a worker process receives
    assert copy._model is None and copy.params() == ext.params()


def test_shared_pass_equals_separate_runs(rec, alone_2hz):
    joint = extract_face_features(rec, [EXTRACTORS.build(n) for n in NAMES])
    for name, df in zip(NAMES, joint):
        pd.testing.assert_frame_equal(df, alone_2hz[name], rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------------------ values
def test_blendshapes_see_the_smile(joint_25hz):
    df = joint_25hz["face_landmarks"].dropna()
    assert len(df) == 75
    assert (df["mouthSmileLeft"] > 0.7).all() and (df["mouthSmileRight"] > 0.7).all()
    top = df[list(BLENDSHAPES)].mean().nlargest(2).index
    assert set(top) == {"mouthSmileLeft", "mouthSmileRight"}
    assert (df[list(BLENDSHAPES)].to_numpy() >= 0).all() and (df[list(BLENDSHAPES)].to_numpy() <= 1).all()


def test_landmarks_follow_the_face(rec):
    df = EXTRACTORS.build("face_landmarks", {"landmarks": True}).extract(rec)
    assert df.shape == (8, 1 + 52 + 1434)
    xy = df[[c for c in df.columns if c.startswith("lm") and not c.endswith("_z")]].to_numpy()
    assert np.nanmin(xy) > 0 and np.nanmax(xy) < 1  # the whole face is inside the frame
    nose_px = df["lm001_x"].to_numpy() * W  # landmark 1: nose tip
    # the patch moved 12 px right between t = 0 and 0.5 s, and 12 px left between 2.0 and 2.5 s
    assert nose_px[1] - nose_px[0] == pytest.approx(12, abs=2)
    assert nose_px[5] - nose_px[4] == pytest.approx(-12, abs=2)
    assert nose_px[0] == pytest.approx(
        117 + 45 + shift(0), abs=12
    )  # nose ~45 px right of the face box's left


def test_head_pose_known_rotations(joint_25hz):
    df = joint_25hz["head_pose"]
    kinds = np.array([kind(i) for i in range(100)])
    roll = {k: df["roll"].to_numpy()[kinds == k] for k in FACE_KINDS}
    upright = np.concatenate([roll["face"], roll["dark"]])
    assert np.abs(upright).max() < 8
    assert np.median(roll["rotate"]) - np.median(upright) == pytest.approx(15, abs=4)  # counter-clockwise > 0
    assert np.median(roll["mirror"]) > 0 > np.median(upright)  # mirroring flips the sign of the roll
    assert np.abs(df["yaw"].dropna()).max() < 10  # a frontal face
    # x translation follows the patch: it moves right (tx grows) in the first segment, left in the dark one
    tx = df["tx"].to_numpy()
    assert tx[18] > tx[0] + 1 and tx[68] < tx[44] - 1
    assert (df["tz"].dropna() < 0).all()  # in front of the camera


def test_head_pose_from_matrix_conventions():
    def rz(a):
        c, s = np.cos(np.radians(a)), np.sin(np.radians(a))
        return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])

    def ry(a):
        c, s = np.cos(np.radians(a)), np.sin(np.radians(a))
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])

    def rx(a):
        c, s = np.cos(np.radians(a)), np.sin(np.radians(a))
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])

    m = np.eye(4)
    m[:3, :3] = rz(10) @ ry(-20) @ rx(30)
    m[:3, 3] = [1, 2, -50]
    np.testing.assert_allclose(head_pose_from_matrix(m), [-20, 30, 10, 1, 2, -50], atol=1e-4)


def test_fer_says_happy(joint_25hz, alone_2hz):
    for df in (joint_25hz["fer"], alone_2hz["fer"]):
        p = df[list(FER_LABELS)].dropna()
        np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-3)
        assert (p.idxmax(axis=1) == "happy").all()
        assert p["happy"].min() > 0.9


def test_embedding_same_person_close_and_unit_norm(joint_25hz, rec):
    e = joint_25hz["face_embedding"].dropna().iloc[:, 1:].to_numpy(np.float64)
    assert e.shape == (75, 128)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    d = np.linalg.norm(e[:, None] - e[None], axis=2)
    assert (
        d.max() < 0.3
    )  # same face in every frame (incl. dark, mirrored, rotated); dlib's raw threshold 0.6 ~ 0.41
    raw = EXTRACTORS.build("face_embedding", {"normalize": False, "shape_predictor": "5"}).extract(rec)
    norms = np.linalg.norm(raw.dropna().iloc[:, 1:].to_numpy(), axis=1)
    assert ((norms > 1.2) & (norms < 1.7)).all()  # raw dlib descriptors


def test_tracker_redetects_after_a_jump():
    img = skdata.astronaut()
    mirrored = np.ascontiguousarray(img[:, ::-1])  # the face jumps ~60 px: MediaPipe's tracker alone loses it
    with FaceTracker() as tracker:
        found = [tracker.detect(im, t) is not None for t, im in enumerate([img, mirrored, img, mirrored])]
    assert found == [True, True, True, True]


def test_rate_none_uses_every_frame(pose_every_frame, joint_25hz):
    df = pose_every_frame
    np.testing.assert_allclose(df["time"], np.arange(100) / 25)
    pd.testing.assert_frame_equal(df, joint_25hz["head_pose"], rtol=1e-4, atol=1e-3)


# ------------------------------------------------------------------------------------------------ frames in memory
def test_process_frames_equals_extract(decoded, alone_2hz):
    for name in NAMES:  # each extractor alone at 2 Hz: the same frames, the same tracking, bit for bit
        pd.testing.assert_frame_equal(EXTRACTORS.build(name).process_frames(decoded), alone_2hz[name],
                                      check_exact=True)


def test_process_face_frames_shares_one_pass_per_rate(decoded, alone_2hz, pose_every_frame):
    exts = [EXTRACTORS.build("fer"), EXTRACTORS.build("head_pose", {"rate_hz": None}),
            EXTRACTORS.build("face_embedding")]
    fer, pose, emb = process_face_frames(iter(decoded), exts)  # one pass over a one-shot iterator
    pd.testing.assert_frame_equal(pose, pose_every_frame, check_exact=True)
    pd.testing.assert_frame_equal(fer, alone_2hz["fer"], check_exact=True)
    pd.testing.assert_frame_equal(emb, alone_2hz["face_embedding"], check_exact=True)


def test_process_frames_end_and_missing_images(decoded):
    ext = EXTRACTORS.build("head_pose", {"rate_hz": 10.0})
    first = decoded[:3]  # 0, 0.04, 0.08 s: by default the last frame shows until 0.12 s
    assert ext.process_frames(first)["time"].tolist() == [0.0, 0.1]
    assert ext.process_frames(first, end_s=0.5)["time"].tolist() == [0.0, 0.1, 0.2, 0.3, 0.4]
    blank = [(t, None) for t, _ in first]  # frames without an image (an image folder's missing frames): NaN rows
    df = ext.process_frames(blank, end_s=0.3)
    assert df["time"].tolist() == [0.0, 0.1, 0.2] and df[list(HEAD_POSE_COLUMNS)].isna().all().all()
    own = [0.1, 0.1 + 0.2, 0.7]  # rate_hz None: each frame at its own time, as given
    assert EXTRACTORS.build("fer", {"rate_hz": None}).process_frames([(t, None) for t in own])["time"].tolist() == own
    empty = ext.process_frames([])
    assert list(empty.columns) == ["time", *HEAD_POSE_COLUMNS] and len(empty) == 0


@pytest.mark.parametrize(
    ("frames", "end_s", "message"),
    [
        ([(0.0, np.zeros((4, 4, 3), np.uint8)), (0.0, np.zeros((4, 4, 3), np.uint8))], None,
         "Video frame times must increase: frame 1 is at 0.0 s, after a frame at 0.0 s."),
        ([(0.0, np.zeros((4, 4, 3), np.float32))], None, "Video frame 0 (t = 0.0 s) is a float32 array of shape"),
        ([(0.0, np.zeros((4, 4), np.uint8))], None, "shape (4, 4); frames are uint8 RGB arrays (height, width, 3)"),
        ([(float("nan"), np.zeros((4, 4, 3), np.uint8))], None, "Video frame 0 has time nan"),
        ([np.zeros((4, 4, 3), np.uint8)], None, "Video frame 0 is not a (time_s, rgb) pair"),
        ([(0.5, np.zeros((4, 4, 3), np.uint8))], 0.5, "end_s = 0.5 s is not after the last frame (at 0.5 s)"),
    ],
)
def test_process_frames_names_bad_input(frames, end_s, message):
    with pytest.raises(ExtractionError) as err:
        EXTRACTORS.build("fer").process_frames(frames, end_s=end_s)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_module_import_is_cheap():
    import subprocess
    import sys

    code = (
        "import sys, affectflow.features.face, affectflow.io.video; "
        "print(sorted(m for m in ('av', 'cv2', 'mediapipe', 'dlib', 'ai_edge_litert') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert out.stdout.strip() == "[]"
