"""predict --media names each output by its recording id: a folder <id>/video.mp4 gives <id>.csv."""

import argparse

from affectflow.cli.deploy import _recordings_from_args, unique_recording_ids
from affectflow.corpus.media import recording_id_of


def test_recording_id_of_follows_the_folder_scan_rule():
    assert recording_id_of("in/S01/video.mp4") == "S01"
    assert recording_id_of("in/S01/audio.wav") == "S01"
    assert recording_id_of("in/S02.physio.csv") == "S02"
    assert recording_id_of("in/clip.mp4") == "clip"
    assert recording_id_of("in/S03/clip.mp4") == "clip"  # a named file keeps its own name


def test_media_in_per_recording_folders_get_their_folder_names(tmp_path):
    args = argparse.Namespace(manifest=None, media=[str(tmp_path / "A" / "video.mp4"), str(tmp_path / "B" / "video.mp4")],
                              audio=None, physio=None, transcript=None)
    recs, notes = unique_recording_ids(_recordings_from_args(args))
    assert [r for r, _ in recs] == ["A", "B"] and notes == []
