import numpy as np
import pytest

from affectflow.data.align import align_to_grid, regular_grid
from affectflow.data.windows import window_starts
from affectflow.errors import ConfigError


def test_same_rate_joins_by_timestamp():
    grid = np.arange(6) * 0.5
    t = np.array([0.0, 0.5, 1.5, 2.0])  # 1.0 and 2.5 missing
    v = np.arange(4, dtype=np.float32)[:, None]
    out = align_to_grid(t, v, grid, frame_period=0.5)
    assert out[:, 0].tolist()[:2] == [0.0, 1.0]
    assert np.isnan(out[2, 0]) and np.isnan(out[5, 0])
    assert out[3, 0] == 2.0 and out[4, 0] == 3.0


def test_faster_features_are_averaged_per_step_ignoring_nan():
    grid = np.array([0.0, 0.5, 1.0])
    t = np.arange(0, 1.25, 0.125)  # 8 Hz frames: 0, .125, ..., 1.125
    v = np.stack([t, np.where(t == 0.5, np.nan, t)], axis=1).astype(np.float32)
    out = align_to_grid(t, v, grid)
    # step 0.5 owns [0.25, 0.75): frames .25 .375 .5 .625
    assert out[1, 0] == pytest.approx(np.mean([0.25, 0.375, 0.5, 0.625]))
    assert out[1, 1] == pytest.approx(np.mean([0.25, 0.375, 0.625]))
    # step 0 owns [-0.25, 0.25): frames 0 and .125
    assert out[0, 0] == pytest.approx(0.0625)


def test_slower_features_are_held_within_half_their_period():
    grid = np.arange(8) * 0.5  # 2 Hz
    t = np.array([0.0, 1.0, 2.0])  # 1 Hz
    v = np.array([[10.0], [20.0], [30.0]], dtype=np.float32)
    out = align_to_grid(t, v, grid, frame_period=1.0)
    # 0.5 is 0.5 away from both 0 and 1 (within p/2): nearest, ties to the earlier frame
    assert out[:6, 0].tolist() == [10.0, 10.0, 20.0, 20.0, 30.0, 30.0]
    assert np.isnan(out[6:, 0]).all()  # 3.0 and 3.5 are more than p/2 after the last frame


def test_regular_grid():
    assert regular_grid(2.0, 2.0).tolist() == [0.0, 0.5, 1.0, 1.5]
    assert len(regular_grid(0.1, 2.0)) == 1


@pytest.mark.parametrize("length,size,hop", [(10, 4, 2), (11, 4, 3), (3, 4, 2), (8, 4, 4), (100, 30, 7)])
def test_windows_cover_every_step_and_stay_in_range(length, size, hop):
    starts = window_starts(length, size, hop)
    covered = np.zeros(length, bool)
    for s in starts:
        assert 0 <= s < length
        covered[s : s + size] = True
    assert covered.all()
    assert starts == sorted(set(starts))


def test_window_known_answers_and_errors():
    assert window_starts(10, 4, 2) == [0, 2, 4, 6]
    assert window_starts(11, 4, 3) == [0, 3, 6, 9]  # last window [9, 11) is padded
    assert window_starts(3, 4, 2) == [0]
    with pytest.raises(ConfigError, match="window.hop"):
        window_starts(10, 4, 5)
