"""Nearest-frame selection (io.video.NearestFrames): the one rule of iter_frames, the image-folder reader, the face
extractors' in-memory verb and the live predictor.

The variable-frame-rate video is written here with PyAV (8 frames of 32 x 32 at hand-picked millisecond times), so
the known answers below can be checked by hand: output instant ``t_k`` takes the frame nearest it, the earlier one
on a tie.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from affectflow.io.video import NearestFrames, frame_time, iter_frames, iter_image_folder, video_info

av = pytest.importorskip("av")

VFR_MS = [0, 100, 150, 350, 450, 500, 900, 1000]
"""Frame times (ms) of the variable-rate video: midpoints 0.25 s (frames 2|3) and 0.7 s (frames 5|6) are output
instants at 4 Hz / 10 Hz, and 0.4 s (frames 3|4) at 10 Hz: ties."""


@pytest.fixture(scope="module")
def vfr_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("vfr") / "vfr.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=1000, options={"crf": "18"})  # time base 1 ms: the pts are the times
        s.width, s.height, s.pix_fmt = 32, 32, "yuv420p"
        for i, ms in enumerate(VFR_MS):
            f = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 20 * i, np.uint8), format="rgb24")
            f.pts = ms
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def select(rate, times, end=None):
    """Source index per output of a NearestFrames fed ``times`` (item = index), finished at ``end``."""
    sel = NearestFrames(rate)
    out = [o for i, t in enumerate(times) for o in sel.push(t, i)]
    if end is not None:
        out += sel.finish(end)
    return out


def test_known_answers_and_the_tie_rule():
    times = [Fraction(ms, 1000) for ms in VFR_MS]
    # 10 Hz: 0.4 s ties frames 3 (0.35) and 4 (0.45), 0.7 s ties 5 (0.5) and 6 (0.9): the earlier frame wins
    out = select(10.0, times, end=Fraction(11, 10))
    assert [o.index for o in out] == list(range(11))
    assert [o.time for o in out] == [k / 10 for k in range(11)]
    assert [o.item for o in out] == [0, 1, 2, 3, 3, 5, 5, 5, 6, 6, 7]
    # 4 Hz: 0.25 s ties frames 2 (0.15) and 3 (0.35)
    assert [o.item for o in select(4.0, times, end=Fraction(11, 10))] == [0, 2, 5, 6, 7]
    # the end is exclusive: t_k < end
    assert [o.time for o in select(4.0, times, end=Fraction(5, 4))] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert [o.time for o in select(4.0, times, end=Fraction(5, 4) + Fraction(1, 10**6))][-1] == 1.25


def test_outputs_are_decided_when_the_next_frame_arrives():
    sel = NearestFrames(10.0)
    assert sel.push(0.3, "a") == []  # t_0..t_3 lie before or at the first frame: decided by the next one
    assert [(o.index, o.item) for o in sel.push(0.5, "b")] == [(0, "a"), (1, "a"), (2, "a"), (3, "a"), (4, "a")]
    assert sel.last_time == Fraction(1, 2)
    assert [(o.index, o.item) for o in sel.finish(0.6)] == [(5, "b")]
    every = NearestFrames(None)  # every frame at its own time, at once; nothing left at the end
    assert [tuple(every.push(t, t)[0]) for t in (0.04, 0.08)] == [(0, 0.04, 0.04), (1, 0.08, 0.08)]
    assert every.finish(1.0) == [] and NearestFrames(2.0).finish(1.0) == []


def test_float_times_are_read_as_the_container_fractions():
    # a float time of a 1/12800 or 1/90000 time base gives back the exact fraction (so a frame handed over as
    # float seconds is selected as iter_frames selects it from the exact pts)
    for tb in (12800, 90000, 30000):
        for pts in (1, 511, 12799, 10**7 + 3):
            assert frame_time(pts / tb) == Fraction(pts, tb)
    assert frame_time(Fraction(1, 3)) == Fraction(1, 3) and frame_time(2) == 2


def test_times_must_increase_and_rate_must_be_positive():
    sel = NearestFrames(2.0)
    sel.push(0.5, 0)
    with pytest.raises(ValueError, match="frame times must increase: got 0.5 s after 0.5 s"):
        sel.push(0.5, 1)
    with pytest.raises(ValueError, match="rate_hz must be > 0 or None"):
        NearestFrames(0)


@pytest.mark.parametrize("rate", [4.0, 10.0, 3.0, 25.0, None])
def test_iter_frames_selects_as_the_selector_on_a_variable_rate_video(vfr_video, rate):
    decoded = list(iter_frames(vfr_video, None))
    assert [round(f.time * 1000) for f in decoded] == VFR_MS
    assert [round(f.image.mean() / 20) for f in decoded] == list(range(8))  # frame i is grey level ~20 i
    end = Fraction(decoded[-1].time).limit_denominator(10**6) + 1 / Fraction(video_info(vfr_video).fps)
    expected = select(rate, [f.time for f in decoded], end=end)  # float times, as an in-memory caller has them
    got = list(iter_frames(vfr_video, rate))
    assert [(f.index, f.time, f.source_index) for f in got] == [tuple(o) for o in expected]
    assert [f.source_time for f in got] == [decoded[f.source_index].time for f in got]
    if rate == 10.0:
        assert [f.source_index for f in got] == [0, 1, 2, 3, 3, 5, 5, 5, 6, 6, 7]
        assert got[5].image is got[6].image is got[7].image  # repeated outputs share one read-only array
        assert not got[5].image.flags.writeable


def test_image_folder_follows_the_same_rule(tmp_path):
    from PIL import Image

    for n in (1, 2, 3, 5, 6):  # frame 4 (index 3) has no image
        Image.fromarray(np.full((4, 4, 3), 10 * n, np.uint8)).save(tmp_path / f"{n:05d}.png")
    fps, n_frames = 12.5, 6  # frames at 0, 0.08, ..., 0.4 s, shown until 0.48 s
    for rate in (None, 2.0, 5.0, 25.0, 12.5, 1 / 3):
        got = list(iter_image_folder(tmp_path, rate, fps=fps, n_frames=n_frames))
        want = select(rate, [Fraction(i * 2, 25) for i in range(n_frames)], end=Fraction(n_frames * 2, 25))
        assert [(f.index, f.time, f.source_index) for f in got] == [tuple(o) for o in want], rate
        assert [f.image is None for f in got] == [f.source_index == 3 for f in got]
    # 25 Hz: t = 0.04 s ties frames 0 and 1 (0 and 0.08 s): the earlier one
    assert [f.source_index for f in iter_image_folder(tmp_path, 25.0, fps=fps, n_frames=n_frames)][:4] == [0, 0, 1, 1]
